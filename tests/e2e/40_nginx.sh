#!/bin/bash
# Proves: Debian's nginx (a master and two worker processes, in the
# foreground, with a private prefix and configuration, on a free loopback port)
# runs under libprof with CPU and heap profiling: it answers every request (300
# from six clients at once, a third with a W3C traceparent header) with 200,
# no worker is restarted, it stops cleanly on SIGQUIT, and its error log (where
# nginx sends stderr, so libprof's warnings too) gets no warning, no error and
# no line of libprof's. Every worker writes its own CPU and heap profiles under
# its own pid (as root the workers run as nobody and still write to the output
# directory), the master its heap profile; nginx's own functions are named
# (Debian's binary is stripped but exports its ngx_ functions); the traced
# requests' ids label CPU and heap samples, only ids that were sent, and
# -tagfocus on one shows nginx's request handling. Skipped when nginx is not
# installed (the `test` group of scripts/install-deps.sh installs it).
. "$(dirname "$0")/lib.sh"
RAW="python3 $(dirname "$0")/raw_samples.py"

NGINX=${NGINX_BIN:-/usr/sbin/nginx}
if [ ! -x "$NGINX" ]; then
	say "skipped: $NGINX is not installed (apt-get install nginx, or scripts/install-deps.sh test)"
	exit 0
fi
ALIVE=""                    # nginx's pids while it runs, killed if the test ends early
trap 'for p in $ALIVE; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

P=$WORK/nginx OUT=$WORK/prof
mkdir -p "$P/html" "$P/logs" "$P/tmp"
echo hello >"$P/html/index.html"
seq 1 100000 | sed 's/$/ lorem ipsum dolor sit amet/' >"$P/html/big.txt"   # 3.3 MB, gzipped for each request
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=""
if [ "$(id -u)" = 0 ]; then
	# the workers run as nobody: they must reach the documents and the output
	# directory, as in a real deployment
	user="user nobody nogroup;"
	chmod 0711 "$WORK"
	install -d -o nobody -m 0700 "$OUT"
fi
cat >"$P/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 2;
pid $P/nginx.pid;
error_log $P/logs/error.log notice;
events { worker_connections 256; }
http {
    access_log $P/logs/access.log;
    client_body_temp_path $P/tmp/body;
    proxy_temp_path $P/tmp/proxy;
    fastcgi_temp_path $P/tmp/fastcgi;
    uwsgi_temp_path $P/tmp/uwsgi;
    scgi_temp_path $P/tmp/scgi;
    gzip on;
    gzip_types text/plain;
    server {
        listen 127.0.0.1:$PORT reuseport;
        root $P/html;
    }
}
EOF
check "the configuration is valid" "$NGINX" -q -t -p "$P" -c "$P/nginx.conf" -e "$P/logs/error.log"
: >"$P/logs/error.log"

# env execs nginx: $! is the master's pid
env LIBPROF_OUTPUT_DIR="$OUT" LIBPROF_HEAP_RATE=4096 LD_PRELOAD="$LIB" \
	"$NGINX" -p "$P" -c "$P/nginx.conf" -e "$P/logs/error.log" >"$WORK/nginx.out" 2>"$WORK/nginx.err" &
MASTER=$!
ALIVE=$MASTER
for _ in $(seq 100); do
	[ "$(pgrep -c -P "$MASTER")" = 2 ] && curl -s -m 2 -o /dev/null "http://127.0.0.1:$PORT/" && break
	sleep 0.1
done
WORKERS=$(pgrep -P "$MASTER" | sort)
ALIVE="$MASTER $WORKERS"
say "master $MASTER, workers" $WORKERS
check "nginx started a master and two workers" test "$(echo $WORKERS | wc -w)" = 2

# 300 requests from 6 clients at once, one connection each (reuseport spreads
# the connections over both workers); every third carries a traceparent.
tid_of() { printf '4bf92f3577b34da6a3ce929d0e%06x' "$1"; }
client() {
	local c=$1 r tid
	for r in $(seq "$c" 6 299); do
		if [ $((r % 3)) = 0 ]; then
			tid=$(tid_of "$r")
			curl -s -m 20 -o /dev/null -w '%{http_code}\n' --compressed \
				-H "traceparent: 00-$tid-00f067aa0ba902b7-01" "http://127.0.0.1:$PORT/big.txt"
		else
			curl -s -m 20 -o /dev/null -w '%{http_code}\n' --compressed "http://127.0.0.1:$PORT/big.txt"
		fi
	done
}
clients=()
for c in 0 1 2 3 4 5; do client "$c" >"$WORK/codes.$c" & clients+=($!); done
wait "${clients[@]}"
for r in $(seq 0 3 299); do tid_of "$r"; echo; done >"$WORK/sent"
cat "$WORK"/codes.* >"$WORK/codes"
say "status codes:" $(sort "$WORK/codes" | uniq -c)
check "nginx answered all 300 requests" test "$(wc -l <"$WORK/codes")" = 300
check "every answer was 200" bash -c "! grep -vqx 200 '$WORK/codes'"
check "the access log has the 300 requests, all 200" \
	test "$(awk '$9 == 200 && $7 == "/big.txt"' "$P/logs/access.log" | wc -l)" = 300
check "the workers are those that started (none was restarted)" test "$(pgrep -P "$MASTER" | sort)" = "$WORKERS"

kill -QUIT "$MASTER"
for _ in $(seq 150); do kill -0 "$MASTER" 2>/dev/null || break; sleep 0.1; done
wait "$MASTER"
rc=$?
check "nginx stopped cleanly on SIGQUIT (status $rc)" test "$rc" = 0
gone() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
check "and its workers with it" gone $WORKERS
gone $MASTER $WORKERS && ALIVE=""

sed 's/^/    error.log: /' "$P/logs/error.log" | grep -v '\[notice\]' | head -20
check "the error log has no warning and no error" \
	bash -c "! grep -E '\[(warn|error|crit|alert|emerg)\]' '$P/logs/error.log'"
check "the error log has no libprof warning (nginx sends stderr there)" \
	bash -c "! grep -q 'libprof:' '$P/logs/error.log'"
check "libprof printed nothing on nginx's stderr" test ! -s "$WORK/nginx.err"
check "and nothing on its stdout" test ! -s "$WORK/nginx.out"

ls "$OUT" | sed 's/^/    /' | head -40
for w in $WORKERS; do
	check "worker $w wrote CPU profiles" test -n "$(profiles "$OUT" "nginx.$w.cpu.*")"
	check "worker $w wrote heap profiles" test -n "$(profiles "$OUT" "nginx.$w.heap.*")"
done
check "the master wrote its heap profile" test -n "$(profiles "$OUT" "nginx.$MASTER.heap.*")"
CPU=$(profiles "$OUT" 'nginx.*.cpu.*')
HEAP=$(profiles "$OUT" 'nginx.*.heap.*')
top $CPU | head -25 | sed 's/^/    /'
check "CPU: nginx's request handling is named (ngx_http_core_run_phases)" \
	test "$(cum_pct ngx_http_core_run_phases $CPU)" != 0
check "CPU: nginx's event loop is named (ngx_process_events_and_timers)" \
	test "$(cum_pct ngx_process_events_and_timers $CPU)" != 0
check "CPU: the gzip filter's work is in it (deflate)" test "$(cum_pct deflate $CPU)" != 0
check "heap: nginx's pool allocator is named (ngx_create_pool)" \
	test "$(heap_cum alloc_space ngx_create_pool $HEAP)" != 0
check "heap: and its allocations for requests (ngx_http_create_request)" \
	test "$(heap_cum alloc_space ngx_http_create_request $HEAP)" != 0

for kind in CPU HEAP; do
	go tool pprof -raw ${!kind} 2>/dev/null | $RAW traces >"$WORK/traces.$kind"
	say "$kind: $(wc -l <"$WORK/traces.$kind") trace ids label samples"
	check "$kind: trace ids of the traced requests label samples" test -s "$WORK/traces.$kind"
	check "$kind: every one is the id of a request that was sent" \
		bash -c "! grep -vxFf '$WORK/sent' '$WORK/traces.$kind'"
done
tid=$(head -1 "$WORK/traces.CPU")
focus=$(go tool pprof -top -tagfocus "trace_id=^$tid\$" $CPU 2>/dev/null)
check "-tagfocus on one trace id keeps nginx's request handling" grep -q 'ngx_http_core_run_phases' <<<"$focus"
finish

#!/bin/bash
# Proves: LIBPROF_PPROF_LISTEN serves Go's /debug/pprof/ paths from inside an
# unmodified program: go tool pprof reads CPU (several requests at once, the
# continuous files still getting every sample), heap, allocs and mutex
# profiles with the program's own functions, and traced requests keep their
# labels; bad requests get 400/401/404/405 with a reason; a port in use or a
# bad address is one warning and the program runs on; a program that closes
# every descriptor keeps its endpoint (and gets fd 3 for its next open);
# forked workers never hold the parent's socket (port 0: their own endpoint);
# an exec'd program inherits no socket.
. "$(dirname "$0")/lib.sh"

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$WORK"' EXIT

# start NAME [VAR=value...] -- COMMAND...: runs COMMAND under libprof in the
# background (output in $WORK/NAME.out, .err), waits for its endpoint line;
# sets PID (to wait for), LPID (the program's pid, from the line) and PORT
# (empty when no endpoint came up).
start() {
	local name=$1; shift
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	rm -f "$WORK/stop.$name"
	lp "$WORK/$name" "${envs[@]}" -- "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	PID=$!
	PIDS+=("$PID")
	PORT="" LPID=""
	for _ in $(seq 100); do
		read -r PORT LPID < <(sed -n "s|.*pprof endpoint on http://[0-9.]*:\([0-9]*\)/debug/pprof/ (pid \([0-9]*\)).*|\1 \2|p" \
			"$WORK/$name.err" | head -1)
		[ -n "$PORT" ] && break
		grep -q "without the pprof endpoint\|pprof endpoint is off" "$WORK/$name.err" && break
		sleep 0.1
	done
}
stop() { # stop NAME PID: the program stops by itself once its stop file exists
	touch "$WORK/stop.$1"
	for _ in $(seq 150); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	kill "$2" 2>/dev/null; wait "$2" 2>/dev/null
}
# status [CURL OPTIONS] URL: the HTTP status; the body goes to ${OUT:-$WORK/body}.
status() { curl -s -m 60 -o "${OUT:-$WORK/body}" -w '%{http_code}' "$@"; }
samples() { go tool pprof -raw "$1" 2>/dev/null | awk '/^Samples:/ { s = 1; next } /^Locations/ { s = 0 }
	s && $1 ~ /^[0-9]+$/ { n += $1 } END { print n + 0 }'; }

# ---- a busy program: CPU, heap, allocs, mutex --------------------------------------------
start busy LIBPROF_PPROF_LISTEN=127.0.0.1:0 LIBPROF_HEAP_RATE=65536 LIBPROF_MUTEX_RATE=1 \
	LIBPROF_INTERVAL=1 -- "$PROGS/pull_target" busy "$WORK/stop.busy"
check "port 0: a free port is picked and logged with the pid" test -n "$PORT"
url="http://127.0.0.1:$PORT/debug/pprof"
go tool pprof -raw "$url/profile?seconds=2" >"$WORK/cpu.raw" 2>"$WORK/cpu.log"
check "go tool pprof reads /debug/pprof/profile?seconds=2" grep -q "^Samples:" "$WORK/cpu.raw"
f=$(ls -t "$HOME"/pprof/pprof.*.pb.gz 2>/dev/null | head -1)
pct=$(flat_pct hot_loop "$f")
say "hot_loop: ${pct}% of the pulled CPU profile"
check "the pulled CPU profile shows the hot function (>= 50%)" awk -v p="$pct" 'BEGIN { exit !(p >= 50) }'
check "duration is the asked 2 s" bash -c "go tool pprof -raw '$f' 2>/dev/null | grep -q '^Duration: 2s'"

# two requests at once, 2 s and 3 s: both answered, the longer with more samples
OUT=$WORK/c2.pb.gz status "$url/profile?seconds=2" >"$WORK/c2.code" &
c2=$!
OUT=$WORK/c3.pb.gz status "$url/profile?seconds=3" >"$WORK/c3.code" &
c3=$!
wait $c2 $c3
check "concurrent CPU requests: both answered 200" \
	bash -c "[ \$(cat '$WORK/c2.code') = 200 ] && [ \$(cat '$WORK/c3.code') = 200 ]"
s2=$(samples "$WORK/c2.pb.gz") s3=$(samples "$WORK/c3.pb.gz")
say "samples: 2 s window $s2, 3 s window $s3"
check "the 3 s window holds more samples than the 2 s one (x1.2 at least)" \
	awk -v a="$s3" -v b="$s2" 'BEGIN { exit !(b > 0 && a >= 1.2 * b) }'

OUT=$WORK/heap.pb.gz status "$url/heap" >/dev/null
live=$(heap_cum inuse_space keep_blocks "$WORK/heap.pb.gz")
say "heap: keep_blocks holds $live bytes in use (8 MiB kept)"
check "heap: inuse_space at keep_blocks is 8 MiB, within 30%" \
	ratio_within "$live" 8388608 0.7 1.3
check "heap: the default sample type is inuse_space" \
	bash -c "go tool pprof -top '$WORK/heap.pb.gz' 2>/dev/null | grep -q '^Type: inuse_space'"
go tool pprof -top "$url/allocs" >"$WORK/allocs.top" 2>&1
check "allocs: default sample type alloc_space" grep -q "^Type: alloc_space" "$WORK/allocs.top"
check "allocs: churn_alloc allocates" grep -q churn_alloc "$WORK/allocs.top"
go tool pprof -top "$url/mutex" >"$WORK/mutex.top" 2>&1
check "mutex: contend_lock waits" grep -q contend_lock "$WORK/mutex.top"
# Go's semantics: allocs and mutex count since the program started, so two pulls
# 3 s apart (the program some 6 s old at the first) differ by about 9/6, where
# per-interval tables (LIBPROF_INTERVAL=1) would stay level.
OUT=$WORK/allocs1.pb.gz status "$url/allocs" >/dev/null
OUT=$WORK/mutex1.pb.gz status "$url/mutex" >/dev/null
sleep 3
OUT=$WORK/allocs2.pb.gz status "$url/allocs" >/dev/null
OUT=$WORK/mutex2.pb.gz status "$url/mutex" >/dev/null
a1=$(heap_cum alloc_space churn_alloc "$WORK/allocs1.pb.gz") a2=$(heap_cum alloc_space churn_alloc "$WORK/allocs2.pb.gz")
m1=$(heap_cum contentions contend_lock "$WORK/mutex1.pb.gz") m2=$(heap_cum contentions contend_lock "$WORK/mutex2.pb.gz")
say "allocs since start: $a1 then $a2 bytes; mutex: $m1 then $m2 contentions"
check "allocs: cumulative since start (the later pull holds x1.2 at least)" \
	awk -v a="$a1" -v b="$a2" 'BEGIN { exit !(a > 0 && b >= 1.2 * a) }'
check "mutex: cumulative since start (the later pull holds x1.2 at least)" \
	awk -v a="$m1" -v b="$m2" 'BEGIN { exit !(a > 0 && b >= 1.2 * a) }'
curl -s -m 10 "$url/" >"$WORK/index.html"
check "the index lists profile, heap, allocs and mutex" \
	bash -c "grep -q 'href=\"profile\"' '$WORK/index.html' && grep -q 'href=\"heap\"' '$WORK/index.html' &&
		 grep -q 'href=\"allocs\"' '$WORK/index.html' && grep -q 'href=\"mutex\"' '$WORK/index.html'"

# ---- bad requests --------------------------------------------------------------------------
for q in "profile?seconds=abc" "profile?seconds=0" "profile?seconds=99999" "profile?seconds=" \
	 "heap?debug=1" "heap?seconds=5"; do
	code=$(status "$url/$q")
	say "$q -> $code: $(head -c 100 "$WORK/body")"
	check "$q: 400 with a reason" bash -c "[ '$code' = 400 ] && [ -s '$WORK/body' ]"
done
check "unknown profile: 404" test "$(status "$url/goroutine")" = 404
check "POST: 405" test "$(status -X POST "$url/heap")" = 405
stop busy "$PID"
check "the program ran to its end" grep -qx done "$WORK/busy.out"
n=$(profiles "$WORK/busy" | wc -l)
check "the continuous CPU files were written alongside ($n)" test "$n" -ge 3
files_total=$(samples_all() { for p in $(profiles "$WORK/busy"); do samples "$p"; done | awk '{ n += $1 } END { print n + 0 }'; }; samples_all)
say "samples in the continuous files: $files_total, in the pulled 3 s window: $s3"
check "the continuous files did not lose what the pulls saw" \
	awk -v a="$files_total" -v b="$s3" 'BEGIN { exit !(a >= b) }'

# ---- a stripped program (Debian's python3): go tool pprof reads it from the URL ------------
py=/usr/bin/python3
start py LIBPROF_PPROF_LISTEN=127.0.0.1:0 -- "$py" -c '
import os, time
while not os.path.exists("'"$WORK/stop.py"'"):
    sum(i * i for i in range(200000))'
go tool pprof -top "http://127.0.0.1:$PORT/debug/pprof/profile?seconds=1" >"$WORK/py.top" 2>&1
check "stripped program: go tool pprof reads the pulled profile (no symbol lookup fails)" \
	grep -q "Total samples" "$WORK/py.top"
check "Go's symbol service answers (POST 200, GET num_symbols)" \
	bash -c "[ \"\$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -d 0x1000 http://127.0.0.1:$PORT/debug/pprof/symbol)\" = 200 ] &&
		 curl -s -m 10 http://127.0.0.1:$PORT/debug/pprof/symbol | grep -q '^num_symbols: 1'"
stop py "$PID"

# ---- not asked: nothing loaded, no socket ---------------------------------------------------
start plain -- "$PROGS/pull_target" busy "$WORK/stop.plain"
sleep 0.5
lpid=$(pgrep -P "$PID" pull_target || echo "$PID")
check "without LIBPROF_PPROF_LISTEN libmicrohttpd is not loaded" \
	bash -c "grep -q libprof.so /proc/$lpid/maps && ! grep -q libmicrohttpd /proc/$lpid/maps"
check "without LIBPROF_PPROF_LISTEN no socket is open" \
	bash -c "! ls -l /proc/$lpid/fd | grep -q socket:"
stop plain "$PID"

# ---- the token -------------------------------------------------------------------------------
start tok LIBPROF_PPROF_LISTEN=:0 LIBPROF_PPROF_TOKEN=s3cret-token -- "$PROGS/pull_target" busy "$WORK/stop.tok"
url="http://127.0.0.1:$PORT/debug/pprof"
check "token: no Authorization -> 401" test "$(status "$url/heap")" = 401
check "token: a wrong token -> 401" test "$(status -H 'Authorization: Bearer nope' "$url/heap")" = 401
check "token: the right token -> 200 and a profile" \
	bash -c "[ \"\$(curl -s -m 10 -o '$WORK/t.pb.gz' -w '%{http_code}' -H 'Authorization: Bearer s3cret-token' '$url/heap')\" = 200 ] &&
		 go tool pprof -raw '$WORK/t.pb.gz' >/dev/null 2>&1"
tok_port=$PORT tok_pid=$PID

# ---- a port in use, a bad address ---------------------------------------------------------
start clash LIBPROF_PPROF_LISTEN=127.0.0.1:$tok_port -- "$PROGS/pull_target" busy "$WORK/stop.clash"
sleep 0.5
stop clash "$PID"
OUT=$WORK/cut.pb.gz status -H 'Authorization: Bearer s3cret-token' \
	"http://127.0.0.1:$tok_port/debug/pprof/profile?seconds=60" >"$WORK/cut.code" &
cut=$!
sleep 1
stop tok "$tok_pid"
wait $cut
check "a program exiting during a pull answers it with what there is" \
	bash -c "[ \$(cat '$WORK/cut.code') = 200 ] &&
		 go tool pprof -raw '$WORK/cut.pb.gz' 2>/dev/null | grep -q 'cut short: the program is exiting'"
grep "pprof" "$WORK/clash.err" | head -2 | sed 's/^/    /'
check "port in use: one warning naming the variable and address" \
	bash -c "[ \$(grep -c 'LIBPROF_PPROF_LISTEN=127.0.0.1:$tok_port: cannot listen (Address already in use); running without' '$WORK/clash.err') = 1 ]"
check "port in use: the program ran to its end" grep -qx done "$WORK/clash.out"
lp "$WORK/bad" LIBPROF_PPROF_LISTEN=example.com:80 -- /bin/echo hello >"$WORK/bad.out" 2>"$WORK/bad.err"
cat "$WORK/bad.err" | sed 's/^/    /'
check "bad address: one warning naming the variable, the value and the outcome" \
	bash -c "[ \$(wc -l <'$WORK/bad.err') = 1 ] && grep -q 'LIBPROF_PPROF_LISTEN=\"example.com:80\".*the pprof endpoint is off' '$WORK/bad.err'"
check "bad address: the program's output is unchanged" grep -qx hello "$WORK/bad.out"

# ---- profiles that are off; a non-loopback address named explicitly ----------------------
start off LIBPROF_PPROF_LISTEN=0.0.0.0:0 LIBPROF_HEAP_RATE=0 LIBPROF_CPU_HZ=0 -- \
	"$PROGS/pull_target" busy "$WORK/stop.off"
PORT=$(sed -n 's|.*pprof endpoint on http://0.0.0.0:\([0-9]*\)/.*|\1|p' "$WORK/off.err" | head -1)
check "0.0.0.0 named explicitly: served, with a warning that no token is set" \
	bash -c "[ -n '$PORT' ] && grep -q 'not only on this machine, and LIBPROF_PPROF_TOKEN is not set' '$WORK/off.err'"
check "heap profiling off: /heap is 404 saying so" \
	bash -c "[ \"\$(curl -s -m 10 -o '$WORK/body' -w '%{http_code}' http://127.0.0.1:$PORT/debug/pprof/heap)\" = 404 ] &&
		 grep -q LIBPROF_HEAP_RATE=0 '$WORK/body'"
check "CPU profiling off: /profile is 404 saying so" \
	bash -c "[ \"\$(curl -s -m 10 -o '$WORK/body' -w '%{http_code}' http://127.0.0.1:$PORT/debug/pprof/profile)\" = 404 ] &&
		 grep -q LIBPROF_CPU_HZ=0 '$WORK/body'"
stop off "$PID"

# ---- a program that closes every descriptor ---------------------------------------------
start closer LIBPROF_PPROF_LISTEN=127.0.0.1:0 -- "$PROGS/pull_target" closeall "$WORK/stop.closer"
for _ in $(seq 50); do [ -s "$WORK/closer.out" ] && break; sleep 0.1; done
check "closeall: the program's next open() still gets descriptor 3" grep -qx "first fd 3" "$WORK/closer.out"
check "closeall: the endpoint still serves after the sweep" \
	test "$(status "http://127.0.0.1:$PORT/debug/pprof/heap")" = 200
stop closer "$PID"
check "closeall: the program ran to its end" grep -qx done "$WORK/closer.out"

# ---- forked workers --------------------------------------------------------------------------
start fork0 LIBPROF_PPROF_LISTEN=127.0.0.1:0 -- "$PROGS/pull_target" fork "$WORK/stop.fork0" "$WORK/pids0"
parent_port=$PORT
for _ in $(seq 300); do [ "$(grep -c "pprof endpoint on" "$WORK/fork0.err")" -ge 3 ] && break; sleep 0.1; done
ports=$(sed -n 's|.*pprof endpoint on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORK/fork0.err" | sort -u | wc -l)
check "port 0: the parent and both workers each serve on a port of their own ($ports)" test "$ports" = 3
child=$(head -1 "$WORK/pids0")
child_port=$(sed -n "s|.*pprof endpoint on http://127.0.0.1:\([0-9]*\)/debug/pprof/ (pid $child).*|\1|p" "$WORK/fork0.err")
go tool pprof -top "http://127.0.0.1:$child_port/debug/pprof/profile?seconds=1" >"$WORK/child.top" 2>&1
check "a worker's own endpoint shows its hot_loop" grep -q hot_loop "$WORK/child.top"
check "the parent's endpoint still serves" \
	test "$(status "http://127.0.0.1:$parent_port/debug/pprof/heap")" = 200
stop fork0 "$PID"

fixed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start fork1 LIBPROF_PPROF_LISTEN=127.0.0.1:$fixed -- "$PROGS/pull_target" fork "$WORK/stop.fork1" "$WORK/pids1"
for _ in $(seq 50); do [ "$(wc -l <"$WORK/pids1" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
sleep 0.3
socks=0
for c in $(cat "$WORK/pids1"); do
	socks=$((socks + $(ls -l /proc/"$c"/fd 2>/dev/null | grep -c 'socket:')))
done
check "fixed port: the workers hold no socket (the parent's is closed in them)" test "$socks" = 0
check "fixed port: only the parent serves" test "$(grep -c 'pprof endpoint on' "$WORK/fork1.err")" -le 1
check "fixed port: the parent's endpoint serves" \
	test "$(status "http://127.0.0.1:$fixed/debug/pprof/heap")" = 200
stop fork1 "$PID"

# ---- exec: nothing inherited ---------------------------------------------------------------
lp "$WORK/exec" LIBPROF_PPROF_LISTEN=127.0.0.1:0 -- python3 -c '
import os, time
time.sleep(0.3)
os.execve("/bin/ls", ["ls", "-l", "/proc/self/fd/"], {})' >"$WORK/exec.out" 2>"$WORK/exec.err"
check "the program had an endpoint before exec" grep -q "pprof endpoint on" "$WORK/exec.err"
check "an exec'd program inherits no socket" bash -c "! grep -q 'socket:' '$WORK/exec.out'"

# ---- trace labels in pulled profiles -----------------------------------------------------------
start trace LIBPROF_PPROF_LISTEN=127.0.0.1:0 -- "$PROGS/trace_server" pool "$WORK/port"
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
pport=$PORT PORT=$(cat "$WORK/port")
check "the traced server serves its endpoint" test -n "$pport"
OUT=$WORK/traced.pb.gz status "http://127.0.0.1:$pport/debug/pprof/profile?seconds=3" >/dev/null &
puller=$!
sleep 0.3
tid=4bf92f3577b34da6a3ce929d0e0736aa
for i in 1 2 3; do
	curl -s -m 20 -o /dev/null -H "traceparent: 00-$tid-00f067aa0ba902b7-01" "http://127.0.0.1:$PORT/1/300"
done
wait $puller
curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/quit"
stop trace "$PID"
go tool pprof -top -tagfocus="trace_id=$tid" "$WORK/traced.pb.gz" >"$WORK/traced.top" 2>&1
check "the pulled profile carries the trace id of the requests" grep -q burn_1 "$WORK/traced.top"
check "... and their span id" \
	bash -c "go tool pprof -raw '$WORK/traced.pb.gz' 2>/dev/null | grep -q 'span_id:\[00f067aa0ba902b7\]'"
finish

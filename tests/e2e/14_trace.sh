#!/bin/bash
# Proves: W3C traceparent headers seen in the program's own socket reads label
# its samples. With a thread-pool server and an epoll server of ours, every CPU
# sample taken while handling a traced request carries that request's trace id
# and none carries another's (mislabels counted: zero); heap and lock samples
# taken inside traced requests carry the labels too; an untraced request's
# work is unlabelled; invalid traceparent values never become labels;
# python3's http.server (third-party) gets one trace id per request, on the
# handler's stack; LIBPROF_TRACE=0 turns it all off.
. "$(dirname "$0")/lib.sh"
RAW="python3 $(dirname "$0")/raw_samples.py"

# start_server DIR VAR=... -- CMD...: runs a server under libprof, waits for its port.
start_server() {
	local dir=$1; shift
	rm -f "$WORK/port"
	lp "$dir" "$@" >"$WORK/server.out" 2>"$WORK/server.err" &
	SERVER=$!
	for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
	PORT=$(cat "$WORK/port" 2>/dev/null)
}
stop_server() { # stop_server URL: asks the server to quit, waits (bounded)
	curl -s -m 5 "$1" >/dev/null 2>&1
	for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
	kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null
}
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT

# Request r goes to worker function K = r % 3 with trace id ...<r><K>; K = 3 is
# the untraced work. Four clients at once, each on one keep-alive connection
# that alternates traced and untraced requests.
client() {
	local c=$1 args=()
	for i in 0 1 2 3 4 5; do
		local r=$((c * 6 + i)) k=$(( (c * 6 + i) % 3 ))
		local tid
		tid=$(printf '4bf92f3577b34da6a3ce929d0e%05x%01x' "$r" "$k")
		[ ${#args[@]} -gt 0 ] && args+=(--next)
		args+=(-s -o /dev/null -H "traceparent: 00-$tid-00f067aa0ba902b7-01" "http://127.0.0.1:$PORT/$k/60")
		args+=(--next -s -o /dev/null "http://127.0.0.1:$PORT/3/30")
	done
	curl -m 60 "${args[@]}"
}

for shape in pool epoll; do
	out=$WORK/$shape
	start_server "$out" LIBPROF_MUTEX_RATE=1 LIBPROF_HEAP_RATE=8192 -- "$PROGS/trace_server" "$shape" "$WORK/port"
	check "$shape: the server started" test -n "$PORT"
	clients=()
	for c in 0 1 2 3; do client "$c" & clients+=($!); done
	wait "${clients[@]}"
	# invalid values: uppercase hex, all-zero trace id, version ff
	for bad in 00-4BF92F3577B34DA6A3CE929D0EBAD001-00f067aa0ba902b7-01 \
		   00-00000000000000000000000000000000-00f067aa0ba902b7-01 \
		   ff-4bf92f3577b34da6a3ce929d0ebad002-00f067aa0ba902b7-01; do
		curl -s -m 10 -o /dev/null -H "traceparent: $bad" "http://127.0.0.1:$PORT/3/20"
	done
	stop_server "http://127.0.0.1:$PORT/quit"
	go tool pprof -raw $(profiles "$out") >"$WORK/cpu.raw" 2>/dev/null
	$RAW owners burn_ <"$WORK/cpu.raw" >"$WORK/owners"
	cat "$WORK/owners" | sed 's/^/    burn_/'
	check "$shape: traced work was sampled" \
		awk '$1 < 3 { right += $2 } END { exit !(right > 20) }' "$WORK/owners"
	check "$shape: no CPU sample carries another request's trace id" \
		awk '{ wrong += $3 } END { exit wrong != 0 }' "$WORK/owners"
	check "$shape: CPU samples of traced requests are all labelled" \
		awk '$1 < 3 { un += $4 } END { exit un != 0 }' "$WORK/owners"
	check "$shape: the untraced request's samples carry no trace id" \
		awk '$1 == 3 { exit !($2 == 0 && $3 == 0) }' "$WORK/owners"
	$RAW traces <"$WORK/cpu.raw" >"$WORK/traces"
	check "$shape: one trace id per traced request" \
		test "$(grep -c '^4bf92f3577b34da6a3ce929d0e' "$WORK/traces")" -ge 10
	check "$shape: invalid traceparent values never appear" \
		bash -c "! grep -qi 'bad00' '$WORK/traces'"
	go tool pprof -raw $(profiles "$out" '*.heap.*') 2>/dev/null | $RAW owners alloc_ >"$WORK/heap"
	sed "s/^/    heap alloc_/" "$WORK/heap"
	check "$shape: allocation samples inside traced requests carry their trace id" \
		awk '$1 < 3 { right += $2; wrong += $3 + $4 } END { exit !(right > 0 && wrong == 0) }' "$WORK/heap"
	go tool pprof -raw $(profiles "$out" '*.mutex.*') 2>/dev/null | $RAW owners lock_ >"$WORK/mutex"
	sed "s/^/    mutex lock_/" "$WORK/mutex"
	[ "$shape" = pool ] &&      # one thread (epoll) never contends
	check "$shape: lock samples inside traced requests carry their trace id" \
		awk '$1 < 3 { right += $2; wrong += $3 + $4 } END { exit !(right > 0 && wrong == 0) }' "$WORK/mutex"
done

# LIBPROF_TRACE=0: the same traffic leaves no label.
start_server "$WORK/off" LIBPROF_TRACE=0 -- "$PROGS/trace_server" pool "$WORK/port"
client 0
stop_server "http://127.0.0.1:$PORT/quit"
check "LIBPROF_TRACE=0: no trace labels" \
	test -z "$(go tool pprof -raw $(profiles "$WORK/off") 2>/dev/null | $RAW traces)"

# python3's http.server, a third-party program.
cat >"$WORK/srv.py" <<'PY'
import http.server, sys, time
def handler_burn(ms):
    end = time.process_time() + ms / 1000.0
    while time.process_time() < end:
        pass
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/quit":
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
            raise SystemExit
        handler_burn(150)
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
try:
    s.serve_forever()
except SystemExit:
    pass
PY
start_server "$WORK/py" -- /usr/bin/python3 "$WORK/srv.py" "$WORK/port"
for t in 1 2 3; do
	curl -s -m 20 -o /dev/null -H "traceparent: 00-0af7651916cd43dd8448eb211c80319$t-b7ad6b716920333$t-01" \
		"http://127.0.0.1:$PORT/work"
done
stop_server "http://127.0.0.1:$PORT/quit"
tags=$(go tool pprof -tags $(profiles "$WORK/py") 2>/dev/null)
for t in 1 2 3; do
	check "python3: request $t's trace id is a label" grep -q "0af7651916cd43dd8448eb211c80319$t" <<<"$tags"
	check "python3: its span id too" grep -q "b7ad6b716920333$t" <<<"$tags"
done
focus=$(go tool pprof -top -tagfocus 'trace_id=^0af7651916cd43dd8448eb211c803192$' $(profiles "$WORK/py") 2>/dev/null)
check "python3: -tagfocus on one trace shows the handler's stack" grep -q "_PyEval_EvalFrameDefault" <<<"$focus"
finish

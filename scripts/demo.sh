#!/bin/bash
# `make demo`, the whole story on one machine: starts the embedded collector on
# a temporary database, runs an example HTTP service under libprof streaming
# to it, sends it requests with W3C traceparent headers (curl), then prints the
# page's address, the `go tool pprof` command for one trace and that trace's
# hottest functions. On a terminal it keeps serving until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/libprof-demo.XXXXXX")
collector="" service=""
cleanup() {
	[ -n "$service" ] && kill "$service" 2>/dev/null
	[ -n "$collector" ] && kill "$collector" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting the collector (build/libprof-collector) on a temporary database"
build/libprof-collector --listen 127.0.0.1:0 --db "$tmp/profiles.db" 2>"$tmp/collector.log" &
collector=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/collector.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$tmp/collector.log" | head -1)
[ -n "$addr" ] || { echo "demo: the collector did not start:"; cat "$tmp/collector.log"; exit 1; }

echo "== running the example service (tests/progs/trace_server.c) under libprof, streaming to $addr"
build/libprof run --endpoint "http://$addr" --service demo-shop --interval 1 -- \
	build/progs/trace_server pool "$tmp/port" >/dev/null 2>"$tmp/service.log" &
service=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

echo "== sending traced requests with curl"
trace=""
for i in 1 2 3 4 5 6; do
	k=$((i % 3)) ms=$((100 * (k + 1)))
	id=$(printf '4bf92f3577b34da6a3ce929d0e0e47%02d' "$i")
	curl -s -o /dev/null -H "traceparent: 00-$id-00f067aa0ba902b7-01" "http://127.0.0.1:$port/$k/$ms"
	echo "   GET /$k/$ms  trace_id $id"
	[ "$k" = 2 ] && trace=$id
done
curl -s -m 10 -o /dev/null "http://127.0.0.1:$port/quit" || true
wait "$service" 2>/dev/null || true
service=""

url="http://$addr/api/v1/profiles?service=demo-shop&type=cpu&trace_id=$trace"
echo
echo "== the flame graphs:       http://$addr/"
echo "== one trace with pprof:   go tool pprof -http=127.0.0.1:8080 '$url'"
echo "== that trace's hottest functions (go tool pprof -top):"
go tool pprof -top -nodecount=8 "$url" 2>/dev/null | sed -n '/flat%/,$p'
echo
echo "== traces the collector knows, heaviest first:"
curl -s "http://$addr/api/v1/traces?service=demo-shop&type=cpu" | head -c 600; echo
if [ -t 0 ] && [ -t 1 ]; then
	echo
	echo "The collector keeps serving at http://$addr/ : press Ctrl-C to stop."
	wait "$collector"
fi

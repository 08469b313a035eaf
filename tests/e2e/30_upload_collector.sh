#!/bin/bash
# Proves: profiled programs stream to our collector with both protocols. With
# LIBPROF_ENDPOINT (Pyroscope) and with LIBPROF_PROTOCOL=otlp, the collector's
# merged profile, read by go tool pprof, shows the program's hot function;
# the service name and resource attributes arrive; nothing is spooled; the
# traced requests of a server come back through /api/v1/traces and the trace
# filter. A program that does not stream never maps libcurl, one that streams
# does; and nothing libcurl opens leaks into a program started with exec.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"
. "$(dirname "$0")/upload_lib.sh"

start_collector "$WORK/db" || exit 1

# --- burn, both protocols ------------------------------------------------------
for proto in pyroscope otlp; do
	out=$WORK/out-$proto
	if [ $proto = pyroscope ]; then
		net=(LIBPROF_ENDPOINT="$URL")
	else
		net=(LIBPROF_PROTOCOL=otlp OTEL_EXPORTER_OTLP_ENDPOINT="$URL")
	fi
	lp "$out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.5 OTEL_SERVICE_NAME="burn-$proto" \
		OTEL_RESOURCE_ATTRIBUTES="deployment.environment=e2e,team=core%2Cplatform" "${net[@]}" \
		-- "$PROGS/burn" ratio 1200 400 >"$WORK/$proto.stdout" 2>"$WORK/$proto.err"
	check "$proto: the program's output and status are unchanged" \
		grep -qx "burn ratio done" "$WORK/$proto.stdout"
	n=$(produced "$WORK/$proto.err")
	d=$(grep -c 'upload: delivered' "$WORK/$proto.err")
	say "$proto: $n profiles produced, $d delivered, $(spooled "$out") spooled"
	check "$proto: profiles were produced" test "$n" -ge 3
	check "$proto: every profile was delivered" eq "$d" "$n"
	check "$proto: none was spooled" eq "$(spooled "$out")" 0
	check "$proto: no warning" bash -c "! grep -v 'libprof: upload:\|debug\|libprof: wrote\|profile: \|streaming\|profiling\|exporter thread' '$WORK/$proto.err' | grep -q ."
	ptop -sample_index=cpu "$URL/api/v1/profiles?service=burn-$proto&type=cpu" >"$WORK/$proto.top"
	check "$proto: the merged profile shows the hot function" has "$WORK/$proto.top" ' spin$'
	check "$proto: and its caller burn_a" has "$WORK/$proto.top" ' burn_a$'
done
# --- a program that closes every descriptor while libprof streams ------------------
out=$WORK/out-sweep
lp "$out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.5 OTEL_SERVICE_NAME=sweep LIBPROF_ENDPOINT="$URL" \
	-- "$PROGS/pull_target" latesweep "$WORK/stop.sweep" >"$WORK/sweep.stdout" 2>"$WORK/sweep.err" &
sweeper=$!
for _ in $(seq 100); do grep -q "first fd" "$WORK/sweep.stdout" && break; sleep 0.1; done
sleep 1.5
touch "$WORK/stop.sweep"
wait $sweeper
n=$(produced "$WORK/sweep.err")
d=$(grep -c 'upload: delivered' "$WORK/sweep.err")
say "sweep: $n profiles produced, $d delivered, $(spooled "$out") spooled"
check "sweep: the program swept its descriptors mid-run and still got fd 3" \
	grep -qx "first fd 3" "$WORK/sweep.stdout"
check "sweep: every profile was delivered, before and after the sweep" \
	bash -c "[ '$n' -ge 4 ] && [ '$d' = '$n' ] && [ '$(spooled "$out")' = 0 ]"

sqlite3 "$WORK/db" "select service, labels from profiles group by service" >"$WORK/labels"
sed 's/^/    /' "$WORK/labels"
check "pyroscope: the resource attributes arrive as labels" \
	has "$WORK/labels" '^burn-pyroscope\|\{"deployment_environment":"e2e","team":"core_platform"\}$'
check "otlp: the resource attributes arrive as labels" \
	has "$WORK/labels" '^burn-otlp\|\{"deployment.environment":"e2e","team":"core,platform"\}$'

# --- a traced server: trace ids come back --------------------------------------
for proto in pyroscope otlp; do
	if [ $proto = pyroscope ]; then
		tag=a
		net=(LIBPROF_ENDPOINT="$URL")
	else
		tag=b
		net=(LIBPROF_PROTOCOL=otlp OTEL_EXPORTER_OTLP_ENDPOINT="$URL" OTEL_EXPORTER_OTLP_COMPRESSION=gzip)
	fi
	rm -f "$WORK/port"
	lp_bg "$WORK/srv-$proto" LIBPROF_INTERVAL=1 OTEL_SERVICE_NAME="srv-$proto" "${net[@]}" \
		-- "$PROGS/trace_server" pool "$WORK/port" >/dev/null 2>"$WORK/srv-$proto.err"
	SERVER=$BGPID
	for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
	PORT=$(cat "$WORK/port")
	for k in 0 1 2; do
		curl -s -m 20 -o /dev/null -H "traceparent: 00-5ce0e9a56015fec5aadfa328ae398${tag}1${k}-00f067aa0ba902b7-01" \
			"http://127.0.0.1:$PORT/$k/250"
	done
	if [ $proto = pyroscope ]; then
		# libcurl is mapped once the first profile has been streamed
		for _ in $(seq 60); do grep -q libcurl "/proc/$SERVER/maps" && break; sleep 0.1; done
		check "a streaming program maps libcurl" grep -q 'libcurl' "/proc/$SERVER/maps"
	fi
	curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/quit"
	for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
	wait "$SERVER" 2>/dev/null
	check "$proto: the server exited" bash -c "! kill -0 $SERVER 2>/dev/null"
	curl -s "$URL/api/v1/traces?service=srv-$proto" >"$WORK/traces-$proto"
	for k in 0 1 2; do
		tid=5ce0e9a56015fec5aadfa328ae398${tag}1$k
		check "$proto: trace $k is listed" has "$WORK/traces-$proto" "\"trace_id\":\"$tid\""
		ptop -sample_index=cpu "$URL/api/v1/profiles?service=srv-$proto&type=cpu&trace_id=$tid" \
			>"$WORK/trace-$proto-$k"
		check "$proto: trace $k's profile shows burn_$k" has "$WORK/trace-$proto-$k" " burn_$k$"
		check "$proto: and no other request's function" hasnt "$WORK/trace-$proto-$k" \
			" burn_[^$k]$"
	done
done

# --- libcurl is not loaded by a program that does not stream -------------------
rm -f "$WORK/port"
lp_bg "$WORK/nostream" LIBPROF_INTERVAL=0.5 -- "$PROGS/trace_server" pool "$WORK/port" >/dev/null 2>&1
SERVER=$BGPID
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
curl -s -m 20 -o /dev/null "http://127.0.0.1:$(cat "$WORK/port")/0/300"
sleep 1.2                   # two intervals: profiles were written as files
check "a program that does not stream writes files" test -n "$(profiles "$WORK/nostream")"
check "and never maps libcurl" bash -c "grep -q libprof.so /proc/$SERVER/maps && ! grep -q libcurl /proc/$SERVER/maps"
curl -s -m 5 -o /dev/null "http://127.0.0.1:$(cat "$WORK/port")/quit"
wait "$SERVER" 2>/dev/null

# --- nothing of libcurl's leaks into exec'd programs ---------------------------
cat >"$WORK/execer.py" <<'PY'
import os, sys, time
end = time.process_time() + 1.2
while time.process_time() < end:
    pass
os.execv("/bin/ls", ["ls", "-l", "/proc/self/fd/"])
PY
lp "$WORK/execer" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.3 LIBPROF_FOLLOW_EXEC=0 LIBPROF_ENDPOINT="$URL" \
	-- /usr/bin/python3 "$WORK/execer.py" >"$WORK/fds" 2>"$WORK/execer.err"
sed 's/^/    /' "$WORK/fds"
check "the program streamed before exec" grep -q 'upload: delivered' "$WORK/execer.err"
check "the exec'd program inherits no socket" hasnt "$WORK/fds" 'socket:'
finish

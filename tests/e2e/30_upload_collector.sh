#!/bin/bash
# Proves: profiled programs stream to our collector with both protocols. With
# LIBPROF_ENDPOINT (Pyroscope) and with LIBPROF_PROTOCOL=otlp, the collector's
# merged profile, read by go tool pprof, shows the program's hot function;
# the service name and resource attributes arrive; nothing is spooled; the
# traced requests of a server come back through /api/v1/traces and the trace
# filter, with CPU time in nanoseconds as their totals. One run's profiles,
# sent with OTLP and as pprof files, get the same answers from the collector:
# traces, profile counts, sample types, totals and the default type. A program
# that does not stream never maps libcurl, one that streams does; and nothing
# libcurl opens leaks into a program started with exec.
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
	check "$proto: no warning" bash -c "! grep -v 'libprof: upload:\|debug\|libprof: wrote\|profile: \|streaming\|profiling\|exporter thread\|libprof: unwinder:' '$WORK/$proto.err' | grep -q ."
	ptop -sample_index=cpu "$URL/api/v1/profiles?service=burn-$proto&type=cpu" >"$WORK/$proto.top"
	check "$proto: the merged profile shows the hot function" has "$WORK/$proto.top" ' spin$'
	check "$proto: and its caller burn_a" has "$WORK/$proto.top" ' burn_a$'
	ptop "$URL/api/v1/profiles?service=burn-$proto&type=cpu" >"$WORK/$proto.default"
	check "$proto: go tool pprof shows cpu by default, as in libprof's files" \
		has "$WORK/$proto.default" '^Type: cpu$'
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
		# whole 10 ms periods of CPU time: a sample count added to it would show
		check "$proto: trace $k's total is CPU time in nanoseconds" has "$WORK/traces-$proto" \
			"\"trace_id\":\"$tid\",\"total\":[0-9]+0000,\"unit\":\"nanoseconds\""
		ptop -sample_index=cpu "$URL/api/v1/profiles?service=srv-$proto&type=cpu&trace_id=$tid" \
			>"$WORK/trace-$proto-$k"
		check "$proto: trace $k's profile shows burn_$k" has "$WORK/trace-$proto-$k" " burn_$k$"
		check "$proto: and no other request's function" hasnt "$WORK/trace-$proto-$k" \
			" burn_[^$k]$"
	done
done

# --- one run, both protocols: the same answers ----------------------------------
# The server streams OTLP to the test receiver, which keeps each request and
# refuses it (400): libprof then spools the same profiles as pprof files. The
# requests go to the collector's OTLP endpoint (service same-otlp), the files
# to its Pyroscope one (same-pyroscope), and every answer must agree: traces
# (totals, units, profile counts), profile counts, and the merged profiles'
# sample types, default type and totals per sample type.
mkdir -p "$WORK/same-req"
start_receiver same --plan 400 --save "$WORK/same-req" || exit 1
rm -f "$WORK/port"
lp_bg "$WORK/same-out" LIBPROF_INTERVAL=1 LIBPROF_HEAP_RATE=8192 LIBPROF_MUTEX_RATE=1 \
	LIBPROF_PROTOCOL=otlp OTEL_EXPORTER_OTLP_ENDPOINT="$RURL" OTEL_SERVICE_NAME=same-otlp \
	-- "$PROGS/trace_server" pool "$WORK/port" >/dev/null 2>"$WORK/same.err"
SERVER=$BGPID
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port")
# traced MS CONNECTIONS REQUESTS: per trace K, CONNECTIONS at once, each with
# REQUESTS of /K/MS
traced() {
	local pids=() args k
	for k in 0 1 2; do
		for _ in $(seq "$2"); do
			args=()
			for _ in $(seq "$3"); do
				args+=(--next -s -o /dev/null -H \
				       "traceparent: 00-5ce0e9a56015fec5aadfa328ae398c1$k-00f067aa0ba902b7-01" \
				       "http://127.0.0.1:$PORT/$k/$1")
			done
			curl -m 30 "${args[@]:1}" &
			pids+=($!)
		done
	done
	wait "${pids[@]}"
}
traced 300 1 2              # 600 ms of CPU per trace
traced 0 3 4                # 9 connections keep the 3 workers contending for the lock
curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/quit"
for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
wait "$SERVER" 2>/dev/null
n_req=$(ls "$WORK"/same-req/req-*.bin 2>/dev/null | wc -l)
say "same run: $n_req OTLP requests kept, $(spooled "$WORK/same-out") profiles spooled"
check "same run: every refused OTLP request was spooled as pprof" eq "$(spooled "$WORK/same-out")" "$n_req"
check "same run: CPU, heap and mutex profiles" bash -c "ls '$WORK/same-out' | grep -q '\.cpu\.' &&
	ls '$WORK/same-out' | grep -q '\.heap\.' && ls '$WORK/same-out' | grep -q '\.mutex\.'"
bad=0
for f in "$WORK"/same-req/req-*.bin; do
	[ "$(code -H 'Content-Type: application/x-protobuf' --data-binary @"$f" \
		"$URL/v1development/profiles")" = 200 ] && [ ! -s "$WORK/body" ] || bad=$((bad + 1))
done
for f in $(profiles "$WORK/same-out" '*'); do
	[ "$(code --data-binary @"$f" "$URL/ingest?name=same-pyroscope&format=pprof")" = 200 ] ||
		bad=$((bad + 1))
done
check "same run: the collector took every request and every file whole" eq "$bad" 0
for type in cpu heap mutex; do
	check "same run, $type: the collector answers the same for both protocols" \
		python3 - "$URL" "$type" <<'PY'
import json, sys, urllib.request
url, typ = sys.argv[1], sys.argv[2]
get = lambda path: json.load(urllib.request.urlopen(url + path))

def answers(svc):
    q = "service=%s&type=%s&from=now-1h" % (svc, typ)
    a = {"traces": [{k: t[k] for k in ("trace_id", "total", "unit", "profiles")}
                    for t in get("/api/v1/traces?" + q)["traces"]],
         "profiles": [x["profiles"] for s in get("/api/v1/services")["services"]
                      if s["name"] == svc for x in s["types"] if x["type"] == typ]}
    f = get("/api/v1/flamegraph?" + q)
    names = [t["type"] for t in f["sample_types"]]
    a["sample_types"], a["default"] = f["sample_types"], names[f["sample_index"]]
    a["totals"] = {n: get("/api/v1/flamegraph?%s&sample_index=%s" % (q, n))["total"] for n in names}
    return a

p, o = answers("same-pyroscope"), answers("same-otlp")
print("    %s traces: %s" % (typ, " ".join("%s=%d %s" % (t["trace_id"][-3:], t["total"], t["unit"])
                                         for t in p["traces"])))
if p != o or not p["traces"]:
    print("    pyroscope: " + json.dumps(p) + "\n    otlp:      " + json.dumps(o))
    sys.exit(1)
PY
done
for type in cpu heap mutex; do
	want=$(ptop $(profiles "$WORK/same-out" "*.$type.*") | grep '^Type:')
	for proto in pyroscope otlp; do
		got=$(ptop "$URL/api/v1/profiles?service=same-$proto&type=$type" | grep '^Type:')
		check "same run, $proto: go tool pprof's default for $type is the files' ($want)" \
			eq "$got" "$want"
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

#!/bin/bash
# Proves: the collector stores profiles written by libprof and sent with the
# Pyroscope ingest API (raw pprof and multipart) and OTLP (links become
# trace_id/span_id labels), and serves them merged to `go tool pprof` from its
# URL; a trace_id query returns only that trace's samples; the services and
# traces lists are right (heaviest trace first); a restart keeps the data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"

DB=$WORK/data/c.db
start_collector "$DB" || finish
check "a fresh database directory is private (0700)" \
	test "$(stat -c %a "$WORK/data")" = 700
check "/healthz answers ok" is 200 "$URL/healthz"

# --- profiles written by the library, uploaded raw and as multipart ----------
out=$WORK/out
lp "$out" LIBPROF_INTERVAL=1 OTEL_SERVICE_NAME=burner -- "$PROGS/burn" ratio 300 900 >/dev/null
files=$(profiles "$out")
check "libprof wrote profiles" test -n "$files"
now=$(date +%s)
n=0
for f in $files; do
	n=$((n + 1))
	if [ $((n % 2)) = 1 ]; then
		check "raw pprof upload $n: 200" is 200 --data-binary @"$f" \
			"$URL/ingest?name=burner%7Benv%3Dtest%2Chost%3Dh1%7D&from=$((now - 60))&until=$now&spyName=libprof&format=pprof"
	else
		check "multipart upload $n: 200" is 200 -F "profile=@$f" \
			-F 'sample_type_config={"cpu":{"units":"nanoseconds"}};type=application/json' \
			"$URL/ingest?name=burner%7Benv%3Dtest%7D&from=$((now - 60))&until=$now&spyName=libprof"
	fi
done
ptop -unit=ms "$URL/api/v1/profiles?service=burner&type=cpu" >"$WORK/top"
check "go tool pprof reads the merged profile from the URL" has "$WORK/top" "Type: cpu"
check "the merged profile shows burn_a" has "$WORK/top" " burn_a$"
check "the merged profile shows burn_b" has "$WORK/top" " burn_b$"
ptop -unit=ms $files >"$WORK/top_files"
share() { awk -v fn="$1" '$NF == fn { sub(/%/, "", $5); print $5 + 0 }' "$2"; }
check "burn_a's share is the same merged as in the files" \
	within "$(share burn_a "$WORK/top")" "$(share burn_a "$WORK/top_files")" 0.5
check "the total is the same merged as in the files" \
	within "$(total_ms_of "$WORK/top")" "$(total_ms_of "$WORK/top_files")" 1
check "a service with no profiles: 404" is 404 "$URL/api/v1/profiles?service=nobody"

# --- labelled profiles: trace filtering -----------------------------------
T1=0123456789abcdef0123456789abcdef
T2=fedcba9876543210fedcba9876543210
$MKPROFILE pprof "$WORK/t1.pb.gz" "trace_hot_a,handler,main@$T1/1111222233334444=300000000" \
	"trace_hot_b,handler,main@$T2/5555666677778888=100000000" "untraced_idle,main=50000000"
$MKPROFILE pprof "$WORK/t2.pb.gz" "trace_hot_a,handler,main@$T1/1111222233334444=200000000" \
	"trace_other,main=70000000"
check "labelled pprof 1 ingested" is 200 --data-binary @"$WORK/t1.pb.gz" "$URL/ingest?name=api&format=pprof"
check "labelled pprof 2 ingested (not gzipped)" is 200 --data-binary @<(gunzip -c "$WORK/t2.pb.gz") \
	"$URL/ingest?name=api&format=pprof"
praw "$URL/api/v1/profiles?service=api&type=cpu&trace_id=$T1" >"$WORK/raw1"
check "trace query: its function is there" has "$WORK/raw1" "trace_hot_a"
check "trace query: other traces' samples are not" hasnt "$WORK/raw1" "trace_hot_b|$T2"
check "trace query: untraced samples are not" hasnt "$WORK/raw1" "untraced_idle|trace_other"
check "trace query: samples keep their span label" has "$WORK/raw1" "span_id:\[1111222233334444\]"
check "trace query: the two profiles' samples are summed (50 + 20 samples)" \
	has "$WORK/raw1" "^ +50 +500000000: "
check "trace query with uppercase hex works too" \
	is 200 "$URL/api/v1/profiles?service=api&trace_id=$(echo $T1 | tr a-f A-F)"
check "a malformed trace id: 400" is 400 "$URL/api/v1/profiles?trace_id=xyz"

curl -s "$URL/api/v1/traces?service=api&type=cpu" >"$WORK/traces"
check "traces list: valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/traces"
check "traces list: heaviest first, totals summed over profiles" python3 - "$WORK/traces" "$T1" "$T2" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["traces"]
ok = [x["trace_id"] for x in t] == [sys.argv[2], sys.argv[3]] and t[0]["total"] == 500000000 \
     and t[0]["profiles"] == 2 and t[1]["total"] == 100000000 and t[0]["unit"] == "nanoseconds"
print("    " + json.dumps(t)) if not ok else None
sys.exit(0 if ok else 1)
PY
check "traces list: limit=1 keeps the heaviest" bash -c \
	"curl -s '$URL/api/v1/traces?service=api&limit=1' | grep -c trace_id | grep -qx 1"

# --- OTLP --------------------------------------------------------------------
T3=00112233445566778899aabbccddeeff
$MKPROFILE otlp "$WORK/o.bin" --service otlp-svc "otlp_traced,otlp_main@$T3/aaaabbbbccccdddd=200000000" \
	"otlp_untraced,otlp_main=70000000"
check "OTLP export: 200" is 200 -H 'Content-Type: application/x-protobuf' --data-binary @"$WORK/o.bin" \
	"$URL/v1development/profiles"
check "OTLP export: the answer is an empty ExportProfilesServiceResponse" test ! -s "$WORK/body"
gzip -c "$WORK/o.bin" >"$WORK/o.bin.gz"
check "OTLP export, gzip: 200" is 200 -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: gzip' --data-binary @"$WORK/o.bin.gz" "$URL/v1development/profiles"
praw "$URL/api/v1/profiles?service=otlp-svc&trace_id=$T3" >"$WORK/raw3"
check "OTLP: the link became trace_id and span_id labels" \
	has "$WORK/raw3" "span_id:\[aaaabbbbccccdddd\] trace_id:\[$T3\]"
check "OTLP: the traced function is there, the untraced one not" \
	bash -c "grep -q otlp_traced '$WORK/raw3' && ! grep -q otlp_untraced '$WORK/raw3'"
check "OTLP: sample attributes became labels" has "$WORK/raw3" "http.route:\[GET /x\]"
curl -s "$URL/api/v1/traces?type=cpu" >"$WORK/traces_all"
check "traces of all services list the OTLP trace" has "$WORK/traces_all" "\"$T3\".*\"otlp-svc\""

curl -s "$URL/api/v1/services" >"$WORK/services"
check "services list: the three services, cpu" python3 - "$WORK/services" <<'PY'
import json, sys
s = {x["name"]: [t["type"] for t in x["types"]] for x in json.load(open(sys.argv[1]))["services"]}
ok = s == {"api": ["cpu"], "burner": ["cpu"], "otlp-svc": ["cpu"]}
print("    " + json.dumps(s)) if not ok else None
sys.exit(0 if ok else 1)
PY

# --- a restart keeps the data ------------------------------------------------
check "SIGTERM stops the collector cleanly" stop_collector
start_collector "$DB" || finish
praw "$URL/api/v1/profiles?service=api&trace_id=$T1" >"$WORK/raw1b"
check "after a restart the trace query answers the same" \
	has "$WORK/raw1b" "^ +50 +500000000: "
ptop "$URL/api/v1/profiles?service=burner" >"$WORK/top2"
check "after a restart the library's profiles are there" has "$WORK/top2" " burn_a$"
check "the database passes an integrity check" \
	bash -c "[ \"\$(sqlite3 '$DB' 'PRAGMA integrity_check')\" = ok ]"
finish

#!/bin/bash
# Proves: the collector answers bad requests with the right status and a
# one-line reason, and keeps serving: wrong or missing token 401, unknown path
# 404, wrong method 405, malformed pprof / gzip / multipart / OTLP / parameters
# 400, wrong content type 415, bodies over the limit as sent or once inflated
# (gzip bombs, huge multipart, chunked uploads) 413, OTLP profiles with bad
# indexes rejected alone (partial success). Bad options exit 2 with one line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"

# --- options -----------------------------------------------------------------
for bad in "--retention 7x" "--listen nowhere" "--listen 127.0.0.1:99999" "--max-body 12Q" \
	   "--threads 0" "--log loud" "--nonsense 1" "--retention-interval 0"; do
	# shellcheck disable=SC2086
	"$COLLECTOR" $bad --db "$WORK/never.db" >/dev/null 2>"$WORK/err"
	rc=$?
	check "bad option '$bad': exit 2 with one line naming it" \
		bash -c "[ $rc = 2 ] && [ \$(wc -l <'$WORK/err') = 1 ] && grep -q -- '${bad%% *}' '$WORK/err'"
done
LIBPROF_COLLECTOR_MAX_PROFILE=lots "$COLLECTOR" --db "$WORK/never.db" 2>"$WORK/err"
check "a bad environment value: exit 2 naming the variable" \
	bash -c "[ $? = 2 ] && grep -q LIBPROF_COLLECTOR_MAX_PROFILE '$WORK/err'"
check "no database was created by a refused start" test ! -e "$WORK/never.db"

TOKEN=s3cret-token
export LIBPROF_COLLECTOR_TOKEN=$TOKEN
start_collector "$WORK/c.db" --max-body 1MiB --max-profile 4MiB || finish
unset LIBPROF_COLLECTOR_TOKEN
A=(-H "Authorization: Bearer $TOKEN")
T1=0123456789abcdef0123456789abcdef
$MKPROFILE pprof "$WORK/good.pb.gz" "good_func,main@$T1=100000000"
gunzip -c "$WORK/good.pb.gz" >"$WORK/good.pb"

# --- auth, paths, methods ------------------------------------------------------------
check "no token: 401" is 401 "$URL/healthz"
check "wrong token: 401" is 401 -H "Authorization: Bearer nope" "$URL/api/v1/services"
check "token as Basic: 401" is 401 -H "Authorization: Basic $TOKEN" "$URL/api/v1/services"
check "no token on ingest: 401" is 401 --data-binary @"$WORK/good.pb.gz" "$URL/ingest?name=x&format=pprof"
check "right token: 200" is 200 "${A[@]}" "$URL/healthz"
check "unknown path: 404" is 404 "${A[@]}" "$URL/api/v2/nothing"
check "GET /ingest: 405" is 405 "${A[@]}" "$URL/ingest"
check "POST /api/v1/services: 405" is 405 "${A[@]}" -d x "$URL/api/v1/services"
check "a good profile with the token: 200" is 200 "${A[@]}" --data-binary @"$WORK/good.pb.gz" \
	"$URL/ingest?name=good&format=pprof"

# --- Pyroscope ingest: malformed -----------------------------------------------------
one_line() { [ "$(wc -l <"$WORK/body")" = 1 ] || { say "  body: $(cat "$WORK/body")"; return 1; }; }
bad400() {
	local what=$1; shift
	check "$what: 400 with a one-line reason" bash -c 'is 400 "$@" && one_line' _ "$@"
}
export -f is code one_line say
export WORK
head -c 60 "$WORK/good.pb" >"$WORK/trunc.pb"
head -c 100 "$WORK/good.pb.gz" >"$WORK/trunc.pb.gz"
head -c 4096 /dev/urandom >"$WORK/noise"
bad400 "truncated protobuf" "${A[@]}" --data-binary @"$WORK/trunc.pb" "$URL/ingest?name=x&format=pprof"
bad400 "truncated gzip" "${A[@]}" --data-binary @"$WORK/trunc.pb.gz" "$URL/ingest?name=x&format=pprof"
bad400 "random bytes" "${A[@]}" --data-binary @"$WORK/noise" "$URL/ingest?name=x&format=pprof"
bad400 "empty body" "${A[@]}" -X POST "$URL/ingest?name=x&format=pprof"
bad400 "no name" "${A[@]}" --data-binary @"$WORK/good.pb.gz" "$URL/ingest?format=pprof"
bad400 "bad labels in name" "${A[@]}" --data-binary @"$WORK/good.pb.gz" "$URL/ingest?name=x%7Bnoequals%7D&format=pprof"
bad400 "bad from" "${A[@]}" --data-binary @"$WORK/good.pb.gz" "$URL/ingest?name=x&from=yesterday&format=pprof"
bad400 "format=jfr" "${A[@]}" --data-binary @"$WORK/good.pb.gz" "$URL/ingest?name=x&format=jfr"
bad400 "multipart without a profile part" "${A[@]}" -F "other=@$WORK/good.pb.gz" "$URL/ingest?name=x"
bad400 "multipart with a truncated profile" "${A[@]}" -F "profile=@$WORK/trunc.pb" "$URL/ingest?name=x"
bad400 "multipart cut short" "${A[@]}" -H 'Content-Type: multipart/form-data; boundary=XyZ' \
	--data-binary $'--XyZ\r\nContent-Disposition: form-data; name="profile"\r\n\r\nabc' "$URL/ingest?name=x"
bad400 "multipart without a boundary" "${A[@]}" -H 'Content-Type: multipart/form-data' \
	--data-binary @"$WORK/good.pb" "$URL/ingest?name=x"
# a profile whose sample has one value for two sample types
protoc -I"$ROOT/proto" --encode=perftools.profiles.Profile profile.proto >"$WORK/inconsistent.pb" <<'TXT'
sample_type { type: 1 unit: 2 } sample_type { type: 1 unit: 2 }
sample { value: 5 } string_table: "" string_table: "x" string_table: "y"
TXT
bad400 "an inconsistent profile" "${A[@]}" --data-binary @"$WORK/inconsistent.pb" "$URL/ingest?name=x&format=pprof"
protoc -I"$ROOT/proto" --encode=perftools.profiles.Profile profile.proto >"$WORK/dangling.pb" <<'TXT'
sample_type { type: 1 unit: 2 } sample { location_id: 7 value: 5 }
string_table: "" string_table: "x" string_table: "y"
TXT
bad400 "a sample pointing at no location" "${A[@]}" --data-binary @"$WORK/dangling.pb" "$URL/ingest?name=x&format=pprof"

# --- limits ---------------------------------------------------------------------------
head -c 200M /dev/zero | gzip -1 >"$WORK/bomb.gz"
check "gzip bomb as pprof (200 MiB inflated, $(stat -c %s "$WORK/bomb.gz") B sent): 413" \
	is 413 "${A[@]}" --data-binary @"$WORK/bomb.gz" "$URL/ingest?name=x&format=pprof"
check "gzip bomb in a multipart part: 413" is 413 "${A[@]}" -F "profile=@$WORK/bomb.gz" "$URL/ingest?name=x"
check "gzip bomb as OTLP: 413" is 413 "${A[@]}" -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: gzip' --data-binary @"$WORK/bomb.gz" "$URL/v1development/profiles"
head -c 3M /dev/urandom >"$WORK/big"
check "huge multipart (3 MiB, limit 1 MiB): 413" is 413 "${A[@]}" -F "profile=@$WORK/big" "$URL/ingest?name=x"
check "huge chunked upload without Content-Length: 413" is 413 "${A[@]}" \
	-H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big" "$URL/ingest?name=x&format=pprof"

# --- OTLP ---------------------------------------------------------------------------------
$MKPROFILE otlp "$WORK/o.bin" --service otlp-svc "o_func,o_main@$T1=100000000"
check "OTLP as JSON: 415" is 415 "${A[@]}" -H 'Content-Type: application/json' -d '{}' "$URL/v1development/profiles"
check "OTLP without a content type: 415" is 415 "${A[@]}" --data-binary @"$WORK/o.bin" \
	-H 'Content-Type:' "$URL/v1development/profiles"
check "OTLP with Content-Encoding br: 415" is 415 "${A[@]}" -H 'Content-Type: application/x-protobuf' \
	-H 'Content-Encoding: br' --data-binary @"$WORK/o.bin" "$URL/v1development/profiles"
head -c 150 "$WORK/o.bin" >"$WORK/o.trunc"
bad400 "truncated OTLP request" "${A[@]}" -H 'Content-Type: application/x-protobuf' \
	--data-binary @"$WORK/o.trunc" "$URL/v1development/profiles"
OTLP_REQ=opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest
OTLP_RESP=opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceResponse
protoc -I"$ROOT/proto" --decode=$OTLP_REQ otlp_profiles_service.proto <"$WORK/o.bin" |
	sed 's/stack_index: 1/stack_index: 99/' >"$WORK/o_bad.txt"
# one good profile and one with a stack index out of range, in one request
python3 - "$WORK/o_bad.txt" "$WORK/o_mixed.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
good = t.replace("stack_index: 99", "stack_index: 1")
m = re.search(r"    profiles \{.*?\n    \}\n", good, re.S)
bad = re.search(r"    profiles \{.*?\n    \}\n", t, re.S).group(0)
open(sys.argv[2], "w").write(good.replace(m.group(0), m.group(0) + bad))
PY
protoc -I"$ROOT/proto" --encode=$OTLP_REQ otlp_profiles_service.proto <"$WORK/o_mixed.txt" >"$WORK/o_mixed.bin"
check "OTLP with one bad profile of two: 200" is 200 "${A[@]}" -H 'Content-Type: application/x-protobuf' \
	--data-binary @"$WORK/o_mixed.bin" "$URL/v1development/profiles"
protoc -I"$ROOT/proto" --decode=$OTLP_RESP otlp_profiles_service.proto <"$WORK/body" >"$WORK/resp.txt"
check "the response reports a partial success: 1 rejected, with the reason" \
	bash -c "grep -q 'rejected_profiles: 1' '$WORK/resp.txt' && grep -q 'stack index out of range' '$WORK/resp.txt'"
check "the good profile of that request was stored" \
	bash -c "curl -s ${A[*]@Q} '$URL/api/v1/services' | grep -q otlp-svc"

# --- query parameters -----------------------------------------------------------------------
bad400 "type=Not-A-Type" "${A[@]}" "$URL/api/v1/profiles?type=Not-A-Type"
bad400 "from=garbage" "${A[@]}" "$URL/api/v1/profiles?from=garbage"
bad400 "from after until" "${A[@]}" "$URL/api/v1/traces?from=now&until=now-1h"
bad400 "limit=0" "${A[@]}" "$URL/api/v1/traces?limit=0"
check "RFC 3339 times are accepted" is 200 "${A[@]}" \
	"$URL/api/v1/traces?from=2020-01-01T00:00:00Z&until=2099-01-01T00:00:00%2B02:00"

check "after all that the collector still serves" bash -c "kill -0 $CPID && is 200 ${A[*]@Q} $URL/healthz"
curl -s "${A[@]}" -o "$WORK/good_q.pb.gz" "$URL/api/v1/profiles?service=good"
check "and the good profile is intact" bash -c "go tool pprof -top '$WORK/good_q.pb.gz' 2>/dev/null | grep -q good_func"
finish

#!/bin/bash
# Proves: what goes on the wire is right, as the test receiver records it.
# Pyroscope: POST /ingest with the service and labels in name, from/until
# around the run, spyName, the configured headers, and a multipart body whose
# `profile` part is a gzip pprof that go tool pprof reads (hot function in it)
# and whose `sample_type_config` names units and aggregation. OTLP: POST
# /v1development/profiles, application/x-protobuf (gzip when asked), bodies
# that protoc decodes against our proto, one Profile per sample type (4 for
# heap), build ids on mappings, and Links carrying the trace ids of traced
# requests. https works with a private CA given by LIBPROF_TLS_CA, and is
# refused (logged once, spooled) without it. Bad streaming variables: one
# warning each, header values never shown, the program unaffected.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"
. "$(dirname "$0")/upload_lib.sh"

# multipart BODY DIR: splits a multipart body into DIR/<field name> files.
multipart() {
	python3 - "$1" "$2" <<'PY'
import os, re, sys
body = open(sys.argv[1], "rb").read()
boundary = body.split(b"\r\n", 1)[0]
for part in body.split(boundary)[1:-1]:
    head, _, data = part[2:].partition(b"\r\n\r\n")
    name = re.search(rb'name="([^"]+)"', head).group(1).decode()
    open(os.path.join(sys.argv[2], name), "wb").write(data[:-2])
PY
}

# --- Pyroscope --------------------------------------------------------------------
mkdir -p "$WORK/py-bodies" "$WORK/py-parts"
start_receiver py --save "$WORK/py-bodies" || exit 1
t0=$(date +%s)
lp "$WORK/py-out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.5 LIBPROF_ENDPOINT="$RURL/" \
	OTEL_SERVICE_NAME=wire OTEL_RESOURCE_ATTRIBUTES="env=e2e,region=eu%20west" \
	LIBPROF_HEADERS="Authorization=Bearer%20s3cret, X-Test = yes" \
	-- "$PROGS/burn" ratio 1000 300 >"$WORK/py.stdout" 2>"$WORK/py.err"
t1=$(date +%s)
check "pyroscope: the program ran as usual" grep -qx "burn ratio done" "$WORK/py.stdout"
n=$(produced "$WORK/py.err")
check "pyroscope: every profile reached the receiver" eq "$(answered "$WORK/py.log" 200)" "$n"
python3 - "$WORK/py.log" "$t0" "$t1" >"$WORK/py.check" 2>&1 <<'PY'
import json, sys, urllib.parse
t0, t1 = int(sys.argv[2]), int(sys.argv[3])
for l in open(sys.argv[1]):
    r = json.loads(l)
    path, _, query = r["path"].partition("?")
    q = urllib.parse.parse_qs(query)
    assert path == "/ingest", path
    assert q["name"] == ["wire{env=e2e,region=eu west}"], q["name"]
    assert q["spyName"] == ["libprof"], q
    assert "format" not in q, q
    f, u = int(q["from"][0]), int(q["until"][0])
    assert t0 - 1 <= f < u <= t1 + 1, (t0, f, u, t1)
    assert r["content_type"].startswith("multipart/form-data; boundary="), r["content_type"]
    assert r["authorization"] == "Bearer s3cret", r["authorization"]
    assert r["x_test"] == "yes", r["x_test"]
print("ok")
PY
check "pyroscope: name, labels, times, spyName and headers are right" grep -qx ok "$WORK/py.check" ||
	sed 's/^/    /' "$WORK/py.check"
multipart "$WORK/py-bodies/req-0.bin" "$WORK/py-parts"
check "pyroscope: the profile part is gzip" \
	test "$(head -c2 "$WORK/py-parts/profile" | od -An -tx1 | tr -d ' ')" = 1f8b
cp "$WORK/py-parts/profile" "$WORK/py-first.pb.gz"
top "$WORK/py-first.pb.gz" >"$WORK/py.top"
check "pyroscope: go tool pprof reads it and sees the hot function" has "$WORK/py.top" ' spin$'
check "pyroscope: sample_type_config names units and aggregation" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
assert c["samples"] == {"units": "samples", "aggregation": "sum"}, c
assert c["cpu"] == {"units": "nanoseconds", "aggregation": "sum"}, c' "$WORK/py-parts/sample_type_config"

# --- OTLP, traced server ---------------------------------------------------------------
decode() { protoc --decode opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest \
	-I"$ROOT/proto" "$ROOT/proto/otlp_profiles_service.proto"; }
for comp in none gzip; do
	mkdir -p "$WORK/ot-$comp"
	start_receiver "ot-$comp" --save "$WORK/ot-$comp" || exit 1
	rm -f "$WORK/port"
	lp_bg "$WORK/ot-out-$comp" LIBPROF_LOG=debug LIBPROF_INTERVAL=1 LIBPROF_PROTOCOL=otlp \
		LIBPROF_HEAP_RATE=8192 OTEL_EXPORTER_OTLP_ENDPOINT="$RURL" \
		OTEL_EXPORTER_OTLP_COMPRESSION=$comp OTEL_EXPORTER_OTLP_HEADERS="X-Test=otlp%2C1" \
		-- "$PROGS/trace_server" pool "$WORK/port" >/dev/null 2>"$WORK/ot-$comp.err"
	for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
	PORT=$(cat "$WORK/port")
	for k in 0 1 2; do
		curl -s -m 20 -o /dev/null -H "traceparent: 00-0af7651916cd43dd8448eb211c8031${k}${k}-b7ad6b71692033${k}${k}-01" \
			"http://127.0.0.1:$PORT/$k/200"
	done
	curl -s -m 5 -o /dev/null "http://127.0.0.1:$PORT/quit"
	wait "$BGPID"
	n=$(produced "$WORK/ot-$comp.err")
	check "otlp/$comp: every profile reached the receiver" eq "$(answered "$WORK/ot-$comp.log" 200)" "$n"
	check "otlp/$comp: path, content type, encoding and headers" python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    assert r["path"] == "/v1development/profiles", r
    assert r["content_type"] == "application/x-protobuf", r
    assert r["content_encoding"] == ("gzip" if sys.argv[2] == "gzip" else ""), r
    assert r["x_test"] == "otlp,1", r' "$WORK/ot-$comp.log" "$comp"
	bad=0
	: >"$WORK/ot-$comp.txt"
	for b in "$WORK/ot-$comp"/req-*.bin; do
		if [ $comp = gzip ]; then gzip -dc <"$b"; else cat "$b"; fi | decode >>"$WORK/ot-$comp.txt" 2>&1 ||
			bad=$((bad + 1))
	done
	check "otlp/$comp: protoc decodes every body" eq "$bad" 0
done
txt=$WORK/ot-none.txt
check "otlp: service.name and the scope" has "$txt" 'string_value: "trace_server"'
check "otlp: the scope is libprof" has "$txt" 'name: "libprof"'
check "otlp: mappings carry the GNU build id" has "$txt" '"process.executable.build_id.gnu"'
check "otlp: samples use the stack table" has "$txt" 'stack_index: [1-9]'
check "otlp: traced samples link" has "$txt" 'link_index: [1-9]'
check "otlp: no trace id as a string attribute" hasnt "$txt" '"trace_id"|0af7651916cd'
python3 - "$txt" >"$WORK/links" <<'PY'
import codecs, re, sys
for m in re.finditer(r'trace_id: "((?:[^"\\]|\\.)*)"', open(sys.argv[1]).read()):
    raw = codecs.escape_decode(m.group(1).encode())[0]
    print(raw.hex())
PY
for k in 0 1 2; do
	check "otlp: request $k's trace id is a Link" grep -qx "0af7651916cd43dd8448eb211c8031$k$k" "$WORK/links"
done
check "otlp: link_table[0] is the zero link" grep -qx 00000000000000000000000000000000 "$WORK/links"
check "otlp: a heap request holds 4 profiles (one per sample type)" python3 -c '
import re, sys
reqs = open(sys.argv[1]).read().split("resource_profiles {")[1:]
counts = [len(re.findall(r"^    profiles \{", r, re.M)) for r in reqs]
print("    profiles per request:", counts)
assert 4 in counts and 2 in counts, counts' "$txt"

# --- https with a private CA ------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=libprof test CA" \
	-keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$WORK/srv.key" \
	-out "$WORK/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
	-days 2 -extfile "$WORK/ext" -out "$WORK/srv.pem" 2>/dev/null
start_receiver tls --tls "$WORK/srv.pem,$WORK/srv.key" || exit 1
HTTPS=${RURL/http:/https:}
lp "$WORK/tls-out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.5 LIBPROF_ENDPOINT="$HTTPS" LIBPROF_TLS_CA="$WORK/ca.pem" \
	-- "$PROGS/burn" ratio 800 200 >"$WORK/tls.stdout" 2>"$WORK/tls.err"
n=$(produced "$WORK/tls.err")
check "https: delivered with LIBPROF_TLS_CA" eq "$(answered "$WORK/tls.log" 200)" "$n"
check "https: nothing spooled" eq "$(spooled "$WORK/tls-out")" 0
lp "$WORK/notls-out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.5 LIBPROF_ENDPOINT="$HTTPS" \
	-- "$PROGS/burn" ratio 800 200 >"$WORK/notls.stdout" 2>"$WORK/notls.err"
n=$(produced "$WORK/notls.err")
check "https without the CA: the program ran as usual" grep -qx "burn ratio done" "$WORK/notls.stdout"
check "https without the CA: every profile spooled" eq "$(spooled "$WORK/notls-out")" "$n"
check "https without the CA: the refusal is logged once, at warn level" \
	eq "$(grep -v 'upload:' "$WORK/notls.err" | grep -ci 'refused.*certificate')" 1

# --- bad values -----------------------------------------------------------------------------
start_receiver bad || exit 1
env LIBPROF_PROTOCOL=pyroscope LIBPROF_ENDPOINT="$RURL" LIBPROF_HEADERS='Authorization=Bearer%zzs3cret' \
	OTEL_RESOURCE_ATTRIBUTES='team=%E2%28' LIBPROF_EXIT_TIMEOUT=forever LIBPROF_UPLOAD_QUEUE=0 \
	LIBPROF_OUTPUT_DIR="$WORK/bad-out" LD_PRELOAD="$LIB" "$PROGS/burn" ratio 100 100 \
	>"$WORK/bad.stdout" 2>"$WORK/bad.err"
rc=$?
sed 's/^/    /' "$WORK/bad.err"
check "bad values: the program's output and status are unchanged" \
	bash -c "[ $rc = 0 ] && grep -qx 'burn ratio done' '$WORK/bad.stdout'"
for v in LIBPROF_HEADERS OTEL_RESOURCE_ATTRIBUTES LIBPROF_EXIT_TIMEOUT LIBPROF_UPLOAD_QUEUE; do
	check "bad values: one line for $v" eq "$(grep -c "^libprof: $v" "$WORK/bad.err")" 1
done
check "bad values: a header's value is never shown" hasnt "$WORK/bad.err" 's3cret'
check "bad values: profiles still streamed" test "$(answered "$WORK/bad.log" 200)" -gt 0
env LIBPROF_PROTOCOL=otlp OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318 OTEL_EXPORTER_OTLP_TIMEOUT=soon \
	OTEL_EXPORTER_OTLP_PROTOCOL=grpc LIBPROF_OUTPUT_DIR="$WORK/bad2-out" LIBPROF_EXIT_TIMEOUT=0 \
	LD_PRELOAD="$LIB" "$PROGS/burn" ratio 50 50 >"$WORK/bad2.stdout" 2>"$WORK/bad2.err"
sed 's/^/    /' "$WORK/bad2.err"
for v in OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TIMEOUT OTEL_EXPORTER_OTLP_PROTOCOL; do
	check "bad OTel values: one line for $v" eq "$(grep -c "^libprof: $v" "$WORK/bad2.err")" 1
done
check "bad OTel values: the program ran as usual" grep -qx 'burn ratio done' "$WORK/bad2.stdout"
finish

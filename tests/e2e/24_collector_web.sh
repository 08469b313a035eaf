#!/bin/bash
# Proves: the collector's page works in a real browser. A collector holds
# labelled profiles of two services (known functions and trace ids); Debian's
# chromium, headless and driven by tests/e2e/browser/web_check.js
# (playwright-core), opens the page, chooses the service and type, and finds
# the flame graph drawn with the expected function; hover shows the function,
# value and share, search highlights, click zooms; a trace id from the traces
# list shows the flame graph of that trace alone. Screenshots go to
# build/test-artifacts/web-service.png, web-hover.png and web-trace.png.
# Also, through the API: /api/v1/flamegraph's tree (values, trace filter,
# sample_index), its node cap ("[other]" keeps every total exact), and that
# with --token the page's files are served while its data needs the token, and
# the page asks for the token and then draws.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"

NODE_MODULES=$ROOT/build/e2e-browser/node_modules
SHOTS=$ROOT/build/test-artifacts
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
for need in "$CHROMIUM" "$NODE_MODULES/playwright-core"; do
	[ -e "$need" ] || { say "FAIL: $need is missing (make e2e installs it)"; exit 1; }
done
mkdir -p "$SHOTS"

T1=4bf92f3577b34da6a3ce929d0e0e4736
T2=0af7651916cd43dd8448eb211c80319c
T3=11112222333344445555666677778888
now=$(date +%s)
$MKPROFILE pprof "$WORK/shop1.pb.gz" --time $((now - 120)) \
	"charge_card,checkout,serve_http,main@$T1/00f067aa0ba902b7=400000000" \
	"render_cart,cart_page,serve_http,main@$T2/b7ad6b7169203331=200000000" \
	"gc_sweep,main=100000000"
$MKPROFILE pprof "$WORK/shop2.pb.gz" --time $((now - 60)) \
	"charge_card,checkout,serve_http,main@$T1/00f067aa0ba902b7=100000000" \
	"db_query,cart_page,serve_http,main@$T2/b7ad6b7169203331=150000000" \
	"gc_sweep,main=50000000"
$MKPROFILE pprof "$WORK/api.pb.gz" --time $((now - 60)) "parse_json,handle,main@$T3=300000000"

start_collector "$WORK/c.db" || finish
for f in shop1 shop2; do
	check "$f ingested" is 200 --data-binary @"$WORK/$f.pb.gz" "$URL/ingest?name=shop&format=pprof"
done
check "api ingested" is 200 --data-binary @"$WORK/api.pb.gz" "$URL/ingest?name=api&format=pprof"

# --- the page's files -----------------------------------------------------------
check "GET / is the page" is 200 "$URL/"
check "the page is HTML that loads app.js and the flame-graph library" \
	bash -c "grep -q '<script src=\"/app.js\">' '$WORK/body' && grep -q '/flamegraph.js' '$WORK/body'"
check "GET /app.js" is 200 "$URL/app.js"
check "GET /flamegraph.js (d3-flame-graph, fetched by the build)" is 200 "$URL/flamegraph.js"
check "flamegraph.js holds d3-flame-graph" grep -q "d3-flame-graph" "$WORK/body"
check "GET /style.css" is 200 "$URL/style.css"
check "POST / is refused: 405" is 405 -X POST "$URL/"

# --- /api/v1/flamegraph -------------------------------------------------------------
curl -s "$URL/api/v1/flamegraph?service=shop&type=cpu" >"$WORK/fg.json"
check "the flame-graph tree: values summed over both profiles, children by name" \
	python3 - "$WORK/fg.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def find(n, path):
    for name in path:
        n = next(c for c in n.get("children", []) if c["name"] == name)
    return n
r = d["root"]
ok = (d["profiles"] == 2 and r["name"] == "all" and r["value"] == 1000000000 and d["total"] == r["value"]
      and find(r, ["main", "serve_http", "checkout", "charge_card"])["value"] == 500000000
      and find(r, ["main", "serve_http", "cart_page"])["value"] == 350000000
      and find(r, ["main", "gc_sweep"])["value"] == 150000000
      and [c["name"] for c in find(r, ["main"])["children"]] == ["gc_sweep", "serve_http"]
      and d["sample_types"][d["sample_index"]] == {"type": "cpu", "unit": "nanoseconds"})
print("    " + json.dumps(d)[:600]) if not ok else None
sys.exit(0 if ok else 1)
PY
curl -s "$URL/api/v1/flamegraph?service=shop&trace_id=$T2&sample_index=samples" >"$WORK/fg_t2.json"
check "with trace_id: only that trace's frames, in the sample type asked for" \
	python3 - "$WORK/fg_t2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = set()
def walk(n):
    names.add(n["name"]); [walk(c) for c in n.get("children", [])]
walk(d["root"])
ok = (names == {"all", "main", "serve_http", "cart_page", "render_cart", "db_query"}
      and d["sample_types"][d["sample_index"]]["type"] == "samples" and d["total"] == 35)
print("    " + json.dumps(d)[:600]) if not ok else None
sys.exit(0 if ok else 1)
PY
check "an unknown sample_index: 400" is 400 "$URL/api/v1/flamegraph?service=shop&sample_index=bogus"
check "max_nodes out of range: 400" is 400 "$URL/api/v1/flamegraph?service=shop&max_nodes=2"
check "a service with no profiles: 404" is 404 "$URL/api/v1/flamegraph?service=nobody"

# A wide profile: main calls 300 functions, leaf_i weighing i ms; cut to 40 nodes.
args=()
for i in $(seq 1 300); do args+=("leaf_$i,main=$((i * 1000000))"); done
$MKPROFILE pprof "$WORK/wide.pb.gz" "${args[@]}"
check "wide profile ingested" is 200 --data-binary @"$WORK/wide.pb.gz" "$URL/ingest?name=wide&format=pprof"
curl -s "$URL/api/v1/flamegraph?service=wide&max_nodes=40" >"$WORK/fg_wide.json"
check "max_nodes=40: 40 nodes, the 37 heaviest leaves kept, the rest in one [other], totals exact" \
	python3 - "$WORK/fg_wide.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
count, bad, others, leaves = 0, [], 0, []
def walk(n):
    global count, others
    count += 1
    kids = n.get("children", [])
    if n["name"] == "[other]":
        others += 1
        if not n.get("merged"): bad.append("an [other] without merged")
    if n["name"].startswith("leaf_"): leaves.append(int(n["name"][5:]))
    if kids and sum(c["value"] for c in kids) != n["value"]:
        bad.append("%s: children sum %d != %d" % (n["name"], sum(c["value"] for c in kids), n["value"]))
    for c in kids: walk(c)
walk(d["root"])
total = sum(i * 1000000 for i in range(1, 301))
ok = (count == d["shown"] == 40 and d["nodes"] == 1 + 1 + 300 and others == 1 and not bad
      and d["root"]["value"] == total and sorted(leaves) == list(range(264, 301)))
print("    nodes %d shown %d others %d leaves %s bad %s" % (count, d["shown"], others, sorted(leaves), bad)) if not ok else None
sys.exit(0 if ok else 1)
PY

# --- the page in chromium ---------------------------------------------------------------
# A second collector, with a token, for the page's token form.
URL1=$URL CPID1=$CPID
start_collector "$WORK/token.db" --token pagetoken || finish
TOKEN_URL=$URL
check "token collector: shop ingested with the token" is 200 -H "Authorization: Bearer pagetoken" \
	--data-binary @"$WORK/shop1.pb.gz" "$URL/ingest?name=shop&format=pprof"
check "token: GET / is served without it (the page holds no data)" is 200 "$URL/"
check "token: GET /app.js is served without it" is 200 "$URL/app.js"
check "token: the flame-graph API needs it: 401" is 401 "$URL/api/v1/flamegraph?service=shop"
check "token: the flame-graph API with it: 200" is 200 -H "Authorization: Bearer pagetoken" \
	"$URL/api/v1/flamegraph?service=shop"
URL=$URL1 CPID=$CPID1

rm -f "$SHOTS"/web-*.png
mkdir -p "$WORK/browser-profile"
WEB_URL=$URL WEB_SERVICE=shop WEB_TYPE=cpu WEB_FUNC=charge_card WEB_TRACE=$T2 \
	WEB_TRACE_FUNC=render_cart WEB_NOT_IN_TRACE=charge_card WEB_SHOTS=$SHOTS \
	WEB_PROFILE_DIR=$WORK/browser-profile WEB_NODE_MODULES=$NODE_MODULES CHROMIUM=$CHROMIUM \
	WEB_TOKEN_URL=$TOKEN_URL WEB_TOKEN=pagetoken \
	setsid timeout -k 5 120 node "$ROOT/tests/e2e/browser/web_check.js" >"$WORK/browser.out" 2>&1 &
bpid=$!
wait "$bpid"
brc=$?
kill -9 -- -"$bpid" 2>/dev/null    # the browser, should anything of it be left
cat "$WORK/browser.out"
check "the browser checks ran and passed" test "$brc" = 0
check "screenshot of the service's graph saved" test -s "$SHOTS/web-service.png"
check "screenshot of the trace's graph saved" test -s "$SHOTS/web-trace.png"
check "the collector still serves" alive
stop_collector
finish

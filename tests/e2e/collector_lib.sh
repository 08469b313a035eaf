# Helpers for the collector's end-to-end tests (2x_collector*.sh), sourced after
# lib.sh. Every collector runs on 127.0.0.1 with a port it picks itself (the
# test reads it from the start-up line), a database under $WORK, and is killed
# when the test exits. COLLECTOR_BIN runs the tests against another
# build (e.g. one with -fsanitize=address).

COLLECTOR=${COLLECTOR_BIN:-$ROOT/build/libprof-collector}
MKPROFILE="python3 $ROOT/tests/e2e/mkprofile.py"
CPIDS=""
trap 'for p in $CPIDS; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

# start_collector DB [FLAGS...]: starts a collector on DB; sets CPID and URL.
start_collector() {
	local db=$1 log port="" i
	shift
	log="$WORK/collector.$(basename "$db").$RANDOM.log"
	"$COLLECTOR" --listen 127.0.0.1:0 --db "$db" --log debug "$@" 2>"$log" &
	CPID=$!
	CPIDS="$CPIDS $CPID"
	CLOG=$log
	for i in $(seq 200); do
		port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\) .*/\1/p' "$log")
		[ -n "$port" ] && break
		kill -0 "$CPID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$port" ]; then
		say "collector did not start:"; sed 's/^/    /' "$log"
		return 1
	fi
	URL="http://127.0.0.1:$port"
}

# stop_collector: SIGTERM, and the collector must exit 0 within 10 s.
stop_collector() {
	local i
	kill "$CPID" 2>/dev/null
	for i in $(seq 200); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.05; done
	wait "$CPID"
}

# code CURL_ARGS...: the HTTP status of a request (body in $WORK/body).
code() { curl -s -o "$WORK/body" -w '%{http_code}' --max-time 30 "$@"; }

# is WANT CURL_ARGS...: the status is WANT (prints both and the body otherwise).
is() {
	local want=$1 got
	shift
	got=$(code "$@")
	[ "$got" = "$want" ] && return 0
	say "  status $got, expected $want: $(head -c 300 "$WORK/body")"
	return 1
}

# alive: the collector process still runs and answers /healthz.
alive() { kill -0 "$CPID" 2>/dev/null && is 200 "$URL/healthz"; }

# ptop URL_OR_FILE: go tool pprof -top of a collector query, every node.
ptop() { go tool pprof -top -nodecount=100000 "$@" 2>/dev/null; }
total_ms_of() { sed -n 's/.*Total samples = \([0-9.]*\)ms.*/\1/p' "$1" | head -1; }
praw() { go tool pprof -raw "$@" 2>/dev/null; }

# has TEXT_FILE PATTERN / hasnt: grep -q, showing the text when it fails.
has() { grep -qE "$2" "$1" || { say "  no '$2' in:"; head -40 "$1" | sed 's/^/      /'; return 1; }; }
hasnt() { ! grep -qE "$2" "$1" || { say "  unexpected '$2' in:"; head -40 "$1" | sed 's/^/      /'; return 1; }; }

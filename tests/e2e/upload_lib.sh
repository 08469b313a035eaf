# Helpers for the streaming tests (30_upload*.sh), sourced after lib.sh and
# collector_lib.sh: the test receiver (tests/e2e/receiver.py) and counts of
# what became of each profile. Every receiver and program started here is
# killed when the test exits (collector_lib.sh's trap kills $CPIDS).

RECEIVER="python3 $ROOT/tests/e2e/receiver.py"

# start_receiver NAME [RECEIVER_OPTIONS...]: starts a receiver logging to
# $WORK/NAME.log; sets RPID and RURL (http://127.0.0.1:PORT).
start_receiver() {
	local name=$1 i
	shift
	rm -f "$WORK/$name.port" "$WORK/$name.log"
	$RECEIVER "$WORK/$name.port" "$WORK/$name.log" --max-seconds 150 "$@" &
	RPID=$!
	CPIDS="$CPIDS $RPID"
	for i in $(seq 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.05; done
	RURL="http://127.0.0.1:$(cat "$WORK/$name.port" 2>/dev/null)"
	[ -s "$WORK/$name.port" ]
}

# answered LOG STATUS_REGEX: requests the receiver answered with a matching status.
answered() {
	[ -f "$1" ] || { echo 0; return; }
	python3 -c '
import json, re, sys
print(sum(1 for l in open(sys.argv[1]) if re.fullmatch(sys.argv[2], str(json.loads(l)["status"]))))
' "$1" "$2"
}

# produced ERR: profiles handed to the uploader (LIBPROF_LOG=debug lines).
produced() { grep -c 'upload: new ' "$1"; }
# spooled DIR: profile files written to DIR.
spooled() { ls "$1"/*.pb.gz 2>/dev/null | wc -l; }

# elapsed_run SECONDS_FILE CMD...: runs CMD, writes its wall time (s) to the file.
elapsed_run() {
	local out=$1 t0 t1 rc
	shift
	t0=$(date +%s.%N)
	"$@"
	rc=$?
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >"$out"
	return $rc
}

# at_most VALUE LIMIT: VALUE <= LIMIT (numbers), printing both.
at_most() {
	awk -v v="$1" -v l="$2" 'BEGIN { printf "    %s (at most %s)\n", v, l; exit !(v <= l) }'
}

# eq A B: A = B, printing both.
eq() { say "  $1 = $2?"; [ "$1" = "$2" ]; }

# lp_bg DIR [VAR=value...] -- COMMAND...: like lp, in the background; BGPID is
# the program's own pid (env execs it), killed when the test exits.
lp_bg() {
	local dir=$1; shift
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	env LIBPROF_OUTPUT_DIR="$dir" "${envs[@]}" LD_PRELOAD="$LIB" "$@" &
	BGPID=$!
	CPIDS="$CPIDS $BGPID"
}

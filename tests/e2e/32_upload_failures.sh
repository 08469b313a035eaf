#!/bin/bash
# Proves: a failing collector never costs the program anything and never costs
# a profile. Against the test receiver down from the start, killed mid-run,
# answering 503 with Retry-After then 200, answering 400, or accepting and
# never answering: the program's output and exit status are unchanged, its
# exit is delayed at most LIBPROF_EXIT_TIMEOUT (checked loosely: a bound with
# 3 s of slack, never a tight timing), and every profile is either delivered
# (the receiver's count) or spooled (files in LIBPROF_OUTPUT_DIR). Retries wait
# as Retry-After says, a 400 is not retried and is logged once with its
# reason, a full queue spools, and fork and exec keep every profile.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/collector_lib.sh"
. "$(dirname "$0")/upload_lib.sh"

# run NAME URL [VAR=value...]: burn (1.5 s of CPU) streaming to URL; sets
# N_MADE, N_DELIVERED, N_SPOOLED and SECS, and checks the program's output.
run() {
	local name=$1 url=$2
	shift 2
	elapsed_run "$WORK/$name.secs" env LIBPROF_OUTPUT_DIR="$WORK/$name-out" LIBPROF_LOG=debug \
		LIBPROF_INTERVAL=0.4 LIBPROF_ENDPOINT="$url" "$@" LD_PRELOAD="$LIB" \
		"$PROGS/burn" ratio 1100 400 >"$WORK/$name.stdout" 2>"$WORK/$name.err"
	local rc=$?
	check "$name: the program's output and exit status are unchanged" \
		bash -c "[ $rc = 0 ] && [ \"\$(cat '$WORK/$name.stdout')\" = 'burn ratio done' ]"
	N_MADE=$(produced "$WORK/$name.err")
	N_DELIVERED=$(answered "$WORK/$name.log" '2..')
	N_SPOOLED=$(spooled "$WORK/$name-out")
	SECS=$(cat "$WORK/$name.secs")
	say "$name: $N_MADE profiles, $N_DELIVERED delivered, $N_SPOOLED spooled, ran ${SECS}s"
	check "$name: profiles were made" test "$N_MADE" -ge 3
}

# --- down from the start ------------------------------------------------------------
start_receiver gone || exit 1
kill -9 "$RPID"; wait "$RPID" 2>/dev/null      # its port is now closed
run down "$RURL" LIBPROF_EXIT_TIMEOUT=2
check "down: every profile is spooled" eq "$N_SPOOLED" "$N_MADE"
check "down: exit delayed at most the exit timeout" at_most "$SECS" $((2 + 2 + 3))
check "down: the failure is logged once" eq "$(grep -c 'cannot deliver profiles' "$WORK/down.err")" 1
check "down: the spooled count is logged" has "$WORK/down.err" 'profiles? not delivered .*written to'

# --- killed mid-run ------------------------------------------------------------------
start_receiver killed || exit 1
( sleep 0.9; kill -9 "$RPID" ) &
run killed "$RURL" LIBPROF_EXIT_TIMEOUT=2
check "killed: some profiles were delivered before the kill" test "$N_DELIVERED" -ge 1
check "killed: none lost (delivered + spooled >= made)" test $((N_DELIVERED + N_SPOOLED)) -ge "$N_MADE"
check "killed: at most the one cut off counted twice" test $((N_DELIVERED + N_SPOOLED)) -le $((N_MADE + 1))
check "killed: exit delayed at most the exit timeout" at_most "$SECS" $((2 + 2 + 3))

# --- 503 with Retry-After, then 200 --------------------------------------------------
start_receiver busy --plan 503:1,503:1,200 || exit 1
run busy "$RURL" LIBPROF_EXIT_TIMEOUT=6
check "503: every profile delivered in the end" eq "$N_DELIVERED" "$N_MADE"
check "503: nothing spooled" eq "$N_SPOOLED" 0
check "503: each retry waited as Retry-After said" python3 -c '
import json, sys
t = [json.loads(l)["time"] for l in open(sys.argv[1])]
print("    gaps: %.2f s, %.2f s" % (t[1] - t[0], t[2] - t[1]))
assert t[1] - t[0] >= 0.9 and t[2] - t[1] >= 0.9' "$WORK/busy.log"
check "503: the failure and the recovery are logged" \
	bash -c "grep -q 'cannot deliver profiles.*HTTP 503' '$WORK/busy.err' && grep -q 'delivering profiles to .* again' '$WORK/busy.err'"

# --- 400 ------------------------------------------------------------------------------
start_receiver refusing --plan 400 || exit 1
run refusing "$RURL" LIBPROF_EXIT_TIMEOUT=2
check "400: every profile is spooled" eq "$N_SPOOLED" "$N_MADE"
check "400: none is retried (one request each)" eq "$(answered "$WORK/refusing.log" 400)" "$N_MADE"
check "400: logged once, with the first line of the reason" \
	eq "$(grep -c '^libprof: http.* refused a cpu profile (HTTP 400: status 400 from the test receiver); it is not sent again$' "$WORK/refusing.err")" 1
check "400: the reason's second line is not logged" hasnt "$WORK/refusing.err" 'second line'

# --- accepting, never answering --------------------------------------------------------
start_receiver hanging --plan hang || exit 1
run hanging "$RURL" LIBPROF_EXIT_TIMEOUT=1.5
check "hang: every profile is spooled" eq "$N_SPOOLED" "$N_MADE"
check "hang: exit delayed at most the exit timeout (the upload timeout is 10 s)" \
	at_most "$SECS" $((2 + 1 + 3))
run hanging0 "$RURL" LIBPROF_EXIT_TIMEOUT=0 LIBPROF_UPLOAD_TIMEOUT=0.5
check "hang, exit timeout 0: every profile is spooled" eq "$N_SPOOLED" "$N_MADE"
check "hang, exit timeout 0: the timeouts are retried" has "$WORK/hanging0.err" 'timed out'
check "hang, exit timeout 0: exit not delayed" at_most "$SECS" $((2 + 3))

# --- a full queue spools -------------------------------------------------------------------
run queue1 "$RURL" LIBPROF_UPLOAD_QUEUE=1 LIBPROF_EXIT_TIMEOUT=0.5
check "queue of 1: every profile is spooled" eq "$N_SPOOLED" "$N_MADE"
check "queue of 1: the full queue is the reason given" has "$WORK/queue1.err" 'not delivered \(the upload queue was full\)'

# --- fork and exec -------------------------------------------------------------------------
start_receiver life || exit 1
lp "$WORK/life-out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.4 LIBPROF_ENDPOINT="$RURL" \
	-- "$PROGS/burn" fork 900 >"$WORK/fork.stdout" 2>"$WORK/fork.err"
lp "$WORK/life-out" LIBPROF_LOG=debug LIBPROF_INTERVAL=0.4 LIBPROF_ENDPOINT="$RURL" \
	-- "$PROGS/burn" exec 900 >"$WORK/exec.stdout" 2>"$WORK/exec.err"
made=$(( $(produced "$WORK/fork.err") + $(produced "$WORK/exec.err") ))
say "fork and exec: $made profiles, $(answered "$WORK/life.log" 200) delivered"
check "fork and exec: both programs ran" bash -c "grep -q fork '$WORK/fork.stdout' && grep -q execd '$WORK/exec.stdout'"
check "fork and exec: every profile of parent, child and exec'd program delivered" \
	eq "$(answered "$WORK/life.log" 200)" "$made"
check "fork and exec: nothing spooled" eq "$(spooled "$WORK/life-out")" 0
finish

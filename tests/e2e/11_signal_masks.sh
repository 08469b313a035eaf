#!/bin/bash
# Proves: threads that inherit a mask blocking every signal are still sampled,
# the program still sees the mask it set, and a thread that sigwait()s for all
# signals receives the program's signal (SIGUSR1), never libprof's.
. "$(dirname "$0")/lib.sh"

"$PROGS/blocked" >"$WORK/plain"
lp "$WORK/out" -- "$PROGS/blocked" >"$WORK/o" 2>"$WORK/e"
status=$?
check "the program's checks pass under libprof (exit 0)" test "$status" = 0
check "its output is unchanged" cmp -s "$WORK/plain" "$WORK/o"
files=$(profiles "$WORK/out")
# The workers burn 2 x 400 ms, the signal thread 200 ms: 80% / 20%.
check "worker threads with every signal blocked are sampled" \
	within "$(cum_pct blocked_worker $files)" 80 8
check "the sigwait thread is sampled before it waits" within "$(cum_pct signal_thread $files)" 20 8
finish

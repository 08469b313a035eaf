#!/bin/bash
# Proves: with four busy threads, the total sampled CPU time is within 10% of
# the CPU time the process really used (per-thread CPU-time timers).
. "$(dirname "$0")/lib.sh"

out=$WORK/out
read -r used status < <(cpu_ms env LIBPROF_OUTPUT_DIR="$out" LD_PRELOAD="$LIB" \
	"$PROGS/burn" threads 4 700 | paste -sd' ')
check "the program exited 0" test "$status" = 0
sampled=$(total_ms $(profiles "$out"))
check "sampled CPU time is within 10% of the CPU time used" ratio_within "$sampled" "$used" 0.90 1.10
per_thread=$(cum_pct thread_burn $(profiles "$out"))
check "the four threads' function has (almost) all samples" within "$per_thread" 100 6
finish

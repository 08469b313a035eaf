#!/bin/bash
# Proves: a thread created late is sampled like the main thread, and at
# LIBPROF_CPU_HZ=1000 (above the kernel's 250 Hz tick) overruns keep totals true.
. "$(dirname "$0")/lib.sh"

out=$WORK/late
lp "$out" -- "$PROGS/burn" late 600 >/dev/null
late=$(cum_pct late_worker $(profiles "$out"))
main=$(cum_pct main_burn $(profiles "$out"))
check "the late thread has half the samples" within "$late" 50 8
check "the main thread has the other half" within "$main" 50 8

out=$WORK/hz1000
read -r used status < <(cpu_ms env LIBPROF_OUTPUT_DIR="$out" LIBPROF_CPU_HZ=1000 \
	LD_PRELOAD="$LIB" "$PROGS/burn" threads 2 800 | paste -sd' ')
sampled=$(total_ms $(profiles "$out"))
check "at 1000 Hz the total is within 10% of the CPU time used" ratio_within "$sampled" "$used" 0.90 1.10
check "at 1000 Hz the period is 1 ms" \
	bash -c "go tool pprof -raw $(profiles "$out" | head -1) | grep -q '^Period: 1000000$'"
finish

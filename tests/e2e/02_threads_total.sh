#!/bin/bash
# Proves: with four busy threads, the total sampled CPU time is within 10% of
# the CPU time the process really used (per-thread CPU-time timers); threads
# that each use less than one sampling period are sampled too (each timer's
# first expiry is a random part of a period), though the kernel, checking
# CPU timers only at its tick, misses most of them (docs/ARCHITECTURE.md).
. "$(dirname "$0")/lib.sh"

out=$WORK/out
read -r used status < <(cpu_ms env LIBPROF_OUTPUT_DIR="$out" LD_PRELOAD="$LIB" \
	"$PROGS/burn" threads 4 700 | paste -sd' ')
check "the program exited 0" test "$status" = 0
sampled=$(total_ms $(profiles "$out"))
check "sampled CPU time is within 10% of the CPU time used" ratio_within "$sampled" "$used" 0.90 1.10
per_thread=$(cum_pct thread_burn $(profiles "$out"))
check "the four threads' function has (almost) all samples" within "$per_thread" 100 6

read -r used status < <(cpu_ms env LIBPROF_OUTPUT_DIR="$WORK/short" LD_PRELOAD="$LIB" \
	"$PROGS/burn" short 300 2 | paste -sd' ')
files=$(profiles "$WORK/short")
check "300 threads of 2 ms each (a fifth of a period): a profile was written" test -n "$files"
sampled=$(total_ms $files)
echo "    short threads: ${sampled:-0} ms sampled of $used ms used"
short_pct=$(cum_pct short_work $files)
check "short threads: short_work holds their samples" within "${short_pct:-0}" 100 10
check "short threads: at least 5% of the CPU they used is sampled" \
	awk -v s="${sampled:-0}" -v u="$used" 'BEGIN { exit !(s >= 0.05 * u) }'
finish

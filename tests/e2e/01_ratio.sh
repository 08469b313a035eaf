#!/bin/bash
# Proves: a program whose two functions burn CPU 1:3 is profiled as 25% / 75%
# (within 5 points), with CPU sample types, period 1e9/Hz and a valid pprof.
. "$(dirname "$0")/lib.sh"

# 4 s of CPU at 250 Hz (the kernel's tick): ~1000 samples, so the share's
# statistical spread (about 1.4 points) is well inside the tolerance.
out=$WORK/out
lp "$out" LIBPROF_CPU_HZ=250 -- "$PROGS/burn" ratio 1000 3000 >/dev/null
files=$(profiles "$out")
check "profiles were written" test -n "$files"
a=$(cum_pct burn_a $files)
b=$(cum_pct burn_b $files)
check "burn_a is 25% of the CPU samples" within "$a" 25 5
check "burn_b is 75% of the CPU samples" within "$b" 75 5
go tool pprof -raw $files >"$WORK/raw" 2>&1
check "sample types are samples/count and cpu/nanoseconds" \
	grep -q "samples/count cpu/nanoseconds" "$WORK/raw"
check "period type is cpu/nanoseconds" grep -q "PeriodType: cpu nanoseconds" "$WORK/raw"
check "period is 1e9/250" grep -q "^Period: 4000000$" "$WORK/raw"
check "the main program is mapping 1 with its build id" \
	bash -c "go tool pprof -raw $(echo $files | cut -d' ' -f1) | grep -A1 '^Mappings' | grep -q 'burn'"
finish

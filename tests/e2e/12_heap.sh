#!/bin/bash
# Proves: sampled allocation profiles are accurate (shares within 5 points,
# totals within 10% of the truth); the live heap is right while held and gone
# once freed; the malloc family keeps its contract under libprof at any rate,
# with glibc, jemalloc and tcmalloc; C++ new is covered; third-party programs
# run unchanged and their heap profiles point at the allocating functions.
. "$(dirname "$0")/lib.sh"

# Accuracy: alloc_a allocates N, alloc_b 3N, mixed sizes from 16 B to 1 MiB.
lp "$WORK/ratio" -- "$PROGS/heap_ratio" 128 >"$WORK/o"
truth=$(awk '{ print $6 }' "$WORK/o")
files=$(profiles "$WORK/ratio" '*.heap.*')
check "a heap profile was written" test -n "$files"
check "alloc_a has 25% of alloc_space" within "$(heap_cum_pct alloc_space alloc_a $files)" 25 5
check "alloc_b has 75% of alloc_space" within "$(heap_cum_pct alloc_space alloc_b $files)" 75 5
check "alloc_space totals the bytes allocated, within 10%" \
	ratio_within "$(heap_total alloc_space $files)" "$truth" 0.90 1.10
go tool pprof -raw $(echo $files | cut -d' ' -f1) >"$WORK/raw" 2>&1
check "sample types alloc_objects, alloc_space, inuse_objects, inuse_space" \
	grep -q "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes" "$WORK/raw"
check "period type space/bytes, period = LIBPROF_HEAP_RATE" \
	bash -c "grep -q 'PeriodType: space bytes' '$WORK/raw' && grep -q '^Period: 524288$' '$WORK/raw'"

# Live heap: 64 MiB kept by keep_live while 256 MiB more churn, then freed.
# At a 64 KiB mean (1000 samples of the kept set) the estimate's spread is ~3%.
lp "$WORK/live" LIBPROF_INTERVAL=0.5 LIBPROF_HEAP_RATE=65536 -- "$PROGS/heap_live" 1500 >/dev/null
best="" best_inuse=0
for f in $(profiles "$WORK/live" '*.heap.*'); do
	v=$(heap_total inuse_space "$f")
	if awk -v a="${v:-0}" -v b="$best_inuse" 'BEGIN { exit !(a > b) }'; then best=$f best_inuse=$v; fi
done
check "a profile taken while the block set is held exists" test -n "$best"
kept=$(heap_cum inuse_space keep_live "$best")
check "inuse_space at keep_live is 64 MiB within 15%" ratio_within "$kept" 67108864 0.85 1.15
check "nothing else is live beyond noise (< 4 MiB)" \
	awk -v t="$best_inuse" -v k="$kept" 'BEGIN { printf "    others: %d bytes\n", t - k; exit !(t - k < 4194304) }'
last=$(profiles "$WORK/live" '*.heap.*' | tail -1)
check "after the free, the last profile shows nothing live at keep_live" \
	test "$(heap_cum inuse_space keep_live "$last")" = 0

# The malloc family's contract, at every rate (1: every allocation sampled).
for rate in 1 4096 524288 0; do
	lp "$WORK/stress$rate" LIBPROF_HEAP_RATE=$rate -- timeout 300 "$PROGS/heap_stress" >"$WORK/o" 2>&1
	check "malloc contract holds at LIBPROF_HEAP_RATE=$rate" grep -qx "heap_stress ok" "$WORK/o"
done
check "LIBPROF_HEAP_RATE=0: no heap profile" test -z "$(profiles "$WORK/stress0" '*.heap.*')"

for alloc in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4; do
	name=$(basename "$alloc")
	env LD_PRELOAD="$alloc" "$PROGS/heap_stress" portable >"$WORK/plain" 2>&1
	env LIBPROF_OUTPUT_DIR="$WORK/$name" LIBPROF_HEAP_RATE=4096 LD_PRELOAD="$LIB $alloc" \
		"$PROGS/heap_stress" portable >"$WORK/o" 2>&1
	check "$name: the program runs the same under libprof" cmp -s "$WORK/plain" "$WORK/o"
	check "$name: its allocations are profiled" test -n "$(profiles "$WORK/$name" '*.heap.*')"
done

# A program with its own malloc in the executable: its definitions win over
# libprof's (nothing of the heap is seen), and everything keeps working.
cat >"$WORK/ownmalloc.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static long calls;
void *malloc(size_t n) { calls++; return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { calls++; return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { calls++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
int main(void) {
	long before = calls;
	for (int i = 0; i < 100000; i++) { char *p = malloc(100); strcpy(p, "x"); free(p); }
	printf("own allocator served %ld of our mallocs\n", calls - before);
	return 0;
}
C
cc -O1 "$WORK/ownmalloc.c" -o "$WORK/ownmalloc"
"$WORK/ownmalloc" >"$WORK/plain"
lp "$WORK/own" -- "$WORK/ownmalloc" >"$WORK/o" 2>"$WORK/e"
check "a program with its own malloc runs the same" cmp -s "$WORK/plain" "$WORK/o"
check "and nothing on stderr" test ! -s "$WORK/e"

# C++: operator new reaches malloc through libstdc++.
cat >"$WORK/widgets.cpp" <<'CPP'
#include <cstdio>
#include <vector>
struct Widget { char payload[200]; };
Widget *volatile last;          /* the block escapes: new/delete cannot be elided */
__attribute__((noinline)) static long make_widgets(int n) {
	long total = 0;
	for (int i = 0; i < n; i++) { Widget *w = new Widget(); last = w; total += sizeof(*w); delete last; }
	return total;
}
int main() { std::printf("%ld\n", make_widgets(500000)); }
CPP
g++ -O1 -g "$WORK/widgets.cpp" -o "$WORK/widgets"
# 100 MB of 200-byte blocks: a 64 KiB mean gives ~1500 samples (2.6% spread).
lp "$WORK/cxx" LIBPROF_HEAP_RATE=65536 -- "$WORK/widgets" >"$WORK/o"
check "C++ new: make_widgets(int) allocated 100 MB (through operator new), within 10%" \
	ratio_within "$(heap_cum alloc_space "make_widgets(int)" $(profiles "$WORK/cxx" '*.heap.*'))" "$(cat "$WORK/o")" 0.9 1.1

# Third-party programs.
seq 1 1000000 | awk '{ print ($1 * 7919) % 1000003 }' >"$WORK/nums.txt"
sort -n "$WORK/nums.txt" >"$WORK/plain"
lp "$WORK/sort" -- sort -n "$WORK/nums.txt" >"$WORK/o"
check "sort: output unchanged" cmp -s "$WORK/plain" "$WORK/o"
check "sort: its allocations cover at least the input it holds" \
	test "$(heap_total alloc_space $(profiles "$WORK/sort" '*.heap.*') | cut -d. -f1)" -ge "$(stat -c %s "$WORK/nums.txt")"
script='b = [bytearray(1000) for i in range(50000)]; print(len(b), sum(len(x) for x in b))'
/usr/bin/python3 -c "$script" >"$WORK/plain"
lp "$WORK/py" -- /usr/bin/python3 -c "$script" >"$WORK/o"
check "python3: output unchanged" cmp -s "$WORK/plain" "$WORK/o"
check "python3: bytearray allocation (PyByteArray_Resize) is most of alloc_space" \
	within "$(heap_cum_pct alloc_space PyByteArray_Resize $(profiles "$WORK/py" '*.heap.*'))" 85 15
# A tight loop of malloc(256)/free at the default rate: some 45,000 samples a
# second, more than 2048 ring slots drained every 100 ms could hold. The
# exporter drains faster while samples arrive fast, so the estimate stays
# near the truth (50 M x 256 B) and few samples are dropped (with a drain
# every 100 ms whatever the rate: 25% to 50% dropped, 0.5 to 0.75 of the truth).
lp "$WORK/burst" LIBPROF_CPU_HZ=0 -- "$PROGS/bench_malloc_pair" 256 50000000 >/dev/null
f=$(profiles "$WORK/burst" '*.heap.*')
dropped=$(go tool pprof -raw $f 2>/dev/null | sed -n 's/.*dropped heap samples: \([0-9]*\) ring full.*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
say "tight loop: $dropped samples dropped (ring full) of some 24,400"
check "tight loop: alloc_space within 20% of the 12.8 GB allocated" \
	ratio_within "$(heap_total alloc_space $f)" 12800000000 0.8 1.2
check "tight loop: under 20% of the samples dropped (ring full)" test "$dropped" -lt 4880
finish

#!/bin/sh
# The overhead benchmark (`make bench`, which builds what it needs first):
# CPU profiling (libprof and gperftools at 100 and 1000 Hz against no profiler,
# on tests/progs/bench_cpu.c), heap profiling (libprof on the malloc-heavy
# tests/progs/bench_alloc.c, and against tcmalloc, gperftools' heap profiler and
# heaptrack), and the cost of a malloc+free pair (tests/progs/bench_malloc_pair.c).
# scripts/bench.py does the measuring; the tables go to stdout and
# build/bench-results.txt.
# Environment: BENCH_SUITES (cpu heap peers pair), BENCH_ROUNDS (default 7),
# BENCH_PEER_ROUNDS (3), BENCH_THREADS (2), BENCH_UNITS, BENCH_ALLOC_OPS,
# BENCH_PEER_OPS, BENCH_PAIRS (see bench.py), BENCH_GPERFTOOLS (path of
# libprofiler.so), BENCH_TCMALLOC (of libtcmalloc.so.4), BENCH_HEAPTRACK_LIB
# (heaptrack's library directory), BENCH_TIME (path of GNU time).
set -eu
cd "$(dirname "$0")/.."

for f in build/libprof.so build/progs/bench_cpu build/progs/bench_alloc \
         build/progs/bench_malloc_pair; do
  [ -e "$f" ] || { echo "bench: $f is missing; run 'make bench'" >&2; exit 1; }
done

if [ -z "${BENCH_GPERFTOOLS:-}" ]; then
  BENCH_GPERFTOOLS=/usr/lib/x86_64-linux-gnu/libprofiler.so
  if [ ! -e "$BENCH_GPERFTOOLS" ]; then
    BENCH_GPERFTOOLS=$(ldconfig -p | awk '/libprofiler\.so/ {print $NF; exit}')
  fi
fi
[ -n "$BENCH_GPERFTOOLS" ] && [ -e "$BENCH_GPERFTOOLS" ] ||
  { echo "bench: gperftools' libprofiler.so not found (scripts/install-deps.sh bench)" >&2; exit 1; }

BENCH_TCMALLOC=${BENCH_TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4}
[ -e "$BENCH_TCMALLOC" ] ||
  BENCH_TCMALLOC=$(ldconfig -p | awk '/libtcmalloc\.so\.4 / {print $NF; exit}')
[ -n "$BENCH_TCMALLOC" ] && [ -e "$BENCH_TCMALLOC" ] ||
  { echo "bench: gperftools' libtcmalloc.so.4 not found (scripts/install-deps.sh bench)" >&2; exit 1; }

# heaptrack is a shell script; its preload library and interpreter live in
# ../lib/heaptrack relative to it, which is where it looks for them too.
if [ -z "${BENCH_HEAPTRACK_LIB:-}" ]; then
  ht=$(command -v heaptrack) ||
    { echo "bench: heaptrack not found (scripts/install-deps.sh bench)" >&2; exit 1; }
  BENCH_HEAPTRACK_LIB=$(readlink -f "$(dirname "$(readlink -f "$ht")")/../lib/heaptrack")
fi
for f in libheaptrack_preload.so libexec/heaptrack_interpret; do
  [ -e "$BENCH_HEAPTRACK_LIB/$f" ] ||
    { echo "bench: $BENCH_HEAPTRACK_LIB/$f not found (Debian package 'heaptrack')" >&2; exit 1; }
done

# GNU time starts the workload so that its max RSS is its own (see bench.py).
BENCH_TIME=${BENCH_TIME:-/usr/bin/time}
"$BENCH_TIME" -f %M -o /dev/null true 2>/dev/null ||
  { echo "bench: GNU time not found at $BENCH_TIME (Debian package 'time')" >&2; exit 1; }

BENCH_BUILD="libprof $(git describe --always --dirty 2>/dev/null || echo '(not a git tree)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
export BENCH_GPERFTOOLS BENCH_TCMALLOC BENCH_HEAPTRACK_LIB BENCH_TIME BENCH_BUILD
export BENCH_LIBPROF="$PWD/build/libprof.so" BENCH_PROG="$PWD/build/progs/bench_cpu" \
  BENCH_ALLOC_PROG="$PWD/build/progs/bench_alloc" BENCH_PAIR_PROG="$PWD/build/progs/bench_malloc_pair"
python3 scripts/bench.py
# The lock and trace rows (appended to build/bench-results.txt).
exec python3 scripts/bench_locks_trace.py

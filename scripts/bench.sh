#!/bin/sh
# The overhead benchmark (`make bench`, which builds what it needs first):
# libprof and gperftools at 100 and 1000 Hz against no profiler, on
# tests/progs/bench_cpu.c. scripts/bench.py does the measuring; the table goes
# to stdout and build/bench-results.txt.
# Environment: BENCH_ROUNDS (default 7), BENCH_THREADS (2), BENCH_UNITS
# (the program's default), BENCH_GPERFTOOLS (path of libprofiler.so),
# BENCH_TIME (path of GNU time).
set -eu
cd "$(dirname "$0")/.."

for f in build/libprof.so build/progs/bench_cpu; do
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

# GNU time starts the workload so that its max RSS is its own (see bench.py).
BENCH_TIME=${BENCH_TIME:-/usr/bin/time}
"$BENCH_TIME" -f %M -o /dev/null true 2>/dev/null ||
  { echo "bench: GNU time not found at $BENCH_TIME (Debian package 'time')" >&2; exit 1; }

BENCH_BUILD="libprof $(git describe --always --dirty 2>/dev/null || echo '(not a git tree)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
export BENCH_GPERFTOOLS BENCH_TIME BENCH_BUILD
export BENCH_LIBPROF="$PWD/build/libprof.so" BENCH_PROG="$PWD/build/progs/bench_cpu"
exec python3 scripts/bench.py

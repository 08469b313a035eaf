# Helpers for the end-to-end tests: each test runs real programs under the real
# build/libprof.so and reads the profiles with `go tool pprof`.
# A test script sources this file, calls `check` for each assertion and ends
# with `finish`; its exit status is the verdict.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LIB="$ROOT/build/libprof.so"
PROGS="$ROOT/build/progs"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/libprof-e2e.XXXXXX")
FAILS=0
trap 'rm -rf "$WORK"' EXIT

say() { printf '  %s\n' "$*"; }

# check DESCRIPTION COMMAND...: runs COMMAND, records a failure if it fails.
check() {
	local what=$1; shift
	if "$@"; then say "ok: $what"; else say "FAIL: $what"; FAILS=$((FAILS + 1)); fi
}

finish() { [ "$FAILS" -eq 0 ]; exit $?; }

# lp DIR [VAR=value...] -- COMMAND...: runs COMMAND under libprof writing into DIR.
lp() {
	local dir=$1; shift
	local envs=()
	while [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	env LIBPROF_OUTPUT_DIR="$dir" "${envs[@]}" LD_PRELOAD="$LIB" "$@"
}

# profiles DIR [PATTERN]: the profile files in DIR (sorted), one per line; CPU
# profiles unless PATTERN (a glob without .pb.gz, e.g. "*.heap.*") says otherwise.
profiles() { ls "$1"/${2:-*.cpu.*}.pb.gz 2>/dev/null | sort; }

# top FILES...: `go tool pprof -top` in milliseconds, every node.
top() { go tool pprof -top -nodecount=100000 -unit=ms "$@" 2>/dev/null; }

# total_ms FILES...: total sampled CPU time in ms.
total_ms() {
	top "$@" | sed -n 's/.*Total samples = \([0-9.]*\)ms.*/\1/p' | head -1
}

# flat_pct FUNCTION FILES...: FUNCTION's flat share in percent (0 if absent).
flat_pct() {
	local fn=$1; shift
	top "$@" | awk -v fn="$fn" '
		$2 ~ /%$/ { name = $6; for (i = 7; i <= NF; i++) name = name " " $i
			    if (name == fn) { sub(/%/, "", $2); s += $2 } }
		END { printf "%.2f\n", s + 0 }'
}

# cum_pct FUNCTION FILES...: FUNCTION's cumulative share in percent.
cum_pct() {
	local fn=$1; shift
	top "$@" | awk -v fn="$fn" '
		$2 ~ /%$/ { name = $6; for (i = 7; i <= NF; i++) name = name " " $i
			    if (name == fn) { sub(/%/, "", $5); print $5 + 0; found = 1; exit } }
		END { if (!found) print 0 }'
}

# heap_top INDEX FILES...: `go tool pprof -top` of a heap sample type, in bytes.
heap_top() {
	local idx=$1; shift
	go tool pprof -top -nodecount=100000 -sample_index="$idx" -unit=B "$@" 2>/dev/null
}

# heap_total INDEX FILES...: the total of a heap sample type in bytes.
heap_total() {
	heap_top "$@" | sed -n 's/.*Total samples = \([0-9.]*\)B.*/\1/p' | head -1
}

# heap_cum INDEX FUNCTION FILES...: FUNCTION's cumulative bytes (0 if absent).
heap_cum() {
	local idx=$1 fn=$2; shift 2
	heap_top "$idx" "$@" | awk -v fn="$fn" '
		$2 ~ /%$/ { name = $6; for (i = 7; i <= NF; i++) name = name " " $i
			    if (name == fn) { v = $4; sub(/B$/, "", v); print v + 0; found = 1; exit } }
		END { if (!found) print 0 }'
}

# heap_cum_pct INDEX FUNCTION FILES...: FUNCTION's cumulative share in percent.
heap_cum_pct() {
	local idx=$1 fn=$2; shift 2
	heap_top "$idx" "$@" | awk -v fn="$fn" '
		$2 ~ /%$/ { name = $6; for (i = 7; i <= NF; i++) name = name " " $i
			    if (name == fn) { sub(/%/, "", $5); print $5 + 0; found = 1; exit } }
		END { if (!found) print 0 }'
}

# within VALUE EXPECTED TOLERANCE: |VALUE - EXPECTED| <= TOLERANCE, printing both.
within() {
	awk -v v="$1" -v e="$2" -v t="$3" 'BEGIN {
		d = v - e; if (d < 0) d = -d
		printf "    measured %s, expected %s +- %s\n", v, e, t
		exit !(d <= t) }'
}

# ratio_within A B LOW HIGH: LOW <= A/B <= HIGH, printing the ratio.
ratio_within() {
	awk -v a="$1" -v b="$2" -v lo="$3" -v hi="$4" 'BEGIN {
		if (b == 0) { print "    denominator is 0"; exit 1 }
		r = a / b; printf "    %s / %s = %.3f (allowed %s..%s)\n", a, b, r, lo, hi
		exit !(r >= lo && r <= hi) }'
}

# cpu_ms COMMAND...: runs COMMAND and prints the CPU time (user+sys) it used in ms,
# its exit status on the next line (the command's stdout goes to $WORK/cpu.out).
cpu_ms() {
	python3 - "$@" <<'PY'
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.environ.get("WORK", "/tmp") + "/cpu.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
print(round((ru.ru_utime + ru.ru_stime) * 1000))
print(os.waitstatus_to_exitcode(status))
PY
}
export WORK

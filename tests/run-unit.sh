#!/bin/bash
# Runs each cmocka test binary given as an argument, shows its output and adds up
# cmocka's "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)" lines. A binary
# that crashes, hangs or exits non-zero without reporting all its tests counts
# the tests it announced but did not report as failed (at least one).
# Ends with exactly one line "unit: N passed, M failed"; the exit status is
# non-zero when M > 0 or when no binary was given.
# Usage: tests/run-unit.sh build/tests/test_*     (UNIT_TIMEOUT=seconds, default 300)
passed=0 failed=0 bad=""
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

count() { grep -c -E "$1" "$out"; }
sum() { # adds up the number captured by sed regex $1 on every matching line
	sed -n -E "s/$1/\\1/p" "$out" | awk '{ s += $1 } END { print s + 0 }'
}

# Line-buffered stdout, so that cmocka's stdout and stderr lines stay in order.
# stdbuf works by LD_PRELOAD, which AddressSanitizer builds must be told to allow.
run=()
command -v stdbuf >/dev/null 2>&1 && run=(stdbuf -oL -eL)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

if [ $# -eq 0 ]; then
	echo "run-unit: no test binaries given" >&2
	failed=1
fi
for bin in "$@"; do
	name=$(basename "$bin")
	echo "== $name"
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		echo "$name: not an executable file"
		failed=$((failed + 1))
		bad="$bad $name"
		continue
	fi
	timeout "${UNIT_TIMEOUT:-300}" "${run[@]}" "$bin" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	ran=$(sum '^\[==========\] Running ([0-9]+) test\(s\)\..*')
	if [ "$(count '^\[==========\] [0-9]+ test\(s\) run\.')" -gt 0 ]; then
		ok=$(sum '^\[  PASSED  \] ([0-9]+) test\(s\)\..*')
		ko=$(sum '^\[  FAILED  \] ([0-9]+) test\(s\).*')
	else            # no summary: it died mid-way; count what finished
		ok=$(count '^\[       OK \] ')
		ko=$(count '^\[  FAILED  \] ')
	fi
	if [ "$rc" -ne 0 ]; then
		unreported=$((ran - ok - ko))
		[ "$unreported" -lt 0 ] && unreported=0
		[ "$ko" -eq 0 ] && [ "$unreported" -eq 0 ] && unreported=1
		ko=$((ko + unreported))
		if [ "$rc" -eq 124 ]; then
			echo "$name: timed out after ${UNIT_TIMEOUT:-300} s"
		elif [ "$rc" -gt 128 ]; then
			echo "$name: killed by signal $((rc - 128))"
		else
			echo "$name: exit status $rc"
		fi
	fi
	passed=$((passed + ok))
	failed=$((failed + ko))
	[ "$ko" -gt 0 ] && bad="$bad $name"
done
[ -n "$bad" ] && echo "failed:$bad"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

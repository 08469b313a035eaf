#!/bin/bash
# Runs each cmocka test binary given as an argument, shows its output and adds up
# cmocka's "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)" lines. A binary
# that crashes, hangs or exits non-zero without reporting its failures counts the
# tests it announced but did not pass as failed (at least one).
# Ends with exactly one line "unit: N passed, M failed"; exits non-zero if M > 0.
# Usage: tests/run-unit.sh build/tests/test_*     (UNIT_TIMEOUT=seconds, default 300)
passed=0 failed=0 bad=""
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

sum() { # sum of the first number on each line of $out matching regex $1
	sed -n -E "s/$1/\\1/p" "$out" | awk '{ s += $1 } END { print s + 0 }'
}

for bin in "$@"; do
	name=$(basename "$bin")
	echo "== $name"
	if [ ! -x "$bin" ]; then
		echo "$name: not an executable file"
		failed=$((failed + 1))
		bad="$bad $name"
		continue
	fi
	timeout "${UNIT_TIMEOUT:-300}" "$bin" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	ran=$(sum '^\[==========\] Running ([0-9]+) test\(s\)\..*')
	ok=$(sum '^\[  PASSED  \] ([0-9]+) test\(s\)\..*')
	ko=$(sum '^\[  FAILED  \] ([0-9]+) test\(s\).*')
	if [ "$rc" -ne 0 ]; then
		unreported=$((ran - ok - ko))
		[ "$unreported" -lt 0 ] && unreported=0
		[ "$ko" -eq 0 ] && [ "$unreported" -eq 0 ] && unreported=1
		ko=$((ko + unreported))
		if [ "$rc" -eq 124 ]; then
			echo "$name: timed out"
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

#!/bin/bash
# Runs every tests/e2e/*.sh and prints one closing line: "e2e: N passed, M failed".
# E2E_ONLY=pattern runs the matching tests only.
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 failed_names=""
for t in tests/e2e/[0-9]*.sh; do
	case "$t" in *"${E2E_ONLY:-}"*) ;; *) continue ;; esac
	echo "== $(basename "$t" .sh)"
	if timeout 600 bash "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names="$failed_names $(basename "$t" .sh)"
	fi
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/bash
# Proves: third-party programs (python3, gzip, sqlite3, sort) run under libprof
# with byte-identical output and exit status, and yield valid profiles whose
# frames are named wherever the binaries carry symbols.
. "$(dirname "$0")/lib.sh"

seq 1 1500000 | awk '{ print ($1 * 7919) % 1000003 }' >"$WORK/nums.txt"
head -c 100000 /dev/urandom >"$WORK/garbage.gz"
QUERY="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<1500000) SELECT sum(x*x % 7) FROM c;"

# same NAME EXPECTED_FUNCTION COMMAND...: runs COMMAND with and without libprof.
same() {
	local name=$1 fn=$2; shift 2
	local out=$WORK/p-$name
	"$@" >"$WORK/plain.out" 2>"$WORK/plain.err"
	local plain=$?
	lp "$out" -- "$@" >"$WORK/lp.out" 2>"$WORK/lp.err"
	local profiled=$?
	check "$name: the exit status is the same ($plain)" test "$plain" = "$profiled"
	check "$name: stdout is byte-identical" cmp -s "$WORK/plain.out" "$WORK/lp.out"
	check "$name: stderr is identical" cmp -s "$WORK/plain.err" "$WORK/lp.err"
	[ "$fn" = - ] && return
	local files
	files=$(profiles "$out")
	check "$name: a profile was written" test -n "$files"
	check "$name: go tool pprof reads it" bash -c "go tool pprof -top $files >/dev/null 2>&1"
	check "$name: frames are symbolized ($fn is in the profile)" \
		test "$(cum_pct "$fn" $files)" != 0
}

same python3 _PyEval_EvalFrameDefault /usr/bin/python3 -c 'print(sum(i * i % 7 for i in range(3000000)))'
same gzip __libc_start_main gzip -9 -c "$WORK/nums.txt"
same gzip-error - gzip -d -c "$WORK/garbage.gz"
same sqlite3 sqlite3_step sqlite3 :memory: "$QUERY"
same sort __libc_start_main sort -n "$WORK/nums.txt"
finish

#!/bin/bash
# Proves: forked children and exec'd programs write their own profiles, the
# profile before exec is written, and LIBPROF_FOLLOW_EXEC=0 stops at exec.
. "$(dirname "$0")/lib.sh"

pids() { profiles "$1" | sed 's/.*\.\([0-9]*\)\.cpu\..*/\1/' | sort -u; }
has() { # has FUNCTION FILES...: FUNCTION appears in the profile
	local fn=$1; shift
	[ "$(cum_pct "$fn" "$@")" != 0 ]
}

out=$WORK/fork
lp "$out" -- "$PROGS/burn" fork 400 >/dev/null
check "fork: two processes wrote profiles" test "$(pids "$out" | wc -l)" = 2
for pid in $(pids "$out"); do
	f=$(profiles "$out" "burn.$pid.cpu.*")
	if has child_work $f; then
		check "fork: the child's profile ($pid) has no parent_work" \
			test "$(cum_pct parent_work $f)" = 0
		child=$pid
	else
		check "fork: the parent's profile ($pid) has parent_work" has parent_work $f
	fi
done
check "fork: one of them is the child's" test -n "${child:-}"

out=$WORK/forkexec
lp "$out" -- "$PROGS/burn" forkexec 400 >/dev/null
check "fork+exec: two processes wrote profiles" test "$(pids "$out" | wc -l)" = 2
check "fork+exec: the exec'd program was profiled" has execd_work $(profiles "$out")

out=$WORK/exec
lp "$out" -- "$PROGS/burn" exec 300 >/dev/null
check "exec: one pid, profiles before and after exec" test "$(pids "$out" | wc -l)" = 1
check "exec: the profile before exec was written" has before_exec $(profiles "$out")
check "exec: the new program was profiled" has execd_work $(profiles "$out")

out=$WORK/noexec
lp "$out" LIBPROF_FOLLOW_EXEC=0 -- "$PROGS/burn" forkexec 300 >/dev/null
check "FOLLOW_EXEC=0: only the parent wrote profiles" test "$(pids "$out" | wc -l)" = 1
check "FOLLOW_EXEC=0: the exec'd program was not profiled" \
	test "$(cum_pct execd_work $(profiles "$out"))" = 0
out=$WORK/noexec2
lp "$out" LIBPROF_FOLLOW_EXEC=0 -- "$PROGS/burn" exec 300 >/dev/null
check "FOLLOW_EXEC=0: the profile before exec is still written" has before_exec $(profiles "$out")
check "FOLLOW_EXEC=0: nothing after exec" test "$(cum_pct execd_work $(profiles "$out"))" = 0
finish

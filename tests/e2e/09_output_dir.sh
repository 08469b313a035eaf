#!/bin/bash
# Proves: profiles are named <service>.<pid>.cpu.<seq>.pb.gz, written into a
# private default directory that works from / , and a default directory that
# is open to other users is refused (fallback, with a warning).
. "$(dirname "$0")/lib.sh"

uid=$(id -u)
mkdir -p "$WORK/tmp"
(cd / && env TMPDIR="$WORK/tmp" LD_PRELOAD="$LIB" "$PROGS/burn" ratio 100 100 >/dev/null)
dir="$WORK/tmp/libprof-$uid"
check "the default directory is \$TMPDIR/libprof-<uid>" test -d "$dir"
check "it is private (0700)" test "$(stat -c %a "$dir")" = 700
check "file names are <service>.<pid>.cpu.<seq>.pb.gz" \
	bash -c "ls '$dir' | grep -Eq '^burn\.[0-9]+\.cpu\.[0-9]{6}\.pb\.gz$'"
check "no temporary file is left" test -z "$(ls -A "$dir" | grep -v '\.pb\.gz$')"

mkdir -p "$WORK/open/libprof-$uid" && chmod 777 "$WORK/open/libprof-$uid"
env TMPDIR="$WORK/open" LD_PRELOAD="$LIB" "$PROGS/burn" ratio 100 100 >/dev/null 2>"$WORK/e"
check "a directory open to others is refused with a warning" \
	grep -q "cannot write profiles to $WORK/open/libprof-$uid (it is not a private directory of this user)" "$WORK/e"
check "nothing was written into it" test -z "$(ls -A "$WORK/open/libprof-$uid")"
pid_files=$(ls /var/tmp/libprof-$uid/burn.*.pb.gz 2>/dev/null | wc -l)
check "the fallback /var/tmp/libprof-<uid> got the profile" test "$pid_files" -gt 0
rm -f /var/tmp/libprof-$uid/burn.*.pb.gz

lp "$WORK/explicit/deep/dir" -- "$PROGS/burn" ratio 100 100 >/dev/null
check "LIBPROF_OUTPUT_DIR is created when missing" test -n "$(profiles "$WORK/explicit/deep/dir")"
finish

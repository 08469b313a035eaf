#!/bin/bash
# Proves: a program that installs its own SIGPROF handler keeps working and
# gets its own signals; libprof goes on sampling with a spare signal, or stops
# with one warning when LIBPROF_CPU_SIGNAL was chosen explicitly.
. "$(dirname "$0")/lib.sh"

lp "$WORK/a" -- "$PROGS/own_sigprof" >"$WORK/o" 2>"$WORK/e"
check "the program got its own SIGPROF signals" grep -q "own_sigprof: ok" "$WORK/o"
check "it saw the default disposition before installing its own" grep -q "default at start: yes" "$WORK/o"
check "nothing on stderr (sampling moved quietly)" test ! -s "$WORK/e"
check "libprof kept sampling" test "$(total_ms $(profiles "$WORK/a"))" -gt 0

lp "$WORK/b" LIBPROF_CPU_SIGNAL=SIGPROF -- "$PROGS/own_sigprof" >"$WORK/o" 2>"$WORK/e"
check "explicit SIGPROF: the program still gets its signals" grep -q "own_sigprof: ok" "$WORK/o"
check "explicit SIGPROF: one warning that CPU profiling stops" \
	test "$(grep -c 'installs its own handler for signal 27; CPU profiling stops' "$WORK/e")" = 1

lp "$WORK/c" LIBPROF_CPU_SIGNAL=SIGRTMIN+5 -- "$PROGS/own_sigprof" >"$WORK/o" 2>"$WORK/e"
check "another signal: the program gets its SIGPROF" grep -q "own_sigprof: ok" "$WORK/o"
check "another signal: libprof samples too" test "$(total_ms $(profiles "$WORK/c"))" -gt 0
finish

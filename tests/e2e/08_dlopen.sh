#!/bin/bash
# Proves: a program that calls dlopen/dlclose in a loop while other threads are
# busy (and sampled) does not deadlock, and dlopen keeps its caller's search
# path (DT_RUNPATH) under libprof.
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/lib"
echo 'int plugin_value(void) { return 42; }' >"$WORK/plugin.c"
cc -shared -fPIC "$WORK/plugin.c" -o "$WORK/lib/libplugin.so"

lp "$WORK/out" LIBPROF_CPU_HZ=1000 -- timeout 120 "$PROGS/dlopen_loop" "$WORK/lib/libplugin.so" 3000 \
	>"$WORK/o" 2>"$WORK/e"
check "3000 dlopen/dlclose rounds finished (no deadlock)" grep -q "dlopen_loop ok" "$WORK/o"
check "the busy threads were sampled" test "$(cum_pct busy $(profiles "$WORK/out"))" != 0

cat >"$WORK/rp.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(void) { void *h = dlopen("libplugin.so", RTLD_NOW); puts(h ? "found" : dlerror()); return !h; }
C
cc "$WORK/rp.c" -o "$WORK/rp" -ldl -Wl,-rpath,'$ORIGIN/lib'
lp "$WORK/out2" -- "$WORK/rp" >"$WORK/o" 2>&1
check "dlopen by name finds the library through the program's RUNPATH" grep -qx found "$WORK/o"
finish

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
# A library loaded after profiles were written (the mappings change under the
# symbolizer) is named, and the program keeps running after it is unloaded.
cat >"$WORK/later.c" <<'C'
#include <time.h>
static volatile unsigned long sink;
void plugin_burn(double ms) {
	struct timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	double end = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 + ms, now;
	do { for (int i = 0; i < 20000; i++) sink = sink * 31 + i;
	     clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); now = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
	} while (now < end);
}
C
cat >"$WORK/host.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
	(void)argc;
	void *self = dlopen(NULL, RTLD_NOW); (void)self;
	void *h = dlopen(argv[1], RTLD_NOW);
	void (*burn)(double) = h ? (void (*)(double))dlsym(h, "plugin_burn") : 0;
	if (!burn) return 1;
	burn(300);                  /* before the plugin is replaced */
	dlclose(h);
	h = dlopen(argv[2], RTLD_NOW);
	burn = h ? (void (*)(double))dlsym(h, "plugin_burn") : 0;
	if (!burn) return 1;
	burn(700);
	dlclose(h);
	burn = 0;
	puts("host ok");
	return 0;
}
C
cc -shared -fPIC -g "$WORK/later.c" -o "$WORK/lib/liblater.so"
cp "$WORK/lib/liblater.so" "$WORK/lib/liblater2.so"
cc -g "$WORK/host.c" -o "$WORK/host" -ldl
lp "$WORK/out3" LIBPROF_INTERVAL=0.2 -- "$WORK/host" "$WORK/lib/liblater.so" "$WORK/lib/liblater2.so" \
	>"$WORK/o" 2>"$WORK/e"
check "a program loading and unloading libraries between profiles runs on" grep -qx "host ok" "$WORK/o"
check "nothing on stderr" test ! -s "$WORK/e"
check "functions of a library loaded later are named" \
	test "$(cum_pct plugin_burn $(profiles "$WORK/out3"))" != 0
finish

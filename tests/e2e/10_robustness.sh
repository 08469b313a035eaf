#!/bin/bash
# Proves: forking in a loop while threads run and the exporter is busy never
# deadlocks; a stack deeper than LIBPROF_MAX_DEPTH ends in [truncated]; C++
# names are demangled; the exit status and errno-dependent output of the
# program do not change; libprof writes nothing on stdout.
. "$(dirname "$0")/lib.sh"

lp "$WORK/fl" LIBPROF_INTERVAL=0.1 LIBPROF_CPU_HZ=1000 -- timeout 120 "$PROGS/burn" forkloop 300 \
	>"$WORK/o" 2>"$WORK/e"
check "300 forks with busy threads finished (no deadlock)" grep -qx "burn forkloop done" "$WORK/o"
check "nothing on stderr" test ! -s "$WORK/e"

lp "$WORK/churn" -- "$PROGS/burn" churn 10000 >"$WORK/o" 2>"$WORK/e"
check "10000 short threads: each thread's timer is deleted when it exits" \
	grep -qx "timers left: 1" "$WORK/o"
check "10000 short threads: no sample lost to the thread limit" \
	bash -c "go tool pprof -raw $(profiles "$WORK/churn" | tr '\n' ' ') 2>/dev/null | grep -q '0 thread limit' &&
		 ! go tool pprof -raw $(profiles "$WORK/churn" | tr '\n' ' ') 2>/dev/null | grep -Eq '[1-9][0-9]* thread limit'"

lp "$WORK/deep" LIBPROF_MAX_DEPTH=16 -- "$PROGS/burn" deep 40 300 >/dev/null
check "a stack deeper than LIBPROF_MAX_DEPTH ends in [truncated]" \
	test "$(cum_pct '[truncated]' $(profiles "$WORK/deep"))" != 0
lp "$WORK/deep2" -- "$PROGS/burn" deep 40 300 >/dev/null
check "with the default depth (64) the same stack is whole" \
	test "$(cum_pct '[truncated]' $(profiles "$WORK/deep2"))" = 0
check "and reaches main" test "$(cum_pct main $(profiles "$WORK/deep2"))" != 0

cat >"$WORK/names.cpp" <<'CPP'
#include <cstdio>
#include <ctime>
namespace shop { struct Cart {
	template <typename T> static double total(T n) {
		volatile double s = 0; timespec a, b; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
		do { for (T i = 0; i < n; i++) s = s + i * 0.5; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b); }
		while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 400);
		return s; } }; }
int main() { std::printf("%d\n", shop::Cart::total<long>(10000) > 0); }
CPP
g++ -O1 -g -fno-inline "$WORK/names.cpp" -o "$WORK/names"
lp "$WORK/cxx" -- "$WORK/names" >/dev/null
gzip -dc $(profiles "$WORK/cxx") | protoc --decode perftools.profiles.Profile \
	-I"$ROOT/proto" "$ROOT/proto/profile.proto" >"$WORK/decoded" 2>&1
check "protoc decodes the profile with our profile.proto" grep -q '^string_table: ""' "$WORK/decoded"
check "C++ names are demangled in full" \
	grep -q 'string_table: "double shop::Cart::total<long>(long)"' "$WORK/decoded"
check "the mangled name is kept as the system name" \
	bash -c "go tool pprof -raw $(profiles "$WORK/cxx") | grep -q '_ZN4shop4Cart5totalIlEEdT_'"

# libprof holds none of the program's descriptors: the same ones are open,
# and a program that closes every descriptor above 2 and reuses the numbers
# (daemons do) reads its own data, while libprof keeps profiling it.
fds() { ls /proc/self/fd | sort -n | tr '\n' ' '; }
plain_fds=$(bash -c "$(declare -f fds); fds")
lp_fds=$(env LD_PRELOAD="$LIB" LIBPROF_OUTPUT_DIR="$WORK/fd" bash -c "$(declare -f fds); fds")
check "the same descriptors are open with libprof ($plain_fds)" test "$plain_fds" = "$lp_fds"
cat >"$WORK/closeall.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static volatile unsigned long sink;
int main(int argc, char **argv) {
	(void)argc;
	for (int fd = 3; fd < 1024; fd++) close(fd);
	unsigned long sum = 0;
	for (int round = 0; round < 60; round++) {
		int fd = open(argv[0], O_RDONLY);
		char buf[4096];
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n; i++) sum += (unsigned char)buf[i];
		close(fd);
		struct timespec a, b; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
		do { for (int i = 0; i < 10000; i++) sink += i; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b); }
		while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 10000000L);
	}
	printf("checksum %lu\n", sum);
	return 0;
}
C
cc -O1 "$WORK/closeall.c" -o "$WORK/closeall"
"$WORK/closeall" >"$WORK/plain"
lp "$WORK/ca" LIBPROF_INTERVAL=0.2 -- "$WORK/closeall" >"$WORK/o" 2>"$WORK/e"
check "a program that closes every descriptor reads the same data" cmp -s "$WORK/plain" "$WORK/o"
check "and libprof keeps profiling it (several profiles, symbolized)" \
	test "$(cum_pct main $(profiles "$WORK/ca"))" != 0

cat >"$WORK/status.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
int main(void) { int fd = open("/nonexistent/x", O_RDONLY); printf("%d %s\n", fd, strerror(errno)); return 7; }
C
cc "$WORK/status.c" -o "$WORK/status"
"$WORK/status" >"$WORK/plain"; plain=$?
lp "$WORK/st" -- "$WORK/status" >"$WORK/prof"; prof=$?
check "exit status is unchanged (7)" test "$plain/$prof" = "7/7"
check "errno-dependent output is unchanged" cmp -s "$WORK/plain" "$WORK/prof"
finish

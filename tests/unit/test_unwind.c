/*
 * Unit tests of the unwinder's two paths: walks from cached frame rules
 * (unwinder/cfi.c) must give exactly the frames libunwind's stepper gives, from
 * a wrapper's own context and from a signal's, through recursion, frames with
 * large and dynamically sized locals, frame-pointer functions and callbacks
 * from libc (qsort); after lp_unwind_forget the rules are read again, and the
 * fast path really runs (its counters move, libunwind's do not).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "../../unwinder/unwinder.h"

#define MAX 64

struct two {
	uint64_t fast[MAX], slow[MAX];
	int n_fast, n_slow, t_fast, t_slow;
};

static struct two got;
static volatile int sink;

/* Both walks of one context, the cache's first (so libunwind warms nothing). */
static void walk_both(const ucontext_t *uc)
{
	lp_unwind_use_cache(1);
	got.n_fast = lp_unwind_capture(uc, 0, 0, got.fast, MAX, &got.t_fast);
	lp_unwind_use_cache(0);
	got.n_slow = lp_unwind_capture(uc, 0, 0, got.slow, MAX, &got.t_slow);
	lp_unwind_use_cache(1);
}

/* From a function's own context (as the wrappers walk). */
static __attribute__((noinline)) void walk_both_here(void)
{
	ucontext_t uc;
	if (getcontext(&uc) == 0)
		walk_both(&uc);
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)si;
	walk_both(ctx);
}

static int use_signal;

static __attribute__((noinline)) void leaf(void)
{
	if (use_signal)
		raise(SIGUSR1);
	else
		walk_both_here();
	sink++;
}

static __attribute__((noinline)) int recurse(int n)
{
	if (n == 0)
		leaf();
	else
		recurse(n - 1);
	return sink++;
}

static __attribute__((noinline)) void big_frame(int n)
{
	volatile char buf[70000];
	buf[n] = 1;
	recurse(3);
	sink += buf[n];
}

static __attribute__((noinline)) void dynamic_frame(int n)
{
	volatile char *buf = __builtin_alloca((size_t)n);
	buf[0] = 1;
	big_frame(n % 100);
	sink += buf[0];
}

static __attribute__((noinline, optimize("no-omit-frame-pointer"))) void with_fp(int n)
{
	dynamic_frame(n);
	sink++;
}

static int cmp(const void *a, const void *b)
{
	static int once;
	if (!once) {
		once = 1;
		with_fp(333);
	}
	return *(const int *)a - *(const int *)b;
}

static __attribute__((noinline)) void via_qsort(void)
{
	int v[8] = { 5, 3, 7, 1, 8, 2, 6, 4 };
	qsort(v, 8, sizeof(v[0]), cmp);
}

static void expect_same(void)
{
	if (got.n_fast != got.n_slow)
		fail_msg("fast walk: %d frames, libunwind: %d", got.n_fast, got.n_slow);
	for (int i = 0; i < got.n_fast; i++)
		if (got.fast[i] != got.slow[i])
			fail_msg("frame %d: fast %#llx, libunwind %#llx", i,
				 (unsigned long long)got.fast[i], (unsigned long long)got.slow[i]);
	assert_int_equal(got.t_fast, got.t_slow);
	assert_true(got.n_fast >= 8);
}

static void run_case(void (*body)(void), int by_signal)
{
	uint64_t fast0, slow0, rules0, fast1, slow1, rules1;
	use_signal = by_signal;
	memset(&got, 0, sizeof(got));
	lp_unwind_stats(&fast0, &slow0, &rules0);
	body();
	lp_unwind_stats(&fast1, &slow1, &rules1);
	expect_same();
	if (fast1 != fast0 + 1 || slow1 != slow0)
		fail_msg("fast walks +%llu (expected +1), handed to libunwind +%llu (expected 0)",
			 (unsigned long long)(fast1 - fast0), (unsigned long long)(slow1 - slow0));
}

static void deep(void)
{
	recurse(20);
}

static void mixed(void)
{
	with_fp(1000);
}

static void test_here_recursion(void **state)
{
	(void)state;
	run_case(deep, 0);
}

static void test_here_frames(void **state)
{
	(void)state;
	run_case(mixed, 0);
}

static void test_here_qsort(void **state)
{
	(void)state;
	run_case(via_qsort, 0);
}

static void test_signal_frames(void **state)
{
	(void)state;
	run_case(mixed, 1);
	run_case(deep, 1);
}

/* A second walk of the same stack reads no rule; after lp_unwind_forget every
 * rule is read again, and the frames stay the same. */
static void test_cache_and_forget(void **state)
{
	(void)state;
	uint64_t f[3], s[3], r[3];
	use_signal = 0;
	for (int i = 0; i < 3; i++) {       /* the same call site each time */
		if (i == 2)
			lp_unwind_forget();
		mixed();
		lp_unwind_stats(&f[i], &s[i], &r[i]);
	}
	/* No rule read again (two pcs of the walk may share a cache slot). */
	if (r[1] - r[0] > 2)
		fail_msg("%llu rules read for a walk already done", (unsigned long long)(r[1] - r[0]));
	int distinct = 0;                   /* recursion repeats return addresses */
	for (int i = 0; i < got.n_fast; i++) {
		int seen = 0;
		for (int j = 0; j < i; j++)
			seen |= got.fast[j] == got.fast[i];
		distinct += !seen;
	}
	if (r[2] - r[1] < (uint64_t)distinct)
		fail_msg("%llu rules read after forget, expected %d (the distinct pcs)",
			 (unsigned long long)(r[2] - r[1]), distinct);
	expect_same();
}

/* Truncation: the fast path stops at max like libunwind and says so. */
static void test_truncated(void **state)
{
	(void)state;
	uint64_t a[5], b[5];
	int ta, tb, na, nb;
	ucontext_t uc;
	assert_int_equal(getcontext(&uc), 0);
	lp_unwind_use_cache(1);
	na = lp_unwind_capture(&uc, 0, 0, a, 5, &ta);
	lp_unwind_use_cache(0);
	nb = lp_unwind_capture(&uc, 0, 0, b, 5, &tb);
	lp_unwind_use_cache(1);
	assert_int_equal(na, 5);
	assert_int_equal(nb, 5);
	assert_int_equal(ta, 1);
	assert_int_equal(tb, 1);
	assert_memory_equal(a, b, sizeof(a));
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	if (lp_unwind_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_here_recursion),
		cmocka_unit_test(test_here_frames),
		cmocka_unit_test(test_here_qsort),
		cmocka_unit_test(test_signal_frames),
		cmocka_unit_test(test_cache_and_forget),
		cmocka_unit_test(test_truncated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

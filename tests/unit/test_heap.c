/*
 * Unit tests of heap sampling: the recording side's live-block table and its
 * filter (preload/heap.c: insertions, removals in any order with colliding
 * addresses, the cap and its drop counter), the Poisson countdown's mean and
 * edges, and the exporter side (exporter/heapprof.c: unbiased weights, alloc
 * vs inuse, pruning of freed blocks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporter/internal.h"

#define expect_eq(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) \
		fail_msg("%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
} while (0)

#define MAX_LIVE 4096

static int setup(void **state)
{
	(void)state;
	static int done;
	if (!done) {
		lp.cfg.opt_heap_rate = 524288;
		lp.cfg.opt_heap_max_live = MAX_LIVE;
		lp.cfg.opt_max_depth = 16;
		atomic_store(&lp.initialized, 1);
		if (lp_heap_init() != 0 || !lp_heap_on)
			return -1;
		done = 1;
	}
	/* This process's own mallocs go through the wrappers too: keep them from
	 * being sampled into the table under test. */
	lp_self.heap_rng = 1;
	lp_self.heap_countdown = INT64_MAX;
	return 0;
}

/* Addresses whose table slots collide: the same high hash bits. */
static uintptr_t address(unsigned i)
{
	return 0x10000000u + (uintptr_t)i * 64;
}

/* Filter slots marked "maybe sampled". */
static unsigned filter_bits(void)
{
	unsigned n = 0;
	for (size_t i = 0; i < LP_HEAP_FILTER_SLOTS / 64; i++)
		n += (unsigned)__builtin_popcountll(lp_heap_filter[i]);
	return n;
}

/* How many of the blocks first..first+n-1 (every step-th) the filter lets
 * through as "never sampled". */
static unsigned filter_misses(unsigned first, unsigned n, unsigned step)
{
	unsigned missed = 0;
	for (unsigned i = first; i < first + n; i += step)
		missed += !lp_heap_maybe_sampled((void *)address(i));
	return missed;
}

/* Recorded blocks are live until forgotten, whatever the order of removal;
 * the filter never calls a live one "never sampled", and forgets them all. */
static void test_live_insert_and_forget(void **state)
{
	(void)state;
	enum { N = 3000 };
	uint64_t first_seq = 0;
	for (unsigned i = 0; i < N; i++)
		lp_heap_record((void *)address(i), 100);
	/* seqs are handed out in order: find the first one of ours */
	for (uint64_t s = 1; s < 1000000 && !first_seq; s++)
		if (lp_heap_is_live(address(0), s))
			first_seq = s;
	if (!first_seq)
		fail_msg("the first recorded block is not live under any seq");
	expect_eq(filter_misses(0, N, 1), 0);
	/* forget every third, in a scrambled order */
	for (unsigned k = 0; k < N; k++) {
		unsigned i = (k * 1237u) % N;
		if (i % 3 == 0)
			lp_heap_forget((void *)address(i));
	}
	for (unsigned i = 0; i < N; i++) {
		int live = lp_heap_is_live(address(i), first_seq + i);
		if (live != (i % 3 != 0))
			fail_msg("block %u: live %d, expected %d", i, live, i % 3 != 0);
	}
	expect_eq(filter_misses(1, N - 1, 3) + filter_misses(2, N - 2, 3), 0);
	for (unsigned i = 0; i < N; i++)
		lp_heap_forget((void *)address(i));
	expect_eq(filter_bits(), 0);
	/* a block forgotten and recorded again is live under its new seq only */
	lp_heap_record((void *)address(7), 100);
	expect_eq(lp_heap_is_live(address(7), first_seq + 7), 0);
	lp_heap_forget((void *)address(7));
}

/* Past LIBPROF_HEAP_MAX_LIVE blocks, samples are dropped and counted. */
static void test_live_cap(void **state)
{
	(void)state;
	atomic_store(&lp.n_dropped[LP_DROP_HEAP_LIVE_FULL], 0);
	for (unsigned i = 0; i < MAX_LIVE + 100; i++)
		lp_heap_record((void *)address(100000 + i), 64);
	expect_eq(atomic_load(&lp.n_dropped[LP_DROP_HEAP_LIVE_FULL]), 100);
	expect_eq(filter_misses(100000, MAX_LIVE, 1), 0);
	for (unsigned i = 0; i < MAX_LIVE + 100; i++)
		lp_heap_forget((void *)address(100000 + i));
	expect_eq(filter_bits(), 0);
}

/* The countdown samples one allocation per LIBPROF_HEAP_RATE bytes on average:
 * 64 MiB in 64-byte blocks at 64 KiB gives 1024 samples (+-3.1% one sigma). */
static void test_countdown_mean(void **state)
{
	(void)state;
	int64_t saved = lp.cfg.opt_heap_rate;
	lp.cfg.opt_heap_rate = 65536;
	lp_self.heap_rng = 0;       /* as in a new thread: drawn at its first malloc */
	lp_self.heap_countdown = 0;
	long samples = 0;
	for (long i = 0; i < (64L << 20) / 64; i++)
		samples += lp_heap_should_sample(64);
	lp.cfg.opt_heap_rate = saved;
	lp_self.heap_countdown = INT64_MAX;
	if (samples < 1024 * 0.88 || samples > 1024 * 1.12)
		fail_msg("%ld samples, expected 1024 +- 12%%", samples);
}

/* The allocation that reaches the sample point is sampled, one that falls a
 * byte short is not; with heap sampling off the countdown is parked: for good
 * once libprof is set up, for a while before. */
static void test_countdown_edges(void **state)
{
	(void)state;
	lp_self.heap_countdown = 100;
	int a = lp_heap_should_sample(99);
	int64_t left = lp_self.heap_countdown;
	int b = lp_heap_should_sample(1);
	int64_t redrawn = lp_self.heap_countdown;
	expect_eq(a, 0);
	expect_eq(left, 1);
	expect_eq(b, 1);
	if (redrawn <= 0)
		fail_msg("countdown after a sample: %lld, expected > 0", (long long)redrawn);

	lp_heap_on = 0;
	lp_self.heap_countdown = 0;
	int off = lp_heap_should_sample(64);
	int64_t parked = lp_self.heap_countdown;
	atomic_store(&lp.initialized, 0);
	lp_self.heap_countdown = 0;
	int early = lp_heap_should_sample(64);
	int64_t parked_early = lp_self.heap_countdown;
	atomic_store(&lp.initialized, 1);
	lp_heap_on = 1;
	lp_self.heap_countdown = INT64_MAX;
	expect_eq(off, 0);
	expect_eq(parked, INT64_MAX);
	expect_eq(early, 0);
	expect_eq(parked_early, 65536);
}

static struct lp_sample *alloc_sample(uint64_t addr, uint64_t size, uint64_t seq, uint64_t pc)
{
	static uint64_t buf[64];
	struct lp_sample *s = (struct lp_sample *)(void *)buf;
	memset(buf, 0, sizeof(buf));
	s->kind = LP_SAMPLE_ALLOC;
	s->addr = addr;
	s->size = size;
	s->seq = seq;
	s->depth = 2;
	s->pcs[0] = pc;
	s->pcs[1] = 0x400100;
	return s;
}

static uint64_t freed_addr;

static int all_live_but_one(uint64_t addr, uint64_t seq)
{
	(void)seq;
	return addr != freed_addr;
}

static const struct lp_stack *entry_with_leaf(const struct lp_table *t, uint64_t pc)
{
	for (size_t i = 0; i < lp_table_count(t); i++)
		if (lp_table_get(t, i)->pcs[0] == pc)
			return lp_table_get(t, i);
	return NULL;
}

/* Values are the unbiased estimates: a sample of size s at rate R stands for
 * 1/(1-exp(-s/R)) blocks; alloc_* count this interval, inuse_* the live ones. */
static void test_heapprof_weights(void **state)
{
	(void)state;
	const int64_t rate = 524288;
	struct lp_heapprof *h = lp_heapprof_new(1000, 1000, rate, all_live_but_one);
	assert_non_null(h);
	lp_heapprof_add(h, alloc_sample(0x1000, 16, 1, 0x400010));
	lp_heapprof_add(h, alloc_sample(0x2000, 16, 2, 0x400010));
	lp_heapprof_add(h, alloc_sample(0x3000, 4 << 20, 3, 0x400020));
	freed_addr = 0x2000;
	lp_heapprof_prune(h, all_live_but_one);
	const struct lp_table *t = lp_heapprof_build(h);
	const struct lp_stack *small = entry_with_leaf(t, 0x400010);
	const struct lp_stack *big = entry_with_leaf(t, 0x400020);
	assert_non_null(small);
	assert_non_null(big);
	double w = 1.0 / -expm1(-16.0 / (double)rate);
	expect_eq(small->values[0], 2 * llround(w));          /* alloc_objects */
	expect_eq(small->values[1], 2 * llround(w * 16));     /* alloc_space */
	expect_eq(small->values[2], llround(w));              /* inuse_objects: one freed */
	expect_eq(small->values[3], llround(w * 16));
	double wb = 1.0 / -expm1(-(double)(4 << 20) / (double)rate);
	expect_eq(big->values[0], llround(wb));               /* about 1: large blocks */
	expect_eq(big->values[3], llround(wb * (4 << 20)));
	/* the next interval: no allocations, the live ones still in use */
	lp_heapprof_end_interval(h);
	t = lp_heapprof_build(h);
	small = entry_with_leaf(t, 0x400010);
	assert_non_null(small);
	expect_eq(small->values[0], 0);
	expect_eq(small->values[2], llround(w));
	assert_false(lp_heapprof_empty(h));
	freed_addr = 0x1000;
	lp_heapprof_prune(h, all_live_but_one);
	freed_addr = 0x3000;
	lp_heapprof_prune(h, all_live_but_one);
	assert_true(lp_heapprof_empty(h));
	lp_heapprof_free(h);
}

static int everything_freed(uint64_t addr, uint64_t seq)
{
	(void)addr, (void)seq;
	return 0;
}

static int everything_live(uint64_t addr, uint64_t seq)
{
	(void)addr, (void)seq;
	return 1;
}

/* A busy heap: far more samples than the live cap, but freed since: the list
 * is pruned when it fills, so nothing is dropped. A heap that really holds more
 * than the cap drops (counted) and stays consistent. */
static void test_heapprof_fills(void **state)
{
	(void)state;
	struct lp_heapprof *h = lp_heapprof_new(500, 100, 524288, everything_freed);
	assert_non_null(h);
	for (uint64_t i = 0; i < 20000; i++)
		lp_heapprof_add(h, alloc_sample(0x100000 + i * 16, 64, i + 1, 0x400010 + i % 7));
	expect_eq(lp_heapprof_take_dropped(h), 0);
	lp_heapprof_free(h);

	h = lp_heapprof_new(500, 100, 524288, everything_live);
	assert_non_null(h);
	for (uint64_t i = 0; i < 2000; i++)
		lp_heapprof_add(h, alloc_sample(0x100000 + i * 16, 64, i + 1, 0x400010));
	expect_eq(lp_heapprof_take_dropped(h), 1500);
	const struct lp_table *t = lp_heapprof_build(h);
	expect_eq(lp_table_count(t), 1);
	double w = 1.0 / -expm1(-64.0 / 524288.0);
	expect_eq(lp_table_get(t, 0)->values[2], 500 * llround(w));
	lp_heapprof_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_live_insert_and_forget, setup),
		cmocka_unit_test_setup(test_live_cap, setup),
		cmocka_unit_test_setup(test_countdown_mean, setup),
		cmocka_unit_test_setup(test_countdown_edges, setup),
		cmocka_unit_test(test_heapprof_weights),
		cmocka_unit_test(test_heapprof_fills),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

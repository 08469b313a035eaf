/*
 * Unit tests of the aggregation table (exporter/table.c): which samples are
 * summed into one entry and which make a new one, the max_stacks cap and its
 * drop counter, reset, and a large table (index growth, arena moves).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporter/internal.h"

/* Equality printing both expressions and both values (in decimal). */
#define expect_eq(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) \
		fail_msg("%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
} while (0)

static const struct lp_labels no_labels;

static const uint64_t stack_a[] = { 0x401000, 0x402000, 0x403000, 0x404000 };

static void add_ok(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		   const struct lp_labels *labels, int64_t v0, int64_t v1)
{
	const int64_t values[2] = { v0, v1 };
	expect_eq(lp_table_add(t, pcs, depth, truncated, labels, values, 2), 0);
}

/* The entry with exactly these (pcs, depth, truncated, labels), or NULL. */
static const struct lp_stack *find(const struct lp_table *t, const uint64_t *pcs, int depth,
				   int truncated, const struct lp_labels *labels)
{
	for (size_t i = 0; i < lp_table_count(t); i++) {
		const struct lp_stack *s = lp_table_get(t, i);
		if (s->depth == depth && s->truncated == truncated &&
		    memcmp(s->pcs, pcs, (size_t)depth * sizeof(*pcs)) == 0 &&
		    memcmp(&s->labels, labels, sizeof(*labels)) == 0)
			return s;
	}
	return NULL;
}

static void expect_values(const struct lp_stack *s, int64_t v0, int64_t v1)
{
	if (!s)
		fail_msg("no entry has that stack, expected one with values { %lld, %lld }",
			 (long long)v0, (long long)v1);
	expect_eq(s->values[0], v0);
	expect_eq(s->values[1], v1);
}

/* Identical (pcs, depth, truncated, labels) samples sum into one entry that
 * holds a copy of the stack. */
static void test_identical_samples_sum(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(16);
	assert_non_null(t);
	uint64_t pcs[4];
	memcpy(pcs, stack_a, sizeof(pcs));
	add_ok(t, pcs, 4, 0, &no_labels, 1, 10);
	memset(pcs, 0xee, sizeof(pcs));         /* the table must not keep our buffer */
	add_ok(t, stack_a, 4, 0, &no_labels, 2, 20);
	add_ok(t, stack_a, 4, 0, &no_labels, 3, 30);
	expect_eq(lp_table_count(t), 1);
	const struct lp_stack *s = lp_table_get(t, 0);
	assert_non_null(s);
	expect_eq(s->depth, 4);
	expect_eq(s->truncated, 0);
	assert_memory_equal(s->pcs, stack_a, sizeof(stack_a));
	assert_memory_equal(&s->labels, &no_labels, sizeof(no_labels));
	expect_values(s, 6, 60);
	expect_eq(s->values[2], 0);
	expect_eq(s->values[3], 0);
	expect_eq(lp_table_dropped(t), 0);
	assert_null(lp_table_get(t, 1));
	lp_table_free(t);
}

/* A different trace id, span id, depth, truncated flag or any one pc makes a
 * separate entry, and later samples of each go to the right one. */
static void test_each_difference_makes_new_entry(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(16);
	assert_non_null(t);
	struct lp_labels trace = { .trace_id = { 1 }, .span_id = { 2 } };
	struct lp_labels other_span = trace;
	other_span.span_id[7] = 9;
	struct lp_labels other_trace = trace;
	other_trace.trace_id[15] = 1;
	uint64_t leaf_differs[4], root_differs[4];
	memcpy(leaf_differs, stack_a, sizeof(stack_a));
	memcpy(root_differs, stack_a, sizeof(stack_a));
	leaf_differs[0]++;
	root_differs[3]++;
	const uint64_t empty = 0;

	for (int round = 1; round <= 2; round++) {
		add_ok(t, stack_a, 4, 0, &no_labels, 1, 100);
		add_ok(t, stack_a, 4, 0, &trace, 2, 200);
		add_ok(t, stack_a, 4, 0, &other_span, 3, 300);
		add_ok(t, stack_a, 4, 0, &other_trace, 4, 400);
		add_ok(t, stack_a, 3, 0, &no_labels, 5, 500);
		add_ok(t, stack_a, 4, 1, &no_labels, 6, 600);
		add_ok(t, leaf_differs, 4, 0, &no_labels, 7, 700);
		add_ok(t, root_differs, 4, 0, &no_labels, 8, 800);
		add_ok(t, &empty, 0, 0, &no_labels, 9, 900);
		add_ok(t, &empty, 0, 1, &no_labels, 10, 1000);
		expect_eq(lp_table_count(t), 10);
		expect_values(find(t, stack_a, 4, 0, &no_labels), round * 1, round * 100);
		expect_values(find(t, stack_a, 4, 0, &trace), round * 2, round * 200);
		expect_values(find(t, stack_a, 4, 0, &other_span), round * 3, round * 300);
		expect_values(find(t, stack_a, 4, 0, &other_trace), round * 4, round * 400);
		expect_values(find(t, stack_a, 3, 0, &no_labels), round * 5, round * 500);
		expect_values(find(t, stack_a, 4, 1, &no_labels), round * 6, round * 600);
		expect_values(find(t, leaf_differs, 4, 0, &no_labels), round * 7, round * 700);
		expect_values(find(t, root_differs, 4, 0, &no_labels), round * 8, round * 800);
		expect_values(find(t, &empty, 0, 0, &no_labels), round * 9, round * 900);
		expect_values(find(t, &empty, 0, 1, &no_labels), round * 10, round * 1000);
	}
	expect_eq(lp_table_dropped(t), 0);
	lp_table_free(t);
}

/* Only the first n_values values are stored or added; the rest stay zero. */
static void test_only_n_values_are_used(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(4);
	assert_non_null(t);
	const int64_t four[LP_MAX_VALUES] = { 1, 2, 3, 4 };
	expect_eq(lp_table_add(t, stack_a, 2, 0, &no_labels, four, 1), 0);
	const struct lp_stack *s = lp_table_get(t, 0);
	expect_eq(s->values[0], 1);
	expect_eq(s->values[1], 0);
	expect_eq(lp_table_add(t, stack_a, 2, 0, &no_labels, four, LP_MAX_VALUES), 0);
	s = lp_table_get(t, 0);
	expect_eq(s->values[0], 2);
	expect_eq(s->values[1], 2);
	expect_eq(s->values[2], 3);
	expect_eq(s->values[3], 4);
	lp_table_free(t);
}

/* At max_stacks entries a new stack is refused with -ENOSPC and counted as
 * dropped, leaving the table as it was; existing stacks still aggregate. */
static void test_cap_refuses_new_stacks(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(3);
	assert_non_null(t);
	const int64_t one[2] = { 1, 7 };
	for (int k = 0; k < 3; k++)
		expect_eq(lp_table_add(t, stack_a + k, 1, 0, &no_labels, one, 2), 0);
	for (int k = 1; k <= 2; k++) {
		expect_eq(lp_table_add(t, stack_a + 3, 1, 0, &no_labels, one, 2), -ENOSPC);
		expect_eq(lp_table_dropped(t), k);
	}
	expect_eq(lp_table_add(t, stack_a, 1, 1, &no_labels, one, 2), -ENOSPC);
	expect_eq(lp_table_dropped(t), 3);
	expect_eq(lp_table_count(t), 3);
	assert_null(find(t, stack_a + 3, 1, 0, &no_labels));

	expect_eq(lp_table_add(t, stack_a + 1, 1, 0, &no_labels, one, 2), 0);
	expect_eq(lp_table_count(t), 3);
	expect_eq(lp_table_dropped(t), 3);
	expect_values(find(t, stack_a + 0, 1, 0, &no_labels), 1, 7);
	expect_values(find(t, stack_a + 1, 1, 0, &no_labels), 2, 14);
	expect_values(find(t, stack_a + 2, 1, 0, &no_labels), 1, 7);
	lp_table_free(t);

	/* A cap of zero refuses everything. */
	t = lp_table_new(0);
	assert_non_null(t);
	expect_eq(lp_table_add(t, stack_a, 4, 0, &no_labels, one, 2), -ENOSPC);
	expect_eq(lp_table_count(t), 0);
	expect_eq(lp_table_dropped(t), 1);
	lp_table_free(t);
}

/* Reset empties the table and its drop counter; afterwards it fills again from
 * scratch (up to the cap), and an old stack starts again from its new values. */
static void test_reset_then_reuse(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(600);
	assert_non_null(t);
	uint64_t pcs[8];
	for (int round = 0; round < 3; round++) {
		for (uint64_t k = 0; k < 700; k++) {
			for (int d = 0; d < 8; d++)
				pcs[d] = 0x500000 + k * 64 + (uint64_t)d;
			const int64_t v[2] = { (int64_t)k, round };
			int rc = lp_table_add(t, pcs, 1 + (int)(k % 8), 0, &no_labels, v, 2);
			expect_eq(rc, k < 600 ? 0 : -ENOSPC);
		}
		expect_eq(lp_table_count(t), 600);
		expect_eq(lp_table_dropped(t), 100);
		for (uint64_t k = 0; k < 600; k += 37) {
			for (int d = 0; d < 8; d++)
				pcs[d] = 0x500000 + k * 64 + (uint64_t)d;
			expect_values(find(t, pcs, 1 + (int)(k % 8), 0, &no_labels), (int64_t)k,
				      round);
		}
		lp_table_reset(t);
		expect_eq(lp_table_count(t), 0);
		expect_eq(lp_table_dropped(t), 0);
		assert_null(lp_table_get(t, 0));
	}
	lp_table_free(t);
	lp_table_free(NULL);        /* like free(NULL) */
}

/* Stack number id: its depth (1..64) and pcs; pcs[0] encodes id. */
static int big_depth(uint32_t id)
{
	return 1 + (int)((id * 2654435761u) >> 26);
}

static void big_stack(uint32_t id, uint64_t *pcs)
{
	pcs[0] = 0x10000000ull + (uint64_t)id * 16;
	for (int d = 1; d < big_depth(id); d++)
		pcs[d] = 0x7f0000000000ull + (uint64_t)d * 0x1000 + (id % 97);
}

#define BIG_N 50000

/*
 * 50k distinct stacks of depth 1..64 (with a large cap) each added twice, in
 * two passes: every lookup still finds its entry after the index grew, every
 * entry's pcs point to its own stack after the arena moved, and values sum.
 */
static void test_many_stacks_survive_growth(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(1u << 20);
	assert_non_null(t);
	uint64_t pcs[64];
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t id = 0; id < BIG_N; id++) {
			big_stack(id, pcs);
			struct lp_labels lab = no_labels;
			lab.span_id[0] = (uint8_t)(id & 1);
			const int64_t v[2] = { 1, (int64_t)id };
			int rc = lp_table_add(t, pcs, big_depth(id), id % 5 == 0, &lab, v, 2);
			if (rc != 0)
				fail_msg("pass %d, stack %u: lp_table_add == %d, expected 0", pass,
					 id, rc);
		}
		expect_eq(lp_table_count(t), BIG_N);
	}
	expect_eq(lp_table_dropped(t), 0);

	unsigned char *seen = calloc(BIG_N, 1);
	assert_non_null(seen);
	for (size_t i = 0; i < BIG_N; i++) {
		const struct lp_stack *s = lp_table_get(t, i);
		assert_non_null(s);
		uint64_t id64 = (s->pcs[0] - 0x10000000ull) / 16;
		if (id64 >= BIG_N || seen[id64])
			fail_msg("entry %zu: pcs[0] == %#llx is no stack or a second copy", i,
				 (unsigned long long)s->pcs[0]);
		uint32_t id = (uint32_t)id64;
		seen[id] = 1;
		big_stack(id, pcs);
		expect_eq(s->depth, big_depth(id));
		expect_eq(s->truncated, id % 5 == 0);
		expect_eq(s->labels.span_id[0], id & 1);
		if (memcmp(s->pcs, pcs, (size_t)s->depth * sizeof(*pcs)) != 0)
			fail_msg("entry %zu (stack %u): pcs differ from the stack added", i, id);
		expect_eq(s->values[0], 2);
		expect_eq(s->values[1], 2 * (int64_t)id);
	}
	free(seen);
	lp_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical_samples_sum),
		cmocka_unit_test(test_each_difference_makes_new_entry),
		cmocka_unit_test(test_only_n_values_are_used),
		cmocka_unit_test(test_cap_refuses_new_stacks),
		cmocka_unit_test(test_reset_then_reuse),
		cmocka_unit_test(test_many_stacks_survive_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

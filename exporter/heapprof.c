/*
 * Heap profiles, the exporter side. Sampled allocations arrive from the ring;
 * each is added to the interval's allocation table and remembered as live
 * (its seq, address, size and stack). At each profile the live list is pruned
 * against the recording side's table (preload/heap.c: a block freed since is
 * gone from it), and the profile is built with four values per stack:
 * alloc_objects, alloc_space (allocations of this interval), inuse_objects,
 * inuse_space (sampled blocks live at its end). Values are unbiased estimates:
 * a sampled block of size s at mean rate R stands for 1 / (1 - exp(-s/R))
 * blocks (docs/ARCHITECTURE.md).
 *
 * Stacks of live blocks are interned in a table of their own; it is compacted
 * when most of its stacks are no longer referenced.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct live_block {
	uint64_t seq, addr, size;
	uint32_t stack;             /* index into stacks */
};

struct lp_heapprof {
	struct lp_table *alloc;     /* this interval: [objects, bytes] */
	struct lp_table *total;     /* since start, when asked for: [objects, bytes] */
	struct lp_table *stacks;    /* stacks of live blocks (values unused) */
	struct lp_table *out;       /* the profile being built */
	struct live_block *live;
	size_t n_live, cap_live, max_live, max_stacks;
	int64_t rate;
	uint64_t n_dropped;         /* live list or stack table full */
	int (*is_live)(uint64_t addr, uint64_t seq);
};

struct lp_heapprof *lp_heapprof_new(size_t max_live, size_t max_stacks, int64_t rate,
				    int (*is_live)(uint64_t addr, uint64_t seq))
{
	struct lp_heapprof *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->alloc = lp_table_new(max_stacks);
	h->stacks = lp_table_new(max_stacks);
	h->out = lp_table_new(max_stacks * 2);
	h->max_live = max_live;
	h->max_stacks = max_stacks;
	h->rate = rate;
	h->is_live = is_live;
	if (!h->alloc || !h->stacks || !h->out) {
		lp_heapprof_free(h);
		return NULL;
	}
	return h;
}

void lp_heapprof_free(struct lp_heapprof *h)
{
	if (!h)
		return;
	lp_table_free(h->alloc);
	lp_table_free(h->total);
	lp_table_free(h->stacks);
	lp_table_free(h->out);
	free(h->live);
	free(h);
}

/* Blocks a sample of size bytes stands for: 1 / (1 - exp(-size/rate)). */
static double weight(const struct lp_heapprof *h, uint64_t size)
{
	if (size == 0)
		return 1.0;
	double p = -expm1(-(double)size / (double)h->rate);
	return p > 0 ? 1.0 / p : 1.0;
}

static void scaled(const struct lp_heapprof *h, uint64_t size, int64_t *objects, int64_t *bytes)
{
	double w = weight(h, size);
	*objects = llround(w);
	*bytes = llround(w * (double)size);
}

void lp_heapprof_add(struct lp_heapprof *h, const struct lp_sample *s)
{
	int64_t v[2];
	scaled(h, s->size, &v[0], &v[1]);
	if (lp_table_add(h->alloc, s->pcs, s->depth, s->truncated, &s->labels, v, 2) < 0) {
		/* counted by the table */
	}
	if (h->total && lp_table_add(h->total, s->pcs, s->depth, s->truncated, &s->labels, v, 2) < 0) {
		/* counted by the table */
	}
	if (h->n_live == h->cap_live)
		lp_heapprof_prune(h, h->is_live);   /* most of a busy heap's samples are freed */
	if (h->n_live >= h->max_live) {
		h->n_dropped++;
		return;
	}
	if (h->n_live == h->cap_live) {
		size_t cap = h->cap_live ? h->cap_live * 2 : 256;
		struct live_block *bigger = realloc(h->live, cap * sizeof(*bigger));
		if (!bigger) {
			h->n_dropped++;
			return;
		}
		h->live = bigger;
		h->cap_live = cap;
	}
	int stack = lp_table_intern(h->stacks, s->pcs, s->depth, s->truncated, &s->labels);
	if (stack < 0) {
		h->n_dropped++;
		return;
	}
	struct live_block *b = &h->live[h->n_live++];
	b->seq = s->seq;
	b->addr = s->addr;
	b->size = s->size;
	b->stack = (uint32_t)stack;
}

/* Rebuilds the stack table with the referenced stacks only. */
static void compact_stacks(struct lp_heapprof *h)
{
	struct lp_table *fresh = lp_table_new(h->max_stacks);
	if (!fresh)
		return;
	for (size_t i = 0; i < h->n_live; i++) {
		const struct lp_stack *st = lp_table_get(h->stacks, h->live[i].stack);
		int idx = lp_table_intern(fresh, st->pcs, st->depth, st->truncated, &st->labels);
		if (idx < 0) {          /* cannot happen: fresh is as large */
			lp_table_free(fresh);
			return;
		}
		h->live[i].stack = (uint32_t)idx;
	}
	lp_table_free(h->stacks);
	h->stacks = fresh;
}

void lp_heapprof_prune(struct lp_heapprof *h, int (*is_live)(uint64_t addr, uint64_t seq))
{
	size_t kept = 0;
	for (size_t i = 0; i < h->n_live; i++)
		if (is_live(h->live[i].addr, h->live[i].seq))
			h->live[kept++] = h->live[i];
	h->n_live = kept;
	if (lp_table_count(h->stacks) > 1024 && lp_table_count(h->stacks) > 2 * kept)
		compact_stacks(h);
}

static const struct lp_table *build(struct lp_heapprof *h, const struct lp_table *alloc)
{
	lp_table_reset(h->out);
	for (size_t i = 0; i < lp_table_count(alloc); i++) {
		const struct lp_stack *st = lp_table_get(alloc, i);
		int64_t v[4] = { st->values[0], st->values[1], 0, 0 };
		if (lp_table_add(h->out, st->pcs, st->depth, st->truncated, &st->labels, v, 4) < 0) {
			/* counted by the table */
		}
	}
	for (size_t i = 0; i < h->n_live; i++) {
		const struct lp_stack *st = lp_table_get(h->stacks, h->live[i].stack);
		int64_t v[4] = { 0, 0, 0, 0 };
		scaled(h, h->live[i].size, &v[2], &v[3]);
		if (lp_table_add(h->out, st->pcs, st->depth, st->truncated, &st->labels, v, 4) < 0) {
			/* counted by the table */
		}
	}
	return h->out;
}

const struct lp_table *lp_heapprof_build(struct lp_heapprof *h)
{
	return build(h, h->alloc);
}

int lp_heapprof_keep_totals(struct lp_heapprof *h)
{
	if (!h->total)
		h->total = lp_table_new(h->max_stacks);
	return h->total ? 0 : -ENOMEM;
}

const struct lp_table *lp_heapprof_build_totals(struct lp_heapprof *h)
{
	lp_heapprof_prune(h, h->is_live);
	return build(h, h->total ? h->total : h->alloc);
}

int lp_heapprof_empty(const struct lp_heapprof *h)
{
	return lp_table_count(h->alloc) == 0 && h->n_live == 0;
}

uint64_t lp_heapprof_take_dropped(struct lp_heapprof *h)
{
	uint64_t n = h->n_dropped + lp_table_dropped(h->alloc) + lp_table_dropped(h->out);
	h->n_dropped = 0;
	return n;
}

void lp_heapprof_end_interval(struct lp_heapprof *h)
{
	lp_table_reset(h->alloc);
}

/*
 * The aggregation table: identical (stack, labels) samples are summed into one
 * entry. Exporter thread only. Entries live in one array, their pcs in one
 * arena; an open-addressing index of entry numbers finds them. The table is
 * capped at max_stacks entries; samples for new stacks beyond that are counted
 * as dropped.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lp_table {
	struct lp_stack *entries;
	size_t n, cap, max;
	uint32_t *index;            /* entry number + 1; 0 = empty */
	size_t index_mask;
	uint64_t *arena;
	size_t arena_used, arena_cap;
	uint64_t n_dropped;
};

static uint64_t hash_stack(const uint64_t *pcs, int depth, int truncated,
			   const struct lp_labels *labels)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)depth ^ ((uint64_t)truncated << 32);
	for (int i = 0; i < depth; i++) {
		h ^= pcs[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 33;
	}
	const unsigned char *b = (const unsigned char *)labels;
	for (size_t i = 0; i < sizeof(*labels); i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h ? h : 1;
}

struct lp_table *lp_table_new(size_t max_stacks)
{
	struct lp_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->max = max_stacks;
	t->index_mask = 255;
	t->index = calloc(t->index_mask + 1, sizeof(*t->index));
	if (!t->index) {
		free(t);
		return NULL;
	}
	return t;
}

static int grow_index(struct lp_table *t)
{
	size_t size = (t->index_mask + 1) * 2;
	uint32_t *index = calloc(size, sizeof(*index));
	if (!index)
		return -ENOMEM;
	for (size_t e = 0; e < t->n; e++) {
		size_t i = t->entries[e].hash & (size - 1);
		while (index[i])
			i = (i + 1) & (size - 1);
		index[i] = (uint32_t)e + 1;
	}
	free(t->index);
	t->index = index;
	t->index_mask = size - 1;
	return 0;
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

/* The entry of (pcs, depth, truncated, labels), created (zeroed) when missing.
 * Returns its index, or -ENOSPC (full, counted) or -ENOMEM. */
static long find_or_insert(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
			   const struct lp_labels *labels)
{
	uint64_t h = hash_stack(pcs, depth, truncated, labels);
	size_t i = h & t->index_mask;
	for (; t->index[i]; i = (i + 1) & t->index_mask) {
		struct lp_stack *e = &t->entries[t->index[i] - 1];
		if (e->hash == h && e->depth == depth && e->truncated == truncated &&
		    memcmp(e->pcs, pcs, (size_t)depth * sizeof(*pcs)) == 0 &&
		    memcmp(&e->labels, labels, sizeof(*labels)) == 0)
			return (long)t->index[i] - 1;
	}
	if (t->n >= t->max) {
		t->n_dropped++;
		return -ENOSPC;
	}
	if ((t->n + 1) * 2 > t->index_mask + 1) {
		if (grow_index(t) < 0) {
			t->n_dropped++;
			return -ENOMEM;
		}
		for (i = h & t->index_mask; t->index[i]; i = (i + 1) & t->index_mask)
			;
	}
	uint64_t *old_arena = t->arena;
	if (reserve((void **)&t->entries, &t->cap, t->n + 1, sizeof(*t->entries)) < 0 ||
	    reserve((void **)&t->arena, &t->arena_cap, t->arena_used + (size_t)depth,
		    sizeof(*t->arena)) < 0) {
		t->n_dropped++;
		return -ENOMEM;
	}
	if (t->arena != old_arena)  /* rebase the stacks already stored */
		for (size_t e = 0; e < t->n; e++)
			t->entries[e].pcs = t->arena + (t->entries[e].pcs - old_arena);
	struct lp_stack *e = &t->entries[t->n];
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->depth = (uint16_t)depth;
	e->truncated = (uint16_t)truncated;
	e->labels = *labels;
	e->pcs = t->arena + t->arena_used;
	memcpy(t->arena + t->arena_used, pcs, (size_t)depth * sizeof(*pcs));
	t->arena_used += (size_t)depth;
	t->index[i] = (uint32_t)++t->n;
	return (long)t->n - 1;
}

int lp_table_add(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		 const struct lp_labels *labels, const int64_t *values, int n_values)
{
	long idx = find_or_insert(t, pcs, depth, truncated, labels);
	if (idx < 0)
		return (int)idx;
	struct lp_stack *e = &t->entries[idx];
	for (int v = 0; v < n_values && v < LP_MAX_VALUES; v++)
		e->values[v] += values[v];
	return 0;
}

int lp_table_intern(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		    const struct lp_labels *labels)
{
	long idx = find_or_insert(t, pcs, depth, truncated, labels);
	return idx > 2147483647L ? -ENOSPC : (int)idx;
}

size_t lp_table_count(const struct lp_table *t) { return t->n; }

const struct lp_stack *lp_table_get(const struct lp_table *t, size_t i)
{
	return i < t->n ? &t->entries[i] : NULL;
}

uint64_t lp_table_dropped(const struct lp_table *t) { return t->n_dropped; }

size_t lp_table_frames(const struct lp_table *t) { return t->arena_used; }

void lp_table_reset(struct lp_table *t)
{
	t->n = 0;
	t->arena_used = 0;
	t->n_dropped = 0;
	memset(t->index, 0, (t->index_mask + 1) * sizeof(*t->index));
}

void lp_table_free(struct lp_table *t)
{
	if (!t)
		return;
	free(t->entries);
	free(t->index);
	free(t->arena);
	free(t);
}

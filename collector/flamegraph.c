/*
 * A merged profile as a flame-graph tree, for GET /api/v1/flamegraph and the
 * page (collector/web/): the JSON tree d3-flame-graph draws, each node
 * {"name", "value", "children"} with value = the node's total (itself and
 * everything it called). query.c merges the stored profiles (pprof_merge.c)
 * and hands the result here.
 *
 * Frames are functions, root first: a sample's locations are read from the
 * last (the root) to the first (the leaf), a location's inlined lines from
 * the outermost to the innermost; a location without lines is named
 * "[file] 0xADDR". Children with the same name under one parent are one node.
 *
 * Large profiles stay fast to draw: at most max_nodes nodes are sent, the
 * heaviest (a parent always before its children), and the children each kept
 * node loses are merged into one "[other]" child of the same total, so every
 * node's value and the total stay exact. Building is capped too (BUILD_CAP
 * nodes, then a stack that needs a new node ends in its parent's "[other]").
 * Both are in docs/COLLECTOR.md.
 */
#include "collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Perftools__Profiles__Profile Profile;

#define BUILD_CAP   (1u << 20)     /* nodes built before frames fold into "[other]" */
#define MAX_DEPTH   1024           /* frames of one stack; deeper ones are cut */
#define OTHER       "[other]"

struct node {
	uint32_t parent, name;
	uint32_t first, next;           /* children list (kept children once pruned) */
	uint32_t n_children, n_kept;    /* all children; children kept */
	uint32_t depth, size;           /* depth; nodes in the subtree, itself included */
	int64_t value;
	int64_t other;                  /* total of the children not kept */
	uint32_t other_nodes;           /* nodes merged into that "[other]" */
	uint8_t kept;
};

/* Names by text (a profile may repeat a string), and the tree's nodes. */
struct tree {
	const char **names;
	size_t n_names, cap_names;
	uint32_t *name_slots;           /* name index + 1; 0 = empty */
	size_t name_mask;
	char **synth;                   /* per location without lines: "[file] 0xADDR" */

	struct node *nodes;
	size_t n_nodes, cap_nodes;
	uint32_t *child_slots;          /* (parent, name) -> node index + 1 */
	size_t child_mask;
	uint32_t other_name;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return mix(h);
}

/* ---- names ----------------------------------------------------------------------------- */

static int grow_slots(uint32_t **slots, size_t *mask, size_t n, uint64_t (*key)(void *, uint32_t),
		      void *ctx)
{
	size_t size = *slots ? (*mask + 1) * 2 : 1024;
	uint32_t *s = calloc(size, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t j = key(ctx, (uint32_t)i) & (size - 1);

		while (s[j])
			j = (j + 1) & (size - 1);
		s[j] = (uint32_t)(i + 1);
	}
	free(*slots);
	*slots = s;
	*mask = size - 1;
	return 0;
}

static uint64_t name_key(void *ctx, uint32_t i)
{
	return hash_str(((struct tree *)ctx)->names[i]);
}

/* The name index of text s (s must outlive the tree). */
static int intern(struct tree *t, const char *s, uint32_t *out)
{
	uint64_t h = hash_str(s);
	size_t j;
	int err;

	if (!t->name_slots || t->n_names * 2 >= t->name_mask) {
		err = grow_slots(&t->name_slots, &t->name_mask, t->n_names, name_key, t);
		if (err)
			return err;
	}
	for (j = h & t->name_mask; t->name_slots[j]; j = (j + 1) & t->name_mask) {
		if (strcmp(t->names[t->name_slots[j] - 1], s) == 0) {
			*out = t->name_slots[j] - 1;
			return 0;
		}
	}
	if (t->n_names == t->cap_names) {
		size_t cap = t->cap_names ? t->cap_names * 2 : 256;
		const char **v = realloc(t->names, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->names = v;
		t->cap_names = cap;
	}
	t->names[t->n_names] = s;
	t->name_slots[j] = (uint32_t)(t->n_names + 1);
	*out = (uint32_t)t->n_names++;
	return 0;
}

/* ---- nodes ------------------------------------------------------------------------------ */

static uint64_t child_hash(uint32_t parent, uint32_t name)
{
	return mix(((uint64_t)parent << 32 | name) * 0x9e3779b97f4a7c15ull);
}

static uint64_t child_key(void *ctx, uint32_t i)
{
	const struct node *n = &((struct tree *)ctx)->nodes[i];

	return child_hash(n->parent, n->name);
}

static int new_node(struct tree *t, uint32_t parent, uint32_t name, uint32_t *out)
{
	struct node *n;

	if (t->n_nodes == t->cap_nodes) {
		size_t cap = t->cap_nodes ? t->cap_nodes * 2 : 1024;
		struct node *v = realloc(t->nodes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->nodes = v;
		t->cap_nodes = cap;
	}
	n = &t->nodes[t->n_nodes];
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->name = name;
	if (t->n_nodes) {               /* not the root */
		n->depth = t->nodes[parent].depth + 1;
		n->next = t->nodes[parent].first;
		t->nodes[parent].first = (uint32_t)t->n_nodes;
		t->nodes[parent].n_children++;
	}
	*out = (uint32_t)t->n_nodes++;
	return 0;
}

/* The child of parent named name, made if missing; past BUILD_CAP a missing
 * child is parent's "[other]" instead, and *folded is set. */
static int child(struct tree *t, uint32_t parent, uint32_t name, uint32_t *out, int *folded)
{
	size_t j;
	int err;

	if (!t->child_slots || t->n_nodes * 2 >= t->child_mask) {
		err = grow_slots(&t->child_slots, &t->child_mask, t->n_nodes, child_key, t);
		if (err)
			return err;
	}
	for (;;) {
		for (j = child_hash(parent, name) & t->child_mask; t->child_slots[j];
		     j = (j + 1) & t->child_mask) {
			const struct node *n = &t->nodes[t->child_slots[j] - 1];

			if (n->parent == parent && n->name == name) {
				*out = t->child_slots[j] - 1;
				return 0;
			}
		}
		if (t->n_nodes < BUILD_CAP || name == t->other_name)
			break;
		name = t->other_name;
		*folded = 1;
	}
	err = new_node(t, parent, name, out);
	if (!err)
		t->child_slots[j] = *out + 1;
	return err;
}

/* The name of a location's line j, or of the location itself when it has none. */
static int frame_name(struct tree *t, const Profile *p, const struct lp_pprof_index *ix,
		      size_t loc, size_t j, uint32_t *out)
{
	const Perftools__Profiles__Location *l = p->location[loc];
	const char *file = "";
	long m, f;

	if (l->n_line) {
		f = lp_pprof_find_func(p, ix, l->line[j]->function_id);
		return intern(t, f < 0 ? "?" : lp_pprof_str(p, p->function[f]->name), out);
	}
	if (!t->synth[loc]) {
		m = l->mapping_id ? lp_pprof_find_map(p, ix, l->mapping_id) : -1;
		if (m >= 0) {
			file = lp_pprof_str(p, p->mapping[m]->filename);
			file = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
		}
		if (asprintf(&t->synth[loc], *file ? "[%.200s] 0x%llx" : "%s0x%llx", file,
			     (unsigned long long)l->address) < 0) {
			t->synth[loc] = NULL;
			return -ENOMEM;
		}
	}
	return intern(t, t->synth[loc], out);
}

static int add_sample(struct tree *t, const Profile *p, const struct lp_pprof_index *ix,
		      const Perftools__Profiles__Sample *s, int64_t v)
{
	uint32_t at = 0, depth = 0, name;
	int err = 0, folded = 0;

	t->nodes[0].value = lp_sat_add(t->nodes[0].value, v);
	/* a stack that reached a folded "[other]" ends there: the rest is in it */
	for (size_t i = s->n_location_id; i-- > 0 && !err && !folded && depth < MAX_DEPTH;) {
		long loc = lp_pprof_find_loc(p, ix, s->location_id[i]);
		size_t n_lines;

		if (loc < 0)
			return -EINVAL;
		n_lines = p->location[loc]->n_line ? p->location[loc]->n_line : 1;
		for (size_t j = n_lines; j-- > 0 && !err && !folded && depth < MAX_DEPTH; depth++) {
			err = frame_name(t, p, ix, (size_t)loc, j, &name) ?:
			      child(t, at, name, &at, &folded);
			if (!err)
				t->nodes[at].value = lp_sat_add(t->nodes[at].value, v);
		}
	}
	return err;
}

/* ---- pruning to max_nodes ------------------------------------------------------------------ */

/* Heaviest first; a parent (never lighter than a child) before its children. */
static int cmp_weight(const void *a, const void *b, void *ctx)
{
	const struct tree *t = ctx;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	const struct node *x = &t->nodes[i], *y = &t->nodes[j];

	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Kept children of one parent together, by name. */
static int cmp_siblings(const void *a, const void *b, void *ctx)
{
	const struct tree *t = ctx;
	uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
	const struct node *x = &t->nodes[i], *y = &t->nodes[j];
	int c;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	c = strcmp(t->names[x->name], t->names[y->name]);
	return c ? c : (i < j ? -1 : i > j);
}

/* Marks the nodes to send: all, or the heaviest that fit in max_nodes together
 * with one "[other]" per kept node that loses children. *n_sent: nodes sent. */
static void prune(struct tree *t, size_t max_nodes, uint32_t *order, size_t *n_sent)
{
	size_t count, others;

	for (size_t i = 0; i < t->n_nodes; i++)
		order[i] = (uint32_t)i;
	if (t->n_nodes <= max_nodes) {
		for (size_t i = 0; i < t->n_nodes; i++) {
			t->nodes[i].kept = 1;
			t->nodes[i].n_kept = t->nodes[i].n_children;
		}
		*n_sent = t->n_nodes;
		return;
	}
	qsort_r(order, t->n_nodes, sizeof(*order), cmp_weight, t);
	t->nodes[0].kept = 1;
	count = 1;
	others = t->nodes[0].n_children > 0;
	for (size_t i = 1; i < t->n_nodes; i++) {
		struct node *n = &t->nodes[order[i]], *up = &t->nodes[n->parent];
		size_t want = count + 1 + others + (n->n_children > 0) -
			      (up->n_kept + 1 == up->n_children);

		if (!up->kept || want > max_nodes)
			break;
		n->kept = 1;
		up->n_kept++;
		count++;
		others += (n->n_children > 0);
		others -= (up->n_kept == up->n_children);
	}
	/* subtree sizes (children come after their parents), then what "[other]" takes */
	for (size_t i = t->n_nodes; i-- > 0;) {
		t->nodes[i].size++;
		if (i)
			t->nodes[t->nodes[i].parent].size += t->nodes[i].size;
	}
	for (size_t i = 1; i < t->n_nodes; i++) {
		struct node *n = &t->nodes[i], *up = &t->nodes[n->parent];

		if (!n->kept && up->kept) {
			up->other = lp_sat_add(up->other, n->value);
			up->other_nodes += n->size;
		}
	}
	*n_sent = count + others;
}

/* Relinks each kept node's kept children in name order. */
static void order_children(struct tree *t, uint32_t *order)
{
	size_t n = 0;

	for (size_t i = 1; i < t->n_nodes; i++) {
		if (t->nodes[i].kept)
			order[n++] = (uint32_t)i;
	}
	qsort_r(order, n, sizeof(*order), cmp_siblings, t);
	for (size_t i = 0; i < t->n_nodes; i++)
		t->nodes[i].first = 0;
	for (size_t i = n; i-- > 0;) {
		struct node *c = &t->nodes[order[i]];

		c->next = t->nodes[c->parent].first;
		t->nodes[c->parent].first = order[i];
	}
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static int has_list(const struct node *n)
{
	return n->first || n->other;
}

static int open_node(const struct tree *t, const struct node *n, struct lp_buf *out)
{
	return lp_buf_append(out, "{\"name\":", 8) ?: lp_buf_json_str(out, t->names[n->name]) ?:
	       lp_buf_printf(out, ",\"value\":%lld%s", (long long)n->value,
			     has_list(n) ? ",\"children\":[" : "}");
}

static int close_node(const struct node *n, struct lp_buf *out)
{
	if (!has_list(n))
		return 0;
	if (n->other)
		return lp_buf_printf(out, "%s{\"name\":\"" OTHER "\",\"value\":%lld,\"merged\":%u}]}",
				     n->first ? "," : "", (long long)n->other, n->other_nodes);
	return lp_buf_append(out, "]}", 2);
}

/* Depth first, without recursion: stacks may be deep. */
static int write_json(const struct tree *t, struct lp_buf *out)
{
	uint32_t at = 0;
	int err = open_node(t, &t->nodes[0], out);

	while (!err) {
		const struct node *n = &t->nodes[at];

		if (n->first) {
			at = n->first;
			err = open_node(t, &t->nodes[at], out);
			continue;
		}
		/* climb until a node has a next sibling, closing on the way */
		for (;;) {
			n = &t->nodes[at];
			err = close_node(n, out);
			if (err || at == 0)
				return err;
			if (n->next) {
				at = n->next;
				err = lp_buf_append(out, ",", 1) ?: open_node(t, &t->nodes[at], out);
				break;
			}
			at = n->parent;
		}
	}
	return err;
}

/* ---- the whole ------------------------------------------------------------------------------ */

static void tree_free(struct tree *t, size_t n_locations)
{
	free(t->names);
	free(t->name_slots);
	for (size_t i = 0; t->synth && i < n_locations; i++)
		free(t->synth[i]);
	free(t->synth);
	free(t->nodes);
	free(t->child_slots);
}

int lp_flamegraph_json(const Profile *p, int value_index, size_t max_nodes, struct lp_buf *out,
		       struct lp_flame_stats *st)
{
	struct lp_pprof_index ix = { 0 };
	struct tree t;
	uint32_t root, *order = NULL;
	size_t n_sent = 0;
	int err;

	memset(&t, 0, sizeof(t));
	memset(st, 0, sizeof(*st));
	if (value_index < 0 || (size_t)value_index >= p->n_sample_type || max_nodes < 2)
		return -EINVAL;
	t.synth = calloc(p->n_location + 1, sizeof(*t.synth));
	err = t.synth ? lp_pprof_index_build(p, &ix) : -ENOMEM;
	err = err ?: intern(&t, "all", &root) ?: intern(&t, OTHER, &t.other_name) ?:
	      new_node(&t, 0, root, &root);
	for (size_t i = 0; i < p->n_sample && !err; i++) {
		int64_t v = p->sample[i]->value[value_index];

		if (v > 0)
			err = add_sample(&t, p, &ix, p->sample[i], v);
	}
	if (!err && !(order = malloc(t.n_nodes * sizeof(*order))))
		err = -ENOMEM;
	if (!err) {
		prune(&t, max_nodes, order, &n_sent);
		order_children(&t, order);
		err = write_json(&t, out);
	}
	if (!err) {
		st->total = t.nodes[0].value;
		st->n_nodes = t.n_nodes;
		st->n_sent = n_sent;
	}
	free(order);
	lp_pprof_index_free(&ix);
	tree_free(&t, p->n_location);
	return err;
}

int lp_flamegraph_value_index(const Profile *p, const char *want)
{
	struct lp_pprof_info info;
	char *end;
	long v;

	if (!want || !*want) {
		lp_pprof_info(p, &info);
		return info.value_index;
	}
	for (size_t i = 0; i < p->n_sample_type; i++) {
		if (strcmp(lp_pprof_str(p, p->sample_type[i]->type), want) == 0)
			return (int)i;
	}
	v = strtol(want, &end, 10);
	if (*want >= '0' && *want <= '9' && !*end && v >= 0 && (size_t)v < p->n_sample_type)
		return (int)v;
	return -EINVAL;
}

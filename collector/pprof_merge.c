/*
 * Merging stored pprof profiles into one, for GET /api/v1/profiles.
 *
 * Every entity of an input profile is re-keyed by its content in output terms
 * (strings by text; mappings by range, offset, file and build id; functions by
 * names, file and line; locations by mapping, address and lines; samples by
 * stack and labels), interned in one hash table kind, and identical samples are
 * summed. Sample types are matched by (type, unit): their union, in order of
 * first appearance, is the output's, so profiles from different writers merge.
 * Inputs must have passed lp_pprof_check (pprof.c). Semantics: docs/COLLECTOR.md.
 */
#include "collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;

#define MAX_TYPES 32

/* ---- byte-string key -> dense index ------------------------------------------------ */

struct keytab {
	uint32_t *slots;            /* index + 1; 0 = empty */
	size_t mask;
	size_t *off;                /* key i is arena.data[off[i] .. off[i] + len[i]) */
	uint32_t *len;
	uint64_t *hash;
	size_t n, cap;
	struct lp_buf arena;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int keytab_grow(struct keytab *t)
{
	size_t size = t->slots ? (t->mask + 1) * 2 : 1024;
	uint32_t *slots = calloc(size, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t s = t->hash[i] & (size - 1);

		while (slots[s])
			s = (s + 1) & (size - 1);
		slots[s] = (uint32_t)(i + 1);
	}
	free(t->slots);
	t->slots = slots;
	t->mask = size - 1;
	return 0;
}

static int keytab_arrays(struct keytab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	size_t *off = realloc(t->off, cap * sizeof(*off));
	uint32_t *len;
	uint64_t *hash;

	if (!off)
		return -ENOMEM;
	t->off = off;
	len = realloc(t->len, cap * sizeof(*len));
	if (!len)
		return -ENOMEM;
	t->len = len;
	hash = realloc(t->hash, cap * sizeof(*hash));
	if (!hash)
		return -ENOMEM;
	t->hash = hash;
	t->cap = cap;
	return 0;
}

/* *idx = the key's index; *added = 1 when it is new. */
static int keytab_intern(struct keytab *t, const void *key, size_t n, size_t *idx, int *added)
{
	uint64_t h = hash_bytes(key, n);
	size_t s;
	int err;

	*added = 0;
	if (n > UINT32_MAX || t->n >= UINT32_MAX - 1)
		return -EFBIG;
	if (!t->slots || t->n * 2 >= t->mask) {
		err = keytab_grow(t);
		if (err)
			return err;
	}
	for (s = h & t->mask; t->slots[s]; s = (s + 1) & t->mask) {
		size_t i = t->slots[s] - 1;

		if (t->hash[i] == h && t->len[i] == n &&
		    memcmp(t->arena.data + t->off[i], key, n) == 0) {
			*idx = i;
			return 0;
		}
	}
	if (t->n == t->cap && (err = keytab_arrays(t)))
		return err;
	t->off[t->n] = t->arena.len;
	t->len[t->n] = (uint32_t)n;
	t->hash[t->n] = h;
	err = lp_buf_append(&t->arena, key, n);
	if (!err)
		err = lp_buf_append(&t->arena, "", 1);   /* strings stay NUL-terminated */
	if (err)
		return err;
	t->slots[s] = (uint32_t)(t->n + 1);
	*idx = t->n++;
	*added = 1;
	return 0;
}

/* Word w of key i (keys are not 8-byte aligned in the arena). */
static uint64_t key_word(const struct keytab *t, size_t i, size_t w)
{
	uint64_t v;

	memcpy(&v, t->arena.data + t->off[i] + w * 8, 8);
	return v;
}

static void keytab_free(struct keytab *t)
{
	free(t->slots);
	free(t->off);
	free(t->len);
	free(t->hash);
	lp_buf_free(&t->arena);
}

/* ---- the merge ---------------------------------------------------------------------- */

struct lp_merge {
	const char *trace_id;
	size_t max_samples;
	struct keytab strs, maps, funcs, locs, samples;
	uint64_t types[MAX_TYPES][2];     /* output (type, unit) string indexes */
	size_t n_types;
	struct lp_buf values;             /* int64 per sample x n_types */
	int64_t period, period_type[2], default_type;
	int have_period;
	int64_t start_ns, end_ns;
	struct lp_buf key, lkey;          /* scratch: sample and location keys */
};

int lp_merge_new(struct lp_merge **out, const char *trace_id, size_t max_samples)
{
	struct lp_merge *m = calloc(1, sizeof(*m));
	size_t idx;
	int added;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->trace_id = trace_id;
	m->max_samples = max_samples;
	if (keytab_intern(&m->strs, "", 0, &idx, &added)) {   /* string 0 is "" */
		lp_merge_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

/* Alignment-safe 8-byte words: keys are built as uint64_t arrays. */
static int key_put(struct lp_buf *k, uint64_t v)
{
	return lp_buf_append(k, &v, sizeof(v));
}

static int str_out(struct lp_merge *m, const Profile *p, int64_t i, uint64_t *out)
{
	const char *s = lp_pprof_str(p, i);
	size_t idx;
	int added, err = keytab_intern(&m->strs, s, strlen(s), &idx, &added);

	*out = idx;
	return err;
}

/* Widens every stored sample's values from n_types - 1 to n_types. */
static int add_type(struct lp_merge *m, uint64_t type, uint64_t unit, size_t *pos)
{
	size_t n = m->samples.n, old = m->n_types;
	struct lp_buf v = { 0 };
	int64_t zero = 0;
	int err = 0;

	for (size_t i = 0; i < m->n_types; i++) {
		if (m->types[i][0] == type && m->types[i][1] == unit) {
			*pos = i;
			return 0;
		}
	}
	if (m->n_types == MAX_TYPES)
		return -E2BIG;
	for (size_t i = 0; i < n && !err; i++) {
		err = lp_buf_append(&v, m->values.data + i * old * 8, old * 8);
		if (!err)
			err = lp_buf_append(&v, &zero, 8);
	}
	if (err) {
		lp_buf_free(&v);
		return err;
	}
	lp_buf_free(&m->values);
	m->values = v;
	m->types[m->n_types][0] = type;
	m->types[m->n_types][1] = unit;
	*pos = m->n_types++;
	return 0;
}

/* Output indexes for the input's strings, types, mappings and functions. */
struct remap {
	uint64_t *str, *map, *func, *loc;   /* loc: 0 = not yet mapped */
	size_t type[MAX_TYPES];
	struct lp_pprof_index ix;
};

static int map_tables(struct lp_merge *m, const Profile *p, struct remap *r)
{
	size_t idx = 0;
	int added, err = 0;

	for (size_t i = 0; i < p->n_string_table && !err; i++)
		err = str_out(m, p, (int64_t)i, &r->str[i]);
	for (size_t i = 0; i < p->n_mapping && !err; i++) {
		const Perftools__Profiles__Mapping *x = p->mapping[i];

		m->key.len = 0;
		err = key_put(&m->key, x->memory_start) ?: key_put(&m->key, x->memory_limit) ?:
		      key_put(&m->key, x->file_offset) ?: key_put(&m->key, r->str[x->filename]) ?:
		      key_put(&m->key, r->str[x->build_id]) ?:
		      key_put(&m->key, (uint64_t)x->has_functions | (uint64_t)x->has_filenames << 1 |
					       (uint64_t)x->has_line_numbers << 2 |
					       (uint64_t)x->has_inline_frames << 3) ?:
		      keytab_intern(&m->maps, m->key.data, m->key.len, &idx, &added);
		r->map[i] = idx + 1;
	}
	for (size_t i = 0; i < p->n_function && !err; i++) {
		const Perftools__Profiles__Function *f = p->function[i];

		m->key.len = 0;
		err = key_put(&m->key, r->str[f->name]) ?: key_put(&m->key, r->str[f->system_name]) ?:
		      key_put(&m->key, r->str[f->filename]) ?: key_put(&m->key, (uint64_t)f->start_line) ?:
		      keytab_intern(&m->funcs, m->key.data, m->key.len, &idx, &added);
		r->func[i] = idx + 1;
	}
	return err;
}

/* Location key: mapping, address, folded, n_lines, then (function, line) pairs. */
static int map_location(struct lp_merge *m, const Profile *p, struct remap *r, size_t i)
{
	const Perftools__Profiles__Location *l = p->location[i];
	long mp = l->mapping_id ? lp_pprof_find_map(p, &r->ix, l->mapping_id) : -1;
	size_t idx = 0;
	int added, err;

	m->lkey.len = 0;
	err = key_put(&m->lkey, mp >= 0 ? r->map[mp] : 0) ?: key_put(&m->lkey, l->address) ?:
	      key_put(&m->lkey, l->is_folded) ?: key_put(&m->lkey, l->n_line);
	for (size_t j = 0; j < l->n_line && !err; j++) {
		long f = lp_pprof_find_func(p, &r->ix, l->line[j]->function_id);

		err = f < 0 ? -EINVAL : key_put(&m->lkey, r->func[f]) ?:
					key_put(&m->lkey, (uint64_t)l->line[j]->line);
	}
	if (!err)
		err = keytab_intern(&m->locs, m->lkey.data, m->lkey.len, &idx, &added);
	r->loc[i] = idx + 1;
	return err;
}

static int add_sample(struct lp_merge *m, const Profile *p, struct remap *r, const Sample *s)
{
	size_t idx = 0;
	int added, err;
	int64_t *vals;

	m->key.len = 0;
	err = key_put(&m->key, s->n_location_id);
	for (size_t j = 0; j < s->n_location_id && !err; j++) {
		long li = lp_pprof_find_loc(p, &r->ix, s->location_id[j]);

		if (li < 0)
			return -EINVAL;
		if (!r->loc[li])
			err = map_location(m, p, r, (size_t)li);
		if (!err)
			err = key_put(&m->key, r->loc[li]);
	}
	for (size_t j = 0; j < s->n_label && !err; j++) {
		const Perftools__Profiles__Label *l = s->label[j];

		err = key_put(&m->key, r->str[l->key]) ?: key_put(&m->key, r->str[l->str]) ?:
		      key_put(&m->key, (uint64_t)l->num) ?: key_put(&m->key, r->str[l->num_unit]);
	}
	if (!err)
		err = keytab_intern(&m->samples, m->key.data, m->key.len, &idx, &added);
	if (err)
		return err;
	if (added) {
		static const int64_t zeros[MAX_TYPES];

		if (m->samples.n > m->max_samples)
			return -EFBIG;
		err = lp_buf_append(&m->values, zeros, m->n_types * 8);
		if (err)
			return err;
	}
	vals = (int64_t *)(void *)(m->values.data + idx * m->n_types * 8);
	for (size_t v = 0; v < s->n_value; v++)
		vals[r->type[v]] = lp_sat_add(vals[r->type[v]], s->value[v]);
	return 0;
}

static void note_times(struct lp_merge *m, const Profile *p, const struct remap *r)
{
	int64_t end;

	if (p->time_nanos > 0) {
		if (!m->start_ns || p->time_nanos < m->start_ns)
			m->start_ns = p->time_nanos;
		end = lp_sat_add(p->time_nanos, p->duration_nanos > 0 ? p->duration_nanos : 0);
		if (end > m->end_ns)
			m->end_ns = end;
	}
	if (!m->have_period && p->period_type) {
		m->have_period = 1;
		m->period = p->period;
		m->period_type[0] = (int64_t)r->str[p->period_type->type];
		m->period_type[1] = (int64_t)r->str[p->period_type->unit];
	}
	if (!m->default_type && p->default_sample_type)
		m->default_type = (int64_t)r->str[p->default_sample_type];
}

int lp_merge_add(struct lp_merge *m, const Profile *p)
{
	struct remap r;
	int err;

	memset(&r, 0, sizeof(r));
	if (p->n_sample_type > MAX_TYPES)
		return -E2BIG;
	err = lp_pprof_index_build(p, &r.ix);
	if (err)
		return err;
	r.str = calloc(p->n_string_table + 1, sizeof(*r.str));
	r.map = calloc(p->n_mapping + 1, sizeof(*r.map));
	r.func = calloc(p->n_function + 1, sizeof(*r.func));
	r.loc = calloc(p->n_location + 1, sizeof(*r.loc));
	err = r.str && r.map && r.func && r.loc ? map_tables(m, p, &r) : -ENOMEM;
	for (size_t i = 0; i < p->n_sample_type && !err; i++)
		err = add_type(m, r.str[p->sample_type[i]->type], r.str[p->sample_type[i]->unit],
			       &r.type[i]);
	for (size_t i = 0; i < p->n_sample && !err; i++) {
		const char *t;

		if (m->trace_id && (!(t = lp_pprof_sample_trace(p, p->sample[i])) ||
				    strcmp(t, m->trace_id) != 0))
			continue;
		err = add_sample(m, p, &r, p->sample[i]);
	}
	if (!err)
		note_times(m, p, &r);
	lp_pprof_index_free(&r.ix);
	free(r.str);
	free(r.map);
	free(r.func);
	free(r.loc);
	return err;
}

/* ---- output --------------------------------------------------------------------------- */

/* Everything the output Profile points to, freed together. */
struct out {
	char **strs;
	Perftools__Profiles__ValueType vt[MAX_TYPES + 1], *vtp[MAX_TYPES];
	Perftools__Profiles__Mapping *maps, **mapp;
	Perftools__Profiles__Function *funcs, **funcp;
	Perftools__Profiles__Location *locs, **locp;
	Perftools__Profiles__Line *lines, **linep;
	Sample *samples, **samplep;
	uint64_t *loc_ids;
	Perftools__Profiles__Label *labels, **labelp;
};

static void out_free(struct out *o)
{
	free(o->strs);
	free(o->maps);
	free(o->mapp);
	free(o->funcs);
	free(o->funcp);
	free(o->locs);
	free(o->locp);
	free(o->lines);
	free(o->linep);
	free(o->samples);
	free(o->samplep);
	free(o->loc_ids);
	free(o->labels);
	free(o->labelp);
}

static int out_alloc(struct out *o, const struct lp_merge *m, size_t n_lines, size_t n_ids,
		     size_t n_labels)
{
#define ALLOC(f, n) ((o->f = calloc((n) + 1, sizeof(*o->f))) != NULL)
	return ALLOC(strs, m->strs.n) && ALLOC(maps, m->maps.n) && ALLOC(mapp, m->maps.n) &&
	       ALLOC(funcs, m->funcs.n) && ALLOC(funcp, m->funcs.n) && ALLOC(locs, m->locs.n) &&
	       ALLOC(locp, m->locs.n) && ALLOC(lines, n_lines) && ALLOC(linep, n_lines) &&
	       ALLOC(samples, m->samples.n) && ALLOC(samplep, m->samples.n) &&
	       ALLOC(loc_ids, n_ids) && ALLOC(labels, n_labels) && ALLOC(labelp, n_labels)
		       ? 0 : -ENOMEM;
#undef ALLOC
}

static void fill_tables(struct out *o, const struct lp_merge *m, Profile *p)
{
	size_t ln = 0;

	for (size_t i = 0; i < m->strs.n; i++)
		o->strs[i] = (char *)m->strs.arena.data + m->strs.off[i];
	for (size_t i = 0; i < m->maps.n; i++) {
		Perftools__Profiles__Mapping *x = &o->maps[i];
		uint64_t flags = key_word(&m->maps, i, 5);

		perftools__profiles__mapping__init(x);
		x->id = i + 1;
		x->memory_start = key_word(&m->maps, i, 0);
		x->memory_limit = key_word(&m->maps, i, 1);
		x->file_offset = key_word(&m->maps, i, 2);
		x->filename = (int64_t)key_word(&m->maps, i, 3);
		x->build_id = (int64_t)key_word(&m->maps, i, 4);
		x->has_functions = flags & 1;
		x->has_filenames = !!(flags & 2);
		x->has_line_numbers = !!(flags & 4);
		x->has_inline_frames = !!(flags & 8);
		o->mapp[i] = x;
	}
	for (size_t i = 0; i < m->funcs.n; i++) {
		Perftools__Profiles__Function *f = &o->funcs[i];

		perftools__profiles__function__init(f);
		f->id = i + 1;
		f->name = (int64_t)key_word(&m->funcs, i, 0);
		f->system_name = (int64_t)key_word(&m->funcs, i, 1);
		f->filename = (int64_t)key_word(&m->funcs, i, 2);
		f->start_line = (int64_t)key_word(&m->funcs, i, 3);
		o->funcp[i] = f;
	}
	for (size_t i = 0; i < m->locs.n; i++) {
		Perftools__Profiles__Location *l = &o->locs[i];

		perftools__profiles__location__init(l);
		l->id = i + 1;
		l->mapping_id = key_word(&m->locs, i, 0);
		l->address = key_word(&m->locs, i, 1);
		l->is_folded = key_word(&m->locs, i, 2) != 0;
		l->n_line = key_word(&m->locs, i, 3);
		l->line = &o->linep[ln];
		for (size_t j = 0; j < l->n_line; j++, ln++) {
			perftools__profiles__line__init(&o->lines[ln]);
			o->lines[ln].function_id = key_word(&m->locs, i, 4 + 2 * j);
			o->lines[ln].line = (int64_t)key_word(&m->locs, i, 5 + 2 * j);
			o->linep[ln] = &o->lines[ln];
		}
		o->locp[i] = l;
	}
	p->string_table = o->strs;
	p->n_string_table = m->strs.n;
	p->mapping = o->mapp;
	p->n_mapping = m->maps.n;
	p->function = o->funcp;
	p->n_function = m->funcs.n;
	p->location = o->locp;
	p->n_location = m->locs.n;
}

static void fill_samples(struct out *o, const struct lp_merge *m, Profile *p)
{
	size_t id = 0, lb = 0;

	for (size_t i = 0; i < m->samples.n; i++) {
		Sample *s = &o->samples[i];
		size_t n_loc = key_word(&m->samples, i, 0);
		size_t n_lab = (m->samples.len[i] / 8 - 1 - n_loc) / 4;

		perftools__profiles__sample__init(s);
		s->location_id = &o->loc_ids[id];
		s->n_location_id = n_loc;
		for (size_t j = 0; j < n_loc; j++)
			o->loc_ids[id++] = key_word(&m->samples, i, 1 + j);
		s->label = &o->labelp[lb];
		s->n_label = n_lab;
		for (size_t j = 0; j < n_lab; j++, lb++) {
			Perftools__Profiles__Label *l = &o->labels[lb];
			size_t w = 1 + n_loc + 4 * j;

			perftools__profiles__label__init(l);
			l->key = (int64_t)key_word(&m->samples, i, w);
			l->str = (int64_t)key_word(&m->samples, i, w + 1);
			l->num = (int64_t)key_word(&m->samples, i, w + 2);
			l->num_unit = (int64_t)key_word(&m->samples, i, w + 3);
			o->labelp[lb] = l;
		}
		s->value = (int64_t *)(void *)(m->values.data + i * m->n_types * 8);
		s->n_value = m->n_types;
		o->samplep[i] = s;
	}
	p->sample = o->samplep;
	p->n_sample = m->samples.n;
}

/* Builds the output profile in p, pointing into m and o (free o after use). */
static int build(const struct lp_merge *m, Profile *p, struct out *o)
{
	size_t n_lines = 0, n_ids = 0, n_labels = 0;
	int err;

	for (size_t i = 0; i < m->locs.n; i++)
		n_lines += key_word(&m->locs, i, 3);
	for (size_t i = 0; i < m->samples.n; i++) {
		size_t n_loc = key_word(&m->samples, i, 0);

		n_ids += n_loc;
		n_labels += (m->samples.len[i] / 8 - 1 - n_loc) / 4;
	}
	err = out_alloc(o, m, n_lines, n_ids, n_labels);
	if (err)
		return err;
	for (size_t i = 0; i <= m->n_types; i++)
		perftools__profiles__value_type__init(&o->vt[i]);
	for (size_t i = 0; i < m->n_types; i++) {
		o->vt[i].type = (int64_t)m->types[i][0];
		o->vt[i].unit = (int64_t)m->types[i][1];
		o->vtp[i] = &o->vt[i];
	}
	p->sample_type = o->vtp;
	p->n_sample_type = m->n_types;
	fill_tables(o, m, p);
	fill_samples(o, m, p);
	if (m->have_period) {
		o->vt[m->n_types].type = m->period_type[0];
		o->vt[m->n_types].unit = m->period_type[1];
		p->period_type = &o->vt[m->n_types];
		p->period = m->period;
	}
	p->time_nanos = m->start_ns;
	p->duration_nanos = m->end_ns > m->start_ns ? m->end_ns - m->start_ns : 0;
	p->default_sample_type = m->default_type;
	return 0;
}

int lp_merge_finish(struct lp_merge *m, struct lp_buf *gz)
{
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	struct out o;
	int err;

	memset(&o, 0, sizeof(o));
	err = build(m, &p, &o) ?: lp_pprof_encode_gzip(&p, gz);
	out_free(&o);
	return err;
}

int lp_merge_view(struct lp_merge *m, int (*fn)(void *ctx, const Profile *p), void *ctx)
{
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	struct out o;
	int err;

	memset(&o, 0, sizeof(o));
	err = build(m, &p, &o) ?: fn(ctx, &p);
	out_free(&o);
	return err;
}

size_t lp_merge_n_samples(const struct lp_merge *m)
{
	return m->samples.n;
}

void lp_merge_free(struct lp_merge *m)
{
	if (!m)
		return;
	keytab_free(&m->strs);
	keytab_free(&m->maps);
	keytab_free(&m->funcs);
	keytab_free(&m->locs);
	keytab_free(&m->samples);
	lp_buf_free(&m->values);
	lp_buf_free(&m->key);
	lp_buf_free(&m->lkey);
	free(m);
}

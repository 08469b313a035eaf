/*
 * pprof encoding: turns an aggregation table into a perftools.profiles.Profile
 * (proto/profile.proto, compiled by protoc-c) with deduplicated strings,
 * mappings, locations and functions. Names come from the symbolizer, so the
 * mappings that have them say so (has_functions ...) and readers do not
 * re-symbolize. docs/ARCHITECTURE.md describes the mapping of fields.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Label Label;

/* uint64 key -> uint64 value, open addressing; key 0 is reserved. */
struct idmap {
	uint64_t *keys, *vals;
	size_t mask, n;
};

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

static int idmap_init(struct idmap *m, size_t expected)
{
	size_t size = 64;
	while (size < expected * 2 + 2)
		size <<= 1;
	m->keys = calloc(size, sizeof(*m->keys));
	m->vals = calloc(size, sizeof(*m->vals));
	m->mask = size - 1;
	m->n = 0;
	return m->keys && m->vals ? 0 : -ENOMEM;
}

static void idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
}

/* The slot for key: found (keys[i] == key) or the empty one to fill. */
static size_t idmap_slot(const struct idmap *m, uint64_t key)
{
	size_t i = mix(key) & m->mask;
	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & m->mask;
	return i;
}

struct builder {
	Profile p;
	/* strings */
	const char **strs;
	size_t n_strs, cap_strs;
	struct idmap str_ids;       /* string hash -> index + 1 (collisions chained by probing) */
	/* the rest */
	Mapping *maps;
	Mapping **map_ptrs;
	Location *locs;
	Location **loc_ptrs;
	Line *lines;
	Line **line_ptrs;
	size_t n_lines;
	Function *funcs;
	Function **func_ptrs;
	struct idmap loc_ids, func_ids;
	Sample *samples;
	Sample **sample_ptrs;
	uint64_t *loc_id_pool;
	int64_t *value_pool;
	Label *labels;
	Label **label_ptrs;
	char (*hex)[33];
	ValueType types[LP_MAX_VALUES], period_type;
	ValueType *type_ptrs[LP_MAX_VALUES];
	int64_t comments[4];
	uint64_t zero_loc, truncated_loc;   /* ids of the two locations not keyed by address */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ? h : 1;
}

static int64_t intern(struct builder *b, const char *s)
{
	if (!s || !*s)
		return 0;
	uint64_t h = hash_str(s);
	size_t i = mix(h) & b->str_ids.mask;
	for (; b->str_ids.keys[i]; i = (i + 1) & b->str_ids.mask)
		if (b->str_ids.keys[i] == h && strcmp(b->strs[b->str_ids.vals[i]], s) == 0)
			return (int64_t)b->str_ids.vals[i];
	if (b->n_strs == b->cap_strs || b->str_ids.n * 2 >= b->str_ids.mask)
		return -1;
	b->strs[b->n_strs] = s;
	b->str_ids.keys[i] = h;
	b->str_ids.vals[i] = b->n_strs;
	b->str_ids.n++;
	return (int64_t)b->n_strs++;
}

static uint64_t function_id(struct builder *b, const struct lp_frame *f)
{
	int64_t name = intern(b, f->name), sys = intern(b, f->system_name),
		file = intern(b, f->file);
	if (name < 0 || sys < 0 || file < 0)
		return 0;
	uint64_t key = mix((uint64_t)name * 0x100000001b3ull ^ mix((uint64_t)sys << 20 ^
								 (uint64_t)file)) | 1;
	size_t i = idmap_slot(&b->func_ids, key);
	for (; b->func_ids.keys[i] == key; i = (i + 1) & b->func_ids.mask) {
		Function *fn = &b->funcs[b->func_ids.vals[i] - 1];
		if (fn->name == name && fn->system_name == sys && fn->filename == file)
			return fn->id;
	}
	while (b->func_ids.keys[i])
		i = (i + 1) & b->func_ids.mask;
	Function *fn = &b->funcs[b->p.n_function];
	perftools__profiles__function__init(fn);
	fn->id = b->p.n_function + 1;
	fn->name = name;
	fn->system_name = sys;
	fn->filename = file;
	b->func_ptrs[b->p.n_function++] = fn;
	b->func_ids.keys[i] = key;
	b->func_ids.vals[i] = fn->id;
	return fn->id;
}

static Location *new_location(struct builder *b)
{
	Location *l = &b->locs[b->p.n_location];
	perftools__profiles__location__init(l);
	l->id = b->p.n_location + 1;
	b->loc_ptrs[b->p.n_location++] = l;
	return l;
}

static uint64_t location_id(struct builder *b, uint64_t addr, const struct lp_maps *maps,
			    struct lp_symbolizer *sym)
{
	if (!addr) {
		if (!b->zero_loc)
			b->zero_loc = new_location(b)->id;
		return b->zero_loc;
	}
	size_t i = idmap_slot(&b->loc_ids, addr);
	if (b->loc_ids.keys[i] == addr)
		return b->loc_ids.vals[i];
	Location *l = new_location(b);
	l->address = addr;
	int m = maps ? lp_maps_find(maps, addr) : -1;
	if (m >= 0)
		l->mapping_id = (uint64_t)m + 1;
	const struct lp_symbol *s = sym ? lp_sym_lookup(sym, addr) : NULL;
	if (m >= 0 && sym)  /* looked up: a reader has nothing more to try (pprof would
			     * otherwise POST the addresses to /debug/pprof/symbol) */
		b->maps[m].has_functions = 1;
	if (s && s->n > 0) {
		l->line = &b->line_ptrs[b->n_lines];
		for (int k = 0; k < s->n; k++) {
			Line *ln = &b->lines[b->n_lines];
			perftools__profiles__line__init(ln);
			ln->function_id = function_id(b, &s->frames[k]);
			ln->line = s->frames[k].line;
			b->line_ptrs[b->n_lines++] = ln;
			l->n_line++;
		}
		if (m >= 0) {
			Mapping *mp = &b->maps[m];
			mp->has_filenames |= s->frames[s->n - 1].file != NULL;
			mp->has_line_numbers |= s->frames[s->n - 1].line > 0;
			mp->has_inline_frames |= s->n > 1;
		}
	}
	b->loc_ids.keys[i] = addr;
	b->loc_ids.vals[i] = l->id;
	return l->id;
}

static uint64_t truncated_location(struct builder *b)
{
	static const struct lp_frame marker = { "[truncated]", "[truncated]", NULL, 0 };
	if (b->truncated_loc)
		return b->truncated_loc;
	Location *l = new_location(b);
	Line *ln = &b->lines[b->n_lines];
	perftools__profiles__line__init(ln);
	ln->function_id = function_id(b, &marker);
	b->line_ptrs[b->n_lines++] = ln;
	l->line = &b->line_ptrs[b->n_lines - 1];
	l->n_line = 1;
	b->truncated_loc = l->id;
	return l->id;
}

static void to_hex(char *out, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = "0123456789abcdef"[in[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int has_trace(const struct lp_labels *l)
{
	for (size_t i = 0; i < sizeof(l->trace_id); i++)
		if (l->trace_id[i])
			return 1;
	return 0;
}

static int add_labels(struct builder *b, Sample *s, const struct lp_labels *lab, size_t idx)
{
	if (!has_trace(lab))
		return 0;
	char *trace_hex = b->hex[2 * idx], *span_hex = b->hex[2 * idx + 1];
	to_hex(trace_hex, lab->trace_id, 16);
	to_hex(span_hex, lab->span_id, 8);
	Label *l = &b->labels[2 * idx];
	perftools__profiles__label__init(&l[0]);
	perftools__profiles__label__init(&l[1]);
	l[0].key = intern(b, "trace_id");
	l[0].str = intern(b, trace_hex);
	l[1].key = intern(b, "span_id");
	l[1].str = intern(b, span_hex);
	b->label_ptrs[2 * idx] = &l[0];
	b->label_ptrs[2 * idx + 1] = &l[1];
	s->label = &b->label_ptrs[2 * idx];
	s->n_label = 2;
	return 0;
}

static void free_builder(struct builder *b)
{
	free(b->strs);
	idmap_free(&b->str_ids);
	idmap_free(&b->loc_ids);
	idmap_free(&b->func_ids);
	free(b->maps);
	free(b->map_ptrs);
	free(b->locs);
	free(b->loc_ptrs);
	free(b->lines);
	free(b->line_ptrs);
	free(b->funcs);
	free(b->func_ptrs);
	free(b->samples);
	free(b->sample_ptrs);
	free(b->loc_id_pool);
	free(b->value_pool);
	free(b->labels);
	free(b->label_ptrs);
	free(b->hex);
}

static int alloc_builder(struct builder *b, const struct lp_table *t, size_t n_maps)
{
	size_t n = lp_table_count(t), frames = 0;
	for (size_t i = 0; i < n; i++)
		frames += lp_table_get(t, i)->depth + 1u;
	size_t n_lines = frames * LP_MAX_INLINE + 1;
	memset(b, 0, sizeof(*b));
	b->cap_strs = n_lines * 3 + n_maps * 2 + 4 * n + 64;
	b->strs = calloc(b->cap_strs, sizeof(*b->strs));
	b->maps = calloc(n_maps + 1, sizeof(*b->maps));
	b->map_ptrs = calloc(n_maps + 1, sizeof(*b->map_ptrs));
	b->locs = calloc(frames + 1, sizeof(*b->locs));
	b->loc_ptrs = calloc(frames + 1, sizeof(*b->loc_ptrs));
	b->lines = calloc(n_lines, sizeof(*b->lines));
	b->line_ptrs = calloc(n_lines, sizeof(*b->line_ptrs));
	b->funcs = calloc(n_lines, sizeof(*b->funcs));
	b->func_ptrs = calloc(n_lines, sizeof(*b->func_ptrs));
	b->samples = calloc(n + 1, sizeof(*b->samples));
	b->sample_ptrs = calloc(n + 1, sizeof(*b->sample_ptrs));
	b->loc_id_pool = calloc(frames + 1, sizeof(*b->loc_id_pool));
	b->value_pool = calloc(n * LP_MAX_VALUES + 1, sizeof(*b->value_pool));
	b->labels = calloc(2 * n + 1, sizeof(*b->labels));
	b->label_ptrs = calloc(2 * n + 1, sizeof(*b->label_ptrs));
	b->hex = calloc(2 * n + 1, sizeof(*b->hex));
	if (idmap_init(&b->str_ids, b->cap_strs) < 0 || idmap_init(&b->loc_ids, frames + 1) < 0 ||
	    idmap_init(&b->func_ids, n_lines) < 0 || !b->strs || !b->maps || !b->map_ptrs ||
	    !b->locs || !b->loc_ptrs || !b->lines || !b->line_ptrs || !b->funcs ||
	    !b->func_ptrs || !b->samples || !b->sample_ptrs || !b->loc_id_pool ||
	    !b->value_pool || !b->labels || !b->label_ptrs || !b->hex)
		return -ENOMEM;
	b->strs[b->n_strs++] = "";
	return 0;
}

static void add_mappings(struct builder *b, const struct lp_maps *maps)
{
	for (size_t i = 0; maps && i < maps->n; i++) {
		Mapping *m = &b->maps[i];
		perftools__profiles__mapping__init(m);
		m->id = i + 1;
		m->memory_start = maps->v[i].start;
		m->memory_limit = maps->v[i].limit;
		m->file_offset = maps->v[i].offset;
		m->filename = intern(b, maps->v[i].path);
		m->build_id = intern(b, maps->v[i].build_id);
		b->map_ptrs[i] = m;
	}
	b->p.mapping = b->map_ptrs;
	b->p.n_mapping = maps ? maps->n : 0;
}

static void add_header(struct builder *b, const struct lp_profile_desc *d)
{
	for (int i = 0; i < d->n_types; i++) {
		perftools__profiles__value_type__init(&b->types[i]);
		b->types[i].type = intern(b, d->types[i][0]);
		b->types[i].unit = intern(b, d->types[i][1]);
		b->type_ptrs[i] = &b->types[i];
	}
	b->p.sample_type = b->type_ptrs;
	b->p.n_sample_type = (size_t)d->n_types;
	perftools__profiles__value_type__init(&b->period_type);
	b->period_type.type = intern(b, d->period_type[0]);
	b->period_type.unit = intern(b, d->period_type[1]);
	b->p.period_type = &b->period_type;
	b->p.period = d->period;
	b->p.time_nanos = d->time_nanos;
	b->p.duration_nanos = d->duration_nanos;
	b->p.default_sample_type = intern(b, d->default_type);
	for (int i = 0; i < d->n_comments && i < 4; i++)
		b->comments[i] = intern(b, d->comments[i]);
	b->p.comment = b->comments;
	b->p.n_comment = (size_t)(d->n_comments < 4 ? d->n_comments : 4);
}

int lp_pprof_encode(const struct lp_table *t, const struct lp_profile_desc *d,
		    const struct lp_maps *maps, struct lp_symbolizer *sym, uint8_t **out,
		    size_t *len)
{
	struct builder b;
	int rc = -ENOMEM;
	if (d->n_types < 1 || d->n_types > LP_MAX_VALUES)
		return -EINVAL;
	if (alloc_builder(&b, t, maps ? maps->n : 0) < 0)
		goto done;
	perftools__profiles__profile__init(&b.p);
	add_header(&b, d);
	add_mappings(&b, maps);
	b.p.location = b.loc_ptrs;
	b.p.function = b.func_ptrs;
	size_t n = lp_table_count(t), used = 0;
	for (size_t i = 0; i < n; i++) {
		const struct lp_stack *st = lp_table_get(t, i);
		Sample *s = &b.samples[i];
		perftools__profiles__sample__init(s);
		s->location_id = &b.loc_id_pool[used];
		for (int k = 0; k < st->depth; k++) {
			/* Return addresses point after the call: use the call's last byte. */
			uint64_t addr = k == 0 ? st->pcs[k] : st->pcs[k] - 1;
			b.loc_id_pool[used++] = location_id(&b, addr, maps, sym);
		}
		if (st->truncated)
			b.loc_id_pool[used++] = truncated_location(&b);
		s->n_location_id = (size_t)(&b.loc_id_pool[used] - s->location_id);
		s->value = &b.value_pool[i * LP_MAX_VALUES];
		memcpy(s->value, st->values, sizeof(int64_t) * (size_t)d->n_types);
		s->n_value = (size_t)d->n_types;
		add_labels(&b, s, &st->labels, i);
		b.sample_ptrs[i] = s;
	}
	b.p.sample = b.sample_ptrs;
	b.p.n_sample = n;
	b.p.string_table = (char **)b.strs;
	b.p.n_string_table = b.n_strs;
	*len = perftools__profiles__profile__get_packed_size(&b.p);
	*out = malloc(*len ? *len : 1);
	if (*out) {
		perftools__profiles__profile__pack(&b.p, *out);
		rc = 0;
	}
done:
	free_builder(&b);
	return rc;
}

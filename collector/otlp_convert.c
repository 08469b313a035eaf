/*
 * OTLP profiles -> pprof (proto/otlp_profiles.proto, opentelemetry-proto
 * v1.10.0 layout, docs/wire-formats.md section 2). OTLP has one sample type
 * per Profile: the Profiles that are the sample types of one profile
 * (ingest_otlp.c picks them: same dictionary, time range and period) become
 * one pprof with their sample types in order, as the pprof libprof writes
 * itself. The request around it (resources, the response) is ingest_otlp.c.
 *
 * Dictionary entries are copied lazily, only those the profiles use, into a
 * pprof built in an arena and packed at the end. Samples with the same stack,
 * link and attributes are one pprof sample, with a value per sample type (0
 * where a Profile lacks it). A sample's Link becomes the string labels
 * trace_id (32 hex) and span_id (16 hex); its attributes become labels
 * (strings, bools and doubles as text, ints as numbers with their unit).
 * Every index is checked: one out of range rejects the conversion.
 */
#include "collector.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dict;
typedef Opentelemetry__Proto__Profiles__V1development__Profile OProfile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample OSample;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit OAttr;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Perftools__Profiles__Profile Profile;

#define MAX_LABELS 32          /* attributes kept per sample */

/* ---- an arena and pointer vectors for the pprof under construction -------------------- */

struct chunk {
	struct chunk *next;
	size_t used, size;
	alignas(16) unsigned char data[];
};

struct conv {
	const Dict *d;
	struct chunk *arena;
	/* pointer vectors that become the Profile's arrays */
	void **strs, **maps, **funcs, **locs, **samples;
	size_t n_strs, n_maps, n_funcs, n_locs, n_samples;
	size_t cap_strs, cap_maps, cap_funcs, cap_locs, cap_samples;
	/* dictionary index -> output string index / id (0: not yet) */
	uint32_t *smap, *mmap, *fmap, *lmap, *vmap;
	uint32_t trace_key, span_key;
	/* samples by stack, link and attributes: slots hold sample index + 1 */
	const OSample **keys;        /* the OTLP sample each output sample came from */
	uint32_t *slots;
	size_t mask, n_types;
	char error[160];
};

static void *alloc(struct conv *c, size_t n)
{
	struct chunk *k = c->arena;

	n = (n + 15) & ~(size_t)15;
	if (!k || k->size - k->used < n) {
		size_t size = n > 65536 ? n : 65536;

		k = malloc(sizeof(*k) + size);
		if (!k)
			return NULL;
		k->next = c->arena;
		k->used = 0;
		k->size = size;
		c->arena = k;
	}
	k->used += n;
	return memset(k->data + k->used - n, 0, n);
}

static int push(void ***v, size_t *n, size_t *cap, void *x)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		void **p = realloc(*v, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = x;
	return 0;
}
#define PUSH(c, what, x) push(&(c)->what, &(c)->n_##what, &(c)->cap_##what, (x))

static int bad(struct conv *c, const char *what)
{
	snprintf(c->error, sizeof(c->error), "%s out of range", what);
	return -EINVAL;
}

/* ---- strings, attributes, links -------------------------------------------------------- */

static int new_str(struct conv *c, const char *s, uint32_t *out)
{
	*out = (uint32_t)c->n_strs;
	return PUSH(c, strs, (void *)(uintptr_t)s);
}

static int dict_str(struct conv *c, int32_t i, uint32_t *out)
{
	int err = 0;

	if (i < 0 || (size_t)i >= c->d->n_string_table)
		return i == 0 ? (*out = 0, 0) : bad(c, "string index");
	if (i == 0 || !c->d->string_table[i][0]) {
		*out = 0;
		return 0;
	}
	if (!c->smap[i])
		err = new_str(c, c->d->string_table[i], &c->smap[i]);
	*out = c->smap[i];
	return err;
}

/* An attribute as a pprof label: strings, bools and doubles as text, ints as numbers. */
static int attr_label(struct conv *c, int32_t ai, Perftools__Profiles__Label *l)
{
	const OAttr *a;
	const AnyValue *v;
	char tmp[64], *copy;
	uint32_t k = 0, u = 0;
	int err;

	if (ai < 0 || (size_t)ai >= c->d->n_attribute_table)
		return bad(c, "attribute index");
	a = c->d->attribute_table[ai];
	v = a->value;
	err = dict_str(c, a->key_strindex, &k) ?: dict_str(c, a->unit_strindex, &u);
	if (err || !v)
		return err;
	l->key = k;
	if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE) {
		l->num = v->int_value;
		l->num_unit = u;
		return 0;
	}
	if (!c->vmap[ai]) {
		const char *s = NULL;

		if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			s = v->string_value;
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE)
			s = v->bool_value ? "true" : "false";
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE) {
			snprintf(tmp, sizeof(tmp), "%.17g", v->double_value);
			copy = alloc(c, strlen(tmp) + 1);
			if (!copy)
				return -ENOMEM;
			s = strcpy(copy, tmp);
		}
		if (!s)
			return 0;                /* arrays, maps, bytes: no label */
		err = new_str(c, s, &c->vmap[ai]);
	}
	l->str = c->vmap[ai];
	return err;
}

static int hex_str(struct conv *c, const ProtobufCBinaryData *b, size_t want, uint32_t *out)
{
	size_t i, zero = 1;
	char *s;

	*out = 0;
	if (b->len != want)
		return 0;
	for (i = 0; i < want; i++)
		zero &= b->data[i] == 0;
	if (zero)
		return 0;                        /* an all-zero id is no id (W3C) */
	s = alloc(c, want * 2 + 1);
	if (!s)
		return -ENOMEM;
	for (i = 0; i < want; i++)
		sprintf(s + 2 * i, "%02x", b->data[i]);
	return new_str(c, s, out);
}

/* Appends trace_id and span_id labels to lab[*n ..]. */
static int link_labels(struct conv *c, int32_t li, Perftools__Profiles__Label *lab, size_t *n)
{
	const Opentelemetry__Proto__Profiles__V1development__Link *lk;
	uint32_t t, sp;
	int err;

	if (li == 0)
		return 0;
	if (li < 0 || (size_t)li >= c->d->n_link_table)
		return bad(c, "link index");
	lk = c->d->link_table[li];
	err = hex_str(c, &lk->trace_id, 16, &t) ?: hex_str(c, &lk->span_id, 8, &sp);
	if (err || !t)
		return err;
	if (!c->trace_key && ((err = new_str(c, "trace_id", &c->trace_key)) ||
			      (err = new_str(c, "span_id", &c->span_key))))
		return err;
	lab[*n].key = c->trace_key;
	lab[(*n)++].str = t;
	if (sp) {
		lab[*n].key = c->span_key;
		lab[(*n)++].str = sp;
	}
	return 0;
}

/* ---- mappings, functions, locations --------------------------------------------------- */

static int map_mapping(struct conv *c, int32_t mi, uint64_t *id)
{
	const Opentelemetry__Proto__Profiles__V1development__Mapping *m;
	Perftools__Profiles__Mapping *x;
	uint32_t f = 0;
	int err;

	if (mi < 0 || (size_t)mi >= c->d->n_mapping_table)
		return bad(c, "mapping index");
	if (!c->mmap[mi]) {
		m = c->d->mapping_table[mi];
		x = alloc(c, sizeof(*x));
		if (!x)
			return -ENOMEM;
		perftools__profiles__mapping__init(x);
		err = dict_str(c, m->filename_strindex, &f);
		for (size_t i = 0; i < m->n_attribute_indices && !err; i++) {
			Perftools__Profiles__Label l = PERFTOOLS__PROFILES__LABEL__INIT;
			int32_t ai = m->attribute_indices[i];

			err = attr_label(c, ai, &l);
			if (!err && l.str && strcmp((const char *)c->strs[l.key], "process.executable.build_id.gnu") == 0)
				x->build_id = l.str;
		}
		if (err)
			return err;
		x->id = c->n_maps + 1;
		x->memory_start = m->memory_start;
		x->memory_limit = m->memory_limit;
		x->file_offset = m->file_offset;
		x->filename = f;
		err = PUSH(c, maps, x);
		if (err)
			return err;
		c->mmap[mi] = (uint32_t)x->id;
	}
	*id = c->mmap[mi];
	return 0;
}

static int map_function(struct conv *c, int32_t fi, uint64_t *id)
{
	const Opentelemetry__Proto__Profiles__V1development__Function *f;
	Perftools__Profiles__Function *x;
	uint32_t n = 0, sn = 0, fn = 0;
	int err;

	if (fi < 0 || (size_t)fi >= c->d->n_function_table)
		return bad(c, "function index");
	if (!c->fmap[fi]) {
		f = c->d->function_table[fi];
		x = alloc(c, sizeof(*x));
		if (!x)
			return -ENOMEM;
		perftools__profiles__function__init(x);
		err = dict_str(c, f->name_strindex, &n) ?: dict_str(c, f->system_name_strindex, &sn) ?:
		      dict_str(c, f->filename_strindex, &fn);
		if (err)
			return err;
		x->id = c->n_funcs + 1;
		x->name = n;
		x->system_name = sn ? sn : n;    /* pprof shows both; OTLP often has one */
		x->filename = fn;
		x->start_line = f->start_line;
		err = PUSH(c, funcs, x);
		if (err)
			return err;
		c->fmap[fi] = (uint32_t)x->id;
	}
	*id = c->fmap[fi];
	return 0;
}

static int map_location(struct conv *c, int32_t li, uint64_t *id)
{
	const Opentelemetry__Proto__Profiles__V1development__Location *l;
	Perftools__Profiles__Location *x;
	int err = 0;

	if (li < 0 || (size_t)li >= c->d->n_location_table)
		return bad(c, "location index");
	if (!c->lmap[li]) {
		l = c->d->location_table[li];
		x = alloc(c, sizeof(*x) + l->n_lines * (sizeof(void *) + sizeof(**x->line)));
		if (!x)
			return -ENOMEM;
		perftools__profiles__location__init(x);
		x->line = (void *)(x + 1);
		/* index 0 is the zero mapping: no mapping */
		if (l->mapping_index)
			err = map_mapping(c, l->mapping_index, &x->mapping_id);
		x->address = l->address;
		for (size_t i = 0; i < l->n_lines && !err; i++) {
			Perftools__Profiles__Line *ln = (void *)((char *)(x->line + l->n_lines) +
								 i * sizeof(*ln));

			perftools__profiles__line__init(ln);
			err = map_function(c, l->lines[i]->function_index, &ln->function_id);
			ln->line = l->lines[i]->line;
			x->line[x->n_line++] = ln;
		}
		if (err)
			return err;
		/* names came with the profile: readers must not re-symbolize */
		if (x->mapping_id && l->n_lines)
			((Perftools__Profiles__Mapping *)c->maps[x->mapping_id - 1])->has_functions = 1;
		x->id = c->n_locs + 1;
		err = PUSH(c, locs, x);
		if (err)
			return err;
		c->lmap[li] = (uint32_t)x->id;
	}
	*id = c->lmap[li];
	return 0;
}

/* ---- samples and profiles ----------------------------------------------------------------- */

static uint64_t sample_hash(const OSample *os)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = (h ^ (uint32_t)os->stack_index) * 0x100000001b3ull;
	h = (h ^ (uint32_t)os->link_index) * 0x100000001b3ull;
	for (size_t i = 0; i < os->n_attribute_indices; i++)
		h = (h ^ (uint32_t)os->attribute_indices[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int same_sample(const OSample *a, const OSample *b)
{
	return a->stack_index == b->stack_index && a->link_index == b->link_index &&
	       a->n_attribute_indices == b->n_attribute_indices &&
	       (!a->n_attribute_indices ||
		memcmp(a->attribute_indices, b->attribute_indices,
		       a->n_attribute_indices * sizeof(*a->attribute_indices)) == 0);
}

/* The slot of os's sample: its index + 1, or 0 (none yet, os would go there). */
static size_t sample_slot(const struct conv *c, const OSample *os)
{
	size_t s = sample_hash(os) & c->mask;

	while (c->slots[s] && !same_sample(c->keys[c->slots[s] - 1], os))
		s = (s + 1) & c->mask;
	return s;
}

static int64_t sample_value(const OSample *os)
{
	int64_t value = 0;

	/* values are per timestamp when both are present; none: one per timestamp */
	for (size_t i = 0; i < os->n_values; i++)
		value = lp_sat_add(value, os->values[i]);
	if (!os->n_values)
		value = (int64_t)os->n_timestamps_unix_nano;
	return value;
}

/* A pprof sample for os: its locations and labels, c->n_types values of 0. */
static int new_sample(struct conv *c, const OSample *os, Perftools__Profiles__Sample **out)
{
	const Opentelemetry__Proto__Profiles__V1development__Stack *st;
	Perftools__Profiles__Sample *s;
	Perftools__Profiles__Label *lab;
	size_t n_lab = 0, n_attr;
	int err = 0;

	if (os->stack_index < 0 || (size_t)os->stack_index >= c->d->n_stack_table)
		return bad(c, "stack index");
	st = c->d->stack_table[os->stack_index];
	n_attr = os->n_attribute_indices < MAX_LABELS ? os->n_attribute_indices : MAX_LABELS;
	s = alloc(c, sizeof(*s) + st->n_location_indices * sizeof(uint64_t) +
			     c->n_types * sizeof(int64_t) +
			     (n_attr + 2) * (sizeof(*lab) + sizeof(void *)));
	if (!s)
		return -ENOMEM;
	perftools__profiles__sample__init(s);
	s->location_id = (uint64_t *)(s + 1);
	s->value = (int64_t *)(s->location_id + st->n_location_indices);
	s->n_value = c->n_types;
	lab = (Perftools__Profiles__Label *)(s->value + c->n_types);
	s->label = (Perftools__Profiles__Label **)(lab + n_attr + 2);
	for (size_t i = 0; i < st->n_location_indices && !err; i++)
		err = map_location(c, st->location_indices[i], &s->location_id[s->n_location_id++]);
	for (size_t i = 0; i < n_attr + 2; i++)
		perftools__profiles__label__init(&lab[i]);
	for (size_t i = 0; i < n_attr && !err; i++) {
		err = attr_label(c, os->attribute_indices[i], &lab[n_lab]);
		if (!err && lab[n_lab].key && (lab[n_lab].str || lab[n_lab].num))
			n_lab++;
	}
	err = err ?: link_labels(c, os->link_index, lab, &n_lab);
	if (err)
		return err;
	for (size_t i = 0; i < n_lab; i++)
		s->label[i] = &lab[i];
	s->n_label = n_lab;
	*out = s;
	return 0;
}

/* Adds os's value to its sample's value of sample type t (a new sample is
 * checked even when its value is 0, then left out). */
static int add_sample(struct conv *c, const OSample *os, size_t t)
{
	Perftools__Profiles__Sample *s;
	int64_t value = sample_value(os);
	size_t slot = sample_slot(c, os);
	int err;

	if (c->slots[slot]) {
		s = c->samples[c->slots[slot] - 1];
		s->value[t] = lp_sat_add(s->value[t], value);
		return 0;
	}
	err = new_sample(c, os, &s);
	if (err || !value)
		return err;
	s->value[t] = value;
	c->keys[c->n_samples] = os;
	c->slots[slot] = (uint32_t)c->n_samples + 1;
	return PUSH(c, samples, s);
}

static int value_type(struct conv *c, const Opentelemetry__Proto__Profiles__V1development__ValueType *v,
		      Perftools__Profiles__ValueType *out)
{
	uint32_t type = 0, unit = 0;
	int err = v ? (dict_str(c, v->type_strindex, &type) ?: dict_str(c, v->unit_strindex, &unit))
		    : 0;

	perftools__profiles__value_type__init(out);
	out->type = type;
	out->unit = unit;
	return err;
}

/* ops[0..n): one sample type each; the header (period, times) is ops[0]'s. */
static int convert_profile(struct conv *c, const OProfile *const *ops, size_t n,
			   struct lp_buf *out)
{
	const OProfile *op = ops[0];
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType *st, **stp, pt;
	uint32_t empty;
	uint8_t *packed;
	size_t len;
	int err;

	st = alloc(c, n * (sizeof(*st) + sizeof(*stp)));
	if (!st)
		return -ENOMEM;
	stp = (Perftools__Profiles__ValueType **)(st + n);
	err = new_str(c, "", &empty);
	for (size_t i = 0; i < n && !err; i++) {
		err = value_type(c, ops[i]->sample_type, &st[i]);
		stp[i] = &st[i];
	}
	if (!err && op->period_type) {
		err = value_type(c, op->period_type, &pt);
		p.period_type = &pt;
	}
	for (size_t i = 0; i < n && !err; i++)
		for (size_t j = 0; j < ops[i]->n_samples && !err; j++)
			err = add_sample(c, ops[i]->samples[j], i);
	if (err)
		return err;
	/* no default_sample_type: pprof's rule, the last type, is libprof's
	 * default (cpu, inuse_space, delay) in the order its Profiles come in */
	p.sample_type = stp;
	p.n_sample_type = n;
	p.period = op->period;
	p.time_nanos = op->time_unix_nano > INT64_MAX ? 0 : (int64_t)op->time_unix_nano;
	p.duration_nanos = op->duration_nano > INT64_MAX ? 0 : (int64_t)op->duration_nano;
	p.string_table = (char **)c->strs;
	p.n_string_table = c->n_strs;
	p.mapping = (Perftools__Profiles__Mapping **)c->maps;
	p.n_mapping = c->n_maps;
	p.function = (Perftools__Profiles__Function **)c->funcs;
	p.n_function = c->n_funcs;
	p.location = (Perftools__Profiles__Location **)c->locs;
	p.n_location = c->n_locs;
	p.sample = (Perftools__Profiles__Sample **)c->samples;
	p.n_sample = c->n_samples;
	len = perftools__profiles__profile__get_packed_size(&p);
	packed = malloc(len ? len : 1);
	if (!packed)
		return -ENOMEM;
	perftools__profiles__profile__pack(&p, packed);
	err = lp_buf_append(out, packed, len);
	free(packed);
	return err;
}

/* ---- one conversion --------------------------------------------------------------------- */

static void conv_reset(struct conv *c)
{
	while (c->arena) {
		struct chunk *next = c->arena->next;

		free(c->arena);
		c->arena = next;
	}
	free(c->strs);
	free(c->maps);
	free(c->funcs);
	free(c->locs);
	free(c->samples);
	free(c->smap);
	free(c->mmap);
	free(c->fmap);
	free(c->lmap);
	free(c->vmap);
	free(c->keys);
	free(c->slots);
	memset(c, 0, offsetof(struct conv, error));
}

/* n_samples: the OTLP samples to come, an upper bound of the pprof's. */
static int conv_init(struct conv *c, const Dict *d, size_t n_types, size_t n_samples)
{
	size_t n_slots = 16;

	memset(c, 0, sizeof(*c));
	c->d = d;
	c->n_types = n_types;
	while (n_slots < 2 * n_samples && n_slots <= UINT32_MAX)
		n_slots *= 2;
	if (n_slots > UINT32_MAX)
		return -EFBIG;
	c->mask = n_slots - 1;
	c->smap = calloc(d->n_string_table + 1, sizeof(*c->smap));
	c->mmap = calloc(d->n_mapping_table + 1, sizeof(*c->mmap));
	c->fmap = calloc(d->n_function_table + 1, sizeof(*c->fmap));
	c->lmap = calloc(d->n_location_table + 1, sizeof(*c->lmap));
	c->vmap = calloc(d->n_attribute_table + 1, sizeof(*c->vmap));
	c->keys = calloc(n_samples + 1, sizeof(*c->keys));
	c->slots = calloc(n_slots, sizeof(*c->slots));
	return c->smap && c->mmap && c->fmap && c->lmap && c->vmap && c->keys && c->slots
		       ? 0 : -ENOMEM;
}

int lp_otlp_to_pprof(const Dict *d, const OProfile *const *ops, size_t n, struct lp_buf *out,
		     char *why, size_t why_len)
{
	size_t n_samples = 0;
	struct conv c;
	int err;

	for (size_t i = 0; i < n; i++)
		n_samples += ops[i]->n_samples;
	err = conv_init(&c, d, n, n_samples);
	if (!err)
		err = convert_profile(&c, ops, n, out);
	if (err == -EINVAL)
		snprintf(why, why_len, "%s", c.error);
	conv_reset(&c);
	return err;
}

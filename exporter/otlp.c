/*
 * OTLP encoding: turns an aggregation table into an ExportProfilesServiceRequest
 * (proto/otlp_*.proto, the opentelemetry-proto v1.10.0 = v1.11.0 layout, pinned
 * there; docs/wire-formats.md section 2), from the same inputs as pprof.c: the
 * table, the profile description, the mappings and the symbolizer.
 *
 * One resource (service.name and the resource attributes), one scope
 * ("libprof"), and one Profile per sample type, all sharing one dictionary.
 * Element 0 of every dictionary table is the zero value. Locations, functions,
 * stacks and links are deduplicated; a sample's trace context is a Link
 * (16-byte trace id, 8-byte span id) reached by link_index; a mapping's GNU
 * build id is its attribute process.executable.build_id.gnu. Everything lives
 * in one arena freed at the end; strings point into the symbolizer's cache,
 * the maps and the table, which outlive the call.
 */
#include "internal.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_profiles_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest Request;
typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse Response;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dict;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles ResourceProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles ScopeProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__Profile OProfile;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType ValueType;
typedef Opentelemetry__Proto__Profiles__V1development__Sample OSample;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping OMapping;
typedef Opentelemetry__Proto__Profiles__V1development__Location OLocation;
typedef Opentelemetry__Proto__Profiles__V1development__Line OLine;
typedef Opentelemetry__Proto__Profiles__V1development__Function OFunction;
typedef Opentelemetry__Proto__Profiles__V1development__Link OLink;
typedef Opentelemetry__Proto__Profiles__V1development__Stack OStack;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit OAttr;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;

#define BUILD_ID_KEY "process.executable.build_id.gnu"

/* ---- arena, vectors, hash index ------------------------------------------- */

struct chunk {
	struct chunk *next;
	size_t used, size;
	alignas(16) unsigned char data[];
};

/* A growing array of pointers (the repeated fields of the message). */
struct vec {
	void **v;
	size_t n, cap;
};

/* hash -> index, open addressing, grown at half full; hash 0 is "empty". */
struct index {
	uint64_t *keys;
	uint32_t *vals;
	size_t mask, n;
};

struct enc {
	struct chunk *arena;
	int failed;                 /* out of memory: the result is discarded */
	struct vec strs, maps, locs, funcs, links, attrs, stacks;
	struct index str_ix, loc_ix, func_ix, link_ix, stack_ix;
	int32_t zero_loc, trunc_loc;
};

static void *alloc(struct enc *e, size_t n)
{
	struct chunk *k = e->arena;
	n = (n + 15) & ~(size_t)15;
	if (!k || k->size - k->used < n) {
		size_t size = n > 262144 ? n : 262144;
		k = malloc(sizeof(*k) + size);
		if (!k) {
			e->failed = 1;
			return NULL;
		}
		k->next = e->arena;
		k->used = 0;
		k->size = size;
		e->arena = k;
	}
	k->used += n;
	return memset(k->data + k->used - n, 0, n);
}

/* Appends x, returning its index (0 on failure, which marks e failed). */
static int32_t push(struct enc *e, struct vec *v, void *x)
{
	if (!x || e->failed)
		return e->failed = 1, 0;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		void **p = realloc(v->v, cap * sizeof(*p));
		if (!p)
			return e->failed = 1, 0;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n] = x;
	return (int32_t)v->n++;
}

static int index_init(struct index *ix, size_t size)
{
	ix->keys = calloc(size, sizeof(*ix->keys));
	ix->vals = calloc(size, sizeof(*ix->vals));
	ix->mask = size - 1;
	ix->n = 0;
	return ix->keys && ix->vals ? 0 : -ENOMEM;
}

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k | 1;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
	return mix(h);
}

/*
 * The index of the entry with hash h for which same(e, idx, key) holds, or 0;
 * *slot is then the free slot where its index goes (remember() keeps the
 * table at most half full, so there is always one).
 */
static int32_t find(struct enc *e, struct index *ix, uint64_t h,
		    int (*same)(struct enc *, int32_t, const void *), const void *key, size_t *slot)
{
	size_t i = h & ix->mask;
	*slot = 0;
	for (; ix->keys[i]; i = (i + 1) & ix->mask)
		if (ix->keys[i] == h && same(e, (int32_t)ix->vals[i], key))
			return (int32_t)ix->vals[i];
	*slot = i;
	return 0;
}

static void remember(struct enc *e, struct index *ix, size_t slot, uint64_t h, int32_t idx)
{
	ix->keys[slot] = h;
	ix->vals[slot] = (uint32_t)idx;
	if (++ix->n * 2 <= ix->mask)
		return;
	struct index big;               /* grown by rehashing the stored hashes */
	if (index_init(&big, (ix->mask + 1) * 2) < 0) {
		free(big.keys);
		free(big.vals);
		e->failed = 1;          /* the result is discarded; the table stays usable */
		return;
	}
	for (size_t i = 0; i <= ix->mask; i++) {
		if (!ix->keys[i])
			continue;
		size_t j = ix->keys[i] & big.mask;
		while (big.keys[j])
			j = (j + 1) & big.mask;
		big.keys[j] = ix->keys[i];
		big.vals[j] = ix->vals[i];
	}
	big.n = ix->n;
	free(ix->keys);
	free(ix->vals);
	*ix = big;
}

/* ---- dictionary entries --------------------------------------------------- */

static int same_str(struct enc *e, int32_t i, const void *s)
{
	return strcmp(e->strs.v[i], s) == 0;
}

static int32_t str(struct enc *e, const char *s)
{
	size_t slot;
	if (!s || !*s)
		return 0;
	uint64_t h = hash_bytes(s, strlen(s));
	int32_t i = find(e, &e->str_ix, h, same_str, s, &slot);
	if (!i && (i = push(e, &e->strs, (void *)s)))
		remember(e, &e->str_ix, slot, h, i);
	return i;
}

static AnyValue *string_value(struct enc *e, const char *s)
{
	AnyValue *v = alloc(e, sizeof(*v));
	if (v) {
		opentelemetry__proto__common__v1__any_value__init(v);
		v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = (char *)s;
	}
	return v;
}

static void add_mappings(struct enc *e, const struct lp_maps *maps)
{
	for (size_t i = 0; maps && i < maps->n; i++) {
		const struct lp_mapping *m = &maps->v[i];
		OMapping *om = alloc(e, sizeof(*om) + sizeof(int32_t));
		if (!om)
			return;
		opentelemetry__proto__profiles__v1development__mapping__init(om);
		om->memory_start = m->start;
		om->memory_limit = m->limit;
		om->file_offset = m->offset;
		om->filename_strindex = str(e, m->path);
		if (m->build_id[0]) {
			OAttr *a = alloc(e, sizeof(*a));
			if (!a)
				return;
			opentelemetry__proto__profiles__v1development__key_value_and_unit__init(a);
			a->key_strindex = str(e, BUILD_ID_KEY);
			a->value = string_value(e, m->build_id);
			om->attribute_indices = (int32_t *)(om + 1);
			om->attribute_indices[0] = push(e, &e->attrs, a);
			om->n_attribute_indices = 1;
		}
		push(e, &e->maps, om);   /* index i + 1: element 0 is the zero mapping */
	}
}

struct fkey { int32_t name, sys, file; };

static int same_func(struct enc *e, int32_t i, const void *k)
{
	const OFunction *f = e->funcs.v[i];
	const struct fkey *key = k;
	return f->name_strindex == key->name && f->system_name_strindex == key->sys &&
	       f->filename_strindex == key->file;
}

static int32_t function(struct enc *e, const struct lp_frame *fr)
{
	struct fkey k = { str(e, fr->name), str(e, fr->system_name), str(e, fr->file) };
	size_t slot;
	uint64_t h = hash_bytes(&k, sizeof(k));
	int32_t i = find(e, &e->func_ix, h, same_func, &k, &slot);
	if (i)
		return i;
	OFunction *f = alloc(e, sizeof(*f));
	if (!f)
		return 0;
	opentelemetry__proto__profiles__v1development__function__init(f);
	f->name_strindex = k.name;
	f->system_name_strindex = k.sys;
	f->filename_strindex = k.file;
	if ((i = push(e, &e->funcs, f)))
		remember(e, &e->func_ix, slot, h, i);
	return i;
}

/* A location with the given frames (inlined first). */
static int32_t new_location(struct enc *e, int32_t mapping, uint64_t addr,
			    const struct lp_frame *frames, int n)
{
	OLocation *l = alloc(e, sizeof(*l) + (size_t)n * (sizeof(OLine *) + sizeof(OLine)));
	if (!l)
		return 0;
	opentelemetry__proto__profiles__v1development__location__init(l);
	l->mapping_index = mapping;
	l->address = addr;
	l->lines = (OLine **)(l + 1);
	OLine *lines = (OLine *)(l->lines + n);
	for (int k = 0; k < n; k++) {
		opentelemetry__proto__profiles__v1development__line__init(&lines[k]);
		lines[k].function_index = function(e, &frames[k]);
		lines[k].line = frames[k].line;
		l->lines[l->n_lines++] = &lines[k];
	}
	return push(e, &e->locs, l);
}

static int same_loc(struct enc *e, int32_t i, const void *addr)
{
	return ((OLocation *)e->locs.v[i])->address == *(const uint64_t *)addr;
}

static int32_t location(struct enc *e, uint64_t addr, const struct lp_maps *maps,
			struct lp_symbolizer *sym)
{
	if (!addr)
		return e->zero_loc ? e->zero_loc : (e->zero_loc = new_location(e, 0, 0, NULL, 0));
	size_t slot;
	uint64_t h = mix(addr);
	int32_t i = find(e, &e->loc_ix, h, same_loc, &addr, &slot);
	if (i)
		return i;
	int m = maps ? lp_maps_find(maps, addr) : -1;
	const struct lp_symbol *s = sym ? lp_sym_lookup(sym, addr) : NULL;
	if ((i = new_location(e, m + 1, addr, s ? s->frames : NULL, s ? s->n : 0)))
		remember(e, &e->loc_ix, slot, h, i);
	return i;
}

static int32_t truncated_location(struct enc *e)
{
	static const struct lp_frame marker = { "[truncated]", "[truncated]", NULL, 0 };
	if (!e->trunc_loc)
		e->trunc_loc = new_location(e, 0, 0, &marker, 1);
	return e->trunc_loc;
}

struct skey { const int32_t *locs; size_t n; };

static int same_stack(struct enc *e, int32_t i, const void *k)
{
	const OStack *s = e->stacks.v[i];
	const struct skey *key = k;
	return s->n_location_indices == key->n &&
	       memcmp(s->location_indices, key->locs, key->n * sizeof(int32_t)) == 0;
}

/* The stack of one table entry, leaf first, deduplicated. */
static int32_t stack(struct enc *e, const struct lp_stack *st, const struct lp_maps *maps,
		     struct lp_symbolizer *sym)
{
	size_t n = (size_t)st->depth + (st->truncated ? 1 : 0), slot;
	OStack *s = alloc(e, sizeof(*s) + n * sizeof(int32_t));
	if (!s)
		return 0;
	opentelemetry__proto__profiles__v1development__stack__init(s);
	s->location_indices = (int32_t *)(s + 1);
	for (int k = 0; k < st->depth; k++)   /* return addresses: the call's last byte */
		s->location_indices[k] = location(e, k == 0 ? st->pcs[k] : st->pcs[k] - 1, maps, sym);
	if (st->truncated)
		s->location_indices[st->depth] = truncated_location(e);
	s->n_location_indices = n;
	struct skey k = { s->location_indices, n };
	uint64_t h = hash_bytes(s->location_indices, n * sizeof(int32_t));
	int32_t i = find(e, &e->stack_ix, h, same_stack, &k, &slot);
	if (!i && (i = push(e, &e->stacks, s)))
		remember(e, &e->stack_ix, slot, h, i);
	return i;              /* a duplicate's copy stays unused in the arena */
}

static int same_link(struct enc *e, int32_t i, const void *k)
{
	const OLink *l = e->links.v[i];
	const struct lp_labels *lab = k;
	return memcmp(l->trace_id.data, lab->trace_id, 16) == 0 &&
	       memcmp(l->span_id.data, lab->span_id, 8) == 0;
}

/* The link of a sample's trace context; 0 when it has none. */
static int32_t trace_link(struct enc *e, const struct lp_labels *lab)
{
	static const uint8_t zero[16];
	size_t slot;
	if (memcmp(lab->trace_id, zero, 16) == 0)
		return 0;
	uint64_t h = hash_bytes(lab, sizeof(*lab));
	int32_t i = find(e, &e->link_ix, h, same_link, lab, &slot);
	if (i)
		return i;
	OLink *l = alloc(e, sizeof(*l));
	if (!l)
		return 0;
	opentelemetry__proto__profiles__v1development__link__init(l);
	l->trace_id.data = (uint8_t *)lab->trace_id;
	l->trace_id.len = 16;
	l->span_id.data = (uint8_t *)lab->span_id;
	l->span_id.len = 8;
	if ((i = push(e, &e->links, l)))
		remember(e, &e->link_ix, slot, h, i);
	return i;
}

/* ---- the request -------------------------------------------------------------- */

static int enc_init(struct enc *e)
{
	static const uint8_t zero_ids[16];
	memset(e, 0, sizeof(*e));
	if (index_init(&e->str_ix, 1024) < 0 || index_init(&e->loc_ix, 1024) < 0 ||
	    index_init(&e->func_ix, 1024) < 0 || index_init(&e->link_ix, 256) < 0 ||
	    index_init(&e->stack_ix, 1024) < 0)
		return -ENOMEM;
	/* Element 0 of every table: the zero value. */
	OMapping *m = alloc(e, sizeof(*m));
	OLocation *l = alloc(e, sizeof(*l));
	OFunction *f = alloc(e, sizeof(*f));
	OLink *k = alloc(e, sizeof(*k));
	OAttr *a = alloc(e, sizeof(*a));
	OStack *s = alloc(e, sizeof(*s));
	if (e->failed)
		return -ENOMEM;
	opentelemetry__proto__profiles__v1development__mapping__init(m);
	opentelemetry__proto__profiles__v1development__location__init(l);
	opentelemetry__proto__profiles__v1development__function__init(f);
	opentelemetry__proto__profiles__v1development__link__init(k);
	k->trace_id = (ProtobufCBinaryData){ 16, (uint8_t *)zero_ids };
	k->span_id = (ProtobufCBinaryData){ 8, (uint8_t *)zero_ids };
	opentelemetry__proto__profiles__v1development__key_value_and_unit__init(a);
	opentelemetry__proto__profiles__v1development__stack__init(s);
	push(e, &e->strs, "");
	push(e, &e->maps, m);
	push(e, &e->locs, l);
	push(e, &e->funcs, f);
	push(e, &e->links, k);
	push(e, &e->attrs, a);
	push(e, &e->stacks, s);
	return e->failed ? -ENOMEM : 0;
}

static void enc_free(struct enc *e)
{
	while (e->arena) {
		struct chunk *next = e->arena->next;
		free(e->arena);
		e->arena = next;
	}
	struct vec *v[] = { &e->strs, &e->maps, &e->locs, &e->funcs, &e->links, &e->attrs,
			    &e->stacks };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		free(v[i]->v);
	struct index *ix[] = { &e->str_ix, &e->loc_ix, &e->func_ix, &e->link_ix, &e->stack_ix };
	for (size_t i = 0; i < sizeof(ix) / sizeof(ix[0]); i++) {
		free(ix[i]->keys);
		free(ix[i]->vals);
	}
}

static ValueType *value_type(struct enc *e, const char *type, const char *unit)
{
	ValueType *v = alloc(e, sizeof(*v));
	if (v) {
		opentelemetry__proto__profiles__v1development__value_type__init(v);
		v->type_strindex = str(e, type);
		v->unit_strindex = str(e, unit);
	}
	return v;
}

/* One Profile per sample type: the entries whose value of that type is not 0. */
static void add_profiles(struct enc *e, ScopeProfiles *sp, const struct lp_table *t,
			 const struct lp_profile_desc *d, const int32_t *stacks, const int32_t *links)
{
	size_t n = lp_table_count(t);
	sp->profiles = alloc(e, (size_t)d->n_types * sizeof(OProfile *));
	for (int ty = 0; ty < d->n_types && !e->failed; ty++) {
		OProfile *p = alloc(e, sizeof(*p));
		OSample *samples = alloc(e, n * (sizeof(OSample) + sizeof(OSample *) + 8) + 8);
		if (!p || !samples)
			return;
		opentelemetry__proto__profiles__v1development__profile__init(p);
		p->sample_type = value_type(e, d->types[ty][0], d->types[ty][1]);
		p->period_type = value_type(e, d->period_type[0], d->period_type[1]);
		p->period = d->period;
		p->time_unix_nano = (uint64_t)d->time_nanos;
		p->duration_nano = (uint64_t)d->duration_nanos;
		p->samples = (OSample **)(samples + n);
		int64_t *values = (int64_t *)(p->samples + n);
		for (size_t i = 0; i < n; i++) {
			const struct lp_stack *st = lp_table_get(t, i);
			if (!st->values[ty])
				continue;
			OSample *s = &samples[p->n_samples];
			opentelemetry__proto__profiles__v1development__sample__init(s);
			s->stack_index = stacks[i];
			s->link_index = links[i];
			values[p->n_samples] = st->values[ty];
			s->values = &values[p->n_samples];
			s->n_values = 1;
			p->samples[p->n_samples++] = s;
		}
		sp->profiles[sp->n_profiles++] = p;
	}
}

static KeyValue *key_value(struct enc *e, const char *key, const char *value)
{
	KeyValue *kv = alloc(e, sizeof(*kv));
	if (kv) {
		opentelemetry__proto__common__v1__key_value__init(kv);
		kv->key = (char *)key;
		kv->value = string_value(e, value);
	}
	return kv;
}

static ResourceProfiles *resource(struct enc *e, const struct lp_otlp_source *src)
{
	ResourceProfiles *rp = alloc(e, sizeof(*rp) + sizeof(ScopeProfiles *));
	Resource *r = alloc(e, sizeof(*r) + (size_t)(src->n_resource + 1) * sizeof(KeyValue *));
	ScopeProfiles *sp = alloc(e, sizeof(*sp));
	Scope *scope = alloc(e, sizeof(*scope));
	if (e->failed)
		return NULL;
	opentelemetry__proto__profiles__v1development__resource_profiles__init(rp);
	opentelemetry__proto__resource__v1__resource__init(r);
	opentelemetry__proto__profiles__v1development__scope_profiles__init(sp);
	opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
	r->attributes = (KeyValue **)(r + 1);
	r->attributes[r->n_attributes++] = key_value(e, "service.name", src->service);
	const char *p = src->resource;
	for (int i = 0; i < src->n_resource; i++, p += strlen(p) + 1) {
		const char *k = p;
		p += strlen(p) + 1;
		r->attributes[r->n_attributes++] = key_value(e, k, p);
	}
	scope->name = "libprof";
	scope->version = LP_VERSION;
	sp->scope = scope;
	rp->resource = r;
	rp->scope_profiles = (ScopeProfiles **)(rp + 1);
	rp->scope_profiles[rp->n_scope_profiles++] = sp;
	return rp;
}

static void set_dictionary(Dict *dict, const struct enc *e)
{
	opentelemetry__proto__profiles__v1development__profiles_dictionary__init(dict);
	dict->string_table = (char **)e->strs.v;
	dict->n_string_table = e->strs.n;
	dict->mapping_table = (OMapping **)e->maps.v;
	dict->n_mapping_table = e->maps.n;
	dict->location_table = (OLocation **)e->locs.v;
	dict->n_location_table = e->locs.n;
	dict->function_table = (OFunction **)e->funcs.v;
	dict->n_function_table = e->funcs.n;
	dict->link_table = (OLink **)e->links.v;
	dict->n_link_table = e->links.n;
	dict->attribute_table = (OAttr **)e->attrs.v;
	dict->n_attribute_table = e->attrs.n;
	dict->stack_table = (OStack **)e->stacks.v;
	dict->n_stack_table = e->stacks.n;
}

int lp_otlp_encode(const struct lp_table *t, const struct lp_profile_desc *d,
		   const struct lp_maps *maps, struct lp_symbolizer *sym,
		   const struct lp_otlp_source *src, uint8_t **out, size_t *len)
{
	struct enc e;
	Request req = OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_REQUEST__INIT;
	Dict dict;
	ResourceProfiles *rp = NULL;
	size_t n = lp_table_count(t);
	if (d->n_types < 1 || d->n_types > LP_MAX_VALUES)
		return -EINVAL;
	int rc = enc_init(&e);
	int32_t *stacks = calloc(n + 1, sizeof(int32_t)), *links = calloc(n + 1, sizeof(int32_t));
	if (rc == 0 && stacks && links) {
		add_mappings(&e, maps);
		for (size_t i = 0; i < n && !e.failed; i++) {
			const struct lp_stack *st = lp_table_get(t, i);
			stacks[i] = stack(&e, st, maps, sym);
			links[i] = trace_link(&e, &st->labels);
		}
		rp = resource(&e, src);
		if (rp)
			add_profiles(&e, rp->scope_profiles[0], t, d, stacks, links);
		req.resource_profiles = &rp;
		req.n_resource_profiles = 1;
		set_dictionary(&dict, &e);
		req.dictionary = &dict;
	}
	rc = e.failed || !stacks || !links ? -ENOMEM : rc;
	if (rc == 0) {
		*len = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__get_packed_size(&req);
		*out = malloc(*len ? *len : 1);
		if (*out)
			opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__pack(&req, *out);
		else
			rc = -ENOMEM;
	}
	free(stacks);
	free(links);
	enc_free(&e);
	return rc;
}

int lp_otlp_partial_success(const uint8_t *resp, size_t len, long long *rejected, char *msg,
			    size_t size)
{
	Response *r = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__unpack(NULL, len, resp);
	int found = 0;
	*rejected = 0;
	if (size)
		msg[0] = '\0';
	if (r && r->partial_success) {
		*rejected = (long long)r->partial_success->rejected_profiles;
		lp_fmt(msg, size, "%s", r->partial_success->error_message ? r->partial_success->error_message : "");
		found = *rejected > 0 || (size && msg[0]);
	}
	if (r)
		opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__free_unpacked(r, NULL);
	return found;
}

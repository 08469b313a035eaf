/*
 * pprof as the collector reads it: decoding (protobuf-c code generated from
 * proto/profile.proto, shared with the library's exporter), a consistency
 * check run on every ingested profile so that merging and `go tool pprof` can
 * trust what is stored, the profile's type and default value, the per-trace
 * totals written to the trace index, and encoding. Merging is pprof_merge.c.
 */
#include "collector.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;

static int fail(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *lp_pprof_str(const Profile *p, int64_t i)
{
	if (i < 0 || (size_t)i >= p->n_string_table || !p->string_table[i])
		return "";
	return p->string_table[i];
}

/* ---- id lookups --------------------------------------------------------------------- */

struct lp_id_pos {
	uint64_t id;
	size_t pos;
};

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = ((const struct lp_id_pos *)a)->id, y = ((const struct lp_id_pos *)b)->id;

	return x < y ? -1 : x > y;
}

/* Sorted (id, position) pairs; NULL when ids are 1..n in order (the usual
 * case, looked up without a table). -EINVAL on a zero or repeated id. */
static int index_ids(const uint64_t *ids, size_t n, struct lp_id_pos **out)
{
	struct lp_id_pos *v;
	size_t i;

	*out = NULL;
	for (i = 0; i < n && ids[i] == i + 1; i++)
		;
	if (i == n)
		return 0;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		v[i] = (struct lp_id_pos){ ids[i], i };
	qsort(v, n, sizeof(*v), cmp_id);
	for (i = 0; i < n; i++) {
		if (v[i].id == 0 || (i && v[i].id == v[i - 1].id)) {
			free(v);
			return -EINVAL;
		}
	}
	*out = v;
	return 0;
}

static long find_id(const struct lp_id_pos *v, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;

	if (!v)
		return id >= 1 && id <= n ? (long)(id - 1) : -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].id == id)
			return (long)v[mid].pos;
		if (v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

#define IDS_OF(arr, n, dst)                                          \
	do {                                                         \
		for (size_t i_ = 0; i_ < (n); i_++)                  \
			(dst)[i_] = (arr)[i_] ? (arr)[i_]->id : 0;   \
	} while (0)

int lp_pprof_index_build(const Profile *p, struct lp_pprof_index *ix)
{
	size_t most = p->n_mapping, n;
	uint64_t *ids;
	int err;

	memset(ix, 0, sizeof(*ix));
	if (p->n_location > most)
		most = p->n_location;
	if (p->n_function > most)
		most = p->n_function;
	ids = malloc((most ? most : 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	n = p->n_mapping;
	IDS_OF(p->mapping, n, ids);
	err = index_ids(ids, n, &ix->maps);
	if (!err) {
		n = p->n_location;
		IDS_OF(p->location, n, ids);
		err = index_ids(ids, n, &ix->locs);
	}
	if (!err) {
		n = p->n_function;
		IDS_OF(p->function, n, ids);
		err = index_ids(ids, n, &ix->funcs);
	}
	free(ids);
	if (err)
		lp_pprof_index_free(ix);
	return err;
}

void lp_pprof_index_free(struct lp_pprof_index *ix)
{
	free(ix->maps);
	free(ix->locs);
	free(ix->funcs);
	memset(ix, 0, sizeof(*ix));
}

long lp_pprof_find_map(const Profile *p, const struct lp_pprof_index *ix, uint64_t id)
{
	return find_id(ix->maps, p->n_mapping, id);
}

long lp_pprof_find_loc(const Profile *p, const struct lp_pprof_index *ix, uint64_t id)
{
	return find_id(ix->locs, p->n_location, id);
}

long lp_pprof_find_func(const Profile *p, const struct lp_pprof_index *ix, uint64_t id)
{
	return find_id(ix->funcs, p->n_function, id);
}

/* ---- decode and check ------------------------------------------------------------------ */

#define STR_OK(p, i) ((i) >= 0 && (size_t)(i) < (p)->n_string_table)

static int check_tables(const Profile *p, const struct lp_pprof_index *ix, char *why, size_t n)
{
	for (size_t i = 0; i < p->n_string_table; i++) {
		if (!p->string_table[i])
			return fail(why, n, "string_table[%zu] missing", i);
	}
	for (size_t i = 0; i < p->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = p->mapping[i];

		if (!STR_OK(p, m->filename) || !STR_OK(p, m->build_id))
			return fail(why, n, "mapping %zu: string index out of range", i);
	}
	for (size_t i = 0; i < p->n_function; i++) {
		const Perftools__Profiles__Function *f = p->function[i];

		if (!STR_OK(p, f->name) || !STR_OK(p, f->system_name) || !STR_OK(p, f->filename))
			return fail(why, n, "function %zu: string index out of range", i);
	}
	for (size_t i = 0; i < p->n_location; i++) {
		const Location *l = p->location[i];

		if (l->mapping_id && lp_pprof_find_map(p, ix, l->mapping_id) < 0)
			return fail(why, n, "location %zu: no mapping %llu", i,
				    (unsigned long long)l->mapping_id);
		for (size_t j = 0; j < l->n_line; j++) {
			if (lp_pprof_find_func(p, ix, l->line[j]->function_id) < 0)
				return fail(why, n, "location %zu: no function %llu", i,
					    (unsigned long long)l->line[j]->function_id);
		}
	}
	return 0;
}

static int check_samples(const Profile *p, const struct lp_pprof_index *ix, char *why, size_t n)
{
	for (size_t i = 0; i < p->n_sample_type; i++) {
		if (!STR_OK(p, p->sample_type[i]->type) || !STR_OK(p, p->sample_type[i]->unit))
			return fail(why, n, "sample_type %zu: string index out of range", i);
	}
	for (size_t i = 0; i < p->n_sample; i++) {
		const Sample *s = p->sample[i];

		if (s->n_value != p->n_sample_type)
			return fail(why, n, "sample %zu has %zu values for %zu sample types", i,
				    s->n_value, p->n_sample_type);
		for (size_t j = 0; j < s->n_location_id; j++) {
			if (lp_pprof_find_loc(p, ix, s->location_id[j]) < 0)
				return fail(why, n, "sample %zu: no location %llu", i,
					    (unsigned long long)s->location_id[j]);
		}
		for (size_t j = 0; j < s->n_label; j++) {
			const Perftools__Profiles__Label *l = s->label[j];

			if (!STR_OK(p, l->key) || !STR_OK(p, l->str) || !STR_OK(p, l->num_unit))
				return fail(why, n, "sample %zu: label string out of range", i);
		}
	}
	return 0;
}

int lp_pprof_check(const Profile *p, char *why, size_t n)
{
	struct lp_pprof_index ix;
	int err;

	if (p->n_string_table == 0 || !p->string_table[0] || p->string_table[0][0])
		return fail(why, n, "string_table[0] is not \"\"");
	if (p->n_sample_type == 0)
		return fail(why, n, "no sample types");
	if ((p->period_type && (!STR_OK(p, p->period_type->type) ||
				!STR_OK(p, p->period_type->unit))) ||
	    !STR_OK(p, p->default_sample_type) || !STR_OK(p, p->drop_frames) ||
	    !STR_OK(p, p->keep_frames))
		return fail(why, n, "string index out of range");
	for (size_t i = 0; i < p->n_comment; i++) {
		if (!STR_OK(p, p->comment[i]))
			return fail(why, n, "comment string out of range");
	}
	err = lp_pprof_index_build(p, &ix);
	if (err == -EINVAL)
		return fail(why, n, "zero or repeated mapping/location/function id");
	if (err)
		return err;
	err = check_tables(p, &ix, why, n);
	if (!err)
		err = check_samples(p, &ix, why, n);
	lp_pprof_index_free(&ix);
	return err;
}

int lp_pprof_decode(const void *data, size_t len, size_t max_bytes, Profile **out,
		    char *why, size_t why_len)
{
	struct lp_buf plain = { 0 };
	Profile *p;
	int err = 0;

	*out = NULL;
	if (lp_is_gzip(data, len)) {
		err = lp_gunzip(data, len, max_bytes, &plain);
		if (err == -EINVAL)
			fail(why, why_len, "corrupt gzip data");
		if (err)
			goto out;
		data = plain.data;
		len = plain.len;
	} else if (len > max_bytes) {
		return -EFBIG;
	}
	p = perftools__profiles__profile__unpack(NULL, len, data);
	if (!p) {
		err = fail(why, why_len, "not a pprof profile (protobuf decoding failed)");
		goto out;
	}
	err = lp_pprof_check(p, why, why_len);
	if (err)
		perftools__profiles__profile__free_unpacked(p, NULL);
	else
		*out = p;
out:
	lp_buf_free(&plain);
	return err;
}

void lp_pprof_free(Profile *p)
{
	if (p)
		perftools__profiles__profile__free_unpacked(p, NULL);
}

/* ---- what a profile is -------------------------------------------------------------------- */

static int has_type(const Profile *p, const char *type)
{
	for (size_t i = 0; i < p->n_sample_type; i++) {
		if (strcmp(lp_pprof_str(p, p->sample_type[i]->type), type) == 0)
			return 1;
	}
	return 0;
}

/* Go's conventions (docs/wire-formats.md section 1). OTLP CPU profiles often
 * carry only samples/count, with period_type cpu/nanoseconds. */
static void detect_type(const Profile *p, char *type, size_t n)
{
	const char *first = lp_pprof_str(p, p->sample_type[0]->type);
	size_t j = 0;

	if (has_type(p, "cpu") ||
	    (p->period_type && strcmp(lp_pprof_str(p, p->period_type->type), "cpu") == 0))
		first = "cpu";
	else if (has_type(p, "alloc_space") || has_type(p, "inuse_space") ||
		 has_type(p, "alloc_objects") || has_type(p, "inuse_objects"))
		first = "heap";
	else if (has_type(p, "contentions") || has_type(p, "delay"))
		first = "mutex";
	/* anything else is stored under its first sample type's name, made safe */
	for (; *first && j + 1 < n; first++) {
		char c = *first;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			type[j++] = c;
		else if (c >= 'A' && c <= 'Z')
			type[j++] = (char)(c - 'A' + 'a');
	}
	if (j == 0)
		type[j++] = '_';
	type[j] = 0;
}

void lp_pprof_info(const Profile *p, struct lp_pprof_info *info)
{
	const char *def = lp_pprof_str(p, p->default_sample_type);
	const Perftools__Profiles__ValueType *vt;

	memset(info, 0, sizeof(*info));
	detect_type(p, info->type, sizeof(info->type));
	/* pprof's rule: the named default, else the last sample type */
	info->value_index = (int)p->n_sample_type - 1;
	for (size_t i = 0; *def && i < p->n_sample_type; i++) {
		if (strcmp(lp_pprof_str(p, p->sample_type[i]->type), def) == 0)
			info->value_index = (int)i;
	}
	vt = p->sample_type[info->value_index];
	snprintf(info->value_type, sizeof(info->value_type), "%s", lp_pprof_str(p, vt->type));
	snprintf(info->value_unit, sizeof(info->value_unit), "%s", lp_pprof_str(p, vt->unit));
	info->time_ns = p->time_nanos;
	info->duration_ns = p->duration_nanos > 0 ? p->duration_nanos : 0;
}

const char *lp_pprof_sample_trace(const Profile *p, const Sample *s)
{
	for (size_t j = 0; j < s->n_label; j++) {
		if (s->label[j]->str && strcmp(lp_pprof_str(p, s->label[j]->key), "trace_id") == 0)
			return lp_pprof_str(p, s->label[j]->str);
	}
	return NULL;
}

static int cmp_total(const void *a, const void *b)
{
	return strcmp(((const struct lp_trace_total *)a)->trace_id,
		      ((const struct lp_trace_total *)b)->trace_id);
}

int lp_pprof_trace_totals(const Profile *p, int value_index, struct lp_trace_total **out,
			  size_t *n)
{
	struct lp_trace_total *v = NULL;
	size_t k = 0, m = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < p->n_sample; i++) {
		const char *t = lp_pprof_sample_trace(p, p->sample[i]);

		if (t && lp_is_trace_id(t))
			k++;
	}
	if (k == 0)
		return 0;
	v = malloc(k * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k = 0;
	for (size_t i = 0; i < p->n_sample; i++) {
		const char *t = lp_pprof_sample_trace(p, p->sample[i]);

		if (!t || !lp_is_trace_id(t))
			continue;
		memcpy(v[k].trace_id, t, 33);
		v[k++].total = p->sample[i]->value[value_index];
	}
	/* sort, then fold equal ids into the first of each run */
	qsort(v, k, sizeof(*v), cmp_total);
	for (size_t i = 0; i < k; i++) {
		if (m && strcmp(v[m - 1].trace_id, v[i].trace_id) == 0)
			v[m - 1].total = lp_sat_add(v[m - 1].total, v[i].total);
		else
			v[m++] = v[i];
	}
	*out = v;
	*n = m;
	return 0;
}

int lp_pprof_encode_gzip(const Profile *p, struct lp_buf *out)
{
	size_t len = perftools__profiles__profile__get_packed_size(p);
	unsigned char *plain = malloc(len ? len : 1);
	int err;

	if (!plain)
		return -ENOMEM;
	perftools__profiles__profile__pack(p, plain);
	err = lp_gzip(plain, len, out);
	free(plain);
	return err;
}

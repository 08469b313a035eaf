/*
 * Unit tests of the collector's parsers and pprof handling (collector/):
 * durations, sizes and times; gzip inflation with its cap; the multipart
 * parser; the ingest check; type detection and trace totals; and merging
 * (entities re-keyed across profiles, identical samples summed, sample types
 * matched by name, the trace filter); the flame-graph tree of a merge (values,
 * children by name, the node cap and its "[other]", unnamed locations); OTLP
 * requests converted to pprof (a profile's sample types, sent as one Profile
 * each, joined into one pprof; what is not joined; a bad Profile alone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "otlp_profiles_service.pb-c.h"

#define expect_eq(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) \
		fail_msg("%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
} while (0)

typedef Perftools__Profiles__Profile Profile;

/* ---- a small profile builder ------------------------------------------------------------- */

#define MAXN 16
struct fake {
	Profile p;
	char *strs[MAXN];
	Perftools__Profiles__ValueType vt[4], *vtp[4];
	Perftools__Profiles__Function fn[MAXN], *fnp[MAXN];
	Perftools__Profiles__Line ln[MAXN], *lnp[MAXN];
	Perftools__Profiles__Location loc[MAXN], *locp[MAXN];
	Perftools__Profiles__Sample s[MAXN], *sp[MAXN];
	uint64_t ids[MAXN][4];
	int64_t vals[MAXN][4];
	Perftools__Profiles__Label lab[MAXN], *labp[MAXN];
};

static int64_t str(struct fake *f, const char *s)
{
	for (size_t i = 0; i < f->p.n_string_table; i++)
		if (strcmp(f->strs[i], s) == 0)
			return (int64_t)i;
	f->strs[f->p.n_string_table] = (char *)s;
	return (int64_t)f->p.n_string_table++;
}

/* Types "t1/u1,t2/u2"; functions get ids id_base + i, locations likewise. */
static void fake_init(struct fake *f, const char *const *types, size_t n_types, uint64_t id_base)
{
	memset(f, 0, sizeof(*f));
	perftools__profiles__profile__init(&f->p);
	f->p.string_table = f->strs;
	str(f, "");
	for (size_t i = 0; i < n_types; i++) {
		perftools__profiles__value_type__init(&f->vt[i]);
		f->vt[i].type = str(f, types[2 * i]);
		f->vt[i].unit = str(f, types[2 * i + 1]);
		f->vtp[i] = &f->vt[i];
	}
	f->p.sample_type = f->vtp;
	f->p.n_sample_type = n_types;
	f->p.function = f->fnp;
	f->p.location = f->locp;
	f->p.sample = f->sp;
	f->p.time_nanos = (int64_t)id_base * 1000000000;
	f->p.duration_nanos = 10000000000;
}

/* The location id of function name (made on first use). */
static uint64_t loc_of(struct fake *f, const char *name, uint64_t id_base)
{
	int64_t s = str(f, name);
	size_t i;

	for (i = 0; i < f->p.n_function; i++)
		if (f->fn[i].name == s)
			return f->loc[i].id;
	perftools__profiles__function__init(&f->fn[i]);
	f->fn[i].id = id_base + i;
	f->fn[i].name = s;
	f->fnp[i] = &f->fn[i];
	perftools__profiles__line__init(&f->ln[i]);
	f->ln[i].function_id = f->fn[i].id;
	f->lnp[i] = &f->ln[i];
	perftools__profiles__location__init(&f->loc[i]);
	f->loc[i].id = id_base + 100 + i;
	f->loc[i].line = &f->lnp[i];
	f->loc[i].n_line = 1;
	f->locp[i] = &f->loc[i];
	f->p.n_function = f->p.n_location = i + 1;
	return f->loc[i].id;
}

static void add(struct fake *f, uint64_t id_base, const char *leaf, const char *root,
		const char *trace, int64_t v0, int64_t v1)
{
	size_t i = f->p.n_sample;
	Perftools__Profiles__Sample *s = &f->s[i];

	perftools__profiles__sample__init(s);
	f->ids[i][0] = loc_of(f, leaf, id_base);
	f->ids[i][1] = loc_of(f, root, id_base);
	s->location_id = f->ids[i];
	s->n_location_id = 2;
	f->vals[i][0] = v0;
	f->vals[i][1] = v1;
	s->value = f->vals[i];
	s->n_value = f->p.n_sample_type;
	if (trace) {
		perftools__profiles__label__init(&f->lab[i]);
		f->lab[i].key = str(f, "trace_id");
		f->lab[i].str = str(f, trace);
		f->labp[i] = &f->lab[i];
		s->label = &f->labp[i];
		s->n_label = 1;
	}
	f->sp[i] = s;
	f->p.n_sample = i + 1;
}

static const char *T1 = "0123456789abcdef0123456789abcdef";
static const char *T2 = "fedcba9876543210fedcba9876543210";
static const char *const cpu_types[] = { "samples", "count", "cpu", "nanoseconds" };

/* ---- parsers ------------------------------------------------------------------------------ */

static void test_durations_and_sizes(void **state)
{
	int64_t d;
	uint64_t s;

	(void)state;
	expect_eq(lp_parse_duration_s("90", &d), 0);
	expect_eq(d, 90);
	expect_eq(lp_parse_duration_s("15m", &d), 0);
	expect_eq(d, 900);
	expect_eq(lp_parse_duration_s("7d", &d), 0);
	expect_eq(d, 7 * 86400);
	expect_eq(lp_parse_duration_s("2w", &d), 0);
	expect_eq(d, 14 * 86400);
	expect_eq(lp_parse_duration_s("7x", &d), -EINVAL);
	expect_eq(lp_parse_duration_s("", &d), -EINVAL);
	expect_eq(lp_parse_duration_s("-1s", &d), -EINVAL);
	expect_eq(lp_parse_duration_s("h", &d), -EINVAL);
	expect_eq(lp_parse_size("16MiB", &s), 0);
	expect_eq(s, 16 << 20);
	expect_eq(lp_parse_size("1GB", &s), 0);
	expect_eq(s, 1 << 30);
	expect_eq(lp_parse_size("512k", &s), 0);
	expect_eq(s, 512 << 10);
	expect_eq(lp_parse_size("12Q", &s), -EINVAL);
	expect_eq(lp_parse_size("99999999999999TB", &s), -ERANGE);
}

static void test_times(void **state)
{
	const int64_t now = 1700000000ll * 1000000000;
	int64_t t;

	(void)state;
	expect_eq(lp_parse_time_ns("1700000000", now, &t), 0);
	expect_eq(t, now);
	expect_eq(lp_parse_time_ns("1700000000123", now, &t), 0);      /* ms */
	expect_eq(t, now + 123000000);
	expect_eq(lp_parse_time_ns("2024-05-01T12:00:00Z", now, &t), 0);
	expect_eq(t, 1714564800ll * 1000000000);
	expect_eq(lp_parse_time_ns("2024-05-01T14:00:00.5+02:00", now, &t), 0);
	expect_eq(t, 1714564800ll * 1000000000 + 500000000);
	expect_eq(lp_parse_time_ns("now-1h", now, &t), 0);
	expect_eq(t, now - 3600ll * 1000000000);
	expect_eq(lp_parse_time_ns("now", now, &t), 0);
	expect_eq(t, now);
	expect_eq(lp_parse_time_ns("yesterday", now, &t), -EINVAL);
	expect_eq(lp_parse_time_ns("2024-13-01T00:00:00Z", now, &t), -EINVAL);
	expect_eq(lp_parse_time_ns("2024-05-01T12:00:00", now, &t), -EINVAL);  /* no zone */
	expect_eq(lp_is_trace_id(T1), 1);
	expect_eq(lp_is_trace_id("0123456789ABCDEF0123456789abcdef"), 0);
	expect_eq(lp_is_trace_id("0123"), 0);
}

static void test_gunzip_cap(void **state)
{
	size_t n = 1 << 20;
	unsigned char *zeros = calloc(1, n);
	struct lp_buf gz = { 0 }, out = { 0 };

	(void)state;
	assert_non_null(zeros);
	expect_eq(lp_gzip(zeros, n, &gz), 0);
	expect_eq(lp_is_gzip(gz.data, gz.len), 1);
	/* a cap below the inflated size stops early: never much past the cap */
	expect_eq(lp_gunzip(gz.data, gz.len, 64 << 10, &out), -EFBIG);
	assert_true(out.len <= 64 << 10);
	out.len = 0;
	expect_eq(lp_gunzip(gz.data, gz.len, n, &out), 0);
	expect_eq(out.len, n);
	assert_memory_equal(out.data, zeros, n);
	out.len = 0;
	expect_eq(lp_gunzip(gz.data, gz.len / 2, n, &out), -EINVAL);       /* truncated */
	out.len = 0;
	expect_eq(lp_gunzip("\x1f\x8bnot gzip at all", 16, n, &out), -EINVAL);
	lp_buf_free(&gz);
	lp_buf_free(&out);
	free(zeros);
}

static void test_multipart(void **state)
{
	static const char body[] =
		"preamble\r\n--b 1\r\nContent-Disposition: form-data; name=\"profile\"; "
		"filename=\"p.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\nPPROF\r\n"
		"--b 1\r\ncontent-disposition: form-data; name=sample_type_config\r\n\r\n{}\r\n"
		"--b 1--\r\n";
	struct lp_part parts[4];
	size_t n = 0;
	char why[160];

	(void)state;
	expect_eq(lp_multipart_parse("multipart/form-data; boundary=\"b 1\"", body,
				     sizeof(body) - 1, parts, 4, &n, why, sizeof(why)), 0);
	expect_eq(n, 2);
	assert_string_equal(parts[0].name, "profile");
	expect_eq(parts[0].len, 5);
	assert_memory_equal(parts[0].data, "PPROF", 5);
	assert_string_equal(parts[1].name, "sample_type_config");
	assert_memory_equal(parts[1].data, "{}", 2);
	/* not well formed */
	expect_eq(lp_multipart_parse("multipart/form-data", body, sizeof(body) - 1, parts, 4, &n,
				     why, sizeof(why)), -EINVAL);
	expect_eq(lp_multipart_parse("multipart/form-data; boundary=zz", body, sizeof(body) - 1,
				     parts, 4, &n, why, sizeof(why)), -EINVAL);
	expect_eq(lp_multipart_parse("multipart/form-data; boundary=\"b 1\"", body, 60, parts, 4,
				     &n, why, sizeof(why)), -EINVAL);           /* cut short */
	assert_non_null(strstr(why, "multipart"));
	expect_eq(lp_multipart_parse("multipart/form-data; boundary=\"b 1\"", body,
				     sizeof(body) - 1, parts, 1, &n, why, sizeof(why)), -EINVAL);
}

/* ---- pprof --------------------------------------------------------------------------------- */

static void test_check_refuses_dangling_references(void **state)
{
	struct fake f;
	char why[160];

	(void)state;
	fake_init(&f, cpu_types, 2, 1);
	add(&f, 1, "leaf", "main", T1, 1, 10);
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), 0);
	f.ids[0][1] = 999;                                  /* no such location */
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), -EINVAL);
	f.ids[0][1] = f.loc[1].id;
	f.s[0].n_value = 1;                                 /* one value, two types */
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "values"));
	f.s[0].n_value = 2;
	f.lab[0].str = 99;                                  /* string out of range */
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), -EINVAL);
	f.lab[0].str = 0;
	f.fn[1].id = f.fn[0].id;                            /* repeated id */
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), -EINVAL);
	f.fn[1].id = 77;
	f.ln[1].function_id = 77;
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), 0);  /* sparse ids are fine */
	f.strs[0] = "x";
	expect_eq(lp_pprof_check(&f.p, why, sizeof(why)), -EINVAL);
}

static void test_type_and_trace_totals(void **state)
{
	static const char *const heap[] = { "alloc_objects", "count", "alloc_space", "bytes",
					    "inuse_objects", "count", "inuse_space", "bytes" };
	static const char *const mutex[] = { "contentions", "count", "delay", "nanoseconds" };
	static const char *const other[] = { "Goroutine-Count", "count" };
	struct lp_pprof_info info;
	struct lp_trace_total *t = NULL;
	struct fake f;
	size_t n = 0;

	(void)state;
	fake_init(&f, cpu_types, 2, 1);
	add(&f, 1, "a", "main", T1, 1, 10);
	add(&f, 1, "b", "main", T2, 2, 20);
	add(&f, 1, "c", "main", T1, 3, 30);
	add(&f, 1, "d", "main", "not-a-trace", 4, 40);
	lp_pprof_info(&f.p, &info);
	assert_string_equal(info.type, "cpu");
	expect_eq(info.value_index, 1);                     /* the last type */
	assert_string_equal(info.value_unit, "nanoseconds");
	expect_eq(lp_pprof_trace_totals(&f.p, info.value_index, &t, &n), 0);
	expect_eq(n, 2);
	assert_string_equal(t[0].trace_id, T1);
	expect_eq(t[0].total, 40);
	assert_string_equal(t[1].trace_id, T2);
	expect_eq(t[1].total, 20);
	free(t);
	f.p.default_sample_type = str(&f, "samples");
	lp_pprof_info(&f.p, &info);
	expect_eq(info.value_index, 0);
	fake_init(&f, heap, 4, 1);
	lp_pprof_info(&f.p, &info);
	assert_string_equal(info.type, "heap");
	fake_init(&f, mutex, 2, 1);
	lp_pprof_info(&f.p, &info);
	assert_string_equal(info.type, "mutex");
	fake_init(&f, other, 1, 1);
	lp_pprof_info(&f.p, &info);
	assert_string_equal(info.type, "goroutinecount");
}

/* Decodes a merge's output; the value of the sample whose leaf is fn, type i. */
static int64_t merged_value(const Profile *p, const char *fn, const char *type)
{
	int64_t v = 0;

	for (size_t i = 0; i < p->n_sample; i++) {
		const Perftools__Profiles__Sample *s = p->sample[i];
		const Perftools__Profiles__Location *l = p->location[s->location_id[0] - 1];
		const Perftools__Profiles__Function *f = p->function[l->line[0]->function_id - 1];

		if (strcmp(lp_pprof_str(p, f->name), fn) != 0)
			continue;
		for (size_t j = 0; j < p->n_sample_type; j++)
			if (strcmp(lp_pprof_str(p, p->sample_type[j]->type), type) == 0)
				v += s->value[j];
	}
	return v;
}

static Profile *merge(const Profile *a, const Profile *b, const char *trace)
{
	struct lp_merge *m = NULL;
	struct lp_buf out = { 0 };
	Profile *p = NULL;
	char why[160];

	expect_eq(lp_merge_new(&m, trace, 1000), 0);
	expect_eq(lp_merge_add(m, a), 0);
	expect_eq(lp_merge_add(m, b), 0);
	expect_eq(lp_merge_finish(m, &out), 0);
	expect_eq(lp_pprof_decode(out.data, out.len, 1 << 20, &p, why, sizeof(why)), 0);
	lp_merge_free(m);
	lp_buf_free(&out);
	return p;
}

static void test_merge(void **state)
{
	static const char *const cpu_only[] = { "cpu", "nanoseconds" };
	struct fake a, b;
	Profile *p;

	(void)state;
	fake_init(&a, cpu_types, 2, 1);
	add(&a, 1, "hot", "main", T1, 1, 10);
	add(&a, 1, "cold", "main", T2, 2, 20);
	add(&a, 1, "hot", "main", T1, 1, 5);                /* same as the first: summed */
	/* other ids, other string order, only the cpu type */
	fake_init(&b, cpu_only, 1, 50);
	add(&b, 50, "main", "main", NULL, 7, 0);
	add(&b, 50, "hot", "main", T1, 100, 0);
	p = merge(&a.p, &b.p, NULL);
	expect_eq(p->n_sample_type, 2);
	expect_eq(p->n_function, 3);                         /* hot, main, cold */
	expect_eq(p->n_sample, 3);
	expect_eq(merged_value(p, "hot", "cpu"), 115);
	expect_eq(merged_value(p, "hot", "samples"), 2);
	expect_eq(merged_value(p, "cold", "cpu"), 20);
	expect_eq(merged_value(p, "main", "cpu"), 7);
	expect_eq(p->time_nanos, 1000000000);
	expect_eq(p->duration_nanos, 59000000000);
	lp_pprof_free(p);
	p = merge(&a.p, &b.p, T1);                          /* only T1's samples */
	expect_eq(p->n_sample, 1);
	expect_eq(merged_value(p, "hot", "cpu"), 115);
	expect_eq(merged_value(p, "cold", "cpu"), 0);
	lp_pprof_free(p);
}

/* ---- flame-graph trees --------------------------------------------------------------------- */

struct flame_out {
	int index;
	size_t max;
	struct lp_buf json;
	struct lp_flame_stats st;
};

static int flame_cb(void *ctx, const Profile *p)
{
	struct flame_out *f = ctx;

	return lp_flamegraph_json(p, f->index, f->max, &f->json, &f->st);
}

/* The tree of a and b (b may be NULL) merged; f->json.data is the JSON. */
static const char *flame(const Profile *a, const Profile *b, int index, size_t max,
			 struct flame_out *f)
{
	struct lp_merge *m = NULL;

	lp_buf_free(&f->json);
	memset(f, 0, sizeof(*f));
	f->index = index;
	f->max = max;
	expect_eq(lp_merge_new(&m, NULL, 1000), 0);
	expect_eq(lp_merge_add(m, a), 0);
	if (b)
		expect_eq(lp_merge_add(m, b), 0);
	expect_eq(lp_merge_view(m, flame_cb, f), 0);
	lp_merge_free(m);
	return (const char *)f->json.data;
}

static void test_flamegraph(void **state)
{
	static const char *const cpu_only[] = { "cpu", "nanoseconds" };
	struct flame_out f = { 0 };
	struct fake a, b;

	(void)state;
	fake_init(&a, cpu_types, 2, 1);
	add(&a, 1, "hot", "main", T1, 1, 10);
	add(&a, 1, "cold", "main", T2, 2, 20);
	add(&a, 1, "hot", "main", T1, 1, 5);
	fake_init(&b, cpu_only, 1, 50);
	add(&b, 50, "main", "main", NULL, 7, 0);             /* main calling main */
	add(&b, 50, "hot", "main", T1, 100, 0);

	/* values summed along each stack, root first, children by name */
	assert_string_equal(flame(&a.p, &b.p, 1, 100, &f),
			    "{\"name\":\"all\",\"value\":142,\"children\":[{\"name\":\"main\",\"value\":142,"
			    "\"children\":[{\"name\":\"cold\",\"value\":20},{\"name\":\"hot\",\"value\":115},"
			    "{\"name\":\"main\",\"value\":7}]}]}");
	expect_eq(f.st.total, 142);
	expect_eq(f.st.n_nodes, 5);
	expect_eq(f.st.n_sent, 5);
	/* another sample type: b has no "samples", it adds nothing */
	assert_string_equal(flame(&a.p, &b.p, 0, 100, &f),
			    "{\"name\":\"all\",\"value\":4,\"children\":[{\"name\":\"main\",\"value\":4,"
			    "\"children\":[{\"name\":\"cold\",\"value\":2},{\"name\":\"hot\",\"value\":2}]}]}");
	/* 4 nodes at most: the heaviest kept, the others' total in one "[other]" */
	assert_string_equal(flame(&a.p, &b.p, 1, 4, &f),
			    "{\"name\":\"all\",\"value\":142,\"children\":[{\"name\":\"main\",\"value\":142,"
			    "\"children\":[{\"name\":\"hot\",\"value\":115},"
			    "{\"name\":\"[other]\",\"value\":27,\"merged\":2}]}]}");
	expect_eq(f.st.n_nodes, 5);
	expect_eq(f.st.n_sent, 4);
	/* a location without lines is named by its address */
	a.loc[0].n_line = 0;
	a.loc[0].address = 0x4d2;
	assert_string_equal(flame(&a.p, NULL, 1, 100, &f),
			    "{\"name\":\"all\",\"value\":35,\"children\":[{\"name\":\"main\",\"value\":35,"
			    "\"children\":[{\"name\":\"0x4d2\",\"value\":15},{\"name\":\"cold\",\"value\":20}]}]}");
	lp_buf_free(&f.json);

	/* sample_index: a name, an index, or the default (pprof's rule) */
	expect_eq(lp_flamegraph_value_index(&a.p, "cpu"), 1);
	expect_eq(lp_flamegraph_value_index(&a.p, "samples"), 0);
	expect_eq(lp_flamegraph_value_index(&a.p, "0"), 0);
	expect_eq(lp_flamegraph_value_index(&a.p, NULL), 1);
	expect_eq(lp_flamegraph_value_index(&a.p, "bogus"), -EINVAL);
	expect_eq(lp_flamegraph_value_index(&a.p, "2"), -EINVAL);
}

/* ---- OTLP requests -> pprof ------------------------------------------------------------------ */

typedef Opentelemetry__Proto__Profiles__V1development__Profile OProfile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample OSample;

/* A request with one scope of Profiles sharing one dictionary: functions spin
 * and main, stack 1 = spin <- main, stack 2 = main, link 1 = trace T1. */
#define OTLP_MAX 8
struct otlp {
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest rq;
	Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary d;
	Opentelemetry__Proto__Profiles__V1development__ResourceProfiles rp, *rpp;
	Opentelemetry__Proto__Profiles__V1development__ScopeProfiles sc, *scp;
	Opentelemetry__Proto__Profiles__V1development__Function fn[3], *fnp[3];
	Opentelemetry__Proto__Profiles__V1development__Line ln[3], *lnp[3];
	Opentelemetry__Proto__Profiles__V1development__Location loc[3], *locp[3];
	Opentelemetry__Proto__Profiles__V1development__Stack st[3], *stp[3];
	Opentelemetry__Proto__Profiles__V1development__Link lk[2], *lkp[2];
	Opentelemetry__Proto__Profiles__V1development__ValueType vt[OTLP_MAX], period;
	OProfile prof[OTLP_MAX], *profp[OTLP_MAX];
	OSample s[4 * OTLP_MAX], *sp[4 * OTLP_MAX];
	int64_t vals[4 * OTLP_MAX];
	int32_t stacks[3][2];
	uint8_t trace[16], span[8];
	struct lp_otlp_result res;
};

static char *otlp_strs[] = { "", "samples", "count", "cpu", "nanoseconds", "spin", "main" };

static void otlp_init(struct otlp *o)
{
	memset(o, 0, sizeof(*o));
	opentelemetry__proto__profiles__v1development__profiles_dictionary__init(&o->d);
	o->d.string_table = otlp_strs;
	o->d.n_string_table = 7;
	for (int i = 0; i < 3; i++) {       /* index 0 of every table: the zero value */
		opentelemetry__proto__profiles__v1development__function__init(&o->fn[i]);
		opentelemetry__proto__profiles__v1development__line__init(&o->ln[i]);
		opentelemetry__proto__profiles__v1development__location__init(&o->loc[i]);
		opentelemetry__proto__profiles__v1development__stack__init(&o->st[i]);
		o->fnp[i] = &o->fn[i];
		o->lnp[i] = &o->ln[i];
		o->locp[i] = &o->loc[i];
		o->stp[i] = &o->st[i];
		if (!i)
			continue;
		o->fn[i].name_strindex = 4 + i;                    /* spin, main */
		o->ln[i].function_index = i;
		o->loc[i].lines = &o->lnp[i];
		o->loc[i].n_lines = 1;
		o->loc[i].address = 0x1000u * (unsigned)i;
	}
	o->stacks[1][0] = 1;
	o->stacks[1][1] = 2;
	o->stacks[2][0] = 2;
	o->st[1].location_indices = o->stacks[1];
	o->st[1].n_location_indices = 2;
	o->st[2].location_indices = o->stacks[2];
	o->st[2].n_location_indices = 1;
	for (int i = 0; i < 2; i++) {
		opentelemetry__proto__profiles__v1development__link__init(&o->lk[i]);
		o->lkp[i] = &o->lk[i];
	}
	for (int i = 0; i < 16; i++)        /* T1 = 0123456789abcdef twice */
		o->trace[i] = (uint8_t)(((2 * i % 16) << 4) | (2 * i + 1) % 16);
	o->span[7] = 1;
	o->lk[1].trace_id = (ProtobufCBinaryData){ 16, o->trace };
	o->lk[1].span_id = (ProtobufCBinaryData){ 8, o->span };
	o->d.function_table = o->fnp;
	o->d.location_table = o->locp;
	o->d.stack_table = o->stp;
	o->d.link_table = o->lkp;
	o->d.n_function_table = o->d.n_location_table = o->d.n_stack_table = 3;
	o->d.n_link_table = 2;
	opentelemetry__proto__profiles__v1development__value_type__init(&o->period);
	o->period.type_strindex = 3;                               /* cpu/nanoseconds */
	o->period.unit_strindex = 4;
	opentelemetry__proto__profiles__v1development__scope_profiles__init(&o->sc);
	o->sc.profiles = o->profp;
	o->scp = &o->sc;
	opentelemetry__proto__profiles__v1development__resource_profiles__init(&o->rp);
	o->rp.scope_profiles = &o->scp;
	o->rp.n_scope_profiles = 1;
	o->rpp = &o->rp;
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__init(&o->rq);
	o->rq.resource_profiles = &o->rpp;
	o->rq.n_resource_profiles = 1;
	o->rq.dictionary = &o->d;
}

/* A Profile of sample type type/unit (string indexes) at time_s, period 10 ms
 * of cpu; samples {stack, link, value}, up to a stack of 0. */
static void otlp_profile(struct otlp *o, int32_t type, int32_t unit, uint64_t time_s,
			 const int64_t (*smp)[3])
{
	OProfile *p = &o->prof[o->sc.n_profiles];
	size_t n = 0;

	opentelemetry__proto__profiles__v1development__profile__init(p);
	opentelemetry__proto__profiles__v1development__value_type__init(&o->vt[o->sc.n_profiles]);
	o->vt[o->sc.n_profiles].type_strindex = type;
	o->vt[o->sc.n_profiles].unit_strindex = unit;
	p->sample_type = &o->vt[o->sc.n_profiles];
	p->period_type = &o->period;
	p->period = 10000000;
	p->time_unix_nano = time_s * 1000000000;
	p->duration_nano = 10000000000;
	for (n = 0; smp[n][0]; n++)
		;
	p->samples = &o->sp[4 * o->sc.n_profiles];
	for (size_t i = 0; i < n; i++) {
		OSample *s = &o->s[4 * o->sc.n_profiles + i];

		opentelemetry__proto__profiles__v1development__sample__init(s);
		s->stack_index = (int32_t)smp[i][0];
		s->link_index = (int32_t)smp[i][1];
		o->vals[4 * o->sc.n_profiles + i] = smp[i][2];
		s->values = &o->vals[4 * o->sc.n_profiles + i];
		s->n_values = 1;
		p->samples[p->n_samples++] = s;
	}
	o->profp[o->sc.n_profiles++] = p;
}

static void otlp_convert(struct otlp *o)
{
	size_t len = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__get_packed_size(&o->rq);
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__pack(&o->rq, buf);
	expect_eq(lp_otlp_convert(buf, len, &o->res), 0);
	free(buf);
}

/* The i-th converted profile, decoded and checked as ingest does. */
static Profile *otlp_pprof(struct otlp *o, size_t i)
{
	Profile *p = NULL;
	char why[160] = "";

	expect_eq(lp_pprof_decode(o->res.profiles[i].pprof.data, o->res.profiles[i].pprof.len,
				  1 << 20, &p, why, sizeof(why)), 0);
	return p;
}

static void test_otlp_sample_types_joined(void **state)
{
	/* libprof's CPU profile: samples/count and cpu/nanoseconds, one Profile each */
	static const int64_t counts[][3] = { { 1, 1, 3 }, { 2, 0, 1 }, { 0 } };
	static const int64_t nanos[][3] = { { 1, 1, 30000000 }, { 2, 0, 10000000 },
					    { 2, 1, 5000000 }, { 0 } };
	struct lp_trace_total *t = NULL;
	struct lp_pprof_info info;
	struct otlp o;
	Profile *p;
	size_t n = 0;

	(void)state;
	otlp_init(&o);
	otlp_profile(&o, 1, 2, 100, counts);
	otlp_profile(&o, 3, 4, 100, nanos);
	otlp_convert(&o);
	expect_eq(o.res.n_profiles, 1);                     /* one pprof, as libprof writes */
	expect_eq(o.res.profiles[0].n_sources, 2);
	expect_eq(o.res.n_rejected, 0);
	p = otlp_pprof(&o, 0);
	expect_eq(p->n_sample_type, 2);
	assert_string_equal(lp_pprof_str(p, p->sample_type[0]->type), "samples");
	assert_string_equal(lp_pprof_str(p, p->sample_type[1]->type), "cpu");
	lp_pprof_info(p, &info);
	assert_string_equal(info.type, "cpu");
	assert_string_equal(info.value_type, "cpu");        /* the default: cpu, not the count */
	assert_string_equal(info.value_unit, "nanoseconds");
	expect_eq(p->n_sample, 3);                          /* one per stack and link */
	expect_eq(merged_value(p, "spin", "samples"), 3);
	expect_eq(merged_value(p, "spin", "cpu"), 30000000);
	expect_eq(merged_value(p, "main", "samples"), 1);   /* 0 where the count lacks one */
	expect_eq(merged_value(p, "main", "cpu"), 15000000);
	expect_eq(lp_pprof_trace_totals(p, info.value_index, &t, &n), 0);
	expect_eq(n, 1);
	assert_string_equal(t[0].trace_id, T1);
	expect_eq(t[0].total, 35000000);                    /* nanoseconds only */
	free(t);
	lp_pprof_free(p);
	lp_otlp_result_free(&o.res);

	/* one samples/count Profile (OpenTelemetry's eBPF profiler): as before */
	otlp_init(&o);
	otlp_profile(&o, 1, 2, 100, counts);
	otlp_convert(&o);
	expect_eq(o.res.n_profiles, 1);
	p = otlp_pprof(&o, 0);
	expect_eq(p->n_sample_type, 1);
	lp_pprof_info(p, &info);
	assert_string_equal(info.type, "cpu");              /* from the period type */
	assert_string_equal(info.value_type, "samples");
	lp_pprof_free(p);
	lp_otlp_result_free(&o.res);
}

static void test_otlp_what_is_not_joined(void **state)
{
	static const int64_t one[][3] = { { 1, 1, 3 }, { 0 } };
	static const int64_t bad[][3] = { { 99, 0, 3 }, { 0 } };
	struct otlp o;

	(void)state;
	/* two time ranges, then a sample type repeated: four pprofs */
	otlp_init(&o);
	otlp_profile(&o, 1, 2, 100, one);
	otlp_profile(&o, 3, 4, 100, one);
	otlp_profile(&o, 1, 2, 110, one);
	otlp_profile(&o, 3, 4, 110, one);
	otlp_profile(&o, 3, 4, 120, one);
	otlp_profile(&o, 3, 4, 120, one);
	otlp_convert(&o);
	expect_eq(o.res.n_profiles, 4);
	expect_eq(o.res.profiles[0].n_sources, 2);
	expect_eq(o.res.profiles[1].n_sources, 2);
	expect_eq(o.res.profiles[1].from_ns, 110000000000);
	expect_eq(o.res.profiles[2].n_sources, 1);
	expect_eq(o.res.profiles[3].n_sources, 1);
	lp_otlp_result_free(&o.res);

	/* a bad Profile is rejected alone: the good one of its group is kept */
	otlp_init(&o);
	otlp_profile(&o, 1, 2, 100, one);
	otlp_profile(&o, 3, 4, 100, bad);
	otlp_convert(&o);
	expect_eq(o.res.n_profiles, 1);
	expect_eq(o.res.profiles[0].n_sources, 1);
	expect_eq(o.res.n_rejected, 1);
	assert_string_equal(o.res.first_error, "stack index out of range");
	lp_otlp_result_free(&o.res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations_and_sizes),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_gunzip_cap),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_check_refuses_dangling_references),
		cmocka_unit_test(test_type_and_trace_totals),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_flamegraph),
		cmocka_unit_test(test_otlp_sample_types_joined),
		cmocka_unit_test(test_otlp_what_is_not_joined),
	};

	lp_log_level = LP_LOG_OFF;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

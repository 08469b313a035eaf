/*
 * Unit tests of the OTLP encoder (exporter/otlp.c: lp_otlp_encode) and of the
 * partial-success reader. Requests are decoded with the protobuf-c code
 * generated from proto/otlp_*.proto and checked against the rules of
 * docs/wire-formats.md section 2: element 0 of every dictionary table is the
 * zero value, one Profile per sample type, every index resolves, trace context
 * as Link entries, the build id as a mapping attribute.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../exporter/internal.h"
#include "otlp_profiles_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest Request;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dict;
typedef Opentelemetry__Proto__Profiles__V1development__Profile OProfile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample OSample;
typedef Opentelemetry__Proto__Profiles__V1development__Stack OStack;
typedef Opentelemetry__Proto__Profiles__V1development__Location OLocation;

#define expect_cmp(a, op, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (!(a_ op b_)) \
		fail_msg("%s == %lld, expected it %s %s (%lld)", #a, a_, #op, #b, b_); \
} while (0)
#define expect_eq(a, b) expect_cmp(a, ==, b)

static const struct lp_labels no_labels;
static const struct lp_labels traced = {
	.trace_id = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
		      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 },
	.span_id = { 0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 },
};

static const struct lp_profile_desc cpu_desc = {
	.n_types = 2,
	.types = { { "samples", "count" }, { "cpu", "nanoseconds" } },
	.period_type = { "cpu", "nanoseconds" },
	.period = 10000000,
	.time_nanos = 1700000000123456789ll,
	.duration_nanos = 10000000000ll,
	.default_type = "cpu",
};

static const char resource[] = "deployment.environment\0prod\0team\0core";
static const struct lp_otlp_source source = { "checkout", resource, 2 };

static Request *encode(const struct lp_table *t, const struct lp_profile_desc *d,
		       const struct lp_maps *maps)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(lp_otlp_encode(t, d, maps, NULL, &source, &buf, &len), 0);
	Request *r = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(r);
	return r;
}

static void free_request(Request *r)
{
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked(r, NULL);
}

static const char *str(const Dict *d, int32_t i)
{
	if (i < 0 || (size_t)i >= d->n_string_table)
		fail_msg("string index %d, expected 0..%zu", i, d->n_string_table - 1);
	return d->string_table[i];
}

static const OStack *stack_of(const Dict *d, const OSample *s)
{
	expect_cmp(s->stack_index, >, 0);
	expect_cmp(s->stack_index, <, (long long)d->n_stack_table);
	return d->stack_table[s->stack_index];
}

static const OLocation *loc(const Dict *d, int32_t i)
{
	expect_cmp(i, >, 0);
	expect_cmp(i, <, (long long)d->n_location_table);
	return d->location_table[i];
}

static void add(struct lp_table *t, const uint64_t *pcs, int depth, const struct lp_labels *l,
		int64_t v0, int64_t v1)
{
	const int64_t values[4] = { v0, v1, 0, 0 };
	expect_eq(lp_table_add(t, pcs, depth, 0, l, values, 2), 0);
}

/* Element 0 of every table is the zero value; the resource and scope name the
 * source. */
static void test_dictionary_and_resource(void **state)
{
	(void)state;
	static const uint64_t pcs[] = { 0x1000, 0x2001 };
	struct lp_table *t = lp_table_new(8);
	add(t, pcs, 2, &no_labels, 1, 10);
	Request *r = encode(t, &cpu_desc, NULL);
	const Dict *d = r->dictionary;
	assert_non_null(d);
	assert_string_equal(d->string_table[0], "");
	expect_cmp(d->n_mapping_table, >=, 1);
	expect_eq(d->mapping_table[0]->memory_start | d->mapping_table[0]->memory_limit |
		  (uint64_t)d->mapping_table[0]->filename_strindex, 0);
	expect_eq(d->location_table[0]->address, 0);
	expect_eq(d->location_table[0]->n_lines, 0);
	expect_eq(d->function_table[0]->name_strindex, 0);
	expect_eq(d->attribute_table[0]->key_strindex, 0);
	expect_eq(d->stack_table[0]->n_location_indices, 0);
	expect_eq(d->link_table[0]->trace_id.len, 16);
	expect_eq(d->link_table[0]->span_id.len, 8);
	static const uint8_t zero[16];
	expect_eq(memcmp(d->link_table[0]->trace_id.data, zero, 16), 0);
	expect_eq(memcmp(d->link_table[0]->span_id.data, zero, 8), 0);

	expect_eq(r->n_resource_profiles, 1);
	const Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_profiles[0]->resource;
	expect_eq(res->n_attributes, 3);
	assert_string_equal(res->attributes[0]->key, "service.name");
	assert_string_equal(res->attributes[0]->value->string_value, "checkout");
	assert_string_equal(res->attributes[1]->key, "deployment.environment");
	assert_string_equal(res->attributes[1]->value->string_value, "prod");
	assert_string_equal(res->attributes[2]->key, "team");
	expect_eq(r->resource_profiles[0]->n_scope_profiles, 1);
	const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
		r->resource_profiles[0]->scope_profiles[0];
	assert_string_equal(sp->scope->name, "libprof");
	assert_string_equal(sp->scope->version, LP_VERSION);
	free_request(r);
	lp_table_free(t);
}

/* One Profile per sample type, with its time, period and values; stacks leaf
 * first with return addresses moved into the call; identical stacks shared;
 * trace context as Links, none for untraced samples. */
static void test_profiles_samples_links(void **state)
{
	(void)state;
	static const uint64_t a[] = { 0x1000, 0x2001, 0x3001 }, b[] = { 0x5000, 0x2001 };
	struct lp_table *t = lp_table_new(8);
	add(t, a, 3, &no_labels, 1, 100);
	add(t, a, 3, &traced, 2, 200);
	add(t, b, 2, &traced, 3, 300);
	Request *r = encode(t, &cpu_desc, NULL);
	const Dict *d = r->dictionary;
	const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
		r->resource_profiles[0]->scope_profiles[0];
	expect_eq(sp->n_profiles, 2);
	for (size_t p = 0; p < 2; p++) {
		const OProfile *pr = sp->profiles[p];
		assert_string_equal(str(d, pr->sample_type->type_strindex), cpu_desc.types[p][0]);
		assert_string_equal(str(d, pr->sample_type->unit_strindex), cpu_desc.types[p][1]);
		assert_string_equal(str(d, pr->period_type->type_strindex), "cpu");
		expect_eq(pr->period, 10000000);
		expect_eq(pr->time_unix_nano, 1700000000123456789ull);
		expect_eq(pr->duration_nano, 10000000000ull);
		expect_eq(pr->n_samples, 3);
		for (size_t i = 0; i < 3; i++) {
			const OSample *s = pr->samples[i];
			expect_eq(s->n_values, 1);
			int64_t v = s->values[0];
			int64_t unit = p == 0 ? 1 : 100;
			expect_cmp(v, >=, unit);
			const OStack *st = stack_of(d, s);
			const uint64_t *pcs = v == unit ? a : v == 2 * unit ? a : b;
			expect_eq(st->n_location_indices, pcs == a ? 3 : 2);
			for (size_t k = 0; k < st->n_location_indices; k++)
				expect_eq(loc(d, st->location_indices[k])->address, k ? pcs[k] - 1 : pcs[k]);
			if (v == unit) {
				expect_eq(s->link_index, 0);
				continue;
			}
			expect_cmp(s->link_index, >, 0);
			expect_cmp(s->link_index, <, (long long)d->n_link_table);
			const Opentelemetry__Proto__Profiles__V1development__Link *l =
				d->link_table[s->link_index];
			expect_eq(l->trace_id.len, 16);
			expect_eq(l->span_id.len, 8);
			expect_eq(memcmp(l->trace_id.data, traced.trace_id, 16), 0);
			expect_eq(memcmp(l->span_id.data, traced.span_id, 8), 0);
			expect_eq(s->n_attribute_indices, 0);
		}
	}
	expect_eq(d->n_link_table, 2);          /* the zero link and one trace */
	expect_eq(d->n_stack_table, 3);         /* the empty stack, a and b */
	expect_eq(d->n_location_table, 5);      /* zero, 0x1000, 0x2000, 0x3000, 0x5000 */
	free_request(r);
	lp_table_free(t);
}

/* Mappings keep range, offset and file, and carry the GNU build id as an
 * attribute; locations point to their mapping (0: none). */
static void test_mappings(void **state)
{
	(void)state;
	struct lp_maps maps = { .n = 2 };
	maps.v = calloc(2, sizeof(*maps.v));
	maps.v[0] = (struct lp_mapping){ .start = 0x400000, .limit = 0x500000, .path = "/usr/bin/app",
					 .build_id = "0123456789abcdef0123" };
	maps.v[1] = (struct lp_mapping){ .start = 0x7f0000001000, .limit = 0x7f0000100000,
					 .offset = 0x2000, .path = "/lib/libc.so.6", .build_id = "" };
	static const uint64_t pcs[] = { 0x400010, 0x7f0000001001, 0x10 };
	struct lp_table *t = lp_table_new(8);
	add(t, pcs, 3, &no_labels, 1, 1);
	Request *r = encode(t, &cpu_desc, &maps);
	const Dict *d = r->dictionary;
	expect_eq(d->n_mapping_table, 3);
	for (size_t i = 0; i < 2; i++) {
		const Opentelemetry__Proto__Profiles__V1development__Mapping *m = d->mapping_table[i + 1];
		expect_eq(m->memory_start, maps.v[i].start);
		expect_eq(m->memory_limit, maps.v[i].limit);
		expect_eq(m->file_offset, maps.v[i].offset);
		assert_string_equal(str(d, m->filename_strindex), maps.v[i].path);
		expect_eq(m->n_attribute_indices, i == 0 ? 1 : 0);
	}
	const Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit *a =
		d->attribute_table[d->mapping_table[1]->attribute_indices[0]];
	assert_string_equal(str(d, a->key_strindex), "process.executable.build_id.gnu");
	assert_string_equal(a->value->string_value, "0123456789abcdef0123");
	const OStack *st = stack_of(d, r->resource_profiles[0]->scope_profiles[0]->profiles[0]->samples[0]);
	static const int want[] = { 1, 2, 0 };
	for (size_t k = 0; k < 3; k++)
		expect_eq(loc(d, st->location_indices[k])->mapping_index, want[k]);
	free_request(r);
	lp_table_free(t);
	free(maps.v);
}

/* A heap profile is four Profiles; a sample with 0 for a type is left out of
 * that type's Profile. */
static void test_heap_profiles(void **state)
{
	(void)state;
	static const struct lp_profile_desc heap = {
		.n_types = 4,
		.types = { { "alloc_objects", "count" }, { "alloc_space", "bytes" },
			   { "inuse_objects", "count" }, { "inuse_space", "bytes" } },
		.period_type = { "space", "bytes" },
		.period = 524288,
	};
	static const uint64_t a[] = { 0x1000 }, b[] = { 0x2000 };
	struct lp_table *t = lp_table_new(8);
	const int64_t va[4] = { 1, 100, 0, 0 }, vb[4] = { 2, 200, 2, 200 };
	expect_eq(lp_table_add(t, a, 1, 0, &no_labels, va, 4), 0);
	expect_eq(lp_table_add(t, b, 1, 0, &no_labels, vb, 4), 0);
	Request *r = encode(t, &heap, NULL);
	const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp =
		r->resource_profiles[0]->scope_profiles[0];
	expect_eq(sp->n_profiles, 4);
	static const size_t want[] = { 2, 2, 1, 1 };
	for (size_t p = 0; p < 4; p++) {
		expect_eq(sp->profiles[p]->n_samples, want[p]);
		expect_eq(sp->profiles[p]->period, 524288);
	}
	free_request(r);
	lp_table_free(t);
}

/* An empty table still makes a valid request: the profiles with no sample. */
static void test_empty_table(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(8);
	Request *r = encode(t, &cpu_desc, NULL);
	expect_eq(r->resource_profiles[0]->scope_profiles[0]->n_profiles, 2);
	expect_eq(r->resource_profiles[0]->scope_profiles[0]->profiles[0]->n_samples, 0);
	free_request(r);
	lp_table_free(t);
}

/* Thousands of distinct stacks, addresses and traces (the indexes grow):
 * every sample still finds its own stack and link. */
static void test_many_stacks(void **state)
{
	(void)state;
	enum { N = 3000 };
	struct lp_table *t = lp_table_new(N);
	for (int i = 0; i < N; i++) {
		const uint64_t pcs[3] = { 0x100000 + (uint64_t)i * 16, 0x900001 + (uint64_t)i * 16,
					  0x5000 };
		struct lp_labels l = { .trace_id = { 1, (uint8_t)(i >> 8), (uint8_t)i }, .span_id = { 2 } };
		add(t, pcs, 3, i % 2 ? &l : &no_labels, i + 1, 0);
	}
	Request *r = encode(t, &cpu_desc, NULL);
	const Dict *d = r->dictionary;
	const OProfile *p = r->resource_profiles[0]->scope_profiles[0]->profiles[0];
	expect_eq(p->n_samples, N);
	expect_eq(d->n_stack_table, N + 1);
	expect_eq(d->n_location_table, 2 * N + 2);
	expect_eq(d->n_link_table, N / 2 + 1);
	for (size_t k = 0; k < p->n_samples; k++) {
		const OSample *s = p->samples[k];
		int i = (int)s->values[0] - 1;
		const OStack *st = stack_of(d, s);
		expect_eq(loc(d, st->location_indices[0])->address, 0x100000 + (uint64_t)i * 16);
		expect_eq(loc(d, st->location_indices[1])->address, 0x900000 + (uint64_t)i * 16);
		expect_eq(loc(d, st->location_indices[2])->address, 0x4fff);
		if (i % 2 == 0) {
			expect_eq(s->link_index, 0);
			continue;
		}
		const uint8_t *tid = d->link_table[s->link_index]->trace_id.data;
		expect_eq(tid[1] == (uint8_t)(i >> 8) && tid[2] == (uint8_t)i, 1);
	}
	free_request(r);
	lp_table_free(t);
}

static void test_partial_success(void **state)
{
	(void)state;
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesPartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse resp =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
	uint8_t buf[256];
	long long rejected;
	char msg[64];
	size_t len = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__pack(&resp, buf);
	expect_eq(lp_otlp_partial_success(buf, len, &rejected, msg, sizeof(msg)), 0);
	ps.rejected_profiles = 2;
	ps.error_message = "stack index out of range";
	resp.partial_success = &ps;
	len = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__pack(&resp, buf);
	expect_eq(lp_otlp_partial_success(buf, len, &rejected, msg, sizeof(msg)), 1);
	expect_eq(rejected, 2);
	assert_string_equal(msg, "stack index out of range");
	expect_eq(lp_otlp_partial_success((const uint8_t *)"\xff\xff", 2, &rejected, msg,
					  sizeof(msg)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dictionary_and_resource),
		cmocka_unit_test(test_profiles_samples_links),
		cmocka_unit_test(test_mappings),
		cmocka_unit_test(test_heap_profiles),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_many_stacks),
		cmocka_unit_test(test_partial_success),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests of the pprof encoder (exporter/pprof.c: lp_pprof_encode) and of
 * lp_gzip (exporter/sink_file.c). Profiles are decoded with the protobuf-c code
 * generated from proto/profile.proto and checked the way `go tool pprof` reads
 * them: string 0 is "", ids are nonzero and unique, every reference resolves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../exporter/internal.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__Mapping Mapping;

/* Comparisons printing both expressions and both values (in decimal). */
#define expect_cmp(a, op, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (!(a_ op b_)) \
		fail_msg("%s == %lld, expected it %s %s (%lld)", #a, a_, #op, #b, b_); \
} while (0)
#define expect_eq(a, b) expect_cmp(a, ==, b)

static const struct lp_labels no_labels;

static const struct lp_profile_desc cpu_desc = {
	.n_types = 2,
	.types = { { "samples", "count" }, { "cpu", "nanoseconds" } },
	.period_type = { "cpu", "nanoseconds" },
	.period = 10000000,
	.time_nanos = 1700000000123456789ll,
	.duration_nanos = 10000000000ll,
	.default_type = "cpu",
	.comments = { "libprof " LP_VERSION, "pid 4242" },
	.n_comments = 2,
};

static void add(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		const struct lp_labels *labels, int64_t v0, int64_t v1)
{
	const int64_t values[2] = { v0, v1 };
	expect_eq(lp_table_add(t, pcs, depth, truncated, labels, values, 2), 0);
}

/* The string at index i, failing when i is out of range. */
static const char *str(const Profile *p, int64_t i)
{
	if (i < 0 || (size_t)i >= p->n_string_table)
		fail_msg("string index %lld, expected 0..%zu", (long long)i, p->n_string_table - 1);
	return p->string_table[i];
}

static const Location *location(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	fail_msg("location id %llu does not exist", (unsigned long long)id);
	return NULL;
}

static const Function *function(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	fail_msg("function id %llu does not exist", (unsigned long long)id);
	return NULL;
}

static const Mapping *mapping(const Profile *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_mapping; i++)
		if (p->mapping[i]->id == id)
			return p->mapping[i];
	fail_msg("mapping id %llu does not exist", (unsigned long long)id);
	return NULL;
}

/* The sample whose second value is v1 (tests make it unique). */
static const Sample *sample_with(const Profile *p, int64_t v1)
{
	for (size_t i = 0; i < p->n_sample; i++)
		if (p->sample[i]->n_value > 1 && p->sample[i]->value[1] == v1)
			return p->sample[i];
	fail_msg("no sample has value[1] == %lld", (long long)v1);
	return NULL;
}

static void expect_unique_nonzero(const char *what, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == 0)
			fail_msg("%s %zu has id 0", what, i);
		for (size_t j = 0; j < i; j++)
			if (ids[i] == ids[j])
				fail_msg("%s %zu and %zu share id %llu", what, j, i,
					 (unsigned long long)ids[i]);
	}
}

/* What every profile must satisfy for pprof to read it. */
static void expect_well_formed(const Profile *p, int n_types)
{
	expect_cmp(p->n_string_table, >=, 1);
	assert_string_equal(p->string_table[0], "");
	for (size_t i = 1; i < p->n_string_table; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->string_table[i], p->string_table[j]) == 0)
				fail_msg("strings %zu and %zu are both \"%s\"", j, i,
					 p->string_table[i]);
	size_t n_ids = p->n_location + p->n_function + p->n_mapping + 1;
	uint64_t *ids = calloc(n_ids, sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < p->n_location; i++)
		ids[i] = p->location[i]->id;
	expect_unique_nonzero("location", ids, p->n_location);
	for (size_t i = 0; i < p->n_function; i++)
		ids[i] = p->function[i]->id;
	expect_unique_nonzero("function", ids, p->n_function);
	for (size_t i = 0; i < p->n_mapping; i++)
		ids[i] = p->mapping[i]->id;
	expect_unique_nonzero("mapping", ids, p->n_mapping);
	free(ids);
	for (size_t i = 0; i < p->n_location; i++) {
		const Location *l = p->location[i];
		if (l->mapping_id)
			mapping(p, l->mapping_id);
		for (size_t k = 0; k < l->n_line; k++)
			function(p, l->line[k]->function_id);
	}
	for (size_t i = 0; i < p->n_function; i++) {
		str(p, p->function[i]->name);
		str(p, p->function[i]->system_name);
		str(p, p->function[i]->filename);
	}
	for (size_t i = 0; i < p->n_sample; i++) {
		const Sample *s = p->sample[i];
		expect_eq(s->n_value, n_types);
		for (size_t k = 0; k < s->n_location_id; k++)
			location(p, s->location_id[k]);
		for (size_t k = 0; k < s->n_label; k++) {
			str(p, s->label[k]->key);
			str(p, s->label[k]->str);
		}
	}
}

/* Encodes and decodes; the caller frees with free_profile. */
static Profile *encode(const struct lp_table *t, const struct lp_maps *maps,
		       struct lp_symbolizer *sym)
{
	uint8_t *out = NULL;
	size_t len = 0;
	expect_eq(lp_pprof_encode(t, &cpu_desc, maps, sym, &out, &len), 0);
	assert_non_null(out);
	Profile *p = perftools__profiles__profile__unpack(NULL, len, out);
	free(out);
	if (!p)
		fail_msg("protobuf-c cannot decode the %zu bytes encoded", len);
	expect_well_formed(p, cpu_desc.n_types);
	return p;
}

static void free_profile(Profile *p)
{
	perftools__profiles__profile__free_unpacked(p, NULL);
}

/* The header fields come out as given, even for an empty table. */
static void test_header_fields(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(8);
	assert_non_null(t);
	Profile *p = encode(t, NULL, NULL);
	expect_eq(p->n_sample_type, 2);
	assert_string_equal(str(p, p->sample_type[0]->type), "samples");
	assert_string_equal(str(p, p->sample_type[0]->unit), "count");
	assert_string_equal(str(p, p->sample_type[1]->type), "cpu");
	assert_string_equal(str(p, p->sample_type[1]->unit), "nanoseconds");
	assert_non_null(p->period_type);
	assert_string_equal(str(p, p->period_type->type), "cpu");
	assert_string_equal(str(p, p->period_type->unit), "nanoseconds");
	expect_eq(p->period, cpu_desc.period);
	expect_eq(p->time_nanos, cpu_desc.time_nanos);
	expect_eq(p->duration_nanos, cpu_desc.duration_nanos);
	assert_string_equal(str(p, p->default_sample_type), "cpu");
	expect_eq(p->n_comment, 2);
	assert_string_equal(str(p, p->comment[0]), "libprof " LP_VERSION);
	assert_string_equal(str(p, p->comment[1]), "pid 4242");
	expect_eq(p->n_sample, 0);
	expect_eq(p->n_location, 0);
	expect_eq(p->n_mapping, 0);
	free_profile(p);
	lp_table_free(t);
}

/* Without maps or symbols: one sample per entry with the table's values, its
 * locations leaf first, the leaf at its pc and the callers at pc - 1, no
 * mapping, no lines, no labels. */
static void test_samples_and_locations(void **state)
{
	(void)state;
	static const uint64_t s1[] = { 0x401234, 0x402345, 0x403456 };
	static const uint64_t s2[] = { 0x405000, 0x406001 };
	static const uint64_t s3[] = { 0x407777 };
	static const uint64_t *const stacks[] = { s1, s2, s3 };
	static const int depths[] = { 3, 2, 1 };
	struct lp_table *t = lp_table_new(8);
	assert_non_null(t);
	for (int i = 0; i < 3; i++)
		add(t, stacks[i], depths[i], 0, &no_labels, 3 + i, 1000 * (i + 1));
	add(t, s1, 3, 0, &no_labels, 1, 1);      /* s1 sums to { 4, 1001 } */
	Profile *p = encode(t, NULL, NULL);
	expect_eq(p->n_sample, 3);
	expect_eq(p->n_location, 6);
	expect_eq(p->n_function, 0);
	for (int i = 0; i < 3; i++) {
		const Sample *s = sample_with(p, 1000 * (i + 1) + (i == 0));
		expect_eq(s->value[0], 3 + i + (i == 0));
		expect_eq(s->n_location_id, depths[i]);
		expect_eq(s->n_label, 0);
		for (int k = 0; k < depths[i]; k++) {
			const Location *l = location(p, s->location_id[k]);
			expect_eq(l->address, k == 0 ? stacks[i][k] : stacks[i][k] - 1);
			expect_eq(l->mapping_id, 0);
			expect_eq(l->n_line, 0);
		}
	}
	free_profile(p);
	lp_table_free(t);
}

/* Frames with the same address share one location, across samples and within
 * one: here 4 distinct addresses in 3 samples. A leaf pc equal to another
 * stack's return address - 1 is the same address, hence the same location. */
static void test_identical_addresses_share_location(void **state)
{
	(void)state;
	static const uint64_t a[] = { 0x1000, 0x2001, 0x3001 };
	static const uint64_t b[] = { 0x1500, 0x2001, 0x3001 };
	static const uint64_t c[] = { 0x2000, 0x2001, 0x2001 };   /* recursion */
	struct lp_table *t = lp_table_new(8);
	assert_non_null(t);
	add(t, a, 3, 0, &no_labels, 1, 1);
	add(t, b, 3, 0, &no_labels, 1, 2);
	add(t, c, 3, 0, &no_labels, 1, 3);
	Profile *p = encode(t, NULL, NULL);
	expect_eq(p->n_location, 4);        /* 0x1000 0x1500 0x2000 0x3000 */
	const Sample *sa = sample_with(p, 1), *sb = sample_with(p, 2), *sc = sample_with(p, 3);
	expect_eq(sa->location_id[1], sb->location_id[1]);
	expect_eq(sa->location_id[2], sb->location_id[2]);
	expect_eq(sc->location_id[0], sc->location_id[1]);
	expect_eq(sc->location_id[1], sc->location_id[2]);
	expect_eq(sc->location_id[0], sa->location_id[1]);
	expect_cmp(sa->location_id[0], !=, sb->location_id[0]);
	free_profile(p);
	lp_table_free(t);
}

/* A truncated stack ends in one extra location whose only function is named
 * "[truncated]"; truncated stacks share it, complete stacks do not get it. */
static void test_truncated_stack_ends_in_marker(void **state)
{
	(void)state;
	static const uint64_t a[] = { 0x1000, 0x2001 };
	static const uint64_t b[] = { 0x1500, 0x2501 };
	struct lp_table *t = lp_table_new(8);
	assert_non_null(t);
	add(t, a, 2, 1, &no_labels, 1, 1);
	add(t, b, 2, 1, &no_labels, 1, 2);
	add(t, a, 2, 0, &no_labels, 1, 3);
	Profile *p = encode(t, NULL, NULL);
	const Sample *sa = sample_with(p, 1), *sb = sample_with(p, 2), *sc = sample_with(p, 3);
	expect_eq(sa->n_location_id, 3);
	expect_eq(sb->n_location_id, 3);
	expect_eq(sc->n_location_id, 2);
	expect_eq(sa->location_id[2], sb->location_id[2]);
	const Location *marker = location(p, sa->location_id[2]);
	expect_eq(marker->n_line, 1);
	const Function *f = function(p, marker->line[0]->function_id);
	assert_string_equal(str(p, f->name), "[truncated]");
	expect_eq(p->n_function, 1);
	for (size_t k = 0; k < sc->n_location_id; k++)
		expect_cmp(sc->location_id[k], !=, marker->id);
	expect_eq(location(p, sa->location_id[0])->address, 0x1000);
	expect_eq(location(p, sa->location_id[1])->address, 0x2000);
	free_profile(p);
	lp_table_free(t);
}

static const char *label(const Profile *p, const Sample *s, const char *key)
{
	for (size_t k = 0; k < s->n_label; k++)
		if (strcmp(str(p, s->label[k]->key), key) == 0)
			return str(p, s->label[k]->str);
	return NULL;
}

/* A nonzero trace_id gives string labels trace_id (32 lowercase hex) and
 * span_id (16 lowercase hex); no trace_id, no labels, even with a span id. */
static void test_trace_labels(void **state)
{
	(void)state;
	static const uint64_t pcs[] = { 0x1000, 0x2001 };
	struct lp_labels traced = {
		.trace_id = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
			      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 },
		.span_id = { 0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 },
	};
	struct lp_labels last_byte = { .trace_id = { [15] = 1 } };
	struct lp_labels span_only = { .span_id = { 1, 2, 3 } };
	struct lp_table *t = lp_table_new(8);
	assert_non_null(t);
	add(t, pcs, 2, 0, &traced, 1, 1);
	add(t, pcs, 2, 0, &no_labels, 1, 2);
	add(t, pcs, 2, 0, &last_byte, 1, 3);
	add(t, pcs, 2, 0, &span_only, 1, 4);
	Profile *p = encode(t, NULL, NULL);
	const Sample *s = sample_with(p, 1);
	expect_eq(s->n_label, 2);
	assert_string_equal(label(p, s, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(label(p, s, "span_id"), "00f067aa0ba902b7");
	for (size_t k = 0; k < s->n_label; k++)
		expect_eq(s->label[k]->num, 0);
	expect_eq(sample_with(p, 2)->n_label, 0);
	s = sample_with(p, 3);
	assert_string_equal(label(p, s, "trace_id"), "00000000000000000000000000000001");
	assert_string_equal(label(p, s, "span_id"), "0000000000000000");
	expect_eq(sample_with(p, 4)->n_label, 0);
	free_profile(p);
	lp_table_free(t);
}

/* Two mappings (the main program's first): each comes out with its range,
 * offset, file name and build id; an address inside one gets its mapping_id,
 * the limit and addresses outside get none. */
static void test_mappings(void **state)
{
	(void)state;
	struct lp_maps maps = { .n = 2 };
	maps.v = calloc(2, sizeof(*maps.v));
	assert_non_null(maps.v);
	maps.v[0] = (struct lp_mapping){ .start = 0x400000, .limit = 0x500000, .offset = 0,
					 .path = strdup("/usr/bin/app"),
					 .build_id = strdup("0123456789abcdef0123") };
	maps.v[1] = (struct lp_mapping){ .start = 0x7f0000001000, .limit = 0x7f0000100000,
					 .offset = 0x2000, .path = strdup("/lib/libc.so.6"),
					 .build_id = strdup("") };
	assert_true(maps.v[0].path && maps.v[0].build_id && maps.v[1].path && maps.v[1].build_id);
	/* The leaf at app's first byte; callers whose address (pc - 1) is libc's
	 * first byte, inside app, app's limit (outside) and far outside. */
	static const uint64_t pcs[] = { 0x400000, 0x7f0000001001, 0x4fffff, 0x500001, 0x10 };
	struct lp_table *t = lp_table_new(8);
	assert_non_null(t);
	add(t, pcs, 5, 0, &no_labels, 1, 1);
	Profile *p = encode(t, &maps, NULL);
	expect_eq(p->n_mapping, 2);
	for (size_t i = 0; i < 2; i++) {
		const Mapping *m = p->mapping[i];
		expect_eq(m->memory_start, maps.v[i].start);
		expect_eq(m->memory_limit, maps.v[i].limit);
		expect_eq(m->file_offset, maps.v[i].offset);
		assert_string_equal(str(p, m->filename), maps.v[i].path);
		assert_string_equal(str(p, m->build_id), maps.v[i].build_id);
	}
	expect_eq(p->mapping[0]->memory_start, 0x400000);     /* main program first */
	const Sample *s = sample_with(p, 1);
	expect_eq(s->n_location_id, 5);
	static const int want_map[] = { 0, 1, 0, -1, -1 };  /* index in maps.v, -1 none */
	for (int k = 0; k < 5; k++) {
		const Location *l = location(p, s->location_id[k]);
		uint64_t addr = k ? pcs[k] - 1 : pcs[k];
		expect_eq(l->address, addr);
		if (want_map[k] < 0) {
			expect_eq(l->mapping_id, 0);
			continue;
		}
		const Mapping *m = mapping(p, l->mapping_id);
		expect_eq(m->memory_start, maps.v[want_map[k]].start);
		expect_cmp(addr, >=, m->memory_start);
		expect_cmp(addr, <, m->memory_limit);
	}
	free_profile(p);
	lp_table_free(t);
	lp_maps_free(&maps);
	expect_eq(maps.n, 0);
}

/* A larger table: 3000 stacks over 2000 distinct addresses encode into a
 * well-formed profile whose samples keep their values and frames. */
static void test_many_stacks(void **state)
{
	(void)state;
	struct lp_table *t = lp_table_new(1u << 16);
	assert_non_null(t);
	uint64_t pcs[16];
	for (int i = 0; i < 3000; i++) {
		int depth = 1 + i % 16;
		for (int k = 0; k < depth; k++)
			pcs[k] = 0x400000 + (uint64_t)((i * 7 + k * 13) % 2000) * 16 + 1;
		struct lp_labels lab = no_labels;
		lab.trace_id[0] = (uint8_t)(i % 3);
		add(t, pcs, depth, i % 11 == 0, &lab, i, 100000 + i);
	}
	Profile *p = encode(t, NULL, NULL);
	expect_eq(p->n_sample, 3000);
	for (int i = 0; i < 3000; i += 7) {
		const Sample *s = sample_with(p, 100000 + i);
		int depth = 1 + i % 16;
		expect_eq(s->value[0], i);
		expect_eq(s->n_location_id, depth + (i % 11 == 0));
		expect_eq(s->n_label, i % 3 ? 2 : 0);
		for (int k = 0; k < depth; k++) {
			uint64_t pc = 0x400000 + (uint64_t)((i * 7 + k * 13) % 2000) * 16 + 1;
			expect_eq(location(p, s->location_id[k])->address, k ? pc - 1 : pc);
		}
	}
	free_profile(p);
	lp_table_free(t);
}

static void gunzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	expect_eq(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	expect_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	expect_eq(z.avail_in, 0);
	*out_len = z.total_out;
	inflateEnd(&z);
}

/* lp_gzip writes a gzip stream (magic 1f 8b) that zlib inflates back to the
 * input, for empty, small and large (incompressible) inputs. */
static void test_gzip_round_trip(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 100, 300000 };
	size_t max = sizes[3];
	uint8_t *in = malloc(max), *back = malloc(max + 1);
	assert_true(in && back);
	uint32_t x = 12345;
	for (size_t i = 0; i < max; i++) {
		x = x * 1103515245u + 12345u;
		in[i] = i < max / 2 ? (uint8_t)(x >> 24) : (uint8_t)"profile"[i % 7];
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint8_t *gz = NULL;
		size_t gz_len = 0, back_len = 0;
		expect_eq(lp_gzip(in, sizes[k], &gz, &gz_len), 0);
		assert_non_null(gz);
		expect_cmp(gz_len, >=, 18);     /* header 10 + trailer 8 */
		expect_eq(gz[0], 0x1f);
		expect_eq(gz[1], 0x8b);
		gunzip(gz, gz_len, back, max + 1, &back_len);
		expect_eq(back_len, sizes[k]);
		if (sizes[k])
			assert_memory_equal(back, in, sizes[k]);
		free(gz);
	}
	free(in);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_samples_and_locations),
		cmocka_unit_test(test_identical_addresses_share_location),
		cmocka_unit_test(test_truncated_stack_ends_in_marker),
		cmocka_unit_test(test_trace_labels),
		cmocka_unit_test(test_mappings),
		cmocka_unit_test(test_many_stacks),
		cmocka_unit_test(test_gzip_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * libFuzzer target for wrappers/traceparent.c (`make fuzz`). The input is the
 * byte stream a program reads from one connection. It is fed to four
 * scanners: byte by byte, in one feed, cut into feeds at points drawn from a
 * hash of the input (so the seeds in tests/fuzz/corpus/ are plain request
 * streams), and cut likewise by a caller that also resynchronises and changes
 * head_max between feeds. The hash also picks a small head_max for one input in
 * four. Checked:
 * - every result is LP_HTTP_NONE, _CONTEXT or _NO_CONTEXT; *ctx is written only
 *   with a result, zeroed with _NO_CONTEXT; an ignored scanner stays ignored
 *   and reports nothing;
 * - a reported context has non-zero ids and comes from the input: its
 *   "<trace-id>-<parent-id>" in lowercase hex is there;
 * - until the scanner first loses track (LP_HS_WAIT, where by design only the
 *   start of a feed counts), where the stream is cut changes nothing: each feed
 *   reports the last outcome the byte-by-byte scanner saw in its bytes;
 * - lp_traceparent_parse agrees with a plain reference reading of section 4 of
 *   docs/wire-formats.md on every line of the input, on the value after each
 *   line's first ':', and on the whole input; it never writes its output on
 *   failure.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../wrappers/traceparent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { \
	if (!(x)) { \
		fprintf(stderr, "fuzz_traceparent: check failed: %s (line %d)\n", #x, __LINE__); \
		abort(); \
	} \
} while (0)

/* ---- the parser against a reference ------------------------------------------- */

static int ref_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Section 4, read literally, on characters rather than bytes. */
static int ref_valid(const uint8_t *v, size_t len)
{
	while (len && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len < 55)
		return 0;
	for (size_t i = 0; i < 55; i++) {
		int dash = i == 2 || i == 35 || i == 52;
		if (dash ? v[i] != '-' : !ref_hex(v[i]))
			return 0;
	}
	if (v[0] == 'f' && v[1] == 'f')
		return 0;
	if (v[0] == '0' && v[1] == '0' && len != 55)
		return 0;
	if (len > 55 && v[55] != '-')
		return 0;
	int trace_zero = 1, span_zero = 1;
	for (size_t i = 3; i < 35; i++)
		trace_zero &= v[i] == '0';
	for (size_t i = 36; i < 52; i++)
		span_zero &= v[i] == '0';
	return !trace_zero && !span_zero;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
}

/* "<trace-id>-<parent-id>" of l, 49 characters, not NUL-terminated. */
static void ids_text(const struct lp_labels *l, char out[49])
{
	to_hex(l->trace_id, 16, out);
	out[32] = '-';
	to_hex(l->span_id, 8, out + 33);
}

static void check_parse(const uint8_t *v, size_t len)
{
	struct lp_labels l;
	memset(&l, 0x5a, sizeof(l));
	/* a copy of exactly len bytes: any read past it is an overflow */
	uint8_t *copy = malloc(len ? len : 1);
	CHECK(copy);
	memcpy(copy, v, len);
	int rc = lp_traceparent_parse((const char *)copy, len, &l);
	CHECK(rc == 0 || rc == -EINVAL);
	CHECK((rc == 0) == ref_valid(v, len));
	if (rc == 0) {
		char ids[49];
		ids_text(&l, ids);
		CHECK(memmem(v, len, ids, sizeof(ids)) != NULL);
	} else {
		for (size_t i = 0; i < sizeof(l); i++)
			CHECK(((const uint8_t *)&l)[i] == 0x5a);
	}
	free(copy);
}

/* ---- the scanner --------------------------------------------------------------- */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3u;
	return h;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* One feed from a heap copy of exactly n bytes; checks what any feed must hold. */
static int feed(struct lp_http_scan *s, const uint8_t *stream, size_t size, size_t a, size_t b,
		struct lp_labels *ctx)
{
	int was_ignored = lp_http_scan_ignored(s);
	uint8_t *copy = malloc(b - a ? b - a : 1);
	CHECK(copy);
	memcpy(copy, stream + a, b - a);
	memset(ctx, 0xa5, sizeof(*ctx));
	int r = lp_http_scan_feed(s, copy, b - a, ctx);
	free(copy);
	CHECK(r == LP_HTTP_NONE || r == LP_HTTP_CONTEXT || r == LP_HTTP_NO_CONTEXT);
	CHECK(s->state <= LP_HS_IGNORED);
	CHECK((s->state == LP_HS_IGNORED) == lp_http_scan_ignored(s));
	CHECK(s->line_len <= LP_HTTP_LINE_MAX);
	if (was_ignored)
		CHECK(r == LP_HTTP_NONE && lp_http_scan_ignored(s));
	if (r == LP_HTTP_NONE) {
		for (size_t i = 0; i < sizeof(*ctx); i++)
			CHECK(((const uint8_t *)ctx)[i] == 0xa5);
	} else if (r == LP_HTTP_NO_CONTEXT) {
		static const struct lp_labels zero;
		CHECK(memcmp(ctx, &zero, sizeof(zero)) == 0);
	} else {
		char ids[49];
		ids_text(ctx, ids);
		CHECK(memmem(stream, size, ids, sizeof(ids)) != NULL);
		static const uint8_t zero[16];
		CHECK(memcmp(ctx->trace_id, zero, 16) != 0 && memcmp(ctx->span_id, zero, 8) != 0);
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = fnv1a(data, size);
	uint32_t head_max = h % 4 == 0 ? (uint32_t)(h >> 8) % 300 : LP_HTTP_HEAD_MAX;
	h |= 1;                     /* a xorshift state must not be 0 */

	/* byte by byte: the outcome at each byte, and whether it ever lost track */
	int *res = calloc(size ? size : 1, sizeof(*res));
	struct lp_labels *got = calloc(size ? size : 1, sizeof(*got));
	CHECK(res && got);
	struct lp_http_scan a, b, c;
	lp_http_scan_init(&a);
	a.head_max = head_max;
	int lost = 0;
	for (size_t i = 0; i < size; i++) {
		res[i] = feed(&a, data, size, i, i + 1, &got[i]);
		lost |= a.state == LP_HS_WAIT;
	}

	/* one feed */
	struct lp_labels ctx;
	lp_http_scan_init(&b);
	b.head_max = head_max;
	int r = feed(&b, data, size, 0, size, &ctx);
	if (!lost) {
		int want = LP_HTTP_NONE;
		size_t at = 0;
		for (size_t i = 0; i < size; i++)
			if (res[i] != LP_HTTP_NONE) {
				want = res[i];
				at = i;
			}
		CHECK(r == want);
		if (want == LP_HTTP_CONTEXT)
			CHECK(memcmp(&ctx, &got[at], sizeof(ctx)) == 0);
		CHECK(b.state == a.state && b.ignored == a.ignored);
	}

	/* pieces cut at points drawn from the input's hash */
	lp_http_scan_init(&c);
	c.head_max = head_max;
	uint64_t x = h;
	size_t max_piece = 1 + (size_t)(next_rand(&x) % 96);
	for (size_t from = 0; from < size;) {
		size_t to = from + 1 + (size_t)(next_rand(&x) % max_piece);
		if (to > size)
			to = size;
		r = feed(&c, data, size, from, to, &ctx);
		if (!lost) {
			int want = LP_HTTP_NONE;
			size_t at = 0;
			for (size_t i = from; i < to; i++)
				if (res[i] != LP_HTTP_NONE) {
					want = res[i];
					at = i;
				}
			CHECK(r == want);
			if (want == LP_HTTP_CONTEXT)
				CHECK(memcmp(&ctx, &got[at], sizeof(ctx)) == 0);
		}
		from = to;
	}
	if (!lost)
		CHECK(c.state == a.state && c.ignored == a.ignored);
	free(res);
	free(got);

	/* a caller that resynchronises and changes head_max between feeds: only
	 * the checks every feed must pass */
	struct lp_http_scan d;
	lp_http_scan_init(&d);
	for (size_t from = 0; from < size;) {
		size_t to = from + 1 + (size_t)(next_rand(&x) % max_piece);
		if (to > size)
			to = size;
		uint64_t what = next_rand(&x);
		if (what % 16 == 0) {
			int was_ignored = lp_http_scan_ignored(&d);
			lp_http_scan_resync(&d);
			CHECK(lp_http_scan_ignored(&d) == was_ignored);
			CHECK(was_ignored || d.state == LP_HS_WAIT);
		}
		if (what % 16 == 1)
			d.head_max = (uint32_t)(what >> 8) % 512;
		if (what % 16 == 2)
			d.head_max = LP_HTTP_HEAD_MAX;
		feed(&d, data, size, from, to, &ctx);
		from = to;
	}

	/* the parser: the whole input, each line, and each line's value */
	check_parse(data, size);
	for (size_t from = 0; from < size;) {
		const uint8_t *nl = memchr(data + from, '\n', size - from);
		size_t to = nl ? (size_t)(nl - data) : size;
		check_parse(data + from, to - from);
		const uint8_t *colon = memchr(data + from, ':', to - from);
		if (colon)
			check_parse(colon + 1, to - (size_t)(colon + 1 - data));
		if (to > from && data[to - 1] == '\r') {
			check_parse(data + from, to - 1 - from);
			if (colon)
				check_parse(colon + 1, to - 1 - (size_t)(colon + 1 - data));
		}
		from = to + 1;
	}
	return 0;
}

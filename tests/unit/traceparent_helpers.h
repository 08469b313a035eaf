/*
 * What tests/unit/test_traceparent.c and test_http_scan.c share: includes, the
 * failure helper, example trace contexts and request heads, feeding helpers,
 * and streams checked at every split point.
 */
#ifndef LP_TEST_TRACEPARENT_HELPERS_H
#define LP_TEST_TRACEPARENT_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../wrappers/traceparent.h"

/* The case a table-driven test is on, named in its failure messages. */
static const char *current = "";

/* Equality printing the case, both expressions and both values (in decimal). */
#define expect_eq(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) \
		fail_msg("%s: %s == %lld, expected %s == %lld", current, #a, a_, #b, b_); \
} while (0)

#define T1 "4bf92f3577b34da6a3ce929d0e0e4736"
#define S1 "00f067aa0ba902b7"
#define TP1 "00-" T1 "-" S1 "-01"
#define T2 "0af7651916cd43dd8448eb211c80319c"
#define S2 "b7ad6b7169203331"
#define TP2 "00-" T2 "-" S2 "-01"
#define T3 "12345678901234567890123456789012"
#define S3 "1234567890123456"
#define TP3 "00-" T3 "-" S3 "-00"
#define ZERO_T "00000000000000000000000000000000"
#define ZERO_S "0000000000000000"

/* A request head with the given header lines (each ending in CRLF). */
#define HEAD(lines) "GET /api/items?id=7 HTTP/1.1\r\nHost: example.com\r\n" \
		    "Accept: */*\r\n" lines "\r\n"

static __attribute__((unused)) void to_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static __attribute__((unused)) void expect_labels(const struct lp_labels *l, const char *trace, const char *span)
{
	char t[33], s[17];
	to_hex(l->trace_id, 16, t);
	to_hex(l->span_id, 8, s);
	if (strcmp(t, trace) != 0 || strcmp(s, span) != 0)
		fail_msg("%s: context %s/%s, expected %s/%s", current, t, s, trace, span);
}

/* Feeds a heap copy of exactly n bytes, so that a sanitizer sees any overread. */
static __attribute__((unused)) int feed(struct lp_http_scan *s, const void *data, size_t n, struct lp_labels *ctx)
{
	void *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, data, n);
	int r = lp_http_scan_feed(s, copy, n, ctx);
	free(copy);
	if (r < LP_HTTP_NONE || r > LP_HTTP_NO_CONTEXT)
		fail_msg("%s: feed returned %d", current, r);
	return r;
}

static __attribute__((unused)) int feed_str(struct lp_http_scan *s, const char *str, struct lp_labels *ctx)
{
	return feed(s, str, strlen(str), ctx);
}

/* One request stream in one feed on a new connection: its result and context. */
static __attribute__((unused)) int one_shot(const char *stream, size_t n, struct lp_labels *ctx)
{
	struct lp_http_scan s;
	lp_http_scan_init(&s);
	memset(ctx, 0xaa, sizeof(*ctx));
	return feed(&s, stream, n, ctx);
}

/* ---- the parser alone ------------------------------------------------------------- */

static __attribute__((unused)) int parse_str(const char *v, struct lp_labels *out)
{
	return lp_traceparent_parse(v, strlen(v), out);
}

/* Valid values decode to the right bytes; OWS around them is allowed. */

/* ---- streams fed in pieces ----------------------------------------------------------- */

/* One piece of a connection's stream: a head (result != NONE: what it reports)
 * or other bytes (a body). */
struct part {
	const char *text;
	int result;
	const char *trace, *span;
};

#define MAX_PARTS 8

struct stream {
	char bytes[4096];
	size_t len;
	size_t end[MAX_PARTS];      /* offset just past each part */
	const struct part *parts;
	int n_parts;
};

static __attribute__((unused)) void build(struct stream *st, const struct part *parts, int n)
{
	assert_true(n <= MAX_PARTS);
	st->len = 0;
	st->parts = parts;
	st->n_parts = n;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(parts[i].text);
		assert_true(st->len + l <= sizeof(st->bytes));
		memcpy(st->bytes + st->len, parts[i].text, l);
		st->len += l;
		st->end[i] = st->len;
	}
}

/* Feeds the stream cut at cuts[0..n_cuts) (ascending) on a new connection: each
 * feed must report the last head that ends inside it, or nothing. */
static __attribute__((unused)) void check_cuts(const struct stream *st, const size_t *cuts, int n_cuts)
{
	struct lp_http_scan s;
	lp_http_scan_init(&s);
	size_t a = 0;
	for (int k = 0; k <= n_cuts; k++) {
		size_t b = k < n_cuts ? cuts[k] : st->len;
		const struct part *want = NULL;
		for (int i = 0; i < st->n_parts; i++)
			if (st->parts[i].result != LP_HTTP_NONE && st->end[i] > a && st->end[i] <= b)
				want = &st->parts[i];
		struct lp_labels ctx;
		memset(&ctx, 0xaa, sizeof(ctx));
		int r = feed(&s, st->bytes + a, b - a, &ctx);
		if (r != (want ? want->result : LP_HTTP_NONE))
			fail_msg("%s: feed [%zu, %zu) of %d cuts returned %d, expected %d", current,
				 a, b, n_cuts, r, want ? want->result : LP_HTTP_NONE);
		if (want && want->result == LP_HTTP_CONTEXT)
			expect_labels(&ctx, want->trace, want->span);
		else if (want)
			expect_labels(&ctx, ZERO_T, ZERO_S);
		else
			expect_eq(ctx.trace_id[0], 0xaa);       /* untouched */
		a = b;
	}
	expect_eq(lp_http_scan_ignored(&s), 0);
}

/* Every cut into one, two (every point) and three (every pair of points) feeds. */
static __attribute__((unused)) void check_all_cuts(const struct stream *st, int three)
{
	check_cuts(st, NULL, 0);
	for (size_t i = 0; i <= st->len; i++) {
		size_t cuts[2] = { i, 0 };
		check_cuts(st, cuts, 1);
		for (size_t j = i; three && j <= st->len; j++) {
			cuts[1] = j;
			check_cuts(st, cuts, 2);
		}
	}
}

/* A keep-alive connection: a POST whose Content-Length body holds a whole
 * request head with another traceparent (never read), then a GET with its own
 * context, then one without: cut anywhere into two or three feeds, each head's
 * outcome comes out of the feed where its empty line is. */

#endif

/*
 * Unit tests of the traceparent parser and the HTTP/1.x request-head scanner
 * (wrappers/traceparent.c): every vector of tests/data/traceparent-vectors.tsv
 * inside a real request head, direct parser cases, heads split at every point
 * into two and three feeds, duplicate headers, keep-alive bodies (by
 * Content-Length and chunked) whose text must not be read, pipelining, HTTP/2,
 * TLS and other protocols, the head-size bound, lost framing and resync, and
 * pseudo-random garbage.
 */
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

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void expect_labels(const struct lp_labels *l, const char *trace, const char *span)
{
	char t[33], s[17];
	to_hex(l->trace_id, 16, t);
	to_hex(l->span_id, 8, s);
	if (strcmp(t, trace) != 0 || strcmp(s, span) != 0)
		fail_msg("%s: context %s/%s, expected %s/%s", current, t, s, trace, span);
}

/* Feeds a heap copy of exactly n bytes, so that a sanitizer sees any overread. */
static int feed(struct lp_http_scan *s, const void *data, size_t n, struct lp_labels *ctx)
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

static int feed_str(struct lp_http_scan *s, const char *str, struct lp_labels *ctx)
{
	return feed(s, str, strlen(str), ctx);
}

/* One request stream in one feed on a new connection: its result and context. */
static int one_shot(const char *stream, size_t n, struct lp_labels *ctx)
{
	struct lp_http_scan s;
	lp_http_scan_init(&s);
	memset(ctx, 0xaa, sizeof(*ctx));
	return feed(&s, stream, n, ctx);
}

/* ---- the parser alone ------------------------------------------------------------- */

static int parse_str(const char *v, struct lp_labels *out)
{
	return lp_traceparent_parse(v, strlen(v), out);
}

/* Valid values decode to the right bytes; OWS around them is allowed. */
static void test_parse_valid(void **state)
{
	(void)state;
	static const struct { const char *value, *trace, *span; } cases[] = {
		{ TP1, T1, S1 },
		{ " \t" TP1 "\t ", T1, S1 },
		{ "00-" T1 "-" S1 "-ff", T1, S1 },
		{ "01-" T1 "-" S1 "-01", T1, S1 },
		{ "fe-" T1 "-" S1 "-01-", T1, S1 },
		{ "cc-" T1 "-" S1 "-01-anything goes here", T1, S1 },
		{ "00-00000000000000000000000000000001-0000000000000001-01",
		  "00000000000000000000000000000001", "0000000000000001" },
		{ "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
		  "ffffffffffffffffffffffffffffffff", "ffffffffffffffff" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_labels l;
		current = cases[i].value;
		expect_eq(parse_str(cases[i].value, &l), 0);
		expect_labels(&l, cases[i].trace, cases[i].span);
	}
}

/* Invalid values return -EINVAL and leave the output untouched. */
static void test_parse_invalid(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"", " ", "00", TP1 " x", "x " TP1,
		"ff-" T1 "-" S1 "-01",
		"00-" T1 "-" S1 "-01-",                 /* version 00 ends after the flags */
		"00-" T1 "-" S1 "-01 -",
		"cc-" T1 "-" S1 "-01x",
		"cc-" T1 "-" S1 "-01 -",
		"00-" ZERO_T "-" S1 "-01",
		"00-" T1 "-" ZERO_S "-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-" S1 "-01",
		"0A-" T1 "-" S1 "-01",
		"00-" T1 "-" S1 "-0A",
		"00_" T1 "-" S1 "-01",
		"00-" T1 "_" S1 "-01",
		"00-" T1 "-" S1 "_01",
		"00-" T1 "-" S1 "-0",
		"00-" T1 "-" S1 "-0\n",
		"00-" T1 "-" S1 "-01\r",                /* CR is not OWS */
		"\n" TP1,
		"g0-" T1 "-" S1 "-01",
		"00-" T1 "-" S1 "-0g",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_labels l, before;
		current = cases[i];
		memset(&l, 0x5a, sizeof(l));
		before = l;
		expect_eq(parse_str(cases[i], &l), -EINVAL);
		if (memcmp(&l, &before, sizeof(l)) != 0)
			fail_msg("%s: output written on failure", current);
	}
	struct lp_labels l;
	current = "NULL, 0";
	expect_eq(lp_traceparent_parse(NULL, 0, &l), -EINVAL);
	/* Not NUL-terminated: the length alone bounds the read. */
	char buf[55];
	memcpy(buf, TP1, sizeof(buf));
	current = "exact length, no NUL";
	expect_eq(lp_traceparent_parse(buf, sizeof(buf), &l), 0);
	expect_labels(&l, T1, S1);
	expect_eq(lp_traceparent_parse(buf, sizeof(buf) - 1, &l), -EINVAL);
}

/* ---- the vectors file ------------------------------------------------------------------ */

/* tests/data/traceparent-vectors.tsv from the repository root (where make runs
 * tests) or relative to the test binary (build/tests/). */
static FILE *open_vectors(void)
{
	static const char rel[] = "tests/data/traceparent-vectors.tsv";
	FILE *f = fopen(rel, "r");
	if (f)
		return f;
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/../../%s", dirname(exe), rel);
	return fopen(path, "r");
}

/* The parent-id that goes with a valid vector's trace-id: the 16 characters
 * after "<trace-id>-" in the value. */
static void vector_span(const char *value, const char *trace, char span[17])
{
	const char *t = strstr(value, trace);
	assert_non_null(t);
	memcpy(span, t + 33, 16);
	span[16] = '\0';
}

/* Every vector, as the header line "name: value" inside a full request head,
 * fed at once and byte by byte, gives the listed trace-id (with its parent-id)
 * or no context; traceparent-named values also go through the parser alone. */
static void test_vectors_file(void **state)
{
	(void)state;
	FILE *f = open_vectors();
	if (!f)
		fail_msg("cannot open tests/data/traceparent-vectors.tsv");
	char line[1024];
	int n_vectors = 0, n_valid = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *name = strchr(line, '\t');
		char *value = name ? strchr(name + 1, '\t') : NULL;
		if (!value)
			fail_msg("malformed vector line: %s", line);
		*name++ = '\0';
		*value++ = '\0';
		const char *expected = line;
		int valid = strcmp(expected, "invalid") != 0;
		char span[17] = ZERO_S, req[1400];
		if (valid)
			vector_span(value, expected, span);
		snprintf(req, sizeof(req), HEAD("%s: %s\r\nX-After: 1\r\n"), name, value);
		current = req;

		struct lp_labels ctx;
		expect_eq(one_shot(req, strlen(req), &ctx),
			  valid ? LP_HTTP_CONTEXT : LP_HTTP_NO_CONTEXT);
		expect_labels(&ctx, valid ? expected : ZERO_T, span);

		struct lp_http_scan s;
		lp_http_scan_init(&s);
		int last = LP_HTTP_NONE;
		for (size_t i = 0; req[i]; i++) {
			int r = feed(&s, req + i, 1, &ctx);
			if (r != LP_HTTP_NONE) {
				expect_eq(last, LP_HTTP_NONE);
				expect_eq(req[i + 1], '\0');
				last = r;
			}
		}
		expect_eq(last, valid ? LP_HTTP_CONTEXT : LP_HTTP_NO_CONTEXT);
		expect_labels(&ctx, valid ? expected : ZERO_T, span);

		if (strcasecmp(name, "traceparent") == 0) {
			struct lp_labels l;
			memset(&l, 0, sizeof(l));
			expect_eq(parse_str(value, &l), valid ? 0 : -EINVAL);
			if (valid)
				expect_labels(&l, expected, span);
		}
		n_vectors++;
		n_valid += valid;
	}
	fclose(f);
	current = "vectors file";
	if (n_vectors < 40 || n_valid < 5)
		fail_msg("only %d vectors (%d valid) read", n_vectors, n_valid);
}

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

static void build(struct stream *st, const struct part *parts, int n)
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
static void check_cuts(const struct stream *st, const size_t *cuts, int n_cuts)
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
static void check_all_cuts(const struct stream *st, int three)
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
static void test_keepalive_every_split(void **state)
{
	(void)state;
	static const char body[] = "x\r\n\r\nGET / HTTP/1.1\r\ntraceparent: " TP2 "\r\n\r\n";
	char post[256];
	snprintf(post, sizeof(post), "POST /submit HTTP/1.1\r\nHost: a\r\n"
		 "content-length: %zu\r\ntraceparent: " TP1 "\r\n\r\n", strlen(body));
	const struct part parts[] = {
		{ post, LP_HTTP_CONTEXT, T1, S1 },
		{ body, LP_HTTP_NONE, NULL, NULL },
		{ "GET /next HTTP/1.1\r\nHost: a\r\nTraceParent:\t" TP3 " \r\n\r\n",
		  LP_HTTP_CONTEXT, T3, S3 },
		{ "GET /plain HTTP/1.1\r\nHost: a\r\n\r\n", LP_HTTP_NO_CONTEXT, NULL, NULL },
	};
	struct stream st;
	build(&st, parts, 4);
	current = "keep-alive stream";
	check_all_cuts(&st, 1);
}

/* A chunked POST (extensions, a chunk whose data looks like a request with a
 * traceparent, upper-case hex sizes, trailers) and a GET after it: its framing is
 * followed, so the GET is found and nothing inside the body is. */
static void test_chunked_every_split(void **state)
{
	(void)state;
	static const char fake[] = "\r\n\r\nGET / HTTP/1.1\r\ntraceparent: " TP2 "\r\n\r\n";
	char body[512];
	snprintf(body, sizeof(body), "5;name=\"v\"\r\nhello\r\n%zX\r\n%s\r\n"
		 "0\r\nX-Trailer: traceparent: " TP2 "\r\n\r\n", strlen(fake), fake);
	const struct part parts[] = {
		{ "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n"
		  "traceparent: " TP1 "\r\n\r\n", LP_HTTP_CONTEXT, T1, S1 },
		{ body, LP_HTTP_NONE, NULL, NULL },
		{ "GET /next HTTP/1.1\r\ntraceparent: " TP3 "\r\n\r\n", LP_HTTP_CONTEXT, T3, S3 },
	};
	struct stream st;
	build(&st, parts, 3);
	current = "chunked stream";
	check_all_cuts(&st, 1);

	/* Bare LF line ends and a chunked body without trailers. */
	const struct part lf[] = {
		{ "PUT /x HTTP/1.0\ntransfer-encoding: chunked\n\n", LP_HTTP_NO_CONTEXT, NULL, NULL },
		{ "3\nabc\n0\n\n", LP_HTTP_NONE, NULL, NULL },
		{ "GET /y HTTP/1.0\ntraceparent: " TP1 "\n\n", LP_HTTP_CONTEXT, T1, S1 },
	};
	build(&st, lf, 3);
	current = "chunked, bare LF";
	check_all_cuts(&st, 1);
}

/* A chunk-size line (zeros and extensions included) is bounded at 1024 bytes
 * with its CRLF: a longer one is broken framing, and the scanner waits. */
static void test_chunk_line_bound(void **state)
{
	(void)state;
	static const char post[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	static char body[2048];
	for (int kind = 0; kind < 5; kind++) {
		/* a line of exactly 1024 bytes, or 1025; kind 4: 2000 digits */
		size_t fill = kind == 4 ? 2000 : (kind < 2 ? 1021 : 1022) + (size_t)(kind % 2);
		struct lp_http_scan s;
		struct lp_labels ctx;
		current = kind < 2 || kind == 4 ? "leading zeros" : "long extension";
		if (kind < 2 || kind == 4) {
			memset(body, '0', fill);
			strcpy(body + fill, "3\r\nabc\r\n0\r\n\r\n");
		} else {
			memcpy(body, "3;x=", 4);
			memset(body + 4, 'e', fill - 4);
			strcpy(body + fill, "\r\nabc\r\n0\r\n\r\n");
		}
		lp_http_scan_init(&s);
		expect_eq(feed_str(&s, post, &ctx), LP_HTTP_NO_CONTEXT);
		expect_eq(feed_str(&s, body, &ctx), LP_HTTP_NONE);
		expect_eq(s.state, kind % 2 || kind == 4 ? LP_HS_WAIT : LP_HS_START);
		expect_eq(feed_str(&s, HEAD("traceparent: " TP1 "\r\n"), &ctx), LP_HTTP_CONTEXT);
	}
}

/* Pipelined requests in one feed: the last head's outcome is reported. */
static void test_pipelined(void **state)
{
	(void)state;
	static const struct { const char *stream; int result; const char *trace, *span; } cases[] = {
		{ HEAD("traceparent: " TP1 "\r\n") HEAD("traceparent: " TP2 "\r\n"),
		  LP_HTTP_CONTEXT, T2, S2 },
		{ HEAD("traceparent: " TP1 "\r\n") HEAD(""), LP_HTTP_NO_CONTEXT, ZERO_T, ZERO_S },
		{ HEAD("") HEAD("traceparent: " TP1 "\r\n"), LP_HTTP_CONTEXT, T1, S1 },
		{ HEAD("") HEAD("traceparent: " TP1 "\r\n") "GET /partial HTTP/1.1\r\ntracep",
		  LP_HTTP_CONTEXT, T1, S1 },
		{ "POST / HTTP/1.1\r\nContent-Length: 3\r\ntraceparent: " TP1 "\r\n\r\nabc"
		  "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
		  "\r\nGET / HTTP/1.1\r\ntraceparent: " TP3 "\r\n\r\n", LP_HTTP_CONTEXT, T3, S3 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_labels ctx;
		current = cases[i].stream;
		expect_eq(one_shot(cases[i].stream, strlen(cases[i].stream), &ctx), cases[i].result);
		expect_labels(&ctx, cases[i].trace, cases[i].span);
	}
}

/* ---- headers ----------------------------------------------------------------------------- */

/* What one head in one feed reports, by its header lines. */
static void test_header_cases(void **state)
{
	(void)state;
	static const struct { const char *head; int ok; } cases[] = {
		{ HEAD("traceparent: " TP1 "\r\n"), 1 },
		{ HEAD("TRACEPARENT: " TP1 "\r\n"), 1 },
		{ HEAD("traceparent:" TP1 "\r\n"), 1 },
		{ HEAD("traceparent: \t " TP1 " \t\r\n"), 1 },
		{ HEAD("traceparent: " TP1 "\n"), 1 },
		{ HEAD("X-Folded: a\r\n b\r\ntraceparent: " TP1 "\r\n"), 1 },
		{ HEAD("tracestate: a=b\r\ntraceparent: " TP1 "\r\n"), 1 },
		{ HEAD("X-Traceparent: " TP2 "\r\ntraceparent: " TP1 "\r\n"), 1 },
		{ HEAD("Cookie: traceparent: " TP2 "\r\ntraceparent: " TP1 "\r\n"), 1 },
		/* two traceparent headers, in any combination, are invalid */
		{ HEAD("traceparent: " TP1 "\r\ntraceparent: " TP1 "\r\n"), 0 },
		{ HEAD("traceparent: " TP1 "\r\nTraceparent: " TP2 "\r\n"), 0 },
		{ HEAD("traceparent: garbage\r\ntraceparent: " TP1 "\r\n"), 0 },
		{ HEAD("traceparent: " TP1 "\r\ntraceparent: garbage\r\n"), 0 },
		{ HEAD("traceparent: " TP1 "\r\ntraceparent:\r\n"), 0 },
		/* an obs-fold line continues (changes) the value */
		{ HEAD("traceparent: " TP1 "\r\n \r\n"), 0 },
		{ HEAD("traceparent: " TP1 "\r\n\t-more\r\n"), 0 },
		/* not the header, or not a valid field line */
		{ HEAD("traceparent : " TP1 "\r\n"), 0 },
		{ HEAD(" traceparent: " TP1 "\r\n"), 0 },
		{ HEAD("traceparent " TP1 "\r\n"), 0 },
		{ HEAD("traceparentx: " TP1 "\r\n"), 0 },
		{ HEAD("traceparent: " TP1 "\r\r\n"), 0 },
		{ HEAD(""), 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_labels ctx;
		current = cases[i].head;
		expect_eq(one_shot(cases[i].head, strlen(cases[i].head), &ctx),
			  cases[i].ok ? LP_HTTP_CONTEXT : LP_HTTP_NO_CONTEXT);
		expect_labels(&ctx, cases[i].ok ? T1 : ZERO_T, cases[i].ok ? S1 : ZERO_S);
	}
}

/* Request lines that start a request, and first bytes that are something else. */
static void test_request_lines(void **state)
{
	(void)state;
	static const char *const good[] = {
		"GET / HTTP/1.1\r\n", "POST /a?b=c HTTP/1.0\r\n", "OPTIONS * HTTP/1.1\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\n", "M-SEARCH * HTTP/1.1\r\n",
		"PROPFIND /dav/%C3%A9 HTTP/1.1\r\n", "GET /caf\xc3\xa9 HTTP/1.1\r\n",
		"PRI * HTTP/1.1\r\n", "DELETE /x HTTP/1.1\n", "\r\n\r\nPATCH /p HTTP/1.1\r\n",
		"VERSION-CONTROL /v HTTP/1.1\r\n", "A / HTTP/1.9\r\n",
	};
	/* with their lengths: some hold NUL bytes */
#define BAD(str) { str, sizeof(str) - 1 }
	static const struct { const char *bytes; size_t n; } bad[] = {
		BAD("get / HTTP/1.1\r\n"), BAD("GET  / HTTP/1.1\r\n"), BAD("GET / HTTP/1.1 \r\n"),
		BAD("GET / HTTP/2.0\r\n"), BAD("GET / http/1.1\r\n"), BAD("GET /\x01 HTTP/1.1\r\n"),
		BAD("GET / HTTP/1.1\r\r\n"), BAD("GET / HTTP/1.\r\n"), BAD("GET\t/ HTTP/1.1\r\n"),
		BAD("HTTP/1.1 200 OK\r\n"), BAD("1GET / HTTP/1.1\r\n"), BAD(" GET / HTTP/1.1\r\n"),
		BAD("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n"), BAD("SSH-2.0-OpenSSH_9.2\r\n"),
		BAD("\x00\x00\x00\x08\x04\xd2\x16\x2f"), BAD("GET / HTTP/1.1\x00\r\n"),
		BAD("GET / HTTP/1.1\r"), BAD("PRI * HTTP/3.0\r\n"),
	};
#undef BAD
	char head[256];
	struct lp_labels ctx;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(head, sizeof(head), "%straceparent: " TP1 "\r\n\r\n", good[i]);
		current = head;
		expect_eq(one_shot(head, strlen(head), &ctx), LP_HTTP_CONTEXT);
		expect_labels(&ctx, T1, S1);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = bad[i].n;
		memcpy(head, bad[i].bytes, n);
		n += (size_t)snprintf(head + n, sizeof(head) - n, "traceparent: " TP1 "\r\n\r\n");
		current = bad[i].bytes;
		struct lp_http_scan s;
		lp_http_scan_init(&s);
		expect_eq(feed(&s, head, n, &ctx), LP_HTTP_NONE);
		expect_eq(s.ignored, LP_HTTP_IGN_OTHER);
		expect_eq(feed_str(&s, HEAD("traceparent: " TP1 "\r\n"), &ctx), LP_HTTP_NONE);
	}
}

/* A request without traceparent after one with it clears the context. */
static void test_no_context_clears(void **state)
{
	(void)state;
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "clear";
	lp_http_scan_init(&s);
	expect_eq(feed_str(&s, HEAD("traceparent: " TP1 "\r\n"), &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T1, S1);
	expect_eq(feed_str(&s, HEAD("X-Other: 1\r\n"), &ctx), LP_HTTP_NO_CONTEXT);
	expect_labels(&ctx, ZERO_T, ZERO_S);
	expect_eq(feed_str(&s, HEAD("traceparent: " TP2 "\r\n"), &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T2, S2);
	expect_eq(feed_str(&s, HEAD("traceparent: 00-" T1 "-" S1 "-1\r\n"), &ctx),
		  LP_HTTP_NO_CONTEXT);
	expect_labels(&ctx, ZERO_T, ZERO_S);
	/* a feed that ends no head leaves *ctx alone */
	memset(&ctx, 0xaa, sizeof(ctx));
	expect_eq(feed_str(&s, "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\n", &ctx), LP_HTTP_NONE);
	expect_eq(ctx.trace_id[0], 0xaa);
	expect_eq(feed_str(&s, "\r\n", &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T1, S1);
}

/* ---- bodies -------------------------------------------------------------------------------- */

/* A body by Content-Length is skipped, whatever it holds, and in any feeds. */
static void test_content_length_body_skipped(void **state)
{
	(void)state;
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "content-length body";
	lp_http_scan_init(&s);
	expect_eq(feed_str(&s, "POST / HTTP/1.1\r\nCONTENT-LENGTH:  90 \r\n\r\n", &ctx),
		  LP_HTTP_NO_CONTEXT);
	expect_eq(feed_str(&s, "GET / HTTP/1.1\r\ntrace", &ctx), LP_HTTP_NONE);  /* 21 */
	expect_eq(feed_str(&s, "parent: " TP2 "\r\n\r\n", &ctx), LP_HTTP_NONE);  /* 67 */
	expect_eq(feed_str(&s, "xy", &ctx), LP_HTTP_NONE);                        /* 2 */
	expect_eq(feed_str(&s, "\r\nGET / HTTP/1.1\r\ntraceparent: " TP1 "\r\n\r\n", &ctx),
		  LP_HTTP_CONTEXT);       /* the next request, after a stray CRLF */
	expect_labels(&ctx, T1, S1);
	expect_eq(feed_str(&s, HEAD("traceparent: " TP3 "\r\n"), &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T3, S3);

	/* the same Content-Length twice is fine */
	current = "repeated content-length";
	expect_eq(feed_str(&s, "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"
			   "abc" HEAD("traceparent: " TP2 "\r\n"), &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T2, S2);
	expect_eq(lp_http_scan_ignored(&s), 0);
}

/* A body of unknown length (bad or conflicting Content-Length, a
 * Transfer-Encoding without chunked last, broken chunk framing): the rest of the
 * feed is skipped, and only a feed that starts with a request line resumes. */
static void test_unknown_length_waits(void **state)
{
	(void)state;
	static const char *const heads[] = {
		"POST / HTTP/1.1\r\nContent-Length: 12a\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n",
		"POST / HTTP/1.1\r\nContent-Length: \r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n x\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip chunked\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\na\r\n",
	};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		char buf[512];
		struct lp_http_scan s;
		struct lp_labels ctx;
		int ends_head = strstr(heads[i], "\r\n\r\n") != NULL;
		/* "0\r\n\r\n" would be a whole chunked body, or a Content-Length: 5
		 * one: taken for either, the next head would be read. */
		snprintf(buf, sizeof(buf), "%straceparent: " TP1 "\r\n\r\n0\r\n\r\n%s", heads[i],
			 HEAD("traceparent: " TP2 "\r\n"));
		if (ends_head)      /* the framing error is in the body: no traceparent read */
			snprintf(buf, sizeof(buf), "%s0\r\n\r\n%s", heads[i],
				 HEAD("traceparent: " TP2 "\r\n"));
		current = heads[i];
		lp_http_scan_init(&s);
		expect_eq(feed_str(&s, buf, &ctx), ends_head ? LP_HTTP_NO_CONTEXT : LP_HTTP_CONTEXT);
		expect_labels(&ctx, ends_head ? ZERO_T : T1, ends_head ? ZERO_S : S1);
		expect_eq(s.state, LP_HS_WAIT);
		expect_eq(feed_str(&s, "body " HEAD("traceparent: " TP2 "\r\n"), &ctx), LP_HTTP_NONE);
		expect_eq(feed_str(&s, "\x16\x03\x01", &ctx), LP_HTTP_NONE);
		expect_eq(s.ignored, LP_HTTP_IGN_TLS);  /* wherever a request line may start */
		lp_http_scan_init(&s);
		expect_eq(feed_str(&s, buf, &ctx) != LP_HTTP_NONE, 1);
		expect_eq(feed_str(&s, HEAD("traceparent: " TP3 "\r\n"), &ctx), LP_HTTP_CONTEXT);
		expect_labels(&ctx, T3, S3);
		expect_eq(lp_http_scan_ignored(&s), 0);
	}
}

/* ---- other protocols ----------------------------------------------------------------- */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const unsigned char tls_hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc };

/* The HTTP/2 preface and a TLS handshake record make a connection ignored for
 * good, fed at once or byte by byte, at its start or where a request line is
 * expected later (after an h2c upgrade, inside a CONNECT tunnel). */
static void test_h2_and_tls_ignored(void **state)
{
	(void)state;
	struct { const void *bytes; size_t n; enum lp_http_scan_ignore why; } cases[] = {
		{ h2_preface, sizeof(h2_preface) - 1, LP_HTTP_IGN_H2 },
		{ tls_hello, sizeof(tls_hello), LP_HTTP_IGN_TLS },
	};
	static const char *const before[] = {
		"",
		("GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
		 "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	};
	for (size_t b = 0; b < sizeof(before) / sizeof(before[0]); b++) {
		for (size_t i = 0; i < 2; i++) {
			for (int bytewise = 0; bytewise < 2; bytewise++) {
				struct lp_http_scan s;
				struct lp_labels ctx;
				current = before[b][0] ? before[b] : i ? "TLS" : "h2 preface";
				lp_http_scan_init(&s);
				expect_eq(feed_str(&s, before[b], &ctx),
					  before[b][0] ? LP_HTTP_NO_CONTEXT : LP_HTTP_NONE);
				const unsigned char *p = cases[i].bytes;
				for (size_t k = 0; k < cases[i].n; k += bytewise ? 1 : cases[i].n)
					expect_eq(feed(&s, p + k, bytewise ? 1 : cases[i].n, &ctx),
						  LP_HTTP_NONE);
				expect_eq(s.ignored, cases[i].why);
				expect_eq(feed_str(&s, HEAD("traceparent: " TP1 "\r\n"), &ctx),
					  LP_HTTP_NONE);
				lp_http_scan_resync(&s);        /* no way back */
				expect_eq(feed_str(&s, HEAD("traceparent: " TP1 "\r\n"), &ctx),
					  LP_HTTP_NONE);
				expect_eq(lp_http_scan_ignored(&s), 1);
			}
		}
	}
	/* "PRI * HTTP/2" is where the preface parts from a request line: enough. */
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "PRI * HTTP/2";
	lp_http_scan_init(&s);
	expect_eq(feed_str(&s, "PRI * HTTP/2", &ctx), LP_HTTP_NONE);
	expect_eq(s.ignored, LP_HTTP_IGN_H2);
	/* 0x16 not followed by 0x03 is merely not HTTP. */
	current = "0x16 0x00";
	lp_http_scan_init(&s);
	expect_eq(feed(&s, "\x16\x00", 2, &ctx), LP_HTTP_NONE);
	expect_eq(s.ignored, LP_HTTP_IGN_OTHER);
}

/* A bad request line after good requests only makes the scanner wait. */
static void test_garbage_mid_connection_waits(void **state)
{
	(void)state;
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "garbage after a request";
	lp_http_scan_init(&s);
	expect_eq(feed_str(&s, HEAD(""), &ctx), LP_HTTP_NO_CONTEXT);
	expect_eq(feed_str(&s, "hello\r\n" HEAD("traceparent: " TP1 "\r\n"), &ctx), LP_HTTP_NONE);
	expect_eq(lp_http_scan_ignored(&s), 0);
	expect_eq(feed_str(&s, "\r\n" HEAD("traceparent: " TP1 "\r\n"), &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T1, S1);
}

/* lp_http_scan_resync drops the request being read; the next feed that starts
 * with a request line is scanned. */
static void test_resync(void **state)
{
	(void)state;
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "resync";
	lp_http_scan_init(&s);
	expect_eq(feed_str(&s, "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\n", &ctx), LP_HTTP_NONE);
	lp_http_scan_resync(&s);
	expect_eq(feed_str(&s, "\r\n", &ctx), LP_HTTP_NONE);
	expect_eq(feed_str(&s, "X-More: 1\r\n\r\n", &ctx), LP_HTTP_NONE);
	expect_eq(feed_str(&s, "GET / HTT", &ctx), LP_HTTP_NONE);  /* resumes across feeds */
	expect_eq(feed_str(&s, "P/1.1\r\ntraceparent: " TP2 "\r\n\r\n", &ctx), LP_HTTP_CONTEXT);
	expect_labels(&ctx, T2, S2);

	/* a scanner started mid-stream never ignores the connection for its first bytes */
	lp_http_scan_init(&s);
	lp_http_scan_resync(&s);
	expect_eq(feed_str(&s, "rest of a body\r\n", &ctx), LP_HTTP_NONE);
	expect_eq(lp_http_scan_ignored(&s), 0);
	expect_eq(feed_str(&s, HEAD("traceparent: " TP1 "\r\n"), &ctx), LP_HTTP_CONTEXT);
}

/* ---- limits ------------------------------------------------------------------------------ */

/* A head of exactly head_max bytes is read; one byte more is given up on
 * ("no context", then waiting), in one feed or byte by byte. */
static void test_head_limit(void **state)
{
	(void)state;
	static const char pre[] = "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\nX-Pad: ";
	static char head[LP_HTTP_HEAD_MAX + 2];
	for (size_t extra = 0; extra <= 1; extra++) {
		size_t n = LP_HTTP_HEAD_MAX + extra;
		memset(head, 'p', n);
		memcpy(head, pre, strlen(pre));
		memcpy(head + n - 4, "\r\n\r\n", 4);
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct lp_http_scan s;
			struct lp_labels ctx;
			int got = LP_HTTP_NONE;
			current = extra ? "head_max + 1 bytes" : "head_max bytes";
			lp_http_scan_init(&s);
			for (size_t k = 0; k < n; k += bytewise ? 1 : n) {
				int r = feed(&s, head + k, bytewise ? 1 : n, &ctx);
				if (r != LP_HTTP_NONE) {
					expect_eq(got, LP_HTTP_NONE);
					got = r;
				}
			}
			expect_eq(got, extra ? LP_HTTP_NO_CONTEXT : LP_HTTP_CONTEXT);
			if (!bytewise)  /* byte by byte, the last LF comes in a feed of its own */
				expect_eq(s.state, extra ? LP_HS_WAIT : LP_HS_START);
			expect_eq(feed_str(&s, HEAD("traceparent: " TP2 "\r\n"), &ctx), LP_HTTP_CONTEXT);
			expect_labels(&ctx, T2, S2);
		}
	}

	/* a smaller bound set by the caller, reached inside the request line */
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "head_max 16";
	lp_http_scan_init(&s);
	s.head_max = 16;
	expect_eq(feed_str(&s, "GET /0123456789abcdef HTTP/1.1\r\n\r\n", &ctx), LP_HTTP_NO_CONTEXT);
	expect_eq(s.state, LP_HS_WAIT);
	expect_eq(feed_str(&s, "GET / HTTP/1.1\n\n", &ctx), LP_HTTP_NO_CONTEXT);   /* 16 bytes */
	expect_eq(s.state, LP_HS_START);
	s.head_max = LP_HTTP_HEAD_MAX;
	expect_eq(feed_str(&s, HEAD("traceparent: " TP2 "\r\n"), &ctx), LP_HTTP_CONTEXT);
}

/* Lines longer than LP_HTTP_LINE_MAX are skipped: harmless for other headers,
 * an invalid (future-version, long) traceparent, split anywhere. */
static void test_long_lines(void **state)
{
	(void)state;
	char big[1200], longtp[400], req[3000];
	memset(big, 'c', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(longtp, sizeof(longtp), "traceparent: cc-" T1 "-" S1 "-01-%0300d", 7);
	/* the long part goes between pre and post */
	static const struct { const char *pre, *post; int ok; } cases[] = {
		{ "GET / HTTP/1.1\r\nCookie: ", "\r\ntraceparent: " TP1 "\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\nCookie: ", "\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\nX: y\r\n ", "\r\n\r\n", 1 },
		{ "GET / HTTP/1.1\r\ntraceparent: " TP1, "\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\n ", "\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\n", "\r\n\r\n", 0 },                    /* longtp */
		{ "GET / HTTP/1.1\r\ntraceparent: " TP1 "\r\n", "\r\n\r\n", 0 },
	};
	const size_t n_cases = sizeof(cases) / sizeof(cases[0]);
	for (size_t i = 0; i < n_cases; i++) {
		int ok = cases[i].ok;
		snprintf(req, sizeof(req), "%s%s%s", cases[i].pre, i < n_cases - 2 ? big : longtp,
			 cases[i].post);
		current = req;
		const struct part parts[] = {
			{ req, ok ? LP_HTTP_CONTEXT : LP_HTTP_NO_CONTEXT, T1, S1 },
		};
		struct stream st;
		build(&st, parts, 1);
		check_all_cuts(&st, 0);
	}
	/* A line of exactly LP_HTTP_LINE_MAX bytes before its LF is read in full. */
	char line[LP_HTTP_LINE_MAX + 1];
	int n = snprintf(line, sizeof(line), "traceparent: cc-" T1 "-" S1 "-01-");
	memset(line + n, 'z', sizeof(line) - (size_t)n);
	line[LP_HTTP_LINE_MAX - 1] = '\r';
	line[LP_HTTP_LINE_MAX] = '\0';
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n%s\n\r\n", line);
	current = "line of LP_HTTP_LINE_MAX bytes";
	const struct part fits[] = { { req, LP_HTTP_CONTEXT, T1, S1 } };
	struct stream st;
	build(&st, fits, 1);
	check_all_cuts(&st, 0);
	line[LP_HTTP_LINE_MAX - 1] = 'z';       /* one byte more: too long */
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n%s\r\n\r\n", line);
	current = "line of LP_HTTP_LINE_MAX + 1 bytes";
	const struct part over[] = { { req, LP_HTTP_NO_CONTEXT, NULL, NULL } };
	build(&st, over, 1);
	check_all_cuts(&st, 0);
}

static int line_is_clear(const struct lp_http_scan *s)
{
	for (size_t i = 0; i < sizeof(s->line); i++)
		if (s->line[i])
			return 0;
	return 1;
}

/* A header line held across feeds is scrubbed once read, and when the scanner
 * gives up or loses track: only the trace context is kept. */
static void test_no_header_bytes_kept(void **state)
{
	(void)state;
	struct lp_http_scan s;
	struct lp_labels ctx;
	current = "scrubbed";
	lp_http_scan_init(&s);
	expect_eq(feed_str(&s, "GET / HTTP/1.1\r\nAuthorization: Bearer sec", &ctx), LP_HTTP_NONE);
	expect_eq(s.line_len > 0, 1);
	expect_eq(feed_str(&s, "ret\r\nCookie: a=", &ctx), LP_HTTP_NONE);
	expect_eq(strstr(s.line, "sec") == NULL, 1);
	expect_eq(feed_str(&s, "b\r\n\r\n", &ctx), LP_HTTP_NO_CONTEXT);
	expect_eq(line_is_clear(&s), 1);
	expect_eq(feed_str(&s, "GET / HTTP/1.1\r\nCookie: a=", &ctx), LP_HTTP_NONE);
	lp_http_scan_resync(&s);
	expect_eq(line_is_clear(&s), 1);
	s.head_max = 40;
	expect_eq(feed_str(&s, "GET / HTTP/1.1\r\nCookie: 0123456789abcde", &ctx), LP_HTTP_NONE);
	expect_eq(s.line_len, 23);     /* 39 bytes: one short of head_max */
	expect_eq(feed_str(&s, "0123456789abcdef\r\n\r\n", &ctx), LP_HTTP_NO_CONTEXT);
	expect_eq(line_is_clear(&s), 1);
	expect_eq(sizeof(s) <= 512, 1);
}

/* ---- garbage ----------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* Feeds buf[0..n) in random pieces; every result is in range and every
 * context reported has non-zero ids. */
static void feed_randomly(struct lp_http_scan *s, const unsigned char *buf, size_t n)
{
	size_t a = 0;
	while (a < n) {
		size_t k = 1 + rnd() % 64;
		if (k > n - a)
			k = n - a;
		struct lp_labels ctx;
		int r = feed(s, buf + a, k, &ctx);
		if (r == LP_HTTP_CONTEXT) {
			static const uint8_t zero[16];
			if (!memcmp(ctx.trace_id, zero, 16) || !memcmp(ctx.span_id, zero, 8))
				fail_msg("%s: a context with a zero id", current);
		}
		a += k;
	}
}

/* Random bytes, and valid streams with random bytes changed, inserted or
 * replaced by CR, LF, ':' or '-': no crash, results in range. (Under a
 * sanitizer, no out-of-bounds access either; tests/fuzz goes further.) */
static void test_garbage(void **state)
{
	(void)state;
	static const char base[] = "POST /a HTTP/1.1\r\nContent-Length: 4\r\ntraceparent: " TP1
		"\r\n\r\nbody" "PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		"4\r\nabcd\r\n0\r\nT: x\r\n\r\n" HEAD("traceparent: " TP2 "\r\n");
	static const char specials[] = "\r\n:- \t0aF";
	unsigned char buf[1024];
	current = "garbage";
	for (int round = 0; round < 20000; round++) {
		struct lp_http_scan s;
		size_t n;
		lp_http_scan_init(&s);
		if (round % 2) {
			n = rnd() % sizeof(buf);
			for (size_t i = 0; i < n; i++)
				buf[i] = (unsigned char)rnd();
		} else {
			n = sizeof(base) - 1;
			memcpy(buf, base, n);
			for (int k = (int)(rnd() % 8); k >= 0; k--) {
				size_t at = rnd() % n;
				unsigned char c = rnd() % 2 ? (unsigned char)rnd() :
					(unsigned char)specials[rnd() % (sizeof(specials) - 1)];
				if (rnd() % 2 && n < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, n - at);
					n++;
				}
				buf[at] = c;
			}
		}
		if (round % 3 == 0)
			s.head_max = rnd() % 256;
		feed_randomly(&s, buf, n);
		feed_randomly(&s, (const unsigned char *)base, sizeof(base) - 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_vectors_file),
		cmocka_unit_test(test_keepalive_every_split),
		cmocka_unit_test(test_chunked_every_split),
		cmocka_unit_test(test_chunk_line_bound),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_header_cases),
		cmocka_unit_test(test_request_lines),
		cmocka_unit_test(test_no_context_clears),
		cmocka_unit_test(test_content_length_body_skipped),
		cmocka_unit_test(test_unknown_length_waits),
		cmocka_unit_test(test_h2_and_tls_ignored),
		cmocka_unit_test(test_garbage_mid_connection_waits),
		cmocka_unit_test(test_resync),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_no_header_bytes_kept),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

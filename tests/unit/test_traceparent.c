/*
 * Unit tests of the traceparent parser and of how the HTTP/1.x request-head
 * scanner (wrappers/traceparent.c) finds it: every vector of
 * tests/data/traceparent-vectors.tsv inside a real request head, direct parser
 * cases, heads split at every point into two and three feeds (keep-alive bodies
 * by Content-Length and chunked, whose text must not be read), pipelining,
 * duplicate headers and request lines. test_http_scan.c has the scanner's life
 * over a connection.
 */
#include "traceparent_helpers.h"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

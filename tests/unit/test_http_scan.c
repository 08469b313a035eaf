/*
 * Unit tests of the HTTP/1.x request-head scanner over a connection's life
 * (wrappers/traceparent.c): a request without context clears it, bodies are
 * skipped, unknown lengths wait, HTTP/2, TLS and other protocols are left
 * alone, resync, the head-size and line-length bounds, no header byte kept,
 * and pseudo-random garbage. test_traceparent.c has the parser and the vectors.
 */
#include "traceparent_helpers.h"

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

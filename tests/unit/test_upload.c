/*
 * Unit tests of streaming's pure parts: the configuration of streaming
 * (preload/config_net.c: percent-decoding, k=v lists as headers and resource
 * attributes, URLs, the protocol and endpoint rules, bad values), the delivery
 * policy (exporter/upload.c: which outcomes are retried, the backoff, the
 * Retry-After header, a refusal's reason) and the Pyroscope request
 * (exporter/pyroscope.c: the name with labels, the sample type config, the
 * multipart body). Warnings are captured by a callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporter/internal.h"

static const char *current = "";

#define expect_eq(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) \
		fail_msg("%s: %s == %lld, expected %s == %lld", current, #a, a_, #b, b_); \
} while (0)
#define expect_str(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (strcmp(a_, b_) != 0) \
		fail_msg("%s: %s == \"%s\", expected \"%s\"", current, #a, a_, b_); \
} while (0)
#define expect_contains(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (!strstr(a_, b_)) \
		fail_msg("%s: %s == \"%s\", expected it to contain \"%s\"", current, #a, a_, b_); \
} while (0)

static char warnings[8][512];
static int n_warnings;

static void capture(const char *line)
{
	if (n_warnings < 8)
		snprintf(warnings[n_warnings], sizeof(warnings[0]), "%s", line);
	n_warnings++;
}

static void load(struct lp_config *cfg, const char **env, const char *name)
{
	current = name;
	n_warnings = 0;
	lp_config_load(cfg, (char *const *)env, capture);
}

static void expect_warnings(int n)
{
	if (n_warnings != n)
		fail_msg("%s: %d warning(s), expected %d; first: %s", current, n_warnings, n,
			 n_warnings ? warnings[0] : "(none)");
}

/* ---- parsers -------------------------------------------------------------- */

/* Percent-decoding: escapes in any case, plain bytes as they are; a cut or
 * non-hex escape and an overflow of the output are errors. */
static void test_percent_decode(void **state)
{
	(void)state;
	char out[16];
	current = "percent";
	expect_eq(lp_percent_decode("a%20b%2Cc%2cd", 13, out, sizeof(out)), 7);
	expect_str(out, "a b,c,d");
	expect_eq(lp_percent_decode("100%", 4, out, sizeof(out)), -1);
	expect_eq(lp_percent_decode("%4", 2, out, sizeof(out)), -1);
	expect_eq(lp_percent_decode("%zz", 3, out, sizeof(out)), -1);
	expect_eq(lp_percent_decode("0123456789abcdefg", 17, out, sizeof(out)), -1);
	expect_eq(lp_percent_decode("", 0, out, sizeof(out)), 0);
	expect_str(out, "");
}

/* Header lists: members trimmed, empty members skipped, values decoded, one
 * "Name: value" each; bad names, bad escapes, CR/LF and missing '=' refuse
 * the whole list, and the reason never holds the value. */
static void test_header_lists(void **state)
{
	(void)state;
	char out[256], why[160];
	current = "headers";
	int n = lp_kv_list_parse(" Authorization = Bearer%20abc%3D%3D ,, X-Team=core , ", 1, out,
				 sizeof(out), why, sizeof(why));
	expect_eq(n, 2);
	expect_str(out, "Authorization: Bearer abc==");
	expect_str(out + strlen(out) + 1, "X-Team: core");
	expect_eq(lp_kv_list_parse("", 1, out, sizeof(out), why, sizeof(why)), 0);
	static const struct { const char *text, *why; } bad[] = {
		{ "Authorization", "member 1 has no '='" },
		{ "a=1,=2", "member 2 has an empty name" },
		{ "Bad Name=x", "\"Bad Name\" is not an HTTP header name" },
		{ "X-A=secret%0D%0AInjected: yes", "the value of \"X-A\" decodes to a control character" },
		{ "X-A=se%2", "the value of \"X-A\" has a bad percent escape" },
		{ "X-A=%00", "the value of \"X-A\" decodes to a control character" },
		{ "X-A=", "\"X-A\" has an empty value" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		current = bad[i].text;
		expect_eq(lp_kv_list_parse(bad[i].text, 1, out, sizeof(out), why, sizeof(why)),
			  -EINVAL);
		expect_str(why, bad[i].why);
	}
	current = "overflow";
	char big[600];
	memset(big, 'v', sizeof(big) - 1);
	memcpy(big, "X-Big=", 6);
	big[sizeof(big) - 1] = '\0';
	expect_eq(lp_kv_list_parse(big, 1, out, sizeof(out), why, sizeof(why)), -EINVAL);
}

/* Resource attribute lists: key, value pairs; a repeated key keeps its last
 * value; empty values are allowed; any character may be escaped. */
static void test_attribute_lists(void **state)
{
	(void)state;
	char out[256], why[160];
	current = "attributes";
	int n = lp_kv_list_parse("deployment.environment=prod,team=a%2Cb,team=c%3Dd,empty=", 0,
				 out, sizeof(out), why, sizeof(why));
	expect_eq(n, 3);
	const char *p = out;
	const char *want[] = { "deployment.environment", "prod", "team", "c=d", "empty", "" };
	for (int i = 0; i < 6; i++, p += strlen(p) + 1)
		expect_str(p, want[i]);
	expect_eq(lp_kv_list_parse("a=%G0", 0, out, sizeof(out), why, sizeof(why)), -EINVAL);
	/* OTLP strings are UTF-8: a value that is not is refused, not sent. */
	expect_eq(lp_kv_list_parse("city=M%C3%BCnchen", 0, out, sizeof(out), why, sizeof(why)), 1);
	expect_str(out + 5, "M\xc3\xbcnchen");
	static const char *const not_utf8[] = { "team=%E2%28", "team=%C0%AF", "team=%ED%A0%80",
						"team=%F4%90%80%80", "team=%FF", "team=%E2%82" };
	for (size_t i = 0; i < sizeof(not_utf8) / sizeof(not_utf8[0]); i++) {
		current = not_utf8[i];
		expect_eq(lp_kv_list_parse(not_utf8[i], 0, out, sizeof(out), why, sizeof(why)),
			  -EINVAL);
		expect_str(why, "member \"team\" is not UTF-8 once decoded");
	}
}

static void test_urls(void **state)
{
	(void)state;
	static const struct { const char *url; int base, ok; } cases[] = {
		{ "http://127.0.0.1:4040", 1, 1 }, { "https://profiles.example.com/prefix/", 1, 1 },
		{ "HTTP://host", 1, 1 }, { "http://user:pw@host:1", 1, 1 },
		{ "http://host/v1development/profiles?x=1", 0, 1 },
		{ "http://host/?x=1", 1, 0 }, { "ftp://host", 1, 0 }, { "host:4040", 1, 0 },
		{ "http://", 1, 0 }, { "http:///path", 1, 0 }, { "http://ho st", 1, 0 },
		{ "http://host/#frag", 0, 0 }, { "http://host\n", 1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		current = cases[i].url;
		expect_eq(lp_url_check(cases[i].url, cases[i].base) == 0, cases[i].ok);
	}
}

/* ---- configuration ------------------------------------------------------------ */

/* The protocol follows LIBPROF_ENDPOINT unless LIBPROF_PROTOCOL says; the
 * Pyroscope URL loses trailing slashes; defaults are the documented ones. */
static void test_protocol_and_endpoints(void **state)
{
	(void)state;
	struct lp_config cfg;
	const char *none[] = { NULL };
	load(&cfg, none, "defaults");
	expect_warnings(0);
	expect_eq(cfg.opt_protocol, LP_PROTO_FILE);
	expect_eq(cfg.opt_upload_timeout_ns, 10000000000ll);
	expect_eq(cfg.opt_exit_timeout_ns, 2000000000ll);
	expect_eq(cfg.opt_upload_queue, 64);
	expect_eq(cfg.opt_upload_queue_bytes, 33554432);

	const char *pyro[] = { "LIBPROF_ENDPOINT=http://collector:4040//", NULL };
	load(&cfg, pyro, "endpoint");
	expect_warnings(0);
	expect_eq(cfg.opt_protocol, LP_PROTO_PYROSCOPE);
	expect_str(cfg.opt_url, "http://collector:4040");

	const char *pyro_default[] = { "LIBPROF_PROTOCOL=Pyroscope", NULL };
	load(&cfg, pyro_default, "pyroscope without endpoint");
	expect_eq(cfg.opt_protocol, LP_PROTO_PYROSCOPE);
	expect_str(cfg.opt_url, "http://localhost:4040");

	const char *file[] = { "LIBPROF_PROTOCOL=file", "LIBPROF_ENDPOINT=http://c:1", NULL };
	load(&cfg, file, "file wins");
	expect_warnings(0);
	expect_eq(cfg.opt_protocol, LP_PROTO_FILE);

	const char *otlp[] = { "LIBPROF_PROTOCOL=otlp", NULL };
	load(&cfg, otlp, "otlp default");
	expect_warnings(0);
	expect_eq(cfg.opt_protocol, LP_PROTO_OTLP);
	expect_str(cfg.opt_url, "http://localhost:4318/v1development/profiles");
	expect_eq(cfg.opt_otlp_gzip, 0);

	const char *otlp_base[] = { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://o:4318/",
				    "LIBPROF_ENDPOINT=http://ignored:1", NULL };
	load(&cfg, otlp_base, "otlp base");
	expect_str(cfg.opt_url, "http://o:4318/v1development/profiles");

	const char *otlp_lp[] = { "LIBPROF_PROTOCOL=otlp", "LIBPROF_ENDPOINT=http://lp:4318", NULL };
	load(&cfg, otlp_lp, "otlp from LIBPROF_ENDPOINT");
	expect_str(cfg.opt_url, "http://lp:4318/v1development/profiles");

	const char *otlp_full[] = { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://o:1",
				    "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT=https://p:2/custom/path",
				    "OTEL_EXPORTER_OTLP_COMPRESSION=GZIP",
				    "OTEL_EXPORTER_OTLP_TIMEOUT=2500", NULL };
	load(&cfg, otlp_full, "otlp signal endpoint");
	expect_warnings(0);
	expect_str(cfg.opt_url, "https://p:2/custom/path");
	expect_eq(cfg.opt_otlp_gzip, 1);
	expect_eq(cfg.opt_upload_timeout_ns, 2500000000ll);

	const char *specific[] = { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_TIMEOUT=2500",
				   "OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT=700",
				   "OTEL_EXPORTER_OTLP_COMPRESSION=gzip",
				   "OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION=none", NULL };
	load(&cfg, specific, "signal-specific variables win");
	expect_eq(cfg.opt_upload_timeout_ns, 700000000ll);
	expect_eq(cfg.opt_otlp_gzip, 0);

	/* OTel variables set for another component do not concern the file sink. */
	const char *foreign[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=not a url",
				  "OTEL_EXPORTER_OTLP_HEADERS=garbage", NULL };
	load(&cfg, foreign, "foreign OTel variables");
	expect_warnings(0);
	expect_eq(cfg.opt_protocol, LP_PROTO_FILE);
}

/* Headers: LIBPROF_HEADERS for Pyroscope, the OTel ones for OTLP (the
 * profiles-specific one replacing the generic one). */
static void test_headers_config(void **state)
{
	(void)state;
	struct lp_config cfg;
	const char *pyro[] = { "LIBPROF_ENDPOINT=http://c:1", "LIBPROF_HEADERS=Authorization=Bearer%20t",
			       "OTEL_EXPORTER_OTLP_HEADERS=X-Not=used", NULL };
	load(&cfg, pyro, "pyroscope headers");
	expect_warnings(0);
	expect_eq(cfg.opt_n_headers, 1);
	expect_str(cfg.opt_headers, "Authorization: Bearer t");

	const char *otlp[] = { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_HEADERS=X-Generic=1",
			       "OTEL_EXPORTER_OTLP_PROFILES_HEADERS=X-A=1,X-B=2", NULL };
	load(&cfg, otlp, "otlp headers");
	expect_warnings(0);
	expect_eq(cfg.opt_n_headers, 2);
	expect_str(cfg.opt_headers, "X-A: 1");

	const char *mixed[] = { "LIBPROF_PROTOCOL=otlp", "LIBPROF_HEADERS=X-A=1", NULL };
	load(&cfg, mixed, "LIBPROF_HEADERS with otlp");
	expect_warnings(1);
	expect_contains(warnings[0], "LIBPROF_HEADERS is for the Pyroscope protocol");
	expect_eq(cfg.opt_n_headers, 0);
}

/* Resource attributes: read for every protocol; service.name becomes the
 * service unless OTEL_SERVICE_NAME is set, and is not repeated among them. */
static void test_resource_config(void **state)
{
	(void)state;
	struct lp_config cfg;
	const char *env[] = { "OTEL_RESOURCE_ATTRIBUTES=service.name=billing,host.name=h1", NULL };
	load(&cfg, env, "service.name");
	expect_warnings(0);
	expect_str(cfg.opt_service, "billing");
	expect_eq(cfg.opt_n_resource, 1);
	expect_str(cfg.opt_resource, "host.name");
	expect_str(cfg.opt_resource + 10, "h1");

	const char *wins[] = { "OTEL_SERVICE_NAME=checkout",
			       "OTEL_RESOURCE_ATTRIBUTES=service.name=billing,team=x", NULL };
	load(&cfg, wins, "OTEL_SERVICE_NAME wins");
	expect_str(cfg.opt_service, "checkout");
	expect_eq(cfg.opt_n_resource, 1);
	expect_str(cfg.opt_resource, "team");
}

/* Every bad streaming value: one line naming the variable, the value (never a
 * header's) and what is used instead; the rest of the configuration holds. */
static void test_bad_values(void **state)
{
	(void)state;
	static const struct { const char *env[4], *line; int proto; } cases[] = {
		{ { "LIBPROF_PROTOCOL=grpc" }, "LIBPROF_PROTOCOL=\"grpc\" is not one of pyroscope, "
		  "otlp, file; using file", LP_PROTO_FILE },
		{ { "LIBPROF_PROTOCOL=udp", "LIBPROF_ENDPOINT=http://c:1" }, "LIBPROF_PROTOCOL=\"udp\" "
		  "is not one of pyroscope, otlp, file; using pyroscope (LIBPROF_ENDPOINT is set)",
		  LP_PROTO_PYROSCOPE },
		{ { "LIBPROF_ENDPOINT=collector:4040" }, "LIBPROF_ENDPOINT=\"collector:4040\" is not "
		  "an http:// or https:// URL without query; profiles are written as files",
		  LP_PROTO_FILE },
		{ { "LIBPROF_PROTOCOL=pyroscope", "LIBPROF_ENDPOINT=http://c/?a=b" },
		  "LIBPROF_ENDPOINT=\"http://c/?a=b\" is not an http:// or https:// URL without query; "
		  "using http://localhost:4040", LP_PROTO_PYROSCOPE },
		{ { "LIBPROF_ENDPOINT=http://c:1", "LIBPROF_HEADERS=Authorization=Bearer%zzsecret" },
		  "LIBPROF_HEADERS is not a valid k=v,... header list (the value of \"Authorization\" "
		  "has a bad percent escape); sending no header from it", LP_PROTO_PYROSCOPE },
		{ { "OTEL_RESOURCE_ATTRIBUTES=team=%E2%82" "%zz" }, "OTEL_RESOURCE_ATTRIBUTES="
		  "\"team=%E2%82%zz\" is not a k=v,... list (the value of \"team\" has a bad percent "
		  "escape); using no resource attributes", LP_PROTO_FILE },
		{ { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_TIMEOUT=10s" },
		  "OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\" is not a whole number of milliseconds from 100 "
		  "to 300000; using 10000", LP_PROTO_OTLP },
		{ { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_COMPRESSION=zstd" },
		  "OTEL_EXPORTER_OTLP_COMPRESSION=\"zstd\" is not gzip or none; using none",
		  LP_PROTO_OTLP },
		{ { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" },
		  "OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\": libprof sends OTLP as http/protobuf only; "
		  "using it", LP_PROTO_OTLP },
		{ { "LIBPROF_PROTOCOL=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318" },
		  "OTEL_EXPORTER_OTLP_ENDPOINT=\"localhost:4318\" is not an http:// or https:// URL "
		  "without query; using http://localhost:4318", LP_PROTO_OTLP },
		{ { "LIBPROF_ENDPOINT=http://c:1", "LIBPROF_TLS_CA=relative.pem" }, "LIBPROF_TLS_CA="
		  "\"relative.pem\" is not the absolute path of a readable file; using the system's "
		  "CA certificates", LP_PROTO_PYROSCOPE },
		{ { "LIBPROF_EXIT_TIMEOUT=61" }, "LIBPROF_EXIT_TIMEOUT=\"61\" is not a number of "
		  "seconds from 0.0 to 60; using 2", LP_PROTO_FILE },
		{ { "LIBPROF_UPLOAD_QUEUE=0" }, "LIBPROF_UPLOAD_QUEUE=\"0\" is not a whole number from "
		  "1 to 1024; using 64", LP_PROTO_FILE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_config cfg;
		load(&cfg, (const char **)cases[i].env, cases[i].line);
		expect_warnings(1);
		expect_str(warnings[0], cases[i].line);
		expect_eq(cfg.opt_protocol, cases[i].proto);
		if (strstr(cases[i].line, "secret"))
			fail_msg("a header value was shown: %s", cases[i].line);
	}
}

/* ---- policy ------------------------------------------------------------------------ */

static void test_verdicts(void **state)
{
	(void)state;
	current = "verdicts";
	static const struct { int proto, rc; long status; enum lp_verdict v; } cases[] = {
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 200, LP_DELIVERED },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 204, LP_DELIVERED },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 429, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 500, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 503, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 400, LP_REJECTED },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 401, LP_REJECTED },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 413, LP_REJECTED },
		{ LP_PROTO_PYROSCOPE, CURLE_OK, 302, LP_REJECTED },
		{ LP_PROTO_OTLP, CURLE_OK, 200, LP_DELIVERED },
		{ LP_PROTO_OTLP, CURLE_OK, 429, LP_RETRY },
		{ LP_PROTO_OTLP, CURLE_OK, 502, LP_RETRY },
		{ LP_PROTO_OTLP, CURLE_OK, 503, LP_RETRY },
		{ LP_PROTO_OTLP, CURLE_OK, 504, LP_RETRY },
		{ LP_PROTO_OTLP, CURLE_OK, 500, LP_REJECTED },
		{ LP_PROTO_OTLP, CURLE_OK, 400, LP_REJECTED },
		{ LP_PROTO_OTLP, CURLE_COULDNT_CONNECT, 0, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_COULDNT_CONNECT, 0, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_OPERATION_TIMEDOUT, 0, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_COULDNT_RESOLVE_HOST, 0, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_RECV_ERROR, 0, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_GOT_NOTHING, 0, LP_RETRY },
		{ LP_PROTO_PYROSCOPE, CURLE_PEER_FAILED_VERIFICATION, 0, LP_REJECTED },
		{ LP_PROTO_OTLP, CURLE_SSL_CACERT_BADFILE, 0, LP_REJECTED },
		{ LP_PROTO_OTLP, CURLE_UNSUPPORTED_PROTOCOL, 0, LP_REJECTED },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum lp_verdict v = lp_upload_verdict((enum lp_protocol)cases[i].proto, cases[i].rc,
						      cases[i].status);
		if (v != cases[i].v)
			fail_msg("protocol %d, curl %d, HTTP %ld: verdict %d, expected %d",
				 cases[i].proto, cases[i].rc, cases[i].status, v, cases[i].v);
	}
}

/* Full jitter below a ceiling doubling from 1 s to the 30 s cap; Retry-After
 * is used as given, up to 300 s. */
static void test_backoff(void **state)
{
	(void)state;
	current = "backoff";
	static const uint32_t ceiling[] = { 1000, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000 };
	for (int f = 0; f < 9; f++) {
		expect_eq(lp_upload_backoff_ms(f, -1, 0), 0);
		expect_eq(lp_upload_backoff_ms(f, -1, ceiling[f]), ceiling[f]);
		expect_eq(lp_upload_backoff_ms(f, -1, ceiling[f] + 1), 0);
		expect_eq(lp_upload_backoff_ms(f, -1, UINT32_MAX) <= ceiling[f], 1);
	}
	expect_eq(lp_upload_backoff_ms(1000000, -1, 29999), 29999);
	expect_eq(lp_upload_backoff_ms(1, 1000, 12345), 1000);
	expect_eq(lp_upload_backoff_ms(9, 0, 12345), 0);
	expect_eq(lp_upload_backoff_ms(1, 3600000, 1), 300000);
}

static void test_retry_after(void **state)
{
	(void)state;
	current = "retry-after";
	int64_t now = 784111777;    /* Sun, 06 Nov 1994 08:49:37 GMT */
	expect_eq(lp_upload_retry_after_ms(" 1\r\n", now), 1000);
	expect_eq(lp_upload_retry_after_ms("120", now), 120000);
	expect_eq(lp_upload_retry_after_ms("0", now), 0);
	expect_eq(lp_upload_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT\r\n", now), 10000);
	expect_eq(lp_upload_retry_after_ms("Sun, 06 Nov 1994 08:49:00 GMT", now), 0);
	expect_eq(lp_upload_retry_after_ms("", now), -1);
	expect_eq(lp_upload_retry_after_ms("soon", now), -1);
	expect_eq(lp_upload_retry_after_ms("12s", now), -1);
	expect_eq(lp_upload_retry_after_ms("Sun, 06 Foo 1994 08:49:47 GMT", now), -1);
	expect_eq(lp_upload_retry_after_ms("Sun, 06 Nov 1994 08:49:47 UTC", now), -1);
}

/* The reason is the first line of a text body, or an OTLP Status message. */
static void test_reasons(void **state)
{
	(void)state;
	char out[32];
	current = "reasons";
	const char text[] = "bad profile: string_table[0] is not empty\nmore";
	lp_upload_reason((const uint8_t *)text, sizeof(text) - 1, 0, out, sizeof(out));
	expect_str(out, "bad profile: string_table[0] is");
	lp_upload_reason((const uint8_t *)"", 0, 0, out, sizeof(out));
	expect_str(out, "no reason given");
	/* google.rpc.Status { code = 3, message = "bad trace" } */
	const uint8_t status[] = { 0x08, 0x03, 0x12, 0x09, 'b', 'a', 'd', ' ', 't', 'r', 'a', 'c', 'e' };
	lp_upload_reason(status, sizeof(status), 1, out, sizeof(out));
	expect_str(out, "bad trace");
	lp_upload_reason(status, sizeof(status), 0, out, sizeof(out));
	expect_str(out, "no reason given");
	const uint8_t truncated[] = { 0x08, 0x03, 0x12, 0x40, 'x' };
	lp_upload_reason(truncated, sizeof(truncated), 1, out, sizeof(out));
	expect_str(out, "no reason given");
}

/* ---- the Pyroscope request ---------------------------------------------------------- */

static void test_pyroscope_name(void **state)
{
	(void)state;
	char name[256], enc[768];
	current = "pyroscope name";
	const char attrs[] = "deployment.environment\0prod\0team\0a,b{c}=d\0" "9lives\0x";
	lp_pyroscope_name("checkout", attrs, 3, name, sizeof(name));
	expect_str(name, "checkout{deployment_environment=prod,team=a_b_c__d,_9lives=x}");
	lp_pyroscope_name("checkout", "", 0, name, sizeof(name));
	expect_str(name, "checkout");
	lp_url_encode("app{k=v w}~", enc, sizeof(enc));
	expect_str(enc, "app%7Bk%3Dv%20w%7D~");
}

static const struct lp_profile_desc heap_desc = {
	.n_types = 4,
	.types = { { "alloc_objects", "count" }, { "alloc_space", "bytes" },
		   { "inuse_objects", "count" }, { "inuse_space", "bytes" } },
	.period_type = { "space", "bytes" },
	.time_nanos = 1700000000500000000ll,
	.duration_nanos = 10000000000ll,
};

static void test_sample_type_config(void **state)
{
	(void)state;
	char json[1024];
	current = "sample_type_config";
	lp_pyroscope_types_json(&heap_desc, json, sizeof(json));
	expect_str(json, "{\"alloc_objects\":{\"units\":\"objects\",\"aggregation\":\"sum\"},"
		   "\"alloc_space\":{\"units\":\"bytes\",\"aggregation\":\"sum\"},"
		   "\"inuse_objects\":{\"units\":\"objects\",\"aggregation\":\"average\"},"
		   "\"inuse_space\":{\"units\":\"bytes\",\"aggregation\":\"average\"}}");
	struct lp_profile_desc mutex = { .n_types = 2, .types = { { "contentions", "count" },
								   { "delay", "nanoseconds" } } };
	lp_pyroscope_types_json(&mutex, json, sizeof(json));
	expect_contains(json, "\"contentions\":{\"units\":\"lock_samples\",\"aggregation\":\"sum\","
			"\"display-name\":\"mutex_count\"}");
	expect_contains(json, "\"delay\":{\"units\":\"lock_nanoseconds\"");
	struct lp_profile_desc cpu = { .n_types = 2, .types = { { "samples", "count" },
								 { "cpu", "nanoseconds" } } };
	lp_pyroscope_types_json(&cpu, json, sizeof(json));
	expect_str(json, "{\"samples\":{\"units\":\"samples\",\"aggregation\":\"sum\"},"
		   "\"cpu\":{\"units\":\"nanoseconds\",\"aggregation\":\"sum\"}}");
}

/* The URL has the name and whole seconds around the interval; the body is a
 * multipart whose boundary is not in the profile, holding it byte for byte. */
static void test_pyroscope_request(void **state)
{
	(void)state;
	char *url, ct[128];
	uint8_t *body, gz[300];
	size_t len, off;
	current = "pyroscope request";
	for (size_t i = 0; i < sizeof(gz); i++)
		gz[i] = (uint8_t)(i * 7);
	memcpy(gz + 100, "--libprof-", 10);
	assert_int_equal(lp_pyroscope_request("http://c:4040", "svc%7Bk%3Dv%7D", &heap_desc, gz,
					      sizeof(gz), &url, &body, &len, &off, ct, sizeof(ct)), 0);
	expect_str(url, "http://c:4040/ingest?name=svc%7Bk%3Dv%7D&from=1700000000&until=1700000011"
		   "&spyName=libprof");
	expect_contains(ct, "multipart/form-data; boundary=libprof-");
	const char *b = strstr(ct, "boundary=") + 9;
	char delim[80];
	snprintf(delim, sizeof(delim), "--%s\r\n", b);
	expect_eq(memcmp(body, delim, strlen(delim)), 0);
	expect_eq(memcmp(body + off, gz, sizeof(gz)), 0);
	expect_eq(memmem(gz, sizeof(gz), b, strlen(b)) == NULL, 1);
	expect_eq(memmem(body, len, "name=\"profile\"", 14) != NULL, 1);
	expect_eq(memmem(body, len, "name=\"sample_type_config\"", 25) != NULL, 1);
	snprintf(delim, sizeof(delim), "--%s--\r\n", b);
	expect_eq(memcmp(body + len - strlen(delim), delim, strlen(delim)), 0);
	free(url);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percent_decode),
		cmocka_unit_test(test_header_lists),
		cmocka_unit_test(test_attribute_lists),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_protocol_and_endpoints),
		cmocka_unit_test(test_headers_config),
		cmocka_unit_test(test_resource_config),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_pyroscope_name),
		cmocka_unit_test(test_sample_type_config),
		cmocka_unit_test(test_pyroscope_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

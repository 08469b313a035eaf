/*
 * Unit tests of the pull endpoint's variables (preload/config_pull.c):
 * LIBPROF_PPROF_LISTEN's address forms, LIBPROF_PPROF_TOKEN, and the one
 * warning each bad value gives (the endpoint then stays off).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../../preload/preload.h"

static char warnings[8][512];
static int n_warnings;

static void capture(const char *line)
{
	if (n_warnings < 8)
		snprintf(warnings[n_warnings], sizeof(warnings[0]), "%s", line);
	n_warnings++;
}

static struct lp_config cfg;

static void load(const char *listen, const char *token)
{
	char a[256], b[256];
	char *env[3] = { NULL, NULL, NULL };
	int n = 0;
	if (listen) {
		snprintf(a, sizeof(a), "LIBPROF_PPROF_LISTEN=%s", listen);
		env[n++] = a;
	}
	if (token) {
		snprintf(b, sizeof(b), "LIBPROF_PPROF_TOKEN=%s", token);
		env[n++] = b;
	}
	n_warnings = 0;
	memset(&cfg, 0, sizeof(cfg));
	lp_config_load(&cfg, env, capture);
}

static void test_address_forms(void **state)
{
	(void)state;
	static const struct { const char *text; int family; const char *host; int port; } ok[] = {
		{ "6060", AF_INET, "127.0.0.1", 6060 },
		{ ":6060", AF_INET, "127.0.0.1", 6060 },
		{ "127.0.0.1:0", AF_INET, "127.0.0.1", 0 },
		{ "localhost:7070", AF_INET, "127.0.0.1", 7070 },
		{ "0.0.0.0:6060", AF_INET, "0.0.0.0", 6060 },
		{ "[::1]:6060", AF_INET6, "::1", 6060 },
		{ "[::]:65535", AF_INET6, "::", 65535 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		load(ok[i].text, NULL);
		char host[64];
		inet_ntop(cfg.opt_pprof_family, cfg.opt_pprof_addr, host, sizeof(host));
		if (!cfg.opt_pprof_on || n_warnings || cfg.opt_pprof_family != ok[i].family ||
		    strcmp(host, ok[i].host) != 0 || cfg.opt_pprof_port != ok[i].port)
			fail_msg("%s: on %d, %d warnings, %s port %d", ok[i].text, cfg.opt_pprof_on,
				 n_warnings, host, cfg.opt_pprof_port);
	}
}

static void test_bad_addresses_warn_once_and_stay_off(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"example.com:80", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:80x",
		"[::1]6060", "[::1", "1.2.3:80", "http://127.0.0.1:80", "127.0.0.1:99999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load(bad[i], NULL);
		if (cfg.opt_pprof_on || n_warnings != 1 || !strstr(warnings[0], "LIBPROF_PPROF_LISTEN") ||
		    !strstr(warnings[0], bad[i]) || !strstr(warnings[0], "the pprof endpoint is off"))
			fail_msg("%s: on %d, %d warnings: %s", bad[i], cfg.opt_pprof_on, n_warnings,
				 n_warnings ? warnings[0] : "");
	}
}

static void test_unset_is_off_without_warning(void **state)
{
	(void)state;
	load(NULL, NULL);
	assert_int_equal(cfg.opt_pprof_on, 0);
	assert_int_equal(n_warnings, 0);
	load("", NULL);             /* empty = unset */
	assert_int_equal(cfg.opt_pprof_on, 0);
	assert_int_equal(n_warnings, 0);
}

static void test_token(void **state)
{
	(void)state;
	load("6060", "s3cret");
	assert_int_equal(cfg.opt_pprof_on, 1);
	assert_string_equal(cfg.opt_pprof_token, "s3cret");
	assert_int_equal(n_warnings, 0);

	load("6060", "has space");  /* a token that cannot be sent: off, value not shown */
	assert_int_equal(cfg.opt_pprof_on, 0);
	assert_int_equal(n_warnings, 1);
	assert_non_null(strstr(warnings[0], "LIBPROF_PPROF_TOKEN"));
	assert_null(strstr(warnings[0], "has space"));

	char longer[200];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	load("6060", longer);
	assert_int_equal(cfg.opt_pprof_on, 0);
	assert_int_equal(n_warnings, 1);

	load(NULL, "s3cret");       /* a token alone: said, nothing started */
	assert_int_equal(cfg.opt_pprof_on, 0);
	assert_int_equal(n_warnings, 1);
	assert_null(strstr(warnings[0], "s3cret"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_forms),
		cmocka_unit_test(test_bad_addresses_warn_once_and_stay_off),
		cmocka_unit_test(test_unset_is_off_without_warning),
		cmocka_unit_test(test_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

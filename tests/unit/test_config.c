/*
 * Unit tests of the configuration parser (preload/config.c: lp_config_load) and
 * of the raw logger's formatter (preload/log.c: lp_fmt, lp_log). Warnings are
 * captured by a callback into a static array; lp_fmt is checked against the C
 * library's snprintf for the conversions it claims to support.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../preload/preload.h"

/* The case a table-driven test is on, named in its failure messages. */
static const char *current = "";
static char current_env[1024];

/* Equality printing the case, both expressions and both values (in decimal). */
#define expect_eq(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) \
		fail_msg("%s: %s == %lld, expected %s == %lld", current, #a, a_, #b, b_); \
} while (0)
#define expect_contains(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (!strstr(a_, b_)) \
		fail_msg("%s: %s == \"%s\", expected it to contain \"%s\"", current, #a, a_, b_); \
} while (0)
#define expect_str(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	if (strcmp(a_, b_) != 0) \
		fail_msg("%s: %s == \"%s\", expected \"%s\"", current, #a, a_, b_); \
} while (0)

#define MAX_WARNINGS 16

static char warnings[MAX_WARNINGS][512];
static enum lp_log_level log_level_at_warning[MAX_WARNINGS];
static int n_warnings;
static const struct lp_config *loading;     /* the config being filled */

static void capture(const char *line)
{
	if (n_warnings < MAX_WARNINGS) {
		snprintf(warnings[n_warnings], sizeof(warnings[0]), "%s", line);
		log_level_at_warning[n_warnings] = loading->opt_log;
	}
	n_warnings++;
}

/* Names env in the failure messages that follow. */
static void set_current(const char *const *env)
{
	size_t used = 0;
	current_env[0] = '\0';
	for (size_t i = 0; env && env[i] && used < sizeof(current_env); i++)
		used += (size_t)snprintf(current_env + used, sizeof(current_env) - used, "%s%s",
					 i ? " " : "", env[i]);
	current = current_env[0] ? current_env : "(empty environment)";
}

/* Loads cfg from env (NULL-terminated), forgetting earlier warnings. */
static void load(struct lp_config *cfg, const char *const *env)
{
	set_current(env);
	n_warnings = 0;
	loading = cfg;
	lp_config_load(cfg, (char *const *)env, capture);
}

static void expect_no_warning(void)
{
	if (n_warnings != 0)
		fail_msg("%s: %d warning(s), expected none; first: %s", current, n_warnings,
			 warnings[0]);
}

static void expect_one_warning(const char *line)
{
	if (n_warnings != 1)
		fail_msg("%s: %d warning(s), expected exactly one (\"%s\"); first: %s",
			 current, n_warnings, line, n_warnings ? warnings[0] : "(none)");
	expect_str(warnings[0], line);
}

/* Every field of a equals b's. */
static void expect_same_config(const struct lp_config *a, const struct lp_config *b)
{
	expect_eq(a->opt_enable, b->opt_enable);
	expect_eq(a->opt_cpu_hz, b->opt_cpu_hz);
	expect_eq(a->opt_cpu_signal, b->opt_cpu_signal);
	expect_eq(a->opt_cpu_signal_explicit, b->opt_cpu_signal_explicit);
	expect_eq(a->opt_max_depth, b->opt_max_depth);
	expect_eq(a->opt_interval_ns, b->opt_interval_ns);
	expect_eq(a->opt_follow_exec, b->opt_follow_exec);
	expect_eq(a->opt_ring_slots, b->opt_ring_slots);
	expect_eq(a->opt_max_stacks, b->opt_max_stacks);
	expect_eq(a->opt_log, b->opt_log);
	expect_str(a->opt_output_dir, b->opt_output_dir);
	expect_str(a->opt_service, b->opt_service);
}

static struct lp_config defaults;

static int load_defaults(void **state)
{
	(void)state;
	const char *env[] = { NULL };
	load(&defaults, env);
	return 0;
}

/* An empty environment (and a NULL one) gives the documented defaults, silently. */
static void test_defaults_with_empty_env(void **state)
{
	(void)state;
	struct lp_config cfg;
	const char *env[] = { NULL };
	load(&cfg, env);
	expect_no_warning();
	expect_eq(cfg.opt_enable, 1);
	expect_eq(cfg.opt_cpu_hz, 100);
	expect_eq(cfg.opt_cpu_signal, SIGPROF);
	expect_eq(cfg.opt_cpu_signal_explicit, 0);
	expect_eq(cfg.opt_max_depth, 64);
	expect_eq(cfg.opt_interval_ns, 10000000000ll);
	expect_eq(cfg.opt_follow_exec, 1);
	expect_eq(cfg.opt_ring_slots, 2048);
	expect_eq(cfg.opt_max_stacks, 65536);
	expect_eq(cfg.opt_log, LP_LOG_WARN);
	assert_string_equal(cfg.opt_output_dir, "");
	assert_string_equal(cfg.opt_service, "");

	struct lp_config from_null;
	load(&from_null, NULL);
	expect_no_warning();
	expect_same_config(&from_null, &cfg);
}

struct good {
	const char *env;
	size_t offset;              /* field in struct lp_config */
	int is_64;
	long long want;
};

#define OFF(f) offsetof(struct lp_config, f)

/* Each valid value of each numeric variable is stored as given, silently; a
 * valid LIBPROF_CPU_SIGNAL also marks the signal as chosen by the user. */
static void test_valid_values_are_stored(void **state)
{
	(void)state;
	const struct good cases[] = {
		{ "LIBPROF_CPU_HZ=0", OFF(opt_cpu_hz), 0, 0 },
		{ "LIBPROF_CPU_HZ=1", OFF(opt_cpu_hz), 0, 1 },
		{ "LIBPROF_CPU_HZ=250", OFF(opt_cpu_hz), 0, 250 },
		{ "LIBPROF_CPU_HZ=1000", OFF(opt_cpu_hz), 0, 1000 },
		{ "LIBPROF_CPU_HZ=007", OFF(opt_cpu_hz), 0, 7 },
		{ "LIBPROF_MAX_DEPTH=4", OFF(opt_max_depth), 0, 4 },
		{ "LIBPROF_MAX_DEPTH=512", OFF(opt_max_depth), 0, 512 },
		{ "LIBPROF_MAX_STACKS=1024", OFF(opt_max_stacks), 0, 1024 },
		{ "LIBPROF_MAX_STACKS=1048576", OFF(opt_max_stacks), 0, 1048576 },
		{ "LIBPROF_INTERVAL=0.1", OFF(opt_interval_ns), 1, 100000000ll },
		{ "LIBPROF_INTERVAL=2.5", OFF(opt_interval_ns), 1, 2500000000ll },
		{ "LIBPROF_INTERVAL=1.234", OFF(opt_interval_ns), 1, 1234000000ll },
		{ "LIBPROF_INTERVAL=60", OFF(opt_interval_ns), 1, 60000000000ll },
		{ "LIBPROF_INTERVAL=3600", OFF(opt_interval_ns), 1, 3600000000000ll },
		{ "LIBPROF_INTERVAL=3600.000", OFF(opt_interval_ns), 1, 3600000000000ll },
		{ "LIBPROF_CPU_SIGNAL=SIGPROF", OFF(opt_cpu_signal), 0, SIGPROF },
		{ "LIBPROF_CPU_SIGNAL=SIGVTALRM", OFF(opt_cpu_signal), 0, SIGVTALRM },
		{ "LIBPROF_CPU_SIGNAL=SIGALRM", OFF(opt_cpu_signal), 0, SIGALRM },
		{ "LIBPROF_CPU_SIGNAL=SIGUSR1", OFF(opt_cpu_signal), 0, SIGUSR1 },
		{ "LIBPROF_CPU_SIGNAL=SIGUSR2", OFF(opt_cpu_signal), 0, SIGUSR2 },
		{ "LIBPROF_CPU_SIGNAL=SIGRTMIN+0", OFF(opt_cpu_signal), 0, SIGRTMIN },
		{ "LIBPROF_CPU_SIGNAL=SIGRTMIN+3", OFF(opt_cpu_signal), 0, SIGRTMIN + 3 },
		{ "LIBPROF_CPU_SIGNAL=27", OFF(opt_cpu_signal), 0, SIGPROF },
		{ "LIBPROF_CPU_SIGNAL=10", OFF(opt_cpu_signal), 0, SIGUSR1 },
		{ "LIBPROF_CPU_SIGNAL=14", OFF(opt_cpu_signal), 0, SIGALRM },
		{ "LIBPROF_LOG=debug", OFF(opt_log), 0, LP_LOG_DEBUG },
		{ "LIBPROF_LOG=info", OFF(opt_log), 0, LP_LOG_INFO },
		{ "LIBPROF_LOG=warn", OFF(opt_log), 0, LP_LOG_WARN },
		{ "LIBPROF_LOG=off", OFF(opt_log), 0, LP_LOG_OFF },
		{ "LIBPROF_LOG=OFF", OFF(opt_log), 0, LP_LOG_OFF },
		{ "LIBPROF_LOG=Debug", OFF(opt_log), 0, LP_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_config cfg;
		const char *env[] = { cases[i].env, NULL };
		load(&cfg, env);
		expect_no_warning();
		const char *field = (const char *)&cfg + cases[i].offset;
		long long got = cases[i].is_64 ? *(const int64_t *)field : *(const int *)field;
		expect_eq(got, cases[i].want);
		/* A signal the user names, even the default one, is never moved. */
		expect_eq(cfg.opt_cpu_signal_explicit, cases[i].offset == OFF(opt_cpu_signal));
	}
	/* A numeric real-time signal is accepted as itself. */
	char rt[32];
	snprintf(rt, sizeof(rt), "LIBPROF_CPU_SIGNAL=%d", SIGRTMIN + 1);
	const char *env[] = { rt, NULL };
	struct lp_config cfg;
	load(&cfg, env);
	expect_no_warning();
	expect_eq(cfg.opt_cpu_signal, SIGRTMIN + 1);
	expect_eq(cfg.opt_cpu_signal_explicit, 1);
}

/* LIBPROF_ENABLE and LIBPROF_FOLLOW_EXEC take every documented boolean spelling. */
static void test_booleans(void **state)
{
	(void)state;
	static const char *const yes[] = { "1", "true", "TRUE", "yes", "Yes", "on", "ON" };
	static const char *const no[] = { "0", "false", "False", "no", "NO", "off", "Off" };
	for (int want = 0; want <= 1; want++) {
		const char *const *words = want ? yes : no;
		for (size_t i = 0; i < 7; i++) {
			char a[64], b[64];
			snprintf(a, sizeof(a), "LIBPROF_ENABLE=%s", words[i]);
			snprintf(b, sizeof(b), "LIBPROF_FOLLOW_EXEC=%s", words[i]);
			const char *env[] = { a, b, NULL };
			struct lp_config cfg;
			load(&cfg, env);
			expect_no_warning();
			expect_eq(cfg.opt_enable, want);
			expect_eq(cfg.opt_follow_exec, want);
		}
	}
}

/* Absolute output directories and service names are copied verbatim. */
static void test_paths_and_names(void **state)
{
	(void)state;
	const char *env[] = { "LIBPROF_OUTPUT_DIR=/var/tmp/my profiles",
			      "OTEL_SERVICE_NAME=checkout-api v2", NULL };
	struct lp_config cfg;
	load(&cfg, env);
	expect_no_warning();
	assert_string_equal(cfg.opt_output_dir, "/var/tmp/my profiles");
	assert_string_equal(cfg.opt_service, "checkout-api v2");
}

/* LIBPROF_RING_SLOTS is rounded up to a power of two; powers of two stay. */
static void test_ring_slots_round_up(void **state)
{
	(void)state;
	static const struct { const char *v; int want; } cases[] = {
		{ "256", 256 }, { "257", 512 }, { "300", 512 }, { "1000", 1024 },
		{ "4096", 4096 }, { "4097", 8192 }, { "65535", 65536 }, { "65536", 65536 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char e[64];
		snprintf(e, sizeof(e), "LIBPROF_RING_SLOTS=%s", cases[i].v);
		const char *env[] = { e, NULL };
		struct lp_config cfg;
		load(&cfg, env);
		expect_no_warning();
		expect_eq(cfg.opt_ring_slots, cases[i].want);
	}
}

/* OTEL_SDK_DISABLED disables only for case-insensitive "true", never warns, and
 * wins over LIBPROF_ENABLE=1. */
static void test_otel_sdk_disabled(void **state)
{
	(void)state;
	static const struct { const char *v; int enabled; } cases[] = {
		{ "true", 0 }, { "TRUE", 0 }, { "True", 0 }, { "false", 1 }, { "FALSE", 1 },
		{ "1", 1 }, { "yes", 1 }, { "on", 1 }, { "banana", 1 }, { "true ", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char e[64];
		snprintf(e, sizeof(e), "OTEL_SDK_DISABLED=%s", cases[i].v);
		const char *env[] = { e, NULL };
		struct lp_config cfg;
		load(&cfg, env);
		expect_no_warning();
		expect_eq(cfg.opt_enable, cases[i].enabled);
	}
	const char *both[] = { "OTEL_SDK_DISABLED=true", "LIBPROF_ENABLE=1", NULL };
	struct lp_config cfg;
	load(&cfg, both);
	expect_no_warning();
	expect_eq(cfg.opt_enable, 0);
}

struct bad {
	const char *env;
	const char *line;
};

#define HZ_RANGE "is not a whole number from 0 to 1000; using 100"
#define IV_RANGE "is not a number of seconds from 0.1 to 3600; using 10"
#define SIG_RANGE "is not one of SIGPROF, SIGVTALRM, SIGALRM, SIGUSR1, SIGUSR2, " \
		  "SIGRTMIN+n; using SIGPROF"
#define BOOL_RANGE "is not one of 1, 0, true, false, yes, no, on, off; using 1"

/* Each invalid value gives exactly one warning naming the variable, the value
 * and what is used instead, and the whole configuration stays the default. */
static void test_invalid_values_warn_once_and_keep_default(void **state)
{
	(void)state;
	static const struct bad cases[] = {
		{ "LIBPROF_CPU_HZ=fast", "LIBPROF_CPU_HZ=\"fast\" " HZ_RANGE },
		{ "LIBPROF_CPU_HZ=1001", "LIBPROF_CPU_HZ=\"1001\" " HZ_RANGE },
		{ "LIBPROF_CPU_HZ=-1", "LIBPROF_CPU_HZ=\"-1\" " HZ_RANGE },
		{ "LIBPROF_CPU_HZ=+5", "LIBPROF_CPU_HZ=\"+5\" " HZ_RANGE },
		{ "LIBPROF_CPU_HZ= 5", "LIBPROF_CPU_HZ=\" 5\" " HZ_RANGE },
		{ "LIBPROF_CPU_HZ=5hz", "LIBPROF_CPU_HZ=\"5hz\" " HZ_RANGE },
		{ "LIBPROF_CPU_HZ=99999999999999999999999",
		  "LIBPROF_CPU_HZ=\"99999999999999999999999\" " HZ_RANGE },
		{ "LIBPROF_MAX_DEPTH=3",
		  "LIBPROF_MAX_DEPTH=\"3\" is not a whole number from 4 to 512; using 64" },
		{ "LIBPROF_MAX_DEPTH=513",
		  "LIBPROF_MAX_DEPTH=\"513\" is not a whole number from 4 to 512; using 64" },
		{ "LIBPROF_RING_SLOTS=255",
		  "LIBPROF_RING_SLOTS=\"255\" is not a whole number from 256 to 65536; using 2048" },
		{ "LIBPROF_RING_SLOTS=65537",
		  "LIBPROF_RING_SLOTS=\"65537\" is not a whole number from 256 to 65536; using 2048" },
		{ "LIBPROF_MAX_STACKS=1023",
		  "LIBPROF_MAX_STACKS=\"1023\" is not a whole number from 1024 to 1048576; using 65536" },
		{ "LIBPROF_INTERVAL=0.05", "LIBPROF_INTERVAL=\"0.05\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=0", "LIBPROF_INTERVAL=\"0\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=3600.5", "LIBPROF_INTERVAL=\"3600.5\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=1e3", "LIBPROF_INTERVAL=\"1e3\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=-1", "LIBPROF_INTERVAL=\"-1\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=1,5", "LIBPROF_INTERVAL=\"1,5\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=10s", "LIBPROF_INTERVAL=\"10s\" " IV_RANGE },
		{ "LIBPROF_INTERVAL=.", "LIBPROF_INTERVAL=\".\" " IV_RANGE },
		{ "LIBPROF_CPU_SIGNAL=SIGSEGV", "LIBPROF_CPU_SIGNAL=\"SIGSEGV\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=PROF", "LIBPROF_CPU_SIGNAL=\"PROF\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=9", "LIBPROF_CPU_SIGNAL=\"9\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=11", "LIBPROF_CPU_SIGNAL=\"11\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=0", "LIBPROF_CPU_SIGNAL=\"0\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=SIGRTMIN+", "LIBPROF_CPU_SIGNAL=\"SIGRTMIN+\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=SIGRTMIN+99", "LIBPROF_CPU_SIGNAL=\"SIGRTMIN+99\" " SIG_RANGE },
		{ "LIBPROF_CPU_SIGNAL=SIGRTMIN-1", "LIBPROF_CPU_SIGNAL=\"SIGRTMIN-1\" " SIG_RANGE },
		{ "LIBPROF_LOG=loud",
		  "LIBPROF_LOG=\"loud\" is not one of debug, info, warn, off; using warn" },
		{ "LIBPROF_ENABLE=2", "LIBPROF_ENABLE=\"2\" " BOOL_RANGE },
		{ "LIBPROF_FOLLOW_EXEC=maybe", "LIBPROF_FOLLOW_EXEC=\"maybe\" " BOOL_RANGE },
		{ "LIBPROF_OUTPUT_DIR=relative/dir", "LIBPROF_OUTPUT_DIR=\"relative/dir\" "
		  "is not an absolute path; using the default directory" },
		{ "LIBPROF_OUTPUT_DIR=~/profiles", "LIBPROF_OUTPUT_DIR=\"~/profiles\" "
		  "is not an absolute path; using the default directory" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *env[] = { cases[i].env, NULL };
		struct lp_config cfg;
		load(&cfg, env);
		expect_one_warning(cases[i].line);
		expect_same_config(&cfg, &defaults);
	}
}

/* Several bad values: one warning each, the good ones among them still apply. */
static void test_each_bad_value_warns_separately(void **state)
{
	(void)state;
	const char *env[] = { "LIBPROF_CPU_HZ=fast", "LIBPROF_MAX_DEPTH=128",
			      "LIBPROF_INTERVAL=never", "LIBPROF_LOG=info", NULL };
	struct lp_config cfg;
	load(&cfg, env);
	expect_eq(n_warnings, 2);
	expect_contains(warnings[0], "LIBPROF_CPU_HZ=\"fast\"");
	expect_contains(warnings[1], "LIBPROF_INTERVAL=\"never\"");
	expect_eq(cfg.opt_cpu_hz, 100);
	expect_eq(cfg.opt_max_depth, 128);
	expect_eq(cfg.opt_interval_ns, 10000000000ll);
	expect_eq(cfg.opt_log, LP_LOG_INFO);
}

/* "NAME=" counts as unset for every variable: no warning, the defaults. (No
 * unknown-name warning either: every name in lp_config_names is read.) */
static void test_empty_value_is_unset(void **state)
{
	(void)state;
	char names[64][64];
	const char *env[65];
	size_t n = 0;
	for (; lp_config_names[n]; n++) {
		assert_true(n < 64);
		snprintf(names[n], sizeof(names[n]), "%s=", lp_config_names[n]);
		env[n] = names[n];
	}
	env[n] = NULL;
	assert_true(n >= 12);
	struct lp_config cfg;
	load(&cfg, env);
	expect_no_warning();
	expect_same_config(&cfg, &defaults);
}

/* An unknown LIBPROF_* name gets one warning naming it and, when one is close,
 * the closest known name; the known variables next to it still apply. */
static void test_unknown_name_suggests_closest(void **state)
{
	(void)state;
	static const struct { const char *env, *line; } cases[] = {
		{ "LIBPROF_CPU_HERTZ=50", "LIBPROF_CPU_HERTZ is not a libprof variable "
		  "(did you mean LIBPROF_CPU_HZ?); ignored" },
		{ "LIBPROF_INTERVALL=5", "LIBPROF_INTERVALL is not a libprof variable "
		  "(did you mean LIBPROF_INTERVAL?); ignored" },
		{ "LIBPROF_OUTPUTDIR=/tmp", "LIBPROF_OUTPUTDIR is not a libprof variable "
		  "(did you mean LIBPROF_OUTPUT_DIR?); ignored" },
		{ "LIBPROF_ENABLED=1", "LIBPROF_ENABLED is not a libprof variable "
		  "(did you mean LIBPROF_ENABLE?); ignored" },
		{ "LIBPROF_SOMETHING_ELSE_ENTIRELY=1", "LIBPROF_SOMETHING_ELSE_ENTIRELY "
		  "is not a libprof variable; ignored" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *env[] = { "LIBPROF_CPU_HZ=50", cases[i].env, NULL };
		struct lp_config cfg;
		load(&cfg, env);
		expect_one_warning(cases[i].line);
		expect_eq(cfg.opt_cpu_hz, 50);
	}
}

/* Variables that are not LIBPROF_* (or malformed entries) are ignored silently. */
static void test_foreign_variables_are_ignored(void **state)
{
	(void)state;
	const char *env[] = { "PATH=/usr/bin", "HOME=/root", "LIBPROF=1", "LIBPROFX_CPU_HZ=5",
			      "libprof_cpu_hz=5", "LIBPROF_CPU_HZ", "OTEL_EXPORTER_OTLP_ENDPOINT=x",
			      "LIBPROF_CPU_HZX=", "XLIBPROF_CPU_HZ=5", "", "=", NULL };
	struct lp_config cfg;
	load(&cfg, env);
	/* "LIBPROF_CPU_HZX=" is an unknown LIBPROF_ name, empty or not. */
	expect_one_warning("LIBPROF_CPU_HZX is not a libprof variable "
			   "(did you mean LIBPROF_CPU_HZ?); ignored");
	expect_same_config(&cfg, &defaults);
}

/*
 * The header says every bad value produces one line passed to warn; config.c
 * handles LIBPROF_LOG first "so that LIBPROF_LOG=off silences the other
 * warnings". Both hold together: the line is still passed to warn (whatever
 * the order of the environment), and when it is, the config being filled
 * already says off, so init.c's callback (lp_log at WARN) prints nothing.
 */
static void test_log_off_with_bad_value(void **state)
{
	(void)state;
	const char *env[] = { "LIBPROF_CPU_HZ=fast", "LIBPROF_CPU_HERTZ=1", "LIBPROF_LOG=off",
			      NULL };
	struct lp_config cfg;
	load(&cfg, env);
	expect_eq(n_warnings, 2);
	expect_contains(warnings[0], "LIBPROF_CPU_HZ=\"fast\"");
	expect_contains(warnings[1], "LIBPROF_CPU_HERTZ");
	expect_eq(log_level_at_warning[0], LP_LOG_OFF);
	expect_eq(log_level_at_warning[1], LP_LOG_OFF);
	expect_eq(cfg.opt_log, LP_LOG_OFF);
	expect_eq(cfg.opt_cpu_hz, 100);

	/* A bad LIBPROF_LOG itself is reported at the default level, warn. */
	const char *bad_log[] = { "LIBPROF_CPU_HZ=fast", "LIBPROF_LOG=silent", NULL };
	load(&cfg, bad_log);
	expect_eq(n_warnings, 2);
	expect_contains(warnings[0], "LIBPROF_LOG=\"silent\"");
	expect_eq(log_level_at_warning[0], LP_LOG_WARN);
	expect_eq(log_level_at_warning[1], LP_LOG_WARN);
}

/* Runs lp_config_load into lp.cfg with init.c's callback (lp_log at WARN) and
 * returns what reached stderr. */
static void log_warning(const char *line)
{
	lp_log(LP_LOG_WARN, "%s", line);
}

static size_t stderr_of_load(const char *const *env, char *out, size_t size)
{
	set_current(env);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	lp_config_load(&lp.cfg, (char *const *)env, log_warning);
	dup2(saved, STDERR_FILENO);
	close(saved);
	lp.cfg.opt_log = LP_LOG_OFF;    /* stubs.c: keep the rest quiet */
	rewind(tmp);
	size_t n = fread(out, 1, size - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return n;
}

/* End to end through the logger: LIBPROF_LOG=off prints nothing for a bad
 * value; by default the same warning is printed as one "libprof: " line. */
static void test_log_off_silences_logger(void **state)
{
	(void)state;
	char out[1024];
	const char *off[] = { "LIBPROF_CPU_HZ=fast", "LIBPROF_LOG=off", NULL };
	expect_eq(stderr_of_load(off, out, sizeof(out)), 0);
	const char *on[] = { "LIBPROF_CPU_HZ=fast", NULL };
	stderr_of_load(on, out, sizeof(out));
	assert_string_equal(out, "libprof: LIBPROF_CPU_HZ=\"fast\" " HZ_RANGE "\n");
}

/* lp_fmt output and length, compared with the C library's snprintf. */
#define CHECK_FMT(...) do { \
	char got_[256], want_[256]; \
	current = #__VA_ARGS__; \
	size_t n_ = lp_fmt(got_, sizeof(got_), __VA_ARGS__); \
	snprintf(want_, sizeof(want_), __VA_ARGS__); \
	assert_string_equal(got_, want_); \
	expect_eq(n_, strlen(want_)); \
} while (0)

/* Every conversion lp_fmt documents formats like printf's. */
static void test_fmt_conversions(void **state)
{
	(void)state;
	int x = 0;
	CHECK_FMT("plain text");
	CHECK_FMT("[%s] [%s]", "hello", "");
	CHECK_FMT("%d %d %d %d", 0, 42, -42, INT_MIN);
	CHECK_FMT("%i %d", INT_MAX, -1);
	CHECK_FMT("%u %u", 0u, UINT_MAX);
	CHECK_FMT("%ld %ld %ld", 0l, -1234567890123l, LONG_MAX);
	CHECK_FMT("%lu", ULONG_MAX);
	CHECK_FMT("%lld %lld", LLONG_MAX, -LLONG_MAX);
	CHECK_FMT("%llu", ULLONG_MAX);
	CHECK_FMT("%zu %zu", (size_t)0, SIZE_MAX);
	CHECK_FMT("%x %x %x", 0u, 0xdeadbeefu, UINT_MAX);
	CHECK_FMT("%lx %lx", 0x123456789abcdefUL, ULONG_MAX);
	CHECK_FMT("%p", (void *)&x);
	CHECK_FMT("%c%c%c", 'a', '%', 'z');
	CHECK_FMT("100%% %%d");
	CHECK_FMT("%.*s|%.*s|%.*s", 3, "abcdef", 10, "abc", 0, "abc");
	CHECK_FMT("%02x %02x %02x", 5u, 0xabu, 0x123u);
	CHECK_FMT("%08lx %016lx", 0xbeefUL, 1UL);
	CHECK_FMT("%5u|%3d|%1d", 42u, 7, 123);
	CHECK_FMT("%05d|%5d|%d", -42, -42, -7);
	CHECK_FMT("%lld %ld", LLONG_MIN, LONG_MIN);
	CHECK_FMT("%s=%d (%s)", "LIBPROF_CPU_HZ", 100, "default");
}

/* A NULL string prints "(null)" rather than crashing (glibc does the same). */
static void test_fmt_null_string(void **state)
{
	(void)state;
	char buf[32];
	current = "lp_fmt of a NULL string";
	const char *volatile null = NULL;  /* hidden from -Wformat-overflow */
	expect_eq(lp_fmt(buf, sizeof(buf), "[%s]", null), 8);
	assert_string_equal(buf, "[(null)]");
}

/* Output longer than the buffer is cut to size - 1 characters, NUL-terminated,
 * with nothing written past the buffer, and the length returned is what fits. */
static void test_fmt_truncates(void **state)
{
	(void)state;
	char buf[16];
	current = "lp_fmt into a short buffer";
	memset(buf, 'X', sizeof(buf));
	size_t n = lp_fmt(buf, 8, "%s-%d", "abcdefgh", 12345);
	expect_eq(n, 7);
	assert_string_equal(buf, "abcdefg");
	for (size_t i = 8; i < sizeof(buf); i++)
		expect_eq(buf[i], 'X');

	memset(buf, 'X', sizeof(buf));
	expect_eq(lp_fmt(buf, 1, "%d", 7), 0);
	expect_eq(buf[0], '\0');
	expect_eq(buf[1], 'X');

	memset(buf, 'X', sizeof(buf));
	expect_eq(lp_fmt(buf, 0, "anything"), 0);
	expect_eq(buf[0], 'X');

	/* Exactly fitting output is kept whole. */
	expect_eq(lp_fmt(buf, 6, "%x", 0xabcdeu), 5);
	assert_string_equal(buf, "abcde");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_with_empty_env),
		cmocka_unit_test(test_valid_values_are_stored),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_paths_and_names),
		cmocka_unit_test(test_ring_slots_round_up),
		cmocka_unit_test(test_otel_sdk_disabled),
		cmocka_unit_test(test_invalid_values_warn_once_and_keep_default),
		cmocka_unit_test(test_each_bad_value_warns_separately),
		cmocka_unit_test(test_empty_value_is_unset),
		cmocka_unit_test(test_unknown_name_suggests_closest),
		cmocka_unit_test(test_foreign_variables_are_ignored),
		cmocka_unit_test(test_log_off_with_bad_value),
		cmocka_unit_test(test_log_off_silences_logger),
		cmocka_unit_test(test_fmt_conversions),
		cmocka_unit_test(test_fmt_null_string),
		cmocka_unit_test(test_fmt_truncates),
	};
	return cmocka_run_group_tests(tests, load_defaults, NULL);
}

/*
 * build/libprof-collector: options (flags, each with an environment
 * variable), start-up, and the main thread's loop, which waits for SIGINT or
 * SIGTERM and meanwhile runs the retention task every --retention-interval.
 * The server itself is http.c; storage store.c. Options: docs/COLLECTOR.md.
 */
#include "collector.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options {
	const char *listen;
	char db[4096];
	int64_t retention_age_s;
	uint64_t retention_bytes;
	int64_t retention_interval_s;
	const char *token;
	uint64_t max_body_bytes, max_profile_bytes;
	unsigned threads;
	enum lp_log_level log;
};

/* The process state: one of it. */
static struct {
	struct options opt;
	struct lp_store *store;
	struct lp_http *http;
} col;

/* ---- option values ------------------------------------------------------------------------ */

typedef int (*parse_fn)(const char *v, struct options *o, const char **why);

static int p_listen(const char *v, struct options *o, const char **why)
{
	const char *colon = strrchr(v, ':');
	char *end;
	unsigned long port;

	if (!colon) {
		*why = "expected HOST:PORT, [IPv6]:PORT or :PORT";
		return -EINVAL;
	}
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || port > 65535) {
		*why = "the port must be 0..65535 (0: any free port)";
		return -EINVAL;
	}
	o->listen = v;
	return 0;
}

static int p_db(const char *v, struct options *o, const char **why)
{
	if (!*v || strlen(v) >= sizeof(o->db)) {
		*why = "expected a file path";
		return -EINVAL;
	}
	strcpy(o->db, v);
	return 0;
}

/* "7d,1GB": an age (s, m, h, d, w) and a size (B, KB, MB, GB, TB: powers of
 * 1024), 0 = no limit; one value alone is a size if it ends in B, else an age,
 * and the other has no limit; "off": keep everything. */
static int p_retention(const char *v, struct options *o, const char **why)
{
	char copy[128], *comma;
	int err = 0;

	*why = "expected AGE,SIZE such as 7d,1GB (age units s m h d w; size units B KB MB GB TB)";
	o->retention_age_s = 0;
	o->retention_bytes = 0;
	if (strcmp(v, "off") == 0 || strcmp(v, "none") == 0)
		return 0;
	if (snprintf(copy, sizeof(copy), "%s", v) >= (int)sizeof(copy) || !*v)
		return -EINVAL;
	comma = strchr(copy, ',');
	if (comma) {
		*comma = 0;
		err = lp_parse_duration_s(copy, &o->retention_age_s);
		err = err ? err : lp_parse_size(comma + 1, &o->retention_bytes);
	} else if (copy[strlen(copy) - 1] == 'B' || copy[strlen(copy) - 1] == 'b') {
		err = lp_parse_size(copy, &o->retention_bytes);
	} else {
		err = lp_parse_duration_s(copy, &o->retention_age_s);
	}
	return err ? -EINVAL : 0;
}

static int p_interval(const char *v, struct options *o, const char **why)
{
	if (lp_parse_duration_s(v, &o->retention_interval_s) || o->retention_interval_s < 1) {
		*why = "expected a duration of at least 1s, such as 30s or 5m";
		return -EINVAL;
	}
	return 0;
}

static int p_token(const char *v, struct options *o, const char **why)
{
	for (const char *c = v; *c; c++) {
		if (*c <= ' ' || *c == 0x7f) {
			*why = "the token must be printable, without spaces";
			return -EINVAL;
		}
	}
	o->token = *v ? v : NULL;
	return 0;
}

static int p_size(const char *v, uint64_t *out, const char **why)
{
	if (lp_parse_size(v, out) || *out < 1024 || *out > (1ull << 32)) {
		*why = "expected a size from 1KiB to 4GiB, such as 16MiB";
		return -EINVAL;
	}
	return 0;
}

static int p_max_body(const char *v, struct options *o, const char **why)
{
	return p_size(v, &o->max_body_bytes, why);
}

static int p_max_profile(const char *v, struct options *o, const char **why)
{
	return p_size(v, &o->max_profile_bytes, why);
}

static int p_threads(const char *v, struct options *o, const char **why)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (*v < '0' || *v > '9' || *end || n < 1 || n > 64) {
		*why = "expected 1..64";
		return -EINVAL;
	}
	o->threads = (unsigned)n;
	return 0;
}

static int p_log(const char *v, struct options *o, const char **why)
{
	static const char *const names[] = { "debug", "info", "warn", "off" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(v, names[i]) == 0) {
			o->log = (enum lp_log_level)i;
			return 0;
		}
	}
	*why = "expected debug, info, warn or off";
	return -EINVAL;
}

static const struct option_def {
	const char *flag, *env, *arg, *help;
	parse_fn parse;
} defs[] = {
	{ "--listen", "LIBPROF_COLLECTOR_LISTEN", "HOST:PORT",
	  "address to serve on (default 127.0.0.1:4040; :PORT = all interfaces,\n"
	  "      port 0 = any free port, printed at start)", p_listen },
	{ "--db", "LIBPROF_COLLECTOR_DB", "FILE",
	  "SQLite database (default $XDG_DATA_HOME/libprof/collector.db, else\n"
	  "      ~/.local/share/libprof/collector.db; directories made 0700, file 0600)", p_db },
	{ "--retention", "LIBPROF_COLLECTOR_RETENTION", "AGE,SIZE",
	  "keep profiles at most AGE old and SIZE in total, deleting the oldest\n"
	  "      first (default 7d,1GB; units s m h d w and B KB MB GB TB, 1KB = 1024 B;\n"
	  "      0 = no limit; one value alone: SIZE if it ends in B, else AGE;\n"
	  "      off = keep everything)", p_retention },
	{ "--retention-interval", "LIBPROF_COLLECTOR_RETENTION_INTERVAL", "DURATION",
	  "how often retention runs (default 60s)", p_interval },
	{ "--token", "LIBPROF_COLLECTOR_TOKEN", "TOKEN",
	  "require 'Authorization: Bearer TOKEN' on every request (default: none;\n"
	  "      prefer the variable: flags show in ps)", p_token },
	{ "--max-body", "LIBPROF_COLLECTOR_MAX_BODY", "SIZE",
	  "largest request body as sent (default 16MiB; larger: 413)", p_max_body },
	{ "--max-profile", "LIBPROF_COLLECTOR_MAX_PROFILE", "SIZE",
	  "largest profile or OTLP request once inflated (default 64MiB; larger: 413)",
	  p_max_profile },
	{ "--threads", "LIBPROF_COLLECTOR_THREADS", "N", "HTTP worker threads (default 4)", p_threads },
	{ "--log", "LIBPROF_COLLECTOR_LOG", "LEVEL",
	  "debug (one line per request), info, warn or off (default info; stderr)", p_log },
};
#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: libprof-collector [OPTION VALUE]...\n\n"
		"The libprof collector: stores profiles sent with the Pyroscope ingest API\n"
		"(POST /ingest) or OTLP (POST /v1development/profiles) in one SQLite file and\n"
		"serves them merged: GET /api/v1/profiles?service=&type=cpu|heap|mutex&from=&until=\n"
		"&trace_id= returns one gzip pprof (go tool pprof URL), /api/v1/services and\n"
		"/api/v1/traces list what is stored (JSON), /healthz answers ok.\n\n"
		"Options (OPTION VALUE or OPTION=VALUE; each also from its environment variable,\n"
		"the flag winning):\n");
	for (size_t i = 0; i < N_DEFS; i++)
		fprintf(f, "  %s %s  (%s)\n      %s\n", defs[i].flag, defs[i].arg, defs[i].env,
			defs[i].help);
	fprintf(f, "  --help\n      this text\n\n"
		"A bad value prints one line naming the option, the value and what is wrong,\n"
		"and the collector exits with status 2 instead of starting: it never runs\n"
		"with a setting other than the one asked for. Start-up failures (port in use,\n"
		"database not writable) exit with status 1. SIGINT or SIGTERM stop it cleanly;\n"
		"a kill at any moment leaves the database intact.\n");
}

static void bad_value(const char *name, const char *v, const char *why)
{
	fprintf(stderr, "libprof-collector: %s '%s': %s\n", name, v, why);
	exit(2);
}

static void default_db(struct options *o)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		snprintf(o->db, sizeof(o->db), "%s/libprof/collector.db", xdg);
	else if (home && *home)
		snprintf(o->db, sizeof(o->db), "%s/.local/share/libprof/collector.db", home);
	else
		snprintf(o->db, sizeof(o->db), "libprof-collector.db");
}

static void parse_options(int argc, char **argv, struct options *o)
{
	const char *why = "";

	o->listen = "127.0.0.1:4040";
	default_db(o);
	o->retention_age_s = 7 * 86400;
	o->retention_bytes = 1ull << 30;
	o->retention_interval_s = 60;
	o->max_body_bytes = 16u << 20;
	o->max_profile_bytes = 64u << 20;
	o->threads = 4;
	o->log = LP_LOG_INFO;
	for (size_t i = 0; i < N_DEFS; i++) {
		const char *v = getenv(defs[i].env);

		if (v && *v && defs[i].parse(v, o, &why))
			bad_value(defs[i].env, v, why);
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a], *eq = strchr(arg, '='), *v;
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg), i;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		for (i = 0; i < N_DEFS; i++) {
			if (strlen(defs[i].flag) == n && strncmp(arg, defs[i].flag, n) == 0)
				break;
		}
		if (i == N_DEFS) {
			fprintf(stderr, "libprof-collector: unknown option '%s' (see --help)\n", arg);
			exit(2);
		}
		if (!eq && a + 1 == argc) {
			fprintf(stderr, "libprof-collector: %s needs a value: %s\n", defs[i].flag,
				defs[i].arg);
			exit(2);
		}
		v = eq ? eq + 1 : argv[++a];
		if (defs[i].parse(v, o, &why))
			bad_value(defs[i].flag, v, why);
	}
}

/* ---- running ------------------------------------------------------------------------------ */

static void retention(void)
{
	const struct options *o = &col.opt;
	long n;

	if (!o->retention_age_s && !o->retention_bytes)
		return;
	n = lp_store_retain(col.store, o->retention_age_s, o->retention_bytes, lp_now_ns());
	if (n < 0)
		lp_log(LP_LOG_WARN, "retention failed: %s", strerror((int)-n));
	else if (n > 0)
		lp_log(LP_LOG_INFO, "retention: deleted %ld profiles", n);
}

int main(int argc, char **argv)
{
	struct lp_http_opts ho;
	struct lp_ctx ctx;
	struct timespec wait;
	sigset_t stop;
	unsigned port = 0;
	int sig, err;

	parse_options(argc, argv, &col.opt);
	lp_log_level = col.opt.log;
	/* blocked before any thread exists, so only sigtimedwait below sees them */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = lp_store_open(&col.store, col.opt.db);
	if (err) {
		fprintf(stderr, "libprof-collector: cannot open the database %s: %s\n", col.opt.db,
			strerror(-err));
		return 1;
	}
	retention();
	ctx.store = col.store;
	ctx.limits.max_body_bytes = col.opt.max_body_bytes;
	ctx.limits.max_profile_bytes = col.opt.max_profile_bytes;
	ho = (struct lp_http_opts){ col.opt.listen, col.opt.token, col.opt.threads, 60 };
	err = lp_http_start(&col.http, &ho, &ctx, &port);
	if (err) {
		fprintf(stderr, "libprof-collector: cannot serve on %s: %s\n", col.opt.listen,
			strerror(-err));
		lp_store_close(col.store);
		return 1;
	}
	lp_log(LP_LOG_INFO, "listening on %.*s:%u (database %s)",
	       (int)(strrchr(col.opt.listen, ':') - col.opt.listen), col.opt.listen, port,
	       col.opt.db);
	for (;;) {
		wait = (struct timespec){ col.opt.retention_interval_s, 0 };
		sig = sigtimedwait(&stop, NULL, &wait);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (sig < 0 && errno == EAGAIN)
			retention();
	}
	lp_log(LP_LOG_INFO, "stopping (signal %d)", sig);
	lp_http_stop(col.http);
	lp_store_close(col.store);
	return 0;
}

/*
 * Configuration: every variable libprof reads, parsed once at load from the
 * environment into struct lp_config. A bad value produces one warning line and
 * the default; an unknown LIBPROF_* name produces a warning with the closest
 * known name. The table below is the single list of variables; docs/CONFIG.md
 * documents each one.
 */
#include "preload.h"

#include <signal.h>
#include <string.h>

enum kind { K_BOOL, K_INT, K_INT64, K_DECIMAL, K_SIGNAL, K_LOG, K_PATH, K_NAME, K_OTEL_BOOL,
	    K_NET /* read by config_net.c or config_pull.c */ };

struct var {
	const char *name;
	enum kind kind;
	long lo, hi;                /* K_INT range; K_DECIMAL range in milli-units */
	long def;                   /* default as the field stores it */
	size_t offset;              /* into struct lp_config */
};

#define F(field) offsetof(struct lp_config, field)

static const struct var vars[] = {
	{ "LIBPROF_ENABLE", K_BOOL, 0, 1, 1, F(opt_enable) },
	{ "LIBPROF_CPU_HZ", K_INT, 0, 1000, 100, F(opt_cpu_hz) },
	{ "LIBPROF_CPU_SIGNAL", K_SIGNAL, 0, 0, SIGPROF, F(opt_cpu_signal) },
	{ "LIBPROF_MAX_DEPTH", K_INT, 4, LP_MAX_DEPTH_LIMIT, 64, F(opt_max_depth) },
	{ "LIBPROF_INTERVAL", K_DECIMAL, 100, 3600000, 10000, F(opt_interval_ns) },
	{ "LIBPROF_FOLLOW_EXEC", K_BOOL, 0, 1, 1, F(opt_follow_exec) },
	{ "LIBPROF_RING_SLOTS", K_INT, 256, 65536, 2048, F(opt_ring_slots) },
	{ "LIBPROF_MAX_STACKS", K_INT, 1024, 1048576, 65536, F(opt_max_stacks) },
	{ "LIBPROF_HEAP_RATE", K_INT64, 0, 1073741824, 524288, F(opt_heap_rate) },
	{ "LIBPROF_HEAP_MAX_LIVE", K_INT, 1024, 1048576, 32768, F(opt_heap_max_live) },
	{ "LIBPROF_MUTEX_RATE", K_INT, 0, 1000000, 10, F(opt_mutex_rate) },
	{ "LIBPROF_TRACE", K_BOOL, 0, 1, 1, F(opt_trace) },
	{ "LIBPROF_LOG", K_LOG, 0, 0, LP_LOG_WARN, F(opt_log) },
	{ "LIBPROF_OUTPUT_DIR", K_PATH, 0, 0, 0, F(opt_output_dir) },
	{ "OTEL_SERVICE_NAME", K_NAME, 0, 0, 0, F(opt_service) },
	{ "OTEL_SDK_DISABLED", K_OTEL_BOOL, 0, 1, 1, F(opt_enable) },
	{ "LIBPROF_UPLOAD_TIMEOUT", K_DECIMAL, 100, 300000, 10000, F(opt_upload_timeout_ns) },
	{ "LIBPROF_EXIT_TIMEOUT", K_DECIMAL, 0, 60000, 2000, F(opt_exit_timeout_ns) },
	{ "LIBPROF_UPLOAD_QUEUE", K_INT, 1, 1024, 64, F(opt_upload_queue) },
	{ "LIBPROF_UPLOAD_QUEUE_BYTES", K_INT64, 1048576, 1073741824, 33554432,
	  F(opt_upload_queue_bytes) },
	{ "LIBPROF_PROTOCOL", K_NET, 0, 0, 0, 0 },
	{ "LIBPROF_ENDPOINT", K_NET, 0, 0, 0, 0 },
	{ "LIBPROF_HEADERS", K_NET, 0, 0, 0, 0 },
	{ "LIBPROF_TLS_CA", K_NET, 0, 0, 0, 0 },
	{ "LIBPROF_PPROF_LISTEN", K_NET, 0, 0, 0, 0 },
	{ "LIBPROF_PPROF_TOKEN", K_NET, 0, 0, 0, 0 },
	{ "OTEL_RESOURCE_ATTRIBUTES", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_ENDPOINT", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_HEADERS", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_PROFILES_HEADERS", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_TIMEOUT", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_COMPRESSION", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_PROTOCOL", K_NET, 0, 0, 0, 0 },
	{ "OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL", K_NET, 0, 0, 0, 0 },
};

#define N_VARS (sizeof(vars) / sizeof(vars[0]))

const char *const lp_config_names[] = {
	"LIBPROF_ENABLE", "LIBPROF_CPU_HZ", "LIBPROF_CPU_SIGNAL", "LIBPROF_MAX_DEPTH",
	"LIBPROF_INTERVAL", "LIBPROF_FOLLOW_EXEC", "LIBPROF_RING_SLOTS",
	"LIBPROF_MAX_STACKS", "LIBPROF_HEAP_RATE", "LIBPROF_HEAP_MAX_LIVE", "LIBPROF_MUTEX_RATE",
	"LIBPROF_TRACE", "LIBPROF_LOG", "LIBPROF_OUTPUT_DIR", "OTEL_SERVICE_NAME",
	"OTEL_SDK_DISABLED", "LIBPROF_UPLOAD_TIMEOUT", "LIBPROF_EXIT_TIMEOUT",
	"LIBPROF_UPLOAD_QUEUE", "LIBPROF_UPLOAD_QUEUE_BYTES", "LIBPROF_PROTOCOL",
	"LIBPROF_ENDPOINT", "LIBPROF_HEADERS", "LIBPROF_TLS_CA", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_PROFILES_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL", NULL
};

static const struct { const char *name; int sig; } signals[] = {
	{ "SIGPROF", SIGPROF }, { "SIGVTALRM", SIGVTALRM }, { "SIGALRM", SIGALRM },
	{ "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 },
};

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int streq_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

/* Whole decimal number with no sign, spaces or suffix; -1 when not one. */
static long parse_whole(const char *s)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000000000L)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* "12", "0.5", "3600.000": thousandths, or -1. Locale-independent. */
static long parse_milli(const char *s)
{
	long whole = 0, frac = 0, scale = 100;
	int digits = 0;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		if (whole > 100000000)
			return -1;
		whole = whole * 10 + (*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
			frac += (*s - '0') * scale;
			scale /= 10;
		}
	}
	return *s || !digits ? -1 : whole * 1000 + frac;
}

static int parse_bool(const char *s)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	for (size_t i = 0; i < 4; i++) {
		if (streq_nocase(s, yes[i]))
			return 1;
		if (streq_nocase(s, no[i]))
			return 0;
	}
	return -1;
}

/* A signal a profiler may borrow: SIGPROF, SIGVTALRM, SIGALRM, SIGUSR1/2, SIGRTMIN+n. */
static int parse_signal(const char *s)
{
	const char *name = s;
	if (s[0] >= '0' && s[0] <= '9') {
		long n = parse_whole(s);
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			if (signals[i].sig == n)
				return (int)n;
		return n >= SIGRTMIN && n <= SIGRTMAX ? (int)n : -1;
	}
	if (strncmp(name, "SIG", 3) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcmp(name, signals[i].name) == 0)
			return signals[i].sig;
	if (strncmp(name, "SIGRTMIN+", 9) == 0) {
		long n = parse_whole(name + 9);
		if (n >= 0 && n <= SIGRTMAX - SIGRTMIN)
			return SIGRTMIN + (int)n;
	}
	return -1;
}

static int parse_log(const char *s)
{
	static const char *const names[] = { "debug", "info", "warn", "off" };
	for (int i = 0; i < 4; i++)
		if (streq_nocase(s, names[i]))
			return i;
	return -1;
}

/* Levenshtein distance, ignoring ASCII case. */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[64], la = (unsigned)strlen(a), lb = (unsigned)strlen(b);
	if (la >= 63 || lb >= 63)
		return 99;
	for (unsigned j = 0; j <= lb; j++)
		row[j] = j;
	for (unsigned i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = i;
		for (unsigned j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned cost = ascii_lower((unsigned char)a[i - 1]) ==
					ascii_lower((unsigned char)b[j - 1]) ? 0 : 1;
			unsigned best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

void lp_config_say(void (*warn)(const char *), const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	lp_vfmt(line, sizeof(line), fmt, ap);
	va_end(ap);
	warn(line);
}

static const char *range_text(const struct var *v, char *buf, size_t size)
{
	switch (v->kind) {
	case K_BOOL:
		return "one of 1, 0, true, false, yes, no, on, off";
	case K_INT:
	case K_INT64:
		lp_fmt(buf, size, "a whole number from %ld to %ld", v->lo, v->hi);
		return buf;
	case K_DECIMAL:
		lp_fmt(buf, size, "a number of seconds from %ld.%ld to %ld", v->lo / 1000,
		       (v->lo % 1000) / 100, v->hi / 1000);
		return buf;
	case K_SIGNAL:
		return "one of SIGPROF, SIGVTALRM, SIGALRM, SIGUSR1, SIGUSR2, SIGRTMIN+n";
	case K_LOG:
		return "one of debug, info, warn, off";
	default:
		return "a valid value";
	}
}

static const char *default_text(const struct var *v, char *buf, size_t size)
{
	switch (v->kind) {
	case K_BOOL:
		return v->def ? "1" : "0";
	case K_DECIMAL:
		if (v->def % 1000)
			lp_fmt(buf, size, "%ld.%03ld", v->def / 1000, v->def % 1000);
		else
			lp_fmt(buf, size, "%ld", v->def / 1000);
		return buf;
	case K_SIGNAL:
		return "SIGPROF";
	case K_LOG:
		return "warn";
	default:
		lp_fmt(buf, size, "%ld", v->def);
		return buf;
	}
}

static void store_default(struct lp_config *cfg, const struct var *v)
{
	char *field = (char *)cfg + v->offset;
	switch (v->kind) {
	case K_DECIMAL:
		*(int64_t *)field = (int64_t)v->def * 1000000;
		break;
	case K_INT64:
		*(int64_t *)field = v->def;
		break;
	case K_PATH:
	case K_NAME:
		field[0] = '\0';
		break;
	case K_LOG:
		*(enum lp_log_level *)field = (enum lp_log_level)v->def;
		break;
	case K_OTEL_BOOL:
	case K_NET:
		break;              /* shares opt_enable with LIBPROF_ENABLE; config_net.c */
	default:
		*(int *)field = (int)v->def;
	}
}

static void copy_text(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Returns 1 when the value was stored, 0 when it is invalid. */
static int store_value(struct lp_config *cfg, const struct var *v, const char *val)
{
	char *field = (char *)cfg + v->offset;
	long n = -1;
	switch (v->kind) {
	case K_BOOL:
		n = parse_bool(val);
		break;
	case K_OTEL_BOOL:
		/* OTel: disabled only for case-insensitive "true"; anything else is false. */
		if (streq_nocase(val, "true"))
			*(int *)field = 0;
		return 1;
	case K_INT:
		n = parse_whole(val);
		if (n < v->lo || n > v->hi)
			n = -1;
		break;
	case K_INT64:
		n = parse_whole(val);
		if (n < v->lo || n > v->hi)
			return 0;
		*(int64_t *)field = n;
		return 1;
	case K_DECIMAL:
		n = parse_milli(val);
		if (n < v->lo || n > v->hi)
			return 0;
		*(int64_t *)field = (int64_t)n * 1000000;
		return 1;
	case K_SIGNAL:
		n = parse_signal(val);
		break;
	case K_LOG:
		n = parse_log(val);
		if (n >= 0)
			*(enum lp_log_level *)field = (enum lp_log_level)n;
		return n >= 0;
	case K_PATH:
		if (val[0] != '/' || strlen(val) >= LP_PATH_MAX - 64)
			return 0;
		copy_text(field, LP_PATH_MAX, val);
		return 1;
	case K_NAME:
		copy_text(field, LP_NAME_MAX, val);
		return 1;
	case K_NET:
		return 1;
	}
	if (n < 0)
		return 0;
	*(int *)field = (int)n;
	return 1;
}

static const char *env_value(char *const *envp, const char *name)
{
	size_t len = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

static void warn_unknown(char *const *envp, void (*warn)(const char *))
{
	for (; envp && *envp; envp++) {
		const char *e = *envp, *eq = strchr(e, '=');
		char name[128];
		/* LIBPROF_COLLECTOR_* configure the collector program, not the library. */
		if (strncmp(e, "LIBPROF_", 8) != 0 || strncmp(e, "LIBPROF_COLLECTOR_", 18) == 0 || !eq)
			continue;
		size_t len = (size_t)(eq - e) < sizeof(name) - 1 ? (size_t)(eq - e) : sizeof(name) - 1;
		memcpy(name, e, len);
		name[len] = '\0';
		const char *best = NULL;
		unsigned best_d = 99;
		int known = 0;
		for (size_t i = 0; i < N_VARS; i++) {
			if (strcmp(vars[i].name, name) == 0)
				known = 1;
			unsigned d = edit_distance(name, vars[i].name);
			if (d < best_d) {
				best_d = d;
				best = vars[i].name;
			}
		}
		if (known)
			continue;
		if (best && best_d <= 4)
			lp_config_say(warn, "%s is not a libprof variable (did you mean %s?); ignored",
			    name, best);
		else
			lp_config_say(warn, "%s is not a libprof variable; ignored", name);
	}
}

static unsigned round_pow2(unsigned v)
{
	unsigned p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

void lp_config_load(struct lp_config *cfg, char *const *envp, void (*warn)(const char *))
{
	char rbuf[96], dbuf[32];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_VARS; i++)
		store_default(cfg, &vars[i]);
	/* LIBPROF_LOG first, so that LIBPROF_LOG=off silences the other warnings. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < N_VARS; i++) {
			const struct var *v = &vars[i];
			if ((v->kind == K_LOG) != (pass == 0) || v->kind == K_NET)
				continue;
			const char *val = env_value(envp, v->name);
			if (!val || !*val)      /* OTel rule: an empty value is unset */
				continue;
			if (store_value(cfg, v, val)) {
				if (v->kind == K_NAME && strlen(val) >= LP_NAME_MAX)
					lp_config_say(warn, "%s is longer than %d characters; using its first %d",
					    v->name, LP_NAME_MAX - 1, LP_NAME_MAX - 1);
				continue;
			}
			store_default(cfg, v);
			/* Long values are shown cut, so the line always says what is used. */
			int shown = strlen(val) > 80 ? 80 : (int)strlen(val);
			const char *more = strlen(val) > 80 ? "..." : "";
			if (v->kind == K_PATH && val[0] == '/')
				lp_config_say(warn, "%s=\"%.*s%s\" is too long; using the default directory",
				    v->name, shown, val, more);
			else if (v->kind == K_PATH)
				lp_config_say(warn, "%s=\"%.*s%s\" is not an absolute path; using the default directory",
				    v->name, shown, val, more);
			else
				lp_config_say(warn, "%s=\"%.*s%s\" is not %s; using %s", v->name, shown, val, more,
				    range_text(v, rbuf, sizeof(rbuf)),
				    default_text(v, dbuf, sizeof(dbuf)));
		}
	}
	cfg->opt_ring_slots = (int)round_pow2((unsigned)cfg->opt_ring_slots);
	const char *sig = env_value(envp, "LIBPROF_CPU_SIGNAL");
	cfg->opt_cpu_signal_explicit = sig && *sig && parse_signal(sig) > 0;
	lp_config_net_load(cfg, envp, warn);
	lp_config_pull_load(cfg, envp, warn);
	warn_unknown(envp, warn);
}

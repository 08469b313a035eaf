/*
 * The streaming variables: which protocol, where to, with which headers, and
 * the resource attributes that name the source. They depend on one another
 * (LIBPROF_ENDPOINT picks the default protocol; the OTLP URL comes from one of
 * three variables), so they are resolved here, after config.c's table, which
 * lists their names. The OpenTelemetry rules are docs/wire-formats.md section
 * 5; docs/CONFIG.md documents each variable. Only the chosen protocol's
 * variables are read: OTEL_EXPORTER_OTLP_* set for another component of the
 * process do not concern libprof unless LIBPROF_PROTOCOL=otlp.
 */
#include "preload.h"

#include <errno.h>
#include <strings.h>
#include <unistd.h>

#define PYROSCOPE_DEFAULT "http://localhost:4040"
#define OTLP_DEFAULT "http://localhost:4318"
#define OTLP_PATH "v1development/profiles"
#define URL_INPUT_MAX 768           /* leaves room for the path and query added later */

const char *lp_env_value(char *const *envp, const char *name)
{
	size_t len = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return (*envp)[len + 1] ? *envp + len + 1 : NULL;  /* empty = unset */
	return NULL;
}

/* A value as shown in a warning: at most 80 characters, "..." when cut. */
#define SHOWN(v) (strlen(v) > 80 ? 80 : (int)strlen(v)), (v), (strlen(v) > 80 ? "..." : "")

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int same_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int lp_percent_decode(const char *in, size_t n, char *out, size_t size)
{
	size_t o = 0;
	if (!size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];
		if (c == '%') {
			int hi = i + 2 < n ? hex_digit(in[i + 1]) : -1;
			int lo = i + 2 < n ? hex_digit(in[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

/* An HTTP field name character (RFC 9110 tchar). */
static int tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *trim_end(const char *p, const char *end)
{
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end;
}

/* s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
static int utf8_ok_n(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p++, more = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 :
					 c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : 9;
		if (more == 9 || (size_t)(end - p) < more)
			return 0;
		unsigned v = c & (0x3f >> more);
		for (unsigned k = 0; k < more; k++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			v = v << 6 | (*p & 0x3f);
		}
		if ((more == 2 && (v < 0x800 || (v >= 0xd800 && v < 0xe000))) ||
		    (more == 3 && (v < 0x10000 || v > 0x10ffff)))
			return 0;
	}
	return 1;
}

static int utf8_ok(const char *s)
{
	return utf8_ok_n(s, strlen(s));
}

/* Removes the pair of key from out[0..*used), for a key given again later. */
static void drop_pair(char *out, size_t *used, const char *key, size_t key_len, int *n)
{
	for (size_t at = 0; at < *used;) {
		size_t k = strlen(out + at) + 1, v = strlen(out + at + k) + 1;
		if (k - 1 == key_len && memcmp(out + at, key, key_len) == 0) {
			memmove(out + at, out + at + k + v, *used - at - k - v);
			*used -= k + v;
			(*n)--;
			return;
		}
		at += k + v;
	}
}

/* Appends one member; 0 or -EINVAL with why set. */
static int add_member(const char *key, size_t key_len, const char *val, size_t val_len,
		      int headers, char *out, size_t size, size_t *used, int *n, char *why,
		      size_t why_size)
{
	char value[LP_LIST_MAX];
	int len = lp_percent_decode(val, val_len, value, sizeof(value));
	if (len < 0) {
		lp_fmt(why, why_size, "the value of \"%.*s\" has a bad percent escape", (int)key_len,
		       key);
		return -EINVAL;
	}
	if ((size_t)len != strlen(value) || (headers && strpbrk(value, "\r\n"))) {
		lp_fmt(why, why_size, "the value of \"%.*s\" decodes to a control character",
		       (int)key_len, key);
		return -EINVAL;
	}
	if (headers) {
		for (size_t i = 0; i < key_len; i++)
			if (!tchar((unsigned char)key[i])) {
				lp_fmt(why, why_size, "\"%.*s\" is not an HTTP header name",
				       (int)key_len, key);
				return -EINVAL;
			}
		if (!len) {
			lp_fmt(why, why_size, "\"%.*s\" has an empty value", (int)key_len, key);
			return -EINVAL;
		}
	} else if (!utf8_ok(value) || !utf8_ok_n(key, key_len)) {
		/* OTLP strings must be UTF-8: a strict reader refuses the whole request. */
		lp_fmt(why, why_size, "member \"%.*s\" is not UTF-8 once decoded", (int)key_len, key);
		return -EINVAL;
	} else {
		drop_pair(out, used, key, key_len, n);
	}
	size_t need = key_len + (size_t)len + 3;
	if (*used + need > size) {
		lp_fmt(why, why_size, "the list is longer than %zu bytes", size);
		return -EINVAL;
	}
	memcpy(out + *used, key, key_len);
	*used += key_len;
	if (headers) {
		memcpy(out + *used, ": ", 2);
		*used += 2;
	} else {
		out[(*used)++] = '\0';
	}
	memcpy(out + *used, value, (size_t)len + 1);
	*used += (size_t)len + 1;
	(*n)++;
	return 0;
}

int lp_kv_list_parse(const char *text, int headers, char *out, size_t size, char *why,
		     size_t why_size)
{
	size_t used = 0;
	int n = 0, member = 0;
	for (const char *p = text; *p;) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		const char *b = skip_ows(p, end), *e = trim_end(b, end);
		member++;
		if (b < e) {
			const char *eq = memchr(b, '=', (size_t)(e - b));
			if (!eq) {
				lp_fmt(why, why_size, "member %d has no '='", member);
				return -EINVAL;
			}
			const char *kend = trim_end(b, eq), *v = skip_ows(eq + 1, e);
			if (kend == b) {
				lp_fmt(why, why_size, "member %d has an empty name", member);
				return -EINVAL;
			}
			if (add_member(b, (size_t)(kend - b), v, (size_t)(e - v), headers, out, size,
				       &used, &n, why, why_size) < 0)
				return -EINVAL;
		}
		p = comma ? comma + 1 : end;
	}
	return n;
}

int lp_url_check(const char *url, int base)
{
	const char *host;
	if (strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return -EINVAL;
	if (!*host || *host == '/' || *host == '?' || *host == '#' || strlen(url) > URL_INPUT_MAX)
		return -EINVAL;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#' || (base && *p == '?'))
			return -EINVAL;
	return 0;
}

/* ---- resolution ----------------------------------------------------------- */

struct net {
	struct lp_config *cfg;
	char *const *envp;
	void (*warn)(const char *);
	char endpoint[LP_URL_MAX];  /* LIBPROF_ENDPOINT when set and valid, else "" */
};

/* OTEL_RESOURCE_ATTRIBUTES, read for every protocol: service.name names files too. */
static void load_resource(struct net *n)
{
	struct lp_config *cfg = n->cfg;
	const char *val = lp_env_value(n->envp, "OTEL_RESOURCE_ATTRIBUTES");
	char why[160];
	if (!val)
		return;
	int count = lp_kv_list_parse(val, 0, cfg->opt_resource, sizeof(cfg->opt_resource), why,
				     sizeof(why));
	if (count < 0) {
		lp_config_say(n->warn, "OTEL_RESOURCE_ATTRIBUTES=\"%.*s%s\" is not a k=v,... list (%s); "
		    "using no resource attributes", SHOWN(val), why);
		cfg->opt_resource[0] = '\0';
		cfg->opt_n_resource = 0;
		return;
	}
	cfg->opt_n_resource = count;
	size_t used = 0;
	for (int i = 0; i < count; i++) {
		size_t k = strlen(cfg->opt_resource + used) + 1;
		used += k + strlen(cfg->opt_resource + used + k) + 1;
	}
	/* service.name is carried apart (OTEL_SERVICE_NAME wins over it). */
	const char *key = "service.name";
	for (size_t at = 0; at < used; ) {
		const char *k = cfg->opt_resource + at, *v = k + strlen(k) + 1;
		size_t pair = strlen(k) + strlen(v) + 2;
		if (strcmp(k, key) == 0) {
			if (!cfg->opt_service[0] && *v) {
				size_t len = strlen(v) < LP_NAME_MAX - 1 ? strlen(v) : LP_NAME_MAX - 1;
				memcpy(cfg->opt_service, v, len);
				cfg->opt_service[len] = '\0';
			}
			memmove(cfg->opt_resource + at, cfg->opt_resource + at + pair,
				used - at - pair);
			used -= pair;
			cfg->opt_n_resource--;
			break;
		}
		at += pair;
	}
}

static int load_protocol(struct net *n)
{
	static const char *const names[] = { "file", "pyroscope", "otlp" };
	const char *val = lp_env_value(n->envp, "LIBPROF_PROTOCOL");
	if (!val)
		return -1;
	for (int i = 0; i < 3; i++)
		if (same_nocase(val, names[i]))
			return i;
	const char *endpoint = lp_env_value(n->envp, "LIBPROF_ENDPOINT");
	lp_config_say(n->warn, "LIBPROF_PROTOCOL=\"%.*s%s\" is not one of pyroscope, otlp, file; using %s",
	    SHOWN(val), endpoint && lp_url_check(endpoint, 1) == 0
	    ? "pyroscope (LIBPROF_ENDPOINT is set)" : "file");
	return -1;
}

/* A header list variable into cfg (replacing what is there); 0 when unset or bad. */
static void load_headers(struct net *n, const char *name)
{
	const char *val = lp_env_value(n->envp, name);
	char why[160];
	if (!val)
		return;
	int count = lp_kv_list_parse(val, 1, n->cfg->opt_headers, sizeof(n->cfg->opt_headers),
				     why, sizeof(why));
	if (count < 0) {
		/* The value is not shown: headers carry credentials. */
		lp_config_say(n->warn, "%s is not a valid k=v,... header list (%s); sending no header from it",
		    name, why);
		n->cfg->opt_headers[0] = '\0';
		count = 0;
	}
	n->cfg->opt_n_headers = count;
}

/* A base URL from name, trailing slashes removed, into out; 0 when set and valid. */
static int base_url(struct net *n, const char *name, const char *instead, char *out)
{
	const char *val = lp_env_value(n->envp, name);
	if (!val)
		return -ENOENT;
	if (lp_url_check(val, 1) < 0) {
		lp_config_say(n->warn, "%s=\"%.*s%s\" is not an http:// or https:// URL without query; %s",
		    name, SHOWN(val), instead);
		return -EINVAL;
	}
	size_t len = strlen(val);
	while (len > 0 && val[len - 1] == '/')
		len--;
	memcpy(out, val, len);
	out[len] = '\0';
	return 0;
}

static void load_pyroscope(struct net *n)
{
	struct lp_config *cfg = n->cfg;
	lp_fmt(cfg->opt_url, sizeof(cfg->opt_url), "%s",
	       n->endpoint[0] ? n->endpoint : PYROSCOPE_DEFAULT);
	load_headers(n, "LIBPROF_HEADERS");
}

/* OTEL_EXPORTER_OTLP_PROFILES_x, else OTEL_EXPORTER_OTLP_x: the name that is set. */
static const char *otel_name(struct net *n, const char *specific, const char *generic)
{
	return lp_env_value(n->envp, specific) ? specific : generic;
}

static void load_otlp_timeout(struct net *n)
{
	const char *name = otel_name(n, "OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT",
				     "OTEL_EXPORTER_OTLP_TIMEOUT");
	const char *val = lp_env_value(n->envp, name);
	long ms = 0;
	if (!val)
		return;             /* LIBPROF_UPLOAD_TIMEOUT or its default */
	for (const char *p = val; ms >= 0 && *p; p++)
		ms = *p >= '0' && *p <= '9' && ms < 100000000 ? ms * 10 + (*p - '0') : -1;
	if (ms < 100 || ms > 300000) {
		lp_config_say(n->warn, "%s=\"%.*s%s\" is not a whole number of milliseconds from 100 to "
		    "300000; using %lld", name, SHOWN(val),
		    (long long)(n->cfg->opt_upload_timeout_ns / 1000000));
		return;
	}
	n->cfg->opt_upload_timeout_ns = (int64_t)ms * 1000000;
}

static void load_otlp(struct net *n)
{
	struct lp_config *cfg = n->cfg;
	const char *val = lp_env_value(n->envp, "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT");
	char base[LP_URL_MAX];
	if (val && lp_url_check(val, 0) == 0) {
		lp_fmt(cfg->opt_url, sizeof(cfg->opt_url), "%s", val);
	} else {
		if (val)
			lp_config_say(n->warn, "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT=\"%.*s%s\" is not an http:// "
			    "or https:// URL; using the base endpoint", SHOWN(val));
		/* OTEL_EXPORTER_OTLP_ENDPOINT, else LIBPROF_ENDPOINT, else the default. */
		int rc = base_url(n, "OTEL_EXPORTER_OTLP_ENDPOINT", "using " OTLP_DEFAULT, base);
		if (rc < 0)
			lp_fmt(base, sizeof(base), "%s", rc == -ENOENT && n->endpoint[0]
			       ? n->endpoint : OTLP_DEFAULT);
		lp_fmt(cfg->opt_url, sizeof(cfg->opt_url), "%s/" OTLP_PATH, base);
	}
	load_headers(n, otel_name(n, "OTEL_EXPORTER_OTLP_PROFILES_HEADERS",
				  "OTEL_EXPORTER_OTLP_HEADERS"));
	if (lp_env_value(n->envp, "LIBPROF_HEADERS"))
		lp_config_say(n->warn, "LIBPROF_HEADERS is for the Pyroscope protocol; with LIBPROF_PROTOCOL=otlp "
		    "use OTEL_EXPORTER_OTLP_HEADERS; ignored");
	load_otlp_timeout(n);
	const char *name = otel_name(n, "OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION",
				     "OTEL_EXPORTER_OTLP_COMPRESSION");
	val = lp_env_value(n->envp, name);
	if (val && (same_nocase(val, "gzip") || same_nocase(val, "none")))
		cfg->opt_otlp_gzip = same_nocase(val, "gzip");
	else if (val)
		lp_config_say(n->warn, "%s=\"%.*s%s\" is not gzip or none; using none", name, SHOWN(val));
	name = otel_name(n, "OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL");
	val = lp_env_value(n->envp, name);
	if (val && strcmp(val, "http/protobuf") != 0)
		lp_config_say(n->warn, "%s=\"%.*s%s\": libprof sends OTLP as http/protobuf only; using it",
		    name, SHOWN(val));
}

static void load_tls_ca(struct net *n)
{
	const char *val = lp_env_value(n->envp, "LIBPROF_TLS_CA");
	if (!val)
		return;
	if (val[0] != '/' || strlen(val) >= LP_PATH_MAX || access(val, R_OK) < 0) {
		lp_config_say(n->warn, "LIBPROF_TLS_CA=\"%.*s%s\" is not the absolute path of a readable file; "
		    "using the system's CA certificates", SHOWN(val));
		return;
	}
	lp_fmt(n->cfg->opt_tls_ca, sizeof(n->cfg->opt_tls_ca), "%s", val);
}

void lp_config_net_load(struct lp_config *cfg, char *const *envp, void (*warn)(const char *))
{
	struct net n = { cfg, envp, warn, "" };
	cfg->opt_protocol = LP_PROTO_FILE;
	cfg->opt_url[0] = cfg->opt_headers[0] = cfg->opt_resource[0] = cfg->opt_tls_ca[0] = '\0';
	cfg->opt_n_headers = cfg->opt_n_resource = cfg->opt_otlp_gzip = 0;
	load_resource(&n);
	int proto = load_protocol(&n);
	/* An endpoint that is set but unusable counts as unset. */
	const char *endpoint = lp_env_value(envp, "LIBPROF_ENDPOINT");
	int endpoint_ok = endpoint && lp_url_check(endpoint, 1) == 0;
	if (proto < 0)
		proto = endpoint_ok ? LP_PROTO_PYROSCOPE : LP_PROTO_FILE;
	if (endpoint)
		base_url(&n, "LIBPROF_ENDPOINT", proto == LP_PROTO_PYROSCOPE ? "using " PYROSCOPE_DEFAULT
			 : proto == LP_PROTO_OTLP ? "ignored" : "profiles are written as files",
			 n.endpoint);
	cfg->opt_protocol = (enum lp_protocol)proto;
	if (proto == LP_PROTO_PYROSCOPE)
		load_pyroscope(&n);
	else if (proto == LP_PROTO_OTLP)
		load_otlp(&n);
	if (proto != LP_PROTO_FILE)
		load_tls_ca(&n);
}

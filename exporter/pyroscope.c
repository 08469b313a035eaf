/*
 * The Pyroscope ingest request (docs/wire-formats.md section 3): one POST per
 * profile to {endpoint}/ingest?name=<service>{<labels>}&from=&until=&spyName=libprof,
 * a multipart/form-data body with the gzip pprof in the file field `profile`
 * and a `sample_type_config` naming each sample type's units and aggregation.
 * Labels are the resource attributes, made safe for the name's grammar and
 * for Prometheus-style label names (docs/ARCHITECTURE.md, "Streaming").
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_LABELS 32               /* what Pyroscope and our collector accept */

size_t lp_url_encode(const char *in, char *out, size_t size)
{
	size_t o = 0;
	for (; *in && size; in++) {
		unsigned char c = (unsigned char)*in;
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (o + (plain ? 1 : 3) >= size)
			break;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = "0123456789ABCDEF"[c >> 4];
			out[o++] = "0123456789ABCDEF"[c & 15];
		}
	}
	if (size)
		out[o] = '\0';
	return o;
}

static int label_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Appends s to out[*o..size), each byte passed through map. */
static void put(char *out, size_t size, size_t *o, const char *s, int (*map)(int, size_t))
{
	for (size_t i = 0; s[i]; i++)
		if (*o + 1 < size)
			out[(*o)++] = (char)map((unsigned char)s[i], i);
}

static int key_map(int c, size_t i)
{
	(void)i;
	return label_char(c) ? c : '_';
}

static int value_map(int c, size_t i)
{
	(void)i;
	return c < ' ' || c == 0x7f || c == ',' || c == '{' || c == '}' || c == '=' ? '_' : c;
}

static int keep(int c, size_t i)
{
	(void)i;
	return c;
}

size_t lp_pyroscope_name(const char *service, const char *resource, int n_resource, char *out,
			 size_t size)
{
	size_t o = 0;
	put(out, size, &o, service, keep);
	const char *p = resource;
	for (int i = 0; i < n_resource && i < MAX_LABELS; i++) {
		const char *k = p, *v = k + strlen(k) + 1;
		p = v + strlen(v) + 1;
		put(out, size, &o, i ? "," : "{", keep);
		if (k[0] >= '0' && k[0] <= '9')
			put(out, size, &o, "_", keep);
		put(out, size, &o, k, key_map);
		put(out, size, &o, "=", keep);
		put(out, size, &o, v, value_map);
	}
	if (n_resource > 0)
		put(out, size, &o, "}", keep);
	if (size)
		out[o] = '\0';
	return o;
}

/* Pyroscope's units and aggregation for one of our sample types. */
static void type_config(const char *type, const char *unit, const char **units,
			const char **aggregation, const char **display)
{
	*display = NULL;
	*aggregation = strncmp(type, "inuse_", 6) == 0 ? "average" : "sum";
	if (strcmp(type, "contentions") == 0) {
		*units = "lock_samples";
		*display = "mutex_count";
	} else if (strcmp(type, "delay") == 0) {
		*units = "lock_nanoseconds";
		*display = "mutex_duration";
	} else if (strcmp(unit, "count") == 0) {
		size_t n = strlen(type);
		*units = n > 8 && strcmp(type + n - 8, "_objects") == 0 ? "objects" : "samples";
	} else {
		*units = unit;          /* bytes, nanoseconds */
	}
}

size_t lp_pyroscope_types_json(const struct lp_profile_desc *d, char *out, size_t size)
{
	size_t o = lp_fmt(out, size, "{");
	for (int i = 0; i < d->n_types && o < size; i++) {
		const char *units, *agg, *display;
		type_config(d->types[i][0], d->types[i][1], &units, &agg, &display);
		o += lp_fmt(out + o, size - o, "%s\"%s\":{\"units\":\"%s\",\"aggregation\":\"%s\"%s%s%s}",
			    i ? "," : "", d->types[i][0], units, agg,
			    display ? ",\"display-name\":\"" : "", display ? display : "",
			    display ? "\"" : "");
	}
	if (o < size)
		o += lp_fmt(out + o, size - o, "}");
	return o;
}

/* A boundary that does not occur in data. */
static void boundary(const uint8_t *data, size_t len, char *out, size_t size)
{
	static uint64_t x;
	if (!x)
		x = lp_now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)&x;
	do {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		lp_fmt(out, size, "libprof-%lx%lx", (unsigned long)x, (unsigned long)(x * 31));
	} while (memmem(data, len, out, strlen(out)));
}

int lp_pyroscope_request(const char *base, const char *name_enc, const struct lp_profile_desc *d,
			 const uint8_t *gz, size_t gz_len, char **url, uint8_t **body,
			 size_t *body_len, size_t *gz_off, char *ct, size_t ct_size)
{
	char b[48], json[1024], head[512], tail[1400];
	int64_t from = d->time_nanos / 1000000000;
	int64_t until = (d->time_nanos + d->duration_nanos + 999999999) / 1000000000;
	if (until <= from)
		until = from + 1;
	size_t url_len = strlen(base) + strlen(name_enc) + 96;
	*url = malloc(url_len);
	if (!*url)
		return -ENOMEM;
	lp_fmt(*url, url_len, "%s/ingest?name=%s&from=%lld&until=%lld&spyName=libprof", base,
	       name_enc, (long long)from, (long long)until);
	boundary(gz, gz_len, b, sizeof(b));
	lp_pyroscope_types_json(d, json, sizeof(json));
	size_t h = lp_fmt(head, sizeof(head), "--%s\r\nContent-Disposition: form-data; name=\"profile\"; "
			  "filename=\"profile.pprof\"\r\nContent-Type: application/octet-stream\r\n\r\n", b);
	size_t t = lp_fmt(tail, sizeof(tail), "\r\n--%s\r\nContent-Disposition: form-data; "
			  "name=\"sample_type_config\"; filename=\"sample_type_config.json\"\r\n"
			  "Content-Type: application/json\r\n\r\n%s\r\n--%s--\r\n", b, json, b);
	*body = malloc(h + gz_len + t);
	if (!*body) {
		free(*url);
		*url = NULL;
		return -ENOMEM;
	}
	memcpy(*body, head, h);
	memcpy(*body + h, gz, gz_len);
	memcpy(*body + h + gz_len, tail, t);
	*body_len = h + gz_len + t;
	*gz_off = h;
	lp_fmt(ct, ct_size, "multipart/form-data; boundary=%s", b);
	return 0;
}

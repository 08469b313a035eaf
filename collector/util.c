/*
 * Small shared pieces of the collector: the logger, growable buffers with a
 * cap, gzip both ways (zlib) with a streaming cap on inflation, and the
 * parsers of durations, sizes and times used by the options and the query API.
 */
#include "collector.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

enum lp_log_level lp_log_level = LP_LOG_INFO;

void lp_log(enum lp_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn" };
	char line[1024];
	va_list ap;
	int n;

	if (lvl < lp_log_level || lvl >= LP_LOG_OFF)
		return;
	n = snprintf(line, sizeof(line), "libprof-collector: %s: ", names[lvl]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* one fputs per line: lines of concurrent requests do not interleave */
	strcat(line, "\n");
	fputs(line, stderr);
}

/* ---- buffers ---------------------------------------------------------------- */

static int buf_reserve(struct lp_buf *b, size_t n)
{
	size_t want, cap;
	unsigned char *p;

	if (n > SIZE_MAX / 2 - b->len)
		return -EFBIG;
	want = b->len + n;
	if (b->max && want > b->max)
		return -EFBIG;
	if (want <= b->cap && b->data)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	if (b->max && cap > b->max)
		cap = b->max;
	p = realloc(b->data, cap + 1);   /* +1: room for a terminating NUL */
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int lp_buf_append(struct lp_buf *b, const void *p, size_t n)
{
	int err = buf_reserve(b, n);

	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int lp_buf_printf(struct lp_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return lp_buf_append(b, small, (size_t)n);
	err = buf_reserve(b, (size_t)n + 1);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int lp_buf_json_str(struct lp_buf *b, const char *s)
{
	int err = lp_buf_append(b, "\"", 1);

	for (; !err && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			err = lp_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			err = lp_buf_printf(b, "\\u%04x", c);
		else
			err = lp_buf_append(b, s, 1);
	}
	return err ? err : lp_buf_append(b, "\"", 1);
}

void lp_buf_free(struct lp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- gzip ----------------------------------------------------------------------- */

int lp_is_gzip(const void *p, size_t n)
{
	const unsigned char *c = p;

	return n >= 2 && c[0] == 0x1f && c[1] == 0x8b;
}

int lp_gunzip(const void *in, size_t n, size_t max_out, struct lp_buf *out)
{
	unsigned char chunk[64 * 1024];
	z_stream z;
	int zr = Z_OK, err = 0;

	if (n > UINT_MAX)
		return -EFBIG;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 32) != Z_OK)   /* +32: gzip or zlib header */
		return -ENOMEM;
	z.next_in = (unsigned char *)(uintptr_t)in;
	z.avail_in = (unsigned)n;
	while (zr != Z_STREAM_END && !err) {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END) {
			err = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
		if (zr == Z_OK && z.avail_out == sizeof(chunk) && z.avail_in == 0)
			err = -EINVAL;          /* truncated: no progress, no end */
		else if (out->len + (sizeof(chunk) - z.avail_out) > max_out)
			err = -EFBIG;
		else
			err = lp_buf_append(out, chunk, sizeof(chunk) - z.avail_out);
	}
	inflateEnd(&z);
	return err;
}

int lp_gzip(const void *in, size_t n, struct lp_buf *out)
{
	z_stream z;
	int zr, err;

	if (n > UINT_MAX)
		return -EFBIG;
	memset(&z, 0, sizeof(z));
	/* level 6, 15-bit window, +16: gzip header */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	err = buf_reserve(out, deflateBound(&z, (uLong)n) + 32);
	if (!err) {
		z.next_in = (unsigned char *)(uintptr_t)in;
		z.avail_in = (unsigned)n;
		z.next_out = out->data + out->len;
		z.avail_out = (unsigned)(out->cap - out->len);
		zr = deflate(&z, Z_FINISH);
		if (zr == Z_STREAM_END)
			out->len += z.total_out;
		else
			err = -EIO;
	}
	deflateEnd(&z);
	return err;
}

/* ---- durations, sizes, times ------------------------------------------------------ */

int64_t lp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A decimal number followed by a unit from table (exact, case-insensitive). */
struct unit {
	const char *name;
	uint64_t mult;
};
static int parse_with_unit(const char *s, const struct unit *units, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	for (; units->name; units++) {
		if (strcasecmp(end, units->name) == 0) {
			if (units->mult && v > UINT64_MAX / units->mult)
				return -ERANGE;
			*out = v * units->mult;
			return 0;
		}
	}
	return -EINVAL;
}

int lp_parse_duration_s(const char *s, int64_t *out_s)
{
	static const struct unit units[] = {
		{ "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
		{ "w", 7 * 86400 }, { NULL, 0 }
	};
	uint64_t v;
	int err = parse_with_unit(s, units, &v);

	if (err)
		return err;
	if (v > INT64_MAX / 1000000000)
		return -ERANGE;
	*out_s = (int64_t)v;
	return 0;
}

int lp_parse_size(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", 1ull << 10 }, { "KB", 1ull << 10 }, { "KiB", 1ull << 10 },
		{ "M", 1ull << 20 }, { "MB", 1ull << 20 }, { "MiB", 1ull << 20 },
		{ "G", 1ull << 30 }, { "GB", 1ull << 30 }, { "GiB", 1ull << 30 },
		{ "T", 1ull << 40 }, { "TB", 1ull << 40 }, { "TiB", 1ull << 40 },
		{ NULL, 0 }
	};
	return parse_with_unit(s, units, out);
}

static int parse_digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*s)++) {
		if (!isdigit((unsigned char)**s))
			return -EINVAL;
		v = v * 10 + (**s - '0');
	}
	*out = v;
	return 0;
}

/* 2024-05-01T12:00:00[.123456789](Z|+02:00|-05:30) */
static int parse_rfc3339(const char *s, int64_t *out_ns)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	int64_t frac = 0, scale = 100000000, off_s = 0;

	memset(&tm, 0, sizeof(tm));
	if (parse_digits(&s, 4, &y) || *s++ != '-' || parse_digits(&s, 2, &mo) ||
	    *s++ != '-' || parse_digits(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
		return -EINVAL;
	s++;
	if (parse_digits(&s, 2, &h) || *s++ != ':' || parse_digits(&s, 2, &mi) ||
	    *s++ != ':' || parse_digits(&s, 2, &sec))
		return -EINVAL;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, scale /= 10)
			frac += (*s - '0') * scale;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s++ == '-' ? -1 : 1;

		if (parse_digits(&s, 2, &oh) || *s++ != ':' || parse_digits(&s, 2, &om))
			return -EINVAL;
		off_s = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out_ns = ((int64_t)timegm(&tm) - off_s) * 1000000000 + frac;
	return 0;
}

int lp_parse_time_ns(const char *s, int64_t now_ns, int64_t *out_ns)
{
	unsigned long long v;
	int64_t d;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "now") == 0) {
		*out_ns = now_ns;
		return 0;
	}
	if (strncmp(s, "now-", 4) == 0) {
		if (lp_parse_duration_s(s + 4, &d))
			return -EINVAL;
		*out_ns = now_ns - d * 1000000000;
		return 0;
	}
	if (strchr(s, '-'))
		return parse_rfc3339(s, out_ns);
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > INT64_MAX)
		return -EINVAL;
	/* seconds until the year 5138; beyond that, finer units (Pyroscope clients
	 * send seconds, some tools milliseconds or nanoseconds) */
	if (v < 100000000000ull)
		*out_ns = (int64_t)v * 1000000000;
	else if (v < 100000000000000ull)
		*out_ns = (int64_t)v * 1000000;
	else if (v < 100000000000000000ull)
		*out_ns = (int64_t)v * 1000;
	else
		*out_ns = (int64_t)v;
	return 0;
}

int lp_is_trace_id(const char *s)
{
	size_t i;

	for (i = 0; i < 32; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return s[32] == 0;
}

/* ---- requests ------------------------------------------------------------------------ */

const char *lp_req_arg(const struct lp_request *req, const char *key)
{
	for (size_t i = 0; i < req->n_args; i++) {
		if (strcmp(req->args[i].key, key) == 0)
			return req->args[i].value ? req->args[i].value : "";
	}
	return NULL;
}

int lp_reply_text(struct lp_reply *rep, int status, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	rep->status = status;
	rep->content_type = "text/plain; charset=utf-8";
	rep->body.len = 0;
	(void)!lp_buf_append(&rep->body, line, strlen(line));
	return 0;
}

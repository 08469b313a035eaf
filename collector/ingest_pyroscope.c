/*
 * POST /ingest, the Pyroscope ingest API (docs/wire-formats.md section 3):
 * `name=<app>{k=v,...}` with from/until, and the profile either as the raw
 * body (format=pprof, gzip or not) or as the `profile` file field of a
 * multipart/form-data body. Also the one path every ingested profile takes to
 * the store (lp_ingest_store), which ingest_otlp.c uses too.
 */
#include "collector.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LABELS 32

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- the application name ------------------------------------------------------------ */

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = 0;
	return s;
}

static int label_key_ok(const char *k)
{
	if (!*k || strlen(k) > 128)
		return 0;
	for (; *k; k++) {
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '.' && *k != '-')
			return 0;
	}
	return 1;
}

/* "app{k=v,k2=v2}" -> service "app" (into svc) and {"k":"v","k2":"v2"}. */
static int parse_name(const char *name, char *svc, size_t svc_len, struct lp_buf *json,
		      char *why, size_t why_len)
{
	char copy[2048], *brace, *item, *save = NULL, *s;
	int n = 0, err;

	if (snprintf(copy, sizeof(copy), "%s", name) >= (int)sizeof(copy))
		return fail(why, why_len, "name is too long");
	brace = strchr(copy, '{');
	if (brace)
		*brace = 0;
	s = trim(copy);
	if (!*s || strlen(s) >= svc_len)
		return fail(why, why_len, "name: the application name is empty or too long");
	memcpy(svc, s, strlen(s) + 1);
	err = lp_buf_append(json, "{", 1);
	if (brace) {
		char *end = strrchr(brace + 1, '}');

		if (!end || trim(end + 1)[0])
			return fail(why, why_len, "name: labels must be {k=v,...} at the end");
		*end = 0;
		for (item = strtok_r(brace + 1, ",", &save); item && !err;
		     item = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(item, '='), *k, *v;

			if (!trim(item)[0])
				continue;
			if (!eq)
				return fail(why, why_len, "name: label '%.64s' has no '='", trim(item));
			*eq = 0;
			k = trim(item);
			v = trim(eq + 1);
			if (!label_key_ok(k))
				return fail(why, why_len, "name: bad label key '%.64s'", k);
			if (++n > MAX_LABELS)
				return fail(why, why_len, "name: more than %d labels", MAX_LABELS);
			err = lp_buf_append(json, n > 1 ? "," : "", n > 1) ?:
			      lp_buf_json_str(json, k) ?: lp_buf_append(json, ":", 1) ?:
			      lp_buf_json_str(json, v);
		}
	}
	return err ? err : lp_buf_append(json, "}", 1);
}

/* ---- multipart/form-data ------------------------------------------------------------------ */

/* The value of parameter param (e.g. boundary, name) in a header value. */
static int header_param(const char *h, size_t h_len, const char *param, char *out, size_t n)
{
	size_t plen = strlen(param);
	const char *p = h, *end = h + h_len;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));

		if (!semi)
			return -ENOENT;
		p = semi + 1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if ((size_t)(end - p) > plen && strncasecmp(p, param, plen) == 0 && p[plen] == '=') {
			const char *v = p + plen + 1, *ve;

			if (v < end && *v == '"') {
				v++;
				ve = memchr(v, '"', (size_t)(end - v));
				if (!ve)
					return -EINVAL;
			} else {
				for (ve = v; ve < end && *ve != ';' && *ve != ' ' && *ve != '\t'; ve++)
					;
			}
			if ((size_t)(ve - v) >= n)
				return -EINVAL;
			memcpy(out, v, (size_t)(ve - v));
			out[ve - v] = 0;
			return 0;
		}
	}
	return -ENOENT;
}

/* Part headers [h, h_end): the form field's name from Content-Disposition. */
static int part_name(const char *h, const char *h_end, char *name, size_t n)
{
	static const char cd[] = "content-disposition:";

	while (h < h_end) {
		const char *eol = memmem(h, (size_t)(h_end - h), "\r\n", 2);

		if (!eol)
			eol = h_end;
		if ((size_t)(eol - h) > sizeof(cd) - 1 && strncasecmp(h, cd, sizeof(cd) - 1) == 0)
			return header_param(h, (size_t)(eol - h), "name", name, n) ? -EINVAL : 0;
		h = eol + 2;
	}
	return -EINVAL;
}

int lp_multipart_parse(const char *content_type, const void *body, size_t len,
		       struct lp_part *parts, size_t max_parts, size_t *n_parts,
		       char *why, size_t why_len)
{
	char boundary[80], delim[84];
	const char *b = body, *end = b + len, *p;
	size_t dlen;

	*n_parts = 0;
	if (header_param(content_type, strlen(content_type), "boundary", boundary,
			 sizeof(boundary) - 8) || !boundary[0])
		return fail(why, why_len, "multipart: no usable boundary in Content-Type");
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	/* the first delimiter may open the body, without the CRLF before it */
	if (len >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0)
		p = b + dlen - 2;
	else if ((p = memmem(b, len, delim, dlen)))
		p += dlen;
	else
		return fail(why, why_len, "multipart: boundary not found");
	for (;;) {
		const char *hdr_end, *next;

		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return *n_parts ? 0 : fail(why, why_len, "multipart: no parts");
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return fail(why, why_len, "multipart: malformed delimiter line");
		p += 2;
		hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hdr_end)
			return fail(why, why_len, "multipart: part headers not terminated");
		next = memmem(hdr_end + 4, (size_t)(end - hdr_end - 4), delim, dlen);
		if (!next)
			return fail(why, why_len, "multipart: part not terminated (truncated body?)");
		if (*n_parts == max_parts)
			return fail(why, why_len, "multipart: more than %zu parts", max_parts);
		if (part_name(p, hdr_end, parts[*n_parts].name, sizeof(parts[*n_parts].name)))
			return fail(why, why_len, "multipart: part without a form field name");
		parts[*n_parts].data = (const unsigned char *)hdr_end + 4;
		parts[*n_parts].len = (size_t)(next - hdr_end - 4);
		(*n_parts)++;
		p = next + dlen;
	}
}

/* ---- storing ---------------------------------------------------------------------------------- */

int lp_ingest_store(const struct lp_ctx *c, const struct lp_ingest *in, char *why, size_t why_len)
{
	Perftools__Profiles__Profile *p = NULL;
	struct lp_pprof_info info;
	struct lp_trace_total *traces = NULL;
	struct lp_buf gz = { 0 };
	struct lp_profile_row row;
	size_t n_traces = 0;
	int64_t now = lp_now_ns();
	int err;

	err = lp_pprof_decode(in->pprof, in->pprof_len, c->limits.max_profile_bytes, &p, why,
			      why_len);
	if (err)
		return err;
	lp_pprof_info(p, &info);
	err = lp_pprof_trace_totals(p, info.value_index, &traces, &n_traces);
	if (err)
		goto out;
	memset(&row, 0, sizeof(row));
	row.service = in->service;
	row.type = info.type;
	row.labels_json = in->labels_json;
	row.value_type = info.value_type;
	row.value_unit = info.value_unit;
	/* the client's times win; else the profile's own; else now */
	row.from_ns = in->from_ns ? in->from_ns : info.time_ns > 0 ? info.time_ns : now;
	row.until_ns = in->until_ns ? in->until_ns
		       : info.time_ns > 0 && !in->from_ns ? lp_sat_add(info.time_ns, info.duration_ns)
		       : row.from_ns > now ? row.from_ns : now;
	if (row.until_ns < row.from_ns)
		row.until_ns = row.from_ns;
	row.traces = traces;
	row.n_traces = n_traces;
	if (lp_is_gzip(in->pprof, in->pprof_len)) {
		row.gz = in->pprof;
		row.gz_len = in->pprof_len;
	} else {
		err = lp_gzip(in->pprof, in->pprof_len, &gz);
		row.gz = gz.data;
		row.gz_len = gz.len;
	}
	if (!err)
		err = lp_store_put(c->store, &row);
	if (!err)
		lp_log(LP_LOG_DEBUG, "stored %s %s profile: %zu samples, %zu traces, %zu bytes",
		       in->service, info.type, p->n_sample, n_traces, row.gz_len);
out:
	free(traces);
	lp_buf_free(&gz);
	lp_pprof_free(p);
	return err;
}

/* ---- the handler ---------------------------------------------------------------------------- */

static int time_arg(const struct lp_request *req, const char *key, int64_t *ns,
		    struct lp_reply *rep)
{
	const char *v = lp_req_arg(req, key);

	*ns = 0;
	if (!v || !*v)
		return 0;
	if (lp_parse_time_ns(v, lp_now_ns(), ns) || *ns <= 0) {
		lp_reply_text(rep, 400, "%s: '%.64s' is not a time (unix seconds or RFC 3339)", key, v);
		return -EINVAL;
	}
	return 0;
}

/* The profile bytes: the `profile` part of a multipart body, or the body. */
static int find_profile(const struct lp_request *req, struct lp_ingest *in, struct lp_reply *rep)
{
	const char *format = lp_req_arg(req, "format");
	struct lp_part parts[LP_MAX_PARTS];
	size_t n = 0;
	char why[160];

	if (req->content_type && strncasecmp(req->content_type, "multipart/form-data", 19) == 0) {
		if (lp_multipart_parse(req->content_type, req->body, req->body_len, parts,
				       LP_MAX_PARTS, &n, why, sizeof(why)))
			return lp_reply_text(rep, 400, "%s", why), -EINVAL;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(parts[i].name, "profile") == 0) {
				in->pprof = parts[i].data;
				in->pprof_len = parts[i].len;
				return 0;
			}
		}
		/* sample_type_config and prev_profile are accepted and not needed: the
		 * type comes from the profile's own sample types */
		return lp_reply_text(rep, 400, "multipart: no 'profile' part"), -EINVAL;
	}
	if (format && strcmp(format, "pprof") != 0)
		return lp_reply_text(rep, 400, "format '%.32s' is not supported (only pprof)", format),
		       -EINVAL;
	in->pprof = req->body;
	in->pprof_len = req->body_len;
	return 0;
}

int lp_ingest_pyroscope(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	const char *name = lp_req_arg(req, "name");
	struct lp_buf labels = { 0 };
	struct lp_ingest in;
	char svc[256], why[160];
	int err;

	memset(&in, 0, sizeof(in));
	if (!name || !*name)
		return lp_reply_text(rep, 400, "missing name=<app>{labels}");
	err = parse_name(name, svc, sizeof(svc), &labels, why, sizeof(why));
	if (err == -EINVAL)
		lp_reply_text(rep, 400, "%s", why);
	if (err || time_arg(req, "from", &in.from_ns, rep) || time_arg(req, "until", &in.until_ns, rep) ||
	    find_profile(req, &in, rep))
		goto out;
	if (in.pprof_len == 0) {
		lp_reply_text(rep, 400, "empty profile");
		goto out;
	}
	in.service = svc;
	in.labels_json = (const char *)labels.data;
	err = lp_ingest_store(c, &in, why, sizeof(why));
	if (err == -EINVAL)
		lp_reply_text(rep, 400, "%s", why);
	else if (err == -EFBIG)
		lp_reply_text(rep, 413, "profile larger than %zu bytes once inflated",
			      c->limits.max_profile_bytes);
	if (err == -EINVAL || err == -EFBIG)
		err = 0;
	else if (!err)
		rep->status = 200;
out:
	lp_buf_free(&labels);
	return err == -EINVAL ? 0 : err;
}

/*
 * POST /v1development/profiles: an OTLP ExportProfilesServiceRequest
 * (protobuf, optionally gzip) is split into its profiles, converted to pprof
 * (otlp_convert.c) and stored like any other profile (lp_ingest_store in
 * ingest_pyroscope.c). OTLP has one sample type per Profile: the Profiles
 * that are the sample types of one profile (libprof sends a CPU profile as
 * samples/count and cpu/nanoseconds) are joined into one pprof, so that what
 * is stored, the trace index and merged profiles are the same as for the
 * pprof sent to /ingest. The resource's service.name is the service and its
 * other attributes the labels. Bad profiles are rejected alone: the answer is
 * then a partial success, as OTLP clients expect.
 */
#include "collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_profiles_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest Request;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dict;
typedef Opentelemetry__Proto__Profiles__V1development__Profile OProfile;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType OValueType;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

#define MAX_LABELS 32          /* resource attributes kept as labels */
#define MAX_JOINED 16          /* sample types joined into one pprof (the merge takes 32) */

/* service.name and the other resource attributes as a JSON object. */
static int resource(const Resource *r, struct lp_otlp_profile *out)
{
	struct lp_buf j = { 0 };
	const char *svc = "unknown_service";
	int err = lp_buf_append(&j, "{", 1), n = 0;

	for (size_t i = 0; r && i < r->n_attributes && !err; i++) {
		const KeyValue *kv = r->attributes[i];
		const AnyValue *v = kv->value;

		if (!v || !kv->key[0])
			continue;
		if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
		    strcmp(kv->key, "service.name") == 0) {
			if (v->string_value[0])
				svc = v->string_value;
			continue;
		}
		if (n == MAX_LABELS)
			continue;
		if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			err = lp_buf_append(&j, ",", n > 0) ?: lp_buf_json_str(&j, kv->key) ?:
			      lp_buf_append(&j, ":", 1) ?: lp_buf_json_str(&j, v->string_value);
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
			err = lp_buf_append(&j, ",", n > 0) ?: lp_buf_json_str(&j, kv->key) ?:
			      lp_buf_printf(&j, ":\"%lld\"", (long long)v->int_value);
		else
			continue;
		n++;
	}
	err = err ?: lp_buf_append(&j, "}", 1);
	out->labels_json = err ? NULL : (char *)j.data;
	out->service = strndup(svc, 255);
	if (err || !out->service) {
		lp_buf_free(&j);
		return err ? err : -ENOMEM;
	}
	return 0;
}

/* ops[0..n) -> one pprof in res; -EINVAL (why set) leaves res as it was. */
static int convert(const Dict *d, const Resource *r, const OProfile *const *ops, size_t n,
		   struct lp_otlp_result *res, char *why, size_t why_len)
{
	struct lp_otlp_profile *out = &res->profiles[res->n_profiles];
	int err;

	memset(out, 0, sizeof(*out));
	err = lp_otlp_to_pprof(d, ops, n, &out->pprof, why, why_len) ?: resource(r, out);
	if (err) {
		lp_buf_free(&out->pprof);
		free(out->service);
		free(out->labels_json);
		return err;
	}
	out->from_ns = (int64_t)(ops[0]->time_unix_nano & INT64_MAX);
	out->until_ns = ops[0]->duration_nano
				? lp_sat_add(out->from_ns, (int64_t)(ops[0]->duration_nano & INT64_MAX))
				: 0;
	out->n_sources = n;
	res->n_profiles++;
	return 0;
}

static int convert_group(const Dict *d, const Resource *r, const OProfile *const *ops, size_t n,
			 struct lp_otlp_result *res)
{
	char why[160] = "";
	int err = convert(d, r, ops, n, res, why, sizeof(why));

	if (err != -EINVAL)
		return err;
	if (n == 1) {
		if (!res->n_rejected++)
			snprintf(res->first_error, sizeof(res->first_error), "%s", why);
		return 0;
	}
	/* one bad Profile must not take its group down: each alone, then */
	err = 0;
	for (size_t i = 0; i < n && !err; i++)
		err = convert_group(d, r, ops + i, 1, res);
	return err;
}

/* d's string i, NULL when out of range. */
static const char *dict_str(const Dict *d, int32_t i)
{
	return i >= 0 && (size_t)i < d->n_string_table ? d->string_table[i] : NULL;
}

/* Whether a and b are the same (type, unit); two absent ones are. */
static int same_type(const Dict *d, const OValueType *a, const OValueType *b)
{
	const char *at, *au, *bt, *bu;

	if (!a || !b)
		return a == b;
	at = dict_str(d, a->type_strindex);
	au = dict_str(d, a->unit_strindex);
	bt = dict_str(d, b->type_strindex);
	bu = dict_str(d, b->unit_strindex);
	return at && au && bt && bu && strcmp(at, bt) == 0 && strcmp(au, bu) == 0;
}

/* Whether b is another sample type of the profile g[0..n) holds: the same
 * time range, period and attributes, and a sample type g lacks. */
static int joins(const Dict *d, const OProfile *const *g, size_t n, const OProfile *b)
{
	const OProfile *a = g[0];

	if (n == MAX_JOINED || a->time_unix_nano != b->time_unix_nano ||
	    a->duration_nano != b->duration_nano || a->period != b->period ||
	    !same_type(d, a->period_type, b->period_type) ||
	    a->n_attribute_indices != b->n_attribute_indices ||
	    (a->n_attribute_indices && memcmp(a->attribute_indices, b->attribute_indices,
					      a->n_attribute_indices * sizeof(int32_t))))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (same_type(d, g[i]->sample_type, b->sample_type))
			return 0;
	}
	return 1;
}

static int convert_scope(const Dict *d, const Resource *r,
			 const Opentelemetry__Proto__Profiles__V1development__ScopeProfiles *sp,
			 struct lp_otlp_result *res)
{
	const OProfile *const *ops = (const OProfile *const *)sp->profiles;
	size_t n;
	int err = 0;

	for (size_t k = 0; k < sp->n_profiles && !err; k += n) {
		for (n = 1; k + n < sp->n_profiles && joins(d, ops + k, n, ops[k + n]); n++)
			;
		err = convert_group(d, r, ops + k, n, res);
	}
	return err;
}

int lp_otlp_convert(const void *data, size_t len, struct lp_otlp_result *res)
{
	static const Dict empty = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILES_DICTIONARY__INIT;
	Request *rq;
	const Dict *d;
	size_t total = 0;
	int err = 0;

	memset(res, 0, sizeof(*res));
	rq = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
		NULL, len, data);
	if (!rq)
		return -EINVAL;
	d = rq->dictionary ? rq->dictionary : &empty;
	for (size_t i = 0; i < rq->n_resource_profiles; i++)
		for (size_t j = 0; j < rq->resource_profiles[i]->n_scope_profiles; j++)
			total += rq->resource_profiles[i]->scope_profiles[j]->n_profiles;
	res->profiles = calloc(total + 1, sizeof(*res->profiles));
	if (!res->profiles)
		err = -ENOMEM;
	for (size_t i = 0; i < rq->n_resource_profiles && !err; i++) {
		const Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rp =
			rq->resource_profiles[i];

		for (size_t j = 0; j < rp->n_scope_profiles && !err; j++)
			err = convert_scope(d, rp->resource, rp->scope_profiles[j], res);
	}
	opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked(
		rq, NULL);
	return err;
}

void lp_otlp_result_free(struct lp_otlp_result *res)
{
	for (size_t i = 0; i < res->n_profiles; i++) {
		lp_buf_free(&res->profiles[i].pprof);
		free(res->profiles[i].service);
		free(res->profiles[i].labels_json);
	}
	free(res->profiles);
	memset(res, 0, sizeof(*res));
}

/* ---- the handler ---------------------------------------------------------------------------- */

static int reply_response(struct lp_reply *rep, int64_t rejected, const char *msg)
{
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse r =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesPartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;
	uint8_t buf[512];
	size_t len;

	if (rejected) {
		ps.rejected_profiles = rejected;
		ps.error_message = (char *)msg;
		r.partial_success = &ps;
	}
	len = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__pack(
		&r, buf);
	rep->status = 200;
	rep->content_type = "application/x-protobuf";
	rep->body.len = 0;
	return lp_buf_append(&rep->body, buf, len);
}

static int media_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

int lp_ingest_otlp(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	const char *enc = req->content_encoding;
	struct lp_otlp_result res;
	struct lp_buf plain = { 0 };
	const void *body = req->body;
	size_t len = req->body_len;
	char why[160], msg[200] = "";
	int64_t rejected;
	int err;

	memset(&res, 0, sizeof(res));
	if (!media_is(req->content_type, "application/x-protobuf"))
		return lp_reply_text(rep, 415, "Content-Type must be application/x-protobuf");
	if (enc && *enc && strcasecmp(enc, "identity") != 0) {
		if (strcasecmp(enc, "gzip") != 0)
			return lp_reply_text(rep, 415, "Content-Encoding '%.32s' is not supported", enc);
		err = lp_gunzip(body, len, c->limits.max_profile_bytes, &plain);
		if (err == -EFBIG || err == -EINVAL) {
			lp_buf_free(&plain);
			return err == -EFBIG ? lp_reply_text(rep, 413, "request larger than %zu bytes "
							      "once inflated", c->limits.max_profile_bytes)
					     : lp_reply_text(rep, 400, "corrupt gzip body");
		}
		body = plain.data;
		len = plain.len;
	} else {
		err = len > c->limits.max_profile_bytes ? -EFBIG : 0;
	}
	err = err ?: lp_otlp_convert(body, len, &res);
	if (err == -EINVAL)
		lp_reply_text(rep, 400, "not an OTLP ExportProfilesServiceRequest (v1development)");
	else if (err == -EFBIG)
		lp_reply_text(rep, 413, "request larger than %zu bytes", c->limits.max_profile_bytes);
	if (err) {
		lp_otlp_result_free(&res);
		lp_buf_free(&plain);
		return err == -EINVAL || err == -EFBIG ? 0 : err;
	}
	rejected = res.n_rejected;
	snprintf(msg, sizeof(msg), "%s", res.first_error);
	for (size_t i = 0; i < res.n_profiles && !err; i++) {
		const struct lp_otlp_profile *p = &res.profiles[i];
		struct lp_ingest in = { p->service, p->labels_json, p->from_ns, p->until_ns,
					p->pprof.data, p->pprof.len };

		err = lp_ingest_store(c, &in, why, sizeof(why));
		if (err == -EINVAL || err == -EFBIG) {
			if (!rejected)
				snprintf(msg, sizeof(msg), "%s", err == -EFBIG ? "profile too large" : why);
			rejected += (int64_t)p->n_sources;   /* as many as the client sent */
			err = 0;
		}
	}
	lp_otlp_result_free(&res);
	lp_buf_free(&plain);
	return err ? err : reply_response(rep, rejected, msg);
}

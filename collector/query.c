/*
 * The query API: GET /api/v1/profiles (one merged gzip pprof, what
 * `go tool pprof URL` reads), /api/v1/flamegraph (the same merge as a
 * flame-graph tree, for the page), /api/v1/services and /api/v1/traces (JSON).
 * Parameters, defaults and formats are in docs/COLLECTOR.md; the SQL lives in
 * store.c, the merging in pprof_merge.c, the tree in flamegraph.c.
 */
#include "collector.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RANGE_S   3600
#define MAX_MERGED        10000      /* stored profiles merged by one query */
#define MAX_SAMPLES       1000000    /* distinct samples of a merged profile */
#define DEFAULT_TRACES    100
#define MAX_TRACES        10000
#define DEFAULT_NODES     5000       /* flame-graph nodes sent to the page */
#define MAX_NODES         100000

struct params {
	struct lp_query q;
	char trace[33];
	const char *type_arg;
};

static int word_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
			return 0;
	}
	return n > 0 && n <= max;
}

/* Fills p from the query string; on a bad value replies 400 and returns -EINVAL. */
static int parse_params(const struct lp_request *req, const char *default_type, struct params *p,
			struct lp_reply *rep)
{
	const char *svc = lp_req_arg(req, "service"), *type = lp_req_arg(req, "type");
	const char *from = lp_req_arg(req, "from"), *until = lp_req_arg(req, "until");
	const char *trace = lp_req_arg(req, "trace_id");
	int64_t now = lp_now_ns();

	memset(p, 0, sizeof(*p));
	p->q.service = svc && *svc ? svc : NULL;
	p->q.type = type && *type ? type : default_type;
	if (p->q.type && !word_ok(p->q.type, 31))
		return lp_reply_text(rep, 400, "type: '%.40s' is not a profile type (cpu, heap, mutex)",
				     p->q.type), -EINVAL;
	p->q.until_ns = now;
	if (until && *until && (lp_parse_time_ns(until, now, &p->q.until_ns)))
		return lp_reply_text(rep, 400, "until: '%.40s' is not a time (unix seconds, RFC 3339, "
				     "now-1h)", until), -EINVAL;
	p->q.from_ns = p->q.until_ns - (int64_t)DEFAULT_RANGE_S * 1000000000;
	if (from && *from && (lp_parse_time_ns(from, now, &p->q.from_ns)))
		return lp_reply_text(rep, 400, "from: '%.40s' is not a time (unix seconds, RFC 3339, "
				     "now-1h)", from), -EINVAL;
	if (p->q.from_ns > p->q.until_ns)
		return lp_reply_text(rep, 400, "from is after until"), -EINVAL;
	if (trace && *trace) {
		size_t i;

		/* ids are indexed in lowercase; accept what a user pastes */
		for (i = 0; trace[i] && i < 32; i++)
			p->trace[i] = (char)tolower((unsigned char)trace[i]);
		p->trace[i] = 0;
		if (trace[i] || !lp_is_trace_id(p->trace))
			return lp_reply_text(rep, 400, "trace_id: '%.40s' is not 32 hex digits", trace),
			       -EINVAL;
		p->q.trace_id = p->trace;
	}
	return 0;
}

/* ---- /api/v1/profiles ------------------------------------------------------------------ */

struct merge_ctx {
	const struct lp_ctx *c;
	struct lp_merge *m;
	size_t n_profiles;
};

static int merge_blob(void *ctx, const void *data, size_t len)
{
	struct merge_ctx *mc = ctx;
	Perftools__Profiles__Profile *p;
	char why[160];
	int err;

	err = lp_pprof_decode(data, len, mc->c->limits.max_profile_bytes, &p, why, sizeof(why));
	if (err == -EINVAL || err == -EFBIG) {
		/* checked at ingest: only a damaged file gets here; skip the row */
		lp_log(LP_LOG_WARN, "query: skipping an unreadable stored profile: %s",
		       err == -EINVAL ? why : "too large");
		return 0;
	}
	if (err)
		return err;
	err = lp_merge_add(mc->m, p);
	lp_pprof_free(p);
	mc->n_profiles++;
	return err;
}

/* Merges the profiles matching p into mc->m; replies 404 when there are none,
 * 400 when the result would be too large (then returns 0, rep set). */
static int merge_matching(const struct lp_ctx *c, struct params *p, struct merge_ctx *mc,
			  struct lp_reply *rep)
{
	int err;

	p->q.limit = MAX_MERGED;
	err = lp_merge_new(&mc->m, p->q.trace_id, MAX_SAMPLES) ?:
	      lp_store_profiles(c->store, &p->q, merge_blob, mc);
	if (!err && mc->n_profiles == 0)
		lp_reply_text(rep, 404, "no %s profiles%s%s%s%s in this time range", p->q.type,
			      p->q.service ? " of service " : "", p->q.service ? p->q.service : "",
			      p->q.trace_id ? " with trace " : "", p->q.trace_id ? p->q.trace_id : "");
	if (err == -EFBIG || err == -E2BIG) {
		lp_reply_text(rep, 400, "the merged profile is too large (over %d distinct samples or "
			      "32 sample types): narrow the query", MAX_SAMPLES);
		err = 0;
	}
	return err;
}

int lp_query_profiles(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	struct merge_ctx mc = { c, NULL, 0 };
	struct params p;
	int err;

	if (parse_params(req, "cpu", &p, rep))
		return 0;
	err = merge_matching(c, &p, &mc, rep);
	if (!err && !rep->status) {
		rep->body.len = 0;
		err = lp_merge_finish(mc.m, &rep->body);
		rep->status = 200;
		rep->content_type = "application/octet-stream";
	}
	lp_merge_free(mc.m);
	return err;
}

/* ---- /api/v1/flamegraph ------------------------------------------------------------------ */

struct flame_ctx {
	const struct params *p;
	const char *sample_index;
	size_t max_nodes, n_profiles;
	struct lp_reply *rep;
};

/* The merged profile -> {"service",...,"root":{tree}}. */
static int flame_view(void *ctx, const Perftools__Profiles__Profile *p)
{
	struct flame_ctx *fc = ctx;
	struct lp_buf *b = &fc->rep->body;
	struct lp_flame_stats st;
	int vi = lp_flamegraph_value_index(p, fc->sample_index), err;

	if (vi < 0)
		return lp_reply_text(fc->rep, 400, "sample_index: '%.40s' is not a sample type of "
				     "these profiles", fc->sample_index);
	b->len = 0;
	err = lp_buf_printf(b, "{\"service\":") ?:
	      (fc->p->q.service ? lp_buf_json_str(b, fc->p->q.service) : lp_buf_printf(b, "null")) ?:
	      lp_buf_printf(b, ",\"type\":\"%s\",\"trace_id\":", fc->p->q.type) ?:
	      (fc->p->q.trace_id ? lp_buf_json_str(b, fc->p->q.trace_id) : lp_buf_printf(b, "null")) ?:
	      lp_buf_printf(b, ",\"from\":%lld,\"until\":%lld,\"profiles\":%zu,\"sample_types\":[",
			    (long long)(fc->p->q.from_ns / 1000000000),
			    (long long)(fc->p->q.until_ns / 1000000000), fc->n_profiles);
	for (size_t i = 0; i < p->n_sample_type && !err; i++) {
		err = lp_buf_printf(b, "%s{\"type\":", i ? "," : "") ?:
		      lp_buf_json_str(b, lp_pprof_str(p, p->sample_type[i]->type)) ?:
		      lp_buf_printf(b, ",\"unit\":") ?:
		      lp_buf_json_str(b, lp_pprof_str(p, p->sample_type[i]->unit)) ?:
		      lp_buf_printf(b, "}");
	}
	err = err ?: lp_buf_printf(b, "],\"sample_index\":%d,\"root\":", vi) ?:
	      lp_flamegraph_json(p, vi, fc->max_nodes, b, &st) ?:
	      lp_buf_printf(b, ",\"total\":%lld,\"nodes\":%zu,\"shown\":%zu}\n",
			    (long long)st.total, st.n_nodes, st.n_sent);
	fc->rep->status = 200;
	fc->rep->content_type = "application/json";
	return err;
}

int lp_query_flamegraph(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	struct merge_ctx mc = { c, NULL, 0 };
	struct flame_ctx fc = { NULL, lp_req_arg(req, "sample_index"), DEFAULT_NODES, 0, rep };
	const char *max = lp_req_arg(req, "max_nodes");
	struct params p;
	int err;

	if (parse_params(req, "cpu", &p, rep))
		return 0;
	if (max && *max) {
		char *end;
		unsigned long v = strtoul(max, &end, 10);

		if (*end || !isdigit((unsigned char)*max) || v < 16 || v > MAX_NODES)
			return lp_reply_text(rep, 400, "max_nodes: '%.20s' is not 16..%d", max,
					     MAX_NODES);
		fc.max_nodes = v;
	}
	fc.p = &p;
	err = merge_matching(c, &p, &mc, rep);
	if (!err && !rep->status) {
		fc.n_profiles = mc.n_profiles;
		err = lp_merge_view(mc.m, flame_view, &fc);
	}
	lp_merge_free(mc.m);
	return err;
}

/* ---- /api/v1/services ------------------------------------------------------------------- */

struct json_ctx {
	struct lp_buf *b;
	char last[256];
	size_t n;
};

static int service_row(void *ctx, const struct lp_service_row *r)
{
	struct json_ctx *j = ctx;
	int err = 0;

	if (j->n == 0 || strcmp(j->last, r->service) != 0) {
		err = lp_buf_printf(j->b, "%s{\"name\":", j->n ? "]},\n" : "\n") ?:
		      lp_buf_json_str(j->b, r->service) ?: lp_buf_printf(j->b, ",\"types\":[");
		snprintf(j->last, sizeof(j->last), "%s", r->service);
	} else {
		err = lp_buf_printf(j->b, ",");
	}
	j->n++;
	return err ?: lp_buf_printf(j->b, "{\"type\":") ?: lp_buf_json_str(j->b, r->type) ?:
		      lp_buf_printf(j->b, ",\"profiles\":%lld,\"from\":%lld,\"until\":%lld,"
				    "\"bytes\":%lld}", (long long)r->n_profiles,
				    (long long)(r->from_ns / 1000000000),
				    (long long)((r->until_ns + 999999999) / 1000000000),
				    (long long)r->bytes);
}

int lp_query_services(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	struct json_ctx j = { &rep->body, "", 0 };
	int err;

	(void)req;
	rep->body.len = 0;
	err = lp_buf_printf(&rep->body, "{\"services\":[") ?:
	      lp_store_services(c->store, service_row, &j) ?:
	      lp_buf_printf(&rep->body, "%s]}\n", j.n ? "]}\n" : "");
	rep->status = 200;
	rep->content_type = "application/json";
	return err;
}

/* ---- /api/v1/traces --------------------------------------------------------------------- */

static int trace_row(void *ctx, const struct lp_trace_row *r)
{
	struct json_ctx *j = ctx;
	const char *s = r->services;
	int err;

	err = lp_buf_printf(j->b, "%s{\"trace_id\":\"%s\",\"total\":%lld,\"unit\":", j->n ? ",\n" : "\n",
			    r->trace_id, (long long)r->total) ?:
	      lp_buf_json_str(j->b, r->unit) ?:
	      lp_buf_printf(j->b, ",\"profiles\":%lld,\"services\":[", (long long)r->n_profiles);
	/* group_concat's list: a,b,c */
	for (int first = 1; !err && *s; first = 0) {
		size_t n = strcspn(s, ",");
		char name[256];

		snprintf(name, sizeof(name), "%.*s", (int)n, s);
		err = lp_buf_append(j->b, ",", !first) ?: lp_buf_json_str(j->b, name);
		s += n + (s[n] == ',');
	}
	j->n++;
	return err ?: lp_buf_printf(j->b, "]}");
}

int lp_query_traces(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	struct json_ctx j = { &rep->body, "", 0 };
	const char *limit = lp_req_arg(req, "limit");
	struct params p;
	char *end;
	int err;

	if (parse_params(req, "cpu", &p, rep))
		return 0;
	p.q.trace_id = NULL;
	p.q.limit = DEFAULT_TRACES;
	if (limit && *limit) {
		unsigned long v = strtoul(limit, &end, 10);

		if (*end || !isdigit((unsigned char)*limit) || v == 0 || v > MAX_TRACES)
			return lp_reply_text(rep, 400, "limit: '%.20s' is not 1..%d", limit, MAX_TRACES);
		p.q.limit = v;
	}
	rep->body.len = 0;
	err = lp_buf_printf(&rep->body, "{\"service\":") ?:
	      (p.q.service ? lp_buf_json_str(&rep->body, p.q.service)
			   : lp_buf_printf(&rep->body, "null")) ?:
	      lp_buf_printf(&rep->body, ",\"type\":\"%s\",\"from\":%lld,\"until\":%lld,\"traces\":[",
			    p.q.type, (long long)(p.q.from_ns / 1000000000),
			    (long long)(p.q.until_ns / 1000000000)) ?:
	      lp_store_traces(c->store, &p.q, trace_row, &j) ?:
	      lp_buf_printf(&rep->body, "%s]}\n", j.n ? "\n" : "");
	rep->status = 200;
	rep->content_type = "application/json";
	return err;
}

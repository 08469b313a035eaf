/*
 * collector/ API: build/libprof-collector, the embedded profile collector.
 * One SQLite file of gzip pprof profiles, Pyroscope and OTLP ingest, and a
 * query API that merges stored profiles into one pprof (docs/COLLECTOR.md).
 *
 *   main.c              options, start-up, signals, the periodic retention task
 *   http.c              libmicrohttpd glue: routing, auth, body limits, replies
 *   ingest_pyroscope.c  POST /ingest: name{labels}, multipart, raw pprof; storing
 *   ingest_otlp.c       POST /v1development/profiles: requests, resources, response
 *   otlp_convert.c      OTLP profiles of one source -> pprof (links -> trace_id/span_id)
 *   pprof.c             pprof decode, consistency check, type, trace totals, encode
 *   pprof_merge.c       many profiles -> one, optionally one trace's samples only
 *   flamegraph.c        a merged profile -> the page's flame-graph tree (JSON)
 *   store.c             SQLite schema, inserts, queries, trace index, retention
 *   query.c             GET /api/v1/... and /healthz: parameters and JSON
 *   web.c               GET / and the page's files (collector/web/, embedded at build)
 *   util.c              log, growable buffers, gzip, durations/sizes/times, JSON
 *
 * Functions returning int return 0 or a negative errno. Nothing here is
 * async-signal-safe. Request handlers run on the HTTP server's threads; the
 * store serializes itself.
 */
#ifndef LP_COLLECTOR_H
#define LP_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "otlp_profiles.pb-c.h"
#include "profile.pb-c.h"

#define LP_WUR __attribute__((warn_unused_result))

/* ---- util.c ------------------------------------------------------------ */

enum lp_log_level { LP_LOG_DEBUG, LP_LOG_INFO, LP_LOG_WARN, LP_LOG_OFF };
extern enum lp_log_level lp_log_level;     /* set once at start-up */

/* One line on stderr, "libprof-collector: <level>: ...", if lvl is enabled. */
void lp_log(enum lp_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A growable byte buffer; max (0: none) caps len: appends past it fail -EFBIG. */
struct lp_buf {
	unsigned char *data;
	size_t len, cap, max;
};
int lp_buf_append(struct lp_buf *b, const void *p, size_t n) LP_WUR;
int lp_buf_printf(struct lp_buf *b, const char *fmt, ...) LP_WUR
	__attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quoted, escaped). */
int lp_buf_json_str(struct lp_buf *b, const char *s) LP_WUR;
void lp_buf_free(struct lp_buf *b);

int lp_is_gzip(const void *p, size_t n);
/* Inflates gzip (or zlib) data into out (appended). More than max_out bytes:
 * -EFBIG as soon as the cap is passed (a gzip bomb costs max_out at most);
 * corrupt data -EINVAL. out may hold partial output on failure. */
int lp_gunzip(const void *in, size_t n, size_t max_out, struct lp_buf *out) LP_WUR;
int lp_gzip(const void *in, size_t n, struct lp_buf *out) LP_WUR;

int64_t lp_now_ns(void);
/* "90", "90s", "15m", "12h", "7d", "2w" -> seconds; -EINVAL otherwise. */
int lp_parse_duration_s(const char *s, int64_t *out_s) LP_WUR;
/* "4096", "512K", "16MiB", "1GB", "2T" (powers of 1024) -> bytes. */
int lp_parse_size(const char *s, uint64_t *out) LP_WUR;
/* Unix seconds (or ms/us/ns told apart by magnitude), RFC 3339, "now",
 * "now-<duration>" -> unix nanoseconds. */
int lp_parse_time_ns(const char *s, int64_t now_ns, int64_t *out_ns) LP_WUR;
/* A trace id as indexed: 32 lowercase hex digits. */
int lp_is_trace_id(const char *s);

/* a + b, saturated: values in stored profiles come from anyone. */
static inline int64_t lp_sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* ---- requests and replies (http.c fills them; handlers answer) ----------- */

#define LP_MAX_ARGS 32
struct lp_kv {
	const char *key, *value;
};
struct lp_request {
	const char *method, *path;
	const char *content_type, *content_encoding;  /* NULL when absent */
	struct lp_kv args[LP_MAX_ARGS];                /* URL query, decoded */
	size_t n_args;
	const unsigned char *body;
	size_t body_len;
};
struct lp_reply {
	int status;
	const char *content_type;   /* static string */
	struct lp_buf body;
};
/* The first value of query parameter key, NULL if absent. */
const char *lp_req_arg(const struct lp_request *req, const char *key);
/* Sets status and a one-line text/plain body. Returns 0 (errors end up as a
 * status without the body). */
int lp_reply_text(struct lp_reply *rep, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct lp_limits {
	size_t max_body_bytes;      /* a request body as received */
	size_t max_profile_bytes;   /* a profile or OTLP request once inflated */
};

struct lp_store;
struct lp_ctx {
	struct lp_store *store;
	struct lp_limits limits;
};

/* Handlers: fill rep (any status); a negative errno is an internal failure
 * the HTTP layer answers with 500 (or 503 for -ENOMEM/-EBUSY). */
int lp_ingest_pyroscope(const struct lp_ctx *c, const struct lp_request *req,
			struct lp_reply *rep) LP_WUR;
int lp_ingest_otlp(const struct lp_ctx *c, const struct lp_request *req,
		   struct lp_reply *rep) LP_WUR;
int lp_query_profiles(const struct lp_ctx *c, const struct lp_request *req,
		      struct lp_reply *rep) LP_WUR;
int lp_query_services(const struct lp_ctx *c, const struct lp_request *req,
		      struct lp_reply *rep) LP_WUR;
int lp_query_traces(const struct lp_ctx *c, const struct lp_request *req,
		    struct lp_reply *rep) LP_WUR;
int lp_query_flamegraph(const struct lp_ctx *c, const struct lp_request *req,
			struct lp_reply *rep) LP_WUR;

/* ---- web.c: the page, its files embedded from collector/web/ and build/web/ ---- */

struct lp_web_file {
	const char *path, *content_type;
	const unsigned char *data;
	size_t len;
};
/* Generated at build time (build/gen/web_assets.c, collector/web/embed.sh). */
extern const struct lp_web_file lp_web_files[];
extern const size_t lp_web_n_files;
/* The embedded file served at path, NULL if none. */
const struct lp_web_file *lp_web_find(const char *path);
/* GET of an embedded file (the route of every path lp_web_find knows). */
int lp_web_serve(const struct lp_ctx *c, const struct lp_request *req,
		 struct lp_reply *rep) LP_WUR;

/* ---- http.c --------------------------------------------------------------- */

struct lp_http_opts {
	const char *listen;         /* "host:port", "[v6]:port"; port 0 picks one */
	const char *token;          /* NULL: no auth */
	unsigned threads;
	unsigned timeout_s;         /* idle connection timeout */
};
struct lp_http;
/* Starts serving; *port gets the bound port. On failure nothing is left
 * running: -errno of socket/bind/listen, -EINVAL for an address that does not
 * resolve (logged), -EIO when libmicrohttpd refuses to start (logged). */
int lp_http_start(struct lp_http **out, const struct lp_http_opts *o,
		  const struct lp_ctx *c, unsigned *port) LP_WUR;
void lp_http_stop(struct lp_http *h);

/* ---- ingest_pyroscope.c: pieces shared with ingest_otlp.c and the fuzzers -- */

#define LP_MAX_PARTS 16
struct lp_part {
	char name[64];
	const unsigned char *data;  /* points into the body */
	size_t len;
};
/* Splits a multipart/form-data body whose Content-Type is content_type.
 * -EINVAL with a reason in why when it is not well formed. */
int lp_multipart_parse(const char *content_type, const void *body, size_t len,
		       struct lp_part *parts, size_t max_parts, size_t *n_parts,
		       char *why, size_t why_len) LP_WUR;

/* One profile ready to store: the same path for both protocols. */
struct lp_ingest {
	const char *service;
	const char *labels_json;    /* {"k":"v",...} */
	int64_t from_ns, until_ns;  /* 0: from the profile, else now */
	const void *pprof;          /* gzip or plain */
	size_t pprof_len;
};
/* Decodes, checks and stores one profile. -EINVAL (why set: a bad profile),
 * -EFBIG (too large once inflated), other errno: storage failed. */
int lp_ingest_store(const struct lp_ctx *c, const struct lp_ingest *in,
		    char *why, size_t why_len) LP_WUR;

/* ---- ingest_otlp.c ---------------------------------------------------------- */

struct lp_otlp_profile {
	char *service, *labels_json;
	int64_t from_ns, until_ns;
	struct lp_buf pprof;        /* plain (not gzip) pprof bytes */
	size_t n_sources;           /* the OTLP Profiles (sample types) it joins */
};
struct lp_otlp_result {
	struct lp_otlp_profile *profiles;
	size_t n_profiles;
	int64_t n_rejected;
	char first_error[160];
};
/* Converts an uncompressed ExportProfilesServiceRequest into pprof profiles
 * (links become trace_id/span_id labels): consecutive Profiles of one scope
 * with the same time range, period, period type and attributes, each of
 * another sample type, become one pprof with their sample types, as the pprof
 * libprof writes (its exporter sends one Profile per sample type); any other
 * Profile becomes a pprof of its own. -EINVAL: not a request at all; bad
 * Profiles are counted in n_rejected (each alone: the others of its group
 * are still converted). Free with lp_otlp_result_free in every case. */
int lp_otlp_convert(const void *data, size_t len, struct lp_otlp_result *res) LP_WUR;
void lp_otlp_result_free(struct lp_otlp_result *res);

/* ---- otlp_convert.c ---------------------------------------------------------------- */

/* OTLP Profiles ops[0..n) (n >= 1, indexes into dictionary d) -> one plain
 * pprof appended to out, with their sample types in order and the period and
 * times of ops[0]; samples with the same stack, link and attributes are one
 * sample. -EINVAL with a reason in why when an index is out of range. */
int lp_otlp_to_pprof(const Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary *d,
		     const Opentelemetry__Proto__Profiles__V1development__Profile *const *ops,
		     size_t n, struct lp_buf *out, char *why, size_t why_len) LP_WUR;

/* ---- pprof.c ------------------------------------------------------------------ */

/* Decodes pprof (gzip or plain, inflated up to max_bytes) and checks that every
 * reference resolves, so later readers (merge, go tool pprof) can trust it.
 * -EINVAL (why set), -EFBIG, -ENOMEM. Free *out with lp_pprof_free. */
int lp_pprof_decode(const void *data, size_t len, size_t max_bytes,
		    Perftools__Profiles__Profile **out, char *why, size_t why_len) LP_WUR;
int lp_pprof_check(const Perftools__Profiles__Profile *p, char *why, size_t why_len) LP_WUR;
void lp_pprof_free(Perftools__Profiles__Profile *p);
/* string_table[i], "" when out of range. */
const char *lp_pprof_str(const Perftools__Profiles__Profile *p, int64_t i);

/* id -> array index lookups of a checked profile, built once. */
struct lp_pprof_index {
	struct lp_id_pos *maps, *locs, *funcs;
};
int lp_pprof_index_build(const Perftools__Profiles__Profile *p,
			 struct lp_pprof_index *ix) LP_WUR;
void lp_pprof_index_free(struct lp_pprof_index *ix);
/* Position of id in the profile's mapping/location/function array, -1 if none. */
long lp_pprof_find_map(const Perftools__Profiles__Profile *p,
		       const struct lp_pprof_index *ix, uint64_t id);
long lp_pprof_find_loc(const Perftools__Profiles__Profile *p,
		       const struct lp_pprof_index *ix, uint64_t id);
long lp_pprof_find_func(const Perftools__Profiles__Profile *p,
			const struct lp_pprof_index *ix, uint64_t id);

struct lp_pprof_info {
	char type[32];               /* cpu, heap, mutex, or the first type's name */
	int value_index;             /* the default sample type */
	char value_type[64], value_unit[32];
	int64_t time_ns, duration_ns;
};
void lp_pprof_info(const Perftools__Profiles__Profile *p, struct lp_pprof_info *info);

/* The trace_id label of a sample (NULL if none). */
const char *lp_pprof_sample_trace(const Perftools__Profiles__Profile *p,
				  const Perftools__Profiles__Sample *s);
struct lp_trace_total {
	char trace_id[33];
	int64_t total;
};
/* Sum of value[value_index] per distinct well-formed trace id; *out is
 * malloc'd (caller frees), *n may be 0. */
int lp_pprof_trace_totals(const Perftools__Profiles__Profile *p, int value_index,
			  struct lp_trace_total **out, size_t *n) LP_WUR;
/* Packs and gzips p, appending to out. */
int lp_pprof_encode_gzip(const Perftools__Profiles__Profile *p, struct lp_buf *out) LP_WUR;

/* ---- pprof_merge.c ----------------------------------------------------------- */

struct lp_merge;
/* trace_id non-NULL: keep only samples labelled with it. max_samples caps the
 * merged profile (-EFBIG past it). */
int lp_merge_new(struct lp_merge **out, const char *trace_id, size_t max_samples) LP_WUR;
/* p must have passed lp_pprof_check. Nothing of p is kept. */
int lp_merge_add(struct lp_merge *m, const Perftools__Profiles__Profile *p) LP_WUR;
size_t lp_merge_n_samples(const struct lp_merge *m);
/* Appends the merged gzip pprof to out. */
int lp_merge_finish(struct lp_merge *m, struct lp_buf *out) LP_WUR;
/* Calls fn with the merged profile (valid during the call only); returns
 * what fn returns, or -ENOMEM. */
int lp_merge_view(struct lp_merge *m, int (*fn)(void *ctx, const Perftools__Profiles__Profile *p),
		  void *ctx) LP_WUR;
void lp_merge_free(struct lp_merge *m);

/* ---- flamegraph.c -------------------------------------------------------------- */

struct lp_flame_stats {
	int64_t total;              /* the root's value */
	size_t n_nodes;             /* nodes of the whole tree */
	size_t n_sent;              /* nodes written, "[other]" ones included */
};
/* Appends p (checked) as a d3-flame-graph tree {"name","value","children"} of
 * sample type value_index, at most max_nodes (>= 2) nodes: the heaviest, the
 * rest merged into "[other]" children (docs/COLLECTOR.md). out may hold part
 * of the tree on failure. */
int lp_flamegraph_json(const Perftools__Profiles__Profile *p, int value_index, size_t max_nodes,
		       struct lp_buf *out, struct lp_flame_stats *st) LP_WUR;
/* The sample type named want (a type such as "alloc_space", or an index);
 * NULL or "": the default (pprof's rule). -EINVAL when there is none such. */
int lp_flamegraph_value_index(const Perftools__Profiles__Profile *p, const char *want);

/* ---- store.c ---------------------------------------------------------------- */

struct lp_profile_row {
	const char *service, *type, *labels_json;
	const char *value_type, *value_unit;
	int64_t from_ns, until_ns;
	const void *gz;
	size_t gz_len;
	const struct lp_trace_total *traces;
	size_t n_traces;
};
struct lp_query {
	const char *service;        /* NULL: all */
	const char *type;           /* NULL: all (lists only) */
	const char *trace_id;       /* NULL: all */
	int64_t from_ns, until_ns;  /* profiles overlapping [from, until] */
	size_t limit;
};
struct lp_service_row {
	const char *service, *type;
	int64_t n_profiles, from_ns, until_ns, bytes;
};
struct lp_trace_row {
	const char *trace_id, *services, *unit;
	int64_t total, n_profiles;
};
typedef int (*lp_blob_fn)(void *ctx, const void *data, size_t len);
typedef int (*lp_service_fn)(void *ctx, const struct lp_service_row *row);
typedef int (*lp_trace_fn)(void *ctx, const struct lp_trace_row *row);

/* Opens (creating it, its directory 0700 and the file 0600) the database. */
int lp_store_open(struct lp_store **out, const char *path) LP_WUR;
void lp_store_close(struct lp_store *st);
/* One transaction: the profile and its trace index rows, or nothing. */
int lp_store_put(struct lp_store *st, const struct lp_profile_row *row) LP_WUR;
/* Calls fn with each matching stored gzip pprof, newest first, at most
 * q->limit; fn's nonzero return stops and is returned. */
int lp_store_profiles(struct lp_store *st, const struct lp_query *q, lp_blob_fn fn,
		      void *ctx) LP_WUR;
int lp_store_services(struct lp_store *st, lp_service_fn fn, void *ctx) LP_WUR;
/* Traces of profiles matching q (service and type optional), heaviest first. */
int lp_store_traces(struct lp_store *st, const struct lp_query *q, lp_trace_fn fn,
		    void *ctx) LP_WUR;
/* Deletes profiles older than max_age_s (0: no limit), then oldest first
 * until the stored bytes fit max_bytes (0: no limit). Returns the number
 * deleted or a negative errno. */
long lp_store_retain(struct lp_store *st, int64_t max_age_s, uint64_t max_bytes,
		     int64_t now_ns) LP_WUR;

#endif

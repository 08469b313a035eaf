/*
 * exporter/ private interfaces: the aggregation table (table.c), the pprof
 * encoder (pprof.c), gzip and the file sink (sink_file.c), and streaming: the
 * OTLP encoder (otlp.c), the Pyroscope request (pyroscope.c), delivery
 * (upload.c) over libcurl (http.c).
 */
#ifndef LP_EXPORTER_INTERNAL_H
#define LP_EXPORTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../preload/preload.h"
#include "../unwinder/unwinder.h"

#define LP_MAX_VALUES 4

/* ---- aggregation table (table.c) ------------------------------------------ */

struct lp_stack {
	uint64_t hash;
	const uint64_t *pcs;        /* leaf first; points into the table's arena */
	uint16_t depth;
	uint16_t truncated;
	struct lp_labels labels;
	int64_t values[LP_MAX_VALUES];
};

struct lp_table;

/* A table holding at most max_stacks distinct (stack, labels). NULL on ENOMEM. */
struct lp_table *lp_table_new(size_t max_stacks);
/*
 * Adds values to the entry of (pcs, depth, truncated, labels), creating it.
 * Returns 0, or -ENOSPC when the table is full (the sample is counted in
 * n_dropped) or -ENOMEM.
 */
int lp_table_add(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		 const struct lp_labels *labels, const int64_t *values, int n_values)
	__attribute__((warn_unused_result));
/* The index of the entry of (pcs, depth, truncated, labels), created with zero
 * values when missing; -ENOSPC or -ENOMEM like lp_table_add. */
int lp_table_intern(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		    const struct lp_labels *labels) __attribute__((warn_unused_result));
size_t lp_table_count(const struct lp_table *t);
/* The entry at i; the pointer is valid until the next lp_table_add or reset. */
const struct lp_stack *lp_table_get(const struct lp_table *t, size_t i);
/* The number of frames stored over all entries. */
size_t lp_table_frames(const struct lp_table *t);
/* Samples refused because the table was full since the last reset. */
uint64_t lp_table_dropped(const struct lp_table *t);
/* Empties the table, keeping its memory. */
void lp_table_reset(struct lp_table *t);
void lp_table_free(struct lp_table *t);

/* ---- heap profiles (heapprof.c) ------------------------------------------- */

struct lp_heapprof;

/* At most max_live live blocks and max_stacks stacks; rate is the sampling
 * rate in bytes; is_live says whether a recorded block is still allocated
 * (consulted whenever the live list fills). NULL on ENOMEM. */
struct lp_heapprof *lp_heapprof_new(size_t max_live, size_t max_stacks, int64_t rate,
				    int (*is_live)(uint64_t addr, uint64_t seq));
void lp_heapprof_free(struct lp_heapprof *h);
/* A sampled allocation (LP_SAMPLE_ALLOC) from the ring. */
void lp_heapprof_add(struct lp_heapprof *h, const struct lp_sample *s);
/* Forgets the blocks is_live() says were freed. */
void lp_heapprof_prune(struct lp_heapprof *h, int (*is_live)(uint64_t addr, uint64_t seq));
/* The profile's table: [alloc_objects, alloc_space, inuse_objects, inuse_space]
 * per stack. Owned by h, valid until the next build. */
const struct lp_table *lp_heapprof_build(struct lp_heapprof *h);
/* Nothing allocated this interval and nothing live. */
int lp_heapprof_empty(const struct lp_heapprof *h);
/* Samples dropped since the last call (tables full). */
uint64_t lp_heapprof_take_dropped(struct lp_heapprof *h);
/* Starts the next interval's allocation counts. */
void lp_heapprof_end_interval(struct lp_heapprof *h);
/* From now on, also sums allocations since start (for the pull endpoint). */
int lp_heapprof_keep_totals(struct lp_heapprof *h) __attribute__((warn_unused_result));
/* Like lp_heapprof_build, with alloc_* since start instead of this interval. */
const struct lp_table *lp_heapprof_build_totals(struct lp_heapprof *h);

/* ---- pprof encoding (pprof.c) --------------------------------------------- */

struct lp_profile_desc {
	int n_types;
	const char *types[LP_MAX_VALUES][2];   /* {type, unit} per value */
	const char *period_type[2];
	int64_t period;
	int64_t time_nanos, duration_nanos;
	const char *default_type;
	const char *comments[4];
	int n_comments;
};

/*
 * Encodes the table as an uncompressed pprof Profile. maps and sym may be NULL
 * (no mappings, no names). *out is malloc'd and owned by the caller.
 * Returns 0 or a negative errno.
 */
int lp_pprof_encode(const struct lp_table *t, const struct lp_profile_desc *d,
		    const struct lp_maps *maps, struct lp_symbolizer *sym,
		    uint8_t **out, size_t *len) __attribute__((warn_unused_result));

/* ---- gzip and the file sink (sink_file.c) ---------------------------------- */

/* gzip-compresses in; *out malloc'd. 0 or a negative errno. */
int lp_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
	__attribute__((warn_unused_result));

/*
 * Chooses the output directory (cfg value, else the default with its fallback),
 * creating it 0700 and refusing one that belongs to another user. Writes the
 * chosen path into dir. 0 or a negative errno (a warning was logged).
 */
int lp_sink_choose_dir(const char *wanted, char *dir, size_t size)
	__attribute__((warn_unused_result));

/*
 * Writes data as <dir>/<service>.<pid>.<type>.<seq>.pb.gz atomically (temporary
 * name, then a rename that never replaces), bumping *seq past existing names.
 * 0 or a negative errno.
 */
int lp_sink_write(const char *dir, const char *service, int pid, const char *type,
		  unsigned *seq, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));

/* ---- OTLP encoding (otlp.c) --------------------------------------------------- */

/* What names the source: the service and the resource attributes (NUL-ended
 * key, value pairs, as in struct lp_config). */
struct lp_otlp_source {
	const char *service;
	const char *resource;
	int n_resource;
};

/*
 * Encodes the table as an OTLP ExportProfilesServiceRequest: one resource, one
 * scope, one Profile per sample type of d sharing one dictionary. maps and
 * sym may be NULL. *out is malloc'd and owned by the caller. Returns 0 or a
 * negative errno. Exporter thread (the symbolizer's strings are borrowed).
 */
int lp_otlp_encode(const struct lp_table *t, const struct lp_profile_desc *d,
		   const struct lp_maps *maps, struct lp_symbolizer *sym,
		   const struct lp_otlp_source *src, uint8_t **out, size_t *len)
	__attribute__((warn_unused_result));
/* An ExportProfilesServiceResponse's partial success: 1 when it reports
 * rejected profiles or a message (copied into msg), else 0. */
int lp_otlp_partial_success(const uint8_t *resp, size_t len, long long *rejected, char *msg,
			    size_t size);

/* ---- the Pyroscope ingest request (pyroscope.c) --------------------------------- */

/* Percent-encodes all but A-Z a-z 0-9 - . _ ~ into out (always NUL-terminated,
 * cut when out is full). Returns the length. */
size_t lp_url_encode(const char *in, char *out, size_t size);
/* service{k=v,...} from the resource attributes (at most 32; keys made
 * [A-Za-z0-9_], and ",{}=" in values made "_"). Returns the length. */
size_t lp_pyroscope_name(const char *service, const char *resource, int n_resource, char *out,
			 size_t size);
/* The sample_type_config JSON naming d's types' units and aggregation. */
size_t lp_pyroscope_types_json(const struct lp_profile_desc *d, char *out, size_t size);
/*
 * One profile's request: *url = base/ingest?name=name_enc&from=&until=&spyName=libprof,
 * *body the multipart body holding gz at *gz_off, content_type its header value.
 * *url and *body are malloc'd, owned by the caller. 0 or -ENOMEM (nothing kept).
 */
int lp_pyroscope_request(const char *base, const char *name_enc, const struct lp_profile_desc *d,
			 const uint8_t *gz, size_t gz_len, char **url, uint8_t **body,
			 size_t *body_len, size_t *gz_off, char *content_type, size_t ct_size)
	__attribute__((warn_unused_result));

/* ---- HTTP transport (http.c): libcurl, loaded on first use ---------------------- */

#define LP_HTTP_SLOTS 4             /* transfers at once */
#define LP_HTTP_RESP_MAX 1024       /* response bytes kept (the rest is read and dropped) */

struct lp_http_result {
	int slot;
	int curl_rc;                /* CURLcode: 0 = an HTTP answer came */
	long status;
	const char *error;          /* libcurl's message when curl_rc != 0 */
	const char *retry_after;    /* the header's value, "" when absent */
	const uint8_t *resp;        /* the body's first bytes */
	size_t resp_len;
};

/* Loads libcurl (dlopen, once) and makes the transfer set. 0, or a negative
 * errno after one warning (then every later call fails at once). */
int lp_http_init(void) __attribute__((warn_unused_result));
/* Starts POSTing body (kept by the caller until the transfer ends) in slot. */
int lp_http_start(int slot, const char *url, const uint8_t *body, size_t len,
		  const char *content_type) __attribute__((warn_unused_result));
/* Moves the transfers on without blocking. */
void lp_http_perform(void);
/* Waits at most timeout_ms for socket activity, a libcurl timer or lp_http_wake. */
void lp_http_poll(int timeout_ms);
/* A finished transfer: 1 and *r (pointers valid until its slot is started
 * again), or 0 when there is none. */
int lp_http_next_done(struct lp_http_result *r);
/* Abandons the transfer in slot (the connection is closed). */
void lp_http_abort(int slot);
/* Any thread: makes a current or the next lp_http_poll return at once. */
void lp_http_wake(void);
/* Forked child: forget the parent's transfer set without touching it. */
void lp_http_after_fork(void);

/* ---- delivery (upload.c) -------------------------------------------------------- */

enum lp_verdict { LP_DELIVERED, LP_RETRY, LP_REJECTED };

/* What an attempt's outcome means: curl_rc a CURLcode, status the HTTP status. */
enum lp_verdict lp_upload_verdict(enum lp_protocol proto, int curl_rc, long status);
/* The wait before the next attempt after `failures` failed ones in a row: the
 * Retry-After delay when given (>= 0, capped at 300 s), else full jitter,
 * random % (min(30 s, 1 s << (failures - 1)) + 1) ms. */
uint32_t lp_upload_backoff_ms(int failures, long retry_after_ms, uint32_t random);
/* A Retry-After value (delay-seconds or IMF-fixdate) in ms from now_s; -1 when
 * absent or malformed. */
long lp_upload_retry_after_ms(const char *value, int64_t now_s);
/* A refusal's reason for the log: the body's first line (printable, cut to
 * size), or for OTLP a binary google.rpc.Status's message. */
void lp_upload_reason(const uint8_t *body, size_t len, int otlp, char *out, size_t size);

/* 1 when profiles are streamed: the first call loads libcurl; if that fails
 * (one warning), 0 from then on and profiles go to files. Exporter thread. */
int lp_upload_ready(void);
/*
 * Hands one profile over for delivery: gz the gzip pprof (what is spooled),
 * body the OTLP request (NULL for Pyroscope, built from gz; NULL for OTLP
 * means the encoding failed: spooled at once). Takes both buffers in every case.
 */
void lp_upload_enqueue(const char *type, const struct lp_profile_desc *d, uint8_t *gz,
		       size_t gz_len, uint8_t *body, size_t body_len);
/* Profiles wait to be delivered (queued or in transfer). */
int lp_upload_pending(void);
/* Moves transfers on, handles finished ones, starts due ones. Never blocks. */
void lp_upload_step(void);
/* Waits at most max_ms for transfer progress, a retry falling due or a wake-up. */
void lp_upload_wait(unsigned max_ms);
/* One step of a bounded flush: 1 while profiles are pending and can still be
 * delivered before deadline (CLOCK_MONOTONIC ns); waits at most 100 ms. */
int lp_upload_flush_step(uint64_t deadline);
/* Spools every pending profile (aborting transfers) and logs how many. */
void lp_upload_spool_all(const char *reason);
/* Profiles delivered so far. */
uint64_t lp_upload_delivered(void);
/* Any thread (lp_exporter_flush): wakes lp_upload_wait. */
void lp_upload_wake(void);
/* Forked child: an empty queue; the parent's transfers are never touched. */
void lp_upload_after_fork(void);

/* ---- the pull endpoint: requests (pull.c) and the HTTP server (serve.c) ------ */

enum lp_pull_kind { LP_PULL_CPU, LP_PULL_HEAP, LP_PULL_ALLOCS, LP_PULL_MUTEX };

/* What a pulled profile is built from; the exporter's, lent to pull.c. */
struct lp_pull_src {
	struct lp_heapprof *heap;   /* NULL when heap profiling is off */
	struct lp_maps *maps;
	struct lp_symbolizer *sym;
	void (*refresh_maps)(void);
};

/* Sets up the request slots and the cumulative tables. 0 or -ENOMEM. */
int lp_pull_init(void) __attribute__((warn_unused_result));
/* The exporter drained a CPU sample / a contention (values as in its tables). */
void lp_pull_cpu(const struct lp_sample *s, const int64_t *values);
void lp_pull_mutex(const struct lp_sample *s, const int64_t *values);
/* A request waits to be picked up (any thread). */
int lp_pull_wanted(void);
/*
 * Exporter thread, after each drain up to drained_to (CLOCK_MONOTONIC ns):
 * starts new CPU windows, answers heap/allocs/mutex requests, answers the CPU
 * windows that have ended (all of them when final: the program is exiting).
 */
void lp_pull_work(const struct lp_pull_src *src, uint64_t drained_to, int final);
/* Requests taken and not yet sent (any thread). */
int lp_pull_in_flight(void);
/* Forked child: forget every request (their connections are the parent's). */
void lp_pull_after_fork(void);

/* serve.c's side of a request: a slot taken for one HTTP request. */
struct lp_pull_req;
/* Server thread: a new request of kind for seconds (CPU); NULL when every
 * slot is busy. The exporter is woken. */
struct lp_pull_req *lp_pull_submit(enum lp_pull_kind kind, int seconds, void *conn);
/* Server thread: calls resume(conn) once for each answered request. */
void lp_pull_resume_done(void (*resume)(void *conn));
/* Server thread: the answer, once the request is done (1), else 0. The gzip
 * pprof moves to the caller (*gz NULL with *status and *error set on failure). */
int lp_pull_take(struct lp_pull_req *r, uint8_t **gz, size_t *len, int *status,
		 const char **error);
/* Server thread: the connection is finished with the slot. */
void lp_pull_release(struct lp_pull_req *r);

/* This process serves the endpoint: LIBPROF_PPROF_LISTEN is set, and it is
 * not a forked child of a fixed-port endpoint. */
int lp_serve_wanted(void);
/* Starts the endpoint's thread when lp_serve_wanted(). */
void lp_serve_start(void);
/* pull.c, exporter thread: the request of conn is answered; wake the server. */
void lp_serve_resume(void *conn);
/* Forked child: the parent's sockets are closed; with port 0 a new endpoint. */
void lp_serve_after_fork(void);

/* exporter.c: the sample types, period type, period and default type of a
 * profile of kind (LP_PULL_HEAP for the interval heap profile too). */
struct lp_profile_desc lp_desc_of(enum lp_pull_kind kind);
/* exporter.c: starts a detached libprof thread running fn(NULL), every signal
 * blocked (the caller holds its guard, so it is not a program thread).
 * 0 or a negative errno. */
int lp_spawn_thread(void *(*fn)(void *), size_t stack_size) __attribute__((warn_unused_result));
/* exporter.c: wakes the exporter thread (any thread). */
void lp_exporter_wake(void);

/* exporter.c: writes a profile as the file sink does (the spool). 0 or a
 * negative errno. */
int lp_exporter_spool(const char *type, const uint8_t *gz, size_t len)
	__attribute__((warn_unused_result));
/* The output directory ("" until chosen). */
const char *lp_exporter_dir(void);

#endif

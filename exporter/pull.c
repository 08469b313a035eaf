/*
 * The pull endpoint's requests, exporter side. serve.c takes one slot per
 * HTTP request and suspends the connection; this thread answers it:
 *   - profile?seconds=N: a CPU window [start, start + N s) fed by drain()
 *     alongside the interval table (both see every sample), answered when the
 *     drain has passed its end;
 *   - heap, allocs: the heap profile with alloc_* since start (heapprof.c's
 *     totals) and inuse_* now, as Go serves them;
 *   - mutex: contention since start, summed here.
 * A slot moves FREE -> NEW (server) -> ACTIVE -> DONE (exporter) -> FREE
 * (server, after the answer is sent); each side only touches the slots in
 * its own states, so the state word is the only shared thing.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PULL_SLOTS 16

enum { FREE, NEW, ACTIVE, DONE, ABANDONED };

struct lp_pull_req {
	_Atomic int state;
	int resumed;                /* server thread: the connection was resumed */
	enum lp_pull_kind kind;
	int seconds;
	void *conn;
	/* exporter side */
	uint64_t start, until, start_real;
	struct lp_table *cpu;
	/* the answer */
	uint8_t *gz;
	size_t len;
	int status;
	const char *error;
};

static struct {
	struct lp_pull_req slots[PULL_SLOTS];
	struct lp_table *mutex;     /* contentions since start */
	int n_windows;              /* ACTIVE CPU windows */
	int ready;
} pl;

int lp_pull_init(void)
{
	pl.mutex = lp_table_new((size_t)lp.cfg.opt_max_stacks);
	if (!pl.mutex)
		return -ENOMEM;
	pl.ready = 1;
	return 0;
}

void lp_pull_cpu(const struct lp_sample *s, const int64_t *values)
{
	if (!pl.n_windows)
		return;
	for (int i = 0; i < PULL_SLOTS; i++) {
		struct lp_pull_req *r = &pl.slots[i];
		if (atomic_load_explicit(&r->state, memory_order_relaxed) == ACTIVE && r->cpu &&
		    s->time_ns >= r->start && s->time_ns < r->until &&
		    lp_table_add(r->cpu, s->pcs, s->depth, s->truncated, &s->labels, values, 2) < 0) {
			/* counted by the table */
		}
	}
}

void lp_pull_mutex(const struct lp_sample *s, const int64_t *values)
{
	if (pl.mutex &&
	    lp_table_add(pl.mutex, s->pcs, s->depth, s->truncated, &s->labels, values, 2) < 0) {
		/* counted by the table */
	}
}

int lp_pull_wanted(void)
{
	if (!pl.ready)
		return 0;
	for (int i = 0; i < PULL_SLOTS; i++) {
		int st = atomic_load_explicit(&pl.slots[i].state, memory_order_acquire);
		if (st == NEW || st == ABANDONED)
			return 1;
	}
	return 0;
}

static void encode(struct lp_pull_req *r, const struct lp_pull_src *src, const struct lp_table *t,
		   const struct lp_profile_desc *d)
{
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	src->refresh_maps();
	lp_sym_reserve(src->sym, lp_table_frames(t));
	int rc = lp_pprof_encode(t, d, src->maps, src->sym, &raw, &raw_len);
	if (rc == 0)
		rc = lp_gzip(raw, raw_len, &r->gz, &r->len);
	free(raw);
	if (rc < 0) {
		r->status = 500;
		r->error = "libprof could not encode the profile (out of memory?)\n";
	} else {
		r->status = 200;
	}
}

static void answer_cpu(struct lp_pull_req *r, const struct lp_pull_src *src, uint64_t drained_to)
{
	uint64_t end = drained_to < r->until ? drained_to : r->until;
	char comment[160];
	lp_fmt(comment, sizeof(comment), "libprof " LP_VERSION ": pulled CPU profile of %d s%s; "
	       "%llu stacks not kept (table full)", r->seconds, end < r->until ?
	       ", cut short: the program is exiting" : "",
	       (unsigned long long)lp_table_dropped(r->cpu));
	struct lp_profile_desc d = lp_desc_of(LP_PULL_CPU);
	d.time_nanos = (int64_t)r->start_real;
	d.duration_nanos = (int64_t)(end - r->start);
	d.comments[0] = comment;
	d.n_comments = 1;
	encode(r, src, r->cpu, &d);
}

static void answer_heap(struct lp_pull_req *r, const struct lp_pull_src *src)
{
	const struct lp_table *t = lp_heapprof_build_totals(src->heap);
	struct lp_profile_desc d = lp_desc_of(r->kind);
	d.time_nanos = (int64_t)lp_now_ns(CLOCK_REALTIME);
	d.comments[0] = "libprof " LP_VERSION ": alloc_* since the program started, inuse_* now";
	d.n_comments = 1;
	encode(r, src, t, &d);
}

static void answer_mutex(struct lp_pull_req *r, const struct lp_pull_src *src)
{
	char comment[160];
	lp_fmt(comment, sizeof(comment), "libprof " LP_VERSION ": contention since the program "
	       "started; one contention in %d sampled, values scaled by it", lp.cfg.opt_mutex_rate);
	struct lp_profile_desc d = lp_desc_of(LP_PULL_MUTEX);
	d.time_nanos = (int64_t)lp_now_ns(CLOCK_REALTIME);
	d.comments[0] = comment;
	d.n_comments = 1;
	encode(r, src, pl.mutex, &d);
}

static void drop_window(struct lp_pull_req *r)
{
	if (r->cpu) {
		lp_table_free(r->cpu);
		r->cpu = NULL;
		pl.n_windows--;
	}
}

/* Hands the answer over, unless the server gave the request up meanwhile. */
static void finish(struct lp_pull_req *r)
{
	drop_window(r);
	void *conn = r->conn;
	int st = atomic_load_explicit(&r->state, memory_order_acquire);
	if ((st == NEW || st == ACTIVE) &&
	    atomic_compare_exchange_strong_explicit(&r->state, &st, DONE, memory_order_acq_rel,
						    memory_order_acquire)) {
		lp_serve_resume(conn);  /* r may be released from here on */
		return;
	}
	free(r->gz);                /* ABANDONED */
	r->gz = NULL;
	atomic_store_explicit(&r->state, FREE, memory_order_release);
}

static void fail(struct lp_pull_req *r, int status, const char *error)
{
	r->status = status;
	r->error = error;
	finish(r);
}

static void start(struct lp_pull_req *r, const struct lp_pull_src *src, uint64_t drained_to)
{
	r->gz = NULL;
	r->len = 0;
	r->error = NULL;
	if (r->kind != LP_PULL_CPU) {
		if (r->kind == LP_PULL_MUTEX)
			answer_mutex(r, src);
		else if (src->heap)
			answer_heap(r, src);
		else
			r->status = 404, r->error = "heap profiling is off (LIBPROF_HEAP_RATE=0)\n";
		finish(r);
		return;
	}
	r->cpu = lp_table_new((size_t)lp.cfg.opt_max_stacks);
	if (!r->cpu) {
		fail(r, 503, "libprof is out of memory for another profile\n");
		return;
	}
	/* Samples not drained yet are at or after drained_to: the window sees
	 * every sample of its N seconds. */
	r->start = drained_to;
	r->until = drained_to + (uint64_t)r->seconds * 1000000000u;
	r->start_real = lp_now_ns(CLOCK_REALTIME) - (lp_now_ns(CLOCK_MONOTONIC) - drained_to);
	pl.n_windows++;
	int st = NEW;
	if (!atomic_compare_exchange_strong(&r->state, &st, ACTIVE))
		drop_window(r);     /* abandoned meanwhile: freed below */
}

void lp_pull_work(const struct lp_pull_src *src, uint64_t drained_to, int final)
{
	if (!pl.ready)
		return;
	for (int i = 0; i < PULL_SLOTS; i++) {
		struct lp_pull_req *r = &pl.slots[i];
		switch (atomic_load_explicit(&r->state, memory_order_acquire)) {
		case NEW:
			start(r, src, drained_to);
			if (!final || atomic_load_explicit(&r->state, memory_order_relaxed) != ACTIVE)
				break;
			__attribute__((fallthrough));   /* exiting: answer what there is */
		case ACTIVE:
			if (drained_to >= r->until || final) {
				answer_cpu(r, src, drained_to);
				finish(r);
			}
			break;
		case ABANDONED:
			drop_window(r);
			atomic_store_explicit(&r->state, FREE, memory_order_release);
			break;
		default:
			break;
		}
	}
}

struct lp_pull_req *lp_pull_submit(enum lp_pull_kind kind, int seconds, void *conn)
{
	for (int i = 0; i < PULL_SLOTS; i++) {
		struct lp_pull_req *r = &pl.slots[i];
		if (atomic_load_explicit(&r->state, memory_order_acquire) != FREE)
			continue;
		r->kind = kind;
		r->resumed = 0;
		r->seconds = seconds;
		r->conn = conn;
		atomic_store_explicit(&r->state, NEW, memory_order_release);
		lp_exporter_wake();
		return r;
	}
	return NULL;
}

void lp_pull_resume_done(void (*resume)(void *conn))
{
	for (int i = 0; i < PULL_SLOTS; i++) {
		struct lp_pull_req *r = &pl.slots[i];
		if (!r->resumed && atomic_load_explicit(&r->state, memory_order_acquire) == DONE) {
			r->resumed = 1;
			resume(r->conn);
		}
	}
}

int lp_pull_take(struct lp_pull_req *r, uint8_t **gz, size_t *len, int *status,
		 const char **error)
{
	if (atomic_load_explicit(&r->state, memory_order_acquire) != DONE)
		return 0;
	*gz = r->gz;
	*len = r->len;
	*status = r->status;
	*error = r->error;
	r->gz = NULL;
	return 1;
}

void lp_pull_release(struct lp_pull_req *r)
{
	for (;;) {
		int st = atomic_load_explicit(&r->state, memory_order_acquire);
		if (st == DONE && atomic_compare_exchange_strong(&r->state, &st, FREE)) {
			free(r->gz);    /* an answer never sent */
			r->gz = NULL;
			return;
		}
		if ((st == NEW || st == ACTIVE) &&
		    atomic_compare_exchange_strong(&r->state, &st, ABANDONED)) {
			lp_exporter_wake();     /* the exporter frees it */
			return;
		}
		if (st == FREE || st == ABANDONED)
			return;
	}
}

int lp_pull_in_flight(void)
{
	int n = 0;
	for (int i = 0; pl.ready && i < PULL_SLOTS; i++)
		n += atomic_load_explicit(&pl.slots[i].state, memory_order_acquire) != FREE;
	return n;
}

void lp_pull_after_fork(void)
{
	memset(&pl, 0, sizeof(pl));  /* the parent's tables are abandoned, never touched */
}

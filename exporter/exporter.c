/*
 * The exporter thread: the only consumer of the sample ring. It wakes every
 * DRAIN_MS (sooner while samples arrive fast), moves samples into the aggregation
 * table, and at each interval's end (or on a flush request from exit/exec)
 * symbolizes, encodes, compresses and writes one profile per type: as a file,
 * or handed to upload.c when streaming. While uploads are pending, its wait is
 * libcurl's poll on their sockets (bounded the same way, woken by a flush);
 * at exit and exec they get at most LIBPROF_EXIT_TIMEOUT, then are spooled.
 *
 * Locking: `mu` guards the request/acknowledge counters only; it is a leaf
 * lock, never held while working. The thread runs with every signal blocked
 * and its reentrancy guard held, so nothing it does is sampled or recursed into.
 */
#include "exporter.h"
#include "internal.h"

#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 100
#define DRAIN_FAST_MS 20
#define DRAIN_RUSH_MS 5
#define PULL_EXIT_MS 1000           /* at exit, for pulled profiles to be sent */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t wake, done;  /* CLOCK_MONOTONIC */
	unsigned long requested, completed;
	int final_requested, running;
	int pull;                   /* the pull endpoint is served: feed pull.c */
	/* exporter thread only */
	struct lp_table *cpu;
	struct lp_heapprof *heap;   /* NULL when heap profiling is off */
	struct lp_table *mutex;     /* [contentions, delay ns], scaled by the rate */
	struct lp_symbolizer *sym;
	struct lp_maps maps;
	char dir[LP_PATH_MAX];
	int dir_state;              /* 0 unknown, 1 chosen, -1 unusable */
	unsigned seq_cpu, seq_heap, seq_mutex;
	int heap_had_live;          /* the last heap profile showed live blocks */
	uint64_t interval_start_mono, interval_start_real;
	uint64_t n_written, n_failed;
} ex;

static void init_sync(void)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&ex.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ex.wake, &ca);
	pthread_cond_init(&ex.done, &ca);
	pthread_condattr_destroy(&ca);
}

static void drain(uint64_t cutoff_ns)
{
	struct lp_sample *s;
	while ((s = lp_ring_peek()) && s->time_ns < cutoff_ns) {
		if (s->kind == LP_SAMPLE_CPU) {
			int64_t values[2] = { s->weight, s->weight * lp.period_ns };
			if (lp_table_add(ex.cpu, s->pcs, s->depth, s->truncated, &s->labels,
					 values, 2) < 0) {
				/* counted by the table */
			}
			if (ex.pull)
				lp_pull_cpu(s, values);
		} else if (s->kind == LP_SAMPLE_ALLOC && ex.heap) {
			lp_heapprof_add(ex.heap, s);
		} else if (s->kind == LP_SAMPLE_MUTEX) {
			int64_t values[2] = { s->weight, (int64_t)s->size * s->weight };
			if (lp_table_add(ex.mutex, s->pcs, s->depth, s->truncated, &s->labels,
					 values, 2) < 0) {
				/* counted by the table */
			}
			if (ex.pull)
				lp_pull_mutex(s, values);
		}
		lp_ring_pop();
	}
}

static void refresh_maps(void)
{
	struct lp_maps fresh;
	if (lp_maps_read(&fresh, &ex.maps, lp.exe_path) < 0)
		return;
	if (fresh.digest != ex.maps.digest)
		lp_sym_clear(ex.sym);   /* a library came or went: addresses changed meaning */
	lp_maps_free(&ex.maps);
	ex.maps = fresh;
}

static int ensure_dir(void)
{
	if (ex.dir_state == 0)
		ex.dir_state = lp_sink_choose_dir(lp.cfg.opt_output_dir, ex.dir, sizeof(ex.dir)) == 0
				       ? 1 : -1;
	return ex.dir_state > 0 ? 0 : -ENOENT;
}

static unsigned *seq_of(const char *type)
{
	return strcmp(type, "cpu") == 0 ? &ex.seq_cpu : strcmp(type, "heap") == 0 ? &ex.seq_heap
									   : &ex.seq_mutex;
}

int lp_exporter_spool(const char *type, const uint8_t *gz, size_t len)
{
	unsigned *seq = seq_of(type);
	int rc = ensure_dir();
	if (rc == 0)
		rc = lp_sink_write(ex.dir, lp.service, lp.pid, type, seq, gz, len);
	if (rc == 0) {
		ex.n_written++;
		lp_log(LP_LOG_DEBUG, "wrote %s/%s.%d.%s.%06u.pb.gz", ex.dir, lp.service, (int)lp.pid,
		       type, *seq - 1);
	}
	return rc;
}

const char *lp_exporter_dir(void)
{
	return ex.dir;
}

/* The service.name sent with OTLP: as given, else the program's file name. */
static const char *otlp_service(void)
{
	const char *slash = strrchr(lp.exe_path, '/');
	return lp.cfg.opt_service[0] ? lp.cfg.opt_service : slash && slash[1] ? slash + 1 : lp.service;
}

/* Hands the profile to upload.c (which owns gz from here), with its OTLP
 * request when that is the protocol. */
static void stream(const char *type, const struct lp_table *t, const struct lp_profile_desc *d,
		   uint8_t *gz, size_t gz_len)
{
	uint8_t *raw = NULL, *body = NULL;
	size_t raw_len = 0, len = 0;
	if (lp.cfg.opt_protocol == LP_PROTO_OTLP) {
		struct lp_otlp_source src = { otlp_service(), lp.cfg.opt_resource,
					      lp.cfg.opt_n_resource };
		int rc = lp_otlp_encode(t, d, &ex.maps, ex.sym, &src, &raw, &raw_len);
		if (rc == 0 && lp.cfg.opt_otlp_gzip) {
			rc = lp_gzip(raw, raw_len, &body, &len);
			free(raw);
		} else if (rc == 0) {
			body = raw;
			len = raw_len;
		}
		if (rc < 0 && (ex.n_failed++ == 0 || lp.cfg.opt_log == LP_LOG_DEBUG))
			lp_log(LP_LOG_WARN, "could not encode a %s profile for OTLP (%s); it is written "
			       "as a file", type, strerror(-rc));
	}
	lp_upload_enqueue(type, d, gz, gz_len, body, len);
}

/* Symbolizes, encodes, compresses and writes or streams one profile of the interval. */
static void emit(const char *type, const struct lp_table *t, struct lp_profile_desc *d,
		 uint64_t end_mono)
{
	uint8_t *raw = NULL, *gz = NULL;
	size_t raw_len, gz_len;
	d->time_nanos = (int64_t)ex.interval_start_real;
	d->duration_nanos = (int64_t)(end_mono - ex.interval_start_mono);
	uint64_t t0 = lp_now_ns(CLOCK_THREAD_CPUTIME_ID);
	refresh_maps();
	lp_sym_reserve(ex.sym, lp_table_frames(t));
	int rc = lp_pprof_encode(t, d, &ex.maps, ex.sym, &raw, &raw_len);
	if (rc == 0)
		rc = lp_gzip(raw, raw_len, &gz, &gz_len);
	if (rc == 0 && lp.cfg.opt_protocol != LP_PROTO_FILE && lp_upload_ready()) {
		stream(type, t, d, gz, gz_len);
		gz = NULL;
	} else if (rc == 0) {
		rc = lp_exporter_spool(type, gz, gz_len);
	}
	if (rc == 0) {
		lp_log(LP_LOG_DEBUG, "%s profile: %zu stacks, %llu us", type, lp_table_count(t),
		       (unsigned long long)(lp_now_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / 1000);
	} else if (ex.n_failed++ == 0 || lp.cfg.opt_log == LP_LOG_DEBUG) {
		lp_log(LP_LOG_WARN, "could not write a %s profile (%s); it is lost, and later failures are logged at debug level",
		       type, strerror(-rc));
	}
	free(raw);
	free(gz);
}

struct lp_profile_desc lp_desc_of(enum lp_pull_kind kind)
{
	static const struct lp_profile_desc cpu = {
		.n_types = 2,
		.types = { { "samples", "count" }, { "cpu", "nanoseconds" } },
		.period_type = { "cpu", "nanoseconds" },
		.default_type = "cpu",
	}, heap = {
		.n_types = 4,
		.types = { { "alloc_objects", "count" }, { "alloc_space", "bytes" },
			   { "inuse_objects", "count" }, { "inuse_space", "bytes" } },
		.period_type = { "space", "bytes" },
		.default_type = "inuse_space",
	}, mutex = {
		.n_types = 2,
		.types = { { "contentions", "count" }, { "delay", "nanoseconds" } },
		.period_type = { "contentions", "count" },
		.default_type = "delay",
	};
	struct lp_profile_desc d = kind == LP_PULL_CPU ? cpu : kind == LP_PULL_MUTEX ? mutex : heap;
	d.period = kind == LP_PULL_CPU ? lp.period_ns : kind == LP_PULL_MUTEX
		   ? lp.cfg.opt_mutex_rate : lp.cfg.opt_heap_rate;
	if (kind == LP_PULL_ALLOCS)
		d.default_type = "alloc_space";
	return d;
}

static void write_cpu_profile(uint64_t end_mono)
{
	uint64_t ring_drops = lp_ring_take_dropped(LP_SAMPLE_CPU);
	uint64_t loader = atomic_exchange(&lp.n_dropped[LP_DROP_LOADER], 0);
	uint64_t busy = atomic_exchange(&lp.n_dropped[LP_DROP_BUSY], 0);
	uint64_t slots = atomic_exchange(&lp.n_dropped[LP_DROP_NO_THREAD_SLOT], 0);
	uint64_t table = lp_table_dropped(ex.cpu);
	if (lp_table_count(ex.cpu) == 0 && !ring_drops && !table)
		return;             /* nothing happened: no file */
	char comment[256];
	lp_fmt(comment, sizeof(comment),
	       "libprof " LP_VERSION ": dropped samples: %llu ring full, %llu stack table full, "
	       "%llu in dynamic loader, %llu reentrant, %llu thread limit",
	       (unsigned long long)ring_drops, (unsigned long long)table,
	       (unsigned long long)loader, (unsigned long long)busy, (unsigned long long)slots);
	struct lp_profile_desc d = lp_desc_of(LP_PULL_CPU);
	d.comments[0] = comment;
	d.n_comments = 1;
	emit("cpu", ex.cpu, &d, end_mono);
	lp_table_reset(ex.cpu);
}

static void write_heap_profile(uint64_t end_mono)
{
	if (!ex.heap)
		return;
	lp_heapprof_prune(ex.heap, lp_heap_is_live);
	uint64_t ring_drops = lp_ring_take_dropped(LP_SAMPLE_ALLOC);
	uint64_t live_full = atomic_exchange(&lp.n_dropped[LP_DROP_HEAP_LIVE_FULL], 0);
	/* An empty interval writes nothing, except right after live blocks were
	 * shown: the next profile must say they are gone. */
	if (lp_heapprof_empty(ex.heap) && !ring_drops && !live_full && !ex.heap_had_live)
		return;
	ex.heap_had_live = !lp_heapprof_empty(ex.heap);
	const struct lp_table *t = lp_heapprof_build(ex.heap);
	char comment[256];
	lp_fmt(comment, sizeof(comment),
	       "libprof " LP_VERSION ": dropped heap samples: %llu ring full, %llu live table full, "
	       "%llu stack tables full", (unsigned long long)ring_drops,
	       (unsigned long long)live_full, (unsigned long long)lp_heapprof_take_dropped(ex.heap));
	struct lp_profile_desc d = lp_desc_of(LP_PULL_HEAP);
	d.comments[0] = comment;
	d.n_comments = 1;
	emit("heap", t, &d, end_mono);
	lp_heapprof_end_interval(ex.heap);
}

static void write_mutex_profile(uint64_t end_mono)
{
	uint64_t ring_drops = lp_ring_take_dropped(LP_SAMPLE_MUTEX);
	uint64_t table = lp_table_dropped(ex.mutex);
	if (lp_table_count(ex.mutex) == 0 && !ring_drops && !table)
		return;
	char comment[256];
	lp_fmt(comment, sizeof(comment),
	       "libprof " LP_VERSION ": dropped contention samples: %llu ring full, %llu stack table full; "
	       "one contention in %d sampled, values scaled by it", (unsigned long long)ring_drops,
	       (unsigned long long)table, lp.cfg.opt_mutex_rate);
	struct lp_profile_desc d = lp_desc_of(LP_PULL_MUTEX);
	d.comments[0] = comment;
	d.n_comments = 1;
	emit("mutex", ex.mutex, &d, end_mono);
	lp_table_reset(ex.mutex);
}

static void end_interval(uint64_t end_mono)
{
	write_cpu_profile(end_mono);
	write_heap_profile(end_mono);
	write_mutex_profile(end_mono);
	ex.interval_start_real += end_mono - ex.interval_start_mono;
	ex.interval_start_mono = end_mono;
}

static struct timespec deadline_in(uint64_t ns)
{
	uint64_t t = lp_now_ns(CLOCK_MONOTONIC) + ns;
	struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };
	return ts;
}

static void log_own_cpu(void)
{
	uint64_t cpu_ns = lp_now_ns(CLOCK_THREAD_CPUTIME_ID);
	lp_log(LP_LOG_INFO, "exporter thread: %llu us CPU, %llu profiles written, %llu delivered",
	       (unsigned long long)(cpu_ns / 1000), (unsigned long long)ex.n_written,
	       (unsigned long long)lp_upload_delivered());
	uint64_t fast, slow, rules;
	lp_unwind_stats(&fast, &slow, &rules);
	lp_log(LP_LOG_INFO, "unwinder: %llu stacks walked from cached frame rules, %llu by "
	       "libunwind, %llu frame rules read", (unsigned long long)fast,
	       (unsigned long long)slow, (unsigned long long)rules);
}

/*
 * Waits for the next drain, a flush request, or (while uploads are pending)
 * transfer progress. A flush wakes both waits: the condition variable, and
 * libcurl's poll through lp_upload_wake, which also cuts short the next poll
 * when it comes in between.
 */
static void wait_for_work(unsigned drain_ms)
{
	pthread_mutex_lock(&ex.mu);
	int idle = ex.requested == ex.completed && !lp_pull_wanted();
	if (idle && !lp_upload_pending()) {
		struct timespec until = deadline_in((uint64_t)drain_ms * 1000000u);
		while (ex.requested == ex.completed && !lp_pull_wanted() &&
		       pthread_cond_timedwait(&ex.wake, &ex.mu, &until) != ETIMEDOUT)
			;
		idle = 0;
	}
	pthread_mutex_unlock(&ex.mu);
	if (idle)
		lp_upload_wait(drain_ms);
}

/* Exit or exec: pending uploads get at most LIBPROF_EXIT_TIMEOUT (from now,
 * the profiles being written), then are written as files. */
static void flush_uploads(int final)
{
	uint64_t deadline = lp_now_ns(CLOCK_MONOTONIC) + (uint64_t)lp.cfg.opt_exit_timeout_ns;
	while (lp_upload_flush_step(deadline))
		drain(lp_now_ns(CLOCK_MONOTONIC));
	lp_upload_spool_all(final ? "the program exited first" : "the program called exec first");
}

/*
 * How long to wait before the next drain: shorter while samples arrive fast,
 * judged by how many were claimed during the last wait (*claimed: the ring's
 * running count then; its fill just after a drain says nothing of that). More
 * than an eighth of the ring in a wait: DRAIN_FAST_MS; more than half, or the
 * ring still a quarter full: a step faster, down to DRAIN_RUSH_MS, so that
 * 2048 slots take some 400,000 samples a second before any is dropped.
 */
static unsigned next_wait_ms(unsigned waited_ms, uint64_t *claimed)
{
	uint64_t now = lp_ring_claimed(), slots = (uint64_t)lp.cfg.opt_ring_slots;
	uint64_t came = now - *claimed;
	*claimed = now;
	if (came > slots / 2 || lp_ring_fill_percent() > 25)
		return waited_ms <= DRAIN_FAST_MS ? DRAIN_RUSH_MS : DRAIN_FAST_MS;
	return came > slots / 8 ? DRAIN_FAST_MS : DRAIN_MS;
}

static int read_subs(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	*(unsigned long long *)arg = info->dlpi_subs;
	return 1;                   /* the counter is the same in every entry */
}

/* Code unloaded without libprof's dlclose (glibc's own unloading of gconv
 * modules, say): the unwinder's cached frame rules of its addresses go. */
static void watch_unloads(void)
{
	static unsigned long long seen;
	unsigned long long subs = seen;
	dl_iterate_phdr(read_subs, &subs);
	if (subs != seen) {
		seen = subs;
		lp_unwind_forget();
	}
}

static void *exporter_main(void *arg)
{
	(void)arg;
	const struct lp_pull_src pull_src = { ex.heap, &ex.maps, ex.sym, refresh_maps };
	lp_guard_enter();
	lp_self.fd_keeper = 1;      /* libcurl's sockets are libprof's (preload/fds.c) */
	pthread_setname_np(pthread_self(), "libprof");
	uint64_t next_end = ex.interval_start_mono + (uint64_t)lp.cfg.opt_interval_ns;
	unsigned wait_ms = DRAIN_MS;
	uint64_t claimed = lp_ring_claimed();
	for (;;) {
		wait_ms = next_wait_ms(wait_ms, &claimed);
		wait_for_work(wait_ms);
		pthread_mutex_lock(&ex.mu);
		unsigned long want = ex.requested;
		int final = ex.final_requested;
		pthread_mutex_unlock(&ex.mu);

		uint64_t now = lp_now_ns(CLOCK_MONOTONIC);
		while (now >= next_end) {   /* an interval (or more) has ended */
			drain(next_end);
			end_interval(next_end);
			next_end += (uint64_t)lp.cfg.opt_interval_ns;
		}
		watch_unloads();
		drain(now);
		if (ex.pull)
			lp_pull_work(&pull_src, now, 0);
		lp_upload_step();
		if (want != ex.completed) {
			drain(UINT64_MAX);
			if (ex.pull && final)
				lp_pull_work(&pull_src, now, 1);   /* answer what there is */
			end_interval(now);
			flush_uploads(final);
			if (final)
				log_own_cpu();
			pthread_mutex_lock(&ex.mu);
			ex.completed = want;
			if (final)
				ex.running = 0;
			pthread_cond_broadcast(&ex.done);
			pthread_mutex_unlock(&ex.mu);
			if (final)
				return NULL;
		}
	}
}

static int start_thread(void)
{
	ex.cpu = lp_table_new((size_t)lp.cfg.opt_max_stacks);
	ex.mutex = lp_table_new((size_t)lp.cfg.opt_max_stacks);
	ex.sym = lp_sym_new(32768);
	if (lp_heap_on)
		ex.heap = lp_heapprof_new((size_t)lp.cfg.opt_heap_max_live,
					  (size_t)lp.cfg.opt_max_stacks, lp.cfg.opt_heap_rate,
					  lp_heap_is_live);
	if (!ex.cpu || !ex.mutex || !ex.sym || (lp_heap_on && !ex.heap))
		return -ENOMEM;
	if (lp_serve_wanted()) {
		ex.pull = lp_pull_init() == 0 && (!ex.heap || lp_heapprof_keep_totals(ex.heap) == 0);
		if (!ex.pull)
			lp_log(LP_LOG_WARN, "out of memory for the pprof endpoint's tables; it is off");
	}
	ex.interval_start_mono = lp_now_ns(CLOCK_MONOTONIC);
	ex.interval_start_real = lp_now_ns(CLOCK_REALTIME);
	int rc = lp_spawn_thread(exporter_main, 512 * 1024);
	if (rc != 0)
		return rc;
	ex.running = 1;
	return 0;
}

int lp_spawn_thread(void *(*fn)(void *), size_t stack_size)
{
	pthread_t tid;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, stack_size);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&tid, &attr, fn, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -rc;
}

int lp_exporter_start(void)
{
	init_sync();
	int rc = start_thread();
	if (rc == 0 && ex.pull)
		lp_serve_start();
	return rc;
}

void lp_exporter_wake(void)
{
	pthread_mutex_lock(&ex.mu);
	pthread_cond_signal(&ex.wake);
	pthread_mutex_unlock(&ex.mu);
	lp_upload_wake();
}

void lp_exporter_flush(int final, int timeout_ms)
{
	pthread_mutex_lock(&ex.mu);
	if (!ex.running) {
		pthread_mutex_unlock(&ex.mu);
		return;
	}
	unsigned long mine = ++ex.requested;
	ex.final_requested |= final;
	pthread_cond_signal(&ex.wake);
	lp_upload_wake();
	struct timespec until = deadline_in((uint64_t)timeout_ms * 1000000u);
	while (ex.completed < mine &&
	       pthread_cond_timedwait(&ex.done, &ex.mu, &until) != ETIMEDOUT)
		;
	if (ex.completed < mine)
		lp_log(LP_LOG_WARN, "the final profile was not written within %d ms", timeout_ms);
	pthread_mutex_unlock(&ex.mu);
	/* Exit: pulled profiles answered at the end (cut short) get a moment to go out. */
	for (int waited = 0; final && ex.pull && lp_pull_in_flight() && waited < PULL_EXIT_MS;
	     waited += 10)
		usleep(10000);
}

void lp_exporter_after_fork(void)
{
	/* The parent's thread does not exist here, and its tables, symbolizer and
	 * locks may be mid-update: abandon them (copy-on-write pages, never touched
	 * again) and start clean. */
	memset(&ex, 0, sizeof(ex));
	lp_upload_after_fork();
	lp_serve_after_fork();      /* closes the parent's listening socket here */
	lp_pull_after_fork();
	init_sync();
	if (start_thread() < 0)
		lp_log(LP_LOG_WARN, "forked child %d: could not start the exporter thread; not profiling it",
		       (int)lp.pid);
	else if (ex.pull)
		lp_serve_start();
}

/*
 * preload/ API: configuration, process state, the raw logger, the sample ring and
 * the per-thread sampling state. Everything that records (wrappers/, the signal
 * handler) and the exporter thread meet here; nothing here reaches into exporter/.
 */
#ifndef LP_PRELOAD_H
#define LP_PRELOAD_H

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <ucontext.h>

#define LP_EXPORT __attribute__((visibility("default")))
#define LP_TLS __thread __attribute__((tls_model("initial-exec")))
#define LP_MUST_CHECK __attribute__((warn_unused_result))
#define LP_VERSION "0.1.0"

/* ---- configuration (config.c) ------------------------------------------ */

enum lp_log_level { LP_LOG_DEBUG, LP_LOG_INFO, LP_LOG_WARN, LP_LOG_OFF };

#define LP_PATH_MAX 4096
#define LP_NAME_MAX 128
#define LP_URL_MAX 1024
#define LP_LIST_MAX 4096

/* Where profiles go: files, or streamed (exporter/upload.c) with files as the spool. */
enum lp_protocol { LP_PROTO_FILE, LP_PROTO_PYROSCOPE, LP_PROTO_OTLP };

struct lp_config {
	int opt_enable;             /* LIBPROF_ENABLE and OTEL_SDK_DISABLED */
	int opt_cpu_hz;             /* 0 = CPU profiling off */
	int opt_cpu_signal;
	int opt_cpu_signal_explicit; /* set by the user: never moved */
	int opt_max_depth;
	int64_t opt_interval_ns;
	int opt_follow_exec;
	int opt_ring_slots;         /* power of two */
	int opt_max_stacks;         /* aggregation table cap per interval */
	int64_t opt_heap_rate;      /* mean bytes between heap samples; 0 = off */
	int opt_heap_max_live;      /* sampled live blocks tracked at most */
	int opt_mutex_rate;         /* one contention in N is sampled; 0 = off */
	int opt_trace;              /* pick up traceparent from socket reads */
	enum lp_log_level opt_log;
	char opt_output_dir[LP_PATH_MAX]; /* "" = default directory */
	char opt_service[LP_NAME_MAX];    /* OTEL_SERVICE_NAME, else service.name, "" = program name */
	/* streaming (config_net.c) */
	enum lp_protocol opt_protocol;
	char opt_url[LP_URL_MAX];         /* Pyroscope: base URL; OTLP: the full URL */
	char opt_headers[LP_LIST_MAX];    /* opt_n_headers "Name: value" strings, each NUL-ended */
	int opt_n_headers;
	char opt_resource[LP_LIST_MAX];   /* opt_n_resource NUL-ended key, value pairs (no service.name) */
	int opt_n_resource;
	char opt_tls_ca[LP_PATH_MAX];     /* "" = the system's CA certificates */
	int opt_otlp_gzip;                /* OTLP: Content-Encoding: gzip */
	int64_t opt_upload_timeout_ns;    /* connect + transfer, per request */
	int64_t opt_exit_timeout_ns;      /* at exit and exec: time left to pending uploads */
	int opt_upload_queue;             /* undelivered profiles held at most ... */
	int64_t opt_upload_queue_bytes;   /* ... and their bytes */
	/* the pull endpoint (config_pull.c) */
	int opt_pprof_on;                 /* LIBPROF_PPROF_LISTEN was set and valid */
	int opt_pprof_family;             /* AF_INET or AF_INET6 */
	unsigned char opt_pprof_addr[16]; /* network byte order */
	int opt_pprof_port;               /* 0 = any free port */
	char opt_pprof_token[LP_NAME_MAX]; /* "" = no token asked */
};

/*
 * Fills cfg from envp (a NULL-terminated "NAME=value" array). Every bad value or
 * unknown LIBPROF_* name produces exactly one line passed to warn (without the
 * trailing newline); the default is used. Never fails. Not async-signal-safe.
 */
void lp_config_load(struct lp_config *cfg, char *const *envp,
		    void (*warn)(const char *line));

/* The names of every variable libprof reads, NULL-terminated (for docs/tests). */
extern const char *const lp_config_names[];

/* One warning line, formatted as lp_fmt does, passed to warn (config*.c). */
void lp_config_say(void (*warn)(const char *), const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * config_net.c: the streaming variables (protocol, endpoints, headers, resource
 * attributes, TLS CA), read and resolved after the others: the OTel rules of
 * docs/wire-formats.md section 5. Same contract as lp_config_load: one line
 * per bad value, never fails. Header values are never shown in warnings.
 */
void lp_config_net_load(struct lp_config *cfg, char *const *envp,
			void (*warn)(const char *line));
/*
 * config_pull.c: LIBPROF_PPROF_LISTEN and LIBPROF_PPROF_TOKEN, the on-demand
 * pprof endpoint. Same contract: one line per bad value (the endpoint stays
 * off), never fails. The token is never shown in warnings.
 */
void lp_config_pull_load(struct lp_config *cfg, char *const *envp,
			 void (*warn)(const char *line));
/* Parses a listen address: "PORT", ":PORT", "IPv4:PORT", "[IPv6]:PORT" or
 * "localhost:PORT" (no host = 127.0.0.1). 0, or -EINVAL with the reason in why. */
int lp_listen_parse(const char *text, int *family, unsigned char addr[16], int *port,
		    char *why, size_t why_size);
/* The value of name in envp; NULL when unset or empty. */
const char *lp_env_value(char *const *envp, const char *name);
/* Percent-decodes in[0..n) into out (size bytes, NUL-terminated). Returns the
 * decoded length, or -1 on a malformed escape or when out is too small. */
int lp_percent_decode(const char *in, size_t n, char *out, size_t size);
/*
 * Parses a "k1=v1,k2=v2" list (W3C Baggage style, as OTel specifies: members
 * trimmed, empty members skipped, values percent-decoded). headers: keys must
 * be HTTP field names and values free of CR, LF and NUL; out gets one
 * "Name: value" string per member. Otherwise out gets key, value string pairs
 * (a repeated key keeps its last value). Returns the number of members, or
 * -EINVAL with the reason in why (naming the member, never its value).
 */
int lp_kv_list_parse(const char *text, int headers, char *out, size_t size, char *why,
		     size_t why_size);
/* 0 when url is an http:// or https:// URL with a host and no space or control
 * character (base: nor query or fragment either); -EINVAL otherwise. */
int lp_url_check(const char *url, int base);

/* ---- logging (log.c) ----------------------------------------------------- */

/*
 * Formats into a stack buffer and write(2)s one line to stderr, prefixed
 * "libprof: ". Supports %s %d %i %u %ld %lu %lld %llu %zu %x %lx %p %c %%.
 * No malloc, no stdio: async-signal-safe.
 */
void lp_log(enum lp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void lp_logv(enum lp_log_level level, const char *fmt, va_list ap);
/* Same formatter into buf (always NUL-terminated). Returns the length. Async-signal-safe. */
size_t lp_fmt(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
size_t lp_vfmt(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- the sample ring (ring.c) ------------------------------------------- */

enum lp_sample_kind { LP_SAMPLE_CPU, LP_SAMPLE_ALLOC, LP_SAMPLE_MUTEX, LP_SAMPLE_KINDS };

#define LP_MAX_DEPTH_LIMIT 512

struct lp_labels {
	uint8_t trace_id[16];       /* all zero = no trace context */
	uint8_t span_id[8];
};

/* One raw sample as the recorder wrote it. pcs[0] is the leaf. */
struct lp_sample {
	uint64_t time_ns;           /* CLOCK_MONOTONIC */
	int64_t weight;             /* timer expirations (1 + overrun) for CPU */
	uint16_t kind;
	uint16_t depth;
	uint16_t truncated;
	uint16_t pad;
	struct lp_labels labels;
	uint64_t addr, size, seq;   /* ALLOC: the block and its live-set seq; MUTEX: size = wait ns */
	uint64_t pcs[];
};

/*
 * Multi-producer, single-consumer bounded ring of fixed-size slots (Vyukov's
 * sequence-numbered cells). Producers never block: when full, the sample is
 * dropped and counted. Created once at load; reset in a forked child.
 */
int lp_ring_init(unsigned n_slots, unsigned max_depth) LP_MUST_CHECK;
/* Reserve a slot; returns NULL when full (a drop of that kind counted).
 * Async-signal-safe. */
struct lp_sample *lp_ring_reserve(enum lp_sample_kind kind);
/* Publish a reserved slot. Async-signal-safe. */
void lp_ring_commit(struct lp_sample *s);
/* Consumer: the oldest published sample, or NULL. Exporter thread only. */
struct lp_sample *lp_ring_peek(void);
/* Consumer: release the sample returned by lp_ring_peek. */
void lp_ring_pop(void);
/* Fraction of slots in use, 0..100. */
unsigned lp_ring_fill_percent(void);
/* Samples claimed since start (a running count): how fast the ring fills. */
uint64_t lp_ring_claimed(void);
/* Forget everything (forked child: producers of the parent are gone). */
void lp_ring_reset(void);
/* Reads and zeroes the drop counter of one kind. */
uint64_t lp_ring_take_dropped(enum lp_sample_kind kind);

/* ---- process and thread state (init.c, sampler.c) ----------------------- */

enum lp_drop_reason {
	LP_DROP_LOADER,             /* thread was inside the dynamic loader */
	LP_DROP_BUSY,               /* thread was inside libprof (unwinder, ...) */
	LP_DROP_NO_THREAD_SLOT,     /* more live threads than timer slots */
	LP_DROP_HEAP_LIVE_FULL,     /* heap: the live-block table was full */
	LP_DROP_REASONS
};

struct lp_process {
	struct lp_config cfg;
	pid_t pid;
	char exe_path[LP_PATH_MAX];
	char service[LP_NAME_MAX];
	atomic_int initialized;
	atomic_int cpu_active;      /* timers are armed and the handler records */
	atomic_int stopping;        /* final profile written or being written */
	_Atomic uint64_t n_dropped[LP_DROP_REASONS];
	_Atomic uint64_t n_truncated;
	int64_t period_ns;          /* 1e9 / cpu_hz */
	struct timespec start_real; /* process start (for the first interval) */
};

extern struct lp_process lp;

/* Per-thread state in initial-exec TLS; read by the signal handler. */
struct lp_thread {
	int timer_slot;             /* index into the timer registry, -1 = none */
	int in_loader;              /* dlclose/dl_iterate_phdr depth */
	int guard;                  /* reentrancy: inside libprof code */
	uintptr_t dlopen_sp;        /* stack pointer at dlopen entry (see dl.c) */
	uintptr_t stack_lo, stack_hi; /* this thread's stack, 0 = unknown */
	int program_blocked;        /* the program believes it blocked our signal */
	struct lp_labels labels;    /* trace context of the connection ctx_fd ... */
	int ctx_fd;                 /* ... or -1: no context */
	uint32_t ctx_gen;           /* ... while lp_fd_gen[ctx_fd] still equals this */
	int64_t heap_countdown;     /* bytes to the next heap sample; 0 = ask heap.c */
	uint64_t heap_rng;          /* xorshift state; 0 = countdown not drawn yet */
	uint64_t mutex_rng;         /* xorshift state; 0 = not seeded yet */
	int fd_keeper;              /* descriptors this thread creates are libprof's (fds.c) */
};

extern LP_TLS struct lp_thread lp_self;

/* Reentrancy guard for anything that may allocate or lock. Async-signal-safe. */
static inline void lp_guard_enter(void) { lp_self.guard++; }
static inline void lp_guard_exit(void) { lp_self.guard--; }

/* Initialise libprof once (constructor, or first wrapper called earlier). */
void lp_init(void);
/* Stop sampling and write the final profile (exit, exec). Bounded wait. */
void lp_finish(int for_exec);
/* Resume after a failed exec. */
void lp_resume_after_exec(void);

/* sampler.c: the CPU-time timers and the signal handler. */
int lp_sampler_install(void) LP_MUST_CHECK;   /* handler; once at init */
void lp_sampler_thread_start(void);           /* arm this thread's timer */
void lp_sampler_thread_stop(void);            /* delete this thread's timer */
void lp_sampler_stop_all(void);               /* delete every timer */
void lp_sampler_before_fork(void);            /* wait until no handler is unwinding */
void lp_sampler_after_fork_parent(void);      /* parent: sample again */
void lp_sampler_after_fork(void);             /* child: forget parent timers */
/* Drain a pending profiler signal of this thread (before exec). */
void lp_sampler_drain_pending(void);
/*
 * The program installs a real handler on our signal: it gets the signal, and
 * sampling moves to a spare real-time signal (or stops when LIBPROF_CPU_SIGNAL
 * was set explicitly, or no signal is free). Call before applying its handler.
 */
void lp_sampler_yield_signal(void);
/* The signal sampling uses now. */
int lp_sampler_signal(void);
/* Record the program's view of our signal's disposition (wrappers/signal.c). */
int lp_sampler_owns_signal(int sig);

/* Stack bounds of the calling thread into lp_self (not async-signal-safe). */
void lp_thread_learn_stack(void);

/* ---- heap sampling (heap.c) --------------------------------------------- */

/* Set once at load: heap sampling is on. Read by the countdown's slow path. */
extern int lp_heap_on __attribute__((visibility("hidden")));
/* Filter over sampled live addresses, one bit per slot (a hash of the
 * address): 0 means "never sampled". 8 KiB, so that free() finds it in cache;
 * heap.c counts the blocks of each slot. */
#define LP_HEAP_FILTER_BITS 16
#define LP_HEAP_FILTER_SLOTS (1 << LP_HEAP_FILTER_BITS)
extern uint64_t lp_heap_filter[LP_HEAP_FILTER_SLOTS / 64] __attribute__((visibility("hidden")));

static inline size_t lp_heap_filter_slot(const void *p)
{
	return (size_t)(((uintptr_t)p * 0x9E3779B97F4A7C15ull) >> (64 - LP_HEAP_FILTER_BITS));
}

/* Sets up the live-block table and filter. 0 or a negative errno. */
int lp_heap_init(void) LP_MUST_CHECK;
/*
 * The sampling countdown (Poisson, mean LIBPROF_HEAP_RATE bytes): an
 * allocation of size bytes is sampled when it reaches the thread's next sample
 * point. lp_heap_skip is the common case, inline: when size falls short of the
 * point, it moves the point closer and returns 1; otherwise it changes nothing
 * and returns 0. A countdown of 0 (a new thread) never falls short.
 * lp_heap_countdown_slow then seeds, draws the next point and returns 1 when
 * this allocation is sampled; with heap sampling off it returns 0 and parks
 * the countdown far away. Async-signal-safe (thread-local state only).
 */
static inline int lp_heap_skip(size_t size)
{
	if (__builtin_expect((uint64_t)lp_self.heap_countdown > size, 1)) {
		lp_self.heap_countdown -= (int64_t)size;
		return 1;
	}
	return 0;
}
int lp_heap_countdown_slow(size_t size);
/* An allocation of size bytes: 1 when it is to be sampled. */
static inline int lp_heap_should_sample(size_t size)
{
	return !lp_heap_skip(size) && lp_heap_countdown_slow(size);
}
/* Records the sampled block p of size bytes (stack, live table) and returns
 * p, errno unchanged: wrappers end with it as a tail call, so that the stack
 * walk has one frame of libprof's fewer to step through. */
void *lp_heap_record(void *p, size_t size);
/* p is being freed: 0 when it was certainly never sampled (one filter load,
 * inline); otherwise lp_heap_forget_slow finds and forgets it. */
static inline int lp_heap_maybe_sampled(const void *p)
{
	size_t slot = lp_heap_filter_slot(p);
	return (lp_heap_filter[slot / 64] >> (slot % 64)) & 1;
}
void lp_heap_forget_slow(void *p);
static inline void lp_heap_forget(void *p)
{
	if (__builtin_expect(lp_heap_maybe_sampled(p), 0))
		lp_heap_forget_slow(p);
}
/* Exporter: is the block recorded as seq still live? */
int lp_heap_is_live(uint64_t addr, uint64_t seq);
/* Forked child: the parent's table no longer describes anything. */
void lp_heap_after_fork(void);

/* ---- lock contention (contention.c) -------------------------------------- */

/* Set once at load: lock contention is sampled. */
extern int lp_mutex_on;
/* A contention event: 1 when this one is to be sampled (one in N). */
int lp_mutex_should_sample(void);
/* Records a sampled wait of waited_ns at the stack pcs (wrapper context). */
void lp_mutex_record(const uint64_t *pcs, int depth, int truncated, uint64_t waited_ns);

/* ---- trace context (trace.c) --------------------------------------------- */

#define LP_FD_TRACKED 65536         /* descriptors below this are tracked */
/* Bumped when a descriptor is closed: a context read from the connection
 * before that no longer applies. */
extern _Atomic uint32_t lp_fd_gen[LP_FD_TRACKED];

/* The calling thread's trace context (zeroes when none). Async-signal-safe. */
static inline void lp_trace_current(struct lp_labels *out)
{
	int fd = lp_self.ctx_fd;
	if (fd >= 0 && fd < LP_FD_TRACKED &&
	    atomic_load_explicit(&lp_fd_gen[fd], memory_order_relaxed) == lp_self.ctx_gen) {
		*out = lp_self.labels;
		return;
	}
	memset(out, 0, sizeof(*out));
}

/* The thread read a request from fd: its context is ctx (NULL: none). */
void lp_trace_set(int fd, const struct lp_labels *ctx);
/* fd was closed (or replaced): contexts read from it end. */
void lp_trace_fd_closed(int fd);

/* ---- libprof's own descriptors (fds.c) ----------------------------------- */

/*
 * The pull endpoint's sockets belong to libprof, not to the program: they are
 * moved just under min(RLIMIT_NOFILE, 1024) (the numbers a program allocates
 * from stay free), close-on-exec, and a program closing them (close, a
 * close_range or closefrom sweep) is told it succeeded while they stay open.
 * Only a thread with lp_self.fd_keeper set really closes them.
 */
extern _Atomic uint64_t lp_fd_own_bits[LP_FD_TRACKED / 64];

static inline int lp_fd_owned(int fd)
{
	return (unsigned)fd < LP_FD_TRACKED &&
	       (atomic_load_explicit(&lp_fd_own_bits[(unsigned)fd / 64], memory_order_relaxed) >>
		((unsigned)fd % 64) & 1);
}
/* A descriptor keeper is between creating a descriptor and adopting it: a
 * program thread closing descriptors meanwhile waits (at most 100 ms) so its
 * sweep cannot take the new one (lp_fd_quiet, in every closing wrapper). */
extern atomic_int lp_fd_creating;
void lp_fd_wait_created(void);
static inline void lp_fd_quiet(void)
{
	if (__builtin_expect(atomic_load_explicit(&lp_fd_creating, memory_order_acquire) != 0, 0) &&
	    !lp_self.fd_keeper)
		lp_fd_wait_created();
}
static inline void lp_fd_create_begin(void) { atomic_fetch_add(&lp_fd_creating, 1); }
static inline void lp_fd_create_end(void) { atomic_fetch_sub(&lp_fd_creating, 1); }
/* Takes fd over: moved high (the original closed), close-on-exec, marked ours.
 * Returns the descriptor to use from now on (fd itself if it could not move). */
int lp_fd_adopt(int fd);
/* fd is no longer libprof's (its owner is about to close it). */
void lp_fd_release(int fd);
/* The next owned descriptor >= from, or -1. */
int lp_fd_next_owned(int from);
/* Forked child: close every descriptor libprof owns (the parent's sockets). */
void lp_fd_close_all(void);

/* Monotonic and real time in ns. Async-signal-safe. */
static inline uint64_t lp_now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif

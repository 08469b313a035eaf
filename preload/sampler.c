/*
 * CPU sampling: one CLOCK_THREAD_CPUTIME_ID timer per thread, delivering the
 * profiler signal to that thread (SIGEV_THREAD_ID), and the signal handler.
 *
 * This is the signal-context file: the handler and everything it calls are
 * async-signal-safe (atomics, TLS, the preallocated ring, the unwinder).
 *
 * Timers live in a fixed registry of slots so that they can be deleted exactly
 * once from any thread (thread exit, or the program taking the signal over):
 * whoever exchanges a slot to empty deletes its timer.
 */
#include "preload.h"
#include "../unwinder/unwinder.h"
#include "../wrappers/wrappers.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TIMERS 8192
#define TIMER_COOKIE 0x6c70726f    /* si_value of our timers: "lpro" */

static _Atomic uintptr_t timers[MAX_TIMERS];   /* kernel timer id + 1; 0 = free */
static pid_t timer_tid[MAX_TIMERS];             /* the thread each timer samples */
static _Atomic unsigned timer_hint;
static atomic_int cpu_signal;                   /* the signal in use now */
/* libunwind takes an internal lock while stepping: a fork must not happen
 * while a handler holds it, or the child's first sample waits forever. */
static atomic_int n_unwinding;                  /* handlers inside the unwinder */
static atomic_int fork_gate;                    /* a fork waits for them to leave */
static int fork_gate_timed_out;
static int n_moves;                             /* signal changes so far */

#define MAX_MOVES 4
static uintptr_t loader_lo, loader_hi;          /* the dynamic loader's mapping */

/* Async-signal-safe. */
static void drop(enum lp_drop_reason why)
{
	atomic_fetch_add_explicit(&lp.n_dropped[why], 1, memory_order_relaxed);
}

/* The profiler signal handler. Async-signal-safe; keeps errno. */
static void on_signal(int sig, siginfo_t *si, void *ucv)
{
	const ucontext_t *uc = ucv;
	int saved = errno;
	(void)sig;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != TIMER_COOKIE ||
	    !atomic_load_explicit(&lp.cpu_active, memory_order_relaxed))
		goto out;
	uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	if (lp_self.guard) {
		drop(LP_DROP_BUSY);
		goto out;
	}
	if (lp_self.in_loader || (pc >= loader_lo && pc < loader_hi)) {
		drop(LP_DROP_LOADER);
		goto out;
	}
	atomic_fetch_add(&n_unwinding, 1);
	if (atomic_load(&fork_gate)) {
		atomic_fetch_sub(&n_unwinding, 1);
		drop(LP_DROP_BUSY);
		goto out;
	}
	struct lp_sample *s = lp_ring_reserve(LP_SAMPLE_CPU);
	if (!s) {
		atomic_fetch_sub(&n_unwinding, 1);
		goto out;           /* counted by the ring */
	}
	lp_guard_enter();
	int truncated;
	s->time_ns = lp_now_ns(CLOCK_MONOTONIC);
	s->kind = LP_SAMPLE_CPU;
	s->weight = 1 + (si->si_overrun > 0 ? si->si_overrun : 0);
	lp_trace_current(&s->labels);
	s->depth = (uint16_t)lp_unwind_capture(uc, lp_self.stack_lo, lp_self.stack_hi, s->pcs,
					       lp.cfg.opt_max_depth, &truncated);
	s->truncated = (uint16_t)truncated;
	if (truncated)
		atomic_fetch_add_explicit(&lp.n_truncated, 1, memory_order_relaxed);
	lp_guard_exit();
	atomic_fetch_sub(&n_unwinding, 1);
	lp_ring_commit(s);
out:
	errno = saved;
}

/* The dynamic loader is the program's interpreter, mapped at AT_BASE. */
static void find_loader(void)
{
	struct dl_find_object fo;
	void *base = (void *)getauxval(AT_BASE);
	if (base && _dl_find_object(base, &fo) == 0) {
		loader_lo = (uintptr_t)fo.dlfo_map_start;
		loader_hi = (uintptr_t)fo.dlfo_map_end;
	}
}

static int has_handler(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) || (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN);
}

/* Installs the handler on sig unless something already handles it. */
static int install_on(int sig)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigfillset(&sa.sa_mask);    /* nothing interrupts the handler */
	if (lp_real_sigaction(sig, &sa, &old) < 0)
		return -errno;
	if (has_handler(&old)) {
		lp_real_sigaction(sig, &old, NULL);
		return -EBUSY;
	}
	return 0;
}

/* A real-time signal nobody handles, from the top (programs take them from the
 * bottom, and glibc reserves the ones below SIGRTMIN). */
static int spare_signal(void)
{
	for (int sig = SIGRTMAX - 1; sig >= SIGRTMIN + 4; sig--) {
		struct sigaction cur;
		if (sig != atomic_load(&cpu_signal) && lp_real_sigaction(sig, NULL, &cur) == 0 &&
		    !has_handler(&cur) && cur.sa_handler != SIG_IGN && install_on(sig) == 0)
			return sig;
	}
	return -1;
}

int lp_sampler_install(void)
{
	find_loader();
	atomic_store(&cpu_signal, lp.cfg.opt_cpu_signal);
	int rc = install_on(lp.cfg.opt_cpu_signal);
	if (rc == -EBUSY && !lp.cfg.opt_cpu_signal_explicit) {
		int sig = spare_signal();   /* a library loaded earlier took SIGPROF */
		if (sig < 0)
			return rc;
		atomic_store(&cpu_signal, sig);
		lp_log(LP_LOG_INFO, "signal %d is taken; sampling with signal %d", lp.cfg.opt_cpu_signal, sig);
		return 0;
	}
	return rc;
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * A thread's first sample comes after a uniformly random part of one period
 * of its CPU time, not a whole one: otherwise a thread that uses less than a
 * period in its life (thread-per-request servers) would never be sampled,
 * and every thread would lose its last partial period on average. With a
 * uniform start, each thread's expected sample count is its CPU time over
 * the period. (The kernel still checks only at its tick, while the thread
 * runs: a thread that ends within a tick of its expiry is missed.)
 */
static struct timespec first_expiry(pid_t tid)
{
	uint64_t x = lp_now_ns(CLOCK_MONOTONIC) ^ ((uint64_t)(uint32_t)tid << 32);
	x += 0x9E3779B97F4A7C15ull;                        /* splitmix64 */
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	x ^= x >> 31;
	uint64_t ns = 1 + x % (uint64_t)lp.period_ns;
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	return ts;
}

void lp_sampler_thread_start(void)
{
	if (!atomic_load(&lp.cpu_active) || lp_self.timer_slot >= 0)
		return;
	struct sigevent sev;
	timer_t timer;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = atomic_load(&cpu_signal);
	sev.sigev_value.sival_int = TIMER_COOKIE;
	sev._sigev_un._tid = my_tid();
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &timer) < 0) {
		lp_log(LP_LOG_DEBUG, "timer_create failed for thread %d: errno %d", (int)my_tid(), errno);
		return;
	}
	unsigned start = atomic_fetch_add(&timer_hint, 1);
	for (unsigned i = 0; i < MAX_TIMERS; i++) {
		unsigned slot = (start + i) % MAX_TIMERS;
		uintptr_t empty = 0;
		if (atomic_compare_exchange_strong(&timers[slot], &empty, (uintptr_t)timer + 1)) {
			struct itimerspec its;
			its.it_interval.tv_sec = lp.period_ns / 1000000000;
			its.it_interval.tv_nsec = lp.period_ns % 1000000000;
			its.it_value = first_expiry(sev._sigev_un._tid);
			lp_self.timer_slot = (int)slot;
			timer_tid[slot] = sev._sigev_un._tid;
			timer_settime(timer, 0, &its, NULL);
			return;
		}
	}
	timer_delete(timer);
	drop(LP_DROP_NO_THREAD_SLOT);
}

static void delete_slot(int slot)
{
	uintptr_t v = atomic_exchange(&timers[slot], 0);
	if (v)
		timer_delete((timer_t)(v - 1));
}

void lp_sampler_thread_stop(void)
{
	if (lp_self.timer_slot >= 0)
		delete_slot(lp_self.timer_slot);
	lp_self.timer_slot = -1;
}

void lp_sampler_stop_all(void)
{
	atomic_store(&lp.cpu_active, 0);
	for (int i = 0; i < MAX_TIMERS; i++)
		if (atomic_load_explicit(&timers[i], memory_order_relaxed))
			delete_slot(i);
}

void lp_sampler_before_fork(void)
{
	struct timespec pause = { 0, 20000 };
	atomic_store(&fork_gate, 1);
	fork_gate_timed_out = 0;
	/* Handlers leave the unwinder within microseconds; a thread stopped inside
	 * one (a debugger) must not stop the fork: give up after 100 ms. */
	for (int i = 0; atomic_load(&n_unwinding) > 0; i++) {
		if (i == 5000) {
			fork_gate_timed_out = 1;
			break;
		}
		nanosleep(&pause, NULL);
	}
}

void lp_sampler_after_fork_parent(void)
{
	atomic_store(&fork_gate, 0);
}

void lp_sampler_after_fork(void)
{
	atomic_store(&n_unwinding, 0);
	atomic_store(&fork_gate, 0);
	if (fork_gate_timed_out) {
		/* The unwinder's lock may be held forever here: no CPU sampling. */
		atomic_store(&lp.cpu_active, 0);
		lp_log(LP_LOG_WARN, "forked child %d: a thread was stopped inside the unwinder; "
		       "CPU profiling is off in this child", (int)getpid());
	}
	/* POSIX timers are not inherited: the slots name the parent's timers. */
	for (int i = 0; i < MAX_TIMERS; i++)
		atomic_store_explicit(&timers[i], 0, memory_order_relaxed);
	lp_self.timer_slot = -1;
	lp_unwind_after_fork();
	lp_sampler_thread_start();
}

void lp_sampler_drain_pending(void)
{
	sigset_t set, old;
	struct timespec zero = { 0, 0 };
	sigemptyset(&set);
	sigaddset(&set, atomic_load(&cpu_signal));
	pthread_sigmask(SIG_BLOCK, &set, &old);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The CPU-time clock of another thread of this process (the kernel's encoding,
 * as glibc's pthread_getcpuclockid builds it). */
static clockid_t thread_cpu_clock(pid_t tid)
{
	return (clockid_t)((~(unsigned)tid << 3) | 6);
}

/* Re-creates every live timer on sig, then deletes the old ones. */
static void move_timers(int sig)
{
	struct itimerspec its;
	its.it_interval.tv_sec = lp.period_ns / 1000000000;
	its.it_interval.tv_nsec = lp.period_ns % 1000000000;
	its.it_value = its.it_interval;
	for (int i = 0; i < MAX_TIMERS; i++) {
		uintptr_t old = atomic_load(&timers[i]);
		if (!old)
			continue;
		struct sigevent sev;
		timer_t timer;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = sig;
		sev.sigev_value.sival_int = TIMER_COOKIE;
		sev._sigev_un._tid = timer_tid[i];
		if (timer_create(thread_cpu_clock(timer_tid[i]), &sev, &timer) < 0) {
			delete_slot(i);     /* the thread is gone */
			continue;
		}
		if (atomic_compare_exchange_strong(&timers[i], &old, (uintptr_t)timer + 1)) {
			timer_delete((timer_t)(old - 1));
			timer_settime(timer, 0, &its, NULL);
		} else {
			timer_delete(timer); /* the thread exited meanwhile */
		}
	}
}

void lp_sampler_yield_signal(void)
{
	if (!atomic_load(&lp.cpu_active))
		return;
	int old = atomic_load(&cpu_signal), sig = -1;
	if (!lp.cfg.opt_cpu_signal_explicit && n_moves < MAX_MOVES)
		sig = spare_signal();
	if (sig < 0) {
		lp_sampler_stop_all();
		lp_log(LP_LOG_WARN, "the program installs its own handler for signal %d; CPU profiling stops "
		       "(set LIBPROF_CPU_SIGNAL to a signal the program does not use)", old);
		return;
	}
	n_moves++;
	atomic_store(&cpu_signal, sig);
	move_timers(sig);
	lp_log(LP_LOG_INFO, "the program installs its own handler for signal %d; sampling moves to signal %d",
	       old, sig);
}

int lp_sampler_signal(void)
{
	return atomic_load(&cpu_signal);
}

int lp_sampler_owns_signal(int sig)
{
	return lp.cfg.opt_cpu_hz > 0 && sig == atomic_load(&cpu_signal) &&
	       atomic_load(&lp.initialized);
}

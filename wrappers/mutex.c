/*
 * Lock contention: pthread mutex and rwlock acquisitions. Each wrapper first
 * tries the lock; only when it is busy (a contention event) does it decide,
 * one time in LIBPROF_MUTEX_RATE, to sample: capture the stack while about to
 * wait anyway, take the time around the real blocking call, and record the
 * wait once the lock is held. trylock and unlock are not wrapped.
 *
 * The try-first path keeps every mutex kind's semantics: the blocking call is
 * the real one, so its return codes (EDEADLK, EOWNERDEAD, ETIMEDOUT ...) and
 * its fairness are the program's; a try that succeeds or fails for any reason
 * but EBUSY returns exactly what the real lock would. pthread_cond_wait's
 * internal re-acquisition is not seen (glibc does not call these).
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"
#include "../unwinder/unwinder.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static struct {
	int (*mutex_lock)(pthread_mutex_t *);
	int (*mutex_trylock)(pthread_mutex_t *);
	int (*mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
	int (*mutex_clocklock)(pthread_mutex_t *, clockid_t, const struct timespec *);
	int (*rdlock)(pthread_rwlock_t *);
	int (*wrlock)(pthread_rwlock_t *);
	int (*tryrdlock)(pthread_rwlock_t *);
	int (*trywrlock)(pthread_rwlock_t *);
	int (*timedrdlock)(pthread_rwlock_t *, const struct timespec *);
	int (*timedwrlock)(pthread_rwlock_t *, const struct timespec *);
	int (*clockrdlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
	int (*clockwrlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
} real;

enum op { MUTEX, MUTEX_TIMED, MUTEX_CLOCK, RD, WR, RD_TIMED, WR_TIMED, RD_CLOCK, WR_CLOCK };

static int blocking_call(enum op op, void *lock, clockid_t clock, const struct timespec *abstime)
{
	pthread_mutex_t *m = lock;
	pthread_rwlock_t *rw = lock;
	switch (op) {
	case MUTEX: return real.mutex_lock(m);
	case MUTEX_TIMED: return real.mutex_timedlock(m, abstime);
	case MUTEX_CLOCK: return real.mutex_clocklock(m, clock, abstime);
	case RD: return real.rdlock(rw);
	case WR: return real.wrlock(rw);
	case RD_TIMED: return real.timedrdlock(rw, abstime);
	case WR_TIMED: return real.timedwrlock(rw, abstime);
	case RD_CLOCK: return real.clockrdlock(rw, clock, abstime);
	case WR_CLOCK: return real.clockwrlock(rw, clock, abstime);
	}
	return EINVAL;
}

/*
 * A sampled contention: the stack is captured while the thread is about to
 * wait anyway, the wait is timed with the vDSO clock, and the sample is
 * recorded once the lock is held (a few hundred ns inside the critical
 * section). Out of line, so that its stack buffer costs the fast path nothing.
 */
static __attribute__((noinline)) int sampled(enum op op, void *lock, clockid_t clock,
					     const struct timespec *abstime)
{
	uint64_t pcs[LP_MAX_DEPTH_LIMIT];
	int truncated, saved = errno;
	lp_guard_enter();
	int depth = lp_unwind_capture_here(lp_self.stack_lo, lp_self.stack_hi, pcs,
					   lp.cfg.opt_max_depth, &truncated);
	lp_guard_exit();
	errno = saved;
	uint64_t start = lp_now_ns(CLOCK_MONOTONIC);
	int rc = blocking_call(op, lock, clock, abstime);
	uint64_t waited = lp_now_ns(CLOCK_MONOTONIC) - start;
	if (rc == 0 || rc == EOWNERDEAD) {   /* the lock is held: it was a real wait */
		saved = errno;
		lp_mutex_record(pcs, depth, truncated, waited);
		errno = saved;
	}
	return rc;
}

/* The wrapper body: free -> taken; busy -> maybe sampled -> the real call. */
#define CONTENDED(try_call, op, lock, clock, abstime)                          \
	do {                                                                   \
		if (!lp_mutex_on || lp_self.guard)                             \
			return blocking_call(op, lock, clock, abstime);        \
		int rc_ = try_call;                                            \
		if (rc_ != EBUSY)                                              \
			return rc_;                                            \
		if (!lp_mutex_should_sample())                                 \
			return blocking_call(op, lock, clock, abstime);        \
		return sampled(op, lock, clock, abstime);                      \
	} while (0)

static void resolve(void)
{
	real.mutex_trylock = (int (*)(pthread_mutex_t *))lp_resolve("pthread_mutex_trylock");
	real.mutex_timedlock = (int (*)(pthread_mutex_t *, const struct timespec *))
		lp_resolve("pthread_mutex_timedlock");
	real.mutex_clocklock = (int (*)(pthread_mutex_t *, clockid_t, const struct timespec *))
		lp_resolve("pthread_mutex_clocklock");
	real.rdlock = (int (*)(pthread_rwlock_t *))lp_resolve("pthread_rwlock_rdlock");
	real.wrlock = (int (*)(pthread_rwlock_t *))lp_resolve("pthread_rwlock_wrlock");
	real.tryrdlock = (int (*)(pthread_rwlock_t *))lp_resolve("pthread_rwlock_tryrdlock");
	real.trywrlock = (int (*)(pthread_rwlock_t *))lp_resolve("pthread_rwlock_trywrlock");
	real.timedrdlock = (int (*)(pthread_rwlock_t *, const struct timespec *))
		lp_resolve("pthread_rwlock_timedrdlock");
	real.timedwrlock = (int (*)(pthread_rwlock_t *, const struct timespec *))
		lp_resolve("pthread_rwlock_timedwrlock");
	real.clockrdlock = (int (*)(pthread_rwlock_t *, clockid_t, const struct timespec *))
		lp_resolve("pthread_rwlock_clockrdlock");
	real.clockwrlock = (int (*)(pthread_rwlock_t *, clockid_t, const struct timespec *))
		lp_resolve("pthread_rwlock_clockwrlock");
	/* Last, and released: a thread that sees it sees all the others. */
	__atomic_store_n(&real.mutex_lock,
			 (int (*)(pthread_mutex_t *))lp_resolve("pthread_mutex_lock"),
			 __ATOMIC_RELEASE);
}

#define RESOLVED() do { if (__builtin_expect(!real.mutex_lock, 0)) resolve(); } while (0)

LP_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
	RESOLVED();
	CONTENDED(real.mutex_trylock(m), MUTEX, m, 0, NULL);
}

LP_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime)
{
	RESOLVED();
	CONTENDED(real.mutex_trylock(m), MUTEX_TIMED, m, 0, abstime);
}

LP_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
				      const struct timespec *abstime)
{
	RESOLVED();
	CONTENDED(real.mutex_trylock(m), MUTEX_CLOCK, m, clock, abstime);
}

LP_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
	RESOLVED();
	CONTENDED(real.tryrdlock(rw), RD, rw, 0, NULL);
}

LP_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
	RESOLVED();
	CONTENDED(real.trywrlock(rw), WR, rw, 0, NULL);
}

LP_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abstime)
{
	RESOLVED();
	CONTENDED(real.tryrdlock(rw), RD_TIMED, rw, 0, abstime);
}

LP_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abstime)
{
	RESOLVED();
	CONTENDED(real.trywrlock(rw), WR_TIMED, rw, 0, abstime);
}

LP_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clock,
					 const struct timespec *abstime)
{
	RESOLVED();
	CONTENDED(real.tryrdlock(rw), RD_CLOCK, rw, clock, abstime);
}

LP_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clock,
					 const struct timespec *abstime)
{
	RESOLVED();
	CONTENDED(real.trywrlock(rw), WR_CLOCK, rw, clock, abstime);
}

void lp_mutex_wrappers_init(void)
{
	RESOLVED();
}

/*
 * sigaction, signal, bsd_signal, sysv_signal: libprof borrows one signal
 * (LIBPROF_CPU_SIGNAL, SIGPROF by default). While it does, the program sees the
 * disposition it set itself (SIG_DFL until it sets another), and a SIG_DFL or
 * SIG_IGN it sets is remembered, not applied (applying SIG_DFL would let the
 * next timer signal kill it). When the program installs a real handler, the
 * signal is handed over and sampling moves to a spare real-time signal (see
 * lp_sampler_yield_signal).
 *
 * pthread_sigmask, sigprocmask: a thread that blocks every signal (worker
 * threads often do, so that signals go to one thread) must still be sampled:
 * our signal is taken out of what the program blocks, and the program is shown
 * the mask it asked for. sigwait, sigwaitinfo, sigtimedwait and signalfd never
 * take our signal from the program's set, so a thread waiting for "all"
 * signals never receives a timer signal it did not ask for.
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"
#include "../unwinder/unwinder.h"

#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>

int (*lp_real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);
static sighandler_t (*real_sysv_signal)(int, sighandler_t);

static struct sigaction program_view;   /* zeroed: SIG_DFL */

static int is_handler(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) ||
	       (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN);
}

static int borrowed(int sig)
{
	return lp_sampler_owns_signal(sig) && atomic_load(&lp.cpu_active);
}

LP_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!lp_real_sigaction)
		lp_signal_wrappers_init();
	if (!borrowed(sig))
		return lp_real_sigaction(sig, act, old);
	struct sigaction before = program_view;
	if (act && is_handler(act)) {
		lp_sampler_yield_signal();
		memset(&program_view, 0, sizeof(program_view));  /* the next signal's view */
		int rc = lp_real_sigaction(sig, act, NULL);
		if (rc == 0 && old)
			*old = before;
		return rc;
	}
	if (act)
		program_view = *act;
	if (old)
		*old = before;
	return 0;
}

static int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
static int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
static int (*real_sigwait)(const sigset_t *, int *);
static int (*real_sigwaitinfo)(const sigset_t *, siginfo_t *);
static int (*real_sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
static int (*real_signalfd)(int, const sigset_t *, int);

/* set without our signal in *copy; returns the set to pass on. */
static const sigset_t *without_ours(const sigset_t *set, sigset_t *copy)
{
	int sig = lp_sampler_signal();
	if (!set || lp_self.guard || !borrowed(sig) || !sigismember(set, sig))
		return set;
	*copy = *set;
	sigdelset(copy, sig);
	return copy;
}

static int masked(int (*real)(int, const sigset_t *, sigset_t *), int how,
		  const sigset_t *set, sigset_t *old)
{
	/* libunwind blocks every signal around its cache lock, twice per frame:
	 * two system calls that protect nothing while libprof walks (its handler
	 * drops a sample that would re-enter). The program's mask stays as it is. */
	if (lp_unwinding && lp_self.guard) {
		if (old)
			sigemptyset(old);
		return 0;
	}
	sigset_t copy;
	int sig = lp_sampler_signal(), was = lp_self.program_blocked;
	int rc = real(how, without_ours(set, &copy), old);
	if (rc != 0 || !borrowed(sig) || lp_self.guard)
		return rc;
	if (old && was)
		sigaddset(old, sig);
	if (set && (how == SIG_BLOCK || how == SIG_SETMASK))
		lp_self.program_blocked = sigismember(set, sig) ? 1 : how == SIG_BLOCK && was;
	else if (set && how == SIG_UNBLOCK && sigismember(set, sig))
		lp_self.program_blocked = 0;
	return rc;
}

LP_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!real_pthread_sigmask)
		lp_signal_wrappers_init();
	return masked(real_pthread_sigmask, how, set, old);
}

LP_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!real_sigprocmask)
		lp_signal_wrappers_init();
	return masked(real_sigprocmask, how, set, old);
}

LP_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t copy;
	if (!real_sigwait)
		lp_signal_wrappers_init();
	return real_sigwait(without_ours(set, &copy), sig);
}

LP_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t copy;
	if (!real_sigwaitinfo)
		lp_signal_wrappers_init();
	return real_sigwaitinfo(without_ours(set, &copy), info);
}

LP_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	sigset_t copy;
	if (!real_sigtimedwait)
		lp_signal_wrappers_init();
	return real_sigtimedwait(without_ours(set, &copy), info, timeout);
}

LP_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	sigset_t copy;
	if (!real_signalfd)
		lp_signal_wrappers_init();
	return real_signalfd(fd, without_ours(mask, &copy), flags);
}

static sighandler_t via_sigaction(int sig, sighandler_t h, int flags)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

LP_EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	if (!real_signal)
		lp_signal_wrappers_init();
	if (!borrowed(sig))
		return real_signal(sig, h);
	return via_sigaction(sig, h, SA_RESTART);
}

sighandler_t bsd_signal(int sig, sighandler_t h);
LP_EXPORT sighandler_t bsd_signal(int sig, sighandler_t h)
{
	return signal(sig, h);
}

LP_EXPORT sighandler_t sysv_signal(int sig, sighandler_t h)
{
	if (!real_sysv_signal)
		lp_signal_wrappers_init();
	if (!borrowed(sig))
		return real_sysv_signal(sig, h);
	return via_sigaction(sig, h, (int)(SA_RESETHAND | SA_NODEFER));
}

void lp_signal_wrappers_init(void)
{
	lp_real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))
		lp_resolve("sigaction");
	real_signal = (sighandler_t (*)(int, sighandler_t))lp_resolve("signal");
	real_sysv_signal = (sighandler_t (*)(int, sighandler_t))lp_resolve("sysv_signal");
	real_pthread_sigmask = (int (*)(int, const sigset_t *, sigset_t *))
		lp_resolve("pthread_sigmask");
	real_sigprocmask = (int (*)(int, const sigset_t *, sigset_t *))lp_resolve("sigprocmask");
	real_sigwait = (int (*)(const sigset_t *, int *))lp_resolve("sigwait");
	real_sigwaitinfo = (int (*)(const sigset_t *, siginfo_t *))lp_resolve("sigwaitinfo");
	real_sigtimedwait = (int (*)(const sigset_t *, siginfo_t *, const struct timespec *))
		lp_resolve("sigtimedwait");
	real_signalfd = (int (*)(int, const sigset_t *, int))lp_resolve("signalfd");
}

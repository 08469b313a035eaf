/*
 * sigaction, signal, bsd_signal, sysv_signal: libprof borrows one signal
 * (LIBPROF_CPU_SIGNAL, SIGPROF by default). While it does, the program sees the
 * disposition it set itself (SIG_DFL until it sets another), and a SIG_DFL or
 * SIG_IGN it sets is remembered, not applied (applying SIG_DFL would let the
 * next timer signal kill it). When the program installs a real handler, the
 * signal is handed over and sampling moves to a spare real-time signal (see
 * lp_sampler_yield_signal).
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"

#include <errno.h>
#include <string.h>

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
}

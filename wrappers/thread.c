/*
 * pthread_create: every thread the program starts gets its own CPU-time timer,
 * armed in the new thread before its start routine runs and deleted when it
 * exits (a thread-specific key's destructor, which runs on return, pthread_exit
 * and cancellation alike).
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"

#include <errno.h>
#include <stdlib.h>

int (*lp_real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static pthread_key_t exit_key;

struct start {
	void *(*fn)(void *);
	void *arg;
	int program_blocked;        /* the creator's view of its mask, inherited */
};

static void on_thread_exit(void *unused)
{
	(void)unused;
	lp_sampler_thread_stop();
}

int lp_thread_exit_hook_init(void)
{
	return -pthread_key_create(&exit_key, on_thread_exit);
}

static void *trampoline(void *p)
{
	struct start st = *(struct start *)p;
	lp_guard_enter();
	free(p);
	pthread_setspecific(exit_key, (void *)1);
	lp_self.program_blocked = st.program_blocked;
	lp_thread_learn_stack();
	lp_guard_exit();
	lp_sampler_thread_start();
	return st.fn(st.arg);
}

LP_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			     void *(*fn)(void *), void *arg)
{
	if (!lp_real_pthread_create)
		lp_thread_wrappers_init();
	if (!atomic_load(&lp.initialized))
		lp_init();          /* a library's constructor, before libprof's */
	/* libprof's own threads (guard held) and a disabled libprof: pass through.
	 * Heap and lock sampling need the thread's stack bounds too. */
	if (lp_self.guard || !atomic_load(&lp.initialized) ||
	    (!atomic_load(&lp.cpu_active) && !lp_heap_on && !lp_mutex_on))
		return lp_real_pthread_create(thread, attr, fn, arg);
	lp_guard_enter();
	struct start *st = malloc(sizeof(*st));
	lp_guard_exit();
	if (!st)
		return lp_real_pthread_create(thread, attr, fn, arg);
	st->fn = fn;
	st->arg = arg;
	st->program_blocked = lp_self.program_blocked;
	int rc = lp_real_pthread_create(thread, attr, trampoline, st);
	if (rc != 0) {
		int saved = errno;
		free(st);
		errno = saved;
	}
	return rc;
}

void lp_thread_wrappers_init(void)
{
	lp_real_pthread_create = (int (*)(pthread_t *, const pthread_attr_t *,
					  void *(*)(void *), void *))lp_resolve("pthread_create");
}

/*
 * wrappers/ API: the interposed symbols (the malloc family, pthread locks,
 * socket reads, pthread_create, sigaction and signal, dlclose, the exec family
 * and posix_spawn) and the originals they call.
 */
#ifndef LP_WRAPPERS_H
#define LP_WRAPPERS_H

#include <pthread.h>
#include <signal.h>

/* Resolves every original with dlsym(RTLD_NEXT). Once, at load. */
void lp_wrappers_init(void);

/* The originals, for libprof's own use (never NULL after lp_wrappers_init). */
extern int (*lp_real_sigaction)(int, const struct sigaction *, struct sigaction *);
extern int (*lp_real_pthread_create)(pthread_t *, const pthread_attr_t *,
				     void *(*)(void *), void *);

/* Marks the calling thread's exit so its timer is deleted (thread.c). */
int lp_thread_exit_hook_init(void) __attribute__((warn_unused_result));

/*
 * With LIBPROF_FOLLOW_EXEC=0: removes libprof from LD_PRELOAD in this
 * process's environment, in place, so no child inherits it (exec.c).
 */
void lp_exec_strip_environ(void);

/* With LIBPROF_TRACE on: sets up the per-connection scanners (socket.c). */
void lp_socket_trace_start(void);
/* Forked child: no other thread is inside a scanner any more. */
void lp_socket_after_fork(void);

#endif

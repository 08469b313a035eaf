/*
 * What preload/init.o provides to the other objects, for unit tests that link
 * the library's objects without it: the process state, the per-thread state and
 * the life-cycle entry points the wrappers call. The life cycle is not under
 * test, so those do nothing; the logger stays quiet (opt_log = off) so that a
 * test's output is cmocka's alone.
 */
#include "../../preload/preload.h"

struct lp_process lp = { .cfg = { .opt_log = LP_LOG_OFF } };
LP_TLS struct lp_thread lp_self = { .timer_slot = -1, .ctx_fd = -1 };

void lp_init(void)
{
}

void lp_finish(int for_exec)
{
	(void)for_exec;
}

void lp_resume_after_exec(void)
{
}

void lp_thread_learn_stack(void)
{
}

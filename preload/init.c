/*
 * Load-time set-up and process life: the constructor reads the configuration,
 * installs the handler, arms the main thread's timer and starts the exporter;
 * the destructor (normal exit) and the exec wrappers write the last profile;
 * the fork handler gives the child its own timer, exporter and files.
 * The process state lives in one struct, `lp`.
 */
#include "preload.h"
#include "../exporter/exporter.h"
#include "../unwinder/unwinder.h"
#include "../wrappers/wrappers.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define FINAL_TIMEOUT_MS (5000 + (int)(lp.cfg.opt_exit_timeout_ns / 1000000)) /* encoding + uploads */

struct lp_process lp = { .cfg = { .opt_log = LP_LOG_WARN } };
LP_TLS struct lp_thread lp_self = { .timer_slot = -1, .ctx_fd = -1 };

extern char **environ;

static void warn_line(const char *line)
{
	lp_log(LP_LOG_WARN, "%s", line);
}

void lp_thread_learn_stack(void)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
		lp_self.stack_lo = (uintptr_t)addr;
		lp_self.stack_hi = (uintptr_t)addr + size;
	}
	pthread_attr_destroy(&attr);
}

/* The service name: OTEL_SERVICE_NAME, else the program's file name; only
 * [A-Za-z0-9._-] are kept in file names. */
static void name_service(void)
{
	ssize_t n = readlink("/proc/self/exe", lp.exe_path, sizeof(lp.exe_path) - 1);
	lp.exe_path[n > 0 ? n : 0] = '\0';
	const char *src = lp.cfg.opt_service;
	if (!*src) {
		const char *slash = strrchr(lp.exe_path, '/');
		src = slash ? slash + 1 : "unknown";
	}
	size_t i = 0;
	for (; src[i] && i < sizeof(lp.service) - 1; i++) {
		char c = src[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		lp.service[i] = ok ? c : '_';
	}
	lp.service[i] = '\0';
	if (!i || lp.service[0] == '.')
		lp.service[0] = '_';
}

static void before_fork(void)
{
	if (atomic_load(&lp.initialized) && !atomic_load(&lp.stopping))
		lp_sampler_before_fork();
}

static void after_fork_parent(void)
{
	lp_sampler_after_fork_parent();
}

static void after_fork_child(void)
{
	if (!atomic_load(&lp.initialized) || atomic_load(&lp.stopping))
		return;
	lp.pid = getpid();
	lp_ring_reset();
	for (int i = 0; i < LP_DROP_REASONS; i++)
		atomic_store(&lp.n_dropped[i], 0);
	lp_guard_enter();
	lp_sampler_after_fork();
	lp_heap_after_fork();
	lp_socket_after_fork();
	lp_exporter_after_fork();
	lp_guard_exit();
}

static void start_cpu(void)
{
	if (lp.cfg.opt_cpu_hz == 0)
		return;
	lp.period_ns = 1000000000 / lp.cfg.opt_cpu_hz;
	int rc = lp_sampler_install();
	if (rc < 0) {
		lp_log(LP_LOG_WARN, "signal %d already has a handler; CPU profiling is off "
		       "(set LIBPROF_CPU_SIGNAL to a signal the program does not use)",
		       lp.cfg.opt_cpu_signal);
		return;
	}
	atomic_store(&lp.cpu_active, 1);
}

void lp_init(void)
{
	static atomic_int once;
	if (atomic_exchange(&once, 1))
		return;
	lp_guard_enter();
	lp_wrappers_init();
	lp_config_load(&lp.cfg, environ, warn_line);
	if (!lp.cfg.opt_enable)
		goto out;           /* LIBPROF_ENABLE=0: do nothing at all */
	lp.pid = getpid();
	name_service();
	if (!lp.cfg.opt_follow_exec)
		lp_exec_strip_environ();
	if (lp_unwind_init() < 0 || lp_ring_init((unsigned)lp.cfg.opt_ring_slots,
						 (unsigned)lp.cfg.opt_max_depth) < 0 ||
	    lp_thread_exit_hook_init() < 0) {
		lp_log(LP_LOG_WARN, "cannot set up (out of memory?); not profiling");
		goto out;
	}
	start_cpu();
	if (lp_heap_init() < 0)
		lp_log(LP_LOG_WARN, "cannot set up heap profiling (out of memory); it is off");
	lp_mutex_on = lp.cfg.opt_mutex_rate > 0;
	lp_socket_trace_start();
	if (lp_exporter_start() < 0) {
		lp_log(LP_LOG_WARN, "cannot start the exporter thread; not profiling");
		atomic_store(&lp.cpu_active, 0);
		goto out;
	}
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	lp_thread_learn_stack();
	atomic_store(&lp.initialized, 1);
	lp_log(LP_LOG_INFO, "profiling %s (pid %d): cpu at %d Hz, heap every %lld bytes, "
	       "one lock contention in %d", lp.service, (int)lp.pid, lp.cfg.opt_cpu_hz,
	       (long long)lp.cfg.opt_heap_rate, lp.cfg.opt_mutex_rate);
	lp_guard_exit();
	lp_sampler_thread_start();
	return;
out:
	lp_guard_exit();
}

void lp_finish(int for_exec)
{
	if (!atomic_load(&lp.initialized) || atomic_load(&lp.stopping))
		return;
	lp_guard_enter();
	if (for_exec) {
		lp_sampler_thread_stop();
		lp_sampler_drain_pending();
		lp_exporter_flush(0, FINAL_TIMEOUT_MS);
	} else {
		atomic_store(&lp.stopping, 1);
		lp_sampler_thread_stop();
		lp_exporter_flush(1, FINAL_TIMEOUT_MS);
		lp_sampler_stop_all();
	}
	lp_guard_exit();
}

void lp_resume_after_exec(void)
{
	lp_sampler_thread_start();
}

__attribute__((constructor)) static void libprof_load(void)
{
	lp_init();
}

__attribute__((destructor)) static void libprof_unload(void)
{
	lp_finish(0);
}

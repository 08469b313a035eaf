/*
 * The exec family and posix_spawn. Before a program is replaced, its profile
 * so far is written (if exec fails, profiling goes on). With
 * LIBPROF_FOLLOW_EXEC=0, libprof is removed from the children's LD_PRELOAD:
 * from this process's own environment at load (which covers system, popen and
 * every exec that passes environ) and from any envp handed to these calls.
 *
 * A vfork child shares the parent's memory: it is recognized (its pid differs
 * from libprof's) and touches no shared state; filtering uses stack buffers only.
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"

#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define ENV_MAX 1024
#define ARGS_MAX 1024

extern char **environ;

static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			       const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				const posix_spawnattr_t *, char *const[], char *const[]);

struct envbuf {
	char *envp[ENV_MAX];
	char preload[4096];
};

static int is_libprof(const char *entry, size_t len)
{
	static const char name[] = "libprof.so";
	size_t n = sizeof(name) - 1;
	return len >= n && memcmp(entry + len - n, name, n) == 0 &&
	       (len == n || entry[len - n - 1] == '/');
}

/* Copies an LD_PRELOAD value without libprof's entries. Returns 1 if changed. */
static int strip_value(const char *val, char *out, size_t size)
{
	size_t o = 0;
	int changed = 0;
	for (const char *p = val; *p;) {
		size_t len = strcspn(p, ": ");
		if (is_libprof(p, len)) {
			changed = 1;
		} else if (len) {
			if (o + len + 2 > size)
				return 0;
			if (o)
				out[o++] = ':';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
		if (*p)
			p++;
	}
	out[o] = '\0';
	return changed;
}

/* envp as given, or with libprof removed from LD_PRELOAD (FOLLOW_EXEC=0). */
static char *const *child_env(char *const *envp, struct envbuf *b)
{
	if (lp.cfg.opt_follow_exec || !atomic_load(&lp.initialized) || !envp)
		return envp;
	size_t n = 0, at = (size_t)-1;
	for (; envp[n]; n++)
		if (strncmp(envp[n], "LD_PRELOAD=", 11) == 0)
			at = n;
	if (at == (size_t)-1 || n >= ENV_MAX)
		return envp;
	memcpy(b->preload, "LD_PRELOAD=", 11);
	if (!strip_value(envp[at] + 11, b->preload + 11, sizeof(b->preload) - 11))
		return envp;
	memcpy(b->envp, envp, (n + 1) * sizeof(*envp));
	b->envp[at] = b->preload;
	return b->envp;
}

void lp_exec_strip_environ(void)
{
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			continue;
		char out[4096];
		/* The new value is never longer: rewrite it in place. */
		if (strip_value(*e + 11, out, sizeof(out)))
			memcpy(*e + 11, out, strlen(out) + 1);
	}
}

/* Writes the profile so far; 1 when exec's failure must resume profiling. */
static int before_exec(void)
{
	if (!atomic_load(&lp.initialized) || getpid() != lp.pid)
		return 0;           /* disabled, or a vfork child */
	lp_finish(1);
	return 1;
}

static int after_failed_exec(int resumed)
{
	int saved = errno;
	if (resumed)
		lp_resume_after_exec();
	errno = saved;
	return -1;
}

LP_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	struct envbuf b;
	if (!real_execve)
		lp_exec_wrappers_init();
	int resume = before_exec();
	real_execve(path, argv, child_env(envp, &b));
	return after_failed_exec(resume);
}

LP_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

LP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	struct envbuf b;
	if (!real_execvpe)
		lp_exec_wrappers_init();
	int resume = before_exec();
	real_execvpe(file, argv, child_env(envp, &b));
	return after_failed_exec(resume);
}

LP_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

LP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	struct envbuf b;
	if (!real_fexecve)
		lp_exec_wrappers_init();
	int resume = before_exec();
	real_fexecve(fd, argv, child_env(envp, &b));
	return after_failed_exec(resume);
}

/* Collects execl-style arguments; NULL (errno E2BIG) when there are too many. */
static char **collect_args(const char *arg0, va_list ap, char **argv, char ***envp)
{
	size_t n = 0;
	argv[n++] = (char *)arg0;
	while (arg0) {
		if (n == ARGS_MAX) {
			errno = E2BIG;
			return NULL;
		}
		arg0 = va_arg(ap, const char *);
		argv[n++] = (char *)arg0;
	}
	if (envp)
		*envp = va_arg(ap, char **);
	return argv;
}

LP_EXPORT int execl(const char *path, const char *arg, ...)
{
	char *argv[ARGS_MAX + 1];
	va_list ap;
	va_start(ap, arg);
	char **args = collect_args(arg, ap, argv, NULL);
	va_end(ap);
	return args ? execve(path, args, environ) : -1;
}

LP_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *argv[ARGS_MAX + 1], **envp = NULL;
	va_list ap;
	va_start(ap, arg);
	char **args = collect_args(arg, ap, argv, &envp);
	va_end(ap);
	return args ? execve(path, args, envp) : -1;
}

LP_EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *argv[ARGS_MAX + 1];
	va_list ap;
	va_start(ap, arg);
	char **args = collect_args(arg, ap, argv, NULL);
	va_end(ap);
	return args ? execvpe(file, args, environ) : -1;
}

LP_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct envbuf b;
	if (!real_posix_spawn)
		lp_exec_wrappers_init();
	return real_posix_spawn(pid, path, fa, attr, argv, child_env(envp, &b));
}

LP_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct envbuf b;
	if (!real_posix_spawnp)
		lp_exec_wrappers_init();
	return real_posix_spawnp(pid, file, fa, attr, argv, child_env(envp, &b));
}

void lp_exec_wrappers_init(void)
{
	real_execve = (int (*)(const char *, char *const[], char *const[]))lp_resolve("execve");
	real_execvpe = (int (*)(const char *, char *const[], char *const[]))lp_resolve("execvpe");
	real_fexecve = (int (*)(int, char *const[], char *const[]))lp_resolve("fexecve");
	real_posix_spawn = (int (*)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				    const posix_spawnattr_t *, char *const[], char *const[]))
		lp_resolve("posix_spawn");
	real_posix_spawnp = (int (*)(pid_t *, const char *, const posix_spawn_file_actions_t *,
				     const posix_spawnattr_t *, char *const[], char *const[]))
		lp_resolve("posix_spawnp");
}

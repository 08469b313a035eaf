/*
 * Every mutex kind and the rwlock, each operation's return code printed, for a
 * table-driven comparison of the program with and without libprof (the output
 * must be identical). Kinds: normal, recursive, error-checking, robust,
 * process-shared, priority-inheritance; operations: lock, relock by the owner,
 * timed and clock locks that time out while another thread or process holds
 * the lock, owner death (robust), reads and writes on rwlocks. Also checks that
 * errno is untouched by the lock calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *name(int rc)
{
	switch (rc) {
	case 0: return "0";
	case EBUSY: return "EBUSY";
	case EDEADLK: return "EDEADLK";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EOWNERDEAD: return "EOWNERDEAD";
	case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
	default: return "other";
	}
}

static void report(const char *what, int rc)
{
	printf("%-48s %s\n", what, name(rc));
}

static struct timespec in_ms(clockid_t clock, long ms)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	ts.tv_nsec += ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	return ts;
}

struct held {
	pthread_mutex_t *m;
	pthread_rwlock_t *rw;
	int write, die;
	volatile int ready, release;
};

/* Holds the lock until told to release it (or exits holding it: "die"). */
static void *hold(void *arg)
{
	struct held *h = arg;
	if (h->m)
		pthread_mutex_lock(h->m);
	else if (h->write)
		pthread_rwlock_wrlock(h->rw);
	else
		pthread_rwlock_rdlock(h->rw);
	h->ready = 1;
	if (h->die)
		return NULL;
	while (!h->release)
		usleep(1000);
	if (h->m)
		pthread_mutex_unlock(h->m);
	else
		pthread_rwlock_unlock(h->rw);
	return NULL;
}

static pthread_t holder(struct held *h)
{
	pthread_t t;
	pthread_create(&t, NULL, hold, h);
	while (!h->ready)
		usleep(1000);
	return t;
}

static void kind(const char *label, int type, int robust, int protocol, int pshared)
{
	pthread_mutexattr_t a;
	pthread_mutex_t m;
	char what[96];
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, type);
	pthread_mutexattr_setrobust(&a, robust);
	pthread_mutexattr_setprotocol(&a, protocol);
	pthread_mutexattr_setpshared(&a, pshared);
	pthread_mutex_init(&m, &a);

	snprintf(what, sizeof(what), "%s: lock", label);
	report(what, pthread_mutex_lock(&m));
	if (type != PTHREAD_MUTEX_NORMAL) {
		snprintf(what, sizeof(what), "%s: relock by the owner", label);
		int rc = pthread_mutex_lock(&m);
		report(what, rc);
		if (rc == 0)
			pthread_mutex_unlock(&m);
	}
	struct timespec soon = in_ms(CLOCK_REALTIME, 20);
	snprintf(what, sizeof(what), "%s: timedlock by the owner", label);
	int rc = pthread_mutex_timedlock(&m, &soon);
	report(what, rc);
	if (rc == 0)
		pthread_mutex_unlock(&m);
	report("  unlock", pthread_mutex_unlock(&m));

	struct held h = { &m, NULL, 0, 0, 0, 0 };
	pthread_t t = holder(&h);
	soon = in_ms(CLOCK_REALTIME, 30);
	snprintf(what, sizeof(what), "%s: timedlock while held", label);
	report(what, pthread_mutex_timedlock(&m, &soon));
	soon = in_ms(CLOCK_MONOTONIC, 30);
	snprintf(what, sizeof(what), "%s: clocklock(MONOTONIC) while held", label);
	report(what, pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &soon));
	snprintf(what, sizeof(what), "%s: trylock while held", label);
	report(what, pthread_mutex_trylock(&m));
	h.release = 1;
	snprintf(what, sizeof(what), "%s: lock, waiting for the holder", label);
	report(what, pthread_mutex_lock(&m));
	pthread_mutex_unlock(&m);
	pthread_join(t, NULL);

	if (robust == PTHREAD_MUTEX_ROBUST) {
		struct held d = { &m, NULL, 0, 1, 0, 0 };
		pthread_join(holder(&d), NULL);   /* exits holding it */
		snprintf(what, sizeof(what), "%s: lock after the owner died", label);
		report(what, pthread_mutex_lock(&m));
		report("  unlock without consistent", pthread_mutex_unlock(&m));
		snprintf(what, sizeof(what), "%s: lock once unrecoverable", label);
		report(what, pthread_mutex_lock(&m));
	}
	pthread_mutex_destroy(&m);
	pthread_mutexattr_destroy(&a);
}

static void process_shared(void)
{
	pthread_mutex_t *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile int *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(m, &a);
	pid_t pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(m);
		*flag = 1;
		while (*flag != 2)
			usleep(1000);
		pthread_mutex_unlock(m);
		_exit(0);
	}
	while (*flag != 1)
		usleep(1000);
	struct timespec soon = in_ms(CLOCK_REALTIME, 30);
	report("process-shared: timedlock held by another process", pthread_mutex_timedlock(m, &soon));
	*flag = 2;
	report("process-shared: lock, waiting for the other process", pthread_mutex_lock(m));
	pthread_mutex_unlock(m);
	waitpid(pid, NULL, 0);
}

static void rwlocks(int prefer_writer)
{
	pthread_rwlockattr_t a;
	pthread_rwlock_t rw;
	const char *p = prefer_writer ? "rwlock(writer-preferring)" : "rwlock";
	char what[96];
	pthread_rwlockattr_init(&a);
	if (prefer_writer)
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&rw, &a);
	snprintf(what, sizeof(what), "%s: rdlock twice", p);
	pthread_rwlock_rdlock(&rw);
	report(what, pthread_rwlock_rdlock(&rw));
	pthread_rwlock_unlock(&rw);
	pthread_rwlock_unlock(&rw);
	snprintf(what, sizeof(what), "%s: wrlock then wrlock by the owner", p);
	pthread_rwlock_wrlock(&rw);
	report(what, pthread_rwlock_wrlock(&rw));
	pthread_rwlock_unlock(&rw);

	struct held r = { NULL, &rw, 0, 0, 0, 0 };
	pthread_t t = holder(&r);             /* another thread reads */
	struct timespec soon = in_ms(CLOCK_REALTIME, 30);
	snprintf(what, sizeof(what), "%s: timedwrlock while read", p);
	report(what, pthread_rwlock_timedwrlock(&rw, &soon));
	soon = in_ms(CLOCK_MONOTONIC, 30);
	snprintf(what, sizeof(what), "%s: clockwrlock while read", p);
	report(what, pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &soon));
	snprintf(what, sizeof(what), "%s: rdlock while read", p);
	report(what, pthread_rwlock_rdlock(&rw));
	pthread_rwlock_unlock(&rw);
	r.release = 1;
	snprintf(what, sizeof(what), "%s: wrlock, waiting for the reader", p);
	report(what, pthread_rwlock_wrlock(&rw));
	pthread_rwlock_unlock(&rw);
	pthread_join(t, NULL);

	struct held w = { NULL, &rw, 1, 0, 0, 0 };
	t = holder(&w);                       /* another thread writes */
	soon = in_ms(CLOCK_REALTIME, 30);
	snprintf(what, sizeof(what), "%s: timedrdlock while written", p);
	report(what, pthread_rwlock_timedrdlock(&rw, &soon));
	soon = in_ms(CLOCK_MONOTONIC, 30);
	snprintf(what, sizeof(what), "%s: clockrdlock while written", p);
	report(what, pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &soon));
	snprintf(what, sizeof(what), "%s: tryrdlock while written", p);
	report(what, pthread_rwlock_tryrdlock(&rw));
	w.release = 1;
	snprintf(what, sizeof(what), "%s: rdlock, waiting for the writer", p);
	report(what, pthread_rwlock_rdlock(&rw));
	pthread_rwlock_unlock(&rw);
	pthread_join(t, NULL);
	pthread_rwlock_destroy(&rw);
}

int main(void)
{
	static const struct { const char *label; int type; } types[] = {
		{ "normal", PTHREAD_MUTEX_NORMAL },
		{ "recursive", PTHREAD_MUTEX_RECURSIVE },
		{ "errorcheck", PTHREAD_MUTEX_ERRORCHECK },
	};
	errno = 4321;
	for (int i = 0; i < 3; i++) {
		char label[64];
		kind(types[i].label, types[i].type, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_NONE,
		     PTHREAD_PROCESS_PRIVATE);
		snprintf(label, sizeof(label), "robust %s", types[i].label);
		kind(label, types[i].type, PTHREAD_MUTEX_ROBUST, PTHREAD_PRIO_NONE,
		     PTHREAD_PROCESS_PRIVATE);
		snprintf(label, sizeof(label), "priority-inheritance %s", types[i].label);
		kind(label, types[i].type, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_INHERIT,
		     PTHREAD_PROCESS_PRIVATE);
		snprintf(label, sizeof(label), "robust priority-inheritance %s", types[i].label);
		kind(label, types[i].type, PTHREAD_MUTEX_ROBUST, PTHREAD_PRIO_INHERIT,
		     PTHREAD_PROCESS_PRIVATE);
	}
	int errno_kept = errno == 4321;
	process_shared();
	rwlocks(0);
	rwlocks(1);
	printf("errno kept by the lock calls: %s\n", errno_kept ? "yes" : "no");
	return 0;
}

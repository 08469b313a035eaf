/*
 * Known lock contention for the mutex-profile tests. Usage:
 *   contend ratio ROUNDS  a holder thread takes lock_a and holds it 1 ms while
 *                         wait_on_a asks for it; another does the same with
 *                         lock_b held 3 ms for wait_on_b: their waits are about
 *                         1:3 (each a little shorter than the hold: the waiter
 *                         notices the lock is held within ~50 us).
 *                         Prints each function's wait measured around the lock
 *                         calls, and the total, in ns.
 *   contend none N        one thread locks and unlocks N times: no contention.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pair {
	pthread_mutex_t lock;
	atomic_int held;            /* the holder has the lock now */
	long long hold_ns, waited_ns;
	int rounds;
};

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap(long long ns)
{
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}

/* Sleeps, not spins: the machine may have fewer cores than threads. */
static void *holder(void *arg)
{
	struct pair *p = arg;
	for (int i = 0; i < p->rounds; i++) {
		pthread_mutex_lock(&p->lock);
		atomic_store(&p->held, 1);
		nap(p->hold_ns);
		pthread_mutex_unlock(&p->lock);
		while (atomic_load(&p->held))       /* until the waiter had its turn */
			nap(20000);
	}
	return NULL;
}

static void wait_turn(struct pair *p)
{
	while (!atomic_load(&p->held))
		nap(20000);
	long long t0 = now_ns();
	pthread_mutex_lock(&p->lock);
	p->waited_ns += now_ns() - t0;
	atomic_store(&p->held, 0);
	pthread_mutex_unlock(&p->lock);
}

static void wait_on_a(struct pair *p) { wait_turn(p); }
static void wait_on_b(struct pair *p) { wait_turn(p); }

static void *waiter_a(void *arg)
{
	struct pair *p = arg;
	for (int i = 0; i < p->rounds; i++)
		wait_on_a(p);
	return NULL;
}

static void *waiter_b(void *arg)
{
	struct pair *p = arg;
	for (int i = 0; i < p->rounds; i++)
		wait_on_b(p);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	if (!strcmp(argv[1], "none")) {
		pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++) {
			pthread_mutex_lock(&m);
			pthread_mutex_unlock(&m);
		}
		printf("contend none done\n");
		return 0;
	}
	int rounds = atoi(argv[2]);
	static struct pair a = { PTHREAD_MUTEX_INITIALIZER, 0, 1000000, 0, 0 };
	static struct pair b = { PTHREAD_MUTEX_INITIALIZER, 0, 3000000, 0, 0 };
	a.rounds = b.rounds = rounds;
	pthread_t t[4];
	pthread_create(&t[0], NULL, holder, &a);
	pthread_create(&t[1], NULL, waiter_a, &a);
	pthread_create(&t[2], NULL, holder, &b);
	pthread_create(&t[3], NULL, waiter_b, &b);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	printf("wait_on_a %lld wait_on_b %lld total %lld\n", a.waited_ns, b.waited_ns,
	       a.waited_ns + b.waited_ns);
	return 0;
}

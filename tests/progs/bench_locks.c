/*
 * Lock benchmarks for `make bench`:
 *   bench_locks pair N           N uncontended pthread_mutex_lock/unlock pairs
 *                                on one thread (the wrapper's fast path)
 *   bench_locks contended T N    T threads share one mutex: each of N rounds
 *                                takes it for a short critical section, then
 *                                works outside it; fixed work, a real queue
 * Prints one checksum line.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counter;
static volatile unsigned long sink;
static long rounds;

static void work(int n)
{
	unsigned long x = sink;
	for (int i = 0; i < n; i++)
		x = x * 6364136223846793005ul + 1442695040888963407ul;
	sink = x;
}

static void *contender(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		pthread_mutex_lock(&shared);
		counter++;
		work(100);                  /* inside: a short critical section */
		pthread_mutex_unlock(&shared);
		work(300);                  /* outside */
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "pair")) {
		long n = atol(argv[2]);
		pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
		for (long i = 0; i < n; i++) {
			pthread_mutex_lock(&m);
			counter++;
			pthread_mutex_unlock(&m);
		}
		printf("pairs %lu\n", counter);
		return 0;
	}
	if (argc > 3 && !strcmp(argv[1], "contended")) {
		int t = atoi(argv[2]);
		rounds = atol(argv[3]);
		pthread_t th[64];
		for (int i = 0; i < t && i < 64; i++)
			pthread_create(&th[i], NULL, contender, NULL);
		for (int i = 0; i < t && i < 64; i++)
			pthread_join(th[i], NULL);
		printf("rounds %lu\n", counter);
		return 0;
	}
	fprintf(stderr, "usage: bench_locks pair N | contended THREADS ROUNDS\n");
	return 2;
}

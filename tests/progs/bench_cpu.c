/*
 * CPU-bound workload for scripts/bench.sh: a fixed amount of work, so that the
 * CPU time of two runs can be compared, with stacks deep enough to exercise
 * the unwinder.
 *
 * Usage: bench_cpu [threads [units]]   (default: 2 threads, 100000 units each)
 *
 * Each thread does `units` units of work. A unit descends 12 to 19 frames
 * through two mutually recursive functions (which of the two at each level
 * follows the unit's number, so a run has a few hundred distinct stacks, as a
 * real program does) and hashes a buffer at the bottom. Nothing allocates,
 * locks or makes a system call once the threads run. The only output is one
 * checksum line, the same for every run with the same arguments.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_THREADS 64
#define LEAF_WORDS 512          /* words hashed per leaf visit */
#define LEAF_ROUNDS 24          /* passes over them: ~20 us per unit */

struct worker {
	pthread_t thread;
	unsigned id;
	long units;
	uint64_t sum;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* The leaf: integer arithmetic over a small buffer on this thread's stack. */
static uint64_t leaf(uint64_t seed)
{
	uint64_t words[LEAF_WORDS];
	uint64_t h = seed;
	for (int i = 0; i < LEAF_WORDS; i++)
		words[i] = mix(seed + (uint64_t)i);
	for (int r = 0; r < LEAF_ROUNDS; r++)
		for (int i = 0; i < LEAF_WORDS; i++) {
			h = (h ^ words[i]) * 0x100000001b3ULL;
			words[i] += h >> 29;
		}
	return h;
}

static uint64_t descend_b(int depth, unsigned path, uint64_t seed);

/* Work happens after the call returns, so that no call is a tail call. */
static uint64_t descend_a(int depth, unsigned path, uint64_t seed)
{
	if (depth == 0)
		return leaf(seed);
	uint64_t r = (path & 1) ? descend_b(depth - 1, path >> 1, seed + 1)
				: descend_a(depth - 1, path >> 1, seed + 3);
	return r * 31 + (uint64_t)depth;
}

static uint64_t descend_b(int depth, unsigned path, uint64_t seed)
{
	if (depth == 0)
		return leaf(~seed);
	uint64_t r = (path & 1) ? descend_a(depth - 1, path >> 1, seed + 7)
				: descend_b(depth - 1, path >> 1, seed + 5);
	return (r ^ (uint64_t)depth) * 17;
}

static uint64_t unit(unsigned id, long n)
{
	int depth = 12 + (int)(n % 8);
	unsigned path = (unsigned)(n / 8) % 64;
	return descend_a(depth, path, (uint64_t)id << 32 | (uint64_t)n);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t sum = 0;
	for (long n = 0; n < w->units; n++)
		sum += unit(w->id, n);
	w->sum = sum;
	return NULL;
}

static long arg_or(int argc, char **argv, int i, long def, long lo, long hi)
{
	if (argc <= i)
		return def;
	char *end;
	long v = strtol(argv[i], &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "bench_cpu: argument %d must be %ld..%ld\n", i, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	int n_threads = (int)arg_or(argc, argv, 1, 2, 1, MAX_THREADS);
	long units = arg_or(argc, argv, 2, 100000, 1, 100000000);
	uint64_t total = 0;

	for (int i = 0; i < n_threads; i++) {
		workers[i].id = (unsigned)i;
		workers[i].units = units;
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
			fprintf(stderr, "bench_cpu: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < n_threads; i++) {
		pthread_join(workers[i].thread, NULL);
		total ^= workers[i].sum;
	}
	printf("bench_cpu: %d threads x %ld units: checksum %016llx\n", n_threads, units,
	       (unsigned long long)total);
	return 0;
}

/*
 * Micro-benchmark for scripts/bench.sh: the cost of a malloc+free pair, and
 * nothing else, so that the difference between two runs' CPU time divided by
 * the number of pairs is what a malloc wrapper adds to each pair.
 *
 * Usage: bench_malloc_pair [size [pairs]]   (default: 32 bytes, 50000000 pairs)
 *
 * One thread allocates a block of `size` bytes and frees it at once, `pairs`
 * times. Each pointer is stored to a volatile, so the compiler can neither drop
 * the pair nor merge iterations (the loop is malloc@plt, a store, free@plt).
 * The only output is one line, the same for every run with the same arguments.
 */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

static long arg_or(int argc, char **argv, int i, long def, long lo, long hi)
{
	if (argc <= i)
		return def;
	char *end;
	long v = strtol(argv[i], &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "bench_malloc_pair: argument %d must be %ld..%ld\n", i, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	size_t size = (size_t)arg_or(argc, argv, 1, 32, 1, 1 << 20);
	long pairs = arg_or(argc, argv, 2, 50000000, 1, 100000000000);

	for (long i = 0; i < pairs; i++) {
		void *p = malloc(size);
		if (!p) {
			fprintf(stderr, "bench_malloc_pair: out of memory\n");
			return 1;
		}
		sink = p;
		free(p);
	}
	printf("bench_malloc_pair: %ld malloc(%zu)/free pairs\n", pairs, size);
	return 0;
}

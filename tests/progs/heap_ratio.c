/*
 * Known allocations for the heap accuracy test: alloc_a allocates N bytes in
 * total and alloc_b 3N, in mixed sizes from 16 B to 1 MiB, each block freed at
 * once. Usage: heap_ratio MIB (N in MiB). Prints the true totals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = { 16, 100, 1000, 4096, 65536, 1 << 20 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))
static volatile unsigned char sink;

/* Allocates about total bytes, an equal share in each size. */
static size_t churn(size_t total)
{
	size_t done = 0;
	for (size_t k = 0; k < N_SIZES; k++) {
		size_t n = total / N_SIZES / sizes[k];
		for (size_t i = 0; i < n; i++) {
			unsigned char *p = malloc(sizes[k]);
			if (!p)
				exit(1);
			p[0] = (unsigned char)i;
			sink ^= p[0];
			free(p);
			done += sizes[k];
		}
	}
	return done;
}

static size_t alloc_a(size_t total) { return churn(total); }
static size_t alloc_b(size_t total) { return churn(total); }

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 128;
	size_t a = alloc_a(mib << 20);
	size_t b = alloc_b(3 * (mib << 20));
	printf("alloc_a %zu alloc_b %zu total %zu\n", a, b, a + b);
	return 0;
}

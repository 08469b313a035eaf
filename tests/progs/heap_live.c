/*
 * A program that keeps 64 MiB live from keep_live (blocks of mixed sizes) while
 * churn() allocates and frees 256 MiB more, holds them for HOLD ms, then frees
 * them and goes on churning for HOLD ms. Usage: heap_live HOLD_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEP (64u << 20)
static void *kept[1 << 16];
static size_t n_kept;
static volatile unsigned char sink;

static void keep_live(void)
{
	static const size_t sizes[] = { 64, 512, 4096, 32768, 262144 };
	size_t total = 0;
	for (size_t i = 0; total < KEEP; i++) {
		size_t s = sizes[i % 5];
		if (total + s > KEEP)
			s = KEEP - total;
		kept[n_kept] = malloc(s);
		memset(kept[n_kept++], 1, s);
		total += s;
	}
}

static void churn(size_t total)
{
	for (size_t done = 0; done < total; done += 3000) {
		unsigned char *p = malloc(3000);
		p[0] = 1;
		sink ^= p[0];
		free(p);
	}
}

static void churn_for(long ms)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		churn(8u << 20);
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

int main(int argc, char **argv)
{
	long hold = argc > 1 ? atol(argv[1]) : 1500;
	keep_live();
	churn(256u << 20);
	churn_for(hold);
	for (size_t i = 0; i < n_kept; i++)
		free(kept[i]);
	churn_for(hold);
	printf("heap_live done (%zu blocks kept)\n", n_kept);
	return 0;
}

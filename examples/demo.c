/*
 * The demo program: three worker threads, each with its own hot function, and
 * the main thread parsing numbers. Runs for the number of seconds given (3).
 * Used by `make demo` to show libprof on a program it knows nothing about.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile int stop;
static volatile double sink;

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hash_strings(void)
{
	unsigned long h = 5381;
	for (int i = 0; i < 100000; i++)
		h = h * 33 + (unsigned long)(i & 0xff);
	sink += (double)(h & 1);
}

static void multiply_matrices(void)
{
	static double a[32][32], b[32][32], c[32][32];
	for (int i = 0; i < 32; i++)
		for (int j = 0; j < 32; j++)
			for (int k = 0; k < 32; k++)
				c[i][j] += a[i][k] * b[k][j] + 1.0;
	sink += c[1][1];
}

static void sort_numbers(void)
{
	int v[256];
	for (int i = 0; i < 256; i++)
		v[i] = (i * 7919) % 256;
	for (int i = 1; i < 256; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			int t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	sink += v[0];
}

static void *worker(void *fn)
{
	void (*work)(void) = (void (*)(void))fn;
	while (!stop)
		work();
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	pthread_t t[3];
	pthread_create(&t[0], NULL, worker, (void *)hash_strings);
	pthread_create(&t[1], NULL, worker, (void *)multiply_matrices);
	pthread_create(&t[2], NULL, worker, (void *)sort_numbers);
	double start = cpu_seconds();
	struct timespec now, begin;
	clock_gettime(CLOCK_MONOTONIC, &begin);
	do {
		char buf[32];
		for (int i = 0; i < 1000; i++) {
			snprintf(buf, sizeof(buf), "%d", i);
			sink += strtod(buf, NULL);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - begin.tv_sec) + (double)(now.tv_nsec - begin.tv_nsec) / 1e9 <
		 seconds);
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("demo: done after %.1f s (main thread used %.2f s of CPU)\n", seconds,
	       cpu_seconds() - start);
	return 0;
}

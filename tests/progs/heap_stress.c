/*
 * The malloc family's contract, checked from inside a program: realloc growth
 * and shrink keep the contents, calloc zeroes, the aligned allocators align,
 * usable sizes are large enough, errno is set on failure and left alone on
 * success, threads free each other's blocks, and fork works while other
 * threads allocate. Prints "heap_stress ok" and exits 0, or names the failure.
 * "heap_stress portable" leaves out what only glibc's allocator promises
 * (valloc, pvalloc, memalign, errno of calloc overflow), for other allocators.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Sizes the compiler must not see, so it does not reject the calls. */
static volatile size_t size_max = SIZE_MAX;

/* A failed check is reported and the others still run (the output is compared
 * with the same program's output without libprof). FATAL stops. */
static int n_failed, portable;
#define FAIL(...) do { printf("heap_stress: " __VA_ARGS__); printf("\n"); n_failed++; } while (0)
#define FATAL(...) do { FAIL(__VA_ARGS__); exit(1); } while (0)

static void check_realloc(void)
{
	unsigned char *p = malloc(10);
	for (int i = 0; i < 10; i++)
		p[i] = (unsigned char)i;
	for (size_t size = 16; size <= (8u << 20); size *= 2) {
		p = realloc(p, size);
		if (!p)
			FATAL("realloc to %zu failed", size);
		for (int i = 0; i < 10; i++)
			if (p[i] != i)
				FAIL("realloc growth lost data at %zu", size);
		memset(p + 10, 0xab, size - 10);
	}
	p = realloc(p, 12);
	for (int i = 0; i < 10; i++)
		if (p[i] != i)
			FAIL("realloc shrink lost data");
	p = reallocarray(p, 100, 8);
	if (!p)
		FATAL("reallocarray failed");
	if (p[9] != 9)
		FAIL("reallocarray lost data");
	errno = 0;
	void *volatile keep = p;    /* still valid after a failed reallocarray */
	if (reallocarray(keep, size_max, 2) != NULL || errno != ENOMEM)
		FAIL("reallocarray overflow: errno %d", errno);
	p = keep;
	void *zero = realloc(p, 0);     /* frees p; glibc returns NULL */
	free(zero);
}

static void check_calloc(void)
{
	for (int round = 0; round < 200; round++) {
		size_t n = 1 + (size_t)round * 37;
		unsigned char *p = malloc(n * 8);
		memset(p, 0xff, n * 8);
		free(p);
		unsigned char *q = calloc(n, 8);
		if (!q)
			FATAL("calloc failed");
		for (size_t i = 0; i < n * 8; i++)
			if (q[i])
				FAIL("calloc byte %zu of %zu not zero", i, n * 8);
		free(q);
	}
	errno = 0;
	if (calloc(size_max / 2, 4) != NULL || (!portable && errno != ENOMEM))
		FAIL("calloc overflow: errno %d", errno);
}

static void check_aligned(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t align = 16; align <= 65536; align *= 2) {
		void *p = NULL;
		if (posix_memalign(&p, align, 1000) != 0 || (uintptr_t)p % align)
			FAIL("posix_memalign(%zu)", align);
		free(p);
		p = aligned_alloc(align, align * 3);
		if (!p || (uintptr_t)p % align)
			FAIL("aligned_alloc(%zu)", align);
		free(p);
		if (portable)
			continue;
		p = memalign(align, 100);
		if (!p || (uintptr_t)p % align)
			FAIL("memalign(%zu)", align);
		free(p);
	}
	if (portable)
		return;
	void *v = valloc(100), *pv = pvalloc(100);
	if (!v || (uintptr_t)v % page || !pv || (uintptr_t)pv % page || malloc_usable_size(pv) < page)
		FAIL("valloc/pvalloc");
	free(v);
	free(pv);
	void *bad = NULL;
	if (posix_memalign(&bad, 3, 10) != EINVAL)
		FAIL("posix_memalign with a bad alignment must return EINVAL");
}

static void check_errno_and_sizes(void)
{
	for (size_t size = 1; size < (1u << 22); size = size * 3 + 1) {
		errno = 4242;
		unsigned char *p = malloc(size);
		if (!p)
			FATAL("malloc(%zu) failed", size);
		if (errno != 4242)
			FAIL("malloc(%zu) changed errno to %d", size, errno);
		if (malloc_usable_size(p) < size)
			FAIL("usable size %zu < %zu", malloc_usable_size(p), size);
		errno = 4242;
		free(p);
		if (errno != 4242)
			FAIL("free changed errno to %d", errno);
	}
	errno = 0;
	if (malloc(size_max - 4096) != NULL || errno != ENOMEM)
		FAIL("malloc(huge): errno %d", errno);
}

/* Threads allocate blocks and hand them to the next thread, which frees them. */
#define THREADS 4
#define ROUNDS 200000
static void *_Atomic mailbox[THREADS][64];

static void *exchange(void *arg)
{
	int me = (int)(intptr_t)arg, next = (me + 1) % THREADS;
	unsigned seed = (unsigned)me * 7919u + 1;
	for (int i = 0; i < ROUNDS; i++) {
		seed = seed * 1103515245u + 12345u;
		size_t size = 8 + (seed >> 8) % 3000;
		unsigned char *p = malloc(size);
		p[0] = (unsigned char)me;
		p[size - 1] = (unsigned char)me;
		void *old = atomic_exchange(&mailbox[next][i % 64], p);
		if (old)
			free(old);
	}
	return NULL;
}

static void check_threads_and_fork(void)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, exchange, (void *)(intptr_t)i);
	for (int k = 0; k < 20; k++) {       /* fork while they allocate */
		pid_t pid = fork();
		if (pid == 0) {
			void *p = malloc(1000);
			free(p);
			p = calloc(10, 100);
			free(p);
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			FAIL("forked child failed");
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < 64; j++)
			free(atomic_exchange(&mailbox[i][j], NULL));
}

int main(int argc, char **argv)
{
	portable = argc > 1 && strcmp(argv[1], "portable") == 0;
	check_realloc();
	check_calloc();
	check_aligned();
	check_errno_and_sizes();
	check_threads_and_fork();
	if (n_failed)
		printf("heap_stress: %d checks failed\n", n_failed);
	else
		printf("heap_stress ok\n");
	return n_failed != 0;
}

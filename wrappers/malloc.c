/*
 * The malloc family: every allocation goes to the next allocator (glibc's, or
 * jemalloc/tcmalloc when the program uses one), and a Poisson-sampled few are
 * recorded (preload/heap.c). free() forgets sampled blocks; for the others it
 * costs one filter load. Return values, errno, alignment and usable size are
 * the next allocator's own: libprof adds no header to any block.
 *
 * Bootstrap: dlsym may allocate before the originals are known; those early
 * requests are served from a small static pool, which free and realloc
 * recognise by address.
 */
#include "wrappers.h"
#include "internal.h"
#include "../preload/preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Obsolete entry points that glibc still exports; <malloc.h> declares them. */
void *memalign(size_t align, size_t size);
void *pvalloc(size_t size);

static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
} real;

#define POOL_BYTES (64 * 1024)
static _Alignas(64) unsigned char pool[POOL_BYTES];
static _Atomic size_t pool_used;
static atomic_int resolving;

/* A block of the bootstrap pool, 16-aligned, its size in the 16 bytes before it. */
static void *pool_alloc(size_t size)
{
	size_t need = ((size + 15) & ~(size_t)15) + 16;
	size_t at = atomic_fetch_add(&pool_used, need);
	if (size > POOL_BYTES || at + need > POOL_BYTES) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(pool + at, &size, sizeof(size));
	return pool + at + 16;      /* static storage is zeroed: calloc holds */
}

static inline int in_pool(const void *p)
{
	return (uintptr_t)p - (uintptr_t)pool < POOL_BYTES;
}

static size_t pool_size(const void *p)
{
	size_t size;
	memcpy(&size, (const unsigned char *)p - 16, sizeof(size));
	return size;
}

static int same_object(void *a, void *b)
{
	Dl_info ia, ib;
	return a && b && dladdr(a, &ia) && dladdr(b, &ib) && ia.dli_fbase == ib.dli_fbase;
}

/* Resolves the originals once. Returns 0 while resolving (callers use the pool). */
static int resolve(void)
{
	if (real.malloc)
		return 1;
	if (atomic_exchange(&resolving, 1))
		return 0;
	real.calloc = (void *(*)(size_t, size_t))lp_resolve("calloc");
	real.free = (void (*)(void *))lp_resolve("free");
	real.realloc = (void *(*)(void *, size_t))lp_resolve("realloc");
	real.reallocarray = (void *(*)(void *, size_t, size_t))dlsym(RTLD_NEXT, "reallocarray");
	real.posix_memalign = (int (*)(void **, size_t, size_t))lp_resolve("posix_memalign");
	real.aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	real.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	real.valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
	real.pvalloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "pvalloc");
	void *next_malloc = dlsym(RTLD_NEXT, "malloc");
	/* An allocator that lacks an old entry point (jemalloc has no pvalloc)
	 * leaves glibc's visible: its blocks would reach the other allocator's
	 * free. Such entry points are served by the allocator's posix_memalign. */
	if (!same_object(next_malloc, (void *)real.aligned_alloc))
		real.aligned_alloc = NULL;
	if (!same_object(next_malloc, (void *)real.memalign))
		real.memalign = NULL;
	if (!same_object(next_malloc, (void *)real.valloc))
		real.valloc = NULL;
	if (!same_object(next_malloc, (void *)real.pvalloc))
		real.pvalloc = NULL;
	/* Last, and released: a thread that sees it sees all the others. */
	__atomic_store_n(&real.malloc, (void *(*)(size_t))lp_resolve("malloc"), __ATOMIC_RELEASE);
	return real.malloc != NULL;
}

static inline void *sample(void *p, size_t size)
{
	return p && lp_heap_should_sample(size) ? lp_heap_record(p, size) : p;
}

/* Bootstrap, and the allocation that reaches the thread's sample point. */
static __attribute__((noinline)) void *malloc_slow(size_t size)
{
	if (!real.malloc && !resolve())
		return pool_alloc(size);
	int sampled = lp_heap_should_sample(size);
	void *p = real.malloc(size);
	return sampled && p ? lp_heap_record(p, size) : p;
}

/* Sampling is decided before allocating, so the common case is a countdown
 * step and a tail call: no frame, errno and the result the allocator's own. */
LP_EXPORT void *malloc(size_t size)
{
	if (__builtin_expect(real.malloc != NULL, 1) && lp_heap_skip(size))
		return real.malloc(size);
	return malloc_slow(size);
}

/* A block of the pool, one that may have been sampled, or no originals yet. */
static __attribute__((noinline)) void free_slow(void *p)
{
	if (!p || in_pool(p))
		return;
	lp_heap_forget(p);
	if (!real.free && !resolve())
		return;             /* cannot happen: p came from a resolved allocator */
	real.free(p);
}

/* The common case is one filter load, a range check and a tail call. */
LP_EXPORT void free(void *p)
{
	if (__builtin_expect(!lp_heap_maybe_sampled(p) && !in_pool(p) && real.free != NULL, 1))
		return real.free(p);
	free_slow(p);
}

static __attribute__((noinline)) void *calloc_slow(size_t n, size_t size)
{
	if (!real.malloc && !resolve()) {
		if (size && n > SIZE_MAX / size) {
			errno = ENOMEM;
			return NULL;
		}
		return pool_alloc(n * size);
	}
	size_t bytes;
	int sampled = !__builtin_mul_overflow(n, size, &bytes) && lp_heap_should_sample(bytes);
	void *p = real.calloc(n, size);
	return sampled && p ? lp_heap_record(p, bytes) : p;
}

LP_EXPORT void *calloc(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_expect(real.malloc != NULL && !__builtin_mul_overflow(n, size, &bytes), 1) &&
	    lp_heap_skip(bytes))
		return real.calloc(n, size);
	return calloc_slow(n, size);
}

static void *realloc_from_pool(void *old, size_t size)
{
	void *p = malloc(size);
	size_t have = pool_size(old);
	if (p)
		memcpy(p, old, have < size ? have : size);
	return p;
}

static __attribute__((noinline)) void *realloc_slow(void *old, size_t size)
{
	if (old && in_pool(old))
		return realloc_from_pool(old, size);
	if (!real.malloc && !resolve())
		return old ? NULL : pool_alloc(size);
	if (old)
		lp_heap_forget(old);  /* before: once moved, the address may be reused */
	int sampled = size && lp_heap_should_sample(size);
	void *p = real.realloc(old, size);
	return sampled && p ? lp_heap_record(p, size) : p;
}

/* As malloc and free: realloc(p, 0) and whatever needs more than a countdown
 * step and a filter load takes the slow path. */
LP_EXPORT void *realloc(void *old, size_t size)
{
	if (__builtin_expect(real.malloc != NULL && size && !lp_heap_maybe_sampled(old) &&
			     !in_pool(old), 1) && lp_heap_skip(size))
		return real.realloc(old, size);
	return realloc_slow(old, size);
}

LP_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	if (!real.reallocarray || (old && in_pool(old)))
		return realloc(old, n * size);
	if (old)
		lp_heap_forget(old);
	void *p = real.reallocarray(old, n, size);
	return n && size ? sample(p, n * size) : p;
}

LP_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (__builtin_expect(!real.malloc, 0) && !resolve())
		return ENOMEM;
	int rc = real.posix_memalign(out, align, size);
	if (rc == 0)
		sample(*out, size);
	return rc;
}

/* When the next allocator lacks one of the old entry points: posix_memalign. */
static void *via_posix_memalign(size_t align, size_t size)
{
	void *p = NULL;
	int rc = real.posix_memalign(&p, align, size);
	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	return p;
}

LP_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	if (__builtin_expect(!real.malloc, 0) && !resolve())
		return NULL;
	void *p = real.aligned_alloc ? real.aligned_alloc(align, size)
				     : via_posix_memalign(align, size);
	return sample(p, size);
}

LP_EXPORT void *memalign(size_t align, size_t size)
{
	if (__builtin_expect(!real.malloc, 0) && !resolve())
		return NULL;
	void *p = real.memalign ? real.memalign(align, size) : via_posix_memalign(align, size);
	return sample(p, size);
}

LP_EXPORT void *valloc(size_t size)
{
	if (__builtin_expect(!real.malloc, 0) && !resolve())
		return NULL;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p = real.valloc ? real.valloc(size) : via_posix_memalign(page, size);
	return sample(p, size);
}

LP_EXPORT void *pvalloc(size_t size)
{
	if (__builtin_expect(!real.malloc, 0) && !resolve())
		return NULL;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t rounded = (size + page - 1) & ~(page - 1);
	void *p = real.pvalloc ? real.pvalloc(size) : via_posix_memalign(page, rounded ? rounded : page);
	return sample(p, rounded);
}

void lp_malloc_wrappers_init(void)
{
	resolve();
}

/*
 * Malloc-heavy workload for scripts/bench.sh: a fixed amount of work, so that
 * the CPU time of two runs can be compared, spending some 40% of it in the
 * allocator (glibc's malloc and free, and the page faults and trims they cause).
 *
 * Usage: bench_alloc [threads [ops]]   (default: 2 threads, 10000000 ops each)
 *
 * Each thread keeps a ring of RING_SLOTS live blocks. An op allocates one block
 * through one of four call paths, 3 to 6 frames deep (request parsing, response
 * building, a cache, a log buffer, as a server would), fills it, does a little
 * arithmetic on it, and releases the ring's oldest block: most of the time by
 * freeing it, every CROSS_EVERY-th time by handing it to the next thread, which
 * frees it later (cross-thread frees). Sizes follow a fixed mix: 90% from 16 to
 * 512 B, 9% from 512 B to 4 KiB, 1% from 4 to 256 KiB, log-uniform within each
 * band (about 0.9 KiB per op on average). The live set moves all the time and
 * stays around RING_SLOTS blocks per thread.
 *
 * The only output is one checksum line, computed from the blocks' contents (never
 * their addresses or the order of cross-thread frees), so it is the same for
 * every run with the same arguments, whatever the allocator.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define RING_SLOTS 4096
#define CROSS_EVERY 16          /* one block in 16 is freed by another thread */
#define MAILBOX_SLOTS 4096      /* blocks in flight to a thread, at most */
#define WORK_ROUNDS 1           /* the arithmetic an op does besides allocating */
#define FILL_BYTES 2048         /* bytes of a block written at once; then one per page */

struct block {
	uint64_t tag;               /* derived from the op's number */
	uint32_t size;
	uint32_t kind;
	unsigned char bytes[];
};

/* Blocks handed to a thread by its neighbour; it frees them in batches. */
struct mailbox {
	pthread_mutex_t mu;
	struct block *slots[MAILBOX_SLOTS];
	size_t n;
};

struct worker {
	pthread_t thread;
	unsigned id;
	long ops;
	uint64_t rng;
	uint64_t sum;
	struct mailbox box;
	struct worker *next;        /* receives this thread's cross-thread frees */
	struct block *ring[RING_SLOTS];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static uint64_t next_random(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* Log-uniform in [lo, hi): 8 + 12 bits of fraction is plenty. */
static size_t log_uniform(uint64_t r, unsigned lo_log2, unsigned hi_log2)
{
	unsigned span = hi_log2 - lo_log2;
	unsigned whole = (unsigned)(r % span);
	double frac = (double)((r >> 8) & 4095) / 4096.0;
	return (size_t)((double)((size_t)1 << (lo_log2 + whole)) * (1.0 + frac));
}

static size_t pick_size(uint64_t r)
{
	unsigned band = (unsigned)(r % 100);
	r >>= 8;
	if (band < 90)
		return log_uniform(r, 4, 9);        /* 16 B - 512 B */
	if (band < 99)
		return log_uniform(r, 9, 12);       /* 512 B - 4 KiB */
	return log_uniform(r, 12, 18);              /* 4 KiB - 256 KiB */
}

/* The bottom of every path: allocate and fill. */
static struct block *new_block(size_t size, unsigned kind, uint64_t tag)
{
	if (size < sizeof(struct block))
		size = sizeof(struct block);
	struct block *b = malloc(size);
	if (!b) {
		fprintf(stderr, "bench_alloc: out of memory\n");
		exit(1);
	}
	b->tag = tag;
	b->size = (uint32_t)size;
	b->kind = kind;
	size_t n = size - sizeof(struct block);
	memset(b->bytes, (int)(tag & 0xff), n < FILL_BYTES ? n : FILL_BYTES);
	for (size_t i = FILL_BYTES; i < n; i += 4096)
		b->bytes[i] = (unsigned char)tag;
	if (n > FILL_BYTES)
		b->bytes[n - 1] = (unsigned char)tag;
	return b;
}

/* Four call paths of different depths, so that profiles have distinct stacks. */
static struct block *parse_field(size_t size, uint64_t tag)
{
	return new_block(size, 0, tag);
}

static struct block *parse_header(size_t size, uint64_t tag)
{
	return parse_field(size, tag ^ 1);
}

static struct block *parse_request(size_t size, uint64_t tag)
{
	return parse_header(size, tag ^ 2);
}

static struct block *render_body(size_t size, uint64_t tag)
{
	return new_block(size, 1, tag);
}

static struct block *build_response(size_t size, uint64_t tag)
{
	return render_body(size, tag ^ 3);
}

static struct block *cache_node(size_t size, uint64_t tag)
{
	return new_block(size, 2, tag);
}

static struct block *cache_bucket(size_t size, uint64_t tag)
{
	return cache_node(size, tag ^ 4);
}

static struct block *cache_insert(size_t size, uint64_t tag)
{
	return cache_bucket(size, tag ^ 5);
}

static struct block *cache_fill(size_t size, uint64_t tag)
{
	return cache_insert(size, tag ^ 6);
}

static struct block *log_buffer(size_t size, uint64_t tag)
{
	return new_block(size, 3, tag);
}

static struct block *allocate(uint64_t r, uint64_t tag)
{
	size_t size = pick_size(r >> 8);
	switch (r & 3) {
	case 0: return parse_request(size, tag);
	case 1: return build_response(size, tag);
	case 2: return cache_fill(size, tag);
	default: return log_buffer(size, tag);
	}
}

/* What the program does with a block besides allocating it. */
static uint64_t use_block(const struct block *b)
{
	uint64_t h = b->tag ^ b->size;
	size_t n = b->size - sizeof(struct block);
	if (n > FILL_BYTES)
		n = FILL_BYTES;     /* the rest is not all written */
	size_t step = n / 8 + 1;
	for (int round = 0; round < WORK_ROUNDS; round++)
		for (size_t i = 0; i < n; i += step)
			h = mix(h + b->bytes[i] + (uint64_t)round);
	return h;
}

/* The digest of a block about to be freed: contents only, order-independent. */
static uint64_t digest(const struct block *b)
{
	size_t n = b->size - sizeof(struct block);
	return mix(b->tag + b->size + b->kind + (n ? b->bytes[n - 1] : 0));
}

static uint64_t release(struct block *b)
{
	uint64_t d = digest(b);
	free(b);
	return d;
}

static uint64_t drain(struct mailbox *box)
{
	struct block *batch[MAILBOX_SLOTS];
	pthread_mutex_lock(&box->mu);
	size_t n = box->n;
	memcpy(batch, box->slots, n * sizeof(batch[0]));
	box->n = 0;
	pthread_mutex_unlock(&box->mu);
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += release(batch[i]);
	return sum;
}

/* Hands b to w's neighbour; frees it here when the neighbour's box is full. */
static uint64_t hand_off(struct worker *w, struct block *b)
{
	struct mailbox *box = &w->next->box;
	pthread_mutex_lock(&box->mu);
	int queued = box->n < MAILBOX_SLOTS;
	if (queued)
		box->slots[box->n++] = b;
	pthread_mutex_unlock(&box->mu);
	return queued ? 0 : release(b);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t sum = 0;
	for (long n = 0; n < w->ops; n++) {
		uint64_t r = next_random(w);
		struct block *b = allocate(r, (uint64_t)w->id << 40 | (uint64_t)n);
		sum += use_block(b);
		struct block **slot = &w->ring[n % RING_SLOTS];
		if (*slot)
			sum += (n % CROSS_EVERY == 0) ? hand_off(w, *slot) : release(*slot);
		*slot = b;
		if (n % 256 == 0)
			sum += drain(&w->box);
	}
	for (size_t i = 0; i < RING_SLOTS; i++)
		if (w->ring[i])
			sum += release(w->ring[i]);
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
		fprintf(stderr, "bench_alloc: argument %d must be %ld..%ld\n", i, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	int n_threads = (int)arg_or(argc, argv, 1, 2, 1, MAX_THREADS);
	long ops = arg_or(argc, argv, 2, 10000000, 1, 1000000000);
	uint64_t total = 0;

	for (int i = 0; i < n_threads; i++) {
		workers[i].id = (unsigned)i;
		workers[i].ops = ops;
		workers[i].rng = mix(0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)) | 1;
		workers[i].next = &workers[(i + 1) % n_threads];
		pthread_mutex_init(&workers[i].box.mu, NULL);
	}
	for (int i = 0; i < n_threads; i++)
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
			fprintf(stderr, "bench_alloc: pthread_create failed\n");
			return 1;
		}
	for (int i = 0; i < n_threads; i++) {
		pthread_join(workers[i].thread, NULL);
		total += workers[i].sum;
	}
	/* Blocks handed off after their receiver had finished. */
	for (int i = 0; i < n_threads; i++)
		total += drain(&workers[i].box);
	printf("bench_alloc: %d threads x %ld ops: checksum %016llx\n", n_threads, ops,
	       (unsigned long long)total);
	return 0;
}

/*
 * The sample ring: a bounded multi-producer single-consumer queue of fixed-size
 * slots, after Dmitry Vyukov's bounded queue. Each cell carries a sequence
 * number; a producer claims a cell by advancing `head` with a CAS and publishes
 * it by storing seq = pos + 1. The exporter thread is the only consumer.
 *
 * Producers are signal handlers and wrappers: they never block, never allocate,
 * and drop (counting) when the ring is full. A producer interrupted between
 * claim and publish by another producer on the same thread (a signal arriving
 * inside a wrapper) is fine: the consumer waits at the unpublished cell and
 * moves on once it is published.
 *
 * The memory is one mmap made at load, so RSS grows only with slots touched.
 * A cell stores its sequence number minus its own index, so the zero pages of
 * a fresh mapping already are a valid empty ring: nothing is written at load
 * (a short-lived program never touches most of it).
 */
#include "preload.h"

#include <string.h>
#include <sys/mman.h>

struct cell {
	_Atomic uint64_t seq;       /* sequence number - cell index */
	uint64_t pad;
	struct lp_sample sample;    /* followed by max_depth pcs */
};

static struct {
	unsigned char *mem;
	size_t cell_size;
	uint64_t mask;
	_Atomic uint64_t head;      /* next position to claim */
	uint64_t tail;              /* consumer only */
	_Atomic uint64_t n_dropped[LP_SAMPLE_KINDS];
} ring;

static struct cell *cell_at(uint64_t pos)
{
	return (struct cell *)(ring.mem + (pos & ring.mask) * ring.cell_size);
}

static uint64_t load_seq(uint64_t pos, memory_order mo)
{
	return atomic_load_explicit(&cell_at(pos)->seq, mo) + (pos & ring.mask);
}

static void store_seq(uint64_t pos, uint64_t seq, memory_order mo)
{
	atomic_store_explicit(&cell_at(pos)->seq, seq - (pos & ring.mask), mo);
}

void lp_ring_reset(void)
{
	/* Zero pages again (the mapping is private and anonymous): empty ring. */
	madvise(ring.mem, ring.cell_size * (ring.mask + 1), MADV_DONTNEED);
	atomic_store(&ring.head, 0);
	ring.tail = 0;
	for (int k = 0; k < LP_SAMPLE_KINDS; k++)
		atomic_store(&ring.n_dropped[k], 0);
}

int lp_ring_init(unsigned n_slots, unsigned max_depth)
{
	ring.cell_size = (sizeof(struct cell) + max_depth * sizeof(uint64_t) + 63) & ~(size_t)63;
	size_t bytes = ring.cell_size * n_slots;
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -1;
	ring.mem = mem;
	ring.mask = n_slots - 1;
	return 0;
}

struct lp_sample *lp_ring_reserve(enum lp_sample_kind kind)
{
	if (!ring.mem)
		return NULL;
	uint64_t pos = atomic_load_explicit(&ring.head, memory_order_relaxed);
	for (;;) {
		uint64_t seq = load_seq(pos, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&ring.head, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				return &cell_at(pos)->sample;   /* pos: the claimed position */
		} else if (dif < 0) {
			atomic_fetch_add_explicit(&ring.n_dropped[kind], 1, memory_order_relaxed);
			return NULL;
		} else {
			pos = atomic_load_explicit(&ring.head, memory_order_relaxed);
		}
	}
}

void lp_ring_commit(struct lp_sample *s)
{
	struct cell *c = (struct cell *)((unsigned char *)s - offsetof(struct cell, sample));
	uint64_t stored = atomic_load_explicit(&c->seq, memory_order_relaxed);
	/* The cell's seq still equals the claimed position: publish position + 1. */
	atomic_store_explicit(&c->seq, stored + 1, memory_order_release);
}

struct lp_sample *lp_ring_peek(void)
{
	if (!ring.mem)
		return NULL;
	uint64_t seq = load_seq(ring.tail, memory_order_acquire);
	return seq == ring.tail + 1 ? &cell_at(ring.tail)->sample : NULL;
}

void lp_ring_pop(void)
{
	store_seq(ring.tail, ring.tail + ring.mask + 1, memory_order_release);
	ring.tail++;
}

unsigned lp_ring_fill_percent(void)
{
	uint64_t used = atomic_load(&ring.head) - ring.tail;
	return (unsigned)(used * 100 / (ring.mask + 1));
}

uint64_t lp_ring_claimed(void)
{
	return atomic_load_explicit(&ring.head, memory_order_relaxed);
}

uint64_t lp_ring_take_dropped(enum lp_sample_kind kind)
{
	return atomic_exchange(&ring.n_dropped[kind], 0);
}

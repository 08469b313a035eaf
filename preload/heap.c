/*
 * Heap sampling, the recording side: the Poisson countdown that picks which
 * allocations are sampled, and the table of sampled blocks still live, which
 * free() consults. wrappers/malloc.c calls in here; the exporter (which owns
 * stacks, aggregation and the heap profile) reads the table through
 * lp_heap_is_live. docs/ARCHITECTURE.md has the sampling maths.
 *
 * free() of a block that was never sampled must cost next to nothing: a
 * counting filter (a count per hash bucket of addresses, and a bitmap of the
 * non-zero buckets small enough to stay in cache) says "never sampled" with
 * one load and no lock. Only when the bucket's bit is set is the table
 * probed, under `live_lock`, a leaf spinlock held for a few probes and nothing
 * else; the counts and the bitmap are written under it too. The thread's reentrancy guard is held while it is, so a free() that a
 * signal handler makes on this thread cannot spin on it.
 */
#include "preload.h"
#include "../unwinder/unwinder.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int lp_heap_on;
uint64_t lp_heap_filter[LP_HEAP_FILTER_SLOTS / 64];
/* How many live blocks each filter slot holds; its bit is set while non-zero.
 * Written under live_lock only. Zero pages until used. */
static uint8_t filter_count[LP_HEAP_FILTER_SLOTS];

struct live {
	uintptr_t addr;             /* 0 = empty */
	uint64_t seq;
};

static struct {
	struct live *slots;
	size_t mask, n, max;
	atomic_flag lock;
	_Atomic uint64_t next_seq;
} live = { .lock = ATOMIC_FLAG_INIT };

static void live_lock(void)
{
	while (atomic_flag_test_and_set_explicit(&live.lock, memory_order_acquire))
		sched_yield();
}

static void live_unlock(void)
{
	atomic_flag_clear_explicit(&live.lock, memory_order_release);
}

static size_t slot_of(uintptr_t addr)
{
	return (size_t)((addr * 0x9E3779B97F4A7C15ull) >> 17) & live.mask;
}

static void filter_add(size_t f)
{
	if (filter_count[f]++ == 0)
		lp_heap_filter[f / 64] |= (uint64_t)1 << (f % 64);
}

static void filter_remove(size_t f)
{
	if (--filter_count[f] == 0)
		lp_heap_filter[f / 64] &= ~((uint64_t)1 << (f % 64));
}

int lp_heap_init(void)
{
	if (lp.cfg.opt_heap_rate <= 0)
		return 0;
	size_t n_slots = 1;
	while (n_slots < (size_t)lp.cfg.opt_heap_max_live * 2)
		n_slots <<= 1;
	void *mem = mmap(NULL, n_slots * sizeof(struct live), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -ENOMEM;
	live.slots = mem;
	live.mask = n_slots - 1;
	live.max = (size_t)lp.cfg.opt_heap_max_live;
	lp_heap_on = 1;
	lp_self.heap_countdown = 0;     /* parked by allocations made before this */
	return 0;
}

static uint64_t next_random(void)
{
	uint64_t x = lp_self.heap_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return lp_self.heap_rng = x;
}

/* Bytes to the next sample: exponential with mean LIBPROF_HEAP_RATE. */
static int64_t draw_countdown(void)
{
	double u = ((double)(next_random() >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
	double d = -log(u) * (double)lp.cfg.opt_heap_rate;
	return d < 1 ? 1 : d > 4e18 ? (int64_t)4e18 : (int64_t)d;
}

/* Where a thread's countdown is parked while heap sampling is off: for good
 * once libprof is set up; until then, it asks again after PARK_UNSET bytes. */
#define PARK_OFF INT64_MAX
#define PARK_UNSET 65536

int lp_heap_countdown_slow(size_t size)
{
	if (!lp_heap_on) {
		lp_self.heap_countdown =
			atomic_load_explicit(&lp.initialized, memory_order_relaxed) ? PARK_OFF
										     : PARK_UNSET;
		return 0;
	}
	if (!lp_self.heap_rng) {
		/* First allocation of this thread: seed, draw, and see whether this
		 * allocation already reaches the first sample point. */
		lp_self.heap_rng = (uint64_t)syscall(SYS_gettid) * 0x9E3779B97F4A7C15ull ^
				   lp_now_ns(CLOCK_MONOTONIC);
		if (!lp_self.heap_rng)
			lp_self.heap_rng = 1;
		lp_self.heap_countdown = draw_countdown();
		if (lp_heap_skip(size))
			return 0;
	}
	lp_self.heap_countdown = draw_countdown();
	return 1;
}

/* Inserts addr; returns its seq, or 0 when the table or its filter is full. */
static uint64_t live_insert(uintptr_t addr)
{
	size_t f = lp_heap_filter_slot((void *)addr);
	uint64_t seq = 0;
	live_lock();
	if (live.n < live.max && filter_count[f] < 255) {
		size_t i = slot_of(addr);
		while (live.slots[i].addr && live.slots[i].addr != addr)
			i = (i + 1) & live.mask;
		if (!live.slots[i].addr) {
			live.n++;
			filter_add(f);
		}
		seq = atomic_fetch_add(&live.next_seq, 1) + 1;
		live.slots[i].addr = addr;
		live.slots[i].seq = seq;
	}
	live_unlock();
	return seq;
}

/* Removes slot i, shifting back the entries after it (linear probing). */
static void live_remove_at(size_t i)
{
	size_t j = i;
	filter_remove(lp_heap_filter_slot((void *)live.slots[i].addr));
	live.slots[i].addr = 0;
	live.n--;
	for (;;) {
		j = (j + 1) & live.mask;
		if (!live.slots[j].addr)
			return;
		size_t home = slot_of(live.slots[j].addr);
		/* Entry j may move to i if i lies cyclically in [home, j). */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			live.slots[i] = live.slots[j];
			live.slots[j].addr = 0;
			i = j;
		}
	}
}

void lp_heap_forget_slow(void *p)
{
	if (!lp_heap_on || lp_self.guard)
		return;             /* nested in our own critical section: leave it */
	lp_guard_enter();
	live_lock();
	size_t i = slot_of((uintptr_t)p);
	while (live.slots[i].addr && live.slots[i].addr != (uintptr_t)p)
		i = (i + 1) & live.mask;
	if (live.slots[i].addr)
		live_remove_at(i);
	live_unlock();
	lp_guard_exit();
}

int lp_heap_is_live(uint64_t addr, uint64_t seq)
{
	int found = 0;
	live_lock();
	size_t i = slot_of((uintptr_t)addr);
	while (live.slots[i].addr && live.slots[i].addr != (uintptr_t)addr)
		i = (i + 1) & live.mask;
	found = live.slots[i].addr && live.slots[i].seq == seq;
	live_unlock();
	return found;
}

void *lp_heap_record(void *p, size_t size)
{
	if (!p || lp_self.guard || !atomic_load_explicit(&lp.initialized, memory_order_relaxed) ||
	    atomic_load_explicit(&lp.stopping, memory_order_relaxed))
		return p;
	int saved = errno;
	lp_guard_enter();
	uint64_t seq = live_insert((uintptr_t)p);
	if (!seq) {
		atomic_fetch_add(&lp.n_dropped[LP_DROP_HEAP_LIVE_FULL], 1);
		goto out;
	}
	struct lp_sample *s = lp_ring_reserve(LP_SAMPLE_ALLOC);
	if (!s)
		goto out;           /* counted by the ring; the block stays in the table */
	int truncated;
	s->time_ns = lp_now_ns(CLOCK_MONOTONIC);
	s->kind = LP_SAMPLE_ALLOC;
	s->weight = 1;
	lp_trace_current(&s->labels);
	s->addr = (uintptr_t)p;
	s->size = size;
	s->seq = seq;
	s->depth = (uint16_t)lp_unwind_capture_here(lp_self.stack_lo, lp_self.stack_hi, s->pcs,
						    lp.cfg.opt_max_depth, &truncated);
	s->truncated = (uint16_t)truncated;
	lp_ring_commit(s);
out:
	lp_guard_exit();
	errno = saved;
	return p;
}

void lp_heap_after_fork(void)
{
	if (!lp_heap_on)
		return;
	atomic_flag_clear(&live.lock);
	if (live.n) {               /* untouched pages stay untouched */
		memset(live.slots, 0, (live.mask + 1) * sizeof(struct live));
		memset(lp_heap_filter, 0, sizeof(lp_heap_filter));
		memset(filter_count, 0, sizeof(filter_count));
	}
	live.n = 0;
	lp_self.heap_rng = 0;
}

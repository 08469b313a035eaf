/*
 * Lock contention, the recording side: which contention events are sampled
 * (one in LIBPROF_MUTEX_RATE, at random, so that values scaled by the rate are
 * unbiased) and handing a sampled wait to the exporter through the ring.
 * wrappers/mutex.c detects the events and measures the waits.
 */
#include "preload.h"

#include <sys/syscall.h>
#include <unistd.h>

int lp_mutex_on;

int lp_mutex_should_sample(void)
{
	uint64_t x = lp_self.mutex_rng;
	if (!x) {
		x = (uint64_t)syscall(SYS_gettid) * 0x9E3779B97F4A7C15ull ^ lp_now_ns(CLOCK_MONOTONIC);
		x |= 1;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	lp_self.mutex_rng = x;
	return x % (uint64_t)lp.cfg.opt_mutex_rate == 0;
}

void lp_mutex_record(const uint64_t *pcs, int depth, int truncated, uint64_t waited_ns)
{
	if (lp_self.guard || !atomic_load_explicit(&lp.initialized, memory_order_relaxed) ||
	    atomic_load_explicit(&lp.stopping, memory_order_relaxed))
		return;
	lp_guard_enter();
	struct lp_sample *s = lp_ring_reserve(LP_SAMPLE_MUTEX);
	if (s) {
		s->time_ns = lp_now_ns(CLOCK_MONOTONIC);
		s->kind = LP_SAMPLE_MUTEX;
		s->weight = lp.cfg.opt_mutex_rate;
		lp_trace_current(&s->labels);
		s->size = waited_ns;
		s->depth = (uint16_t)depth;
		s->truncated = (uint16_t)truncated;
		for (int i = 0; i < depth; i++)
			s->pcs[i] = pcs[i];
		lp_ring_commit(s);
	}
	lp_guard_exit();
}

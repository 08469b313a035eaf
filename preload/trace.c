/*
 * The trace context of each thread: the W3C trace context of the request the
 * thread most recently read from a connection (wrappers/socket.c finds it),
 * kept in initial-exec TLS and read without locks by the signal handler and
 * the heap and mutex wrappers (lp_trace_current). A context ends when the
 * thread reads a request without one, or when its connection is closed: each
 * descriptor has a generation, bumped at close, that a context must match.
 */
#include "preload.h"

_Atomic uint32_t lp_fd_gen[LP_FD_TRACKED];

void lp_trace_set(int fd, const struct lp_labels *ctx)
{
	if (!ctx || fd < 0 || fd >= LP_FD_TRACKED) {
		lp_self.ctx_fd = -1;
		return;
	}
	lp_self.ctx_fd = -1;        /* the handler never sees a half-written context */
	atomic_signal_fence(memory_order_seq_cst);
	lp_self.labels = *ctx;
	lp_self.ctx_gen = atomic_load_explicit(&lp_fd_gen[fd], memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	lp_self.ctx_fd = fd;
}

void lp_trace_fd_closed(int fd)
{
	if (fd < 0 || fd >= LP_FD_TRACKED)
		return;
	atomic_fetch_add_explicit(&lp_fd_gen[fd], 1, memory_order_relaxed);
	if (lp_self.ctx_fd == fd)
		lp_self.ctx_fd = -1;
}

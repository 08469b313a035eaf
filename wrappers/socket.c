/*
 * Socket reads: the bytes a program reads from its stream sockets are fed to a
 * per-connection HTTP/1.x request-head scanner (traceparent.c); when a request
 * head ends, the reading thread's trace context becomes that request's (or
 * none). Everything else passes through untouched.
 *
 * Cost: whether a descriptor is a stream socket is cached (one byte per
 * descriptor, refreshed on close, dup2/dup3, accept, socket), so a read from a
 * file or pipe pays one load. A connection's scanner state (about 380 bytes)
 * comes from a fixed pool of LP_TRACE_CONNS, taken at its first read and given
 * back at close; connections beyond it are not scanned. A connection that is
 * not HTTP/1.x (HTTP/2, TLS, anything else) is marked and never scanned again.
 * Two threads reading one connection at once: one scans, the other skips and
 * marks the connection, so the next scan resynchronises at a request line.
 */
#include "wrappers.h"
#include "internal.h"
#include "traceparent.h"
#include "../preload/preload.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define LP_TRACE_CONNS 4096

/* glibc's fortified entry points (_FORTIFY_SOURCE builds call these). */
ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *from, socklen_t *fromlen);

enum fd_kind { FD_UNKNOWN, FD_OTHER, FD_STREAM, FD_IGNORED };

struct conn {
	struct lp_http_scan scan;
	atomic_flag busy;
	atomic_int missed;          /* bytes went by unscanned: resynchronise first */
	int next_free;              /* pool free list, -1 = end */
};

static _Atomic uint8_t fd_kind[LP_FD_TRACKED];
static _Atomic int fd_conn[LP_FD_TRACKED];     /* pool index + 1; 0 = none */

static struct {
	struct conn *v;
	int free_head;              /* freed states, -1 = none */
	int n_used;                 /* states ever handed out (the rest are untouched) */
	atomic_flag lock;           /* guards both: a leaf lock, a few instructions */
	int ready;
} pool = { .lock = ATOMIC_FLAG_INIT };

static int trace_on;

static struct {
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*read_chk)(int, void *, size_t, size_t);
	ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	int (*close)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*socket)(int, int, int);
} real;

static void pool_lock(void)
{
	while (atomic_flag_test_and_set_explicit(&pool.lock, memory_order_acquire))
		;
}

static void pool_unlock(void)
{
	atomic_flag_clear_explicit(&pool.lock, memory_order_release);
}

static void setup_pool(void)
{
	void *mem = mmap(NULL, LP_TRACE_CONNS * sizeof(struct conn), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		lp_log(LP_LOG_WARN, "cannot set up trace correlation (out of memory); it is off");
		return;
	}
	pool.v = mem;
	pool.free_head = -1;        /* no page is touched until a connection is read */
	pool.ready = 1;
	trace_on = 1;
}

static struct conn *conn_of(int fd)
{
	int idx = atomic_load_explicit(&fd_conn[fd], memory_order_acquire);
	if (idx)
		return &pool.v[idx - 1];
	pool_lock();
	int i = pool.free_head;
	if (i >= 0)
		pool.free_head = pool.v[i].next_free;
	else if (pool.n_used < LP_TRACE_CONNS)
		i = pool.n_used++;
	pool_unlock();
	if (i < 0)
		return NULL;        /* more live connections than the pool */
	lp_http_scan_init(&pool.v[i].scan);
	atomic_flag_clear(&pool.v[i].busy);
	atomic_store(&pool.v[i].missed, 0);
	int expected = 0;
	if (!atomic_compare_exchange_strong(&fd_conn[fd], &expected, i + 1)) {
		pool_lock();        /* another thread attached one first */
		pool.v[i].next_free = pool.free_head;
		pool.free_head = i;
		pool_unlock();
		return &pool.v[expected - 1];
	}
	return &pool.v[i];
}

/* The descriptor is gone or replaced: forget all about it. */
static void forget(int fd)
{
	if (fd < 0 || fd >= LP_FD_TRACKED || !trace_on)
		return;
	atomic_store_explicit(&fd_kind[fd], FD_UNKNOWN, memory_order_relaxed);
	int idx = atomic_exchange(&fd_conn[fd], 0);
	if (idx) {
		pool_lock();
		pool.v[idx - 1].next_free = pool.free_head;
		pool.free_head = idx - 1;
		pool_unlock();
	}
	lp_trace_fd_closed(fd);
}

static enum fd_kind classify(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	enum fd_kind k = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
				 type == SOCK_STREAM ? FD_STREAM : FD_OTHER;
	atomic_store_explicit(&fd_kind[fd], k, memory_order_relaxed);
	return k;
}

/* Feeds bytes read from fd; the caller has checked that fd is worth it. */
static void feed(int fd, const void *data, size_t n, int last)
{
	struct conn *c = conn_of(fd);
	if (!c)
		return;
	if (atomic_flag_test_and_set_explicit(&c->busy, memory_order_acquire)) {
		atomic_store(&c->missed, 1);    /* another thread is scanning this one */
		return;
	}
	if (atomic_exchange(&c->missed, 0))
		lp_http_scan_resync(&c->scan);
	struct lp_labels ctx;
	int res = lp_http_scan_feed(&c->scan, data, n, &ctx);
	if (lp_http_scan_ignored(&c->scan))
		atomic_store_explicit(&fd_kind[fd], FD_IGNORED, memory_order_relaxed);
	atomic_flag_clear_explicit(&c->busy, memory_order_release);
	if (last && res == LP_HTTP_CONTEXT)
		lp_trace_set(fd, &ctx);
	else if (last && res == LP_HTTP_NO_CONTEXT)
		lp_trace_set(fd, NULL);
}

/* Is fd a stream socket still worth scanning? One load for everything else. */
static inline int worth_it(int fd, ssize_t n)
{
	if (n <= 0 || !trace_on || (unsigned)fd >= LP_FD_TRACKED)
		return 0;
	if (lp_self.guard) {        /* libprof's own read: if it was a scanned one, say so */
		int idx = atomic_load_explicit(&fd_conn[fd], memory_order_relaxed);
		if (idx)
			atomic_store(&pool.v[idx - 1].missed, 1);
		return 0;
	}
	uint8_t k = atomic_load_explicit(&fd_kind[fd], memory_order_relaxed);
	if (k == FD_UNKNOWN) {
		int saved = errno;
		k = (uint8_t)classify(fd);
		errno = saved;
	}
	return k == FD_STREAM;
}

static void feed_iov(int fd, const struct iovec *iov, size_t iovcnt, size_t n)
{
	for (size_t i = 0; i < iovcnt && n; i++) {
		size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
		feed(fd, iov[i].iov_base, take, 1);
		n -= take;
	}
}

#define RESOLVED(fn) do { if (__builtin_expect(!real.fn, 0)) lp_socket_wrappers_init(); } while (0)

LP_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	RESOLVED(read);
	ssize_t n = real.read(fd, buf, count);
	if (worth_it(fd, n))
		feed(fd, buf, (size_t)n, 1);
	return n;
}

LP_EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	RESOLVED(read_chk);
	ssize_t n = real.read_chk(fd, buf, count, buflen);
	if (worth_it(fd, n))
		feed(fd, buf, (size_t)n, 1);
	return n;
}

LP_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	RESOLVED(recv);
	ssize_t n = real.recv(fd, buf, len, flags);
	if (!(flags & MSG_PEEK) && worth_it(fd, n))
		feed(fd, buf, (size_t)n, 1);
	return n;
}

LP_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	RESOLVED(recv_chk);
	ssize_t n = real.recv_chk(fd, buf, len, buflen, flags);
	if (!(flags & MSG_PEEK) && worth_it(fd, n))
		feed(fd, buf, (size_t)n, 1);
	return n;
}

LP_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
			   socklen_t *fromlen)
{
	RESOLVED(recvfrom);
	ssize_t n = real.recvfrom(fd, buf, len, flags, from, fromlen);
	if (!(flags & MSG_PEEK) && worth_it(fd, n))
		feed(fd, buf, (size_t)n, 1);
	return n;
}

LP_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
				 struct sockaddr *from, socklen_t *fromlen)
{
	RESOLVED(recvfrom_chk);
	ssize_t n = real.recvfrom_chk(fd, buf, len, buflen, flags, from, fromlen);
	if (!(flags & MSG_PEEK) && worth_it(fd, n))
		feed(fd, buf, (size_t)n, 1);
	return n;
}

LP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	RESOLVED(recvmsg);
	ssize_t n = real.recvmsg(fd, msg, flags);
	if (!(flags & MSG_PEEK) && worth_it(fd, n))
		feed_iov(fd, msg->msg_iov, msg->msg_iovlen, (size_t)n);
	return n;
}

LP_EXPORT int recvmmsg(int fd, struct mmsghdr *msgs, unsigned vlen, int flags,
		       struct timespec *timeout)
{
	RESOLVED(recvmmsg);
	int got = real.recvmmsg(fd, msgs, vlen, flags, timeout);
	if (!(flags & MSG_PEEK) && worth_it(fd, got))
		for (int i = 0; i < got; i++)
			feed_iov(fd, msgs[i].msg_hdr.msg_iov, msgs[i].msg_hdr.msg_iovlen,
				 msgs[i].msg_len);
	return got;
}

LP_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	RESOLVED(readv);
	ssize_t n = real.readv(fd, iov, iovcnt);
	if (worth_it(fd, n))
		feed_iov(fd, iov, (size_t)iovcnt, (size_t)n);
	return n;
}

LP_EXPORT int close(int fd)
{
	RESOLVED(close);
	lp_fd_quiet();
	if (__builtin_expect(lp_fd_owned(fd), 0)) {
		if (!lp_self.fd_keeper)
			return 0;   /* the program sweeps descriptors: ours stay (preload/fds.c) */
		lp_fd_release(fd);
	}
	forget(fd);
	return real.close(fd);
}

/* dup2/dup3 onto one of libprof's descriptors would hand the program a socket
 * another thread is serving on: refused with EBUSY (which Linux's dup2 may
 * return anyway), once with a warning. */
static int refuse_own(int new_fd)
{
	static atomic_int warned;
	if (!atomic_exchange(&warned, 1))
		lp_log(LP_LOG_WARN, "the program asked for descriptor %d, which libprof's pprof "
		       "endpoint holds; dup2 fails with EBUSY", new_fd);
	errno = EBUSY;
	return -1;
}

LP_EXPORT int dup2(int old, int new_fd)
{
	RESOLVED(dup2);
	lp_fd_quiet();
	if (__builtin_expect(lp_fd_owned(new_fd), 0) && !lp_self.fd_keeper)
		return refuse_own(new_fd);
	int rc = real.dup2(old, new_fd);
	if (rc >= 0 && old != new_fd)
		forget(new_fd);
	return rc;
}

LP_EXPORT int dup3(int old, int new_fd, int flags)
{
	RESOLVED(dup3);
	lp_fd_quiet();
	if (__builtin_expect(lp_fd_owned(new_fd), 0) && !lp_self.fd_keeper)
		return refuse_own(new_fd);
	int rc = real.dup3(old, new_fd, flags);
	if (rc >= 0)
		forget(new_fd);
	return rc;
}

LP_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	RESOLVED(accept);
	int keeper = lp_self.fd_keeper;
	if (keeper)
		lp_fd_create_begin();  /* the pull endpoint's: adopted before a sweep sees it */
	int rc = real.accept(fd, addr, len);
	if (keeper) {
		if (rc >= 0)
			rc = lp_fd_adopt(rc);
		lp_fd_create_end();
	}
	if (rc >= 0)
		forget(rc);         /* a descriptor closed behind our back is new now */
	return rc;
}

LP_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	RESOLVED(accept4);
	int keeper = lp_self.fd_keeper;
	if (keeper)
		lp_fd_create_begin();  /* the pull endpoint's: adopted before a sweep sees it */
	int rc = real.accept4(fd, addr, len, flags);
	if (keeper) {
		if (rc >= 0)
			rc = lp_fd_adopt(rc);
		lp_fd_create_end();
	}
	if (rc >= 0)
		forget(rc);
	return rc;
}

LP_EXPORT int socket(int domain, int type, int protocol)
{
	RESOLVED(socket);
	int keeper = lp_self.fd_keeper;
	if (keeper)
		lp_fd_create_begin();  /* the pull endpoint's: adopted before a sweep sees it */
	int rc = real.socket(domain, type, protocol);
	if (keeper) {
		if (rc >= 0)
			rc = lp_fd_adopt(rc);
		lp_fd_create_end();
	}
	if (rc >= 0)
		forget(rc);
	return rc;
}

void lp_socket_wrappers_init(void)
{
	real.recv = (ssize_t (*)(int, void *, size_t, int))lp_resolve("recv");
	real.recvfrom = (ssize_t (*)(int, void *, size_t, int, struct sockaddr *, socklen_t *))
		lp_resolve("recvfrom");
	real.recvmsg = (ssize_t (*)(int, struct msghdr *, int))lp_resolve("recvmsg");
	real.recvmmsg = (int (*)(int, struct mmsghdr *, unsigned, int, struct timespec *))
		lp_resolve("recvmmsg");
	real.readv = (ssize_t (*)(int, const struct iovec *, int))lp_resolve("readv");
	real.read_chk = (ssize_t (*)(int, void *, size_t, size_t))lp_resolve("__read_chk");
	real.recv_chk = (ssize_t (*)(int, void *, size_t, size_t, int))lp_resolve("__recv_chk");
	real.recvfrom_chk = (ssize_t (*)(int, void *, size_t, size_t, int, struct sockaddr *,
					 socklen_t *))lp_resolve("__recvfrom_chk");
	real.close = (int (*)(int))lp_resolve("close");
	real.dup2 = (int (*)(int, int))lp_resolve("dup2");
	real.dup3 = (int (*)(int, int, int))lp_resolve("dup3");
	real.accept = (int (*)(int, struct sockaddr *, socklen_t *))lp_resolve("accept");
	real.accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))lp_resolve("accept4");
	real.socket = (int (*)(int, int, int))lp_resolve("socket");
	__atomic_store_n(&real.read, (ssize_t (*)(int, void *, size_t))lp_resolve("read"),
			 __ATOMIC_RELEASE);
}

void lp_socket_trace_start(void)
{
	if (lp.cfg.opt_trace && !pool.ready)
		setup_pool();
}

void lp_socket_after_fork(void)
{
	if (!pool.ready)
		return;
	atomic_flag_clear(&pool.lock);
	for (int i = 0; i < pool.n_used; i++)      /* a reader of the parent's may have held one */
		atomic_flag_clear(&pool.v[i].busy);
}

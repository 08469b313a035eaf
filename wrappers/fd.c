/*
 * Descriptor sweeps: close_range and closefrom close everything in a range,
 * which would include libprof's own descriptors (the pull endpoint's sockets,
 * preload/fds.c). The range is closed around them, so the program sees its
 * own descriptors closed, as it asked, and libprof's endpoint keeps serving.
 * (close, dup2 and dup3 check the same bitmap in socket.c.) Descriptors the
 * endpoint's thread creates (eventfd, epoll_create1, socketpair here; socket, accept in socket.c), and
 * so are the exporter thread's (libcurl's connections and wake-up pair). are
 * adopted as libprof's.
 */
#include "internal.h"
#include "../preload/preload.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*eventfd)(unsigned, int);
	int (*epoll_create1)(int);
	int (*socketpair)(int, int, int, int[2]);
} real;

/* close_range over [first, last] minus libprof's descriptors. */
static int close_around(unsigned first, unsigned last, int flags)
{
	unsigned long from = first;     /* one past the last owned descriptor seen */
	int err = 0;
	for (int own = lp_fd_next_owned((int)(first < LP_FD_TRACKED ? first : LP_FD_TRACKED));
	     own >= 0 && (unsigned)own <= last; own = lp_fd_next_owned(own + 1)) {
		if ((unsigned long)own > from &&
		    real.close_range((unsigned)from, (unsigned)own - 1, flags) < 0 && !err)
			err = errno;
		from = (unsigned long)own + 1;
	}
	if (from <= last && real.close_range((unsigned)from, last, flags) < 0 && !err)
		err = errno;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

LP_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (__builtin_expect(!real.close_range, 0))
		lp_fd_wrappers_init();
	if (!real.close_range) {
		errno = ENOSYS;
		return -1;
	}
	lp_fd_quiet();
	/* CLOSE_RANGE_CLOEXEC only marks them, which ours already are. */
	if (lp_self.fd_keeper || (flags & CLOSE_RANGE_CLOEXEC) || first > last ||
	    lp_fd_next_owned((int)(first < LP_FD_TRACKED ? first : LP_FD_TRACKED)) < 0)
		return real.close_range(first, last, flags);
	return close_around(first, last, flags);
}

LP_EXPORT void closefrom(int lowfd)
{
	if (__builtin_expect(!real.closefrom, 0))
		lp_fd_wrappers_init();
	int saved = errno;
	lp_fd_quiet();
	if (lowfd < 0 || lp_self.fd_keeper || lp_fd_next_owned(lowfd) < 0 || !real.close_range) {
		if (real.closefrom)
			real.closefrom(lowfd);
		return;
	}
	close_around((unsigned)lowfd, ~0u, 0);
	errno = saved;          /* closefrom returns nothing and leaves errno alone */
}

/* The pull endpoint's HTTP server makes an eventfd to wake its poll: libprof's. */
LP_EXPORT int eventfd(unsigned count, int flags)
{
	if (__builtin_expect(!real.eventfd, 0))
		lp_fd_wrappers_init();
	if (__builtin_expect(!lp_self.fd_keeper, 1))
		return real.eventfd(count, flags);
	lp_fd_create_begin();
	int fd = real.eventfd(count, flags);
	if (fd >= 0)
		fd = lp_fd_adopt(fd);
	lp_fd_create_end();
	return fd;
}

/* ... and its epoll set. */
LP_EXPORT int epoll_create1(int flags)
{
	if (__builtin_expect(!real.epoll_create1, 0))
		lp_fd_wrappers_init();
	if (__builtin_expect(!lp_self.fd_keeper, 1))
		return real.epoll_create1(flags);
	lp_fd_create_begin();
	int fd = real.epoll_create1(flags);
	if (fd >= 0)
		fd = lp_fd_adopt(fd);
	lp_fd_create_end();
	return fd;
}

/* ... and libcurl's wake-up pair, made on the exporter thread. */
LP_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	if (__builtin_expect(!real.socketpair, 0))
		lp_fd_wrappers_init();
	if (__builtin_expect(!lp_self.fd_keeper, 1))
		return real.socketpair(domain, type, protocol, sv);
	lp_fd_create_begin();
	int rc = real.socketpair(domain, type, protocol, sv);
	if (rc == 0) {
		sv[0] = lp_fd_adopt(sv[0]);
		sv[1] = lp_fd_adopt(sv[1]);
	}
	lp_fd_create_end();
	return rc;
}

void lp_fd_wrappers_init(void)
{
	real.socketpair = (int (*)(int, int, int, int[2]))lp_resolve("socketpair");
	real.epoll_create1 = (int (*)(int))lp_resolve("epoll_create1");
	real.eventfd = (int (*)(unsigned, int))lp_resolve("eventfd");
	real.close_range = (int (*)(unsigned, unsigned, int))lp_resolve("close_range");
	real.closefrom = (void (*)(int))lp_resolve("closefrom");
}

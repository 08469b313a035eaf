/*
 * libprof's own descriptors (preload.h). A bitmap says which descriptor
 * numbers are libprof's; the close, dup2/dup3, close_range and closefrom
 * wrappers consult it so a program that sweeps its descriptors (daemons do,
 * at start) does not pull the pull endpoint's socket from under it, and a
 * program that dup2s onto one is refused instead of silently sharing it.
 */
#include "preload.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

_Atomic uint64_t lp_fd_own_bits[LP_FD_TRACKED / 64];
atomic_int lp_fd_creating;

void lp_fd_wait_created(void)
{
	/* Bounded: a keeper never waits on a program thread, but a program
	 * thread must never hang on libprof either. */
	int saved = errno;
	for (int i = 0; i < 1000 && atomic_load(&lp_fd_creating); i++)
		usleep(100);
	errno = saved;
}

static void mark(int fd, int on)
{
	uint64_t bit = 1ull << ((unsigned)fd % 64);
	if (on)
		atomic_fetch_or(&lp_fd_own_bits[(unsigned)fd / 64], bit);
	else
		atomic_fetch_and(&lp_fd_own_bits[(unsigned)fd / 64], ~bit);
}

/* Where libprof's descriptors go: 64 below min(soft limit, 1024), so they
 * stay under FD_SETSIZE and far from the numbers a program gets first. */
static int floor_fd(void)
{
	struct rlimit rl;
	long top = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)top)
		top = (long)rl.rlim_cur;
	return top - 64 > 3 ? (int)(top - 64) : 3;
}

int lp_fd_adopt(int fd)
{
	if ((unsigned)fd >= LP_FD_TRACKED)
		return fd;
	int saved = errno;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, floor_fd());
	if (high >= 0 && (unsigned)high < LP_FD_TRACKED) {
		close(fd);          /* not marked yet: really closed */
		fd = high;
	} else {
		if (high >= 0)
			close(high);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	mark(fd, 1);
	errno = saved;
	return fd;
}

void lp_fd_release(int fd)
{
	if ((unsigned)fd < LP_FD_TRACKED)
		mark(fd, 0);
}

int lp_fd_next_owned(int from)
{
	if (from < 0)
		from = 0;
	for (unsigned w = (unsigned)from / 64; w < LP_FD_TRACKED / 64; w++) {
		uint64_t bits = atomic_load_explicit(&lp_fd_own_bits[w], memory_order_relaxed);
		if (w == (unsigned)from / 64)
			bits &= ~0ull << ((unsigned)from % 64);
		if (bits)
			return (int)(w * 64 + (unsigned)__builtin_ctzll(bits));
	}
	return -1;
}

void lp_fd_close_all(void)
{
	for (int fd = lp_fd_next_owned(0); fd >= 0; fd = lp_fd_next_owned(fd + 1)) {
		mark(fd, 0);
		close(fd);
	}
}

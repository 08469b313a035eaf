/*
 * A small HTTP/1.1 server for the trace-correlation tests, in two shapes:
 *   trace_server pool PORT_FILE    an acceptor and 3 worker threads; each worker
 *                                  serves one connection at a time (keep-alive)
 *   trace_server epoll PORT_FILE   one thread, non-blocking sockets, epoll
 * It listens on 127.0.0.1 on a free port, written to PORT_FILE. A request for
 * /K/MS (K in 0..3) burns MS ms of CPU in burn_K, allocates in alloc_K and takes
 * a lock contended by the other workers in lock_K, so every kind of sample has
 * a known owner. GET /fast does 20 us of work (for load tests). GET /quit stops
 * the server.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile int quit;
static int listen_fd;
static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void spin(double ms)
{
	double end = cpu_ms() + ms;
	while (cpu_ms() < end)
		for (int i = 0; i < 10000; i++)
			sink = sink * 31 + (unsigned long)i;
}

static void churn(void)
{
	for (int i = 0; i < 2000; i++) {
		char *p = malloc(4096);
		p[0] = (char)i;
		sink += (unsigned long)p[0];
		free(p);
	}
}

static void hold(void)
{
	pthread_mutex_lock(&shared);
	struct timespec ts = { 0, 25000000 };   /* 25 ms: concurrent requests do meet here */
	nanosleep(&ts, NULL);
	pthread_mutex_unlock(&shared);
}

#define WORK(k) \
	static void burn_##k(double ms) { spin(ms); } \
	static void alloc_##k(void) { churn(); } \
	static void lock_##k(void) { hold(); }
WORK(0)
WORK(1)
WORK(2)
WORK(3)

static void handle(int k, double ms)
{
	switch (k) {
	case 0: burn_0(ms); alloc_0(); lock_0(); break;
	case 1: burn_1(ms); alloc_1(); lock_1(); break;
	case 2: burn_2(ms); alloc_2(); lock_2(); break;
	default: burn_3(ms); alloc_3(); lock_3(); break;
	}
}

/* Serves the complete request heads in buf[0..*len); returns -1 to close. */
static int serve(int fd, char *buf, size_t *len)
{
	char *end;
	while ((end = memmem(buf, *len, "\r\n\r\n", 4))) {
		size_t used = (size_t)(end + 4 - buf);
		int k = 0;
		double ms = 0;
		if (strncmp(buf, "GET /quit", 9) == 0) {
			quit = 1;
			shutdown(listen_fd, SHUT_RD);   /* wakes the acceptor */
		} else if (strncmp(buf, "GET /fast", 9) == 0) {
			spin(0.02);
		} else if (sscanf(buf, "GET /%d/%lf", &k, &ms) == 2) {
			handle(k, ms);
		}
		static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
		if (write(fd, reply, sizeof(reply) - 1) < 0)
			return -1;
		memmove(buf, buf + used, *len - used);
		*len -= used;
	}
	return quit ? -1 : 0;
}

static int listener(const char *port_file)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t alen = sizeof(a);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 64) ||
	    getsockname(s, (struct sockaddr *)&a, &alen))
		exit(1);
	FILE *f = fopen(port_file, "w");
	fprintf(f, "%d\n", ntohs(a.sin_port));
	fclose(f);
	return s;
}

/* ---- thread pool -------------------------------------------------------- */

static int queue[64], q_head, q_tail;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&q_lock);
		while (q_head == q_tail && !quit)
			pthread_cond_wait(&q_cond, &q_lock);
		if (q_head == q_tail) {
			pthread_mutex_unlock(&q_lock);
			return NULL;
		}
		int fd = queue[q_head++ % 64];
		pthread_mutex_unlock(&q_lock);
		char buf[8192];
		size_t len = 0;
		for (;;) {
			ssize_t n = read(fd, buf + len, sizeof(buf) - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			if (serve(fd, buf, &len) < 0 || len == sizeof(buf))
				break;
		}
		close(fd);
	}
}

static void run_pool(int s)
{
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	while (!quit) {
		int fd = accept(s, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&q_lock);
		queue[q_tail++ % 64] = fd;
		pthread_cond_signal(&q_cond);
		pthread_mutex_unlock(&q_lock);
	}
	pthread_mutex_lock(&q_lock);
	pthread_cond_broadcast(&q_cond);
	pthread_mutex_unlock(&q_lock);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
}

/* ---- epoll ------------------------------------------------------------------ */

struct conn {
	char buf[8192];
	size_t len;
};

static void run_epoll(int s)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = s };
	struct conn *conns = calloc(1024, sizeof(*conns));
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	while (!quit) {
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, 1000);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == s) {
				int c = accept4(s, NULL, NULL, SOCK_NONBLOCK);
				if (c >= 0 && c < 1024) {
					conns[c].len = 0;
					struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				} else if (c >= 0) {
					close(c);
				}
				continue;
			}
			struct conn *c = &conns[fd];
			ssize_t got = recv(fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
			if (got < 0 && errno == EAGAIN)
				continue;
			if (got > 0)
				c->len += (size_t)got;
			if (got <= 0 || serve(fd, c->buf, &c->len) < 0 || c->len == sizeof(c->buf)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
	free(conns);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int s = listener(argv[2]);
	listen_fd = s;
	if (!strcmp(argv[1], "pool"))
		run_pool(s);
	else
		run_epoll(s);
	printf("trace_server done\n");
	return 0;
}

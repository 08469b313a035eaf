/*
 * The cost of a read() on a socket carrying HTTP requests with traceparent
 * headers, and on a pipe (not a socket: one cached check), for `make bench`:
 *   bench_reads socket N | pipe N
 * A writer thread sends N request heads (about 300 bytes each) through a
 * socketpair or a pipe; the main thread reads them one read() each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fds[2];
static long n;
static char head[512];
static size_t head_len;

static void *writer(void *arg)
{
	(void)arg;
	for (long i = 0; i < n; i++) {
		size_t off = 0;
		while (off < head_len) {
			ssize_t w = write(fds[1], head + off, head_len - off);
			if (w <= 0)
				exit(1);
			off += (size_t)w;
		}
	}
	close(fds[1]);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	n = atol(argv[2]);
	head_len = (size_t)snprintf(head, sizeof(head),
		"GET /api/items?page=2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench/1.0\r\n"
		"Accept: application/json\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"
		"00f067aa0ba902b7-01\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n");
	int rc = !strcmp(argv[1], "socket") ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds);
	if (rc)
		return 1;
	pthread_t t;
	pthread_create(&t, NULL, writer, NULL);
	char buf[4096];
	long bytes = 0, reads = 0;
	ssize_t got;
	while ((got = read(fds[0], buf, head_len)) > 0) {
		bytes += got;
		reads++;
	}
	pthread_join(t, NULL);
	printf("%ld bytes in %ld reads\n", bytes, reads);
	return 0;
}

/*
 * A long-running program for the pull-endpoint tests. Until STOP_FILE exists
 * (at most 60 s), the main thread burns CPU in hot_loop, a thread allocates in
 * churn_alloc (freeing it again) and keeps 8 MiB live from keep_blocks, and
 * two threads contend for one mutex in contend_lock. Modes:
 *   pull_target busy STOP_FILE
 *   pull_target closeall STOP_FILE   first closes every descriptor above 2 the
 *       ways daemons do (each number listed in /proc/self/fd, close_range,
 *       closefrom), then prints "first fd N" for its next open() (3 expected)
 *   pull_target latesweep STOP_FILE  the same sweep after 1.5 s of work, while
 *       libprof's threads are busy (its uploads, if it streams)
 *   pull_target fork STOP_FILE PIDS_FILE   forks 2 workers doing the same work
 *       (their pids written to PIDS_FILE), the parent waits for them
 * Prints "done" at the end.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *stop_file;
static volatile int stop;
static volatile unsigned long sink;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static __attribute__((noinline)) void hot_loop(void)
{
	unsigned long x = sink;
	for (int i = 0; i < 2000000; i++)
		x = x * 6364136223846793005ul + 1442695040888963407ul;
	sink = x;
}

static __attribute__((noinline)) void *churn_alloc(size_t n)
{
	char *p = malloc(n);
	if (p)
		p[0] = 1;
	return p;
}

static __attribute__((noinline)) void keep_blocks(void **kept, int n)
{
	for (int i = 0; i < n; i++)
		kept[i] = churn_alloc(65536);
}

static void *allocator(void *arg)
{
	(void)arg;
	static void *kept[128];
	keep_blocks(kept, 128);     /* 8 MiB live for the whole run */
	while (!stop) {
		for (int i = 0; i < 1000; i++)
			free(churn_alloc(4096 + (size_t)i));
		usleep(1000);
	}
	return NULL;
}

static __attribute__((noinline)) void contend_lock(void)
{
	pthread_mutex_lock(&lock);
	usleep(200);
	pthread_mutex_unlock(&lock);
}

static void *contender(void *arg)
{
	(void)arg;
	while (!stop)
		contend_lock();
	return NULL;
}

static void close_everything(void);
static int late_sweep;

static void work(void)
{
	pthread_t t[3];
	pthread_create(&t[0], NULL, allocator, NULL);
	pthread_create(&t[1], NULL, contender, NULL);
	pthread_create(&t[2], NULL, contender, NULL);
	double start = now_s(), end = start + 60;
	while (now_s() < end && access(stop_file, F_OK) != 0) {
		hot_loop();
		if (late_sweep && now_s() > start + 1.5) {
			late_sweep = 0;
			close_everything();
		}
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
}

static void close_everything(void)
{
	DIR *d = opendir("/proc/self/fd");
	int fds[4096], n = 0;
	for (struct dirent *e; d && (e = readdir(d)) && n < 4096;)
		if (e->d_name[0] != '.')
			fds[n++] = atoi(e->d_name);
	if (d)
		closedir(d);
	for (int i = 0; i < n; i++)
		if (fds[i] > 2)
			close(fds[i]);
	close_range(3, ~0u, 0);
	closefrom(3);
	int fd = open("/dev/null", O_RDONLY);
	printf("first fd %d\n", fd);
	fflush(stdout);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pull_target busy|closeall|fork STOP_FILE [PIDS_FILE]\n");
		return 2;
	}
	stop_file = argv[2];
	if (strcmp(argv[1], "closeall") == 0)
		close_everything();
	late_sweep = strcmp(argv[1], "latesweep") == 0;
	if (strcmp(argv[1], "fork") == 0 && argc > 3) {
		FILE *f = fopen(argv[3], "w");
		pid_t pids[2];
		for (int i = 0; i < 2; i++) {
			pids[i] = fork();
			if (pids[i] == 0) {
				work();
				_exit(0);
			}
			fprintf(f, "%d\n", (int)pids[i]);
		}
		fclose(f);
		for (int i = 0; i < 2; i++)
			waitpid(pids[i], NULL, 0);
	} else {
		work();
	}
	printf("done\n");
	return 0;
}

/*
 * A program with known CPU behaviour for the end-to-end tests. Each mode burns
 * CPU in functions with distinct names, measured with the thread's own CPU
 * clock, so the expected profile shape is known:
 *   burn ratio A B        burn_a for A ms and burn_b for B ms, interleaved
 *   burn threads N MS     N threads, each thread_burn for MS ms
 *   burn late MS          main_burn MS ms, then a new thread late_worker MS ms
 *   burn fork MS          a forked child in child_work, the parent in parent_work
 *   burn forkexec MS      a forked child that execs "burn execd MS"
 *   burn exec MS          before_exec MS ms, then exec "burn execd MS"
 *   burn execd MS         execd_work MS ms
 *   burn forkloop N       N forks (each child burns 2 ms) while two threads burn
 *   burn deep D MS        deep_recurse D levels deep, then MS ms at the bottom
 *   burn short N MS       N threads one after another, each short_work for MS ms
 *   burn churn N          N short threads one after another, then prints how
 *                         many POSIX timers the process still has
 * Prints one line with the mode on success.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static const char *self;

static double thread_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Spins until this thread has used ms more CPU. */
static void spin(double ms)
{
	double end = thread_ms() + ms;
	unsigned long x = sink;
	while (thread_ms() < end)
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005ul + 1442695040888963407ul;
	sink = x;
}

static void burn_a(double ms) { spin(ms); }
static void burn_b(double ms) { spin(ms); }
static void main_burn(double ms) { spin(ms); }
static void child_work(double ms) { spin(ms); }
static void parent_work(double ms) { spin(ms); }
static void before_exec(double ms) { spin(ms); }
static void execd_work(double ms) { spin(ms); }
static void short_work(double ms) { spin(ms); }

static void *short_worker(void *arg)
{
	short_work(*(double *)arg);
	return NULL;
}

static void *thread_burn(void *arg)
{
	spin(*(double *)arg);
	return NULL;
}

static volatile int stop;

static void *busy_worker(void *arg)
{
	(void)arg;
	while (!stop)
		spin(1);
	return NULL;
}

static void fork_loop(int n)
{
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, busy_worker, NULL);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			child_work(2);
			exit(0);
		}
		waitpid(pid, NULL, 0);
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
}

static void deep_recurse(int depth, double ms)
{
	if (depth > 0)
		deep_recurse(depth - 1, ms);
	else
		spin(ms);
	sink++;                     /* not a tail call */
}

static void *short_thread(void *arg)
{
	spin(*(double *)arg);
	return NULL;
}

static int count_timers(void)
{
	char line[256];
	int n = 0;
	FILE *f = fopen("/proc/self/timers", "r");
	while (f && fgets(line, sizeof(line), f))
		n += strncmp(line, "ID:", 3) == 0;
	if (f)
		fclose(f);
	return n;
}

static void *late_worker(void *arg)
{
	spin(*(double *)arg);
	return NULL;
}

static void run_threads(int n, double ms, void *(*fn)(void *))
{
	pthread_t t[64];
	for (int i = 0; i < n && i < 64; i++)
		pthread_create(&t[i], NULL, fn, &ms);
	for (int i = 0; i < n && i < 64; i++)
		pthread_join(t[i], NULL);
}

static void exec_self(const char *ms)
{
	execl(self, self, "execd", ms, (char *)NULL);
	perror("execl");
	exit(3);
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc < 3) {
		fprintf(stderr, "usage: burn MODE ARGS\n");
		return 2;
	}
	const char *mode = argv[1];
	double ms = atof(argv[2]);
	if (!strcmp(mode, "ratio") && argc > 3) {
		/* Slices of pseudo-random length, so that no period of the workload
		 * lines up with the sampling period. */
		double a = atof(argv[2]), b = atof(argv[3]), done = 0;
		unsigned seed = 12345;
		while (done < a + b) {
			seed = seed * 1103515245u + 12345u;
			double slice = 1 + (seed >> 16) % 16;
			burn_a(slice * a / (a + b));
			burn_b(slice * b / (a + b));
			done += slice;
		}
	} else if (!strcmp(mode, "threads") && argc > 3) {
		run_threads(atoi(argv[2]), atof(argv[3]), thread_burn);
	} else if (!strcmp(mode, "late")) {
		main_burn(ms);
		run_threads(1, ms, late_worker);
	} else if (!strcmp(mode, "fork")) {
		pid_t pid = fork();
		if (pid == 0) {
			child_work(ms);
			exit(0);
		}
		parent_work(ms);
		waitpid(pid, NULL, 0);
	} else if (!strcmp(mode, "forkexec")) {
		pid_t pid = fork();
		if (pid == 0)
			exec_self(argv[2]);
		parent_work(ms);
		int status;
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			return 1;
	} else if (!strcmp(mode, "exec")) {
		before_exec(ms);
		exec_self(argv[2]);
	} else if (!strcmp(mode, "forkloop")) {
		fork_loop(atoi(argv[2]));
	} else if (!strcmp(mode, "deep") && argc > 3) {
		deep_recurse(atoi(argv[2]), atof(argv[3]));
	} else if (!strcmp(mode, "short") && argc > 3) {
		for (int i = 0; i < atoi(argv[2]); i++)
			run_threads(1, atof(argv[3]), short_worker);
	} else if (!strcmp(mode, "churn")) {
		for (int i = 0; i < atoi(argv[2]); i++)
			run_threads(1, 0.2, short_thread);
		printf("timers left: %d\n", count_timers());
	} else if (!strcmp(mode, "execd")) {
		execd_work(ms);
	} else {
		fprintf(stderr, "burn: unknown mode %s\n", mode);
		return 2;
	}
	printf("burn %s done\n", mode);
	return 0;
}

/*
 * A program that uses SIGPROF itself (as gprof-style tools do): it checks that
 * the disposition it sees at start is the default, installs its own handler,
 * arms ITIMER_PROF and burns CPU. Exit 0 and "own_sigprof ok" when its handler
 * ran often enough; 1 otherwise.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t hits;
static volatile unsigned long sink;

static void on_prof(int sig)
{
	(void)sig;
	hits++;
}

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(void)
{
	struct sigaction sa, old;
	sigaction(SIGPROF, NULL, &old);
	int was_default = old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_prof;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGPROF, &sa, NULL) != 0)
		return 1;
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } };
	setitimer(ITIMER_PROF, &it, NULL);
	double end = cpu_ms() + 600;
	while (cpu_ms() < end)
		for (int i = 0; i < 10000; i++)
			sink = sink * 31 + (unsigned long)i;
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_PROF, &off, NULL);
	printf("own_sigprof: %s, default at start: %s\n", hits >= 20 ? "ok" : "too few signals",
	       was_default ? "yes" : "no");
	return hits >= 20 && was_default ? 0 : 1;
}

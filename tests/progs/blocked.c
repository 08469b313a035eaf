/*
 * Worker threads that inherit a mask blocking every signal, and a signal thread
 * that sigwait()s for all of them, as many servers are built. Workers burn
 * CPU in blocked_worker; the signal thread burns a little, then waits; main
 * sends SIGUSR1, which the signal thread must be the one to receive.
 * Prints what the program sees; exit 0 when everything is as it expects.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static void spin(double ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	double end = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 + ms, now;
	do {
		for (int i = 0; i < 20000; i++)
			sink = sink * 31 + (unsigned long)i;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
		now = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
	} while (now < end);
}

static void *blocked_worker(void *arg)
{
	(void)arg;
	spin(400);
	return NULL;
}

static int waited_sig;

static void *signal_thread(void *arg)
{
	sigset_t all;
	(void)arg;
	spin(200);
	sigfillset(&all);
	sigwait(&all, &waited_sig);
	return NULL;
}

int main(void)
{
	sigset_t all, seen;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_sigmask(SIG_BLOCK, NULL, &seen);
	int sees_blocked = sigismember(&seen, SIGPROF) == 1 && sigismember(&seen, SIGUSR1) == 1;
	pthread_t w[2], s;
	pthread_create(&s, NULL, signal_thread, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&w[i], NULL, blocked_worker, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	struct timespec pause = { 0, 300000000 };
	nanosleep(&pause, NULL);
	kill(getpid(), SIGUSR1);
	pthread_join(s, NULL);
	printf("mask seen as blocked: %s; sigwait got signal %d\n", sees_blocked ? "yes" : "no",
	       waited_sig);
	return sees_blocked && waited_sig == SIGUSR1 ? 0 : 1;
}

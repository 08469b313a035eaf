/*
 * dlopen/dlclose in a loop on the main thread while two threads burn CPU (the
 * profiler signal keeps arriving in all of them). Usage: dlopen_loop LIB N.
 * Prints "dlopen_loop ok" after N rounds; a deadlock never returns.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static volatile int stop;
static volatile unsigned long sink;

static void *busy(void *arg)
{
	(void)arg;
	while (!stop)
		for (int i = 0; i < 100000; i++)
			sink = sink * 31 + (unsigned long)i;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int rounds = atoi(argv[2]);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, busy, NULL);
	for (int i = 0; i < rounds; i++) {
		void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		if (!dlsym(h, "plugin_value"))
			return 1;
		dlclose(h);
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("dlopen_loop ok\n");
	return 0;
}

/*
 * The `libprof` command: `libprof run [OPTIONS] -- PROGRAM ARGS...` profiles
 * PROGRAM without spelling LD_PRELOAD (it sets the library's variables,
 * docs/CONFIG.md, and execs PROGRAM), and `libprof collector [FLAGS]` runs
 * libprof-collector (collector/, docs/COLLECTOR.md).
 *
 * Both find their files next to this program, so the command works from the
 * build tree (build/libprof beside build/libprof.so) and once installed
 * (PREFIX/bin/libprof, PREFIX/lib/libprof.so; `make install`).
 * A bad option prints one line on stderr and exits 2; a program that cannot
 * be run exits 127 (126 if it is not executable), as env(1) does.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char *const usage_text =
	"usage: libprof run [OPTIONS] [--] PROGRAM [ARGS...]\n"
	"       libprof collector [COLLECTOR FLAGS...]\n"
	"       libprof --help\n"
	"\n"
	"run: profiles PROGRAM with libprof.so (LD_PRELOAD, added before any already\n"
	"set) and the options as its variables (docs/CONFIG.md), then becomes PROGRAM:\n"
	"  --cpu-hz N          LIBPROF_CPU_HZ: CPU samples per second per thread, 0-1000\n"
	"                      (0: no CPU profile; default 100)\n"
	"  --heap-rate BYTES   LIBPROF_HEAP_RATE: mean bytes between sampled\n"
	"                      allocations, 0-1073741824 (0: no heap profile; default 524288)\n"
	"  --mutex-rate N      LIBPROF_MUTEX_RATE: one lock contention in N sampled,\n"
	"                      0-1000000 (0: no lock profile; default 10)\n"
	"  --endpoint URL      LIBPROF_ENDPOINT: send profiles to this collector\n"
	"                      (http:// or https://, e.g. http://127.0.0.1:4040)\n"
	"  --output DIR        LIBPROF_OUTPUT_DIR: write profile files here (made absolute)\n"
	"  --service NAME      OTEL_SERVICE_NAME: the service's name (default: PROGRAM's)\n"
	"  --interval SECONDS  LIBPROF_INTERVAL: seconds each profile covers (default 10)\n"
	"  --pprof-listen ADDR LIBPROF_PPROF_LISTEN: serve /debug/pprof/ on ADDR, e.g.\n"
	"                      127.0.0.1:6060 (port 0: a free port, printed on stderr)\n"
	"Options take their value as --opt VALUE or --opt=VALUE; other LIBPROF_*\n"
	"variables set in the environment are passed on as they are.\n"
	"\n"
	"collector: runs libprof-collector with FLAGS (libprof collector --help lists\n"
	"them): stores the profiles sent to it and serves flame graphs on\n"
	"http://127.0.0.1:4040/ (docs/COLLECTOR.md).\n";

/* One line on stderr, then exit 2. */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "libprof: %s (see libprof --help)\n", line);
	exit(EXIT_USAGE);
}

/* The directory of this program (no trailing slash), from /proc/self/exe. */
static void self_dir(char *dir, size_t n)
{
	ssize_t len = readlink("/proc/self/exe", dir, n - 1);
	char *slash;

	if (len <= 0) {
		fprintf(stderr, "libprof: cannot find where this program is: %s\n", strerror(errno));
		exit(1);
	}
	dir[len] = 0;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
}

/* The first of dir/rel[i] that exists, as an absolute path in out (PATH_MAX
 * bytes); exits when none does. */
static void find_file(const char *what, const char *const *rel, char *out)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];

	self_dir(dir, sizeof(dir));
	for (size_t i = 0; rel[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, rel[i]);
		if (access(path, F_OK) == 0 && realpath(path, out))
			return;
	}
	fprintf(stderr, "libprof: %s not found: looked for %s/%s", what, dir, rel[0]);
	for (size_t i = 1; rel[i]; i++)
		fprintf(stderr, " and %s/%s", dir, rel[i]);
	fprintf(stderr, "\n");
	exit(1);
}

/* ---- libprof run -------------------------------------------------------------------------- */

struct option_def {
	const char *flag, *env;
	long long min, max;         /* whole numbers in [min, max]; min > max: other checks */
	const char *what;
};

static const struct option_def defs[] = {
	{ "--cpu-hz", "LIBPROF_CPU_HZ", 0, 1000, "a whole number from 0 to 1000" },
	{ "--heap-rate", "LIBPROF_HEAP_RATE", 0, 1073741824,
	  "a whole number of bytes from 0 to 1073741824" },
	{ "--mutex-rate", "LIBPROF_MUTEX_RATE", 0, 1000000, "a whole number from 0 to 1000000" },
	{ "--endpoint", "LIBPROF_ENDPOINT", 1, 0, "a URL starting with http:// or https://" },
	{ "--output", "LIBPROF_OUTPUT_DIR", 1, 0, "a directory" },
	{ "--service", "OTEL_SERVICE_NAME", 1, 0, "a name" },
	{ "--interval", "LIBPROF_INTERVAL", 1, 0, "a number of seconds from 0.1 to 3600" },
	{ "--pprof-listen", "LIBPROF_PPROF_LISTEN", 1, 0, "an address such as 127.0.0.1:6060" },
};
#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

static int whole(const char *v, long long min, long long max)
{
	char *end;
	long long x;

	if (*v < '0' || *v > '9')
		return 0;
	errno = 0;
	x = strtoll(v, &end, 10);
	return !*end && !errno && x >= min && x <= max;
}

/* Checks v for option d; sets the variable (a relative --output made absolute). */
static void set_option(const struct option_def *d, const char *v)
{
	char abs_dir[PATH_MAX + 256];
	char *end;
	int ok;

	if (d->min <= d->max) {
		ok = whole(v, d->min, d->max);
	} else if (strcmp(d->flag, "--endpoint") == 0) {
		ok = (strncmp(v, "http://", 7) == 0 && v[7]) || (strncmp(v, "https://", 8) == 0 && v[8]);
	} else if (strcmp(d->flag, "--interval") == 0) {
		double s = strtod(v, &end);

		ok = *v && !*end && s >= 0.1 && s <= 3600;
	} else {
		ok = *v != 0;
	}
	if (!ok)
		usage_error("%s '%s': expected %s", d->flag, v, d->what);
	if (strcmp(d->flag, "--output") == 0 && v[0] != '/') {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "libprof: --output %s: cannot get the current directory: %s\n", v,
				strerror(errno));
			exit(1);
		}
		snprintf(abs_dir, sizeof(abs_dir), "%s/%s", strcmp(cwd, "/") ? cwd : "", v);
		v = abs_dir;
	}
	if (setenv(d->env, v, 1)) {
		perror("libprof: setenv");
		exit(1);
	}
}

/* LD_PRELOAD = lib, then what was there (lib itself removed: no double load). */
static void set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	size_t n = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *v = malloc(n), *copy, *tok, *save = NULL;

	if (!v || !(copy = strdup(old ? old : ""))) {
		fprintf(stderr, "libprof: out of memory\n");
		exit(1);
	}
	strcpy(v, lib);
	/* ld.so separates the list with spaces or colons */
	for (tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
		if (strcmp(tok, lib) == 0)
			continue;
		strcat(v, ":");
		strcat(v, tok);
	}
	free(copy);
	if (setenv("LD_PRELOAD", v, 1)) {
		perror("libprof: setenv");
		exit(1);
	}
	free(v);
}

static int run(int argc, char **argv)
{
	static const char *const lib_places[] = { "../lib/libprof.so", "libprof.so", NULL };
	char lib[PATH_MAX];
	int a;

	for (a = 0; a < argc; a++) {
		const char *arg = argv[a], *eq, *v;
		size_t i, n;

		if (strcmp(arg, "--") == 0) {
			a++;
			break;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage_text, stdout);
			exit(0);
		}
		if (arg[0] != '-')
			break;
		eq = strchr(arg, '=');
		n = eq ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < N_DEFS; i++) {
			if (strlen(defs[i].flag) == n && strncmp(arg, defs[i].flag, n) == 0)
				break;
		}
		if (i == N_DEFS)
			usage_error("run: unknown option '%s'", arg);
		if (!eq && a + 1 == argc)
			usage_error("%s needs a value: %s", defs[i].flag, defs[i].what);
		v = eq ? eq + 1 : argv[++a];
		set_option(&defs[i], v);
	}
	if (a >= argc)
		usage_error("run: no program given");
	find_file("libprof.so", lib_places, lib);
	set_preload(lib);
	execvp(argv[a], &argv[a]);
	fprintf(stderr, "libprof: cannot run '%s': %s\n", argv[a], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/* ---- libprof collector -------------------------------------------------------------------- */

/* argv[-1] is "collector": it becomes the collector's argv[0]. */
static int collector(char **argv)
{
	static const char *const places[] = { "libprof-collector", NULL };
	static char name[] = "libprof-collector";    /* its messages name it */
	char path[PATH_MAX];

	find_file("libprof-collector", places, path);
	argv[-1] = name;
	execv(path, &argv[-1]);
	fprintf(stderr, "libprof: cannot run %s: %s\n", path, strerror(errno));
	return 126;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return run(argc - 2, argv + 2);
	if (strcmp(argv[1], "collector") == 0)
		return collector(argv + 2);
	usage_error("unknown command '%s': expected run or collector", argv[1]);
}

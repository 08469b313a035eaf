/*
 * The pull endpoint: Go's net/http/pprof paths served from inside the program
 * (LIBPROF_PPROF_LISTEN). libmicrohttpd is loaded with dlopen only then (at
 * load, with the listening socket), and runs in "external" mode on libprof's own thread (its reentrancy guard held,
 * every signal blocked, never sampled), so no thread of the library's own
 * making exists. The thread is a descriptor keeper (preload/fds.c): the
 * listening socket, the connections, the library's epoll set and wake-up
 * eventfd are
 * libprof's, numbered high, close-on-exec, and survive the program's
 * descriptor sweeps.
 *
 * A profile request takes a slot (pull.c) and its connection is suspended;
 * the exporter thread answers it and wakes this thread (an eventfd: the
 * library's own wake-up is not used in external mode), which resumes the
 * connection; the handler, called again, sends the answer. Bad requests get a 4xx with the reason.
 *
 * Forked children: the parent's sockets are closed in the child (it never
 * serves on them); with port 0 the child starts an endpoint of its own on a
 * new port, otherwise it serves none (the port is its parent's).
 */
#include "internal.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SECONDS 3600
#define MAX_CONNECTIONS 32

/* The libmicrohttpd functions used, resolved with dlsym. */
static struct {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_run) *run;
	__typeof__(MHD_get_timeout) *get_timeout;
	__typeof__(MHD_get_daemon_info) *daemon_info;
	__typeof__(MHD_lookup_connection_value) *lookup;
	__typeof__(MHD_create_response_from_buffer) *response;
	__typeof__(MHD_add_response_header) *add_header;
	__typeof__(MHD_queue_response) *queue;
	__typeof__(MHD_destroy_response) *destroy;
	__typeof__(MHD_suspend_connection) *suspend;
	__typeof__(MHD_resume_connection) *resume;
} mhd;

static const char *const mhd_names[] = {
	"MHD_start_daemon", "MHD_run", "MHD_get_timeout", "MHD_get_daemon_info", "MHD_lookup_connection_value",
	"MHD_create_response_from_buffer", "MHD_add_response_header", "MHD_queue_response",
	"MHD_destroy_response", "MHD_suspend_connection", "MHD_resume_connection",
};

static struct {
	int loaded;                 /* 0 not yet (or a fork came mid-way), 1 resolved, -1 failed */
	int forked_fixed;           /* a forked child of a fixed-port endpoint: none here */
	_Atomic int wake_fd;        /* eventfd: answers are ready (-1 = none) */
	int listen_fd;
	char where[96];             /* "127.0.0.1:6060", for messages */
} sv = { .wake_fd = -1 };

static int seen;                /* *con_cls of a request not yet handed to pull.c */

static int load_mhd(void)
{
	if (sv.loaded)
		return sv.loaded > 0 ? 0 : -1;
	void *lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *why = dlerror();
		lp_log(LP_LOG_WARN, "cannot load libmicrohttpd.so.12 (%s); running without the pprof "
		       "endpoint (Debian: apt-get install libmicrohttpd12)", why ? why : "not found");
		sv.loaded = -1;
		return -1;
	}
	_Static_assert(sizeof(mhd) == sizeof(mhd_names) / sizeof(mhd_names[0]) * sizeof(void *),
		       "one name per function");
	for (size_t i = 0; i < sizeof(mhd_names) / sizeof(mhd_names[0]); i++) {
		void *fn = dlsym(lib, mhd_names[i]);
		if (!fn) {
			lp_log(LP_LOG_WARN, "libmicrohttpd.so.12 has no %s (0.9.73 or newer is needed); "
			       "running without the pprof endpoint", mhd_names[i]);
			sv.loaded = -1;
			return -1;
		}
		memcpy((char *)&mhd + i * sizeof(fn), &fn, sizeof(fn));
	}
	sv.loaded = 1;
	return 0;
}

/* ---- answers -------------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, void *buf, size_t len,
				enum MHD_ResponseMemoryMode mode, const char *type)
{
	struct MHD_Response *r = mhd.response(len, buf, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(buf);
		return MHD_NO;
	}
	mhd.add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	mhd.add_header(r, "X-Content-Type-Options", "nosniff");
	if (status == MHD_HTTP_UNAUTHORIZED)
		mhd.add_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"libprof\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		mhd.add_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (strcmp(type, "application/octet-stream") == 0)
		mhd.add_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
			       "attachment; filename=\"profile\"");
	enum MHD_Result rc = mhd.queue(c, status, r);
	mhd.destroy(r);
	return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return send_buf(c, status, (void *)text, strlen(text), MHD_RESPMEM_MUST_COPY,
			"text/plain; charset=utf-8");
}

static enum MHD_Result send_index(struct MHD_Connection *c)
{
	char page[2048];
	size_t n = lp_fmt(page, sizeof(page),
		"<!DOCTYPE html>\n<html><head><title>/debug/pprof/</title></head><body>\n"
		"<p>/debug/pprof/ of %s (pid %d), served by libprof " LP_VERSION "</p>\n"
		"<p>Types of profiles available:</p>\n<table>\n"
		"<tr><td><a href=\"allocs\">allocs</a></td><td>%s</td></tr>\n"
		"<tr><td><a href=\"heap\">heap</a></td><td>%s</td></tr>\n"
		"<tr><td><a href=\"mutex\">mutex</a></td><td>%s</td></tr>\n"
		"<tr><td><a href=\"profile\">profile</a></td><td>%s</td></tr>\n"
		"</table>\n<p>Read them with <code>go tool pprof http://%s/debug/pprof/heap</code>.</p>\n"
		"</body></html>\n", lp.service, (int)lp.pid,
		lp_heap_on ? "Sampled allocations since the program started (alloc_space by default)."
			   : "Off (LIBPROF_HEAP_RATE=0).",
		lp_heap_on ? "Sampled live allocations (inuse_space by default), and allocations "
			     "since the program started." : "Off (LIBPROF_HEAP_RATE=0).",
		lp_mutex_on ? "Lock contention since the program started (delay by default)."
			    : "Off (LIBPROF_MUTEX_RATE=0).",
		atomic_load(&lp.cpu_active) ? "CPU profile of the next 30 seconds "
			"(<code>?seconds=N</code>, 1 to 3600)." : "Off (LIBPROF_CPU_HZ=0).",
		sv.where);
	return send_buf(c, MHD_HTTP_OK, page, n, MHD_RESPMEM_MUST_COPY, "text/html; charset=utf-8");
}

/* ---- requests ---------------------------------------------------------------- */

/* Compares in time independent of where the strings differ. */
static int same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned diff = (unsigned)(la ^ lb);
	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i];
	return diff == 0;
}

static int authorized(struct MHD_Connection *c)
{
	if (!lp.cfg.opt_pprof_token[0])
		return 1;
	const char *h = mhd.lookup(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	return same_secret(h, lp.cfg.opt_pprof_token);
}

/* A decimal query value in [lo, hi]; the default when absent; -1 when bad. */
static long query_int(struct MHD_Connection *c, const char *name, long dflt, long lo, long hi)
{
	const char *v = mhd.lookup(c, MHD_GET_ARGUMENT_KIND, name);
	if (!v)
		return dflt;
	long n = 0;
	if (!*v)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > hi)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n >= lo && n <= hi ? n : -1;
}

/* Checks the query of a profile path; NULL when fine, else the reason. */
static const char *bad_query(struct MHD_Connection *c, enum lp_pull_kind kind, int *seconds)
{
	if (query_int(c, "debug", 0, 0, 0) < 0)
		return "only debug=0 is served: the gzip-compressed protobuf format; "
		       "read it with go tool pprof\n";
	if (kind == LP_PULL_CPU) {
		long s = query_int(c, "seconds", 30, 1, MAX_SECONDS);
		if (s < 0)
			return "seconds must be a whole number from 1 to 3600\n";
		*seconds = (int)s;
	} else if (mhd.lookup(c, MHD_GET_ARGUMENT_KIND, "seconds")) {
		return "seconds is served for /debug/pprof/profile only; for a change over time, "
		       "pull twice and compare with go tool pprof -diff_base\n";
	} else if (query_int(c, "gc", 0, 0, 1) < 0) {
		return "gc must be 0 or 1\n";
	}
	return NULL;
}

static const char *off_reason(enum lp_pull_kind kind)
{
	if (kind == LP_PULL_CPU && !atomic_load(&lp.cpu_active))
		return "CPU profiling is off in this process (LIBPROF_CPU_HZ=0, or its signal is taken)\n";
	if ((kind == LP_PULL_HEAP || kind == LP_PULL_ALLOCS) && !lp_heap_on)
		return "heap profiling is off in this process (LIBPROF_HEAP_RATE=0)\n";
	if (kind == LP_PULL_MUTEX && !lp_mutex_on)
		return "lock contention profiling is off in this process (LIBPROF_MUTEX_RATE=0)\n";
	return NULL;
}

static int path_kind(const char *url, enum lp_pull_kind *kind)
{
	static const struct { const char *path; enum lp_pull_kind kind; } paths[] = {
		{ "/debug/pprof/profile", LP_PULL_CPU }, { "/debug/pprof/heap", LP_PULL_HEAP },
		{ "/debug/pprof/allocs", LP_PULL_ALLOCS }, { "/debug/pprof/mutex", LP_PULL_MUTEX },
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(url, paths[i].path) == 0) {
			*kind = paths[i].kind;
			return 1;
		}
	return 0;
}

/* A request whose answer pull.c has made: send it. */
static enum MHD_Result send_answer(struct MHD_Connection *c, struct lp_pull_req *r)
{
	uint8_t *gz;
	size_t len;
	int status;
	const char *error;
	if (!lp_pull_take(r, &gz, &len, &status, &error)) {
		mhd.suspend(c);     /* not ours to answer yet (cannot happen: resumed when done) */
		return MHD_YES;
	}
	if (!gz)
		return send_text(c, (unsigned)status, error ? error : "no profile\n");
	return send_buf(c, MHD_HTTP_OK, gz, len, MHD_RESPMEM_MUST_FREE, "application/octet-stream");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)cls, (void)version, (void)upload;
	if (*con_cls == NULL) {     /* the head has arrived; the body (if any) follows */
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;   /* a body is never needed: read and dropped */
		return MHD_YES;
	}
	if (*con_cls != &seen)
		return send_answer(c, *con_cls);
	int symbol = strcmp(url, "/debug/pprof/symbol") == 0;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    !(symbol && strcmp(method, "POST") == 0))
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served\n");
	if (!authorized(c))
		return send_text(c, MHD_HTTP_UNAUTHORIZED, "LIBPROF_PPROF_TOKEN is set: send "
				 "Authorization: Bearer <token>\n");
	/* Go's symbol service: profiles come symbolized, so a reader asking for
	 * more gets the count line and no further name. */
	if (symbol)
		return send_text(c, MHD_HTTP_OK, strcmp(method, "POST") == 0 ? "" : "num_symbols: 1\n");
	if (strcmp(url, "/debug/pprof/") == 0 || strcmp(url, "/debug/pprof") == 0)
		return send_index(c);
	enum lp_pull_kind kind;
	if (!path_kind(url, &kind))
		return send_text(c, MHD_HTTP_NOT_FOUND, "not found: libprof serves /debug/pprof/ "
				 "profile, heap, allocs and mutex\n");
	int seconds = 0;
	const char *why = bad_query(c, kind, &seconds);
	if (why)
		return send_text(c, MHD_HTTP_BAD_REQUEST, why);
	if ((why = off_reason(kind)))
		return send_text(c, MHD_HTTP_NOT_FOUND, why);
	struct lp_pull_req *r = lp_pull_submit(kind, seconds, c);
	if (!r)
		return send_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many profile requests in "
				 "progress; try again later\n");
	*con_cls = r;
	mhd.suspend(c);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)c, (void)why;
	if (*con_cls && *con_cls != &seen)
		lp_pull_release(*con_cls);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (lp.cfg.opt_log > LP_LOG_DEBUG)
		return;
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);    /* the library's formats: all of printf's */
	size_t n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	lp_log(LP_LOG_DEBUG, "pprof endpoint: %s", line);
}

static void resume(void *conn)
{
	mhd.resume(conn);
}

/* Exporter thread: in "external" mode the library's own wake-up is not used,
 * so the server thread is woken here and resumes the answered requests. */
void lp_serve_resume(void *conn)
{
	(void)conn;
	int fd = atomic_load(&sv.wake_fd);
	uint64_t one = 1;
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* the counter is full: a wake-up is pending anyway */
	}
}

/* ---- the thread ---------------------------------------------------------------- */

/* The listening socket, bound and listening, libprof's; -1 after a warning. */
static int open_listener(void)
{
	const struct lp_config *cfg = &lp.cfg;
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (cfg->opt_pprof_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)cfg->opt_pprof_port);
		memcpy(&a->sin6_addr, cfg->opt_pprof_addr, 16);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)cfg->opt_pprof_port);
		memcpy(&a->sin_addr, cfg->opt_pprof_addr, 4);
		len = sizeof(*a);
	}
	int fd = socket(cfg->opt_pprof_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		lp_log(LP_LOG_WARN, "LIBPROF_PPROF_LISTEN=%s: cannot listen (%s); running without "
		       "the pprof endpoint", sv.where, strerror(err));
		return -1;
	}
	char host[INET6_ADDRSTRLEN] = "?";
	int port;
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		lp_fmt(sv.where, sizeof(sv.where), "[%s]:%d", host, port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		lp_fmt(sv.where, sizeof(sv.where), "%s:%d", host, port);
	}
	/* Port 0 asked for a free port: say which (the only way to find it). */
	lp_log(cfg->opt_pprof_port == 0 ? LP_LOG_WARN : LP_LOG_INFO,
	       "pprof endpoint on http://%s/debug/pprof/ (pid %d)", sv.where, (int)lp.pid);
	return fd;
}

static int loopback(void)
{
	const unsigned char *a = lp.cfg.opt_pprof_addr;
	static const unsigned char v6_loopback[16] = { [15] = 1 };
	return lp.cfg.opt_pprof_family == AF_INET ? a[0] == 127
						   : memcmp(a, v6_loopback, 16) == 0;
}

static void *serve_main(void *arg)
{
	(void)arg;
	lp_guard_enter();
	lp_self.fd_keeper = 1;
	pthread_setname_np(pthread_self(), "libprof-pprof");
	int fd = sv.listen_fd;
	if (!loopback() && !lp.cfg.opt_pprof_token[0])
		lp_log(LP_LOG_WARN, "the pprof endpoint listens on %s, not only on this machine, and "
		       "LIBPROF_PPROF_TOKEN is not set: anyone who reaches it can read profiles",
		       sv.where);
	struct MHD_Daemon *d = mhd.start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, NULL,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, 60u,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	if (!d) {
		lp_fd_release(fd);
		close(fd);
		lp_log(LP_LOG_WARN, "the pprof endpoint on %s could not start; running without it",
		       sv.where);
		return NULL;
	}
	const union MHD_DaemonInfo *info = mhd.daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!info || wake < 0) {
		lp_log(LP_LOG_WARN, "the pprof endpoint on %s could not start (%s); running without it",
		       sv.where, wake < 0 ? strerror(errno) : "no epoll descriptor");
		return NULL;        /* the daemon's sockets stay, unused */
	}
	atomic_store(&sv.wake_fd, wake);
	struct pollfd p[2] = { { .fd = info->epoll_fd, .events = POLLIN },
			       { .fd = wake, .events = POLLIN } };
	for (;;) {
		MHD_UNSIGNED_LONG_LONG ms;
		int timeout = mhd.get_timeout(d, &ms) == MHD_YES ? (ms > 60000 ? 60000 : (int)ms) : -1;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			uint64_t n;
			if (read(wake, &n, sizeof(n)) < 0) {
				/* EAGAIN: another wake-up took it */
			}
			lp_pull_resume_done(resume);
		}
		mhd.run(d);
	}
	lp_log(LP_LOG_WARN, "the pprof endpoint on %s failed (%s); it is off", sv.where,
	       strerror(errno));
	return NULL;
}

int lp_serve_wanted(void)
{
	return lp.cfg.opt_pprof_on && !sv.forked_fixed;
}

void lp_serve_start(void)
{
	if (!lp_serve_wanted())
		return;
	char host[INET6_ADDRSTRLEN] = "?";
	inet_ntop(lp.cfg.opt_pprof_family, lp.cfg.opt_pprof_addr, host, sizeof(host));
	lp_fmt(sv.where, sizeof(sv.where), lp.cfg.opt_pprof_family == AF_INET6 ? "[%s]:%d" : "%s:%d",
	       host, lp.cfg.opt_pprof_port);
	/* The library and the listening socket come first, here (at load, or in
	 * the forked child): before the program's main runs, so a program that
	 * sweeps its descriptors at start cannot close a file dlopen is reading,
	 * and a bad address or a port in use is reported at once. */
	if (load_mhd() < 0)
		return;
	lp_self.fd_keeper = 1;
	sv.listen_fd = open_listener();
	lp_self.fd_keeper = 0;
	if (sv.listen_fd < 0)
		return;
	int rc = lp_spawn_thread(serve_main, 256 * 1024);
	if (rc < 0) {
		lp_log(LP_LOG_WARN, "cannot start the pprof endpoint's thread (%s); running without it",
		       strerror(-rc));
		lp_fd_release(sv.listen_fd);
		close(sv.listen_fd);
	}
}

void lp_serve_after_fork(void)
{
	atomic_store(&sv.wake_fd, -1);
	lp_fd_close_all();
	if (lp.cfg.opt_pprof_port != 0)
		sv.forked_fixed = 1;
}

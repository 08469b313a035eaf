/*
 * HTTP transport for uploads: libcurl's multi interface, driven by the exporter
 * thread only (upload.c decides what to send and when). libcurl is loaded with
 * dlopen the first time a profile is to be streamed, so a program that does
 * not stream never maps it (nor its ~30 dependencies); <curl/curl.h> gives the
 * types only. A few transfer slots each keep one easy handle, so connections
 * are reused; every request gets the same options: a connect + transfer
 * timeout, no signals, http and https only, no redirects.
 *
 * Descriptors: connection sockets are opened close-on-exec; the socket pair
 * libcurl makes for curl_multi_wakeup is marked close-on-exec once found (it
 * is the pair that appeared during curl_multi_init and became readable on a
 * wake-up), so that nothing leaks into programs started with exec.
 */
#define CURL_DISABLE_TYPECHECK
#include "internal.h"

#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FD_SCAN_MAX 4096

/* The libcurl functions used, resolved with dlsym (7.68 or newer: wakeup). */
struct curl_api {
	CURLcode (*global_init)(long);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int, int *);
	CURLMcode (*multi_wakeup)(CURLM *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
};

static const char *const api_names[] = {
	"curl_global_init", "curl_multi_init", "curl_multi_add_handle",
	"curl_multi_remove_handle", "curl_multi_perform", "curl_multi_poll",
	"curl_multi_wakeup", "curl_multi_info_read", "curl_easy_init", "curl_easy_setopt",
	"curl_easy_getinfo", "curl_easy_strerror", "curl_slist_append",
};

struct slot {
	CURL *easy;                 /* kept across transfers: its connection is reused */
	int busy;
	struct curl_slist ct;       /* this request's Content-Type, then h.headers */
	char ct_line[128];
	char err[CURL_ERROR_SIZE];
	uint8_t resp[LP_HTTP_RESP_MAX];
	size_t resp_len;
	char retry_after[64];
};

/* Exporter thread only, except wake_multi and wake_fn (any thread). */
static struct {
	int loaded;                 /* 0 not tried, 1 api resolved, -1 failed */
	struct curl_api api;
	CURLM *multi;               /* NULL until the first transfer (again in a child) */
	struct curl_slist *headers; /* the configured headers, then "Expect:" */
	struct slot slots[LP_HTTP_SLOTS];
} h;

static _Atomic(CURLM *) wake_multi;
static CURLMcode (*_Atomic wake_fn)(CURLM *);

static void finish_at_exit(void)
{
	lp_finish(0);
}

static int load_api(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *why = dlerror();
		lp_log(LP_LOG_WARN, "cannot load libcurl.so.4 (%s); profiles are written to files "
		       "instead of being streamed", why ? why : "not found");
		return -ENOENT;
	}
	_Static_assert(sizeof(h.api) == sizeof(api_names), "one name per function");
	for (size_t i = 0; i < sizeof(api_names) / sizeof(api_names[0]); i++) {
		void *fn = dlsym(lib, api_names[i]);
		memcpy((char *)&h.api + i * sizeof(fn), &fn, sizeof(fn));
		if (!fn) {
			lp_log(LP_LOG_WARN, "libcurl.so.4 has no %s (7.68 or newer is needed); profiles "
			       "are written to files instead of being streamed", api_names[i]);
			return -ENOSYS;
		}
	}
	if (h.api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		lp_log(LP_LOG_WARN, "libcurl failed to initialise; profiles are written to files "
		       "instead of being streamed");
		return -EIO;
	}
	/* OpenSSL, loaded just now, cleans itself up in an atexit handler, which
	 * runs before libprof's destructor: the last profiles would then go out
	 * without TLS. A handler registered now runs before OpenSSL's. */
	if (strncasecmp(lp.cfg.opt_url, "https:", 6) == 0)
		atexit(finish_at_exit);
	return 0;
}

static void fd_snapshot(uint8_t *bits)
{
	memset(bits, 0, FD_SCAN_MAX / 8);
	DIR *d = opendir("/proc/self/fd");
	for (struct dirent *e; d && (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd >= 0 && fd < FD_SCAN_MAX && fd != dirfd(d))
			bits[fd / 8] |= (uint8_t)(1u << (fd % 8));
	}
	if (d)
		closedir(d);
}

static int unix_stream(int fd)
{
	int domain = 0, type = 0;
	socklen_t len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return 0;
	len = sizeof(int);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && domain == AF_UNIX &&
	       type == SOCK_STREAM;
}

/* Marks libcurl's wake-up pair close-on-exec: the two AF_UNIX stream sockets
 * that appeared since `before`, one of them readable after a wake-up. Does
 * nothing when that is not exactly what is seen (a program thread made
 * sockets meanwhile): a program's descriptor is never touched. */
static void cloexec_wakeup_pair(const uint8_t *before)
{
	uint8_t after[FD_SCAN_MAX / 8];
	int cand[2], n = 0, readable = 0;
	h.api.multi_wakeup(h.multi);
	fd_snapshot(after);
	for (int fd = 0; fd < FD_SCAN_MAX; fd++) {
		if (!(after[fd / 8] & ~before[fd / 8] & (1u << (fd % 8))) || !unix_stream(fd))
			continue;
		if (n < 2)
			cand[n] = fd;
		n++;
	}
	for (int i = 0; i < n && n == 2; i++) {
		int bytes = 0;
		if (ioctl(cand[i], FIONREAD, &bytes) == 0 && bytes > 0)
			readable++;
	}
	if (n == 2 && readable == 1) {
		for (int i = 0; i < 2; i++)
			fcntl(cand[i], F_SETFD, fcntl(cand[i], F_GETFD) | FD_CLOEXEC);
	} else {
		lp_log(LP_LOG_DEBUG, "libcurl's wake-up sockets not identified (%d candidates); "
		       "left as they are", n);
	}
	h.api.multi_poll(h.multi, NULL, 0, 0, NULL);   /* consumes the wake-up */
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)arg;
	(void)purpose;
	int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = size * n, room = sizeof(s->resp) - s->resp_len;
	memcpy(s->resp + s->resp_len, data, len < room ? len : room);
	s->resp_len += len < room ? len : room;
	return len;                 /* the rest is read and dropped */
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = size * n;
	if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
		size_t v = len - 12 < sizeof(s->retry_after) - 1 ? len - 12 : sizeof(s->retry_after) - 1;
		memcpy(s->retry_after, data + 12, v);
		s->retry_after[v] = '\0';
	}
	return len;
}

static int make_multi(void)
{
	const struct lp_config *cfg = &lp.cfg;
	uint8_t before[FD_SCAN_MAX / 8];
	fd_snapshot(before);
	h.multi = h.api.multi_init();
	if (!h.multi)
		return -ENOMEM;
	cloexec_wakeup_pair(before);
	const char *p = cfg->opt_headers;
	for (int i = 0; i < cfg->opt_n_headers; i++, p += strlen(p) + 1)
		h.headers = h.api.slist_append(h.headers, p);
	if (cfg->opt_protocol == LP_PROTO_OTLP && cfg->opt_otlp_gzip)
		h.headers = h.api.slist_append(h.headers, "Content-Encoding: gzip");
	/* No "100-continue" round trip before large bodies. */
	h.headers = h.api.slist_append(h.headers, "Expect:");
	atomic_store(&wake_fn, h.api.multi_wakeup);
	atomic_store(&wake_multi, h.multi);
	return 0;
}

int lp_http_init(void)
{
	if (h.loaded == 0)
		h.loaded = load_api() == 0 ? 1 : -1;
	if (h.loaded < 0)
		return -ENOSYS;
	if (!h.multi && make_multi() < 0) {
		lp_log(LP_LOG_WARN, "libcurl: cannot create a transfer set (out of memory?); profiles "
		       "are written to files instead of being streamed");
		h.loaded = -1;
		return -ENOMEM;
	}
	return 0;
}

static int configure(struct slot *s)
{
	const struct lp_config *cfg = &lp.cfg;
	CURL *e = s->easy;
	long timeout_ms = (long)(cfg->opt_upload_timeout_ns / 1000000);
	struct curl_api *a = &h.api;
	a->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	a->easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	a->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	a->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");   /* 7.85; older: ignored */
	a->easy_setopt(e, CURLOPT_USERAGENT, "libprof/" LP_VERSION);
	a->easy_setopt(e, CURLOPT_POST, 1L);
	a->easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	a->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	a->easy_setopt(e, CURLOPT_WRITEDATA, s);
	a->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	a->easy_setopt(e, CURLOPT_HEADERDATA, s);
	a->easy_setopt(e, CURLOPT_ERRORBUFFER, s->err);
	a->easy_setopt(e, CURLOPT_PRIVATE, s);
	if (cfg->opt_tls_ca[0])
		a->easy_setopt(e, CURLOPT_CAINFO, cfg->opt_tls_ca);
	return 0;
}

int lp_http_start(int slot, const char *url, const uint8_t *body, size_t len,
		  const char *content_type)
{
	struct slot *s = &h.slots[slot];
	if (!h.multi || s->busy)
		return -EBUSY;
	if (!s->easy) {
		s->easy = h.api.easy_init();
		if (!s->easy)
			return -ENOMEM;
		configure(s);
	}
	lp_fmt(s->ct_line, sizeof(s->ct_line), "Content-Type: %s", content_type);
	s->ct.data = s->ct_line;
	s->ct.next = h.headers;
	s->err[0] = s->retry_after[0] = '\0';
	s->resp_len = 0;
	h.api.easy_setopt(s->easy, CURLOPT_URL, url);
	h.api.easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
	h.api.easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	h.api.easy_setopt(s->easy, CURLOPT_HTTPHEADER, &s->ct);
	if (h.api.multi_add_handle(h.multi, s->easy) != CURLM_OK)
		return -EIO;
	s->busy = 1;
	return 0;
}

void lp_http_perform(void)
{
	int running;
	if (h.multi)
		h.api.multi_perform(h.multi, &running);
}

void lp_http_poll(int timeout_ms)
{
	if (h.multi)
		h.api.multi_poll(h.multi, NULL, 0, timeout_ms, NULL);
}

int lp_http_next_done(struct lp_http_result *r)
{
	int left;
	CURLMsg *m;
	while (h.multi && (m = h.api.multi_info_read(h.multi, &left))) {
		struct slot *s = NULL;
		if (m->msg != CURLMSG_DONE ||
		    h.api.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s) != CURLE_OK || !s)
			continue;
		long status = 0;
		h.api.easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
		r->slot = (int)(s - h.slots);
		r->curl_rc = (int)m->data.result;
		r->status = status;
		r->error = s->err[0] ? s->err : h.api.easy_strerror(m->data.result);
		r->retry_after = s->retry_after;
		r->resp = s->resp;
		r->resp_len = s->resp_len;
		h.api.multi_remove_handle(h.multi, s->easy);
		s->busy = 0;
		return 1;
	}
	return 0;
}

void lp_http_abort(int slot)
{
	struct slot *s = &h.slots[slot];
	if (s->busy)
		h.api.multi_remove_handle(h.multi, s->easy);
	s->busy = 0;
}

void lp_http_wake(void)
{
	CURLM *m = atomic_load(&wake_multi);
	CURLMcode (*fn)(CURLM *) = atomic_load(&wake_fn);
	if (m && fn)
		fn(m);
}

void lp_http_after_fork(void)
{
	/* The parent's transfer set and handles belong to it: never touched here
	 * (abandoned, like the exporter's other state). libcurl stays loaded. */
	atomic_store(&wake_multi, NULL);
	h.multi = NULL;
	h.headers = NULL;
	memset(h.slots, 0, sizeof(h.slots));
}

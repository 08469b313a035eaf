/*
 * The HTTP side of the collector, on libmicrohttpd: the listening socket,
 * routing, the bearer token (asked of every request but those of the page's
 * own files, which hold no data: web.c), the request body cap, the
 * per-request debug log line, and turning handlers' replies into responses.
 * Handlers live in ingest_*.c, query.c and web.c and never see libmicrohttpd.
 *
 * Requests are answered on a pool of libmicrohttpd threads. Refusals that the
 * headers already decide (unknown path 404, method 405, token 401, declared
 * Content-Length over the cap 413) are sent before the body is read; a body
 * that grows past the cap without a Content-Length is drained, not kept.
 */
#include "collector.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

typedef int (*handler_fn)(const struct lp_ctx *c, const struct lp_request *req,
			  struct lp_reply *rep);

struct lp_http {
	struct MHD_Daemon *d;
	struct lp_ctx ctx;
	char *token;
	int fd;
};

/* One request's state, from its first callback to "completed". */
struct conn {
	const struct route *route;
	struct lp_buf body;
	int too_big;
	struct timespec start;
	char what[160];             /* "METHOD /path" for the log line */
};

static int healthz(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep);

static const struct route {
	const char *path, *method;
	handler_fn fn;
} routes[] = {
	{ "/healthz", "GET", healthz },
	{ "/api/v1/profiles", "GET", lp_query_profiles },
	{ "/api/v1/flamegraph", "GET", lp_query_flamegraph },
	{ "/api/v1/services", "GET", lp_query_services },
	{ "/api/v1/traces", "GET", lp_query_traces },
	{ "/ingest", "POST", lp_ingest_pyroscope },
	{ "/v1development/profiles", "POST", lp_ingest_otlp },
};

/* The page's files (web.c): "/", "/app.js", ... Served without the token. */
static const struct route web_route = { NULL, "GET", lp_web_serve };

static int healthz(const struct lp_ctx *c, const struct lp_request *req, struct lp_reply *rep)
{
	(void)c;
	(void)req;
	return lp_reply_text(rep, 200, "ok");
}

/* ---- responses ------------------------------------------------------------------------- */

static enum MHD_Result send_reply(struct MHD_Connection *con, struct lp_reply *rep,
				  const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	r = MHD_create_response_from_buffer(rep->body.len, rep->body.data ? rep->body.data : (void *)"",
					    rep->body.data ? MHD_RESPMEM_MUST_FREE
							   : MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	rep->body.data = NULL;          /* the response owns it now */
	rep->body.cap = 0;
	if (rep->content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
	if (rep->status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (rep->status == 405 && allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	if (rep->status == 503)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	ok = MHD_queue_response(con, (unsigned)rep->status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result refuse(struct MHD_Connection *con, int status, const char *allow,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result refuse(struct MHD_Connection *con, int status, const char *allow,
			      const char *fmt, ...)
{
	struct lp_reply rep = { 0 };
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	lp_reply_text(&rep, status, "%s", line);
	return send_reply(con, &rep, allow);
}

/* ---- checks made on the headers ------------------------------------------------------------ */

static int token_ok(const struct lp_http *h, struct MHD_Connection *con)
{
	const char *a = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	size_t n, want;
	unsigned char diff = 0;

	if (!h->token)
		return 1;
	if (!a || strncasecmp(a, "Bearer ", 7) != 0)
		return 0;
	a += 7;
	while (*a == ' ')
		a++;
	n = strlen(a);
	want = strlen(h->token);
	/* constant time in the token's length: no early exit on a mismatch */
	for (size_t i = 0; i < want; i++)
		diff |= (unsigned char)(h->token[i] ^ (i < n ? a[i] : 0));
	return diff == 0 && n == want;
}

static const struct route *find_route(const char *url, const char *method, const char **allow)
{
	*allow = NULL;
	if (lp_web_find(url)) {
		*allow = "GET, HEAD";
		if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
			return &web_route;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, url) != 0)
			continue;
		*allow = strcmp(routes[i].method, "GET") == 0 ? "GET, HEAD" : routes[i].method;
		if (strcmp(method, routes[i].method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
			return &routes[i];
	}
	return NULL;
}

/* First callback: 0 to go on and read the body, else the refusal was queued. */
static int early_checks(struct lp_http *h, struct MHD_Connection *con, const char *url,
			const char *method, struct conn *cs, enum MHD_Result *ret)
{
	const char *allow, *cl;

	cs->route = find_route(url, method, &allow);
	if (!cs->route && !allow)
		*ret = refuse(con, 404, NULL, "no such path: %.100s", url);
	else if (!cs->route)
		*ret = refuse(con, 405, allow, "method %.16s not allowed on %.100s (allowed: %s)",
			      method, url, allow);
	else if (cs->route != &web_route && !token_ok(h, con))
		*ret = refuse(con, 401, NULL, "missing or wrong Authorization: Bearer token");
	else if ((cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_CONTENT_LENGTH)) &&
		 strtoull(cl, NULL, 10) > h->ctx.limits.max_body_bytes)
		*ret = refuse(con, 413, NULL, "body of %.20s bytes is over the limit of %zu bytes", cl,
			      h->ctx.limits.max_body_bytes);
	else
		return 0;
	return 1;
}

/* ---- the request callback ---------------------------------------------------------------- */

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct lp_request *req = cls;

	(void)kind;
	if (req->n_args < LP_MAX_ARGS)
		req->args[req->n_args++] = (struct lp_kv){ key, value };
	return MHD_YES;
}

static enum MHD_Result dispatch(struct lp_http *h, struct MHD_Connection *con, const char *url,
				const char *method, struct conn *cs)
{
	struct lp_request req = { 0 };
	struct lp_reply rep = { 0 };
	enum MHD_Result ok;
	int err;

	req.method = method;
	req.path = url;
	req.content_type = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_CONTENT_TYPE);
	req.content_encoding = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
							   MHD_HTTP_HEADER_CONTENT_ENCODING);
	MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, add_arg, &req);
	req.body = cs->body.data ? cs->body.data : (const unsigned char *)"";
	req.body_len = cs->body.len;
	err = cs->route->fn(&h->ctx, &req, &rep);
	if (err == -ENOMEM || err == -EBUSY)
		lp_reply_text(&rep, 503, "busy: %s", strerror(-err));
	else if (err)
		lp_reply_text(&rep, 500, "internal error: %s", strerror(-err));
	if (err || rep.status >= 500)
		lp_log(LP_LOG_WARN, "%s %s: %d %.*s", method, url, rep.status,
		       rep.body.len ? (int)rep.body.len - 1 : 0,
		       rep.body.data ? (const char *)rep.body.data : "");
	if (!rep.status)
		lp_reply_text(&rep, 500, "internal error: no reply");
	ok = send_reply(con, &rep, NULL);
	lp_buf_free(&rep.body);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct lp_http *h = cls;
	struct conn *cs = *con_cls;
	enum MHD_Result ret = MHD_YES;

	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &cs->start);
		cs->body.max = h->ctx.limits.max_body_bytes;
		*con_cls = cs;
		snprintf(cs->what, sizeof(cs->what), "%s %s", method, url);
		if (early_checks(h, con, url, method, cs, &ret))
			cs->route = NULL;
		return ret;
	}
	if (!cs->route) {
		*upload_size = 0;               /* refused early: drop the rest */
		return MHD_YES;
	}
	if (*upload_size) {
		/* past the cap, keep reading (and dropping) so the client gets the 413 */
		if (!cs->too_big && lp_buf_append(&cs->body, upload, *upload_size))
			cs->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (cs->too_big) {
		ret = refuse(con, 413, NULL, "body over the limit of %zu bytes (or out of memory)",
			     h->ctx.limits.max_body_bytes);
	} else {
		ret = dispatch(h, con, url, method, cs);
	}
	cs->route = NULL;
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *cs = *con_cls;
	const union MHD_ConnectionInfo *ci;
	struct timespec now;

	(void)cls;
	if (!cs)
		return;
	if (lp_log_level == LP_LOG_DEBUG) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_HTTP_STATUS);
		lp_log(LP_LOG_DEBUG, "%s: %u, %zu body bytes, %.1f ms%s", cs->what,
		       ci ? ci->http_status : 0, cs->body.len,
		       (double)(now.tv_sec - cs->start.tv_sec) * 1e3 +
			       (double)(now.tv_nsec - cs->start.tv_nsec) / 1e6,
		       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	}
	lp_buf_free(&cs->body);
	free(cs);
	*con_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------------------ */

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	lp_log(LP_LOG_DEBUG, "http: %s", line);
}

/* "host:port", "[v6]:port" or ":port" (all interfaces) -> a listening socket. */
static int listen_on(const char *spec, int *fd_out, unsigned *port, int *v6)
{
	char host[256], *colon;
	const char *h;
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, one = 1, rc;

	if (snprintf(host, sizeof(host), "%s", spec) >= (int)sizeof(host) ||
	    !(colon = strrchr(host, ':')))
		return -EINVAL;
	*colon = 0;
	h = host;
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = 0;
		h = host + 1;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*h ? h : NULL, colon + 1, &hints, &ai);
	if (rc) {
		lp_log(LP_LOG_WARN, "--listen %s: %s", spec, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		rc = -errno;                    /* main() says it, once */
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	*v6 = ss.ss_family == AF_INET6;
	*port = ntohs(*v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			  : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	freeaddrinfo(ai);
	return 0;
}

int lp_http_start(struct lp_http **out, const struct lp_http_opts *o, const struct lp_ctx *c,
		  unsigned *port)
{
	struct lp_http *h = calloc(1, sizeof(*h));
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	int v6 = 0, err;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->ctx = *c;
	h->fd = -1;
	if (o->token && !(h->token = strdup(o->token))) {
		free(h);
		return -ENOMEM;
	}
	err = listen_on(o->listen, &h->fd, port, &v6);
	if (err) {
		free(h->token);
		free(h);
		return err;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_LISTEN_SOCKET, h->fd,
				MHD_OPTION_THREAD_POOL_SIZE, o->threads,
				MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s,
				MHD_OPTION_CONNECTION_LIMIT, 256u,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_END);
	if (!h->d) {
		lp_log(LP_LOG_WARN, "cannot start the HTTP server on %s", o->listen);
		close(h->fd);
		free(h->token);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void lp_http_stop(struct lp_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);          /* closes the listening socket too */
	free(h->token);
	free(h);
}

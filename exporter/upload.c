/*
 * Delivery of streamed profiles, on the exporter thread only: a bounded queue
 * of undelivered profiles (LIBPROF_UPLOAD_QUEUE profiles, LIBPROF_UPLOAD_QUEUE_BYTES
 * bytes), transfers through http.c (at most LP_HTTP_SLOTS at once, one while
 * the collector is failing), retries with exponential backoff and full jitter
 * (Retry-After honoured), and the spool: whatever cannot be delivered (queue
 * full, rejected, given up, or still pending at exit) is written to
 * LIBPROF_OUTPUT_DIR by exporter.c as the same pprof file the file sink
 * writes. A profile is never dropped silently; docs/ARCHITECTURE.md
 * ("Streaming") has the policy and its reasons.
 *
 * The policy functions (lp_upload_verdict, lp_upload_backoff_ms,
 * lp_upload_retry_after_ms, lp_upload_reason) are pure, for the unit tests.
 */
#define CURL_DISABLE_TYPECHECK
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 6
#define BACKOFF_BASE_MS 1000u
#define BACKOFF_CAP_MS 30000u
#define RETRY_AFTER_MAX_MS 300000L
#define LOG_EVERY_NS (60ull * 1000000000u)
#define MS 1000000ull

struct item {
	char type[8];
	char *url;                  /* Pyroscope: this profile's; NULL: lp.cfg.opt_url */
	char content_type[96];
	uint8_t *body;              /* the request body */
	size_t body_len;
	uint8_t *pprof;             /* the gzip pprof: its own buffer (OTLP) or inside body */
	size_t pprof_len;
	size_t bytes;               /* counted against LIBPROF_UPLOAD_QUEUE_BYTES */
	int attempts;
	int slot;                   /* transfer slot, -1: waiting */
	uint64_t queued_ns;
};

static struct {
	int state;                  /* 0 not started, 1 streaming, -1 no libcurl: files */
	struct item **q;            /* oldest first */
	int n, cap;
	size_t bytes;
	int slot_busy[LP_HTTP_SLOTS];
	char *name_enc;             /* Pyroscope: the URL-encoded name{labels} */
	char shown_url[LP_URL_MAX]; /* the URL as logged: without user:password@ */
	int failures;               /* consecutive failed attempts, any profile */
	uint64_t retry_at;          /* CLOCK_MONOTONIC: nothing is sent before */
	uint64_t rng;
	uint64_t n_delivered, n_spooled, n_lost;
	unsigned spooled_unlogged;  /* spooled since the last summary line */
	const char *spool_reason;   /* of the last one */
	uint64_t spool_logged_at, reject_logged_at;
	long reject_logged_status;
	int streak_logged;          /* the current failure streak was reported */
	int batch;                  /* spooling everything: one summary line at the end */
} up;

/* ---- policy (pure) --------------------------------------------------------- */

enum lp_verdict lp_upload_verdict(enum lp_protocol proto, int curl_rc, long status)
{
	switch (curl_rc) {
	case CURLE_OK:
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_LOGIN_DENIED:
		return LP_REJECTED;         /* configuration: retrying cannot help */
	default:
		return LP_RETRY;            /* refused, timed out, reset, DNS ... */
	}
	if (status >= 200 && status < 300)
		return LP_DELIVERED;
	if (status == 429)
		return LP_RETRY;
	if (proto == LP_PROTO_OTLP)         /* OTLP/HTTP: only these are retryable */
		return status == 502 || status == 503 || status == 504 ? LP_RETRY : LP_REJECTED;
	return status >= 500 && status < 600 ? LP_RETRY : LP_REJECTED;
}

uint32_t lp_upload_backoff_ms(int failures, long retry_after_ms, uint32_t random)
{
	if (retry_after_ms >= 0)
		return (uint32_t)(retry_after_ms < RETRY_AFTER_MAX_MS ? retry_after_ms
								       : RETRY_AFTER_MAX_MS);
	int doublings = failures < 1 ? 0 : failures - 1 > 5 ? 5 : failures - 1;
	uint32_t ceiling = BACKOFF_BASE_MS << doublings;
	if (ceiling > BACKOFF_CAP_MS)
		ceiling = BACKOFF_CAP_MS;
	return random % (ceiling + 1);  /* full jitter */
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int at_end(const char *p)
{
	p = skip_space(p);
	return !*p || *p == '\r' || *p == '\n';
}

long lp_upload_retry_after_ms(const char *v, int64_t now_s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = skip_space(v);
	if (*p >= '0' && *p <= '9') {           /* delay-seconds */
		long s = 0;
		for (; *p >= '0' && *p <= '9'; p++)
			s = s < 100000000 ? s * 10 + (*p - '0') : s;
		return at_end(p) ? s * 1000 : -1;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	struct tm tm = { 0 };
	char mon[4];
	int used = 0;
	if (strlen(p) < 29 || p[3] != ',' ||
	    sscanf(p + 4, " %2d %3s %4d %2d:%2d:%2d GMT%n", &tm.tm_mday, mon, &tm.tm_year,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || !used || !at_end(p + 4 + used))
		return -1;
	const char *m = strstr(months, mon);
	if (strlen(mon) != 3 || !m || (m - months) % 3)
		return -1;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year -= 1900;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return t > now_s ? (long)(t - now_s) * 1000 : 0;
}

/* google.rpc.Status.message (field 2) of an OTLP error body, or NULL. */
static const uint8_t *status_message(const uint8_t *p, size_t len, size_t *msg_len)
{
	const uint8_t *end = p + len;
	while (p < end) {
		uint64_t tag = 0, v = 0;
		for (int shift = 0; p < end && shift < 64; shift += 7) {
			tag |= (uint64_t)(*p & 0x7f) << shift;
			if (!(*p++ & 0x80))
				break;
		}
		if ((tag & 7) == 0) {
			while (p < end && (*p++ & 0x80))
				;
		} else if ((tag & 7) == 2) {
			for (int shift = 0; p < end && shift < 64; shift += 7) {
				v |= (uint64_t)(*p & 0x7f) << shift;
				if (!(*p++ & 0x80))
					break;
			}
			if (v > (uint64_t)(end - p))
				return NULL;
			if (tag >> 3 == 2) {
				*msg_len = (size_t)v;
				return p;
			}
			p += v;
		} else {
			p += (tag & 7) == 1 ? 8 : (tag & 7) == 5 ? 4 : (size_t)(end - p);
		}
	}
	return NULL;
}

void lp_upload_reason(const uint8_t *body, size_t len, int otlp, char *out, size_t size)
{
	size_t n = 0, msg_len = 0;
	int binary = 0;
	for (size_t i = 0; i < len && !binary; i++)
		binary = body[i] < ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n';
	if (binary) {
		const uint8_t *msg = otlp ? status_message(body, len, &msg_len) : NULL;
		body = msg;
		len = msg ? msg_len : 0;
	}
	for (size_t i = 0; i < len && body[i] != '\r' && body[i] != '\n' && n + 1 < size; i++)
		out[n++] = body[i] >= ' ' && body[i] < 0x7f ? (char)body[i] : '?';
	if (size)
		out[n] = '\0';
	if (!n)
		lp_fmt(out, size, "no reason given");
}

/* ---- the queue ----------------------------------------------------------------- */

static void item_free(struct item *it)
{
	if (it->pprof < it->body || it->pprof >= it->body + it->body_len)
		free(it->pprof);
	free(it->body);
	free(it->url);
	free(it);
}

static void unqueue(int i)
{
	up.bytes -= up.q[i]->bytes;
	memmove(&up.q[i], &up.q[i + 1], (size_t)(up.n - i - 1) * sizeof(up.q[0]));
	up.n--;
}

static void log_spooled(uint64_t now, int force)
{
	if (!up.spooled_unlogged ||
	    (!force && up.spool_logged_at && now - up.spool_logged_at < LOG_EVERY_NS))
		return;
	lp_log(LP_LOG_WARN, "%u profile%s not delivered (%s): written to %s instead; %llu so far",
	       up.spooled_unlogged, up.spooled_unlogged > 1 ? "s" : "", up.spool_reason,
	       lp_exporter_dir(), (unsigned long long)up.n_spooled);
	up.spooled_unlogged = 0;
	up.spool_logged_at = now;
}

/* Writes a profile that is not delivered as a file, and counts it. */
static void write_file(const char *type, const uint8_t *gz, size_t len, const char *reason)
{
	int rc = lp_exporter_spool(type, gz, len);
	if (rc == 0) {
		up.n_spooled++;
		up.spooled_unlogged++;
		up.spool_reason = reason;
		lp_log(LP_LOG_DEBUG, "upload: spooled a %s profile (%s)", type, reason);
	} else {
		up.n_lost++;
		lp_log(LP_LOG_WARN, "a %s profile was not delivered (%s) and cannot be written to "
		       "a file either (%s): it is lost", type, reason, strerror(-rc));
	}
	if (!up.batch)
		log_spooled(lp_now_ns(CLOCK_MONOTONIC), 0);
}

/* Spools the profile of queue entry i (abandoning its transfer) and forgets it. */
static void spool(int i, const char *reason)
{
	struct item *it = up.q[i];
	if (it->slot >= 0) {
		lp_http_abort(it->slot);
		up.slot_busy[it->slot] = 0;
	}
	unqueue(i);
	write_file(it->type, it->pprof, it->pprof_len, reason);
	item_free(it);
}

static int oldest_waiting(void)
{
	for (int i = 0; i < up.n; i++)
		if (up.q[i]->slot < 0)
			return i;
	return -1;
}

/* Spools the oldest waiting profiles until bytes more fit; 0 when they do. */
static int make_room(size_t bytes)
{
	while (up.n >= up.cap || up.bytes + bytes > (size_t)lp.cfg.opt_upload_queue_bytes) {
		int i = oldest_waiting();
		if (i < 0)
			return -ENOSPC;
		spool(i, "the upload queue was full");
	}
	return 0;
}

/* The URL without the credentials it may hold (scheme://user:password@host). */
static void shown_url(const char *url, char *out, size_t size)
{
	const char *host = strstr(url, "://"), *at, *end;
	host = host ? host + 3 : url;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at)
		lp_fmt(out, size, "%.*s%s", (int)(host - url), url, at + 1);
	else
		lp_fmt(out, size, "%s", url);
}

static int start(void)
{
	shown_url(lp.cfg.opt_url, up.shown_url, sizeof(up.shown_url));
	if (lp_http_init() < 0)
		return -1;
	up.cap = lp.cfg.opt_upload_queue;
	up.q = calloc((size_t)up.cap + 1, sizeof(*up.q));  /* + 1: see lp_upload_enqueue */
	if (!up.q)
		return -1;
	if (lp.cfg.opt_protocol == LP_PROTO_PYROSCOPE) {
		size_t size = LP_NAME_MAX + LP_LIST_MAX + 64;
		char *name = malloc(size);
		up.name_enc = malloc(size * 3);
		if (!name || !up.name_enc) {
			free(name);
			return -1;
		}
		lp_pyroscope_name(lp.service, lp.cfg.opt_resource, lp.cfg.opt_n_resource, name, size);
		lp_url_encode(name, up.name_enc, size * 3);
		free(name);
	}
	up.rng = lp_now_ns(CLOCK_REALTIME) ^ ((uint64_t)lp.pid << 32) ^ 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < LP_HTTP_SLOTS; i++)
		up.slot_busy[i] = 0;
	lp_log(LP_LOG_INFO, "streaming profiles to %s (%s)", up.shown_url,
	       lp.cfg.opt_protocol == LP_PROTO_OTLP ? "OTLP" : "Pyroscope");
	return 1;
}

int lp_upload_ready(void)
{
	if (up.state == 0)
		up.state = start() > 0 ? 1 : -1;
	return up.state > 0;
}

/* Fills it from the profile; 0 or a negative errno (nothing to free then). */
static int build(struct item *it, const struct lp_profile_desc *d, uint8_t *gz, size_t gz_len,
		 uint8_t *body, size_t body_len)
{
	if (lp.cfg.opt_protocol == LP_PROTO_OTLP) {
		if (!body)
			return -EINVAL;
		it->body = body;
		it->body_len = body_len;
		it->pprof = gz;
		lp_fmt(it->content_type, sizeof(it->content_type), "application/x-protobuf");
		it->bytes = body_len + gz_len;
		return 0;
	}
	size_t off;
	int rc = lp_pyroscope_request(lp.cfg.opt_url, up.name_enc, d, gz, gz_len, &it->url,
				      &it->body, &it->body_len, &off, it->content_type,
				      sizeof(it->content_type));
	if (rc < 0)
		return rc;
	it->pprof = it->body + off;
	it->bytes = it->body_len + strlen(it->url);
	free(gz);
	return 0;
}

void lp_upload_enqueue(const char *type, const struct lp_profile_desc *d, uint8_t *gz,
		       size_t gz_len, uint8_t *body, size_t body_len)
{
	lp_log(LP_LOG_DEBUG, "upload: new %s profile, %zu bytes", type, gz_len);
	struct item *it = calloc(1, sizeof(*it));
	int rc = it ? build(it, d, gz, gz_len, body, body_len) : -ENOMEM;
	if (rc < 0) {                       /* written now, as the file sink would */
		free(body);
		free(it);
		write_file(type, gz, gz_len, "it could not be prepared for upload");
		free(gz);
		return;
	}
	lp_fmt(it->type, sizeof(it->type), "%s", type);
	it->pprof_len = gz_len;
	it->slot = -1;
	it->queued_ns = lp_now_ns(CLOCK_MONOTONIC);
	if (it->bytes > (size_t)lp.cfg.opt_upload_queue_bytes || make_room(it->bytes) < 0) {
		up.q[up.n++] = it;          /* the cap's slack is one entry: spooled at once */
		up.bytes += it->bytes;
		spool(up.n - 1, it->bytes > (size_t)lp.cfg.opt_upload_queue_bytes
			      ? "larger than LIBPROF_UPLOAD_QUEUE_BYTES" : "the upload queue was full");
		return;
	}
	up.q[up.n++] = it;
	up.bytes += it->bytes;
}

/* ---- transfers ------------------------------------------------------------------- */

static uint32_t random32(void)
{
	up.rng ^= up.rng << 13;
	up.rng ^= up.rng >> 7;
	up.rng ^= up.rng << 17;
	return (uint32_t)(up.rng >> 16);
}

static int in_flight(void)
{
	int n = 0;
	for (int i = 0; i < LP_HTTP_SLOTS; i++)
		n += up.slot_busy[i];
	return n;
}

/* Starts transfers for waiting profiles, oldest first: several at once while
 * the collector answers, one at a time while it fails (a probe). */
static void start_due(uint64_t now)
{
	int max = up.failures ? 1 : LP_HTTP_SLOTS, busy = in_flight();
	if (now < up.retry_at)
		return;
	for (int i = 0; i < up.n && busy < max; i++) {
		struct item *it = up.q[i];
		int slot = 0;
		if (it->slot >= 0)
			continue;
		while (up.slot_busy[slot])
			slot++;
		if (lp_http_start(slot, it->url ? it->url : lp.cfg.opt_url, it->body, it->body_len,
				  it->content_type) < 0)
			return;             /* out of memory: tried again at the next step */
		it->slot = slot;
		up.slot_busy[slot] = 1;
		busy++;
	}
}

static int find_slot(int slot)
{
	for (int i = 0; i < up.n; i++)
		if (up.q[i]->slot == slot)
			return i;
	return -1;
}

static void delivered(int i, const struct lp_http_result *r, uint64_t now)
{
	struct item *it = up.q[i];
	long long rejected;
	char msg[200];
	if (lp.cfg.opt_protocol == LP_PROTO_OTLP && r->resp_len &&
	    lp_otlp_partial_success(r->resp, r->resp_len, &rejected, msg, sizeof(msg)))
		lp_log(LP_LOG_WARN, "%s accepted a %s profile in part: %lld rejected (%s)",
		       up.shown_url, it->type, rejected, msg[0] ? msg : "no reason given");
	if (up.failures)
		lp_log(up.streak_logged ? LP_LOG_WARN : LP_LOG_DEBUG,
		       "delivering profiles to %s again, after %d failed attempts",
		       up.shown_url, up.failures);
	up.failures = 0;
	up.retry_at = 0;
	up.streak_logged = 0;
	up.n_delivered++;
	lp_log(LP_LOG_DEBUG, "upload: delivered a %s profile (HTTP %ld, %llu ms after it was queued)",
	       it->type, r->status, (unsigned long long)((now - it->queued_ns) / MS));
	unqueue(i);
	item_free(it);
}

static void failed(int i, const struct lp_http_result *r, uint64_t now)
{
	struct item *it = up.q[i];
	char why[200];
	if (r->curl_rc)
		lp_fmt(why, sizeof(why), "%s", r->error);
	else
		lp_fmt(why, sizeof(why), "HTTP %ld", r->status);
	it->attempts++;
	up.failures++;
	long after = r->curl_rc ? -1 : lp_upload_retry_after_ms(r->retry_after,
							     (int64_t)time(NULL));
	uint32_t delay = lp_upload_backoff_ms(up.failures, after, random32());
	up.retry_at = now + delay * MS;
	if (!up.streak_logged) {
		lp_log(LP_LOG_WARN, "cannot deliver profiles to %s (%s); retrying with backoff, "
		       "keeping at most %d profiles or %lld bytes meanwhile", up.shown_url, why,
		       up.cap, (long long)lp.cfg.opt_upload_queue_bytes);
		up.streak_logged = 1;
	}
	lp_log(LP_LOG_DEBUG, "upload: attempt %d of a %s profile failed (%s); next attempt in %u ms",
	       it->attempts, it->type, why, delay);
	if (it->attempts >= MAX_ATTEMPTS)
		spool(i, "6 attempts failed");
}

static void rejected(int i, const struct lp_http_result *r, uint64_t now)
{
	char reason[200];
	if (r->curl_rc)
		lp_fmt(reason, sizeof(reason), "%s", r->error);
	else
		lp_upload_reason(r->resp, r->resp_len, lp.cfg.opt_protocol == LP_PROTO_OTLP,
				 reason, sizeof(reason));
	/* Each new kind of refusal is logged, the same one again once a minute. */
	int again = up.reject_logged_at && r->status == up.reject_logged_status &&
		    now - up.reject_logged_at < LOG_EVERY_NS;
	lp_log(again ? LP_LOG_DEBUG : LP_LOG_WARN, "%s%s refused a %s profile (%s%ld: %s); it is "
	       "not sent again", again ? "upload: " : "", up.shown_url, up.q[i]->type,
	       r->curl_rc ? "error " : "HTTP ", r->curl_rc ? (long)r->curl_rc : r->status, reason);
	if (!again) {
		up.reject_logged_status = r->status;
		up.reject_logged_at = now;
	}
	if (!r->curl_rc) {                  /* it answered: no reason to wait */
		up.failures = 0;
		up.retry_at = 0;
	}
	spool(i, r->curl_rc ? "refused by the TLS or URL set-up" : "refused by the collector");
}

static void collect(uint64_t now)
{
	struct lp_http_result r;
	while (lp_http_next_done(&r)) {
		up.slot_busy[r.slot] = 0;
		int i = find_slot(r.slot);
		if (i < 0)
			continue;
		up.q[i]->slot = -1;
		switch (lp_upload_verdict(lp.cfg.opt_protocol, r.curl_rc, r.status)) {
		case LP_DELIVERED:
			delivered(i, &r, now);
			break;
		case LP_RETRY:
			failed(i, &r, now);
			break;
		case LP_REJECTED:
			rejected(i, &r, now);
			break;
		}
	}
}

void lp_upload_step(void)
{
	if (up.state <= 0)
		return;
	uint64_t now = lp_now_ns(CLOCK_MONOTONIC);
	lp_http_perform();
	collect(now);
	int before = in_flight();
	start_due(now);
	if (in_flight() > before)
		lp_http_perform();          /* starts connecting now */
	log_spooled(now, 0);
}

int lp_upload_pending(void)
{
	return up.state > 0 && up.n > 0;
}

void lp_upload_wait(unsigned max_ms)
{
	uint64_t now = lp_now_ns(CLOCK_MONOTONIC);
	if (!in_flight() && up.retry_at > now && (up.retry_at - now) / MS < max_ms)
		max_ms = (unsigned)((up.retry_at - now) / MS) + 1;
	lp_http_poll((int)max_ms);
}

int lp_upload_flush_step(uint64_t deadline)
{
	if (up.state <= 0)
		return 0;
	lp_upload_step();
	uint64_t now = lp_now_ns(CLOCK_MONOTONIC);
	if (!up.n || now >= deadline || (!in_flight() && up.retry_at >= deadline))
		return 0;                   /* done, or nothing can finish in time */
	uint64_t left_ms = (deadline - now) / MS + 1;
	lp_upload_wait(left_ms < 100 ? (unsigned)left_ms : 100);
	return 1;
}

void lp_upload_spool_all(const char *reason)
{
	up.batch = 1;
	while (up.state > 0 && up.n > 0)
		spool(0, reason);
	up.batch = 0;
	log_spooled(lp_now_ns(CLOCK_MONOTONIC), 1);
}

uint64_t lp_upload_delivered(void)
{
	return up.n_delivered;
}

void lp_upload_wake(void)
{
	lp_http_wake();
}

void lp_upload_after_fork(void)
{
	/* The parent's queue and transfers are its own: abandoned here. */
	lp_http_after_fork();
	memset(&up, 0, sizeof(up));
}

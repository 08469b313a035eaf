/*
 * wrappers/ private: the W3C traceparent parser and the incremental HTTP/1.x
 * request-head scanner (traceparent.c) that the socket read wrappers feed with
 * the bytes a program reads from each connection. Pure code: no allocation, no
 * locks, no stdio, no logging, no errno changes. The wire facts are in
 * docs/wire-formats.md sections 4 and 6. Only the trace context is ever kept;
 * the one header line being read (at most LP_HTTP_LINE_MAX bytes) is the only
 * other byte of the program's data the scanner holds.
 */
#ifndef LP_WRAPPERS_TRACEPARENT_H
#define LP_WRAPPERS_TRACEPARENT_H

#include <stddef.h>
#include <stdint.h>

#include "../preload/preload.h"

/*
 * Parses a traceparent header value (value[0..len), not NUL-terminated; spaces
 * and tabs around it are allowed). On success fills out (trace-id, and the
 * parent-id as span_id) and returns 0; otherwise returns -EINVAL and leaves out
 * untouched. value may be NULL when len is 0. Async-signal-safe, no allocation.
 */
int lp_traceparent_parse(const char *value, size_t len, struct lp_labels *out) LP_MUST_CHECK;

/* ---- the HTTP/1.x request-head scanner ------------------------------------ */

#define LP_HTTP_LINE_MAX 256        /* longer header lines are skipped unread */
#define LP_HTTP_HEAD_MAX 8192       /* default bound of a request head */

/* What one feed reports (the return value of lp_http_scan_feed). */
enum lp_http_scan_result {
	LP_HTTP_NONE = 0,           /* no request head completed in this feed */
	LP_HTTP_CONTEXT = 1,        /* one completed with a valid traceparent */
	LP_HTTP_NO_CONTEXT = 2,     /* one completed (or was given up on) without */
};

/* Why a connection is left alone for good (lp_http_scan.ignored). */
enum lp_http_scan_ignore {
	LP_HTTP_IGN_NONE = 0,       /* still scanned */
	LP_HTTP_IGN_H2,             /* HTTP/2 connection preface */
	LP_HTTP_IGN_TLS,            /* TLS handshake record (0x16 0x03) */
	LP_HTTP_IGN_OTHER,          /* the first bytes are not an HTTP/1.x request line */
};

/* Where the scanner is (lp_http_scan.state). */
enum lp_http_scan_state {
	LP_HS_START,                /* a request line is expected (CR/LF before it skipped) */
	LP_HS_REQLINE,              /* inside the request line */
	LP_HS_HEADERS,              /* inside the header section */
	LP_HS_BODY,                 /* skipping a Content-Length body */
	LP_HS_CHUNK_SIZE,           /* chunked body: chunk-size digits */
	LP_HS_CHUNK_EXT,            /* chunked body: the rest of the chunk-size line */
	LP_HS_CHUNK_DATA,           /* chunked body: skipping chunk data */
	LP_HS_CHUNK_CRLF,           /* chunked body: the CRLF after chunk data */
	LP_HS_TRAILER,              /* chunked body: the trailer section */
	LP_HS_WAIT,                 /* lost: only a feed that starts with a request line resumes */
	LP_HS_IGNORED,              /* left alone for good (see ignored) */
};

/*
 * Per-connection scanner state: fixed size, no pointers, trivially copyable.
 * The fields are the scanner's own; a caller reads only lp_http_scan_ignored()
 * and may set head_max between feeds.
 *
 * Rules where HTTP leaves a choice (docs in traceparent.c's header comment):
 * - the first bytes of a connection that are not a request line (after any
 *   CR/LF) make it ignored for good, as do the HTTP/2 preface and a TLS record
 *   wherever a request line is expected;
 * - a body is skipped by Content-Length or by chunked framing; when its length
 *   is unknown or the framing is broken, and after a head given up on, the
 *   scanner waits: only a feed whose first bytes are a request line resumes.
 */
struct lp_http_scan {
	uint64_t body_left;         /* body or chunk bytes still to skip */
	uint64_t content_length;    /* this head's Content-Length */
	uint32_t head_len;          /* bytes of this head (or chunk line, trailers) so far */
	uint32_t head_max;          /* a longer head is given up on; init: LP_HTTP_HEAD_MAX */
	uint16_t line_len;          /* bytes of the current header line held in line[] */
	uint8_t state;              /* enum lp_http_scan_state */
	uint8_t ignored;            /* enum lp_http_scan_ignore */
	uint8_t flags;              /* this head's F_* bits (traceparent.c) */
	uint8_t phase;              /* request-line part */
	uint8_t pos;                /* progress inside the current part */
	uint8_t tp_state;           /* this head's traceparent: none, valid, invalid */
	uint8_t last_hdr;           /* the header an obs-fold line would continue */
	uint8_t started;            /* a request line was seen: a bad one now means "wait" */
	struct lp_labels tp;        /* this head's traceparent while tp_state is valid */
	char line[LP_HTTP_LINE_MAX]; /* the current header line while it spans feeds */
};

_Static_assert(sizeof(struct lp_http_scan) <= 512, "per-connection state must stay small");

/* A scanner for a new connection, before its first byte. Async-signal-safe. */
void lp_http_scan_init(struct lp_http_scan *s);

/*
 * Forgets where the scanner is, for a caller that could not feed some of the
 * connection's bytes (or starts in its middle): the request being read is
 * dropped without a report, and the next feed that starts with a request line
 * starts a request. No effect on an ignored connection. Async-signal-safe.
 */
void lp_http_scan_resync(struct lp_http_scan *s);

/*
 * Scans data[0..n), the next bytes the program read from the connection, in
 * order (bytes only peeked at with MSG_PEEK are not fed: they are read again).
 * Returns LP_HTTP_NONE when no request head ended in these bytes; otherwise
 * the outcome of the last head that ended in them: LP_HTTP_CONTEXT
 * with its trace context in *ctx, or LP_HTTP_NO_CONTEXT with *ctx zeroed (no
 * traceparent, an invalid one, two of them, or a head longer than head_max).
 * *ctx is written once, and only when the result is not LP_HTTP_NONE: pass a
 * local and publish it. Returns LP_HTTP_NONE at once on an ignored connection.
 * Never fails; time is linear in n, no allocation, async-signal-safe.
 */
int lp_http_scan_feed(struct lp_http_scan *s, const void *data, size_t n,
		      struct lp_labels *ctx);

/* Non-zero once the connection is left alone for good (h2, TLS, not HTTP/1.x):
 * the caller may stop feeding it. Async-signal-safe. */
static inline int lp_http_scan_ignored(const struct lp_http_scan *s)
{
	return s->ignored != LP_HTTP_IGN_NONE;
}

#endif

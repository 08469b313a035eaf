/*
 * The trace context of the HTTP/1.x request a connection carries: the W3C
 * traceparent parser and the incremental request-head scanner (API and
 * contracts in traceparent.h, wire facts in docs/wire-formats.md sections 4 and
 * 6). The socket read wrappers own the per-connection state and feed it; this
 * file only looks at bytes. Everything is bounded: one header line of at most
 * LP_HTTP_LINE_MAX bytes is the only data copied (and it is scrubbed once
 * read), a head longer than head_max is given up on, and every loop moves
 * forward through the caller's buffer.
 *
 * Where HTTP/1.1 (RFC 9112) leaves a choice, the choice errs towards losing a
 * context, never towards inventing one:
 * - Request line: METHOD SP target SP "HTTP/1." DIGIT, ended by CRLF or a bare
 *   LF. The method is an uppercase letter, then uppercase letters, digits, '-'
 *   or '_' (at most METHOD_MAX); the target is visible ASCII or obs-text. CR and
 *   LF before a request line are skipped (RFC 9112 section 2.2).
 * - A connection whose first bytes are not a request line speaks something else
 *   (or is the client side of HTTP, reading responses): ignored for good. So is
 *   one that shows the HTTP/2 preface or a TLS record (0x16 0x03) where a
 *   request line is expected, which also covers h2c upgrades and CONNECT.
 * - Header lines end at LF; a CR before it is dropped. A line longer than
 *   LP_HTTP_LINE_MAX is judged by its first LP_HTTP_LINE_MAX bytes and the rest
 *   skipped unread: a traceparent that long counts as invalid, a Content-Length
 *   or Transfer-Encoding that long makes the body length unknown. An obs-fold
 *   line continuing a traceparent invalidates it (it would change the value).
 * - Body: when the last transfer coding is chunked, its framing is followed
 *   (chunk sizes; extensions and trailers skipped unread); otherwise
 *   Content-Length (digits only, at most 18; repeated headers must agree);
 *   otherwise there is none. Any other Transfer-Encoding, a bad or conflicting
 *   length, broken chunk framing, a bad request line after a good one, and a
 *   head longer than head_max (reported as "no context") make the scanner
 *   "wait" (LP_HS_WAIT): the rest of that feed is skipped, and each later feed
 *   is looked at from its first byte only: a request line there resumes.
 *   Programs read a new request into a fresh buffer, so this resynchronises on
 *   keep-alive connections at the cost of one or two byte checks per feed.
 */
#include "traceparent.h"

#include <errno.h>
#include <string.h>

#define METHOD_MAX 24               /* longest registered method is 17 bytes */
#define CHUNK_LINE_MAX 1024         /* a chunk-size line, extensions included */
#define PREFACE_CHECK 12            /* "PRI * HTTP/2" tells the h2 preface apart */

/* lp_http_scan.flags: what this head said about itself. */
enum {
	F_HAS_CL = 1 << 0,          /* Content-Length seen (in content_length) */
	F_HAS_TE = 1 << 1,          /* Transfer-Encoding seen */
	F_CHUNKED = 1 << 2,         /* ... and its last coding is chunked */
	F_LEN_UNKNOWN = 1 << 3,     /* the body length cannot be trusted */
	F_LONG_LINE = 1 << 4,       /* the current header line outgrew line[] */
	F_PRI = 1 << 5,             /* the request line so far matches the h2 preface */
};

enum { RL_METHOD, RL_TLS, RL_TARGET, RL_VERSION };     /* lp_http_scan.phase */
enum { TP_NONE, TP_VALID, TP_INVALID };                /* lp_http_scan.tp_state */
enum { HDR_OTHER, HDR_TP, HDR_CL, HDR_TE };            /* lp_http_scan.last_hdr */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* The outcome of the last head that ended in the current feed. */
struct outcome {
	int result;                 /* enum lp_http_scan_result */
	struct lp_labels labels;
};

/* ---- traceparent values ------------------------------------------------------ */

static int is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Trace context fields are lowercase hex only: digit value + 1, 0 for any other byte. */
static const uint8_t hex_plus1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
	['f'] = 16,
};

static int lower_hex(unsigned char c)
{
	return hex_plus1[c] - 1;
}

/* Decodes 2 * n lowercase hex digits of s into out[0..n); -EINVAL on any other byte. */
static int hex_decode(const unsigned char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned hi = hex_plus1[s[2 * i]], lo = hex_plus1[s[2 * i + 1]];
		if (!hi || !lo)
			return -EINVAL;
		out[i] = (uint8_t)((hi - 1) << 4 | (lo - 1));
	}
	return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

/* Drops spaces and tabs around v[0..*len); v must not be NULL. */
static const unsigned char *trim_ows(const unsigned char *v, size_t *len)
{
	size_t n = *len;
	while (n && is_ows(*v)) {
		v++;
		n--;
	}
	while (n && is_ows(v[n - 1]))
		n--;
	*len = n;
	return v;
}

int lp_traceparent_parse(const char *value, size_t len, struct lp_labels *out)
{
	struct lp_labels l;
	uint8_t version, flags;

	if (len < 55)               /* trimming only shortens; also covers value == NULL */
		return -EINVAL;
	const unsigned char *v = trim_ows((const unsigned char *)value, &len);
	if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return -EINVAL;
	if (hex_decode(v, 1, &version) || version == 0xff ||
	    hex_decode(v + 3, 16, l.trace_id) || hex_decode(v + 36, 8, l.span_id) ||
	    hex_decode(v + 53, 1, &flags))
		return -EINVAL;
	/* Version 00 ends after the flags; a later version may append "-...". */
	if (len > 55 && (version == 0 || v[55] != '-'))
		return -EINVAL;
	if (all_zero(l.trace_id, sizeof(l.trace_id)) || all_zero(l.span_id, sizeof(l.span_id)))
		return -EINVAL;
	*out = l;
	return 0;
}

/* ---- header values -------------------------------------------------------------- */

/* name[0..n) equals lit (lowercase) ignoring ASCII case. */
static int name_is(const unsigned char *name, size_t n, const char *lit, size_t lit_len)
{
	if (n != lit_len)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + ('a' - 'A'));
		if (c != (unsigned char)lit[i])
			return 0;
	}
	return 1;
}

#define NAME_IS(name, n, lit) name_is(name, n, lit, sizeof(lit) - 1)

/* Content-Length: 1 to 18 digits (below 2^63), nothing else. */
static int parse_length(const unsigned char *v, size_t len, uint64_t *out)
{
	uint64_t x = 0;

	v = trim_ows(v, &len);
	if (len == 0 || len > 18)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

/* Transfer-Encoding: whether the last coding of the list is "chunked". */
static int last_coding_chunked(const unsigned char *v, size_t len)
{
	v = trim_ows(v, &len);
	if (len < 7 || !NAME_IS(v + len - 7, 7, "chunked"))
		return 0;
	size_t i = len - 7;
	while (i && is_ows(v[i - 1]))
		i--;
	return i == 0 || v[i - 1] == ',';
}

/* ---- state changes ------------------------------------------------------------ */

/* Scrubs the held line: no header byte outlives its line. */
static void forget_line(struct lp_http_scan *s)
{
	memset(s->line, 0, s->line_len);
	s->line_len = 0;
	s->flags &= (uint8_t)~F_LONG_LINE;
}

static void begin_head(struct lp_http_scan *s)
{
	s->state = LP_HS_REQLINE;
	s->phase = RL_METHOD;
	s->pos = 0;
	s->head_len = 0;
	forget_line(s);
	s->flags = F_PRI;
	s->tp_state = TP_NONE;
	s->last_hdr = HDR_OTHER;
	s->content_length = 0;
	memset(&s->tp, 0, sizeof(s->tp));
}

/* Lost track of the stream: skip the rest of this feed (see the file comment). */
static const unsigned char *lose_track(struct lp_http_scan *s, const unsigned char *end)
{
	forget_line(s);
	s->state = LP_HS_WAIT;
	s->started = 1;
	s->flags = 0;
	s->body_left = 0;
	memset(&s->tp, 0, sizeof(s->tp));
	return end;
}

static const unsigned char *ignore(struct lp_http_scan *s, enum lp_http_scan_ignore why,
				   const unsigned char *end)
{
	lose_track(s, end);
	s->state = LP_HS_IGNORED;
	s->ignored = (uint8_t)why;
	return end;
}

/* A head longer than head_max: the request is reported without a context. */
static const unsigned char *give_up(struct lp_http_scan *s, struct outcome *o,
				    const unsigned char *end)
{
	o->result = LP_HTTP_NO_CONTEXT;
	memset(&o->labels, 0, sizeof(o->labels));
	return lose_track(s, end);
}

/* The empty line: report this head and skip its body. */
static void end_head(struct lp_http_scan *s, struct outcome *o)
{
	unsigned f = s->flags;

	o->result = s->tp_state == TP_VALID ? LP_HTTP_CONTEXT : LP_HTTP_NO_CONTEXT;
	if (s->tp_state == TP_VALID)
		o->labels = s->tp;
	else
		memset(&o->labels, 0, sizeof(o->labels));
	memset(&s->tp, 0, sizeof(s->tp));
	s->head_len = 0;
	s->pos = 0;
	s->body_left = 0;
	if (f & F_HAS_TE)           /* it overrides Content-Length (RFC 9112 6.3) */
		s->state = (f & F_CHUNKED) && !(f & F_LEN_UNKNOWN) ? LP_HS_CHUNK_SIZE : LP_HS_WAIT;
	else if (f & F_LEN_UNKNOWN)
		s->state = LP_HS_WAIT;
	else if ((f & F_HAS_CL) && s->content_length) {
		s->state = LP_HS_BODY;
		s->body_left = s->content_length;
	} else
		s->state = LP_HS_START;
}

/* ---- the request line ------------------------------------------------------------ */

static const unsigned char *bad_request_line(struct lp_http_scan *s, const unsigned char *end)
{
	if ((s->flags & F_PRI) && s->head_len == PREFACE_CHECK)
		return ignore(s, LP_HTTP_IGN_H2, end);
	if (!s->started)
		return ignore(s, LP_HTTP_IGN_OTHER, end);
	return lose_track(s, end);
}

static int method_char(unsigned char c, int first)
{
	if (c >= 'A' && c <= 'Z')
		return 1;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '_');
}

/* Method and version byte by byte (short, every byte checked); the target, most
 * of the line, in a tight loop. */
static const unsigned char *scan_request_line(struct lp_http_scan *s, const unsigned char *p,
					      const unsigned char *end, struct outcome *o)
{
	static const char version[] = "HTTP/1.";

	for (; p < end; p++) {
		unsigned char c = *p;

		if (s->head_len >= s->head_max)
			return give_up(s, o, end);
		if (s->head_len < PREFACE_CHECK && c != (unsigned char)h2_preface[s->head_len])
			s->flags &= (uint8_t)~F_PRI;
		s->head_len++;
		switch (s->phase) {
		case RL_METHOD:
			if (method_char(c, s->pos == 0) && s->pos < METHOD_MAX) {
				s->pos++;
				continue;
			}
			if (c == ' ' && s->pos) {
				s->phase = RL_TARGET;
				s->pos = 0;
				continue;
			}
			if (c == 0x16 && s->head_len == 1) {
				s->phase = RL_TLS;
				continue;
			}
			return bad_request_line(s, end);
		case RL_TLS:
			if (c == 0x03)
				return ignore(s, LP_HTTP_IGN_TLS, end);
			return bad_request_line(s, end);
		case RL_TARGET:
			if (c > ' ' && c != 0x7f) {
				/* The target is most of the line: the rest of it in a tight
				 * loop, within the head's bound. A target of two bytes or
				 * more is not the h2 preface's "*". */
				size_t room = s->head_max - s->head_len;    /* head_len <= head_max */
				const unsigned char *q = p + 1;
				const unsigned char *stop = (size_t)(end - q) < room ? end : q + room;
				while (q < stop && *q > ' ' && *q != 0x7f)
					q++;
				if (q > p + 1)
					s->flags &= (uint8_t)~F_PRI;
				s->head_len += (uint32_t)(q - (p + 1));
				s->pos = 1;
				p = q - 1;
				continue;
			}
			if (c == ' ' && s->pos) {
				s->phase = RL_VERSION;
				s->pos = 0;
				continue;
			}
			return bad_request_line(s, end);
		default: /* RL_VERSION */
			if (s->pos < 7 ? c == (unsigned char)version[s->pos] :
			    s->pos == 7 ? c >= '0' && c <= '9' : s->pos == 8 && c == '\r') {
				s->pos++;
				continue;
			}
			if (c == '\n' && s->pos >= 8) {
				s->state = LP_HS_HEADERS;
				s->started = 1;
				s->flags &= (uint8_t)~F_PRI;
				return p + 1;
			}
			return bad_request_line(s, end);
		}
	}
	return p;
}

/* ---- header lines ------------------------------------------------------------------ */

/* One header line without its line end; truncated: only its first LP_HTTP_LINE_MAX bytes. */
static void header_line(struct lp_http_scan *s, const unsigned char *b, size_t len, int truncated)
{
	if (is_ows(b[0])) {         /* obs-fold: continues the previous field's value */
		if (s->last_hdr == HDR_TP)
			s->tp_state = TP_INVALID;
		else if (s->last_hdr != HDR_OTHER)
			s->flags |= F_LEN_UNKNOWN;
		return;
	}
	s->last_hdr = HDR_OTHER;
	const unsigned char *colon = memchr(b, ':', len);
	if (!colon)
		return;
	size_t n = (size_t)(colon - b);
	const unsigned char *v = colon + 1;
	size_t vlen = len - n - 1;

	if (NAME_IS(b, n, "traceparent")) {
		s->last_hdr = HDR_TP;
		if (s->tp_state == TP_NONE && !truncated &&
		    lp_traceparent_parse((const char *)v, vlen, &s->tp) == 0)
			s->tp_state = TP_VALID;
		else                /* invalid, too long, or a second one */
			s->tp_state = TP_INVALID;
	} else if (NAME_IS(b, n, "content-length")) {
		uint64_t cl = 0;
		s->last_hdr = HDR_CL;
		if (truncated || parse_length(v, vlen, &cl) ||
		    ((s->flags & F_HAS_CL) && cl != s->content_length)) {
			s->flags |= F_LEN_UNKNOWN;
		} else {
			s->content_length = cl;
			s->flags |= F_HAS_CL;
		}
	} else if (NAME_IS(b, n, "transfer-encoding")) {
		s->last_hdr = HDR_TE;
		s->flags |= F_HAS_TE;
		if (truncated)
			s->flags |= F_LEN_UNKNOWN;
		else if (last_coding_chunked(v, vlen))
			s->flags |= F_CHUNKED;
		else
			s->flags &= (uint8_t)~F_CHUNKED;
	}
}

/* A whole line b[0..len), LF excluded. Returns 1 for the empty line that ends the head. */
static int line_end(struct lp_http_scan *s, const unsigned char *b, size_t len)
{
	if (len > LP_HTTP_LINE_MAX) {
		header_line(s, b, LP_HTTP_LINE_MAX, 1);
		return 0;
	}
	if (len && b[len - 1] == '\r')
		len--;
	if (!len)
		return 1;
	header_line(s, b, len, 0);
	return 0;
}

/* Holds a line that spans feeds; one outgrowing line[] is judged now, the rest skipped. */
static void line_append(struct lp_http_scan *s, const unsigned char *p, size_t n)
{
	if (s->flags & F_LONG_LINE)
		return;
	size_t room = LP_HTTP_LINE_MAX - (size_t)s->line_len;
	if (n > room) {
		memcpy(s->line + s->line_len, p, room);
		s->line_len = LP_HTTP_LINE_MAX;
		header_line(s, (const unsigned char *)s->line, LP_HTTP_LINE_MAX, 1);
		s->flags |= F_LONG_LINE;
		return;
	}
	memcpy(s->line + s->line_len, p, n);
	s->line_len = (uint16_t)(s->line_len + n);
}

/* At most one line per call; lines inside one feed are read in place, not copied. */
static const unsigned char *scan_headers(struct lp_http_scan *s, const unsigned char *p,
					 const unsigned char *end, struct outcome *o)
{
	size_t room = s->head_len < s->head_max ? s->head_max - s->head_len : 0;
	size_t avail = (size_t)(end - p) < room ? (size_t)(end - p) : room;
	const unsigned char *nl = memchr(p, '\n', avail);
	int done;

	if (!nl) {
		if (avail == room)  /* no line end within the head's bound */
			return give_up(s, o, end);
		line_append(s, p, avail);
		s->head_len += (uint32_t)avail;
		return end;
	}
	size_t len = (size_t)(nl - p);
	s->head_len += (uint32_t)(len + 1);
	if (s->flags & F_LONG_LINE) {
		done = 0;
	} else if (s->line_len == 0) {
		done = line_end(s, p, len);
	} else {
		line_append(s, p, len);
		done = !(s->flags & F_LONG_LINE) &&
		       line_end(s, (const unsigned char *)s->line, s->line_len);
	}
	forget_line(s);
	if (done)
		end_head(s, o);
	return nl + 1;
}

/* ---- bodies -------------------------------------------------------------------------- */

static const unsigned char *skip_body(struct lp_http_scan *s, const unsigned char *p,
				      const unsigned char *end, enum lp_http_scan_state next)
{
	size_t n = (size_t)(end - p);
	if (n > s->body_left)
		n = (size_t)s->body_left;
	s->body_left -= n;
	if (!s->body_left) {
		s->state = (uint8_t)next;
		s->pos = 0;
	}
	return p + n;
}

static int any_hex(unsigned char c)
{
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return lower_hex(c);
}

static void chunk_size_done(struct lp_http_scan *s)
{
	s->head_len = 0;
	s->pos = 0;
	s->state = s->body_left ? LP_HS_CHUNK_DATA : LP_HS_TRAILER;
}

/* chunk-size = 1*HEXDIG, then extensions or the line end. */
static const unsigned char *scan_chunk_size(struct lp_http_scan *s, const unsigned char *p,
					    const unsigned char *end)
{
	for (; p < end; p++) {
		unsigned char c = *p;
		int d = any_hex(c);

		if (++s->head_len > CHUNK_LINE_MAX)
			return lose_track(s, end);
		if (d >= 0) {
			if (s->body_left >> 60)     /* one more digit would overflow */
				return lose_track(s, end);
			s->body_left = s->body_left << 4 | (uint64_t)d;
			s->pos = 1;
			continue;
		}
		if (!s->pos)
			return lose_track(s, end);
		if (c == '\n') {
			chunk_size_done(s);
			return p + 1;
		}
		if (c != ';' && c != '\r' && !is_ows(c))
			return lose_track(s, end);
		s->state = LP_HS_CHUNK_EXT;
		return p + 1;
	}
	return p;
}

/* The rest of a chunk-size line (extensions, CR), skipped to its LF. */
static const unsigned char *scan_chunk_ext(struct lp_http_scan *s, const unsigned char *p,
					   const unsigned char *end)
{
	size_t room = s->head_len < CHUNK_LINE_MAX ? CHUNK_LINE_MAX - s->head_len : 0;
	size_t avail = (size_t)(end - p) < room ? (size_t)(end - p) : room;
	const unsigned char *nl = memchr(p, '\n', avail);

	if (!nl) {
		if (avail == room)
			return lose_track(s, end);
		s->head_len += (uint32_t)avail;
		return end;
	}
	chunk_size_done(s);
	return nl + 1;
}

/* CRLF (or LF) after chunk data. */
static const unsigned char *scan_chunk_crlf(struct lp_http_scan *s, const unsigned char *p,
					    const unsigned char *end)
{
	if (*p == '\r' && s->pos == 0) {
		s->pos = 1;
		return p + 1;
	}
	if (*p != '\n')
		return lose_track(s, end);
	s->state = LP_HS_CHUNK_SIZE;
	s->head_len = 0;
	s->pos = 0;
	s->body_left = 0;
	return p + 1;
}

/* Trailer fields, skipped unread; the empty line ends the message. pos: 0 at a
 * line start, 1 after a CR there, 2 inside a line. Bounded by head_max. */
static const unsigned char *scan_trailer(struct lp_http_scan *s, const unsigned char *p,
					 const unsigned char *end)
{
	if (s->pos < 2) {
		if (s->head_len >= s->head_max)
			return lose_track(s, end);
		s->head_len++;
		if (*p == '\n')
			s->state = LP_HS_START;
		else
			s->pos = *p == '\r' && s->pos == 0 ? 1 : 2;
		return p + 1;
	}
	size_t room = s->head_len < s->head_max ? s->head_max - s->head_len : 0;
	size_t avail = (size_t)(end - p) < room ? (size_t)(end - p) : room;
	const unsigned char *nl = memchr(p, '\n', avail);
	if (!nl) {
		if (avail == room)
			return lose_track(s, end);
		s->head_len += (uint32_t)avail;
		return end;
	}
	s->head_len += (uint32_t)(nl - p + 1);
	s->pos = 0;
	return nl + 1;
}

/* ---- the scanner ------------------------------------------------------------------------ */

void lp_http_scan_init(struct lp_http_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->state = LP_HS_START;
	s->head_max = LP_HTTP_HEAD_MAX;
}

void lp_http_scan_resync(struct lp_http_scan *s)
{
	if (s->state != LP_HS_IGNORED)
		lose_track(s, NULL);
}

int lp_http_scan_feed(struct lp_http_scan *s, const void *data, size_t n, struct lp_labels *ctx)
{
	struct outcome o = { .result = LP_HTTP_NONE };

	if (s->state == LP_HS_IGNORED || n == 0)
		return LP_HTTP_NONE;
	const unsigned char *p = data, *end = p + n;
	if (s->state == LP_HS_WAIT)     /* a feed may start a new request */
		s->state = LP_HS_START;
	while (p < end) {
		switch (s->state) {
		case LP_HS_START:
			while (p < end && (*p == '\r' || *p == '\n'))
				p++;
			if (p < end)
				begin_head(s);
			break;
		case LP_HS_REQLINE:
			p = scan_request_line(s, p, end, &o);
			break;
		case LP_HS_HEADERS:
			p = scan_headers(s, p, end, &o);
			break;
		case LP_HS_BODY:
			p = skip_body(s, p, end, LP_HS_START);
			break;
		case LP_HS_CHUNK_SIZE:
			p = scan_chunk_size(s, p, end);
			break;
		case LP_HS_CHUNK_EXT:
			p = scan_chunk_ext(s, p, end);
			break;
		case LP_HS_CHUNK_DATA:
			p = skip_body(s, p, end, LP_HS_CHUNK_CRLF);
			break;
		case LP_HS_CHUNK_CRLF:
			p = scan_chunk_crlf(s, p, end);
			break;
		case LP_HS_TRAILER:
			p = scan_trailer(s, p, end);
			break;
		default:                /* LP_HS_WAIT, LP_HS_IGNORED: the rest is skipped */
			p = end;
			break;
		}
	}
	if (o.result != LP_HTTP_NONE)
		*ctx = o.labels;
	return o.result;
}

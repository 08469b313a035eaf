/*
 * The raw logger: a small printf subset formatted into a caller's buffer and
 * written to stderr with write(2). No malloc, no stdio, no locks, so it is safe
 * on failure paths, in forked children and in signal handlers. errno is kept.
 */
#include "preload.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

struct out {
	char *buf;
	size_t size, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_str(struct out *o, const char *s, long max)
{
	if (!s)
		s = "(null)";
	for (long i = 0; s[i] && (max < 0 || i < max); i++)
		put(o, s[i]);
}

/* v in base, at least width characters wide, as printf pads (a sign before
 * zeros, after spaces). */
static void put_num(struct out *o, unsigned long long v, int negative, unsigned base,
		    int width, char pad)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	width -= n + negative;
	if (negative && pad == '0')
		put(o, '-');
	while (width-- > 0)
		put(o, pad);
	if (negative && pad != '0')
		put(o, '-');
	while (n)
		put(o, tmp[--n]);
}

size_t lp_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			put(&o, *p);
			continue;
		}
		p++;
		char pad = ' ';
		int width = 0, lng = 0;
		long prec = -1;
		if (*p == '0')
			pad = '0';
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		if (*p == '.' && p[1] == '*') {
			prec = va_arg(ap, int);
			p += 2;
		}
		while (*p == 'l') {
			lng++;
			p++;
		}
		if (*p == 'z') {
			lng = 1;
			p++;
		}
		switch (*p) {
		case 's':
			put_str(&o, va_arg(ap, const char *), prec);
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 'd':
		case 'i': {
			long long v = lng ? (lng > 1 ? va_arg(ap, long long) : va_arg(ap, long))
					  : va_arg(ap, int);
			unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v
						       : (unsigned long long)v;
			put_num(&o, mag, v < 0, 10, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng ? (lng > 1 ? va_arg(ap, unsigned long long)
							     : va_arg(ap, unsigned long))
						   : va_arg(ap, unsigned);
			put_num(&o, v, 0, *p == 'x' ? 16 : 10, width, pad);
			break;
		}
		case 'p':
			put_str(&o, "0x", -1);
			put_num(&o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, ' ');
			break;
		case '%':
			put(&o, '%');
			break;
		default:
			put(&o, '?');
			if (!*p)
				p--;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len < size ? o.len : size ? size - 1 : 0;
}

size_t lp_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = lp_vfmt(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void lp_logv(enum lp_log_level level, const char *fmt, va_list ap)
{
	if (level < lp.cfg.opt_log || lp.cfg.opt_log == LP_LOG_OFF)
		return;
	int saved = errno;
	char line[1024];
	size_t n = lp_fmt(line, sizeof(line), "libprof: ");
	n += lp_vfmt(line + n, sizeof(line) - n - 1, fmt, ap);
	line[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0)
			off += (size_t)w;
	}
	errno = saved;
}

void lp_log(enum lp_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	lp_logv(level, fmt, ap);
	va_end(ap);
}

/*
 * The pull endpoint's variables: LIBPROF_PPROF_LISTEN, where the on-demand
 * pprof endpoint listens (unset: no socket is ever opened), and
 * LIBPROF_PPROF_TOKEN, the bearer token it then asks for. A bad value turns
 * the endpoint off with one warning: listening somewhere unintended, or
 * without the token the user asked for, is worse than not listening.
 * Only numeric addresses and "localhost" are accepted: resolving a name in a
 * constructor would load NSS modules into a program that may not expect it.
 */
#include "preload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

static int parse_port(const char *s, int *port)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 65535)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int lp_listen_parse(const char *text, int *family, unsigned char addr[16], int *port,
		    char *why, size_t why_size)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(text, ':'), *port_text = text;
	if (text[0] == '[') {                       /* [IPv6]:PORT */
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host)) {
			lp_fmt(why, why_size, "expected [IPv6]:PORT");
			return -EINVAL;
		}
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		port_text = close + 2;
	} else if (colon) {
		size_t n = (size_t)(colon - text);
		if (n >= sizeof(host)) {
			lp_fmt(why, why_size, "the host part is too long");
			return -EINVAL;
		}
		if (n) {
			memcpy(host, text, n);
			host[n] = '\0';
		}
		port_text = colon + 1;
	}
	if (parse_port(port_text, port) < 0) {
		lp_fmt(why, why_size, "the port must be a number from 0 to 65535");
		return -EINVAL;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, host, addr) == 1) {
		*family = AF_INET;
	} else if (inet_pton(AF_INET6, host, addr) == 1) {
		*family = AF_INET6;
	} else {
		lp_fmt(why, why_size, "the host must be a numeric IPv4 or IPv6 address or localhost");
		return -EINVAL;
	}
	return 0;
}

/* Printable ASCII without spaces: what a bearer token (RFC 6750 b64token) may hold. */
static int token_ok(const char *t)
{
	for (; *t; t++)
		if (*t <= ' ' || *t > '~')
			return 0;
	return 1;
}

void lp_config_pull_load(struct lp_config *cfg, char *const *envp, void (*warn)(const char *))
{
	cfg->opt_pprof_on = 0;
	cfg->opt_pprof_port = 0;
	cfg->opt_pprof_token[0] = '\0';
	const char *listen = lp_env_value(envp, "LIBPROF_PPROF_LISTEN");
	const char *token = lp_env_value(envp, "LIBPROF_PPROF_TOKEN");
	if (!listen) {
		if (token)
			lp_config_say(warn, "LIBPROF_PPROF_TOKEN is set but LIBPROF_PPROF_LISTEN is not; "
				      "no pprof endpoint is started");
		return;
	}
	char why[128];
	if (lp_listen_parse(listen, &cfg->opt_pprof_family, cfg->opt_pprof_addr,
			    &cfg->opt_pprof_port, why, sizeof(why)) < 0) {
		lp_config_say(warn, "LIBPROF_PPROF_LISTEN=\"%.*s%s\" is not a listen address (%s); "
			      "the pprof endpoint is off", strlen(listen) > 80 ? 80 : (int)strlen(listen),
			      listen, strlen(listen) > 80 ? "..." : "", why);
		return;
	}
	if (token && (strlen(token) >= sizeof(cfg->opt_pprof_token) || !token_ok(token))) {
		lp_config_say(warn, "LIBPROF_PPROF_TOKEN is not usable (%s); the pprof endpoint is off",
			      token_ok(token) ? "longer than 127 characters"
					      : "only printable ASCII without spaces is allowed");
		return;
	}
	if (token)
		strcpy(cfg->opt_pprof_token, token);
	cfg->opt_pprof_on = 1;
}

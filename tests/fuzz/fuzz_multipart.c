/*
 * libFuzzer target for the collector's multipart/form-data parser
 * (collector/ingest_pyroscope.c; `make fuzz`). The input's first line is the
 * Content-Type header value, the rest the body (seeds:
 * tests/fuzz/collector-seeds/multipart/). Checked: no crash or leak; every
 * part lies inside the body, parts do not overlap and come in order, names
 * are NUL-terminated; a `profile` part is then decoded as pprof.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct lp_part parts[LP_MAX_PARTS];
	char ct[512], why[160];
	const uint8_t *body, *prev_end;
	size_t n = 0, len;

	lp_log_level = LP_LOG_OFF;
	if (!nl || (size_t)(nl - data) >= sizeof(ct))
		return 0;
	memcpy(ct, data, (size_t)(nl - data));
	ct[nl - data] = 0;
	/* a copy of exactly the body's size, so reading past it is caught */
	len = size - (size_t)(nl - data) - 1;
	body = malloc(len ? len : 1);
	if (!body)
		return 0;
	memcpy((void *)body, nl + 1, len);
	if (lp_multipart_parse(ct, body, len, parts, LP_MAX_PARTS, &n, why, sizeof(why)) == 0) {
		prev_end = body;
		if (n == 0 || n > LP_MAX_PARTS)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (parts[i].data < prev_end || parts[i].data + parts[i].len > body + len ||
			    !memchr(parts[i].name, 0, sizeof(parts[i].name)))
				abort();
			prev_end = parts[i].data + parts[i].len;
			if (strcmp(parts[i].name, "profile") == 0) {
				Perftools__Profiles__Profile *p = NULL;

				if (lp_pprof_decode(parts[i].data, parts[i].len, 4u << 20, &p, why,
						    sizeof(why)) == 0)
					lp_pprof_free(p);
			}
		}
	}
	free((void *)body);
	return 0;
}

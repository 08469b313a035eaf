/*
 * libFuzzer target for the collector's OTLP -> pprof conversion
 * (collector/ingest_otlp.c; `make fuzz`). The input is an uncompressed
 * ExportProfilesServiceRequest (seeds: tests/fuzz/collector-seeds/otlp/).
 * Checked: conversion never crashes or leaks; every profile it accepts is a
 * pprof that passes the same check as ingested profiles (so the store never
 * holds one the merge or go tool pprof would refuse), and they merge.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "collector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_otlp_result res;
	struct lp_merge *m = NULL;
	struct lp_buf out = { 0 };
	char why[160];

	lp_log_level = LP_LOG_OFF;
	if (lp_otlp_convert(data, size, &res) == 0 && lp_merge_new(&m, NULL, 1000000) == 0) {
		for (size_t i = 0; i < res.n_profiles; i++) {
			Perftools__Profiles__Profile *p = NULL;
			const struct lp_otlp_profile *o = &res.profiles[i];

			if (!o->service || !o->labels_json ||
			    lp_pprof_decode(o->pprof.data, o->pprof.len, 1u << 30, &p, why,
					    sizeof(why))) {
				fprintf(stderr, "converted profile %zu is not valid: %s\n", i, why);
				abort();
			}
			(void)!lp_merge_add(m, p);
			lp_pprof_free(p);
		}
		(void)!lp_merge_finish(m, &out);
	}
	lp_merge_free(m);
	lp_buf_free(&out);
	lp_otlp_result_free(&res);
	return 0;
}

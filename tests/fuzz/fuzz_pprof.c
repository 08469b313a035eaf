/*
 * libFuzzer target for the collector's pprof reading and merging
 * (collector/pprof.c, collector/pprof_merge.c; `make fuzz`). The input is a
 * pprof profile, gzip or not (seeds: tests/fuzz/collector-seeds/pprof/).
 * Checked: decoding never crashes or leaks; a profile that passes the check
 * merges (alone, twice, and filtered to its first trace) into a profile that
 * itself decodes and passes the check, with no more distinct samples than the
 * input has samples; and its flame-graph tree (collector/flamegraph.c) is built
 * within the node cap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "collector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void merged_ok(const Perftools__Profiles__Profile *p, const char *trace, int twice)
{
	struct lp_merge *m = NULL;
	struct lp_buf out = { 0 };
	Perftools__Profiles__Profile *back = NULL;
	char why[160];
	int err;

	if (lp_merge_new(&m, trace, 1000000))
		abort();
	err = lp_merge_add(m, p);
	if (!err && twice)
		err = lp_merge_add(m, p);
	if (!err) {
		if (lp_merge_n_samples(m) > p->n_sample)
			abort();
		err = lp_merge_finish(m, &out);
	}
	if (!err) {
		if (lp_pprof_decode(out.data, out.len, 1u << 30, &back, why, sizeof(why))) {
			fprintf(stderr, "merged profile does not decode: %s\n", why);
			abort();
		}
		lp_pprof_free(back);
	}
	lp_buf_free(&out);
	lp_merge_free(m);
}

static void flame_ok(const Perftools__Profiles__Profile *p, int value_index)
{
	static const size_t caps[] = { 2, 16, 100000 };
	struct lp_flame_stats st;
	struct lp_buf out = { 0 };

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		out.len = 0;
		if (lp_flamegraph_json(p, value_index, caps[i], &out, &st) == 0 &&
		    (st.n_sent > caps[i] || !out.len ||
		     out.data[0] != '{' || out.data[out.len - 1] != '}'))
			abort();
	}
	lp_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Perftools__Profiles__Profile *p = NULL;
	struct lp_pprof_info info;
	struct lp_trace_total *traces = NULL;
	size_t n = 0;
	char why[160];

	lp_log_level = LP_LOG_OFF;
	if (lp_pprof_decode(data, size, 4u << 20, &p, why, sizeof(why)))
		return 0;
	lp_pprof_info(p, &info);
	if (info.value_index < 0 || (size_t)info.value_index >= p->n_sample_type)
		abort();
	if (lp_pprof_trace_totals(p, info.value_index, &traces, &n) == 0) {
		merged_ok(p, NULL, 0);
		merged_ok(p, NULL, 1);
		if (n)
			merged_ok(p, traces[0].trace_id, 0);
		flame_ok(p, info.value_index);
	}
	free(traces);
	lp_pprof_free(p);
	return 0;
}

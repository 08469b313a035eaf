/*
 * exporter/ private interfaces: the aggregation table (table.c), the pprof
 * encoder (pprof.c), gzip and the file sink (sink_file.c).
 */
#ifndef LP_EXPORTER_INTERNAL_H
#define LP_EXPORTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../preload/preload.h"
#include "../unwinder/unwinder.h"

#define LP_MAX_VALUES 4

/* ---- aggregation table (table.c) ------------------------------------------ */

struct lp_stack {
	uint64_t hash;
	const uint64_t *pcs;        /* leaf first; points into the table's arena */
	uint16_t depth;
	uint16_t truncated;
	struct lp_labels labels;
	int64_t values[LP_MAX_VALUES];
};

struct lp_table;

/* A table holding at most max_stacks distinct (stack, labels). NULL on ENOMEM. */
struct lp_table *lp_table_new(size_t max_stacks);
/*
 * Adds values to the entry of (pcs, depth, truncated, labels), creating it.
 * Returns 0, or -ENOSPC when the table is full (the sample is counted in
 * n_dropped) or -ENOMEM.
 */
int lp_table_add(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		 const struct lp_labels *labels, const int64_t *values, int n_values)
	__attribute__((warn_unused_result));
/* The index of the entry of (pcs, depth, truncated, labels), created with zero
 * values when missing; -ENOSPC or -ENOMEM like lp_table_add. */
int lp_table_intern(struct lp_table *t, const uint64_t *pcs, int depth, int truncated,
		    const struct lp_labels *labels) __attribute__((warn_unused_result));
size_t lp_table_count(const struct lp_table *t);
/* The entry at i; the pointer is valid until the next lp_table_add or reset. */
const struct lp_stack *lp_table_get(const struct lp_table *t, size_t i);
/* The number of frames stored over all entries. */
size_t lp_table_frames(const struct lp_table *t);
/* Samples refused because the table was full since the last reset. */
uint64_t lp_table_dropped(const struct lp_table *t);
/* Empties the table, keeping its memory. */
void lp_table_reset(struct lp_table *t);
void lp_table_free(struct lp_table *t);

/* ---- heap profiles (heapprof.c) ------------------------------------------- */

struct lp_heapprof;

/* At most max_live live blocks and max_stacks stacks; rate is the sampling
 * rate in bytes; is_live says whether a recorded block is still allocated
 * (consulted whenever the live list fills). NULL on ENOMEM. */
struct lp_heapprof *lp_heapprof_new(size_t max_live, size_t max_stacks, int64_t rate,
				    int (*is_live)(uint64_t addr, uint64_t seq));
void lp_heapprof_free(struct lp_heapprof *h);
/* A sampled allocation (LP_SAMPLE_ALLOC) from the ring. */
void lp_heapprof_add(struct lp_heapprof *h, const struct lp_sample *s);
/* Forgets the blocks is_live() says were freed. */
void lp_heapprof_prune(struct lp_heapprof *h, int (*is_live)(uint64_t addr, uint64_t seq));
/* The profile's table: [alloc_objects, alloc_space, inuse_objects, inuse_space]
 * per stack. Owned by h, valid until the next build. */
const struct lp_table *lp_heapprof_build(struct lp_heapprof *h);
/* Nothing allocated this interval and nothing live. */
int lp_heapprof_empty(const struct lp_heapprof *h);
/* Samples dropped since the last call (tables full). */
uint64_t lp_heapprof_take_dropped(struct lp_heapprof *h);
/* Starts the next interval's allocation counts. */
void lp_heapprof_end_interval(struct lp_heapprof *h);

/* ---- pprof encoding (pprof.c) --------------------------------------------- */

struct lp_profile_desc {
	int n_types;
	const char *types[LP_MAX_VALUES][2];   /* {type, unit} per value */
	const char *period_type[2];
	int64_t period;
	int64_t time_nanos, duration_nanos;
	const char *default_type;
	const char *comments[4];
	int n_comments;
};

/*
 * Encodes the table as an uncompressed pprof Profile. maps and sym may be NULL
 * (no mappings, no names). *out is malloc'd and owned by the caller.
 * Returns 0 or a negative errno.
 */
int lp_pprof_encode(const struct lp_table *t, const struct lp_profile_desc *d,
		    const struct lp_maps *maps, struct lp_symbolizer *sym,
		    uint8_t **out, size_t *len) __attribute__((warn_unused_result));

/* ---- gzip and the file sink (sink_file.c) ---------------------------------- */

/* gzip-compresses in; *out malloc'd. 0 or a negative errno. */
int lp_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
	__attribute__((warn_unused_result));

/*
 * Chooses the output directory (cfg value, else the default with its fallback),
 * creating it 0700 and refusing one that belongs to another user. Writes the
 * chosen path into dir. 0 or a negative errno (a warning was logged).
 */
int lp_sink_choose_dir(const char *wanted, char *dir, size_t size)
	__attribute__((warn_unused_result));

/*
 * Writes data as <dir>/<service>.<pid>.<type>.<seq>.pb.gz atomically (temporary
 * name, then a rename that never replaces), bumping *seq past existing names.
 * 0 or a negative errno.
 */
int lp_sink_write(const char *dir, const char *service, int pid, const char *type,
		  unsigned *seq, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));

#endif

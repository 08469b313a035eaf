/*
 * unwinder/ private: what unwind.c (the walk, libunwind's stepper) and cfi.c
 * (the frame-rule cache) share.
 */
#ifndef LP_UNWINDER_INTERNAL_H
#define LP_UNWINDER_INTERNAL_H

#include "unwinder.h"

#define N_OBJECTS 8

/* One stack walk: where memory may be read directly, the rest goes through
 * process_vm_readv (unwind.c). */
struct walk {
	const ucontext_t *uc;
	uintptr_t stack_lo, stack_hi;
	uintptr_t obj_lo[N_OBJECTS], obj_hi[N_OBJECTS];
	int n_obj;
	pid_t pid;
};

/* Reads the word at addr for the walk: 0, or -1 when it is not readable.
 * Async-signal-safe. */
int lp_walk_read(const struct walk *w, uintptr_t addr, uint64_t *val);

struct dl_find_object;

/* The sorted table of fo's .eh_frame_hdr (entries of two datarel sdata4 words:
 * a function's start, its FDE) and its length: 0, or -1 when it has none that
 * can be searched. Async-signal-safe. */
int lp_eh_table(const struct dl_find_object *fo, const uint8_t **table, uint64_t *count);

/*
 * The fast walk (cfi.c): frame rules from the object's .eh_frame, read once per
 * pc and kept in a lock-free cache. Fills pcs like lp_unwind_capture, from the
 * registers rip, rsp and rbp; exact_leaf says rip is an interrupted pc (a
 * signal's) rather than a return address. Returns the number of frames, or -1
 * when some frame needs more than the cache's rules can say (no unwind info, a
 * CFA other than rsp/rbp + offset, a signal frame, a bad read): the caller then
 * walks the whole stack with libunwind. Async-signal-safe.
 */
int lp_cfi_walk(const struct walk *w, uint64_t rip, uint64_t rsp, uint64_t rbp, int exact_leaf,
		uint64_t *pcs, int max, int *truncated);

#endif

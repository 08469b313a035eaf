/*
 * unwinder/ API: stack capture (signal-safe, libunwind), the program's mappings
 * with build ids, and symbolization (elfutils' libdwfl) for the exporter.
 */
#ifndef LP_UNWINDER_H
#define LP_UNWINDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <ucontext.h>

/* ---- capture (unwind.c) ---------------------------------------------------- */

/* Non-zero while this thread walks a stack: libunwind then blocks and restores
 * signals around its cache lock, which libprof's signal-mask wrappers skip
 * (nothing of libprof's can re-enter the walk: its handler drops the sample). */
extern __thread int lp_unwinding __attribute__((tls_model("initial-exec")));

/* Once at load, before any capture. Returns 0 or a negative errno. */
int lp_unwind_init(void) __attribute__((warn_unused_result));

/* In a forked child, before any capture. */
void lp_unwind_after_fork(void);

/*
 * Walks the stack interrupted at uc: pcs[0] is the interrupted pc, later entries
 * are return addresses. Reads memory only where it is known to be mapped (the
 * thread's stack, loaded objects) or through process_vm_readv, so a corrupt
 * stack ends the walk instead of faulting. Opens no file descriptor.
 * Returns the number of frames; *truncated is set when max was reached.
 * Async-signal-safe.
 */
int lp_unwind_capture(const ucontext_t *uc, uintptr_t stack_lo, uintptr_t stack_hi,
		      uint64_t *pcs, int max, int *truncated);

/*
 * The same from the caller's own context (a wrapper, not a signal): the
 * frames inside libprof are left out; pcs[0] is an address inside the
 * program's call into libprof (return address - 1), the rest return addresses.
 * Not async-signal-safe (getcontext).
 */
int lp_unwind_capture_here(uintptr_t stack_lo, uintptr_t stack_hi, uint64_t *pcs, int max,
			   int *truncated);

/* Forgets every cached frame rule (cfi.c): code was unloaded, and other code
 * may come to the same addresses. Async-signal-safe. */
void lp_unwind_forget(void);

/* Walks done from cached frame rules, walks handed to libunwind, and frame
 * rules read from .eh_frame, since load. Async-signal-safe. */
void lp_unwind_stats(uint64_t *fast_walks, uint64_t *slow_walks, uint64_t *rules_read);

/* on = 0: every walk goes through libunwind (tests compare the two paths). */
void lp_unwind_use_cache(int on);

/* ---- mappings (maps.c) -------------------------------------------------------- */

struct lp_mapping {
	uint64_t start, limit, offset;
	char *path;                 /* "" for anonymous; owned by the table */
	char *build_id;             /* hex, "" when unknown; owned by the table */
	unsigned char has_functions, has_filenames, has_lines, has_inline;
};

struct lp_maps {
	struct lp_mapping *v;
	size_t n;
	uint64_t digest;            /* changes when the executable mappings change */
};

/*
 * Reads the executable mappings of this process; the main program's first.
 * Build ids of files already in prev (may be NULL) are reused.
 * Returns 0 or a negative errno; on failure *m is empty. Not async-signal-safe.
 */
int lp_maps_read(struct lp_maps *m, const struct lp_maps *prev, const char *exe_path) __attribute__((warn_unused_result));
void lp_maps_free(struct lp_maps *m);
/* The mapping holding addr, or -1. */
int lp_maps_find(const struct lp_maps *m, uint64_t addr);

/* ---- symbolization (symbolize.c) --------------------------------------------- */

struct lp_frame {
	const char *name;           /* demangled; never NULL when n > 0 */
	const char *system_name;    /* as in the symbol table */
	const char *file;           /* NULL when unknown */
	int line;                   /* 0 when unknown */
};

#define LP_MAX_INLINE 8

/* What one address symbolizes to: the innermost inlined frame first, the real
 * function last. n == 0: nothing is known about the address. */
struct lp_symbol {
	int n;
	struct lp_frame frames[LP_MAX_INLINE];
};

struct lp_symbolizer;

/* A symbolizer with an address cache of at most max_entries. NULL on ENOMEM. */
struct lp_symbolizer *lp_sym_new(size_t max_entries);
/*
 * Symbolizes addr (the pc itself for a leaf, pc - 1 for a return address).
 * Misses map the program's files (no descriptor stays open); hits touch no
 * file. The result lives until lp_sym_clear or lp_sym_free. Never NULL.
 * Not async-signal-safe; exporter thread only.
 */
const struct lp_symbol *lp_sym_lookup(struct lp_symbolizer *s, uint64_t addr);
/* Makes room for n_new more addresses before a batch of lookups (clearing the
 * cache when it would overflow): strings returned earlier stay valid until the
 * next lp_sym_reserve. A lookup past the cap returns "unknown". */
void lp_sym_reserve(struct lp_symbolizer *s, size_t n_new);
/* Forgets every cached address and closes the session (the executable
 * mappings changed). */
void lp_sym_clear(struct lp_symbolizer *s);
void lp_sym_free(struct lp_symbolizer *s);

#endif

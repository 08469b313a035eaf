/*
 * The unwinder's fast path: x86-64 frame rules ("the caller's frame address is
 * rsp or rbp plus k, the return address is just below it, rbp was saved at
 * CFA + m or not touched"), each read once per pc from the object's .eh_frame
 * and then kept in a lock-free, direct-mapped cache. A frame whose rule is in
 * the cache costs a hash probe and one or two stack reads, where libunwind's
 * stepper searches and interprets the object's call frame information anew.
 *
 * Anything the rules cannot say (no unwind info, a CFA computed by a DWARF
 * expression or from another register, a signal frame, an unusual return
 * address rule) is remembered as "slow", and the whole walk is then done by
 * libunwind (unwind.c), so the result never depends on which path ran.
 *
 * The cache holds rules of loaded code: lp_unwind_forget (after dlclose, and
 * from the exporter when objects were unloaded by other means) moves to a new
 * generation and every older entry stops matching.
 *
 * Every function in this file is async-signal-safe: it reads only the
 * program's loaded objects (found with _dl_find_object, lock-free) and the
 * stack through the walk's checks, and writes only the cache, with atomics.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>

/* DWARF register numbers of x86-64. */
enum { DW_RBP = 6, DW_RSP = 7, DW_RA = 16 };

/* How a rule finds the caller's frame address (CFA). */
enum { CFA_RSP = 0, CFA_RBP = 1, CFA_END = 2, CFA_SLOW = 3 };

/*
 * A rule packed in 32 bits: bits 0-1 the CFA's base (above), bit 2 "rbp saved",
 * bits 3-22 the CFA's offset (signed), bits 23-30 where rbp was saved, in words
 * from the CFA (signed). The entry's upper 32 bits are its generation.
 */
#define OFF_BITS 20
#define BP_BITS 8

#define CACHE_BITS 13       /* 8192 entries, 128 KiB, touched as pcs arrive */

struct entry {
	_Atomic uint64_t tag;   /* pc ^ mix(val): a torn pair does not match */
	_Atomic uint64_t val;   /* generation << 32 | rule */
};

static struct entry cache[1u << CACHE_BITS];
static _Atomic uint32_t generation = 1;
static _Atomic uint64_t n_fast, n_slow, n_rules;
static int use_cache = 1;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	return x;
}

static uint32_t pack(unsigned kind, int64_t cfa_off, int bp_saved, int64_t bp_off)
{
	int64_t lim = (int64_t)1 << (OFF_BITS - 1), bp_lim = (int64_t)1 << (BP_BITS - 1);
	if (kind > CFA_RBP)
		return kind;
	if (cfa_off < -lim || cfa_off >= lim)
		return CFA_SLOW;
	if (bp_saved && (bp_off % 8 || bp_off / 8 < -bp_lim || bp_off / 8 >= bp_lim))
		return CFA_SLOW;
	return kind | (uint32_t)!!bp_saved << 2 |
	       ((uint32_t)cfa_off & ((1u << OFF_BITS) - 1)) << 3 |
	       ((uint32_t)(bp_off / 8) & ((1u << BP_BITS) - 1)) << (3 + OFF_BITS);
}

static int64_t rule_cfa_off(uint32_t r)
{
	return (int64_t)((int32_t)(r << (32 - 3 - OFF_BITS)) >> (32 - OFF_BITS));
}

static int64_t rule_bp_off(uint32_t r)
{
	return 8 * (int64_t)((int32_t)(r << 1) >> (32 - BP_BITS));
}

/* ---- reading .eh_frame -------------------------------------------------------- */

/* A bounded reader over one object's mapped unwind data. */
struct rd {
	const uint8_t *p, *end;
	int bad;
};

static uint8_t u8(struct rd *r)
{
	if (r->p >= r->end) {
		r->bad = 1;
		return 0;
	}
	return *r->p++;
}

static uint64_t fixed(struct rd *r, int n)
{
	uint64_t v = 0;
	if (r->end - r->p < n) {
		r->bad = 1;
		return 0;
	}
	memcpy(&v, r->p, (size_t)n);      /* little-endian */
	r->p += n;
	return v;
}

static void skip(struct rd *r, uint64_t n)
{
	if ((uint64_t)(r->end - r->p) < n) {
		r->bad = 1;
		r->p = r->end;
		return;
	}
	r->p += n;
}

static uint64_t uleb(struct rd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b = u8(r);
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static int64_t sleb(struct rd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t b = u8(r);
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (shift + 7 < 64 && (b & 0x40))
				v |= ~(uint64_t)0 << (shift + 7);
			return (int64_t)v;
		}
	}
	r->bad = 1;
	return 0;
}

/* DWARF pointer encodings (the low nibble: format; bits 4-6: base). */
enum { PE_ABSPTR = 0x00, PE_ULEB = 0x01, PE_UDATA2 = 0x02, PE_UDATA4 = 0x03,
       PE_UDATA8 = 0x04, PE_SLEB = 0x09, PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b,
       PE_SDATA8 = 0x0c, PE_PCREL = 0x10, PE_DATAREL = 0x30, PE_OMIT = 0xff };

/* An encoded value; with_base adds its base (pcrel or datarel to hdr). */
static uint64_t encoded(struct rd *r, uint8_t enc, int with_base, const uint8_t *hdr)
{
	const uint8_t *at = r->p;
	uint64_t v;
	switch (enc & 0x0f) {
	case PE_ABSPTR: case PE_UDATA8: case PE_SDATA8: v = fixed(r, 8); break;
	case PE_UDATA4: v = fixed(r, 4); break;
	case PE_SDATA4: v = (uint64_t)(int64_t)(int32_t)fixed(r, 4); break;
	case PE_UDATA2: v = fixed(r, 2); break;
	case PE_SDATA2: v = (uint64_t)(int64_t)(int16_t)fixed(r, 2); break;
	case PE_ULEB: v = uleb(r); break;
	case PE_SLEB: v = (uint64_t)sleb(r); break;
	default: r->bad = 1; return 0;
	}
	if (!with_base)
		return v;
	switch (enc & 0x70) {
	case 0: return v;
	case PE_PCREL: return v + (uint64_t)(uintptr_t)at;
	case PE_DATAREL: return v + (uint64_t)(uintptr_t)hdr;
	default: r->bad = 1; return 0;
	}
}

/* ---- the rule at a pc ----------------------------------------------------------- */

enum { HOW_SAME, HOW_OFFSET, HOW_UNDEF, HOW_OTHER };

struct reg_rule {
	uint8_t how;
	int64_t off;
};

enum { RULE_BP, RULE_SP, RULE_RA, N_RULES };   /* the registers the walk follows */

struct row {
	int cfa_reg;                /* -1: a DWARF expression */
	int64_t cfa_off;
	struct reg_rule reg[N_RULES];
};

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_enc;
	int has_z;
	const uint8_t *insns, *insns_end;
};

/* Where row keeps the rule of DWARF register reg, or -1 (not followed). */
static int rule_index(uint64_t reg)
{
	switch (reg) {
	case DW_RBP: return RULE_BP;
	case DW_RSP: return RULE_SP;
	case DW_RA: return RULE_RA;
	default: return -1;
	}
}

static void set_rule(struct row *row, uint64_t reg, uint8_t how, int64_t off)
{
	int i = rule_index(reg);
	if (i >= 0)
		row->reg[i] = (struct reg_rule){ how, off };
}

#define STATE_DEPTH 8

/*
 * Runs call frame instructions from r into *row until the location passes pc
 * (init: the CIE's row, for DW_CFA_restore; NULL while running the CIE).
 * Returns 0, or -1 on anything it does not know.
 */
static int run_insns(struct rd *r, const struct cie *c, const struct row *init, uint64_t loc,
		     uint64_t pc, struct row *row)
{
	struct row saved[STATE_DEPTH];
	int depth = 0;
	while (r->p < r->end && !r->bad) {
		uint8_t op = u8(r);
		uint64_t reg, delta = 0;
		switch (op & 0xc0) {
		case 0x40:
			delta = (op & 0x3f) * c->code_align;
			goto advance;
		case 0x80:
			set_rule(row, op & 0x3f, HOW_OFFSET, (int64_t)uleb(r) * c->data_align);
			continue;
		case 0xc0:
			if (!init)
				return -1;
			reg = op & 0x3f;
			goto restore;
		}
		switch (op) {
		case 0x00:                                      /* nop */
			continue;
		case 0x01: {                                    /* set_loc */
			uint64_t to = encoded(r, c->fde_enc, 1, NULL);
			if (to > pc)
				return 0;
			loc = to;
			continue;
		}
		case 0x02: delta = fixed(r, 1) * c->code_align; goto advance;
		case 0x03: delta = fixed(r, 2) * c->code_align; goto advance;
		case 0x04: delta = fixed(r, 4) * c->code_align; goto advance;
		case 0x05:                                      /* offset_extended */
			reg = uleb(r);
			set_rule(row, reg, HOW_OFFSET, (int64_t)uleb(r) * c->data_align);
			continue;
		case 0x06:                                      /* restore_extended */
			if (!init)
				return -1;
			reg = uleb(r);
			goto restore;
		case 0x07: set_rule(row, uleb(r), HOW_UNDEF, 0); continue;
		case 0x08: set_rule(row, uleb(r), HOW_SAME, 0); continue;
		case 0x09: case 0x14: case 0x15:                /* register, val_offset(_sf) */
			reg = uleb(r);
			uleb(r);                                /* skips an sleb as well */
			set_rule(row, reg, HOW_OTHER, 0);
			continue;
		case 0x0a:                                      /* remember_state */
			if (depth == STATE_DEPTH)
				return -1;
			saved[depth++] = *row;
			continue;
		case 0x0b:                                      /* restore_state */
			if (!depth)
				return -1;
			*row = saved[--depth];
			continue;
		case 0x0c:                                      /* def_cfa */
			row->cfa_reg = (int)uleb(r);
			row->cfa_off = (int64_t)uleb(r);
			continue;
		case 0x0d: row->cfa_reg = (int)uleb(r); continue;
		case 0x0e: row->cfa_off = (int64_t)uleb(r); continue;
		case 0x0f:                                      /* def_cfa_expression */
			row->cfa_reg = -1;
			skip(r, uleb(r));
			continue;
		case 0x10: case 0x16:                           /* (val_)expression */
			reg = uleb(r);
			skip(r, uleb(r));
			set_rule(row, reg, HOW_OTHER, 0);
			continue;
		case 0x11:                                      /* offset_extended_sf */
			reg = uleb(r);
			set_rule(row, reg, HOW_OFFSET, sleb(r) * c->data_align);
			continue;
		case 0x12:                                      /* def_cfa_sf */
			row->cfa_reg = (int)uleb(r);
			row->cfa_off = sleb(r) * c->data_align;
			continue;
		case 0x13: row->cfa_off = sleb(r) * c->data_align; continue;
		case 0x2e: uleb(r); continue;                   /* GNU_args_size */
		case 0x2f:                                      /* GNU_negative_offset_extended */
			reg = uleb(r);
			set_rule(row, reg, HOW_OFFSET, -(int64_t)uleb(r) * c->data_align);
			continue;
		default:
			return -1;
		}
advance:
		if (loc + delta > pc)
			return 0;
		loc += delta;
		continue;
restore: {
			int i = rule_index(reg);
			if (i >= 0)
				row->reg[i] = init->reg[i];
			continue;
		}
	}
	return r->bad ? -1 : 0;
}

/* Parses the CIE at p (inside [lo, hi)). Returns 0 or -1. */
static int parse_cie(const uint8_t *p, const uint8_t *lo, const uint8_t *hi, struct cie *c)
{
	if (p < lo || hi - p < 8)
		return -1;
	struct rd r = { p, hi, 0 };
	uint32_t len = (uint32_t)fixed(&r, 4);
	if (len == 0 || len == 0xffffffff || (uint64_t)(hi - r.p) < len)
		return -1;
	r.end = r.p + len;
	if (fixed(&r, 4) != 0)                          /* a CIE's id */
		return -1;
	uint8_t version = u8(&r);
	if (version != 1 && version != 3)
		return -1;
	char aug[8];
	size_t n = 0;
	for (;;) {
		uint8_t ch = u8(&r);
		if (r.bad || n == sizeof(aug))
			return -1;
		aug[n++] = (char)ch;
		if (!ch)
			break;
	}
	c->code_align = uleb(&r);
	c->data_align = sleb(&r);
	uint64_t ra = version == 1 ? u8(&r) : uleb(&r);
	if (ra != DW_RA || r.bad)
		return -1;
	c->fde_enc = PE_ABSPTR;
	c->has_z = aug[0] == 'z';
	if (c->has_z) {
		uint64_t aug_len = uleb(&r);
		if (r.bad || (uint64_t)(r.end - r.p) < aug_len)
			return -1;
		const uint8_t *aug_end = r.p + aug_len;
		for (const char *a = aug + 1; *a; a++) {
			if (*a == 'R') {
				c->fde_enc = u8(&r);
			} else if (*a == 'L') {
				u8(&r);
			} else if (*a == 'P') {
				uint8_t enc = u8(&r);
				encoded(&r, enc & 0x7f, 0, NULL);
			} else {
				return -1;      /* 'S' (a signal frame) or unknown */
			}
		}
		r.p = aug_end;
	} else if (aug[0]) {
		return -1;
	}
	c->insns = r.p;
	c->insns_end = r.end;
	return r.bad ? -1 : 0;
}

int lp_eh_table(const struct dl_find_object *fo, const uint8_t **table, uint64_t *count)
{
	const uint8_t *hdr = fo->dlfo_eh_frame, *hi = fo->dlfo_map_end;
	if (!hdr || hi - hdr < 4 || hdr[0] != 1 || hdr[2] == PE_OMIT ||
	    hdr[3] != (PE_DATAREL | PE_SDATA4))
		return -1;
	struct rd r = { hdr + 4, hi, 0 };
	encoded(&r, hdr[1], 1, hdr);                    /* eh_frame_ptr */
	*count = encoded(&r, hdr[2], 1, hdr);
	*table = r.p;
	return r.bad || !*count || (uint64_t)(hi - r.p) / 8 < *count ? -1 : 0;
}

/* The FDE covering pc, from .eh_frame_hdr's sorted table. */
static const uint8_t *find_fde(uint64_t pc, const struct dl_find_object *fo)
{
	const uint8_t *hdr = fo->dlfo_eh_frame, *table;
	uint64_t count;
	if (lp_eh_table(fo, &table, &count) < 0)
		return NULL;
	uint64_t lo_i = 0, hi_i = count;            /* the last entry with start <= pc */
	while (hi_i - lo_i > 1) {
		uint64_t mid = lo_i + (hi_i - lo_i) / 2;
		int32_t start;
		memcpy(&start, table + mid * 8, 4);
		if ((uint64_t)(uintptr_t)hdr + (uint64_t)(int64_t)start <= pc)
			lo_i = mid;
		else
			hi_i = mid;
	}
	int32_t start, fde;
	memcpy(&start, table + lo_i * 8, 4);
	memcpy(&fde, table + lo_i * 8 + 4, 4);
	if ((uint64_t)(uintptr_t)hdr + (uint64_t)(int64_t)start > pc)
		return NULL;
	return hdr + fde;
}

/* Works out the packed rule for pc (a location inside the frame's function). */
static uint32_t compute_rule(uint64_t pc)
{
	struct dl_find_object fo;
	if (_dl_find_object((void *)(uintptr_t)pc, &fo) != 0)
		return CFA_SLOW;
	const uint8_t *lo = fo.dlfo_map_start, *hi = fo.dlfo_map_end;
	const uint8_t *fde = find_fde(pc, &fo);
	if (!fde || fde < lo || hi - fde < 8)
		return CFA_SLOW;
	struct rd r = { fde, hi, 0 };
	uint32_t len = (uint32_t)fixed(&r, 4);
	if (len == 0 || len == 0xffffffff || (uint64_t)(hi - r.p) < len)
		return CFA_SLOW;
	r.end = r.p + len;
	const uint8_t *id_at = r.p;
	uint32_t cie_off = (uint32_t)fixed(&r, 4);
	struct cie c;
	if (!cie_off || (uintptr_t)id_at < cie_off || parse_cie(id_at - cie_off, lo, hi, &c) < 0)
		return CFA_SLOW;
	uint64_t begin = encoded(&r, c.fde_enc, 1, NULL);
	uint64_t range = encoded(&r, c.fde_enc, 0, NULL);
	if (c.has_z)
		skip(&r, uleb(&r));
	if (r.bad || pc < begin || pc - begin >= range)
		return CFA_SLOW;

	struct row init = { .cfa_reg = DW_RSP, .cfa_off = 0 }, row;
	struct rd ci = { c.insns, c.insns_end, 0 };
	if (run_insns(&ci, &c, NULL, 0, UINT64_MAX, &init) < 0)
		return CFA_SLOW;
	row = init;
	if (run_insns(&r, &c, &init, begin, pc, &row) < 0)
		return CFA_SLOW;

	const struct reg_rule *bp = &row.reg[RULE_BP], *sp = &row.reg[RULE_SP],
			      *ra = &row.reg[RULE_RA];
	if (ra->how == HOW_UNDEF)
		return CFA_END;             /* the outermost frame (_start, a thread's start) */
	if (ra->how != HOW_OFFSET || ra->off != -8 || sp->how != HOW_SAME ||
	    (bp->how != HOW_SAME && bp->how != HOW_OFFSET) ||
	    (row.cfa_reg != DW_RSP && row.cfa_reg != DW_RBP))
		return CFA_SLOW;
	return pack(row.cfa_reg == DW_RSP ? CFA_RSP : CFA_RBP, row.cfa_off,
		    bp->how == HOW_OFFSET, bp->off);
}

static uint32_t rule_at(uint64_t pc, uint64_t gen)
{
	struct entry *e = &cache[(pc * 0x9e3779b97f4a7c15ull) >> (64 - CACHE_BITS)];
	uint64_t val = atomic_load_explicit(&e->val, memory_order_relaxed);
	uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);
	if ((tag ^ mix(val)) == pc && val >> 32 == gen)
		return (uint32_t)val;
	uint32_t rule = compute_rule(pc);
	atomic_fetch_add_explicit(&n_rules, 1, memory_order_relaxed);
	val = gen << 32 | rule;
	atomic_store_explicit(&e->val, val, memory_order_relaxed);
	atomic_store_explicit(&e->tag, pc ^ mix(val), memory_order_relaxed);
	return rule;
}

int lp_cfi_walk(const struct walk *w, uint64_t rip, uint64_t rsp, uint64_t rbp, int exact_leaf,
		uint64_t *pcs, int max, int *truncated)
{
	uint64_t gen = atomic_load_explicit(&generation, memory_order_relaxed);
	uint64_t look = exact_leaf ? rip : rip - 1;
	int n = 0;
	if (!use_cache)
		return -1;
	*truncated = 0;
	pcs[n++] = rip;
	for (;;) {
		uint32_t rule = rule_at(look, gen);
		unsigned kind = rule & 3;
		if (kind == CFA_END)
			break;
		if (kind == CFA_SLOW)
			goto slow;
		uint64_t cfa = (kind == CFA_RSP ? rsp : rbp) + (uint64_t)rule_cfa_off(rule);
		uint64_t ra;
		if (lp_walk_read(w, cfa - 8, &ra) < 0 ||
		    ((rule & 4) && lp_walk_read(w, cfa + (uint64_t)rule_bp_off(rule), &rbp) < 0))
			goto slow;
		if (!ra)
			break;
		if (n == max) {
			*truncated = 1;
			break;
		}
		pcs[n++] = ra;
		rsp = cfa;
		look = ra - 1;
	}
	atomic_fetch_add_explicit(&n_fast, 1, memory_order_relaxed);
	return n;
slow:
	atomic_fetch_add_explicit(&n_slow, 1, memory_order_relaxed);
	return -1;
}

void lp_unwind_forget(void)
{
	atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
}

void lp_unwind_stats(uint64_t *fast_walks, uint64_t *slow_walks, uint64_t *rules_read)
{
	*fast_walks = atomic_load_explicit(&n_fast, memory_order_relaxed);
	*slow_walks = atomic_load_explicit(&n_slow, memory_order_relaxed);
	*rules_read = atomic_load_explicit(&n_rules, memory_order_relaxed);
}

void lp_unwind_use_cache(int on)
{
	use_cache = on;
}

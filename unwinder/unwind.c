/*
 * Stack capture from a signal's ucontext: from cached frame rules (cfi.c) when
 * they can walk the whole stack, else with libunwind's DWARF stepper driven
 * through an address space of our own (unw_create_addr_space):
 *
 *  - unwind tables are found with glibc's _dl_find_object, which glibc documents
 *    as async-signal-safe and lock-free, so the handler never calls
 *    dl_iterate_phdr and never waits on the loader's lock;
 *  - memory is read directly only inside the thread's own stack or a loaded
 *    object; anything else goes through process_vm_readv, which fails cleanly
 *    on a bad address, so a corrupt stack ends the walk instead of faulting;
 *  - libunwind's own local accessors are never used: they validate addresses
 *    with a pipe kept open in the program, which a program that closes or reuses
 *    its descriptors would then see read from and written to.
 *
 * Every function in this file is async-signal-safe except lp_unwind_init.
 */
#include "internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* libunwind exports this but declares it only in its private headers. */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip,
					      unw_dyn_info_t *di, unw_proc_info_t *pi,
					      int need_unwind_info, void *arg);

__thread int lp_unwinding __attribute__((tls_model("initial-exec")));

static unw_addr_space_t addr_space;
static pid_t self_pid;
static uintptr_t self_lo, self_hi;     /* libprof's own mapping */

static void remember_object(struct walk *w, uintptr_t lo, uintptr_t hi)
{
	for (int i = 0; i < w->n_obj; i++)
		if (w->obj_lo[i] == lo)
			return;
	int slot = w->n_obj < N_OBJECTS ? w->n_obj++ : (int)(lo >> 12) % N_OBJECTS;
	w->obj_lo[slot] = lo;
	w->obj_hi[slot] = hi;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
			  int need_unwind_info, void *arg)
{
	struct walk *w = arg;
	struct dl_find_object fo;
	if (_dl_find_object((void *)ip, &fo) != 0 || !fo.dlfo_eh_frame)
		return -UNW_ENOINFO;
	remember_object(w, (uintptr_t)fo.dlfo_map_start, (uintptr_t)fo.dlfo_map_end);

	const uint8_t *table;
	uint64_t fde_count;
	if (lp_eh_table(&fo, &table, &fde_count) < 0)
		return -UNW_ENOINFO;

	unw_dyn_info_t di;
	memset(&di, 0, sizeof(di));
	di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
	di.start_ip = (unw_word_t)fo.dlfo_map_start;
	di.end_ip = (unw_word_t)fo.dlfo_map_end;
	di.u.rti.segbase = (unw_word_t)fo.dlfo_eh_frame;
	di.u.rti.table_data = (unw_word_t)table;
	di.u.rti.table_len = fde_count * 8 / sizeof(unw_word_t);
	return _Ux86_64_dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
	(void)as, (void)pi, (void)arg;
}

static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
	(void)as, (void)addr, (void)arg;
	return -UNW_ENOINFO;
}

static int known_readable(const struct walk *w, uintptr_t a)
{
	if (a >= w->stack_lo && a + 8 <= w->stack_hi)
		return 1;
	for (int i = 0; i < w->n_obj; i++)
		if (a >= w->obj_lo[i] && a + 8 <= w->obj_hi[i])
			return 1;
	return 0;
}

int lp_walk_read(const struct walk *w, uintptr_t addr, uint64_t *val)
{
	if (addr < 4096)
		return -1;
	if (known_readable(w, addr)) {
		memcpy(val, (const void *)addr, sizeof(*val));
		return 0;
	}
	struct iovec local = { val, sizeof(*val) }, remote = { (void *)addr, sizeof(*val) };
	if (process_vm_readv(w->pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(*val))
		return -1;
	return 0;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
		      void *arg)
{
	(void)as;
	if (write)
		return -UNW_EINVAL;
	uint64_t v;
	if (lp_walk_read(arg, addr, &v) < 0)
		return -UNW_EINVAL;
	*val = v;
	return 0;
}

static const int greg_of[] = {
	[UNW_X86_64_RAX] = REG_RAX, [UNW_X86_64_RDX] = REG_RDX, [UNW_X86_64_RCX] = REG_RCX,
	[UNW_X86_64_RBX] = REG_RBX, [UNW_X86_64_RSI] = REG_RSI, [UNW_X86_64_RDI] = REG_RDI,
	[UNW_X86_64_RBP] = REG_RBP, [UNW_X86_64_RSP] = REG_RSP, [UNW_X86_64_R8] = REG_R8,
	[UNW_X86_64_R9] = REG_R9, [UNW_X86_64_R10] = REG_R10, [UNW_X86_64_R11] = REG_R11,
	[UNW_X86_64_R12] = REG_R12, [UNW_X86_64_R13] = REG_R13, [UNW_X86_64_R14] = REG_R14,
	[UNW_X86_64_R15] = REG_R15, [UNW_X86_64_RIP] = REG_RIP,
};

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
		      void *arg)
{
	struct walk *w = arg;
	(void)as;
	if (write || reg < 0 || reg > UNW_X86_64_RIP)
		return -UNW_EBADREG;
	*val = (unw_word_t)w->uc->uc_mcontext.gregs[greg_of[reg]];
	return 0;
}

static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val,
			int write, void *arg)
{
	(void)as, (void)reg, (void)val, (void)write, (void)arg;
	return -UNW_EBADREG;
}

static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
	(void)as, (void)c, (void)arg;
	return -UNW_EINVAL;
}

static int get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
			 unw_word_t *off, void *arg)
{
	(void)as, (void)addr, (void)buf, (void)len, (void)off, (void)arg;
	return -UNW_ENOINFO;
}

/* The two lowest descriptor numbers not in use: where pipe2 will put its pair. */
static void lowest_free_fds(int *a, int *b)
{
	*a = *b = -1;
	for (int fd = 0; fd < 4096 && *b < 0; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			if (*a < 0)
				*a = fd;
			else
				*b = fd;
		}
}

static int is_pipe(int fd)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

enum { EXACT_LEAF = 1, LIBUNWIND_ONLY = 2 };
static int capture(const ucontext_t *uc, uintptr_t stack_lo, uintptr_t stack_hi, int how,
		   uint64_t *pcs, int max, int *truncated);

/* One walk, for libunwind's one-time set-up (kept out of lp_unwind_init: getcontext). */
static __attribute__((noinline)) void warm_up(void)
{
	ucontext_t uc;
	uint64_t pcs[4];
	int trunc;
	if (getcontext(&uc) == 0)
		capture(&uc, 0, 0, EXACT_LEAF | LIBUNWIND_ONLY, pcs, 4, &trunc);
}

int lp_unwind_init(void)
{
	static unw_accessors_t acc = {
		.find_proc_info = find_proc_info,
		.put_unwind_info = put_unwind_info,
		.get_dyn_info_list_addr = get_dyn_info_list_addr,
		.access_mem = access_mem,
		.access_reg = access_reg,
		.access_fpreg = access_fpreg,
		.resume = resume,
		.get_proc_name = get_proc_name,
	};
	int free1, free2;
	struct dl_find_object fo;
	self_pid = getpid();
	if (_dl_find_object((void *)lp_unwind_init, &fo) == 0) {
		self_lo = (uintptr_t)fo.dlfo_map_start;
		self_hi = (uintptr_t)fo.dlfo_map_end;
	}
	lowest_free_fds(&free1, &free2);
	addr_space = unw_create_addr_space(&acc, 0);
	if (!addr_space)
		return -ENOMEM;
	unw_set_caching_policy(addr_space, UNW_CACHE_PER_THREAD);

	/* libunwind's one-time set-up opens a pipe for its own local accessors, which
	 * libprof never uses: close it so the program's descriptors stay its own. */
	warm_up();
	if (is_pipe(free1) && is_pipe(free2)) {
		close(free1);
		close(free2);
	}
	return 0;
}

void lp_unwind_after_fork(void)
{
	self_pid = getpid();
}

/* The walk of lp_unwind_capture. EXACT_LEAF: uc's pc is an interrupted one, not
 * a return address; LIBUNWIND_ONLY: no fast path (libunwind's set-up). */
static int capture(const ucontext_t *uc, uintptr_t stack_lo, uintptr_t stack_hi,
		   int how, uint64_t *pcs, int max, int *truncated)
{
	struct walk w;
	unw_cursor_t cursor;
	const greg_t *g = uc->uc_mcontext.gregs;
	int n = 0;
	*truncated = 0;
	if (!addr_space || max <= 0)
		return 0;
	w.uc = uc;
	w.stack_lo = stack_lo;
	w.stack_hi = stack_hi;
	w.n_obj = 0;
	w.pid = self_pid;
	if (!(how & LIBUNWIND_ONLY)) {
		n = lp_cfi_walk(&w, (uint64_t)g[REG_RIP], (uint64_t)g[REG_RSP],
				(uint64_t)g[REG_RBP], how & EXACT_LEAF, pcs, max, truncated);
		if (n >= 0)
			return n;
	}
	n = 0;
	*truncated = 0;
	if (unw_init_remote(&cursor, addr_space, &w) < 0)
		return 0;
	lp_unwinding++;
	pcs[n++] = (uint64_t)g[REG_RIP];
	while (n < max) {
		unw_word_t ip;
		if (unw_step(&cursor) <= 0 || unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || !ip)
			goto out;
		pcs[n++] = ip;
	}
	*truncated = unw_step(&cursor) > 0;
out:
	lp_unwinding--;
	return n;
}

int lp_unwind_capture(const ucontext_t *uc, uintptr_t stack_lo, uintptr_t stack_hi,
		      uint64_t *pcs, int max, int *truncated)
{
	return capture(uc, stack_lo, stack_hi, EXACT_LEAF, pcs, max, truncated);
}

/*
 * The registers DWARF unwinding needs (callee-saved ones, the stack pointer
 * and a pc) at the return into the caller, written into gregs[]: getcontext
 * would also make a sigprocmask system call. x86-64 System V.
 */
void lp_unwind_getregs(greg_t *gregs);
__asm__(".text\n"
	".globl lp_unwind_getregs\n"
	".hidden lp_unwind_getregs\n"
	".type lp_unwind_getregs, @function\n"
	"lp_unwind_getregs:\n"
	"	.cfi_startproc\n"
	"	movq %rbx, 88(%rdi)\n"     /* REG_RBX = 11 */
	"	movq %rbp, 80(%rdi)\n"     /* REG_RBP = 10 */
	"	movq %r12, 32(%rdi)\n"     /* REG_R12 = 4 ... */
	"	movq %r13, 40(%rdi)\n"
	"	movq %r14, 48(%rdi)\n"
	"	movq %r15, 56(%rdi)\n"
	"	leaq 8(%rsp), %rax\n"
	"	movq %rax, 120(%rdi)\n"    /* REG_RSP = 15: the caller's, after return */
	"	movq (%rsp), %rax\n"
	"	movq %rax, 128(%rdi)\n"    /* REG_RIP = 16: the return address */
	"	ret\n"
	"	.cfi_endproc\n"
	".size lp_unwind_getregs, .-lp_unwind_getregs\n");

_Static_assert(REG_RBX == 11 && REG_RBP == 10 && REG_R12 == 4 && REG_R15 == 7 &&
	       REG_RSP == 15 && REG_RIP == 16, "gregs layout of x86-64");

int lp_unwind_capture_here(uintptr_t stack_lo, uintptr_t stack_hi, uint64_t *pcs, int max,
			   int *truncated)
{
	ucontext_t uc;
	int n, skip = 0;
	memset(&uc.uc_mcontext.gregs, 0, sizeof(uc.uc_mcontext.gregs));
	lp_unwind_getregs(uc.uc_mcontext.gregs);
	n = capture(&uc, stack_lo, stack_hi, 0, pcs, max, truncated);
	while (skip < n && pcs[skip] >= self_lo && pcs[skip] < self_hi)
		skip++;
	if (skip) {
		memmove(pcs, pcs + skip, (size_t)(n - skip) * sizeof(*pcs));
		n -= skip;
	}
	/* pcs[0] is now a return address like the others: make it point inside the
	 * call, as encoders do for every frame but a signal's leaf. */
	if (n > 0)
		pcs[0] -= 1;
	return n;
}

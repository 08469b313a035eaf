/*
 * Symbolization for the exporter thread, on elfutils: libdwfl finds the module
 * of an address and its ELF symbol; libdw reads DWARF (from the file itself or
 * a separate debug file under /usr/lib/debug, by build id or debuglink) for
 * source lines and inlined frames.
 *
 * One libdwfl session lives until the executable mappings change, and it holds
 * no file descriptor of the program's: every file is mapped privately and
 * handed to libelf as memory (elf_memory), and the descriptor is closed at
 * once. A program that closes or reuses descriptors is thus never disturbed,
 * and libdwfl's own debuginfo search (which may reach a debuginfod server) is
 * never used. Results are cached per address.
 *
 * C++ names are demangled with libstdc++'s __cxa_demangle, looked up at run
 * time (and loaded only when a mangled name appears and the program has no
 * libstdc++), so that libprof does not pull libstdc++ into C programs.
 */
#include "unwinder.h"
#include "../preload/preload.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
	uint64_t addr;              /* 0 = empty */
	struct lp_symbol *sym;      /* allocated when the address is first seen */
};

/* A file mapped into memory for libelf; unmapped with the session. */
struct image {
	void *base;
	size_t size;
	Elf *elf;
	int dwfl_owns_elf;          /* handed to libdwfl, which elf_end()s it */
	struct image *next;
};

/* Per-module state, kept in the module's userdata slot. */
struct module {
	int tried_debug;
	Elf *debug_elf;             /* a separate debug file, or NULL */
	Dwarf *debug;               /* its DWARF */
};

struct lp_symbolizer {
	Dwfl *dwfl;                 /* the session; NULL until the first miss */
	struct image *images;
	struct entry *table;        /* open addressing, grows to 2 x max_entries */
	size_t mask, used, max_entries;
	char **strings;             /* every string the cache owns, a set (open addressing) */
	size_t n_strings, cap_strings;
	char *(*demangle)(const char *, char *, size_t *, int *);
	int tried_demangler;
};

static const struct lp_symbol unknown;
static __thread struct lp_symbolizer *current;  /* for the libdwfl callbacks */

static struct image *map_file(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct image *im = NULL;
	void *base = MAP_FAILED;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return NULL;
	im = calloc(1, sizeof(*im));
	if (im)
		im->elf = elf_memory(base, (size_t)st.st_size);
	if (!im || !im->elf) {
		free(im);
		munmap(base, (size_t)st.st_size);
		return NULL;
	}
	im->base = base;
	im->size = (size_t)st.st_size;
	im->next = current->images;
	current->images = im;
	return im;
}

static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	if (modname[0] != '/')      /* [vdso]: read from memory by libdwfl */
		return dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
	struct image *im = map_file(modname);
	if (im)
		im->dwfl_owns_elf = 1;
	*elfp = im ? im->elf : NULL;
	return -1;
}

static int no_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			Dwarf_Addr base, const char *file_name, const char *debuglink,
			GElf_Word crc, char **debuginfo_file_name)
{
	(void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
	(void)debuglink, (void)crc, (void)debuginfo_file_name;
	return -1;
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = no_debuginfo,
};

struct lp_symbolizer *lp_sym_new(size_t max_entries)
{
	struct lp_symbolizer *s = calloc(1, sizeof(*s));
	size_t size = 1024;
	if (s)
		s->table = calloc(size, sizeof(*s->table));
	if (!s || !s->table) {
		free(s);
		return NULL;
	}
	s->mask = size - 1;
	s->max_entries = max_entries;
	elf_version(EV_CURRENT);
	return s;
}

static size_t string_slot(char **set, size_t cap, const char *str)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = str; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	size_t i = (size_t)h & (cap - 1);
	while (set[i] && strcmp(set[i], str) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

/* One copy of each distinct string (names and file names repeat a lot). */
static const char *keep(struct lp_symbolizer *s, const char *str)
{
	if (!str)
		return NULL;
	if ((s->n_strings + 1) * 2 > s->cap_strings) {
		size_t cap = s->cap_strings ? s->cap_strings * 2 : 1024;
		char **set = calloc(cap, sizeof(*set));
		if (!set)
			return NULL;
		for (size_t i = 0; i < s->cap_strings; i++)
			if (s->strings[i])
				set[string_slot(set, cap, s->strings[i])] = s->strings[i];
		free(s->strings);
		s->strings = set;
		s->cap_strings = cap;
	}
	size_t i = string_slot(s->strings, s->cap_strings, str);
	if (!s->strings[i]) {
		if (!(s->strings[i] = strdup(str)))
			return NULL;
		s->n_strings++;
	}
	return s->strings[i];
}

static int open_session(struct lp_symbolizer *s)
{
	if (s->dwfl)
		return 0;
	s->dwfl = dwfl_begin(&callbacks);
	if (!s->dwfl)
		return -1;
	dwfl_report_begin(s->dwfl);
	if (dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		dwfl_end(s->dwfl);
		s->dwfl = NULL;
		return -1;
	}
	return 0;
}

/* The separate debug file: /usr/lib/debug/.build-id/xx/yyyy.debug, else by debuglink. */
static Elf *separate_debug(Dwfl_Module *mod, Elf *elf)
{
	const unsigned char *id;
	GElf_Addr vaddr;
	char path[4096];
	int n = dwfl_module_build_id(mod, &id, &vaddr);
	if (n > 1) {
		size_t o = lp_fmt(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", id[0]);
		for (int i = 1; i < n && o + 8 < sizeof(path); i++)
			o += lp_fmt(path + o, sizeof(path) - o, "%02x", id[i]);
		lp_fmt(path + o, sizeof(path) - o, ".debug");
		struct image *im = map_file(path);
		if (im)
			return im->elf;
	}
	GElf_Word crc;
	const char *link = dwelf_elf_gnu_debuglink(elf, &crc);
	const char *file = NULL;
	dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &file, NULL);
	if (!link || !file)
		return NULL;
	const char *slash = strrchr(file, '/');
	int dir_len = slash ? (int)(slash - file) : 0;
	for (int i = 0; i < 2; i++) {
		if (i == 0)
			lp_fmt(path, sizeof(path), "/usr/lib/debug%.*s/%s", dir_len, file, link);
		else
			lp_fmt(path, sizeof(path), "%.*s/.debug/%s", dir_len, file, link);
		struct image *im = map_file(path);
		if (im)
			return im->elf;
	}
	return NULL;
}

/*
 * DWARF is read only when its sections are stored plain: libdw inflates
 * compressed sections (Debian's -dbg packages compress them) into the heap in
 * full, tens of MiB for libc alone. Plain sections are mapped from the file and
 * read where needed. Without DWARF a module still gets symbol names.
 */
static int dwarf_is_plain(Elf *elf)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	int found = 0;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;
		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name)))
			continue;
		if (strncmp(name, ".zdebug", 7) == 0)
			return 0;
		if (strncmp(name, ".debug_", 7) == 0) {
			if (sh.sh_flags & SHF_COMPRESSED)
				return 0;
			found |= strcmp(name, ".debug_info") == 0 && sh.sh_type != SHT_NOBITS;
		}
	}
	return found;
}

/* The module's state, with its separate debug file looked for once. */
static struct module *module_state(struct lp_symbolizer *s, Dwfl_Module *mod, Elf *elf)
{
	void **userdata;
	dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
	if (!elf || !userdata)
		return NULL;
	struct module *m = *userdata;
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m)
			return NULL;
		*userdata = m;
	}
	if (!m->tried_debug) {
		m->tried_debug = 1;
		current = s;
		m->debug_elf = separate_debug(mod, elf);
		if (m->debug_elf && dwarf_is_plain(m->debug_elf))
			m->debug = dwarf_begin_elf(m->debug_elf, DWARF_C_READ, NULL);
	}
	return m;
}

/* The function symbol of a symbol table holding pc (module-relative), or NULL. */
static const char *symtab_lookup(Elf *elf, GElf_Addr pc)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		size_t n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; data && i < n; i++) {
			GElf_Sym sym;
			if (gelf_getsym(data, (int)i, &sym) && GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
			    pc >= sym.st_value && pc < sym.st_value + sym.st_size)
				return elf_strptr(elf, sh.sh_link, sym.st_name);
		}
	}
	return NULL;
}

/* __cxa_demangle from the program's libstdc++, else from one loaded privately
 * (a C++ program built with --as-needed may not load it). */
static void find_demangler(struct lp_symbolizer *s)
{
	typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);
	s->tried_demangler = 1;
	s->demangle = (demangle_fn)dlsym(RTLD_DEFAULT, "__cxa_demangle");
	if (!s->demangle) {
		void *h = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL);
		if (h)
			s->demangle = (demangle_fn)dlsym(h, "__cxa_demangle");
	}
}

static const char *demangled(struct lp_symbolizer *s, const char *name)
{
	if (name && name[0] == '_' && name[1] == 'Z' && !s->tried_demangler)
		find_demangler(s);
	if (!name || name[0] != '_' || name[1] != 'Z' || !s->demangle)
		return keep(s, name);
	int status = -1;
	char *d = s->demangle(name, NULL, NULL, &status);
	const char *out = keep(s, status == 0 && d ? d : name);
	free(d);
	return out;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *n = NULL;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		n = dwarf_formstring(&attr);
	return n ? n : dwarf_diename(die);
}

static const char *call_site(Dwarf_Die *cudie, Dwarf_Die *inl, int *line)
{
	Dwarf_Attribute attr;
	Dwarf_Word file = 0, ln = 0;
	Dwarf_Files *files;
	size_t nfiles;
	*line = 0;
	if (dwarf_attr(inl, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &ln) == 0)
		*line = (int)ln;
	if (!dwarf_attr(inl, DW_AT_call_file, &attr) || dwarf_formudata(&attr, &file) != 0 ||
	    dwarf_getsrcfiles(cudie, &files, &nfiles) != 0 || file >= nfiles)
		return NULL;
	return dwarf_filesrc(files, file, NULL, NULL);
}

static void add_frame(struct lp_symbolizer *s, struct lp_symbol *out, const char *sys,
		      const char *file, int line)
{
	struct lp_frame *f = &out->frames[out->n];
	f->system_name = keep(s, sys);
	f->name = demangled(s, sys);
	f->file = keep(s, file);
	f->line = line;
	if (f->name && f->system_name)
		out->n++;
}

/*
 * DWARF frames for pc (module-relative): inlined ones innermost first, then the
 * containing function, named elf_name when the symbol table knows it.
 */
static void dwarf_frames(struct lp_symbolizer *s, Dwarf *dw, Dwarf_Addr pc,
			 const char *elf_name, struct lp_symbol *out)
{
	Dwarf_Die cu_mem, *scopes = NULL;
	Dwarf_Die *cudie = dwarf_addrdie(dw, pc, &cu_mem);
	const char *file = NULL;
	int line = 0;
	if (!cudie)
		goto no_dwarf;
	Dwarf_Line *l = dwarf_getsrc_die(cudie, pc);
	if (l) {
		file = dwarf_linesrc(l, NULL, NULL);
		dwarf_lineno(l, &line);
	}
	int n = dwarf_getscopes(cudie, pc, &scopes);
	for (int i = 0; i < n && out->n < LP_MAX_INLINE - 1; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag == DW_TAG_inlined_subroutine) {
			add_frame(s, out, die_name(&scopes[i]), file, line);
			file = call_site(cudie, &scopes[i], &line);
		} else if (tag == DW_TAG_subprogram) {
			if (!elf_name)
				elf_name = die_name(&scopes[i]);
			break;
		}
	}
	free(scopes);
no_dwarf:
	if (elf_name)
		add_frame(s, out, elf_name, file, line);
	else
		out->n = 0;         /* inlined frames without their function: drop */
}

static void symbolize(struct lp_symbolizer *s, uint64_t addr, struct lp_symbol *out)
{
	memset(out, 0, sizeof(*out));
	current = s;
	if (open_session(s) < 0)
		return;
	Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, addr);
	if (!mod)
		return;
	GElf_Off off;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
	Dwarf_Addr bias = 0;
	Elf *main_elf = dwfl_module_getelf(mod, &bias);
	Dwarf *dw = main_elf && dwarf_is_plain(main_elf) ? dwfl_module_getdwarf(mod, &bias) : NULL;
	if (!dw) {
		/* Stripped: the separate debug file has the DWARF and the full symtab. */
		Elf *elf = dwfl_module_getelf(mod, &bias);
		struct module *m = elf ? module_state(s, mod, elf) : NULL;
		if (m && m->debug_elf && !name)
			name = symtab_lookup(m->debug_elf, addr - bias);
		dw = m ? m->debug : NULL;
	}
	if (dw)
		dwarf_frames(s, dw, addr - bias, name, out);
	else if (name)
		add_frame(s, out, name, NULL, 0);
}

static size_t slot_of(const struct lp_symbolizer *s, uint64_t addr)
{
	size_t i = (size_t)((addr * 0x9E3779B97F4A7C15ull) >> 20) & s->mask;
	while (s->table[i].addr && s->table[i].addr != addr)
		i = (i + 1) & s->mask;
	return i;
}

/* Doubles the table (kept at most half full); 0 or -1 when memory is short. */
static int grow(struct lp_symbolizer *s)
{
	size_t size = (s->mask + 1) * 2;
	struct entry *old = s->table;
	size_t old_size = s->mask + 1;
	struct entry *table = calloc(size, sizeof(*table));
	if (!table)
		return -1;
	s->table = table;
	s->mask = size - 1;
	for (size_t i = 0; i < old_size; i++)
		if (old[i].addr)
			s->table[slot_of(s, old[i].addr)] = old[i];
	free(old);
	return 0;
}

const struct lp_symbol *lp_sym_lookup(struct lp_symbolizer *s, uint64_t addr)
{
	if (!addr)
		return &unknown;
	size_t i = slot_of(s, addr);
	if (s->table[i].addr)
		return s->table[i].sym;
	if (s->used >= s->max_entries)
		return &unknown;    /* full until lp_sym_reserve makes room */
	if ((s->used + 1) * 2 > s->mask + 1) {
		if (grow(s) < 0)
			return &unknown;
		i = slot_of(s, addr);
	}
	struct lp_symbol tmp;
	symbolize(s, addr, &tmp);
	size_t bytes = offsetof(struct lp_symbol, frames) + (size_t)tmp.n * sizeof(tmp.frames[0]);
	struct lp_symbol *sym = malloc(bytes);
	if (!sym)
		return &unknown;
	memcpy(sym, &tmp, bytes);
	s->table[i].addr = addr;
	s->table[i].sym = sym;
	s->used++;
	return sym;
}

static int free_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
		       void *arg)
{
	(void)mod, (void)name, (void)start, (void)arg;
	struct module *m = *userdata;
	if (m && m->debug)
		dwarf_end(m->debug);
	free(m);
	*userdata = NULL;
	return DWARF_CB_OK;
}

/* Ends the session: every mapped file is unmapped. The cache stays. */
static void end_session(struct lp_symbolizer *s)
{
	if (s->dwfl) {
		dwfl_getmodules(s->dwfl, free_module, NULL, 0);
		dwfl_end(s->dwfl);
	}
	s->dwfl = NULL;
	while (s->images) {
		struct image *im = s->images;
		s->images = im->next;
		if (!im->dwfl_owns_elf)
			elf_end(im->elf);
		munmap(im->base, im->size);
		free(im);
	}
}

void lp_sym_reserve(struct lp_symbolizer *s, size_t n_new)
{
	if (s->used + n_new > s->max_entries)
		lp_sym_clear(s);
}

void lp_sym_clear(struct lp_symbolizer *s)
{
	for (size_t i = 0; i <= s->mask && s->used; i++)
		if (s->table[i].addr) {
			free(s->table[i].sym);
			s->table[i].addr = 0;
			s->used--;
		}
	s->used = 0;
	for (size_t i = 0; i < s->cap_strings; i++) {
		free(s->strings[i]);
		s->strings[i] = NULL;
	}
	s->n_strings = 0;
	end_session(s);
}

void lp_sym_free(struct lp_symbolizer *s)
{
	if (!s)
		return;
	lp_sym_clear(s);
	free(s->strings);
	free(s->table);
	free(s);
}

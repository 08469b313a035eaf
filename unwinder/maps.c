/*
 * The program's executable mappings, read from /proc/self/maps by the exporter
 * thread, with the GNU build id of each file: from the loaded object's note in
 * memory (dl_iterate_phdr), else from the file (elfutils' dwelf). Build ids are
 * carried over from the previous read for unchanged files.
 */
#include "unwinder.h"

#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAPS_MAX_BYTES (16u << 20)
#define MAPS_MAX_ENTRIES 65536

static char *slurp_maps(size_t *len)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			char *bigger = cap < MAPS_MAX_BYTES ? realloc(buf, cap * 2 + 1) : NULL;
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
	}
	close(fd);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static void to_hex(char *hex, const unsigned char *id, size_t len)
{
	for (size_t i = 0; i < len && i < 64; i++) {
		hex[2 * i] = "0123456789abcdef"[id[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[id[i] & 15];
		hex[2 * i + 2] = '\0';
	}
}

struct note_search {
	uint64_t addr;
	char *hex;                  /* 129 bytes */
	int found;
};

/* The NT_GNU_BUILD_ID note of the loaded object holding search->addr. */
static int note_of_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct note_search *ns = arg;
	int holds = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum && !holds; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t lo = info->dlpi_addr + ph->p_vaddr;
		holds = ph->p_type == PT_LOAD && ns->addr >= lo && ns->addr < lo + ph->p_memsz;
	}
	if (!holds)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
			const unsigned char *name = p + sizeof(*nh);
			const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);
			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0) {
				to_hex(ns->hex, desc, nh->n_descsz);
				ns->found = 1;
				return 1;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1;                   /* the object holds addr, but has no build id */
}

static char *read_build_id(const char *path)
{
	char hex[2 * 64 + 1] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		elf_version(EV_CURRENT);
		Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		const void *id = NULL;
		ssize_t len = elf ? dwelf_elf_gnu_build_id(elf, &id) : -1;
		if (len > 0)
			to_hex(hex, id, (size_t)len);
		if (elf)
			elf_end(elf);
		close(fd);
	}
	return strdup(hex);
}

static char *build_id_for(const char *path, uint64_t start, const struct lp_maps *prev)
{
	char hex[2 * 64 + 1] = "";
	struct note_search ns = { start, hex, 0 };
	if (path[0] != '/' && strcmp(path, "[vdso]") != 0)
		return strdup("");
	for (size_t i = 0; prev && i < prev->n; i++)
		if (strcmp(prev->v[i].path, path) == 0 && prev->v[i].start == start)
			return strdup(prev->v[i].build_id);
	dl_iterate_phdr(note_of_object, &ns);
	if (ns.found || path[0] != '/')
		return strdup(hex);
	return read_build_id(path);
}

/* One line: "start-limit perms offset dev inode   path". Returns 1 if executable. */
static int parse_line(char *line, struct lp_mapping *m)
{
	char *p = line, *end;
	m->start = strtoull(p, &end, 16);
	if (*end != '-')
		return 0;
	m->limit = strtoull(end + 1, &p, 16);
	while (*p == ' ')
		p++;
	if (strlen(p) < 4 || p[2] != 'x')
		return 0;
	p += 4;
	m->offset = strtoull(p, &p, 16);
	for (int field = 0; field < 2; field++) {   /* dev, inode */
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
	m->path = p;
	return 1;
}

int lp_maps_read(struct lp_maps *m, const struct lp_maps *prev, const char *exe_path)
{
	size_t len;
	memset(m, 0, sizeof(*m));
	char *text = slurp_maps(&len);
	if (!text)
		return -EIO;
	m->digest = 1469598103934665603ull;
	(void)len;
	size_t cap = 0;
	for (char *line = text, *next; *line && m->n < MAPS_MAX_ENTRIES; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		struct lp_mapping e;
		memset(&e, 0, sizeof(e));
		size_t line_len = strlen(line);
		if (!parse_line(line, &e))
			continue;
		m->digest = m->digest * 1099511628211ull ^ fnv1a(line, line_len);
		if (m->n == cap) {
			cap = cap ? cap * 2 : 64;
			struct lp_mapping *v = realloc(m->v, cap * sizeof(*v));
			if (!v)
				break;
			m->v = v;
		}
		e.path = strdup(e.path);
		e.build_id = e.path ? build_id_for(e.path, e.start, prev) : NULL;
		if (!e.path || !e.build_id) {
			free(e.path);
			free(e.build_id);
			break;
		}
		/* The main program goes first. */
		if (strcmp(e.path, exe_path) == 0 && (m->n == 0 || strcmp(m->v[0].path, exe_path))) {
			memmove(m->v + 1, m->v, m->n * sizeof(*m->v));
			m->v[0] = e;
		} else {
			m->v[m->n] = e;
		}
		m->n++;
	}
	free(text);
	return 0;
}

void lp_maps_free(struct lp_maps *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].path);
		free(m->v[i].build_id);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

int lp_maps_find(const struct lp_maps *m, uint64_t addr)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->v[i].start && addr < m->v[i].limit)
			return (int)i;
	return -1;
}

/*
 * The file sink: gzip (zlib) and atomic, never-overwriting writes of
 * <service>.<pid>.<type>.<seq>.pb.gz into the output directory, and the choice
 * of that directory. The default is $TMPDIR/libprof-<uid> (TMPDIR defaults to
 * /tmp), then /var/tmp/libprof-<uid>: both work for daemons whose working
 * directory is / or read-only. A default directory is created 0700 and refused
 * when it is a symlink, belongs to another user or is open to others.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int lp_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t cap = deflateBound(&z, (uLong)len) + 32;
	*out = malloc(cap);
	if (!*out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(*out);
		*out = NULL;
		return -EIO;
	}
	return 0;
}

/* mkdir -p with mode for the components it creates. */
static int make_dirs(const char *path, mode_t mode)
{
	char buf[LP_PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static int private_dir_ok(const char *dir)
{
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return -EPERM;
	return access(dir, W_OK | X_OK) < 0 ? -errno : 0;
}

static const char *why(int rc)
{
	return rc == -EPERM ? "it is not a private directory of this user" : strerror(-rc);
}

int lp_sink_choose_dir(const char *wanted, char *dir, size_t size)
{
	int rc;
	if (wanted && *wanted) {
		rc = make_dirs(wanted, 0700);
		struct stat st;
		if (rc == 0 && (stat(wanted, &st) < 0 || !S_ISDIR(st.st_mode)))
			rc = -ENOTDIR;
		if (rc == 0 && access(wanted, W_OK | X_OK) < 0)
			rc = -errno;
		if (rc == 0) {
			lp_fmt(dir, size, "%s", wanted);
			return 0;
		}
		lp_log(LP_LOG_WARN, "LIBPROF_OUTPUT_DIR=\"%s\" cannot be used (%s); using the default directory",
		       wanted, why(rc));
	}
	const char *tmp = getenv("TMPDIR");
	const char *bases[] = { tmp && tmp[0] == '/' ? tmp : "/tmp", "/var/tmp" };
	for (size_t i = 0; i < 2; i++) {
		lp_fmt(dir, size, "%s/libprof-%u", bases[i], (unsigned)geteuid());
		rc = private_dir_ok(dir);
		if (rc == 0)
			return 0;
		lp_log(LP_LOG_WARN, "cannot write profiles to %s (%s)", dir, why(rc));
	}
	dir[0] = '\0';
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int lp_sink_write(const char *dir, const char *service, int pid, const char *type,
		  unsigned *seq, const uint8_t *data, size_t len)
{
	char tmp[LP_PATH_MAX], final[LP_PATH_MAX];
	lp_fmt(tmp, sizeof(tmp), "%s/.%s.%d.%s.tmp", dir, service, pid, type);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, data, len);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	for (int tries = 0; rc == 0 && tries < 1000; tries++, (*seq)++) {
		lp_fmt(final, sizeof(final), "%s/%s.%d.%s.%06u.pb.gz", dir, service, pid, type, *seq);
		int moved = renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0;
		if (!moved && (errno == EINVAL || errno == ENOSYS)) {
			/* No RENAME_NOREPLACE here: link() also refuses an existing name. */
			moved = link(tmp, final) == 0;
			if (moved)
				unlink(tmp);
		}
		if (moved) {
			(*seq)++;
			return 0;
		}
		if (errno != EEXIST)
			rc = -errno;
	}
	unlink(tmp);
	return rc ? rc : -EEXIST;
}

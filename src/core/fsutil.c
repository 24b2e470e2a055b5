/*
 * fsutil.c — durable file operations: write, fsync, rename, fsync the
 * directory.  Thread-safe; errno is translated here and never escapes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/banned.h"

enum kura_err kura_mkdirs(const char *path, mode_t mode, struct kura_error *err)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(tmp))
		return kura_fail(err, KURA_EINVAL, "bad directory path '%s'", path);
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		char saved = tmp[i];
		tmp[i] = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return kura_fail_errno(err, kura_err_from_errno(errno),
					       errno, "mkdir '%s'", tmp);
		tmp[i] = saved;
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return kura_fail(err, KURA_EIO, "'%s' is not a directory", path);
	return KURA_OK;
}

enum kura_err kura_fsync_dir(const char *path, struct kura_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "open directory '%s'", path);
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	if (rc != 0)
		return kura_fail_errno(err, kura_err_from_errno(saved), saved,
				       "fsync directory '%s'", path);
	return KURA_OK;
}

enum kura_err kura_write_all(int fd, const void *p, size_t n,
			     struct kura_error *err)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return kura_fail_errno(err, kura_err_from_errno(errno),
					       errno, "write");
		}
		c += w;
		n -= (size_t)w;
	}
	return KURA_OK;
}

enum kura_err kura_pread_all(int fd, void *p, size_t n, off_t off,
			     struct kura_error *err)
{
	char *c = p;
	while (n > 0) {
		ssize_t r = pread(fd, c, n, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return kura_fail_errno(err, KURA_EIO, errno, "pread");
		}
		if (r == 0)
			return kura_fail(err, KURA_EIO, "short read at offset %lld",
					 (long long)off);
		c += r;
		n -= (size_t)r;
		off += r;
	}
	return KURA_OK;
}

/* The directory part of path ("." when there is none). */
static void dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL) {
		snprintf(out, cap, ".");
	} else if (slash == path) {
		snprintf(out, cap, "/");
	} else {
		snprintf(out, cap, "%.*s", (int)(slash - path), path);
	}
}

enum kura_err kura_write_file_atomic(const char *path, const void *p,
				     size_t n, mode_t mode,
				     struct kura_error *err)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	uint8_t rnd[8];
	char rhex[17];
	enum kura_err rc = kura_random_bytes(rnd, sizeof(rnd), err);
	if (rc != KURA_OK)
		return rc;
	kura_hex_encode(rnd, sizeof(rnd), rhex);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, rhex) >= (int)sizeof(tmp))
		return kura_fail(err, KURA_EINVAL, "path too long '%s'", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "create '%s'", tmp);
	rc = kura_write_all(fd, p, n, err);
	if (rc == KURA_OK && fchmod(fd, mode) != 0)
		rc = kura_fail_errno(err, KURA_EIO, errno, "chmod '%s'", tmp);
	if (rc == KURA_OK && fsync(fd) != 0)
		rc = kura_fail_errno(err, kura_err_from_errno(errno), errno,
				     "fsync '%s'", tmp);
	if (close(fd) != 0 && rc == KURA_OK)
		rc = kura_fail_errno(err, KURA_EIO, errno, "close '%s'", tmp);
	if (rc == KURA_OK && rename(tmp, path) != 0)
		rc = kura_fail_errno(err, kura_err_from_errno(errno), errno,
				     "rename '%s'", tmp);
	if (rc != KURA_OK) {
		unlink(tmp);
		return rc;
	}
	dir_of(path, dir, sizeof(dir));
	return kura_fsync_dir(dir, err);
}

enum kura_err kura_check_private_file(int fd, const char *what,
				      const char *path, struct kura_error *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return kura_fail_errno(err, KURA_EIO, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode))
		return kura_fail(err, KURA_EPERM, "%s '%s' is not a regular file", what, path);
	if (st.st_uid != geteuid())
		return kura_fail(err, KURA_EPERM,
				 "%s '%s' is owned by uid %u, not by the current user (uid %u)",
				 what, path, (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 077) != 0)
		return kura_fail(err, KURA_EPERM,
				 "%s '%s' has mode %04o: group and others must have no "
				 "access (chmod 600 '%s')",
				 what, path, (unsigned)(st.st_mode & 07777), path);
	return KURA_OK;
}

enum kura_err kura_read_file(const char *path, size_t max, char **out,
			     size_t *len, struct kura_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return kura_fail_errno(err, KURA_EIO, e, "stat '%s'", path);
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		return kura_fail(err, KURA_ETOOBIG, "'%s' is larger than %zu bytes",
				 path, max);
	}
	size_t n = (size_t)st.st_size;
	char *p = malloc(n + 1);
	if (p == NULL) {
		close(fd);
		return kura_fail(err, KURA_ENOMEM, "read '%s'", path);
	}
	enum kura_err rc = kura_pread_all(fd, p, n, 0, err);
	close(fd);
	if (rc != KURA_OK) {
		free(p);
		return rc;
	}
	p[n] = '\0';
	*out = p;
	if (len)
		*len = n;
	return KURA_OK;
}

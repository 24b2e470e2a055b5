/*
 * fs.c — the local filesystem data store.
 *
 * Layout under ROOT ([storage] path, default DATA_DIR/blobs; directories
 * 0700, files 0600):
 *   ROOT/staging/<32 hex id>                 written, fsynced, not yet published
 *   ROOT/<hex id[0]>/<hex id[1]>/<32 hex id>  published (shards made lazily)
 *   ROOT/server.lock                         when ROOT is not under DATA_DIR:
 *                                            the owner's lock (service.c), so
 *                                            two servers never share a ROOT
 * A blob moves from staging to its final place with one rename, so at every
 * instant it is in exactly one of the two places (or, between a crash and
 * the next recover(), possibly in both with identical content).
 *
 * Durability: writer_finish fsyncs the file and the staging directory;
 * while a large blob is written, writeback of each full WRITEBACK_CHUNK is
 * started at once (sync_file_range, no waiting), so the final fsync finds
 * little left to write instead of the whole blob;
 * publish fsyncs the shard directory after the rename (and the parents of
 * shard directories it creates); remove fsyncs the directories it unlinked
 * from.
 *
 * Threading: no shared mutable state beyond the root path, which is fixed
 * at open; every operation works on its own file descriptors.  Orderings
 * that matter under concurrency: a reader tries final, then staging, then
 * final again (a publish may move the blob between the first two looks);
 * remove unlinks staging before final (so a concurrent publish cannot slip
 * the blob past it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/config.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/log.h"
#include "kura/store.h"
#include "kura/banned.h"

#define ID_HEX_LEN (2 * KURA_BLOB_ID_LEN)
#define STAGING "staging"
/* Start writeback every this many bytes: large enough that small blobs
 * never pay for it, small enough that the device works while the rest of
 * the body arrives. */
#define WRITEBACK_CHUNK (8u << 20)
/* Room below the root for "/xx/yy/<32 hex>" and "/staging/<32 hex>". */
#define ROOT_MAX (PATH_MAX - 64)

struct fs {
	char root[ROOT_MAX];
	char staging[ROOT_MAX + 16];
};

struct kura_store_writer {
	const struct fs *fs;
	int fd;
	uint64_t written; /* bytes written so far */
	uint64_t flushed; /* bytes whose writeback has been started */
	char path[PATH_MAX];
};

struct kura_store_reader {
	int fd;
	uint64_t size;
};

/* ENOSPC/EDQUOT, and EFBIG (a file-size limit: the blob cannot be stored
 * here, which is the server's problem, not the client's), are "no space". */
static enum kura_err write_errno(int e)
{
	if (e == EFBIG)
		return KURA_ENOSPC;
	return kura_err_from_errno(e);
}

static void staging_path(const struct fs *fs, const char *hex, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", fs->staging, hex);
}

static void shard_dirs(const struct fs *fs, const char *hex, char *d1, char *d2)
{
	snprintf(d1, PATH_MAX, "%s/%.2s", fs->root, hex);
	snprintf(d2, PATH_MAX, "%s/%.2s/%.2s", fs->root, hex, hex + 2);
}

static void final_path(const struct fs *fs, const char *hex, char *out)
{
	snprintf(out, PATH_MAX, "%s/%.2s/%.2s/%s", fs->root, hex, hex + 2, hex);
}

/* Create dir if missing; when created, fsync its parent so the new entry
 * survives a crash. */
static enum kura_err make_dir(const char *dir, const char *parent,
			      struct kura_error *err)
{
	if (mkdir(dir, 0700) == 0)
		return kura_fsync_dir(parent, err);
	if (errno == EEXIST)
		return KURA_OK;
	return kura_fail_errno(err, kura_err_from_errno(errno), errno,
			       "mkdir '%s'", dir);
}

static enum kura_err fs_open(void *priv, const struct kura_config *cfg,
			     const char *section, const char *data_dir,
			     struct kura_error *err)
{
	struct fs *fs = priv;
	const char *path = kura_config_get(cfg, section, "path");
	int n;
	if (path != NULL && path[0] != '\0') {
		n = snprintf(fs->root, sizeof(fs->root), "%s", path);
	} else {
		if (data_dir == NULL || data_dir[0] == '\0')
			return kura_fail(
				err, KURA_ECONFIG,
				"[%s] path is unset and there is no data directory",
				section);
		n = snprintf(fs->root, sizeof(fs->root), "%s/blobs", data_dir);
	}
	if (n < 0 || (size_t)n + sizeof("/" STAGING) > sizeof(fs->root))
		return kura_fail(err, KURA_ECONFIG, "[%s] path: too long",
				 section);
	snprintf(fs->staging, sizeof(fs->staging), "%s/%s", fs->root, STAGING);
	enum kura_err rc = kura_mkdirs(fs->staging, 0700, err);
	if (rc == KURA_OK)
		rc = kura_fsync_dir(fs->root, err);
	return rc;
}

static void fs_close(void *priv)
{
	(void)priv;
}

static enum kura_err fs_writer_open(void *priv,
				    const uint8_t id[KURA_BLOB_ID_LEN],
				    struct kura_store_writer **out,
				    struct kura_error *err)
{
	const struct fs *fs = priv;
	char hex[ID_HEX_LEN + 1];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	struct kura_store_writer *w = malloc(sizeof(*w));
	if (w == NULL)
		return kura_fail(err, KURA_ENOMEM, "blob writer");
	w->fs = fs;
	w->written = 0;
	w->flushed = 0;
	staging_path(fs, hex, w->path);
	w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int e = errno;
		enum kura_err rc = kura_fail_errno(err, write_errno(e), e,
						   "create blob '%s'", w->path);
		free(w);
		return rc;
	}
	*out = w;
	return KURA_OK;
}

static enum kura_err fs_writer_write(struct kura_store_writer *w, const void *p,
				     size_t n, struct kura_error *err)
{
	const uint8_t *c = p;
	while (n > 0) {
		ssize_t k = write(w->fd, c, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return kura_fail_errno(err, write_errno(e), e,
					       "write blob '%s'", w->path);
		}
		c += k;
		n -= (size_t)k;
		w->written += (uint64_t)k;
	}
	if (w->written - w->flushed >= WRITEBACK_CHUNK) {
		/* Only a hint: an I/O error it meets is reported again by the
		 * fsync in writer_finish, which is what makes the blob durable. */
		(void)sync_file_range(w->fd, (off_t)w->flushed,
				      (off_t)(w->written - w->flushed),
				      SYNC_FILE_RANGE_WRITE);
		w->flushed = w->written;
	}
	return KURA_OK;
}

static enum kura_err fs_writer_finish(struct kura_store_writer *w,
				      struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	if (fsync(w->fd) != 0) {
		int e = errno;
		rc = kura_fail_errno(err, write_errno(e), e, "fsync blob '%s'",
				     w->path);
	}
	if (close(w->fd) != 0 && rc == KURA_OK) {
		int e = errno;
		rc = kura_fail_errno(err, write_errno(e), e, "close blob '%s'",
				     w->path);
	}
	if (rc == KURA_OK)
		rc = kura_fsync_dir(w->fs->staging, err);
	if (rc != KURA_OK)
		unlink(w->path);
	free(w);
	return rc;
}

static void fs_writer_abort(struct kura_store_writer *w)
{
	if (w == NULL)
		return;
	close(w->fd);
	unlink(w->path);
	free(w);
}

static enum kura_err fs_publish(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
				struct kura_error *err)
{
	const struct fs *fs = priv;
	char hex[ID_HEX_LEN + 1], from[PATH_MAX], to[PATH_MAX];
	char d1[PATH_MAX], d2[PATH_MAX];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	staging_path(fs, hex, from);
	final_path(fs, hex, to);
	shard_dirs(fs, hex, d1, d2);
	enum kura_err rc = make_dir(d1, fs->root, err);
	if (rc == KURA_OK)
		rc = make_dir(d2, d1, err);
	if (rc != KURA_OK)
		return rc;
	if (rename(from, to) != 0) {
		int e = errno;
		struct stat st;
		if (e != ENOENT || stat(to, &st) != 0)
			return kura_fail_errno(err, kura_err_from_errno(e), e,
					       "publish blob '%s'", hex);
		/* Already published (perhaps by a concurrent caller, whose
		 * fsync may not have happened yet: do our own). */
	}
	return kura_fsync_dir(d2, err);
}

static enum kura_err fs_reader_open(void *priv,
				    const uint8_t id[KURA_BLOB_ID_LEN],
				    struct kura_store_reader **out,
				    uint64_t *size, struct kura_error *err)
{
	const struct fs *fs = priv;
	char hex[ID_HEX_LEN + 1], fin[PATH_MAX], stg[PATH_MAX];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	final_path(fs, hex, fin);
	staging_path(fs, hex, stg);
	const char *tries[3] = { fin, stg, fin };
	int fd = -1;
	int e = ENOENT;
	for (int i = 0; i < 3 && fd < 0; i++) {
		fd = open(tries[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			e = errno;
			if (e != ENOENT && e != ENOTDIR)
				break;
		}
	}
	if (fd < 0) {
		if (e == ENOENT || e == ENOTDIR)
			return kura_fail(err, KURA_ENOENT,
					 "blob '%s' not found", hex);
		return kura_fail_errno(err, kura_err_from_errno(e), e,
				       "open blob '%s'", hex);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		e = errno;
		close(fd);
		return kura_fail_errno(err, KURA_EIO, e, "stat blob '%s'", hex);
	}
	struct kura_store_reader *r = malloc(sizeof(*r));
	if (r == NULL) {
		close(fd);
		return kura_fail(err, KURA_ENOMEM, "blob reader");
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	*out = r;
	*size = r->size;
	return KURA_OK;
}

static enum kura_err fs_reader_pread(struct kura_store_reader *r, void *p,
				     size_t n, uint64_t off,
				     struct kura_error *err)
{
	if (off > r->size || n > r->size - off)
		return kura_fail(
			err, KURA_EIO,
			"read of %zu bytes at %llu past the end of a %llu-byte blob",
			n, (unsigned long long)off,
			(unsigned long long)r->size);
	return kura_pread_all(r->fd, p, n, (off_t)off, err);
}

static void fs_reader_close(struct kura_store_reader *r)
{
	if (r == NULL)
		return;
	close(r->fd);
	free(r);
}

/* unlink path; *gone tells whether something was removed.  Missing is fine. */
static enum kura_err unlink_if_present(const char *path, bool *gone,
				       struct kura_error *err)
{
	*gone = false;
	if (unlink(path) == 0) {
		*gone = true;
		return KURA_OK;
	}
	if (errno == ENOENT || errno == ENOTDIR)
		return KURA_OK;
	return kura_fail_errno(err, kura_err_from_errno(errno), errno,
			       "unlink '%s'", path);
}

static enum kura_err fs_remove(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
			       struct kura_error *err)
{
	const struct fs *fs = priv;
	char hex[ID_HEX_LEN + 1], fin[PATH_MAX], stg[PATH_MAX];
	char d1[PATH_MAX], d2[PATH_MAX];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	final_path(fs, hex, fin);
	staging_path(fs, hex, stg);
	shard_dirs(fs, hex, d1, d2);
	bool stg_gone = false, fin_gone = false;
	/* Staging first: see the ordering note at the top. */
	enum kura_err rc = unlink_if_present(stg, &stg_gone, err);
	if (rc == KURA_OK)
		rc = unlink_if_present(fin, &fin_gone, err);
	if (rc == KURA_OK && stg_gone)
		rc = kura_fsync_dir(fs->staging, err);
	if (rc == KURA_OK && fin_gone)
		rc = kura_fsync_dir(d2, err);
	return rc;
}

/* Is name exactly 32 lowercase hex digits?  Then decode it into id. */
static bool blob_name(const char *name, uint8_t id[KURA_BLOB_ID_LEN])
{
	if (strlen(name) != ID_HEX_LEN)
		return false;
	for (size_t i = 0; i < ID_HEX_LEN; i++) {
		char c = name[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return kura_hex_decode(name, ID_HEX_LEN, id, KURA_BLOB_ID_LEN) ==
	       KURA_OK;
}

/* Remove a stray entry of the staging directory (file or empty directory). */
static enum kura_err remove_entry(int dfd, const char *dir, const char *name,
				  bool is_dir, bool *gone,
				  struct kura_error *err)
{
	*gone = false;
	if (unlinkat(dfd, name, is_dir ? AT_REMOVEDIR : 0) == 0) {
		*gone = true;
		return KURA_OK;
	}
	if (errno == ENOENT)
		return KURA_OK;
	if (is_dir && (errno == ENOTEMPTY || errno == EEXIST)) {
		/* Not ours to delete recursively; leave it and say so. */
		kura_warn(NULL, "store: leaving non-empty directory '%s/%s'",
			  dir, name);
		return KURA_OK;
	}
	return kura_fail_errno(err, kura_err_from_errno(errno), errno,
			       "remove '%s/%s'", dir, name);
}

static enum kura_err fs_recover(void *priv, kura_store_referenced_fn referenced,
				void *ctx, uint64_t *removed,
				struct kura_error *err)
{
	const struct fs *fs = priv;
	enum kura_err rc = KURA_OK;
	uint64_t count = 0;
	bool unlinked = false;
	DIR *d = opendir(fs->staging);
	if (d == NULL)
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "open directory '%s'", fs->staging);
	int dfd = dirfd(d);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				rc = kura_fail_errno(err, KURA_EIO, errno,
						     "read directory '%s'",
						     fs->staging);
			break;
		}
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;
			rc = kura_fail_errno(err, KURA_EIO, errno,
					     "stat '%s/%s'", fs->staging, name);
			break;
		}
		uint8_t id[KURA_BLOB_ID_LEN];
		if (S_ISREG(st.st_mode) && blob_name(name, id) &&
		    referenced(ctx, id)) {
			rc = fs_publish(priv, id, err);
			if (rc != KURA_OK)
				break;
			continue;
		}
		bool gone = false;
		rc = remove_entry(dfd, fs->staging, name, S_ISDIR(st.st_mode),
				  &gone, err);
		if (rc != KURA_OK)
			break;
		if (gone) {
			count++;
			unlinked = true;
		}
	}
	closedir(d);
	if (rc == KURA_OK && unlinked)
		rc = kura_fsync_dir(fs->staging, err);
	if (rc == KURA_OK)
		*removed = count;
	return rc;
}

const struct kura_store_ops kura_store_fs = {
	.name = "fs",
	.caps = 0,
	.priv_size = sizeof(struct fs),
	.open = fs_open,
	.close = fs_close,
	.writer_open = fs_writer_open,
	.writer_write = fs_writer_write,
	.writer_finish = fs_writer_finish,
	.writer_abort = fs_writer_abort,
	.publish = fs_publish,
	.reader_open = fs_reader_open,
	.reader_pread = fs_reader_pread,
	.reader_close = fs_reader_close,
	.remove = fs_remove,
	.recover = fs_recover,
};

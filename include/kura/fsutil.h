/*
 * fsutil.h — durable file-system operations.
 *
 * The rule for anything that must survive kill -9 and power loss: write a
 * temporary file, fsync it, rename it into place, fsync the directory.
 * These helpers do exactly that and translate errno into kura codes.
 */
#ifndef KURA_FSUTIL_H
#define KURA_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "kura/err.h"

/* mkdir -p with the given mode for created directories. */
enum kura_err kura_mkdirs(const char *path, mode_t mode,
			  struct kura_error *err);

/* fsync a directory so that entries created or renamed in it are durable. */
enum kura_err kura_fsync_dir(const char *path, struct kura_error *err);

/* Write all of p[0..n) to fd, retrying on EINTR and short writes. */
enum kura_err kura_write_all(int fd, const void *p, size_t n,
			     struct kura_error *err);

/* Read exactly n bytes at offset off; KURA_EIO on a short file. */
enum kura_err kura_pread_all(int fd, void *p, size_t n, off_t off,
			     struct kura_error *err);

/* Replace path atomically and durably with p[0..n), file mode `mode`. */
enum kura_err kura_write_file_atomic(const char *path, const void *p, size_t n,
				     mode_t mode, struct kura_error *err);

/* A file holding a secret must be a regular file owned by the current
 * user with no access for group or others.  fd is the open file; what
 * names it in the message ("master key", "[keys] pin_file").  KURA_EPERM
 * otherwise (KURA_EIO when fstat fails). */
enum kura_err kura_check_private_file(int fd, const char *what,
				      const char *path, struct kura_error *err);

/* Read a whole file of at most max bytes into *out (malloc'd, caller frees,
 * NUL-terminated for convenience).  KURA_ETOOBIG when larger. */
enum kura_err kura_read_file(const char *path, size_t max, char **out,
			     size_t *len, struct kura_error *err);

#endif

/*
 * secretfile.c — a secret read from a file that only kura's user may read
 * ([keys] pin_file, a remote backend's secret_key_file), straight into
 * locked memory (secret.h).
 *
 * The file is checked on the open descriptor (kura_check_private_file), so
 * what is checked is what is read.  Its bytes go to a locked secret and
 * nowhere else; one trailing newline (an editor's) is not part of them.
 *
 * Thread-safe: no state.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/fsutil.h"
#include "kura/secret.h"
#include "kura/banned.h"

enum kura_err kura_secret_from_file(const char *path, const char *what,
				    size_t max, struct kura_secret **out,
				    struct kura_error *err)
{
	enum kura_err rc;
	struct kura_secret *raw = NULL;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kura_fail_errno(err, KURA_ECONFIG, errno, "%s '%s'",
				       what, path);
	if ((rc = kura_check_private_file(fd, what, path, err)) != KURA_OK)
		goto out;
	if (fstat(fd, &st) != 0) {
		rc = kura_fail_errno(err, KURA_EIO, errno, "stat '%s'", path);
		goto out;
	}
	if (max > KURA_SECRET_MAX)
		max = KURA_SECRET_MAX;
	if (st.st_size <= 0 || (uint64_t)st.st_size > max) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "%s '%s' must hold 1..%zu bytes (it has %lld)",
			       what, path, max, (long long)st.st_size);
		goto out;
	}
	size_t n = (size_t)st.st_size;
	if ((raw = kura_secret_new(n)) == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for %s", what);
		goto out;
	}
	if ((rc = kura_pread_all(fd, raw->data, n, 0, err)) != KURA_OK)
		goto out;
	if (raw->data[n - 1] == '\n') {
		n--;
		if (n > 0 && raw->data[n - 1] == '\r')
			n--;
	}
	if (n == 0) {
		rc = kura_fail(err, KURA_ECONFIG, "%s '%s' is empty", what,
			       path);
		goto out;
	}
	*out = kura_secret_from(raw->data, n);
	if (*out == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for %s", what);
out:
	kura_secret_free(raw);
	close(fd);
	return rc;
}

/*
 * dirlock.c — DIR/server.lock: an exclusive POSIX record lock held for a
 * process's life, naming its holder (see dirlock.h for why a POSIX lock).
 *
 * Invariant: this process never has two descriptors of a lock file open,
 * because closing either would drop a lock it holds.  The registry of held
 * locks (device and inode) is checked, under reg_mu, before any lock file
 * is opened, and a held file is never opened again.
 *
 * Thread-safe: reg_mu guards the registry and every open of a lock file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/dirlock.h"
#include "kura/fsutil.h"
#include "kura/parse.h"
#include "kura/banned.h"

#define PID_TEXT_MAX 32

struct kura_dirlock {
	struct kura_dirlock *next; /* registry */
	int fd;
	dev_t dev;
	ino_t ino;
	pid_t owner; /* a child fork()ed from the owner copies the entry,
			 * not the lock: the entry is the owner's only */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kura_dirlock *held;

/* Is the file at path one of ours?  Called with reg_mu held. */
static bool held_here(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return false;
	for (const struct kura_dirlock *l = held; l != NULL; l = l->next)
		if (l->dev == st.st_dev && l->ino == st.st_ino &&
		    l->owner == getpid())
			return true;
	return false;
}

static int lock_path(const char *dir, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, KURA_DIRLOCK_FILE);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The pid the holder wrote, 0 when the text is missing or not a pid. */
static pid_t pid_from_text(int fd)
{
	char text[PID_TEXT_MAX];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	uint64_t v = 0;
	if (n <= 0)
		return 0;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	if (kura_parse_u64(text, (size_t)n, 0x7fffffff, &v) != KURA_OK)
		return 0;
	return (pid_t)v;
}

/* The holder of a write lock on fd's file: 0 when nobody holds one.  The
 * kernel's answer wins; the text is the fallback for file systems whose
 * F_GETLK cannot tell (it reports pid 0 or -1 there). */
static pid_t holder_of(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid > 0 ? fl.l_pid : pid_from_text(fd);
}

static enum kura_err write_pid(int fd, const char *path, struct kura_error *err)
{
	char text[PID_TEXT_MAX];
	int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0)
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "truncate '%s'", path);
	if (pwrite(fd, text, (size_t)n, 0) != (ssize_t)n)
		return kura_fail_errno(err, KURA_EIO, errno, "write '%s'",
				       path);
	return KURA_OK;
}

/* Take the lock on the open file, or say who has it.  reg_mu held. */
static enum kura_err take(int fd, const char *path, const char *what,
			  const char *dir, struct kura_error *err)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	/* The holder may let go between a refused F_SETLK and F_GETLK:
	 * then try again rather than report a holder of pid 0. */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return write_pid(fd, path, err);
		if (errno != EAGAIN && errno != EACCES)
			return kura_fail_errno(err, kura_err_from_errno(errno),
					       errno, "lock '%s'", path);
		pid_t pid = holder_of(fd);
		if (pid != 0)
			return kura_fail(
				err, KURA_EBUSY,
				"%s '%s' is in use by another kura server "
				"(pid %ld, lock '%s'); stop it first or use "
				"another directory",
				what, dir, (long)pid, path);
	}
	return kura_fail(err, KURA_EBUSY,
			 "%s '%s' is in use by another kura "
			 "server (lock '%s')",
			 what, dir, path);
}

enum kura_err kura_dirlock_acquire(const char *dir, const char *what,
				   struct kura_dirlock **out,
				   struct kura_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	enum kura_err rc;
	if (lock_path(dir, path, sizeof(path)) != 0)
		return kura_fail(err, KURA_EINVAL, "%s '%s': path too long",
				 what, dir);
	struct kura_dirlock *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return kura_fail(err, KURA_ENOMEM, "lock");
	pthread_mutex_lock(&reg_mu);
	if (held_here(path)) {
		rc = kura_fail(err, KURA_EBUSY,
			       "%s '%s' is already in use by this "
			       "process (lock '%s')",
			       what, dir, path);
		goto fail;
	}
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
		     0600);
	if (l->fd < 0) {
		rc = kura_fail_errno(err, kura_err_from_errno(errno), errno,
				     "open lock file '%s'", path);
		goto fail;
	}
	if (fstat(l->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = kura_fail(err, KURA_EIO,
			       "lock file '%s' is not a regular file", path);
		goto fail_fd;
	}
	rc = take(l->fd, path, what, dir, err);
	if (rc != KURA_OK)
		goto fail_fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->owner = getpid();
	l->next = held;
	held = l;
	pthread_mutex_unlock(&reg_mu);
	*out = l;
	return KURA_OK;
fail_fd:
	close(l->fd);
fail:
	pthread_mutex_unlock(&reg_mu);
	free(l);
	return rc;
}

void kura_dirlock_release(struct kura_dirlock *lock)
{
	if (lock == NULL)
		return;
	pthread_mutex_lock(&reg_mu);
	for (struct kura_dirlock **pp = &held; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == lock) {
			*pp = lock->next;
			break;
		}
	}
	/* An empty file while nobody holds the lock: a pid in it could only
	 * mislead.  Then closing drops the lock. */
	if (ftruncate(lock->fd, 0) != 0) {
		/* The kernel drops the lock all the same; a stale pid is only
		 * text, never taken for a holder (F_GETLK decides). */
	}
	close(lock->fd);
	pthread_mutex_unlock(&reg_mu);
	free(lock);
}

enum kura_err kura_dirlock_holder(const char *dir, pid_t *pid,
				  struct kura_error *err)
{
	char path[PATH_MAX];
	if (lock_path(dir, path, sizeof(path)) != 0)
		return kura_fail(err, KURA_EINVAL, "'%s': path too long", dir);
	pthread_mutex_lock(&reg_mu);
	if (held_here(path)) {
		pthread_mutex_unlock(&reg_mu);
		*pid = getpid();
		return KURA_OK;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		pthread_mutex_unlock(&reg_mu);
		if (e == ENOENT || e == ENOTDIR) {
			*pid = 0;
			return KURA_OK;
		}
		return kura_fail_errno(err, KURA_EIO, e, "open lock file '%s'",
				       path);
	}
	*pid = holder_of(fd);
	close(fd);
	pthread_mutex_unlock(&reg_mu);
	return KURA_OK;
}

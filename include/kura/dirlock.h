/*
 * dirlock.h — one owner per directory: an exclusive lock on DIR/server.lock
 * held for the owner's whole life, with the owner's pid written into the
 * file for whoever finds the lock taken.
 *
 * Why: a kura server recovers its data directory at start-up (it removes
 * staged blobs that no metadata references).  A second server on the same
 * directory would remove the first one's uploads in flight, so the server
 * takes this lock before it creates, migrates or recovers anything, and
 * recovery refuses to run without it (service.c).
 *
 * The lock is a POSIX record lock (fcntl F_SETLK) on the whole file:
 *   - the kernel drops it when the owner dies, however it dies (kill -9);
 *   - it is not inherited by fork()ed children, and the descriptor is
 *     O_CLOEXEC, so no program the owner starts can keep it alive;
 *   - F_GETLK names the holder's pid even when the file's text is stale.
 * POSIX locks belong to the process, and closing *any* descriptor of the
 * file drops them; so this module is the only code that opens lock files,
 * and it refuses (KURA_EBUSY) to open one its own process already holds.
 *
 * Thread-safe: a process-wide registry of held locks behind a mutex.
 */
#ifndef KURA_DIRLOCK_H
#define KURA_DIRLOCK_H

#include <sys/types.h>

#include "kura/err.h"

#define KURA_DIRLOCK_FILE "server.lock"

struct kura_dirlock;

/*
 * Take the lock of dir (which must exist; the lock file is created mode
 * 0600) and write this process's pid into it.  what names the directory in
 * messages ("data directory").  KURA_EBUSY when another process holds it
 * — the message names that process's pid — or when this process already
 * does; other codes when the file cannot be opened.  *out is written only
 * on success; release it with kura_dirlock_release.
 */
enum kura_err kura_dirlock_acquire(const char *dir, const char *what,
				   struct kura_dirlock **out,
				   struct kura_error *err);

/* Empty the pid text, drop the lock, free.  NULL is a no-op. */
void kura_dirlock_release(struct kura_dirlock *lock);

/*
 * Who holds dir's lock: *pid receives the holder's pid, or 0 when nobody
 * does (also when the directory or its lock file does not exist).  Never
 * takes the lock.  KURA_EIO (with a message) when the file cannot be read.
 */
enum kura_err kura_dirlock_holder(const char *dir, pid_t *pid,
				  struct kura_error *err);

#endif

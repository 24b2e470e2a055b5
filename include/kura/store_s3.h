/*
 * store_s3.h — the remote S3 data store (src/store/s3/): what it adds to
 * the store.h contract, and the health probe the placement layer shows.
 *
 * One opened store per [backend.NAME] with type = s3; open takes that
 * section (store.h).  On the remote, blob ID is the object
 * PREFIX + 32 lowercase hex digits of ID in the configured bucket, and
 * holds exactly the blob's bytes (kura's sealed ciphertext): the remote
 * learns sizes and times, nothing else.
 *
 * Differences from the local store, all allowed by store.h:
 *   - no staging on the remote: writer_finish stores the blob under its
 *     final name (publish is NULL); the remote acknowledged every byte
 *     when it returns;
 *   - recover has nothing staged to sweep and returns *removed = 0 (a
 *     blob the metadata never referenced is the placement layer's to
 *     find through its own records);
 *   - a writer holds at most two parts (part_size bytes each) in memory, a
 *     reader at most a 4 MiB read-ahead window.
 * Failures: KURA_EIO when the remote cannot be reached after the
 * configured retries or answers with an error, KURA_EAUTH when it refuses
 * the credentials (HTTP 403), KURA_ECONFIG at open for an unusable
 * section (plain http to a non-loopback host among others), KURA_EPERM at
 * open for a secret_key_file others may read.
 *
 * Thread-safe as store.h requires.
 */
#ifndef KURA_STORE_S3_H
#define KURA_STORE_S3_H

#include <stddef.h>

#include "kura/err.h"
#include "kura/store.h"

/* The implementation (also listed in kura_stores when compiled in). */
extern const struct kura_store_ops kura_store_s3;

/*
 * Is the remote reachable and does it accept our credentials?  One HEAD
 * of the bucket, without retries; *latency_ms receives the time the
 * answer took (also on failure, when an answer came).  priv is an opened
 * s3 store's state (struct kura_store.priv).  KURA_OK when the bucket
 * answered 200; otherwise as above.
 */
enum kura_err kura_store_s3_probe(void *priv, double *latency_ms,
				  struct kura_error *err);

/* Bytes of memory a writer of this store holds for its data right now
 * (its part buffer): never more than part_size.  For tests. */
size_t kura_store_s3_writer_memory(const struct kura_store_writer *w);

#endif

/*
 * store.h — the data-backend interface.
 *
 * A store keeps blobs: opaque, immutable byte strings (always ciphertext)
 * named by a random 16-byte id.  It knows nothing of buckets, keys, tenants
 * or plaintext.  Implementations: local filesystem (src/store/fs.c); remote
 * S3 and RADOS follow the same contract.
 *
 * Life of a blob, and why it is shaped so:
 *   writer_open -> writer_write* -> writer_finish   data durable, *staged*
 *   (the caller commits the metadata that references the blob)
 *   publish                                         blob moved to its final place
 *   reader_open / reader_pread                      read back (staged or published)
 *   remove                                          gone
 * A crash before the metadata commit therefore leaves only staged blobs that
 * nothing references, and recover() at start-up removes them; a crash after
 * the commit leaves a referenced staged blob that recover() publishes.
 * A reader must find a blob whether or not it has been published yet.
 *
 * Model: curl's vtls backends.  Each implementation exports one const
 * struct kura_store_ops; the core allocates priv_size zeroed bytes and
 * passes them back.  Every function must be safe to call from many threads
 * at once; a writer or reader handle is used by one thread at a time.
 */
#ifndef KURA_STORE_H
#define KURA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/hook.h"
#include "kura/lengths.h"

struct kura_store_writer; /* opaque, implementation-defined */
struct kura_store_reader; /* opaque, implementation-defined */

/* Answers "does metadata reference this blob?" during recover(). */
typedef bool (*kura_store_referenced_fn)(void *ctx,
					 const uint8_t id[KURA_BLOB_ID_LEN]);

struct kura_store_ops {
	const char *name; /* as named in configuration */
	unsigned caps;	  /* reserved, 0 */
	size_t priv_size; /* state the core allocates (zeroed) */

	/* Prepare the backend (create directories, connect).  section is the
	 * configuration section describing it: "storage" for the implicit
	 * local store, "backend.NAME" for a declared one.  data_dir is kura's
	 * data directory. */
	enum kura_err (*open)(void *priv, const struct kura_config *cfg,
			      const char *section, const char *data_dir,
			      struct kura_error *err);
	void (*close)(void *priv);

	/* Optional: check section's settings (files, addresses) without
	 * connecting or creating anything; what `kura check` and start-up
	 * run before open.  NULL: nothing beyond the type to check. */
	enum kura_err (*check)(const struct kura_config *cfg,
			       const char *section, struct kura_error *err);

	/* Start a new staged blob.  The id is fresh and random (the caller
	 * guarantees uniqueness).  KURA_ENOSPC / KURA_EIO on failure. */
	enum kura_err (*writer_open)(void *priv,
				     const uint8_t id[KURA_BLOB_ID_LEN],
				     struct kura_store_writer **out,
				     struct kura_error *err);

	/* Append bytes.  On failure the writer stays open; call writer_abort. */
	enum kura_err (*writer_write)(struct kura_store_writer *w,
				      const void *p, size_t n,
				      struct kura_error *err);

	/* Make every byte written durable (fsync file and directory) and free
	 * the writer.  On failure the staged data is removed and the writer
	 * freed all the same. */
	enum kura_err (*writer_finish)(struct kura_store_writer *w,
				       struct kura_error *err);

	/* Discard the staged data and free the writer.  NULL is a no-op. */
	void (*writer_abort)(struct kura_store_writer *w);

	/* Optional: move a finished, staged blob to its final place, durably.
	 * Called after the referencing metadata committed.  A blob already
	 * published is success.  NULL when staging and final are the same. */
	enum kura_err (*publish)(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
				 struct kura_error *err);

	/* Open a blob (staged or published) for reading; *size receives its
	 * length.  KURA_ENOENT when it does not exist. */
	enum kura_err (*reader_open)(void *priv,
				     const uint8_t id[KURA_BLOB_ID_LEN],
				     struct kura_store_reader **out,
				     uint64_t *size, struct kura_error *err);

	/* Read exactly n bytes at offset off.  KURA_EIO when the blob is
	 * shorter than off + n. */
	enum kura_err (*reader_pread)(struct kura_store_reader *r, void *p,
				      size_t n, uint64_t off,
				      struct kura_error *err);

	/* NULL is a no-op. */
	void (*reader_close)(struct kura_store_reader *r);

	/* Optional: move the reader to the blob's next copy, after the
	 * caller found the bytes of this one wrong (an integrity failure);
	 * *size receives its length.  KURA_ENOENT when there is none
	 * (also when the slot is NULL). */
	enum kura_err (*reader_next)(struct kura_store_reader *r,
				     uint64_t *size, struct kura_error *err);

	/* Delete a blob, staged or published.  Deleting a missing blob is
	 * success.  Durable when it returns. */
	enum kura_err (*remove)(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
				struct kura_error *err);

	/* Start-up recovery: publish every staged blob for which
	 * referenced(ctx, id) is true and remove every other staged blob.
	 * *removed receives how many were removed.  An unreferenced staged
	 * blob may be an upload still being written, so only the process
	 * that owns the store (holds the data directory's lock, service.h
	 * KURA_SERVICE_OWNER) calls this, and only before it accepts
	 * writes. */
	enum kura_err (*recover)(void *priv,
				 kura_store_referenced_fn referenced, void *ctx,
				 uint64_t *removed, struct kura_error *err);
};

struct kura_store {
	const struct kura_store_ops *ops;
	void *priv;
	const struct kura_hook *hook; /* NULL; tests and tracing (hook.h) */
};

extern const struct kura_store_ops kura_store_fs;

/* NULL-terminated table of compiled-in stores. */
extern const struct kura_store_ops *const kura_stores[];

/* Look up [storage] backend in cfg (default "fs"), allocate and open it. */
enum kura_err kura_store_open(const struct kura_config *cfg,
			      const char *data_dir, struct kura_store **out,
			      struct kura_error *err);

/* Open the store a section describes: "storage" as kura_store_open,
 * "backend.NAME" by its type key (required). */
enum kura_err kura_store_open_section(const struct kura_config *cfg,
				      const char *section, const char *data_dir,
				      struct kura_store **out,
				      struct kura_error *err);

/* Check that section names a compiled-in store; opens nothing. */
enum kura_err kura_store_check_section(const struct kura_config *cfg,
				       const char *section,
				       struct kura_error *err);

/* Close and free.  NULL is a no-op. */
void kura_store_close(struct kura_store *store);

/* Check [storage] backend names a compiled-in store; opens nothing.
 * KURA_ECONFIG naming the known ones. */
enum kura_err kura_store_check_config(const struct kura_config *cfg,
				      struct kura_error *err);

/*
 * Calls through the interface, one per slot: kura_store_X(store, ...) is
 * slot X with the same arguments and the same contract (above).  Callers
 * use these, never store->ops->X(store->priv, ...): they are the one
 * place where calls are hooked (hook.h).  Writer and reader slots take the
 * store the handle came from.  publish is optional: without the slot it
 * is success (staging and final place are the same).  A hooked failure of
 * writer_finish keeps the slot's promise: the writer is aborted (freed,
 * its staged data removed).
 */
enum kura_err kura_store_writer_open(struct kura_store *store,
				     const uint8_t id[KURA_BLOB_ID_LEN],
				     struct kura_store_writer **out,
				     struct kura_error *err);
enum kura_err kura_store_writer_write(struct kura_store *store,
				      struct kura_store_writer *w,
				      const void *p, size_t n,
				      struct kura_error *err);
enum kura_err kura_store_writer_finish(struct kura_store *store,
				       struct kura_store_writer *w,
				       struct kura_error *err);
void kura_store_writer_abort(struct kura_store *store,
			     struct kura_store_writer *w);
enum kura_err kura_store_publish(struct kura_store *store,
				 const uint8_t id[KURA_BLOB_ID_LEN],
				 struct kura_error *err);
enum kura_err kura_store_reader_open(struct kura_store *store,
				     const uint8_t id[KURA_BLOB_ID_LEN],
				     struct kura_store_reader **out,
				     uint64_t *size, struct kura_error *err);
enum kura_err kura_store_reader_pread(struct kura_store *store,
				      struct kura_store_reader *r, void *p,
				      size_t n, uint64_t off,
				      struct kura_error *err);
void kura_store_reader_close(struct kura_store *store,
			     struct kura_store_reader *r);
enum kura_err kura_store_reader_next(struct kura_store *store,
				     struct kura_store_reader *r,
				     uint64_t *size, struct kura_error *err);
enum kura_err kura_store_remove(struct kura_store *store,
				const uint8_t id[KURA_BLOB_ID_LEN],
				struct kura_error *err);
enum kura_err kura_store_recover(struct kura_store *store,
				 kura_store_referenced_fn referenced, void *ctx,
				 uint64_t *removed, struct kura_error *err);

#endif

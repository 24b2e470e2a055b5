/*
 * meta.h — the metadata-store interface.
 *
 * The metadata store is the source of truth for what exists: tenants,
 * access keys, buckets, objects and the blobs that hold their ciphertext.
 * Each mutating call is one transaction: it either commits durably before
 * returning KURA_OK or changes nothing.  Implementations: SQLite (embedded
 * default, src/meta/sqlite.c); PostgreSQL follows the same contract.
 *
 * Blob garbage: when a call removes or replaces an object version, the ids
 * of its blobs are queued for deletion in the same transaction (gc_next /
 * gc_done), so no blob is ever leaked or deleted while referenced.
 *
 * Memory: records returned with a struct kura_pool argument have their
 * strings and arrays allocated from that pool.  Fixed-size records are
 * filled in place.  Outputs are written only on success.
 *
 * Every function must be safe to call from many threads at once.
 */
#ifndef KURA_META_H
#define KURA_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/config.h"
#include "kura/crypt.h"
#include "kura/err.h"
#include "kura/keys.h"
#include "kura/pool.h"
#include "kura/store.h"

#define KURA_TENANT_NAME_MAX 64		/* including NUL */
#define KURA_ACCESS_KEY_ID_MAX 129	/* including NUL */
#define KURA_SEALED_SECRET_MAX 256
#define KURA_BUCKET_NAME_MAX 64		/* 3..63 chars + NUL */
#define KURA_REGION_MAX 64
#define KURA_ETAG_MAX 48		/* "<32 hex>-10000" + NUL */
#define KURA_OBJECT_KEY_MAX 1024	/* bytes, as S3 */
#define KURA_SETTING_MAX 4096
#define KURA_UPLOAD_ID_MAX 65		/* including NUL */
#define KURA_MAX_PARTS 10000

struct kura_tenant {
	uint64_t id;
	char name[KURA_TENANT_NAME_MAX];
	int64_t created_ms;
};

struct kura_access_key {
	char id[KURA_ACCESS_KEY_ID_MAX];
	uint64_t tenant_id;
	uint8_t secret_sealed[KURA_SEALED_SECRET_MAX];	/* box under system key */
	size_t secret_sealed_len;
	int64_t created_ms;
	bool active;
};

struct kura_bucket {
	uint64_t id;		/* random, chosen by the caller, never reused */
	uint64_t tenant_id;
	char name[KURA_BUCKET_NAME_MAX];
	char region[KURA_REGION_MAX];
	int64_t created_ms;
	char kek_id[KURA_KEK_ID_MAX];
	uint8_t key_wrapped[KURA_WRAPPED_MAX];	/* bucket key under the KEK */
	size_t key_wrapped_len;
};

/* One blob of an object version: a simple PUT has one part (part_no 0). */
struct kura_part {
	uint32_t part_no;
	uint8_t blob_id[KURA_BLOB_ID_LEN];
	uint64_t size;				/* plaintext bytes */
	uint32_t seg_size;
	uint8_t dek_wrapped[KURA_WRAPPED_DEK_LEN];
	char etag[KURA_ETAG_MAX];		/* hex MD5 of the plaintext */
	int64_t mtime_ms;			/* when the part was uploaded */
};

struct kura_object {
	uint64_t bucket_id;
	const char *key;	/* key_len bytes, not NUL-terminated in general */
	size_t key_len;
	uint8_t version_uid[KURA_UID_LEN];
	uint64_t size;		/* plaintext bytes, sum of the parts */
	char etag[KURA_ETAG_MAX];	/* without quotes */
	int64_t mtime_ms;
	/* Stored HTTP headers; NULL when absent. */
	const char *content_type;
	const char *content_encoding;
	const char *content_language;
	const char *content_disposition;
	const char *cache_control;
	const char *expires;
	/* x-amz-meta-* as a JSON object {"name": "value"} with lowercased
	 * names without the prefix; NULL when there is none. */
	const char *user_meta_json;
	/* Object tags as a JSON object {"key": "value"}; NULL when none. */
	const char *tags_json;
	uint32_t part_count;
	struct kura_part *parts;	/* part_count entries, in object order */
};

/* A multipart upload in progress.  Its parts are stored under its
 * version_uid; completing the upload turns that version_uid into the
 * object's, so no part's bytes are copied or re-encrypted. */
struct kura_upload {
	char id[KURA_UPLOAD_ID_MAX];	/* opaque printable id given to clients */
	uint64_t bucket_id;
	const char *key;
	size_t key_len;
	uint8_t version_uid[KURA_UID_LEN];
	int64_t created_ms;
	/* What the object will carry (as in struct kura_object). */
	const char *content_type;
	const char *content_encoding;
	const char *content_language;
	const char *content_disposition;
	const char *cache_control;
	const char *expires;
	const char *user_meta_json;
	const char *tags_json;
};

/* A listing row. */
struct kura_list_entry {
	const char *key;
	size_t key_len;
	uint64_t size;
	char etag[KURA_ETAG_MAX];
	int64_t mtime_ms;
};

struct kura_meta_ops {
	const char *name;	/* as named in [meta] driver = ... */
	unsigned caps;		/* reserved, 0 */
	size_t priv_size;

	/* Open or create the store and bring its schema to the current
	 * version (migrations run in one transaction each). */
	enum kura_err (*open)(void *priv, const struct kura_config *cfg,
			      const char *data_dir, struct kura_error *err);
	void (*close)(void *priv);

	/* -- settings: small named values (system key, init markers) -- */

	/* KURA_ENOENT when absent; KURA_ETOOBIG when longer than cap. */
	enum kura_err (*setting_get)(void *priv, const char *name, uint8_t *val,
				     size_t cap, size_t *len,
				     struct kura_error *err);
	/* Insert; KURA_EEXIST when the name exists (first writer wins, which
	 * makes first-start initialisation safe against a race). */
	enum kura_err (*setting_insert)(void *priv, const char *name,
					const uint8_t *val, size_t len,
					struct kura_error *err);

	/* -- tenants and access keys -- */

	/* KURA_EEXIST when the name is taken.  t->id is assigned. */
	enum kura_err (*tenant_create)(void *priv, struct kura_tenant *t,
				       struct kura_error *err);
	enum kura_err (*tenant_get)(void *priv, uint64_t id,
				    struct kura_tenant *out,
				    struct kura_error *err);
	enum kura_err (*tenant_get_by_name)(void *priv, const char *name,
					    struct kura_tenant *out,
					    struct kura_error *err);
	/* KURA_EEXIST when the id is taken; KURA_ENOENT for no such tenant. */
	enum kura_err (*access_key_create)(void *priv,
					   const struct kura_access_key *k,
					   struct kura_error *err);
	enum kura_err (*access_key_get)(void *priv, const char *id,
					struct kura_access_key *out,
					struct kura_error *err);

	/* -- buckets -- */

	/* KURA_EEXIST when the name (or the id) exists. */
	enum kura_err (*bucket_create)(void *priv, const struct kura_bucket *b,
				       struct kura_error *err);
	enum kura_err (*bucket_get)(void *priv, const char *name,
				    struct kura_bucket *out,
				    struct kura_error *err);
	/* Buckets of a tenant in name order, allocated from pool. */
	enum kura_err (*bucket_list)(void *priv, uint64_t tenant_id,
				     struct kura_pool *pool,
				     struct kura_bucket **out, size_t *count,
				     struct kura_error *err);
	/* KURA_ENOTEMPTY when the bucket holds objects; KURA_ENOENT.
	 * Uploads in progress are aborted in the same transaction. */
	enum kura_err (*bucket_delete)(void *priv, uint64_t bucket_id,
				       struct kura_error *err);

	/* -- objects -- */

	/* Insert or replace (bucket_id, key) atomically with obj and its parts;
	 * the replaced version's blobs are queued for gc in the same
	 * transaction.  KURA_ENOENT when the bucket no longer exists. */
	enum kura_err (*object_put)(void *priv, const struct kura_object *obj,
				    struct kura_error *err);
	/* KURA_ENOENT when absent. */
	enum kura_err (*object_get)(void *priv, uint64_t bucket_id,
				    const char *key, size_t key_len,
				    struct kura_pool *pool,
				    struct kura_object **out,
				    struct kura_error *err);
	/* Remove; its blobs are queued for gc.  KURA_ENOENT when absent. */
	enum kura_err (*object_delete)(void *priv, uint64_t bucket_id,
				       const char *key, size_t key_len,
				       struct kura_error *err);
	/*
	 * Up to limit entries with key > after (when after_len > 0; after may
	 * be any byte string) and key starting with prefix, in ascending
	 * byte order (memcmp).  *count < limit means there are no more.
	 */
	enum kura_err (*object_list)(void *priv, uint64_t bucket_id,
				     const char *prefix, size_t prefix_len,
				     const char *after, size_t after_len,
				     size_t limit, struct kura_pool *pool,
				     struct kura_list_entry **out,
				     size_t *count, struct kura_error *err);

	/* Replace the tags of an existing object (tags_json NULL removes
	 * them).  KURA_ENOENT when the object does not exist. */
	enum kura_err (*object_set_tags)(void *priv, uint64_t bucket_id,
					 const char *key, size_t key_len,
					 const char *tags_json,
					 struct kura_error *err);

	/* -- multipart uploads -- */

	/* KURA_ENOENT when the bucket no longer exists; KURA_EEXIST for a
	 * duplicate id. */
	enum kura_err (*upload_create)(void *priv, const struct kura_upload *u,
				       struct kura_error *err);
	/* KURA_ENOENT when no such upload exists in the bucket. */
	enum kura_err (*upload_get)(void *priv, uint64_t bucket_id,
				    const char *upload_id,
				    struct kura_pool *pool,
				    struct kura_upload **out,
				    struct kura_error *err);
	/* Insert or replace part p->part_no of the upload; a replaced part's
	 * blob is queued for gc.  KURA_ENOENT when the upload is gone. */
	enum kura_err (*upload_put_part)(void *priv, uint64_t bucket_id,
					 const char *upload_id,
					 const struct kura_part *p,
					 struct kura_error *err);
	/* Up to limit parts with part_no > after, ascending.  KURA_ENOENT
	 * when the upload does not exist. */
	enum kura_err (*upload_list_parts)(void *priv, uint64_t bucket_id,
					   const char *upload_id, uint32_t after,
					   size_t limit, struct kura_pool *pool,
					   struct kura_part **out, size_t *count,
					   struct kura_error *err);
	/*
	 * Complete: in one transaction, check the upload exists, insert or
	 * replace the object obj (obj->version_uid is the upload's; obj->parts
	 * names the chosen parts, which must all belong to the upload with the
	 * same blob ids), queue the replaced object's blobs and every part of
	 * the upload not chosen for gc, and delete the upload.  KURA_ENOENT
	 * when the upload is gone; KURA_ESTATE when a chosen part does not
	 * match the upload's.
	 */
	enum kura_err (*upload_complete)(void *priv, const char *upload_id,
					 const struct kura_object *obj,
					 struct kura_error *err);
	/* Delete the upload and queue its parts' blobs.  KURA_ENOENT. */
	enum kura_err (*upload_abort)(void *priv, uint64_t bucket_id,
				      const char *upload_id,
				      struct kura_error *err);
	/* Uploads of a bucket ordered by (key, id), starting after
	 * (key_marker, id_marker): with an empty id_marker, after every upload
	 * of key_marker; up to limit, keys starting with prefix. */
	enum kura_err (*upload_list)(void *priv, uint64_t bucket_id,
				     const char *prefix, size_t prefix_len,
				     const char *key_marker, size_t km_len,
				     const char *id_marker, size_t limit,
				     struct kura_pool *pool,
				     struct kura_upload **out, size_t *count,
				     struct kura_error *err);
	/* Up to limit uploads of any bucket created before before_ms (for the
	 * sweeper of abandoned uploads). */
	enum kura_err (*upload_expired)(void *priv, int64_t before_ms,
					size_t limit, struct kura_pool *pool,
					struct kura_upload **out, size_t *count,
					struct kura_error *err);

	/* -- blob garbage collection and recovery -- */

	/* Up to max queued blob ids into ids; *count may be 0. */
	enum kura_err (*gc_next)(void *priv, uint8_t (*ids)[KURA_BLOB_ID_LEN],
				 size_t max, size_t *count,
				 struct kura_error *err);
	/* Forget queued ids whose blobs have been removed. */
	enum kura_err (*gc_done)(void *priv,
				 const uint8_t (*ids)[KURA_BLOB_ID_LEN],
				 size_t count, struct kura_error *err);
	/* Is the blob referenced by any object version or upload part (or
	 * queued for gc, which counts as referenced until gc_done)? */
	enum kura_err (*blob_referenced)(void *priv,
					 const uint8_t id[KURA_BLOB_ID_LEN],
					 bool *referenced,
					 struct kura_error *err);
};

struct kura_meta {
	const struct kura_meta_ops *ops;
	void *priv;
};

extern const struct kura_meta_ops kura_meta_sqlite;

/* NULL-terminated table of compiled-in metadata stores. */
extern const struct kura_meta_ops *const kura_metas[];

/* Look up [meta] driver in cfg (default "sqlite"), allocate and open it. */
enum kura_err kura_meta_open(const struct kura_config *cfg,
			     const char *data_dir, struct kura_meta **out,
			     struct kura_error *err);

/* Close and free.  NULL is a no-op. */
void kura_meta_close(struct kura_meta *meta);

#endif

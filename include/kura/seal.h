/*
 * seal.h — metadata seals: the metadata store cannot lie about an object.
 *
 * Everything in an object's row that shapes what a client receives — the
 * binding of its data to (tenant, bucket, key, version), its part list,
 * size, ETag, content headers, user metadata, tags, encryption — is
 * authenticated by a *seal*: the ETag (and the additional checksum, when
 * the row has one) boxed with AES-256-GCM under a key derived from a
 * bucket key of the bucket's own kura key, with every other field as the
 * additional data (docs/FORMAT.md §10).  Multipart uploads
 * and their parts are sealed the same way.  Someone who can read and
 * rewrite meta.db but holds no key can neither read a sealed ETag or
 * checksum (functions of the plaintext) nor change, swap, drop or reorder anything a
 * seal covers: opening fails with KURA_EINTEGRITY.  Replaying a whole
 * older row (rollback) is not detected here; see docs/SECURITY.md.
 *
 * A seal is made when a row is written and opened whenever a row is read
 * to answer a client (GET, HEAD, listings, copies, tagging, multipart).
 * Rows written before schema 5 carry no seal until the upgrade job
 * (kura_seal_upgrade) seals them; reading one is KURA_EBUSY while that job
 * still has work (the settings marker KURA_SEAL_PENDING), KURA_EINTEGRITY
 * afterwards.
 *
 * Threading: a struct kura_seal_ctx belongs to one thread (a request); it
 * keeps the derived key of the last bucket key used, in locked memory.
 */
#ifndef KURA_SEAL_H
#define KURA_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/buf.h"
#include "kura/err.h"
#include "kura/kms.h"
#include "kura/meta.h"
#include "kura/secret.h"

/* The seals' format version (docs/FORMAT.md §10). */
#define KURA_SEAL_FORMAT 1

/* Settings row present while rows written before schema 5 are unsealed. */
#define KURA_SEAL_PENDING "seal_pending"

struct kura_box_ctx;

struct kura_seal_ctx {
	struct kura_kms *kms;
	struct kura_meta *meta;
	uint64_t bk_id;			/* whose keys are cached */
	struct kura_secret *bucket_key; /* that bucket key, or NULL */
	struct kura_box_ctx *box;	/* the seal key derived from it */
	struct kura_buf aad;		/* encodings, reused row after row */
};

void kura_seal_ctx_init(struct kura_seal_ctx *c, struct kura_kms *kms,
			struct kura_meta *meta);
/* Wipe the cached keys.  Safe on a zeroed or released context. */
void kura_seal_ctx_release(struct kura_seal_ctx *c);

/* A copy of bucket key bk_id (caller frees): the one cached when it is
 * the sealing key in use, else read through kura_kms_read_key.  Lets a
 * reader whose data key is wrapped by the same bucket key as its seal
 * (SSE-S3) fetch it once. */
enum kura_err kura_seal_bucket_key(struct kura_seal_ctx *c, uint64_t bk_id,
				   struct kura_secret **out,
				   struct kura_error *err);

/*
 * Seal a row about to be written under the current bucket key of b's own
 * key: fills seal, seal_len, seal_bk_id (and for an object parts_digest,
 * from o->parts).  Errors as kura_kms_write_key (a disabled bucket key:
 * KURA_EKEY_DISABLED).  o->etag / p->etag must be set.
 */
enum kura_err kura_seal_object(struct kura_seal_ctx *c,
			       const struct kura_bucket *b,
			       struct kura_object *o, struct kura_error *err);
enum kura_err kura_seal_upload(struct kura_seal_ctx *c,
			       const struct kura_bucket *b,
			       struct kura_upload *u, struct kura_error *err);
enum kura_err kura_seal_part(struct kura_seal_ctx *c,
			     const struct kura_bucket *b,
			     const uint8_t version_uid[KURA_UID_LEN],
			     struct kura_part *p, struct kura_error *err);

/*
 * Check a row read from the store against its seal and restore its ETag
 * and checksum (o->etag and o->sum, p->etag and p->sum, u->sum).
 * tenant_id is the row's bucket's.  For an object, with_parts says
 * o->parts were read and must match the sealed digest (a listing passes
 * false).  KURA_EINTEGRITY with a message naming what
 * failed; KURA_EBUSY for a row never sealed while the upgrade runs;
 * KURA_EKEY_* when the sealing bucket key cannot be used.
 */
enum kura_err kura_seal_object_open(struct kura_seal_ctx *c, uint64_t tenant_id,
				    struct kura_object *o, bool with_parts,
				    struct kura_error *err);
enum kura_err kura_seal_upload_open(struct kura_seal_ctx *c, uint64_t tenant_id,
				    struct kura_upload *u,
				    struct kura_error *err);
enum kura_err kura_seal_part_open(struct kura_seal_ctx *c, uint64_t tenant_id,
				  uint64_t bucket_id,
				  const uint8_t version_uid[KURA_UID_LEN],
				  struct kura_part *p, struct kura_error *err);

/*
 * A keyed digest of an object row as sealed — every sealed field and the
 * ETag — for the audit log ("row" of PutObject, CopyObject,
 * CompleteMultipartUpload and the tagging requests): HMAC-SHA256 under a
 * key derived from the system key, first KURA_ROW_DIGEST_LEN bytes, hex.
 * It does not depend on the bucket key that seals the row, so a
 * rotation's re-seal keeps it; it is keyed because the ETag may be the
 * plaintext's MD5.  kura audit verify --against-meta compares it with the
 * row the metadata holds, which finds a row put back as it was earlier
 * (older tags, say) that every seal accepts.  o->etag is the clear ETag.
 */
#define KURA_ROW_DIGEST_LEN 16
enum kura_err kura_seal_object_digest(const struct kura_secret *key,
				      uint64_t tenant_id,
				      const struct kura_object *o,
				      char hex[2 * KURA_ROW_DIGEST_LEN + 1],
				      struct kura_error *err);

/* The digest of a part list that an object's seal covers. */
void kura_seal_parts_digest(const struct kura_part *parts, uint32_t count,
			    uint8_t out[KURA_PARTS_DIGEST_LEN]);

/*
 * Seal again what bucket key old_bk_id sealed, under new_bk_id (after a
 * rotation of the bucket's own key), up to limit rows of each kind: every
 * row is opened with the old key first, so a row that does not open is
 * never re-sealed (it is logged and stays an integrity failure).
 * *moved receives the number of rows re-sealed (0: none left).
 */
enum kura_err kura_seal_rotate(struct kura_kms *kms, struct kura_meta *meta,
			       uint64_t bucket_id, uint64_t old_bk_id,
			       size_t limit, size_t *moved,
			       struct kura_error *err);

#define KURA_SEAL_WAIT_MAX 256

/*
 * Which rows without a seal a run of the upgrade may seal.  The marker
 * alone cannot say (anyone who can write meta.db can plant it): the caller
 * decides from the audit log's record of earlier runs (src/daemon/
 * seal_job.c) — every bucket on the first run, afterwards only the buckets
 * an earlier run had to leave waiting (their key was disabled).
 */
struct kura_seal_scope {
	bool all;
	const uint64_t *buckets; /* when !all, ascending */
	size_t n_buckets;
};

/* What kura_seal_upgrade did. */
struct kura_seal_report {
	size_t objects, uploads, parts; /* rows sealed */
	/* Buckets left for a later run: their own key is disabled now. */
	uint64_t waiting[KURA_SEAL_WAIT_MAX];
	size_t n_waiting;
	/* Buckets holding rows without a seal that the scope does not allow
	 * sealing: those rows stay unsealed — integrity failures. */
	size_t buckets_refused;
	bool ran;  /* the marker asked for an upgrade */
	bool done; /* nothing left to wait for: marker removed */
};

/*
 * The upgrade of rows written before schema 5, when the KURA_SEAL_PENDING
 * marker is set: seal every row never sealed in the buckets scope allows,
 * bucket by bucket; leave buckets whose own key is disabled waiting, and
 * those whose key was destroyed alone (nothing there can be read again);
 * remove the marker when nothing waits.  Safe while requests are served.
 */
enum kura_err kura_seal_upgrade(struct kura_kms *kms, struct kura_meta *meta,
				const struct kura_seal_scope *scope,
				struct kura_seal_report *report,
				struct kura_error *err);

/*
 * Tell the readers of this process where the upgrade stands after a run:
 * a row without a seal is then "not sealed yet" (KURA_EBUSY, 503) only in
 * these buckets, an integrity failure anywhere else — whatever the marker
 * in meta.db says.  Processes that never run the upgrade (CLI commands)
 * go by the marker.  Thread-safe.
 */
void kura_seal_upgrade_state(struct kura_kms *kms, const uint64_t *waiting,
			     size_t n);

#endif

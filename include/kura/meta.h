/*
 * meta.h — the metadata-store interface.
 *
 * The metadata store is the source of truth for what exists: tenants,
 * access keys, buckets, objects and the blobs that hold their ciphertext.
 * Each mutating call is one transaction: it either commits durably before
 * returning KURA_OK or changes nothing.  Implementations: SQLite (embedded
 * default, src/meta/sqlite/); PostgreSQL follows the same contract.
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

#include "kura/checksum.h"
#include "kura/config.h"
#include "kura/err.h"
#include "kura/hook.h"
#include "kura/lengths.h"
#include "kura/pool.h"

#define KURA_TENANT_NAME_MAX 64	   /* including NUL */
#define KURA_ACCESS_KEY_ID_MAX 129 /* including NUL */
#define KURA_SEALED_SECRET_MAX 256
#define KURA_BUCKET_NAME_MAX 64 /* 3..63 chars + NUL */
#define KURA_REGION_MAX 64
#define KURA_PLACEMENT_NAME_MAX 33 /* [a-z0-9-]{1,32} and NUL */
#define KURA_ETAG_MAX 48	   /* "<32 hex>-10000" + NUL */
#define KURA_OBJECT_KEY_MAX 1024   /* bytes, as S3 */
#define KURA_SETTING_MAX 4096
#define KURA_UPLOAD_ID_MAX 65 /* including NUL */
#define KURA_KEY_NAME_MAX 257 /* kura key names: 1..256 + NUL */
#define KURA_PROVIDER_NAME_MAX 32
#define KURA_SSEC_HMAC_LEN 32
#define KURA_MAX_PARTS 10000
/* A metadata seal (docs/FORMAT.md §10): box nonce || boxed ETag, NUL,
 * checksum algorithm, type and digest || tag. */
#define KURA_SEAL_MAX (12 + KURA_ETAG_MAX + 3 + KURA_CHECKSUM_DIGEST_MAX + 16)
#define KURA_PARTS_DIGEST_LEN 32
#define KURA_ROW_KEY_LEN 32
#define KURA_ROW_MAC_LEN 32

/* A tenant's state.  Suspended: its buckets and keys stay as they are,
 * but every request signed by one of its access keys is refused (auth.h
 * kura_auth_lookup_key); resuming makes them work again.  (v4) */
enum kura_tenant_state {
	KURA_TENANT_ACTIVE = 0,
	KURA_TENANT_SUSPENDED = 1,
};

struct kura_tenant {
	uint64_t id;
	char name[KURA_TENANT_NAME_MAX];
	int64_t created_ms;
	enum kura_tenant_state state; /* a new tenant is active */
};

struct kura_access_key {
	char id[KURA_ACCESS_KEY_ID_MAX];
	uint64_t tenant_id;
	uint8_t secret_sealed[KURA_SEALED_SECRET_MAX]; /* box under system key */
	size_t secret_sealed_len;
	int64_t created_ms;
	bool active; /* false: revoked, for good (access_key_revoke) */
};

/*
 * Keys.  A kura key is a tenant's named key with a lifecycle; each of its
 * versions is one KEK in the key provider.  Data is never encrypted by a
 * kura key directly: for every (bucket, kura key) pair in use there is a
 * *bucket key* (random, wrapped by the key's current version), and bucket
 * keys wrap the DEKs.  Rotation adds a version and new bucket keys; the
 * old bucket keys are *retired* and their DEKs re-wrapped in the
 * background, after which the old bucket keys and KEK version go.
 */
enum kura_key_kind {
	KURA_KEY_BUCKET = 1, /* a bucket's own key ("bucket/NAME") */
	KURA_KEY_TENANT = 2, /* a tenant-wide default key ([keys] kek_scope) */
	KURA_KEY_NAMED = 3,  /* created or imported by the owner (SSE-KMS) */
};

enum kura_key_state {
	KURA_KEY_ENABLED = 1,
	KURA_KEY_DISABLED = 2,	/* reads and writes refused until enabled */
	KURA_KEY_DESTROYED = 3, /* every version destroyed in the provider */
};

enum kura_key_version_state {
	KURA_KEYVER_ACTIVE = 1,	   /* the current version */
	KURA_KEYVER_RETIRED = 2,   /* superseded; may still wrap bucket keys */
	KURA_KEYVER_DESTROYED = 3, /* destroyed in the provider */
};

struct kura_key {
	uint64_t id; /* assigned by key_create */
	uint64_t tenant_id;
	char name[KURA_KEY_NAME_MAX]; /* unique per tenant among live keys */
	enum kura_key_kind kind;
	enum kura_key_state state;
	uint32_t current_version;	       /* 1 after creation */
	char provider[KURA_PROVIDER_NAME_MAX]; /* provider that holds the KEKs */
	bool imported; /* version 1 came from the owner (BYOK) */
	int64_t created_ms;
	int64_t changed_ms; /* last lifecycle change */
};

struct kura_key_version {
	uint64_t key_id;
	uint32_t version;
	char kek_id[KURA_KEK_ID_MAX];
	enum kura_key_version_state state;
	int64_t created_ms;
	int64_t destroyed_ms; /* 0 unless destroyed */
};

/* A bucket key, with what reading it needs from its key and version. */
struct kura_bucket_key {
	uint64_t id; /* assigned on insert, never reused */
	uint64_t bucket_id;
	uint64_t key_id;
	uint32_t key_version; /* the version whose KEK wrapped it */
	uint8_t wrapped[KURA_WRAPPED_MAX];
	size_t wrapped_len;
	bool current; /* used for new data of (bucket, key) */
	int64_t created_ms;
	int64_t retired_ms; /* 0 while current */
	/* Filled by the getters (joined): */
	uint64_t tenant_id;	      /* the bucket's tenant */
	char kek_id[KURA_KEK_ID_MAX]; /* of key_version */
	enum kura_key_state key_state;
	enum kura_key_version_state version_state;
};

/* Server-side encryption modes an object can carry (S3's). */
enum kura_sse {
	KURA_SSE_S3 = 0,  /* "AES256": the bucket's own (or tenant) key */
	KURA_SSE_KMS = 1, /* "aws:kms": a kura key the client named */
	KURA_SSE_C = 2,	  /* customer-provided key (never stored) */
};

/* The longest default retention a bucket may have (100 years). */
#define KURA_LOCK_DAYS_MAX 36500u

/* Object Lock retention modes (S3's).  GOVERNANCE retention may be
 * shortened or removed by a caller allowed to bypass it; COMPLIANCE
 * retention only extended, by anyone, until it ends. */
enum kura_lock_mode {
	KURA_LOCK_NONE = 0,
	KURA_LOCK_GOVERNANCE = 1,
	KURA_LOCK_COMPLIANCE = 2,
};

/* A bucket's versioning state, as S3 has it: once enabled, a bucket can
 * be suspended but never unversioned again. */
enum kura_versioning {
	KURA_VERSIONING_OFF = 0,
	KURA_VERSIONING_ENABLED = 1,
	KURA_VERSIONING_SUSPENDED = 2,
};

struct kura_bucket {
	uint64_t id; /* random, chosen by the caller, never reused */
	uint64_t tenant_id;
	char name[KURA_BUCKET_NAME_MAX];
	char region[KURA_REGION_MAX];
	int64_t created_ms;
	uint64_t key_id; /* kura key for SSE-S3 data (own or tenant's) */
	/* Default encryption (PutBucketEncryption); KURA_SSE_S3 unless set. */
	enum kura_sse default_sse;
	uint64_t default_kms_key_id;	 /* for KURA_SSE_KMS; 0 otherwise */
	enum kura_versioning versioning; /* PutBucketVersioning (schema 6) */
	/* Object Lock (schema 6): once enabled never disabled, and the
	 * bucket's versioning never suspended.  The default retention new
	 * versions get when a write names none: a mode and a period in days
	 * or years (one of them; both 0 for none). */
	bool object_lock;
	enum kura_lock_mode lock_default_mode;
	uint32_t lock_default_days;
	uint32_t lock_default_years;
	/* Lifecycle configuration (schema 6): whether the bucket has one,
	 * and the digest of its text (KURA_LC_DIGEST_LEN bytes,
	 * kura_lc_digest), which is under the row MAC; the text itself is
	 * read with bucket_get_lifecycle, checked against it. */
	bool has_lifecycle;
	uint8_t lifecycle_digest[32];
	/* Placement policy (schema 7): the [placement.NAME] its blobs follow;
	 * empty for buckets made before placement ("default"). */
	char placement[KURA_PLACEMENT_NAME_MAX];
};

/*
 * Replicas (schema 7): where every copy of every blob is, with the labels
 * the backend had when the copy was made, and the history of each copy's
 * states (docs/PLACEMENT.md).  Rows are written before the metadata that
 * references the blob commits (a crash leaves rows of an unreferenced blob:
 * replica_orphans finds them), kept after deletion (state deleted).
 */
enum kura_replica_state {
	KURA_REPLICA_PENDING,  /* queued: an async copy not made yet */
	KURA_REPLICA_STORED,   /* written, acknowledged durable */
	KURA_REPLICA_VERIFIED, /* read back and authenticated by a scrub */
	KURA_REPLICA_FAILED,   /* missing or corrupt when last read */
	KURA_REPLICA_DELETED,  /* removed from the backend */
};
#define KURA_REPLICA_STATES 5
const char *kura_replica_state_name(enum kura_replica_state s);

#define KURA_LABEL_MAX 64
#define KURA_JURISDICTION_LEN 3 /* two letters and NUL */
#define KURA_REMOTE_ID_MAX 192
#define KURA_REPLICA_NOTE_MAX 200

struct kura_replica {
	uint8_t blob_id[KURA_BLOB_ID_LEN];
	char backend[KURA_PLACEMENT_NAME_MAX];
	char type[8]; /* fs, s3 */
	char site[KURA_LABEL_MAX];
	char region[KURA_LABEL_MAX];
	char jurisdiction[KURA_JURISDICTION_LEN];
	char remote_id[KURA_REMOTE_ID_MAX]; /* its name on the backend */
	uint64_t bytes;			    /* ciphertext */
	enum kura_replica_state state;
	int64_t stored_ms, verified_ms; /* 0: never */
	int64_t changed_ms;		/* when state last changed */
	uint32_t attempts;		/* failed copy attempts (queue) */
	int64_t next_try_ms;		/* queue: not before */
};

struct kura_replica_event {
	enum kura_replica_state state;
	int64_t at_ms;
	char note[KURA_REPLICA_NOTE_MAX];
};

/* One group of a bucket's replicas: backend (with its labels) and state. */
struct kura_replica_group {
	char backend[KURA_PLACEMENT_NAME_MAX];
	char site[KURA_LABEL_MAX];
	char region[KURA_LABEL_MAX];
	char jurisdiction[KURA_JURISDICTION_LEN];
	enum kura_replica_state state;
	uint64_t count, bytes;
};
typedef enum kura_err (*kura_replica_group_fn)(
	void *ctx, const struct kura_replica_group *g, struct kura_error *err);

#define KURA_LC_DIGEST_LEN 32
#define KURA_LC_TEXT_MAX (16u << 20)
/* The digest of a lifecycle configuration's stored text: HMAC-SHA256 under
 * a fixed domain string (a plain hash; the row MAC is what is keyed).
 * False on a crypto failure. */
bool kura_lc_digest(const char *text, size_t len,
		    uint8_t out[KURA_LC_DIGEST_LEN]);

/*
 * Metadata seals (docs/FORMAT.md §10).  Rows that shape what a client
 * receives — objects, multipart uploads and their parts — carry a *seal*:
 * their ETag boxed (AES-256-GCM) under a key derived from a bucket key of
 * the bucket's own kura key, with every other field of the row as the
 * additional data.  Someone who can rewrite the metadata but holds no key
 * can neither read a sealed ETag (a function of the plaintext) nor change
 * a field without the seal failing.  The store keeps seals opaquely: the
 * seal is made and opened above this interface (src/kms/seal.c), and a
 * sealed row's ETag is never stored in the clear (the etag column is
 * written empty when seal_len > 0).  Rows written before schema 5 have no
 * seal (seal_len 0, seal_bk_id 0) until the upgrade job seals them.
 */

/* One blob of an object version: a simple PUT has one part (part_no 0). */
struct kura_part {
	uint32_t part_no;
	uint8_t blob_id[KURA_BLOB_ID_LEN];
	uint64_t size; /* plaintext bytes */
	uint32_t seg_size;
	uint8_t dek_wrapped[KURA_WRAPPED_DEK_LEN];
	/* The part's ETag (hex MD5 of its plaintext for SSE-S3, random for
	 * SSE-C and SSE-KMS).  Kept only while the part belongs to an upload
	 * in progress, sealed; an object's parts have none (empty). */
	char etag[KURA_ETAG_MAX];
	/* Its additional checksum (x-amz-checksum-*), kept with the ETag in
	 * the seal of an upload part; none for an object's parts. */
	struct kura_checksum_value sum;
	int64_t mtime_ms; /* when the part was uploaded */
	uint64_t bk_id;	  /* bucket key that wraps the DEK;
						 * 0: none (SSE-C data, or the
						 * key was destroyed) */
	/* Upload parts: the seal over etag and the fields above. */
	uint8_t seal[KURA_SEAL_MAX];
	size_t seal_len;
	uint64_t seal_bk_id;
};

/* A blob as a scrub needs it: what binds and wraps its data. */
struct kura_scrub_blob {
	uint64_t tenant_id, bucket_id;
	uint8_t version_uid[KURA_UID_LEN];
	bool ssec; /* SSE-C: cannot be authenticated without the client */
	struct kura_part part;
};

struct kura_object {
	uint64_t bucket_id;
	const char *key; /* key_len bytes, not NUL-terminated in general */
	size_t key_len;
	uint8_t version_uid[KURA_UID_LEN];
	uint64_t size;		  /* plaintext bytes, sum of the parts */
	char etag[KURA_ETAG_MAX]; /* without quotes */
	/* The additional checksum (algo NONE: none), kept only in the seal
	 * with the ETag; for a composite one the digest of the parts'. */
	struct kura_checksum_value sum;
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
	/* Server-side encryption as the client asked for it. */
	enum kura_sse sse;
	uint64_t kms_key_id;		       /* KURA_SSE_KMS: the named key */
	uint8_t ssec_hmac[KURA_SSEC_HMAC_LEN]; /* KURA_SSE_C: key check value */
	uint32_t part_count;
	struct kura_part *parts; /* part_count entries, in object order;
					 * NULL in listings */
	/* The seal over etag and every field above, and the digest of the
	 * parts' (part_no, size, seg_size, blob_id) that it covers, so that a
	 * listing can check a row without reading its parts. */
	uint8_t seal[KURA_SEAL_MAX];
	size_t seal_len;
	uint64_t seal_bk_id;
	uint8_t parts_digest[KURA_PARTS_DIGEST_LEN];
	/* Versions (schema 6, sealed with the row).  vseq orders the
	 * versions of one key (the newest has the largest; kura uses the
	 * write time in microseconds, or one more than the newest when the
	 * clock lags).  The null version is the one S3 names "null": the
	 * only version in a bucket never versioned, the one a write in a
	 * suspended bucket replaces; at most one per key.  A delete marker
	 * has no parts, size 0 and an empty ETag. */
	uint64_t vseq;
	bool null_version;
	bool delete_marker;
	/* Object Lock (schema 6, sealed): retention until lock_until_ms
	 * (KURA_LOCK_NONE: none, lock_until_ms 0), and a legal hold.  A
	 * version is locked while either holds (kura_version_locked). */
	enum kura_lock_mode lock_mode;
	int64_t lock_until_ms;
	bool legal_hold;
	/* Version listings only: the newest version of its key. */
	bool is_latest;
	/* Listings and seal batches only: the bucket's tenant. */
	uint64_t tenant_id;
};

/* Whether version o is protected by Object Lock at now_ms: a legal hold,
 * or retention that has not ended.  With bypass_governance, GOVERNANCE
 * retention does not count (a caller allowed to bypass it). */
static inline bool kura_version_locked(const struct kura_object *o,
				       int64_t now_ms, bool bypass_governance)
{
	if (o->legal_hold)
		return true;
	if (o->lock_mode == KURA_LOCK_NONE || o->lock_until_ms <= now_ms)
		return false;
	return !(bypass_governance && o->lock_mode == KURA_LOCK_GOVERNANCE);
}

/* A condition on the newest version of a key, checked in the transaction
 * that writes (conditional requests).  expect_vseq 0: the key has no
 * version at all. */
struct kura_put_cond {
	uint64_t expect_vseq;
};

/* A multipart upload in progress.  Its parts are stored under its
 * version_uid; completing the upload turns that version_uid into the
 * object's, so no part's bytes are copied or re-encrypted. */
struct kura_upload {
	char id[KURA_UPLOAD_ID_MAX]; /* opaque printable id given to clients */
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
	enum kura_sse sse;
	uint64_t kms_key_id;
	uint8_t ssec_hmac[KURA_SSEC_HMAC_LEN];
	/* The Object Lock settings the object will get (schema 6). */
	enum kura_lock_mode lock_mode;
	int64_t lock_until_ms;
	bool legal_hold;
	/* The checksum algorithm and type the upload declared
	 * (x-amz-checksum-algorithm, -type; digest unused), kept only in
	 * the seal. */
	struct kura_checksum_value sum;
	/* The seal over every field above (boxed: nothing, or sum's
	 * algorithm and type). */
	uint8_t seal[KURA_SEAL_MAX];
	size_t seal_len;
	uint64_t seal_bk_id;
	/* Seal batches only: the bucket's tenant. */
	uint64_t tenant_id;
};

/* A part of an upload in progress, with what its seal binds (seal
 * batches). */
struct kura_upload_part {
	uint64_t tenant_id;
	uint64_t bucket_id;
	uint8_t version_uid[KURA_UID_LEN]; /* the upload's */
	struct kura_part part;
};

/*
 * Rows to seal again: those sealed by one bucket key (after a rotation of
 * the bucket's own key), or never sealed (written before schema 5).
 */
struct kura_seal_batch {
	struct kura_object *objects; /* never-sealed ones with their parts */
	size_t n_objects;
	struct kura_upload *uploads;
	size_t n_uploads;
	struct kura_upload_part *parts;
	size_t n_parts;
};

/* A new seal for one row of a batch (seal_apply). */
struct kura_new_seal {
	uint8_t seal[KURA_SEAL_MAX];
	size_t seal_len;
	uint64_t seal_bk_id;
	uint8_t parts_digest[KURA_PARTS_DIGEST_LEN]; /* objects only */
};

/* One part whose DEK is to be re-wrapped (rewrap_next / rewrap_apply). */
struct kura_rewrap {
	uint8_t version_uid[KURA_UID_LEN];
	uint32_t part_no;
	bool upload_part; /* in an upload in progress */
	uint64_t bucket_id;
	uint64_t tenant_id;
	uint8_t dek_wrapped[KURA_WRAPPED_DEK_LEN];
};

/*
 * Row MACs (schema 5).  The rows that decide who may do what — tenants
 * (name, state), access keys (tenant, active, sealed secret), buckets
 * (tenant, name, key, default encryption), kura keys (tenant, state,
 * version), key versions (KEK id, state) and bucket keys (bucket, key,
 * version, wrapped key, currency) — each carry an HMAC-SHA256 of all their
 * fields under the *row key*, which the service derives from the system
 * key (so from the key provider) and hands to the store with set_row_key
 * before anything else.
 * The store computes the MAC of every row it writes and checks it on every
 * row it reads: a row altered, moved to another tenant, renamed or given
 * another row's MAC is KURA_EINTEGRITY, never a result.  A row written
 * before schema 5 has no MAC: KURA_EBUSY while the upgrade marker
 * (KURA_SEAL_PENDING) is set, KURA_EINTEGRITY otherwise; row_mac_upgrade
 * gives such rows their MAC (the daemon calls it only on the upgrade's
 * first run, see src/daemon/seal_job.c).  What a MAC cannot show is a row
 * put back as it was earlier (a revoked key's older, active row): that is
 * for kura audit verify --against-meta, which compares rows with the log.
 * The encoding is backend-neutral (src/meta/rowmac.c).
 */
bool kura_row_mac_tenant(const uint8_t key[KURA_ROW_KEY_LEN],
			 const struct kura_tenant *t,
			 uint8_t out[KURA_ROW_MAC_LEN]);
bool kura_row_mac_access_key(const uint8_t key[KURA_ROW_KEY_LEN],
			     const struct kura_access_key *k,
			     uint8_t out[KURA_ROW_MAC_LEN]);
bool kura_row_mac_bucket(const uint8_t key[KURA_ROW_KEY_LEN],
			 const struct kura_bucket *b,
			 uint8_t out[KURA_ROW_MAC_LEN]);
bool kura_row_mac_key(const uint8_t key[KURA_ROW_KEY_LEN],
		      const struct kura_key *k, uint8_t out[KURA_ROW_MAC_LEN]);
bool kura_row_mac_key_version(const uint8_t key[KURA_ROW_KEY_LEN],
			      const struct kura_key_version *v,
			      uint8_t out[KURA_ROW_MAC_LEN]);
bool kura_row_mac_bucket_key(const uint8_t key[KURA_ROW_KEY_LEN],
			     const struct kura_bucket_key *bk,
			     uint8_t out[KURA_ROW_MAC_LEN]);

struct kura_meta_ops {
	const char *name; /* as named in [meta] driver = ... */
	unsigned caps;	  /* reserved, 0 */
	size_t priv_size;

	/* Open or create the store and bring its schema to the current
	 * version (migrations run in one transaction each). */
	enum kura_err (*open)(void *priv, const struct kura_config *cfg,
			      const char *data_dir, struct kura_error *err);
	void (*close)(void *priv);

	/* The row key (see "Row MACs"), copied; set once after open and
	 * before any call that reads or writes tenants, access keys, buckets
	 * or keys (KURA_ESTATE until then).  The store wipes it at close. */
	enum kura_err (*set_row_key)(void *priv,
				     const uint8_t key[KURA_ROW_KEY_LEN],
				     struct kura_error *err);
	/* Give every tenant, access key, bucket and key row without a MAC
	 * its MAC, in one transaction; *rows how many.  Only for the first
	 * run of the schema-5 upgrade: it would launder planted rows later. */
	enum kura_err (*row_mac_upgrade)(void *priv, size_t *rows,
					 struct kura_error *err);

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
	/* Remove; removing an absent setting is not an error. */
	enum kura_err (*setting_delete)(void *priv, const char *name,
					struct kura_error *err);

	/* -- tenants and access keys -- */

	/* KURA_EEXIST when the name is taken.  t->id is assigned; the tenant
	 * is created active whatever t->state says. */
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

	/*
	 * Create bucket b and its first bucket key in one transaction.  When
	 * new_key is not NULL, that key (kind KURA_KEY_BUCKET, version 1 =
	 * new_kek_id) is created too and b->key_id and bk->key_id are set to
	 * its id; otherwise b->key_id names an existing key.  bk holds the
	 * bucket key wrapped under the key's current version (bk->key_version
	 * must be that version: KURA_ESTATE otherwise, e.g. after a concurrent
	 * rotation).  b->id, new_key->id and bk->id are filled on success
	 * (bk->bucket_id and bk->key_id too: they need not be set).  A new
	 * key must be enabled; its tenant_id 0 means the bucket's.  An
	 * existing key must be enabled (KURA_ESTATE) and the bucket tenant's
	 * (KURA_EPERM).  KURA_EEXIST when the bucket name (or id, or the new
	 * key's name) exists.
	 */
	enum kura_err (*bucket_create)(void *priv, struct kura_bucket *b,
				       struct kura_key *new_key,
				       const char *new_kek_id,
				       struct kura_bucket_key *bk,
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
	 * Uploads in progress are aborted and the bucket's bucket keys deleted
	 * in the same transaction.  The bucket's own key (kind
	 * KURA_KEY_BUCKET) stays, for the caller to destroy. */
	enum kura_err (*bucket_delete)(void *priv, uint64_t bucket_id,
				       struct kura_error *err);
	/* Set the bucket's default encryption (KURA_SSE_S3 clears it).
	 * SSE-KMS needs a not destroyed key of the bucket's tenant
	 * (KURA_ENOENT, KURA_ESTATE, KURA_EPERM); KURA_SSE_C: KURA_EINVAL. */
	enum kura_err (*bucket_set_encryption)(void *priv, uint64_t bucket_id,
					       enum kura_sse sse,
					       uint64_t kms_key_id,
					       struct kura_error *err);
	/* Set the bucket's versioning state (never back to OFF:
	 * KURA_EINVAL).  KURA_ENOENT when the bucket does not exist. */
	enum kura_err (*bucket_set_versioning)(void *priv, uint64_t bucket_id,
					       enum kura_versioning state,
					       struct kura_error *err);
	/* Enable Object Lock on bucket b->id with b's default retention
	 * (lock_default_*), or change that default.  The bucket must have
	 * versioning enabled (KURA_ESTATE); Object Lock is never disabled.
	 * Suspending versioning of a bucket with Object Lock: KURA_ESTATE. */
	enum kura_err (*bucket_set_object_lock)(void *priv,
						const struct kura_bucket *b,
						struct kura_error *err);
	/* Whether kura key key_id protects a version locked now (Object
	 * Lock: a legal hold or retention not ended at the store's clock):
	 * the SSE-KMS key of such a version, or the key of its bucket.
	 * Destroying that key would destroy the version. */
	enum kura_err (*key_protects_locked)(void *priv, uint64_t key_id,
					     bool *locked,
					     struct kura_error *err);
	/* Replace the bucket's lifecycle configuration with text (its
	 * canonical JSON, kura/lifecycle.h; at most KURA_LC_TEXT_MAX bytes,
	 * KURA_ETOOBIG beyond), or remove it (text NULL).  The text's digest
	 * goes under the bucket's row MAC.  KURA_ENOENT without the bucket. */
	enum kura_err (*bucket_set_lifecycle)(void *priv, uint64_t bucket_id,
					      const char *text,
					      struct kura_error *err);
	/* The bucket's lifecycle text into *text (malloc'ed, NUL-terminated;
	 * the caller frees).  KURA_ENOENT when the bucket has none (or does
	 * not exist); KURA_EINTEGRITY when the text does not match the
	 * digest under the row MAC (a configuration planted or altered in the
	 * database). */
	enum kura_err (*bucket_get_lifecycle)(void *priv, uint64_t bucket_id,
					      char **text,
					      struct kura_error *err);
	/*
	 * Crypto-shredding support: delete the bucket with everything in it —
	 * objects, parts, uploads, upload parts, bucket keys — in one
	 * transaction, queueing every blob for gc.  The bucket id is retired
	 * as for bucket_delete.  KURA_ENOENT when it does not exist;
	 * KURA_EPERM, changing nothing, while any version in it is locked
	 * (Object Lock: a legal hold or retention not ended at the store's
	 * clock, GOVERNANCE too — no bypass here).
	 */
	enum kura_err (*bucket_purge)(void *priv, uint64_t bucket_id,
				      struct kura_error *err);
	/* Every blob of the bucket (object parts and upload parts) with its
	 * size, for an inventory before a purge: calls fn for each, in no
	 * particular order; fn returning non-OK stops and is returned. */
	enum kura_err (*bucket_blobs)(
		void *priv, uint64_t bucket_id,
		enum kura_err (*fn)(void *ctx,
				    const uint8_t id[KURA_BLOB_ID_LEN],
				    uint64_t size),
		void *ctx, struct kura_error *err);

	/* -- keys (see the comment at struct kura_key) --
	 * Every call that changes a key, a version or a bucket key also bumps
	 * the key generation (key_generation), so processes caching bucket
	 * keys can tell that something changed. */

	/* Create key k (k->current_version must be 1) with version 1 =
	 * kek_id.  KURA_EEXIST when the tenant has a live key of that name.
	 * k->id is filled. */
	enum kura_err (*key_create)(void *priv, struct kura_key *k,
				    const char *kek_id, struct kura_error *err);
	enum kura_err (*key_get)(void *priv, uint64_t key_id,
				 struct kura_key *out, struct kura_error *err);
	/* The live (not destroyed) key of that name; KURA_ENOENT. */
	enum kura_err (*key_get_by_name)(void *priv, uint64_t tenant_id,
					 const char *name, struct kura_key *out,
					 struct kura_error *err);
	/* Keys of a tenant (tenant_id 0: every tenant), destroyed ones
	 * included, by name. */
	enum kura_err (*key_list)(void *priv, uint64_t tenant_id,
				  struct kura_pool *pool, struct kura_key **out,
				  size_t *count, struct kura_error *err);
	/* Versions of a key, ascending. */
	enum kura_err (*key_versions)(void *priv, uint64_t key_id,
				      struct kura_pool *pool,
				      struct kura_key_version **out,
				      size_t *count, struct kura_error *err);
	/* Enable or disable (KURA_ESTATE for a destroyed key). */
	enum kura_err (*key_set_state)(void *priv, uint64_t key_id,
				       enum kura_key_state state,
				       struct kura_error *err);
	/*
	 * Rotation, in one transaction: add version (current_version + 1) =
	 * kek_id as the ACTIVE version (the old one becomes RETIRED); for each
	 * of the n bucket keys in new_bks (one per bucket currently using the
	 * key, wrapped under the new version; key_version set to it), insert it
	 * as current and retire the bucket's previous current bucket key
	 * (retired_ms = now).  KURA_ESTATE when expected_version is no longer
	 * the key's current version (a concurrent rotation) or the set of
	 * buckets using the key changed: list them again and retry.  Fills
	 * new_bks[i].id.  KURA_EINVAL when a new bucket key is not of this key
	 * and the new version.  A disabled key may be rotated, a destroyed one
	 * not (KURA_ESTATE).
	 */
	enum kura_err (*key_rotate)(void *priv, uint64_t key_id,
				    uint32_t expected_version,
				    const char *kek_id,
				    struct kura_bucket_key *new_bks, size_t n,
				    struct kura_error *err);
	/* Does any bucket key (current or retired) still use this version?
	 * The current version of a key that is not destroyed always counts
	 * as in use (new bucket keys will be wrapped by it).  KURA_ENOENT for
	 * no such version. */
	enum kura_err (*key_version_in_use)(void *priv, uint64_t key_id,
					    uint32_t version, bool *in_use,
					    struct kura_error *err);
	/* Record that a version's KEK is destroyed in the provider (again: a
	 * no-op).  KURA_ENOENT for no such version. */
	enum kura_err (*key_version_destroyed)(void *priv, uint64_t key_id,
					       uint32_t version,
					       struct kura_error *err);
	/* Mark the key destroyed (after every version was destroyed:
	 * KURA_ESTATE otherwise) and delete its bucket keys: DEKs under it
	 * become unrecoverable.  Parts that used them keep their rows with
	 * bk_id 0 until deleted or purged.  Again: a no-op. */
	enum kura_err (*key_destroyed)(void *priv, uint64_t key_id,
				       struct kura_error *err);
	/* A counter bumped by every key, version or bucket-key change. */
	enum kura_err (*key_generation)(void *priv, uint64_t *gen,
					struct kura_error *err);

	/* The current bucket key of (bucket, key); KURA_ENOENT when none. */
	enum kura_err (*bucket_key_current)(void *priv, uint64_t bucket_id,
					    uint64_t key_id,
					    struct kura_bucket_key *out,
					    struct kura_error *err);
	/* A bucket key by id (current or retired); KURA_ENOENT. */
	enum kura_err (*bucket_key_get)(void *priv, uint64_t bk_id,
					struct kura_bucket_key *out,
					struct kura_error *err);
	/* Insert bk as the current bucket key of (bk->bucket_id, bk->key_id).
	 * KURA_EEXIST when that pair already has one (a concurrent writer won:
	 * use theirs); KURA_ESTATE when bk->key_version is not the key's
	 * current version or the key is not enabled; KURA_EPERM when the key
	 * is not the bucket tenant's.  Fills bk->id. */
	enum kura_err (*bucket_key_insert)(void *priv,
					   struct kura_bucket_key *bk,
					   struct kura_error *err);
	/* Ids of the keys that have bucket keys (current or retired) in the
	 * bucket, ascending; *out from pool (NULL with *count 0 when none). */
	enum kura_err (*bucket_key_ids)(void *priv, uint64_t bucket_id,
					struct kura_pool *pool, uint64_t **out,
					size_t *count, struct kura_error *err);
	/* Current bucket keys of a key (one per bucket using it). */
	enum kura_err (*bucket_keys_of_key)(void *priv, uint64_t key_id,
					    struct kura_pool *pool,
					    struct kura_bucket_key **out,
					    size_t *count,
					    struct kura_error *err);
	/* Retired bucket keys (any key), oldest first, up to limit. */
	enum kura_err (*bucket_keys_retired)(void *priv, size_t limit,
					     struct kura_pool *pool,
					     struct kura_bucket_key **out,
					     size_t *count,
					     struct kura_error *err);
	/*
	 * Re-wrapping after rotation.  rewrap_next lists up to limit parts
	 * (object parts and upload parts alike) whose DEK is wrapped by bucket
	 * key bk_id: each entry's version_uid, part_no and dek_wrapped.
	 * rewrap_apply replaces, in one transaction, each listed part's
	 * dek_wrapped with the new value and its bk_id with new_bk_id — only
	 * where the part still has bk_id = old_bk_id (a part replaced meanwhile
	 * is skipped).  new_bk_id must be a bucket key of the same bucket
	 * (KURA_ESTATE).  Neither changes the key generation.
	 */
	enum kura_err (*rewrap_next)(void *priv, uint64_t bk_id, size_t limit,
				     struct kura_pool *pool,
				     struct kura_rewrap **out, size_t *count,
				     struct kura_error *err);
	enum kura_err (*rewrap_apply)(void *priv, uint64_t old_bk_id,
				      uint64_t new_bk_id,
				      const struct kura_rewrap *entries,
				      size_t count, struct kura_error *err);
	/* Delete a retired bucket key that no part references any more and
	 * no row is sealed by; KURA_EBUSY while some still is, KURA_ESTATE
	 * for a current one, KURA_ENOENT. */
	enum kura_err (*bucket_key_delete)(void *priv, uint64_t bk_id,
					   struct kura_error *err);

	/* -- objects -- */

	/*
	 * Add obj as the newest version of (bucket_id, key) with its parts,
	 * atomically.  obj->vseq must be greater than the vseq of every
	 * version of the key (KURA_ECONFLICT otherwise: another writer was
	 * faster or the clock went back — seal again with a larger one).
	 * When obj->null_version, the key's null version, if any, goes in
	 * the same transaction and its blobs are queued for gc (KURA_EPERM
	 * while that version is locked: Object Lock).  With cond,
	 * the key's newest version must have vseq cond->expect_vseq
	 * (KURA_ECONFLICT otherwise).  KURA_ENOENT when the bucket no longer
	 * exists; KURA_ESTATE when a part's bk_id names no bucket key of the
	 * bucket (deleted after a rotation finished while the upload ran);
	 * bk_id 0 only for SSE-C (KURA_EINVAL).  kms_key_id is set exactly
	 * for SSE-KMS (KURA_EINVAL).  A delete marker has no parts.
	 */
	enum kura_err (*object_put)(void *priv, const struct kura_object *obj,
				    const struct kura_put_cond *cond,
				    struct kura_error *err);
	/* The newest version of the key (which may be a delete marker);
	 * KURA_ENOENT when it has none. */
	enum kura_err (*object_get)(void *priv, uint64_t bucket_id,
				    const char *key, size_t key_len,
				    struct kura_pool *pool,
				    struct kura_object **out,
				    struct kura_error *err);
	/* Version version_uid of the key (NULL: its null version);
	 * KURA_ENOENT when absent. */
	enum kura_err (*object_get_version)(void *priv, uint64_t bucket_id,
					    const char *key, size_t key_len,
					    const uint8_t *version_uid,
					    struct kura_pool *pool,
					    struct kura_object **out,
					    struct kura_error *err);
	/* Remove version version_uid of the key for good (NULL: its null
	 * version); its blobs are queued for gc.  With cond, only while the
	 * key's newest version has vseq cond->expect_vseq (KURA_ECONFLICT).
	 * KURA_EPERM, changing nothing, while the version is locked
	 * (kura_version_locked at the store's clock, GOVERNANCE retention
	 * ignored with bypass_governance).  KURA_ENOENT when absent. */
	enum kura_err (*object_delete)(void *priv, uint64_t bucket_id,
				       const char *key, size_t key_len,
				       const uint8_t *version_uid,
				       const struct kura_put_cond *cond,
				       bool bypass_governance,
				       struct kura_error *err);
	/*
	 * The current objects: for each key, its newest version unless that
	 * is a delete marker.  Up to limit entries with key > after (when
	 * after_len > 0; after may be any byte string) and key starting with
	 * prefix, in ascending byte order (memcmp).  *count < limit means there are no more.
	 * Each entry is the whole object row (so its seal can be checked)
	 * without its parts (parts NULL; part_count and parts_digest set).
	 */
	enum kura_err (*object_list)(void *priv, uint64_t bucket_id,
				     const char *prefix, size_t prefix_len,
				     const char *after, size_t after_len,
				     size_t limit, struct kura_pool *pool,
				     struct kura_object **out, size_t *count,
				     struct kura_error *err);

	/*
	 * Every version of the keys starting with prefix, in S3's order:
	 * keys ascending (memcmp), each key's versions newest first (vseq
	 * descending), delete markers included, is_latest set on each key's
	 * newest.  Starts after (after, after_vseq): after the key's version
	 * after_vseq, or after the whole key when after_vseq is 0 (after_len
	 * 0: from the start).  Up to limit entries; *count < limit means
	 * there are no more.  Rows as object_list's.
	 */
	enum kura_err (*object_list_versions)(
		void *priv, uint64_t bucket_id, const char *prefix,
		size_t prefix_len, const char *after, size_t after_len,
		uint64_t after_vseq, size_t limit, struct kura_pool *pool,
		struct kura_object **out, size_t *count,
		struct kura_error *err);

	/* Replace the tags of an existing object (tags_json NULL removes
	 * them) and its seal with one made over the new tags.  Only while
	 * the row is still the one the caller read — version version_uid
	 * with seal old_seal (old_len 0: none) — so a concurrent tagging
	 * call or re-seal is never overwritten: KURA_ESTATE when it changed
	 * meanwhile, KURA_ENOENT when it does not exist. */
	enum kura_err (*object_set_tags)(
		void *priv, uint64_t bucket_id, const char *key, size_t key_len,
		const uint8_t version_uid[KURA_UID_LEN],
		const uint8_t *old_seal, size_t old_len, const char *tags_json,
		const uint8_t *seal, size_t seal_len, uint64_t seal_bk_id,
		struct kura_error *err);

	/* Replace the Object Lock settings of version version_uid (lock_mode,
	 * lock_until_ms, legal_hold of o) and its seal (o->seal...), under
	 * the same conditions as object_set_tags: only while the row is still
	 * the one read with seal old_seal (KURA_ESTATE otherwise). */
	enum kura_err (*object_set_lock)(void *priv,
					 const struct kura_object *o,
					 const uint8_t *old_seal,
					 size_t old_len,
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
	 * blob is queued for gc.  KURA_ENOENT when the upload is gone;
	 * KURA_ESTATE when p->bk_id names no bucket key of the bucket. */
	enum kura_err (*upload_put_part)(void *priv, uint64_t bucket_id,
					 const char *upload_id,
					 const struct kura_part *p,
					 struct kura_error *err);
	/* Up to limit parts with part_no > after, ascending.  KURA_ENOENT
	 * when the upload does not exist. */
	enum kura_err (*upload_list_parts)(
		void *priv, uint64_t bucket_id, const char *upload_id,
		uint32_t after, size_t limit, struct kura_pool *pool,
		struct kura_part **out, size_t *count, struct kura_error *err);
	/*
	 * Complete: in one transaction, check the upload exists, insert or
	 * replace the object obj (obj->version_uid is the upload's; obj->parts
	 * names the chosen parts, which must all belong to the upload with the
	 * same blob ids), queue the replaced object's blobs and every part of
	 * the upload not chosen for gc, and delete the upload.  KURA_ENOENT
	 * when the upload is gone; KURA_ESTATE when a chosen part does not
	 * match the upload's (or its key was destroyed).  The parts keep their
	 * stored bk_id and dek_wrapped (re-wrapping may have changed them
	 * since they were listed).  obj's sse, kms_key_id and ssec_hmac must
	 * be the upload's (KURA_EINVAL).  A chosen part matches when
	 * its part_no, blob_id, size and seal are the stored ones; the moved
	 * parts keep no ETag and no seal (the object's seal covers them).
	 * The object becomes the key's newest version as by object_put
	 * (obj->vseq, null_version and cond as there).
	 */
	enum kura_err (*upload_complete)(void *priv, const char *upload_id,
					 const struct kura_object *obj,
					 const struct kura_put_cond *cond,
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

	/* -- metadata seals (see the comment at struct kura_part) -- */

	/* The bucket with id id; KURA_ENOENT. */
	enum kura_err (*bucket_get_id)(void *priv, uint64_t id,
				       struct kura_bucket *out,
				       struct kura_error *err);
	/* Ids of buckets that hold rows never sealed (objects, uploads or
	 * upload parts written before schema 5), up to max, in the store's
	 * order of ids, after *after (NULL: from the first). */
	enum kura_err (*seal_pending_buckets)(void *priv, const uint64_t *after,
					      uint64_t *ids, size_t max,
					      size_t *count,
					      struct kura_error *err);
	/*
	 * Up to limit rows of each kind to seal: with bk_id != 0, the rows
	 * sealed by bucket key bk_id (objects without their parts); with
	 * bk_id 0, the rows of bucket bucket_id never sealed (objects with
	 * their parts, which the seal's parts digest needs).  Every entry
	 * carries its bucket's tenant_id.  From pool.
	 */
	enum kura_err (*seal_next)(void *priv, uint64_t bucket_id,
				   uint64_t bk_id, size_t limit,
				   struct kura_pool *pool,
				   struct kura_seal_batch *out,
				   struct kura_error *err);
	/*
	 * Store new seals, in one transaction: each row of batch (as
	 * seal_next returned it: identified by version uid, plus part_no for
	 * parts) whose seal and seal_bk_id are still the ones read gets the
	 * new seal at the same index of objects, uploads or parts (with, for
	 * an object, its parts_digest); its clear ETag is removed (and for
	 * objects those of its parts).  A row changed meanwhile — a tagging
	 * call, another re-seal — is left alone (compare and swap on the
	 * seal itself).  *applied receives how many rows changed.
	 */
	enum kura_err (*seal_apply)(void *priv,
				    const struct kura_seal_batch *batch,
				    const struct kura_new_seal *objects,
				    const struct kura_new_seal *uploads,
				    const struct kura_new_seal *parts,
				    size_t *applied, struct kura_error *err);

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

	/* -- replicas (v7) -- */

	/* Insert or replace the rows (blob_id, backend) of rows[0..n) and,
	 * for each whose state changed (or that is new), append an event
	 * (state, changed_ms, note) to its history; one transaction. */
	enum kura_err (*replica_set)(void *priv,
				     const struct kura_replica *rows, size_t n,
				     const char *note, struct kura_error *err);
	/* The rows of one blob, in backend name order (up to max). */
	enum kura_err (*replica_list)(void *priv,
				      const uint8_t blob_id[KURA_BLOB_ID_LEN],
				      struct kura_replica *out, size_t max,
				      size_t *count, struct kura_error *err);
	/* The history of one replica, oldest first (up to max). */
	enum kura_err (*replica_history)(
		void *priv, const uint8_t blob_id[KURA_BLOB_ID_LEN],
		const char *backend, struct kura_replica_event *out, size_t max,
		size_t *count, struct kura_error *err);
	/* Pending replicas on backend due by now_ms whose blob metadata
	 * references (committed), soonest first (up to max). */
	enum kura_err (*replica_due)(void *priv, const char *backend,
				     int64_t now_ms, struct kura_replica *out,
				     size_t max, size_t *count,
				     struct kura_error *err);
	/* Replicas (not deleted) changed since since_ms of blobs nothing
	 * references nor queues for gc: left by a crash between the copy
	 * and the commit (up to max). */
	enum kura_err (*replica_orphans)(void *priv, int64_t since_ms,
					 struct kura_replica *out, size_t max,
					 size_t *count, struct kura_error *err);
	/* A bucket's replicas (blobs of its versions and upload parts),
	 * grouped by backend and state. */
	enum kura_err (*replica_groups)(void *priv, uint64_t bucket_id,
					kura_replica_group_fn fn, void *ctx,
					struct kura_error *err);
	/* How many replicas on backend are pending, and the oldest one's
	 * changed_ms (0 when none). */
	enum kura_err (*replica_queue)(void *priv, const char *backend,
				       uint64_t *count, int64_t *oldest_ms,
				       struct kura_error *err);
	/* The blobs of a bucket (0: every bucket) in blob id order after
	 * `after` (all zero: from the start), up to max. */
	enum kura_err (*scrub_blobs)(void *priv, uint64_t bucket_id,
				     const uint8_t after[KURA_BLOB_ID_LEN],
				     struct kura_scrub_blob *out, size_t max,
				     size_t *count, struct kura_error *err);

	/* -- tenant and access-key lifecycle (v4) -- */

	/* Every tenant in name order; *out is allocated from pool (NULL when
	 * *count is 0). */
	enum kura_err (*tenant_list)(void *priv, struct kura_pool *pool,
				     struct kura_tenant **out, size_t *count,
				     struct kura_error *err);
	/* Set tenant id's state (setting the state it has is success).
	 * Every process sees it at its next request: authentication reads it
	 * per request, nothing caches it.  KURA_ENOENT for no such tenant. */
	enum kura_err (*tenant_set_state)(void *priv, uint64_t id,
					  enum kura_tenant_state state,
					  struct kura_error *err);
	/*
	 * Delete tenant id in one transaction: its access keys (revoked or
	 * not), then the rows of its destroyed kura keys and their versions,
	 * then the tenant.  Refused, changing nothing: KURA_ENOTEMPTY while it
	 * owns a bucket (shred or delete them first: their data and keys are
	 * the caller's business, service.h kura_service_shred); KURA_ESTATE
	 * while one of its kura keys is not destroyed (its KEK lives in the
	 * provider: destroy it first, kms.h); KURA_ENOENT for no such tenant.
	 * The id is never given to another tenant; the name may be.
	 */
	enum kura_err (*tenant_delete)(void *priv, uint64_t id,
				       struct kura_error *err);
	/* Access keys of a tenant (active and revoked), oldest first; *out
	 * from pool (NULL when *count is 0), sealed secrets included. */
	enum kura_err (*access_key_list)(void *priv, uint64_t tenant_id,
					 struct kura_pool *pool,
					 struct kura_access_key **out,
					 size_t *count, struct kura_error *err);
	/* Revoke access key id for good: active becomes false and no call
	 * makes it true again; the row stays, so the id is never reused
	 * while its tenant exists.  Takes effect at every process's next
	 * request.  Revoking a revoked key is success; KURA_ENOENT for no
	 * such key. */
	enum kura_err (*access_key_revoke)(void *priv, const char *id,
					   struct kura_error *err);
	/* Rotation in one transaction: store k (active, of old_id's tenant)
	 * and revoke old_id, so there is never a moment with both or
	 * neither.  KURA_ENOENT when old_id does not exist; KURA_ESTATE when
	 * it is revoked already or k->tenant_id is not its tenant;
	 * KURA_EEXIST when k->id is taken. */
	enum kura_err (*access_key_replace)(void *priv, const char *old_id,
					    const struct kura_access_key *k,
					    struct kura_error *err);
};

struct kura_meta {
	const struct kura_meta_ops *ops;
	void *priv;
	const struct kura_hook *hook; /* NULL; tests and tracing (hook.h) */
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

/* Check [meta] driver names a compiled-in metadata store; opens nothing.
 * KURA_ECONFIG naming the known ones. */
enum kura_err kura_meta_check_config(const struct kura_config *cfg,
				     struct kura_error *err);

/*
 * Calls through the interface, one per slot: kura_meta_X(meta, ...) is
 * slot X with the same arguments and the same contract (above).  Callers
 * use these, never meta->ops->X(meta->priv, ...): they are the one place
 * where calls are hooked (hook.h).
 */

/* row MACs */
enum kura_err kura_meta_set_row_key(struct kura_meta *meta,
				    const uint8_t key[KURA_ROW_KEY_LEN],
				    struct kura_error *err);
enum kura_err kura_meta_row_mac_upgrade(struct kura_meta *meta, size_t *rows,
					struct kura_error *err);

/* settings: small named values (system key, init markers) */
enum kura_err kura_meta_setting_get(struct kura_meta *meta, const char *name,
				    uint8_t *val, size_t cap, size_t *len,
				    struct kura_error *err);
enum kura_err kura_meta_setting_insert(struct kura_meta *meta, const char *name,
				       const uint8_t *val, size_t len,
				       struct kura_error *err);
enum kura_err kura_meta_setting_delete(struct kura_meta *meta, const char *name,
				       struct kura_error *err);
/* A time in milliseconds kept as a setting (8 bytes, big-endian): read it
 * (KURA_ENOENT when unset), or replace it. */
enum kura_err kura_meta_setting_get_ms(struct kura_meta *meta, const char *name,
				       int64_t *ms, struct kura_error *err);
enum kura_err kura_meta_setting_put_ms(struct kura_meta *meta, const char *name,
				       int64_t ms, struct kura_error *err);

/* tenants and access keys */
enum kura_err kura_meta_tenant_create(struct kura_meta *meta,
				      struct kura_tenant *t,
				      struct kura_error *err);
enum kura_err kura_meta_tenant_get(struct kura_meta *meta, uint64_t id,
				   struct kura_tenant *out,
				   struct kura_error *err);
enum kura_err kura_meta_tenant_get_by_name(struct kura_meta *meta,
					   const char *name,
					   struct kura_tenant *out,
					   struct kura_error *err);
enum kura_err kura_meta_access_key_create(struct kura_meta *meta,
					  const struct kura_access_key *k,
					  struct kura_error *err);
enum kura_err kura_meta_access_key_get(struct kura_meta *meta, const char *id,
				       struct kura_access_key *out,
				       struct kura_error *err);

/* buckets */
enum kura_err
kura_meta_bucket_create(struct kura_meta *meta, struct kura_bucket *b,
			struct kura_key *new_key, const char *new_kek_id,
			struct kura_bucket_key *bk, struct kura_error *err);
enum kura_err kura_meta_bucket_get(struct kura_meta *meta, const char *name,
				   struct kura_bucket *out,
				   struct kura_error *err);
enum kura_err kura_meta_bucket_list(struct kura_meta *meta, uint64_t tenant_id,
				    struct kura_pool *pool,
				    struct kura_bucket **out, size_t *count,
				    struct kura_error *err);
enum kura_err kura_meta_bucket_delete(struct kura_meta *meta,
				      uint64_t bucket_id,
				      struct kura_error *err);
enum kura_err kura_meta_bucket_set_encryption(struct kura_meta *meta,
					      uint64_t bucket_id,
					      enum kura_sse sse,
					      uint64_t kms_key_id,
					      struct kura_error *err);
enum kura_err kura_meta_bucket_set_versioning(struct kura_meta *meta,
					      uint64_t bucket_id,
					      enum kura_versioning state,
					      struct kura_error *err);
enum kura_err kura_meta_bucket_set_lifecycle(struct kura_meta *meta,
					     uint64_t bucket_id,
					     const char *text,
					     struct kura_error *err);
enum kura_err kura_meta_bucket_get_lifecycle(struct kura_meta *meta,
					     uint64_t bucket_id, char **text,
					     struct kura_error *err);
enum kura_err kura_meta_bucket_set_object_lock(struct kura_meta *meta,
					       const struct kura_bucket *b,
					       struct kura_error *err);
enum kura_err kura_meta_key_protects_locked(struct kura_meta *meta,
					    uint64_t key_id, bool *locked,
					    struct kura_error *err);
enum kura_err kura_meta_bucket_purge(struct kura_meta *meta, uint64_t bucket_id,
				     struct kura_error *err);
enum kura_err kura_meta_bucket_blobs(
	struct kura_meta *meta, uint64_t bucket_id,
	enum kura_err (*fn)(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN],
			    uint64_t size),
	void *ctx, struct kura_error *err);

/* keys */
enum kura_err kura_meta_key_create(struct kura_meta *meta, struct kura_key *k,
				   const char *kek_id, struct kura_error *err);
enum kura_err kura_meta_key_get(struct kura_meta *meta, uint64_t key_id,
				struct kura_key *out, struct kura_error *err);
enum kura_err kura_meta_key_get_by_name(struct kura_meta *meta,
					uint64_t tenant_id, const char *name,
					struct kura_key *out,
					struct kura_error *err);
enum kura_err kura_meta_key_list(struct kura_meta *meta, uint64_t tenant_id,
				 struct kura_pool *pool, struct kura_key **out,
				 size_t *count, struct kura_error *err);
enum kura_err kura_meta_key_versions(struct kura_meta *meta, uint64_t key_id,
				     struct kura_pool *pool,
				     struct kura_key_version **out,
				     size_t *count, struct kura_error *err);
enum kura_err kura_meta_key_set_state(struct kura_meta *meta, uint64_t key_id,
				      enum kura_key_state state,
				      struct kura_error *err);
enum kura_err kura_meta_key_rotate(struct kura_meta *meta, uint64_t key_id,
				   uint32_t expected_version,
				   const char *kek_id,
				   struct kura_bucket_key *new_bks, size_t n,
				   struct kura_error *err);
enum kura_err kura_meta_key_version_in_use(struct kura_meta *meta,
					   uint64_t key_id, uint32_t version,
					   bool *in_use,
					   struct kura_error *err);
enum kura_err kura_meta_key_version_destroyed(struct kura_meta *meta,
					      uint64_t key_id, uint32_t version,
					      struct kura_error *err);
enum kura_err kura_meta_key_destroyed(struct kura_meta *meta, uint64_t key_id,
				      struct kura_error *err);
enum kura_err kura_meta_key_generation(struct kura_meta *meta, uint64_t *gen,
				       struct kura_error *err);
enum kura_err kura_meta_bucket_key_current(struct kura_meta *meta,
					   uint64_t bucket_id, uint64_t key_id,
					   struct kura_bucket_key *out,
					   struct kura_error *err);
enum kura_err kura_meta_bucket_key_get(struct kura_meta *meta, uint64_t bk_id,
				       struct kura_bucket_key *out,
				       struct kura_error *err);
enum kura_err kura_meta_bucket_key_insert(struct kura_meta *meta,
					  struct kura_bucket_key *bk,
					  struct kura_error *err);
enum kura_err kura_meta_bucket_key_ids(struct kura_meta *meta,
				       uint64_t bucket_id,
				       struct kura_pool *pool, uint64_t **out,
				       size_t *count, struct kura_error *err);
enum kura_err kura_meta_bucket_keys_of_key(
	struct kura_meta *meta, uint64_t key_id, struct kura_pool *pool,
	struct kura_bucket_key **out, size_t *count, struct kura_error *err);
enum kura_err kura_meta_bucket_keys_retired(
	struct kura_meta *meta, size_t limit, struct kura_pool *pool,
	struct kura_bucket_key **out, size_t *count, struct kura_error *err);
enum kura_err kura_meta_rewrap_next(struct kura_meta *meta, uint64_t bk_id,
				    size_t limit, struct kura_pool *pool,
				    struct kura_rewrap **out, size_t *count,
				    struct kura_error *err);
enum kura_err kura_meta_rewrap_apply(struct kura_meta *meta, uint64_t old_bk_id,
				     uint64_t new_bk_id,
				     const struct kura_rewrap *entries,
				     size_t count, struct kura_error *err);
enum kura_err kura_meta_bucket_key_delete(struct kura_meta *meta,
					  uint64_t bk_id,
					  struct kura_error *err);

/* objects */
enum kura_err kura_meta_object_put(struct kura_meta *meta,
				   const struct kura_object *obj,
				   const struct kura_put_cond *cond,
				   struct kura_error *err);
enum kura_err kura_meta_object_get(struct kura_meta *meta, uint64_t bucket_id,
				   const char *key, size_t key_len,
				   struct kura_pool *pool,
				   struct kura_object **out,
				   struct kura_error *err);
enum kura_err
kura_meta_object_get_version(struct kura_meta *meta, uint64_t bucket_id,
			     const char *key, size_t key_len,
			     const uint8_t *version_uid, struct kura_pool *pool,
			     struct kura_object **out, struct kura_error *err);
enum kura_err kura_meta_object_delete(struct kura_meta *meta,
				      uint64_t bucket_id, const char *key,
				      size_t key_len,
				      const uint8_t *version_uid,
				      const struct kura_put_cond *cond,
				      bool bypass_governance,
				      struct kura_error *err);
enum kura_err kura_meta_object_set_lock(struct kura_meta *meta,
					const struct kura_object *o,
					const uint8_t *old_seal, size_t old_len,
					struct kura_error *err);
enum kura_err kura_meta_object_list_versions(
	struct kura_meta *meta, uint64_t bucket_id, const char *prefix,
	size_t prefix_len, const char *after, size_t after_len,
	uint64_t after_vseq, size_t limit, struct kura_pool *pool,
	struct kura_object **out, size_t *count, struct kura_error *err);
enum kura_err kura_meta_object_list(struct kura_meta *meta, uint64_t bucket_id,
				    const char *prefix, size_t prefix_len,
				    const char *after, size_t after_len,
				    size_t limit, struct kura_pool *pool,
				    struct kura_object **out, size_t *count,
				    struct kura_error *err);
enum kura_err kura_meta_object_set_tags(
	struct kura_meta *meta, uint64_t bucket_id, const char *key,
	size_t key_len, const uint8_t version_uid[KURA_UID_LEN],
	const uint8_t *old_seal, size_t old_len, const char *tags_json,
	const uint8_t *seal, size_t seal_len, uint64_t seal_bk_id,
	struct kura_error *err);

/* multipart uploads */
enum kura_err kura_meta_upload_create(struct kura_meta *meta,
				      const struct kura_upload *u,
				      struct kura_error *err);
enum kura_err kura_meta_upload_get(struct kura_meta *meta, uint64_t bucket_id,
				   const char *upload_id,
				   struct kura_pool *pool,
				   struct kura_upload **out,
				   struct kura_error *err);
enum kura_err kura_meta_upload_put_part(struct kura_meta *meta,
					uint64_t bucket_id,
					const char *upload_id,
					const struct kura_part *p,
					struct kura_error *err);
enum kura_err kura_meta_upload_list_parts(struct kura_meta *meta,
					  uint64_t bucket_id,
					  const char *upload_id, uint32_t after,
					  size_t limit, struct kura_pool *pool,
					  struct kura_part **out, size_t *count,
					  struct kura_error *err);
enum kura_err kura_meta_upload_complete(struct kura_meta *meta,
					const char *upload_id,
					const struct kura_object *obj,
					const struct kura_put_cond *cond,
					struct kura_error *err);
enum kura_err kura_meta_upload_abort(struct kura_meta *meta, uint64_t bucket_id,
				     const char *upload_id,
				     struct kura_error *err);
enum kura_err kura_meta_upload_list(struct kura_meta *meta, uint64_t bucket_id,
				    const char *prefix, size_t prefix_len,
				    const char *key_marker, size_t km_len,
				    const char *id_marker, size_t limit,
				    struct kura_pool *pool,
				    struct kura_upload **out, size_t *count,
				    struct kura_error *err);
enum kura_err kura_meta_upload_expired(struct kura_meta *meta,
				       int64_t before_ms, size_t limit,
				       struct kura_pool *pool,
				       struct kura_upload **out, size_t *count,
				       struct kura_error *err);

/* metadata seals */
enum kura_err kura_meta_bucket_get_id(struct kura_meta *meta, uint64_t id,
				      struct kura_bucket *out,
				      struct kura_error *err);
enum kura_err kura_meta_seal_pending_buckets(struct kura_meta *meta,
					     const uint64_t *after,
					     uint64_t *ids, size_t max,
					     size_t *count,
					     struct kura_error *err);
enum kura_err kura_meta_seal_next(struct kura_meta *meta, uint64_t bucket_id,
				  uint64_t bk_id, size_t limit,
				  struct kura_pool *pool,
				  struct kura_seal_batch *out,
				  struct kura_error *err);
enum kura_err kura_meta_seal_apply(struct kura_meta *meta,
				   const struct kura_seal_batch *batch,
				   const struct kura_new_seal *objects,
				   const struct kura_new_seal *uploads,
				   const struct kura_new_seal *parts,
				   size_t *applied, struct kura_error *err);

/* blob garbage collection and recovery */
enum kura_err kura_meta_gc_next(struct kura_meta *meta,
				uint8_t (*ids)[KURA_BLOB_ID_LEN], size_t max,
				size_t *count, struct kura_error *err);
enum kura_err kura_meta_gc_done(struct kura_meta *meta,
				const uint8_t (*ids)[KURA_BLOB_ID_LEN],
				size_t count, struct kura_error *err);
enum kura_err kura_meta_blob_referenced(struct kura_meta *meta,
					const uint8_t id[KURA_BLOB_ID_LEN],
					bool *referenced,
					struct kura_error *err);

/* replicas (v7) */
enum kura_err kura_meta_replica_set(struct kura_meta *meta,
				    const struct kura_replica *rows, size_t n,
				    const char *note, struct kura_error *err);
enum kura_err kura_meta_replica_list(struct kura_meta *meta,
				     const uint8_t blob_id[KURA_BLOB_ID_LEN],
				     struct kura_replica *out, size_t max,
				     size_t *count, struct kura_error *err);
enum kura_err kura_meta_replica_history(struct kura_meta *meta,
					const uint8_t blob_id[KURA_BLOB_ID_LEN],
					const char *backend,
					struct kura_replica_event *out,
					size_t max, size_t *count,
					struct kura_error *err);
enum kura_err kura_meta_replica_due(struct kura_meta *meta, const char *backend,
				    int64_t now_ms, struct kura_replica *out,
				    size_t max, size_t *count,
				    struct kura_error *err);
enum kura_err kura_meta_replica_orphans(struct kura_meta *meta,
					int64_t since_ms,
					struct kura_replica *out, size_t max,
					size_t *count, struct kura_error *err);
enum kura_err kura_meta_replica_groups(struct kura_meta *meta,
				       uint64_t bucket_id,
				       kura_replica_group_fn fn, void *ctx,
				       struct kura_error *err);
enum kura_err kura_meta_replica_queue(struct kura_meta *meta,
				      const char *backend, uint64_t *count,
				      int64_t *oldest_ms,
				      struct kura_error *err);
enum kura_err kura_meta_scrub_blobs(struct kura_meta *meta, uint64_t bucket_id,
				    const uint8_t after[KURA_BLOB_ID_LEN],
				    struct kura_scrub_blob *out, size_t max,
				    size_t *count, struct kura_error *err);

/* tenant and access-key lifecycle (v4) */
enum kura_err kura_meta_tenant_list(struct kura_meta *meta,
				    struct kura_pool *pool,
				    struct kura_tenant **out, size_t *count,
				    struct kura_error *err);
enum kura_err kura_meta_tenant_set_state(struct kura_meta *meta, uint64_t id,
					 enum kura_tenant_state state,
					 struct kura_error *err);
enum kura_err kura_meta_tenant_delete(struct kura_meta *meta, uint64_t id,
				      struct kura_error *err);
enum kura_err kura_meta_access_key_list(struct kura_meta *meta,
					uint64_t tenant_id,
					struct kura_pool *pool,
					struct kura_access_key **out,
					size_t *count, struct kura_error *err);
enum kura_err kura_meta_access_key_revoke(struct kura_meta *meta,
					  const char *id,
					  struct kura_error *err);
enum kura_err kura_meta_access_key_replace(struct kura_meta *meta,
					   const char *old_id,
					   const struct kura_access_key *k,
					   struct kura_error *err);

#endif

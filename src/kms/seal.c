/*
 * seal.c — metadata seals (see seal.h; the format is docs/FORMAT.md §10).
 *
 * A seal is kura_box (AES-256-GCM, random nonce) of the row's ETag (and
 * its additional checksum, when it has one) under
 *   K = HMAC-SHA256(bucket key, "kura-meta-seal-v1")
 * with the row's canonical encoding as additional data.  The bucket key
 * is one of the bucket's own kura key (never an SSE-KMS key), so a seal
 * can always be checked by whoever may list the bucket, and it goes with
 * the bucket's key when that is destroyed.  Which bucket key sealed a row
 * is stored with it (seal_bk_id); after a rotation kura_seal_rotate moves
 * the seals to the new bucket key, as re-wrapping moves DEKs.
 *
 * Canonical encodings are length-prefixed big-endian fields behind an
 * 8-byte magic per kind of row, so no two different rows encode alike.
 *
 * Threading: stateless apart from the caller's context.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/box.h"
#include "kura/buf.h"
#include "kura/encode.h"
#include "kura/hmac.h"
#include "kura/log.h"
#include "kura/seal.h"
#include "kms_int.h"
#include "kura/banned.h"

#define SEAL_LABEL "kura-meta-seal-v1"
#define MAGIC_OBJECT "KURAOBJ1"
#define MAGIC_VERSION "KURAOBJ2"       /* an object version (schema 6) */
#define MAGIC_UPLOAD_LOCKED "KURAUPL2" /* an upload with Object Lock */
#define MAGIC_UPLOAD "KURAUPL1"
#define MAGIC_PART "KURAUPT1"
#define MAGIC_PARTS "KURAPRT1"
/* Largest encoding: a 1 KiB key, 2 KiB of user metadata, tags and the
 * content headers of at most a 16 KiB header section, JSON-escaped. */
#define AAD_MAX (256u * 1024)
#define UPGRADE_BUCKETS 1024
#define UPGRADE_BATCH 256

/* ---- canonical encoding with a sticky error ---- */

struct enc {
	struct kura_buf *b; /* the context's, emptied for each row */
	enum kura_err rc;
};

static void enc_init(struct enc *e, struct kura_seal_ctx *c)
{
	if (c->aad.max == 0)
		kura_buf_init(&c->aad, AAD_MAX);
	kura_buf_reset(&c->aad);
	e->b = &c->aad;
	e->rc = KURA_OK;
}

static void put(struct enc *e, const void *p, size_t n)
{
	if (e->rc == KURA_OK)
		e->rc = kura_buf_add(e->b, p, n);
}

static void put_u64(struct enc *e, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	put(e, b, sizeof(b));
}

static void put_u32(struct enc *e, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 8), (uint8_t)v };
	put(e, b, sizeof(b));
}

static void put_u8(struct enc *e, uint8_t v)
{
	put(e, &v, 1);
}

static void put_bytes(struct enc *e, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		e->rc = KURA_ETOOBIG;
		return;
	}
	put_u32(e, (uint32_t)n);
	put(e, p, n);
}

/* An optional string: a presence byte, then the length-prefixed bytes. */
static void put_opt(struct enc *e, const char *s)
{
	put_u8(e, s != NULL);
	if (s != NULL)
		put_bytes(e, s, strlen(s));
}

static void put_headers(struct enc *e, const char *const strs[8])
{
	for (int i = 0; i < 8; i++)
		put_opt(e, strs[i]);
}

static void put_sse(struct enc *e, enum kura_sse sse, uint64_t kms_key_id,
		    const uint8_t hmac[KURA_SSEC_HMAC_LEN])
{
	put_u8(e, (uint8_t)sse);
	put_u64(e, kms_key_id);
	put(e, hmac, KURA_SSEC_HMAC_LEN);
}

void kura_seal_parts_digest(const struct kura_part *parts, uint32_t count,
			    uint8_t out[KURA_PARTS_DIGEST_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t hdr[12];
	unsigned len = 0;
	memcpy(hdr, MAGIC_PARTS, 8);
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = (uint8_t)(count >> (24 - 8 * i));
	/* SHA-256 of at most 10000 small records cannot fail short of memory;
	 * a digest of zeros then simply never matches. */
	memset(out, 0, KURA_PARTS_DIGEST_LEN);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1)
		goto out;
	for (uint32_t i = 0; i < count; i++) {
		const struct kura_part *p = &parts[i];
		uint8_t r[4 + 8 + 4 + KURA_BLOB_ID_LEN];
		for (int k = 0; k < 4; k++)
			r[k] = (uint8_t)(p->part_no >> (24 - 8 * k));
		for (int k = 0; k < 8; k++)
			r[4 + k] = (uint8_t)(p->size >> (56 - 8 * k));
		for (int k = 0; k < 4; k++)
			r[12 + k] = (uint8_t)(p->seg_size >> (24 - 8 * k));
		memcpy(r + 16, p->blob_id, KURA_BLOB_ID_LEN);
		if (EVP_DigestUpdate(md, r, sizeof(r)) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(md, out, &len) != 1 ||
	    len != KURA_PARTS_DIGEST_LEN)
		memset(out, 0, KURA_PARTS_DIGEST_LEN);
out:
	EVP_MD_CTX_free(md);
}

/* Object Lock settings: the mode, the retain-until time, the legal hold. */
static void put_lock(struct enc *e, enum kura_lock_mode mode, int64_t until_ms,
		     bool legal_hold)
{
	put_u8(e, (uint8_t)mode);
	put_u64(e, (uint64_t)until_ms);
	put_u8(e, legal_hold ? 1 : 0);
}

static void encode_object(struct enc *e, uint64_t tenant_id,
			  const struct kura_object *o)
{
	const char *const strs[8] = {
		o->content_type,     o->content_encoding,
		o->content_language, o->content_disposition,
		o->cache_control,    o->expires,
		o->user_meta_json,   o->tags_json,
	};
	/* A row as schema 5 had them (its key's only, null version, first)
	 * encodes as then, so seals made before versions still open; any
	 * other version says which it is: its order among the key's
	 * versions, whether it is the null version or a delete marker. */
	bool plain = o->vseq == 1 && o->null_version && !o->delete_marker &&
		     o->lock_mode == KURA_LOCK_NONE && !o->legal_hold;
	put(e, plain ? MAGIC_OBJECT : MAGIC_VERSION, 8);
	if (!plain) {
		put_u64(e, o->vseq);
		put_u8(e, o->null_version ? 1 : 0);
		put_u8(e, o->delete_marker ? 1 : 0);
		put_lock(e, o->lock_mode, o->lock_until_ms, o->legal_hold);
	}
	put_u64(e, tenant_id);
	put_u64(e, o->bucket_id);
	put(e, o->version_uid, KURA_UID_LEN);
	put_bytes(e, o->key, o->key_len);
	put_u64(e, o->size);
	put_u64(e, (uint64_t)o->mtime_ms);
	put_u32(e, o->part_count);
	put(e, o->parts_digest, KURA_PARTS_DIGEST_LEN);
	put_sse(e, o->sse, o->kms_key_id, o->ssec_hmac);
	put_headers(e, strs);
}

enum kura_err kura_seal_object_digest(const struct kura_secret *key,
				      uint64_t tenant_id,
				      const struct kura_object *o,
				      char hex[2 * KURA_ROW_DIGEST_LEN + 1],
				      struct kura_error *err)
{
	uint8_t mac[KURA_HMAC_SHA256_LEN];
	struct kura_buf b;
	struct enc e = { &b, KURA_OK };
	kura_buf_init(&b, AAD_MAX);
	encode_object(&e, tenant_id, o);
	put_bytes(&e, o->etag, strnlen(o->etag, KURA_ETAG_MAX));
	/* Only a row with a checksum adds it: older rows keep their digest. */
	if (o->sum.algo != KURA_CHECKSUM_NONE) {
		put_u8(&e, (uint8_t)o->sum.algo);
		put_u8(&e, (uint8_t)o->sum.type);
		put(&e, o->sum.digest, kura_checksum_len(o->sum.algo));
	}
	bool ok = e.rc == KURA_OK && key != NULL &&
		  kura_hmac_sha256(key->data, key->len, b.data, b.len, mac);
	kura_buf_release(&b);
	if (!ok)
		return kura_fail(err, e.rc != KURA_OK ? e.rc : KURA_EIO,
				 "row digest");
	kura_hex_encode(mac, KURA_ROW_DIGEST_LEN, hex);
	return KURA_OK;
}

static void encode_upload(struct enc *e, uint64_t tenant_id,
			  const struct kura_upload *u)
{
	const char *const strs[8] = {
		u->content_type,     u->content_encoding,
		u->content_language, u->content_disposition,
		u->cache_control,    u->expires,
		u->user_meta_json,   u->tags_json,
	};
	/* Unlocked uploads encode as before schema 6. */
	bool locked = u->lock_mode != KURA_LOCK_NONE || u->legal_hold;
	put(e, locked ? MAGIC_UPLOAD_LOCKED : MAGIC_UPLOAD, 8);
	if (locked)
		put_lock(e, u->lock_mode, u->lock_until_ms, u->legal_hold);
	put_u64(e, tenant_id);
	put_u64(e, u->bucket_id);
	put(e, u->version_uid, KURA_UID_LEN);
	put_bytes(e, u->id, strnlen(u->id, sizeof(u->id)));
	put_bytes(e, u->key, u->key_len);
	put_u64(e, (uint64_t)u->created_ms);
	put_sse(e, u->sse, u->kms_key_id, u->ssec_hmac);
	put_headers(e, strs);
}

/* Not bk_id or dek_wrapped: re-wrapping changes them, and the DEK's own
 * envelope already binds the part. */
static void encode_part(struct enc *e, uint64_t tenant_id, uint64_t bucket_id,
			const uint8_t version_uid[KURA_UID_LEN],
			const struct kura_part *p)
{
	put(e, MAGIC_PART, 8);
	put_u64(e, tenant_id);
	put_u64(e, bucket_id);
	put(e, version_uid, KURA_UID_LEN);
	put_u32(e, p->part_no);
	put_u64(e, p->size);
	put_u32(e, p->seg_size);
	put(e, p->blob_id, KURA_BLOB_ID_LEN);
	put_u64(e, (uint64_t)p->mtime_ms);
}

/* ---- keys ---- */

void kura_seal_ctx_init(struct kura_seal_ctx *c, struct kura_kms *kms,
			struct kura_meta *meta)
{
	memset(c, 0, sizeof(*c));
	c->kms = kms;
	c->meta = meta;
}

static void drop_keys(struct kura_seal_ctx *c)
{
	kura_secret_free(c->bucket_key);
	c->bucket_key = NULL;
	kura_box_ctx_free(c->box);
	c->box = NULL;
	c->bk_id = 0;
}

void kura_seal_ctx_release(struct kura_seal_ctx *c)
{
	drop_keys(c);
	kura_buf_release(&c->aad);
}

/* Cache bucket key bk (taken over) as bk_id's, with the seal key derived
 * from it ready for use. */
static enum kura_err take_key(struct kura_seal_ctx *c, uint64_t bk_id,
			      struct kura_secret *bk, struct kura_error *err)
{
	struct kura_secret *k = kura_secret_new(KURA_AES256_KEY_LEN);
	enum kura_err rc = KURA_OK;
	drop_keys(c);
	if (k == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "seal: locked memory");
	else if (!kura_hmac_sha256(bk->data, bk->len, SEAL_LABEL,
				   sizeof(SEAL_LABEL) - 1, k->data))
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "seal key");
	if (rc == KURA_OK)
		rc = kura_box_ctx_new(k, &c->box, err);
	kura_secret_free(k);
	if (rc != KURA_OK) {
		kura_secret_free(bk);
		return rc;
	}
	c->bucket_key = bk;
	c->bk_id = bk_id;
	return KURA_OK;
}

/* The seal key for new rows of b: its own key's current bucket key. */
static enum kura_err key_for_write(struct kura_seal_ctx *c,
				   const struct kura_bucket *b,
				   struct kura_error *err)
{
	uint64_t bk_id = 0;
	struct kura_secret *bk = NULL;
	enum kura_err rc = kura_kms_write_key(c->kms, b, 0, &bk_id, &bk, err);
	if (rc != KURA_OK)
		return rc;
	if (c->box != NULL && c->bk_id == bk_id) {
		kura_secret_free(bk);
		return KURA_OK;
	}
	return take_key(c, bk_id, bk, err);
}

/* The seal key of bucket key bk_id (to open a row sealed by it). */
static enum kura_err key_for_read(struct kura_seal_ctx *c, uint64_t bk_id,
				  struct kura_error *err)
{
	if (c->box != NULL && c->bk_id == bk_id)
		return KURA_OK;
	struct kura_secret *bk = NULL;
	enum kura_err rc = kura_kms_read_key(c->kms, bk_id, &bk, err);
	return rc == KURA_OK ? take_key(c, bk_id, bk, err) : rc;
}

enum kura_err kura_seal_bucket_key(struct kura_seal_ctx *c, uint64_t bk_id,
				   struct kura_secret **out,
				   struct kura_error *err)
{
	if (c->bucket_key != NULL && c->bk_id == bk_id) {
		*out = kura_secret_dup(c->bucket_key);
		return *out ? KURA_OK :
			      kura_fail(err, KURA_ENOMEM, "bucket key copy");
	}
	return kura_kms_read_key(c->kms, bk_id, out, err);
}

/* ---- sealing and opening ---- */

/*
 * The boxed plaintext: the ETag, and when the row has a checksum a NUL,
 * the algorithm, the type and (for objects and parts, not uploads) the
 * digest.  A seal made before checksums were kept holds the ETag alone
 * and opens the same way (docs/FORMAT.md §10).
 */
#define BOXED_MAX (KURA_SEAL_MAX - KURA_BOX_OVERHEAD)

/* A checksum a row can hold: any algorithm over the whole object (a
 * simple PUT may use any), composite for all but CRC64NVME. */
static bool sum_valid(const struct kura_checksum_value *v)
{
	return v->algo > KURA_CHECKSUM_NONE &&
	       v->algo <= KURA_CHECKSUM_ALGO_MAX &&
	       (v->type == KURA_CHECKSUM_FULL_OBJECT ||
		(v->type == KURA_CHECKSUM_COMPOSITE &&
		 v->algo != KURA_CHECKSUM_CRC64NVME));
}

static size_t boxed_plaintext(const char *etag, size_t n,
			      const struct kura_checksum_value *sum,
			      bool with_digest, uint8_t out[BOXED_MAX])
{
	memcpy(out, etag, n);
	if (sum == NULL || sum->algo == KURA_CHECKSUM_NONE)
		return n;
	size_t d = with_digest ? kura_checksum_len(sum->algo) : 0;
	out[n] = '\0';
	out[n + 1] = (uint8_t)sum->algo;
	out[n + 2] = (uint8_t)sum->type;
	memcpy(out + n + 3, sum->digest, d);
	return n + 3 + d;
}

static enum kura_err seal_with(struct kura_seal_ctx *c, struct enc *e,
			       const char *etag,
			       const struct kura_checksum_value *sum,
			       bool with_digest, uint8_t seal[KURA_SEAL_MAX],
			       size_t *seal_len, uint64_t *seal_bk_id,
			       struct kura_error *err)
{
	uint8_t plain[BOXED_MAX];
	size_t n = strnlen(etag, KURA_ETAG_MAX);
	if (e->rc != KURA_OK)
		return kura_fail(err, e->rc, "seal: row too large to encode");
	if (n >= KURA_ETAG_MAX)
		return kura_fail(err, KURA_EINVAL, "seal: bad ETag");
	if (sum != NULL && sum->algo != KURA_CHECKSUM_NONE && !sum_valid(sum))
		return kura_fail(err, KURA_EINVAL, "seal: bad checksum");
	n = boxed_plaintext(etag, n, sum, with_digest, plain);
	enum kura_err rc = kura_box_ctx_seal(c->box,
					     (const uint8_t *)e->b->data,
					     e->b->len, plain, n, seal, err);
	if (rc != KURA_OK)
		return rc;
	*seal_len = n + KURA_BOX_OVERHEAD;
	*seal_bk_id = c->bk_id;
	return KURA_OK;
}

/* Split an opened box into ETag and checksum; false when malformed. */
static bool split_boxed(const uint8_t *p, size_t n, bool with_digest,
			char etag[KURA_ETAG_MAX],
			struct kura_checksum_value *sum)
{
	const uint8_t *nul = memchr(p, '\0', n);
	size_t elen = nul != NULL ? (size_t)(nul - p) : n;
	memset(sum, 0, sizeof(*sum));
	if (elen >= KURA_ETAG_MAX)
		return false;
	if (nul != NULL) {
		size_t rest = n - elen - 1;
		if (rest < 2 || p[elen + 1] == KURA_CHECKSUM_NONE ||
		    p[elen + 1] > KURA_CHECKSUM_ALGO_MAX)
			return false;
		sum->algo = (enum kura_checksum_algo)p[elen + 1];
		sum->type = (enum kura_checksum_type)p[elen + 2];
		size_t d = with_digest ? kura_checksum_len(sum->algo) : 0;
		if (!sum_valid(sum) || rest != 2 + d)
			return false;
		memcpy(sum->digest, p + elen + 3, d);
	}
	memcpy(etag, p, elen);
	etag[elen] = '\0';
	return true;
}

void kura_seal_upgrade_state(struct kura_kms *kms, const uint64_t *waiting,
			     size_t n)
{
	if (n > KURA_SEAL_WAIT_MAX)
		n = KURA_SEAL_WAIT_MAX;
	pthread_mutex_lock(&kms->lock);
	memcpy(kms->seal_waiting, waiting, n * sizeof(*waiting));
	kms->n_seal_waiting = n;
	kms->seal_state_known = true;
	pthread_mutex_unlock(&kms->lock);
}

/* Is a row of bucket_id without a seal still waiting for the upgrade? */
static bool upgrade_waits(struct kura_seal_ctx *c, uint64_t bucket_id)
{
	struct kura_kms *kms = c->kms;
	bool known, waits = false;
	pthread_mutex_lock(&kms->lock);
	known = kms->seal_state_known;
	for (size_t i = 0; known && i < kms->n_seal_waiting; i++)
		waits |= kms->seal_waiting[i] == bucket_id;
	pthread_mutex_unlock(&kms->lock);
	if (known)
		return waits;
	uint8_t v[8];
	size_t n = 0;
	return c->meta != NULL &&
	       kura_meta_setting_get(c->meta, KURA_SEAL_PENDING, v, sizeof(v),
				     &n, NULL) == KURA_OK;
}

/* A row without a seal: still to be sealed by the upgrade, or stripped. */
static enum kura_err unsealed(struct kura_seal_ctx *c, uint64_t bucket_id,
			      const char *what, struct kura_error *err)
{
	if (upgrade_waits(c, bucket_id))
		return kura_fail(err, KURA_EBUSY,
				 "%s is not sealed yet (upgrade running)",
				 what);
	return kura_fail(err, KURA_EINTEGRITY, "%s has no seal", what);
}

/*
 * The sealing bucket key of a row of bucket_id could not be used (rc).
 * That is the key's state only when the row names a bucket key of the
 * bucket's own kura key — or none is left because that key was destroyed;
 * a row naming any other, or a missing one while the key lives, was
 * changed: an integrity failure, never passed off as a key's state.
 */
static enum kura_err key_error(struct kura_seal_ctx *c, uint64_t bucket_id,
			       uint64_t bk_id, enum kura_err rc,
			       const char *what, struct kura_error *err)
{
	struct kura_meta *m = c->meta;
	struct kura_bucket b;
	struct kura_bucket_key bk;
	struct kura_key k;
	struct kura_error e = { 0 };
	if (m == NULL ||
	    (rc != KURA_EKEY_DESTROYED && rc != KURA_EKEY_DISABLED))
		return rc;
	if (kura_meta_bucket_get_id(m, bucket_id, &b, &e) != KURA_OK)
		return rc;
	enum kura_err got = bk_id == 0 ?
				    KURA_ENOENT :
				    kura_meta_bucket_key_get(m, bk_id, &bk, &e);
	if (got == KURA_OK && bk.bucket_id == bucket_id &&
	    bk.key_id == b.key_id)
		return rc;
	if (got == KURA_ENOENT &&
	    kura_meta_key_get(m, b.key_id, &k, &e) == KURA_OK &&
	    k.state == KURA_KEY_DESTROYED)
		return rc;
	kura_error_clear(err);
	return kura_fail(
		err, KURA_EINTEGRITY,
		"%s names bucket key %llu, which does not seal this bucket's rows",
		what, (unsigned long long)bk_id);
}

static enum kura_err
open_with(struct kura_seal_ctx *c, struct enc *e, const uint8_t *seal,
	  size_t seal_len, uint64_t seal_bk_id, uint64_t bucket_id,
	  char etag[KURA_ETAG_MAX], struct kura_checksum_value *sum,
	  bool with_digest, const char *what, struct kura_error *err)
{
	uint8_t out[BOXED_MAX];
	/* kura never wrote a row it cannot encode: it was changed. */
	if (e->rc != KURA_OK)
		return kura_fail(err, KURA_EINTEGRITY,
				 "%s: row does not encode", what);
	if (seal_len == 0)
		return unsealed(c, bucket_id, what, err);
	/* A sealed row keeps its ETag only in the seal. */
	if (etag[0] != '\0')
		return kura_fail(err, KURA_EINTEGRITY,
				 "%s: sealed row has a clear ETag", what);
	if (seal_len < KURA_BOX_OVERHEAD || seal_len > KURA_SEAL_MAX)
		return kura_fail(err, KURA_EINTEGRITY, "%s: malformed seal",
				 what);
	enum kura_err rc = key_for_read(c, seal_bk_id, err);
	if (rc != KURA_OK)
		return key_error(c, bucket_id, seal_bk_id, rc, what, err);
	struct kura_error e2 = { 0 };
	size_t n = seal_len - KURA_BOX_OVERHEAD;
	rc = kura_box_ctx_open(c->box, (const uint8_t *)e->b->data, e->b->len,
			       seal, seal_len, out, &e2);
	if (rc == KURA_EINTEGRITY)
		return kura_fail(err, rc, "%s does not match its seal", what);
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", e2.msg);
	struct kura_checksum_value got;
	char tag[KURA_ETAG_MAX];
	if (!split_boxed(out, n, with_digest, tag, &got))
		return kura_fail(err, KURA_EINTEGRITY,
				 "%s: sealed ETag malformed", what);
	memcpy(etag, tag, strlen(tag) + 1);
	*sum = got;
	return KURA_OK;
}

/* Seal o as it is (its parts digest included) with the context's key. */
static enum kura_err seal_object_row(struct kura_seal_ctx *c,
				     uint64_t tenant_id, struct kura_object *o,
				     struct kura_error *err)
{
	struct enc e;
	enc_init(&e, c);
	encode_object(&e, tenant_id, o);
	enum kura_err rc = seal_with(c, &e, o->etag, &o->sum, true, o->seal,
				     &o->seal_len, &o->seal_bk_id, err);
	return rc;
}

enum kura_err kura_seal_object(struct kura_seal_ctx *c,
			       const struct kura_bucket *b,
			       struct kura_object *o, struct kura_error *err)
{
	enum kura_err rc = key_for_write(c, b, err);
	if (rc != KURA_OK)
		return rc;
	kura_seal_parts_digest(o->parts, o->part_count, o->parts_digest);
	return seal_object_row(c, b->tenant_id, o, err);
}

enum kura_err kura_seal_upload(struct kura_seal_ctx *c,
			       const struct kura_bucket *b,
			       struct kura_upload *u, struct kura_error *err)
{
	struct enc e;
	enum kura_err rc = key_for_write(c, b, err);
	if (rc != KURA_OK)
		return rc;
	enc_init(&e, c);
	encode_upload(&e, b->tenant_id, u);
	rc = seal_with(c, &e, "", &u->sum, false, u->seal, &u->seal_len,
		       &u->seal_bk_id, err);
	return rc;
}

enum kura_err kura_seal_part(struct kura_seal_ctx *c,
			     const struct kura_bucket *b,
			     const uint8_t version_uid[KURA_UID_LEN],
			     struct kura_part *p, struct kura_error *err)
{
	struct enc e;
	enum kura_err rc = key_for_write(c, b, err);
	if (rc != KURA_OK)
		return rc;
	enc_init(&e, c);
	encode_part(&e, b->tenant_id, b->id, version_uid, p);
	rc = seal_with(c, &e, p->etag, &p->sum, true, p->seal, &p->seal_len,
		       &p->seal_bk_id, err);
	return rc;
}

enum kura_err kura_seal_object_open(struct kura_seal_ctx *c, uint64_t tenant_id,
				    struct kura_object *o, bool with_parts,
				    struct kura_error *err)
{
	struct enc e;
	if (with_parts) {
		uint8_t d[KURA_PARTS_DIGEST_LEN];
		kura_seal_parts_digest(o->parts, o->part_count, d);
		if (o->seal_len > 0 &&
		    memcmp(d, o->parts_digest, sizeof(d)) != 0)
			return kura_fail(
				err, KURA_EINTEGRITY,
				"object's parts do not match its seal");
	}
	enc_init(&e, c);
	encode_object(&e, tenant_id, o);
	enum kura_err rc = open_with(c, &e, o->seal, o->seal_len, o->seal_bk_id,
				     o->bucket_id, o->etag, &o->sum, true,
				     "object", err);
	return rc;
}

enum kura_err kura_seal_upload_open(struct kura_seal_ctx *c, uint64_t tenant_id,
				    struct kura_upload *u,
				    struct kura_error *err)
{
	struct enc e;
	char none[KURA_ETAG_MAX] = "";
	enc_init(&e, c);
	encode_upload(&e, tenant_id, u);
	enum kura_err rc = open_with(c, &e, u->seal, u->seal_len, u->seal_bk_id,
				     u->bucket_id, none, &u->sum, false,
				     "upload", err);
	if (rc == KURA_OK && none[0] != '\0')
		rc = kura_fail(err, KURA_EINTEGRITY, "upload: malformed seal");
	return rc;
}

enum kura_err kura_seal_part_open(struct kura_seal_ctx *c, uint64_t tenant_id,
				  uint64_t bucket_id,
				  const uint8_t version_uid[KURA_UID_LEN],
				  struct kura_part *p, struct kura_error *err)
{
	struct enc e;
	enc_init(&e, c);
	encode_part(&e, tenant_id, bucket_id, version_uid, p);
	enum kura_err rc = open_with(c, &e, p->seal, p->seal_len, p->seal_bk_id,
				     bucket_id, p->etag, &p->sum, true,
				     "upload part", err);
	return rc;
}

/* ---- re-sealing after a rotation, and the upgrade of old rows ---- */

/* A seal that never opens, for a row that failed to open under its old
 * key: it must stay a failure, yet stop holding the old bucket key. */
static void poison(struct kura_new_seal *ns, uint64_t bk_id)
{
	struct kura_error e = { 0 };
	if (kura_random_bytes(ns->seal, KURA_BOX_OVERHEAD, &e) != KURA_OK)
		memset(ns->seal, 0, KURA_BOX_OVERHEAD);
	ns->seal_len = KURA_BOX_OVERHEAD;
	ns->seal_bk_id = bk_id;
}

static void take_seal(struct kura_new_seal *ns, const uint8_t *seal, size_t len,
		      uint64_t bk_id, const uint8_t *digest)
{
	memcpy(ns->seal, seal, len);
	ns->seal_len = len;
	ns->seal_bk_id = bk_id;
	if (digest != NULL)
		memcpy(ns->parts_digest, digest, KURA_PARTS_DIGEST_LEN);
}

/* New seals for a batch (from pool).  Each row of b, left as read (the
 * store swaps seals only where they are still those), is opened with
 * old_ctx when it was sealed before and sealed anew with new_ctx; a row
 * that does not open gets a seal that never will. */
static enum kura_err
reseal_batch(struct kura_seal_ctx *old_ctx, struct kura_seal_ctx *new_ctx,
	     const struct kura_bucket *bucket, const struct kura_seal_batch *b,
	     struct kura_pool *pool, struct kura_new_seal **objs,
	     struct kura_new_seal **ups, struct kura_new_seal **parts,
	     size_t *broken, struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	*objs = kura_palloc(pool, (b->n_objects + 1) * sizeof(**objs));
	*ups = kura_palloc(pool, (b->n_uploads + 1) * sizeof(**ups));
	*parts = kura_palloc(pool, (b->n_parts + 1) * sizeof(**parts));
	if (*objs == NULL || *ups == NULL || *parts == NULL)
		return kura_fail(err, KURA_ENOMEM, "re-seal");
	for (size_t i = 0; rc == KURA_OK && i < b->n_objects; i++) {
		struct kura_object o = b->objects[i];
		struct kura_error e = { 0 };
		if (old_ctx != NULL &&
		    kura_seal_object_open(old_ctx, o.tenant_id, &o, false,
					  &e) != KURA_OK) {
			kura_warn(NULL,
				  "re-seal: object version %02x%02x..: %s",
				  o.version_uid[0], o.version_uid[1], e.msg);
			poison(&(*objs)[i], new_ctx->bk_id);
			(*broken)++;
			continue;
		}
		/* A re-seal keeps the verified parts digest; an upgrade
		 * computes it from the parts read with the row. */
		if (old_ctx != NULL)
			rc = seal_object_row(new_ctx, o.tenant_id, &o, err);
		else
			rc = kura_seal_object(new_ctx, bucket, &o, err);
		if (rc == KURA_OK)
			take_seal(&(*objs)[i], o.seal, o.seal_len, o.seal_bk_id,
				  o.parts_digest);
	}
	for (size_t i = 0; rc == KURA_OK && i < b->n_uploads; i++) {
		struct kura_upload u = b->uploads[i];
		struct kura_error e = { 0 };
		if (old_ctx != NULL &&
		    kura_seal_upload_open(old_ctx, u.tenant_id, &u, &e) !=
			    KURA_OK) {
			kura_warn(NULL, "re-seal: upload '%s': %s", u.id,
				  e.msg);
			poison(&(*ups)[i], new_ctx->bk_id);
			(*broken)++;
			continue;
		}
		rc = kura_seal_upload(new_ctx, bucket, &u, err);
		if (rc == KURA_OK)
			take_seal(&(*ups)[i], u.seal, u.seal_len, u.seal_bk_id,
				  NULL);
	}
	for (size_t i = 0; rc == KURA_OK && i < b->n_parts; i++) {
		struct kura_upload_part p = b->parts[i];
		struct kura_error e = { 0 };
		if (old_ctx != NULL &&
		    kura_seal_part_open(old_ctx, p.tenant_id, p.bucket_id,
					p.version_uid, &p.part,
					&e) != KURA_OK) {
			kura_warn(NULL, "re-seal: upload part %u: %s",
				  p.part.part_no, e.msg);
			poison(&(*parts)[i], new_ctx->bk_id);
			(*broken)++;
			continue;
		}
		rc = kura_seal_part(new_ctx, bucket, p.version_uid, &p.part,
				    err);
		if (rc == KURA_OK)
			take_seal(&(*parts)[i], p.part.seal, p.part.seal_len,
				  p.part.seal_bk_id, NULL);
	}
	return rc;
}

enum kura_err kura_seal_rotate(struct kura_kms *kms, struct kura_meta *meta,
			       uint64_t bucket_id, uint64_t old_bk_id,
			       size_t limit, size_t *moved,
			       struct kura_error *err)
{
	struct kura_seal_ctx oc, nc;
	struct kura_seal_batch b = { 0 };
	struct kura_bucket bucket;
	struct kura_pool *pool = kura_pool_new(0);
	size_t broken = 0, applied = 0;
	*moved = 0;
	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "re-seal");
	kura_seal_ctx_init(&oc, kms, meta);
	kura_seal_ctx_init(&nc, kms, meta);
	enum kura_err rc = kura_meta_seal_next(meta, bucket_id, old_bk_id,
					       limit, pool, &b, err);
	if (rc == KURA_OK && b.n_objects + b.n_uploads + b.n_parts == 0)
		goto out;
	if (rc == KURA_OK)
		rc = kura_meta_bucket_get_id(meta, bucket_id, &bucket, err);
	if (rc == KURA_OK)
		rc = key_for_read(&oc, old_bk_id, err);
	if (rc == KURA_OK)
		rc = key_for_write(&nc, &bucket, err);
	if (rc == KURA_OK && nc.bk_id == old_bk_id)
		rc = kura_fail(err, KURA_ESTATE,
			       "bucket key %llu is still current",
			       (unsigned long long)old_bk_id);
	struct kura_new_seal *no = NULL, *nu = NULL, *np = NULL;
	if (rc == KURA_OK)
		rc = reseal_batch(&oc, &nc, &bucket, &b, pool, &no, &nu, &np,
				  &broken, err);
	if (rc == KURA_OK)
		rc = kura_meta_seal_apply(meta, &b, no, nu, np, &applied, err);
	if (rc == KURA_OK)
		*moved = applied;
	if (rc == KURA_OK && broken > 0)
		kura_warn(
			NULL,
			"re-seal: %zu rows of bucket '%s' failed their seal and "
			"stay failed",
			broken, bucket.name);
out:
	kura_seal_ctx_release(&oc);
	kura_seal_ctx_release(&nc);
	kura_pool_free(pool);
	return rc;
}

/* How a bucket fared in the upgrade. */
enum upgrade_outcome {
	UPGRADE_SEALED,	   /* its rows are sealed (or it is gone) */
	UPGRADE_WAITING,   /* its own key is disabled: a later run */
	UPGRADE_DESTROYED, /* its own key was destroyed: never readable */
};

/* Seal every never-sealed row of one bucket. */
static enum kura_err upgrade_bucket(struct kura_kms *kms,
				    struct kura_meta *meta, uint64_t bucket_id,
				    struct kura_seal_report *r,
				    enum upgrade_outcome *out,
				    struct kura_error *err)
{
	struct kura_seal_ctx c;
	struct kura_bucket bucket;
	struct kura_error e = { 0 };
	enum kura_err rc =
		kura_meta_bucket_get_id(meta, bucket_id, &bucket, err);
	*out = UPGRADE_SEALED;
	if (rc == KURA_ENOENT) { /* the bucket went meanwhile */
		kura_error_clear(err);
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return rc;
	kura_seal_ctx_init(&c, kms, meta);
	rc = key_for_write(&c, &bucket, &e);
	if (rc == KURA_EKEY_DISABLED || rc == KURA_EKEY_DESTROYED ||
	    rc == KURA_EKEY) {
		kura_warn(NULL, "seal upgrade: bucket '%s' %s: %s", bucket.name,
			  rc == KURA_EKEY_DESTROYED ? "left unsealed" : "waits",
			  e.msg);
		*out = rc == KURA_EKEY_DESTROYED ? UPGRADE_DESTROYED :
						   UPGRADE_WAITING;
		kura_seal_ctx_release(&c);
		return KURA_OK;
	}
	if (rc != KURA_OK) {
		kura_seal_ctx_release(&c);
		return kura_fail(err, rc, "%s", e.msg);
	}
	for (;;) {
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_seal_batch b = { 0 };
		size_t broken = 0, applied = 0;
		if (pool == NULL) {
			rc = kura_fail(err, KURA_ENOMEM, "seal upgrade");
			break;
		}
		rc = kura_meta_seal_next(meta, bucket_id, 0, UPGRADE_BATCH,
					 pool, &b, err);
		size_t n = b.n_objects + b.n_uploads + b.n_parts;
		struct kura_new_seal *no = NULL, *nu = NULL, *np = NULL;
		if (rc == KURA_OK && n > 0)
			rc = reseal_batch(NULL, &c, &bucket, &b, pool, &no, &nu,
					  &np, &broken, err);
		if (rc == KURA_OK && n > 0)
			rc = kura_meta_seal_apply(meta, &b, no, nu, np,
						  &applied, err);
		if (rc == KURA_OK) {
			r->objects += b.n_objects;
			r->uploads += b.n_uploads;
			r->parts += b.n_parts;
		}
		kura_pool_free(pool);
		/* Nothing applied: rows changed under us; the next run looks
		 * again rather than spin here. */
		if (rc != KURA_OK || n == 0 || applied == 0)
			break;
	}
	kura_seal_ctx_release(&c);
	return rc;
}

static bool in_scope(const struct kura_seal_scope *scope, uint64_t bucket_id)
{
	if (scope->all)
		return true;
	for (size_t i = 0; i < scope->n_buckets; i++)
		if (scope->buckets[i] == bucket_id)
			return true;
	return false;
}

enum kura_err kura_seal_upgrade(struct kura_kms *kms, struct kura_meta *meta,
				const struct kura_seal_scope *scope,
				struct kura_seal_report *report,
				struct kura_error *err)
{
	uint8_t v[8];
	size_t n = 0, vlen = 0;
	memset(report, 0, sizeof(*report));
	enum kura_err rc = kura_meta_setting_get(meta, KURA_SEAL_PENDING, v,
						 sizeof(v), &vlen, err);
	if (rc == KURA_ENOENT) {
		kura_error_clear(err);
		report->done = true;
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return rc;
	report->ran = true;
	uint64_t *ids = malloc(UPGRADE_BUCKETS * sizeof(*ids));
	if (ids == NULL)
		return kura_fail(err, KURA_ENOMEM, "seal upgrade");
	uint64_t after = 0;
	bool first = true;
	do {
		rc = kura_meta_seal_pending_buckets(meta, first ? NULL : &after,
						    ids, UPGRADE_BUCKETS, &n,
						    err);
		first = false;
		for (size_t i = 0; rc == KURA_OK && i < n; i++) {
			enum upgrade_outcome o = UPGRADE_SEALED;
			after = ids[i];
			if (!in_scope(scope, ids[i])) {
				report->buckets_refused++;
				continue;
			}
			rc = upgrade_bucket(kms, meta, ids[i], report, &o, err);
			if (rc == KURA_OK && o == UPGRADE_WAITING) {
				if (report->n_waiting == KURA_SEAL_WAIT_MAX)
					rc = kura_fail(
						err, KURA_EBUSY,
						"seal upgrade: more than %d "
						"buckets wait for their key",
						KURA_SEAL_WAIT_MAX);
				else
					report->waiting[report->n_waiting++] =
						ids[i];
			}
		}
	} while (rc == KURA_OK && n == UPGRADE_BUCKETS);
	free(ids);
	if (rc != KURA_OK || report->n_waiting > 0)
		return rc;
	/* Nothing waits: rows still without a seal are refused or beyond
	 * reading, and stay failures for good. */
	rc = kura_meta_setting_delete(meta, KURA_SEAL_PENDING, err);
	report->done = rc == KURA_OK;
	return rc;
}

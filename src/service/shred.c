/*
 * shred.c — crypto-shredding a bucket with evidence.
 *
 * Order, chosen so that every step that can fail leaves the data either
 * intact or unreadable, never "deleted but recoverable":
 *   1. inventory: the bucket's objects and blobs are listed;
 *   2. the bucket's own key is destroyed in the key provider — from here
 *      on no copy of the ciphertext (backups, a stolen disk, an old copy of
 *      the data directory) can be decrypted;
 *   3. the bucket and everything in it leave the metadata store in one
 *      transaction, its blobs queued for deletion;
 *   4. every blob is removed from the data store, each removal recorded;
 *   5. the deletion certificate is signed and written.
 * Shared keys (tenant scope, SSE-KMS keys) are not destroyed — other
 * buckets use them — but this bucket's bucket keys under them are deleted
 * in step 3; the certificate says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/cert.h"
#include "kura/placement.h"
#include "kura/seal.h"
#include "kura/service.h"
#include "kura/fsutil.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define LIST_PAGE 1000
#define GC_BATCH 512

struct blob_entry {
	uint8_t id[KURA_BLOB_ID_LEN];
	uint64_t size;
};

struct blob_list {
	struct blob_entry *v;
	size_t n, cap;
};

static enum kura_err collect_blob(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN],
				  uint64_t size)
{
	struct blob_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct blob_entry *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return KURA_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n].id, id, KURA_BLOB_ID_LEN);
	l->v[l->n].size = size;
	l->n++;
	return KURA_OK;
}

/* Every object version of the bucket into the certificate (current and
 * older ones; delete markers hold no data), each checked against its seal
 * first (while the key still exists): one that fails is listed
 * as the metadata claims it, marked unverified — a shred must destroy
 * whatever is there, and the certificate must not vouch for a forgery. */
static enum kura_err add_objects(struct kura_service *svc,
				 const struct kura_bucket *b,
				 struct kura_cert *cert, struct kura_error *err)
{
	struct kura_meta *meta = svc->meta;
	struct kura_seal_ctx sc;
	uint64_t bucket_id = b->id;
	kura_seal_ctx_init(&sc, svc->kms, meta);
	char *after = NULL;
	size_t after_len = 0;
	uint64_t after_vseq = 0;
	enum kura_err rc = KURA_OK;
	for (;;) {
		struct kura_pool *pool = kura_pool_new(64 * 1024);
		struct kura_object *es = NULL;
		size_t n = 0;
		if (pool == NULL) {
			rc = kura_fail(err, KURA_ENOMEM, "inventory");
			break;
		}
		rc = kura_meta_object_list_versions(meta, bucket_id, "", 0,
						    after, after_len,
						    after_vseq, LIST_PAGE, pool,
						    &es, &n, err);
		for (size_t i = 0; rc == KURA_OK && i < n; i++) {
			struct kura_error e = { 0 };
			enum kura_err v = kura_seal_object_open(
				&sc, b->tenant_id, &es[i], false, &e);
			if (v != KURA_OK && v != KURA_EINTEGRITY &&
			    v != KURA_EKEY_DESTROYED) {
				rc = kura_fail(err, v, "inventory: %s", e.msg);
				break;
			}
			/* A bucket with Object Lock: a row whose seal fails
			 * (a marker too) may have had its lock taken out of
			 * the metadata; nothing proves it may go. */
			if (v == KURA_EINTEGRITY && b->object_lock) {
				rc = kura_fail(
					err, KURA_EPERM,
					"bucket '%s' has Object Lock and "
					"a row that fails its seal (%s): "
					"not shredded",
					b->name, e.msg);
				break;
			}
			if (v == KURA_EINTEGRITY)
				kura_warn(
					NULL,
					"shred: an object row fails its seal: %s",
					e.msg);
			/* Object Lock: a version under a legal hold or
			 * retention stops the shred before any key is
			 * destroyed (the store refuses the purge too, but
			 * by then the data would be unreadable). */
			if (kura_version_locked(&es[i], kura_now_ms(), false)) {
				rc = kura_fail(err, KURA_EPERM,
					       "bucket '%s' holds versions "
					       "protected by Object Lock",
					       b->name);
				break;
			}
			if (es[i].delete_marker)
				continue; /* no data: not in the certificate */
			rc = kura_cert_add_object(cert, es[i].key,
						  es[i].key_len, es[i].size,
						  es[i].version_uid,
						  es[i].mtime_ms, v == KURA_OK,
						  err);
		}
		if (rc == KURA_OK && n > 0) {
			char *next = malloc(es[n - 1].key_len);
			if (next == NULL) {
				rc = kura_fail(err, KURA_ENOMEM, "inventory");
			} else {
				memcpy(next, es[n - 1].key, es[n - 1].key_len);
				free(after);
				after = next;
				after_len = es[n - 1].key_len;
				after_vseq = es[n - 1].vseq;
			}
		}
		kura_pool_free(pool);
		if (rc != KURA_OK || n < LIST_PAGE)
			break;
	}
	free(after);
	kura_seal_ctx_release(&sc);
	return rc;
}

/* Destroy the bucket's own key; record every other key that protects data
 * of the bucket (the tenant's key, SSE-KMS keys) as retained: other buckets
 * use them, so copies of this bucket's ciphertext and metadata made before
 * the shred stay decryptable for as long as those keys live. */
static enum kura_err handle_key(struct kura_service *svc, uint64_t key_id,
				bool own, struct kura_cert *cert,
				struct kura_error *err)
{
	struct kura_key k;
	enum kura_err rc = kura_meta_key_get(svc->meta, key_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	if (own && k.kind == KURA_KEY_BUCKET) {
		struct kura_kms_destroyed d;
		rc = kura_kms_key_destroy(svc->kms, k.id, &d, err);
		if (rc == KURA_OK)
			rc = kura_cert_add_key_destroyed(cert, &k, &d, err);
		return rc;
	}
	return kura_cert_add_key_retained(
		cert, &k,
		k.kind == KURA_KEY_TENANT ?
			"shared by the tenant's buckets: not destroyed; this bucket's "
			"bucket keys under it were deleted" :
			"SSE-KMS key that other data may use: not destroyed; this "
			"bucket's bucket keys under it were deleted",
		err);
}

static enum kura_err handle_keys(struct kura_service *svc,
				 const struct kura_bucket *b,
				 struct kura_cert *cert, struct kura_error *err)
{
	struct kura_pool *pool = kura_pool_new(0);
	uint64_t *ids = NULL;
	size_t n = 0;
	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "shred");
	enum kura_err rc = handle_key(svc, b->key_id, true, cert, err);
	if (rc == KURA_OK)
		rc = kura_meta_bucket_key_ids(svc->meta, b->id, pool, &ids, &n,
					      err);
	for (size_t i = 0; rc == KURA_OK && i < n; i++)
		if (ids[i] != b->key_id)
			rc = handle_key(svc, ids[i], false, cert, err);
	kura_pool_free(pool);
	return rc;
}

/* Record in the certificate every copy of the blob that was there before
 * the removal: one per recorded replica not already deleted, or the local
 * backend's for a blob written before placement (no rows). */
static enum kura_err certify_copies(struct kura_service *svc,
				    const struct blob_entry *e,
				    const struct kura_replica *rows, size_t n,
				    struct kura_cert *cert,
				    struct kura_error *err)
{
	int64_t now = kura_now_ms();
	size_t listed = 0;
	for (size_t i = 0; i < n; i++) {
		const struct kura_replica *r = &rows[i];
		if (r->state == KURA_REPLICA_DELETED)
			continue;
		int b = kura_placement_backend_index(svc->placement,
						     r->backend);
		/* Only what was removed: a copy on a backend no longer
		 * configured was not, and is not certified as removed. */
		if (b < 0) {
			kura_warn(NULL,
				  "shred: a copy on backend '%s' (not "
				  "configured) was not removed and is not in "
				  "the certificate",
				  r->backend);
			listed++;
			continue;
		}
		const struct kura_backend_desc *d =
			kura_placement_backend(svc->placement, (size_t)b);
		struct kura_cert_place at = {
			r->type, d->location, r->backend,
			r->site, r->region,   r->jurisdiction,
		};
		enum kura_err rc = kura_cert_add_replica(cert, &at, e->id,
							 r->bytes, now, err);
		if (rc != KURA_OK)
			return rc;
		listed++;
	}
	if (listed > 0)
		return KURA_OK;
	const struct kura_backend_desc *d =
		kura_placement_backend(svc->placement, 0); /* "local" */
	struct kura_cert_place at = { d->type, d->location, d->name,
				      d->site, d->region,   d->jurisdiction };
	return kura_cert_add_replica(cert, &at, e->id, e->size, now, err);
}

/* Remove the blobs from every backend, recording each copy in the
 * certificate, then forget them in the gc queue. */
static enum kura_err remove_blobs(struct kura_service *svc,
				  const struct blob_list *blobs,
				  struct kura_cert *cert,
				  struct kura_error *err)
{
	uint8_t done[GC_BATCH][KURA_BLOB_ID_LEN];
	struct kura_replica rows[KURA_BACKENDS_MAX];
	size_t nd = 0;
	for (size_t i = 0; i < blobs->n; i++) {
		const struct blob_entry *e = &blobs->v[i];
		size_t n = 0;
		enum kura_err rc = kura_meta_replica_list(
			svc->meta, e->id, rows, KURA_BACKENDS_MAX, &n, err);
		if (rc == KURA_OK)
			rc = kura_store_remove(svc->store, e->id, err);
		if (rc == KURA_OK)
			rc = certify_copies(svc, e, rows, n, cert, err);
		if (rc != KURA_OK)
			return rc;
		memcpy(done[nd++], e->id, KURA_BLOB_ID_LEN);
		if (nd == GC_BATCH || i + 1 == blobs->n) {
			rc = kura_meta_gc_done(
				svc->meta,
				(const uint8_t(*)[KURA_BLOB_ID_LEN])done, nd,
				err);
			if (rc != KURA_OK)
				return rc;
			nd = 0;
		}
	}
	return KURA_OK;
}

enum kura_err kura_service_shred(struct kura_service *svc, const char *bucket,
				 char *cert_path, size_t cap,
				 struct kura_error *err)
{
	struct kura_meta *meta = svc->meta;
	struct kura_bucket b;
	struct kura_tenant t;
	struct kura_cert *cert = NULL;
	struct blob_list blobs = { 0 };
	int64_t started = kura_now_ms();
	char dir[4200], stamp[KURA_TIME_AMZ_LEN];

	enum kura_err rc = kura_meta_bucket_get(meta, bucket, &b, err);
	if (rc == KURA_OK)
		rc = kura_meta_tenant_get(meta, b.tenant_id, &t, err);
	if (rc == KURA_OK)
		rc = kura_cert_new(&b, &t, started, &cert, err);
	if (rc == KURA_OK)
		rc = add_objects(svc, &b, cert, err);
	if (rc == KURA_OK)
		rc = kura_meta_bucket_blobs(meta, b.id, collect_blob, &blobs,
					    err);
	if (rc != KURA_OK)
		goto out;
	kura_info(NULL, "shred '%s': %zu blobs; destroying its key", bucket,
		  blobs.n);
	if ((rc = handle_keys(svc, &b, cert, err)) != KURA_OK)
		goto out;
	if ((rc = kura_meta_bucket_purge(meta, b.id, err)) != KURA_OK)
		goto out;
	if ((rc = remove_blobs(svc, &blobs, cert, err)) != KURA_OK)
		goto out;

	snprintf(dir, sizeof(dir), "%s/certificates", svc->data_dir);
	kura_time_amz(kura_now_ms(), stamp);
	if ((rc = kura_mkdirs(dir, 0700, err)) != KURA_OK)
		goto out;
	if (snprintf(cert_path, cap, "%s/deletion-%s-%s.json", dir, bucket,
		     stamp) >= (int)cap) {
		rc = kura_fail(err, KURA_EINVAL, "certificate path too long");
		goto out;
	}
	rc = kura_cert_sign_and_write(cert, svc->kms, svc->system_key,
				      kura_now_ms(), cert_path, err);
	if (rc == KURA_OK)
		kura_info(NULL, "shred '%s': done, certificate '%s'", bucket,
			  cert_path);
out:
	free(blobs.v);
	kura_cert_free(cert);
	return rc;
}

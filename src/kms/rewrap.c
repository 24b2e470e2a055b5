/*
 * rewrap.c — background re-wrapping after a rotation (kms.h
 * kura_kms_rewrap_step): the DEKs under a retired bucket key move to the
 * current bucket key of the same (bucket, key), the rows it sealed are
 * sealed again (seal.c), and a drained retired bucket key is deleted after
 * the grace period, its KEK version destroyed when nothing uses it.
 *
 * Crash-safe in any order: each batch of DEKs moves in one metadata
 * transaction, only where a part still names the old bucket key, so a
 * crash repeats at most one batch; a bucket key is deleted only when
 * nothing references it any more (the metadata store checks).
 *
 * Threading: called from the daemon's background work; everything it uses
 * is thread-safe.
 */
#include <string.h>

#include "kura/crypt.h"
#include "kura/kms.h"
#include "kura/log.h"
#include "kura/seal.h"
#include "kura/timefmt.h"
#include "kms_int.h"
#include "kura/banned.h"

#define REWRAP_BUCKET_KEYS 16

/* Move up to limit DEKs from retired bucket key old to the current one of
 * its (bucket, key).  *moved receives how many moved. */
static enum kura_err rewrap_one(struct kura_kms *kms,
				const struct kura_bucket_key *old, size_t limit,
				size_t *moved, struct kura_error *err)
{
	struct kura_meta *meta = kms->meta;
	struct kura_bucket_key cur;
	struct kura_secret *ko = NULL, *kn = NULL;
	struct kura_pool *pool = NULL;
	struct kura_rewrap *es = NULL;
	size_t n = 0;
	*moved = 0;
	enum kura_err rc = kura_meta_bucket_key_current(meta, old->bucket_id,
							old->key_id, &cur, err);
	if (rc != KURA_OK)
		return rc;
	if ((pool = kura_pool_new(0)) == NULL)
		return kura_fail(err, KURA_ENOMEM, "rewrap");
	rc = kms_open_bucket_key(kms, old, &ko, err);
	if (rc == KURA_OK)
		rc = kms_open_bucket_key(kms, &cur, &kn, err);
	if (rc == KURA_OK)
		rc = kura_meta_rewrap_next(meta, old->id, limit, pool, &es, &n,
					   err);
	for (size_t i = 0; rc == KURA_OK && i < n; i++) {
		struct kura_binding b = {
			es[i].tenant_id, es[i].bucket_id, { 0 }, es[i].part_no
		};
		struct kura_secret *dek = NULL;
		memcpy(b.version_uid, es[i].version_uid, KURA_UID_LEN);
		rc = kura_dek_unwrap(ko, &b, es[i].dek_wrapped, &dek, err);
		if (rc == KURA_OK)
			rc = kura_dek_wrap(kn, &b, dek, es[i].dek_wrapped, err);
		kura_secret_free(dek);
	}
	if (rc == KURA_OK && n > 0)
		rc = kura_meta_rewrap_apply(meta, old->id, cur.id, es, n, err);
	if (rc == KURA_OK)
		*moved = n;
	kura_secret_free(ko);
	kura_secret_free(kn);
	kura_pool_free(pool);
	return rc;
}

/* A drained retired bucket key: delete it (after the grace period) and
 * destroy its KEK version when nothing else uses that version. */
static void retire_drained(struct kura_kms *kms,
			   const struct kura_bucket_key *old)
{
	struct kura_meta *meta = kms->meta;
	struct kura_error err = { 0 };
	if (kura_now_ms() - old->retired_ms < kms->retired_grace_ms)
		return;
	enum kura_err rc = kura_meta_bucket_key_delete(meta, old->id, &err);
	if (rc == KURA_EBUSY)
		return; /* a part arrived meanwhile: next round */
	if (rc != KURA_OK) {
		kura_warn(NULL, "rewrap: delete bucket key %llu: %s",
			  (unsigned long long)old->id, err.msg);
		return;
	}
	bool in_use = true;
	rc = kura_meta_key_version_in_use(meta, old->key_id, old->key_version,
					  &in_use, &err);
	if (rc != KURA_OK || in_use)
		return;
	struct kura_key_version v = { .key_id = old->key_id,
				      .version = old->key_version };
	memcpy(v.kek_id, old->kek_id, KURA_KEK_ID_MAX);
	if (kms_destroy_version(kms, old->key_id, &v, &err) != KURA_OK)
		kura_warn(NULL, "rewrap: destroy version %u of key %llu: %s",
			  old->key_version, (unsigned long long)old->key_id,
			  err.msg);
	else
		kura_info(
			NULL,
			"key %llu: version %u no longer used, its KEK destroyed",
			(unsigned long long)old->key_id, old->key_version);
}

enum kura_err kura_kms_rewrap_step(struct kura_kms *kms, size_t limit,
				   size_t *done, struct kura_error *err)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket_key *olds = NULL;
	size_t n = 0, total = 0;
	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "rewrap");
	enum kura_err rc = kura_meta_bucket_keys_retired(
		kms->meta, REWRAP_BUCKET_KEYS, pool, &olds, &n, err);
	for (size_t i = 0; rc == KURA_OK && i < n && total < limit; i++) {
		size_t moved = 0;
		struct kura_error e = { 0 };
		/* A disabled key, or one whose bucket went, is skipped: its
		 * DEKs move when it is usable again. */
		if (rewrap_one(kms, &olds[i], limit - total, &moved, &e) !=
		    KURA_OK) {
			kura_debug(NULL, "rewrap: bucket key %llu skipped: %s",
				   (unsigned long long)olds[i].id, e.msg);
			continue;
		}
		total += moved;
		/* Rows sealed by it (if it is a key of the bucket's own kura
		 * key) move to the current one as well. */
		size_t resealed = 0;
		if (total < limit &&
		    kura_seal_rotate(kms, kms->meta, olds[i].bucket_id,
				     olds[i].id, limit - total, &resealed,
				     &e) != KURA_OK) {
			kura_debug(NULL, "re-seal: bucket key %llu skipped: %s",
				   (unsigned long long)olds[i].id, e.msg);
			continue;
		}
		total += resealed;
		if (moved == 0 && resealed == 0)
			retire_drained(kms, &olds[i]);
	}
	kura_pool_free(pool);
	if (done)
		*done = total;
	return rc;
}

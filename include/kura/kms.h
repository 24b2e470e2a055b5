/*
 * kms.h — kura's key management: tenants' keys with versions and states on
 * top of the key provider, the bucket keys that keep the provider off the
 * per-object path, rotation with background re-wrapping, disable/enable,
 * destruction (crypto-shredding), bring-your-own-key, and the signing key
 * of deletion certificates.
 *
 * Hierarchy (docs/FORMAT.md §2, docs/KEYS.md):
 *   kura key (tenant-owned, named)  →  versions, each one KEK in the provider
 *   KEK (current version)           wraps  bucket key (one per bucket and key)
 *   bucket key (cached, locked)     wraps  each blob's DEK
 * Every bucket has its own key "bucket/NAME" (or, with [keys] kek_scope =
 * tenant, all of a tenant's buckets share "tenant/default"); SSE-KMS
 * requests name another key of the tenant.
 *
 * Cross-process changes: lifecycle commands run in the `kura` CLI while a
 * server runs.  The metadata store's key generation moves with every change;
 * kura_kms_watch() polls it (every second) and drops every cached bucket
 * key when it moved, and every data-path call re-reads the key's state, so
 * a disabled or destroyed key stops serving at once.
 *
 * Thread-safe.
 */
#ifndef KURA_KMS_H
#define KURA_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/keys.h"
#include "kura/meta.h"
#include "kura/secret.h"

#define KURA_BUCKET_KEY_PREFIX "bucket/"
#define KURA_TENANT_KEY_NAME "tenant/default"

struct kura_kms;

/* A kms over meta and keys ([keys] bucket_key_ttl, kek_scope from cfg). */
enum kura_err kura_kms_new(struct kura_meta *meta, struct kura_keys *keys,
			   const struct kura_config *cfg, struct kura_kms **out,
			   struct kura_error *err);

/* Start the watcher thread (servers only: CLI commands do not cache). */
enum kura_err kura_kms_watch(struct kura_kms *kms, struct kura_error *err);

/* Stop the watcher, wipe the cache, free.  NULL is a no-op. */
void kura_kms_free(struct kura_kms *kms);

/* Is name acceptable for a named key (1..256 of A-Z a-z 0-9 - _ . / :, not
 * starting with "bucket/" or "tenant/", which kura reserves)? */
bool kura_kms_name_valid(const char *name);

/* ---- the data path ---- */

/*
 * The bucket key that wraps new DEKs for bucket b under kura key key_id
 * (0: the bucket's own key b->key_id).  Created (a random key wrapped by
 * the key's current KEK) on first use of the pair.  *bk_id receives its id
 * (recorded with every part), *key a copy to free.  KURA_EKEY_DISABLED /
 * KURA_EKEY_DESTROYED when the key is disabled / destroyed, KURA_EKEY when
 * the provider cannot be reached; KURA_ENOENT for an unknown key_id.
 */
enum kura_err kura_kms_write_key(struct kura_kms *kms,
				 const struct kura_bucket *b, uint64_t key_id,
				 uint64_t *bk_id, struct kura_secret **key,
				 struct kura_error *err);

/* The bucket key bk_id, to unwrap a DEK.  Errors as above;
 * KURA_EKEY_DESTROYED also when the bucket key went with its key. */
enum kura_err kura_kms_read_key(struct kura_kms *kms, uint64_t bk_id,
				struct kura_secret **key,
				struct kura_error *err);

/* ---- buckets ---- */

/*
 * Create bucket b (id, tenant, name, region, created set by the caller)
 * with its key — its own new key "bucket/NAME", or the tenant's shared key
 * when [keys] kek_scope = tenant — and its first bucket key.  Undoes the
 * provider's KEK on failure.  KURA_EEXIST when the name is taken.
 */
enum kura_err kura_kms_bucket_create(struct kura_kms *kms,
				     struct kura_bucket *b,
				     struct kura_error *err);

/* ---- lifecycle ---- */

/* Create a named key for a tenant: a new KEK in the provider. */
enum kura_err kura_kms_key_create(struct kura_kms *kms, uint64_t tenant_id,
				  const char *name, struct kura_key *out,
				  struct kura_error *err);

/* Bring your own key: material (32 bytes) becomes version 1 of a new named
 * key, inside the provider (KURA_EINVAL if the provider cannot import). */
enum kura_err kura_kms_key_import(struct kura_kms *kms, uint64_t tenant_id,
				  const char *name,
				  const struct kura_secret *material,
				  struct kura_key *out, struct kura_error *err);

/*
 * Rotate: a new KEK version in the provider and, for every bucket using the
 * key, a new bucket key under it.  New data uses the new bucket keys at
 * once; kura_kms_rewrap_step moves existing DEKs over in the background;
 * when a retired bucket key no longer wraps anything it is deleted, and
 * when no bucket key uses an old KEK version any more that KEK is
 * destroyed.  Data is never re-encrypted.  *version receives the new
 * version number.
 */
enum kura_err kura_kms_key_rotate(struct kura_kms *kms, uint64_t key_id,
				  uint32_t *version, struct kura_error *err);

/* Disable or enable (reads and writes fail while disabled). */
enum kura_err kura_kms_key_set_state(struct kura_kms *kms, uint64_t key_id,
				     enum kura_key_state state,
				     struct kura_error *err);

/* What a destruction did, for the deletion certificate. */
struct kura_kms_destroyed {
	size_t count;
	struct {
		uint32_t version;
		char kek_id[KURA_KEK_ID_MAX];
		int64_t destroyed_ms;
	} versions[64];
};

/* Destroy every KEK version of the key in the provider, then record the key
 * destroyed and delete its bucket keys: every DEK under it becomes
 * unrecoverable.  Idempotent.  report may be NULL. */
enum kura_err kura_kms_key_destroy(struct kura_kms *kms, uint64_t key_id,
				   struct kura_kms_destroyed *report,
				   struct kura_error *err);

/*
 * Background work after rotations: re-wrap up to limit DEKs from retired
 * bucket keys to the current ones, delete drained retired bucket keys that
 * were retired longer ago than [keys] rotation_grace (so uploads that
 * started before the rotation can still commit), destroy KEK versions
 * nothing uses any more.
 * *done receives the number of DEKs re-wrapped.
 */
enum kura_err kura_kms_rewrap_step(struct kura_kms *kms, size_t limit,
				   size_t *done, struct kura_error *err);

/* ---- signing (deletion certificates) ---- */

#define KURA_SIG_ALG_MAX 32

/*
 * Sign the SHA-256 digest of a document with kura's signing key: held by
 * the key provider when it can sign (created on first use), otherwise an
 * ECDSA P-256 key kept sealed under the system key in the metadata store.
 * alg receives "ECDSA-P256-SHA256" or "RSA-PSS-SHA256"; pub the signer's DER
 * SubjectPublicKeyInfo.
 */
enum kura_err
kura_kms_sign(struct kura_kms *kms, const struct kura_secret *system_key,
	      const uint8_t digest[32], uint8_t sig[KURA_SIGNATURE_MAX],
	      size_t *sig_len, char alg[KURA_SIG_ALG_MAX],
	      uint8_t pub[KURA_PUBKEY_MAX], size_t *pub_len,
	      char signer_id[KURA_KEK_ID_MAX], struct kura_error *err);

/* The signer's public key (DER SPKI), creating the signer if needed. */
enum kura_err kura_kms_signer_public_key(struct kura_kms *kms,
					 const struct kura_secret *system_key,
					 uint8_t pub[KURA_PUBKEY_MAX],
					 size_t *pub_len,
					 struct kura_error *err);

#endif

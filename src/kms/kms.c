/*
 * kms.c — kura keys: the data path (bucket keys for writing and reading),
 * bucket creation, and the lifecycle (create, import, rotate, disable,
 * enable, destroy); the background re-wrapping after a rotation is
 * rewrap.c's.  See kms.h.
 *
 * Invariants:
 *  - The provider is asked to destroy a KEK before metadata says it is
 *    destroyed, so a crash in between leaves a key that still looks alive
 *    but cannot unwrap — never the reverse.
 *  - Every data-path call reads the bucket key's row with its key's state,
 *    so a disabled or destroyed key refuses at once even when its bucket
 *    key is still cached; the watcher clears the cache when another process
 *    changed any key.
 *  - A bucket key is created only under its key's current version (the
 *    metadata store checks it), so rotation never misses one.
 *
 * Threading: the metadata store, the provider and the cache are
 * thread-safe; this file adds only the watcher thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kura/box.h"
#include "kura/crypt.h"
#include "kura/kms.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "kms_int.h"
#include "kura/banned.h"

#define WATCH_INTERVAL_MS 1000
#define RETRIES 4

enum kura_err kura_kms_new(struct kura_meta *meta, struct kura_keys *keys,
			   const struct kura_config *cfg, struct kura_kms **out,
			   struct kura_error *err)
{
	const char *scope = kura_config_get(cfg, "keys", "kek_scope");
	if (strcmp(scope, "bucket") != 0 && strcmp(scope, "tenant") != 0)
		return kura_fail(
			err, KURA_ECONFIG,
			"[keys] kek_scope must be bucket or tenant, not '%s'",
			scope);
	struct kura_kms *kms = calloc(1, sizeof(*kms));
	if (kms == NULL)
		return kura_fail(err, KURA_ENOMEM, "kms");
	kms->meta = meta;
	kms->keys = keys;
	kms->tenant_scope = strcmp(scope, "tenant") == 0;
	kms->retired_grace_ms =
		(int64_t)kura_config_get_u64(cfg, "keys", "rotation_grace") *
		1000;
	pthread_mutex_init(&kms->lock, NULL);
	pthread_cond_init(&kms->wake, NULL);
	pthread_mutex_init(&kms->signer_lock, NULL);
	uint64_t ttl = kura_config_get_u64(cfg, "keys", "bucket_key_ttl");
	enum kura_err rc =
		kura_keycache_new(keys, ttl * 1000, &kms->cache, err);
	if (rc != KURA_OK) {
		kura_kms_free(kms);
		return rc;
	}
	*out = kms;
	return KURA_OK;
}

static void *watcher_main(void *arg)
{
	struct kura_kms *kms = arg;
	pthread_mutex_lock(&kms->lock);
	while (!kms->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WATCH_INTERVAL_MS / 1000;
		pthread_cond_timedwait(&kms->wake, &kms->lock, &ts);
		if (kms->stopping)
			break;
		pthread_mutex_unlock(&kms->lock);
		kms_check_generation(kms);
		pthread_mutex_lock(&kms->lock);
	}
	pthread_mutex_unlock(&kms->lock);
	return NULL;
}

void kms_check_generation(struct kura_kms *kms)
{
	uint64_t gen = 0;
	struct kura_error err = { 0 };
	if (kura_meta_key_generation(kms->meta, &gen, &err) != KURA_OK) {
		kura_warn(NULL, "key watcher: %s", err.msg);
		return;
	}
	pthread_mutex_lock(&kms->lock);
	bool moved = gen != kms->generation;
	kms->generation = gen;
	pthread_mutex_unlock(&kms->lock);
	if (moved)
		kura_keycache_clear(kms->cache);
}

enum kura_err kura_kms_watch(struct kura_kms *kms, struct kura_error *err)
{
	kms_check_generation(kms);
	int e = pthread_create(&kms->watcher, NULL, watcher_main, kms);
	if (e != 0)
		return kura_fail_errno(err, KURA_ENOMEM, e,
				       "key watcher thread");
	kms->watching = true;
	return KURA_OK;
}

void kura_kms_free(struct kura_kms *kms)
{
	if (kms == NULL)
		return;
	if (kms->watching) {
		pthread_mutex_lock(&kms->lock);
		kms->stopping = true;
		pthread_cond_signal(&kms->wake);
		pthread_mutex_unlock(&kms->lock);
		pthread_join(kms->watcher, NULL);
	}
	kura_keycache_free(kms->cache);
	pthread_cond_destroy(&kms->wake);
	pthread_mutex_destroy(&kms->lock);
	pthread_mutex_destroy(&kms->signer_lock);
	free(kms);
}

bool kura_kms_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= KURA_KEY_NAME_MAX)
		return false;
	if (strncmp(name, KURA_BUCKET_KEY_PREFIX,
		    strlen(KURA_BUCKET_KEY_PREFIX)) == 0 ||
	    strncmp(name, "tenant/", 7) == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == '/' || c == ':'))
			return false;
	}
	return true;
}

/* ---- the data path ---- */

static enum kura_err state_error(const char *name_or_null, uint64_t key_id,
				 enum kura_key_state state,
				 struct kura_error *err)
{
	char who[KURA_KEY_NAME_MAX + 32];
	if (name_or_null)
		snprintf(who, sizeof(who), "key '%s'", name_or_null);
	else
		snprintf(who, sizeof(who), "key %llu",
			 (unsigned long long)key_id);
	if (state == KURA_KEY_DISABLED)
		return kura_fail(err, KURA_EKEY_DISABLED, "%s is disabled",
				 who);
	return kura_fail(err, KURA_EKEY_DESTROYED, "%s is destroyed", who);
}

enum kura_err kms_open_bucket_key(struct kura_kms *kms,
				  const struct kura_bucket_key *bk,
				  struct kura_secret **key,
				  struct kura_error *err)
{
	if (bk->key_state != KURA_KEY_ENABLED)
		return state_error(NULL, bk->key_id, bk->key_state, err);
	if (bk->version_state == KURA_KEYVER_DESTROYED)
		return kura_fail(err, KURA_EKEY_DESTROYED,
				 "version %u of key %llu is destroyed",
				 bk->key_version,
				 (unsigned long long)bk->key_id);
	enum kura_err rc = kura_keycache_get(kms->cache, bk->id, bk->tenant_id,
					     bk->bucket_id, bk->kek_id,
					     bk->wrapped, bk->wrapped_len, key,
					     err);
	/* Metadata says the key is alive but the provider has no such KEK:
	 * it was destroyed outside kura (e.g. by the HSM's or key manager's
	 * own administrators).  For the data that is the same as destroyed. */
	if (rc == KURA_ENOENT)
		return kura_fail(
			err, KURA_EKEY_DESTROYED,
			"KEK '%s' no longer exists in the key provider",
			bk->kek_id);
	return rc;
}

/* The KEK id of a key's current version. */
enum kura_err kms_current_kek(struct kura_kms *kms, const struct kura_key *k,
			      char kek_id[KURA_KEK_ID_MAX],
			      struct kura_error *err)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key_version *vs = NULL;
	size_t n = 0;
	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "key versions");
	enum kura_err rc =
		kura_meta_key_versions(kms->meta, k->id, pool, &vs, &n, err);
	if (rc == KURA_OK) {
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "key '%s' has no version %u", k->name,
			       k->current_version);
		for (size_t i = 0; i < n; i++) {
			if (vs[i].version == k->current_version) {
				memcpy(kek_id, vs[i].kek_id, KURA_KEK_ID_MAX);
				kura_error_clear(err);
				rc = KURA_OK;
				break;
			}
		}
	}
	kura_pool_free(pool);
	return rc;
}

enum kura_err kms_new_bucket_key(struct kura_kms *kms, uint64_t tenant_id,
				 uint64_t bucket_id, const char *kek_id,
				 struct kura_bucket_key *bk,
				 struct kura_secret **key,
				 struct kura_error *err)
{
	uint8_t aad[KURA_BUCKET_KEY_AAD_LEN];
	struct kura_secret *k = NULL;
	kura_bucket_key_aad(tenant_id, bucket_id, aad);
	enum kura_err rc = kura_secret_random(KURA_AES256_KEY_LEN, &k, err);
	if (rc == KURA_OK)
		rc = kura_keys_wrap(kms->keys, kek_id, k, aad, sizeof(aad),
				    bk->wrapped, &bk->wrapped_len, err);
	if (rc != KURA_OK) {
		kura_secret_free(k);
		return rc;
	}
	bk->bucket_id = bucket_id;
	bk->tenant_id = tenant_id;
	bk->current = true;
	bk->created_ms = kura_now_ms();
	if (key)
		*key = k;
	else
		kura_secret_free(k);
	return KURA_OK;
}

/* Create the first bucket key of (b, key_id).  *bk_id / *key on success;
 * KURA_EEXIST or KURA_ESTATE when a concurrent change means "look again". */
static enum kura_err create_bucket_key(struct kura_kms *kms,
				       const struct kura_bucket *b,
				       uint64_t key_id, uint64_t *bk_id,
				       struct kura_secret **key,
				       struct kura_error *err)
{
	struct kura_key k;
	char kek_id[KURA_KEK_ID_MAX];
	struct kura_bucket_key bk = { 0 };
	struct kura_secret *secret = NULL;
	enum kura_err rc = kura_meta_key_get(kms->meta, key_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	if (k.tenant_id != b->tenant_id)
		return kura_fail(err, KURA_EPERM,
				 "key '%s' belongs to another tenant", k.name);
	if (k.state != KURA_KEY_ENABLED)
		return state_error(k.name, k.id, k.state, err);
	rc = kms_current_kek(kms, &k, kek_id, err);
	if (rc == KURA_OK)
		rc = kms_new_bucket_key(kms, b->tenant_id, b->id, kek_id, &bk,
					&secret, err);
	if (rc != KURA_OK)
		return rc;
	bk.key_id = key_id;
	bk.key_version = k.current_version;
	rc = kura_meta_bucket_key_insert(kms->meta, &bk, err);
	if (rc != KURA_OK) {
		kura_secret_free(secret);
		return rc;
	}
	*bk_id = bk.id;
	*key = secret;
	return KURA_OK;
}

enum kura_err kura_kms_write_key(struct kura_kms *kms,
				 const struct kura_bucket *b, uint64_t key_id,
				 uint64_t *bk_id, struct kura_secret **key,
				 struct kura_error *err)
{
	struct kura_meta *meta = kms->meta;
	if (key_id == 0)
		key_id = b->key_id;
	for (int attempt = 0; attempt < RETRIES; attempt++) {
		struct kura_bucket_key bk;
		struct kura_error e = { 0 };
		enum kura_err rc = kura_meta_bucket_key_current(
			meta, b->id, key_id, &bk, &e);
		if (rc == KURA_OK) {
			rc = kms_open_bucket_key(kms, &bk, key, err);
			if (rc == KURA_OK)
				*bk_id = bk.id;
			return rc;
		}
		if (rc != KURA_ENOENT)
			return kura_fail(err, rc, "%s", e.msg);
		kura_error_clear(&e);
		rc = create_bucket_key(kms, b, key_id, bk_id, key, &e);
		if (rc == KURA_OK)
			return KURA_OK;
		/* Lost a race with another writer or a rotation: look again. */
		if (rc != KURA_EEXIST && rc != KURA_ESTATE)
			return kura_fail(err, rc, "%s", e.msg);
	}
	return kura_fail(err, KURA_EBUSY,
			 "bucket key of bucket '%s' keeps changing", b->name);
}

enum kura_err kura_kms_read_key(struct kura_kms *kms, uint64_t bk_id,
				struct kura_secret **key,
				struct kura_error *err)
{
	struct kura_bucket_key bk;
	struct kura_error e = { 0 };
	enum kura_err rc = kura_meta_bucket_key_get(kms->meta, bk_id, &bk, &e);
	if (rc == KURA_ENOENT)
		return kura_fail(
			err, KURA_EKEY_DESTROYED,
			"bucket key %llu no longer exists (its key was destroyed)",
			(unsigned long long)bk_id);
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", e.msg);
	return kms_open_bucket_key(kms, &bk, key, err);
}

/* ---- buckets ---- */

/* The tenant's shared key, created on first use. */
static enum kura_err tenant_key(struct kura_kms *kms, uint64_t tenant_id,
				struct kura_key *out, struct kura_error *err)
{
	struct kura_meta *meta = kms->meta;
	for (int attempt = 0; attempt < RETRIES; attempt++) {
		struct kura_error e = { 0 };
		enum kura_err rc = kura_meta_key_get_by_name(
			meta, tenant_id, KURA_TENANT_KEY_NAME, out, &e);
		if (rc != KURA_ENOENT) {
			if (rc != KURA_OK)
				kura_fail(err, rc, "%s", e.msg);
			return rc;
		}
		kura_error_clear(&e);
		rc = kms_create_key(kms, tenant_id, KURA_TENANT_KEY_NAME,
				    KURA_KEY_TENANT, NULL, out, &e);
		if (rc != KURA_EEXIST) {
			if (rc != KURA_OK)
				kura_fail(err, rc, "%s", e.msg);
			return rc;
		}
	}
	return kura_fail(err, KURA_EBUSY, "tenant key keeps changing");
}

static enum kura_err bucket_with_tenant_key(struct kura_kms *kms,
					    struct kura_bucket *b,
					    struct kura_error *err)
{
	for (int attempt = 0; attempt < RETRIES; attempt++) {
		struct kura_key k;
		char kek_id[KURA_KEK_ID_MAX];
		struct kura_bucket_key bk = { 0 };
		struct kura_error e = { 0 };
		enum kura_err rc = tenant_key(kms, b->tenant_id, &k, &e);
		if (rc == KURA_OK && k.state != KURA_KEY_ENABLED)
			rc = state_error(k.name, k.id, k.state, &e);
		if (rc == KURA_OK)
			rc = kms_current_kek(kms, &k, kek_id, &e);
		if (rc == KURA_OK)
			rc = kms_new_bucket_key(kms, b->tenant_id, b->id,
						kek_id, &bk, NULL, &e);
		if (rc == KURA_OK) {
			b->key_id = k.id;
			bk.key_id = k.id;
			bk.key_version = k.current_version;
			rc = kura_meta_bucket_create(kms->meta, b, NULL, NULL,
						     &bk, &e);
		}
		if (rc != KURA_ESTATE) {
			if (rc != KURA_OK)
				kura_fail(err, rc, "%s", e.msg);
			return rc;
		}
	}
	return kura_fail(err, KURA_EBUSY, "tenant key keeps changing");
}

/* A live "bucket/NAME" key without its bucket is what a crash between a
 * bucket's deletion and its key's destruction leaves: finish the job. */
static enum kura_err destroy_orphan_key(struct kura_kms *kms,
					const struct kura_bucket *b,
					struct kura_error *err)
{
	struct kura_key k;
	char name[KURA_KEY_NAME_MAX];
	struct kura_error e = { 0 };
	snprintf(name, sizeof(name), "%s%s", KURA_BUCKET_KEY_PREFIX, b->name);
	enum kura_err rc = kura_meta_key_get_by_name(kms->meta, b->tenant_id,
						     name, &k, &e);
	if (rc == KURA_ENOENT)
		return KURA_OK;
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", e.msg);
	/* The key and its bucket are created in one transaction: if the
	 * bucket is visible now, the key is not an orphan but a concurrent
	 * CreateBucket's, and ours will fail with EEXIST. */
	struct kura_bucket b2;
	if (kura_meta_bucket_get(kms->meta, b->name, &b2, NULL) != KURA_ENOENT)
		return KURA_OK;
	kura_warn(NULL,
		  "destroying key '%s' left behind by an interrupted bucket "
		  "deletion",
		  name);
	return kura_kms_key_destroy(kms, k.id, NULL, err);
}

enum kura_err kura_kms_bucket_create(struct kura_kms *kms,
				     struct kura_bucket *b,
				     struct kura_error *err)
{
	if (kms->tenant_scope)
		return bucket_with_tenant_key(kms, b, err);
	enum kura_err orc = destroy_orphan_key(kms, b, err);
	if (orc != KURA_OK)
		return orc;

	struct kura_keys *keys = kms->keys;
	struct kura_key k = { 0 };
	struct kura_bucket_key bk = { 0 };
	char kek_id[KURA_KEK_ID_MAX], label[KURA_KEY_NAME_MAX + 16];
	snprintf(label, sizeof(label), "kura bucket %s", b->name);
	enum kura_err rc = kura_keys_kek_create(keys, label, kek_id, err);
	if (rc != KURA_OK)
		return rc;
	snprintf(k.name, sizeof(k.name), "%s%s", KURA_BUCKET_KEY_PREFIX,
		 b->name);
	k.tenant_id = b->tenant_id;
	k.kind = KURA_KEY_BUCKET;
	k.state = KURA_KEY_ENABLED;
	k.current_version = 1;
	snprintf(k.provider, sizeof(k.provider), "%s", keys->ops->name);
	k.created_ms = k.changed_ms = kura_now_ms();
	rc = kms_new_bucket_key(kms, b->tenant_id, b->id, kek_id, &bk, NULL,
				err);
	if (rc == KURA_OK) {
		bk.key_version = 1;
		rc = kura_meta_bucket_create(kms->meta, b, &k, kek_id, &bk,
					     err);
	}
	if (rc != KURA_OK)
		(void)kura_keys_kek_destroy(keys, kek_id, NULL);
	return rc;
}

/* ---- lifecycle ---- */

enum kura_err kms_create_key(struct kura_kms *kms, uint64_t tenant_id,
			     const char *name, enum kura_key_kind kind,
			     const struct kura_secret *material,
			     struct kura_key *out, struct kura_error *err)
{
	struct kura_keys *keys = kms->keys;
	struct kura_key k = { 0 };
	char kek_id[KURA_KEK_ID_MAX], label[KURA_KEY_NAME_MAX + 16];
	enum kura_err rc;
	snprintf(label, sizeof(label), "kura %s", name);
	if (material != NULL) {
		if (keys->ops->kek_import == NULL)
			return kura_fail(
				err, KURA_EINVAL,
				"the %s key provider cannot import keys",
				keys->ops->name);
		rc = kura_keys_kek_import(keys, label, material, kek_id, err);
	} else {
		rc = kura_keys_kek_create(keys, label, kek_id, err);
	}
	if (rc != KURA_OK)
		return rc;
	snprintf(k.name, sizeof(k.name), "%s", name);
	k.tenant_id = tenant_id;
	k.kind = kind;
	k.state = KURA_KEY_ENABLED;
	k.current_version = 1;
	k.imported = material != NULL;
	snprintf(k.provider, sizeof(k.provider), "%s", keys->ops->name);
	k.created_ms = k.changed_ms = kura_now_ms();
	rc = kura_meta_key_create(kms->meta, &k, kek_id, err);
	if (rc != KURA_OK) {
		(void)kura_keys_kek_destroy(keys, kek_id, NULL);
		return rc;
	}
	*out = k;
	return KURA_OK;
}

enum kura_err kura_kms_key_create(struct kura_kms *kms, uint64_t tenant_id,
				  const char *name, struct kura_key *out,
				  struct kura_error *err)
{
	if (!kura_kms_name_valid(name))
		return kura_fail(
			err, KURA_EINVAL,
			"key name '%s' must be 1-256 characters of A-Z a-z 0-9 "
			"- _ . / : and not start with bucket/ or tenant/",
			name);
	return kms_create_key(kms, tenant_id, name, KURA_KEY_NAMED, NULL, out,
			      err);
}

enum kura_err kura_kms_key_import(struct kura_kms *kms, uint64_t tenant_id,
				  const char *name,
				  const struct kura_secret *material,
				  struct kura_key *out, struct kura_error *err)
{
	if (!kura_kms_name_valid(name))
		return kura_fail(err, KURA_EINVAL, "key name '%s' is not valid",
				 name);
	if (material == NULL || material->len != KURA_AES256_KEY_LEN)
		return kura_fail(err, KURA_EINVAL,
				 "an imported key must be 32 bytes (AES-256)");
	return kms_create_key(kms, tenant_id, name, KURA_KEY_NAMED, material,
			      out, err);
}

enum kura_err kura_kms_key_rotate(struct kura_kms *kms, uint64_t key_id,
				  uint32_t *version, struct kura_error *err)
{
	struct kura_meta *meta = kms->meta;
	struct kura_keys *keys = kms->keys;
	struct kura_key k;
	char kek_id[KURA_KEK_ID_MAX], label[KURA_KEY_NAME_MAX + 32];
	enum kura_err rc = kura_meta_key_get(meta, key_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	if (k.state != KURA_KEY_ENABLED)
		return state_error(k.name, k.id, k.state, err);
	snprintf(label, sizeof(label), "kura %s v%u", k.name,
		 k.current_version + 1);
	rc = kura_keys_kek_create(keys, label, kek_id, err);
	if (rc != KURA_OK)
		return rc;
	for (int attempt = 0; attempt < RETRIES; attempt++) {
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_bucket_key *cur = NULL, *fresh = NULL;
		size_t n = 0;
		struct kura_error e = { 0 };
		if (pool == NULL) {
			rc = kura_fail(err, KURA_ENOMEM, "rotation");
			break;
		}
		rc = kura_meta_key_get(meta, key_id, &k, &e);
		if (rc == KURA_OK)
			rc = kura_meta_bucket_keys_of_key(meta, key_id, pool,
							  &cur, &n, &e);
		if (rc == KURA_OK && n > 0 &&
		    (fresh = kura_palloc(pool, n * sizeof(*fresh))) == NULL)
			rc = kura_fail(&e, KURA_ENOMEM, "rotation");
		for (size_t i = 0; rc == KURA_OK && i < n; i++) {
			rc = kms_new_bucket_key(kms, cur[i].tenant_id,
						cur[i].bucket_id, kek_id,
						&fresh[i], NULL, &e);
			fresh[i].key_id = key_id;
			fresh[i].key_version = k.current_version + 1;
		}
		if (rc == KURA_OK)
			rc = kura_meta_key_rotate(meta, key_id,
						  k.current_version, kek_id,
						  fresh, n, &e);
		kura_pool_free(pool);
		if (rc == KURA_OK) {
			*version = k.current_version + 1;
			kura_keycache_clear(kms->cache);
			kura_info(
				NULL,
				"key '%s' rotated to version %u; %zu bucket keys "
				"replaced, DEKs are re-wrapped in the background",
				k.name, *version, n);
			return KURA_OK;
		}
		if (rc != KURA_ESTATE) {
			kura_fail(err, rc, "%s", e.msg);
			break;
		}
	}
	if (rc == KURA_ESTATE)
		kura_fail(err, KURA_EBUSY,
			  "key '%s' keeps changing; rotate again", k.name);
	(void)kura_keys_kek_destroy(keys, kek_id, NULL);
	return rc == KURA_ESTATE ? KURA_EBUSY : rc;
}

enum kura_err kura_kms_key_set_state(struct kura_kms *kms, uint64_t key_id,
				     enum kura_key_state state,
				     struct kura_error *err)
{
	if (state != KURA_KEY_ENABLED && state != KURA_KEY_DISABLED)
		return kura_fail(err, KURA_EINVAL,
				 "use kura_kms_key_destroy to destroy");
	enum kura_err rc =
		kura_meta_key_set_state(kms->meta, key_id, state, err);
	kura_keycache_clear(kms->cache);
	return rc;
}

enum kura_err kms_destroy_version(struct kura_kms *kms, uint64_t key_id,
				  const struct kura_key_version *v,
				  struct kura_error *err)
{
	struct kura_keys *keys = kms->keys;
	if (keys->ops->kek_destroy == NULL)
		return kura_fail(err, KURA_EINVAL,
				 "the %s key provider cannot destroy keys",
				 keys->ops->name);
	struct kura_error e = { 0 };
	enum kura_err rc = kura_keys_kek_destroy(keys, v->kek_id, &e);
	if (rc != KURA_OK && rc != KURA_ENOENT)
		return kura_fail(err, rc, "destroy KEK '%s': %s", v->kek_id,
				 e.msg);
	return kura_meta_key_version_destroyed(kms->meta, key_id, v->version,
					       err);
}

enum kura_err kura_kms_key_destroy(struct kura_kms *kms, uint64_t key_id,
				   struct kura_kms_destroyed *report,
				   struct kura_error *err)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key_version *vs = NULL;
	size_t n = 0;
	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "destroy");
	if (report)
		report->count = 0;
	/* Object Lock: destroying the key would destroy locked versions
	 * (a crypto-shred), whoever asks. */
	bool locked = false;
	enum kura_err rc =
		kura_meta_key_protects_locked(kms->meta, key_id, &locked, err);
	if (rc == KURA_OK && locked)
		rc = kura_fail(err, KURA_EPERM,
			       "the key protects versions under Object Lock");
	if (rc != KURA_OK) {
		kura_pool_free(pool);
		return rc;
	}
	/* Stop serving first: nothing cached survives the destruction. */
	kura_keycache_clear(kms->cache);
	rc = kura_meta_key_versions(kms->meta, key_id, pool, &vs, &n, err);
	for (size_t i = 0; rc == KURA_OK && i < n; i++) {
		if (vs[i].state != KURA_KEYVER_DESTROYED)
			rc = kms_destroy_version(kms, key_id, &vs[i], err);
		if (rc == KURA_OK && report &&
		    report->count < sizeof(report->versions) /
					    sizeof(report->versions[0])) {
			report->versions[report->count].version = vs[i].version;
			memcpy(report->versions[report->count].kek_id,
			       vs[i].kek_id, KURA_KEK_ID_MAX);
			report->versions[report->count].destroyed_ms =
				vs[i].state == KURA_KEYVER_DESTROYED ?
					vs[i].destroyed_ms :
					kura_now_ms();
			report->count++;
		}
	}
	if (rc == KURA_OK)
		rc = kura_meta_key_destroyed(kms->meta, key_id, err);
	kura_keycache_clear(kms->cache);
	kura_pool_free(pool);
	return rc;
}

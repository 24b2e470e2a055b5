/*
 * meta.c — the table of compiled-in metadata stores, the code that picks
 * one by [meta] driver and opens it (registry.h), and the calls through the
 * interface (meta.h): the one place a call can be hooked.
 *
 * The core owns the private state: priv_size zeroed bytes, handed to the
 * implementation's open and freed after its close.  A kura_meta is shared
 * by all threads; the implementations are thread-safe.
 */
#include <stdlib.h>

#include "kura/meta.h"
#include "kura/registry.h"
#include "kura/banned.h"

const struct kura_meta_ops *const kura_metas[] = {
	&kura_meta_sqlite,
	NULL,
};

static bool meta_entry(size_t i, struct kura_backend *out)
{
	const struct kura_meta_ops *o = kura_metas[i];
	if (o == NULL)
		return false;
	*out = (struct kura_backend){ o,       o->name, o->caps, o->priv_size,
				      o->open, o->close };
	return true;
}

static const struct kura_registry registry = {
	"metadata store", "meta", "driver", "sqlite", meta_entry,
};

enum kura_err kura_meta_check_config(const struct kura_config *cfg,
				     struct kura_error *err)
{
	struct kura_backend be;
	return kura_registry_find(&registry, cfg, &be, err);
}

enum kura_err kura_meta_open(const struct kura_config *cfg,
			     const char *data_dir, struct kura_meta **out,
			     struct kura_error *err)
{
	struct kura_backend be;
	struct kura_meta *meta = calloc(1, sizeof(*meta));
	if (meta == NULL)
		return kura_fail(err, KURA_ENOMEM, "metadata store");
	enum kura_err rc = kura_registry_open(&registry, cfg, data_dir, &be,
					      &meta->priv, err);
	if (rc != KURA_OK) {
		free(meta);
		return rc;
	}
	meta->ops = be.ops;
	*out = meta;
	return KURA_OK;
}

void kura_meta_close(struct kura_meta *meta)
{
	if (meta == NULL)
		return;
	kura_registry_close(meta->ops->close, meta->priv);
	free(meta);
}

enum kura_err kura_meta_set_row_key(struct kura_meta *meta,
				    const uint8_t key[KURA_ROW_KEY_LEN],
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "set_row_key", err);
	return meta->ops->set_row_key(meta->priv, key, err);
}

enum kura_err kura_meta_row_mac_upgrade(struct kura_meta *meta, size_t *rows,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "row_mac_upgrade", err);
	return meta->ops->row_mac_upgrade(meta->priv, rows, err);
}

enum kura_err kura_meta_setting_get(struct kura_meta *meta, const char *name,
				    uint8_t *val, size_t cap, size_t *len,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "setting_get", err);
	return meta->ops->setting_get(meta->priv, name, val, cap, len, err);
}

enum kura_err kura_meta_setting_insert(struct kura_meta *meta, const char *name,
				       const uint8_t *val, size_t len,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "setting_insert", err);
	return meta->ops->setting_insert(meta->priv, name, val, len, err);
}

enum kura_err kura_meta_setting_delete(struct kura_meta *meta, const char *name,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "setting_delete", err);
	return meta->ops->setting_delete(meta->priv, name, err);
}

enum kura_err kura_meta_setting_get_ms(struct kura_meta *meta, const char *name,
				       int64_t *ms, struct kura_error *err)
{
	uint8_t v[8];
	size_t n = 0;
	uint64_t t = 0;
	enum kura_err rc =
		kura_meta_setting_get(meta, name, v, sizeof(v), &n, err);
	if (rc != KURA_OK)
		return rc;
	if (n != sizeof(v))
		return kura_fail(err, KURA_EINTEGRITY,
				 "setting '%s': %zu bytes, not a time", name,
				 n);
	for (size_t i = 0; i < sizeof(v); i++)
		t = t << 8 | v[i];
	*ms = (int64_t)t;
	return KURA_OK;
}

enum kura_err kura_meta_setting_put_ms(struct kura_meta *meta, const char *name,
				       int64_t ms, struct kura_error *err)
{
	uint8_t v[8];
	for (size_t i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)((uint64_t)ms >> (56 - 8 * i));
	enum kura_err rc = kura_meta_setting_delete(meta, name, err);
	return rc != KURA_OK ?
		       rc :
		       kura_meta_setting_insert(meta, name, v, sizeof(v), err);
}

enum kura_err kura_meta_tenant_create(struct kura_meta *meta,
				      struct kura_tenant *t,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "tenant_create", err);
	return meta->ops->tenant_create(meta->priv, t, err);
}

enum kura_err kura_meta_tenant_get(struct kura_meta *meta, uint64_t id,
				   struct kura_tenant *out,
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "tenant_get", err);
	return meta->ops->tenant_get(meta->priv, id, out, err);
}

enum kura_err kura_meta_tenant_get_by_name(struct kura_meta *meta,
					   const char *name,
					   struct kura_tenant *out,
					   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "tenant_get_by_name", err);
	return meta->ops->tenant_get_by_name(meta->priv, name, out, err);
}

enum kura_err kura_meta_access_key_create(struct kura_meta *meta,
					  const struct kura_access_key *k,
					  struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "access_key_create", err);
	return meta->ops->access_key_create(meta->priv, k, err);
}

enum kura_err kura_meta_access_key_get(struct kura_meta *meta, const char *id,
				       struct kura_access_key *out,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "access_key_get", err);
	return meta->ops->access_key_get(meta->priv, id, out, err);
}

enum kura_err
kura_meta_bucket_create(struct kura_meta *meta, struct kura_bucket *b,
			struct kura_key *new_key, const char *new_kek_id,
			struct kura_bucket_key *bk, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_create", err);
	return meta->ops->bucket_create(meta->priv, b, new_key, new_kek_id, bk,
					err);
}

enum kura_err kura_meta_bucket_get(struct kura_meta *meta, const char *name,
				   struct kura_bucket *out,
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_get", err);
	return meta->ops->bucket_get(meta->priv, name, out, err);
}

enum kura_err kura_meta_bucket_list(struct kura_meta *meta, uint64_t tenant_id,
				    struct kura_pool *pool,
				    struct kura_bucket **out, size_t *count,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_list", err);
	return meta->ops->bucket_list(meta->priv, tenant_id, pool, out, count,
				      err);
}

enum kura_err kura_meta_bucket_delete(struct kura_meta *meta,
				      uint64_t bucket_id,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_delete", err);
	return meta->ops->bucket_delete(meta->priv, bucket_id, err);
}

enum kura_err kura_meta_bucket_set_encryption(struct kura_meta *meta,
					      uint64_t bucket_id,
					      enum kura_sse sse,
					      uint64_t kms_key_id,
					      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_set_encryption", err);
	return meta->ops->bucket_set_encryption(meta->priv, bucket_id, sse,
						kms_key_id, err);
}

enum kura_err kura_meta_bucket_set_versioning(struct kura_meta *meta,
					      uint64_t bucket_id,
					      enum kura_versioning state,
					      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_set_versioning", err);
	return meta->ops->bucket_set_versioning(meta->priv, bucket_id, state,
						err);
}

enum kura_err kura_meta_bucket_set_object_lock(struct kura_meta *meta,
					       const struct kura_bucket *b,
					       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_set_object_lock", err);
	return meta->ops->bucket_set_object_lock(meta->priv, b, err);
}

enum kura_err kura_meta_key_protects_locked(struct kura_meta *meta,
					    uint64_t key_id, bool *locked,
					    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_protects_locked", err);
	return meta->ops->key_protects_locked(meta->priv, key_id, locked, err);
}

enum kura_err kura_meta_bucket_set_lifecycle(struct kura_meta *meta,
					     uint64_t bucket_id,
					     const char *text,
					     struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_set_lifecycle", err);
	return meta->ops->bucket_set_lifecycle(meta->priv, bucket_id, text,
					       err);
}

enum kura_err kura_meta_bucket_get_lifecycle(struct kura_meta *meta,
					     uint64_t bucket_id, char **text,
					     struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_get_lifecycle", err);
	return meta->ops->bucket_get_lifecycle(meta->priv, bucket_id, text,
					       err);
}

enum kura_err kura_meta_bucket_purge(struct kura_meta *meta, uint64_t bucket_id,
				     struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_purge", err);
	return meta->ops->bucket_purge(meta->priv, bucket_id, err);
}

enum kura_err kura_meta_bucket_blobs(
	struct kura_meta *meta, uint64_t bucket_id,
	enum kura_err (*fn)(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN],
			    uint64_t size),
	void *ctx, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_blobs", err);
	return meta->ops->bucket_blobs(meta->priv, bucket_id, fn, ctx, err);
}

enum kura_err kura_meta_key_create(struct kura_meta *meta, struct kura_key *k,
				   const char *kek_id, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_create", err);
	return meta->ops->key_create(meta->priv, k, kek_id, err);
}

enum kura_err kura_meta_key_get(struct kura_meta *meta, uint64_t key_id,
				struct kura_key *out, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_get", err);
	return meta->ops->key_get(meta->priv, key_id, out, err);
}

enum kura_err kura_meta_key_get_by_name(struct kura_meta *meta,
					uint64_t tenant_id, const char *name,
					struct kura_key *out,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_get_by_name", err);
	return meta->ops->key_get_by_name(meta->priv, tenant_id, name, out,
					  err);
}

enum kura_err kura_meta_key_list(struct kura_meta *meta, uint64_t tenant_id,
				 struct kura_pool *pool, struct kura_key **out,
				 size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_list", err);
	return meta->ops->key_list(meta->priv, tenant_id, pool, out, count,
				   err);
}

enum kura_err kura_meta_key_versions(struct kura_meta *meta, uint64_t key_id,
				     struct kura_pool *pool,
				     struct kura_key_version **out,
				     size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_versions", err);
	return meta->ops->key_versions(meta->priv, key_id, pool, out, count,
				       err);
}

enum kura_err kura_meta_key_set_state(struct kura_meta *meta, uint64_t key_id,
				      enum kura_key_state state,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_set_state", err);
	return meta->ops->key_set_state(meta->priv, key_id, state, err);
}

enum kura_err kura_meta_key_rotate(struct kura_meta *meta, uint64_t key_id,
				   uint32_t expected_version,
				   const char *kek_id,
				   struct kura_bucket_key *new_bks, size_t n,
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_rotate", err);
	return meta->ops->key_rotate(meta->priv, key_id, expected_version,
				     kek_id, new_bks, n, err);
}

enum kura_err kura_meta_key_version_in_use(struct kura_meta *meta,
					   uint64_t key_id, uint32_t version,
					   bool *in_use, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_version_in_use", err);
	return meta->ops->key_version_in_use(meta->priv, key_id, version,
					     in_use, err);
}

enum kura_err kura_meta_key_version_destroyed(struct kura_meta *meta,
					      uint64_t key_id, uint32_t version,
					      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_version_destroyed", err);
	return meta->ops->key_version_destroyed(meta->priv, key_id, version,
						err);
}

enum kura_err kura_meta_key_destroyed(struct kura_meta *meta, uint64_t key_id,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_destroyed", err);
	return meta->ops->key_destroyed(meta->priv, key_id, err);
}

enum kura_err kura_meta_key_generation(struct kura_meta *meta, uint64_t *gen,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "key_generation", err);
	return meta->ops->key_generation(meta->priv, gen, err);
}

enum kura_err kura_meta_bucket_key_current(struct kura_meta *meta,
					   uint64_t bucket_id, uint64_t key_id,
					   struct kura_bucket_key *out,
					   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_key_current", err);
	return meta->ops->bucket_key_current(meta->priv, bucket_id, key_id, out,
					     err);
}

enum kura_err kura_meta_bucket_key_get(struct kura_meta *meta, uint64_t bk_id,
				       struct kura_bucket_key *out,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_key_get", err);
	return meta->ops->bucket_key_get(meta->priv, bk_id, out, err);
}

enum kura_err kura_meta_bucket_key_insert(struct kura_meta *meta,
					  struct kura_bucket_key *bk,
					  struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_key_insert", err);
	return meta->ops->bucket_key_insert(meta->priv, bk, err);
}

enum kura_err kura_meta_bucket_key_ids(struct kura_meta *meta,
				       uint64_t bucket_id,
				       struct kura_pool *pool, uint64_t **out,
				       size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_key_ids", err);
	return meta->ops->bucket_key_ids(meta->priv, bucket_id, pool, out,
					 count, err);
}

enum kura_err kura_meta_bucket_keys_of_key(
	struct kura_meta *meta, uint64_t key_id, struct kura_pool *pool,
	struct kura_bucket_key **out, size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_keys_of_key", err);
	return meta->ops->bucket_keys_of_key(meta->priv, key_id, pool, out,
					     count, err);
}

enum kura_err kura_meta_bucket_keys_retired(
	struct kura_meta *meta, size_t limit, struct kura_pool *pool,
	struct kura_bucket_key **out, size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_keys_retired", err);
	return meta->ops->bucket_keys_retired(meta->priv, limit, pool, out,
					      count, err);
}

enum kura_err kura_meta_rewrap_next(struct kura_meta *meta, uint64_t bk_id,
				    size_t limit, struct kura_pool *pool,
				    struct kura_rewrap **out, size_t *count,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "rewrap_next", err);
	return meta->ops->rewrap_next(meta->priv, bk_id, limit, pool, out,
				      count, err);
}

enum kura_err kura_meta_rewrap_apply(struct kura_meta *meta, uint64_t old_bk_id,
				     uint64_t new_bk_id,
				     const struct kura_rewrap *entries,
				     size_t count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "rewrap_apply", err);
	return meta->ops->rewrap_apply(meta->priv, old_bk_id, new_bk_id,
				       entries, count, err);
}

enum kura_err kura_meta_bucket_key_delete(struct kura_meta *meta,
					  uint64_t bk_id,
					  struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_key_delete", err);
	return meta->ops->bucket_key_delete(meta->priv, bk_id, err);
}

enum kura_err kura_meta_object_put(struct kura_meta *meta,
				   const struct kura_object *obj,
				   const struct kura_put_cond *cond,
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_put", err);
	return meta->ops->object_put(meta->priv, obj, cond, err);
}

enum kura_err kura_meta_object_get(struct kura_meta *meta, uint64_t bucket_id,
				   const char *key, size_t key_len,
				   struct kura_pool *pool,
				   struct kura_object **out,
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_get", err);
	return meta->ops->object_get(meta->priv, bucket_id, key, key_len, pool,
				     out, err);
}

enum kura_err
kura_meta_object_get_version(struct kura_meta *meta, uint64_t bucket_id,
			     const char *key, size_t key_len,
			     const uint8_t *version_uid, struct kura_pool *pool,
			     struct kura_object **out, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_get_version", err);
	return meta->ops->object_get_version(meta->priv, bucket_id, key,
					     key_len, version_uid, pool, out,
					     err);
}

enum kura_err kura_meta_object_delete(struct kura_meta *meta,
				      uint64_t bucket_id, const char *key,
				      size_t key_len,
				      const uint8_t *version_uid,
				      const struct kura_put_cond *cond,
				      bool bypass_governance,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_delete", err);
	return meta->ops->object_delete(meta->priv, bucket_id, key, key_len,
					version_uid, cond, bypass_governance,
					err);
}

enum kura_err kura_meta_object_set_lock(struct kura_meta *meta,
					const struct kura_object *o,
					const uint8_t *old_seal, size_t old_len,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_set_lock", err);
	return meta->ops->object_set_lock(meta->priv, o, old_seal, old_len,
					  err);
}

enum kura_err kura_meta_object_list_versions(
	struct kura_meta *meta, uint64_t bucket_id, const char *prefix,
	size_t prefix_len, const char *after, size_t after_len,
	uint64_t after_vseq, size_t limit, struct kura_pool *pool,
	struct kura_object **out, size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_list_versions", err);
	return meta->ops->object_list_versions(meta->priv, bucket_id, prefix,
					       prefix_len, after, after_len,
					       after_vseq, limit, pool, out,
					       count, err);
}

enum kura_err kura_meta_object_list(struct kura_meta *meta, uint64_t bucket_id,
				    const char *prefix, size_t prefix_len,
				    const char *after, size_t after_len,
				    size_t limit, struct kura_pool *pool,
				    struct kura_object **out, size_t *count,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_list", err);
	return meta->ops->object_list(meta->priv, bucket_id, prefix, prefix_len,
				      after, after_len, limit, pool, out, count,
				      err);
}

enum kura_err kura_meta_object_set_tags(
	struct kura_meta *meta, uint64_t bucket_id, const char *key,
	size_t key_len, const uint8_t version_uid[KURA_UID_LEN],
	const uint8_t *old_seal, size_t old_len, const char *tags_json,
	const uint8_t *seal, size_t seal_len, uint64_t seal_bk_id,
	struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "object_set_tags", err);
	return meta->ops->object_set_tags(meta->priv, bucket_id, key, key_len,
					  version_uid, old_seal, old_len,
					  tags_json, seal, seal_len, seal_bk_id,
					  err);
}

enum kura_err kura_meta_upload_create(struct kura_meta *meta,
				      const struct kura_upload *u,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_create", err);
	return meta->ops->upload_create(meta->priv, u, err);
}

enum kura_err kura_meta_upload_get(struct kura_meta *meta, uint64_t bucket_id,
				   const char *upload_id,
				   struct kura_pool *pool,
				   struct kura_upload **out,
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_get", err);
	return meta->ops->upload_get(meta->priv, bucket_id, upload_id, pool,
				     out, err);
}

enum kura_err kura_meta_upload_put_part(struct kura_meta *meta,
					uint64_t bucket_id,
					const char *upload_id,
					const struct kura_part *p,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_put_part", err);
	return meta->ops->upload_put_part(meta->priv, bucket_id, upload_id, p,
					  err);
}

enum kura_err kura_meta_upload_list_parts(struct kura_meta *meta,
					  uint64_t bucket_id,
					  const char *upload_id, uint32_t after,
					  size_t limit, struct kura_pool *pool,
					  struct kura_part **out, size_t *count,
					  struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_list_parts", err);
	return meta->ops->upload_list_parts(meta->priv, bucket_id, upload_id,
					    after, limit, pool, out, count,
					    err);
}

enum kura_err kura_meta_upload_complete(struct kura_meta *meta,
					const char *upload_id,
					const struct kura_object *obj,
					const struct kura_put_cond *cond,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_complete", err);
	return meta->ops->upload_complete(meta->priv, upload_id, obj, cond,
					  err);
}

enum kura_err kura_meta_upload_abort(struct kura_meta *meta, uint64_t bucket_id,
				     const char *upload_id,
				     struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_abort", err);
	return meta->ops->upload_abort(meta->priv, bucket_id, upload_id, err);
}

enum kura_err kura_meta_upload_list(struct kura_meta *meta, uint64_t bucket_id,
				    const char *prefix, size_t prefix_len,
				    const char *key_marker, size_t km_len,
				    const char *id_marker, size_t limit,
				    struct kura_pool *pool,
				    struct kura_upload **out, size_t *count,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_list", err);
	return meta->ops->upload_list(meta->priv, bucket_id, prefix, prefix_len,
				      key_marker, km_len, id_marker, limit,
				      pool, out, count, err);
}

enum kura_err kura_meta_upload_expired(struct kura_meta *meta,
				       int64_t before_ms, size_t limit,
				       struct kura_pool *pool,
				       struct kura_upload **out, size_t *count,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "upload_expired", err);
	return meta->ops->upload_expired(meta->priv, before_ms, limit, pool,
					 out, count, err);
}

enum kura_err kura_meta_bucket_get_id(struct kura_meta *meta, uint64_t id,
				      struct kura_bucket *out,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "bucket_get_id", err);
	return meta->ops->bucket_get_id(meta->priv, id, out, err);
}

enum kura_err kura_meta_seal_pending_buckets(struct kura_meta *meta,
					     const uint64_t *after,
					     uint64_t *ids, size_t max,
					     size_t *count,
					     struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "seal_pending_buckets", err);
	return meta->ops->seal_pending_buckets(meta->priv, after, ids, max,
					       count, err);
}

enum kura_err kura_meta_seal_next(struct kura_meta *meta, uint64_t bucket_id,
				  uint64_t bk_id, size_t limit,
				  struct kura_pool *pool,
				  struct kura_seal_batch *out,
				  struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "seal_next", err);
	return meta->ops->seal_next(meta->priv, bucket_id, bk_id, limit, pool,
				    out, err);
}

enum kura_err kura_meta_seal_apply(struct kura_meta *meta,
				   const struct kura_seal_batch *batch,
				   const struct kura_new_seal *objects,
				   const struct kura_new_seal *uploads,
				   const struct kura_new_seal *parts,
				   size_t *applied, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "seal_apply", err);
	return meta->ops->seal_apply(meta->priv, batch, objects, uploads, parts,
				     applied, err);
}

enum kura_err kura_meta_gc_next(struct kura_meta *meta,
				uint8_t (*ids)[KURA_BLOB_ID_LEN], size_t max,
				size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "gc_next", err);
	return meta->ops->gc_next(meta->priv, ids, max, count, err);
}

enum kura_err kura_meta_gc_done(struct kura_meta *meta,
				const uint8_t (*ids)[KURA_BLOB_ID_LEN],
				size_t count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "gc_done", err);
	return meta->ops->gc_done(meta->priv, ids, count, err);
}

enum kura_err kura_meta_blob_referenced(struct kura_meta *meta,
					const uint8_t id[KURA_BLOB_ID_LEN],
					bool *referenced,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "blob_referenced", err);
	return meta->ops->blob_referenced(meta->priv, id, referenced, err);
}

enum kura_err kura_meta_tenant_list(struct kura_meta *meta,
				    struct kura_pool *pool,
				    struct kura_tenant **out, size_t *count,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "tenant_list", err);
	return meta->ops->tenant_list(meta->priv, pool, out, count, err);
}

enum kura_err kura_meta_tenant_set_state(struct kura_meta *meta, uint64_t id,
					 enum kura_tenant_state state,
					 struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "tenant_set_state", err);
	return meta->ops->tenant_set_state(meta->priv, id, state, err);
}

enum kura_err kura_meta_tenant_delete(struct kura_meta *meta, uint64_t id,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "tenant_delete", err);
	return meta->ops->tenant_delete(meta->priv, id, err);
}

enum kura_err kura_meta_access_key_list(struct kura_meta *meta,
					uint64_t tenant_id,
					struct kura_pool *pool,
					struct kura_access_key **out,
					size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "access_key_list", err);
	return meta->ops->access_key_list(meta->priv, tenant_id, pool, out,
					  count, err);
}

enum kura_err kura_meta_access_key_revoke(struct kura_meta *meta,
					  const char *id,
					  struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "access_key_revoke", err);
	return meta->ops->access_key_revoke(meta->priv, id, err);
}

enum kura_err kura_meta_access_key_replace(struct kura_meta *meta,
					   const char *old_id,
					   const struct kura_access_key *k,
					   struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "access_key_replace", err);
	return meta->ops->access_key_replace(meta->priv, old_id, k, err);
}

/* -- replicas (v7) -- */

const char *kura_replica_state_name(enum kura_replica_state s)
{
	static const char *const names[KURA_REPLICA_STATES] = {
		"pending", "stored", "verified", "failed", "deleted"
	};
	return (unsigned)s < KURA_REPLICA_STATES ? names[s] : "unknown";
}

enum kura_err kura_meta_replica_set(struct kura_meta *meta,
				    const struct kura_replica *rows, size_t n,
				    const char *note, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_set", err);
	return meta->ops->replica_set(meta->priv, rows, n, note, err);
}

enum kura_err kura_meta_replica_list(struct kura_meta *meta,
				     const uint8_t blob_id[KURA_BLOB_ID_LEN],
				     struct kura_replica *out, size_t max,
				     size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_list", err);
	return meta->ops->replica_list(meta->priv, blob_id, out, max, count,
				       err);
}

enum kura_err kura_meta_replica_history(struct kura_meta *meta,
					const uint8_t blob_id[KURA_BLOB_ID_LEN],
					const char *backend,
					struct kura_replica_event *out,
					size_t max, size_t *count,
					struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_history", err);
	return meta->ops->replica_history(meta->priv, blob_id, backend, out,
					  max, count, err);
}

enum kura_err kura_meta_replica_due(struct kura_meta *meta, const char *backend,
				    int64_t now_ms, struct kura_replica *out,
				    size_t max, size_t *count,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_due", err);
	return meta->ops->replica_due(meta->priv, backend, now_ms, out, max,
				      count, err);
}

enum kura_err kura_meta_replica_orphans(struct kura_meta *meta,
					int64_t since_ms,
					struct kura_replica *out, size_t max,
					size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_orphans", err);
	return meta->ops->replica_orphans(meta->priv, since_ms, out, max, count,
					  err);
}

enum kura_err kura_meta_replica_groups(struct kura_meta *meta,
				       uint64_t bucket_id,
				       kura_replica_group_fn fn, void *ctx,
				       struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_groups", err);
	return meta->ops->replica_groups(meta->priv, bucket_id, fn, ctx, err);
}

enum kura_err kura_meta_replica_queue(struct kura_meta *meta,
				      const char *backend, uint64_t *count,
				      int64_t *oldest_ms,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "replica_queue", err);
	return meta->ops->replica_queue(meta->priv, backend, count, oldest_ms,
					err);
}

enum kura_err kura_meta_scrub_blobs(struct kura_meta *meta, uint64_t bucket_id,
				    const uint8_t after[KURA_BLOB_ID_LEN],
				    struct kura_scrub_blob *out, size_t max,
				    size_t *count, struct kura_error *err)
{
	KURA_HOOK_BEFORE(meta, "scrub_blobs", err);
	return meta->ops->scrub_blobs(meta->priv, bucket_id, after, out, max,
				      count, err);
}

/*
 * sqlite.c — the embedded metadata store, SQLite in WAL mode: its ops
 * table (kura_meta_sqlite), open and close.  The family of files around
 * sqlite_int.h holds the rest, one concept each; that header lists them.
 *
 * Opening prepares the file (mode 0600, schema.c), starts the connection
 * pool (conn.c) and brings the schema to the current version before
 * anything else runs.  Closing happens when no call is running.
 */
#include <stdio.h>

#include "kura/secret.h"
#include "sqlite_int.h"
#include "kura/banned.h"

static void sqlite_close(void *priv)
{
	struct sq_store *m = priv;

	if (m == NULL)
		return;
	kura_wipe(m->row_key, sizeof(m->row_key));
	if (!m->live)
		return;
	sq_pool_close(m);
}

static enum kura_err sqlite_open(void *priv, const struct kura_config *cfg,
				 const char *data_dir, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	const char *path = cfg != NULL ? kura_config_get(cfg, "meta", "path") :
					 NULL;
	enum kura_err r;
	int n;

	if (!sqlite3_threadsafe())
		return kura_fail(err, KURA_ECONFIG,
				 "sqlite library built without thread safety");
	if (path != NULL && path[0] != '\0')
		n = snprintf(m->path, sizeof(m->path), "%s", path);
	else if (data_dir != NULL && data_dir[0] != '\0')
		n = snprintf(m->path, sizeof(m->path), "%s/meta.db", data_dir);
	else
		return kura_fail(err, KURA_ECONFIG,
				 "no [meta] path and no data directory");
	if (n < 0 || (size_t)n >= sizeof(m->path))
		return kura_fail(err, KURA_ECONFIG, "metadata path too long");

	r = sq_prepare_file(m->path, err);
	if (r != KURA_OK)
		return r;
	sq_pool_init(m);
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = sq_schema_upgrade(m, c, err);
	sq_conn_release(m, c);
	if (r != KURA_OK)
		sqlite_close(m);
	return r;
}

const struct kura_meta_ops kura_meta_sqlite = {
	.name = "sqlite",
	.caps = 0,
	.priv_size = sizeof(struct sq_store),
	.open = sqlite_open,
	.close = sqlite_close,
	.set_row_key = sq_set_row_key,
	.row_mac_upgrade = sq_row_mac_upgrade,
	.setting_get = sq_setting_get,
	.setting_insert = sq_setting_insert,
	.setting_delete = sq_setting_delete,
	.tenant_create = sq_tenant_create,
	.tenant_get = sq_tenant_get,
	.tenant_get_by_name = sq_tenant_get_by_name,
	.access_key_create = sq_access_key_create,
	.access_key_get = sq_access_key_get,
	.bucket_create = sq_bucket_create,
	.bucket_get = sq_bucket_get,
	.bucket_list = sq_bucket_list,
	.bucket_delete = sq_bucket_delete,
	.bucket_set_encryption = sq_bucket_set_encryption,
	.bucket_set_versioning = sq_bucket_set_versioning,
	.bucket_set_object_lock = sq_bucket_set_object_lock,
	.key_protects_locked = sq_key_protects_locked,
	.bucket_set_lifecycle = sq_bucket_set_lifecycle,
	.bucket_get_lifecycle = sq_bucket_get_lifecycle,
	.replica_set = sq_replica_set,
	.replica_list = sq_replica_list,
	.replica_history = sq_replica_history,
	.replica_due = sq_replica_due,
	.replica_orphans = sq_replica_orphans,
	.replica_groups = sq_replica_groups,
	.replica_queue = sq_replica_queue,
	.scrub_blobs = sq_scrub_blobs,
	.bucket_purge = sq_bucket_purge,
	.bucket_blobs = sq_bucket_blobs,
	.key_create = sq_key_create,
	.key_get = sq_key_get,
	.key_get_by_name = sq_key_get_by_name,
	.key_list = sq_key_list,
	.key_versions = sq_key_versions,
	.key_set_state = sq_key_set_state,
	.key_rotate = sq_key_rotate,
	.key_version_in_use = sq_key_version_in_use,
	.bucket_key_ids = sq_bucket_key_ids,
	.key_version_destroyed = sq_key_version_destroyed,
	.key_destroyed = sq_key_destroyed,
	.key_generation = sq_key_generation,
	.bucket_key_current = sq_bucket_key_current,
	.bucket_key_get = sq_bucket_key_get,
	.bucket_key_insert = sq_bucket_key_insert,
	.bucket_keys_of_key = sq_bucket_keys_of_key,
	.bucket_keys_retired = sq_bucket_keys_retired,
	.rewrap_next = sq_rewrap_next,
	.rewrap_apply = sq_rewrap_apply,
	.bucket_key_delete = sq_bucket_key_delete,
	.object_put = sq_object_put,
	.object_get = sq_object_get,
	.object_get_version = sq_object_get_version,
	.object_set_lock = sq_object_set_lock,
	.object_list_versions = sq_object_list_versions,
	.object_delete = sq_object_delete,
	.object_list = sq_object_list,
	.object_set_tags = sq_object_set_tags,
	.upload_create = sq_upload_create,
	.upload_get = sq_upload_get,
	.upload_put_part = sq_upload_put_part,
	.upload_list_parts = sq_upload_list_parts,
	.upload_complete = sq_upload_complete,
	.upload_abort = sq_upload_abort,
	.upload_list = sq_upload_list,
	.upload_expired = sq_upload_expired,
	.bucket_get_id = sq_bucket_get_id,
	.seal_pending_buckets = sq_seal_pending_buckets,
	.seal_next = sq_seal_next,
	.seal_apply = sq_seal_apply,
	.gc_next = sq_gc_next,
	.gc_done = sq_gc_done,
	.blob_referenced = sq_blob_referenced,
	.tenant_list = sq_tenant_list,
	.tenant_set_state = sq_tenant_set_state,
	.tenant_delete = sq_tenant_delete,
	.access_key_list = sq_access_key_list,
	.access_key_revoke = sq_access_key_revoke,
	.access_key_replace = sq_access_key_replace,
};

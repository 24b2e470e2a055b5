/*
 * buckets.c — buckets in the SQLite metadata store: creation together with
 * the bucket's key and first bucket key, lookups, listing, default
 * encryption, deletion and purge, and the inventory of a bucket's blobs.
 *
 * A bucket id is random, chosen by the caller, and never reused: deleting
 * or purging a bucket records its id in retired_buckets, and creating one
 * refuses a retired id (every blob's AAD names its bucket).  Bucket names
 * are unique across all tenants, as in S3.  Every row carries its MAC
 * (rowmacs.c), checked whenever the row is read, even for its tenant only.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdlib.h>

#include "kura/timefmt.h"
#include "sqlite_int.h"
#include "kura/banned.h"

#define BUCKET_COLS "SELECT " SQ_BUCKET_FIELDS("") " FROM buckets "

void sq_bucket_fields(struct sq_stmt *st, int base, struct kura_bucket *b)
{
	memset(b, 0, sizeof(*b));
	b->id = sq_col_u64(st, base);
	b->tenant_id = sq_col_u64(st, base + 1);
	sq_col_text(st, base + 2, b->name, sizeof(b->name), "bucket name");
	sq_col_text(st, base + 3, b->region, sizeof(b->region), "region");
	b->created_ms = sq_col_i64(st, base + 4);
	b->key_id = sq_col_opt_u64(st, base + 5);
	b->default_sse = (enum kura_sse)sq_col_int(st, base + 6);
	b->default_kms_key_id = sq_col_opt_u64(st, base + 7);
	b->versioning = (enum kura_versioning)sq_col_range(
		st, base + 8, KURA_VERSIONING_OFF, KURA_VERSIONING_SUSPENDED,
		"versioning");
	b->object_lock = sq_col_range(st, base + 9, 0, 1, "object lock") == 1;
	b->lock_default_mode = (enum kura_lock_mode)sq_col_range(
		st, base + 10, KURA_LOCK_NONE, KURA_LOCK_COMPLIANCE,
		"default lock mode");
	b->lock_default_days = (uint32_t)sq_col_range(
		st, base + 11, 0, KURA_LOCK_DAYS_MAX, "default lock days");
	b->lock_default_years = (uint32_t)sq_col_range(st, base + 12, 0,
						       KURA_LOCK_DAYS_MAX / 365,
						       "default lock years");
	b->has_lifecycle = !sq_col_null(st, base + 13);
	if (b->has_lifecycle)
		sq_col_blob(st, base + 13, b->lifecycle_digest,
			    sizeof(b->lifecycle_digest), NULL,
			    "lifecycle digest");
	if (!sq_col_null(st, base + 14))
		sq_col_text(st, base + 14, b->placement, sizeof(b->placement),
			    "placement");
	/* kura never writes a default retention without Object Lock. */
	if (!sq_lock_default_ok(b))
		sq_fail(st, KURA_EINTEGRITY,
			"sqlite: bucket %llu: bad default retention",
			(unsigned long long)b->id);
}

void sq_bucket_row(struct sq_stmt *st, int base, struct kura_bucket *b)
{
	sq_bucket_fields(st, base, b);
	sq_col_row_mac(st, base + SQ_BUCKET_NCOLS - 1, SQ_ROW_BUCKET, b);
}

/* One row of BUCKET_COLS, checked against its MAC. */
static void bucket_row(struct sq_stmt *st, void *out)
{
	sq_bucket_row(st, 0, out);
}

static const struct sq_sql sql_bucket_get = {
	.what = "get bucket",
	.text = BUCKET_COLS "WHERE name = ?1",
};
static const struct sq_sql sql_bucket_get_id = {
	.what = "bucket",
	.text = BUCKET_COLS "WHERE id = ?1",
};

/* Bucket id on c, checked: KURA_ENOENT when there is none. */
static enum kura_err bucket_fetch(struct sq_conn *c, uint64_t id,
				  struct kura_bucket *b, struct kura_error *err)
{
	struct sq_stmt st;
	bool found;
	enum kura_err r;

	sq_begin(&st, c, &sql_bucket_get_id, err);
	sq_bind_u64(&st, 1, id);
	found = sq_row(&st);
	if (found)
		bucket_row(&st, b);
	r = sq_end(&st);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no bucket %016llx",
			      (unsigned long long)id);
	return r;
}

enum kura_err sq_bucket_fetch(struct sq_conn *c, uint64_t id,
			      struct kura_bucket *b, struct kura_error *err)
{
	return bucket_fetch(c, id, b, err);
}

enum kura_err sq_bucket_check(struct sq_conn *c, uint64_t id,
			      struct kura_error *err)
{
	struct kura_bucket b;

	return bucket_fetch(c, id, &b, err);
}

enum kura_err sq_bucket_tenant(struct sq_conn *c, uint64_t bucket_id,
			       uint64_t *tenant_id, struct kura_error *err)
{
	struct kura_bucket b;
	enum kura_err r = bucket_fetch(c, bucket_id, &b, err);

	if (r == KURA_OK)
		*tenant_id = b.tenant_id;
	return r;
}

/* ---- creating ---- */

static const struct sq_sql sql_bucket_retired = {
	.what = "lookup",
	.text = "SELECT 1 FROM retired_buckets WHERE id = ?1",
};
static const struct sq_sql sql_bucket_insert = {
	.what = "insert bucket",
	.text = "INSERT INTO buckets (id, tenant_id, name, region, "
		"created_ms, key_id, default_sse, default_kms_key_id, "
		"versioning, object_lock, lock_default_mode, lock_default_days, "
		"lock_default_years, placement, mac) VALUES (?1, ?2, ?3, ?4, "
		"?5, ?6, 0, NULL, ?8, ?9, ?10, ?11, ?12, NULLIF(?13, ''), ?7)",
};

struct bucket_create_arg {
	const struct kura_bucket *b;
	const struct kura_key *new_key; /* NULL: b->key_id exists */
	const char *new_kek_id;
	const struct kura_bucket_key *bk;
	int64_t key_created, key_changed, bk_created;
	uint64_t key_id, bk_id; /* results */
};

/* The existing key b->key_id: the bucket tenant's, enabled, and bk wrapped
 * by its current version. */
static enum kura_err existing_key_check(struct sq_conn *c,
					const struct bucket_create_arg *a,
					struct kura_error *err)
{
	struct kura_key k;
	enum kura_err r = sq_key_fetch(c, a->b->key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.tenant_id != a->b->tenant_id)
		return kura_fail(err, KURA_EPERM,
				 "key %llu belongs to another tenant",
				 (unsigned long long)a->b->key_id);
	if (k.state != KURA_KEY_ENABLED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is not enabled",
				 k.name);
	if (a->bk->key_version != k.current_version)
		return kura_fail(
			err, KURA_ESTATE,
			"bucket key wrapped by version %u of key '%s', "
			"current is %u",
			a->bk->key_version, k.name, k.current_version);
	return KURA_OK;
}

static enum kura_err bucket_create_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	struct bucket_create_arg *a = arg;
	const struct kura_bucket *b = a->b;
	struct kura_bucket row;
	struct sq_stmt st;
	uint64_t key_id = b->key_id;
	bool found = false;
	enum kura_err r = sq_tenant_check(c, b->tenant_id, err);

	if (r == KURA_OK)
		r = sq_exists_u64(c, &sql_bucket_retired, b->id, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_EEXIST,
			      "bucket id %016llx was used before",
			      (unsigned long long)b->id);
	if (r == KURA_OK && a->new_key != NULL) {
		r = sq_key_insert(c, a->new_key, a->new_kek_id, a->key_created,
				  a->key_changed, &key_id, err);
		if (r == KURA_OK && a->bk->key_version != 1)
			r = kura_fail(err, KURA_ESTATE,
				      "bucket key of version %u for a new key",
				      a->bk->key_version);
	} else if (r == KURA_OK) {
		r = existing_key_check(c, a, err);
	}
	if (r != KURA_OK)
		return r;

	/* The row as stored: no default encryption yet. */
	row = *b;
	row.key_id = key_id;
	row.default_sse = KURA_SSE_S3;
	row.default_kms_key_id = 0;
	sq_begin(&st, c, &sql_bucket_insert, err);
	sq_bind_u64(&st, 1, b->id);
	sq_bind_u64(&st, 2, b->tenant_id);
	sq_bind_text(&st, 3, b->name);
	sq_bind_text(&st, 4, b->region);
	sq_bind_i64(&st, 5, b->created_ms);
	sq_bind_u64(&st, 6, key_id);
	sq_bind_row_mac(&st, 7, SQ_ROW_BUCKET, &row);
	sq_bind_i64(&st, 8, (int)row.versioning);
	sq_bind_i64(&st, 9, row.object_lock ? 1 : 0);
	sq_bind_i64(&st, 10, (int)row.lock_default_mode);
	sq_bind_i64(&st, 11, row.lock_default_days);
	sq_bind_i64(&st, 12, row.lock_default_years);
	sq_bind_text(&st, 13, row.placement);
	sq_run(&st);
	r = sq_end_unique(&st, "bucket '%s' exists", b->name);
	if (r == KURA_OK)
		r = sq_bk_insert(c, b->id, key_id, a->bk->key_version,
				 a->bk->wrapped, a->bk->wrapped_len,
				 a->bk_created, &a->bk_id, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	if (r == KURA_OK)
		a->key_id = key_id;
	return r;
}

/* Check a new key for bucket b; *nk is what to store. */
static enum kura_err new_key_check(const struct kura_bucket *b,
				   const struct kura_key *new_key,
				   const char *new_kek_id, struct kura_key *nk,
				   struct kura_error *err)
{
	enum kura_err r;

	/* A new key without a tenant is the bucket's tenant's. */
	*nk = *new_key;
	if (nk->tenant_id == 0)
		nk->tenant_id = b->tenant_id;
	r = sq_check_new_key(nk, new_kek_id, err);
	if (r != KURA_OK)
		return r;
	if (nk->tenant_id != b->tenant_id || nk->state != KURA_KEY_ENABLED)
		return kura_fail(err, KURA_EINVAL,
				 "bucket '%s': its new key must be an enabled "
				 "key of its tenant",
				 b->name);
	return KURA_OK;
}

enum kura_err sq_bucket_create(void *priv, struct kura_bucket *b,
			       struct kura_key *new_key, const char *new_kek_id,
			       struct kura_bucket_key *bk,
			       struct kura_error *err)
{
	struct bucket_create_arg a = { b, NULL, new_kek_id, bk, 0, 0, 0, 0, 0 };
	struct kura_key nk;
	int64_t now = kura_now_ms();
	enum kura_err r;

	if (b == NULL || !sq_str_ok(b->name, sizeof(b->name), false) ||
	    !sq_str_ok(b->region, sizeof(b->region), true) ||
	    (unsigned)b->versioning > KURA_VERSIONING_SUSPENDED ||
	    !sq_lock_default_ok(b) ||
	    (b->object_lock && b->versioning != KURA_VERSIONING_ENABLED))
		return kura_fail(err, KURA_EINVAL, "bad bucket record");
	r = sq_check_new_bk(bk, err);
	if (r != KURA_OK)
		return r;
	if (new_key != NULL) {
		r = new_key_check(b, new_key, new_kek_id, &nk, err);
		if (r != KURA_OK)
			return r;
		a.key_created = nk.created_ms != 0 ? nk.created_ms : now;
		a.key_changed = nk.changed_ms != 0 ? nk.changed_ms :
						     a.key_created;
		a.new_key = &nk;
	} else if (b->key_id == 0) {
		return kura_fail(err, KURA_EINVAL, "bucket '%s' has no key",
				 b->name);
	}
	a.bk_created = bk->created_ms != 0 ? bk->created_ms : now;
	r = sq_write_tx(priv, bucket_create_body, &a, err);
	if (r != KURA_OK)
		return r;
	b->key_id = a.key_id;
	b->default_sse = KURA_SSE_S3;
	b->default_kms_key_id = 0;
	if (new_key != NULL) {
		new_key->id = a.key_id;
		new_key->tenant_id = b->tenant_id;
		new_key->created_ms = a.key_created;
		new_key->changed_ms = a.key_changed;
	}
	bk->id = a.bk_id;
	bk->bucket_id = b->id;
	bk->key_id = a.key_id;
	bk->current = true;
	bk->created_ms = a.bk_created;
	bk->retired_ms = 0;
	return KURA_OK;
}

/* ---- reading ---- */

/* Bucket name (when not NULL) or id. */
static enum kura_err bucket_read(struct sq_store *m, const char *name,
				 uint64_t id, struct kura_bucket *out,
				 struct kura_error *err)
{
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	struct kura_bucket b;
	bool found;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	if (name != NULL) {
		sq_begin(&st, c, &sql_bucket_get, err);
		sq_bind_text(&st, 1, name);
	} else {
		sq_begin(&st, c, &sql_bucket_get_id, err);
		sq_bind_u64(&st, 1, id);
	}
	found = sq_row(&st);
	if (found)
		bucket_row(&st, &b);
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = name != NULL ? kura_fail(err, KURA_ENOENT, "no bucket '%s'",
					     name) :
				   kura_fail(err, KURA_ENOENT, "no bucket %llu",
					     (unsigned long long)id);
	if (r == KURA_OK)
		*out = b;
	return r;
}

enum kura_err sq_bucket_get(void *priv, const char *name,
			    struct kura_bucket *out, struct kura_error *err)
{
	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "bucket name missing");
	return bucket_read(priv, name, 0, out, err);
}

enum kura_err sq_bucket_get_id(void *priv, uint64_t id, struct kura_bucket *out,
			       struct kura_error *err)
{
	return bucket_read(priv, NULL, id, out, err);
}

static const struct sq_sql sql_bucket_list = {
	.what = "list buckets",
	.text = BUCKET_COLS "WHERE tenant_id = ?1 ORDER BY name",
};

enum kura_err sq_bucket_list(void *priv, uint64_t tenant_id,
			     struct kura_pool *pool, struct kura_bucket **out,
			     size_t *count, struct kura_error *err)
{
	static const struct sq_list list = { &sql_bucket_list,
					     sizeof(struct kura_bucket), false,
					     bucket_row };
	void *res = NULL;
	enum kura_err r = sq_list(priv, &list, &tenant_id, SIZE_MAX, pool, &res,
				  count, err);

	if (r == KURA_OK)
		*out = res;
	return r;
}

/* ---- deleting ---- */

static const struct sq_sql sql_bucket_has_objects = {
	.what = "lookup",
	.text = "SELECT 1 FROM objects WHERE bucket_id = ?1 LIMIT 1",
};

/* Purge: every blob goes to gc before its row goes, in the same
 * transaction (blob ids are unique across both part tables, so none of
 * them can still be in use elsewhere); children before parents, as the
 * foreign keys want. */
static const struct sq_sql sql_bucket_parts_gc = {
	.what = "purge bucket",
	.text = "INSERT INTO gc (blob_id) SELECT p.blob_id FROM objects o "
		"JOIN parts p ON p.version_uid = o.version_uid WHERE "
		"o.bucket_id = ?1 ON CONFLICT DO NOTHING",
};
static const struct sq_sql sql_bucket_parts_delete = {
	.what = "purge bucket",
	.text = "DELETE FROM parts WHERE version_uid IN (SELECT version_uid "
		"FROM objects WHERE bucket_id = ?1)",
};
static const struct sq_sql sql_bucket_objects_delete = {
	.what = "purge bucket",
	.text = "DELETE FROM objects WHERE bucket_id = ?1",
};
/* Deleting (and purging): the uploads in progress are aborted (their
 * parts' blobs to gc), the bucket keys dropped (no part can use them
 * now), the bucket dropped and its id retired. */
static const struct sq_sql sql_bucket_uparts_gc = {
	.what = "delete bucket",
	.text = "INSERT INTO gc (blob_id) SELECT p.blob_id FROM uploads u "
		"JOIN upload_parts p ON p.version_uid = u.version_uid WHERE "
		"u.bucket_id = ?1 ON CONFLICT DO NOTHING",
};
static const struct sq_sql sql_bucket_uparts_delete = {
	.what = "delete bucket",
	.text = "DELETE FROM upload_parts WHERE version_uid IN (SELECT "
		"version_uid FROM uploads WHERE bucket_id = ?1)",
};
static const struct sq_sql sql_bucket_uploads_delete = {
	.what = "delete bucket",
	.text = "DELETE FROM uploads WHERE bucket_id = ?1",
};
static const struct sq_sql sql_bucket_bks_delete = {
	.what = "delete bucket",
	.text = "DELETE FROM bucket_keys WHERE bucket_id = ?1",
};
static const struct sq_sql sql_bucket_delete = {
	.what = "delete bucket",
	.text = "DELETE FROM buckets WHERE id = ?1",
};
static const struct sq_sql sql_bucket_retire = {
	.what = "delete bucket",
	.text = "INSERT INTO retired_buckets (id) VALUES (?1) ON CONFLICT DO "
		"NOTHING",
};

static const struct sq_sql *const bucket_delete_steps[] = {
	&sql_bucket_uparts_gc,
	&sql_bucket_uparts_delete,
	&sql_bucket_uploads_delete,
	&sql_bucket_bks_delete,
	&sql_bucket_delete,
	&sql_bucket_retire,
	NULL,
};
static const struct sq_sql *const bucket_purge_steps[] = {
	&sql_bucket_parts_gc,	    &sql_bucket_parts_delete,
	&sql_bucket_objects_delete, &sql_bucket_uparts_gc,
	&sql_bucket_uparts_delete,  &sql_bucket_uploads_delete,
	&sql_bucket_bks_delete,	    &sql_bucket_delete,
	&sql_bucket_retire,	    NULL,
};

/* Run steps (NULL-terminated), each with ?1 = id, then bump the key
 * generation (bucket keys went). */
static enum kura_err bucket_drop(struct sq_conn *c,
				 const struct sq_sql *const *steps, uint64_t id,
				 struct kura_error *err)
{
	enum kura_err r = KURA_OK;

	for (size_t i = 0; r == KURA_OK && steps[i] != NULL; i++)
		r = sq_exec_u64(c, steps[i], id, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

static enum kura_err bucket_delete_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	const uint64_t *id = arg;
	bool found = false;
	enum kura_err r = sq_bucket_check(c, *id, err);

	if (r == KURA_OK)
		r = sq_exists_u64(c, &sql_bucket_has_objects, *id, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_ENOTEMPTY, "bucket %016llx not empty",
			      (unsigned long long)*id);
	if (r == KURA_OK)
		r = bucket_drop(c, bucket_delete_steps, *id, err);
	return r;
}

enum kura_err sq_bucket_delete(void *priv, uint64_t bucket_id,
			       struct kura_error *err)
{
	return sq_write_tx(priv, bucket_delete_body, &bucket_id, err);
}

static const struct sq_sql sql_bucket_locked = {
	.what = "find locked versions",
	.text = "SELECT 1 FROM objects WHERE bucket_id = ?1 AND (legal_hold = "
		"1 OR lock_mode != 0) AND (legal_hold = 1 OR lock_until_ms > "
		"?2) LIMIT 1",
};

/* Whether any version of the bucket is locked now (no bypass: a purge
 * destroys every version at once). */
static enum kura_err bucket_locked(struct sq_conn *c, uint64_t bucket_id,
				   bool *locked, struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, &sql_bucket_locked, err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_i64(&st, 2, kura_now_ms());
	*locked = sq_row(&st);
	r = sq_end(&st);
	if (r != KURA_OK)
		*locked = false;
	return r;
}

static enum kura_err bucket_purge_body(struct sq_conn *c, void *arg,
				       struct kura_error *err)
{
	const uint64_t *id = arg;
	bool locked = false;
	enum kura_err r = sq_bucket_check(c, *id, err);

	if (r == KURA_OK)
		r = bucket_locked(c, *id, &locked, err);
	if (r == KURA_OK && locked)
		return kura_fail(err, KURA_EPERM,
				 "the bucket holds versions protected by "
				 "Object Lock");
	if (r == KURA_OK)
		r = bucket_drop(c, bucket_purge_steps, *id, err);
	return r;
}

enum kura_err sq_bucket_purge(void *priv, uint64_t bucket_id,
			      struct kura_error *err)
{
	return sq_write_tx(priv, bucket_purge_body, &bucket_id, err);
}

/* ---- default encryption ---- */

static const struct sq_sql sql_bucket_set_enc = {
	.what = "set bucket encryption",
	.text = "UPDATE buckets SET default_sse = ?2, default_kms_key_id = "
		"?3, mac = ?4 WHERE id = ?1",
};

struct set_enc_arg {
	uint64_t bucket_id;
	enum kura_sse sse;
	uint64_t kms_key_id;
};

static enum kura_err set_enc_body(struct sq_conn *c, void *arg,
				  struct kura_error *err)
{
	struct set_enc_arg *a = arg;
	struct sq_stmt st;
	struct kura_key k;
	struct kura_bucket b;
	enum kura_err r = bucket_fetch(c, a->bucket_id, &b, err);

	if (r == KURA_OK && a->sse == KURA_SSE_KMS) {
		r = sq_key_fetch(c, a->kms_key_id, &k, err);
		if (r == KURA_OK && k.tenant_id != b.tenant_id)
			r = kura_fail(err, KURA_EPERM,
				      "key %llu belongs to another tenant",
				      (unsigned long long)a->kms_key_id);
		else if (r == KURA_OK && k.state == KURA_KEY_DESTROYED)
			r = kura_fail(err, KURA_ESTATE, "key '%s' is destroyed",
				      k.name);
	}
	if (r != KURA_OK)
		return r;
	b.default_sse = a->sse;
	b.default_kms_key_id = a->sse == KURA_SSE_KMS ? a->kms_key_id : 0;
	sq_begin(&st, c, &sql_bucket_set_enc, err);
	sq_bind_u64(&st, 1, a->bucket_id);
	sq_bind_i64(&st, 2, (int)a->sse);
	sq_bind_opt_u64(&st, 3, b.default_kms_key_id);
	sq_bind_row_mac(&st, 4, SQ_ROW_BUCKET, &b);
	return sq_exec(&st);
}

enum kura_err sq_bucket_set_encryption(void *priv, uint64_t bucket_id,
				       enum kura_sse sse, uint64_t kms_key_id,
				       struct kura_error *err)
{
	struct set_enc_arg a = { bucket_id, sse, kms_key_id };

	/* SSE-C cannot be a default: the client brings the key. */
	if (sse != KURA_SSE_S3 && sse != KURA_SSE_KMS)
		return kura_fail(err, KURA_EINVAL, "bad default encryption %d",
				 (int)sse);
	if (sse == KURA_SSE_KMS && kms_key_id == 0)
		return kura_fail(err, KURA_EINVAL,
				 "default SSE-KMS without a key");
	return sq_write_tx(priv, set_enc_body, &a, err);
}

/* ---- versioning ---- */

static const struct sq_sql sql_bucket_set_versioning = {
	.what = "set bucket versioning",
	.text = "UPDATE buckets SET versioning = ?2, mac = ?3 WHERE id = ?1",
};

static enum kura_err set_versioning_body(struct sq_conn *c, void *arg,
					 struct kura_error *err)
{
	const struct kura_bucket *want = arg;
	struct sq_stmt st;
	struct kura_bucket b;
	enum kura_err r = bucket_fetch(c, want->id, &b, err);

	if (r != KURA_OK)
		return r;
	/* S3: a bucket once versioned keeps its versions for good. */
	if (b.versioning != KURA_VERSIONING_OFF &&
	    want->versioning == KURA_VERSIONING_OFF)
		return kura_fail(err, KURA_EINVAL,
				 "a versioned bucket cannot be unversioned");
	/* Suspended, a write would replace the null version in place. */
	if (b.object_lock && want->versioning != KURA_VERSIONING_ENABLED)
		return kura_fail(err, KURA_ESTATE,
				 "a bucket with Object Lock keeps versioning "
				 "enabled");
	b.versioning = want->versioning;
	sq_begin(&st, c, &sql_bucket_set_versioning, err);
	sq_bind_u64(&st, 1, b.id);
	sq_bind_i64(&st, 2, (int)b.versioning);
	sq_bind_row_mac(&st, 3, SQ_ROW_BUCKET, &b);
	return sq_exec(&st);
}

enum kura_err sq_bucket_set_versioning(void *priv, uint64_t bucket_id,
				       enum kura_versioning state,
				       struct kura_error *err)
{
	struct kura_bucket want = { .id = bucket_id, .versioning = state };

	if (state != KURA_VERSIONING_ENABLED &&
	    state != KURA_VERSIONING_SUSPENDED)
		return kura_fail(err, KURA_EINVAL, "bad versioning state %d",
				 (int)state);
	return sq_write_tx(priv, set_versioning_body, &want, err);
}

/* ---- Object Lock ---- */

bool sq_lock_default_ok(const struct kura_bucket *b)
{
	bool period = b->lock_default_days > 0 || b->lock_default_years > 0;
	if (b->lock_default_mode != KURA_LOCK_NONE &&
	    b->lock_default_mode != KURA_LOCK_GOVERNANCE &&
	    b->lock_default_mode != KURA_LOCK_COMPLIANCE)
		return false;
	return (b->lock_default_mode != KURA_LOCK_NONE) == period &&
	       !(b->lock_default_days > 0 && b->lock_default_years > 0) &&
	       b->lock_default_days <= KURA_LOCK_DAYS_MAX &&
	       b->lock_default_years <= KURA_LOCK_DAYS_MAX / 365 &&
	       (b->object_lock || b->lock_default_mode == KURA_LOCK_NONE);
}

static const struct sq_sql sql_bucket_set_lock = {
	.what = "set bucket object lock",
	.text = "UPDATE buckets SET object_lock = 1, lock_default_mode = ?2, "
		"lock_default_days = ?3, lock_default_years = ?4, mac = ?5 "
		"WHERE id = ?1",
};

static enum kura_err set_object_lock_body(struct sq_conn *c, void *arg,
					  struct kura_error *err)
{
	const struct kura_bucket *want = arg;
	struct sq_stmt st;
	struct kura_bucket b;
	enum kura_err r = bucket_fetch(c, want->id, &b, err);

	if (r != KURA_OK)
		return r;
	if (b.versioning != KURA_VERSIONING_ENABLED)
		return kura_fail(err, KURA_ESTATE,
				 "Object Lock needs versioning enabled");
	b.object_lock = true;
	b.lock_default_mode = want->lock_default_mode;
	b.lock_default_days = want->lock_default_days;
	b.lock_default_years = want->lock_default_years;
	sq_begin(&st, c, &sql_bucket_set_lock, err);
	sq_bind_u64(&st, 1, b.id);
	sq_bind_i64(&st, 2, (int)b.lock_default_mode);
	sq_bind_i64(&st, 3, b.lock_default_days);
	sq_bind_i64(&st, 4, b.lock_default_years);
	sq_bind_row_mac(&st, 5, SQ_ROW_BUCKET, &b);
	return sq_exec(&st);
}

enum kura_err sq_bucket_set_object_lock(void *priv, const struct kura_bucket *b,
					struct kura_error *err)
{
	if (b == NULL || !sq_lock_default_ok(b))
		return kura_fail(err, KURA_EINVAL, "bad default retention");
	return sq_write_tx(priv, set_object_lock_body, (void *)b, err);
}

static const struct sq_sql sql_key_buckets = {
	.what = "buckets of a key",
	.text = "SELECT id FROM buckets WHERE key_id = ?1",
};
static const struct sq_sql sql_kms_locked = {
	.what = "find locked versions",
	.text = "SELECT 1 FROM objects WHERE (legal_hold = 1 OR lock_mode != "
		"0) AND kms_key_id = ?1 AND (legal_hold = 1 OR lock_until_ms > "
		"?2) LIMIT 1",
};

static enum kura_err key_locked_body(struct sq_conn *c, uint64_t key_id,
				     bool *locked, struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	uint64_t *id;
	enum kura_err r;

	sq_begin(&st, c, &sql_kms_locked, err);
	sq_bind_u64(&st, 1, key_id);
	sq_bind_i64(&st, 2, kura_now_ms());
	*locked = sq_row(&st);
	r = sq_end(&st);
	if (r != KURA_OK || *locked)
		return r;
	sq_array_init(&a, sizeof(uint64_t), 8, false);
	sq_begin(&st, c, &sql_key_buckets, err);
	sq_bind_u64(&st, 1, key_id);
	while (sq_row(&st) && (id = sq_array_add(&a, &st)) != NULL)
		*id = sq_col_u64(&st, 0);
	r = sq_end(&st);
	for (size_t i = 0; r == KURA_OK && i < a.n && !*locked; i++)
		r = bucket_locked(c, ((const uint64_t *)a.v)[i], locked, err);
	free(a.v);
	return r;
}

enum kura_err sq_key_protects_locked(void *priv, uint64_t key_id, bool *locked,
				     struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	*locked = false;
	if (r == KURA_OK)
		r = sq_tx_begin(c, false, err);
	if (r == KURA_OK)
		r = key_locked_body(c, key_id, locked, err);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	sq_conn_release(m, c);
	return r;
}

/* ---- the inventory of a bucket's blobs ---- */

static const struct sq_sql sql_bucket_blobs = {
	.what = "list bucket blobs",
	.text = "SELECT p.blob_id, p.size FROM objects o JOIN parts p ON "
		"p.version_uid = o.version_uid WHERE o.bucket_id = ?1 UNION "
		"ALL SELECT p.blob_id, p.size FROM uploads u JOIN "
		"upload_parts p ON p.version_uid = u.version_uid WHERE "
		"u.bucket_id = ?1",
};

/* Call fn for each blob of the bucket; fn's failure stops the walk and is
 * returned as it is. */
static enum kura_err
blobs_walk(struct sq_conn *c, uint64_t bucket_id,
	   enum kura_err (*fn)(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN],
			       uint64_t size),
	   void *ctx, struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r = KURA_OK, e;

	sq_begin(&st, c, &sql_bucket_blobs, err);
	sq_bind_u64(&st, 1, bucket_id);
	while (r == KURA_OK && sq_row(&st)) {
		uint8_t id[KURA_BLOB_ID_LEN];
		int64_t size = sq_col_range(&st, 1, 0, INT64_MAX, "size");

		sq_col_blob(&st, 0, id, sizeof(id), NULL, "blob id");
		if (!sq_failed(&st))
			r = fn(ctx, id, (uint64_t)size);
	}
	e = sq_end(&st);
	return r != KURA_OK ? r : e;
}

enum kura_err sq_bucket_blobs(
	void *priv, uint64_t bucket_id,
	enum kura_err (*fn)(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN],
			    uint64_t size),
	void *ctx, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	uint64_t tenant_id = 0;
	enum kura_err r;

	if (fn == NULL)
		return kura_fail(err, KURA_EINVAL, "no blob callback");
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	/* One read transaction: the inventory is one snapshot. */
	r = sq_tx_begin(c, false, err);
	if (r == KURA_OK)
		r = sq_bucket_tenant(c, bucket_id, &tenant_id, err);
	if (r == KURA_OK)
		r = blobs_walk(c, bucket_id, fn, ctx, err);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	sq_conn_release(m, c);
	return r;
}

/* ---- the row MAC upgrade (rowmacs.c) ---- */

static const struct sq_sql sql_bucket_unmacd = {
	.what = "row MAC upgrade",
	.text = BUCKET_COLS "WHERE mac IS NULL",
};
static const struct sq_sql sql_bucket_mac = {
	.what = "row MAC upgrade",
	.text = "UPDATE buckets SET mac = ?1 WHERE id = ?2 AND mac IS NULL",
};

static void bucket_fields(struct sq_stmt *st, void *row)
{
	sq_bucket_fields(st, 0, row);
}

static void bucket_key(struct sq_stmt *st, const void *row)
{
	sq_bind_u64(st, 2, ((const struct kura_bucket *)row)->id);
}

const struct sq_mac_table sq_bucket_macs = {
	SQ_ROW_BUCKET,	    sizeof(struct kura_bucket),
	&sql_bucket_unmacd, bucket_fields,
	&sql_bucket_mac,    bucket_key,
};

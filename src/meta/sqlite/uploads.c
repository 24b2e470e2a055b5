/*
 * uploads.c — multipart uploads in the SQLite metadata store (schema 2):
 * the upload rows, their parts, completion, abort, listing and expiry.
 *
 * An upload's parts live in upload_parts under the upload's version_uid
 * (each blob's ciphertext is bound to that uid and its part_no).
 * Completing moves the chosen rows, unchanged, into parts under the same
 * uid, which becomes the object's: metadata rows only, never blob bytes,
 * at most KURA_MAX_PARTS single-row INSERT ... SELECTs in the one
 * transaction.  Separate tables keep both foreign keys (a part row always
 * belongs to an object or to an upload, so no blob can be orphaned by a
 * dangling row) and left migration 2 free of any table rebuild.
 *
 * Upload ids are opaque here: 1..64 printable ASCII characters, unique
 * across buckets; an id that cannot exist is simply not found.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdlib.h>

#include "sqlite_int.h"
#include "kura/banned.h"

/* ---- checks ---- */

/* 1..64 printable ASCII characters (no space): they sort and print
 * safely. */
static bool upload_id_ok(const char *id)
{
	size_t n = strnlen(id, KURA_UPLOAD_ID_MAX);

	if (n == 0 || n >= KURA_UPLOAD_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
			return false;
	return true;
}

/* For the calls that look an upload up: an id that cannot exist is simply
 * not found (clients send whatever uploadId they like). */
static enum kura_err check_upload_ref(const char *id, struct kura_error *err)
{
	if (id == NULL)
		return kura_fail(err, KURA_EINVAL, "upload id missing");
	if (!upload_id_ok(id))
		return kura_fail(err, KURA_ENOENT, "no such upload (bad id)");
	return KURA_OK;
}

static enum kura_err check_part(const struct kura_part *p,
				struct kura_error *err)
{
	if (p == NULL)
		return kura_fail(err, KURA_EINVAL, "part missing");
	if (p->part_no < 1 || p->part_no > KURA_MAX_PARTS ||
	    !sq_str_ok(p->etag, sizeof(p->etag), true) || p->size > INT64_MAX ||
	    p->seal_len > KURA_SEAL_MAX ||
	    (p->seal_len > 0 && p->seal_bk_id == 0))
		return kura_fail(err, KURA_EINVAL, "bad part %u", p->part_no);
	return KURA_OK;
}

/* ---- rows ---- */

/* One row of SQ_UPLOAD_COLS, strings from pool. */
void sq_upload_row(struct sq_stmt *st, struct kura_pool *pool,
		   struct kura_upload *u)
{
	const char **strs[8] = {
		&u->content_type,     &u->content_encoding,
		&u->content_language, &u->content_disposition,
		&u->cache_control,    &u->expires,
		&u->user_meta_json,   &u->tags_json,
	};

	memset(u, 0, sizeof(*u));
	sq_col_text(st, 0, u->id, sizeof(u->id), "upload id");
	u->bucket_id = sq_col_u64(st, 1);
	sq_col_pkey(st, 2, pool, &u->key, &u->key_len, "upload key");
	sq_col_blob(st, 3, u->version_uid, KURA_UID_LEN, NULL, "version uid");
	u->created_ms = sq_col_i64(st, 4);
	for (int i = 0; i < 8; i++)
		sq_col_ptext(st, 5 + i, pool, strs[i]);
	sq_col_sse(st, 13, &u->sse, &u->kms_key_id, u->ssec_hmac);
	sq_col_seal(st, 16, u->seal, &u->seal_len, &u->seal_bk_id);
	sq_col_lock(st, 18, &u->lock_mode, &u->lock_until_ms, &u->legal_hold);
}

/* Rows of SQ_UPLOAD_COLS, up to limit, into pool; ends st. */
static enum kura_err upload_rows(struct sq_stmt *st, size_t limit,
				 struct kura_pool *pool,
				 struct kura_upload **out, size_t *count,
				 struct kura_error *err)
{
	struct sq_array a;
	struct kura_upload *u;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	sq_array_init(&a, sizeof(*u), limit < 16 ? limit : 16, false);
	while (a.n < limit && sq_row(st) && (u = sq_array_add(&a, st)) != NULL)
		sq_upload_row(st, pool, u);
	r = sq_array_end(&a, sq_end(st), pool, &res, &n, err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* ---- inside write transactions ---- */

static const struct sq_sql sql_upload_find = {
	.what = "find upload",
	.text = "SELECT bucket_id, key, version_uid, sse, kms_key_id, "
		"ssec_hmac FROM uploads WHERE id = ?1",
};

/* What an upload lookup returns: its version uid, whether its key is the
 * one asked about, and its encryption. */
struct upload_ref {
	uint8_t uid[KURA_UID_LEN];
	bool key_match;
	enum kura_sse sse;
	uint64_t kms_key_id;
	uint8_t ssec_hmac[KURA_SSEC_HMAC_LEN];
};

/* Upload id in bucket_id; KURA_ENOENT when there is none (also when it
 * belongs to another bucket).  key may be NULL (no key match wanted). */
static enum kura_err upload_find(struct sq_conn *c, const char *id,
				 uint64_t bucket_id, const char *key,
				 size_t key_len, struct upload_ref *out,
				 struct kura_error *err)
{
	struct sq_stmt st;
	bool found;
	enum kura_err r;

	memset(out, 0, sizeof(*out));
	sq_begin(&st, c, &sql_upload_find, err);
	sq_bind_text(&st, 1, id);
	found = sq_row(&st) && sq_col_u64(&st, 0) == bucket_id;
	if (found && key != NULL) {
		const void *k = sqlite3_column_blob(st.s, 1);
		int n = sqlite3_column_bytes(st.s, 1);
		out->key_match = k != NULL && n > 0 && (size_t)n == key_len &&
				 memcmp(k, key, key_len) == 0;
	}
	if (found) {
		sq_col_blob(&st, 2, out->uid, KURA_UID_LEN, NULL,
			    "version uid");
		sq_col_sse(&st, 3, &out->sse, &out->kms_key_id, out->ssec_hmac);
	}
	r = sq_end(&st);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no upload '%s'", id);
	return r;
}

/* Parts moved to the object are in parts by now and stay live. */
static const struct sq_sql sql_upart_gc_all = {
	.what = "queue upload parts",
	.text = "INSERT INTO gc (blob_id) SELECT u.blob_id FROM upload_parts "
		"u WHERE u.version_uid = ?1 AND NOT EXISTS (SELECT 1 FROM "
		"parts p WHERE p.blob_id = u.blob_id) ON CONFLICT DO NOTHING",
};
static const struct sq_sql sql_upart_delete_all = {
	.what = "delete upload parts",
	.text = "DELETE FROM upload_parts WHERE version_uid = ?1",
};
static const struct sq_sql sql_upload_delete = {
	.what = "delete upload",
	.text = "DELETE FROM uploads WHERE id = ?1",
};

/* Queue every blob of the upload with uid that is not (now) an object's
 * part, then delete its part rows and the upload row. */
static enum kura_err upload_drop(struct sq_conn *c, const char *id,
				 const uint8_t uid[KURA_UID_LEN],
				 struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r = sq_exec_uid(c, &sql_upart_gc_all, uid, err);

	if (r == KURA_OK)
		r = sq_exec_uid(c, &sql_upart_delete_all, uid, err);
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_upload_delete, err);
	sq_bind_text(&st, 1, id);
	return sq_exec(&st);
}

/* ---- creating, reading ---- */

static const struct sq_sql sql_obj_uid_exists = {
	.what = "lookup",
	.text = "SELECT 1 FROM objects WHERE version_uid = ?1",
};
static const struct sq_sql sql_upload_insert = {
	.what = "insert upload",
	.text = "INSERT INTO uploads (id, bucket_id, key, version_uid, "
		"created_ms, content_type, content_encoding, "
		"content_language, content_disposition, cache_control, "
		"expires, user_meta_json, tags_json, sse, kms_key_id, "
		"ssec_hmac, seal, seal_bk_id, lock_mode, lock_until_ms, "
		"legal_hold) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		"?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
};

static enum kura_err upload_create_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	const struct kura_upload *u = arg;
	const char *strs[8] = {
		u->content_type,     u->content_encoding,
		u->content_language, u->content_disposition,
		u->cache_control,    u->expires,
		u->user_meta_json,   u->tags_json,
	};
	struct sq_stmt st;
	bool found = false;
	enum kura_err r = sq_bucket_check(c, u->bucket_id, err);

	if (r == KURA_OK)
		r = sq_exists_blob(c, &sql_obj_uid_exists, u->version_uid,
				   KURA_UID_LEN, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_EEXIST,
			      "version uid belongs to an object");
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_upload_insert, err);
	sq_bind_text(&st, 1, u->id);
	sq_bind_u64(&st, 2, u->bucket_id);
	sq_bind_blob(&st, 3, u->key, u->key_len);
	sq_bind_blob(&st, 4, u->version_uid, KURA_UID_LEN);
	sq_bind_i64(&st, 5, u->created_ms);
	for (int i = 0; i < 8; i++)
		sq_bind_text(&st, 6 + i, strs[i]);
	sq_bind_sse(&st, 14, u->sse, u->kms_key_id, u->ssec_hmac);
	sq_bind_seal(&st, 17, u->seal, u->seal_len, u->seal_bk_id);
	sq_bind_i64(&st, 19, (int)u->lock_mode);
	sq_bind_i64(&st, 20, u->lock_until_ms);
	sq_bind_i64(&st, 21, u->legal_hold ? 1 : 0);
	sq_run(&st);
	return sq_end_unique(&st, "upload '%s' (or its version uid) exists",
			     u->id);
}

enum kura_err sq_upload_create(void *priv, const struct kura_upload *u,
			       struct kura_error *err)
{
	enum kura_err r;

	if (u == NULL || !upload_id_ok(u->id))
		return kura_fail(err, KURA_EINVAL, "bad upload id");
	if (u->seal_len > KURA_SEAL_MAX ||
	    (u->seal_len > 0 && u->seal_bk_id == 0))
		return kura_fail(err, KURA_EINVAL, "bad upload seal");
	if (sq_check_lock(u->lock_mode, u->lock_until_ms, err) != KURA_OK)
		return KURA_EINVAL;
	r = sq_check_key(u->key, u->key_len, err);
	if (r == KURA_OK)
		r = sq_check_sse(u->sse, u->kms_key_id, err);
	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, upload_create_body, (void *)u, err);
}

static const struct sq_sql sql_upload_get = {
	.what = "get upload",
	.text = SQ_UPLOAD_COLS "WHERE id = ?1",
};

enum kura_err sq_upload_get(void *priv, uint64_t bucket_id,
			    const char *upload_id, struct kura_pool *pool,
			    struct kura_upload **out, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	struct kura_upload *u;
	bool found;
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r != KURA_OK)
		return r;
	u = kura_palloc(pool, sizeof(*u));
	if (u == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_upload_get, err);
	sq_bind_text(&st, 1, upload_id);
	found = sq_row(&st) && sq_col_u64(&st, 1) == bucket_id;
	if (found)
		sq_upload_row(&st, pool, u);
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no upload '%s'", upload_id);
	if (r == KURA_OK)
		*out = u;
	return r;
}

/* ---- parts ---- */

static const struct sq_sql sql_upart_blob = {
	.what = "find upload part",
	.text = "SELECT blob_id FROM upload_parts WHERE version_uid = ?1 AND "
		"part_no = ?2",
};
static const struct sq_sql sql_upart_delete_one = {
	.what = "replace upload part",
	.text = "DELETE FROM upload_parts WHERE version_uid = ?1 AND part_no "
		"= ?2",
};
static const struct sq_sql sql_upart_insert = {
	.what = "insert upload part",
	.text = "INSERT INTO upload_parts (version_uid, part_no, blob_id, "
		"size, seg_size, dek_wrapped, etag, mtime_ms, bk_id, seal, "
		"seal_bk_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
		"?10, ?11)",
};

/* Take out part part_no of the upload with uid, if there is one: its row
 * goes first so its blob may be reused (a retried request) without a
 * clash; old receives its blob id. */
static enum kura_err upart_take(struct sq_conn *c,
				const uint8_t uid[KURA_UID_LEN],
				uint32_t part_no, struct sq_blob_list *old,
				struct kura_error *err)
{
	struct sq_stmt st;
	bool found;
	enum kura_err r;

	sq_begin(&st, c, &sql_upart_blob, err);
	sq_bind_blob(&st, 1, uid, KURA_UID_LEN);
	sq_bind_i64(&st, 2, part_no);
	found = sq_row(&st);
	if (found)
		sq_col_blob(&st, 0, old->ids[0], KURA_BLOB_ID_LEN, NULL,
			    "blob id");
	r = sq_end(&st);
	if (r != KURA_OK || !found)
		return r;
	old->n = 1;
	sq_begin(&st, c, &sql_upart_delete_one, err);
	sq_bind_blob(&st, 1, uid, KURA_UID_LEN);
	sq_bind_i64(&st, 2, part_no);
	return sq_exec(&st);
}

struct put_part_arg {
	uint64_t bucket_id;
	const char *id;
	const struct kura_part *p;
};

static enum kura_err upload_put_part_body(struct sq_conn *c, void *arg,
					  struct kura_error *err)
{
	struct put_part_arg *a = arg;
	const struct kura_part *p = a->p;
	uint8_t old[1][KURA_BLOB_ID_LEN];
	struct sq_blob_list old_list = { old, 0 };
	struct upload_ref up;
	struct sq_blob_state bs;
	struct sq_stmt st;
	uint64_t known = 0;
	enum kura_err r =
		upload_find(c, a->id, a->bucket_id, NULL, 0, &up, err);

	if (r == KURA_OK)
		r = sq_bk_check(c, a->bucket_id, up.sse, p, &known, err);
	if (r == KURA_OK)
		r = upart_take(c, up.uid, p->part_no, &old_list, err);
	if (r == KURA_OK)
		r = sq_blob_state(c, p->blob_id, &bs, err);
	if (r != KURA_OK)
		return r;
	if (bs.queued)
		return kura_fail(err, KURA_EEXIST,
				 "part %u names a blob queued for deletion",
				 p->part_no);
	if (bs.in_parts || bs.in_uploads)
		return kura_fail(err, KURA_EEXIST,
				 "part %u: blob id already in use", p->part_no);
	sq_begin(&st, c, &sql_upart_insert, err);
	sq_bind_part(&st, up.uid, p, p->seal_len > 0);
	sq_bind_seal(&st, 10, p->seal, p->seal_len, p->seal_bk_id);
	r = sq_exec(&st);
	/* After the insert, so a reused blob is not queued. */
	if (r == KURA_OK)
		r = sq_gc_queue(c, &old_list, err);
	return r;
}

enum kura_err sq_upload_put_part(void *priv, uint64_t bucket_id,
				 const char *upload_id,
				 const struct kura_part *p,
				 struct kura_error *err)
{
	struct put_part_arg a = { bucket_id, upload_id, p };
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r == KURA_OK)
		r = check_part(p, err);
	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, upload_put_part_body, &a, err);
}

static const struct sq_sql sql_upart_list = {
	.what = "list upload parts",
	.text = SQ_UPART_COLS "WHERE version_uid = ?1 AND part_no > ?2 ORDER "
			      "BY part_no LIMIT ?3",
};

/* The upload and its parts from one read transaction (one snapshot). */
static enum kura_err parts_list(struct sq_conn *c, uint64_t bucket_id,
				const char *upload_id, uint32_t after,
				size_t limit, struct sq_array *a,
				struct kura_error *err)
{
	struct upload_ref up;
	struct sq_stmt st;
	struct kura_part *p;
	enum kura_err r = sq_tx_begin(c, false, err);

	if (r == KURA_OK)
		r = upload_find(c, upload_id, bucket_id, NULL, 0, &up, err);
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_upart_list, err);
	sq_bind_blob(&st, 1, up.uid, KURA_UID_LEN);
	sq_bind_i64(&st, 2, after);
	sq_bind_i64(&st, 3, (int64_t)limit);
	while (a->n < limit && sq_row(&st) &&
	       (p = sq_array_add(a, &st)) != NULL)
		sq_part_row(&st, p);
	r = sq_end(&st);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	return r;
}

enum kura_err sq_upload_list_parts(void *priv, uint64_t bucket_id,
				   const char *upload_id, uint32_t after,
				   size_t limit, struct kura_pool *pool,
				   struct kura_part **out, size_t *count,
				   struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_array a;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r != KURA_OK)
		return r;
	if (limit > KURA_MAX_PARTS)
		limit = KURA_MAX_PARTS; /* "up to limit" */
	sq_array_init(&a, sizeof(struct kura_part), 16, false);
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = parts_list(c, bucket_id, upload_id, after, limit, &a, err);
	r = sq_array_end(&a, r, pool, &res, &n, err);
	sq_conn_release(m, c);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* ---- completing, aborting ---- */

/* Completion: one chosen part, copied only if it is the caller's (a
 * sealed part by its seal ?7, an unsealed one by its etag ?5) and still
 * has a bucket key (?6 = 1: or needs none, SSE-C).  The stored bk_id and
 * dek_wrapped are copied: they may have been re-wrapped since the caller
 * listed the parts.  ?8 = 1: the object is sealed, and its parts keep no
 * ETag. */
static const struct sq_sql sql_upart_move = {
	.what = "move upload part",
	.text = "INSERT INTO parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms, bk_id) SELECT "
		"version_uid, part_no, blob_id, size, seg_size, dek_wrapped, "
		"CASE WHEN ?8 = 1 THEN '' ELSE etag END, mtime_ms, bk_id "
		"FROM upload_parts WHERE version_uid = ?1 AND part_no = ?2 "
		"AND blob_id = ?3 AND size = ?4 AND CASE WHEN seal IS NULL "
		"THEN etag = ?5 ELSE seal = ?7 END AND (bk_id IS NOT NULL OR "
		"?6 = 1)",
};

struct complete_arg {
	const char *id;
	const struct kura_object *o;
	const struct kura_put_cond *cond;
};

/* Move chosen part p, row for row, if it is still the one the caller saw
 * (same blob, size and etag or seal). */
static enum kura_err part_move(struct sq_conn *c, const struct complete_arg *a,
			       const uint8_t uid[KURA_UID_LEN],
			       const struct kura_part *p,
			       struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, &sql_upart_move, err);
	sq_bind_blob(&st, 1, uid, KURA_UID_LEN);
	sq_bind_i64(&st, 2, p->part_no);
	sq_bind_blob(&st, 3, p->blob_id, KURA_BLOB_ID_LEN);
	sq_bind_i64(&st, 4, (int64_t)p->size);
	sq_bind_text(&st, 5, p->etag);
	sq_bind_i64(&st, 6, a->o->sse == KURA_SSE_C);
	if (p->seal_len > 0)
		sq_bind_blob(&st, 7, p->seal, p->seal_len);
	else
		sq_bind_null(&st, 7);
	sq_bind_i64(&st, 8, a->o->seal_len > 0);
	r = sq_exec(&st);
	if (r == KURA_OK && st.changes != 1)
		r = kura_fail(err, KURA_ESTATE,
			      "part %u does not match upload '%s' (or its "
			      "bucket key was destroyed)",
			      p->part_no, a->id);
	return r;
}

/* The object is the upload's (key, version uid) and encrypted as the
 * upload says its parts were. */
static enum kura_err complete_check(const struct complete_arg *a,
				    const struct upload_ref *up,
				    struct kura_error *err)
{
	const struct kura_object *o = a->o;

	if (!up->key_match ||
	    memcmp(up->uid, o->version_uid, KURA_UID_LEN) != 0)
		return kura_fail(err, KURA_EINVAL,
				 "object key or version uid differs from "
				 "upload '%s'",
				 a->id);
	if (up->sse != o->sse || up->kms_key_id != o->kms_key_id ||
	    (o->sse == KURA_SSE_C &&
	     memcmp(up->ssec_hmac, o->ssec_hmac, KURA_SSEC_HMAC_LEN) != 0))
		return kura_fail(err, KURA_EINVAL,
				 "object encryption differs from upload '%s'",
				 a->id);
	return KURA_OK;
}

static enum kura_err upload_complete_body(struct sq_conn *c, void *arg,
					  struct kura_error *err)
{
	struct complete_arg *a = arg;
	const struct kura_object *o = a->o;
	struct sq_blob_list old = { NULL, 0 };
	struct upload_ref up;
	enum kura_err r = upload_find(c, a->id, o->bucket_id, o->key,
				      o->key_len, &up, err);

	if (r == KURA_OK)
		r = complete_check(a, &up, err);
	if (r == KURA_OK)
		r = sq_version_add(c, o, a->cond, &old, err);
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++)
		r = part_move(c, a, up.uid, &o->parts[i], err);
	if (r == KURA_OK)
		r = upload_drop(c, a->id, up.uid, err);
	if (r == KURA_OK)
		r = sq_gc_queue(c, &old, err);
	free(old.ids);
	return r;
}

enum kura_err sq_upload_complete(void *priv, const char *upload_id,
				 const struct kura_object *obj,
				 const struct kura_put_cond *cond,
				 struct kura_error *err)
{
	struct complete_arg a = { upload_id, obj, cond };
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r == KURA_OK)
		r = sq_check_object(obj, true, err);
	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, upload_complete_body, &a, err);
}

struct abort_arg {
	uint64_t bucket_id;
	const char *id;
};

static enum kura_err upload_abort_body(struct sq_conn *c, void *arg,
				       struct kura_error *err)
{
	struct abort_arg *a = arg;
	struct upload_ref up;
	enum kura_err r =
		upload_find(c, a->id, a->bucket_id, NULL, 0, &up, err);

	if (r == KURA_OK)
		r = upload_drop(c, a->id, up.uid, err);
	return r;
}

enum kura_err sq_upload_abort(void *priv, uint64_t bucket_id,
			      const char *upload_id, struct kura_error *err)
{
	struct abort_arg a = { bucket_id, upload_id };
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, upload_abort_body, &a, err);
}

/* ---- listing ---- */

/* By lower bound (none, >= prefix, key > marker, (key, id) > (marker, id
 * marker)) times upper bound (none, < successor(prefix)). */
#define ULIST_TAIL " ORDER BY key, id LIMIT ?5"
static const struct sq_sql sql_ulist[8] = {
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS "WHERE bucket_id = ?1" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key < ?4" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key >= ?2" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS "WHERE bucket_id = ?1 AND key >= ?2 "
				       "AND key < ?4" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key > ?2" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS "WHERE bucket_id = ?1 AND key > ?2 "
				       "AND key < ?4" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS "WHERE bucket_id = ?1 AND (key, id) > "
				       "(?2, ?3)" ULIST_TAIL,
	},
	{
		.what = "list uploads",
		.text = SQ_UPLOAD_COLS "WHERE bucket_id = ?1 AND (key, id) > "
				       "(?2, ?3) AND key < ?4" ULIST_TAIL,
	},
};

static enum kura_err
ulist_page(struct sq_conn *c, uint64_t bucket_id, const struct sq_range *rg,
	   const char *id_marker, size_t limit, struct kura_pool *pool,
	   struct kura_upload **out, size_t *count, struct kura_error *err)
{
	/* As in S3, the id marker only counts together with a key marker. */
	bool by_id = rg->bound == SQ_LOWER_GT && id_marker != NULL &&
		     id_marker[0] != '\0';
	int variant = by_id ? 3 : (int)rg->bound;
	struct sq_stmt st;

	sq_begin(&st, c, &sql_ulist[variant * 2 + (rg->upper_len > 0)], err);
	sq_bind_u64(&st, 1, bucket_id);
	if (rg->bound != SQ_LOWER_NONE)
		sq_bind_blob(&st, 2, rg->lower, rg->lower_len);
	if (by_id)
		sq_bind_text(&st, 3, id_marker);
	if (rg->upper_len > 0)
		sq_bind_blob(&st, 4, rg->upper, rg->upper_len);
	sq_bind_i64(&st, 5, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	return upload_rows(&st, limit, pool, out, count, err);
}

enum kura_err sq_upload_list(void *priv, uint64_t bucket_id, const char *prefix,
			     size_t prefix_len, const char *key_marker,
			     size_t km_len, const char *id_marker, size_t limit,
			     struct kura_pool *pool, struct kura_upload **out,
			     size_t *count, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_range rg;
	enum kura_err r;

	if ((prefix == NULL && prefix_len > 0) ||
	    (key_marker == NULL && km_len > 0))
		return kura_fail(err, KURA_EINVAL, "bad listing bounds");
	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	r = sq_range_init(&rg, prefix, prefix_len, key_marker, km_len, err);
	if (r == KURA_OK)
		r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = ulist_page(c, bucket_id, &rg, id_marker, limit, pool, out,
			       count, err);
	sq_conn_release(m, c);
	sq_range_release(&rg);
	return r;
}

/* The index on created_ms holds (created_ms, id): no sort. */
static const struct sq_sql sql_upload_expired = {
	.what = "list expired uploads",
	.text = SQ_UPLOAD_COLS "WHERE created_ms < ?1 ORDER BY created_ms, "
			       "id LIMIT ?2",
};

enum kura_err sq_upload_expired(void *priv, int64_t before_ms, size_t limit,
				struct kura_pool *pool,
				struct kura_upload **out, size_t *count,
				struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	enum kura_err r;

	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_upload_expired, err);
	sq_bind_i64(&st, 1, before_ms);
	sq_bind_i64(&st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	r = upload_rows(&st, limit, pool, out, count, err);
	sq_conn_release(m, c);
	return r;
}

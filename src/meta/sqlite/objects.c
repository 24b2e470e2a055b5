/*
 * objects.c — objects in the SQLite metadata store: the versions of each
 * (bucket, key) with their parts (one blob each), tags, listings, and the
 * row readers and binders that uploads.c and seals.c share.
 *
 * A key's versions are ordered by vseq, newest first; the newest is the
 * current one (a delete marker hides the key).  A write adds a version;
 * one that replaces the null version (a bucket never versioned, or
 * suspended) removes that in the same transaction.  Removing a version
 * queues its blobs for gc (gc.c) after the new parts exist, so a blob the
 * new version reuses is not queued.  A new part may
 * not name a blob already queued (it may be being deleted right now) nor
 * one of an upload.  A version uid is an object's or an upload's, never
 * both (completing an upload turns its uid into the object's).
 *
 * Listing: object keys are BLOBs, compared with memcmp then length —
 * exactly S3's UTF-8 byte order — and objects is clustered on
 * (bucket_id, key, vseq DESC), so a page is one range search of the
 * primary key: key >= prefix (or > after, the tighter) AND key <
 * successor(prefix).  A listing of current objects steps over a key's
 * older versions, and seeks past the key when they are many.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdlib.h>

#include "kura/timefmt.h"
#include "sqlite_int.h"
#include "kura/banned.h"

/* ---- rows and binders shared with uploads.c and seals.c ---- */

void sq_bind_sse(struct sq_stmt *st, int i, enum kura_sse sse,
		 uint64_t kms_key_id, const uint8_t *hmac)
{
	sq_bind_i64(st, i, (int)sse);
	sq_bind_opt_u64(st, i + 1, kms_key_id);
	if (sse == KURA_SSE_C)
		sq_bind_blob(st, i + 2, hmac, KURA_SSEC_HMAC_LEN);
	else
		sq_bind_null(st, i + 2);
}

void sq_col_sse(struct sq_stmt *st, int i, enum kura_sse *sse,
		uint64_t *kms_key_id, uint8_t *hmac)
{
	int v = sq_col_int(st, i);

	if (v != KURA_SSE_S3 && v != KURA_SSE_KMS && v != KURA_SSE_C) {
		sq_fail(st, KURA_EIO, "sqlite: corrupt sse %d", v);
		return;
	}
	*sse = (enum kura_sse)v;
	*kms_key_id = sq_col_opt_u64(st, i + 1);
	if (sq_col_null(st, i + 2))
		memset(hmac, 0, KURA_SSEC_HMAC_LEN);
	else
		sq_col_blob(st, i + 2, hmac, KURA_SSEC_HMAC_LEN, NULL,
			    "sse-c key check");
}

void sq_bind_seal(struct sq_stmt *st, int i, const uint8_t *seal,
		  size_t seal_len, uint64_t seal_bk_id)
{
	if (seal_len == 0) {
		sq_bind_null(st, i);
		sq_bind_null(st, i + 1);
		return;
	}
	sq_bind_blob(st, i, seal, seal_len);
	sq_bind_u64(st, i + 1, seal_bk_id);
}

void sq_col_seal(struct sq_stmt *st, int i, uint8_t *seal, size_t *seal_len,
		 uint64_t *seal_bk_id)
{
	*seal_len = 0;
	*seal_bk_id = sq_col_opt_u64(st, i + 1);
	if (!sq_col_null(st, i))
		sq_col_blob(st, i, seal, KURA_SEAL_MAX, seal_len, "seal");
}

void sq_bind_part(struct sq_stmt *st, const uint8_t uid[KURA_UID_LEN],
		  const struct kura_part *p, bool sealed)
{
	sq_bind_blob(st, 1, uid, KURA_UID_LEN);
	sq_bind_i64(st, 2, p->part_no);
	sq_bind_blob(st, 3, p->blob_id, KURA_BLOB_ID_LEN);
	sq_bind_i64(st, 4, (int64_t)p->size);
	sq_bind_i64(st, 5, p->seg_size);
	sq_bind_blob(st, 6, p->dek_wrapped, KURA_WRAPPED_DEK_LEN);
	sq_bind_text(st, 7, sealed ? "" : p->etag);
	sq_bind_i64(st, 8, p->mtime_ms);
	sq_bind_opt_u64(st, 9, p->bk_id);
}

/* One row of parts (part_no .. bk_id) or SQ_UPART_COLS (then the seal). */
void sq_part_row(struct sq_stmt *st, struct kura_part *p)
{
	memset(p, 0, sizeof(*p));
	p->part_no = (uint32_t)sq_col_i64(st, 0);
	sq_col_blob(st, 1, p->blob_id, KURA_BLOB_ID_LEN, NULL, "blob id");
	p->size = (uint64_t)sq_col_i64(st, 2);
	p->seg_size = (uint32_t)sq_col_i64(st, 3);
	sq_col_blob(st, 4, p->dek_wrapped, KURA_WRAPPED_DEK_LEN, NULL,
		    "wrapped dek");
	sq_col_text(st, 5, p->etag, sizeof(p->etag), "part etag");
	p->mtime_ms = sq_col_i64(st, 6);
	p->bk_id = sq_col_opt_u64(st, 7);
	if (sqlite3_column_count(st->s) > 9)
		sq_col_seal(st, 8, p->seal, &p->seal_len, &p->seal_bk_id);
}

/* One row of SQ_OBJECT_COLS into o (strings from pool; parts not read). */
void sq_object_row(struct sq_stmt *st, uint64_t bucket_id,
		   struct kura_pool *pool, struct kura_object *o)
{
	const char **strs[8] = {
		&o->content_type,     &o->content_encoding,
		&o->content_language, &o->content_disposition,
		&o->cache_control,    &o->expires,
		&o->user_meta_json,   &o->tags_json,
	};

	memset(o, 0, sizeof(*o));
	o->bucket_id = bucket_id;
	sq_col_pkey(st, 0, pool, &o->key, &o->key_len, "key");
	sq_col_blob(st, 1, o->version_uid, KURA_UID_LEN, NULL, "version uid");
	o->size = (uint64_t)sq_col_i64(st, 2);
	sq_col_text(st, 3, o->etag, sizeof(o->etag), "etag");
	o->mtime_ms = sq_col_i64(st, 4);
	for (int i = 0; i < 8; i++)
		sq_col_ptext(st, 5 + i, pool, strs[i]);
	o->part_count =
		(uint32_t)sq_col_range(st, 13, 0, SQ_PARTS_MAX, "part count");
	sq_col_sse(st, 14, &o->sse, &o->kms_key_id, o->ssec_hmac);
	sq_col_seal(st, 17, o->seal, &o->seal_len, &o->seal_bk_id);
	if (!sq_col_null(st, 19))
		sq_col_blob(st, 19, o->parts_digest, KURA_PARTS_DIGEST_LEN,
			    NULL, "parts digest");
	o->vseq = (uint64_t)sq_col_range(st, 20, 1, INT64_MAX, "vseq");
	o->null_version = sq_col_range(st, 21, 0, 1, "null version") == 1;
	o->delete_marker = sq_col_range(st, 22, 0, 1, "delete marker") == 1;
	sq_col_lock(st, 23, &o->lock_mode, &o->lock_until_ms, &o->legal_hold);
}

void sq_col_lock(struct sq_stmt *st, int i, enum kura_lock_mode *mode,
		 int64_t *until_ms, bool *legal_hold)
{
	*mode = (enum kura_lock_mode)sq_col_range(
		st, i, KURA_LOCK_NONE, KURA_LOCK_COMPLIANCE, "lock mode");
	*until_ms = sq_col_i64(st, i + 1);
	*legal_hold = sq_col_range(st, i + 2, 0, 1, "legal hold") == 1;
}

static const struct sq_sql sql_parts_get = {
	.what = "read parts",
	.text = "SELECT part_no, blob_id, size, seg_size, dek_wrapped, etag, "
		"mtime_ms, bk_id FROM parts WHERE version_uid = ?1 ORDER BY "
		"part_no",
};

enum kura_err sq_parts_read(struct sq_conn *c, struct kura_object *o,
			    struct kura_pool *pool, struct kura_error *err)
{
	struct sq_stmt st;
	uint32_t n = 0;
	enum kura_err r;

	if (o->part_count > 0) {
		o->parts = kura_palloc(pool, o->part_count * sizeof(*o->parts));
		if (o->parts == NULL)
			return kura_fail(err, KURA_ENOMEM, "out of memory");
	}
	sq_begin(&st, c, &sql_parts_get, err);
	sq_bind_blob(&st, 1, o->version_uid, KURA_UID_LEN);
	while (sq_row(&st)) {
		struct kura_part *p;

		/* The row and its parts disagree: the metadata was changed
		 * (kura writes both in one transaction). */
		if (n >= o->part_count) {
			sq_fail(&st, KURA_EINTEGRITY,
				"object has more parts than its %u",
				o->part_count);
			break;
		}
		p = &o->parts[n];
		sq_part_row(&st, p);
		/* Rows written by schema 1 have no part time. */
		if (sq_col_null(&st, 6))
			p->mtime_ms = o->mtime_ms;
		n++;
	}
	r = sq_end(&st);
	if (r == KURA_OK && n != o->part_count)
		r = kura_fail(err, KURA_EINTEGRITY,
			      "object has %u of its %u parts", n,
			      o->part_count);
	return r;
}

/* ---- checks ---- */

enum kura_err sq_check_key(const char *key, size_t key_len,
			   struct kura_error *err)
{
	if (key == NULL || key_len == 0 || key_len > KURA_OBJECT_KEY_MAX)
		return kura_fail(err, KURA_EINVAL, "bad object key (%zu bytes)",
				 key_len);
	return KURA_OK;
}

enum kura_err sq_check_lock(enum kura_lock_mode mode, int64_t until_ms,
			    struct kura_error *err)
{
	if (mode != KURA_LOCK_NONE && mode != KURA_LOCK_GOVERNANCE &&
	    mode != KURA_LOCK_COMPLIANCE)
		return kura_fail(err, KURA_EINVAL, "bad lock mode %d",
				 (int)mode);
	if ((mode == KURA_LOCK_NONE) != (until_ms == 0) || until_ms < 0)
		return kura_fail(err, KURA_EINVAL,
				 "a retention date goes with a mode");
	return KURA_OK;
}

enum kura_err sq_check_sse(enum kura_sse sse, uint64_t kms_key_id,
			   struct kura_error *err)
{
	if (sse != KURA_SSE_S3 && sse != KURA_SSE_KMS && sse != KURA_SSE_C)
		return kura_fail(err, KURA_EINVAL, "bad sse %d", (int)sse);
	if ((sse == KURA_SSE_KMS) != (kms_key_id != 0))
		return kura_fail(err, KURA_EINVAL,
				 "a KMS key goes with SSE-KMS and only there");
	return KURA_OK;
}

/* The parts of obj: ascending numbers (1..KURA_MAX_PARTS when multipart),
 * sizes summing to the object's. */
static enum kura_err check_parts(const struct kura_object *obj, bool multipart,
				 struct kura_error *err)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < obj->part_count; i++) {
		const struct kura_part *p = &obj->parts[i];
		if (!sq_str_ok(p->etag, sizeof(p->etag), true) ||
		    p->size > INT64_MAX - sum ||
		    (i > 0 && p->part_no <= obj->parts[i - 1].part_no) ||
		    (multipart &&
		     (p->part_no < 1 || p->part_no > KURA_MAX_PARTS)))
			return kura_fail(err, KURA_EINVAL, "bad part %u",
					 p->part_no);
		sum += p->size;
	}
	if (sum != obj->size)
		return kura_fail(err, KURA_EINVAL,
				 "object size %llu is not the sum of its parts "
				 "(%llu)",
				 (unsigned long long)obj->size,
				 (unsigned long long)sum);
	return KURA_OK;
}

enum kura_err sq_check_object(const struct kura_object *obj, bool multipart,
			      struct kura_error *err)
{
	enum kura_err r;

	if (obj == NULL)
		return kura_fail(err, KURA_EINVAL, "object missing");
	r = sq_check_key(obj->key, obj->key_len, err);
	if (r == KURA_OK)
		r = sq_check_sse(obj->sse, obj->kms_key_id, err);
	if (r != KURA_OK)
		return r;
	r = sq_check_lock(obj->lock_mode, obj->lock_until_ms, err);
	if (r != KURA_OK)
		return r;
	if (obj->vseq < 1 || obj->vseq > INT64_MAX ||
	    (obj->delete_marker &&
	     (multipart || obj->part_count > 0 || obj->size > 0)))
		return kura_fail(err, KURA_EINVAL, "bad version record");
	if (!sq_str_ok(obj->etag, sizeof(obj->etag), true) ||
	    obj->seal_len > KURA_SEAL_MAX ||
	    (obj->seal_len > 0 && obj->seal_bk_id == 0) ||
	    obj->size > INT64_MAX || obj->part_count > SQ_PARTS_MAX ||
	    (obj->part_count > 0 && obj->parts == NULL) ||
	    (multipart &&
	     (obj->part_count == 0 || obj->part_count > KURA_MAX_PARTS)))
		return kura_fail(err, KURA_EINVAL, "bad object record");
	return check_parts(obj, multipart, err);
}

/* ---- writing ---- */

#define VERSION_REF_COLS \
	"SELECT version_uid, vseq, lock_mode, lock_until_ms, legal_hold FROM objects "
static const struct sq_sql sql_newest = {
	.what = "find object",
	.text = VERSION_REF_COLS "WHERE bucket_id = ?1 AND key = ?2 ORDER BY "
				 "vseq DESC LIMIT 1",
};
static const struct sq_sql sql_null_version = {
	.what = "find object",
	.text = VERSION_REF_COLS "WHERE bucket_id = ?1 AND key = ?2 AND "
				 "null_version = 1",
};
static const struct sq_sql sql_uid_version = {
	.what = "find object",
	.text = VERSION_REF_COLS "WHERE bucket_id = ?1 AND key = ?2 AND "
				 "version_uid = ?3",
};
static const struct sq_sql sql_parts_blobs = {
	.what = "read parts",
	.text = "SELECT blob_id FROM parts WHERE version_uid = ?1",
};
static const struct sq_sql sql_parts_delete = {
	.what = "delete parts",
	.text = "DELETE FROM parts WHERE version_uid = ?1",
};
static const struct sq_sql sql_version_delete = {
	.what = "delete object",
	.text = "DELETE FROM objects WHERE version_uid = ?1",
};

/* A version of a key: its uid, vseq and Object Lock settings (in
 * lock.lock_mode, lock_until_ms, legal_hold). */
struct version_ref {
	bool found;
	uint8_t uid[KURA_UID_LEN];
	uint64_t vseq;
	struct kura_object lock;
};

/* The key's version that sql selects (sql_newest, sql_null_version, or
 * sql_uid_version with uid). */
static enum kura_err version_find(struct sq_conn *c, const struct sq_sql *sql,
				  uint64_t bucket_id, const char *key,
				  size_t key_len, const uint8_t *uid,
				  struct version_ref *v, struct kura_error *err)
{
	struct sq_stmt st;

	memset(v, 0, sizeof(*v));
	sq_begin(&st, c, sql, err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_blob(&st, 2, key, key_len);
	if (uid != NULL)
		sq_bind_blob(&st, 3, uid, KURA_UID_LEN);
	v->found = sq_row(&st);
	if (v->found) {
		sq_col_blob(&st, 0, v->uid, KURA_UID_LEN, NULL, "version uid");
		v->vseq = (uint64_t)sq_col_range(&st, 1, 1, INT64_MAX, "vseq");
		sq_col_lock(&st, 2, &v->lock.lock_mode, &v->lock.lock_until_ms,
			    &v->lock.legal_hold);
	}
	return sq_end(&st);
}

/* Object Lock in the store, whatever path removes a version (a delete, a
 * write replacing the null version, a purge): the S3 layer checks the
 * sealed settings first; this holds for every caller. */
static enum kura_err lock_check(const struct version_ref *v, bool bypass,
				struct kura_error *err)
{
	if (kura_version_locked(&v->lock, kura_now_ms(), bypass))
		return kura_fail(err, KURA_EPERM,
				 "the version is protected by Object Lock");
	return KURA_OK;
}

/* The key's version named by uid, or its null version (uid NULL). */
static enum kura_err version_named(struct sq_conn *c, uint64_t bucket_id,
				   const char *key, size_t key_len,
				   const uint8_t *uid, struct version_ref *v,
				   struct kura_error *err)
{
	return version_find(c,
			    uid != NULL ? &sql_uid_version : &sql_null_version,
			    bucket_id, key, key_len, uid, v, err);
}

/* The blob ids of version uid's parts, malloc'd. */
static enum kura_err parts_blobs(struct sq_conn *c,
				 const uint8_t uid[KURA_UID_LEN],
				 struct sq_blob_list *out,
				 struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	uint8_t *id;
	enum kura_err r;

	sq_array_init(&a, KURA_BLOB_ID_LEN, 4, false);
	sq_begin(&st, c, &sql_parts_blobs, err);
	sq_bind_blob(&st, 1, uid, KURA_UID_LEN);
	while (sq_row(&st) && (id = sq_array_add(&a, &st)) != NULL)
		sq_col_blob(&st, 0, id, KURA_BLOB_ID_LEN, NULL, "blob id");
	r = sq_end(&st);
	if (r != KURA_OK) {
		free(a.v);
		return r;
	}
	out->ids = (uint8_t(*)[KURA_BLOB_ID_LEN])(void *)a.v;
	out->n = a.n;
	return KURA_OK;
}

/* Move version uid out: its blob ids into *out (malloc'd), its part rows
 * and its row deleted. */
static enum kura_err version_remove(struct sq_conn *c,
				    const uint8_t uid[KURA_UID_LEN],
				    struct sq_blob_list *out,
				    struct kura_error *err)
{
	struct sq_blob_list bl = { NULL, 0 };
	enum kura_err r = parts_blobs(c, uid, &bl, err);

	/* Parts first: they reference the object row. */
	if (r == KURA_OK)
		r = sq_exec_uid(c, &sql_parts_delete, uid, err);
	if (r == KURA_OK)
		r = sq_exec_uid(c, &sql_version_delete, uid, err);
	if (r != KURA_OK) {
		free(bl.ids);
		return r;
	}
	*out = bl;
	return KURA_OK;
}

/* cond, if any, holds for the key's newest version v. */
static enum kura_err cond_check(const struct kura_put_cond *cond,
				const struct version_ref *v,
				struct kura_error *err)
{
	uint64_t newest = v->found ? v->vseq : 0;

	if (cond != NULL && cond->expect_vseq != newest)
		return kura_fail(err, KURA_ECONFLICT,
				 "the object changed meanwhile");
	return KURA_OK;
}

static const struct sq_sql sql_obj_insert = {
	.what = "insert object",
	.text = "INSERT INTO objects (bucket_id, key, version_uid, size, "
		"etag, mtime_ms, content_type, content_encoding, "
		"content_language, content_disposition, cache_control, "
		"expires, user_meta_json, tags_json, part_count, sse, "
		"kms_key_id, ssec_hmac, seal, seal_bk_id, parts_digest, vseq, "
		"null_version, delete_marker, lock_mode, lock_until_ms, "
		"legal_hold) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		"?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
		"?23, ?24, ?25, ?26, ?27)",
};

static enum kura_err object_insert(struct sq_conn *c,
				   const struct kura_object *o,
				   struct kura_error *err)
{
	const char *strs[8] = {
		o->content_type,     o->content_encoding,
		o->content_language, o->content_disposition,
		o->cache_control,    o->expires,
		o->user_meta_json,   o->tags_json,
	};
	struct sq_stmt st;

	sq_begin(&st, c, &sql_obj_insert, err);
	sq_bind_u64(&st, 1, o->bucket_id);
	sq_bind_blob(&st, 2, o->key, o->key_len);
	sq_bind_blob(&st, 3, o->version_uid, KURA_UID_LEN);
	sq_bind_i64(&st, 4, (int64_t)o->size);
	sq_bind_text(&st, 5, o->seal_len > 0 ? "" : o->etag);
	sq_bind_i64(&st, 6, o->mtime_ms);
	for (int i = 0; i < 8; i++)
		sq_bind_text(&st, 7 + i, strs[i]);
	sq_bind_i64(&st, 15, o->part_count);
	sq_bind_sse(&st, 16, o->sse, o->kms_key_id, o->ssec_hmac);
	sq_bind_seal(&st, 19, o->seal, o->seal_len, o->seal_bk_id);
	if (o->seal_len > 0)
		sq_bind_blob(&st, 21, o->parts_digest, KURA_PARTS_DIGEST_LEN);
	else
		sq_bind_null(&st, 21);
	sq_bind_i64(&st, 22, (int64_t)o->vseq);
	sq_bind_i64(&st, 23, o->null_version ? 1 : 0);
	sq_bind_i64(&st, 24, o->delete_marker ? 1 : 0);
	sq_bind_i64(&st, 25, (int)o->lock_mode);
	sq_bind_i64(&st, 26, o->lock_until_ms);
	sq_bind_i64(&st, 27, o->legal_hold ? 1 : 0);
	sq_run(&st);
	return sq_end_unique(&st, "version uid already in use");
}

enum kura_err sq_version_add(struct sq_conn *c, const struct kura_object *o,
			     const struct kura_put_cond *cond,
			     struct sq_blob_list *old, struct kura_error *err)
{
	struct version_ref newest, null_v;
	enum kura_err r = version_find(c, &sql_newest, o->bucket_id, o->key,
				       o->key_len, NULL, &newest, err);

	if (r == KURA_OK)
		r = cond_check(cond, &newest, err);
	/* The seal covers vseq, so the store cannot pick it: a writer
	 * that lost a race seals again with a larger one. */
	if (r == KURA_OK && newest.found && o->vseq <= newest.vseq)
		return kura_fail(err, KURA_ECONFLICT,
				 "a newer version was written meanwhile");
	if (r == KURA_OK && o->null_version)
		r = version_find(c, &sql_null_version, o->bucket_id, o->key,
				 o->key_len, NULL, &null_v, err);
	if (r == KURA_OK && o->null_version && null_v.found)
		r = lock_check(&null_v, false, err);
	if (r == KURA_OK && o->null_version && null_v.found)
		r = version_remove(c, null_v.uid, old, err);
	if (r == KURA_OK)
		r = object_insert(c, o, err);
	return r;
}

static const struct sq_sql sql_part_insert = {
	.what = "insert part",
	.text = "INSERT INTO parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms, bk_id) VALUES (?1, "
		"?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
};

static enum kura_err part_insert(struct sq_conn *c, const struct kura_object *o,
				 const struct kura_part *p,
				 struct kura_error *err)
{
	struct sq_blob_state bs;
	struct sq_stmt st;
	enum kura_err r = sq_blob_state(c, p->blob_id, &bs, err);

	if (r != KURA_OK)
		return r;
	if (bs.queued)
		return kura_fail(err, KURA_EEXIST,
				 "part %u names a blob queued for deletion",
				 p->part_no);
	if (bs.in_uploads)
		return kura_fail(err, KURA_EEXIST,
				 "part %u names a blob of an upload",
				 p->part_no);
	sq_begin(&st, c, &sql_part_insert, err);
	sq_bind_part(&st, o->version_uid, p, o->seal_len > 0);
	sq_run(&st);
	return sq_end_unique(&st, "part %u: blob id already in use",
			     p->part_no);
}

static const struct sq_sql sql_upload_uid_exists = {
	.what = "lookup",
	.text = "SELECT 1 FROM uploads WHERE version_uid = ?1",
};

/* The bucket exists, the uid is no upload's (an upload's uid becomes its
 * object's on completion), each part's bucket key is the bucket's. */
static enum kura_err object_put_check(struct sq_conn *c,
				      const struct kura_object *o,
				      struct kura_error *err)
{
	uint64_t known = 0;
	bool found = false;
	enum kura_err r = sq_bucket_check(c, o->bucket_id, err);

	if (r == KURA_OK)
		r = sq_exists_blob(c, &sql_upload_uid_exists, o->version_uid,
				   KURA_UID_LEN, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_EEXIST,
			      "version uid belongs to an upload");
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++)
		r = sq_bk_check(c, o->bucket_id, o->sse, &o->parts[i], &known,
				err);
	return r;
}

struct put_arg {
	const struct kura_object *o;
	const struct kura_put_cond *cond;
};

static enum kura_err object_put_body(struct sq_conn *c, void *arg,
				     struct kura_error *err)
{
	const struct put_arg *a = arg;
	const struct kura_object *o = a->o;
	struct sq_blob_list old = { NULL, 0 };
	enum kura_err r = object_put_check(c, o, err);

	if (r == KURA_OK)
		r = sq_version_add(c, o, a->cond, &old, err);
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++)
		r = part_insert(c, o, &o->parts[i], err);
	/* After the new parts exist, so a reused blob is not queued. */
	if (r == KURA_OK)
		r = sq_gc_queue(c, &old, err);
	free(old.ids);
	return r;
}

enum kura_err sq_object_put(void *priv, const struct kura_object *obj,
			    const struct kura_put_cond *cond,
			    struct kura_error *err)
{
	struct put_arg a = { obj, cond };
	enum kura_err r = sq_check_object(obj, false, err);

	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, object_put_body, &a, err);
}

struct delete_arg {
	uint64_t bucket_id;
	const char *key;
	size_t key_len;
	const uint8_t *uid;
	const struct kura_put_cond *cond;
	bool bypass_governance;
};

static enum kura_err object_delete_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	const struct delete_arg *a = arg;
	struct sq_blob_list old = { NULL, 0 };
	struct version_ref v, newest;
	enum kura_err r = version_named(c, a->bucket_id, a->key, a->key_len,
					a->uid, &v, err);

	if (r == KURA_OK && !v.found)
		return kura_fail(err, KURA_ENOENT, "no such version");
	if (r == KURA_OK && a->cond != NULL)
		r = version_find(c, &sql_newest, a->bucket_id, a->key,
				 a->key_len, NULL, &newest, err);
	if (r == KURA_OK && a->cond != NULL)
		r = cond_check(a->cond, &newest, err);
	if (r == KURA_OK)
		r = lock_check(&v, a->bypass_governance, err);
	if (r == KURA_OK)
		r = version_remove(c, v.uid, &old, err);
	if (r == KURA_OK)
		r = sq_gc_queue(c, &old, err);
	free(old.ids);
	return r;
}

enum kura_err sq_object_delete(void *priv, uint64_t bucket_id, const char *key,
			       size_t key_len, const uint8_t *version_uid,
			       const struct kura_put_cond *cond,
			       bool bypass_governance, struct kura_error *err)
{
	struct delete_arg a = { bucket_id,   key,  key_len,
				version_uid, cond, bypass_governance };
	enum kura_err r = sq_check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, object_delete_body, &a, err);
}

/* ---- reading ---- */

static const struct sq_sql sql_obj_get[3] = {
	{
		.what = "get object",
		.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key = ?2 "
				       "ORDER BY vseq DESC LIMIT 1",
	},
	{
		.what = "get object version",
		.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key = ?2 AND "
				       "version_uid = ?3",
	},
	{
		.what = "get object version",
		.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key = ?2 AND "
				       "null_version = 1",
	},
};

enum which_version {
	NEWEST_VERSION,
	VERSION_BY_UID,
	NULL_VERSION
};

/* The row and its parts, from one read transaction (one snapshot). */
static enum kura_err object_read(struct sq_conn *c, uint64_t bucket_id,
				 const char *key, size_t key_len,
				 enum which_version which, const uint8_t *uid,
				 struct kura_pool *pool, struct kura_object *o,
				 struct kura_error *err)
{
	struct sq_stmt st;
	bool found;
	enum kura_err r = sq_tx_begin(c, false, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_obj_get[which], err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_blob(&st, 2, key, key_len);
	if (which == VERSION_BY_UID)
		sq_bind_blob(&st, 3, uid, KURA_UID_LEN);
	found = sq_row(&st);
	if (found)
		sq_object_row(&st, bucket_id, pool, o);
	r = sq_end(&st);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no such object");
	if (r == KURA_OK)
		r = sq_parts_read(c, o, pool, err);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	return r;
}

static enum kura_err object_get(void *priv, uint64_t bucket_id, const char *key,
				size_t key_len, enum which_version which,
				const uint8_t *uid, struct kura_pool *pool,
				struct kura_object **out,
				struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_object *o;
	enum kura_err r = sq_check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	o = kura_palloc(pool, sizeof(*o));
	if (o == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = object_read(c, bucket_id, key, key_len, which, uid, pool, o,
				err);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*out = o;
	return r;
}

enum kura_err sq_object_get(void *priv, uint64_t bucket_id, const char *key,
			    size_t key_len, struct kura_pool *pool,
			    struct kura_object **out, struct kura_error *err)
{
	return object_get(priv, bucket_id, key, key_len, NEWEST_VERSION, NULL,
			  pool, out, err);
}

enum kura_err sq_object_get_version(void *priv, uint64_t bucket_id,
				    const char *key, size_t key_len,
				    const uint8_t *version_uid,
				    struct kura_pool *pool,
				    struct kura_object **out,
				    struct kura_error *err)
{
	return object_get(priv, bucket_id, key, key_len,
			  version_uid != NULL ? VERSION_BY_UID : NULL_VERSION,
			  version_uid, pool, out, err);
}

/* ---- listing ---- */

/* Byte-order comparison as SQLite compares BLOBs: memcmp, then length. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int d = memcmp(a, b, alen < blen ? alen : blen);

	if (d != 0)
		return d;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/*
 * The least byte string greater than every string starting with prefix:
 * drop trailing 0xFF bytes, then increment the last byte.  *len is 0 when
 * there is none (prefix empty or all 0xFF), meaning no upper bound.
 */
static void prefix_successor(const char *prefix, size_t prefix_len,
			     unsigned char *out, size_t *len)
{
	size_t n = prefix_len;

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n > 0) {
		memcpy(out, prefix, n);
		out[n - 1]++;
	}
	*len = n;
}

enum kura_err sq_range_init(struct sq_range *rg, const char *prefix,
			    size_t prefix_len, const char *marker,
			    size_t marker_len, struct kura_error *err)
{
	memset(rg, 0, sizeof(*rg));
	if (prefix_len > 0) {
		rg->bound = SQ_LOWER_GE;
		rg->lower = prefix;
		rg->lower_len = prefix_len;
	}
	/* Every key under the prefix sorts after a marker below it; a
	 * marker at or above the prefix is the tighter bound. */
	if (marker_len > 0 &&
	    (prefix_len == 0 ||
	     bytes_cmp(marker, marker_len, prefix, prefix_len) >= 0)) {
		rg->bound = SQ_LOWER_GT;
		rg->lower = marker;
		rg->lower_len = marker_len;
	}
	if (prefix_len > 0) {
		rg->upper = malloc(prefix_len);
		if (rg->upper == NULL)
			return kura_fail(err, KURA_ENOMEM, "out of memory");
		prefix_successor(prefix, prefix_len, rg->upper, &rg->upper_len);
	}
	return KURA_OK;
}

void sq_range_release(struct sq_range *rg)
{
	free(rg->upper);
	rg->upper = NULL;
}

/* By lower bound (none, >= prefix, > after) times upper bound (none,
 * < successor(prefix)).  Rows come in primary-key order: keys ascending,
 * each key's versions newest first.  No LIMIT: the reader stops when its
 * page is full. */
#define LIST_TAIL " ORDER BY key, vseq DESC"
static const struct sq_sql sql_list[6] = {
	{
		.what = "list objects",
		.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1" LIST_TAIL,
	},
	{
		.what = "list objects",
		.text = SQ_OBJECT_COLS
		"WHERE bucket_id = ?1 AND key < ?3" LIST_TAIL,
	},
	{
		.what = "list objects",
		.text = SQ_OBJECT_COLS
		"WHERE bucket_id = ?1 AND key >= ?2" LIST_TAIL,
	},
	{
		.what = "list objects",
		.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key >= ?2 "
				       "AND key < ?3" LIST_TAIL,
	},
	{
		.what = "list objects",
		.text = SQ_OBJECT_COLS
		"WHERE bucket_id = ?1 AND key > ?2" LIST_TAIL,
	},
	{
		.what = "list objects",
		.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key > ?2 "
				       "AND key < ?3" LIST_TAIL,
	},
};

/* Older versions of one key stepped over before seeking past the key
 * instead: a key with a million versions costs one seek, not a scan. */
#define SKIP_BEFORE_SEEK 8

static void range_begin(struct sq_stmt *st, struct sq_conn *c,
			uint64_t bucket_id, const struct sq_range *rg,
			struct kura_error *err)
{
	sq_begin(st, c, &sql_list[rg->bound * 2 + (rg->upper_len > 0)], err);
	sq_bind_u64(st, 1, bucket_id);
	if (rg->bound != SQ_LOWER_NONE)
		sq_bind_blob(st, 2, rg->lower, rg->lower_len);
	if (rg->upper_len > 0)
		sq_bind_blob(st, 3, rg->upper, rg->upper_len);
}

/* The key of the statement's current row (column 0). */
struct row_key {
	unsigned char b[KURA_OBJECT_KEY_MAX];
	size_t len;
	bool set;
};

static bool row_key_is(struct sq_stmt *st, const struct row_key *k)
{
	const void *p = sqlite3_column_blob(st->s, 0);
	int n = sqlite3_column_bytes(st->s, 0);

	return k->set && (size_t)n == k->len &&
	       (n == 0 || memcmp(p, k->b, (size_t)n) == 0);
}

static void row_key_take(struct sq_stmt *st, struct row_key *k)
{
	const void *p = sqlite3_column_blob(st->s, 0);
	int n = sqlite3_column_bytes(st->s, 0);

	/* The schema bounds keys; a longer one is caught by the row
	 * reader. */
	k->len = n < 0			  ? 0 :
		 (size_t)n > sizeof(k->b) ? sizeof(k->b) :
					    (size_t)n;
	if (k->len > 0)
		memcpy(k->b, p, k->len);
	k->set = true;
}

/* State of a listing of current objects across its seeks. */
struct current_page {
	struct sq_array a;
	size_t limit;
	struct row_key last; /* the last key seen */
	struct row_key seek; /* bound by the statement after a seek */
};

/* One statement's worth: each key's newest version unless it is a delete
 * marker.  *seek when a key's older versions were many: the caller
 * starts again after that key. */
static enum kura_err current_rows(struct sq_conn *c, uint64_t bucket_id,
				  const struct sq_range *rg,
				  struct current_page *pg,
				  struct kura_pool *pool, bool *seek,
				  struct kura_error *err)
{
	struct sq_stmt st;
	struct kura_object *o;
	unsigned skipped = 0;

	*seek = false;
	range_begin(&st, c, bucket_id, rg, err);
	while (pg->a.n < pg->limit && sq_row(&st)) {
		if (row_key_is(&st, &pg->last)) {
			if (++skipped > SKIP_BEFORE_SEEK) {
				*seek = true;
				break;
			}
			continue;
		}
		skipped = 0;
		row_key_take(&st, &pg->last);
		if (sqlite3_column_int64(st.s, 22) != 0)
			continue; /* the key's newest version is a marker */
		o = sq_array_add(&pg->a, &st);
		if (o == NULL)
			break;
		sq_object_row(&st, bucket_id, pool, o);
	}
	return sq_end(&st);
}

static enum kura_err list_page(struct sq_conn *c, uint64_t bucket_id,
			       struct sq_range *rg, size_t limit,
			       struct kura_pool *pool, void **out,
			       size_t *count, struct kura_error *err)
{
	struct current_page *pg = malloc(sizeof(*pg));
	bool seek = true;
	enum kura_err r;

	if (pg == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	memset(pg, 0, sizeof(*pg));
	pg->limit = limit;
	/* A page at once: rows are whole object rows, growing copies
	 * them. */
	sq_array_init(&pg->a, sizeof(struct kura_object),
		      limit < 1024 ? limit : 1024, false);
	/* One snapshot for the page, whatever the seeks. */
	r = sq_tx_begin(c, false, err);
	while (r == KURA_OK && seek) {
		r = current_rows(c, bucket_id, rg, pg, pool, &seek, err);
		if (r == KURA_OK && seek) {
			pg->seek = pg->last;
			rg->bound = SQ_LOWER_GT;
			rg->lower = (const char *)pg->seek.b;
			rg->lower_len = pg->seek.len;
		}
	}
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	r = sq_array_end(&pg->a, r, pool, out, count, err);
	free(pg);
	return r;
}

enum kura_err sq_object_list(void *priv, uint64_t bucket_id, const char *prefix,
			     size_t prefix_len, const char *after,
			     size_t after_len, size_t limit,
			     struct kura_pool *pool, struct kura_object **out,
			     size_t *count, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_range rg;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	if ((prefix == NULL && prefix_len > 0) ||
	    (after == NULL && after_len > 0))
		return kura_fail(err, KURA_EINVAL, "bad listing bounds");
	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	r = sq_range_init(&rg, prefix, prefix_len, after, after_len, err);
	if (r == KURA_OK)
		r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = list_page(c, bucket_id, &rg, limit, pool, &res, &n, err);
	sq_conn_release(m, c);
	sq_range_release(&rg);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* ---- listing versions ---- */

static const struct sq_sql sql_key_older = {
	.what = "list object versions",
	.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key = ?2 AND "
			       "vseq < ?3 ORDER BY vseq DESC",
};

struct versions_page {
	uint64_t bucket_id;
	size_t limit;
	struct sq_array a;
	struct kura_pool *pool;
	struct row_key last;
};

/* Take the statement's row; is_latest when it is its key's first. */
static bool version_take(struct sq_stmt *st, struct versions_page *pg,
			 bool first_of_key)
{
	struct kura_object *o = sq_array_add(&pg->a, st);

	if (o == NULL)
		return false;
	sq_object_row(st, pg->bucket_id, pg->pool, o);
	o->is_latest = first_of_key;
	return true;
}

/* The versions of key `after` older than after_vseq (the rest of a key a
 * previous page ended in). */
static enum kura_err versions_of_marker(struct sq_conn *c,
					struct versions_page *pg,
					const char *after, size_t after_len,
					uint64_t after_vseq,
					struct kura_error *err)
{
	struct sq_stmt st;
	struct version_ref newest;
	bool first = true;
	/* The marker's version may be gone: then the first older one
	 * may be the newest. */
	enum kura_err r = version_find(c, &sql_newest, pg->bucket_id, after,
				       after_len, NULL, &newest, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_key_older, err);
	sq_bind_u64(&st, 1, pg->bucket_id);
	sq_bind_blob(&st, 2, after, after_len);
	sq_bind_i64(&st, 3,
		    after_vseq > INT64_MAX ? INT64_MAX : (int64_t)after_vseq);
	while (pg->a.n < pg->limit && sq_row(&st)) {
		bool latest = first && newest.found &&
			      (uint64_t)sqlite3_column_int64(st.s, 20) ==
				      newest.vseq;
		if (!version_take(&st, pg, latest))
			break;
		first = false;
	}
	return sq_end(&st);
}

static enum kura_err versions_after(struct sq_conn *c, struct versions_page *pg,
				    const struct sq_range *rg,
				    struct kura_error *err)
{
	struct sq_stmt st;

	range_begin(&st, c, pg->bucket_id, rg, err);
	while (pg->a.n < pg->limit && sq_row(&st)) {
		bool first = !row_key_is(&st, &pg->last);
		if (first)
			row_key_take(&st, &pg->last);
		if (!version_take(&st, pg, first))
			break;
	}
	return sq_end(&st);
}

static bool has_prefix(const char *s, size_t n, const char *prefix,
		       size_t prefix_len)
{
	return n >= prefix_len &&
	       (prefix_len == 0 || memcmp(s, prefix, prefix_len) == 0);
}

enum kura_err sq_object_list_versions(void *priv, uint64_t bucket_id,
				      const char *prefix, size_t prefix_len,
				      const char *after, size_t after_len,
				      uint64_t after_vseq, size_t limit,
				      struct kura_pool *pool,
				      struct kura_object **out, size_t *count,
				      struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct versions_page *pg;
	struct sq_range rg;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	if ((prefix == NULL && prefix_len > 0) ||
	    (after == NULL && after_len > 0) ||
	    (after_len == 0 && after_vseq > 0))
		return kura_fail(err, KURA_EINVAL, "bad listing bounds");
	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	pg->bucket_id = bucket_id;
	pg->limit = limit;
	pg->pool = pool;
	sq_array_init(&pg->a, sizeof(struct kura_object),
		      limit < 1024 ? limit : 1024, false);
	r = sq_range_init(&rg, prefix, prefix_len, after, after_len, err);
	if (r == KURA_OK)
		r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = sq_tx_begin(c, false, err);
	if (r == KURA_OK && after_vseq > 0 &&
	    has_prefix(after, after_len, prefix, prefix_len))
		r = versions_of_marker(c, pg, after, after_len, after_vseq,
				       err);
	if (r == KURA_OK && pg->a.n < limit)
		r = versions_after(c, pg, &rg, err);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	sq_conn_release(m, c);
	sq_range_release(&rg);
	r = sq_array_end(&pg->a, r, pool, &res, &n, err);
	free(pg);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* ---- tags ---- */

static const struct sq_sql sql_obj_set_tags = {
	.what = "set object tags",
	.text = "UPDATE objects SET tags_json = ?4, seal = ?5, seal_bk_id = "
		"?6 WHERE bucket_id = ?1 AND key = ?2 AND version_uid = ?3 "
		/* the seal the caller read */
		"AND seal IS NOT DISTINCT FROM ?7",
};

struct tags_arg {
	uint64_t bucket_id;
	const char *key;
	size_t key_len;
	const uint8_t *version_uid;
	const uint8_t *old_seal;
	size_t old_len;
	const char *tags_json;
	const uint8_t *seal;
	size_t seal_len;
	uint64_t seal_bk_id;
};

static enum kura_err set_tags_body(struct sq_conn *c, void *arg,
				   struct kura_error *err)
{
	struct tags_arg *a = arg;
	struct sq_stmt st;
	struct version_ref v;
	enum kura_err r;

	sq_begin(&st, c, &sql_obj_set_tags, err);
	sq_bind_u64(&st, 1, a->bucket_id);
	sq_bind_blob(&st, 2, a->key, a->key_len);
	sq_bind_blob(&st, 3, a->version_uid, KURA_UID_LEN);
	sq_bind_text(&st, 4, a->tags_json);
	sq_bind_seal(&st, 5, a->seal, a->seal_len, a->seal_bk_id);
	sq_bind_opt_blob(&st, 7, a->old_seal, a->old_len);
	r = sq_exec(&st);
	if (r != KURA_OK || st.changes > 0)
		return r;
	r = version_find(c, &sql_uid_version, a->bucket_id, a->key, a->key_len,
			 a->version_uid, &v, err);
	/* Gone, but the key has a newer version: the caller that asked
	 * for the newest reads it again. */
	if (r == KURA_OK && !v.found)
		r = version_find(c, &sql_newest, a->bucket_id, a->key,
				 a->key_len, NULL, &v, err);
	if (r != KURA_OK)
		return r;
	if (v.found)
		return kura_fail(err, KURA_ESTATE, "the object was changed");
	return kura_fail(err, KURA_ENOENT, "no such object");
}

enum kura_err sq_object_set_tags(void *priv, uint64_t bucket_id,
				 const char *key, size_t key_len,
				 const uint8_t version_uid[KURA_UID_LEN],
				 const uint8_t *old_seal, size_t old_len,
				 const char *tags_json, const uint8_t *seal,
				 size_t seal_len, uint64_t seal_bk_id,
				 struct kura_error *err)
{
	struct tags_arg a = { bucket_id, key,	    key_len,   version_uid,
			      old_seal,	 old_len,   tags_json, seal,
			      seal_len,	 seal_bk_id };
	enum kura_err r = sq_check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	if (version_uid == NULL || seal_len > KURA_SEAL_MAX ||
	    (seal_len > 0 && seal == NULL) || old_len > KURA_SEAL_MAX ||
	    (old_len > 0 && old_seal == NULL))
		return kura_fail(err, KURA_EINVAL, "bad tag update");
	return sq_write_tx(priv, set_tags_body, &a, err);
}

/* ---- Object Lock settings ---- */

static const struct sq_sql sql_obj_set_lock = {
	.what = "set object lock",
	.text = "UPDATE objects SET lock_mode = ?4, lock_until_ms = ?5, "
		"legal_hold = ?6, seal = ?7, seal_bk_id = ?8 WHERE bucket_id = "
		"?1 AND key = ?2 AND version_uid = ?3 AND seal IS NOT DISTINCT "
		"FROM ?9",
};

struct lock_arg {
	const struct kura_object *o;
	const uint8_t *old_seal;
	size_t old_len;
};

static enum kura_err set_lock_body(struct sq_conn *c, void *arg,
				   struct kura_error *err)
{
	const struct lock_arg *a = arg;
	const struct kura_object *o = a->o;
	struct sq_stmt st;
	struct version_ref v;
	enum kura_err r;

	sq_begin(&st, c, &sql_obj_set_lock, err);
	sq_bind_u64(&st, 1, o->bucket_id);
	sq_bind_blob(&st, 2, o->key, o->key_len);
	sq_bind_blob(&st, 3, o->version_uid, KURA_UID_LEN);
	sq_bind_i64(&st, 4, (int)o->lock_mode);
	sq_bind_i64(&st, 5, o->lock_until_ms);
	sq_bind_i64(&st, 6, o->legal_hold ? 1 : 0);
	sq_bind_seal(&st, 7, o->seal, o->seal_len, o->seal_bk_id);
	sq_bind_opt_blob(&st, 9, a->old_seal, a->old_len);
	r = sq_exec(&st);
	if (r != KURA_OK || st.changes > 0)
		return r;
	r = version_find(c, &sql_uid_version, o->bucket_id, o->key, o->key_len,
			 o->version_uid, &v, err);
	if (r != KURA_OK)
		return r;
	if (v.found)
		return kura_fail(err, KURA_ESTATE, "the object was changed");
	return kura_fail(err, KURA_ENOENT, "no such version");
}

enum kura_err sq_object_set_lock(void *priv, const struct kura_object *o,
				 const uint8_t *old_seal, size_t old_len,
				 struct kura_error *err)
{
	struct lock_arg a = { o, old_seal, old_len };
	enum kura_err r = o != NULL ? sq_check_key(o->key, o->key_len, err) :
				      kura_fail(err, KURA_EINVAL, "no object");

	if (r == KURA_OK)
		r = sq_check_lock(o->lock_mode, o->lock_until_ms, err);
	if (r != KURA_OK)
		return r;
	if (o->seal_len > KURA_SEAL_MAX ||
	    (o->seal_len > 0 && o->seal_bk_id == 0) ||
	    old_len > KURA_SEAL_MAX || (old_len > 0 && old_seal == NULL))
		return kura_fail(err, KURA_EINVAL, "bad lock update");
	return sq_write_tx(priv, set_lock_body, &a, err);
}

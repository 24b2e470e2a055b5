/*
 * objects.c — objects in the SQLite metadata store: the current version of
 * each (bucket, key) with its parts (one blob each), tags, listing, and
 * the row readers and binders that uploads.c and seals.c share.
 *
 * Replacing or deleting an object moves its version out in the same
 * transaction: its blob ids are queued for gc (gc.c) after the new parts
 * exist, so a blob the new version reuses is not queued.  A new part may
 * not name a blob already queued (it may be being deleted right now) nor
 * one of an upload.  A version uid is an object's or an upload's, never
 * both (completing an upload turns its uid into the object's).
 *
 * Listing: object keys are BLOBs, compared with memcmp then length —
 * exactly S3's UTF-8 byte order — and objects is clustered on
 * (bucket_id, key), so a page is one range search of the primary key:
 * key >= prefix (or > after, the tighter) AND key < successor(prefix).
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdlib.h>

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

static const struct sq_sql sql_obj_version = {
	.what = "find object",
	.text = "SELECT version_uid FROM objects WHERE bucket_id = ?1 AND "
		"key = ?2",
};
static const struct sq_sql sql_parts_blobs = {
	.what = "read parts",
	.text = "SELECT blob_id FROM parts WHERE version_uid = ?1",
};
static const struct sq_sql sql_parts_delete = {
	.what = "delete parts",
	.text = "DELETE FROM parts WHERE version_uid = ?1",
};
static const struct sq_sql sql_obj_delete = {
	.what = "delete object",
	.text = "DELETE FROM objects WHERE bucket_id = ?1 AND key = ?2",
};

/* Whether (bucket, key) exists, and its version uid (when uid is not
 * NULL). */
static enum kura_err object_find(struct sq_conn *c, uint64_t bucket_id,
				 const char *key, size_t key_len, uint8_t *uid,
				 bool *found, struct kura_error *err)
{
	struct sq_stmt st;
	bool row;
	enum kura_err r;

	sq_begin(&st, c, &sql_obj_version, err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_blob(&st, 2, key, key_len);
	row = sq_row(&st);
	if (row && uid != NULL)
		sq_col_blob(&st, 0, uid, KURA_UID_LEN, NULL, "version uid");
	r = sq_end(&st);
	if (r == KURA_OK)
		*found = row;
	return r;
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

enum kura_err sq_object_remove(struct sq_conn *c, uint64_t bucket_id,
			       const char *key, size_t key_len, bool *found,
			       struct sq_blob_list *out, struct kura_error *err)
{
	struct sq_blob_list bl = { NULL, 0 };
	struct sq_stmt st;
	uint8_t uid[KURA_UID_LEN];
	enum kura_err r =
		object_find(c, bucket_id, key, key_len, uid, found, err);

	if (r != KURA_OK || !*found)
		return r;
	r = parts_blobs(c, uid, &bl, err);
	/* Parts first: they reference the object row. */
	if (r == KURA_OK)
		r = sq_exec_uid(c, &sql_parts_delete, uid, err);
	if (r == KURA_OK) {
		sq_begin(&st, c, &sql_obj_delete, err);
		sq_bind_u64(&st, 1, bucket_id);
		sq_bind_blob(&st, 2, key, key_len);
		r = sq_exec(&st);
	}
	if (r != KURA_OK) {
		free(bl.ids);
		return r;
	}
	*out = bl;
	return KURA_OK;
}

static const struct sq_sql sql_obj_insert = {
	.what = "insert object",
	.text = "INSERT INTO objects (bucket_id, key, version_uid, size, "
		"etag, mtime_ms, content_type, content_encoding, "
		"content_language, content_disposition, cache_control, "
		"expires, user_meta_json, tags_json, part_count, sse, "
		"kms_key_id, ssec_hmac, seal, seal_bk_id, parts_digest) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
		"?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
};

enum kura_err sq_object_insert(struct sq_conn *c, const struct kura_object *o,
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
	sq_run(&st);
	return sq_end_unique(&st, "version uid already in use");
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

static enum kura_err object_put_body(struct sq_conn *c, void *arg,
				     struct kura_error *err)
{
	const struct kura_object *o = arg;
	struct sq_blob_list old = { NULL, 0 };
	bool found = false;
	enum kura_err r = object_put_check(c, o, err);

	if (r == KURA_OK)
		r = sq_object_remove(c, o->bucket_id, o->key, o->key_len,
				     &found, &old, err);
	if (r == KURA_OK)
		r = sq_object_insert(c, o, err);
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++)
		r = part_insert(c, o, &o->parts[i], err);
	/* After the new parts exist, so a reused blob is not queued. */
	if (r == KURA_OK)
		r = sq_gc_queue(c, &old, err);
	free(old.ids);
	return r;
}

enum kura_err sq_object_put(void *priv, const struct kura_object *obj,
			    struct kura_error *err)
{
	enum kura_err r = sq_check_object(obj, false, err);

	if (r != KURA_OK)
		return r;
	return sq_write_tx(priv, object_put_body, (void *)obj, err);
}

static enum kura_err object_delete_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	const struct kura_object *o = arg;
	struct sq_blob_list old = { NULL, 0 };
	bool found = false;
	enum kura_err r = sq_object_remove(c, o->bucket_id, o->key, o->key_len,
					   &found, &old, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no such object");
	if (r == KURA_OK)
		r = sq_gc_queue(c, &old, err);
	free(old.ids);
	return r;
}

enum kura_err sq_object_delete(void *priv, uint64_t bucket_id, const char *key,
			       size_t key_len, struct kura_error *err)
{
	struct kura_object o = { 0 };
	enum kura_err r = sq_check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	o.bucket_id = bucket_id;
	o.key = key;
	o.key_len = key_len;
	return sq_write_tx(priv, object_delete_body, &o, err);
}

/* ---- reading ---- */

static const struct sq_sql sql_obj_get = {
	.what = "get object",
	.text = SQ_OBJECT_COLS "WHERE bucket_id = ?1 AND key = ?2",
};

/* The row and its parts, from one read transaction (one snapshot). */
static enum kura_err object_read(struct sq_conn *c, uint64_t bucket_id,
				 const char *key, size_t key_len,
				 struct kura_pool *pool, struct kura_object *o,
				 struct kura_error *err)
{
	struct sq_stmt st;
	bool found;
	enum kura_err r = sq_tx_begin(c, false, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_obj_get, err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_blob(&st, 2, key, key_len);
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

enum kura_err sq_object_get(void *priv, uint64_t bucket_id, const char *key,
			    size_t key_len, struct kura_pool *pool,
			    struct kura_object **out, struct kura_error *err)
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
		r = object_read(c, bucket_id, key, key_len, pool, o, err);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*out = o;
	return r;
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
 * < successor(prefix)). */
#define LIST_TAIL " ORDER BY key LIMIT ?4"
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

static enum kura_err list_page(struct sq_conn *c, uint64_t bucket_id,
			       const struct sq_range *rg, size_t limit,
			       struct kura_pool *pool, void **out,
			       size_t *count, struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	struct kura_object *o;

	/* A page at once: rows are whole object rows, growing copies
	 * them. */
	sq_array_init(&a, sizeof(*o), limit < 1024 ? limit : 1024, false);
	sq_begin(&st, c, &sql_list[rg->bound * 2 + (rg->upper_len > 0)], err);
	sq_bind_u64(&st, 1, bucket_id);
	if (rg->bound != SQ_LOWER_NONE)
		sq_bind_blob(&st, 2, rg->lower, rg->lower_len);
	if (rg->upper_len > 0)
		sq_bind_blob(&st, 3, rg->upper, rg->upper_len);
	sq_bind_i64(&st, 4, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	while (sq_row(&st) && (o = sq_array_add(&a, &st)) != NULL)
		sq_object_row(&st, bucket_id, pool, o);
	return sq_array_end(&a, sq_end(&st), pool, out, count, err);
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
	bool found = false;
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
	r = object_find(c, a->bucket_id, a->key, a->key_len, NULL, &found, err);
	if (r != KURA_OK)
		return r;
	if (found)
		return kura_fail(err, KURA_ESTATE, "the object was replaced");
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

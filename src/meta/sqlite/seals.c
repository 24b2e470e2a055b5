/*
 * seals.c — metadata seals in the SQLite metadata store (schema 5): the
 * rows to seal — those never sealed (written before schema 5) or sealed
 * by a bucket key that a rotation retired — and storing their new seals.
 *
 * The store keeps seals opaquely; they are made and opened above it
 * (src/kms/seal.c).  A row never sealed has a NULL seal_bk_id, the first
 * column of the indexes that find them.  Storing a seal is conditional on
 * the row still being sealed as it was listed (by the old bucket key, or
 * not at all) with the very seal listed, so a row changed meanwhile is
 * left alone; a first seal
 * also removes the clear ETags of the row and of its parts.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include "sqlite_int.h"
#include "kura/banned.h"

static const struct sq_sql sql_seal_pending_buckets = {
	.what = "list buckets to seal",
	.text = "SELECT bucket_id FROM objects WHERE seal_bk_id IS NULL "
		"UNION SELECT bucket_id FROM uploads WHERE seal_bk_id IS "
		"NULL UNION SELECT u.bucket_id FROM upload_parts p JOIN "
		"uploads u ON u.version_uid = p.version_uid WHERE "
		"p.seal_bk_id IS NULL ORDER BY 1 LIMIT ?1",
};
/* The same after bucket ?2 (in the signed order of the column). */
static const struct sq_sql sql_seal_pending_buckets_after = {
	.what = "list buckets to seal",
	.text = "SELECT bucket_id FROM objects WHERE seal_bk_id IS NULL AND "
		"bucket_id > ?2 UNION SELECT bucket_id FROM uploads WHERE "
		"seal_bk_id IS NULL AND bucket_id > ?2 UNION SELECT u.bucket_id "
		"FROM upload_parts p JOIN uploads u ON u.version_uid = p.version_uid "
		"WHERE p.seal_bk_id IS NULL AND u.bucket_id > ?2 ORDER BY 1 LIMIT ?1",
};

enum kura_err sq_seal_pending_buckets(void *priv, const uint64_t *after,
				      uint64_t *ids, size_t max, size_t *count,
				      struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	size_t n = 0;
	enum kura_err r;

	if (max == 0) {
		*count = 0;
		return KURA_OK;
	}
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c,
		 after ? &sql_seal_pending_buckets_after :
			 &sql_seal_pending_buckets,
		 err);
	sq_bind_i64(&st, 1, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if (after != NULL)
		sq_bind_u64(&st, 2, *after);
	while (n < max && sq_row(&st))
		ids[n++] = sq_col_u64(&st, 0);
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*count = n;
	return r;
}

/* ---- rows to seal ---- */

/* ?1: the sealing bucket key, NULL for rows never sealed. */
static const struct sq_sql sql_seal_objects = {
	.what = "list objects to seal",
	.text = SQ_OBJECT_COLS "WHERE seal_bk_id IS NOT DISTINCT FROM ?1 AND "
			       "bucket_id = ?2 LIMIT ?3",
};
static const struct sq_sql sql_seal_uploads = {
	.what = "list uploads to seal",
	.text = SQ_UPLOAD_COLS "WHERE seal_bk_id IS NOT DISTINCT FROM ?1 AND "
			       "bucket_id = ?2 LIMIT ?3",
};
static const struct sq_sql sql_seal_uparts = {
	.what = "list upload parts to seal",
	.text = "SELECT p.part_no, p.blob_id, p.size, p.seg_size, "
		"p.dek_wrapped, p.etag, p.mtime_ms, p.bk_id, p.seal, "
		"p.seal_bk_id, p.version_uid FROM upload_parts p JOIN "
		"uploads u ON u.version_uid = p.version_uid WHERE "
		"p.seal_bk_id IS NOT DISTINCT FROM ?1 AND u.bucket_id = ?2 "
		"LIMIT ?3",
};

/* What to seal: rows of one bucket, sealed by bk_id (0: never sealed). */
struct seal_scope {
	uint64_t bucket_id;
	uint64_t tenant_id;
	uint64_t bk_id;
	size_t limit;
};

static void seal_list_begin(struct sq_stmt *st, struct sq_conn *c,
			    const struct sq_sql *sql,
			    const struct seal_scope *sc, struct kura_error *err)
{
	sq_begin(st, c, sql, err);
	sq_bind_opt_u64(st, 1, sc->bk_id);
	sq_bind_u64(st, 2, sc->bucket_id);
	sq_bind_i64(st, 3, (int64_t)sc->limit);
}

/* The objects of a batch, with their parts when never sealed (the seal's
 * parts digest needs them). */
static enum kura_err seal_objects(struct sq_conn *c,
				  const struct seal_scope *sc,
				  struct kura_pool *pool,
				  struct kura_seal_batch *out,
				  struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	struct kura_object *o;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	sq_array_init(&a, sizeof(*o), 16, false);
	seal_list_begin(&st, c, &sql_seal_objects, sc, err);
	while (sq_row(&st) && (o = sq_array_add(&a, &st)) != NULL) {
		sq_object_row(&st, sc->bucket_id, pool, o);
		o->tenant_id = sc->tenant_id;
	}
	r = sq_end(&st);
	o = (struct kura_object *)(void *)a.v;
	for (size_t i = 0; sc->bk_id == 0 && r == KURA_OK && i < a.n; i++)
		r = sq_parts_read(c, &o[i], pool, err);
	r = sq_array_end(&a, r, pool, &res, &n, err);
	if (r == KURA_OK) {
		out->objects = res;
		out->n_objects = n;
	}
	return r;
}

static enum kura_err seal_uploads(struct sq_conn *c,
				  const struct seal_scope *sc,
				  struct kura_pool *pool,
				  struct kura_seal_batch *out,
				  struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	struct kura_upload *u;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	sq_array_init(&a, sizeof(*u), 16, false);
	seal_list_begin(&st, c, &sql_seal_uploads, sc, err);
	while (sq_row(&st) && (u = sq_array_add(&a, &st)) != NULL) {
		sq_upload_row(&st, pool, u);
		u->tenant_id = sc->tenant_id;
	}
	r = sq_array_end(&a, sq_end(&st), pool, &res, &n, err);
	if (r == KURA_OK) {
		out->uploads = res;
		out->n_uploads = n;
	}
	return r;
}

static enum kura_err seal_uparts(struct sq_conn *c, const struct seal_scope *sc,
				 struct kura_pool *pool,
				 struct kura_seal_batch *out,
				 struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	struct kura_upload_part *p;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	sq_array_init(&a, sizeof(*p), 16, false);
	seal_list_begin(&st, c, &sql_seal_uparts, sc, err);
	while (sq_row(&st) && (p = sq_array_add(&a, &st)) != NULL) {
		sq_part_row(&st, &p->part);
		sq_col_blob(&st, 10, p->version_uid, KURA_UID_LEN, NULL,
			    "version uid");
		p->tenant_id = sc->tenant_id;
		p->bucket_id = sc->bucket_id;
	}
	r = sq_array_end(&a, sq_end(&st), pool, &res, &n, err);
	if (r == KURA_OK) {
		out->parts = res;
		out->n_parts = n;
	}
	return r;
}

/* The batch from one read transaction: rows and their parts from one
 * snapshot. */
static enum kura_err seal_batch(struct sq_conn *c, struct seal_scope *sc,
				struct kura_pool *pool,
				struct kura_seal_batch *b,
				struct kura_error *err)
{
	enum kura_err r = sq_tx_begin(c, false, err);

	if (r == KURA_OK)
		r = sq_bucket_tenant(c, sc->bucket_id, &sc->tenant_id, err);
	if (r == KURA_OK)
		r = seal_objects(c, sc, pool, b, err);
	if (r == KURA_OK)
		r = seal_uploads(c, sc, pool, b, err);
	if (r == KURA_OK)
		r = seal_uparts(c, sc, pool, b, err);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	return r;
}

enum kura_err sq_seal_next(void *priv, uint64_t bucket_id, uint64_t bk_id,
			   size_t limit, struct kura_pool *pool,
			   struct kura_seal_batch *out, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct seal_scope sc = { bucket_id, 0, bk_id, limit };
	struct kura_seal_batch b = { 0 };
	struct sq_conn *c = NULL;
	enum kura_err r;

	if (sc.limit > SQ_BATCH_MAX)
		sc.limit = SQ_BATCH_MAX; /* "up to limit" */
	if (sc.limit == 0) {
		*out = b;
		return KURA_OK;
	}
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = seal_batch(c, &sc, pool, &b, err);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*out = b;
	return r;
}

/* ---- storing seals ---- */

/* A seal is swapped only for the very one read (compare and swap): a row
 * changed meanwhile — a tagging call, another re-seal — is left alone. */
static const struct sq_sql sql_seal_object = {
	.what = "store seal",
	.text = "UPDATE objects SET seal = ?2, seal_bk_id = ?3, parts_digest "
		"= ?4, etag = '' WHERE version_uid = ?1 AND seal_bk_id IS "
		"NOT DISTINCT FROM ?5 AND seal IS NOT DISTINCT FROM ?6",
};
static const struct sq_sql sql_seal_object_parts = {
	.what = "clear part etags",
	.text = "UPDATE parts SET etag = '' WHERE version_uid = ?1",
};
static const struct sq_sql sql_seal_upload = {
	.what = "store seal",
	.text = "UPDATE uploads SET seal = ?2, seal_bk_id = ?3 WHERE "
		"version_uid = ?1 AND seal_bk_id IS NOT DISTINCT FROM ?4 AND "
		"seal IS NOT DISTINCT FROM ?5",
};
static const struct sq_sql sql_seal_upart = {
	.what = "store seal",
	.text = "UPDATE upload_parts SET seal = ?3, seal_bk_id = ?4, etag = "
		"'' WHERE version_uid = ?1 AND part_no = ?2 AND seal_bk_id "
		"IS NOT DISTINCT FROM ?5 AND seal IS NOT DISTINCT FROM ?6",
};

struct seal_apply_arg {
	const struct kura_seal_batch *b;
	const struct kura_new_seal *objects, *uploads, *parts;
	size_t applied;
};

/* Run the bound update st; count the row it changed. */
static enum kura_err seal_store(struct sq_stmt *st, struct seal_apply_arg *a,
				bool *changed)
{
	enum kura_err r = sq_exec(st);

	*changed = r == KURA_OK && st->changes > 0;
	if (*changed)
		a->applied++;
	return r;
}

static enum kura_err seal_apply_object(struct sq_conn *c,
				       struct seal_apply_arg *a,
				       const struct kura_object *o,
				       const struct kura_new_seal *ns,
				       struct kura_error *err)
{
	struct sq_stmt st;
	bool changed = false;
	enum kura_err r;

	sq_begin(&st, c, &sql_seal_object, err);
	sq_bind_blob(&st, 1, o->version_uid, KURA_UID_LEN);
	sq_bind_seal(&st, 2, ns->seal, ns->seal_len, ns->seal_bk_id);
	sq_bind_blob(&st, 4, ns->parts_digest, KURA_PARTS_DIGEST_LEN);
	sq_bind_opt_u64(&st, 5, o->seal_bk_id);
	sq_bind_opt_blob(&st, 6, o->seal, o->seal_len);
	r = seal_store(&st, a, &changed);
	/* A first seal also takes the clear ETags of the parts. */
	if (r == KURA_OK && changed && o->seal_len == 0)
		r = sq_exec_uid(c, &sql_seal_object_parts, o->version_uid, err);
	return r;
}

static enum kura_err seal_apply_upload(struct sq_conn *c,
				       struct seal_apply_arg *a,
				       const struct kura_upload *u,
				       const struct kura_new_seal *ns,
				       struct kura_error *err)
{
	struct sq_stmt st;
	bool changed = false;

	sq_begin(&st, c, &sql_seal_upload, err);
	sq_bind_blob(&st, 1, u->version_uid, KURA_UID_LEN);
	sq_bind_seal(&st, 2, ns->seal, ns->seal_len, ns->seal_bk_id);
	sq_bind_opt_u64(&st, 4, u->seal_bk_id);
	sq_bind_opt_blob(&st, 5, u->seal, u->seal_len);
	return seal_store(&st, a, &changed);
}

static enum kura_err seal_apply_upart(struct sq_conn *c,
				      struct seal_apply_arg *a,
				      const struct kura_upload_part *p,
				      const struct kura_new_seal *ns,
				      struct kura_error *err)
{
	struct sq_stmt st;
	bool changed = false;

	sq_begin(&st, c, &sql_seal_upart, err);
	sq_bind_blob(&st, 1, p->version_uid, KURA_UID_LEN);
	sq_bind_i64(&st, 2, p->part.part_no);
	sq_bind_seal(&st, 3, ns->seal, ns->seal_len, ns->seal_bk_id);
	sq_bind_opt_u64(&st, 5, p->part.seal_bk_id);
	sq_bind_opt_blob(&st, 6, p->part.seal, p->part.seal_len);
	return seal_store(&st, a, &changed);
}

static enum kura_err seal_apply_body(struct sq_conn *c, void *arg,
				     struct kura_error *err)
{
	struct seal_apply_arg *a = arg;
	const struct kura_seal_batch *b = a->b;
	enum kura_err r = KURA_OK;

	a->applied = 0;
	for (size_t i = 0; r == KURA_OK && i < b->n_objects; i++)
		r = seal_apply_object(c, a, &b->objects[i], &a->objects[i],
				      err);
	for (size_t i = 0; r == KURA_OK && i < b->n_uploads; i++)
		r = seal_apply_upload(c, a, &b->uploads[i], &a->uploads[i],
				      err);
	for (size_t i = 0; r == KURA_OK && i < b->n_parts; i++)
		r = seal_apply_upart(c, a, &b->parts[i], &a->parts[i], err);
	return r;
}

/* Every new seal must be a real one. */
static bool new_seals_ok(const struct kura_new_seal *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].seal_len == 0 || v[i].seal_len > KURA_SEAL_MAX ||
		    v[i].seal_bk_id == 0)
			return false;
	return true;
}

enum kura_err sq_seal_apply(void *priv, const struct kura_seal_batch *batch,
			    const struct kura_new_seal *objects,
			    const struct kura_new_seal *uploads,
			    const struct kura_new_seal *parts, size_t *applied,
			    struct kura_error *err)
{
	struct seal_apply_arg a = { batch, objects, uploads, parts, 0 };
	enum kura_err r;

	if (batch == NULL || (batch->n_objects && objects == NULL) ||
	    (batch->n_uploads && uploads == NULL) ||
	    (batch->n_parts && parts == NULL) ||
	    !new_seals_ok(objects, batch->n_objects) ||
	    !new_seals_ok(uploads, batch->n_uploads) ||
	    !new_seals_ok(parts, batch->n_parts))
		return kura_fail(err, KURA_EINVAL, "bad seal batch");
	r = sq_write_tx(priv, seal_apply_body, &a, err);
	if (r == KURA_OK && applied != NULL)
		*applied = a.applied;
	return r;
}

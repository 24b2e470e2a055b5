/*
 * bucket_keys.c — bucket keys in the SQLite metadata store (schema 3): the
 * key of each (bucket, kura key) pair in use, wrapped by a version of the
 * kura key, and the re-wrapping of DEKs after a rotation retired one.
 *
 * At most one bucket key per pair is current (partial unique index);
 * rotation (keys.c) retires it and inserts the next.  The parts' reference
 * to their bucket key is ON DELETE RESTRICT: bucket_key_delete checks
 * first and says KURA_EBUSY, the constraint is the safety net.  Ids come
 * from AUTOINCREMENT and are never reused.  Rows read here hold wrapped
 * keys: copies on the stack and in scratch memory are wiped.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "sqlite_int.h"
#include "kura/banned.h"

/* A bucket key, then its version's, its key's and its bucket's whole
 * rows, each with its MAC: the KEK id, the states and the tenant it
 * reports all come from checked rows. */
/* clang-format off */
#define BK_COLS                                                             \
	"SELECT bk.id, bk.bucket_id, bk.key_id, bk.key_version, "             \
	"bk.wrapped, bk.current, bk.created_ms, bk.retired_ms, bk.mac, "      \
	SQ_KEYVER_FIELDS("kv.") ", " SQ_KEY_FIELDS("k.") ", "                 \
	SQ_BUCKET_FIELDS("b.") " FROM bucket_keys bk "                        \
	"JOIN buckets b ON b.id = bk.bucket_id "                              \
	"JOIN keys k ON k.id = bk.key_id "                                    \
	"JOIN key_versions kv ON kv.key_id = bk.key_id AND "                  \
	"kv.version = bk.key_version "
/* clang-format on */
#define BK_NCOLS 9
#define BK_KEYVER_BASE BK_NCOLS
#define BK_KEY_BASE (BK_KEYVER_BASE + SQ_KEYVER_NCOLS)
#define BK_BUCKET_BASE (BK_KEY_BASE + SQ_KEY_NCOLS)

/* The bucket key's own columns of one row of BK_COLS, unchecked. */
static void bk_fields(struct sq_stmt *st, void *out)
{
	struct kura_bucket_key *bk = out;

	memset(bk, 0, sizeof(*bk));
	bk->id = sq_col_u64(st, 0);
	bk->bucket_id = sq_col_u64(st, 1);
	bk->key_id = sq_col_u64(st, 2);
	bk->key_version = (uint32_t)sq_col_range(st, 3, 1, UINT32_MAX,
						 "bucket key version");
	sq_col_blob(st, 4, bk->wrapped, sizeof(bk->wrapped), &bk->wrapped_len,
		    "wrapped bucket key");
	bk->current = sq_col_int(st, 5) != 0;
	bk->created_ms = sq_col_i64(st, 6);
	bk->retired_ms = sq_col_i64(st, 7);
}

/* One row of BK_COLS: all four rows checked, and a bucket key joining a
 * bucket of one tenant to a key of another refused — kura never makes
 * one. */
static void bk_row(struct sq_stmt *st, void *out)
{
	struct kura_bucket_key *bk = out;
	struct kura_key_version v;
	struct kura_key k;
	struct kura_bucket b;

	bk_fields(st, bk);
	sq_col_row_mac(st, BK_NCOLS - 1, SQ_ROW_BUCKET_KEY, bk);
	sq_keyver_row(st, BK_KEYVER_BASE, &v);
	sq_key_row(st, BK_KEY_BASE, &k);
	sq_bucket_row(st, BK_BUCKET_BASE, &b);
	if (!sq_failed(st) && k.tenant_id != b.tenant_id)
		sq_fail(st, KURA_EINTEGRITY,
			"bucket key %llu joins bucket %llu to key %llu of "
			"another tenant",
			(unsigned long long)bk->id, (unsigned long long)b.id,
			(unsigned long long)k.id);
	memcpy(bk->kek_id, v.kek_id, sizeof(bk->kek_id));
	bk->version_state = v.state;
	bk->key_state = k.state;
	bk->tenant_id = b.tenant_id;
}

/* ---- reading ---- */

static const struct sq_sql sql_bk_get = {
	.what = "get bucket key",
	.text = BK_COLS "WHERE bk.id = ?1",
};
static const struct sq_sql sql_bk_current = {
	.what = "get bucket key",
	.text = BK_COLS "WHERE bk.bucket_id = ?1 AND bk.key_id = ?2 AND "
			"bk.current = 1",
};

/* Bucket key bk_id on c; KURA_ENOENT for none. */
static enum kura_err bk_fetch(struct sq_conn *c, uint64_t bk_id,
			      struct kura_bucket_key *out,
			      struct kura_error *err)
{
	struct sq_stmt st;
	bool found;
	enum kura_err r;

	sq_begin(&st, c, &sql_bk_get, err);
	sq_bind_u64(&st, 1, bk_id);
	found = sq_row(&st);
	if (found)
		bk_row(&st, out);
	r = sq_end(&st);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no bucket key %llu",
			      (unsigned long long)bk_id);
	return r;
}

enum kura_err sq_bucket_key_get(void *priv, uint64_t bk_id,
				struct kura_bucket_key *out,
				struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_bucket_key bk;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r == KURA_OK)
		r = bk_fetch(c, bk_id, &bk, err);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*out = bk;
	memset(&bk, 0, sizeof(bk));
	return r;
}

enum kura_err sq_bk_current(struct sq_conn *c, uint64_t bucket_id,
			    uint64_t key_id, struct kura_bucket_key *bk,
			    bool *found, struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_bk_current, err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_u64(&st, 2, key_id);
	*found = sq_row(&st);
	if (*found)
		bk_row(&st, bk);
	return sq_end(&st);
}

enum kura_err sq_bucket_key_current(void *priv, uint64_t bucket_id,
				    uint64_t key_id,
				    struct kura_bucket_key *out,
				    struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_bucket_key bk;
	bool found = false;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	r = sq_bk_current(c, bucket_id, key_id, &bk, &found, err);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT,
			      "bucket %016llx has no bucket key of key %llu",
			      (unsigned long long)bucket_id,
			      (unsigned long long)key_id);
	if (r == KURA_OK)
		*out = bk;
	memset(&bk, 0, sizeof(bk));
	return r;
}

/* A list of BK_COLS rows, with ?1 = v (the key, or the LIMIT). */
static enum kura_err bk_list(struct sq_store *m, const struct sq_sql *sql,
			     uint64_t v, size_t limit, struct kura_pool *pool,
			     struct kura_bucket_key **out, size_t *count,
			     struct kura_error *err)
{
	const struct sq_list list = { sql, sizeof(struct kura_bucket_key), true,
				      bk_row };
	void *res = NULL;
	enum kura_err r = sq_list(m, &list, &v, limit, pool, &res, count, err);

	if (r == KURA_OK)
		*out = res;
	return r;
}

static const struct sq_sql sql_bk_of_key = {
	.what = "list bucket keys",
	.text = BK_COLS "WHERE bk.key_id = ?1 AND bk.current = 1 ORDER BY "
			"bk.id",
};

enum kura_err sq_bucket_keys_of_key(void *priv, uint64_t key_id,
				    struct kura_pool *pool,
				    struct kura_bucket_key **out, size_t *count,
				    struct kura_error *err)
{
	return bk_list(priv, &sql_bk_of_key, key_id, SIZE_MAX, pool, out, count,
		       err);
}

static const struct sq_sql sql_bk_retired = {
	.what = "list retired bucket keys",
	.text = BK_COLS "WHERE bk.current = 0 ORDER BY bk.retired_ms, bk.id "
			"LIMIT ?1",
};

enum kura_err sq_bucket_keys_retired(void *priv, size_t limit,
				     struct kura_pool *pool,
				     struct kura_bucket_key **out,
				     size_t *count, struct kura_error *err)
{
	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	if (limit > SQ_BATCH_MAX)
		limit = SQ_BATCH_MAX; /* "up to limit" */
	return bk_list(priv, &sql_bk_retired, limit, limit, pool, out, count,
		       err);
}

static const struct sq_sql sql_bucket_key_ids = {
	.what = "list the bucket's keys",
	.text = "SELECT DISTINCT key_id FROM bucket_keys WHERE bucket_id = "
		"?1 ORDER BY key_id",
};

static void key_id_row(struct sq_stmt *st, void *out)
{
	*(uint64_t *)out = sq_col_u64(st, 0);
}

enum kura_err sq_bucket_key_ids(void *priv, uint64_t bucket_id,
				struct kura_pool *pool, uint64_t **out,
				size_t *count, struct kura_error *err)
{
	static const struct sq_list list = { &sql_bucket_key_ids,
					     sizeof(uint64_t), false,
					     key_id_row };
	void *res = NULL;
	enum kura_err r = sq_list(priv, &list, &bucket_id, SIZE_MAX, pool, &res,
				  count, err);

	if (r == KURA_OK)
		*out = res;
	return r;
}

/* ---- inserting ---- */

enum kura_err sq_check_new_bk(const struct kura_bucket_key *bk,
			      struct kura_error *err)
{
	if (bk == NULL || bk->wrapped_len == 0 ||
	    bk->wrapped_len > sizeof(bk->wrapped))
		return kura_fail(err, KURA_EINVAL, "bad bucket key record");
	return KURA_OK;
}

static const struct sq_sql sql_bk_insert = {
	.what = "insert bucket key",
	.text = "INSERT INTO bucket_keys (bucket_id, key_id, key_version, "
		"wrapped, current, created_ms, retired_ms) VALUES (?1, ?2, "
		"?3, ?4, 1, ?5, 0) RETURNING id",
};

enum kura_err sq_bk_insert(struct sq_conn *c, uint64_t bucket_id,
			   uint64_t key_id, uint32_t version,
			   const uint8_t *wrapped, size_t wrapped_len,
			   int64_t created, uint64_t *id,
			   struct kura_error *err)
{
	struct kura_bucket_key row = { 0 };
	struct sq_stmt st;
	uint64_t bk_id = 0;
	enum kura_err r;

	if (wrapped_len > sizeof(row.wrapped))
		return kura_fail(err, KURA_EINVAL, "bad bucket key record");
	sq_begin(&st, c, &sql_bk_insert, err);
	sq_bind_u64(&st, 1, bucket_id);
	sq_bind_u64(&st, 2, key_id);
	sq_bind_i64(&st, 3, version);
	sq_bind_blob(&st, 4, wrapped, wrapped_len);
	sq_bind_i64(&st, 5, created);
	if (sq_row(&st))
		bk_id = sq_col_u64(&st, 0);
	r = sq_end_unique(&st,
			  "bucket %016llx already has a current bucket key of "
			  "key %llu",
			  (unsigned long long)bucket_id,
			  (unsigned long long)key_id);
	if (r != KURA_OK)
		return r;
	/* The MAC covers the id, which only the insert assigns. */
	row.id = bk_id;
	row.bucket_id = bucket_id;
	row.key_id = key_id;
	row.key_version = version;
	memcpy(row.wrapped, wrapped, wrapped_len);
	row.wrapped_len = wrapped_len;
	row.current = true;
	row.created_ms = created;
	r = sq_bk_write(c, &row, err);
	kura_wipe(&row, sizeof(row));
	if (r == KURA_OK)
		*id = bk_id;
	return r;
}

static const struct sq_sql sql_bk_write = {
	.what = "write bucket key",
	.text = "UPDATE bucket_keys SET current = ?2, retired_ms = ?3, mac = "
		"?4 WHERE id = ?1",
};

enum kura_err sq_bk_write(struct sq_conn *c, const struct kura_bucket_key *bk,
			  struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, &sql_bk_write, err);
	sq_bind_u64(&st, 1, bk->id);
	sq_bind_i64(&st, 2, bk->current ? 1 : 0);
	sq_bind_i64(&st, 3, bk->retired_ms);
	sq_bind_row_mac(&st, 4, SQ_ROW_BUCKET_KEY, bk);
	r = sq_exec(&st);
	if (r == KURA_OK && st.changes != 1)
		r = kura_fail(err, KURA_ENOENT, "no bucket key %llu",
			      (unsigned long long)bk->id);
	return r;
}

struct bk_insert_arg {
	const struct kura_bucket_key *bk;
	int64_t created;
	uint64_t id; /* result */
};

static enum kura_err bucket_key_insert_body(struct sq_conn *c, void *arg,
					    struct kura_error *err)
{
	struct bk_insert_arg *a = arg;
	const struct kura_bucket_key *bk = a->bk;
	struct kura_key k;
	uint64_t tenant_id = 0;
	enum kura_err r = sq_key_fetch(c, bk->key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state != KURA_KEY_ENABLED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is not enabled",
				 k.name);
	if (bk->key_version != k.current_version)
		return kura_fail(
			err, KURA_ESTATE,
			"bucket key wrapped by version %u of key '%s', "
			"current is %u",
			bk->key_version, k.name, k.current_version);
	r = sq_bucket_tenant(c, bk->bucket_id, &tenant_id, err);
	if (r == KURA_OK && tenant_id != k.tenant_id)
		r = kura_fail(err, KURA_EPERM,
			      "key '%s' belongs to another tenant", k.name);
	if (r == KURA_OK)
		r = sq_bk_insert(c, bk->bucket_id, bk->key_id, bk->key_version,
				 bk->wrapped, bk->wrapped_len, a->created,
				 &a->id, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_bucket_key_insert(void *priv, struct kura_bucket_key *bk,
				   struct kura_error *err)
{
	struct bk_insert_arg a = { bk, 0, 0 };
	enum kura_err r = sq_check_new_bk(bk, err);

	if (r != KURA_OK)
		return r;
	a.created = bk->created_ms != 0 ? bk->created_ms : kura_now_ms();
	r = sq_write_tx(priv, bucket_key_insert_body, &a, err);
	if (r != KURA_OK)
		return r;
	bk->id = a.id;
	bk->current = true;
	bk->created_ms = a.created;
	bk->retired_ms = 0;
	return KURA_OK;
}

/* ---- checks inside write transactions ---- */

/* Bucket and currency of bucket key bk_id, from its checked rows; *found
 * false when none. */
static enum kura_err bk_bucket(struct sq_conn *c, uint64_t bk_id, bool *found,
			       uint64_t *bucket_id, bool *current,
			       struct kura_error *err)
{
	struct kura_bucket_key bk;
	struct sq_stmt st;
	bool row;
	enum kura_err r;

	sq_begin(&st, c, &sql_bk_get, err);
	sq_bind_u64(&st, 1, bk_id);
	row = sq_row(&st);
	if (row)
		bk_row(&st, &bk);
	r = sq_end(&st);
	if (r == KURA_OK && row) {
		*bucket_id = bk.bucket_id;
		*current = bk.current;
	}
	if (r == KURA_OK)
		*found = row;
	kura_wipe(&bk, sizeof(bk));
	return r;
}

enum kura_err sq_bk_check(struct sq_conn *c, uint64_t bucket_id,
			  enum kura_sse sse, const struct kura_part *p,
			  uint64_t *known, struct kura_error *err)
{
	uint64_t owner = 0;
	bool found = false, current = false;
	enum kura_err r;

	if (p->bk_id == 0) {
		if (sse == KURA_SSE_C)
			return KURA_OK;
		return kura_fail(err, KURA_EINVAL, "part %u has no bucket key",
				 p->part_no);
	}
	if (p->bk_id == *known)
		return KURA_OK;
	r = bk_bucket(c, p->bk_id, &found, &owner, &current, err);
	if (r != KURA_OK)
		return r;
	if (!found || owner != bucket_id)
		return kura_fail(
			err, KURA_ESTATE,
			"part %u: no bucket key %llu in bucket %016llx",
			p->part_no, (unsigned long long)p->bk_id,
			(unsigned long long)bucket_id);
	*known = p->bk_id;
	return KURA_OK;
}

/* ---- deleting ---- */

/* Parts and sealed rows still using the bucket key. */
static const struct sq_sql sql_bk_in_use = {
	.what = "query",
	.text = "SELECT EXISTS (SELECT 1 FROM parts WHERE bk_id = ?1) OR "
		"EXISTS (SELECT 1 FROM upload_parts WHERE bk_id = ?1) OR "
		"EXISTS (SELECT 1 FROM objects WHERE seal_bk_id = ?1) OR "
		"EXISTS (SELECT 1 FROM uploads WHERE seal_bk_id = ?1) OR "
		"EXISTS (SELECT 1 FROM upload_parts WHERE seal_bk_id = ?1)",
};
static const struct sq_sql sql_bk_delete = {
	.what = "delete bucket key",
	.text = "DELETE FROM bucket_keys WHERE id = ?1",
};

struct bk_delete_arg {
	uint64_t id;
	bool in_use; /* refused: a part still uses it */
};

static enum kura_err bk_in_use(struct sq_conn *c, uint64_t id, bool *used,
			       struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_bk_in_use, err);
	sq_bind_u64(&st, 1, id);
	if (sq_row(&st))
		*used = sq_col_int(&st, 0) != 0;
	else
		sq_fail(&st, KURA_EIO, "sqlite: query: no row");
	return sq_end(&st);
}

static enum kura_err bucket_key_delete_body(struct sq_conn *c, void *arg,
					    struct kura_error *err)
{
	struct bk_delete_arg *a = arg;
	uint64_t bucket_id = 0;
	bool found = false, current = false, used = false;
	enum kura_err r =
		bk_bucket(c, a->id, &found, &bucket_id, &current, err);

	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no bucket key %llu",
				 (unsigned long long)a->id);
	if (current)
		return kura_fail(err, KURA_ESTATE,
				 "bucket key %llu is still current",
				 (unsigned long long)a->id);
	/* Checked here for a clear answer; the RESTRICT reference would
	 * refuse the delete anyway.  Not KURA_EBUSY here: sq_write_tx
	 * retries that (it means a lock held by another process). */
	r = bk_in_use(c, a->id, &used, err);
	if (r != KURA_OK)
		return r;
	if (used) {
		a->in_use = true;
		return kura_fail(err, KURA_ESTATE,
				 "bucket key %llu still wraps data keys",
				 (unsigned long long)a->id);
	}
	r = sq_exec_u64(c, &sql_bk_delete, a->id, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_bucket_key_delete(void *priv, uint64_t bk_id,
				   struct kura_error *err)
{
	struct bk_delete_arg a = { bk_id, false };
	struct kura_error e = { 0 };
	enum kura_err r = sq_write_tx(priv, bucket_key_delete_body, &a, &e);

	if (r == KURA_OK)
		return KURA_OK;
	return kura_fail(err, a.in_use && r == KURA_ESTATE ? KURA_EBUSY : r,
			 "%s", e.msg);
}

/* ---- re-wrapping ---- */

static const struct sq_sql sql_rewrap_parts = {
	.what = "list parts to re-wrap",
	.text = "SELECT version_uid, part_no, dek_wrapped FROM parts WHERE "
		"bk_id = ?1 LIMIT ?2",
};
static const struct sq_sql sql_rewrap_uparts = {
	.what = "list parts to re-wrap",
	.text = "SELECT version_uid, part_no, dek_wrapped FROM upload_parts "
		"WHERE bk_id = ?1 LIMIT ?2",
};

/* Up to limit parts of bucket key bk (object parts first, then upload
 * parts) appended to a. */
static enum kura_err rewrap_list(struct sq_conn *c,
				 const struct kura_bucket_key *bk, size_t limit,
				 struct sq_array *a, struct kura_error *err)
{
	static const struct sq_sql *const lists[2] = { &sql_rewrap_parts,
						       &sql_rewrap_uparts };
	enum kura_err r = KURA_OK;

	for (int t = 0; r == KURA_OK && t < 2 && a->n < limit; t++) {
		struct sq_stmt st;
		struct kura_rewrap *e;

		sq_begin(&st, c, lists[t], err);
		sq_bind_u64(&st, 1, bk->id);
		sq_bind_i64(&st, 2, (int64_t)(limit - a->n));
		while (a->n < limit && sq_row(&st) &&
		       (e = sq_array_add(a, &st)) != NULL) {
			memset(e, 0, sizeof(*e));
			sq_col_blob(&st, 0, e->version_uid, KURA_UID_LEN, NULL,
				    "version uid");
			e->part_no = (uint32_t)sq_col_range(
				&st, 1, 0, KURA_MAX_PARTS, "part number");
			sq_col_blob(&st, 2, e->dek_wrapped,
				    KURA_WRAPPED_DEK_LEN, NULL, "wrapped dek");
			e->upload_part = t == 1;
			e->bucket_id = bk->bucket_id;
			e->tenant_id = bk->tenant_id;
		}
		r = sq_end(&st);
	}
	return r;
}

enum kura_err sq_rewrap_next(void *priv, uint64_t bk_id, size_t limit,
			     struct kura_pool *pool, struct kura_rewrap **out,
			     size_t *count, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_bucket_key bk;
	struct sq_array a;
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	if (limit > SQ_BATCH_MAX)
		limit = SQ_BATCH_MAX; /* "up to limit" */
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	sq_array_init(&a, sizeof(struct kura_rewrap), limit < 256 ? limit : 256,
		      true);
	/* One read transaction: the bucket key and its parts. */
	r = sq_tx_begin(c, false, err);
	if (r == KURA_OK)
		r = bk_fetch(c, bk_id, &bk, err);
	if (r == KURA_OK)
		r = rewrap_list(c, &bk, limit, &a, err);
	if (r == KURA_OK)
		r = sq_tx_end_read(c, err);
	r = sq_array_end(&a, r, pool, &res, &n, err);
	sq_conn_release(m, c);
	memset(&bk, 0, sizeof(bk));
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

static const struct sq_sql sql_rewrap_part = {
	.what = "re-wrap part",
	.text = "UPDATE parts SET dek_wrapped = ?3, bk_id = ?5 WHERE "
		"version_uid = ?1 AND part_no = ?2 AND bk_id = ?4",
};
static const struct sq_sql sql_rewrap_upart = {
	.what = "re-wrap part",
	.text = "UPDATE upload_parts SET dek_wrapped = ?3, bk_id = ?5 WHERE "
		"version_uid = ?1 AND part_no = ?2 AND bk_id = ?4",
};

struct rewrap_arg {
	uint64_t old_bk, new_bk;
	const struct kura_rewrap *entries;
	size_t count;
};

/* Re-wrap one part in table t (0 parts, 1 upload_parts); *changed says
 * whether the row was still on the old bucket key. */
static enum kura_err rewrap_one(struct sq_conn *c, int t,
				const struct rewrap_arg *a,
				const struct kura_rewrap *e, bool *changed,
				struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, t == 0 ? &sql_rewrap_part : &sql_rewrap_upart, err);
	sq_bind_blob(&st, 1, e->version_uid, KURA_UID_LEN);
	sq_bind_i64(&st, 2, e->part_no);
	sq_bind_blob(&st, 3, e->dek_wrapped, KURA_WRAPPED_DEK_LEN);
	sq_bind_u64(&st, 4, a->old_bk);
	sq_bind_u64(&st, 5, a->new_bk);
	r = sq_exec(&st);
	if (r == KURA_OK)
		*changed = st.changes > 0;
	return r;
}

/* The new bucket key must exist and be of the old one's bucket (a gone
 * old key has no parts left: nothing below matches). */
static enum kura_err rewrap_check(struct sq_conn *c, const struct rewrap_arg *a,
				  struct kura_error *err)
{
	uint64_t old_bucket = 0, new_bucket = 0;
	bool old_found = false, new_found = false, current = false;
	enum kura_err r =
		bk_bucket(c, a->new_bk, &new_found, &new_bucket, &current, err);

	if (r == KURA_OK && !new_found)
		r = kura_fail(err, KURA_ESTATE, "no bucket key %llu",
			      (unsigned long long)a->new_bk);
	if (r == KURA_OK)
		r = bk_bucket(c, a->old_bk, &old_found, &old_bucket, &current,
			      err);
	if (r == KURA_OK && old_found && old_bucket != new_bucket)
		r = kura_fail(err, KURA_ESTATE,
			      "bucket keys %llu and %llu belong to different "
			      "buckets",
			      (unsigned long long)a->old_bk,
			      (unsigned long long)a->new_bk);
	return r;
}

static enum kura_err rewrap_apply_body(struct sq_conn *c, void *arg,
				       struct kura_error *err)
{
	struct rewrap_arg *a = arg;
	enum kura_err r = rewrap_check(c, a, err);

	for (size_t i = 0; r == KURA_OK && i < a->count; i++) {
		const struct kura_rewrap *e = &a->entries[i];
		int t = e->upload_part ? 1 : 0;
		bool changed = false;

		/* An upload part may have become an object's part since it
		 * was listed (same uid and number, same binding). */
		r = rewrap_one(c, t, a, e, &changed, err);
		if (r == KURA_OK && !changed)
			r = rewrap_one(c, 1 - t, a, e, &changed, err);
	}
	return r;
}

enum kura_err sq_rewrap_apply(void *priv, uint64_t old_bk_id,
			      uint64_t new_bk_id,
			      const struct kura_rewrap *entries, size_t count,
			      struct kura_error *err)
{
	struct rewrap_arg a = { old_bk_id, new_bk_id, entries, count };

	if (count == 0)
		return KURA_OK;
	if (entries == NULL || old_bk_id == new_bk_id)
		return kura_fail(err, KURA_EINVAL, "bad re-wrap");
	return sq_write_tx(priv, rewrap_apply_body, &a, err);
}

/* ---- the row MAC upgrade (rowmacs.c) ---- */

static const struct sq_sql sql_bk_unmacd = {
	.what = "row MAC upgrade",
	.text = "SELECT id, bucket_id, key_id, key_version, wrapped, current, "
		"created_ms, retired_ms FROM bucket_keys WHERE mac IS NULL",
};
static const struct sq_sql sql_bk_mac = {
	.what = "row MAC upgrade",
	.text = "UPDATE bucket_keys SET mac = ?1 WHERE id = ?2 AND mac IS NULL",
};

static void bk_key(struct sq_stmt *st, const void *row)
{
	sq_bind_u64(st, 2, ((const struct kura_bucket_key *)row)->id);
}

const struct sq_mac_table sq_bucket_key_macs = {
	SQ_ROW_BUCKET_KEY, sizeof(struct kura_bucket_key),
	&sql_bk_unmacd,	   bk_fields,
	&sql_bk_mac,	   bk_key,
};

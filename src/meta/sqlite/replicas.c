/*
 * replicas.c — where every copy of every blob is (schema 7): one row per
 * (blob, backend) with the backend's labels when the copy was made, and an
 * event per change of its state (the location history, A-10).  Also the
 * async queue (pending rows) and the blob walk a scrub needs.
 *
 * Rows are written before the metadata referencing their blob commits, so
 * a crash can leave rows of a blob nothing references: replica_orphans
 * finds them for the start-up sweep, and replica_due only hands out blobs
 * that are referenced, so an upload still being written is never copied
 * half-made.
 */
#include <string.h>

#include "sqlite_int.h"
#include "kura/banned.h"

#define REPLICA_COLS                                                      \
	"blob_id, backend, type, site, region, jurisdiction, remote_id, " \
	"bytes, state, stored_ms, verified_ms, changed_ms, attempts, "    \
	"next_try_ms"

/* A blob some committed metadata references. */
#define REFERENCED(col)                                                    \
	"(EXISTS (SELECT 1 FROM parts WHERE blob_id = " col ") OR EXISTS " \
	"(SELECT 1 FROM upload_parts WHERE blob_id = " col "))"

static void replica_row(struct sq_stmt *st, void *row)
{
	struct kura_replica *r = row;
	memset(r, 0, sizeof(*r));
	sq_col_blob(st, 0, r->blob_id, KURA_BLOB_ID_LEN, NULL, "blob id");
	sq_col_text(st, 1, r->backend, sizeof(r->backend), "backend");
	sq_col_text(st, 2, r->type, sizeof(r->type), "backend type");
	sq_col_text(st, 3, r->site, sizeof(r->site), "site");
	sq_col_text(st, 4, r->region, sizeof(r->region), "region");
	sq_col_text(st, 5, r->jurisdiction, sizeof(r->jurisdiction),
		    "jurisdiction");
	sq_col_text(st, 6, r->remote_id, sizeof(r->remote_id), "remote id");
	r->bytes = (uint64_t)sq_col_range(st, 7, 0, INT64_MAX, "bytes");
	r->state = (enum kura_replica_state)sq_col_range(
		st, 8, KURA_REPLICA_PENDING, KURA_REPLICA_DELETED, "state");
	r->stored_ms = sq_col_i64(st, 9);
	r->verified_ms = sq_col_i64(st, 10);
	r->changed_ms = sq_col_i64(st, 11);
	r->attempts = (uint32_t)sq_col_range(st, 12, 0, UINT32_MAX, "attempts");
	r->next_try_ms = sq_col_i64(st, 13);
}

/* ---- writing ---- */

static const struct sq_sql sql_replica_upsert = {
	.what = "record replica",
	.text = "INSERT OR REPLACE INTO replicas (" REPLICA_COLS ") VALUES "
		"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
};
static const struct sq_sql sql_replica_event = {
	.what = "record replica event",
	.text = "INSERT INTO replica_events (blob_id, backend, state, at_ms, "
		"note) VALUES (?1, ?2, ?3, ?4, ?5)",
};

struct set_arg {
	const struct kura_replica *rows;
	size_t n;
	const char *note;
};

static const struct sq_sql sql_replica_state = {
	.what = "replica state",
	.text = "SELECT state FROM replicas WHERE blob_id = ?1 AND backend = ?2",
};

/* Has the replica's state changed (or is it new)?  Only a change goes
 * into the history: a copy verified by every scrub, or a queued copy
 * retried through an outage, does not grow it without bound. */
static enum kura_err state_changes(struct sq_conn *c,
				   const struct kura_replica *r, bool *changes,
				   struct kura_error *err)
{
	struct sq_stmt st;
	sq_begin(&st, c, &sql_replica_state, err);
	sq_bind_blob(&st, 1, r->blob_id, KURA_BLOB_ID_LEN);
	sq_bind_text(&st, 2, r->backend);
	*changes = !sq_row(&st) || sq_col_int(&st, 0) != (int)r->state;
	return sq_end(&st);
}

static enum kura_err replica_put(struct sq_conn *c,
				 const struct kura_replica *r, const char *note,
				 struct kura_error *err)
{
	struct sq_stmt st;
	bool changes = true;
	enum kura_err rc = state_changes(c, r, &changes, err);
	if (rc != KURA_OK)
		return rc;
	sq_begin(&st, c, &sql_replica_upsert, err);
	sq_bind_blob(&st, 1, r->blob_id, KURA_BLOB_ID_LEN);
	sq_bind_text(&st, 2, r->backend);
	sq_bind_text(&st, 3, r->type);
	sq_bind_text(&st, 4, r->site);
	sq_bind_text(&st, 5, r->region);
	sq_bind_text(&st, 6, r->jurisdiction);
	sq_bind_text(&st, 7, r->remote_id);
	sq_bind_u64(&st, 8, r->bytes);
	sq_bind_i64(&st, 9, (int)r->state);
	sq_bind_i64(&st, 10, r->stored_ms);
	sq_bind_i64(&st, 11, r->verified_ms);
	sq_bind_i64(&st, 12, r->changed_ms);
	sq_bind_i64(&st, 13, r->attempts);
	sq_bind_i64(&st, 14, r->next_try_ms);
	rc = sq_exec(&st);
	if (rc != KURA_OK || !changes)
		return rc;
	sq_begin(&st, c, &sql_replica_event, err);
	sq_bind_blob(&st, 1, r->blob_id, KURA_BLOB_ID_LEN);
	sq_bind_text(&st, 2, r->backend);
	sq_bind_i64(&st, 3, (int)r->state);
	sq_bind_i64(&st, 4, r->changed_ms);
	sq_bind_text(&st, 5, note ? note : "");
	return sq_exec(&st);
}

static enum kura_err set_body(struct sq_conn *c, void *arg,
			      struct kura_error *err)
{
	const struct set_arg *a = arg;
	enum kura_err rc = KURA_OK;
	for (size_t i = 0; rc == KURA_OK && i < a->n; i++)
		rc = replica_put(c, &a->rows[i], a->note, err);
	return rc;
}

static bool row_ok(const struct kura_replica *r)
{
	return sq_str_ok(r->backend, sizeof(r->backend), false) &&
	       sq_str_ok(r->type, sizeof(r->type), false) &&
	       sq_str_ok(r->site, sizeof(r->site), true) &&
	       sq_str_ok(r->region, sizeof(r->region), true) &&
	       sq_str_ok(r->jurisdiction, sizeof(r->jurisdiction), true) &&
	       sq_str_ok(r->remote_id, sizeof(r->remote_id), true) &&
	       (unsigned)r->state <= KURA_REPLICA_DELETED &&
	       r->bytes <= INT64_MAX;
}

enum kura_err sq_replica_set(void *priv, const struct kura_replica *rows,
			     size_t n, const char *note, struct kura_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (!row_ok(&rows[i]))
			return kura_fail(err, KURA_EINVAL, "bad replica row");
	if (note != NULL && strlen(note) >= KURA_REPLICA_NOTE_MAX)
		return kura_fail(err, KURA_EINVAL, "replica note too long");
	if (n == 0)
		return KURA_OK;
	struct set_arg a = { rows, n, note };
	return sq_write_tx(priv, set_body, &a, err);
}

/* ---- reading ---- */

/* Run sql bound by bind(st, ctx) and read up to max rows of elem bytes
 * into out with row(st, one); *count receives how many. */
static enum kura_err read_rows(struct sq_store *m, const struct sq_sql *sql,
			       void (*bind)(struct sq_stmt *, const void *),
			       const void *ctx,
			       void (*row)(struct sq_stmt *, void *),
			       size_t elem, void *out, size_t max,
			       size_t *count, struct kura_error *err)
{
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	size_t n = 0;
	enum kura_err rc = sq_conn_acquire(m, &c, err);
	if (rc != KURA_OK)
		return rc;
	sq_begin(&st, c, sql, err);
	bind(&st, ctx);
	while (n < max && sq_row(&st))
		row(&st, (unsigned char *)out + elem * n++);
	rc = sq_end(&st);
	sq_conn_release(m, c);
	if (rc == KURA_OK)
		*count = n;
	return rc;
}

/* A SELECT of REPLICA_COLS. */
static enum kura_err replica_rows(struct sq_store *m, const struct sq_sql *sql,
				  void (*bind)(struct sq_stmt *, const void *),
				  const void *ctx, struct kura_replica *out,
				  size_t max, size_t *count,
				  struct kura_error *err)
{
	return read_rows(m, sql, bind, ctx, replica_row, sizeof(*out), out, max,
			 count, err);
}

static const struct sq_sql sql_replica_list = {
	.what = "list replicas",
	.text = "SELECT " REPLICA_COLS " FROM replicas WHERE blob_id = ?1 "
		"ORDER BY backend",
};

static void bind_blob_id(struct sq_stmt *st, const void *ctx)
{
	sq_bind_blob(st, 1, ctx, KURA_BLOB_ID_LEN);
}

enum kura_err sq_replica_list(void *priv,
			      const uint8_t blob_id[KURA_BLOB_ID_LEN],
			      struct kura_replica *out, size_t max,
			      size_t *count, struct kura_error *err)
{
	return replica_rows(priv, &sql_replica_list, bind_blob_id, blob_id, out,
			    max, count, err);
}

static const struct sq_sql sql_replica_due = {
	.what = "replication queue",
	.text = "SELECT " REPLICA_COLS " FROM replicas r WHERE state = 0 AND "
		"backend = ?2 AND next_try_ms <= ?1 AND " REFERENCED(
			"r.blob_id") " ORDER BY next_try_ms LIMIT ?3",
};

struct due_arg {
	const char *backend;
	int64_t now_ms;
	size_t max;
};

static void bind_due(struct sq_stmt *st, const void *ctx)
{
	const struct due_arg *a = ctx;
	sq_bind_i64(st, 1, a->now_ms);
	sq_bind_text(st, 2, a->backend);
	sq_bind_i64(st, 3, (int64_t)a->max);
}

enum kura_err sq_replica_due(void *priv, const char *backend, int64_t now_ms,
			     struct kura_replica *out, size_t max,
			     size_t *count, struct kura_error *err)
{
	struct due_arg a = { backend, now_ms, max };
	return replica_rows(priv, &sql_replica_due, bind_due, &a, out, max,
			    count, err);
}

/* The sweep reads only rows changed since the last one (the index on
 * changed_ms): not every replica of the store at every start. */
static const struct sq_sql sql_replica_orphans = {
	.what = "orphan replicas",
	.text = "SELECT " REPLICA_COLS " FROM replicas r WHERE state != 4 AND "
		"changed_ms >= ?1 AND NOT " REFERENCED(
			"r.blob_id") " AND NOT EXISTS (SELECT 1 FROM gc WHERE "
				     "blob_id = r.blob_id) LIMIT ?2",
};

struct orphan_arg {
	int64_t since_ms;
	size_t max;
};

static void bind_orphans(struct sq_stmt *st, const void *ctx)
{
	const struct orphan_arg *a = ctx;
	sq_bind_i64(st, 1, a->since_ms);
	sq_bind_i64(st, 2, (int64_t)a->max);
}

enum kura_err sq_replica_orphans(void *priv, int64_t since_ms,
				 struct kura_replica *out, size_t max,
				 size_t *count, struct kura_error *err)
{
	struct orphan_arg a = { since_ms, max };
	return replica_rows(priv, &sql_replica_orphans, bind_orphans, &a, out,
			    max, count, err);
}

static const struct sq_sql sql_replica_history = {
	.what = "replica history",
	.text = "SELECT state, at_ms, note FROM replica_events WHERE "
		"blob_id = ?1 AND backend = ?2 ORDER BY seq",
};

struct history_arg {
	const uint8_t *blob_id;
	const char *backend;
};

static void bind_history(struct sq_stmt *st, const void *ctx)
{
	const struct history_arg *a = ctx;
	sq_bind_blob(st, 1, a->blob_id, KURA_BLOB_ID_LEN);
	sq_bind_text(st, 2, a->backend);
}

static void event_row(struct sq_stmt *st, void *row)
{
	struct kura_replica_event *e = row;
	memset(e, 0, sizeof(*e));
	e->state = (enum kura_replica_state)sq_col_range(
		st, 0, KURA_REPLICA_PENDING, KURA_REPLICA_DELETED, "state");
	e->at_ms = sq_col_i64(st, 1);
	sq_col_text(st, 2, e->note, sizeof(e->note), "note");
}

enum kura_err sq_replica_history(void *priv,
				 const uint8_t blob_id[KURA_BLOB_ID_LEN],
				 const char *backend,
				 struct kura_replica_event *out, size_t max,
				 size_t *count, struct kura_error *err)
{
	struct history_arg a = { blob_id, backend };
	return read_rows(priv, &sql_replica_history, bind_history, &a,
			 event_row, sizeof(*out), out, max, count, err);
}

/* ---- summaries ---- */

static const struct sq_sql sql_replica_groups = {
	.what = "bucket replicas",
	.text = "SELECT r.backend, r.site, r.region, r.jurisdiction, r.state, "
		"count(*), total(r.bytes) FROM replicas r JOIN (SELECT "
		"p.blob_id FROM parts p JOIN objects o ON o.version_uid = "
		"p.version_uid WHERE o.bucket_id = ?1 UNION ALL SELECT "
		"p.blob_id FROM upload_parts p JOIN uploads u ON "
		"u.version_uid = p.version_uid WHERE u.bucket_id = ?1) b ON "
		"b.blob_id = r.blob_id GROUP BY r.backend, r.site, r.region, "
		"r.jurisdiction, r.state ORDER BY r.backend, r.state",
};

enum kura_err sq_replica_groups(void *priv, uint64_t bucket_id,
				kura_replica_group_fn fn, void *ctx,
				struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	enum kura_err rc = sq_conn_acquire(m, &c, err);
	if (rc != KURA_OK)
		return rc;
	sq_begin(&st, c, &sql_replica_groups, err);
	sq_bind_u64(&st, 1, bucket_id);
	enum kura_err cb = KURA_OK;
	while (cb == KURA_OK && sq_row(&st)) {
		struct kura_replica_group g;
		memset(&g, 0, sizeof(g));
		sq_col_text(&st, 0, g.backend, sizeof(g.backend), "backend");
		sq_col_text(&st, 1, g.site, sizeof(g.site), "site");
		sq_col_text(&st, 2, g.region, sizeof(g.region), "region");
		sq_col_text(&st, 3, g.jurisdiction, sizeof(g.jurisdiction),
			    "jurisdiction");
		g.state = (enum kura_replica_state)sq_col_range(
			&st, 4, KURA_REPLICA_PENDING, KURA_REPLICA_DELETED,
			"state");
		g.count = (uint64_t)sq_col_i64(&st, 5);
		g.bytes = (uint64_t)sqlite3_column_double(st.s, 6);
		if (st.r == KURA_OK)
			cb = fn(ctx, &g, err);
	}
	rc = sq_end(&st);
	sq_conn_release(m, c);
	return cb != KURA_OK ? cb : rc;
}

static const struct sq_sql sql_replica_queue = {
	.what = "replication queue length",
	.text = "SELECT count(*), coalesce(min(changed_ms), 0) FROM replicas "
		"WHERE state = 0 AND backend = ?1",
};

enum kura_err sq_replica_queue(void *priv, const char *backend, uint64_t *count,
			       int64_t *oldest_ms, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	uint64_t n = 0;
	int64_t oldest = 0;
	enum kura_err rc = sq_conn_acquire(m, &c, err);
	if (rc != KURA_OK)
		return rc;
	sq_begin(&st, c, &sql_replica_queue, err);
	sq_bind_text(&st, 1, backend);
	if (sq_row(&st)) {
		n = (uint64_t)sq_col_i64(&st, 0);
		oldest = sq_col_i64(&st, 1);
	}
	rc = sq_end(&st);
	sq_conn_release(m, c);
	if (rc == KURA_OK) {
		*count = n;
		*oldest_ms = oldest;
	}
	return rc;
}

/* ---- the scrub's walk ---- */

static const struct sq_sql sql_scrub_blobs = {
	.what = "scrub blobs",
	.text = "SELECT p.part_no, p.blob_id, p.size, p.seg_size, "
		"p.dek_wrapped, p.mtime_ms, p.bk_id, o.bucket_id, b.tenant_id, "
		"o.version_uid, o.sse FROM parts p JOIN objects o ON "
		"o.version_uid = p.version_uid JOIN buckets b ON b.id = "
		"o.bucket_id WHERE (?1 = 0 OR o.bucket_id = ?1) AND p.blob_id "
		"> ?2 UNION ALL SELECT p.part_no, p.blob_id, p.size, "
		"p.seg_size, p.dek_wrapped, p.mtime_ms, p.bk_id, u.bucket_id, "
		"b.tenant_id, u.version_uid, u.sse FROM upload_parts p JOIN "
		"uploads u ON u.version_uid = p.version_uid JOIN buckets b ON "
		"b.id = u.bucket_id WHERE (?1 = 0 OR u.bucket_id = ?1) AND "
		"p.blob_id > ?2 ORDER BY 2 LIMIT ?3",
};

static void scrub_row(struct sq_stmt *st, void *row)
{
	struct kura_scrub_blob *b = row;
	memset(b, 0, sizeof(*b));
	struct kura_part *p = &b->part;
	p->part_no = (uint32_t)sq_col_range(st, 0, 0, UINT32_MAX, "part");
	sq_col_blob(st, 1, p->blob_id, KURA_BLOB_ID_LEN, NULL, "blob id");
	p->size = (uint64_t)sq_col_range(st, 2, 0, INT64_MAX, "size");
	p->seg_size = (uint32_t)sq_col_range(st, 3, 1, UINT32_MAX, "seg");
	sq_col_blob(st, 4, p->dek_wrapped, KURA_WRAPPED_DEK_LEN, NULL,
		    "wrapped dek");
	p->mtime_ms = sq_col_i64(st, 5);
	p->bk_id = sq_col_opt_u64(st, 6);
	b->bucket_id = sq_col_u64(st, 7);
	b->tenant_id = sq_col_u64(st, 8);
	sq_col_blob(st, 9, b->version_uid, KURA_UID_LEN, NULL, "version");
	b->ssec = sq_col_int(st, 10) == (int)KURA_SSE_C;
}

struct scrub_arg {
	uint64_t bucket_id;
	const uint8_t *after;
	size_t max;
};

static void bind_scrub(struct sq_stmt *st, const void *ctx)
{
	const struct scrub_arg *a = ctx;
	sq_bind_u64(st, 1, a->bucket_id);
	sq_bind_blob(st, 2, a->after, KURA_BLOB_ID_LEN);
	sq_bind_i64(st, 3, (int64_t)a->max);
}

enum kura_err sq_scrub_blobs(void *priv, uint64_t bucket_id,
			     const uint8_t after[KURA_BLOB_ID_LEN],
			     struct kura_scrub_blob *out, size_t max,
			     size_t *count, struct kura_error *err)
{
	struct scrub_arg a = { bucket_id, after, max };
	return read_rows(priv, &sql_scrub_blobs, bind_scrub, &a, scrub_row,
			 sizeof(*out), out, max, count, err);
}

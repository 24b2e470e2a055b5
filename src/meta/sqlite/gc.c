/*
 * gc.c — the blob garbage queue of the SQLite metadata store and the
 * questions about blob references that recovery and the writers ask.
 *
 * Blob safety: a blob id is in at most one of parts, upload_parts and gc
 * at any commit.  It leaves parts or upload_parts and enters gc in the same
 * transaction, unless the new version (or upload part) reuses it; a new
 * part may not name a blob already queued in gc (it may be being deleted
 * right now) nor one the other table holds.  gc queueing is guarded by
 * NOT EXISTS in both part tables, so a blob still in use is never queued
 * (bucket_purge, which queues a whole bucket, deletes every part row of it
 * in the same transaction).  A queued blob counts as referenced until
 * gc_done, so recovery never deletes a blob twice or one still wanted.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdlib.h>

#include "sqlite_int.h"
#include "kura/banned.h"

#define GC_BATCH_MAX 65536

/* A blob the new version or an upload still uses is not garbage. */
static const struct sq_sql sql_gc_queue = {
	.what = "queue blob for gc",
	.text = "INSERT INTO gc (blob_id) SELECT ?1 WHERE NOT EXISTS (SELECT "
		"1 FROM parts WHERE blob_id = ?1) AND NOT EXISTS (SELECT 1 "
		"FROM upload_parts WHERE blob_id = ?1) ON CONFLICT DO NOTHING",
};

enum kura_err sq_gc_queue(struct sq_conn *c, const struct sq_blob_list *bl,
			  struct kura_error *err)
{
	enum kura_err r = KURA_OK;

	for (size_t i = 0; r == KURA_OK && i < bl->n; i++) {
		struct sq_stmt st;

		sq_begin(&st, c, &sql_gc_queue, err);
		sq_bind_blob(&st, 1, bl->ids[i], KURA_BLOB_ID_LEN);
		r = sq_exec(&st);
	}
	return r;
}

static const struct sq_sql sql_blob_state = {
	.what = "check blob state",
	.text = "SELECT EXISTS (SELECT 1 FROM gc WHERE blob_id = ?1), EXISTS "
		"(SELECT 1 FROM parts WHERE blob_id = ?1), EXISTS (SELECT 1 "
		"FROM upload_parts WHERE blob_id = ?1)",
};

enum kura_err sq_blob_state(struct sq_conn *c,
			    const uint8_t id[KURA_BLOB_ID_LEN],
			    struct sq_blob_state *out, struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_blob_state, err);
	sq_bind_blob(&st, 1, id, KURA_BLOB_ID_LEN);
	if (sq_row(&st)) {
		out->queued = sq_col_int(&st, 0) != 0;
		out->in_parts = sq_col_int(&st, 1) != 0;
		out->in_uploads = sq_col_int(&st, 2) != 0;
	} else {
		sq_fail(&st, KURA_EIO, "sqlite: check blob state: no row");
	}
	return sq_end(&st);
}

static const struct sq_sql sql_gc_next = {
	.what = "read gc queue",
	.text = "SELECT blob_id FROM gc LIMIT ?1",
};

enum kura_err sq_gc_next(void *priv, uint8_t (*ids)[KURA_BLOB_ID_LEN],
			 size_t max, size_t *count, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	uint8_t(*tmp)[KURA_BLOB_ID_LEN];
	size_t n = 0;
	enum kura_err r;

	if (max > GC_BATCH_MAX)
		max = GC_BATCH_MAX; /* "up to max" */
	if (max == 0) {
		*count = 0;
		return KURA_OK;
	}
	/* Outputs are written only on success. */
	tmp = malloc(max * sizeof(*tmp));
	if (tmp == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK) {
		sq_begin(&st, c, &sql_gc_next, err);
		sq_bind_i64(&st, 1, (int64_t)max);
		while (n < max && sq_row(&st)) {
			sq_col_blob(&st, 0, tmp[n], KURA_BLOB_ID_LEN, NULL,
				    "gc blob id");
			n++;
		}
		r = sq_end(&st);
	}
	sq_conn_release(m, c);
	if (r == KURA_OK && n > 0)
		memcpy(ids, tmp, n * sizeof(*tmp));
	if (r == KURA_OK)
		*count = n;
	free(tmp);
	return r;
}

static const struct sq_sql sql_gc_delete = {
	.what = "forget gc blob",
	.text = "DELETE FROM gc WHERE blob_id = ?1",
};

struct gc_done_arg {
	const uint8_t (*ids)[KURA_BLOB_ID_LEN];
	size_t count;
};

static enum kura_err gc_done_body(struct sq_conn *c, void *arg,
				  struct kura_error *err)
{
	struct gc_done_arg *a = arg;
	enum kura_err r = KURA_OK;

	for (size_t i = 0; r == KURA_OK && i < a->count; i++) {
		struct sq_stmt st;

		sq_begin(&st, c, &sql_gc_delete, err);
		sq_bind_blob(&st, 1, a->ids[i], KURA_BLOB_ID_LEN);
		r = sq_exec(&st);
	}
	return r;
}

enum kura_err sq_gc_done(void *priv, const uint8_t (*ids)[KURA_BLOB_ID_LEN],
			 size_t count, struct kura_error *err)
{
	struct gc_done_arg a = { ids, count };

	if (count == 0)
		return KURA_OK;
	if (ids == NULL)
		return kura_fail(err, KURA_EINVAL, "gc ids missing");
	return sq_write_tx(priv, gc_done_body, &a, err);
}

static const struct sq_sql sql_blob_referenced = {
	.what = "check blob reference",
	.text = "SELECT EXISTS (SELECT 1 FROM parts WHERE blob_id = ?1) OR "
		"EXISTS (SELECT 1 FROM upload_parts WHERE blob_id = ?1) OR "
		"EXISTS (SELECT 1 FROM gc WHERE blob_id = ?1)",
};

enum kura_err sq_blob_referenced(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
				 bool *referenced, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	bool ref = false;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_blob_referenced, err);
	sq_bind_blob(&st, 1, id, KURA_BLOB_ID_LEN);
	if (sq_row(&st))
		ref = sq_col_int(&st, 0) != 0;
	else
		sq_fail(&st, KURA_EIO, "sqlite: check blob reference: no row");
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*referenced = ref;
	return r;
}

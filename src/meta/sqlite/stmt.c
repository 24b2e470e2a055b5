/*
 * stmt.c — the statement helper of the SQLite metadata store: prepared
 * statements cached per connection, a sticky error per statement in use,
 * checked column readers, row arrays, and the translation of SQLite result
 * codes (the only place that knows them).
 *
 * Cache: an open-addressing table in each connection, keyed by the address
 * of the const struct sq_sql that a concept file declares next to the code
 * running it; statements are prepared on first use with
 * SQLITE_PREPARE_PERSISTENT and finalized when the connection closes.  A
 * statement is in use by one struct sq_stmt at a time: sq_begin asserts
 * that it is not still running (a missing sq_end).
 *
 * Threading: a connection, and so its cache, is used by one thread at a
 * time.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sqlite_int.h"
#include "kura/banned.h"

/* ---- result codes ---- */

enum kura_err sq_map_rc(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_ROWID:
		return KURA_EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		/* Callers check references first; this means a broken
		 * invariant, not bad input. */
		return KURA_ESTATE;
	}
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return KURA_ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return KURA_EBUSY;
	case SQLITE_NOMEM:
		return KURA_ENOMEM;
	case SQLITE_TOOBIG:
		return KURA_ETOOBIG;
	case SQLITE_CONSTRAINT:
		return KURA_EINVAL;
	default:
		return KURA_EIO;
	}
}

enum kura_err sq_sqlite_fail(struct kura_error *err, sqlite3 *db, int rc,
			     const char *what)
{
	const char *msg = db != NULL && sqlite3_errcode(db) == rc ?
				  sqlite3_errmsg(db) :
				  sqlite3_errstr(rc);
	return kura_fail(err, sq_map_rc(rc), "sqlite: %s: %s", what, msg);
}

/* ---- the cache ---- */

static size_t slot_of(const struct sq_sql *sql)
{
	uint64_t h = (uint64_t)(uintptr_t)sql * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (SQ_CACHE_SLOTS - 1);
}

void sq_cache_clear(struct sq_conn *c)
{
	for (size_t i = 0; i < SQ_CACHE_SLOTS; i++) {
		sqlite3_finalize(c->cache[i].s);
		c->cache[i].sql = NULL;
		c->cache[i].s = NULL;
	}
}

/* ---- a statement in use ---- */

void sq_begin(struct sq_stmt *st, struct sq_conn *c, const struct sq_sql *sql,
	      struct kura_error *err)
{
	size_t i = slot_of(sql);

	st->c = c;
	st->s = NULL;
	st->sql = sql;
	st->err = err;
	st->rc = SQLITE_OK;
	st->r = KURA_OK;
	st->changes = 0;
	for (size_t n = 0; n < SQ_CACHE_SLOTS; n++) {
		struct sq_slot *slot = &c->cache[i];

		if (slot->sql == sql) {
			st->s = slot->s;
			assert(!sqlite3_stmt_busy(st->s));
			return;
		}
		if (slot->sql == NULL) {
			st->rc = sqlite3_prepare_v3(c->db, sql->text, -1,
						    SQLITE_PREPARE_PERSISTENT,
						    &st->s, NULL);
			if (st->rc != SQLITE_OK || st->s == NULL) {
				if (st->rc == SQLITE_OK)
					st->rc = SQLITE_MISUSE; /* no SQL */
				sqlite3_finalize(st->s);
				st->s = NULL;
				return;
			}
			slot->sql = sql;
			slot->s = st->s;
			return;
		}
		i = (i + 1) & (SQ_CACHE_SLOTS - 1);
	}
	/* More statements than SQ_CACHE_SLOTS / 2 were ever meant to be. */
	st->r = kura_fail(err, KURA_EIO, "sqlite: %s: statement cache full",
			  sql->what);
}

bool sq_row(struct sq_stmt *st)
{
	int rc;

	if (sq_failed(st))
		return false;
	rc = sqlite3_step(st->s);
	if (rc == SQLITE_ROW)
		return true;
	if (rc != SQLITE_DONE)
		st->rc = rc;
	return false;
}

void sq_run(struct sq_stmt *st)
{
	int rc;

	if (sq_failed(st))
		return;
	rc = sqlite3_step(st->s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		st->changes = sqlite3_changes64(st->c->db);
	else
		st->rc = rc;
}

enum kura_err sq_end(struct sq_stmt *st)
{
	if (st->rc != SQLITE_OK && st->r == KURA_OK)
		st->r = sq_sqlite_fail(st->err, st->c->db, st->rc,
				       st->sql->what);
	if (st->s != NULL) {
		sqlite3_reset(st->s);
		sqlite3_clear_bindings(st->s);
		st->s = NULL;
	}
	return st->r;
}

enum kura_err sq_end_unique(struct sq_stmt *st, const char *fmt, ...)
{
	if (st->rc != SQLITE_OK && st->r == KURA_OK &&
	    sq_map_rc(st->rc) == KURA_EEXIST) {
		char msg[KURA_ERROR_MSG_MAX];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		st->r = kura_fail(st->err, KURA_EEXIST, "%s", msg);
	}
	return sq_end(st);
}

enum kura_err sq_exec(struct sq_stmt *st)
{
	sq_run(st);
	return sq_end(st);
}

void sq_fail(struct sq_stmt *st, enum kura_err code, const char *fmt, ...)
{
	char msg[KURA_ERROR_MSG_MAX];
	va_list ap;

	if (sq_failed(st))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->r = kura_fail(st->err, code, "%s", msg);
}

/* ---- checked column readers ---- */

void sq_col_text(struct sq_stmt *st, int i, char *dst, size_t cap,
		 const char *what)
{
	const unsigned char *t;
	int n;

	if (sq_failed(st))
		return;
	t = sqlite3_column_text(st->s, i);
	n = sqlite3_column_bytes(st->s, i);
	if (t == NULL) {
		sq_fail(st, KURA_EIO, "sqlite: %s is NULL", what);
		return;
	}
	if (n < 0 || (size_t)n >= cap || memchr(t, 0, (size_t)n) != NULL) {
		sq_fail(st, KURA_EIO, "sqlite: corrupt %s (%d bytes)", what, n);
		return;
	}
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
}

void sq_col_blob(struct sq_stmt *st, int i, uint8_t *dst, size_t cap,
		 size_t *len, const char *what)
{
	const void *p;
	int n;

	if (sq_failed(st))
		return;
	p = sqlite3_column_blob(st->s, i);
	n = sqlite3_column_bytes(st->s, i);
	if (n < 0 || (size_t)n > cap || (len == NULL && (size_t)n != cap) ||
	    (p == NULL && n > 0)) {
		sq_fail(st, KURA_EIO, "sqlite: corrupt %s (%d bytes)", what, n);
		return;
	}
	if (n > 0)
		memcpy(dst, p, (size_t)n);
	if (len != NULL)
		*len = (size_t)n;
}

void sq_col_ptext(struct sq_stmt *st, int i, struct kura_pool *pool,
		  const char **out)
{
	const unsigned char *t;
	int n;

	if (sq_failed(st))
		return;
	if (sq_col_null(st, i)) {
		*out = NULL;
		return;
	}
	t = sqlite3_column_text(st->s, i);
	n = sqlite3_column_bytes(st->s, i);
	if (t == NULL || n < 0) {
		sq_fail(st, KURA_ENOMEM, "sqlite: read text column");
		return;
	}
	*out = kura_pstrndup(pool, (const char *)t, (size_t)n);
	if (*out == NULL)
		sq_fail(st, KURA_ENOMEM, "out of memory");
}

void sq_col_pkey(struct sq_stmt *st, int i, struct kura_pool *pool,
		 const char **key, size_t *len, const char *what)
{
	const void *k;
	int n;

	if (sq_failed(st))
		return;
	k = sqlite3_column_blob(st->s, i);
	n = sqlite3_column_bytes(st->s, i);
	if (k == NULL || n <= 0 || n > KURA_OBJECT_KEY_MAX) {
		sq_fail(st, KURA_EIO, "sqlite: corrupt %s", what);
		return;
	}
	*key = kura_pstrndup(pool, k, (size_t)n);
	if (*key == NULL) {
		sq_fail(st, KURA_ENOMEM, "out of memory");
		return;
	}
	*len = (size_t)n;
}

int64_t sq_col_range(struct sq_stmt *st, int i, int64_t min, int64_t max,
		     const char *what)
{
	int64_t v;

	if (sq_failed(st))
		return min;
	v = sqlite3_column_int64(st->s, i);
	if (v < min || v > max) {
		sq_fail(st, KURA_EIO, "sqlite: corrupt %s", what);
		return min;
	}
	return v;
}

/* ---- whole statements ---- */

enum kura_err sq_exec_sql(struct sq_conn *c, const struct sq_sql *sql,
			  struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, sql, err);
	return sq_exec(&st);
}

enum kura_err sq_exec_u64(struct sq_conn *c, const struct sq_sql *sql,
			  uint64_t v, struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, sql, err);
	sq_bind_u64(&st, 1, v);
	return sq_exec(&st);
}

enum kura_err sq_exec_uid(struct sq_conn *c, const struct sq_sql *sql,
			  const uint8_t uid[KURA_UID_LEN],
			  struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, sql, err);
	sq_bind_blob(&st, 1, uid, KURA_UID_LEN);
	return sq_exec(&st);
}

enum kura_err sq_exists_u64(struct sq_conn *c, const struct sq_sql *sql,
			    uint64_t v, bool *found, struct kura_error *err)
{
	struct sq_stmt st;
	bool row;
	enum kura_err r;

	sq_begin(&st, c, sql, err);
	sq_bind_u64(&st, 1, v);
	row = sq_row(&st);
	r = sq_end(&st);
	if (r == KURA_OK)
		*found = row;
	return r;
}

enum kura_err sq_exists_blob(struct sq_conn *c, const struct sq_sql *sql,
			     const void *p, size_t n, bool *found,
			     struct kura_error *err)
{
	struct sq_stmt st;
	bool row;
	enum kura_err r;

	sq_begin(&st, c, sql, err);
	sq_bind_blob(&st, 1, p, n);
	row = sq_row(&st);
	r = sq_end(&st);
	if (r == KURA_OK)
		*found = row;
	return r;
}

/* ---- row arrays ---- */

void sq_array_init(struct sq_array *a, size_t elem, size_t first, bool wipe)
{
	a->v = NULL;
	a->n = 0;
	a->cap = 0;
	a->elem = elem;
	a->first = first > 0 ? first : 8;
	a->wipe = wipe;
}

void *sq_array_add(struct sq_array *a, struct sq_stmt *st)
{
	void *row;

	if (a->n == a->cap) {
		size_t ncap = a->cap == 0 ? a->first : a->cap * 2;
		void *p = NULL;

		if (ncap <= SIZE_MAX / a->elem)
			p = realloc(a->v, ncap * a->elem);
		if (p == NULL) {
			sq_fail(st, KURA_ENOMEM, "out of memory");
			return NULL;
		}
		a->v = p;
		a->cap = ncap;
	}
	row = a->v + a->n * a->elem;
	a->n++;
	return row;
}

enum kura_err sq_array_end(struct sq_array *a, enum kura_err r,
			   struct kura_pool *pool, void **out, size_t *count,
			   struct kura_error *err)
{
	void *res = NULL;

	if (r == KURA_OK && a->n > 0) {
		res = kura_pmemdup(pool, a->v, a->n * a->elem);
		if (res == NULL)
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
	}
	if (r == KURA_OK) {
		*out = res;
		*count = a->n;
	}
	if (a->v != NULL && a->wipe)
		memset(a->v, 0, a->cap * a->elem);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
	return r;
}

enum kura_err sq_list(struct sq_store *m, const struct sq_list *l,
		      const uint64_t *key, size_t limit, struct kura_pool *pool,
		      void **out, size_t *count, struct kura_error *err)
{
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	struct sq_array a;
	void *row;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	sq_array_init(&a, l->elem, 0, l->wipe);
	sq_begin(&st, c, l->sql, err);
	if (key != NULL)
		sq_bind_u64(&st, 1, *key);
	while (a.n < limit && sq_row(&st) &&
	       (row = sq_array_add(&a, &st)) != NULL)
		l->row(&st, row);
	r = sq_array_end(&a, sq_end(&st), pool, out, count, err);
	sq_conn_release(m, c);
	return r;
}

/* ---- small checks ---- */

bool sq_str_ok(const char *s, size_t cap, bool may_be_empty)
{
	size_t n = strnlen(s, cap);

	return n < cap && (may_be_empty || n > 0);
}

/*
 * conn.c — the connection pool and the transactions of the SQLite
 * metadata store.
 *
 * Durability: journal_mode=WAL (schema.c) with synchronous=FULL, so a call
 * that returned KURA_OK has its transaction fsynced in the WAL (it survives
 * power loss).
 *
 * Threading: connections are opened NOMUTEX (SQLite's multi-thread mode:
 * one connection is used by one thread at a time) and kept in a pool of at
 * most CONN_MAX behind a mutex and a condition variable; each connection
 * caches its prepared statements (stmt.c).  Readers run concurrently (WAL
 * gives each statement or read transaction a snapshot).  Writers are
 * serialised inside the process by write_mu, so they queue without
 * polling, and each write is one BEGIN IMMEDIATE transaction (the write
 * lock is taken up front, never upgraded from a read lock, which is what
 * deadlocks deferred transactions); SQLITE_BUSY from another process is
 * waited out by the busy timeout and the transaction retried BUSY_RETRIES
 * times before KURA_EBUSY.
 *
 * Deleted rows are zeroed in their pages (secure_delete=FAST) so names of
 * deleted objects do not linger in free space; old page images may remain
 * in the WAL until it is checkpointed and overwritten.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kura/log.h"
#include "sqlite_int.h"
#include "kura/banned.h"

#define CONN_MAX 16
#define BUSY_TIMEOUT_MS 10000
#define BUSY_RETRIES 3
#define WAL_SIZE_LIMIT (64 * 1024 * 1024)

static const struct sq_sql sql_begin = {
	.what = "begin",
	.text = "BEGIN",
};
static const struct sq_sql sql_begin_immediate = {
	.what = "begin immediate",
	.text = "BEGIN IMMEDIATE",
};
static const struct sq_sql sql_commit = {
	.what = "commit",
	.text = "COMMIT",
};
static const struct sq_sql sql_end_read = {
	.what = "end read",
	.text = "COMMIT",
};
static const struct sq_sql sql_rollback = {
	.what = "rollback",
	.text = "ROLLBACK",
};

/* ---- connections ---- */

static void conn_free(struct sq_conn *c)
{
	if (c == NULL)
		return;
	sq_cache_clear(c);
	sqlite3_close(c->db);
	free(c);
}

static enum kura_err conn_new(struct sq_store *m, struct sq_conn **out,
			      struct kura_error *err)
{
	struct sq_conn *c = calloc(1, sizeof(*c));
	char pragmas[256];
	char *msg = NULL;
	enum kura_err r = KURA_OK;
	int rc;

	if (c == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	c->m = m;
	/* No CREATE: the file was made with mode 0600 by the opener. */
	rc = sqlite3_open_v2(m->path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_PRIVATECACHE,
			     NULL);
	if (rc != SQLITE_OK) {
		r = c->db != NULL ? sq_sqlite_fail(err, c->db, rc, m->path) :
				    kura_fail(err, KURA_ENOMEM, "sqlite open");
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	/* Refuse schema-corrupting SQL and untrusted schema functions. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA foreign_keys = ON;"
		 "PRAGMA synchronous = FULL;"
		 "PRAGMA secure_delete = FAST;"
		 "PRAGMA journal_size_limit = %d;",
		 WAL_SIZE_LIMIT);
	rc = sqlite3_exec(c->db, pragmas, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		r = kura_fail(err, sq_map_rc(rc),
			      "sqlite: set pragmas on '%s': %s", m->path,
			      msg != NULL ? msg : sqlite3_errstr(rc));
out:
	sqlite3_free(msg);
	if (r != KURA_OK) {
		conn_free(c);
		return r;
	}
	*out = c;
	return KURA_OK;
}

void sq_pool_init(struct sq_store *m)
{
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	pthread_mutex_init(&m->write_mu, NULL);
	m->idle = NULL;
	m->total = 0;
	m->live = true;
}

/* Every connection is idle by now (no call is running). */
void sq_pool_close(struct sq_store *m)
{
	if (m->idle != NULL)
		(void)sqlite3_exec(m->idle->db, "PRAGMA optimize", NULL, NULL,
				   NULL);
	while (m->idle != NULL) {
		struct sq_conn *c = m->idle;
		m->idle = c->next;
		conn_free(c);
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->write_mu);
	m->live = false;
}

/* Take a connection, opening a new one while fewer than CONN_MAX exist. */
enum kura_err sq_conn_acquire(struct sq_store *m, struct sq_conn **out,
			      struct kura_error *err)
{
	struct sq_conn *c = NULL;
	enum kura_err r;

	pthread_mutex_lock(&m->mu);
	while (m->idle == NULL && m->total >= CONN_MAX)
		pthread_cond_wait(&m->cv, &m->mu);
	if (m->idle != NULL) {
		c = m->idle;
		m->idle = c->next;
		pthread_mutex_unlock(&m->mu);
		c->next = NULL;
		*out = c;
		return KURA_OK;
	}
	m->total++;
	pthread_mutex_unlock(&m->mu);

	r = conn_new(m, &c, err);
	if (r != KURA_OK) {
		pthread_mutex_lock(&m->mu);
		m->total--;
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
		return r;
	}
	*out = c;
	return KURA_OK;
}

/* Return a connection; one left inside a transaction (a failed call) is
 * rolled back first, and dropped if even that fails.  NULL is a no-op. */
void sq_conn_release(struct sq_store *m, struct sq_conn *c)
{
	if (c == NULL)
		return;
	sq_tx_rollback(c);
	pthread_mutex_lock(&m->mu);
	if (sqlite3_get_autocommit(c->db)) {
		c->next = m->idle;
		m->idle = c;
	} else {
		m->total--;
		pthread_mutex_unlock(&m->mu);
		conn_free(c);
		pthread_mutex_lock(&m->mu);
	}
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/* ---- transactions ---- */

enum kura_err sq_tx_begin(struct sq_conn *c, bool write, struct kura_error *err)
{
	return sq_exec_sql(c, write ? &sql_begin_immediate : &sql_begin, err);
}

enum kura_err sq_tx_commit(struct sq_conn *c, struct kura_error *err)
{
	return sq_exec_sql(c, &sql_commit, err);
}

enum kura_err sq_tx_end_read(struct sq_conn *c, struct kura_error *err)
{
	return sq_exec_sql(c, &sql_end_read, err);
}

void sq_tx_rollback(struct sq_conn *c)
{
	if (!sqlite3_get_autocommit(c->db)) {
		struct kura_error ignored = { 0 };
		(void)sq_exec_sql(c, &sql_rollback, &ignored);
	}
}

static enum kura_err tx_once(struct sq_conn *c,
			     enum kura_err (*body)(struct sq_conn *, void *,
						   struct kura_error *),
			     void *arg, struct kura_error *err)
{
	enum kura_err r = sq_tx_begin(c, true, err);

	if (r != KURA_OK)
		return r;
	r = body(c, arg, err);
	if (r == KURA_OK)
		r = sq_tx_commit(c, err);
	if (r != KURA_OK)
		sq_tx_rollback(c);
	return r;
}

enum kura_err sq_write_tx(struct sq_store *m,
			  enum kura_err (*body)(struct sq_conn *, void *,
						struct kura_error *),
			  void *arg, struct kura_error *err)
{
	struct sq_conn *c = NULL;
	enum kura_err r;

	pthread_mutex_lock(&m->write_mu);
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	for (int attempt = 1;; attempt++) {
		struct kura_error e = { 0 };

		r = tx_once(c, body, arg, &e);
		if (r == KURA_OK)
			break;
		if (r != KURA_EBUSY || attempt >= BUSY_RETRIES) {
			kura_fail(err, r, "%s", e.msg);
			break;
		}
		kura_warn(NULL, "meta: '%s' busy, retrying: %s", m->path,
			  e.msg);
	}
out:
	sq_conn_release(m, c);
	pthread_mutex_unlock(&m->write_mu);
	return r;
}

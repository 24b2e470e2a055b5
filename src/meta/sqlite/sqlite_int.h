/*
 * sqlite_int.h — what the files of the SQLite metadata store share.
 *
 * The store (kura_meta_sqlite, contract include/kura/meta.h) is a family
 * of files around this header, one concept each, as SQLite's vdbe*.c share
 * vdbeInt.h:
 *
 *   sqlite.c       the ops table, open and close
 *   schema.c       the schema: migrations[], the file, WAL mode
 *   conn.c         the connection pool and transactions
 *   stmt.c         the statement helper and its cache, row arrays,
 *                  SQLite result codes to enum kura_err
 *   settings.c     small named values
 *   tenants.c      tenants and access keys, with their lifecycle
 *   buckets.c      buckets: create, read, list, delete, purge, encryption
 *   bucket_lifecycle.c  a bucket's lifecycle text, its digest under the MAC
 *   keys.c         kura keys, their versions, the key generation
 *   bucket_keys.c  bucket keys, re-wrapping after a rotation
 *   objects.c      objects, their parts and tags, key ranges of listings
 *   uploads.c      multipart uploads and their parts
 *   seals.c        metadata seals: rows to seal, storing new seals
 *   rowmacs.c      row MACs of tenants, access keys, buckets and keys
 *   gc.c           the blob garbage queue and blob references
 *
 * Each file declares the SQL it runs next to the code that runs it, as a
 * const struct sq_sql; the statement helper (struct sq_stmt) prepares it
 * once per connection and caches it under the definition's address, so
 * adding a statement touches only the file that runs it.  Everything
 * declared here starts with sq_ or SQ_.
 *
 * The statement helper has a sticky error, after SQLite's sqlite3_str:
 * sq_begin() a statement, bind values without checking each bind, step
 * rows with sq_row() (or sq_run() one that returns none) and read their
 * columns, then sq_end() it once.  The first failure — preparing, binding,
 * stepping, or a column found corrupt by a reader — is kept; everything
 * after it is a no-op; sq_end() resets the statement, clears its bindings,
 * maps a SQLite code to enum kura_err and records the message in the
 * caller's struct kura_error.
 *
 * Dialect.  The SQL in the concept files is what SQLite (>= 3.39) and
 * PostgreSQL share, so that a PostgreSQL store can run the same text:
 * INSERT ... ON CONFLICT DO NOTHING (not INSERT OR IGNORE), IS NOT DISTINCT
 * FROM (not IS), INSERT ... RETURNING id (not last_insert_rowid()), row
 * values, integers compared to 1 where a boolean is meant.  What differs
 * stays in three places: parameters are written ?1..?N (a PostgreSQL
 * backend rewrites them to $1..$N when it prepares); the schema, its
 * migrations and every PRAGMA are SQLite's own (schema.c, conn.c); SQLite
 * result codes are translated in stmt.c (sq_map_rc) and nowhere else.
 *
 * Threading: a struct sq_conn is used by one thread at a time (conn.c);
 * struct sq_store is shared and guarded by its mutexes.
 */
#ifndef KURA_META_SQLITE_INT_H
#define KURA_META_SQLITE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "kura/err.h"
#include "kura/meta.h"
#include "kura/pool.h"

#define SQ_PARTS_MAX 10001 /* part 0, or parts 1..10000 */
#define SQ_BATCH_MAX 65536 /* rows per re-wrap, retired or seal listing */
#define SQ_CACHE_SLOTS 512 /* power of two, over twice the statements */

/* ---- the store and its connections ---- */

/* One statement definition, declared where it is run. */
struct sq_sql {
	const char *what; /* what it does, for messages */
	const char *text; /* one statement, parameters ?1..?N */
};

struct sq_slot {
	const struct sq_sql *sql; /* NULL: free */
	sqlite3_stmt *s;
};

struct sq_conn {
	struct sq_store *m; /* the store it belongs to */
	sqlite3 *db;
	struct sq_conn *next;		      /* in the idle list */
	struct sq_slot cache[SQ_CACHE_SLOTS]; /* prepared statements */
};

struct sq_store {
	bool live; /* mutexes initialised */
	char path[PATH_MAX];
	pthread_mutex_t mu;	  /* guards idle and total */
	pthread_cond_t cv;	  /* a connection was released */
	pthread_mutex_t write_mu; /* one writer at a time in-process */
	struct sq_conn *idle;
	unsigned total; /* connections open or being opened */
	/* Set once by set_row_key before the first call that uses it. */
	uint8_t row_key[KURA_ROW_KEY_LEN];
	bool row_key_set;
};

/* conn.c */
void sq_pool_init(struct sq_store *m);
void sq_pool_close(struct sq_store *m);
enum kura_err sq_conn_acquire(struct sq_store *m, struct sq_conn **out,
			      struct kura_error *err);
void sq_conn_release(struct sq_store *m, struct sq_conn *c);
/* Run body in one write transaction (BEGIN IMMEDIATE): committed durably
 * when it returns KURA_OK, rolled back otherwise.  body may run more than
 * once (SQLITE_BUSY from another process), so it keeps its results in arg
 * until the end. */
enum kura_err sq_write_tx(struct sq_store *m,
			  enum kura_err (*body)(struct sq_conn *, void *,
						struct kura_error *),
			  void *arg, struct kura_error *err);
/* Transactions by hand: a read (one snapshot for several statements,
 * ended by sq_tx_end_read) or, with write, BEGIN IMMEDIATE (ended by
 * sq_tx_commit).  sq_tx_rollback is a no-op outside a transaction. */
enum kura_err sq_tx_begin(struct sq_conn *c, bool write,
			  struct kura_error *err);
enum kura_err sq_tx_commit(struct sq_conn *c, struct kura_error *err);
enum kura_err sq_tx_end_read(struct sq_conn *c, struct kura_error *err);
void sq_tx_rollback(struct sq_conn *c);

/* schema.c */
enum kura_err sq_prepare_file(const char *path, struct kura_error *err);
enum kura_err sq_schema_upgrade(struct sq_store *m, struct sq_conn *c,
				struct kura_error *err);

/* ---- the statement helper (stmt.c) ---- */

struct sq_stmt {
	struct sq_conn *c;
	sqlite3_stmt *s; /* NULL when it could not be prepared */
	const struct sq_sql *sql;
	struct kura_error *err; /* where the first failure goes */
	int rc;			/* first SQLite failure, or SQLITE_OK */
	enum kura_err r;	/* first failure recorded in *err */
	int64_t changes;	/* rows changed, after sq_run */
};

/* Translate a SQLite result code (the only place that knows them). */
enum kura_err sq_map_rc(int rc);
/* Record SQLite failure rc of db as "sqlite: what: message". */
enum kura_err sq_sqlite_fail(struct kura_error *err, sqlite3 *db, int rc,
			     const char *what);

/* Take sql's prepared statement on c (preparing it on first use). */
void sq_begin(struct sq_stmt *st, struct sq_conn *c, const struct sq_sql *sql,
	      struct kura_error *err);
/* Step: true while there is a row to read; false at the end or after a
 * failure (sq_end tells which). */
bool sq_row(struct sq_stmt *st);
/* Step a statement that returns no rows; st->changes then says how many
 * rows it changed. */
void sq_run(struct sq_stmt *st);
/* Reset the statement and clear its bindings; the first failure, mapped
 * and recorded, or KURA_OK. */
enum kura_err sq_end(struct sq_stmt *st) __attribute__((warn_unused_result));
/* Like sq_end, but a uniqueness violation is KURA_EEXIST with this
 * message (an insert that names something taken). */
enum kura_err sq_end_unique(struct sq_stmt *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), warn_unused_result));
/* sq_run then sq_end. */
enum kura_err sq_exec(struct sq_stmt *st) __attribute__((warn_unused_result));
/* Record a failure found while reading a row (first one wins). */
void sq_fail(struct sq_stmt *st, enum kura_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool sq_failed(const struct sq_stmt *st)
{
	return st->rc != SQLITE_OK || st->r != KURA_OK;
}

/* Unsigned 64-bit ids are stored bit-for-bit in signed INTEGERs. */
static inline int64_t sq_u2i(uint64_t v)
{
	int64_t r;
	memcpy(&r, &v, sizeof(r));
	return r;
}

static inline uint64_t sq_i2u(int64_t v)
{
	uint64_t r;
	memcpy(&r, &v, sizeof(r));
	return r;
}

/* Binders: no-ops after a failure, which they may record. */
static inline void sq_bind_i64(struct sq_stmt *st, int i, int64_t v)
{
	if (!sq_failed(st))
		st->rc = sqlite3_bind_int64(st->s, i, v);
}

static inline void sq_bind_u64(struct sq_stmt *st, int i, uint64_t v)
{
	sq_bind_i64(st, i, sq_u2i(v));
}

static inline void sq_bind_null(struct sq_stmt *st, int i)
{
	if (!sq_failed(st))
		st->rc = sqlite3_bind_null(st->s, i);
}

/* 0 means "none" for optional references: stored as NULL, so the foreign
 * key holds. */
static inline void sq_bind_opt_u64(struct sq_stmt *st, int i, uint64_t v)
{
	if (v == 0)
		sq_bind_null(st, i);
	else
		sq_bind_u64(st, i, v);
}

/* The bytes stay the caller's until sq_end (SQLITE_STATIC). */
static inline void sq_bind_blob(struct sq_stmt *st, int i, const void *p,
				size_t n)
{
	if (sq_failed(st))
		return;
	if (n > INT_MAX) {
		st->rc = SQLITE_TOOBIG;
		return;
	}
	/* A NULL pointer would bind SQL NULL, not an empty blob. */
	st->rc = sqlite3_bind_blob(st->s, i, n > 0 ? p : (const void *)"",
				   (int)n, SQLITE_STATIC);
}

/* A blob, or SQL NULL when n is 0 (a row without a seal). */
static inline void sq_bind_opt_blob(struct sq_stmt *st, int i, const void *p,
				    size_t n)
{
	if (n == 0)
		sq_bind_null(st, i);
	else
		sq_bind_blob(st, i, p, n);
}

/* NULL binds SQL NULL. */
static inline void sq_bind_text(struct sq_stmt *st, int i, const char *t)
{
	size_t n;

	if (sq_failed(st))
		return;
	if (t == NULL) {
		st->rc = sqlite3_bind_null(st->s, i);
		return;
	}
	n = strlen(t);
	if (n > INT_MAX) {
		st->rc = SQLITE_TOOBIG;
		return;
	}
	st->rc = sqlite3_bind_text(st->s, i, t, (int)n, SQLITE_STATIC);
}

/* Column readers of the current row. */
static inline int64_t sq_col_i64(const struct sq_stmt *st, int i)
{
	return sqlite3_column_int64(st->s, i);
}

static inline uint64_t sq_col_u64(const struct sq_stmt *st, int i)
{
	return sq_i2u(sqlite3_column_int64(st->s, i));
}

static inline int sq_col_int(const struct sq_stmt *st, int i)
{
	return sqlite3_column_int(st->s, i);
}

static inline bool sq_col_null(const struct sq_stmt *st, int i)
{
	return sqlite3_column_type(st->s, i) == SQLITE_NULL;
}

/* NULL reads as 0 (see sq_bind_opt_u64). */
static inline uint64_t sq_col_opt_u64(const struct sq_stmt *st, int i)
{
	return sq_col_null(st, i) ? 0 : sq_col_u64(st, i);
}

/* Checked readers: a bad value is recorded as a failure (KURA_EIO,
 * "corrupt what") and leaves the destination as it was.  sq_col_text: NOT
 * NULL text, NUL-terminated; sq_col_blob: at most cap bytes (exactly cap
 * when len is NULL); sq_col_ptext: nullable text into pool; sq_col_pkey:
 * an object key (1..KURA_OBJECT_KEY_MAX bytes) into pool. */
void sq_col_text(struct sq_stmt *st, int i, char *dst, size_t cap,
		 const char *what);
void sq_col_blob(struct sq_stmt *st, int i, uint8_t *dst, size_t cap,
		 size_t *len, const char *what);
void sq_col_ptext(struct sq_stmt *st, int i, struct kura_pool *pool,
		  const char **out);
void sq_col_pkey(struct sq_stmt *st, int i, struct kura_pool *pool,
		 const char **key, size_t *len, const char *what);
/* An integer in min..max. */
int64_t sq_col_range(struct sq_stmt *st, int i, int64_t min, int64_t max,
		     const char *what);

/* Whole statements on c: no parameters, ?1 a 64-bit id, ?1 a version
 * uid; and "does a row exist" with ?1 an id or a blob. */
enum kura_err sq_exec_sql(struct sq_conn *c, const struct sq_sql *sql,
			  struct kura_error *err);
enum kura_err sq_exec_u64(struct sq_conn *c, const struct sq_sql *sql,
			  uint64_t v, struct kura_error *err);
enum kura_err sq_exec_uid(struct sq_conn *c, const struct sq_sql *sql,
			  const uint8_t uid[KURA_UID_LEN],
			  struct kura_error *err);
enum kura_err sq_exists_u64(struct sq_conn *c, const struct sq_sql *sql,
			    uint64_t v, bool *found, struct kura_error *err);
enum kura_err sq_exists_blob(struct sq_conn *c, const struct sq_sql *sql,
			     const void *p, size_t n, bool *found,
			     struct kura_error *err);

/* Finalize every statement c has prepared. */
void sq_cache_clear(struct sq_conn *c);

/*
 * A growing array of rows in scratch memory, copied into a pool at the
 * end: sq_array_add() gives room for the next row, for a row reader to
 * fill (NULL after recording KURA_ENOMEM in st); sq_array_end(a, r, ...)
 * hands out the pool copy (NULL for no rows) when r, the outcome of the
 * statements that filled it, is KURA_OK, and returns r or its own
 * failure.  It always frees the scratch memory, wiped first when the rows
 * hold wrapped keys or sealed secrets.
 */
struct sq_array {
	unsigned char *v;
	size_t n, cap;
	size_t elem;  /* bytes per row */
	size_t first; /* capacity of the first allocation */
	bool wipe;
};

void sq_array_init(struct sq_array *a, size_t elem, size_t first, bool wipe);
void *sq_array_add(struct sq_array *a, struct sq_stmt *st);
enum kura_err sq_array_end(struct sq_array *a, enum kura_err r,
			   struct kura_pool *pool, void **out, size_t *count,
			   struct kura_error *err)
	__attribute__((warn_unused_result));

/*
 * A listing by one statement: up to limit rows, ?1 bound to *key when key
 * is not NULL, each filled by row() (which starts from nothing: it zeroes
 * what it fills), copied into pool.  *out is NULL when there are none;
 * outputs are written only on success.  sq_list takes its own connection.
 */
struct sq_list {
	const struct sq_sql *sql;
	size_t elem; /* bytes per row */
	bool wipe;   /* rows hold wrapped keys or sealed secrets */
	void (*row)(struct sq_stmt *st, void *out);
};

enum kura_err sq_list(struct sq_store *m, const struct sq_list *l,
		      const uint64_t *key, size_t limit, struct kura_pool *pool,
		      void **out, size_t *count, struct kura_error *err)
	__attribute__((warn_unused_result));

/* ---- shared by the concept files ---- */

/* Is s a NUL-terminated string of 1..cap-1 bytes within a cap array? */
bool sq_str_ok(const char *s, size_t cap, bool may_be_empty);

/* tenants.c: KURA_ENOENT "no tenant N" unless tenant id exists. */
enum kura_err sq_tenant_check(struct sq_conn *c, uint64_t id,
			      struct kura_error *err);

/* buckets.c: KURA_ENOENT unless bucket id exists; its row (MAC checked);
 * its tenant. */
enum kura_err sq_bucket_fetch(struct sq_conn *c, uint64_t id,
			      struct kura_bucket *b, struct kura_error *err);
enum kura_err sq_bucket_check(struct sq_conn *c, uint64_t id,
			      struct kura_error *err);
enum kura_err sq_bucket_tenant(struct sq_conn *c, uint64_t bucket_id,
			       uint64_t *tenant_id, struct kura_error *err);

/* The columns of a key and of a bucket row, MAC last, prefixed by p (a
 * table alias such as "k." or ""), and their readers: the fields from
 * column base on, then the MAC checked (sq_*_row) or not (sq_*_fields). */
#define SQ_KEY_FIELDS(p)                                                       \
	p "id, " p "tenant_id, " p "name, " p "kind, " p "state, " p           \
	  "current_version, " p "provider, " p "imported, " p "created_ms, " p \
	  "changed_ms, " p "mac"
#define SQ_KEY_NCOLS 11
#define SQ_BUCKET_FIELDS(p)                                                 \
	p "id, " p "tenant_id, " p "name, " p "region, " p "created_ms, " p \
	  "key_id, " p "default_sse, " p "default_kms_key_id, " p           \
	  "versioning, " p "object_lock, " p "lock_default_mode, " p        \
	  "lock_default_days, " p "lock_default_years, " p                  \
	  "lifecycle_digest, " p "placement, " p "mac"
#define SQ_BUCKET_NCOLS 16

#define SQ_KEYVER_FIELDS(p)                                                    \
	p "key_id, " p "version, " p "kek_id, " p "state, " p "created_ms, " p \
	  "destroyed_ms, " p "mac"
#define SQ_KEYVER_NCOLS 7

void sq_keyver_fields(struct sq_stmt *st, int base, struct kura_key_version *v);
void sq_keyver_row(struct sq_stmt *st, int base, struct kura_key_version *v);
void sq_key_fields(struct sq_stmt *st, int base, struct kura_key *k);
void sq_key_row(struct sq_stmt *st, int base, struct kura_key *k);
void sq_bucket_fields(struct sq_stmt *st, int base, struct kura_bucket *b);
void sq_bucket_row(struct sq_stmt *st, int base, struct kura_bucket *b);

/* keys.c */
enum kura_err sq_key_fetch(struct sq_conn *c, uint64_t key_id,
			   struct kura_key *out, struct kura_error *err);
enum kura_err sq_check_new_key(const struct kura_key *k, const char *kek_id,
			       struct kura_error *err);
/* Insert key k (checked) and its version 1 = kek_id; *id its new id. */
enum kura_err sq_key_insert(struct sq_conn *c, const struct kura_key *k,
			    const char *kek_id, int64_t created,
			    int64_t changed, uint64_t *id,
			    struct kura_error *err);
/* Every change to keys, key versions or bucket keys calls this inside its
 * transaction. */
enum kura_err sq_gen_bump(struct sq_conn *c, struct kura_error *err);

/* bucket_keys.c */
enum kura_err sq_check_new_bk(const struct kura_bucket_key *bk,
			      struct kura_error *err);
/* Insert the current bucket key of (bucket_id, key_id); *id its id.
 * KURA_EEXIST when the pair has one already. */
enum kura_err sq_bk_insert(struct sq_conn *c, uint64_t bucket_id,
			   uint64_t key_id, uint32_t version,
			   const uint8_t *wrapped, size_t wrapped_len,
			   int64_t created, uint64_t *id,
			   struct kura_error *err);
/* Write bucket key bk (read in this transaction, then changed: its
 * currency and retirement) with its new MAC. */
enum kura_err sq_bk_write(struct sq_conn *c, const struct kura_bucket_key *bk,
			  struct kura_error *err);
/* The current bucket key of (bucket_id, key_id) on c, checked; *found
 * false for none. */
enum kura_err sq_bk_current(struct sq_conn *c, uint64_t bucket_id,
			    uint64_t key_id, struct kura_bucket_key *bk,
			    bool *found, struct kura_error *err);
/* Part p's bucket key must be one of bucket_id's (KURA_ESTATE); only
 * SSE-C data may have none.  *known: the last key found good. */
enum kura_err sq_bk_check(struct sq_conn *c, uint64_t bucket_id,
			  enum kura_sse sse, const struct kura_part *p,
			  uint64_t *known, struct kura_error *err);

/* gc.c */
struct sq_blob_list {
	uint8_t (*ids)[KURA_BLOB_ID_LEN];
	size_t n;
};

/* Where a blob id is already recorded. */
struct sq_blob_state {
	bool queued;	 /* in gc */
	bool in_parts;	 /* part of an object version */
	bool in_uploads; /* part of an upload in progress */
};

/* Queue the blobs of a removed version, except those still in parts. */
enum kura_err sq_gc_queue(struct sq_conn *c, const struct sq_blob_list *bl,
			  struct kura_error *err);
enum kura_err sq_blob_state(struct sq_conn *c,
			    const uint8_t id[KURA_BLOB_ID_LEN],
			    struct sq_blob_state *out, struct kura_error *err);

/* objects.c: rows and records shared with uploads.c and seals.c */

/* A whole object row, as sq_object_row reads it. */
#define SQ_OBJECT_COLS                                                    \
	"SELECT key, version_uid, size, etag, mtime_ms, content_type, "   \
	"content_encoding, content_language, content_disposition, "       \
	"cache_control, expires, user_meta_json, tags_json, part_count, " \
	"sse, kms_key_id, ssec_hmac, seal, seal_bk_id, parts_digest, "    \
	"vseq, null_version, delete_marker, lock_mode, lock_until_ms, "   \
	"legal_hold FROM objects "
/* A whole upload row, as sq_upload_row reads it. */
#define SQ_UPLOAD_COLS                                                       \
	"SELECT id, bucket_id, key, version_uid, created_ms, content_type, " \
	"content_encoding, content_language, content_disposition, "          \
	"cache_control, expires, user_meta_json, tags_json, sse, "           \
	"kms_key_id, ssec_hmac, seal, seal_bk_id, lock_mode, "               \
	"lock_until_ms, legal_hold FROM uploads "
/* An upload part row, as sq_part_row reads it, then the upload's uid. */
#define SQ_UPART_COLS                                                  \
	"SELECT part_no, blob_id, size, seg_size, dek_wrapped, etag, " \
	"mtime_ms, bk_id, seal, seal_bk_id, version_uid FROM upload_parts "

void sq_object_row(struct sq_stmt *st, uint64_t bucket_id,
		   struct kura_pool *pool, struct kura_object *o);
void sq_upload_row(struct sq_stmt *st, struct kura_pool *pool,
		   struct kura_upload *u);
void sq_part_row(struct sq_stmt *st, struct kura_part *p);
/* o's parts (o->part_count of them) into pool. */
enum kura_err sq_parts_read(struct sq_conn *c, struct kura_object *o,
			    struct kura_pool *pool, struct kura_error *err);
/* Make o the newest version of its key (object_put's rules: vseq above
 * every version's, cond, the null version replaced): the replaced null
 * version's blob ids go into *old (malloc'd) for the caller to queue once
 * the new parts exist.  o's parts are the caller's to insert. */
enum kura_err sq_version_add(struct sq_conn *c, const struct kura_object *o,
			     const struct kura_put_cond *cond,
			     struct sq_blob_list *old, struct kura_error *err);
/* Bind the columns parts and upload_parts share at ?1..?9; a sealed row's
 * ETag is not stored in the clear. */
void sq_bind_part(struct sq_stmt *st, const uint8_t uid[KURA_UID_LEN],
		  const struct kura_part *p, bool sealed);
/* An object's or upload's encryption at i, i+1, i+2 (the SSE-C key check
 * value is stored only for SSE-C). */
void sq_bind_sse(struct sq_stmt *st, int i, enum kura_sse sse,
		 uint64_t kms_key_id, const uint8_t *hmac);
void sq_col_sse(struct sq_stmt *st, int i, enum kura_sse *sse,
		uint64_t *kms_key_id, uint8_t *hmac);
/* A seal and its bucket key at i, i+1 (NULL, NULL when unsealed). */
void sq_bind_seal(struct sq_stmt *st, int i, const uint8_t *seal,
		  size_t seal_len, uint64_t seal_bk_id);
void sq_col_seal(struct sq_stmt *st, int i, uint8_t *seal, size_t *seal_len,
		 uint64_t *seal_bk_id);

enum kura_err sq_check_key(const char *key, size_t key_len,
			   struct kura_error *err);
/* A bucket's default retention: a mode with days or years (not both),
 * within KURA_LOCK_DAYS_MAX, only with Object Lock; or none. */
bool sq_lock_default_ok(const struct kura_bucket *b);
/* Object Lock settings: a mode with a date, or none with 0. */
enum kura_err sq_check_lock(enum kura_lock_mode mode, int64_t until_ms,
			    struct kura_error *err);
/* Object Lock columns at i, i+1, i+2 (mode, until, legal hold). */
void sq_col_lock(struct sq_stmt *st, int i, enum kura_lock_mode *mode,
		 int64_t *until_ms, bool *legal_hold);
enum kura_err sq_check_sse(enum kura_sse sse, uint64_t kms_key_id,
			   struct kura_error *err);
/* An object record; a multipart one (upload_complete) has at least one
 * part and part numbers 1..KURA_MAX_PARTS. */
enum kura_err sq_check_object(const struct kura_object *obj, bool multipart,
			      struct kura_error *err);

/*
 * The key range of a listing page: keys under prefix, after a marker.
 * lower is the tighter of the two lower bounds (bound LOWER_GE for the
 * prefix, LOWER_GT for the marker), upper the least string above every
 * key under the prefix (upper_len 0: none).  Each listing keeps one
 * statement per combination, indexed by sq_range_variant().
 */
enum sq_lower {
	SQ_LOWER_NONE,
	SQ_LOWER_GE,
	SQ_LOWER_GT
};

struct sq_range {
	enum sq_lower bound;
	const char *lower;
	size_t lower_len;
	unsigned char *upper; /* malloc'd, or NULL */
	size_t upper_len;
};

enum kura_err sq_range_init(struct sq_range *rg, const char *prefix,
			    size_t prefix_len, const char *marker,
			    size_t marker_len, struct kura_error *err);
void sq_range_release(struct sq_range *rg);

/*
 * Row MACs (rowmacs.c; meta.h "Row MACs").  A row reader reads its fields,
 * then checks the row's MAC column against them with sq_col_row_mac (which
 * records KURA_EINTEGRITY, or KURA_EBUSY for a row the upgrade has yet to
 * reach, in st); a writer binds the MAC of the row as it will be with
 * sq_bind_row_mac.  A change to a row is read (and so checked), changed
 * and written back with its new MAC in one write transaction.
 */
enum sq_row_kind {
	SQ_ROW_TENANT,	    /* struct kura_tenant */
	SQ_ROW_ACCESS_KEY,  /* struct kura_access_key */
	SQ_ROW_BUCKET,	    /* struct kura_bucket */
	SQ_ROW_KEY,	    /* struct kura_key */
	SQ_ROW_KEY_VERSION, /* struct kura_key_version */
	SQ_ROW_BUCKET_KEY,  /* struct kura_bucket_key */
};

void sq_col_row_mac(struct sq_stmt *st, int i, enum sq_row_kind kind,
		    const void *row);
void sq_bind_row_mac(struct sq_stmt *st, int i, enum sq_row_kind kind,
		     const void *row);

/* A table for row_mac_upgrade: its rows without a MAC (select, in the
 * columns read reads), and how to give one its MAC (update: ?1 the MAC,
 * the row's primary key bound from ?2 by bind_key). */
struct sq_mac_table {
	enum sq_row_kind kind;
	size_t elem; /* sizeof the row's struct */
	const struct sq_sql *select;
	void (*read)(struct sq_stmt *st, void *row);
	const struct sq_sql *update;
	void (*bind_key)(struct sq_stmt *st, const void *row);
};

extern const struct sq_mac_table sq_tenant_macs, sq_access_key_macs,
	sq_bucket_macs, sq_key_macs, sq_key_version_macs, sq_bucket_key_macs;

/*
 * The meta.h operations, each defined in its concept's file with the type
 * of its slot in struct kura_meta_ops (the compiler checks that the
 * definition matches).
 */
#define SQ_OP(name) \
	extern __typeof__(*((struct kura_meta_ops *)0)->name) sq_##name

SQ_OP(set_row_key);
SQ_OP(row_mac_upgrade);
SQ_OP(setting_get);
SQ_OP(setting_insert);
SQ_OP(setting_delete);
SQ_OP(tenant_create);
SQ_OP(tenant_get);
SQ_OP(tenant_get_by_name);
SQ_OP(tenant_list);
SQ_OP(tenant_set_state);
SQ_OP(tenant_delete);
SQ_OP(access_key_create);
SQ_OP(access_key_get);
SQ_OP(access_key_list);
SQ_OP(access_key_revoke);
SQ_OP(access_key_replace);
SQ_OP(bucket_create);
SQ_OP(bucket_get);
SQ_OP(bucket_get_id);
SQ_OP(bucket_list);
SQ_OP(bucket_delete);
SQ_OP(bucket_set_encryption);
SQ_OP(bucket_set_versioning);
SQ_OP(bucket_set_object_lock);
SQ_OP(key_protects_locked);
SQ_OP(bucket_set_lifecycle);
SQ_OP(bucket_get_lifecycle);
SQ_OP(replica_set);
SQ_OP(replica_list);
SQ_OP(replica_history);
SQ_OP(replica_due);
SQ_OP(replica_orphans);
SQ_OP(replica_groups);
SQ_OP(replica_queue);
SQ_OP(scrub_blobs);
SQ_OP(bucket_purge);
SQ_OP(bucket_blobs);
SQ_OP(key_create);
SQ_OP(key_get);
SQ_OP(key_get_by_name);
SQ_OP(key_list);
SQ_OP(key_versions);
SQ_OP(key_set_state);
SQ_OP(key_rotate);
SQ_OP(key_version_in_use);
SQ_OP(key_version_destroyed);
SQ_OP(key_destroyed);
SQ_OP(key_generation);
SQ_OP(bucket_key_current);
SQ_OP(bucket_key_get);
SQ_OP(bucket_key_insert);
SQ_OP(bucket_key_ids);
SQ_OP(bucket_keys_of_key);
SQ_OP(bucket_keys_retired);
SQ_OP(rewrap_next);
SQ_OP(rewrap_apply);
SQ_OP(bucket_key_delete);
SQ_OP(object_put);
SQ_OP(object_get);
SQ_OP(object_get_version);
SQ_OP(object_set_lock);
SQ_OP(object_list_versions);
SQ_OP(object_delete);
SQ_OP(object_list);
SQ_OP(object_set_tags);
SQ_OP(upload_create);
SQ_OP(upload_get);
SQ_OP(upload_put_part);
SQ_OP(upload_list_parts);
SQ_OP(upload_complete);
SQ_OP(upload_abort);
SQ_OP(upload_list);
SQ_OP(upload_expired);
SQ_OP(seal_pending_buckets);
SQ_OP(seal_next);
SQ_OP(seal_apply);
SQ_OP(gc_next);
SQ_OP(gc_done);
SQ_OP(blob_referenced);

#endif

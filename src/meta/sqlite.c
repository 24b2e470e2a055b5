/*
 * sqlite.c — the embedded metadata store: SQLite in WAL mode.
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so a call that
 * returned KURA_OK has its transaction fsynced in the WAL (it survives power
 * loss).  The database file and its -wal/-shm companions are mode 0600; a
 * directory created for them is 0700.
 *
 * Threading: connections are opened NOMUTEX (SQLite's multi-thread mode:
 * one connection is used by one thread at a time) and kept in a pool of at
 * most CONN_MAX behind a mutex and a condition variable; each connection
 * caches its prepared statements.  Readers run concurrently (WAL gives each
 * statement or read transaction a snapshot).  Writers are serialised inside
 * the process by write_mu, so they queue without polling, and each write is
 * one BEGIN IMMEDIATE transaction (the write lock is taken up front, never
 * upgraded from a read lock, which is what deadlocks deferred transactions);
 * SQLITE_BUSY from another process is waited out by the busy timeout and
 * the transaction retried BUSY_RETRIES times before KURA_EBUSY.
 *
 * Schema (version 2; docs/METADATA.md describes every column).  All tables
 * are STRICT, so a key can never be stored as TEXT and sort out of byte
 * order; 64-bit unsigned ids are stored bit-for-bit in signed INTEGERs.
 *   settings(name TEXT PK, value BLOB)
 *   tenants(id INTEGER PK AUTOINCREMENT, name TEXT UNIQUE, created_ms)
 *   access_keys(id TEXT PK, tenant_id -> tenants, secret_sealed BLOB,
 *               created_ms, active)
 *   buckets(id INTEGER PK (random, caller-chosen), tenant_id -> tenants,
 *           name TEXT UNIQUE, region, created_ms, kek_id, key_wrapped BLOB)
 *   retired_buckets(id INTEGER PK)     ids of deleted buckets, never reused
 *   objects(bucket_id -> buckets, key BLOB, version_uid BLOB UNIQUE, size,
 *           etag, mtime_ms, content_type, content_encoding,
 *           content_language, content_disposition, cache_control, expires,
 *           user_meta_json, part_count, tags_json (v2),
 *           PK(bucket_id, key)) WITHOUT ROWID
 *   parts(version_uid -> objects(version_uid), part_no, blob_id BLOB UNIQUE,
 *         size, seg_size, dek_wrapped BLOB, etag, mtime_ms (v2; NULL in
 *         rows written by v1: read as the object's mtime),
 *         PK(version_uid, part_no)) WITHOUT ROWID
 *   gc(blob_id BLOB PK) WITHOUT ROWID  blobs to delete from the store
 *   uploads(id TEXT PK, bucket_id -> buckets, key BLOB, version_uid BLOB
 *           UNIQUE, created_ms, the object's headers, user_meta_json,
 *           tags_json) WITHOUT ROWID                              (v2)
 *     index (bucket_id, key, id) for listing, (created_ms) for expiry
 *   upload_parts(version_uid -> uploads(version_uid), part_no 1..10000,
 *                blob_id BLOB UNIQUE, size, seg_size, dek_wrapped, etag,
 *                mtime_ms, PK(version_uid, part_no)) WITHOUT ROWID  (v2)
 * Keys are BLOBs: SQLite compares BLOBs with memcmp (then length), which is
 * exactly S3's UTF-8 byte order; objects is clustered on (bucket_id, key)
 * so a listing page is one range scan of the primary key.
 *
 * Multipart uploads: an upload's parts live in upload_parts under the
 * upload's version_uid (each blob's ciphertext is bound to that uid and its
 * part_no).  Completing moves the chosen rows, unchanged, into parts under
 * the same uid, which becomes the object's: metadata rows only, never blob
 * bytes, at most KURA_MAX_PARTS single-row INSERT ... SELECTs in the one
 * transaction.  Separate tables keep both foreign keys (a part row always
 * belongs to an object or to an upload, so no blob can be orphaned by a
 * dangling row) and left migration 2 free of any table rebuild.
 *
 * Migrations: PRAGMA user_version is the schema version; migrations[i]
 * takes version i to i+1 in its own IMMEDIATE transaction together with the
 * version bump, so a crash leaves the database at some whole version.
 * A database newer than this code is refused (KURA_ESTATE); so is a file
 * whose application_id says it is not kura's.  Steps are only appended.
 *
 * Deleted rows are zeroed in their pages (secure_delete=FAST) so names of
 * deleted objects do not linger in free space; old page images may remain
 * in the WAL until it is checkpointed and overwritten.
 *
 * Blob safety: a blob id is in at most one of parts, upload_parts and gc
 * at any commit.  It leaves parts or upload_parts and enters gc in the same
 * transaction, unless the new version (or upload part) reuses it; a new
 * part may not name a blob already queued in gc (it may be being deleted
 * right now) nor one the other table holds.  gc queueing is guarded by
 * NOT EXISTS in both part tables, so a blob still in use is never queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kura/fsutil.h"
#include "kura/log.h"
#include "kura/meta.h"
#include "kura/banned.h"

#define CONN_MAX 16
#define BUSY_TIMEOUT_MS 10000
#define BUSY_RETRIES 3
#define APPLICATION_ID 1263882817	/* 0x4b555241, "KURA" */
#define STR_(x) #x
#define STR(x) STR_(x)
#define PARTS_MAX 10001			/* part 0, or parts 1..10000 */
#define SETTING_NAME_MAX 256
#define GC_BATCH_MAX 65536
#define WAL_SIZE_LIMIT (64 * 1024 * 1024)

/* ---- schema ---- */

static const char *const migrations[] = {
	/* 0 -> 1: the initial schema. */
	"PRAGMA application_id = " STR(APPLICATION_ID) ";\n"
	"CREATE TABLE settings (\n"
	"  name TEXT PRIMARY KEY NOT NULL,\n"
	"  value BLOB NOT NULL\n"
	") WITHOUT ROWID, STRICT;\n"
	"CREATE TABLE tenants (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  name TEXT NOT NULL UNIQUE,\n"
	"  created_ms INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE TABLE access_keys (\n"
	"  id TEXT PRIMARY KEY NOT NULL,\n"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants(id),\n"
	"  secret_sealed BLOB NOT NULL,\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  active INTEGER NOT NULL CHECK (active IN (0, 1))\n"
	") WITHOUT ROWID, STRICT;\n"
	"CREATE INDEX access_keys_tenant ON access_keys(tenant_id);\n"
	"CREATE TABLE buckets (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants(id),\n"
	"  name TEXT NOT NULL UNIQUE,\n"
	"  region TEXT NOT NULL,\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  kek_id TEXT NOT NULL,\n"
	"  key_wrapped BLOB NOT NULL\n"
	") STRICT;\n"
	"CREATE INDEX buckets_tenant ON buckets(tenant_id, name);\n"
	"CREATE TABLE retired_buckets (\n"
	"  id INTEGER PRIMARY KEY\n"
	") STRICT;\n"
	"CREATE TABLE objects (\n"
	"  bucket_id INTEGER NOT NULL REFERENCES buckets(id),\n"
	"  key BLOB NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),\n"
	"  version_uid BLOB NOT NULL UNIQUE CHECK (length(version_uid) = 16),\n"
	"  size INTEGER NOT NULL CHECK (size >= 0),\n"
	"  etag TEXT NOT NULL,\n"
	"  mtime_ms INTEGER NOT NULL,\n"
	"  content_type TEXT,\n"
	"  content_encoding TEXT,\n"
	"  content_language TEXT,\n"
	"  content_disposition TEXT,\n"
	"  cache_control TEXT,\n"
	"  expires TEXT,\n"
	"  user_meta_json TEXT,\n"
	"  part_count INTEGER NOT NULL CHECK (part_count >= 0),\n"
	"  PRIMARY KEY (bucket_id, key)\n"
	") WITHOUT ROWID, STRICT;\n"
	"CREATE TABLE parts (\n"
	"  version_uid BLOB NOT NULL REFERENCES objects(version_uid),\n"
	"  part_no INTEGER NOT NULL CHECK (part_no >= 0),\n"
	"  blob_id BLOB NOT NULL UNIQUE CHECK (length(blob_id) = 16),\n"
	"  size INTEGER NOT NULL CHECK (size >= 0),\n"
	"  seg_size INTEGER NOT NULL,\n"
	"  dek_wrapped BLOB NOT NULL,\n"
	"  etag TEXT NOT NULL,\n"
	"  PRIMARY KEY (version_uid, part_no)\n"
	") WITHOUT ROWID, STRICT;\n"
	"CREATE TABLE gc (\n"
	"  blob_id BLOB PRIMARY KEY NOT NULL CHECK (length(blob_id) = 16)\n"
	") WITHOUT ROWID, STRICT;\n",

	/* 1 -> 2: object tags, part mtimes, multipart uploads.  ADD COLUMN
	 * only rewrites the schema text, so existing rows are not touched:
	 * parts.mtime_ms stays NULL in old rows (read as the object's). */
	"ALTER TABLE objects ADD COLUMN tags_json TEXT;\n"
	"ALTER TABLE parts ADD COLUMN mtime_ms INTEGER;\n"
	"CREATE TABLE uploads (\n"
	"  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),\n"
	"  bucket_id INTEGER NOT NULL REFERENCES buckets(id),\n"
	"  key BLOB NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),\n"
	"  version_uid BLOB NOT NULL UNIQUE CHECK (length(version_uid) = 16),\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  content_type TEXT,\n"
	"  content_encoding TEXT,\n"
	"  content_language TEXT,\n"
	"  content_disposition TEXT,\n"
	"  cache_control TEXT,\n"
	"  expires TEXT,\n"
	"  user_meta_json TEXT,\n"
	"  tags_json TEXT\n"
	") WITHOUT ROWID, STRICT;\n"
	"CREATE INDEX uploads_key ON uploads(bucket_id, key, id);\n"
	"CREATE INDEX uploads_created ON uploads(created_ms);\n"
	"CREATE TABLE upload_parts (\n"
	"  version_uid BLOB NOT NULL REFERENCES uploads(version_uid),\n"
	"  part_no INTEGER NOT NULL CHECK (part_no BETWEEN 1 AND 10000),\n"
	"  blob_id BLOB NOT NULL UNIQUE CHECK (length(blob_id) = 16),\n"
	"  size INTEGER NOT NULL CHECK (size >= 0),\n"
	"  seg_size INTEGER NOT NULL,\n"
	"  dek_wrapped BLOB NOT NULL,\n"
	"  etag TEXT NOT NULL,\n"
	"  mtime_ms INTEGER NOT NULL,\n"
	"  PRIMARY KEY (version_uid, part_no)\n"
	") WITHOUT ROWID, STRICT;\n",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- prepared statements, cached per connection ---- */

enum st {
	ST_BEGIN,
	ST_BEGIN_IMMEDIATE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SETTING_GET,
	ST_SETTING_INSERT,
	ST_TENANT_INSERT,
	ST_TENANT_GET,
	ST_TENANT_GET_BY_NAME,
	ST_TENANT_EXISTS,
	ST_AK_INSERT,
	ST_AK_GET,
	ST_BUCKET_INSERT,
	ST_BUCKET_RETIRED,
	ST_BUCKET_GET,
	ST_BUCKET_LIST,
	ST_BUCKET_EXISTS,
	ST_BUCKET_HAS_OBJECTS,
	ST_BUCKET_DELETE,
	ST_BUCKET_RETIRE,
	ST_OBJ_VERSION,
	ST_OBJ_DELETE,
	ST_OBJ_INSERT,
	ST_OBJ_GET,
	ST_PARTS_BLOBS,
	ST_PARTS_DELETE,
	ST_PART_INSERT,
	ST_PARTS_GET,
	ST_OBJ_SET_TAGS,
	ST_OBJ_UID_EXISTS,
	ST_BLOB_STATE,
	ST_GC_QUEUE,
	ST_GC_NEXT,
	ST_GC_DELETE,
	ST_BLOB_REFERENCED,
	/* Listing: lower bound none / >= prefix / > after, times upper bound
	 * none / < successor(prefix).  Keep the six in this order. */
	ST_LIST,
	ST_LIST_LT,
	ST_LIST_GE,
	ST_LIST_GE_LT,
	ST_LIST_GT,
	ST_LIST_GT_LT,
	ST_UPLOAD_INSERT,
	ST_UPLOAD_UID_EXISTS,
	ST_UPLOAD_FIND,
	ST_UPLOAD_GET,
	ST_UPLOAD_DELETE,
	ST_UPLOAD_EXPIRED,
	ST_UPART_BLOB,
	ST_UPART_DELETE_ONE,
	ST_UPART_INSERT,
	ST_UPART_LIST,
	ST_UPART_MOVE,
	ST_UPART_GC_ALL,
	ST_UPART_DELETE_ALL,
	ST_BUCKET_UPARTS_GC,
	ST_BUCKET_UPARTS_DELETE,
	ST_BUCKET_UPLOADS_DELETE,
	/* Upload listing: lower bound none / >= prefix / key > marker /
	 * (key, id) > (marker, id marker), times upper bound none /
	 * < successor(prefix).  Keep the eight in this order. */
	ST_ULIST,
	ST_ULIST_LT,
	ST_ULIST_GE,
	ST_ULIST_GE_LT,
	ST_ULIST_GT,
	ST_ULIST_GT_LT,
	ST_ULIST_GTID,
	ST_ULIST_GTID_LT,
	ST_COUNT_
};

#define LIST_COLS "SELECT key, size, etag, mtime_ms FROM objects "
#define LIST_TAIL " ORDER BY key LIMIT ?4"
#define UPLOAD_COLS                                                         \
	"SELECT id, bucket_id, key, version_uid, created_ms, content_type, "  \
	"content_encoding, content_language, content_disposition, "         \
	"cache_control, expires, user_meta_json, tags_json FROM uploads "
#define ULIST_TAIL " ORDER BY key, id LIMIT ?5"

static const char *const sql_text[ST_COUNT_] = {
	[ST_BEGIN] = "BEGIN",
	[ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SETTING_GET] = "SELECT value FROM settings WHERE name = ?1",
	[ST_SETTING_INSERT] =
		"INSERT INTO settings (name, value) VALUES (?1, ?2)",
	[ST_TENANT_INSERT] =
		"INSERT INTO tenants (name, created_ms) VALUES (?1, ?2)",
	[ST_TENANT_GET] =
		"SELECT id, name, created_ms FROM tenants WHERE id = ?1",
	[ST_TENANT_GET_BY_NAME] =
		"SELECT id, name, created_ms FROM tenants WHERE name = ?1",
	[ST_TENANT_EXISTS] = "SELECT 1 FROM tenants WHERE id = ?1",
	[ST_AK_INSERT] =
		"INSERT INTO access_keys (id, tenant_id, secret_sealed, "
		"created_ms, active) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_AK_GET] =
		"SELECT id, tenant_id, secret_sealed, created_ms, active "
		"FROM access_keys WHERE id = ?1",
	[ST_BUCKET_INSERT] =
		"INSERT INTO buckets (id, tenant_id, name, region, created_ms, "
		"kek_id, key_wrapped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_BUCKET_RETIRED] = "SELECT 1 FROM retired_buckets WHERE id = ?1",
	[ST_BUCKET_GET] =
		"SELECT id, tenant_id, name, region, created_ms, kek_id, "
		"key_wrapped FROM buckets WHERE name = ?1",
	[ST_BUCKET_LIST] =
		"SELECT id, tenant_id, name, region, created_ms, kek_id, "
		"key_wrapped FROM buckets WHERE tenant_id = ?1 ORDER BY name",
	[ST_BUCKET_EXISTS] = "SELECT 1 FROM buckets WHERE id = ?1",
	[ST_BUCKET_HAS_OBJECTS] =
		"SELECT 1 FROM objects WHERE bucket_id = ?1 LIMIT 1",
	[ST_BUCKET_DELETE] = "DELETE FROM buckets WHERE id = ?1",
	[ST_BUCKET_RETIRE] =
		"INSERT OR IGNORE INTO retired_buckets (id) VALUES (?1)",
	[ST_OBJ_VERSION] =
		"SELECT version_uid FROM objects "
		"WHERE bucket_id = ?1 AND key = ?2",
	[ST_OBJ_DELETE] =
		"DELETE FROM objects WHERE bucket_id = ?1 AND key = ?2",
	[ST_OBJ_INSERT] =
		"INSERT INTO objects (bucket_id, key, version_uid, size, etag, "
		"mtime_ms, content_type, content_encoding, content_language, "
		"content_disposition, cache_control, expires, user_meta_json, "
		"tags_json, part_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
		"?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[ST_OBJ_GET] =
		"SELECT version_uid, size, etag, mtime_ms, content_type, "
		"content_encoding, content_language, content_disposition, "
		"cache_control, expires, user_meta_json, tags_json, part_count "
		"FROM objects WHERE bucket_id = ?1 AND key = ?2",
	[ST_PARTS_BLOBS] = "SELECT blob_id FROM parts WHERE version_uid = ?1",
	[ST_PARTS_DELETE] = "DELETE FROM parts WHERE version_uid = ?1",
	[ST_PART_INSERT] =
		"INSERT INTO parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_PARTS_GET] =
		"SELECT part_no, blob_id, size, seg_size, dek_wrapped, etag, "
		"mtime_ms FROM parts WHERE version_uid = ?1 ORDER BY part_no",
	[ST_OBJ_SET_TAGS] =
		"UPDATE objects SET tags_json = ?3 "
		"WHERE bucket_id = ?1 AND key = ?2",
	[ST_OBJ_UID_EXISTS] = "SELECT 1 FROM objects WHERE version_uid = ?1",
	[ST_BLOB_STATE] =
		"SELECT EXISTS (SELECT 1 FROM gc WHERE blob_id = ?1), "
		"EXISTS (SELECT 1 FROM parts WHERE blob_id = ?1), "
		"EXISTS (SELECT 1 FROM upload_parts WHERE blob_id = ?1)",
	/* A blob the new version or an upload still uses is not garbage. */
	[ST_GC_QUEUE] =
		"INSERT OR IGNORE INTO gc (blob_id) SELECT ?1 WHERE NOT EXISTS "
		"(SELECT 1 FROM parts WHERE blob_id = ?1) AND NOT EXISTS "
		"(SELECT 1 FROM upload_parts WHERE blob_id = ?1)",
	[ST_GC_NEXT] = "SELECT blob_id FROM gc LIMIT ?1",
	[ST_GC_DELETE] = "DELETE FROM gc WHERE blob_id = ?1",
	[ST_BLOB_REFERENCED] =
		"SELECT EXISTS (SELECT 1 FROM parts WHERE blob_id = ?1) "
		"OR EXISTS (SELECT 1 FROM upload_parts WHERE blob_id = ?1) "
		"OR EXISTS (SELECT 1 FROM gc WHERE blob_id = ?1)",
	[ST_LIST] = LIST_COLS "WHERE bucket_id = ?1" LIST_TAIL,
	[ST_LIST_LT] = LIST_COLS "WHERE bucket_id = ?1 AND key < ?3" LIST_TAIL,
	[ST_LIST_GE] = LIST_COLS "WHERE bucket_id = ?1 AND key >= ?2" LIST_TAIL,
	[ST_LIST_GE_LT] = LIST_COLS
		"WHERE bucket_id = ?1 AND key >= ?2 AND key < ?3" LIST_TAIL,
	[ST_LIST_GT] = LIST_COLS "WHERE bucket_id = ?1 AND key > ?2" LIST_TAIL,
	[ST_LIST_GT_LT] = LIST_COLS
		"WHERE bucket_id = ?1 AND key > ?2 AND key < ?3" LIST_TAIL,
	[ST_UPLOAD_INSERT] =
		"INSERT INTO uploads (id, bucket_id, key, version_uid, "
		"created_ms, content_type, content_encoding, content_language, "
		"content_disposition, cache_control, expires, user_meta_json, "
		"tags_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		"?11, ?12, ?13)",
	[ST_UPLOAD_UID_EXISTS] = "SELECT 1 FROM uploads WHERE version_uid = ?1",
	[ST_UPLOAD_FIND] =
		"SELECT bucket_id, key, version_uid FROM uploads WHERE id = ?1",
	[ST_UPLOAD_GET] = UPLOAD_COLS "WHERE id = ?1",
	[ST_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id = ?1",
	/* The index on created_ms holds (created_ms, id): no sort. */
	[ST_UPLOAD_EXPIRED] = UPLOAD_COLS
		"WHERE created_ms < ?1 ORDER BY created_ms, id LIMIT ?2",
	[ST_UPART_BLOB] =
		"SELECT blob_id FROM upload_parts "
		"WHERE version_uid = ?1 AND part_no = ?2",
	[ST_UPART_DELETE_ONE] =
		"DELETE FROM upload_parts WHERE version_uid = ?1 AND part_no = ?2",
	[ST_UPART_INSERT] =
		"INSERT INTO upload_parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_UPART_LIST] =
		"SELECT part_no, blob_id, size, seg_size, dek_wrapped, etag, "
		"mtime_ms FROM upload_parts WHERE version_uid = ?1 AND "
		"part_no > ?2 ORDER BY part_no LIMIT ?3",
	/* Completion: one chosen part, copied only if it is the caller's. */
	[ST_UPART_MOVE] =
		"INSERT INTO parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms) SELECT version_uid, "
		"part_no, blob_id, size, seg_size, dek_wrapped, etag, mtime_ms "
		"FROM upload_parts WHERE version_uid = ?1 AND part_no = ?2 AND "
		"blob_id = ?3 AND size = ?4 AND etag = ?5",
	/* Parts moved to the object are in parts by now and stay live. */
	[ST_UPART_GC_ALL] =
		"INSERT OR IGNORE INTO gc (blob_id) SELECT u.blob_id "
		"FROM upload_parts u WHERE u.version_uid = ?1 AND NOT EXISTS "
		"(SELECT 1 FROM parts p WHERE p.blob_id = u.blob_id)",
	[ST_UPART_DELETE_ALL] = "DELETE FROM upload_parts WHERE version_uid = ?1",
	[ST_BUCKET_UPARTS_GC] =
		"INSERT OR IGNORE INTO gc (blob_id) SELECT p.blob_id "
		"FROM uploads u JOIN upload_parts p "
		"ON p.version_uid = u.version_uid WHERE u.bucket_id = ?1",
	[ST_BUCKET_UPARTS_DELETE] =
		"DELETE FROM upload_parts WHERE version_uid IN "
		"(SELECT version_uid FROM uploads WHERE bucket_id = ?1)",
	[ST_BUCKET_UPLOADS_DELETE] = "DELETE FROM uploads WHERE bucket_id = ?1",
	[ST_ULIST] = UPLOAD_COLS "WHERE bucket_id = ?1" ULIST_TAIL,
	[ST_ULIST_LT] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key < ?4" ULIST_TAIL,
	[ST_ULIST_GE] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key >= ?2" ULIST_TAIL,
	[ST_ULIST_GE_LT] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key >= ?2 AND key < ?4" ULIST_TAIL,
	[ST_ULIST_GT] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key > ?2" ULIST_TAIL,
	[ST_ULIST_GT_LT] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND key > ?2 AND key < ?4" ULIST_TAIL,
	[ST_ULIST_GTID] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND (key, id) > (?2, ?3)" ULIST_TAIL,
	[ST_ULIST_GTID_LT] = UPLOAD_COLS
		"WHERE bucket_id = ?1 AND (key, id) > (?2, ?3) AND key < ?4"
		ULIST_TAIL,
};

/* ---- state ---- */

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT_];
	struct conn *next;		/* in the idle list */
};

struct meta_sqlite {
	bool live;			/* mutexes initialised */
	char path[PATH_MAX];
	pthread_mutex_t mu;		/* guards idle and total */
	pthread_cond_t cv;		/* a connection was released */
	pthread_mutex_t write_mu;	/* one writer at a time in-process */
	struct conn *idle;
	unsigned total;			/* connections open or being opened */
};

/* ---- small helpers ---- */

static int64_t u2i(uint64_t v)
{
	int64_t r;
	memcpy(&r, &v, sizeof(r));
	return r;
}

static uint64_t i2u(int64_t v)
{
	uint64_t r;
	memcpy(&r, &v, sizeof(r));
	return r;
}

static enum kura_err map_rc(int rc)
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

/* Translate a SQLite result code at its call site. */
static enum kura_err sql_fail(struct kura_error *err, sqlite3 *db, int rc,
			      const char *what)
{
	const char *msg = db != NULL && sqlite3_errcode(db) == rc
				  ? sqlite3_errmsg(db)
				  : sqlite3_errstr(rc);
	return kura_fail(err, map_rc(rc), "sqlite: %s: %s", what, msg);
}

static int bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	return sqlite3_bind_int64(s, i, u2i(v));
}

static int bind_blob(sqlite3_stmt *s, int i, const void *p, size_t n)
{
	if (n > INT_MAX)
		return SQLITE_TOOBIG;
	/* A NULL pointer would bind SQL NULL, not an empty blob. */
	return sqlite3_bind_blob(s, i, n > 0 ? p : (const void *)"", (int)n,
				 SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *s, int i, const char *t)
{
	size_t n;

	if (t == NULL)
		return sqlite3_bind_null(s, i);
	n = strlen(t);
	if (n > INT_MAX)
		return SQLITE_TOOBIG;
	return sqlite3_bind_text(s, i, t, (int)n, SQLITE_STATIC);
}

/* Reset a statement after use: releases its snapshot and the bound
 * (SQLITE_STATIC) pointers.  NULL is a no-op. */
static void stmt_done(sqlite3_stmt *s)
{
	if (s != NULL) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
}

static enum kura_err stmt_get(struct conn *c, enum st id, sqlite3_stmt **out,
			      struct kura_error *err)
{
	if (c->st[id] == NULL) {
		int rc = sqlite3_prepare_v3(c->db, sql_text[id], -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			c->st[id] = NULL;
			return sql_fail(err, c->db, rc, "prepare");
		}
	}
	*out = c->st[id];
	return KURA_OK;
}

/* Run a statement that returns no rows (BEGIN, COMMIT, DELETE ...). */
static enum kura_err stmt_run(struct conn *c, sqlite3_stmt *s,
			      const char *what, struct kura_error *err)
{
	int rc = sqlite3_step(s);
	enum kura_err r = KURA_OK;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, what);
	stmt_done(s);
	return r;
}

static enum kura_err run_id(struct conn *c, enum st id, const char *what,
			    struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, id, &s, err);

	if (r != KURA_OK)
		return r;
	return stmt_run(c, s, what, err);
}

/* Copy a NOT NULL text column into a fixed buffer. */
static enum kura_err col_text(sqlite3_stmt *s, int i, char *dst, size_t cap,
			      const char *what, struct kura_error *err)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	int n = sqlite3_column_bytes(s, i);

	if (t == NULL)
		return kura_fail(err, KURA_EIO, "sqlite: %s is NULL", what);
	if (n < 0 || (size_t)n >= cap || memchr(t, 0, (size_t)n) != NULL)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt %s (%d bytes)",
				 what, n);
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return KURA_OK;
}

/* Copy a NOT NULL blob column of at most cap bytes (exactly cap when
 * len is NULL). */
static enum kura_err col_blob(sqlite3_stmt *s, int i, uint8_t *dst,
			      size_t cap, size_t *len, const char *what,
			      struct kura_error *err)
{
	const void *p = sqlite3_column_blob(s, i);
	int n = sqlite3_column_bytes(s, i);

	if (n < 0 || (size_t)n > cap || (len == NULL && (size_t)n != cap) ||
	    (p == NULL && n > 0))
		return kura_fail(err, KURA_EIO, "sqlite: corrupt %s (%d bytes)",
				 what, n);
	if (n > 0)
		memcpy(dst, p, (size_t)n);
	if (len != NULL)
		*len = (size_t)n;
	return KURA_OK;
}

/* A nullable text column duplicated into pool; NULL stays NULL. */
static enum kura_err col_ptext(sqlite3_stmt *s, int i, struct kura_pool *pool,
			       const char **out, struct kura_error *err)
{
	const unsigned char *t;
	int n;

	if (sqlite3_column_type(s, i) == SQLITE_NULL) {
		*out = NULL;
		return KURA_OK;
	}
	t = sqlite3_column_text(s, i);
	n = sqlite3_column_bytes(s, i);
	if (t == NULL || n < 0)
		return kura_fail(err, KURA_ENOMEM, "sqlite: read text column");
	*out = kura_pstrndup(pool, (const char *)t, (size_t)n);
	if (*out == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	return KURA_OK;
}

/* Is s a NUL-terminated string of 1..cap-1 bytes within a cap array? */
static bool str_ok(const char *s, size_t cap, bool may_be_empty)
{
	size_t n = strnlen(s, cap);

	return n < cap && (may_be_empty || n > 0);
}

/* ---- connections ---- */

static void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < ST_COUNT_; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static enum kura_err conn_new(struct meta_sqlite *m, struct conn **out,
			      struct kura_error *err)
{
	struct conn *c = calloc(1, sizeof(*c));
	char pragmas[256];
	char *msg = NULL;
	enum kura_err r = KURA_OK;
	int rc;

	if (c == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	/* No CREATE: the file was made with mode 0600 by the opener. */
	rc = sqlite3_open_v2(m->path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_PRIVATECACHE,
			     NULL);
	if (rc != SQLITE_OK) {
		r = c->db != NULL ? sql_fail(err, c->db, rc, m->path)
				  : kura_fail(err, KURA_ENOMEM, "sqlite open");
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
	if (rc != SQLITE_OK) {
		r = kura_fail(err, map_rc(rc), "sqlite: set pragmas on '%s': %s",
			      m->path, msg != NULL ? msg : sqlite3_errstr(rc));
		goto out;
	}
out:
	sqlite3_free(msg);
	if (r != KURA_OK) {
		conn_free(c);
		return r;
	}
	*out = c;
	return KURA_OK;
}

/* Take a connection, opening a new one while fewer than CONN_MAX exist. */
static enum kura_err conn_acquire(struct meta_sqlite *m, struct conn **out,
				  struct kura_error *err)
{
	struct conn *c = NULL;
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
static void conn_release(struct meta_sqlite *m, struct conn *c)
{
	if (c == NULL)
		return;
	if (!sqlite3_get_autocommit(c->db)) {
		struct kura_error ignored = {0};
		(void)run_id(c, ST_ROLLBACK, "rollback", &ignored);
	}
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

static enum kura_err tx_once(struct conn *c,
			     enum kura_err (*body)(struct conn *, void *,
						   struct kura_error *),
			     void *arg, struct kura_error *err)
{
	enum kura_err r = run_id(c, ST_BEGIN_IMMEDIATE, "begin immediate", err);

	if (r != KURA_OK)
		return r;
	r = body(c, arg, err);
	if (r == KURA_OK)
		r = run_id(c, ST_COMMIT, "commit", err);
	if (r != KURA_OK && !sqlite3_get_autocommit(c->db)) {
		struct kura_error ignored = {0};
		(void)run_id(c, ST_ROLLBACK, "rollback", &ignored);
	}
	return r;
}

/* Run body in one write transaction: committed durably when it returns
 * KURA_OK, rolled back otherwise.  body may run more than once (on
 * SQLITE_BUSY), so it must keep its results in arg until the end. */
static enum kura_err write_tx(struct meta_sqlite *m,
			      enum kura_err (*body)(struct conn *, void *,
						    struct kura_error *),
			      void *arg, struct kura_error *err)
{
	struct conn *c = NULL;
	enum kura_err r;

	pthread_mutex_lock(&m->write_mu);
	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	for (int attempt = 1;; attempt++) {
		struct kura_error e = {0};

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
	conn_release(m, c);
	pthread_mutex_unlock(&m->write_mu);
	return r;
}

/* ---- open, migrate, close ---- */

static enum kura_err pragma_int(struct conn *c, const char *sql, int *out,
				struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	enum kura_err r = KURA_OK;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(s, 0);
	else
		r = sql_fail(err, c->db, rc, sql);
	sqlite3_finalize(s);
	return r;
}

/* One migration step, or nothing when the schema is current.  *done is set
 * when no step was needed. */
static enum kura_err migrate_step(struct meta_sqlite *m, struct conn *c,
				  bool *done, struct kura_error *err)
{
	int version = 0, app = 0, objects = 0;
	char bump[64];
	char *msg = NULL;
	enum kura_err r;
	int rc;

	r = run_id(c, ST_BEGIN_IMMEDIATE, "begin immediate", err);
	if (r != KURA_OK)
		return r;
	/* Read inside the write transaction: another process may be
	 * migrating the same file. */
	r = pragma_int(c, "PRAGMA user_version", &version, err);
	if (r == KURA_OK)
		r = pragma_int(c, "PRAGMA application_id", &app, err);
	if (r == KURA_OK)
		r = pragma_int(c, "SELECT count(*) FROM sqlite_schema",
			       &objects, err);
	if (r != KURA_OK)
		goto out;
	if ((version > 0 || app != 0 || objects > 0) &&
	    app != APPLICATION_ID) {
		r = kura_fail(err, KURA_ESTATE,
			      "'%s' is not a kura metadata database", m->path);
		goto out;
	}
	if (version > SCHEMA_VERSION || version < 0) {
		r = kura_fail(err, KURA_ESTATE,
			      "'%s' has schema version %d, newer than this "
			      "kura understands (%d)",
			      m->path, version, SCHEMA_VERSION);
		goto out;
	}
	if (version == SCHEMA_VERSION) {
		*done = true;
		goto out;
	}
	rc = sqlite3_exec(c->db, migrations[version], NULL, NULL, &msg);
	if (rc == SQLITE_OK) {
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d",
			 version + 1);
		rc = sqlite3_exec(c->db, bump, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		r = kura_fail(err, map_rc(rc),
			      "sqlite: migrate '%s' to version %d: %s",
			      m->path, version + 1,
			      msg != NULL ? msg : sqlite3_errmsg(c->db));
		goto out;
	}
	r = run_id(c, ST_COMMIT, "commit migration", err);
	if (r == KURA_OK)
		kura_info(NULL, "meta: '%s' migrated to schema version %d",
			  m->path, version + 1);
	*done = false;
out:
	sqlite3_free(msg);
	if (!sqlite3_get_autocommit(c->db)) {
		struct kura_error ignored = {0};
		(void)run_id(c, ST_ROLLBACK, "rollback", &ignored);
	}
	return r;
}

static enum kura_err set_wal(struct meta_sqlite *m, struct conn *c,
			     struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s,
				    NULL);
	enum kura_err r = KURA_OK;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "set journal_mode");
	} else {
		const unsigned char *mode = sqlite3_column_text(s, 0);
		if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
			r = kura_fail(err, KURA_EIO,
				      "sqlite: '%s' refused WAL mode (%s)",
				      m->path,
				      mode != NULL ? (const char *)mode : "?");
	}
	sqlite3_finalize(s);
	return r;
}

/* Create the file with mode 0600 (SQLite would use 0644 & ~umask, and its
 * -wal and -shm files copy the main file's mode) and tighten an existing
 * one. */
static enum kura_err prepare_file(const char *path, struct kura_error *err)
{
	static const char *const companions[] = { "-wal", "-shm", "-journal" };
	char dir[PATH_MAX], other[PATH_MAX];
	const char *slash = strrchr(path, '/');
	bool created = false;
	enum kura_err r = KURA_OK;
	struct stat st;
	int fd;

	if (slash != NULL && slash != path) {
		size_t n = (size_t)(slash - path);
		memcpy(dir, path, n);
		dir[n] = '\0';
		r = kura_mkdirs(dir, 0700, err);
		if (r != KURA_OK)
			return r;
	} else {
		snprintf(dir, sizeof(dir), "%s", slash == path ? "/" : ".");
	}

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd >= 0) {
		created = true;
	} else if (errno == EEXIST) {
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "open '%s'", path);
	if (fstat(fd, &st) != 0) {
		r = kura_fail_errno(err, KURA_EIO, errno, "stat '%s'", path);
	} else if (!S_ISREG(st.st_mode)) {
		r = kura_fail(err, KURA_EIO, "'%s' is not a regular file", path);
	} else if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0) {
		r = kura_fail_errno(err, kura_err_from_errno(errno), errno,
				    "chmod '%s'", path);
	}
	close(fd);
	if (r != KURA_OK)
		return r;
	if (created) {
		r = kura_fsync_dir(dir, err);
		if (r != KURA_OK)
			return r;
	}
	for (size_t i = 0; i < sizeof(companions) / sizeof(companions[0]);
	     i++) {
		int n = snprintf(other, sizeof(other), "%s%s", path,
				 companions[i]);
		if (n < 0 || (size_t)n >= sizeof(other))
			return kura_fail(err, KURA_EINVAL, "path too long '%s'",
					 path);
		if (chmod(other, 0600) != 0 && errno != ENOENT)
			return kura_fail_errno(err, kura_err_from_errno(errno),
					       errno, "chmod '%s'", other);
	}
	return KURA_OK;
}

static void sqlite_close(void *priv)
{
	struct meta_sqlite *m = priv;

	if (m == NULL || !m->live)
		return;
	if (m->idle != NULL)
		(void)sqlite3_exec(m->idle->db, "PRAGMA optimize", NULL, NULL,
				   NULL);
	while (m->idle != NULL) {
		struct conn *c = m->idle;
		m->idle = c->next;
		conn_free(c);
	}
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->write_mu);
	m->live = false;
}

static enum kura_err sqlite_open(void *priv, const struct kura_config *cfg,
				 const char *data_dir, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	const char *path = cfg != NULL ? kura_config_get(cfg, "meta", "path")
				       : NULL;
	bool done = false;
	enum kura_err r;
	int n;

	if (!sqlite3_threadsafe())
		return kura_fail(err, KURA_ECONFIG,
				 "sqlite library built without thread safety");
	if (path != NULL && path[0] != '\0')
		n = snprintf(m->path, sizeof(m->path), "%s", path);
	else if (data_dir != NULL && data_dir[0] != '\0')
		n = snprintf(m->path, sizeof(m->path), "%s/meta.db", data_dir);
	else
		return kura_fail(err, KURA_ECONFIG,
				 "no [meta] path and no data directory");
	if (n < 0 || (size_t)n >= sizeof(m->path))
		return kura_fail(err, KURA_ECONFIG, "metadata path too long");

	r = prepare_file(m->path, err);
	if (r != KURA_OK)
		return r;

	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	pthread_mutex_init(&m->write_mu, NULL);
	m->live = true;

	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	r = set_wal(m, c, err);
	while (r == KURA_OK && !done)
		r = migrate_step(m, c, &done, err);
out:
	conn_release(m, c);
	if (r != KURA_OK)
		sqlite_close(m);
	return r;
}

/* ---- settings ---- */

static enum kura_err sqlite_setting_get(void *priv, const char *name,
					uint8_t *val, size_t cap, size_t *len,
					struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	const void *p;
	int rc, n;

	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "setting name missing");
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_SETTING_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_text(s, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = kura_fail(err, KURA_ENOENT, "no setting '%s'", name);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "get setting");
		goto out;
	}
	p = sqlite3_column_blob(s, 0);
	n = sqlite3_column_bytes(s, 0);
	if (n < 0 || (p == NULL && n > 0)) {
		r = kura_fail(err, KURA_ENOMEM, "sqlite: read setting '%s'",
			      name);
		goto out;
	}
	if ((size_t)n > cap) {
		r = kura_fail(err, KURA_ETOOBIG,
			      "setting '%s' has %d bytes, room for %zu", name, n,
			      cap);
		goto out;
	}
	if (n > 0)
		memcpy(val, p, (size_t)n);
	*len = (size_t)n;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

struct setting_arg {
	const char *name;
	const uint8_t *val;
	size_t len;
};

static enum kura_err setting_insert_body(struct conn *c, void *arg,
					 struct kura_error *err)
{
	struct setting_arg *a = arg;
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_SETTING_INSERT, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, a->name);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, a->val, a->len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return KURA_OK;
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "setting '%s' exists",
				 a->name);
	return sql_fail(err, c->db, rc, "insert setting");
}

static enum kura_err sqlite_setting_insert(void *priv, const char *name,
					   const uint8_t *val, size_t len,
					   struct kura_error *err)
{
	struct setting_arg a = { name, val, len };

	if (name == NULL || !str_ok(name, SETTING_NAME_MAX, false))
		return kura_fail(err, KURA_EINVAL, "bad setting name");
	if (len > KURA_SETTING_MAX)
		return kura_fail(err, KURA_ETOOBIG,
				 "setting '%s' too large (%zu bytes)", name,
				 len);
	if (val == NULL && len > 0)
		return kura_fail(err, KURA_EINVAL, "setting value missing");
	return write_tx(priv, setting_insert_body, &a, err);
}

/* ---- tenants and access keys ---- */

static enum kura_err exists(struct conn *c, enum st id, uint64_t key,
			    bool *found, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, id, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		*found = rc == SQLITE_ROW;
	else
		r = sql_fail(err, c->db, rc, "lookup");
	stmt_done(s);
	return r;
}

/* Like exists, keyed by a blob (a version uid). */
static enum kura_err exists_blob(struct conn *c, enum st id, const void *key,
				 size_t len, bool *found,
				 struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, id, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, key, len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		*found = rc == SQLITE_ROW;
	else
		r = sql_fail(err, c->db, rc, "lookup");
	stmt_done(s);
	return r;
}

struct tenant_arg {
	const struct kura_tenant *t;
	uint64_t id;
};

static enum kura_err tenant_create_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	struct tenant_arg *a = arg;
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_TENANT_INSERT, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, a->t->name);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, a->t->created_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE) {
		a->id = i2u(sqlite3_last_insert_rowid(c->db));
		return KURA_OK;
	}
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "tenant '%s' exists",
				 a->t->name);
	return sql_fail(err, c->db, rc, "insert tenant");
}

static enum kura_err sqlite_tenant_create(void *priv, struct kura_tenant *t,
					  struct kura_error *err)
{
	struct tenant_arg a = { t, 0 };
	enum kura_err r;

	if (t == NULL || !str_ok(t->name, sizeof(t->name), false))
		return kura_fail(err, KURA_EINVAL, "bad tenant name");
	r = write_tx(priv, tenant_create_body, &a, err);
	if (r == KURA_OK)
		t->id = a.id;
	return r;
}

static enum kura_err tenant_lookup(struct meta_sqlite *m, enum st id,
				   uint64_t key, const char *name,
				   struct kura_tenant *out,
				   struct kura_error *err)
{
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_tenant t = { 0 };
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, id, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = name != NULL ? bind_text(s, 1, name) : bind_u64(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = name != NULL
			    ? kura_fail(err, KURA_ENOENT, "no tenant '%s'", name)
			    : kura_fail(err, KURA_ENOENT, "no tenant %llu",
					(unsigned long long)key);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "get tenant");
		goto out;
	}
	t.id = i2u(sqlite3_column_int64(s, 0));
	r = col_text(s, 1, t.name, sizeof(t.name), "tenant name", err);
	if (r != KURA_OK)
		goto out;
	t.created_ms = sqlite3_column_int64(s, 2);
	*out = t;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err sqlite_tenant_get(void *priv, uint64_t id,
				       struct kura_tenant *out,
				       struct kura_error *err)
{
	return tenant_lookup(priv, ST_TENANT_GET, id, NULL, out, err);
}

static enum kura_err sqlite_tenant_get_by_name(void *priv, const char *name,
					       struct kura_tenant *out,
					       struct kura_error *err)
{
	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "tenant name missing");
	return tenant_lookup(priv, ST_TENANT_GET_BY_NAME, 0, name, out, err);
}

static enum kura_err access_key_create_body(struct conn *c, void *arg,
					    struct kura_error *err)
{
	const struct kura_access_key *k = arg;
	sqlite3_stmt *s = NULL;
	bool found = false;
	enum kura_err r = exists(c, ST_TENANT_EXISTS, k->tenant_id, &found,
				 err);
	int rc;

	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no tenant %llu",
				 (unsigned long long)k->tenant_id);
	r = stmt_get(c, ST_AK_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, k->id);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 2, k->tenant_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, k->secret_sealed, k->secret_sealed_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, k->created_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 5, k->active ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return KURA_OK;
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "access key '%s' exists",
				 k->id);
	return sql_fail(err, c->db, rc, "insert access key");
}

static enum kura_err sqlite_access_key_create(void *priv,
					      const struct kura_access_key *k,
					      struct kura_error *err)
{
	if (k == NULL || !str_ok(k->id, sizeof(k->id), false))
		return kura_fail(err, KURA_EINVAL, "bad access key id");
	if (k->secret_sealed_len > sizeof(k->secret_sealed))
		return kura_fail(err, KURA_EINVAL, "bad sealed secret length");
	return write_tx(priv, access_key_create_body, (void *)k, err);
}

static enum kura_err sqlite_access_key_get(void *priv, const char *id,
					   struct kura_access_key *out,
					   struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_access_key k = { 0 };
	enum kura_err r;
	int rc;

	if (id == NULL)
		return kura_fail(err, KURA_EINVAL, "access key id missing");
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_AK_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_text(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = kura_fail(err, KURA_ENOENT, "no access key '%s'", id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "get access key");
		goto out;
	}
	r = col_text(s, 0, k.id, sizeof(k.id), "access key id", err);
	if (r != KURA_OK)
		goto out;
	k.tenant_id = i2u(sqlite3_column_int64(s, 1));
	r = col_blob(s, 2, k.secret_sealed, sizeof(k.secret_sealed),
		     &k.secret_sealed_len, "sealed secret", err);
	if (r != KURA_OK)
		goto out;
	k.created_ms = sqlite3_column_int64(s, 3);
	k.active = sqlite3_column_int(s, 4) != 0;
	*out = k;
out:
	stmt_done(s);
	conn_release(m, c);
	/* The sealed secret is ciphertext, but no copy need linger. */
	memset(&k, 0, sizeof(k));
	return r;
}

/* ---- buckets ---- */

static enum kura_err bucket_create_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	const struct kura_bucket *b = arg;
	sqlite3_stmt *s = NULL;
	bool found = false;
	enum kura_err r;
	int rc;

	r = exists(c, ST_TENANT_EXISTS, b->tenant_id, &found, err);
	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no tenant %llu",
				 (unsigned long long)b->tenant_id);
	r = exists(c, ST_BUCKET_RETIRED, b->id, &found, err);
	if (r != KURA_OK)
		return r;
	if (found)
		return kura_fail(err, KURA_EEXIST,
				 "bucket id %016llx was used before",
				 (unsigned long long)b->id);
	r = stmt_get(c, ST_BUCKET_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, b->id);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 2, b->tenant_id);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 3, b->name);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 4, b->region);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, b->created_ms);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 6, b->kek_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 7, b->key_wrapped, b->key_wrapped_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return KURA_OK;
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "bucket '%s' exists",
				 b->name);
	return sql_fail(err, c->db, rc, "insert bucket");
}

static enum kura_err sqlite_bucket_create(void *priv,
					  const struct kura_bucket *b,
					  struct kura_error *err)
{
	if (b == NULL || !str_ok(b->name, sizeof(b->name), false) ||
	    !str_ok(b->region, sizeof(b->region), true) ||
	    !str_ok(b->kek_id, sizeof(b->kek_id), true) ||
	    b->key_wrapped_len > sizeof(b->key_wrapped))
		return kura_fail(err, KURA_EINVAL, "bad bucket record");
	return write_tx(priv, bucket_create_body, (void *)b, err);
}

static enum kura_err bucket_row(sqlite3_stmt *s, struct kura_bucket *b,
				struct kura_error *err)
{
	enum kura_err r;

	memset(b, 0, sizeof(*b));
	b->id = i2u(sqlite3_column_int64(s, 0));
	b->tenant_id = i2u(sqlite3_column_int64(s, 1));
	r = col_text(s, 2, b->name, sizeof(b->name), "bucket name", err);
	if (r == KURA_OK)
		r = col_text(s, 3, b->region, sizeof(b->region), "region", err);
	b->created_ms = sqlite3_column_int64(s, 4);
	if (r == KURA_OK)
		r = col_text(s, 5, b->kek_id, sizeof(b->kek_id), "kek id", err);
	if (r == KURA_OK)
		r = col_blob(s, 6, b->key_wrapped, sizeof(b->key_wrapped),
			     &b->key_wrapped_len, "wrapped bucket key", err);
	return r;
}

static enum kura_err sqlite_bucket_get(void *priv, const char *name,
				       struct kura_bucket *out,
				       struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_bucket b;
	enum kura_err r;
	int rc;

	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "bucket name missing");
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_BUCKET_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_text(s, 1, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = kura_fail(err, KURA_ENOENT, "no bucket '%s'", name);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "get bucket");
		goto out;
	}
	r = bucket_row(s, &b, err);
	if (r == KURA_OK)
		*out = b;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err sqlite_bucket_list(void *priv, uint64_t tenant_id,
					struct kura_pool *pool,
					struct kura_bucket **out,
					size_t *count, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_bucket *tmp = NULL, *res = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_BUCKET_LIST, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, tenant_id);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? 8 : cap * 2;
			struct kura_bucket *nt =
				realloc(tmp, ncap * sizeof(*tmp));
			if (nt == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			tmp = nt;
			cap = ncap;
		}
		r = bucket_row(s, &tmp[n], err);
		if (r != KURA_OK)
			goto out;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "list buckets");
		goto out;
	}
	if (n > 0) {
		res = kura_pmemdup(pool, tmp, n * sizeof(*tmp));
		if (res == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	*count = n;
out:
	stmt_done(s);
	conn_release(m, c);
	free(tmp);
	return r;
}

static enum kura_err bucket_delete_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	static const enum st steps[] = {
		ST_BUCKET_UPARTS_GC, ST_BUCKET_UPARTS_DELETE,
		ST_BUCKET_UPLOADS_DELETE, ST_BUCKET_DELETE, ST_BUCKET_RETIRE,
	};
	const uint64_t *id = arg;
	sqlite3_stmt *s = NULL;
	bool found = false;
	enum kura_err r;
	int rc;

	r = exists(c, ST_BUCKET_EXISTS, *id, &found, err);
	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no bucket %016llx",
				 (unsigned long long)*id);
	r = exists(c, ST_BUCKET_HAS_OBJECTS, *id, &found, err);
	if (r != KURA_OK)
		return r;
	if (found)
		return kura_fail(err, KURA_ENOTEMPTY, "bucket %016llx not empty",
				 (unsigned long long)*id);
	/* Abort the uploads in progress (their parts' blobs to gc, parts
	 * before uploads before the bucket, as the foreign keys want), then
	 * drop and retire the bucket. */
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		r = stmt_get(c, steps[i], &s, err);
		if (r != KURA_OK)
			return r;
		rc = bind_u64(s, 1, *id);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			return sql_fail(err, c->db, rc, "delete bucket");
	}
	return KURA_OK;
}

static enum kura_err sqlite_bucket_delete(void *priv, uint64_t bucket_id,
					  struct kura_error *err)
{
	return write_tx(priv, bucket_delete_body, &bucket_id, err);
}

/* ---- objects ---- */

struct blob_list {
	uint8_t (*ids)[KURA_BLOB_ID_LEN];
	size_t n;
};

/* Find (bucket, key); when present, move its parts out: their blob ids
 * into out (malloc'd), then delete the parts and the object row. */
static enum kura_err object_remove(struct conn *c, uint64_t bucket_id,
				   const char *key, size_t key_len,
				   bool *found, struct blob_list *out,
				   struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	uint8_t uid[KURA_UID_LEN];
	struct blob_list bl = { NULL, 0 };
	size_t cap = 0;
	enum kura_err r;
	int rc;

	r = stmt_get(c, ST_OBJ_VERSION, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, key, key_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		*found = false;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "find object");
		goto out;
	}
	r = col_blob(s, 0, uid, sizeof(uid), NULL, "version uid", err);
	stmt_done(s);
	s = NULL;
	if (r != KURA_OK)
		goto out;

	r = stmt_get(c, ST_PARTS_BLOBS, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_blob(s, 1, uid, sizeof(uid));
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (bl.n == cap) {
			size_t ncap = cap == 0 ? 4 : cap * 2;
			void *p = realloc(bl.ids, ncap * sizeof(*bl.ids));
			if (p == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			bl.ids = p;
			cap = ncap;
		}
		r = col_blob(s, 0, bl.ids[bl.n], KURA_BLOB_ID_LEN, NULL,
			     "blob id", err);
		if (r != KURA_OK)
			goto out;
		bl.n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "read parts");
		goto out;
	}
	stmt_done(s);
	s = NULL;

	/* Parts first: they reference the object row. */
	r = stmt_get(c, ST_PARTS_DELETE, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_blob(s, 1, uid, sizeof(uid));
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "delete parts");
		goto out;
	}
	stmt_done(s);
	s = NULL;

	r = stmt_get(c, ST_OBJ_DELETE, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, key, key_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "delete object");
		goto out;
	}
	*found = true;
	*out = bl;
	bl.ids = NULL;
out:
	stmt_done(s);
	free(bl.ids);
	return r;
}

/* Queue the blobs of a removed version, except those still in parts. */
static enum kura_err gc_queue(struct conn *c, const struct blob_list *bl,
			      struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_GC_QUEUE, &s, err);

	for (size_t i = 0; r == KURA_OK && i < bl->n; i++) {
		int rc = bind_blob(s, 1, bl->ids[i], KURA_BLOB_ID_LEN);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			r = sql_fail(err, c->db, rc, "queue blob for gc");
	}
	return r;
}

/* Where a blob id is already recorded. */
struct blob_state {
	bool queued;		/* in gc */
	bool in_parts;		/* part of an object version */
	bool in_uploads;	/* part of an upload in progress */
};

static enum kura_err blob_state_get(struct conn *c,
				    const uint8_t id[KURA_BLOB_ID_LEN],
				    struct blob_state *out,
				    struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_BLOB_STATE, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, id, KURA_BLOB_ID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->queued = sqlite3_column_int(s, 0) != 0;
		out->in_parts = sqlite3_column_int(s, 1) != 0;
		out->in_uploads = sqlite3_column_int(s, 2) != 0;
	} else {
		r = sql_fail(err, c->db, rc, "check blob state");
	}
	stmt_done(s);
	return r;
}

/* Bind the columns shared by parts and upload_parts inserts. */
static int bind_part(sqlite3_stmt *s, const uint8_t uid[KURA_UID_LEN],
		     const struct kura_part *p)
{
	int rc = bind_blob(s, 1, uid, KURA_UID_LEN);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, p->part_no);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, p->blob_id, KURA_BLOB_ID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, (int64_t)p->size);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, p->seg_size);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 6, p->dek_wrapped, KURA_WRAPPED_DEK_LEN);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 7, p->etag);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, p->mtime_ms);
	return rc;
}

static enum kura_err part_insert(struct conn *c, const struct kura_object *o,
				 const struct kura_part *p,
				 struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	struct blob_state bs;
	enum kura_err r;
	int rc;

	r = blob_state_get(c, p->blob_id, &bs, err);
	if (r != KURA_OK)
		return r;
	if (bs.queued)
		return kura_fail(err, KURA_EEXIST,
				 "part %u names a blob queued for deletion",
				 p->part_no);
	if (bs.in_uploads)
		return kura_fail(err, KURA_EEXIST,
				 "part %u names a blob of an upload", p->part_no);

	r = stmt_get(c, ST_PART_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_part(s, o->version_uid, p);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return KURA_OK;
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST,
				 "part %u: blob id already in use", p->part_no);
	return sql_fail(err, c->db, rc, "insert part");
}

static enum kura_err object_insert(struct conn *c, const struct kura_object *o,
				   struct kura_error *err)
{
	const char *strs[8] = {
		o->content_type, o->content_encoding, o->content_language,
		o->content_disposition, o->cache_control, o->expires,
		o->user_meta_json, o->tags_json,
	};
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_OBJ_INSERT, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, o->bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, o->key, o->key_len);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, o->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, (int64_t)o->size);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 5, o->etag);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 6, o->mtime_ms);
	for (int i = 0; i < 8 && rc == SQLITE_OK; i++)
		rc = bind_text(s, 7 + i, strs[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 15, o->part_count);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return KURA_OK;
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "version uid already in use");
	return sql_fail(err, c->db, rc, "insert object");
}

static enum kura_err object_put_body(struct conn *c, void *arg,
				     struct kura_error *err)
{
	const struct kura_object *o = arg;
	struct blob_list old = { NULL, 0 };
	bool found = false;
	enum kura_err r;

	r = exists(c, ST_BUCKET_EXISTS, o->bucket_id, &found, err);
	if (r != KURA_OK)
		goto out;
	if (!found) {
		r = kura_fail(err, KURA_ENOENT, "no bucket %016llx",
			      (unsigned long long)o->bucket_id);
		goto out;
	}
	/* An upload's uid becomes its object's on completion. */
	r = exists_blob(c, ST_UPLOAD_UID_EXISTS, o->version_uid, KURA_UID_LEN,
			&found, err);
	if (r != KURA_OK)
		goto out;
	if (found) {
		r = kura_fail(err, KURA_EEXIST,
			      "version uid belongs to an upload");
		goto out;
	}
	r = object_remove(c, o->bucket_id, o->key, o->key_len, &found, &old,
			  err);
	if (r != KURA_OK)
		goto out;
	r = object_insert(c, o, err);
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++)
		r = part_insert(c, o, &o->parts[i], err);
	/* After the new parts exist, so a reused blob is not queued. */
	if (r == KURA_OK)
		r = gc_queue(c, &old, err);
out:
	free(old.ids);
	return r;
}

static enum kura_err check_key(const char *key, size_t key_len,
			       struct kura_error *err)
{
	if (key == NULL || key_len == 0 || key_len > KURA_OBJECT_KEY_MAX)
		return kura_fail(err, KURA_EINVAL, "bad object key (%zu bytes)",
				 key_len);
	return KURA_OK;
}

/* Validate an object record; a multipart one (from upload_complete) has
 * at least one part and part numbers 1..KURA_MAX_PARTS. */
static enum kura_err check_object(const struct kura_object *obj,
				  bool multipart, struct kura_error *err)
{
	uint64_t sum = 0;
	enum kura_err r;

	if (obj == NULL)
		return kura_fail(err, KURA_EINVAL, "object missing");
	r = check_key(obj->key, obj->key_len, err);
	if (r != KURA_OK)
		return r;
	if (!str_ok(obj->etag, sizeof(obj->etag), true) ||
	    obj->size > INT64_MAX || obj->part_count > PARTS_MAX ||
	    (obj->part_count > 0 && obj->parts == NULL) ||
	    (multipart &&
	     (obj->part_count == 0 || obj->part_count > KURA_MAX_PARTS)))
		return kura_fail(err, KURA_EINVAL, "bad object record");
	for (uint32_t i = 0; i < obj->part_count; i++) {
		const struct kura_part *p = &obj->parts[i];
		if (!str_ok(p->etag, sizeof(p->etag), true) ||
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

static enum kura_err sqlite_object_put(void *priv,
				       const struct kura_object *obj,
				       struct kura_error *err)
{
	enum kura_err r = check_object(obj, false, err);

	if (r != KURA_OK)
		return r;
	return write_tx(priv, object_put_body, (void *)obj, err);
}

/* One row of ST_PARTS_GET / ST_UPART_LIST columns. */
static enum kura_err part_row(sqlite3_stmt *s, struct kura_part *p,
			       struct kura_error *err)
{
	enum kura_err r;

	memset(p, 0, sizeof(*p));
	p->part_no = (uint32_t)sqlite3_column_int64(s, 0);
	r = col_blob(s, 1, p->blob_id, KURA_BLOB_ID_LEN, NULL, "blob id", err);
	if (r != KURA_OK)
		return r;
	p->size = (uint64_t)sqlite3_column_int64(s, 2);
	p->seg_size = (uint32_t)sqlite3_column_int64(s, 3);
	r = col_blob(s, 4, p->dek_wrapped, KURA_WRAPPED_DEK_LEN, NULL,
		     "wrapped dek", err);
	if (r == KURA_OK)
		r = col_text(s, 5, p->etag, sizeof(p->etag), "part etag", err);
	p->mtime_ms = sqlite3_column_int64(s, 6);
	return r;
}

static enum kura_err parts_read(struct conn *c, struct kura_object *o,
				struct kura_pool *pool, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	uint32_t n = 0;
	enum kura_err r = stmt_get(c, ST_PARTS_GET, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	if (o->part_count > 0) {
		o->parts = kura_palloc(pool, o->part_count * sizeof(*o->parts));
		if (o->parts == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = bind_blob(s, 1, o->version_uid, KURA_UID_LEN);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct kura_part *p;
		if (n >= o->part_count) {
			r = kura_fail(err, KURA_EIO,
				      "sqlite: object has more parts than %u",
				      o->part_count);
			goto out;
		}
		p = &o->parts[n];
		r = part_row(s, p, err);
		if (r != KURA_OK)
			goto out;
		/* Rows written by schema 1 have no part time. */
		if (sqlite3_column_type(s, 6) == SQLITE_NULL)
			p->mtime_ms = o->mtime_ms;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE)
		r = sql_fail(err, c->db, rc, "read parts");
	else if (n != o->part_count)
		r = kura_fail(err, KURA_EIO,
			      "sqlite: object has %u of %u parts", n,
			      o->part_count);
out:
	stmt_done(s);
	return r;
}

static enum kura_err sqlite_object_get(void *priv, uint64_t bucket_id,
				       const char *key, size_t key_len,
				       struct kura_pool *pool,
				       struct kura_object **out,
				       struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_object *o = NULL;
	const char **strs[8];
	enum kura_err r;
	int64_t v;
	int rc;

	r = check_key(key, key_len, err);
	if (r != KURA_OK)
		return r;
	o = kura_palloc(pool, sizeof(*o));
	if (o == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	strs[0] = &o->content_type;
	strs[1] = &o->content_encoding;
	strs[2] = &o->content_language;
	strs[3] = &o->content_disposition;
	strs[4] = &o->cache_control;
	strs[5] = &o->expires;
	strs[6] = &o->user_meta_json;
	strs[7] = &o->tags_json;

	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	/* One read transaction: the row and its parts from one snapshot. */
	r = run_id(c, ST_BEGIN, "begin", err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_OBJ_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, key, key_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = kura_fail(err, KURA_ENOENT, "no such object");
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "get object");
		goto out;
	}
	o->bucket_id = bucket_id;
	o->key = kura_pstrndup(pool, key, key_len);
	if (o->key == NULL) {
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
		goto out;
	}
	o->key_len = key_len;
	r = col_blob(s, 0, o->version_uid, KURA_UID_LEN, NULL, "version uid",
		     err);
	if (r != KURA_OK)
		goto out;
	o->size = (uint64_t)sqlite3_column_int64(s, 1);
	r = col_text(s, 2, o->etag, sizeof(o->etag), "etag", err);
	if (r != KURA_OK)
		goto out;
	o->mtime_ms = sqlite3_column_int64(s, 3);
	for (int i = 0; i < 8 && r == KURA_OK; i++)
		r = col_ptext(s, 4 + i, pool, strs[i], err);
	if (r != KURA_OK)
		goto out;
	v = sqlite3_column_int64(s, 12);
	if (v < 0 || v > PARTS_MAX) {
		r = kura_fail(err, KURA_EIO, "sqlite: corrupt part count");
		goto out;
	}
	o->part_count = (uint32_t)v;
	stmt_done(s);
	s = NULL;
	r = parts_read(c, o, pool, err);
	if (r == KURA_OK)
		r = run_id(c, ST_COMMIT, "end read", err);
	if (r == KURA_OK)
		*out = o;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err object_delete_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	const struct kura_object *o = arg;
	struct blob_list old = { NULL, 0 };
	bool found = false;
	enum kura_err r;

	r = object_remove(c, o->bucket_id, o->key, o->key_len, &found, &old,
			  err);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no such object");
	if (r == KURA_OK)
		r = gc_queue(c, &old, err);
	free(old.ids);
	return r;
}

static enum kura_err sqlite_object_delete(void *priv, uint64_t bucket_id,
					  const char *key, size_t key_len,
					  struct kura_error *err)
{
	struct kura_object o = { 0 };
	enum kura_err r = check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	o.bucket_id = bucket_id;
	o.key = key;
	o.key_len = key_len;
	return write_tx(priv, object_delete_body, &o, err);
}

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

static enum kura_err sqlite_object_list(void *priv, uint64_t bucket_id,
					const char *prefix, size_t prefix_len,
					const char *after, size_t after_len,
					size_t limit, struct kura_pool *pool,
					struct kura_list_entry **out,
					size_t *count, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	unsigned char *upper = NULL;
	size_t upper_len = 0, n = 0, cap = 0;
	struct kura_list_entry *tmp = NULL, *res = NULL;
	const char *lower = NULL;
	size_t lower_len = 0;
	int variant = 0;	/* 0 none, 1 >= prefix, 2 > after */
	enum kura_err r;
	int rc;

	if ((prefix == NULL && prefix_len > 0) ||
	    (after == NULL && after_len > 0))
		return kura_fail(err, KURA_EINVAL, "bad listing bounds");
	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	/* Only the tighter of the two lower bounds matters. */
	if (prefix_len > 0) {
		variant = 1;
		lower = prefix;
		lower_len = prefix_len;
	}
	if (after_len > 0 &&
	    (prefix_len == 0 ||
	     bytes_cmp(after, after_len, prefix, prefix_len) >= 0)) {
		variant = 2;
		lower = after;
		lower_len = after_len;
	}
	if (prefix_len > 0) {
		upper = malloc(prefix_len);
		if (upper == NULL)
			return kura_fail(err, KURA_ENOMEM, "out of memory");
		prefix_successor(prefix, prefix_len, upper, &upper_len);
	}

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, (enum st)(ST_LIST + variant * 2 +
					  (upper_len > 0 ? 1 : 0)),
			     &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK && variant != 0)
		rc = bind_blob(s, 2, lower, lower_len);
	if (rc == SQLITE_OK && upper_len > 0)
		rc = bind_blob(s, 3, upper, upper_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4,
					limit > INT64_MAX ? INT64_MAX
							  : (int64_t)limit);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct kura_list_entry *e;
		const void *k;
		int klen;

		if (n == cap) {
			size_t ncap = cap == 0 ? (limit < 64 ? limit : 64)
					       : cap * 2;
			void *p = realloc(tmp, ncap * sizeof(*tmp));
			if (p == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			tmp = p;
			cap = ncap;
		}
		e = &tmp[n];
		k = sqlite3_column_blob(s, 0);
		klen = sqlite3_column_bytes(s, 0);
		if (k == NULL || klen <= 0) {
			r = kura_fail(err, KURA_EIO, "sqlite: corrupt key");
			goto out;
		}
		e->key = kura_pstrndup(pool, k, (size_t)klen);
		if (e->key == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
		e->key_len = (size_t)klen;
		e->size = (uint64_t)sqlite3_column_int64(s, 1);
		r = col_text(s, 2, e->etag, sizeof(e->etag), "etag", err);
		if (r != KURA_OK)
			goto out;
		e->mtime_ms = sqlite3_column_int64(s, 3);
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "list objects");
		goto out;
	}
	if (n > 0) {
		res = kura_pmemdup(pool, tmp, n * sizeof(*tmp));
		if (res == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	*count = n;
out:
	stmt_done(s);
	conn_release(m, c);
	free(tmp);
	free(upper);
	return r;
}

/* ---- object tags ---- */

struct tags_arg {
	uint64_t bucket_id;
	const char *key;
	size_t key_len;
	const char *tags_json;
};

static enum kura_err set_tags_body(struct conn *c, void *arg,
				   struct kura_error *err)
{
	struct tags_arg *a = arg;
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_OBJ_SET_TAGS, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, a->key, a->key_len);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 3, a->tags_json);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "set object tags");
	if (sqlite3_changes(c->db) == 0)
		return kura_fail(err, KURA_ENOENT, "no such object");
	return KURA_OK;
}

static enum kura_err sqlite_object_set_tags(void *priv, uint64_t bucket_id,
					    const char *key, size_t key_len,
					    const char *tags_json,
					    struct kura_error *err)
{
	struct tags_arg a = { bucket_id, key, key_len, tags_json };
	enum kura_err r = check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	return write_tx(priv, set_tags_body, &a, err);
}

/* ---- multipart uploads ---- */

/* Upload ids are opaque to this layer: 1..64 printable ASCII characters
 * (no space), so they sort and print safely. */
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
	    !str_ok(p->etag, sizeof(p->etag), true) || p->size > INT64_MAX)
		return kura_fail(err, KURA_EINVAL, "bad part %u", p->part_no);
	return KURA_OK;
}

/* Upload id in bucket_id: its version uid and, when key is not NULL,
 * whether its key is key.  KURA_ENOENT when there is none (also when it
 * belongs to another bucket). */
static enum kura_err upload_find(struct conn *c, const char *id,
				 uint64_t bucket_id, const char *key,
				 size_t key_len, uint8_t uid[KURA_UID_LEN],
				 bool *key_match, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_UPLOAD_FIND, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE ||
	    (rc == SQLITE_ROW &&
	     i2u(sqlite3_column_int64(s, 0)) != bucket_id)) {
		r = kura_fail(err, KURA_ENOENT, "no upload '%s'", id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "find upload");
		goto out;
	}
	if (key != NULL) {
		const void *k = sqlite3_column_blob(s, 1);
		int n = sqlite3_column_bytes(s, 1);
		*key_match = k != NULL && n > 0 && (size_t)n == key_len &&
			     memcmp(k, key, key_len) == 0;
	}
	r = col_blob(s, 2, uid, KURA_UID_LEN, NULL, "version uid", err);
out:
	stmt_done(s);
	return r;
}

/* Run a statement whose only parameter ?1 is a version uid. */
static enum kura_err run_uid(struct conn *c, enum st id,
			     const uint8_t uid[KURA_UID_LEN], const char *what,
			     struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, id, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, what);
	return KURA_OK;
}

/* Queue every blob of the upload with uid that is not (now) an object's
 * part, then delete its part rows and the upload row. */
static enum kura_err upload_drop(struct conn *c, const char *id,
				 const uint8_t uid[KURA_UID_LEN],
				 struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = run_uid(c, ST_UPART_GC_ALL, uid, "queue upload parts", err);
	if (r == KURA_OK)
		r = run_uid(c, ST_UPART_DELETE_ALL, uid, "delete upload parts",
			    err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_UPLOAD_DELETE, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "delete upload");
	return KURA_OK;
}

static enum kura_err upload_create_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	const struct kura_upload *u = arg;
	const char *strs[8] = {
		u->content_type, u->content_encoding, u->content_language,
		u->content_disposition, u->cache_control, u->expires,
		u->user_meta_json, u->tags_json,
	};
	sqlite3_stmt *s = NULL;
	bool found = false;
	enum kura_err r;
	int rc;

	r = exists(c, ST_BUCKET_EXISTS, u->bucket_id, &found, err);
	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no bucket %016llx",
				 (unsigned long long)u->bucket_id);
	r = exists_blob(c, ST_OBJ_UID_EXISTS, u->version_uid, KURA_UID_LEN,
			&found, err);
	if (r != KURA_OK)
		return r;
	if (found)
		return kura_fail(err, KURA_EEXIST,
				 "version uid belongs to an object");
	r = stmt_get(c, ST_UPLOAD_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, u->id);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 2, u->bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, u->key, u->key_len);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 4, u->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, u->created_ms);
	for (int i = 0; i < 8 && rc == SQLITE_OK; i++)
		rc = bind_text(s, 6 + i, strs[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return KURA_OK;
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST,
				 "upload '%s' (or its version uid) exists",
				 u->id);
	return sql_fail(err, c->db, rc, "insert upload");
}

static enum kura_err sqlite_upload_create(void *priv,
					  const struct kura_upload *u,
					  struct kura_error *err)
{
	enum kura_err r;

	if (u == NULL || !upload_id_ok(u->id))
		return kura_fail(err, KURA_EINVAL, "bad upload id");
	r = check_key(u->key, u->key_len, err);
	if (r != KURA_OK)
		return r;
	return write_tx(priv, upload_create_body, (void *)u, err);
}

/* One row of UPLOAD_COLS, strings from pool. */
static enum kura_err upload_row(sqlite3_stmt *s, struct kura_pool *pool,
				struct kura_upload *u, struct kura_error *err)
{
	const char **strs[8] = {
		&u->content_type, &u->content_encoding, &u->content_language,
		&u->content_disposition, &u->cache_control, &u->expires,
		&u->user_meta_json, &u->tags_json,
	};
	const void *k;
	enum kura_err r;
	int klen;

	memset(u, 0, sizeof(*u));
	r = col_text(s, 0, u->id, sizeof(u->id), "upload id", err);
	if (r != KURA_OK)
		return r;
	u->bucket_id = i2u(sqlite3_column_int64(s, 1));
	k = sqlite3_column_blob(s, 2);
	klen = sqlite3_column_bytes(s, 2);
	if (k == NULL || klen <= 0)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt upload key");
	u->key = kura_pstrndup(pool, k, (size_t)klen);
	if (u->key == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	u->key_len = (size_t)klen;
	r = col_blob(s, 3, u->version_uid, KURA_UID_LEN, NULL, "version uid",
		     err);
	if (r != KURA_OK)
		return r;
	u->created_ms = sqlite3_column_int64(s, 4);
	for (int i = 0; i < 8 && r == KURA_OK; i++)
		r = col_ptext(s, 5 + i, pool, strs[i], err);
	return r;
}

static enum kura_err sqlite_upload_get(void *priv, uint64_t bucket_id,
				       const char *upload_id,
				       struct kura_pool *pool,
				       struct kura_upload **out,
				       struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_upload *u = NULL;
	enum kura_err r;
	int rc;

	r = check_upload_ref(upload_id, err);
	if (r != KURA_OK)
		return r;
	u = kura_palloc(pool, sizeof(*u));
	if (u == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_UPLOAD_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_text(s, 1, upload_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE ||
	    (rc == SQLITE_ROW &&
	     i2u(sqlite3_column_int64(s, 1)) != bucket_id)) {
		r = kura_fail(err, KURA_ENOENT, "no upload '%s'", upload_id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "get upload");
		goto out;
	}
	r = upload_row(s, pool, u, err);
	if (r == KURA_OK)
		*out = u;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

struct put_part_arg {
	uint64_t bucket_id;
	const char *id;
	const struct kura_part *p;
};

static enum kura_err upload_put_part_body(struct conn *c, void *arg,
					  struct kura_error *err)
{
	struct put_part_arg *a = arg;
	const struct kura_part *p = a->p;
	uint8_t uid[KURA_UID_LEN];
	uint8_t old[1][KURA_BLOB_ID_LEN];
	struct blob_list old_list = { old, 0 };
	struct blob_state bs;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = upload_find(c, a->id, a->bucket_id, NULL, 0, uid, NULL, err);
	if (r != KURA_OK)
		return r;
	/* The part this one replaces, if any: its row goes first so its
	 * blob may be reused (a retried request) without a clash. */
	r = stmt_get(c, ST_UPART_BLOB, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, p->part_no);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r = col_blob(s, 0, old[0], KURA_BLOB_ID_LEN, NULL, "blob id",
			     err);
		old_list.n = 1;
	} else if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "find upload part");
	}
	stmt_done(s);
	if (r != KURA_OK)
		return r;
	if (old_list.n > 0) {
		r = stmt_get(c, ST_UPART_DELETE_ONE, &s, err);
		if (r != KURA_OK)
			return r;
		rc = bind_blob(s, 1, uid, KURA_UID_LEN);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 2, p->part_no);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			return sql_fail(err, c->db, rc, "replace upload part");
	}

	r = blob_state_get(c, p->blob_id, &bs, err);
	if (r != KURA_OK)
		return r;
	if (bs.queued)
		return kura_fail(err, KURA_EEXIST,
				 "part %u names a blob queued for deletion",
				 p->part_no);
	if (bs.in_parts || bs.in_uploads)
		return kura_fail(err, KURA_EEXIST,
				 "part %u: blob id already in use", p->part_no);
	r = stmt_get(c, ST_UPART_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_part(s, uid, p);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "insert upload part");
	/* After the insert, so a reused blob is not queued. */
	return gc_queue(c, &old_list, err);
}

static enum kura_err sqlite_upload_put_part(void *priv, uint64_t bucket_id,
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
	return write_tx(priv, upload_put_part_body, &a, err);
}

static enum kura_err sqlite_upload_list_parts(void *priv, uint64_t bucket_id,
					      const char *upload_id,
					      uint32_t after, size_t limit,
					      struct kura_pool *pool,
					      struct kura_part **out,
					      size_t *count,
					      struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_part *tmp = NULL, *res = NULL;
	uint8_t uid[KURA_UID_LEN];
	size_t n = 0, cap = 0;
	enum kura_err r;
	int rc;

	r = check_upload_ref(upload_id, err);
	if (r != KURA_OK)
		return r;
	if (limit > KURA_MAX_PARTS)
		limit = KURA_MAX_PARTS;	/* "up to limit" */
	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	/* One read transaction: the upload and its parts from one
	 * snapshot. */
	r = run_id(c, ST_BEGIN, "begin", err);
	if (r == KURA_OK)
		r = upload_find(c, upload_id, bucket_id, NULL, 0, uid, NULL,
				err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_UPART_LIST, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_blob(s, 1, uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, after);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, (int64_t)limit);
	while (rc == SQLITE_OK && n < limit &&
	       (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? 16 : cap * 2;
			void *p = realloc(tmp, ncap * sizeof(*tmp));
			if (p == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			tmp = p;
			cap = ncap;
		}
		r = part_row(s, &tmp[n], err);
		if (r != KURA_OK)
			goto out;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, "list upload parts");
		goto out;
	}
	stmt_done(s);
	s = NULL;
	r = run_id(c, ST_COMMIT, "end read", err);
	if (r != KURA_OK)
		goto out;
	if (n > 0) {
		res = kura_pmemdup(pool, tmp, n * sizeof(*tmp));
		if (res == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	*count = n;
out:
	stmt_done(s);
	conn_release(m, c);
	free(tmp);
	return r;
}

struct complete_arg {
	const char *id;
	const struct kura_object *o;
};

static enum kura_err upload_complete_body(struct conn *c, void *arg,
					  struct kura_error *err)
{
	struct complete_arg *a = arg;
	const struct kura_object *o = a->o;
	struct blob_list old = { NULL, 0 };
	uint8_t uid[KURA_UID_LEN];
	sqlite3_stmt *s = NULL;
	bool found = false, key_match = false;
	enum kura_err r;

	r = upload_find(c, a->id, o->bucket_id, o->key, o->key_len, uid,
			&key_match, err);
	if (r != KURA_OK)
		goto out;
	if (!key_match || memcmp(uid, o->version_uid, KURA_UID_LEN) != 0) {
		r = kura_fail(err, KURA_EINVAL,
			      "object key or version uid differs from upload "
			      "'%s'",
			      a->id);
		goto out;
	}
	r = object_remove(c, o->bucket_id, o->key, o->key_len, &found, &old,
			  err);
	if (r == KURA_OK)
		r = object_insert(c, o, err);
	if (r != KURA_OK)
		goto out;
	/* Move each chosen part, row for row, if it is still the one the
	 * caller saw (same blob, size and etag). */
	r = stmt_get(c, ST_UPART_MOVE, &s, err);
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++) {
		const struct kura_part *p = &o->parts[i];
		int rc = bind_blob(s, 1, uid, KURA_UID_LEN);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 2, p->part_no);
		if (rc == SQLITE_OK)
			rc = bind_blob(s, 3, p->blob_id, KURA_BLOB_ID_LEN);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 4, (int64_t)p->size);
		if (rc == SQLITE_OK)
			rc = bind_text(s, 5, p->etag);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			r = sql_fail(err, c->db, rc, "move upload part");
		else if (sqlite3_changes(c->db) != 1)
			r = kura_fail(err, KURA_ESTATE,
				      "part %u does not match upload '%s'",
				      p->part_no, a->id);
	}
	if (r != KURA_OK)
		goto out;
	r = upload_drop(c, a->id, uid, err);
	if (r == KURA_OK)
		r = gc_queue(c, &old, err);
out:
	free(old.ids);
	return r;
}

static enum kura_err sqlite_upload_complete(void *priv, const char *upload_id,
					    const struct kura_object *obj,
					    struct kura_error *err)
{
	struct complete_arg a = { upload_id, obj };
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r == KURA_OK)
		r = check_object(obj, true, err);
	if (r != KURA_OK)
		return r;
	return write_tx(priv, upload_complete_body, &a, err);
}

struct abort_arg {
	uint64_t bucket_id;
	const char *id;
};

static enum kura_err upload_abort_body(struct conn *c, void *arg,
				       struct kura_error *err)
{
	struct abort_arg *a = arg;
	uint8_t uid[KURA_UID_LEN];
	enum kura_err r;

	r = upload_find(c, a->id, a->bucket_id, NULL, 0, uid, NULL, err);
	if (r == KURA_OK)
		r = upload_drop(c, a->id, uid, err);
	return r;
}

static enum kura_err sqlite_upload_abort(void *priv, uint64_t bucket_id,
					 const char *upload_id,
					 struct kura_error *err)
{
	struct abort_arg a = { bucket_id, upload_id };
	enum kura_err r = check_upload_ref(upload_id, err);

	if (r != KURA_OK)
		return r;
	return write_tx(priv, upload_abort_body, &a, err);
}

/* Step a bound UPLOAD_COLS statement into a pool array of at most limit
 * rows. */
static enum kura_err upload_rows(struct conn *c, sqlite3_stmt *s,
				 size_t limit, struct kura_pool *pool,
				 struct kura_upload **out, size_t *count,
				 struct kura_error *err)
{
	struct kura_upload *tmp = NULL, *res = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r = KURA_OK;
	int rc = SQLITE_OK;

	while (n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? (limit < 16 ? limit : 16)
					       : cap * 2;
			void *p = realloc(tmp, ncap * sizeof(*tmp));
			if (p == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			tmp = p;
			cap = ncap;
		}
		r = upload_row(s, pool, &tmp[n], err);
		if (r != KURA_OK)
			goto out;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, "list uploads");
		goto out;
	}
	if (n > 0) {
		res = kura_pmemdup(pool, tmp, n * sizeof(*tmp));
		if (res == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	*count = n;
out:
	free(tmp);
	return r;
}

static enum kura_err sqlite_upload_list(void *priv, uint64_t bucket_id,
					const char *prefix, size_t prefix_len,
					const char *key_marker, size_t km_len,
					const char *id_marker, size_t limit,
					struct kura_pool *pool,
					struct kura_upload **out,
					size_t *count, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	unsigned char *upper = NULL;
	size_t upper_len = 0;
	const char *lower = NULL;
	size_t lower_len = 0;
	/* 0 none, 1 >= prefix, 2 > key marker, 3 > (key marker, id marker) */
	int variant = 0;
	enum kura_err r;
	int rc;

	if ((prefix == NULL && prefix_len > 0) ||
	    (key_marker == NULL && km_len > 0))
		return kura_fail(err, KURA_EINVAL, "bad listing bounds");
	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	if (prefix_len > 0) {
		variant = 1;
		lower = prefix;
		lower_len = prefix_len;
	}
	/* Every key under the prefix sorts after a marker below it; a
	 * marker at or above the prefix is the tighter bound.  As in S3,
	 * the id marker only counts together with a key marker. */
	if (km_len > 0 &&
	    (prefix_len == 0 ||
	     bytes_cmp(key_marker, km_len, prefix, prefix_len) >= 0)) {
		variant = id_marker != NULL && id_marker[0] != '\0' ? 3 : 2;
		lower = key_marker;
		lower_len = km_len;
	}
	if (prefix_len > 0) {
		upper = malloc(prefix_len);
		if (upper == NULL)
			return kura_fail(err, KURA_ENOMEM, "out of memory");
		prefix_successor(prefix, prefix_len, upper, &upper_len);
	}

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, (enum st)(ST_ULIST + variant * 2 +
					  (upper_len > 0 ? 1 : 0)),
			     &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK && variant != 0)
		rc = bind_blob(s, 2, lower, lower_len);
	if (rc == SQLITE_OK && variant == 3)
		rc = bind_text(s, 3, id_marker);
	if (rc == SQLITE_OK && upper_len > 0)
		rc = bind_blob(s, 4, upper, upper_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5,
					limit > INT64_MAX ? INT64_MAX
							  : (int64_t)limit);
	if (rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, "list uploads");
		goto out;
	}
	r = upload_rows(c, s, limit, pool, out, count, err);
out:
	stmt_done(s);
	conn_release(m, c);
	free(upper);
	return r;
}

static enum kura_err sqlite_upload_expired(void *priv, int64_t before_ms,
					   size_t limit,
					   struct kura_pool *pool,
					   struct kura_upload **out,
					   size_t *count,
					   struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_UPLOAD_EXPIRED, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = sqlite3_bind_int64(s, 1, before_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2,
					limit > INT64_MAX ? INT64_MAX
							  : (int64_t)limit);
	if (rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, "list expired uploads");
		goto out;
	}
	r = upload_rows(c, s, limit, pool, out, count, err);
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

/* ---- blob garbage ---- */

static enum kura_err sqlite_gc_next(void *priv,
				    uint8_t (*ids)[KURA_BLOB_ID_LEN],
				    size_t max, size_t *count,
				    struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	uint8_t (*tmp)[KURA_BLOB_ID_LEN] = NULL;
	size_t n = 0;
	enum kura_err r;
	int rc;

	if (max > GC_BATCH_MAX)
		max = GC_BATCH_MAX;	/* "up to max" */
	if (max == 0) {
		*count = 0;
		return KURA_OK;
	}
	tmp = malloc(max * sizeof(*tmp));
	if (tmp == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_GC_NEXT, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = sqlite3_bind_int64(s, 1, (int64_t)max);
	while (rc == SQLITE_OK && n < max &&
	       (rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = col_blob(s, 0, tmp[n], KURA_BLOB_ID_LEN, NULL, "gc blob id",
			     err);
		if (r != KURA_OK)
			goto out;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, "read gc queue");
		goto out;
	}
	if (n > 0)
		memcpy(ids, tmp, n * sizeof(*tmp));
	*count = n;
out:
	stmt_done(s);
	conn_release(m, c);
	free(tmp);
	return r;
}

struct gc_done_arg {
	const uint8_t (*ids)[KURA_BLOB_ID_LEN];
	size_t count;
};

static enum kura_err gc_done_body(struct conn *c, void *arg,
				  struct kura_error *err)
{
	struct gc_done_arg *a = arg;
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_GC_DELETE, &s, err);

	for (size_t i = 0; r == KURA_OK && i < a->count; i++) {
		int rc = bind_blob(s, 1, a->ids[i], KURA_BLOB_ID_LEN);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			r = sql_fail(err, c->db, rc, "forget gc blob");
	}
	return r;
}

static enum kura_err sqlite_gc_done(void *priv,
				    const uint8_t (*ids)[KURA_BLOB_ID_LEN],
				    size_t count, struct kura_error *err)
{
	struct gc_done_arg a = { ids, count };

	if (count == 0)
		return KURA_OK;
	if (ids == NULL)
		return kura_fail(err, KURA_EINVAL, "gc ids missing");
	return write_tx(priv, gc_done_body, &a, err);
}

static enum kura_err sqlite_blob_referenced(void *priv,
					    const uint8_t id[KURA_BLOB_ID_LEN],
					    bool *referenced,
					    struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_BLOB_REFERENCED, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_blob(s, 1, id, KURA_BLOB_ID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = sql_fail(err, c->db, rc, "check blob reference");
		goto out;
	}
	*referenced = sqlite3_column_int(s, 0) != 0;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

const struct kura_meta_ops kura_meta_sqlite = {
	.name = "sqlite",
	.caps = 0,
	.priv_size = sizeof(struct meta_sqlite),
	.open = sqlite_open,
	.close = sqlite_close,
	.setting_get = sqlite_setting_get,
	.setting_insert = sqlite_setting_insert,
	.tenant_create = sqlite_tenant_create,
	.tenant_get = sqlite_tenant_get,
	.tenant_get_by_name = sqlite_tenant_get_by_name,
	.access_key_create = sqlite_access_key_create,
	.access_key_get = sqlite_access_key_get,
	.bucket_create = sqlite_bucket_create,
	.bucket_get = sqlite_bucket_get,
	.bucket_list = sqlite_bucket_list,
	.bucket_delete = sqlite_bucket_delete,
	.object_put = sqlite_object_put,
	.object_get = sqlite_object_get,
	.object_delete = sqlite_object_delete,
	.object_list = sqlite_object_list,
	.object_set_tags = sqlite_object_set_tags,
	.upload_create = sqlite_upload_create,
	.upload_get = sqlite_upload_get,
	.upload_put_part = sqlite_upload_put_part,
	.upload_list_parts = sqlite_upload_list_parts,
	.upload_complete = sqlite_upload_complete,
	.upload_abort = sqlite_upload_abort,
	.upload_list = sqlite_upload_list,
	.upload_expired = sqlite_upload_expired,
	.gc_next = sqlite_gc_next,
	.gc_done = sqlite_gc_done,
	.blob_referenced = sqlite_blob_referenced,
};

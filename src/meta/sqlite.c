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
 * Schema (version 5; docs/METADATA.md describes every column).  All tables
 * are STRICT, so a key can never be stored as TEXT and sort out of byte
 * order; 64-bit unsigned ids are stored bit-for-bit in signed INTEGERs.
 *   settings(name TEXT PK, value BLOB)
 *   tenants(id INTEGER PK AUTOINCREMENT, name TEXT UNIQUE, created_ms,
 *           state (v4: 0 active, 1 suspended))
 *   access_keys(id TEXT PK, tenant_id -> tenants, secret_sealed BLOB,
 *               created_ms, active)
 *   buckets(id INTEGER PK (random, caller-chosen), tenant_id -> tenants,
 *           name TEXT UNIQUE, region, created_ms, key_id -> keys (v3),
 *           default_sse (v3), default_kms_key_id -> keys (v3))
 *   retired_buckets(id INTEGER PK)     ids of deleted buckets, never reused
 *   objects(bucket_id -> buckets, key BLOB, version_uid BLOB UNIQUE, size,
 *           etag, mtime_ms, content_type, content_encoding,
 *           content_language, content_disposition, cache_control, expires,
 *           user_meta_json, part_count, tags_json (v2), sse,
 *           kms_key_id -> keys, ssec_hmac (v3), seal, seal_bk_id,
 *           parts_digest (v5: the metadata seal; etag then empty),
 *           PK(bucket_id, key)) WITHOUT ROWID
 *   parts(version_uid -> objects(version_uid), part_no, blob_id BLOB UNIQUE,
 *         size, seg_size, dek_wrapped BLOB, etag, mtime_ms (v2; NULL in
 *         rows written by v1: read as the object's mtime),
 *         bk_id -> bucket_keys (v3; NULL: no bucket key, see below),
 *         PK(version_uid, part_no)) WITHOUT ROWID
 *   gc(blob_id BLOB PK) WITHOUT ROWID  blobs to delete from the store
 *   uploads(id TEXT PK, bucket_id -> buckets, key BLOB, version_uid BLOB
 *           UNIQUE, created_ms, the object's headers, user_meta_json,
 *           tags_json, sse, kms_key_id, ssec_hmac (v3), seal,
 *           seal_bk_id (v5)) WITHOUT ROWID                         (v2)
 *     index (bucket_id, key, id) for listing, (created_ms) for expiry
 *   upload_parts(version_uid -> uploads(version_uid), part_no 1..10000,
 *                blob_id BLOB UNIQUE, size, seg_size, dek_wrapped, etag,
 *                mtime_ms, bk_id (v3), seal, seal_bk_id (v5),
 *                PK(version_uid, part_no))
 *                WITHOUT ROWID                                       (v2)
 *   keys(id INTEGER PK AUTOINCREMENT, tenant_id -> tenants, name, kind,
 *        state, current_version, provider, imported, created_ms,
 *        changed_ms)                                                 (v3)
 *     unique (tenant_id, name) WHERE state != destroyed, so a destroyed
 *     key's name (a deleted bucket's "bucket/NAME") can be used again
 *   key_versions(key_id -> keys, version, kek_id, state, created_ms,
 *                destroyed_ms, PK(key_id, version)) WITHOUT ROWID    (v3)
 *   bucket_keys(id INTEGER PK AUTOINCREMENT, bucket_id -> buckets,
 *               (key_id, key_version) -> key_versions, wrapped, current,
 *               created_ms, retired_ms)                              (v3)
 *     unique (bucket_id, key_id) WHERE current: one current per pair;
 *     indexes (bucket_id), (key_id, current), (key_id, key_version),
 *     (retired_ms) WHERE NOT current
 *   key_generation(one = 1, gen)       bumped by every key change    (v3)
 * Object keys are BLOBs: SQLite compares BLOBs with memcmp (then length),
 * which is exactly S3's UTF-8 byte order; objects is clustered on
 * (bucket_id, key) so a listing page is one range scan of the primary key.
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
 * Keys (v3): a part's DEK is wrapped by the bucket key parts.bk_id (or
 * upload_parts.bk_id).  That reference is ON DELETE RESTRICT, so a bucket
 * key cannot go while a part uses it: bucket_key_delete checks first and
 * says KURA_EBUSY, the constraint is the safety net.  Destroying a key
 * (key_destroyed) is the one exception, on purpose: its parts' bk_id are
 * set to NULL and then its bucket keys deleted, in one transaction; a part
 * with a NULL bk_id outside SSE-C can never be read again (that is the
 * point of destroying), and it stays listed until deleted or purged.
 * SSE-C parts may carry no bucket key at all (bk_id NULL, read as 0).
 * Every change to keys, key_versions or bucket_keys bumps
 * key_generation.gen in the same transaction, so processes caching bucket
 * keys notice changes made by another process.
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
 * NOT EXISTS in both part tables, so a blob still in use is never queued
 * (bucket_purge, which queues a whole bucket, deletes every part row of it
 * in the same transaction).
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
#include "kura/timefmt.h"
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
#define BATCH_MAX 65536		/* rows per re-wrap or retired listing */
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

	/* 2 -> 3: key management.  Every existing bucket gets its own key
	 * "bucket/NAME" (provider 'local', the only one a v1/v2 database can
	 * have been written with) whose version 1 is the bucket's KEK, and a
	 * current bucket key holding its wrapped key; every part and upload
	 * part is pointed at it.  That UPDATE and the two bk_id indexes are
	 * the only steps that touch every part row; objects are not rewritten
	 * (their new columns have constant defaults and no CHECK, which would
	 * make ADD COLUMN read every row).  buckets.kek_id and key_wrapped
	 * move into the new tables and are dropped (buckets is small, so the
	 * rewrite DROP COLUMN does is cheap).  Columns added to existing
	 * tables with a reference must be nullable (ADD COLUMN rule): the
	 * code always writes buckets.key_id. */
	"CREATE TABLE keys (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants(id),\n"
	"  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 256),\n"
	"  kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),\n"
	"  state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),\n"
	"  current_version INTEGER NOT NULL CHECK (current_version >= 1),\n"
	"  provider TEXT NOT NULL CHECK (length(provider) BETWEEN 1 AND 31),\n"
	"  imported INTEGER NOT NULL CHECK (imported IN (0, 1)),\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  changed_ms INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE UNIQUE INDEX keys_live_name ON keys(tenant_id, name) "
	"WHERE state != 3;\n"
	"CREATE INDEX keys_tenant ON keys(tenant_id, name);\n"
	"CREATE TABLE key_versions (\n"
	"  key_id INTEGER NOT NULL REFERENCES keys(id),\n"
	"  version INTEGER NOT NULL CHECK (version >= 1),\n"
	"  kek_id TEXT NOT NULL,\n"
	"  state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  destroyed_ms INTEGER NOT NULL,\n"
	"  PRIMARY KEY (key_id, version)\n"
	") WITHOUT ROWID, STRICT;\n"
	"CREATE TABLE bucket_keys (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  bucket_id INTEGER NOT NULL REFERENCES buckets(id),\n"
	"  key_id INTEGER NOT NULL,\n"
	"  key_version INTEGER NOT NULL,\n"
	"  wrapped BLOB NOT NULL CHECK (length(wrapped) <= 512),\n"
	"  current INTEGER NOT NULL CHECK (current IN (0, 1)),\n"
	"  created_ms INTEGER NOT NULL,\n"
	"  retired_ms INTEGER NOT NULL,\n"
	"  FOREIGN KEY (key_id, key_version)\n"
	"    REFERENCES key_versions(key_id, version)\n"
	") STRICT;\n"
	"CREATE UNIQUE INDEX bucket_keys_current ON bucket_keys(bucket_id, "
	"key_id) WHERE current = 1;\n"
	"CREATE INDEX bucket_keys_bucket ON bucket_keys(bucket_id);\n"
	"CREATE INDEX bucket_keys_key ON bucket_keys(key_id, current);\n"
	"CREATE INDEX bucket_keys_version ON bucket_keys(key_id, "
	"key_version);\n"
	"CREATE INDEX bucket_keys_retired ON bucket_keys(retired_ms) "
	"WHERE current = 0;\n"
	"CREATE TABLE key_generation (\n"
	"  one INTEGER PRIMARY KEY CHECK (one = 1),\n"
	"  gen INTEGER NOT NULL\n"
	") STRICT;\n"
	"INSERT INTO key_generation (one, gen) VALUES (1, 1);\n"
	"ALTER TABLE buckets ADD COLUMN key_id INTEGER REFERENCES keys(id);\n"
	"ALTER TABLE buckets ADD COLUMN default_sse INTEGER NOT NULL "
	"DEFAULT 0 CHECK (default_sse IN (0, 1));\n"
	"ALTER TABLE buckets ADD COLUMN default_kms_key_id INTEGER "
	"REFERENCES keys(id);\n"
	"INSERT INTO keys (tenant_id, name, kind, state, current_version, "
	"provider, imported, created_ms, changed_ms) SELECT tenant_id, "
	"'bucket/' || name, 1, 1, 1, 'local', 0, created_ms, created_ms "
	"FROM buckets ORDER BY id;\n"
	"UPDATE buckets SET key_id = (SELECT k.id FROM keys k WHERE "
	"k.tenant_id = buckets.tenant_id AND k.name = 'bucket/' || "
	"buckets.name AND k.state != 3);\n"
	"INSERT INTO key_versions (key_id, version, kek_id, state, "
	"created_ms, destroyed_ms) SELECT key_id, 1, kek_id, 1, created_ms, 0 "
	"FROM buckets;\n"
	"INSERT INTO bucket_keys (bucket_id, key_id, key_version, wrapped, "
	"current, created_ms, retired_ms) SELECT id, key_id, 1, key_wrapped, "
	"1, created_ms, 0 FROM buckets ORDER BY id;\n"
	"ALTER TABLE buckets DROP COLUMN kek_id;\n"
	"ALTER TABLE buckets DROP COLUMN key_wrapped;\n"
	"ALTER TABLE objects ADD COLUMN sse INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE objects ADD COLUMN kms_key_id INTEGER "
	"REFERENCES keys(id);\n"
	"ALTER TABLE objects ADD COLUMN ssec_hmac BLOB;\n"
	"ALTER TABLE uploads ADD COLUMN sse INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE uploads ADD COLUMN kms_key_id INTEGER "
	"REFERENCES keys(id);\n"
	"ALTER TABLE uploads ADD COLUMN ssec_hmac BLOB;\n"
	"ALTER TABLE parts ADD COLUMN bk_id INTEGER "
	"REFERENCES bucket_keys(id) ON DELETE RESTRICT;\n"
	"ALTER TABLE upload_parts ADD COLUMN bk_id INTEGER "
	"REFERENCES bucket_keys(id) ON DELETE RESTRICT;\n"
	"UPDATE parts SET bk_id = (SELECT bk.id FROM objects o JOIN buckets b "
	"ON b.id = o.bucket_id JOIN bucket_keys bk ON bk.bucket_id = b.id AND "
	"bk.key_id = b.key_id AND bk.current = 1 "
	"WHERE o.version_uid = parts.version_uid);\n"
	"UPDATE upload_parts SET bk_id = (SELECT bk.id FROM uploads u JOIN "
	"buckets b ON b.id = u.bucket_id JOIN bucket_keys bk ON "
	"bk.bucket_id = b.id AND bk.key_id = b.key_id AND bk.current = 1 "
	"WHERE u.version_uid = upload_parts.version_uid);\n"
	"CREATE INDEX parts_bk ON parts(bk_id);\n"
	"CREATE INDEX upload_parts_bk ON upload_parts(bk_id);\n",

	/* 3 -> 4: tenant lifecycle.  A tenant is active (0) or suspended
	 * (1).  The CHECK makes ADD COLUMN read every row, which is cheap:
	 * tenants is small.  (Parenthesised: one literal in two pieces, as
	 * clang's -Wstring-concatenation wants it said.) */
	("ALTER TABLE tenants ADD COLUMN state INTEGER NOT NULL DEFAULT 0 "
	 "CHECK (state IN (0, 1));\n"),

	/* 4 -> 5: metadata seals (docs/FORMAT.md §10).  Existing rows keep a
	 * NULL seal and seal_bk_id — "never sealed" — until the upgrade job
	 * (src/kms/seal.c) seals them with the keys, which SQL does not
	 * have.  seal_bk_id has no foreign key: a seal whose bucket key went
	 * with its destroyed key reads as destroyed, like the data.  The
	 * indexes serve the re-sealing after a rotation and the upgrade. */
	("ALTER TABLE objects ADD COLUMN seal BLOB;\n"
	 "ALTER TABLE objects ADD COLUMN seal_bk_id INTEGER;\n"
	 "ALTER TABLE objects ADD COLUMN parts_digest BLOB;\n"
	 "ALTER TABLE uploads ADD COLUMN seal BLOB;\n"
	 "ALTER TABLE uploads ADD COLUMN seal_bk_id INTEGER;\n"
	 "ALTER TABLE upload_parts ADD COLUMN seal BLOB;\n"
	 "ALTER TABLE upload_parts ADD COLUMN seal_bk_id INTEGER;\n"
	 "CREATE INDEX objects_seal_bk ON objects(seal_bk_id, bucket_id);\n"
	 "CREATE INDEX uploads_seal_bk ON uploads(seal_bk_id, bucket_id);\n"
	 "CREATE INDEX upload_parts_seal_bk ON upload_parts(seal_bk_id);\n"
	 "INSERT INTO settings (name, value) SELECT 'seal_pending', x'01' "
	 "WHERE EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM "
	 "uploads);\n"),
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
	ST_SETTING_DELETE,
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
	/* v3: buckets, keys, bucket keys, re-wrapping */
	ST_BUCKET_TENANT,
	ST_BUCKET_SET_ENC,
	ST_BUCKET_PARTS_GC,
	ST_BUCKET_PARTS_DELETE,
	ST_BUCKET_OBJECTS_DELETE,
	ST_BUCKET_BKS_DELETE,
	ST_BUCKET_BLOBS,
	ST_KEY_INSERT,
	ST_KEY_GET,
	ST_KEY_GET_BY_NAME,
	ST_KEY_LIST,
	ST_KEY_LIST_ALL,
	ST_KEY_SET_STATE,
	ST_KEY_SET_VERSION,
	ST_KEYVER_INSERT,
	ST_KEYVER_LIST,
	ST_KEYVER_STATE,
	ST_KEYVER_RETIRE,
	ST_KEYVER_DESTROY,
	ST_KEYVER_LIVE,
	ST_KEYVER_IN_USE,
	ST_BUCKET_KEY_IDS,
	ST_GEN_BUMP,
	ST_GEN_GET,
	ST_BK_INSERT,
	ST_BK_GET,
	ST_BK_CURRENT,
	ST_BK_OF_KEY,
	ST_BK_RETIRED,
	ST_BK_RETIRE,
	ST_BK_STALE,
	ST_BK_BUCKET,
	ST_BK_IN_USE,
	ST_BK_DELETE,
	ST_BK_DELETE_KEY,
	ST_PARTS_UNKEY,
	ST_UPARTS_UNKEY,
	ST_REWRAP_PARTS,
	ST_REWRAP_UPARTS,
	ST_REWRAP_PART,
	ST_REWRAP_UPART,
	/* v4: tenant and access-key lifecycle */
	ST_TENANT_LIST,
	ST_TENANT_SET_STATE,
	ST_TENANT_HAS_BUCKETS,
	ST_TENANT_LIVE_KEYS,
	ST_TENANT_AKS_DELETE,
	ST_TENANT_KEYVERS_DELETE,
	ST_TENANT_KEYS_DELETE,
	ST_TENANT_DELETE,
	ST_AK_LIST,
	ST_AK_REVOKE,
	/* v5: metadata seals */
	ST_BUCKET_GET_ID,
	ST_SEAL_PENDING_BUCKETS,
	ST_SEAL_PENDING_BUCKETS_AFTER,
	ST_SEAL_OBJECTS,
	ST_SEAL_UPLOADS,
	ST_SEAL_UPARTS,
	ST_SEAL_OBJECT,
	ST_SEAL_OBJECT_PARTS,
	ST_SEAL_UPLOAD,
	ST_SEAL_UPART,
	ST_COUNT_
};

/* A whole object row, as object_row() reads it. */
#define OBJ_COLS                                                            \
	"SELECT key, version_uid, size, etag, mtime_ms, content_type, "       \
	"content_encoding, content_language, content_disposition, "         \
	"cache_control, expires, user_meta_json, tags_json, part_count, "   \
	"sse, kms_key_id, ssec_hmac, seal, seal_bk_id, parts_digest "       \
	"FROM objects "
#define LIST_TAIL " ORDER BY key LIMIT ?4"
#define UPLOAD_COLS                                                         \
	"SELECT id, bucket_id, key, version_uid, created_ms, content_type, "  \
	"content_encoding, content_language, content_disposition, "         \
	"cache_control, expires, user_meta_json, tags_json, sse, "          \
	"kms_key_id, ssec_hmac, seal, seal_bk_id FROM uploads "
/* An upload part row, as part_row() reads it (then the upload's uid). */
#define UPART_COLS                                                          \
	"SELECT part_no, blob_id, size, seg_size, dek_wrapped, etag, "        \
	"mtime_ms, bk_id, seal, seal_bk_id, version_uid FROM upload_parts "
#define BUCKET_COLS                                                         \
	"SELECT id, tenant_id, name, region, created_ms, key_id, "            \
	"default_sse, default_kms_key_id FROM buckets "
#define KEY_COLS                                                            \
	"SELECT id, tenant_id, name, kind, state, current_version, provider, " \
	"imported, created_ms, changed_ms FROM keys "
/* A bucket key with its bucket's tenant, its KEK id and both states. */
#define BK_COLS                                                             \
	"SELECT bk.id, bk.bucket_id, bk.key_id, bk.key_version, bk.wrapped, "  \
	"bk.current, bk.created_ms, bk.retired_ms, b.tenant_id, kv.kek_id, "  \
	"k.state, kv.state FROM bucket_keys bk "                              \
	"JOIN buckets b ON b.id = bk.bucket_id "                              \
	"JOIN keys k ON k.id = bk.key_id "                                    \
	"JOIN key_versions kv ON kv.key_id = bk.key_id AND "                  \
	"kv.version = bk.key_version "
#define ULIST_TAIL " ORDER BY key, id LIMIT ?5"

static const char *const sql_text[ST_COUNT_] = {
	[ST_BEGIN] = "BEGIN",
	[ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SETTING_GET] = "SELECT value FROM settings WHERE name = ?1",
	[ST_SETTING_INSERT] =
		"INSERT INTO settings (name, value) VALUES (?1, ?2)",
	[ST_SETTING_DELETE] = "DELETE FROM settings WHERE name = ?1",
	[ST_TENANT_INSERT] =
		"INSERT INTO tenants (name, created_ms) VALUES (?1, ?2)",
	[ST_TENANT_GET] =
		"SELECT id, name, created_ms, state FROM tenants WHERE id = ?1",
	[ST_TENANT_GET_BY_NAME] =
		"SELECT id, name, created_ms, state FROM tenants WHERE name = ?1",
	[ST_TENANT_EXISTS] = "SELECT 1 FROM tenants WHERE id = ?1",
	[ST_AK_INSERT] =
		"INSERT INTO access_keys (id, tenant_id, secret_sealed, "
		"created_ms, active) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_AK_GET] =
		"SELECT id, tenant_id, secret_sealed, created_ms, active "
		"FROM access_keys WHERE id = ?1",
	[ST_BUCKET_INSERT] =
		"INSERT INTO buckets (id, tenant_id, name, region, created_ms, "
		"key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_BUCKET_RETIRED] = "SELECT 1 FROM retired_buckets WHERE id = ?1",
	[ST_BUCKET_GET] = BUCKET_COLS "WHERE name = ?1",
	[ST_BUCKET_LIST] = BUCKET_COLS "WHERE tenant_id = ?1 ORDER BY name",
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
		"tags_json, part_count, sse, kms_key_id, ssec_hmac, seal, "
		"seal_bk_id, parts_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		"?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
		"?21)",
	[ST_OBJ_GET] = OBJ_COLS "WHERE bucket_id = ?1 AND key = ?2",
	[ST_PARTS_BLOBS] = "SELECT blob_id FROM parts WHERE version_uid = ?1",
	[ST_PARTS_DELETE] = "DELETE FROM parts WHERE version_uid = ?1",
	[ST_PART_INSERT] =
		"INSERT INTO parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms, bk_id) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_PARTS_GET] =
		"SELECT part_no, blob_id, size, seg_size, dek_wrapped, etag, "
		"mtime_ms, bk_id FROM parts WHERE version_uid = ?1 "
		"ORDER BY part_no",
	/* ?7: the seal the caller read (compare and swap). */
	[ST_OBJ_SET_TAGS] =
		"UPDATE objects SET tags_json = ?4, seal = ?5, seal_bk_id = ?6 "
		"WHERE bucket_id = ?1 AND key = ?2 AND version_uid = ?3 AND "
		"seal IS ?7",
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
	[ST_LIST] = OBJ_COLS "WHERE bucket_id = ?1" LIST_TAIL,
	[ST_LIST_LT] = OBJ_COLS "WHERE bucket_id = ?1 AND key < ?3" LIST_TAIL,
	[ST_LIST_GE] = OBJ_COLS "WHERE bucket_id = ?1 AND key >= ?2" LIST_TAIL,
	[ST_LIST_GE_LT] = OBJ_COLS
		"WHERE bucket_id = ?1 AND key >= ?2 AND key < ?3" LIST_TAIL,
	[ST_LIST_GT] = OBJ_COLS "WHERE bucket_id = ?1 AND key > ?2" LIST_TAIL,
	[ST_LIST_GT_LT] = OBJ_COLS
		"WHERE bucket_id = ?1 AND key > ?2 AND key < ?3" LIST_TAIL,
	[ST_UPLOAD_INSERT] =
		"INSERT INTO uploads (id, bucket_id, key, version_uid, "
		"created_ms, content_type, content_encoding, content_language, "
		"content_disposition, cache_control, expires, user_meta_json, "
		"tags_json, sse, kms_key_id, ssec_hmac, seal, seal_bk_id) VALUES "
		"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
		"?15, ?16, ?17, ?18)",
	[ST_UPLOAD_UID_EXISTS] = "SELECT 1 FROM uploads WHERE version_uid = ?1",
	[ST_UPLOAD_FIND] =
		"SELECT bucket_id, key, version_uid, sse, kms_key_id, ssec_hmac "
		"FROM uploads WHERE id = ?1",
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
		"seg_size, dek_wrapped, etag, mtime_ms, bk_id, seal, seal_bk_id) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_UPART_LIST] = UPART_COLS
		"WHERE version_uid = ?1 AND part_no > ?2 ORDER BY part_no "
		"LIMIT ?3",
	/* Completion: one chosen part, copied only if it is the caller's
	 * (a sealed part by its seal ?7, an unsealed one by its etag ?5)
	 * and still has a bucket key (?6: or needs none, SSE-C).  The stored
	 * bk_id and dek_wrapped are copied: they may have been re-wrapped
	 * since the caller listed the parts.  ?8: the object is sealed, and
	 * its parts keep no ETag. */
	[ST_UPART_MOVE] =
		"INSERT INTO parts (version_uid, part_no, blob_id, size, "
		"seg_size, dek_wrapped, etag, mtime_ms, bk_id) SELECT "
		"version_uid, part_no, blob_id, size, seg_size, dek_wrapped, "
		"CASE WHEN ?8 THEN '' ELSE etag END, mtime_ms, bk_id "
		"FROM upload_parts WHERE version_uid = ?1 AND part_no = ?2 AND "
		"blob_id = ?3 AND size = ?4 AND CASE WHEN seal IS NULL THEN "
		"etag = ?5 ELSE seal = ?7 END AND (bk_id IS NOT NULL OR ?6)",
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
	[ST_BUCKET_TENANT] = "SELECT tenant_id FROM buckets WHERE id = ?1",
	[ST_BUCKET_SET_ENC] =
		"UPDATE buckets SET default_sse = ?2, default_kms_key_id = ?3 "
		"WHERE id = ?1",
	/* Purge: every blob goes to gc before its row goes, in the same
	 * transaction (blob ids are unique across both part tables, so none
	 * of them can still be in use elsewhere). */
	[ST_BUCKET_PARTS_GC] =
		"INSERT OR IGNORE INTO gc (blob_id) SELECT p.blob_id "
		"FROM objects o JOIN parts p ON p.version_uid = o.version_uid "
		"WHERE o.bucket_id = ?1",
	[ST_BUCKET_PARTS_DELETE] =
		"DELETE FROM parts WHERE version_uid IN "
		"(SELECT version_uid FROM objects WHERE bucket_id = ?1)",
	[ST_BUCKET_OBJECTS_DELETE] = "DELETE FROM objects WHERE bucket_id = ?1",
	[ST_BUCKET_BKS_DELETE] = "DELETE FROM bucket_keys WHERE bucket_id = ?1",
	[ST_BUCKET_BLOBS] =
		"SELECT p.blob_id, p.size FROM objects o JOIN parts p "
		"ON p.version_uid = o.version_uid WHERE o.bucket_id = ?1 "
		"UNION ALL SELECT p.blob_id, p.size FROM uploads u "
		"JOIN upload_parts p ON p.version_uid = u.version_uid "
		"WHERE u.bucket_id = ?1",
	[ST_KEY_INSERT] =
		"INSERT INTO keys (tenant_id, name, kind, state, "
		"current_version, provider, imported, created_ms, changed_ms) "
		"VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8)",
	[ST_KEY_GET] = KEY_COLS "WHERE id = ?1",
	/* "state != 3" verbatim, so the partial unique index serves it. */
	[ST_KEY_GET_BY_NAME] =
		KEY_COLS "WHERE tenant_id = ?1 AND name = ?2 AND state != 3",
	[ST_KEY_LIST] = KEY_COLS "WHERE tenant_id = ?1 ORDER BY name, id",
	[ST_KEY_LIST_ALL] = KEY_COLS "ORDER BY name, tenant_id, id",
	[ST_KEY_SET_STATE] =
		"UPDATE keys SET state = ?2, changed_ms = ?3 WHERE id = ?1",
	[ST_KEY_SET_VERSION] =
		"UPDATE keys SET current_version = ?2, changed_ms = ?3 "
		"WHERE id = ?1",
	[ST_KEYVER_INSERT] =
		"INSERT INTO key_versions (key_id, version, kek_id, state, "
		"created_ms, destroyed_ms) VALUES (?1, ?2, ?3, 1, ?4, 0)",
	[ST_KEYVER_LIST] =
		"SELECT key_id, version, kek_id, state, created_ms, "
		"destroyed_ms FROM key_versions WHERE key_id = ?1 "
		"ORDER BY version",
	[ST_KEYVER_STATE] =
		"SELECT state FROM key_versions WHERE key_id = ?1 AND "
		"version = ?2",
	[ST_KEYVER_RETIRE] =
		"UPDATE key_versions SET state = 2 WHERE key_id = ?1 AND "
		"state = 1",
	[ST_KEYVER_DESTROY] =
		"UPDATE key_versions SET state = 3, destroyed_ms = ?3 "
		"WHERE key_id = ?1 AND version = ?2 AND state != 3",
	[ST_KEYVER_LIVE] =
		"SELECT 1 FROM key_versions WHERE key_id = ?1 AND state != 3 "
		"LIMIT 1",
	/* Whether the version exists, and whether a bucket key uses it or it
	 * is the current version of a live key (which new bucket keys will
	 * use, so it is never "unused"). */
	[ST_BUCKET_KEY_IDS] =
		"SELECT DISTINCT key_id FROM bucket_keys WHERE bucket_id = ?1 "
		"ORDER BY key_id",
	[ST_KEYVER_IN_USE] =
		"SELECT EXISTS (SELECT 1 FROM key_versions WHERE key_id = ?1 "
		"AND version = ?2), EXISTS (SELECT 1 FROM bucket_keys WHERE "
		"key_id = ?1 AND key_version = ?2) OR EXISTS (SELECT 1 FROM "
		"keys WHERE id = ?1 AND current_version = ?2 AND state != 3)",
	[ST_GEN_BUMP] = "UPDATE key_generation SET gen = gen + 1",
	[ST_GEN_GET] = "SELECT gen FROM key_generation",
	[ST_BK_INSERT] =
		"INSERT INTO bucket_keys (bucket_id, key_id, key_version, "
		"wrapped, current, created_ms, retired_ms) "
		"VALUES (?1, ?2, ?3, ?4, 1, ?5, 0)",
	[ST_BK_GET] = BK_COLS "WHERE bk.id = ?1",
	[ST_BK_CURRENT] = BK_COLS
		"WHERE bk.bucket_id = ?1 AND bk.key_id = ?2 AND bk.current = 1",
	[ST_BK_OF_KEY] = BK_COLS
		"WHERE bk.key_id = ?1 AND bk.current = 1 ORDER BY bk.id",
	[ST_BK_RETIRED] = BK_COLS
		"WHERE bk.current = 0 ORDER BY bk.retired_ms, bk.id LIMIT ?1",
	/* Rotation: retire the pair's current bucket key unless it is
	 * already the new version's (a bucket named twice). */
	[ST_BK_RETIRE] =
		"UPDATE bucket_keys SET current = 0, retired_ms = ?4 "
		"WHERE bucket_id = ?1 AND key_id = ?2 AND current = 1 AND "
		"key_version != ?3",
	[ST_BK_STALE] =
		"SELECT count(*) FROM bucket_keys WHERE key_id = ?1 AND "
		"current = 1 AND key_version != ?2",
	[ST_BK_BUCKET] =
		"SELECT bucket_id, current FROM bucket_keys WHERE id = ?1",
	[ST_BK_IN_USE] =
		"SELECT EXISTS (SELECT 1 FROM parts WHERE bk_id = ?1) "
		"OR EXISTS (SELECT 1 FROM upload_parts WHERE bk_id = ?1) "
		"OR EXISTS (SELECT 1 FROM objects WHERE seal_bk_id = ?1) "
		"OR EXISTS (SELECT 1 FROM uploads WHERE seal_bk_id = ?1) "
		"OR EXISTS (SELECT 1 FROM upload_parts WHERE seal_bk_id = ?1)",
	[ST_BK_DELETE] = "DELETE FROM bucket_keys WHERE id = ?1",
	[ST_BK_DELETE_KEY] = "DELETE FROM bucket_keys WHERE key_id = ?1",
	[ST_PARTS_UNKEY] =
		"UPDATE parts SET bk_id = NULL WHERE bk_id IN "
		"(SELECT id FROM bucket_keys WHERE key_id = ?1)",
	[ST_UPARTS_UNKEY] =
		"UPDATE upload_parts SET bk_id = NULL WHERE bk_id IN "
		"(SELECT id FROM bucket_keys WHERE key_id = ?1)",
	[ST_REWRAP_PARTS] =
		"SELECT version_uid, part_no, dek_wrapped FROM parts "
		"WHERE bk_id = ?1 LIMIT ?2",
	[ST_REWRAP_UPARTS] =
		"SELECT version_uid, part_no, dek_wrapped FROM upload_parts "
		"WHERE bk_id = ?1 LIMIT ?2",
	[ST_REWRAP_PART] =
		"UPDATE parts SET dek_wrapped = ?3, bk_id = ?5 "
		"WHERE version_uid = ?1 AND part_no = ?2 AND bk_id = ?4",
	[ST_REWRAP_UPART] =
		"UPDATE upload_parts SET dek_wrapped = ?3, bk_id = ?5 "
		"WHERE version_uid = ?1 AND part_no = ?2 AND bk_id = ?4",
	[ST_TENANT_LIST] =
		"SELECT id, name, created_ms, state FROM tenants ORDER BY name",
	[ST_TENANT_SET_STATE] = "UPDATE tenants SET state = ?2 WHERE id = ?1",
	[ST_TENANT_HAS_BUCKETS] =
		"SELECT 1 FROM buckets WHERE tenant_id = ?1 LIMIT 1",
	[ST_TENANT_LIVE_KEYS] =
		"SELECT 1 FROM keys WHERE tenant_id = ?1 AND state != 3 LIMIT 1",
	[ST_TENANT_AKS_DELETE] = "DELETE FROM access_keys WHERE tenant_id = ?1",
	[ST_TENANT_KEYVERS_DELETE] =
		"DELETE FROM key_versions WHERE key_id IN "
		"(SELECT id FROM keys WHERE tenant_id = ?1)",
	[ST_TENANT_KEYS_DELETE] = "DELETE FROM keys WHERE tenant_id = ?1",
	[ST_TENANT_DELETE] = "DELETE FROM tenants WHERE id = ?1",
	[ST_AK_LIST] =
		"SELECT id, tenant_id, secret_sealed, created_ms, active "
		"FROM access_keys WHERE tenant_id = ?1 ORDER BY created_ms, id",
	[ST_AK_REVOKE] = "UPDATE access_keys SET active = 0 WHERE id = ?1",
	[ST_BUCKET_GET_ID] = BUCKET_COLS "WHERE id = ?1",
	/* Rows never sealed have a NULL seal_bk_id (the index's first
	 * column). */
	[ST_SEAL_PENDING_BUCKETS] =
		"SELECT bucket_id FROM objects WHERE seal_bk_id IS NULL UNION "
		"SELECT bucket_id FROM uploads WHERE seal_bk_id IS NULL UNION "
		"SELECT u.bucket_id FROM upload_parts p JOIN uploads u ON "
		"u.version_uid = p.version_uid WHERE p.seal_bk_id IS NULL "
		"ORDER BY 1 LIMIT ?1",
	/* The same after bucket ?2 (in the signed order of the column). */
	[ST_SEAL_PENDING_BUCKETS_AFTER] =
		"SELECT bucket_id FROM objects WHERE seal_bk_id IS NULL AND "
		"bucket_id > ?2 UNION SELECT bucket_id FROM uploads WHERE "
		"seal_bk_id IS NULL AND bucket_id > ?2 UNION SELECT u.bucket_id "
		"FROM upload_parts p JOIN uploads u ON u.version_uid = "
		"p.version_uid WHERE p.seal_bk_id IS NULL AND u.bucket_id > ?2 "
		"ORDER BY 1 LIMIT ?1",
	/* ?1: the sealing bucket key, NULL for rows never sealed. */
	[ST_SEAL_OBJECTS] = OBJ_COLS
		"WHERE seal_bk_id IS ?1 AND bucket_id = ?2 LIMIT ?3",
	[ST_SEAL_UPLOADS] = UPLOAD_COLS
		"WHERE seal_bk_id IS ?1 AND bucket_id = ?2 LIMIT ?3",
	[ST_SEAL_UPARTS] =
		"SELECT p.part_no, p.blob_id, p.size, p.seg_size, p.dek_wrapped, "
		"p.etag, p.mtime_ms, p.bk_id, p.seal, p.seal_bk_id, "
		"p.version_uid FROM upload_parts p JOIN uploads u ON "
		"u.version_uid = p.version_uid WHERE p.seal_bk_id IS ?1 AND "
		"u.bucket_id = ?2 LIMIT ?3",
	/* Re-sealing swaps a seal only for the very one read (?5, ?6). */
	[ST_SEAL_OBJECT] =
		"UPDATE objects SET seal = ?2, seal_bk_id = ?3, "
		"parts_digest = ?4, etag = '' "
		"WHERE version_uid = ?1 AND seal_bk_id IS ?5 AND seal IS ?6",
	[ST_SEAL_OBJECT_PARTS] =
		"UPDATE parts SET etag = '' WHERE version_uid = ?1",
	[ST_SEAL_UPLOAD] =
		"UPDATE uploads SET seal = ?2, seal_bk_id = ?3 "
		"WHERE version_uid = ?1 AND seal_bk_id IS ?4 AND seal IS ?5",
	[ST_SEAL_UPART] =
		"UPDATE upload_parts SET seal = ?3, seal_bk_id = ?4, etag = '' "
		"WHERE version_uid = ?1 AND part_no = ?2 AND seal_bk_id IS ?5 "
		"AND seal IS ?6",
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

static enum kura_err setting_delete_body(struct conn *c, void *arg,
					 struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_SETTING_DELETE, &s, err);

	if (r != KURA_OK)
		return r;
	if (bind_text(s, 1, arg) != SQLITE_OK) {
		stmt_done(s);
		return kura_fail(err, KURA_ENOMEM, "bind setting name");
	}
	return stmt_run(c, s, "delete setting", err);
}

static enum kura_err sqlite_setting_delete(void *priv, const char *name,
					   struct kura_error *err)
{
	if (name == NULL || strnlen(name, SETTING_NAME_MAX) >= SETTING_NAME_MAX)
		return kura_fail(err, KURA_EINVAL, "bad setting name");
	return write_tx(priv, setting_delete_body, (void *)name, err);
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

/* id, name, created_ms, state */
static enum kura_err tenant_row(sqlite3_stmt *s, void *out,
				struct kura_error *err)
{
	struct kura_tenant *t = out;
	memset(t, 0, sizeof(*t));
	t->id = i2u(sqlite3_column_int64(s, 0));
	enum kura_err r = col_text(s, 1, t->name, sizeof(t->name), "tenant name", err);
	t->created_ms = sqlite3_column_int64(s, 2);
	t->state = sqlite3_column_int(s, 3) == 1 ? KURA_TENANT_SUSPENDED
						 : KURA_TENANT_ACTIVE;
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
	r = tenant_row(s, &t, err);
	if (r != KURA_OK)
		goto out;
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

/* id, tenant_id, secret_sealed, created_ms, active */
static enum kura_err access_key_row(sqlite3_stmt *s, void *out,
				    struct kura_error *err)
{
	struct kura_access_key *k = out;
	memset(k, 0, sizeof(*k));
	enum kura_err r = col_text(s, 0, k->id, sizeof(k->id), "access key id", err);
	if (r != KURA_OK)
		return r;
	k->tenant_id = i2u(sqlite3_column_int64(s, 1));
	r = col_blob(s, 2, k->secret_sealed, sizeof(k->secret_sealed),
		     &k->secret_sealed_len, "sealed secret", err);
	k->created_ms = sqlite3_column_int64(s, 3);
	k->active = sqlite3_column_int(s, 4) != 0;
	return r;
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
	r = access_key_row(s, &k, err);
	if (r != KURA_OK)
		goto out;
	*out = k;
out:
	stmt_done(s);
	conn_release(m, c);
	/* The sealed secret is ciphertext, but no copy need linger. */
	memset(&k, 0, sizeof(k));
	return r;
}

/* ---- helpers for keys and bucket keys ---- */

/* 0 means "none" for optional references: stored as NULL, so the foreign
 * key holds. */
static int bind_opt_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	return v == 0 ? sqlite3_bind_null(s, i) : bind_u64(s, i, v);
}

static uint64_t col_opt_u64(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return 0;
	return i2u(sqlite3_column_int64(s, i));
}

/* Run a statement whose only parameter ?1 is a 64-bit id. */
static enum kura_err run_u64(struct conn *c, enum st id, uint64_t v,
			     const char *what, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, id, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, v);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, what);
	return KURA_OK;
}

/* Every change to keys, key versions or bucket keys calls this inside its
 * transaction. */
static enum kura_err gen_bump(struct conn *c, struct kura_error *err)
{
	enum kura_err r = run_id(c, ST_GEN_BUMP, "bump key generation", err);

	if (r == KURA_OK && sqlite3_changes(c->db) != 1)
		r = kura_fail(err, KURA_EIO, "sqlite: key generation missing");
	return r;
}

/* Step a bound statement into a pool array of at most limit rows of elem
 * bytes, each filled by row(). */
static enum kura_err collect_rows(struct conn *c, sqlite3_stmt *s,
				  size_t elem, size_t limit,
				  enum kura_err (*row)(sqlite3_stmt *, void *,
						       struct kura_error *),
				  struct kura_pool *pool, void **out,
				  size_t *count, const char *what,
				  struct kura_error *err)
{
	unsigned char *tmp = NULL;
	void *res = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r = KURA_OK;
	int rc = SQLITE_OK;

	while (n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap == 0 ? 8 : cap * 2;
			void *p = realloc(tmp, ncap * elem);
			if (p == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			tmp = p;
			cap = ncap;
		}
		r = row(s, tmp + n * elem, err);
		if (r != KURA_OK)
			goto out;
		n++;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, what);
		goto out;
	}
	if (n > 0) {
		res = kura_pmemdup(pool, tmp, n * elem);
		if (res == NULL) {
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = res;
	*count = n;
out:
	if (tmp != NULL)
		memset(tmp, 0, cap * elem);	/* wrapped keys: no copies */
	free(tmp);
	return r;
}

/* One row of KEY_COLS. */
static enum kura_err key_row(sqlite3_stmt *s, void *out,
			     struct kura_error *err)
{
	struct kura_key *k = out;
	int64_t v;
	enum kura_err r;

	memset(k, 0, sizeof(*k));
	k->id = i2u(sqlite3_column_int64(s, 0));
	k->tenant_id = i2u(sqlite3_column_int64(s, 1));
	r = col_text(s, 2, k->name, sizeof(k->name), "key name", err);
	if (r != KURA_OK)
		return r;
	k->kind = (enum kura_key_kind)sqlite3_column_int(s, 3);
	k->state = (enum kura_key_state)sqlite3_column_int(s, 4);
	v = sqlite3_column_int64(s, 5);
	if (v < 1 || v > UINT32_MAX)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt key version");
	k->current_version = (uint32_t)v;
	r = col_text(s, 6, k->provider, sizeof(k->provider), "key provider",
		     err);
	k->imported = sqlite3_column_int(s, 7) != 0;
	k->created_ms = sqlite3_column_int64(s, 8);
	k->changed_ms = sqlite3_column_int64(s, 9);
	return r;
}

/* One row of ST_KEYVER_LIST. */
static enum kura_err key_version_row(sqlite3_stmt *s, void *out,
				     struct kura_error *err)
{
	struct kura_key_version *v = out;
	int64_t n;

	memset(v, 0, sizeof(*v));
	v->key_id = i2u(sqlite3_column_int64(s, 0));
	n = sqlite3_column_int64(s, 1);
	if (n < 1 || n > UINT32_MAX)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt key version");
	v->version = (uint32_t)n;
	v->state = (enum kura_key_version_state)sqlite3_column_int(s, 3);
	v->created_ms = sqlite3_column_int64(s, 4);
	v->destroyed_ms = sqlite3_column_int64(s, 5);
	return col_text(s, 2, v->kek_id, sizeof(v->kek_id), "kek id", err);
}

/* One row of BK_COLS. */
static enum kura_err bk_row(sqlite3_stmt *s, void *out,
			    struct kura_error *err)
{
	struct kura_bucket_key *bk = out;
	int64_t v;
	enum kura_err r;

	memset(bk, 0, sizeof(*bk));
	bk->id = i2u(sqlite3_column_int64(s, 0));
	bk->bucket_id = i2u(sqlite3_column_int64(s, 1));
	bk->key_id = i2u(sqlite3_column_int64(s, 2));
	v = sqlite3_column_int64(s, 3);
	if (v < 1 || v > UINT32_MAX)
		return kura_fail(err, KURA_EIO,
				 "sqlite: corrupt bucket key version");
	bk->key_version = (uint32_t)v;
	r = col_blob(s, 4, bk->wrapped, sizeof(bk->wrapped), &bk->wrapped_len,
		     "wrapped bucket key", err);
	if (r != KURA_OK)
		return r;
	bk->current = sqlite3_column_int(s, 5) != 0;
	bk->created_ms = sqlite3_column_int64(s, 6);
	bk->retired_ms = sqlite3_column_int64(s, 7);
	bk->tenant_id = i2u(sqlite3_column_int64(s, 8));
	bk->key_state = (enum kura_key_state)sqlite3_column_int(s, 10);
	bk->version_state =
		(enum kura_key_version_state)sqlite3_column_int(s, 11);
	return col_text(s, 9, bk->kek_id, sizeof(bk->kek_id), "kek id", err);
}

/* Key key_id inside a transaction; KURA_ENOENT when there is none. */
static enum kura_err key_fetch(struct conn *c, uint64_t key_id,
			       struct kura_key *out, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_KEY_GET, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		r = kura_fail(err, KURA_ENOENT, "no key %llu",
			      (unsigned long long)key_id);
	else if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, "get key");
	else
		r = key_row(s, out, err);
	stmt_done(s);
	return r;
}

/* The tenant of bucket_id inside a transaction; KURA_ENOENT. */
static enum kura_err bucket_tenant(struct conn *c, uint64_t bucket_id,
				   uint64_t *tenant_id, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_BUCKET_TENANT, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		r = kura_fail(err, KURA_ENOENT, "no bucket %016llx",
			      (unsigned long long)bucket_id);
	else if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, "get bucket");
	else
		*tenant_id = i2u(sqlite3_column_int64(s, 0));
	stmt_done(s);
	return r;
}

/* A new key record as key_create and bucket_create take it. */
static enum kura_err check_new_key(const struct kura_key *k,
				   const char *kek_id, struct kura_error *err)
{
	if (k == NULL || !str_ok(k->name, sizeof(k->name), false) ||
	    !str_ok(k->provider, sizeof(k->provider), false))
		return kura_fail(err, KURA_EINVAL, "bad key record");
	if (k->kind < KURA_KEY_BUCKET || k->kind > KURA_KEY_NAMED ||
	    (k->state != KURA_KEY_ENABLED && k->state != KURA_KEY_DISABLED) ||
	    k->current_version != 1)
		return kura_fail(err, KURA_EINVAL,
				 "bad key record '%s' (kind %d, state %d, "
				 "version %u)",
				 k->name, (int)k->kind, (int)k->state,
				 k->current_version);
	if (kek_id == NULL || !str_ok(kek_id, KURA_KEK_ID_MAX, false))
		return kura_fail(err, KURA_EINVAL, "bad kek id for key '%s'",
				 k->name);
	return KURA_OK;
}

/* A bucket key's wrapped bytes. */
static enum kura_err check_new_bk(const struct kura_bucket_key *bk,
				  struct kura_error *err)
{
	if (bk == NULL || bk->wrapped_len == 0 ||
	    bk->wrapped_len > sizeof(bk->wrapped))
		return kura_fail(err, KURA_EINVAL, "bad bucket key record");
	return KURA_OK;
}

/* Insert key k (already checked) and its version 1; *id receives the new
 * key's id.  created/changed are the times to store. */
static enum kura_err key_insert(struct conn *c, const struct kura_key *k,
				const char *kek_id, int64_t created,
				int64_t changed, uint64_t *id,
				struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	bool found = false;
	uint64_t kid;
	enum kura_err r;
	int rc;

	r = exists(c, ST_TENANT_EXISTS, k->tenant_id, &found, err);
	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no tenant %llu",
				 (unsigned long long)k->tenant_id);
	r = stmt_get(c, ST_KEY_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, k->tenant_id);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 2, k->name);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 3, (int)k->kind);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 4, (int)k->state);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 5, k->provider);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 6, k->imported ? 1 : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 7, created);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, changed);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "key '%s' exists", k->name);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "insert key");
	kid = i2u(sqlite3_last_insert_rowid(c->db));

	r = stmt_get(c, ST_KEYVER_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, kid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, 1);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 3, kek_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, created);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "insert key version");
	*id = kid;
	return KURA_OK;
}

/* Insert a current bucket key of (bucket_id, key_id); *id receives its
 * id.  KURA_EEXIST when the pair has one already. */
static enum kura_err bk_insert(struct conn *c, uint64_t bucket_id,
			       uint64_t key_id, uint32_t version,
			       const uint8_t *wrapped, size_t wrapped_len,
			       int64_t created, uint64_t *id,
			       struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_BK_INSERT, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 2, key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, version);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 4, wrapped, wrapped_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, created);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST,
				 "bucket %016llx already has a current bucket "
				 "key of key %llu",
				 (unsigned long long)bucket_id,
				 (unsigned long long)key_id);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "insert bucket key");
	*id = i2u(sqlite3_last_insert_rowid(c->db));
	return KURA_OK;
}

/* ---- buckets ---- */

struct bucket_create_arg {
	const struct kura_bucket *b;
	const struct kura_key *new_key;		/* NULL: b->key_id exists */
	const char *new_kek_id;
	const struct kura_bucket_key *bk;
	int64_t key_created, key_changed, bk_created;
	uint64_t key_id, bk_id;			/* results */
};

static enum kura_err bucket_create_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	struct bucket_create_arg *a = arg;
	const struct kura_bucket *b = a->b;
	sqlite3_stmt *s = NULL;
	bool found = false;
	uint64_t key_id = b->key_id;
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
	if (a->new_key != NULL) {
		r = key_insert(c, a->new_key, a->new_kek_id, a->key_created,
			       a->key_changed, &key_id, err);
		if (r != KURA_OK)
			return r;
		if (a->bk->key_version != 1)
			return kura_fail(err, KURA_ESTATE,
					 "bucket key of version %u for a new "
					 "key",
					 a->bk->key_version);
	} else {
		struct kura_key k;
		r = key_fetch(c, key_id, &k, err);
		if (r != KURA_OK)
			return r;
		if (k.tenant_id != b->tenant_id)
			return kura_fail(err, KURA_EPERM,
					 "key %llu belongs to another tenant",
					 (unsigned long long)key_id);
		if (k.state != KURA_KEY_ENABLED)
			return kura_fail(err, KURA_ESTATE,
					 "key '%s' is not enabled", k.name);
		if (a->bk->key_version != k.current_version)
			return kura_fail(err, KURA_ESTATE,
					 "bucket key wrapped by version %u of "
					 "key '%s', current is %u",
					 a->bk->key_version, k.name,
					 k.current_version);
	}

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
		rc = bind_u64(s, 6, key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (map_rc(rc) == KURA_EEXIST)
		return kura_fail(err, KURA_EEXIST, "bucket '%s' exists",
				 b->name);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "insert bucket");
	r = bk_insert(c, b->id, key_id, a->bk->key_version, a->bk->wrapped,
		      a->bk->wrapped_len, a->bk_created, &a->bk_id, err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	if (r == KURA_OK)
		a->key_id = key_id;
	return r;
}

static enum kura_err sqlite_bucket_create(void *priv, struct kura_bucket *b,
					  struct kura_key *new_key,
					  const char *new_kek_id,
					  struct kura_bucket_key *bk,
					  struct kura_error *err)
{
	struct bucket_create_arg a = { b, NULL, new_kek_id, bk, 0, 0, 0, 0,
				       0 };
	struct kura_key nk;
	int64_t now = kura_now_ms();
	enum kura_err r;

	if (b == NULL || !str_ok(b->name, sizeof(b->name), false) ||
	    !str_ok(b->region, sizeof(b->region), true))
		return kura_fail(err, KURA_EINVAL, "bad bucket record");
	r = check_new_bk(bk, err);
	if (r != KURA_OK)
		return r;
	if (new_key != NULL) {
		/* A new key without a tenant is the bucket's tenant's. */
		nk = *new_key;
		if (nk.tenant_id == 0)
			nk.tenant_id = b->tenant_id;
		r = check_new_key(&nk, new_kek_id, err);
		if (r != KURA_OK)
			return r;
		if (nk.tenant_id != b->tenant_id ||
		    nk.state != KURA_KEY_ENABLED)
			return kura_fail(err, KURA_EINVAL,
					 "bucket '%s': its new key must be an "
					 "enabled key of its tenant",
					 b->name);
		a.key_created = nk.created_ms != 0 ? nk.created_ms : now;
		a.key_changed = nk.changed_ms != 0 ? nk.changed_ms
						   : a.key_created;
		a.new_key = &nk;
	} else if (b->key_id == 0) {
		return kura_fail(err, KURA_EINVAL, "bucket '%s' has no key",
				 b->name);
	}
	a.bk_created = bk->created_ms != 0 ? bk->created_ms : now;
	r = write_tx(priv, bucket_create_body, &a, err);
	if (r != KURA_OK)
		return r;
	b->key_id = a.key_id;
	if (new_key != NULL) {
		new_key->id = a.key_id;
		new_key->tenant_id = b->tenant_id;
		new_key->created_ms = a.key_created;
		new_key->changed_ms = a.key_changed;
	}
	bk->id = a.bk_id;
	bk->bucket_id = b->id;
	bk->key_id = a.key_id;
	bk->current = true;
	bk->created_ms = a.bk_created;
	bk->retired_ms = 0;
	return KURA_OK;
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
	b->key_id = col_opt_u64(s, 5);
	b->default_sse = (enum kura_sse)sqlite3_column_int(s, 6);
	b->default_kms_key_id = col_opt_u64(s, 7);
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

/* Run the steps, each with ?1 = id, in order. */
static enum kura_err run_steps(struct conn *c, const enum st *steps,
			       size_t n, uint64_t id, const char *what,
			       struct kura_error *err)
{
	enum kura_err r = KURA_OK;

	for (size_t i = 0; r == KURA_OK && i < n; i++)
		r = run_u64(c, steps[i], id, what, err);
	return r;
}

static enum kura_err bucket_delete_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	/* Abort the uploads in progress (their parts' blobs to gc, parts
	 * before uploads before the bucket, as the foreign keys want), drop
	 * the bucket keys (no part can use them now), then drop and retire
	 * the bucket. */
	static const enum st steps[] = {
		ST_BUCKET_UPARTS_GC, ST_BUCKET_UPARTS_DELETE,
		ST_BUCKET_UPLOADS_DELETE, ST_BUCKET_BKS_DELETE,
		ST_BUCKET_DELETE, ST_BUCKET_RETIRE,
	};
	const uint64_t *id = arg;
	bool found = false;
	enum kura_err r;

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
	r = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]), *id,
		      "delete bucket", err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_bucket_delete(void *priv, uint64_t bucket_id,
					  struct kura_error *err)
{
	return write_tx(priv, bucket_delete_body, &bucket_id, err);
}

static enum kura_err bucket_purge_body(struct conn *c, void *arg,
				       struct kura_error *err)
{
	/* Blobs to gc before their rows go; children before parents. */
	static const enum st steps[] = {
		ST_BUCKET_PARTS_GC, ST_BUCKET_PARTS_DELETE,
		ST_BUCKET_OBJECTS_DELETE, ST_BUCKET_UPARTS_GC,
		ST_BUCKET_UPARTS_DELETE, ST_BUCKET_UPLOADS_DELETE,
		ST_BUCKET_BKS_DELETE, ST_BUCKET_DELETE, ST_BUCKET_RETIRE,
	};
	const uint64_t *id = arg;
	bool found = false;
	enum kura_err r;

	r = exists(c, ST_BUCKET_EXISTS, *id, &found, err);
	if (r != KURA_OK)
		return r;
	if (!found)
		return kura_fail(err, KURA_ENOENT, "no bucket %016llx",
				 (unsigned long long)*id);
	r = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]), *id,
		      "purge bucket", err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_bucket_purge(void *priv, uint64_t bucket_id,
					 struct kura_error *err)
{
	return write_tx(priv, bucket_purge_body, &bucket_id, err);
}

struct set_enc_arg {
	uint64_t bucket_id;
	enum kura_sse sse;
	uint64_t kms_key_id;
};

static enum kura_err set_enc_body(struct conn *c, void *arg,
				  struct kura_error *err)
{
	struct set_enc_arg *a = arg;
	sqlite3_stmt *s = NULL;
	uint64_t tenant_id = 0;
	enum kura_err r;
	int rc;

	r = bucket_tenant(c, a->bucket_id, &tenant_id, err);
	if (r != KURA_OK)
		return r;
	if (a->sse == KURA_SSE_KMS) {
		struct kura_key k;
		r = key_fetch(c, a->kms_key_id, &k, err);
		if (r != KURA_OK)
			return r;
		if (k.tenant_id != tenant_id)
			return kura_fail(err, KURA_EPERM,
					 "key %llu belongs to another tenant",
					 (unsigned long long)a->kms_key_id);
		if (k.state == KURA_KEY_DESTROYED)
			return kura_fail(err, KURA_ESTATE,
					 "key '%s' is destroyed", k.name);
	}
	r = stmt_get(c, ST_BUCKET_SET_ENC, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->bucket_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)a->sse);
	if (rc == SQLITE_OK)
		rc = bind_opt_u64(s, 3,
				  a->sse == KURA_SSE_KMS ? a->kms_key_id : 0);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "set bucket encryption");
	return KURA_OK;
}

static enum kura_err sqlite_bucket_set_encryption(void *priv,
						  uint64_t bucket_id,
						  enum kura_sse sse,
						  uint64_t kms_key_id,
						  struct kura_error *err)
{
	struct set_enc_arg a = { bucket_id, sse, kms_key_id };

	/* SSE-C cannot be a default: the client brings the key. */
	if (sse != KURA_SSE_S3 && sse != KURA_SSE_KMS)
		return kura_fail(err, KURA_EINVAL,
				 "bad default encryption %d", (int)sse);
	if (sse == KURA_SSE_KMS && kms_key_id == 0)
		return kura_fail(err, KURA_EINVAL,
				 "default SSE-KMS without a key");
	return write_tx(priv, set_enc_body, &a, err);
}

static enum kura_err sqlite_bucket_blobs(void *priv, uint64_t bucket_id,
					 enum kura_err (*fn)(void *ctx,
							     const uint8_t id[KURA_BLOB_ID_LEN],
							     uint64_t size),
					 void *ctx, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	uint64_t tenant_id = 0;
	enum kura_err r;
	int rc;

	if (fn == NULL)
		return kura_fail(err, KURA_EINVAL, "no blob callback");
	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	/* One read transaction: the inventory is one snapshot. */
	r = run_id(c, ST_BEGIN, "begin", err);
	if (r == KURA_OK)
		r = bucket_tenant(c, bucket_id, &tenant_id, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_BUCKET_BLOBS, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint8_t id[KURA_BLOB_ID_LEN];
		int64_t size = sqlite3_column_int64(s, 1);

		r = col_blob(s, 0, id, sizeof(id), NULL, "blob id", err);
		if (r == KURA_OK && size < 0)
			r = kura_fail(err, KURA_EIO, "sqlite: corrupt size");
		if (r == KURA_OK)
			r = fn(ctx, id, (uint64_t)size);
		if (r != KURA_OK)
			goto out;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "list bucket blobs");
		goto out;
	}
	stmt_done(s);
	s = NULL;
	r = run_id(c, ST_COMMIT, "end read", err);
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

/* ---- keys ---- */

struct key_create_arg {
	const struct kura_key *k;
	const char *kek_id;
	int64_t created, changed;
	uint64_t id;			/* result */
};

static enum kura_err key_create_body(struct conn *c, void *arg,
				     struct kura_error *err)
{
	struct key_create_arg *a = arg;
	enum kura_err r = key_insert(c, a->k, a->kek_id, a->created,
				     a->changed, &a->id, err);

	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_key_create(void *priv, struct kura_key *k,
				       const char *kek_id,
				       struct kura_error *err)
{
	struct key_create_arg a = { k, kek_id, 0, 0, 0 };
	enum kura_err r = check_new_key(k, kek_id, err);

	if (r != KURA_OK)
		return r;
	a.created = k->created_ms != 0 ? k->created_ms : kura_now_ms();
	a.changed = k->changed_ms != 0 ? k->changed_ms : a.created;
	r = write_tx(priv, key_create_body, &a, err);
	if (r != KURA_OK)
		return r;
	k->id = a.id;
	k->created_ms = a.created;
	k->changed_ms = a.changed;
	return KURA_OK;
}

/* Read one row of stmt id bound to (?1 = key, ?2 = name when not NULL)
 * with row(); what names the missing thing for KURA_ENOENT. */
static enum kura_err read_one(struct meta_sqlite *m, enum st id, uint64_t key,
			      const char *name,
			      enum kura_err (*row)(sqlite3_stmt *, void *,
						   struct kura_error *),
			      void *out, const char *what,
			      struct kura_error *err)
{
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, id, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, key);
	if (rc == SQLITE_OK && name != NULL)
		rc = bind_text(s, 2, name);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		r = name != NULL
			    ? kura_fail(err, KURA_ENOENT, "no %s '%s'", what,
					name)
			    : kura_fail(err, KURA_ENOENT, "no %s %llu", what,
					(unsigned long long)key);
	else if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, what);
	else
		r = row(s, out, err);
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err sqlite_key_get(void *priv, uint64_t key_id,
				    struct kura_key *out,
				    struct kura_error *err)
{
	struct kura_key k;
	enum kura_err r = read_one(priv, ST_KEY_GET, key_id, NULL, key_row, &k,
				   "key", err);

	if (r == KURA_OK)
		*out = k;
	return r;
}

static enum kura_err sqlite_key_get_by_name(void *priv, uint64_t tenant_id,
					    const char *name,
					    struct kura_key *out,
					    struct kura_error *err)
{
	struct kura_key k;
	enum kura_err r;

	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "key name missing");
	r = read_one(priv, ST_KEY_GET_BY_NAME, tenant_id, name, key_row, &k,
		     "key", err);
	if (r == KURA_OK)
		*out = k;
	return r;
}

/* A listing: stmt id with ?1 = key (when bind_key), up to limit rows. */
static enum kura_err read_list(struct meta_sqlite *m, enum st id,
			       bool bind_key, uint64_t key, size_t limit,
			       size_t elem,
			       enum kura_err (*row)(sqlite3_stmt *, void *,
						    struct kura_error *),
			       struct kura_pool *pool, void **out,
			       size_t *count, const char *what,
			       struct kura_error *err)
{
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc = SQLITE_OK;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, id, &s, err);
	if (r != KURA_OK)
		goto out;
	if (bind_key)
		rc = bind_u64(s, 1, key);
	if (rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, what);
		goto out;
	}
	r = collect_rows(c, s, elem, limit, row, pool, out, count, what, err);
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err sqlite_key_list(void *priv, uint64_t tenant_id,
				     struct kura_pool *pool,
				     struct kura_key **out, size_t *count,
				     struct kura_error *err)
{
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	r = read_list(priv, tenant_id != 0 ? ST_KEY_LIST : ST_KEY_LIST_ALL,
		      tenant_id != 0, tenant_id, SIZE_MAX, sizeof(**out),
		      key_row, pool, &res, &n, "list keys", err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

static enum kura_err sqlite_key_versions(void *priv, uint64_t key_id,
					 struct kura_pool *pool,
					 struct kura_key_version **out,
					 size_t *count, struct kura_error *err)
{
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	r = read_list(priv, ST_KEYVER_LIST, true, key_id, SIZE_MAX,
		      sizeof(**out), key_version_row, pool, &res, &n,
		      "list key versions", err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* Set key_id's state (and changed_ms) to state. */
static enum kura_err key_state_write(struct conn *c, uint64_t key_id,
				     enum kura_key_state state,
				     struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_KEY_SET_STATE, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)state);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, kura_now_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "set key state");
	return KURA_OK;
}

struct key_state_arg {
	uint64_t key_id;
	enum kura_key_state state;
};

static enum kura_err key_set_state_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	struct key_state_arg *a = arg;
	struct kura_key k;
	enum kura_err r = key_fetch(c, a->key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state == KURA_KEY_DESTROYED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is destroyed",
				 k.name);
	if (k.state == a->state)
		return KURA_OK;
	r = key_state_write(c, a->key_id, a->state, err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_key_set_state(void *priv, uint64_t key_id,
					  enum kura_key_state state,
					  struct kura_error *err)
{
	struct key_state_arg a = { key_id, state };

	/* Destruction has its own call (key_destroyed). */
	if (state != KURA_KEY_ENABLED && state != KURA_KEY_DISABLED)
		return kura_fail(err, KURA_EINVAL, "bad key state %d",
				 (int)state);
	return write_tx(priv, key_set_state_body, &a, err);
}

struct rotate_arg {
	uint64_t key_id;
	uint32_t expected;
	const char *kek_id;
	const struct kura_bucket_key *bks;
	size_t n;
	int64_t now;
	int64_t *created;		/* n: the creation times to store */
	uint64_t *ids;			/* n: results */
};

static enum kura_err key_rotate_body(struct conn *c, void *arg,
				     struct kura_error *err)
{
	struct rotate_arg *a = arg;
	sqlite3_stmt *s = NULL;
	struct kura_key k;
	uint32_t v;
	enum kura_err r;
	int rc;

	r = key_fetch(c, a->key_id, &k, err);
	if (r != KURA_OK)
		return r;
	if (k.state == KURA_KEY_DESTROYED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is destroyed",
				 k.name);
	if (k.current_version != a->expected)
		return kura_fail(err, KURA_ESTATE,
				 "key '%s' is at version %u, not %u", k.name,
				 k.current_version, a->expected);
	if (k.current_version == UINT32_MAX)
		return kura_fail(err, KURA_EINVAL, "key '%s': no more versions",
				 k.name);
	v = k.current_version + 1;

	/* The new version first: the new bucket keys reference it. */
	r = run_u64(c, ST_KEYVER_RETIRE, a->key_id, "retire key version",
		    err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_KEYVER_INSERT, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, v);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 3, a->kek_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 4, a->now);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "insert key version");
	r = stmt_get(c, ST_KEY_SET_VERSION, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, v);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, a->now);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "set key version");

	/* Each named bucket must have had a current bucket key of an older
	 * version (a bucket named twice finds the new one and fails). */
	for (size_t i = 0; i < a->n; i++) {
		const struct kura_bucket_key *bk = &a->bks[i];
		if (bk->key_id != a->key_id || bk->key_version != v)
			return kura_fail(err, KURA_EINVAL,
					 "bucket key %zu is for key %llu "
					 "version %u, not %llu version %u",
					 i, (unsigned long long)bk->key_id,
					 bk->key_version,
					 (unsigned long long)a->key_id, v);
		r = stmt_get(c, ST_BK_RETIRE, &s, err);
		if (r != KURA_OK)
			return r;
		rc = bind_u64(s, 1, bk->bucket_id);
		if (rc == SQLITE_OK)
			rc = bind_u64(s, 2, a->key_id);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 3, v);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 4, a->now);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			return sql_fail(err, c->db, rc, "retire bucket key");
		if (sqlite3_changes(c->db) != 1)
			return kura_fail(err, KURA_ESTATE,
					 "bucket %016llx does not use key '%s' "
					 "(or is named twice)",
					 (unsigned long long)bk->bucket_id,
					 k.name);
		r = bk_insert(c, bk->bucket_id, a->key_id, v, bk->wrapped,
			      bk->wrapped_len, a->created[i], &a->ids[i], err);
		if (r != KURA_OK)
			return r;
	}
	/* Any current bucket key left on an old version belongs to a bucket
	 * that started using the key after the caller listed them. */
	r = stmt_get(c, ST_BK_STALE, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, v);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) != 0)
		r = kura_fail(err, KURA_ESTATE,
			      "key '%s': %lld more buckets use it now",
			      k.name, (long long)sqlite3_column_int64(s, 0));
	else if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, "count bucket keys");
	stmt_done(s);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_key_rotate(void *priv, uint64_t key_id,
				       uint32_t expected_version,
				       const char *kek_id,
				       struct kura_bucket_key *new_bks,
				       size_t n, struct kura_error *err)
{
	struct rotate_arg a = { key_id, expected_version, kek_id, new_bks, n,
				kura_now_ms(), NULL, NULL };
	enum kura_err r = KURA_OK;

	if (kek_id == NULL || !str_ok(kek_id, KURA_KEK_ID_MAX, false) ||
	    (n > 0 && new_bks == NULL) || n > SIZE_MAX / sizeof(int64_t))
		return kura_fail(err, KURA_EINVAL, "bad rotation");
	for (size_t i = 0; r == KURA_OK && i < n; i++)
		r = check_new_bk(&new_bks[i], err);
	if (r != KURA_OK)
		return r;
	a.created = calloc(n > 0 ? n : 1, sizeof(*a.created));
	a.ids = calloc(n > 0 ? n : 1, sizeof(*a.ids));
	if (a.created == NULL || a.ids == NULL) {
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		a.created[i] = new_bks[i].created_ms != 0
				       ? new_bks[i].created_ms
				       : a.now;
	r = write_tx(priv, key_rotate_body, &a, err);
	if (r != KURA_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		new_bks[i].id = a.ids[i];
		new_bks[i].current = true;
		new_bks[i].created_ms = a.created[i];
		new_bks[i].retired_ms = 0;
	}
out:
	free(a.created);
	free(a.ids);
	return r;
}

struct keyver_arg {
	uint64_t key_id;
	uint32_t version;
};

static enum kura_err key_version_destroyed_body(struct conn *c, void *arg,
						struct kura_error *err)
{
	struct keyver_arg *a = arg;
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_KEYVER_STATE, &s, err);
	int state = 0;
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, a->version);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		state = sqlite3_column_int(s, 0);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return kura_fail(err, KURA_ENOENT, "no version %u of key %llu",
				 a->version, (unsigned long long)a->key_id);
	if (rc != SQLITE_ROW)
		return sql_fail(err, c->db, rc, "get key version");
	/* Recording it twice is harmless (a retried destruction). */
	if (state == KURA_KEYVER_DESTROYED)
		return KURA_OK;
	r = stmt_get(c, ST_KEYVER_DESTROY, &s, err);
	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, a->version);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, kura_now_ms());
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "destroy key version");
	return gen_bump(c, err);
}

static enum kura_err sqlite_key_version_destroyed(void *priv, uint64_t key_id,
						  uint32_t version,
						  struct kura_error *err)
{
	struct keyver_arg a = { key_id, version };

	return write_tx(priv, key_version_destroyed_body, &a, err);
}

static enum kura_err sqlite_key_version_in_use(void *priv, uint64_t key_id,
					       uint32_t version, bool *in_use,
					       struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_KEYVER_IN_USE, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, version);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, "check key version");
	else if (sqlite3_column_int(s, 0) == 0)
		r = kura_fail(err, KURA_ENOENT, "no version %u of key %llu",
			      version, (unsigned long long)key_id);
	else
		*in_use = sqlite3_column_int(s, 1) != 0;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err sqlite_bucket_key_ids(void *priv, uint64_t bucket_id,
					   struct kura_pool *pool, uint64_t **out,
					   size_t *count, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r = conn_acquire(m, &c, err);
	int rc;

	if (r == KURA_OK)
		r = stmt_get(c, ST_BUCKET_KEY_IDS, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			uint64_t *nv = kura_palloc(pool, ncap * sizeof(*nv));
			if (nv == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			if (n)
				memcpy(nv, ids, n * sizeof(*nv));
			ids = nv;
			cap = ncap;
		}
		ids[n++] = (uint64_t)sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		r = sql_fail(err, c->db, rc, "list the bucket's keys");
		goto out;
	}
	*out = ids;
	*count = n;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

static enum kura_err key_destroyed_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	/* Parts lose their bucket key first (the reference is RESTRICT). */
	static const enum st steps[] = {
		ST_PARTS_UNKEY, ST_UPARTS_UNKEY, ST_BK_DELETE_KEY,
	};
	const uint64_t *key_id = arg;
	struct kura_key k;
	bool live = false;
	enum kura_err r = key_fetch(c, *key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state == KURA_KEY_DESTROYED)
		return KURA_OK;	/* idempotent */
	r = exists(c, ST_KEYVER_LIVE, *key_id, &live, err);
	if (r != KURA_OK)
		return r;
	if (live)
		return kura_fail(err, KURA_ESTATE,
				 "key '%s' has versions not yet destroyed",
				 k.name);
	r = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]), *key_id,
		      "destroy key", err);
	if (r == KURA_OK)
		r = key_state_write(c, *key_id, KURA_KEY_DESTROYED, err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_key_destroyed(void *priv, uint64_t key_id,
					  struct kura_error *err)
{
	return write_tx(priv, key_destroyed_body, &key_id, err);
}

static enum kura_err sqlite_key_generation(void *priv, uint64_t *gen,
					   struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_GEN_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*gen = i2u(sqlite3_column_int64(s, 0));
	else if (rc == SQLITE_DONE)
		r = kura_fail(err, KURA_EIO, "sqlite: key generation missing");
	else
		r = sql_fail(err, c->db, rc, "get key generation");
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

/* ---- bucket keys ---- */

static enum kura_err sqlite_bucket_key_current(void *priv, uint64_t bucket_id,
					       uint64_t key_id,
					       struct kura_bucket_key *out,
					       struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_bucket_key bk;
	enum kura_err r;
	int rc;

	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_BK_CURRENT, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 2, key_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		r = kura_fail(err, KURA_ENOENT,
			      "bucket %016llx has no bucket key of key %llu",
			      (unsigned long long)bucket_id,
			      (unsigned long long)key_id);
	else if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, "get bucket key");
	else
		r = bk_row(s, &bk, err);
	if (r == KURA_OK)
		*out = bk;
out:
	stmt_done(s);
	conn_release(m, c);
	memset(&bk, 0, sizeof(bk));
	return r;
}

static enum kura_err sqlite_bucket_key_get(void *priv, uint64_t bk_id,
					   struct kura_bucket_key *out,
					   struct kura_error *err)
{
	struct kura_bucket_key bk;
	enum kura_err r = read_one(priv, ST_BK_GET, bk_id, NULL, bk_row, &bk,
				   "bucket key", err);

	if (r == KURA_OK)
		*out = bk;
	memset(&bk, 0, sizeof(bk));
	return r;
}

struct bk_insert_arg {
	const struct kura_bucket_key *bk;
	int64_t created;
	uint64_t id;			/* result */
};

static enum kura_err bucket_key_insert_body(struct conn *c, void *arg,
					    struct kura_error *err)
{
	struct bk_insert_arg *a = arg;
	const struct kura_bucket_key *bk = a->bk;
	struct kura_key k;
	uint64_t tenant_id = 0;
	enum kura_err r = key_fetch(c, bk->key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state != KURA_KEY_ENABLED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is not enabled",
				 k.name);
	if (bk->key_version != k.current_version)
		return kura_fail(err, KURA_ESTATE,
				 "bucket key wrapped by version %u of key '%s', "
				 "current is %u",
				 bk->key_version, k.name, k.current_version);
	r = bucket_tenant(c, bk->bucket_id, &tenant_id, err);
	if (r != KURA_OK)
		return r;
	if (tenant_id != k.tenant_id)
		return kura_fail(err, KURA_EPERM,
				 "key '%s' belongs to another tenant", k.name);
	r = bk_insert(c, bk->bucket_id, bk->key_id, bk->key_version,
		      bk->wrapped, bk->wrapped_len, a->created, &a->id, err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_bucket_key_insert(void *priv,
					      struct kura_bucket_key *bk,
					      struct kura_error *err)
{
	struct bk_insert_arg a = { bk, 0, 0 };
	enum kura_err r = check_new_bk(bk, err);

	if (r != KURA_OK)
		return r;
	a.created = bk->created_ms != 0 ? bk->created_ms : kura_now_ms();
	r = write_tx(priv, bucket_key_insert_body, &a, err);
	if (r != KURA_OK)
		return r;
	bk->id = a.id;
	bk->current = true;
	bk->created_ms = a.created;
	bk->retired_ms = 0;
	return KURA_OK;
}

static enum kura_err sqlite_bucket_keys_of_key(void *priv, uint64_t key_id,
					       struct kura_pool *pool,
					       struct kura_bucket_key **out,
					       size_t *count,
					       struct kura_error *err)
{
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	r = read_list(priv, ST_BK_OF_KEY, true, key_id, SIZE_MAX,
		      sizeof(**out), bk_row, pool, &res, &n,
		      "list bucket keys", err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

static enum kura_err sqlite_bucket_keys_retired(void *priv, size_t limit,
						struct kura_pool *pool,
						struct kura_bucket_key **out,
						size_t *count,
						struct kura_error *err)
{
	void *res = NULL;
	size_t n = 0;
	enum kura_err r;

	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	if (limit > BATCH_MAX)
		limit = BATCH_MAX;	/* "up to limit" */
	/* ?1 is the LIMIT. */
	r = read_list(priv, ST_BK_RETIRED, true, limit, limit, sizeof(**out),
		      bk_row, pool, &res, &n, "list retired bucket keys", err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* ---- re-wrapping ---- */

/* Step a bound ST_REWRAP_* statement, appending to out[*n] up to max. */
static enum kura_err rewrap_rows(struct conn *c, sqlite3_stmt *s,
				 bool upload_part, uint64_t bucket_id,
				 uint64_t tenant_id, struct kura_rewrap *out,
				 size_t max, size_t *n, struct kura_error *err)
{
	enum kura_err r = KURA_OK;
	int rc = SQLITE_DONE;

	while (*n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct kura_rewrap *e = &out[*n];
		int64_t part_no = sqlite3_column_int64(s, 1);

		memset(e, 0, sizeof(*e));
		r = col_blob(s, 0, e->version_uid, KURA_UID_LEN, NULL,
			     "version uid", err);
		if (r == KURA_OK)
			r = col_blob(s, 2, e->dek_wrapped, KURA_WRAPPED_DEK_LEN,
				     NULL, "wrapped dek", err);
		if (r == KURA_OK && (part_no < 0 || part_no > KURA_MAX_PARTS))
			r = kura_fail(err, KURA_EIO,
				      "sqlite: corrupt part number");
		if (r != KURA_OK)
			return r;
		e->part_no = (uint32_t)part_no;
		e->upload_part = upload_part;
		e->bucket_id = bucket_id;
		e->tenant_id = tenant_id;
		(*n)++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sql_fail(err, c->db, rc, "list parts to re-wrap");
	return r;
}

static enum kura_err sqlite_rewrap_next(void *priv, uint64_t bk_id,
					size_t limit, struct kura_pool *pool,
					struct kura_rewrap **out,
					size_t *count, struct kura_error *err)
{
	static const enum st lists[2] = { ST_REWRAP_PARTS, ST_REWRAP_UPARTS };
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	struct kura_bucket_key bk;
	struct kura_rewrap *tmp = NULL, *res = NULL;
	size_t n = 0;
	enum kura_err r;
	int rc;

	if (limit == 0) {
		*out = NULL;
		*count = 0;
		return KURA_OK;
	}
	if (limit > BATCH_MAX)
		limit = BATCH_MAX;	/* "up to limit" */
	tmp = malloc(limit * sizeof(*tmp));
	if (tmp == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		goto out;
	r = run_id(c, ST_BEGIN, "begin", err);
	if (r == KURA_OK)
		r = stmt_get(c, ST_BK_GET, &s, err);
	if (r != KURA_OK)
		goto out;
	rc = bind_u64(s, 1, bk_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		r = kura_fail(err, KURA_ENOENT, "no bucket key %llu",
			      (unsigned long long)bk_id);
	else if (rc != SQLITE_ROW)
		r = sql_fail(err, c->db, rc, "get bucket key");
	else
		r = bk_row(s, &bk, err);
	stmt_done(s);
	s = NULL;
	/* Object parts first, then upload parts, up to limit in all. */
	for (int t = 0; r == KURA_OK && t < 2 && n < limit; t++) {
		r = stmt_get(c, lists[t], &s, err);
		if (r != KURA_OK)
			break;
		rc = bind_u64(s, 1, bk_id);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int64(s, 2, (int64_t)(limit - n));
		if (rc != SQLITE_OK)
			r = sql_fail(err, c->db, rc, "list parts to re-wrap");
		else
			r = rewrap_rows(c, s, t == 1, bk.bucket_id,
					bk.tenant_id, tmp, limit, &n, err);
		stmt_done(s);
		s = NULL;
	}
	if (r == KURA_OK)
		r = run_id(c, ST_COMMIT, "end read", err);
	if (r == KURA_OK && n > 0) {
		res = kura_pmemdup(pool, tmp, n * sizeof(*tmp));
		if (res == NULL)
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
	}
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
out:
	stmt_done(s);
	conn_release(m, c);
	memset(&bk, 0, sizeof(bk));
	free(tmp);
	return r;
}

struct rewrap_arg {
	uint64_t old_bk, new_bk;
	const struct kura_rewrap *entries;
	size_t count;
};

/* Bucket and currency of bucket key bk_id; *found false when none. */
static enum kura_err bk_bucket(struct conn *c, uint64_t bk_id, bool *found,
			       uint64_t *bucket_id, bool *current,
			       struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_BK_BUCKET, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, bk_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*found = true;
		*bucket_id = i2u(sqlite3_column_int64(s, 0));
		*current = sqlite3_column_int(s, 1) != 0;
	} else if (rc == SQLITE_DONE) {
		*found = false;
	} else {
		r = sql_fail(err, c->db, rc, "get bucket key");
	}
	stmt_done(s);
	return r;
}

/* Re-wrap one part in table t (0 parts, 1 upload_parts); *changed says
 * whether the row was still on the old bucket key. */
static enum kura_err rewrap_one(struct conn *c, int t,
				const struct rewrap_arg *a,
				const struct kura_rewrap *e, bool *changed,
				struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, t == 0 ? ST_REWRAP_PART : ST_REWRAP_UPART,
				   &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, e->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, e->part_no);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, e->dek_wrapped, KURA_WRAPPED_DEK_LEN);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 4, a->old_bk);
	if (rc == SQLITE_OK)
		rc = bind_u64(s, 5, a->new_bk);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "re-wrap part");
	*changed = sqlite3_changes(c->db) > 0;
	return KURA_OK;
}

static enum kura_err rewrap_apply_body(struct conn *c, void *arg,
				       struct kura_error *err)
{
	struct rewrap_arg *a = arg;
	uint64_t old_bucket = 0, new_bucket = 0;
	bool old_found = false, new_found = false, current = false;
	enum kura_err r;

	r = bk_bucket(c, a->new_bk, &new_found, &new_bucket, &current, err);
	if (r != KURA_OK)
		return r;
	if (!new_found)
		return kura_fail(err, KURA_ESTATE, "no bucket key %llu",
				 (unsigned long long)a->new_bk);
	r = bk_bucket(c, a->old_bk, &old_found, &old_bucket, &current, err);
	if (r != KURA_OK)
		return r;
	/* A gone old key has no parts left: nothing below matches. */
	if (old_found && old_bucket != new_bucket)
		return kura_fail(err, KURA_ESTATE,
				 "bucket keys %llu and %llu belong to different "
				 "buckets",
				 (unsigned long long)a->old_bk,
				 (unsigned long long)a->new_bk);
	for (size_t i = 0; i < a->count; i++) {
		const struct kura_rewrap *e = &a->entries[i];
		int t = e->upload_part ? 1 : 0;
		bool changed = false;

		/* An upload part may have become an object's part since it
		 * was listed (same uid and number, same binding). */
		r = rewrap_one(c, t, a, e, &changed, err);
		if (r == KURA_OK && !changed)
			r = rewrap_one(c, 1 - t, a, e, &changed, err);
		if (r != KURA_OK)
			return r;
	}
	return KURA_OK;
}

static enum kura_err sqlite_rewrap_apply(void *priv, uint64_t old_bk_id,
					 uint64_t new_bk_id,
					 const struct kura_rewrap *entries,
					 size_t count, struct kura_error *err)
{
	struct rewrap_arg a = { old_bk_id, new_bk_id, entries, count };

	if (count == 0)
		return KURA_OK;
	if (entries == NULL || old_bk_id == new_bk_id)
		return kura_fail(err, KURA_EINVAL, "bad re-wrap");
	return write_tx(priv, rewrap_apply_body, &a, err);
}

/* The boolean that stmt id (with ?1 = key) yields in its one row. */
static enum kura_err query_bool(struct conn *c, enum st id, uint64_t key,
				bool *val, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, id, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*val = sqlite3_column_int(s, 0) != 0;
	else
		r = sql_fail(err, c->db, rc, "query");
	stmt_done(s);
	return r;
}

struct bk_delete_arg {
	uint64_t id;
	bool in_use;		/* refused: a part still uses it */
};

static enum kura_err bucket_key_delete_body(struct conn *c, void *arg,
					    struct kura_error *err)
{
	struct bk_delete_arg *a = arg;
	uint64_t bucket_id = 0;
	bool found = false, current = false, used = false;
	enum kura_err r;

	r = bk_bucket(c, a->id, &found, &bucket_id, &current, err);
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
	 * refuse the delete anyway.  Not KURA_EBUSY here: write_tx retries
	 * that (it means a lock held by another process). */
	r = query_bool(c, ST_BK_IN_USE, a->id, &used, err);
	if (r != KURA_OK)
		return r;
	if (used) {
		a->in_use = true;
		return kura_fail(err, KURA_ESTATE,
				 "bucket key %llu still wraps data keys",
				 (unsigned long long)a->id);
	}
	r = run_u64(c, ST_BK_DELETE, a->id, "delete bucket key", err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	return r;
}

static enum kura_err sqlite_bucket_key_delete(void *priv, uint64_t bk_id,
					      struct kura_error *err)
{
	struct bk_delete_arg a = { bk_id, false };
	struct kura_error e = { 0 };
	enum kura_err r = write_tx(priv, bucket_key_delete_body, &a, &e);

	if (r == KURA_OK)
		return KURA_OK;
	return kura_fail(err, a.in_use && r == KURA_ESTATE ? KURA_EBUSY : r,
			 "%s", e.msg);
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

/* Does (bucket_id, key) exist? */
static enum kura_err exists_key(struct conn *c, uint64_t bucket_id,
				const char *key, size_t key_len, bool *found,
				struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_OBJ_VERSION, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, key, key_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "find object");
	*found = rc == SQLITE_ROW;
	return KURA_OK;
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

/* Bind the columns shared by parts and upload_parts inserts; a sealed
 * row's ETag is not stored in the clear. */
static int bind_part(sqlite3_stmt *s, const uint8_t uid[KURA_UID_LEN],
		     const struct kura_part *p, bool sealed)
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
		rc = bind_text(s, 7, sealed ? "" : p->etag);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 8, p->mtime_ms);
	if (rc == SQLITE_OK)
		rc = bind_opt_u64(s, 9, p->bk_id);
	return rc;
}

/* Bind an object's or upload's encryption at i, i+1, i+2 (the SSE-C key
 * check value is stored only for SSE-C). */
static int bind_sse(sqlite3_stmt *s, int i, enum kura_sse sse,
		    uint64_t kms_key_id, const uint8_t *hmac)
{
	int rc = sqlite3_bind_int(s, i, (int)sse);

	if (rc == SQLITE_OK)
		rc = bind_opt_u64(s, i + 1, kms_key_id);
	if (rc == SQLITE_OK)
		rc = sse == KURA_SSE_C
			     ? bind_blob(s, i + 2, hmac, KURA_SSEC_HMAC_LEN)
			     : sqlite3_bind_null(s, i + 2);
	return rc;
}

/* Read what bind_sse stored (columns i, i+1, i+2). */
static enum kura_err col_sse(sqlite3_stmt *s, int i, enum kura_sse *sse,
			     uint64_t *kms_key_id, uint8_t *hmac,
			     struct kura_error *err)
{
	int v = sqlite3_column_int(s, i);

	if (v != KURA_SSE_S3 && v != KURA_SSE_KMS && v != KURA_SSE_C)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt sse %d", v);
	*sse = (enum kura_sse)v;
	*kms_key_id = col_opt_u64(s, i + 1);
	if (sqlite3_column_type(s, i + 2) == SQLITE_NULL) {
		memset(hmac, 0, KURA_SSEC_HMAC_LEN);
		return KURA_OK;
	}
	return col_blob(s, i + 2, hmac, KURA_SSEC_HMAC_LEN, NULL,
			"sse-c key check", err);
}

/* A blob, or SQL NULL when n is 0 (a row without a seal). */
static int bind_opt_blob(sqlite3_stmt *s, int i, const uint8_t *p, size_t n)
{
	return n == 0 ? sqlite3_bind_null(s, i) : bind_blob(s, i, p, n);
}

/* Bind a seal and its bucket key at i, i+1 (NULL, NULL when unsealed). */
static int bind_seal(sqlite3_stmt *s, int i, const uint8_t *seal,
		     size_t seal_len, uint64_t seal_bk_id)
{
	int rc;

	if (seal_len == 0) {
		rc = sqlite3_bind_null(s, i);
		return rc == SQLITE_OK ? sqlite3_bind_null(s, i + 1) : rc;
	}
	rc = bind_blob(s, i, seal, seal_len);
	return rc == SQLITE_OK ? bind_u64(s, i + 1, seal_bk_id) : rc;
}

/* Read what bind_seal stored (columns i, i+1). */
static enum kura_err col_seal(sqlite3_stmt *s, int i, uint8_t *seal,
			      size_t *seal_len, uint64_t *seal_bk_id,
			      struct kura_error *err)
{
	*seal_len = 0;
	*seal_bk_id = col_opt_u64(s, i + 1);
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return KURA_OK;
	return col_blob(s, i, seal, KURA_SEAL_MAX, seal_len, "seal", err);
}

static enum kura_err check_sse(enum kura_sse sse, uint64_t kms_key_id,
			       struct kura_error *err)
{
	if (sse != KURA_SSE_S3 && sse != KURA_SSE_KMS && sse != KURA_SSE_C)
		return kura_fail(err, KURA_EINVAL, "bad sse %d", (int)sse);
	if ((sse == KURA_SSE_KMS) != (kms_key_id != 0))
		return kura_fail(err, KURA_EINVAL,
				 "a KMS key goes with SSE-KMS and only there");
	return KURA_OK;
}

/* Part p's bucket key must be one of bucket_id's (KURA_ESTATE: e.g. it
 * was deleted after a rotation while the upload ran); only SSE-C data may
 * have none.  *known remembers the last key found good, since the parts
 * of one object nearly always share it. */
static enum kura_err bk_check(struct conn *c, uint64_t bucket_id,
			      enum kura_sse sse, const struct kura_part *p,
			      uint64_t *known, struct kura_error *err)
{
	uint64_t owner = 0;
	bool found = false, current = false;
	enum kura_err r;

	if (p->bk_id == 0) {
		if (sse == KURA_SSE_C)
			return KURA_OK;
		return kura_fail(err, KURA_EINVAL,
				 "part %u has no bucket key", p->part_no);
	}
	if (p->bk_id == *known)
		return KURA_OK;
	r = bk_bucket(c, p->bk_id, &found, &owner, &current, err);
	if (r != KURA_OK)
		return r;
	if (!found || owner != bucket_id)
		return kura_fail(err, KURA_ESTATE,
				 "part %u: no bucket key %llu in bucket "
				 "%016llx",
				 p->part_no, (unsigned long long)p->bk_id,
				 (unsigned long long)bucket_id);
	*known = p->bk_id;
	return KURA_OK;
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
	rc = bind_part(s, o->version_uid, p, o->seal_len > 0);
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
		rc = bind_text(s, 5, o->seal_len > 0 ? "" : o->etag);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 6, o->mtime_ms);
	for (int i = 0; i < 8 && rc == SQLITE_OK; i++)
		rc = bind_text(s, 7 + i, strs[i]);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 15, o->part_count);
	if (rc == SQLITE_OK)
		rc = bind_sse(s, 16, o->sse, o->kms_key_id, o->ssec_hmac);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 19, o->seal, o->seal_len, o->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = o->seal_len > 0 ? bind_blob(s, 21, o->parts_digest,
						 KURA_PARTS_DIGEST_LEN)
				     : sqlite3_bind_null(s, 21);
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
	uint64_t known = 0;
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
	for (uint32_t i = 0; r == KURA_OK && i < o->part_count; i++)
		r = bk_check(c, o->bucket_id, o->sse, &o->parts[i], &known,
			     err);
	if (r != KURA_OK)
		goto out;
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
	if (r == KURA_OK)
		r = check_sse(obj->sse, obj->kms_key_id, err);
	if (r != KURA_OK)
		return r;
	if (!str_ok(obj->etag, sizeof(obj->etag), true) ||
	    obj->seal_len > KURA_SEAL_MAX ||
	    (obj->seal_len > 0 && obj->seal_bk_id == 0) ||
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
	p->bk_id = col_opt_u64(s, 7);
	/* Upload parts (UPART_COLS) also carry their seal. */
	if (r == KURA_OK && sqlite3_column_count(s) > 9)
		r = col_seal(s, 8, p->seal, &p->seal_len, &p->seal_bk_id, err);
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
		/* The row and its parts disagree: the metadata was changed
		 * (kura writes both in one transaction). */
		if (n >= o->part_count) {
			r = kura_fail(err, KURA_EINTEGRITY,
				      "object has more parts than its %u",
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
		r = kura_fail(err, KURA_EINTEGRITY,
			      "object has %u of its %u parts", n, o->part_count);
out:
	stmt_done(s);
	return r;
}

/* One row of OBJ_COLS into o (strings from pool; parts not read). */
static enum kura_err object_row(sqlite3_stmt *s, uint64_t bucket_id,
				struct kura_pool *pool, struct kura_object *o,
				struct kura_error *err)
{
	const char **strs[8] = {
		&o->content_type, &o->content_encoding, &o->content_language,
		&o->content_disposition, &o->cache_control, &o->expires,
		&o->user_meta_json, &o->tags_json,
	};
	const void *k = sqlite3_column_blob(s, 0);
	int klen = sqlite3_column_bytes(s, 0);
	enum kura_err r;
	int64_t v;

	memset(o, 0, sizeof(*o));
	o->bucket_id = bucket_id;
	if (k == NULL || klen <= 0 || klen > KURA_OBJECT_KEY_MAX)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt key");
	o->key = kura_pstrndup(pool, k, (size_t)klen);
	if (o->key == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	o->key_len = (size_t)klen;
	r = col_blob(s, 1, o->version_uid, KURA_UID_LEN, NULL, "version uid",
		     err);
	if (r != KURA_OK)
		return r;
	o->size = (uint64_t)sqlite3_column_int64(s, 2);
	r = col_text(s, 3, o->etag, sizeof(o->etag), "etag", err);
	if (r != KURA_OK)
		return r;
	o->mtime_ms = sqlite3_column_int64(s, 4);
	for (int i = 0; i < 8 && r == KURA_OK; i++)
		r = col_ptext(s, 5 + i, pool, strs[i], err);
	if (r != KURA_OK)
		return r;
	v = sqlite3_column_int64(s, 13);
	if (v < 0 || v > PARTS_MAX)
		return kura_fail(err, KURA_EIO, "sqlite: corrupt part count");
	o->part_count = (uint32_t)v;
	r = col_sse(s, 14, &o->sse, &o->kms_key_id, o->ssec_hmac, err);
	if (r == KURA_OK)
		r = col_seal(s, 17, o->seal, &o->seal_len, &o->seal_bk_id, err);
	if (r == KURA_OK && sqlite3_column_type(s, 19) != SQLITE_NULL)
		r = col_blob(s, 19, o->parts_digest, KURA_PARTS_DIGEST_LEN,
			     NULL, "parts digest", err);
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
	enum kura_err r;
	int rc;

	r = check_key(key, key_len, err);
	if (r != KURA_OK)
		return r;
	o = kura_palloc(pool, sizeof(*o));
	if (o == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");

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
	r = object_row(s, bucket_id, pool, o, err);
	if (r != KURA_OK)
		goto out;
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
					struct kura_object **out,
					size_t *count, struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	unsigned char *upper = NULL;
	size_t upper_len = 0, n = 0, cap = 0;
	struct kura_object *tmp = NULL, *res = NULL;
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
		if (n == cap) {
			/* A page of a listing at once (rows are whole object
			 * rows now: growing copies them). */
			size_t ncap = cap == 0 ? (limit < 1024 ? limit : 1024)
					       : cap * 2;
			void *p = realloc(tmp, ncap * sizeof(*tmp));
			if (p == NULL) {
				r = kura_fail(err, KURA_ENOMEM, "out of memory");
				goto out;
			}
			tmp = p;
			cap = ncap;
		}
		r = object_row(s, bucket_id, pool, &tmp[n], err);
		if (r != KURA_OK)
			goto out;
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
	const uint8_t *version_uid;
	const uint8_t *old_seal;
	size_t old_len;
	const char *tags_json;
	const uint8_t *seal;
	size_t seal_len;
	uint64_t seal_bk_id;
};

static enum kura_err set_tags_body(struct conn *c, void *arg,
				   struct kura_error *err)
{
	struct tags_arg *a = arg;
	sqlite3_stmt *s = NULL;
	bool found = false;
	enum kura_err r = stmt_get(c, ST_OBJ_SET_TAGS, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->bucket_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 2, a->key, a->key_len);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 3, a->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = bind_text(s, 4, a->tags_json);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 5, a->seal, a->seal_len, a->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_opt_blob(s, 7, a->old_seal, a->old_len);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "set object tags");
	if (sqlite3_changes(c->db) > 0)
		return KURA_OK;
	r = exists_key(c, a->bucket_id, a->key, a->key_len, &found, err);
	if (r != KURA_OK)
		return r;
	if (found)
		return kura_fail(err, KURA_ESTATE, "the object was replaced");
	return kura_fail(err, KURA_ENOENT, "no such object");
}

static enum kura_err sqlite_object_set_tags(void *priv, uint64_t bucket_id,
					    const char *key, size_t key_len,
					    const uint8_t version_uid[KURA_UID_LEN],
					    const uint8_t *old_seal, size_t old_len,
					    const char *tags_json,
					    const uint8_t *seal, size_t seal_len,
					    uint64_t seal_bk_id,
					    struct kura_error *err)
{
	struct tags_arg a = { bucket_id, key,	   key_len,  version_uid, old_seal,
			      old_len,	 tags_json, seal,     seal_len,	  seal_bk_id };
	enum kura_err r = check_key(key, key_len, err);

	if (r != KURA_OK)
		return r;
	if (version_uid == NULL || seal_len > KURA_SEAL_MAX ||
	    (seal_len > 0 && seal == NULL) || old_len > KURA_SEAL_MAX ||
	    (old_len > 0 && old_seal == NULL))
		return kura_fail(err, KURA_EINVAL, "bad tag update");
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
	    !str_ok(p->etag, sizeof(p->etag), true) || p->size > INT64_MAX ||
	    p->seal_len > KURA_SEAL_MAX ||
	    (p->seal_len > 0 && p->seal_bk_id == 0))
		return kura_fail(err, KURA_EINVAL, "bad part %u", p->part_no);
	return KURA_OK;
}

/* Upload id in bucket_id: its version uid and, when key is not NULL,
 * whether its key is key.  KURA_ENOENT when there is none (also when it
 * belongs to another bucket). */
static enum kura_err upload_find(struct conn *c, const char *id,
				 uint64_t bucket_id, const char *key,
				 size_t key_len, uint8_t uid[KURA_UID_LEN],
				 bool *key_match, struct kura_upload *sse,
				 struct kura_error *err)
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
	if (r == KURA_OK && sse != NULL)
		r = col_sse(s, 3, &sse->sse, &sse->kms_key_id, sse->ssec_hmac,
			    err);
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
		rc = bind_sse(s, 14, u->sse, u->kms_key_id, u->ssec_hmac);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 17, u->seal, u->seal_len, u->seal_bk_id);
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
	if (u->seal_len > KURA_SEAL_MAX || (u->seal_len > 0 && u->seal_bk_id == 0))
		return kura_fail(err, KURA_EINVAL, "bad upload seal");
	r = check_key(u->key, u->key_len, err);
	if (r == KURA_OK)
		r = check_sse(u->sse, u->kms_key_id, err);
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
	if (r == KURA_OK)
		r = col_sse(s, 13, &u->sse, &u->kms_key_id, u->ssec_hmac, err);
	if (r == KURA_OK)
		r = col_seal(s, 16, u->seal, &u->seal_len, &u->seal_bk_id, err);
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
	struct kura_upload up = { 0 };
	uint64_t known = 0;
	struct blob_state bs;
	sqlite3_stmt *s = NULL;
	enum kura_err r;
	int rc;

	r = upload_find(c, a->id, a->bucket_id, NULL, 0, uid, NULL, &up, err);
	if (r == KURA_OK)
		r = bk_check(c, a->bucket_id, up.sse, p, &known, err);
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
	rc = bind_part(s, uid, p, p->seal_len > 0);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 10, p->seal, p->seal_len, p->seal_bk_id);
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
				NULL, err);
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
	struct kura_upload up = { 0 };
	uint8_t uid[KURA_UID_LEN];
	sqlite3_stmt *s = NULL;
	bool found = false, key_match = false;
	enum kura_err r;

	r = upload_find(c, a->id, o->bucket_id, o->key, o->key_len, uid,
			&key_match, &up, err);
	if (r != KURA_OK)
		goto out;
	if (!key_match || memcmp(uid, o->version_uid, KURA_UID_LEN) != 0) {
		r = kura_fail(err, KURA_EINVAL,
			      "object key or version uid differs from upload "
			      "'%s'",
			      a->id);
		goto out;
	}
	/* The parts were encrypted as the upload says. */
	if (up.sse != o->sse || up.kms_key_id != o->kms_key_id ||
	    (o->sse == KURA_SSE_C &&
	     memcmp(up.ssec_hmac, o->ssec_hmac, KURA_SSEC_HMAC_LEN) != 0)) {
		r = kura_fail(err, KURA_EINVAL,
			      "object encryption differs from upload '%s'",
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
			rc = sqlite3_bind_int(s, 6, o->sse == KURA_SSE_C);
		if (rc == SQLITE_OK)
			rc = p->seal_len > 0
				     ? bind_blob(s, 7, p->seal, p->seal_len)
				     : sqlite3_bind_null(s, 7);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_int(s, 8, o->seal_len > 0);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		stmt_done(s);
		if (rc != SQLITE_DONE)
			r = sql_fail(err, c->db, rc, "move upload part");
		else if (sqlite3_changes(c->db) != 1)
			r = kura_fail(err, KURA_ESTATE,
				      "part %u does not match upload '%s' (or "
				      "its bucket key was destroyed)",
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

	r = upload_find(c, a->id, a->bucket_id, NULL, 0, uid, NULL, NULL,
			err);
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

/* ---- metadata seals ---- */

static enum kura_err bucket_row_cb(sqlite3_stmt *s, void *out,
				   struct kura_error *err)
{
	return bucket_row(s, out, err);
}

static enum kura_err sqlite_bucket_get_id(void *priv, uint64_t id,
					  struct kura_bucket *out,
					  struct kura_error *err)
{
	struct kura_bucket b;
	enum kura_err r = read_one(priv, ST_BUCKET_GET_ID, id, NULL,
				   bucket_row_cb, &b, "bucket", err);

	if (r == KURA_OK)
		*out = b;
	return r;
}

static enum kura_err sqlite_seal_pending_buckets(void *priv, const uint64_t *after,
						 uint64_t *ids, size_t max,
						 size_t *count,
						 struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct conn *c = NULL;
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	enum kura_err r;
	int rc = SQLITE_DONE;

	if (max == 0) {
		*count = 0;
		return KURA_OK;
	}
	r = conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = stmt_get(c, after ? ST_SEAL_PENDING_BUCKETS_AFTER : ST_SEAL_PENDING_BUCKETS,
			     &s, err);
	if (r != KURA_OK)
		goto out;
	rc = sqlite3_bind_int64(s, 1, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if (rc == SQLITE_OK && after != NULL)
		rc = bind_u64(s, 2, *after);
	while (rc == SQLITE_OK && n < max &&
	       (rc = sqlite3_step(s)) == SQLITE_ROW) {
		ids[n++] = i2u(sqlite3_column_int64(s, 0));
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		r = sql_fail(err, c->db, rc, "list buckets to seal");
	else
		*count = n;
out:
	stmt_done(s);
	conn_release(m, c);
	return r;
}

/* Bind the (seal bucket key or NULL, bucket, limit) of a ST_SEAL_* list. */
static int bind_seal_list(sqlite3_stmt *s, uint64_t bk_id, uint64_t bucket_id,
			  size_t limit)
{
	int rc = bind_opt_u64(s, 1, bk_id);

	if (rc == SQLITE_OK)
		rc = bind_u64(s, 2, bucket_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 3, (int64_t)limit);
	return rc;
}

/* Grow *v (of *cap elements of size sz) to hold n + 1. */
static enum kura_err grow(void **v, size_t *cap, size_t n, size_t sz,
			  struct kura_error *err)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return KURA_OK;
	ncap = *cap == 0 ? 16 : *cap * 2;
	p = realloc(*v, ncap * sz);
	if (p == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	*v = p;
	*cap = ncap;
	return KURA_OK;
}

/* The objects of a seal batch (with their parts when never sealed). */
static enum kura_err seal_objects(struct conn *c, uint64_t bucket_id,
				  uint64_t tenant_id, uint64_t bk_id,
				  size_t limit, struct kura_pool *pool,
				  struct kura_seal_batch *out,
				  struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	struct kura_object *v = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r = stmt_get(c, ST_SEAL_OBJECTS, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_seal_list(s, bk_id, bucket_id, limit);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = grow((void **)&v, &cap, n, sizeof(*v), err);
		if (r == KURA_OK)
			r = object_row(s, bucket_id, pool, &v[n], err);
		if (r != KURA_OK)
			goto out;
		v[n++].tenant_id = tenant_id;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "list objects to seal");
		goto out;
	}
	stmt_done(s);
	s = NULL;
	for (size_t i = 0; bk_id == 0 && i < n && r == KURA_OK; i++)
		r = parts_read(c, &v[i], pool, err);
	if (r == KURA_OK && n > 0 &&
	    (out->objects = kura_pmemdup(pool, v, n * sizeof(*v))) == NULL)
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
	if (r == KURA_OK)
		out->n_objects = n;
out:
	stmt_done(s);
	free(v);
	return r;
}

static enum kura_err seal_uploads(struct conn *c, uint64_t bucket_id,
				  uint64_t tenant_id, uint64_t bk_id,
				  size_t limit, struct kura_pool *pool,
				  struct kura_seal_batch *out,
				  struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	struct kura_upload *v = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r = stmt_get(c, ST_SEAL_UPLOADS, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_seal_list(s, bk_id, bucket_id, limit);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = grow((void **)&v, &cap, n, sizeof(*v), err);
		if (r == KURA_OK)
			r = upload_row(s, pool, &v[n], err);
		if (r != KURA_OK)
			goto out;
		v[n++].tenant_id = tenant_id;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "list uploads to seal");
		goto out;
	}
	if (n > 0 && (out->uploads = kura_pmemdup(pool, v, n * sizeof(*v))) == NULL)
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
	if (r == KURA_OK)
		out->n_uploads = n;
out:
	stmt_done(s);
	free(v);
	return r;
}

static enum kura_err seal_uparts(struct conn *c, uint64_t bucket_id,
				 uint64_t tenant_id, uint64_t bk_id,
				 size_t limit, struct kura_pool *pool,
				 struct kura_seal_batch *out,
				 struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	struct kura_upload_part *v = NULL;
	size_t n = 0, cap = 0;
	enum kura_err r = stmt_get(c, ST_SEAL_UPARTS, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_seal_list(s, bk_id, bucket_id, limit);
	while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = grow((void **)&v, &cap, n, sizeof(*v), err);
		if (r == KURA_OK)
			r = part_row(s, &v[n].part, err);
		if (r == KURA_OK)
			r = col_blob(s, 10, v[n].version_uid, KURA_UID_LEN, NULL,
				     "version uid", err);
		if (r != KURA_OK)
			goto out;
		v[n].tenant_id = tenant_id;
		v[n++].bucket_id = bucket_id;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sql_fail(err, c->db, rc, "list upload parts to seal");
		goto out;
	}
	if (n > 0 && (out->parts = kura_pmemdup(pool, v, n * sizeof(*v))) == NULL)
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
	if (r == KURA_OK)
		out->n_parts = n;
out:
	stmt_done(s);
	free(v);
	return r;
}

static enum kura_err sqlite_seal_next(void *priv, uint64_t bucket_id,
				      uint64_t bk_id, size_t limit,
				      struct kura_pool *pool,
				      struct kura_seal_batch *out,
				      struct kura_error *err)
{
	struct meta_sqlite *m = priv;
	struct kura_seal_batch b = { 0 };
	struct conn *c = NULL;
	uint64_t tenant_id = 0;
	enum kura_err r;

	if (limit > BATCH_MAX)
		limit = BATCH_MAX;	/* "up to limit" */
	if (limit == 0) {
		*out = b;
		return KURA_OK;
	}
	r = conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	/* One read transaction: rows and their parts from one snapshot. */
	r = run_id(c, ST_BEGIN, "begin", err);
	if (r == KURA_OK)
		r = bucket_tenant(c, bucket_id, &tenant_id, err);
	if (r == KURA_OK)
		r = seal_objects(c, bucket_id, tenant_id, bk_id, limit, pool,
				 &b, err);
	if (r == KURA_OK)
		r = seal_uploads(c, bucket_id, tenant_id, bk_id, limit, pool,
				 &b, err);
	if (r == KURA_OK)
		r = seal_uparts(c, bucket_id, tenant_id, bk_id, limit, pool, &b,
				err);
	if (r == KURA_OK)
		r = run_id(c, ST_COMMIT, "end read", err);
	if (r == KURA_OK)
		*out = b;
	conn_release(m, c);
	return r;
}

struct seal_apply_arg {
	const struct kura_seal_batch *b;
	const struct kura_new_seal *objects, *uploads, *parts;
	size_t applied;
};

/* Run bound statement s (a ST_SEAL_* update); count the row it changed. */
static enum kura_err seal_step(struct conn *c, sqlite3_stmt *s, int rc,
			       size_t *applied, bool *changed,
			       struct kura_error *err)
{
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "store seal");
	*changed = sqlite3_changes(c->db) > 0;
	if (*changed)
		(*applied)++;
	return KURA_OK;
}

static enum kura_err seal_apply_object(struct conn *c,
				       struct seal_apply_arg *a,
				       const struct kura_object *o,
				       const struct kura_new_seal *ns,
				       struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	bool changed = false;
	enum kura_err r = stmt_get(c, ST_SEAL_OBJECT, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, o->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 2, ns->seal, ns->seal_len, ns->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_blob(s, 4, ns->parts_digest, KURA_PARTS_DIGEST_LEN);
	if (rc == SQLITE_OK)
		rc = bind_opt_u64(s, 5, o->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_opt_blob(s, 6, o->seal, o->seal_len);
	r = seal_step(c, s, rc, &a->applied, &changed, err);
	/* A first seal also takes the clear ETags of the parts. */
	if (r == KURA_OK && changed && o->seal_len == 0)
		r = run_uid(c, ST_SEAL_OBJECT_PARTS, o->version_uid,
			    "clear part etags", err);
	return r;
}

static enum kura_err seal_apply_upload(struct conn *c,
				       struct seal_apply_arg *a,
				       const struct kura_upload *u,
				       const struct kura_new_seal *ns,
				       struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	bool changed = false;
	enum kura_err r = stmt_get(c, ST_SEAL_UPLOAD, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, u->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 2, ns->seal, ns->seal_len, ns->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_opt_u64(s, 4, u->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_opt_blob(s, 5, u->seal, u->seal_len);
	return seal_step(c, s, rc, &a->applied, &changed, err);
}

static enum kura_err seal_apply_upart(struct conn *c,
				      struct seal_apply_arg *a,
				      const struct kura_upload_part *p,
				      const struct kura_new_seal *ns,
				      struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	bool changed = false;
	enum kura_err r = stmt_get(c, ST_SEAL_UPART, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_blob(s, 1, p->version_uid, KURA_UID_LEN);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 2, p->part.part_no);
	if (rc == SQLITE_OK)
		rc = bind_seal(s, 3, ns->seal, ns->seal_len, ns->seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_opt_u64(s, 5, p->part.seal_bk_id);
	if (rc == SQLITE_OK)
		rc = bind_opt_blob(s, 6, p->part.seal, p->part.seal_len);
	return seal_step(c, s, rc, &a->applied, &changed, err);
}

static enum kura_err seal_apply_body(struct conn *c, void *arg,
				     struct kura_error *err)
{
	struct seal_apply_arg *a = arg;
	const struct kura_seal_batch *b = a->b;
	enum kura_err r = KURA_OK;

	a->applied = 0;
	for (size_t i = 0; r == KURA_OK && i < b->n_objects; i++)
		r = seal_apply_object(c, a, &b->objects[i], &a->objects[i], err);
	for (size_t i = 0; r == KURA_OK && i < b->n_uploads; i++)
		r = seal_apply_upload(c, a, &b->uploads[i], &a->uploads[i], err);
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

static enum kura_err sqlite_seal_apply(void *priv, const struct kura_seal_batch *batch,
				       const struct kura_new_seal *objects,
				       const struct kura_new_seal *uploads,
				       const struct kura_new_seal *parts,
				       size_t *applied, struct kura_error *err)
{
	struct seal_apply_arg a = { batch, objects, uploads, parts, 0 };
	enum kura_err r;

	if (batch == NULL || (batch->n_objects && objects == NULL) ||
	    (batch->n_uploads && uploads == NULL) || (batch->n_parts && parts == NULL) ||
	    !new_seals_ok(objects, batch->n_objects) ||
	    !new_seals_ok(uploads, batch->n_uploads) || !new_seals_ok(parts, batch->n_parts))
		return kura_fail(err, KURA_EINVAL, "bad seal batch");
	r = write_tx(priv, seal_apply_body, &a, err);
	if (r == KURA_OK && applied != NULL)
		*applied = a.applied;
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

/* ---- tenant and access-key lifecycle (v4) ---- */

static enum kura_err sqlite_tenant_list(void *priv, struct kura_pool *pool,
					struct kura_tenant **out, size_t *count,
					struct kura_error *err)
{
	void *res = NULL;
	size_t n = 0;
	enum kura_err r = read_list(priv, ST_TENANT_LIST, false, 0, SIZE_MAX,
				    sizeof(**out), tenant_row, pool, &res, &n,
				    "list tenants", err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

struct tenant_state_arg {
	uint64_t id;
	enum kura_tenant_state state;
};

static enum kura_err tenant_set_state_body(struct conn *c, void *arg,
					   struct kura_error *err)
{
	const struct tenant_state_arg *a = arg;
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_TENANT_SET_STATE, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_u64(s, 1, a->id);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(s, 2, (int)a->state);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "set tenant state");
	if (sqlite3_changes(c->db) == 0)
		return kura_fail(err, KURA_ENOENT, "no tenant %llu",
				 (unsigned long long)a->id);
	return KURA_OK;
}

static enum kura_err sqlite_tenant_set_state(void *priv, uint64_t id,
					     enum kura_tenant_state state,
					     struct kura_error *err)
{
	struct tenant_state_arg a = { id, state };

	if (state != KURA_TENANT_ACTIVE && state != KURA_TENANT_SUSPENDED)
		return kura_fail(err, KURA_EINVAL, "bad tenant state %d", (int)state);
	return write_tx(priv, tenant_set_state_body, &a, err);
}

static enum kura_err tenant_delete_body(struct conn *c, void *arg,
					struct kura_error *err)
{
	static const enum st steps[] = {
		ST_TENANT_AKS_DELETE, ST_TENANT_KEYVERS_DELETE,
		ST_TENANT_KEYS_DELETE,
	};
	uint64_t id = *(const uint64_t *)arg;
	bool found = false;
	enum kura_err r = exists(c, ST_TENANT_EXISTS, id, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no tenant %llu",
			      (unsigned long long)id);
	if (r == KURA_OK)
		r = exists(c, ST_TENANT_HAS_BUCKETS, id, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_ENOTEMPTY, "tenant %llu owns buckets",
			      (unsigned long long)id);
	if (r == KURA_OK)
		r = exists(c, ST_TENANT_LIVE_KEYS, id, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_ESTATE, "tenant %llu has keys that are not "
			      "destroyed", (unsigned long long)id);
	if (r == KURA_OK)
		r = run_steps(c, steps, sizeof(steps) / sizeof(steps[0]), id,
			      "delete tenant", err);
	if (r == KURA_OK)
		r = gen_bump(c, err);
	if (r == KURA_OK)
		r = run_u64(c, ST_TENANT_DELETE, id, "delete tenant", err);
	return r;
}

static enum kura_err sqlite_tenant_delete(void *priv, uint64_t id,
					  struct kura_error *err)
{
	return write_tx(priv, tenant_delete_body, &id, err);
}

static enum kura_err sqlite_access_key_list(void *priv, uint64_t tenant_id,
					    struct kura_pool *pool,
					    struct kura_access_key **out,
					    size_t *count, struct kura_error *err)
{
	void *res = NULL;
	size_t n = 0;
	enum kura_err r = read_list(priv, ST_AK_LIST, true, tenant_id, SIZE_MAX,
				    sizeof(**out), access_key_row, pool, &res, &n,
				    "list access keys", err);
	if (r == KURA_OK) {
		*out = res;
		*count = n;
	}
	return r;
}

/* Revoke id inside a transaction: KURA_ENOENT when there is no such key. */
static enum kura_err revoke_in_tx(struct conn *c, const char *id,
				  struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_AK_REVOKE, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sql_fail(err, c->db, rc, "revoke access key");
	if (sqlite3_changes(c->db) == 0)
		return kura_fail(err, KURA_ENOENT, "no access key '%s'", id);
	return KURA_OK;
}

static enum kura_err access_key_revoke_body(struct conn *c, void *arg,
					    struct kura_error *err)
{
	return revoke_in_tx(c, arg, err);
}

static enum kura_err sqlite_access_key_revoke(void *priv, const char *id,
					      struct kura_error *err)
{
	if (id == NULL || strnlen(id, KURA_ACCESS_KEY_ID_MAX) >= KURA_ACCESS_KEY_ID_MAX)
		return kura_fail(err, KURA_EINVAL, "bad access key id");
	return write_tx(priv, access_key_revoke_body, (void *)id, err);
}

struct ak_replace_arg {
	const char *old_id;
	const struct kura_access_key *k;
};

/* The old key's tenant and state, read inside the transaction. */
static enum kura_err ak_state(struct conn *c, const char *id, uint64_t *tenant,
			      bool *active, struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	enum kura_err r = stmt_get(c, ST_AK_GET, &s, err);
	int rc;

	if (r != KURA_OK)
		return r;
	rc = bind_text(s, 1, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*tenant = i2u(sqlite3_column_int64(s, 1));
		*active = sqlite3_column_int(s, 4) != 0;
	} else if (rc == SQLITE_DONE) {
		r = kura_fail(err, KURA_ENOENT, "no access key '%s'", id);
	} else {
		r = sql_fail(err, c->db, rc, "get access key");
	}
	stmt_done(s);
	return r;
}

static enum kura_err access_key_replace_body(struct conn *c, void *arg,
					     struct kura_error *err)
{
	const struct ak_replace_arg *a = arg;
	uint64_t tenant = 0;
	bool active = false;
	enum kura_err r = ak_state(c, a->old_id, &tenant, &active, err);

	if (r != KURA_OK)
		return r;
	if (!active)
		return kura_fail(err, KURA_ESTATE, "access key '%s' is revoked",
				 a->old_id);
	if (tenant != a->k->tenant_id)
		return kura_fail(err, KURA_ESTATE, "access key '%s' belongs to "
				 "another tenant", a->old_id);
	r = access_key_create_body(c, (void *)a->k, err);
	if (r == KURA_OK)
		r = revoke_in_tx(c, a->old_id, err);
	return r;
}

static enum kura_err sqlite_access_key_replace(void *priv, const char *old_id,
					       const struct kura_access_key *k,
					       struct kura_error *err)
{
	struct ak_replace_arg a = { old_id, k };

	if (old_id == NULL || k == NULL || !str_ok(k->id, sizeof(k->id), false) ||
	    !k->active)
		return kura_fail(err, KURA_EINVAL, "bad access key");
	if (k->secret_sealed_len > sizeof(k->secret_sealed))
		return kura_fail(err, KURA_EINVAL, "bad sealed secret length");
	return write_tx(priv, access_key_replace_body, &a, err);
}

const struct kura_meta_ops kura_meta_sqlite = {
	.name = "sqlite",
	.caps = 0,
	.priv_size = sizeof(struct meta_sqlite),
	.open = sqlite_open,
	.close = sqlite_close,
	.setting_get = sqlite_setting_get,
	.setting_insert = sqlite_setting_insert,
	.setting_delete = sqlite_setting_delete,
	.tenant_create = sqlite_tenant_create,
	.tenant_get = sqlite_tenant_get,
	.tenant_get_by_name = sqlite_tenant_get_by_name,
	.access_key_create = sqlite_access_key_create,
	.access_key_get = sqlite_access_key_get,
	.bucket_create = sqlite_bucket_create,
	.bucket_get = sqlite_bucket_get,
	.bucket_list = sqlite_bucket_list,
	.bucket_delete = sqlite_bucket_delete,
	.bucket_set_encryption = sqlite_bucket_set_encryption,
	.bucket_purge = sqlite_bucket_purge,
	.bucket_blobs = sqlite_bucket_blobs,
	.key_create = sqlite_key_create,
	.key_get = sqlite_key_get,
	.key_get_by_name = sqlite_key_get_by_name,
	.key_list = sqlite_key_list,
	.key_versions = sqlite_key_versions,
	.key_set_state = sqlite_key_set_state,
	.key_rotate = sqlite_key_rotate,
	.key_version_in_use = sqlite_key_version_in_use,
	.bucket_key_ids = sqlite_bucket_key_ids,
	.key_version_destroyed = sqlite_key_version_destroyed,
	.key_destroyed = sqlite_key_destroyed,
	.key_generation = sqlite_key_generation,
	.bucket_key_current = sqlite_bucket_key_current,
	.bucket_key_get = sqlite_bucket_key_get,
	.bucket_key_insert = sqlite_bucket_key_insert,
	.bucket_keys_of_key = sqlite_bucket_keys_of_key,
	.bucket_keys_retired = sqlite_bucket_keys_retired,
	.rewrap_next = sqlite_rewrap_next,
	.rewrap_apply = sqlite_rewrap_apply,
	.bucket_key_delete = sqlite_bucket_key_delete,
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
	.bucket_get_id = sqlite_bucket_get_id,
	.seal_pending_buckets = sqlite_seal_pending_buckets,
	.seal_next = sqlite_seal_next,
	.seal_apply = sqlite_seal_apply,
	.gc_next = sqlite_gc_next,
	.gc_done = sqlite_gc_done,
	.blob_referenced = sqlite_blob_referenced,
	.tenant_list = sqlite_tenant_list,
	.tenant_set_state = sqlite_tenant_set_state,
	.tenant_delete = sqlite_tenant_delete,
	.access_key_list = sqlite_access_key_list,
	.access_key_revoke = sqlite_access_key_revoke,
	.access_key_replace = sqlite_access_key_replace,
};

/*
 * schema.c — the schema of the SQLite metadata store: the file, WAL mode,
 * and the migrations that bring any older database to the current version.
 *
 * Schema (version 7; docs/METADATA.md describes every column).  All tables
 * are STRICT, so a key can never be stored as TEXT and sort out of byte
 * order; 64-bit unsigned ids are stored bit-for-bit in signed INTEGERs.
 *   settings(name TEXT PK, value BLOB)
 *   tenants(id INTEGER PK AUTOINCREMENT, name TEXT UNIQUE, created_ms,
 *           state (v4: 0 active, 1 suspended))
 *   access_keys(id TEXT PK, tenant_id -> tenants, secret_sealed BLOB,
 *               created_ms, active)
 *   buckets(id INTEGER PK (random, caller-chosen), tenant_id -> tenants,
 *           name TEXT UNIQUE, region, created_ms, key_id -> keys (v3),
 *           default_sse (v3), default_kms_key_id -> keys (v3),
           versioning (v6: 0 off, 1 enabled, 2 suspended),
           object_lock, lock_default_mode, lock_default_days,
           lock_default_years, lifecycle TEXT, lifecycle_digest BLOB (v6),
           placement TEXT (v7))
 *   retired_buckets(id INTEGER PK)     ids of deleted buckets, never reused
 *   objects(bucket_id -> buckets, key BLOB, version_uid BLOB UNIQUE, size,
 *           etag, mtime_ms, content_type, content_encoding,
 *           content_language, content_disposition, cache_control, expires,
 *           user_meta_json, part_count, tags_json (v2), sse,
 *           kms_key_id -> keys, ssec_hmac (v3), seal, seal_bk_id,
 *           parts_digest (v5: the metadata seal; etag then empty),
 *           vseq, null_version, delete_marker, lock_mode,
 *           lock_until_ms, legal_hold (v6),
 *           PK(bucket_id, key, vseq DESC)) WITHOUT ROWID
 *     unique (bucket_id, key) WHERE null_version: one null version
 *   parts(version_uid -> objects(version_uid), part_no, blob_id BLOB UNIQUE,
 *         size, seg_size, dek_wrapped BLOB, etag, mtime_ms (v2; NULL in
 *         rows written by v1: read as the object's mtime),
 *         bk_id -> bucket_keys (v3; NULL: no bucket key, see keys.c),
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
 *   replicas(blob_id, backend, type, site, region, jurisdiction,
 *            remote_id, bytes, state, stored_ms, verified_ms, changed_ms,
 *            attempts, next_try_ms, PK(blob_id, backend)) WITHOUT ROWID
 *     index (backend, next_try_ms) WHERE state = pending: the async
 *     queue; (changed_ms) WHERE state != deleted: the start-up sweep (v7)
 *   replica_events(seq INTEGER PK, blob_id, backend, state, at_ms, note)
 *     index (blob_id, backend, seq): each replica's history       (v7)
 * Object keys are BLOBs: SQLite compares BLOBs with memcmp (then length),
 * which is exactly S3's UTF-8 byte order; objects is clustered on
 * (bucket_id, key, vseq DESC) so a listing page is one range scan of the
 * primary key, and a key's newest version its first row.
 *
 * Migrations: PRAGMA user_version is the schema version; migrations[i]
 * takes version i to i+1 in its own IMMEDIATE transaction together with the
 * version bump, so a crash leaves the database at some whole version.
 * A database newer than this code is refused (KURA_ESTATE); so is a file
 * whose application_id says it is not kura's.  Steps are only appended,
 * and a step that has shipped is never edited: a database migrated by an
 * older kura must open unchanged.
 *
 * The file and its -wal/-shm companions are mode 0600; a directory created
 * for them is 0700.
 *
 * Threading: called by the opener only, before the store is shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/fsutil.h"
#include "kura/log.h"
#include "sqlite_int.h"
#include "kura/banned.h"

#define APPLICATION_ID 1263882817 /* 0x4b555241, "KURA" */
#define STR_(x) #x
#define STR(x) STR_(x)

static const char *const migrations[] = {
	/* 0 -> 1: the initial schema. */
	"PRAGMA application_id = " STR(
		APPLICATION_ID) ";\n"
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

	/* 4 -> 5: metadata seals (docs/FORMAT.md §10) and row MACs (meta.h
	 * "Row MACs").  Existing rows keep a NULL MAC until the upgrade's
	 * first run gives them one (row_mac_upgrade).  Existing rows keep a
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
	 "ALTER TABLE tenants ADD COLUMN mac BLOB;\n"
	 "ALTER TABLE access_keys ADD COLUMN mac BLOB;\n"
	 "ALTER TABLE buckets ADD COLUMN mac BLOB;\n"
	 "ALTER TABLE keys ADD COLUMN mac BLOB;\n"
	 "ALTER TABLE key_versions ADD COLUMN mac BLOB;\n"
	 "ALTER TABLE bucket_keys ADD COLUMN mac BLOB;\n"
	 "INSERT INTO settings (name, value) SELECT 'seal_pending', x'01' "
	 "WHERE EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM "
	 "uploads) OR EXISTS (SELECT 1 FROM tenants);\n"),

	/* 5 -> 6: versions and Object Lock.  A key holds many versions,
	 * ordered by vseq (newest first in the primary key, so "the current
	 * version" and a version listing are both one range search); every
	 * existing row becomes its key's null version with vseq 1, unlocked.
	 * SQLite cannot change a primary key in place, so objects is
	 * rebuilt; its parts are set aside and put back around the swap,
	 * because dropping a table that rows still reference breaks their
	 * foreign key.  Buckets get their versioning state and Object Lock
	 * configuration, uploads the lock their object will get. */
	("CREATE TEMP TABLE parts_v5 AS SELECT * FROM parts;\n"
	 "DELETE FROM parts;\n"
	 "CREATE TABLE objects_v6 (\n"
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
	 "  tags_json TEXT,\n"
	 "  sse INTEGER NOT NULL DEFAULT 0,\n"
	 "  kms_key_id INTEGER REFERENCES keys(id),\n"
	 "  ssec_hmac BLOB,\n"
	 "  seal BLOB,\n"
	 "  seal_bk_id INTEGER,\n"
	 "  parts_digest BLOB,\n"
	 "  vseq INTEGER NOT NULL CHECK (vseq >= 1),\n"
	 "  null_version INTEGER NOT NULL CHECK (null_version IN (0, 1)),\n"
	 "  delete_marker INTEGER NOT NULL CHECK (delete_marker IN (0, 1)),\n"
	 "  lock_mode INTEGER NOT NULL CHECK (lock_mode IN (0, 1, 2)),\n"
	 "  lock_until_ms INTEGER NOT NULL,\n"
	 "  legal_hold INTEGER NOT NULL CHECK (legal_hold IN (0, 1)),\n"
	 "  PRIMARY KEY (bucket_id, key, vseq DESC)\n"
	 ") WITHOUT ROWID, STRICT;\n"
	 "INSERT INTO objects_v6 SELECT bucket_id, key, version_uid, size, "
	 "etag, mtime_ms, content_type, content_encoding, content_language, "
	 "content_disposition, cache_control, expires, user_meta_json, "
	 "part_count, tags_json, sse, kms_key_id, ssec_hmac, seal, seal_bk_id, "
	 "parts_digest, 1, 1, 0, 0, 0, 0 FROM objects;\n"
	 "DROP TABLE objects;\n"
	 "ALTER TABLE objects_v6 RENAME TO objects;\n"
	 "INSERT INTO parts SELECT * FROM parts_v5;\n"
	 "DROP TABLE parts_v5;\n"
	 "CREATE INDEX objects_seal_bk ON objects(seal_bk_id, bucket_id);\n"
	 "CREATE UNIQUE INDEX objects_null ON objects(bucket_id, key) "
	 "WHERE null_version = 1;\n"
	 "CREATE INDEX objects_locked ON objects(bucket_id) WHERE "
	 "legal_hold = 1 OR lock_mode != 0;\n"
	 "ALTER TABLE buckets ADD COLUMN versioning INTEGER NOT NULL DEFAULT 0 "
	 "CHECK (versioning IN (0, 1, 2));\n"
	 "ALTER TABLE buckets ADD COLUMN object_lock INTEGER NOT NULL DEFAULT 0 "
	 "CHECK (object_lock IN (0, 1));\n"
	 "ALTER TABLE buckets ADD COLUMN lock_default_mode INTEGER NOT NULL "
	 "DEFAULT 0 CHECK (lock_default_mode IN (0, 1, 2));\n"
	 "ALTER TABLE buckets ADD COLUMN lock_default_days INTEGER NOT NULL "
	 "DEFAULT 0;\n"
	 "ALTER TABLE buckets ADD COLUMN lock_default_years INTEGER NOT NULL "
	 "DEFAULT 0;\n"
	 "ALTER TABLE uploads ADD COLUMN lock_mode INTEGER NOT NULL DEFAULT 0;\n"
	 "ALTER TABLE uploads ADD COLUMN lock_until_ms INTEGER NOT NULL "
	 "DEFAULT 0;\n"
	 "ALTER TABLE uploads ADD COLUMN legal_hold INTEGER NOT NULL DEFAULT 0;\n"
	 "ALTER TABLE buckets ADD COLUMN lifecycle TEXT;\n"
	 "ALTER TABLE buckets ADD COLUMN lifecycle_digest BLOB CHECK "
	 "(lifecycle_digest IS NULL OR length(lifecycle_digest) = 32);\n"),

	/* 6 -> 7: placement.  Buckets name their policy (NULL: made before
	 * placement, the "default" one); every copy of every blob gets a
	 * row, and each change of its state an event (the location
	 * evidence of A-10).  Blobs written before keep no rows: they are
	 * on the local backend. */
	("ALTER TABLE buckets ADD COLUMN placement TEXT CHECK (placement IS "
	 "NULL OR length(placement) BETWEEN 1 AND 32);\n"
	 "CREATE TABLE replicas (\n"
	 "  blob_id BLOB NOT NULL CHECK (length(blob_id) = 16),\n"
	 "  backend TEXT NOT NULL CHECK (length(backend) BETWEEN 1 AND 32),\n"
	 "  type TEXT NOT NULL,\n"
	 "  site TEXT NOT NULL,\n"
	 "  region TEXT NOT NULL,\n"
	 "  jurisdiction TEXT NOT NULL,\n"
	 "  remote_id TEXT NOT NULL,\n"
	 "  bytes INTEGER NOT NULL CHECK (bytes >= 0),\n"
	 "  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),\n"
	 "  stored_ms INTEGER NOT NULL,\n"
	 "  verified_ms INTEGER NOT NULL,\n"
	 "  changed_ms INTEGER NOT NULL,\n"
	 "  attempts INTEGER NOT NULL,\n"
	 "  next_try_ms INTEGER NOT NULL,\n"
	 "  PRIMARY KEY (blob_id, backend)\n"
	 ") WITHOUT ROWID, STRICT;\n"
	 "CREATE INDEX replicas_pending ON replicas(backend, next_try_ms) "
	 "WHERE state = 0;\n"
	 "CREATE INDEX replicas_recent ON replicas(changed_ms) WHERE "
	 "state != 4;\n"
	 "CREATE TABLE replica_events (\n"
	 "  seq INTEGER PRIMARY KEY,\n"
	 "  blob_id BLOB NOT NULL CHECK (length(blob_id) = 16),\n"
	 "  backend TEXT NOT NULL,\n"
	 "  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),\n"
	 "  at_ms INTEGER NOT NULL,\n"
	 "  note TEXT NOT NULL\n"
	 ") STRICT;\n"
	 "CREATE INDEX replica_events_blob ON replica_events(blob_id, backend, "
	 "seq);\n"),
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const struct sq_sql sql_commit_migration = {
	.what = "commit migration",
	.text = "COMMIT",
};

static enum kura_err pragma_int(struct sq_conn *c, const char *sql, int *out,
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
		r = sq_sqlite_fail(err, c->db, rc, sql);
	sqlite3_finalize(s);
	return r;
}

/* The version of the database inside the write transaction; refuses a
 * file that is not kura's or is newer than this code. */
static enum kura_err schema_version(struct sq_store *m, struct sq_conn *c,
				    int *version, struct kura_error *err)
{
	int app = 0, objects = 0;
	enum kura_err r;

	r = pragma_int(c, "PRAGMA user_version", version, err);
	if (r == KURA_OK)
		r = pragma_int(c, "PRAGMA application_id", &app, err);
	if (r == KURA_OK)
		r = pragma_int(c, "SELECT count(*) FROM sqlite_schema",
			       &objects, err);
	if (r != KURA_OK)
		return r;
	if ((*version > 0 || app != 0 || objects > 0) && app != APPLICATION_ID)
		return kura_fail(err, KURA_ESTATE,
				 "'%s' is not a kura metadata database",
				 m->path);
	if (*version > SCHEMA_VERSION || *version < 0)
		return kura_fail(err, KURA_ESTATE,
				 "'%s' has schema version %d, newer than this "
				 "kura understands (%d)",
				 m->path, *version, SCHEMA_VERSION);
	return KURA_OK;
}

/* One migration step, or nothing when the schema is current.  *done is set
 * when no step was needed. */
static enum kura_err migrate_step(struct sq_store *m, struct sq_conn *c,
				  bool *done, struct kura_error *err)
{
	int version = 0;
	char bump[64];
	char *msg = NULL;
	enum kura_err r;
	int rc;

	r = sq_tx_begin(c, true, err);
	if (r != KURA_OK)
		return r;
	/* Read inside the write transaction: another process may be
	 * migrating the same file. */
	r = schema_version(m, c, &version, err);
	if (r != KURA_OK)
		goto out;
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
		r = kura_fail(err, sq_map_rc(rc),
			      "sqlite: migrate '%s' to version %d: %s", m->path,
			      version + 1,
			      msg != NULL ? msg : sqlite3_errmsg(c->db));
		goto out;
	}
	r = sq_exec_sql(c, &sql_commit_migration, err);
	if (r == KURA_OK)
		kura_info(NULL, "meta: '%s' migrated to schema version %d",
			  m->path, version + 1);
	*done = false;
out:
	sqlite3_free(msg);
	sq_tx_rollback(c);
	return r;
}

static enum kura_err set_wal(struct sq_store *m, struct sq_conn *c,
			     struct kura_error *err)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &s,
				    NULL);
	enum kura_err r = KURA_OK;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = sq_sqlite_fail(err, c->db, rc, "set journal_mode");
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

enum kura_err sq_schema_upgrade(struct sq_store *m, struct sq_conn *c,
				struct kura_error *err)
{
	bool done = false;
	enum kura_err r = set_wal(m, c, err);

	while (r == KURA_OK && !done)
		r = migrate_step(m, c, &done, err);
	return r;
}

/* Create the file with mode 0600 (SQLite would use 0644 & ~umask, and its
 * -wal and -shm files copy the main file's mode) and tighten an existing
 * one. */
enum kura_err sq_prepare_file(const char *path, struct kura_error *err)
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
		r = kura_fail(err, KURA_EIO, "'%s' is not a regular file",
			      path);
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

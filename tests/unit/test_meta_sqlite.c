/*
 * test_meta_sqlite.c — what only the SQLite metadata store has: its file
 * (modes, WAL, a foreign or newer database refused), its migrations from
 * frozen old schemas (the verbatim SQL of migrations 1 and 2 with rows as
 * those schemas wrote them), its query plans, timings on databases
 * bulk-loaded with raw SQL, and its statement helper (sticky error,
 * statement cache) tested directly through sqlite_int.h.  The behaviour
 * every store shares is tested by the conformance suite (test_meta.c,
 * test_meta_uploads.c, test_meta_keys.c), which runs on SQLite too.
 *
 * test_statement_plans runs every operation, then checks the plan of each
 * statement the store ran, as its connection cached it (not a copy of its
 * text): an index search without a sort, unless on a short list of walks
 * that are meant.
 *
 * The large-listing test bulk-loads rows with plain SQL in big
 * transactions and times the first page; KURA_META_BENCH_ROWS overrides
 * its 100000 rows (1000000 for the figure in docs/METADATA.md).  It then
 * lists the first page 200 times (KURA_META_BENCH_PAGES) and prints the
 * median, a steadier figure for comparing builds.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "meta_fixture.h"
#include "../../src/meta/sqlite/sqlite_int.h"
#include "kura/banned.h"

/* The schema version this code writes (migrations[] in
 * src/meta/sqlite/schema.c). */
#define SCHEMA_NOW 7
#define STR_(x) #x
#define STR(x) STR_(x)

static int sql_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int v = -1;

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static void sql_exec(const char *db, const char *sql)
{
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open_v2(db, &h,
					 SQLITE_OPEN_READWRITE |
						 SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(h, 10000);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/* ------------------------------------------------------------------ */
/* open, migrations, file modes                                       */

static void test_migrate_reopen(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_meta *m2 = NULL;
	struct stat st;
	uint8_t buf[16];
	size_t len = 0;

	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sql_int(f->db, "PRAGMA user_version"), SCHEMA_NOW);
	assert_int_equal(sql_int(f->db, "PRAGMA application_id"), 0x4b555241);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_schema "
					"WHERE name = 'objects'"),
			 1);

	assert_int_equal(f->ops->setting_insert(f->priv, "marker",
						(const uint8_t *)"v1", 2, &err),
			 KURA_OK);
	fx_close(f);
	/* -wal and -shm (if any remain) are private too. */
	{
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s-wal", f->db);
		if (stat(p, &st) == 0)
			assert_int_equal(st.st_mode & 0777, 0600);
	}
	fx_open(f);
	assert_int_equal(sql_int(f->db, "SELECT journal_mode = 'wal' FROM "
					"pragma_journal_mode"),
			 1);
	assert_int_equal(f->ops->setting_get(f->priv, "marker", buf,
					     sizeof(buf), &len, &err),
			 KURA_OK);
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "v1", 2);
	{
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s-wal", f->db);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	fx_close(f);

	/* A database from a newer kura is refused. */
	sql_exec(f->db, "PRAGMA user_version = 99");
	assert_int_equal(kura_meta_open(f->cfg, f->dir, &m2, &err),
			 KURA_ESTATE);
	assert_null(m2);
	kura_error_clear(&err);
	sql_exec(f->db, "PRAGMA user_version = " STR(SCHEMA_NOW));

	/* A file mode widened behind our back is tightened again. */
	assert_int_equal(chmod(f->db, 0644), 0);
	fx_open(f);
	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_open_errors(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_config *cfg = NULL;
	struct kura_meta *m = NULL;
	char path[PATH_MAX + 64], other[PATH_MAX + 64];
	struct stat st;

	/* Unknown driver. */
	assert_int_equal(kura_config_new(&cfg, &err), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "meta", "driver", "nosuch", &err),
			 KURA_OK);
	assert_int_equal(kura_meta_open(cfg, f->dir, &m, &err), KURA_ECONFIG);
	assert_null(m);
	kura_config_free(cfg);
	kura_error_clear(&err);

	/* Explicit [meta] path in a directory that does not exist yet. */
	snprintf(path, sizeof(path), "%s/sub/dir/x.db", f->dir);
	assert_int_equal(kura_config_new(&cfg, &err), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "meta", "path", path, &err),
			 KURA_OK);
	assert_int_equal(kura_meta_open(cfg, NULL, &m, &err), KURA_OK);
	kura_meta_close(m);
	m = NULL;
	kura_config_free(cfg);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(other, sizeof(other), "%s/sub/dir", f->dir);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	/* A SQLite file that is not ours. */
	snprintf(other, sizeof(other), "%s/foreign", f->dir);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(path, sizeof(path), "%s/foreign/meta.db", f->dir);
	sql_exec(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
	assert_int_equal(kura_meta_open(NULL, other, &m, &err), KURA_ESTATE);
	assert_null(m);
	kura_error_clear(&err);

	/* No path at all. */
	assert_int_equal(kura_meta_open(NULL, NULL, &m, &err), KURA_ECONFIG);
	assert_null(m);
}

/* ------------------------------------------------------------------ */
/* listing at scale                                                   */

/* Bulk-load rows with plain SQL in big transactions (the API commits and
 * fsyncs each object), keys "dNN/objNNNNNNNN" in a scrambled order. */
static void bulk_load(const char *db, uint64_t bucket, uint32_t rows)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int64_t bid;

	memcpy(&bid, &bucket, sizeof(bid));
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(h, 10000);
	assert_int_equal(sqlite3_exec(h, "PRAGMA synchronous = OFF", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(
				 h,
				 "INSERT INTO objects (bucket_id, key, "
				 "version_uid, size, etag, mtime_ms, "
				 "part_count, vseq, null_version, "
				 "delete_marker, lock_mode, lock_until_ms, "
				 "legal_hold) VALUES (?, ?, ?, ?, ?, ?, 0, 1, "
				 "1, 0, 0, 0, 0)",
				 -1, &s, NULL),
			 SQLITE_OK);
	for (uint32_t i = 0; i < rows; i++) {
		uint32_t j = (uint32_t)(((uint64_t)i * 7919u) % rows);
		char key[32];
		uint8_t uid[16] = { 0 };
		int kn;

		if (i % 100000 == 0)
			assert_int_equal(sqlite3_exec(h, "BEGIN", NULL, NULL,
						      NULL),
					 SQLITE_OK);
		kn = snprintf(key, sizeof(key), "d%02u/obj%08u", j % 100, j);
		memcpy(uid, &j, sizeof(j));
		uid[15] = 0xb1;
		sqlite3_bind_int64(s, 1, bid);
		sqlite3_bind_blob(s, 2, key, kn, SQLITE_TRANSIENT);
		sqlite3_bind_blob(s, 3, uid, 16, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 4, 0);
		sqlite3_bind_text(s, 5, "d41d8cd98f00b204e9800998ecf8427e", -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(s, 6, 1700000000000 + j);
		assert_int_equal(sqlite3_step(s), SQLITE_DONE);
		sqlite3_reset(s);
		if (i % 100000 == 99999 || i + 1 == rows)
			assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL,
						      NULL),
					 SQLITE_OK);
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
}

static double time_list(struct fx *f, const char *prefix, const char *after,
			size_t limit, size_t want, const char *first)
{
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object *e = NULL;
	size_t cnt = 0;
	double t0 = now_ms(), dt;

	assert_int_equal(f->ops->object_list(f->priv, f->bucket, prefix,
					     prefix ? strlen(prefix) : 0, after,
					     after ? strlen(after) : 0, limit,
					     pool, &e, &cnt, &err),
			 KURA_OK);
	dt = now_ms() - t0;
	assert_int_equal(cnt, want);
	if (first != NULL) {
		assert_int_equal(e[0].key_len, strlen(first));
		assert_memory_equal(e[0].key, first, strlen(first));
	}
	for (size_t i = 1; i < cnt; i++)
		assert_true(bytes_cmp(e[i - 1].key, e[i - 1].key_len, e[i].key,
				      e[i].key_len) < 0);
	kura_pool_free(pool);
	return dt;
}

static int double_cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* The median time of n listings of the first page of 1000. */
static double median_page(struct fx *f, unsigned n)
{
	double *t = calloc(n, sizeof(*t)), m;

	assert_non_null(t);
	for (unsigned i = 0; i < n; i++)
		t[i] = time_list(f, NULL, NULL, 1000, 1000, NULL);
	qsort(t, n, sizeof(*t), double_cmp);
	m = t[n / 2];
	free(t);
	return m;
}

static void test_list_large(void **state)
{
	struct fx *f = *state;
	const char *env = getenv("KURA_META_BENCH_ROWS");
	uint32_t rows = 100000;
	unsigned pages = 200;
	double t0, load, first, cold, pre, aft, tail;
	char after[32];
	size_t in_prefix = 0, past_after = 0;

	if (env != NULL && env[0] != '\0') {
		unsigned long v = strtoul(env, NULL, 10);
		if (v >= 1000 && v <= 100000000)
			rows = (uint32_t)v;
	}
	env = getenv("KURA_META_BENCH_PAGES");
	if (env != NULL && env[0] != '\0') {
		unsigned long v = strtoul(env, NULL, 10);
		if (v >= 1 && v <= 100000)
			pages = (unsigned)v;
	}
	/* Expected counts for prefix "d57/" and for after = its middle. */
	for (uint32_t j = 57; j < rows; j += 100) {
		in_prefix++;
		if (j > rows / 2)
			past_after++;
	}
	snprintf(after, sizeof(after), "d57/obj%08u", rows / 2);
	t0 = now_ms();
	bulk_load(f->db, f->bucket, rows);
	load = now_ms() - t0;

	first = time_list(f, NULL, NULL, 1000, 1000, "d00/obj00000000");
	/* Fresh connections: no statement or page cache of ours. */
	fx_close(f);
	fx_open(f);
	cold = time_list(f, NULL, NULL, 1000, 1000, "d00/obj00000000");
	pre = time_list(f, "d57/", NULL, 1000,
			in_prefix < 1000 ? in_prefix : 1000, "d57/obj00000057");
	aft = time_list(f, "d57/", after, 1000,
			past_after < 1000 ? past_after : 1000, NULL);
	tail = time_list(f, "d99/obj", "d99/obj99999999", 1000, 0, NULL);
	print_message("# meta list, %u rows (loaded in %.0f ms): first page of "
		      "1000 %.2f ms, after reopen %.2f ms, prefix %.2f ms, "
		      "prefix+after %.2f ms, empty tail %.2f ms\n",
		      rows, load, first, cold, pre, aft, tail);
	print_message("# meta list, first page of 1000, median of %u: "
		      "%.3f ms\n",
		      pages, median_page(f, pages));
	/* Generous bounds (sanitizers, loaded CI machines); a full scan of
	 * the table would take far longer than this. */
	assert_true(first < 500.0);
	assert_true(cold < 500.0);
	assert_true(pre < 500.0);
	assert_true(aft < 500.0);
	assert_true(tail < 500.0);

	/* The plan is a primary-key range search, not a scan. */
	{
		sqlite3 *h = NULL;
		sqlite3_stmt *s = NULL;
		char plan[512] = "";
		assert_int_equal(sqlite3_open_v2(f->db, &h,
						 SQLITE_OPEN_READONLY, NULL),
				 SQLITE_OK);
		assert_int_equal(
			sqlite3_prepare_v2(
				h,
				"EXPLAIN QUERY PLAN SELECT key, size, etag, "
				"mtime_ms FROM objects WHERE bucket_id = ?1 "
				"AND key > ?2 AND key < ?3 ORDER BY key "
				"LIMIT ?4",
				-1, &s, NULL),
			SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(s, 3);
			size_t used = strlen(plan);
			snprintf(plan + used, sizeof(plan) - used, "%s;",
				 d != NULL ? d : "");
		}
		sqlite3_finalize(s);
		sqlite3_close(h);
		print_message("# plan: %s\n", plan);
		assert_non_null(strstr(plan, "SEARCH objects USING PRIMARY KEY "
					     "(bucket_id=? AND key>? AND "
					     "key<?)"));
		assert_null(strstr(plan, "TEMP B-TREE"));
	}
}

/* ------------------------------------------------------------------ */
/* migration from schema version 1                                    */

/* Migration 1 of src/meta/sqlite/schema.c, verbatim: shipped steps are never
 * edited, and test_migrate_v1 checks that migrating a database made from
 * this text ends with the very schema a fresh database gets. */
static const char v1_schema[] =
	"PRAGMA application_id = 1263882817;\n"
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
	") WITHOUT ROWID, STRICT;\n";

/* Data as kura schema 1 wrote it: a tenant, a bucket (id 7), object "old"
 * with parts 1 and 2 (blobs 01.., 02..), a queued blob 03.., a setting. */
static const char v1_data[] =
	"BEGIN;\n"
	"INSERT INTO tenants (name, created_ms) VALUES ('t1', 5);\n"
	"INSERT INTO buckets VALUES (7, 1, 'legacy', 'us-east-1', 6, 'kek-1', "
	"x'0102');\n"
	"INSERT INTO objects (bucket_id, key, version_uid, size, etag, "
	"mtime_ms, content_type, user_meta_json, part_count) VALUES (7, "
	"CAST('old' AS BLOB), x'aa000000000000000000000000000001', 30, "
	"'e-old', 1600000000000, 'text/plain', '{\"a\":\"b\"}', 2);\n"
	"INSERT INTO parts VALUES (x'aa000000000000000000000000000001', 1, "
	"x'01000000000000000000000000000000', 10, 65536, zeroblob(60), "
	"'p1');\n"
	"INSERT INTO parts VALUES (x'aa000000000000000000000000000001', 2, "
	"x'02000000000000000000000000000000', 20, 65536, zeroblob(60), "
	"'p2');\n"
	"INSERT INTO gc VALUES (x'03000000000000000000000000000000');\n"
	"INSERT INTO settings VALUES ('marker', x'7631');\n"
	"PRAGMA user_version = 1;\n"
	"COMMIT;\n";

/* What the daemon does on the upgrade's first run: rows written before
 * schema 5 wait for their MAC (KURA_EBUSY while the marker is set, an
 * integrity failure without it), then get it. */
static void upgrade_row_macs(struct kura_meta *m, const char *db)
{
	struct kura_error err = { 0 };
	struct kura_tenant t;
	size_t rows = 0;
	int before = sql_int(db, "SELECT count(*) FROM tenants") +
		     sql_int(db, "SELECT count(*) FROM access_keys") +
		     sql_int(db, "SELECT count(*) FROM buckets") +
		     sql_int(db, "SELECT count(*) FROM keys") +
		     sql_int(db, "SELECT count(*) FROM key_versions") +
		     sql_int(db, "SELECT count(*) FROM bucket_keys");

	assert_int_equal(m->ops->set_row_key(m->priv, fx_row_key, &err),
			 KURA_OK);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM settings WHERE "
				     "name = 'seal_pending'"),
			 1);
	assert_int_equal(m->ops->tenant_get(m->priv, 1, &t, &err), KURA_EBUSY);
	sql_exec(db, "DELETE FROM settings WHERE name = 'seal_pending'");
	assert_int_equal(m->ops->tenant_get(m->priv, 1, &t, &err),
			 KURA_EINTEGRITY);
	sql_exec(db, "INSERT INTO settings (name, value) VALUES "
		     "('seal_pending', x'01')");
	assert_int_equal(m->ops->row_mac_upgrade(m->priv, &rows, &err),
			 KURA_OK);
	assert_int_equal(rows, (size_t)before);
	assert_true(before > 0);
	assert_int_equal(m->ops->tenant_get(m->priv, 1, &t, &err), KURA_OK);
	/* Nothing is left to give a MAC to. */
	assert_int_equal(m->ops->row_mac_upgrade(m->priv, &rows, &err),
			 KURA_OK);
	assert_int_equal(rows, 0);
}

/* The schema as text, malloc'd: every table and index definition. */
static char *schema_text(const char *db)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	char *out = NULL;

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(
				 h,
				 "SELECT group_concat(type || ' ' || name || "
				 "': ' || coalesce(sql, ''), char(10)) FROM "
				 "(SELECT * FROM sqlite_schema ORDER BY name)",
				 -1, &s, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	out = strdup((const char *)sqlite3_column_text(s, 0));
	assert_non_null(out);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return out;
}

static void test_migrate_v1(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_meta *m = NULL;
	const struct kura_meta_ops *ops;
	struct kura_object *got = NULL;
	struct kura_upload u = { 0 };
	struct kura_part p = { 0 };
	char dir[PATH_MAX + 16], db[PATH_MAX + 32];
	char *fresh, *migrated;
	uint8_t id[16] = { 0 }, buf[8];
	size_t len = 0;
	bool ref = false;

	assert_non_null(pool);
	snprintf(dir, sizeof(dir), "%s/v1", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(db, sizeof(db), "%s/meta.db", dir);
	sql_exec(db, v1_schema);
	sql_exec(db, v1_data);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 1);

	assert_int_equal(kura_meta_open(NULL, dir, &m, &err), KURA_OK);
	ops = m->ops;
	assert_int_equal(sql_int(db, "PRAGMA user_version"), SCHEMA_NOW);
	upgrade_row_macs(m, db);
	/* Migrating gives exactly the schema of a fresh database. */
	fresh = schema_text(f->db);
	migrated = schema_text(db);
	assert_string_equal(migrated, fresh);
	free(fresh);
	free(migrated);

	/* The old rows read back, with the new fields defaulted. */
	assert_int_equal(ops->setting_get(m->priv, "marker", buf, sizeof(buf),
					  &len, &err),
			 KURA_OK);
	assert_int_equal(len, 2);
	assert_int_equal(ops->object_get(m->priv, 7, "old", 3, pool, &got,
					 &err),
			 KURA_OK);
	assert_int_equal(got->size, 30);
	assert_string_equal(got->etag, "e-old");
	assert_string_equal(got->content_type, "text/plain");
	assert_string_equal(got->user_meta_json, "{\"a\":\"b\"}");
	assert_null(got->tags_json);
	assert_int_equal(got->part_count, 2);
	assert_int_equal(got->parts[0].part_no, 1);
	assert_int_equal(got->parts[1].size, 20);
	assert_string_equal(got->parts[1].etag, "p2");
	assert_int_equal(got->parts[0].mtime_ms, 1600000000000);
	assert_int_equal(got->parts[1].mtime_ms, 1600000000000);
	id[0] = 3;
	assert_int_equal(ops->blob_referenced(m->priv, id, &ref, &err),
			 KURA_OK);
	assert_true(ref);

	/* The new operations work on the migrated file. */
	assert_int_equal(ops->object_set_tags(
				 m->priv, 7, "old", 3, got->version_uid, NULL,
				 0, "{\"k\":\"v\"}", NULL, 0, 0, &err),
			 KURA_OK);
	snprintf(u.id, sizeof(u.id), "legacy-upload");
	u.bucket_id = 7;
	u.key = "new";
	u.key_len = 3;
	u.version_uid[0] = 0xbb;
	u.created_ms = 9;
	assert_int_equal(ops->upload_create(m->priv, &u, &err), KURA_OK);
	p.part_no = 1;
	p.blob_id[0] = 4;
	p.size = 5;
	p.mtime_ms = 11;
	snprintf(p.etag, sizeof(p.etag), "p");
	/* The migrated bucket key, which the old parts use too. */
	p.bk_id = got->parts[0].bk_id;
	assert_true(p.bk_id != 0);
	assert_int_equal(got->parts[1].bk_id, p.bk_id);
	{
		struct kura_bucket_key bk;
		if (ops->bucket_key_get(m->priv, p.bk_id, &bk, &err) != KURA_OK)
			fail_msg("bucket_key_get: %s", err.msg);
		assert_int_equal(bk.bucket_id, 7);
		assert_string_equal(bk.kek_id, "kek-1");
		assert_int_equal(bk.wrapped_len, 2);
		assert_memory_equal(bk.wrapped, "", 2);
	}
	assert_int_equal(ops->upload_put_part(m->priv, 7, "legacy-upload", &p,
					      &err),
			 KURA_OK);
	/* A blob of a v1 part cannot be reused by an upload. */
	p.part_no = 2;
	p.blob_id[0] = 1;
	assert_int_equal(ops->upload_put_part(m->priv, 7, "legacy-upload", &p,
					      &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	kura_meta_close(m);

	/* And it all survives a reopen. */
	m = NULL;
	assert_int_equal(kura_meta_open(NULL, dir, &m, &err), KURA_OK);
	got = NULL;
	assert_int_equal(m->ops->object_get(m->priv, 7, "old", 3, pool, &got,
					    &err),
			 KURA_OK);
	assert_string_equal(got->tags_json, "{\"k\":\"v\"}");
	{
		struct kura_part *parts = NULL;
		size_t n = 0;
		assert_int_equal(m->ops->upload_list_parts(
					 m->priv, 7, "legacy-upload", 0, 10,
					 pool, &parts, &n, &err),
				 KURA_OK);
		assert_int_equal(n, 1);
		assert_int_equal(parts[0].mtime_ms, 11);
	}
	kura_meta_close(m);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* multipart uploads at scale, upload plans                           */

/* The largest upload: KURA_MAX_PARTS parts (bulk-loaded with plain SQL,
 * as the API fsyncs each part), listed in pages and completed with every
 * other part.  Completion moves rows only; it is timed. */
static void test_upload_complete_large(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_part *all = calloc(KURA_MAX_PARTS, sizeof(*all));
	struct kura_part *chosen = calloc(KURA_MAX_PARTS, sizeof(*chosen));
	struct kura_upload u;
	struct kura_object o, *got = NULL;
	uint32_t n = 0, nc = 0;
	double t0, dt;

	assert_non_null(pool);
	assert_non_null(all);
	assert_non_null(chosen);
	make_upload(&u, f->bucket, "huge", 4, "HUGE", 700, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	{
		sqlite3 *h = NULL;
		sqlite3_stmt *s = NULL;
		assert_int_equal(sqlite3_open_v2(f->db, &h,
						 SQLITE_OPEN_READWRITE, NULL),
				 SQLITE_OK);
		sqlite3_busy_timeout(h, 10000);
		assert_int_equal(sqlite3_prepare_v2(
					 h,
					 "INSERT INTO upload_parts VALUES (?, "
					 "?, ?, 10, 65536, zeroblob(60), ?, "
					 "?, ?, NULL, NULL)",
					 -1, &s, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL),
				 SQLITE_OK);
		for (uint32_t i = 1; i <= KURA_MAX_PARTS; i++) {
			struct kura_part p;
			make_part(&p, i, 700, i);
			sqlite3_bind_blob(s, 1, u.version_uid, 16,
					  SQLITE_STATIC);
			sqlite3_bind_int64(s, 2, i);
			sqlite3_bind_blob(s, 3, p.blob_id, 16,
					  SQLITE_TRANSIENT);
			sqlite3_bind_text(s, 4, p.etag, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(s, 5, p.mtime_ms);
			sqlite3_bind_int64(s, 6, (int64_t)f->bk);
			assert_int_equal(sqlite3_step(s), SQLITE_DONE);
			sqlite3_reset(s);
		}
		assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL),
				 SQLITE_OK);
		sqlite3_finalize(s);
		sqlite3_close(h);
	}
	/* Pages of 1000, as ListParts would. */
	for (;;) {
		struct kura_part *page = NULL;
		size_t cnt = list_parts(f, "HUGE",
					n > 0 ? all[n - 1].part_no : 0, 1000,
					pool, &page);
		assert_true(n + cnt <= KURA_MAX_PARTS);
		if (cnt > 0)
			memcpy(&all[n], page, cnt * sizeof(*page));
		n += (uint32_t)cnt;
		if (cnt < 1000)
			break;
	}
	assert_int_equal(n, KURA_MAX_PARTS);
	for (uint32_t i = 0; i < n; i += 2)
		chosen[nc++] = all[i];
	completed_object(&o, f->bucket, "huge", 700, chosen, nc);
	t0 = now_ms();
	assert_int_equal(f->ops->upload_complete(f->priv, "HUGE", &o, NULL,
						 &err),
			 KURA_OK);
	dt = now_ms() - t0;
	print_message("# complete %u of %u parts: %.1f ms\n", nc, n, dt);
	assert_true(dt < 5000.0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "huge", 4, pool,
					    &got, &err),
			 KURA_OK);
	assert_int_equal(got->part_count, nc);
	assert_int_equal(got->parts[nc - 1].part_no, KURA_MAX_PARTS - 1);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM gc"),
			 KURA_MAX_PARTS - (int)nc);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM upload_parts"),
			 0);
	free(all);
	free(chosen);
	kura_pool_free(pool);
}

/* Both upload scans are index searches, never a sort. */
static void test_upload_plans(void **state)
{
	struct fx *f = *state;

	static const char *const queries[] = {
		"EXPLAIN QUERY PLAN SELECT * FROM uploads WHERE "
		"bucket_id = ?1 AND (key, id) > (?2, ?3) AND key < ?4 "
		"ORDER BY key, id LIMIT ?5",
		"EXPLAIN QUERY PLAN SELECT * FROM uploads WHERE "
		"created_ms < ?1 ORDER BY created_ms, id LIMIT ?2",
	};
	static const char *const want[] = {
		"SEARCH uploads USING INDEX uploads_key (bucket_id=? "
		"AND (key,id)>(?,?) AND key<?)",
		"SEARCH uploads USING INDEX uploads_created "
		"(created_ms<?)",
	};
	sqlite3 *h = NULL;
	assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	for (size_t q = 0; q < ARRAY_LEN(queries); q++) {
		sqlite3_stmt *s = NULL;
		char plan[512] = "";
		assert_int_equal(sqlite3_prepare_v2(h, queries[q], -1, &s,
						    NULL),
				 SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(s, 3);
			size_t used = strlen(plan);
			snprintf(plan + used, sizeof(plan) - used, "%s;",
				 d != NULL ? d : "");
		}
		sqlite3_finalize(s);
		if (strstr(plan, want[q]) == NULL ||
		    strstr(plan, "TEMP B-TREE") != NULL)
			fail_msg("plan: %s", plan);
	}
	sqlite3_close(h);
}

/* ------------------------------------------------------------------ */
/* key management (schema 3)                                          */

/* Migration 2 of src/meta/sqlite/schema.c, verbatim (see v1_schema). */
static const char v2_step[] =
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
	") WITHOUT ROWID, STRICT;\n";

#define UID_A "x'aa000000000000000000000000000001'"
#define UID_B "x'aa000000000000000000000000000002'"
#define UID_U "x'bb000000000000000000000000000001'"

/* Data as kura schema 2 wrote it: tenants t1, t2; bucket 7 "legacy" (t1)
 * and bucket -5 (0xff..fb) "neg" (t2); object "old" of bucket 7 with parts
 * 1, 2 (blobs 01.., 02..; part 2 from schema 1, without a time); object
 * "x" of bucket -5 with part 0 (blob 05..); upload "up-1" of bucket 7 with
 * parts 1, 3 (blobs 11.., 13..); queued blob 03..; retired bucket 99. */
static const char v2_data[] =
	"BEGIN;\n"
	"INSERT INTO tenants (name, created_ms) VALUES ('t1', 5);\n"
	"INSERT INTO tenants (name, created_ms) VALUES ('t2', 6);\n"
	"INSERT INTO buckets VALUES (7, 1, 'legacy', 'us-east-1', 6, "
	"'kek-legacy', x'0102030405');\n"
	"INSERT INTO buckets VALUES (-5, 2, 'neg', 'eu-west-1', 8, 'kek-neg', "
	"x'aabbcc');\n"
	"INSERT INTO retired_buckets VALUES (99);\n"
	"INSERT INTO objects (bucket_id, key, version_uid, size, etag, "
	"mtime_ms, content_type, part_count, tags_json) VALUES (7, "
	"CAST('old' AS BLOB), " UID_A ", 30, 'e-old', 1600000000000, "
	"'text/plain', 2, '{\"t\":\"1\"}');\n"
	"INSERT INTO parts VALUES (" UID_A ", 1, "
	"x'01000000000000000000000000000000', 10, 65536, zeroblob(60), 'p1', "
	"1600000000001);\n"
	"INSERT INTO parts VALUES (" UID_A ", 2, "
	"x'02000000000000000000000000000000', 20, 65536, zeroblob(60), 'p2', "
	"NULL);\n"
	"INSERT INTO objects (bucket_id, key, version_uid, size, etag, "
	"mtime_ms, part_count) VALUES (-5, CAST('x' AS BLOB), " UID_B ", 5, "
	"'e-x', 1600000000002, 1);\n"
	"INSERT INTO parts VALUES (" UID_B ", 0, "
	"x'05000000000000000000000000000000', 5, 65536, zeroblob(60), 'p0', "
	"1600000000002);\n"
	"INSERT INTO uploads (id, bucket_id, key, version_uid, created_ms, "
	"content_type) VALUES ('up-1', 7, CAST('big' AS BLOB), " UID_U ", "
	"100, 'video/mp4');\n"
	"INSERT INTO upload_parts VALUES (" UID_U ", 1, "
	"x'11000000000000000000000000000000', 7, 65536, zeroblob(60), 'u1', "
	"101);\n"
	"INSERT INTO upload_parts VALUES (" UID_U ", 3, "
	"x'13000000000000000000000000000000', 9, 65536, zeroblob(60), 'u3', "
	"103);\n"
	"INSERT INTO gc VALUES (x'03000000000000000000000000000000');\n"
	"PRAGMA user_version = 2;\n"
	"COMMIT;\n";

static void test_migrate_v2(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_meta *m = NULL;
	const struct kura_meta_ops *ops;
	void *priv;
	struct kura_key k, kn;
	struct kura_key_version *vers = NULL;
	struct kura_bucket b;
	struct kura_bucket_key bk, bkn, *bks = NULL;
	struct kura_object *got = NULL;
	struct kura_upload *up = NULL;
	struct kura_part *parts = NULL;
	struct kura_rewrap *rw = NULL;
	char dir[PATH_MAX + 16], db[PATH_MAX + 32];
	char *fresh, *migrated;
	uint8_t zero[KURA_SSEC_HMAC_LEN] = { 0 }, id[16] = { 0 };
	uint64_t g = 0;
	size_t n = 0;
	bool ref = false;

	assert_non_null(pool);
	snprintf(dir, sizeof(dir), "%s/v2", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(db, sizeof(db), "%s/meta.db", dir);
	sql_exec(db, v1_schema);
	sql_exec(db, v2_step);
	sql_exec(db, v2_data);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 2);

	assert_int_equal(kura_meta_open(NULL, dir, &m, &err), KURA_OK);
	ops = m->ops;
	priv = m->priv;
	assert_int_equal(sql_int(db, "PRAGMA user_version"), SCHEMA_NOW);
	upgrade_row_macs(m, db);
	fresh = schema_text(f->db);
	migrated = schema_text(db);
	assert_string_equal(migrated, fresh);
	free(fresh);
	free(migrated);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM "
				     "pragma_foreign_key_check"),
			 0);
	assert_int_equal(sql_int(db, "SELECT integrity_check = 'ok' FROM "
				     "pragma_integrity_check"),
			 1);
	/* The old columns are gone, not left behind. */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM "
				     "pragma_table_info('buckets') WHERE name "
				     "IN ('kek_id', 'key_wrapped')"),
			 0);

	/* Each bucket got its own key, version 1 = its KEK, and a current
	 * bucket key with its wrapped key. */
	assert_int_equal(ops->key_get_by_name(priv, 1, "bucket/legacy", &k,
					      &err),
			 KURA_OK);
	assert_int_equal(k.tenant_id, 1);
	assert_int_equal(k.kind, KURA_KEY_BUCKET);
	assert_int_equal(k.state, KURA_KEY_ENABLED);
	assert_int_equal(k.current_version, 1);
	assert_string_equal(k.provider, "local");
	assert_false(k.imported);
	assert_int_equal(k.created_ms, 6);
	assert_int_equal(ops->key_versions(priv, k.id, pool, &vers, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(vers[0].version, 1);
	assert_string_equal(vers[0].kek_id, "kek-legacy");
	assert_int_equal(vers[0].state, KURA_KEYVER_ACTIVE);
	assert_int_equal(vers[0].destroyed_ms, 0);
	assert_int_equal(ops->bucket_get(priv, "legacy", &b, &err), KURA_OK);
	assert_int_equal(b.key_id, k.id);
	assert_int_equal(b.default_sse, KURA_SSE_S3);
	assert_int_equal(b.default_kms_key_id, 0);
	assert_int_equal(ops->bucket_key_current(priv, 7, k.id, &bk, &err),
			 KURA_OK);
	assert_int_equal(bk.bucket_id, 7);
	assert_int_equal(bk.key_id, k.id);
	assert_int_equal(bk.key_version, 1);
	assert_int_equal(bk.wrapped_len, 5);
	assert_memory_equal(bk.wrapped, "\x01\x02\x03\x04\x05", 5);
	assert_true(bk.current);
	assert_int_equal(bk.retired_ms, 0);
	assert_int_equal(bk.tenant_id, 1);
	assert_string_equal(bk.kek_id, "kek-legacy");
	assert_int_equal(bk.key_state, KURA_KEY_ENABLED);
	assert_int_equal(bk.version_state, KURA_KEYVER_ACTIVE);

	assert_int_equal(ops->key_get_by_name(priv, 2, "bucket/neg", &kn, &err),
			 KURA_OK);
	assert_int_equal(ops->bucket_get(priv, "neg", &b, &err), KURA_OK);
	assert_true(b.id == 0xfffffffffffffffbull);
	assert_int_equal(b.tenant_id, 2);
	assert_int_equal(b.key_id, kn.id);
	assert_int_equal(ops->bucket_key_current(priv, b.id, kn.id, &bkn, &err),
			 KURA_OK);
	assert_int_equal(bkn.wrapped_len, 3);
	assert_string_equal(bkn.kek_id, "kek-neg");
	assert_int_equal(bkn.tenant_id, 2);
	assert_true(bkn.id != bk.id);
	/* Names are per tenant: t1 has no "bucket/neg". */
	assert_int_equal(ops->key_get_by_name(priv, 1, "bucket/neg", &kn, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	{
		struct kura_key *all = NULL;
		assert_int_equal(ops->key_list(priv, 0, pool, &all, &n, &err),
				 KURA_OK);
		assert_int_equal(n, 2);
		assert_string_equal(all[0].name, "bucket/legacy");
		assert_string_equal(all[1].name, "bucket/neg");
	}
	assert_int_equal(ops->key_generation(priv, &g, &err), KURA_OK);
	assert_int_equal(g, 1);

	/* Every part and upload part reads with its bucket's bucket key. */
	assert_int_equal(ops->object_get(priv, 7, "old", 3, pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->sse, KURA_SSE_S3);
	assert_int_equal(got->kms_key_id, 0);
	assert_memory_equal(got->ssec_hmac, zero, sizeof(zero));
	assert_string_equal(got->tags_json, "{\"t\":\"1\"}");
	assert_int_equal(got->part_count, 2);
	assert_int_equal(got->parts[0].bk_id, bk.id);
	assert_int_equal(got->parts[1].bk_id, bk.id);
	assert_int_equal(got->parts[0].mtime_ms, 1600000000001);
	assert_int_equal(got->parts[1].mtime_ms, 1600000000000);
	assert_int_equal(ops->object_get(priv, 0xfffffffffffffffbull, "x", 1,
					 pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->parts[0].bk_id, bkn.id);
	assert_int_equal(ops->upload_get(priv, 7, "up-1", pool, &up, &err),
			 KURA_OK);
	assert_int_equal(up->sse, KURA_SSE_S3);
	assert_int_equal(up->kms_key_id, 0);
	assert_int_equal(ops->upload_list_parts(priv, 7, "up-1", 0, 10, pool,
						&parts, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(parts[0].bk_id, bk.id);
	assert_int_equal(parts[1].bk_id, bk.id);
	id[0] = 3;
	assert_int_equal(ops->blob_referenced(priv, id, &ref, &err), KURA_OK);
	assert_true(ref);

	/* The re-wrap listing sees the migrated parts of both kinds. */
	assert_int_equal(ops->rewrap_next(priv, bk.id, 100, pool, &rw, &n,
					  &err),
			 KURA_OK);
	assert_int_equal(n, 4);
	{
		size_t nup = 0;
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(rw[i].bucket_id, 7);
			assert_int_equal(rw[i].tenant_id, 1);
			nup += rw[i].upload_part;
		}
		assert_int_equal(nup, 2);
	}

	/* The migrated data takes part in the new operations: complete the
	 * upload, rotate the bucket's key. */
	{
		struct kura_object o = { 0 };
		struct kura_bucket_key nb;
		o.bucket_id = 7;
		o.key = "big";
		o.key_len = 3;
		memcpy(o.version_uid, up->version_uid, KURA_UID_LEN);
		snprintf(o.etag, sizeof(o.etag), "e-big");
		o.part_count = 2;
		o.parts = parts;
		o.size = 16;
		o.vseq = 2;
		o.null_version = true;
		assert_int_equal(ops->upload_complete(priv, "up-1", &o, NULL,
						      &err),
				 KURA_OK);
		assert_int_equal(ops->object_get(priv, 7, "big", 3, pool, &got,
						 &err),
				 KURA_OK);
		assert_int_equal(got->parts[1].bk_id, bk.id);
		make_bk(&nb, 7, k.id, 2, 0x77);
		assert_int_equal(ops->key_rotate(priv, k.id, 1, "kek-legacy-2",
						 &nb, 1, &err),
				 KURA_OK);
		assert_int_equal(ops->bucket_keys_of_key(priv, k.id, pool, &bks,
							 &n, &err),
				 KURA_OK);
		assert_int_equal(n, 1);
		assert_int_equal(bks[0].id, nb.id);
		assert_int_equal(bks[0].key_version, 2);
		assert_string_equal(bks[0].kek_id, "kek-legacy-2");
	}
	kura_meta_close(m);

	/* Fresh and migrated files open alike again. */
	m = NULL;
	assert_int_equal(kura_meta_open(NULL, dir, &m, &err), KURA_OK);
	assert_int_equal(m->ops->key_generation(m->priv, &g, &err), KURA_OK);
	assert_int_equal(g, 2);
	kura_meta_close(m);
	kura_pool_free(pool);
}

/* The query plan of sql as one string, malloc'd. */
static char *query_plan(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	char plan[2048] = "", q[2048];
	char *out;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	if (sqlite3_prepare_v2(h, q, -1, &s, NULL) != SQLITE_OK)
		fail_msg("prepare '%s': %s", sql, sqlite3_errmsg(h));
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);
		size_t used = strlen(plan);
		snprintf(plan + used, sizeof(plan) - used, "%s;",
			 d != NULL ? d : "");
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	out = strdup(plan);
	assert_non_null(out);
	return out;
}

/* Every new query is an index search: no table scan, no sort.  The SQL is
 * that of src/meta/sqlite/. */
static void test_key_plans(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *sql;
		const char *want[3];
	} cases[] = {
		{ "SELECT version_uid, part_no, dek_wrapped FROM parts "
		  "WHERE bk_id = ?1 LIMIT ?2",
		  { "SEARCH parts USING INDEX parts_bk (bk_id=?)" } },
		{ "SELECT version_uid, part_no, dek_wrapped FROM upload_parts "
		  "WHERE bk_id = ?1 LIMIT ?2",
		  { "SEARCH upload_parts USING INDEX upload_parts_bk (bk_id=?)" } },
		{ "SELECT EXISTS (SELECT 1 FROM parts WHERE bk_id = ?1) "
		  "OR EXISTS (SELECT 1 FROM upload_parts WHERE bk_id = ?1)",
		  { "parts_bk (bk_id=?)", "upload_parts_bk (bk_id=?)" } },
		{ "UPDATE parts SET dek_wrapped = ?3, bk_id = ?5 "
		  "WHERE version_uid = ?1 AND part_no = ?2 AND bk_id = ?4",
		  { "SEARCH parts USING PRIMARY KEY (version_uid=? AND "
		    "part_no=?)" } },
		{ "UPDATE parts SET bk_id = NULL WHERE bk_id IN "
		  "(SELECT id FROM bucket_keys WHERE key_id = ?1)",
		  { "parts_bk (bk_id=?)", "SEARCH bucket_keys USING" } },
		{ "SELECT 1 FROM keys WHERE tenant_id = ?1 AND name = ?2 AND "
		  "state != 3",
		  { "keys_live_name (tenant_id=? AND name=?)" } },
		{ "SELECT id FROM keys WHERE tenant_id = ?1 ORDER BY name, id",
		  { "keys_tenant (tenant_id=?)" } },
		{ "SELECT bk.id FROM bucket_keys bk JOIN buckets b ON b.id = "
		  "bk.bucket_id JOIN keys k ON k.id = bk.key_id JOIN "
		  "key_versions kv ON kv.key_id = bk.key_id AND kv.version = "
		  "bk.key_version WHERE bk.bucket_id = ?1 AND bk.key_id = ?2 "
		  "AND bk.current = 1",
		  { "bucket_keys_current (bucket_id=? AND key_id=?)",
		    "SEARCH kv USING PRIMARY KEY (key_id=? AND version=?)" } },
		{ "SELECT bk.id FROM bucket_keys bk JOIN buckets b ON b.id = "
		  "bk.bucket_id JOIN keys k ON k.id = bk.key_id JOIN "
		  "key_versions kv ON kv.key_id = bk.key_id AND kv.version = "
		  "bk.key_version WHERE bk.key_id = ?1 AND bk.current = 1 "
		  "ORDER BY bk.id",
		  { "bucket_keys_key (key_id=? AND current=?)" } },
		{ "SELECT bk.id FROM bucket_keys bk JOIN buckets b ON b.id = "
		  "bk.bucket_id JOIN keys k ON k.id = bk.key_id JOIN "
		  "key_versions kv ON kv.key_id = bk.key_id AND kv.version = "
		  "bk.key_version WHERE bk.current = 0 ORDER BY bk.retired_ms, "
		  "bk.id LIMIT ?1",
		  /* An ordered walk of the partial index (retired rows
		   * only), stopping at the limit. */
		  { "SCAN bk USING INDEX bucket_keys_retired" } },
		{ "SELECT count(*) FROM bucket_keys WHERE key_id = ?1 AND "
		  "current = 1 AND key_version != ?2",
		  { "bucket_keys_key (key_id=? AND current=?)" } },
		{ "SELECT EXISTS (SELECT 1 FROM key_versions WHERE key_id = ?1 "
		  "AND version = ?2), EXISTS (SELECT 1 FROM bucket_keys WHERE "
		  "key_id = ?1 AND key_version = ?2) OR EXISTS (SELECT 1 FROM "
		  "keys WHERE id = ?1 AND current_version = ?2 AND state != 3)",
		  { "bucket_keys_version (key_id=? AND key_version=?)",
		    "key_versions USING PRIMARY KEY (key_id=? AND version=?)" } },
		{ "DELETE FROM bucket_keys WHERE bucket_id = ?1",
		  { "bucket_keys_bucket (bucket_id=?)" } },
		{ "SELECT p.blob_id, p.size FROM objects o JOIN parts p "
		  "ON p.version_uid = o.version_uid WHERE o.bucket_id = ?1 "
		  "UNION ALL SELECT p.blob_id, p.size FROM uploads u "
		  "JOIN upload_parts p ON p.version_uid = u.version_uid "
		  "WHERE u.bucket_id = ?1",
		  { "SEARCH o USING PRIMARY KEY (bucket_id=?)",
		    "SEARCH u USING INDEX uploads_key (bucket_id=?)",
		    "SEARCH p USING PRIMARY KEY (version_uid=?)" } },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *plan = query_plan(f->db, cases[i].sql);
		for (size_t j = 0; j < 3 && cases[i].want[j] != NULL; j++)
			if (strstr(plan, cases[i].want[j]) == NULL)
				fail_msg("query %zu: no '%s' in plan %s", i,
					 cases[i].want[j], plan);
		/* "SCAN CONSTANT ROW" is no table scan, nor is the walk of
		 * the retired index. */
		if ((strstr(plan, "SCAN ") != NULL &&
		     strstr(plan, "SCAN CONSTANT ROW") == NULL &&
		     strstr(plan, "SCAN bk USING INDEX bucket_keys_retired;") !=
			     plan) ||
		    strstr(plan, "TEMP B-TREE") != NULL)
			fail_msg("query %zu scans or sorts: %s", i, plan);
		free(plan);
	}
}

/* Migration 2 -> 3 on a bigger v2 database: objects of 2 parts each in 8
 * buckets plus uploads, bulk-loaded with plain SQL; the open that migrates
 * is timed.  KURA_META_MIGRATE_OBJECTS overrides the 20000 objects. */
static void test_migrate_v2_large(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	const char *env = getenv("KURA_META_MIGRATE_OBJECTS");
	uint32_t objects = 20000;
	struct kura_meta *m = NULL;
	char dir[PATH_MAX + 16], db[PATH_MAX + 32];
	sqlite3 *h = NULL;
	sqlite3_stmt *so = NULL, *sp = NULL;
	double t0, dt;

	if (env != NULL && env[0] != '\0') {
		unsigned long v = strtoul(env, NULL, 10);
		if (v >= 100 && v <= 50000000)
			objects = (uint32_t)v;
	}
	snprintf(dir, sizeof(dir), "%s/v2big", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(db, sizeof(db), "%s/meta.db", dir);
	sql_exec(db, v1_schema);
	sql_exec(db, v2_step);
	sql_exec(db, "BEGIN;"
		     "INSERT INTO tenants (name, created_ms) VALUES ('t', 1);"
		     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		     "FROM n WHERE i < 8) INSERT INTO buckets SELECT i, 1, "
		     "'b' || i, 'r', 2, 'kek-' || i, randomblob(60) FROM n;"
		     "INSERT INTO uploads (id, bucket_id, key, version_uid, "
		     "created_ms) VALUES ('u', 3, x'75', "
		     "x'ffffffffffffffffffffffffffffffff', 3);"
		     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		     "FROM n WHERE i < 1000) INSERT INTO upload_parts SELECT "
		     "x'ffffffffffffffffffffffffffffffff', i, "
		     "randomblob(16), 1, 65536, zeroblob(60), 'e', 4 FROM n;"
		     "PRAGMA user_version = 2;"
		     "COMMIT;");
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA synchronous = OFF; BEGIN",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "INSERT INTO objects (bucket_id, "
					    "key, version_uid, size, etag, "
					    "mtime_ms, part_count) VALUES (?, "
					    "?, ?, 2, 'e', 5, 2)",
					    -1, &so, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "INSERT INTO parts VALUES (?, ?, "
					    "?, 1, 65536, zeroblob(60), 'e', "
					    "6)",
					    -1, &sp, NULL),
			 SQLITE_OK);
	for (uint32_t i = 0; i < objects; i++) {
		uint8_t uid[16] = { 0 }, blob[16] = { 0 };
		char key[16];
		int kn = snprintf(key, sizeof(key), "k%08u", i);

		memcpy(uid, &i, sizeof(i));
		uid[15] = 0xa1;
		sqlite3_bind_int64(so, 1, 1 + i % 8);
		sqlite3_bind_blob(so, 2, key, kn, SQLITE_TRANSIENT);
		sqlite3_bind_blob(so, 3, uid, 16, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(so), SQLITE_DONE);
		sqlite3_reset(so);
		for (int p = 1; p <= 2; p++) {
			memcpy(blob, &i, sizeof(i));
			blob[14] = (uint8_t)p;
			blob[15] = 0xb2;
			sqlite3_bind_blob(sp, 1, uid, 16, SQLITE_TRANSIENT);
			sqlite3_bind_int64(sp, 2, p);
			sqlite3_bind_blob(sp, 3, blob, 16, SQLITE_TRANSIENT);
			assert_int_equal(sqlite3_step(sp), SQLITE_DONE);
			sqlite3_reset(sp);
		}
	}
	sqlite3_finalize(so);
	sqlite3_finalize(sp);
	assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);

	t0 = now_ms();
	assert_int_equal(kura_meta_open(NULL, dir, &m, &err), KURA_OK);
	dt = now_ms() - t0;
	kura_meta_close(m);
	print_message("# migrate 2 -> 3: %u objects, %u parts, 1000 upload "
		      "parts: %.0f ms\n",
		      objects, objects * 2, dt);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), SCHEMA_NOW);
	/* Every part got its bucket's bucket key. */
	assert_int_equal(sql_int(db,
				 "SELECT count(*) FROM parts p JOIN objects "
				 "o USING (version_uid) JOIN bucket_keys bk "
				 "ON bk.id = p.bk_id AND bk.bucket_id = "
				 "o.bucket_id"),
			 (int)objects * 2);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM upload_parts p "
				     "JOIN bucket_keys bk ON bk.id = p.bk_id "
				     "WHERE bk.bucket_id = 3"),
			 1000);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM bucket_keys"), 8);
	assert_true(dt < 60000.0);
}

/* ------------------------------------------------------------------ */
/* the statement helper (stmt.c)                                       */

static const struct sq_sql q_sum = { "sum", "SELECT ?1 + ?2" };
static const struct sq_sql q_sum_again = { "sum", "SELECT ?1 + ?2" };
static const struct sq_sql q_broken = { "broken", "SELECT FROM nowhere" };
static const struct sq_sql q_word = { "word", "SELECT 'longer'" };
static const struct sq_sql q_dup = {
	"insert dup", "INSERT INTO settings (name, value) VALUES ('dup', x'00')"
};
static const struct sq_sql q_touch = {
	"touch dup", "UPDATE settings SET value = x'01' WHERE name = 'dup'"
};
static const struct sq_sql q_series = {
	"series",
	"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
	"WHERE i < ?1) SELECT i FROM s"
};

static struct sq_conn *conn_take(struct fx *f)
{
	struct kura_error err = { 0 };
	struct sq_conn *c = NULL;

	assert_int_equal(sq_conn_acquire(f->priv, &c, &err), KURA_OK);
	return c;
}

/* The first failure sticks: later binds and steps are no-ops, sq_end
 * reports it once, mapped, with the statement's name; the statement is
 * then reset with its bindings cleared, ready for the next use. */
static void test_stmt_sticky(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct sq_conn *c = conn_take(f);
	struct sq_stmt st;
	char word[4] = "abc", other[16] = "untouched";

	/* All well. */
	sq_begin(&st, c, &q_sum, &err);
	sq_bind_i64(&st, 1, 40);
	sq_bind_i64(&st, 2, 2);
	assert_true(sq_row(&st));
	assert_int_equal(sq_col_i64(&st, 0), 42);
	assert_false(sq_row(&st));
	assert_int_equal(sq_end(&st), KURA_OK);
	assert_string_equal(err.msg, "");

	/* A bind out of range: everything after it is a no-op. */
	sq_begin(&st, c, &q_sum, &err);
	sq_bind_i64(&st, 3, 1);
	assert_int_equal(st.rc, SQLITE_RANGE);
	sq_bind_i64(&st, 1, 40);
	assert_int_equal(st.rc, SQLITE_RANGE);
	assert_false(sq_row(&st));
	sq_run(&st);
	assert_int_equal(st.rc, SQLITE_RANGE);
	assert_string_equal(err.msg, ""); /* recorded at the end */
	assert_int_equal(sq_end(&st), KURA_EIO);
	assert_non_null(strstr(err.msg, "sqlite: sum: "));
	assert_null(st.s);
	assert_int_equal(sq_end(&st), KURA_EIO); /* ending twice is harmless */
	kura_error_clear(&err);

	/* Reset and cleared: ?2 is NULL again, so the sum is. */
	sq_begin(&st, c, &q_sum, &err);
	sq_bind_i64(&st, 1, 5);
	assert_true(sq_row(&st));
	assert_true(sq_col_null(&st, 0));
	assert_int_equal(sq_end(&st), KURA_OK);

	/* A statement that cannot be prepared. */
	sq_begin(&st, c, &q_broken, &err);
	assert_null(st.s);
	assert_int_not_equal(st.rc, SQLITE_OK);
	sq_bind_i64(&st, 1, 1);
	assert_false(sq_row(&st));
	assert_int_equal(sq_end(&st), KURA_EIO);
	assert_non_null(strstr(err.msg, "sqlite: broken: "));
	kura_error_clear(&err);

	/* A column reader that finds a bad value: the first failure wins,
	 * later readers leave their destinations alone. */
	sq_begin(&st, c, &q_word, &err);
	assert_true(sq_row(&st));
	sq_col_text(&st, 0, word, sizeof(word), "word");
	assert_string_equal(word, "abc");
	sq_col_text(&st, 0, other, sizeof(other), "other");
	assert_string_equal(other, "untouched");
	sq_fail(&st, KURA_ENOMEM, "not this one");
	assert_false(sq_row(&st));
	assert_int_equal(sq_end(&st), KURA_EIO);
	assert_string_equal(err.msg, "sqlite: corrupt word (6 bytes)");
	kura_error_clear(&err);

	/* A uniqueness violation with a message of its own; changes. */
	sq_begin(&st, c, &q_dup, &err);
	assert_int_equal(sq_exec(&st), KURA_OK);
	assert_int_equal(st.changes, 1);
	sq_begin(&st, c, &q_dup, &err);
	sq_run(&st);
	assert_int_equal(sq_end_unique(&st, "'%s' is taken", "dup"),
			 KURA_EEXIST);
	assert_string_equal(err.msg, "'dup' is taken");
	kura_error_clear(&err);
	/* Any other failure keeps SQLite's message. */
	sq_begin(&st, c, &q_broken, &err);
	sq_run(&st);
	assert_int_equal(sq_end_unique(&st, "never"), KURA_EIO);
	assert_non_null(strstr(err.msg, "sqlite: broken: "));
	kura_error_clear(&err);
	sq_begin(&st, c, &q_touch, &err);
	assert_int_equal(sq_exec(&st), KURA_OK);
	assert_int_equal(st.changes, 1);

	sq_conn_release(f->priv, c);
}

/* One prepared statement per definition and connection, found again by
 * the definition's address; more definitions than slots are refused, not
 * mixed up. */
static void test_stmt_cache(void **state)
{
	const size_t ndefs = SQ_CACHE_SLOTS + 1;
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct sq_conn *c = conn_take(f);
	struct sq_sql *defs = calloc(ndefs, sizeof(*defs));
	char(*texts)[32] = calloc(ndefs, sizeof(*texts));
	struct sq_stmt st;
	sqlite3_stmt *first;

	assert_non_null(defs);
	assert_non_null(texts);
	sq_begin(&st, c, &q_sum, &err);
	first = st.s;
	assert_int_equal(sq_end(&st), KURA_OK);
	sq_begin(&st, c, &q_sum, &err);
	assert_ptr_equal(st.s, first);
	assert_int_equal(sq_end(&st), KURA_OK);
	/* Same text, another definition: its own statement. */
	sq_begin(&st, c, &q_sum_again, &err);
	assert_ptr_not_equal(st.s, first);
	assert_int_equal(sq_end(&st), KURA_OK);

	/* Fill the cache: each definition answers its own value. */
	sq_cache_clear(c);
	for (size_t i = 0; i < ndefs; i++) {
		snprintf(texts[i], sizeof(texts[i]), "SELECT %zu", i);
		defs[i].what = "numbered";
		defs[i].text = texts[i];
	}
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i + 1 < ndefs; i++) {
			sq_begin(&st, c, &defs[i], &err);
			assert_true(sq_row(&st));
			assert_int_equal(sq_col_i64(&st, 0), (int64_t)i);
			assert_int_equal(sq_end(&st), KURA_OK);
		}
	}
	sq_begin(&st, c, &defs[ndefs - 1], &err);
	assert_null(st.s);
	assert_false(sq_row(&st));
	assert_int_equal(sq_end(&st), KURA_EIO);
	assert_string_equal(err.msg, "sqlite: numbered: statement cache full");
	/* Emptied, the connection goes back to work. */
	sq_cache_clear(c);
	sq_conn_release(f->priv, c);
	free(defs);
	free(texts);
	assert_int_equal(put_simple(f, "after", 5, 1), KURA_OK);
}

/* Rows collected across reallocations into the pool; nothing written out
 * when the statements failed. */
static void test_stmt_array(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct sq_conn *c = conn_take(f);
	struct sq_stmt st;
	struct sq_array a;
	int64_t *v;
	void *out = (void *)&err;
	size_t n = 99;

	sq_array_init(&a, sizeof(int64_t), 1, true);
	sq_begin(&st, c, &q_series, &err);
	sq_bind_i64(&st, 1, 1000);
	while (sq_row(&st) && (v = sq_array_add(&a, &st)) != NULL)
		*v = sq_col_i64(&st, 0);
	assert_int_equal(sq_array_end(&a, sq_end(&st), f->pool, &out, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1000);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(((int64_t *)out)[i], (int64_t)i + 1);

	/* No rows: NULL. */
	sq_array_init(&a, sizeof(int64_t), 0, false);
	sq_begin(&st, c, &q_series, &err);
	sq_bind_i64(&st, 1, 0);
	sq_bind_i64(&st, 2, 0); /* out of range: fails */
	while (sq_row(&st) && (v = sq_array_add(&a, &st)) != NULL)
		*v = sq_col_i64(&st, 0);
	out = (void *)&err;
	n = 99;
	assert_int_equal(sq_array_end(&a, sq_end(&st), f->pool, &out, &n, &err),
			 KURA_EIO);
	assert_ptr_equal(out, (void *)&err);
	assert_int_equal(n, 99);
	assert_null(a.v);
	kura_error_clear(&err);
	sq_array_init(&a, sizeof(int64_t), 0, false);
	assert_int_equal(sq_array_end(&a, KURA_OK, f->pool, &out, &n, &err),
			 KURA_OK);
	assert_null(out);
	assert_int_equal(n, 0);
	sq_conn_release(f->priv, c);
}

/* ------------------------------------------------------------------ */
/* the plans of the statements the store runs                          */

static enum kura_err count_blob(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN],
				uint64_t size)
{
	(void)id;
	(void)size;
	(*(size_t *)ctx)++;
	return KURA_OK;
}

#define OK(call) assert_int_equal((call), KURA_OK)

/* Settings, tenants, access keys, buckets, named keys and bucket keys. */
static void workload_accounts(struct fx *f, uint64_t *named)
{
	struct kura_error err = { 0 };
	struct kura_tenant t = { 0 }, *tl;
	struct kura_access_key ak = { 0 }, *akl;
	struct kura_bucket b, *bl;
	struct kura_key k, *kl;
	struct kura_key_version *kv;
	struct kura_bucket_key bk, *bks;
	uint8_t val[8];
	uint64_t *ids;
	size_t n, len;
	bool used;

	OK(f->ops->setting_insert(f->priv, "s", (const uint8_t *)"v", 1, &err));
	OK(f->ops->setting_get(f->priv, "s", val, sizeof(val), &len, &err));
	OK(f->ops->setting_delete(f->priv, "s", &err));
	snprintf(t.name, sizeof(t.name), "other");
	OK(f->ops->tenant_create(f->priv, &t, &err));
	OK(f->ops->tenant_get(f->priv, t.id, &t, &err));
	OK(f->ops->tenant_get_by_name(f->priv, "other", &t, &err));
	OK(f->ops->tenant_list(f->priv, f->pool, &tl, &n, &err));
	OK(f->ops->tenant_set_state(f->priv, t.id, KURA_TENANT_SUSPENDED,
				    &err));
	snprintf(ak.id, sizeof(ak.id), "AK1");
	ak.tenant_id = t.id;
	ak.secret_sealed_len = 8;
	ak.active = true;
	OK(f->ops->access_key_create(f->priv, &ak, &err));
	OK(f->ops->access_key_get(f->priv, "AK1", &ak, &err));
	OK(f->ops->access_key_list(f->priv, t.id, f->pool, &akl, &n, &err));
	snprintf(ak.id, sizeof(ak.id), "AK2");
	OK(f->ops->access_key_replace(f->priv, "AK1", &ak, &err));
	OK(f->ops->access_key_revoke(f->priv, "AK2", &err));
	OK(f->ops->tenant_delete(f->priv, t.id, &err));

	OK(f->ops->bucket_get(f->priv, "photos", &b, &err));
	OK(f->ops->bucket_get_id(f->priv, f->bucket, &b, &err));
	OK(f->ops->bucket_list(f->priv, f->tenant, f->pool, &bl, &n, &err));
	make_key(&k, f->tenant, "named", KURA_KEY_NAMED);
	OK(f->ops->key_create(f->priv, &k, "kek-named", &err));
	*named = k.id;
	OK(f->ops->key_get(f->priv, k.id, &k, &err));
	OK(f->ops->key_get_by_name(f->priv, f->tenant, "named", &k, &err));
	OK(f->ops->key_list(f->priv, f->tenant, f->pool, &kl, &n, &err));
	OK(f->ops->key_list(f->priv, 0, f->pool, &kl, &n, &err));
	OK(f->ops->key_versions(f->priv, k.id, f->pool, &kv, &n, &err));
	OK(f->ops->key_set_state(f->priv, k.id, KURA_KEY_DISABLED, &err));
	OK(f->ops->key_set_state(f->priv, k.id, KURA_KEY_ENABLED, &err));
	OK(f->ops->key_version_in_use(f->priv, k.id, 1, &used, &err));
	OK(f->ops->bucket_set_encryption(f->priv, f->bucket, KURA_SSE_KMS, k.id,
					 &err));
	make_bk(&bk, f->bucket, k.id, 1, 0x42);
	OK(f->ops->bucket_key_insert(f->priv, &bk, &err));
	OK(f->ops->bucket_key_current(f->priv, f->bucket, k.id, &bk, &err));
	OK(f->ops->bucket_key_get(f->priv, bk.id, &bk, &err));
	OK(f->ops->bucket_key_ids(f->priv, f->bucket, f->pool, &ids, &n, &err));
	OK(f->ops->bucket_keys_of_key(f->priv, k.id, f->pool, &bks, &n, &err));
}

/* Objects: every listing variant, tags, delete. */
static void workload_objects(struct fx *f)
{
	static const struct {
		const char *prefix, *after;
	} lists[] = {
		{ "", "" },  { "\xff", "" }, { "a", "" },
		{ "", "a" }, { "a", "a/b" },
	};
	struct kura_error err = { 0 };
	struct kura_object o, *ls, *got;
	struct kura_part p[2];
	size_t n;

	make_object(&o, p, 2, f->bucket, "a/two", 5, 1);
	OK(f->ops->object_put(f->priv, &o, NULL, &err));
	OK(put_simple(f, "a/b", 3, 2));
	OK(put_simple(f, "a/b", 3, 3)); /* replaces: blobs to gc */
	OK(put_simple(f, "z", 1, 4));
	OK(f->ops->object_get(f->priv, f->bucket, "a/two", 5, f->pool, &got,
			      &err));
	for (size_t i = 0; i < ARRAY_LEN(lists); i++)
		OK(f->ops->object_list(f->priv, f->bucket, lists[i].prefix,
				       strlen(lists[i].prefix), lists[i].after,
				       strlen(lists[i].after), 10, f->pool, &ls,
				       &n, &err));
	OK(f->ops->object_set_tags(f->priv, f->bucket, "a/two", 5,
				   got->version_uid, NULL, 0, "{}", NULL, 0, 0,
				   &err));
	OK(f->ops->object_delete(f->priv, f->bucket, "z", 1, NULL, NULL, false,
				 &err));
}

/* Uploads: parts replaced, listed, completed, aborted; every listing
 * variant; expiry. */
static void workload_uploads(struct fx *f)
{
	static const struct {
		const char *prefix, *km, *idm;
	} lists[] = {
		{ "", "", "" },	    { "u", "", "" },	 { "", "up", "" },
		{ "", "up", "U1" }, { "u", "up", "U1" }, { "u", "up", "" },
	};
	struct kura_error err = { 0 };
	struct kura_upload u, *ul, *gu;
	struct kura_part parts[5], *pl;
	struct kura_object o;
	size_t n;

	upload_with_parts(f, "U1", "up", 7, parts);
	OK(f->ops->upload_put_part(f->priv, f->bucket, "U1", &parts[0], &err));
	OK(f->ops->upload_get(f->priv, f->bucket, "U1", f->pool, &gu, &err));
	n = list_parts(f, "U1", 0, 10, f->pool, &pl);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < ARRAY_LEN(lists); i++)
		OK(f->ops->upload_list(f->priv, f->bucket, lists[i].prefix,
				       strlen(lists[i].prefix), lists[i].km,
				       strlen(lists[i].km), lists[i].idm, 10,
				       f->pool, &ul, &n, &err));
	OK(f->ops->upload_expired(f->priv, 1000, 10, f->pool, &ul, &n, &err));
	completed_object(&o, f->bucket, "up", 7, pl, 2);
	OK(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err));
	make_upload(&u, f->bucket, "gone", 4, "U2", 8, 100);
	OK(f->ops->upload_create(f->priv, &u, &err));
	OK(f->ops->upload_abort(f->priv, f->bucket, "U2", &err));
}

/* Rotation, re-wrapping, seals, garbage, deletion and destruction. */
static void workload_keys(struct fx *f, uint64_t named)
{
	struct kura_error err = { 0 };
	struct kura_bucket_key old, *bks;
	struct kura_rewrap *rw;
	struct kura_seal_batch batch;
	struct kura_new_seal ns[10];
	uint8_t ids[64][KURA_BLOB_ID_LEN];
	uint64_t buckets[4] = { 0 }, g;
	size_t n, blobs = 0, applied;
	bool ref;

	OK(f->ops->bucket_key_get(f->priv, f->bk, &old, &err));
	OK(rotate_all(f, f->key, 1, "kek-photos-2"));
	OK(f->ops->bucket_keys_retired(f->priv, 10, f->pool, &bks, &n, &err));
	OK(f->ops->rewrap_next(f->priv, old.id, 100, f->pool, &rw, &n, &err));
	OK(f->ops->rewrap_apply(f->priv, old.id, bk_of(f->bucket), rw, n,
				&err));
	OK(f->ops->bucket_key_delete(f->priv, old.id, &err));
	OK(f->ops->seal_pending_buckets(f->priv, NULL, buckets, 4, &n, &err));
	OK(f->ops->seal_pending_buckets(f->priv, &buckets[0], buckets, 4, &n,
					&err));
	OK(f->ops->seal_next(f->priv, f->bucket, 0, 10, f->pool, &batch, &err));
	assert_true(batch.n_objects <= 10);
	for (size_t i = 0; i < batch.n_objects; i++) {
		fake_seal(ns[i].seal, &ns[i].seal_len, 1);
		ns[i].seal_bk_id = bk_of(f->bucket);
	}
	batch.n_uploads = batch.n_parts = 0;
	OK(f->ops->seal_apply(f->priv, &batch, ns, ns, ns, &applied, &err));
	OK(f->ops->seal_next(f->priv, f->bucket, bk_of(f->bucket), 10, f->pool,
			     &batch, &err));
	OK(f->ops->key_generation(f->priv, &g, &err));
	OK(f->ops->gc_next(f->priv, ids, 64, &n, &err));
	OK(f->ops->blob_referenced(f->priv, ids[0], &ref, &err));
	OK(f->ops->gc_done(f->priv, (const uint8_t(*)[KURA_BLOB_ID_LEN])ids, n,
			   &err));
	OK(f->ops->bucket_blobs(f->priv, f->bucket, count_blob, &blobs, &err));
	OK(create_bucket(f, f->tenant, 5, "empty", NULL, NULL));
	OK(f->ops->bucket_delete(f->priv, 5, &err));
	OK(f->ops->bucket_purge(f->priv, f->bucket, &err));
	OK(f->ops->key_version_destroyed(f->priv, named, 1, &err));
	OK(f->ops->key_destroyed(f->priv, named, &err));
}

/* Walks and sorts that are meant: the one-row key generation; the gc
 * queue, read from wherever it starts; the admin listings of all keys and
 * all tenants; a tenant's few access keys and a bucket's few keys, sorted;
 * the retired bucket keys, an ordered walk of their partial index; the
 * buckets the seal upgrade still has to do (a union, sorted). */
static bool plan_allowed(const char *what)
{
	static const char *const allowed[] = {
		"bump key generation",	  "get key generation",
		"read gc queue",	  "list all keys",
		"list tenants",		  "list access keys",
		"list the bucket's keys", "list retired bucket keys",
		"list buckets to seal",
	};

	for (size_t i = 0; i < ARRAY_LEN(allowed); i++)
		if (strcmp(what, allowed[i]) == 0)
			return true;
	return false;
}

/* Every statement the store ran — as prepared in its connection's cache,
 * not a copy of its text — is an index search with no sort, except the
 * few walks that are meant (plan_allowed). */
static void test_statement_plans(void **state)
{
	struct fx *f = *state;
	struct sq_conn *c;
	uint64_t named = 0;
	size_t n = 0, walks = 0;

	workload_accounts(f, &named);
	workload_objects(f);
	workload_uploads(f);
	workload_keys(f, named);
	/* One thread: every call took the same idle connection. */
	c = conn_take(f);
	for (size_t i = 0; i < SQ_CACHE_SLOTS; i++) {
		const struct sq_sql *sql = c->cache[i].sql;
		char *plan;
		bool scan;

		if (sql == NULL)
			continue;
		n++;
		plan = query_plan(f->db, sql->text);
		scan = strstr(plan, "TEMP B-TREE") != NULL;
		for (const char *p = plan; (p = strstr(p, "SCAN ")) != NULL;
		     p++)
			if (strncmp(p, "SCAN CONSTANT ROW", 17) != 0)
				scan = true;
		if (scan && !plan_allowed(sql->what))
			fail_msg("%s: %s\nplan: %s", sql->what, sql->text,
				 plan);
		walks += scan;
		free(plan);
	}
	sq_conn_release(f->priv, c);
	print_message("# %zu statements run, %zu of them walk a table\n", n,
		      walks);
	assert_true(n >= 100);
}

#define sqlite_test(fn)                           \
	cmocka_unit_test_prestate_setup_teardown( \
		fn, meta_setup, meta_teardown, (void *)&meta_backends[0])

int main(void)
{
	static const struct CMUnitTest tests[] = {
		sqlite_test(test_migrate_reopen),
		sqlite_test(test_open_errors),
		sqlite_test(test_list_large),
		sqlite_test(test_migrate_v1),
		sqlite_test(test_upload_complete_large),
		sqlite_test(test_upload_plans),
		sqlite_test(test_migrate_v2),
		sqlite_test(test_key_plans),
		sqlite_test(test_migrate_v2_large),
		sqlite_test(test_stmt_sticky),
		sqlite_test(test_stmt_cache),
		sqlite_test(test_stmt_array),
		sqlite_test(test_statement_plans),
	};

	assert_string_equal(meta_backends[0].name, "sqlite");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

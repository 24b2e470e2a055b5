/*
 * test_meta_sqlite.c — unit tests of the SQLite metadata store
 * (src/meta/sqlite.c) through the generic kura_meta_open interface.
 *
 * Each test opens a fresh store in its own mkdtemp directory.  The listing
 * tests compare every (prefix, after, limit) combination over a set of
 * awkward keys (binary, multi-byte UTF-8, 0xFF bytes) with a brute-force
 * model.  The large-listing test bulk-loads rows with plain SQL in big
 * transactions and times the first page; KURA_META_BENCH_ROWS overrides
 * its 100000 rows (1000000 for the figure in docs/METADATA.md).
 *
 * The concurrency test runs several threads against one store.
 */
#include <errno.h>
#include <ftw.h>
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

#include "kura/config.h"
#include "kura/err.h"
#include "kura/meta.h"
#include "kura/pool.h"
#include "kura/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* fixture                                                             */

struct fx {
	char dir[PATH_MAX];
	char db[PATH_MAX + 16];
	struct kura_config *cfg;
	struct kura_meta *meta;
	const struct kura_meta_ops *ops;
	void *priv;
	uint64_t tenant;
	uint64_t bucket;
};

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fx_open(struct fx *f)
{
	struct kura_error err = { 0 };
	enum kura_err r = kura_meta_open(f->cfg, f->dir, &f->meta, &err);

	if (r != KURA_OK)
		fail_msg("kura_meta_open: %s", err.msg);
	f->ops = f->meta->ops;
	f->priv = f->meta->priv;
}

static void fx_close(struct fx *f)
{
	kura_meta_close(f->meta);
	f->meta = NULL;
}

/* A store with one tenant and one bucket. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kura_error err = { 0 };
	const char *base = getenv("TMPDIR");
	struct kura_tenant t = { 0 };
	struct kura_bucket b = { 0 };

	assert_non_null(f);
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(f->dir, sizeof(f->dir), "%s/kura-test-meta-XXXXXX", base);
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/meta.db", f->dir);
	assert_int_equal(kura_config_new(&f->cfg, &err), KURA_OK);
	fx_open(f);

	snprintf(t.name, sizeof(t.name), "acme");
	t.created_ms = 1000;
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	f->tenant = t.id;
	b.id = 0xfedcba9876543210ull;	/* above INT64_MAX on purpose */
	b.tenant_id = t.id;
	snprintf(b.name, sizeof(b.name), "photos");
	snprintf(b.region, sizeof(b.region), "us-east-1");
	snprintf(b.kek_id, sizeof(b.kek_id), "kek-1");
	b.key_wrapped_len = 60;
	memset(b.key_wrapped, 0x5a, b.key_wrapped_len);
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &err), KURA_OK);
	f->bucket = b.id;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	kura_config_free(f->cfg);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void fill_id(uint8_t id[16], uint32_t a, uint32_t b)
{
	memset(id, 0, 16);
	memcpy(id, &a, sizeof(a));
	memcpy(id + 8, &b, sizeof(b));
	id[15] = 0x77;
}

/* An object with nparts parts of 10 bytes each; blob ids derive from tag. */
static void make_object(struct kura_object *o, struct kura_part *parts,
			uint32_t nparts, uint64_t bucket, const char *key,
			size_t key_len, uint32_t tag)
{
	memset(o, 0, sizeof(*o));
	o->bucket_id = bucket;
	o->key = key;
	o->key_len = key_len;
	fill_id(o->version_uid, tag, 0xffffffffu);
	snprintf(o->etag, sizeof(o->etag), "etag-%u", tag);
	o->mtime_ms = 1700000000000 + tag;
	o->part_count = nparts;
	o->parts = nparts > 0 ? parts : NULL;
	for (uint32_t i = 0; i < nparts; i++) {
		struct kura_part *p = &parts[i];
		memset(p, 0, sizeof(*p));
		p->part_no = nparts == 1 ? 0 : i + 1;
		fill_id(p->blob_id, tag, i);
		p->size = 10;
		p->seg_size = 65536;
		memset(p->dek_wrapped, (int)(i + tag) & 0xff,
		       sizeof(p->dek_wrapped));
		snprintf(p->etag, sizeof(p->etag), "%032x", i + tag);
		o->size += p->size;
	}
}

static enum kura_err put_simple(struct fx *f, const char *key, size_t len,
				uint32_t tag)
{
	struct kura_object o;
	struct kura_part p[1];
	struct kura_error err = { 0 };

	make_object(&o, p, 1, f->bucket, key, len, tag);
	return f->ops->object_put(f->priv, &o, &err);
}

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

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE |
							 SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(h, 10000);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/* ------------------------------------------------------------------ */
/* open, migrations, file modes                                        */

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
	assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 1);
	assert_int_equal(sql_int(f->db, "PRAGMA application_id"), 0x4b555241);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM sqlite_schema "
					"WHERE name = 'objects'"),
			 1);

	assert_int_equal(f->ops->setting_insert(f->priv, "marker",
						(const uint8_t *)"v1", 2,
						&err),
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
	sql_exec(f->db, "PRAGMA user_version = 1");

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
/* settings, tenants, access keys                                      */

static void test_settings(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	static uint8_t big[KURA_SETTING_MAX + 1];
	uint8_t buf[8] = { 0 };
	size_t len = 99;

	assert_int_equal(f->ops->setting_get(f->priv, "k", buf, sizeof(buf),
					     &len, &err),
			 KURA_ENOENT);
	assert_int_equal(len, 99);
	kura_error_clear(&err);
	assert_int_equal(f->ops->setting_insert(f->priv, "k",
						(const uint8_t *)"\0ab\xff", 4,
						&err),
			 KURA_OK);
	assert_int_equal(f->ops->setting_insert(f->priv, "k",
						(const uint8_t *)"zz", 2, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	assert_int_equal(f->ops->setting_get(f->priv, "k", buf, sizeof(buf),
					     &len, &err),
			 KURA_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "\0ab\xff", 4);	/* first writer won */
	/* Too small a buffer: ETOOBIG, outputs untouched. */
	len = 99;
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(f->ops->setting_get(f->priv, "k", buf, 3, &len, &err),
			 KURA_ETOOBIG);
	assert_int_equal(len, 99);
	assert_int_equal(buf[0], 0xee);
	kura_error_clear(&err);
	/* Empty value. */
	assert_int_equal(f->ops->setting_insert(f->priv, "empty", NULL, 0,
						&err),
			 KURA_OK);
	assert_int_equal(f->ops->setting_get(f->priv, "empty", buf, 0, &len,
					     &err),
			 KURA_OK);
	assert_int_equal(len, 0);
	assert_int_equal(f->ops->setting_insert(f->priv, "big", big,
						sizeof(big), &err),
			 KURA_ETOOBIG);
	kura_error_clear(&err);
	assert_int_equal(f->ops->setting_insert(f->priv, "max", big,
						KURA_SETTING_MAX, &err),
			 KURA_OK);
}

static void test_tenants_keys(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_tenant t = { 0 }, got = { 0 };
	struct kura_access_key k = { 0 }, kg = { 0 };

	snprintf(t.name, sizeof(t.name), "second");
	t.created_ms = 42;
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	assert_true(t.id != 0 && t.id != f->tenant);
	assert_int_equal(f->ops->tenant_get(f->priv, t.id, &got, &err),
			 KURA_OK);
	assert_string_equal(got.name, "second");
	assert_int_equal(got.created_ms, 42);
	memset(&got, 0, sizeof(got));
	assert_int_equal(f->ops->tenant_get_by_name(f->priv, "acme", &got,
						    &err),
			 KURA_OK);
	assert_int_equal(got.id, f->tenant);
	assert_int_equal(got.created_ms, 1000);

	/* Name clash: EEXIST and the id is left alone. */
	{
		struct kura_tenant dup = { 0 };
		snprintf(dup.name, sizeof(dup.name), "second");
		dup.id = 12345;
		assert_int_equal(f->ops->tenant_create(f->priv, &dup, &err),
				 KURA_EEXIST);
		assert_int_equal(dup.id, 12345);
		kura_error_clear(&err);
	}
	assert_int_equal(f->ops->tenant_get(f->priv, 999999, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_get_by_name(f->priv, "nobody", &got,
						    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	snprintf(k.id, sizeof(k.id), "AKIAEXAMPLE");
	k.tenant_id = t.id;
	k.secret_sealed_len = 68;
	for (size_t i = 0; i < k.secret_sealed_len; i++)
		k.secret_sealed[i] = (uint8_t)(i * 7);
	k.created_ms = 77;
	k.active = true;
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err),
			 KURA_OK);
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKIAEXAMPLE", &kg,
						&err),
			 KURA_OK);
	assert_string_equal(kg.id, "AKIAEXAMPLE");
	assert_int_equal(kg.tenant_id, t.id);
	assert_int_equal(kg.secret_sealed_len, 68);
	assert_memory_equal(kg.secret_sealed, k.secret_sealed, 68);
	assert_int_equal(kg.created_ms, 77);
	assert_true(kg.active);

	/* Inactive key round-trips as inactive. */
	snprintf(k.id, sizeof(k.id), "AKIAOTHER");
	k.active = false;
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err),
			 KURA_OK);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKIAOTHER", &kg,
						&err),
			 KURA_OK);
	assert_false(kg.active);

	/* Unknown tenant, unknown key. */
	snprintf(k.id, sizeof(k.id), "AKIANOTENANT");
	k.tenant_id = 999999;
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKIANOTENANT", &kg,
						&err),
			 KURA_ENOENT);
}

/* ------------------------------------------------------------------ */
/* buckets                                                             */

static void test_buckets(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_bucket b = { 0 }, got;
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket *list = NULL;
	size_t n = 0;
	const char *names[] = { "zeta", "alpha", "mid-bucket" };

	assert_non_null(pool);
	b.tenant_id = f->tenant;
	snprintf(b.region, sizeof(b.region), "eu-west-1");
	snprintf(b.kek_id, sizeof(b.kek_id), "kek-2");
	b.key_wrapped_len = 3;
	memcpy(b.key_wrapped, "\x01\x02\x03", 3);
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		b.id = 100 + i;
		b.created_ms = (int64_t)i;
		snprintf(b.name, sizeof(b.name), "%s", names[i]);
		assert_int_equal(f->ops->bucket_create(f->priv, &b, &err),
				 KURA_OK);
	}
	/* Name clash and id clash. */
	b.id = 200;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	b.id = 100;
	snprintf(b.name, sizeof(b.name), "fresh-name");
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	/* Unknown tenant. */
	b.id = 201;
	b.tenant_id = 999999;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	assert_int_equal(f->ops->bucket_get(f->priv, "alpha", &got, &err),
			 KURA_OK);
	assert_int_equal(got.id, 101);
	assert_int_equal(got.tenant_id, f->tenant);
	assert_string_equal(got.region, "eu-west-1");
	assert_string_equal(got.kek_id, "kek-2");
	assert_int_equal(got.key_wrapped_len, 3);
	assert_memory_equal(got.key_wrapped, "\x01\x02\x03", 3);
	assert_int_equal(got.created_ms, 1);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &got, &err),
			 KURA_OK);
	assert_true(got.id == 0xfedcba9876543210ull);
	assert_int_equal(got.key_wrapped_len, 60);
	assert_int_equal(f->ops->bucket_get(f->priv, "nope", &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	assert_int_equal(f->ops->bucket_list(f->priv, f->tenant, pool, &list,
					     &n, &err),
			 KURA_OK);
	assert_int_equal(n, 4);
	assert_string_equal(list[0].name, "alpha");
	assert_string_equal(list[1].name, "mid-bucket");
	assert_string_equal(list[2].name, "photos");
	assert_string_equal(list[3].name, "zeta");
	assert_int_equal(f->ops->bucket_list(f->priv, 999999, pool, &list, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 0);

	/* ENOTEMPTY while an object exists, then delete. */
	assert_int_equal(put_simple(f, "k", 1, 1), KURA_OK);
	assert_int_equal(f->ops->bucket_delete(f->priv, f->bucket, &err),
			 KURA_ENOTEMPTY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1,
					       &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_delete(f->priv, f->bucket, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_delete(f->priv, f->bucket, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* The name is free again, the id never is. */
	b.tenant_id = f->tenant;
	b.id = f->bucket;
	snprintf(b.name, sizeof(b.name), "photos");
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	b.id = 555;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &err), KURA_OK);
	/* Objects cannot go into a deleted bucket. */
	assert_int_equal(put_simple(f, "k", 1, 2), KURA_ENOENT);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* objects and gc                                                      */

static void test_object_roundtrip(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o, *got = NULL;
	struct kura_part parts[3];
	static const char key[] = "dir/\xc3\xa9t\xc3\xa9\x00bin\xff";
	size_t klen = sizeof(key) - 1;

	assert_non_null(pool);
	make_object(&o, parts, 3, f->bucket, key, klen, 7);
	o.content_type = "text/plain; charset=utf-8";
	o.content_encoding = "gzip";
	o.content_language = "fr";
	o.content_disposition = "attachment; filename=\"a.txt\"";
	o.cache_control = "max-age=60";
	o.expires = "Thu, 01 Dec 2044 16:00:00 GMT";
	o.user_meta_json = "{\"colour\":\"bleu\"}";
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);

	assert_int_equal(f->ops->object_get(f->priv, f->bucket, key, klen,
					    pool, &got, &err),
			 KURA_OK);
	assert_non_null(got);
	assert_int_equal(got->bucket_id, f->bucket);
	assert_int_equal(got->key_len, klen);
	assert_memory_equal(got->key, key, klen);
	assert_memory_equal(got->version_uid, o.version_uid, KURA_UID_LEN);
	assert_int_equal(got->size, 30);
	assert_string_equal(got->etag, "etag-7");
	assert_int_equal(got->mtime_ms, o.mtime_ms);
	assert_string_equal(got->content_type, o.content_type);
	assert_string_equal(got->content_encoding, o.content_encoding);
	assert_string_equal(got->content_language, o.content_language);
	assert_string_equal(got->content_disposition, o.content_disposition);
	assert_string_equal(got->cache_control, o.cache_control);
	assert_string_equal(got->expires, o.expires);
	assert_string_equal(got->user_meta_json, o.user_meta_json);
	assert_int_equal(got->part_count, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(got->parts[i].part_no, i + 1);
		assert_memory_equal(got->parts[i].blob_id, parts[i].blob_id,
				    KURA_BLOB_ID_LEN);
		assert_int_equal(got->parts[i].size, 10);
		assert_int_equal(got->parts[i].seg_size, 65536);
		assert_memory_equal(got->parts[i].dek_wrapped,
				    parts[i].dek_wrapped,
				    KURA_WRAPPED_DEK_LEN);
		assert_string_equal(got->parts[i].etag, parts[i].etag);
	}

	/* Absent headers come back NULL; other keys and buckets miss. */
	make_object(&o, parts, 1, f->bucket, "plain", 5, 8);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "plain", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_null(got->content_type);
	assert_null(got->user_meta_json);
	assert_null(got->expires);
	assert_int_equal(got->parts[0].part_no, 0);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "plai", 4,
					    pool, &got, &err),
			 KURA_ENOENT);
	assert_null(got);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket + 1, "plain",
					    5, pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Invalid records. */
	make_object(&o, parts, 2, f->bucket, "bad", 3, 9);
	o.size = 19;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	make_object(&o, parts, 2, f->bucket, "bad", 3, 9);
	parts[1].part_no = parts[0].part_no;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	make_object(&o, parts, 1, f->bucket, "bad", 0, 9);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	{
		static char longkey[KURA_OBJECT_KEY_MAX + 1];
		memset(longkey, 'x', sizeof(longkey));
		make_object(&o, parts, 1, f->bucket, longkey, sizeof(longkey),
			    9);
		assert_int_equal(f->ops->object_put(f->priv, &o, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		make_object(&o, parts, 1, f->bucket, longkey,
			    KURA_OBJECT_KEY_MAX, 9);
		assert_int_equal(f->ops->object_put(f->priv, &o, &err),
				 KURA_OK);
	}
	/* A blob id used by another object is refused, nothing changes. */
	make_object(&o, parts, 1, f->bucket, "thief", 5, 10);
	fill_id(parts[0].blob_id, 8, 0);	/* "plain"'s blob */
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EEXIST);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "thief", 5,
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* Deleting a missing object. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "nothing",
					       7, &err),
			 KURA_ENOENT);
	kura_pool_free(pool);
}

static bool gc_contains(struct fx *f, const uint8_t id[16])
{
	uint8_t ids[64][KURA_BLOB_ID_LEN];
	size_t n = 0;
	struct kura_error err = { 0 };

	assert_int_equal(f->ops->gc_next(f->priv, ids, 64, &n, &err), KURA_OK);
	for (size_t i = 0; i < n; i++)
		if (memcmp(ids[i], id, 16) == 0)
			return true;
	return false;
}

static size_t gc_count(struct fx *f)
{
	uint8_t ids[64][KURA_BLOB_ID_LEN];
	size_t n = 0;
	struct kura_error err = { 0 };

	assert_int_equal(f->ops->gc_next(f->priv, ids, 64, &n, &err), KURA_OK);
	return n;
}

static void test_gc(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_object o;
	struct kura_part p1[2], p2[1], p3[2];
	uint8_t ids[8][KURA_BLOB_ID_LEN];
	size_t n = 99;
	bool ref = false;
	uint8_t unknown[16];

	fill_id(unknown, 999, 999);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->gc_next(f->priv, ids, 0, &n, &err), KURA_OK);
	assert_int_equal(n, 0);

	make_object(&o, p1, 2, f->bucket, "obj", 3, 1);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(f->ops->blob_referenced(f->priv, p1[0].blob_id, &ref,
						 &err),
			 KURA_OK);
	assert_true(ref);
	assert_int_equal(f->ops->blob_referenced(f->priv, unknown, &ref, &err),
			 KURA_OK);
	assert_false(ref);
	assert_int_equal(gc_count(f), 0);

	/* Replace: both old blobs queued, new one live. */
	make_object(&o, p2, 1, f->bucket, "obj", 3, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(gc_count(f), 2);
	assert_true(gc_contains(f, p1[0].blob_id));
	assert_true(gc_contains(f, p1[1].blob_id));
	assert_false(gc_contains(f, p2[0].blob_id));
	/* Queued blobs still count as referenced until gc_done. */
	assert_int_equal(f->ops->blob_referenced(f->priv, p1[0].blob_id, &ref,
						 &err),
			 KURA_OK);
	assert_true(ref);

	/* A new part may not name a queued blob. */
	make_object(&o, p3, 1, f->bucket, "other", 5, 3);
	memcpy(p3[0].blob_id, p1[0].blob_id, 16);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EEXIST);
	kura_error_clear(&err);

	/* Replace reusing a blob of the old version: only the other one is
	 * queued. */
	make_object(&o, p3, 2, f->bucket, "obj", 3, 4);
	memcpy(p3[0].blob_id, p2[0].blob_id, 16);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(gc_count(f), 2);
	assert_false(gc_contains(f, p2[0].blob_id));

	/* gc_done forgets; the blob is then unreferenced. */
	memcpy(ids[0], p1[0].blob_id, 16);
	memcpy(ids[1], p1[1].blob_id, 16);
	assert_int_equal(f->ops->gc_done(f->priv,
					 (const uint8_t(*)[KURA_BLOB_ID_LEN])ids,
					 2, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->blob_referenced(f->priv, p1[0].blob_id, &ref,
						 &err),
			 KURA_OK);
	assert_false(ref);

	/* Delete queues every blob of the version. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "obj", 3,
					       &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 2);
	assert_true(gc_contains(f, p3[0].blob_id));
	assert_true(gc_contains(f, p3[1].blob_id));
	/* gc_next honours max. */
	assert_int_equal(f->ops->gc_next(f->priv, ids, 1, &n, &err), KURA_OK);
	assert_int_equal(n, 1);
	/* gc_done of unknown ids is harmless. */
	assert_int_equal(f->ops->gc_done(f->priv,
					 (const uint8_t(*)[KURA_BLOB_ID_LEN])
						 &unknown,
					 1, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 2);
}

/* ------------------------------------------------------------------ */
/* listing                                                             */

struct bkey {
	const char *p;
	size_t n;
};

#define BK(s) { s, sizeof(s) - 1 }

static const struct bkey list_keys[] = {
	BK("a"), BK("A"), BK("a/b"), BK("a/c"), BK("ab"), BK("a\x00"),
	BK("a\x00\x01"), BK("a\x7f"), BK("a\x80"), BK("a\xff"),
	BK("a\xff\xff"), BK("a\xff" "b"), BK("b"), BK("\xff"),
	BK("\xff\xff\x00"), BK("\xff\xff\xff"), BK("\x01"),
	BK("\xc3\xa9t\xc3\xa9"),		/* été */
	BK("\xc3\xa9"), BK("\xc3\xa8"),		/* é, è */
	BK("\xe6\x97\xa5\xe6\x9c\xac"),		/* 日本 */
	BK("\xf0\x9f\x98\x80"),			/* U+1F600 */
	BK("\xef\xbf\xbf"),			/* U+FFFF */
	BK("z/\xf0\x9f\x98\x80/x"), BK("z/"), BK("z"),
};

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int d = memcmp(a, b, an < bn ? an : bn);

	if (d != 0)
		return d;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

static int bkey_cmp(const void *x, const void *y)
{
	const struct bkey *a = x, *b = y;

	return bytes_cmp(a->p, a->n, b->p, b->n);
}

/* Brute-force model of object_list over the sorted keys. */
static size_t model_list(const struct bkey *sorted, size_t nk,
			 const struct bkey *prefix, const struct bkey *after,
			 size_t limit, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < nk && n < limit; i++) {
		const struct bkey *k = &sorted[i];
		if (k->n < prefix->n || memcmp(k->p, prefix->p, prefix->n) != 0)
			continue;
		if (after->n > 0 &&
		    bytes_cmp(k->p, k->n, after->p, after->n) <= 0)
			continue;
		idx[n++] = i;
	}
	return n;
}

static void test_list_order(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	enum { NK = ARRAY_LEN(list_keys) };
	struct bkey sorted[NK];
	struct bkey bounds[3 * NK + 4];
	size_t nb = 0, checks = 0;
	static const size_t limits[] = { 1, 2, 3, 5, NK - 1, NK, NK + 1,
					 1000 };

	memcpy(sorted, list_keys, sizeof(sorted));
	qsort(sorted, NK, sizeof(sorted[0]), bkey_cmp);
	for (size_t i = 0; i < NK; i++)
		assert_int_equal(put_simple(f, list_keys[i].p, list_keys[i].n,
					    (uint32_t)(100 + i)),
				 KURA_OK);
	/* Candidate prefixes and afters: every key, every proper prefix of
	 * a key (first byte, all but last byte), and a few outsiders. */
	bounds[nb++] = (struct bkey)BK("");
	bounds[nb++] = (struct bkey)BK("\xff\xff\xff\xff");
	bounds[nb++] = (struct bkey)BK("q");
	bounds[nb++] = (struct bkey)BK("\xff\xff");
	for (size_t i = 0; i < NK; i++) {
		bounds[nb++] = list_keys[i];
		bounds[nb++] = (struct bkey){ list_keys[i].p, 1 };
		if (list_keys[i].n > 1)
			bounds[nb++] = (struct bkey){ list_keys[i].p,
						      list_keys[i].n - 1 };
	}

	for (size_t pi = 0; pi < nb; pi++) {
		for (size_t ai = 0; ai < nb; ai++) {
			for (size_t li = 0; li < ARRAY_LEN(limits); li++) {
				struct kura_pool *pool = kura_pool_new(0);
				struct kura_list_entry *e = NULL;
				size_t cnt = 12345, want[NK], nw;

				nw = model_list(sorted, NK, &bounds[pi],
						&bounds[ai], limits[li], want);
				assert_int_equal(
					f->ops->object_list(
						f->priv, f->bucket,
						bounds[pi].p, bounds[pi].n,
						bounds[ai].p, bounds[ai].n,
						limits[li], pool, &e, &cnt,
						&err),
					KURA_OK);
				if (cnt != nw)
					fail_msg("prefix %zu after %zu limit "
						 "%zu: got %zu want %zu",
						 pi, ai, limits[li], cnt, nw);
				for (size_t i = 0; i < nw; i++) {
					const struct bkey *k = &sorted[want[i]];
					assert_int_equal(e[i].key_len, k->n);
					assert_memory_equal(e[i].key, k->p,
							    k->n);
					assert_int_equal(e[i].size, 10);
				}
				checks++;
				kura_pool_free(pool);
			}
		}
	}
	assert_true(checks > 1000);

	/* Paging with after = last key walks the whole bucket in order. */
	for (size_t page = 1; page <= 4; page++) {
		struct kura_pool *pool = kura_pool_new(0);
		char last[KURA_OBJECT_KEY_MAX];
		size_t last_len = 0, seen = 0, cnt;

		do {
			struct kura_list_entry *e = NULL;
			assert_int_equal(f->ops->object_list(f->priv, f->bucket,
							     NULL, 0, last,
							     last_len, page,
							     pool, &e, &cnt,
							     &err),
					 KURA_OK);
			for (size_t i = 0; i < cnt; i++) {
				assert_true(seen < NK);
				assert_int_equal(e[i].key_len,
						 sorted[seen].n);
				assert_memory_equal(e[i].key, sorted[seen].p,
						    sorted[seen].n);
				seen++;
			}
			if (cnt > 0) {
				memcpy(last, e[cnt - 1].key, e[cnt - 1].key_len);
				last_len = e[cnt - 1].key_len;
			}
		} while (cnt == page);
		assert_int_equal(seen, NK);
		kura_pool_free(pool);
	}

	/* limit 0 and an empty or unknown bucket. */
	{
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_list_entry *e = NULL;
		size_t cnt = 99;
		assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL,
						     0, NULL, 0, 0, pool, &e,
						     &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 0);
		assert_int_equal(f->ops->object_list(f->priv, 4242, "a", 1,
						     NULL, 0, 10, pool, &e,
						     &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 0);
		kura_pool_free(pool);
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

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
	assert_int_equal(sqlite3_exec(h, "PRAGMA synchronous = OFF", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(h,
				   "INSERT INTO objects (bucket_id, key, "
				   "version_uid, size, etag, mtime_ms, "
				   "part_count) VALUES (?, ?, ?, ?, ?, ?, 0)",
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
	struct kura_list_entry *e = NULL;
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

static void test_list_large(void **state)
{
	struct fx *f = *state;
	const char *env = getenv("KURA_META_BENCH_ROWS");
	uint32_t rows = 100000;
	double t0, load, first, cold, pre, aft, tail;
	char after[32];
	size_t in_prefix = 0, past_after = 0;

	if (env != NULL && env[0] != '\0') {
		unsigned long v = strtoul(env, NULL, 10);
		if (v >= 1000 && v <= 100000000)
			rows = (uint32_t)v;
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
/* concurrency                                                         */

#define THREADS 8
#define ROUNDS 30

struct worker {
	struct fx *f;
	int no;
	int failures;
	char msg[KURA_ERROR_MSG_MAX];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fx *f = w->f;

	for (int i = 0; i < ROUNDS && w->failures == 0; i++) {
		struct kura_error err = { 0 };
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_object o, *got = NULL;
		struct kura_part parts[2];
		struct kura_list_entry *e = NULL;
		char key[32], prefix[16];
		size_t cnt = 0;
		uint32_t tag = (uint32_t)(w->no * 1000 + i);

		snprintf(prefix, sizeof(prefix), "t%d/", w->no);
		/* Each thread rewrites a few keys of its own and one shared
		 * key, so replacements race with each other. */
		snprintf(key, sizeof(key), "t%d/k%02d", w->no, i % 5);
		make_object(&o, parts, 2, f->bucket, key, strlen(key), tag);
		if (f->ops->object_put(f->priv, &o, &err) != KURA_OK)
			goto fail;
		if (f->ops->object_get(f->priv, f->bucket, key, strlen(key),
				       pool, &got, &err) != KURA_OK)
			goto fail;
		if (got->part_count != 2 || got->size != 20 ||
		    memcmp(got->version_uid, o.version_uid, 16) != 0) {
			kura_fail(&err, KURA_EINTERNAL, "wrong object read");
			goto fail;
		}
		make_object(&o, parts, 1, f->bucket, "shared", 6,
			    tag + 500000);
		if (f->ops->object_put(f->priv, &o, &err) != KURA_OK)
			goto fail;
		if (f->ops->object_list(f->priv, f->bucket, prefix,
					strlen(prefix), NULL, 0, 100, pool, &e,
					&cnt, &err) != KURA_OK)
			goto fail;
		if (cnt != (size_t)(i < 5 ? i + 1 : 5)) {
			kura_fail(&err, KURA_EINTERNAL, "listed %zu keys", cnt);
			goto fail;
		}
		kura_pool_free(pool);
		continue;
fail:
		w->failures++;
		snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
		kura_pool_free(pool);
	}
	return NULL;
}

static void test_concurrency(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object *got = NULL;
	uint8_t ids[1024][KURA_BLOB_ID_LEN];
	size_t n = 0;

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .f = f, .no = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main,
						&w[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures != 0)
			fail_msg("thread %d: %s", i, w[i].msg);
	}
	/* Every replaced version left exactly its blobs in gc: per thread,
	 * ROUNDS puts over 5 keys of 2 blobs; all threads share one key of
	 * 1 blob. */
	assert_int_equal(f->ops->gc_next(f->priv, ids, 1024, &n, &err),
			 KURA_OK);
	assert_int_equal(n, THREADS * (ROUNDS - 5) * 2 +
				    (THREADS * ROUNDS - 1));
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "shared", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->part_count, 1);
	kura_pool_free(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenants_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_roundtrip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_large, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrency, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

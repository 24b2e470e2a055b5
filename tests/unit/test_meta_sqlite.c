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
 * The concurrency tests run several threads against one store; the
 * multipart one races part uploads against a completion and an abort and
 * then accounts for every blob id it stored (live xor queued for gc).
 *
 * Multipart uploads, tags and migration 1 -> 2 (from a database built with
 * the verbatim SQL of migration 1) are tested from test_migrate_v1 on; the
 * upload listing is checked against a brute-force model like the object
 * listing.
 *
 * Key management (schema 3) is tested from test_migrate_v2 on: the
 * migration of real v2 data, keys and their lifecycle, bucket keys,
 * rotation (also raced against buckets joining the key), re-wrapping,
 * destruction, purge and the key generation.  Every bucket the tests make
 * registers its first bucket key (bk_register), so make_object can give
 * each part its bucket's key.
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

#include "kura/config.h"
#include "kura/err.h"
#include "kura/meta.h"
#include "kura/pool.h"
#include "rmtree.h"
#include "kura/banned.h"

/* The schema version this code writes (src/meta/sqlite.c migrations). */
#define SCHEMA_NOW 5
#define STR_(x) #x
#define STR(x) STR_(x)

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
	uint64_t key;		/* the bucket's own key */
	uint64_t bk;		/* its first bucket key */
};

/* Bucket -> bucket key for the parts the helpers make.  Reset by setup;
 * written only by the main thread before any worker starts. */
static struct {
	uint64_t bucket, bk;
} bk_reg[32];
static size_t bk_reg_n;
static uint64_t bk_default;	/* for make_part: the fixture bucket's */

static void bk_register(uint64_t bucket, uint64_t bk)
{
	for (size_t i = 0; i < bk_reg_n; i++) {
		if (bk_reg[i].bucket == bucket) {
			bk_reg[i].bk = bk;
			return;
		}
	}
	assert_true(bk_reg_n < sizeof(bk_reg) / sizeof(bk_reg[0]));
	bk_reg[bk_reg_n].bucket = bucket;
	bk_reg[bk_reg_n].bk = bk;
	bk_reg_n++;
}

/* The registered bucket key of bucket (0 for an unknown bucket). */
static uint64_t bk_of(uint64_t bucket)
{
	for (size_t i = 0; i < bk_reg_n; i++)
		if (bk_reg[i].bucket == bucket)
			return bk_reg[i].bk;
	return 0;
}

/* Any fixed key: the row MACs are checked by the store itself. */
static const uint8_t fx_row_key[KURA_ROW_KEY_LEN] = { 0x6b, 0x75, 0x72, 0x61 };

static void fx_open(struct fx *f)
{
	struct kura_error err = { 0 };
	enum kura_err r = kura_meta_open(f->cfg, f->dir, &f->meta, &err);

	if (r != KURA_OK)
		fail_msg("kura_meta_open: %s", err.msg);
	if (f->meta->ops->set_row_key(f->meta->priv, fx_row_key, &err) != KURA_OK)
		fail_msg("set_row_key: %s", err.msg);
	f->ops = f->meta->ops;
	f->priv = f->meta->priv;
}

static void fx_close(struct fx *f)
{
	kura_meta_close(f->meta);
	f->meta = NULL;
}

/* A new key record for tenant (the fields a caller sets). */
static void make_key(struct kura_key *k, uint64_t tenant, const char *name,
		     enum kura_key_kind kind)
{
	memset(k, 0, sizeof(*k));
	k->tenant_id = tenant;
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->kind = kind;
	k->state = KURA_KEY_ENABLED;
	k->current_version = 1;
	snprintf(k->provider, sizeof(k->provider), "local");
	k->created_ms = 2000;
}

/* A bucket key of (bucket, key, version) with recognisable bytes. */
static void make_bk(struct kura_bucket_key *bk, uint64_t bucket,
		    uint64_t key, uint32_t version, uint8_t fill)
{
	memset(bk, 0, sizeof(*bk));
	bk->bucket_id = bucket;
	bk->key_id = key;
	bk->key_version = version;
	bk->wrapped_len = 60;
	memset(bk->wrapped, fill, bk->wrapped_len);
}

/* Create bucket (id, name) of tenant with its own new key "bucket/NAME"
 * (KEK "kek-NAME") and register its bucket key. */
static enum kura_err create_bucket(struct fx *f, uint64_t tenant,
				   uint64_t id, const char *name,
				   struct kura_bucket *bout,
				   struct kura_bucket_key *bkout)
{
	struct kura_error err = { 0 };
	struct kura_bucket b = { 0 };
	struct kura_key k;
	struct kura_bucket_key bk;
	char kname[KURA_KEY_NAME_MAX], kek[KURA_KEK_ID_MAX];
	enum kura_err r;

	b.id = id;
	b.tenant_id = tenant;
	snprintf(b.name, sizeof(b.name), "%s", name);
	snprintf(b.region, sizeof(b.region), "us-east-1");
	b.created_ms = 3000;
	snprintf(kname, sizeof(kname), "bucket/%s", name);
	snprintf(kek, sizeof(kek), "kek-%s", name);
	make_key(&k, tenant, kname, KURA_KEY_BUCKET);
	make_bk(&bk, 0, 0, 1, 0x5a);
	r = f->ops->bucket_create(f->priv, &b, &k, kek, &bk, &err);
	if (r != KURA_OK)
		return r;
	assert_int_equal(b.key_id, k.id);
	assert_int_equal(bk.key_id, k.id);
	assert_int_equal(bk.bucket_id, id);
	assert_true(bk.id != 0);
	bk_register(id, bk.id);
	if (bout != NULL)
		*bout = b;
	if (bkout != NULL)
		*bkout = bk;
	return KURA_OK;
}

/* The key generation now. */
static uint64_t gen(struct fx *f)
{
	struct kura_error err = { 0 };
	uint64_t g = 0;

	assert_int_equal(f->ops->key_generation(f->priv, &g, &err), KURA_OK);
	return g;
}

/* A store with one tenant and one bucket. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kura_error err = { 0 };
	const char *base = getenv("TMPDIR");
	struct kura_tenant t = { 0 };
	struct kura_bucket b = { 0 };
	struct kura_bucket_key bk;

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
	bk_reg_n = 0;
	/* Bucket id above INT64_MAX on purpose. */
	assert_int_equal(create_bucket(f, t.id, 0xfedcba9876543210ull,
				       "photos", &b, &bk),
			 KURA_OK);
	f->bucket = b.id;
	f->key = b.key_id;
	f->bk = bk.id;
	bk_default = bk.id;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	kura_config_free(f->cfg);
	rmtree(f->dir);
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
		p->bk_id = bk_of(bucket);
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
	assert_int_equal(sql_int(f->db, "PRAGMA user_version"), SCHEMA_NOW);
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
	struct kura_bucket_key bk, gbk;
	struct kura_key tk, k2, gk;
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket *list = NULL;
	struct kura_bucket_key *bks = NULL;
	size_t n = 0;
	const char *names[] = { "zeta", "alpha", "mid-bucket" };

	assert_non_null(pool);
	/* Three buckets sharing a tenant key, each with its bucket key. */
	make_key(&tk, f->tenant, "tenant/default", KURA_KEY_TENANT);
	assert_int_equal(f->ops->key_create(f->priv, &tk, "kek-tenant", &err),
			 KURA_OK);
	b.tenant_id = f->tenant;
	snprintf(b.region, sizeof(b.region), "eu-west-1");
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		b.id = 100 + i;
		b.created_ms = (int64_t)i;
		b.key_id = tk.id;
		snprintf(b.name, sizeof(b.name), "%s", names[i]);
		make_bk(&bk, 0, 0, 1, (uint8_t)(0x10 + i));
		bk.wrapped_len = 3 + i;
		assert_int_equal(f->ops->bucket_create(f->priv, &b, NULL, NULL,
						       &bk, &err),
				 KURA_OK);
		assert_int_equal(b.key_id, tk.id);
		assert_int_equal(bk.bucket_id, 100 + i);
		assert_int_equal(bk.key_id, tk.id);
		assert_true(bk.current);
	}
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, tk.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	/* Name clash and id clash; no bucket key is left behind. */
	b.id = 200;
	make_bk(&bk, 0, 0, 1, 1);
	assert_int_equal(f->ops->bucket_create(f->priv, &b, NULL, NULL, &bk,
					       &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	b.id = 100;
	snprintf(b.name, sizeof(b.name), "fresh-name");
	assert_int_equal(f->ops->bucket_create(f->priv, &b, NULL, NULL, &bk,
					       &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, tk.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	/* With a new key: a bucket name clash leaves no key; a key name
	 * clash leaves no bucket. */
	assert_int_equal(create_bucket(f, f->tenant, 300, "zeta", NULL, NULL),
			 KURA_EEXIST);
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant,
						 "bucket/zeta", &gk, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	make_key(&k2, f->tenant, "bucket/fresh", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &k2, "kek-x", &err),
			 KURA_OK);
	assert_int_equal(create_bucket(f, f->tenant, 301, "fresh", NULL, NULL),
			 KURA_EEXIST);
	assert_int_equal(f->ops->bucket_get(f->priv, "fresh", &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* Unknown tenant. */
	b.id = 201;
	b.tenant_id = 999999;
	snprintf(b.name, sizeof(b.name), "nobody");
	assert_int_equal(f->ops->bucket_create(f->priv, &b, NULL, NULL, &bk,
					       &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(create_bucket(f, 999999, 202, "nobody", NULL, NULL),
			 KURA_ENOENT);

	assert_int_equal(f->ops->bucket_get(f->priv, "alpha", &got, &err),
			 KURA_OK);
	assert_int_equal(got.id, 101);
	assert_int_equal(got.tenant_id, f->tenant);
	assert_string_equal(got.region, "eu-west-1");
	assert_int_equal(got.key_id, tk.id);
	assert_int_equal(got.default_sse, KURA_SSE_S3);
	assert_int_equal(got.default_kms_key_id, 0);
	assert_int_equal(got.created_ms, 1);
	assert_int_equal(f->ops->bucket_key_current(f->priv, 101, tk.id, &gbk,
						    &err),
			 KURA_OK);
	assert_int_equal(gbk.bucket_id, 101);
	assert_int_equal(gbk.key_version, 1);
	assert_int_equal(gbk.wrapped_len, 4);
	assert_memory_equal(gbk.wrapped, "\x11\x11\x11\x11", 4);
	assert_string_equal(gbk.kek_id, "kek-tenant");
	assert_int_equal(gbk.tenant_id, f->tenant);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &got, &err),
			 KURA_OK);
	assert_true(got.id == 0xfedcba9876543210ull);
	assert_int_equal(got.key_id, f->key);
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &gbk, &err),
			 KURA_OK);
	assert_int_equal(gbk.wrapped_len, 60);
	assert_string_equal(gbk.kek_id, "kek-photos");
	assert_true(gbk.bucket_id == 0xfedcba9876543210ull);
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
	assert_int_equal(list[2].key_id, f->key);
	assert_int_equal(list[3].key_id, tk.id);
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
	/* Its bucket keys went with it; its own key stays for the caller. */
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &gbk, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get(f->priv, f->key, &gk, &err), KURA_OK);
	assert_int_equal(gk.state, KURA_KEY_ENABLED);
	/* The name is free again, the id never is. */
	assert_int_equal(create_bucket(f, f->tenant, f->bucket, "photos", NULL,
				       NULL),
			 KURA_EEXIST);
	/* The name is free once the old bucket's key is destroyed too. */
	assert_int_equal(create_bucket(f, f->tenant, 555, "photos", NULL,
				       NULL),
			 KURA_EEXIST);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, f->key, 1,
						       &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_destroyed(f->priv, f->key, &err),
			 KURA_OK);
	assert_int_equal(create_bucket(f, f->tenant, 555, "photos", &b, NULL),
			 KURA_OK);
	assert_true(b.key_id != f->key);
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
				struct kura_object *e = NULL;
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
			struct kura_object *e = NULL;
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
		struct kura_object *e = NULL;
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
/* migration from schema version 1                                     */

/* Migration 1 of src/meta/sqlite.c, verbatim: shipped steps are never
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
			 sql_int(db, "SELECT count(*) FROM keys");

	assert_int_equal(m->ops->set_row_key(m->priv, fx_row_key, &err), KURA_OK);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM settings WHERE "
				     "name = 'seal_pending'"),
			 1);
	assert_int_equal(m->ops->tenant_get(m->priv, 1, &t, &err), KURA_EBUSY);
	sql_exec(db, "DELETE FROM settings WHERE name = 'seal_pending'");
	assert_int_equal(m->ops->tenant_get(m->priv, 1, &t, &err),
			 KURA_EINTEGRITY);
	sql_exec(db, "INSERT INTO settings (name, value) VALUES "
		     "('seal_pending', x'01')");
	assert_int_equal(m->ops->row_mac_upgrade(m->priv, &rows, &err), KURA_OK);
	assert_int_equal(rows, (size_t)before);
	assert_true(before > 0);
	assert_int_equal(m->ops->tenant_get(m->priv, 1, &t, &err), KURA_OK);
	/* Nothing is left to give a MAC to. */
	assert_int_equal(m->ops->row_mac_upgrade(m->priv, &rows, &err), KURA_OK);
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
	assert_int_equal(
		sqlite3_prepare_v2(h,
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
	assert_int_equal(ops->object_set_tags(m->priv, 7, "old", 3,
					      got->version_uid,
					      NULL, 0, "{\"k\":\"v\"}", NULL, 0, 0,
					      &err),
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
		assert_int_equal(ops->bucket_key_get(m->priv, p.bk_id, &bk,
						     &err),
				 KURA_OK);
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
		assert_int_equal(m->ops->upload_list_parts(m->priv, 7,
							   "legacy-upload", 0,
							   10, pool, &parts,
							   &n, &err),
				 KURA_OK);
		assert_int_equal(n, 1);
		assert_int_equal(parts[0].mtime_ms, 11);
	}
	kura_meta_close(m);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* object tags                                                         */

static void test_tags(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o, *got = NULL;
	struct kura_part parts[2];

	assert_non_null(pool);
	make_object(&o, parts, 2, f->bucket, "tagged", 6, 40);
	o.tags_json = "{\"project\":\"x\",\"\xc3\xa9\":\"\"}";
	parts[0].mtime_ms = 111;
	parts[1].mtime_ms = 222;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->tags_json, o.tags_json);
	assert_int_equal(got->parts[0].mtime_ms, 111);
	assert_int_equal(got->parts[1].mtime_ms, 222);

	/* Replace, then clear. */
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "tagged",
						 6, o.version_uid, NULL, 0, "{\"a\":\"1\"}",
						 NULL, 0, 0, &err),
			 KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->tags_json, "{\"a\":\"1\"}");
	/* Tagging changes neither the version nor the data. */
	assert_memory_equal(got->version_uid, o.version_uid, KURA_UID_LEN);
	assert_string_equal(got->etag, "etag-40");
	assert_int_equal(got->mtime_ms, o.mtime_ms);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "tagged",
						 6, o.version_uid, NULL, 0, NULL, NULL, 0, 0,
						 &err),
			 KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_null(got->tags_json);

	/* No such object (nor in another bucket, nor a bad key). */
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "tagge",
						 5, o.version_uid, NULL, 0, "{}", NULL, 0, 0,
						 &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket + 1,
						 "tagged", 6, o.version_uid, NULL, 0, "{}",
						 NULL, 0, 0, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "", 0,
						 o.version_uid, NULL, 0, "{}", NULL, 0, 0,
						 &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	/* Only while it is still the version the caller read. */
	{
		uint8_t other[KURA_UID_LEN];
		memcpy(other, o.version_uid, KURA_UID_LEN);
		other[0] ^= 1;
		assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket,
							 "tagged", 6, other, NULL, 0, "{}",
							 NULL, 0, 0, &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
	}

	/* A put replaces the tags with whatever the new record says. */
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "tagged",
						 6, o.version_uid, NULL, 0, "{\"b\":\"2\"}",
						 NULL, 0, 0, &err),
			 KURA_OK);
	make_object(&o, parts, 1, f->bucket, "tagged", 6, 41);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_null(got->tags_json);
	kura_pool_free(pool);
}
/* ------------------------------------------------------------------ */
/* multipart uploads                                                   */

static void make_upload(struct kura_upload *u, uint64_t bucket,
			const char *key, size_t key_len, const char *id,
			uint32_t tag, int64_t created_ms)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->id, sizeof(u->id), "%s", id);
	u->bucket_id = bucket;
	u->key = key;
	u->key_len = key_len;
	fill_id(u->version_uid, tag, 0xeeeeeeeeu);
	u->created_ms = created_ms;
}

/* Part part_no with blob id (tag, serial) and size 10 + part_no. */
static void make_part(struct kura_part *p, uint32_t part_no, uint32_t tag,
		      uint32_t serial)
{
	memset(p, 0, sizeof(*p));
	p->part_no = part_no;
	fill_id(p->blob_id, tag, serial);
	p->blob_id[14] = 0x55;	/* never equal to an object's blob */
	p->size = 10 + part_no;
	p->seg_size = 65536;
	memset(p->dek_wrapped, (int)(serial & 0xff), sizeof(p->dek_wrapped));
	snprintf(p->etag, sizeof(p->etag), "%08x%08x", tag, serial);
	p->mtime_ms = 1800000000000 + serial;
	p->bk_id = bk_default;
}

static bool referenced(struct fx *f, const uint8_t id[16])
{
	struct kura_error err = { 0 };
	bool ref = false;

	assert_int_equal(f->ops->blob_referenced(f->priv, id, &ref, &err),
			 KURA_OK);
	return ref;
}

static size_t list_parts(struct fx *f, const char *uid, uint32_t after,
			 size_t limit, struct kura_pool *pool,
			 struct kura_part **out)
{
	struct kura_error err = { 0 };
	size_t n = 0;

	assert_int_equal(f->ops->upload_list_parts(f->priv, f->bucket, uid,
						   after, limit, pool, out, &n,
						   &err),
			 KURA_OK);
	return n;
}

static void test_upload_basics(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_upload u, *got = NULL;
	struct kura_part p, old, *parts = NULL;
	static const char key[] = "big/\xc3\xa9\x00file";
	size_t klen = sizeof(key) - 1;
	static const uint32_t order[] = { 3, 1, 10000, 2 };
	size_t n = 0;

	assert_non_null(pool);
	make_upload(&u, f->bucket, key, klen, "0001upload", 1, 5000);
	u.content_type = "application/x-tar";
	u.content_encoding = "gzip";
	u.content_language = "de";
	u.content_disposition = "inline";
	u.cache_control = "no-cache";
	u.expires = "Thu, 01 Dec 2044 16:00:00 GMT";
	u.user_meta_json = "{\"m\":\"1\"}";
	u.tags_json = "{\"t\":\"2\"}";
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);

	/* Create errors: duplicate id, unknown bucket, bad id, bad key, a
	 * version uid that is already an object's. */
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	{
		struct kura_upload v;
		struct kura_object o;
		struct kura_part op[1];

		make_upload(&v, f->bucket + 1, "k", 1, "other", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_ENOENT);
		kura_error_clear(&err);
		make_upload(&v, f->bucket, "k", 1, "has space", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		make_upload(&v, f->bucket, "k", 1, "", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		make_upload(&v, f->bucket, "", 0, "other", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		/* The uid of an upload in progress: another upload ... */
		make_upload(&v, f->bucket, "k", 1, "other", 1, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
		/* ... or an object may not take it, nor the reverse. */
		make_object(&o, op, 1, f->bucket, "obj", 3, 2);
		memcpy(o.version_uid, u.version_uid, KURA_UID_LEN);
		assert_int_equal(f->ops->object_put(f->priv, &o, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
		make_object(&o, op, 1, f->bucket, "obj", 3, 2);
		assert_int_equal(f->ops->object_put(f->priv, &o, &err),
				 KURA_OK);
		make_upload(&v, f->bucket, "k", 1, "other", 2, 1);
		memcpy(v.version_uid, o.version_uid, KURA_UID_LEN);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
	}

	/* Get: every field round-trips; another bucket or id misses. */
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "0001upload",
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->id, "0001upload");
	assert_int_equal(got->bucket_id, f->bucket);
	assert_int_equal(got->key_len, klen);
	assert_memory_equal(got->key, key, klen);
	assert_memory_equal(got->version_uid, u.version_uid, KURA_UID_LEN);
	assert_int_equal(got->created_ms, 5000);
	assert_string_equal(got->content_type, u.content_type);
	assert_string_equal(got->content_encoding, u.content_encoding);
	assert_string_equal(got->content_language, u.content_language);
	assert_string_equal(got->content_disposition, u.content_disposition);
	assert_string_equal(got->cache_control, u.cache_control);
	assert_string_equal(got->expires, u.expires);
	assert_string_equal(got->user_meta_json, u.user_meta_json);
	assert_string_equal(got->tags_json, u.tags_json);
	got = NULL;
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket + 1,
					    "0001upload", pool, &got, &err),
			 KURA_ENOENT);
	assert_null(got);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "0001uploa",
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "bad\nid",
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Parts in any order; none yet. */
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 0);
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		make_part(&p, order[i], 1, order[i]);
		assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
							 "0001upload", &p,
							 &err),
				 KURA_OK);
		assert_true(referenced(f, p.blob_id));
	}
	assert_int_equal(gc_count(f), 0);

	/* Replace part 2: the old blob is queued, the new one listed. */
	make_part(&old, 2, 1, 2);
	make_part(&p, 2, 1, 22);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 1);
	assert_true(gc_contains(f, old.blob_id));
	assert_true(referenced(f, old.blob_id));	/* until gc_done */
	/* Retrying with the same blob changes nothing. */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 1);
	assert_false(gc_contains(f, p.blob_id));

	/* List with after and limit. */
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 4);
	assert_int_equal(parts[0].part_no, 1);
	assert_int_equal(parts[1].part_no, 2);
	assert_memory_equal(parts[1].blob_id, p.blob_id, KURA_BLOB_ID_LEN);
	assert_int_equal(parts[1].size, 12);
	assert_int_equal(parts[1].seg_size, 65536);
	assert_memory_equal(parts[1].dek_wrapped, p.dek_wrapped,
			    KURA_WRAPPED_DEK_LEN);
	assert_string_equal(parts[1].etag, p.etag);
	assert_int_equal(parts[1].mtime_ms, p.mtime_ms);
	assert_int_equal(parts[2].part_no, 3);
	assert_int_equal(parts[3].part_no, 10000);
	assert_int_equal(list_parts(f, "0001upload", 0, 2, pool, &parts), 2);
	assert_int_equal(parts[1].part_no, 2);
	assert_int_equal(list_parts(f, "0001upload", 2, 2, pool, &parts), 2);
	assert_int_equal(parts[0].part_no, 3);
	assert_int_equal(parts[1].part_no, 10000);
	assert_int_equal(list_parts(f, "0001upload", 3, 100, pool, &parts), 1);
	assert_int_equal(list_parts(f, "0001upload", 10000, 100, pool, &parts),
			 0);
	assert_int_equal(list_parts(f, "0001upload", 0, 0, pool, &parts), 0);

	/* Part errors: numbers out of range, a blob another part, an
	 * object or the gc queue holds. */
	make_part(&p, 0, 1, 50);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_part(&p, 10001, 1, 50);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_part(&p, 4, 1, 3);		/* part 3's blob */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	make_part(&p, 4, 1, 50);
	fill_id(p.blob_id, 2, 0);	/* object "obj"'s blob */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	memcpy(p.blob_id, old.blob_id, KURA_BLOB_ID_LEN);	/* queued */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	/* ... and an object may not take an upload's blob. */
	{
		struct kura_object o;
		struct kura_part op[1];
		make_object(&o, op, 1, f->bucket, "thief", 5, 3);
		make_part(&p, 3, 1, 3);
		memcpy(op[0].blob_id, p.blob_id, KURA_BLOB_ID_LEN);
		assert_int_equal(f->ops->object_put(f->priv, &o, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
	}
	/* Wrong bucket, unknown id: ENOENT. */
	make_part(&p, 5, 1, 51);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket + 1,
						 "0001upload", &p, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_list_parts(f->priv, f->bucket,
						   "nosuch", 0, 10, pool,
						   &parts, &n, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 4);

	/* Abort: all four blobs queued, the upload gone. */
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket + 1,
					      "0001upload", &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "0001upload",
					      &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 5);
	for (size_t i = 0; i < 4; i++)
		assert_true(gc_contains(f, parts[i].blob_id));
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "0001upload",
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "0001upload",
					      &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	make_part(&p, 5, 1, 52);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_false(referenced(f, p.blob_id));
	assert_int_equal(f->ops->upload_list_parts(f->priv, f->bucket,
						   "0001upload", 0, 10, pool,
						   &parts, &n, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* The id may be used again. */
	make_upload(&u, f->bucket, "again", 5, "0001upload", 9, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 0);
	kura_pool_free(pool);
}

/* Upload "U" of key with parts 1..5 (blobs (tag, 1..5)). */
static void upload_with_parts(struct fx *f, const char *id, const char *key,
			      uint32_t tag, struct kura_part parts[5])
{
	struct kura_error err = { 0 };
	struct kura_upload u;

	make_upload(&u, f->bucket, key, strlen(key), id, tag, 100);
	u.content_type = "video/mp4";
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	for (uint32_t i = 0; i < 5; i++) {
		make_part(&parts[i], i + 1, tag, i + 1);
		assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
							 id, &parts[i], &err),
				 KURA_OK);
	}
}

/* The object completing upload uid with the given parts. */
static void completed_object(struct kura_object *o, uint64_t bucket,
			     const char *key, uint32_t tag,
			     struct kura_part *chosen, uint32_t n)
{
	memset(o, 0, sizeof(*o));
	o->bucket_id = bucket;
	o->key = key;
	o->key_len = strlen(key);
	fill_id(o->version_uid, tag, 0xeeeeeeeeu);
	snprintf(o->etag, sizeof(o->etag), "%032x-%u", tag, n);
	o->mtime_ms = 1900000000000;
	o->content_type = "video/mp4";
	o->tags_json = "{\"done\":\"yes\"}";
	o->part_count = n;
	o->parts = chosen;
	for (uint32_t i = 0; i < n; i++)
		o->size += chosen[i].size;
}

static void test_upload_complete(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_part parts[5], chosen[3], prev[2];
	struct kura_object o, *got = NULL;
	struct kura_upload *u = NULL;
	struct kura_part *lp = NULL;

	assert_non_null(pool);
	/* An object the completion replaces. */
	make_object(&o, prev, 2, f->bucket, "movie", 5, 60);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	upload_with_parts(f, "U1", "movie", 61, parts);
	chosen[0] = parts[0];
	chosen[1] = parts[2];
	chosen[2] = parts[4];

	/* Mismatches first; each leaves everything as it was. */
	completed_object(&o, f->bucket, "movie", 61, chosen, 3);
	chosen[1].blob_id[0] ^= 1;
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[1] = parts[2];
	chosen[1].size++;
	o.size++;
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[1] = parts[2];
	o.size--;
	snprintf(chosen[2].etag, sizeof(chosen[2].etag), "other");
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[2] = parts[4];
	chosen[2].part_no = 6;		/* never uploaded */
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[2] = parts[4];
	/* Another key, another uid, another bucket, a malformed record. */
	completed_object(&o, f->bucket, "movie2", 61, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	completed_object(&o, f->bucket, "movie", 62, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	completed_object(&o, f->bucket + 1, "movie", 61, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	completed_object(&o, f->bucket, "movie", 61, chosen, 0);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	completed_object(&o, f->bucket, "movie", 61, chosen, 3);
	o.size++;
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(list_parts(f, "U1", 0, 100, pool, &lp), 5);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "movie", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->etag, "etag-60");

	/* Complete with parts 1, 3, 5. */
	completed_object(&o, f->bucket, "movie", 61, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_OK);
	/* Unchosen parts 2, 4 and the replaced object's two blobs queued. */
	assert_int_equal(gc_count(f), 4);
	assert_true(gc_contains(f, parts[1].blob_id));
	assert_true(gc_contains(f, parts[3].blob_id));
	assert_true(gc_contains(f, prev[0].blob_id));
	assert_true(gc_contains(f, prev[1].blob_id));
	for (size_t i = 0; i < 3; i++) {
		assert_false(gc_contains(f, chosen[i].blob_id));
		assert_true(referenced(f, chosen[i].blob_id));
	}
	/* The object reads back with the upload's parts, in order, under
	 * the upload's uid and part numbers. */
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "movie", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_memory_equal(got->version_uid, o.version_uid, KURA_UID_LEN);
	assert_int_equal(got->size, 11 + 13 + 15);
	assert_string_equal(got->etag, o.etag);
	assert_int_equal(got->mtime_ms, 1900000000000);
	assert_string_equal(got->content_type, "video/mp4");
	assert_string_equal(got->tags_json, "{\"done\":\"yes\"}");
	assert_int_equal(got->part_count, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(got->parts[i].part_no, chosen[i].part_no);
		assert_memory_equal(got->parts[i].blob_id, chosen[i].blob_id,
				    KURA_BLOB_ID_LEN);
		assert_int_equal(got->parts[i].size, chosen[i].size);
		assert_memory_equal(got->parts[i].dek_wrapped,
				    chosen[i].dek_wrapped,
				    KURA_WRAPPED_DEK_LEN);
		assert_string_equal(got->parts[i].etag, chosen[i].etag);
		assert_int_equal(got->parts[i].mtime_ms, chosen[i].mtime_ms);
	}
	/* The upload is gone: get, list, put, complete, abort all miss. */
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "U1", pool, &u,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "U1", &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 4);

	/* Deleting the completed object queues exactly its parts. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "movie", 5,
					       &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 7);
	for (size_t i = 0; i < 3; i++)
		assert_true(gc_contains(f, chosen[i].blob_id));

	/* Complete after abort: ENOENT, nothing created. */
	upload_with_parts(f, "U2", "clip", 63, parts);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "U2", &err),
			 KURA_OK);
	completed_object(&o, f->bucket, "clip", 63, parts, 5);
	assert_int_equal(f->ops->upload_complete(f->priv, "U2", &o, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "clip", 4,
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 12);

	/* Completing with every part, no object to replace: nothing
	 * queued. */
	upload_with_parts(f, "U3", "whole", 64, parts);
	completed_object(&o, f->bucket, "whole", 64, parts, 5);
	o.tags_json = NULL;
	assert_int_equal(f->ops->upload_complete(f->priv, "U3", &o, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 12);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "whole", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->part_count, 5);
	assert_null(got->tags_json);
	kura_pool_free(pool);
}
struct ukey {
	struct bkey key;
	const char *id;
};

static int ukey_cmp(const void *x, const void *y)
{
	const struct ukey *a = x, *b = y;
	int d = bytes_cmp(a->key.p, a->key.n, b->key.p, b->key.n);

	return d != 0 ? d : strcmp(a->id, b->id);
}

/* Brute-force model of upload_list over the sorted (key, id) pairs. */
static size_t model_ulist(const struct ukey *sorted, size_t nk,
			  const struct bkey *prefix, const struct bkey *km,
			  const char *idm, size_t limit, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < nk && n < limit; i++) {
		const struct ukey *u = &sorted[i];
		int d;
		if (u->key.n < prefix->n ||
		    memcmp(u->key.p, prefix->p, prefix->n) != 0)
			continue;
		if (km->n > 0) {
			d = bytes_cmp(u->key.p, u->key.n, km->p, km->n);
			if (d < 0)
				continue;
			if (d == 0 && (idm[0] == '\0' || strcmp(u->id, idm) <= 0))
				continue;
		}
		idx[n++] = i;
	}
	return n;
}

static void test_upload_list(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	static const char *const ids[] = { "0a", "5zz", "7b" };
	static const char *const id_markers[] = { "", "0a", "5", "5zz",
						  "7b", "~" };
	static const size_t limits[] = { 1, 2, 5, 1000 };
	enum { NKEYS = 12, NU = NKEYS * 2 };
	struct ukey all[NU];
	struct bkey bounds[3 * NKEYS + 3];
	size_t nb = 0, checks = 0;

	/* Keys 0..11 of list_keys; key i gets ids i%3 and (i+1)%3, so
	 * both orders of creation occur.  Ids are globally unique, so
	 * prefix them with the key index. */
	for (size_t i = 0; i < NKEYS; i++) {
		for (size_t j = 0; j < 2; j++) {
			struct ukey *u = &all[i * 2 + j];
			struct kura_upload up;
			char *id = malloc(16);
			assert_non_null(id);
			snprintf(id, 16, "%s%02zu", ids[(i + j) % 3], i);
			u->key = list_keys[i];
			u->id = id;
			make_upload(&up, f->bucket, u->key.p, u->key.n, id,
				    (uint32_t)(200 + i * 2 + j),
				    (int64_t)(i * 2 + j));
			assert_int_equal(f->ops->upload_create(f->priv, &up,
							       &err),
					 KURA_OK);
		}
	}
	/* An upload in another bucket never shows. */
	{
		struct kura_upload up;
		assert_int_equal(create_bucket(f, f->tenant, 77, "other", NULL,
					       NULL),
				 KURA_OK);
		make_upload(&up, 77, "a", 1, "elsewhere", 300, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &up, &err),
				 KURA_OK);
	}
	qsort(all, NU, sizeof(all[0]), ukey_cmp);

	bounds[nb++] = (struct bkey)BK("");
	bounds[nb++] = (struct bkey)BK("q");
	bounds[nb++] = (struct bkey)BK("\xff\xff\xff\xff");
	for (size_t i = 0; i < NKEYS; i++) {
		bounds[nb++] = list_keys[i];
		bounds[nb++] = (struct bkey){ list_keys[i].p, 1 };
		if (list_keys[i].n > 1)
			bounds[nb++] = (struct bkey){ list_keys[i].p,
						      list_keys[i].n - 1 };
	}
	for (size_t pi = 0; pi < nb; pi++) {
		for (size_t ki = 0; ki < nb; ki++) {
			for (size_t ii = 0; ii < ARRAY_LEN(id_markers); ii++) {
				for (size_t li = 0; li < ARRAY_LEN(limits);
				     li++) {
					struct kura_pool *pool =
						kura_pool_new(0);
					struct kura_upload *e = NULL;
					size_t cnt = 12345, want[NU], nw;
					char idm[16];

					/* Markers that exist, with the key
					 * index suffix, and ones that do
					 * not. */
					snprintf(idm, sizeof(idm), "%s%s",
						 id_markers[ii],
						 ii % 2 == 1 ? "03" : "");
					nw = model_ulist(all, NU, &bounds[pi],
							 &bounds[ki], idm,
							 limits[li], want);
					assert_int_equal(
						f->ops->upload_list(
							f->priv, f->bucket,
							bounds[pi].p,
							bounds[pi].n,
							bounds[ki].p,
							bounds[ki].n, idm,
							limits[li], pool, &e,
							&cnt, &err),
						KURA_OK);
					if (cnt != nw)
						fail_msg("prefix %zu marker %zu "
							 "id '%s' limit %zu: "
							 "got %zu want %zu",
							 pi, ki, idm,
							 limits[li], cnt, nw);
					for (size_t i = 0; i < nw; i++) {
						const struct ukey *u =
							&all[want[i]];
						assert_int_equal(e[i].key_len,
								 u->key.n);
						assert_memory_equal(
							e[i].key, u->key.p,
							u->key.n);
						assert_string_equal(e[i].id,
								    u->id);
						assert_int_equal(e[i].bucket_id,
								 f->bucket);
					}
					checks++;
					kura_pool_free(pool);
				}
			}
		}
	}
	assert_true(checks > 10000);

	/* Paging with (last key, last id) walks every upload once. */
	{
		struct kura_pool *pool = kura_pool_new(0);
		char km[KURA_OBJECT_KEY_MAX], idm[KURA_UPLOAD_ID_MAX] = "";
		size_t km_len = 0, seen = 0, cnt;

		do {
			struct kura_upload *e = NULL;
			assert_int_equal(f->ops->upload_list(f->priv,
							     f->bucket, NULL,
							     0, km, km_len,
							     idm, 3, pool, &e,
							     &cnt, &err),
					 KURA_OK);
			for (size_t i = 0; i < cnt; i++) {
				assert_true(seen < NU);
				assert_string_equal(e[i].id, all[seen].id);
				seen++;
			}
			if (cnt > 0) {
				memcpy(km, e[cnt - 1].key, e[cnt - 1].key_len);
				km_len = e[cnt - 1].key_len;
				snprintf(idm, sizeof(idm), "%s",
					 e[cnt - 1].id);
			}
		} while (cnt == 3);
		assert_int_equal(seen, NU);
		kura_pool_free(pool);
	}

	/* Expiry: across buckets, oldest first (ties by id), bounded. */
	{
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_upload *e = NULL;
		size_t cnt = 99;

		/* created_ms: ours 0..23, "elsewhere" 1. */
		assert_int_equal(f->ops->upload_expired(f->priv, 0, 100, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 0);
		assert_int_equal(f->ops->upload_expired(f->priv, 3, 100, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 4);
		assert_int_equal(e[0].created_ms, 0);
		assert_int_equal(e[1].created_ms, 1);
		assert_int_equal(e[2].created_ms, 1);
		assert_int_equal(e[3].created_ms, 2);
		/* Same time: by id ("5zz00" < "elsewhere"). */
		assert_string_equal(e[1].id, "5zz00");
		assert_string_equal(e[2].id, "elsewhere");
		assert_int_equal(e[2].bucket_id, 77);
		assert_int_equal(f->ops->upload_expired(f->priv, 1000, 5, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 5);
		assert_int_equal(f->ops->upload_expired(f->priv, 1000, 1000,
							pool, &e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, NU + 1);
		for (size_t i = 1; i < cnt; i++)
			assert_true(e[i - 1].created_ms <= e[i].created_ms);
		assert_int_equal(f->ops->upload_expired(f->priv, 1000, 0, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 0);
		kura_pool_free(pool);
	}

	/* Both scans are index searches, never a sort. */
	{
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
		assert_int_equal(sqlite3_open_v2(f->db, &h,
						 SQLITE_OPEN_READONLY, NULL),
				 SQLITE_OK);
		for (size_t q = 0; q < ARRAY_LEN(queries); q++) {
			sqlite3_stmt *s = NULL;
			char plan[512] = "";
			assert_int_equal(sqlite3_prepare_v2(h, queries[q], -1,
							    &s, NULL),
					 SQLITE_OK);
			while (sqlite3_step(s) == SQLITE_ROW) {
				const char *d =
					(const char *)sqlite3_column_text(s, 3);
				size_t used = strlen(plan);
				snprintf(plan + used, sizeof(plan) - used,
					 "%s;", d != NULL ? d : "");
			}
			sqlite3_finalize(s);
			if (strstr(plan, want[q]) == NULL ||
			    strstr(plan, "TEMP B-TREE") != NULL)
				fail_msg("plan: %s", plan);
		}
		sqlite3_close(h);
	}
	for (size_t i = 0; i < NU; i++)
		free((char *)all[i].id);
}

static void test_bucket_delete_uploads(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket b = { 0 };
	struct kura_bucket_key bk;
	struct kura_upload u, *got = NULL;
	struct kura_part p[4], mine[5];
	uint64_t bid = 0x8000000000000099ull;

	assert_non_null(pool);
	assert_int_equal(create_bucket(f, f->tenant, bid, "doomed", &b, &bk),
			 KURA_OK);
	/* Two uploads in the doomed bucket (one without parts), one in
	 * the fixture's bucket that must survive. */
	make_upload(&u, bid, "x", 1, "D1", 400, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	for (uint32_t i = 0; i < 3; i++) {
		make_part(&p[i], i + 1, 400, i);
		/* The fixture bucket's key is not this bucket's. */
		assert_int_equal(f->ops->upload_put_part(f->priv, bid, "D1",
							 &p[i], &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
		p[i].bk_id = bk.id;
		assert_int_equal(f->ops->upload_put_part(f->priv, bid, "D1",
							 &p[i], &err),
				 KURA_OK);
	}
	make_upload(&u, bid, "y", 1, "D2", 401, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	upload_with_parts(f, "KEEP", "z", 402, mine);

	/* With an object: ENOTEMPTY, and the uploads are untouched. */
	{
		struct kura_object o;
		make_object(&o, &p[3], 1, bid, "obj", 3, 403);
		assert_int_equal(f->ops->object_put(f->priv, &o, &err),
				 KURA_OK);
	}
	assert_int_equal(f->ops->bucket_delete(f->priv, bid, &err),
			 KURA_ENOTEMPTY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, bid, "D1", pool, &got,
					    &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->object_delete(f->priv, bid, "obj", 3, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 1);

	/* Only uploads left: deleted, their parts' blobs queued, the bucket
	 * key gone (the generation says so), the bucket's own key left for
	 * the caller. */
	{
		uint64_t g = gen(f);
		assert_int_equal(f->ops->bucket_delete(f->priv, bid, &err),
				 KURA_OK);
		assert_int_equal(gen(f), g + 1);
	}
	{
		struct kura_bucket_key g;
		struct kura_key k;
		assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &g,
							&err),
				 KURA_ENOENT);
		kura_error_clear(&err);
		assert_int_equal(f->ops->key_get(f->priv, b.key_id, &k, &err),
				 KURA_OK);
		assert_string_equal(k.name, "bucket/doomed");
		assert_int_equal(k.state, KURA_KEY_ENABLED);
	}
	assert_int_equal(gc_count(f), 4);
	for (size_t i = 0; i < 3; i++)
		assert_true(gc_contains(f, p[i].blob_id));
	assert_int_equal(f->ops->upload_get(f->priv, bid, "D1", pool, &got,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, bid, "D2", pool, &got,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, bid, "D1", &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	make_upload(&u, bid, "x", 1, "D3", 404, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* The other bucket's upload is whole. */
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "KEEP", pool,
					    &got, &err),
			 KURA_OK);
	{
		struct kura_part *lp = NULL;
		assert_int_equal(list_parts(f, "KEEP", 0, 10, pool, &lp), 5);
	}
	for (size_t i = 0; i < 5; i++)
		assert_false(gc_contains(f, mine[i].blob_id));
	/* A bucket with uploads in progress is not "not empty". */
	assert_int_equal(f->ops->bucket_delete(f->priv, f->bucket, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 9);
	kura_pool_free(pool);
}
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
		assert_int_equal(
			sqlite3_prepare_v2(h,
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
		size_t cnt = list_parts(f, "HUGE", n > 0 ? all[n - 1].part_no : 0,
					1000, pool, &page);
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
	assert_int_equal(f->ops->upload_complete(f->priv, "HUGE", &o, &err),
			 KURA_OK);
	dt = now_ms() - t0;
	print_message("# complete %u of %u parts: %.1f ms\n", nc, n, dt);
	assert_true(dt < 5000.0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "huge", 4,
					    pool, &got, &err),
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

/* ------------------------------------------------------------------ */
/* multipart concurrency                                               */

#define UP_THREADS 6
#define UP_ROUNDS 150
#define UP_PARTS 8		/* part numbers overlap, so parts are replaced */

struct up_race {
	struct fx *f;
	pthread_mutex_t mu;
	unsigned puts_ok;	/* successful puts so far, under mu */
	bool stop;		/* under mu */
};

struct up_worker {
	struct up_race *race;
	int no;
	/* Per round: 0 not tried, 1 recorded, 2 refused (upload gone). */
	uint8_t outcome[UP_ROUNDS];
	int failures;
	char msg[KURA_ERROR_MSG_MAX + 16];
};

static void up_blob(uint8_t id[16], int thread, int round)
{
	fill_id(id, 0x50000u + (uint32_t)thread, (uint32_t)round);
	id[13] = 0x99;
}

/* Puts parts to "C" (completed below) and "A" (aborted below)
 * alternately, until both are gone or the rounds run out. */
static void *up_worker_main(void *arg)
{
	struct up_worker *w = arg;
	struct fx *f = w->race->f;
	bool gone[2] = { false, false };

	for (int i = 0; i < UP_ROUNDS && !(gone[0] && gone[1]); i++) {
		struct kura_error err = { 0 };
		struct kura_part p;
		int which = i % 2;
		enum kura_err r;

		if (gone[which])
			which = !which;
		memset(&p, 0, sizeof(p));
		p.part_no = (uint32_t)(1 + (i / 2 + w->no) % UP_PARTS);
		up_blob(p.blob_id, w->no, i);
		p.size = 100;
		p.seg_size = 65536;
		snprintf(p.etag, sizeof(p.etag), "%d-%d", w->no, i);
		p.mtime_ms = i;
		p.bk_id = f->bk;
		r = f->ops->upload_put_part(f->priv, f->bucket,
					    which == 0 ? "C" : "A", &p, &err);
		if (r == KURA_OK) {
			w->outcome[i] = 1;
			pthread_mutex_lock(&w->race->mu);
			w->race->puts_ok++;
			pthread_mutex_unlock(&w->race->mu);
		} else if (r == KURA_ENOENT) {
			w->outcome[i] = 2;
			gone[which] = true;
		} else {
			w->failures++;
			snprintf(w->msg, sizeof(w->msg), "put: %s", err.msg);
			break;
		}
	}
	pthread_mutex_lock(&w->race->mu);
	w->race->stop = true;	/* the finisher need not wait any more */
	pthread_mutex_unlock(&w->race->mu);
	return NULL;
}

struct up_finisher {
	struct up_race *race;
	int completes_refused;	/* ESTATE: a part changed under us */
	int failures;
	char msg[KURA_ERROR_MSG_MAX + 16];
};

/* Once parts are flowing, completes "C" with every part it lists
 * (retrying when a part is replaced in between) and aborts "A". */
static void *up_finisher_main(void *arg)
{
	struct up_finisher *fin = arg;
	struct fx *f = fin->race->f;
	struct kura_error err = { 0 };
	bool done = false;

	for (;;) {
		bool go;
		pthread_mutex_lock(&fin->race->mu);
		go = fin->race->puts_ok >= 40 || fin->race->stop;
		pthread_mutex_unlock(&fin->race->mu);
		if (go)
			break;
		usleep(1000);
	}
	while (!done) {
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_part *parts = NULL;
		struct kura_object o;
		size_t n = 0;
		enum kura_err r;

		r = f->ops->upload_list_parts(f->priv, f->bucket, "C", 0,
					      KURA_MAX_PARTS, pool, &parts, &n,
					      &err);
		if (r == KURA_OK) {
			completed_object(&o, f->bucket, "raced", 500, parts,
					 (uint32_t)n);
			r = f->ops->upload_complete(f->priv, "C", &o, &err);
		}
		kura_pool_free(pool);
		if (r == KURA_ESTATE) {
			fin->completes_refused++;
			kura_error_clear(&err);
			continue;
		}
		if (r != KURA_OK) {
			fin->failures++;
			snprintf(fin->msg, sizeof(fin->msg), "complete: %s",
				 err.msg);
			return NULL;
		}
		done = true;
	}
	if (f->ops->upload_abort(f->priv, f->bucket, "A", &err) != KURA_OK) {
		fin->failures++;
		snprintf(fin->msg, sizeof(fin->msg), "abort: %s", err.msg);
	}
	return NULL;
}

static void test_upload_concurrency(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct up_race race = { .f = f };
	struct up_worker *w = calloc(UP_THREADS, sizeof(*w));
	struct up_finisher fin = { .race = &race };
	pthread_t th[UP_THREADS], fth;
	uint8_t (*queued)[KURA_BLOB_ID_LEN] =
		malloc(UP_THREADS * UP_ROUNDS * 2 * KURA_BLOB_ID_LEN);
	size_t nq = 0, recorded = 0, refused = 0, in_object = 0;
	struct kura_object *got = NULL;
	struct kura_upload u;

	assert_non_null(pool);
	assert_non_null(w);
	assert_non_null(queued);
	pthread_mutex_init(&race.mu, NULL);
	make_upload(&u, f->bucket, "raced", 5, "C", 500, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	make_upload(&u, f->bucket, "raced", 5, "A", 501, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);

	for (int i = 0; i < UP_THREADS; i++) {
		w[i].race = &race;
		w[i].no = i;
		assert_int_equal(pthread_create(&th[i], NULL, up_worker_main,
						&w[i]),
				 0);
	}
	assert_int_equal(pthread_create(&fth, NULL, up_finisher_main, &fin),
			 0);
	for (int i = 0; i < UP_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_join(fth, NULL);
	for (int i = 0; i < UP_THREADS; i++)
		if (w[i].failures != 0)
			fail_msg("thread %d: %s", i, w[i].msg);
	if (fin.failures != 0)
		fail_msg("finisher: %s", fin.msg);

	/* Both uploads are gone, the object exists. */
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM uploads"), 0);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM upload_parts"),
			 0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "raced", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_true(got->part_count >= 1);
	/* No blob is both live and queued. */
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM gc JOIN parts "
					"USING (blob_id)"),
			 0);
	assert_int_equal(f->ops->gc_next(f->priv, queued,
					 UP_THREADS * UP_ROUNDS * 2, &nq,
					 &err),
			 KURA_OK);

	/* Every recorded blob is exactly one of: a part of the object,
	 * queued for gc.  A refused put left no trace. */
	for (int t = 0; t < UP_THREADS; t++) {
		for (int i = 0; i < UP_ROUNDS; i++) {
			uint8_t id[16];
			bool live = false, q = false;
			if (w[t].outcome[i] == 0)
				continue;
			up_blob(id, t, i);
			for (uint32_t k = 0; k < got->part_count; k++)
				live |= memcmp(got->parts[k].blob_id, id, 16) ==
					0;
			for (size_t k = 0; k < nq; k++)
				q |= memcmp(queued[k], id, 16) == 0;
			if (w[t].outcome[i] == 1) {
				recorded++;
				in_object += live;
				if (live == q)
					fail_msg("blob of thread %d round %d: "
						 "live %d queued %d",
						 t, i, live, q);
			} else {
				refused++;
				assert_false(live || q);
				assert_false(referenced(f, id));
			}
		}
	}
	assert_int_equal(in_object, got->part_count);
	assert_int_equal(nq + in_object, recorded);
	print_message("# %zu parts recorded, %zu refused after the end, "
		      "object of %u parts, %d completes retried\n",
		      recorded, refused, got->part_count,
		      fin.completes_refused);
	pthread_mutex_destroy(&race.mu);
	free(queued);
	free(w);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* concurrency                                                         */

#define THREADS 8
#define ROUNDS 30

struct worker {
	struct fx *f;
	int no;
	int failures;
	char msg[KURA_ERROR_MSG_MAX + 16];
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
		struct kura_object *e = NULL;
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

/* ------------------------------------------------------------------ */
/* key management (schema 3)                                           */

/* Migration 2 of src/meta/sqlite.c, verbatim (see v1_schema). */
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

	assert_int_equal(ops->key_get_by_name(priv, 2, "bucket/neg", &kn,
					      &err),
			 KURA_OK);
	assert_int_equal(ops->bucket_get(priv, "neg", &b, &err), KURA_OK);
	assert_true(b.id == 0xfffffffffffffffbull);
	assert_int_equal(b.tenant_id, 2);
	assert_int_equal(b.key_id, kn.id);
	assert_int_equal(ops->bucket_key_current(priv, b.id, kn.id, &bkn,
						 &err),
			 KURA_OK);
	assert_int_equal(bkn.wrapped_len, 3);
	assert_string_equal(bkn.kek_id, "kek-neg");
	assert_int_equal(bkn.tenant_id, 2);
	assert_true(bkn.id != bk.id);
	/* Names are per tenant: t1 has no "bucket/neg". */
	assert_int_equal(ops->key_get_by_name(priv, 1, "bucket/neg", &kn,
					      &err),
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
		assert_int_equal(ops->upload_complete(priv, "up-1", &o, &err),
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

static void test_keys(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key k, got, bad, *list = NULL;
	struct kura_key_version *vers = NULL;
	struct kura_tenant t = { 0 };
	uint64_t g, old_id;
	size_t n = 0;

	assert_non_null(pool);
	g = gen(f);
	make_key(&k, f->tenant, "orders", KURA_KEY_NAMED);
	k.imported = true;
	k.created_ms = 0;	/* now */
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-orders", &err),
			 KURA_OK);
	assert_true(k.id != 0 && k.id != f->key);
	assert_true(k.created_ms > 1700000000000);
	assert_int_equal(k.changed_ms, k.created_ms);
	assert_int_equal(gen(f), g + 1);

	/* Reads: every field, and they do not move the generation. */
	assert_int_equal(f->ops->key_get(f->priv, k.id, &got, &err), KURA_OK);
	assert_int_equal(got.id, k.id);
	assert_int_equal(got.tenant_id, f->tenant);
	assert_string_equal(got.name, "orders");
	assert_int_equal(got.kind, KURA_KEY_NAMED);
	assert_int_equal(got.state, KURA_KEY_ENABLED);
	assert_int_equal(got.current_version, 1);
	assert_string_equal(got.provider, "local");
	assert_true(got.imported);
	assert_int_equal(got.created_ms, k.created_ms);
	memset(&got, 0, sizeof(got));
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant, "orders",
						 &got, &err),
			 KURA_OK);
	assert_int_equal(got.id, k.id);
	assert_int_equal(f->ops->key_versions(f->priv, k.id, pool, &vers, &n,
					      &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(vers[0].key_id, k.id);
	assert_int_equal(vers[0].version, 1);
	assert_string_equal(vers[0].kek_id, "kek-orders");
	assert_int_equal(vers[0].state, KURA_KEYVER_ACTIVE);
	assert_int_equal(vers[0].created_ms, k.created_ms);
	assert_int_equal(vers[0].destroyed_ms, 0);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->key_get(f->priv, 999999, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant, "order",
						 &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* A live name is unique per tenant, not across tenants. */
	old_id = k.id;
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-x", &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	assert_int_equal(k.id, old_id);
	assert_int_equal(gen(f), g + 1);
	snprintf(t.name, sizeof(t.name), "other");
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	make_key(&bad, t.id, "orders", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &bad, "kek-o2", &err),
			 KURA_OK);

	/* Bad records and an unknown tenant. */
	{
		/* One defect each. */
		for (int i = 0; i < 7; i++) {
			const char *kek = "kek";
			make_key(&bad, f->tenant, "fine", KURA_KEY_NAMED);
			switch (i) {
			case 0: bad.current_version = 2; break;
			case 1: bad.state = KURA_KEY_DESTROYED; break;
			case 2: bad.kind = 0; break;
			case 3: bad.name[0] = '\0'; break;
			case 4: kek = NULL; break;
			case 5: bad.provider[0] = '\0'; break;
			case 6: kek = ""; break;
			}
			assert_int_equal(f->ops->key_create(f->priv, &bad, kek,
							    &err),
					 KURA_EINVAL);
			kura_error_clear(&err);
		}
		make_key(&bad, 999999, "fine", KURA_KEY_NAMED);
		assert_int_equal(f->ops->key_create(f->priv, &bad, "kek",
						    &err),
				 KURA_ENOENT);
		kura_error_clear(&err);
	}

	/* Listing: by name, a tenant's or everyone's. */
	assert_int_equal(f->ops->key_list(f->priv, f->tenant, pool, &list, &n,
					  &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "bucket/photos");
	assert_string_equal(list[1].name, "orders");
	assert_int_equal(f->ops->key_list(f->priv, 0, pool, &list, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	assert_int_equal(f->ops->key_list(f->priv, 999999, pool, &list, &n,
					  &err),
			 KURA_OK);
	assert_int_equal(n, 0);

	/* Disable and enable: each change moves the generation, a no-op
	 * does not. */
	g = gen(f);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id,
					       KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->key_get(f->priv, k.id, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_KEY_DISABLED);
	assert_true(got.changed_ms >= got.created_ms);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id,
					       KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id, KURA_KEY_ENABLED,
					       &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 2);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id,
					       KURA_KEY_DESTROYED, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_set_state(f->priv, 999999,
					       KURA_KEY_DISABLED, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Destruction: only once every version is destroyed. */
	g = gen(f);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(gen(f), g);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 2, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, 999999, 1,
						       &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 1, &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->key_versions(f->priv, k.id, pool, &vers, &n,
					      &err),
			 KURA_OK);
	assert_int_equal(vers[0].state, KURA_KEYVER_DESTROYED);
	assert_true(vers[0].destroyed_ms > 0);
	{
		int64_t when = vers[0].destroyed_ms;
		/* Recording it again changes nothing. */
		assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 1,
							       &err),
				 KURA_OK);
		assert_int_equal(gen(f), g + 1);
		assert_int_equal(f->ops->key_versions(f->priv, k.id, pool,
						      &vers, &n, &err),
				 KURA_OK);
		assert_int_equal(vers[0].destroyed_ms, when);
	}
	/* The key itself is still enabled until key_destroyed. */
	assert_int_equal(f->ops->key_get(f->priv, k.id, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_KEY_ENABLED);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	assert_int_equal(gen(f), g + 2);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	assert_int_equal(f->ops->key_destroyed(f->priv, 999999, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get(f->priv, k.id, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_KEY_DESTROYED);
	/* By name, a destroyed key is gone; listed, it is still there. */
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant, "orders",
						 &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id, KURA_KEY_ENABLED,
					       &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_list(f->priv, f->tenant, pool, &list, &n,
					  &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[1].id, k.id);
	assert_int_equal(list[1].state, KURA_KEY_DESTROYED);

	/* The name can be used again; both rows are listed, oldest first. */
	make_key(&got, f->tenant, "orders", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &got, "kek-orders-2",
					    &err),
			 KURA_OK);
	assert_true(got.id > k.id);
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant, "orders",
						 &bad, &err),
			 KURA_OK);
	assert_int_equal(bad.id, got.id);
	assert_int_equal(f->ops->key_list(f->priv, f->tenant, pool, &list, &n,
					  &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	assert_int_equal(list[1].id, k.id);
	assert_int_equal(list[2].id, got.id);
	kura_pool_free(pool);
}

/* Bucket (id, name) of the fixture tenant on existing key key_id, with a
 * bucket key of version; registers it. */
static enum kura_err create_bucket_on(struct fx *f, uint64_t id,
				      const char *name, uint64_t key_id,
				      uint32_t version,
				      struct kura_bucket_key *bkout)
{
	struct kura_error err = { 0 };
	struct kura_bucket b = { 0 };
	struct kura_bucket_key bk;
	enum kura_err r;

	b.id = id;
	b.tenant_id = f->tenant;
	snprintf(b.name, sizeof(b.name), "%s", name);
	b.created_ms = 4000;
	b.key_id = key_id;
	make_bk(&bk, 0, 0, version, (uint8_t)id);
	r = f->ops->bucket_create(f->priv, &b, NULL, NULL, &bk, &err);
	if (r != KURA_OK)
		return r;
	assert_int_equal(bk.key_id, key_id);
	assert_int_equal(bk.bucket_id, id);
	bk_register(id, bk.id);
	if (bkout != NULL)
		*bkout = bk;
	return KURA_OK;
}

/* Rotate key_id from version expected: a new bucket key for each bucket
 * that now uses it.  Returns what key_rotate said. */
static enum kura_err rotate_all(struct fx *f, uint64_t key_id,
				uint32_t expected, const char *kek)
{
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket_key *cur = NULL, *nb = NULL;
	size_t n = 0;
	enum kura_err r;

	assert_non_null(pool);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, key_id, pool, &cur,
						    &n, &err),
			 KURA_OK);
	nb = calloc(n > 0 ? n : 1, sizeof(*nb));
	assert_non_null(nb);
	for (size_t i = 0; i < n; i++)
		make_bk(&nb[i], cur[i].bucket_id, key_id, expected + 1,
			(uint8_t)(0x80 + i));
	r = f->ops->key_rotate(f->priv, key_id, expected, kek, nb, n, &err);
	for (size_t i = 0; r == KURA_OK && i < n; i++)
		bk_register(nb[i].bucket_id, nb[i].id);
	free(nb);
	kura_pool_free(pool);
	return r;
}

static void test_bucket_create_keys(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_key tk, k, got;
	struct kura_bucket b = { 0 }, gb;
	struct kura_bucket_key bk;
	struct kura_tenant t = { 0 };
	uint64_t g;

	make_key(&tk, f->tenant, "tenant/default", KURA_KEY_TENANT);
	assert_int_equal(f->ops->key_create(f->priv, &tk, "kek-t1", &err),
			 KURA_OK);
	g = gen(f);
	assert_int_equal(create_bucket_on(f, 10, "b1", tk.id, 1, &bk), KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(bk.key_version, 1);
	assert_int_equal(rotate_all(f, tk.id, 1, "kek-t2"), KURA_OK);

	/* A bucket key under a version that is no longer current: ESTATE,
	 * and nothing is created. */
	g = gen(f);
	assert_int_equal(create_bucket_on(f, 11, "b2", tk.id, 1, NULL),
			 KURA_ESTATE);
	assert_int_equal(gen(f), g);
	assert_int_equal(f->ops->bucket_get(f->priv, "b2", &gb, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(create_bucket_on(f, 11, "b2", tk.id, 2, &bk), KURA_OK);
	assert_int_equal(bk.key_version, 2);
	/* A disabled key takes no new bucket. */
	assert_int_equal(f->ops->key_set_state(f->priv, tk.id,
					       KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(create_bucket_on(f, 12, "b3", tk.id, 2, NULL),
			 KURA_ESTATE);
	assert_int_equal(f->ops->key_set_state(f->priv, tk.id, KURA_KEY_ENABLED,
					       &err),
			 KURA_OK);
	/* Another tenant's key, an unknown key, no key at all. */
	snprintf(t.name, sizeof(t.name), "other");
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	make_key(&k, t.id, "theirs", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-theirs", &err),
			 KURA_OK);
	assert_int_equal(create_bucket_on(f, 12, "b3", k.id, 1, NULL),
			 KURA_EPERM);
	assert_int_equal(create_bucket_on(f, 12, "b3", 999999, 1, NULL),
			 KURA_ENOENT);
	assert_int_equal(create_bucket_on(f, 12, "b3", 0, 1, NULL),
			 KURA_EINVAL);

	/* A new key: tenant defaults to the bucket's; it must be enabled;
	 * its bucket key is of version 1; the bucket key needs bytes. */
	b.id = 13;
	b.tenant_id = f->tenant;
	snprintf(b.name, sizeof(b.name), "b4");
	make_key(&k, 0, "bucket/b4", KURA_KEY_BUCKET);
	k.created_ms = 0;
	make_bk(&bk, 0, 0, 2, 1);
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", &bk,
					       &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant,
						 "bucket/b4", &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	bk.wrapped_len = 0;
	bk.key_version = 1;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", &bk,
					       &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", NULL,
					       &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	bk.wrapped_len = KURA_WRAPPED_MAX + 1;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", &bk,
					       &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	bk.wrapped_len = KURA_WRAPPED_MAX;
	k.state = KURA_KEY_DISABLED;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", &bk,
					       &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	k.state = KURA_KEY_ENABLED;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, NULL, &bk,
					       &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	k.tenant_id = t.id;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", &bk,
					       &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	k.tenant_id = 0;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-b4", &bk,
					       &err),
			 KURA_OK);
	assert_int_equal(k.tenant_id, f->tenant);
	assert_true(k.created_ms > 0);
	assert_int_equal(b.key_id, k.id);
	assert_int_equal(f->ops->key_get_by_name(f->priv, f->tenant,
						 "bucket/b4", &got, &err),
			 KURA_OK);
	assert_int_equal(got.id, k.id);
	assert_int_equal(got.kind, KURA_KEY_BUCKET);
	assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &bk, &err),
			 KURA_OK);
	assert_int_equal(bk.wrapped_len, KURA_WRAPPED_MAX);
	assert_string_equal(bk.kek_id, "kek-b4");
}

static void test_bucket_key_insert(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key k;
	struct kura_bucket_key bk, got, *bks = NULL;
	struct kura_tenant t = { 0 };
	struct kura_bucket ob;
	uint64_t g;
	size_t n = 0;

	assert_non_null(pool);
	make_key(&k, f->tenant, "orders", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-orders", &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, k.id,
						    &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, k.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);

	g = gen(f);
	make_bk(&bk, f->bucket, k.id, 1, 0x33);
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_OK);
	assert_true(bk.id != 0 && bk.id != f->bk);
	assert_true(bk.current);
	assert_true(bk.created_ms > 0);
	assert_int_equal(gen(f), g + 1);
	/* A second current one for the pair: EEXIST (use theirs). */
	{
		struct kura_bucket_key again;
		make_bk(&again, f->bucket, k.id, 1, 0x44);
		assert_int_equal(f->ops->bucket_key_insert(f->priv, &again,
							   &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
		assert_int_equal(again.id, 0);
	}
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, k.id,
						    &got, &err),
			 KURA_OK);
	assert_int_equal(got.id, bk.id);
	assert_int_equal(got.wrapped_len, 60);
	assert_int_equal(got.wrapped[0], 0x33);
	assert_int_equal(got.tenant_id, f->tenant);
	assert_string_equal(got.kek_id, "kek-orders");
	assert_int_equal(got.key_state, KURA_KEY_ENABLED);
	assert_int_equal(got.version_state, KURA_KEYVER_ACTIVE);
	/* The fixture bucket now has two current bucket keys, one per key. */
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, f->key,
						    &got, &err),
			 KURA_OK);
	assert_int_equal(got.id, f->bk);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, k.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(bks[0].id, bk.id);

	/* After a rotation, version 1 is stale. */
	assert_int_equal(rotate_all(f, k.id, 1, "kek-orders-2"), KURA_OK);
	assert_int_equal(create_bucket(f, f->tenant, 20, "second", &ob, NULL),
			 KURA_OK);
	make_bk(&bk, 20, k.id, 1, 0x55);
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	bk.key_version = 3;
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	bk.key_version = 2;
	assert_int_equal(f->ops->key_set_state(f->priv, k.id,
					       KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id, KURA_KEY_ENABLED,
					       &err),
			 KURA_OK);
	/* Unknown key or bucket, another tenant's bucket, no bytes. */
	bk.key_id = 999999;
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	bk.key_id = k.id;
	bk.bucket_id = 999999;
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	snprintf(t.name, sizeof(t.name), "other");
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	assert_int_equal(create_bucket(f, t.id, 21, "theirs", NULL, NULL),
			 KURA_OK);
	bk.bucket_id = 21;
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	bk.bucket_id = 20;
	bk.wrapped_len = 0;
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	bk.wrapped_len = 60;
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, k.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(bks[i].key_version, 2);
		assert_string_equal(bks[i].kek_id, "kek-orders-2");
	}
	kura_pool_free(pool);
}

static void test_rotate(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key tk, nk, got;
	struct kura_key_version *vers = NULL;
	struct kura_bucket_key a1, b1, c1, nb[4], g1, *bks = NULL;
	uint64_t g;
	size_t n = 0;

	assert_non_null(pool);
	make_key(&tk, f->tenant, "tenant/default", KURA_KEY_TENANT);
	assert_int_equal(f->ops->key_create(f->priv, &tk, "kek-t1", &err),
			 KURA_OK);
	assert_int_equal(create_bucket_on(f, 100, "a", tk.id, 1, &a1), KURA_OK);
	assert_int_equal(create_bucket_on(f, 101, "b", tk.id, 1, &b1), KURA_OK);
	make_bk(&nb[0], 100, tk.id, 2, 0xa2);
	make_bk(&nb[1], 101, tk.id, 2, 0xb2);
	make_bk(&nb[2], 102, tk.id, 2, 0xc2);
	g = gen(f);

	/* Refusals, each leaving everything as it was. */
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 2, "kek-t2", nb, 2,
					    &err),
			 KURA_ESTATE);	/* stale expectation */
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2", nb, 1,
					    &err),
			 KURA_ESTATE);	/* bucket b left out */
	kura_error_clear(&err);
	{
		struct kura_bucket_key dup[2] = { nb[0], nb[0] };
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1,
						    "kek-t2", dup, 2, &err),
				 KURA_ESTATE);	/* a named twice */
		kura_error_clear(&err);
		dup[1] = nb[1];
		dup[1].bucket_id = f->bucket;	/* not on this key */
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1,
						    "kek-t2", dup, 2, &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
		dup[1] = nb[1];
		dup[1].key_version = 3;
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1,
						    "kek-t2", dup, 2, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		dup[1] = nb[1];
		dup[1].wrapped_len = 0;
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1,
						    "kek-t2", dup, 2, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
	}
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, NULL, nb, 2,
					    &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_rotate(f->priv, 999999, 1, "kek-t2", nb, 2,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* Another writer adds bucket c to the key after the caller listed
	 * a and b: the set changed. */
	assert_int_equal(create_bucket_on(f, 102, "c", tk.id, 1, &c1), KURA_OK);
	g = gen(f);
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2", nb, 2,
					    &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(gen(f), g);
	assert_int_equal(f->ops->key_get(f->priv, tk.id, &got, &err), KURA_OK);
	assert_int_equal(got.current_version, 1);
	assert_int_equal(f->ops->bucket_key_current(f->priv, 100, tk.id, &g1,
						    &err),
			 KURA_OK);
	assert_int_equal(g1.id, a1.id);
	assert_int_equal(nb[0].id, 0);

	/* The caller lists again and succeeds. */
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2", nb, 3,
					    &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 1);
	for (size_t i = 0; i < 3; i++) {
		assert_true(nb[i].id != 0);
		assert_true(nb[i].current);
		assert_true(nb[i].id != a1.id && nb[i].id != b1.id &&
			    nb[i].id != c1.id);
	}
	assert_int_equal(f->ops->key_get(f->priv, tk.id, &got, &err), KURA_OK);
	assert_int_equal(got.current_version, 2);
	assert_int_equal(f->ops->key_versions(f->priv, tk.id, pool, &vers, &n,
					      &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(vers[0].state, KURA_KEYVER_RETIRED);
	assert_int_equal(vers[1].version, 2);
	assert_string_equal(vers[1].kek_id, "kek-t2");
	assert_int_equal(vers[1].state, KURA_KEYVER_ACTIVE);
	/* New data uses the new bucket keys; the old ones are retired and
	 * still readable. */
	assert_int_equal(f->ops->bucket_key_current(f->priv, 101, tk.id, &g1,
						    &err),
			 KURA_OK);
	assert_int_equal(g1.id, nb[1].id);
	assert_int_equal(g1.key_version, 2);
	assert_int_equal(g1.wrapped[0], 0xb2);
	assert_string_equal(g1.kek_id, "kek-t2");
	assert_int_equal(f->ops->bucket_key_get(f->priv, b1.id, &g1, &err),
			 KURA_OK);
	assert_false(g1.current);
	assert_true(g1.retired_ms > 0);
	assert_int_equal(g1.key_version, 1);
	assert_string_equal(g1.kek_id, "kek-t1");
	assert_int_equal(g1.version_state, KURA_KEYVER_RETIRED);
	assert_int_equal(f->ops->bucket_keys_retired(f->priv, 10, pool, &bks,
						     &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	assert_int_equal(bks[0].id, a1.id);	/* same time: by id */
	assert_int_equal(bks[1].id, b1.id);
	assert_int_equal(bks[2].id, c1.id);
	assert_int_equal(f->ops->bucket_keys_retired(f->priv, 2, pool, &bks, &n,
						     &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(f->ops->bucket_keys_retired(f->priv, 0, pool, &bks, &n,
						     &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, tk.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	/* Version 1 is in use while its retired bucket keys exist; the
	 * current version always is. */
	{
		bool in_use = false;
		assert_int_equal(f->ops->key_version_in_use(f->priv, tk.id, 1,
							    &in_use, &err),
				 KURA_OK);
		assert_true(in_use);
		assert_int_equal(f->ops->bucket_key_delete(f->priv, a1.id,
							   &err),
				 KURA_OK);
		assert_int_equal(f->ops->bucket_key_delete(f->priv, b1.id,
							   &err),
				 KURA_OK);
		assert_int_equal(f->ops->key_version_in_use(f->priv, tk.id, 1,
							    &in_use, &err),
				 KURA_OK);
		assert_true(in_use);	/* c's */
		assert_int_equal(f->ops->bucket_key_delete(f->priv, c1.id,
							   &err),
				 KURA_OK);
		assert_int_equal(f->ops->key_version_in_use(f->priv, tk.id, 1,
							    &in_use, &err),
				 KURA_OK);
		assert_false(in_use);
		in_use = false;
		assert_int_equal(f->ops->key_version_in_use(f->priv, tk.id, 2,
							    &in_use, &err),
				 KURA_OK);
		assert_true(in_use);
		assert_int_equal(f->ops->key_version_in_use(f->priv, tk.id, 3,
							    &in_use, &err),
				 KURA_ENOENT);
		kura_error_clear(&err);
		assert_int_equal(f->ops->key_version_in_use(f->priv, 999999, 1,
							    &in_use, &err),
				 KURA_ENOENT);
		kura_error_clear(&err);
	}

	/* Again: version 3, versions 1 and 2 retired. */
	assert_int_equal(rotate_all(f, tk.id, 2, "kek-t3"), KURA_OK);
	assert_int_equal(f->ops->key_versions(f->priv, tk.id, pool, &vers, &n,
					      &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	assert_int_equal(vers[0].state, KURA_KEYVER_RETIRED);
	assert_int_equal(vers[1].state, KURA_KEYVER_RETIRED);
	assert_int_equal(vers[2].state, KURA_KEYVER_ACTIVE);
	assert_int_equal(f->ops->bucket_keys_retired(f->priv, 100, pool, &bks,
						     &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	/* A disabled key can be rotated (e.g. after a suspected leak). */
	assert_int_equal(f->ops->key_set_state(f->priv, tk.id,
					       KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(rotate_all(f, tk.id, 3, "kek-t4"), KURA_OK);

	/* A key no bucket uses rotates with no bucket keys; one that is
	 * used cannot. */
	make_key(&nk, f->tenant, "spare", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &nk, "kek-s1", &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_rotate(f->priv, nk.id, 1, "kek-s2", NULL,
					    0, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_get(f->priv, nk.id, &got, &err), KURA_OK);
	assert_int_equal(got.current_version, 2);
	{
		bool in_use = true;
		assert_int_equal(f->ops->key_version_in_use(f->priv, nk.id, 1,
							    &in_use, &err),
				 KURA_OK);
		assert_false(in_use);
		assert_int_equal(f->ops->key_version_in_use(f->priv, nk.id, 2,
							    &in_use, &err),
				 KURA_OK);
		assert_true(in_use);
		/* Once destroyed, not even the current version is. */
		assert_int_equal(f->ops->key_version_destroyed(f->priv, nk.id,
							       1, &err),
				 KURA_OK);
		assert_int_equal(f->ops->key_version_destroyed(f->priv, nk.id,
							       2, &err),
				 KURA_OK);
		assert_int_equal(f->ops->key_destroyed(f->priv, nk.id, &err),
				 KURA_OK);
		assert_int_equal(f->ops->key_version_in_use(f->priv, nk.id, 2,
							    &in_use, &err),
				 KURA_OK);
		assert_false(in_use);
	}
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 4, "kek-t5", NULL,
					    0, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	kura_pool_free(pool);
}

/* Metadata seals (schema 4): the store keeps them opaquely, never keeps a
 * sealed row's ETag in the clear, finds rows never sealed and rows sealed
 * by a bucket key, moves seals in one transaction only where they did not
 * change meanwhile, and keeps a bucket key that seals anything. */
static void fake_seal(uint8_t seal[KURA_SEAL_MAX], size_t *len, uint8_t v)
{
	memset(seal, v, 40);
	*len = 40;
}

static void test_seals(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o, *got = NULL, *ls = NULL;
	struct kura_part p[2], up;
	struct kura_upload u, *gu = NULL;
	struct kura_seal_batch b;
	struct kura_new_seal ns[4];
	struct kura_bucket bucket;
	struct kura_bucket_key bk2;
	uint64_t ids[4];
	size_t n = 0, applied = 0;

	assert_non_null(pool);
	/* A sealed object: seal, bucket key and digest stored, no clear
	 * ETag for the object or its parts. */
	make_object(&o, p, 2, f->bucket, "sealed", 6, 1);
	fake_seal(o.seal, &o.seal_len, 0xa1);
	o.seal_bk_id = f->bk;
	memset(o.parts_digest, 0xd1, sizeof(o.parts_digest));
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "sealed", 6, pool, &got,
					    &err),
			 KURA_OK);
	assert_string_equal(got->etag, "");
	assert_string_equal(got->parts[0].etag, "");
	assert_int_equal(got->seal_len, 40);
	assert_memory_equal(got->seal, o.seal, 40);
	assert_int_equal(got->seal_bk_id, f->bk);
	assert_memory_equal(got->parts_digest, o.parts_digest, KURA_PARTS_DIGEST_LEN);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM objects WHERE "
					"etag LIKE 'etag-%'"),
			 0);
	/* Listings carry the whole row. */
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, NULL, 0, 10,
					     pool, &ls, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_null(ls[0].parts);
	assert_int_equal(ls[0].part_count, 2);
	assert_int_equal(ls[0].seal_bk_id, f->bk);
	assert_memory_equal(ls[0].seal, o.seal, 40);
	assert_memory_equal(ls[0].version_uid, o.version_uid, KURA_UID_LEN);

	/* An unsealed object (as written before schema 4) and a sealed
	 * upload with an unsealed part. */
	make_object(&o, p, 1, f->bucket, "legacy", 6, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_upload(&u, f->bucket, "up", 2, "U", 3, 1);
	fake_seal(u.seal, &u.seal_len, 0xb1);
	u.seal_bk_id = f->bk;
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "U", pool, &gu, &err),
			 KURA_OK);
	assert_int_equal(gu->seal_len, 40);
	assert_int_equal(gu->seal_bk_id, f->bk);
	make_part(&up, 1, 3, 1);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "U", &up, &err),
			 KURA_OK);

	assert_int_equal(f->ops->seal_pending_buckets(f->priv, NULL, ids, 4, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], f->bucket);
	assert_int_equal(f->ops->seal_pending_buckets(f->priv, &ids[0], ids, 4, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	memset(&b, 0, sizeof(b));
	assert_int_equal(f->ops->seal_next(f->priv, f->bucket, 0, 100, pool, &b, &err),
			 KURA_OK);
	assert_int_equal(b.n_objects, 1);
	assert_int_equal(b.n_uploads, 0);
	assert_int_equal(b.n_parts, 1);
	assert_int_equal(b.objects[0].tenant_id, f->tenant);
	assert_string_equal(b.objects[0].etag, "etag-2");
	assert_non_null(b.objects[0].parts);	/* for the digest */
	assert_string_equal(b.parts[0].part.etag, up.etag);
	assert_memory_equal(b.parts[0].version_uid, u.version_uid, KURA_UID_LEN);
	/* A batch with a missing seal is refused whole. */
	memset(ns, 0, sizeof(ns));
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns, ns + 1, &applied, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	fake_seal(ns[0].seal, &ns[0].seal_len, 0xc1);
	ns[0].seal_bk_id = f->bk;
	fake_seal(ns[1].seal, &ns[1].seal_len, 0xc2);
	ns[1].seal_bk_id = f->bk;
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns, ns + 1, &applied, &err),
			 KURA_OK);
	assert_int_equal(applied, 2);
	/* Applying again changes nothing (the rows are no longer unsealed). */
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns, ns + 1, &applied, &err),
			 KURA_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(f->ops->seal_pending_buckets(f->priv, NULL, ids, 4, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM objects WHERE etag != ''"),
			 0);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM parts WHERE etag != ''"), 0);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM upload_parts WHERE "
					"etag != ''"),
			 0);

	/* After a rotation the rows sealed by the old bucket key move. */
	assert_int_equal(rotate_all(f, f->key, 1, "kek-seal-2"), KURA_OK);
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, f->key, &bk2,
						    &err),
			 KURA_OK);
	memset(&b, 0, sizeof(b));
	assert_int_equal(f->ops->seal_next(f->priv, f->bucket, f->bk, 100, pool, &b, &err),
			 KURA_OK);
	assert_int_equal(b.n_objects, 2);
	assert_int_equal(b.n_uploads, 1);
	assert_int_equal(b.n_parts, 1);
	assert_null(b.objects[0].parts);
	/* The old bucket key stays while something is sealed by it (its
	 * parts' DEKs are re-wrapped first, as re-wrapping would). */
	{
		struct kura_rewrap *rw = NULL;
		size_t nr = 0;
		assert_int_equal(f->ops->rewrap_next(f->priv, f->bk, 100, pool, &rw, &nr,
						     &err),
				 KURA_OK);
		assert_int_equal(f->ops->rewrap_apply(f->priv, f->bk, bk2.id, rw, nr, &err),
				 KURA_OK);
	}
	assert_int_equal(f->ops->bucket_key_delete(f->priv, f->bk, &err), KURA_EBUSY);
	kura_error_clear(&err);
	for (size_t i = 0; i < 4; i++) {
		fake_seal(ns[i].seal, &ns[i].seal_len, (uint8_t)(0xd0 + i));
		ns[i].seal_bk_id = bk2.id;
	}
	/* A row changed meanwhile (sealed anew by bk2) is left alone, and so
	 * is one whose seal changed under the same bucket key (a tagging
	 * call that raced the re-seal): the swap needs the seal read. */
	make_object(&o, p, 1, f->bucket, "legacy", 6, 2);
	fake_seal(o.seal, &o.seal_len, 0xe1);
	o.seal_bk_id = bk2.id;
	o.parts[0].bk_id = bk2.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	{
		size_t j = memcmp(b.objects[0].key, "sealed", 6) == 0 ? 0 : 1;
		uint8_t other_seal[KURA_SEAL_MAX];
		size_t other_len = 0;
		fake_seal(other_seal, &other_len, 0x77);
		assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "sealed", 6,
							 b.objects[j].version_uid,
							 b.objects[j].seal,
							 b.objects[j].seal_len, "{}", other_seal,
							 other_len, f->bk, &err),
				 KURA_OK);
	}
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns + 2, ns + 3, &applied, &err),
			 KURA_OK);
	assert_int_equal(applied, 2);	/* the upload and its part */
	/* The tagged row still holds a seal by the old key: it stays. */
	assert_int_equal(f->ops->bucket_key_delete(f->priv, f->bk, &err), KURA_EBUSY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "sealed", 6, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_key_delete(f->priv, f->bk, &err), KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "legacy", 6, pool, &got,
					    &err),
			 KURA_OK);
	assert_int_equal(got->seal[0], 0xe1);

	/* Tags replace the seal with the tags, only on the version read. */
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "legacy", 6,
						 o.version_uid, NULL, 0, "{}", o.seal, 41, bk2.id,
						 &err),
			 KURA_ESTATE);	/* the caller read another seal */
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "legacy", 6,
						 o.version_uid, got->seal, got->seal_len, "{}",
						 o.seal, 41, bk2.id, &err),
			 KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "legacy", 6, pool, &got,
					    &err),
			 KURA_OK);
	assert_int_equal(got->seal_len, 41);

	/* Settings can be removed (the upgrade's marker), twice. */
	assert_int_equal(f->ops->setting_insert(f->priv, "seal_pending",
						(const uint8_t *)"x", 1, &err),
			 KURA_OK);
	assert_int_equal(f->ops->setting_delete(f->priv, "seal_pending", &err), KURA_OK);
	assert_int_equal(f->ops->setting_delete(f->priv, "seal_pending", &err), KURA_OK);
	assert_int_equal(f->ops->bucket_get_id(f->priv, f->bucket, &bucket, &err),
			 KURA_OK);
	assert_int_equal(bucket.tenant_id, f->tenant);
	assert_int_equal(f->ops->bucket_get_id(f->priv, 424242, &bucket, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	kura_pool_free(pool);
}

static void test_rewrap(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o, o2, *got = NULL;
	struct kura_part p1[2], p2[1], p3[1], up[2], vp[1], *lp = NULL;
	struct kura_upload u;
	struct kura_rewrap *rw = NULL, *mine = NULL;
	struct kura_bucket_key bk2, obk, g1, *bks = NULL;
	uint64_t bk1 = f->bk, g;
	size_t n = 0, nup = 0;

	assert_non_null(pool);
	/* Under bucket key bk1: objects o1 (2 parts) and o2, upload U (2
	 * parts), upload V (1 part). */
	make_object(&o, p1, 2, f->bucket, "o1", 2, 1);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_object(&o, p2, 1, f->bucket, "o2", 2, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_upload(&u, f->bucket, "up", 2, "U", 3, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	for (uint32_t i = 0; i < 2; i++) {
		make_part(&up[i], i + 1, 3, i + 1);
		assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
							 "U", &up[i], &err),
				 KURA_OK);
	}
	make_upload(&u, f->bucket, "vp", 2, "V", 4, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	make_part(&vp[0], 1, 4, 1);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "V",
						 &vp[0], &err),
			 KURA_OK);

	/* Rotate; o3 is written under the new bucket key. */
	assert_int_equal(rotate_all(f, f->key, 1, "kek-photos-2"), KURA_OK);
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, f->key,
						    &bk2, &err),
			 KURA_OK);
	assert_true(bk2.id != bk1);
	make_object(&o, p3, 1, f->bucket, "o3", 2, 5);
	assert_int_equal(p3[0].bk_id, bk2.id);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);

	/* The listing: object parts first, then upload parts. */
	assert_int_equal(f->ops->rewrap_next(f->priv, bk1, 100, pool, &mine, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(mine[i].bucket_id, f->bucket);
		assert_int_equal(mine[i].tenant_id, f->tenant);
		assert_int_equal(mine[i].upload_part, i >= 3);
		nup += mine[i].upload_part;
	}
	assert_int_equal(nup, 3);
	assert_int_equal(f->ops->rewrap_next(f->priv, bk1, 2, pool, &rw, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_int_equal(f->ops->rewrap_next(f->priv, bk1, 4, pool, &rw, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 4);
	assert_false(rw[2].upload_part);
	assert_true(rw[3].upload_part);
	assert_int_equal(f->ops->rewrap_next(f->priv, bk1, 0, pool, &rw, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	assert_int_equal(f->ops->rewrap_next(f->priv, bk2.id, 100, pool, &rw,
					     &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1);		/* o3 */
	assert_int_equal(f->ops->rewrap_next(f->priv, 999999, 10, pool, &rw,
					     &n, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Deleting: the old one is in use, the new one current. */
	assert_int_equal(f->ops->bucket_key_delete(f->priv, bk1, &err),
			 KURA_EBUSY);
	kura_error_clear(&err);
	/* Behind the check, the reference itself refuses. */
	{
		sqlite3 *h = NULL;
		char sql[96];
		assert_int_equal(sqlite3_open_v2(f->db, &h,
						 SQLITE_OPEN_READWRITE, NULL),
				 SQLITE_OK);
		sqlite3_busy_timeout(h, 10000);
		snprintf(sql, sizeof(sql),
			 "PRAGMA foreign_keys = ON; DELETE FROM bucket_keys "
			 "WHERE id = %llu",
			 (unsigned long long)bk1);
		assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL),
				 SQLITE_CONSTRAINT);
		sqlite3_close(h);
	}
	assert_int_equal(f->ops->bucket_key_delete(f->priv, bk2.id, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_key_delete(f->priv, 999999, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Meanwhile: o2 is replaced, upload part U/1 is replaced, upload V
	 * is completed (its part moves to the object's parts). */
	make_object(&o2, p2, 1, f->bucket, "o2", 2, 6);
	assert_int_equal(f->ops->object_put(f->priv, &o2, &err), KURA_OK);
	make_part(&up[0], 1, 3, 11);
	assert_int_equal(up[0].bk_id, bk1);
	up[0].bk_id = bk2.id;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "U",
						 &up[0], &err),
			 KURA_OK);
	completed_object(&o, f->bucket, "vp", 4, vp, 1);
	o.content_type = NULL;
	assert_int_equal(f->ops->upload_complete(f->priv, "V", &o, &err),
			 KURA_OK);

	/* Apply new wrappings to everything listed. */
	for (size_t i = 0; i < 6; i++)
		memset(mine[i].dek_wrapped, 0xee, KURA_WRAPPED_DEK_LEN);
	assert_int_equal(create_bucket(f, f->tenant, 30, "other", NULL, &obk),
			 KURA_OK);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, obk.id, mine, 6,
					      &err),
			 KURA_ESTATE);	/* another bucket's key */
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, 999999, mine, 6,
					      &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk1, mine, 6,
					      &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk2.id, mine, 0,
					      &err),
			 KURA_OK);
	g = gen(f);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk2.id, mine, 6,
					      &err),
			 KURA_OK);
	assert_int_equal(gen(f), g);	/* parts, not keys, changed */
	assert_int_equal(f->ops->rewrap_next(f->priv, bk1, 100, pool, &rw, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 0);

	/* o1: both parts re-wrapped; o2: the replacement keeps its own DEK;
	 * U: part 2 re-wrapped, part 1 (replaced) its own; vp: re-wrapped
	 * in its new home. */
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "o1", 2, pool,
					    &got, &err),
			 KURA_OK);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(got->parts[i].bk_id, bk2.id);
		assert_int_equal(got->parts[i].dek_wrapped[0], 0xee);
	}
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "o2", 2, pool,
					    &got, &err),
			 KURA_OK);
	assert_int_equal(got->parts[0].bk_id, bk2.id);
	assert_memory_equal(got->parts[0].dek_wrapped, p2[0].dek_wrapped,
			    KURA_WRAPPED_DEK_LEN);
	assert_int_equal(list_parts(f, "U", 0, 10, pool, &lp), 2);
	assert_int_equal(lp[0].bk_id, bk2.id);
	assert_memory_equal(lp[0].dek_wrapped, up[0].dek_wrapped,
			    KURA_WRAPPED_DEK_LEN);
	assert_int_equal(lp[1].bk_id, bk2.id);
	assert_int_equal(lp[1].dek_wrapped[0], 0xee);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "vp", 2, pool,
					    &got, &err),
			 KURA_OK);
	assert_int_equal(got->parts[0].bk_id, bk2.id);
	assert_int_equal(got->parts[0].dek_wrapped[0], 0xee);

	/* A writer that fetched bk1 before the rotation may still store a
	 * part under it (it is retired, not gone): bk1 is busy again until
	 * that part is re-wrapped too. */
	make_object(&o, p3, 1, f->bucket, "late", 4, 7);
	p3[0].bk_id = bk1;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(f->ops->bucket_key_delete(f->priv, bk1, &err),
			 KURA_EBUSY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_next(f->priv, bk1, 100, pool, &rw, &n,
					     &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk2.id, rw, n,
					      &err),
			 KURA_OK);
	g = gen(f);
	assert_int_equal(f->ops->bucket_key_delete(f->priv, bk1, &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->bucket_key_get(f->priv, bk1, &g1, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_keys_retired(f->priv, 10, pool, &bks,
						     &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	/* A part cannot name the deleted bucket key any more. */
	make_object(&o, p3, 1, f->bucket, "later", 5, 8);
	p3[0].bk_id = bk1;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_ESTATE);
	kura_error_clear(&err);
	kura_pool_free(pool);
}

static void test_key_destroy(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key k, got;
	struct kura_bucket_key bk, g1, *bks = NULL;
	struct kura_object o, *go = NULL;
	struct kura_part pk[2], ps[1], pc[1], upk[1], *lp = NULL;
	struct kura_upload u;
	struct kura_object *e = NULL;
	uint64_t g;
	size_t n = 0;

	assert_non_null(pool);
	make_key(&k, f->tenant, "orders", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-orders", &err),
			 KURA_OK);
	make_bk(&bk, f->bucket, k.id, 1, 0x61);
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &bk, &err),
			 KURA_OK);
	/* SSE-KMS object and upload under k; an SSE-S3 object; an SSE-C
	 * object without a bucket key. */
	make_object(&o, pk, 2, f->bucket, "kms", 3, 1);
	o.sse = KURA_SSE_KMS;
	o.kms_key_id = k.id;
	pk[0].bk_id = pk[1].bk_id = bk.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_object(&o, ps, 1, f->bucket, "s3", 2, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_object(&o, pc, 1, f->bucket, "c", 1, 3);
	o.sse = KURA_SSE_C;
	memset(o.ssec_hmac, 0xc5, sizeof(o.ssec_hmac));
	pc[0].bk_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_upload(&u, f->bucket, "up", 2, "UK", 4, 1);
	u.sse = KURA_SSE_KMS;
	u.kms_key_id = k.id;
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	make_part(&upk[0], 1, 4, 1);
	upk[0].bk_id = bk.id;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "UK",
						 &upk[0], &err),
			 KURA_OK);

	/* Not before every version is destroyed. */
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &g1, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 1, &err),
			 KURA_OK);
	/* Between the two, the bucket key shows its version destroyed. */
	assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &g1, &err),
			 KURA_OK);
	assert_int_equal(g1.version_state, KURA_KEYVER_DESTROYED);
	assert_int_equal(g1.key_state, KURA_KEY_ENABLED);
	g = gen(f);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	assert_int_equal(gen(f), g + 1);

	/* The bucket keys are gone; the data under them stays listed, with
	 * no bucket key (unreadable for good). */
	assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &g1, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, k.id,
						    &g1, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, k.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "kms", 3, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->sse, KURA_SSE_KMS);
	assert_int_equal(go->kms_key_id, k.id);
	assert_int_equal(go->parts[0].bk_id, 0);
	assert_int_equal(go->parts[1].bk_id, 0);
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, NULL,
					     0, 10, pool, &e, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	assert_int_equal(list_parts(f, "UK", 0, 10, pool, &lp), 1);
	assert_int_equal(lp[0].bk_id, 0);
	/* Other data is untouched. */
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "s3", 2, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->parts[0].bk_id, f->bk);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "c", 1, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->sse, KURA_SSE_C);
	assert_int_equal(go->ssec_hmac[31], 0xc5);

	/* Nothing more can be done with the key or its upload. */
	{
		struct kura_object co;
		completed_object(&co, f->bucket, "up", 4, lp, 1);
		co.content_type = NULL;
		co.tags_json = NULL;
		co.sse = KURA_SSE_KMS;
		co.kms_key_id = k.id;
		assert_int_equal(f->ops->upload_complete(f->priv, "UK", &co,
							 &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
		assert_int_equal(list_parts(f, "UK", 0, 10, pool, &lp), 1);
	}
	make_bk(&g1, f->bucket, k.id, 1, 0x62);
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &g1, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_rotate(f->priv, k.id, 1, "kek-new", NULL,
					    0, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get(f->priv, k.id, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_KEY_DESTROYED);
	assert_true(got.changed_ms > 0);
	/* Deleting the dead object and aborting the upload free their
	 * blobs as usual. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "kms", 3,
					       &err),
			 KURA_OK);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "UK", &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 3);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM "
					"pragma_foreign_key_check"),
			 0);
	kura_pool_free(pool);
}

static void test_part_keys(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o, *go = NULL;
	struct kura_part p[2], *lp = NULL;
	struct kura_upload u, *gu = NULL;
	struct kura_bucket_key obk, kbk;
	struct kura_key k;
	uint8_t zero[KURA_SSEC_HMAC_LEN] = { 0 };

	assert_non_null(pool);
	assert_int_equal(create_bucket(f, f->tenant, 40, "other", NULL, &obk),
			 KURA_OK);
	/* An existing object the refused puts must not disturb. */
	make_object(&o, p, 1, f->bucket, "obj", 3, 1);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);

	/* No such bucket key, another bucket's, none at all. */
	make_object(&o, p, 2, f->bucket, "obj", 3, 2);
	p[1].bk_id = 999999;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_ESTATE);
	kura_error_clear(&err);
	p[1].bk_id = obk.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_ESTATE);
	kura_error_clear(&err);
	p[1].bk_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "obj", 3, pool,
					    &go, &err),
			 KURA_OK);
	assert_string_equal(go->etag, "etag-1");
	/* The other bucket's own key works there. */
	make_object(&o, p, 1, 40, "obj", 3, 3);
	assert_int_equal(p[0].bk_id, obk.id);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);

	/* SSE-C: no bucket key needed; the key check value round-trips. */
	make_object(&o, p, 1, f->bucket, "ssec", 4, 4);
	o.sse = KURA_SSE_C;
	for (size_t i = 0; i < KURA_SSEC_HMAC_LEN; i++)
		o.ssec_hmac[i] = (uint8_t)(i + 1);
	p[0].bk_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "ssec", 4,
					    pool, &go, &err),
			 KURA_OK);
	assert_int_equal(go->sse, KURA_SSE_C);
	assert_int_equal(go->kms_key_id, 0);
	assert_memory_equal(go->ssec_hmac, o.ssec_hmac, KURA_SSEC_HMAC_LEN);
	assert_int_equal(go->parts[0].bk_id, 0);
	/* SSE-KMS: the key id round-trips. */
	make_key(&k, f->tenant, "orders", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-orders", &err),
			 KURA_OK);
	make_bk(&kbk, f->bucket, k.id, 1, 0x71);
	assert_int_equal(f->ops->bucket_key_insert(f->priv, &kbk, &err),
			 KURA_OK);
	make_object(&o, p, 1, f->bucket, "kms", 3, 5);
	o.sse = KURA_SSE_KMS;
	o.kms_key_id = k.id;
	memset(o.ssec_hmac, 0x99, KURA_SSEC_HMAC_LEN);	/* not stored */
	p[0].bk_id = kbk.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "kms", 3, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->sse, KURA_SSE_KMS);
	assert_int_equal(go->kms_key_id, k.id);
	assert_memory_equal(go->ssec_hmac, zero, KURA_SSEC_HMAC_LEN);
	assert_int_equal(go->parts[0].bk_id, kbk.id);
	/* Inconsistent encryption fields. */
	o.kms_key_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = KURA_SSE_S3;
	o.kms_key_id = k.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = (enum kura_sse)7;
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = KURA_SSE_KMS;
	o.kms_key_id = 999999;	/* no such key */
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_ESTATE);
	kura_error_clear(&err);

	/* Uploads: SSE-C without bucket keys, checks on every part. */
	make_upload(&u, f->bucket, "up", 2, "UC", 6, 1);
	u.sse = KURA_SSE_C;
	memset(u.ssec_hmac, 0xab, KURA_SSEC_HMAC_LEN);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "UC", pool,
					    &gu, &err),
			 KURA_OK);
	assert_int_equal(gu->sse, KURA_SSE_C);
	assert_int_equal(gu->kms_key_id, 0);
	assert_memory_equal(gu->ssec_hmac, u.ssec_hmac, KURA_SSEC_HMAC_LEN);
	make_part(&p[0], 1, 6, 1);
	p[0].bk_id = 999999;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "UC",
						 &p[0], &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	p[0].bk_id = obk.id;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "UC",
						 &p[0], &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(list_parts(f, "UC", 0, 10, pool, &lp), 0);
	assert_false(referenced(f, p[0].blob_id));
	p[0].bk_id = 0;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "UC",
						 &p[0], &err),
			 KURA_OK);
	assert_int_equal(list_parts(f, "UC", 0, 10, pool, &lp), 1);
	assert_int_equal(lp[0].bk_id, 0);
	/* The completed object must say what the upload says. */
	completed_object(&o, f->bucket, "up", 6, lp, 1);
	assert_int_equal(f->ops->upload_complete(f->priv, "UC", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = KURA_SSE_C;
	memset(o.ssec_hmac, 0xac, KURA_SSEC_HMAC_LEN);
	assert_int_equal(f->ops->upload_complete(f->priv, "UC", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	memset(o.ssec_hmac, 0xab, KURA_SSEC_HMAC_LEN);
	assert_int_equal(f->ops->upload_complete(f->priv, "UC", &o, &err),
			 KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "up", 2, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->sse, KURA_SSE_C);
	assert_int_equal(go->ssec_hmac[0], 0xab);
	assert_int_equal(go->parts[0].bk_id, 0);
	/* An SSE-S3 upload part needs a bucket key; an SSE-KMS upload
	 * carries its key id. */
	make_upload(&u, f->bucket, "up3", 3, "U3", 7, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	make_part(&p[0], 1, 7, 1);
	p[0].bk_id = 0;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "U3",
						 &p[0], &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_upload(&u, f->bucket, "upk", 3, "UK", 8, 1);
	u.sse = KURA_SSE_KMS;
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	u.kms_key_id = k.id;
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "UK", pool,
					    &gu, &err),
			 KURA_OK);
	assert_int_equal(gu->sse, KURA_SSE_KMS);
	assert_int_equal(gu->kms_key_id, k.id);
	make_part(&p[0], 1, 8, 1);
	p[0].bk_id = kbk.id;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "UK",
						 &p[0], &err),
			 KURA_OK);
	completed_object(&o, f->bucket, "upk", 8, p, 1);
	o.sse = KURA_SSE_KMS;
	o.kms_key_id = f->key;	/* not the upload's key */
	assert_int_equal(f->ops->upload_complete(f->priv, "UK", &o, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.kms_key_id = k.id;
	assert_int_equal(f->ops->upload_complete(f->priv, "UK", &o, &err),
			 KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "upk", 3, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->kms_key_id, k.id);
	assert_int_equal(go->parts[0].bk_id, kbk.id);
	kura_pool_free(pool);
}

struct inventory {
	uint8_t ids[16][KURA_BLOB_ID_LEN];
	uint64_t sizes[16];
	size_t n;
	size_t stop_after;	/* 0: never */
};

static enum kura_err inventory_add(void *ctx,
				   const uint8_t id[KURA_BLOB_ID_LEN],
				   uint64_t size)
{
	struct inventory *inv = ctx;

	if (inv->stop_after > 0 && inv->n == inv->stop_after)
		return KURA_EIO;
	if (inv->n >= 16)
		return KURA_ETOOBIG;
	memcpy(inv->ids[inv->n], id, KURA_BLOB_ID_LEN);
	inv->sizes[inv->n] = size;
	inv->n++;
	return KURA_OK;
}

/* The size inventory lists for blob id, or UINT64_MAX. */
static uint64_t inventory_size(const struct inventory *inv,
			       const uint8_t id[KURA_BLOB_ID_LEN])
{
	for (size_t i = 0; i < inv->n; i++)
		if (memcmp(inv->ids[i], id, KURA_BLOB_ID_LEN) == 0)
			return inv->sizes[i];
	return UINT64_MAX;
}

static void test_bucket_purge(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket b, gb;
	struct kura_bucket_key bk, g1;
	struct kura_key gk;
	struct kura_object o, *go = NULL;
	struct kura_part p3[3], p1[1], up[2], keep[1];
	struct kura_upload u, *gu = NULL;
	struct inventory inv = { 0 };
	uint64_t bid = 0x9000000000000001ull, g;

	assert_non_null(pool);
	assert_int_equal(create_bucket(f, f->tenant, bid, "doomed", &b, &bk),
			 KURA_OK);
	make_object(&o, p3, 3, bid, "three", 5, 1);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_object(&o, p1, 1, bid, "one", 3, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);
	make_upload(&u, bid, "up", 2, "P1", 3, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	for (uint32_t i = 0; i < 2; i++) {
		make_part(&up[i], i + 1, 3, i + 1);
		up[i].bk_id = bk.id;
		assert_int_equal(f->ops->upload_put_part(f->priv, bid, "P1",
							 &up[i], &err),
				 KURA_OK);
	}
	make_upload(&u, bid, "empty", 5, "P2", 4, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	/* The fixture bucket's object must survive. */
	make_object(&o, keep, 1, f->bucket, "keep", 4, 5);
	assert_int_equal(f->ops->object_put(f->priv, &o, &err), KURA_OK);

	/* Inventory: every blob of the bucket with its size. */
	assert_int_equal(f->ops->bucket_blobs(f->priv, bid, inventory_add, &inv,
					      &err),
			 KURA_OK);
	assert_int_equal(inv.n, 6);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(inventory_size(&inv, p3[i].blob_id), 10);
	assert_int_equal(inventory_size(&inv, p1[0].blob_id), 10);
	assert_int_equal(inventory_size(&inv, up[0].blob_id), 11);
	assert_int_equal(inventory_size(&inv, up[1].blob_id), 12);
	assert_int_equal(inventory_size(&inv, keep[0].blob_id), UINT64_MAX);
	/* The callback can stop it. */
	memset(&inv, 0, sizeof(inv));
	inv.stop_after = 2;
	assert_int_equal(f->ops->bucket_blobs(f->priv, bid, inventory_add, &inv,
					      &err),
			 KURA_EIO);
	assert_int_equal(inv.n, 2);
	assert_int_equal(f->ops->bucket_blobs(f->priv, bid, NULL, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);

	/* Purge: everything goes in one transaction, every blob to gc. */
	g = gen(f);
	assert_int_equal(f->ops->bucket_purge(f->priv, bid, &err), KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(gc_count(f), 6);
	for (size_t i = 0; i < 3; i++)
		assert_true(gc_contains(f, p3[i].blob_id));
	assert_true(gc_contains(f, p1[0].blob_id));
	assert_true(gc_contains(f, up[0].blob_id));
	assert_true(gc_contains(f, up[1].blob_id));
	assert_false(gc_contains(f, keep[0].blob_id));
	assert_int_equal(f->ops->bucket_get(f->priv, "doomed", &gb, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, bid, "three", 5, pool, &go,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, bid, "P1", pool, &gu,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, bid, "P2", pool, &gu,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &g1, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM parts"), 1);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM upload_parts"),
			 0);
	/* The key stays for the caller to destroy; the id is retired. */
	assert_int_equal(f->ops->key_get(f->priv, b.key_id, &gk, &err),
			 KURA_OK);
	assert_int_equal(gk.state, KURA_KEY_ENABLED);
	assert_int_equal(create_bucket(f, f->tenant, bid, "reborn", NULL, NULL),
			 KURA_EEXIST);
	assert_int_equal(f->ops->bucket_purge(f->priv, bid, &err), KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_blobs(f->priv, bid, inventory_add, &inv,
					      &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "keep", 4, pool,
					    &go, &err),
			 KURA_OK);
	/* An empty bucket purges too. */
	assert_int_equal(create_bucket(f, f->tenant, 41, "empty", NULL, NULL),
			 KURA_OK);
	memset(&inv, 0, sizeof(inv));
	assert_int_equal(f->ops->bucket_blobs(f->priv, 41, inventory_add, &inv,
					      &err),
			 KURA_OK);
	assert_int_equal(inv.n, 0);
	assert_int_equal(f->ops->bucket_purge(f->priv, 41, &err), KURA_OK);
	kura_pool_free(pool);
}

static void test_bucket_encryption(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_key k, theirs;
	struct kura_tenant t = { 0 };
	struct kura_bucket b;
	uint64_t g;

	make_key(&k, f->tenant, "orders", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &k, "kek-orders", &err),
			 KURA_OK);
	g = gen(f);
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_KMS, k.id,
						       &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &b, &err),
			 KURA_OK);
	assert_int_equal(b.default_sse, KURA_SSE_KMS);
	assert_int_equal(b.default_kms_key_id, k.id);
	assert_int_equal(b.key_id, f->key);
	/* SSE-S3 clears it (a key id given with it is ignored). */
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_S3, k.id, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &b, &err),
			 KURA_OK);
	assert_int_equal(b.default_sse, KURA_SSE_S3);
	assert_int_equal(b.default_kms_key_id, 0);
	assert_int_equal(gen(f), g);
	/* Refusals. */
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_C, 0, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_KMS, 0, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, 999999,
						       KURA_SSE_S3, 0, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_KMS, 999999,
						       &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	snprintf(t.name, sizeof(t.name), "other");
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	make_key(&theirs, t.id, "theirs", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &theirs, "kek-t", &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_KMS, theirs.id,
						       &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 1, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, f->bucket,
						       KURA_SSE_KMS, k.id,
						       &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &b, &err),
			 KURA_OK);
	assert_int_equal(b.default_sse, KURA_SSE_S3);
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
 * that of src/meta/sqlite.c. */
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

/* Buckets join a tenant key while it is rotated: every joiner and the
 * rotator retry on KURA_ESTATE, and at the end every bucket has exactly
 * one current bucket key, of the key's last version. */
#define RACE_JOINERS 4
#define RACE_BUCKETS 8		/* per joiner */
#define RACE_ROTATIONS 6

struct race {
	struct fx *f;
	uint64_t key_id;
	int retries;		/* under mu */
	pthread_mutex_t mu;
};

struct race_worker {
	struct race *race;
	int no;
	int failures;
	char msg[KURA_ERROR_MSG_MAX + 16];
};

static void *joiner_main(void *arg)
{
	struct race_worker *w = arg;
	struct fx *f = w->race->f;

	for (int i = 0; i < RACE_BUCKETS && w->failures == 0; i++) {
		for (;;) {
			struct kura_error err = { 0 };
			struct kura_bucket b = { 0 };
			struct kura_bucket_key bk;
			struct kura_key k;
			enum kura_err r;

			r = f->ops->key_get(f->priv, w->race->key_id, &k, &err);
			if (r != KURA_OK) {
				w->failures++;
				snprintf(w->msg, sizeof(w->msg), "get: %s",
					 err.msg);
				break;
			}
			b.id = 1000 + (uint64_t)w->no * 100 + (uint64_t)i;
			b.tenant_id = f->tenant;
			snprintf(b.name, sizeof(b.name), "race-%d-%d", w->no,
				 i);
			b.key_id = k.id;
			make_bk(&bk, 0, 0, k.current_version, 0x42);
			r = f->ops->bucket_create(f->priv, &b, NULL, NULL, &bk,
						  &err);
			if (r == KURA_OK)
				break;
			if (r == KURA_ESTATE) {
				pthread_mutex_lock(&w->race->mu);
				w->race->retries++;
				pthread_mutex_unlock(&w->race->mu);
				continue;
			}
			w->failures++;
			snprintf(w->msg, sizeof(w->msg), "create: %s", err.msg);
			break;
		}
	}
	return NULL;
}

static void *rotator_main(void *arg)
{
	struct race_worker *w = arg;
	struct fx *f = w->race->f;

	for (int i = 0; i < RACE_ROTATIONS && w->failures == 0; i++) {
		for (;;) {
			struct kura_error err = { 0 };
			struct kura_pool *pool = kura_pool_new(0);
			struct kura_bucket_key *cur = NULL, *nb = NULL;
			struct kura_key k;
			char kek[32];
			size_t n = 0;
			enum kura_err r;

			r = f->ops->key_get(f->priv, w->race->key_id, &k, &err);
			if (r == KURA_OK)
				r = f->ops->bucket_keys_of_key(f->priv, k.id,
							       pool, &cur, &n,
							       &err);
			if (r == KURA_OK) {
				nb = calloc(n > 0 ? n : 1, sizeof(*nb));
				if (nb == NULL)
					r = kura_fail(&err, KURA_ENOMEM, "oom");
			}
			for (size_t j = 0; r == KURA_OK && j < n; j++)
				make_bk(&nb[j], cur[j].bucket_id, k.id,
					k.current_version + 1, 0x43);
			snprintf(kek, sizeof(kek), "kek-race-%u",
				 k.current_version + 1);
			if (r == KURA_OK)
				r = f->ops->key_rotate(f->priv, k.id,
						       k.current_version, kek,
						       nb, n, &err);
			free(nb);
			kura_pool_free(pool);
			if (r == KURA_OK)
				break;
			if (r == KURA_ESTATE) {
				pthread_mutex_lock(&w->race->mu);
				w->race->retries++;
				pthread_mutex_unlock(&w->race->mu);
				continue;
			}
			w->failures++;
			snprintf(w->msg, sizeof(w->msg), "rotate: %s", err.msg);
			break;
		}
	}
	return NULL;
}

static void test_rotate_race(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct race race = { .f = f };
	struct race_worker w[RACE_JOINERS + 1];
	pthread_t th[RACE_JOINERS + 1];
	struct kura_key tk, got;
	struct kura_bucket_key *bks = NULL;
	size_t n = 0;

	assert_non_null(pool);
	pthread_mutex_init(&race.mu, NULL);
	make_key(&tk, f->tenant, "tenant/default", KURA_KEY_TENANT);
	assert_int_equal(f->ops->key_create(f->priv, &tk, "kek-race-1", &err),
			 KURA_OK);
	race.key_id = tk.id;
	for (int i = 0; i <= RACE_JOINERS; i++) {
		w[i] = (struct race_worker){ .race = &race, .no = i };
		assert_int_equal(pthread_create(&th[i], NULL,
						i < RACE_JOINERS ? joiner_main
								 : rotator_main,
						&w[i]),
				 0);
	}
	for (int i = 0; i <= RACE_JOINERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i <= RACE_JOINERS; i++)
		if (w[i].failures != 0)
			fail_msg("thread %d: %s", i, w[i].msg);

	assert_int_equal(f->ops->key_get(f->priv, tk.id, &got, &err), KURA_OK);
	assert_int_equal(got.current_version, 1 + RACE_ROTATIONS);
	assert_int_equal(f->ops->bucket_keys_of_key(f->priv, tk.id, pool, &bks,
						    &n, &err),
			 KURA_OK);
	assert_int_equal(n, RACE_JOINERS * RACE_BUCKETS);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(bks[i].key_version, got.current_version);
	assert_int_equal(sql_int(f->db, "SELECT count(*) FROM (SELECT "
					"bucket_id FROM bucket_keys WHERE "
					"current = 1 GROUP BY bucket_id, "
					"key_id HAVING count(*) > 1)"),
			 0);
	print_message("# %d buckets joined during %d rotations, %d retries\n",
		      RACE_JOINERS * RACE_BUCKETS, RACE_ROTATIONS, race.retries);
	pthread_mutex_destroy(&race.mu);
	kura_pool_free(pool);
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
	assert_int_equal(sql_int(db, "SELECT count(*) FROM parts p JOIN objects "
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
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upload_basics, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upload_complete, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upload_list, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bucket_delete_uploads,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_upload_complete_large,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_upload_concurrency, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v2, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bucket_create_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bucket_key_insert, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_seals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_destroy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_part_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bucket_purge, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bucket_encryption, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_plans, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotate_race, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v2_large, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

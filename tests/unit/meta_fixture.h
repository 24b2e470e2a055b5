/*
 * meta_fixture.h — the fixture of the metadata-store tests: a fresh store
 * per test, records made the same way in every test, and the table of
 * backends the conformance suite runs against.  Header-only (each test
 * program is one .c file).
 *
 * The conformance suite (test_meta.c, test_meta_uploads.c,
 * test_meta_keys.c) goes only through kura_meta_open and the ops of
 * meta.h, and meta_run_suite() runs every test once per metadata store in
 * kura_metas[].  What a test needs to know about a store beyond meta.h —
 * how to configure a fresh one, how to look at its rows behind its back —
 * is in that store's entry of meta_backends[]: a new backend is one entry
 * there (a compiled-in store without one fails the suite).  Tests that
 * only make sense for one store (SQLite's migrations from frozen schemas,
 * its query plans, raw-SQL bulk loads) live in that store's own program
 * (test_meta_sqlite.c).
 *
 * The default fixture holds one tenant ("acme") and one bucket ("photos",
 * id above INT64_MAX, with its own key and first bucket key); the bare one
 * holds nothing.  Every bucket the helpers make registers its first bucket
 * key (bk_register), so make_object can give each part its bucket's key.
 *
 * Threading: the registry is written only by the main thread before any
 * worker starts.
 */
#ifndef KURA_TEST_META_FIXTURE_H
#define KURA_TEST_META_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/meta.h"
#include "kura/pool.h"
#include "rmtree.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct meta_backend;

struct fx {
	const struct meta_backend *backend;
	char dir[PATH_MAX];
	char db[PATH_MAX + 16]; /* SQLite: the database file */
	struct kura_config *cfg;
	struct kura_meta *meta;
	const struct kura_meta_ops *ops;
	void *priv;
	struct kura_pool *pool; /* freed by the teardown */
	uint64_t tenant;
	uint64_t bucket;
	uint64_t key; /* the bucket's own key */
	uint64_t bk;  /* its first bucket key */
};

/* ---- the backends ---- */

struct meta_backend {
	const char *name; /* as in kura_metas[] */
	/* Set f->cfg (driver and what else it needs) for a fresh store in
	 * the empty directory f->dir. */
	void (*configure)(struct fx *f);
	/* Run sql — portable SQL over the shared schema — on a connection
	 * of its own, with the store's settings (foreign keys enforced):
	 * the first column of the first row as an integer, 0 when there is
	 * no row, -1 when the statement fails. */
	long long (*sql)(struct fx *f, const char *sql);
};

static inline void meta_sqlite_configure(struct fx *f)
{
	struct kura_error err = { 0 };

	assert_int_equal(kura_config_set(f->cfg, "meta", "driver", "sqlite",
					 &err),
			 KURA_OK);
	snprintf(f->db, sizeof(f->db), "%s/meta.db", f->dir);
}

static inline long long meta_sqlite_sql(struct fx *f, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;
	int rc;

	assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READWRITE,
					 NULL),
			 SQLITE_OK);
	sqlite3_busy_timeout(h, 10000);
	assert_int_equal(sqlite3_exec(h, "PRAGMA foreign_keys = ON", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		else if (rc == SQLITE_DONE)
			v = 0;
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

static const struct meta_backend meta_backends[] = {
	{ "sqlite", meta_sqlite_configure, meta_sqlite_sql },
};

static inline const struct meta_backend *meta_backend(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(meta_backends); i++)
		if (strcmp(meta_backends[i].name, name) == 0)
			return &meta_backends[i];
	return NULL;
}

static inline long long meta_sql(struct fx *f, const char *sql)
{
	return f->backend->sql(f, sql);
}

/*
 * Run tests once per compiled-in metadata store, as one cmocka group
 * (one TAP plan) named group; each test's name gets " (store)" appended
 * and its setup receives the store's meta_backend entry as *state.
 */
static inline int meta_run_suite(const char *group,
				 const struct CMUnitTest *tests, size_t n)
{
	struct CMUnitTest *all;
	size_t nb = 0, k = 0;
	int rc;

	while (kura_metas[nb] != NULL)
		nb++;
	all = calloc(nb * n + 1, sizeof(*all));
	if (all == NULL)
		return 1;
	for (size_t b = 0; b < nb; b++) {
		const struct meta_backend *be =
			meta_backend(kura_metas[b]->name);

		if (be == NULL) {
			fprintf(stderr,
				"metadata store '%s' has no entry in "
				"meta_backends[] (tests/unit/meta_fixture.h)\n",
				kura_metas[b]->name);
			return 1;
		}
		for (size_t t = 0; t < n; t++, k++) {
			char *name = malloc(strlen(tests[t].name) +
					    strlen(be->name) + 4);
			if (name == NULL)
				return 1;
			snprintf(name,
				 strlen(tests[t].name) + strlen(be->name) + 4,
				 "%s (%s)", tests[t].name, be->name);
			all[k] = tests[t];
			all[k].name = name;
			all[k].initial_state = (void *)be;
		}
	}
	rc = _cmocka_run_group_tests(group, all, k, NULL, NULL);
	for (size_t i = 0; i < k; i++)
		free((char *)all[i].name);
	free(all);
	return rc;
}

/* ---- the bucket-key registry ---- */

/* Bucket -> bucket key for the parts the helpers make.  Reset by setup;
 * written only by the main thread before any worker starts. */
static struct {
	uint64_t bucket, bk;
} bk_reg[32];
static size_t bk_reg_n;
static uint64_t bk_default; /* for make_part: the fixture bucket's */

static inline void bk_register(uint64_t bucket, uint64_t bk)
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
static inline uint64_t bk_of(uint64_t bucket)
{
	for (size_t i = 0; i < bk_reg_n; i++)
		if (bk_reg[i].bucket == bucket)
			return bk_reg[i].bk;
	return 0;
}

/* ---- opening, records ---- */

/* Any fixed row key (meta.h "Row MACs"): the store checks the MACs
 * itself, the service only derives the key. */
static const uint8_t fx_row_key[KURA_ROW_KEY_LEN] = { 0x6b, 0x75, 0x72, 0x61 };

static inline void fx_open(struct fx *f)
{
	struct kura_error err = { 0 };
	enum kura_err r = kura_meta_open(f->cfg, f->dir, &f->meta, &err);

	if (r != KURA_OK)
		fail_msg("kura_meta_open: %s", err.msg);
	if (f->meta->ops->set_row_key(f->meta->priv, fx_row_key, &err) !=
	    KURA_OK)
		fail_msg("set_row_key: %s", err.msg);
	f->ops = f->meta->ops;
	f->priv = f->meta->priv;
}

static inline void fx_close(struct fx *f)
{
	kura_meta_close(f->meta);
	f->meta = NULL;
}

/* A new key record for tenant (the fields a caller sets). */
static inline void make_key(struct kura_key *k, uint64_t tenant,
			    const char *name, enum kura_key_kind kind)
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
static inline void make_bk(struct kura_bucket_key *bk, uint64_t bucket,
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
static inline enum kura_err create_bucket(struct fx *f, uint64_t tenant,
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

/* Bucket (id, name) of the fixture tenant on existing key key_id, with a
 * bucket key of version; registers it. */
static inline enum kura_err create_bucket_on(struct fx *f, uint64_t id,
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
static inline enum kura_err rotate_all(struct fx *f, uint64_t key_id,
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

/* The key generation now. */
static inline uint64_t gen(struct fx *f)
{
	struct kura_error err = { 0 };
	uint64_t g = 0;

	assert_int_equal(f->ops->key_generation(f->priv, &g, &err), KURA_OK);
	return g;
}

/* ---- setup and teardown ---- */

/* An empty store of the backend in *state. */
static inline int meta_setup_bare(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kura_error err = { 0 };
	const char *base = getenv("TMPDIR");

	assert_non_null(f);
	f->backend = *state;
	assert_non_null(f->backend);
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(f->dir, sizeof(f->dir), "%s/kura-test-meta-XXXXXX", base);
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(kura_config_new(&f->cfg, &err), KURA_OK);
	f->backend->configure(f);
	f->pool = kura_pool_new(0);
	assert_non_null(f->pool);
	fx_open(f);
	bk_reg_n = 0;
	bk_default = 0;
	*state = f;
	return 0;
}

/* A store with one tenant and one bucket. */
static inline int meta_setup(void **state)
{
	struct fx *f;
	struct kura_error err = { 0 };
	struct kura_tenant t = { 0 };
	struct kura_bucket b = { 0 };
	struct kura_bucket_key bk = { 0 };

	meta_setup_bare(state);
	f = *state;
	snprintf(t.name, sizeof(t.name), "acme");
	t.created_ms = 1000;
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	f->tenant = t.id;
	/* Bucket id above INT64_MAX on purpose. */
	assert_int_equal(create_bucket(f, t.id, 0xfedcba9876543210ull, "photos",
				       &b, &bk),
			 KURA_OK);
	f->bucket = b.id;
	f->key = b.key_id;
	f->bk = bk.id;
	bk_default = bk.id;
	return 0;
}

static inline int meta_teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	kura_pool_free(f->pool);
	kura_config_free(f->cfg);
	rmtree(f->dir);
	free(f);
	return 0;
}

#define meta_test(fn) \
	cmocka_unit_test_setup_teardown(fn, meta_setup, meta_teardown)
#define meta_test_bare(fn) \
	cmocka_unit_test_setup_teardown(fn, meta_setup_bare, meta_teardown)

/* ---- objects, uploads, parts ---- */

static inline void fill_id(uint8_t id[16], uint32_t a, uint32_t b)
{
	memset(id, 0, 16);
	memcpy(id, &a, sizeof(a));
	memcpy(id + 8, &b, sizeof(b));
	id[15] = 0x77;
}

/* An object with nparts parts of 10 bytes each; blob ids derive from tag. */
/* Versions in the order the test writes them. */
static inline uint64_t fx_next_vseq(void)
{
	static uint64_t vseq = 1000;
	return __atomic_add_fetch(&vseq, 1, __ATOMIC_RELAXED);
}

/* Write o as the store's callers do: a writer overtaken by another takes
 * a later vseq and tries again. */
static inline enum kura_err put_newest(struct fx *f, struct kura_object *o,
				       struct kura_error *err)
{
	enum kura_err r;

	while ((r = f->ops->object_put(f->priv, o, NULL, err)) ==
	       KURA_ECONFLICT)
		o->vseq = fx_next_vseq();
	return r;
}

static inline void make_object(struct kura_object *o, struct kura_part *parts,
			       uint32_t nparts, uint64_t bucket,
			       const char *key, size_t key_len, uint32_t tag)
{
	memset(o, 0, sizeof(*o));
	o->bucket_id = bucket;
	o->key = key;
	o->key_len = key_len;
	fill_id(o->version_uid, tag, 0xffffffffu);
	snprintf(o->etag, sizeof(o->etag), "etag-%u", tag);
	o->mtime_ms = 1700000000000 + tag;
	/* Each write the newest, replacing the null version, as in a
	 * bucket never versioned. */
	o->vseq = fx_next_vseq();
	o->null_version = true;
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

static inline enum kura_err put_simple(struct fx *f, const char *key,
				       size_t len, uint32_t tag)
{
	struct kura_object o;
	struct kura_part p[1];
	struct kura_error err = { 0 };

	make_object(&o, p, 1, f->bucket, key, len, tag);
	return f->ops->object_put(f->priv, &o, NULL, &err);
}

static inline void make_upload(struct kura_upload *u, uint64_t bucket,
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
static inline void make_part(struct kura_part *p, uint32_t part_no,
			     uint32_t tag, uint32_t serial)
{
	memset(p, 0, sizeof(*p));
	p->part_no = part_no;
	fill_id(p->blob_id, tag, serial);
	p->blob_id[14] = 0x55; /* never equal to an object's blob */
	p->size = 10 + part_no;
	p->seg_size = 65536;
	memset(p->dek_wrapped, (int)(serial & 0xff), sizeof(p->dek_wrapped));
	snprintf(p->etag, sizeof(p->etag), "%08x%08x", tag, serial);
	p->mtime_ms = 1800000000000 + serial;
	p->bk_id = bk_default;
}

/* Upload id of key with parts 1..5 (blobs (tag, 1..5)). */
static inline void upload_with_parts(struct fx *f, const char *id,
				     const char *key, uint32_t tag,
				     struct kura_part parts[5])
{
	struct kura_error err = { 0 };
	struct kura_upload u;

	make_upload(&u, f->bucket, key, strlen(key), id, tag, 100);
	u.content_type = "video/mp4";
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	for (uint32_t i = 0; i < 5; i++) {
		make_part(&parts[i], i + 1, tag, i + 1);
		assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, id,
							 &parts[i], &err),
				 KURA_OK);
	}
}

/* The object completing upload uid with the given parts. */
static inline void completed_object(struct kura_object *o, uint64_t bucket,
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
	o->vseq = fx_next_vseq();
	o->null_version = true;
	o->content_type = "video/mp4";
	o->tags_json = "{\"done\":\"yes\"}";
	o->part_count = n;
	o->parts = chosen;
	for (uint32_t i = 0; i < n; i++)
		o->size += chosen[i].size;
}

static inline size_t list_parts(struct fx *f, const char *uid, uint32_t after,
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

/* A seal the store keeps opaquely: 40 bytes of v. */
static inline void fake_seal(uint8_t seal[KURA_SEAL_MAX], size_t *len,
			     uint8_t v)
{
	memset(seal, v, 40);
	*len = 40;
}

/* ---- blobs ---- */

static inline bool gc_contains(struct fx *f, const uint8_t id[16])
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

static inline size_t gc_count(struct fx *f)
{
	uint8_t ids[64][KURA_BLOB_ID_LEN];
	size_t n = 0;
	struct kura_error err = { 0 };

	assert_int_equal(f->ops->gc_next(f->priv, ids, 64, &n, &err), KURA_OK);
	return n;
}

static inline bool referenced(struct fx *f, const uint8_t id[16])
{
	struct kura_error err = { 0 };
	bool ref = false;

	assert_int_equal(f->ops->blob_referenced(f->priv, id, &ref, &err),
			 KURA_OK);
	return ref;
}

/* ---- keys in byte order ---- */

struct bkey {
	const char *p;
	size_t n;
};

#define BK(s)                    \
	{                        \
		s, sizeof(s) - 1 \
	}

/* Awkward keys: binary, multi-byte UTF-8, 0x00 and 0xFF bytes. */
static const struct bkey list_keys[] = {
	BK("a"),
	BK("A"),
	BK("a/b"),
	BK("a/c"),
	BK("ab"),
	BK("a\x00"),
	BK("a\x00\x01"),
	BK("a\x7f"),
	BK("a\x80"),
	BK("a\xff"),
	BK("a\xff\xff"),
	BK("a\xff"
	   "b"),
	BK("b"),
	BK("\xff"),
	BK("\xff\xff\x00"),
	BK("\xff\xff\xff"),
	BK("\x01"),
	BK("\xc3\xa9t\xc3\xa9"), /* été */
	BK("\xc3\xa9"),
	BK("\xc3\xa8"),			/* é, è */
	BK("\xe6\x97\xa5\xe6\x9c\xac"), /* 日本 */
	BK("\xf0\x9f\x98\x80"),		/* U+1F600 */
	BK("\xef\xbf\xbf"),		/* U+FFFF */
	BK("z/\xf0\x9f\x98\x80/x"),
	BK("z/"),
	BK("z"),
};

static inline int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int d = memcmp(a, b, an < bn ? an : bn);

	if (d != 0)
		return d;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

static inline int bkey_cmp(const void *x, const void *y)
{
	const struct bkey *a = x, *b = y;

	return bytes_cmp(a->p, a->n, b->p, b->n);
}

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif

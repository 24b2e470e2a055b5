/*
 * test_meta.c — conformance tests of the metadata stores, part 1: settings,
 * tenants and access keys (with their lifecycle), buckets, objects and
 * their parts, blob garbage, tags, listing and concurrent use; the row
 * MACs of tenants, access keys, buckets and keys against edits made
 * straight in the store.
 *
 * Every test runs once per compiled-in metadata store (meta_fixture.h),
 * only through kura_meta_open and the ops of meta.h.  The listing test
 * compares every (prefix, after, limit) combination over a set of awkward
 * keys (binary, multi-byte UTF-8, 0xFF bytes) with a brute-force model; the
 * concurrency test runs several threads against one store.  Parts 2 and 3
 * are test_meta_uploads.c and test_meta_keys.c; SQLite's own tests are in
 * test_meta_sqlite.c.
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

#include "meta_fixture.h"
#include "kura/banned.h"

/* ------------------------------------------------------------------ */
/* settings, tenants, access keys                                     */

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
	assert_memory_equal(buf, "\0ab\xff", 4); /* first writer won */
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
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err), KURA_OK);
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
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err), KURA_OK);
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
/* tenant and access-key lifecycle (schema 4)                         */

static uint64_t tenant(struct fx *f, const char *name)
{
	struct kura_tenant t = { 0 };
	struct kura_error err = { 0 };
	snprintf(t.name, sizeof(t.name), "%s", name);
	t.created_ms = 1000;
	t.state = KURA_TENANT_SUSPENDED; /* ignored: created active */
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	return t.id;
}

static void access_key(struct kura_access_key *k, uint64_t tenant_id,
		       const char *id, int64_t created)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	k->tenant_id = tenant_id;
	k->secret_sealed_len = 40;
	memset(k->secret_sealed, 0x33, k->secret_sealed_len);
	k->created_ms = created;
	k->active = true;
}

static void add_key(struct fx *f, uint64_t tenant_id, const char *id,
		    int64_t created)
{
	struct kura_access_key k;
	struct kura_error err = { 0 };
	access_key(&k, tenant_id, id, created);
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err), KURA_OK);
}

static bool key_active(struct fx *f, const char *id)
{
	struct kura_access_key k;
	struct kura_error err = { 0 };
	assert_int_equal(f->ops->access_key_get(f->priv, id, &k, &err),
			 KURA_OK);
	return k.active;
}

static void test_tenant_state_and_list(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_tenant got, *ts = NULL;
	size_t n = 99;
	assert_int_equal(f->ops->tenant_list(f->priv, f->pool, &ts, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	uint64_t zed = tenant(f, "zed");
	uint64_t acme = tenant(f, "acme");
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err),
			 KURA_OK);
	assert_int_equal(got.state, KURA_TENANT_ACTIVE);

	assert_int_equal(f->ops->tenant_set_state(f->priv, acme,
						  KURA_TENANT_SUSPENDED, &err),
			 KURA_OK);
	/* Setting the state it has is success. */
	assert_int_equal(f->ops->tenant_set_state(f->priv, acme,
						  KURA_TENANT_SUSPENDED, &err),
			 KURA_OK);
	assert_int_equal(f->ops->tenant_get_by_name(f->priv, "acme", &got,
						    &err),
			 KURA_OK);
	assert_int_equal(got.state, KURA_TENANT_SUSPENDED);
	assert_int_equal(f->ops->tenant_list(f->priv, f->pool, &ts, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ts[0].name, "acme");
	assert_int_equal(ts[0].id, acme);
	assert_int_equal(ts[0].state, KURA_TENANT_SUSPENDED);
	assert_string_equal(ts[1].name, "zed");
	assert_int_equal(ts[1].id, zed);
	assert_int_equal(ts[1].state, KURA_TENANT_ACTIVE);
	assert_int_equal(ts[1].created_ms, 1000);

	assert_int_equal(f->ops->tenant_set_state(f->priv, acme,
						  KURA_TENANT_ACTIVE, &err),
			 KURA_OK);
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err),
			 KURA_OK);
	assert_int_equal(got.state, KURA_TENANT_ACTIVE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_set_state(f->priv, 999,
						  KURA_TENANT_SUSPENDED, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_set_state(f->priv, acme,
						  (enum kura_tenant_state)7,
						  &err),
			 KURA_EINVAL);
}

static void test_access_key_lifecycle(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_access_key *ks = NULL, k;
	size_t n = 0;
	uint64_t acme = tenant(f, "acme"), other = tenant(f, "other");
	add_key(f, acme, "AKSECOND00000000", 2000);
	add_key(f, acme, "AKFIRST000000000", 1000);
	add_key(f, other, "AKOTHER000000000", 500);
	assert_int_equal(f->ops->access_key_list(f->priv, acme, f->pool, &ks,
						 &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ks[0].id, "AKFIRST000000000"); /* oldest first */
	assert_string_equal(ks[1].id, "AKSECOND00000000");
	assert_int_equal(ks[0].secret_sealed_len, 40);
	assert_true(ks[0].active && ks[1].active);

	/* Revocation is for good, and repeatable. */
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKFIRST000000000",
						   &err),
			 KURA_OK);
	assert_false(key_active(f, "AKFIRST000000000"));
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKFIRST000000000",
						   &err),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKNONE0000000000",
						   &err),
			 KURA_ENOENT);
	/* Its id is still taken. */
	access_key(&k, acme, "AKFIRST000000000", 3000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err),
			 KURA_EEXIST);
	assert_false(key_active(f, "AKFIRST000000000"));

	/* Rotation: the new key in, the old one revoked, in one step. */
	access_key(&k, acme, "AKTHIRD000000000", 4000);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKSECOND00000000",
						    &k, &err),
			 KURA_OK);
	assert_true(key_active(f, "AKTHIRD000000000"));
	assert_false(key_active(f, "AKSECOND00000000"));
	/* A revoked key cannot be rotated; nothing changes. */
	access_key(&k, acme, "AKFOURTH00000000", 5000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKSECOND00000000",
						    &k, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKFOURTH00000000", &k,
						&err),
			 KURA_ENOENT);
	/* Nor another tenant's key, nor a missing one. */
	access_key(&k, acme, "AKFOURTH00000000", 5000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKOTHER000000000",
						    &k, &err),
			 KURA_ESTATE);
	assert_true(key_active(f, "AKOTHER000000000"));
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKNONE0000000000",
						    &k, &err),
			 KURA_ENOENT);
	/* A taken new id: the old key stays active (the transaction rolled
	 * back). */
	access_key(&k, acme, "AKOTHER000000000", 5000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKTHIRD000000000",
						    &k, &err),
			 KURA_EEXIST);
	assert_true(key_active(f, "AKTHIRD000000000"));
	assert_int_equal(f->ops->access_key_list(f->priv, acme, f->pool, &ks,
						 &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
}

static void test_tenant_delete(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_tenant got;
	struct kura_access_key ak;
	uint64_t acme = tenant(f, "acme");
	add_key(f, acme, "AKACME0000000000", 1000);

	/* A bucket (with its own key) blocks deletion. */
	struct kura_bucket b = { 0 };
	struct kura_key k = { 0 };
	struct kura_bucket_key bk = { 0 };
	b.id = 77;
	b.tenant_id = acme;
	snprintf(b.name, sizeof(b.name), "acme-data");
	snprintf(b.region, sizeof(b.region), "us-east-1");
	k.tenant_id = acme;
	snprintf(k.name, sizeof(k.name), "bucket/acme-data");
	k.kind = KURA_KEY_BUCKET;
	k.state = KURA_KEY_ENABLED;
	k.current_version = 1;
	snprintf(k.provider, sizeof(k.provider), "local");
	bk.key_version = 1;
	bk.wrapped_len = 60;
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-1", &bk,
					       &err),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err),
			 KURA_ENOTEMPTY);
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err),
			 KURA_OK);

	/* Bucket gone, but its key not destroyed: still refused. */
	assert_int_equal(f->ops->bucket_purge(f->priv, b.id, &err), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err),
			 KURA_ESTATE);
	assert_true(key_active(f, "AKACME0000000000"));

	/* Key destroyed: the tenant, its access keys and key rows go. */
	assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 1, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	uint64_t g0 = 0, g1 = 0;
	assert_int_equal(f->ops->key_generation(f->priv, &g0, &err), KURA_OK);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err), KURA_OK);
	assert_int_equal(f->ops->key_generation(f->priv, &g1, &err), KURA_OK);
	assert_true(g1 > g0);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKACME0000000000",
						&ak, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get(f->priv, k.id, &k, &err), KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err),
			 KURA_ENOENT);

	/* The name may be used again; the id is never given out again (ids
	 * are random, so a new one is not larger, only another). */
	uint64_t again = tenant(f, "acme");
	assert_true(again != acme);
}

/* ------------------------------------------------------------------ */
/* buckets, objects, blobs                                            */

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
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1, NULL,
					       NULL, false, &err),
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
	assert_int_equal(create_bucket(f, f->tenant, 555, "photos", NULL, NULL),
			 KURA_EEXIST);
	assert_int_equal(f->ops->key_version_destroyed(f->priv, f->key, 1,
						       &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_destroyed(f->priv, f->key, &err), KURA_OK);
	assert_int_equal(create_bucket(f, f->tenant, 555, "photos", &b, NULL),
			 KURA_OK);
	assert_true(b.key_id != f->key);
	/* Objects cannot go into a deleted bucket. */
	assert_int_equal(put_simple(f, "k", 1, 2), KURA_ENOENT);
	kura_pool_free(pool);
}

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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);

	assert_int_equal(f->ops->object_get(f->priv, f->bucket, key, klen, pool,
					    &got, &err),
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
				    parts[i].dek_wrapped, KURA_WRAPPED_DEK_LEN);
		assert_string_equal(got->parts[i].etag, parts[i].etag);
	}

	/* Absent headers come back NULL; other keys and buckets miss. */
	make_object(&o, parts, 1, f->bucket, "plain", 5, 8);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "plain", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_null(got->content_type);
	assert_null(got->user_meta_json);
	assert_null(got->expires);
	assert_int_equal(got->parts[0].part_no, 0);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "plai", 4, pool,
					    &got, &err),
			 KURA_ENOENT);
	assert_null(got);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket + 1, "plain", 5,
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Invalid records. */
	make_object(&o, parts, 2, f->bucket, "bad", 3, 9);
	o.size = 19;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_object(&o, parts, 2, f->bucket, "bad", 3, 9);
	parts[1].part_no = parts[0].part_no;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_object(&o, parts, 1, f->bucket, "bad", 0, 9);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	{
		static char longkey[KURA_OBJECT_KEY_MAX + 1];
		memset(longkey, 'x', sizeof(longkey));
		make_object(&o, parts, 1, f->bucket, longkey, sizeof(longkey),
			    9);
		assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		make_object(&o, parts, 1, f->bucket, longkey,
			    KURA_OBJECT_KEY_MAX, 9);
		assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
				 KURA_OK);
	}
	/* A blob id used by another object is refused, nothing changes. */
	make_object(&o, parts, 1, f->bucket, "thief", 5, 10);
	fill_id(parts[0].blob_id, 8, 0); /* "plain"'s blob */
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "thief", 5,
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* Deleting a missing object. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "nothing", 7,
					       NULL, NULL, false, &err),
			 KURA_ENOENT);
	kura_pool_free(pool);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);

	/* Replace reusing a blob of the old version: only the other one is
	 * queued. */
	make_object(&o, p3, 2, f->bucket, "obj", 3, 4);
	memcpy(p3[0].blob_id, p2[0].blob_id, 16);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	assert_int_equal(gc_count(f), 2);
	assert_false(gc_contains(f, p2[0].blob_id));

	/* gc_done forgets; the blob is then unreferenced. */
	memcpy(ids[0], p1[0].blob_id, 16);
	memcpy(ids[1], p1[1].blob_id, 16);
	assert_int_equal(
		f->ops->gc_done(f->priv,
				(const uint8_t(*)[KURA_BLOB_ID_LEN])ids, 2,
				&err),
		KURA_OK);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->blob_referenced(f->priv, p1[0].blob_id, &ref,
						 &err),
			 KURA_OK);
	assert_false(ref);

	/* Delete queues every blob of the version. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "obj", 3,
					       NULL, NULL, false, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 2);
	assert_true(gc_contains(f, p3[0].blob_id));
	assert_true(gc_contains(f, p3[1].blob_id));
	/* gc_next honours max. */
	assert_int_equal(f->ops->gc_next(f->priv, ids, 1, &n, &err), KURA_OK);
	assert_int_equal(n, 1);
	/* gc_done of unknown ids is harmless. */
	assert_int_equal(f->ops->gc_done(f->priv,
					 (const uint8_t(*)[KURA_BLOB_ID_LEN]) &
						 unknown,
					 1, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 2);
}

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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->tags_json, o.tags_json);
	assert_int_equal(got->parts[0].mtime_ms, 111);
	assert_int_equal(got->parts[1].mtime_ms, 222);

	/* Replace, then clear. */
	assert_int_equal(f->ops->object_set_tags(
				 f->priv, f->bucket, "tagged", 6, o.version_uid,
				 NULL, 0, "{\"a\":\"1\"}", NULL, 0, 0, &err),
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
						 6, o.version_uid, NULL, 0,
						 NULL, NULL, 0, 0, &err),
			 KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_null(got->tags_json);

	/* No such object (nor in another bucket, nor a bad key). */
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "tagge", 5,
						 o.version_uid, NULL, 0, "{}",
						 NULL, 0, 0, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket + 1,
						 "tagged", 6, o.version_uid,
						 NULL, 0, "{}", NULL, 0, 0,
						 &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "", 0,
						 o.version_uid, NULL, 0, "{}",
						 NULL, 0, 0, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	/* Only while it is still the version the caller read. */
	{
		uint8_t other[KURA_UID_LEN];
		memcpy(other, o.version_uid, KURA_UID_LEN);
		other[0] ^= 1;
		assert_int_equal(f->ops->object_set_tags(
					 f->priv, f->bucket, "tagged", 6, other,
					 NULL, 0, "{}", NULL, 0, 0, &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
	}

	/* A put replaces the tags with whatever the new record says. */
	assert_int_equal(f->ops->object_set_tags(
				 f->priv, f->bucket, "tagged", 6, o.version_uid,
				 NULL, 0, "{\"b\":\"2\"}", NULL, 0, 0, &err),
			 KURA_OK);
	make_object(&o, parts, 1, f->bucket, "tagged", 6, 41);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "tagged", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_null(got->tags_json);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* listing                                                            */

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
	enum {
		NK = ARRAY_LEN(list_keys)
	};
	struct bkey sorted[NK];
	struct bkey bounds[3 * NK + 4];
	size_t nb = 0, checks = 0;
	static const size_t limits[] = { 1, 2, 3, 5, NK - 1, NK, NK + 1, 1000 };

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
			assert_int_equal(
				f->ops->object_list(f->priv, f->bucket, NULL, 0,
						    last, last_len, page, pool,
						    &e, &cnt, &err),
				KURA_OK);
			for (size_t i = 0; i < cnt; i++) {
				assert_true(seen < NK);
				assert_int_equal(e[i].key_len, sorted[seen].n);
				assert_memory_equal(e[i].key, sorted[seen].p,
						    sorted[seen].n);
				seen++;
			}
			if (cnt > 0) {
				memcpy(last, e[cnt - 1].key,
				       e[cnt - 1].key_len);
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

/* ------------------------------------------------------------------ */
/* concurrency                                                        */

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
		if (f->ops->object_put(f->priv, &o, NULL, &err) != KURA_OK)
			goto fail;
		if (f->ops->object_get(f->priv, f->bucket, key, strlen(key),
				       pool, &got, &err) != KURA_OK)
			goto fail;
		if (got->part_count != 2 || got->size != 20 ||
		    memcmp(got->version_uid, o.version_uid, 16) != 0) {
			kura_fail(&err, KURA_EINTERNAL, "wrong object read");
			goto fail;
		}
		make_object(&o, parts, 1, f->bucket, "shared", 6, tag + 500000);
		if (put_newest(f, &o, &err) != KURA_OK)
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
		assert_int_equal(
			pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
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
	assert_int_equal(n,
			 THREADS * (ROUNDS - 5) * 2 + (THREADS * ROUNDS - 1));
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "shared", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->part_count, 1);
	kura_pool_free(pool);
}

/* SQL straight on the store, as someone with the database but no key
 * would run it. */
static void tamper(struct fx *f, const char *sql)
{
	assert_true(meta_sql(f, sql) >= 0);
}

static void test_row_macs(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_tenant t, *ts = NULL;
	struct kura_access_key k, *ks = NULL;
	struct kura_key key = { 0 }, gotk;
	size_t n = 0;
	uint64_t acme = tenant(f, "acme"), evil = tenant(f, "evil");
	add_key(f, acme, "AKACME0000000000", 1000);
	add_key(f, evil, "AKEVIL0000000000", 1000);

	/* An access key moved to another tenant. */
	tamper(f, "UPDATE access_keys SET tenant_id = (SELECT id FROM tenants "
		  "WHERE name = 'acme') WHERE id = 'AKEVIL0000000000'");
	assert_int_equal(f->ops->access_key_get(f->priv, "AKEVIL0000000000", &k,
						&err),
			 KURA_EINTEGRITY);
	assert_non_null(strstr(err.msg, "AKEVIL0000000000"));
	kura_error_clear(&err);
	/* Listing the tenant finds it too: no list hides a bad row. */
	assert_int_equal(f->ops->access_key_list(f->priv, acme, f->pool, &ks,
						 &n, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	tamper(f, "UPDATE access_keys SET tenant_id = (SELECT id FROM tenants "
		  "WHERE name = 'evil') WHERE id = 'AKEVIL0000000000'");
	assert_int_equal(f->ops->access_key_get(f->priv, "AKEVIL0000000000", &k,
						&err),
			 KURA_OK);

	/* A revoked key made active again; its revocation cannot be undone
	 * either (the row is read and checked first). */
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKACME0000000000",
						   &err),
			 KURA_OK);
	tamper(f,
	       "UPDATE access_keys SET active = 1 WHERE id = 'AKACME0000000000'");
	assert_int_equal(f->ops->access_key_get(f->priv, "AKACME0000000000", &k,
						&err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKACME0000000000",
						   &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);

	/* A suspended tenant resumed behind kura's back; a tenant renamed;
	 * one tenant's MAC copied onto another. */
	assert_int_equal(f->ops->tenant_set_state(f->priv, evil,
						  KURA_TENANT_SUSPENDED, &err),
			 KURA_OK);
	assert_int_equal(f->ops->tenant_get(f->priv, evil, &t, &err), KURA_OK);
	assert_int_equal(t.state, KURA_TENANT_SUSPENDED);
	tamper(f, "UPDATE tenants SET state = 0 WHERE name = 'evil'");
	assert_int_equal(f->ops->tenant_get(f->priv, evil, &t, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_list(f->priv, f->pool, &ts, &n, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	tamper(f, "UPDATE tenants SET state = 1 WHERE name = 'evil'");
	assert_int_equal(f->ops->tenant_get(f->priv, evil, &t, &err), KURA_OK);
	tamper(f, "UPDATE tenants SET name = 'acme2' WHERE name = 'acme'");
	assert_int_equal(f->ops->tenant_get_by_name(f->priv, "acme2", &t, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	tamper(f, "UPDATE tenants SET name = 'acme' WHERE name = 'acme2'");
	tamper(f, "UPDATE tenants SET mac = (SELECT mac FROM tenants WHERE "
		  "name = 'evil') WHERE name = 'acme'");
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &t, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	/* A row without a MAC, and no upgrade pending. */
	tamper(f, "UPDATE tenants SET mac = NULL WHERE name = 'acme'");
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &t, &err),
			 KURA_EINTEGRITY);
	assert_non_null(strstr(err.msg, "no MAC"));
	kura_error_clear(&err);
	/* Nothing is created on a tenant that fails its check. */
	add_key(f, evil, "AKEVIL1111111111", 2000);
	access_key(&k, acme, "AKACME1111111111", 2000);
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);

	/* A disabled key enabled in the database. */
	key.tenant_id = evil;
	snprintf(key.name, sizeof(key.name), "named");
	key.kind = KURA_KEY_NAMED;
	key.state = KURA_KEY_ENABLED;
	key.current_version = 1;
	snprintf(key.provider, sizeof(key.provider), "local");
	assert_int_equal(f->ops->key_create(f->priv, &key, "kek-1", &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_get(f->priv, key.id, &gotk, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_set_state(f->priv, key.id,
					       KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_get(f->priv, key.id, &gotk, &err),
			 KURA_OK);
	assert_int_equal(gotk.state, KURA_KEY_DISABLED);
	tamper(f, "UPDATE keys SET state = 1 WHERE name = 'named'");
	assert_int_equal(f->ops->key_get(f->priv, key.id, &gotk, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get_by_name(f->priv, evil, "named", &gotk,
						 &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_set_state(f->priv, key.id,
					       KURA_KEY_ENABLED, &err),
			 KURA_EINTEGRITY);
}

/* Bucket rows: names swapped, a bucket moved to another tenant, default
 * encryption changed; the bucket key's report of its tenant and its key's
 * state comes from checked rows too. */
static void test_bucket_row_macs(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_bucket b, *bs = NULL;
	struct kura_bucket_key bk;
	size_t n = 0;

	assert_int_equal(create_bucket(f, f->tenant, 77, "docs", NULL, NULL),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_get(f->priv, "docs", &b, &err),
			 KURA_OK);
	tamper(f, "UPDATE buckets SET name = 'tmp-x' WHERE name = 'photos'");
	tamper(f, "UPDATE buckets SET name = 'photos' WHERE name = 'docs'");
	tamper(f, "UPDATE buckets SET name = 'docs' WHERE name = 'tmp-x'");
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &b, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_get_id(f->priv, 77, &b, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_list(f->priv, f->tenant, f->pool, &bs,
					     &n, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &bk, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	/* Nothing changes a bucket that fails its check. */
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, 77, KURA_SSE_S3,
						       0, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	tamper(f, "UPDATE buckets SET name = 'tmp-x' WHERE name = 'photos'");
	tamper(f, "UPDATE buckets SET name = 'photos' WHERE name = 'docs'");
	tamper(f, "UPDATE buckets SET name = 'docs' WHERE name = 'tmp-x'");
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &b, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &bk, &err),
			 KURA_OK);

	/* Kura's own changes keep the MAC right. */
	assert_int_equal(f->ops->bucket_set_encryption(f->priv, 77, KURA_SSE_S3,
						       0, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_get(f->priv, "docs", &b, &err),
			 KURA_OK);
	tamper(f, "UPDATE buckets SET default_sse = 1 WHERE name = 'docs'");
	assert_int_equal(f->ops->bucket_get(f->priv, "docs", &b, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	tamper(f, "UPDATE buckets SET default_sse = 0 WHERE name = 'docs'");
	/* The key's state, as a bucket key reports it. */
	tamper(f,
	       "UPDATE keys SET state = 2 WHERE id = (SELECT key_id FROM buckets "
	       "WHERE name = 'photos')");
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &bk, &err),
			 KURA_EINTEGRITY);
}

/* Key versions and bucket keys: a version pointed at another KEK, a
 * version planted, a bucket key moved to another key or bucket, or one
 * joining a bucket to another tenant's key are integrity failures, so no
 * read unwraps with a KEK the metadata made up and no background job
 * destroys one. */
static void test_key_row_macs(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_bucket_key bk;
	struct kura_key_version *vs = NULL;
	struct kura_key other;
	struct kura_tenant t = { 0 };
	size_t n = 0;
	char sql[256];

	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &bk, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_versions(f->priv, f->key, f->pool, &vs, &n,
					      &err),
			 KURA_OK);
	/* A version pointed at another KEK id. */
	snprintf(
		sql, sizeof(sql),
		"UPDATE key_versions SET kek_id = 'victim-kek' WHERE key_id = %llu",
		(unsigned long long)f->key);
	tamper(f, sql);
	assert_int_equal(f->ops->key_versions(f->priv, f->key, f->pool, &vs, &n,
					      &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &bk, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);

	/* Another tenant's key, and the bucket key moved over to it. */
	snprintf(t.name, sizeof(t.name), "other");
	t.created_ms = 1;
	assert_int_equal(f->ops->tenant_create(f->priv, &t, &err), KURA_OK);
	make_key(&other, t.id, "theirs", KURA_KEY_NAMED);
	assert_int_equal(f->ops->key_create(f->priv, &other, "their-kek", &err),
			 KURA_OK);
	snprintf(sql, sizeof(sql),
		 "UPDATE bucket_keys SET key_id = %llu WHERE id = %llu",
		 (unsigned long long)other.id, (unsigned long long)f->bk);
	tamper(f, sql);
	assert_int_equal(f->ops->bucket_key_get(f->priv, f->bk, &bk, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);

	/* A version planted for that key, with no MAC. */
	snprintf(
		sql, sizeof(sql),
		"INSERT INTO key_versions (key_id, version, kek_id, state, "
		"created_ms, destroyed_ms) VALUES (%llu, 99, 'victim-kek', 2, 1, 0)",
		(unsigned long long)other.id);
	tamper(f, sql);
	assert_int_equal(f->ops->key_versions(f->priv, other.id, f->pool, &vs,
					      &n, &err),
			 KURA_EINTEGRITY);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		meta_test(test_settings),
		meta_test(test_tenants_keys),
		meta_test_bare(test_tenant_state_and_list),
		meta_test_bare(test_access_key_lifecycle),
		meta_test_bare(test_tenant_delete),
		meta_test(test_buckets),
		meta_test(test_object_roundtrip),
		meta_test(test_gc),
		meta_test(test_tags),
		meta_test(test_list_order),
		meta_test(test_concurrency),
		meta_test_bare(test_row_macs),
		meta_test(test_bucket_row_macs),
		meta_test(test_key_row_macs),
	};

	return meta_run_suite("test_meta", tests, ARRAY_LEN(tests));
}

/*
 * test_meta_keys.c — conformance tests of the metadata stores, part 3:
 * key management (schema 3 on) — kura keys and their lifecycle, buckets
 * created on new or existing keys, bucket keys, rotation (also raced
 * against buckets joining the key), re-wrapping, destruction, the bucket
 * key of every part, purge, default encryption, the key generation — and
 * metadata seals (schema 5).
 *
 * Every test runs once per compiled-in metadata store (meta_fixture.h),
 * only through kura_meta_open and the ops of meta.h, plus a few counts of
 * stored rows in portable SQL (meta_sql).
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
/* keys                                                               */

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
	k.created_ms = 0; /* now */
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
			case 0:
				bad.current_version = 2;
				break;
			case 1:
				bad.state = KURA_KEY_DESTROYED;
				break;
			case 2:
				bad.kind = 0;
				break;
			case 3:
				bad.name[0] = '\0';
				break;
			case 4:
				kek = NULL;
				break;
			case 5:
				bad.provider[0] = '\0';
				break;
			case 6:
				kek = "";
				break;
			}
			assert_int_equal(f->ops->key_create(f->priv, &bad, kek,
							    &err),
					 KURA_EINVAL);
			kura_error_clear(&err);
		}
		make_key(&bad, 999999, "fine", KURA_KEY_NAMED);
		assert_int_equal(f->ops->key_create(f->priv, &bad, "kek", &err),
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
	assert_int_equal(f->ops->key_set_state(f->priv, k.id, KURA_KEY_DISABLED,
					       &err),
			 KURA_OK);
	assert_int_equal(gen(f), g + 1);
	assert_int_equal(f->ops->key_get(f->priv, k.id, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_KEY_DISABLED);
	assert_true(got.changed_ms >= got.created_ms);
	assert_int_equal(f->ops->key_set_state(f->priv, k.id, KURA_KEY_DISABLED,
					       &err),
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
	assert_int_equal(f->ops->key_set_state(f->priv, k.id, KURA_KEY_DISABLED,
					       &err),
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
			 KURA_ESTATE); /* stale expectation */
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2", nb, 1,
					    &err),
			 KURA_ESTATE); /* bucket b left out */
	kura_error_clear(&err);
	{
		struct kura_bucket_key dup[2] = { nb[0], nb[0] };
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2",
						    dup, 2, &err),
				 KURA_ESTATE); /* a named twice */
		kura_error_clear(&err);
		dup[1] = nb[1];
		dup[1].bucket_id = f->bucket; /* not on this key */
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2",
						    dup, 2, &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
		dup[1] = nb[1];
		dup[1].key_version = 3;
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2",
						    dup, 2, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		dup[1] = nb[1];
		dup[1].wrapped_len = 0;
		assert_int_equal(f->ops->key_rotate(f->priv, tk.id, 1, "kek-t2",
						    dup, 2, &err),
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
	assert_int_equal(bks[0].id, a1.id); /* same time: by id */
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
		assert_true(in_use); /* c's */
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

/* ------------------------------------------------------------------ */
/* metadata seals (schema 5)                                          */

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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "sealed", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->etag, "");
	assert_string_equal(got->parts[0].etag, "");
	assert_int_equal(got->seal_len, 40);
	assert_memory_equal(got->seal, o.seal, 40);
	assert_int_equal(got->seal_bk_id, f->bk);
	assert_memory_equal(got->parts_digest, o.parts_digest,
			    KURA_PARTS_DIGEST_LEN);
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM objects WHERE "
				     "etag LIKE 'etag-%'"),
			 0);
	/* Listings carry the whole row. */
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, NULL,
					     0, 10, pool, &ls, &n, &err),
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	make_upload(&u, f->bucket, "up", 2, "U", 3, 1);
	fake_seal(u.seal, &u.seal_len, 0xb1);
	u.seal_bk_id = f->bk;
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "U", pool, &gu,
					    &err),
			 KURA_OK);
	assert_int_equal(gu->seal_len, 40);
	assert_int_equal(gu->seal_bk_id, f->bk);
	make_part(&up, 1, 3, 1);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "U", &up,
						 &err),
			 KURA_OK);

	assert_int_equal(f->ops->seal_pending_buckets(f->priv, NULL, ids, 4, &n,
						      &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], f->bucket);
	assert_int_equal(f->ops->seal_pending_buckets(f->priv, &ids[0], ids, 4,
						      &n, &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	memset(&b, 0, sizeof(b));
	assert_int_equal(f->ops->seal_next(f->priv, f->bucket, 0, 100, pool, &b,
					   &err),
			 KURA_OK);
	assert_int_equal(b.n_objects, 1);
	assert_int_equal(b.n_uploads, 0);
	assert_int_equal(b.n_parts, 1);
	assert_int_equal(b.objects[0].tenant_id, f->tenant);
	assert_string_equal(b.objects[0].etag, "etag-2");
	assert_non_null(b.objects[0].parts); /* for the digest */
	assert_string_equal(b.parts[0].part.etag, up.etag);
	assert_memory_equal(b.parts[0].version_uid, u.version_uid,
			    KURA_UID_LEN);
	/* A batch with a missing seal is refused whole. */
	memset(ns, 0, sizeof(ns));
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns, ns + 1,
					    &applied, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	fake_seal(ns[0].seal, &ns[0].seal_len, 0xc1);
	ns[0].seal_bk_id = f->bk;
	fake_seal(ns[1].seal, &ns[1].seal_len, 0xc2);
	ns[1].seal_bk_id = f->bk;
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns, ns + 1,
					    &applied, &err),
			 KURA_OK);
	assert_int_equal(applied, 2);
	/* Applying again changes nothing (the rows are no longer unsealed). */
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns, ns + 1,
					    &applied, &err),
			 KURA_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(f->ops->seal_pending_buckets(f->priv, NULL, ids, 4, &n,
						      &err),
			 KURA_OK);
	assert_int_equal(n, 0);
	assert_int_equal(
		meta_sql(f, "SELECT count(*) FROM objects WHERE etag != ''"),
		0);
	assert_int_equal(
		meta_sql(f, "SELECT count(*) FROM parts WHERE etag != ''"), 0);
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM upload_parts WHERE "
				     "etag != ''"),
			 0);

	/* After a rotation the rows sealed by the old bucket key move. */
	assert_int_equal(rotate_all(f, f->key, 1, "kek-seal-2"), KURA_OK);
	assert_int_equal(f->ops->bucket_key_current(f->priv, f->bucket, f->key,
						    &bk2, &err),
			 KURA_OK);
	memset(&b, 0, sizeof(b));
	assert_int_equal(f->ops->seal_next(f->priv, f->bucket, f->bk, 100, pool,
					   &b, &err),
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
		assert_int_equal(f->ops->rewrap_next(f->priv, f->bk, 100, pool,
						     &rw, &nr, &err),
				 KURA_OK);
		assert_int_equal(f->ops->rewrap_apply(f->priv, f->bk, bk2.id,
						      rw, nr, &err),
				 KURA_OK);
	}
	assert_int_equal(f->ops->bucket_key_delete(f->priv, f->bk, &err),
			 KURA_EBUSY);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	{
		size_t j = memcmp(b.objects[0].key, "sealed", 6) == 0 ? 0 : 1;
		uint8_t other_seal[KURA_SEAL_MAX];
		size_t other_len = 0;
		fake_seal(other_seal, &other_len, 0x77);
		assert_int_equal(f->ops->object_set_tags(
					 f->priv, f->bucket, "sealed", 6,
					 b.objects[j].version_uid,
					 b.objects[j].seal,
					 b.objects[j].seal_len, "{}",
					 other_seal, other_len, f->bk, &err),
				 KURA_OK);
	}
	assert_int_equal(f->ops->seal_apply(f->priv, &b, ns, ns + 2, ns + 3,
					    &applied, &err),
			 KURA_OK);
	assert_int_equal(applied, 2); /* the upload and its part */
	/* The tagged row still holds a seal by the old key: it stays. */
	assert_int_equal(f->ops->bucket_key_delete(f->priv, f->bk, &err),
			 KURA_EBUSY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "sealed", 6,
					       NULL, NULL, false, &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_key_delete(f->priv, f->bk, &err),
			 KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "legacy", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->seal[0], 0xe1);

	/* Tags replace the seal with the tags, only on the version read. */
	assert_int_equal(f->ops->object_set_tags(
				 f->priv, f->bucket, "legacy", 6, o.version_uid,
				 NULL, 0, "{}", o.seal, 41, bk2.id, &err),
			 KURA_ESTATE); /* the caller read another seal */
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_set_tags(f->priv, f->bucket, "legacy",
						 6, o.version_uid, got->seal,
						 got->seal_len, "{}", o.seal,
						 41, bk2.id, &err),
			 KURA_OK);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "legacy", 6,
					    pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->seal_len, 41);

	/* Settings can be removed (the upgrade's marker), twice. */
	assert_int_equal(f->ops->setting_insert(f->priv, "seal_pending",
						(const uint8_t *)"x", 1, &err),
			 KURA_OK);
	assert_int_equal(f->ops->setting_delete(f->priv, "seal_pending", &err),
			 KURA_OK);
	assert_int_equal(f->ops->setting_delete(f->priv, "seal_pending", &err),
			 KURA_OK);
	assert_int_equal(f->ops->bucket_get_id(f->priv, f->bucket, &bucket,
					       &err),
			 KURA_OK);
	assert_int_equal(bucket.tenant_id, f->tenant);
	assert_int_equal(f->ops->bucket_get_id(f->priv, 424242, &bucket, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* re-wrapping, destruction                                           */

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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	make_object(&o, p2, 1, f->bucket, "o2", 2, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);

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
	assert_int_equal(n, 1); /* o3 */
	assert_int_equal(f->ops->rewrap_next(f->priv, 999999, 10, pool, &rw, &n,
					     &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Deleting: the old one is in use, the new one current. */
	assert_int_equal(f->ops->bucket_key_delete(f->priv, bk1, &err),
			 KURA_EBUSY);
	kura_error_clear(&err);
	/* Behind the check, the reference itself refuses. */
	{
		char sql[96];
		snprintf(sql, sizeof(sql),
			 "DELETE FROM bucket_keys WHERE id = %llu",
			 (unsigned long long)bk1);
		assert_int_equal(meta_sql(f, sql), -1);
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
	assert_int_equal(f->ops->object_put(f->priv, &o2, NULL, &err), KURA_OK);
	make_part(&up[0], 1, 3, 11);
	assert_int_equal(up[0].bk_id, bk1);
	up[0].bk_id = bk2.id;
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket, "U",
						 &up[0], &err),
			 KURA_OK);
	completed_object(&o, f->bucket, "vp", 4, vp, 1);
	o.content_type = NULL;
	assert_int_equal(f->ops->upload_complete(f->priv, "V", &o, NULL, &err),
			 KURA_OK);

	/* Apply new wrappings to everything listed. */
	for (size_t i = 0; i < 6; i++)
		memset(mine[i].dek_wrapped, 0xee, KURA_WRAPPED_DEK_LEN);
	assert_int_equal(create_bucket(f, f->tenant, 30, "other", NULL, &obk),
			 KURA_OK);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, obk.id, mine, 6,
					      &err),
			 KURA_ESTATE); /* another bucket's key */
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, 999999, mine, 6,
					      &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk1, mine, 6, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk2.id, mine, 0,
					      &err),
			 KURA_OK);
	g = gen(f);
	assert_int_equal(f->ops->rewrap_apply(f->priv, bk1, bk2.id, mine, 6,
					      &err),
			 KURA_OK);
	assert_int_equal(gen(f), g); /* parts, not keys, changed */
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_ESTATE);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	make_object(&o, ps, 1, f->bucket, "s3", 2, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	make_object(&o, pc, 1, f->bucket, "c", 1, 3);
	o.sse = KURA_SSE_C;
	memset(o.ssec_hmac, 0xc5, sizeof(o.ssec_hmac));
	pc[0].bk_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
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
							 NULL, &err),
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
					       NULL, NULL, false, &err),
			 KURA_OK);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "UK", &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 3);
	/* No part refers to a bucket key that went. */
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM parts WHERE bk_id "
				     "NOT IN (SELECT id FROM bucket_keys)"),
			 0);
	assert_int_equal(meta_sql(f,
				  "SELECT count(*) FROM upload_parts WHERE "
				  "bk_id NOT IN (SELECT id FROM bucket_keys)"),
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);

	/* No such bucket key, another bucket's, none at all. */
	make_object(&o, p, 2, f->bucket, "obj", 3, 2);
	p[1].bk_id = 999999;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	p[1].bk_id = obk.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	p[1].bk_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "obj", 3, pool,
					    &go, &err),
			 KURA_OK);
	assert_string_equal(go->etag, "etag-1");
	/* The other bucket's own key works there. */
	make_object(&o, p, 1, 40, "obj", 3, 3);
	assert_int_equal(p[0].bk_id, obk.id);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);

	/* SSE-C: no bucket key needed; the key check value round-trips. */
	make_object(&o, p, 1, f->bucket, "ssec", 4, 4);
	o.sse = KURA_SSE_C;
	for (size_t i = 0; i < KURA_SSEC_HMAC_LEN; i++)
		o.ssec_hmac[i] = (uint8_t)(i + 1);
	p[0].bk_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "ssec", 4, pool,
					    &go, &err),
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
	memset(o.ssec_hmac, 0x99, KURA_SSEC_HMAC_LEN); /* not stored */
	p[0].bk_id = kbk.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "kms", 3, pool,
					    &go, &err),
			 KURA_OK);
	assert_int_equal(go->sse, KURA_SSE_KMS);
	assert_int_equal(go->kms_key_id, k.id);
	assert_memory_equal(go->ssec_hmac, zero, KURA_SSEC_HMAC_LEN);
	assert_int_equal(go->parts[0].bk_id, kbk.id);
	/* Inconsistent encryption fields. */
	o.kms_key_id = 0;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = KURA_SSE_S3;
	o.kms_key_id = k.id;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = (enum kura_sse)7;
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = KURA_SSE_KMS;
	o.kms_key_id = 999999; /* no such key */
	o.vseq = fx_next_vseq();
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);

	/* Uploads: SSE-C without bucket keys, checks on every part. */
	make_upload(&u, f->bucket, "up", 2, "UC", 6, 1);
	u.sse = KURA_SSE_C;
	memset(u.ssec_hmac, 0xab, KURA_SSEC_HMAC_LEN);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "UC", pool, &gu,
					    &err),
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
	assert_int_equal(f->ops->upload_complete(f->priv, "UC", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.sse = KURA_SSE_C;
	memset(o.ssec_hmac, 0xac, KURA_SSEC_HMAC_LEN);
	assert_int_equal(f->ops->upload_complete(f->priv, "UC", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	memset(o.ssec_hmac, 0xab, KURA_SSEC_HMAC_LEN);
	assert_int_equal(f->ops->upload_complete(f->priv, "UC", &o, NULL, &err),
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
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_EINVAL);
	kura_error_clear(&err);
	u.kms_key_id = k.id;
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "UK", pool, &gu,
					    &err),
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
	o.kms_key_id = f->key; /* not the upload's key */
	assert_int_equal(f->ops->upload_complete(f->priv, "UK", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	o.kms_key_id = k.id;
	assert_int_equal(f->ops->upload_complete(f->priv, "UK", &o, NULL, &err),
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
	size_t stop_after; /* 0: never */
};

static enum kura_err
inventory_add(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN], uint64_t size)
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	make_object(&o, p1, 1, bid, "one", 3, 2);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
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
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);

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
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM parts"), 1);
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM upload_parts"), 0);
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
	assert_int_equal(f->ops->bucket_set_encryption(
				 f->priv, f->bucket, KURA_SSE_KMS, k.id, &err),
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
	assert_int_equal(f->ops->bucket_set_encryption(
				 f->priv, f->bucket, KURA_SSE_KMS, k.id, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_get(f->priv, "photos", &b, &err),
			 KURA_OK);
	assert_int_equal(b.default_sse, KURA_SSE_S3);
}

/* ------------------------------------------------------------------ */
/* rotation raced against buckets joining                             */

/* Buckets join a tenant key while it is rotated: every joiner and the
 * rotator retry on KURA_ESTATE, and at the end every bucket has exactly
 * one current bucket key, of the key's last version. */
#define RACE_JOINERS 4
#define RACE_BUCKETS 8 /* per joiner */
#define RACE_ROTATIONS 6

struct race {
	struct fx *f;
	uint64_t key_id;
	int retries; /* under mu */
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
				r = f->ops->bucket_keys_of_key(
					f->priv, k.id, pool, &cur, &n, &err);
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
						i < RACE_JOINERS ? joiner_main :
								   rotator_main,
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
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM (SELECT "
				     "bucket_id FROM bucket_keys WHERE "
				     "current = 1 GROUP BY bucket_id, "
				     "key_id HAVING count(*) > 1)"),
			 0);
	print_message("# %d buckets joined during %d rotations, %d retries\n",
		      RACE_JOINERS * RACE_BUCKETS, RACE_ROTATIONS,
		      race.retries);
	pthread_mutex_destroy(&race.mu);
	kura_pool_free(pool);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		meta_test(test_keys),
		meta_test(test_bucket_create_keys),
		meta_test(test_bucket_key_insert),
		meta_test(test_rotate),
		meta_test(test_seals),
		meta_test(test_rewrap),
		meta_test(test_key_destroy),
		meta_test(test_part_keys),
		meta_test(test_bucket_purge),
		meta_test(test_bucket_encryption),
		meta_test(test_rotate_race),
	};

	return meta_run_suite("test_meta_keys", tests, ARRAY_LEN(tests));
}

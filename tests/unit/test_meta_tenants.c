/*
 * test_meta_tenants.c — the tenant and access-key lifecycle of the SQLite
 * metadata store (meta.h, v4): tenant state, listing, deletion with its
 * refusals, access-key listing, revocation and rotation; the row MACs of
 * tenants, access keys and keys against someone who edits the database.
 *
 * Each test works on a fresh database in its own mkdtemp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kura/config.h"
#include "kura/meta.h"
#include "rmtree.h"
#include "kura/banned.h"

struct fx {
	char dir[64];
	struct kura_config *cfg;
	struct kura_meta *meta;
	const struct kura_meta_ops *ops;
	void *priv;
	struct kura_pool *pool;
};

static const uint8_t row_key[KURA_ROW_KEY_LEN] = { 0x6b, 0x75, 0x72, 0x61 };

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kura_error err = { 0 };
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kura-meta-tenants-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(kura_config_new(&f->cfg, &err), KURA_OK);
	if (kura_meta_open(f->cfg, f->dir, &f->meta, &err) != KURA_OK)
		fail_msg("open: %s", err.msg);
	if (f->meta->ops->set_row_key(f->meta->priv, row_key, &err) != KURA_OK)
		fail_msg("set_row_key: %s", err.msg);
	f->ops = f->meta->ops;
	f->priv = f->meta->priv;
	f->pool = kura_pool_new(0);
	assert_non_null(f->pool);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kura_pool_free(f->pool);
	kura_meta_close(f->meta);
	kura_config_free(f->cfg);
	rmtree(f->dir);
	free(f);
	return 0;
}

static uint64_t tenant(struct fx *f, const char *name)
{
	struct kura_tenant t = { 0 };
	struct kura_error err = { 0 };
	snprintf(t.name, sizeof(t.name), "%s", name);
	t.created_ms = 1000;
	t.state = KURA_TENANT_SUSPENDED;	/* ignored: created active */
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

static void add_key(struct fx *f, uint64_t tenant_id, const char *id, int64_t created)
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
	assert_int_equal(f->ops->access_key_get(f->priv, id, &k, &err), KURA_OK);
	return k.active;
}

static void test_tenant_state_and_list(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_tenant got, *ts = NULL;
	size_t n = 99;
	assert_int_equal(f->ops->tenant_list(f->priv, f->pool, &ts, &n, &err), KURA_OK);
	assert_int_equal(n, 0);
	uint64_t zed = tenant(f, "zed");
	uint64_t acme = tenant(f, "acme");
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_TENANT_ACTIVE);

	assert_int_equal(f->ops->tenant_set_state(f->priv, acme, KURA_TENANT_SUSPENDED,
						  &err), KURA_OK);
	/* Setting the state it has is success. */
	assert_int_equal(f->ops->tenant_set_state(f->priv, acme, KURA_TENANT_SUSPENDED,
						  &err), KURA_OK);
	assert_int_equal(f->ops->tenant_get_by_name(f->priv, "acme", &got, &err),
			 KURA_OK);
	assert_int_equal(got.state, KURA_TENANT_SUSPENDED);
	assert_int_equal(f->ops->tenant_list(f->priv, f->pool, &ts, &n, &err), KURA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ts[0].name, "acme");
	assert_int_equal(ts[0].id, acme);
	assert_int_equal(ts[0].state, KURA_TENANT_SUSPENDED);
	assert_string_equal(ts[1].name, "zed");
	assert_int_equal(ts[1].id, zed);
	assert_int_equal(ts[1].state, KURA_TENANT_ACTIVE);
	assert_int_equal(ts[1].created_ms, 1000);

	assert_int_equal(f->ops->tenant_set_state(f->priv, acme, KURA_TENANT_ACTIVE,
						  &err), KURA_OK);
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err), KURA_OK);
	assert_int_equal(got.state, KURA_TENANT_ACTIVE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_set_state(f->priv, 999, KURA_TENANT_SUSPENDED,
						  &err), KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_set_state(f->priv, acme,
						  (enum kura_tenant_state)7, &err),
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
	assert_int_equal(f->ops->access_key_list(f->priv, acme, f->pool, &ks, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_string_equal(ks[0].id, "AKFIRST000000000");	/* oldest first */
	assert_string_equal(ks[1].id, "AKSECOND00000000");
	assert_int_equal(ks[0].secret_sealed_len, 40);
	assert_true(ks[0].active && ks[1].active);

	/* Revocation is for good, and repeatable. */
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKFIRST000000000", &err),
			 KURA_OK);
	assert_false(key_active(f, "AKFIRST000000000"));
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKFIRST000000000", &err),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKNONE0000000000", &err),
			 KURA_ENOENT);
	/* Its id is still taken. */
	access_key(&k, acme, "AKFIRST000000000", 3000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err), KURA_EEXIST);
	assert_false(key_active(f, "AKFIRST000000000"));

	/* Rotation: the new key in, the old one revoked, in one step. */
	access_key(&k, acme, "AKTHIRD000000000", 4000);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKSECOND00000000", &k,
						    &err), KURA_OK);
	assert_true(key_active(f, "AKTHIRD000000000"));
	assert_false(key_active(f, "AKSECOND00000000"));
	/* A revoked key cannot be rotated; nothing changes. */
	access_key(&k, acme, "AKFOURTH00000000", 5000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKSECOND00000000", &k,
						    &err), KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKFOURTH00000000", &k, &err),
			 KURA_ENOENT);
	/* Nor another tenant's key, nor a missing one. */
	access_key(&k, acme, "AKFOURTH00000000", 5000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKOTHER000000000", &k,
						    &err), KURA_ESTATE);
	assert_true(key_active(f, "AKOTHER000000000"));
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKNONE0000000000", &k,
						    &err), KURA_ENOENT);
	/* A taken new id: the old key stays active (the transaction rolled
	 * back). */
	access_key(&k, acme, "AKOTHER000000000", 5000);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_replace(f->priv, "AKTHIRD000000000", &k,
						    &err), KURA_EEXIST);
	assert_true(key_active(f, "AKTHIRD000000000"));
	assert_int_equal(f->ops->access_key_list(f->priv, acme, f->pool, &ks, &n, &err),
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
	assert_int_equal(f->ops->bucket_create(f->priv, &b, &k, "kek-1", &bk, &err),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err), KURA_ENOTEMPTY);
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err), KURA_OK);

	/* Bucket gone, but its key not destroyed: still refused. */
	assert_int_equal(f->ops->bucket_purge(f->priv, b.id, &err), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err), KURA_ESTATE);
	assert_true(key_active(f, "AKACME0000000000"));

	/* Key destroyed: the tenant, its access keys and key rows go. */
	assert_int_equal(f->ops->key_version_destroyed(f->priv, k.id, 1, &err), KURA_OK);
	assert_int_equal(f->ops->key_destroyed(f->priv, k.id, &err), KURA_OK);
	uint64_t g0 = 0, g1 = 0;
	assert_int_equal(f->ops->key_generation(f->priv, &g0, &err), KURA_OK);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err), KURA_OK);
	assert_int_equal(f->ops->key_generation(f->priv, &g1, &err), KURA_OK);
	assert_true(g1 > g0);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &got, &err), KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_get(f->priv, "AKACME0000000000", &ak, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get(f->priv, k.id, &k, &err), KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->tenant_delete(f->priv, acme, &err), KURA_ENOENT);

	/* The name may be used again; the id is never given out again. */
	uint64_t again = tenant(f, "acme");
	assert_true(again > acme);
}

/* SQL straight on the database file, as someone with the data directory
 * but no key would run it. */
static void tamper(struct fx *f, const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;
	char *msg = NULL;
	snprintf(path, sizeof(path), "%s/meta.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
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
	assert_int_equal(f->ops->access_key_get(f->priv, "AKEVIL0000000000", &k, &err),
			 KURA_EINTEGRITY);
	assert_non_null(strstr(err.msg, "AKEVIL0000000000"));
	kura_error_clear(&err);
	/* Listing the tenant finds it too: no list hides a bad row. */
	assert_int_equal(f->ops->access_key_list(f->priv, acme, f->pool, &ks, &n, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	tamper(f, "UPDATE access_keys SET tenant_id = (SELECT id FROM tenants "
		  "WHERE name = 'evil') WHERE id = 'AKEVIL0000000000'");
	assert_int_equal(f->ops->access_key_get(f->priv, "AKEVIL0000000000", &k, &err),
			 KURA_OK);

	/* A revoked key made active again; its revocation cannot be undone
	 * either (the row is read and checked first). */
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKACME0000000000", &err),
			 KURA_OK);
	tamper(f, "UPDATE access_keys SET active = 1 WHERE id = 'AKACME0000000000'");
	assert_int_equal(f->ops->access_key_get(f->priv, "AKACME0000000000", &k, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->access_key_revoke(f->priv, "AKACME0000000000", &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);

	/* A suspended tenant resumed behind kura's back; a tenant renamed;
	 * one tenant's MAC copied onto another. */
	assert_int_equal(f->ops->tenant_set_state(f->priv, evil, KURA_TENANT_SUSPENDED, &err),
			 KURA_OK);
	assert_int_equal(f->ops->tenant_get(f->priv, evil, &t, &err), KURA_OK);
	assert_int_equal(t.state, KURA_TENANT_SUSPENDED);
	tamper(f, "UPDATE tenants SET state = 0 WHERE name = 'evil'");
	assert_int_equal(f->ops->tenant_get(f->priv, evil, &t, &err), KURA_EINTEGRITY);
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
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &t, &err), KURA_EINTEGRITY);
	kura_error_clear(&err);
	/* A row without a MAC, and no upgrade pending. */
	tamper(f, "UPDATE tenants SET mac = NULL WHERE name = 'acme'");
	assert_int_equal(f->ops->tenant_get(f->priv, acme, &t, &err), KURA_EINTEGRITY);
	assert_non_null(strstr(err.msg, "no MAC"));
	kura_error_clear(&err);
	/* Nothing is created on a tenant that fails its check. */
	add_key(f, evil, "AKEVIL1111111111", 2000);
	access_key(&k, acme, "AKACME1111111111", 2000);
	assert_int_equal(f->ops->access_key_create(f->priv, &k, &err), KURA_EINTEGRITY);
	kura_error_clear(&err);

	/* A disabled key enabled in the database. */
	key.tenant_id = evil;
	snprintf(key.name, sizeof(key.name), "named");
	key.kind = KURA_KEY_NAMED;
	key.state = KURA_KEY_ENABLED;
	key.current_version = 1;
	snprintf(key.provider, sizeof(key.provider), "local");
	assert_int_equal(f->ops->key_create(f->priv, &key, "kek-1", &err), KURA_OK);
	assert_int_equal(f->ops->key_get(f->priv, key.id, &gotk, &err), KURA_OK);
	assert_int_equal(f->ops->key_set_state(f->priv, key.id, KURA_KEY_DISABLED, &err),
			 KURA_OK);
	assert_int_equal(f->ops->key_get(f->priv, key.id, &gotk, &err), KURA_OK);
	assert_int_equal(gotk.state, KURA_KEY_DISABLED);
	tamper(f, "UPDATE keys SET state = 1 WHERE name = 'named'");
	assert_int_equal(f->ops->key_get(f->priv, key.id, &gotk, &err), KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_get_by_name(f->priv, evil, "named", &gotk, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->key_set_state(f->priv, key.id, KURA_KEY_ENABLED, &err),
			 KURA_EINTEGRITY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tenant_state_and_list, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_access_key_lifecycle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tenant_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_macs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

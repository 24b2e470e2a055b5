/*
 * test_meta_versions.c — conformance tests of the metadata stores, part 4:
 * object versions — a key's versions ordered by vseq (a writer with an
 * older one refused), the null version replaced, delete markers hiding a
 * key from the listing of current objects, versions removed for good with
 * their blobs queued, the condition on the newest version (conditional
 * writes), and version listings in S3's order across pages, also past a
 * key with many versions.
 *
 * Every test runs once per compiled-in metadata store (meta_fixture.h),
 * only through kura_meta_open and the ops of meta.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "meta_fixture.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

/* A version of key written with vseq, one 10-byte part (blob from tag). */
static enum kura_err put_version(struct fx *f, const char *key, uint32_t tag,
				 uint64_t vseq, bool null_version,
				 const struct kura_put_cond *cond,
				 struct kura_object *o, struct kura_part *p)
{
	struct kura_error err = { 0 };

	make_object(o, p, 1, f->bucket, key, strlen(key), tag);
	o->vseq = vseq;
	o->null_version = null_version;
	return f->ops->object_put(f->priv, o, cond, &err);
}

static enum kura_err put_marker(struct fx *f, const char *key, uint32_t tag,
				uint64_t vseq, bool null_version,
				struct kura_object *o)
{
	struct kura_error err = { 0 };

	make_object(o, NULL, 0, f->bucket, key, strlen(key), tag);
	o->vseq = vseq;
	o->null_version = null_version;
	o->delete_marker = true;
	return f->ops->object_put(f->priv, o, NULL, &err);
}

/* Every version of the bucket in listing order: "key@vseq[*]" joined by
 * spaces, '*' marking the newest, 'm' a delete marker. */
static void all_versions(struct fx *f, const char *prefix, char *out,
			 size_t cap)
{
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object *vs = NULL;
	size_t n = 0, used = 0;

	assert_int_equal(f->ops->object_list_versions(
				 f->priv, f->bucket, prefix, strlen(prefix),
				 NULL, 0, 0, 1000, pool, &vs, &n, &err),
			 KURA_OK);
	out[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used,
					 "%s%.*s@%llu%s%s", i ? " " : "",
					 (int)vs[i].key_len, vs[i].key,
					 (unsigned long long)vs[i].vseq,
					 vs[i].is_latest ? "*" : "",
					 vs[i].delete_marker ? "m" : "");
	kura_pool_free(pool);
}

static void test_version_order(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o1, o2, o3, *got = NULL;
	struct kura_part p1, p2, p3;
	char list[512];

	assert_int_equal(put_version(f, "k", 1, 10, false, NULL, &o1, &p1),
			 KURA_OK);
	assert_int_equal(put_version(f, "k", 2, 20, false, NULL, &o2, &p2),
			 KURA_OK);
	/* An older vseq is refused and leaves everything as it was. */
	assert_int_equal(put_version(f, "k", 3, 15, false, NULL, &o3, &p3),
			 KURA_ECONFLICT);
	assert_int_equal(put_version(f, "k", 3, 20, false, NULL, &o3, &p3),
			 KURA_ECONFLICT);
	assert_false(referenced(f, p3.blob_id));
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "k", 1, pool,
					    &got, &err),
			 KURA_OK);
	assert_memory_equal(got->version_uid, o2.version_uid, KURA_UID_LEN);
	assert_int_equal(got->vseq, 20);
	assert_false(got->null_version);
	assert_int_equal(f->ops->object_get_version(f->priv, f->bucket, "k", 1,
						    o1.version_uid, pool, &got,
						    &err),
			 KURA_OK);
	assert_int_equal(got->vseq, 10);
	assert_int_equal(got->part_count, 1);
	assert_memory_equal(got->parts[0].blob_id, p1.blob_id, 16);
	/* No null version yet. */
	assert_int_equal(f->ops->object_get_version(f->priv, f->bucket, "k", 1,
						    NULL, pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	all_versions(f, "", list, sizeof(list));
	assert_string_equal(list, "k@20* k@10");
	kura_pool_free(pool);
}

static void test_null_version_replaced(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object v1, n1, n2, *got = NULL;
	struct kura_part pv, pn1, pn2;
	char list[512];

	assert_int_equal(put_version(f, "k", 1, 10, true, NULL, &n1, &pn1),
			 KURA_OK);
	assert_int_equal(put_version(f, "k", 2, 20, false, NULL, &v1, &pv),
			 KURA_OK);
	/* A second null version replaces the first, wherever it is. */
	assert_int_equal(put_version(f, "k", 3, 30, true, NULL, &n2, &pn2),
			 KURA_OK);
	assert_true(gc_contains(f, pn1.blob_id));
	assert_false(gc_contains(f, pv.blob_id));
	all_versions(f, "", list, sizeof(list));
	assert_string_equal(list, "k@30* k@20");
	assert_int_equal(f->ops->object_get_version(f->priv, f->bucket, "k", 1,
						    NULL, pool, &got, &err),
			 KURA_OK);
	assert_memory_equal(got->version_uid, n2.version_uid, KURA_UID_LEN);
	assert_true(got->null_version);
	kura_pool_free(pool);
}

static void test_delete_markers(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object a, k1, dm, z, bad, *got = NULL, *e = NULL;
	struct kura_part pa, pk, pz, pb[1];
	size_t n = 0;
	char list[512];

	assert_int_equal(put_version(f, "a", 1, 10, false, NULL, &a, &pa),
			 KURA_OK);
	assert_int_equal(put_version(f, "k", 2, 10, false, NULL, &k1, &pk),
			 KURA_OK);
	assert_int_equal(put_version(f, "z", 3, 10, false, NULL, &z, &pz),
			 KURA_OK);
	assert_int_equal(put_marker(f, "k", 4, 20, false, &dm), KURA_OK);
	/* A marker has no parts. */
	make_object(&bad, pb, 1, f->bucket, "k", 1, 5);
	bad.vseq = 30;
	bad.delete_marker = true;
	assert_int_equal(f->ops->object_put(f->priv, &bad, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	/* The newest version is the marker; the key is not listed. */
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "k", 1, pool,
					    &got, &err),
			 KURA_OK);
	assert_true(got->delete_marker);
	assert_int_equal(got->part_count, 0);
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, NULL,
					     0, 10, pool, &e, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(e[0].key, "a", 1);
	assert_memory_equal(e[1].key, "z", 1);
	all_versions(f, "", list, sizeof(list));
	assert_string_equal(list, "a@10* k@20*m k@10 z@10*");
	/* Removing the marker brings the key back. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1,
					       dm.version_uid, NULL, false,
					       &err),
			 KURA_OK);
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, NULL,
					     0, 10, pool, &e, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	kura_pool_free(pool);
}

static void test_delete_version(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_object v1, v2, v3;
	struct kura_part p1, p2, p3;
	struct kura_put_cond cond = { .expect_vseq = 20 };
	char list[512];

	assert_int_equal(put_version(f, "k", 1, 10, false, NULL, &v1, &p1),
			 KURA_OK);
	assert_int_equal(put_version(f, "k", 2, 20, false, NULL, &v2, &p2),
			 KURA_OK);
	assert_int_equal(put_version(f, "k", 3, 30, false, NULL, &v3, &p3),
			 KURA_OK);
	/* With a condition on the newest: refused while it is not 20. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1,
					       v2.version_uid, &cond, false,
					       &err),
			 KURA_ECONFLICT);
	kura_error_clear(&err);
	assert_false(gc_contains(f, p2.blob_id));
	cond.expect_vseq = 30;
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1,
					       v2.version_uid, &cond, false,
					       &err),
			 KURA_OK);
	assert_true(gc_contains(f, p2.blob_id));
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1,
					       v2.version_uid, NULL, false,
					       &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* The newest removed: the one before is current again. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1,
					       v3.version_uid, NULL, false,
					       &err),
			 KURA_OK);
	all_versions(f, "", list, sizeof(list));
	assert_string_equal(list, "k@10*");
	/* A version uid of another key is not this key's. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "other", 5,
					       v1.version_uid, NULL, false,
					       &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* No null version to delete. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "k", 1, NULL,
					       NULL, false, &err),
			 KURA_ENOENT);
}

static void test_put_condition(void **state)
{
	struct fx *f = *state;
	struct kura_object o;
	struct kura_part p;
	struct kura_put_cond none = { .expect_vseq = 0 };
	struct kura_put_cond at10 = { .expect_vseq = 10 };

	/* "No version at all" holds once. */
	assert_int_equal(put_version(f, "lock", 1, 10, true, &none, &o, &p),
			 KURA_OK);
	assert_int_equal(put_version(f, "lock", 2, 20, true, &none, &o, &p),
			 KURA_ECONFLICT);
	assert_false(referenced(f, p.blob_id));
	/* "The newest is 10" holds until it is replaced. */
	assert_int_equal(put_version(f, "lock", 3, 30, true, &at10, &o, &p),
			 KURA_OK);
	assert_int_equal(put_version(f, "lock", 4, 40, true, &at10, &o, &p),
			 KURA_ECONFLICT);
}

static void test_version_listing_pages(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object o, *vs = NULL, *e = NULL;
	struct kura_part p;
	size_t n = 0;
	uint32_t tag = 1;
	char want[4096], got[4096];
	size_t wl = 0, gl = 0;

	/* "hot" has 60 versions between keys with a few. */
	for (uint64_t v = 1; v <= 3; v++)
		assert_int_equal(put_version(f, "a", tag++, v, false, NULL, &o,
					     &p),
				 KURA_OK);
	for (uint64_t v = 1; v <= 60; v++)
		assert_int_equal(put_version(f, "hot", tag++, v, false, NULL,
					     &o, &p),
				 KURA_OK);
	for (uint64_t v = 1; v <= 2; v++)
		assert_int_equal(put_version(f, "z", tag++, v, false, NULL, &o,
					     &p),
				 KURA_OK);
	/* Current objects: one row per key, the newest (seeking past the
	 * older versions of "hot"). */
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, NULL,
					     0, 10, pool, &e, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 3);
	assert_int_equal(e[1].vseq, 60);
	assert_int_equal(e[2].vseq, 2);
	assert_memory_equal(e[2].key, "z", 1);
	assert_int_equal(f->ops->object_list(f->priv, f->bucket, NULL, 0, "a",
					     1, 1, pool, &e, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(e[0].key, "hot", 3);
	/* Versions, 7 at a time, resuming after (key, vseq): the same rows
	 * as one listing. */
	all_versions(f, "", want, sizeof(want));
	const char *after = NULL;
	size_t after_len = 0;
	uint64_t after_vseq = 0;
	char last_key[16];
	for (;;) {
		assert_int_equal(f->ops->object_list_versions(
					 f->priv, f->bucket, NULL, 0, after,
					 after_len, after_vseq, 7, pool, &vs,
					 &n, &err),
				 KURA_OK);
		for (size_t i = 0; i < n; i++)
			gl += (size_t)snprintf(got + gl, sizeof(got) - gl,
					       "%s%.*s@%llu%s", gl ? " " : "",
					       (int)vs[i].key_len, vs[i].key,
					       (unsigned long long)vs[i].vseq,
					       vs[i].is_latest ? "*" : "");
		if (n < 7)
			break;
		memcpy(last_key, vs[n - 1].key, vs[n - 1].key_len);
		after = last_key;
		after_len = vs[n - 1].key_len;
		after_vseq = vs[n - 1].vseq;
	}
	assert_string_equal(got, want);
	wl = strlen(want);
	assert_true(wl > 0);
	assert_non_null(strstr(want, "a@3* a@2 a@1 hot@60* hot@59"));
	assert_non_null(strstr(want, "hot@1 z@2* z@1"));
	/* After a whole key (after_vseq 0), and under a prefix. */
	assert_int_equal(f->ops->object_list_versions(f->priv, f->bucket, NULL,
						      0, "hot", 3, 0, 10, pool,
						      &vs, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(vs[0].key, "z", 1);
	assert_true(vs[0].is_latest);
	assert_int_equal(f->ops->object_list_versions(f->priv, f->bucket, "h",
						      1, NULL, 0, 0, 100, pool,
						      &vs, &n, &err),
			 KURA_OK);
	assert_int_equal(n, 60);
	kura_pool_free(pool);
}

/* Object Lock in the store: a locked version is never removed — not by a
 * delete (GOVERNANCE yields to a bypass, COMPLIANCE and legal holds to
 * nothing), not by a write replacing the null version, not by a purge of
 * its bucket — until its retention ends. */
static void test_object_lock(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_object gov, comp, hold, old, n2, *got = NULL;
	struct kura_part pg, pc, ph, po, pn;
	struct kura_bucket b = { .id = f->bucket };
	int64_t later = kura_now_ms() + 3600 * 1000;

	/* Object Lock needs versioning; then versioning stays enabled. */
	b.object_lock = true;
	assert_int_equal(f->ops->bucket_set_object_lock(f->priv, &b, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->bucket_set_versioning(f->priv, f->bucket,
						       KURA_VERSIONING_ENABLED,
						       &err),
			 KURA_OK);
	b.lock_default_mode = KURA_LOCK_GOVERNANCE;
	b.lock_default_days = 1;
	b.lock_default_years = 1; /* not both */
	assert_int_equal(f->ops->bucket_set_object_lock(f->priv, &b, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	b.lock_default_years = 0;
	assert_int_equal(f->ops->bucket_set_object_lock(f->priv, &b, &err),
			 KURA_OK);
	assert_int_equal(
		f->ops->bucket_set_versioning(f->priv, f->bucket,
					      KURA_VERSIONING_SUSPENDED, &err),
		KURA_ESTATE);
	kura_error_clear(&err);

	make_object(&gov, &pg, 1, f->bucket, "gov", 3, 1);
	gov.vseq = 10;
	gov.null_version = false;
	gov.lock_mode = KURA_LOCK_GOVERNANCE;
	gov.lock_until_ms = later;
	assert_int_equal(f->ops->object_put(f->priv, &gov, NULL, &err),
			 KURA_OK);
	make_object(&comp, &pc, 1, f->bucket, "comp", 4, 2);
	comp.vseq = 10;
	comp.null_version = false;
	comp.lock_mode = KURA_LOCK_COMPLIANCE;
	comp.lock_until_ms = later;
	assert_int_equal(f->ops->object_put(f->priv, &comp, NULL, &err),
			 KURA_OK);
	make_object(&hold, &ph, 1, f->bucket, "hold", 4, 3);
	hold.vseq = 10;
	hold.null_version = false;
	hold.legal_hold = true;
	assert_int_equal(f->ops->object_put(f->priv, &hold, NULL, &err),
			 KURA_OK);
	/* A mode without a date, or a date without a mode. */
	gov.lock_until_ms = 0;
	gov.vseq = 20;
	assert_int_equal(f->ops->object_put(f->priv, &gov, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);

	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "gov", 3,
					       gov.version_uid, NULL, false,
					       &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "comp", 4,
					       comp.version_uid, NULL, true,
					       &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "hold", 4,
					       hold.version_uid, NULL, true,
					       &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	assert_false(gc_contains(f, pc.blob_id));
	/* A purge destroys nothing while anything is locked. */
	assert_int_equal(f->ops->bucket_purge(f->priv, f->bucket, &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "comp", 4, pool,
					    &got, &err),
			 KURA_OK);
	assert_int_equal(got->lock_mode, KURA_LOCK_COMPLIANCE);
	assert_int_equal(got->lock_until_ms, later);
	/* GOVERNANCE yields to a bypass. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "gov", 3,
					       gov.version_uid, NULL, true,
					       &err),
			 KURA_OK);
	/* The legal hold lifted (set_lock, while the row is the one read). */
	hold.legal_hold = false;
	assert_int_equal(f->ops->object_set_lock(f->priv, &hold, hold.seal,
						 hold.seal_len, &err),
			 KURA_OK);
	assert_int_equal(f->ops->object_set_lock(f->priv, &hold, (uint8_t *)"x",
						 1, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "hold", 4,
					       hold.version_uid, NULL, false,
					       &err),
			 KURA_OK);
	/* A locked null version is not replaced by a write either. */
	make_object(&old, &po, 1, f->bucket, "nul", 3, 4);
	old.vseq = 10;
	old.lock_mode = KURA_LOCK_COMPLIANCE;
	old.lock_until_ms = later;
	assert_int_equal(f->ops->object_put(f->priv, &old, NULL, &err),
			 KURA_OK);
	make_object(&n2, &pn, 1, f->bucket, "nul", 3, 5);
	n2.vseq = 20;
	assert_int_equal(f->ops->object_put(f->priv, &n2, NULL, &err),
			 KURA_EPERM);
	kura_error_clear(&err);
	assert_false(referenced(f, pn.blob_id));
	/* Retention that has ended protects nothing. */
	comp.lock_until_ms = kura_now_ms() - 1;
	assert_int_equal(f->ops->object_set_lock(f->priv, &comp, comp.seal,
						 comp.seal_len, &err),
			 KURA_OK);
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "comp", 4,
					       comp.version_uid, NULL, false,
					       &err),
			 KURA_OK);
	kura_pool_free(pool);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		meta_test(test_version_order),
		meta_test(test_null_version_replaced),
		meta_test(test_delete_markers),
		meta_test(test_delete_version),
		meta_test(test_put_condition),
		meta_test(test_version_listing_pages),
		meta_test(test_object_lock),
	};

	return meta_run_suite("test_meta_versions", tests, ARRAY_LEN(tests));
}

/*
 * test_placement.c — backends, placement policies and the seed-001 rule
 * (src/place/placement.c), and the replicated store over fs backends
 * (src/place/replicated.c): sync copies on every backend, a failed copy
 * leaving none behind, reads moving to the next copy, removal everywhere.
 *
 * Each test works in its own mkdtemp directory under /tmp; no metadata
 * store (replica records are the integration tests' business).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kura/config.h"
#include "kura/hook.h"
#include "kura/placement.h"
#include "rmtree.h"
#include "kura/banned.h"

struct fixture {
	char dir[64];
	struct kura_config *cfg;
	struct kura_placement *p;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kura-place-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(kura_config_new(&f->cfg, NULL), KURA_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kura_placement_free(f->p);
	kura_config_free(f->cfg);
	rmtree(f->dir);
	free(f);
	return 0;
}

static void set(struct fixture *f, const char *section, const char *key,
		const char *value)
{
	struct kura_error err = { 0 };
	if (kura_config_set(f->cfg, section, key, value, &err) != KURA_OK)
		fail_msg("[%s] %s = %s: %s", section, key, value, err.msg);
}

/* An fs backend NAME in f->dir/NAME labelled with jurisdiction j. */
static void fs_backend(struct fixture *f, const char *name, const char *j)
{
	char sec[64], path[128];
	snprintf(sec, sizeof(sec), "backend.%s", name);
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	set(f, sec, "type", "fs");
	set(f, sec, "path", path);
	set(f, sec, "site", name);
	set(f, sec, "jurisdiction", j);
}

static enum kura_err load(struct fixture *f, struct kura_error *err)
{
	kura_placement_free(f->p);
	f->p = NULL;
	return kura_placement_load(f->cfg, &f->p, err);
}

static void expect_refused(struct fixture *f, const char *const *words)
{
	struct kura_error err = { 0 };
	assert_int_equal(load(f, &err), KURA_ECONFIG);
	for (const char *const *w = words; *w; w++)
		if (strstr(err.msg, *w) == NULL)
			fail_msg("'%s' does not say '%s'", err.msg, *w);
}

static void test_default_is_one_local_copy(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	assert_int_equal(load(f, &err), KURA_OK);
	assert_int_equal(kura_placement_nbackends(f->p), 1);
	assert_string_equal(kura_placement_backend(f->p, 0)->name, "local");
	assert_string_equal(kura_placement_backend(f->p, 0)->jurisdiction,
			    "JP");
	const struct kura_policy *d = kura_placement_policy(f->p, NULL);
	assert_non_null(d);
	assert_string_equal(d->name, "default");
	assert_int_equal(d->nsync, 1);
	assert_int_equal(d->nasync, 0);
	assert_true(d->is_default);
	assert_null(kura_placement_policy(f->p, "nope"));
}

static void foreign_policy(struct fixture *f)
{
	fs_backend(f, "tokyo", "JP");
	fs_backend(f, "virginia", "US");
	set(f, "placement.dr", "sync", "tokyo");
	set(f, "placement.dr", "async", "virginia");
	set(f, "placement.dr", "jurisdictions", "JP,US");
}

static void test_seed001_refuses_the_local_keystore(void **state)
{
	struct fixture *f = *state;
	foreign_policy(f);
	expect_refused(f, (const char *const[]){ "seed-001", "'dr'",
						 "'virginia'", "local", NULL });
}

/* A foreign backend no policy names is refused too: a replica row (the
 * metadata is the operator's) could still send a copy there. */
static void test_seed001_covers_unused_backends(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	fs_backend(f, "virginia", "US");
	expect_refused(f,
		       (const char *const[]){ "seed-001", "'virginia'", NULL });
	set(f, "keys", "provider", "kmip");
	set(f, "keys", "jurisdiction", "JP");
	assert_int_equal(load(f, &err), KURA_OK);
}

static void test_seed001_wants_external_keys_at_home(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	foreign_policy(f);
	set(f, "keys", "provider", "pkcs11");
	/* Unset: nobody said where the keys are. */
	expect_refused(f, (const char *const[]){ "seed-001", "unset", NULL });
	set(f, "keys", "jurisdiction", "US");
	expect_refused(f, (const char *const[]){ "seed-001", "is US", NULL });
	set(f, "keys", "jurisdiction", "JP");
	assert_int_equal(load(f, &err), KURA_OK);
	set(f, "keys", "provider", "kmip");
	assert_int_equal(load(f, &err), KURA_OK);
	set(f, "placement.dr", "foreign", "forbid");
	expect_refused(f,
		       (const char *const[]){ "forbid", "'virginia'", NULL });
}

static void test_jurisdictions_are_an_allowed_set(void **state)
{
	struct fixture *f = *state;
	foreign_policy(f);
	set(f, "keys", "provider", "pkcs11");
	set(f, "keys", "jurisdiction", "JP");
	set(f, "placement.dr", "jurisdictions", "JP");
	expect_refused(f, (const char *const[]){ "outside the policy's "
						 "jurisdictions",
						 "'virginia'", NULL });
}

static void test_bad_declarations(void **state)
{
	struct fixture *f = *state;
	fs_backend(f, "tokyo", "JP");
	set(f, "placement.p", "sync", "tokyo,osaka");
	expect_refused(f, (const char *const[]){ "no backend 'osaka'", NULL });
	set(f, "placement.p", "sync", "tokyo,tokyo");
	expect_refused(f, (const char *const[]){ "twice", NULL });
	set(f, "placement.p", "sync", "tokyo");
	set(f, "backend.bad", "type", "fs");
	set(f, "backend.bad", "path", "/tmp/x");
	expect_refused(f, (const char *const[]){ "[backend.bad] jurisdiction",
						 "required", NULL });
	set(f, "backend.bad", "jurisdiction", "jp");
	expect_refused(f, (const char *const[]){ "alpha-2", NULL });
	set(f, "backend.bad", "jurisdiction", "JP");
	set(f, "backend.bad", "type", "tape");
	expect_refused(f, (const char *const[]){ "unknown data store 'tape'",
						 NULL });
	/* An empty type names nothing (found by fuzz_config). */
	set(f, "backend.bad", "type", "");
	expect_refused(f, (const char *const[]){ "[backend.bad] type",
						 "required", NULL });
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_set(f->cfg, "backend.Bad", "type", "fs",
					 &err),
			 KURA_ECONFIG);
}

static void test_no_sync_is_refused(void **state)
{
	struct fixture *f = *state;
	fs_backend(f, "tokyo", "JP");
	set(f, "placement.p", "async", "tokyo");
	expect_refused(f, (const char *const[]){ "[placement.p] sync",
						 "required", NULL });
}

static void test_dedicated_backends(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	fs_backend(f, "vault", "JP");
	set(f, "backend.vault", "dedicated_to", "acme");
	set(f, "placement.acme", "sync", "vault");
	assert_int_equal(load(f, &err), KURA_OK);
	const struct kura_policy *pol = kura_placement_policy(f->p, "acme");
	assert_non_null(pol);
	assert_int_equal(kura_placement_allows(f->p, pol, "acme", &err),
			 KURA_OK);
	assert_int_equal(kura_placement_allows(f->p, pol, "other", &err),
			 KURA_EPERM);
	assert_non_null(strstr(err.msg, "'vault'"));
	set(f, "storage", "placement", "acme");
	expect_refused(f, (const char *const[]){ "dedicated", NULL });
}

/* ---- the replicated store ---- */

static struct kura_store *two_copies(struct fixture *f)
{
	struct kura_error err = { 0 };
	fs_backend(f, "tokyo", "JP");
	fs_backend(f, "osaka", "JP");
	set(f, "placement.two", "sync", "tokyo,osaka");
	set(f, "storage", "placement", "two");
	assert_int_equal(load(f, &err), KURA_OK);
	if (kura_placement_open(f->p, f->cfg, f->dir, NULL, &err) != KURA_OK)
		fail_msg("open: %s", err.msg);
	return kura_placement_store(f->p, kura_placement_policy(f->p, "two"));
}

static enum kura_err write_blob(struct kura_store *st, const uint8_t *id,
				const char *text, struct kura_error *err)
{
	struct kura_store_writer *w = NULL;
	enum kura_err rc = kura_store_writer_open(st, id, &w, err);
	if (rc == KURA_OK)
		rc = kura_store_writer_write(st, w, text, strlen(text), err);
	if (rc == KURA_OK)
		return kura_store_writer_finish(st, w, err);
	kura_store_writer_abort(st, w);
	return rc;
}

static bool has_blob(struct kura_store *st, const uint8_t *id)
{
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	enum kura_err rc = kura_store_reader_open(st, id, &r, &size, NULL);
	kura_store_reader_close(st, r);
	return rc == KURA_OK;
}

static void test_sync_copies_everywhere(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = two_copies(f);
	uint8_t id[16] = { 1, 2, 3 };
	char got[6] = { 0 };
	assert_int_equal(write_blob(st, id, "hello", NULL), KURA_OK);
	assert_int_equal(kura_store_publish(st, id, NULL), KURA_OK);
	for (size_t i = 1; i <= 2; i++)
		assert_true(
			has_blob(kura_placement_backend_store(f->p, i), id));
	assert_false(has_blob(kura_placement_backend_store(f->p, 0), id));

	/* The first copy gone: the read takes the second. */
	assert_int_equal(
		kura_store_remove(kura_placement_backend_store(f->p, 1), id,
				  NULL),
		KURA_OK);
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	assert_int_equal(kura_store_reader_open(st, id, &r, &size, NULL),
			 KURA_OK);
	assert_int_equal(size, 5);
	assert_int_equal(kura_store_reader_pread(st, r, got, 5, 0, NULL),
			 KURA_OK);
	assert_string_equal(got, "hello");
	/* No copy after the last one. */
	assert_int_equal(kura_store_reader_next(st, r, &size, NULL),
			 KURA_ENOENT);
	kura_store_reader_close(st, r);

	/* Removal removes every copy. */
	assert_int_equal(kura_store_remove(st, id, NULL), KURA_OK);
	assert_false(has_blob(kura_placement_store(f->p, NULL), id));
}

static void test_reader_next_after_a_bad_copy(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = two_copies(f);
	uint8_t id[16] = { 9 };
	char got[6] = { 0 };
	assert_int_equal(write_blob(st, id, "right", NULL), KURA_OK);
	assert_int_equal(kura_store_publish(st, id, NULL), KURA_OK);
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	assert_int_equal(kura_store_reader_open(st, id, &r, &size, NULL),
			 KURA_OK);
	/* The caller found the first copy's bytes wrong: the next one. */
	assert_int_equal(kura_store_reader_next(st, r, &size, NULL), KURA_OK);
	assert_int_equal(kura_store_reader_pread(st, r, got, 5, 0, NULL),
			 KURA_OK);
	assert_string_equal(got, "right");
	kura_store_reader_close(st, r);
}

static void test_a_failed_sync_copy_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = two_copies(f);
	struct kura_store *osaka = kura_placement_backend_store(f->p, 2);
	struct kura_fault fault = { .slot = "writer_finish",
				    .times = 1,
				    .code = KURA_EIO };
	struct kura_error err = { 0 };
	uint8_t id[16] = { 7, 7 };
	kura_fault_init(&fault);
	osaka->hook = &fault.hook;
	/* Unavailable (503), naming the backend. */
	assert_int_equal(write_blob(st, id, "lost", &err), KURA_EBUSY);
	assert_non_null(strstr(err.msg, "'osaka'"));
	osaka->hook = NULL;
	assert_false(has_blob(kura_placement_backend_store(f->p, 1), id));
	assert_false(has_blob(osaka, id));
	/* The all store never writes. */
	assert_int_equal(write_blob(kura_placement_store(f->p, NULL), id, "x",
				    NULL),
			 KURA_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_is_one_local_copy,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_seed001_refuses_the_local_keystore, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_seed001_wants_external_keys_at_home, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_seed001_covers_unused_backends, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_jurisdictions_are_an_allowed_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_declarations, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_sync_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dedicated_backends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sync_copies_everywhere,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_reader_next_after_a_bad_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_failed_sync_copy_leaves_nothing, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

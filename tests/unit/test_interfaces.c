/*
 * test_interfaces.c — the layer every call to a store, metadata store or
 * key provider goes through: the registry that finds and opens an
 * implementation (registry.h), the wrappers of store.h, meta.h and keys.h,
 * and their hooks (hook.h) with fault injection.
 *
 * The fault tests put an error exactly where a crash would hurt, through
 * the engine's own code: a store that fails its Nth write, garbage
 * collection whose blob removal or whose commit fails half way, a key
 * provider that fails to wrap the key of a new bucket.  Each works in its
 * own mkdtemp directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kura/config.h"
#include "kura/hook.h"
#include "kura/placement.h"
#include "kura/kms.h"
#include "kura/registry.h"
#include "kura/service.h"
#include "kura/store.h"
#include "kura/timefmt.h"
#include "rmtree.h"
#include "kura/banned.h"

/* ---- the registry ---- */

/* Two fake implementations: "good" remembers its zeroed state was handed
 * to open and counts closes; "bad" fails to open. */
static int closes;

static enum kura_err good_open(void *priv, const struct kura_config *cfg,
			       const char *data_dir, struct kura_error *err)
{
	unsigned char *p = priv;
	(void)cfg;
	(void)err;
	for (size_t i = 0; i < 40; i++)
		assert_int_equal(p[i], 0);
	assert_string_equal(data_dir, "/nowhere");
	p[0] = 1;
	return KURA_OK;
}

static void good_close(void *priv)
{
	assert_int_equal(((unsigned char *)priv)[0], 1);
	closes++;
}

static enum kura_err bad_open(void *priv, const struct kura_config *cfg,
			      const char *data_dir, struct kura_error *err)
{
	(void)priv;
	(void)cfg;
	(void)data_dir;
	return kura_fail(err, KURA_EIO, "bad does not open");
}

static bool fake_entry(size_t i, struct kura_backend *out)
{
	static const struct kura_backend fakes[] = {
		{ NULL, "good", 0, 40, good_open, good_close },
		{ NULL, "bad", 0, 0, bad_open, NULL },
	};
	if (i >= sizeof(fakes) / sizeof(fakes[0]))
		return false;
	*out = fakes[i];
	return true;
}

static const struct kura_registry fakes = {
	"fake thing", "storage", "backend", "good", fake_entry,
};

static void test_registry_find_and_open(void **state)
{
	(void)state;
	struct kura_config *cfg = NULL;
	struct kura_backend be;
	struct kura_error err = { 0 };
	void *priv = NULL;
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);

	/* No configuration, or an empty value: the fallback. */
	assert_int_equal(kura_registry_find(&fakes, NULL, &be, &err), KURA_OK);
	assert_string_equal(be.name, "good");
	assert_int_equal(kura_config_set(cfg, "storage", "backend", "", NULL),
			 KURA_OK);
	assert_int_equal(kura_registry_find(&fakes, cfg, &be, &err), KURA_OK);
	assert_string_equal(be.name, "good");

	/* Opened with its zeroed state; closed once, freed. */
	closes = 0;
	assert_int_equal(kura_registry_open(&fakes, cfg, "/nowhere", &be, &priv,
					    &err),
			 KURA_OK);
	assert_non_null(priv);
	kura_registry_close(be.close, priv);
	assert_int_equal(closes, 1);
	kura_registry_close(good_close, NULL);
	assert_int_equal(closes, 1);

	/* A failed open leaves nothing (the sanitizer build checks leaks)
	 * and writes no output. */
	priv = NULL;
	assert_int_equal(kura_config_set(cfg, "storage", "backend", "bad",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_registry_open(&fakes, cfg, "/nowhere", &be, &priv,
					    &err),
			 KURA_EIO);
	assert_null(priv);
	assert_string_equal(err.msg, "bad does not open");

	/* An unknown name: the setting, the name and the known ones. */
	struct kura_error e2 = { 0 };
	assert_int_equal(kura_config_set(cfg, "storage", "backend", "tape",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_registry_find(&fakes, cfg, &be, &e2),
			 KURA_ECONFIG);
	assert_string_equal(e2.msg,
			    "[storage] backend: unknown fake thing 'tape' "
			    "(known: good, bad)");
	kura_config_free(cfg);
}

/* The three real registries: what kura check and open say about a name
 * that is not compiled in. */
static void test_registry_names(void **state)
{
	(void)state;
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_store_check_config(cfg, &err), KURA_OK);
	assert_int_equal(kura_meta_check_config(cfg, &err), KURA_OK);
	assert_int_equal(kura_keys_check_config(cfg, "/nowhere", &err),
			 KURA_OK);

	assert_int_equal(kura_config_set(cfg, "storage", "backend", "tape",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_store_check_config(cfg, &err), KURA_ECONFIG);
#ifdef KURA_HAVE_S3
	assert_string_equal(err.msg,
			    "[storage] backend: unknown data store 'tape' "
			    "(known: fs, s3)");
#else
	assert_string_equal(err.msg,
			    "[storage] backend: unknown data store 'tape' "
			    "(known: fs)");
#endif
	struct kura_error e2 = { 0 };
	assert_int_equal(kura_config_set(cfg, "meta", "driver", "dbm", NULL),
			 KURA_OK);
	assert_int_equal(kura_meta_check_config(cfg, &e2), KURA_ECONFIG);
	assert_string_equal(e2.msg,
			    "[meta] driver: unknown metadata store 'dbm' "
			    "(known: sqlite)");
	struct kura_meta *m = NULL;
	struct kura_error e3 = { 0 };
	assert_int_equal(kura_meta_open(cfg, "/nowhere", &m, &e3),
			 KURA_ECONFIG);
	assert_null(m);
	struct kura_error e4 = { 0 };
	assert_int_equal(kura_config_set(cfg, "keys", "provider", "rot13",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_keys_check_config(cfg, "/nowhere", &e4),
			 KURA_ECONFIG);
	assert_non_null(strstr(e4.msg, "[keys] provider: unknown key provider "
				       "'rot13' (known: local"));
	kura_config_free(cfg);
}

/* ---- hooks and fault plans ---- */

static void test_fault_plan(void **state)
{
	(void)state;
	struct kura_fault f = {
		.slot = "remove", .skip = 2, .times = 2, .code = KURA_ENOSPC
	};
	struct kura_error err = { 0 };
	kura_fault_init(&f);
	const struct kura_hook *h = &f.hook;
	/* Other slots pass and are not counted. */
	assert_int_equal(h->before(h->ctx, "publish", &err), KURA_OK);
	assert_int_equal(h->before(h->ctx, "remove", &err), KURA_OK);
	assert_int_equal(h->before(h->ctx, "remove", &err), KURA_OK);
	assert_int_equal(h->before(h->ctx, "remove", &err), KURA_ENOSPC);
	assert_string_equal(err.msg, "injected fault: remove call 3");
	assert_int_equal(h->before(h->ctx, "remove", NULL), KURA_ENOSPC);
	assert_int_equal(h->before(h->ctx, "remove", NULL), KURA_OK);
	assert_int_equal(f.calls, 5);
	assert_int_equal(f.failed, 2);

	/* Every slot, every call, the default code. */
	struct kura_fault all = { 0 };
	kura_fault_init(&all);
	for (int i = 0; i < 3; i++)
		assert_int_equal(all.hook.before(all.hook.ctx, i ? "x" : "y",
						 NULL),
				 KURA_EIO);
	assert_int_equal(all.failed, 3);
}

/* A provider with only the required slots, to call an optional one. */
static enum kura_err stub_open(void *priv, const struct kura_config *cfg,
			       const char *data_dir, struct kura_error *err)
{
	(void)priv;
	(void)cfg;
	(void)data_dir;
	(void)err;
	return KURA_OK;
}

static void stub_close(void *priv)
{
	(void)priv;
}

static void test_optional_slots(void **state)
{
	(void)state;
	static const struct kura_keys_ops stub = {
		.name = "stub",
		.open = stub_open,
		.close = stub_close,
	};
	struct kura_keys keys = { &stub, NULL, NULL };
	struct kura_error err = { 0 };
	char id[KURA_KEK_ID_MAX];
	assert_int_equal(kura_keys_kek_destroy(&keys, "k", &err), KURA_EINVAL);
	assert_string_equal(err.msg,
			    "the stub key provider has no kek_destroy");
	assert_int_equal(kura_keys_signer_create(&keys, "s", id, NULL),
			 KURA_EINVAL);

	/* A hook runs first, even before an absent slot. */
	struct kura_fault f = { .code = KURA_EKEY };
	kura_fault_init(&f);
	keys.hook = &f.hook;
	assert_int_equal(kura_keys_kek_import(&keys, "k", NULL, id, NULL),
			 KURA_EKEY);
	assert_int_equal(f.calls, 1);
}

/* ---- faults through the engine ---- */

struct fixture {
	char dir[64];
	struct kura_config *cfg;
	struct kura_service *svc;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kura_error err = { 0 };
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kura-faults-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(kura_config_new(&f->cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(f->cfg, "server", "data_dir", f->dir,
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(f->cfg, "audit", "enabled", "false",
					 NULL),
			 KURA_OK);
	if (kura_service_open(f->cfg, KURA_SERVICE_INIT | KURA_SERVICE_OWNER,
			      &f->svc, &err) != KURA_OK)
		fail_msg("service: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kura_service_close(f->svc);
	kura_config_free(f->cfg);
	rmtree(f->dir);
	free(f);
	return 0;
}

static size_t staged_count(struct fixture *f)
{
	char path[128];
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/blobs/staging", f->dir);
	DIR *d = opendir(path);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void make_id(uint8_t id[KURA_BLOB_ID_LEN], uint8_t seed)
{
	for (int i = 0; i < KURA_BLOB_ID_LEN; i++)
		id[i] = (uint8_t)(seed * 29 + i * 13 + 7);
}

static bool blob_exists(struct kura_store *st, const uint8_t *id)
{
	struct kura_store_reader *r = NULL;
	uint64_t size;
	enum kura_err rc = kura_store_reader_open(st, id, &r, &size, NULL);
	kura_store_reader_close(st, r);
	assert_true(rc == KURA_OK || rc == KURA_ENOENT);
	return rc == KURA_OK;
}

static void put_blob(struct kura_store *st, const uint8_t *id)
{
	struct kura_store_writer *w = NULL;
	assert_int_equal(kura_store_writer_open(st, id, &w, NULL), KURA_OK);
	assert_int_equal(kura_store_writer_write(st, w, "blob", 4, NULL),
			 KURA_OK);
	assert_int_equal(kura_store_writer_finish(st, w, NULL), KURA_OK);
	assert_int_equal(kura_store_publish(st, id, NULL), KURA_OK);
}

/* A store that fails its third write: the writer is aborted and nothing
 * staged is left; a failed finish keeps the slot's promise too (writer
 * freed, staged data removed). */
static void test_store_fails_nth_write(void **state)
{
	struct fixture *f = *state;
	/* The local backend's own store: the service's store is the
	 * placement's "all" store, which reads and removes but never
	 * writes (writes go through a bucket's policy). */
	struct kura_store *st =
		kura_placement_backend_store(f->svc->placement, 0);
	struct kura_fault fault = { .slot = "writer_write",
				    .skip = 2,
				    .times = 1,
				    .code = KURA_ENOSPC };
	struct kura_store_writer *w = NULL;
	struct kura_error err = { 0 };
	uint8_t id[KURA_BLOB_ID_LEN];
	kura_fault_init(&fault);
	st->hook = &fault.hook;
	make_id(id, 1);
	assert_int_equal(kura_store_writer_open(st, id, &w, NULL), KURA_OK);
	assert_int_equal(kura_store_writer_write(st, w, "ab", 2, NULL),
			 KURA_OK);
	assert_int_equal(kura_store_writer_write(st, w, "cd", 2, NULL),
			 KURA_OK);
	assert_int_equal(staged_count(f), 1);
	assert_int_equal(kura_store_writer_write(st, w, "ef", 2, &err),
			 KURA_ENOSPC);
	assert_string_equal(err.msg, "injected fault: writer_write call 3");
	kura_store_writer_abort(st, w);
	assert_int_equal(staged_count(f), 0);
	assert_false(blob_exists(st, id));

	struct kura_fault at_finish = { .slot = "writer_finish",
					.code = KURA_EIO };
	kura_fault_init(&at_finish);
	st->hook = &at_finish.hook;
	make_id(id, 2);
	assert_int_equal(kura_store_writer_open(st, id, &w, NULL), KURA_OK);
	assert_int_equal(kura_store_writer_write(st, w, "gh", 2, NULL),
			 KURA_OK);
	assert_int_equal(kura_store_writer_finish(st, w, NULL), KURA_EIO);
	assert_int_equal(staged_count(f), 0);
	assert_false(blob_exists(st, id));
	st->hook = NULL;
}

/* Three blobs of a deleted object, queued for garbage collection. */
static void queue_garbage(struct fixture *f, uint8_t ids[3][KURA_BLOB_ID_LEN])
{
	struct kura_service *svc = f->svc;
	struct kura_error err = { 0 };
	struct kura_tenant t = { 0 };
	snprintf(t.name, sizeof(t.name), "faults");
	t.created_ms = kura_now_ms();
	assert_int_equal(kura_meta_tenant_create(svc->meta, &t, &err), KURA_OK);
	struct kura_bucket b = { .id = 0x5eed, .tenant_id = t.id };
	snprintf(b.name, sizeof(b.name), "faults");
	snprintf(b.region, sizeof(b.region), "us-east-1");
	b.created_ms = kura_now_ms();
	if (kura_kms_bucket_create(svc->kms, &b, &err) != KURA_OK)
		fail_msg("bucket: %s", err.msg);

	/* SSE-C parts need no bucket key. */
	struct kura_part parts[3] = { 0 };
	struct kura_object o = {
		.bucket_id = b.id,
		.key = "k",
		.key_len = 1,
		.size = 12,
		.mtime_ms = kura_now_ms(),
		.sse = KURA_SSE_C,
		.part_count = 3,
		.parts = parts,
		.vseq = 1,
		.null_version = true,
	};
	memset(o.version_uid, 0xab, sizeof(o.version_uid));
	for (uint8_t i = 0; i < 3; i++) {
		make_id(ids[i], (uint8_t)(10 + i));
		put_blob(kura_placement_backend_store(svc->placement, 0),
			 ids[i]);
		parts[i].part_no = i + 1u;
		memcpy(parts[i].blob_id, ids[i], KURA_BLOB_ID_LEN);
		parts[i].size = 4;
		parts[i].seg_size = 4096;
	}
	if (kura_meta_object_put(svc->meta, &o, NULL, &err) != KURA_OK)
		fail_msg("object: %s", err.msg);
	assert_int_equal(kura_meta_object_delete(svc->meta, b.id, "k", 1, NULL,
						 NULL, false, &err),
			 KURA_OK);
}

static bool queued(struct kura_service *svc, const uint8_t *id)
{
	bool ref = false;
	assert_int_equal(kura_meta_blob_referenced(svc->meta, id, &ref, NULL),
			 KURA_OK);
	return ref;
}

/* Garbage collection forgets a blob only after removing it: when the
 * second removal fails, the first blob is gone but all three stay queued,
 * and the next pass finishes the job (removing a missing blob succeeds). */
static void test_gc_when_a_removal_fails(void **state)
{
	struct fixture *f = *state;
	struct kura_service *svc = f->svc;
	uint8_t ids[3][KURA_BLOB_ID_LEN];
	struct kura_fault fault = { .slot = "remove", .skip = 1, .times = 1 };
	struct kura_error err = { 0 };
	size_t removed = 0;
	queue_garbage(f, ids);
	kura_fault_init(&fault);
	svc->store->hook = &fault.hook;
	assert_int_equal(kura_service_collect(svc, SIZE_MAX, &removed, &err),
			 KURA_EIO);
	assert_string_equal(err.msg, "injected fault: remove call 2");
	size_t left = 0;
	for (int i = 0; i < 3; i++) {
		left += blob_exists(svc->store, ids[i]);
		assert_true(queued(svc, ids[i]));
	}
	assert_int_equal(left, 2);

	svc->store->hook = NULL;
	assert_int_equal(kura_service_collect(svc, SIZE_MAX, &removed, NULL),
			 KURA_OK);
	assert_int_equal(removed, 3);
	for (int i = 0; i < 3; i++) {
		assert_false(blob_exists(svc->store, ids[i]));
		assert_false(queued(svc, ids[i]));
	}
}

/* The same when the metadata commit after the removals fails (gc_done):
 * every blob is gone, every one still queued, and the next pass forgets
 * them without harm — the crash between the two steps, made precise. */
static void test_gc_when_the_commit_fails(void **state)
{
	struct fixture *f = *state;
	struct kura_service *svc = f->svc;
	uint8_t ids[3][KURA_BLOB_ID_LEN];
	struct kura_fault fault = { .slot = "gc_done", .times = 1 };
	size_t removed = 0;
	queue_garbage(f, ids);
	kura_fault_init(&fault);
	svc->meta->hook = &fault.hook;
	assert_int_equal(kura_service_collect(svc, SIZE_MAX, &removed, NULL),
			 KURA_EIO);
	for (int i = 0; i < 3; i++) {
		assert_false(blob_exists(svc->store, ids[i]));
		assert_true(queued(svc, ids[i]));
	}
	assert_int_equal(kura_service_collect(svc, SIZE_MAX, &removed, NULL),
			 KURA_OK);
	assert_int_equal(removed, 3);
	assert_int_equal(fault.calls, 2);
	for (int i = 0; i < 3; i++)
		assert_false(queued(svc, ids[i]));
	svc->meta->hook = NULL;
}

/* A tracing hook: records the slots called and fails "wrap". */
struct trace {
	char log[256];
};

static enum kura_err trace_before(void *ctx, const char *slot,
				  struct kura_error *err)
{
	struct trace *t = ctx;
	size_t n = strlen(t->log);
	snprintf(t->log + n, sizeof(t->log) - n, "%s%s", n ? " " : "", slot);
	if (strcmp(slot, "wrap") == 0)
		return kura_fail(err, KURA_EKEY, "provider unreachable");
	return KURA_OK;
}

/* A provider that cannot wrap the new bucket's key: the bucket is not
 * created and the KEK made for it is destroyed again (kms.h). */
static void test_bucket_create_when_wrap_fails(void **state)
{
	struct fixture *f = *state;
	struct kura_service *svc = f->svc;
	struct trace t = { "" };
	struct kura_hook hook = { trace_before, &t };
	struct kura_error err = { 0 };
	struct kura_tenant tn = { 0 };
	snprintf(tn.name, sizeof(tn.name), "wrapless");
	assert_int_equal(kura_meta_tenant_create(svc->meta, &tn, NULL),
			 KURA_OK);
	struct kura_bucket b = { .id = 0xb0b, .tenant_id = tn.id };
	snprintf(b.name, sizeof(b.name), "wrapless");
	snprintf(b.region, sizeof(b.region), "us-east-1");
	svc->keys->hook = &hook;
	assert_int_equal(kura_kms_bucket_create(svc->kms, &b, &err), KURA_EKEY);
	svc->keys->hook = NULL;
	assert_string_equal(err.msg, "provider unreachable");
	assert_string_equal(t.log, "kek_create wrap kek_destroy");
	struct kura_bucket got;
	assert_int_equal(kura_meta_bucket_get(svc->meta, "wrapless", &got,
					      NULL),
			 KURA_ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_find_and_open),
		cmocka_unit_test(test_registry_names),
		cmocka_unit_test(test_fault_plan),
		cmocka_unit_test(test_optional_slots),
		cmocka_unit_test_setup_teardown(test_store_fails_nth_write,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_when_a_removal_fails,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_when_the_commit_fails,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_bucket_create_when_wrap_fails, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

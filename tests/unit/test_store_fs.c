/*
 * test_store_fs.c — the filesystem data store (src/store/fs.c) through the
 * store.h contract: the staged -> published life of a blob, abort, recover,
 * remove, short reads, "no space", and concurrent use.
 *
 * Each test works in its own mkdtemp directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/config.h"
#include "kura/encode.h"
#include "kura/store.h"
#include "rmtree.h"
#include "kura/banned.h"

struct fixture {
	char dir[64];
	char root[256];
	struct kura_config *cfg;
	struct kura_store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kura-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/blobs", f->dir);
	assert_int_equal(kura_config_new(&f->cfg, NULL), KURA_OK);
	struct kura_error err = { 0 };
	enum kura_err rc = kura_store_open(f->cfg, f->dir, &f->st, &err);
	if (rc != KURA_OK)
		fail_msg("open: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kura_store_close(f->st);
	kura_config_free(f->cfg);
	rmtree(f->dir);
	free(f);
	return 0;
}

static void make_id(uint8_t id[KURA_BLOB_ID_LEN], uint8_t seed)
{
	for (int i = 0; i < KURA_BLOB_ID_LEN; i++)
		id[i] = (uint8_t)(seed * 31 + i * 17 + 1);
}

static void staged_path(struct fixture *f, const uint8_t *id, char *out)
{
	char hex[33];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	snprintf(out, PATH_MAX, "%s/staging/%s", f->root, hex);
}

static void final_path(struct fixture *f, const uint8_t *id, char *out)
{
	char hex[33];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	snprintf(out, PATH_MAX, "%s/%.2s/%.2s/%s", f->root, hex, hex + 2, hex);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void check_mode(const char *path, mode_t want)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, want);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* Write n bytes in uneven pieces and finish. */
static void write_blob(struct kura_store *st, const uint8_t *id,
		       const uint8_t *data, size_t n)
{
	struct kura_store_writer *w = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_store_writer_open(st, id, &w, &err), KURA_OK);
	size_t off = 0, piece = 1;
	while (off < n) {
		size_t k = piece < n - off ? piece : n - off;
		assert_int_equal(kura_store_writer_write(st, w, data + off, k,
							 &err),
				 KURA_OK);
		off += k;
		piece = piece * 3 + 1;
	}
	assert_int_equal(kura_store_writer_finish(st, w, &err), KURA_OK);
}

static void read_back(struct kura_store *st, const uint8_t *id,
		      const uint8_t *want, size_t n)
{
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	struct kura_error err = { 0 };
	assert_int_equal(kura_store_reader_open(st, id, &r, &size, &err),
			 KURA_OK);
	assert_int_equal(size, n);
	uint8_t *got = malloc(n + 1);
	assert_int_equal(kura_store_reader_pread(st, r, got, n, 0, &err),
			 KURA_OK);
	assert_memory_equal(got, want, n);
	if (n > 10) {
		assert_int_equal(kura_store_reader_pread(st, r, got, 5, n - 5,
							 &err),
				 KURA_OK);
		assert_memory_equal(got, want + n - 5, 5);
	}
	free(got);
	kura_store_reader_close(st, r);
}

static enum kura_err open_rc(struct kura_store *st, const uint8_t *id)
{
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	enum kura_err rc = kura_store_reader_open(st, id, &r, &size, NULL);
	if (rc == KURA_OK)
		kura_store_reader_close(st, r);
	return rc;
}

static void test_layout_and_life(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	assert_string_equal(st->ops->name, "fs");
	check_mode(f->root, 0700);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/staging", f->root);
	check_mode(p, 0700);

	static const size_t sizes[] = { 0, 1, 4096, 100000 };
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		size_t n = sizes[t];
		uint8_t *data = malloc(n + 1);
		fill(data, n, (uint8_t)t);
		uint8_t id[KURA_BLOB_ID_LEN];
		make_id(id, (uint8_t)t);
		char sp[PATH_MAX], fp[PATH_MAX];
		staged_path(f, id, sp);
		final_path(f, id, fp);

		write_blob(st, id, data, n);
		assert_true(exists(sp));
		assert_false(exists(fp));
		check_mode(sp, 0600);
		read_back(st, id, data, n); /* staged */

		assert_int_equal(kura_store_publish(st, id, NULL), KURA_OK);
		assert_false(exists(sp));
		assert_true(exists(fp));
		check_mode(fp, 0600);
		char hex[33], d[PATH_MAX];
		kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
		snprintf(d, sizeof(d), "%s/%.2s", f->root, hex);
		check_mode(d, 0700);
		snprintf(d, sizeof(d), "%s/%.2s/%.2s", f->root, hex, hex + 2);
		check_mode(d, 0700);
		read_back(st, id, data, n); /* published */

		/* Publishing an already published blob is success. */
		assert_int_equal(kura_store_publish(st, id, NULL), KURA_OK);
		free(data);
	}
	uint8_t ghost[KURA_BLOB_ID_LEN];
	make_id(ghost, 99);
	assert_int_equal(kura_store_publish(st, ghost, NULL), KURA_ENOENT);
	assert_int_equal(open_rc(st, ghost), KURA_ENOENT);
}

static void test_duplicate_writer(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	uint8_t id[KURA_BLOB_ID_LEN];
	make_id(id, 5);
	struct kura_store_writer *w1 = NULL, *w2 = NULL;
	assert_int_equal(kura_store_writer_open(st, id, &w1, NULL), KURA_OK);
	assert_int_not_equal(kura_store_writer_open(st, id, &w2, NULL),
			     KURA_OK);
	assert_null(w2);
	kura_store_writer_abort(st, w1);
}

struct refset {
	const uint8_t (*ids)[KURA_BLOB_ID_LEN];
	size_t n;
	int calls;
};

static bool is_referenced(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN])
{
	struct refset *rs = ctx;
	rs->calls++;
	for (size_t i = 0; i < rs->n; i++)
		if (memcmp(rs->ids[i], id, KURA_BLOB_ID_LEN) == 0)
			return true;
	return false;
}

static void test_abort(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	uint8_t id[KURA_BLOB_ID_LEN];
	make_id(id, 7);
	struct kura_store_writer *w = NULL;
	assert_int_equal(kura_store_writer_open(st, id, &w, NULL), KURA_OK);
	assert_int_equal(kura_store_writer_write(st, w, "hello", 5, NULL),
			 KURA_OK);
	kura_store_writer_abort(st, w);
	kura_store_writer_abort(st, NULL);
	char sp[PATH_MAX];
	staged_path(f, id, sp);
	assert_false(exists(sp));
	assert_int_equal(open_rc(st, id), KURA_ENOENT);
	/* The staging directory is empty again. */
	uint64_t removed = 99;
	struct refset none = { 0 };
	assert_int_equal(kura_store_recover(st, is_referenced, &none, &removed,
					    NULL),
			 KURA_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(none.calls, 0);
}

static void test_recover(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	uint8_t ids[4][KURA_BLOB_ID_LEN];
	uint8_t data[300];
	fill(data, sizeof(data), 1);
	for (int i = 0; i < 4; i++) {
		make_id(ids[i], (uint8_t)(20 + i));
		write_blob(st, ids[i], data, sizeof(data));
	}
	/* ids[3] was already published before the "crash". */
	assert_int_equal(kura_store_publish(st, ids[3], NULL), KURA_OK);

	/* Garbage in staging: odd names, an upper-case id, an empty dir. */
	static const char *const junk[] = {
		"junk",
		"abc.tmp",
		"0123456789ABCDEF0123456789ABCDEF",
		"0123456789abcdef0123456789abcde",
	};
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(p, sizeof(p), "%s/staging/%s", f->root, junk[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/staging/emptydir", f->root);
	assert_int_equal(mkdir(p, 0700), 0);

	/* Metadata references ids[0] (committed, not yet published) and
	 * ids[3]; ids[1] and ids[2] were never committed. */
	uint8_t r[2][KURA_BLOB_ID_LEN];
	memcpy(r[0], ids[0], KURA_BLOB_ID_LEN);
	memcpy(r[1], ids[3], KURA_BLOB_ID_LEN);
	struct refset rs = { .ids = (const uint8_t(*)[KURA_BLOB_ID_LEN])r,
			     .n = 2 };
	uint64_t removed = 0;
	struct kura_error err = { 0 };
	assert_int_equal(kura_store_recover(st, is_referenced, &rs, &removed,
					    &err),
			 KURA_OK);
	assert_int_equal(removed, 2 + 4 + 1);
	assert_int_equal(rs.calls,
			 3); /* only the valid staged ids were asked */

	char sp[PATH_MAX], fp[PATH_MAX];
	staged_path(f, ids[0], sp);
	final_path(f, ids[0], fp);
	assert_false(exists(sp));
	assert_true(exists(fp));
	read_back(st, ids[0], data, sizeof(data));
	read_back(st, ids[3], data, sizeof(data));
	assert_int_equal(open_rc(st, ids[1]), KURA_ENOENT);
	assert_int_equal(open_rc(st, ids[2]), KURA_ENOENT);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(p, sizeof(p), "%s/staging/%s", f->root, junk[i]);
		assert_false(exists(p));
	}

	/* Nothing left to do the second time. */
	rs.calls = 0;
	assert_int_equal(kura_store_recover(st, is_referenced, &rs, &removed,
					    NULL),
			 KURA_OK);
	assert_int_equal(removed, 0);
	assert_int_equal(rs.calls, 0);
}

static void test_remove(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	uint8_t a[KURA_BLOB_ID_LEN], b[KURA_BLOB_ID_LEN];
	make_id(a, 40);
	make_id(b, 41);
	write_blob(st, a, (const uint8_t *)"published", 9);
	write_blob(st, b, (const uint8_t *)"staged", 6);
	assert_int_equal(kura_store_publish(st, a, NULL), KURA_OK);

	for (int round = 0; round < 2; round++) {
		assert_int_equal(kura_store_remove(st, a, NULL), KURA_OK);
		assert_int_equal(kura_store_remove(st, b, NULL), KURA_OK);
		assert_int_equal(open_rc(st, a), KURA_ENOENT);
		assert_int_equal(open_rc(st, b), KURA_ENOENT);
	}
	char sp[PATH_MAX], fp[PATH_MAX];
	final_path(f, a, fp);
	staged_path(f, b, sp);
	assert_false(exists(fp));
	assert_false(exists(sp));
	/* A blob never written at all (no shard directories either). */
	uint8_t never[KURA_BLOB_ID_LEN];
	memset(never, 0xee, sizeof(never));
	assert_int_equal(kura_store_remove(st, never, NULL), KURA_OK);
}

static void test_pread_bounds(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	uint8_t id[KURA_BLOB_ID_LEN];
	make_id(id, 50);
	uint8_t data[100];
	fill(data, sizeof(data), 3);
	write_blob(st, id, data, sizeof(data));
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	assert_int_equal(kura_store_reader_open(st, id, &r, &size, NULL),
			 KURA_OK);
	assert_int_equal(size, 100);
	uint8_t buf[200];
	struct kura_error err = { 0 };
	assert_int_equal(kura_store_reader_pread(st, r, buf, 101, 0, &err),
			 KURA_EIO);
	assert_int_equal(kura_store_reader_pread(st, r, buf, 1, 100, NULL),
			 KURA_EIO);
	assert_int_equal(kura_store_reader_pread(st, r, buf, 10, 95, NULL),
			 KURA_EIO);
	assert_int_equal(kura_store_reader_pread(st, r, buf, 1, UINT64_MAX,
						 NULL),
			 KURA_EIO);
	assert_int_equal(kura_store_reader_pread(st, r, buf, 0, 100, NULL),
			 KURA_OK);
	assert_int_equal(kura_store_reader_pread(st, r, buf, 50, 50, NULL),
			 KURA_OK);
	assert_memory_equal(buf, data + 50, 50);
	kura_store_reader_close(st, r);
	kura_store_reader_close(st, NULL);

	/* A blob truncated behind our back reads short: KURA_EIO too. */
	assert_int_equal(kura_store_reader_open(st, id, &r, &size, NULL),
			 KURA_OK);
	char sp[PATH_MAX];
	staged_path(f, id, sp);
	assert_int_equal(truncate(sp, 40), 0);
	assert_int_equal(kura_store_reader_pread(st, r, buf, 50, 0, NULL),
			 KURA_EIO);
	kura_store_reader_close(st, r);
}

/* A file-size limit makes write() fail with EFBIG: the store reports "no
 * space" and the writer can still be aborted cleanly. */
static void test_no_space(void **state)
{
	struct fixture *f = *state;
	struct kura_store *st = f->st;
	struct rlimit old;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 8192)
		skip();
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	uint8_t id[KURA_BLOB_ID_LEN];
	make_id(id, 60);
	struct kura_store_writer *w = NULL;
	assert_int_equal(kura_store_writer_open(st, id, &w, NULL), KURA_OK);
	uint8_t data[8192];
	fill(data, sizeof(data), 9);
	struct rlimit lim = { 4096, old.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct kura_error err = { 0 };
	enum kura_err rc =
		kura_store_writer_write(st, w, data, sizeof(data), &err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(rc, KURA_ENOSPC);
	kura_store_writer_abort(st, w);
	assert_int_equal(open_rc(st, id), KURA_ENOENT);
}

static void test_registry(void **state)
{
	struct fixture *f = *state;
	struct kura_store *s = NULL;
	struct kura_error err = { 0 };
	struct kura_config *cfg = NULL;
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "storage", "backend", "tape",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_store_open(cfg, f->dir, &s, &err), KURA_ECONFIG);
	assert_null(s);
	assert_non_null(strstr(err.msg, "tape"));
	assert_non_null(strstr(err.msg, "fs"));

	char other[256];
	snprintf(other, sizeof(other), "%s/elsewhere/data", f->dir);
	assert_int_equal(kura_config_set(cfg, "storage", "backend", "fs", NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "storage", "path", other, NULL),
			 KURA_OK);
	assert_int_equal(kura_store_open(cfg, f->dir, &s, NULL), KURA_OK);
	uint8_t id[KURA_BLOB_ID_LEN];
	make_id(id, 70);
	write_blob(s, id, (const uint8_t *)"x", 1);
	char p[PATH_MAX], hex[33];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	snprintf(p, sizeof(p), "%s/staging/%s", other, hex);
	assert_true(exists(p));
	/* The default store does not see it. */
	assert_int_equal(open_rc(f->st, id), KURA_ENOENT);
	kura_store_close(s);
	kura_store_close(NULL);
	kura_config_free(cfg);
}

#define NTHREADS 4
#define NBLOBS 25

struct worker {
	struct kura_store *st;
	int tid;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct kura_store *st = wk->st;
	uint8_t data[5000], got[5000];
	for (int i = 0; i < NBLOBS; i++) {
		uint8_t id[KURA_BLOB_ID_LEN];
		make_id(id, (uint8_t)(wk->tid * NBLOBS + i));
		id[15] = (uint8_t)wk->tid;
		size_t n = (size_t)(i * 197) % sizeof(data);
		fill(data, n, (uint8_t)i);
		struct kura_store_writer *w = NULL;
		struct kura_store_reader *r = NULL;
		uint64_t size = 0;
		if (kura_store_writer_open(st, id, &w, NULL) != KURA_OK ||
		    kura_store_writer_write(st, w, data, n, NULL) != KURA_OK ||
		    kura_store_writer_finish(st, w, NULL) != KURA_OK ||
		    kura_store_publish(st, id, NULL) != KURA_OK ||
		    kura_store_reader_open(st, id, &r, &size, NULL) !=
			    KURA_OK ||
		    size != n ||
		    kura_store_reader_pread(st, r, got, n, 0, NULL) !=
			    KURA_OK ||
		    memcmp(got, data, n) != 0)
			wk->failures++;
		kura_store_reader_close(st, r);
		if (i % 2 == 0 && kura_store_remove(st, id, NULL) != KURA_OK)
			wk->failures++;
	}
	return NULL;
}

/* Readers racing a publish of the same blob always find it. */
struct racer {
	struct kura_store *st;
	const uint8_t *id;
	atomic_int stop;
	int misses;
};

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	while (!rc->stop)
		if (open_rc(rc->st, rc->id) != KURA_OK)
			rc->misses++;
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	pthread_t th[NTHREADS];
	struct worker wk[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		wk[i] = (struct worker){ .st = f->st, .tid = i };
		assert_int_equal(
			pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(wk[i].failures, 0);
	}

	for (int round = 0; round < 20; round++) {
		uint8_t id[KURA_BLOB_ID_LEN];
		make_id(id, (uint8_t)(200 + round));
		write_blob(f->st, id, (const uint8_t *)"race", 4);
		struct racer rc = { .st = f->st, .id = id };
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, racer_main, &rc), 0);
		usleep(200);
		assert_int_equal(kura_store_publish(f->st, id, NULL), KURA_OK);
		usleep(200);
		rc.stop = 1;
		pthread_join(t, NULL);
		assert_int_equal(rc.misses, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout_and_life, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_writer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pread_bounds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

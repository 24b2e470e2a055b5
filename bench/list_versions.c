/*
 * list_versions.c — listing a versioned bucket of a million keys: the
 * first page of current objects and of versions, in the metadata store.
 *
 * Builds a SQLite store (the embedded default) whose bucket holds N keys
 * (default 1,000,000): every 10th key has 10 versions, every 100th key's
 * newest version is a delete marker, and one key ("m-hot") has 100,000
 * versions.  Rows go in with plain SQL in large transactions (a million
 * PUTs would measure PUT), then the store's own calls are timed:
 *
 *   current-first      object_list, first 1000 keys of the bucket
 *   current-hot        object_list, 1000 keys starting just before m-hot
 *                      (steps over its 100,000 older versions)
 *   versions-first     object_list_versions, first 1000 versions
 *   versions-in-hot    object_list_versions, 1000 versions inside m-hot
 *
 * Reference, measured in the same run on the same file: the bare SQLite
 * range query that reads 1000 rows of the primary key (what any listing
 * must at least cost).  Medians of --runs runs each, in milliseconds.
 *
 * Usage: build/bench/bench_list_versions [--keys N] [--runs R]
 * Prints a table and one machine-readable line per case:
 *   BENCH list_versions case=NAME rows=R p50_ms=... ref_sqlite_p50_ms=...
 *
 * Built with the tests (meson option tests); not run by make test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../tests/unit/meta_fixture.h"
#include "kura/banned.h"

#define HOT_KEY "m-hot"
#define HOT_VERSIONS 100000u

static uint32_t n_keys = 1000000;
static unsigned n_runs = 50;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *xs, unsigned n)
{
	qsort(xs, n, sizeof(*xs), cmp_double);
	return xs[n / 2];
}

static void key_of(uint32_t i, char *out, size_t cap)
{
	/* Keys spread over "a-" .. "z-" so that m-hot sits in the middle. */
	snprintf(out, cap, "%c-%08u", 'a' + (int)(i % 26), i);
}

struct loader {
	sqlite3 *h;
	sqlite3_stmt *s;
	int64_t bucket;
	uint64_t rows;
};

static void insert(struct loader *l, const char *key, uint64_t vseq,
		   bool marker)
{
	uint8_t uid[16];
	uint64_t n = ++l->rows;

	memset(uid, 0, sizeof(uid));
	memcpy(uid, &n, sizeof(n));
	uid[15] = 0xbe;
	if (n % 200000 == 1)
		assert_int_equal(sqlite3_exec(l->h, "BEGIN", NULL, NULL, NULL),
				 SQLITE_OK);
	sqlite3_bind_int64(l->s, 1, l->bucket);
	sqlite3_bind_blob(l->s, 2, key, (int)strlen(key), SQLITE_TRANSIENT);
	sqlite3_bind_blob(l->s, 3, uid, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(l->s, 4, (int64_t)vseq);
	sqlite3_bind_int64(l->s, 5, marker ? 1 : 0);
	assert_int_equal(sqlite3_step(l->s), SQLITE_DONE);
	sqlite3_reset(l->s);
	if (n % 200000 == 0)
		assert_int_equal(sqlite3_exec(l->h, "COMMIT", NULL, NULL, NULL),
				 SQLITE_OK);
}

static uint64_t load(struct fx *f)
{
	struct loader l = { 0 };
	char key[32];

	memcpy(&l.bucket, &f->bucket, sizeof(l.bucket));
	assert_int_equal(sqlite3_open_v2(f->db, &l.h, SQLITE_OPEN_READWRITE,
					 NULL),
			 SQLITE_OK);
	sqlite3_exec(l.h, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
	assert_int_equal(
		sqlite3_prepare_v2(
			l.h,
			"INSERT INTO objects (bucket_id, key, version_uid, size, "
			"etag, mtime_ms, part_count, vseq, null_version, "
			"delete_marker, lock_mode, lock_until_ms, legal_hold) "
			"VALUES (?1, ?2, ?3, 0, '', 1700000000000, 0, ?4, 0, ?5, 0, "
			"0, 0)",
			-1, &l.s, NULL),
		SQLITE_OK);
	for (uint32_t i = 0; i < n_keys; i++) {
		unsigned versions = i % 10 == 0 ? 10 : 1;
		key_of(i, key, sizeof(key));
		for (unsigned v = 1; v <= versions; v++)
			insert(&l, key, v, i % 100 == 0 && v == versions);
	}
	for (uint32_t v = 1; v <= HOT_VERSIONS; v++)
		insert(&l, HOT_KEY, v, false);
	if (l.rows % 200000 != 0)
		assert_int_equal(sqlite3_exec(l.h, "COMMIT", NULL, NULL, NULL),
				 SQLITE_OK);
	sqlite3_finalize(l.s);
	sqlite3_exec(l.h, "ANALYZE", NULL, NULL, NULL);
	sqlite3_close(l.h);
	return l.rows;
}

/* One case: the store's call and the reference query, n_runs each. */
struct bench_case {
	const char *name;
	bool versions;
	const char *after; /* NULL: from the start */
	uint64_t after_vseq;
};

static double run_store(struct fx *f, const struct bench_case *c)
{
	double *xs = calloc(n_runs, sizeof(*xs)), m;

	for (unsigned r = 0; r <= n_runs; r++) {
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_error err = { 0 };
		struct kura_object *e = NULL;
		size_t n = 0;
		size_t al = c->after ? strlen(c->after) : 0;
		double t0 = now_ms();
		enum kura_err rc =
			c->versions ?
				kura_meta_object_list_versions(
					f->meta, f->bucket, NULL, 0, c->after,
					al, c->after_vseq, 1000, pool, &e, &n,
					&err) :
				kura_meta_object_list(f->meta, f->bucket, NULL,
						      0, c->after, al, 1000,
						      pool, &e, &n, &err);
		double dt = now_ms() - t0;
		assert_int_equal(rc, KURA_OK);
		assert_int_equal(n, 1000);
		if (r > 0) /* the first run warms the cache */
			xs[r - 1] = dt;
		kura_pool_free(pool);
	}
	m = median(xs, n_runs);
	free(xs);
	return m;
}

static double run_reference(struct fx *f, const char *after)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	double *xs = calloc(n_runs, sizeof(*xs)), m;
	int64_t bid;

	memcpy(&bid, &f->bucket, sizeof(bid));
	assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(h,
				   "SELECT key, version_uid, size, etag, "
				   "mtime_ms, vseq FROM objects WHERE "
				   "bucket_id = ?1 AND key > ?2 ORDER BY key, "
				   "vseq DESC LIMIT 1000",
				   -1, &s, NULL),
		SQLITE_OK);
	for (unsigned r = 0; r <= n_runs; r++) {
		unsigned rows = 0;
		double t0 = now_ms();
		sqlite3_bind_int64(s, 1, bid);
		sqlite3_bind_blob(s, 2, after ? after : "",
				  (int)(after ? strlen(after) : 0),
				  SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW) {
			(void)sqlite3_column_blob(s, 0);
			rows++;
		}
		sqlite3_reset(s);
		double dt = now_ms() - t0;
		assert_int_equal(rows, 1000);
		if (r > 0)
			xs[r - 1] = dt;
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	m = median(xs, n_runs);
	free(xs);
	return m;
}

static void bench(void **state)
{
	struct fx *f = *state;
	char before_hot[32];
	double t0 = now_ms();
	uint64_t rows = load(f);

	snprintf(before_hot, sizeof(before_hot), "m-");
	print_message("# %u keys, %llu rows (versions and markers) loaded in "
		      "%.1f s\n",
		      n_keys, (unsigned long long)rows,
		      (now_ms() - t0) / 1000.0);
	const struct bench_case cases[] = {
		{ "current-first", false, NULL, 0 },
		{ "current-hot", false, before_hot, 0 },
		{ "versions-first", true, NULL, 0 },
		{ "versions-in-hot", true, HOT_KEY, HOT_VERSIONS / 2 },
	};
	print_message("# %-18s %12s %18s\n", "case", "store p50 ms",
		      "sqlite range p50 ms");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double st = run_store(f, &cases[i]);
		double ref = run_reference(f, cases[i].after);
		print_message("# %-18s %12.3f %18.3f\n", cases[i].name, st,
			      ref);
		print_message(
			"BENCH list_versions case=%s rows=%llu p50_ms=%.3f "
			"ref_sqlite_p50_ms=%.3f\n",
			cases[i].name, (unsigned long long)rows, st, ref);
	}
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		unsigned long v = strtoul(argv[i + 1], NULL, 10);
		if (strcmp(argv[i], "--keys") == 0 && v >= 10000 &&
		    v <= 100000000)
			n_keys = (uint32_t)v;
		else if (strcmp(argv[i], "--runs") == 0 && v >= 1 && v <= 10000)
			n_runs = (unsigned)v;
	}
	static const struct CMUnitTest tests[] = { meta_test(bench) };
	return meta_run_suite("bench_list_versions", tests, ARRAY_LEN(tests));
}

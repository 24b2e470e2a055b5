/*
 * test_core.c — unit tests of src/core: buf, pool, encode, timefmt, parse,
 * box, config, err, log and fsutil.
 *
 * Vectors come from the specifications where one exists (RFC 4648 for
 * base16/base64, RFC 7231 for HTTP dates); everything else checks the
 * promises written in the headers, including "outputs are written only on
 * success" and "a buffer's first failure sticks".
 *
 * Single-threaded; temporary files go to a fresh mkdtemp directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <zlib.h>

#include "kura/box.h"
#include "kura/buf.h"
#include "kura/checksum.h"
#include "kura/config.h"
#include "kura/encode.h"
#include "kura/err.h"
#include "kura/fsutil.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/pool.h"
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* A fresh private directory for files a test writes; removed by rmtree. */
static void make_tmpdir(char *out, size_t cap)
{
	const char *base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	int n = snprintf(out, cap, "%s/kura-test-core-XXXXXX", base);
	assert_true(n > 0 && (size_t)n < cap);
	assert_non_null(mkdtemp(out));
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void rm_rf(const char *path)
{
	char cmd[PATH_MAX + 32];
	int n = snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", path);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------ */
/* str                                                                 */

static void test_str_views(void **state)
{
	(void)state;
	struct kura_str a = kura_str_from("Host");
	assert_int_equal(a.len, 4);
	assert_true(kura_str_eq(a, KURA_STR_LIT("Host")));
	assert_false(kura_str_eq(a, KURA_STR_LIT("Hos")));
	assert_false(kura_str_eq(a, KURA_STR_LIT("host")));
	assert_true(kura_str_eq_cstr(a, "Host"));
	assert_true(kura_str_caseeq_cstr(a, "hOST"));
	assert_false(kura_str_caseeq_cstr(a, "hos"));
	assert_false(kura_str_caseeq_cstr(a, "hosts"));
	assert_true(kura_str_has_prefix(a, "Ho"));
	assert_true(kura_str_has_prefix(a, ""));
	assert_false(kura_str_has_prefix(a, "Hosts"));

	struct kura_str none = kura_str_from(NULL);
	assert_int_equal(none.len, 0);
	assert_true(kura_str_eq(none, KURA_STR_LIT("")));

	/* A view is not NUL-terminated: only len bytes count. */
	struct kura_str part = { "abcdef", 3 };
	assert_true(kura_str_eq_cstr(part, "abc"));
	assert_false(kura_str_eq_cstr(part, "abcdef"));
	/* An embedded NUL is a byte like any other. */
	struct kura_str nul = { "ab\0c", 4 };
	assert_false(kura_str_caseeq_cstr(nul, "ab"));
	assert_false(kura_str_eq(nul, (struct kura_str){ "ab\0d", 4 }));
}

/* ------------------------------------------------------------------ */
/* buf                                                                 */

static void test_buf_basic(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 1024);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(kura_buf_addstr(&b, "hello"), KURA_OK);
	assert_int_equal(kura_buf_addch(&b, ' '), KURA_OK);
	assert_int_equal(kura_buf_add(&b, "world!!", 5), KURA_OK);
	assert_int_equal(b.len, 11);
	assert_string_equal(b.data, "hello world");
	assert_true(b.cap > b.len);
	/* Binary content, including NUL bytes, is kept exactly. */
	assert_int_equal(kura_buf_add(&b, "\0\xff", 2), KURA_OK);
	assert_int_equal(b.len, 13);
	assert_memory_equal(b.data + 11, "\0\xff\0", 3);
	/* Adding nothing still succeeds and keeps the terminator. */
	assert_int_equal(kura_buf_add(&b, NULL, 0), KURA_OK);
	assert_int_equal(b.len, 13);

	size_t cap = b.cap;
	kura_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(b.cap, cap);
	assert_int_equal(kura_buf_addstr(&b, "again"), KURA_OK);
	assert_string_equal(b.data, "again");
	kura_buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	/* Released buffers are reusable after init, and release is idempotent. */
	kura_buf_release(&b);
	kura_buf_init(&b, 8);
	assert_int_equal(kura_buf_addstr(&b, "x"), KURA_OK);
	kura_buf_release(&b);

	/* An empty add on a fresh buffer yields "" rather than NULL data. */
	kura_buf_init(&b, 0);
	assert_int_equal(kura_buf_add(&b, "", 0), KURA_OK);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	kura_buf_release(&b);
}

static void test_buf_grows_large(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 1 << 20);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(kura_buf_addch(&b, (char)('a' + i % 26)),
				 KURA_OK);
	assert_int_equal(b.len, 100000);
	assert_int_equal(b.data[100000], '\0');
	for (int i = 0; i < 100000; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	kura_buf_release(&b);
}

static void test_buf_limit(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 10);
	assert_int_equal(kura_buf_add(&b, "0123456789", 10), KURA_OK);
	assert_int_equal(b.len, 10);
	assert_true(b.cap <= 11);
	assert_int_equal(kura_buf_room(&b), 0);
	/* Adding nothing at the limit is no failure. */
	assert_int_equal(kura_buf_add(&b, "", 0), KURA_OK);
	assert_string_equal(b.data, "0123456789");
	kura_buf_release(&b);

	/* Every way of appending refuses to pass max. */
	static const char *const names[] = { "add", "addstr", "addch", "addf",
					     "addhex" };
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		enum kura_err rc = KURA_OK;
		kura_buf_init(&b, 3);
		assert_int_equal(kura_buf_addstr(&b, "abc"), KURA_OK);
		switch (i) {
		case 0:
			rc = kura_buf_add(&b, "d", 1);
			break;
		case 1:
			rc = kura_buf_addstr(&b, "d");
			break;
		case 2:
			rc = kura_buf_addch(&b, 'd');
			break;
		case 3:
			rc = kura_buf_addf(&b, "%d", 7);
			break;
		case 4:
			rc = kura_buf_addhex(&b, (const uint8_t *)"\x01", 1);
			break;
		}
		if (rc != KURA_ETOOBIG)
			fail_msg("kura_buf_%s past max: %d", names[i], (int)rc);
		assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
		assert_null(b.data);
		kura_buf_release(&b);
	}

	/* max 0: only empty content. */
	kura_buf_init(&b, 0);
	assert_int_equal(kura_buf_addch(&b, 'a'), KURA_ETOOBIG);
	assert_int_equal(b.len, 0);
	kura_buf_release(&b);

	/* A length that would overflow size_t arithmetic is refused, not
	 * wrapped. */
	static const size_t huge[] = { SIZE_MAX, SIZE_MAX - 1 };
	for (size_t i = 0; i < ARRAY_LEN(huge); i++) {
		kura_buf_init(&b, 100);
		assert_int_equal(kura_buf_addstr(&b, "ab"), KURA_OK);
		assert_int_equal(kura_buf_add(&b, "x", huge[i]), KURA_ETOOBIG);
		kura_buf_release(&b);
	}
	kura_buf_init(&b, 100);
	assert_int_equal(kura_buf_addhex(&b, (const uint8_t *)"x",
					 SIZE_MAX / 2 + 1),
			 KURA_ETOOBIG);
	kura_buf_release(&b);

	/* An effectively unbounded buffer (max SIZE_MAX) still works. */
	kura_buf_init(&b, SIZE_MAX);
	assert_int_equal(kura_buf_addstr(&b, "unbounded"), KURA_OK);
	assert_int_equal(kura_buf_addf(&b, "-%d", 42), KURA_OK);
	assert_string_equal(b.data, "unbounded-42");
	kura_buf_release(&b);
}

/* The first failure sticks: the content is dropped (no document with a hole
 * can be read out), every later append is a no-op returning that code, even
 * one that would fit, and only reset starts over. */
static void test_buf_sticky(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 10);
	assert_int_equal(kura_buf_error(&b), KURA_OK);
	assert_int_equal(kura_buf_room(&b), 10);
	assert_int_equal(kura_buf_addstr(&b, "<a>"), KURA_OK);
	assert_int_equal(kura_buf_addstr(&b, "<too-long>"), KURA_ETOOBIG);
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(kura_buf_room(&b), 0);
	/* Appends that would fit now change nothing. */
	assert_int_equal(kura_buf_add(&b, "x", 1), KURA_ETOOBIG);
	assert_int_equal(kura_buf_add(&b, "", 0), KURA_ETOOBIG);
	assert_int_equal(kura_buf_addstr(&b, "</a>"), KURA_ETOOBIG);
	assert_int_equal(kura_buf_addch(&b, '>'), KURA_ETOOBIG);
	assert_int_equal(kura_buf_addf(&b, "%s", "y"), KURA_ETOOBIG);
	assert_int_equal(kura_buf_addhex(&b, (const uint8_t *)"\x01", 1),
			 KURA_ETOOBIG);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	/* Truncation does not revive it; detach hands nothing out. */
	kura_buf_truncate(&b, 0);
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	size_t len = 99;
	assert_null(kura_buf_detach(&b, &len));
	assert_int_equal(len, 99);
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	/* A second failure does not replace the first. */
	kura_buf_fail(&b, KURA_ENOMEM);
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	/* Reset starts over, with the same limit. */
	kura_buf_reset(&b);
	assert_int_equal(kura_buf_error(&b), KURA_OK);
	assert_int_equal(kura_buf_addstr(&b, "0123456789"), KURA_OK);
	assert_string_equal(b.data, "0123456789");
	kura_buf_release(&b);

	/* A failure met elsewhere is recorded as one of the buffer's own;
	 * KURA_OK records nothing. */
	kura_buf_init(&b, 100);
	assert_int_equal(kura_buf_addstr(&b, "part"), KURA_OK);
	kura_buf_fail(&b, KURA_OK);
	assert_string_equal(b.data, "part");
	kura_buf_fail(&b, KURA_ENOMEM);
	assert_int_equal(kura_buf_error(&b), KURA_ENOMEM);
	assert_null(b.data);
	assert_int_equal(kura_buf_addch(&b, 'x'), KURA_ENOMEM);
	kura_buf_release(&b);
	/* Release forgets the failure too. */
	assert_int_equal(kura_buf_error(&b), KURA_OK);

	/* Truncate keeps a prefix of healthy content. */
	kura_buf_init(&b, 100);
	assert_int_equal(kura_buf_addstr(&b, "keep|drop"), KURA_OK);
	kura_buf_truncate(&b, 4);
	assert_string_equal(b.data, "keep");
	kura_buf_truncate(&b, 50);
	assert_string_equal(b.data, "keep");
	assert_int_equal(kura_buf_room(&b), 96);
	kura_buf_release(&b);
}

static void test_buf_addf(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 4096);
	assert_int_equal(kura_buf_addf(&b, "%s=%d;", "a", 1), KURA_OK);
	assert_int_equal(kura_buf_addf(&b, "%05u|%x|%c", 42u, 255u, 'z'),
			 KURA_OK);
	assert_string_equal(b.data, "a=1;00042|ff|z");
	assert_int_equal(b.len, strlen("a=1;00042|ff|z"));
	/* An empty format adds nothing but leaves a valid string. */
	assert_int_equal(kura_buf_addf(&b, "%s", ""), KURA_OK);
	assert_int_equal(b.len, 14);
	/* Output longer than the initial capacity is not truncated. */
	char big[1000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kura_buf_addf(&b, "[%s]", big), KURA_OK);
	assert_int_equal(b.len, 14 + 2 + 999);
	assert_int_equal(b.data[14], '[');
	assert_int_equal(b.data[14 + 1 + 998], 'q');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len], '\0');
	kura_buf_release(&b);

	/* addf exactly up to max works; one more byte does not. */
	kura_buf_init(&b, 5);
	assert_int_equal(kura_buf_addf(&b, "%d", 12345), KURA_OK);
	assert_string_equal(b.data, "12345");
	kura_buf_release(&b);
	kura_buf_init(&b, 5);
	assert_int_equal(kura_buf_addf(&b, "%d", 123456), KURA_ETOOBIG);
	assert_int_equal(b.len, 0);
	kura_buf_release(&b);

	/* addf on a fresh buffer with empty output gives "" */
	kura_buf_init(&b, 5);
	assert_int_equal(kura_buf_addf(&b, "%s", ""), KURA_OK);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	kura_buf_release(&b);
}

static void test_buf_addhex(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 64);
	const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	assert_int_equal(kura_buf_addstr(&b, "h:"), KURA_OK);
	assert_int_equal(kura_buf_addhex(&b, bytes, sizeof(bytes)), KURA_OK);
	assert_string_equal(b.data, "h:00017f80abff");
	assert_int_equal(kura_buf_addhex(&b, bytes, 0), KURA_OK);
	assert_int_equal(b.len, 14);
	kura_buf_release(&b);

	/* Exactly at the limit: 2n == max. */
	kura_buf_init(&b, 4);
	assert_int_equal(kura_buf_addhex(&b, bytes + 2, 2), KURA_OK);
	assert_string_equal(b.data, "7f80");
	kura_buf_release(&b);
	kura_buf_init(&b, 3);
	assert_int_equal(kura_buf_addhex(&b, bytes + 2, 2), KURA_ETOOBIG);
	assert_int_equal(b.len, 0);
	kura_buf_release(&b);
}

static void test_buf_detach(void **state)
{
	(void)state;
	struct kura_buf b;
	size_t len = 99;
	kura_buf_init(&b, 100);
	assert_int_equal(kura_buf_addstr(&b, "payload"), KURA_OK);
	char *p = kura_buf_detach(&b, &len);
	assert_non_null(p);
	assert_string_equal(p, "payload");
	assert_int_equal(len, 7);
	/* The buffer is empty and reusable with the same limit. */
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 100);
	assert_int_equal(kura_buf_addstr(&b, "next"), KURA_OK);
	assert_string_equal(b.data, "next");
	assert_string_equal(p, "payload");
	free(p);
	kura_buf_release(&b);

	/* Detaching an empty buffer gives an allocated "". */
	kura_buf_init(&b, 100);
	len = 99;
	p = kura_buf_detach(&b, &len);
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	free(p);
	/* len may be NULL. */
	assert_int_equal(kura_buf_addstr(&b, "z"), KURA_OK);
	p = kura_buf_detach(&b, NULL);
	assert_string_equal(p, "z");
	free(p);
	kura_buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* pool                                                                */

static void test_pool_many_allocations(void **state)
{
	(void)state;
	struct kura_pool *pool = kura_pool_new(0);
	assert_non_null(pool);
	enum {
		N = 5000
	};
	unsigned char *ptrs[N];
	size_t sizes[N];
	for (size_t i = 0; i < N; i++) {
		sizes[i] = 1 + (i * 37) % 300;
		ptrs[i] = kura_palloc(pool, sizes[i]);
		assert_non_null(ptrs[i]);
		/* Aligned for any type, and zeroed. */
		assert_int_equal((uintptr_t)ptrs[i] % _Alignof(max_align_t), 0);
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(ptrs[i][j], 0);
		memset(ptrs[i], (int)(i & 0xff), sizes[i]);
	}
	/* No allocation overlaps another: every pattern is intact. */
	for (size_t i = 0; i < N; i++)
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(ptrs[i][j], i & 0xff);
	kura_pool_free(pool);

	/* A small block size still serves requests larger than a block. */
	pool = kura_pool_new(64);
	assert_non_null(pool);
	for (int i = 0; i < 200; i++) {
		unsigned char *p = kura_palloc(pool, 48);
		assert_non_null(p);
		memset(p, 0x5a, 48);
	}
	kura_pool_free(pool);
}

static void test_pool_large(void **state)
{
	(void)state;
	struct kura_pool *pool = kura_pool_new(4096);
	assert_non_null(pool);
	unsigned char *small1 = kura_palloc(pool, 100);
	assert_non_null(small1);
	memset(small1, 1, 100);
	/* Larger than a block: gets its own block, does not disturb the
	 * current one. */
	size_t big_n = 1 << 20;
	unsigned char *big = kura_palloc(pool, big_n);
	assert_non_null(big);
	assert_int_equal((uintptr_t)big % _Alignof(max_align_t), 0);
	for (size_t i = 0; i < big_n; i += 4096)
		assert_int_equal(big[i], 0);
	memset(big, 2, big_n);
	unsigned char *small2 = kura_palloc(pool, 100);
	assert_non_null(small2);
	memset(small2, 3, 100);
	/* A few medium ones that straddle the "own block" threshold. */
	unsigned char *mid[8];
	for (int i = 0; i < 8; i++) {
		mid[i] = kura_palloc(pool, 1000 + (size_t)i * 400);
		assert_non_null(mid[i]);
		memset(mid[i], 10 + i, 1000 + (size_t)i * 400);
	}
	for (size_t i = 0; i < 100; i++) {
		assert_int_equal(small1[i], 1);
		assert_int_equal(small2[i], 3);
	}
	for (size_t i = 0; i < big_n; i++)
		if (big[i] != 2)
			fail_msg("big block clobbered at %zu", i);
	for (int i = 0; i < 8; i++)
		for (size_t j = 0; j < 1000 + (size_t)i * 400; j++)
			assert_int_equal(mid[i][j], 10 + i);

	/* Zero and absurd sizes are refused rather than wrapped. */
	assert_null(kura_palloc(pool, 0));
	assert_null(kura_palloc(pool, SIZE_MAX));
	assert_null(kura_palloc(pool, SIZE_MAX - 16));
	assert_null(kura_palloc(pool, SIZE_MAX - 20));
	assert_null(kura_pstrndup(pool, "x", SIZE_MAX));
	/* The pool still works after refusing. */
	assert_non_null(kura_palloc(pool, 8));
	kura_pool_free(pool);
}

static void test_pool_strings(void **state)
{
	(void)state;
	struct kura_pool *pool = kura_pool_new(128);
	assert_non_null(pool);
	char *s = kura_pstrdup(pool, "bucket");
	assert_string_equal(s, "bucket");
	char *t = kura_pstrndup(pool, "objectkey", 6);
	assert_string_equal(t, "object");
	char *e = kura_pstrndup(pool, "whatever", 0);
	assert_non_null(e);
	assert_string_equal(e, "");
	const uint8_t bytes[] = { 1, 0, 2, 0, 3 };
	uint8_t *m = kura_pmemdup(pool, bytes, sizeof(bytes));
	assert_non_null(m);
	assert_memory_equal(m, bytes, sizeof(bytes));
	assert_ptr_not_equal(m, bytes);
	char *f = kura_psprintf(pool, "%s/%s?n=%d", s, t, 42);
	assert_string_equal(f, "bucket/object?n=42");
	/* Longer than the block size. */
	char big[500];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *g = kura_psprintf(pool, "<%s>", big);
	assert_non_null(g);
	assert_int_equal(strlen(g), 501);
	assert_int_equal(g[0], '<');
	assert_int_equal(g[500], '>');
	/* Earlier strings survive later allocations. */
	assert_string_equal(s, "bucket");
	assert_string_equal(t, "object");
	kura_pool_free(pool);
	kura_pool_free(NULL);
}

struct cleanup_log {
	int order[16];
	int n;
	const char *pool_string; /* pool memory read by a hook */
	char seen[32];
};

static struct cleanup_log *current_log;

static void hook(void *arg)
{
	int id = (int)(intptr_t)arg;
	assert_true(current_log->n < 16);
	current_log->order[current_log->n++] = id;
}

static void hook_reads_pool(void *arg)
{
	(void)arg;
	/* Hooks run before the memory is released, so this read is valid
	 * (ASan would flag a use-after-free otherwise). */
	snprintf(current_log->seen, sizeof(current_log->seen), "%s",
		 current_log->pool_string);
	current_log->order[current_log->n++] = 100;
}

static void test_pool_cleanup_order(void **state)
{
	(void)state;
	struct cleanup_log log = { .n = 0 };
	current_log = &log;
	struct kura_pool *pool = kura_pool_new(0);
	assert_non_null(pool);
	log.pool_string = kura_pstrdup(pool, "still here");
	assert_int_equal(kura_pool_cleanup_add(pool, hook_reads_pool, NULL), 0);
	for (int i = 1; i <= 5; i++)
		assert_int_equal(kura_pool_cleanup_add(pool, hook,
						       (void *)(intptr_t)i),
				 0);
	assert_int_equal(log.n, 0);
	kura_pool_free(pool);
	/* Reverse order of registration; the first registered runs last. */
	assert_int_equal(log.n, 6);
	for (int i = 0; i < 5; i++)
		assert_int_equal(log.order[i], 5 - i);
	assert_int_equal(log.order[5], 100);
	assert_string_equal(log.seen, "still here");

	/* A pool with no hooks and no allocations frees cleanly. */
	pool = kura_pool_new(0);
	assert_non_null(pool);
	kura_pool_free(pool);
	current_log = NULL;
}

/* ------------------------------------------------------------------ */
/* encode: hex                                                         */

static void test_hex(void **state)
{
	(void)state;
	/* RFC 4648 §10 base16 vectors (encoded lower case by kura). */
	static const struct {
		const char *plain, *hex;
	} v[] = {
		{ "", "" },
		{ "f", "66" },
		{ "fo", "666f" },
		{ "foo", "666f6f" },
		{ "foob", "666f6f62" },
		{ "fooba", "666f6f6261" },
		{ "foobar", "666f6f626172" },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		size_t n = strlen(v[i].plain);
		char out[16];
		kura_hex_encode((const uint8_t *)v[i].plain, n, out);
		assert_string_equal(out, v[i].hex);
		uint8_t back[8] = { 0 };
		assert_int_equal(kura_hex_decode(v[i].hex, 2 * n, back, n),
				 KURA_OK);
		assert_memory_equal(back, v[i].plain, n);
	}
	uint8_t all[256];
	char hex[513];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	kura_hex_encode(all, 256, hex);
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102", 6);
	assert_string_equal(hex + 506, "fdfeff");
	uint8_t back[256];
	assert_int_equal(kura_hex_decode(hex, 512, back, 256), KURA_OK);
	assert_memory_equal(back, all, 256);

	/* Upper case (RFC 4648's own form) decodes too. */
	uint8_t up[6];
	assert_int_equal(kura_hex_decode("666F6F626172", 12, up, 6), KURA_OK);
	assert_memory_equal(up, "foobar", 6);
	assert_int_equal(kura_hex_decode("aBcD", 4, up, 2), KURA_OK);
	assert_memory_equal(up, "\xab\xcd", 2);

	/* Failures leave the output untouched. */
	static const struct {
		const char *in;
		size_t n;
	} bad
		[] = {
			{ "abc", 2 },  /* odd length for n */
			{ "abcd", 1 }, /* too long */
			{ "ab", 2 },   /* too short */
			{ "zz", 1 },	 { "0g", 1 }, { "g0", 1 },
			{ " a", 1 },	 { "a ", 1 }, { "+1", 1 },
			{ "00ff0x", 3 }, /* bad digit at the end: nothing written */
		};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };
		assert_int_equal(kura_hex_decode(bad[i].in, strlen(bad[i].in),
						 out, bad[i].n),
				 KURA_EINVAL);
		assert_memory_equal(out, "\xee\xee\xee\xee", 4);
	}
	/* An embedded NUL is a bad digit, not the end. */
	uint8_t o1[1] = { 7 };
	assert_int_equal(kura_hex_decode("a\0", 2, o1, 1), KURA_EINVAL);
	assert_int_equal(o1[0], 7);
}

/* ------------------------------------------------------------------ */
/* encode: base64                                                      */

static void test_base64_vectors(void **state)
{
	(void)state;
	/* RFC 4648 §10. */
	static const struct {
		const char *plain, *b64;
	} v[] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		struct kura_buf b;
		kura_buf_init(&b, 64);
		size_t n = strlen(v[i].plain);
		assert_int_equal(kura_base64_encode((const uint8_t *)v[i].plain,
						    n, &b),
				 KURA_OK);
		assert_non_null(b.data);
		assert_string_equal(b.data, v[i].b64);
		kura_buf_release(&b);

		uint8_t out[8];
		size_t out_len = 99;
		assert_int_equal(kura_base64_decode(v[i].b64, strlen(v[i].b64),
						    out, sizeof(out), &out_len),
				 KURA_OK);
		assert_int_equal(out_len, n);
		assert_memory_equal(out, v[i].plain, n);
	}

	/* The whole alphabet, including '+' and '/'. */
	const uint8_t bytes[] = { 0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83 };
	struct kura_buf b;
	kura_buf_init(&b, 64);
	assert_int_equal(kura_base64_encode(bytes, sizeof(bytes), &b), KURA_OK);
	assert_string_equal(b.data, "+/+/ABCD");
	uint8_t out[6];
	size_t out_len;
	assert_int_equal(kura_base64_decode(b.data, b.len, out, sizeof(out),
					    &out_len),
			 KURA_OK);
	assert_int_equal(out_len, 6);
	assert_memory_equal(out, bytes, 6);
	kura_buf_release(&b);

	/* Appends to existing content; ETOOBIG at the limit, which sticks
	 * in the buffer. */
	kura_buf_init(&b, 10);
	assert_int_equal(kura_buf_addstr(&b, "md5="), KURA_OK);
	assert_int_equal(kura_base64_encode((const uint8_t *)"foo", 3, &b),
			 KURA_OK);
	assert_string_equal(b.data, "md5=Zm9v");
	assert_int_equal(kura_base64_encode((const uint8_t *)"foo", 3, &b),
			 KURA_ETOOBIG);
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	assert_int_equal(kura_base64_encode((const uint8_t *)"", 0, &b),
			 KURA_ETOOBIG);
	kura_buf_release(&b);

	/* Round trip of every length 0..64 with all byte values. */
	for (size_t n = 0; n <= 64; n++) {
		uint8_t in[64], dec[64];
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 97 + n * 13);
		kura_buf_init(&b, 200);
		assert_int_equal(kura_base64_encode(in, n, &b), KURA_OK);
		assert_int_equal(b.len, (n + 2) / 3 * 4);
		size_t dl = 999;
		assert_int_equal(kura_base64_decode(b.data, b.len, dec,
						    sizeof(dec), &dl),
				 KURA_OK);
		assert_int_equal(dl, n);
		assert_memory_equal(dec, in, n);
		kura_buf_release(&b);
	}
}

static void test_base64_reject(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Zg",	/* padding missing */
		"Zg=",	/* padding short */
		"Zm9",	/* length not a multiple of 4 */
		"Z===", /* too much padding */
		"====",
		"=Zm9",
		"Zm=v",	    /* padding in the middle of a quantum */
		"Zg==Zm9v", /* padding before the end */
		"Zm9vY===",
		"Zh==", /* non-canonical: stray bits under padding */
		"Zm9=", /* non-canonical (canonical is Zm8=) */
		"Zm+=",
		"Zm9 ", /* whitespace */
		" Zm9",
		"Zm9v\n",
		"Zm9v\r\nYg==",
		"Zm9-", /* URL-safe alphabet is not accepted */
		"Zm9_",
		"Zm9\x80", /* high bytes */
		"Zm9.",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		uint8_t out[16];
		memset(out, 0xee, sizeof(out));
		size_t out_len = 12345;
		enum kura_err rc = kura_base64_decode(
			bad[i], strlen(bad[i]), out, sizeof(out), &out_len);
		if (rc != KURA_EINVAL)
			fail_msg("'%s' gave %s, want KURA_EINVAL", bad[i],
				 kura_errname(rc));
		/* Outputs are written only on success. */
		assert_int_equal(out_len, 12345);
		for (size_t j = 0; j < sizeof(out); j++)
			if (out[j] != 0xee)
				fail_msg(
					"'%s' wrote output byte %zu on failure",
					bad[i], j);
	}
	/* An embedded NUL is not an end of input. */
	uint8_t out[8];
	size_t out_len = 7;
	assert_int_equal(kura_base64_decode("Zm9v\0\0\0\0", 8, out, sizeof(out),
					    &out_len),
			 KURA_EINVAL);
	assert_int_equal(out_len, 7);

	/* Output capacity is enforced exactly. */
	out_len = 7;
	assert_int_equal(kura_base64_decode("Zm9vYmFy", 8, out, 5, &out_len),
			 KURA_ETOOBIG);
	assert_int_equal(out_len, 7);
	assert_int_equal(kura_base64_decode("Zm9vYmE=", 8, out, 5, &out_len),
			 KURA_OK);
	assert_int_equal(out_len, 5);
	assert_memory_equal(out, "fooba", 5);
}

/* ------------------------------------------------------------------ */
/* encode: URI                                                         */

static void test_uri_decode(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t in_len;
		const char *out;
		size_t out_len;
	} v[] = {
		{ "", 0, "", 0 },
		{ "plain", 5, "plain", 5 },
		{ "a%20b", 5, "a b", 3 },
		{ "a+b", 3, "a+b", 3 }, /* '+' is literal */
		{ "%2B", 3, "+", 1 },
		{ "%2b%2F", 6, "+/", 2 }, /* either case */
		{ "%e6%97%a5", 9, "\xe6\x97\xa5", 3 },
		{ "%00x", 4, "\0x", 2 }, /* NUL passes through */
		{ "%25", 3, "%", 1 },
		{ "%2525", 5, "%25", 3 }, /* decoded once only */
		{ "~-._", 4, "~-._", 4 },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		struct kura_buf b;
		kura_buf_init(&b, 64);
		assert_int_equal(kura_uri_decode(v[i].in, v[i].in_len, &b),
				 KURA_OK);
		assert_non_null(b.data);
		assert_int_equal(b.len, v[i].out_len);
		assert_memory_equal(b.data, v[i].out, v[i].out_len);
		kura_buf_release(&b);
	}

	static const char *const bad[] = {
		"%",  "%2",  "abc%", "abc%4", "%g0",	 "%0g",
		"%%", "%-1", "%+1",  "% 1",   "ok%zzok", "%\xff\xff",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct kura_buf b;
		kura_buf_init(&b, 64);
		assert_int_equal(kura_buf_addstr(&b, "pre:"), KURA_OK);
		assert_int_equal(kura_uri_decode(bad[i], strlen(bad[i]), &b),
				 KURA_EINVAL);
		/* The output keeps what it had before the call. */
		assert_int_equal(b.len, 4);
		assert_string_equal(b.data, "pre:");
		kura_buf_release(&b);
	}
	/* The length bounds the input: "%41" cut to 2 bytes is truncated. */
	struct kura_buf b;
	kura_buf_init(&b, 64);
	assert_int_equal(kura_uri_decode("%41", 2, &b), KURA_EINVAL);
	kura_buf_release(&b);
	kura_buf_init(&b, 2);
	assert_int_equal(kura_uri_decode("%41%42%43", 9, &b), KURA_ETOOBIG);
	kura_buf_release(&b);
}

static void test_uri_encode(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t in_len;
		bool keep_slash;
		const char *out;
	} v[] = {
		{ "", 0, false, "" },
		{ "AZaz09-_.~", 10, false, "AZaz09-_.~" },
		{ "a b", 3, false, "a%20b" },
		{ "a/b", 3, false, "a%2Fb" },
		{ "a/b", 3, true, "a/b" },
		{ "+*=&?%", 6, true, "%2B%2A%3D%26%3F%25" },
		{ "\xe6\x97\xa5", 3, false, "%E6%97%A5" },
		{ "\0\x7f\xff", 3, false, "%00%7F%FF" },
		{ "photos/2026 jan/a+b.jpg", 23, true,
		  "photos/2026%20jan/a%2Bb.jpg" },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		struct kura_buf b;
		kura_buf_init(&b, 128);
		assert_int_equal(kura_uri_encode(v[i].in, v[i].in_len,
						 v[i].keep_slash, &b),
				 KURA_OK);
		assert_non_null(b.data);
		assert_string_equal(b.data, v[i].out);
		/* Encoding then decoding gives the input back. */
		struct kura_buf d;
		kura_buf_init(&d, 128);
		assert_int_equal(kura_uri_decode(b.data, b.len, &d), KURA_OK);
		assert_int_equal(d.len, v[i].in_len);
		assert_memory_equal(d.data, v[i].in, v[i].in_len);
		kura_buf_release(&d);
		kura_buf_release(&b);
	}
	/* Every byte value round-trips. */
	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	struct kura_buf b, d;
	kura_buf_init(&b, 1024);
	kura_buf_init(&d, 1024);
	assert_int_equal(kura_uri_encode(all, 256, false, &b), KURA_OK);
	assert_int_equal(b.len, 256 * 3 - 66 * 2);
	assert_int_equal(kura_uri_decode(b.data, b.len, &d), KURA_OK);
	assert_int_equal(d.len, 256);
	assert_memory_equal(d.data, all, 256);
	kura_buf_release(&b);
	kura_buf_release(&d);

	/* The limit is honoured, and the failure sticks in the buffer. */
	kura_buf_init(&b, 8);
	assert_int_equal(kura_buf_addstr(&b, "k="), KURA_OK);
	assert_int_equal(kura_uri_encode("a b c", 5, false, &b), KURA_ETOOBIG);
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	assert_null(b.data);
	assert_int_equal(kura_uri_encode("a", 1, false, &b), KURA_ETOOBIG);
	kura_buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* encode: UTF-8, random, constant-time compare                        */

static void test_utf8(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t n;
		bool ok;
		const char *why;
	} v[] = {
		{ "", 0, true, "empty" },
		{ "ascii key/with.dots", 19, true, "ascii" },
		{ "\0", 1, true, "U+0000 is valid UTF-8" },
		{ "\x7f", 1, true, "U+007F" },
		{ "\xc2\x80", 2, true, "U+0080 smallest 2-byte" },
		{ "\xdf\xbf", 2, true, "U+07FF largest 2-byte" },
		{ "\xe0\xa0\x80", 3, true, "U+0800 smallest 3-byte" },
		{ "\xed\x9f\xbf", 3, true, "U+D7FF below surrogates" },
		{ "\xee\x80\x80", 3, true, "U+E000 above surrogates" },
		{ "\xef\xbf\xbd", 3, true, "U+FFFD" },
		{ "\xef\xbf\xbf", 3, true, "U+FFFF noncharacter is valid" },
		{ "\xf0\x90\x80\x80", 4, true, "U+10000 smallest 4-byte" },
		{ "\xf4\x8f\xbf\xbf", 4, true, "U+10FFFF largest" },
		{ "\xe6\x97\xa5\xe6\x9c\xac", 6, true, "Japanese" },
		{ "\xf0\x9f\x98\x80 ok", 7, true, "emoji then ascii" },

		{ "\x80", 1, false, "lone continuation" },
		{ "\xbf", 1, false, "lone continuation" },
		{ "\xc0\x80", 2, false, "overlong NUL" },
		{ "\xc0\xaf", 2, false, "overlong '/'" },
		{ "\xc1\xbf", 2, false, "overlong 2-byte" },
		{ "\xe0\x80\xaf", 3, false, "overlong '/' in 3 bytes" },
		{ "\xe0\x9f\xbf", 3, false, "overlong U+07FF in 3 bytes" },
		{ "\xf0\x80\x80\xaf", 4, false, "overlong '/' in 4 bytes" },
		{ "\xf0\x8f\xbf\xbf", 4, false, "overlong U+FFFF in 4 bytes" },
		{ "\xed\xa0\x80", 3, false, "U+D800 high surrogate" },
		{ "\xed\xbf\xbf", 3, false, "U+DFFF low surrogate" },
		{ "\xed\xa0\xbd\xed\xb8\x80", 6, false, "CESU-8 pair" },
		{ "\xf4\x90\x80\x80", 4, false, "U+110000" },
		{ "\xf5\x80\x80\x80", 4, false, "lead F5" },
		{ "\xf7\xbf\xbf\xbf", 4, false, "lead F7" },
		{ "\xf8\x88\x80\x80\x80", 5, false, "5-byte form" },
		{ "\xfc\x84\x80\x80\x80\x80", 6, false, "6-byte form" },
		{ "\xfe", 1, false, "FE" },
		{ "\xff", 1, false, "FF" },
		{ "\xc2", 1, false, "truncated 2-byte" },
		{ "\xe6\x97", 2, false, "truncated 3-byte" },
		{ "\xf0\x9f\x98", 3, false, "truncated 4-byte" },
		{ "ab\xe6\x97", 4, false, "truncated at end" },
		{ "\xe6\x97"
		  "a",
		  3, false, "ascii inside a sequence" },
		{ "\xc2\xc2\x80", 3, false, "lead where continuation due" },
		{ "\xe6\x97\xa5\x80", 4, false, "extra continuation" },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++)
		if (kura_utf8_valid(v[i].s, v[i].n) != v[i].ok)
			fail_msg("utf8 case %zu (%s): want %s", i, v[i].why,
				 v[i].ok ? "valid" : "invalid");
	/* The length bounds the check: a valid prefix of a broken string. */
	assert_true(kura_utf8_valid("ab\xe6\x97\xa5", 2));
	assert_false(kura_utf8_valid("ab\xe6\x97\xa5", 4));
	assert_true(kura_utf8_valid("ab\xe6\x97\xa5", 5));

	/* Exhaustive check of all 2-byte forms against a reference. */
	for (unsigned a = 0x80; a <= 0xff; a++)
		for (unsigned c = 0; c <= 0xff; c++) {
			char s[2] = { (char)a, (char)c };
			bool want = a >= 0xc2 && a <= 0xdf &&
				    (c & 0xc0) == 0x80;
			if (kura_utf8_valid(s, 2) != want)
				fail_msg("utf8 %02x %02x", a, c);
		}
	/* All 3-byte forms beginning E0 / ED. */
	for (unsigned b = 0; b <= 0xff; b++) {
		char e0[3] = { (char)0xe0, (char)b, (char)0x80 };
		char ed[3] = { (char)0xed, (char)b, (char)0x80 };
		assert_int_equal(kura_utf8_valid(e0, 3),
				 b >= 0xa0 && b <= 0xbf);
		assert_int_equal(kura_utf8_valid(ed, 3),
				 b >= 0x80 && b <= 0x9f);
	}
}

static void test_random_and_ct(void **state)
{
	(void)state;
	uint8_t a[32], b[32];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	struct kura_error err = { 0 };
	assert_int_equal(kura_random_bytes(a, sizeof(a), &err), KURA_OK);
	assert_int_equal(kura_random_bytes(b, sizeof(b), &err), KURA_OK);
	assert_int_equal(err.code, KURA_OK);
	/* Two 256-bit draws colliding means the generator is broken. */
	assert_memory_not_equal(a, b, sizeof(a));
	static const uint8_t zero[32];
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(kura_random_bytes(a, 0, &err), KURA_OK);

	assert_true(kura_ct_equal(a, a, sizeof(a)));
	assert_false(kura_ct_equal(a, b, sizeof(a)));
	assert_true(kura_ct_equal("abc", "abd", 2));
	assert_false(kura_ct_equal("abc", "abd", 3));
	assert_true(kura_ct_equal("x", "y", 0));
	/* A difference in any single position is seen. */
	for (size_t i = 0; i < sizeof(a); i++) {
		memcpy(b, a, sizeof(a));
		b[i] ^= 0x01;
		assert_false(kura_ct_equal(a, b, sizeof(a)));
	}
}

/* ------------------------------------------------------------------ */
/* timefmt                                                             */

struct known_time {
	int64_t ms;
	const char *iso, *http, *amz;
};

static const struct known_time known_times[] = {
	{ 0, "1970-01-01T00:00:00.000Z", "Thu, 01 Jan 1970 00:00:00 GMT",
	  "19700101T000000Z" },
	{ 784111777000, "1994-11-06T08:49:37.000Z",
	  "Sun, 06 Nov 1994 08:49:37 GMT", "19941106T084937Z" },
	{ 951825600000, "2000-02-29T12:00:00.000Z",
	  "Tue, 29 Feb 2000 12:00:00 GMT", "20000229T120000Z" },
	{ 1700000000123, "2023-11-14T22:13:20.123Z",
	  "Tue, 14 Nov 2023 22:13:20 GMT", "20231114T221320Z" },
	{ 1795314987999, "2026-11-22T02:36:27.999Z",
	  "Sun, 22 Nov 2026 02:36:27 GMT", "20261122T023627Z" },
	{ 2147483648000, "2038-01-19T03:14:08.000Z",
	  "Tue, 19 Jan 2038 03:14:08 GMT", "20380119T031408Z" },
	{ 253402300799000, "9999-12-31T23:59:59.000Z",
	  "Fri, 31 Dec 9999 23:59:59 GMT", "99991231T235959Z" },
};

static void test_time_format_known(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(known_times); i++) {
		const struct known_time *k = &known_times[i];
		char iso[KURA_TIME_ISO8601_LEN];
		char http[KURA_TIME_HTTP_LEN];
		char amz[KURA_TIME_AMZ_LEN];
		kura_time_iso8601(k->ms, iso);
		kura_time_http(k->ms, http);
		kura_time_amz(k->ms, amz);
		assert_string_equal(iso, k->iso);
		assert_string_equal(http, k->http);
		assert_string_equal(amz, k->amz);
		/* The buffer sizes in the header are exact. */
		assert_int_equal(strlen(iso) + 1, KURA_TIME_ISO8601_LEN);
		assert_int_equal(strlen(http) + 1, KURA_TIME_HTTP_LEN);
		assert_int_equal(strlen(amz) + 1, KURA_TIME_AMZ_LEN);

		int64_t secs = -1;
		assert_int_equal(kura_time_parse_iso8601(iso, strlen(iso),
							 &secs),
				 KURA_OK);
		assert_int_equal(secs, k->ms / 1000);
		secs = -1;
		assert_int_equal(kura_time_parse_http(http, strlen(http),
						      &secs),
				 KURA_OK);
		assert_int_equal(secs, k->ms / 1000);
		secs = -1;
		assert_int_equal(kura_time_parse_amz(amz, strlen(amz), &secs),
				 KURA_OK);
		assert_int_equal(secs, k->ms / 1000);
	}
	/* Before the epoch, milliseconds round towards the past. */
	char iso[KURA_TIME_ISO8601_LEN];
	kura_time_iso8601(-1, iso);
	assert_string_equal(iso, "1969-12-31T23:59:59.999Z");
	kura_time_iso8601(-1000, iso);
	assert_string_equal(iso, "1969-12-31T23:59:59.000Z");
}

static void test_time_round_trip(void **state)
{
	(void)state;
	/* A deterministic spread of instants from 1970 to 9999. */
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t secs = (int64_t)(x % 253402300800u);
		char iso[KURA_TIME_ISO8601_LEN];
		char http[KURA_TIME_HTTP_LEN];
		char amz[KURA_TIME_AMZ_LEN];
		int64_t ms = secs * 1000 + (int64_t)(x % 1000);
		kura_time_iso8601(ms, iso);
		kura_time_http(ms, http);
		kura_time_amz(ms, amz);
		int64_t a = -1, b = -1, c = -1;
		assert_int_equal(kura_time_parse_iso8601(iso, strlen(iso), &a),
				 KURA_OK);
		assert_int_equal(kura_time_parse_http(http, strlen(http), &b),
				 KURA_OK);
		assert_int_equal(kura_time_parse_amz(amz, strlen(amz), &c),
				 KURA_OK);
		if (a != secs || b != secs || c != secs)
			fail_msg(
				"round trip of %lld: %s %s %s -> %lld %lld %lld",
				(long long)secs, iso, http, amz, (long long)a,
				(long long)b, (long long)c);
	}
}

static void test_time_parse_http_forms(void **state)
{
	(void)state;
	/* RFC 7231 §7.1.1.1: the three forms of the same instant. */
	static const char *const same[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
	};
	for (size_t i = 0; i < ARRAY_LEN(same); i++) {
		int64_t secs = -1;
		enum kura_err rc =
			kura_time_parse_http(same[i], strlen(same[i]), &secs);
		if (rc != KURA_OK || secs != 784111777)
			fail_msg("'%s': %s %lld", same[i], kura_errname(rc),
				 (long long)secs);
	}
	int64_t secs = 0;
	assert_int_equal(
		kura_time_parse_http("Wednesday, 10-Nov-99 23:12:40 GMT", 33,
				     &secs),
		KURA_OK);
	assert_int_equal(secs, 942275560);
	assert_int_equal(kura_time_parse_http("Thu Feb 29 12:00:00 2024", 24,
					      &secs),
			 KURA_OK);
	assert_int_equal(secs, 1709208000);
	/* RFC 850 two-digit years below 70 are in the 2000s. */
	assert_int_equal(kura_time_parse_http("Monday, 01-Jan-24 00:00:00 GMT",
					      30, &secs),
			 KURA_OK);
	assert_int_equal(secs, 1704067200);
}

static void test_time_parse_invalid(void **state)
{
	(void)state;
	static const char *const bad_amz[] = {
		"",
		"20260231T000000Z", /* 31 Feb */
		"20260230T000000Z", /* 30 Feb */
		"20250229T000000Z", /* not a leap year */
		"21000229T000000Z", /* century, not a leap year */
		"20260431T000000Z", /* 31 Apr */
		"20261301T000000Z", /* month 13 */
		"20260001T000000Z", /* month 0 */
		"20260100T000000Z", /* day 0 */
		"20260101T240000Z", /* hour 24 */
		"20260101T006000Z", /* minute 60 */
		"20260101T000061Z", /* second 61 */
		"20260101T000000",  /* no Z */
		"20260101t000000Z",
		"20260101T000000z",
		"20260101 000000Z",
		"2026011T000000ZZ",
		"20260101T00000Z",
		"20260101T0000000Z",
		"2026-01-01T000000Z",
		"2026010aT000000Z",
		"+0260101T000000Z",
		"19691231T235959Z", /* before the epoch */
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_amz); i++) {
		int64_t secs = 4242;
		if (kura_time_parse_amz(bad_amz[i], strlen(bad_amz[i]),
					&secs) != KURA_EINVAL)
			fail_msg("amz '%s' accepted", bad_amz[i]);
		assert_int_equal(secs, 4242);
	}
	static const char *const bad_http[] = {
		"",
		"Sun, 31 Feb 2026 08:49:37 GMT",
		"Sun, 29 Feb 2023 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37 gmt",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"Sun, 06 nov 1994 08:49:37 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Sun, 06 Nov 1994 25:49:37 GMT",
		"Sun, 06 Nov 1994 08:60:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT ",
		" Sun, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08-49-37 GMT",
		"Sun, 0x Nov 1994 08:49:37 GMT",
		"Sunday, 31-Feb-94 08:49:37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 UTC",
		"Sunday 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 94",
		"Sun Nov 31 08:49:37 1994",
		"Sun Nov  6 08:49:37 1994 ",
		"Sun Xyz  6 08:49:37 1994",
		"1994-11-06T08:49:37Z",
		"784111777",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_http); i++) {
		int64_t secs = 4242;
		if (kura_time_parse_http(bad_http[i], strlen(bad_http[i]),
					 &secs) != KURA_EINVAL)
			fail_msg("http '%s' accepted", bad_http[i]);
		assert_int_equal(secs, 4242);
	}
	static const char *const bad_iso[] = {
		"",
		"2026-02-31T00:00:00Z",
		"2026-02-29T00:00:00.000Z",
		"2026-11-22T02:36:27",
		"2026-11-22T02:36:27.Z",
		"2026-11-22T02:36:27.1234567890Z",
		"2026-11-22T02:36:27,123Z",
		"2026-11-22 02:36:27Z",
		"2026-11-22T02:36:27+00:00",
		"2026-11-22T02:36:27.12aZ",
		"2026-11-22T24:00:00Z",
		"2026-13-22T02:36:27Z",
		"26-11-22T02:36:27Z",
		"2026-11-2T02:36:27.1Z",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_iso); i++) {
		int64_t secs = 4242;
		if (kura_time_parse_iso8601(bad_iso[i], strlen(bad_iso[i]),
					    &secs) != KURA_EINVAL)
			fail_msg("iso '%s' accepted", bad_iso[i]);
		assert_int_equal(secs, 4242);
	}
	/* Fractions of 1 to 9 digits are accepted and truncated. */
	int64_t secs = 0;
	assert_int_equal(kura_time_parse_iso8601("2026-11-22T02:36:27.1Z", 22,
						 &secs),
			 KURA_OK);
	assert_int_equal(secs, 1795314987);
	assert_int_equal(kura_time_parse_iso8601(
				 "2026-11-22T02:36:27.999999999Z", 30, &secs),
			 KURA_OK);
	assert_int_equal(secs, 1795314987);
	/* A leap second is accepted and clamped. */
	assert_int_equal(kura_time_parse_amz("20161231T235960Z", 16, &secs),
			 KURA_OK);
	assert_int_equal(secs, 1483228799);
	/* The length bounds the input: a valid string cut short fails. */
	assert_int_equal(kura_time_parse_amz("20261122T023627Z", 15, &secs),
			 KURA_EINVAL);
}

static void test_clocks(void **state)
{
	(void)state;
	int64_t now = kura_now_ms();
	/* Sometime after 2024 and before 2200. */
	assert_true(now > 1704067200000);
	assert_true(now < 7258118400000);
	uint64_t a = kura_mono_ns();
	uint64_t b = kura_mono_ns();
	assert_true(b >= a);
}

/* ------------------------------------------------------------------ */
/* parse                                                               */

static void test_parse_u64(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t max;
		enum kura_err rc;
		uint64_t v;
	} v[] = {
		{ "0", UINT64_MAX, KURA_OK, 0 },
		{ "7", UINT64_MAX, KURA_OK, 7 },
		{ "0042", UINT64_MAX, KURA_OK, 42 },
		{ "18446744073709551615", UINT64_MAX, KURA_OK, UINT64_MAX },
		{ "18446744073709551616", UINT64_MAX, KURA_ETOOBIG, 0 },
		{ "18446744073709551620", UINT64_MAX, KURA_ETOOBIG, 0 },
		{ "99999999999999999999", UINT64_MAX, KURA_ETOOBIG, 0 },
		{ "65535", 65535, KURA_OK, 65535 },
		{ "65536", 65535, KURA_ETOOBIG, 0 },
		{ "1", 0, KURA_ETOOBIG, 0 },
		{ "0", 0, KURA_OK, 0 },
		{ "", UINT64_MAX, KURA_EINVAL, 0 },
		{ "-1", UINT64_MAX, KURA_EINVAL, 0 },
		{ "+1", UINT64_MAX, KURA_EINVAL, 0 },
		{ " 1", UINT64_MAX, KURA_EINVAL, 0 },
		{ "1 ", UINT64_MAX, KURA_EINVAL, 0 },
		{ "1a", UINT64_MAX, KURA_EINVAL, 0 },
		{ "0x10", UINT64_MAX, KURA_EINVAL, 0 },
		{ "1.5", UINT64_MAX, KURA_EINVAL, 0 },
		{ "1e3", UINT64_MAX, KURA_EINVAL, 0 },
		{ "１", UINT64_MAX, KURA_EINVAL, 0 }, /* fullwidth digit */
		{ "123456789012345678901", UINT64_MAX, KURA_EINVAL, 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		uint64_t out = 0xdeadbeef;
		enum kura_err rc =
			kura_parse_u64(v[i].s, strlen(v[i].s), v[i].max, &out);
		if (rc != v[i].rc)
			fail_msg("parse_u64('%s'): %s, want %s", v[i].s,
				 kura_errname(rc), kura_errname(v[i].rc));
		if (rc == KURA_OK)
			assert_int_equal(out, v[i].v);
		else
			assert_int_equal(out, 0xdeadbeef);
	}
	/* The length is honoured: digits after n are not read. */
	uint64_t out = 0;
	assert_int_equal(kura_parse_u64("12345", 3, UINT64_MAX, &out), KURA_OK);
	assert_int_equal(out, 123);
	assert_int_equal(kura_parse_u64("12\0"
					"5",
					4, UINT64_MAX, &out),
			 KURA_EINVAL);
}

static void test_parse_hex_u64(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		enum kura_err rc;
		uint64_t v;
	} v[] = {
		{ "0", KURA_OK, 0 },
		{ "a", KURA_OK, 10 },
		{ "F", KURA_OK, 15 },
		{ "10000", KURA_OK, 0x10000 },
		{ "DeadBeef", KURA_OK, 0xdeadbeef },
		{ "ffffffffffffffff", KURA_OK, UINT64_MAX },
		{ "0000000000000001", KURA_OK, 1 },
		{ "10000000000000000", KURA_EINVAL, 0 }, /* 17 digits */
		{ "", KURA_EINVAL, 0 },
		{ "0x1", KURA_EINVAL, 0 },
		{ "g", KURA_EINVAL, 0 },
		{ "-1", KURA_EINVAL, 0 },
		{ " 1", KURA_EINVAL, 0 },
		{ "1;", KURA_EINVAL, 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		uint64_t out = 0xdeadbeef;
		enum kura_err rc =
			kura_parse_hex_u64(v[i].s, strlen(v[i].s), &out);
		if (rc != v[i].rc)
			fail_msg("parse_hex_u64('%s'): %s", v[i].s,
				 kura_errname(rc));
		assert_int_equal(out, rc == KURA_OK ? v[i].v : 0xdeadbeef);
	}
}

static void test_parse_size(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		enum kura_err rc;
		uint64_t v;
	} v[] = {
		{ "0", KURA_OK, 0 },
		{ "512", KURA_OK, 512 },
		{ "1K", KURA_OK, 1024 },
		{ "1k", KURA_OK, 1024 },
		{ "16K", KURA_OK, 16384 },
		{ "256K", KURA_OK, 262144 },
		{ "1M", KURA_OK, 1048576 },
		{ "5G", KURA_OK, 5368709120u },
		{ "2t", KURA_OK, 2199023255552u },
		{ "0G", KURA_OK, 0 },
		{ "16777215T", KURA_OK, (uint64_t)16777215 << 40 },
		{ "16777216T", KURA_ETOOBIG, 0 },
		{ "17179869184G", KURA_ETOOBIG, 0 },
		{ "18446744073709551615", KURA_OK, UINT64_MAX },
		{ "18446744073709551616", KURA_ETOOBIG, 0 },
		{ "", KURA_EINVAL, 0 },
		{ "K", KURA_EINVAL, 0 },
		{ "1KB", KURA_EINVAL, 0 },
		{ "1KiB", KURA_EINVAL, 0 },
		{ "1P", KURA_EINVAL, 0 },
		{ "1 K", KURA_EINVAL, 0 },
		{ "-1K", KURA_EINVAL, 0 },
		{ "1.5G", KURA_EINVAL, 0 },
		{ "KK", KURA_EINVAL, 0 },
		{ "1KK", KURA_EINVAL, 0 },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		uint64_t out = 0xdeadbeef;
		enum kura_err rc = kura_parse_size(v[i].s, &out);
		if (rc != v[i].rc)
			fail_msg("parse_size('%s'): %s, want %s", v[i].s,
				 kura_errname(rc), kura_errname(v[i].rc));
		assert_int_equal(out, rc == KURA_OK ? v[i].v : 0xdeadbeef);
	}
}

/* ------------------------------------------------------------------ */
/* box                                                                 */

static struct kura_secret *test_key(uint8_t fill)
{
	uint8_t raw[KURA_AES256_KEY_LEN];
	memset(raw, fill, sizeof(raw));
	struct kura_secret *k = kura_secret_from(raw, sizeof(raw));
	assert_non_null(k);
	return k;
}

static void test_box_round_trip(void **state)
{
	(void)state;
	struct kura_secret *key = test_key(0x11);
	struct kura_error err = { 0 };
	const uint8_t aad[] = "tenant=t1/bucket=b1";
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 32, 1000, 65536 };
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		size_t n = sizes[i];
		uint8_t *plain = malloc(n + 1);
		uint8_t *sealed = malloc(n + KURA_BOX_OVERHEAD);
		uint8_t *sealed2 = malloc(n + KURA_BOX_OVERHEAD);
		uint8_t *opened = malloc(n + 1);
		assert_non_null(plain);
		assert_non_null(sealed);
		assert_non_null(sealed2);
		assert_non_null(opened);
		for (size_t j = 0; j < n; j++)
			plain[j] = (uint8_t)(j * 7 + 3);
		assert_int_equal(kura_box_seal(key, aad, sizeof(aad), plain, n,
					       sealed, &err),
				 KURA_OK);
		assert_int_equal(kura_box_seal(key, aad, sizeof(aad), plain, n,
					       sealed2, &err),
				 KURA_OK);
		/* Fresh nonces: sealing twice gives different output. */
		assert_memory_not_equal(sealed, sealed2, KURA_BOX_NONCE_LEN);
		if (n >= 16)
			assert_memory_not_equal(sealed + KURA_BOX_NONCE_LEN,
						plain, 16);
		assert_int_equal(kura_box_open(key, aad, sizeof(aad), sealed,
					       n + KURA_BOX_OVERHEAD, opened,
					       &err),
				 KURA_OK);
		if (n)
			assert_memory_equal(opened, plain, n);
		assert_int_equal(kura_box_open(key, aad, sizeof(aad), sealed2,
					       n + KURA_BOX_OVERHEAD, opened,
					       &err),
				 KURA_OK);
		if (n)
			assert_memory_equal(opened, plain, n);
		free(plain);
		free(sealed);
		free(sealed2);
		free(opened);
	}
	/* No additional data at all. */
	uint8_t sealed[5 + KURA_BOX_OVERHEAD], opened[5];
	assert_int_equal(kura_box_seal(key, NULL, 0, (const uint8_t *)"hello",
				       5, sealed, &err),
			 KURA_OK);
	assert_int_equal(kura_box_open(key, NULL, 0, sealed, sizeof(sealed),
				       opened, &err),
			 KURA_OK);
	assert_memory_equal(opened, "hello", 5);
	assert_int_equal(err.code, KURA_OK);
	kura_secret_free(key);
}

static void test_box_tamper(void **state)
{
	(void)state;
	struct kura_secret *key = test_key(0x22);
	struct kura_secret *other = test_key(0x23);
	struct kura_error err = { 0 };
	const uint8_t aad[] = "object-id-1";
	const uint8_t plain[] = "a data key of thirty-two bytes!!";
	enum {
		N = sizeof(plain) - 1,
		S = N + KURA_BOX_OVERHEAD
	};
	uint8_t sealed[S], bad[S], out[N];
	assert_int_equal(kura_box_seal(key, aad, sizeof(aad) - 1, plain, N,
				       sealed, &err),
			 KURA_OK);
	/* Flipping any bit of any byte (nonce, ciphertext or tag) fails. */
	for (size_t i = 0; i < S; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(bad, sealed, S);
			bad[i] ^= (uint8_t)(1u << bit);
			memset(out, 0x77, sizeof(out));
			kura_error_clear(&err);
			enum kura_err rc = kura_box_open(
				key, aad, sizeof(aad) - 1, bad, S, out, &err);
			if (rc != KURA_EINTEGRITY)
				fail_msg("tampered byte %zu bit %d: %s", i, bit,
					 kura_errname(rc));
			/* Unauthenticated plaintext never escapes. */
			for (size_t j = 0; j < N; j++)
				if (out[j] == plain[j] && out[j] != 0)
					fail_msg("byte %zu of plaintext leaked",
						 j);
		}
	}
	/* Wrong additional data: different, shorter, longer, absent. */
	kura_error_clear(&err);
	assert_int_equal(kura_box_open(key, (const uint8_t *)"object-id-2", 11,
				       sealed, S, out, &err),
			 KURA_EINTEGRITY);
	assert_int_equal(err.code, KURA_EINTEGRITY);
	assert_int_equal(kura_box_open(key, aad, sizeof(aad) - 2, sealed, S,
				       out, NULL),
			 KURA_EINTEGRITY);
	assert_int_equal(kura_box_open(key, aad, sizeof(aad), sealed, S, out,
				       NULL),
			 KURA_EINTEGRITY);
	assert_int_equal(kura_box_open(key, NULL, 0, sealed, S, out, NULL),
			 KURA_EINTEGRITY);
	/* Wrong key of the right length. */
	assert_int_equal(kura_box_open(other, aad, sizeof(aad) - 1, sealed, S,
				       out, NULL),
			 KURA_EINTEGRITY);
	/* Truncated and extended input. */
	assert_int_equal(kura_box_open(key, aad, sizeof(aad) - 1, sealed, S - 1,
				       out, NULL),
			 KURA_EINTEGRITY);
	assert_int_equal(kura_box_open(key, aad, sizeof(aad) - 1, sealed,
				       KURA_BOX_OVERHEAD - 1, out, NULL),
			 KURA_EINTEGRITY);
	assert_int_equal(kura_box_open(key, aad, sizeof(aad) - 1, sealed, 0,
				       out, NULL),
			 KURA_EINTEGRITY);
	/* The untouched value still opens. */
	assert_int_equal(kura_box_open(key, aad, sizeof(aad) - 1, sealed, S,
				       out, NULL),
			 KURA_OK);
	assert_memory_equal(out, plain, N);
	kura_secret_free(key);
	kura_secret_free(other);
}

static void test_box_key_length(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	uint8_t sealed[4 + KURA_BOX_OVERHEAD], out[4];
	static const size_t lens[] = { 1, 16, 24, 31, 33, 64 };
	for (size_t i = 0; i < ARRAY_LEN(lens); i++) {
		struct kura_secret *k = kura_secret_new(lens[i]);
		assert_non_null(k);
		kura_error_clear(&err);
		assert_int_equal(kura_box_seal(k, NULL, 0,
					       (const uint8_t *)"abcd", 4,
					       sealed, &err),
				 KURA_EINVAL);
		assert_int_equal(err.code, KURA_EINVAL);
		assert_true(strlen(err.msg) > 0);
		assert_int_equal(kura_box_open(k, NULL, 0, sealed,
					       sizeof(sealed), out, NULL),
				 KURA_EINVAL);
		kura_secret_free(k);
	}
	assert_int_equal(kura_box_seal(NULL, NULL, 0, (const uint8_t *)"abcd",
				       4, sealed, NULL),
			 KURA_EINVAL);
}

static void test_box_open_secret(void **state)
{
	(void)state;
	struct kura_secret *kek = test_key(0x33);
	struct kura_secret *dek = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_secret_random(32, &dek, &err), KURA_OK);
	uint8_t sealed[32 + KURA_BOX_OVERHEAD];
	assert_int_equal(kura_box_seal(kek, (const uint8_t *)"dek", 3,
				       dek->data, dek->len, sealed, &err),
			 KURA_OK);
	struct kura_secret *back = NULL;
	assert_int_equal(kura_box_open_secret(kek, (const uint8_t *)"dek", 3,
					      sealed, sizeof(sealed), &back,
					      &err),
			 KURA_OK);
	assert_non_null(back);
	assert_int_equal(back->len, 32);
	assert_memory_equal(back->data, dek->data, 32);
	kura_secret_free(back);

	struct kura_secret *untouched = (struct kura_secret *)0x1;
	sealed[20] ^= 1;
	assert_int_equal(kura_box_open_secret(kek, (const uint8_t *)"dek", 3,
					      sealed, sizeof(sealed),
					      &untouched, NULL),
			 KURA_EINTEGRITY);
	assert_ptr_equal(untouched, (struct kura_secret *)0x1);
	/* An empty or oversized sealed key is refused. */
	assert_int_equal(kura_box_open_secret(kek, NULL, 0, sealed,
					      KURA_BOX_OVERHEAD, &untouched,
					      NULL),
			 KURA_EINTEGRITY);
	assert_ptr_equal(untouched, (struct kura_secret *)0x1);
	kura_secret_free(dek);
	kura_secret_free(kek);
}

/* ------------------------------------------------------------------ */
/* config                                                              */

/* The section to set a table key in: "backend.*" names every
 * [backend.NAME]; use one. */
static const char *set_section(const char *table, char *buf, size_t cap)
{
	size_t n = strlen(table);
	if (n < 2 || strcmp(table + n - 2, ".*") != 0)
		snprintf(buf, cap, "%s", table);
	else
		snprintf(buf, cap, "%.*sx", (int)(n - 1), table);
	return buf;
}

static void test_config_defaults(void **state)
{
	(void)state;
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_new(&cfg, &err), KURA_OK);
	assert_non_null(cfg);
	assert_string_equal(kura_config_get(cfg, "server", "listen"),
			    "127.0.0.1:9000");
	assert_string_equal(kura_config_get(cfg, "server", "data_dir"),
			    "./var");
	assert_string_equal(kura_config_get(cfg, "server", "region"),
			    "us-east-1");
	assert_false(kura_config_is_set(cfg, "server", "listen"));
	assert_null(kura_config_get(cfg, "server", "tls_cert"));
	assert_int_equal(kura_config_get_u64(cfg, "limits", "max_object_size"),
			 (uint64_t)5 << 30);
	assert_int_equal(kura_config_get_u64(cfg, "limits", "max_header_bytes"),
			 16384);
	assert_int_equal(kura_config_get_u64(cfg, "limits", "clock_skew"), 900);
	assert_int_equal(kura_config_get_u64(cfg, "server", "tls_cert"), 0);

	/* Every default in the table is valid for its own type, and the
	 * table has no duplicate (section, key). */
	const struct kura_config_key *keys = kura_config_keys();
	size_t n = 0;
	for (const struct kura_config_key *k = keys; k->section; k++, n++) {
		assert_non_null(k->key);
		assert_non_null(k->description);
		assert_true(strlen(k->description) > 0);
		for (const struct kura_config_key *j = keys; j < k; j++)
			if (strcmp(j->section, k->section) == 0 &&
			    strcmp(j->key, k->key) == 0)
				fail_msg("duplicate key [%s] %s", k->section,
					 k->key);
		if (k->default_value == NULL)
			continue;
		struct kura_config *tmp = NULL;
		assert_int_equal(kura_config_new(&tmp, NULL), KURA_OK);
		kura_error_clear(&err);
		char sec[64];
		if (kura_config_set(tmp, set_section(k->section, sec, 64),
				    k->key, k->default_value, &err) != KURA_OK)
			fail_msg("default of [%s] %s is invalid: %s",
				 k->section, k->key, err.msg);
		kura_config_free(tmp);
	}
	assert_true(n >= 10);
	kura_config_free(cfg);
	kura_config_free(NULL);
}

static void test_config_set_get(void **state)
{
	(void)state;
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_new(&cfg, &err), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "server", "listen", "[::1]:9100",
					 &err),
			 KURA_OK);
	assert_string_equal(kura_config_get(cfg, "server", "listen"),
			    "[::1]:9100");
	assert_true(kura_config_is_set(cfg, "server", "listen"));
	assert_int_equal(kura_config_set(cfg, "server", "listen", "10.0.0.1:80",
					 &err),
			 KURA_OK);
	assert_string_equal(kura_config_get(cfg, "server", "listen"),
			    "10.0.0.1:80");
	assert_int_equal(kura_config_set(cfg, "limits", "max_object_size", "1M",
					 &err),
			 KURA_OK);
	assert_int_equal(kura_config_get_u64(cfg, "limits", "max_object_size"),
			 1048576);
	assert_int_equal(kura_config_set(cfg, "limits", "clock_skew", "60",
					 &err),
			 KURA_OK);
	assert_int_equal(kura_config_get_u64(cfg, "limits", "clock_skew"), 60);
	assert_int_equal(kura_config_set(cfg, "server", "tls_cert",
					 "/etc/kura/cert.pem", &err),
			 KURA_OK);
	assert_string_equal(kura_config_get(cfg, "server", "tls_cert"),
			    "/etc/kura/cert.pem");
	/* The value is copied, not borrowed. */
	char mutable[] = "eu-west-1";
	assert_int_equal(kura_config_set(cfg, "server", "region", mutable,
					 &err),
			 KURA_OK);
	mutable[0] = 'X';
	assert_string_equal(kura_config_get(cfg, "server", "region"),
			    "eu-west-1");
	assert_int_equal(err.code, KURA_OK);

	/* Unknown key or section. */
	assert_int_equal(kura_config_set(cfg, "server", "no_such_key", "1",
					 &err),
			 KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "no_such_key"));
	kura_error_clear(&err);
	assert_int_equal(kura_config_set(cfg, "nosection", "listen",
					 "127.0.0.1:1", &err),
			 KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "nosection"));
	kura_error_clear(&err);
	/* Keys are case-sensitive. */
	assert_int_equal(kura_config_set(cfg, "Server", "Listen", "127.0.0.1:1",
					 &err),
			 KURA_ECONFIG);
	/* A refused value leaves the old one in place. */
	assert_int_equal(kura_config_set(cfg, "limits", "clock_skew", "soon",
					 NULL),
			 KURA_ECONFIG);
	assert_int_equal(kura_config_get_u64(cfg, "limits", "clock_skew"), 60);
	kura_config_free(cfg);
}

/* For each type, values that must be refused and one that must be
 * accepted; applied to every key of that type in the table. */
static void test_config_bad_values(void **state)
{
	(void)state;
	static const char *const bad_u64[] = { "",    "-1",
					       "1.5", "ten",
					       "1K",  "0x10",
					       " 1",  "18446744073709551616" };
	static const char *const bad_size[] = {
		"", "-1", "1.5G", "1KB", "K", "1P", "big", "16777216T"
	};
	static const char *const bad_bool[] = { "",    "2", "maybe",
						"tru", "y", "onn" };
	static const char *const bad_addr[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		":9000",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:port",
		"[::1]",
		"[::1]9000",
		"[::1:9000",
		"[]:9000",
		"127.0.0.1:-1",
		"127.0.0.1: 80",
	};
	static const char *const bad_string[] = { "a\nb", "tab\there", "\r",
						  "bell\a" };
	static const struct {
		enum kura_config_type type;
		const char *const *bad;
		size_t nbad;
		const char *good;
	} types[] = {
		{ KURA_CFG_U64, bad_u64, ARRAY_LEN(bad_u64), "123" },
		{ KURA_CFG_SIZE, bad_size, ARRAY_LEN(bad_size), "64K" },
		{ KURA_CFG_BOOL, bad_bool, ARRAY_LEN(bad_bool), "yes" },
		{ KURA_CFG_ADDR, bad_addr, ARRAY_LEN(bad_addr),
		  "[fe80::1]:443" },
		{ KURA_CFG_STRING, bad_string, ARRAY_LEN(bad_string),
		  "/var/lib/kura data" },
	};
	int checked = 0;
	for (const struct kura_config_key *k = kura_config_keys(); k->section;
	     k++) {
		for (size_t t = 0; t < ARRAY_LEN(types); t++) {
			if (types[t].type != k->type)
				continue;
			struct kura_config *cfg = NULL;
			assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
			for (size_t i = 0; i < types[t].nbad; i++) {
				struct kura_error err = { 0 };
				char sec[64];
				enum kura_err rc = kura_config_set(
					cfg, set_section(k->section, sec, 64),
					k->key, types[t].bad[i], &err);
				if (rc != KURA_ECONFIG)
					fail_msg("[%s] %s accepted '%s'",
						 k->section, k->key,
						 types[t].bad[i]);
				/* The message names the key. */
				if (strstr(err.msg, k->key) == NULL)
					fail_msg(
						"message '%s' does not name %s",
						err.msg, k->key);
				assert_false(
					kura_config_is_set(cfg, sec, k->key));
				checked++;
			}
			struct kura_error err = { 0 };
			char sec[64];
			set_section(k->section, sec, 64);
			enum kura_err set = kura_config_set(
				cfg, sec, k->key, types[t].good, &err);
			/* A key whose bounds exclude the sample value. */
			if (set != KURA_OK && strstr(err.msg, "out of range")) {
				kura_config_free(cfg);
				continue;
			}
			if (set != KURA_OK)
				fail_msg("[%s] %s refused '%s': %s", k->section,
					 k->key, types[t].good, err.msg);
			if (k->type == KURA_CFG_BOOL)
				assert_true(
					kura_config_get_bool(cfg, sec, k->key));
			kura_config_free(cfg);
		}
	}
	assert_true(checked > 20);
}

static void test_config_named_sections(void **state)
{
	(void)state;
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "backend.virginia", "endpoint",
					 "https://s3.example.net", &err),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "backend.tokyo", "path",
					 "/srv/kura-tokyo", &err),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "backend.virginia", "part_size",
					 "8M", &err),
			 KURA_OK);
	assert_string_equal(kura_config_get(cfg, "backend.virginia",
					    "endpoint"),
			    "https://s3.example.net");
	assert_null(kura_config_get(cfg, "backend.tokyo", "endpoint"));
	assert_string_equal(kura_config_get(cfg, "backend.tokyo", "path"),
			    "/srv/kura-tokyo");
	assert_int_equal(kura_config_get_u64(cfg, "backend.virginia",
					     "part_size"),
			 8u << 20);
	assert_int_equal(kura_config_get_u64(cfg, "backend.tokyo", "part_size"),
			 16u << 20);
	assert_true(kura_config_is_set(cfg, "backend.tokyo", "path"));
	assert_false(kura_config_is_set(cfg, "backend.other", "path"));
	assert_string_equal(kura_config_get(cfg, "backend.other", "prefix"),
			    "");
	const char *names[4];
	assert_int_equal(kura_config_names(cfg, "backend", names, 4), 2);
	assert_string_equal(names[0], "virginia");
	assert_string_equal(names[1], "tokyo");
	assert_int_equal(kura_config_names(cfg, "backend", names, 1), 2);
	assert_int_equal(kura_config_names(cfg, "placement", names, 4), 0);
	assert_int_equal(kura_config_set(cfg, "backend.Bad", "path", "/x",
					 &err),
			 KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "section [backend.Bad]: a name"));
	assert_int_equal(kura_config_set(cfg, "backend.", "path", "/x", NULL),
			 KURA_ECONFIG);
	assert_int_equal(kura_config_set(cfg, "backend.virginia", "part_size",
					 "1M", NULL),
			 KURA_ECONFIG);
	kura_config_free(cfg);
}

static void test_config_load(void **state)
{
	(void)state;
	char dir[PATH_MAX], path[PATH_MAX + 32];
	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/kura.ini", dir);

	write_text(path, "; comment\n"
			 "# another comment\n"
			 "[server]\n"
			 "listen = 127.0.0.1:9443\n"
			 "data_dir=/srv/kura\n"
			 "\n"
			 "[limits]\n"
			 "max_object_size = 100M\n"
			 "clock_skew = 300 ; inline comment\n");
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_new(&cfg, &err), KURA_OK);
	if (kura_config_load(cfg, path, &err) != KURA_OK)
		fail_msg("load: %s", err.msg);
	assert_string_equal(kura_config_get(cfg, "server", "listen"),
			    "127.0.0.1:9443");
	assert_string_equal(kura_config_get(cfg, "server", "data_dir"),
			    "/srv/kura");
	assert_int_equal(kura_config_get_u64(cfg, "limits", "max_object_size"),
			 100u << 20);
	assert_int_equal(kura_config_get_u64(cfg, "limits", "clock_skew"), 300);
	/* Keys not in the file keep their defaults. */
	assert_string_equal(kura_config_get(cfg, "server", "region"),
			    "us-east-1");
	assert_false(kura_config_is_set(cfg, "server", "region"));
	/* A later override wins over the file. */
	assert_int_equal(kura_config_set(cfg, "server", "listen", "127.0.0.1:1",
					 &err),
			 KURA_OK);
	assert_string_equal(kura_config_get(cfg, "server", "listen"),
			    "127.0.0.1:1");
	kura_config_free(cfg);

	/* A syntax error: the message names the file and the line. */
	write_text(path, "[server]\n"
			 "region = x\n"
			 "this line has no equals sign\n"
			 "listen = 127.0.0.1:1\n");
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_config_load(cfg, path, &err), KURA_ECONFIG);
	assert_int_equal(err.code, KURA_ECONFIG);
	if (strstr(err.msg, path) == NULL || strstr(err.msg, ":3") == NULL)
		fail_msg("syntax error message '%s' lacks file:line", err.msg);
	kura_config_free(cfg);

	/* A bad value: file, line, section and key are named. */
	write_text(path, "[server]\n"
			 "region = x\n"
			 "\n"
			 "[limits]\n"
			 "max_object_size = lots\n");
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_config_load(cfg, path, &err), KURA_ECONFIG);
	if (strstr(err.msg, path) == NULL || strstr(err.msg, ":5") == NULL ||
	    strstr(err.msg, "limits") == NULL ||
	    strstr(err.msg, "max_object_size") == NULL ||
	    strstr(err.msg, "lots") == NULL)
		fail_msg("bad value message '%s' lacks file:line/section/key",
			 err.msg);
	kura_config_free(cfg);

	/* An unknown key. */
	write_text(path,
		   "[server]\nlisten = 127.0.0.1:9000\nlisten_port = 9\n");
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_config_load(cfg, path, &err), KURA_ECONFIG);
	if (strstr(err.msg, ":3") == NULL ||
	    strstr(err.msg, "listen_port") == NULL)
		fail_msg("unknown key message '%s'", err.msg);
	kura_config_free(cfg);

	/* A key outside any section is unknown too. */
	write_text(path, "listen = 127.0.0.1:9000\n");
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_config_load(cfg, path, &err), KURA_ECONFIG);
	assert_non_null(strstr(err.msg, ":1"));
	kura_config_free(cfg);

	/* A missing file. */
	snprintf(path, sizeof(path), "%s/missing.ini", dir);
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_config_load(cfg, path, &err), KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "missing.ini"));
	kura_config_free(cfg);
	rm_rf(dir);
}

/* A load error names file and line and says in words what is wrong; the
 * first bad line wins, whichever kind of problem it has. */
static void test_config_errors_in_words(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *want[3];
	} cases[] = {
		{ "[server\nregion = x\n",
		  { ":1:", "section header '[server' has no closing ']'",
		    NULL } },
		{ "[server]\nregion = x\njust words\n",
		  { ":3:", "'just words' is neither a [section] header",
		    NULL } },
		{ "region = x\n", { ":1:", "outside any [section]", NULL } },
		{ "[server]\nmax_connections = 0\n",
		  { ":2:", "max_connections", "out of range (1 to 100000)" } },
		{ "[limits]\nmax_header_bytes = 2M\n",
		  { ":2:", "max_header_bytes", "(1K to 1M)" } },
		{ "[storage]\nbackground_interval = 3601\n[server\n",
		  { ":2:", "background_interval", NULL } },
		{ "[server\n[storage]\nbackground_interval = 0\n",
		  { ":1:", "'[server'", NULL } },
	};
	char dir[PATH_MAX], path[PATH_MAX + 32];
	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/kura.ini", dir);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct kura_config *cfg = NULL;
		struct kura_error err = { 0 };
		write_text(path, cases[i].text);
		assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
		assert_int_equal(kura_config_load(cfg, path, &err),
				 KURA_ECONFIG);
		if (strstr(err.msg, path) == NULL)
			fail_msg("case %zu: '%s' does not name the file", i,
				 err.msg);
		for (size_t w = 0; w < 3 && cases[i].want[w]; w++)
			if (strstr(err.msg, cases[i].want[w]) == NULL)
				fail_msg("case %zu: '%s' lacks '%s'", i,
					 err.msg, cases[i].want[w]);
		kura_config_free(cfg);
	}

	/* inih reads a line into a fixed buffer: a longer one would be cut
	 * into pieces (a value silently shortened), so it is refused. */
	char longline[1024];
	snprintf(longline, sizeof(longline),
		 "[keys]\nmaster_key_file = /%0600d\n", 0);
	write_text(path, longline);
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_load(cfg, path, &err), KURA_ECONFIG);
	if (strstr(err.msg, ":2:") == NULL ||
	    strstr(err.msg, "longer than") == NULL)
		fail_msg("long line: '%s'", err.msg);
	assert_false(kura_config_is_set(cfg, "keys", "master_key_file"));
	kura_config_free(cfg);

	/* Bounds apply to overrides too, and the doc shows them. */
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "bucket_key_ttl", "86401",
					 NULL),
			 KURA_ECONFIG);
	assert_int_equal(kura_config_set(cfg, "keys", "bucket_key_ttl", "0",
					 NULL),
			 KURA_OK);
	kura_config_free(cfg);
	rm_rf(dir);
}

static void test_config_split_addr(void **state)
{
	(void)state;
	static const struct {
		const char *addr, *host;
		uint16_t port;
	} good[] = {
		{ "127.0.0.1:9000", "127.0.0.1", 9000 },
		{ "0.0.0.0:1", "0.0.0.0", 1 },
		{ "localhost:65535", "localhost", 65535 },
		{ "[::1]:9000", "::1", 9000 },
		{ "[::]:443", "::", 443 },
		{ "[2001:db8::17]:8443", "2001:db8::17", 8443 },
		{ "[fe80::1%eth0]:80", "fe80::1%eth0", 80 },
		{ "s3.example.com:80", "s3.example.com", 80 },
	};
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		char host[64];
		uint16_t port = 0;
		struct kura_error err = { 0 };
		if (kura_config_split_addr(good[i].addr, host, sizeof(host),
					   &port, &err) != KURA_OK)
			fail_msg("'%s': %s", good[i].addr, err.msg);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	static const char *const bad[] = {
		"",
		"9000",
		"127.0.0.1",
		"127.0.0.1:",
		":9000",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:99999999999999999999999",
		"127.0.0.1:+80",
		"127.0.0.1:8o",
		"[::1]",
		"[::1]:",
		"[::1]9000",
		"[::1:9000",
		"[]:80",
		"[::1]:0",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char host[64] = "untouched";
		uint16_t port = 7;
		struct kura_error err = { 0 };
		if (kura_config_split_addr(bad[i], host, sizeof(host), &port,
					   &err) != KURA_ECONFIG)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(err.code, KURA_ECONFIG);
		assert_string_equal(host, "untouched");
		assert_int_equal(port, 7);
	}
	/* The host must fit the caller's buffer, NUL included. */
	char small[10] = "untouched";
	uint16_t port = 7;
	assert_int_equal(kura_config_split_addr("127.0.0.1:80", small, 9, &port,
						NULL),
			 KURA_ECONFIG);
	assert_string_equal(small, "untouched");
	assert_int_equal(kura_config_split_addr("127.0.0.1:80", small, 10,
						&port, NULL),
			 KURA_OK);
	assert_string_equal(small, "127.0.0.1");
	assert_int_equal(port, 80);
}

static void test_config_doc(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	kura_config_write_doc(f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(text);
	/* Every key and every section appears. */
	for (const struct kura_config_key *k = kura_config_keys(); k->section;
	     k++) {
		char name[128], section[128];
		snprintf(name, sizeof(name), "`%s`", k->key);
		size_t sl = strlen(k->section);
		bool named = sl >= 2 && strcmp(k->section + sl - 2, ".*") == 0;
		snprintf(section, sizeof(section), "[%.*s%s]",
			 (int)(named ? sl - 1 : sl), k->section,
			 named ? "NAME" : "");
		if (strstr(text, name) == NULL || strstr(text, section) == NULL)
			fail_msg("doc lacks [%s] %s", k->section, k->key);
	}
	free(text);
}

/* ------------------------------------------------------------------ */
/* err                                                                 */

static void test_err_first_wins(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	assert_int_equal(kura_fail(&err, KURA_EIO, "open '%s'", "a.txt"),
			 KURA_EIO);
	assert_int_equal(err.code, KURA_EIO);
	assert_string_equal(err.msg, "open 'a.txt'");
	/* A later failure returns its own code but keeps the first record. */
	assert_int_equal(kura_fail(&err, KURA_ENOMEM, "later"), KURA_ENOMEM);
	assert_int_equal(kura_fail_errno(&err, KURA_EPERM, EACCES, "x"),
			 KURA_EPERM);
	assert_int_equal(kura_fail_openssl(&err, KURA_ECRYPTO, "y"),
			 KURA_ECRYPTO);
	assert_int_equal(err.code, KURA_EIO);
	assert_string_equal(err.msg, "open 'a.txt'");
	kura_error_clear(&err);
	assert_int_equal(err.code, KURA_OK);
	assert_string_equal(err.msg, "");
	assert_int_equal(kura_fail(&err, KURA_ENOENT, "second"), KURA_ENOENT);
	assert_string_equal(err.msg, "second");
	kura_error_clear(NULL);
	/* A NULL carrier is allowed everywhere. */
	assert_int_equal(kura_fail(NULL, KURA_EINVAL, "nobody listens"),
			 KURA_EINVAL);
	assert_int_equal(kura_fail_errno(NULL, KURA_EIO, ENOENT, "x"),
			 KURA_EIO);
	assert_int_equal(kura_fail_openssl(NULL, KURA_ECRYPTO, "x"),
			 KURA_ECRYPTO);
}

static void test_err_messages(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	kura_fail_errno(&err, KURA_ENOENT, ENOENT, "open '%s'", "/nope");
	assert_int_equal(err.code, KURA_ENOENT);
	char want[200];
	snprintf(want, sizeof(want), "open '/nope': %s", strerror(ENOENT));
	assert_string_equal(err.msg, want);

	kura_error_clear(&err);
	kura_fail_openssl(&err, KURA_ECRYPTO, "nothing queued");
	assert_int_equal(err.code, KURA_ECRYPTO);
	assert_true(strncmp(err.msg, "nothing queued: ", 16) == 0);

	/* Overlong messages are truncated and stay terminated. */
	char longmsg[1000];
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	kura_error_clear(&err);
	kura_fail(&err, KURA_EIO, "%s", longmsg);
	assert_int_equal(strlen(err.msg), KURA_ERROR_MSG_MAX - 1);
	kura_error_clear(&err);
	kura_fail_errno(&err, KURA_EIO, EIO, "%s", longmsg);
	assert_int_equal(strlen(err.msg), KURA_ERROR_MSG_MAX - 1);
	kura_error_clear(&err);
	kura_fail_errno(&err, KURA_EIO, EIO, "%s", longmsg + 1000 - 250);
	assert_true(strlen(err.msg) <= KURA_ERROR_MSG_MAX - 1);
}

static void test_err_strerror(void **state)
{
	(void)state;
	static const char *const names[] = {
		"KURA_OK",	  "KURA_EINVAL",     "KURA_ENOMEM",
		"KURA_EIO",	  "KURA_ENOENT",     "KURA_EEXIST",
		"KURA_ECRYPTO",	  "KURA_EINTEGRITY", "KURA_ETOOBIG",
		"KURA_ENOSPC",	  "KURA_EPERM",	     "KURA_EBUSY",
		"KURA_ECONFIG",	  "KURA_EKEY",	     "KURA_EPROTO",
		"KURA_ESTATE",	  "KURA_ENOTEMPTY",  "KURA_EAUTH",
		"KURA_EINTERNAL",
	};
	/* The numbers are an ABI: the first entries never move. */
	assert_true(KURA_ERR_COUNT_ >= ARRAY_LEN(names));
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		assert_string_equal(kura_errname((enum kura_err)i), names[i]);
	assert_int_equal(KURA_OK, 0);
	assert_int_equal(KURA_EIO, 3);
	assert_int_equal(KURA_EINTERNAL, 18);
	assert_string_equal(kura_strerror(KURA_OK), "success");
	assert_string_equal(kura_strerror(KURA_ENOENT), "not found");
	for (int i = 0; i < KURA_ERR_COUNT_; i++) {
		const char *m = kura_strerror((enum kura_err)i);
		const char *n = kura_errname((enum kura_err)i);
		assert_non_null(m);
		assert_non_null(n);
		assert_true(strlen(m) > 0);
		assert_true(strncmp(n, "KURA_", 5) == 0);
		/* Every code has its own message. */
		for (int j = 0; j < i; j++)
			if (strcmp(m, kura_strerror((enum kura_err)j)) == 0)
				fail_msg("codes %d and %d share '%s'", j, i, m);
	}
	assert_non_null(kura_strerror(KURA_ERR_COUNT_));
	/* Out-of-range codes (kept inside the enum's value range so UBSan
	 * does not object to the load) still get a description. */
	assert_string_equal(kura_strerror((enum kura_err)(KURA_ERR_COUNT_ + 3)),
			    "unknown error");
	assert_non_null(kura_errname((enum kura_err)(KURA_ERR_COUNT_ + 3)));
}

static void test_err_from_errno(void **state)
{
	(void)state;
	static const struct {
		int e;
		enum kura_err k;
	} v[] = {
		{ ENOENT, KURA_ENOENT },
		{ ENOTDIR, KURA_ENOENT },
		{ EEXIST, KURA_EEXIST },
		{ ENOSPC, KURA_ENOSPC },
		{ EDQUOT, KURA_ENOSPC },
		{ ENOMEM, KURA_ENOMEM },
		{ EACCES, KURA_EPERM },
		{ EPERM, KURA_EPERM },
		{ EROFS, KURA_EPERM },
		{ EINVAL, KURA_EINVAL },
		{ ENOTEMPTY, KURA_ENOTEMPTY },
		{ EBUSY, KURA_EBUSY },
		{ EAGAIN, KURA_EBUSY },
		{ EFBIG, KURA_ETOOBIG },
		{ ENAMETOOLONG, KURA_ETOOBIG },
		{ EIO, KURA_EIO },
		{ EXDEV, KURA_EIO },
		{ 0, KURA_EIO },
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++)
		if (kura_err_from_errno(v[i].e) != v[i].k)
			fail_msg("errno %d -> %s, want %s", v[i].e,
				 kura_errname(kura_err_from_errno(v[i].e)),
				 kura_errname(v[i].k));
}

/* ------------------------------------------------------------------ */
/* log                                                                 */

static void test_log(void **state)
{
	(void)state;
	assert_int_equal(kura_log_level_parse("debug"), KURA_LOG_DEBUG);
	assert_int_equal(kura_log_level_parse("INFO"), KURA_LOG_INFO);
	assert_int_equal(kura_log_level_parse("warn"), KURA_LOG_WARN);
	assert_int_equal(kura_log_level_parse("error"), KURA_LOG_ERROR);
	assert_int_equal(kura_log_level_parse("verbose"), -1);
	assert_int_equal(kura_log_level_parse(""), -1);

	int fds[2];
	assert_int_equal(pipe(fds), 0);
	enum kura_log_level saved = kura_log_threshold;
	kura_log_set_fd(fds[1]);
	kura_log_threshold = KURA_LOG_INFO;
	kura_debug("r1", "not shown %d", 1);
	kura_info("r2", "object '%s' stored", "a\nFAKE LINE");
	kura_error(NULL, "plain");
	kura_log_set_fd(2);
	kura_log_threshold = saved;
	assert_int_equal(close(fds[1]), 0);
	char out[4096];
	size_t got = 0;
	ssize_t r;
	while ((r = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(fds[0]);
	/* Two lines; the debug one was filtered; the newline in the value
	 * cannot forge a third line. */
	int lines = 0;
	for (size_t i = 0; i < got; i++)
		lines += out[i] == '\n';
	assert_int_equal(lines, 2);
	assert_null(strstr(out, "not shown"));
	assert_non_null(
		strstr(out, " INFO req=r2 object 'a?FAKE LINE' stored\n"));
	assert_non_null(strstr(out, " ERROR req=- plain\n"));
	/* Each line starts with an ISO 8601 timestamp. */
	int64_t secs;
	assert_int_equal(kura_time_parse_iso8601(out, 24, &secs), KURA_OK);
}

/* kura_log_field: bare tokens stay bare; anything else is quoted so that
 * a client's value can never add fields to a line. */
static void test_log_field(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
		{ "my-bucket.2026", 14, "my-bucket.2026" },
		{ "AKIA_~:/@+", 10, "AKIA_~:/@+" },
		{ "", 0, "\"\"" },
		{ "-", 1, "\"-\"" },
		{ "a tenant=7", 10, "\"a tenant=7\"" },
		{ "q\"b\\s", 5, "\"q\\\"b\\\\s\"" },
		{ "\r\n\t\x1b\x7f", 5, "\"\\x0D\\x0A\\x09\\x1B\\x7F\"" },
		{ "\xc3\xa9", 2, "\"\\xC3\\xA9\"" },
		{ "a\0b", 3, "\"a\\x00b\"" },
	};
	char out[KURA_LOG_FIELD_MAX];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(kura_log_field(out, sizeof(out),
						   cases[i].in, cases[i].n),
				    cases[i].want);
	assert_string_equal(kura_log_field(out, sizeof(out), NULL, 0), "-");
	/* Too long: cut inside the quotes, never in the middle of an escape. */
	char small[16];
	assert_string_equal(kura_log_field(small, sizeof(small),
					   "abcdefghijklmnopq", 17),
			    "\"abcdefghij...\"");
	assert_string_equal(kura_log_field(small, sizeof(small),
					   "\x01\x02\x03\x04", 4),
			    "\"\\x01\\x02...\"");
	assert_string_equal(kura_log_field(small, sizeof(small),
					   "abcdefghijklmno", 15),
			    "abcdefghijklmno");
}

/* ------------------------------------------------------------------ */
/* fsutil                                                              */

static void test_fsutil(void **state)
{
	(void)state;
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct kura_error err = { 0 };
	make_tmpdir(dir, sizeof(dir));

	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(kura_mkdirs(path, 0700, &err), KURA_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Idempotent. */
	assert_int_equal(kura_mkdirs(path, 0700, &err), KURA_OK);
	assert_int_equal(kura_fsync_dir(path, &err), KURA_OK);

	snprintf(path, sizeof(path), "%s/a/file", dir);
	assert_int_equal(kura_write_file_atomic(path, "first", 5, 0600, &err),
			 KURA_OK);
	assert_int_equal(kura_write_file_atomic(path, "second!", 7, 0640, &err),
			 KURA_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	char *data = NULL;
	size_t len = 0;
	assert_int_equal(kura_read_file(path, 100, &data, &len, &err), KURA_OK);
	assert_int_equal(len, 7);
	assert_string_equal(data, "second!");
	free(data);
	/* Exactly max is fine, one byte more is ETOOBIG with no output. */
	data = NULL;
	assert_int_equal(kura_read_file(path, 7, &data, NULL, &err), KURA_OK);
	free(data);
	data = (char *)0x1;
	assert_int_equal(kura_read_file(path, 6, &data, &len, &err),
			 KURA_ETOOBIG);
	assert_ptr_equal(data, (char *)0x1);
	kura_error_clear(&err);
	/* A file in its place of a directory component. */
	snprintf(path, sizeof(path), "%s/a/file/sub", dir);
	assert_int_not_equal(kura_mkdirs(path, 0700, &err), KURA_OK);
	assert_true(strlen(err.msg) > 0);
	kura_error_clear(&err);
	/* Missing file. */
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(kura_read_file(path, 10, &data, &len, &err),
			 KURA_ENOENT);
	assert_non_null(strstr(err.msg, "none"));
	kura_error_clear(&err);
	/* Writing into a missing directory fails and leaves no temp file. */
	snprintf(path, sizeof(path), "%s/nodir/file", dir);
	assert_int_equal(kura_write_file_atomic(path, "x", 1, 0600, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* pread_all: exact reads and a short file. */
	snprintf(path, sizeof(path), "%s/p", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(kura_write_all(fd, "0123456789", 10, &err), KURA_OK);
	char buf[8] = { 0 };
	assert_int_equal(kura_pread_all(fd, buf, 4, 3, &err), KURA_OK);
	assert_memory_equal(buf, "3456", 4);
	assert_int_equal(kura_pread_all(fd, buf, 8, 5, &err), KURA_EIO);
	close(fd);
	rm_rf(dir);
}

/* ---- CRC-32C ---- */

/* Bit-at-a-time reference, independent of both implementations. */
static uint32_t crc32c_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void test_crc32c(void **state)
{
	(void)state;
	/* RFC 3720 B.4 check value and vectors. */
	assert_int_equal(kura_crc32c(0, "123456789", 9), 0xE3069283u);
	uint8_t v[48];
	memset(v, 0, 32);
	assert_int_equal(kura_crc32c(0, v, 32), 0x8A9136AAu);
	memset(v, 0xff, 32);
	assert_int_equal(kura_crc32c(0, v, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		v[i] = (uint8_t)i;
	assert_int_equal(kura_crc32c(0, v, 32), 0x46DD794Eu);
	assert_int_equal(kura_crc32c(0, v, 0), 0u);

	/* Every alignment and short length, and a long buffer fed in
	 * uneven pieces, against the reference. */
	size_t big = 1u << 20;
	uint8_t *b = malloc(big + 16);
	assert_non_null(b);
	uint32_t x = 12345;
	for (size_t i = 0; i < big + 16; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n < 70; n++)
			assert_int_equal(kura_crc32c(7, b + off, n),
					 crc32c_ref(7, b + off, n));
	uint32_t whole = kura_crc32c(0, b + 3, big);
	assert_int_equal(whole, crc32c_ref(0, b + 3, big));
	uint32_t inc = 0;
	for (size_t done = 0, k = 1; done < big; k = k * 3 + 1) {
		size_t take = k < big - done ? k : big - done;
		inc = kura_crc32c(inc, b + 3 + done, take);
		done += take;
	}
	assert_int_equal(inc, whole);
	free(b);
}

/* ---- CRC-64/NVME, combining CRCs, multipart checksums ---- */

static void test_crc64nvme(void **state)
{
	(void)state;
	/* The catalogue's check value (reveng CRC-64/NVME, and the NVM
	 * Express spec's "123456789" example). */
	assert_true(kura_crc64nvme(0, "123456789", 9) == 0xAE8B14860A799888ull);
	assert_true(kura_crc64nvme(0, "", 0) == 0);
	/* Incremental equals one pass. */
	uint64_t c = kura_crc64nvme(0, "1234", 4);
	assert_true(kura_crc64nvme(c, "56789", 5) == 0xAE8B14860A799888ull);
	/* Through the streaming interface, as a header value would be. */
	struct kura_checksum ck;
	struct kura_error err = { 0 };
	assert_int_equal(kura_checksum_init(&ck, KURA_CHECKSUM_CRC64NVME, &err),
			 KURA_OK);
	assert_int_equal(kura_checksum_update(&ck, "123456789", 9, &err),
			 KURA_OK);
	assert_int_equal(
		kura_checksum_verify(&ck, kura_str_from("rosUhgp5mIg="), &err),
		KURA_OK);
	kura_checksum_release(&ck);
	assert_int_equal(kura_checksum_algo_of(
				 kura_str_from("X-Amz-Checksum-CRC64NVME")),
			 KURA_CHECKSUM_CRC64NVME);
	assert_int_equal(kura_checksum_len(KURA_CHECKSUM_CRC64NVME), 8);
}

static uint64_t crc_of(enum kura_checksum_algo a, const uint8_t *p, size_t n)
{
	if (a == KURA_CHECKSUM_CRC32)
		return crc32(0, p, (uInt)n);
	if (a == KURA_CHECKSUM_CRC32C)
		return kura_crc32c(0, p, n);
	return kura_crc64nvme(0, p, n);
}

static void test_crc_combine(void **state)
{
	(void)state;
	static const enum kura_checksum_algo algos[] = {
		KURA_CHECKSUM_CRC32, KURA_CHECKSUM_CRC32C,
		KURA_CHECKSUM_CRC64NVME
	};
	uint8_t b[3000];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 131 + 7);
	static const size_t cuts[] = { 0, 1, 9, 64, 1000, 2999, 3000 };
	for (size_t a = 0; a < 3; a++)
		for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
			size_t m = cuts[k];
			uint64_t whole = crc_of(algos[a], b, sizeof(b));
			uint64_t x = crc_of(algos[a], b, m);
			uint64_t y = crc_of(algos[a], b + m, sizeof(b) - m);
			assert_true(kura_crc_combine(algos[a], x, y,
						     sizeof(b) - m) == whole);
		}
	/* zlib's own combine agrees for CRC-32 on a long second piece. */
	assert_true(kura_crc_combine(KURA_CHECKSUM_CRC32, 0x12345678u,
				     0x9abcdef0u, 5ull << 30) ==
		    crc32_combine64(0x12345678u, 0x9abcdef0u, 5ll << 30));

	/* Three parts, full object and composite. */
	struct kura_checksum_value parts[3], out;
	uint64_t sizes[3] = { 1000, 1500, 500 };
	struct kura_error err = { 0 };
	for (size_t a = 0; a < 3; a++) {
		size_t len = kura_checksum_len(algos[a]), off = 0;
		for (int i = 0; i < 3; i++) {
			uint64_t v = crc_of(algos[a], b + off, sizes[i]);
			parts[i].algo = algos[a];
			parts[i].type = KURA_CHECKSUM_FULL_OBJECT;
			for (size_t j = 0; j < len; j++)
				parts[i].digest[j] =
					(uint8_t)(v >> (8 * (len - 1 - j)));
			off += sizes[i];
		}
		assert_int_equal(kura_checksum_combine(algos[a], parts, sizes,
						       3, &out, &err),
				 KURA_OK);
		uint64_t whole = crc_of(algos[a], b, sizeof(b)), got = 0;
		for (size_t j = 0; j < len; j++)
			got = (got << 8) | out.digest[j];
		assert_true(got == whole);
		/* Composite: the checksum of the three digests. */
		uint8_t cat[24];
		for (int i = 0; i < 3; i++)
			memcpy(cat + i * len, parts[i].digest, len);
		assert_int_equal(kura_checksum_composite(algos[a], parts, 3,
							 &out, &err),
				 KURA_OK);
		assert_int_equal(out.type, KURA_CHECKSUM_COMPOSITE);
		uint64_t want = crc_of(algos[a], cat, 3 * len);
		got = 0;
		for (size_t j = 0; j < len; j++)
			got = (got << 8) | out.digest[j];
		assert_true(got == want);
	}
	char text[KURA_CHECKSUM_TEXT_MAX];
	kura_checksum_text(&out, 3, text);
	assert_true(strlen(text) == 14 && strcmp(text + 12, "-3") == 0);
	/* SHA cannot be a full-object value; CRC64NVME no composite. */
	assert_int_equal(kura_checksum_combine(KURA_CHECKSUM_SHA256, parts,
					       sizes, 3, &out, &err),
			 KURA_EINVAL);
	assert_false(kura_checksum_type_allowed(KURA_CHECKSUM_SHA1,
						KURA_CHECKSUM_FULL_OBJECT));
	assert_false(kura_checksum_type_allowed(KURA_CHECKSUM_CRC64NVME,
						KURA_CHECKSUM_COMPOSITE));
	assert_true(kura_checksum_type_allowed(KURA_CHECKSUM_CRC32,
					       KURA_CHECKSUM_FULL_OBJECT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_views),
		cmocka_unit_test(test_buf_basic),
		cmocka_unit_test(test_buf_grows_large),
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_buf_sticky),
		cmocka_unit_test(test_buf_addf),
		cmocka_unit_test(test_buf_addhex),
		cmocka_unit_test(test_buf_detach),
		cmocka_unit_test(test_pool_many_allocations),
		cmocka_unit_test(test_pool_large),
		cmocka_unit_test(test_pool_strings),
		cmocka_unit_test(test_pool_cleanup_order),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_reject),
		cmocka_unit_test(test_uri_decode),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_random_and_ct),
		cmocka_unit_test(test_time_format_known),
		cmocka_unit_test(test_time_round_trip),
		cmocka_unit_test(test_time_parse_http_forms),
		cmocka_unit_test(test_time_parse_invalid),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_parse_hex_u64),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_box_round_trip),
		cmocka_unit_test(test_box_tamper),
		cmocka_unit_test(test_box_key_length),
		cmocka_unit_test(test_box_open_secret),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_set_get),
		cmocka_unit_test(test_config_bad_values),
		cmocka_unit_test(test_config_named_sections),
		cmocka_unit_test(test_config_load),
		cmocka_unit_test(test_config_errors_in_words),
		cmocka_unit_test(test_config_split_addr),
		cmocka_unit_test(test_config_doc),
		cmocka_unit_test(test_err_first_wins),
		cmocka_unit_test(test_err_messages),
		cmocka_unit_test(test_err_strerror),
		cmocka_unit_test(test_err_from_errno),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_log_field),
		cmocka_unit_test(test_fsutil),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_crc64nvme),
		cmocka_unit_test(test_crc_combine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

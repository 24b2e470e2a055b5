/*
 * test_range.c — the Range header as S3 reads it (src/s3/range.c): single
 * ranges "a-b", "a-", "-n"; clamping at the end; 416 for a start past the
 * end or an empty object; anything else (syntax errors, multiple ranges,
 * other units) serves the whole object.  Table-driven.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/s3/s3_int.h"
#include "kura/banned.h"

struct range_case {
	const char *header;
	uint64_t size;
	enum s3_range_result want;
	uint64_t first, last;
};

static const struct range_case cases[] = {
	{ "bytes=0-0", 10, S3_RANGE_OK, 0, 0 },
	{ "bytes=0-9", 10, S3_RANGE_OK, 0, 9 },
	{ "bytes=2-5", 10, S3_RANGE_OK, 2, 5 },
	{ "bytes=5-", 10, S3_RANGE_OK, 5, 9 },
	{ "bytes=9-", 10, S3_RANGE_OK, 9, 9 },
	{ "bytes=3-100", 10, S3_RANGE_OK, 3, 9 },		/* clamped */
	{ "bytes=-3", 10, S3_RANGE_OK, 7, 9 },			/* suffix */
	{ "bytes=-10", 10, S3_RANGE_OK, 0, 9 },
	{ "bytes=-1000", 10, S3_RANGE_OK, 0, 9 },		/* suffix > size */
	{ "bytes= 2-5 ", 10, S3_RANGE_OK, 2, 5 },		/* optional spaces */
	{ "bytes=262143-262144", 1u << 20, S3_RANGE_OK, 262143, 262144 },
	{ "bytes=0-18446744073709551614", 5, S3_RANGE_OK, 0, 4 },
	{ "bytes=10-", 10, S3_RANGE_UNSATISFIABLE, 0, 0 },	/* start = size */
	{ "bytes=11-20", 10, S3_RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=-0", 10, S3_RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=0-0", 0, S3_RANGE_UNSATISFIABLE, 0, 0 },	/* empty object */
	{ "bytes=-5", 0, S3_RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=5-2", 10, S3_RANGE_NONE, 0, 0 },		/* last < first */
	{ "bytes=0-1,4-5", 10, S3_RANGE_NONE, 0, 0 },		/* multi-range */
	{ "bytes=a-b", 10, S3_RANGE_NONE, 0, 0 },
	{ "bytes=-", 10, S3_RANGE_NONE, 0, 0 },
	{ "bytes=", 10, S3_RANGE_NONE, 0, 0 },
	{ "bytes=1", 10, S3_RANGE_NONE, 0, 0 },
	{ "bytes=+1-2", 10, S3_RANGE_NONE, 0, 0 },
	{ "bytes=1--2", 10, S3_RANGE_NONE, 0, 0 },
	{ "bytes=99999999999999999999-", 10, S3_RANGE_NONE, 0, 0 }, /* overflow */
	{ "items=0-1", 10, S3_RANGE_NONE, 0, 0 },
	{ "Bytes=0-1", 10, S3_RANGE_NONE, 0, 0 },
	{ "", 10, S3_RANGE_NONE, 0, 0 },
};

static void test_range_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct range_case *c = &cases[i];
		uint64_t first = 12345, last = 67890;
		enum s3_range_result got =
			s3_range_parse(c->header, strlen(c->header), c->size, &first, &last);
		if (got != c->want)
			fail_msg("'%s' (size %llu): got %d, want %d", c->header,
				 (unsigned long long)c->size, got, c->want);
		if (c->want == S3_RANGE_OK) {
			assert_int_equal(first, c->first);
			assert_int_equal(last, c->last);
			assert_true(first <= last && last < c->size);
		}
	}
}

/* Only the given length is read: a valid prefix followed by garbage that
 * lies outside the view parses as the prefix alone. */
static void test_range_respects_length(void **state)
{
	(void)state;
	const char *s = "bytes=1-2XXXX";
	uint64_t first = 0, last = 0;
	assert_int_equal(s3_range_parse(s, 9, 10, &first, &last), S3_RANGE_OK);
	assert_int_equal(first, 1);
	assert_int_equal(last, 2);
	assert_int_equal(s3_range_parse(s, 10, 10, &first, &last), S3_RANGE_NONE);
}

/* Every (first, last) the parser returns lies inside the object, for all
 * small sizes and specs. */
static void test_range_exhaustive_small(void **state)
{
	(void)state;
	char buf[64];
	for (uint64_t size = 0; size < 20; size++) {
		for (int a = -1; a < 25; a++) {
			for (int b = -1; b < 25; b++) {
				int n;
				if (a < 0 && b < 0)
					continue;
				if (a < 0)
					n = snprintf(buf, sizeof(buf), "bytes=-%d", b);
				else if (b < 0)
					n = snprintf(buf, sizeof(buf), "bytes=%d-", a);
				else
					n = snprintf(buf, sizeof(buf), "bytes=%d-%d", a, b);
				uint64_t f, l;
				enum s3_range_result res =
					s3_range_parse(buf, (size_t)n, size, &f, &l);
				if (res != S3_RANGE_OK)
					continue;
				assert_true(size > 0);
				assert_true(f <= l);
				assert_true(l < size);
				if (a >= 0)
					assert_int_equal(f, (uint64_t)a);
				if (a < 0)
					assert_int_equal(l - f + 1,
							 (uint64_t)b < size ? (uint64_t)b : size);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_table),
		cmocka_unit_test(test_range_respects_length),
		cmocka_unit_test(test_range_exhaustive_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

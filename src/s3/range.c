/*
 * range.c — the HTTP Range header for GET, as S3 implements it: a single
 * byte range "bytes=first-last", "bytes=first-" or "bytes=-suffix".
 * Pure function; fuzzed by fuzz/fuzz_range.c.
 */
#include <string.h>

#include "kura/parse.h"
#include "s3_int.h"
#include "kura/banned.h"

enum s3_range_result s3_range_parse(const char *value, size_t n, uint64_t size,
				    uint64_t *first, uint64_t *last)
{
	static const char unit[] = "bytes=";
	const size_t ulen = sizeof(unit) - 1;
	if (n <= ulen || memcmp(value, unit, ulen) != 0)
		return S3_RANGE_NONE;
	const char *s = value + ulen;
	size_t len = n - ulen;
	/* Trim optional whitespace around the spec. */
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (memchr(s, ',', len) != NULL)
		return S3_RANGE_NONE;	/* multiple ranges: S3 serves the whole object */
	const char *dash = memchr(s, '-', len);
	if (dash == NULL)
		return S3_RANGE_NONE;
	size_t alen = (size_t)(dash - s), blen = len - alen - 1;
	uint64_t a = 0, b = 0;
	if (alen == 0) {
		/* Suffix range: the last b bytes. */
		if (kura_parse_u64(dash + 1, blen, UINT64_MAX, &b) != KURA_OK)
			return S3_RANGE_NONE;
		if (b == 0 || size == 0)
			return S3_RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return S3_RANGE_OK;
	}
	if (kura_parse_u64(s, alen, UINT64_MAX, &a) != KURA_OK)
		return S3_RANGE_NONE;
	if (blen == 0) {
		b = UINT64_MAX;
	} else {
		if (kura_parse_u64(dash + 1, blen, UINT64_MAX, &b) != KURA_OK)
			return S3_RANGE_NONE;
		if (b < a)
			return S3_RANGE_NONE;	/* invalid: ignored, as RFC 9110 says */
	}
	if (a >= size)
		return S3_RANGE_UNSATISFIABLE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return S3_RANGE_OK;
}

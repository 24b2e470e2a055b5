/*
 * fuzz_range.c — libFuzzer target for s3_range_parse (src/s3/range.c).
 *
 * Input: the first 8 bytes are the object size (little-endian, reduced to
 * 48 bits); the rest is a Range header value.
 * Invariant checked: an accepted range lies inside the object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/s3/s3_int.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t objsize = 0;
	if (size < 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		objsize = objsize << 8 | data[i];
	objsize &= (1ull << 48) - 1;
	uint64_t first = 0, last = 0;
	if (s3_range_parse((const char *)data + 8, size - 8, objsize, &first, &last) ==
	    S3_RANGE_OK) {
		if (objsize == 0 || first > last || last >= objsize)
			abort();
	}
	return 0;
}

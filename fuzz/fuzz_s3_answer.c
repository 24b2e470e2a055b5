/*
 * fuzz_s3_answer.c — libFuzzer target for rs3_answer_parse
 * (src/store/s3/xml.c), the parser of what a remote S3 service answers.
 *
 * Input: a response body as a remote would send it.
 * Invariants checked: every field kept is NUL-terminated inside its
 * buffer; a refused document leaves the output untouched.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/store/s3/s3_int.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void terminated(const char *field, size_t cap)
{
	if (memchr(field, '\0', cap) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rs3_answer a;
	memset(&a, 0x5a, sizeof(a));
	struct kura_error err = { 0 };
	if (rs3_answer_parse((const char *)data, size, &a, &err) != KURA_OK) {
		const unsigned char *p = (const unsigned char *)&a;
		for (size_t i = 0; i < sizeof(a); i++)
			if (p[i] != 0x5a)
				abort();
		return 0;
	}
	terminated(a.root, sizeof(a.root));
	terminated(a.code, sizeof(a.code));
	terminated(a.message, sizeof(a.message));
	terminated(a.upload_id, sizeof(a.upload_id));
	terminated(a.etag, sizeof(a.etag));
	if (a.root[0] == '\0')
		abort();
	return 0;
}

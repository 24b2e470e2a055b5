/*
 * fuzz_canonical.c — libFuzzer target for kura_sigv4_canonical_request and
 * kura_sigv4_string_to_sign.
 *
 * Input: one flag byte (bit 0: presigned), then newline-separated fields
 *   method \n raw path \n raw query \n SignedHeaders \n payload hash
 *   \n name:value \n name:value ...
 * Invariants checked: the output is written only on success; a success
 * starts with "METHOD\n/" , ends with the payload hash, and is the same
 * when computed twice; the string to sign of it is built.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/sigv4.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool presigned = data[0] & 1;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct kura_str field[5] = { { "", 0 }, { "", 0 }, { "", 0 },
				     { "", 0 }, { "", 0 } };
	struct kura_sigv4_header h[MAX_HEADERS];
	size_t nh = 0;
	size_t nf = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '\n')
			continue;
		struct kura_str line = { p + start, i - start };
		start = i + 1;
		if (nf < 5) {
			field[nf++] = line;
		} else if (nh < MAX_HEADERS) {
			const char *colon = memchr(line.p, ':', line.len);
			size_t nl = colon ? (size_t)(colon - line.p) : line.len;
			h[nh].name = (struct kura_str){ line.p, nl };
			h[nh].value = colon ? (struct kura_str){ colon + 1,
								 line.len - nl - 1 }
					    : (struct kura_str){ "", 0 };
			nh++;
		}
	}
	/* SignedHeaders is a C string in the API. */
	char sh[KURA_SIGV4_SIGNED_HEADERS_MAX + 1];
	size_t shl = field[3].len < KURA_SIGV4_SIGNED_HEADERS_MAX
			     ? field[3].len
			     : KURA_SIGV4_SIGNED_HEADERS_MAX;
	memcpy(sh, field[3].p, shl);
	sh[shl] = '\0';

	struct kura_buf out, again;
	kura_buf_init(&out, 1 << 20);
	kura_buf_init(&again, 1 << 20);
	struct kura_error err = { 0 };
	enum kura_err rc = kura_sigv4_canonical_request(
		field[0], field[1], field[2], presigned, h, nh, sh, field[4],
		&out, &err);
	if (rc != KURA_OK) {
		if (out.len != 0 || err.code != rc)
			abort();
		goto out;
	}
	if (out.len < field[0].len + 2 ||
	    memcmp(out.data, field[0].p, field[0].len) != 0 ||
	    out.data[field[0].len] != '\n' || out.data[field[0].len + 1] != '/' ||
	    out.len < field[4].len ||
	    memcmp(out.data + out.len - field[4].len, field[4].p,
		   field[4].len) != 0)
		abort();
	if (kura_sigv4_canonical_request(field[0], field[1], field[2], presigned,
					 h, nh, sh, field[4], &again,
					 &err) != KURA_OK ||
	    again.len != out.len || memcmp(again.data, out.data, out.len) != 0)
		abort();
	struct kura_buf sts;
	kura_buf_init(&sts, 1024);
	struct kura_str cs = { out.data, out.len };
	if (kura_sigv4_string_to_sign("20130524T000000Z",
				      "20130524/us-east-1/s3/aws4_request", cs,
				      &sts, &err) != KURA_OK ||
	    sts.len != 16 + 1 + 16 + 1 + 34 + 1 + 64)
		abort();
	kura_buf_release(&sts);
out:
	kura_buf_release(&out);
	kura_buf_release(&again);
	return 0;
}

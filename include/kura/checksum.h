/*
 * checksum.h — the additional checksums S3 clients attach to uploads
 * (x-amz-checksum-crc32, -crc32c, -sha1, -sha256, base64 of the big-endian
 * digest), computed incrementally over a body.
 *
 * Not thread-safe per object; one checksum belongs to one request.
 */
#ifndef KURA_CHECKSUM_H
#define KURA_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/buf.h"
#include "kura/err.h"

enum kura_checksum_algo {
	KURA_CHECKSUM_NONE = 0,
	KURA_CHECKSUM_CRC32,
	KURA_CHECKSUM_CRC32C,
	KURA_CHECKSUM_SHA1,
	KURA_CHECKSUM_SHA256,
};

struct kura_checksum {
	enum kura_checksum_algo algo;
	uint32_t crc;
	void *md;		/* EVP_MD_CTX for the SHA algorithms */
};

/* The algorithm a header or trailer name selects ("x-amz-checksum-crc32",
 * any case), or KURA_CHECKSUM_NONE. */
enum kura_checksum_algo kura_checksum_algo_of(struct kura_str name);

/* The lowercase header name of an algorithm ("x-amz-checksum-crc32"), or
 * NULL for NONE. */
const char *kura_checksum_name(enum kura_checksum_algo algo);

/* Raw digest length of an algorithm (0 for NONE). */
size_t kura_checksum_len(enum kura_checksum_algo algo);

enum kura_err kura_checksum_init(struct kura_checksum *c,
				 enum kura_checksum_algo algo,
				 struct kura_error *err);
enum kura_err kura_checksum_update(struct kura_checksum *c, const void *p,
				   size_t n, struct kura_error *err);
/* Finish and compare with the base64 value a client sent: KURA_OK when it
 * matches, KURA_EINVAL when the value is not a well-formed digest,
 * KURA_EINTEGRITY when it differs.  The checksum cannot be updated after. */
enum kura_err kura_checksum_verify(struct kura_checksum *c,
				   struct kura_str b64_value,
				   struct kura_error *err);
/* Release resources.  Safe on a zeroed or released checksum. */
void kura_checksum_release(struct kura_checksum *c);

/* CRC-32C (Castagnoli) of p, continuing from crc (pass 0 to start). */
uint32_t kura_crc32c(uint32_t crc, const void *p, size_t n);

#endif

/*
 * checksum.h — the additional checksums S3 clients attach to uploads
 * (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256, base64 of
 * the big-endian digest), computed incrementally over a body, and the
 * arithmetic multipart uploads need: a composite checksum (the checksum of
 * the parts' digests) and a full-object CRC combined from the parts' CRCs.
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

/* The values are stored inside metadata seals (docs/FORMAT.md §10):
 * never renumber them. */
enum kura_checksum_algo {
	KURA_CHECKSUM_NONE = 0,
	KURA_CHECKSUM_CRC32 = 1,
	KURA_CHECKSUM_CRC32C = 2,
	KURA_CHECKSUM_SHA1 = 3,
	KURA_CHECKSUM_SHA256 = 4,
	KURA_CHECKSUM_CRC64NVME = 5,
};
#define KURA_CHECKSUM_ALGO_MAX KURA_CHECKSUM_CRC64NVME

/* How an object's checksum was computed (stored in seals, as above):
 * over the whole plaintext, or — multipart uploads — over the parts'
 * digests, shown as "<base64>-N". */
enum kura_checksum_type {
	KURA_CHECKSUM_FULL_OBJECT = 1,
	KURA_CHECKSUM_COMPOSITE = 2,
};

#define KURA_CHECKSUM_DIGEST_MAX 32
/* base64 of the longest digest, "-10000" and a NUL. */
#define KURA_CHECKSUM_TEXT_MAX 52

/* A finished checksum: algo NONE when there is none. */
struct kura_checksum_value {
	enum kura_checksum_algo algo;
	enum kura_checksum_type type;
	uint8_t digest[KURA_CHECKSUM_DIGEST_MAX]; /* kura_checksum_len(algo) */
};

struct kura_checksum {
	enum kura_checksum_algo algo;
	uint64_t crc;
	void *md; /* EVP_MD_CTX for the SHA algorithms */
	bool finished;
	uint8_t digest[KURA_CHECKSUM_DIGEST_MAX]; /* once finished */
};

/* The algorithm a header or trailer name selects ("x-amz-checksum-crc32",
 * any case), or KURA_CHECKSUM_NONE. */
enum kura_checksum_algo kura_checksum_algo_of(struct kura_str name);

/* The lowercase header name of an algorithm ("x-amz-checksum-crc32"), or
 * NULL for NONE. */
const char *kura_checksum_name(enum kura_checksum_algo algo);

/* The algorithm S3 names ("CRC32", "CRC64NVME" ... as in
 * x-amz-checksum-algorithm; any case), or KURA_CHECKSUM_NONE. */
enum kura_checksum_algo kura_checksum_algo_by_s3_name(struct kura_str name);
/* S3's name of an algorithm ("CRC32"), or NULL for NONE. */
const char *kura_checksum_s3_name(enum kura_checksum_algo algo);
/* The XML element of an algorithm's value ("ChecksumCRC32"), or NULL. */
const char *kura_checksum_xml_name(enum kura_checksum_algo algo);
/* "FULL_OBJECT" or "COMPOSITE". */
const char *kura_checksum_type_name(enum kura_checksum_type type);
/* Whether S3 allows a multipart upload an algorithm with a type:
 * COMPOSITE for CRC32, CRC32C, SHA1, SHA256; FULL_OBJECT for CRC32,
 * CRC32C, CRC64NVME.  (A simple PUT's checksum is FULL_OBJECT whatever
 * its algorithm.) */
bool kura_checksum_type_allowed(enum kura_checksum_algo algo,
				enum kura_checksum_type type);
/* The type an upload gets when none is asked for: FULL_OBJECT for
 * CRC64NVME, COMPOSITE for the others. */
enum kura_checksum_type
kura_checksum_default_type(enum kura_checksum_algo algo);

/* Raw digest length of an algorithm (0 for NONE). */
size_t kura_checksum_len(enum kura_checksum_algo algo);

enum kura_err kura_checksum_init(struct kura_checksum *c,
				 enum kura_checksum_algo algo,
				 struct kura_error *err);
enum kura_err kura_checksum_update(struct kura_checksum *c, const void *p,
				   size_t n, struct kura_error *err);
/* Finish: c->digest holds the digest.  Idempotent.  The checksum cannot
 * be updated after. */
enum kura_err kura_checksum_finish(struct kura_checksum *c,
				   struct kura_error *err);
/* Finish and compare with the base64 value a client sent: KURA_OK when it
 * matches, KURA_EINVAL when the value is not a well-formed digest,
 * KURA_EINTEGRITY when it differs.  The checksum cannot be updated after. */
enum kura_err kura_checksum_verify(struct kura_checksum *c,
				   struct kura_str b64_value,
				   struct kura_error *err);
/* The finished checksum as a value of type FULL_OBJECT (algo NONE when c
 * was never started or not finished). */
void kura_checksum_result(const struct kura_checksum *c,
			  struct kura_checksum_value *out);
/* Decode a base64 value of algo into out (type FULL_OBJECT): KURA_EINVAL
 * unless it is exactly one digest of the algorithm. */
enum kura_err kura_checksum_parse(enum kura_checksum_algo algo,
				  struct kura_str b64_value,
				  struct kura_checksum_value *out,
				  struct kura_error *err);
/* The text S3 shows: base64 of the digest, and "-<parts>" for a
 * composite one (parts: the object's part count). */
void kura_checksum_text(const struct kura_checksum_value *v, uint32_t parts,
			char out[KURA_CHECKSUM_TEXT_MAX]);

/*
 * Multipart arithmetic.  The composite checksum of n parts is the
 * algorithm run over the concatenation of the parts' digests.  A full-
 * object CRC is combined from the parts' CRCs and sizes, as if the parts'
 * plaintexts had been checksummed one after the other (CRCs only:
 * KURA_EINVAL for SHA).  Parts must all carry algo.
 */
enum kura_err kura_checksum_composite(enum kura_checksum_algo algo,
				      const struct kura_checksum_value *parts,
				      size_t n, struct kura_checksum_value *out,
				      struct kura_error *err);
enum kura_err kura_checksum_combine(enum kura_checksum_algo algo,
				    const struct kura_checksum_value *parts,
				    const uint64_t *sizes, size_t n,
				    struct kura_checksum_value *out,
				    struct kura_error *err);
/* Release resources.  Safe on a zeroed or released checksum. */
void kura_checksum_release(struct kura_checksum *c);

/* CRC-32C (Castagnoli) of p, continuing from crc (pass 0 to start). */
uint32_t kura_crc32c(uint32_t crc, const void *p, size_t n);
/* CRC-64/NVME of p, continuing from crc (pass 0 to start). */
uint64_t kura_crc64nvme(uint64_t crc, const void *p, size_t n);
/* The CRC of A || B from crc(A), crc(B) and len(B), for CRC32, CRC32C
 * and CRC64NVME (another algo returns 0). */
uint64_t kura_crc_combine(enum kura_checksum_algo algo, uint64_t crc_a,
			  uint64_t crc_b, uint64_t len_b);

#endif

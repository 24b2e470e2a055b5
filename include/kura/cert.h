/*
 * cert.h — deletion certificates: the signed evidence of a crypto-shred
 * (requirement A-9).  docs/CERTIFICATE.md specifies the format so that an
 * auditor can verify one with their own tools.
 *
 * A certificate is a JSON document.  Its signature covers the document
 * without its "signature" member, serialised canonically (keys sorted, no
 * insignificant white space, non-ASCII escaped as \uXXXX), hashed with
 * SHA-256 and signed with kura's signing key (ECDSA P-256, or RSA-PSS when
 * the key provider only offers that).  The signer's public key travels in
 * the certificate; trust comes from comparing it with the public key the
 * auditor pinned (`kura cert public-key` prints it).
 *
 * Not thread-safe per certificate.
 */
#ifndef KURA_CERT_H
#define KURA_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"
#include "kura/kms.h"
#include "kura/meta.h"

#define KURA_CERT_FORMAT "kura-deletion-certificate/2"
#define KURA_CERT_FORMAT_V1 "kura-deletion-certificate/1"

struct kura_cert;

/* Start a certificate for the deletion of bucket b of tenant t. */
enum kura_err kura_cert_new(const struct kura_bucket *b,
			    const struct kura_tenant *t, int64_t requested_ms,
			    struct kura_cert **out, struct kura_error *err);
void kura_cert_free(struct kura_cert *c);

/* An object that existed at the time of deletion, named by its key and
 * version (not by its ETag: a certificate outlives the key, and must not
 * keep a function of the plaintext it certifies destroyed).  verified:
 * its metadata row passed its seal; else it is listed as the metadata
 * claimed it, marked "integrity": "failed". */
enum kura_err kura_cert_add_object(struct kura_cert *c, const char *key,
				   size_t key_len, uint64_t size,
				   const uint8_t version_uid[KURA_UID_LEN],
				   int64_t mtime_ms, bool verified,
				   struct kura_error *err);

/* A key whose every KEK version was destroyed in the provider. */
enum kura_err kura_cert_add_key_destroyed(struct kura_cert *c,
					  const struct kura_key *k,
					  const struct kura_kms_destroyed *d,
					  struct kura_error *err);

/* A key that was not destroyed because other buckets use it; the bucket
 * keys it wrapped for this bucket were deleted. */
enum kura_err kura_cert_add_key_retained(struct kura_cert *c,
					 const struct kura_key *k,
					 const char *reason,
					 struct kura_error *err);

/* Where a removed replica was: the store type and location, and the
 * backend with its labels (placement.h). */
struct kura_cert_place {
	const char *store;    /* fs, s3 */
	const char *location; /* path or endpoint/bucket/prefix */
	const char *backend;
	const char *site, *region, *jurisdiction;
};

/* A ciphertext replica removed from a data store. */
enum kura_err kura_cert_add_replica(struct kura_cert *c,
				    const struct kura_cert_place *at,
				    const uint8_t blob_id[16], uint64_t bytes,
				    int64_t removed_ms, struct kura_error *err);

/* Sign (kura_kms_sign) and write the certificate to path (mode 0600,
 * durably).  completed_ms is recorded as the completion time. */
enum kura_err kura_cert_sign_and_write(struct kura_cert *c,
				       struct kura_kms *kms,
				       const struct kura_secret *system_key,
				       int64_t completed_ms, const char *path,
				       struct kura_error *err);

/* What verification found. */
struct kura_cert_summary {
	char bucket[KURA_BUCKET_NAME_MAX];
	uint64_t objects;
	uint64_t keys_destroyed;
	uint64_t replicas;
	char algorithm[KURA_SIG_ALG_MAX];
	char signer_sha256[65]; /* hex SHA-256 of the signer's DER public key */
};

/*
 * Verify the certificate in path: well-formed, known format, signature
 * valid over the canonical form.  When trusted (a DER SubjectPublicKeyInfo)
 * is not NULL, the certificate's signer must be exactly that key.
 * KURA_EINTEGRITY for a bad signature, a tampered document or another
 * signer; KURA_EINVAL for a document that is not a certificate.
 */
enum kura_err kura_cert_verify_file(const char *path, const uint8_t *trusted,
				    size_t trusted_len,
				    struct kura_cert_summary *summary,
				    struct kura_error *err);

#endif

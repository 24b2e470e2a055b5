/*
 * fuzz_cert.c — libFuzzer target for the deletion-certificate verifier that
 * `kura cert verify` runs on a file a user hands it (src/kms/cert.c:
 * JSON document, format check, base64 fields, DER public key, signature
 * over the canonical form).
 *
 * Input: the certificate file.  It is written to a file under /tmp
 * (removed at exit) and verified with and without a pinned signer.
 * Invariants checked: a failure says why; a certificate that verifies
 * yields a summary with NUL-terminated fields and a 64-digit signer hash,
 * and verifies again with its own signer pinned only if that signer is the
 * one pinned (a different pinned key must fail with KURA_EINTEGRITY).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/cert.h"
#include "fuzz_file.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file_write("cert.json", data, size);
	if (path == NULL)
		return 0;

	struct kura_cert_summary s;
	struct kura_error err = { 0 };
	memset(&s, 0xAA, sizeof(s));
	enum kura_err rc = kura_cert_verify_file(path, NULL, 0, &s, &err);
	if (rc != KURA_OK) {
		if (err.code == KURA_OK || err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (memchr(s.bucket, '\0', sizeof(s.bucket)) == NULL ||
	    memchr(s.algorithm, '\0', sizeof(s.algorithm)) == NULL ||
	    strlen(s.signer_sha256) != 64)
		abort();
	/* Pinning some other key must fail as "another signer". */
	static const uint8_t other[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
	struct kura_error e2 = { 0 };
	if (kura_cert_verify_file(path, other, sizeof(other), NULL, &e2) !=
	    KURA_EINTEGRITY)
		abort();
	return 0;
}

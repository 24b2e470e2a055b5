/*
 * box.h — authenticated encryption of small values under a 256-bit key.
 *
 * Sealed form: nonce (12 random bytes) || ciphertext || GCM tag (16 bytes),
 * AES-256-GCM, with caller-chosen additional data that must be presented
 * again to open.  Used for everything small kura seals: data keys under a
 * bucket key, bucket keys under a local KEK, access-key secrets under the
 * system key, the local keystore file under its master key.
 *
 * Random nonces are safe here because each key seals far fewer than 2^32
 * values (NIST SP 800-38D §8.3).  Bulk object data uses the segment format
 * of crypt.h instead, with deterministic nonces under one-time keys.
 */
#ifndef KURA_BOX_H
#define KURA_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"
#include "kura/secret.h"

#define KURA_BOX_NONCE_LEN 12
#define KURA_BOX_TAG_LEN 16
#define KURA_BOX_OVERHEAD (KURA_BOX_NONCE_LEN + KURA_BOX_TAG_LEN)
#define KURA_AES256_KEY_LEN 32

/* Seal plain[0..n) into out[0..n + KURA_BOX_OVERHEAD).  key->len must be 32. */
enum kura_err kura_box_seal(const struct kura_secret *key, const uint8_t *aad,
			    size_t aad_len, const uint8_t *plain, size_t n,
			    uint8_t *out, struct kura_error *err);

/* Open in[0..n) (n >= KURA_BOX_OVERHEAD) into out[0..n - KURA_BOX_OVERHEAD).
 * KURA_EINTEGRITY when anything does not authenticate; out is then wiped. */
enum kura_err kura_box_open(const struct kura_secret *key, const uint8_t *aad,
			    size_t aad_len, const uint8_t *in, size_t n,
			    uint8_t *out, struct kura_error *err);

/*
 * A box key prepared once for many seals and opens of small values under
 * one key (the cipher fetched and the key schedule computed once): for
 * loops such as checking every row of a listing.  Same sealed form as
 * above.  One context belongs to one thread; the key schedule is wiped
 * when it is freed.
 */
struct kura_box_ctx;

enum kura_err kura_box_ctx_new(const struct kura_secret *key,
			       struct kura_box_ctx **out,
			       struct kura_error *err);
/* NULL is a no-op. */
void kura_box_ctx_free(struct kura_box_ctx *c);
enum kura_err kura_box_ctx_seal(struct kura_box_ctx *c, const uint8_t *aad,
				size_t aad_len, const uint8_t *plain, size_t n,
				uint8_t *out, struct kura_error *err);
enum kura_err kura_box_ctx_open(struct kura_box_ctx *c, const uint8_t *aad,
				size_t aad_len, const uint8_t *in, size_t n,
				uint8_t *out, struct kura_error *err);

/* Open into a new secret (for sealed keys). */
enum kura_err kura_box_open_secret(const struct kura_secret *key,
				   const uint8_t *aad, size_t aad_len,
				   const uint8_t *in, size_t n,
				   struct kura_secret **out,
				   struct kura_error *err);

#endif

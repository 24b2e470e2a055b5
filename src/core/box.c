/*
 * box.c — AES-256-GCM sealing of small values (see box.h for the format).
 * Thread-safe: a fresh EVP context per call.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kura/box.h"
#include "kura/banned.h"

#define BOX_MAX_PLAIN (1u << 20)

static enum kura_err gcm(bool enc, const struct kura_secret *key,
			 const uint8_t nonce[KURA_BOX_NONCE_LEN],
			 const uint8_t *aad, size_t aad_len,
			 const uint8_t *in, size_t n, uint8_t *out,
			 uint8_t tag[KURA_BOX_TAG_LEN], struct kura_error *err)
{
	if (key == NULL || key->len != KURA_AES256_KEY_LEN)
		return kura_fail(err, KURA_EINVAL, "box key must be 32 bytes");
	if (n > BOX_MAX_PLAIN || aad_len > BOX_MAX_PLAIN)
		return kura_fail(err, KURA_ETOOBIG, "box value too large");
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return kura_fail_openssl(err, KURA_ENOMEM, "EVP_CIPHER_CTX_new");
	enum kura_err rc = KURA_OK;
	int outl = 0;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->data, nonce,
			      enc ? 1 : 0) != 1 ||
	    (aad_len > 0 &&
	     EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1) ||
	    (n > 0 && EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1)) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM");
		goto out;
	}
	if (enc) {
		if (EVP_CipherFinal_ex(ctx, out + n, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
					KURA_BOX_TAG_LEN, tag) != 1)
			rc = kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM seal");
	} else {
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
					KURA_BOX_TAG_LEN, tag) != 1) {
			rc = kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM tag");
		} else if (EVP_CipherFinal_ex(ctx, out + n, &outl) != 1) {
			ERR_clear_error();
			kura_wipe(out, n);
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "sealed value does not authenticate");
		}
	}
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

enum kura_err kura_box_seal(const struct kura_secret *key, const uint8_t *aad,
			    size_t aad_len, const uint8_t *plain, size_t n,
			    uint8_t *out, struct kura_error *err)
{
	if (RAND_bytes(out, KURA_BOX_NONCE_LEN) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "nonce");
	return gcm(true, key, out, aad, aad_len, plain, n,
		   out + KURA_BOX_NONCE_LEN,
		   out + KURA_BOX_NONCE_LEN + n, err);
}

enum kura_err kura_box_open(const struct kura_secret *key, const uint8_t *aad,
			    size_t aad_len, const uint8_t *in, size_t n,
			    uint8_t *out, struct kura_error *err)
{
	if (n < KURA_BOX_OVERHEAD)
		return kura_fail(err, KURA_EINTEGRITY, "sealed value too short");
	size_t plain = n - KURA_BOX_OVERHEAD;
	uint8_t tag[KURA_BOX_TAG_LEN];
	memcpy(tag, in + KURA_BOX_NONCE_LEN + plain, KURA_BOX_TAG_LEN);
	return gcm(false, key, in, aad, aad_len, in + KURA_BOX_NONCE_LEN, plain,
		   out, tag, err);
}

enum kura_err kura_box_open_secret(const struct kura_secret *key,
				   const uint8_t *aad, size_t aad_len,
				   const uint8_t *in, size_t n,
				   struct kura_secret **out,
				   struct kura_error *err)
{
	if (n <= KURA_BOX_OVERHEAD || n - KURA_BOX_OVERHEAD > KURA_SECRET_MAX)
		return kura_fail(err, KURA_EINTEGRITY, "sealed key has a bad length");
	struct kura_secret *s = kura_secret_new(n - KURA_BOX_OVERHEAD);
	if (s == NULL)
		return kura_fail(err, KURA_ENOMEM, "locked memory for a key");
	enum kura_err rc = kura_box_open(key, aad, aad_len, in, n, s->data, err);
	if (rc != KURA_OK) {
		kura_secret_free(s);
		return rc;
	}
	*out = s;
	return KURA_OK;
}

/*
 * box.c — AES-256-GCM sealing of small values (see box.h for the format).
 * Thread-safe: a fresh EVP context per call; a struct kura_box_ctx keeps
 * one for many values of one thread.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kura/box.h"
#include "kura/banned.h"

#define BOX_MAX_PLAIN (1u << 20)

static enum kura_err gcm(bool enc, const struct kura_secret *key,
			 const uint8_t nonce[KURA_BOX_NONCE_LEN],
			 const uint8_t *aad, size_t aad_len, const uint8_t *in,
			 size_t n, uint8_t *out, uint8_t tag[KURA_BOX_TAG_LEN],
			 struct kura_error *err)
{
	if (key == NULL || key->len != KURA_AES256_KEY_LEN)
		return kura_fail(err, KURA_EINVAL, "box key must be 32 bytes");
	if (n > BOX_MAX_PLAIN || aad_len > BOX_MAX_PLAIN)
		return kura_fail(err, KURA_ETOOBIG, "box value too large");
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return kura_fail_openssl(err, KURA_ENOMEM,
					 "EVP_CIPHER_CTX_new");
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
			rc = kura_fail_openssl(err, KURA_ECRYPTO,
					       "AES-GCM seal");
	} else {
		if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
					KURA_BOX_TAG_LEN, tag) != 1) {
			rc = kura_fail_openssl(err, KURA_ECRYPTO,
					       "AES-GCM tag");
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
		   out + KURA_BOX_NONCE_LEN, out + KURA_BOX_NONCE_LEN + n, err);
}

enum kura_err kura_box_open(const struct kura_secret *key, const uint8_t *aad,
			    size_t aad_len, const uint8_t *in, size_t n,
			    uint8_t *out, struct kura_error *err)
{
	if (n < KURA_BOX_OVERHEAD)
		return kura_fail(err, KURA_EINTEGRITY,
				 "sealed value too short");
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
		return kura_fail(err, KURA_EINTEGRITY,
				 "sealed key has a bad length");
	struct kura_secret *s = kura_secret_new(n - KURA_BOX_OVERHEAD);
	if (s == NULL)
		return kura_fail(err, KURA_ENOMEM, "locked memory for a key");
	enum kura_err rc =
		kura_box_open(key, aad, aad_len, in, n, s->data, err);
	if (rc != KURA_OK) {
		kura_secret_free(s);
		return rc;
	}
	*out = s;
	return KURA_OK;
}

/* ---- a prepared key for many values ---- */

struct kura_box_ctx {
	EVP_CIPHER_CTX *ctx; /* holds the key schedule; IV set per value */
};

static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
	gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

enum kura_err kura_box_ctx_new(const struct kura_secret *key,
			       struct kura_box_ctx **out,
			       struct kura_error *err)
{
	if (key == NULL || key->len != KURA_AES256_KEY_LEN)
		return kura_fail(err, KURA_EINVAL, "box key must be 32 bytes");
	pthread_once(&gcm_once, gcm_fetch);
	if (gcm_cipher == NULL)
		return kura_fail_openssl(err, KURA_ECRYPTO,
					 "fetch AES-256-GCM");
	struct kura_box_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->ctx = EVP_CIPHER_CTX_new()) == NULL) {
		free(c);
		return kura_fail_openssl(err, KURA_ENOMEM,
					 "EVP_CIPHER_CTX_new");
	}
	if (EVP_CipherInit_ex(c->ctx, gcm_cipher, NULL, key->data, NULL, 1) !=
	    1) {
		kura_box_ctx_free(c);
		return kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM key");
	}
	*out = c;
	return KURA_OK;
}

void kura_box_ctx_free(struct kura_box_ctx *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->ctx); /* cleanses the key schedule */
	free(c);
}

/* One value with the prepared key: the IV is the only thing set anew. */
static enum kura_err ctx_gcm(struct kura_box_ctx *c, bool enc,
			     const uint8_t nonce[KURA_BOX_NONCE_LEN],
			     const uint8_t *aad, size_t aad_len,
			     const uint8_t *in, size_t n, uint8_t *out,
			     uint8_t tag[KURA_BOX_TAG_LEN],
			     struct kura_error *err)
{
	int outl = 0;
	if (n > BOX_MAX_PLAIN || aad_len > BOX_MAX_PLAIN)
		return kura_fail(err, KURA_ETOOBIG, "box value too large");
	if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, enc ? 1 : 0) !=
		    1 ||
	    (aad_len > 0 &&
	     EVP_CipherUpdate(c->ctx, NULL, &outl, aad, (int)aad_len) != 1) ||
	    (n > 0 && EVP_CipherUpdate(c->ctx, out, &outl, in, (int)n) != 1))
		return kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM");
	if (enc) {
		if (EVP_CipherFinal_ex(c->ctx, out + n, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG,
					KURA_BOX_TAG_LEN, tag) != 1)
			return kura_fail_openssl(err, KURA_ECRYPTO,
						 "AES-GCM seal");
		return KURA_OK;
	}
	if (EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, KURA_BOX_TAG_LEN,
				tag) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM tag");
	if (EVP_CipherFinal_ex(c->ctx, out + n, &outl) != 1) {
		ERR_clear_error();
		kura_wipe(out, n);
		return kura_fail(err, KURA_EINTEGRITY,
				 "sealed value does not authenticate");
	}
	return KURA_OK;
}

enum kura_err kura_box_ctx_seal(struct kura_box_ctx *c, const uint8_t *aad,
				size_t aad_len, const uint8_t *plain, size_t n,
				uint8_t *out, struct kura_error *err)
{
	if (RAND_bytes(out, KURA_BOX_NONCE_LEN) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "nonce");
	return ctx_gcm(c, true, out, aad, aad_len, plain, n,
		       out + KURA_BOX_NONCE_LEN, out + KURA_BOX_NONCE_LEN + n,
		       err);
}

enum kura_err kura_box_ctx_open(struct kura_box_ctx *c, const uint8_t *aad,
				size_t aad_len, const uint8_t *in, size_t n,
				uint8_t *out, struct kura_error *err)
{
	if (n < KURA_BOX_OVERHEAD)
		return kura_fail(err, KURA_EINTEGRITY,
				 "sealed value too short");
	size_t plain = n - KURA_BOX_OVERHEAD;
	uint8_t tag[KURA_BOX_TAG_LEN];
	memcpy(tag, in + KURA_BOX_NONCE_LEN + plain, KURA_BOX_TAG_LEN);
	return ctx_gcm(c, false, in, aad, aad_len, in + KURA_BOX_NONCE_LEN,
		       plain, out, tag, err);
}

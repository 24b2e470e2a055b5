/*
 * ssec.c — SSE-C (customer-provided keys).  The customer's key is never
 * stored.  A DEK of an SSE-C object is wrapped by a key derived from both
 * the bucket key and the customer's key, so reading needs the customer's
 * key *and* the bucket's (shredding the bucket still destroys the data);
 * a check value lets kura refuse a wrong key with AccessDenied before any
 * decryption is attempted.  The check value is keyed with kura's system
 * key, so someone holding only the metadata cannot test guesses of a
 * customer key against it.  See docs/KEYS.md.
 *
 * Thread-safe (no state).
 */
#include <string.h>

#include "kura/crypt.h"
#include "kura/box.h"
#include "kura/hmac.h"
#include "kura/banned.h"

#define WRAP_LABEL "kura-ssec-wrap-v1"
#define CHECK_LABEL "kura-ssec-check-v1"

static enum kura_err hmac256(const uint8_t *key, size_t key_len,
			     const uint8_t *a, size_t an, const uint8_t *b,
			     size_t bn, uint8_t out[32], struct kura_error *err)
{
	uint8_t msg[96];
	if (an + bn > sizeof(msg))
		return kura_fail(err, KURA_EINVAL, "ssec: message too long");
	memcpy(msg, a, an);
	memcpy(msg + an, b, bn);
	bool ok = kura_hmac_sha256(key, key_len, msg, an + bn, out);
	kura_wipe(msg, sizeof(msg));
	if (!ok)
		return kura_fail_openssl(err, KURA_ECRYPTO, "HMAC-SHA256");
	return KURA_OK;
}

enum kura_err kura_ssec_wrap_key(const struct kura_secret *bucket_key,
				 const struct kura_secret *customer_key,
				 struct kura_secret **out,
				 struct kura_error *err)
{
	if (bucket_key->len != KURA_AES256_KEY_LEN ||
	    customer_key->len != KURA_AES256_KEY_LEN)
		return kura_fail(err, KURA_EINVAL, "ssec: keys must be 32 bytes");
	struct kura_secret *k = kura_secret_new(KURA_AES256_KEY_LEN);
	if (k == NULL)
		return kura_fail(err, KURA_ENOMEM, "ssec: locked memory");
	enum kura_err rc = hmac256(bucket_key->data, bucket_key->len,
				   (const uint8_t *)WRAP_LABEL, sizeof(WRAP_LABEL) - 1,
				   customer_key->data, customer_key->len, k->data, err);
	if (rc != KURA_OK) {
		kura_secret_free(k);
		return rc;
	}
	*out = k;
	return KURA_OK;
}

enum kura_err kura_ssec_check_value(const struct kura_secret *system_key,
				    const struct kura_secret *customer_key,
				    const uint8_t version_uid[KURA_UID_LEN],
				    uint8_t out[32], struct kura_error *err)
{
	uint8_t msg[sizeof(CHECK_LABEL) - 1 + KURA_AES256_KEY_LEN];
	if (customer_key->len != KURA_AES256_KEY_LEN)
		return kura_fail(err, KURA_EINVAL, "ssec: key must be 32 bytes");
	memcpy(msg, CHECK_LABEL, sizeof(CHECK_LABEL) - 1);
	memcpy(msg + sizeof(CHECK_LABEL) - 1, customer_key->data, KURA_AES256_KEY_LEN);
	enum kura_err rc = hmac256(system_key->data, system_key->len, msg, sizeof(msg),
				   version_uid, KURA_UID_LEN, out, err);
	kura_wipe(msg, sizeof(msg));
	return rc;
}

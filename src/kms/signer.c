/*
 * signer.c — kura's signing key, for deletion certificates.
 *
 * Where the key provider can sign (PKCS#11 token, KMIP server), the key
 * pair is created there on first use and never leaves it; the metadata
 * setting "signer" then holds "p:" + the provider's key id.  Otherwise kura
 * makes an ECDSA P-256 key pair itself and keeps the private key sealed
 * under the system key: the setting holds "l:" + the sealed PKCS#8 DER
 * (kura_box, AAD "kura-signer-v1").  Either way the first writer of the
 * setting wins, so concurrent processes agree on one signer.
 *
 * Thread-safe (signer_lock serialises the first creation).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kura/box.h"
#include "kura/log.h"
#include "kms_int.h"
#include "kura/banned.h"

#define SIGNER_SETTING "signer"
#define SIGNER_AAD "kura-signer-v1"
#define PRIV_DER_MAX 512

static enum kura_err load_setting(struct kura_kms *kms, uint8_t *val,
				  size_t cap, size_t *len,
				  struct kura_error *err)
{
	return kura_meta_setting_get(kms->meta, SIGNER_SETTING, val, cap, len,
				     err);
}

/* Make a signer and record it (losing a race to another process is fine:
 * the caller loads whatever won). */
static enum kura_err create_signer(struct kura_kms *kms,
				   const struct kura_secret *system_key,
				   struct kura_error *err)
{
	struct kura_keys *keys = kms->keys;
	uint8_t val[KURA_SETTING_MAX];
	size_t len = 0;
	enum kura_err rc;
	if ((keys->ops->caps & KURA_KEYS_CAP_SIGN) &&
	    keys->ops->signer_create) {
		char id[KURA_KEK_ID_MAX];
		rc = kura_keys_signer_create(keys, "kura deletion certificates",
					     id, err);
		if (rc != KURA_OK)
			return rc;
		len = (size_t)snprintf((char *)val, sizeof(val), "p:%s", id);
	} else {
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		struct kura_secret *der = kura_secret_new(PRIV_DER_MAX);
		int n = -1;
		if (pk != NULL && der != NULL) {
			unsigned char *p = der->data;
			n = i2d_PrivateKey(pk, NULL) <= PRIV_DER_MAX ?
				    i2d_PrivateKey(pk, &p) :
				    -1;
		}
		EVP_PKEY_free(pk);
		if (n <= 0) {
			kura_secret_free(der);
			return kura_fail_openssl(err, KURA_ECRYPTO,
						 "signing key generation");
		}
		val[0] = 'l';
		val[1] = ':';
		rc = kura_box_seal(system_key, (const uint8_t *)SIGNER_AAD,
				   sizeof(SIGNER_AAD) - 1, der->data, (size_t)n,
				   val + 2, err);
		kura_secret_free(der);
		if (rc != KURA_OK)
			return rc;
		len = 2 + (size_t)n + KURA_BOX_OVERHEAD;
	}
	rc = kura_meta_setting_insert(kms->meta, SIGNER_SETTING, val, len, err);
	if (rc == KURA_EEXIST) {
		kura_error_clear(err);
		rc = KURA_OK;
	}
	return rc;
}

/* Load (creating on first use) the signer setting into val. */
static enum kura_err signer(struct kura_kms *kms,
			    const struct kura_secret *system_key, uint8_t *val,
			    size_t cap, size_t *len, struct kura_error *err)
{
	pthread_mutex_lock(&kms->signer_lock);
	struct kura_error e = { 0 };
	enum kura_err rc = load_setting(kms, val, cap, len, &e);
	if (rc == KURA_ENOENT) {
		rc = create_signer(kms, system_key, err);
		if (rc == KURA_OK)
			rc = load_setting(kms, val, cap, len, err);
	} else if (rc != KURA_OK) {
		kura_fail(err, rc, "%s", e.msg);
	}
	pthread_mutex_unlock(&kms->signer_lock);
	if (rc == KURA_OK &&
	    (*len < 3 || val[1] != ':' || (val[0] != 'p' && val[0] != 'l')))
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "signer setting is malformed");
	return rc;
}

/* The local private key, unsealed. */
static enum kura_err local_key(const struct kura_secret *system_key,
			       const uint8_t *val, size_t len, EVP_PKEY **out,
			       struct kura_error *err)
{
	struct kura_secret *der = NULL;
	enum kura_err rc = kura_box_open_secret(system_key,
						(const uint8_t *)SIGNER_AAD,
						sizeof(SIGNER_AAD) - 1, val + 2,
						len - 2, &der, err);
	if (rc != KURA_OK)
		return rc;
	const unsigned char *p = der->data;
	EVP_PKEY *pk = d2i_AutoPrivateKey(NULL, &p, (long)der->len);
	kura_secret_free(der);
	if (pk == NULL)
		return kura_fail_openssl(err, KURA_EINTEGRITY, "signing key");
	*out = pk;
	return KURA_OK;
}

static void alg_of(const uint8_t *pub, size_t len, char alg[KURA_SIG_ALG_MAX])
{
	const unsigned char *p = pub;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
	int id = pk ? EVP_PKEY_get_base_id(pk) : 0;
	snprintf(alg, KURA_SIG_ALG_MAX, "%s",
		 id == EVP_PKEY_EC ? "ECDSA-P256-SHA256" :
		 id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS ?
				     "RSA-PSS-SHA256" :
				     "unknown");
	EVP_PKEY_free(pk);
}

static enum kura_err local_sign(EVP_PKEY *pk, const uint8_t digest[32],
				uint8_t *sig, size_t *sig_len,
				struct kura_error *err)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	size_t n = KURA_SIGNATURE_MAX;
	enum kura_err rc = KURA_OK;
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(ctx, sig, &n, digest, 32) != 1)
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "sign");
	else
		*sig_len = n;
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

static enum kura_err local_public(EVP_PKEY *pk, uint8_t pub[KURA_PUBKEY_MAX],
				  size_t *pub_len, struct kura_error *err)
{
	int n = i2d_PUBKEY(pk, NULL);
	if (n <= 0 || n > KURA_PUBKEY_MAX)
		return kura_fail_openssl(err, KURA_ECRYPTO, "public key");
	unsigned char *p = pub;
	i2d_PUBKEY(pk, &p);
	*pub_len = (size_t)n;
	return KURA_OK;
}

enum kura_err kura_kms_signer_public_key(struct kura_kms *kms,
					 const struct kura_secret *system_key,
					 uint8_t pub[KURA_PUBKEY_MAX],
					 size_t *pub_len,
					 struct kura_error *err)
{
	uint8_t val[KURA_SETTING_MAX];
	size_t len = 0;
	enum kura_err rc =
		signer(kms, system_key, val, sizeof(val) - 1, &len, err);
	if (rc != KURA_OK)
		return rc;
	if (val[0] == 'p') {
		val[len] = '\0';
		struct kura_keys *keys = kms->keys;
		if (keys->ops->public_key == NULL)
			return kura_fail(
				err, KURA_EKEY,
				"the signer is held by a provider that no longer signs");
		return kura_keys_public_key(keys, (const char *)val + 2, pub,
					    pub_len, err);
	}
	EVP_PKEY *pk = NULL;
	rc = local_key(system_key, val, len, &pk, err);
	if (rc == KURA_OK)
		rc = local_public(pk, pub, pub_len, err);
	EVP_PKEY_free(pk);
	return rc;
}

enum kura_err
kura_kms_sign(struct kura_kms *kms, const struct kura_secret *system_key,
	      const uint8_t digest[32], uint8_t sig[KURA_SIGNATURE_MAX],
	      size_t *sig_len, char alg[KURA_SIG_ALG_MAX],
	      uint8_t pub[KURA_PUBKEY_MAX], size_t *pub_len,
	      char signer_id[KURA_KEK_ID_MAX], struct kura_error *err)
{
	uint8_t val[KURA_SETTING_MAX];
	size_t len = 0;
	enum kura_err rc =
		signer(kms, system_key, val, sizeof(val) - 1, &len, err);
	if (rc != KURA_OK)
		return rc;
	if (val[0] == 'p') {
		struct kura_keys *keys = kms->keys;
		val[len] = '\0';
		const char *id = (const char *)val + 2;
		if (keys->ops->sign == NULL || keys->ops->public_key == NULL)
			return kura_fail(
				err, KURA_EKEY,
				"the signer is held by a provider that no longer signs");
		rc = kura_keys_sign(keys, id, digest, sig, sig_len, err);
		if (rc == KURA_OK)
			rc = kura_keys_public_key(keys, id, pub, pub_len, err);
		if (rc == KURA_OK) {
			snprintf(signer_id, KURA_KEK_ID_MAX, "%.*s",
				 KURA_KEK_ID_MAX - 1, id);
			alg_of(pub, *pub_len, alg);
		}
		return rc;
	}
	EVP_PKEY *pk = NULL;
	rc = local_key(system_key, val, len, &pk, err);
	if (rc == KURA_OK)
		rc = local_sign(pk, digest, sig, sig_len, err);
	if (rc == KURA_OK)
		rc = local_public(pk, pub, pub_len, err);
	EVP_PKEY_free(pk);
	if (rc == KURA_OK) {
		snprintf(signer_id, KURA_KEK_ID_MAX, "kura-local-signer");
		alg_of(pub, *pub_len, alg);
	}
	return rc;
}

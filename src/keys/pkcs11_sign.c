/*
 * pkcs11_sign.c — signing keys of the pkcs11 provider: ECDSA P-256 key
 * pairs generated in the token, the private half sensitive and never
 * extractable.
 *
 * Id: "p11sig:" + hex of the CKA_ID shared by the two halves (the public
 * key is a public token object so anyone logged in can read it).
 * sign: CKM_ECDSA over the caller's SHA-256 digest; the token answers raw
 * r || s (32 + 32 bytes), which is re-encoded as the DER ECDSA-Sig-Value
 * that keys.h promises.  public_key: CKA_EC_POINT (a DER OCTET STRING
 * holding the uncompressed point; a few modules return the bare point, so
 * both are accepted) becomes a DER SubjectPublicKeyInfo through OpenSSL,
 * which also checks that the point is on the curve.
 *
 * Thread-safe: every call runs on its own pooled session.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "kura/encode.h"
#include "kura/keys.h"
#include "pkcs11_int.h"
#include "kura/banned.h"

#define SIGN_ID_PREFIX "p11sig:"
#define P256_FIELD_LEN 32
#define P256_POINT_LEN (1 + 2 * P256_FIELD_LEN)	/* 0x04 || X || Y */

/* DER of the OID prime256v1 (1.2.840.10045.3.1.7), as CKA_EC_PARAMS. */
static const uint8_t p256_params[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};

struct signer_ctx {
	const char *label;
	char id[KURA_KEK_ID_MAX];
};

static enum kura_err signer_body(struct p11_sess *s, void *vctx,
				 struct kura_error *err)
{
	struct signer_ctx *c = vctx;
	uint8_t id[P11_RAW_ID_LEN];
	enum kura_err rc = kura_random_bytes(id, sizeof(id), err);
	if (rc != KURA_OK)
		return rc;
	CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY, priv_cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	const char *label = c->label ? c->label : "";
	CK_ATTRIBUTE pub[] = {
		{ CKA_CLASS, &pub_cls, sizeof(pub_cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_CLASS, &priv_cls, sizeof(priv_cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
	CK_RV rv = s->fn->C_GenerateKeyPair(s->h, &mech, pub,
					    sizeof(pub) / sizeof(pub[0]), priv,
					    sizeof(priv) / sizeof(priv[0]),
					    &hpub, &hpriv);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_GenerateKeyPair", KURA_EKEY,
				"new ECDSA P-256 key pair", err);
	p11_cache_put(s->p, s->gen, P11_KIND_SIGN_PUB, id, hpub, false);
	p11_cache_put(s->p, s->gen, P11_KIND_SIGN_PRIV, id, hpriv, false);
	p11_id_format(id, SIGN_ID_PREFIX, c->id, sizeof(c->id));
	return KURA_OK;
}

enum kura_err p11_signer_create(void *priv, const char *label, char *id_out,
				struct kura_error *err)
{
	if (!p11_label_valid(label))
		return kura_fail(err, KURA_EINVAL,
				 "signing key label must be at most 128 bytes of UTF-8 without control characters");
	struct signer_ctx c = { .label = label };
	enum kura_err rc = p11_run(priv, signer_body, &c, err);
	if (rc == KURA_OK)
		memcpy(id_out, c.id, sizeof(c.id));
	return rc;
}

struct sign_ctx {
	const char *key_id;
	uint8_t id[P11_RAW_ID_LEN];
	const uint8_t *digest;
	uint8_t rs[2 * P256_FIELD_LEN];
};

static enum kura_err sign_body(struct p11_sess *s, void *vctx,
			       struct kura_error *err)
{
	struct sign_ctx *c = vctx;
	struct p11_found f;
	enum kura_err rc = p11_object(s, P11_KIND_SIGN_PRIV, c->id, c->key_id,
				      P11_LOOKUP_CHECKED, &f, err);
	if (rc != KURA_OK)
		return rc;
	CK_OBJECT_HANDLE h = f.h;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_RV rv = s->fn->C_SignInit(s->h, &mech, h);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_SignInit", KURA_EKEY, c->key_id, err);
	CK_ULONG n = sizeof(c->rs);
	rv = s->fn->C_Sign(s->h, (CK_BYTE_PTR)c->digest, 32, c->rs, &n);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_Sign", KURA_EKEY, c->key_id, err);
	if (n != sizeof(c->rs))
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: C_Sign (%s) returned %lu bytes: not a P-256 key",
				 c->key_id, (unsigned long)n);
	return KURA_OK;
}

/* r || s -> DER ECDSA-Sig-Value. */
static enum kura_err sig_to_der(const uint8_t rs[2 * P256_FIELD_LEN],
				uint8_t *out, size_t *out_len,
				struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, P256_FIELD_LEN, NULL);
	BIGNUM *sv = BN_bin2bn(rs + P256_FIELD_LEN, P256_FIELD_LEN, NULL);
	if (sig == NULL || r == NULL || sv == NULL ||
	    ECDSA_SIG_set0(sig, r, sv) != 1) {
		BN_free(r);
		BN_free(sv);
		rc = kura_fail_openssl(err, KURA_ENOMEM, "ECDSA signature");
		goto out;
	}
	int n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || n > KURA_SIGNATURE_MAX) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "DER-encoding an ECDSA signature");
		goto out;
	}
	uint8_t *p = out;
	if (i2d_ECDSA_SIG(sig, &p) != n) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "DER-encoding an ECDSA signature");
		goto out;
	}
	*out_len = (size_t)n;
out:
	ECDSA_SIG_free(sig);
	return rc;
}

enum kura_err p11_sign(void *priv, const char *key_id,
		       const uint8_t digest[32], uint8_t *sig, size_t *sig_len,
		       struct kura_error *err)
{
	struct sign_ctx c;
	memset(&c, 0, sizeof(c));
	if (!p11_id_parse(key_id, SIGN_ID_PREFIX, c.id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown signing key: not a pkcs11 provider id");
	if (digest == NULL)
		return kura_fail(err, KURA_EINVAL, "sign: NULL digest");
	c.key_id = key_id;
	c.digest = digest;
	enum kura_err rc = p11_run(priv, sign_body, &c, err);
	if (rc == KURA_OK)
		rc = sig_to_der(c.rs, sig, sig_len, err);
	return rc;
}

struct pub_ctx {
	const char *key_id;
	uint8_t id[P11_RAW_ID_LEN];
	uint8_t point[P256_POINT_LEN];
};

static enum kura_err pub_body(struct p11_sess *s, void *vctx,
			      struct kura_error *err)
{
	struct pub_ctx *c = vctx;
	struct p11_found f;
	enum kura_err rc = p11_object(s, P11_KIND_SIGN_PUB, c->id, c->key_id,
				      P11_LOOKUP_CHECKED, &f, err);
	if (rc != KURA_OK)
		return rc;
	CK_OBJECT_HANDLE h = f.h;
	CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
	uint8_t params[64], point[2 + P256_POINT_LEN + 8];
	CK_ATTRIBUTE a[] = {
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_EC_PARAMS, params, sizeof(params) },
		{ CKA_EC_POINT, point, sizeof(point) },
	};
	CK_RV rv = s->fn->C_GetAttributeValue(s->h, h, a, 3);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_GetAttributeValue", KURA_EKEY,
				c->key_id, err);
	if (kt != CKK_EC || a[1].ulValueLen != sizeof(p256_params) ||
	    memcmp(params, p256_params, sizeof(p256_params)) != 0)
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: signing key '%s' is not an ECDSA P-256 key",
				 c->key_id);
	const uint8_t *pt = point;
	size_t n = a[2].ulValueLen;
	if (n == 2 + P256_POINT_LEN && point[0] == 0x04 &&
	    point[1] == P256_POINT_LEN) {
		pt += 2;	/* DER OCTET STRING, as PKCS#11 specifies */
		n -= 2;
	}
	if (n != P256_POINT_LEN || pt[0] != 0x04)
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: signing key '%s' has a malformed CKA_EC_POINT (%lu bytes)",
				 c->key_id, (unsigned long)a[2].ulValueLen);
	memcpy(c->point, pt, P256_POINT_LEN);
	return KURA_OK;
}

/* Uncompressed P-256 point -> DER SubjectPublicKeyInfo. */
static enum kura_err point_to_spki(const uint8_t point[P256_POINT_LEN],
				   uint8_t *der, size_t *der_len,
				   struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						 (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						  (void *)point, P256_POINT_LEN),
		OSSL_PARAM_construct_end(),
	};
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		rc = kura_fail_openssl(err, KURA_EKEY,
				       "pkcs11: the token's EC point is not a P-256 public key");
		goto out;
	}
	check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (check == NULL || EVP_PKEY_public_check(check) != 1) {
		rc = kura_fail_openssl(err, KURA_EKEY,
				       "pkcs11: the token's EC point is not on P-256");
		goto out;
	}
	int n = i2d_PUBKEY(pkey, NULL);
	if (n <= 0 || n > KURA_PUBKEY_MAX) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "encoding a public key");
		goto out;
	}
	uint8_t *p = der;
	if (i2d_PUBKEY(pkey, &p) != n) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "encoding a public key");
		goto out;
	}
	*der_len = (size_t)n;
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

enum kura_err p11_public_key(void *priv, const char *key_id, uint8_t *der,
			     size_t *der_len, struct kura_error *err)
{
	struct pub_ctx c;
	memset(&c, 0, sizeof(c));
	if (!p11_id_parse(key_id, SIGN_ID_PREFIX, c.id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown signing key: not a pkcs11 provider id");
	c.key_id = key_id;
	enum kura_err rc = p11_run(priv, pub_body, &c, err);
	if (rc == KURA_OK)
		rc = point_to_spki(c.point, der, der_len, err);
	return rc;
}

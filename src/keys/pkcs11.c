/*
 * pkcs11.c — the pkcs11 key provider: KEKs are AES-256 secret keys held in a
 * PKCS#11 token (an HSM, or SoftHSM2) and used only inside it.
 *
 * Configuration ([keys]): provider = pkcs11, module = PATH of the PKCS#11
 * library, token = LABEL of the token, pin_file = PATH of the user PIN (a
 * regular file of ours, mode 0600 or stricter; one trailing newline is
 * stripped) or, when pin_file is unset, the environment variable
 * KURA_PKCS11_PIN.  The PIN is kept only in a struct kura_secret (it is
 * needed again to log in after the token comes back) and never appears in
 * a message.
 *
 * Objects we create (CKA_ID = 16 random bytes, CKA_LABEL = the caller's
 * label):
 *   KEK          CKO_SECRET_KEY, CKK_AES, 32 bytes, CKA_TOKEN, CKA_PRIVATE,
 *                CKA_SENSITIVE, not CKA_EXTRACTABLE, ENCRYPT/DECRYPT/WRAP/
 *                UNWRAP.  Id "p11:" + 32 hex digits of CKA_ID.
 *   signing key  an ECDSA P-256 pair (pkcs11_sign.c).  Id "p11sig:" + hex.
 *   tombstone    CKO_DATA, CKA_APPLICATION "kura destroyed KEK", CKA_LABEL
 *                = the KEK id: left by kek_destroy so that every process
 *                can tell "destroyed" from "never existed".
 *
 * Wrapped form (what wrap returns and unwrap takes):
 *   byte 0       version, 0x01
 *   byte 1       mechanism: 0x01 AES-256-GCM, 0x02 AES key wrap with padding
 *   mechanism 0x01 (CKM_AES_GCM through C_Encrypt/C_Decrypt):
 *     bytes 2..13  IV, 12 random bytes (from the host CSPRNG)
 *     then         ciphertext (as long as the plaintext, 1..64 bytes)
 *     then         tag, 16 bytes
 *     The GCM AAD is bytes 0..1 followed by the caller's aad, so the header
 *     is authenticated too.  Anyone holding the key bytes can open it with
 *     any AES-256-GCM implementation.
 *   mechanism 0x02 (CKM_AES_KEY_WRAP_PAD, RFC 5649, through C_WrapKey/
 *     C_UnwrapKey; used when the token cannot do GCM encrypt/decrypt):
 *     bytes 2..    KWP(KEK, payload), where payload =
 *                    n (1 byte, the plaintext length, 1..64) || plaintext ||
 *                    zero bytes up to a multiple of 8 || SHA-256(bytes 0..1
 *                    || aad)
 *     Key wrap is deterministic authenticated encryption of its whole
 *     input, so the digest of the AAD is authenticated under the KEK inside
 *     the token; unwrap compares it (constant time) with the digest of the
 *     aad it was given.  No key outside the token is involved.  The payload
 *     is a whole number of 8-byte blocks so that KWP never pads: SoftHSM
 *     2.6.1 does not strip RFC 5649 padding on C_UnwrapKey (measured: a
 *     37-byte payload came back as 40 bytes).  A token with neither
 *     mechanism is refused at open.
 * Wrapped sizes: 2 + 12 + n + 16 (GCM); 2 + 8 + 8 * ceil((1 + n) / 8) + 32
 * (KWP).
 * wrap uses GCM when the token offers it; unwrap accepts either mechanism
 * the token supports, whatever wrap currently prefers.
 *
 * Error codes: an id that is not "p11:" + 32 hex digits, or that names no
 * object on a healthy token, is KURA_ENOENT.  A destroyed KEK is KURA_EKEY
 * (keys.h asks for it; the tombstone makes it so in every process, and a
 * process that destroyed the key also remembers it).  A wrapped form or aad
 * that does not authenticate is KURA_EINTEGRITY: the token reports a bad GCM
 * tag as CKR_GENERAL_ERROR (SoftHSM) or CKR_ENCRYPTED_DATA_INVALID, so
 * after such a code the token is asked whether it is still there before the
 * failure is blamed on the data.  An unavailable token is KURA_EKEY (see
 * pkcs11_session.c).
 *
 * Shredding: a KEK only ever exists as its token object; we never copy it
 * into a session object or host memory (the fallback's session objects hold
 * the bucket key being wrapped, never the KEK, and are destroyed at once).
 * C_DestroyObject therefore leaves no usable copy in any session; a cached
 * handle of a destroyed key just stops working (pkcs11_session.c).
 *
 * IVs are random, so one KEK must not seal more than 2^32 keys (NIST SP
 * 800-38D); kura seals a handful of bucket keys per KEK.
 *
 * Threading: every operation runs on a session checked out of the pool
 * (pkcs11_session.c); the configuration below is read-only after open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kura/config.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/keys.h"
#include "kura/secret.h"
#include "pkcs11_int.h"
#include "kura/banned.h"

#define KEK_ID_PREFIX "p11:"
#define KEK_LEN 32
#define PIN_MAX 256
#define PIN_ENV "KURA_PKCS11_PIN"

#define WRAP_VERSION 0x01
#define WRAP_HDR_LEN 2
#define WRAP_PLAIN_MAX 64
#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16
#define KWP_DIGEST_LEN 32
/* length byte + plaintext, zero-filled to whole 8-byte blocks */
#define KWP_BODY_LEN(n) (((size_t)(n) + 1 + 7) / 8 * 8)
#define AAD_MAX (64u * 1024u) /* far above what kura binds (a few ids) */

/* ---- the PIN ---- */

/* Read the PIN from a file only we can read; strip one trailing newline. */
static enum kura_err pin_from_file(const char *path, struct kura_secret **out,
				   struct kura_error *err)
{
	return kura_secret_from_file(path, "[keys] pin_file", PIN_MAX, out,
				     err);
}

static enum kura_err pin_load(const struct kura_config *cfg,
			      struct kura_secret **out, struct kura_error *err)
{
	const char *path = kura_config_get(cfg, "keys", "pin_file");
	if (path != NULL && path[0] != '\0')
		return pin_from_file(path, out, err);
	/* Taken from the environment (and wiped there) at start-up. */
	const struct kura_secret *env = kura_env_secret(PIN_ENV);
	if (env == NULL)
		return kura_fail(
			err, KURA_ECONFIG,
			"[keys] pin_file is unset and " PIN_ENV
			" is not set: the pkcs11 provider needs the user PIN");
	if (env->len > PIN_MAX)
		return kura_fail(err, KURA_ECONFIG,
				 PIN_ENV " is longer than %d bytes", PIN_MAX);
	*out = kura_secret_dup(env);
	if (*out == NULL)
		return kura_fail(err, KURA_ENOMEM, "locked memory for the PIN");
	return KURA_OK;
}

/* ---- open / close ---- */

static enum kura_err need_module_token(const char *module, const char *token,
				       struct kura_error *err)
{
	if (module == NULL || module[0] == '\0')
		return kura_fail(
			err, KURA_ECONFIG,
			"[keys] module: provider pkcs11 needs the path of a PKCS#11 module");
	if (token == NULL || token[0] == '\0' || strlen(token) > P11_LABEL_MAX)
		return kura_fail(
			err, KURA_ECONFIG,
			"[keys] token: provider pkcs11 needs a token label of 1..%d bytes",
			P11_LABEL_MAX);
	return KURA_OK;
}

/* Before anything is created: module and token named, the module file
 * readable, the PIN available (a private pin_file, or the environment). */
static enum kura_err p11_check_config(const struct kura_config *cfg,
				      const char *data_dir,
				      struct kura_error *err)
{
	const char *module = kura_config_get(cfg, "keys", "module");
	struct kura_secret *pin = NULL;
	(void)data_dir;
	enum kura_err rc = need_module_token(
		module, kura_config_get(cfg, "keys", "token"), err);
	if (rc != KURA_OK)
		return rc;
	/* A bare name is for the dynamic loader's search path to find. */
	if (strchr(module, '/') != NULL && access(module, R_OK) != 0)
		return kura_fail_errno(err, KURA_ECONFIG, errno,
				       "[keys] module '%s' cannot be read",
				       module);
	rc = pin_load(cfg, &pin, err);
	kura_secret_free(pin);
	return rc;
}

/* Which wrap mechanisms does the token offer for 32-byte AES keys? */
static enum kura_err probe_mechanisms(struct p11 *p, CK_FUNCTION_LIST_PTR fn,
				      CK_SLOT_ID slot, struct kura_error *err)
{
	CK_MECHANISM_INFO mi;
	CK_RV rv = fn->C_GetMechanismInfo(slot, CKM_AES_GCM, &mi);
	/* ulMaxKeySize is in bytes for AES, though some modules use bits. */
	p->can_gcm = rv == CKR_OK &&
		     (mi.flags & (CKF_ENCRYPT | CKF_DECRYPT)) ==
			     (CKF_ENCRYPT | CKF_DECRYPT) &&
		     mi.ulMaxKeySize >= KEK_LEN;
	rv = fn->C_GetMechanismInfo(slot, CKM_AES_KEY_WRAP_PAD, &mi);
	p->can_kwp = rv == CKR_OK &&
		     (mi.flags & (CKF_WRAP | CKF_UNWRAP)) ==
			     (CKF_WRAP | CKF_UNWRAP) &&
		     mi.ulMaxKeySize >= KEK_LEN;
	if (p->can_gcm)
		p->wrap_mech = P11_MECH_GCM;
	else if (p->can_kwp)
		p->wrap_mech = P11_MECH_KWP;
	else
		return kura_fail(
			err, KURA_ECONFIG,
			"pkcs11: token '%s' offers neither CKM_AES_GCM encrypt/decrypt nor "
			"CKM_AES_KEY_WRAP_PAD wrap/unwrap for AES-256 keys, so it cannot "
			"bind the associated data of wrapped keys; it cannot be used",
			p->token);
	return KURA_OK;
}

static void p11_release(struct p11 *p)
{
	p11_pool_destroy(p);
	p11_module_release(p->mod);
	p->mod = NULL;
	kura_secret_free(p->pin);
	p->pin = NULL;
}

static enum kura_err p11_open(void *priv, const struct kura_config *cfg,
			      const char *data_dir, struct kura_error *err)
{
	struct p11 *p = priv;
	(void)data_dir;
	const char *module = kura_config_get(cfg, "keys", "module");
	const char *token = kura_config_get(cfg, "keys", "token");
	enum kura_err rc = need_module_token(module, token, err);
	if (rc != KURA_OK)
		return rc;
	snprintf(p->token, sizeof(p->token), "%s", token);

	rc = pin_load(cfg, &p->pin, err);
	if (rc == KURA_OK)
		rc = p11_pool_init(p, err);
	if (rc == KURA_OK)
		rc = p11_module_acquire(module, &p->mod, err);
	if (rc != KURA_OK)
		goto out;

	struct p11_module *m = p->mod;
	CK_SLOT_ID slot = 0;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	pthread_rwlock_rdlock(&m->use);
	if (!m->initialized)
		rc = kura_fail(err, KURA_EKEY,
			       "pkcs11: module '%s' is not initialised",
			       module);
	if (rc == KURA_OK)
		rc = p11_find_slot(p, m->fn, &slot, err);
	if (rc == KURA_OK)
		rc = probe_mechanisms(p, m->fn, slot, err);
	/* Logging in now checks the PIN at start-up, not at the first PUT. */
	if (rc == KURA_OK)
		rc = p11_open_session(p, m->fn, slot, &h, err);
	if (rc == KURA_OK) {
		p->slot = slot;
		p->slot_gen = p->pool_gen = m->gen;
		p->slot_known = true;
		p->idle[p->n_idle++] = h;
		p->n_open = 1;
	}
	pthread_rwlock_unlock(&m->use);
out:
	if (rc != KURA_OK)
		p11_release(p);
	return rc;
}

static void p11_close(void *priv)
{
	p11_release(priv);
}

enum kura_err kura_keys_pkcs11_set_wrap_mech(void *priv, unsigned mech,
					     struct kura_error *err)
{
	struct p11 *p = priv;
	if ((mech == P11_MECH_GCM && p->can_gcm) ||
	    (mech == P11_MECH_KWP && p->can_kwp)) {
		p->wrap_mech = mech;
		return KURA_OK;
	}
	return kura_fail(err, KURA_EINVAL,
			 "pkcs11: token '%s' cannot wrap with mechanism %u",
			 p->token, mech);
}

/* ---- creating KEKs ---- */

struct create_ctx {
	const char *label;
	const struct kura_secret *key; /* import, or NULL to generate */
	char id[KURA_KEK_ID_MAX];
};

static enum kura_err create_body(struct p11_sess *s, void *vctx,
				 struct kura_error *err)
{
	struct create_ctx *c = vctx;
	uint8_t id[P11_RAW_ID_LEN];
	enum kura_err rc = kura_random_bytes(id, sizeof(id), err);
	if (rc != KURA_OK)
		return rc;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = KEK_LEN;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	const char *label = c->label ? c->label : "";
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &yes, sizeof(yes) },
		{ CKA_UNWRAP, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
		/* Last: CKA_VALUE_LEN to generate, CKA_VALUE to import. */
		{ CKA_VALUE_LEN, &len, sizeof(len) },
	};
	CK_ULONG nt = sizeof(t) / sizeof(t[0]);
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;
	const char *fn;
	if (c->key != NULL) {
		t[nt - 1] =
			(CK_ATTRIBUTE){ CKA_VALUE, c->key->data, c->key->len };
		fn = "C_CreateObject";
		rv = s->fn->C_CreateObject(s->h, t, nt, &h);
	} else {
		CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
		fn = "C_GenerateKey";
		rv = s->fn->C_GenerateKey(s->h, &mech, t, nt, &h);
	}
	if (rv != CKR_OK)
		return p11_fail(s, rv, fn, KURA_EKEY, "new AES-256 KEK", err);
	p11_cache_put(s->p, s->gen, P11_KIND_KEK, id, h, false);
	p11_id_format(id, KEK_ID_PREFIX, c->id, sizeof(c->id));
	return KURA_OK;
}

static enum kura_err kek_new(struct p11 *p, const char *label,
			     const struct kura_secret *key,
			     char id_out[KURA_KEK_ID_MAX],
			     struct kura_error *err)
{
	if (!p11_label_valid(label))
		return kura_fail(
			err, KURA_EINVAL,
			"KEK label must be at most %d bytes of UTF-8 without control characters",
			P11_KEK_LABEL_MAX);
	struct create_ctx c = { .label = label, .key = key };
	enum kura_err rc = p11_run(p, create_body, &c, err);
	if (rc == KURA_OK)
		memcpy(id_out, c.id, sizeof(c.id));
	return rc;
}

static enum kura_err p11_kek_create(void *priv, const char *label,
				    char id_out[KURA_KEK_ID_MAX],
				    struct kura_error *err)
{
	return kek_new(priv, label, NULL, id_out, err);
}

static enum kura_err p11_kek_import(void *priv, const char *label,
				    const struct kura_secret *key,
				    char id_out[KURA_KEK_ID_MAX],
				    struct kura_error *err)
{
	if (key == NULL || key->len != KEK_LEN)
		return kura_fail(err, KURA_EINVAL,
				 "KEK import: the key must be %d bytes",
				 KEK_LEN);
	return kek_new(priv, label, key, id_out, err);
}

/* ---- wrap / unwrap ---- */

struct wrap_ctx {
	const char *kek_id;
	uint8_t id[P11_RAW_ID_LEN];
	unsigned mech;
	const struct kura_secret *plain; /* wrap */
	const uint8_t *in;		 /* unwrap */
	size_t in_len;
	const uint8_t *ad; /* header || caller's aad */
	size_t ad_len;
	uint8_t *out; /* wrap: KURA_WRAPPED_MAX */
	size_t out_len;
	struct kura_secret *plain_out; /* unwrap */
};

static enum kura_err gcm_wrap(struct p11_sess *s, struct wrap_ctx *c,
			      CK_OBJECT_HANDLE kek, struct kura_error *err)
{
	uint8_t *iv = c->out + WRAP_HDR_LEN;
	enum kura_err rc = kura_random_bytes(iv, GCM_IV_LEN, err);
	if (rc != KURA_OK)
		return rc;
	CK_GCM_PARAMS gp = {
		.pIv = iv,
		.ulIvLen = GCM_IV_LEN,
		.ulIvBits = GCM_IV_LEN * 8,
		.pAAD = (CK_BYTE_PTR)c->ad,
		.ulAADLen = c->ad_len,
		.ulTagBits = GCM_TAG_LEN * 8,
	};
	CK_MECHANISM mech = { CKM_AES_GCM, &gp, sizeof(gp) };
	CK_RV rv = s->fn->C_EncryptInit(s->h, &mech, kek);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_EncryptInit", KURA_EKEY, c->kek_id,
				err);
	uint8_t *ct = iv + GCM_IV_LEN;
	CK_ULONG want = c->plain->len + GCM_TAG_LEN;
	CK_ULONG n = want;
	rv = s->fn->C_Encrypt(s->h, c->plain->data, c->plain->len, ct, &n);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_Encrypt", KURA_EKEY, c->kek_id, err);
	if (n != want)
		return kura_fail(
			err, KURA_EKEY,
			"pkcs11: C_Encrypt (AES-GCM) returned %lu bytes, expected %lu",
			(unsigned long)n, (unsigned long)want);
	c->out_len = WRAP_HDR_LEN + GCM_IV_LEN + want;
	return KURA_OK;
}

static enum kura_err gcm_unwrap(struct p11_sess *s, struct wrap_ctx *c,
				CK_OBJECT_HANDLE kek, struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	const uint8_t *iv = c->in + WRAP_HDR_LEN;
	const uint8_t *ct = iv + GCM_IV_LEN;
	size_t ct_len = c->in_len - WRAP_HDR_LEN - GCM_IV_LEN;
	size_t plain_len = ct_len - GCM_TAG_LEN;
	CK_GCM_PARAMS gp = {
		.pIv = (CK_BYTE_PTR)iv,
		.ulIvLen = GCM_IV_LEN,
		.ulIvBits = GCM_IV_LEN * 8,
		.pAAD = (CK_BYTE_PTR)c->ad,
		.ulAADLen = c->ad_len,
		.ulTagBits = GCM_TAG_LEN * 8,
	};
	CK_MECHANISM mech = { CKM_AES_GCM, &gp, sizeof(gp) };
	CK_RV rv = s->fn->C_DecryptInit(s->h, &mech, kek);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_DecryptInit", KURA_EKEY, c->kek_id,
				err);
	/* Some modules want room for the tag too; the secret holds both. */
	struct kura_secret *buf = kura_secret_new(ct_len);
	if (buf == NULL) {
		/* The decryption stays active: retire the session. */
		s->broken = true;
		return kura_fail(err, KURA_ENOMEM, "locked memory for a key");
	}
	CK_ULONG n = ct_len;
	rv = s->fn->C_Decrypt(s->h, (CK_BYTE_PTR)ct, ct_len, buf->data, &n);
	if (rv != CKR_OK) {
		struct kura_error sub = { 0 };
		rc = p11_fail(s, rv, "C_Decrypt", KURA_EINTEGRITY, c->kek_id,
			      &sub);
		if (rc == KURA_EINTEGRITY)
			rc = kura_fail(
				err, rc,
				"wrapped key or its associated data does not authenticate "
				"under KEK '%s' (C_Decrypt: %s)",
				c->kek_id, p11_rv_name(rv));
		else
			rc = kura_fail(err, rc, "%s", sub.msg);
		goto out;
	}
	if (n != plain_len) {
		rc = kura_fail(
			err, KURA_EINTEGRITY,
			"pkcs11: C_Decrypt (AES-GCM) returned %lu bytes, expected %zu",
			(unsigned long)n, plain_len);
		goto out;
	}
	c->plain_out = kura_secret_from(buf->data, plain_len);
	if (c->plain_out == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for a key");
out:
	kura_secret_free(buf);
	return rc;
}

static enum kura_err aad_digest(const struct wrap_ctx *c,
				uint8_t out[KWP_DIGEST_LEN],
				struct kura_error *err)
{
	unsigned int n = 0;
	if (EVP_Digest(c->ad, c->ad_len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != KWP_DIGEST_LEN)
		return kura_fail_openssl(err, KURA_ECRYPTO,
					 "SHA-256 of the AAD");
	return KURA_OK;
}

static void destroy_temp(struct p11_sess *s, CK_OBJECT_HANDLE h)
{
	/* A session object dies with its session at the latest. */
	if (s->fn->C_DestroyObject(s->h, h) != CKR_OK)
		s->broken = true;
}

static enum kura_err kwp_wrap(struct p11_sess *s, struct wrap_ctx *c,
			      CK_OBJECT_HANDLE kek, struct kura_error *err)
{
	size_t body = KWP_BODY_LEN(c->plain->len);
	size_t n = body + KWP_DIGEST_LEN;
	struct kura_secret *payload = kura_secret_new(n); /* zeroed */
	if (payload == NULL)
		return kura_fail(err, KURA_ENOMEM, "locked memory for a key");
	payload->data[0] = (uint8_t)c->plain->len;
	memcpy(payload->data + 1, c->plain->data, c->plain->len);
	enum kura_err rc = aad_digest(c, payload->data + body, err);
	if (rc != KURA_OK)
		goto out;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &no, sizeof(no) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
		{ CKA_VALUE, payload->data, n },
	};
	CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
	CK_RV rv =
		s->fn->C_CreateObject(s->h, t, sizeof(t) / sizeof(t[0]), &tmp);
	if (rv != CKR_OK) {
		rc = p11_fail(s, rv, "C_CreateObject", KURA_EKEY, "key to wrap",
			      err);
		goto out;
	}
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_ULONG len = KURA_WRAPPED_MAX - WRAP_HDR_LEN;
	rv = s->fn->C_WrapKey(s->h, &mech, kek, tmp, c->out + WRAP_HDR_LEN,
			      &len);
	destroy_temp(s, tmp);
	if (rv != CKR_OK) {
		rc = p11_fail(s, rv, "C_WrapKey", KURA_EKEY, c->kek_id, err);
		goto out;
	}
	c->out_len = WRAP_HDR_LEN + len;
out:
	kura_secret_free(payload);
	return rc;
}

static enum kura_err kwp_unwrap(struct p11_sess *s, struct wrap_ctx *c,
				CK_OBJECT_HANDLE kek, struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	struct kura_secret *buf = NULL;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &no, sizeof(no) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
	};
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
	CK_RV rv = s->fn->C_UnwrapKey(s->h, &mech, kek,
				      (CK_BYTE_PTR)c->in + WRAP_HDR_LEN,
				      c->in_len - WRAP_HDR_LEN, t,
				      sizeof(t) / sizeof(t[0]), &tmp);
	if (rv != CKR_OK) {
		struct kura_error sub = { 0 };
		rc = p11_fail(s, rv, "C_UnwrapKey", KURA_EINTEGRITY, c->kek_id,
			      &sub);
		if (rc == KURA_EINTEGRITY)
			return kura_fail(
				err, rc,
				"wrapped key does not authenticate under KEK '%s' "
				"(C_UnwrapKey: %s)",
				c->kek_id, p11_rv_name(rv));
		return kura_fail(err, rc, "%s", sub.msg);
	}
	size_t cap = c->in_len - WRAP_HDR_LEN - 8;
	buf = kura_secret_new(cap);
	if (buf == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for a key");
		goto out;
	}
	CK_ATTRIBUTE v = { CKA_VALUE, buf->data, cap };
	rv = s->fn->C_GetAttributeValue(s->h, tmp, &v, 1);
	if (rv != CKR_OK) {
		rc = p11_fail(s, rv, "C_GetAttributeValue", KURA_EKEY,
			      "unwrapped key", err);
		goto out;
	}
	uint8_t want[KWP_DIGEST_LEN];
	rc = aad_digest(c, want, err);
	if (rc != KURA_OK)
		goto out;
	/* The key wrap authenticated the payload; now its AAD digest. */
	size_t got = v.ulValueLen;
	if (got != cap || !kura_ct_equal(buf->data + got - KWP_DIGEST_LEN, want,
					 KWP_DIGEST_LEN)) {
		rc = kura_fail(
			err, KURA_EINTEGRITY,
			"wrapped key's associated data does not match under KEK '%s'",
			c->kek_id);
		goto out;
	}
	size_t plain_len = buf->data[0];
	bool zero = true;
	for (size_t i = 1 + plain_len;
	     plain_len > 0 && i < got - KWP_DIGEST_LEN; i++)
		zero = zero && buf->data[i] == 0;
	if (plain_len == 0 || plain_len > WRAP_PLAIN_MAX ||
	    KWP_BODY_LEN(plain_len) + KWP_DIGEST_LEN != got || !zero) {
		rc = kura_fail(
			err, KURA_EINTEGRITY,
			"wrapped key under KEK '%s' has a malformed payload",
			c->kek_id);
		goto out;
	}
	c->plain_out = kura_secret_from(buf->data + 1, plain_len);
	if (c->plain_out == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for a key");
out:
	destroy_temp(s, tmp);
	kura_secret_free(buf);
	return rc;
}

static enum kura_err wrap_body(struct p11_sess *s, void *vctx,
			       struct kura_error *err)
{
	struct wrap_ctx *c = vctx;
	struct p11_found f;
	/* Confirmed handle: sealing under a wrong key would lose the data. */
	enum kura_err rc = p11_object(s, P11_KIND_KEK, c->id, c->kek_id,
				      P11_LOOKUP_CHECKED, &f, err);
	if (rc != KURA_OK)
		return rc;
	c->out[0] = WRAP_VERSION;
	c->out[1] = (uint8_t)c->mech;
	return c->mech == P11_MECH_GCM ? gcm_wrap(s, c, f.h, err) :
					 kwp_wrap(s, c, f.h, err);
}

static enum kura_err unwrap_with(struct p11_sess *s, struct wrap_ctx *c,
				 CK_OBJECT_HANDLE kek, struct kura_error *err)
{
	return c->mech == P11_MECH_GCM ? gcm_unwrap(s, c, kek, err) :
					 kwp_unwrap(s, c, kek, err);
}

static enum kura_err unwrap_body(struct p11_sess *s, void *vctx,
				 struct kura_error *err)
{
	struct wrap_ctx *c = vctx;
	struct p11_found f;
	struct kura_error sub = { 0 };
	/* Trusted handle: the cheap path.  A stale handle naming another
	 * key can only make the unwrap fail, so confirm it then. */
	enum kura_err rc = p11_object(s, P11_KIND_KEK, c->id, c->kek_id,
				      P11_LOOKUP_TRUSTED, &f, err);
	if (rc != KURA_OK)
		return rc;
	rc = unwrap_with(s, c, f.h, &sub);
	if (rc == KURA_OK || !f.cached || s->retry || p11_is_down(s->p))
		return rc == KURA_OK ? rc : kura_fail(err, rc, "%s", sub.msg);
	bool ok = false;
	if (p11_object_confirm(s, P11_KIND_KEK, c->id, f.h, &ok, err) !=
	    KURA_OK)
		return KURA_EKEY;
	if (ok)
		return kura_fail(err, rc, "%s", sub.msg);
	rc = p11_object(s, P11_KIND_KEK, c->id, c->kek_id, P11_LOOKUP_FRESH, &f,
			err);
	if (rc != KURA_OK)
		return rc;
	return unwrap_with(s, c, f.h, err);
}

/* header || aad, the AAD every mechanism authenticates. */
static enum kura_err full_aad(const uint8_t hdr[WRAP_HDR_LEN],
			      const uint8_t *aad, size_t aad_n, uint8_t **out,
			      struct kura_error *err)
{
	if (aad == NULL && aad_n > 0)
		return kura_fail(err, KURA_EINVAL, "NULL aad");
	if (aad_n > AAD_MAX)
		return kura_fail(err, KURA_EINVAL, "aad longer than %u bytes",
				 AAD_MAX);
	uint8_t *buf = malloc(WRAP_HDR_LEN + aad_n);
	if (buf == NULL)
		return kura_fail(err, KURA_ENOMEM, "aad");
	memcpy(buf, hdr, WRAP_HDR_LEN);
	if (aad_n > 0)
		memcpy(buf + WRAP_HDR_LEN, aad, aad_n);
	*out = buf;
	return KURA_OK;
}

static enum kura_err p11_wrap(void *priv, const char *kek_id,
			      const struct kura_secret *plain,
			      const uint8_t *aad, size_t aad_n,
			      uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
			      struct kura_error *err)
{
	struct p11 *p = priv;
	struct wrap_ctx c;
	memset(&c, 0, sizeof(c));
	uint8_t buf[KURA_WRAPPED_MAX];
	uint8_t *full = NULL;
	if (plain == NULL || plain->len == 0 || plain->len > WRAP_PLAIN_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "wrap: key must be 1..%d bytes",
				 WRAP_PLAIN_MAX);
	if (!p11_id_parse(kek_id, KEK_ID_PREFIX, c.id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown KEK: not a pkcs11 provider id");
	c.kek_id = kek_id;
	c.mech = p->wrap_mech;
	c.plain = plain;
	c.out = buf;
	const uint8_t hdr[WRAP_HDR_LEN] = { WRAP_VERSION, (uint8_t)c.mech };
	enum kura_err rc = full_aad(hdr, aad, aad_n, &full, err);
	if (rc != KURA_OK)
		return rc;
	c.ad = full;
	c.ad_len = WRAP_HDR_LEN + aad_n;
	rc = p11_run(p, wrap_body, &c, err);
	free(full);
	if (rc != KURA_OK)
		return rc;
	memcpy(out, buf, c.out_len);
	*out_len = c.out_len;
	return KURA_OK;
}

/* Check the header and the length the mechanism implies. */
static enum kura_err wrapped_check(const struct p11 *p, const uint8_t *in,
				   size_t in_len, struct kura_error *err)
{
	if (in == NULL || in_len < WRAP_HDR_LEN)
		return kura_fail(err, KURA_EINTEGRITY,
				 "wrapped key too short (%zu bytes)", in_len);
	if (in[0] != WRAP_VERSION)
		return kura_fail(err, KURA_EINTEGRITY,
				 "wrapped key has unknown version %u",
				 (unsigned)in[0]);
	size_t body = in_len - WRAP_HDR_LEN;
	switch (in[1]) {
	case P11_MECH_GCM:
		if (body < GCM_IV_LEN + 1 + GCM_TAG_LEN ||
		    body > GCM_IV_LEN + WRAP_PLAIN_MAX + GCM_TAG_LEN)
			break;
		if (!p->can_gcm)
			return kura_fail(
				err, KURA_EKEY,
				"pkcs11: token '%s' cannot decrypt AES-GCM wrapped keys",
				p->token);
		return KURA_OK;
	case P11_MECH_KWP:
		if (body % 8 != 0 ||
		    body < 8 + KWP_BODY_LEN(1) + KWP_DIGEST_LEN ||
		    body > 8 + KWP_BODY_LEN(WRAP_PLAIN_MAX) + KWP_DIGEST_LEN)
			break;
		if (!p->can_kwp)
			return kura_fail(
				err, KURA_EKEY,
				"pkcs11: token '%s' cannot unwrap AES key-wrap-pad wrapped keys",
				p->token);
		return KURA_OK;
	default:
		return kura_fail(err, KURA_EINTEGRITY,
				 "wrapped key has unknown mechanism %u",
				 (unsigned)in[1]);
	}
	return kura_fail(
		err, KURA_EINTEGRITY,
		"wrapped key has a bad length (%zu bytes) for mechanism %u",
		in_len, (unsigned)in[1]);
}

static enum kura_err p11_unwrap(void *priv, const char *kek_id,
				const uint8_t *in, size_t in_len,
				const uint8_t *aad, size_t aad_n,
				struct kura_secret **out,
				struct kura_error *err)
{
	struct p11 *p = priv;
	struct wrap_ctx c;
	memset(&c, 0, sizeof(c));
	uint8_t *full = NULL;
	if (!p11_id_parse(kek_id, KEK_ID_PREFIX, c.id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown KEK: not a pkcs11 provider id");
	enum kura_err rc = wrapped_check(p, in, in_len, err);
	if (rc != KURA_OK)
		return rc;
	rc = full_aad(in, aad, aad_n, &full, err);
	if (rc != KURA_OK)
		return rc;
	c.kek_id = kek_id;
	c.mech = in[1];
	c.in = in;
	c.in_len = in_len;
	c.ad = full;
	c.ad_len = WRAP_HDR_LEN + aad_n;
	rc = p11_run(p, unwrap_body, &c, err);
	free(full);
	if (rc != KURA_OK) {
		kura_secret_free(c.plain_out);
		return rc;
	}
	*out = c.plain_out;
	return KURA_OK;
}

/* ---- destroy ---- */

struct destroy_ctx {
	const char *kek_id;
	uint8_t id[P11_RAW_ID_LEN];
};

static enum kura_err destroy_body(struct p11_sess *s, void *vctx,
				  struct kura_error *err)
{
	struct destroy_ctx *c = vctx;
	struct kura_error sub = { 0 };
	struct p11_found f;
	/* Never trust a cached handle for this: search afresh. */
	enum kura_err rc = p11_object(s, P11_KIND_KEK, c->id, c->kek_id,
				      P11_LOOKUP_FRESH, &f, &sub);
	if (rc == KURA_ENOENT || f.destroyed)
		return KURA_OK; /* missing or already shredded */
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", sub.msg);
	/* Tombstone first: if we die in between, the key is still there
	 * and a later destroy completes the job. */
	rc = p11_tombstone_create(s, c->kek_id, err);
	if (rc != KURA_OK)
		return rc;
	CK_RV rv = s->fn->C_DestroyObject(s->h, f.h);
	/* Someone else destroyed it between our search and now. */
	if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
		return p11_fail(s, rv, "C_DestroyObject", KURA_EKEY, c->kek_id,
				err);
	p11_cache_forget(s->p, P11_KIND_KEK, c->id, true);
	return KURA_OK;
}

static enum kura_err p11_kek_destroy(void *priv, const char *kek_id,
				     struct kura_error *err)
{
	struct destroy_ctx c;
	if (!p11_id_parse(kek_id, KEK_ID_PREFIX, c.id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown KEK: not a pkcs11 provider id");
	c.kek_id = kek_id;
	return p11_run(priv, destroy_body, &c, err);
}

const struct kura_keys_ops kura_keys_pkcs11 = {
	.name = "pkcs11",
	.caps = KURA_KEYS_CAP_HARDWARE | KURA_KEYS_CAP_IMPORT |
		KURA_KEYS_CAP_DESTROY | KURA_KEYS_CAP_SIGN,
	.priv_size = sizeof(struct p11),
	.open = p11_open,
	.close = p11_close,
	.check_config = p11_check_config,
	.kek_create = p11_kek_create,
	.wrap = p11_wrap,
	.unwrap = p11_unwrap,
	.kek_destroy = p11_kek_destroy,
	.kek_import = p11_kek_import,
	.signer_create = p11_signer_create,
	.sign = p11_sign,
	.public_key = p11_public_key,
};

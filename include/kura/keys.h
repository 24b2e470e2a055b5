/*
 * keys.h — the key-provider interface.
 *
 * A key provider holds key-encryption keys (KEKs) apart from the data and
 * performs wrap/unwrap with them; a KEK never leaves a provider that can keep
 * it (HSM, KMIP).  Implementations: local keystore (default, src/keys/local.c);
 * PKCS#11 and KMIP follow the same contract.
 *
 * Model: curl's vtls backends and SQLite's VFS.  Each implementation exports
 * one const struct kura_keys_ops; the core allocates priv_size zeroed bytes
 * for its state and passes them back on every call.  Optional slots may be
 * NULL; callers check (or query caps).
 *
 * KEK identifiers are printable ASCII strings of at most KURA_KEK_ID_MAX-1
 * bytes chosen by the provider; kura stores them beside what they wrap.
 *
 * Every function must be safe to call from many threads at once.
 */
#ifndef KURA_KEYS_H
#define KURA_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/hook.h"
#include "kura/lengths.h"
#include "kura/secret.h"

enum kura_keys_cap {
	KURA_KEYS_CAP_HARDWARE = 1u << 0, /* KEKs never in host memory */
	KURA_KEYS_CAP_SIGN = 1u << 1,	 /* has signer_create/sign/public_key */
	KURA_KEYS_CAP_IMPORT = 1u << 2,	 /* has kek_import slot */
	KURA_KEYS_CAP_DESTROY = 1u << 3, /* has kek_destroy slot */
	KURA_KEYS_CAP_REMOTE = 1u << 4,	 /* KEKs held by another party (KMIP) */
};

#define KURA_SIGNATURE_MAX 512 /* DER ECDSA P-256 or RSA-PSS up to 4096 bits */
#define KURA_PUBKEY_MAX 1024   /* DER SubjectPublicKeyInfo */

struct kura_keys_ops {
	const char *name; /* as named in [keys] provider = ... */
	unsigned caps;	  /* enum kura_keys_cap bits */
	size_t priv_size; /* state the core allocates (zeroed) */

	/* Connect/load using the [keys] section of cfg; data_dir is kura's data
	 * directory.  On failure the provider must leave nothing to release. */
	enum kura_err (*open)(void *priv, const struct kura_config *cfg,
			      const char *data_dir, struct kura_error *err);

	/* Release everything; wipe any key material held.  Called once, only
	 * after a successful open. */
	void (*close)(void *priv);

	/* Optional: check the [keys] settings open will need, without opening,
	 * connecting or creating anything (no priv: nothing is allocated yet):
	 * required keys set, named files present, readable and — for secrets —
	 * private.  KURA_ECONFIG (or the code of the failed check) naming the
	 * key.  The server runs it before it creates its data directory, so a
	 * bad configuration leaves nothing behind.  NULL: nothing to check
	 * beyond what open does. */
	enum kura_err (*check_config)(const struct kura_config *cfg,
				      const char *data_dir,
				      struct kura_error *err);

	/* Create a new AES-256 KEK.  label is a human hint (may be stored by
	 * the provider, never trusted).  Writes the new id to id_out. */
	enum kura_err (*kek_create)(void *priv, const char *label,
				    char id_out[KURA_KEK_ID_MAX],
				    struct kura_error *err);

	/* Seal plain (1..64 bytes) under KEK id, binding aad (may be empty):
	 * out receives the provider's self-describing wrapped form, at most
	 * KURA_WRAPPED_MAX bytes.  KURA_ENOENT for an unknown id, KURA_EKEY
	 * when the KEK is destroyed or disabled or the provider unreachable. */
	enum kura_err (*wrap)(void *priv, const char *kek_id,
			      const struct kura_secret *plain,
			      const uint8_t *aad, size_t aad_len,
			      uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
			      struct kura_error *err);

	/* Inverse of wrap.  KURA_EINTEGRITY when the wrapped bytes or aad do
	 * not authenticate; KURA_ENOENT / KURA_EKEY as for wrap.  *out is a
	 * new secret the caller frees. */
	enum kura_err (*unwrap)(void *priv, const char *kek_id,
				const uint8_t *in, size_t in_len,
				const uint8_t *aad, size_t aad_len,
				struct kura_secret **out,
				struct kura_error *err);

	/* Optional: destroy a KEK irrevocably (crypto-shredding).  After it
	 * returns, unwrap with kek_id fails (KURA_EKEY) in this and every
	 * other process, and no session or cache of the provider keeps a usable
	 * copy.  Destroying an already destroyed KEK is success. */
	enum kura_err (*kek_destroy)(void *priv, const char *kek_id,
				     struct kura_error *err);

	/* Optional (KURA_KEYS_CAP_IMPORT): bring-your-own-key.  Store the
	 * owner's 32-byte AES key as a new KEK, non-extractable where the
	 * provider can enforce it, and return its id.  The caller wipes key. */
	enum kura_err (*kek_import)(void *priv, const char *label,
				    const struct kura_secret *key,
				    char id_out[KURA_KEK_ID_MAX],
				    struct kura_error *err);

	/* Optional (KURA_KEYS_CAP_SIGN): create a signing key pair held by the
	 * provider (ECDSA P-256 preferred, else RSA-PSS 3072 with SHA-256;
	 * both CRYPTREC-listed) and return its id. */
	enum kura_err (*signer_create)(void *priv, const char *label,
				       char id_out[KURA_KEK_ID_MAX],
				       struct kura_error *err);

	/* Optional (KURA_KEYS_CAP_SIGN): sign the SHA-256 digest of a message
	 * with signing key key_id.  The signature is DER (ECDSA-Sig-Value) for
	 * ECDSA, or the raw RSASSA-PSS signature (salt length 32, MGF1-SHA-256);
	 * public_key tells which. */
	enum kura_err (*sign)(void *priv, const char *key_id,
			      const uint8_t digest[32],
			      uint8_t sig[KURA_SIGNATURE_MAX], size_t *sig_len,
			      struct kura_error *err);

	/* Optional (KURA_KEYS_CAP_SIGN): the public half of a signing key as a
	 * DER SubjectPublicKeyInfo, so anyone can verify without the provider. */
	enum kura_err (*public_key)(void *priv, const char *key_id,
				    uint8_t der[KURA_PUBKEY_MAX],
				    size_t *der_len, struct kura_error *err);
};

/* A provider instance: its operations and its private state. */
struct kura_keys {
	const struct kura_keys_ops *ops;
	void *priv;
	const struct kura_hook *hook; /* NULL; tests and tracing (hook.h) */
};

/* Implementations compiled in. */
extern const struct kura_keys_ops kura_keys_local;
extern const struct kura_keys_ops kura_keys_pkcs11;
extern const struct kura_keys_ops kura_keys_kmip;

/* NULL-terminated table of compiled-in providers. */
extern const struct kura_keys_ops *const kura_keys_providers[];

/* Look up [keys] provider in cfg (default "local"), allocate its state and
 * open it.  KURA_ECONFIG for an unknown provider name. */
enum kura_err kura_keys_open(const struct kura_config *cfg,
			     const char *data_dir, struct kura_keys **out,
			     struct kura_error *err);

/* Check [keys] provider (a compiled-in name) and, through the provider's
 * check_config, its settings; opens and creates nothing.  KURA_ECONFIG for
 * an unknown provider name. */
enum kura_err kura_keys_check_config(const struct kura_config *cfg,
				     const char *data_dir,
				     struct kura_error *err);

/* Close and free.  NULL is a no-op. */
void kura_keys_close(struct kura_keys *keys);

/*
 * Calls through the interface, one per slot: kura_keys_X(keys, ...) is
 * slot X with the same arguments and the same contract (above).  Callers
 * use these, never keys->ops->X(keys->priv, ...): they are the one place
 * where calls are hooked (hook.h).  An optional slot the provider lacks
 * fails with KURA_EINVAL naming the provider; callers that must tell the
 * user why check the slot or caps first.
 */
enum kura_err kura_keys_kek_create(struct kura_keys *keys, const char *label,
				   char id_out[KURA_KEK_ID_MAX],
				   struct kura_error *err);
enum kura_err kura_keys_wrap(struct kura_keys *keys, const char *kek_id,
			     const struct kura_secret *plain,
			     const uint8_t *aad, size_t aad_len,
			     uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
			     struct kura_error *err);
enum kura_err kura_keys_unwrap(struct kura_keys *keys, const char *kek_id,
			       const uint8_t *in, size_t in_len,
			       const uint8_t *aad, size_t aad_len,
			       struct kura_secret **out,
			       struct kura_error *err);
enum kura_err kura_keys_kek_destroy(struct kura_keys *keys, const char *kek_id,
				    struct kura_error *err);
enum kura_err kura_keys_kek_import(struct kura_keys *keys, const char *label,
				   const struct kura_secret *key,
				   char id_out[KURA_KEK_ID_MAX],
				   struct kura_error *err);
enum kura_err kura_keys_signer_create(struct kura_keys *keys, const char *label,
				      char id_out[KURA_KEK_ID_MAX],
				      struct kura_error *err);
enum kura_err kura_keys_sign(struct kura_keys *keys, const char *key_id,
			     const uint8_t digest[32],
			     uint8_t sig[KURA_SIGNATURE_MAX], size_t *sig_len,
			     struct kura_error *err);
enum kura_err kura_keys_public_key(struct kura_keys *keys, const char *key_id,
				   uint8_t der[KURA_PUBKEY_MAX],
				   size_t *der_len, struct kura_error *err);

#endif

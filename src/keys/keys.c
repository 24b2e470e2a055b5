/*
 * keys.c — the table of compiled-in key providers, the code that picks one
 * from [keys] provider and opens it (registry.h), and the calls through the
 * interface (keys.h): the one place a call can be hooked.
 *
 * Thread-safe: the table is constant; an opened provider is shared by all
 * threads (each provider is itself thread-safe, see keys.h).
 */
#include <stdlib.h>

#include "kura/keys.h"
#include "kura/registry.h"
#include "kura/banned.h"

const struct kura_keys_ops *const kura_keys_providers[] = {
	&kura_keys_local,
#ifdef KURA_HAVE_PKCS11
	&kura_keys_pkcs11,
#endif
#ifdef KURA_HAVE_KMIP
	&kura_keys_kmip,
#endif
	NULL,
};

static bool keys_entry(size_t i, struct kura_backend *out)
{
	const struct kura_keys_ops *o = kura_keys_providers[i];
	if (o == NULL)
		return false;
	*out = (struct kura_backend){ o,       o->name, o->caps, o->priv_size,
				      o->open, o->close };
	return true;
}

static const struct kura_registry registry = {
	"key provider", "keys", "provider", "local", keys_entry,
};

enum kura_err kura_keys_check_config(const struct kura_config *cfg,
				     const char *data_dir,
				     struct kura_error *err)
{
	struct kura_backend be;
	enum kura_err rc = kura_registry_find(&registry, cfg, &be, err);
	const struct kura_keys_ops *ops = be.ops;
	if (rc == KURA_OK && ops->check_config != NULL)
		rc = ops->check_config(cfg, data_dir, err);
	return rc;
}

enum kura_err kura_keys_open(const struct kura_config *cfg,
			     const char *data_dir, struct kura_keys **out,
			     struct kura_error *err)
{
	struct kura_backend be;
	struct kura_keys *keys = calloc(1, sizeof(*keys));
	if (keys == NULL)
		return kura_fail(err, KURA_ENOMEM, "key provider");
	enum kura_err rc = kura_registry_open(&registry, cfg, data_dir, &be,
					      &keys->priv, err);
	if (rc != KURA_OK) {
		free(keys);
		return rc;
	}
	keys->ops = be.ops;
	*out = keys;
	return KURA_OK;
}

void kura_keys_close(struct kura_keys *keys)
{
	if (keys == NULL)
		return;
	kura_registry_close(keys->ops->close, keys->priv);
	free(keys);
}

/* An optional slot the provider does not have. */
static enum kura_err lacks(const struct kura_keys *keys, const char *slot,
			   struct kura_error *err)
{
	return kura_fail(err, KURA_EINVAL, "the %s key provider has no %s",
			 keys->ops->name, slot);
}

enum kura_err kura_keys_kek_create(struct kura_keys *keys, const char *label,
				   char id_out[KURA_KEK_ID_MAX],
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "kek_create", err);
	return keys->ops->kek_create(keys->priv, label, id_out, err);
}

enum kura_err kura_keys_wrap(struct kura_keys *keys, const char *kek_id,
			     const struct kura_secret *plain,
			     const uint8_t *aad, size_t aad_len,
			     uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
			     struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "wrap", err);
	return keys->ops->wrap(keys->priv, kek_id, plain, aad, aad_len, out,
			       out_len, err);
}

enum kura_err kura_keys_unwrap(struct kura_keys *keys, const char *kek_id,
			       const uint8_t *in, size_t in_len,
			       const uint8_t *aad, size_t aad_len,
			       struct kura_secret **out, struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "unwrap", err);
	return keys->ops->unwrap(keys->priv, kek_id, in, in_len, aad, aad_len,
				 out, err);
}

enum kura_err kura_keys_kek_destroy(struct kura_keys *keys, const char *kek_id,
				    struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "kek_destroy", err);
	if (keys->ops->kek_destroy == NULL)
		return lacks(keys, "kek_destroy", err);
	return keys->ops->kek_destroy(keys->priv, kek_id, err);
}

enum kura_err kura_keys_kek_import(struct kura_keys *keys, const char *label,
				   const struct kura_secret *key,
				   char id_out[KURA_KEK_ID_MAX],
				   struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "kek_import", err);
	if (keys->ops->kek_import == NULL)
		return lacks(keys, "kek_import", err);
	return keys->ops->kek_import(keys->priv, label, key, id_out, err);
}

enum kura_err kura_keys_signer_create(struct kura_keys *keys, const char *label,
				      char id_out[KURA_KEK_ID_MAX],
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "signer_create", err);
	if (keys->ops->signer_create == NULL)
		return lacks(keys, "signer_create", err);
	return keys->ops->signer_create(keys->priv, label, id_out, err);
}

enum kura_err kura_keys_sign(struct kura_keys *keys, const char *key_id,
			     const uint8_t digest[32],
			     uint8_t sig[KURA_SIGNATURE_MAX], size_t *sig_len,
			     struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "sign", err);
	if (keys->ops->sign == NULL)
		return lacks(keys, "sign", err);
	return keys->ops->sign(keys->priv, key_id, digest, sig, sig_len, err);
}

enum kura_err kura_keys_public_key(struct kura_keys *keys, const char *key_id,
				   uint8_t der[KURA_PUBKEY_MAX],
				   size_t *der_len, struct kura_error *err)
{
	KURA_HOOK_BEFORE(keys, "public_key", err);
	if (keys->ops->public_key == NULL)
		return lacks(keys, "public_key", err);
	return keys->ops->public_key(keys->priv, key_id, der, der_len, err);
}

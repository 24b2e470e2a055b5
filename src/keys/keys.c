/*
 * keys.c — the table of compiled-in key providers and the code that picks
 * one from [keys] provider, allocates its state and opens it.
 *
 * Thread-safe: the table is constant; an opened provider is shared by all
 * threads (each provider is itself thread-safe, see keys.h).
 */
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/config.h"
#include "kura/keys.h"
#include "kura/banned.h"

#define DEFAULT_PROVIDER "local"

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

static const struct kura_keys_ops *find_provider(const char *name)
{
	for (size_t i = 0; kura_keys_providers[i] != NULL; i++)
		if (strcmp(kura_keys_providers[i]->name, name) == 0)
			return kura_keys_providers[i];
	return NULL;
}

/* The configured provider's ops; KURA_ECONFIG naming the known ones. */
static enum kura_err configured(const struct kura_config *cfg,
				const struct kura_keys_ops **out,
				struct kura_error *err)
{
	const char *name = kura_config_get(cfg, "keys", "provider");
	if (name == NULL || name[0] == '\0')
		name = DEFAULT_PROVIDER;
	const struct kura_keys_ops *ops = find_provider(name);
	if (ops != NULL) {
		*out = ops;
		return KURA_OK;
	}
	struct kura_buf known;
	kura_buf_init(&known, 512);
	/* The list only decorates the message: after a failure it reads
	 * "none". */
	for (size_t i = 0; kura_keys_providers[i] != NULL; i++)
		KURA_IGNORE(kura_buf_addf(&known, "%s%s", i ? ", " : "",
					  kura_keys_providers[i]->name));
	enum kura_err rc = kura_fail(err, KURA_ECONFIG,
				     "[keys] provider: unknown key provider '%s' (known: %s)",
				     name, known.data ? known.data : "none");
	kura_buf_release(&known);
	return rc;
}

enum kura_err kura_keys_check_config(const struct kura_config *cfg,
				     const char *data_dir,
				     struct kura_error *err)
{
	const struct kura_keys_ops *ops = NULL;
	enum kura_err rc = configured(cfg, &ops, err);
	if (rc == KURA_OK && ops->check_config != NULL)
		rc = ops->check_config(cfg, data_dir, err);
	return rc;
}

enum kura_err kura_keys_open(const struct kura_config *cfg,
			     const char *data_dir, struct kura_keys **out,
			     struct kura_error *err)
{
	const struct kura_keys_ops *ops = NULL;
	enum kura_err rc = configured(cfg, &ops, err);
	if (rc != KURA_OK)
		return rc;
	const char *name = ops->name;

	struct kura_keys *keys = calloc(1, sizeof(*keys));
	void *priv = calloc(1, ops->priv_size ? ops->priv_size : 1);
	if (keys == NULL || priv == NULL) {
		free(keys);
		free(priv);
		return kura_fail(err, KURA_ENOMEM, "key provider '%s'", name);
	}
	rc = ops->open(priv, cfg, data_dir, err);
	if (rc != KURA_OK) {
		free(priv);
		free(keys);
		return rc;
	}
	keys->ops = ops;
	keys->priv = priv;
	*out = keys;
	return KURA_OK;
}

void kura_keys_close(struct kura_keys *keys)
{
	if (keys == NULL)
		return;
	keys->ops->close(keys->priv);
	free(keys->priv);
	free(keys);
}

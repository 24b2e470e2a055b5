/*
 * meta.c — the table of compiled-in metadata stores and the generic
 * open/close that picks one by [meta] driver.
 *
 * The core owns the private state: priv_size zeroed bytes, handed to the
 * implementation's open and freed after its close.  A kura_meta is shared
 * by all threads; the implementations are thread-safe.
 */
#include <stdlib.h>
#include <string.h>

#include "kura/meta.h"
#include "kura/banned.h"

const struct kura_meta_ops *const kura_metas[] = {
	&kura_meta_sqlite,
	NULL,
};

enum kura_err kura_meta_open(const struct kura_config *cfg,
			     const char *data_dir, struct kura_meta **out,
			     struct kura_error *err)
{
	const char *name = cfg != NULL ? kura_config_get(cfg, "meta", "driver")
				       : NULL;
	const struct kura_meta_ops *ops = NULL;
	struct kura_meta *meta = NULL;
	enum kura_err r;

	if (name == NULL)
		name = "sqlite";
	for (size_t i = 0; kura_metas[i] != NULL; i++) {
		if (strcmp(kura_metas[i]->name, name) == 0) {
			ops = kura_metas[i];
			break;
		}
	}
	if (ops == NULL)
		return kura_fail(err, KURA_ECONFIG,
				 "unknown metadata store '%s'", name);

	meta = calloc(1, sizeof(*meta));
	if (meta == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	meta->ops = ops;
	meta->priv = calloc(1, ops->priv_size > 0 ? ops->priv_size : 1);
	if (meta->priv == NULL) {
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
		goto out;
	}
	r = ops->open(meta->priv, cfg, data_dir, err);
out:
	if (r != KURA_OK) {
		free(meta->priv);
		free(meta);
		return r;
	}
	*out = meta;
	return KURA_OK;
}

void kura_meta_close(struct kura_meta *meta)
{
	if (meta == NULL)
		return;
	meta->ops->close(meta->priv);
	free(meta->priv);
	free(meta);
}

/*
 * store.c — the table of compiled-in data stores and the code that picks
 * one from [storage] backend, allocates its state and opens it.
 *
 * Thread-safe: the table is constant; an opened store is shared by all
 * threads (each store is itself thread-safe, see store.h).
 */
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/config.h"
#include "kura/store.h"
#include "kura/banned.h"

#define DEFAULT_STORE "fs"

const struct kura_store_ops *const kura_stores[] = {
	&kura_store_fs,
	NULL,
};

static const struct kura_store_ops *find_store(const char *name)
{
	for (size_t i = 0; kura_stores[i] != NULL; i++)
		if (strcmp(kura_stores[i]->name, name) == 0)
			return kura_stores[i];
	return NULL;
}

enum kura_err kura_store_open(const struct kura_config *cfg,
			      const char *data_dir, struct kura_store **out,
			      struct kura_error *err)
{
	const char *name = kura_config_get(cfg, "storage", "backend");
	if (name == NULL || name[0] == '\0')
		name = DEFAULT_STORE;
	const struct kura_store_ops *ops = find_store(name);
	if (ops == NULL) {
		struct kura_buf known;
		kura_buf_init(&known, 512);
		/* The list only decorates the message: after a failure it
		 * reads "none". */
		for (size_t i = 0; kura_stores[i] != NULL; i++)
			KURA_IGNORE(kura_buf_addf(&known, "%s%s", i ? ", " : "",
						  kura_stores[i]->name));
		enum kura_err rc = kura_fail(err, KURA_ECONFIG,
					     "[storage] backend: unknown data store '%s' (known: %s)",
					     name, known.data ? known.data : "none");
		kura_buf_release(&known);
		return rc;
	}

	struct kura_store *store = calloc(1, sizeof(*store));
	void *priv = calloc(1, ops->priv_size ? ops->priv_size : 1);
	if (store == NULL || priv == NULL) {
		free(store);
		free(priv);
		return kura_fail(err, KURA_ENOMEM, "data store '%s'", name);
	}
	enum kura_err rc = ops->open(priv, cfg, data_dir, err);
	if (rc != KURA_OK) {
		free(priv);
		free(store);
		return rc;
	}
	store->ops = ops;
	store->priv = priv;
	*out = store;
	return KURA_OK;
}

void kura_store_close(struct kura_store *store)
{
	if (store == NULL)
		return;
	if (store->ops->close != NULL)
		store->ops->close(store->priv);
	free(store->priv);
	free(store);
}

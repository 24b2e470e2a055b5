/*
 * registry.c — the one copy of "find the implementation configuration
 * names, allocate its state, open it" (registry.h).
 *
 * Thread-safe: no state; the tables it reads are constant.
 */
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/registry.h"
#include "kura/banned.h"

enum kura_err kura_registry_find(const struct kura_registry *r,
				 const struct kura_config *cfg,
				 struct kura_backend *out,
				 struct kura_error *err)
{
	const char *name =
		cfg != NULL ? kura_config_get(cfg, r->section, r->key) : NULL;
	struct kura_backend be;
	struct kura_buf known;
	if (name == NULL || name[0] == '\0')
		name = r->fallback;
	if (name == NULL) /* nothing named and nothing to fall back to */
		return kura_fail(err, KURA_ECONFIG, "[%s] %s: required",
				 r->section, r->key);
	for (size_t i = 0; r->entry(i, &be); i++) {
		if (strcmp(be.name, name) == 0) {
			*out = be;
			return KURA_OK;
		}
	}
	enum kura_err listed = KURA_OK;
	kura_buf_init(&known, 512);
	for (size_t i = 0; listed == KURA_OK && r->entry(i, &be); i++)
		listed = kura_buf_addf(&known, "%s%s", i ? ", " : "", be.name);
	const char *list = known.data != NULL ? known.data : "none";
	if (listed != KURA_OK)
		list = "?";
	enum kura_err rc = kura_fail(err, KURA_ECONFIG,
				     "[%s] %s: unknown %s '%s' (known: %s)",
				     r->section, r->key, r->what, name, list);
	kura_buf_release(&known);
	return rc;
}

enum kura_err kura_registry_open(const struct kura_registry *r,
				 const struct kura_config *cfg,
				 const char *data_dir, struct kura_backend *be,
				 void **priv, struct kura_error *err)
{
	struct kura_backend found;
	enum kura_err rc = kura_registry_find(r, cfg, &found, err);
	if (rc != KURA_OK)
		return rc;
	void *p = calloc(1, found.priv_size ? found.priv_size : 1);
	if (p == NULL)
		return kura_fail(err, KURA_ENOMEM, "%s '%s'", r->what,
				 found.name);
	rc = found.open(p, cfg, data_dir, err);
	if (rc != KURA_OK) {
		free(p);
		return rc;
	}
	*be = found;
	*priv = p;
	return KURA_OK;
}

void kura_registry_close(void (*close)(void *priv), void *priv)
{
	if (priv == NULL)
		return;
	if (close != NULL)
		close(priv);
	free(priv);
}

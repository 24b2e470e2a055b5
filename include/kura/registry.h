/*
 * registry.h — finding one implementation of a pluggable interface by the
 * name configuration gives, allocating its state and opening it: the code
 * the data store (store.h), the metadata store (meta.h) and the key
 * provider (keys.h) share.
 *
 * Each interface keeps its NULL-terminated table of compiled-in
 * implementations and describes it with a struct kura_registry whose entry
 * function copies the members every ops struct begins with (name, caps,
 * priv_size, open, close) into a struct kura_backend; the registry needs
 * nothing else of the ops, so it works on three unrelated struct types
 * without a cast.  As the style guide says: the core allocates the private
 * state (priv_size zeroed bytes) and passes it to the implementation's
 * open; it frees it after the implementation's close.
 *
 * Thread-safe: no state.
 */
#ifndef KURA_REGISTRY_H
#define KURA_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "kura/config.h"
#include "kura/err.h"

/* What every ops struct begins with. */
struct kura_backend {
	const void *ops;  /* the implementation's const struct ..._ops */
	const char *name; /* as named in configuration */
	unsigned caps;
	size_t priv_size; /* zeroed bytes the core allocates */
	enum kura_err (*open)(void *priv, const struct kura_config *cfg,
			      const char *data_dir, struct kura_error *err);
	void (*close)(void *priv); /* may be NULL: nothing to release */
};

struct kura_registry {
	const char *what;    /* "data store", for messages */
	const char *section; /* [section] key names the implementation */
	const char *key;
	const char *fallback; /* when cfg is NULL or the value empty */
	/* Fill *out with the i-th compiled-in implementation; false past the
	 * end of the table. */
	bool (*entry)(size_t i, struct kura_backend *out);
};

/* The implementation cfg names (r->fallback when cfg is NULL or the value
 * is empty).  KURA_ECONFIG "[section] key: unknown WHAT 'name' (known:
 * a, b)" when none is compiled in under that name. */
enum kura_err kura_registry_find(const struct kura_registry *r,
				 const struct kura_config *cfg,
				 struct kura_backend *out,
				 struct kura_error *err);

/* Find it, allocate its state and open it; on success *be describes it
 * and *priv is its state, for kura_registry_close.  On failure nothing is
 * left to release. */
enum kura_err kura_registry_open(const struct kura_registry *r,
				 const struct kura_config *cfg,
				 const char *data_dir, struct kura_backend *be,
				 void **priv, struct kura_error *err);

/* Close the state an implementation opened (close may be NULL) and free
 * it.  priv NULL is a no-op. */
void kura_registry_close(void (*close)(void *priv), void *priv);

#endif

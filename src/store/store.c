/*
 * store.c — the table of compiled-in data stores, the code that picks one
 * from [storage] backend and opens it (registry.h), and the calls through
 * the interface (store.h): the one place a call can be hooked.
 *
 * Thread-safe: the table is constant; an opened store is shared by all
 * threads (each store is itself thread-safe, see store.h).
 */
#include <stdlib.h>
#include <string.h>

#include "kura/registry.h"
#include "kura/store.h"
#ifdef KURA_HAVE_S3
#include "kura/store_s3.h"
#endif
#include "kura/banned.h"

const struct kura_store_ops *const kura_stores[] = {
	&kura_store_fs,
#ifdef KURA_HAVE_S3
	&kura_store_s3,
#endif
	NULL,
};

static bool store_entry(size_t i, struct kura_backend *out)
{
	const struct kura_store_ops *o = kura_stores[i];
	if (o == NULL)
		return false;
	/* The registry only finds stores by name: their open takes the
	 * section too, so store.c opens them itself. */
	*out = (struct kura_backend){ o,    o->name, o->caps, o->priv_size,
				      NULL, o->close };
	return true;
}

/* The registry that section's name key picks from: [storage] backend
 * (default fs) or [backend.NAME] type (required). */
static struct kura_registry registry_for(const char *section)
{
	if (strcmp(section, "storage") == 0)
		return (struct kura_registry){ "data store", "storage",
					       "backend", "fs", store_entry };
	return (struct kura_registry){ "data store", section, "type", NULL,
				       store_entry };
}

enum kura_err kura_store_check_section(const struct kura_config *cfg,
				       const char *section,
				       struct kura_error *err)
{
	struct kura_registry r = registry_for(section);
	struct kura_backend be = { 0 };
	const char *type = cfg && r.fallback == NULL ?
				   kura_config_get(cfg, section, "type") :
				   NULL;
	if (r.fallback == NULL && (type == NULL || type[0] == '\0'))
		return kura_fail(err, KURA_ECONFIG,
				 "[%s] type: required (fs or s3)", section);
	enum kura_err rc = kura_registry_find(&r, cfg, &be, err);
	const struct kura_store_ops *ops = be.ops;
	if (rc == KURA_OK && cfg != NULL && ops->check != NULL)
		rc = ops->check(cfg, section, err);
	return rc;
}

enum kura_err kura_store_check_config(const struct kura_config *cfg,
				      struct kura_error *err)
{
	return kura_store_check_section(cfg, "storage", err);
}

enum kura_err kura_store_open_section(const struct kura_config *cfg,
				      const char *section, const char *data_dir,
				      struct kura_store **out,
				      struct kura_error *err)
{
	struct kura_registry r = registry_for(section);
	struct kura_backend be;
	enum kura_err rc = kura_store_check_section(cfg, section, err);
	if (rc == KURA_OK)
		rc = kura_registry_find(&r, cfg, &be, err);
	if (rc != KURA_OK)
		return rc;
	const struct kura_store_ops *ops = be.ops;
	struct kura_store *store = calloc(1, sizeof(*store));
	void *priv = calloc(1, ops->priv_size ? ops->priv_size : 1);
	if (store == NULL || priv == NULL) {
		free(store);
		free(priv);
		return kura_fail(err, KURA_ENOMEM, "data store '%s'", section);
	}
	rc = ops->open(priv, cfg, section, data_dir, err);
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

enum kura_err kura_store_open(const struct kura_config *cfg,
			      const char *data_dir, struct kura_store **out,
			      struct kura_error *err)
{
	return kura_store_open_section(cfg, "storage", data_dir, out, err);
}

void kura_store_close(struct kura_store *store)
{
	if (store == NULL)
		return;
	kura_registry_close(store->ops->close, store->priv);
	free(store);
}

enum kura_err kura_store_writer_open(struct kura_store *store,
				     const uint8_t id[KURA_BLOB_ID_LEN],
				     struct kura_store_writer **out,
				     struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "writer_open", err);
	return store->ops->writer_open(store->priv, id, out, err);
}

enum kura_err kura_store_writer_write(struct kura_store *store,
				      struct kura_store_writer *w,
				      const void *p, size_t n,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "writer_write", err);
	return store->ops->writer_write(w, p, n, err);
}

enum kura_err kura_store_writer_finish(struct kura_store *store,
				       struct kura_store_writer *w,
				       struct kura_error *err)
{
	/* A hooked failure must keep the slot's promise: the writer is
	 * freed and its staged data removed. */
	if (store->hook != NULL) {
		enum kura_err rc = store->hook->before(store->hook->ctx,
						       "writer_finish", err);
		if (rc != KURA_OK) {
			store->ops->writer_abort(w);
			return rc;
		}
	}
	return store->ops->writer_finish(w, err);
}

void kura_store_writer_abort(struct kura_store *store,
			     struct kura_store_writer *w)
{
	store->ops->writer_abort(w);
}

enum kura_err kura_store_publish(struct kura_store *store,
				 const uint8_t id[KURA_BLOB_ID_LEN],
				 struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "publish", err);
	if (store->ops->publish == NULL)
		return KURA_OK;
	return store->ops->publish(store->priv, id, err);
}

enum kura_err kura_store_reader_open(struct kura_store *store,
				     const uint8_t id[KURA_BLOB_ID_LEN],
				     struct kura_store_reader **out,
				     uint64_t *size, struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "reader_open", err);
	return store->ops->reader_open(store->priv, id, out, size, err);
}

enum kura_err kura_store_reader_pread(struct kura_store *store,
				      struct kura_store_reader *r, void *p,
				      size_t n, uint64_t off,
				      struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "reader_pread", err);
	return store->ops->reader_pread(r, p, n, off, err);
}

void kura_store_reader_close(struct kura_store *store,
			     struct kura_store_reader *r)
{
	store->ops->reader_close(r);
}

enum kura_err kura_store_reader_next(struct kura_store *store,
				     struct kura_store_reader *r,
				     uint64_t *size, struct kura_error *err)
{
	if (store->ops->reader_next == NULL)
		return kura_fail(err, KURA_ENOENT, "no other copy");
	return store->ops->reader_next(r, size, err);
}

enum kura_err kura_store_remove(struct kura_store *store,
				const uint8_t id[KURA_BLOB_ID_LEN],
				struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "remove", err);
	return store->ops->remove(store->priv, id, err);
}

enum kura_err kura_store_recover(struct kura_store *store,
				 kura_store_referenced_fn referenced, void *ctx,
				 uint64_t *removed, struct kura_error *err)
{
	KURA_HOOK_BEFORE(store, "recover", err);
	return store->ops->recover(store->priv, referenced, ctx, removed, err);
}

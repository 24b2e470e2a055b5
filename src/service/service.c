/*
 * service.c — assemble and tear down a struct kura_service (see service.h),
 * and the recovery and garbage collection that keep blobs and metadata in
 * step.
 *
 * Order matters: the owner's lock before anything is created or migrated
 * (a second server must change nothing), then metadata (the source of
 * truth), then the key provider and system key, then the store, whose
 * recovery asks metadata which staged blobs are referenced.
 *
 * Invariant: recovery and garbage collection run only in the process that
 * holds the data directory's lock (svc->dir_lock), so they can never
 * remove a blob that a writer or reader of another process is using.
 */
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/audit.h"
#include "kura/auth.h"
#include "kura/dirlock.h"
#include "kura/fsutil.h"
#include "kura/hmac.h"
#include "kura/log.h"
#include "kura/placement.h"
#include "kura/service.h"
#include "service_int.h"
#include "kura/banned.h"

#define GC_BATCH 256
#define PIN_BUCKETS 1024

/* A counted set of blob ids, hashed on their (random) first bytes. */
struct pin {
	struct pin *next;
	uint8_t id[KURA_BLOB_ID_LEN];
	unsigned count;
};

struct kura_pins {
	pthread_mutex_t lock;
	struct pin *buckets[PIN_BUCKETS];
};

static struct pin **pin_slot(struct kura_pins *p, const uint8_t *id)
{
	unsigned h = ((unsigned)id[0] << 8 | id[1]) % PIN_BUCKETS;
	struct pin **pp = &p->buckets[h];
	while (*pp && memcmp((*pp)->id, id, KURA_BLOB_ID_LEN) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void unpin_locked(struct kura_pins *p, const uint8_t *id)
{
	struct pin **pp = pin_slot(p, id);
	if (*pp && --(*pp)->count == 0) {
		struct pin *dead = *pp;
		*pp = dead->next;
		free(dead);
	}
}

enum kura_err kura_service_pin(struct kura_service *svc,
			       const uint8_t (*ids)[KURA_BLOB_ID_LEN], size_t n,
			       struct kura_error *err)
{
	struct kura_pins *p = svc->pins;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < n; i++) {
		struct pin **pp = pin_slot(p, ids[i]);
		if (*pp == NULL) {
			struct pin *np = calloc(1, sizeof(*np));
			if (np == NULL) {
				while (i-- > 0)
					unpin_locked(p, ids[i]);
				pthread_mutex_unlock(&p->lock);
				return kura_fail(err, KURA_ENOMEM, "pin");
			}
			memcpy(np->id, ids[i], KURA_BLOB_ID_LEN);
			*pp = np;
		}
		(*pp)->count++;
	}
	pthread_mutex_unlock(&p->lock);
	return KURA_OK;
}

void kura_service_unpin(struct kura_service *svc,
			const uint8_t (*ids)[KURA_BLOB_ID_LEN], size_t n)
{
	struct kura_pins *p = svc->pins;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < n; i++)
		unpin_locked(p, ids[i]);
	pthread_mutex_unlock(&p->lock);
}

static bool is_pinned(struct kura_service *svc, const uint8_t *id)
{
	struct kura_pins *p = svc->pins;
	pthread_mutex_lock(&p->lock);
	bool pinned = *pin_slot(p, id) != NULL;
	pthread_mutex_unlock(&p->lock);
	return pinned;
}

static void pins_free(struct kura_pins *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < PIN_BUCKETS; i++) {
		struct pin *x = p->buckets[i];
		while (x) {
			struct pin *next = x->next;
			free(x);
			x = next;
		}
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static enum kura_err read_settings(struct kura_service *svc,
				   struct kura_error *err)
{
	const struct kura_config *cfg = svc->cfg;
	const char *region = kura_config_get(cfg, "server", "region");
	size_t rlen = strlen(region);
	/* It is part of every credential scope: a slash or a space would
	 * make requests unverifiable, silent truncation would too. */
	if (rlen == 0 || rlen >= sizeof(svc->region) ||
	    strspn(region,
		   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789-_.") != rlen)
		return kura_fail(err, KURA_ECONFIG,
				 "[server] region '%s' must be 1 to "
				 "%zu letters, digits, '-', '_' or '.'",
				 region, sizeof(svc->region) - 1);
	snprintf(svc->region, sizeof(svc->region), "%s", region);
	uint64_t seg = kura_config_get_u64(cfg, "storage", "segment_size");
	if (seg > UINT32_MAX || !kura_seg_size_valid((uint32_t)seg))
		return kura_fail(
			err, KURA_ECONFIG,
			"[storage] segment_size must be a power of two "
			"from 4K to 16M");
	svc->seg_size = (uint32_t)seg;
	svc->max_object_size =
		kura_config_get_u64(cfg, "limits", "max_object_size");
	svc->max_header_bytes =
		kura_config_get_u64(cfg, "limits", "max_header_bytes");
	svc->max_url_bytes =
		kura_config_get_u64(cfg, "limits", "max_url_bytes");
	svc->max_xml_body = kura_config_get_u64(cfg, "limits", "max_xml_body");
	svc->lifecycle_day_ms =
		(int64_t)kura_config_get_u64(cfg, "lifecycle", "day_seconds") *
		1000;
	svc->max_list_response =
		kura_config_get_u64(cfg, "limits", "max_list_response");
	svc->clock_skew = kura_config_get_u64(cfg, "limits", "clock_skew");
	svc->tls = kura_config_get(cfg, "server", "tls_cert") != NULL;
	svc->ssec_over_http =
		kura_config_get_bool(cfg, "server", "allow_ssec_over_http");

	const char *domains =
		kura_config_get(cfg, "server", "virtual_host_domains");
	const char *p = domains ? domains : "";
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if (n == 0)
			break;
		if (svc->n_vhost_domains == KURA_MAX_VHOST_DOMAINS || n >= 256)
			return kura_fail(
				err, KURA_ECONFIG,
				"[server] virtual_host_domains: too many or too long");
		memcpy(svc->vhost_domains[svc->n_vhost_domains], p, n);
		svc->vhost_domains[svc->n_vhost_domains][n] = '\0';
		svc->n_vhost_domains++;
		p += n;
	}
	return KURA_OK;
}

enum kura_err kura_service_check_config(const struct kura_config *cfg,
					struct kura_error *err)
{
	struct kura_service *tmp = calloc(1, sizeof(*tmp));
	if (tmp == NULL)
		return kura_fail(err, KURA_ENOMEM, "configuration check");
	tmp->cfg = cfg;
	enum kura_err rc = KURA_OK;
	const char *dir = kura_config_get(cfg, "server", "data_dir");
	/* Room for the names of the files below it. */
	if (dir[0] == '\0' || strlen(dir) >= sizeof(tmp->data_dir) - 256)
		rc = kura_fail(err, KURA_ECONFIG,
			       "[server] data_dir must be a path "
			       "of 1 to %zu bytes",
			       sizeof(tmp->data_dir) - 257);
	if (rc == KURA_OK)
		rc = read_settings(tmp, err);
	free(tmp);
	return rc;
}

/* The owner's locks: the data directory's, and the blob store's when
 * [storage] path puts it elsewhere (a second server with another data
 * directory but the same store would otherwise recover it too). */
static enum kura_err take_locks(struct kura_service *svc,
				struct kura_error *err)
{
	enum kura_err rc = kura_dirlock_acquire(svc->data_dir, "data directory",
						&svc->dir_lock, err);
	const char *store = kura_config_get(svc->cfg, "storage", "path");
	struct stat a, b;
	if (rc != KURA_OK || store == NULL)
		return rc;
	rc = kura_mkdirs(store, 0700, err);
	if (rc != KURA_OK)
		return rc;
	/* The data directory itself: its lock is held already. */
	if (stat(store, &a) == 0 && stat(svc->data_dir, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return KURA_OK;
	return kura_dirlock_acquire(store, "[storage] path", &svc->store_lock,
				    err);
}

static enum kura_err need_owner(const struct kura_service *svc,
				const char *what, struct kura_error *err)
{
	if (svc->dir_lock != NULL)
		return KURA_OK;
	return kura_fail(err, KURA_ESTATE,
			 "%s: only the process that owns the data "
			 "directory (the server) may do this",
			 what);
}

/* Checkpoints are signed like deletion certificates: by the provider's
 * signing key where it has one, else by kura's signer sealed under the
 * system key.  The system key may appear after the log is opened (it is
 * created through the audited provider), so it is looked up per call. */
static enum kura_err sign_checkpoint(void *ctx, const uint8_t digest[32],
				     uint8_t *sig, size_t *sig_len,
				     char alg[32], uint8_t *pub,
				     size_t *pub_len, char signer[128],
				     struct kura_error *err)
{
	struct kura_service *svc = ctx;
	if (svc->kms == NULL || svc->system_key == NULL)
		return kura_fail(err, KURA_EKEY,
				 "audit checkpoint: no signer yet");
	return kura_kms_sign(svc->kms, svc->system_key, digest, sig, sig_len,
			     alg, pub, pub_len, signer, err);
}

static enum kura_err open_audit(struct kura_service *svc,
				struct kura_error *err)
{
	const struct kura_config *cfg = svc->cfg;
	char dir[4200];
	if (!kura_config_get_bool(cfg, "audit", "enabled"))
		return KURA_OK;
	snprintf(dir, sizeof(dir), "%s/audit", svc->data_dir);
	struct kura_audit_options opt = {
		.dir = dir,
		.publish_dir = kura_config_get(cfg, "audit", "publish_dir"),
		.segment_max_bytes =
			kura_config_get_u64(cfg, "audit", "segment_max"),
		.segment_max_age_s =
			kura_config_get_u64(cfg, "audit", "segment_max_age"),
		.sign = sign_checkpoint,
		.sign_ctx = svc,
	};
	enum kura_err rc = kura_audit_open(&opt, &svc->audit, err);
	if (rc == KURA_OK)
		rc = service_audit_keys(svc->keys, svc->audit, err);
	return rc;
}

enum kura_err kura_service_audit(struct kura_service *svc,
				 const struct kura_audit_record *r,
				 struct kura_error *err)
{
	if (svc->audit == NULL)
		return KURA_OK;
	return kura_audit_append(svc->audit, r, NULL, err);
}

enum kura_err kura_service_audit_batch(struct kura_service *svc,
				       const struct kura_audit_record *r,
				       size_t n, struct kura_error *err)
{
	if (svc->audit == NULL)
		return KURA_OK;
	return kura_audit_append_batch(svc->audit, r, n, NULL, err);
}

static char actor[320];
static pthread_once_t actor_once = PTHREAD_ONCE_INIT;

static void init_actor(void)
{
	char host[256] = "", buf[2048];
	struct passwd pw, *found = NULL;
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(actor, sizeof(actor), "%s@%s", found->pw_name,
			 host[0] ? host : "?");
	else
		snprintf(actor, sizeof(actor), "uid%u@%s", (unsigned)getuid(),
			 host[0] ? host : "?");
}

const char *kura_service_actor(void)
{
	pthread_once(&actor_once, init_actor);
	return actor;
}

enum kura_err kura_service_audit_event(struct kura_service *svc,
				       const char *type, const char *op,
				       uint64_t tenant_id, const char *tenant,
				       const char *detail_json,
				       enum kura_err outcome,
				       struct kura_error *err)
{
	struct kura_audit_record r = {
		.type = type,
		.op = op,
		.tenant_id = tenant_id,
		.tenant = tenant,
		.actor = kura_service_actor(),
		.error = outcome == KURA_OK ? NULL : kura_errname(outcome),
		.detail_json = detail_json,
	};
	return kura_service_audit(svc, &r, err);
}

enum kura_err kura_service_audit_checkpoint(struct kura_service *svc,
					    struct kura_error *err)
{
	if (svc->audit == NULL)
		return KURA_OK;
	return kura_audit_checkpoint(svc->audit, err);
}

/* The keys derived from the system key (so that whoever holds the
 * database and the log without the key provider can neither compute nor
 * check them): the metadata store's row key (meta.h "Row MACs") and the
 * key of the audit log's row digests (seal.h). */
static enum kura_err derive_row_keys(struct kura_service *svc,
				     struct kura_error *err)
{
	static const char row_mac[] = "kura-row-mac-v1";
	static const char row_digest[] = "kura-row-digest-v1";
	uint8_t key[KURA_ROW_KEY_LEN];
	const struct kura_secret *sk = svc->system_key;
	svc->row_digest_key = kura_secret_new(KURA_HMAC_SHA256_LEN);
	if (svc->row_digest_key == NULL)
		return kura_fail(err, KURA_ENOMEM, "row digest key");
	if (!kura_hmac_sha256(sk->data, sk->len, row_digest,
			      sizeof(row_digest) - 1,
			      svc->row_digest_key->data) ||
	    !kura_hmac_sha256(sk->data, sk->len, row_mac, sizeof(row_mac) - 1,
			      key))
		return kura_fail(err, KURA_EIO, "cannot derive the row keys");
	enum kura_err rc = kura_meta_set_row_key(svc->meta, key, err);
	kura_wipe(key, sizeof(key));
	return rc;
}

enum kura_err kura_service_open(const struct kura_config *cfg, unsigned flags,
				struct kura_service **out,
				struct kura_error *err)
{
	struct kura_service *svc = calloc(1, sizeof(*svc));
	if (svc == NULL)
		return kura_fail(err, KURA_ENOMEM, "service");
	svc->cfg = cfg;
	svc->pins = calloc(1, sizeof(*svc->pins));
	if (svc->pins == NULL) {
		free(svc);
		return kura_fail(err, KURA_ENOMEM, "service");
	}
	pthread_mutex_init(&svc->pins->lock, NULL);
	const char *dir = kura_config_get(cfg, "server", "data_dir");
	enum kura_err rc;
	if (snprintf(svc->data_dir, sizeof(svc->data_dir), "%s", dir) >=
	    (int)sizeof(svc->data_dir)) {
		rc = kura_fail(err, KURA_ECONFIG, "data_dir is too long");
		goto fail;
	}
	if ((rc = read_settings(svc, err)) != KURA_OK)
		goto fail;
	if ((rc = kura_mkdirs(svc->data_dir, 0700, err)) != KURA_OK)
		goto fail;
	(void)chmod(svc->data_dir, 0700);
	if ((flags & KURA_SERVICE_OWNER) &&
	    (rc = take_locks(svc, err)) != KURA_OK)
		goto fail;
	if ((rc = kura_meta_open(cfg, svc->data_dir, &svc->meta, err)) !=
	    KURA_OK)
		goto fail;
	if ((rc = kura_keys_open(cfg, svc->data_dir, &svc->keys, err)) !=
	    KURA_OK)
		goto fail;
	if ((rc = open_audit(svc, err)) != KURA_OK)
		goto fail;
	if ((rc = kura_auth_system_key(svc->meta, svc->keys,
				       flags & KURA_SERVICE_INIT,
				       &svc->system_key, err)) != KURA_OK)
		goto fail;
	if ((rc = derive_row_keys(svc, err)) != KURA_OK)
		goto fail;
	if ((rc = kura_kms_new(svc->meta, svc->keys, cfg, &svc->kms, err)) !=
	    KURA_OK)
		goto fail;
	if ((rc = kura_placement_load(cfg, &svc->placement, err)) != KURA_OK)
		goto fail;
	if ((rc = kura_placement_open(svc->placement, cfg, svc->data_dir,
				      svc->meta, err)) != KURA_OK)
		goto fail;
	svc->store = kura_placement_store(svc->placement, NULL);
	*out = svc;
	return KURA_OK;
fail:
	kura_service_close(svc);
	return rc;
}

static bool is_referenced(void *ctx, const uint8_t id[KURA_BLOB_ID_LEN])
{
	struct kura_service *svc = ctx;
	bool ref = true; /* when in doubt, keep the blob */
	struct kura_error e = { 0 };
	if (kura_meta_blob_referenced(svc->meta, id, &ref, &e) != KURA_OK) {
		kura_warn(NULL, "recovery: cannot check a staged blob: %s",
			  e.msg);
		return true;
	}
	return ref;
}

enum kura_err kura_service_collect(struct kura_service *svc, size_t max,
				   size_t *removed, struct kura_error *err)
{
	uint8_t ids[GC_BATCH][KURA_BLOB_ID_LEN];
	size_t total = 0;
	enum kura_err owner = need_owner(svc, "garbage collection", err);
	if (owner != KURA_OK)
		return owner;
	while (total < max) {
		size_t n = 0, done = 0;
		size_t want = max - total < GC_BATCH ? max - total : GC_BATCH;
		enum kura_err rc =
			kura_meta_gc_next(svc->meta, ids, want, &n, err);
		if (rc != KURA_OK)
			return rc;
		/* Remove the unpinned blobs, compacting their ids to the front;
		 * pinned ones stay queued for a later pass. */
		for (size_t i = 0; i < n; i++) {
			if (is_pinned(svc, ids[i]))
				continue;
			rc = kura_store_remove(svc->store, ids[i], err);
			if (rc != KURA_OK)
				return rc;
			if (done != i)
				memcpy(ids[done], ids[i], KURA_BLOB_ID_LEN);
			done++;
		}
		if (done > 0) {
			rc = kura_meta_gc_done(
				svc->meta,
				(const uint8_t(*)[KURA_BLOB_ID_LEN])ids, done,
				err);
			if (rc != KURA_OK)
				return rc;
		}
		total += done;
		/* Stop when the queue is drained or holds only pinned blobs. */
		if (n < want || done == 0)
			break;
	}
	if (removed)
		*removed = total;
	return KURA_OK;
}

enum kura_err kura_service_recover(struct kura_service *svc,
				   struct kura_error *err)
{
	uint64_t staged = 0;
	size_t collected = 0;
	enum kura_err rc = need_owner(svc, "recovery", err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_store_recover(svc->store, is_referenced, svc, &staged, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_service_collect(svc, SIZE_MAX, &collected, err);
	if (rc != KURA_OK)
		return rc;

	if (staged || collected)
		kura_info(NULL,
			  "recovery: removed %llu unreferenced staged blobs "
			  "and %zu deleted blobs",
			  (unsigned long long)staged, collected);
	return KURA_OK;
}

enum kura_err kura_service_bucket_store(struct kura_service *svc,
					const struct kura_bucket *bucket,
					struct kura_store **out,
					struct kura_error *err)
{
	/* Unnamed: the implicit "default" (one copy on the local backend),
	 * whatever [storage] placement says for new buckets now. */
	const struct kura_policy *pol = kura_placement_policy(
		svc->placement,
		bucket->placement[0] ? bucket->placement : "default");
	if (pol == NULL)
		return kura_fail(
			err, KURA_ECONFIG,
			"bucket '%s': its placement policy '%s' is not "
			"configured",
			bucket->name, bucket->placement);
	*out = kura_placement_store(svc->placement, pol);
	return KURA_OK;
}

void kura_service_close(struct kura_service *svc)
{
	if (svc == NULL)
		return;
	kura_placement_free(svc->placement);
	kura_kms_free(svc->kms);
	kura_secret_free(svc->system_key);
	kura_secret_free(svc->row_digest_key);
	kura_keys_close(svc->keys);
	kura_audit_close(svc->audit);
	kura_meta_close(svc->meta);
	kura_dirlock_release(svc->store_lock);
	kura_dirlock_release(svc->dir_lock);
	pins_free(svc->pins);
	free(svc);
}

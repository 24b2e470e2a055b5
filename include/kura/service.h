/*
 * service.h — one running kura: configuration plus the opened metadata
 * store, data store, key provider, bucket-key cache and system key, and
 * what the layers above do with them together: recovery, garbage
 * collection, pins, audit records, crypto-shredding.
 *
 * The service engine (src/service) sits below src/s3, src/daemon and
 * src/cli, which all use it: the server opens one for its life, CLI
 * commands one per command.  Read-only after open, shared by all request
 * threads.
 */
#ifndef KURA_SERVICE_H
#define KURA_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "kura/audit.h"
#include "kura/config.h"
#include "kura/crypt.h"
#include "kura/err.h"
#include "kura/keys.h"
#include "kura/kms.h"
#include "kura/meta.h"
#include "kura/secret.h"
#include "kura/store.h"

#define KURA_MAX_VHOST_DOMAINS 16

struct kura_pins;    /* blobs being read (service.c) */
struct kura_dirlock; /* dirlock.h */

struct kura_service {
	const struct kura_config *cfg;
	char data_dir[4096];
	struct kura_meta *meta;
	/* Backends, policies and their stores (placement.h).  store is the
	 * placement's "all" store: reads and removes on every backend; a
	 * bucket's writes go through kura_service_bucket_store. */
	struct kura_placement *placement;
	struct kura_store *store;
	struct kura_keys *keys;
	struct kura_kms *kms; /* kura keys, bucket keys and their cache */
	struct kura_secret *system_key;
	/* Keys the system key derives: the metadata row MACs' (handed to
	 * the store) and the audit log's object row digests'
	 * (kura_seal_object_digest). */
	struct kura_secret *row_digest_key;
	struct kura_pins *pins;
	struct kura_audit *audit; /* NULL when [audit] enabled = false */
	/* Stored data or metadata that failed authentication since start
	 * (read and bumped with __atomic builtins). */
	uint64_t integrity_failures;
	/* Nonzero: a kura_service_scrub running in another thread stops at
	 * its next blob (the server shutting down).  __atomic builtins. */
	int scrub_stop;
	/* Held by the owner (KURA_SERVICE_OWNER) for the service's life: the
	 * data directory's lock and, when [storage] path puts the blobs
	 * elsewhere, that directory's.  NULL in CLI commands. */
	struct kura_dirlock *dir_lock;
	struct kura_dirlock *store_lock;

	/* Settings read once from cfg. */
	char region[64];
	uint32_t seg_size;
	uint64_t max_object_size;
	uint64_t max_header_bytes;
	uint64_t max_url_bytes;
	uint64_t max_xml_body;
	uint64_t max_list_response;
	uint64_t clock_skew;
	bool tls;	     /* the S3 listener speaks TLS */
	bool ssec_over_http; /* [server] allow_ssec_over_http */
	/* [lifecycle] day_seconds in ms: the length of a lifecycle rule's
	 * day (86400000 unless a test shortens it). */
	int64_t lifecycle_day_ms;
	char vhost_domains[KURA_MAX_VHOST_DOMAINS][256];
	size_t n_vhost_domains;
};

/* kura_service_open flags. */
enum kura_service_flags {
	/* Create the system key when absent (server start, commands that
	 * write); commands that only read leave it out. */
	KURA_SERVICE_INIT = 1u << 0,
	/* Become the data directory's owner: take its lock (dirlock.h) before
	 * anything is created or migrated, and keep it until close.  Only the
	 * owner may recover or collect garbage, because only it knows which
	 * staged blobs have a live writer.  KURA_EBUSY, naming the holder's
	 * pid, when another process owns the directory.  The server passes
	 * it; CLI commands, which run beside a server, never do. */
	KURA_SERVICE_OWNER = 1u << 1,
};

/*
 * Open everything under the data directory (created 0700 when missing);
 * flags are enum kura_service_flags bits.
 */
enum kura_err kura_service_open(const struct kura_config *cfg, unsigned flags,
				struct kura_service **out,
				struct kura_error *err);

/* Check the settings kura_service_open reads itself ([server] data_dir,
 * region and virtual_host_domains, [storage] segment_size) without opening
 * or creating anything.  KURA_ECONFIG naming the key. */
enum kura_err kura_service_check_config(const struct kura_config *cfg,
					struct kura_error *err);

/* Append a record to the audit log and return once it is durable (KURA_OK
 * at once when auditing is off).  Every S3 request, admin and key command
 * and key-provider use goes through here. */
enum kura_err kura_service_audit(struct kura_service *svc,
				 const struct kura_audit_record *r,
				 struct kura_error *err);

/* Append r[0..n) together — consecutive, all or none, durable on return
 * (kura_audit_append_batch); KURA_OK at once when auditing is off. */
enum kura_err kura_service_audit_batch(struct kura_service *svc,
				       const struct kura_audit_record *r,
				       size_t n, struct kura_error *err);

/* Record an event that is not an S3 request: type "admin", "key" or
 * "server"; op names it ("tenant.create", "key.destroy", "server.start");
 * actor is who did it (user@host, kura_service_actor); tenant and
 * detail_json may be NULL; outcome KURA_OK or the error it ended with. */
enum kura_err kura_service_audit_event(struct kura_service *svc,
				       const char *type, const char *op,
				       uint64_t tenant_id, const char *tenant,
				       const char *detail_json,
				       enum kura_err outcome,
				       struct kura_error *err);

/* Who this process acts for in the audit log: "user@host" of the real
 * user id. */
const char *kura_service_actor(void);

/* Sign a checkpoint of everything appended so far (no-op when auditing is
 * off or nothing is new).  The signer is kura's (kura_kms_sign). */
enum kura_err kura_service_audit_checkpoint(struct kura_service *svc,
					    struct kura_error *err);

/* Start-up recovery: publish or discard staged blobs, then collect queued
 * garbage.  Logs what it did.  Only the owner may recover, and only before
 * it accepts writes: KURA_ESTATE otherwise (a staged blob may belong to a
 * live writer of the process that owns the directory). */
enum kura_err kura_service_recover(struct kura_service *svc,
				   struct kura_error *err);

/*
 * Pins: a reader pins the blobs of the version it reads before it sends
 * anything, and garbage collection leaves pinned blobs alone (they stay
 * queued and go in a later pass).  So an object replaced or deleted while
 * it is being read keeps its blobs until the reader is done.  Pins are
 * counted: the same blob may be pinned by several readers.
 */
enum kura_err kura_service_pin(struct kura_service *svc,
			       const uint8_t (*ids)[KURA_BLOB_ID_LEN], size_t n,
			       struct kura_error *err);
void kura_service_unpin(struct kura_service *svc,
			const uint8_t (*ids)[KURA_BLOB_ID_LEN], size_t n);

/* Remove up to max queued garbage blobs that nobody has pinned; *removed
 * receives the count.  Owner only (pins live in the owner's memory):
 * KURA_ESTATE otherwise. */
enum kura_err kura_service_collect(struct kura_service *svc, size_t max,
				   size_t *removed, struct kura_error *err);

/*
 * Crypto-shred bucket: destroy its key in the provider, delete it with
 * every object and blob, and write a signed deletion certificate to
 * DATA_DIR/certificates/; cert_path receives the file's path (shred.c).
 */
enum kura_err kura_service_shred(struct kura_service *svc, const char *bucket,
				 char *cert_path, size_t cap,
				 struct kura_error *err);

/* The store a bucket's new blobs are written through: its placement
 * policy's.  KURA_ECONFIG when the policy is no longer configured. */
enum kura_err kura_service_bucket_store(struct kura_service *svc,
					const struct kura_bucket *bucket,
					struct kura_store **out,
					struct kura_error *err);

/*
 * Keeping copies healthy (scrub.c, replicate.c; docs/PLACEMENT.md).
 */
struct kura_scrub_report {
	uint64_t blobs;	       /* blobs examined */
	uint64_t replicas;     /* replicas read */
	uint64_t ok;	       /* read back and authenticated */
	uint64_t missing;      /* not on their backend */
	uint64_t corrupt;      /* there, but failing authentication */
	uint64_t repaired;     /* missing or corrupt, copied from a good one */
	uint64_t unrepairable; /* blobs left with a bad replica: no good
				* one to copy from, or the copy failed */
};

/* The report in words: "N blobs, N replicas, N ok, N missing, N corrupt,
 * N repaired, N unrepairable" (the server's log and `kura scrub`). */
void kura_scrub_report_format(const struct kura_scrub_report *r, char *buf,
			      size_t cap);

/* Re-read every replica of the blobs of bucket (NULL: every bucket),
 * authenticate every segment, repair a missing or corrupt replica from a
 * good one; record what was found in the replica history and the audit
 * log.  Works while a server runs.  KURA_ENOENT: no such bucket;
 * KURA_EBUSY when svc->scrub_stop stopped it (*rep is not written). */
enum kura_err kura_service_scrub(struct kura_service *svc, const char *bucket,
				 struct kura_scrub_report *rep,
				 struct kura_error *err);

/* Make up to max pending (async) replicas that are due; *copied receives
 * how many were made.  A failure is recorded and retried later with
 * back-off, never dropped. */
enum kura_err kura_service_replicate(struct kura_service *svc, size_t max,
				     size_t *copied, struct kura_error *err);

/* Copy blob id's ciphertext, as it is, from backend index from to backend
 * index to (kura_placement_backend_store), published there; *bytes
 * receives its length.  Replication and scrub repairs use it. */
enum kura_err kura_service_copy_replica(struct kura_service *svc,
					const uint8_t id[KURA_BLOB_ID_LEN],
					size_t from, size_t to, uint64_t *bytes,
					struct kura_error *err);

/* Record a replica event in the audit log (type "replica": op
 * "replica.stored", "replica.repaired", "replica.copy_failed",
 * "replica.removed", ...): blob id, backend and its labels, state, note. */
enum kura_err kura_service_audit_replica(struct kura_service *svc,
					 const char *op,
					 const struct kura_replica *row,
					 const char *note,
					 enum kura_err outcome);

/* Remove the replicas of blobs nothing references (a crash between a
 * write and its commit).  Owner only, before it accepts writes. */
enum kura_err kura_service_sweep_replicas(struct kura_service *svc,
					  size_t *removed,
					  struct kura_error *err);

void kura_service_close(struct kura_service *svc);

#endif

/*
 * placement.h — where the owner says the data may be: backends with labels
 * ([backend.NAME]), placement policies ([placement.NAME]) and the rule of
 * seed 001 (copies abroad only under keys held at home in an external key
 * provider), and the replicated store each policy writes through.
 *
 * Without [backend.*] and [placement.*] there is one backend, "local" (the
 * [storage] store), and one policy, "default": sync = local.  Declared
 * backends come in addition to "local", which stays readable.
 *
 * A policy's store (kura_placement_store) is a struct kura_store like any
 * other: its writer writes every sync backend and finishes only when all
 * of them are durable, then records the replicas (stored for sync, pending
 * for async) in the metadata; its reader reads the first backend that has
 * the blob, in policy order then every other backend, and moves to the
 * next on an error (kura_store_reader_next after an integrity failure
 * found above the store); remove removes the blob from every backend and
 * records that.  The "all" store (policy NULL) reads and removes the same
 * way but writes nothing.
 *
 * Thread-safe once opened: the tables are read-only; stores are
 * thread-safe themselves.
 */
#ifndef KURA_PLACEMENT_H
#define KURA_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/meta.h"
#include "kura/store.h"

#define KURA_BACKENDS_MAX 16   /* "local" and up to 15 declared */
#define KURA_POLICIES_MAX 32   /* "default" and up to 31 declared */
#define KURA_POLICY_BACKENDS 8 /* sync + async of one policy */
#define KURA_LOCATION_MAX 512

struct kura_backend_desc {
	char name[KURA_PLACEMENT_NAME_MAX];
	char type[8]; /* fs, s3 */
	char site[KURA_LABEL_MAX];
	char region[KURA_LABEL_MAX];
	char jurisdiction[KURA_JURISDICTION_LEN];
	char dedicated_to[KURA_TENANT_NAME_MAX]; /* empty: anyone's */
	/* Where it is, without secrets: a path, or endpoint/bucket/prefix. */
	char location[KURA_LOCATION_MAX];
	char remote_prefix[KURA_LABEL_MAX]; /* s3: prefix of remote names */
};

struct kura_policy {
	char name[KURA_PLACEMENT_NAME_MAX];
	size_t nsync, nasync;
	size_t sync[KURA_POLICY_BACKENDS]; /* backend indexes */
	size_t async[KURA_POLICY_BACKENDS];
	char jurisdictions[128]; /* the allowed set, "JP,US" */
	bool forbid_foreign;
	bool is_default; /* [storage] placement names it */
};

/* How many backends pol names, and the k-th of them (its sync backends
 * first, then its async ones): a backend index. */
static inline size_t kura_policy_nbackends(const struct kura_policy *pol)
{
	return pol->nsync + pol->nasync;
}

static inline size_t kura_policy_backend(const struct kura_policy *pol,
					 size_t k)
{
	return k < pol->nsync ? pol->sync[k] : pol->async[k - pol->nsync];
}

struct kura_placement;

/* Read [server] home_jurisdiction, [keys] provider/jurisdiction,
 * [storage], [backend.*] and [placement.*] and check every rule (seed 001,
 * allowed jurisdictions, dedicated backends, names).  Opens nothing: what
 * `kura check` and start-up both run.  KURA_ECONFIG naming the rule, the
 * policy and the backend. */
enum kura_err kura_placement_load(const struct kura_config *cfg,
				  struct kura_placement **out,
				  struct kura_error *err);

/* Open every backend's store and build the policies' stores.  meta
 * receives the replica records (may be NULL: then nothing is recorded,
 * for tools that only read). */
enum kura_err kura_placement_open(struct kura_placement *p,
				  const struct kura_config *cfg,
				  const char *data_dir, struct kura_meta *meta,
				  struct kura_error *err);

/* Close the stores and free.  NULL is a no-op. */
void kura_placement_free(struct kura_placement *p);

/* Backend i in words: "NAME: type=fs site=S region=R jurisdiction=JP
 * [(foreign)] [dedicated_to=T]". */
void kura_placement_describe_backend(const struct kura_placement *p, size_t i,
				     char *buf, size_t cap);
/* A policy in words: "NAME: sync=a,b async=c jurisdictions=JP,US
 * [(default)]". */
void kura_placement_describe_policy(const struct kura_placement *p,
				    const struct kura_policy *pol, char *buf,
				    size_t cap);

size_t kura_placement_nbackends(const struct kura_placement *p);
const struct kura_backend_desc *
kura_placement_backend(const struct kura_placement *p, size_t i);
/* The backend's own store (opened), for scrub and replication. */
struct kura_store *kura_placement_backend_store(const struct kura_placement *p,
						size_t i);
/* Index of the backend named name; -1 when none. */
int kura_placement_backend_index(const struct kura_placement *p,
				 const char *name);

size_t kura_placement_npolicies(const struct kura_placement *p);
const struct kura_policy *
kura_placement_policy_at(const struct kura_placement *p, size_t i);
/* The policy named name ("" or NULL: the default one); NULL if none. */
const struct kura_policy *kura_placement_policy(const struct kura_placement *p,
						const char *name);

/* May a bucket of tenant_name use policy?  Checks dedicated backends (and
 * again the rules, as at every bucket creation).  KURA_EPERM naming the
 * backend when not. */
enum kura_err kura_placement_allows(const struct kura_placement *p,
				    const struct kura_policy *policy,
				    const char *tenant_name,
				    struct kura_error *err);

/* The store a policy writes and reads through; NULL policy: the "all"
 * store (reads and removes everywhere, writes nowhere). */
struct kura_store *kura_placement_store(const struct kura_placement *p,
					const struct kura_policy *policy);

/* The replica row a copy of blob (bytes long) on backend i gets: labels,
 * remote id; state and times are the caller's. */
void kura_placement_replica_row(const struct kura_placement *p, size_t i,
				const uint8_t blob_id[KURA_BLOB_ID_LEN],
				uint64_t bytes, struct kura_replica *row);

/* Probe backend i: reachable, and the round trip in milliseconds. */
enum kura_err kura_placement_probe(const struct kura_placement *p, size_t i,
				   double *latency_ms, struct kura_error *err);

#endif

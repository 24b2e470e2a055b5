/*
 * kms_int.h — what the files of src/kms share (not a public contract).
 */
#ifndef KURA_KMS_INT_H
#define KURA_KMS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kura/crypt.h"
#include "kura/kms.h"
#include "kura/seal.h"

struct kura_kms {
	struct kura_meta *meta;
	struct kura_keys *keys;
	struct kura_keycache *cache;
	bool tenant_scope;	  /* [keys] kek_scope = tenant */
	int64_t retired_grace_ms; /* [keys] rotation_grace */
	/* Watcher of the key generation. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t watcher;
	bool watching;
	bool stopping;
	uint64_t generation;
	/* Serialises creation of the signing key. */
	pthread_mutex_t signer_lock;
	/* The server's view of the upgrade of unsealed metadata (seal.c),
	 * under lock: known once it ran; then only these buckets wait. */
	bool seal_state_known;
	uint64_t seal_waiting[KURA_SEAL_WAIT_MAX];
	size_t n_seal_waiting;
};

/* Clear the cache when the metadata's key generation moved. */
void kms_check_generation(struct kura_kms *kms);

/* The KEK id of k's current version. */
enum kura_err kms_current_kek(struct kura_kms *kms, const struct kura_key *k,
			      char kek_id[KURA_KEK_ID_MAX],
			      struct kura_error *err);

/* A fresh random bucket key for (tenant, bucket) wrapped by kek_id into bk
 * (wrapped, bucket_id, tenant_id, current, created); *key gets the key when
 * key is not NULL. */
enum kura_err kms_new_bucket_key(struct kura_kms *kms, uint64_t tenant_id,
				 uint64_t bucket_id, const char *kek_id,
				 struct kura_bucket_key *bk,
				 struct kura_secret **key,
				 struct kura_error *err);

/* Unwrap (or take from the cache) the bucket key described by bk, after
 * checking its key and version are usable. */
enum kura_err kms_open_bucket_key(struct kura_kms *kms,
				  const struct kura_bucket_key *bk,
				  struct kura_secret **key,
				  struct kura_error *err);

/* Destroy one version's KEK in the provider and record it. */
enum kura_err kms_destroy_version(struct kura_kms *kms, uint64_t key_id,
				  const struct kura_key_version *v,
				  struct kura_error *err);

/* Create a key of any kind: a new KEK, or material imported (BYOK). */
enum kura_err kms_create_key(struct kura_kms *kms, uint64_t tenant_id,
			     const char *name, enum kura_key_kind kind,
			     const struct kura_secret *material,
			     struct kura_key *out, struct kura_error *err);

#endif

/*
 * auth.h — tenants, access keys and the system key that seals their secrets.
 *
 * Access-key secrets are needed in the clear to verify SigV4 signatures, so
 * they are stored sealed (kura_box) under the *system key*: a random 256-bit
 * key that is itself wrapped by a KEK in the key provider and kept only in
 * locked memory.  Reading the metadata database alone therefore yields no
 * usable credential.
 *
 * Thread-safe (the functions hold no state; meta and keys are thread-safe).
 */
#ifndef KURA_AUTH_H
#define KURA_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "kura/err.h"
#include "kura/keys.h"
#include "kura/meta.h"
#include "kura/secret.h"

#define KURA_ROOT_TENANT "root"
#define KURA_ACCESS_KEY_LEN 20	/* "KURA" + 16 base32 characters */
#define KURA_SECRET_KEY_LEN 40	/* base64 alphabet */
#define KURA_SECRET_KEY_MAX 128 /* longest secret accepted from env */

/*
 * Load the system key, creating it (a new KEK in the provider and a random
 * key wrapped by it, recorded in the metadata settings) on first use when
 * create is true.  Safe against two processes initialising at once: the
 * first insert wins and the loser loads the winner's key.
 */
enum kura_err kura_auth_system_key(struct kura_meta *meta,
				   struct kura_keys *keys, bool create,
				   struct kura_secret **out,
				   struct kura_error *err);

/* Is name acceptable for a tenant (1..63 of [a-z0-9-_], starting with a
 * letter or digit)? */
bool kura_auth_tenant_name_valid(const char *name);

/* Is id acceptable as an access key id (16..128 of [A-Z0-9])? */
bool kura_auth_access_key_id_valid(const char *id);

/* Generate a fresh access key id and secret (NUL-terminated). */
enum kura_err kura_auth_generate_key(char id[KURA_ACCESS_KEY_LEN + 1],
				     char secret[KURA_SECRET_KEY_LEN + 1],
				     struct kura_error *err);

/* Seal secret under the system key and store the access key for tenant.
 * KURA_EEXIST when the id is taken. */
enum kura_err kura_auth_add_key(struct kura_meta *meta,
				const struct kura_secret *system_key,
				uint64_t tenant_id, const char *id,
				const char *secret, struct kura_error *err);

/* Look up an active access key and unseal its secret.  KURA_ENOENT when the
 * id is unknown or revoked; KURA_EPERM (naming the tenant) when its tenant
 * is suspended.  Reads the key and the tenant from meta on every call —
 * nothing is cached — so a revocation or suspension made by another
 * process applies to the next request. */
enum kura_err kura_auth_lookup_key(struct kura_meta *meta,
				   const struct kura_secret *system_key,
				   const char *id, struct kura_access_key *rec,
				   struct kura_secret **secret,
				   struct kura_error *err);

/* Replace access key old_id of tenant_id with a fresh one in one
 * transaction (meta access_key_replace): id and secret receive the new
 * credentials (to be shown once); old_id is revoked.  KURA_ENOENT /
 * KURA_ESTATE as access_key_replace (missing, revoked, another tenant's). */
enum kura_err kura_auth_rotate_key(struct kura_meta *meta,
				   const struct kura_secret *system_key,
				   uint64_t tenant_id, const char *old_id,
				   char id[KURA_ACCESS_KEY_LEN + 1],
				   char secret[KURA_SECRET_KEY_LEN + 1],
				   struct kura_error *err);

/* Create a tenant and its first access key; id and secret receive the new
 * credentials (to be shown once).  KURA_EEXIST when the name is taken. */
enum kura_err kura_auth_create_tenant(struct kura_meta *meta,
				      const struct kura_secret *system_key,
				      const char *name,
				      struct kura_tenant *tenant,
				      char id[KURA_ACCESS_KEY_LEN + 1],
				      char secret[KURA_SECRET_KEY_LEN + 1],
				      struct kura_error *err);

#endif

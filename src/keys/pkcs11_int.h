/*
 * pkcs11_int.h — internals shared by the files of the PKCS#11 key provider
 * (pkcs11.c: configuration, KEK operations and the wrapped format;
 * pkcs11_id.c: object ids and labels;
 * pkcs11_module.c: loaded modules and CK_RV names; pkcs11_session.c: the
 * session pool, object handles and token availability; pkcs11_sign.c:
 * provider-held ECDSA P-256 signing keys).
 *
 * Locking (outermost first): a module's use lock (read for every call into
 * the module, write only to finalise and re-initialise it) -> a provider's
 * mutex (pool, handle cache, availability state).  The mutex is never held
 * across a call into the module, except for C_CloseSession of sessions
 * already taken out of the pool.
 */
#ifndef KURA_KEYS_PKCS11_INT_H
#define KURA_KEYS_PKCS11_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "kura/err.h"
#include "kura/secret.h"

#define P11_POOL_MAX 16	    /* sessions per provider instance */
#define P11_CACHE_SLOTS 256 /* handle cache, direct-mapped */
#define P11_RAW_ID_LEN 16   /* CKA_ID of every object we create */
#define P11_LABEL_MAX 32    /* CK_TOKEN_INFO.label */
#define P11_REASON_MAX KURA_ERROR_MSG_MAX
#define P11_RETRY_MIN_MS 1000  /* first recovery attempt after an outage */
#define P11_RETRY_MAX_MS 30000 /* backoff ceiling while the token stays away */

/* Wrapped-form mechanism bytes (see the format in pkcs11.c). */
#define P11_MECH_GCM 0x01
#define P11_MECH_KWP 0x02

/*
 * One loaded PKCS#11 module, shared by every provider instance in the
 * process that names the same library (dlopen returns the same handle, and
 * C_Initialize/C_Finalize are process-wide, so instances must share them).
 */
struct p11_module {
	struct p11_module *next; /* registry list */
	void *dl;
	CK_FUNCTION_LIST_PTR fn;
	unsigned refs;	      /* guarded by the registry mutex */
	pthread_rwlock_t use; /* read: calls; write: re-initialise */
	bool initialized;     /* under use */
	uint64_t gen;	      /* under use; bumped by re-initialise */
};

enum p11_kind {
	P11_KIND_KEK = 1,	/* CKO_SECRET_KEY */
	P11_KIND_SIGN_PRIV = 2, /* CKO_PRIVATE_KEY */
	P11_KIND_SIGN_PUB = 3,	/* CKO_PUBLIC_KEY */
};

struct p11_cache_entry {
	uint8_t kind;	/* enum p11_kind; 0 = empty */
	bool destroyed; /* a tombstone was found: permanent */
	uint8_t id[P11_RAW_ID_LEN];
	CK_OBJECT_HANDLE handle;
};

/* A provider instance (the priv the core allocates). */
struct p11 {
	struct p11_module *mod;
	struct kura_secret *pin;
	char token[P11_LABEL_MAX + 1]; /* label as configured */
	bool locks_ready;
	unsigned wrap_mech;    /* P11_MECH_* used by wrap */
	bool can_gcm, can_kwp; /* what the token can do (unwrap) */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* The following are guarded by mu. */
	CK_SLOT_ID slot;
	uint64_t slot_gen; /* module gen the slot was found in */
	bool slot_known;
	CK_SESSION_HANDLE idle[P11_POOL_MAX];
	size_t n_idle;
	size_t n_open;	      /* idle + checked out */
	uint64_t idle_epoch;  /* epoch of the idle sessions */
	uint64_t pool_gen;    /* module gen of every pooled session */
	uint64_t epoch;	      /* bumped when sessions must be dropped */
	bool down;	      /* token unavailable: fail fast */
	bool recovering;      /* a thread is trying to recover */
	uint64_t retry_at_ns; /* next recovery attempt (monotonic) */
	uint64_t backoff_ms;
	char reason[P11_REASON_MAX]; /* why the token is down */
	struct p11_cache_entry cache[P11_CACHE_SLOTS];
	uint64_t cache_gen;
};

/* A session checked out of the pool, with the module read-locked. */
struct p11_sess {
	struct p11 *p;
	CK_FUNCTION_LIST_PTR fn;
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	uint64_t gen;
	uint64_t epoch;
	bool broken; /* close it instead of pooling it */
	bool forget; /* the module closed it already */
	bool retry;  /* lost with a healthy token: retry once */
};

/* ---- pkcs11_module.c ---- */

/* Load (or share) the module at path and make sure it is initialised with
 * CKF_OS_LOCKING_OK. */
enum kura_err p11_module_acquire(const char *path, struct p11_module **out,
				 struct kura_error *err);
void p11_module_release(struct p11_module *m);

/* C_Finalize + C_Initialize, unless the module's gen moved past seen_gen
 * (someone else did it already).  Takes the use lock for writing: the caller
 * must hold no lock. */
enum kura_err p11_module_reinit(struct p11_module *m, uint64_t seen_gen,
				struct kura_error *err);

/* "CKR_PIN_INCORRECT", or "CKR_0x..." (static buffer per thread). */
const char *p11_rv_name(CK_RV rv);

/* Does rv say the token, the session or the library went away? */
bool p11_rv_gone(CK_RV rv);

/* ---- pkcs11_session.c ---- */

enum kura_err p11_pool_init(struct p11 *p, struct kura_error *err);
void p11_pool_destroy(struct p11 *p); /* closes pooled sessions */

/* Find the slot whose token is labelled p->token in the current module
 * generation (module read lock held). */
enum kura_err p11_find_slot(struct p11 *p, CK_FUNCTION_LIST_PTR fn,
			    CK_SLOT_ID *out, struct kura_error *err);

/* Open a read-write session on slot and log the user in. */
enum kura_err p11_open_session(struct p11 *p, CK_FUNCTION_LIST_PTR fn,
			       CK_SLOT_ID slot, CK_SESSION_HANDLE *out,
			       struct kura_error *err);

/* Check out a session (recovering the token first when it is down and
 * the backoff allows).  KURA_EKEY while the token is unavailable. */
enum kura_err p11_begin(struct p11 *p, struct p11_sess *s,
			struct kura_error *err);
/* Return the session (or close it when broken) and drop the module lock. */
void p11_end(struct p11_sess *s);

/* Run body with a checked-out session; when the session (not the token) was
 * lost, run it once more with a fresh session.  body must be safe to
 * repeat. */
enum kura_err p11_run(struct p11 *p,
		      enum kura_err (*body)(struct p11_sess *s, void *ctx,
					    struct kura_error *err),
		      void *ctx, struct kura_error *err);

/*
 * Translate rv from fn at a call site.  Token/session/library loss marks
 * the session broken, checks the token and, when it is gone, marks the
 * provider down; all of these give KURA_EKEY.  Other codes map to the
 * nearest kura code; what is left becomes dflt.  The message names fn, the
 * CKR_ name and what (a short description of the object).
 */
enum kura_err p11_fail(struct p11_sess *s, CK_RV rv, const char *fn,
		       enum kura_err dflt, const char *what,
		       struct kura_error *err);

/* Is the token still there and answering (C_GetTokenInfo)?  When not, the
 * provider is marked down and err says so (KURA_EKEY). */
bool p11_token_healthy(struct p11_sess *s, struct kura_error *err);

enum p11_lookup {
	P11_LOOKUP_FRESH,   /* C_FindObjects, ignoring the cache (destroy) */
	P11_LOOKUP_CHECKED, /* cache hit confirmed by C_GetAttributeValue */
	P11_LOOKUP_TRUSTED, /* cache hit used as is: the caller confirms
				 * with p11_object_confirm when the operation
				 * fails (unwrap: a wrong key only fails) */
};

struct p11_found {
	CK_OBJECT_HANDLE h;
	bool cached;	/* h came from the cache unconfirmed */
	bool destroyed; /* KURA_EKEY because of a tombstone */
};

/*
 * The handle of our object of kind with CKA_ID id, from the cache or by
 * C_FindObjects.  KURA_ENOENT when absent from a healthy token, KURA_EKEY
 * when the token is gone or the object was destroyed (tombstone; then
 * out->destroyed is set).
 */
enum kura_err p11_object(struct p11_sess *s, enum p11_kind kind,
			 const uint8_t id[P11_RAW_ID_LEN], const char *id_text,
			 enum p11_lookup mode, struct p11_found *out,
			 struct kura_error *err);

/* Is h still our object of this kind and id?  (*ok; errors only when the
 * token or session is gone.)  A wrong handle is dropped from the cache. */
enum kura_err p11_object_confirm(struct p11_sess *s, enum p11_kind kind,
				 const uint8_t id[P11_RAW_ID_LEN],
				 CK_OBJECT_HANDLE h, bool *ok,
				 struct kura_error *err);

/* Is the provider marked down? */
bool p11_is_down(struct p11 *p);

/* Remember the handle of an object just created (gen: s->gen). */
void p11_cache_put(struct p11 *p, uint64_t gen, enum p11_kind kind,
		   const uint8_t id[P11_RAW_ID_LEN], CK_OBJECT_HANDLE h,
		   bool destroyed);

/* Forget a cached handle and remember (in this instance) that the object
 * was destroyed. */
void p11_cache_forget(struct p11 *p, enum p11_kind kind,
		      const uint8_t id[P11_RAW_ID_LEN], bool destroyed);

/* Tombstones: a private token data object recording that a KEK was
 * destroyed, so that every process can answer KURA_EKEY ("destroyed")
 * rather than KURA_ENOENT ("never existed").  *found on success. */
enum kura_err p11_tombstone_find(struct p11_sess *s, const char *id_text,
				 bool *found, struct kura_error *err);
enum kura_err p11_tombstone_create(struct p11_sess *s, const char *id_text,
				   struct kura_error *err);

/* ---- pkcs11_id.c ---- */

#define P11_KEK_LABEL_MAX 128 /* bytes of a KEK's or signing key's label */

/* Parse "<prefix><32 lowercase hex digits>". */
bool p11_id_parse(const char *text, const char *prefix,
		  uint8_t out[P11_RAW_ID_LEN]);
void p11_id_format(const uint8_t id[P11_RAW_ID_LEN], const char *prefix,
		   char *out, size_t cap);
/* Labels are human hints: at most 128 bytes of UTF-8, no control chars. */
bool p11_label_valid(const char *label);

/* ---- pkcs11.c ---- */

/* For tests: make wrap use P11_MECH_GCM or P11_MECH_KWP (the token must
 * support it).  priv is struct kura_keys.priv of an open pkcs11 provider. */
enum kura_err kura_keys_pkcs11_set_wrap_mech(void *priv, unsigned mech,
					     struct kura_error *err);

/* ---- pkcs11_sign.c ---- */

enum kura_err p11_signer_create(void *priv, const char *label, char *id_out,
				struct kura_error *err);
enum kura_err p11_sign(void *priv, const char *key_id, const uint8_t digest[32],
		       uint8_t *sig, size_t *sig_len, struct kura_error *err);
enum kura_err p11_public_key(void *priv, const char *key_id, uint8_t *der,
			     size_t *der_len, struct kura_error *err);

#endif

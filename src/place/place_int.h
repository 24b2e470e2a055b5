/*
 * place_int.h — what the files of the placement layer share: the loaded
 * backends and policies (placement.c) and the replicated store over them
 * (replicated.c).
 */
#ifndef KURA_PLACE_INT_H
#define KURA_PLACE_INT_H

#include "kura/placement.h"

struct kura_placement;

/* The replicated store of one policy (or of every backend). */
struct place_repl {
	struct kura_placement *p;
	const struct kura_policy *policy; /* NULL: the "all" store */
	/* Read order: the policy's sync then async backends, then every
	 * other backend (a blob written under another configuration). */
	size_t order[KURA_BACKENDS_MAX];
	size_t norder;
};

struct place_backend {
	struct kura_backend_desc desc;
	char section[KURA_CONFIG_SECTION_MAX]; /* "storage", "backend.X" */
	struct kura_store *store;	       /* NULL until opened */
	/* Until when reads skip it (kura_now_ms; atomic): set when it
	 * failed other than "not found", so one backend that is down does
	 * not cost every read its timeouts. */
	int64_t down_until_ms;
};

struct place_policy {
	struct kura_policy policy;
	struct place_repl repl;
	struct kura_store store; /* ops = &place_repl_ops, priv = &repl */
};

struct kura_placement {
	char home[KURA_JURISDICTION_LEN];
	char keys_jurisdiction[KURA_JURISDICTION_LEN];
	char keys_provider[16];
	bool keys_external; /* pkcs11 or kmip */
	struct place_backend backends[KURA_BACKENDS_MAX];
	size_t nbackends;
	struct place_policy policies[KURA_POLICIES_MAX];
	size_t npolicies;
	size_t default_policy;
	struct place_repl all_repl;
	struct kura_store all_store;
	struct kura_meta *meta; /* where replicas are recorded; may be NULL */
};

extern const struct kura_store_ops place_repl_ops;

#endif

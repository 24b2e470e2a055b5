/*
 * hook.h — a hook on the calls through kura's pluggable interfaces (the
 * data store, store.h; the metadata store, meta.h; the key provider,
 * keys.h), and fault injection built on it.
 *
 * Every call through an interface goes through its thin wrapper
 * (kura_store_remove, kura_meta_object_put, kura_keys_wrap ...), as every
 * file operation of SQLite goes through os.c.  An instance whose hook is
 * set calls it before each slot that can fail, with the slot's name: the
 * one place to trace, count or fail calls without touching an
 * implementation.  A hook that returns an error fails the call with it and
 * the slot is not called, as when a disk fills up before a write is issued.
 * Slots that cannot fail (close, writer_abort, reader_close) are not hooked.
 *
 * Hooks are for tests and diagnostics: no configuration or environment
 * sets one.  Set a hook before the instance is shared; a hook on a shared
 * instance must be thread-safe (kura_fault is).
 */
#ifndef KURA_HOOK_H
#define KURA_HOOK_H

#include "kura/err.h"

struct kura_hook {
	/* Called before slot `slot` (its member name in the ops struct:
	 * "writer_write", "object_put", "unwrap").  KURA_OK lets the call
	 * through; any other code is returned in its place, err filled. */
	enum kura_err (*before)(void *ctx, const char *slot,
				struct kura_error *err);
	void *ctx;
};

/* In a wrapper: run x->hook (when set) before slot and return its error. */
#define KURA_HOOK_BEFORE(x, slot, err)                                        \
	do {                                                                  \
		if ((x)->hook != NULL) {                                      \
			enum kura_err hook_rc_ =                              \
				(x)->hook->before((x)->hook->ctx, slot, err); \
			if (hook_rc_ != KURA_OK)                              \
				return hook_rc_;                              \
		}                                                             \
	} while (0)

/*
 * Fault injection: a hook that fails chosen calls — a store that fails
 * its Nth write, a metadata store that fails the commit after the blobs
 * were removed — so a test puts an error exactly where a crash or a full
 * disk would hurt.  Fill the plan, kura_fault_init, then point an
 * instance's hook at &f->hook:
 *
 *     struct kura_fault f = { .slot = "remove", .skip = 1, .times = 1,
 *                             .code = KURA_EIO };
 *     kura_fault_init(&f);
 *     svc->store->hook = &f.hook;      the second remove fails
 *
 * The counters are updated atomically, so one plan may serve many threads.
 */
struct kura_fault {
	const char *slot;      /* the slot to fail; NULL: every hooked slot */
	unsigned long skip;    /* let this many matching calls through */
	unsigned long times;   /* then fail this many (0: every later one) */
	enum kura_err code;    /* the code to fail with (KURA_OK: KURA_EIO) */
	unsigned long calls;   /* out: matching calls seen */
	unsigned long failed;  /* out: calls failed */
	struct kura_hook hook; /* set by kura_fault_init */
};

/* Zero the counters and point f->hook at the plan. */
void kura_fault_init(struct kura_fault *f);

#endif

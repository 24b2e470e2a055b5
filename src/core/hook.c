/*
 * hook.c — fault injection on the interface wrappers (hook.h).
 *
 * Thread-safe: a plan's counters are updated with atomic builtins, so the
 * calls of many threads are counted once each and fail in their order of
 * arrival.
 */
#include <string.h>

#include "kura/hook.h"
#include "kura/banned.h"

static enum kura_err fault_before(void *ctx, const char *slot,
				  struct kura_error *err)
{
	struct kura_fault *f = ctx;
	if (f->slot != NULL && strcmp(f->slot, slot) != 0)
		return KURA_OK;
	unsigned long n = __atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);
	if (n <= f->skip || (f->times != 0 && n > f->skip + f->times))
		return KURA_OK;
	__atomic_add_fetch(&f->failed, 1, __ATOMIC_RELAXED);
	return kura_fail(err, f->code != KURA_OK ? f->code : KURA_EIO,
			 "injected fault: %s call %lu", slot, n);
}

void kura_fault_init(struct kura_fault *f)
{
	f->calls = 0;
	f->failed = 0;
	f->hook.before = fault_before;
	f->hook.ctx = f;
}

/*
 * pkcs11_module.c — loaded PKCS#11 modules and the names of CK_RV codes.
 *
 * C_Initialize and C_Finalize act on the whole process, and dlopen hands
 * every caller the same copy of a library, so provider instances that name
 * the same module share one struct p11_module: a process-wide registry
 * (mutex-guarded list) counts them, initialises the module once with
 * CKF_OS_LOCKING_OK (the module locks with OS primitives; we call it from
 * many threads) and finalises it when the last instance closes.
 *
 * Re-initialising (C_Finalize + C_Initialize, needed to recover some tokens,
 * see pkcs11_session.c) invalidates every session and object handle of every
 * instance.  It therefore takes the module's use lock for writing, which
 * waits for calls in flight, and bumps gen so that each instance can tell
 * its pooled sessions and cached handles are void — they are forgotten, not
 * closed, since after a re-initialisation their numbers may name someone
 * else's.
 *
 * Thread-safe.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11_int.h"
#include "kura/banned.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct p11_module *registry;

#define RV(name) { name, #name }
static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
	RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY),
	RV(CKR_SLOT_ID_INVALID), RV(CKR_GENERAL_ERROR),
	RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD), RV(CKR_NO_EVENT),
	RV(CKR_NEED_TO_CREATE_THREADS), RV(CKR_CANT_LOCK),
	RV(CKR_ATTRIBUTE_READ_ONLY), RV(CKR_ATTRIBUTE_SENSITIVE),
	RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_VALUE_INVALID),
	RV(CKR_ACTION_PROHIBITED), RV(CKR_DATA_INVALID),
	RV(CKR_DATA_LEN_RANGE), RV(CKR_DEVICE_ERROR), RV(CKR_DEVICE_MEMORY),
	RV(CKR_DEVICE_REMOVED), RV(CKR_ENCRYPTED_DATA_INVALID),
	RV(CKR_ENCRYPTED_DATA_LEN_RANGE), RV(CKR_FUNCTION_CANCELED),
	RV(CKR_FUNCTION_NOT_PARALLEL), RV(CKR_FUNCTION_NOT_SUPPORTED),
	RV(CKR_KEY_HANDLE_INVALID), RV(CKR_KEY_SIZE_RANGE),
	RV(CKR_KEY_TYPE_INCONSISTENT), RV(CKR_KEY_NOT_NEEDED),
	RV(CKR_KEY_CHANGED), RV(CKR_KEY_NEEDED), RV(CKR_KEY_INDIGESTIBLE),
	RV(CKR_KEY_FUNCTION_NOT_PERMITTED), RV(CKR_KEY_NOT_WRAPPABLE),
	RV(CKR_KEY_UNEXTRACTABLE), RV(CKR_MECHANISM_INVALID),
	RV(CKR_MECHANISM_PARAM_INVALID), RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE), RV(CKR_OPERATION_NOT_INITIALIZED),
	RV(CKR_PIN_INCORRECT), RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE),
	RV(CKR_PIN_EXPIRED), RV(CKR_PIN_LOCKED), RV(CKR_SESSION_CLOSED),
	RV(CKR_SESSION_COUNT), RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED), RV(CKR_SESSION_READ_ONLY),
	RV(CKR_SESSION_EXISTS), RV(CKR_SESSION_READ_ONLY_EXISTS),
	RV(CKR_SESSION_READ_WRITE_SO_EXISTS), RV(CKR_SIGNATURE_INVALID),
	RV(CKR_SIGNATURE_LEN_RANGE), RV(CKR_TEMPLATE_INCOMPLETE),
	RV(CKR_TEMPLATE_INCONSISTENT), RV(CKR_TOKEN_NOT_PRESENT),
	RV(CKR_TOKEN_NOT_RECOGNIZED), RV(CKR_TOKEN_WRITE_PROTECTED),
	RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
	RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
	RV(CKR_USER_ALREADY_LOGGED_IN), RV(CKR_USER_NOT_LOGGED_IN),
	RV(CKR_USER_PIN_NOT_INITIALIZED), RV(CKR_USER_TYPE_INVALID),
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), RV(CKR_USER_TOO_MANY_TYPES),
	RV(CKR_WRAPPED_KEY_INVALID), RV(CKR_WRAPPED_KEY_LEN_RANGE),
	RV(CKR_WRAPPING_KEY_HANDLE_INVALID), RV(CKR_WRAPPING_KEY_SIZE_RANGE),
	RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	RV(CKR_RANDOM_SEED_NOT_SUPPORTED), RV(CKR_RANDOM_NO_RNG),
	RV(CKR_DOMAIN_PARAMS_INVALID), RV(CKR_CURVE_NOT_SUPPORTED),
	RV(CKR_BUFFER_TOO_SMALL), RV(CKR_SAVED_STATE_INVALID),
	RV(CKR_INFORMATION_SENSITIVE), RV(CKR_STATE_UNSAVEABLE),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	RV(CKR_MUTEX_BAD), RV(CKR_MUTEX_NOT_LOCKED), RV(CKR_NEW_PIN_MODE),
	RV(CKR_NEXT_OTP), RV(CKR_EXCEEDED_MAX_ITERATIONS),
	RV(CKR_FIPS_SELF_TEST_FAILED), RV(CKR_LIBRARY_LOAD_FAILED),
	RV(CKR_PIN_TOO_WEAK), RV(CKR_PUBLIC_KEY_INVALID),
	RV(CKR_FUNCTION_REJECTED),
};
#undef RV

const char *p11_rv_name(CK_RV rv)
{
	static _Thread_local char other[48];
	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	if (rv & CKR_VENDOR_DEFINED)
		snprintf(other, sizeof(other), "CKR_VENDOR_DEFINED+0x%lx",
			 (unsigned long)(rv & ~CKR_VENDOR_DEFINED));
	else
		snprintf(other, sizeof(other), "CKR_0x%lx", (unsigned long)rv);
	return other;
}

bool p11_rv_gone(CK_RV rv)
{
	switch (rv) {
	case CKR_DEVICE_REMOVED:
	case CKR_DEVICE_ERROR:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_SLOT_ID_INVALID:
	case CKR_USER_NOT_LOGGED_IN:
		return true;
	default:
		return false;
	}
}

static CK_RV module_initialize(CK_FUNCTION_LIST_PTR fn)
{
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	return fn->C_Initialize(&args);
}

enum kura_err p11_module_acquire(const char *path, struct p11_module **out,
				 struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	struct p11_module *m = NULL;
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		const char *why = dlerror();
		return kura_fail(err, KURA_ECONFIG,
				 "[keys] module: cannot load PKCS#11 module '%s': %s",
				 path, why ? why : "dlopen failed");
	}
	pthread_mutex_lock(&registry_mu);
	for (m = registry; m != NULL; m = m->next)
		if (m->dl == dl)
			break;
	if (m != NULL) {
		m->refs++;
		/* The registry keeps the first dlopen reference. */
		dlclose(dl);
		dl = NULL;
		goto out;
	}
	CK_C_GetFunctionList get = NULL;
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "[keys] module: '%s' is not a PKCS#11 module (no C_GetFunctionList)",
			       path);
		goto out;
	}
	CK_FUNCTION_LIST_PTR fn = NULL;
	CK_RV rv = get(&fn);
	if (rv != CKR_OK || fn == NULL) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "[keys] module '%s': C_GetFunctionList: %s",
			       path, p11_rv_name(rv));
		goto out;
	}
	if (fn->version.major != 2) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "[keys] module '%s' implements Cryptoki %u.%u; 2.x is required",
			       path, (unsigned)fn->version.major,
			       (unsigned)fn->version.minor);
		goto out;
	}
	rv = module_initialize(fn);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		rc = kura_fail(err, rv == CKR_CANT_LOCK ? KURA_ECONFIG : KURA_EKEY,
			       "[keys] module '%s': C_Initialize: %s", path,
			       p11_rv_name(rv));
		goto out;
	}
	/* Writer preference, so that a re-initialisation is not starved by
	 * the calls of other instances (nobody read-locks recursively). */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	m = calloc(1, sizeof(*m));
	int lock_rc = m == NULL ? -1 : pthread_rwlock_init(&m->use, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (lock_rc != 0) {
		free(m);
		m = NULL;
		if (rv == CKR_OK)
			fn->C_Finalize(NULL);
		rc = kura_fail(err, KURA_ENOMEM, "PKCS#11 module state");
		goto out;
	}
	m->dl = dl;
	dl = NULL;
	m->fn = fn;
	m->refs = 1;
	m->initialized = true;
	m->next = registry;
	registry = m;
out:
	pthread_mutex_unlock(&registry_mu);
	if (dl != NULL)
		dlclose(dl);
	if (rc == KURA_OK)
		*out = m;
	return rc;
}

void p11_module_release(struct p11_module *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&registry_mu);
	if (--m->refs > 0) {
		pthread_mutex_unlock(&registry_mu);
		return;
	}
	for (struct p11_module **pp = &registry; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_mu);
	/* The last user is gone: nobody can hold the use lock any more. */
	if (m->initialized)
		(void)m->fn->C_Finalize(NULL);
	pthread_rwlock_destroy(&m->use);
	dlclose(m->dl);
	free(m);
}

enum kura_err p11_module_reinit(struct p11_module *m, uint64_t seen_gen,
				struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	pthread_rwlock_wrlock(&m->use);
	if (m->gen != seen_gen && m->initialized)
		goto out;	/* another instance re-initialised meanwhile */
	if (m->initialized)
		(void)m->fn->C_Finalize(NULL);
	CK_RV rv = module_initialize(m->fn);
	m->initialized = rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	m->gen++;
	if (!m->initialized)
		rc = kura_fail(err, KURA_EKEY,
			       "re-initialising the PKCS#11 module: C_Initialize: %s",
			       p11_rv_name(rv));
out:
	pthread_rwlock_unlock(&m->use);
	return rc;
}

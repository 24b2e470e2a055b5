/*
 * pkcs11_session.c — the session pool of a PKCS#11 provider instance, its
 * object-handle cache, tombstones of destroyed KEKs, and token availability.
 *
 * Sessions: up to P11_POOL_MAX read-write sessions per instance, each logged
 * in as CKU_USER (a login covers every session of the process on that
 * token, so CKR_USER_ALREADY_LOGGED_IN is success).  A caller checks one out
 * with p11_begin, which also read-locks the module so that no
 * re-initialisation can pull the session away mid-call, and gives it back
 * with p11_end.  When all are busy, callers wait on a condition variable.
 *
 * Handles: handles of token objects are the same in every session of the
 * process, so one cache per instance maps (kind, CKA_ID) to a handle.  A
 * module may hand a destroyed object's handle number to a new object, and
 * wrapping or signing under the wrong key would lose data, so for those a
 * hit is confirmed with C_GetAttributeValue(CKA_CLASS, CKA_ID) first.
 * unwrap trusts the hit (a wrong key can only make it fail) and confirms
 * only after a failure, before blaming the data.  Measured on SoftHSM 2.6.1
 * (2 cores): C_FindObjects costs ~3 ms with 200 private objects on the token
 * (it decrypts each one's attributes); with a cached handle a wrap+unwrap
 * pair takes ~45 us unconfirmed, ~115 us when both halves are confirmed.
 * The cache is emptied whenever the module is re-initialised (gen changes).
 *
 * Availability — what SoftHSM 2.6.1 does when its token directory is renamed
 * away, deleted, or made unreadable (chmod 000, as a non-root user) while
 * the process runs (measured, all three alike): sessions stay open and
 * logged in; C_GetTokenInfo fails with CKR_GENERAL_ERROR; C_FindObjects
 * succeeds with zero objects (so a miss must not be read as "no such key"
 * before the token is checked); an object handle gives
 * CKR_OBJECT_HANDLE_INVALID.  When the directory comes back, nothing
 * recovers within the same C_Initialize: only C_Finalize + C_Initialize
 * makes the token and its objects visible again.  Hardware tokens instead
 * return CKR_DEVICE_REMOVED / CKR_TOKEN_NOT_PRESENT / CKR_SESSION_* codes.
 *
 * So: any code that says the token, session or library went away, and any
 * miss or ambiguous failure (CKR_GENERAL_ERROR), is followed by a
 * C_GetTokenInfo check.  When the token does not answer, the instance is
 * marked down: calls fail at once with KURA_EKEY and the reason, sessions
 * are dropped, and one caller at a time, no sooner than the backoff allows
 * (1 s doubling to 30 s), tries to recover — first by finding the token
 * and opening a session, then by re-initialising the module.  A dead token
 * therefore costs one retry per backoff period, not one per request.
 *
 * Thread-safe: see the lock order in pkcs11_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/log.h"
#include "kura/timefmt.h"
#include "pkcs11_int.h"
#include "kura/banned.h"

#define TOMBSTONE_APP "kura destroyed KEK"
#define TOMBSTONE_APP_LEN (sizeof(TOMBSTONE_APP) - 1)

static CK_OBJECT_CLASS kind_class(enum p11_kind kind)
{
	switch (kind) {
	case P11_KIND_SIGN_PRIV:
		return CKO_PRIVATE_KEY;
	case P11_KIND_SIGN_PUB:
		return CKO_PUBLIC_KEY;
	case P11_KIND_KEK:
	default:
		return CKO_SECRET_KEY;
	}
}

static const char *kind_name(enum p11_kind kind)
{
	return kind == P11_KIND_KEK ? "KEK" : "signing key";
}

static struct p11_cache_entry *cache_slot(struct p11 *p, enum p11_kind kind,
					  const uint8_t id[P11_RAW_ID_LEN])
{
	/* Our ids are random, so their first bytes hash well enough. */
	unsigned h = ((unsigned)id[0] | (unsigned)id[1] << 8) ^ (unsigned)kind * 0x9e3u;
	return &p->cache[h % P11_CACHE_SLOTS];
}

static void cache_flush(struct p11 *p)
{
	memset(p->cache, 0, sizeof(p->cache));
}

/* ---- pool ---- */

enum kura_err p11_pool_init(struct p11 *p, struct kura_error *err)
{
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		return kura_fail(err, KURA_ENOMEM, "pkcs11: mutex");
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		return kura_fail(err, KURA_ENOMEM, "pkcs11: condition variable");
	}
	p->locks_ready = true;
	return KURA_OK;
}

void p11_pool_destroy(struct p11 *p)
{
	if (!p->locks_ready)
		return;
	if (p->mod != NULL) {
		pthread_rwlock_rdlock(&p->mod->use);
		/* Sessions of an older module generation died with it. */
		if (p->mod->initialized && p->pool_gen == p->mod->gen)
			for (size_t i = 0; i < p->n_idle; i++)
				(void)p->mod->fn->C_CloseSession(p->idle[i]);
		pthread_rwlock_unlock(&p->mod->use);
	}
	p->n_idle = p->n_open = 0;
	cache_flush(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	p->locks_ready = false;
}

/* Under mu: take the idle sessions of an older epoch out of the pool so the
 * caller can close them (after unlocking mu, with the module read-locked). */
static size_t take_stale_idle(struct p11 *p, CK_SESSION_HANDLE out[P11_POOL_MAX])
{
	if (p->idle_epoch == p->epoch || p->n_idle == 0) {
		p->idle_epoch = p->epoch;
		return 0;
	}
	size_t n = p->n_idle;
	memcpy(out, p->idle, n * sizeof(out[0]));
	p->n_open -= n;
	p->n_idle = 0;
	p->idle_epoch = p->epoch;
	pthread_cond_broadcast(&p->cv);
	return n;
}

static void close_all(CK_FUNCTION_LIST_PTR fn, const CK_SESSION_HANDLE *h,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		(void)fn->C_CloseSession(h[i]);
}

/* Under mu: the token is gone.  Fail fast from now on, drop the sessions,
 * schedule the next recovery attempt. */
static void mark_down_locked(struct p11 *p, const char *reason)
{
	if (p->down)
		return;
	p->down = true;
	p->epoch++;
	p->backoff_ms = P11_RETRY_MIN_MS;
	p->retry_at_ns = kura_mono_ns() + p->backoff_ms * 1000000u;
	snprintf(p->reason, sizeof(p->reason), "%s", reason);
	pthread_cond_broadcast(&p->cv);
	kura_warn(NULL, "pkcs11: token '%s' is unavailable: %s; retrying in %llu ms",
		  p->token, reason, (unsigned long long)p->backoff_ms);
}

/* Under mu: the token refused the PIN.  The PIN is read once at start-up,
 * and every further try could count towards locking it: never retry. */
static void mark_refused_locked(struct p11 *p, const char *reason)
{
	p->down = true;
	p->epoch++;
	p->retry_at_ns = UINT64_MAX;
	snprintf(p->reason, sizeof(p->reason), "%s", reason);
	pthread_cond_broadcast(&p->cv);
	kura_error(NULL, "pkcs11: token '%s' refused the PIN (%s); not retrying until restarted",
		   p->token, reason);
}

static void mark_down(struct p11 *p, const char *reason)
{
	pthread_mutex_lock(&p->mu);
	mark_down_locked(p, reason);
	pthread_mutex_unlock(&p->mu);
}

static bool label_matches(const CK_UTF8CHAR label[P11_LABEL_MAX],
			  const char *want)
{
	size_t n = strlen(want);
	if (n > P11_LABEL_MAX || memcmp(label, want, n) != 0)
		return false;
	for (size_t i = n; i < P11_LABEL_MAX; i++)
		if (label[i] != ' ' && label[i] != '\0')
			return false;
	return true;
}

enum kura_err p11_find_slot(struct p11 *p, CK_FUNCTION_LIST_PTR fn,
			    CK_SLOT_ID *out, struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_RV rv = fn->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv == CKR_OK && n > 0) {
		slots = calloc(n, sizeof(*slots));
		if (slots == NULL)
			return kura_fail(err, KURA_ENOMEM, "pkcs11: slot list");
		rv = fn->C_GetSlotList(CK_TRUE, slots, &n);
	}
	if (rv != CKR_OK) {
		rc = kura_fail(err, KURA_EKEY, "pkcs11: C_GetSlotList: %s",
			       p11_rv_name(rv));
		goto out;
	}
	size_t found = 0, failed = 0;
	CK_RV fail_rv = CKR_OK;
	CK_SLOT_ID slot = 0;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		rv = fn->C_GetTokenInfo(slots[i], &ti);
		if (rv != CKR_OK) {
			failed++;
			fail_rv = rv;
			continue;
		}
		if (!label_matches(ti.label, p->token))
			continue;
		if (found++ == 0)
			slot = slots[i];
		if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0 ||
		    (ti.flags & CKF_USER_PIN_INITIALIZED) == 0) {
			rc = kura_fail(err, KURA_ECONFIG,
				       "pkcs11: token '%s' is not initialised (no user PIN)",
				       p->token);
			goto out;
		}
		if (ti.flags & CKF_USER_PIN_LOCKED) {
			rc = kura_fail(err, KURA_EAUTH,
				       "pkcs11: the user PIN of token '%s' is locked",
				       p->token);
			goto out;
		}
	}
	if (found > 1) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "pkcs11: %zu tokens are labelled '%s'; labels must be unique",
			       found, p->token);
	} else if (found == 0 && failed > 0) {
		rc = kura_fail(err, KURA_EKEY,
			       "pkcs11: no token labelled '%s' answers (C_GetTokenInfo: %s on %zu slot(s))",
			       p->token, p11_rv_name(fail_rv), failed);
	} else if (found == 0) {
		rc = kura_fail(err, KURA_EKEY,
			       "pkcs11: no token labelled '%s' is present (%lu token(s) seen)",
			       p->token, (unsigned long)n);
	} else {
		*out = slot;
	}
out:
	free(slots);
	return rc;
}

enum kura_err p11_open_session(struct p11 *p, CK_FUNCTION_LIST_PTR fn,
			       CK_SLOT_ID slot, CK_SESSION_HANDLE *out,
			       struct kura_error *err)
{
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv = fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &h);
	if (rv != CKR_OK) {
		enum kura_err code = rv == CKR_HOST_MEMORY ? KURA_ENOMEM :
				     rv == CKR_SESSION_COUNT ? KURA_EBUSY :
				     rv == CKR_TOKEN_WRITE_PROTECTED ? KURA_ECONFIG :
				     KURA_EKEY;
		return kura_fail(err, code, "pkcs11: C_OpenSession on token '%s': %s",
				 p->token, p11_rv_name(rv));
	}
	rv = fn->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)p->pin->data,
			 (CK_ULONG)p->pin->len);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		*out = h;
		return KURA_OK;
	}
	(void)fn->C_CloseSession(h);
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return kura_fail(err, KURA_EAUTH,
				 "pkcs11: C_Login on token '%s': %s (wrong user PIN)",
				 p->token, p11_rv_name(rv));
	case CKR_PIN_LOCKED:
	case CKR_PIN_EXPIRED:
		return kura_fail(err, KURA_EAUTH,
				 "pkcs11: C_Login on token '%s': %s (the user PIN must be reset)",
				 p->token, p11_rv_name(rv));
	default:
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: C_Login on token '%s': %s", p->token,
				 p11_rv_name(rv));
	}
}

/*
 * Try to bring the token back: find it and open a session; when that fails
 * (SoftHSM needs it, see the top of this file), re-initialise the module
 * and try again.  Called by exactly one thread (p->recovering), holding no
 * lock.  On success the new session is pooled and the instance is up.
 */
static enum kura_err recover(struct p11 *p, struct kura_error *err)
{
	struct p11_module *m = p->mod;
	struct kura_error sub = { 0 };
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE, stale[P11_POOL_MAX];
	CK_SLOT_ID slot = 0;
	enum kura_err rc = KURA_EKEY;
	uint64_t gen = 0;
	size_t n_stale = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt == 1) {
			kura_error_clear(&sub);
			rc = p11_module_reinit(m, gen, &sub);
			if (rc != KURA_OK)
				break;
		}
		pthread_rwlock_rdlock(&m->use);
		gen = m->gen;
		if (!m->initialized) {
			rc = kura_fail(&sub, KURA_EKEY,
				       "the PKCS#11 module is not initialised");
		} else {
			rc = p11_find_slot(p, m->fn, &slot, &sub);
			if (rc == KURA_OK)
				rc = p11_open_session(p, m->fn, slot, &h, &sub);
		}
		if (rc == KURA_OK)
			break;	/* keep the read lock: h belongs to gen */
		pthread_rwlock_unlock(&m->use);
		/* A refused PIN or configuration will not heal by itself
		 * (and retrying a PIN may lock it): no re-initialisation. */
		if (rc == KURA_EAUTH || rc == KURA_ECONFIG || rc == KURA_ENOMEM)
			break;
	}

	pthread_mutex_lock(&p->mu);
	p->recovering = false;
	if (rc == KURA_EAUTH) {
		mark_refused_locked(p, sub.msg);
		pthread_mutex_unlock(&p->mu);
		return kura_fail(err, KURA_EKEY, "pkcs11: token '%s' is unavailable: %s",
				 p->token, sub.msg);
	}
	if (rc != KURA_OK) {
		p->backoff_ms = p->backoff_ms * 2 > P11_RETRY_MAX_MS ?
				P11_RETRY_MAX_MS : p->backoff_ms * 2;
		if (p->backoff_ms < P11_RETRY_MIN_MS)
			p->backoff_ms = P11_RETRY_MIN_MS;
		p->retry_at_ns = kura_mono_ns() + p->backoff_ms * 1000000u;
		snprintf(p->reason, sizeof(p->reason), "%s", sub.msg);
		pthread_mutex_unlock(&p->mu);
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: token '%s' is still unavailable: %s (next retry in %llu ms)",
				 p->token, sub.msg,
				 (unsigned long long)p->backoff_ms);
	}
	if (p->pool_gen != gen) {
		/* Re-initialised: every old session and handle is void. */
		p->n_idle = p->n_open = 0;
		p->pool_gen = gen;
		cache_flush(p);
	}
	n_stale = take_stale_idle(p, stale);
	p->slot = slot;
	p->slot_gen = gen;
	p->slot_known = true;
	p->idle[p->n_idle++] = h;
	p->n_open++;
	p->down = false;
	p->backoff_ms = 0;
	p->reason[0] = '\0';
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	close_all(m->fn, stale, n_stale);
	pthread_rwlock_unlock(&m->use);
	kura_info(NULL, "pkcs11: token '%s' is available again", p->token);
	return KURA_OK;
}

static enum kura_err fail_down_locked(struct p11 *p, struct kura_error *err)
{
	if (p->retry_at_ns == UINT64_MAX)
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: token '%s' is unavailable: %s (not retried)",
				 p->token, p->reason);
	uint64_t now = kura_mono_ns();
	uint64_t wait_ms = p->retry_at_ns > now ?
			   (p->retry_at_ns - now) / 1000000u : 0;
	return kura_fail(err, KURA_EKEY,
			 "pkcs11: token '%s' is unavailable: %s (next retry in %llu ms)",
			 p->token, p->reason, (unsigned long long)wait_ms);
}

enum kura_err p11_begin(struct p11 *p, struct p11_sess *s,
			struct kura_error *err)
{
	struct p11_module *m = p->mod;
	CK_SESSION_HANDLE stale[P11_POOL_MAX];
	size_t n_stale;
	enum kura_err rc;

	pthread_mutex_lock(&p->mu);
	while (p->down) {
		if (p->recovering || kura_mono_ns() < p->retry_at_ns) {
			rc = fail_down_locked(p, err);
			pthread_mutex_unlock(&p->mu);
			return rc;
		}
		p->recovering = true;
		pthread_mutex_unlock(&p->mu);
		rc = recover(p, err);
		if (rc != KURA_OK)
			return rc;
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);

	pthread_rwlock_rdlock(&m->use);
	if (!m->initialized) {
		pthread_rwlock_unlock(&m->use);
		mark_down(p, "the PKCS#11 module is not initialised");
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: token '%s' is unavailable: the PKCS#11 module is not initialised",
				 p->token);
	}
	uint64_t gen = m->gen;
	pthread_mutex_lock(&p->mu);
	if (p->pool_gen != gen) {
		/* Another instance re-initialised the module: our sessions
		 * and handles died with the old generation. */
		p->n_idle = p->n_open = 0;
		p->pool_gen = gen;
		p->slot_known = false;
		cache_flush(p);
	}
	if (!p->slot_known || p->slot_gen != gen) {
		pthread_mutex_unlock(&p->mu);
		CK_SLOT_ID slot;
		struct kura_error sub = { 0 };
		rc = p11_find_slot(p, m->fn, &slot, &sub);
		if (rc != KURA_OK) {
			pthread_rwlock_unlock(&m->use);
			if (rc == KURA_EKEY)
				mark_down(p, sub.msg);
			return kura_fail(err, rc, "%s", sub.msg);
		}
		pthread_mutex_lock(&p->mu);
		p->slot = slot;
		p->slot_gen = gen;
		p->slot_known = true;
	}
	for (;;) {
		n_stale = take_stale_idle(p, stale);
		if (n_stale > 0) {
			pthread_mutex_unlock(&p->mu);
			close_all(m->fn, stale, n_stale);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (p->down) {
			rc = fail_down_locked(p, err);
			pthread_mutex_unlock(&p->mu);
			pthread_rwlock_unlock(&m->use);
			return rc;
		}
		if (p->n_idle > 0 || p->n_open < P11_POOL_MAX)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	s->p = p;
	s->fn = m->fn;
	s->slot = p->slot;
	s->gen = gen;
	s->epoch = p->epoch;
	s->broken = s->forget = s->retry = false;
	if (p->n_idle > 0) {
		s->h = p->idle[--p->n_idle];
		pthread_mutex_unlock(&p->mu);
		return KURA_OK;
	}
	p->n_open++;
	pthread_mutex_unlock(&p->mu);
	struct kura_error sub = { 0 };
	rc = p11_open_session(p, m->fn, s->slot, &s->h, &sub);
	if (rc != KURA_OK) {
		pthread_mutex_lock(&p->mu);
		p->n_open--;
		pthread_cond_signal(&p->cv);
		if (rc == KURA_EAUTH)
			mark_refused_locked(p, sub.msg);
		pthread_mutex_unlock(&p->mu);
		/* Is the token itself gone?  Check while still read-locked. */
		if (rc == KURA_EKEY) {
			CK_TOKEN_INFO ti;
			CK_RV rv = m->fn->C_GetTokenInfo(s->slot, &ti);
			if (rv != CKR_OK) {
				char why[P11_REASON_MAX];
				snprintf(why, sizeof(why), "C_GetTokenInfo: %s",
					 p11_rv_name(rv));
				mark_down(p, why);
			}
		}
		pthread_rwlock_unlock(&m->use);
		/* A refused PIN is the token being unavailable to callers. */
		return kura_fail(err, rc == KURA_EAUTH ? KURA_EKEY : rc, "%s",
				 sub.msg);
	}
	return KURA_OK;
}

void p11_end(struct p11_sess *s)
{
	struct p11 *p = s->p;
	CK_SESSION_HANDLE stale[P11_POOL_MAX];
	size_t n_stale;
	bool close_it = false;
	pthread_mutex_lock(&p->mu);
	n_stale = take_stale_idle(p, stale);
	if (s->broken || s->epoch != p->epoch || s->gen != p->pool_gen) {
		p->n_open--;
		close_it = !s->forget && s->gen == p->pool_gen;
	} else {
		p->idle[p->n_idle++] = s->h;
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	close_all(s->fn, stale, n_stale);
	if (close_it)
		(void)s->fn->C_CloseSession(s->h);
	pthread_rwlock_unlock(&p->mod->use);
}

enum kura_err p11_run(struct p11 *p,
		      enum kura_err (*body)(struct p11_sess *s, void *ctx,
					    struct kura_error *err),
		      void *ctx, struct kura_error *err)
{
	struct kura_error sub;
	enum kura_err rc = KURA_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct p11_sess s;
		memset(&s, 0, sizeof(s));
		kura_error_clear(&sub);
		rc = p11_begin(p, &s, &sub);
		if (rc != KURA_OK)
			break;
		rc = body(&s, ctx, &sub);
		p11_end(&s);
		if (rc == KURA_OK || !s.retry)
			break;
	}
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", sub.msg);
	return KURA_OK;
}

/* ---- error translation and health ---- */

bool p11_token_healthy(struct p11_sess *s, struct kura_error *err)
{
	CK_TOKEN_INFO ti;
	CK_RV rv = s->fn->C_GetTokenInfo(s->slot, &ti);
	if (rv == CKR_OK && label_matches(ti.label, s->p->token))
		return true;
	char why[P11_REASON_MAX];
	if (rv == CKR_OK)
		snprintf(why, sizeof(why), "slot %lu now holds another token",
			 (unsigned long)s->slot);
	else
		snprintf(why, sizeof(why), "C_GetTokenInfo: %s", p11_rv_name(rv));
	s->broken = true;
	mark_down(s->p, why);
	kura_fail(err, KURA_EKEY, "pkcs11: token '%s' is unavailable: %s",
		  s->p->token, why);
	return false;
}

enum kura_err p11_fail(struct p11_sess *s, CK_RV rv, const char *fn,
		       enum kura_err dflt, const char *what,
		       struct kura_error *err)
{
	const char *tok = s->p->token;
	if (p11_rv_gone(rv)) {
		s->broken = true;
		s->forget = rv == CKR_SESSION_HANDLE_INVALID ||
			    rv == CKR_SESSION_CLOSED ||
			    rv == CKR_CRYPTOKI_NOT_INITIALIZED;
		if (!p11_token_healthy(s, err))
			return KURA_EKEY;
		/* The token answers: only this session was lost. */
		s->retry = true;
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: %s (%s) on token '%s': %s (session dropped)",
				 fn, what, tok, p11_rv_name(rv));
	}
	enum kura_err code = dflt;
	switch (rv) {
	case CKR_HOST_MEMORY:
		code = KURA_ENOMEM;
		break;
	case CKR_DEVICE_MEMORY:
		code = KURA_ENOSPC;
		break;
	case CKR_SESSION_COUNT:
		code = KURA_EBUSY;
		break;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
	case CKR_PIN_EXPIRED:
		code = KURA_EAUTH;
		break;
	case CKR_GENERAL_ERROR:
	case CKR_FUNCTION_FAILED:
		/* SoftHSM says CKR_GENERAL_ERROR both for a bad GCM tag and
		 * for a vanished token: ask the token which it is.  (A failed
		 * call ends its operation, so the session stays usable; closing
		 * it could close our last session, which logs the user out.) */
		if (!p11_token_healthy(s, err))
			return KURA_EKEY;
		break;
	case CKR_OPERATION_ACTIVE:
		/* A module that kept an operation open after a failure. */
		s->broken = true;
		s->retry = true;
		break;
	default:
		break;
	}
	return kura_fail(err, code, "pkcs11: %s (%s) on token '%s': %s", fn,
			 what, tok, p11_rv_name(rv));
}

/* ---- objects ---- */

/* C_FindObjects for up to cap objects matching tmpl. */
static enum kura_err find_objects(struct p11_sess *s, CK_ATTRIBUTE *tmpl,
				  CK_ULONG n_tmpl, CK_OBJECT_HANDLE *out,
				  CK_ULONG cap, CK_ULONG *n_out,
				  const char *what, struct kura_error *err)
{
	CK_RV rv = s->fn->C_FindObjectsInit(s->h, tmpl, n_tmpl);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_FindObjectsInit", KURA_EKEY, what, err);
	CK_ULONG n = 0;
	rv = s->fn->C_FindObjects(s->h, out, cap, &n);
	CK_RV rv2 = s->fn->C_FindObjectsFinal(s->h);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_FindObjects", KURA_EKEY, what, err);
	if (rv2 != CKR_OK)
		return p11_fail(s, rv2, "C_FindObjectsFinal", KURA_EKEY, what, err);
	*n_out = n;
	return KURA_OK;
}

void p11_cache_put(struct p11 *p, uint64_t gen, enum p11_kind kind,
			const uint8_t id[P11_RAW_ID_LEN], CK_OBJECT_HANDLE h,
			bool destroyed)
{
	pthread_mutex_lock(&p->mu);
	if (p->pool_gen == gen) {
		struct p11_cache_entry *e = cache_slot(p, kind, id);
		e->kind = (uint8_t)kind;
		e->destroyed = destroyed;
		memcpy(e->id, id, P11_RAW_ID_LEN);
		e->handle = h;
	}
	pthread_mutex_unlock(&p->mu);
}

void p11_cache_forget(struct p11 *p, enum p11_kind kind,
		      const uint8_t id[P11_RAW_ID_LEN], bool destroyed)
{
	pthread_mutex_lock(&p->mu);
	struct p11_cache_entry *e = cache_slot(p, kind, id);
	if (destroyed) {
		e->kind = (uint8_t)kind;
		e->destroyed = true;
		memcpy(e->id, id, P11_RAW_ID_LEN);
		e->handle = CK_INVALID_HANDLE;
	} else if (e->kind == kind && memcmp(e->id, id, P11_RAW_ID_LEN) == 0) {
		memset(e, 0, sizeof(*e));
	}
	pthread_mutex_unlock(&p->mu);
}

/* Is h still our object of this class and id? */
static enum kura_err handle_confirm(struct p11_sess *s, CK_OBJECT_HANDLE h,
				    CK_OBJECT_CLASS want_class,
				    const uint8_t id[P11_RAW_ID_LEN],
				    bool *ok, struct kura_error *err)
{
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
	uint8_t got[P11_RAW_ID_LEN];
	CK_ATTRIBUTE a[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, got, sizeof(got) },
	};
	CK_RV rv = s->fn->C_GetAttributeValue(s->h, h, a, 2);
	if (p11_rv_gone(rv) || rv == CKR_GENERAL_ERROR || rv == CKR_HOST_MEMORY)
		return p11_fail(s, rv, "C_GetAttributeValue", KURA_EKEY,
				"cached key handle", err);
	*ok = rv == CKR_OK && cls == want_class &&
	      a[1].ulValueLen == P11_RAW_ID_LEN &&
	      memcmp(got, id, P11_RAW_ID_LEN) == 0;
	return KURA_OK;
}

enum kura_err p11_object_confirm(struct p11_sess *s, enum p11_kind kind,
				 const uint8_t id[P11_RAW_ID_LEN],
				 CK_OBJECT_HANDLE h, bool *ok,
				 struct kura_error *err)
{
	enum kura_err rc = handle_confirm(s, h, kind_class(kind), id, ok, err);
	if (rc == KURA_OK && !*ok)
		p11_cache_forget(s->p, kind, id, false);
	return rc;
}

bool p11_is_down(struct p11 *p)
{
	pthread_mutex_lock(&p->mu);
	bool down = p->down;
	pthread_mutex_unlock(&p->mu);
	return down;
}

enum kura_err p11_object(struct p11_sess *s, enum p11_kind kind,
			 const uint8_t id[P11_RAW_ID_LEN], const char *id_text,
			 enum p11_lookup mode, struct p11_found *out,
			 struct kura_error *err)
{
	struct p11 *p = s->p;
	CK_OBJECT_CLASS cls = kind_class(kind);
	enum kura_err rc;
	out->h = CK_INVALID_HANDLE;
	out->cached = out->destroyed = false;

	if (mode != P11_LOOKUP_FRESH) {
		bool hit = false, destroyed = false;
		CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
		pthread_mutex_lock(&p->mu);
		struct p11_cache_entry *e = cache_slot(p, kind, id);
		if (e->kind == kind && memcmp(e->id, id, P11_RAW_ID_LEN) == 0) {
			hit = true;
			destroyed = e->destroyed;
			h = e->handle;
		}
		pthread_mutex_unlock(&p->mu);
		if (destroyed) {
			out->destroyed = true;
			return kura_fail(err, KURA_EKEY, "pkcs11: %s '%s' was destroyed",
					 kind_name(kind), id_text);
		}
		if (hit && mode == P11_LOOKUP_TRUSTED) {
			out->h = h;
			out->cached = true;
			return KURA_OK;
		}
		if (hit) {
			bool ok = false;
			rc = p11_object_confirm(s, kind, id, h, &ok, err);
			if (rc != KURA_OK)
				return rc;
			if (ok) {
				out->h = h;
				return KURA_OK;
			}
		}
	}

	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, (void *)id, P11_RAW_ID_LEN },
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	rc = find_objects(s, tmpl, 2, found, 2, &n, id_text, err);
	if (rc != KURA_OK)
		return rc;
	if (n > 1)
		return kura_fail(err, KURA_EKEY,
				 "pkcs11: token '%s' holds several objects with the id of %s '%s'",
				 p->token, kind_name(kind), id_text);
	if (n == 1) {
		p11_cache_put(p, s->gen, kind, id, found[0], false);
		out->h = found[0];
		return KURA_OK;
	}
	/* A miss on a token that has gone away is not "no such key". */
	if (!p11_token_healthy(s, err))
		return KURA_EKEY;
	if (kind == P11_KIND_KEK) {
		bool dead = false;
		rc = p11_tombstone_find(s, id_text, &dead, err);
		if (rc != KURA_OK)
			return rc;
		if (dead) {
			out->destroyed = true;
			p11_cache_put(p, s->gen, kind, id, CK_INVALID_HANDLE, true);
			return kura_fail(err, KURA_EKEY, "pkcs11: KEK '%s' was destroyed",
					 id_text);
		}
	}
	return kura_fail(err, KURA_ENOENT, "pkcs11: unknown %s '%s' (not on token '%s')",
			 kind_name(kind), id_text, p->token);
}

/* ---- tombstones ---- */

static void tombstone_template(CK_ATTRIBUTE t[5], CK_OBJECT_CLASS *cls,
			       CK_BBOOL *yes, const char *id_text)
{
	*cls = CKO_DATA;
	*yes = CK_TRUE;
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, cls, sizeof(*cls) };
	t[1] = (CK_ATTRIBUTE){ CKA_APPLICATION, (void *)TOMBSTONE_APP,
			       TOMBSTONE_APP_LEN };
	t[2] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)id_text, strlen(id_text) };
	t[3] = (CK_ATTRIBUTE){ CKA_TOKEN, yes, sizeof(*yes) };
	t[4] = (CK_ATTRIBUTE){ CKA_PRIVATE, yes, sizeof(*yes) };
}

enum kura_err p11_tombstone_find(struct p11_sess *s, const char *id_text,
				 bool *found, struct kura_error *err)
{
	CK_ATTRIBUTE t[5];
	CK_OBJECT_CLASS cls;
	CK_BBOOL yes;
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 0;
	tombstone_template(t, &cls, &yes, id_text);
	enum kura_err rc = find_objects(s, t, 3, &h, 1, &n, "tombstone", err);
	if (rc == KURA_OK)
		*found = n > 0;
	return rc;
}

enum kura_err p11_tombstone_create(struct p11_sess *s, const char *id_text,
				   struct kura_error *err)
{
	bool found = false;
	enum kura_err rc = p11_tombstone_find(s, id_text, &found, err);
	if (rc != KURA_OK || found)
		return rc;
	CK_ATTRIBUTE t[5];
	CK_OBJECT_CLASS cls;
	CK_BBOOL yes;
	CK_OBJECT_HANDLE h;
	tombstone_template(t, &cls, &yes, id_text);
	CK_RV rv = s->fn->C_CreateObject(s->h, t, 5, &h);
	if (rv != CKR_OK)
		return p11_fail(s, rv, "C_CreateObject", KURA_EKEY, "tombstone",
				err);
	return KURA_OK;
}

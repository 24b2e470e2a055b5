/*
 * keycache.c — unwrapped bucket keys, kept briefly so that the key
 * provider's round trip stays off the per-object path.
 *
 * Invariants:
 *  - A cached key lives at most ttl after the provider unwrap that produced
 *    it began: expired entries are wiped when found by get, by a sweep that
 *    get runs now and then, and by a sweeper thread that sleeps until the
 *    next expiry (so an idle server does not keep keys either).
 *  - Entries are struct kura_secret (locked memory); evict() and every
 *    removal wipe at once (kura_secret_free).
 *  - Entries are found by the caller's cache id (the bucket key's row id);
 *    a hit must also match everything else the caller presents (tenant,
 *    bucket, KEK id and wrapped bytes), so a re-keyed bucket never gets a
 *    stale key.
 *  - At most MAX_ENTRIES entries; inserting into a full cache drops the
 *    oldest.
 *  - An evict() that happens while another thread is unwrapping the same
 *    bucket wins: an unwrap that began before the latest evict() returns
 *    its key to its caller but does not enter it into the cache.
 *  - get returns a copy, so callers never hold a pointer into the cache.
 *
 * Threading: one mutex guards the table; the provider is called without it,
 * so a slow provider for one bucket does not stall hits on others.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kura/crypt.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define MAX_ENTRIES 4096
#define NSLOTS 1024 /* hash chains, a power of two */
#define BUCKET_KEY_LEN 32
#define NS_PER_MS UINT64_C(1000000)
#define SWEEP_MIN_NS (10 * NS_PER_MS) /* get sweeps at most this often */

struct entry {
	struct entry *next; /* hash chain */
	uint64_t cache_id;  /* the caller's name for this bucket key */
	uint64_t tenant_id;
	uint64_t bucket_id;
	char *kek_id;
	uint8_t *wrapped; /* not secret: the provider's output */
	size_t wrapped_len;
	struct kura_secret *key;
	uint64_t born_ns; /* kura_mono_ns() when unwrap began */
};

struct kura_keycache {
	struct kura_keys *keys;
	uint64_t ttl_ns;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* CLOCK_MONOTONIC */
	pthread_t sweeper;
	bool sweeper_running;
	bool stopping;
	struct entry *slots[NSLOTS];
	size_t count;
	uint64_t evict_gen; /* bumped by every evict() */
	uint64_t last_sweep_ns;
};

static size_t slot_of(uint64_t cache_id)
{
	/* Mix: cache ids may be small sequential row ids. */
	uint64_t h = cache_id * UINT64_C(0x9e3779b97f4a7c15);
	return (size_t)(h >> 32) & (NSLOTS - 1);
}

static void entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	kura_secret_free(e->key);
	free(e->kek_id);
	free(e->wrapped);
	free(e);
}

static bool expired(const struct kura_keycache *kc, const struct entry *e,
		    uint64_t now)
{
	return now - e->born_ns >= kc->ttl_ns;
}

/* Unlink *pp (called with the lock) and wipe it. */
static void remove_at(struct kura_keycache *kc, struct entry **pp)
{
	struct entry *e = *pp;
	*pp = e->next;
	kc->count--;
	entry_free(e);
}

static struct entry **find(struct kura_keycache *kc, uint64_t cache_id)
{
	struct entry **pp = &kc->slots[slot_of(cache_id)];
	while (*pp != NULL && (*pp)->cache_id != cache_id)
		pp = &(*pp)->next;
	return pp;
}

/* Drop every expired entry; returns the earliest remaining expiry time, or
 * 0 when the cache is empty.  Called with the lock. */
static uint64_t sweep_locked(struct kura_keycache *kc, uint64_t now)
{
	uint64_t next = 0;
	for (size_t i = 0; i < NSLOTS; i++) {
		struct entry **pp = &kc->slots[i];
		while (*pp != NULL) {
			if (expired(kc, *pp, now)) {
				remove_at(kc, pp);
				continue;
			}
			uint64_t due = (*pp)->born_ns + kc->ttl_ns;
			if (next == 0 || due < next)
				next = due;
			pp = &(*pp)->next;
		}
	}
	kc->last_sweep_ns = now;
	return next;
}

static void drop_oldest_locked(struct kura_keycache *kc)
{
	struct entry **oldest = NULL;
	for (size_t i = 0; i < NSLOTS; i++)
		for (struct entry **pp = &kc->slots[i]; *pp != NULL;
		     pp = &(*pp)->next)
			if (oldest == NULL ||
			    (*pp)->born_ns < (*oldest)->born_ns)
				oldest = pp;
	if (oldest != NULL)
		remove_at(kc, oldest);
}

static void *sweeper_main(void *arg)
{
	struct kura_keycache *kc = arg;
	pthread_mutex_lock(&kc->lock);
	while (!kc->stopping) {
		uint64_t next = sweep_locked(kc, kura_mono_ns());
		if (next == 0) {
			pthread_cond_wait(&kc->wake, &kc->lock);
			continue;
		}
		struct timespec ts = {
			.tv_sec = (time_t)(next / 1000000000u),
			.tv_nsec = (long)(next % 1000000000u),
		};
		(void)pthread_cond_timedwait(&kc->wake, &kc->lock, &ts);
	}
	pthread_mutex_unlock(&kc->lock);
	return NULL;
}

enum kura_err kura_keycache_new(struct kura_keys *keys, uint64_t ttl_ms,
				struct kura_keycache **out,
				struct kura_error *err)
{
	if (keys == NULL || keys->ops == NULL || keys->ops->unwrap == NULL)
		return kura_fail(err, KURA_EINVAL,
				 "key cache needs a key provider");
	struct kura_keycache *kc = calloc(1, sizeof(*kc));
	if (kc == NULL)
		return kura_fail(err, KURA_ENOMEM, "key cache");
	kc->keys = keys;
	/* Clamp so born + ttl can never wrap. */
	const uint64_t ttl_max_ms = UINT64_C(1) << 40;
	kc->ttl_ns = (ttl_ms < ttl_max_ms ? ttl_ms : ttl_max_ms) * NS_PER_MS;

	enum kura_err rc = KURA_OK;
	bool have_lock = false, have_cond = false;
	pthread_condattr_t ca;
	int e = pthread_mutex_init(&kc->lock, NULL);
	if (e != 0) {
		rc = kura_fail_errno(err, KURA_ENOMEM, e, "key cache mutex");
		goto out;
	}
	have_lock = true;
	e = pthread_condattr_init(&ca);
	if (e == 0) {
		e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (e == 0)
			e = pthread_cond_init(&kc->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (e != 0) {
		rc = kura_fail_errno(err, KURA_ENOMEM, e,
				     "key cache condition");
		goto out;
	}
	have_cond = true;
	if (kc->ttl_ns > 0) {
		e = pthread_create(&kc->sweeper, NULL, sweeper_main, kc);
		if (e != 0) {
			rc = kura_fail_errno(err, KURA_ENOMEM, e,
					     "key cache sweeper thread");
			goto out;
		}
		kc->sweeper_running = true;
	}
out:
	if (rc != KURA_OK) {
		if (have_cond)
			pthread_cond_destroy(&kc->wake);
		if (have_lock)
			pthread_mutex_destroy(&kc->lock);
		free(kc);
		return rc;
	}
	*out = kc;
	return KURA_OK;
}

void kura_keycache_free(struct kura_keycache *kc)
{
	if (kc == NULL)
		return;
	if (kc->sweeper_running) {
		pthread_mutex_lock(&kc->lock);
		kc->stopping = true;
		pthread_cond_signal(&kc->wake);
		pthread_mutex_unlock(&kc->lock);
		pthread_join(kc->sweeper, NULL);
	}
	for (size_t i = 0; i < NSLOTS; i++)
		while (kc->slots[i] != NULL)
			remove_at(kc, &kc->slots[i]);
	pthread_cond_destroy(&kc->wake);
	pthread_mutex_destroy(&kc->lock);
	free(kc);
}

static bool entry_matches(const struct entry *e, uint64_t tenant_id,
			  uint64_t bucket_id, const char *kek_id,
			  const uint8_t *wrapped, size_t wrapped_len)
{
	return e->tenant_id == tenant_id && e->bucket_id == bucket_id &&
	       strcmp(e->kek_id, kek_id) == 0 &&
	       e->wrapped_len == wrapped_len &&
	       memcmp(e->wrapped, wrapped, wrapped_len) == 0;
}

/* Build an entry holding a copy of key; NULL on allocation failure. */
static struct entry *entry_new(uint64_t cache_id, uint64_t tenant_id,
			       uint64_t bucket_id, const char *kek_id,
			       const uint8_t *wrapped, size_t wrapped_len,
			       const struct kura_secret *key, uint64_t born)
{
	struct entry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->cache_id = cache_id;
	e->tenant_id = tenant_id;
	e->bucket_id = bucket_id;
	e->born_ns = born;
	e->wrapped_len = wrapped_len;
	e->kek_id = strdup(kek_id);
	e->wrapped = malloc(wrapped_len);
	e->key = kura_secret_dup(key);
	if (e->kek_id == NULL || e->wrapped == NULL || e->key == NULL) {
		entry_free(e);
		return NULL;
	}
	memcpy(e->wrapped, wrapped, wrapped_len);
	return e;
}

enum kura_err kura_keycache_get(struct kura_keycache *kc, uint64_t cache_id,
				uint64_t tenant_id, uint64_t bucket_id,
				const char *kek_id, const uint8_t *wrapped,
				size_t wrapped_len, struct kura_secret **out,
				struct kura_error *err)
{
	if (kek_id == NULL || memchr(kek_id, '\0', KURA_KEK_ID_MAX) == NULL ||
	    wrapped == NULL || wrapped_len == 0 ||
	    wrapped_len > KURA_WRAPPED_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "bucket key reference is malformed");

	uint64_t now = kura_mono_ns();
	struct kura_secret *key = NULL;
	pthread_mutex_lock(&kc->lock);
	if (now - kc->last_sweep_ns >= SWEEP_MIN_NS)
		(void)sweep_locked(kc, now);
	struct entry **pp = find(kc, cache_id);
	if (*pp != NULL) {
		if (!expired(kc, *pp, now) &&
		    entry_matches(*pp, tenant_id, bucket_id, kek_id, wrapped,
				  wrapped_len))
			key = kura_secret_dup((*pp)->key);
		else
			remove_at(kc, pp);
	}
	uint64_t gen = kc->evict_gen;
	pthread_mutex_unlock(&kc->lock);
	if (key != NULL) {
		*out = key;
		return KURA_OK;
	}

	uint8_t aad[KURA_BUCKET_KEY_AAD_LEN];
	kura_bucket_key_aad(tenant_id, bucket_id, aad);
	uint64_t born = kura_mono_ns();
	enum kura_err rc = kura_keys_unwrap(kc->keys, kek_id, wrapped,
					    wrapped_len, aad, sizeof(aad), &key,
					    err);
	if (rc != KURA_OK)
		return rc;
	if (key == NULL || key->len != BUCKET_KEY_LEN) {
		kura_secret_free(key);
		return kura_fail(err, KURA_EINTEGRITY,
				 "bucket key of bucket %llu has a bad length",
				 (unsigned long long)bucket_id);
	}
	if (kc->ttl_ns == 0) {
		*out = key;
		return KURA_OK;
	}

	/* Failing to cache is not an error: the caller has its key. */
	struct entry *e = entry_new(cache_id, tenant_id, bucket_id, kek_id,
				    wrapped, wrapped_len, key, born);
	pthread_mutex_lock(&kc->lock);
	if (e != NULL && gen == kc->evict_gen) {
		pp = find(kc, cache_id);
		if (*pp != NULL)
			remove_at(kc, pp);
		if (kc->count >= MAX_ENTRIES)
			drop_oldest_locked(kc);
		pp = &kc->slots[slot_of(cache_id)];
		e->next = *pp;
		*pp = e;
		kc->count++;
		e = NULL;
		pthread_cond_signal(&kc->wake);
	}
	pthread_mutex_unlock(&kc->lock);
	entry_free(e);
	*out = key;
	return KURA_OK;
}

void kura_keycache_evict(struct kura_keycache *kc, uint64_t cache_id)
{
	if (kc == NULL)
		return;
	pthread_mutex_lock(&kc->lock);
	kc->evict_gen++;
	struct entry **pp = find(kc, cache_id);
	if (*pp != NULL)
		remove_at(kc, pp);
	pthread_mutex_unlock(&kc->lock);
}

void kura_keycache_clear(struct kura_keycache *kc)
{
	if (kc == NULL)
		return;
	pthread_mutex_lock(&kc->lock);
	kc->evict_gen++;
	for (size_t i = 0; i < NSLOTS; i++)
		while (kc->slots[i] != NULL)
			remove_at(kc, &kc->slots[i]);
	pthread_mutex_unlock(&kc->lock);
}

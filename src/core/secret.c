/*
 * secret.c — locked, non-dumpable storage for key material.
 *
 * Secrets come from a slab arena: chunks of CHUNK_SIZE bytes obtained with
 * mmap, mlock()ed so they never reach swap and marked MADV_DONTDUMP so they
 * never reach a core file.  Each chunk serves one size class; freed slots are
 * wiped and go back to their class's free list.  Chunks are never returned to
 * the OS (the arena only grows to the peak number of live secrets).
 *
 * Thread-safe: one mutex guards the free lists.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kura/secret.h"
#include "kura/banned.h"

#define CHUNK_SIZE (64 * 1024)
#define NCLASSES 6

/* Slot = header + data; class sizes are data capacities. */
static const size_t class_size[NCLASSES] = { 32, 64, 128, 256, 512, 1024 };

struct slot {
	struct kura_secret s;	/* s.data points just after the header */
	struct slot *next_free;
	size_t cls;
	alignas(16) uint8_t data[];
};

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *free_list[NCLASSES];

static int class_for(size_t len)
{
	for (int i = 0; i < NCLASSES; i++)
		if (len <= class_size[i])
			return i;
	return -1;
}

static size_t slot_bytes(int cls)
{
	size_t n = sizeof(struct slot) + class_size[cls];
	return (n + 15) & ~(size_t)15;
}

/* Map, lock and carve a new chunk for class cls.  Called with the lock. */
static bool grow(int cls)
{
	void *mem = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	if (mlock(mem, CHUNK_SIZE) != 0) {
		munmap(mem, CHUNK_SIZE);
		return false;
	}
	(void)madvise(mem, CHUNK_SIZE, MADV_DONTDUMP);
	size_t step = slot_bytes(cls);
	for (size_t off = 0; off + step <= CHUNK_SIZE; off += step) {
		struct slot *sl = (struct slot *)((uint8_t *)mem + off);
		sl->cls = (size_t)cls;
		sl->next_free = free_list[cls];
		free_list[cls] = sl;
	}
	return true;
}

struct kura_secret *kura_secret_new(size_t len)
{
	int cls = class_for(len);
	if (len == 0 || cls < 0)
		return NULL;
	pthread_mutex_lock(&arena_lock);
	if (free_list[cls] == NULL && !grow(cls)) {
		pthread_mutex_unlock(&arena_lock);
		return NULL;
	}
	struct slot *sl = free_list[cls];
	free_list[cls] = sl->next_free;
	pthread_mutex_unlock(&arena_lock);
	sl->next_free = NULL;
	sl->s.len = len;
	sl->s.data = sl->data;
	memset(sl->data, 0, class_size[cls]);
	return &sl->s;
}

struct kura_secret *kura_secret_from(const void *p, size_t len)
{
	struct kura_secret *s = kura_secret_new(len);
	if (s)
		memcpy(s->data, p, len);
	return s;
}

struct kura_secret *kura_secret_dup(const struct kura_secret *s)
{
	return s ? kura_secret_from(s->data, s->len) : NULL;
}

enum kura_err kura_secret_random(size_t len, struct kura_secret **out,
				 struct kura_error *err)
{
	if (len == 0 || len > KURA_SECRET_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "a secret must be 1 to %d bytes, not %zu",
				 KURA_SECRET_MAX, len);
	struct kura_secret *s = kura_secret_new(len);
	if (s == NULL)
		return kura_fail(err, KURA_ENOMEM,
				 "cannot allocate locked memory for a %zu-byte secret",
				 len);
	if (RAND_priv_bytes(s->data, (int)len) != 1) {
		kura_secret_free(s);
		return kura_fail_openssl(err, KURA_ECRYPTO, "random key");
	}
	*out = s;
	return KURA_OK;
}

void kura_secret_free(struct kura_secret *s)
{
	if (s == NULL)
		return;
	struct slot *sl = (struct slot *)((uint8_t *)s - offsetof(struct slot, s));
	OPENSSL_cleanse(sl->data, class_size[sl->cls]);
	sl->s.len = 0;
	pthread_mutex_lock(&arena_lock);
	sl->next_free = free_list[sl->cls];
	free_list[sl->cls] = sl;
	pthread_mutex_unlock(&arena_lock);
}

void kura_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

enum kura_err kura_secret_harden_process(struct kura_error *err)
{
	struct rlimit none = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &none) != 0)
		return kura_fail_errno(err, KURA_EPERM, errno, "setrlimit(RLIMIT_CORE)");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return kura_fail_errno(err, KURA_EPERM, errno, "prctl(PR_SET_DUMPABLE)");
	return KURA_OK;
}

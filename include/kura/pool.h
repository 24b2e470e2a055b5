/*
 * pool.h — per-request memory arena with cleanup hooks (after nginx's
 * ngx_pool_t).
 *
 * Everything a request allocates comes from its pool and is released in one
 * go when the request ends; nothing allocated from a pool may outlive it.
 * Cleanup hooks run in reverse order of registration before the memory is
 * freed, so a hook may still read pool memory.  Pools are not for key
 * material and are not thread-safe: one pool belongs to one thread at a time.
 */
#ifndef KURA_POOL_H
#define KURA_POOL_H

#include <stddef.h>

struct kura_pool;

/* New pool; block_size is the allocation granularity (0: 4 KiB).  NULL when
 * out of memory. */
struct kura_pool *kura_pool_new(size_t block_size);

/* Run the cleanup hooks, then free all memory.  NULL is a no-op. */
void kura_pool_free(struct kura_pool *pool);

/* Aligned (max_align_t) zeroed allocation; NULL when out of memory or n == 0
 * overflows.  Large requests get their own block. */
void *kura_palloc(struct kura_pool *pool, size_t n);

/* Copy n bytes and append a NUL. */
char *kura_pstrndup(struct kura_pool *pool, const char *s, size_t n);
char *kura_pstrdup(struct kura_pool *pool, const char *s);
void *kura_pmemdup(struct kura_pool *pool, const void *p, size_t n);
char *kura_psprintf(struct kura_pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Register fn(arg) to run when the pool is freed.  Returns 0, or -1 when out
 * of memory (in which case fn is NOT registered and the caller must clean up
 * itself). */
int kura_pool_cleanup_add(struct kura_pool *pool, void (*fn)(void *arg),
			  void *arg);

#endif

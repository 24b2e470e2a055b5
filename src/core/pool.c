/*
 * pool.c — per-request arena: a chain of blocks, bump allocation, cleanup
 * hooks run in reverse order at kura_pool_free.  Not thread-safe.
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/pool.h"
#include "kura/banned.h"

#define ALIGN_UP(n, a) (((n) + ((a)-1)) & ~((size_t)(a)-1))

struct block {
	struct block *next;
	size_t used;
	size_t size;
	alignas(max_align_t) unsigned char data[];
};

struct cleanup {
	struct cleanup *next;
	void (*fn)(void *);
	void *arg;
};

struct kura_pool {
	struct block *current; /* block being filled */
	struct block *full;    /* other blocks */
	struct cleanup *cleanups;
	size_t block_size;
};

static struct block *block_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct block))
		return NULL;
	struct block *b = malloc(sizeof(*b) + size);
	if (b == NULL)
		return NULL;
	b->next = NULL;
	b->used = 0;
	b->size = size;
	return b;
}

struct kura_pool *kura_pool_new(size_t block_size)
{
	struct kura_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->block_size = block_size ? block_size : 4096;
	p->current = block_new(p->block_size);
	if (p->current == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

static void free_chain(struct block *b)
{
	while (b) {
		struct block *next = b->next;
		free(b);
		b = next;
	}
}

void kura_pool_free(struct kura_pool *pool)
{
	if (pool == NULL)
		return;
	struct cleanup *c = pool->cleanups;
	while (c) {
		struct cleanup *next = c->next;
		c->fn(c->arg);
		free(c);
		c = next;
	}
	free_chain(pool->current);
	free_chain(pool->full);
	free(pool);
}

/* An aligned allocation, not zeroed. */
static void *pool_take(struct kura_pool *pool, size_t n)
{
	if (n == 0 || n > SIZE_MAX - alignof(max_align_t))
		return NULL;
	size_t need = ALIGN_UP(n, alignof(max_align_t));
	struct block *b = pool->current;
	if (b->size - b->used < need) {
		/* Large requests get a block of their own so they do not waste
		 * the rest of the current block. */
		size_t size = need > pool->block_size / 4 ? need :
							    pool->block_size;
		struct block *nb = block_new(size);
		if (nb == NULL)
			return NULL;
		if (size == pool->block_size) {
			b->next = pool->full;
			pool->full = b;
			pool->current = nb;
		} else {
			nb->next = pool->full;
			pool->full = nb;
		}
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += need;
	return p;
}

void *kura_palloc(struct kura_pool *pool, size_t n)
{
	void *p = pool_take(pool, n);
	if (p)
		memset(p, 0, n);
	return p;
}

char *kura_pstrndup(struct kura_pool *pool, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *p = pool_take(pool, n + 1); /* every byte written below */
	if (p == NULL)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *kura_pstrdup(struct kura_pool *pool, const char *s)
{
	return kura_pstrndup(pool, s, strlen(s));
}

void *kura_pmemdup(struct kura_pool *pool, const void *src, size_t n)
{
	void *p = pool_take(pool, n); /* every byte copied below */
	if (p)
		memcpy(p, src, n);
	return p;
}

char *kura_psprintf(struct kura_pool *pool, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = kura_palloc(pool, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

int kura_pool_cleanup_add(struct kura_pool *pool, void (*fn)(void *arg),
			  void *arg)
{
	struct cleanup *c = malloc(sizeof(*c));
	if (c == NULL)
		return -1;
	c->fn = fn;
	c->arg = arg;
	c->next = pool->cleanups;
	pool->cleanups = c;
	return 0;
}

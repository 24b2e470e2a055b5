/*
 * buf.c — string views and bounded growable buffers with a sticky error.
 * Invariant: a failed buffer holds no storage (data NULL, len and cap 0), so
 * every append reaches grow(), which returns the recorded failure.
 * Not thread-safe; a buffer belongs to one thread at a time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kura/buf.h"
#include "kura/banned.h"

struct kura_str kura_str_from(const char *cstr)
{
	struct kura_str s = { cstr, cstr ? strlen(cstr) : 0 };
	return s;
}

bool kura_str_eq(struct kura_str a, struct kura_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool kura_str_eq_cstr(struct kura_str a, const char *cstr)
{
	return kura_str_eq(a, kura_str_from(cstr));
}

bool kura_str_caseeq_cstr(struct kura_str a, const char *cstr)
{
	size_t n = strlen(cstr);
	return a.len == n && (n == 0 || strncasecmp(a.p, cstr, n) == 0);
}

bool kura_str_has_prefix(struct kura_str s, const char *prefix)
{
	size_t n = strlen(prefix);
	return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

void kura_buf_init(struct kura_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = KURA_OK;
}

void kura_buf_release(struct kura_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = KURA_OK;
}

void kura_buf_reset(struct kura_buf *b)
{
	b->len = 0;
	b->err = KURA_OK;
	if (b->data)
		b->data[0] = '\0';
}

void kura_buf_truncate(struct kura_buf *b, size_t len)
{
	if (b->err == KURA_OK && len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

/* Record the first failure and drop the content, so that nothing built
 * before it can be mistaken for the whole. */
static enum kura_err fail(struct kura_buf *b, enum kura_err rc)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->err = rc;
	return rc;
}

void kura_buf_fail(struct kura_buf *b, enum kura_err code)
{
	if (b->err == KURA_OK && code != KURA_OK)
		fail(b, code);
}

/* Make room for n more bytes plus the NUL. */
static enum kura_err grow(struct kura_buf *b, size_t n)
{
	if (b->err != KURA_OK)
		return b->err;
	if (n > b->max - b->len)
		return fail(b, KURA_ETOOBIG);
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return KURA_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* Written as cap - 1 > max so that max == SIZE_MAX cannot wrap. */
	if (cap - 1 > b->max)
		cap = b->max + 1;
	char *p = realloc(b->data, cap);
	if (p == NULL)
		return fail(b, KURA_ENOMEM);
	b->data = p;
	b->cap = cap;
	return KURA_OK;
}

enum kura_err kura_buf_add(struct kura_buf *b, const void *p, size_t n)
{
	enum kura_err rc = grow(b, n);
	if (rc != KURA_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return KURA_OK;
}

enum kura_err kura_buf_addstr(struct kura_buf *b, const char *s)
{
	return kura_buf_add(b, s, strlen(s));
}

enum kura_err kura_buf_addch(struct kura_buf *b, char c)
{
	/* Byte-at-a-time encoders call this for every byte: skip grow() while
	 * the byte and the terminator fit (never on a failed buffer, whose
	 * cap is 0). */
	if (b->len + 2 <= b->cap && b->len < b->max) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return KURA_OK;
	}
	return kura_buf_add(b, &c, 1);
}

enum kura_err kura_buf_addf(struct kura_buf *b, const char *fmt, ...)
{
	if (b->err != KURA_OK)
		return b->err;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fail(b, KURA_EINVAL);
	enum kura_err rc = grow(b, (size_t)n);
	if (rc != KURA_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return KURA_OK;
}

enum kura_err kura_buf_addhex(struct kura_buf *b, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	if (b->err != KURA_OK)
		return b->err;
	if (n > SIZE_MAX / 2)
		return fail(b, KURA_ETOOBIG);
	enum kura_err rc = grow(b, 2 * n);
	if (rc != KURA_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		b->data[b->len++] = digits[p[i] >> 4];
		b->data[b->len++] = digits[p[i] & 15];
	}
	b->data[b->len] = '\0';
	return KURA_OK;
}

char *kura_buf_detach(struct kura_buf *b, size_t *len)
{
	if (b->err != KURA_OK)
		return NULL;
	char *p = b->data;
	if (p == NULL) {
		p = calloc(1, 1);
		if (p == NULL)
			return NULL;
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

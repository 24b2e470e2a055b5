/*
 * buf.h — byte strings: read-only views and bounded growable buffers.
 *
 * A struct kura_buf always carries a maximum size fixed at init, so network
 * input can never grow one without bound (the idea of curl's dynbuf).  The
 * content is kept NUL-terminated for convenience; len excludes the NUL.
 * Buffers are not for key material: use struct kura_secret.
 */
#ifndef KURA_BUF_H
#define KURA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"

/* A borrowed (pointer, length) view; never owns its bytes. */
struct kura_str {
	const char *p;
	size_t len;
};

#define KURA_STR_LIT(s) ((struct kura_str){ (s), sizeof(s) - 1 })

struct kura_str kura_str_from(const char *cstr);
bool kura_str_eq(struct kura_str a, struct kura_str b);
bool kura_str_eq_cstr(struct kura_str a, const char *cstr);
bool kura_str_caseeq_cstr(struct kura_str a, const char *cstr);
bool kura_str_has_prefix(struct kura_str s, const char *prefix);

/* Receives a stream's bytes in order; returns non-OK to stop the stream. */
typedef enum kura_err (*kura_sink_fn)(void *ctx, const void *p, size_t n,
				      struct kura_error *err);

struct kura_buf {
	char *data;	/* NUL-terminated when non-NULL */
	size_t len;	/* bytes used, excluding the NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* len may never exceed this */
};

/* Prepare an empty buffer whose length may never exceed max. */
void kura_buf_init(struct kura_buf *b, size_t max);

/* Free the storage; the buffer may be reused after kura_buf_init. */
void kura_buf_release(struct kura_buf *b);

/* Forget the content but keep the storage. */
void kura_buf_reset(struct kura_buf *b);

/* Append bytes.  KURA_ETOOBIG when max would be exceeded (the buffer is then
 * unchanged), KURA_ENOMEM when allocation fails. */
enum kura_err kura_buf_add(struct kura_buf *b, const void *p, size_t n);
enum kura_err kura_buf_addstr(struct kura_buf *b, const char *s);
enum kura_err kura_buf_addch(struct kura_buf *b, char c);
enum kura_err kura_buf_addf(struct kura_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append the lowercase hex of n bytes. */
enum kura_err kura_buf_addhex(struct kura_buf *b, const uint8_t *p, size_t n);

/* Take ownership of the content (caller frees); the buffer becomes empty.
 * Returns an allocated "" for an empty buffer, NULL on allocation failure. */
char *kura_buf_detach(struct kura_buf *b, size_t *len);

#endif

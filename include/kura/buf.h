/*
 * buf.h — byte strings: read-only views and bounded growable buffers.
 *
 * A struct kura_buf always carries a maximum size fixed at init, so network
 * input can never grow one without bound (the idea of curl's dynbuf), and
 * its first failure sticks (below).  The content is kept NUL-terminated for
 * convenience; len excludes the NUL.
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

/*
 * A bounded growable buffer with a sticky error, after curl's dynbuf and
 * SQLite's sqlite3_str.  The first failed append — KURA_ETOOBIG when max
 * would be exceeded, KURA_ENOMEM, KURA_EINVAL from a bad format — is
 * recorded in err and frees the storage (data NULL, len 0), so no document
 * with a hole can be read out of it; every later append is a no-op that
 * returns the same code, until kura_buf_reset starts over.  A builder may
 * therefore append a whole document and look at kura_buf_error once at the
 * end; each append still returns the code (KURA_WUR) for callers that stop
 * at the first failure.
 */
struct kura_buf {
	char *data;	   /* NUL-terminated when non-NULL */
	size_t len;	   /* bytes used, excluding the NUL */
	size_t cap;	   /* bytes allocated */
	size_t max;	   /* len may never exceed this */
	enum kura_err err; /* the first failure, KURA_OK when none */
};

/* Prepare an empty buffer whose length may never exceed max. */
void kura_buf_init(struct kura_buf *b, size_t max);

/* Free the storage and forget a failure; the buffer may be reused after
 * kura_buf_init. */
void kura_buf_release(struct kura_buf *b);

/* Forget the content and a failure but keep the storage (there is none
 * after a failure): the buffer starts over. */
void kura_buf_reset(struct kura_buf *b);

/* Keep only the first len bytes (len <= b->len), e.g. to undo a partial
 * append that failed for a reason of the caller's; no-op on a failed
 * buffer. */
void kura_buf_truncate(struct kura_buf *b, size_t len);

/* Record a failure met while building part of the content elsewhere (in
 * another buffer), as if an append had failed: the content is dropped and
 * every later append returns code (the first failure wins; code KURA_OK
 * changes nothing). */
void kura_buf_fail(struct kura_buf *b, enum kura_err code);

/* The first failure of an append since init or reset, KURA_OK when none. */
static inline enum kura_err kura_buf_error(const struct kura_buf *b)
{
	return b->err;
}

/* Bytes that may still be appended before max is reached (0 when the
 * buffer failed). */
static inline size_t kura_buf_room(const struct kura_buf *b)
{
	return b->err == KURA_OK ? b->max - b->len : 0;
}

/* Append bytes.  KURA_ETOOBIG when max would be exceeded, KURA_ENOMEM when
 * allocation fails, or the buffer's earlier failure; see above. */
KURA_WUR
enum kura_err kura_buf_add(struct kura_buf *b, const void *p, size_t n);
KURA_WUR
enum kura_err kura_buf_addstr(struct kura_buf *b, const char *s);
KURA_WUR
enum kura_err kura_buf_addch(struct kura_buf *b, char c);
KURA_WUR
enum kura_err kura_buf_addf(struct kura_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append the lowercase hex of n bytes. */
KURA_WUR
enum kura_err kura_buf_addhex(struct kura_buf *b, const uint8_t *p, size_t n);

/* Take ownership of the content (caller frees); the buffer becomes empty.
 * Returns an allocated "" for an empty buffer, NULL for a failed buffer
 * (which stays failed) or on allocation failure. */
KURA_WUR
char *kura_buf_detach(struct kura_buf *b, size_t *len);

#endif

/*
 * encode.h — hex, base64 and URI percent-encoding, plus random identifiers.
 *
 * Decoders take (pointer, length) input and never read past it; they fail
 * with KURA_EINVAL on malformed input and write outputs only on success.
 * Functions that append to a struct kura_buf also fail as it does, and
 * that failure sticks in it (buf.h).
 */
#ifndef KURA_ENCODE_H
#define KURA_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/buf.h"
#include "kura/err.h"

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void kura_hex_encode(const uint8_t *in, size_t n, char *out);

/* Decode exactly 2*n hex digits (either case) into out[n]. */
KURA_WUR
enum kura_err kura_hex_decode(const char *in, size_t in_len, uint8_t *out,
			      size_t n);

/* Standard base64 (RFC 4648 §4, with padding). */
KURA_WUR
enum kura_err kura_base64_encode(const uint8_t *in, size_t n,
				 struct kura_buf *out);
/* Strict decode: padding required, no whitespace.  *out_len receives the
 * decoded length; out must hold at least (in_len / 4) * 3 bytes. */
KURA_WUR
enum kura_err kura_base64_decode(const char *in, size_t in_len, uint8_t *out,
				 size_t out_cap, size_t *out_len);

/*
 * Percent-decode in[0..n) into out.  '+' is kept as '+' (S3 paths and
 * SigV4 queries treat it literally).  Fails on a truncated or non-hex escape.
 * The result may contain any byte including NUL; callers check.
 */
KURA_WUR
enum kura_err kura_uri_decode(const char *in, size_t n, struct kura_buf *out);

/*
 * Percent-encode as SigV4 requires: every byte except A-Z a-z 0-9 - _ . ~ is
 * written as %XY (uppercase hex); '/' is kept when keep_slash is true.
 */
KURA_WUR
enum kura_err kura_uri_encode(const char *in, size_t n, bool keep_slash,
			      struct kura_buf *out);

/* n bytes from the OS CSPRNG (OpenSSL RAND_bytes). */
KURA_WUR
enum kura_err kura_random_bytes(uint8_t *out, size_t n, struct kura_error *err);

/* Constant-time comparison of two equal-length byte strings. */
bool kura_ct_equal(const void *a, const void *b, size_t n);

/* Is s[0..n) well-formed UTF-8 (no overlongs, no surrogates)? */
bool kura_utf8_valid(const char *s, size_t n);

#endif

/*
 * hmac.h — HMAC-SHA256, the one keyed hash kura computes itself: SigV4
 * signing keys and signatures (several per request, one per aws-chunked
 * chunk) and the SSE-C key derivations.
 */
#ifndef KURA_HMAC_H
#define KURA_HMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KURA_HMAC_SHA256_LEN 32

/* out = HMAC-SHA256(key, msg); false on a crypto failure (out is then
 * undefined).  Thread-safe. */
bool kura_hmac_sha256(const void *key, size_t key_len, const void *msg,
		      size_t n, uint8_t out[KURA_HMAC_SHA256_LEN]);

#endif

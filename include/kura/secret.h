/*
 * secret.h — the only type that holds key material.
 *
 * Secrets live in a dedicated arena that is mlock()ed (never swapped) and
 * excluded from core dumps (MADV_DONTDUMP); they are wiped when freed.  Never
 * copy secret bytes into ordinary memory, pools, buffers or logs; pass
 * struct kura_secret pointers.  OpenSSL contexts that receive a key copy it
 * into their own state; free those contexts promptly (EVP_CIPHER_CTX_free
 * cleanses).
 *
 * Thread-safe.
 */
#ifndef KURA_SECRET_H
#define KURA_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"

#define KURA_SECRET_MAX 1024	/* largest secret the arena holds */

struct kura_secret {
	size_t len;
	uint8_t *data;		/* len bytes in locked memory */
};

/* A zero-filled secret of len bytes (1..KURA_SECRET_MAX); NULL when the
 * arena cannot grow or lock more memory. */
struct kura_secret *kura_secret_new(size_t len);

/* A secret holding a copy of p[0..len); wipe p yourself if it was secret. */
struct kura_secret *kura_secret_from(const void *p, size_t len);

/* A copy of s, or NULL. */
struct kura_secret *kura_secret_dup(const struct kura_secret *s);

/* len random bytes from the OS CSPRNG (via OpenSSL RAND_priv_bytes). */
enum kura_err kura_secret_random(size_t len, struct kura_secret **out,
				 struct kura_error *err);

/* Wipe and free.  NULL is a no-op. */
void kura_secret_free(struct kura_secret *s);

/* Wipe an ordinary buffer in a way the compiler cannot elide. */
void kura_wipe(void *p, size_t n);

/*
 * Process hardening for a program that holds secrets: disable core dumps
 * (RLIMIT_CORE 0, PR_SET_DUMPABLE 0).  Call once at start-up of the server
 * and of CLI commands that touch keys.
 */
enum kura_err kura_secret_harden_process(struct kura_error *err);

#endif

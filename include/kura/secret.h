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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"

#define KURA_SECRET_MAX 1024 /* largest secret the arena holds */

struct kura_secret {
	size_t len;
	uint8_t *data; /* len bytes in locked memory */
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

/* The content of a secret file: a regular file owned by the current user
 * with no access for group or others (else KURA_EPERM, naming it by what,
 * e.g. "[backend.dr] secret_key_file"), holding 1..max bytes (else
 * KURA_ECONFIG), one trailing newline (or CRLF) dropped (secretfile.c). */
enum kura_err kura_secret_from_file(const char *path, const char *what,
				    size_t max, struct kura_secret **out,
				    struct kura_error *err);

/* Wipe an ordinary buffer in a way the compiler cannot elide. */
void kura_wipe(void *p, size_t n);

/*
 * Credentials from the environment (envsecret.c).  kura reads
 * KURA_ROOT_ACCESS_KEY, KURA_ROOT_SECRET_KEY and KURA_PKCS11_PIN; capture
 * moves each one present into a secret and wipes it from the process: the
 * variable leaves environ (children never see it) and its value's bytes
 * are overwritten where they lie, which is what /proc/PID/environ shows.
 * Call capture first thing in main, before any thread starts (environ is
 * not thread-safe); read with kura_env_secret.  No other code reads these
 * variables (scripts/check-source.sh allows getenv only in envsecret.c).
 */

/* Capture every variable of the table that is set (an empty one is
 * removed and wiped but counts as unset).  Capturing again replaces the
 * variables set again.  KURA_ETOOBIG (the variable is wiped all the same)
 * for a value longer than KURA_SECRET_MAX, KURA_ENOMEM when the arena is
 * full. */
enum kura_err kura_env_capture(struct kura_error *err);

/* The captured value of name (value bytes, no NUL), or NULL when it was
 * not set or name is not in the table.  Owned by the capture; valid until
 * kura_env_release. */
const struct kura_secret *kura_env_secret(const char *name);

/* Copy a captured value into out as a C string (for the APIs that take
 * one; wipe out after use).  false when it is not set or does not fit. */
bool kura_env_secret_str(const char *name, char *out, size_t cap);

/* Free every captured value (wiped).  Safe to call when none is. */
void kura_env_release(void);

/*
 * Process hardening for a program that holds secrets: disable core dumps
 * (RLIMIT_CORE 0, PR_SET_DUMPABLE 0).  Call once at start-up of the server
 * and of CLI commands that touch keys.
 */
enum kura_err kura_secret_harden_process(struct kura_error *err);

#endif

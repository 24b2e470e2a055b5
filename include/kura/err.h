/*
 * err.h — the one error enum of kura, and the error-message carrier.
 *
 * Every function that can fail returns an enum kura_err and takes a
 * struct kura_error *err as its last argument.  The first failure recorded in
 * an error carrier wins: later kura_fail() calls keep the original message, so
 * the message describes the root cause, not the last layer it crossed.
 *
 * Foreign error codes (errno, OpenSSL, SQLite, CURLcode, CK_RV ...) are
 * translated at the call site and never cross a layer.
 *
 * The numbers are part of the ABI of logs and tests: entries are only ever
 * appended to KURA_ERROR_TABLE, never reordered or removed.
 */
#ifndef KURA_ERR_H
#define KURA_ERR_H

#include <stddef.h>

#define KURA_ERROR_TABLE(X)                              \
	X(KURA_OK, "success")                            \
	X(KURA_EINVAL, "invalid argument")               \
	X(KURA_ENOMEM, "out of memory")                  \
	X(KURA_EIO, "input/output error")                \
	X(KURA_ENOENT, "not found")                      \
	X(KURA_EEXIST, "already exists")                 \
	X(KURA_ECRYPTO, "cryptographic library failure") \
	X(KURA_EINTEGRITY, "data failed authentication") \
	X(KURA_ETOOBIG, "too large")                     \
	X(KURA_ENOSPC, "no space left on device")        \
	X(KURA_EPERM, "permission denied")               \
	X(KURA_EBUSY, "resource busy")                   \
	X(KURA_ECONFIG, "configuration error")           \
	X(KURA_EKEY, "key unavailable")                  \
	X(KURA_EPROTO, "protocol error")                 \
	X(KURA_ESTATE, "invalid state")                  \
	X(KURA_ENOTEMPTY, "not empty")                   \
	X(KURA_EAUTH, "authentication failed")           \
	X(KURA_EINTERNAL, "internal error")              \
	X(KURA_EKEY_DISABLED, "key disabled")            \
	X(KURA_EKEY_DESTROYED, "key destroyed")          \
	X(KURA_ECONFLICT, "changed concurrently")

enum kura_err {
#define KURA_ERR_ENUM_(name, msg) name,
	KURA_ERROR_TABLE(KURA_ERR_ENUM_)
#undef KURA_ERR_ENUM_
	KURA_ERR_COUNT_
};

/* On a function whose result must be looked at: its error, or memory the
 * caller must take.  A result dropped on purpose goes through KURA_IGNORE,
 * with a comment saying why (GCC does not accept a (void) cast for it). */
#define KURA_WUR __attribute__((warn_unused_result))
#define KURA_IGNORE(expr) ((void)!(expr))

#define KURA_ERROR_MSG_MAX 256

/* Carrier for a one-line human message.  Zero-initialise before use
 * (struct kura_error err = {0};). */
struct kura_error {
	enum kura_err code;
	char msg[KURA_ERROR_MSG_MAX];
};

/* Static description of an error code; never NULL. */
const char *kura_strerror(enum kura_err code);

/* Symbolic name of an error code ("KURA_EIO"); never NULL. */
const char *kura_errname(enum kura_err code);

/*
 * Record a failure and return code, so call sites read
 *     return kura_fail(err, KURA_EIO, "open '%s'", path);
 * err may be NULL.  When err already holds a failure it is left unchanged
 * (first error wins).  The message is truncated to fit.
 */
enum kura_err kura_fail(struct kura_error *err, enum kura_err code,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like kura_fail, appending ": strerror(errnum)". */
enum kura_err kura_fail_errno(struct kura_error *err, enum kura_err code,
			      int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Like kura_fail, appending the first queued OpenSSL error and clearing the
 * OpenSSL error queue of this thread. */
enum kura_err kura_fail_openssl(struct kura_error *err, enum kura_err code,
				const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Map an errno value to the closest kura code (ENOSPC -> KURA_ENOSPC ...). */
enum kura_err kura_err_from_errno(int errnum);

/* Forget a recorded failure so the carrier can be reused. */
void kura_error_clear(struct kura_error *err);

#endif

/*
 * err.c — error names, messages and the first-error-wins carrier.
 * Thread-safe: no shared state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "kura/err.h"
#include "kura/banned.h"

static const char *const messages[] = {
#define KURA_ERR_MSG_(name, msg) msg,
	KURA_ERROR_TABLE(KURA_ERR_MSG_)
#undef KURA_ERR_MSG_
};

static const char *const names[] = {
#define KURA_ERR_NAME_(name, msg) #name,
	KURA_ERROR_TABLE(KURA_ERR_NAME_)
#undef KURA_ERR_NAME_
};

const char *kura_strerror(enum kura_err code)
{
	if ((unsigned)code >= KURA_ERR_COUNT_)
		return "unknown error";
	return messages[code];
}

const char *kura_errname(enum kura_err code)
{
	if ((unsigned)code >= KURA_ERR_COUNT_)
		return "KURA_E?";
	return names[code];
}

/* The format attribute lets clang's -Wformat-nonliteral accept fmt. */
__attribute__((format(printf, 4, 0)))
static void record(struct kura_error *err, enum kura_err code,
		   const char *suffix, const char *fmt, va_list ap)
{
	if (err == NULL || err->code != KURA_OK)
		return;
	err->code = code;
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (n < 0) {
		err->msg[0] = '\0';
		n = 0;
	}
	if (suffix != NULL && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s",
			 suffix);
}

enum kura_err kura_fail(struct kura_error *err, enum kura_err code,
			const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record(err, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

enum kura_err kura_fail_errno(struct kura_error *err, enum kura_err code,
			      int errnum, const char *fmt, ...)
{
	char buf[128];
	const char *s = strerror_r(errnum, buf, sizeof(buf));
	va_list ap;
	va_start(ap, fmt);
	record(err, code, s, fmt, ap);
	va_end(ap);
	return code;
}

enum kura_err kura_fail_openssl(struct kura_error *err, enum kura_err code,
				const char *fmt, ...)
{
	char buf[160];
	unsigned long e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "no OpenSSL error queued");
	ERR_clear_error();
	va_list ap;
	va_start(ap, fmt);
	record(err, code, buf, fmt, ap);
	va_end(ap);
	return code;
}

enum kura_err kura_err_from_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		return KURA_ENOENT;
	case EEXIST:
		return KURA_EEXIST;
	case ENOSPC:
	case EDQUOT:
		return KURA_ENOSPC;
	case ENOMEM:
		return KURA_ENOMEM;
	case EACCES:
	case EPERM:
	case EROFS:
		return KURA_EPERM;
	case EINVAL:
		return KURA_EINVAL;
	case ENOTEMPTY:
		return KURA_ENOTEMPTY;
	case EBUSY:
	case EAGAIN:
		return KURA_EBUSY;
	case EFBIG:
	case ENAMETOOLONG:
		return KURA_ETOOBIG;
	default:
		return KURA_EIO;
	}
}

void kura_error_clear(struct kura_error *err)
{
	if (err == NULL)
		return;
	err->code = KURA_OK;
	err->msg[0] = '\0';
}

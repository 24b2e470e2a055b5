/*
 * log.h — structured, leveled logging.
 *
 * One line per event: "2026-11-22T02:36:27.123Z LEVEL req=REQID message".
 * The level is checked before any argument is formatted, so disabled debug
 * lines cost one comparison.  Log a failure once, where it is handled.
 * Never pass secrets, plaintext or signatures to the logger.
 *
 * Values that come from clients go through kura_log_field, which quotes
 * and escapes them: a line then always splits into the fields it was
 * written with.  Control characters anywhere in a line are replaced, so a
 * value can never start a line of its own either.
 *
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef KURA_LOG_H
#define KURA_LOG_H

#include <stddef.h>

enum kura_log_level {
	KURA_LOG_DEBUG = 0,
	KURA_LOG_INFO = 1,
	KURA_LOG_WARN = 2,
	KURA_LOG_ERROR = 3,
};

extern enum kura_log_level kura_log_threshold;

/* Parse "debug" | "info" | "warn" | "error"; returns -1 when unknown. */
int kura_log_level_parse(const char *name);

/* Send log lines to fd (default 2).  The fd is not closed by the logger. */
void kura_log_set_fd(int fd);

/* Room for one field value rendered by kura_log_field, quotes included. */
#define KURA_LOG_FIELD_MAX 256

/*
 * Render s[0..n) as one field value of a log line, so that a value from the
 * network can never pass for other fields or lines: bare when it is a
 * non-empty run of letters, digits and -._~:/@+ other than "-"; otherwise in
 * double quotes with \" for a quote, \\ for a backslash and \xHH for every
 * byte below 0x20 or above 0x7e.  s NULL gives "-" (absent).  A value that
 * does not fit in cap bytes (at least 8) is cut, and its quoted form ends
 * in "..." before the closing quote.  Returns out.
 */
const char *kura_log_field(char *out, size_t cap, const char *s, size_t n);

/* Write one line; reqid may be NULL (shown as "-").  Use the macros. */
void kura_log_write(enum kura_log_level level, const char *reqid,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define KURA_LOG(level, reqid, ...)                                    \
	do {                                                           \
		if ((level) >= kura_log_threshold)                     \
			kura_log_write((level), (reqid), __VA_ARGS__); \
	} while (0)

#define kura_debug(reqid, ...) KURA_LOG(KURA_LOG_DEBUG, reqid, __VA_ARGS__)
#define kura_info(reqid, ...) KURA_LOG(KURA_LOG_INFO, reqid, __VA_ARGS__)
#define kura_warn(reqid, ...) KURA_LOG(KURA_LOG_WARN, reqid, __VA_ARGS__)
#define kura_error(reqid, ...) KURA_LOG(KURA_LOG_ERROR, reqid, __VA_ARGS__)

#endif

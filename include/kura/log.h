/*
 * log.h — structured, leveled logging.
 *
 * One line per event: "2026-11-22T02:36:27.123Z LEVEL req=REQID message".
 * The level is checked before any argument is formatted, so disabled debug
 * lines cost one comparison.  Log a failure once, where it is handled.
 * Never pass secrets, plaintext or signatures to the logger.
 *
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef KURA_LOG_H
#define KURA_LOG_H

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

/* Write one line; reqid may be NULL (shown as "-").  Use the macros. */
void kura_log_write(enum kura_log_level level, const char *reqid,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define KURA_LOG(level, reqid, ...)                                  \
	do {                                                         \
		if ((level) >= kura_log_threshold)                   \
			kura_log_write((level), (reqid), __VA_ARGS__); \
	} while (0)

#define kura_debug(reqid, ...) KURA_LOG(KURA_LOG_DEBUG, reqid, __VA_ARGS__)
#define kura_info(reqid, ...) KURA_LOG(KURA_LOG_INFO, reqid, __VA_ARGS__)
#define kura_warn(reqid, ...) KURA_LOG(KURA_LOG_WARN, reqid, __VA_ARGS__)
#define kura_error(reqid, ...) KURA_LOG(KURA_LOG_ERROR, reqid, __VA_ARGS__)

#endif

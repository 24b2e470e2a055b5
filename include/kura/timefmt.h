/*
 * timefmt.h — clocks and the time formats of HTTP and S3.
 *
 * All formatting is UTC.  Parsers are strict about the formats S3 clients
 * send and return KURA_EINVAL on anything else.
 */
#ifndef KURA_TIMEFMT_H
#define KURA_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"

/* Wall clock in milliseconds since the Unix epoch. */
int64_t kura_now_ms(void);
/* Monotonic clock in nanoseconds (for latencies and TTLs). */
uint64_t kura_mono_ns(void);

#define KURA_TIME_ISO8601_LEN 25 /* "2026-11-22T02:36:27.123Z" + NUL */
#define KURA_TIME_HTTP_LEN 30	 /* "Sun, 22 Nov 2026 02:36:27 GMT" + NUL */
#define KURA_TIME_AMZ_LEN 17	 /* "20261122T023627Z" + NUL */

/* "2026-11-22T02:36:27.123Z" (S3 XML timestamps). */
void kura_time_iso8601(int64_t ms, char out[KURA_TIME_ISO8601_LEN]);
/* RFC 7231 IMF-fixdate, "Sun, 22 Nov 2026 02:36:27 GMT". */
void kura_time_http(int64_t ms, char out[KURA_TIME_HTTP_LEN]);
/* SigV4 basic format "20261122T023627Z". */
void kura_time_amz(int64_t ms, char out[KURA_TIME_AMZ_LEN]);

/* Parse "YYYYMMDDTHHMMSSZ" into seconds since the epoch. */
enum kura_err kura_time_parse_amz(const char *s, size_t n, int64_t *secs);
/* Parse an HTTP date: IMF-fixdate, and the obsolete RFC 850 and asctime
 * forms that RFC 7231 requires recipients to accept. */
enum kura_err kura_time_parse_http(const char *s, size_t n, int64_t *secs);
/* Parse ISO 8601 "YYYY-MM-DDTHH:MM:SS[.fff]Z". */
enum kura_err kura_time_parse_iso8601(const char *s, size_t n, int64_t *secs);

#endif

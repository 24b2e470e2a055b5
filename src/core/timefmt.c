/*
 * timefmt.c — clocks and UTC time formats.  Thread-safe (gmtime_r, timegm).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kura/timefmt.h"
#include "kura/banned.h"

int64_t kura_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t kura_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void to_tm(int64_t ms, struct tm *tm)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	gmtime_r(&t, tm);
}

/* Write v as exactly width decimal digits (v is reduced modulo 10^width;
 * calendar fields always fit).  Returns the position after them. */
static char *put_digits(char *p, int v, int width)
{
	unsigned u = (unsigned)(v < 0 ? -v : v);
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + u % 10);
		u /= 10;
	}
	return p + width;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

void kura_time_iso8601(int64_t ms, char out[KURA_TIME_ISO8601_LEN])
{
	struct tm tm;
	to_tm(ms, &tm);
	int frac = (int)(((ms % 1000) + 1000) % 1000);
	char *p = put_digits(out, tm.tm_year + 1900, 4);
	*p++ = '-';
	p = put_digits(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, frac, 3);
	*p++ = 'Z';
	*p = '\0';
}

static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void kura_time_http(int64_t ms, char out[KURA_TIME_HTTP_LEN])
{
	struct tm tm;
	to_tm(ms, &tm);
	char *p = put_str(out, wdays[tm.tm_wday % 7]);
	p = put_str(p, ", ");
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = ' ';
	p = put_str(p, months[tm.tm_mon % 12]);
	*p++ = ' ';
	p = put_digits(p, tm.tm_year + 1900, 4);
	*p++ = ' ';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	p = put_str(p, " GMT");
	*p = '\0';
}

void kura_time_amz(int64_t ms, char out[KURA_TIME_AMZ_LEN])
{
	struct tm tm;
	to_tm(ms, &tm);
	char *p = put_digits(out, tm.tm_year + 1900, 4);
	p = put_digits(p, tm.tm_mon + 1, 2);
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	p = put_digits(p, tm.tm_min, 2);
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = 'Z';
	*p = '\0';
}

/* n decimal digits at s into *v. */
static bool digits(const char *s, size_t n, int *v)
{
	int x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return true;
}

static int month_index(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (memcmp(s, months[i], 3) == 0)
			return i;
	return -1;
}

/* Build seconds from calendar fields, rejecting out-of-range fields (timegm
 * would silently normalise 31 February). */
static enum kura_err make_time(int year, int mon, int day, int hh, int mm,
			       int ss, int64_t *secs)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (year < 1970 || year > 9999 || mon < 0 || mon > 11 || day < 1 ||
	    day > mdays[mon] || hh > 23 || mm > 59 || ss > 60)
		return KURA_EINVAL;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (mon == 1 && day == 29 && !leap)
		return KURA_EINVAL;
	struct tm tm = { 0 };
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss > 59 ? 59 : ss;
	*secs = (int64_t)timegm(&tm);
	return KURA_OK;
}

enum kura_err kura_time_parse_amz(const char *s, size_t n, int64_t *secs)
{
	int y, mo, d, h, mi, se;
	if (n != 16 || s[8] != 'T' || s[15] != 'Z' || !digits(s, 4, &y) ||
	    !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) ||
	    !digits(s + 9, 2, &h) || !digits(s + 11, 2, &mi) ||
	    !digits(s + 13, 2, &se))
		return KURA_EINVAL;
	return make_time(y, mo - 1, d, h, mi, se, secs);
}

enum kura_err kura_time_parse_http(const char *s, size_t n, int64_t *secs)
{
	int y, d, h, mi, se, mo;
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (n == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' &&
	    s[11] == ' ' && s[16] == ' ' && s[19] == ':' && s[22] == ':' &&
	    memcmp(s + 25, " GMT", 4) == 0) {
		if (!digits(s + 5, 2, &d) || (mo = month_index(s + 8)) < 0 ||
		    !digits(s + 12, 4, &y) || !digits(s + 17, 2, &h) ||
		    !digits(s + 20, 2, &mi) || !digits(s + 23, 2, &se))
			return KURA_EINVAL;
		return make_time(y, mo, d, h, mi, se, secs);
	}
	/* asctime: "Sun Nov  6 08:49:37 1994" */
	if (n == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' &&
	    s[13] == ':' && s[16] == ':' && s[19] == ' ') {
		char dd[2] = { s[8] == ' ' ? '0' : s[8], s[9] };
		if ((mo = month_index(s + 4)) < 0 || !digits(dd, 2, &d) ||
		    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
		    !digits(s + 17, 2, &se) || !digits(s + 20, 4, &y))
			return KURA_EINVAL;
		return make_time(y, mo, d, h, mi, se, secs);
	}
	/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
	const char *comma = memchr(s, ',', n < 10 ? n : 10);
	if (comma != NULL) {
		size_t rest = n - (size_t)(comma - s);
		const char *p = comma;
		if (rest == 24 && p[1] == ' ' && p[4] == '-' && p[8] == '-' &&
		    p[11] == ' ' && p[14] == ':' && p[17] == ':' &&
		    memcmp(p + 20, " GMT", 4) == 0) {
			if (!digits(p + 2, 2, &d) || (mo = month_index(p + 5)) < 0 ||
			    !digits(p + 9, 2, &y) || !digits(p + 12, 2, &h) ||
			    !digits(p + 15, 2, &mi) || !digits(p + 18, 2, &se))
				return KURA_EINVAL;
			y += y < 70 ? 2000 : 1900;
			return make_time(y, mo, d, h, mi, se, secs);
		}
	}
	return KURA_EINVAL;
}

enum kura_err kura_time_parse_iso8601(const char *s, size_t n, int64_t *secs)
{
	int y, mo, d, h, mi, se;
	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[n - 1] != 'Z' ||
	    !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
	    !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return KURA_EINVAL;
	if (n > 20) {
		int frac;
		if (s[19] != '.' || n - 21 < 1 || n - 21 > 9 ||
		    !digits(s + 20, n - 21, &frac))
			return KURA_EINVAL;
	}
	return make_time(y, mo - 1, d, h, mi, se, secs);
}

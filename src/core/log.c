/*
 * log.c — one line per event, written with a single write(2) so lines from
 * concurrent threads never interleave.  Lines longer than the line buffer are
 * truncated, never split.  kura_log_field quotes values that come from
 * clients.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kura/log.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

enum kura_log_level kura_log_threshold = KURA_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

int kura_log_level_parse(const char *name)
{
	static const char *const lower[] = { "debug", "info", "warn", "error" };
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, lower[i]) == 0)
			return i;
	return -1;
}

void kura_log_set_fd(int fd)
{
	log_fd = fd;
}

static bool bare_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~' || c == ':' || c == '/' || c == '@' || c == '+';
}

static bool bare_value(const char *s, size_t n, size_t cap)
{
	if (n == 0 || n >= cap || (n == 1 && s[0] == '-'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!bare_char((unsigned char)s[i]))
			return false;
	return true;
}

const char *kura_log_field(char *out, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	if (s == NULL) {
		snprintf(out, cap, "-");
		return out;
	}
	if (bare_value(s, n, cap)) {
		memcpy(out, s, n);
		out[n] = '\0';
		return out;
	}
	/* Room for the closing quote, or for '..."' when the value is cut. */
	size_t o = 0, limit = cap - 5;
	out[o++] = '"';
	size_t i = 0;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[4];
		size_t el = 0;
		if (c == '"' || c == '\\') {
			e[el++] = '\\';
			e[el++] = (char)c;
		} else if (c < 0x20 || c > 0x7e) {
			e[el++] = '\\';
			e[el++] = 'x';
			e[el++] = hex[c >> 4];
			e[el++] = hex[c & 15];
		} else {
			e[el++] = (char)c;
		}
		if (o + el > limit)
			break;
		memcpy(out + o, e, el);
		o += el;
	}
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* Replace control characters so a hostile value cannot forge log lines. */
static void sanitise(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			s[i] = '?';
	}
}

void kura_log_write(enum kura_log_level level, const char *reqid,
		    const char *fmt, ...)
{
	char line[2048];
	char ts[KURA_TIME_ISO8601_LEN];
	kura_time_iso8601(kura_now_ms(), ts);
	if ((unsigned)level > KURA_LOG_ERROR)
		level = KURA_LOG_ERROR;
	int head = snprintf(line, sizeof(line), "%s %s req=%s ", ts,
			    level_names[level], reqid ? reqid : "-");
	if (head < 0 || (size_t)head >= sizeof(line))
		return;
	va_list ap;
	va_start(ap, fmt);
	int body = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt,
			     ap);
	va_end(ap);
	if (body < 0)
		body = 0;
	size_t len = (size_t)head + (size_t)body;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	sanitise(line + head, len - (size_t)head);
	line[len++] = '\n';
	ssize_t w = write(log_fd, line, len);
	(void)w;
}

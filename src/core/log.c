/*
 * log.c — one line per event, written with a single write(2) so lines from
 * concurrent threads never interleave.  Lines longer than the line buffer are
 * truncated, never split.
 */
#include <stdarg.h>
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

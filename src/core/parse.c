/*
 * parse.c — strict decimal and hexadecimal number parsing.  Thread-safe.
 */
#include <string.h>

#include "kura/parse.h"
#include "kura/banned.h"

enum kura_err kura_parse_u64(const char *s, size_t n, uint64_t max,
			     uint64_t *out)
{
	if (n == 0 || n > 20)
		return KURA_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return KURA_EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return KURA_ETOOBIG;
		v = v * 10 + d;
	}
	if (v > max)
		return KURA_ETOOBIG;
	*out = v;
	return KURA_OK;
}

enum kura_err kura_parse_hex_u64(const char *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 16)
		return KURA_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return KURA_EINVAL;
		v = v << 4 | d;
	}
	*out = v;
	return KURA_OK;
}

enum kura_err kura_parse_size(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	unsigned shift = 0;
	if (n > 0) {
		switch (s[n - 1]) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		case 'T': case 't': shift = 40; break;
		default: break;
		}
		if (shift)
			n--;
	}
	uint64_t v;
	enum kura_err rc = kura_parse_u64(s, n, UINT64_MAX >> shift, &v);
	if (rc != KURA_OK)
		return rc;
	*out = v << shift;
	return KURA_OK;
}

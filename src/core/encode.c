/*
 * encode.c — hex, base64, percent-encoding, UTF-8 validation, randomness.
 * Pure functions over (pointer, length) input; thread-safe.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kura/encode.h"
#include "kura/banned.h"

static const char hexdig[] = "0123456789abcdef";

void kura_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum kura_err kura_hex_decode(const char *in, size_t in_len, uint8_t *out,
			      size_t n)
{
	if (in_len != 2 * n)
		return KURA_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval((unsigned char)in[2 * i]);
		int lo = hexval((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return KURA_EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hexval((unsigned char)in[2 * i]) << 4 |
				   hexval((unsigned char)in[2 * i + 1]));
	return KURA_OK;
}

/* Undo a partial append so that refused input leaves out as it was (a
 * failure of out itself sticks in it: buf.h). */
static enum kura_err truncate_to(struct kura_buf *out, size_t len,
				 enum kura_err rc)
{
	kura_buf_truncate(out, len);
	return rc;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

enum kura_err kura_base64_encode(const uint8_t *in, size_t n,
				 struct kura_buf *out)
{
	size_t start = out->len;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		char q[4] = { b64[v >> 18 & 63], b64[v >> 12 & 63],
			      i + 1 < n ? b64[v >> 6 & 63] : '=',
			      i + 2 < n ? b64[v & 63] : '=' };
		enum kura_err rc = kura_buf_add(out, q, 4);
		if (rc != KURA_OK)
			return truncate_to(out, start, rc);
	}
	if (out->data == NULL)
		return kura_buf_add(out, "", 0);
	return KURA_OK;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode the quantum at q into *w; false when it is malformed or, for the
 * last quantum, non-canonical (stray bits under the padding), so that each
 * value has exactly one encoding. */
static bool b64_quantum(const char *q, bool last, size_t pad, uint32_t *w)
{
	int v[4];
	for (int j = 0; j < 4; j++) {
		unsigned char c = (unsigned char)q[j];
		if (c == '=' && last && j >= 4 - (int)pad) {
			v[j] = 0;
			continue;
		}
		v[j] = b64val(c);
		if (v[j] < 0)
			return false;
	}
	*w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
	     (uint32_t)v[3];
	if (last && pad == 1 && (*w & 0xff) != 0)
		return false;
	if (last && pad == 2 && (*w & 0xffff) != 0)
		return false;
	return true;
}

enum kura_err kura_base64_decode(const char *in, size_t in_len, uint8_t *out,
				 size_t out_cap, size_t *out_len)
{
	if (in_len % 4 != 0)
		return KURA_EINVAL;
	size_t pad = 0;
	if (in_len >= 1 && in[in_len - 1] == '=') {
		pad++;
		if (in[in_len - 2] == '=')
			pad++;
	}
	uint32_t w;
	/* Validate everything first: out is written only on success. */
	for (size_t i = 0; i < in_len; i += 4)
		if (!b64_quantum(in + i, i + 4 == in_len, pad, &w))
			return KURA_EINVAL;
	size_t n = in_len / 4 * 3 - pad;
	if (n > out_cap)
		return KURA_ETOOBIG;
	size_t o = 0;
	for (size_t i = 0; i < in_len; i += 4) {
		bool last = i + 4 == in_len;
		(void)b64_quantum(in + i, last, pad, &w);
		uint8_t bytes[3] = { (uint8_t)(w >> 16), (uint8_t)(w >> 8),
				     (uint8_t)w };
		size_t take = last ? 3 - pad : 3;
		memcpy(out + o, bytes, take);
		o += take;
	}
	*out_len = o;
	return KURA_OK;
}

enum kura_err kura_uri_decode(const char *in, size_t n, struct kura_buf *out)
{
	size_t start = out->len;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c != '%') {
			/* Copy the run up to the next escape at once. */
			const char *pct = memchr(in + i, '%', n - i);
			size_t run = pct ? (size_t)(pct - (in + i)) : n - i;
			enum kura_err rc = kura_buf_add(out, in + i, run);
			if (rc != KURA_OK)
				return truncate_to(out, start, rc);
			i += run - 1;
			continue;
		}
		if (n - i < 3)
			return truncate_to(out, start, KURA_EINVAL);
		int hi = hexval((unsigned char)in[i + 1]);
		int lo = hexval((unsigned char)in[i + 2]);
		if (hi < 0 || lo < 0)
			return truncate_to(out, start, KURA_EINVAL);
		c = (char)(hi << 4 | lo);
		i += 2;
		enum kura_err rc = kura_buf_addch(out, c);
		if (rc != KURA_OK)
			return truncate_to(out, start, rc);
	}
	if (out->data == NULL)
		return kura_buf_add(out, "", 0);
	return KURA_OK;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	       c == '~';
}

enum kura_err kura_uri_encode(const char *in, size_t n, bool keep_slash,
			      struct kura_buf *out)
{
	static const char up[] = "0123456789ABCDEF";
	size_t start = out->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		enum kura_err rc;
		if (unreserved(c) || (keep_slash && c == '/')) {
			rc = kura_buf_addch(out, (char)c);
		} else {
			char e[3] = { '%', up[c >> 4], up[c & 15] };
			rc = kura_buf_add(out, e, 3);
		}
		if (rc != KURA_OK)
			return truncate_to(out, start, rc);
	}
	if (out->data == NULL)
		return kura_buf_add(out, "", 0);
	return KURA_OK;
}

enum kura_err kura_random_bytes(uint8_t *out, size_t n, struct kura_error *err)
{
	if (n > (size_t)INT32_MAX)
		return kura_fail(err, KURA_EINVAL, "random request too large");
	if (RAND_bytes(out, (int)n) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "RAND_bytes");
	return KURA_OK;
}

bool kura_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

bool kura_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t j = 1; j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

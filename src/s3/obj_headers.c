/*
 * obj_headers.c — what a write request says about the object it creates:
 * stored content-* headers, user metadata (x-amz-meta-*), tags
 * (x-amz-tagging).  Headers asking for features kura does not provide are
 * refused in unsupported.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "kura/encode.h"
#include "s3_int.h"
#include "kura/banned.h"

#define USER_META_MAX 2048 /* bytes of names and values, as S3 */

static const char *header_copy(struct s3_req *r, const char *name)
{
	const struct kura_str *v = s3_header(r, name);
	return v ? kura_pstrndup(r->pool, v->p, v->len) : NULL;
}

/* Content-Encoding without the aws-chunked token, which describes the
 * transfer, not the object, into *res: NULL when nothing remains.  What
 * remains is the header as sent — case, order and the separators between
 * the tokens kept (each token's own, as it preceded it) — as AWS returns
 * it.  Responds and returns false when out of memory. */
static bool content_encoding(struct s3_req *r, const char **res)
{
	const struct kura_str *v = s3_header(r, "Content-Encoding");
	*res = NULL;
	if (v == NULL)
		return true;
	/* The text kept is never longer than the header. */
	struct kura_buf out;
	kura_buf_init(&out, v->len);
	size_t i = 0, prev_end = 0;
	while (i < v->len) {
		size_t j = i;
		while (j < v->len && v->p[j] != ',')
			j++;
		size_t a = i, b = j;
		while (a < b && (v->p[a] == ' ' || v->p[a] == '\t'))
			a++;
		while (b > a && (v->p[b - 1] == ' ' || v->p[b - 1] == '\t'))
			b--;
		bool chunked = b - a == 11 &&
			       strncasecmp(v->p + a, "aws-chunked", 11) == 0;
		if (b > a && !chunked) {
			/* A failure sticks in out: looked at once below. */
			if (out.len)
				KURA_IGNORE(kura_buf_add(&out, v->p + prev_end,
							 a - prev_end));
			KURA_IGNORE(kura_buf_add(&out, v->p + a, b - a));
		}
		if (b > a)
			prev_end = b;
		i = j + 1;
	}
	bool ok = kura_buf_error(&out) == KURA_OK;
	if (ok && out.len > 0)
		ok = (*res = kura_pstrndup(r->pool, out.data, out.len)) != NULL;
	kura_buf_release(&out);
	if (!ok)
		s3_error(r, S3_InternalError, NULL, "out of memory");
	return ok;
}

static const char *json_to_pool(struct s3_req *r, json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL)
		return NULL;
	const char *res = kura_pstrdup(r->pool, s);
	free(s);
	return res;
}

/* ---- non-ASCII user metadata: RFC 2047, as AWS ----
 *
 * HTTP header values are ASCII by rule.  AWS decodes RFC 2047 encoded
 * words ("=?UTF-8?B?aMOpbGxv?=") in a user metadata value before storing
 * it, and returns a stored value holding non-ASCII characters encoded
 * ("=?UTF-8?B?...?="), which SDKs hand over as they are.  kura does the
 * same: a value made only of encoded words in UTF-8, US-ASCII or
 * ISO-8859-1 (B or Q) is stored decoded, as UTF-8; any other value as it
 * was sent.  Values are stored as UTF-8, so one sent as raw UTF-8 bytes
 * (what botocore puts on the wire when its ASCII check is bypassed) comes
 * back encoded too, as from AWS.
 */

/* The charsets decoded: true for UTF-8 and US-ASCII, *latin1 for
 * ISO-8859-1 (each byte a code point). */
static bool word_charset(const char *cs, size_t n, bool *latin1)
{
	*latin1 = n == 10 && strncasecmp(cs, "ISO-8859-1", 10) == 0;
	return *latin1 || (n == 5 && strncasecmp(cs, "UTF-8", 5) == 0) ||
	       (n == 8 && strncasecmp(cs, "US-ASCII", 8) == 0);
}

/* The bytes of a Q-encoded text ('_' a space, =XX a byte) into raw (cap
 * bytes); false when malformed. */
static bool q_decode(const char *t, size_t n, uint8_t *raw, size_t cap,
		     size_t *len)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k == cap)
			return false;
		unsigned char c = (unsigned char)t[i];
		if (c == '=') {
			if (n - i < 3 || kura_hex_decode(t + i + 1, 2, raw + k,
							 1) != KURA_OK)
				return false;
			i += 2;
		} else if (c == '_') {
			raw[k] = ' ';
		} else if (c > 0x20 && c < 0x7f) {
			raw[k] = c;
		} else {
			return false;
		}
		k++;
	}
	*len = k;
	return true;
}

/* The bytes of an encoded word's text in encoding enc (B or Q). */
static bool word_text(char enc, const char *t, size_t n, uint8_t *raw,
		      size_t cap, size_t *len)
{
	if (enc == 'B' || enc == 'b')
		return n / 4 * 3 <= cap &&
		       kura_base64_decode(t, n, raw, cap, len) == KURA_OK;
	if (enc == 'Q' || enc == 'q')
		return q_decode(t, n, raw, cap, len);
	return false;
}

/* One encoded word "=?charset?B|Q?text?=" of s[0..n) appended to out as
 * UTF-8; false when it is not one (or not one kura decodes). */
static bool decode_word(const char *s, size_t n, struct kura_buf *out)
{
	uint8_t raw[USER_META_MAX];
	size_t len = 0;
	bool latin1;
	if (n < 8 || memcmp(s, "=?", 2) != 0 || memcmp(s + n - 2, "?=", 2) != 0)
		return false;
	const char *cs = s + 2, *end = s + n - 2;
	const char *q = memchr(cs, '?', (size_t)(end - cs));
	if (q == NULL || end - q < 3 || q[2] != '?' ||
	    !word_charset(cs, (size_t)(q - cs), &latin1))
		return false;
	const char *t = q + 3;
	size_t tn = (size_t)(end - t);
	if (memchr(t, '?', tn) != NULL)
		return false;
	bool ok = word_text(q[1], t, tn, raw, sizeof(raw), &len);
	for (size_t i = 0; ok && i < len; i++) {
		/* A failure sticks in out: the caller looks once. */
		if (!latin1 || raw[i] < 0x80) {
			KURA_IGNORE(kura_buf_addch(out, (char)raw[i]));
		} else {
			KURA_IGNORE(kura_buf_addch(out,
						   (char)(0xC0 | raw[i] >> 6)));
			KURA_IGNORE(kura_buf_addch(
				out, (char)(0x80 | (raw[i] & 0x3F))));
		}
	}
	return ok;
}

/* A value made only of encoded words (white space between them dropped,
 * RFC 2047 §6.2) decoded into out, valid UTF-8; false for any other. */
static bool decode_rfc2047(struct kura_str v, struct kura_buf *out)
{
	size_t i = 0;
	bool any = false;
	while (i < v.len) {
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t'))
			i++;
		if (i == v.len)
			break;
		size_t j = i;
		while (j < v.len && v.p[j] != ' ' && v.p[j] != '\t')
			j++;
		if (!decode_word(v.p + i, j - i, out))
			return false;
		any = true;
		i = j;
	}
	return any && kura_buf_error(out) == KURA_OK &&
	       kura_utf8_valid(out->data ? out->data : "", out->len);
}

const char *s3_meta_header_value(struct s3_req *r, const char *v)
{
	size_t n = strlen(v);
	bool ascii = true;
	for (size_t i = 0; i < n && ascii; i++)
		ascii = (unsigned char)v[i] < 0x80;
	if (ascii)
		return v;
	struct kura_buf b;
	kura_buf_init(&b, 16 + (n + 2) / 3 * 4);
	/* Failures stick in b: looked at once below. */
	KURA_IGNORE(kura_buf_add(&b, "=?UTF-8?B?", 10));
	KURA_IGNORE(kura_base64_encode((const uint8_t *)v, n, &b));
	KURA_IGNORE(kura_buf_add(&b, "?=", 2));
	const char *res = kura_buf_error(&b) == KURA_OK ?
				  kura_pstrndup(r->pool, b.data, b.len) :
				  NULL;
	kura_buf_release(&b);
	return res;
}

/* The value of one x-amz-meta-* header as stored: decoded when it is RFC
 * 2047 (dec holds it), checked for control characters.  Responds and
 * returns false on a bad value. */
static bool meta_value(struct s3_req *r, struct kura_str sent,
		       struct kura_buf *dec, struct kura_str *out)
{
	*out = sent;
	if (decode_rfc2047(sent, dec))
		*out = (struct kura_str){ dec->data, dec->len };
	for (size_t k = 0; k < out->len; k++) {
		unsigned char c = (unsigned char)out->p[k];
		if (c < 0x20 && c != '\t') {
			s3_error(r, S3_InvalidArgument,
				 "Metadata values may not contain control "
				 "characters.",
				 NULL);
			return false;
		}
	}
	return true;
}

/* Collect x-amz-meta-* into JSON (lowercased names). */
static bool user_metadata(struct s3_req *r, const char **json_out)
{
	struct kura_http_req *h = r->http;
	static const char prefix[] = "x-amz-meta-";
	const size_t plen = sizeof(prefix) - 1;
	size_t total = 0;
	json_t *obj = NULL;
	bool ok = false;
	struct kura_buf dec;
	kura_buf_init(&dec, USER_META_MAX);
	*json_out = NULL;
	for (size_t i = 0; i < h->nheaders; i++) {
		struct kura_str name = h->headers[i].name, value;
		if (name.len <= plen || strncasecmp(name.p, prefix, plen) != 0)
			continue;
		kura_buf_release(&dec);
		kura_buf_init(&dec, USER_META_MAX);
		if (!meta_value(r, h->headers[i].value, &dec, &value))
			goto out;
		/* The size AWS limits: UTF-8 bytes of names and values. */
		total += name.len - plen + value.len;
		char lname[256];
		size_t nl = name.len - plen;
		if (total > USER_META_MAX || nl >= sizeof(lname)) {
			s3_error(r, S3_MetadataTooLarge, NULL, NULL);
			goto out;
		}
		for (size_t k = 0; k < nl; k++)
			lname[k] =
				(char)tolower((unsigned char)name.p[plen + k]);
		lname[nl] = '\0';
		if (obj == NULL && (obj = json_object()) == NULL)
			goto oom;
		json_t *jv = json_stringn(value.p ? value.p : "", value.len);
		if (jv == NULL) {
			/* Not UTF-8: clients must RFC 2047-encode such values. */
			s3_error(r, S3_InvalidArgument,
				 "Metadata values must be US-ASCII or UTF-8.",
				 NULL);
			goto out;
		}
		if (json_object_set_new(obj, lname, jv) != 0)
			goto oom;
	}
	if (obj != NULL && (*json_out = json_to_pool(r, obj)) == NULL)
		goto oom;
	ok = true;
	goto out;
oom:
	s3_error(r, S3_InternalError, NULL, "out of memory");
out:
	kura_buf_release(&dec);
	json_decref(obj);
	return ok;
}

/* Characters (code points) in valid UTF-8: S3 limits tags in characters,
 * not bytes. */
static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/* Add one tag to obj after S3's checks; responds on failure. */
bool s3_tag_add(struct s3_req *r, json_t *obj, const char *k, size_t klen,
		const char *v, size_t vlen)
{
	if (json_object_size(obj) >= S3_MAX_TAGS) {
		s3_error(r, S3_BadRequest,
			 "Object tags cannot be greater than 10", NULL);
		return false;
	}
	if (klen == 0 || klen > 128 * 4 || vlen > 256 * 4 ||
	    !kura_utf8_valid(k, klen) || !kura_utf8_valid(v, vlen) ||
	    utf8_chars(k, klen) > 128 || utf8_chars(v, vlen) > 256 ||
	    memchr(k, 0, klen) || memchr(v, 0, vlen)) {
		s3_error(r, S3_InvalidTag,
			 "The TagKey or TagValue you have provided is invalid",
			 NULL);
		return false;
	}
	char key[128 * 4 + 1];
	memcpy(key, k, klen);
	key[klen] = '\0';
	if (json_object_get(obj, key) != NULL) {
		s3_error(r, S3_InvalidTag,
			 "Cannot provide multiple Tags with the same key",
			 NULL);
		return false;
	}
	json_t *jv = json_stringn(v, vlen);
	if (jv == NULL || json_object_set_new(obj, key, jv) != 0) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	return true;
}

const char *s3_tags_json(struct s3_req *r, json_t *obj)
{
	if (json_object_size(obj) == 0)
		return NULL;
	const char *s = json_to_pool(r, obj);
	if (s == NULL)
		s3_error(r, S3_InternalError, NULL, "out of memory");
	return s;
}

/* Decode one form-encoded component ('+' is a space). */
static bool form_decode(const char *s, size_t n, struct kura_buf *out)
{
	struct kura_buf tmp;
	kura_buf_init(&tmp, n);
	bool ok = kura_buf_add(&tmp, s, n) == KURA_OK;
	for (size_t i = 0; ok && i < tmp.len; i++)
		if (tmp.data[i] == '+')
			tmp.data[i] = ' ';
	ok = ok &&
	     kura_uri_decode(tmp.data ? tmp.data : "", tmp.len, out) == KURA_OK;
	kura_buf_release(&tmp);
	return ok;
}

const char *s3_tags_from_query(struct s3_req *r, const char *q, size_t n,
			       bool *ok)
{
	json_t *obj = json_object();
	const char *res = NULL;
	*ok = false;
	if (obj == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return NULL;
	}
	size_t pos = 0;
	while (pos < n) {
		const char *amp = memchr(q + pos, '&', n - pos);
		size_t end = amp ? (size_t)(amp - q) : n;
		const char *item = q + pos;
		size_t ilen = end - pos;
		const char *eq = memchr(item, '=', ilen);
		size_t klen = eq ? (size_t)(eq - item) : ilen;
		struct kura_buf k, v;
		kura_buf_init(&k, S3_TAG_TEXT_MAX);
		kura_buf_init(&v, S3_TAG_TEXT_MAX);
		bool good = ilen > 0 && form_decode(item, klen, &k) &&
			    form_decode(eq ? eq + 1 : "",
					eq ? ilen - klen - 1 : 0, &v);
		if (!good)
			s3_error(
				r, S3_InvalidArgument,
				"The header 'x-amz-tagging' shall be "
				"encoded as UTF-8 then URLEncoded URL query parameters "
				"without tag name duplicates.",
				NULL);
		else
			good = s3_tag_add(r, obj, k.data, k.len,
					  v.data ? v.data : "", v.len);
		kura_buf_release(&k);
		kura_buf_release(&v);
		if (!good)
			goto out;
		pos = end + 1;
	}
	res = s3_tags_json(r, obj);
	*ok = !r->failed;
out:
	json_decref(obj);
	return res;
}

bool s3_object_headers_from_request(struct s3_req *r, struct kura_object *o)
{
	o->content_type = header_copy(r, "Content-Type");
	o->content_language = header_copy(r, "Content-Language");
	o->content_disposition = header_copy(r, "Content-Disposition");
	o->cache_control = header_copy(r, "Cache-Control");
	o->expires = header_copy(r, "Expires");
	if (!content_encoding(r, &o->content_encoding) ||
	    !user_metadata(r, &o->user_meta_json))
		return false;
	const struct kura_str *t = s3_header(r, "x-amz-tagging");
	o->tags_json = NULL;
	if (t != NULL) {
		bool ok;
		o->tags_json = s3_tags_from_query(r, t->p, t->len, &ok);
		return ok;
	}
	return true;
}

/*
 * kmip_ttlv.c — KMIP TTLV encoder and strict decoder (see kmip_ttlv.h).
 *
 * Invariants: an encoder's output is always a prefix of a well-formed
 * message whose open structures have a zero length until closed; once its
 * rc is set nothing more is written.  The decoder reads nothing outside
 * (p, n), recurses at most KURA_TTLV_DEPTH_MAX levels, and accepts exactly
 * one encoding for each value (types with fixed lengths, zero padding,
 * booleans 0 or 1), so parsed views can be navigated without further checks.
 *
 * Pure functions; thread-safe.
 */
#include <string.h>

#include "kura/kmip_ttlv.h"
#include "kura/banned.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static size_t padded(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static bool tag_valid(uint32_t tag)
{
	uint32_t top = tag >> 16;
	return tag <= 0xFFFFFF && (top == 0x42 || top == 0x54);
}

/* ---- encoder ---- */

void kura_ttlv_enc_init_buf(struct kura_ttlv_enc *e, struct kura_buf *b)
{
	memset(e, 0, sizeof(*e));
	e->buf = b;
	if (b == NULL)
		e->rc = KURA_EINVAL;
}

void kura_ttlv_enc_init_fixed(struct kura_ttlv_enc *e, uint8_t *p, size_t cap)
{
	memset(e, 0, sizeof(*e));
	e->fixed = p;
	e->cap = cap;
	if (p == NULL)
		e->rc = KURA_EINVAL;
}

static size_t enc_len(const struct kura_ttlv_enc *e)
{
	return e->buf != NULL ? e->buf->len : e->len;
}

static uint8_t *enc_at(struct kura_ttlv_enc *e, size_t off)
{
	return (e->buf != NULL ? (uint8_t *)e->buf->data : e->fixed) + off;
}

const uint8_t *kura_ttlv_enc_data(const struct kura_ttlv_enc *e)
{
	if (e->buf != NULL)
		return (const uint8_t *)e->buf->data;
	return e->fixed;
}

static enum kura_err enc_add(struct kura_ttlv_enc *e, const void *p, size_t n)
{
	if (e->rc != KURA_OK)
		return e->rc;
	if (e->buf != NULL) {
		e->rc = kura_buf_add(e->buf, p, n);
		return e->rc;
	}
	if (n > e->cap - e->len) {
		e->rc = KURA_ETOOBIG;
		return e->rc;
	}
	if (n > 0)
		memcpy(e->fixed + e->len, p, n);
	e->len += n;
	return KURA_OK;
}

/* Header, value, zero padding; the value length must fit 32 bits and the
 * whole message KURA_TTLV_SIZE_MAX. */
static enum kura_err enc_item(struct kura_ttlv_enc *e, uint32_t tag,
			      uint8_t type, const void *val, size_t n)
{
	static const uint8_t zeros[8] = { 0 };
	uint8_t hdr[KURA_TTLV_HDR_LEN];
	if (e->rc != KURA_OK)
		return e->rc;
	if (!tag_valid(tag) || (n > 0 && val == NULL)) {
		e->rc = KURA_EINVAL;
		return e->rc;
	}
	if (n > KURA_TTLV_SIZE_MAX ||
	    enc_len(e) + KURA_TTLV_HDR_LEN + padded(n) > KURA_TTLV_SIZE_MAX) {
		e->rc = KURA_ETOOBIG;
		return e->rc;
	}
	put_be32(hdr, tag << 8 | type);
	put_be32(hdr + 4, (uint32_t)n);
	enc_add(e, hdr, sizeof(hdr));
	enc_add(e, val, n);
	return enc_add(e, zeros, padded(n) - n);
}

enum kura_err kura_ttlv_begin(struct kura_ttlv_enc *e, uint32_t tag)
{
	if (e->rc != KURA_OK)
		return e->rc;
	if (e->depth >= KURA_TTLV_DEPTH_MAX) {
		e->rc = KURA_ETOOBIG;
		return e->rc;
	}
	size_t at = enc_len(e);
	if (enc_item(e, tag, KURA_TTLV_STRUCT, NULL, 0) != KURA_OK)
		return e->rc;
	e->open[e->depth++] = at;
	return KURA_OK;
}

enum kura_err kura_ttlv_end(struct kura_ttlv_enc *e)
{
	if (e->rc != KURA_OK)
		return e->rc;
	if (e->depth == 0) {
		e->rc = KURA_EINVAL;
		return e->rc;
	}
	size_t at = e->open[--e->depth];
	size_t body = enc_len(e) - at - KURA_TTLV_HDR_LEN;
	put_be32(enc_at(e, at) + 4, (uint32_t)body);
	return KURA_OK;
}

enum kura_err kura_ttlv_int(struct kura_ttlv_enc *e, uint32_t tag, int32_t v)
{
	uint8_t b[4];
	put_be32(b, (uint32_t)v);
	return enc_item(e, tag, KURA_TTLV_INT, b, sizeof(b));
}

enum kura_err kura_ttlv_enum(struct kura_ttlv_enc *e, uint32_t tag, uint32_t v)
{
	uint8_t b[4];
	put_be32(b, v);
	return enc_item(e, tag, KURA_TTLV_ENUM, b, sizeof(b));
}

static enum kura_err enc_u64(struct kura_ttlv_enc *e, uint32_t tag,
			     uint8_t type, uint64_t v)
{
	uint8_t b[8];
	put_be32(b, (uint32_t)(v >> 32));
	put_be32(b + 4, (uint32_t)v);
	return enc_item(e, tag, type, b, sizeof(b));
}

enum kura_err kura_ttlv_long(struct kura_ttlv_enc *e, uint32_t tag, int64_t v)
{
	return enc_u64(e, tag, KURA_TTLV_LONG, (uint64_t)v);
}

enum kura_err kura_ttlv_bool(struct kura_ttlv_enc *e, uint32_t tag, bool v)
{
	return enc_u64(e, tag, KURA_TTLV_BOOL, v ? 1 : 0);
}

enum kura_err kura_ttlv_datetime(struct kura_ttlv_enc *e, uint32_t tag,
				 int64_t posix_seconds)
{
	return enc_u64(e, tag, KURA_TTLV_DATETIME, (uint64_t)posix_seconds);
}

enum kura_err kura_ttlv_text(struct kura_ttlv_enc *e, uint32_t tag,
			     const char *p, size_t n)
{
	return enc_item(e, tag, KURA_TTLV_TEXT, p, n);
}

enum kura_err kura_ttlv_bytes(struct kura_ttlv_enc *e, uint32_t tag,
			      const uint8_t *p, size_t n)
{
	return enc_item(e, tag, KURA_TTLV_BYTES, p, n);
}

enum kura_err kura_ttlv_enc_finish(struct kura_ttlv_enc *e, size_t *len,
				   struct kura_error *err)
{
	if (e->rc == KURA_OK && e->depth != 0)
		e->rc = KURA_EINVAL;
	switch (e->rc) {
	case KURA_OK:
		break;
	case KURA_ETOOBIG:
		return kura_fail(err, KURA_ETOOBIG,
				 "KMIP request does not fit its buffer");
	case KURA_ENOMEM:
		return kura_fail(err, KURA_ENOMEM, "KMIP request buffer");
	default:
		return kura_fail(err, KURA_EINTERNAL,
				 "KMIP request malformed (%s)",
				 kura_errname(e->rc));
	}
	if (len != NULL)
		*len = enc_len(e);
	return KURA_OK;
}

/* ---- decoder ---- */

/* Read one item header at p[0..n): its fields and the padded length it
 * occupies.  Nothing beyond n is read. */
static enum kura_err read_item(const uint8_t *p, size_t n,
			       struct kura_ttlv *it, size_t *span,
			       struct kura_error *err)
{
	if (n < KURA_TTLV_HDR_LEN)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: truncated item header (%zu bytes left)", n);
	uint32_t tt = get_be32(p);
	it->tag = tt >> 8;
	it->type = (uint8_t)tt;
	it->len = get_be32(p + 4);
	if (!tag_valid(it->tag))
		return kura_fail(err, KURA_EPROTO, "KMIP: bad tag 0x%06x",
				 (unsigned)it->tag);
	size_t body = it->type == KURA_TTLV_STRUCT ? it->len : padded(it->len);
	if (it->len > n - KURA_TTLV_HDR_LEN ||
	    body > n - KURA_TTLV_HDR_LEN)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: item 0x%06x length %u overruns its container",
				 (unsigned)it->tag, (unsigned)it->len);
	it->val = p + KURA_TTLV_HDR_LEN;
	*span = KURA_TTLV_HDR_LEN + body;
	return KURA_OK;
}

static enum kura_err check_item(const struct kura_ttlv *it, unsigned depth,
				struct kura_error *err);

static enum kura_err check_children(const uint8_t *p, size_t n, unsigned depth,
				    struct kura_error *err)
{
	size_t off = 0;
	while (off < n) {
		struct kura_ttlv it;
		size_t span = 0;
		enum kura_err rc = read_item(p + off, n - off, &it, &span, err);
		if (rc == KURA_OK)
			rc = check_item(&it, depth, err);
		if (rc != KURA_OK)
			return rc;
		off += span;
	}
	return KURA_OK;
}

static enum kura_err check_item(const struct kura_ttlv *it, unsigned depth,
				struct kura_error *err)
{
	size_t want = 0;
	switch (it->type) {
	case KURA_TTLV_STRUCT:
		if (depth >= KURA_TTLV_DEPTH_MAX)
			return kura_fail(err, KURA_EPROTO,
					 "KMIP: structures nested deeper than %d",
					 KURA_TTLV_DEPTH_MAX);
		if (it->len % 8 != 0)
			return kura_fail(err, KURA_EPROTO,
					 "KMIP: structure 0x%06x length %u not a multiple of 8",
					 (unsigned)it->tag, (unsigned)it->len);
		return check_children(it->val, it->len, depth + 1, err);
	case KURA_TTLV_INT:
	case KURA_TTLV_ENUM:
	case KURA_TTLV_INTERVAL:
		want = 4;
		break;
	case KURA_TTLV_LONG:
	case KURA_TTLV_BOOL:
	case KURA_TTLV_DATETIME:
		want = 8;
		break;
	case KURA_TTLV_BIGINT:
		if (it->len == 0 || it->len % 8 != 0)
			return kura_fail(err, KURA_EPROTO,
					 "KMIP: big integer 0x%06x length %u",
					 (unsigned)it->tag, (unsigned)it->len);
		return KURA_OK;
	case KURA_TTLV_TEXT:
	case KURA_TTLV_BYTES:
		break;
	default:
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: item 0x%06x has unknown type 0x%02x",
				 (unsigned)it->tag, (unsigned)it->type);
	}
	if (want != 0 && it->len != want)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: item 0x%06x of type 0x%02x has length %u",
				 (unsigned)it->tag, (unsigned)it->type,
				 (unsigned)it->len);
	if (it->type == KURA_TTLV_BOOL && get_be64(it->val) > 1)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: boolean 0x%06x is neither 0 nor 1",
				 (unsigned)it->tag);
	for (size_t i = it->len; i < padded(it->len); i++)
		if (it->val[i] != 0)
			return kura_fail(err, KURA_EPROTO,
					 "KMIP: item 0x%06x has non-zero padding",
					 (unsigned)it->tag);
	return KURA_OK;
}

enum kura_err kura_ttlv_parse(const uint8_t *p, size_t n, struct kura_ttlv *out,
			      struct kura_error *err)
{
	if (p == NULL && n > 0)
		return kura_fail(err, KURA_EINVAL, "KMIP: NULL message");
	if (n > KURA_TTLV_SIZE_MAX)
		return kura_fail(err, KURA_ETOOBIG,
				 "KMIP: message of %zu bytes exceeds %u", n,
				 KURA_TTLV_SIZE_MAX);
	struct kura_ttlv it;
	size_t span = 0;
	enum kura_err rc = read_item(p, n, &it, &span, err);
	if (rc != KURA_OK)
		return rc;
	if (span != n)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: %zu trailing bytes after the message",
				 n - span);
	rc = check_item(&it, 0, err);
	if (rc != KURA_OK)
		return rc;
	*out = it;
	return KURA_OK;
}

enum kura_err kura_ttlv_frame_len(const uint8_t hdr[KURA_TTLV_HDR_LEN],
				  size_t max, size_t *total,
				  struct kura_error *err)
{
	uint32_t tt = get_be32(hdr);
	uint32_t len = get_be32(hdr + 4);
	if (max > KURA_TTLV_SIZE_MAX)
		max = KURA_TTLV_SIZE_MAX;
	if (!tag_valid(tt >> 8) || (tt & 0xFF) != KURA_TTLV_STRUCT)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: reply does not start with a structure (0x%08x)",
				 (unsigned)tt);
	if (len % 8 != 0)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: reply length %u not a multiple of 8",
				 (unsigned)len);
	if (len > max - KURA_TTLV_HDR_LEN)
		return kura_fail(err, KURA_ETOOBIG,
				 "KMIP: reply of %u bytes exceeds %zu",
				 (unsigned)len, max);
	*total = (size_t)len + KURA_TTLV_HDR_LEN;
	return KURA_OK;
}

bool kura_ttlv_next(const struct kura_ttlv *parent, struct kura_ttlv *it)
{
	if (parent == NULL || parent->type != KURA_TTLV_STRUCT)
		return false;
	const uint8_t *end = parent->val + parent->len;
	const uint8_t *p;
	if (it->val == NULL) {
		p = parent->val;
	} else {
		size_t body = it->type == KURA_TTLV_STRUCT ? it->len
							   : padded(it->len);
		p = it->val + body;
	}
	/* The view was validated by kura_ttlv_parse; this only guards
	 * against a caller passing an item from another parent. */
	if (p < parent->val || p >= end || (size_t)(end - p) < KURA_TTLV_HDR_LEN)
		return false;
	uint32_t tt = get_be32(p);
	it->tag = tt >> 8;
	it->type = (uint8_t)tt;
	it->len = get_be32(p + 4);
	it->val = p + KURA_TTLV_HDR_LEN;
	return true;
}

bool kura_ttlv_find(const struct kura_ttlv *parent, uint32_t tag,
		    struct kura_ttlv *out)
{
	struct kura_ttlv it = { 0 };
	while (kura_ttlv_next(parent, &it)) {
		if (it.tag == tag) {
			*out = it;
			return true;
		}
	}
	return false;
}

static enum kura_err want_type(const struct kura_ttlv *it, uint8_t type)
{
	if (it == NULL || it->type != type)
		return KURA_EPROTO;
	return KURA_OK;
}

enum kura_err kura_ttlv_get_int(const struct kura_ttlv *it, int32_t *out)
{
	if (want_type(it, KURA_TTLV_INT) != KURA_OK)
		return KURA_EPROTO;
	*out = (int32_t)get_be32(it->val);
	return KURA_OK;
}

enum kura_err kura_ttlv_get_enum(const struct kura_ttlv *it, uint32_t *out)
{
	if (want_type(it, KURA_TTLV_ENUM) != KURA_OK)
		return KURA_EPROTO;
	*out = get_be32(it->val);
	return KURA_OK;
}

enum kura_err kura_ttlv_get_long(const struct kura_ttlv *it, int64_t *out)
{
	if (want_type(it, KURA_TTLV_LONG) != KURA_OK)
		return KURA_EPROTO;
	*out = (int64_t)get_be64(it->val);
	return KURA_OK;
}

enum kura_err kura_ttlv_get_bool(const struct kura_ttlv *it, bool *out)
{
	if (want_type(it, KURA_TTLV_BOOL) != KURA_OK)
		return KURA_EPROTO;
	*out = get_be64(it->val) != 0;
	return KURA_OK;
}

enum kura_err kura_ttlv_get_datetime(const struct kura_ttlv *it, int64_t *out)
{
	if (want_type(it, KURA_TTLV_DATETIME) != KURA_OK)
		return KURA_EPROTO;
	*out = (int64_t)get_be64(it->val);
	return KURA_OK;
}

enum kura_err kura_ttlv_get_text(const struct kura_ttlv *it,
				 struct kura_str *out)
{
	if (want_type(it, KURA_TTLV_TEXT) != KURA_OK)
		return KURA_EPROTO;
	out->p = (const char *)it->val;
	out->len = it->len;
	return KURA_OK;
}

enum kura_err kura_ttlv_get_bytes(const struct kura_ttlv *it,
				  const uint8_t **p, size_t *n)
{
	if (want_type(it, KURA_TTLV_BYTES) != KURA_OK)
		return KURA_EPROTO;
	*p = it->val;
	*n = it->len;
	return KURA_OK;
}

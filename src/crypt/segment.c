/*
 * segment.c — the segment format of a blob (docs/FORMAT.md §3-§5): layout
 * arithmetic, the blob header, and the streaming sealer / random-access
 * opener.
 *
 * Invariants:
 *  - Segment i is AES-256-GCM under the blob's DEK with nonce
 *    0x00000000 || i (u64 BE) and the 64-byte AAD built by seg_aad(); the
 *    last segment, and only it, carries final = 1.  A DEK seals one blob,
 *    written once, so (key, nonce) pairs never repeat.
 *  - The sealer never knows the total length: it holds at most one segment
 *    of plaintext and seals a full segment only once a further byte proves
 *    it is not the last (or at finish, as the final one).
 *  - The opener never leaves unauthenticated plaintext in the caller's
 *    buffer: on a tag mismatch the output is wiped before returning.
 *
 * Performance: this is the bulk path of every PUT and GET.  One
 * EVP_CIPHER_CTX is keyed once per sealer/opener and only its IV is reset
 * per segment (the AES key schedule and GHASH tables are not recomputed);
 * encryption is in place in the sealer's segment buffer, and a segment that
 * lies whole inside one write() is encrypted straight from the caller's
 * memory into that buffer, skipping the copy.
 *
 * Threading: a sealer or opener is used by one thread at a time; distinct
 * ones are independent.  The layout functions are pure.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "kura/crypt.h"
#include "kura/banned.h"

#define SEG_AAD_LEN 64
#define SEG_AAD_MAGIC "KURASEG1"
#define BLOB_MAGIC "KURABLB1"
#define MAGIC_LEN 8

/*
 * Largest plaintext one blob may hold: keeps every offset computation far
 * from uint64_t overflow (with the smallest segment the tag overhead is
 * 1/256 of the data).  An S3 object part is at most 5 GiB anyway.
 */
#define BLOB_PLAIN_MAX (UINT64_C(1) << 56)

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---- layout arithmetic ---- */

bool kura_seg_size_valid(uint32_t seg_size)
{
	return seg_size >= KURA_SEG_SIZE_MIN && seg_size <= KURA_SEG_SIZE_MAX &&
	       (seg_size & (seg_size - 1)) == 0;
}

uint64_t kura_seg_count(uint64_t plain_size, uint32_t seg_size)
{
	if (plain_size == 0 || seg_size == 0)
		return 1;
	return plain_size / seg_size + (plain_size % seg_size != 0);
}

uint64_t kura_blob_size(uint64_t plain_size, uint32_t seg_size)
{
	return KURA_BLOB_HEADER_LEN + plain_size +
	       kura_seg_count(plain_size, seg_size) * KURA_SEG_TAG_LEN;
}

uint64_t kura_seg_offset(uint64_t index, uint32_t seg_size)
{
	return KURA_BLOB_HEADER_LEN +
	       index * ((uint64_t)seg_size + KURA_SEG_TAG_LEN);
}

size_t kura_seg_plain_len(uint64_t index, uint64_t plain_size,
			  uint32_t seg_size)
{
	if (seg_size == 0 || index >= kura_seg_count(plain_size, seg_size))
		return 0;
	uint64_t start = index * seg_size;
	uint64_t left = plain_size - start;
	return (size_t)(left < seg_size ? left : seg_size);
}

/* ---- blob header ---- */

void kura_blob_header_write(uint8_t out[KURA_BLOB_HEADER_LEN],
			    uint32_t seg_size,
			    const uint8_t blob_id[KURA_BLOB_ID_LEN])
{
	memcpy(out, BLOB_MAGIC, MAGIC_LEN);
	put_u32(out + 8, seg_size);
	put_u32(out + 12, 0);
	memcpy(out + 16, blob_id, KURA_BLOB_ID_LEN);
}

enum kura_err kura_blob_header_check(const uint8_t hdr[KURA_BLOB_HEADER_LEN],
				     uint32_t seg_size,
				     const uint8_t blob_id[KURA_BLOB_ID_LEN],
				     struct kura_error *err)
{
	if (memcmp(hdr, BLOB_MAGIC, MAGIC_LEN) != 0)
		return kura_fail(err, KURA_EINTEGRITY, "blob header: bad magic");
	if (get_u32(hdr + 8) != seg_size)
		return kura_fail(err, KURA_EINTEGRITY,
				 "blob header: segment size %u, metadata says %u",
				 get_u32(hdr + 8), seg_size);
	if (get_u32(hdr + 12) != 0)
		return kura_fail(err, KURA_EINTEGRITY,
				 "blob header: unknown flags 0x%08x",
				 get_u32(hdr + 12));
	if (memcmp(hdr + 16, blob_id, KURA_BLOB_ID_LEN) != 0)
		return kura_fail(err, KURA_EINTEGRITY,
				 "blob header: blob id does not match metadata");
	return KURA_OK;
}

/* ---- per-segment AEAD ---- */

/*
 * What sealer and opener share: the keyed context and the two per-segment
 * inputs whose fixed parts are filled once.  aad bytes 48..56 (index,
 * final) and nonce bytes 4..11 (index) change per segment.
 */
struct seg_cipher {
	EVP_CIPHER_CTX *ctx;
	uint32_t seg_size;
	uint8_t aad[SEG_AAD_LEN];
	uint8_t nonce[KURA_SEG_NONCE_LEN];
};

static enum kura_err seg_cipher_init(struct seg_cipher *c, bool enc,
				     const struct kura_secret *dek,
				     const struct kura_binding *b,
				     uint32_t seg_size, struct kura_error *err)
{
	if (dek == NULL || dek->len != KURA_DEK_LEN)
		return kura_fail(err, KURA_EINVAL, "a DEK must be %d bytes",
				 KURA_DEK_LEN);
	if (b == NULL)
		return kura_fail(err, KURA_EINVAL, "no binding");
	if (!kura_seg_size_valid(seg_size))
		return kura_fail(err, KURA_EINVAL, "invalid segment size %u",
				 seg_size);
	c->seg_size = seg_size;
	memcpy(c->aad, SEG_AAD_MAGIC, MAGIC_LEN);
	put_u64(c->aad + 8, b->tenant_id);
	put_u64(c->aad + 16, b->bucket_id);
	memcpy(c->aad + 24, b->version_uid, KURA_UID_LEN);
	put_u32(c->aad + 40, b->part_no);
	put_u32(c->aad + 44, seg_size);
	memset(c->aad + 48, 0, SEG_AAD_LEN - 48);
	memset(c->nonce, 0, sizeof(c->nonce));

	c->ctx = EVP_CIPHER_CTX_new();
	if (c->ctx == NULL)
		return kura_fail_openssl(err, KURA_ENOMEM, "EVP_CIPHER_CTX_new");
	/* Key once; the 12-byte IV is GCM's default length. */
	if (EVP_CipherInit_ex(c->ctx, EVP_aes_256_gcm(), NULL, dek->data, NULL,
			      enc ? 1 : 0) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "AES-GCM key setup");
	return KURA_OK;
}

static void seg_cipher_release(struct seg_cipher *c)
{
	EVP_CIPHER_CTX_free(c->ctx);	/* cleanses the key schedule */
	c->ctx = NULL;
}

/* Reset the context for segment index: new nonce, then the AAD. */
static bool seg_begin(struct seg_cipher *c, uint64_t index, bool final)
{
	int outl = 0;
	put_u64(c->nonce + 4, index);
	put_u64(c->aad + 48, index);
	c->aad[56] = final ? 1 : 0;
	return EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, c->nonce, -1) == 1 &&
	       EVP_CipherUpdate(c->ctx, NULL, &outl, c->aad, SEG_AAD_LEN) == 1;
}

/* ---- sealer ---- */

struct kura_sealer {
	struct seg_cipher c;
	kura_sink_fn sink;
	void *sink_ctx;
	uint8_t *buf;		/* seg_size plaintext/ciphertext + tag */
	size_t fill;		/* plaintext bytes waiting in buf */
	uint64_t index;		/* index of the segment being filled */
	uint64_t total;		/* plaintext bytes accepted */
	bool failed;		/* a write failed: the blob is unusable */
	bool finished;
};

/*
 * Seal n bytes from src into s->buf (src may be s->buf itself), append the
 * tag, and emit the segment.
 */
static enum kura_err seal_emit(struct kura_sealer *s, const uint8_t *src,
			       size_t n, bool final, struct kura_error *err)
{
	int outl = 0;
	int tail = 0;
	if (!seg_begin(&s->c, s->index, final) ||
	    (n > 0 && EVP_EncryptUpdate(s->c.ctx, s->buf, &outl, src,
					(int)n) != 1) ||
	    EVP_EncryptFinal_ex(s->c.ctx, s->buf + n, &tail) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->c.ctx, EVP_CTRL_GCM_GET_TAG,
				KURA_SEG_TAG_LEN, s->buf + n) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "seal segment %llu",
					 (unsigned long long)s->index);
	enum kura_err rc = s->sink(s->sink_ctx, s->buf, n + KURA_SEG_TAG_LEN,
				   err);
	if (rc != KURA_OK)
		return rc;
	s->index++;
	return KURA_OK;
}

enum kura_err kura_sealer_new(const struct kura_secret *dek,
			      const struct kura_binding *binding,
			      uint32_t seg_size,
			      const uint8_t blob_id[KURA_BLOB_ID_LEN],
			      kura_sink_fn sink, void *sink_ctx,
			      struct kura_sealer **out, struct kura_error *err)
{
	if (sink == NULL || blob_id == NULL)
		return kura_fail(err, KURA_EINVAL, "sealer needs a sink and a blob id");
	struct kura_sealer *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return kura_fail(err, KURA_ENOMEM, "sealer");
	enum kura_err rc = seg_cipher_init(&s->c, true, dek, binding, seg_size,
					   err);
	if (rc != KURA_OK)
		goto out;
	s->buf = malloc((size_t)seg_size + KURA_SEG_TAG_LEN);
	if (s->buf == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "segment buffer of %u bytes",
			       seg_size);
		goto out;
	}
	s->sink = sink;
	s->sink_ctx = sink_ctx;
	uint8_t hdr[KURA_BLOB_HEADER_LEN];
	kura_blob_header_write(hdr, seg_size, blob_id);
	rc = sink(sink_ctx, hdr, sizeof(hdr), err);
out:
	if (rc != KURA_OK) {
		kura_sealer_free(s);
		return rc;
	}
	*out = s;
	return KURA_OK;
}

enum kura_err kura_sealer_write(struct kura_sealer *s, const void *p,
				size_t n, struct kura_error *err)
{
	if (s->failed || s->finished)
		return kura_fail(err, KURA_ESTATE, "sealer is %s",
				 s->failed ? "failed" : "finished");
	if (n > BLOB_PLAIN_MAX - s->total)
		return kura_fail(err, KURA_ETOOBIG, "blob too large");
	const uint8_t *in = p;
	const size_t seg = s->c.seg_size;
	enum kura_err rc = KURA_OK;
	while (n > 0) {
		if (s->fill == seg) {
			/* A byte follows, so the buffered segment is not the
			 * last one. */
			rc = seal_emit(s, s->buf, seg, false, err);
			if (rc != KURA_OK)
				goto out;
			s->fill = 0;
		}
		if (s->fill == 0 && n > seg) {
			/* A whole non-final segment inside the input:
			 * encrypt it from the caller's memory directly. */
			rc = seal_emit(s, in, seg, false, err);
			if (rc != KURA_OK)
				goto out;
			in += seg;
			n -= seg;
			s->total += seg;
			continue;
		}
		size_t take = seg - s->fill;
		if (take > n)
			take = n;
		memcpy(s->buf + s->fill, in, take);
		s->fill += take;
		in += take;
		n -= take;
		s->total += take;
	}
out:
	if (rc != KURA_OK)
		s->failed = true;
	return rc;
}

enum kura_err kura_sealer_finish(struct kura_sealer *s, uint64_t *plain_size,
				 struct kura_error *err)
{
	if (s->failed || s->finished)
		return kura_fail(err, KURA_ESTATE, "sealer is %s",
				 s->failed ? "failed" : "finished");
	enum kura_err rc = seal_emit(s, s->buf, s->fill, true, err);
	if (rc != KURA_OK) {
		s->failed = true;
		return rc;
	}
	s->fill = 0;
	s->finished = true;
	if (plain_size)
		*plain_size = s->total;
	return KURA_OK;
}

void kura_sealer_free(struct kura_sealer *s)
{
	if (s == NULL)
		return;
	seg_cipher_release(&s->c);
	if (s->buf) {
		/* Only the unsealed tail is plaintext; the rest is ciphertext. */
		kura_wipe(s->buf, s->fill);
		free(s->buf);
	}
	free(s);
}

/* ---- opener ---- */

struct kura_opener {
	struct seg_cipher c;
	uint64_t plain_size;
	uint64_t count;
};

enum kura_err kura_opener_new(const struct kura_secret *dek,
			      const struct kura_binding *binding,
			      uint32_t seg_size, uint64_t plain_size,
			      struct kura_opener **out, struct kura_error *err)
{
	if (plain_size > BLOB_PLAIN_MAX)
		return kura_fail(err, KURA_EINVAL, "blob size out of range");
	struct kura_opener *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return kura_fail(err, KURA_ENOMEM, "opener");
	enum kura_err rc = seg_cipher_init(&o->c, false, dek, binding,
					   seg_size, err);
	if (rc != KURA_OK) {
		kura_opener_free(o);
		return rc;
	}
	o->plain_size = plain_size;
	o->count = kura_seg_count(plain_size, seg_size);
	*out = o;
	return KURA_OK;
}

enum kura_err kura_opener_segment(struct kura_opener *o, uint64_t index,
				  const uint8_t *ct, size_t ct_len,
				  uint8_t *out, struct kura_error *err)
{
	if (index >= o->count)
		return kura_fail(err, KURA_EINVAL,
				 "segment %llu beyond the blob's %llu",
				 (unsigned long long)index,
				 (unsigned long long)o->count);
	size_t n = kura_seg_plain_len(index, o->plain_size, o->c.seg_size);
	if (ct_len != n + KURA_SEG_TAG_LEN)
		return kura_fail(err, KURA_EINTEGRITY,
				 "segment %llu is %zu bytes, expected %zu",
				 (unsigned long long)index, ct_len,
				 n + KURA_SEG_TAG_LEN);
	/* Copy the tag first: out may overlap ct (in-place decryption). */
	uint8_t tag[KURA_SEG_TAG_LEN];
	memcpy(tag, ct + n, KURA_SEG_TAG_LEN);
	int outl = 0;
	int tail = 0;
	if (!seg_begin(&o->c, index, index + 1 == o->count) ||
	    (n > 0 && EVP_DecryptUpdate(o->c.ctx, out, &outl, ct,
					(int)n) != 1) ||
	    EVP_CIPHER_CTX_ctrl(o->c.ctx, EVP_CTRL_GCM_SET_TAG,
				KURA_SEG_TAG_LEN, tag) != 1) {
		kura_wipe(out, n);
		return kura_fail_openssl(err, KURA_ECRYPTO, "open segment %llu",
					 (unsigned long long)index);
	}
	if (EVP_DecryptFinal_ex(o->c.ctx, out + n, &tail) != 1) {
		ERR_clear_error();
		kura_wipe(out, n);
		return kura_fail(err, KURA_EINTEGRITY,
				 "segment %llu does not authenticate",
				 (unsigned long long)index);
	}
	return KURA_OK;
}

void kura_opener_free(struct kura_opener *o)
{
	if (o == NULL)
		return;
	seg_cipher_release(&o->c);
	free(o);
}

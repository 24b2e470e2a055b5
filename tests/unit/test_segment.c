/*
 * test_segment.c — the blob segment format: layout arithmetic, the header,
 * streaming seal / random-access open round trips around segment
 * boundaries, and every tampering we can think of (bit flips anywhere,
 * truncation, dropped final segment, reordering, cross-blob splicing,
 * binding changes, wrong key) failing without releasing plaintext.
 * Ends with a 64 MiB throughput measurement (printed, not asserted).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kura/crypt.h"
#include "kura/banned.h"

#define SEG 4096u

/* ---- helpers ---- */

struct sinkbuf {
	uint8_t *p;
	size_t len, cap;
	int calls;
	int fail_at;		/* fail the call with this number (1-based); 0 never */
};

static enum kura_err sink_add(void *ctx, const void *p, size_t n,
			      struct kura_error *err)
{
	struct sinkbuf *b = ctx;
	b->calls++;
	if (b->fail_at != 0 && b->calls == b->fail_at)
		return kura_fail(err, KURA_EIO, "injected sink failure");
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		assert_non_null(q);
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return KURA_OK;
}

static uint64_t rng_state = 0x243f6a8885a308d3u;

static uint64_t rng(void)
{
	/* xorshift64: deterministic, so failures reproduce */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct kura_secret *test_key(uint8_t fill)
{
	uint8_t k[KURA_DEK_LEN];
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(fill + i * 7);
	struct kura_secret *s = kura_secret_from(k, sizeof(k));
	assert_non_null(s);
	return s;
}

static struct kura_binding test_binding(void)
{
	struct kura_binding b = {
		.tenant_id = 0x0102030405060708u,
		.bucket_id = 0x1112131415161718u,
		.part_no = 3,
	};
	for (int i = 0; i < KURA_UID_LEN; i++)
		b.version_uid[i] = (uint8_t)(0xa0 + i);
	return b;
}

static const uint8_t blob_id_a[KURA_BLOB_ID_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
};

static uint8_t *pattern(size_t n, uint8_t salt)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + salt + (i >> 8));
	return p;
}

/*
 * Seal plain[0..n) feeding it in pieces: max_piece 0 means one write;
 * otherwise random pieces of 0..max_piece bytes (0-byte writes included).
 */
static void seal(const struct kura_secret *dek, const struct kura_binding *b,
		 uint32_t seg, const uint8_t *id, const uint8_t *plain,
		 size_t n, size_t max_piece, struct sinkbuf *out)
{
	struct kura_error err = { 0 };
	struct kura_sealer *s = NULL;
	assert_int_equal(kura_sealer_new(dek, b, seg, id, sink_add, out, &s,
					 &err), KURA_OK);
	size_t off = 0;
	while (off < n) {
		size_t piece = max_piece ? (size_t)(rng() % (max_piece + 1)) :
					   n - off;
		if (piece > n - off)
			piece = n - off;
		assert_int_equal(kura_sealer_write(s, plain + off, piece, &err),
				 KURA_OK);
		off += piece;
	}
	uint64_t total = 0;
	assert_int_equal(kura_sealer_finish(s, &total, &err), KURA_OK);
	assert_int_equal(total, n);
	kura_sealer_free(s);
}

/*
 * Open a whole blob the way the GET path does: header against metadata,
 * then every segment at its offset.  out must hold plain_size bytes.  On
 * failure, checks that the failing segment's output was wiped.
 */
static enum kura_err open_blob(const struct kura_secret *dek,
			       const struct kura_binding *b, uint32_t seg,
			       const uint8_t *id, const uint8_t *blob,
			       size_t blob_len, uint64_t plain_size,
			       uint8_t *out)
{
	struct kura_error err = { 0 };
	if (blob_len < KURA_BLOB_HEADER_LEN)
		return KURA_EIO;
	enum kura_err rc = kura_blob_header_check(blob, seg, id, &err);
	if (rc != KURA_OK)
		return rc;
	struct kura_opener *o = NULL;
	rc = kura_opener_new(dek, b, seg, plain_size, &o, &err);
	if (rc != KURA_OK)
		return rc;
	uint64_t count = kura_seg_count(plain_size, seg);
	for (uint64_t i = 0; i < count && rc == KURA_OK; i++) {
		uint64_t off = kura_seg_offset(i, seg);
		size_t pl = kura_seg_plain_len(i, plain_size, seg);
		size_t ctl = pl + KURA_SEG_TAG_LEN;
		if (off + ctl > blob_len) {
			rc = KURA_EIO;	/* the store would report a short read */
			break;
		}
		uint8_t *dst = out + i * seg;
		memset(dst, 0xAA, pl);
		rc = kura_opener_segment(o, i, blob + off, ctl, dst, &err);
		if (rc != KURA_OK)
			for (size_t k = 0; k < pl; k++)
				assert_int_equal(dst[k], 0);
	}
	kura_opener_free(o);
	return rc;
}

/* The plaintext size whose blob is exactly blob_len long, or -1. */
static int64_t plain_for_blob_len(uint64_t blob_len, uint32_t seg)
{
	if (blob_len < KURA_BLOB_HEADER_LEN + KURA_SEG_TAG_LEN)
		return -1;
	uint64_t body = blob_len - KURA_BLOB_HEADER_LEN;
	uint64_t full = body / (seg + KURA_SEG_TAG_LEN);
	uint64_t rest = body % (seg + KURA_SEG_TAG_LEN);
	uint64_t p;
	if (rest == 0)
		p = full * seg;
	else if (rest >= KURA_SEG_TAG_LEN + 1)
		p = full * seg + rest - KURA_SEG_TAG_LEN;
	else if (full == 0 && rest == KURA_SEG_TAG_LEN)
		p = 0;
	else
		return -1;
	return kura_blob_size(p, seg) == blob_len ? (int64_t)p : -1;
}

/* ---- layout ---- */

static void test_layout(void **state)
{
	(void)state;
	static const struct {
		uint64_t plain;
		uint32_t seg;
		uint64_t count;
		uint64_t blob;
		size_t last_len;
	} v[] = {
		{ 0, SEG, 1, 32 + 16, 0 },
		{ 1, SEG, 1, 32 + 1 + 16, 1 },
		{ SEG - 1, SEG, 1, 32 + SEG - 1 + 16, SEG - 1 },
		{ SEG, SEG, 1, 32 + SEG + 16, SEG },
		{ SEG + 1, SEG, 2, 32 + SEG + 1 + 32, 1 },
		{ 2 * SEG, SEG, 2, 32 + 2 * SEG + 32, SEG },
		{ 3 * SEG + 7, SEG, 4, 32 + 3 * SEG + 7 + 64, 7 },
		{ 262144, 262144, 1, 32 + 262144 + 16, 262144 },
		{ UINT64_C(5) << 30, 262144, 20480,
		  32 + (UINT64_C(5) << 30) + 20480 * 16, 262144 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(kura_seg_count(v[i].plain, v[i].seg), v[i].count);
		assert_int_equal(kura_blob_size(v[i].plain, v[i].seg), v[i].blob);
		assert_int_equal(kura_seg_plain_len(v[i].count - 1, v[i].plain,
						    v[i].seg), v[i].last_len);
		assert_int_equal(kura_seg_plain_len(v[i].count, v[i].plain,
						    v[i].seg), 0);
		/* The last segment ends exactly at the end of the blob. */
		assert_int_equal(kura_seg_offset(v[i].count - 1, v[i].seg) +
					 v[i].last_len + 16, v[i].blob);
		assert_int_equal(plain_for_blob_len(v[i].blob, v[i].seg),
				 (int64_t)v[i].plain);
	}
	assert_int_equal(kura_seg_offset(0, SEG), 32);
	assert_int_equal(kura_seg_offset(1, SEG), 32 + SEG + 16);
	assert_int_equal(kura_seg_offset(5, 262144), 32 + 5 * (262144 + 16));

	static const struct {
		uint32_t seg;
		bool ok;
	} sv[] = {
		{ 0, false }, { 1, false }, { 2048, false }, { 4096, true },
		{ 4097, false }, { 6144, false }, { 8192, true },
		{ 262144, true }, { 16u << 20, true }, { 32u << 20, false },
		{ 0x80000000u, false }, { 0xffffffffu, false },
	};
	for (size_t i = 0; i < sizeof(sv) / sizeof(sv[0]); i++)
		assert_int_equal(kura_seg_size_valid(sv[i].seg), sv[i].ok);
}

static void test_header(void **state)
{
	(void)state;
	uint8_t h[KURA_BLOB_HEADER_LEN];
	kura_blob_header_write(h, 0x40000, blob_id_a);
	static const uint8_t want[KURA_BLOB_HEADER_LEN] = {
		'K', 'U', 'R', 'A', 'B', 'L', 'B', '1',
		0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	};
	assert_memory_equal(h, want, sizeof(want));
	struct kura_error err = { 0 };
	assert_int_equal(kura_blob_header_check(h, 0x40000, blob_id_a, &err),
			 KURA_OK);
	assert_int_equal(kura_blob_header_check(h, 0x20000, blob_id_a, &err),
			 KURA_EINTEGRITY);
	uint8_t other[KURA_BLOB_ID_LEN] = { 0 };
	assert_int_equal(kura_blob_header_check(h, 0x40000, other, &err),
			 KURA_EINTEGRITY);
	for (size_t i = 0; i < sizeof(h); i++) {
		uint8_t t[KURA_BLOB_HEADER_LEN];
		memcpy(t, h, sizeof(t));
		t[i] ^= 0x01;
		kura_error_clear(&err);
		assert_int_equal(kura_blob_header_check(t, 0x40000, blob_id_a,
							&err), KURA_EINTEGRITY);
	}
}

/* The worked example of docs/FORMAT.md §9: keeps the document honest. */
static void test_format_vector(void **state)
{
	(void)state;
	uint8_t k[KURA_DEK_LEN];
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)i;
	struct kura_secret *dek = kura_secret_from(k, sizeof(k));
	struct kura_binding b = { .tenant_id = 1, .bucket_id = 2, .part_no = 0 };
	for (int i = 0; i < KURA_UID_LEN; i++)
		b.version_uid[i] = (uint8_t)(0xf0 + i);
	static const uint8_t id[KURA_BLOB_ID_LEN] = {
		'b', 'l', 'o', 'b', '-', 'i', 'd', '-',
		'f', 'u', 'z', 'z', '-', '0', '0', '1',
	};
	static const uint8_t want[53] = {
		0x4b, 0x55, 0x52, 0x41, 0x42, 0x4c, 0x42, 0x31,
		0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x62, 0x6c, 0x6f, 0x62, 0x2d, 0x69, 0x64, 0x2d,
		0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x30, 0x30, 0x31,
		0x66, 0xd9, 0xd9, 0xb2, 0xda,
		0xca, 0x38, 0x92, 0x1f, 0x2b, 0xd8, 0xd2, 0x1b,
		0xe5, 0xfd, 0x23, 0x29, 0x1e, 0x36, 0x97, 0xd6,
	};
	struct sinkbuf out = { 0 };
	seal(dek, &b, 4096, id, (const uint8_t *)"hello", 5, 0, &out);
	assert_int_equal(out.len, sizeof(want));
	assert_memory_equal(out.p, want, sizeof(want));
	uint8_t back[5];
	assert_int_equal(open_blob(dek, &b, 4096, id, want, sizeof(want), 5,
				   back), KURA_OK);
	assert_memory_equal(back, "hello", 5);
	free(out.p);
	kura_secret_free(dek);
}

/* ---- round trips ---- */

static void test_roundtrip_sizes(void **state)
{
	(void)state;
	static const size_t sizes[] = {
		0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG + 7,
	};
	static const size_t pieces[] = { 0, 1, 7, 100, SEG - 1, SEG, SEG + 1,
					 3 * SEG };
	struct kura_secret *dek = test_key(1);
	struct kura_binding b = test_binding();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *plain = pattern(n, (uint8_t)i);
		struct sinkbuf ref = { 0 };
		seal(dek, &b, SEG, blob_id_a, plain, n, 0, &ref);
		assert_int_equal(ref.len, kura_blob_size(n, SEG));
		/* The header comes first and matches. */
		struct kura_error err = { 0 };
		assert_int_equal(kura_blob_header_check(ref.p, SEG, blob_id_a,
							&err), KURA_OK);
		/* Ciphertext is not the plaintext. */
		if (n >= 16)
			assert_memory_not_equal(ref.p + 32, plain, 16);

		for (size_t j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
			struct sinkbuf got = { 0 };
			seal(dek, &b, SEG, blob_id_a, plain, n, pieces[j], &got);
			/* Deterministic: the same bytes however it is fed. */
			assert_int_equal(got.len, ref.len);
			assert_memory_equal(got.p, ref.p, ref.len);
			free(got.p);
		}
		uint8_t *out = malloc(n ? n : 1);
		assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, ref.p,
					   ref.len, n, out), KURA_OK);
		assert_memory_equal(out, plain, n);
		free(out);
		free(ref.p);
		free(plain);
	}
	kura_secret_free(dek);
}

/* A full segment is held back until a further byte proves it is not the
 * last; the sealer never buffers more than one segment. */
static void test_sealer_holds_one_segment(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(2);
	struct kura_binding b = test_binding();
	struct sinkbuf out = { 0 };
	struct kura_error err = { 0 };
	struct kura_sealer *s = NULL;
	uint8_t *plain = pattern(2 * SEG + 1, 9);
	assert_int_equal(kura_sealer_new(dek, &b, SEG, blob_id_a, sink_add, &out,
					 &s, &err), KURA_OK);
	assert_int_equal(out.len, KURA_BLOB_HEADER_LEN);
	assert_int_equal(kura_sealer_write(s, plain, SEG, &err), KURA_OK);
	assert_int_equal(out.len, KURA_BLOB_HEADER_LEN);
	assert_int_equal(kura_sealer_write(s, plain + SEG, 1, &err), KURA_OK);
	assert_int_equal(out.len, KURA_BLOB_HEADER_LEN + SEG + 16);
	/* The second segment becomes full but is still held back ... */
	assert_int_equal(kura_sealer_write(s, plain + SEG + 1, SEG - 1, &err),
			 KURA_OK);
	assert_int_equal(out.len, KURA_BLOB_HEADER_LEN + SEG + 16);
	/* ... until one more byte arrives. */
	assert_int_equal(kura_sealer_write(s, plain + 2 * SEG, 1, &err),
			 KURA_OK);
	assert_int_equal(out.len, KURA_BLOB_HEADER_LEN + 2 * (SEG + 16));
	uint64_t total = 0;
	assert_int_equal(kura_sealer_finish(s, &total, &err), KURA_OK);
	assert_int_equal(total, 2 * SEG + 1);
	assert_int_equal(out.len, kura_blob_size(2 * SEG + 1, SEG));
	/* finished: no more writes */
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_write(s, plain, 1, &err), KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_finish(s, &total, &err), KURA_ESTATE);
	kura_sealer_free(s);

	uint8_t *back = malloc(2 * SEG + 1);
	assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, out.p, out.len,
				   2 * SEG + 1, back), KURA_OK);
	assert_memory_equal(back, plain, 2 * SEG + 1);
	free(back);
	free(plain);
	free(out.p);
	kura_secret_free(dek);
}

static void test_sink_failure(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(3);
	struct kura_binding b = test_binding();
	struct kura_error err = { 0 };
	struct kura_sealer *s = NULL;
	uint8_t *plain = pattern(3 * SEG, 1);

	/* Header write fails: no sealer. */
	struct sinkbuf f1 = { .fail_at = 1 };
	assert_int_equal(kura_sealer_new(dek, &b, SEG, blob_id_a, sink_add, &f1,
					 &s, &err), KURA_EIO);
	assert_null(s);

	/* Second segment's write fails: sealer is then unusable. */
	struct sinkbuf f3 = { .fail_at = 3 };
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_new(dek, &b, SEG, blob_id_a, sink_add, &f3,
					 &s, &err), KURA_OK);
	assert_int_equal(kura_sealer_write(s, plain, 3 * SEG, &err), KURA_EIO);
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_write(s, plain, 1, &err), KURA_ESTATE);
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_finish(s, NULL, &err), KURA_ESTATE);
	kura_sealer_free(s);
	free(f3.p);

	/* Bad arguments. */
	s = NULL;
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_new(dek, &b, 5000, blob_id_a, sink_add,
					 &f1, &s, &err), KURA_EINVAL);
	struct kura_secret *short_key = kura_secret_new(16);
	kura_error_clear(&err);
	assert_int_equal(kura_sealer_new(short_key, &b, SEG, blob_id_a, sink_add,
					 &f1, &s, &err), KURA_EINVAL);
	assert_null(s);
	kura_secret_free(short_key);
	free(plain);
	kura_secret_free(dek);
}

/* Decrypting in place (out == ct), as a GET path reading into one buffer
 * would, and random access to a middle segment. */
static void test_opener_in_place(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(4);
	struct kura_binding b = test_binding();
	size_t n = 3 * SEG + 7;
	uint8_t *plain = pattern(n, 4);
	struct sinkbuf blob = { 0 };
	seal(dek, &b, SEG, blob_id_a, plain, n, 1000, &blob);

	struct kura_error err = { 0 };
	struct kura_opener *o = NULL;
	assert_int_equal(kura_opener_new(dek, &b, SEG, n, &o, &err), KURA_OK);
	uint8_t *seg = blob.p + kura_seg_offset(2, SEG);
	assert_int_equal(kura_opener_segment(o, 2, seg, SEG + 16, seg, &err),
			 KURA_OK);
	assert_memory_equal(seg, plain + 2 * SEG, SEG);
	uint8_t last[7];
	assert_int_equal(kura_opener_segment(o, 3, blob.p + kura_seg_offset(3, SEG),
					     7 + 16, last, &err), KURA_OK);
	assert_memory_equal(last, plain + 3 * SEG, 7);
	/* A failed segment does not spoil the opener for the next one. */
	uint8_t *bad = malloc(SEG + 16);
	memcpy(bad, blob.p + kura_seg_offset(1, SEG), SEG + 16);
	bad[SEG + 3] ^= 1;
	assert_int_equal(kura_opener_segment(o, 1, bad, SEG + 16, bad, &err),
			 KURA_EINTEGRITY);
	for (size_t k = 0; k < SEG; k++)
		assert_int_equal(bad[k], 0);
	kura_error_clear(&err);
	assert_int_equal(kura_opener_segment(o, 1, blob.p + kura_seg_offset(1, SEG),
					     SEG + 16, bad, &err), KURA_OK);
	assert_memory_equal(bad, plain + SEG, SEG);
	free(bad);
	/* Wrong lengths and indices are refused. */
	kura_error_clear(&err);
	assert_int_equal(kura_opener_segment(o, 3, blob.p + kura_seg_offset(3, SEG),
					     8 + 16, last, &err), KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(kura_opener_segment(o, 4, blob.p, 16, last, &err),
			 KURA_EINVAL);
	kura_opener_free(o);
	free(blob.p);
	free(plain);
	kura_secret_free(dek);
}

/* ---- tampering ---- */

static void test_tamper_every_byte(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(5);
	struct kura_binding b = test_binding();
	size_t n = 2 * SEG + 10;
	uint8_t *plain = pattern(n, 5);
	struct sinkbuf blob = { 0 };
	seal(dek, &b, SEG, blob_id_a, plain, n, 0, &blob);
	uint8_t *out = malloc(n);
	for (size_t i = 0; i < blob.len; i++) {
		uint8_t mask = (uint8_t)(1u << (i % 8));
		blob.p[i] ^= mask;
		enum kura_err rc = open_blob(dek, &b, SEG, blob_id_a, blob.p,
					     blob.len, n, out);
		blob.p[i] ^= mask;
		if (rc != KURA_EINTEGRITY)
			fail_msg("flip at byte %zu: %s", i, kura_errname(rc));
	}
	assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, blob.p, blob.len, n,
				   out), KURA_OK);
	assert_memory_equal(out, plain, n);
	free(out);
	free(blob.p);
	free(plain);
	kura_secret_free(dek);
}

/*
 * Truncate to every shorter length.  The opener is given either the
 * original size (a short read) or, the attacker's best case, the size that
 * matches the truncated length, as if metadata had been changed to agree.
 */
static void test_truncation(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(6);
	struct kura_binding b = test_binding();
	static const size_t sizes[] = { 0, SEG, 3 * SEG, 3 * SEG + 7 };
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		uint8_t *plain = pattern(n, 6);
		struct sinkbuf blob = { 0 };
		seal(dek, &b, SEG, blob_id_a, plain, n, 0, &blob);
		uint8_t *out = malloc(n + 1);
		for (size_t len = 0; len < blob.len; len++) {
			assert_int_not_equal(open_blob(dek, &b, SEG, blob_id_a,
						       blob.p, len, n, out),
					     KURA_OK);
			int64_t p = plain_for_blob_len(len, SEG);
			if (p >= 0)
				assert_int_equal(open_blob(dek, &b, SEG,
							   blob_id_a, blob.p,
							   len, (uint64_t)p,
							   out),
						 KURA_EINTEGRITY);
		}
		free(out);
		free(blob.p);
		free(plain);
	}
	kura_secret_free(dek);
}

/* Dropping the final segment leaves a well-formed shorter blob whose last
 * segment was sealed as non-final. */
static void test_drop_final_segment(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(7);
	struct kura_binding b = test_binding();
	static const size_t sizes[] = { SEG + 1, 2 * SEG + 1, 3 * SEG + 7 };
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		uint8_t *plain = pattern(n, 7);
		struct sinkbuf blob = { 0 };
		seal(dek, &b, SEG, blob_id_a, plain, n, 0, &blob);
		uint64_t count = kura_seg_count(n, SEG);
		uint64_t short_plain = (count - 1) * SEG;
		size_t short_len = (size_t)kura_seg_offset(count - 1, SEG);
		assert_int_equal(kura_blob_size(short_plain, SEG), short_len);
		uint8_t *out = malloc(n);
		assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, blob.p,
					   short_len, short_plain, out),
				 KURA_EINTEGRITY);
		free(out);
		free(blob.p);
		free(plain);
	}
	kura_secret_free(dek);
}

static void test_reorder_segments(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(8);
	struct kura_binding b = test_binding();
	size_t n = 3 * SEG;
	uint8_t *plain = pattern(n, 8);
	struct sinkbuf blob = { 0 };
	seal(dek, &b, SEG, blob_id_a, plain, n, 0, &blob);
	size_t sl = SEG + 16;
	uint8_t *tmp = malloc(sl);
	uint8_t *out = malloc(n);
	static const int pairs[][2] = { { 0, 1 }, { 1, 2 }, { 0, 2 } };
	for (size_t i = 0; i < 3; i++) {
		uint8_t *a = blob.p + kura_seg_offset(pairs[i][0], SEG);
		uint8_t *c = blob.p + kura_seg_offset(pairs[i][1], SEG);
		memcpy(tmp, a, sl);
		memcpy(a, c, sl);
		memcpy(c, tmp, sl);
		assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, blob.p,
					   blob.len, n, out), KURA_EINTEGRITY);
		memcpy(c, a, sl);
		memcpy(a, tmp, sl);
	}
	assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, blob.p, blob.len, n,
				   out), KURA_OK);
	free(out);
	free(tmp);
	free(blob.p);
	free(plain);
	kura_secret_free(dek);
}

/* Two blobs under the same DEK (which kura never does) but different
 * bindings: the AAD alone must stop a segment moving between them. */
static void test_splice_between_blobs(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(9);
	struct kura_binding b1 = test_binding();
	struct kura_binding b2 = b1;
	b2.part_no = 4;
	size_t n = 2 * SEG + 5;
	uint8_t *plain = pattern(n, 9);
	struct sinkbuf x = { 0 }, y = { 0 };
	seal(dek, &b1, SEG, blob_id_a, plain, n, 0, &x);
	seal(dek, &b2, SEG, blob_id_a, plain, n, 0, &y);
	uint8_t *out = malloc(n);
	for (uint64_t i = 0; i < kura_seg_count(n, SEG); i++) {
		size_t off = (size_t)kura_seg_offset(i, SEG);
		size_t sl = kura_seg_plain_len(i, n, SEG) + 16;
		assert_memory_not_equal(x.p + off, y.p + off, sl);
		uint8_t *save = malloc(sl);
		memcpy(save, x.p + off, sl);
		memcpy(x.p + off, y.p + off, sl);
		assert_int_equal(open_blob(dek, &b1, SEG, blob_id_a, x.p, x.len,
					   n, out), KURA_EINTEGRITY);
		memcpy(x.p + off, save, sl);
		free(save);
	}
	assert_int_equal(open_blob(dek, &b1, SEG, blob_id_a, x.p, x.len, n, out),
			 KURA_OK);
	free(out);
	free(x.p);
	free(y.p);
	free(plain);
	kura_secret_free(dek);
}

static void test_binding_and_key_changes(void **state)
{
	(void)state;
	struct kura_secret *dek = test_key(10);
	struct kura_binding b = test_binding();
	size_t n = SEG + 100;
	uint8_t *plain = pattern(n, 10);
	struct sinkbuf blob = { 0 };
	seal(dek, &b, SEG, blob_id_a, plain, n, 0, &blob);
	uint8_t *out = malloc(n);

	struct kura_binding bad[4 + KURA_UID_LEN];
	size_t nbad = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad[i] = b;
	bad[nbad++].tenant_id ^= 1;
	bad[nbad++].bucket_id ^= 1u << 20;
	bad[nbad++].part_no = 0;
	bad[nbad++].part_no = 4;
	for (int i = 0; i < KURA_UID_LEN; i++)
		bad[nbad++].version_uid[i] ^= 0x80;
	for (size_t i = 0; i < nbad; i++) {
		/* Every segment fails on its own, not just the first. */
		struct kura_error err = { 0 };
		struct kura_opener *o = NULL;
		assert_int_equal(kura_opener_new(dek, &bad[i], SEG, n, &o, &err),
				 KURA_OK);
		for (uint64_t s = 0; s < 2; s++) {
			size_t pl = kura_seg_plain_len(s, n, SEG);
			kura_error_clear(&err);
			assert_int_equal(kura_opener_segment(o, s,
					blob.p + kura_seg_offset(s, SEG),
					pl + 16, out, &err), KURA_EINTEGRITY);
		}
		kura_opener_free(o);
	}

	struct kura_secret *wrong = test_key(11);
	assert_int_equal(open_blob(wrong, &b, SEG, blob_id_a, blob.p, blob.len, n,
				   out), KURA_EINTEGRITY);
	kura_secret_free(wrong);

	/* A different segment size is caught by the header ... */
	assert_int_equal(open_blob(dek, &b, 2 * SEG, blob_id_a, blob.p, blob.len,
				   n, out), KURA_EINTEGRITY);
	/* ... and by the AAD when the header is rewritten to agree: a
	 * one-segment blob has the same layout under both sizes. */
	struct sinkbuf small = { 0 };
	seal(dek, &b, SEG, blob_id_a, plain, 100, 0, &small);
	assert_int_equal(open_blob(dek, &b, SEG, blob_id_a, small.p, small.len,
				   100, out), KURA_OK);
	kura_blob_header_write(small.p, 2 * SEG, blob_id_a);
	assert_int_equal(kura_blob_size(100, 2 * SEG), small.len);
	assert_int_equal(open_blob(dek, &b, 2 * SEG, blob_id_a, small.p,
				   small.len, 100, out), KURA_EINTEGRITY);
	free(small.p);
	free(out);
	free(blob.p);
	free(plain);
	kura_secret_free(dek);
}

/* ---- throughput ---- */

static double secs_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

struct count_sink {
	uint64_t bytes;
};

static enum kura_err sink_count(void *ctx, const void *p, size_t n,
				struct kura_error *err)
{
	(void)p;
	(void)err;
	((struct count_sink *)ctx)->bytes += n;
	return KURA_OK;
}

static void test_throughput(void **state)
{
	(void)state;
	const size_t total = 64u << 20;
	const uint32_t seg = KURA_SEG_SIZE_DEFAULT;
	const size_t piece = 64 * 1024;	/* a typical HTTP body piece */
	struct kura_secret *dek = test_key(12);
	struct kura_binding b = test_binding();
	uint8_t *plain = pattern(piece, 12);
	struct kura_error err = { 0 };

	struct count_sink cs = { 0 };
	struct kura_sealer *s = NULL;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kura_sealer_new(dek, &b, seg, blob_id_a, sink_count, &cs,
					 &s, &err), KURA_OK);
	for (size_t off = 0; off < total; off += piece)
		assert_int_equal(kura_sealer_write(s, plain, piece, &err), KURA_OK);
	assert_int_equal(kura_sealer_finish(s, NULL, &err), KURA_OK);
	double seal_s = secs_since(&t0);
	kura_sealer_free(s);
	assert_int_equal(cs.bytes, kura_blob_size(total, seg));

	/* Open needs real ciphertext: seal one segment-sized blob worth and
	 * open it repeatedly under a binding for that size. */
	struct sinkbuf blob = { 0 };
	uint8_t *segplain = pattern(seg, 13);
	seal(dek, &b, seg, blob_id_a, segplain, seg, 0, &blob);
	uint8_t *ct = malloc(seg + 16);
	uint8_t *out = malloc(seg);
	struct kura_opener *o = NULL;
	assert_int_equal(kura_opener_new(dek, &b, seg, seg, &o, &err), KURA_OK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t off = 0; off < total; off += seg) {
		memcpy(ct, blob.p + 32, seg + 16);	/* as if read from store */
		assert_int_equal(kura_opener_segment(o, 0, ct, seg + 16, ct,
						     &err), KURA_OK);
	}
	double open_in_place_s = secs_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t off = 0; off < total; off += seg)
		assert_int_equal(kura_opener_segment(o, 0, blob.p + 32, seg + 16,
						     out, &err), KURA_OK);
	double open_s = secs_since(&t0);
	assert_memory_equal(out, segplain, seg);
	kura_opener_free(o);

	double gb = (double)total / 1e9;
	print_message("# throughput 64 MiB, seg %u: seal %.2f GB/s, "
		      "open %.2f GB/s, open incl. copy-in %.2f GB/s\n",
		      seg, gb / seal_s, gb / open_s, gb / open_in_place_s);
	free(out);
	free(ct);
	free(segplain);
	free(blob.p);
	free(plain);
	kura_secret_free(dek);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_format_vector),
		cmocka_unit_test(test_roundtrip_sizes),
		cmocka_unit_test(test_sealer_holds_one_segment),
		cmocka_unit_test(test_sink_failure),
		cmocka_unit_test(test_opener_in_place),
		cmocka_unit_test(test_tamper_every_byte),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_drop_final_segment),
		cmocka_unit_test(test_reorder_segments),
		cmocka_unit_test(test_splice_between_blobs),
		cmocka_unit_test(test_binding_and_key_changes),
		cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

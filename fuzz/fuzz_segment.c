/*
 * fuzz_segment.c — arbitrary bytes as a blob, opened the way the GET path
 * opens one, under a fixed DEK, binding, blob id and 4 KiB segments.
 *
 * Oracle: sealing is deterministic for a given DEK, so anything the opener
 * accepts must re-seal to exactly the input; otherwise the opener accepted a
 * blob that was never sealed (abort).  A segment that fails must leave its
 * output wiped (abort otherwise).  The seed corpus holds real blobs made
 * with this key (fuzz/corpus/fuzz_segment/, see docs/FORMAT.md §9).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/crypt.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEG KURA_SEG_SIZE_MIN

static const uint8_t blob_id[KURA_BLOB_ID_LEN] = {
	0x62, 0x6c, 0x6f, 0x62, 0x2d, 0x69, 0x64, 0x2d,
	0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x30, 0x30, 0x31,
};

static struct kura_secret *fixed_dek(void)
{
	static struct kura_secret *dek;
	if (dek == NULL) {
		uint8_t k[KURA_DEK_LEN];
		for (size_t i = 0; i < sizeof(k); i++)
			k[i] = (uint8_t)i;
		dek = kura_secret_from(k, sizeof(k));
		if (dek == NULL)
			abort();
	}
	return dek;
}

static struct kura_binding fixed_binding(void)
{
	struct kura_binding b = { .tenant_id = 1, .bucket_id = 2, .part_no = 0 };
	for (int i = 0; i < KURA_UID_LEN; i++)
		b.version_uid[i] = (uint8_t)(0xf0 + i);
	return b;
}

/* The plaintext size whose blob is exactly blob_len long, or -1. */
static int64_t plain_for_blob_len(uint64_t blob_len)
{
	if (blob_len < KURA_BLOB_HEADER_LEN + KURA_SEG_TAG_LEN)
		return -1;
	uint64_t body = blob_len - KURA_BLOB_HEADER_LEN;
	uint64_t full = body / (SEG + KURA_SEG_TAG_LEN);
	uint64_t rest = body % (SEG + KURA_SEG_TAG_LEN);
	uint64_t p = full * SEG;
	if (rest > KURA_SEG_TAG_LEN)
		p += rest - KURA_SEG_TAG_LEN;
	return kura_blob_size(p, SEG) == blob_len ? (int64_t)p : -1;
}

struct cmp_sink {
	const uint8_t *expect;
	size_t len;
	size_t off;
};

static enum kura_err cmp_add(void *ctx, const void *p, size_t n,
			     struct kura_error *err)
{
	struct cmp_sink *c = ctx;
	if (n > c->len - c->off || memcmp(c->expect + c->off, p, n) != 0)
		abort();	/* accepted bytes that were never sealed */
	c->off += n;
	return KURA_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_error err = { 0 };
	struct kura_binding b = fixed_binding();
	struct kura_secret *dek = fixed_dek();
	if (size < KURA_BLOB_HEADER_LEN ||
	    kura_blob_header_check(data, SEG, blob_id, &err) != KURA_OK)
		return 0;
	int64_t plain = plain_for_blob_len(size);
	if (plain < 0)
		return 0;

	struct kura_opener *o = NULL;
	if (kura_opener_new(dek, &b, SEG, (uint64_t)plain, &o, &err) != KURA_OK)
		abort();
	uint8_t *out = malloc((size_t)plain + 1);
	if (out == NULL)
		abort();
	uint64_t count = kura_seg_count((uint64_t)plain, SEG);
	enum kura_err rc = KURA_OK;
	for (uint64_t i = 0; i < count && rc == KURA_OK; i++) {
		size_t pl = kura_seg_plain_len(i, (uint64_t)plain, SEG);
		uint8_t *dst = out + i * SEG;
		memset(dst, 0xAA, pl);
		rc = kura_opener_segment(o, i, data + kura_seg_offset(i, SEG),
					 pl + KURA_SEG_TAG_LEN, dst, &err);
		if (rc != KURA_OK) {
			if (rc != KURA_EINTEGRITY)
				abort();
			for (size_t k = 0; k < pl; k++)
				if (dst[k] != 0)
					abort();	/* leaked output */
		}
	}
	kura_opener_free(o);

	if (rc == KURA_OK) {
		struct cmp_sink c = { data, size, 0 };
		struct kura_sealer *s = NULL;
		uint64_t n = 0;
		if (kura_sealer_new(dek, &b, SEG, blob_id, cmp_add, &c, &s,
				    &err) != KURA_OK ||
		    kura_sealer_write(s, out, (size_t)plain, &err) != KURA_OK ||
		    kura_sealer_finish(s, &n, &err) != KURA_OK ||
		    n != (uint64_t)plain || c.off != size)
			abort();
		kura_sealer_free(s);
	}
	free(out);
	return 0;
}

/*
 * fuzz_chunked.c — libFuzzer target for the aws-chunked decoder.
 *
 * Input: byte 0 selects the mode (b % 3) and the announced trailer
 * ((b / 3) % 5: none, crc32, crc32c, sha1, sha256); byte 1 seeds the split
 * points; the rest is the body.  Signed modes use the key, date, scope and
 * seed signature of the AWS chunked-upload example.
 * Invariants checked: decoding the body in one feed and in arbitrary
 * pieces gives the same result and the same decoded bytes; decoded bytes
 * never outnumber the body's; finish reports what the sink received.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/secret.h"
#include "kura/sigv4.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const trailers[] = {
	NULL, "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
	"x-amz-checksum-sha1", "x-amz-checksum-sha256",
};

static struct kura_secret *fuzz_key(void)
{
	static struct kura_secret *key;
	if (key == NULL) {
		struct kura_secret *s = kura_secret_from(
			"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 40);
		struct kura_error err = { 0 };
		if (s == NULL || kura_sigv4_signing_key(s, "20130524", "us-east-1",
							"s3", &key, &err) != KURA_OK)
			abort();
		kura_secret_free(s);
	}
	return key;
}

static enum kura_err sink(void *ctx, const void *p, size_t n,
			  struct kura_error *err)
{
	enum kura_err rc = kura_buf_add(ctx, p, n);
	return rc == KURA_OK ? rc : kura_fail(err, rc, "sink");
}

struct result {
	enum kura_err feed, finish;
	uint64_t decoded;
	struct kura_buf out;
};

static void decode(enum kura_chunked_mode mode, const char *trailer,
		   const uint8_t *p, size_t n, uint32_t seed, struct result *r)
{
	kura_buf_init(&r->out, n + 1);
	r->feed = r->finish = KURA_OK;
	r->decoded = 0;
	struct kura_error err = { 0 };
	struct kura_chunked *c = NULL;
	if (kura_chunked_new(mode, fuzz_key(), "20130524T000000Z",
			     "20130524/us-east-1/s3/aws4_request",
			     "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
			     trailer, sink, &r->out, &c, &err) != KURA_OK)
		abort();
	size_t i = 0;
	while (i < n && r->feed == KURA_OK) {
		size_t step = n - i;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			step = 1 + (seed >> 16) % 64;
			if (step > n - i)
				step = n - i;
		}
		r->feed = kura_chunked_feed(c, p + i, step, &err);
		i += step;
	}
	if (r->feed == KURA_OK)
		r->finish = kura_chunked_finish(c, &r->decoded, &err);
	kura_chunked_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	enum kura_chunked_mode mode = (enum kura_chunked_mode)(data[0] % 3);
	const char *trailer = trailers[(data[0] / 3) % 5];
	if (mode == KURA_CHUNKED_SIGNED)
		trailer = NULL;
	struct result a, b;
	decode(mode, trailer, data + 2, size - 2, 0, &a);
	decode(mode, trailer, data + 2, size - 2, (uint32_t)data[1] + 1, &b);
	if (a.feed != b.feed || a.finish != b.finish || a.decoded != b.decoded ||
	    a.out.len != b.out.len ||
	    (a.out.len && memcmp(a.out.data, b.out.data, a.out.len) != 0))
		abort();
	if (a.out.len > size - 2 ||
	    (a.feed == KURA_OK && a.finish == KURA_OK && a.decoded != a.out.len))
		abort();
	kura_buf_release(&a.out);
	kura_buf_release(&b.out);
	return 0;
}

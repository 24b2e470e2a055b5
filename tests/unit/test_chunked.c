/*
 * test_chunked.c — unit tests of the aws-chunked decoder (src/auth/chunked.c)
 * and of the flow the S3 layer runs: parse the Authorization header, verify
 * the seed request, then decode the body with the signing key verify handed
 * out.
 *
 * Sources of the expected values (never computed by this code):
 *  - Amazon S3 API Reference, "Signature Calculations for the Authorization
 *    Header: Transferring Payload in Multiple Chunks (Chunked Upload)",
 *    Example PUT Object: 65536 + 1024 bytes of 'a', seed signature 4f232c43...,
 *    chunk signatures ad80c730..., 0055627c..., b6c6ea8a..., seed canonical
 *    request hash cee3fed0...
 *  - Amazon S3 API Reference, "Signature calculations for trailing headers
 *    (chunked uploads)": the same data with seed 106e2a8a..., chunk
 *    signatures b474d886..., 1c1344b1..., 2ca2aba2..., trailer
 *    x-amz-checksum-crc32c:sOO8/Q== and trailer signature d81f82fc...
 *  - CRC catalogue check values for "123456789": CRC-32 0xCBF43926, CRC-32C
 *    0xE3069283; FIPS 180 "abc" digests for SHA-1 and SHA-256.
 *
 * Single-threaded.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kura/buf.h"
#include "kura/secret.h"
#include "kura/sigv4.h"
#include "kura/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_SCOPE "20130524/us-east-1/s3/aws4_request"

#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1 "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG3 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

#define TSEED "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define TSIG1 "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
#define TSIG2 "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
#define TSIG3 "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
#define TTRAILER_SIG \
	"d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"

#define DATA_LEN (65536 + 1024)

/* ------------------------------------------------------------------ */
/* helpers                                                             */

struct sink {
	struct kura_buf out;
	enum kura_err fail_with;	/* non-OK: refuse the first call */
};

static enum kura_err sink_fn(void *ctx, const void *p, size_t n,
			     struct kura_error *err)
{
	struct sink *s = ctx;
	if (s->fail_with != KURA_OK)
		return kura_fail(err, s->fail_with, "sink refuses");
	enum kura_err rc = kura_buf_add(&s->out, p, n);
	return rc == KURA_OK ? rc : kura_fail(err, rc, "sink full");
}

static struct kura_secret *example_key(void)
{
	struct kura_secret *secret = kura_secret_from(S3_SECRET, strlen(S3_SECRET));
	assert_non_null(secret);
	struct kura_secret *key = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_sigv4_signing_key(secret, "20130524", "us-east-1",
						"s3", &key, &err),
			 KURA_OK);
	kura_secret_free(secret);
	return key;
}

static void add_a(struct kura_buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(kura_buf_addch(b, 'a'), KURA_OK);
}

/* The body of the chunked-upload example. */
static void example_body(struct kura_buf *b)
{
	kura_buf_init(b, 1 << 20);
	assert_int_equal(kura_buf_addstr(b, "10000;chunk-signature=" SIG1 "\r\n"),
			 KURA_OK);
	add_a(b, 65536);
	assert_int_equal(kura_buf_addstr(b, "\r\n400;chunk-signature=" SIG2 "\r\n"),
			 KURA_OK);
	add_a(b, 1024);
	assert_int_equal(kura_buf_addstr(b, "\r\n0;chunk-signature=" SIG3 "\r\n\r\n"),
			 KURA_OK);
}

/* The body of the trailing-headers example; blank adds the blank line some
 * encoders put between the final chunk and the trailers, final_crlf the
 * blank line that closes them. */
static void trailer_body(struct kura_buf *b, const char *checksum,
			 const char *tsig, bool blank, bool final_crlf)
{
	kura_buf_init(b, 1 << 20);
	assert_int_equal(kura_buf_addstr(b, "10000;chunk-signature=" TSIG1 "\r\n"),
			 KURA_OK);
	add_a(b, 65536);
	assert_int_equal(kura_buf_addstr(b, "\r\n400;chunk-signature=" TSIG2 "\r\n"),
			 KURA_OK);
	add_a(b, 1024);
	assert_int_equal(kura_buf_addstr(b, "\r\n0;chunk-signature=" TSIG3 "\r\n"),
			 KURA_OK);
	if (blank)
		assert_int_equal(kura_buf_addstr(b, "\r\n"), KURA_OK);
	if (checksum)
		assert_int_equal(kura_buf_addf(b, "x-amz-checksum-crc32c:%s\r\n",
					       checksum),
				 KURA_OK);
	if (tsig)
		assert_int_equal(kura_buf_addf(b, "x-amz-trailer-signature:%s\r\n",
					       tsig),
				 KURA_OK);
	if (final_crlf)
		assert_int_equal(kura_buf_addstr(b, "\r\n"), KURA_OK);
}

/* A tiny deterministic generator for split points. */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

struct run {
	enum kura_err feed_rc;		/* first non-OK feed, or OK */
	enum kura_err finish_rc;
	uint64_t decoded;
	struct sink sink;
};

/* Decode body in the given mode, split as asked; seed selects the random
 * split points.  finish is called only when every feed succeeded. */
static void run_decoder(enum kura_chunked_mode mode, const char *seed_sig,
			const char *trailer, const uint8_t *body, size_t n,
			enum split split, uint32_t seed, struct run *r)
{
	memset(r, 0, sizeof(*r));
	kura_buf_init(&r->sink.out, 1 << 20);
	struct kura_secret *key = mode == KURA_CHUNKED_UNSIGNED_TRAILER
					  ? NULL
					  : example_key();
	struct kura_chunked *c = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_chunked_new(mode, key, S3_DATE, S3_SCOPE, seed_sig,
					  trailer, sink_fn, &r->sink, &c, &err),
			 KURA_OK);
	/* The decoder keeps its own copy of the key. */
	kura_secret_free(key);
	size_t i = 0;
	uint32_t s = seed ? seed : 1;
	while (i < n && r->feed_rc == KURA_OK) {
		size_t step = n - i;
		if (split == SPLIT_BYTES)
			step = 1;
		else if (split == SPLIT_RANDOM)
			step = 1 + next_rand(&s) % 3000;
		if (step > n - i)
			step = n - i;
		r->feed_rc = kura_chunked_feed(c, body + i, step, &err);
		i += step;
	}
	if (r->feed_rc == KURA_OK)
		r->finish_rc = kura_chunked_finish(c, &r->decoded, &err);
	else
		assert_int_equal(err.code, r->feed_rc);
	kura_chunked_free(c);
}

static void run_release(struct run *r)
{
	kura_buf_release(&r->sink.out);
}

/* Decode whole, byte by byte and in random splits: every way must give
 * the same result.  Returns the first failure (feed, else finish). */
static enum kura_err decode_all_ways(enum kura_chunked_mode mode,
				     const char *seed_sig, const char *trailer,
				     const struct kura_buf *body,
				     size_t expect_len)
{
	struct run ref;
	run_decoder(mode, seed_sig, trailer, (const uint8_t *)body->data,
		    body->len, SPLIT_WHOLE, 0, &ref);
	enum kura_err rc = ref.feed_rc != KURA_OK ? ref.feed_rc : ref.finish_rc;
	if (rc == KURA_OK) {
		assert_int_equal(ref.decoded, expect_len);
		assert_int_equal(ref.sink.out.len, expect_len);
	}
	for (int k = 0; k < 6; k++) {
		struct run r;
		run_decoder(mode, seed_sig, trailer, (const uint8_t *)body->data,
			    body->len, k == 0 ? SPLIT_BYTES : SPLIT_RANDOM,
			    (uint32_t)(k * 7919 + 17), &r);
		assert_int_equal(r.feed_rc, ref.feed_rc);
		assert_int_equal(r.finish_rc, ref.finish_rc);
		assert_int_equal(r.decoded, ref.decoded);
		assert_int_equal(r.sink.out.len, ref.sink.out.len);
		if (r.sink.out.len)
			assert_memory_equal(r.sink.out.data, ref.sink.out.data,
					    r.sink.out.len);
		run_release(&r);
	}
	run_release(&ref);
	return rc;
}

/* ------------------------------------------------------------------ */
/* the published examples                                              */

static void test_example_signed(void **state)
{
	(void)state;
	struct kura_buf body;
	example_body(&body);
	assert_int_equal(body.len, 66824);	/* its Content-Length */
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &body,
					 DATA_LEN),
			 KURA_OK);
	struct run r;
	run_decoder(KURA_CHUNKED_SIGNED, SEED, NULL, (const uint8_t *)body.data,
		    body.len, SPLIT_WHOLE, 0, &r);
	for (size_t i = 0; i < r.sink.out.len; i++)
		assert_int_equal(r.sink.out.data[i], 'a');
	run_release(&r);
	/* Upper-case hex in the seed is the same signature. */
	char upper[65];
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(SEED[i] >= 'a' && SEED[i] <= 'f' ? SEED[i] - 32
								    : SEED[i]);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, upper, NULL, &body,
					 DATA_LEN),
			 KURA_OK);
	kura_buf_release(&body);
}

static void test_example_signed_trailer(void **state)
{
	(void)state;
	struct kura_buf body;
	/* As the trailer page shows it, with the variants encoders send. */
	for (int v = 0; v < 4; v++) {
		trailer_body(&body, "sOO8/Q==", TTRAILER_SIG, v & 1, !(v & 2));
		assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
						 "x-amz-checksum-crc32c", &body,
						 DATA_LEN),
				 KURA_OK);
		kura_buf_release(&body);
	}
	/* The announcing header's value may differ in case and spacing. */
	trailer_body(&body, "sOO8/Q==", TTRAILER_SIG, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 " X-Amz-Checksum-CRC32C ", &body,
					 DATA_LEN),
			 KURA_OK);
	kura_buf_release(&body);

	/* Another checksum value: the trailer signature no longer matches. */
	trailer_body(&body, "sOO8/A==", TTRAILER_SIG, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 "x-amz-checksum-crc32c", &body, 0),
			 KURA_EAUTH);
	kura_buf_release(&body);
	/* A tampered trailer signature. */
	char bad[65];
	memcpy(bad, TTRAILER_SIG, 65);
	bad[0] = 'e';
	trailer_body(&body, "sOO8/Q==", bad, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 "x-amz-checksum-crc32c", &body, 0),
			 KURA_EAUTH);
	kura_buf_release(&body);
	/* No trailer signature at all. */
	trailer_body(&body, "sOO8/Q==", NULL, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 "x-amz-checksum-crc32c", &body, 0),
			 KURA_EAUTH);
	kura_buf_release(&body);
	/* The announced trailer missing. */
	trailer_body(&body, NULL, NULL, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 "x-amz-checksum-crc32c", &body, 0),
			 KURA_EPROTO);
	kura_buf_release(&body);
	/* The signature before the checksum it signs. */
	trailer_body(&body, NULL, TTRAILER_SIG, false, false);
	assert_int_equal(kura_buf_addstr(&body, "x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"),
			 KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 "x-amz-checksum-crc32c", &body, 0),
			 KURA_EPROTO);
	kura_buf_release(&body);
	/* A different trailer than the one announced. */
	trailer_body(&body, "sOO8/Q==", TTRAILER_SIG, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, TSEED,
					 "x-amz-checksum-crc32", &body, 0),
			 KURA_EPROTO);
	kura_buf_release(&body);
	/* The chain: the chunks of one example do not verify with the other
	 * example's seed. */
	trailer_body(&body, "sOO8/Q==", TTRAILER_SIG, false, true);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED_TRAILER, SEED,
					 "x-amz-checksum-crc32c", &body, 0),
			 KURA_EAUTH);
	kura_buf_release(&body);
}

/*
 * The flow of the S3 layer: query_is_presigned says no, parse the
 * Authorization header, verify the seed request of the chunked-upload
 * example with the access key's secret, and decode the body with the
 * signing key verify handed out and the request's signature as the seed.
 */
static void test_end_to_end(void **state)
{
	(void)state;
	static const char authz[] =
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
		"us-east-1/s3/aws4_request,SignedHeaders=content-encoding;"
		"content-length;host;x-amz-content-sha256;x-amz-date;"
		"x-amz-decoded-content-length;x-amz-storage-class,Signature=" SEED;
	const struct kura_sigv4_header headers[] = {
		{ KURA_STR_LIT("Host"), KURA_STR_LIT("s3.amazonaws.com") },
		{ KURA_STR_LIT("x-amz-date"), KURA_STR_LIT(S3_DATE) },
		{ KURA_STR_LIT("x-amz-storage-class"),
		  KURA_STR_LIT("REDUCED_REDUNDANCY") },
		{ KURA_STR_LIT("Authorization"), { authz, sizeof(authz) - 1 } },
		{ KURA_STR_LIT("x-amz-content-sha256"),
		  KURA_STR_LIT(KURA_SIGV4_STREAMING_SIGNED) },
		{ KURA_STR_LIT("Content-Encoding"), KURA_STR_LIT("aws-chunked") },
		{ KURA_STR_LIT("x-amz-decoded-content-length"),
		  KURA_STR_LIT("66560") },
		{ KURA_STR_LIT("Content-Length"), KURA_STR_LIT("66824") },
	};
	struct kura_sigv4_request req = {
		.method = KURA_STR_LIT("PUT"),
		.raw_path = KURA_STR_LIT("/examplebucket/chunkObject.txt"),
		.raw_query = KURA_STR_LIT(""),
		.headers = headers,
		.nheaders = ARRAY_LEN(headers),
		.payload_hash = KURA_STR_LIT(KURA_SIGV4_STREAMING_SIGNED),
	};
	assert_false(kura_sigv4_query_is_presigned(req.raw_query));

	struct kura_sigv4 auth;
	assert_int_equal(kura_sigv4_parse_header(headers[3].value,
						 headers[1].value, &auth),
			 KURA_SIGV4_OK);

	/* The seed request's canonical form hashes to the published value. */
	struct kura_buf creq;
	kura_buf_init(&creq, 1 << 16);
	struct kura_error err = { 0 };
	assert_int_equal(kura_sigv4_canonical_request(
				 req.method, req.raw_path, req.raw_query, false,
				 req.headers, req.nheaders, auth.signed_headers,
				 req.payload_hash, &creq, &err),
			 KURA_OK);
	struct kura_buf sts;
	kura_buf_init(&sts, 1024);
	char scope[128];
	kura_sigv4_scope(&auth, scope, sizeof(scope));
	assert_string_equal(scope, S3_SCOPE);
	struct kura_str cs = { creq.data, creq.len };
	assert_int_equal(kura_sigv4_string_to_sign(auth.amz_date, scope, cs, &sts,
						   &err),
			 KURA_OK);
	assert_string_equal(sts.data,
			    "AWS4-HMAC-SHA256\n" S3_DATE "\n" S3_SCOPE "\n"
			    "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455");
	kura_buf_release(&creq);
	kura_buf_release(&sts);

	struct kura_secret *secret = kura_secret_from(S3_SECRET, strlen(S3_SECRET));
	assert_non_null(secret);
	struct kura_secret *key = NULL;
	assert_int_equal(kura_sigv4_verify(&auth, &req, secret, "us-east-1",
					   auth.request_time + 5, 900, &key, &err),
			 KURA_SIGV4_OK);
	assert_non_null(key);
	kura_secret_free(secret);

	struct sink sink = { .fail_with = KURA_OK };
	kura_buf_init(&sink.out, 1 << 20);
	struct kura_chunked *c = NULL;
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, key, auth.amz_date,
					  scope, auth.signature, NULL, sink_fn,
					  &sink, &c, &err),
			 KURA_OK);
	kura_secret_free(key);
	struct kura_buf body;
	example_body(&body);
	assert_int_equal(kura_chunked_feed(c, (const uint8_t *)body.data,
					   body.len, &err),
			 KURA_OK);
	uint64_t decoded = 0;
	assert_int_equal(kura_chunked_finish(c, &decoded, &err), KURA_OK);
	assert_int_equal(decoded, 66560);
	assert_int_equal(sink.out.len, 66560);
	assert_int_equal(err.code, KURA_OK);
	kura_chunked_free(c);
	kura_buf_release(&body);
	kura_buf_release(&sink.out);
}

/* ------------------------------------------------------------------ */
/* signed framing errors                                               */

/* Replace the first occurrence of from by to (same length) in b. */
static void patch(struct kura_buf *b, const char *from, const char *to)
{
	assert_int_equal(strlen(from), strlen(to));
	char *p = memmem(b->data, b->len, from, strlen(from));
	assert_non_null(p);
	memcpy(p, to, strlen(to));
}

static enum kura_err signed_case(const char *body)
{
	struct kura_buf b;
	kura_buf_init(&b, 1 << 16);
	assert_int_equal(kura_buf_addstr(&b, body), KURA_OK);
	enum kura_err rc = decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &b, 0);
	kura_buf_release(&b);
	return rc;
}

static void test_signed_errors(void **state)
{
	(void)state;
	struct kura_buf body;

	/* A flipped data byte. */
	example_body(&body);
	body.data[200] = 'b';
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &body, 0),
			 KURA_EAUTH);
	kura_buf_release(&body);
	/* A byte in the last chunk. */
	example_body(&body);
	body.data[body.len - 100] = 'b';
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &body, 0),
			 KURA_EAUTH);
	kura_buf_release(&body);
	/* A flipped chunk signature, in each chunk. */
	const char *sigs[] = { SIG1, SIG2, SIG3 };
	for (size_t i = 0; i < 3; i++) {
		example_body(&body);
		char bad[65];
		memcpy(bad, sigs[i], 65);
		bad[5] = bad[5] == '0' ? '1' : '0';
		patch(&body, sigs[i], bad);
		assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL,
						 &body, 0),
				 KURA_EAUTH);
		kura_buf_release(&body);
	}
	/* The wrong seed. */
	example_body(&body);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SIG1, NULL, &body, 0),
			 KURA_EAUTH);
	/* Truncated anywhere: the body is incomplete. */
	size_t cuts[] = { 0, 10, 90, 40000, 65626, 66000, body.len - 3,
			  body.len - 2, body.len - 1 };
	for (size_t i = 0; i < ARRAY_LEN(cuts); i++) {
		struct kura_buf t;
		kura_buf_init(&t, 1 << 20);
		assert_int_equal(kura_buf_add(&t, body.data, cuts[i]), KURA_OK);
		assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL,
						 &t, 0),
				 KURA_EPROTO);
		kura_buf_release(&t);
	}
	/* Missing final chunk: the two data chunks alone. */
	struct kura_buf t;
	kura_buf_init(&t, 1 << 20);
	assert_int_equal(kura_buf_add(&t, body.data, 65626 + 1112), KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &t, 0),
			 KURA_EPROTO);
	kura_buf_release(&t);
	/* Bytes after the end. */
	kura_buf_init(&t, 1 << 20);
	assert_int_equal(kura_buf_add(&t, body.data, body.len), KURA_OK);
	assert_int_equal(kura_buf_addstr(&t, "0"), KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &t, 0),
			 KURA_EPROTO);
	kura_buf_release(&t);
	kura_buf_release(&body);

	/* Bad sizes and headers. */
	assert_int_equal(signed_case("1g;chunk-signature=" SIG1 "\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case(";chunk-signature=" SIG1 "\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case("-1;chunk-signature=" SIG1 "\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case(" 10;chunk-signature=" SIG1 "\r\n"), KURA_EPROTO);
	/* Size overflow: more than 64 bits, and more than the body may hold. */
	assert_int_equal(signed_case("10000000000000000;chunk-signature=" SIG1 "\r\n"),
			 KURA_EPROTO);
	assert_int_equal(signed_case("ffffffffffffffff;chunk-signature=" SIG1 "\r\n"),
			 KURA_EPROTO);
	assert_int_equal(signed_case("8000000000000000;chunk-signature=" SIG1 "\r\n"),
			 KURA_EPROTO);
	/* Signature missing, short, not hex, another extension. */
	assert_int_equal(signed_case("400\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case("400;chunk-signature=abc\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case("400;chunk-signature=" SIG1 "0\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case("400;chunk-signaturX=" SIG1 "\r\n"), KURA_EPROTO);
	assert_int_equal(signed_case("400;chunk-signature=z" SIG1 "\r\n"), KURA_EPROTO);
	/* Line endings. */
	assert_int_equal(signed_case("0;chunk-signature=" SIG1 "\n"), KURA_EPROTO);
	assert_int_equal(signed_case("0;chunk-signature=" SIG1 "\rx"), KURA_EPROTO);
	/* Something other than the blank line after the final chunk. */
	example_body(&body);
	body.len -= 2;
	assert_int_equal(kura_buf_addstr(&body, "x\r\n"), KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &body, 0),
			 KURA_EPROTO);
	kura_buf_release(&body);
	/* Trailers are not part of this mode. */
	example_body(&body);
	body.len -= 2;
	assert_int_equal(kura_buf_addstr(&body, "x-amz-checksum-crc32:AAAAAA==\r\n\r\n"),
			 KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &body, 0),
			 KURA_EPROTO);
	kura_buf_release(&body);
	/* An over-long line. */
	struct kura_buf l;
	kura_buf_init(&l, 1 << 16);
	for (int i = 0; i < KURA_CHUNK_LINE_MAX + 10; i++)
		assert_int_equal(kura_buf_addch(&l, '0'), KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_SIGNED, SEED, NULL, &l, 0),
			 KURA_ETOOBIG);
	kura_buf_release(&l);
}

/* A data chunk not followed by CRLF, in the unsigned mode where no
 * signature check comes first. */
static void test_data_crlf(void **state)
{
	(void)state;
	static const char *bodies[] = {
		"3\r\nabcX\n0\r\n\r\n",
		"3\r\nabc\rX0\r\n\r\n",
		"3\r\nabcd\r\n0\r\n\r\n",
		"3\r\nab",
	};
	for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
		struct kura_buf b;
		kura_buf_init(&b, 1024);
		assert_int_equal(kura_buf_addstr(&b, bodies[i]), KURA_OK);
		assert_int_equal(decode_all_ways(KURA_CHUNKED_UNSIGNED_TRAILER, NULL,
						 NULL, &b, 0),
				 KURA_EPROTO);
		kura_buf_release(&b);
	}
}

/* ------------------------------------------------------------------ */
/* unsigned trailers and checksums                                     */

static enum kura_err unsigned_case(const char *data, const char *trailer,
				   const char *trailer_line)
{
	struct kura_buf b;
	kura_buf_init(&b, 1 << 20);
	size_t n = strlen(data);
	/* The data in two chunks, to exercise incremental checksums. */
	size_t half = n / 2;
	assert_int_equal(kura_buf_addf(&b, "%zx\r\n", half), KURA_OK);
	assert_int_equal(kura_buf_add(&b, data, half), KURA_OK);
	assert_int_equal(kura_buf_addf(&b, "\r\n%zx\r\n", n - half), KURA_OK);
	assert_int_equal(kura_buf_add(&b, data + half, n - half), KURA_OK);
	assert_int_equal(kura_buf_addstr(&b, "\r\n0\r\n"), KURA_OK);
	if (trailer_line)
		assert_int_equal(kura_buf_addf(&b, "%s\r\n", trailer_line), KURA_OK);
	assert_int_equal(kura_buf_addstr(&b, "\r\n"), KURA_OK);
	enum kura_err rc = decode_all_ways(KURA_CHUNKED_UNSIGNED_TRAILER, NULL,
					   trailer, &b, n);
	kura_buf_release(&b);
	return rc;
}

static void test_unsigned_trailer(void **state)
{
	(void)state;
	static const struct {
		const char *data, *trailer, *line;
		enum kura_err rc;
	} cases[] = {
		{ "123456789", "x-amz-checksum-crc32",
		  "x-amz-checksum-crc32:y/Q5Jg==", KURA_OK },
		{ "123456789", "x-amz-checksum-crc32",
		  "X-Amz-Checksum-CRC32: y/Q5Jg== ", KURA_OK },
		{ "123456789", "x-amz-checksum-crc32",
		  "x-amz-checksum-crc32:y/Q5Jw==", KURA_EINTEGRITY },
		{ "123456789", "x-amz-checksum-crc32c",
		  "x-amz-checksum-crc32c:4waSgw==", KURA_OK },
		{ "123456789", "x-amz-checksum-crc32c",
		  "x-amz-checksum-crc32c:y/Q5Jg==", KURA_EINTEGRITY },
		{ "abc", "x-amz-checksum-sha256",
		  "x-amz-checksum-sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
		  KURA_OK },
		{ "abd", "x-amz-checksum-sha256",
		  "x-amz-checksum-sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
		  KURA_EINTEGRITY },
		{ "abc", "x-amz-checksum-sha1",
		  "x-amz-checksum-sha1:qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", KURA_OK },
		{ "abc", "x-amz-checksum-sha1",
		  "x-amz-checksum-sha1:qZk+NkcGgWq6PiVxeFDCbJzQ2J4=", KURA_EINTEGRITY },
		/* Non-canonical base64 (stray bits under the padding). */
		{ "abc", "x-amz-checksum-sha1",
		  "x-amz-checksum-sha1:qZk+NkcGgWq6PiVxeFDCbJzQ2J1=", KURA_EINVAL },
		/* Value of the wrong size or not base64. */
		{ "abc", "x-amz-checksum-sha256",
		  "x-amz-checksum-sha256:qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", KURA_EINVAL },
		{ "abc", "x-amz-checksum-crc32", "x-amz-checksum-crc32:****",
		  KURA_EINVAL },
		{ "abc", "x-amz-checksum-crc32", "x-amz-checksum-crc32:", KURA_EINVAL },
		/* Missing, unexpected, duplicated, malformed. */
		{ "abc", "x-amz-checksum-crc32", NULL, KURA_EPROTO },
		{ "abc", NULL, "x-amz-checksum-crc32:NSRBwg==", KURA_EPROTO },
		{ "abc", "x-amz-checksum-crc32", "x-amz-checksum-crc32c:NSRBwg==",
		  KURA_EPROTO },
		{ "abc", "x-amz-checksum-crc32",
		  "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-checksum-crc32:NSRBwg==",
		  KURA_EPROTO },
		{ "abc", "x-amz-checksum-crc32", "x-amz-checksum-crc32 NSRBwg==",
		  KURA_EPROTO },
		{ "abc", "x-amz-checksum-crc32", ":NSRBwg==", KURA_EPROTO },
		{ "abc", "x-amz-checksum-crc32",
		  "x-amz-trailer-signature:" SIG1, KURA_EPROTO },
		{ "abc", NULL, NULL, KURA_OK },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		print_message("# case %zu\n", i);
		assert_int_equal(unsigned_case(cases[i].data, cases[i].trailer,
					       cases[i].line),
				 cases[i].rc);
	}

	/* crc32c of the trailer example's 66560 'a' is published. */
	struct kura_buf d;
	kura_buf_init(&d, 1 << 20);
	add_a(&d, DATA_LEN);
	assert_int_equal(unsigned_case(d.data, "x-amz-checksum-crc32c",
				       "x-amz-checksum-crc32c:sOO8/Q=="),
			 KURA_OK);
	kura_buf_release(&d);

	/* Garbage after the final chunk never accumulates: it fails as a line
	 * (too long, or not a trailer) long before KURA_CHUNK_TRAILER_MAX. */
	struct kura_buf b;
	kura_buf_init(&b, 1 << 16);
	assert_int_equal(kura_buf_addstr(&b, "0\r\n"), KURA_OK);
	for (int i = 0; i < KURA_CHUNK_TRAILER_MAX + 10; i++)
		assert_int_equal(kura_buf_addch(&b, 'x'), KURA_OK);
	assert_int_equal(decode_all_ways(KURA_CHUNKED_UNSIGNED_TRAILER, NULL,
					 "x-amz-checksum-crc32", &b, 0),
			 KURA_ETOOBIG);
	kura_buf_release(&b);
	/* The blank line of a body without trailers, with one announced. */
	kura_buf_init(&b, 1 << 16);
	assert_int_equal(kura_buf_addstr(&b, "0\r\n\r\n"), KURA_OK);
	struct run r;
	run_decoder(KURA_CHUNKED_UNSIGNED_TRAILER, NULL, "x-amz-checksum-crc32",
		    (const uint8_t *)b.data, b.len, SPLIT_WHOLE, 0, &r);
	/* One blank line is tolerated before the trailers, so the body is
	 * not complete yet. */
	assert_int_equal(r.feed_rc, KURA_OK);
	assert_int_equal(r.finish_rc, KURA_EPROTO);
	run_release(&r);
	kura_buf_release(&b);
}

/* The trailer byte limit, in the signed trailer mode where the trailer
 * area is read before anything is checked. */
static void test_trailer_limit(void **state)
{
	(void)state;
	struct kura_buf b;
	trailer_body(&b, NULL, NULL, false, false);
	/* Blank lines are trailer bytes too; after the one tolerated blank
	 * line a second ends the trailers, so pad with a long name instead,
	 * split into lines under KURA_CHUNK_LINE_MAX. */
	assert_int_equal(kura_buf_addstr(&b, "x-amz-checksum-crc32c:"), KURA_OK);
	for (int i = 0; i < KURA_CHUNK_LINE_MAX - 100; i++)
		assert_int_equal(kura_buf_addch(&b, 'A'), KURA_OK);
	assert_int_equal(kura_buf_addstr(&b, "\r\n"), KURA_OK);
	struct run r;
	run_decoder(KURA_CHUNKED_SIGNED_TRAILER, TSEED, "x-amz-checksum-crc32c",
		    (const uint8_t *)b.data, b.len, SPLIT_WHOLE, 0, &r);
	/* The value is longer than any checksum; the trailer signature is
	 * checked first and cannot match it. */
	assert_int_equal(r.feed_rc, KURA_EAUTH);
	run_release(&r);
	kura_buf_release(&b);

	/* A line at exactly KURA_CHUNK_LINE_MAX is accepted as a line; one
	 * more byte is not. */
	for (int extra = 0; extra < 2; extra++) {
		kura_buf_init(&b, 1 << 16);
		assert_int_equal(kura_buf_addstr(&b, "0\r\nx-"), KURA_OK);
		for (int i = 0; i < KURA_CHUNK_LINE_MAX - 2 + extra; i++)
			assert_int_equal(kura_buf_addch(&b, 'a'), KURA_OK);
		assert_int_equal(kura_buf_addstr(&b, "\r\n"), KURA_OK);
		run_decoder(KURA_CHUNKED_UNSIGNED_TRAILER, NULL, NULL,
			    (const uint8_t *)b.data, b.len, SPLIT_WHOLE, 0, &r);
		/* No colon: malformed, unless too long first. */
		assert_int_equal(r.feed_rc, extra ? KURA_ETOOBIG : KURA_EPROTO);
		run_release(&r);
		kura_buf_release(&b);
	}

	/* Total trailer bytes: lines of allowed length, too many of them. */
	kura_buf_init(&b, 1 << 17);
	assert_int_equal(kura_buf_addstr(&b, "0\r\n\r\n"), KURA_OK);
	assert_int_equal(kura_buf_addstr(&b, "x-amz-checksum-crc32:AAAAAA==\r\n"),
			 KURA_OK);
	run_decoder(KURA_CHUNKED_UNSIGNED_TRAILER, NULL, "x-amz-checksum-crc32",
		    (const uint8_t *)b.data, b.len, SPLIT_WHOLE, 0, &r);
	/* crc32 of nothing is 0: the tolerated blank line, then the trailer,
	 * then the closing blank line is missing but the trailer is whole. */
	assert_int_equal(r.feed_rc, KURA_OK);
	assert_int_equal(r.finish_rc, KURA_OK);
	run_release(&r);
	kura_buf_release(&b);

	kura_buf_init(&b, 1 << 17);
	assert_int_equal(kura_buf_addstr(&b, "0\r\n"), KURA_OK);
	while (b.len < KURA_CHUNK_TRAILER_MAX + 100)
		assert_int_equal(kura_buf_addstr(&b, "\t\r\n"), KURA_OK);
	run_decoder(KURA_CHUNKED_UNSIGNED_TRAILER, NULL, "x-amz-checksum-crc32",
		    (const uint8_t *)b.data, b.len, SPLIT_WHOLE, 0, &r);
	/* "\t" alone is not a trailer line. */
	assert_int_equal(r.feed_rc, KURA_EPROTO);
	run_release(&r);
	kura_buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* API                                                                  */

static void test_api(void **state)
{
	(void)state;
	struct sink sink = { .fail_with = KURA_OK };
	kura_buf_init(&sink.out, 1024);
	struct kura_chunked *c = NULL;
	struct kura_error err = { 0 };
	struct kura_secret *key = example_key();

	/* Signed modes need their inputs. */
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, NULL, S3_DATE,
					  S3_SCOPE, SEED, NULL, sink_fn, &sink,
					  &c, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, key, "2013",
					  S3_SCOPE, SEED, NULL, sink_fn, &sink,
					  &c, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, key, S3_DATE,
					  S3_SCOPE, "abc", NULL, sink_fn, &sink,
					  &c, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, key, S3_DATE,
					  S3_SCOPE, "z" SEED, NULL, sink_fn,
					  &sink, &c, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED_TRAILER, key,
					  S3_DATE, S3_SCOPE, SEED,
					  "x-amz-checksum-md5", sink_fn, &sink,
					  &c, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, key, S3_DATE,
					  S3_SCOPE, SEED, "x-amz-checksum-crc32",
					  sink_fn, &sink, &c, &err),
			 KURA_EINVAL);
	assert_null(c);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_SIGNED, key, S3_DATE,
					  S3_SCOPE, SEED, NULL, NULL, &sink, &c,
					  &err),
			 KURA_EINVAL);
	assert_null(c);
	kura_chunked_free(NULL);

	/* The sink's error stops the stream and sticks. */
	kura_error_clear(&err);
	sink.fail_with = KURA_ENOSPC;
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_UNSIGNED_TRAILER, NULL,
					  NULL, NULL, NULL, NULL, sink_fn, &sink,
					  &c, &err),
			 KURA_OK);
	assert_int_equal(kura_chunked_feed(c, (const uint8_t *)"3\r\nabc", 7, &err),
			 KURA_ENOSPC);
	assert_int_equal(err.code, KURA_ENOSPC);
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_feed(c, (const uint8_t *)"\r\n", 2, &err),
			 KURA_ENOSPC);
	kura_error_clear(&err);
	uint64_t decoded = 12345;
	assert_int_equal(kura_chunked_finish(c, &decoded, &err), KURA_ENOSPC);
	assert_int_equal(decoded, 12345);
	kura_chunked_free(c);

	/* An empty feed is fine; finish of an empty body is not. */
	c = NULL;
	sink.fail_with = KURA_OK;
	kura_error_clear(&err);
	assert_int_equal(kura_chunked_new(KURA_CHUNKED_UNSIGNED_TRAILER, NULL,
					  NULL, NULL, NULL, NULL, sink_fn, &sink,
					  &c, &err),
			 KURA_OK);
	assert_int_equal(kura_chunked_feed(c, NULL, 0, &err), KURA_OK);
	assert_int_equal(kura_chunked_finish(c, &decoded, &err), KURA_EPROTO);
	assert_int_equal(decoded, 12345);
	/* A failure is sticky. */
	assert_int_equal(kura_chunked_feed(c, (const uint8_t *)"0\r\n\r\n", 5, &err),
			 KURA_EPROTO);
	kura_chunked_free(c);

	kura_secret_free(key);
	kura_buf_release(&sink.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_signed),
		cmocka_unit_test(test_example_signed_trailer),
		cmocka_unit_test(test_end_to_end),
		cmocka_unit_test(test_signed_errors),
		cmocka_unit_test(test_data_crlf),
		cmocka_unit_test(test_unsigned_trailer),
		cmocka_unit_test(test_trailer_limit),
		cmocka_unit_test(test_api),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

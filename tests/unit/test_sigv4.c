/*
 * test_sigv4.c — unit tests of src/core/sigv4.c against published vectors.
 *
 * Sources of the expected values (never computed by this code):
 *  - Amazon S3 API Reference, "Signature Calculations for the Authorization
 *    Header: Transferring Payload in a Single Chunk", Examples: GET Object
 *    (Range), PUT Object, GET Bucket Lifecycle, GET Bucket (List Objects);
 *    each with its canonical request, the hash of it that ends the string to
 *    sign, and the signature.
 *  - Amazon S3 API Reference, "Authenticating Requests: Using Query
 *    Parameters", the presigned GET example (signature aeeed9bb...).
 *  - The AWS SigV4 test suite (aws-sig-v4-test-suite, as shipped in
 *    awslabs/aws-c-auth tests/aws-signing-test-suite/v4), service "service",
 *    for the cases whose rules S3 shares: get-vanilla, the query ordering
 *    cases, header trimming, repeated headers, get-unreserved, get-utf8,
 *    post-vanilla, post-x-www-form-urlencoded.  Path normalisation cases are
 *    left out on purpose: S3 does not normalise paths.
 * The negative tests walk every enum kura_sigv4_result failure.
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

#include <openssl/evp.h>

#include "kura/buf.h"
#include "kura/encode.h"
#include "kura/secret.h"
#include "kura/sigv4.h"
#include "kura/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_HOST "examplebucket.s3.amazonaws.com"
#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_HOST "example.amazonaws.com"

struct hdr {
	const char *name, *value;
};

struct vector {
	const char *name;
	const char *secret, *amz_date, *region, *service;
	const char *method, *path, *query;
	struct hdr headers[8];
	const char *signed_headers;
	const char *payload_hash;
	const char *creq;      /* published canonical request, or NULL */
	const char *creq_hash; /* last line of the published string to sign */
	const char *signature;
};

static const struct vector vectors[] = {
	/* S3 API Reference, single-chunk examples. */
	{ "s3 GET Object",
	  S3_SECRET,
	  S3_DATE,
	  "us-east-1",
	  "s3",
	  "GET",
	  "/test.txt",
	  "",
	  { { "Host", S3_HOST },
	    { "Range", "bytes=0-9" },
	    { "x-amz-content-sha256", EMPTY_SHA256 },
	    { "x-amz-date", S3_DATE } },
	  "host;range;x-amz-content-sha256;x-amz-date",
	  EMPTY_SHA256,
	  "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
	  "range:bytes=0-9\nx-amz-content-sha256:" EMPTY_SHA256 "\n"
	  "x-amz-date:20130524T000000Z\n\n"
	  "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
	  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41" },
	{ "s3 PUT Object",
	  S3_SECRET,
	  S3_DATE,
	  "us-east-1",
	  "s3",
	  "PUT",
	  "/test$file.text",
	  "",
	  { { "Host", S3_HOST },
	    { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
	    { "x-amz-date", S3_DATE },
	    { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	    { "x-amz-content-sha256",
	      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" } },
	  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
	  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	  "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
	  "host:examplebucket.s3.amazonaws.com\n"
	  "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
	  "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
	  "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
	  "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	  "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
	  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd" },
	{ "s3 GET Bucket Lifecycle",
	  S3_SECRET,
	  S3_DATE,
	  "us-east-1",
	  "s3",
	  "GET",
	  "/",
	  "lifecycle",
	  { { "Host", S3_HOST },
	    { "x-amz-content-sha256", EMPTY_SHA256 },
	    { "x-amz-date", S3_DATE } },
	  "host;x-amz-content-sha256;x-amz-date",
	  EMPTY_SHA256,
	  "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
	  "x-amz-content-sha256:" EMPTY_SHA256
	  "\nx-amz-date:20130524T000000Z\n\n"
	  "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	  "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
	  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543" },
	/* The query arrives out of order; the published request sorts it. */
	{ "s3 GET Bucket (List Objects)",
	  S3_SECRET,
	  S3_DATE,
	  "us-east-1",
	  "s3",
	  "GET",
	  "/",
	  "prefix=J&max-keys=2",
	  { { "Host", S3_HOST },
	    { "x-amz-content-sha256", EMPTY_SHA256 },
	    { "x-amz-date", S3_DATE } },
	  "host;x-amz-content-sha256;x-amz-date",
	  EMPTY_SHA256,
	  "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
	  "x-amz-content-sha256:" EMPTY_SHA256
	  "\nx-amz-date:20130524T000000Z\n\n"
	  "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
	  "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
	  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7" },

	/* aws-sig-v4-test-suite, service "service". */
	{ "suite get-vanilla",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
	  "host;x-amz-date\n" EMPTY_SHA256,
	  "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "suite get-vanilla-query-order-key",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "Param1=value2&Param1=Value1",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
	  "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
	  "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1" },
	{ "suite get-vanilla-query-order-key-case",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "Param2=value2&Param1=value1",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
	{ "suite get-vanilla-query-order-value",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "Param1=value2&Param1=value1",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\n"
	  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
	  NULL,
	  "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694" },
	{ "suite get-header-value-trim",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "",
	  { { "Host", SUITE_HOST },
	    { "My-Header1", " value1" },
	    { "My-Header2", "\"a   b   c\"" },
	    { "X-Amz-Date", SUITE_DATE } },
	  "host;my-header1;my-header2;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
	{ "suite get-header-key-duplicate",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "",
	  { { "Host", SUITE_HOST },
	    { "My-Header1", "value2" },
	    { "My-Header1", "value2" },
	    { "My-Header1", "value1" },
	    { "X-Amz-Date", SUITE_DATE } },
	  "host;my-header1;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
	{ "suite get-header-value-order",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/",
	  "",
	  { { "Host", SUITE_HOST },
	    { "My-Header1", "value4" },
	    { "My-Header1", "value1" },
	    { "My-Header1", "value3" },
	    { "My-Header1", "value2" },
	    { "X-Amz-Date", SUITE_DATE } },
	  "host;my-header1;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
	{ "suite get-unreserved",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
	  "",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
	{ "suite get-utf8",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "GET",
	  "/\xe1\x88\xb4",
	  "",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
	{ "suite post-vanilla",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "POST",
	  "/",
	  "",
	  { { "Host", SUITE_HOST }, { "X-Amz-Date", SUITE_DATE } },
	  "host;x-amz-date",
	  EMPTY_SHA256,
	  NULL,
	  NULL,
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
	{ "suite post-x-www-form-urlencoded",
	  SUITE_SECRET,
	  SUITE_DATE,
	  "us-east-1",
	  "service",
	  "POST",
	  "/",
	  "",
	  { { "Content-Type", "application/x-www-form-urlencoded" },
	    { "Host", SUITE_HOST },
	    { "X-Amz-Date", SUITE_DATE } },
	  "content-type;host;x-amz-date",
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	  "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
	  "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
	  "content-type;host;x-amz-date\n"
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	  "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
	  "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static struct kura_str S(const char *s) {
	return kura_str_from(s);
}

static size_t
to_headers(const struct hdr *in, struct kura_sigv4_header *out)
{
	size_t n = 0;
	while (n < 8 && in[n].name) {
		out[n].name = S(in[n].name);
		out[n].value = S(in[n].value);
		n++;
	}
	return n;
}

static void sha256_hex(const char *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
	kura_hex_encode(md, 32, out);
}

static struct kura_secret *secret_of(const char *s)
{
	struct kura_secret *k = kura_secret_from(s, strlen(s));
	assert_non_null(k);
	return k;
}

/* Canonical request, string to sign, signing key and signature of v by the
 * lower-level functions; the signature goes to sig. */
static void sign_vector(const struct vector *v, char sig[65])
{
	struct kura_sigv4_header h[8];
	size_t nh = to_headers(v->headers, h);
	struct kura_error err = { 0 };
	struct kura_buf creq, sts;
	kura_buf_init(&creq, 1 << 20);
	kura_buf_init(&sts, 4096);

	assert_int_equal(kura_sigv4_canonical_request(
				 S(v->method), S(v->path), S(v->query), false,
				 h, nh, v->signed_headers, S(v->payload_hash),
				 &creq, &err),
			 KURA_OK);
	if (v->creq)
		assert_string_equal(creq.data, v->creq);
	if (v->creq_hash) {
		char hex[65];
		sha256_hex(creq.data, creq.len, hex);
		assert_string_equal(hex, v->creq_hash);
	}

	struct kura_sigv4 a;
	memset(&a, 0, sizeof(a));
	memcpy(a.date, v->amz_date, 8);
	snprintf(a.region, sizeof(a.region), "%s", v->region);
	snprintf(a.service, sizeof(a.service), "%s", v->service);
	char scope[128];
	kura_sigv4_scope(&a, scope, sizeof(scope));
	char want_scope[128];
	snprintf(want_scope, sizeof(want_scope), "%.8s/%s/%s/aws4_request",
		 v->amz_date, v->region, v->service);
	assert_string_equal(scope, want_scope);

	struct kura_str cs = { creq.data, creq.len };
	assert_int_equal(kura_sigv4_string_to_sign(v->amz_date, scope, cs, &sts,
						   &err),
			 KURA_OK);
	if (v->creq_hash) {
		char want[256];
		snprintf(want, sizeof(want), "AWS4-HMAC-SHA256\n%s\n%s\n%s",
			 v->amz_date, scope, v->creq_hash);
		assert_string_equal(sts.data, want);
	}

	struct kura_secret *secret = secret_of(v->secret);
	struct kura_secret *key = NULL;
	assert_int_equal(kura_sigv4_signing_key(secret, a.date, v->region,
						v->service, &key, &err),
			 KURA_OK);
	assert_non_null(key);
	assert_int_equal(key->len, 32);
	kura_sigv4_hmac_hex(key, sts.data, sts.len, sig);

	kura_secret_free(key);
	kura_secret_free(secret);
	kura_buf_release(&creq);
	kura_buf_release(&sts);
}

static void make_auth_header(const struct vector *v, const char *sig, char *out,
			     size_t cap)
{
	snprintf(out, cap,
		 "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
		 "SignedHeaders=%s, Signature=%s",
		 strcmp(v->service, "s3") == 0 ? S3_AK : SUITE_AK, v->amz_date,
		 v->region, v->service, v->signed_headers, sig);
}

static struct kura_sigv4_request request_of(const struct vector *v,
					    struct kura_sigv4_header *h)
{
	struct kura_sigv4_request r;
	r.method = S(v->method);
	r.raw_path = S(v->path);
	r.raw_query = S(v->query);
	r.nheaders = to_headers(v->headers, h);
	r.headers = h;
	r.payload_hash = S(v->payload_hash);
	return r;
}

/* ------------------------------------------------------------------ */
/* published vectors                                                   */

static void test_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(vectors); i++) {
		char sig[65];
		print_message("# vector %s\n", vectors[i].name);
		sign_vector(&vectors[i], sig);
		assert_string_equal(sig, vectors[i].signature);
	}
}

/* The S3 examples end to end: the Authorization header as a client sends
 * it, parsed and verified against the secret. */
static void test_s3_examples_verify(void **state)
{
	(void)state;
	for (size_t i = 0; i < 4; i++) {
		const struct vector *v = &vectors[i];
		char hv[1024];
		make_auth_header(v, v->signature, hv, sizeof(hv));
		struct kura_sigv4 a;
		assert_int_equal(kura_sigv4_parse_header(S(hv), S(v->amz_date),
							 &a),
				 KURA_SIGV4_OK);
		assert_false(a.presigned);
		assert_string_equal(a.access_key, S3_AK);
		assert_string_equal(a.date, "20130524");
		assert_string_equal(a.region, "us-east-1");
		assert_string_equal(a.service, "s3");
		assert_string_equal(a.amz_date, S3_DATE);
		assert_string_equal(a.signed_headers, v->signed_headers);
		assert_string_equal(a.signature, v->signature);
		assert_int_equal(a.request_time, 1369353600);

		struct kura_sigv4_header h[8];
		struct kura_sigv4_request r = request_of(v, h);
		struct kura_secret *secret = secret_of(S3_SECRET);
		struct kura_secret *key = NULL;
		struct kura_error err = { 0 };
		assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1",
						   a.request_time + 60, 900,
						   &key, &err),
				 KURA_SIGV4_OK);
		assert_int_equal(err.code, KURA_OK);
		assert_non_null(key);
		kura_secret_free(key);
		/* Without a place for the key it is not handed out. */
		assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1",
						   a.request_time, 900, NULL,
						   &err),
				 KURA_SIGV4_OK);
		kura_secret_free(secret);
	}
}

#define PRESIGN_QUERY                                                        \
	"X-Amz-Algorithm=AWS4-HMAC-SHA256"                                   \
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3" \
	"%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"    \
	"&X-Amz-SignedHeaders=host&X-Amz-Signature="                         \
	"aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

static const struct kura_sigv4_header presign_headers[] = {
	{ { "Host", 4 }, { S3_HOST, sizeof(S3_HOST) - 1 } },
};

static struct kura_sigv4_request presign_request(const char *query)
{
	struct kura_sigv4_request r;
	r.method = S("GET");
	r.raw_path = S("/test.txt");
	r.raw_query = S(query);
	r.headers = presign_headers;
	r.nheaders = 1;
	r.payload_hash = S(KURA_SIGV4_UNSIGNED_PAYLOAD);
	return r;
}

/* "Authenticating Requests: Using Query Parameters", GET test.txt. */
static void test_presigned_example(void **state)
{
	(void)state;
	assert_true(kura_sigv4_query_is_presigned(S(PRESIGN_QUERY)));
	struct kura_sigv4 a;
	assert_int_equal(kura_sigv4_parse_query(S(PRESIGN_QUERY), &a),
			 KURA_SIGV4_OK);
	assert_true(a.presigned);
	assert_string_equal(a.access_key, S3_AK);
	assert_string_equal(a.region, "us-east-1");
	assert_string_equal(a.service, "s3");
	assert_string_equal(a.amz_date, S3_DATE);
	assert_string_equal(a.signed_headers, "host");
	assert_int_equal(a.expires, 86400);
	assert_string_equal(
		a.signature,
		"aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");

	/* The published canonical request and its hash. */
	struct kura_sigv4_request r = presign_request(PRESIGN_QUERY);
	struct kura_buf creq;
	kura_buf_init(&creq, 1 << 16);
	struct kura_error err = { 0 };
	assert_int_equal(kura_sigv4_canonical_request(
				 r.method, r.raw_path, r.raw_query, true,
				 r.headers, r.nheaders, a.signed_headers,
				 r.payload_hash, &creq, &err),
			 KURA_OK);
	assert_string_equal(
		creq.data,
		"GET\n/test.txt\n"
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
		"AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
		"&X-Amz-SignedHeaders=host\n"
		"host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
	char hex[65];
	sha256_hex(creq.data, creq.len, hex);
	assert_string_equal(
		hex,
		"3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
	kura_buf_release(&creq);

	struct kura_secret *secret = secret_of(S3_SECRET);
	int64_t t = a.request_time;
	assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1", t, 900,
					   NULL, &err),
			 KURA_SIGV4_OK);
	assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1",
					   t + 86400, 900, NULL, &err),
			 KURA_SIGV4_OK);
	assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1",
					   t + 86401, 900, NULL, &err),
			 KURA_SIGV4_EXPIRED);
	assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1", t - 900,
					   900, NULL, &err),
			 KURA_SIGV4_OK);
	assert_int_equal(kura_sigv4_verify(&a, &r, secret, "us-east-1", t - 901,
					   900, NULL, &err),
			 KURA_SIGV4_NOT_YET_VALID);
	assert_int_equal(err.code, KURA_OK);

	/* A tampered signature and a tampered query both fail. */
	struct kura_sigv4 b = a;
	b.signature[10] = b.signature[10] == '0' ? '1' : '0';
	assert_int_equal(kura_sigv4_verify(&b, &r, secret, "us-east-1", t, 900,
					   NULL, &err),
			 KURA_SIGV4_MISMATCH);
	struct kura_sigv4_request r2 = presign_request(
		PRESIGN_QUERY "&response-content-type=text%2Fhtml");
	assert_int_equal(kura_sigv4_verify(&a, &r2, secret, "us-east-1", t, 900,
					   NULL, &err),
			 KURA_SIGV4_MISMATCH);
	assert_int_equal(err.code, KURA_OK);
	kura_secret_free(secret);
}

/* ------------------------------------------------------------------ */
/* canonicalisation rules                                              */

static void expect_line(const char *path, const char *query, bool presigned,
			int line, const char *want)
{
	struct kura_sigv4_header h[1] = { { S("host"), S("h") } };
	struct kura_buf out;
	kura_buf_init(&out, 1 << 16);
	struct kura_error err = { 0 };
	assert_int_equal(kura_sigv4_canonical_request(
				 S("GET"), S(path), S(query), presigned, h, 1,
				 "host", S(EMPTY_SHA256), &out, &err),
			 KURA_OK);
	const char *p = out.data;
	for (int i = 0; i < line; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	const char *e = strchr(p, '\n');
	assert_non_null(e);
	assert_int_equal((size_t)(e - p), strlen(want));
	assert_memory_equal(p, want, strlen(want));
	kura_buf_release(&out);
}

static void test_canonical_uri(void **state)
{
	(void)state;
	expect_line("", "", false, 1, "/");
	expect_line("/", "", false, 1, "/");
	/* Decoded, then encoded exactly once with '/' kept. */
	expect_line("/a%2Bb/c~d", "", false, 1, "/a%2Bb/c~d");
	expect_line("/a+b", "", false, 1, "/a%2Bb");
	expect_line("/%7Ekey", "", false, 1, "/~key");
	expect_line("/a%20b/c d", "", false, 1, "/a%20b/c%20d");
	expect_line("/a%2fb", "", false, 1, "/a/b");
	expect_line("/%c3%a9t%C3%A9", "", false, 1, "/%C3%A9t%C3%A9");
	/* No dot-segment normalisation and no slash merging. */
	expect_line("/a/./b/../c//d", "", false, 1, "/a/./b/../c//d");
}

static void test_canonical_query(void **state)
{
	(void)state;
	expect_line("/", "", false, 2, "");
	expect_line("/", "acl", false, 2, "acl=");
	expect_line("/", "b=2&a=1&a=0", false, 2, "a=0&a=1&b=2");
	expect_line("/", "k=a/b", false, 2, "k=a%2Fb");
	expect_line("/", "k=a%2fb", false, 2, "k=a%2Fb");
	expect_line("/", "k=%7E", false, 2, "k=~");
	expect_line("/", "k=a+b", false, 2, "k=a%2Bb");
	expect_line("/", "k=a%20b", false, 2, "k=a%20b");
	expect_line("/", "k=", false, 2, "k=");
	expect_line("/", "&&k=v&", false, 2, "k=v");
	/* Sorting uses the encoded bytes: '%' (0x25) before 'A'. */
	expect_line("/", "A=1&%2A=2", false, 2, "%2A=2&A=1");
	/* X-Amz-Signature is dropped only for presigned requests. */
	expect_line("/", "X-Amz-Signature=ab&b=1", true, 2, "b=1");
	expect_line("/", "X-Amz-%53ignature=ab&b=1", true, 2, "b=1");
	expect_line("/", "X-Amz-Signature=ab&b=1", false, 2,
		    "X-Amz-Signature=ab&b=1");
}

static void test_canonical_headers(void **state)
{
	(void)state;
	struct kura_sigv4_header h[] = {
		{ S("X-Multi"), S("  a \t  b  ") },
		{ S("HOST"), S("h") },
		{ S("x-multi"), S("c") },
		{ S("X-Empty"), S("") },
	};
	struct kura_buf out;
	kura_buf_init(&out, 4096);
	struct kura_error err = { 0 };
	assert_int_equal(
		kura_sigv4_canonical_request(S("PUT"), S("/k"), S(""), false, h,
					     4, "host;x-empty;x-multi",
					     S("UNSIGNED-PAYLOAD"), &out, &err),
		KURA_OK);
	assert_string_equal(out.data, "PUT\n/k\n\nhost:h\nx-empty:\n"
				      "x-multi:a b,c\n\nhost;x-empty;x-multi\n"
				      "UNSIGNED-PAYLOAD");
	kura_buf_release(&out);
}

static void test_canonical_errors(void **state)
{
	(void)state;
	struct kura_sigv4_header h[] = { { S("Host"), S("h") },
					 { S("x-a"), S("1") } };
	struct kura_buf out;
	kura_buf_init(&out, 4096);
	assert_int_equal(kura_buf_addstr(&out, "keep"), KURA_OK);
	static const struct {
		const char *method, *path, *query, *signed_headers, *hash;
		enum kura_err rc;
	} cases[] = {
		/* A signed header absent from the request. */
		{ "GET", "/", "", "host;x-b", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/%zz", "", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "a/b", "", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "%2Fa", "", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/%4", "", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "a=%g0", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "Host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "x-a;host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "host;host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "host;", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "host x", EMPTY_SHA256, KURA_EINVAL },
		{ "", "/", "", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "G\nT", "/", "", "host", EMPTY_SHA256, KURA_EINVAL },
		{ "GET", "/", "", "host", "", KURA_EINVAL },
		{ "GET", "/", "", "host", "a\nb", KURA_EINVAL },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct kura_error err = { 0 };
		assert_int_equal(kura_sigv4_canonical_request(
					 S(cases[i].method), S(cases[i].path),
					 S(cases[i].query), false, h, 2,
					 cases[i].signed_headers,
					 S(cases[i].hash), &out, &err),
				 cases[i].rc);
		assert_int_equal(err.code, cases[i].rc);
		/* Outputs are written only on success. */
		assert_string_equal(out.data, "keep");
	}
	/* The output buffer's own maximum bounds the result. */
	struct kura_buf small;
	kura_buf_init(&small, 16);
	struct kura_error err = { 0 };
	assert_int_equal(kura_sigv4_canonical_request(
				 S("GET"), S("/"), S(""), false, h, 2, "host",
				 S(EMPTY_SHA256), &small, &err),
			 KURA_ETOOBIG);
	assert_int_equal(small.len, 0);
	/* Too many query parameters. */
	struct kura_buf q;
	kura_buf_init(&q, 1 << 16);
	for (int i = 0; i < 300; i++)
		assert_int_equal(kura_buf_addstr(&q, "a=b&"), KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_sigv4_canonical_request(
				 S("GET"), S("/"), S(q.data), false, h, 2,
				 "host", S(EMPTY_SHA256), &out, &err),
			 KURA_EINVAL);
	kura_buf_release(&q);
	kura_buf_release(&small);
	kura_buf_release(&out);
}

/* ------------------------------------------------------------------ */
/* parsing                                                             */

#define GOOD_SIG \
	"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
#define GOOD_CRED \
	"Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
#define GOOD_SH "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"

static void test_parse_header_forms(void **state)
{
	(void)state;
	const char *ok[] = {
		"AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		",Signature=" GOOD_SIG,
		"AWS4-HMAC-SHA256 " GOOD_CRED ", " GOOD_SH
		", Signature=" GOOD_SIG,
		"AWS4-HMAC-SHA256  Signature=" GOOD_SIG " , " GOOD_CRED
		"," GOOD_SH " ",
		"AWS4-HMAC-SHA256 " GOOD_SH "," GOOD_CRED ",Signature="
		"F0E8BDB87C964420E857BD35B5D6ED310BD44F0170ABA48DD91039C6036BDB41",
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		struct kura_sigv4 a;
		assert_int_equal(kura_sigv4_parse_header(S(ok[i]), S(S3_DATE),
							 &a),
				 KURA_SIGV4_OK);
		assert_string_equal(a.signature, GOOD_SIG);
		assert_string_equal(a.access_key, S3_AK);
		assert_string_equal(
			a.signed_headers,
			"host;range;x-amz-content-sha256;x-amz-date");
	}
}

static void test_parse_header_errors(void **state)
{
	(void)state;
	static const struct {
		const char *h, *date;
		enum kura_sigv4_result res;
	} cases[] = {
		{ "AWS4-HMAC-SHA512 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_UNSUPPORTED },
		{ "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		  S3_DATE, KURA_SIGV4_UNSUPPORTED },
		{ "", S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256", S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_SH ",Signature=" GOOD_SIG, S3_DATE,
		  KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",Signature=" GOOD_SIG, S3_DATE,
		  KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH, S3_DATE,
		  KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH "," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG ",Extra=1",
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG ",",
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH ",Signature=abc",
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH ",Signature="
		  "g0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		  S3_DATE, KURA_SIGV4_MALFORMED },
		/* SignedHeaders must be lowercase, sorted, ';'-separated. */
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=Host;range,"
		  "Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=range;host,"
		  "Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=host;;range,"
		  "Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=host;host,"
		  "Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=,"
		  "Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=host,range,"
		  "Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		/* Credential scope shape. */
		{ "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request/x," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_requests," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=A K/20130524/us-east-1/s3/aws4_request," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=AK/20130524//s3/aws4_request," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/"
		  "averyveryverylongservice/aws4_request," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  S3_DATE, KURA_SIGV4_MALFORMED },
		/* The X-Amz-Date the caller supplies. */
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  "", KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  "20130524T000000", KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  "20131324T000000Z", KURA_SIGV4_MALFORMED },
		{ "AWS4-HMAC-SHA256 " GOOD_CRED "," GOOD_SH
		  ",Signature=" GOOD_SIG,
		  "Fri, 24 May 2013 00:00:00 GMT", KURA_SIGV4_MALFORMED },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct kura_sigv4 a;
		memset(&a, 0x5a, sizeof(a));
		print_message("# case %zu\n", i);
		assert_int_equal(kura_sigv4_parse_header(S(cases[i].h),
							 S(cases[i].date), &a),
				 cases[i].res);
		/* Outputs are written only on success. */
		assert_int_equal(((unsigned char *)&a)[0], 0x5a);
		assert_int_equal(a.signature[0], 0x5a);
	}

	/* Length limits: an over-long access key and an over-long header. */
	char big[10000];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct kura_sigv4 a;
	char hv[12000];
	snprintf(hv, sizeof(hv),
		 "AWS4-HMAC-SHA256 Credential=%.129s/20130524/us-east-1/s3/"
		 "aws4_request," GOOD_SH ",Signature=" GOOD_SIG,
		 big);
	assert_int_equal(kura_sigv4_parse_header(S(hv), S(S3_DATE), &a),
			 KURA_SIGV4_MALFORMED);
	snprintf(hv, sizeof(hv),
		 "AWS4-HMAC-SHA256 Credential=%.128s/20130524/us-east-1/s3/"
		 "aws4_request," GOOD_SH ",Signature=" GOOD_SIG,
		 big);
	assert_int_equal(kura_sigv4_parse_header(S(hv), S(S3_DATE), &a),
			 KURA_SIGV4_OK);
	assert_int_equal(strlen(a.access_key), 128);
	snprintf(hv, sizeof(hv),
		 "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=%s"
		 ",Signature=" GOOD_SIG,
		 big);
	assert_int_equal(kura_sigv4_parse_header(S(hv), S(S3_DATE), &a),
			 KURA_SIGV4_MALFORMED);
	/* A SignedHeaders list of more names than allowed. */
	struct kura_buf sh;
	kura_buf_init(&sh, 4096);
	for (int i = 0; i < 200; i++)
		assert_int_equal(kura_buf_addf(&sh, "%sh%03d", i ? ";" : "", i),
				 KURA_OK);
	snprintf(hv, sizeof(hv),
		 "AWS4-HMAC-SHA256 " GOOD_CRED ",SignedHeaders=%s"
		 ",Signature=" GOOD_SIG,
		 sh.data);
	assert_int_equal(kura_sigv4_parse_header(S(hv), S(S3_DATE), &a),
			 KURA_SIGV4_MALFORMED);
	kura_buf_release(&sh);
}

#define Q_ALG "X-Amz-Algorithm=AWS4-HMAC-SHA256"
#define Q_CRED \
	"X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
#define Q_DATE "X-Amz-Date=20130524T000000Z"
#define Q_SH "X-Amz-SignedHeaders=host"
#define Q_SIG "X-Amz-Signature=" GOOD_SIG

static void test_parse_query_errors(void **state)
{
	(void)state;
	static const struct {
		const char *q;
		enum kura_sigv4_result res;
	} cases[] = {
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=86400&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_OK },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=1&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_OK },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=604800&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_OK },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=604801&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=0&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=-1&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE
			"&X-Amz-Expires=99999999999999999999999&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ "X-Amz-Algorithm=AWS4-HMAC-SHA1&" Q_CRED "&" Q_DATE
		  "&X-Amz-Expires=86400&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_UNSUPPORTED },
		{ "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&" Q_SIG,
		  KURA_SIGV4_UNSUPPORTED },
		{ Q_CRED "&" Q_DATE "&X-Amz-Expires=86400&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_DATE "&X-Amz-Expires=86400&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&X-Amz-Expires=86400&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=86400&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=86400&" Q_SH,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_ALG "&" Q_CRED "&" Q_DATE
			"&X-Amz-Expires=86400&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=86400&" Q_SH
			"&" Q_SIG "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED
			"&X-Amz-Date=2013-05-24&X-Amz-Expires=86400&" Q_SH
			"&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=86400"
			"&X-Amz-SignedHeaders=Host&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=86400&" Q_SH
			"&X-Amz-Signature=%zz",
		  KURA_SIGV4_MALFORMED },
		{ Q_ALG
		  "&X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3&" Q_DATE
		  "&X-Amz-Expires=86400&" Q_SH "&" Q_SIG,
		  KURA_SIGV4_MALFORMED },
		{ "", KURA_SIGV4_MALFORMED },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct kura_sigv4 a;
		memset(&a, 0x5a, sizeof(a));
		print_message("# case %zu\n", i);
		assert_int_equal(kura_sigv4_parse_query(S(cases[i].q), &a),
				 cases[i].res);
		if (cases[i].res != KURA_SIGV4_OK)
			assert_int_equal(a.signature[0], 0x5a);
		else
			assert_true(a.presigned);
	}
}

static void test_query_is_presigned(void **state)
{
	(void)state;
	assert_true(kura_sigv4_query_is_presigned(S("a=1&X-Amz-Signature=x")));
	assert_true(kura_sigv4_query_is_presigned(S("X-Amz-Signature")));
	assert_true(kura_sigv4_query_is_presigned(S("X-Amz-%53ignature=1")));
	assert_false(kura_sigv4_query_is_presigned(S("")));
	assert_false(kura_sigv4_query_is_presigned(S("lifecycle")));
	assert_false(kura_sigv4_query_is_presigned(S("x-amz-signature=1")));
	assert_false(kura_sigv4_query_is_presigned(S("X-Amz-SignatureX=1")));
	assert_false(kura_sigv4_query_is_presigned(S("a=X-Amz-Signature")));

	/* Too many parameters: still recognised as presigned, and refused. */
	struct kura_buf q;
	kura_buf_init(&q, 1 << 16);
	for (int i = 0; i < 300; i++)
		assert_int_equal(kura_buf_addstr(&q, "a=b&"), KURA_OK);
	assert_int_equal(kura_buf_addstr(&q, PRESIGN_QUERY), KURA_OK);
	assert_true(kura_sigv4_query_is_presigned(S(q.data)));
	struct kura_sigv4 a;
	assert_int_equal(kura_sigv4_parse_query(S(q.data), &a),
			 KURA_SIGV4_MALFORMED);
	kura_buf_release(&q);
}

/* ------------------------------------------------------------------ */
/* verification failures                                               */

struct fixture {
	struct kura_sigv4 auth;
	struct kura_sigv4_header h[8];
	struct kura_sigv4_request req;
	struct kura_secret *secret;
};

/* The S3 GET Object example, parsed, with amz_date and credential
 * replaceable. */
static enum kura_sigv4_result fixture_parse(struct fixture *f, const char *cred,
					    const char *sh, const char *sig,
					    const char *amz_date)
{
	char hv[1024];
	snprintf(hv, sizeof(hv),
		 "AWS4-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s",
		 cred ? cred : S3_AK "/20130524/us-east-1/s3/aws4_request",
		 sh ? sh : vectors[0].signed_headers,
		 sig ? sig : vectors[0].signature);
	f->req = request_of(&vectors[0], f->h);
	return kura_sigv4_parse_header(S(hv), S(amz_date ? amz_date : S3_DATE),
				       &f->auth);
}

static enum kura_sigv4_result fixture_verify(struct fixture *f,
					     const char *region, int64_t now)
{
	struct kura_error err = { 0 };
	struct kura_secret *key = (struct kura_secret *)&err; /* sentinel */
	enum kura_sigv4_result res = kura_sigv4_verify(
		&f->auth, &f->req, f->secret, region, now, 900, &key, &err);
	if (res == KURA_SIGV4_OK) {
		assert_true(key != (struct kura_secret *)&err);
		kura_secret_free(key);
	} else {
		/* No key is handed out on failure. */
		assert_true(key == (struct kura_secret *)&err);
	}
	assert_int_equal(err.code, KURA_OK);
	return res;
}

static void test_verify_failures(void **state)
{
	(void)state;
	struct fixture f;
	f.secret = secret_of(S3_SECRET);
	const int64_t t = 1369353600;

	assert_int_equal(fixture_parse(&f, NULL, NULL, NULL, NULL),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t), KURA_SIGV4_OK);

	/* Wrong region. */
	assert_int_equal(fixture_verify(&f, "eu-west-1", t),
			 KURA_SIGV4_WRONG_REGION);
	/* Clock skew, both ways, and its edges. */
	assert_int_equal(fixture_verify(&f, "us-east-1", t + 900),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t - 900),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t + 901),
			 KURA_SIGV4_SKEWED);
	assert_int_equal(fixture_verify(&f, "us-east-1", t - 901),
			 KURA_SIGV4_SKEWED);
	assert_int_equal(fixture_verify(&f, "us-east-1", INT64_MIN),
			 KURA_SIGV4_SKEWED);
	assert_int_equal(fixture_verify(&f, "us-east-1", INT64_MAX),
			 KURA_SIGV4_SKEWED);

	/* Tampered signature. */
	char sig[65];
	memcpy(sig, vectors[0].signature, 65);
	sig[63] = sig[63] == 'a' ? 'b' : 'a';
	assert_int_equal(fixture_parse(&f, NULL, NULL, sig, NULL),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);

	/* Tampered request: another range, another path, another method. */
	assert_int_equal(fixture_parse(&f, NULL, NULL, NULL, NULL),
			 KURA_SIGV4_OK);
	f.h[1].value = S("bytes=0-10");
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);
	f.h[1].value = S("bytes=0-9");
	f.req.raw_path = S("/test.txu");
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);
	f.req.raw_path = S("/test.txt");
	f.req.method = S("PUT");
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);
	f.req.method = S("GET");
	f.req.raw_query = S("x-id=GetObject");
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);
	f.req.raw_query = S("");
	assert_int_equal(fixture_verify(&f, "us-east-1", t), KURA_SIGV4_OK);

	/* Wrong secret. */
	struct kura_secret *good = f.secret;
	f.secret = secret_of("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ");
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);
	kura_secret_free(f.secret);
	f.secret = good;

	/* A signed header missing from the request is malformed. */
	f.req.nheaders = 0;
	f.h[1] = f.h[0];
	f.req.headers = f.h + 1;
	f.req.nheaders = 1;
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MALFORMED);
	f.req = request_of(&vectors[0], f.h);
	f.req.raw_path = S("/%zz");
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MALFORMED);
	f.req = request_of(&vectors[0], f.h);

	/* Wrong service. */
	assert_int_equal(
		fixture_parse(&f, S3_AK "/20130524/us-east-1/ec2/aws4_request",
			      NULL, NULL, NULL),
		KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_WRONG_SERVICE);
	/* Scope date differs from X-Amz-Date. */
	assert_int_equal(fixture_parse(&f, NULL, NULL, NULL,
				       "20130525T000000Z"),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t + 86400),
			 KURA_SIGV4_BAD_DATE);
	/* host not among the signed headers. */
	assert_int_equal(fixture_parse(&f, NULL,
				       "range;x-amz-content-sha256;x-amz-date",
				       NULL, NULL),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_HOST_UNSIGNED);
	assert_int_equal(fixture_parse(&f, NULL, "host-x;range", NULL, NULL),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_HOST_UNSIGNED);

	/* The documented order: region before service before date before host
	 * before time. */
	assert_int_equal(
		fixture_parse(&f, S3_AK "/20130525/eu-west-1/ec2/aws4_request",
			      "range", NULL, NULL),
		KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", 0),
			 KURA_SIGV4_WRONG_REGION);
	assert_int_equal(fixture_verify(&f, "eu-west-1", 0),
			 KURA_SIGV4_WRONG_SERVICE);
	assert_int_equal(
		fixture_parse(&f, S3_AK "/20130525/us-east-1/s3/aws4_request",
			      "range", NULL, NULL),
		KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", 0),
			 KURA_SIGV4_BAD_DATE);
	assert_int_equal(fixture_parse(&f, NULL, "range", NULL, NULL),
			 KURA_SIGV4_OK);
	assert_int_equal(fixture_verify(&f, "us-east-1", 0),
			 KURA_SIGV4_HOST_UNSIGNED);

	/* Missing inputs are a programmer error reported through err. */
	struct kura_error err = { 0 };
	assert_int_equal(kura_sigv4_verify(&f.auth, &f.req, f.secret, NULL, t,
					   900, NULL, &err),
			 KURA_SIGV4_MISMATCH);
	assert_int_equal(err.code, KURA_EINVAL);

	kura_secret_free(f.secret);
}

/* Every x-amz-* header must be signed (x-amz-content-sha256 excepted: the
 * payload-hash line binds it); the names are listed as AWS lists them. */
static void test_unsigned_headers(void **state)
{
	(void)state;
	static const struct kura_sigv4_header hs[] = {
		{ { "Host", 4 }, { "h", 1 } },
		{ { "X-Amz-Tagging", 13 }, { "a=b", 3 } },
		{ { "x-amz-date", 10 }, { S3_DATE, 16 } },
		{ { "X-AMZ-META-A", 12 }, { "1", 1 } },
		{ { "x-amz-content-sha256", 20 }, { "UNSIGNED-PAYLOAD", 16 } },
		{ { "x-amz-tagging", 13 }, { "c=d", 3 } },
		{ { "x-amzn-trace-id", 15 }, { "Root=1", 6 } },
		{ { "x-amz", 5 }, { "", 0 } },
		{ { "Range", 5 }, { "bytes=0-1", 9 } },
		{ { "x-amz-acl", 9 }, { "private", 7 } },
	};
	const char *sh = "host;x-amz-date;x-amz-meta-a";
	struct kura_buf b;
	kura_buf_init(&b, 4096);
	assert_int_equal(kura_sigv4_unsigned_headers(sh, hs, ARRAY_LEN(hs), &b),
			 2);
	assert_int_equal(b.len, strlen("x-amz-tagging, x-amz-acl"));
	assert_memory_equal(b.data, "x-amz-tagging, x-amz-acl", b.len);
	kura_buf_release(&b);
	assert_int_equal(
		kura_sigv4_unsigned_headers(sh, hs, ARRAY_LEN(hs), NULL), 2);
	/* All signed (and the content hash unlisted): nothing to report. */
	assert_int_equal(
		kura_sigv4_unsigned_headers(
			"host;range;x-amz-acl;x-amz-date;x-amz-meta-a;x-amz-tagging",
			hs, ARRAY_LEN(hs), NULL),
		0);
	/* A list that does not fit is cut at a name; the count stays exact. */
	kura_buf_init(&b, 16);
	assert_int_equal(kura_sigv4_unsigned_headers(sh, hs, ARRAY_LEN(hs), &b),
			 2);
	assert_int_equal(b.len, strlen("x-amz-tagging"));
	assert_memory_equal(b.data, "x-amz-tagging", b.len);
	kura_buf_release(&b);
	assert_int_equal(kura_sigv4_unsigned_headers(NULL, hs, 1, NULL), 0);
	assert_int_equal(kura_sigv4_unsigned_headers(sh, NULL, 0, NULL), 0);

	/* verify: a valid signature plus an unsigned x-amz-* header is refused,
	 * after the signature check (a bad signature still says so). */
	struct fixture f;
	f.secret = secret_of(S3_SECRET);
	const int64_t t = 1369353600;
	assert_int_equal(fixture_parse(&f, NULL, NULL, NULL, NULL),
			 KURA_SIGV4_OK);
	f.h[f.req.nheaders].name = S("x-amz-copy-source");
	f.h[f.req.nheaders].value = S("/other/secret");
	f.req.nheaders++;
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_HEADERS_UNSIGNED);
	char sig[65];
	memcpy(sig, vectors[0].signature, 65);
	sig[0] = sig[0] == 'a' ? 'b' : 'a';
	assert_int_equal(fixture_parse(&f, NULL, NULL, sig, NULL),
			 KURA_SIGV4_OK);
	f.h[f.req.nheaders].name = S("x-amz-copy-source");
	f.h[f.req.nheaders].value = S("/other/secret");
	f.req.nheaders++;
	assert_int_equal(fixture_verify(&f, "us-east-1", t),
			 KURA_SIGV4_MISMATCH);
	/* An ordinary extra header is the client's business. */
	assert_int_equal(fixture_parse(&f, NULL, NULL, NULL, NULL),
			 KURA_SIGV4_OK);
	f.h[f.req.nheaders].name = S("User-Agent");
	f.h[f.req.nheaders].value = S("test");
	f.req.nheaders++;
	assert_int_equal(fixture_verify(&f, "us-east-1", t), KURA_SIGV4_OK);
	kura_secret_free(f.secret);
}

static void test_signing_key(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	struct kura_secret *key = NULL;
	struct kura_secret *secret = secret_of(S3_SECRET);
	assert_int_equal(kura_sigv4_signing_key(secret, "20130524", "us-east-1",
						"s3", NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_sigv4_signing_key(secret, "2013052\n",
						"us-east-1", "s3", &key, &err),
			 KURA_EINVAL);
	assert_null(key);
	kura_error_clear(&err);
	assert_int_equal(kura_sigv4_signing_key(NULL, "20130524", "us-east-1",
						"s3", &key, &err),
			 KURA_EINVAL);
	assert_null(key);

	/* The key verify hands out signs what the lower level signs. */
	kura_error_clear(&err);
	assert_int_equal(kura_sigv4_signing_key(secret, "20130524", "us-east-1",
						"s3", &key, &err),
			 KURA_OK);
	char a[65], b[65];
	kura_sigv4_hmac_hex(key, "abc", 3, a);
	kura_sigv4_hmac_hex(key, "abd", 3, b);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
	kura_sigv4_hmac_hex(NULL, "abc", 3, b);
	assert_int_equal(b[0], '\0');
	kura_secret_free(key);
	kura_secret_free(secret);

	/* String to sign refuses malformed date or scope. */
	struct kura_buf out;
	kura_buf_init(&out, 1024);
	kura_error_clear(&err);
	assert_int_equal(kura_sigv4_string_to_sign("2013", "s", S(""), &out,
						   &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(kura_sigv4_string_to_sign(S3_DATE, "a\nb", S(""), &out,
						   &err),
			 KURA_EINVAL);
	assert_int_equal(out.len, 0);
	kura_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_s3_examples_verify),
		cmocka_unit_test(test_presigned_example),
		cmocka_unit_test(test_canonical_uri),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_canonical_headers),
		cmocka_unit_test(test_canonical_errors),
		cmocka_unit_test(test_parse_header_forms),
		cmocka_unit_test(test_parse_header_errors),
		cmocka_unit_test(test_parse_query_errors),
		cmocka_unit_test(test_query_is_presigned),
		cmocka_unit_test(test_verify_failures),
		cmocka_unit_test(test_unsigned_headers),
		cmocka_unit_test(test_signing_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

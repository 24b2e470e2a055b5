/*
 * fuzz_sigv4_query.c — libFuzzer target for kura_sigv4_parse_query and
 * kura_sigv4_query_is_presigned, then kura_sigv4_verify of an accepted
 * query (canonical query with X-Amz-Signature dropped).
 *
 * Input: a raw (percent-encoded) query string.
 * Invariants checked: an accepted query is presigned, carries
 * X-Amz-Signature (so query_is_presigned agrees) and has
 * 1 <= expires <= KURA_SIGV4_MAX_EXPIRES.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/secret.h"
#include "kura/sigv4.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kura_secret *fuzz_secret(void)
{
	static struct kura_secret *s;
	if (s == NULL)
		s = kura_secret_from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				     40);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_str q = { (const char *)data, size };
	bool presigned = kura_sigv4_query_is_presigned(q);
	struct kura_sigv4 a;
	enum kura_sigv4_result res = kura_sigv4_parse_query(q, &a);
	if (res > KURA_SIGV4_HEADERS_UNSIGNED)
		abort();
	if (res != KURA_SIGV4_OK)
		return 0;
	if (!presigned || !a.presigned || a.expires < 1 ||
	    a.expires > KURA_SIGV4_MAX_EXPIRES || strlen(a.signature) != 64 ||
	    strlen(a.amz_date) != 16)
		abort();
	struct kura_sigv4_header h[] = {
		{ KURA_STR_LIT("Host"),
		  KURA_STR_LIT("examplebucket.s3.amazonaws.com") },
	};
	struct kura_sigv4_request req = {
		.method = KURA_STR_LIT("GET"),
		.raw_path = KURA_STR_LIT("/test.txt"),
		.raw_query = q,
		.headers = h,
		.nheaders = 1,
		.payload_hash = KURA_STR_LIT("UNSIGNED-PAYLOAD"),
	};
	struct kura_error err = { 0 };
	res = kura_sigv4_verify(&a, &req, fuzz_secret(), a.region,
				a.request_time, 900, NULL, &err);
	if (res > KURA_SIGV4_HEADERS_UNSIGNED)
		abort();
	return 0;
}

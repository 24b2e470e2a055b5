/*
 * fuzz_sigv4_header.c — libFuzzer target for kura_sigv4_parse_header and,
 * when it accepts, kura_sigv4_verify on a request that carries every
 * signed header.
 *
 * Input: "<Authorization value>\n<X-Amz-Date value>"; without a newline the
 * whole input is the Authorization value and the date is fixed.
 * Invariants checked: the result is a known enum value; an accepted header
 * yields NUL-terminated fields, a 64-digit lowercase signature, a
 * 16-character amz_date and no presigned flag.
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
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	struct kura_str authz = { p, nl ? (size_t)(nl - p) : size };
	struct kura_str date =
		nl ? (struct kura_str){ nl + 1, size - authz.len - 1 } :
		     KURA_STR_LIT("20130524T000000Z");
	struct kura_sigv4 a;
	enum kura_sigv4_result res = kura_sigv4_parse_header(authz, date, &a);
	if (res > KURA_SIGV4_HEADERS_UNSIGNED)
		abort();
	if (res != KURA_SIGV4_OK)
		return 0;
	if (a.presigned || strlen(a.signature) != 64 ||
	    strlen(a.amz_date) != 16 || strlen(a.date) != 8 ||
	    a.access_key[0] == '\0' ||
	    memchr(a.region, '\0', sizeof(a.region)) == NULL ||
	    memchr(a.signed_headers, '\0', sizeof(a.signed_headers)) == NULL)
		abort();
	for (int i = 0; i < 64; i++)
		if (!((a.signature[i] >= '0' && a.signature[i] <= '9') ||
		      (a.signature[i] >= 'a' && a.signature[i] <= 'f')))
			abort();

	/* A request carrying each signed header once. */
	struct kura_sigv4_header h[130];
	size_t nh = 0;
	const char *s = a.signed_headers;
	while (*s && nh < 128) {
		const char *semi = strchr(s, ';');
		size_t len = semi ? (size_t)(semi - s) : strlen(s);
		h[nh].name = (struct kura_str){ s, len };
		h[nh].value = KURA_STR_LIT(" v  v ");
		nh++;
		if (semi == NULL)
			break;
		s = semi + 1;
	}
	/* Every header of this request is signed: none may be reported. */
	if (kura_sigv4_unsigned_headers(a.signed_headers, h, nh, NULL) != 0)
		abort();
	struct kura_sigv4_request req = {
		.method = KURA_STR_LIT("GET"),
		.raw_path = KURA_STR_LIT("/bucket/key"),
		.raw_query = KURA_STR_LIT("a=1&b"),
		.headers = h,
		.nheaders = nh,
		.payload_hash = KURA_STR_LIT("UNSIGNED-PAYLOAD"),
	};
	struct kura_error err = { 0 };
	struct kura_secret *key = NULL;
	res = kura_sigv4_verify(&a, &req, fuzz_secret(), a.region,
				a.request_time, 900, &key, &err);
	if (res > KURA_SIGV4_HEADERS_UNSIGNED)
		abort();
	kura_secret_free(key);
	return 0;
}

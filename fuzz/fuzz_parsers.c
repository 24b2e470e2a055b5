/*
 * fuzz_parsers.c — libFuzzer target for kura's small text parsers that
 * read client or operator input: numbers and sizes (src/core/parse.c),
 * HTTP dates in their three forms, SigV4 and ISO 8601 times
 * (src/core/timefmt.c), HOST:PORT addresses (src/core/config.c), name
 * validators (bucket, tenant, access key id, kura key name, log level),
 * checksum header names and base64 values (src/core/checksum.c) and
 * PKCS#11 key ids and labels (src/keys/pkcs11.c).
 *
 * Input: byte 0 selects the parser (b % 9); the rest is the text.
 * Invariants checked: an accepted time formats back to a text that parses
 * to the same instant; an accepted number stays below its maximum and a
 * decimal formats back to itself (less its leading zeros); an accepted
 * address splits into a host that is a substring of the input; an accepted
 * PKCS#11 id formats back to the input; a checksum value that verifies has
 * the algorithm's digest length.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/auth.h"
#include "kura/checksum.h"
#include "kura/config.h"
#include "kura/encode.h"
#include "kura/kms.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "../src/s3/s3_int.h"
#ifdef KURA_HAVE_PKCS11
#include "../src/keys/pkcs11_int.h"
#endif
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Instants whose year the formatters print with four digits. */
#define YEAR_0000 (-62167219200LL)
#define YEAR_10000 (253402300800LL)

static void times(const char *s, size_t n)
{
	int64_t a, b;
	char out[KURA_TIME_HTTP_LEN];
	if (kura_time_parse_http(s, n, &a) == KURA_OK && a >= YEAR_0000 &&
	    a < YEAR_10000) {
		kura_time_http(a * 1000, out);
		if (kura_time_parse_http(out, strlen(out), &b) != KURA_OK || a != b)
			abort();
	}
	if (kura_time_parse_amz(s, n, &a) == KURA_OK && a >= YEAR_0000 &&
	    a < YEAR_10000) {
		kura_time_amz(a * 1000, out);
		if (kura_time_parse_amz(out, strlen(out), &b) != KURA_OK || a != b)
			abort();
	}
	if (kura_time_parse_iso8601(s, n, &a) == KURA_OK && a >= YEAR_0000 &&
	    a < YEAR_10000) {
		kura_time_iso8601(a * 1000, out);
		if (kura_time_parse_iso8601(out, strlen(out), &b) != KURA_OK || a != b)
			abort();
	}
}

static void numbers(const char *s, size_t n, const char *cs)
{
	uint64_t v, max = n > 0 ? (uint64_t)(uint8_t)s[0] * 1000003u : 0;
	char out[32];
	if (kura_parse_u64(s, n, UINT64_MAX, &v) == KURA_OK) {
		size_t z = 0;	/* leading zeros are accepted */
		while (z + 1 < n && s[z] == '0')
			z++;
		snprintf(out, sizeof(out), "%" PRIu64, v);
		if (strlen(out) != n - z || memcmp(out, s + z, n - z) != 0)
			abort();
	}
	if (kura_parse_u64(s, n, max, &v) == KURA_OK && v > max)
		abort();
	if (kura_parse_hex_u64(s, n, &v) == KURA_OK && (n == 0 || n > 16))
		abort();
	(void)kura_parse_size(cs, &v);
}

static void address(const char *cs)
{
	char host[256];
	uint16_t port = 0;
	struct kura_error err = { 0 };
	if (kura_config_split_addr(cs, host, sizeof(host), &port, &err) == KURA_OK &&
	    (port == 0 || strstr(cs, host) == NULL))
		abort();
}

static void names(const char *cs)
{
	(void)s3_bucket_name_valid(cs);
	(void)kura_auth_tenant_name_valid(cs);
	(void)kura_auth_access_key_id_valid(cs);
	(void)kura_kms_name_valid(cs);
	(void)kura_log_level_parse(cs);
}

static void checksums(const char *s, size_t n)
{
	/* "name:value": the name selects the algorithm, the value is checked
	 * against the digest of the empty string. */
	const char *colon = memchr(s, ':', n);
	struct kura_str name = { s, colon ? (size_t)(colon - s) : n };
	struct kura_str value = colon ? (struct kura_str){ colon + 1, n - name.len - 1 }
				      : (struct kura_str){ "", 0 };
	enum kura_checksum_algo algo = kura_checksum_algo_of(name);
	if (algo == KURA_CHECKSUM_NONE)
		algo = (enum kura_checksum_algo)(1 + n % 4);
	struct kura_checksum c = { 0 };
	struct kura_error err = { 0 };
	if (kura_checksum_init(&c, algo, &err) != KURA_OK)
		abort();
	(void)kura_checksum_update(&c, value.p, value.len / 2, &err);
	if (kura_checksum_verify(&c, value, &err) == KURA_OK) {
		uint8_t raw[64];
		size_t got = 0;
		if (kura_base64_decode(value.p, value.len, raw, sizeof(raw), &got) !=
			    KURA_OK ||
		    got != kura_checksum_len(algo))
			abort();
	}
	kura_checksum_release(&c);
}

static void pkcs11(const char *cs)
{
#ifdef KURA_HAVE_PKCS11
	uint8_t id[P11_RAW_ID_LEN];
	char back[256];
	static const char *const prefixes[] = { "", "kek-", "p11:" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (p11_id_parse(cs, prefixes[i], id)) {
			p11_id_format(id, prefixes[i], back, sizeof(back));
			if (strcmp(back, cs) != 0)
				abort();
		}
	}
	(void)p11_label_valid(cs);
#else
	(void)cs;
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	char *cs = malloc(n + 1);	/* C-string APIs get a copy up to a NUL */
	if (cs == NULL)
		return 0;
	memcpy(cs, s, n);
	cs[n] = '\0';
	switch (data[0] % 9) {
	case 0: times(s, n); break;
	case 1: numbers(s, n, cs); break;
	case 2: address(cs); break;
	case 3: names(cs); break;
	case 4: checksums(s, n); break;
	case 5: pkcs11(cs); break;
	default:
		/* Everything at once, for inputs whose first byte is data. */
		times(s, n);
		numbers(s, n, cs);
		address(cs);
		names(cs);
		checksums(s, n);
		pkcs11(cs);
		break;
	}
	free(cs);
	return 0;
}

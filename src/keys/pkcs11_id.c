/*
 * pkcs11_id.c — the pkcs11 provider's object ids ("p11:" or "p11sig:"
 * followed by the 32 hex digits of CKA_ID) and the labels it accepts.
 * A leaf of the provider: pkcs11.c (KEKs) and pkcs11_sign.c (signing
 * keys) both use it, and neither needs the other for it.
 *
 * Thread-safe (no state).
 */
#include <stdio.h>
#include <string.h>

#include "kura/encode.h"
#include "pkcs11_int.h"
#include "kura/banned.h"

bool p11_id_parse(const char *text, const char *prefix,
		  uint8_t out[P11_RAW_ID_LEN])
{
	if (text == NULL)
		return false;
	size_t plen = strlen(prefix);
	size_t want = plen + 2 * P11_RAW_ID_LEN;
	if (strnlen(text, want + 1) != want || memcmp(text, prefix, plen) != 0)
		return false;
	const char *hex = text + plen;
	for (size_t i = 0; i < 2 * P11_RAW_ID_LEN; i++) {
		char c = hex[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return kura_hex_decode(hex, 2 * P11_RAW_ID_LEN, out, P11_RAW_ID_LEN) ==
	       KURA_OK;
}

void p11_id_format(const uint8_t id[P11_RAW_ID_LEN], const char *prefix,
		   char *out, size_t cap)
{
	char hex[2 * P11_RAW_ID_LEN + 1];
	kura_hex_encode(id, P11_RAW_ID_LEN, hex);
	snprintf(out, cap, "%s%s", prefix, hex);
}

bool p11_label_valid(const char *label)
{
	if (label == NULL)
		return true;
	size_t n = strnlen(label, P11_KEK_LABEL_MAX + 1);
	if (n > P11_KEK_LABEL_MAX || !kura_utf8_valid(label, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

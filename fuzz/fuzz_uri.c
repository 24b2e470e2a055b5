/*
 * fuzz_uri.c — libFuzzer target for the encodings of src/core/encode.c:
 * percent-decoding and -encoding, base64, hex, UTF-8 validation.
 *
 * Invariants checked: encode then decode is the identity (URI, base64,
 * hex); decoders never succeed with more output than the input allows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/encode.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct kura_buf a, b;

	kura_buf_init(&a, size + 1);
	if (kura_uri_decode(s, size, &a) == KURA_OK && a.len > size)
		abort();
	kura_buf_release(&a);

	kura_buf_init(&a, 3 * size + 1);
	kura_buf_init(&b, 3 * size + 1);
	if (kura_uri_encode(s, size, (size & 1) != 0, &a) != KURA_OK ||
	    kura_uri_decode(a.data, a.len, &b) != KURA_OK || b.len != size ||
	    (size && memcmp(b.data, data, size) != 0))
		abort();
	kura_buf_release(&a);
	kura_buf_release(&b);

	kura_buf_init(&a, 2 * size + 8);
	uint8_t *out = malloc(size + 3);
	size_t n = 0;
	if (out == NULL || kura_base64_encode(data, size, &a) != KURA_OK ||
	    kura_base64_decode(a.data, a.len, out, size + 3, &n) != KURA_OK || n != size ||
	    (size && memcmp(out, data, size) != 0))
		abort();
	if (kura_base64_decode(s, size, out, size + 3, &n) == KURA_OK && n > size)
		abort();
	kura_buf_release(&a);

	char *hex = malloc(2 * size + 1);
	if (hex == NULL)
		abort();
	kura_hex_encode(data, size, hex);
	if (kura_hex_decode(hex, 2 * size, out, size) != KURA_OK ||
	    (size && memcmp(out, data, size) != 0))
		abort();
	free(hex);
	free(out);
	(void)kura_utf8_valid(s, size);
	return 0;
}

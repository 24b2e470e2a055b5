/*
 * fuzz_kmip_ttlv.c — libFuzzer target for the KMIP TTLV decoder
 * (src/keys/kmip_ttlv.c) and the response parser (src/keys/kmip_msg.c).
 *
 * Input: a KMIP message as it would arrive from a server.
 * Invariants checked: the frame header agrees with the parser about the
 * length; every accepted message can be walked with the navigation API
 * (each typed getter accepts exactly the items of its type); and it
 * re-encodes to the very same bytes (one encoding per value), except for
 * Big Integer and Interval items, which the encoder does not produce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/kmip_ttlv.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode it into e; false when it holds a type we cannot encode. */
static bool walk(const struct kura_ttlv *it, struct kura_ttlv_enc *e,
		 unsigned depth)
{
	int32_t i32;
	int64_t i64;
	uint32_t u32;
	bool b;
	struct kura_str s;
	const uint8_t *p;
	size_t n;
	if (depth > KURA_TTLV_DEPTH_MAX)
		abort();
	if ((kura_ttlv_get_int(it, &i32) == KURA_OK) != (it->type == KURA_TTLV_INT) ||
	    (kura_ttlv_get_enum(it, &u32) == KURA_OK) != (it->type == KURA_TTLV_ENUM) ||
	    (kura_ttlv_get_text(it, &s) == KURA_OK) != (it->type == KURA_TTLV_TEXT) ||
	    (kura_ttlv_get_bytes(it, &p, &n) == KURA_OK) != (it->type == KURA_TTLV_BYTES))
		abort();
	switch (it->type) {
	case KURA_TTLV_STRUCT: {
		bool ok = true;
		struct kura_ttlv c = { 0 };
		kura_ttlv_begin(e, it->tag);
		while (kura_ttlv_next(it, &c))
			ok = walk(&c, e, depth + 1) && ok;
		kura_ttlv_end(e);
		return ok;
	}
	case KURA_TTLV_INT:
		kura_ttlv_get_int(it, &i32);
		kura_ttlv_int(e, it->tag, i32);
		return true;
	case KURA_TTLV_LONG:
		kura_ttlv_get_long(it, &i64);
		kura_ttlv_long(e, it->tag, i64);
		return true;
	case KURA_TTLV_ENUM:
		kura_ttlv_get_enum(it, &u32);
		kura_ttlv_enum(e, it->tag, u32);
		return true;
	case KURA_TTLV_BOOL:
		kura_ttlv_get_bool(it, &b);
		kura_ttlv_bool(e, it->tag, b);
		return true;
	case KURA_TTLV_TEXT:
		kura_ttlv_get_text(it, &s);
		kura_ttlv_text(e, it->tag, s.p, s.len);
		return true;
	case KURA_TTLV_BYTES:
		kura_ttlv_get_bytes(it, &p, &n);
		kura_ttlv_bytes(e, it->tag, p, n);
		return true;
	case KURA_TTLV_DATETIME:
		kura_ttlv_get_datetime(it, &i64);
		kura_ttlv_datetime(e, it->tag, i64);
		return true;
	default:
		return false;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_ttlv root;
	if (kura_ttlv_parse(data, size, &root, NULL) != KURA_OK)
		return 0;
	if (root.type == KURA_TTLV_STRUCT) {
		size_t total = 0;
		if (kura_ttlv_frame_len(data, KURA_TTLV_SIZE_MAX, &total, NULL) !=
			    KURA_OK ||
		    total != size)
			abort();
	}
	struct kura_buf b;
	struct kura_ttlv_enc e;
	kura_buf_init(&b, KURA_TTLV_SIZE_MAX);
	kura_ttlv_enc_init_buf(&e, &b);
	if (walk(&root, &e, 0)) {
		size_t len = 0;
		if (kura_ttlv_enc_finish(&e, &len, NULL) != KURA_OK || len != size ||
		    memcmp(kura_ttlv_enc_data(&e), data, size) != 0)
			abort();
	}
	kura_buf_release(&b);

	static const uint32_t ops[] = { KURA_KMIP_OP_CREATE, KURA_KMIP_OP_DECRYPT,
					KURA_KMIP_OP_GET_ATTRIBUTES };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct kura_kmip_result res;
		if (kura_kmip_parse_response(data, size, ops[i], &res, NULL) == KURA_OK &&
		    res.has_payload && res.payload.type != KURA_TTLV_STRUCT)
			abort();
	}
	return 0;
}

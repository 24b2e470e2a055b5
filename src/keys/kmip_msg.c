/*
 * kmip_msg.c — the KMIP 1.4 requests the kmip key provider sends and the
 * parsing of their responses (declared in kmip_ttlv.h).
 *
 * Fields are written in the order the KMIP 1.4 specification gives, which
 * servers such as PyKMIP require (they read fields positionally).  The byte
 * layout of each request is pinned by tests against what PyKMIP 0.10's own
 * encoder produces for the same request.
 *
 * Pure functions; thread-safe.
 */
#include <string.h>

#include "kura/kmip_ttlv.h"
#include "kura/banned.h"

static void put_version(struct kura_ttlv_enc *e, struct kura_kmip_version v)
{
	kura_ttlv_begin(e, KURA_KMIP_TAG_PROTOCOL_VERSION);
	kura_ttlv_int(e, KURA_KMIP_TAG_PROTOCOL_VERSION_MAJOR, v.major);
	kura_ttlv_int(e, KURA_KMIP_TAG_PROTOCOL_VERSION_MINOR, v.minor);
	kura_ttlv_end(e);
}

enum kura_err kura_kmip_req_begin(struct kura_ttlv_enc *e,
				  struct kura_kmip_version v, uint32_t op)
{
	kura_ttlv_begin(e, KURA_KMIP_TAG_REQUEST_MESSAGE);
	kura_ttlv_begin(e, KURA_KMIP_TAG_REQUEST_HEADER);
	put_version(e, v);
	kura_ttlv_int(e, KURA_KMIP_TAG_BATCH_COUNT, 1);
	kura_ttlv_end(e);
	kura_ttlv_begin(e, KURA_KMIP_TAG_BATCH_ITEM);
	kura_ttlv_enum(e, KURA_KMIP_TAG_OPERATION, op);
	return kura_ttlv_begin(e, KURA_KMIP_TAG_REQUEST_PAYLOAD);
}

enum kura_err kura_kmip_req_end(struct kura_ttlv_enc *e)
{
	kura_ttlv_end(e);	/* payload */
	kura_ttlv_end(e);	/* batch item */
	return kura_ttlv_end(e);	/* message */
}

enum kura_err kura_kmip_req_discover(struct kura_ttlv_enc *e,
				     struct kura_kmip_version v,
				     const struct kura_kmip_version *offer,
				     size_t n_offer)
{
	kura_kmip_req_begin(e, v, KURA_KMIP_OP_DISCOVER_VERSIONS);
	for (size_t i = 0; i < n_offer; i++)
		put_version(e, offer[i]);
	return kura_kmip_req_end(e);
}

static void put_attr_name(struct kura_ttlv_enc *e, const char *name)
{
	kura_ttlv_begin(e, KURA_KMIP_TAG_ATTRIBUTE);
	kura_ttlv_text(e, KURA_KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
}

enum kura_err kura_kmip_req_symmetric(struct kura_ttlv_enc *e,
				      struct kura_kmip_version v,
				      struct kura_str label,
				      const uint8_t *key, size_t key_len)
{
	kura_kmip_req_begin(e, v, key != NULL ? KURA_KMIP_OP_REGISTER
					      : KURA_KMIP_OP_CREATE);
	kura_ttlv_enum(e, KURA_KMIP_TAG_OBJECT_TYPE,
		       KURA_KMIP_OBJECT_SYMMETRIC_KEY);
	kura_ttlv_begin(e, KURA_KMIP_TAG_TEMPLATE_ATTRIBUTE);
	put_attr_name(e, "Cryptographic Algorithm");
	kura_ttlv_enum(e, KURA_KMIP_TAG_ATTRIBUTE_VALUE, KURA_KMIP_ALG_AES);
	kura_ttlv_end(e);
	put_attr_name(e, "Cryptographic Length");
	kura_ttlv_int(e, KURA_KMIP_TAG_ATTRIBUTE_VALUE, 256);
	kura_ttlv_end(e);
	put_attr_name(e, "Cryptographic Usage Mask");
	kura_ttlv_int(e, KURA_KMIP_TAG_ATTRIBUTE_VALUE, KURA_KMIP_USAGE_KEK);
	kura_ttlv_end(e);
	if (label.len > 0) {
		put_attr_name(e, "Name");
		kura_ttlv_begin(e, KURA_KMIP_TAG_ATTRIBUTE_VALUE);
		kura_ttlv_text(e, KURA_KMIP_TAG_NAME_VALUE, label.p, label.len);
		kura_ttlv_enum(e, KURA_KMIP_TAG_NAME_TYPE, KURA_KMIP_NAME_TEXT);
		kura_ttlv_end(e);
		kura_ttlv_end(e);
	}
	kura_ttlv_end(e);
	if (key != NULL) {
		kura_ttlv_begin(e, KURA_KMIP_TAG_SYMMETRIC_KEY);
		kura_ttlv_begin(e, KURA_KMIP_TAG_KEY_BLOCK);
		kura_ttlv_enum(e, KURA_KMIP_TAG_KEY_FORMAT_TYPE,
			       KURA_KMIP_KEY_FORMAT_RAW);
		kura_ttlv_begin(e, KURA_KMIP_TAG_KEY_VALUE);
		kura_ttlv_bytes(e, KURA_KMIP_TAG_KEY_MATERIAL, key, key_len);
		kura_ttlv_end(e);
		kura_ttlv_enum(e, KURA_KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM,
			       KURA_KMIP_ALG_AES);
		kura_ttlv_int(e, KURA_KMIP_TAG_CRYPTOGRAPHIC_LENGTH,
			      (int32_t)(key_len * 8));
		kura_ttlv_end(e);
		kura_ttlv_end(e);
	}
	return kura_kmip_req_end(e);
}

enum kura_err kura_kmip_req_uid_op(struct kura_ttlv_enc *e,
				   struct kura_kmip_version v, uint32_t op,
				   struct kura_str uid)
{
	kura_kmip_req_begin(e, v, op);
	kura_ttlv_text(e, KURA_KMIP_TAG_UNIQUE_IDENTIFIER, uid.p, uid.len);
	if (op == KURA_KMIP_OP_REVOKE) {
		kura_ttlv_begin(e, KURA_KMIP_TAG_REVOCATION_REASON);
		kura_ttlv_enum(e, KURA_KMIP_TAG_REVOCATION_REASON_CODE,
			       KURA_KMIP_REVOKE_CESSATION);
		kura_ttlv_end(e);
	}
	return kura_kmip_req_end(e);
}

enum kura_err kura_kmip_req_get_state(struct kura_ttlv_enc *e,
				      struct kura_kmip_version v,
				      struct kura_str uid)
{
	kura_kmip_req_begin(e, v, KURA_KMIP_OP_GET_ATTRIBUTES);
	kura_ttlv_text(e, KURA_KMIP_TAG_UNIQUE_IDENTIFIER, uid.p, uid.len);
	kura_ttlv_text(e, KURA_KMIP_TAG_ATTRIBUTE_NAME, "State", 5);
	return kura_kmip_req_end(e);
}

enum kura_err kura_kmip_req_gcm(struct kura_ttlv_enc *e,
				struct kura_kmip_version v, struct kura_str uid,
				const uint8_t *data, size_t data_len,
				const uint8_t *iv, size_t iv_len,
				const uint8_t *aad, size_t aad_len,
				const uint8_t *tag, size_t tag_len)
{
	kura_kmip_req_begin(e, v, tag != NULL ? KURA_KMIP_OP_DECRYPT
					      : KURA_KMIP_OP_ENCRYPT);
	kura_ttlv_text(e, KURA_KMIP_TAG_UNIQUE_IDENTIFIER, uid.p, uid.len);
	/* Cryptographic Parameters fields in specification order: Block
	 * Cipher Mode, ..., Cryptographic Algorithm, ..., Tag Length. */
	kura_ttlv_begin(e, KURA_KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS);
	kura_ttlv_enum(e, KURA_KMIP_TAG_BLOCK_CIPHER_MODE, KURA_KMIP_MODE_GCM);
	kura_ttlv_enum(e, KURA_KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM,
		       KURA_KMIP_ALG_AES);
	kura_ttlv_int(e, KURA_KMIP_TAG_TAG_LENGTH, 16);
	kura_ttlv_end(e);
	kura_ttlv_bytes(e, KURA_KMIP_TAG_DATA, data, data_len);
	kura_ttlv_bytes(e, KURA_KMIP_TAG_IV_COUNTER_NONCE, iv, iv_len);
	/* Empty AAD is the same as none for GCM; omitting it keeps requests
	 * acceptable to servers that reject empty byte strings. */
	if (aad_len > 0)
		kura_ttlv_bytes(e, KURA_KMIP_TAG_AEAD_ADDITIONAL_DATA, aad,
				aad_len);
	if (tag != NULL)
		kura_ttlv_bytes(e, KURA_KMIP_TAG_AEAD_TAG, tag, tag_len);
	return kura_kmip_req_end(e);
}

static enum kura_err child_enum(const struct kura_ttlv *parent, uint32_t tag,
				uint32_t *out)
{
	struct kura_ttlv it;
	if (!kura_ttlv_find(parent, tag, &it))
		return KURA_ENOENT;
	return kura_ttlv_get_enum(&it, out);
}

static enum kura_err child_int(const struct kura_ttlv *parent, uint32_t tag,
			       int32_t *out)
{
	struct kura_ttlv it;
	if (!kura_ttlv_find(parent, tag, &it))
		return KURA_ENOENT;
	return kura_ttlv_get_int(&it, out);
}

enum kura_err kura_kmip_parse_response(const uint8_t *p, size_t n, uint32_t op,
				       struct kura_kmip_result *out,
				       struct kura_error *err)
{
	struct kura_ttlv msg, hdr, ver, item, it;
	struct kura_kmip_result r;
	memset(&r, 0, sizeof(r));
	enum kura_err rc = kura_ttlv_parse(p, n, &msg, err);
	if (rc != KURA_OK)
		return rc;
	if (msg.tag != KURA_KMIP_TAG_RESPONSE_MESSAGE ||
	    msg.type != KURA_TTLV_STRUCT)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: reply is not a Response Message (tag 0x%06x)",
				 (unsigned)msg.tag);
	if (!kura_ttlv_find(&msg, KURA_KMIP_TAG_RESPONSE_HEADER, &hdr) ||
	    !kura_ttlv_find(&hdr, KURA_KMIP_TAG_PROTOCOL_VERSION, &ver) ||
	    child_int(&ver, KURA_KMIP_TAG_PROTOCOL_VERSION_MAJOR,
		      &r.version.major) != KURA_OK ||
	    child_int(&ver, KURA_KMIP_TAG_PROTOCOL_VERSION_MINOR,
		      &r.version.minor) != KURA_OK)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: response header without a protocol version");
	int32_t count = 0;
	if (child_int(&hdr, KURA_KMIP_TAG_BATCH_COUNT, &count) != KURA_OK ||
	    count != 1)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: response has batch count %d, not 1",
				 (int)count);
	size_t items = 0;
	memset(&it, 0, sizeof(it));
	while (kura_ttlv_next(&msg, &it))
		if (it.tag == KURA_KMIP_TAG_BATCH_ITEM) {
			item = it;
			items++;
		}
	if (items != 1 || item.type != KURA_TTLV_STRUCT)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: response has %zu batch items, not 1",
				 items);
	uint32_t rop = 0;
	rc = child_enum(&item, KURA_KMIP_TAG_OPERATION, &rop);
	/* The Operation may be absent from a failure to parse the request. */
	if (rc == KURA_OK && rop != op)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: response answers operation 0x%x, not 0x%x",
				 (unsigned)rop, (unsigned)op);
	if (rc == KURA_EPROTO ||
	    child_enum(&item, KURA_KMIP_TAG_RESULT_STATUS, &r.status) != KURA_OK)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: response without a result status");
	rc = child_enum(&item, KURA_KMIP_TAG_RESULT_REASON, &r.reason);
	if (rc == KURA_EPROTO)
		return kura_fail(err, KURA_EPROTO, "KMIP: bad result reason");
	if (kura_ttlv_find(&item, KURA_KMIP_TAG_RESULT_MESSAGE, &it) &&
	    kura_ttlv_get_text(&it, &r.message) != KURA_OK)
		return kura_fail(err, KURA_EPROTO, "KMIP: bad result message");
	if (kura_ttlv_find(&item, KURA_KMIP_TAG_RESPONSE_PAYLOAD, &r.payload)) {
		if (r.payload.type != KURA_TTLV_STRUCT)
			return kura_fail(err, KURA_EPROTO,
					 "KMIP: response payload is not a structure");
		r.has_payload = true;
	}
	if (r.status == KURA_KMIP_STATUS_SUCCESS && !r.has_payload)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: successful response without a payload");
	if (r.status > KURA_KMIP_STATUS_UNDONE)
		return kura_fail(err, KURA_EPROTO,
				 "KMIP: unknown result status %u",
				 (unsigned)r.status);
	*out = r;
	return KURA_OK;
}

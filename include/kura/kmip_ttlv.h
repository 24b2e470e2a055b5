/*
 * kmip_ttlv.h — KMIP's TTLV encoding (tag, type, length, value) and the few
 * KMIP 1.4 messages the kmip key provider speaks.
 *
 * Wire form of one item: a 3-byte tag (first byte 0x42, or 0x54 for
 * extensions), a 1-byte type, a 4-byte big-endian length, then the value
 * padded with zero bytes to a multiple of 8.  A Structure's value is the
 * concatenation of its children; its length counts them with their padding.
 *
 * Encoder: writes into a bounded struct kura_buf or into fixed caller memory
 * (a struct kura_secret's bytes, for requests that carry key material).
 * Errors are sticky: after the first failure every call is a no-op and
 * kura_ttlv_enc_finish() reports it, so request builders stay linear.
 *
 * Decoder: kura_ttlv_parse() checks a whole message once — tags, types,
 * lengths, zero padding, exact fit of children, nesting depth at most
 * KURA_TTLV_DEPTH_MAX, size at most KURA_TTLV_SIZE_MAX — and yields a view.
 * The navigation calls then walk that validated view without allocating or
 * copying; views borrow the caller's bytes.
 *
 * Everything here is pure (no I/O, no global state) and thread-safe.
 */
#ifndef KURA_KMIP_TTLV_H
#define KURA_KMIP_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/buf.h"
#include "kura/err.h"

#define KURA_TTLV_HDR_LEN 8
#define KURA_TTLV_DEPTH_MAX 16		   /* nesting of structures */
#define KURA_TTLV_SIZE_MAX (1024u * 1024u) /* whole message */

enum kura_ttlv_type {
	KURA_TTLV_STRUCT = 0x01,
	KURA_TTLV_INT = 0x02,	 /* 4 bytes, signed */
	KURA_TTLV_LONG = 0x03,	 /* 8 bytes, signed */
	KURA_TTLV_BIGINT = 0x04, /* multiple of 8 bytes, two's complement */
	KURA_TTLV_ENUM = 0x05,	 /* 4 bytes, unsigned */
	KURA_TTLV_BOOL = 0x06,	 /* 8 bytes, 0 or 1 */
	KURA_TTLV_TEXT = 0x07,	 /* UTF-8, not NUL-terminated */
	KURA_TTLV_BYTES = 0x08,
	KURA_TTLV_DATETIME = 0x09, /* 8 bytes, POSIX seconds, signed */
	KURA_TTLV_INTERVAL = 0x0A, /* 4 bytes, unsigned seconds */
};

/* ---- encoder ---- */

struct kura_ttlv_enc {
	struct kura_buf *buf;		  /* bounded sink, or NULL */
	uint8_t *fixed;			  /* fixed sink when buf is NULL */
	size_t cap, len;		  /* fixed sink only */
	size_t open[KURA_TTLV_DEPTH_MAX]; /* offsets of open structures */
	unsigned depth;
	enum kura_err rc; /* first failure, sticky */
};

/* Encode by appending to b (its max bounds the message). */
void kura_ttlv_enc_init_buf(struct kura_ttlv_enc *e, struct kura_buf *b);
/* Encode into p[0..cap) (e.g. a struct kura_secret's bytes). */
void kura_ttlv_enc_init_fixed(struct kura_ttlv_enc *e, uint8_t *p, size_t cap);

/* Open a Structure; its length is patched by the matching end. */
enum kura_err kura_ttlv_begin(struct kura_ttlv_enc *e, uint32_t tag);
enum kura_err kura_ttlv_end(struct kura_ttlv_enc *e);
enum kura_err kura_ttlv_int(struct kura_ttlv_enc *e, uint32_t tag, int32_t v);
enum kura_err kura_ttlv_long(struct kura_ttlv_enc *e, uint32_t tag, int64_t v);
enum kura_err kura_ttlv_enum(struct kura_ttlv_enc *e, uint32_t tag, uint32_t v);
enum kura_err kura_ttlv_bool(struct kura_ttlv_enc *e, uint32_t tag, bool v);
enum kura_err kura_ttlv_text(struct kura_ttlv_enc *e, uint32_t tag,
			     const char *p, size_t n);
enum kura_err kura_ttlv_bytes(struct kura_ttlv_enc *e, uint32_t tag,
			      const uint8_t *p, size_t n);
enum kura_err kura_ttlv_datetime(struct kura_ttlv_enc *e, uint32_t tag,
				 int64_t posix_seconds);

/* The message is complete: no failure and every structure closed.  On
 * success *len (may be NULL) is the encoded length. */
enum kura_err kura_ttlv_enc_finish(struct kura_ttlv_enc *e, size_t *len,
				   struct kura_error *err);

/* The bytes written so far (buf's data or the fixed area). */
const uint8_t *kura_ttlv_enc_data(const struct kura_ttlv_enc *e);

/* ---- decoder ---- */

/* One validated item: a view into the parsed bytes. */
struct kura_ttlv {
	uint32_t tag;
	uint8_t type;	    /* enum kura_ttlv_type */
	uint32_t len;	    /* value length without padding */
	const uint8_t *val; /* len bytes (children for a Structure) */
};

/* Validate p[0..n) as exactly one item (normally a whole message) and
 * return a view of it.  KURA_EPROTO for anything malformed, KURA_ETOOBIG
 * above KURA_TTLV_SIZE_MAX. */
enum kura_err kura_ttlv_parse(const uint8_t *p, size_t n, struct kura_ttlv *out,
			      struct kura_error *err);

/* From the first 8 bytes of a message on the wire: the total length of the
 * message (header included).  Checks what can be checked before the body
 * arrives: the tag's first byte, a Structure type, a multiple-of-8 length,
 * max (<= KURA_TTLV_SIZE_MAX) not exceeded. */
enum kura_err kura_ttlv_frame_len(const uint8_t hdr[KURA_TTLV_HDR_LEN],
				  size_t max, size_t *total,
				  struct kura_error *err);

/* Iterate the children of a parsed Structure: start with *it zeroed; each
 * call moves to the next child and returns false after the last. */
bool kura_ttlv_next(const struct kura_ttlv *parent, struct kura_ttlv *it);

/* The first child of parent with tag, if any. */
bool kura_ttlv_find(const struct kura_ttlv *parent, uint32_t tag,
		    struct kura_ttlv *out);

/* Typed reads of an item; KURA_EPROTO when the type does not match. */
enum kura_err kura_ttlv_get_int(const struct kura_ttlv *it, int32_t *out);
enum kura_err kura_ttlv_get_long(const struct kura_ttlv *it, int64_t *out);
enum kura_err kura_ttlv_get_enum(const struct kura_ttlv *it, uint32_t *out);
enum kura_err kura_ttlv_get_bool(const struct kura_ttlv *it, bool *out);
enum kura_err kura_ttlv_get_datetime(const struct kura_ttlv *it, int64_t *out);
/* Text and byte strings as views. */
enum kura_err kura_ttlv_get_text(const struct kura_ttlv *it,
				 struct kura_str *out);
enum kura_err kura_ttlv_get_bytes(const struct kura_ttlv *it, const uint8_t **p,
				  size_t *n);

/* ---- KMIP 1.4 constants (values cross-checked with PyKMIP 0.10's
 * kmip/core/enums.py and the KMIP 1.4 specification, section 9.1.3) ---- */

enum kura_kmip_tag {
	KURA_KMIP_TAG_ATTRIBUTE = 0x420008,
	KURA_KMIP_TAG_ATTRIBUTE_NAME = 0x42000A,
	KURA_KMIP_TAG_ATTRIBUTE_VALUE = 0x42000B,
	KURA_KMIP_TAG_BATCH_COUNT = 0x42000D,
	KURA_KMIP_TAG_BATCH_ITEM = 0x42000F,
	KURA_KMIP_TAG_BLOCK_CIPHER_MODE = 0x420011,
	KURA_KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM = 0x420028,
	KURA_KMIP_TAG_CRYPTOGRAPHIC_LENGTH = 0x42002A,
	KURA_KMIP_TAG_CRYPTOGRAPHIC_PARAMETERS = 0x42002B,
	KURA_KMIP_TAG_IV_COUNTER_NONCE = 0x42003D,
	KURA_KMIP_TAG_KEY_BLOCK = 0x420040,
	KURA_KMIP_TAG_KEY_FORMAT_TYPE = 0x420042,
	KURA_KMIP_TAG_KEY_MATERIAL = 0x420043,
	KURA_KMIP_TAG_KEY_VALUE = 0x420045,
	KURA_KMIP_TAG_NAME_TYPE = 0x420054,
	KURA_KMIP_TAG_NAME_VALUE = 0x420055,
	KURA_KMIP_TAG_OBJECT_TYPE = 0x420057,
	KURA_KMIP_TAG_OPERATION = 0x42005C,
	KURA_KMIP_TAG_PROTOCOL_VERSION = 0x420069,
	KURA_KMIP_TAG_PROTOCOL_VERSION_MAJOR = 0x42006A,
	KURA_KMIP_TAG_PROTOCOL_VERSION_MINOR = 0x42006B,
	KURA_KMIP_TAG_REQUEST_HEADER = 0x420077,
	KURA_KMIP_TAG_REQUEST_MESSAGE = 0x420078,
	KURA_KMIP_TAG_REQUEST_PAYLOAD = 0x420079,
	KURA_KMIP_TAG_RESPONSE_HEADER = 0x42007A,
	KURA_KMIP_TAG_RESPONSE_MESSAGE = 0x42007B,
	KURA_KMIP_TAG_RESPONSE_PAYLOAD = 0x42007C,
	KURA_KMIP_TAG_RESULT_MESSAGE = 0x42007D,
	KURA_KMIP_TAG_RESULT_REASON = 0x42007E,
	KURA_KMIP_TAG_RESULT_STATUS = 0x42007F,
	KURA_KMIP_TAG_REVOCATION_REASON = 0x420081,
	KURA_KMIP_TAG_REVOCATION_REASON_CODE = 0x420082,
	KURA_KMIP_TAG_SYMMETRIC_KEY = 0x42008F,
	KURA_KMIP_TAG_TEMPLATE_ATTRIBUTE = 0x420091,
	KURA_KMIP_TAG_TIME_STAMP = 0x420092,
	KURA_KMIP_TAG_UNIQUE_IDENTIFIER = 0x420094,
	KURA_KMIP_TAG_DATA = 0x4200C2,
	KURA_KMIP_TAG_TAG_LENGTH = 0x4200CE,
	KURA_KMIP_TAG_AEAD_ADDITIONAL_DATA = 0x4200FE,
	KURA_KMIP_TAG_AEAD_TAG = 0x4200FF,
};

enum kura_kmip_op {
	KURA_KMIP_OP_CREATE = 0x01,
	KURA_KMIP_OP_REGISTER = 0x03,
	KURA_KMIP_OP_GET = 0x0A,
	KURA_KMIP_OP_GET_ATTRIBUTES = 0x0B,
	KURA_KMIP_OP_ACTIVATE = 0x12,
	KURA_KMIP_OP_REVOKE = 0x13,
	KURA_KMIP_OP_DESTROY = 0x14,
	KURA_KMIP_OP_DISCOVER_VERSIONS = 0x1E,
	KURA_KMIP_OP_ENCRYPT = 0x1F,
	KURA_KMIP_OP_DECRYPT = 0x20,
};

enum kura_kmip_result_status {
	KURA_KMIP_STATUS_SUCCESS = 0,
	KURA_KMIP_STATUS_FAILED = 1,
	KURA_KMIP_STATUS_PENDING = 2,
	KURA_KMIP_STATUS_UNDONE = 3,
};

enum kura_kmip_result_reason {
	KURA_KMIP_REASON_NONE = 0, /* not sent */
	KURA_KMIP_REASON_ITEM_NOT_FOUND = 0x01,
	KURA_KMIP_REASON_AUTH_NOT_SUCCESSFUL = 0x03,
	KURA_KMIP_REASON_INVALID_MESSAGE = 0x04,
	KURA_KMIP_REASON_OPERATION_NOT_SUPPORTED = 0x05,
	KURA_KMIP_REASON_INVALID_FIELD = 0x07,
	KURA_KMIP_REASON_FEATURE_NOT_SUPPORTED = 0x08,
	KURA_KMIP_REASON_CRYPTOGRAPHIC_FAILURE = 0x0A,
	KURA_KMIP_REASON_ILLEGAL_OPERATION = 0x0B,
	KURA_KMIP_REASON_PERMISSION_DENIED = 0x0C,
	KURA_KMIP_REASON_GENERAL_FAILURE = 0x100,
};

enum kura_kmip_state {
	KURA_KMIP_STATE_PRE_ACTIVE = 1,
	KURA_KMIP_STATE_ACTIVE = 2,
	KURA_KMIP_STATE_DEACTIVATED = 3,
	KURA_KMIP_STATE_COMPROMISED = 4,
	KURA_KMIP_STATE_DESTROYED = 5,
	KURA_KMIP_STATE_DESTROYED_COMPROMISED = 6,
};

#define KURA_KMIP_OBJECT_SYMMETRIC_KEY 0x02
#define KURA_KMIP_ALG_AES 0x03
#define KURA_KMIP_MODE_GCM 0x09
#define KURA_KMIP_KEY_FORMAT_RAW 0x01
#define KURA_KMIP_NAME_TEXT 0x01	/* Uninterpreted Text String */
#define KURA_KMIP_REVOKE_CESSATION 0x06 /* Cessation of Operation */
/* Encrypt | Decrypt | Wrap Key | Unwrap Key */
#define KURA_KMIP_USAGE_KEK (0x04 | 0x08 | 0x10 | 0x20)

/* ---- KMIP 1.4 requests (one batch item each) ---- */

struct kura_kmip_version {
	int32_t major, minor;
};

/* Request message with one batch item for op, whose payload the caller
 * fills between begin and end. */
enum kura_err kura_kmip_req_begin(struct kura_ttlv_enc *e,
				  struct kura_kmip_version v, uint32_t op);
enum kura_err kura_kmip_req_end(struct kura_ttlv_enc *e);

/* Whole requests.  uid/label are not NUL-terminated views. */
enum kura_err kura_kmip_req_discover(struct kura_ttlv_enc *e,
				     struct kura_kmip_version v,
				     const struct kura_kmip_version *offer,
				     size_t n_offer);
/* Create (key == NULL) or Register (key: raw AES-256 bytes) a symmetric
 * AES-256 KEK with usage Encrypt|Decrypt|WrapKey|UnwrapKey and a Name. */
enum kura_err kura_kmip_req_symmetric(struct kura_ttlv_enc *e,
				      struct kura_kmip_version v,
				      struct kura_str label, const uint8_t *key,
				      size_t key_len);
/* Activate, Destroy, Get, or Revoke (reason Cessation of Operation). */
enum kura_err kura_kmip_req_uid_op(struct kura_ttlv_enc *e,
				   struct kura_kmip_version v, uint32_t op,
				   struct kura_str uid);
/* Get Attributes asking for "State". */
enum kura_err kura_kmip_req_get_state(struct kura_ttlv_enc *e,
				      struct kura_kmip_version v,
				      struct kura_str uid);
/* Encrypt (tag == NULL) or Decrypt with AES-GCM, TagLength 16. */
enum kura_err kura_kmip_req_gcm(struct kura_ttlv_enc *e,
				struct kura_kmip_version v, struct kura_str uid,
				const uint8_t *data, size_t data_len,
				const uint8_t *iv, size_t iv_len,
				const uint8_t *aad, size_t aad_len,
				const uint8_t *tag, size_t tag_len);

/* ---- KMIP responses ---- */

struct kura_kmip_result {
	struct kura_kmip_version version;
	uint32_t status;	 /* enum kura_kmip_result_status */
	uint32_t reason;	 /* enum kura_kmip_result_reason, 0: none */
	struct kura_str message; /* Result Message, may be empty */
	bool has_payload;
	struct kura_ttlv payload; /* Response Payload when has_payload */
};

/* Parse a whole response message with exactly one batch item for op.
 * KURA_EPROTO when it is malformed or answers another operation.  Views in
 * out borrow p. */
enum kura_err kura_kmip_parse_response(const uint8_t *p, size_t n, uint32_t op,
				       struct kura_kmip_result *out,
				       struct kura_error *err);

#endif

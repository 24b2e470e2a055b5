/*
 * sse.c — S3 server-side-encryption headers: SSE-S3 ("AES256", kura's
 * always-on default), SSE-KMS ("aws:kms" with a kura key the tenant owns),
 * SSE-C (a customer key per request, never stored), bucket default
 * encryption, and the headers AWS returns.
 *
 * Every object is encrypted whatever the client asks; these headers choose
 * *which key* protects it.  SSE-C keys live in locked memory for the
 * request and are checked against the object's stored check value, so a
 * wrong key is refused (AccessDenied) before any decryption.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/encode.h"
#include "kura/kms.h"
#include "s3_int.h"
#include "kura/banned.h"

#define SSEC_PREFIX "x-amz-server-side-encryption-customer-"
#define SSEC_COPY_PREFIX "x-amz-copy-source-server-side-encryption-customer-"

void s3_sse_release(struct s3_sse *s)
{
	kura_secret_free(s->customer_key);
	s->customer_key = NULL;
}

static const struct kura_str *header_with(struct s3_req *r, const char *prefix,
					  const char *suffix)
{
	char name[128];
	snprintf(name, sizeof(name), "%s%s", prefix, suffix);
	return s3_header(r, name);
}

bool s3_ssec_parse(struct s3_req *r, bool copy_source, struct s3_sse *out,
		   bool *present)
{
	const char *prefix = copy_source ? SSEC_COPY_PREFIX : SSEC_PREFIX;
	const struct kura_str *alg = header_with(r, prefix, "algorithm");
	const struct kura_str *key = header_with(r, prefix, "key");
	const struct kura_str *md5 = header_with(r, prefix, "key-MD5");
	uint8_t raw[32 + 3], digest[16], given[16 + 2];
	size_t n = 0, gn = 0;
	unsigned int dl = 0;
	*present = alg || key || md5;
	if (!*present)
		return true;
	/* As AWS: a customer key must never cross the network in the clear.
	 * The key already did, but the request is not acted on, and the
	 * client learns to use HTTPS before it stores anything with it. */
	if (!r->svc->tls && !r->svc->ssec_over_http) {
		s3_error(
			r, S3_InvalidRequest,
			"Requests specifying Server Side Encryption with Customer provided "
			"keys must be made over a secure connection.",
			"SSE-C headers over plain HTTP");
		return false;
	}
	if (alg == NULL || !kura_str_eq_cstr(*alg, "AES256")) {
		s3_error(
			r,
			alg ? S3_InvalidEncryptionAlgorithmError :
			      S3_InvalidArgument,
			alg ? "The encryption algorithm must be AES256." :
			      "Requests specifying Server Side Encryption with Customer "
			      "provided keys must provide a valid encryption algorithm.",
			NULL);
		return false;
	}
	if (key == NULL || md5 == NULL ||
	    kura_base64_decode(key->p, key->len, raw, sizeof(raw), &n) !=
		    KURA_OK ||
	    n != 32) {
		kura_wipe(raw, sizeof(raw));
		s3_error(
			r, S3_InvalidArgument,
			"The secret key was invalid for the specified algorithm.",
			NULL);
		return false;
	}
	if (kura_base64_decode(md5->p, md5->len, given, sizeof(given), &gn) !=
		    KURA_OK ||
	    gn != 16 ||
	    EVP_Digest(raw, 32, digest, &dl, EVP_md5(), NULL) != 1 ||
	    memcmp(digest, given, 16) != 0) {
		kura_wipe(raw, sizeof(raw));
		s3_error(
			r, S3_InvalidArgument,
			"The calculated MD5 hash of the key did not match the hash that "
			"was provided.",
			NULL);
		return false;
	}
	out->customer_key = kura_secret_from(raw, 32);
	kura_wipe(raw, sizeof(raw));
	if (out->customer_key == NULL) {
		s3_error(r, S3_InternalError, NULL,
			 "locked memory for an SSE-C key");
		return false;
	}
	out->mode = KURA_SSE_C;
	snprintf(out->customer_key_md5, sizeof(out->customer_key_md5), "%.*s",
		 (int)md5->len, md5->p);
	return true;
}

/* A kura key named by the client: its own name, or the tail of an
 * "arn:...:key/NAME" (what AWS SDKs often pass). */
bool s3_sse_resolve_kms_key(struct s3_req *r, const struct kura_str *id,
			    struct s3_sse *out)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_key k;
	char name[KURA_KEY_NAME_MAX];
	const char *p = id->p;
	size_t n = id->len;
	/* "arn:aws:kms:REGION:ACCOUNT:key/NAME": the name follows ":key/". */
	if (kura_str_has_prefix(*id, "arn:aws:kms:")) {
		const char *k_ = memmem(p, n, ":key/", 5);
		if (k_ != NULL) {
			n -= (size_t)(k_ + 5 - p);
			p = k_ + 5;
		}
	}
	if (n == 0 || n >= sizeof(name)) {
		s3_error(r, S3_KMSNotFound, NULL, NULL);
		return false;
	}
	memcpy(name, p, n);
	name[n] = '\0';
	enum kura_err rc =
		kura_meta_key_get_by_name(meta, r->tenant_id, name, &k, &err);
	if (rc == KURA_ENOENT) {
		s3_error(r, S3_KMSNotFound, NULL, NULL);
		return false;
	}
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return false;
	}
	if (k.state == KURA_KEY_DISABLED) {
		s3_error(r, S3_KMSDisabled, NULL, NULL);
		return false;
	}
	out->mode = KURA_SSE_KMS;
	out->kms_key_id = k.id;
	return true;
}

bool s3_sse_for_write(struct s3_req *r, struct s3_sse *out)
{
	const struct kura_str *sse =
		s3_header(r, "x-amz-server-side-encryption");
	const struct kura_str *kid =
		s3_header(r, "x-amz-server-side-encryption-aws-kms-key-id");
	bool ssec = false;
	memset(out, 0, sizeof(*out));
	if (!s3_ssec_parse(r, false, out, &ssec))
		return false;
	if (ssec) {
		if (sse != NULL || kid != NULL) {
			s3_sse_release(out);
			s3_error(
				r, S3_InvalidArgument,
				"Server Side Encryption with Customer provided key is "
				"incompatible with the encryption method specified",
				NULL);
			return false;
		}
		return true;
	}
	if (sse == NULL) {
		if (kid != NULL) {
			s3_error(
				r, S3_InvalidArgument,
				"x-amz-server-side-encryption-aws-kms-key-id is only valid "
				"with x-amz-server-side-encryption: aws:kms",
				NULL);
			return false;
		}
		/* The bucket's default encryption decides. */
		out->mode = r->bucket.default_sse;
		out->kms_key_id = r->bucket.default_kms_key_id;
		return true;
	}
	if (kura_str_eq_cstr(*sse, "AES256")) {
		if (kid != NULL) {
			s3_error(
				r, S3_InvalidArgument,
				"x-amz-server-side-encryption-aws-kms-key-id is only valid "
				"with x-amz-server-side-encryption: aws:kms",
				NULL);
			return false;
		}
		out->mode = KURA_SSE_S3;
		return true;
	}
	if (kura_str_eq_cstr(*sse, "aws:kms:dsse")) {
		s3_error(r, S3_NotImplemented,
			 "Dual-layer SSE-KMS is not available; use aws:kms.",
			 NULL);
		return false;
	}
	if (kura_str_eq_cstr(*sse, "aws:kms")) {
		out->mode = KURA_SSE_KMS;
		if (kid == NULL || kid->len == 0) {
			/* No key named: the default KMS key (KEYS.md) — the
			 * bucket's SSE-KMS default key when it has one, which
			 * its owner chose for the bucket's data, else the
			 * bucket's own key, standing in for AWS's managed
			 * aws/s3 key. */
			out->kms_key_id = r->bucket.default_sse ==
							  KURA_SSE_KMS ?
						  r->bucket.default_kms_key_id :
						  r->bucket.key_id;
			return true;
		}
		return s3_sse_resolve_kms_key(r, kid, out);
	}
	s3_error(r, S3_InvalidArgument,
		 "The encryption method specified is not supported", NULL);
	return false;
}

bool s3_sse_refuse_on_read(struct s3_req *r)
{
	/* The key of an SSE-S3 or SSE-KMS object is the stored one; a read
	 * naming one would suggest it could choose.  AWS answers 400. */
	static const char *const names[] = {
		"x-amz-server-side-encryption",
		"x-amz-server-side-encryption-aws-kms-key-id",
		"x-amz-server-side-encryption-context",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (s3_header(r, names[i]) == NULL)
			continue;
		char msg[96];
		snprintf(msg, sizeof(msg),
			 "%s header is not supported for this operation.",
			 names[i]);
		s3_error(r, S3_InvalidArgument, msg, NULL);
		return false;
	}
	return true;
}

bool s3_sse_match(struct s3_req *r, enum kura_sse mode, uint64_t kms_key_id,
		  const uint8_t *ssec_hmac,
		  const uint8_t version_uid[KURA_UID_LEN], bool copy_source,
		  struct s3_sse *out)
{
	struct kura_error err = { 0 };
	bool present = false;
	memset(out, 0, sizeof(*out));
	if (!s3_ssec_parse(r, copy_source, out, &present))
		return false;
	if (mode != KURA_SSE_C) {
		if (present) {
			s3_sse_release(out);
			s3_error(
				r, S3_InvalidRequest,
				"The encryption parameters are not applicable to this object.",
				NULL);
			return false;
		}
		out->mode = mode;
		out->kms_key_id = kms_key_id;
		return true;
	}
	if (!present) {
		s3_error(
			r, S3_InvalidRequest,
			"The object was stored using a form of Server Side Encryption. "
			"The correct parameters must be provided to retrieve the object.",
			NULL);
		return false;
	}
	uint8_t check[32];
	if (kura_ssec_check_value(r->svc->system_key, out->customer_key,
				  version_uid, check, &err) != KURA_OK) {
		s3_sse_release(out);
		s3_error(r, S3_InternalError, NULL, err.msg);
		return false;
	}
	if (!kura_ct_equal(check, ssec_hmac, 32)) {
		s3_sse_release(out);
		s3_error(r, S3_AccessDenied, NULL,
			 "SSE-C key does not match the object");
		return false;
	}
	return true;
}

bool s3_sse_for_read(struct s3_req *r, const struct kura_object *o,
		     bool copy_source, struct s3_sse *out)
{
	return s3_sse_match(r, o->sse, o->kms_key_id, o->ssec_hmac,
			    o->version_uid, copy_source, out);
}

enum kura_err s3_sse_check_value(struct s3_req *r, const struct s3_sse *s,
				 const uint8_t version_uid[KURA_UID_LEN],
				 uint8_t out[KURA_SSEC_HMAC_LEN],
				 struct kura_error *err)
{
	if (s->mode != KURA_SSE_C) {
		memset(out, 0, KURA_SSEC_HMAC_LEN);
		return KURA_OK;
	}
	return kura_ssec_check_value(r->svc->system_key, s->customer_key,
				     version_uid, out, err);
}

void s3_sse_respond_headers(struct s3_req *r, const struct s3_sse *s)
{
	struct kura_http_req *h = r->http;
	if (s->mode == KURA_SSE_C) {
		kura_http_resp_header(
			h, "x-amz-server-side-encryption-customer-algorithm",
			"AES256");
		if (s->customer_key_md5[0])
			kura_http_resp_header(
				h,
				"x-amz-server-side-encryption-customer-key-MD5",
				s->customer_key_md5);
		return;
	}
	if (s->mode == KURA_SSE_S3) {
		kura_http_resp_header(h, "x-amz-server-side-encryption",
				      "AES256");
		return;
	}
	struct kura_key k;
	kura_http_resp_header(h, "x-amz-server-side-encryption", "aws:kms");
	if (kura_meta_key_get(r->svc->meta, s->kms_key_id, &k, NULL) == KURA_OK)
		kura_http_resp_header(
			h, "x-amz-server-side-encryption-aws-kms-key-id",
			k.name);
	kura_http_resp_header(
		h, "x-amz-server-side-encryption-bucket-key-enabled", "true");
}

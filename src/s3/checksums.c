/*
 * checksums.c — stored additional checksums (x-amz-checksum-*): how they
 * are shown (response headers on writes and on reads that ask for them,
 * x-amz-checksum-mode: ENABLED; Checksum* elements of XML documents), and
 * the mask that ties the stored digest of SSE-KMS and SSE-C data to its
 * data key.  A leaf: the operations call it, it calls nothing of theirs.
 *
 * The values come out of the metadata seals (docs/FORMAT.md §10), which
 * the bucket's own key protects.  For SSE-S3 data that is the data's key
 * too.  For SSE-KMS and SSE-C data it is not, and a checksum (the SHA-256
 * of the plaintext, say) must not outlive the key that protects the data —
 * the reason their ETags are random.  So their digest is stored XORed
 * with a pad derived from a DEK of the data: without the KMS key (once
 * destroyed) or the customer's key, the stored value says nothing.  A
 * composite value is shown as "<base64>-<parts>", as S3 does.
 */
#include <string.h>

#include "kura/crypt.h"
#include "kura/hmac.h"
#include "kura/kms.h"
#include "s3_int.h"
#include "kura/banned.h"

bool s3_checksum_mode(struct s3_req *r)
{
	const struct kura_str *h = s3_header(r, "x-amz-checksum-mode");
	return h != NULL && kura_str_caseeq_cstr(*h, "ENABLED");
}

enum kura_err s3_checksum_headers(struct s3_req *r,
				  const struct kura_checksum_value *v,
				  uint32_t parts)
{
	char text[KURA_CHECKSUM_TEXT_MAX];
	if (v->algo == KURA_CHECKSUM_NONE)
		return KURA_OK;
	kura_checksum_text(v, parts, text);
	enum kura_err rc = kura_http_resp_header(
		r->http, kura_checksum_name(v->algo), text);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "x-amz-checksum-type",
					   kura_checksum_type_name(v->type));
	return rc;
}

void s3_checksum_xml(struct kura_buf *b, const struct kura_checksum_value *v,
		     uint32_t parts, bool with_type)
{
	char text[KURA_CHECKSUM_TEXT_MAX];
	if (v->algo == KURA_CHECKSUM_NONE)
		return;
	kura_checksum_text(v, parts, text);
	s3_xml_elem_str(b, kura_checksum_xml_name(v->algo), text);
	if (with_type)
		s3_xml_elem_str(b, "ChecksumType",
				kura_checksum_type_name(v->type));
}

/* ---- the mask of SSE-KMS and SSE-C checksums ---- */

#define MASK_LABEL "kura-checksum-mask-v1"

enum kura_err s3_sum_mask(const struct kura_secret *dek, enum s3_sum_kind kind,
			  const uint8_t version_uid[KURA_UID_LEN],
			  uint32_t part_no, struct kura_checksum_value *v,
			  struct kura_error *err)
{
	uint8_t msg[sizeof(MASK_LABEL) - 1 + 1 + KURA_UID_LEN + 4];
	uint8_t pad[KURA_HMAC_SHA256_LEN];
	size_t n = sizeof(MASK_LABEL) - 1, len = kura_checksum_len(v->algo);
	if (len == 0)
		return KURA_OK;
	/* An object's value and its first part's (while an upload part)
	 * come from one DEK: the kind keeps their pads apart. */
	memcpy(msg, MASK_LABEL, n);
	msg[n++] = (uint8_t)kind;
	memcpy(msg + n, version_uid, KURA_UID_LEN);
	n += KURA_UID_LEN;
	for (int i = 0; i < 4; i++)
		msg[n++] = (uint8_t)(part_no >> (24 - 8 * i));
	if (!kura_hmac_sha256(dek->data, dek->len, msg, n, pad))
		return kura_fail_openssl(err, KURA_ECRYPTO, "checksum mask");
	for (size_t i = 0; i < len; i++)
		v->digest[i] ^= pad[i];
	kura_wipe(pad, sizeof(pad));
	return KURA_OK;
}

enum kura_err s3_part_dek(struct s3_req *r, const uint8_t uid[KURA_UID_LEN],
			  const struct kura_part *p,
			  const struct kura_secret *customer_key,
			  struct kura_secret **dek, struct kura_error *err)
{
	struct kura_secret *bk = NULL, *wk = NULL;
	struct kura_binding b = {
		r->bucket.tenant_id, r->bucket.id, { 0 }, p->part_no
	};
	memcpy(b.version_uid, uid, KURA_UID_LEN);
	enum kura_err rc = kura_kms_read_key(r->svc->kms, p->bk_id, &bk, err);
	if (rc == KURA_OK && customer_key != NULL)
		rc = kura_ssec_wrap_key(bk, customer_key, &wk, err);
	if (rc == KURA_OK)
		rc = kura_dek_unwrap(wk ? wk : bk, &b, p->dek_wrapped, dek,
				     err);
	kura_secret_free(bk);
	kura_secret_free(wk);
	return rc;
}

enum kura_err s3_sum_unmask_part(struct s3_req *r,
				 const uint8_t uid[KURA_UID_LEN],
				 struct kura_part *p, enum kura_sse sse,
				 const struct kura_secret *customer_key,
				 struct kura_error *err)
{
	struct kura_secret *dek = NULL;
	if (sse == KURA_SSE_S3 || p->sum.algo == KURA_CHECKSUM_NONE)
		return KURA_OK;
	enum kura_err rc = s3_part_dek(r, uid, p, customer_key, &dek, err);
	if (rc == KURA_OK)
		rc = s3_sum_mask(dek, S3_SUM_PART, uid, p->part_no, &p->sum,
				 err);
	kura_secret_free(dek);
	return rc;
}

enum kura_err s3_sum_unmask_object(struct s3_req *r, struct kura_object *o,
				   const struct kura_secret *customer_key,
				   struct kura_error *err)
{
	struct kura_secret *dek = NULL;
	if (o->sse == KURA_SSE_S3 || o->sum.algo == KURA_CHECKSUM_NONE)
		return KURA_OK;
	if (o->part_count == 0 || o->parts == NULL)
		return kura_fail(err, KURA_EINTEGRITY, "object without parts");
	enum kura_err rc = s3_part_dek(r, o->version_uid, &o->parts[0],
				       customer_key, &dek, err);
	if (rc == KURA_OK)
		rc = s3_sum_mask(dek, S3_SUM_OBJECT, o->version_uid,
				 o->parts[0].part_no, &o->sum, err);
	kura_secret_free(dek);
	return rc;
}

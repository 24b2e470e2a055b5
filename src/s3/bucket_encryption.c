/*
 * bucket_encryption.c — PutBucketEncryption, GetBucketEncryption,
 * DeleteBucketEncryption: the key new objects get when a PUT names none.
 * Every object is encrypted regardless; the default chooses between the
 * bucket's own key (SSE-S3, "AES256") and a named kura key (SSE-KMS).
 */
#include <string.h>

#include "kura/kms.h"
#include "s3_int.h"
#include "kura/banned.h"

static void put_encryption_finish(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	const struct s3_xml_node *root =
		s3_xml_body(r, "ServerSideEncryptionConfiguration");
	if (root == NULL)
		return;
	const struct s3_xml_node *rule = s3_xml_child(root, "Rule");
	const struct s3_xml_node *def =
		s3_xml_child(rule, "ApplyServerSideEncryptionByDefault");
	const struct s3_xml_node *alg = s3_xml_child(def, "SSEAlgorithm");
	const struct s3_xml_node *kid = s3_xml_child(def, "KMSMasterKeyID");
	if (alg == NULL || (rule != NULL && rule->next != NULL &&
			    strcmp(rule->next->name, "Rule") == 0)) {
		s3_error(r, S3_MalformedXML, NULL,
			 "one Rule with an SSEAlgorithm expected");
		return;
	}
	enum kura_sse sse;
	uint64_t key_id = 0;
	if (alg->text_len == 6 && memcmp(alg->text, "AES256", 6) == 0) {
		if (kid != NULL) {
			s3_error(r, S3_InvalidArgument,
				 "KMSMasterKeyID is only valid with aws:kms",
				 NULL);
			return;
		}
		sse = KURA_SSE_S3;
	} else if (alg->text_len == 7 && memcmp(alg->text, "aws:kms", 7) == 0) {
		sse = KURA_SSE_KMS;
		key_id = r->bucket.key_id;
		if (kid != NULL && kid->text_len > 0) {
			struct kura_str id = { kid->text, kid->text_len };
			struct s3_sse tmp = { 0 };
			if (!s3_sse_resolve_kms_key(r, &id, &tmp))
				return;
			key_id = tmp.kms_key_id;
		}
	} else {
		s3_error(r, S3_InvalidArgument,
			 "The SSEAlgorithm must be AES256 or aws:kms", NULL);
		return;
	}
	enum kura_err rc = kura_meta_bucket_set_encryption(meta, r->bucket.id,
							   sse, key_id, &err);
	if (s3_ok(r, rc, &err, S3_NoSuchBucket))
		s3_respond(r, 200);
}

void s3_put_bucket_encryption(struct s3_req *r)
{
	if (s3_load_bucket(r))
		s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_encryption_finish);
}

void s3_get_bucket_encryption(struct s3_req *r)
{
	struct kura_key k;
	struct kura_buf b;
	if (!s3_load_bucket(r))
		return;
	kura_buf_init(&b, S3_DOC_ENCRYPTION_MAX);
	s3_xml_root(&b, "ServerSideEncryptionConfiguration");
	s3_xml_raw(&b, "<Rule><ApplyServerSideEncryptionByDefault>");
	if (r->bucket.default_sse == KURA_SSE_KMS) {
		s3_xml_elem_str(&b, "SSEAlgorithm", "aws:kms");
		if (kura_meta_key_get(r->svc->meta,
				      r->bucket.default_kms_key_id, &k,
				      NULL) == KURA_OK)
			s3_xml_elem_str(&b, "KMSMasterKeyID", k.name);
	} else {
		s3_xml_elem_str(&b, "SSEAlgorithm", "AES256");
	}
	s3_xml_raw(&b, "</ApplyServerSideEncryptionByDefault>"
		       "<BucketKeyEnabled>true</BucketKeyEnabled></Rule>"
		       "</ServerSideEncryptionConfiguration>");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_delete_bucket_encryption(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r))
		return;
	enum kura_err rc = kura_meta_bucket_set_encryption(
		meta, r->bucket.id, KURA_SSE_S3, 0, &err);
	if (s3_ok(r, rc, &err, S3_NoSuchBucket))
		s3_respond(r, 204);
}

/*
 * blob_write.c — writing one blob of an object version: a fresh DEK wrapped
 * under the bucket key, the sealer, and a staged store writer.  Shared by
 * PutObject, UploadPart and the copy operations.
 *
 * A blob is first *staged* (durable, unreferenced); the caller commits
 * metadata that references it and then calls s3_blob_publish.  If the
 * request ends before the commit, s3_blob_discard removes the staged data.
 */
#include <string.h>

#include "kura/encode.h"
#include "kura/kms.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

/* Blobs removed right after a commit that queued them (the rest go to
 * the background collector). */
#define GC_INLINE 64

static enum kura_err to_store(void *ctx, const void *p, size_t n,
			      struct kura_error *err)
{
	struct s3_blob *b = ctx;
	return kura_store_writer_write(b->store, b->writer, p, n, err);
}

enum kura_err s3_blob_begin(struct s3_blob *b, struct kura_service *svc,
			    const struct kura_bucket *bucket,
			    const uint8_t version_uid[KURA_UID_LEN],
			    uint32_t part_no, const struct s3_sse *sse,
			    struct kura_error *err)
{
	struct kura_secret *bucket_key = NULL, *wrap_key = NULL;
	memset(b, 0, sizeof(*b));
	/* The bucket's placement policy says where the copies go. */
	enum kura_err placed =
		kura_service_bucket_store(svc, bucket, &b->store, err);
	if (placed != KURA_OK)
		return placed;
	b->binding.tenant_id = bucket->tenant_id;
	b->binding.bucket_id = bucket->id;
	memcpy(b->binding.version_uid, version_uid, KURA_UID_LEN);
	b->binding.part_no = part_no;
	b->part.part_no = part_no;
	b->part.seg_size = svc->seg_size;
	b->md5_etag = sse->mode == KURA_SSE_S3;
	enum kura_err rc =
		kura_random_bytes(b->part.blob_id, KURA_BLOB_ID_LEN, err);
	if (rc == KURA_OK)
		rc = kura_kms_write_key(
			svc->kms, bucket,
			sse->mode == KURA_SSE_KMS ? sse->kms_key_id : 0,
			&b->part.bk_id, &bucket_key, err);
	/* SSE-C: the DEK is wrapped by a key derived from the bucket key and
	 * the customer's, so it needs both. */
	if (rc == KURA_OK && sse->mode == KURA_SSE_C)
		rc = kura_ssec_wrap_key(bucket_key, sse->customer_key,
					&wrap_key, err);
	if (rc == KURA_OK)
		rc = kura_dek_new(&b->dek, err);
	if (rc == KURA_OK)
		rc = kura_dek_wrap(wrap_key ? wrap_key : bucket_key,
				   &b->binding, b->dek, b->part.dek_wrapped,
				   err);
	kura_secret_free(bucket_key);
	kura_secret_free(wrap_key);
	if (rc == KURA_OK)
		rc = kura_store_writer_open(b->store, b->part.blob_id,
					    &b->writer, err);
	if (rc == KURA_OK)
		rc = kura_sealer_new(b->dek, &b->binding, svc->seg_size,
				     b->part.blob_id, to_store, b, &b->sealer,
				     err);
	if (rc == KURA_OK && (b->md5 = EVP_MD_CTX_new()) == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "MD5 context");
	if (rc == KURA_OK && EVP_DigestInit_ex(b->md5, EVP_md5(), NULL) != 1)
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "MD5 init");
	b->active = true;
	if (rc != KURA_OK)
		s3_blob_discard(b);
	return rc;
}

enum kura_err s3_blob_write(struct s3_blob *b, const void *p, size_t n,
			    struct kura_error *err)
{
	if (EVP_DigestUpdate(b->md5, p, n) != 1)
		return kura_fail_openssl(err, KURA_ECRYPTO, "MD5");
	return kura_sealer_write(b->sealer, p, n, err);
}

enum kura_err s3_blob_stage(struct s3_blob *b, struct kura_error *err)
{
	unsigned len = 0;
	enum kura_err rc = kura_sealer_finish(b->sealer, &b->part.size, err);
	if (rc != KURA_OK)
		return rc;
	if (EVP_DigestFinal_ex(b->md5, b->md5_raw, &len) != 1 || len != 16)
		return kura_fail_openssl(err, KURA_ECRYPTO, "MD5 final");
	uint8_t tag[16];
	memcpy(tag, b->md5_raw, sizeof(tag));
	if (!b->md5_etag &&
	    (rc = kura_random_bytes(tag, sizeof(tag), err)) != KURA_OK)
		return rc;
	kura_hex_encode(tag, sizeof(tag), b->part.etag);
	b->part.mtime_ms = kura_now_ms();
	struct kura_store_writer *w = b->writer;
	b->writer = NULL; /* writer_finish frees it, on success or not */
	rc = kura_store_writer_finish(b->store, w, err);
	if (rc == KURA_OK)
		b->staged = true;
	return rc;
}

void s3_blob_publish(struct s3_blob *b, const char *reqid)
{
	struct kura_error err = { 0 };
	b->committed = true;
	if (kura_store_publish(b->store, b->part.blob_id, &err) != KURA_OK)
		/* Committed and durable in staging: recovery publishes it. */
		kura_warn(reqid, "publish failed (recovery will retry): %s",
			  err.msg);
}

void s3_blob_discard(struct s3_blob *b)
{
	if (!b->active)
		return;
	kura_sealer_free(b->sealer);
	b->sealer = NULL;
	if (b->writer)
		kura_store_writer_abort(b->store, b->writer);
	b->writer = NULL;
	if (b->staged && !b->committed)
		(void)kura_store_remove(b->store, b->part.blob_id, NULL);
	kura_secret_free(b->dek);
	b->dek = NULL;
	EVP_MD_CTX_free(b->md5);
	b->md5 = NULL;
	b->active = false;
}

/* The operations' own glue for a blob in r->op_state (whose first member
 * is the struct s3_blob). */

void *s3_blob_op_start(struct s3_req *r, size_t size)
{
	if (s3_header(r, "Content-Length") == NULL &&
	    s3_header(r, "Transfer-Encoding") == NULL) {
		s3_error(r, S3_MissingContentLength, NULL, NULL);
		return NULL;
	}
	void *st = kura_palloc(r->pool, size);
	if (st == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return NULL;
	}
	r->op_state = st;
	r->op_cleanup = s3_blob_op_cleanup;
	r->md5_by_op = true; /* the blob's own MD5 is compared at the end */
	r->op_body = s3_blob_op_body;
	return st;
}

bool s3_blob_op_stage(struct s3_req *r)
{
	struct s3_blob *b = r->op_state;
	struct kura_error err = { 0 };
	enum kura_err rc = s3_blob_stage(b, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return false;
	}
	if (r->have_content_md5 &&
	    memcmp(b->md5_raw, r->content_md5, 16) != 0) {
		s3_error(r, S3_BadDigest, NULL, NULL);
		return false;
	}
	return true;
}

enum kura_err s3_blob_op_body(struct s3_req *r, const uint8_t *p, size_t n,
			      struct kura_error *err)
{
	return s3_blob_write(r->op_state, p, n, err);
}

void s3_blob_op_cleanup(struct s3_req *r)
{
	if (r->op_state != NULL)
		s3_blob_discard(r->op_state);
	r->op_state = NULL;
}

void s3_collect_garbage(struct s3_req *r)
{
	struct kura_error err = { 0 };
	if (kura_service_collect(r->svc, GC_INLINE, NULL, &err) != KURA_OK)
		kura_warn(r->http->id, "garbage collection: %s", err.msg);
}

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
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

static enum kura_err to_store(void *ctx, const void *p, size_t n,
			      struct kura_error *err)
{
	struct s3_blob *b = ctx;
	return b->store->ops->writer_write(b->writer, p, n, err);
}

enum kura_err s3_blob_begin(struct s3_blob *b, struct kura_service *svc,
			    const struct kura_bucket *bucket,
			    const uint8_t version_uid[KURA_UID_LEN],
			    uint32_t part_no, struct kura_error *err)
{
	struct kura_secret *bucket_key = NULL;
	memset(b, 0, sizeof(*b));
	b->store = svc->store;
	b->binding.tenant_id = bucket->tenant_id;
	b->binding.bucket_id = bucket->id;
	memcpy(b->binding.version_uid, version_uid, KURA_UID_LEN);
	b->binding.part_no = part_no;
	b->part.part_no = part_no;
	b->part.seg_size = svc->seg_size;
	enum kura_err rc = kura_random_bytes(b->part.blob_id, KURA_BLOB_ID_LEN, err);
	if (rc == KURA_OK)
		rc = kura_keycache_get(svc->keycache, bucket->tenant_id, bucket->id,
				       bucket->kek_id, bucket->key_wrapped,
				       bucket->key_wrapped_len, &bucket_key, err);
	if (rc == KURA_OK)
		rc = kura_dek_new(&b->dek, err);
	if (rc == KURA_OK)
		rc = kura_dek_wrap(bucket_key, &b->binding, b->dek, b->part.dek_wrapped, err);
	kura_secret_free(bucket_key);
	if (rc == KURA_OK)
		rc = b->store->ops->writer_open(b->store->priv, b->part.blob_id,
						&b->writer, err);
	if (rc == KURA_OK)
		rc = kura_sealer_new(b->dek, &b->binding, svc->seg_size, b->part.blob_id,
				     to_store, b, &b->sealer, err);
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
	kura_hex_encode(b->md5_raw, 16, b->part.etag);
	b->part.mtime_ms = kura_now_ms();
	struct kura_store_writer *w = b->writer;
	b->writer = NULL;	/* writer_finish frees it, on success or not */
	rc = b->store->ops->writer_finish(w, err);
	if (rc == KURA_OK)
		b->staged = true;
	return rc;
}

void s3_blob_publish(struct s3_blob *b, const char *reqid)
{
	struct kura_error err = { 0 };
	b->committed = true;
	if (b->store->ops->publish &&
	    b->store->ops->publish(b->store->priv, b->part.blob_id, &err) != KURA_OK)
		/* Committed and durable in staging: recovery publishes it. */
		kura_warn(reqid, "publish failed (recovery will retry): %s", err.msg);
}

void s3_blob_discard(struct s3_blob *b)
{
	if (!b->active)
		return;
	kura_sealer_free(b->sealer);
	b->sealer = NULL;
	if (b->writer)
		b->store->ops->writer_abort(b->writer);
	b->writer = NULL;
	if (b->staged && !b->committed)
		(void)b->store->ops->remove(b->store->priv, b->part.blob_id, NULL);
	kura_secret_free(b->dek);
	b->dek = NULL;
	EVP_MD_CTX_free(b->md5);
	b->md5 = NULL;
	b->active = false;
}

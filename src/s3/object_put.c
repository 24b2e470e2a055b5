/*
 * object_put.c — PutObject: stream the body through the sealer into a staged
 * blob, then commit.
 *
 * Commit order (crash safety): body complete and verified -> final segment
 * sealed -> blob durable in staging (fsync file and directory) -> metadata
 * row committed (the object becomes visible, atomically replacing any old
 * version) -> blob published -> response.  A crash before the metadata commit
 * leaves an unreferenced staged blob that start-up recovery deletes; after
 * it, a referenced one that recovery publishes.  Nothing half-written is
 * ever visible.
 */
#include <stdio.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define GC_INLINE 16

struct put_state {
	struct kura_object obj;
	struct s3_blob blob;
};

static enum kura_err put_body(struct s3_req *r, const uint8_t *p, size_t n,
			      struct kura_error *err)
{
	struct put_state *st = r->op_state;
	return s3_blob_write(&st->blob, p, n, err);
}

static void put_cleanup(struct s3_req *r)
{
	struct put_state *st = r->op_state;
	if (st != NULL)
		s3_blob_discard(&st->blob);
	r->op_state = NULL;
}

/* Respond 200 with the ETag and encryption headers of a stored object. */
void s3_respond_stored(struct s3_req *r, const char *etag_hex)
{
	char etag[KURA_ETAG_MAX + 2];
	snprintf(etag, sizeof(etag), "\"%s\"", etag_hex);
	if (s3_respond(r, 200) != KURA_OK ||
	    kura_http_resp_header(r->http, "ETag", etag) != KURA_OK ||
	    kura_http_resp_header(r->http, "x-amz-server-side-encryption", "AES256") != KURA_OK)
		s3_error(r, S3_InternalError, NULL, "out of memory");
}

static void put_finish(struct s3_req *r)
{
	struct put_state *st = r->op_state;
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	enum kura_err rc = s3_blob_stage(&st->blob, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	if (r->have_content_md5 && memcmp(st->blob.md5_raw, r->content_md5, 16) != 0) {
		s3_error(r, S3_BadDigest, NULL, NULL);
		return;
	}
	st->obj.parts = &st->blob.part;
	st->obj.part_count = 1;
	st->obj.size = st->blob.part.size;
	memcpy(st->obj.etag, st->blob.part.etag, sizeof(st->obj.etag));
	st->obj.mtime_ms = kura_now_ms();
	rc = svc->meta->ops->object_put(svc->meta->priv, &st->obj, &err);
	if (rc == KURA_ENOENT) {
		s3_error(r, S3_NoSuchBucket, NULL, NULL);
		return;
	}
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	s3_blob_publish(&st->blob, r->http->id);
	if (kura_service_collect(svc, GC_INLINE, NULL, &err) != KURA_OK)
		kura_warn(r->http->id, "garbage collection: %s", err.msg);
	s3_respond_stored(r, st->obj.etag);
}

void s3_put_object(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r) || !s3_check_unsupported_put_headers(r))
		return;
	if (s3_header(r, "Content-Length") == NULL &&
	    s3_header(r, "Transfer-Encoding") == NULL) {
		s3_error(r, S3_MissingContentLength, NULL, NULL);
		return;
	}
	struct put_state *st = kura_palloc(r->pool, sizeof(*st));
	if (st == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}
	r->op_state = st;
	r->op_cleanup = put_cleanup;
	st->obj.bucket_id = r->bucket.id;
	st->obj.key = r->key;
	st->obj.key_len = r->key_len;
	if (!s3_object_headers_from_request(r, &st->obj))
		return;
	enum kura_err rc = kura_random_bytes(st->obj.version_uid, KURA_UID_LEN, &err);
	if (rc == KURA_OK)
		rc = s3_blob_begin(&st->blob, svc, &r->bucket, st->obj.version_uid, 0, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	r->md5_by_op = true;
	r->max_body = svc->max_object_size;
	r->op_body = put_body;
	r->op_finish = put_finish;
	s3_payload_begin(r);
}

/*
 * object_put.c — PutObject: stream the body through the sealer into a staged
 * blob, then commit.
 *
 * Commit order (crash safety): body complete and verified -> final segment
 * sealed -> blob durable in staging (fsync file and directory) -> metadata
 * row committed (the version becomes visible, atomically replacing the
 * null version unless the bucket keeps versions) -> blob published ->
 * response.  With If-Match / If-None-Match the key's newest version is
 * checked at the start and the commit happens only while it is still the
 * newest (write_cond.c).  A crash before the metadata commit
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

struct put_state {
	struct s3_blob blob; /* first: s3_blob_op_body/_cleanup use it */
	struct kura_object obj;
	struct kura_put_cond cond_storage;
	const struct kura_put_cond *cond; /* If-Match / If-None-Match */
	struct s3_lock lock; /* the request's; the default at the commit */
};

/* Respond 200 with the ETag, encryption and checksum headers of a stored
 * object. */
void s3_respond_stored(struct s3_req *r, const char *etag_hex,
		       const struct kura_checksum_value *sum)
{
	char etag[KURA_ETAG_MAX + 2];
	snprintf(etag, sizeof(etag), "\"%s\"", etag_hex);
	if (s3_respond(r, 200) != KURA_OK ||
	    kura_http_resp_header(r->http, "ETag", etag) != KURA_OK ||
	    (sum != NULL && s3_checksum_headers(r, sum, 1) != KURA_OK)) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}
	s3_sse_respond_headers(r, &r->sse);
}

static void put_finish(struct s3_req *r)
{
	struct put_state *st = r->op_state;
	struct kura_error err = { 0 };
	enum kura_err rc;
	if (!s3_blob_op_stage(r))
		return;
	st->obj.parts = &st->blob.part;
	st->obj.part_count = 1;
	st->obj.size = st->blob.part.size;
	memcpy(st->obj.etag, st->blob.part.etag, sizeof(st->obj.etag));
	st->obj.sum = r->sum; /* the body's, verified (payload.c) */
	st->obj.mtime_ms = kura_now_ms();
	/* The bucket's default retention counts from the version's
	 * creation, not from the start of a long upload. */
	s3_lock_default(r, &st->lock);
	st->obj.lock_mode = st->lock.mode;
	st->obj.lock_until_ms = st->lock.until_ms;
	st->obj.legal_hold = st->lock.legal_hold;
	s3_version_prepare(r, &st->obj);
	if (st->obj.sse != KURA_SSE_S3 &&
	    (rc = s3_sum_mask(st->blob.dek, S3_SUM_OBJECT, st->obj.version_uid,
			      0, &st->obj.sum, &err)) != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	if (!s3_version_put(r, &st->obj, st->cond))
		return;
	s3_blob_publish(&st->blob, r->http->id);
	s3_note_version(r, st->obj.version_uid);
	s3_collect_garbage(r);
	s3_respond_stored(r, st->obj.etag, &r->sum);
	/* A null version has no id to tell (S3 sends none for it). */
	if (!st->obj.null_version)
		s3_version_headers(r, &st->obj);
	s3_expiration_header(r, &st->obj);
}

void s3_put_object(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r) || !s3_check_unsupported_put_headers(r))
		return;
	struct put_state *st = s3_blob_op_start(r, sizeof(*st));
	if (st == NULL)
		return;
	st->obj.bucket_id = r->bucket.id;
	st->obj.key = r->key;
	st->obj.key_len = r->key_len;
	if (!s3_object_headers_from_request(r, &st->obj) ||
	    !s3_sse_for_write(r, &r->sse) ||
	    !s3_lock_for_write(r, &st->lock, false) ||
	    !s3_write_cond(r, &st->cond_storage, &st->cond))
		return;
	st->obj.sse = r->sse.mode;
	st->obj.kms_key_id = r->sse.kms_key_id;
	enum kura_err rc =
		kura_random_bytes(st->obj.version_uid, KURA_UID_LEN, &err);
	if (rc == KURA_OK)
		rc = s3_sse_check_value(r, &r->sse, st->obj.version_uid,
					st->obj.ssec_hmac, &err);
	if (rc == KURA_OK)
		rc = s3_blob_begin(&st->blob, svc, &r->bucket,
				   st->obj.version_uid, 0, &r->sse, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	r->max_body = svc->max_object_size;
	r->op_finish = put_finish;
	s3_payload_begin(r);
}

/*
 * object_delete.c — DeleteObject.  Deleting a key that does not exist
 * succeeds (204), as in S3.  The metadata row goes first, in one transaction
 * that queues the blobs for removal; the blobs are removed right after, or
 * by the next collection if the process stops in between.
 */
#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

void s3_delete_object(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r))
		return;
	enum kura_err rc = kura_meta_object_delete(svc->meta, r->bucket.id,
						   r->key, r->key_len, &err);
	if (rc != KURA_OK && rc != KURA_ENOENT) {
		s3_error_from(r, rc, &err);
		return;
	}
	s3_collect_garbage(r);
	s3_respond(r, 204);
}

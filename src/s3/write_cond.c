/*
 * write_cond.c — conditional writes: If-None-Match: * and If-Match: ETAG
 * on PutObject, CompleteMultipartUpload and CopyObject, If-Match on
 * DeleteObject, as AWS has them since 2024 (Terraform's S3 lock file and
 * other lock-by-object tools rely on exactly one of many racing writers
 * winning).
 *
 * The condition is evaluated against the key's newest version, opened
 * through its seal (the ETag lives only there); the write then carries
 * that version's vseq and the store commits only while it is still the
 * newest, in the same transaction.  A writer that lost the race has the
 * conditions evaluated again: 412 PreconditionFailed when they fail now
 * (another If-None-Match writer won), 409 ConditionalRequestConflict
 * when they still hold (the key changed and changed back).
 *
 * Thread-safe (per request).
 */
#include <string.h>

#include "s3_int.h"
#include "kura/banned.h"

/* An If-Match list names etag (S3 accepts one ETag, quoted or not, or
 * "*"). */
static bool etag_matches(const struct kura_str *v, const char *etag)
{
	const char *p = v->p;
	size_t n = v->len;
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 1 && *p == '*')
		return true;
	if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
		p++;
		n -= 2;
	}
	return n == strlen(etag) && memcmp(p, etag, n) == 0;
}

/* The newest version of r->key, opened; *o NULL when the key has none. */
static bool newest_version(struct s3_req *r, struct kura_object **o)
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_meta_object_get(r->svc->meta, r->bucket.id,
						r->key, r->key_len, r->pool, o,
						&err);
	if (rc == KURA_ENOENT) {
		*o = NULL;
		return true;
	}
	if (rc == KURA_OK)
		rc = kura_seal_object_open(&r->seal, r->bucket.tenant_id, *o,
					   false, &err);
	return s3_seal_ok(r, rc, &err, r->bucket.name, r->key, r->key_len,
			  rc == KURA_OK || *o == NULL ? NULL :
							(*o)->version_uid);
}

bool s3_write_cond(struct s3_req *r, struct kura_put_cond *storage,
		   const struct kura_put_cond **cond)
{
	const struct kura_str *im = s3_header(r, "If-Match");
	const struct kura_str *inm = s3_header(r, "If-None-Match");
	struct kura_object *o = NULL;
	*cond = NULL;
	if (im == NULL && inm == NULL)
		return true;
	if (inm != NULL && r->op == S3_OP_DeleteObject) {
		s3_not_implemented(r, "If-None-Match on DeleteObject");
		return false;
	}
	/* S3 takes only "*" here: "not if any version exists". */
	if (inm != NULL && !(inm->len == 1 && inm->p[0] == '*')) {
		s3_not_implemented(r, "If-None-Match with an ETag on a write");
		return false;
	}
	if (!newest_version(r, &o))
		return false;
	bool exists = o != NULL && !o->delete_marker;
	if (inm != NULL && exists) {
		s3_error(r, S3_PreconditionFailed, NULL, "the key exists");
		return false;
	}
	if (im != NULL && !exists) {
		s3_error(r, S3_NoSuchKey, NULL, "If-Match on a missing key");
		return false;
	}
	if (im != NULL && !etag_matches(im, o->etag)) {
		s3_error(r, S3_PreconditionFailed, NULL, "ETag differs");
		return false;
	}
	storage->expect_vseq = o != NULL ? o->vseq : 0;
	*cond = storage;
	return true;
}

void s3_write_cond_conflict(struct s3_req *r)
{
	struct kura_put_cond again;
	const struct kura_put_cond *cond = NULL;
	if (s3_write_cond(r, &again, &cond))
		s3_error(r, S3_ConditionalRequestConflict, NULL,
			 "the key changed during the request");
}

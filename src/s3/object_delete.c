/*
 * object_delete.c — DeleteObject, and deleting one key as DeleteObjects
 * does it too.
 *
 * Without a version id: in a bucket never versioned the object goes (its
 * null version); in a versioned bucket a delete marker becomes the newest
 * version and hides the key, every version staying (the null marker,
 * replacing the null version, when versioning is suspended).  With one:
 * that version goes for good — the only way data leaves a versioned
 * bucket — unless Object Lock protects it (a legal hold, or retention not
 * ended; GOVERNANCE retention yields to x-amz-bypass-governance-retention):
 * then 403 AccessDenied, as on S3, checked on the sealed settings.
 * Deleting what does not exist succeeds (204), as in S3.  The
 * metadata row goes first, in one transaction that queues the blobs for
 * removal; the blobs are removed right after, or by the next collection
 * if the process stops in between.
 */
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

/* Remove the version sel names for good. */
static enum kura_err delete_version(struct s3_req *r, const char *key,
				    size_t key_len,
				    const struct s3_version_sel *sel,
				    const struct kura_put_cond *cond,
				    struct s3_deleted *out,
				    struct kura_error *err)
{
	struct kura_meta *meta = r->svc->meta;
	const uint8_t *uid = sel->null_version ? NULL : sel->uid;
	struct kura_object *o = NULL;
	bool bypass = s3_bypass_governance(r);
	enum kura_err rc = kura_meta_object_get_version(
		meta, r->bucket.id, key, key_len, uid, r->pool, &o, err);
	/* Its Object Lock settings as sealed, not as the row claims. */
	if (rc == KURA_OK)
		rc = kura_seal_object_open(&r->seal, r->bucket.tenant_id, o,
					   false, err);
	if (rc == KURA_OK && kura_version_locked(o, kura_now_ms(), bypass))
		rc = kura_fail(err, KURA_EPERM,
			       "the version is protected by Object Lock");
	if (rc == KURA_OK)
		rc = kura_meta_object_delete(meta, r->bucket.id, key, key_len,
					     uid, cond, bypass, err);
	if (rc != KURA_OK)
		return rc;
	out->found = true;
	out->marker = o->delete_marker;
	out->versioned = true;
	s3_version_id(o, out->version_id);
	memcpy(out->uid, o->version_uid, KURA_UID_LEN);
	s3_note_version(r, o->version_uid);
	return KURA_OK;
}

enum kura_err s3_delete_key(struct s3_req *r, const char *key, size_t key_len,
			    const struct s3_version_sel *sel,
			    const struct kura_put_cond *cond,
			    struct s3_deleted *out, struct kura_error *err)
{
	memset(out, 0, sizeof(*out));
	if (sel != NULL && sel->given)
		return delete_version(r, key, key_len, sel, cond, out, err);
	if (r->bucket.versioning == KURA_VERSIONING_OFF) {
		struct s3_version_sel null_sel = { .given = true,
						   .null_version = true };
		enum kura_err rc = delete_version(r, key, key_len, &null_sel,
						  cond, out, err);
		out->versioned = false;
		return rc;
	}
	struct kura_object marker;
	enum kura_err rc =
		s3_put_delete_marker(r, key, key_len, cond, &marker, err);
	if (rc != KURA_OK)
		return rc;
	out->found = true;
	out->marker = true;
	out->versioned = true;
	s3_version_id(&marker, out->version_id);
	memcpy(out->uid, marker.version_uid, KURA_UID_LEN);
	s3_note_version(r, marker.version_uid);
	return KURA_OK;
}

void s3_delete_object(struct s3_req *r)
{
	struct kura_error err = { 0 };
	struct s3_version_sel sel;
	struct kura_put_cond cond_storage;
	const struct kura_put_cond *cond = NULL;
	struct s3_deleted d;
	if (!s3_load_bucket(r) || !s3_request_version(r, &sel) ||
	    !s3_write_cond(r, &cond_storage, &cond))
		return;
	enum kura_err rc =
		s3_delete_key(r, r->key, r->key_len, &sel, cond, &d, &err);
	if (rc == KURA_ECONFLICT && cond != NULL) {
		s3_write_cond_conflict(r);
		return;
	}
	if (rc == KURA_EPERM) {
		s3_lock_denied(r, err.msg);
		return;
	}
	if (rc != KURA_OK && rc != KURA_ENOENT) {
		s3_error_from(r, rc, &err);
		return;
	}
	/* What the audit replay (kura audit verify --against-meta) needs
	 * to know about the version noted. */
	/* A bucket never versioned: its only version went, the key is gone
	 * (no version effect). */
	bool versioned_bucket = r->bucket.versioning != KURA_VERSIONING_OFF;
	if (rc == KURA_OK && d.versioned && versioned_bucket)
		r->audit_detail = d.marker && !sel.given ?
					  "{\"version_effect\":\"marker\"}" :
					  "{\"version_effect\":\"removed\"}";
	else if (rc == KURA_ENOENT && sel.given && versioned_bucket)
		r->audit_detail = "{\"version_effect\":\"none\"}";
	s3_collect_garbage(r);
	if (s3_respond(r, 204) != KURA_OK)
		return;
	/* Detail only: the deletion is done and answered. */
	if (d.versioned)
		KURA_IGNORE(kura_http_resp_header(r->http, "x-amz-version-id",
						  d.version_id));
	if (d.marker)
		KURA_IGNORE(kura_http_resp_header(
			r->http, "x-amz-delete-marker", "true"));
}

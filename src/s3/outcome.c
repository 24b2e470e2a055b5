/*
 * outcome.c — how a failed step of a request is answered: a kura error
 * mapped to its S3 error (s3_error_from, s3_ok), and a stored row that
 * fails its integrity check answered 500 *and* recorded (s3_seal_ok,
 * s3_seal_new_object).
 *
 * It sits above errors.c (the error documents) and integrity.c (the
 * records of integrity failures), which do not call back: the file graph
 * of s3 stays without cycles (tests/integration/test_source_rules.py).
 *
 * Thread-safe (per request).
 */
#include "kura/audit.h"
#include "kura/log.h"
#include "kura/seal.h"
#include "s3_int.h"
#include "kura/banned.h"

void s3_error_from(struct s3_req *r, enum kura_err code,
		   const struct kura_error *err)
{
	const char *detail = err && err->msg[0] ? err->msg :
						  kura_strerror(code);
	switch (code) {
	case KURA_ENOSPC:
		s3_error(r, S3_ServiceUnavailable,
			 "The server has no space left to store this object.",
			 detail);
		break;
	case KURA_EBUSY:
		s3_error(r, S3_ServiceUnavailable, NULL, detail);
		break;
	case KURA_EKEY:
		s3_error(r, S3_ServiceUnavailable,
			 "The key provider is not reachable; try again later.",
			 detail);
		break;
	case KURA_EKEY_DISABLED:
		s3_error(r, S3_KMSDisabled, NULL, detail);
		break;
	case KURA_EKEY_DESTROYED:
		s3_error(r, S3_KMSInvalidState, NULL, detail);
		break;
	case KURA_ETOOBIG:
		s3_error(r, S3_EntityTooLarge, NULL, detail);
		break;
	case KURA_ECONFLICT: /* another writer changed the key meanwhile */
		s3_error(r, S3_ConditionalRequestConflict, NULL, detail);
		break;
	case KURA_EINTEGRITY: /* a metadata row failed its MAC or seal */
		s3_integrity_failure(r, r->bucket_name, r->key, r->key_len,
				     NULL, detail);
		s3_error(r, S3_InternalError,
			 "Stored metadata failed its integrity check.", detail);
		break;
	default:
		s3_error(r, S3_InternalError, NULL, detail);
		break;
	}
}

bool s3_ok(struct s3_req *r, enum kura_err rc, const struct kura_error *err,
	   enum s3_error if_missing)
{
	if (rc == KURA_OK)
		return true;
	if (rc == KURA_ENOENT)
		s3_error(r, if_missing, NULL, NULL);
	else
		s3_error_from(r, rc, err);
	return false;
}

bool s3_seal_ok(struct s3_req *r, enum kura_err rc,
		const struct kura_error *err, const char *bucket,
		const char *key, size_t key_len, const uint8_t *version_uid)
{
	if (rc == KURA_OK)
		return true;
	if (rc == KURA_EINTEGRITY) {
		s3_integrity_failure(r, bucket, key, key_len, version_uid,
				     err->msg);
		s3_error(r, S3_InternalError,
			 "The stored object failed its integrity check.",
			 err->msg);
		return false;
	}
	s3_error_from(r, rc, err);
	return false;
}

void s3_note_row(struct s3_req *r, uint64_t tenant_id,
		 const struct kura_object *o)
{
	struct kura_error err = { 0 };
	/* The record goes without it rather than the request failing: the
	 * digest is evidence for later, not part of the write. */
	if (kura_seal_object_digest(r->svc->row_digest_key, tenant_id, o,
				    r->row_digest, &err) != KURA_OK) {
		r->row_digest[0] = '\0';
		kura_warn(r->http->id, "audit: no row digest: %s", err.msg);
	}
}

bool s3_seal_new_object(struct s3_req *r, struct kura_object *o)
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_seal_object(&r->seal, &r->bucket, o, &err);
	if (rc != KURA_OK)
		s3_error_from(r, rc, &err);
	else
		s3_note_row(r, r->bucket.tenant_id, o);
	return rc == KURA_OK;
}

/*
 * integrity.c — the S3 side of metadata seals (include/kura/seal.h):
 * loading an object only through its seal, and what happens when
 * something stored fails its integrity check.
 *
 * A failure is never answered with data: the client gets 500
 * InternalError, the failure is logged, counted
 * (kura_service.integrity_failures) and written to the audit log as an
 * "integrity.failure" record naming the request, bucket, key, version and
 * what failed — the evidence a security officer needs when someone with
 * the data directory but no keys tampered with it.
 *
 * Thread-safe (the counter is atomic; the rest is per request).
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/encode.h"
#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

void s3_integrity_failure(struct s3_req *r, const char *bucket, const char *key,
			  size_t key_len, const uint8_t *version_uid,
			  const char *what)
{
	struct s3_who who = {
		.request_id = r->http->id,
		.tenant_id = r->tenant_id,
		.access_key = r->access_key[0] ? r->access_key : NULL,
		.source = r->http->remote[0] ? r->http->remote : NULL,
	};
	s3_integrity_report(r->svc, &who, bucket, key, key_len, version_uid, what);
}

void s3_integrity_report(struct kura_service *svc, const struct s3_who *who,
			 const char *bucket, const char *key, size_t key_len,
			 const uint8_t *version_uid, const char *what)
{
	char version[2 * KURA_UID_LEN + 1] = "";
	uint64_t n = __atomic_add_fetch(&svc->integrity_failures, 1, __ATOMIC_RELAXED);
	json_t *d = json_pack("{s:s}", "what", what ? what : "unknown");
	char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
	struct kura_error err = { 0 };

	json_decref(d);
	if (version_uid != NULL)
		kura_hex_encode(version_uid, KURA_UID_LEN, version);
	kura_error(who->request_id, "integrity failure #%llu in bucket '%s' version %s: %s",
		   (unsigned long long)n, bucket ? bucket : "-",
		   version[0] ? version : "-", what ? what : "unknown");
	struct kura_audit_record rec = {
		.type = "integrity",
		.op = "integrity.failure",
		.request_id = who->request_id,
		.tenant_id = who->tenant_id,
		.access_key = who->access_key,
		.source = who->source,
		.bucket = bucket,
		.key = key,
		.key_len = key ? key_len : 0,
		.version = version[0] ? version : NULL,
		.error = "EINTEGRITY",
		.detail_json = detail,
	};
	/* The request's own record follows (and fails closed if the log is
	 * down); this one must not turn the answer into something else. */
	if (kura_service_audit(svc, &rec, &err) != KURA_OK)
		kura_error(who->request_id, "audit log refused the integrity record: %s",
			   err.msg);
	free(detail);
}

bool s3_seal_ok(struct s3_req *r, enum kura_err rc, const struct kura_error *err,
		const char *bucket, const char *key, size_t key_len,
		const uint8_t *version_uid)
{
	if (rc == KURA_OK)
		return true;
	if (rc == KURA_EINTEGRITY) {
		s3_integrity_failure(r, bucket, key, key_len, version_uid, err->msg);
		s3_error(r, S3_InternalError,
			 "The stored object failed its integrity check.", err->msg);
		return false;
	}
	s3_error_from(r, rc, err);
	return false;
}

bool s3_load_object(struct s3_req *r, const struct kura_bucket *b, const char *key,
		    size_t key_len, struct kura_object **o)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	enum kura_err rc = meta->ops->object_get(meta->priv, b->id, key, key_len, r->pool,
						 o, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchKey))
		return false;
	rc = kura_seal_object_open(&r->seal, b->tenant_id, *o, true, &err);
	return s3_seal_ok(r, rc, &err, b->name, key, key_len, (*o)->version_uid);
}

bool s3_seal_new_object(struct s3_req *r, struct kura_object *o)
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_seal_object(&r->seal, &r->bucket, o, &err);
	if (rc != KURA_OK)
		s3_error_from(r, rc, &err);
	return rc == KURA_OK;
}

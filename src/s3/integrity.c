/*
 * integrity.c — what happens when something stored fails its integrity
 * check (a metadata seal, a row MAC, a blob): the record of the failure.
 * Answering it is outcome.c's (s3_seal_ok, s3_error_from), which calls
 * this file and never the other way.
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

/* The log line, the count, and the record (filled but for its strings'
 * lifetime, which the callers arrange). */
static void report(struct kura_service *svc, struct kura_audit_record *rec,
		   const uint8_t *version_uid,
		   char version[2 * KURA_UID_LEN + 1], const char *what)
{
	uint64_t n = __atomic_add_fetch(&svc->integrity_failures, 1,
					__ATOMIC_RELAXED);
	version[0] = '\0';
	if (version_uid != NULL)
		kura_hex_encode(version_uid, KURA_UID_LEN, version);
	kura_error(rec->request_id,
		   "integrity failure #%llu in bucket '%s' version %s: %s",
		   (unsigned long long)n, rec->bucket ? rec->bucket : "-",
		   version[0] ? version : "-", what ? what : "unknown");
	rec->type = "integrity";
	rec->op = "integrity.failure";
	rec->version = version[0] ? version : NULL;
	rec->error = "EINTEGRITY";
}

/* {"what": ...} as JSON text (malloc'd), NULL when out of memory. */
static char *what_json(const char *what)
{
	json_t *d = json_pack("{s:s}", "what", what ? what : "unknown");
	char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return text;
}

void s3_integrity_failure(struct s3_req *r, const char *bucket, const char *key,
			  size_t key_len, const uint8_t *version_uid,
			  const char *what)
{
	char *version = kura_palloc(r->pool, 2 * KURA_UID_LEN + 1);
	char *detail = what_json(what);
	struct kura_error err = { 0 };
	struct kura_audit_record rec = {
		.request_id = r->http->id,
		.tenant_id = r->tenant_id,
		.access_key = r->access_key[0] ? r->access_key : NULL,
		.source = r->http->remote[0] ? r->http->remote : NULL,
		.bucket = bucket ? kura_pstrdup(r->pool, bucket) : NULL,
		.key = key ? kura_pstrndup(r->pool, key, key_len) : NULL,
		.key_len = key ? key_len : 0,
		.detail_json = detail ? kura_pstrdup(r->pool, detail) : NULL,
	};
	char scratch[2 * KURA_UID_LEN + 1];
	free(detail);
	report(r->svc, &rec, version_uid, version ? version : scratch, what);
	if (version == NULL)
		rec.version = NULL;
	/* Before the answer it goes with the request's own record, as one
	 * group: written together or the client gets 503. */
	enum kura_err rc = r->answered ?
				   kura_service_audit(r->svc, &rec, &err) :
				   s3_audit_add(r, &rec);
	if (rc != KURA_OK)
		kura_error(r->http->id,
			   "audit log refused the integrity record: %s",
			   err.msg[0] ? err.msg : kura_strerror(rc));
}

void s3_integrity_report(struct kura_service *svc, const struct s3_who *who,
			 const char *bucket, const char *key, size_t key_len,
			 const uint8_t *version_uid, const char *what)
{
	char version[2 * KURA_UID_LEN + 1];
	char *detail = what_json(what);
	struct kura_error err = { 0 };
	struct kura_audit_record rec = {
		.request_id = who->request_id,
		.tenant_id = who->tenant_id,
		.access_key = who->access_key,
		.source = who->source,
		.bucket = bucket,
		.key = key,
		.key_len = key ? key_len : 0,
		.detail_json = detail,
	};
	report(svc, &rec, version_uid, version, what);
	if (kura_service_audit(svc, &rec, &err) != KURA_OK)
		kura_error(who->request_id,
			   "audit log refused the integrity record: %s",
			   err.msg);
	free(detail);
}

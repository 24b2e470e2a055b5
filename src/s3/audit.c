/*
 * audit.c — the audit record of every S3 request (requirement B-6): who
 * (tenant, access key, client address) did what (operation, bucket, key,
 * object version) with which outcome (status, S3 error, bytes, latency).
 *
 * Written from the http layer's before_send hook, i.e. after the operation
 * and before the client hears of it, and kura_service_audit returns only
 * once the record is durable: no client is ever told of an operation that
 * the log does not hold.  When the log cannot take the record the client
 * gets 503 instead of its answer (the operation may have happened — as
 * when a connection drops — and a retry is recorded).
 *
 * Requests that fail authentication are recorded too, with the access key
 * they claimed: failed attempts are what a security officer looks for.
 *
 * Thread-safe (the audit log is).
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/encode.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

void s3_audit_note_source(struct s3_req *r, const char *bucket,
			  const char *key, size_t key_len)
{
	json_t *d = json_object();
	json_t *k = json_stringn(key, key_len);	/* NULL unless valid UTF-8 */
	if (d == NULL)
		return;
	json_object_set_new(d, "source_bucket", json_string(bucket));
	if (k != NULL) {
		json_object_set_new(d, "source_key", k);
	} else {
		char *hex = kura_palloc(r->pool, 2 * key_len + 1);
		if (hex != NULL) {
			kura_hex_encode((const uint8_t *)key, key_len, hex);
			json_object_set_new(d, "source_key_hex", json_string(hex));
		}
	}
	char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (text != NULL) {
		r->audit_detail = kura_pstrdup(r->pool, text);
		free(text);
	}
}

/* {"method":"..."} keeping only token characters that need no escaping. */
static void method_detail(const char *method, char *out, size_t cap)
{
	char m[17];
	size_t n = 0;
	for (const char *p = method; *p && n < sizeof(m) - 1; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
			m[n++] = *p;
	m[n] = '\0';
	snprintf(out, cap, "{\"method\":\"%s\"}", m);
}

void s3_audit_before_send(void *ctx, struct kura_http_req *h)
{
	struct kura_service *svc = ctx;
	struct s3_req *r = h->handler_ctx;
	if (svc->audit == NULL)
		return;
	char version[2 * KURA_UID_LEN + 1] = "";
	char detail[96] = "";
	struct kura_audit_record rec = {
		.type = "s3",
		.op = r ? s3_op_name(r->op) : "-",
		.request_id = h->id,
		.source = h->remote[0] ? h->remote : NULL,
		.bytes_in = h->bytes_in,
		.bytes_out = kura_http_resp_length(h),
		.status = kura_http_resp_status(h),
		.latency_us = (kura_mono_ns() - h->start_ns) / 1000,
	};
	if (r != NULL) {
		if (r->head)
			rec.bytes_out = 0;	/* the length is announced, not sent */
		rec.tenant_id = r->tenant_id;
		rec.access_key = r->access_key[0] ? r->access_key : NULL;
		rec.bucket = r->bucket_name;
		rec.key = r->key;
		rec.key_len = r->key ? r->key_len : 0;
		rec.error = r->error_code;
		rec.detail_json = r->audit_detail;
		if (r->have_version) {
			kura_hex_encode(r->version_uid, KURA_UID_LEN, version);
			rec.version = version;
		}
		if (r->op == S3_OP_NONE) {
			/* Unrouted: the method says what was attempted. */
			method_detail(h->method, detail, sizeof(detail));
			rec.detail_json = detail;
		}
	}
	struct kura_error err = { 0 };
	if (kura_service_audit(svc, &rec, &err) == KURA_OK)
		return;
	kura_error(h->id, "audit log refused a record: %s", err.msg);
	if (r != NULL)
		s3_error(r, S3_ServiceUnavailable, "The audit log is not available.",
			 err.msg);
	else
		(void)kura_http_respond(h, 503);
}

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
 * Records that belong to the request (one per key of DeleteObjects, an
 * event found while answering) are queued with s3_audit_add and written
 * with the request's own record as one group: all or none, consecutive,
 * the request's record last.
 *
 * Requests that fail authentication are recorded too, with the access key
 * they claimed: failed attempts are what a security officer looks for.
 *
 * So is every request that was not answered completely (s3_audit_done,
 * from the http layer's done hook): one the client abandoned before its
 * answer (no status, "aborted"), one whose answer was cut short (a second
 * record, "aborted", with the bytes handed to the connection), and one
 * whose head never reached kura ("head": incomplete, or refused by
 * libmicrohttpd with the status it sent).
 *
 * Thread-safe (the audit log is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/encode.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

void s3_audit_note_source(struct s3_req *r, const char *bucket, const char *key,
			  size_t key_len)
{
	json_t *d = json_object();
	json_t *k = json_stringn(key, key_len); /* NULL unless valid UTF-8 */
	if (d == NULL)
		return;
	json_object_set_new(d, "source_bucket", json_string(bucket));
	if (k != NULL) {
		json_object_set_new(d, "source_key", k);
	} else {
		char *hex = kura_palloc(r->pool, 2 * key_len + 1);
		if (hex != NULL) {
			kura_hex_encode((const uint8_t *)key, key_len, hex);
			json_object_set_new(d, "source_key_hex",
					    json_string(hex));
		}
	}
	char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	if (text != NULL) {
		r->audit_detail = kura_pstrdup(r->pool, text);
		free(text);
	}
}

/* The method as a token: only characters that need no escaping, at most
 * 16 (libmicrohttpd passes whatever the request line held). */
static void method_token(const char *method, char m[17])
{
	size_t n = 0;
	for (const char *p = method; *p && n < 16; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
			m[n++] = *p;
	m[n] = '\0';
}

/* The record's detail members (JSON text in the request's pool, or NULL
 * for none): the operation's own (a copy's source), the method of a
 * request that names no operation, and why it ended early (aborted, head),
 * each when it applies. */
static const char *record_detail(struct kura_http_req *h, struct s3_req *r,
				 const char *aborted, const char *head)
{
	bool method = h->method != NULL && (r == NULL || r->op == S3_OP_NONE);
	if (!method && aborted == NULL && head == NULL)
		return r ? r->audit_detail : NULL; /* the common case */
	json_t *d = r != NULL && r->audit_detail != NULL ?
			    json_loads(r->audit_detail, 0, NULL) :
			    json_object();
	const char *out = NULL;
	if (d == NULL)
		return NULL;
	if (method) {
		char m[17];
		method_token(h->method, m);
		json_object_set_new(d, "method", json_string(m));
	}
	if (aborted != NULL)
		json_object_set_new(d, "aborted", json_string(aborted));
	if (head != NULL)
		json_object_set_new(d, "head", json_string(head));
	if (json_object_size(d) > 0) {
		char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		if (text != NULL)
			out = kura_pstrdup(h->pool, text);
		free(text);
	}
	json_decref(d);
	return out;
}

/* What every record of request h says: who, from where, on what.
 * version (2 * KURA_UID_LEN + 1 bytes) receives the version touched. */
static void base_record(struct kura_http_req *h, struct s3_req *r,
			struct kura_audit_record *rec, char *version)
{
	*rec = (struct kura_audit_record){
		.type = "s3",
		.op = r ? s3_op_name(r->op) : "-",
		.request_id = h->id,
		.source = h->remote[0] ? h->remote : NULL,
		.bytes_in = h->bytes_in,
		.latency_us = (kura_mono_ns() - h->start_ns) / 1000,
	};
	if (r == NULL)
		return;
	rec->tenant_id = r->tenant_id;
	rec->access_key = r->access_key[0] ? r->access_key : NULL;
	rec->bucket = r->bucket_name;
	rec->key = r->key;
	rec->key_len = r->key ? r->key_len : 0;
	if (r->have_version) {
		kura_hex_encode(r->version_uid, KURA_UID_LEN, version);
		rec->version = version;
	}
	if (r->row_digest[0] != '\0')
		rec->row = r->row_digest;
}

enum kura_err s3_audit_add(struct s3_req *r,
			   const struct kura_audit_record *rec)
{
	if (r->svc->audit == NULL)
		return KURA_OK;
	if (r->n_audit_extra == r->cap_audit_extra) {
		size_t cap = r->cap_audit_extra ? 2 * r->cap_audit_extra : 16;
		struct kura_audit_record *v = NULL;
		if (cap < KURA_AUDIT_BATCH_MAX)
			v = kura_palloc(r->pool, cap * sizeof(*v));
		if (v == NULL) {
			r->audit_lost = true;
			return KURA_ENOMEM;
		}
		if (r->n_audit_extra)
			memcpy(v, r->audit_extra,
			       r->n_audit_extra * sizeof(*v));
		r->audit_extra = v;
		r->cap_audit_extra = cap;
	}
	r->audit_extra[r->n_audit_extra++] = *rec;
	return KURA_OK;
}

enum kura_err s3_audit_event(struct s3_req *r, const char *type, const char *op,
			     const char *error, const char *detail_json,
			     struct kura_error *err)
{
	char *version = kura_palloc(r->pool, 2 * KURA_UID_LEN + 1);
	struct kura_audit_record rec;
	if (version == NULL)
		return kura_fail(err, KURA_ENOMEM, "audit event");
	base_record(r->http, r, &rec, version);
	rec.type = type;
	rec.op = op;
	rec.error = error;
	rec.bytes_in = 0;
	rec.latency_us = 0;
	if (!r->answered) {
		rec.detail_json =
			detail_json ? kura_pstrdup(r->pool, detail_json) : NULL;
		if ((detail_json && rec.detail_json == NULL) ||
		    s3_audit_add(r, &rec) != KURA_OK)
			return kura_fail(err, KURA_ENOMEM, "audit event");
		return KURA_OK;
	}
	rec.detail_json = detail_json;
	return kura_service_audit(r->svc, &rec, err);
}

/* The request's own record after the ones queued for it, as one group. */
static enum kura_err append_all(struct kura_service *svc, struct s3_req *r,
				const struct kura_audit_record *rec,
				struct kura_error *err)
{
	if (r == NULL || r->n_audit_extra == 0)
		return kura_service_audit(svc, rec, err);
	if (r->audit_lost)
		return kura_fail(err, KURA_ENOMEM,
				 "a record of this request was lost");
	size_t n = r->n_audit_extra;
	for (size_t i = 0; i < n; i++) {
		struct kura_audit_record *x = &r->audit_extra[i];
		x->type = x->type ? x->type : rec->type;
		x->op = x->op ? x->op : rec->op;
		x->bucket = x->bucket ? x->bucket : rec->bucket;
		x->request_id = rec->request_id;
		x->tenant_id = rec->tenant_id;
		x->access_key = rec->access_key;
		x->source = rec->source;
	}
	struct kura_audit_record *all =
		kura_palloc(r->pool, (n + 1) * sizeof(*all));
	if (all == NULL)
		return kura_fail(err, KURA_ENOMEM, "audit records");
	memcpy(all, r->audit_extra, n * sizeof(*all));
	all[n] = *rec;
	return kura_service_audit_batch(svc, all, n + 1, err);
}

void s3_audit_before_send(void *ctx, struct kura_http_req *h)
{
	struct kura_service *svc = ctx;
	struct s3_req *r = h->handler_ctx;
	if (r != NULL)
		r->answered = true;
	if (svc->audit == NULL)
		return;
	char version[2 * KURA_UID_LEN + 1];
	struct kura_audit_record rec;
	base_record(h, r, &rec, version);
	rec.status = kura_http_resp_status(h);
	rec.bytes_out = r != NULL && r->head ? 0 : kura_http_resp_length(h);
	rec.error = r ? r->error_code : NULL;
	rec.detail_json = record_detail(h, r, NULL, NULL);
	struct kura_error err = { 0 };
	if (append_all(svc, r, &rec, &err) == KURA_OK)
		return;
	kura_error(h->id, "audit log refused a record: %s", err.msg);
	if (r != NULL)
		s3_error(r, S3_ServiceUnavailable,
			 "The audit log is not available.", err.msg);
	else
		(void)kura_http_respond(h, 503);
}

void s3_audit_done(struct kura_service *svc, struct kura_http_req *h,
		   bool completed)
{
	struct s3_req *r = h->handler_ctx;
	const char *head = NULL;
	if (svc->audit == NULL)
		return;
	if (h->method == NULL)
		head = h->refused_status ? "refused" : "incomplete";
	else if (r == NULL || (r->answered && completed))
		return; /* recorded when answered (r NULL: out of memory) */
	char version[2 * KURA_UID_LEN + 1];
	struct kura_audit_record rec;
	base_record(h, r, &rec, version);
	if (head != NULL) {
		rec.status = h->refused_status;
	} else if (!r->answered) {
		/* Never answered, so nothing was done: no version exists, and
		 * the error is what kura had decided to answer, if anything. */
		rec.version = NULL;
		rec.error = r->error_code;
	} else {
		/* Answered and recorded; this says the answer did not arrive
		 * whole and how much of it was handed to the connection. */
		rec.bytes_out = r->head ? 0 : h->bytes_out;
	}
	rec.detail_json = record_detail(
		h, r, completed ? NULL : kura_http_abort_name(h->abort), head);
	struct kura_error err = { 0 };
	if (kura_service_audit(svc, &rec, &err) != KURA_OK)
		kura_error(h->id,
			   "audit log refused the record of an aborted "
			   "request: %s",
			   err.msg);
}

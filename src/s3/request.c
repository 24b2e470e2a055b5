/*
 * request.c — the S3 handler behind the HTTP layer: request limits,
 * addressing (path style and virtual-host style), query parameters,
 * authentication, routing to operations, and the access log (the audit
 * record is audit.c's).
 *
 * Order of checks, as S3 does it: request shape and limits, then
 * authentication, then the operation (so an unauthenticated client learns
 * nothing about which buckets exist).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/s3.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define MAX_PARAMS 64

/* Decode one query component: '+' means space (form encoding, as S3 reads
 * query strings), then percent-decoding. */
static const char *decode_component(struct kura_pool *pool, const char *s,
				    size_t n, size_t *out_len)
{
	struct kura_buf tmp, dec;
	const char *res = NULL;
	kura_buf_init(&tmp, n);
	kura_buf_init(&dec, n);
	if (kura_buf_add(&tmp, s, n) != KURA_OK)
		goto out;
	for (size_t i = 0; i < tmp.len; i++)
		if (tmp.data[i] == '+')
			tmp.data[i] = ' ';
	if (kura_uri_decode(tmp.data, tmp.len, &dec) != KURA_OK)
		goto out;
	res = kura_pstrndup(pool, dec.data, dec.len);
	*out_len = dec.len;
out:
	kura_buf_release(&tmp);
	kura_buf_release(&dec);
	return res;
}

static bool parse_params(struct s3_req *r)
{
	struct kura_str q = r->http->query;
	if (q.len == 0)
		return true;
	r->params = kura_palloc(r->pool, MAX_PARAMS * sizeof(*r->params));
	if (r->params == NULL)
		return false;
	size_t pos = 0;
	while (pos <= q.len) {
		const char *amp = memchr(q.p + pos, '&', q.len - pos);
		size_t end = amp ? (size_t)(amp - q.p) : q.len;
		if (end > pos) {
			if (r->nparams == MAX_PARAMS)
				return false;
			const char *item = q.p + pos;
			size_t ilen = end - pos;
			const char *eq = memchr(item, '=', ilen);
			size_t nlen = eq ? (size_t)(eq - item) : ilen, vlen = 0,
			       dummy;
			struct s3_param *p = &r->params[r->nparams];
			p->name = decode_component(r->pool, item, nlen, &dummy);
			p->value = eq ? decode_component(r->pool, eq + 1,
							 ilen - nlen - 1,
							 &vlen) :
					"";
			p->value_len = vlen;
			if (p->name == NULL || p->value == NULL)
				return false;
			/* A NUL in a parameter would be silently truncated by
			 * C string handling; refuse it. */
			if (strlen(p->name) != dummy ||
			    strlen(p->value) != vlen)
				return false;
			r->nparams++;
		}
		if (amp == NULL)
			break;
		pos = end + 1;
	}
	return true;
}

/* The bucket named by a virtual-host-style Host header, or NULL. */
static const char *vhost_bucket(struct s3_req *r)
{
	const struct kura_str *host = s3_header(r, "Host");
	if (host == NULL || host->len == 0 || host->len > 300)
		return NULL;
	size_t n = host->len;
	/* Strip ":port" (not inside an IPv6 literal). */
	if (host->p[0] != '[') {
		const char *colon = memchr(host->p, ':', n);
		if (colon)
			n = (size_t)(colon - host->p);
	}
	for (size_t i = 0; i < r->svc->n_vhost_domains; i++) {
		const char *d = r->svc->vhost_domains[i];
		size_t dl = strlen(d);
		if (n > dl + 1 && host->p[n - dl - 1] == '.' &&
		    strncasecmp(host->p + n - dl, d, dl) == 0)
			return kura_pstrndup(r->pool, host->p, n - dl - 1);
	}
	return NULL;
}

/* Split the decoded path into bucket and key.  Returns false on a malformed
 * target (responds). */
static bool parse_addressing(struct s3_req *r)
{
	struct kura_str path = r->http->path;
	struct kura_buf dec;
	if (path.len == 0 || path.p[0] != '/') {
		s3_error(r, S3_InvalidURI, NULL,
			 "request target is not an absolute path");
		return false;
	}
	kura_buf_init(&dec, path.len);
	if (kura_uri_decode(path.p, path.len, &dec) != KURA_OK) {
		kura_buf_release(&dec);
		s3_error(r, S3_InvalidURI, NULL,
			 "bad percent-encoding in path");
		return false;
	}
	const char *p = kura_pstrndup(r->pool, dec.data, dec.len);
	size_t n = dec.len;
	kura_buf_release(&dec);
	if (p == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	const char *rest = p + 1; /* after the leading '/' */
	size_t rest_len = n - 1;
	const char *vb = vhost_bucket(r);
	if (vb != NULL) {
		r->bucket_name = vb;
	} else if (rest_len > 0) {
		const char *slash = memchr(rest, '/', rest_len);
		size_t blen = slash ? (size_t)(slash - rest) : rest_len;
		r->bucket_name = kura_pstrndup(r->pool, rest, blen);
		if (r->bucket_name == NULL) {
			s3_error(r, S3_InternalError, NULL, "out of memory");
			return false;
		}
		rest = slash ? slash + 1 : rest + rest_len;
		rest_len = slash ? rest_len - blen - 1 : 0;
		if (blen == 0)
			r->bucket_name = NULL;
	}
	if (r->bucket_name != NULL && rest_len > 0) {
		r->key = rest;
		r->key_len = rest_len;
	}
	return true;
}

static bool check_key(struct s3_req *r)
{
	if (r->key == NULL)
		return true;
	if (r->key_len > KURA_OBJECT_KEY_MAX) {
		s3_error(r, S3_KeyTooLongError, NULL, NULL);
		return false;
	}
	if (!kura_utf8_valid(r->key, r->key_len) ||
	    memchr(r->key, 0, r->key_len)) {
		s3_error(r, S3_InvalidArgument,
			 "Object key is not valid UTF-8.", NULL);
		return false;
	}
	return true;
}

enum method {
	M_GET,
	M_PUT,
	M_HEAD,
	M_DELETE,
	M_POST,
	M_OTHER
};

static enum method method_of(const char *m)
{
	static const char *const names[] = { "GET", "PUT", "HEAD", "DELETE",
					     "POST" };
	for (int i = 0; i < 5; i++)
		if (strcmp(m, names[i]) == 0)
			return (enum method)i;
	return M_OTHER;
}

static bool has(const struct s3_req *r, const char *param)
{
	return s3_param_get(r, param) != NULL;
}

/* Operations kura implements on sub-resources whose other operations it
 * does not (s3_unimplemented_op answers for those). */
static enum s3_op route_bucket_partial(struct s3_req *r, enum method m)
{
	if (has(r, "versioning") && m == M_GET)
		return S3_OP_GetBucketVersioning;
	if (has(r, "versioning") && m == M_PUT)
		return S3_OP_PutBucketVersioning;
	if (has(r, "versions") && m == M_GET)
		return S3_OP_ListObjectVersions;
	if (has(r, "object-lock") && m == M_GET)
		return S3_OP_GetObjectLockConfiguration;
	if (has(r, "object-lock") && m == M_PUT)
		return S3_OP_PutObjectLockConfiguration;
	if (has(r, "policy") && m == M_GET)
		return S3_OP_GetBucketPolicy;
	if (has(r, "policy") && m == M_DELETE)
		return S3_OP_DeleteBucketPolicy;
	return S3_OP_NONE;
}

static enum s3_op route_bucket(struct s3_req *r, enum method m,
			       const char **why)
{
	if (has(r, "location"))
		return m == M_GET ? S3_OP_GetBucketLocation : S3_OP_NONE;
	if (has(r, "acl"))
		return m == M_GET ? S3_OP_GetBucketAcl :
		       m == M_PUT ? S3_OP_PutBucketAcl :
				    S3_OP_NONE;
	if (has(r, "uploads"))
		return m == M_GET ? S3_OP_ListMultipartUploads : S3_OP_NONE;
	if (has(r, "encryption"))
		return m == M_GET    ? S3_OP_GetBucketEncryption :
		       m == M_PUT    ? S3_OP_PutBucketEncryption :
		       m == M_DELETE ? S3_OP_DeleteBucketEncryption :
				       S3_OP_NONE;
	if (has(r, "delete"))
		return m == M_POST ? S3_OP_DeleteObjects : S3_OP_NONE;
	if (has(r, "lifecycle"))
		return m == M_GET    ? S3_OP_GetBucketLifecycleConfiguration :
		       m == M_PUT    ? S3_OP_PutBucketLifecycleConfiguration :
		       m == M_DELETE ? S3_OP_DeleteBucketLifecycle :
				       S3_OP_NONE;
	switch (m) {
	case M_GET: {
		const struct s3_param *lt = s3_param_get(r, "list-type");
		return lt && strcmp(lt->value, "2") == 0 ? S3_OP_ListObjectsV2 :
							   S3_OP_ListObjects;
	}
	case M_PUT:
		return S3_OP_CreateBucket;
	case M_HEAD:
		return S3_OP_HeadBucket;
	case M_DELETE:
		return S3_OP_DeleteBucket;
	case M_POST:
		*why = "PostObject (browser-based form upload)";
		return S3_OP_NONE;
	default:
		return S3_OP_NONE;
	}
}

static enum s3_op route_object(struct s3_req *r, enum method m)
{
	bool copy = s3_header(r, "x-amz-copy-source") != NULL;
	if (has(r, "uploads"))
		return m == M_POST ? S3_OP_CreateMultipartUpload : S3_OP_NONE;
	if (has(r, "uploadId")) {
		switch (m) {
		case M_PUT:
			return copy ? S3_OP_UploadPartCopy : S3_OP_UploadPart;
		case M_POST:
			return S3_OP_CompleteMultipartUpload;
		case M_DELETE:
			return S3_OP_AbortMultipartUpload;
		case M_GET:
			return S3_OP_ListParts;
		default:
			return S3_OP_NONE;
		}
	}
	if (has(r, "tagging"))
		return m == M_GET    ? S3_OP_GetObjectTagging :
		       m == M_PUT    ? S3_OP_PutObjectTagging :
		       m == M_DELETE ? S3_OP_DeleteObjectTagging :
				       S3_OP_NONE;
	if (has(r, "acl"))
		return m == M_GET ? S3_OP_GetObjectAcl :
		       m == M_PUT ? S3_OP_PutObjectAcl :
				    S3_OP_NONE;
	if (has(r, "retention"))
		return m == M_GET ? S3_OP_GetObjectRetention :
		       m == M_PUT ? S3_OP_PutObjectRetention :
				    S3_OP_NONE;
	if (has(r, "legal-hold"))
		return m == M_GET ? S3_OP_GetObjectLegalHold :
		       m == M_PUT ? S3_OP_PutObjectLegalHold :
				    S3_OP_NONE;
	switch (m) {
	case M_PUT:
		return copy ? S3_OP_CopyObject : S3_OP_PutObject;
	case M_GET:
		return S3_OP_GetObject;
	case M_HEAD:
		return S3_OP_HeadObject;
	case M_DELETE:
		return S3_OP_DeleteObject;
	default:
		return S3_OP_NONE;
	}
}

static enum s3_op route(struct s3_req *r, const char **why)
{
	enum method m = method_of(r->http->method);
	*why = NULL;
	if (r->bucket_name == NULL)
		return m == M_GET ? S3_OP_ListBuckets : S3_OP_NONE;
	enum s3_op op = r->key == NULL ? route_bucket_partial(r, m) :
					 S3_OP_NONE;
	if (op != S3_OP_NONE)
		return op;
	/* The one operation of the object sub-resource kura implements. */
	if (r->key != NULL && m == M_GET && has(r, "attributes"))
		return S3_OP_GetObjectAttributes;
	if ((*why = s3_unimplemented_op(r)) != NULL)
		return S3_OP_NONE;
	return r->key == NULL ? route_bucket(r, m, why) : route_object(r, m);
}

typedef void (*s3_op_fn)(struct s3_req *r);

static const s3_op_fn op_handlers[S3_OP_COUNT_] = {
	[S3_OP_ListBuckets] = s3_list_buckets,
	[S3_OP_CreateBucket] = s3_create_bucket,
	[S3_OP_HeadBucket] = s3_head_bucket,
	[S3_OP_DeleteBucket] = s3_delete_bucket,
	[S3_OP_GetBucketLocation] = s3_get_bucket_location,
	[S3_OP_GetBucketVersioning] = s3_get_bucket_versioning,
	[S3_OP_PutBucketVersioning] = s3_put_bucket_versioning,
	[S3_OP_ListObjectVersions] = s3_list_object_versions,
	[S3_OP_PutObjectLockConfiguration] = s3_put_object_lock_config,
	[S3_OP_GetObjectLockConfiguration] = s3_get_object_lock_config,
	[S3_OP_PutObjectRetention] = s3_put_object_retention,
	[S3_OP_GetObjectRetention] = s3_get_object_retention,
	[S3_OP_PutObjectLegalHold] = s3_put_object_legal_hold,
	[S3_OP_GetObjectLegalHold] = s3_get_object_legal_hold,
	[S3_OP_ListObjects] = s3_list_objects,
	[S3_OP_ListObjectsV2] = s3_list_objects,
	[S3_OP_PutObject] = s3_put_object,
	[S3_OP_GetObject] = s3_get_object,
	[S3_OP_HeadObject] = s3_get_object,
	[S3_OP_DeleteObject] = s3_delete_object,
	[S3_OP_CreateMultipartUpload] = s3_create_multipart_upload,
	[S3_OP_UploadPart] = s3_upload_part,
	[S3_OP_CompleteMultipartUpload] = s3_complete_multipart_upload,
	[S3_OP_AbortMultipartUpload] = s3_abort_multipart_upload,
	[S3_OP_ListParts] = s3_list_parts,
	[S3_OP_ListMultipartUploads] = s3_list_multipart_uploads,
	[S3_OP_CopyObject] = s3_copy_object,
	[S3_OP_UploadPartCopy] = s3_upload_part_copy,
	[S3_OP_DeleteObjects] = s3_delete_objects,
	[S3_OP_GetObjectAttributes] = s3_get_object_attributes,
	[S3_OP_GetObjectTagging] = s3_get_object_tagging,
	[S3_OP_PutObjectTagging] = s3_put_object_tagging,
	[S3_OP_DeleteObjectTagging] = s3_delete_object_tagging,
	[S3_OP_GetBucketAcl] = s3_get_acl,
	[S3_OP_PutBucketAcl] = s3_put_acl,
	[S3_OP_GetObjectAcl] = s3_get_acl,
	[S3_OP_PutObjectAcl] = s3_put_acl,
	[S3_OP_GetBucketEncryption] = s3_get_bucket_encryption,
	[S3_OP_PutBucketEncryption] = s3_put_bucket_encryption,
	[S3_OP_DeleteBucketEncryption] = s3_delete_bucket_encryption,
	[S3_OP_GetBucketLifecycleConfiguration] = s3_get_bucket_lifecycle,
	[S3_OP_PutBucketLifecycleConfiguration] = s3_put_bucket_lifecycle,
	[S3_OP_DeleteBucketLifecycle] = s3_delete_bucket_lifecycle,
	[S3_OP_GetBucketPolicy] = s3_get_bucket_policy,
	[S3_OP_DeleteBucketPolicy] = s3_delete_bucket_policy,
};

static void on_begin(void *ctx, struct kura_http_req *h)
{
	struct kura_service *svc = ctx;
	struct s3_req *r = kura_palloc(h->pool, sizeof(*r));
	if (r == NULL)
		return; /* the http layer answers 500 */
	r->svc = svc;
	r->http = h;
	r->pool = h->pool;
	r->head = strcmp(h->method, "HEAD") == 0;
	kura_seal_ctx_init(&r->seal, svc->kms, svc->meta);
	h->handler_ctx = r;

	if (h->header_bytes > svc->max_header_bytes) {
		s3_error(r, S3_RequestHeaderSectionTooLarge, NULL, NULL);
		return;
	}
	if (h->target.len > svc->max_url_bytes) {
		s3_error(r, S3_InvalidURI, "The request URI is too long.",
			 NULL);
		return;
	}
	if (!parse_params(r)) {
		s3_error(r, S3_InvalidURI, NULL,
			 "malformed or too many query parameters");
		return;
	}
	if (!parse_addressing(r) || !check_key(r))
		return;
	if (!s3_authenticate(r))
		return;
	const char *why;
	r->op = route(r, &why);
	if (r->op == S3_OP_NONE) {
		if (why != NULL)
			s3_not_implemented(r, why);
		else
			s3_error(r, S3_MethodNotAllowed, NULL, NULL);
		return;
	}
	op_handlers[r->op](r);
}

static void on_body(void *ctx, struct kura_http_req *h, const uint8_t *p,
		    size_t n)
{
	struct s3_req *r = h->handler_ctx;
	(void)ctx;
	if (r == NULL || r->failed)
		return;
	s3_payload_feed(r, p, n);
}

static void on_end(void *ctx, struct kura_http_req *h)
{
	struct s3_req *r = h->handler_ctx;
	(void)ctx;
	if (r == NULL || kura_http_resp_ready(h))
		return;
	if (!s3_payload_end(r))
		return;
	if (r->op_finish)
		r->op_finish(r);
	if (!kura_http_resp_ready(h))
		s3_error(r, S3_InternalError, NULL,
			 "operation gave no response");
}

/* One line per request for the operator.  Object keys are left out: names
 * can be sensitive and the operator does not need them to run the service.
 * Every value a client chose (method, bucket, claimed access key) goes
 * through kura_log_field, so that no client can add fields or lines.  The
 * status is what the client was sent: 0 when nothing was. */
static void access_log(const struct kura_http_req *h, const struct s3_req *r,
		       bool completed)
{
	if (KURA_LOG_INFO < kura_log_threshold)
		return;
	char method[64], bucket[KURA_LOG_FIELD_MAX], ak[KURA_LOG_FIELD_MAX];
	const char *b = r ? r->bucket_name : NULL;
	const char *a = r && r->access_key[0] ? r->access_key : NULL;
	unsigned status = h->method == NULL	    ? h->refused_status :
			  r != NULL && !r->answered ? 0 :
						      kura_http_resp_status(h);
	uint64_t us = (kura_mono_ns() - h->start_ns) / 1000;
	kura_log_field(method, sizeof(method), h->method,
		       h->method ? strlen(h->method) : 0);
	kura_log_field(bucket, sizeof(bucket), b, b ? strlen(b) : 0);
	kura_log_field(ak, sizeof(ak), a, a ? strlen(a) : 0);
	kura_info(h->id,
		  "%s %s op=%s bucket=%s tenant=%llu ak=%s status=%u%s%s "
		  "in=%llu out=%llu us=%llu%s%s",
		  h->remote[0] ? h->remote : "-", method,
		  r ? s3_op_name(r->op) : "-", bucket,
		  (unsigned long long)(r ? r->tenant_id : 0), ak, status,
		  r && r->error_code ? " error=" : "",
		  r && r->error_code ? r->error_code : "",
		  (unsigned long long)h->bytes_in,
		  (unsigned long long)h->bytes_out, (unsigned long long)us,
		  completed ? "" : " aborted=",
		  completed ? "" : kura_http_abort_name(h->abort));
}

static void release(struct s3_req *r)
{
	if (r->op_cleanup)
		r->op_cleanup(r);
	if (r->chunked)
		kura_chunked_free(r->chunked);
	EVP_MD_CTX_free(r->sha256);
	EVP_MD_CTX_free(r->md5);
	kura_checksum_release(&r->checksum);
	s3_sse_release(&r->sse);
	kura_seal_ctx_release(&r->seal);
	kura_secret_free(r->signing_key);
	kura_buf_release(&r->xml_body);
}

/* Release the request, then leave its evidence: an audit record when it
 * was not answered completely (the answer's own was written before it was
 * sent), and the access-log line.  Also called for requests whose head
 * never reached on_begin (h->method NULL, no s3_req). */
static void on_done(void *ctx, struct kura_http_req *h, bool completed)
{
	struct kura_service *svc = ctx;
	struct s3_req *r = h->handler_ctx;
	if (r != NULL)
		release(r);
	s3_audit_done(svc, h, completed);
	access_log(h, r, completed);
}

void kura_s3_handler_init(struct kura_http_handler *handler,
			  struct kura_service *svc)
{
	handler->begin = on_begin;
	handler->body = on_body;
	handler->end = on_end;
	handler->before_send = s3_audit_before_send;
	handler->done = on_done;
	handler->ctx = svc;
}

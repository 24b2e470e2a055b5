/*
 * object_put.c — PutObject: stream the body through the sealer into a staged
 * blob, then commit.
 *
 * Commit order (crash safety): body complete and verified -> final segment
 * sealed -> blob durable in staging (fsync file and directory) -> metadata
 * row committed (the object becomes visible, atomically replacing any old
 * version) -> blob published -> response.  A crash before the metadata commit
 * leaves an unreferenced staged blob that start-up recovery deletes; after
 * it, a referenced one that recovery publishes.  Nothing half-written is
 * ever visible.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define USER_META_MAX 2048	/* bytes of names and values, as S3 */
#define GC_INLINE 16

struct put_state {
	struct kura_binding binding;
	uint8_t blob_id[KURA_BLOB_ID_LEN];
	struct kura_secret *dek;
	struct kura_store_writer *writer;
	struct kura_sealer *sealer;
	bool staged;		/* writer finished: blob durable in staging */
	bool committed;		/* metadata references the blob */
	struct kura_object obj;
	struct kura_part part;
};

static enum kura_err to_store(void *ctx, const void *p, size_t n,
			      struct kura_error *err)
{
	struct s3_req *r = ctx;
	struct put_state *st = r->op_state;
	return r->svc->store->ops->writer_write(st->writer, p, n, err);
}

static enum kura_err put_body(struct s3_req *r, const uint8_t *p, size_t n,
			      struct kura_error *err)
{
	struct put_state *st = r->op_state;
	return kura_sealer_write(st->sealer, p, n, err);
}

static void put_cleanup(struct s3_req *r)
{
	struct put_state *st = r->op_state;
	struct kura_store *store = r->svc->store;
	if (st == NULL)
		return;
	kura_sealer_free(st->sealer);
	if (st->writer)
		store->ops->writer_abort(st->writer);
	if (st->staged && !st->committed)
		(void)store->ops->remove(store->priv, st->blob_id, NULL);
	kura_secret_free(st->dek);
	r->op_state = NULL;
}

/* ---- headers stored with the object ---- */

static const char *header_copy(struct s3_req *r, const char *name)
{
	const struct kura_str *v = s3_header(r, name);
	return v ? kura_pstrndup(r->pool, v->p, v->len) : NULL;
}

/* Content-Encoding without the aws-chunked token, which describes the
 * transfer, not the object.  NULL when nothing remains. */
static const char *content_encoding(struct s3_req *r)
{
	const struct kura_str *v = s3_header(r, "Content-Encoding");
	if (v == NULL)
		return NULL;
	struct kura_buf out;
	kura_buf_init(&out, v->len);
	size_t i = 0;
	while (i < v->len) {
		size_t j = i;
		while (j < v->len && v->p[j] != ',')
			j++;
		size_t a = i, b = j;
		while (a < b && v->p[a] == ' ')
			a++;
		while (b > a && v->p[b - 1] == ' ')
			b--;
		if (b > a && !(b - a == 11 && strncasecmp(v->p + a, "aws-chunked", 11) == 0)) {
			if (out.len)
				kura_buf_addch(&out, ',');
			kura_buf_add(&out, v->p + a, b - a);
		}
		i = j + 1;
	}
	const char *res = out.len ? kura_pstrndup(r->pool, out.data, out.len) : NULL;
	kura_buf_release(&out);
	return res;
}

/* Collect x-amz-meta-* into JSON (lowercased names).  Responds on error. */
static bool user_metadata(struct s3_req *r, const char **json_out)
{
	struct kura_http_req *h = r->http;
	static const char prefix[] = "x-amz-meta-";
	const size_t plen = sizeof(prefix) - 1;
	size_t total = 0;
	json_t *obj = NULL;
	bool ok = false;
	*json_out = NULL;
	for (size_t i = 0; i < h->nheaders; i++) {
		struct kura_str name = h->headers[i].name, value = h->headers[i].value;
		if (name.len <= plen || strncasecmp(name.p, prefix, plen) != 0)
			continue;
		total += name.len - plen + value.len;
		if (total > USER_META_MAX) {
			s3_error(r, S3_MetadataTooLarge, NULL, NULL);
			goto out;
		}
		char lname[256];
		size_t nl = name.len - plen;
		if (nl >= sizeof(lname)) {
			s3_error(r, S3_MetadataTooLarge, NULL, NULL);
			goto out;
		}
		for (size_t k = 0; k < nl; k++)
			lname[k] = (char)tolower((unsigned char)name.p[plen + k]);
		lname[nl] = '\0';
		for (size_t k = 0; k < value.len; k++) {
			unsigned char c = (unsigned char)value.p[k];
			if (c < 0x20 && c != '\t') {
				s3_error(r, S3_InvalidArgument,
					 "Metadata values may not contain control characters.",
					 NULL);
				goto out;
			}
		}
		if (obj == NULL && (obj = json_object()) == NULL)
			goto oom;
		json_t *jv = json_stringn(value.p, value.len);
		if (jv == NULL) {
			/* Not UTF-8: S3 expects RFC 2047 encoding from clients. */
			s3_error(r, S3_InvalidArgument,
				 "Metadata values must be US-ASCII or UTF-8.", NULL);
			goto out;
		}
		if (json_object_set_new(obj, lname, jv) != 0)
			goto oom;
	}
	if (obj != NULL) {
		char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
		if (s == NULL)
			goto oom;
		*json_out = kura_pstrdup(r->pool, s);
		free(s);
		if (*json_out == NULL)
			goto oom;
	}
	ok = true;
	goto out;
oom:
	s3_error(r, S3_InternalError, NULL, "out of memory");
out:
	json_decref(obj);
	return ok;
}

/* Headers naming features kura does not provide answer NotImplemented
 * instead of being silently ignored. */
static bool check_unsupported(struct s3_req *r)
{
	static const char *const refused[] = {
		"x-amz-server-side-encryption-customer-algorithm",
		"x-amz-server-side-encryption-aws-kms-key-id",
		"x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
		"x-amz-object-lock-legal-hold", "x-amz-website-redirect-location",
		"x-amz-tagging", "If-None-Match", "If-Match", NULL,
	};
	for (size_t i = 0; refused[i]; i++) {
		if (s3_header(r, refused[i])) {
			s3_error(r, S3_NotImplemented, NULL, refused[i]);
			return false;
		}
	}
	const struct kura_str *sse = s3_header(r, "x-amz-server-side-encryption");
	if (sse && !kura_str_eq_cstr(*sse, "AES256")) {
		s3_error(r, S3_NotImplemented,
			 "Only AES256 server-side encryption is available; every "
			 "object is encrypted.", NULL);
		return false;
	}
	const struct kura_str *acl = s3_header(r, "x-amz-acl");
	if (acl && !kura_str_eq_cstr(*acl, "private") &&
	    !kura_str_eq_cstr(*acl, "bucket-owner-full-control")) {
		s3_error(r, S3_AccessDenied, "kura never makes data public.", NULL);
		return false;
	}
	const struct kura_str *sc = s3_header(r, "x-amz-storage-class");
	if (sc && !kura_str_eq_cstr(*sc, "STANDARD")) {
		s3_error(r, S3_InvalidArgument, "The storage class you specified is not valid",
			 NULL);
		return false;
	}
	return true;
}

/* ---- the operation ---- */

static void put_finish(struct s3_req *r)
{
	struct put_state *st = r->op_state;
	struct kura_service *svc = r->svc;
	struct kura_store *store = svc->store;
	struct kura_error err = { 0 };
	uint64_t size;
	enum kura_err rc = kura_sealer_finish(st->sealer, &size, &err);
	if (rc != KURA_OK)
		goto fail;
	struct kura_store_writer *w = st->writer;
	st->writer = NULL;	/* finish frees it, on success or failure */
	if ((rc = store->ops->writer_finish(w, &err)) != KURA_OK)
		goto fail;
	st->staged = true;

	kura_hex_encode(r->body_md5, 16, st->part.etag);
	memcpy(st->obj.etag, st->part.etag, sizeof(st->obj.etag));
	st->part.size = size;
	st->obj.size = size;
	st->obj.mtime_ms = kura_now_ms();
	if ((rc = svc->meta->ops->object_put(svc->meta->priv, &st->obj, &err)) != KURA_OK) {
		if (rc == KURA_ENOENT) {
			s3_error(r, S3_NoSuchBucket, NULL, NULL);
			return;
		}
		goto fail;
	}
	st->committed = true;
	if (store->ops->publish &&
	    store->ops->publish(store->priv, st->blob_id, &err) != KURA_OK) {
		/* Committed and durable in staging: recovery will publish it. */
		kura_warn(r->http->id, "publish failed (recovery will retry): %s", err.msg);
		kura_error_clear(&err);
	}
	if (kura_service_collect(svc, GC_INLINE, NULL, &err) != KURA_OK)
		kura_warn(r->http->id, "garbage collection: %s", err.msg);

	char etag[KURA_ETAG_MAX + 2];
	snprintf(etag, sizeof(etag), "\"%s\"", st->obj.etag);
	if (s3_respond(r, 200) != KURA_OK ||
	    kura_http_resp_header(r->http, "ETag", etag) != KURA_OK ||
	    kura_http_resp_header(r->http, "x-amz-server-side-encryption", "AES256") != KURA_OK)
		s3_error(r, S3_InternalError, NULL, "out of memory");
	return;
fail:
	s3_error_from(r, rc, &err);
}

void s3_put_object(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	struct kura_secret *bucket_key = NULL;
	enum kura_err rc;

	if (!s3_load_bucket(r) || !check_unsupported(r))
		return;
	if (s3_header(r, "Content-Length") == NULL &&
	    s3_header(r, "Transfer-Encoding") == NULL) {
		s3_error(r, S3_MissingContentLength, NULL, NULL);
		return;
	}
	struct put_state *st = kura_palloc(r->pool, sizeof(*st));
	if (st == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}
	r->op_state = st;
	r->op_cleanup = put_cleanup;

	struct kura_object *o = &st->obj;
	o->bucket_id = r->bucket.id;
	o->key = r->key;
	o->key_len = r->key_len;
	o->content_type = header_copy(r, "Content-Type");
	o->content_encoding = content_encoding(r);
	o->content_language = header_copy(r, "Content-Language");
	o->content_disposition = header_copy(r, "Content-Disposition");
	o->cache_control = header_copy(r, "Cache-Control");
	o->expires = header_copy(r, "Expires");
	if (!user_metadata(r, &o->user_meta_json))
		return;

	if ((rc = kura_random_bytes(o->version_uid, KURA_UID_LEN, &err)) != KURA_OK ||
	    (rc = kura_random_bytes(st->blob_id, KURA_BLOB_ID_LEN, &err)) != KURA_OK)
		goto fail;
	st->binding.tenant_id = r->bucket.tenant_id;
	st->binding.bucket_id = r->bucket.id;
	memcpy(st->binding.version_uid, o->version_uid, KURA_UID_LEN);
	st->binding.part_no = 0;

	rc = kura_keycache_get(svc->keycache, r->bucket.tenant_id, r->bucket.id,
			       r->bucket.kek_id, r->bucket.key_wrapped,
			       r->bucket.key_wrapped_len, &bucket_key, &err);
	if (rc == KURA_OK)
		rc = kura_dek_new(&st->dek, &err);
	if (rc == KURA_OK)
		rc = kura_dek_wrap(bucket_key, &st->binding, st->dek,
				   st->part.dek_wrapped, &err);
	kura_secret_free(bucket_key);
	if (rc != KURA_OK)
		goto fail;

	st->part.part_no = 0;
	memcpy(st->part.blob_id, st->blob_id, KURA_BLOB_ID_LEN);
	st->part.seg_size = svc->seg_size;
	o->part_count = 1;
	o->parts = &st->part;

	rc = svc->store->ops->writer_open(svc->store->priv, st->blob_id, &st->writer, &err);
	if (rc == KURA_OK)
		rc = kura_sealer_new(st->dek, &st->binding, svc->seg_size, st->blob_id,
				     to_store, r, &st->sealer, &err);
	if (rc != KURA_OK)
		goto fail;

	r->md5_wanted = true;
	r->max_body = svc->max_object_size;
	r->op_body = put_body;
	r->op_finish = put_finish;
	s3_payload_begin(r);
	return;
fail:
	s3_error_from(r, rc, &err);
}

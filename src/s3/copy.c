/*
 * copy.c — CopyObject and UploadPartCopy.
 *
 * A copy decrypts the source and re-encrypts into a new blob under a fresh
 * DEK bound to the target (bucket, version, part): ciphertext is never
 * reused across objects, so the AAD binding of every blob stays exact.
 * Source and target must belong to the same tenant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define COPY_BUF (1u << 20)
#define MAX_COPY_SIZE (5ull * 1024 * 1024 * 1024)

struct copy_source {
	struct kura_bucket bucket;
	struct kura_object *obj;
	struct s3_sse sse; /* how the source is encrypted (its SSE-C key) */
	struct s3_version_sel version; /* the version named, if any */
};

/* The "?versionId=ID" a copy source may end with (q at the '?'). */
static bool source_version(struct s3_req *r, const char *q, size_t n,
			   struct s3_version_sel *sel)
{
	static const char prefix[] = "?versionId=";
	size_t plen = sizeof(prefix) - 1;
	if (n <= plen || memcmp(q, prefix, plen) != 0) {
		s3_error(r, S3_InvalidArgument,
			 "Invalid copy source: only versionId may follow the "
			 "key",
			 NULL);
		return false;
	}
	return s3_version_parse(r, q + plen, n - plen, sel);
}

/* Parse x-amz-copy-source ("[/]bucket/key[?versionId=...]", URL-encoded),
 * load the source and check ownership; responds on failure. */
static bool load_source(struct s3_req *r, struct copy_source *src)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	const struct kura_str *h = s3_header(r, "x-amz-copy-source");
	struct kura_buf dec;
	const char *v = h->p;
	size_t n = h->len;
	const char *q = memchr(v, '?', n);
	if (q != NULL) {
		if (!source_version(r, q, n - (size_t)(q - v), &src->version))
			return false;
		n = (size_t)(q - v);
	}
	kura_buf_init(&dec, n);
	if (kura_uri_decode(v, n, &dec) != KURA_OK) {
		kura_buf_release(&dec);
		s3_error(r, S3_InvalidArgument, "Invalid copy source encoding",
			 NULL);
		return false;
	}
	const char *s = dec.data;
	size_t len = dec.len;
	if (len > 0 && s[0] == '/') {
		s++;
		len--;
	}
	const char *slash = memchr(s, '/', len);
	size_t blen = slash ? (size_t)(slash - s) : 0;
	size_t klen = slash ? len - blen - 1 : 0;
	if (slash == NULL || blen == 0 || blen >= KURA_BUCKET_NAME_MAX ||
	    klen == 0 || klen > KURA_OBJECT_KEY_MAX) {
		kura_buf_release(&dec);
		s3_error(r, S3_InvalidArgument,
			 "Copy Source must mention the source "
			 "bucket and key: sourcebucket/sourcekey",
			 NULL);
		return false;
	}
	char bname[KURA_BUCKET_NAME_MAX];
	memcpy(bname, s, blen);
	bname[blen] = '\0';
	const char *key = kura_pstrndup(r->pool, slash + 1, klen);
	kura_buf_release(&dec);
	if (key == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	enum kura_err rc =
		kura_meta_bucket_get(meta, bname, &src->bucket, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchBucket))
		return false;
	if (src->bucket.tenant_id != r->tenant_id) {
		s3_error(r, S3_AccessDenied, NULL,
			 "copy source belongs to another tenant");
		return false;
	}
	s3_audit_note_source(r, bname, key, klen);
	return s3_load_object(r, &src->bucket, key, klen, &src->version,
			      &src->obj) &&
	       s3_sse_for_read(r, src->obj, true, &src->sse);
}

/* x-amz-copy-source-if-*: the same rules as GET conditions, but every
 * failure is 412. */
static bool source_conditions(struct s3_req *r, const struct kura_object *o)
{
	unsigned c = s3_conditions(r, o, "x-amz-copy-source-if-match",
				   "x-amz-copy-source-if-none-match",
				   "x-amz-copy-source-if-modified-since",
				   "x-amz-copy-source-if-unmodified-since");
	if (c != 0) {
		s3_error(r, S3_PreconditionFailed, NULL, NULL);
		return false;
	}
	return true;
}

/* Decrypt [first, first+len) of the source and seal it into blob. */
static enum kura_err copy_bytes(struct s3_req *r, const struct copy_source *src,
				uint64_t first, uint64_t len,
				struct s3_blob *blob, struct kura_error *err)
{
	struct s3_objread * or = NULL;
	uint8_t *buf = malloc(COPY_BUF);
	enum kura_err rc = buf ? s3_objread_new(r->svc, &src->bucket, src->obj,
						src->sse.customer_key, &r->seal,
						& or, err) :
				 kura_fail(err, KURA_ENOMEM, "copy buffer");
	uint64_t done = 0;
	while (rc == KURA_OK && done < len) {
		size_t want = len - done < COPY_BUF ? (size_t)(len - done) :
						      COPY_BUF,
		       got = 0;
		rc = s3_objread_read(or, first + done, buf, want, &got, err);
		if (rc == KURA_OK && got == 0)
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "source ended early");
		if (rc == KURA_OK)
			rc = s3_blob_write(blob, buf, got, err);
		if (rc == KURA_OK && r->checksum.algo != KURA_CHECKSUM_NONE)
			rc = kura_checksum_update(&r->checksum, buf, got, err);
		done += got;
	}
	if (rc == KURA_OK && len == 0 && src->obj->size == 0)
		rc = s3_objread_verify_at(or, 0, err);
	s3_objread_free(or);
	if (buf)
		kura_wipe(buf, COPY_BUF);
	free(buf);
	return rc;
}

/* Checksum the copied plaintext with algo (nothing for NONE): a copy's
 * checksum is computed over what it holds, never taken from the source,
 * whose value may be a composite of parts the copy does not have.
 * Responds and returns false on failure. */
static bool copy_checksum_begin(struct s3_req *r, enum kura_checksum_algo algo)
{
	struct kura_error err = { 0 };
	if (algo == KURA_CHECKSUM_NONE)
		return true;
	if (kura_checksum_init(&r->checksum, algo, &err) != KURA_OK) {
		s3_error_from(r, KURA_ECRYPTO, &err);
		return false;
	}
	return true;
}

/* The copy's checksum once every byte went through copy_bytes. */
static enum kura_err copy_checksum_end(struct s3_req *r,
				       struct kura_checksum_value *out,
				       struct kura_error *err)
{
	memset(out, 0, sizeof(*out));
	if (r->checksum.algo == KURA_CHECKSUM_NONE)
		return KURA_OK;
	enum kura_err rc = kura_checksum_finish(&r->checksum, err);
	if (rc == KURA_OK)
		kura_checksum_result(&r->checksum, out);
	return rc;
}

/* CopyObject's checksum algorithm: x-amz-checksum-algorithm, else the
 * source's.  Responds and returns false for an unknown one. */
static bool copy_algo(struct s3_req *r, const struct kura_object *src,
		      enum kura_checksum_algo *out)
{
	const struct kura_str *h = s3_header(r, "x-amz-checksum-algorithm");
	*out = src->sum.algo;
	if (h == NULL)
		return true;
	*out = kura_checksum_algo_by_s3_name(*h);
	if (*out != KURA_CHECKSUM_NONE)
		return true;
	s3_error(r, S3_InvalidRequest,
		 "Checksum algorithm provided is unsupported. Please try "
		 "again with any of the valid types: [CRC32, CRC32C, "
		 "CRC64NVME, SHA1, SHA256]",
		 NULL);
	return false;
}

static void copy_error(struct s3_req *r, const struct copy_source *src,
		       enum kura_err rc, const struct kura_error *err)
{
	if (rc == KURA_EINTEGRITY) {
		s3_integrity_failure(r, src->bucket.name, src->obj->key,
				     src->obj->key_len, src->obj->version_uid,
				     err->msg);
		s3_error(r, S3_InternalError,
			 "The source object failed its integrity check.",
			 err->msg);
	} else {
		s3_error_from(r, rc, err);
	}
}

/* x-amz-copy-source-version-id: the version copied, when its bucket has
 * versions or the request named one. */
static void copy_source_version_header(struct s3_req *r,
				       const struct copy_source *src)
{
	char id[S3_VERSION_ID_MAX];
	if (src->bucket.versioning == KURA_VERSIONING_OFF &&
	    !src->version.given)
		return;
	s3_version_id(src->obj, id);
	/* Detail only: the copy is made and answered. */
	KURA_IGNORE(kura_http_resp_header(r->http,
					  "x-amz-copy-source-version-id", id));
}

void s3_copy_object(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	struct copy_source src = { 0 };
	struct kura_object o = { 0 };
	struct s3_blob blob = { 0 };
	struct kura_put_cond cond_storage;
	const struct kura_put_cond *cond = NULL;
	struct s3_lock lock;
	enum kura_checksum_algo algo = KURA_CHECKSUM_NONE;
	if (!s3_load_bucket(r) || !s3_check_unsupported_put_headers(r) ||
	    !load_source(r, &src) || !source_conditions(r, src.obj) ||
	    !copy_algo(r, src.obj, &algo) || !copy_checksum_begin(r, algo) ||
	    !s3_sse_for_write(r, &r->sse) ||
	    !s3_lock_for_write(r, &lock, true) ||
	    !s3_write_cond(r, &cond_storage, &cond))
		goto out;
	if (src.obj->size > MAX_COPY_SIZE) {
		s3_error(
			r, S3_InvalidRequest,
			"The specified copy source is larger than "
			"the maximum allowable size for a copy source: 5368709120",
			NULL);
		goto out;
	}
	const struct kura_str *dir = s3_header(r, "x-amz-metadata-directive");
	bool replace = dir && kura_str_eq_cstr(*dir, "REPLACE");
	if (dir && !replace && !kura_str_eq_cstr(*dir, "COPY")) {
		s3_error(r, S3_InvalidArgument, "Unknown metadata directive.",
			 NULL);
		goto out;
	}
	const struct kura_str *tdir = s3_header(r, "x-amz-tagging-directive");
	bool replace_tags = tdir && kura_str_eq_cstr(*tdir, "REPLACE");
	if (tdir && !replace_tags && !kura_str_eq_cstr(*tdir, "COPY")) {
		s3_error(r, S3_InvalidArgument, "Unknown tagging directive.",
			 NULL);
		goto out;
	}
	bool same = src.bucket.id == r->bucket.id &&
		    src.obj->key_len == r->key_len &&
		    memcmp(src.obj->key, r->key, r->key_len) == 0;
	bool sse_change =
		s3_header(r, "x-amz-server-side-encryption") ||
		s3_header(r, "x-amz-server-side-encryption-customer-algorithm");
	if (same && !replace && !sse_change) {
		s3_error(
			r, S3_InvalidRequest,
			"This copy request is illegal because it is trying to copy an "
			"object to itself without changing the object's metadata, "
			"storage class, website redirect location or encryption "
			"attributes.",
			NULL);
		goto out;
	}
	if (replace) {
		if (!s3_object_headers_from_request(r, &o))
			goto out;
	} else {
		o = *src.obj;
		if (s3_header(r, "x-amz-tagging") != NULL && replace_tags) {
			struct kura_object t = { 0 };
			if (!s3_object_headers_from_request(r, &t))
				goto out;
			o.tags_json = t.tags_json;
		}
	}
	if (replace && !replace_tags)
		o.tags_json = src.obj->tags_json;
	o.bucket_id = r->bucket.id;
	o.key = r->key;
	o.key_len = r->key_len;
	/* The copy is encrypted as this request (or the target bucket's
	 * default) says, never inherited from the source. */
	o.sse = r->sse.mode;
	o.kms_key_id = r->sse.kms_key_id;
	enum kura_err rc = kura_random_bytes(o.version_uid, KURA_UID_LEN, &err);
	if (rc == KURA_OK)
		rc = s3_sse_check_value(r, &r->sse, o.version_uid, o.ssec_hmac,
					&err);
	if (rc == KURA_OK)
		rc = s3_blob_begin(&blob, svc, &r->bucket, o.version_uid, 0,
				   &r->sse, &err);
	if (rc == KURA_OK)
		rc = copy_bytes(r, &src, 0, src.obj->size, &blob, &err);
	struct kura_checksum_value shown = { 0 };
	if (rc == KURA_OK)
		rc = copy_checksum_end(r, &shown, &err);
	o.sum = shown;
	if (rc == KURA_OK && o.sse != KURA_SSE_S3)
		rc = s3_sum_mask(blob.dek, S3_SUM_OBJECT, o.version_uid, 0,
				 &o.sum, &err);
	if (rc == KURA_OK)
		rc = s3_blob_stage(&blob, &err);
	if (rc != KURA_OK) {
		copy_error(r, &src, rc, &err);
		goto out;
	}
	o.parts = &blob.part;
	o.part_count = 1;
	o.size = blob.part.size;
	memcpy(o.etag, blob.part.etag, sizeof(o.etag));
	o.mtime_ms = kura_now_ms();
	/* The copy's Object Lock is the request's (or the bucket's default),
	 * never the source's. */
	o.lock_mode = lock.mode;
	o.lock_until_ms = lock.until_ms;
	o.legal_hold = lock.legal_hold;
	s3_version_prepare(r, &o);
	if (!s3_version_put(r, &o, cond))
		goto out;
	s3_blob_publish(&blob, r->http->id);
	s3_note_version(r, o.version_uid);
	s3_collect_garbage(r);

	struct kura_buf b;
	char ts[KURA_TIME_ISO8601_LEN], etag[KURA_ETAG_MAX + 2];
	kura_time_iso8601(o.mtime_ms, ts);
	snprintf(etag, sizeof(etag), "\"%s\"", o.etag);
	kura_buf_init(&b, S3_DOC_SMALL_MAX);
	s3_xml_root(&b, "CopyObjectResult");
	s3_xml_elem_str(&b, "LastModified", ts);
	s3_xml_elem_str(&b, "ETag", etag);
	s3_checksum_xml(&b, &shown, 1, true);
	s3_xml_close(&b, "CopyObjectResult");
	if (s3_respond_xml(r, &b)) {
		s3_sse_respond_headers(r, &r->sse);
		s3_version_headers(r, &o);
		copy_source_version_header(r, &src);
		s3_expiration_header(r, &o);
	}
	kura_buf_release(&b);
out:
	s3_blob_discard(&blob);
	s3_sse_release(&src.sse);
}

/* x-amz-copy-source-range: exactly "bytes=first-last" (no open or suffix
 * form), first <= last < source size.  Unlike a GET Range, a range past
 * the end is an error, never clamped: the part would silently be shorter
 * than the client asked for.  Responds on failure. */
static bool copy_range(struct s3_req *r, struct kura_str v, uint64_t size,
		       uint64_t *first, uint64_t *last)
{
	const char *dash = v.len > 6 ? memchr(v.p + 6, '-', v.len - 6) : NULL;
	uint64_t a, b;
	if (dash == NULL || memcmp(v.p, "bytes=", 6) != 0 ||
	    kura_parse_u64(v.p + 6, (size_t)(dash - v.p) - 6, UINT64_MAX, &a) !=
		    KURA_OK ||
	    kura_parse_u64(dash + 1, v.len - (size_t)(dash - v.p) - 1,
			   UINT64_MAX, &b) != KURA_OK ||
	    a > b) {
		const char *sent = kura_pstrndup(r->pool, v.p, v.len);
		const struct s3_error_field f[] = {
			{ "ArgumentName", "x-amz-copy-source-range" },
			{ "ArgumentValue", sent ? sent : "" },
		};
		s3_error_fields(
			r, S3_InvalidArgument,
			"The x-amz-copy-source-range value must be of the form "
			"bytes=first-last where first and last are the zero-based "
			"offsets of the first and last bytes to copy",
			NULL, f, 2);
		return false;
	}
	if (b >= size) {
		/* AWS's answer (400 InvalidArgument, not a 416 InvalidRange:
		 * nothing is served, the request is wrong). */
		char msg[96];
		snprintf(msg, sizeof(msg),
			 "Range specified is not valid for source object "
			 "of size: %llu",
			 (unsigned long long)size);
		s3_error_elem(r, S3_InvalidArgument, msg, NULL, "ArgumentName",
			      "x-amz-copy-source-range");
		return false;
	}
	*first = a;
	*last = b;
	return true;
}

void s3_upload_part_copy(struct s3_req *r)
{
	struct kura_error err = { 0 };
	struct copy_source src = { 0 };
	struct kura_upload *u;
	struct s3_blob blob = { 0 };
	if (!s3_part_begin(r, &u, &blob))
		goto out;
	/* A part of an upload that declared a checksum gets one, as an
	 * uploaded part does. */
	if (!load_source(r, &src) || !source_conditions(r, src.obj) ||
	    !copy_checksum_begin(r, u->sum.algo))
		goto out;
	uint64_t first = 0, last = src.obj->size ? src.obj->size - 1 : 0;
	const struct kura_str *range = s3_header(r, "x-amz-copy-source-range");
	if (range != NULL &&
	    !copy_range(r, *range, src.obj->size, &first, &last))
		goto out;
	uint64_t len = src.obj->size == 0 ? 0 : last - first + 1;
	if (len > MAX_COPY_SIZE) {
		s3_error(r, S3_InvalidRequest,
			 "The specified copy range is too large.", NULL);
		goto out;
	}
	enum kura_err rc = copy_bytes(r, &src, first, len, &blob, &err);
	if (rc == KURA_OK)
		rc = copy_checksum_end(r, &blob.part.sum, &err);
	if (rc == KURA_OK)
		rc = s3_blob_stage(&blob, &err);
	if (rc != KURA_OK) {
		copy_error(r, &src, rc, &err);
		goto out;
	}
	s3_commit_part(r, u, &blob, true);
out:
	s3_blob_discard(&blob);
	s3_sse_release(&src.sse);
}

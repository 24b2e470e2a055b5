/*
 * multipart.c — multipart uploads: CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts and
 * ListMultipartUploads.
 *
 * Each part is its own blob with its own DEK, bound (AAD) to the upload's
 * version uid and the part number.  Completing an upload only rewrites
 * metadata: the upload's version uid becomes the object's, the chosen parts
 * become its parts in order — no byte is copied or re-encrypted.  Parts
 * uploaded but not chosen, and parts of aborted or expired uploads, are
 * queued for deletion in the same transaction.  Upload ids carry the
 * version uid, so that a retried Complete gets the same answer (see
 * make_upload_id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define MIN_PART_SIZE (5u * 1024 * 1024)
#define MAX_PART_SIZE (5ull * 1024 * 1024 * 1024)
#define LIST_MAX S3_LIST_MAX /* parts read per query by load_all_parts */

/* The upload named by ?uploadId if it is one of this key's: KURA_ENOENT
 * otherwise (also for a malformed id). */
static enum kura_err find_upload(struct s3_req *r, struct kura_upload **out,
				 struct kura_error *err)
{
	struct kura_meta *meta = r->svc->meta;
	const struct s3_param *id = s3_param_get(r, "uploadId");
	if (id == NULL || id->value_len == 0 ||
	    id->value_len >= KURA_UPLOAD_ID_MAX)
		return KURA_ENOENT;
	enum kura_err rc = kura_meta_upload_get(meta, r->bucket.id, id->value,
						r->pool, out, err);
	if (rc == KURA_OK && ((*out)->key_len != r->key_len ||
			      memcmp((*out)->key, r->key, r->key_len) != 0))
		return KURA_ENOENT;
	return rc;
}

/* The upload checked against its seal; responds on failure. */
static bool open_upload(struct s3_req *r, struct kura_upload *u)
{
	struct kura_error err = { 0 };
	enum kura_err rc =
		kura_seal_upload_open(&r->seal, r->bucket.tenant_id, u, &err);
	return s3_seal_ok(r, rc, &err, r->bucket.name, u->key, u->key_len,
			  u->version_uid);
}

/* find_upload and open_upload, responding NoSuchUpload (or the mapped
 * error) on failure. */
static bool load_upload(struct s3_req *r, struct kura_upload **out)
{
	struct kura_error err = { 0 };
	return s3_ok(r, find_upload(r, out, &err), &err, S3_NoSuchUpload) &&
	       open_upload(r, *out);
}

/* Check n parts of upload u against their seals (ETags restored);
 * responds on failure. */
static bool open_parts(struct s3_req *r, const struct kura_upload *u,
		       struct kura_part *parts, size_t n)
{
	struct kura_error err = { 0 };
	for (size_t i = 0; i < n; i++) {
		enum kura_err rc = kura_seal_part_open(
			&r->seal, r->bucket.tenant_id, r->bucket.id,
			u->version_uid, &parts[i], &err);
		if (!s3_seal_ok(r, rc, &err, r->bucket.name, u->key, u->key_len,
				u->version_uid))
			return false;
	}
	return true;
}

/*
 * Upload ids are the creation time in milliseconds (12 hex digits, so that
 * ids of one key sort by initiation, as S3 lists them) followed by the
 * upload's version uid (32 hex digits: 128 random bits).  Completing the
 * upload makes that uid the object's, so the id alone tells, durably and
 * without any table of completed uploads, which object version an upload
 * became: a retried CompleteMultipartUpload whose first answer was lost is
 * recognised while that version is still the one at the key.  The uid is
 * no secret (it binds blobs to their object, and is stored in clear in
 * meta.db); access still needs the bucket owner's credentials.  Ids made
 * before this format (time and 20 random hex digits) simply have no
 * retry answer.
 */
#define UPLOAD_ID_TIME_LEN 12

static void make_upload_id(struct kura_upload *u)
{
	char hex[2 * KURA_UID_LEN + 1];
	kura_hex_encode(u->version_uid, KURA_UID_LEN, hex);
	snprintf(u->id, sizeof(u->id), "%012llx%s",
		 (unsigned long long)u->created_ms, hex);
}

/* The version uid in an upload id of the current format. */
static bool upload_id_version(const char *id, size_t n,
			      uint8_t uid[KURA_UID_LEN])
{
	if (n != UPLOAD_ID_TIME_LEN + 2 * KURA_UID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return kura_hex_decode(id + UPLOAD_ID_TIME_LEN, 2 * KURA_UID_LEN, uid,
			       KURA_UID_LEN) == KURA_OK;
}

static void write_owner(struct s3_req *r, struct kura_buf *b, const char *tag)
{
	char id[32];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->tenant_id);
	s3_xml_open(b, tag);
	s3_xml_elem_str(b, "ID", id);
	s3_xml_elem_str(b, "DisplayName", id);
	s3_xml_close(b, tag);
}

/* ---- CreateMultipartUpload ---- */

/* The checksum the upload declares: x-amz-checksum-algorithm and
 * x-amz-checksum-type (default: FULL_OBJECT for CRC64NVME, COMPOSITE for
 * the others), in the combinations S3 allows.  Responds InvalidRequest
 * and returns false otherwise. */
static bool upload_checksum(struct s3_req *r, struct kura_checksum_value *out)
{
	const struct kura_str *a = s3_header(r, "x-amz-checksum-algorithm");
	const struct kura_str *t = s3_header(r, "x-amz-checksum-type");
	memset(out, 0, sizeof(*out));
	if (a == NULL && t == NULL)
		return true;
	if (a == NULL) {
		s3_error(r, S3_InvalidRequest,
			 "The x-amz-checksum-type header can only be used "
			 "with the x-amz-checksum-algorithm header.",
			 NULL);
		return false;
	}
	out->algo = kura_checksum_algo_by_s3_name(*a);
	if (out->algo == KURA_CHECKSUM_NONE) {
		s3_error(
			r, S3_InvalidRequest,
			"Checksum algorithm provided is unsupported. Please try "
			"again with any of the valid types: [CRC32, CRC32C, "
			"CRC64NVME, SHA1, SHA256]",
			NULL);
		return false;
	}
	out->type = kura_checksum_default_type(out->algo);
	if (t != NULL && kura_str_caseeq_cstr(*t, "FULL_OBJECT"))
		out->type = KURA_CHECKSUM_FULL_OBJECT;
	else if (t != NULL && kura_str_caseeq_cstr(*t, "COMPOSITE"))
		out->type = KURA_CHECKSUM_COMPOSITE;
	else if (t != NULL) {
		s3_error(r, S3_InvalidRequest,
			 "Value for x-amz-checksum-type header is invalid.",
			 NULL);
		return false;
	}
	if (!kura_checksum_type_allowed(out->algo, out->type)) {
		char msg[128];
		snprintf(msg, sizeof(msg),
			 "The %s checksum type cannot be used with the %s "
			 "checksum algorithm.",
			 kura_checksum_type_name(out->type),
			 kura_checksum_s3_name(out->algo));
		s3_error(r, S3_InvalidRequest, kura_pstrdup(r->pool, msg),
			 NULL);
		return false;
	}
	return true;
}

void s3_create_multipart_upload(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_object o = { 0 };
	struct kura_upload u = { 0 };
	/* The condition belongs on CompleteMultipartUpload, as on S3. */
	if (s3_header(r, "If-None-Match") || s3_header(r, "If-Match")) {
		s3_not_implemented(
			r, "Conditional headers on CreateMultipartUpload");
		return;
	}
	/* The default retention is the completion's to apply. */
	struct s3_lock lock;
	if (!s3_load_bucket(r) || !s3_check_unsupported_put_headers(r) ||
	    !upload_checksum(r, &u.sum) ||
	    !s3_object_headers_from_request(r, &o) ||
	    !s3_sse_for_write(r, &r->sse) ||
	    !s3_lock_for_write(r, &lock, false))
		return;
	u.lock_mode = lock.mode;
	u.lock_until_ms = lock.until_ms;
	u.legal_hold = lock.legal_hold;
	enum kura_err rc = kura_random_bytes(u.version_uid, KURA_UID_LEN, &err);
	if (rc == KURA_OK)
		rc = s3_sse_check_value(r, &r->sse, u.version_uid, u.ssec_hmac,
					&err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	u.created_ms = kura_now_ms();
	make_upload_id(&u);
	u.bucket_id = r->bucket.id;
	u.key = r->key;
	u.key_len = r->key_len;
	u.content_type = o.content_type;
	u.content_encoding = o.content_encoding;
	u.content_language = o.content_language;
	u.content_disposition = o.content_disposition;
	u.cache_control = o.cache_control;
	u.expires = o.expires;
	u.user_meta_json = o.user_meta_json;
	u.tags_json = o.tags_json;
	u.sse = r->sse.mode;
	u.kms_key_id = r->sse.kms_key_id;
	rc = kura_seal_upload(&r->seal, &r->bucket, &u, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	rc = kura_meta_upload_create(meta, &u, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchBucket))
		return;
	struct kura_buf b;
	kura_buf_init(&b, S3_DOC_UPLOAD_MAX);
	s3_xml_root(&b, "InitiateMultipartUploadResult");
	s3_xml_elem_str(&b, "Bucket", r->bucket.name);
	s3_xml_elem(&b, "Key", r->key, r->key_len);
	s3_xml_elem_str(&b, "UploadId", u.id);
	s3_xml_close(&b, "InitiateMultipartUploadResult");
	if (s3_respond_xml(r, &b)) {
		s3_sse_respond_headers(r, &r->sse);
		if (u.sum.algo != KURA_CHECKSUM_NONE) {
			kura_http_resp_header(
				r->http, "x-amz-checksum-algorithm",
				kura_checksum_s3_name(u.sum.algo));
			kura_http_resp_header(
				r->http, "x-amz-checksum-type",
				kura_checksum_type_name(u.sum.type));
		}
	}
	kura_buf_release(&b);
}

/* ---- UploadPart ---- */

struct part_state {
	struct s3_blob blob; /* first: s3_blob_op_body/_cleanup use it */
	struct kura_upload *upload;
};

static bool parse_part_number(struct s3_req *r, uint32_t *out)
{
	const struct s3_param *pn = s3_param_get(r, "partNumber");
	uint64_t n;
	if (pn == NULL ||
	    kura_parse_u64(pn->value, pn->value_len, KURA_MAX_PARTS, &n) !=
		    KURA_OK ||
	    n == 0) {
		s3_error(
			r, S3_InvalidArgument,
			"Part number must be an integer between 1 and 10000, inclusive",
			NULL);
		return false;
	}
	*out = (uint32_t)n;
	return true;
}

/* Commit a staged part blob to its upload and respond (shared with
 * UploadPartCopy). */
void s3_commit_part(struct s3_req *r, struct kura_upload *u,
		    struct s3_blob *blob, bool copy_result)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_checksum_value shown = blob->part.sum;
	enum kura_err rc = KURA_OK;
	if (u->sse != KURA_SSE_S3)
		rc = s3_sum_mask(blob->dek, S3_SUM_PART, u->version_uid,
				 blob->part.part_no, &blob->part.sum, &err);
	if (rc == KURA_OK)
		rc = kura_seal_part(&r->seal, &r->bucket, u->version_uid,
				    &blob->part, &err);
	if (rc == KURA_OK)
		rc = kura_meta_upload_put_part(meta, r->bucket.id, u->id,
					       &blob->part, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchUpload))
		return;
	s3_blob_publish(blob, r->http->id);
	s3_collect_garbage(r);
	if (!copy_result) {
		s3_respond_stored(r, blob->part.etag, &shown);
		return;
	}
	struct kura_buf b;
	char ts[KURA_TIME_ISO8601_LEN], etag[KURA_ETAG_MAX + 2];
	kura_time_iso8601(blob->part.mtime_ms, ts);
	snprintf(etag, sizeof(etag), "\"%s\"", blob->part.etag);
	kura_buf_init(&b, S3_DOC_SMALL_MAX);
	s3_xml_root(&b, "CopyPartResult");
	s3_xml_elem_str(&b, "LastModified", ts);
	s3_xml_elem_str(&b, "ETag", etag);
	s3_checksum_xml(&b, &shown, 1, false);
	s3_xml_close(&b, "CopyPartResult");
	/* As UploadPart, and as AWS: the encryption of the part written (the
	 * upload's), never the copy source's. */
	if (s3_respond_xml(r, &b))
		s3_sse_respond_headers(r, &r->sse);
	kura_buf_release(&b);
}

static void part_finish(struct s3_req *r)
{
	struct part_state *st = r->op_state;
	if (!s3_blob_op_stage(r))
		return;
	st->blob.part.sum = r->sum; /* the body's, verified (payload.c) */
	s3_commit_part(r, st->upload, &st->blob, false);
}

/* Shared start of UploadPart and UploadPartCopy: bucket, part number,
 * upload, and a blob bound to (upload version, part number). */
bool s3_part_begin(struct s3_req *r, struct kura_upload **upload,
		   struct s3_blob *blob)
{
	struct kura_error err = { 0 };
	uint32_t part_no;
	if (!s3_load_bucket(r) || !parse_part_number(r, &part_no) ||
	    !load_upload(r, upload))
		return false;
	/* Parts are encrypted as the upload says; an SSE-C upload needs the
	 * same customer key with every part. */
	const struct kura_upload *u = *upload;
	s3_note_version(r, u->version_uid);
	if (!s3_sse_match(r, u->sse, u->kms_key_id, u->ssec_hmac,
			  u->version_uid, false, &r->sse))
		return false;
	enum kura_err rc = s3_blob_begin(blob, r->svc, &r->bucket,
					 u->version_uid, part_no, &r->sse,
					 &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return false;
	}
	return true;
}

void s3_upload_part(struct s3_req *r)
{
	struct part_state *st = s3_blob_op_start(r, sizeof(*st));
	if (st == NULL || !s3_part_begin(r, &st->upload, &st->blob))
		return;
	r->max_body = MAX_PART_SIZE;
	r->op_finish = part_finish;
	/* Parts of an upload that declared a checksum carry one of that
	 * algorithm: the client's, verified, or kura's own. */
	r->checksum_want = st->upload->sum.algo;
	s3_payload_begin(r);
}

/* ---- CompleteMultipartUpload ---- */

struct wanted_part {
	uint32_t part_no;
	const char *etag; /* without quotes */
	size_t etag_len;
	struct kura_checksum_value sum; /* a Checksum* element, if any */
};

/* The Checksum* element of a Part, if any, into w->sum; responds and
 * returns false for more than one or a malformed value. */
static bool parse_part_checksum(struct s3_req *r, const struct s3_xml_node *p,
				struct wanted_part *w)
{
	struct kura_error err = { 0 };
	memset(&w->sum, 0, sizeof(w->sum));
	for (int a = 1; a <= KURA_CHECKSUM_ALGO_MAX; a++) {
		enum kura_checksum_algo algo = (enum kura_checksum_algo)a;
		const struct s3_xml_node *c =
			s3_xml_child(p, kura_checksum_xml_name(algo));
		if (c == NULL)
			continue;
		if (w->sum.algo != KURA_CHECKSUM_NONE) {
			s3_error(r, S3_MalformedXML, NULL,
				 "two checksums for one part");
			return false;
		}
		struct kura_str v = { c->text, c->text_len };
		if (kura_checksum_parse(algo, v, &w->sum, &err) != KURA_OK) {
			s3_error(r, S3_InvalidRequest,
				 "Value for the part checksum is invalid.",
				 err.msg);
			return false;
		}
	}
	return true;
}

/* Parse the CompleteMultipartUpload document; responds on error. */
static bool parse_complete(struct s3_req *r, struct wanted_part **out,
			   size_t *count)
{
	const struct s3_xml_node *root =
		s3_xml_body(r, "CompleteMultipartUpload");
	if (root == NULL)
		return false;
	size_t n = 0;
	for (const struct s3_xml_node *c = root->child; c; c = c->next)
		if (strcmp(c->name, "Part") == 0)
			n++;
	if (n == 0 || n > KURA_MAX_PARTS) {
		s3_error(r, S3_MalformedXML, NULL, "no parts or too many");
		return false;
	}
	struct wanted_part *w = kura_palloc(r->pool, n * sizeof(*w));
	if (w == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	size_t i = 0;
	for (const struct s3_xml_node *c = root->child; c; c = c->next) {
		if (strcmp(c->name, "Part") != 0)
			continue;
		const struct s3_xml_node *pn = s3_xml_child(c, "PartNumber");
		const struct s3_xml_node *et = s3_xml_child(c, "ETag");
		uint64_t num;
		if (pn == NULL || et == NULL ||
		    kura_parse_u64(pn->text, pn->text_len, KURA_MAX_PARTS,
				   &num) != KURA_OK ||
		    num == 0) {
			s3_error(r, S3_MalformedXML, NULL, "bad Part element");
			return false;
		}
		if (i > 0 && num <= w[i - 1].part_no) {
			s3_error(r, S3_InvalidPartOrder, NULL, NULL);
			return false;
		}
		const char *e = et->text;
		size_t el = et->text_len;
		/* Clients send the ETag quoted, sometimes as &quot;. */
		if (el >= 2 && e[0] == '"' && e[el - 1] == '"') {
			e++;
			el -= 2;
		}
		w[i].part_no = (uint32_t)num;
		w[i].etag = e;
		w[i].etag_len = el;
		if (!parse_part_checksum(r, c, &w[i]))
			return false;
		i++;
	}
	*out = w;
	*count = n;
	return true;
}

/* All parts of the upload, ascending (at most KURA_MAX_PARTS). */
static bool load_all_parts(struct s3_req *r, const struct kura_upload *u,
			   struct kura_part **out, size_t *count)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_part *all =
		kura_palloc(r->pool, KURA_MAX_PARTS * sizeof(*all));
	size_t total = 0;
	uint32_t after = 0;
	if (all == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	for (;;) {
		struct kura_part *page;
		size_t n = 0;
		enum kura_err rc = kura_meta_upload_list_parts(
			meta, r->bucket.id, u->id, after, LIST_MAX, r->pool,
			&page, &n, &err);
		if (!s3_ok(r, rc, &err, S3_NoSuchUpload) ||
		    !open_parts(r, u, page, n))
			return false;
		if (n > KURA_MAX_PARTS - total)
			n = KURA_MAX_PARTS - total;
		memcpy(all + total, page, n * sizeof(*page));
		total += n;
		if (n < LIST_MAX || total == KURA_MAX_PARTS)
			break;
		after = all[total - 1].part_no;
	}
	*out = all;
	*count = total;
	return true;
}

/* The multipart ETag of the parts named: hex MD5 of their binary MD5s,
 * "-N".  False when a named ETag is not a part ETag (32 hex digits). */
static bool wanted_etag(const struct wanted_part *w, size_t n,
			char out[KURA_ETAG_MAX])
{
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	bool ok = md5 != NULL && EVP_DigestInit_ex(md5, EVP_md5(), NULL) == 1;
	for (size_t i = 0; ok && i < n; i++) {
		uint8_t raw[16];
		ok = w[i].etag_len == 32 &&
		     kura_hex_decode(w[i].etag, 32, raw, sizeof(raw)) ==
			     KURA_OK &&
		     EVP_DigestUpdate(md5, raw, sizeof(raw)) == 1;
	}
	uint8_t digest[16];
	unsigned dlen = 0;
	ok = ok && EVP_DigestFinal_ex(md5, digest, &dlen) == 1 &&
	     dlen == sizeof(digest);
	EVP_MD_CTX_free(md5);
	if (ok) {
		char hex[33];
		kura_hex_encode(digest, sizeof(digest), hex);
		snprintf(out, KURA_ETAG_MAX, "%s-%zu", hex, n);
	}
	return ok;
}

/* The successful answer for object o, the completed upload; sum: its
 * checksum in the clear. */
static void complete_respond(struct s3_req *r, const struct kura_object *o,
			     const struct kura_checksum_value *sum)
{
	struct kura_buf b;
	char etag[KURA_ETAG_MAX + 2];
	snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
	kura_buf_init(&b, S3_DOC_UPLOAD_MAX);
	s3_xml_root(&b, "CompleteMultipartUploadResult");
	s3_xml_open(&b, "Location");
	s3_xml_raw(&b, "/");
	s3_xml_escape(&b, r->bucket.name, strlen(r->bucket.name));
	s3_xml_raw(&b, "/");
	s3_xml_escape(&b, r->key, r->key_len);
	s3_xml_close(&b, "Location");
	s3_xml_elem_str(&b, "Bucket", r->bucket.name);
	s3_xml_elem(&b, "Key", r->key, r->key_len);
	s3_xml_elem_str(&b, "ETag", etag);
	s3_checksum_xml(&b, sum, o->part_count, true);
	s3_xml_close(&b, "CompleteMultipartUploadResult");
	if (s3_respond_xml(r, &b)) {
		r->sse.mode = o->sse;
		r->sse.kms_key_id = o->kms_key_id;
		s3_sse_respond_headers(r, &r->sse);
		if (!o->null_version)
			s3_version_headers(r, o);
		s3_expiration_header(r, o);
	}
	kura_buf_release(&b);
}

/*
 * The upload is gone.  If it completed into version uid and that version
 * is still a version of the key, and the parts named are the ones it was
 * completed with (same multipart ETag), this is a retry whose first answer
 * was lost: give the same answer, as AWS does.  Anything else (aborted,
 * expired, overwritten, deleted, other parts) is NoSuchUpload.
 */
static void complete_retry(struct s3_req *r, const uint8_t uid[KURA_UID_LEN],
			   const struct wanted_part *want, size_t nwant)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_object *o = NULL;
	char etag[KURA_ETAG_MAX];
	enum kura_err rc = kura_meta_object_get_version(
		meta, r->bucket.id, r->key, r->key_len, uid, r->pool, &o, &err);
	if (rc == KURA_OK)
		rc = kura_seal_object_open(&r->seal, r->bucket.tenant_id, o,
					   true, &err);
	if (rc != KURA_OK && rc != KURA_ENOENT) {
		s3_seal_ok(r, rc, &err, r->bucket.name, r->key, r->key_len,
			   o ? o->version_uid : NULL);
		return;
	}
	if (rc == KURA_ENOENT ||
	    memcmp(o->version_uid, uid, KURA_UID_LEN) != 0 ||
	    o->delete_marker || !wanted_etag(want, nwant, etag) ||
	    strcmp(etag, o->etag) != 0) {
		s3_error(r, S3_NoSuchUpload, NULL, NULL);
		return;
	}
	s3_note_version(r, o->version_uid);
	s3_note_row(r, r->bucket.tenant_id, o);
	/* An SSE-C object's checksum needs the customer's key, which a retry
	 * need not send: then the answer has none. */
	struct kura_object clear = *o;
	struct kura_error e2 = { 0 };
	if (o->sse == KURA_SSE_C ||
	    s3_sum_unmask_object(r, &clear, NULL, &e2) != KURA_OK)
		memset(&clear.sum, 0, sizeof(clear.sum));
	complete_respond(r, o, &clear.sum);
}

/* What CompleteMultipartUpload carries from its start to its finish. */
struct complete_state {
	struct kura_upload *upload;	     /* NULL: gone, maybe completed */
	uint8_t completed_uid[KURA_UID_LEN]; /* from the id, when gone */
	struct kura_put_cond cond_storage;
	const struct kura_put_cond *cond; /* If-Match / If-None-Match */
};

static enum kura_err complete_row(struct s3_req *r, const struct kura_object *o,
				  const struct kura_put_cond *cond, void *ctx,
				  struct kura_error *err)
{
	const struct kura_upload *u = ctx;
	return kura_meta_upload_complete(r->svc->meta, u->id, o, cond, err);
}

/* The chosen parts of the upload, in order, with their total size; responds
 * InvalidPart / EntityTooSmall when the list does not match the parts. */
static bool choose_parts(struct s3_req *r, const struct wanted_part *want,
			 size_t nwant, const struct kura_part *have,
			 size_t nhave, struct kura_part **out, uint64_t *size)
{
	struct kura_part *chosen =
		kura_palloc(r->pool, nwant * sizeof(*chosen));
	if (chosen == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	*size = 0;
	size_t j = 0;
	for (size_t i = 0; i < nwant; i++) {
		while (j < nhave && have[j].part_no < want[i].part_no)
			j++;
		if (j == nhave || have[j].part_no != want[i].part_no ||
		    strlen(have[j].etag) != want[i].etag_len ||
		    memcmp(have[j].etag, want[i].etag, want[i].etag_len) != 0) {
			s3_error(r, S3_InvalidPart, NULL, NULL);
			return false;
		}
		if (i + 1 < nwant && have[j].size < MIN_PART_SIZE) {
			s3_error(r, S3_EntityTooSmall, NULL, NULL);
			return false;
		}
		chosen[i] = have[j];
		*size += have[j].size;
	}
	*out = chosen;
	return true;
}

/* The chosen parts' checksums in the clear (those of SSE-KMS and SSE-C
 * data are stored masked; an SSE-C upload's need its customer key), each
 * checked against the one the request names for it, as its ETag is.
 * Responds and returns false on failure. */
static bool chosen_sums(struct s3_req *r, const struct kura_upload *u,
			const struct wanted_part *want,
			struct kura_part *chosen, size_t n)
{
	struct kura_error err = { 0 };
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= chosen[i].sum.algo != KURA_CHECKSUM_NONE;
	if (any && u->sse == KURA_SSE_C && r->sse.customer_key == NULL &&
	    !s3_sse_match(r, u->sse, u->kms_key_id, u->ssec_hmac,
			  u->version_uid, false, &r->sse))
		return false;
	for (size_t i = 0; i < n; i++) {
		enum kura_err rc =
			s3_sum_unmask_part(r, u->version_uid, &chosen[i],
					   u->sse, r->sse.customer_key, &err);
		if (rc != KURA_OK) {
			s3_error_from(r, rc, &err);
			return false;
		}
		const struct kura_checksum_value *ws = &want[i].sum;
		if (ws->algo != KURA_CHECKSUM_NONE &&
		    (chosen[i].sum.algo != ws->algo ||
		     memcmp(chosen[i].sum.digest, ws->digest,
			    kura_checksum_len(ws->algo)) != 0)) {
			s3_error(r, S3_InvalidPart, NULL, "part checksum");
			return false;
		}
	}
	return true;
}

/* Mask the object's checksum, when its data is SSE-KMS or SSE-C, with
 * its first part's DEK. */
static enum kura_err mask_object_sum(struct s3_req *r, struct kura_object *o,
				     struct kura_error *err)
{
	struct kura_secret *dek = NULL;
	if (o->sse == KURA_SSE_S3 || o->sum.algo == KURA_CHECKSUM_NONE)
		return KURA_OK;
	enum kura_err rc = s3_part_dek(r, o->version_uid, &o->parts[0],
				       r->sse.customer_key, &dek, err);
	if (rc == KURA_OK)
		rc = s3_sum_mask(dek, S3_SUM_OBJECT, o->version_uid,
				 o->parts[0].part_no, &o->sum, err);
	kura_secret_free(dek);
	return rc;
}

/* The part's checksum must be there: every part of an upload that
 * declared one has it (UploadPart computes it when the client sends
 * none), and a composite upload's Complete must name them all, as S3
 * requires. */
static bool part_sum_missing(struct s3_req *r, const struct kura_upload *u,
			     const struct wanted_part *w,
			     const struct kura_part *p)
{
	char msg[192];
	if (p->sum.algo == u->sum.algo &&
	    (u->sum.type != KURA_CHECKSUM_COMPOSITE ||
	     w->sum.algo != KURA_CHECKSUM_NONE))
		return false;
	snprintf(msg, sizeof(msg),
		 "The upload was created using a %s checksum. The complete "
		 "request must include the checksum for each part. It was "
		 "missing for part %u in the request.",
		 kura_checksum_s3_name(u->sum.algo), w->part_no);
	s3_error(r, S3_InvalidRequest, kura_pstrdup(r->pool, msg), NULL);
	return true;
}

/* The object's checksum from its parts' (composite or full-object, as
 * the upload declared), checked against an x-amz-checksum-* header and
 * x-amz-checksum-type if the client sent them.  Responds and returns
 * false on failure. */
static bool complete_checksum(struct s3_req *r, const struct kura_upload *u,
			      const struct wanted_part *want,
			      const struct kura_part *chosen, size_t n,
			      struct kura_checksum_value *out)
{
	struct kura_error err = { 0 };
	enum kura_checksum_algo hdr = KURA_CHECKSUM_NONE;
	struct kura_str value = { 0 };
	struct kura_http_req *h = r->http;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < h->nheaders; i++) {
		enum kura_checksum_algo a =
			kura_checksum_algo_of(h->headers[i].name);
		if (a == KURA_CHECKSUM_NONE)
			continue;
		if (hdr != KURA_CHECKSUM_NONE) {
			s3_error(r, S3_InvalidRequest,
				 "Expecting a single x-amz-checksum- header",
				 NULL);
			return false;
		}
		hdr = a;
		value = h->headers[i].value;
	}
	const struct kura_str *t = s3_header(r, "x-amz-checksum-type");
	if (u->sum.algo == KURA_CHECKSUM_NONE) {
		if (hdr == KURA_CHECKSUM_NONE && t == NULL)
			return true;
		s3_error(r, S3_InvalidRequest,
			 "The upload was created without a checksum "
			 "algorithm: the complete request cannot name one.",
			 NULL);
		return false;
	}
	if (t != NULL &&
	    !kura_str_caseeq_cstr(*t, kura_checksum_type_name(u->sum.type))) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "The upload was created using the %s checksum mode. "
			 "The complete request must use the same checksum "
			 "mode.",
			 kura_checksum_type_name(u->sum.type));
		s3_error(r, S3_InvalidRequest, kura_pstrdup(r->pool, msg),
			 NULL);
		return false;
	}
	if (hdr != KURA_CHECKSUM_NONE && hdr != u->sum.algo) {
		s3_error(r, S3_InvalidRequest,
			 "The checksum algorithm of the complete request "
			 "is not the upload's.",
			 NULL);
		return false;
	}
	struct kura_checksum_value *sums =
		kura_palloc(r->pool, n * sizeof(*sums));
	uint64_t *sizes = kura_palloc(r->pool, n * sizeof(*sizes));
	if (sums == NULL || sizes == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (part_sum_missing(r, u, &want[i], &chosen[i]))
			return false;
		sums[i] = chosen[i].sum;
		sizes[i] = chosen[i].size;
	}
	enum kura_err rc = u->sum.type == KURA_CHECKSUM_COMPOSITE ?
				   kura_checksum_composite(u->sum.algo, sums, n,
							   out, &err) :
				   kura_checksum_combine(u->sum.algo, sums,
							 sizes, n, out, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return false;
	}
	if (hdr == KURA_CHECKSUM_NONE)
		return true;
	/* A composite value may come with its "-N". */
	const char *dash = memchr(value.p, '-', value.len);
	if (dash != NULL && u->sum.type == KURA_CHECKSUM_COMPOSITE)
		value.len = (size_t)(dash - value.p);
	struct kura_checksum_value sent;
	if (kura_checksum_parse(hdr, value, &sent, &err) != KURA_OK) {
		s3_error(r, S3_InvalidRequest,
			 "Value for the x-amz-checksum- header is invalid.",
			 NULL);
		return false;
	}
	if (memcmp(sent.digest, out->digest, kura_checksum_len(hdr)) != 0) {
		s3_error(r, S3_BadDigest,
			 "The checksum you specified did not match the "
			 "calculated checksum.",
			 NULL);
		return false;
	}
	return true;
}

static void complete_finish(struct s3_req *r)
{
	struct kura_error err = { 0 };
	struct complete_state *st = r->op_state;
	struct kura_upload *u = st->upload;
	struct wanted_part *want;
	struct kura_part *have, *chosen;
	size_t nwant, nhave;
	uint64_t size;
	if (!parse_complete(r, &want, &nwant))
		return;
	if (u == NULL) {
		complete_retry(r, st->completed_uid, want, nwant);
		return;
	}
	if (!load_all_parts(r, u, &have, &nhave) ||
	    !choose_parts(r, want, nwant, have, nhave, &chosen, &size) ||
	    !chosen_sums(r, u, want, chosen, nwant))
		return;

	struct kura_object o = { 0 };
	if (!wanted_etag(want, nwant, o.etag)) {
		s3_error(r, S3_InvalidPart, NULL,
			 "stored part ETag is not an MD5");
		return;
	}
	o.bucket_id = r->bucket.id;
	o.key = r->key;
	o.key_len = r->key_len;
	memcpy(o.version_uid, u->version_uid, KURA_UID_LEN);
	o.size = size;
	o.mtime_ms = kura_now_ms();
	o.content_type = u->content_type;
	o.content_encoding = u->content_encoding;
	o.content_language = u->content_language;
	o.content_disposition = u->content_disposition;
	o.cache_control = u->cache_control;
	o.expires = u->expires;
	o.user_meta_json = u->user_meta_json;
	o.tags_json = u->tags_json;
	o.sse = u->sse;
	o.kms_key_id = u->kms_key_id;
	struct s3_lock lock = { u->lock_mode, u->lock_until_ms, u->legal_hold };
	s3_lock_default(r, &lock);
	o.lock_mode = lock.mode;
	o.lock_until_ms = lock.until_ms;
	o.legal_hold = lock.legal_hold;
	memcpy(o.ssec_hmac, u->ssec_hmac, sizeof(o.ssec_hmac));
	o.part_count = (uint32_t)nwant;
	o.parts = chosen;
	if (!complete_checksum(r, u, want, chosen, nwant, &o.sum))
		return;
	struct kura_checksum_value shown = o.sum;
	enum kura_err rc = mask_object_sum(r, &o, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	/* The object's parts keep no ETag or checksum of their own. */
	for (size_t i = 0; i < nwant; i++)
		memset(&chosen[i].sum, 0, sizeof(chosen[i].sum));
	s3_version_prepare(r, &o);
	rc = s3_version_write(r, &o, st->cond, complete_row, u, &err);
	if (rc == KURA_ECONFLICT && st->cond != NULL) {
		s3_write_cond_conflict(r);
		return;
	}
	if (rc == KURA_ENOENT) {
		/* Lost a race with a concurrent Complete (or Abort) of it. */
		complete_retry(r, u->version_uid, want, nwant);
		return;
	}
	if (rc == KURA_ESTATE) {
		s3_error(r, S3_InvalidPart, NULL, err.msg);
		return;
	}
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	s3_note_version(r, o.version_uid);
	s3_collect_garbage(r);
	complete_respond(r, &o, &shown);
}

void s3_complete_multipart_upload(struct s3_req *r)
{
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r))
		return;
	struct complete_state *st = kura_palloc(r->pool, sizeof(*st));
	if (st == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}
	memset(st, 0, sizeof(*st));
	if (!s3_write_cond(r, &st->cond_storage, &st->cond))
		return;
	enum kura_err rc = find_upload(r, &st->upload, &err);
	if (rc == KURA_ENOENT) {
		/* Perhaps completed already: complete_retry decides once the
		 * body has named the parts. */
		const struct s3_param *id = s3_param_get(r, "uploadId");
		st->upload = NULL;
		if (id == NULL || !upload_id_version(id->value, id->value_len,
						     st->completed_uid)) {
			s3_error(r, S3_NoSuchUpload, NULL, NULL);
			return;
		}
	} else if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	} else if (!open_upload(r, st->upload)) {
		return;
	}
	r->op_state = st;
	/* x-amz-checksum-* here is the object's, not the XML body's. */
	r->checksum_not_body = true;
	uint64_t max = r->svc->max_xml_body > S3_BODY_COMPLETE_MIN ?
			       r->svc->max_xml_body :
			       S3_BODY_COMPLETE_MIN;
	s3_expect_xml(r, max, complete_finish);
}

/* ---- AbortMultipartUpload ---- */

void s3_abort_multipart_upload(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_upload *u;
	if (!s3_load_bucket(r) || !load_upload(r, &u))
		return;
	enum kura_err rc =
		kura_meta_upload_abort(meta, r->bucket.id, u->id, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchUpload))
		return;
	s3_collect_garbage(r);
	s3_respond(r, 204);
}

/* ---- ListParts ---- */

/* The listed parts' checksums in the clear.  Those of SSE-KMS data are
 * unmasked with the parts' DEKs; those of SSE-C data only when the
 * request carries the upload's customer key (as S3 takes it on ListParts),
 * else they are not shown.  Responds and returns false on failure. */
static bool listed_sums(struct s3_req *r, const struct kura_upload *u,
			struct kura_part *parts, size_t n)
{
	struct kura_error err = { 0 };
	if (u->sse == KURA_SSE_S3)
		return true;
	if (u->sse == KURA_SSE_C &&
	    s3_header(r, "x-amz-server-side-encryption-customer-algorithm") ==
		    NULL) {
		for (size_t i = 0; i < n; i++)
			memset(&parts[i].sum, 0, sizeof(parts[i].sum));
		return true;
	}
	if (u->sse == KURA_SSE_C &&
	    !s3_sse_match(r, u->sse, u->kms_key_id, u->ssec_hmac,
			  u->version_uid, false, &r->sse))
		return false;
	for (size_t i = 0; i < n; i++) {
		enum kura_err rc =
			s3_sum_unmask_part(r, u->version_uid, &parts[i], u->sse,
					   r->sse.customer_key, &err);
		if (rc != KURA_OK) {
			s3_error_from(r, rc, &err);
			return false;
		}
	}
	return true;
}

void s3_list_parts(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_upload *u;
	uint64_t marker = 0, max = S3_LIST_MAX;
	const struct s3_param *p;
	if (!s3_load_bucket(r) || !load_upload(r, &u))
		return;
	if ((p = s3_param_get(r, "part-number-marker")) != NULL &&
	    kura_parse_u64(p->value, p->value_len, UINT32_MAX, &marker) !=
		    KURA_OK) {
		s3_error(r, S3_InvalidArgument, "Invalid part-number-marker",
			 NULL);
		return;
	}
	if ((p = s3_param_get(r, "max-parts")) != NULL) {
		if (kura_parse_u64(p->value, p->value_len, INT32_MAX, &max) !=
		    KURA_OK) {
			s3_error(r, S3_InvalidArgument, "Invalid max-parts",
				 NULL);
			return;
		}
		if (max > S3_LIST_MAX)
			max = S3_LIST_MAX;
	}
	struct kura_part *parts = NULL;
	size_t n = 0;
	enum kura_err rc = KURA_OK;
	if (max > 0)
		rc = kura_meta_upload_list_parts(meta, r->bucket.id, u->id,
						 (uint32_t)marker,
						 (size_t)max + 1, r->pool,
						 &parts, &n, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchUpload) ||
	    !open_parts(r, u, parts, n) || !listed_sums(r, u, parts, n))
		return;
	bool truncated = n > max;
	if (truncated)
		n = (size_t)max;
	struct kura_buf b;
	char ts[KURA_TIME_ISO8601_LEN], etag[KURA_ETAG_MAX + 2];
	kura_buf_init(&b, S3_DOC_PARTS_MAX);
	s3_xml_root(&b, "ListPartsResult");
	s3_xml_elem_str(&b, "Bucket", r->bucket.name);
	s3_xml_elem(&b, "Key", r->key, r->key_len);
	s3_xml_elem_str(&b, "UploadId", u->id);
	write_owner(r, &b, "Initiator");
	write_owner(r, &b, "Owner");
	s3_xml_elem_str(&b, "StorageClass", "STANDARD");
	if (u->sum.algo != KURA_CHECKSUM_NONE) {
		s3_xml_elem_str(&b, "ChecksumAlgorithm",
				kura_checksum_s3_name(u->sum.algo));
		s3_xml_elem_str(&b, "ChecksumType",
				kura_checksum_type_name(u->sum.type));
	}
	s3_xml_elem_u64(&b, "PartNumberMarker", marker);
	s3_xml_elem_u64(&b, "NextPartNumberMarker",
			n ? parts[n - 1].part_no : 0);
	s3_xml_elem_u64(&b, "MaxParts", max);
	s3_xml_elem_str(&b, "IsTruncated", truncated ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		kura_time_iso8601(parts[i].mtime_ms, ts);
		snprintf(etag, sizeof(etag), "\"%s\"", parts[i].etag);
		s3_xml_open(&b, "Part");
		s3_xml_elem_u64(&b, "PartNumber", parts[i].part_no);
		s3_xml_elem_str(&b, "LastModified", ts);
		s3_xml_elem_str(&b, "ETag", etag);
		s3_xml_elem_u64(&b, "Size", parts[i].size);
		s3_checksum_xml(&b, &parts[i].sum, 1, false);
		s3_xml_close(&b, "Part");
	}
	s3_xml_close(&b, "ListPartsResult");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

/* ---- ListMultipartUploads: uploads as a source of the listing engine ---- */

static enum kura_err fetch_uploads(struct s3_req *r, struct kura_str prefix,
				   const struct s3_list_pos *after, size_t want,
				   void **rows, size_t *n,
				   struct kura_error *err)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_upload *us = NULL;
	enum kura_err rc = kura_meta_upload_list(meta, r->bucket.id, prefix.p,
						 prefix.len, after->key,
						 after->len, after->id, want,
						 r->pool, &us, n, err);
	*rows = us;
	return rc;
}

static enum kura_err open_listed_upload(struct s3_req *r, void *row,
					struct kura_error *err)
{
	return kura_seal_upload_open(&r->seal, r->bucket.tenant_id, row, err);
}

static void describe_upload(const void *row, struct s3_list_row *out)
{
	const struct kura_upload *u = row;
	*out = (struct s3_list_row){ { u->key, u->key_len, u->id, false },
				     u->version_uid };
}

static const struct s3_list_source uploads = {
	.row_size = sizeof(struct kura_upload),
	.fetch = fetch_uploads,
	.open = open_listed_upload,
	.describe = describe_upload,
};

static void write_uploads(struct s3_req *r, const struct s3_list_query *q,
			  const struct s3_list_page *page)
{
	struct kura_buf b;
	char ts[KURA_TIME_ISO8601_LEN];
	kura_buf_init(&b, r->svc->max_list_response);
	s3_xml_root(&b, "ListMultipartUploadsResult");
	s3_xml_elem_str(&b, "Bucket", r->bucket.name);
	s3_xml_elem_enc(&b, "KeyMarker", q->start.key, q->start.len, q->url);
	s3_xml_elem_str(&b, "UploadIdMarker", q->start.id);
	if (page->truncated && page->count > 0) {
		s3_xml_elem_enc(&b, "NextKeyMarker", page->next.key,
				page->next.len, q->url);
		s3_xml_elem_str(&b, "NextUploadIdMarker", page->next.id);
	}
	s3_xml_elem_enc(&b, "Prefix", q->prefix.p, q->prefix.len, q->url);
	if (q->delimiter.len)
		s3_xml_elem_enc(&b, "Delimiter", q->delimiter.p,
				q->delimiter.len, q->url);
	if (q->url)
		s3_xml_elem_str(&b, "EncodingType", "url");
	s3_xml_elem_u64(&b, "MaxUploads", q->max);
	s3_xml_elem_str(&b, "IsTruncated", page->truncated ? "true" : "false");
	for (size_t i = 0; i < page->count; i++) {
		const struct kura_upload *u = page->entries[i].row;
		if (u == NULL)
			continue;
		kura_time_iso8601(u->created_ms, ts);
		s3_xml_open(&b, "Upload");
		s3_xml_elem_enc(&b, "Key", u->key, u->key_len, q->url);
		s3_xml_elem_str(&b, "UploadId", u->id);
		write_owner(r, &b, "Initiator");
		write_owner(r, &b, "Owner");
		s3_xml_elem_str(&b, "StorageClass", "STANDARD");
		s3_xml_elem_str(&b, "Initiated", ts);
		s3_xml_close(&b, "Upload");
	}
	s3_list_write_prefixes(&b, page, q->url);
	s3_xml_close(&b, "ListMultipartUploadsResult");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_list_multipart_uploads(struct s3_req *r)
{
	struct s3_list_query q;
	struct s3_list_page page;
	const struct s3_param *p;
	if (!s3_load_bucket(r) ||
	    !s3_list_parse(r, "max-uploads", "Invalid max-uploads", &q))
		return;
	/* The key marker (marker for the document), and the upload id marker,
	 * which only counts with a key marker. */
	struct kura_str kmark = KURA_STR_LIT("");
	if ((p = s3_param_get(r, "key-marker")) != NULL)
		kmark = (struct kura_str){ p->value, p->value_len };
	q.start.key = kmark.p;
	q.start.len = kmark.len;
	if ((p = s3_param_get(r, "upload-id-marker")) != NULL && kmark.len > 0)
		q.start.id = p->value;
	q.start.prefix = s3_list_marker_is_prefix(&q, kmark);
	if (s3_list_walk(r, &uploads, &q, &page))
		write_uploads(r, &q, &page);
}

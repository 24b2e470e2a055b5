/*
 * payload.c — the request body between the wire and an operation:
 * aws-chunked decoding (with chunk signatures), the x-amz-content-sha256
 * and Content-MD5 checks, the additional checksums (x-amz-checksum-*
 * headers or trailers; the result kept in r->sum for the operation to
 * store), and the length checks.
 *
 * Bytes reach the operation as they arrive; an operation must therefore not
 * commit anything before s3_payload_end() has succeeded — PUT stages its
 * blob and commits metadata only after this point.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/encode.h"
#include "kura/parse.h"
#include "s3_int.h"
#include "kura/banned.h"

static enum kura_err decoded(void *ctx, const void *p, size_t n,
			     struct kura_error *err)
{
	struct s3_req *r = ctx;
	if (n > r->max_body - r->decoded_len)
		return kura_fail(err, KURA_ETOOBIG, "body exceeds %llu bytes",
				 (unsigned long long)r->max_body);
	if (r->have_declared_len && r->decoded_len + n > r->declared_len)
		return kura_fail(err, KURA_EPROTO, "body longer than declared");
	r->decoded_len += n;
	if (r->sha256 && EVP_DigestUpdate(r->sha256, p, n) != 1)
		return kura_fail(err, KURA_ECRYPTO, "SHA-256");
	if (r->md5 && EVP_DigestUpdate(r->md5, p, n) != 1)
		return kura_fail(err, KURA_ECRYPTO, "MD5");
	if (r->checksum.algo != KURA_CHECKSUM_NONE &&
	    kura_checksum_update(&r->checksum, p, n, err) != KURA_OK)
		return KURA_ECRYPTO;
	if (r->op_body)
		return r->op_body(r, p, n, err);
	return KURA_OK;
}

static enum kura_err collect_xml(struct s3_req *r, const uint8_t *p, size_t n,
				 struct kura_error *err);

static bool digest_init(struct s3_req *r, EVP_MD_CTX **ctx, const EVP_MD *md)
{
	*ctx = EVP_MD_CTX_new();
	if (*ctx == NULL || EVP_DigestInit_ex(*ctx, md, NULL) != 1) {
		s3_error(r, S3_InternalError, NULL, "digest init");
		return false;
	}
	return true;
}

static bool content_md5(struct s3_req *r)
{
	const struct kura_str *h = s3_header(r, "Content-MD5");
	size_t n;
	if (h == NULL)
		return true;
	if (kura_base64_decode(h->p, h->len, r->content_md5,
			       sizeof(r->content_md5), &n) != KURA_OK ||
	    n != 16) {
		s3_error(r, S3_InvalidDigest, NULL, NULL);
		return false;
	}
	r->have_content_md5 = true;
	return true;
}

/* The algorithm an x-amz-trailer header announces, or NONE; only a
 * STREAMING-*-TRAILER body has trailers (the decoder checks them). */
static enum kura_checksum_algo trailer_algo(struct s3_req *r,
					    struct kura_str mode)
{
	const struct kura_str *h = s3_header(r, "x-amz-trailer");
	struct kura_str t;
	if (h == NULL ||
	    (!kura_str_eq_cstr(mode, KURA_SIGV4_STREAMING_SIGNED_TRAILER) &&
	     !kura_str_eq_cstr(mode, KURA_SIGV4_STREAMING_UNSIGNED_TRAILER)))
		return KURA_CHECKSUM_NONE;
	t = *h;
	while (t.len > 0 && (t.p[0] == ' ' || t.p[0] == '\t')) {
		t.p++;
		t.len--;
	}
	while (t.len > 0 && (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
		t.len--;
	return kura_checksum_algo_of(t);
}

/* The algorithm x-amz-sdk-checksum-algorithm (PutObject, UploadPart) or
 * x-amz-checksum-algorithm names, NONE when neither is sent; responds
 * InvalidRequest and returns false for an unknown one. */
static bool declared_algo(struct s3_req *r, enum kura_checksum_algo *out)
{
	const struct kura_str *h = s3_header(r, "x-amz-sdk-checksum-algorithm");
	*out = KURA_CHECKSUM_NONE;
	if (h == NULL)
		h = s3_header(r, "x-amz-checksum-algorithm");
	if (h == NULL)
		return true;
	*out = kura_checksum_algo_by_s3_name(*h);
	if (*out == KURA_CHECKSUM_NONE) {
		s3_error(
			r, S3_InvalidRequest,
			"Checksum algorithm provided is unsupported. Please try "
			"again with any of the valid types: [CRC32, CRC32C, "
			"CRC64NVME, SHA1, SHA256]",
			NULL);
		return false;
	}
	return true;
}

/* The single x-amz-checksum-* request header, if any (*algo NONE when
 * there is none); responds and returns false for more than one. */
static bool checksum_value_header(struct s3_req *r,
				  enum kura_checksum_algo *algo,
				  struct kura_str *value)
{
	struct kura_http_req *h = r->http;
	*algo = KURA_CHECKSUM_NONE;
	for (size_t i = 0; i < h->nheaders; i++) {
		enum kura_checksum_algo a =
			kura_checksum_algo_of(h->headers[i].name);
		if (a == KURA_CHECKSUM_NONE)
			continue;
		if (*algo != KURA_CHECKSUM_NONE) {
			s3_error(r, S3_InvalidRequest,
				 "Expecting a single x-amz-checksum- header",
				 NULL);
			return false;
		}
		*algo = a;
		*value = h->headers[i].value;
	}
	return true;
}

static void checksum_mismatch(struct s3_req *r, enum kura_checksum_algo want,
			      enum kura_checksum_algo got)
{
	char msg[128];
	const char *w = kura_checksum_s3_name(want);
	const char *g = kura_checksum_s3_name(got);
	snprintf(msg, sizeof(msg),
		 "Checksum Type mismatch occurred, expected checksum Type: "
		 "%s, actual checksum Type: %s",
		 w ? w : "null", g ? g : "null");
	s3_error(r, S3_InvalidRequest, kura_pstrdup(r->pool, msg), NULL);
}

/*
 * Which checksum covers the body: an x-amz-checksum-* header (verified
 * at the end), a trailer (verified by the aws-chunked decoder), or the
 * algorithm the operation wants (computed).  The algorithm a client
 * declares must be the one it sends, as S3 requires.
 */
static bool checksum_header(struct s3_req *r, struct kura_str mode)
{
	struct kura_error err = { 0 };
	enum kura_checksum_algo hdr = KURA_CHECKSUM_NONE, decl;
	enum kura_checksum_algo trl = trailer_algo(r, mode);
	struct kura_str value = { 0 };
	if (!r->checksum_not_body && !checksum_value_header(r, &hdr, &value))
		return false;
	/* An empty value is no digest (and would read as "compute"). */
	if (hdr != KURA_CHECKSUM_NONE && value.len == 0) {
		s3_error(r, S3_InvalidRequest,
			 "Value for the x-amz-checksum- header is invalid.",
			 NULL);
		return false;
	}
	if (!declared_algo(r, &decl))
		return false;
	if (hdr != KURA_CHECKSUM_NONE && trl != KURA_CHECKSUM_NONE) {
		s3_error(r, S3_InvalidRequest,
			 "Expecting a single x-amz-checksum- header", NULL);
		return false;
	}
	enum kura_checksum_algo sent = hdr != KURA_CHECKSUM_NONE ? hdr : trl;
	if (decl != KURA_CHECKSUM_NONE && !r->checksum_not_body) {
		if (sent == KURA_CHECKSUM_NONE) {
			s3_error(r, S3_InvalidRequest,
				 "x-amz-sdk-checksum-algorithm specified, but "
				 "no corresponding x-amz-checksum-* or "
				 "x-amz-trailer headers were found.",
				 NULL);
			return false;
		}
		if (sent != decl) {
			s3_error(r, S3_InvalidRequest,
				 "Value for x-amz-sdk-checksum-algorithm "
				 "header is invalid.",
				 NULL);
			return false;
		}
	}
	if (r->checksum_want != KURA_CHECKSUM_NONE &&
	    sent != KURA_CHECKSUM_NONE && sent != r->checksum_want) {
		checksum_mismatch(r, r->checksum_want, sent);
		return false;
	}
	enum kura_checksum_algo run = hdr;
	if (run == KURA_CHECKSUM_NONE && sent == KURA_CHECKSUM_NONE)
		run = r->checksum_want;
	if (run == KURA_CHECKSUM_NONE)
		return true;
	if (kura_checksum_init(&r->checksum, run, &err) != KURA_OK) {
		s3_error(r, S3_InternalError, NULL, err.msg);
		return false;
	}
	r->checksum_value = value;
	return true;
}

static bool start_chunked(struct s3_req *r, struct kura_str mode)
{
	enum kura_chunked_mode m;
	if (kura_str_eq_cstr(mode, KURA_SIGV4_STREAMING_SIGNED))
		m = KURA_CHUNKED_SIGNED;
	else if (kura_str_eq_cstr(mode, KURA_SIGV4_STREAMING_SIGNED_TRAILER))
		m = KURA_CHUNKED_SIGNED_TRAILER;
	else
		m = KURA_CHUNKED_UNSIGNED_TRAILER;
	const struct kura_str *dl =
		s3_header(r, "x-amz-decoded-content-length");
	if (dl != NULL) {
		if (kura_parse_u64(dl->p, dl->len, UINT64_MAX,
				   &r->declared_len) != KURA_OK) {
			s3_error(r, S3_InvalidArgument,
				 "x-amz-decoded-content-length is not a number",
				 NULL);
			return false;
		}
		r->have_declared_len = true;
	} else if (m != KURA_CHUNKED_UNSIGNED_TRAILER) {
		s3_error(
			r, S3_MissingContentLength, NULL,
			"aws-chunked body without x-amz-decoded-content-length");
		return false;
	}
	const struct kura_str *tr = s3_header(r, "x-amz-trailer");
	const char *trailer = tr ? kura_pstrndup(r->pool, tr->p, tr->len) :
				   NULL;
	struct kura_error err = { 0 };
	if (m != KURA_CHUNKED_UNSIGNED_TRAILER && r->signing_key == NULL) {
		s3_error(r, S3_AccessDenied, NULL,
			 "signed chunks without a signing key");
		return false;
	}
	enum kura_err rc = kura_chunked_new(
		m, m == KURA_CHUNKED_UNSIGNED_TRAILER ? NULL : r->signing_key,
		r->sig.amz_date, r->scope, r->sig.signature, trailer, decoded,
		r, &r->chunked, &err);
	if (rc == KURA_EINVAL) {
		/* An x-amz-trailer kura cannot verify (e.g. crc64nvme). */
		s3_error(
			r, S3_InvalidRequest,
			"The x-amz-trailer header names an unsupported checksum.",
			err.msg);
		return false;
	}
	if (rc != KURA_OK) {
		s3_error(r, S3_InternalError, NULL, err.msg);
		return false;
	}
	return true;
}

bool s3_payload_begin(struct s3_req *r)
{
	const struct kura_str *psha = s3_header(r, "x-amz-content-sha256");
	struct kura_str mode = psha ? *psha :
				      KURA_STR_LIT(KURA_SIGV4_UNSIGNED_PAYLOAD);
	r->payload_started = true;
	if (r->max_body == 0)
		r->max_body = UINT64_MAX;
	if (!content_md5(r) || !checksum_header(r, mode))
		return false;
	if (r->have_content_md5 && !r->md5_by_op &&
	    !digest_init(r, &r->md5, EVP_md5()))
		return false;

	if (kura_str_has_prefix(mode, "STREAMING-")) {
		if (!kura_str_eq_cstr(mode, KURA_SIGV4_STREAMING_SIGNED) &&
		    !kura_str_eq_cstr(mode,
				      KURA_SIGV4_STREAMING_SIGNED_TRAILER) &&
		    !kura_str_eq_cstr(mode,
				      KURA_SIGV4_STREAMING_UNSIGNED_TRAILER)) {
			s3_error(
				r, S3_InvalidArgument,
				"x-amz-content-sha256 names an unknown streaming mode",
				NULL);
			return false;
		}
		r->payload = S3_PAYLOAD_CHUNKED;
		return start_chunked(r, mode);
	}
	if (kura_str_eq_cstr(mode, KURA_SIGV4_UNSIGNED_PAYLOAD)) {
		r->payload = S3_PAYLOAD_UNSIGNED;
	} else {
		if (kura_hex_decode(mode.p, mode.len, r->want_sha256, 32) !=
		    KURA_OK) {
			s3_error(
				r, S3_InvalidArgument,
				"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a "
				"STREAMING- mode or a SHA-256 hex digest",
				NULL);
			return false;
		}
		r->payload = S3_PAYLOAD_HASHED;
		if (!digest_init(r, &r->sha256, EVP_sha256()))
			return false;
	}
	const struct kura_str *cl = s3_header(r, "Content-Length");
	if (cl != NULL) {
		if (kura_parse_u64(cl->p, cl->len, UINT64_MAX,
				   &r->declared_len) != KURA_OK) {
			s3_error(r, S3_InvalidArgument,
				 "Content-Length is not a number", NULL);
			return false;
		}
		r->have_declared_len = true;
	}
	if (r->have_declared_len && r->declared_len > r->max_body) {
		/* An XML request body is a message, not an object. */
		s3_error(r,
			 r->op_body == collect_xml ?
				 S3_MaxMessageLengthExceeded :
				 S3_EntityTooLarge,
			 NULL, NULL);
		return false;
	}
	return true;
}

static void body_error(struct s3_req *r, enum kura_err rc,
		       const struct kura_error *err)
{
	if (kura_http_resp_ready(r->http))
		return; /* the operation already answered */
	switch (rc) {
	case KURA_ETOOBIG:
		s3_error(r,
			 r->op_body == collect_xml ?
				 S3_MaxMessageLengthExceeded :
				 S3_EntityTooLarge,
			 NULL, err->msg);
		break;
	case KURA_EAUTH:
		s3_error(r, S3_SignatureDoesNotMatch, NULL, err->msg);
		break;
	case KURA_EINTEGRITY: /* a trailing checksum that does not match */
		s3_error(
			r, S3_BadDigest,
			"The checksum you specified did not match the calculated "
			"checksum.",
			err->msg);
		break;
	case KURA_EINVAL: /* a trailing checksum that is not a digest */
		s3_error(r, S3_InvalidRequest,
			 "The trailing x-amz-checksum- value is invalid.",
			 err->msg);
		break;
	case KURA_EPROTO:
		s3_error(r,
			 r->have_declared_len ? S3_IncompleteBody :
						S3_InvalidRequest,
			 NULL, err->msg);
		break;
	default:
		s3_error_from(r, rc, err);
		break;
	}
}

void s3_payload_feed(struct s3_req *r, const uint8_t *p, size_t n)
{
	struct kura_error err = { 0 };
	enum kura_err rc;
	if (r->failed || !r->payload_started)
		return;
	if (r->chunked)
		rc = kura_chunked_feed(r->chunked, p, n, &err);
	else
		rc = decoded(r, p, n, &err);
	if (rc != KURA_OK)
		body_error(r, rc, &err);
}

bool s3_payload_end(struct s3_req *r)
{
	struct kura_error err = { 0 };
	if (r->failed)
		return false;
	if (!r->payload_started)
		return true;
	if (r->chunked) {
		uint64_t total;
		enum kura_err rc =
			kura_chunked_finish(r->chunked, &total, &err);
		if (rc != KURA_OK) {
			body_error(r, rc, &err);
			return false;
		}
	}
	if (r->have_declared_len && r->decoded_len != r->declared_len) {
		s3_error(r, S3_IncompleteBody, NULL, NULL);
		return false;
	}
	if (r->sha256) {
		uint8_t got[32];
		unsigned len = 0;
		if (EVP_DigestFinal_ex(r->sha256, got, &len) != 1 ||
		    len != 32 || !kura_ct_equal(got, r->want_sha256, 32)) {
			s3_error(r, S3_XAmzContentSHA256Mismatch, NULL, NULL);
			return false;
		}
	}
	if (r->chunked)
		kura_chunked_checksum(r->chunked, &r->sum);
	if (r->checksum.algo != KURA_CHECKSUM_NONE) {
		enum kura_err rc =
			r->checksum_value.len == 0 ?
				kura_checksum_finish(&r->checksum, &err) :
				kura_checksum_verify(&r->checksum,
						     r->checksum_value, &err);
		if (rc == KURA_EINVAL) {
			s3_error(
				r, S3_InvalidRequest,
				"Value for the x-amz-checksum- header is invalid.",
				NULL);
			return false;
		}
		if (rc != KURA_OK) {
			s3_error(
				r, S3_BadDigest,
				"The checksum you specified did not match the calculated "
				"checksum.",
				err.msg);
			return false;
		}
		kura_checksum_result(&r->checksum, &r->sum);
	}
	if (r->md5) {
		unsigned len = 0;
		uint8_t md5[16];
		if (EVP_DigestFinal_ex(r->md5, md5, &len) != 1 || len != 16) {
			s3_error(r, S3_InternalError, NULL, "MD5 final");
			return false;
		}
		if (memcmp(md5, r->content_md5, 16) != 0) {
			s3_error(r, S3_BadDigest, NULL, NULL);
			return false;
		}
	}
	return true;
}

static enum kura_err collect_xml(struct s3_req *r, const uint8_t *p, size_t n,
				 struct kura_error *err)
{
	if (kura_buf_add(&r->xml_body, p, n) != KURA_OK)
		return kura_fail(err, KURA_ETOOBIG, "XML body too large");
	return KURA_OK;
}

void s3_expect_xml(struct s3_req *r, uint64_t max,
		   void (*finish)(struct s3_req *r))
{
	kura_buf_init(&r->xml_body, max);
	r->max_body = max;
	r->op_body = collect_xml;
	r->op_finish = finish;
	s3_payload_begin(r);
}

bool s3_body_digest_required(struct s3_req *r)
{
	if (s3_header(r, "Content-MD5") != NULL ||
	    s3_header(r, "x-amz-checksum-crc32") != NULL ||
	    s3_header(r, "x-amz-checksum-crc32c") != NULL ||
	    s3_header(r, "x-amz-checksum-crc64nvme") != NULL ||
	    s3_header(r, "x-amz-checksum-sha1") != NULL ||
	    s3_header(r, "x-amz-checksum-sha256") != NULL)
		return true;
	s3_error(r, S3_InvalidRequest,
		 "Missing required header for this request: Content-Md5", NULL);
	return false;
}

const struct s3_xml_node *s3_xml_body(struct s3_req *r, const char *root_name)
{
	struct s3_xml_node *root;
	if (r->xml_body.len == 0 ||
	    s3_xml_parse(r->xml_body.data, r->xml_body.len, r->pool, &root) !=
		    KURA_OK ||
	    strcmp(root->name, root_name) != 0) {
		s3_error(r, S3_MalformedXML, NULL, NULL);
		return NULL;
	}
	return root;
}

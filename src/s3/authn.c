/*
 * authn.c — authenticate an S3 request with SigV4 (Authorization header or
 * presigned query) and map each failure to the error AWS returns: among
 * them x-amz-* headers outside the signature (AccessDenied naming them),
 * Signature Version 2 in either form (InvalidRequest) and a wrong region
 * (with the right one in <Region>).
 *
 * The access key's secret is unsealed only for the duration of the check;
 * what the request keeps is the derived signing key (needed for
 * aws-chunked bodies), in locked memory, freed when the request ends.
 */
#include <stdio.h>
#include <string.h>

#include "kura/auth.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

/* AWS's answer to Signature Version 2 (header or presigned query), word
 * for word: s3cmd recognises it and switches to SigV4 by itself. */
static void sigv2_refused(struct s3_req *r)
{
	s3_error(
		r, S3_InvalidRequest,
		"The authorization mechanism you have provided is not supported. "
		"Please use AWS4-HMAC-SHA256.",
		NULL);
}

/* The credential scope names another region.  AWS puts the right one in
 * <Region>, from which clients (s3cmd) correct themselves and retry. */
static void wrong_region(struct s3_req *r, enum s3_error code)
{
	char msg[256];
	snprintf(msg, sizeof(msg),
		 "%s the region '%.63s' is wrong; expecting '%s'",
		 r->sig.presigned ?
			 "Error parsing the X-Amz-Credential parameter;" :
			 "The authorization header is malformed;",
		 r->sig.region, r->svc->region);
	s3_error_elem(r, code, msg, NULL, "Region", r->svc->region);
}

/* Name the x-amz-* headers the signature leaves out, as AWS does. */
static void headers_unsigned(struct s3_req *r,
			     const struct kura_sigv4_header *headers)
{
	struct kura_buf names;
	kura_buf_init(&names, S3_HEADER_LIST_MAX);
	kura_sigv4_unsigned_headers(r->sig.signed_headers, headers,
				    r->http->nheaders, &names);
	const char *list =
		names.len ? kura_pstrndup(r->pool, names.data, names.len) :
			    NULL;
	kura_buf_release(&names);
	s3_error_elem(
		r, S3_AccessDenied,
		"There were headers present in the request which were not signed",
		"x-amz-* headers outside the signature", "HeadersNotSigned",
		list ? list : "");
}

static void sig_error(struct s3_req *r, enum kura_sigv4_result res,
		      const struct kura_sigv4_header *headers)
{
	bool q = r->sig.presigned;
	enum s3_error malformed = q ? S3_AuthorizationQueryParametersError :
				      S3_AuthorizationHeaderMalformed;
	switch (res) {
	case KURA_SIGV4_OK:
		return;
	case KURA_SIGV4_MALFORMED:
	case KURA_SIGV4_BAD_DATE:
	case KURA_SIGV4_HOST_UNSIGNED:
	case KURA_SIGV4_WRONG_SERVICE:
		s3_error(r, malformed, NULL, "malformed SigV4 credentials");
		return;
	case KURA_SIGV4_UNSUPPORTED:
		sigv2_refused(r);
		return;
	case KURA_SIGV4_WRONG_REGION:
		wrong_region(r, malformed);
		return;
	case KURA_SIGV4_SKEWED:
		s3_error(r, S3_RequestTimeTooSkewed, NULL, NULL);
		return;
	case KURA_SIGV4_EXPIRED:
		s3_error(r, S3_AccessDenied, "Request has expired", NULL);
		return;
	case KURA_SIGV4_NOT_YET_VALID:
		s3_error(r, S3_AccessDenied, "Request is not valid yet", NULL);
		return;
	case KURA_SIGV4_MISMATCH:
		s3_error(r, S3_SignatureDoesNotMatch, NULL, NULL);
		return;
	case KURA_SIGV4_HEADERS_UNSIGNED:
		headers_unsigned(r, headers);
		return;
	}
	s3_error(r, S3_AccessDenied, NULL, "unknown SigV4 result");
}

/* A Signature Version 2 presigned URL (aws-cli v1's default `s3 presign`):
 * AWSAccessKeyId, Expires and Signature in the query. */
static bool sigv2_presigned(const struct s3_req *r)
{
	return s3_param_get(r, "AWSAccessKeyId") != NULL &&
	       s3_param_get(r, "Signature") != NULL;
}

/* X-Amz-Date, or the Date header converted to the SigV4 basic format. */
static struct kura_str request_date(struct s3_req *r,
				    char buf[KURA_TIME_AMZ_LEN])
{
	const struct kura_str *d = s3_header(r, "x-amz-date");
	if (d != NULL)
		return *d;
	d = s3_header(r, "Date");
	int64_t secs;
	if (d != NULL && kura_time_parse_http(d->p, d->len, &secs) == KURA_OK) {
		kura_time_amz(secs * 1000, buf);
		return kura_str_from(buf);
	}
	return KURA_STR_LIT("");
}

/* Collect the request headers in the form the SigV4 module reads. */
static struct kura_sigv4_header *sig_headers(struct s3_req *r)
{
	struct kura_http_req *h = r->http;
	struct kura_sigv4_header *hs =
		kura_palloc(r->pool, (h->nheaders + 1) * sizeof(*hs));
	if (hs == NULL)
		return NULL;
	for (size_t i = 0; i < h->nheaders; i++) {
		hs[i].name = h->headers[i].name;
		hs[i].value = h->headers[i].value;
	}
	return hs;
}

bool s3_authenticate(struct s3_req *r)
{
	struct kura_http_req *h = r->http;
	const struct kura_str *authz = s3_header(r, "Authorization");
	enum kura_sigv4_result res;
	char datebuf[KURA_TIME_AMZ_LEN];

	if (kura_sigv4_query_is_presigned(h->query)) {
		r->sig.presigned = true;
		res = kura_sigv4_parse_query(h->query, &r->sig);
	} else if (authz != NULL) {
		if (!kura_str_has_prefix(*authz, KURA_SIGV4_ALGORITHM)) {
			sigv2_refused(r);
			return false;
		}
		res = kura_sigv4_parse_header(*authz, request_date(r, datebuf),
					      &r->sig);
	} else if (sigv2_presigned(r)) {
		sigv2_refused(r);
		return false;
	} else {
		s3_error(r, S3_AccessDenied, NULL, "anonymous request");
		return false;
	}
	if (res != KURA_SIGV4_OK) {
		sig_error(r, res, NULL);
		return false;
	}
	snprintf(r->access_key, sizeof(r->access_key), "%s", r->sig.access_key);

	struct kura_access_key rec;
	struct kura_secret *secret = NULL;
	struct kura_error err = { 0 };
	enum kura_err rc =
		kura_auth_lookup_key(r->svc->meta, r->svc->system_key,
				     r->sig.access_key, &rec, &secret, &err);
	if (rc == KURA_ENOENT) {
		s3_error(r, S3_InvalidAccessKeyId, NULL, NULL);
		return false;
	}
	if (rc == KURA_EPERM) { /* the key's tenant is suspended */
		s3_error(r, S3_AccessDenied,
			 "The account of this access key is "
			 "suspended.",
			 err.msg);
		return false;
	}
	if (rc != KURA_OK) { /* a row that fails its MAC is recorded */
		s3_error_from(r, rc, &err);
		return false;
	}

	const struct kura_str *psha = s3_header(r, "x-amz-content-sha256");
	struct kura_sigv4_request sreq = {
		.method = kura_str_from(h->method),
		.raw_path = h->path,
		.raw_query = h->query,
		.headers = sig_headers(r),
		.nheaders = h->nheaders,
		.payload_hash =
			psha ? *psha :
			       KURA_STR_LIT(KURA_SIGV4_UNSIGNED_PAYLOAD),
	};
	if (sreq.headers == NULL) {
		kura_secret_free(secret);
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	if (!r->sig.presigned && psha == NULL) {
		kura_secret_free(secret);
		s3_error(
			r, S3_InvalidRequest,
			"Missing required header for this request: x-amz-content-sha256",
			NULL);
		return false;
	}
	res = kura_sigv4_verify(&r->sig, &sreq, secret, r->svc->region,
				kura_now_ms() / 1000, r->svc->clock_skew,
				&r->signing_key, &err);
	kura_secret_free(secret);
	if (res != KURA_SIGV4_OK) {
		if (err.code != KURA_OK)
			kura_warn(h->id, "signature check failed: %s", err.msg);
		sig_error(r, res, sreq.headers);
		return false;
	}
	kura_sigv4_scope(&r->sig, r->scope, sizeof(r->scope));
	r->tenant_id = rec.tenant_id;
	return true;
}

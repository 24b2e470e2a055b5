/*
 * sigv4.h — AWS Signature Version 4 for S3: parsing the Authorization
 * header and presigned query parameters, building the canonical request,
 * deriving the signing key and verifying signatures; and the decoder of
 * aws-chunked request bodies with per-chunk signatures.
 *
 * Core, not auth: the S3 listener verifies with these and the remote S3
 * data store (src/store/s3/) signs with the same canonical request.
 *
 * These functions are pure (no I/O, no global state) so that they can be
 * tested against the published AWS vectors and fuzzed.  They know nothing of
 * S3 error codes: failures are reported as enum kura_sigv4_result values,
 * which src/s3 maps to S3 errors.
 *
 * Thread-safe.
 */
#ifndef KURA_SIGV4_H
#define KURA_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/buf.h"
#include "kura/checksum.h"
#include "kura/err.h"
#include "kura/secret.h"

#define KURA_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define KURA_SIGV4_MAX_EXPIRES 604800 /* 7 days, as AWS */
#define KURA_SIGV4_SIGNED_HEADERS_MAX 2048

/* Payload hash values with special meaning (x-amz-content-sha256). */
#define KURA_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define KURA_SIGV4_STREAMING_SIGNED "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define KURA_SIGV4_STREAMING_SIGNED_TRAILER \
	"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define KURA_SIGV4_STREAMING_UNSIGNED_TRAILER \
	"STREAMING-UNSIGNED-PAYLOAD-TRAILER"

enum kura_sigv4_result {
	KURA_SIGV4_OK = 0,
	KURA_SIGV4_MALFORMED,	  /* header/query unparsable or incomplete */
	KURA_SIGV4_UNSUPPORTED,	  /* algorithm other than AWS4-HMAC-SHA256 */
	KURA_SIGV4_WRONG_REGION,  /* scope region differs from the server's */
	KURA_SIGV4_WRONG_SERVICE, /* scope service is not "s3" */
	KURA_SIGV4_BAD_DATE,	  /* scope date != X-Amz-Date's date */
	KURA_SIGV4_SKEWED,	  /* outside the clock-skew window */
	KURA_SIGV4_EXPIRED,	  /* presigned URL past its expiry */
	KURA_SIGV4_NOT_YET_VALID, /* presigned URL dated in the future */
	KURA_SIGV4_HOST_UNSIGNED, /* "host" missing from SignedHeaders */
	KURA_SIGV4_MISMATCH,	  /* signature does not match */
	KURA_SIGV4_HEADERS_UNSIGNED, /* an x-amz-* header is not signed */
};

/* One request header as received (name in any case, value untrimmed). */
struct kura_sigv4_header {
	struct kura_str name;
	struct kura_str value;
};

/* The authentication fields of a signed request. */
struct kura_sigv4 {
	bool presigned; /* from the query string */
	char access_key[129];
	char date[9]; /* credential scope date YYYYMMDD */
	char region[64];
	char service[16];
	char amz_date[17];    /* YYYYMMDDTHHMMSSZ */
	int64_t request_time; /* amz_date in seconds since the epoch */
	uint64_t expires;     /* presigned: X-Amz-Expires seconds */
	char signed_headers[KURA_SIGV4_SIGNED_HEADERS_MAX]; /* "a;b;c" */
	char signature[65];				    /* lowercase hex */
};

/*
 * Parse an Authorization header value:
 *   AWS4-HMAC-SHA256 Credential=AK/YYYYMMDD/REGION/s3/aws4_request,
 *   SignedHeaders=h1;h2, Signature=<64 hex>
 * (components in any order, optional spaces after commas).  amz_date is the
 * X-Amz-Date (or Date, converted) header value, which the caller supplies.
 */
enum kura_sigv4_result kura_sigv4_parse_header(struct kura_str authorization,
					       struct kura_str amz_date,
					       struct kura_sigv4 *out);

/*
 * Parse presigned query parameters from the raw (still percent-encoded)
 * query string: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
 * X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature.
 */
enum kura_sigv4_result kura_sigv4_parse_query(struct kura_str raw_query,
					      struct kura_sigv4 *out);

/* Does the raw query string carry X-Amz-Signature (a presigned request)? */
bool kura_sigv4_query_is_presigned(struct kura_str raw_query);

/*
 * Build the canonical request (AWS docs, "Create a canonical request"):
 *   METHOD \n canonical URI \n canonical query \n canonical headers \n
 *   signed headers \n payload hash
 * S3 rules: the URI path is percent-decoded then re-encoded once (no
 * dot-segment normalisation); query parameters are decoded, re-encoded,
 * sorted by name then value; X-Amz-Signature is left out when presigned.
 * Header values are trimmed and inner runs of spaces collapsed; repeated
 * headers are joined with ','.  A signed header that is absent fails with
 * KURA_EINVAL.  out is bounded by its own max.
 */
enum kura_err
kura_sigv4_canonical_request(struct kura_str method, struct kura_str raw_path,
			     struct kura_str raw_query, bool presigned,
			     const struct kura_sigv4_header *headers,
			     size_t nheaders, const char *signed_headers,
			     struct kura_str payload_hash, struct kura_buf *out,
			     struct kura_error *err);

/* "YYYYMMDD/REGION/SERVICE/aws4_request" into out (cap >= 128). */
void kura_sigv4_scope(const struct kura_sigv4 *auth, char *out, size_t cap);

/* String to sign: algorithm \n amz_date \n scope \n hex(sha256(creq)). */
enum kura_err kura_sigv4_string_to_sign(const char *amz_date, const char *scope,
					struct kura_str canonical_request,
					struct kura_buf *out,
					struct kura_error *err);

/* kSigning = HMAC chain over "AWS4"+secret, date, region, service,
 * "aws4_request".  *out is a new 32-byte secret. */
enum kura_err kura_sigv4_signing_key(const struct kura_secret *secret_key,
				     const char *date, const char *region,
				     const char *service,
				     struct kura_secret **out,
				     struct kura_error *err);

/* Lowercase hex HMAC-SHA256(signing_key, msg) into out[65]. */
void kura_sigv4_hmac_hex(const struct kura_secret *signing_key, const void *msg,
			 size_t n, char out[65]);

/* What verification needs from the request. */
struct kura_sigv4_request {
	struct kura_str method;
	struct kura_str raw_path;  /* as received, percent-encoded */
	struct kura_str raw_query; /* without '?', percent-encoded */
	const struct kura_sigv4_header *headers;
	size_t nheaders;
	/* x-amz-content-sha256 value; for presigned requests the caller passes
	 * that header if present, else UNSIGNED-PAYLOAD. */
	struct kura_str payload_hash;
};

/*
 * The request's x-amz-* headers that signed_headers does not list, which
 * AWS refuses ("There were headers present in the request which were not
 * signed"): every header named x-amz-* in any case, except
 * x-amz-content-sha256, whose value the canonical request's payload-hash
 * line covers anyway.  Returns how many distinct names there are; when out
 * is not NULL, appends them lowercase, each once, in the order received,
 * separated by ", " (AWS's <HeadersNotSigned>), as many as fit out's
 * maximum.  At most the first 256 headers are examined, as in verification.
 */
size_t kura_sigv4_unsigned_headers(const char *signed_headers,
				   const struct kura_sigv4_header *headers,
				   size_t nheaders, struct kura_buf *out);

/*
 * Verify a parsed request against the access key's secret:
 * region == expect_region, service "s3", scope date matches amz_date,
 * "host" signed, time within skew_secs of now (header auth) or within
 * [request_time - skew, request_time + expires] (presigned), then the
 * signature in constant time, then that every x-amz-* header is signed
 * (KURA_SIGV4_HEADERS_UNSIGNED; kura_sigv4_unsigned_headers names them) —
 * checked last so that only a holder of the key or of the presigned URL
 * learns of it.  On KURA_SIGV4_OK and when signing_key_out
 * is not NULL, *signing_key_out receives the derived signing key (for
 * chunk signatures).  A kura error (allocation, crypto) is reported as
 * KURA_SIGV4_MISMATCH with err set.
 */
enum kura_sigv4_result kura_sigv4_verify(const struct kura_sigv4 *auth,
					 const struct kura_sigv4_request *req,
					 const struct kura_secret *secret_key,
					 const char *expect_region, int64_t now,
					 uint64_t skew_secs,
					 struct kura_secret **signing_key_out,
					 struct kura_error *err);

/* ---- aws-chunked bodies ---- */

enum kura_chunked_mode {
	KURA_CHUNKED_SIGNED,	       /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
	KURA_CHUNKED_SIGNED_TRAILER,   /* ...-PAYLOAD-TRAILER */
	KURA_CHUNKED_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
};

#define KURA_CHUNK_LINE_MAX 4096     /* longest chunk header or trailer line */
#define KURA_CHUNK_TRAILER_MAX 16384 /* all trailer bytes */

struct kura_chunked;

/*
 * A streaming decoder.  For signed modes, signing_key, amz_date, scope and
 * seed_signature (the request's signature) are required; each chunk's
 * signature is checked when the chunk ends:
 *   HMAC(kSigning, "AWS4-HMAC-SHA256-PAYLOAD\n" amz_date \n scope \n
 *        previous-signature \n hex(sha256("")) \n hex(sha256(chunk)))
 * trailer_name is the x-amz-trailer header value (NULL when none); a
 * trailing x-amz-checksum-{crc32,crc32c,sha1,sha256} is verified against the
 * decoded bytes, and for SIGNED_TRAILER the trailer signature too.
 * Decoded bytes go to sink as they arrive: a consumer must not commit them
 * before kura_chunked_finish succeeds.
 */
enum kura_err kura_chunked_new(enum kura_chunked_mode mode,
			       const struct kura_secret *signing_key,
			       const char *amz_date, const char *scope,
			       const char *seed_signature,
			       const char *trailer_name, kura_sink_fn sink,
			       void *sink_ctx, struct kura_chunked **out,
			       struct kura_error *err);

/* Feed raw body bytes.  KURA_EAUTH for a chunk or trailer signature that
 * does not match; KURA_EINTEGRITY for a trailing checksum that does not
 * match the body, KURA_EINVAL for one that is not a well-formed digest;
 * KURA_EPROTO for bad framing; KURA_ETOOBIG for an over-long line; the
 * sink's error otherwise. */
enum kura_err kura_chunked_feed(struct kura_chunked *c, const uint8_t *p,
				size_t n, struct kura_error *err);

/* The body ended: KURA_EPROTO unless the final chunk (and trailers, when
 * announced) were complete.  *decoded receives the decoded length. */
enum kura_err kura_chunked_finish(struct kura_chunked *c, uint64_t *decoded,
				  struct kura_error *err);

/* After kura_chunked_finish succeeded: the trailing checksum the body
 * carried, verified against the decoded bytes; algo NONE when there was
 * none (so that it can be stored and returned like a header's). */
void kura_chunked_checksum(const struct kura_chunked *c,
			   struct kura_checksum_value *out);

void kura_chunked_free(struct kura_chunked *c);

#endif

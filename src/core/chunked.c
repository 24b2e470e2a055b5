/*
 * chunked.c — streaming decoder of aws-chunked request bodies
 * (Content-Encoding: aws-chunked) in its three S3 variants:
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD
 *       hex-size;chunk-signature=<64hex>\r\n data \r\n ...
 *       0;chunk-signature=<64hex>\r\n \r\n
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
 *       the same chunks, then after the final chunk line
 *       x-amz-checksum-<alg>:<base64>\r\n
 *       x-amz-trailer-signature:<64hex>\r\n \r\n
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER
 *       hex-size\r\n data \r\n ... 0\r\n
 *       x-amz-checksum-<alg>:<base64>\r\n \r\n
 *
 * Chunk signature (AWS S3 API Reference, "Signature Calculations for the
 * Authorization Header: Transferring Payload in Multiple Chunks (Chunked
 * Upload)"): HMAC(kSigning, "AWS4-HMAC-SHA256-PAYLOAD\n" amz_date "\n"
 * scope "\n" previous-signature "\n" hex(sha256("")) "\n"
 * hex(sha256(chunk-data))), the first previous signature being the seed
 * (the Authorization header's).
 *
 * Trailer signature, from the S3 API Reference page "Signature calculations
 * for trailing headers (chunked uploads)" and the reference signer
 * awslabs/aws-c-auth (source/aws_signing.c: signature type
 * AWS_ST_HTTP_REQUEST_TRAILING_HEADERS uses the algorithm line
 * "AWS4-HMAC-SHA256-TRAILER" and a payload of the previous signature plus
 * the hash of the canonicalised trailing headers):
 *   HMAC(kSigning, "AWS4-HMAC-SHA256-TRAILER\n" amz_date "\n" scope "\n"
 *        previous-signature "\n" hex(sha256(canonical-trailers)))
 * where previous-signature is that of the final (zero-length) chunk and
 * canonical-trailers is "name:value\n" for each trailing header except
 * x-amz-trailer-signature, name lowercase, value trimmed.  The published
 * example of that page (seed 106e2a8a..., final chunk 2ca2aba2...,
 * x-amz-checksum-crc32c:sOO8/Q==, trailer signature d81f82fc...) is one of
 * the unit tests.
 *
 * Invariants: memory is bounded whatever the input — chunk data is never
 * buffered (it is hashed incrementally and passed to the sink), a header or
 * trailer line is at most KURA_CHUNK_LINE_MAX bytes and all trailer bytes at
 * most KURA_CHUNK_TRAILER_MAX.  The result does not depend on how the body
 * is split across kura_chunked_feed calls.  The first failure is sticky.
 *
 * Not thread-safe: one decoder belongs to one request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/checksum.h"
#include "kura/encode.h"
#include "kura/parse.h"
#include "kura/sigv4.h"
#include "kura/banned.h"

#define EMPTY_SHA256_HEX \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SCOPE_MAX 127
#define TRAILER_VALUE_MAX 64 /* longest base64 checksum is 44 chars */
#define DECODED_MAX ((uint64_t)INT64_MAX)

enum state {
	ST_HEADER,   /* reading a chunk header line */
	ST_DATA,     /* inside chunk data */
	ST_DATA_CR,  /* expecting CR after chunk data */
	ST_DATA_LF,  /* expecting LF after chunk data */
	ST_END_LINE, /* SIGNED: the empty line after the final chunk */
	ST_TRAILER,  /* trailer modes: trailer lines */
	ST_DONE,
	ST_FAILED,
};

struct kura_chunked {
	enum kura_chunked_mode mode;
	enum state state;
	enum kura_err failed;		 /* sticky error once ST_FAILED */
	struct kura_secret *signing_key; /* signed modes */
	char amz_date[17];
	char scope[SCOPE_MAX + 1];
	char prev_sig[65]; /* chain of chunk signatures */
	kura_sink_fn sink;
	void *sink_ctx;

	uint64_t remaining;   /* bytes left in this chunk */
	uint64_t decoded;     /* bytes passed to the sink */
	char chunk_sig[65];   /* signature announced for this chunk */
	EVP_MD_CTX *chunk_md; /* sha256 of this chunk (signed) */

	const char *trailer_name; /* lowercase checksum name, or NULL */
	struct kura_checksum sum; /* announced checksum of decoded bytes */

	size_t trailer_bytes;
	size_t trailer_lines; /* non-empty trailer lines seen */
	bool skipped_blank;   /* one blank line before trailers */
	bool have_checksum;
	bool have_trailer_sig;
	char checksum_value[TRAILER_VALUE_MAX + 1];
	char trailer_sig[65];

	bool line_cr; /* the line so far ends in CR */
	size_t line_len;
	char line[KURA_CHUNK_LINE_MAX];
};

/* Record the first failure of the decoder and report it. */
static enum kura_err fail(struct kura_chunked *c, struct kura_error *err,
			  enum kura_err code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum kura_err fail(struct kura_chunked *c, struct kura_error *err,
			  enum kura_err code, const char *fmt, ...)
{
	char msg[KURA_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->state = ST_FAILED;
	c->failed = code;
	return kura_fail(err, code, "aws-chunked body: %s", msg);
}

/* ---- helpers ---- */

static bool is_hex(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
	       (ch >= 'A' && ch <= 'F');
}

static bool sig_parse(const char *p, size_t n, char out[65])
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!is_hex((unsigned char)p[i]))
			return false;
	for (size_t i = 0; i < 64; i++)
		out[i] = (p[i] >= 'A' && p[i] <= 'F') ? (char)(p[i] + 32) :
							p[i];
	out[64] = '\0';
	return true;
}

static bool sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	if (EVP_Digest(p ? p : "", n, md, &len, EVP_sha256(), NULL) != 1 ||
	    len != 32)
		return false;
	kura_hex_encode(md, 32, hex);
	return true;
}

/* HMAC of a chunk or trailer string to sign; false on a crypto failure. */
static bool sign_sts(struct kura_chunked *c, const char *algorithm,
		     const char *tail, char out[65])
{
	char sts[32 + 17 + SCOPE_MAX + 65 + 2 * 65 + 8];
	int n = snprintf(sts, sizeof(sts), "%s\n%s\n%s\n%s\n%s", algorithm,
			 c->amz_date, c->scope, c->prev_sig, tail);
	if (n < 0 || (size_t)n >= sizeof(sts))
		return false;
	kura_sigv4_hmac_hex(c->signing_key, sts, (size_t)n, out);
	return out[0] != '\0';
}

static bool is_signed(const struct kura_chunked *c)
{
	return c->mode != KURA_CHUNKED_UNSIGNED_TRAILER;
}

/* ---- lifecycle ---- */

enum kura_err kura_chunked_new(enum kura_chunked_mode mode,
			       const struct kura_secret *signing_key,
			       const char *amz_date, const char *scope,
			       const char *seed_signature,
			       const char *trailer_name, kura_sink_fn sink,
			       void *sink_ctx, struct kura_chunked **out,
			       struct kura_error *err)
{
	if (out == NULL || sink == NULL ||
	    (mode != KURA_CHUNKED_SIGNED &&
	     mode != KURA_CHUNKED_SIGNED_TRAILER &&
	     mode != KURA_CHUNKED_UNSIGNED_TRAILER))
		return kura_fail(err, KURA_EINVAL,
				 "aws-chunked: bad arguments");
	bool sign = mode != KURA_CHUNKED_UNSIGNED_TRAILER;
	if (sign &&
	    (signing_key == NULL || signing_key->len == 0 || amz_date == NULL ||
	     strnlen(amz_date, 17) != 16 || scope == NULL ||
	     strnlen(scope, SCOPE_MAX + 1) == 0 ||
	     strnlen(scope, SCOPE_MAX + 1) > SCOPE_MAX ||
	     strchr(scope, '\n') != NULL || strchr(amz_date, '\n') ||
	     seed_signature == NULL || strnlen(seed_signature, 65) != 64))
		return kura_fail(
			err, KURA_EINVAL,
			"aws-chunked: signed mode needs key, date, scope and seed");
	if (mode == KURA_CHUNKED_SIGNED && trailer_name != NULL)
		return kura_fail(
			err, KURA_EINVAL,
			"aws-chunked: trailer announced without a trailer mode");

	const char *tname = NULL;
	enum kura_checksum_algo alg = KURA_CHECKSUM_NONE;
	if (trailer_name != NULL) {
		/* x-amz-trailer: trim, compare case-insensitively. */
		struct kura_str t = kura_str_from(trailer_name);
		while (t.len && (t.p[0] == ' ' || t.p[0] == '\t')) {
			t.p++;
			t.len--;
		}
		while (t.len &&
		       (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
			t.len--;
		alg = kura_checksum_algo_of(t);
		tname = kura_checksum_name(alg);
		if (tname == NULL)
			return kura_fail(
				err, KURA_EINVAL,
				"aws-chunked: unsupported trailer '%.64s'",
				trailer_name);
	}

	enum kura_err rc = KURA_OK;
	struct kura_chunked *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return kura_fail(err, KURA_ENOMEM, "aws-chunked decoder");
	c->mode = mode;
	c->state = ST_HEADER;
	c->sink = sink;
	c->sink_ctx = sink_ctx;
	c->trailer_name = tname;
	rc = kura_checksum_init(&c->sum, alg, err);
	if (rc != KURA_OK)
		goto out;
	if (sign) {
		c->signing_key = kura_secret_dup(signing_key);
		if (c->signing_key == NULL) {
			rc = kura_fail(
				err, KURA_ENOMEM,
				"cannot allocate locked memory for the signing key");
			goto out;
		}
		memcpy(c->amz_date, amz_date, 16);
		c->amz_date[16] = '\0';
		size_t sl = strlen(scope);
		memcpy(c->scope, scope, sl + 1);
		if (!sig_parse(seed_signature, 64, c->prev_sig)) {
			rc = kura_fail(
				err, KURA_EINVAL,
				"aws-chunked: seed signature is not 64 hex digits");
			goto out;
		}
		c->chunk_md = EVP_MD_CTX_new();
		if (c->chunk_md == NULL) {
			rc = kura_fail_openssl(err, KURA_ENOMEM,
					       "EVP_MD_CTX_new");
			goto out;
		}
	}
	*out = c;
	c = NULL;
out:
	kura_chunked_free(c);
	return rc;
}

void kura_chunked_checksum(const struct kura_chunked *c,
			   struct kura_checksum_value *out)
{
	memset(out, 0, sizeof(*out));
	if (c != NULL && c->state == ST_DONE && c->have_checksum)
		kura_checksum_result(&c->sum, out);
}

void kura_chunked_free(struct kura_chunked *c)
{
	if (c == NULL)
		return;
	kura_secret_free(c->signing_key);
	EVP_MD_CTX_free(c->chunk_md);
	kura_checksum_release(&c->sum);
	free(c);
}

/* ---- chunk framing ---- */

/* Begin a chunk of size bytes announced with signature sig (signed). */
static enum kura_err chunk_begin(struct kura_chunked *c, uint64_t size,
				 struct kura_error *err)
{
	if (is_signed(c) &&
	    EVP_DigestInit_ex(c->chunk_md, EVP_sha256(), NULL) != 1)
		return fail(c, err, KURA_ECRYPTO, "SHA-256 init");
	c->remaining = size;
	return KURA_OK;
}

/* The current chunk's data is complete: check its signature. */
static enum kura_err chunk_end(struct kura_chunked *c, struct kura_error *err)
{
	if (!is_signed(c))
		return KURA_OK;
	unsigned char md[32];
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(c->chunk_md, md, &len) != 1 || len != 32)
		return fail(c, err, KURA_ECRYPTO, "SHA-256 final");
	char tail[65 + 1 + 64 + 1];
	char hex[65];
	kura_hex_encode(md, 32, hex);
	snprintf(tail, sizeof(tail), "%s\n%s", EMPTY_SHA256_HEX, hex);
	char expect[65];
	if (!sign_sts(c, "AWS4-HMAC-SHA256-PAYLOAD", tail, expect))
		return fail(c, err, KURA_ECRYPTO, "chunk HMAC");
	if (!kura_ct_equal(expect, c->chunk_sig, 64))
		return fail(c, err, KURA_EAUTH,
			    "chunk signature does not match (after %llu bytes)",
			    (unsigned long long)c->decoded);
	memcpy(c->prev_sig, expect, 65);
	return KURA_OK;
}

static enum kura_err header_line(struct kura_chunked *c, struct kura_error *err)
{
	const char *l = c->line;
	size_t n = c->line_len;
	const char *semi = memchr(l, ';', n);
	size_t hex_len = semi ? (size_t)(semi - l) : n;
	uint64_t size;
	if (kura_parse_hex_u64(l, hex_len, &size) != KURA_OK)
		return fail(c, err, KURA_EPROTO, "bad chunk size");
	if (size > DECODED_MAX - c->decoded)
		return fail(c, err, KURA_EPROTO,
			    "chunk size overflows the body");
	if (is_signed(c)) {
		static const char ext[] = ";chunk-signature=";
		size_t el = sizeof(ext) - 1;
		if (semi == NULL || n - hex_len != el + 64 ||
		    memcmp(semi, ext, el) != 0 ||
		    !sig_parse(semi + el, 64, c->chunk_sig))
			return fail(
				c, err, KURA_EPROTO,
				"chunk header without a valid chunk-signature");
	} else if (semi != NULL) {
		return fail(c, err, KURA_EPROTO,
			    "unexpected chunk extension in an unsigned body");
	}
	enum kura_err rc = chunk_begin(c, size, err);
	if (rc != KURA_OK)
		return rc;
	if (size > 0) {
		c->state = ST_DATA;
		return KURA_OK;
	}
	/* The zero-length chunk ends the data; its signature covers the
	 * empty string and links the chain to the trailer. */
	rc = chunk_end(c, err);
	if (rc != KURA_OK)
		return rc;
	c->state = c->mode == KURA_CHUNKED_SIGNED ? ST_END_LINE : ST_TRAILER;
	return KURA_OK;
}

/* ---- trailers ---- */

static bool checksum_matches(struct kura_chunked *c, struct kura_error *err,
			     enum kura_err *rc)
{
	struct kura_error e = { 0 };
	switch (kura_checksum_verify(&c->sum, kura_str_from(c->checksum_value),
				     &e)) {
	case KURA_OK:
		return true;
	case KURA_EINVAL:
		*rc = fail(c, err, KURA_EINVAL, "%s is not a valid checksum",
			   c->trailer_name);
		return false;
	case KURA_EINTEGRITY:
		*rc = fail(c, err, KURA_EINTEGRITY,
			   "%s does not match the body", c->trailer_name);
		return false;
	default:
		*rc = fail(c, err, KURA_ECRYPTO, "checksum: %s", e.msg);
		return false;
	}
}

/* All trailers are in: check the signature, then the checksum. */
static enum kura_err trailers_end(struct kura_chunked *c,
				  struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	if (c->trailer_name && !c->have_checksum)
		return fail(c, err, KURA_EPROTO, "announced trailer %s missing",
			    c->trailer_name);
	if (c->mode == KURA_CHUNKED_SIGNED_TRAILER &&
	    (c->have_checksum || c->have_trailer_sig)) {
		if (!c->have_trailer_sig)
			return fail(c, err, KURA_EAUTH,
				    "x-amz-trailer-signature missing");
		char canon[64 + 1 + TRAILER_VALUE_MAX + 2] = "";
		if (c->have_checksum)
			snprintf(canon, sizeof(canon), "%s:%s\n",
				 c->trailer_name, c->checksum_value);
		char hash[65], expect[65];
		if (!sha256_hex(canon, strlen(canon), hash) ||
		    !sign_sts(c, "AWS4-HMAC-SHA256-TRAILER", hash, expect))
			return fail(c, err, KURA_ECRYPTO, "trailer HMAC");
		if (!kura_ct_equal(expect, c->trailer_sig, 64))
			return fail(c, err, KURA_EAUTH,
				    "trailer signature does not match");
	}
	if (c->have_checksum && !checksum_matches(c, err, &rc))
		return rc;
	c->state = ST_DONE;
	return KURA_OK;
}

static enum kura_err trailer_line(struct kura_chunked *c,
				  struct kura_error *err)
{
	const char *l = c->line;
	size_t n = c->line_len;
	if (n == 0) {
		/* Some encoders put the blank line of an ordinary last chunk
		 * before the trailers; tolerate one when a trailer is due. */
		if (c->trailer_lines == 0 && c->trailer_name &&
		    !c->skipped_blank) {
			c->skipped_blank = true;
			return KURA_OK;
		}
		return trailers_end(c, err);
	}
	c->trailer_lines++;
	const char *colon = memchr(l, ':', n);
	if (colon == NULL || colon == l)
		return fail(c, err, KURA_EPROTO, "malformed trailer line");
	size_t nl = (size_t)(colon - l);
	char name[64];
	if (nl >= sizeof(name))
		return fail(c, err, KURA_EPROTO, "unexpected trailer");
	for (size_t i = 0; i < nl; i++) {
		char ch = l[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + 32);
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-'))
			return fail(c, err, KURA_EPROTO,
				    "malformed trailer name");
		name[i] = ch;
	}
	name[nl] = '\0';
	struct kura_str v = { colon + 1, n - nl - 1 };
	while (v.len && (v.p[0] == ' ' || v.p[0] == '\t')) {
		v.p++;
		v.len--;
	}
	while (v.len && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
		v.len--;
	for (size_t i = 0; i < v.len; i++)
		if ((unsigned char)v.p[i] < 0x21 ||
		    (unsigned char)v.p[i] > 0x7e)
			return fail(c, err, KURA_EPROTO,
				    "control character in a trailer value");

	if (strcmp(name, "x-amz-trailer-signature") == 0) {
		if (c->mode != KURA_CHUNKED_SIGNED_TRAILER ||
		    c->have_trailer_sig)
			return fail(c, err, KURA_EPROTO,
				    "unexpected x-amz-trailer-signature");
		if (!sig_parse(v.p, v.len, c->trailer_sig))
			return fail(
				c, err, KURA_EAUTH,
				"x-amz-trailer-signature is not 64 hex digits");
		c->have_trailer_sig = true;
		return KURA_OK;
	}
	/* Only the announced checksum, once, before the signature. */
	if (c->trailer_name == NULL || strcmp(name, c->trailer_name) != 0 ||
	    c->have_checksum || c->have_trailer_sig)
		return fail(c, err, KURA_EPROTO, "unexpected trailer '%s'",
			    name);
	if (v.len > TRAILER_VALUE_MAX)
		return fail(c, err, KURA_EAUTH, "%s is not a valid checksum",
			    c->trailer_name);
	memcpy(c->checksum_value, v.p, v.len);
	c->checksum_value[v.len] = '\0';
	c->have_checksum = true;
	return KURA_OK;
}

/* ---- the byte loop ---- */

/* Add one byte to the current line; *done when CRLF completed it. */
static enum kura_err line_byte(struct kura_chunked *c, uint8_t b, bool *done,
			       struct kura_error *err)
{
	*done = false;
	if (c->line_cr) {
		if (b != '\n')
			return fail(c, err, KURA_EPROTO,
				    "CR not followed by LF");
		c->line_cr = false;
		*done = true;
		return KURA_OK;
	}
	if (b == '\r') {
		c->line_cr = true;
		return KURA_OK;
	}
	if (b == '\n')
		return fail(c, err, KURA_EPROTO, "line ends without CR");
	if (c->line_len >= KURA_CHUNK_LINE_MAX)
		return fail(c, err, KURA_ETOOBIG, "line longer than %d bytes",
			    KURA_CHUNK_LINE_MAX);
	c->line[c->line_len++] = (char)b;
	return KURA_OK;
}

static enum kura_err data_bytes(struct kura_chunked *c, const uint8_t *p,
				size_t n, struct kura_error *err)
{
	if (is_signed(c) && EVP_DigestUpdate(c->chunk_md, p, n) != 1)
		return fail(c, err, KURA_ECRYPTO, "SHA-256 update");
	if (kura_checksum_update(&c->sum, p, n, err) != KURA_OK)
		return fail(c, err, KURA_ECRYPTO, "checksum update");
	enum kura_err rc = c->sink(c->sink_ctx, p, n, err);
	if (rc != KURA_OK) {
		c->state = ST_FAILED;
		c->failed = rc;
		return rc;
	}
	c->decoded += n;
	return KURA_OK;
}

enum kura_err kura_chunked_feed(struct kura_chunked *c, const uint8_t *p,
				size_t n, struct kura_error *err)
{
	if (c == NULL || (p == NULL && n != 0))
		return kura_fail(err, KURA_EINVAL,
				 "aws-chunked: bad arguments");
	size_t i = 0;
	while (i < n) {
		enum kura_err rc = KURA_OK;
		bool done = false;
		switch (c->state) {
		case ST_DATA: {
			size_t take = n - i;
			if ((uint64_t)take > c->remaining)
				take = (size_t)c->remaining;
			rc = data_bytes(c, p + i, take, err);
			if (rc != KURA_OK)
				return rc;
			i += take;
			c->remaining -= take;
			if (c->remaining == 0) {
				rc = chunk_end(c, err);
				c->state = rc == KURA_OK ? ST_DATA_CR :
							   c->state;
			}
			break;
		}
		case ST_DATA_CR:
			if (p[i++] != '\r')
				return fail(c, err, KURA_EPROTO,
					    "chunk data not followed by CRLF");
			c->state = ST_DATA_LF;
			break;
		case ST_DATA_LF:
			if (p[i++] != '\n')
				return fail(c, err, KURA_EPROTO,
					    "chunk data not followed by CRLF");
			c->state = ST_HEADER;
			break;
		case ST_HEADER:
		case ST_END_LINE:
		case ST_TRAILER:
			if (c->state != ST_HEADER &&
			    ++c->trailer_bytes > KURA_CHUNK_TRAILER_MAX)
				return fail(c, err, KURA_ETOOBIG,
					    "trailers longer than %d bytes",
					    KURA_CHUNK_TRAILER_MAX);
			rc = line_byte(c, p[i++], &done, err);
			if (rc != KURA_OK || !done)
				break;
			if (c->state == ST_HEADER)
				rc = header_line(c, err);
			else if (c->state == ST_TRAILER)
				rc = trailer_line(c, err);
			else if (c->line_len != 0)
				rc = fail(
					c, err, KURA_EPROTO,
					"trailer after the final chunk of a body without one");
			else
				c->state = ST_DONE;
			c->line_len = 0;
			break;
		case ST_DONE:
			return fail(c, err, KURA_EPROTO,
				    "bytes after the end of the body");
		case ST_FAILED:
			return kura_fail(
				err, c->failed,
				"aws-chunked body: decoder already failed");
		}
		if (rc != KURA_OK)
			return rc;
	}
	return KURA_OK;
}

enum kura_err kura_chunked_finish(struct kura_chunked *c, uint64_t *decoded,
				  struct kura_error *err)
{
	if (c == NULL)
		return kura_fail(err, KURA_EINVAL,
				 "aws-chunked: bad arguments");
	if (c->state == ST_FAILED)
		return kura_fail(err, c->failed,
				 "aws-chunked body: decoder already failed");
	/* The blank line that closes the trailers is sometimes left out; the
	 * trailers themselves are complete when the last line ended. */
	if (c->state == ST_TRAILER && c->line_len == 0 && !c->line_cr &&
	    c->trailer_lines > 0) {
		enum kura_err rc = trailers_end(c, err);
		if (rc != KURA_OK)
			return rc;
	}
	if (c->state != ST_DONE)
		return fail(c, err, KURA_EPROTO,
			    "body ended before its final chunk%s",
			    c->state == ST_TRAILER ? "'s trailers" : "");
	if (decoded)
		*decoded = c->decoded;
	return KURA_OK;
}

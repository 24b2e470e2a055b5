/*
 * sign.c — SigV4 signing of the remote store's requests.
 *
 * The canonical request, string to sign and signing key come from
 * core/sigv4.c, the code the S3 listener verifies with, so client and
 * server canonicalise alike.  What is signed: host, range (when sent),
 * x-amz-content-sha256 and x-amz-date.  The payload hash is always the
 * SHA-256 of the bytes sent — never UNSIGNED-PAYLOAD: over plain http to
 * loopback, and through any TLS-terminating proxy, the signature then
 * covers the ciphertext too.
 *
 * The secret access key and the derived signing key stay in struct
 * kura_secret; the signature leaves only in the Authorization header,
 * which the caller wipes (rs3_signed_wipe) and nobody logs.
 *
 * Thread-safe: no state.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/buf.h"
#include "kura/encode.h"
#include "kura/sigv4.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define CANONICAL_MAX (S3_PATH_MAX + S3_UPLOAD_ID_MAX * 3 + 2048)

static enum kura_err payload_hash(const void *body, size_t n, char out[65],
				  struct kura_error *err)
{
	unsigned char md[32];
	unsigned int len = 0;
	if (EVP_Digest(n ? body : "", n, md, &len, EVP_sha256(), NULL) != 1 ||
	    len != sizeof(md))
		return kura_fail_openssl(err, KURA_ECRYPTO, "SHA-256");
	kura_hex_encode(md, sizeof(md), out);
	return KURA_OK;
}

/* The signature of the canonical request creq under c's secret. */
static enum kura_err signature(const struct rs3_conf *c, const char *amz_date,
			       const char *scope, const struct kura_buf *creq,
			       char sig[65], struct kura_error *err)
{
	char date[9];
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	struct kura_buf sts;
	struct kura_secret *key = NULL;
	kura_buf_init(&sts, 512);
	struct kura_str cs = { creq->data, creq->len };
	enum kura_err rc =
		kura_sigv4_string_to_sign(amz_date, scope, cs, &sts, err);
	if (rc == KURA_OK)
		rc = kura_sigv4_signing_key(c->secret, date, c->region, "s3",
					    &key, err);
	if (rc == KURA_OK) {
		kura_sigv4_hmac_hex(key, sts.data, sts.len, sig);
		if (sig[0] == '\0')
			rc = kura_fail(err, KURA_ECRYPTO, "HMAC-SHA256");
	}
	kura_secret_free(key);
	kura_buf_release(&sts);
	return rc;
}

enum kura_err rs3_sign(const struct rs3_conf *c, const char *method,
		       const char *path, const char *query, const char *range,
		       const void *body, size_t n, int64_t now_ms,
		       struct rs3_signed *out, struct kura_error *err)
{
	struct rs3_signed s;
	memset(&s, 0, sizeof(s));
	kura_time_amz(now_ms, s.amz_date);
	enum kura_err rc = payload_hash(body, n, s.payload_hash, err);
	if (rc != KURA_OK)
		return rc;
	struct kura_sigv4_header h[4];
	size_t nh = 0;
	h[nh++] = (struct kura_sigv4_header){ KURA_STR_LIT("host"),
					      kura_str_from(c->host) };
	if (range != NULL)
		h[nh++] = (struct kura_sigv4_header){ KURA_STR_LIT("range"),
						      kura_str_from(range) };
	h[nh++] = (struct kura_sigv4_header){ KURA_STR_LIT(
						      "x-amz-content-sha256"),
					      kura_str_from(s.payload_hash) };
	h[nh++] = (struct kura_sigv4_header){ KURA_STR_LIT("x-amz-date"),
					      kura_str_from(s.amz_date) };
	const char *signed_headers =
		range != NULL ? "host;range;x-amz-content-sha256;x-amz-date" :
				"host;x-amz-content-sha256;x-amz-date";
	char scope[128], sig[65];
	snprintf(scope, sizeof(scope), "%.8s/%s/s3/aws4_request", s.amz_date,
		 c->region);
	struct kura_buf creq;
	kura_buf_init(&creq, CANONICAL_MAX);
	rc = kura_sigv4_canonical_request(
		kura_str_from(method), kura_str_from(path),
		kura_str_from(query), false, h, nh, signed_headers,
		kura_str_from(s.payload_hash), &creq, err);
	if (rc == KURA_OK)
		rc = signature(c, s.amz_date, scope, &creq, sig, err);
	kura_buf_release(&creq);
	if (rc != KURA_OK)
		return rc;
	int k = snprintf(s.authorization, sizeof(s.authorization),
			 "Authorization: " KURA_SIGV4_ALGORITHM
			 " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			 c->access_key, scope, signed_headers, sig);
	kura_wipe(sig, sizeof(sig));
	if (k < 0 || (size_t)k >= sizeof(s.authorization)) {
		rs3_signed_wipe(&s);
		return kura_fail(err, KURA_EINVAL, "Authorization too long");
	}
	*out = s;
	rs3_signed_wipe(&s);
	return KURA_OK;
}

void rs3_signed_wipe(struct rs3_signed *s)
{
	kura_wipe(s, sizeof(*s));
}

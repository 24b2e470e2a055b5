/*
 * sigv4.c — AWS Signature Version 4 for S3: parsing the Authorization header
 * and presigned query parameters, the canonical request, the string to sign,
 * the signing key and verification.
 *
 * It lives in core, not auth, because two layers need the same
 * canonicalisation: the S3 listener verifies requests with it and the
 * remote S3 data store (src/store/s3/) signs its own with it; one copy
 * means a client and a server that cannot disagree about a byte.
 *
 * Invariants: every input is a (pointer, length) view checked against an
 * explicit limit below before it is used; outputs are written only on
 * success; the secret key, the "AWS4"+secret key and every intermediate key
 * of the HMAC chain live only in struct kura_secret (locked, wiped on free).
 * Signatures are compared in constant time.  No I/O, no global state.
 *
 * Thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/encode.h"
#include "kura/hmac.h"
#include "kura/parse.h"
#include "kura/sigv4.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

/* Limits on untrusted input.  Each is far above what real S3 clients send
 * and small enough that a hostile request costs little to reject. */
#define AUTH_HEADER_MAX 8192	     /* Authorization header value */
#define ACCESS_KEY_MAX 128	     /* fits kura_sigv4.access_key */
#define REGION_MAX 63		     /* fits kura_sigv4.region */
#define SERVICE_MAX 15		     /* fits kura_sigv4.service */
#define SIGNED_HEADERS_COUNT_MAX 128 /* names in SignedHeaders */
#define REQUEST_HEADERS_MAX 256	     /* headers examined per request */
#define METHOD_MAX 32
#define URI_PATH_MAX 16384   /* raw (encoded) request path */
#define QUERY_MAX 16384	     /* raw query string */
#define QUERY_PARAMS_MAX 256 /* parameters in the query string */
#define QUERY_VALUE_MAX 4096 /* one decoded X-Amz-* parameter value */
#define QUERY_NAME_MAX 64    /* decoded name compared to X-Amz-* */
#define PAYLOAD_HASH_MAX 128
#define SCOPE_MAX 127
#define CANONICAL_MAX (256 * 1024)    /* whole canonical request */
#define SKEW_CLAMP ((int64_t)1 << 40) /* keeps time arithmetic in range */

#define SHA256_LEN 32

/* ---- small helpers ---- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static struct kura_str trim_ws(struct kura_str s)
{
	while (s.len > 0 && is_ws(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_ws(s.p[s.len - 1]))
		s.len--;
	return s;
}

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool str_eq(const char *p, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	return n == m && memcmp(p, lit, m) == 0;
}

static bool caseeq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

/* Byte-wise order of two strings, shorter first on a common prefix. */
static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int r = m ? memcmp(a, b, m) : 0;
	if (r != 0)
		return r;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

/* Copy s into a fixed field of cap bytes (NUL-terminated). */
static bool copy_field(char *dst, size_t cap, struct kura_str s)
{
	if (s.len >= cap)
		return false;
	if (s.len)
		memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return true;
}

/* ---- field validation ---- */

/* Access keys are generated identifiers: letters, digits and -_.~ only, so
 * that they can never smuggle the credential separators '/' ',' '='. */
static bool access_key_valid(struct kura_str s)
{
	if (s.len == 0 || s.len > ACCESS_KEY_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == '~'))
			return false;
	}
	return true;
}

static bool name_part_valid(struct kura_str s, size_t max)
{
	if (s.len == 0 || s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static bool date8_valid(struct kura_str s)
{
	if (s.len != 8)
		return false;
	for (size_t i = 0; i < 8; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	return true;
}

/*
 * SignedHeaders: lowercase token names separated by single ';', strictly
 * ascending (so no duplicates), at most SIGNED_HEADERS_COUNT_MAX of them.
 * Anything else is refused rather than normalised, because normalising
 * would sign a different list than the client meant.
 */
static bool signed_headers_valid(const char *p, size_t n)
{
	if (n == 0 || n >= KURA_SIGV4_SIGNED_HEADERS_MAX)
		return false;
	size_t count = 0;
	const char *prev = NULL;
	size_t prev_len = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != ';') {
			unsigned char c = (unsigned char)p[i];
			if (!is_tchar(c) || (c >= 'A' && c <= 'Z'))
				return false;
			continue;
		}
		size_t len = i - start;
		if (len == 0)
			return false;
		if (prev && bytes_cmp(prev, prev_len, p + start, len) >= 0)
			return false;
		if (++count > SIGNED_HEADERS_COUNT_MAX)
			return false;
		prev = p + start;
		prev_len = len;
		start = i + 1;
	}
	return true;
}

static bool signed_headers_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;
	for (;;) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return true;
		if (semi == NULL)
			return false;
		p = semi + 1;
	}
}

/* Is name (any case) one of the lowercase names of list "a;b;c"? */
static bool signed_headers_has_ci(const char *list, const char *name, size_t n)
{
	const char *p = list;
	for (;;) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		if (caseeq(p, len, name, n))
			return true;
		if (semi == NULL)
			return false;
		p = semi + 1;
	}
}

/*
 * AWS requires every x-amz-* header of a request to be signed: the server
 * acts on them (copy source, SSE keys, tags, metadata, ACLs ...), so an
 * unsigned one would let whoever relays or replays a signed request change
 * what it does.  x-amz-content-sha256 alone needs no listing: its value is
 * the last line of the canonical request (the payload hash), so the
 * signature covers it whether or not SignedHeaders names it.
 */
static bool must_be_signed(struct kura_str name)
{
	static const char prefix[] = "x-amz-";
	static const char content_sha[] = "x-amz-content-sha256";
	if (name.p == NULL || name.len < sizeof(prefix) - 1 ||
	    !caseeq(name.p, sizeof(prefix) - 1, prefix, sizeof(prefix) - 1))
		return false;
	return !caseeq(name.p, name.len, content_sha, sizeof(content_sha) - 1);
}

/* 64 hex digits, stored lowercase. */
static bool signature_parse(struct kura_str s, char out[65])
{
	if (s.len != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!is_hex((unsigned char)s.p[i]))
			return false;
	for (size_t i = 0; i < 64; i++)
		out[i] = lower(s.p[i]);
	out[64] = '\0';
	return true;
}

/* "AK/YYYYMMDD/REGION/SERVICE/aws4_request" */
static bool credential_parse(struct kura_str cred, struct kura_sigv4 *a)
{
	struct kura_str part[5];
	size_t np = 0;
	size_t start = 0;
	for (size_t i = 0; i <= cred.len; i++) {
		if (i < cred.len && cred.p[i] != '/')
			continue;
		if (np == 5)
			return false;
		part[np].p = cred.p + start;
		part[np].len = i - start;
		np++;
		start = i + 1;
	}
	if (np != 5)
		return false;
	if (!access_key_valid(part[0]) || !date8_valid(part[1]) ||
	    !name_part_valid(part[2], REGION_MAX) ||
	    !name_part_valid(part[3], SERVICE_MAX) ||
	    !str_eq(part[4].p, part[4].len, "aws4_request"))
		return false;
	return copy_field(a->access_key, sizeof(a->access_key), part[0]) &&
	       copy_field(a->date, sizeof(a->date), part[1]) &&
	       copy_field(a->region, sizeof(a->region), part[2]) &&
	       copy_field(a->service, sizeof(a->service), part[3]);
}

static bool amz_date_parse(struct kura_str s, struct kura_sigv4 *a)
{
	int64_t t;
	if (s.p == NULL || s.len != 16 ||
	    kura_time_parse_amz(s.p, s.len, &t) != KURA_OK)
		return false;
	a->request_time = t;
	return copy_field(a->amz_date, sizeof(a->amz_date), s);
}

/* ---- Authorization header ---- */

enum kura_sigv4_result kura_sigv4_parse_header(struct kura_str authorization,
					       struct kura_str amz_date,
					       struct kura_sigv4 *out)
{
	if (authorization.p == NULL || authorization.len > AUTH_HEADER_MAX)
		return KURA_SIGV4_MALFORMED;
	struct kura_str s = trim_ws(authorization);
	size_t i = 0;
	while (i < s.len && !is_ws(s.p[i]))
		i++;
	if (!str_eq(s.p, i, KURA_SIGV4_ALGORITHM))
		return i == 0 ? KURA_SIGV4_MALFORMED : KURA_SIGV4_UNSUPPORTED;

	struct kura_sigv4 a;
	memset(&a, 0, sizeof(a));
	struct kura_str cred = { NULL, 0 }, sh = { NULL, 0 }, sig = { NULL, 0 };
	bool have_cred = false, have_sh = false, have_sig = false;

	/* Components separated by ',' with optional whitespace around them;
	 * each exactly once, nothing unknown. */
	size_t start = i;
	for (size_t j = i; j <= s.len; j++) {
		if (j < s.len && s.p[j] != ',')
			continue;
		struct kura_str comp = { s.p + start, j - start };
		comp = trim_ws(comp);
		start = j + 1;
		const char *eq = comp.len ? memchr(comp.p, '=', comp.len) :
					    NULL;
		if (eq == NULL)
			return KURA_SIGV4_MALFORMED;
		size_t nlen = (size_t)(eq - comp.p);
		struct kura_str val = { eq + 1, comp.len - nlen - 1 };
		if (str_eq(comp.p, nlen, "Credential") && !have_cred) {
			cred = val;
			have_cred = true;
		} else if (str_eq(comp.p, nlen, "SignedHeaders") && !have_sh) {
			sh = val;
			have_sh = true;
		} else if (str_eq(comp.p, nlen, "Signature") && !have_sig) {
			sig = val;
			have_sig = true;
		} else {
			return KURA_SIGV4_MALFORMED;
		}
	}
	if (!have_cred || !have_sh || !have_sig)
		return KURA_SIGV4_MALFORMED;
	if (!credential_parse(cred, &a))
		return KURA_SIGV4_MALFORMED;
	if (!signed_headers_valid(sh.p, sh.len) ||
	    !copy_field(a.signed_headers, sizeof(a.signed_headers), sh))
		return KURA_SIGV4_MALFORMED;
	if (!signature_parse(sig, a.signature))
		return KURA_SIGV4_MALFORMED;
	if (!amz_date_parse(amz_date, &a))
		return KURA_SIGV4_MALFORMED;
	a.presigned = false;
	a.expires = 0;
	*out = a;
	return KURA_SIGV4_OK;
}

/* ---- presigned query ---- */

/* Calls fn for each non-empty '&'-separated parameter of a raw query with
 * its raw name and raw value (value empty when there is no '=').  Stops and
 * returns false when fn does, or when there are too many parameters. */
static bool each_param(struct kura_str q,
		       bool (*fn)(void *ctx, struct kura_str name,
				  struct kura_str value),
		       void *ctx)
{
	size_t count = 0;
	size_t start = 0;
	for (size_t i = 0; i <= q.len; i++) {
		if (i < q.len && q.p[i] != '&')
			continue;
		size_t len = i - start;
		const char *seg = q.p + start;
		start = i + 1;
		if (len == 0)
			continue;
		if (++count > QUERY_PARAMS_MAX)
			return false;
		const char *eq = memchr(seg, '=', len);
		struct kura_str name = { seg, eq ? (size_t)(eq - seg) : len };
		struct kura_str value = { eq ? eq + 1 : seg + len,
					  eq ? len - name.len - 1 : 0 };
		if (!fn(ctx, name, value))
			return false;
	}
	return true;
}

/* Decode a raw query name into buf (at most QUERY_NAME_MAX bytes); false
 * when it is longer or not decodable, i.e. not one of ours. */
static bool decode_name(struct kura_str raw, char buf[QUERY_NAME_MAX + 1],
			size_t *len)
{
	struct kura_buf b;
	kura_buf_init(&b, QUERY_NAME_MAX);
	bool ok = raw.len <= 3 * QUERY_NAME_MAX &&
		  kura_uri_decode(raw.p, raw.len, &b) == KURA_OK;
	if (ok) {
		memcpy(buf, b.data, b.len);
		buf[b.len] = '\0';
		*len = b.len;
	}
	kura_buf_release(&b);
	return ok;
}

enum qfield {
	QF_ALG,
	QF_CRED,
	QF_DATE,
	QF_EXPIRES,
	QF_SH,
	QF_SIG,
	QF_COUNT
};

static const char *const qfield_name[QF_COUNT] = {
	"X-Amz-Algorithm", "X-Amz-Credential",	  "X-Amz-Date",
	"X-Amz-Expires",   "X-Amz-SignedHeaders", "X-Amz-Signature",
};

struct qparse {
	struct kura_buf val[QF_COUNT];
	bool seen[QF_COUNT];
	bool bad;
};

static bool qparse_param(void *ctx, struct kura_str name, struct kura_str value)
{
	struct qparse *qp = ctx;
	char nbuf[QUERY_NAME_MAX + 1];
	size_t nlen;
	if (!decode_name(name, nbuf, &nlen))
		return true;
	for (int f = 0; f < QF_COUNT; f++) {
		if (!str_eq(nbuf, nlen, qfield_name[f]))
			continue;
		if (qp->seen[f] || kura_uri_decode(value.p, value.len,
						   &qp->val[f]) != KURA_OK) {
			qp->bad = true;
			return false;
		}
		qp->seen[f] = true;
		return true;
	}
	return true;
}

static struct kura_str buf_str(const struct kura_buf *b)
{
	struct kura_str s = { b->data ? b->data : "", b->len };
	return s;
}

enum kura_sigv4_result kura_sigv4_parse_query(struct kura_str raw_query,
					      struct kura_sigv4 *out)
{
	if (raw_query.p == NULL || raw_query.len > QUERY_MAX)
		return KURA_SIGV4_MALFORMED;
	enum kura_sigv4_result res = KURA_SIGV4_MALFORMED;
	struct qparse qp;
	memset(&qp, 0, sizeof(qp));
	for (int f = 0; f < QF_COUNT; f++)
		kura_buf_init(&qp.val[f], QUERY_VALUE_MAX);
	struct kura_sigv4 a;
	memset(&a, 0, sizeof(a));

	if (!each_param(raw_query, qparse_param, &qp) || qp.bad)
		goto out;
	if (!qp.seen[QF_ALG])
		goto out;
	struct kura_str alg = buf_str(&qp.val[QF_ALG]);
	if (!str_eq(alg.p, alg.len, KURA_SIGV4_ALGORITHM)) {
		res = KURA_SIGV4_UNSUPPORTED;
		goto out;
	}
	for (int f = 0; f < QF_COUNT; f++)
		if (!qp.seen[f])
			goto out;
	if (!credential_parse(buf_str(&qp.val[QF_CRED]), &a))
		goto out;
	struct kura_str sh = buf_str(&qp.val[QF_SH]);
	if (!signed_headers_valid(sh.p, sh.len) ||
	    !copy_field(a.signed_headers, sizeof(a.signed_headers), sh))
		goto out;
	if (!signature_parse(buf_str(&qp.val[QF_SIG]), a.signature))
		goto out;
	if (!amz_date_parse(buf_str(&qp.val[QF_DATE]), &a))
		goto out;
	struct kura_str ex = buf_str(&qp.val[QF_EXPIRES]);
	uint64_t expires;
	if (kura_parse_u64(ex.p, ex.len, KURA_SIGV4_MAX_EXPIRES, &expires) !=
	    KURA_OK)
		goto out;
	if (expires < 1)
		goto out;
	a.expires = expires;
	a.presigned = true;
	*out = a;
	res = KURA_SIGV4_OK;
out:
	for (int f = 0; f < QF_COUNT; f++)
		kura_buf_release(&qp.val[f]);
	return res;
}

bool kura_sigv4_query_is_presigned(struct kura_str raw_query)
{
	if (raw_query.p == NULL || raw_query.len > QUERY_MAX)
		return false;
	/* Every parameter is looked at, even past QUERY_PARAMS_MAX, so that a
	 * presigned request with too many parameters is refused as such
	 * rather than taken for an unsigned one. */
	size_t start = 0;
	for (size_t i = 0; i <= raw_query.len; i++) {
		if (i < raw_query.len && raw_query.p[i] != '&')
			continue;
		const char *seg = raw_query.p + start;
		size_t len = i - start;
		start = i + 1;
		const char *eq = len ? memchr(seg, '=', len) : NULL;
		struct kura_str name = { seg, eq ? (size_t)(eq - seg) : len };
		char nbuf[QUERY_NAME_MAX + 1];
		size_t nlen;
		if (decode_name(name, nbuf, &nlen) &&
		    str_eq(nbuf, nlen, "X-Amz-Signature"))
			return true;
	}
	return false;
}

/* ---- canonical request ---- */

/* One query parameter after decoding and re-encoding; offsets into the
 * shared encoded buffer while it grows, pointers once it is complete. */
struct qparam {
	size_t noff, nlen, voff, vlen;
	const char *name, *value;
};

struct qcanon {
	struct qparam *params;
	size_t count;
	bool drop_signature;
	struct kura_buf dec; /* scratch for one decoded component */
	struct kura_buf enc; /* all encoded names and values */
	enum kura_err rc;
};

static enum kura_err recode(struct qcanon *qc, struct kura_str raw)
{
	kura_buf_reset(&qc->dec);
	enum kura_err rc = kura_uri_decode(raw.p, raw.len, &qc->dec);
	if (rc != KURA_OK)
		return rc;
	return kura_uri_encode(qc->dec.data, qc->dec.len, false, &qc->enc);
}

static bool qcanon_param(void *ctx, struct kura_str name, struct kura_str value)
{
	struct qcanon *qc = ctx;
	struct qparam *qp = &qc->params[qc->count];
	qp->noff = qc->enc.len;
	qc->rc = recode(qc, name);
	if (qc->rc != KURA_OK)
		return false;
	/* X-Amz-Signature cannot sign itself; it is matched after decoding
	 * so that an encoded spelling of the name is dropped too. */
	if (qc->drop_signature &&
	    str_eq(qc->dec.data, qc->dec.len, "X-Amz-Signature")) {
		qc->enc.len = qp->noff;
		if (qc->enc.data)
			qc->enc.data[qc->enc.len] = '\0';
		return true;
	}
	qp->nlen = qc->enc.len - qp->noff;
	qp->voff = qc->enc.len;
	qc->rc = recode(qc, value);
	if (qc->rc != KURA_OK)
		return false;
	qp->vlen = qc->enc.len - qp->voff;
	qc->count++;
	return true;
}

static int qparam_cmp(const void *x, const void *y)
{
	const struct qparam *a = x, *b = y;
	int r = bytes_cmp(a->name, a->nlen, b->name, b->nlen);
	return r ? r : bytes_cmp(a->value, a->vlen, b->value, b->vlen);
}

static enum kura_err canonical_query(struct kura_str raw_query, bool presigned,
				     struct kura_buf *out,
				     struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	struct qcanon qc;
	memset(&qc, 0, sizeof(qc));
	qc.drop_signature = presigned;
	kura_buf_init(&qc.dec, QUERY_MAX);
	kura_buf_init(&qc.enc, 3 * (size_t)QUERY_MAX);
	qc.params = calloc(QUERY_PARAMS_MAX, sizeof(*qc.params));
	if (qc.params == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "query parameter table");
		goto out;
	}
	if (!each_param(raw_query, qcanon_param, &qc)) {
		rc = qc.rc == KURA_ENOMEM ? qc.rc : KURA_EINVAL;
		rc = kura_fail(err, rc, "query string cannot be canonicalised");
		goto out;
	}
	for (size_t i = 0; i < qc.count; i++) {
		qc.params[i].name = qc.enc.data + qc.params[i].noff;
		qc.params[i].value = qc.enc.data + qc.params[i].voff;
	}
	if (qc.count > 1)
		qsort(qc.params, qc.count, sizeof(*qc.params), qparam_cmp);
	for (size_t i = 0; i < qc.count && rc == KURA_OK; i++) {
		if (i > 0)
			rc = kura_buf_addch(out, '&');
		if (rc == KURA_OK)
			rc = kura_buf_add(out, qc.params[i].name,
					  qc.params[i].nlen);
		if (rc == KURA_OK)
			rc = kura_buf_addch(out, '=');
		if (rc == KURA_OK)
			rc = kura_buf_add(out, qc.params[i].value,
					  qc.params[i].vlen);
	}
	if (rc != KURA_OK)
		rc = kura_fail(err, rc, "canonical query too large");
out:
	free(qc.params);
	kura_buf_release(&qc.dec);
	kura_buf_release(&qc.enc);
	return rc;
}

/* A header value with leading and trailing whitespace removed and each
 * inner run of whitespace collapsed to one space. */
static enum kura_err add_trimmed(struct kura_buf *out, struct kura_str v)
{
	v = trim_ws(v);
	enum kura_err rc = KURA_OK;
	bool in_ws = false;
	for (size_t i = 0; i < v.len && rc == KURA_OK; i++) {
		if (is_ws(v.p[i])) {
			in_ws = true;
			continue;
		}
		if (in_ws)
			rc = kura_buf_addch(out, ' ');
		in_ws = false;
		if (rc == KURA_OK)
			rc = kura_buf_addch(out, v.p[i]);
	}
	return rc;
}

static enum kura_err canonical_headers(const struct kura_sigv4_header *headers,
				       size_t nheaders,
				       const char *signed_headers,
				       struct kura_buf *out,
				       struct kura_error *err)
{
	const char *p = signed_headers;
	for (;;) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		enum kura_err rc = kura_buf_add(out, p, len);
		if (rc == KURA_OK)
			rc = kura_buf_addch(out, ':');
		size_t found = 0;
		for (size_t i = 0; i < nheaders && rc == KURA_OK; i++) {
			const struct kura_sigv4_header *h = &headers[i];
			if (h->name.p == NULL ||
			    !caseeq(h->name.p, h->name.len, p, len))
				continue;
			if (h->value.p == NULL && h->value.len != 0)
				return kura_fail(err, KURA_EINVAL,
						 "header without a value");
			/* Repeated headers are joined in the order
			 * received, as the AWS test suite's
			 * get-header-value-order requires. */
			if (found++ > 0)
				rc = kura_buf_addch(out, ',');
			if (rc == KURA_OK)
				rc = add_trimmed(out, h->value);
		}
		if (rc == KURA_OK)
			rc = kura_buf_addch(out, '\n');
		if (rc != KURA_OK)
			return kura_fail(err, rc,
					 "canonical headers too large");
		if (found == 0)
			return kura_fail(
				err, KURA_EINVAL,
				"signed header '%.*s' is not in the request",
				(int)len, p);
		if (semi == NULL)
			return KURA_OK;
		p = semi + 1;
	}
}

static bool method_valid(struct kura_str m)
{
	if (m.p == NULL || m.len == 0 || m.len > METHOD_MAX)
		return false;
	for (size_t i = 0; i < m.len; i++)
		if (!is_tchar((unsigned char)m.p[i]))
			return false;
	return true;
}

static bool payload_hash_valid(struct kura_str h)
{
	if (h.p == NULL || h.len == 0 || h.len > PAYLOAD_HASH_MAX)
		return false;
	for (size_t i = 0; i < h.len; i++)
		if ((unsigned char)h.p[i] <= 0x20 ||
		    (unsigned char)h.p[i] >= 0x7f)
			return false;
	return true;
}

enum kura_err
kura_sigv4_canonical_request(struct kura_str method, struct kura_str raw_path,
			     struct kura_str raw_query, bool presigned,
			     const struct kura_sigv4_header *headers,
			     size_t nheaders, const char *signed_headers,
			     struct kura_str payload_hash, struct kura_buf *out,
			     struct kura_error *err)
{
	if (out == NULL)
		return kura_fail(err, KURA_EINVAL, "no output buffer");
	if (!method_valid(method))
		return kura_fail(err, KURA_EINVAL, "invalid request method");
	/* An origin-form path starts with '/'; empty stands for "/". */
	if ((raw_path.len != 0 &&
	     (raw_path.p == NULL || raw_path.p[0] != '/')) ||
	    raw_path.len > URI_PATH_MAX)
		return kura_fail(err, KURA_EINVAL, "invalid request path");
	if ((raw_query.p == NULL && raw_query.len != 0) ||
	    raw_query.len > QUERY_MAX)
		return kura_fail(err, KURA_EINVAL, "invalid query string");
	if ((headers == NULL && nheaders != 0) ||
	    nheaders > REQUEST_HEADERS_MAX)
		return kura_fail(err, KURA_EINVAL, "too many request headers");
	if (signed_headers == NULL ||
	    !signed_headers_valid(signed_headers,
				  strnlen(signed_headers,
					  KURA_SIGV4_SIGNED_HEADERS_MAX)))
		return kura_fail(err, KURA_EINVAL, "invalid SignedHeaders");
	if (!payload_hash_valid(payload_hash))
		return kura_fail(err, KURA_EINVAL, "invalid payload hash");

	enum kura_err rc;
	struct kura_buf c, path;
	kura_buf_init(&c, CANONICAL_MAX);
	kura_buf_init(&path, URI_PATH_MAX);

	rc = kura_buf_add(&c, method.p, method.len);
	if (rc == KURA_OK)
		rc = kura_buf_addch(&c, '\n');
	if (rc != KURA_OK)
		goto fail_size;

	/* S3 signs the path encoded exactly once: decode what arrived, then
	 * encode every byte but the unreserved ones and '/'.  No dot-segment
	 * normalisation: S3 keys may contain "." and "..". */
	if (raw_path.len == 0) {
		rc = kura_buf_addch(&c, '/');
	} else {
		rc = kura_uri_decode(raw_path.p, raw_path.len, &path);
		if (rc == KURA_EINVAL) {
			rc = kura_fail(
				err, KURA_EINVAL,
				"bad percent-escape in the request path");
			goto out;
		}
		if (rc == KURA_OK)
			rc = kura_uri_encode(path.data, path.len, true, &c);
	}
	if (rc == KURA_OK)
		rc = kura_buf_addch(&c, '\n');
	if (rc != KURA_OK)
		goto fail_size;

	rc = canonical_query(raw_query, presigned, &c, err);
	if (rc != KURA_OK)
		goto out;
	rc = kura_buf_addch(&c, '\n');
	if (rc != KURA_OK)
		goto fail_size;

	rc = canonical_headers(headers, nheaders, signed_headers, &c, err);
	if (rc != KURA_OK)
		goto out;

	rc = kura_buf_addch(&c, '\n');
	if (rc == KURA_OK)
		rc = kura_buf_addstr(&c, signed_headers);
	if (rc == KURA_OK)
		rc = kura_buf_addch(&c, '\n');
	if (rc == KURA_OK)
		rc = kura_buf_add(&c, payload_hash.p, payload_hash.len);
	if (rc != KURA_OK)
		goto fail_size;

	rc = kura_buf_add(out, c.data, c.len);
	if (rc != KURA_OK)
		rc = kura_fail(err, rc, "canonical request does not fit");
	goto out;
fail_size:
	rc = kura_fail(err, rc, "canonical request too large");
out:
	kura_buf_release(&c);
	kura_buf_release(&path);
	return rc;
}

/* ---- scope, string to sign, keys ---- */

void kura_sigv4_scope(const struct kura_sigv4 *auth, char *out, size_t cap)
{
	if (out == NULL || cap == 0)
		return;
	if (auth == NULL) {
		out[0] = '\0';
		return;
	}
	int n = snprintf(out, cap, "%.8s/%.63s/%.15s/aws4_request", auth->date,
			 auth->region, auth->service);
	if (n < 0)
		out[0] = '\0';
}

static bool sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char md[SHA256_LEN];
	unsigned int len = 0;
	if (EVP_Digest(p ? p : "", n, md, &len, EVP_sha256(), NULL) != 1 ||
	    len != SHA256_LEN)
		return false;
	kura_hex_encode(md, SHA256_LEN, hex);
	return true;
}

static bool line_field_valid(const char *s, size_t max)
{
	if (s == NULL)
		return false;
	size_t n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

enum kura_err kura_sigv4_string_to_sign(const char *amz_date, const char *scope,
					struct kura_str canonical_request,
					struct kura_buf *out,
					struct kura_error *err)
{
	if (out == NULL || !line_field_valid(amz_date, 16) ||
	    strlen(amz_date) != 16 || !line_field_valid(scope, SCOPE_MAX) ||
	    (canonical_request.p == NULL && canonical_request.len != 0))
		return kura_fail(err, KURA_EINVAL,
				 "invalid string-to-sign input");
	char hex[65];
	if (!sha256_hex(canonical_request.p, canonical_request.len, hex))
		return kura_fail_openssl(err, KURA_ECRYPTO, "SHA-256");
	char sts[16 + 1 + 16 + 1 + SCOPE_MAX + 1 + 64 + 1];
	int n = snprintf(sts, sizeof(sts), "%s\n%s\n%s\n%s",
			 KURA_SIGV4_ALGORITHM, amz_date, scope, hex);
	if (n < 0 || (size_t)n >= sizeof(sts))
		return kura_fail(err, KURA_EINVAL, "string to sign too long");
	enum kura_err rc = kura_buf_add(out, sts, (size_t)n);
	if (rc != KURA_OK)
		return kura_fail(err, rc, "string to sign does not fit");
	return KURA_OK;
}

/* out = HMAC-SHA256(key, msg); out is a 32-byte secret. */
static bool hmac_into(const struct kura_secret *key, const char *msg,
		      struct kura_secret *out)
{
	return kura_hmac_sha256(key->data, key->len, msg, strlen(msg),
				out->data);
}

enum kura_err kura_sigv4_signing_key(const struct kura_secret *secret_key,
				     const char *date, const char *region,
				     const char *service,
				     struct kura_secret **out,
				     struct kura_error *err)
{
	if (secret_key == NULL || secret_key->len == 0 ||
	    secret_key->len > KURA_SECRET_MAX - 4 || out == NULL ||
	    !line_field_valid(date, 8) ||
	    !line_field_valid(region, REGION_MAX) ||
	    !line_field_valid(service, SERVICE_MAX))
		return kura_fail(err, KURA_EINVAL, "invalid signing key input");

	enum kura_err rc = KURA_OK;
	struct kura_secret *k = kura_secret_new(4 + secret_key->len);
	struct kura_secret *a = kura_secret_new(SHA256_LEN);
	struct kura_secret *b = kura_secret_new(SHA256_LEN);
	if (k == NULL || a == NULL || b == NULL) {
		rc = kura_fail(
			err, KURA_ENOMEM,
			"cannot allocate locked memory for the signing key");
		goto out;
	}
	memcpy(k->data, "AWS4", 4);
	memcpy(k->data + 4, secret_key->data, secret_key->len);
	if (!hmac_into(k, date, a) || !hmac_into(a, region, b) ||
	    !hmac_into(b, service, a) || !hmac_into(a, "aws4_request", b)) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "HMAC-SHA256");
		goto out;
	}
	*out = b;
	b = NULL;
out:
	kura_secret_free(k);
	kura_secret_free(a);
	kura_secret_free(b);
	return rc;
}

void kura_sigv4_hmac_hex(const struct kura_secret *signing_key, const void *msg,
			 size_t n, char out[65])
{
	unsigned char md[SHA256_LEN];
	/* On failure out is all zero bytes, which no hex signature equals. */
	memset(out, 0, 65);
	if (signing_key == NULL || signing_key->len == 0)
		return;
	if (!kura_hmac_sha256(signing_key->data, signing_key->len,
			      msg ? msg : "", n, md))
		return;
	kura_hex_encode(md, SHA256_LEN, out);
}

/* ---- headers the signature must cover ---- */

size_t kura_sigv4_unsigned_headers(const char *signed_headers,
				   const struct kura_sigv4_header *headers,
				   size_t nheaders, struct kura_buf *out)
{
	size_t count = 0;
	if (signed_headers == NULL || (headers == NULL && nheaders != 0))
		return 0;
	if (nheaders > REQUEST_HEADERS_MAX)
		nheaders = REQUEST_HEADERS_MAX;
	for (size_t i = 0; i < nheaders; i++) {
		struct kura_str name = headers[i].name;
		if (!must_be_signed(name) ||
		    signed_headers_has_ci(signed_headers, name.p, name.len))
			continue;
		/* A repeated header (in any spelling) is named once. */
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = caseeq(headers[j].name.p, headers[j].name.len,
				      name.p, name.len);
		if (seen)
			continue;
		/* A name that does not fit is left out of the list (a
		 * failure would empty it: buf.h); the count stays exact. */
		if (out != NULL &&
		    kura_buf_room(out) >= (count ? 2 : 0) + name.len) {
			bool ok = count == 0 ||
				  kura_buf_addstr(out, ", ") == KURA_OK;
			for (size_t k = 0; ok && k < name.len; k++)
				ok = kura_buf_addch(out, lower(name.p[k])) ==
				     KURA_OK;
		}
		count++;
	}
	return count;
}

/* ---- verification ---- */

static bool field_terminated(const char *f, size_t cap)
{
	return memchr(f, '\0', cap) != NULL;
}

enum kura_sigv4_result kura_sigv4_verify(const struct kura_sigv4 *auth,
					 const struct kura_sigv4_request *req,
					 const struct kura_secret *secret_key,
					 const char *expect_region, int64_t now,
					 uint64_t skew_secs,
					 struct kura_secret **signing_key_out,
					 struct kura_error *err)
{
	if (auth == NULL || req == NULL || secret_key == NULL ||
	    expect_region == NULL) {
		kura_fail(err, KURA_EINVAL, "verify called without its inputs");
		return KURA_SIGV4_MISMATCH;
	}
	if (!field_terminated(auth->access_key, sizeof(auth->access_key)) ||
	    !field_terminated(auth->date, sizeof(auth->date)) ||
	    !field_terminated(auth->region, sizeof(auth->region)) ||
	    !field_terminated(auth->service, sizeof(auth->service)) ||
	    !field_terminated(auth->amz_date, sizeof(auth->amz_date)) ||
	    !field_terminated(auth->signed_headers,
			      sizeof(auth->signed_headers)) ||
	    !field_terminated(auth->signature, sizeof(auth->signature)) ||
	    strlen(auth->signature) != 64 || strlen(auth->amz_date) != 16)
		return KURA_SIGV4_MALFORMED;

	/* The order of these checks is the contract in sigv4.h. */
	if (strcmp(auth->region, expect_region) != 0)
		return KURA_SIGV4_WRONG_REGION;
	if (strcmp(auth->service, "s3") != 0)
		return KURA_SIGV4_WRONG_SERVICE;
	if (strlen(auth->date) != 8 ||
	    memcmp(auth->date, auth->amz_date, 8) != 0)
		return KURA_SIGV4_BAD_DATE;
	if (!signed_headers_has(auth->signed_headers, "host"))
		return KURA_SIGV4_HOST_UNSIGNED;

	int64_t skew = skew_secs > (uint64_t)SKEW_CLAMP ? SKEW_CLAMP :
							  (int64_t)skew_secs;
	int64_t t = auth->request_time;
	if (t < -SKEW_CLAMP || t > SKEW_CLAMP)
		return KURA_SIGV4_MALFORMED;
	if (auth->presigned) {
		if (auth->expires < 1 || auth->expires > KURA_SIGV4_MAX_EXPIRES)
			return KURA_SIGV4_MALFORMED;
		if (now < t - skew)
			return KURA_SIGV4_NOT_YET_VALID;
		if (now > t + (int64_t)auth->expires)
			return KURA_SIGV4_EXPIRED;
	} else if (now < t - skew || now > t + skew) {
		return KURA_SIGV4_SKEWED;
	}

	enum kura_sigv4_result res = KURA_SIGV4_MISMATCH;
	struct kura_error local = { 0 };
	struct kura_secret *key = NULL;
	struct kura_buf creq, sts;
	kura_buf_init(&creq, CANONICAL_MAX);
	kura_buf_init(&sts, 512);

	enum kura_err rc = kura_sigv4_canonical_request(
		req->method, req->raw_path, req->raw_query, auth->presigned,
		req->headers, req->nheaders, auth->signed_headers,
		req->payload_hash, &creq, &local);
	if (rc != KURA_OK) {
		/* Unusable input is the client's fault; only a resource
		 * failure is reported through err. */
		if (rc == KURA_ENOMEM)
			kura_fail(err, rc, "%s", local.msg);
		else
			res = KURA_SIGV4_MALFORMED;
		goto out;
	}
	char scope[128];
	kura_sigv4_scope(auth, scope, sizeof(scope));
	struct kura_str cs = { creq.data, creq.len };
	if (kura_sigv4_string_to_sign(auth->amz_date, scope, cs, &sts, err) !=
	    KURA_OK)
		goto out;
	if (kura_sigv4_signing_key(secret_key, auth->date, auth->region,
				   auth->service, &key, err) != KURA_OK)
		goto out;
	char expect[65];
	kura_sigv4_hmac_hex(key, sts.data, sts.len, expect);
	if (expect[0] == '\0') {
		kura_fail(err, KURA_ECRYPTO, "HMAC-SHA256 failed");
		goto out;
	}
	if (!kura_ct_equal(expect, auth->signature, 64))
		goto out;
	if (kura_sigv4_unsigned_headers(auth->signed_headers, req->headers,
					req->nheaders, NULL) > 0) {
		res = KURA_SIGV4_HEADERS_UNSIGNED;
		goto out;
	}
	res = KURA_SIGV4_OK;
	if (signing_key_out) {
		*signing_key_out = key;
		key = NULL;
	}
out:
	kura_secret_free(key);
	kura_buf_release(&creq);
	kura_buf_release(&sts);
	return res;
}

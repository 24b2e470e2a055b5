/*
 * fuzz_s3_request.c — libFuzzer target for the whole S3 request handler
 * (src/s3) as the HTTP layer drives it: query-string parsing, path and
 * virtual-host addressing, bucket name and object key validation, routing,
 * and every operation's header and body parsing — conditional headers and
 * HTTP dates, Range, x-amz-copy-source and its range, Content-MD5 and
 * x-amz-checksum-*, x-amz-meta-* and x-amz-tagging, ACL headers, SSE and
 * SSE-C headers, list parameters and continuation tokens, aws-chunked
 * bodies with trailers, and the XML bodies (CompleteMultipartUpload,
 * DeleteObjects, Tagging, AccessControlPolicy, CreateBucketConfiguration,
 * ServerSideEncryptionConfiguration, VersioningConfiguration,
 * ObjectLockConfiguration, Retention, LegalHold), version ids and
 * version-id markers, If-None-Match/If-Match on writes and the
 * x-amz-object-lock-* headers.
 *
 * Input: an HTTP/1.1 request head without the version,
 *   METHOD SP TARGET LF (Name: value LF)* LF body
 * (a CR before LF is dropped).  Unless the input carries its own
 * Authorization header or a presigned query, the harness signs it with
 * SigV4 for the tenant's access key (signing host, x-amz-content-sha256 and
 * x-amz-date, adding each when absent; UNSIGNED-PAYLOAD by default), so
 * the fuzzer gets past authentication into the operations.  The body is
 * handed over the way libmicrohttpd does: only with a Content-Length or
 * Transfer-Encoding, at most Content-Length bytes, in two pieces; a body
 * shorter than Content-Length ends as an aborted connection.
 *
 * State: one service (SQLite, fs store, local keystore; audit off) in a
 * fresh directory under /tmp, removed at exit, with bucket "fuzz" holding
 * object "obj" (tagged, with user metadata).  After any request that may
 * change state the harness puts them back when they are gone.
 * Invariant checked: every request gets exactly one response with a valid
 * HTTP status; nothing leaks (ASan).  Streamed GET bodies are not drained
 * (the reader is private to the HTTP layer); their reader is released as
 * the HTTP layer releases it.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kura/auth.h"
#include "kura/buf.h"
#include "kura/config.h"
#include "kura/http.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/pool.h"
#include "kura/s3.h"
#include "kura/secret.h"
#include "kura/service.h"
#include "kura/sigv4.h"
#include "kura/timefmt.h"
#include "../tests/unit/rmtree.h"
#include "kura/banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ACCESS_KEY "AKIAIOSFODNN7EXAMPLE"
#define SECRET_KEY "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define MAX_HEADERS 96 /* input headers; the HTTP layer allows 256 */

static char dir[64];
static struct kura_config *cfg;
static struct kura_service *svc;
static struct kura_http_handler handler;
static struct kura_secret *secret;

static void teardown(void)
{
	if (svc != NULL)
		kura_service_close(svc);
	svc = NULL;
	kura_config_free(cfg);
	cfg = NULL;
	kura_secret_free(secret);
	secret = NULL;
	if (dir[0] != '\0')
		rmtree(dir);
}

static void die(const char *what, const struct kura_error *err)
{
	fprintf(stderr, "fuzz_s3_request: %s: %s\n", what, err ? err->msg : "");
	abort();
}

/* Append a header copied into pool. */
static void add_header(struct kura_http_req *h, const char *name,
		       const char *value)
{
	struct kura_http_header *x = &h->headers[h->nheaders++];
	x->name = kura_str_from(kura_pstrdup(h->pool, name));
	x->value = kura_str_from(kura_pstrdup(h->pool, value));
	h->header_bytes += x->name.len + x->value.len;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a;b;c": every header name of h, lower-cased, sorted, once — the server
 * refuses x-amz-* headers left out of SignedHeaders, so the harness signs
 * them all to reach what lies behind authentication. */
static const char *signed_names(struct kura_http_req *h)
{
	char **names = kura_palloc(h->pool, (h->nheaders + 1) * sizeof(*names));
	size_t n = 0;
	if (names == NULL)
		return "host;x-amz-content-sha256;x-amz-date";
	for (size_t i = 0; i < h->nheaders; i++) {
		struct kura_str nm = h->headers[i].name;
		char *lc = kura_pstrndup(h->pool, nm.p, nm.len);
		if (lc == NULL || nm.len == 0 ||
		    memchr(nm.p, ';', nm.len) != NULL)
			continue;
		for (char *c = lc; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		if (strcmp(lc, "authorization") != 0)
			names[n++] = lc;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	struct kura_buf b;
	const char *out = "host;x-amz-content-sha256;x-amz-date";
	kura_buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		if ((b.len > 0 && kura_buf_addch(&b, ';') != KURA_OK) ||
		    kura_buf_addstr(&b, names[i]) != KURA_OK)
			break;
	}
	char *joined = b.len > 0 ? kura_pstrndup(h->pool, b.data, b.len) : NULL;
	if (joined != NULL)
		out = joined;
	kura_buf_release(&b);
	return out;
}

/* Sign h with SigV4 (header form) for ACCESS_KEY at the current time. */
static void sign(struct kura_http_req *h)
{
	char amz[KURA_TIME_AMZ_LEN];
	kura_time_amz(kura_now_ms(), amz);
	if (kura_http_header_get(h, "host") == NULL)
		add_header(h, "Host", "127.0.0.1:9000");
	if (kura_http_header_get(h, "x-amz-content-sha256") == NULL)
		add_header(h, "x-amz-content-sha256",
			   KURA_SIGV4_UNSIGNED_PAYLOAD);
	if (kura_http_header_get(h, "x-amz-date") == NULL)
		add_header(h, "x-amz-date", amz);
	const struct kura_str *date = kura_http_header_get(h, "x-amz-date");
	const struct kura_str *psha =
		kura_http_header_get(h, "x-amz-content-sha256");
	/* The signature's date must be the one the server reads; a fuzzed
	 * x-amz-date that is not a date leaves the request unsigned. */
	if (date->len != 16)
		return;
	char amz_date[17], day[9], scope[64];
	memcpy(amz_date, date->p, 16);
	amz_date[16] = '\0';
	memcpy(day, amz_date, 8);
	day[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/us-east-1/s3/aws4_request", day);

	struct kura_sigv4_header *sh =
		kura_palloc(h->pool, (h->nheaders + 1) * sizeof(*sh));
	for (size_t i = 0; i < h->nheaders; i++) {
		sh[i].name = h->headers[i].name;
		sh[i].value = h->headers[i].value;
	}
	struct kura_buf creq, sts;
	struct kura_error err = { 0 };
	struct kura_secret *key = NULL;
	const char *names = signed_names(h);
	kura_buf_init(&creq, 1 << 20);
	kura_buf_init(&sts, 4096);
	if (kura_sigv4_canonical_request(
		    kura_str_from(h->method), h->path, h->query, false, sh,
		    h->nheaders, names, *psha, &creq, &err) == KURA_OK &&
	    kura_sigv4_string_to_sign(amz_date, scope,
				      (struct kura_str){ creq.data, creq.len },
				      &sts, &err) == KURA_OK &&
	    kura_sigv4_signing_key(secret, day, "us-east-1", "s3", &key,
				   &err) == KURA_OK) {
		char sig[65];
		kura_sigv4_hmac_hex(key, sts.data, sts.len, sig);
		char *authz = kura_psprintf(
			h->pool,
			"AWS4-HMAC-SHA256 Credential=" ACCESS_KEY "/%s, "
			"SignedHeaders=%s, Signature=%s",
			scope, names, sig);
		add_header(h, "Authorization", authz);
	}
	kura_secret_free(key);
	kura_buf_release(&creq);
	kura_buf_release(&sts);
}

/* Parse the input, drive the handler as the HTTP layer does, return the
 * response status (0: input not a request). */
static unsigned run(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct kura_pool *pool = kura_pool_new(8192);
	if (pool == NULL)
		abort();
	struct kura_http_req *h = kura_palloc(pool, sizeof(*h));
	memset(h, 0, sizeof(*h));
	h->pool = pool;
	memcpy(h->id, "FUZZ000000000000", KURA_REQUEST_ID_LEN + 1);
	h->start_ms = kura_now_ms();
	h->start_ns = kura_mono_ns();
	memcpy(h->remote, "127.0.0.1", 10);
	h->headers = kura_palloc(pool, (MAX_HEADERS + 4) * sizeof(*h->headers));

	/* The head: lines up to an empty line; NUL cannot occur in it. */
	const char *body = end;
	size_t nlines = 0;
	unsigned status = 0;
	bool own_auth = false;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (memchr(p, '\0', n) != NULL)
			goto out;
		if (nlines++ == 0) {
			const char *sp = memchr(p, ' ', n);
			if (sp == NULL || sp == p || (size_t)(sp - p) + 1 >= n)
				goto out;
			h->method = kura_pstrndup(pool, p, (size_t)(sp - p));
			size_t tl = n - (size_t)(sp - p) - 1;
			char *t = kura_pstrndup(pool, sp + 1, tl);
			h->target = (struct kura_str){ t, tl };
			const char *q = memchr(t, '?', tl);
			h->path = (struct kura_str){ t,
						     q ? (size_t)(q - t) : tl };
			h->query =
				q ? (struct kura_str){ q + 1,
						       tl - h->path.len - 1 } :
				    (struct kura_str){ "", 0 };
		} else if (n == 0) {
			body = nl ? nl + 1 : end;
			break;
		} else {
			const char *colon = memchr(p, ':', n);
			if (colon == NULL || colon == p)
				goto out;
			if (h->nheaders == MAX_HEADERS)
				goto out;
			size_t kl = (size_t)(colon - p), vs = kl + 1;
			while (vs < n && (p[vs] == ' ' || p[vs] == '\t'))
				vs++;
			size_t ve = n;
			while (ve > vs &&
			       (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
				ve--;
			struct kura_http_header *x = &h->headers[h->nheaders++];
			x->name = (struct kura_str){ kura_pstrndup(pool, p, kl),
						     kl };
			x->value = (struct kura_str){
				kura_pstrndup(pool, p + vs, ve - vs), ve - vs
			};
			h->header_bytes += kl + (ve - vs);
			if (strcasecmp(x->name.p, "authorization") == 0)
				own_auth = true;
		}
		p = nl ? nl + 1 : end;
	}
	if (h->method == NULL)
		goto out;
	if (!own_auth && !kura_sigv4_query_is_presigned(h->query))
		sign(h);

	/* The body as libmicrohttpd would deliver it. */
	size_t blen = (size_t)(end - body);
	bool complete = true;
	const struct kura_str *te =
		kura_http_header_get(h, "Transfer-Encoding");
	const struct kura_str *cl = kura_http_header_get(h, "Content-Length");
	uint64_t want = 0;
	if (te == NULL) {
		if (cl == NULL || kura_parse_u64(cl->p, cl->len, UINT64_MAX,
						 &want) != KURA_OK)
			want = 0;
		if (want < blen)
			blen = (size_t)want;
		else if (want > blen)
			complete = false;
	}
	h->has_body = te != NULL || want > 0;

	handler.begin(handler.ctx, h);
	bool early = kura_http_resp_ready(h);
	if (h->has_body && !early) {
		size_t half = blen / 2;
		const uint8_t *b = (const uint8_t *)body;
		if (half > 0) {
			h->bytes_in += half;
			handler.body(handler.ctx, h, b, half);
		}
		if (blen - half > 0 && !kura_http_resp_ready(h)) {
			h->bytes_in += blen - half;
			handler.body(handler.ctx, h, b + half, blen - half);
		}
	}
	if (!complete && !early) {
		handler.done(handler.ctx, h, false);
	} else {
		if (!kura_http_resp_ready(h))
			handler.end(handler.ctx, h);
		if (!kura_http_resp_ready(h))
			abort(); /* the HTTP layer would answer 500 */
		handler.before_send(handler.ctx, h);
		status = kura_http_resp_status(h);
		if (status < 100 || status > 599)
			abort();
		handler.done(handler.ctx, h, true);
	}
	/* As the HTTP layer's completion does: release a streamed body's
	 * reader (responding again clears it). */
	if (h->resp != NULL)
		(void)kura_http_respond(h, 500);
out:
	kura_pool_free(pool);
	return status;
}

static unsigned run_str(const char *s)
{
	return run((const uint8_t *)s, strlen(s));
}

/* Make sure bucket "fuzz" and object "obj" exist. */
static void restore(void)
{
	if (run_str("HEAD /fuzz/obj\n\n") == 200)
		return;
	(void)run_str("PUT /fuzz\n\n");
	if (run_str("PUT /fuzz/obj?\n"
		    "Content-Length: 11\n"
		    "Content-Type: text/plain\n"
		    "x-amz-meta-color: blue\n"
		    "x-amz-tagging: a=1&b=two\n"
		    "\n"
		    "hello world") != 200)
		die("restoring the seed object", NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct kura_error err = { 0 };
	/* Rejections are logged per request; only FUZZ_S3_DEBUG shows them
	 * (with each response status). */
	kura_log_threshold = KURA_LOG_ERROR;
	if (getenv("FUZZ_S3_DEBUG") == NULL) {
		int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null_fd >= 0)
			kura_log_set_fd(null_fd);
	}
	snprintf(dir, sizeof(dir), "/tmp/kura-fuzz-s3-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		die("mkdtemp", NULL);
	}
	atexit(teardown);
	if (kura_config_new(&cfg, &err) != KURA_OK ||
	    kura_config_set(cfg, "server", "data_dir", dir, &err) != KURA_OK ||
	    kura_config_set(cfg, "audit", "enabled", "false", &err) !=
		    KURA_OK ||
	    kura_config_set(cfg, "storage", "segment_size", "4K", &err) !=
		    KURA_OK ||
	    kura_config_set(cfg, "limits", "max_object_size", "1M", &err) !=
		    KURA_OK)
		die("config", &err);
	if (kura_service_open(cfg, KURA_SERVICE_INIT | KURA_SERVICE_OWNER, &svc,
			      &err) != KURA_OK)
		die("service open", &err);
	kura_s3_handler_init(&handler, svc);
	struct kura_tenant t;
	char id[KURA_ACCESS_KEY_LEN + 1], sec[KURA_SECRET_KEY_LEN + 1];
	if (kura_auth_create_tenant(svc->meta, svc->system_key, "fuzz", &t, id,
				    sec, &err) != KURA_OK ||
	    kura_auth_add_key(svc->meta, svc->system_key, t.id, ACCESS_KEY,
			      SECRET_KEY, &err) != KURA_OK)
		die("tenant", &err);
	kura_wipe(sec, sizeof(sec));
	secret = kura_secret_from(SECRET_KEY, strlen(SECRET_KEY));
	if (secret == NULL)
		die("secret", NULL);
	restore();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned st = run(data, size);
	if (getenv("FUZZ_S3_DEBUG"))
		fprintf(stderr, "status %u\n", st);
	if (size >= 4 &&
	    (memcmp(data, "GET ", 4) == 0 || memcmp(data, "HEAD", 4) == 0))
		return 0;
	restore();
	return 0;
}

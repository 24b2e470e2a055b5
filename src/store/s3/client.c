/*
 * client.c — the remote store's HTTP client on libcurl: one request at a
 * time per calling thread, signed, bounded, retried.
 *
 * Connection reuse: a small pool of easy handles.  A handle keeps its
 * connection open after a request (curl_easy_reset keeps the connection
 * cache), so the next request taken from the pool by any thread skips TCP
 * and TLS set-up.  A share object adds the DNS cache and TLS session
 * tickets across handles; connections themselves are not shared (libcurl
 * does not support one connection cache used by concurrent threads).
 *
 * TLS: peer and host name are always verified (libcurl's defaults, set
 * again explicitly); ca_file replaces the system's CA bundle.  Only http
 * and https are allowed, redirects are never followed (a redirect would
 * take the signed request elsewhere).
 *
 * Limits: a GET body must fit the caller's buffer exactly; any other body
 * is kept up to S3_XML_MAX bytes and a longer one fails the request; an
 * ETag header longer than S3_ETAG_MAX is dropped (the caller then finds
 * none).
 *
 * Retries: see rs3_client_do (s3_int.h).  Each try is signed anew (the date
 * moves on).
 *
 * Threading: the pool and the share object have their own mutexes; a
 * handle is used by one thread between take and give back.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "kura/buf.h"
#include "kura/encode.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define POOL_MAX 16
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MAX 10

struct rs3_client {
	const struct rs3_conf *conf;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *idle[POOL_MAX];
	size_t nidle;
};

/* What one try collects from libcurl's callbacks. */
struct try_ctx {
	CURL *h;
	const struct rs3_req *req;
	struct rs3_resp *resp;
	bool overflow; /* a body broke its limit: not worth retrying */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
		       void *ctx)
{
	struct rs3_client *c = ctx;
	(void)h;
	(void)access;
	if (data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
	struct rs3_client *c = ctx;
	(void)h;
	if (data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_lock[data]);
}

enum kura_err rs3_client_new(const struct rs3_conf *conf,
			     struct rs3_client **out, struct kura_error *err)
{
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return kura_fail(err, KURA_EIO, "libcurl: %s",
				 curl_easy_strerror(global_rc));
	struct rs3_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return kura_fail(err, KURA_ENOMEM, "S3 client");
	c->conf = conf;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_lock[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	c->share = curl_share_init();
	if (c->share == NULL) {
		rs3_client_free(c);
		return kura_fail(err, KURA_ENOMEM, "libcurl share");
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	*out = c;
	return KURA_OK;
}

void rs3_client_free(struct rs3_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nidle; i++)
		curl_easy_cleanup(c->idle[i]);
	if (c->share != NULL)
		curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_lock[i]);
	pthread_mutex_destroy(&c->pool_lock);
	free(c);
}

const struct rs3_conf *rs3_client_conf(const struct rs3_client *c)
{
	return c->conf;
}

void rs3_resp_release(struct rs3_resp *resp)
{
	free(resp->xml);
	memset(resp, 0, sizeof(*resp));
}

static CURL *handle_take(struct rs3_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->pool_lock);
	if (c->nidle > 0)
		h = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->pool_lock);
	return h != NULL ? h : curl_easy_init();
}

/* Back to the pool with its open connection, unless the pool is full or
 * the handle's last try failed on the connection (then it is dropped:
 * whatever state it is in, a fresh one is cheaper than a doubt). */
static void handle_give(struct rs3_client *c, CURL *h, bool healthy)
{
	if (h == NULL)
		return;
	if (healthy) {
		pthread_mutex_lock(&c->pool_lock);
		if (c->nidle < POOL_MAX) {
			c->idle[c->nidle++] = h;
			h = NULL;
		}
		pthread_mutex_unlock(&c->pool_lock);
	}
	if (h != NULL)
		curl_easy_cleanup(h);
}

/* ---- callbacks ---- */

static bool status_is_2xx(long status)
{
	return status >= 200 && status < 300;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *data)
{
	struct try_ctx *t = data;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
	struct rs3_resp *r = t->resp;
	if (t->req->out != NULL && status_is_2xx(status)) {
		if (n > t->req->out_cap - r->out_len) {
			t->overflow = true;
			return 0;
		}
		memcpy((char *)t->req->out + r->out_len, p, n);
		r->out_len += n;
		return n;
	}
	if (r->xml == NULL && (r->xml = malloc(S3_XML_MAX + 1)) == NULL)
		return 0;
	if (n > S3_XML_MAX - r->xml_len) {
		t->overflow = true;
		return 0;
	}
	memcpy(r->xml + r->xml_len, p, n);
	r->xml_len += n;
	r->xml[r->xml_len] = '\0';
	return n;
}

/* value of "Name: value\r\n" when line is that header, trimmed. */
static bool header_value(const char *line, size_t n, const char *name,
			 const char **v, size_t *vlen)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	const char *s = line + k + 1, *e = line + n;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' ||
			 e[-1] == '\t'))
		e--;
	*v = s;
	*vlen = (size_t)(e - s);
	return true;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *data)
{
	struct try_ctx *t = data;
	size_t n = size * nmemb;
	struct rs3_resp *r = t->resp;
	const char *v;
	size_t vlen;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue): forget the last. */
		r->etag[0] = '\0';
		r->have_length = false;
	} else if (header_value(p, n, "ETag", &v, &vlen)) {
		if (vlen < sizeof(r->etag)) {
			memcpy(r->etag, v, vlen);
			r->etag[vlen] = '\0';
		}
	} else if (header_value(p, n, "Content-Length", &v, &vlen)) {
		uint64_t len = 0;
		bool ok = vlen > 0 && vlen <= 19;
		for (size_t i = 0; ok && i < vlen; i++) {
			ok = v[i] >= '0' && v[i] <= '9';
			len = len * 10 + (uint64_t)(v[i] - '0');
		}
		r->have_length = ok;
		r->content_length = ok ? len : 0;
	}
	return n;
}

/* ---- one try ---- */

/* "/bucket" or "/bucket/<encoded key>". */
static enum kura_err request_path(const struct rs3_conf *conf, const char *key,
				  struct kura_buf *path, struct kura_error *err)
{
	enum kura_err rc = kura_buf_addch(path, '/');
	if (rc == KURA_OK)
		rc = kura_buf_addstr(path, conf->bucket);
	if (rc == KURA_OK && key != NULL)
		rc = kura_buf_addch(path, '/');
	if (rc == KURA_OK && key != NULL)
		rc = kura_uri_encode(key, strlen(key), true, path);
	if (rc != KURA_OK)
		return kura_fail(err, rc, "[%s] request path too long",
				 conf->section);
	return KURA_OK;
}

/* Append line to *list; false when out of memory. */
static bool add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);
	if (l == NULL)
		return false;
	*list = l;
	return true;
}

/* The Authorization line holds the signature: wipe every line's copy. */
static void headers_free(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l != NULL; l = l->next)
		kura_wipe(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static struct curl_slist *build_headers(const struct rs3_conf *conf,
					const struct rs3_req *req,
					const struct rs3_signed *sig)
{
	char line[S3_HOST_MAX + 128];
	struct curl_slist *list = NULL;
	bool ok = true;
	snprintf(line, sizeof(line), "Host: %s", conf->host);
	ok = ok && add_header(&list, line);
	snprintf(line, sizeof(line), "x-amz-date: %s", sig->amz_date);
	ok = ok && add_header(&list, line);
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s",
		 sig->payload_hash);
	ok = ok && add_header(&list, line);
	ok = ok && add_header(&list, sig->authorization);
	if (req->range != NULL) {
		snprintf(line, sizeof(line), "Range: %s", req->range);
		ok = ok && add_header(&list, line);
	}
	/* No "Expect: 100-continue" round trip, no form content type. */
	ok = ok && add_header(&list, "Expect:");
	ok = ok && add_header(&list, "Content-Type:");
	if (!ok) {
		headers_free(list);
		return NULL;
	}
	return list;
}

static void set_method(CURL *h, const struct rs3_req *req)
{
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "PUT") == 0 ||
		   strcmp(req->method, "POST") == 0) {
		/* The whole body is in memory: curl sends it from there. */
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
				 req->body_len ? req->body : "");
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
}

static void set_transport(CURL *h, const struct rs3_client *c)
{
	const struct rs3_conf *conf = c->conf;
	long connect = conf->timeout_s < CONNECT_TIMEOUT_MAX ?
			       conf->timeout_s :
			       CONNECT_TIMEOUT_MAX;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, conf->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	/* Straight to the endpoint configured: never through a proxy the
	 * environment names. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (conf->ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, conf->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
}

/* Failures no retry can mend: the remote's certificate or the setup. */
static bool curl_permanent(CURLcode cc)
{
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_OUT_OF_MEMORY:
		return true;
	default:
		return false;
	}
}

enum try_result {
	TRY_ANSWER,
	TRY_RETRY,
	TRY_FAIL
};

/* One signed try.  TRY_ANSWER: resp holds an answer; TRY_RETRY: the
 * connection failed (err says how); TRY_FAIL: give up (err says why). */
static enum try_result try_once(struct rs3_client *c, CURL *h,
				const struct rs3_req *req, const char *url,
				const char *path, struct rs3_resp *resp,
				struct kura_error *err)
{
	const struct rs3_conf *conf = c->conf;
	struct rs3_signed sig;
	const char *query = req->query != NULL ? req->query : "";
	if (rs3_sign(conf, req->method, path, query, req->range, req->body,
		     req->body_len, kura_now_ms(), &sig, err) != KURA_OK)
		return TRY_FAIL;
	struct curl_slist *headers = build_headers(conf, req, &sig);
	rs3_signed_wipe(&sig);
	if (headers == NULL) {
		kura_fail(err, KURA_ENOMEM, "request headers");
		return TRY_FAIL;
	}
	rs3_resp_release(resp);
	struct try_ctx t = { h, req, resp, false };
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_reset(h);
	set_transport(h, c);
	set_method(h, req);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
	CURLcode cc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	headers_free(headers);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		return TRY_ANSWER;
	}
	if (t.overflow) {
		kura_fail(err, KURA_EIO,
			  "[%s] %s '%s': the answer is longer than expected",
			  conf->section, req->method,
			  req->key ? req->key : conf->bucket);
		return TRY_FAIL;
	}
	kura_fail(err, KURA_EIO, "[%s] %s %s: %s", conf->section, req->method,
		  conf->base_url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
	return curl_permanent(cc) ? TRY_FAIL : TRY_RETRY;
}

static bool status_retryable(long status)
{
	return status >= 500 || status == 429;
}

/* Sleep before try number `attempt` (1-based): 100 ms doubling, capped,
 * with jitter so that many writers do not come back in step. */
static void backoff(unsigned attempt)
{
	uint64_t ms = BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	uint8_t r = 0;
	struct kura_error ignored = { 0 };
	if (kura_random_bytes(&r, 1, &ignored) == KURA_OK)
		ms = ms / 2 + (ms / 2) * r / 255;
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

enum kura_err rs3_client_do(struct rs3_client *c, const struct rs3_req *req,
			    struct rs3_resp *resp, struct kura_error *err)
{
	const struct rs3_conf *conf = c->conf;
	struct kura_buf path, url;
	kura_buf_init(&path, S3_PATH_MAX);
	kura_buf_init(&url, sizeof(conf->base_url) + S3_PATH_MAX +
				    S3_UPLOAD_ID_MAX * 3 + 64);
	enum kura_err rc = request_path(conf, req->key, &path, err);
	if (rc == KURA_OK &&
	    kura_buf_addf(&url, "%s%s%s%s", conf->base_url, path.data,
			  req->query && req->query[0] ? "?" : "",
			  req->query ? req->query : "") != KURA_OK)
		rc = kura_fail(err, KURA_EINVAL, "[%s] URL too long",
			       conf->section);
	CURL *h = rc == KURA_OK ? handle_take(c) : NULL;
	if (rc == KURA_OK && h == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "libcurl handle");
	bool healthy = true;
	for (unsigned attempt = 0; rc == KURA_OK; attempt++) {
		struct kura_error try_err = { 0 };
		enum try_result tr = try_once(c, h, req, url.data, path.data,
					      resp, &try_err);
		healthy = tr == TRY_ANSWER;
		bool again =
			(tr == TRY_RETRY || (tr == TRY_ANSWER &&
					     status_retryable(resp->status))) &&
			!req->no_retry && attempt < conf->retries;
		if (!again) {
			if (tr != TRY_ANSWER)
				rc = kura_fail(err, try_err.code, "%s%s",
					       try_err.msg,
					       tr == TRY_RETRY ? " (retries "
								 "exhausted)" :
								 "");
			break;
		}
		backoff(attempt + 1);
	}
	handle_give(c, h, healthy);
	kura_buf_release(&path);
	kura_buf_release(&url);
	return rc;
}

enum kura_err rs3_client_fail(const struct rs3_client *c, const char *what,
			      const struct rs3_resp *resp,
			      struct kura_error *err)
{
	struct rs3_answer f;
	struct kura_error ignored = { 0 };
	memset(&f, 0, sizeof(f));
	if (resp->xml_len > 0)
		KURA_IGNORE(rs3_answer_parse(resp->xml, resp->xml_len, &f,
					     &ignored)); /* best effort */
	enum kura_err code = resp->status == 403 ? KURA_EAUTH : KURA_EIO;
	const char *hint = resp->status == 403 && f.code[0] == '\0' ?
				   " (check access_key_id and "
				   "secret_key_file)" :
				   "";
	return kura_fail(err, code, "[%s] %s: HTTP %ld%s%.64s%s%.120s%s",
			 c->conf->section, what, resp->status,
			 f.code[0] ? " " : "", f.code, f.message[0] ? ": " : "",
			 f.message, hint);
}

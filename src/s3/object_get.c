/*
 * object_get.c — GetObject and HeadObject: conditional requests, ranges,
 * response-* overrides, and the streaming decryptor that feeds the response.
 *
 * The stream decrypts only the segments the requested range covers, one at a
 * time, and releases a segment's plaintext only after its tag verified.  The
 * first segment is decrypted before the status line is sent, so a damaged or
 * unreadable object answers with an error status instead of a truncated 200
 * whenever the damage is in the first segment read; damage found later
 * aborts the connection (the client sees a short body, never wrong bytes).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kura/encode.h"
#include "kura/parse.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

/* The body of a GET, streamed after the request's handler returned: it
 * keeps its own copy of what a failure report needs. */
struct get_stream {
	struct s3_objread * or ;
	uint64_t first; /* object offset of body byte 0 */
	struct kura_service *svc;
	const struct kura_object *obj;
	char reqid[KURA_REQUEST_ID_LEN + 1];
	uint64_t tenant_id;
	char access_key[KURA_ACCESS_KEY_ID_MAX];
	char source[64];
	char bucket[KURA_BUCKET_NAME_MAX];
	char *key;
};

static void stream_free(void *cls)
{
	struct get_stream *gs = cls;
	s3_objread_free(gs->or);
	free(gs->key);
	free(gs);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct get_stream *gs = cls;
	struct kura_error err = { 0 };
	size_t got = 0;
	enum kura_err rc =
		s3_objread_read(gs->or, gs->first + pos, buf, max, &got, &err);
	if (rc == KURA_OK)
		return (ssize_t)got;
	kura_error(gs->reqid, "GET aborted mid-body: %s", err.msg);
	if (rc == KURA_EINTEGRITY || rc == KURA_ENOENT) {
		struct s3_who who = { gs->reqid, gs->tenant_id,
				      gs->access_key[0] ? gs->access_key : NULL,
				      gs->source[0] ? gs->source : NULL };
		s3_integrity_report(gs->svc, &who, gs->bucket, gs->key,
				    gs->key ? gs->obj->key_len : 0,
				    gs->obj->version_uid, err.msg);
	}
	return -1;
}

/* A stream for reading o (the request's pool must outlive it: the http
 * layer frees the stream before the pool). */
static struct get_stream *
stream_new(struct s3_req *r, const struct kura_object *o, uint64_t first)
{
	struct get_stream *gs = calloc(1, sizeof(*gs));
	if (gs == NULL)
		return NULL;
	gs->first = first;
	gs->svc = r->svc;
	gs->obj = o;
	gs->tenant_id = r->tenant_id;
	memcpy(gs->reqid, r->http->id, sizeof(gs->reqid));
	snprintf(gs->access_key, sizeof(gs->access_key), "%s", r->access_key);
	snprintf(gs->source, sizeof(gs->source), "%s", r->http->remote);
	snprintf(gs->bucket, sizeof(gs->bucket), "%s", r->bucket.name);
	gs->key = malloc(o->key_len + 1);
	if (gs->key != NULL) {
		memcpy(gs->key, o->key, o->key_len);
		gs->key[o->key_len] = '\0';
	}
	if (s3_objread_new(r->svc, &r->bucket, o, r->sse.customer_key, &r->seal,
			   &gs->or, NULL) != KURA_OK) {
		stream_free(gs);
		return NULL;
	}
	return gs;
}

/* ---- conditional requests (RFC 9110 §13.2.2 order, as S3) ---- */

static bool etag_listed(struct kura_str list, const char *etag)
{
	size_t i = 0;
	while (i < list.len) {
		size_t j = i;
		while (j < list.len && list.p[j] != ',')
			j++;
		size_t a = i, b = j;
		while (a < b && (list.p[a] == ' ' || list.p[a] == '\t'))
			a++;
		while (b > a && (list.p[b - 1] == ' ' || list.p[b - 1] == '\t'))
			b--;
		if (b - a >= 2 && list.p[a] == 'W' && list.p[a + 1] == '/')
			a += 2;
		if (b - a == 1 && list.p[a] == '*')
			return true;
		if (b - a >= 2 && list.p[a] == '"' && list.p[b - 1] == '"') {
			a++;
			b--;
		}
		if (b - a == strlen(etag) &&
		    memcmp(list.p + a, etag, b - a) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

static bool date_header(struct s3_req *r, const char *name, int64_t *secs)
{
	const struct kura_str *v = s3_header(r, name);
	return v && kura_time_parse_http(v->p, v->len, secs) == KURA_OK;
}

unsigned s3_conditions(struct s3_req *r, const struct kura_object *o,
		       const char *if_match, const char *if_none_match,
		       const char *if_modified_since,
		       const char *if_unmodified_since)
{
	int64_t mtime = o->mtime_ms / 1000, d;
	const struct kura_str *im = s3_header(r, if_match);
	const struct kura_str *inm = s3_header(r, if_none_match);
	if (im != NULL) {
		if (!etag_listed(*im, o->etag))
			return 412;
	} else if (date_header(r, if_unmodified_since, &d) && mtime > d) {
		return 412;
	}
	if (inm != NULL) {
		if (etag_listed(*inm, o->etag))
			return 304;
	} else if (date_header(r, if_modified_since, &d) && mtime <= d) {
		return 304;
	}
	return 0;
}

/* ---- response headers ---- */

static enum kura_err add_header(struct s3_req *r, const char *name,
				const char *override_param, const char *stored)
{
	const struct s3_param *p = override_param && r->op == S3_OP_GetObject ?
					   s3_param_get(r, override_param) :
					   NULL;
	const char *v = p ? p->value : stored;
	if (v == NULL)
		return KURA_OK;
	return kura_http_resp_header(r->http, name, v);
}

static enum kura_err object_headers(struct s3_req *r,
				    const struct kura_object *o)
{
	char lm[KURA_TIME_HTTP_LEN], etag[KURA_ETAG_MAX + 2];
	kura_time_http(o->mtime_ms, lm);
	snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
	enum kura_err rc = kura_http_resp_header(r->http, "Last-Modified", lm);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "ETag", etag);
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Type", "response-content-type",
				o->content_type ? o->content_type :
						  "binary/octet-stream");
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Encoding",
				"response-content-encoding",
				o->content_encoding);
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Language",
				"response-content-language",
				o->content_language);
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Disposition",
				"response-content-disposition",
				o->content_disposition);
	if (rc == KURA_OK)
		rc = add_header(r, "Cache-Control", "response-cache-control",
				o->cache_control);
	if (rc == KURA_OK)
		rc = add_header(r, "Expires", "response-expires", o->expires);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "Accept-Ranges", "bytes");
	if (rc == KURA_OK) {
		s3_sse_respond_headers(r, &r->sse);
		s3_version_headers(r, o);
		s3_lock_headers(r, o);
		/* Expiration acts on current versions: a version asked for
		 * by id may be a noncurrent one. */
		if (s3_param_get(r, "versionId") == NULL)
			s3_expiration_header(r, o);
	}
	if (rc == KURA_OK && o->tags_json != NULL) {
		json_t *tags = json_loads(o->tags_json, 0, NULL);
		char count[16];
		snprintf(count, sizeof(count), "%zu", json_object_size(tags));
		json_decref(tags);
		rc = kura_http_resp_header(r->http, "x-amz-tagging-count",
					   count);
	}
	if (rc != KURA_OK || o->user_meta_json == NULL)
		return rc;
	json_t *meta = json_loads(o->user_meta_json, 0, NULL);
	const char *k;
	json_t *v;
	char name[300];
	json_object_foreach(meta, k, v)
	{
		if (!json_is_string(v) || rc != KURA_OK)
			continue;
		snprintf(name, sizeof(name), "x-amz-meta-%s", k);
		const char *hv = s3_meta_header_value(r, json_string_value(v));
		rc = hv != NULL ? kura_http_resp_header(r->http, name, hv) :
				  KURA_ENOMEM;
	}
	json_decref(meta);
	return rc;
}

static bool check_overrides(struct s3_req *r)
{
	static const char *const names[] = {
		"response-content-type",
		"response-content-encoding",
		"response-content-language",
		"response-content-disposition",
		"response-cache-control",
		"response-expires",
		NULL,
	};
	for (size_t i = 0; names[i]; i++) {
		const struct s3_param *p = s3_param_get(r, names[i]);
		if (p == NULL)
			continue;
		if (r->op != S3_OP_GetObject) {
			s3_error(
				r, S3_InvalidRequest,
				"Response header overrides are only valid for GET.",
				NULL);
			return false;
		}
		for (size_t k = 0; k < p->value_len; k++)
			if ((unsigned char)p->value[k] < 0x20) {
				s3_error(r, S3_InvalidArgument, NULL,
					 "control character in override");
				return false;
			}
	}
	return true;
}

/* 416 InvalidPartNumber for part n of an object of count parts, with the
 * two counts AWS adds to it. */
static void part_beyond(struct s3_req *r, uint64_t count, uint64_t n)
{
	char actual[24], requested[24];
	snprintf(actual, sizeof(actual), "%llu", (unsigned long long)count);
	snprintf(requested, sizeof(requested), "%llu", (unsigned long long)n);
	const struct s3_error_field f[] = {
		{ "ActualPartCount", actual },
		{ "PartNumberRequested", requested },
	};
	s3_error_fields(r, S3_InvalidPartNumber, NULL, NULL, f, 2);
}

/* GET/HEAD ?partNumber=N: the N-th part (in object order) of a multipart
 * object, as a range; partNumber=1 of a simple object is the whole object. */
static bool select_part(struct s3_req *r, const struct kura_object *o,
			const struct s3_param *pn, bool has_range,
			uint64_t *first, uint64_t *last, unsigned *status,
			unsigned *parts_count, bool *empty)
{
	uint64_t n;
	if (has_range) {
		s3_error(
			r, S3_InvalidRequest,
			"Cannot specify both Range header and partNumber query parameter",
			NULL);
		return false;
	}
	if (kura_parse_u64(pn->value, pn->value_len, KURA_MAX_PARTS, &n) !=
		    KURA_OK ||
	    n == 0) {
		s3_error(
			r, S3_InvalidArgument,
			"Part number must be an integer between 1 and 10000, inclusive",
			NULL);
		return false;
	}
	bool multipart = strchr(o->etag, '-') != NULL;
	uint64_t count = multipart ? o->part_count : 1;
	if (n > count) {
		part_beyond(r, count, n);
		return false;
	}
	if (!multipart) {
		/* The one part is the whole object, served as a range (206
		 * and Content-Range), as AWS; an empty object has no range. */
		if (o->size > 0) {
			*first = 0;
			*last = o->size - 1;
			*status = 206;
		}
		return true;
	}
	uint64_t start = 0;
	for (uint64_t i = 0; i + 1 < n; i++)
		start += o->parts[i].size;
	*parts_count = o->part_count;
	/* An empty part (an empty object, or an empty last part) has no byte
	 * range to name: 200 and no body, read from offset 0. */
	if (o->parts[n - 1].size == 0) {
		*empty = true;
		return true;
	}
	*first = start;
	*last = start + o->parts[n - 1].size - 1;
	*status = 206;
	return true;
}

/* One attempt at GET/HEAD.  Returns false, having responded nothing, when
 * the version read was replaced and its first blob collected between
 * reading the metadata and pinning the blobs; the caller then tries again
 * with fresh metadata. */
static bool get_attempt(struct s3_req *r, bool last_attempt)
{
	struct kura_error err = { 0 };
	struct kura_object *o = NULL;
	enum kura_err rc;
	if (!s3_load_requested(r, &o))
		return true;
	s3_note_version(r, o->version_uid);
	s3_sse_release(&r->sse); /* a retry parses the headers again */
	if (!s3_sse_for_read(r, o, false, &r->sse))
		return true;
	unsigned cond = s3_conditions(r, o, "If-Match", "If-None-Match",
				      "If-Modified-Since",
				      "If-Unmodified-Since");
	if (cond == 412) {
		s3_error(r, S3_PreconditionFailed, NULL, NULL);
		return true;
	}
	if (cond == 304) {
		char lm[KURA_TIME_HTTP_LEN], etag[KURA_ETAG_MAX + 2];
		kura_time_http(o->mtime_ms, lm);
		snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
		if (s3_respond(r, 304) != KURA_OK ||
		    kura_http_resp_header(r->http, "ETag", etag) != KURA_OK ||
		    kura_http_resp_header(r->http, "Last-Modified", lm) !=
			    KURA_OK)
			s3_error(r, S3_InternalError, NULL, "out of memory");
		return true;
	}

	uint64_t first = 0, last = o->size ? o->size - 1 : 0;
	unsigned status = 200, parts_count = 0;
	bool empty_part = false;
	const struct kura_str *range = s3_header(r, "Range");
	const struct s3_param *pn = s3_param_get(r, "partNumber");
	if (pn != NULL) {
		if (!select_part(r, o, pn, range != NULL, &first, &last,
				 &status, &parts_count, &empty_part))
			return true;
	} else if (range != NULL) {
		switch (s3_range_parse(range->p, range->len, o->size, &first,
				       &last)) {
		case S3_RANGE_NONE:
			first = 0;
			last = o->size ? o->size - 1 : 0;
			break;
		case S3_RANGE_OK:
			status = 206;
			break;
		case S3_RANGE_UNSATISFIABLE: {
			char cr[64];
			snprintf(cr, sizeof(cr), "bytes */%llu",
				 (unsigned long long)o->size);
			s3_error(r, S3_InvalidRange, NULL, NULL);
			kura_http_resp_header(r->http, "Content-Range", cr);
			return true;
		}
		}
	}
	uint64_t len = o->size == 0 || empty_part ? 0 : last - first + 1;

	struct get_stream *gs = stream_new(r, o, first);
	if (gs == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return true;
	}
	/* Authenticate the first segment now: errors get a proper status. */
	if (r->op == S3_OP_GetObject &&
	    (rc = s3_objread_verify_at(gs->or, first, &err)) != KURA_OK) {
		stream_free(gs);
		if (rc == KURA_ENOENT && !last_attempt)
			return false;
		if (rc == KURA_ENOENT)
			rc = KURA_EINTEGRITY; /* a blob the row names is gone */
		s3_seal_ok(r, rc, &err, r->bucket.name, o->key, o->key_len,
			   o->version_uid);
		return true;
	}
	/* The stored checksum describes the whole object: not shown for a
	 * range or a part, as S3 does. */
	bool sums = status == 200 && pn == NULL && s3_checksum_mode(r);
	if (sums && (rc = s3_sum_unmask_object(r, o, r->sse.customer_key,
					       &err)) != KURA_OK) {
		stream_free(gs);
		s3_seal_ok(r, rc, &err, r->bucket.name, o->key, o->key_len,
			   o->version_uid);
		return true;
	}
	if (s3_respond(r, status) != KURA_OK ||
	    object_headers(r, o) != KURA_OK ||
	    (sums &&
	     s3_checksum_headers(r, &o->sum, o->part_count) != KURA_OK)) {
		stream_free(gs);
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return true;
	}
	if (status == 206) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
			 (unsigned long long)first, (unsigned long long)last,
			 (unsigned long long)o->size);
		kura_http_resp_header(r->http, "Content-Range", cr);
	}
	if (parts_count > 0) {
		char pc[16];
		snprintf(pc, sizeof(pc), "%u", parts_count);
		kura_http_resp_header(r->http, "x-amz-mp-parts-count", pc);
	}
	if (kura_http_resp_stream(r->http, len, stream_read, gs, stream_free) !=
	    KURA_OK)
		s3_error(r, S3_InternalError, NULL, "response stream");
	return true;
}

void s3_get_object(struct s3_req *r)
{
	if (!s3_load_bucket(r) || !check_overrides(r) ||
	    !s3_sse_refuse_on_read(r))
		return;
	if (!get_attempt(r, false))
		get_attempt(r, true);
}

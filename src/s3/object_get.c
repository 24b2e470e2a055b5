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
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

struct get_stream {
	struct kura_service *svc;
	const struct kura_object *obj;
	struct kura_bucket bucket;
	char reqid[KURA_REQUEST_ID_LEN + 1];
	uint64_t first;		/* object offset of body byte 0 */
	/* The part currently open. */
	uint32_t part_idx;
	uint64_t part_start;	/* object offset of the part's first byte */
	bool part_open;
	struct kura_store_reader *reader;
	struct kura_opener *opener;
	/* The segment currently decrypted. */
	uint8_t *ct;		/* seg_size + tag */
	uint8_t *plain;		/* seg_size */
	size_t buf_cap;
	uint64_t seg_start;	/* object offset of plain[0] */
	size_t seg_len;
	bool seg_valid;
};

static void part_close(struct get_stream *gs)
{
	if (gs->reader)
		gs->svc->store->ops->reader_close(gs->reader);
	gs->reader = NULL;
	kura_opener_free(gs->opener);
	gs->opener = NULL;
	gs->part_open = false;
	gs->seg_valid = false;
}

static void stream_free(void *cls)
{
	struct get_stream *gs = cls;
	part_close(gs);
	if (gs->plain)
		kura_wipe(gs->plain, gs->buf_cap);
	free(gs->ct);
	free(gs->plain);
	free(gs);
}

/* Open part idx: unwrap its DEK, open the blob, check header and size. */
static enum kura_err part_open(struct get_stream *gs, uint32_t idx,
			       struct kura_error *err)
{
	const struct kura_part *p = &gs->obj->parts[idx];
	struct kura_store *store = gs->svc->store;
	struct kura_secret *bk = NULL, *dek = NULL;
	struct kura_binding b = { gs->bucket.tenant_id, gs->bucket.id, { 0 }, p->part_no };
	uint8_t hdr[KURA_BLOB_HEADER_LEN];
	uint64_t size;
	memcpy(b.version_uid, gs->obj->version_uid, KURA_UID_LEN);
	part_close(gs);

	size_t need = (size_t)p->seg_size + KURA_SEG_TAG_LEN;
	if (need > gs->buf_cap) {
		free(gs->ct);
		if (gs->plain)
			kura_wipe(gs->plain, gs->buf_cap);
		free(gs->plain);
		gs->ct = malloc(need);
		gs->plain = malloc(need);
		gs->buf_cap = gs->ct && gs->plain ? need : 0;
		if (gs->buf_cap == 0)
			return kura_fail(err, KURA_ENOMEM, "segment buffers");
	}
	enum kura_err rc = kura_keycache_get(gs->svc->keycache, gs->bucket.tenant_id,
					     gs->bucket.id, gs->bucket.kek_id,
					     gs->bucket.key_wrapped,
					     gs->bucket.key_wrapped_len, &bk, err);
	if (rc == KURA_OK)
		rc = kura_dek_unwrap(bk, &b, p->dek_wrapped, &dek, err);
	kura_secret_free(bk);
	if (rc == KURA_OK)
		rc = kura_opener_new(dek, &b, p->seg_size, p->size, &gs->opener, err);
	kura_secret_free(dek);
	if (rc != KURA_OK)
		return rc;
	rc = store->ops->reader_open(store->priv, p->blob_id, &gs->reader, &size, err);
	if (rc == KURA_ENOENT)
		return kura_fail(err, KURA_EINTEGRITY, "blob of part %u is missing", p->part_no);
	if (rc != KURA_OK)
		return rc;
	if (size != kura_blob_size(p->size, p->seg_size))
		return kura_fail(err, KURA_EINTEGRITY,
				 "blob of part %u has %llu bytes, expected %llu", p->part_no,
				 (unsigned long long)size,
				 (unsigned long long)kura_blob_size(p->size, p->seg_size));
	rc = store->ops->reader_pread(gs->reader, hdr, sizeof(hdr), 0, err);
	if (rc == KURA_OK)
		rc = kura_blob_header_check(hdr, p->seg_size, p->blob_id, err);
	if (rc != KURA_OK)
		return rc;
	gs->part_idx = idx;
	gs->part_open = true;
	return KURA_OK;
}

/* Make the segment holding object offset off the current one. */
static enum kura_err load_segment(struct get_stream *gs, uint64_t off,
				  struct kura_error *err)
{
	const struct kura_object *o = gs->obj;
	/* Find the part holding off, moving forward from the current one (the
	 * stream is sequential); restart from the beginning otherwise. */
	uint32_t idx = gs->part_open ? gs->part_idx : 0;
	uint64_t start = gs->part_open ? gs->part_start : 0;
	if (off < start) {
		idx = 0;
		start = 0;
	}
	while (idx < o->part_count && off >= start + o->parts[idx].size) {
		start += o->parts[idx].size;
		idx++;
	}
	if (idx >= o->part_count)
		return kura_fail(err, KURA_EINTEGRITY, "offset beyond the object");
	if (!gs->part_open || gs->part_idx != idx) {
		enum kura_err rc = part_open(gs, idx, err);
		if (rc != KURA_OK)
			return rc;
		gs->part_start = start;
	}
	const struct kura_part *p = &o->parts[idx];
	uint64_t seg = (off - start) / p->seg_size;
	size_t plen = kura_seg_plain_len(seg, p->size, p->seg_size);
	size_t clen = plen + KURA_SEG_TAG_LEN;
	gs->seg_valid = false;
	enum kura_err rc = gs->svc->store->ops->reader_pread(
		gs->reader, gs->ct, clen, kura_seg_offset(seg, p->seg_size), err);
	if (rc == KURA_OK)
		rc = kura_opener_segment(gs->opener, seg, gs->ct, clen, gs->plain, err);
	if (rc != KURA_OK)
		return rc;
	gs->seg_start = start + seg * p->seg_size;
	gs->seg_len = plen;
	gs->seg_valid = true;
	return KURA_OK;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct get_stream *gs = cls;
	uint64_t off = gs->first + pos;
	size_t done = 0;
	while (done < max) {
		if (!gs->seg_valid || off < gs->seg_start ||
		    off >= gs->seg_start + gs->seg_len) {
			struct kura_error err = { 0 };
			if (load_segment(gs, off, &err) != KURA_OK) {
				kura_error(gs->reqid, "GET aborted mid-body: %s", err.msg);
				return done > 0 ? (ssize_t)done : -1;
			}
		}
		size_t in_seg = (size_t)(off - gs->seg_start);
		size_t n = gs->seg_len - in_seg;
		if (n > max - done)
			n = max - done;
		memcpy(buf + done, gs->plain + in_seg, n);
		done += n;
		off += n;
		/* Stop at the end of the object's part list (the HTTP layer
		 * knows the body size and never asks beyond it). */
		if (off >= gs->obj->size)
			break;
	}
	return (ssize_t)done;
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
		if (b - a == strlen(etag) && memcmp(list.p + a, etag, b - a) == 0)
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

/* 0: proceed; 304 or 412 otherwise. */
static unsigned evaluate_conditions(struct s3_req *r, const struct kura_object *o)
{
	int64_t mtime = o->mtime_ms / 1000, d;
	const struct kura_str *im = s3_header(r, "If-Match");
	const struct kura_str *inm = s3_header(r, "If-None-Match");
	if (im != NULL) {
		if (!etag_listed(*im, o->etag))
			return 412;
	} else if (date_header(r, "If-Unmodified-Since", &d) && mtime > d) {
		return 412;
	}
	if (inm != NULL) {
		if (etag_listed(*inm, o->etag))
			return 304;
	} else if (date_header(r, "If-Modified-Since", &d) && mtime <= d) {
		return 304;
	}
	return 0;
}

/* ---- response headers ---- */

static enum kura_err add_header(struct s3_req *r, const char *name,
				const char *override_param, const char *stored)
{
	const struct s3_param *p = override_param && r->op == S3_OP_GetObject
					   ? s3_param_get(r, override_param) : NULL;
	const char *v = p ? p->value : stored;
	if (v == NULL)
		return KURA_OK;
	return kura_http_resp_header(r->http, name, v);
}

static enum kura_err object_headers(struct s3_req *r, const struct kura_object *o)
{
	char lm[KURA_TIME_HTTP_LEN], etag[KURA_ETAG_MAX + 2];
	kura_time_http(o->mtime_ms, lm);
	snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
	enum kura_err rc = kura_http_resp_header(r->http, "Last-Modified", lm);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "ETag", etag);
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Type", "response-content-type",
				o->content_type ? o->content_type : "binary/octet-stream");
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Encoding", "response-content-encoding",
				o->content_encoding);
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Language", "response-content-language",
				o->content_language);
	if (rc == KURA_OK)
		rc = add_header(r, "Content-Disposition", "response-content-disposition",
				o->content_disposition);
	if (rc == KURA_OK)
		rc = add_header(r, "Cache-Control", "response-cache-control",
				o->cache_control);
	if (rc == KURA_OK)
		rc = add_header(r, "Expires", "response-expires", o->expires);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "Accept-Ranges", "bytes");
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "x-amz-server-side-encryption", "AES256");
	if (rc != KURA_OK || o->user_meta_json == NULL)
		return rc;
	json_t *meta = json_loads(o->user_meta_json, 0, NULL);
	const char *k;
	json_t *v;
	char name[300];
	json_object_foreach(meta, k, v) {
		if (!json_is_string(v) || rc != KURA_OK)
			continue;
		snprintf(name, sizeof(name), "x-amz-meta-%s", k);
		rc = kura_http_resp_header(r->http, name, json_string_value(v));
	}
	json_decref(meta);
	return rc;
}

static bool check_overrides(struct s3_req *r)
{
	static const char *const names[] = {
		"response-content-type", "response-content-encoding",
		"response-content-language", "response-content-disposition",
		"response-cache-control", "response-expires", NULL,
	};
	for (size_t i = 0; names[i]; i++) {
		const struct s3_param *p = s3_param_get(r, names[i]);
		if (p == NULL)
			continue;
		if (r->op != S3_OP_GetObject) {
			s3_error(r, S3_InvalidRequest,
				 "Response header overrides are only valid for GET.", NULL);
			return false;
		}
		for (size_t k = 0; k < p->value_len; k++)
			if ((unsigned char)p->value[k] < 0x20) {
				s3_error(r, S3_InvalidArgument, NULL, "control character in override");
				return false;
			}
	}
	return true;
}

void s3_get_object(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	struct kura_object *o = NULL;
	if (!s3_load_bucket(r) || !check_overrides(r))
		return;
	enum kura_err rc = svc->meta->ops->object_get(svc->meta->priv, r->bucket.id,
						      r->key, r->key_len, r->pool, &o, &err);
	if (rc == KURA_ENOENT) {
		s3_error(r, S3_NoSuchKey, NULL, NULL);
		return;
	}
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	unsigned cond = evaluate_conditions(r, o);
	if (cond == 412) {
		s3_error(r, S3_PreconditionFailed, NULL, NULL);
		return;
	}
	if (cond == 304) {
		char lm[KURA_TIME_HTTP_LEN], etag[KURA_ETAG_MAX + 2];
		kura_time_http(o->mtime_ms, lm);
		snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
		if (s3_respond(r, 304) != KURA_OK ||
		    kura_http_resp_header(r->http, "ETag", etag) != KURA_OK ||
		    kura_http_resp_header(r->http, "Last-Modified", lm) != KURA_OK)
			s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}

	uint64_t first = 0, last = o->size ? o->size - 1 : 0;
	unsigned status = 200;
	const struct kura_str *range = s3_header(r, "Range");
	if (range != NULL) {
		switch (s3_range_parse(range->p, range->len, o->size, &first, &last)) {
		case S3_RANGE_NONE:
			first = 0;
			last = o->size ? o->size - 1 : 0;
			break;
		case S3_RANGE_OK:
			status = 206;
			break;
		case S3_RANGE_UNSATISFIABLE: {
			char cr[64];
			snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)o->size);
			s3_error(r, S3_InvalidRange, NULL, NULL);
			kura_http_resp_header(r->http, "Content-Range", cr);
			return;
		}
		}
	}
	uint64_t len = o->size == 0 ? 0 : last - first + 1;

	struct get_stream *gs = calloc(1, sizeof(*gs));
	if (gs == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}
	gs->svc = svc;
	gs->obj = o;
	gs->bucket = r->bucket;
	gs->first = first;
	memcpy(gs->reqid, r->http->id, sizeof(gs->reqid));
	/* Decrypt the first segment now: errors get a proper status. */
	if (r->op == S3_OP_GetObject && (rc = load_segment(gs, first, &err)) != KURA_OK) {
		stream_free(gs);
		if (rc == KURA_EINTEGRITY)
			s3_error(r, S3_InternalError,
				 "The stored object failed its integrity check.", err.msg);
		else
			s3_error_from(r, rc, &err);
		return;
	}
	if (s3_respond(r, status) != KURA_OK || object_headers(r, o) != KURA_OK) {
		stream_free(gs);
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return;
	}
	if (status == 206) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
			 (unsigned long long)last, (unsigned long long)o->size);
		kura_http_resp_header(r->http, "Content-Range", cr);
	}
	if (kura_http_resp_stream(r->http, len, stream_read, gs, stream_free) != KURA_OK)
		s3_error(r, S3_InternalError, NULL, "response stream");
}

/*
 * list.c — ListObjects (v1) and ListObjectsV2: objects as a source of the
 * listing engine (listing.c, which does the prefix and delimiter roll-up,
 * max-keys and truncation), markers and continuation tokens, and the
 * ListBucketResult document.
 *
 * Continuation tokens are opaque to clients: base64 of one tag byte and a
 * key; 'K' resumes after that key, 'P' after every key under that prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

struct list_params {
	struct s3_list_query q;
	bool v2;
	bool fetch_owner;
};

/* ---- objects as a listing source ---- */

static enum kura_err fetch_objects(struct s3_req *r, struct kura_str prefix,
				   const struct s3_list_pos *after, size_t want,
				   void **rows, size_t *n,
				   struct kura_error *err)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_object *es = NULL;
	enum kura_err rc = kura_meta_object_list(meta, r->bucket.id, prefix.p,
						 prefix.len, after->key,
						 after->len, want, r->pool, &es,
						 n, err);
	*rows = es;
	return rc;
}

static enum kura_err open_object(struct s3_req *r, void *row,
				 struct kura_error *err)
{
	return kura_seal_object_open(&r->seal, r->bucket.tenant_id, row, false,
				     err);
}

static void describe_object(const void *row, struct s3_list_row *out)
{
	const struct kura_object *e = row;
	*out = (struct s3_list_row){ { e->key, e->key_len, "", false },
				     e->version_uid };
}

static const struct s3_list_source objects = {
	.row_size = sizeof(struct kura_object),
	.fetch = fetch_objects,
	.open = open_object,
	.describe = describe_object,
};

/* ---- parameters and continuation tokens ---- */

/* <NextContinuationToken>: base64 of 'P' or 'K' and the key, written into
 * the document (base64 needs no escaping). */
static void write_token(struct kura_buf *b, const struct s3_list_pos *next)
{
	struct kura_buf raw;
	kura_buf_init(&raw, KURA_OBJECT_KEY_MAX + 2);
	if (kura_buf_addch(&raw, next->prefix ? 'P' : 'K') != KURA_OK ||
	    kura_buf_add(&raw, next->key, next->len) != KURA_OK) {
		kura_buf_fail(b, kura_buf_error(&raw));
	} else {
		s3_xml_open(b, "NextContinuationToken");
		/* Fails only as b does, and that sticks in b. */
		KURA_IGNORE(kura_base64_encode((const uint8_t *)raw.data,
					       raw.len, b));
		s3_xml_close(b, "NextContinuationToken");
	}
	kura_buf_release(&raw);
}

static bool parse_token(struct s3_req *r, const struct s3_param *p,
			struct list_params *lp)
{
	size_t cap = p->value_len, n;
	uint8_t *raw = kura_palloc(r->pool, cap + 1);
	if (raw == NULL || cap < 4 ||
	    kura_base64_decode(p->value, p->value_len, raw, cap, &n) !=
		    KURA_OK ||
	    n < 1 || n > KURA_OBJECT_KEY_MAX + 1 ||
	    (raw[0] != 'K' && raw[0] != 'P')) {
		s3_error_elem(r, S3_InvalidArgument,
			      "The continuation token provided is incorrect",
			      NULL, "ArgumentName", "continuation-token");
		return false;
	}
	lp->q.start.key = (const char *)raw + 1;
	lp->q.start.len = n - 1;
	lp->q.start.prefix = raw[0] == 'P';
	return true;
}

static bool parse_params(struct s3_req *r, struct list_params *lp)
{
	const struct s3_param *p;
	lp->v2 = r->op == S3_OP_ListObjectsV2;
	if (!s3_list_parse(
		    r, "max-keys",
		    "Provided max-keys not an integer or within integer range",
		    &lp->q))
		return false;
	if (lp->v2) {
		if ((p = s3_param_get(r, "fetch-owner")) != NULL)
			lp->fetch_owner = strcmp(p->value, "true") == 0;
		/* An empty token (boto3 sends ContinuationToken='' so) asks
		 * for the first page, as AWS answers it: start-after applies. */
		p = s3_param_get(r, "continuation-token");
		if (p != NULL && p->value_len > 0)
			return parse_token(r, p, lp);
		if ((p = s3_param_get(r, "start-after")) != NULL) {
			lp->q.start.key = p->value;
			lp->q.start.len = p->value_len;
		}
		return true;
	}
	lp->fetch_owner = true; /* v1 always lists owners */
	if ((p = s3_param_get(r, "marker")) != NULL) {
		struct kura_str m = { p->value, p->value_len };
		lp->q.start.key = m.p;
		lp->q.start.len = m.len;
		lp->q.start.prefix = s3_list_marker_is_prefix(&lp->q, m);
	}
	return true;
}

/* ---- the document ---- */

/* <Contents> of object entry it; owner_id NULL leaves the owner out. */
static void write_contents(struct kura_buf *b, const struct s3_list_entry *it,
			   bool url, const char *owner_id)
{
	const struct kura_object *o = it->row;
	char ts[KURA_TIME_ISO8601_LEN], etag[KURA_ETAG_MAX + 2];
	kura_time_iso8601(o->mtime_ms, ts);
	snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
	s3_xml_open(b, "Contents");
	s3_xml_elem_enc(b, "Key", it->key, it->len, url);
	s3_xml_elem_str(b, "LastModified", ts);
	s3_xml_elem_str(b, "ETag", etag);
	s3_xml_elem_u64(b, "Size", o->size);
	if (owner_id != NULL) {
		s3_xml_open(b, "Owner");
		s3_xml_elem_str(b, "ID", owner_id);
		s3_xml_elem_str(b, "DisplayName", owner_id);
		s3_xml_close(b, "Owner");
	}
	s3_xml_elem_str(b, "StorageClass", "STANDARD");
	s3_xml_close(b, "Contents");
}

static void write_result(struct s3_req *r, const struct list_params *lp,
			 const struct s3_list_page *page)
{
	const struct s3_list_query *q = &lp->q;
	struct kura_buf b;
	const struct s3_param *p;
	char owner_id[32];
	snprintf(owner_id, sizeof(owner_id), "%llu",
		 (unsigned long long)r->tenant_id);
	kura_buf_init(&b, r->svc->max_list_response);
	s3_xml_root(&b, "ListBucketResult");
	s3_xml_elem_str(&b, "Name", r->bucket.name);
	s3_xml_elem_enc(&b, "Prefix", q->prefix.p, q->prefix.len, q->url);
	if (!lp->v2) {
		p = s3_param_get(r, "marker");
		s3_xml_elem_enc(&b, "Marker", p ? p->value : "",
				p ? p->value_len : 0, q->url);
	}
	s3_xml_elem_u64(&b, "MaxKeys", q->max);
	if (q->delimiter.len > 0)
		s3_xml_elem_enc(&b, "Delimiter", q->delimiter.p,
				q->delimiter.len, q->url);
	if (q->url)
		s3_xml_elem_str(&b, "EncodingType", "url");
	s3_xml_elem_str(&b, "IsTruncated", page->truncated ? "true" : "false");
	if (lp->v2) {
		s3_xml_elem_u64(&b, "KeyCount", page->count);
		/* Both echoed when both are given, as AWS does (the token
		 * decides where the page begins). */
		if ((p = s3_param_get(r, "continuation-token")) != NULL)
			s3_xml_elem(&b, "ContinuationToken", p->value,
				    p->value_len);
		if ((p = s3_param_get(r, "start-after")) != NULL)
			s3_xml_elem_enc(&b, "StartAfter", p->value,
					p->value_len, q->url);
		if (page->truncated)
			write_token(&b, &page->next);
	} else if (page->truncated && q->delimiter.len > 0) {
		s3_xml_elem_enc(&b, "NextMarker", page->next.key,
				page->next.len, q->url);
	}
	for (size_t i = 0; i < page->count; i++)
		if (page->entries[i].row != NULL)
			write_contents(&b, &page->entries[i], q->url,
				       lp->fetch_owner ? owner_id : NULL);
	s3_list_write_prefixes(&b, page, q->url);
	s3_xml_close(&b, "ListBucketResult");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_list_objects(struct s3_req *r)
{
	struct list_params lp = { 0 };
	struct s3_list_page page = { 0 };
	if (!s3_load_bucket(r) || !parse_params(r, &lp))
		return;
	/* max-keys=0 is answered with an empty page that is not truncated,
	 * without reading. */
	if (lp.q.max > 0 && !s3_list_walk(r, &objects, &lp.q, &page))
		return;
	write_result(r, &lp, &page);
}

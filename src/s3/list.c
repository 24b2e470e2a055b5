/*
 * list.c — ListObjects (v1) and ListObjectsV2: prefix, delimiter roll-up
 * into CommonPrefixes, max-keys, markers and continuation tokens, and
 * encoding-type=url, with S3's truncation semantics.
 *
 * Each page is a few indexed range scans of the metadata store: after a
 * common prefix is emitted, the scan jumps past every key under it instead
 * of reading them, so a page costs O(max-keys) whatever the bucket size.
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

#define LIST_MAX_KEYS 1000

struct list_item {
	const char *key;	/* key, or common prefix */
	size_t len;
	const struct kura_object *entry;	/* NULL for a common prefix */
};

struct list_params {
	struct kura_str prefix;
	struct kura_str delimiter;
	struct kura_str start;		/* exclusive start key */
	bool start_is_prefix;		/* skip every key under start */
	uint64_t max_keys;
	bool url;
	bool v2;
	bool fetch_owner;
};

struct list_result {
	struct list_item *items;
	size_t count;
	bool truncated;
	/* Where the next page starts. */
	const char *next;
	size_t next_len;
	bool next_is_prefix;
	const struct kura_object *bad;	/* the row that failed its seal */
};

/* "after" bound that skips every key beginning with p: keys are at most
 * KURA_OBJECT_KEY_MAX bytes, so p followed by 0xFF up to one byte beyond
 * that length sorts after all of them. */
static char *past_prefix(struct kura_pool *pool, const char *p, size_t n,
			 size_t *out_len)
{
	size_t len = KURA_OBJECT_KEY_MAX + 1;
	if (n >= len)
		len = n + 1;
	char *s = kura_palloc(pool, len);
	if (s == NULL)
		return NULL;
	memcpy(s, p, n);
	memset(s + n, 0xff, len - n);
	*out_len = len;
	return s;
}

static enum kura_err run_listing(struct s3_req *r, const struct list_params *lp,
				 struct list_result *res, struct kura_error *err)
{
	struct kura_meta *meta = r->svc->meta;
	const char *after = lp->start.p;
	size_t after_len = lp->start.len;
	if (lp->start_is_prefix) {
		after = past_prefix(r->pool, lp->start.p, lp->start.len, &after_len);
		if (after == NULL)
			return kura_fail(err, KURA_ENOMEM, "listing");
	}
	res->items = kura_palloc(r->pool, (LIST_MAX_KEYS + 1) * sizeof(*res->items));
	if (res->items == NULL)
		return kura_fail(err, KURA_ENOMEM, "listing");
	if (lp->max_keys == 0)
		return KURA_OK;
	/* With a delimiter, a batch usually ends at the first key of the next
	 * common prefix, so start small and grow only while keys are listed
	 * one by one: rolling up 1000 prefixes then reads a few rows each, not
	 * a thousand. */
	size_t batch = lp->delimiter.len > 0 ? 8 : SIZE_MAX;
	for (;;) {
		size_t want = (size_t)(lp->max_keys - res->count) + 1, n = 0;
		bool partial = batch < want;
		if (partial)
			want = batch;
		struct kura_object *es = NULL;
		enum kura_err rc = kura_meta_object_list(meta, r->bucket.id,
							 lp->prefix.p, lp->prefix.len,
							 after, after_len, want, r->pool,
							 &es, &n, err);
		if (rc != KURA_OK)
			return rc;
		bool rescan = false;
		for (size_t i = 0; i < n && !rescan; i++) {
			struct kura_object *e = &es[i];
			const char *cp = NULL;
			/* Every row read is checked, also one that only names a
			 * common prefix: a forged key could invent a prefix. */
			rc = kura_seal_object_open(&r->seal, r->bucket.tenant_id, e, false,
						   err);
			if (rc != KURA_OK) {
				res->bad = e;
				return rc;
			}
			size_t cp_len = 0;
			if (lp->delimiter.len > 0 && e->key_len > lp->prefix.len) {
				const char *rest = e->key + lp->prefix.len;
				size_t rest_len = e->key_len - lp->prefix.len;
				const char *d = memmem(rest, rest_len, lp->delimiter.p,
						       lp->delimiter.len);
				if (d != NULL) {
					cp = e->key;
					cp_len = (size_t)(d - e->key) + lp->delimiter.len;
				}
			}
			if (res->count == lp->max_keys) {
				res->truncated = true;
				return KURA_OK;
			}
			struct list_item *it = &res->items[res->count++];
			if (cp != NULL) {
				it->key = cp;
				it->len = cp_len;
				it->entry = NULL;
				res->next = cp;
				res->next_len = cp_len;
				res->next_is_prefix = true;
				after = past_prefix(r->pool, cp, cp_len, &after_len);
				if (after == NULL)
					return kura_fail(err, KURA_ENOMEM, "listing");
				rescan = true;
			} else {
				it->key = e->key;
				it->len = e->key_len;
				it->entry = e;
				res->next = e->key;
				res->next_len = e->key_len;
				res->next_is_prefix = false;
				after = e->key;
				after_len = e->key_len;
			}
		}
		if (!rescan && n < want)
			return KURA_OK;
		if (partial && !rescan && batch < SIZE_MAX / 2)
			batch *= 2;
	}
}

static char *make_token(struct s3_req *r, const struct list_result *res)
{
	struct kura_buf raw, out;
	char *tok = NULL;
	kura_buf_init(&raw, KURA_OBJECT_KEY_MAX + 2);
	kura_buf_init(&out, 4 * KURA_OBJECT_KEY_MAX);
	if (kura_buf_addch(&raw, res->next_is_prefix ? 'P' : 'K') == KURA_OK &&
	    kura_buf_add(&raw, res->next, res->next_len) == KURA_OK &&
	    kura_base64_encode((const uint8_t *)raw.data, raw.len, &out) == KURA_OK)
		tok = kura_pstrndup(r->pool, out.data, out.len);
	kura_buf_release(&raw);
	kura_buf_release(&out);
	return tok;
}

static bool parse_token(struct s3_req *r, const struct s3_param *p,
			struct list_params *lp)
{
	size_t cap = p->value_len, n;
	uint8_t *raw = kura_palloc(r->pool, cap + 1);
	if (raw == NULL || cap < 4 ||
	    kura_base64_decode(p->value, p->value_len, raw, cap, &n) != KURA_OK ||
	    n < 1 || n > KURA_OBJECT_KEY_MAX + 1 || (raw[0] != 'K' && raw[0] != 'P')) {
		s3_error(r, S3_InvalidArgument,
			 "The continuation token provided is incorrect", NULL);
		return false;
	}
	lp->start.p = (const char *)raw + 1;
	lp->start.len = n - 1;
	lp->start_is_prefix = raw[0] == 'P';
	return true;
}

static bool parse_params(struct s3_req *r, struct list_params *lp)
{
	const struct s3_param *p;
	lp->v2 = r->op == S3_OP_ListObjectsV2;
	lp->max_keys = LIST_MAX_KEYS;
	if ((p = s3_param_get(r, "prefix")) != NULL)
		lp->prefix = (struct kura_str){ p->value, p->value_len };
	else
		lp->prefix = KURA_STR_LIT("");
	if ((p = s3_param_get(r, "delimiter")) != NULL)
		lp->delimiter = (struct kura_str){ p->value, p->value_len };
	if ((p = s3_param_get(r, "max-keys")) != NULL) {
		uint64_t v;
		if (kura_parse_u64(p->value, p->value_len, INT32_MAX, &v) != KURA_OK) {
			s3_error(r, S3_InvalidArgument,
				 "Provided max-keys not an integer or within integer range",
				 NULL);
			return false;
		}
		lp->max_keys = v < LIST_MAX_KEYS ? v : LIST_MAX_KEYS;
	}
	if ((p = s3_param_get(r, "encoding-type")) != NULL) {
		if (strcmp(p->value, "url") != 0) {
			s3_error(r, S3_InvalidArgument, "Invalid Encoding Method specified in Request",
				 NULL);
			return false;
		}
		lp->url = true;
	}
	if (lp->v2) {
		if ((p = s3_param_get(r, "fetch-owner")) != NULL)
			lp->fetch_owner = strcmp(p->value, "true") == 0;
		if ((p = s3_param_get(r, "continuation-token")) != NULL)
			return parse_token(r, p, lp);
		if ((p = s3_param_get(r, "start-after")) != NULL)
			lp->start = (struct kura_str){ p->value, p->value_len };
		return true;
	}
	lp->fetch_owner = true;	/* v1 always lists owners */
	if ((p = s3_param_get(r, "marker")) != NULL) {
		lp->start = (struct kura_str){ p->value, p->value_len };
		/* A marker that is itself a common prefix (S3 hands those out as
		 * NextMarker) resumes after everything rolled up under it. */
		if (lp->delimiter.len > 0 && lp->start.len >= lp->prefix.len + lp->delimiter.len &&
		    memcmp(lp->start.p, lp->prefix.p, lp->prefix.len) == 0) {
			const char *rest = lp->start.p + lp->prefix.len;
			size_t rl = lp->start.len - lp->prefix.len;
			const char *d = memmem(rest, rl, lp->delimiter.p, lp->delimiter.len);
			if (d != NULL && (size_t)(d - rest) + lp->delimiter.len == rl)
				lp->start_is_prefix = true;
		}
	}
	return true;
}

static void write_result(struct s3_req *r, const struct list_params *lp,
			 const struct list_result *res)
{
	struct kura_buf b;
	char ts[KURA_TIME_ISO8601_LEN], owner_id[32], etag[KURA_ETAG_MAX + 2];
	const struct s3_param *p;
	snprintf(owner_id, sizeof(owner_id), "%llu", (unsigned long long)r->tenant_id);
	kura_buf_init(&b, 16u << 20);
	s3_xml_decl(&b);
	kura_buf_addstr(&b, "<ListBucketResult xmlns=\"" S3_XMLNS "\">");
	s3_xml_elem_str(&b, "Name", r->bucket.name);
	s3_xml_elem_enc(&b, "Prefix", lp->prefix.p, lp->prefix.len, lp->url);
	if (!lp->v2) {
		p = s3_param_get(r, "marker");
		s3_xml_elem_enc(&b, "Marker", p ? p->value : "", p ? p->value_len : 0, lp->url);
	}
	s3_xml_elem_u64(&b, "MaxKeys", lp->max_keys);
	if (lp->delimiter.len > 0)
		s3_xml_elem_enc(&b, "Delimiter", lp->delimiter.p, lp->delimiter.len, lp->url);
	if (lp->url)
		s3_xml_elem_str(&b, "EncodingType", "url");
	s3_xml_elem_str(&b, "IsTruncated", res->truncated ? "true" : "false");
	if (lp->v2) {
		s3_xml_elem_u64(&b, "KeyCount", res->count);
		if ((p = s3_param_get(r, "continuation-token")) != NULL)
			s3_xml_elem(&b, "ContinuationToken", p->value, p->value_len);
		else if ((p = s3_param_get(r, "start-after")) != NULL)
			s3_xml_elem_enc(&b, "StartAfter", p->value, p->value_len, lp->url);
		if (res->truncated) {
			char *tok = make_token(r, res);
			if (tok)
				s3_xml_elem_str(&b, "NextContinuationToken", tok);
		}
	} else if (res->truncated && lp->delimiter.len > 0) {
		s3_xml_elem_enc(&b, "NextMarker", res->next, res->next_len, lp->url);
	}
	for (size_t i = 0; i < res->count; i++) {
		const struct list_item *it = &res->items[i];
		if (it->entry == NULL)
			continue;
		kura_time_iso8601(it->entry->mtime_ms, ts);
		snprintf(etag, sizeof(etag), "\"%s\"", it->entry->etag);
		s3_xml_open(&b, "Contents");
		s3_xml_elem_enc(&b, "Key", it->key, it->len, lp->url);
		s3_xml_elem_str(&b, "LastModified", ts);
		s3_xml_elem_str(&b, "ETag", etag);
		s3_xml_elem_u64(&b, "Size", it->entry->size);
		if (lp->fetch_owner) {
			s3_xml_open(&b, "Owner");
			s3_xml_elem_str(&b, "ID", owner_id);
			s3_xml_elem_str(&b, "DisplayName", owner_id);
			s3_xml_close(&b, "Owner");
		}
		s3_xml_elem_str(&b, "StorageClass", "STANDARD");
		s3_xml_close(&b, "Contents");
	}
	for (size_t i = 0; i < res->count; i++) {
		const struct list_item *it = &res->items[i];
		if (it->entry != NULL)
			continue;
		s3_xml_open(&b, "CommonPrefixes");
		s3_xml_elem_enc(&b, "Prefix", it->key, it->len, lp->url);
		s3_xml_close(&b, "CommonPrefixes");
	}
	if (s3_xml_close(&b, "ListBucketResult") != KURA_OK)
		s3_error(r, S3_InternalError, NULL, "listing document too large");
	else
		s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_list_objects(struct s3_req *r)
{
	struct list_params lp = { 0 };
	struct list_result res = { 0 };
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r) || !parse_params(r, &lp))
		return;
	enum kura_err rc = run_listing(r, &lp, &res, &err);
	if (rc != KURA_OK) {
		const struct kura_object *bad = res.bad;
		s3_seal_ok(r, rc, &err, r->bucket.name, bad ? bad->key : NULL,
			   bad ? bad->key_len : 0, bad ? bad->version_uid : NULL);
		return;
	}
	write_result(r, &lp, &res);
}

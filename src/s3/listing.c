/*
 * listing.c — the one listing engine (s3_int.h): a cursor walk over the
 * rows of a bucket in (key, id) order with S3's prefix and delimiter
 * roll-up, page size and truncation, for every kind of row a
 * struct s3_list_source describes.
 *
 * Each page is a few indexed range scans of the metadata store: after a
 * common prefix is emitted, the walk jumps past every key under it instead
 * of reading them, so a page costs O(max) whatever the bucket size.
 *
 * Invariant: every row the walk uses is checked against its seal first —
 * a row listed, one that only names a common prefix, the one read beyond a
 * full page to tell that it is truncated.  Rows a batch brought beyond a
 * common prefix just rolled up are dropped unused (the walk resumes past
 * the prefix).
 */
#include <stdint.h>
#include <string.h>

#include "kura/parse.h"
#include "s3_int.h"
#include "kura/banned.h"

bool s3_list_parse(struct s3_req *r, const char *max_name, const char *bad_max,
		   struct s3_list_query *q)
{
	const struct s3_param *p;
	memset(q, 0, sizeof(*q));
	q->prefix = KURA_STR_LIT("");
	q->start.id = "";
	q->max = S3_LIST_MAX;
	if ((p = s3_param_get(r, "prefix")) != NULL)
		q->prefix = (struct kura_str){ p->value, p->value_len };
	if ((p = s3_param_get(r, "delimiter")) != NULL)
		q->delimiter = (struct kura_str){ p->value, p->value_len };
	if ((p = s3_param_get(r, max_name)) != NULL) {
		uint64_t v;
		if (kura_parse_u64(p->value, p->value_len, INT32_MAX, &v) !=
		    KURA_OK) {
			s3_error(r, S3_InvalidArgument, bad_max, NULL);
			return false;
		}
		q->max = v < S3_LIST_MAX ? v : S3_LIST_MAX;
	}
	if ((p = s3_param_get(r, "encoding-type")) != NULL) {
		if (strcmp(p->value, "url") != 0) {
			s3_error(r, S3_InvalidArgument,
				 "Invalid Encoding Method specified in Request",
				 NULL);
			return false;
		}
		q->url = true;
	}
	return true;
}

/* The common prefix key rolls up into under q — the prefix and the rest
 * up to and including the first delimiter — or NULL. */
static const char *common_prefix(const struct s3_list_query *q, const char *key,
				 size_t len, size_t *cp_len)
{
	if (q->delimiter.len == 0 || len <= q->prefix.len)
		return NULL;
	const char *d = memmem(key + q->prefix.len, len - q->prefix.len,
			       q->delimiter.p, q->delimiter.len);
	if (d == NULL)
		return NULL;
	*cp_len = (size_t)(d - key) + q->delimiter.len;
	return key;
}

bool s3_list_marker_is_prefix(const struct s3_list_query *q,
			      struct kura_str marker)
{
	size_t cp_len = 0;
	return marker.len >= q->prefix.len + q->delimiter.len &&
	       memcmp(marker.p, q->prefix.p, q->prefix.len) == 0 &&
	       common_prefix(q, marker.p, marker.len, &cp_len) != NULL &&
	       cp_len == marker.len;
}

/* Turn a prefix position into the row position after every key under it:
 * keys are at most KURA_OBJECT_KEY_MAX bytes, so the prefix followed by
 * 0xFF up to one byte beyond that length sorts after all of them. */
static bool skip_prefix(struct kura_pool *pool, struct s3_list_pos *at)
{
	size_t len = KURA_OBJECT_KEY_MAX + 1;
	if (at->len >= len)
		len = at->len + 1;
	char *s = kura_palloc(pool, len);
	if (s == NULL)
		return false;
	memcpy(s, at->key, at->len);
	memset(s + at->len, 0xff, len - at->len);
	*at = (struct s3_list_pos){ s, len, "", false };
	return true;
}

bool s3_list_walk(struct s3_req *r, const struct s3_list_source *src,
		  const struct s3_list_query *q, struct s3_list_page *page)
{
	struct kura_error err = { 0 };
	struct s3_list_pos after = q->start;
	memset(page, 0, sizeof(*page));
	size_t slots = q->max > 0 ? (size_t)q->max : 1;
	page->entries = kura_palloc(r->pool, slots * sizeof(*page->entries));
	if (page->entries == NULL ||
	    (after.prefix && !skip_prefix(r->pool, &after)))
		goto nomem;
	/* With a delimiter, a batch usually ends at the first key of the next
	 * common prefix, so start small and grow only while rows are listed
	 * one by one: rolling up 1000 prefixes then reads a few rows each, not
	 * a thousand. */
	size_t batch = q->delimiter.len > 0 ? 8 : SIZE_MAX;
	for (;;) {
		size_t want = (size_t)(q->max - page->count) + 1, n = 0;
		bool partial = batch < want;
		if (partial)
			want = batch;
		void *rows = NULL;
		enum kura_err rc =
			src->fetch(r, q->prefix, &after, want, &rows, &n, &err);
		if (rc != KURA_OK) {
			s3_error_from(r, rc, &err);
			return false;
		}
		bool rescan = false;
		for (size_t i = 0; i < n && !rescan; i++) {
			void *row = (char *)rows + i * src->row_size;
			struct s3_list_row at;
			src->describe(row, &at);
			rc = src->open(r, row, &err);
			if (!s3_seal_ok(r, rc, &err, r->bucket.name, at.pos.key,
					at.pos.len, at.version_uid))
				return false;
			if (page->count == q->max) {
				page->truncated = true;
				return true;
			}
			struct s3_list_entry *e = &page->entries[page->count++];
			size_t cp_len = 0;
			const char *cp = common_prefix(q, at.pos.key,
						       at.pos.len, &cp_len);
			if (cp != NULL) {
				*e = (struct s3_list_entry){ cp, cp_len, NULL };
				page->next.key = cp;
				page->next.len = cp_len;
				page->next.id = "";
				page->next.prefix = true;
				after = page->next;
				if (!skip_prefix(r->pool, &after))
					goto nomem;
				rescan = true;
			} else {
				*e = (struct s3_list_entry){ at.pos.key,
							     at.pos.len, row };
				page->next = at.pos;
				after = at.pos;
			}
		}
		if (!rescan && n < want)
			return true;
		if (partial && !rescan && batch < SIZE_MAX / 2)
			batch *= 2;
	}
nomem:
	s3_error(r, S3_InternalError, NULL, "out of memory");
	return false;
}

void s3_list_write_prefixes(struct kura_buf *b, const struct s3_list_page *page,
			    bool url)
{
	for (size_t i = 0; i < page->count; i++) {
		const struct s3_list_entry *e = &page->entries[i];
		if (e->row != NULL)
			continue;
		s3_xml_open(b, "CommonPrefixes");
		s3_xml_elem_enc(b, "Prefix", e->key, e->len, url);
		s3_xml_close(b, "CommonPrefixes");
	}
}

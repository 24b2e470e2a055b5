/*
 * list_versions.c — ListObjectVersions: every version and delete marker of
 * a bucket's keys as a source of the listing engine (listing.c: prefix and
 * delimiter roll-up, max-keys, truncation), key-marker and
 * version-id-marker, and the ListVersionsResult document.
 *
 * Rows come keys ascending, each key's versions newest first.  The walk's
 * position id of a version is its vseq in decimal (the store orders by
 * it); the markers a client sees are keys and version ids, resolved back
 * to a vseq when a page starts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

/* A listed version and its walk position id. */
struct version_row {
	struct kura_object o;
	char id[24];
};

static enum kura_err fetch_versions(struct s3_req *r, struct kura_str prefix,
				    const struct s3_list_pos *after,
				    size_t want, void **rows, size_t *n,
				    struct kura_error *err)
{
	struct kura_object *os = NULL;
	uint64_t after_vseq = 0;
	/* The ids are the ones describe_version wrote, or the marker's. */
	if (after->id[0] != '\0' &&
	    kura_parse_u64(after->id, strlen(after->id), INT64_MAX,
			   &after_vseq) != KURA_OK)
		return kura_fail(err, KURA_EINVAL, "bad listing position");
	enum kura_err rc = kura_meta_object_list_versions(
		r->svc->meta, r->bucket.id, prefix.p, prefix.len, after->key,
		after->len, after_vseq, want, r->pool, &os, n, err);
	if (rc != KURA_OK || *n == 0) {
		*rows = NULL;
		return rc;
	}
	struct version_row *vr = kura_palloc(r->pool, *n * sizeof(*vr));
	if (vr == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	for (size_t i = 0; i < *n; i++) {
		vr[i].o = os[i];
		snprintf(vr[i].id, sizeof(vr[i].id), "%" PRIu64, os[i].vseq);
	}
	*rows = vr;
	return KURA_OK;
}

static enum kura_err open_version(struct s3_req *r, void *row,
				  struct kura_error *err)
{
	struct version_row *vr = row;
	return kura_seal_object_open(&r->seal, r->bucket.tenant_id, &vr->o,
				     false, err);
}

static void describe_version(const void *row, struct s3_list_row *out)
{
	const struct version_row *vr = row;
	*out = (struct s3_list_row){
		{ vr->o.key, vr->o.key_len, vr->id, false }, vr->o.version_uid
	};
}

static const struct s3_list_source versions = {
	.row_size = sizeof(struct version_row),
	.fetch = fetch_versions,
	.open = open_version,
	.describe = describe_version,
};

/* ---- markers ---- */

/* key-marker and version-id-marker into q->start. */
static bool parse_markers(struct s3_req *r, struct s3_list_query *q)
{
	const struct s3_param *km = s3_param_get(r, "key-marker");
	const struct s3_param *vm = s3_param_get(r, "version-id-marker");
	if (vm != NULL && vm->value_len > 0 &&
	    (km == NULL || km->value_len == 0)) {
		s3_error(r, S3_InvalidArgument,
			 "A version-id marker cannot be specified without a "
			 "key marker.",
			 NULL);
		return false;
	}
	if (km == NULL || km->value_len == 0)
		return true;
	q->start.key = km->value;
	q->start.len = km->value_len;
	if (vm == NULL || vm->value_len == 0) {
		struct kura_str m = { km->value, km->value_len };
		q->start.prefix = s3_list_marker_is_prefix(q, m);
		return true;
	}
	struct s3_version_sel sel;
	struct kura_object *o = NULL;
	struct kura_error err = { 0 };
	if (!s3_version_parse(r, vm->value, vm->value_len, &sel))
		return false;
	enum kura_err rc = kura_meta_object_get_version(
		r->svc->meta, r->bucket.id, km->value, km->value_len,
		sel.null_version ? NULL : sel.uid, r->pool, &o, &err);
	if (rc == KURA_ENOENT) {
		s3_error(r, S3_InvalidArgument, "Invalid version id specified",
			 "version-id-marker names no version of key-marker");
		return false;
	}
	if (!s3_ok(r, rc, &err, S3_NoSuchKey))
		return false;
	char *id = kura_palloc(r->pool, 24);
	if (id == NULL) {
		s3_error(r, S3_InternalError, NULL, "out of memory");
		return false;
	}
	snprintf(id, 24, "%" PRIu64, o->vseq);
	q->start.id = id;
	return true;
}

/* ---- the document ---- */

static void write_version(struct kura_buf *b, const struct s3_list_entry *it,
			  bool url, const char *owner_id)
{
	const struct version_row *vr = it->row;
	const struct kura_object *o = &vr->o;
	char ts[KURA_TIME_ISO8601_LEN], etag[KURA_ETAG_MAX + 2];
	char vid[S3_VERSION_ID_MAX];
	const char *el = o->delete_marker ? "DeleteMarker" : "Version";
	kura_time_iso8601(o->mtime_ms, ts);
	s3_version_id(o, vid);
	s3_xml_open(b, el);
	s3_xml_elem_enc(b, "Key", it->key, it->len, url);
	s3_xml_elem_str(b, "VersionId", vid);
	s3_xml_elem_str(b, "IsLatest", o->is_latest ? "true" : "false");
	s3_xml_elem_str(b, "LastModified", ts);
	if (!o->delete_marker) {
		snprintf(etag, sizeof(etag), "\"%s\"", o->etag);
		s3_xml_elem_str(b, "ETag", etag);
		s3_xml_elem_u64(b, "Size", o->size);
		s3_xml_elem_str(b, "StorageClass", "STANDARD");
	}
	s3_xml_open(b, "Owner");
	s3_xml_elem_str(b, "ID", owner_id);
	s3_xml_elem_str(b, "DisplayName", owner_id);
	s3_xml_close(b, "Owner");
	s3_xml_close(b, el);
}

static void write_next_markers(struct kura_buf *b,
			       const struct s3_list_page *page, bool url)
{
	s3_xml_elem_enc(b, "NextKeyMarker", page->next.key, page->next.len,
			url);
	const struct s3_list_entry *last = &page->entries[page->count - 1];
	if (last->row != NULL) {
		char vid[S3_VERSION_ID_MAX];
		s3_version_id(&((const struct version_row *)last->row)->o, vid);
		s3_xml_elem_str(b, "NextVersionIdMarker", vid);
	}
}

static void write_result(struct s3_req *r, const struct s3_list_query *q,
			 const struct s3_list_page *page)
{
	const struct s3_param *km = s3_param_get(r, "key-marker");
	const struct s3_param *vm = s3_param_get(r, "version-id-marker");
	struct kura_buf b;
	char owner_id[32];
	snprintf(owner_id, sizeof(owner_id), "%llu",
		 (unsigned long long)r->tenant_id);
	kura_buf_init(&b, r->svc->max_list_response);
	s3_xml_root(&b, "ListVersionsResult");
	s3_xml_elem_str(&b, "Name", r->bucket.name);
	s3_xml_elem_enc(&b, "Prefix", q->prefix.p, q->prefix.len, q->url);
	s3_xml_elem_enc(&b, "KeyMarker", km ? km->value : "",
			km ? km->value_len : 0, q->url);
	s3_xml_elem(&b, "VersionIdMarker", vm ? vm->value : "",
		    vm ? vm->value_len : 0);
	s3_xml_elem_u64(&b, "MaxKeys", q->max);
	if (q->delimiter.len > 0)
		s3_xml_elem_enc(&b, "Delimiter", q->delimiter.p,
				q->delimiter.len, q->url);
	if (q->url)
		s3_xml_elem_str(&b, "EncodingType", "url");
	s3_xml_elem_str(&b, "IsTruncated", page->truncated ? "true" : "false");
	if (page->truncated && page->count > 0)
		write_next_markers(&b, page, q->url);
	for (size_t i = 0; i < page->count; i++)
		if (page->entries[i].row != NULL)
			write_version(&b, &page->entries[i], q->url, owner_id);
	s3_list_write_prefixes(&b, page, q->url);
	s3_xml_close(&b, "ListVersionsResult");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_list_object_versions(struct s3_req *r)
{
	struct s3_list_query q;
	struct s3_list_page page = { 0 };
	if (!s3_load_bucket(r) ||
	    !s3_list_parse(r, "max-keys",
			   "Provided max-keys not an integer or within "
			   "integer range",
			   &q) ||
	    !parse_markers(r, &q))
		return;
	if (q.max > 0 && !s3_list_walk(r, &versions, &q, &page))
		return;
	write_result(r, &q, &page);
}

/*
 * object_attributes.c — GetObjectAttributes (GET /bucket/key?attributes):
 * what x-amz-object-attributes asks for among ETag, Checksum,
 * ObjectParts, StorageClass and ObjectSize, from the object's row and
 * seal alone — no byte of data is read.
 *
 * ObjectParts (multipart objects only, as S3) pages through the parts
 * with x-amz-max-parts and x-amz-part-number-marker (the parts' upload
 * numbers).  The parts of a completed object keep no checksum of their
 * own (docs/S3.md): a Part carries PartNumber and Size.
 */
#include <stdio.h>
#include <string.h>

#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define ATTR_ETAG 1u
#define ATTR_CHECKSUM 2u
#define ATTR_PARTS 4u
#define ATTR_CLASS 8u
#define ATTR_SIZE 16u

static const struct {
	const char *name;
	unsigned bit;
} attr_names[] = {
	{ "ETag", ATTR_ETAG },	       { "Checksum", ATTR_CHECKSUM },
	{ "ObjectParts", ATTR_PARTS }, { "StorageClass", ATTR_CLASS },
	{ "ObjectSize", ATTR_SIZE },
};

/* The attributes asked for (comma-separated, names as S3 spells them);
 * responds and returns false for none or an unknown one. */
static bool parse_attributes(struct s3_req *r, unsigned *out)
{
	const struct kura_str *h = s3_header(r, "x-amz-object-attributes");
	*out = 0;
	if (h == NULL) {
		s3_error(r, S3_InvalidRequest,
			 "The x-amz-object-attributes header specifying the "
			 "attributes to be retrieved is either missing or "
			 "empty",
			 NULL);
		return false;
	}
	struct kura_str rest = *h;
	while (rest.len > 0) {
		const char *comma = memchr(rest.p, ',', rest.len);
		struct kura_str item = { rest.p,
					 comma ? (size_t)(comma - rest.p) :
						 rest.len };
		rest.p += item.len + (comma != NULL);
		rest.len -= item.len + (comma != NULL);
		while (item.len > 0 && item.p[0] == ' ') {
			item.p++;
			item.len--;
		}
		while (item.len > 0 && item.p[item.len - 1] == ' ')
			item.len--;
		unsigned bit = 0;
		for (size_t i = 0;
		     i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
			if (kura_str_eq_cstr(item, attr_names[i].name))
				bit = attr_names[i].bit;
		if (bit == 0) {
			s3_error(r, S3_InvalidArgument,
				 "Invalid attribute name specified.", NULL);
			return false;
		}
		*out |= bit;
	}
	if (*out == 0) {
		s3_error(r, S3_InvalidRequest,
			 "The x-amz-object-attributes header specifying the "
			 "attributes to be retrieved is either missing or "
			 "empty",
			 NULL);
		return false;
	}
	return true;
}

/* A numeric header no larger than max (absent: dflt); responds
 * InvalidArgument and returns false otherwise. */
static bool header_number(struct s3_req *r, const char *name, uint64_t max,
			  uint64_t dflt, uint64_t *out)
{
	const struct kura_str *h = s3_header(r, name);
	*out = dflt;
	if (h == NULL)
		return true;
	if (kura_parse_u64(h->p, h->len, max, out) != KURA_OK) {
		char msg[96];
		snprintf(msg, sizeof(msg), "Invalid %s", name);
		s3_error(r, S3_InvalidArgument, kura_pstrdup(r->pool, msg),
			 NULL);
		return false;
	}
	return true;
}

static void write_parts(struct s3_req *r, struct kura_buf *b,
			const struct kura_object *o)
{
	uint64_t max = S3_LIST_MAX, marker = 0;
	if (!header_number(r, "x-amz-max-parts", INT32_MAX, S3_LIST_MAX,
			   &max) ||
	    !header_number(r, "x-amz-part-number-marker", INT32_MAX, 0,
			   &marker))
		return;
	if (max > S3_LIST_MAX)
		max = S3_LIST_MAX;
	/* The parts are in ascending part number order. */
	uint32_t first = 0;
	while (first < o->part_count && o->parts[first].part_no <= marker)
		first++;
	uint32_t end = o->part_count - first > max ? first + (uint32_t)max :
						     o->part_count;
	s3_xml_open(b, "ObjectParts");
	s3_xml_elem_u64(b, "PartsCount", o->part_count);
	s3_xml_elem_u64(b, "PartNumberMarker", marker);
	s3_xml_elem_u64(b, "NextPartNumberMarker",
			end > first ? o->parts[end - 1].part_no : 0);
	s3_xml_elem_u64(b, "MaxParts", max);
	s3_xml_elem_str(b, "IsTruncated",
			end < o->part_count ? "true" : "false");
	for (uint32_t k = first; k < end; k++) {
		s3_xml_open(b, "Part");
		s3_xml_elem_u64(b, "PartNumber", o->parts[k].part_no);
		s3_xml_elem_u64(b, "Size", o->parts[k].size);
		s3_xml_close(b, "Part");
	}
	s3_xml_close(b, "ObjectParts");
}

void s3_get_object_attributes(struct s3_req *r)
{
	struct kura_error err = { 0 };
	struct kura_object *o = NULL;
	unsigned want = 0;
	if (!s3_load_bucket(r) || !parse_attributes(r, &want) ||
	    !s3_load_requested(r, &o))
		return;
	s3_note_version(r, o->version_uid);
	/* An SSE-C object's attributes need its key, as its HEAD does. */
	if (!s3_sse_for_read(r, o, false, &r->sse))
		return;
	enum kura_err rc = KURA_OK;
	if (want & ATTR_CHECKSUM)
		rc = s3_sum_unmask_object(r, o, r->sse.customer_key, &err);
	if (!s3_seal_ok(r, rc, &err, r->bucket.name, o->key, o->key_len,
			o->version_uid))
		return;
	bool multipart = strchr(o->etag, '-') != NULL;
	struct kura_buf b;
	kura_buf_init(&b, S3_DOC_PARTS_MAX);
	s3_xml_root(&b, "GetObjectAttributesResponse");
	if (want & ATTR_ETAG)
		s3_xml_elem_str(&b, "ETag", o->etag);
	if ((want & ATTR_CHECKSUM) && o->sum.algo != KURA_CHECKSUM_NONE) {
		s3_xml_open(&b, "Checksum");
		s3_checksum_xml(&b, &o->sum, o->part_count, true);
		s3_xml_close(&b, "Checksum");
	}
	if ((want & ATTR_PARTS) && multipart) {
		write_parts(r, &b, o);
		if (r->failed) {
			kura_buf_release(&b);
			return;
		}
	}
	if (want & ATTR_CLASS)
		s3_xml_elem_str(&b, "StorageClass", "STANDARD");
	if (want & ATTR_SIZE)
		s3_xml_elem_u64(&b, "ObjectSize", o->size);
	s3_xml_close(&b, "GetObjectAttributesResponse");
	char lm[KURA_TIME_HTTP_LEN];
	kura_time_http(o->mtime_ms, lm);
	if (s3_respond_xml(r, &b)) {
		kura_http_resp_header(r->http, "Last-Modified", lm);
		s3_sse_respond_headers(r, &r->sse);
		s3_version_headers(r, o);
	}
	kura_buf_release(&b);
}

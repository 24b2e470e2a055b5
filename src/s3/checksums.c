/*
 * checksums.c — how stored additional checksums (x-amz-checksum-*) are
 * shown: response headers on writes and on reads that ask for them
 * (x-amz-checksum-mode: ENABLED), and the Checksum* elements of XML
 * documents.  A leaf: the operations call it, it calls nothing of theirs.
 *
 * The values come out of the metadata seals (docs/FORMAT.md §10); a
 * composite value is shown as "<base64>-<parts>", as S3 does.
 */
#include <string.h>

#include "s3_int.h"
#include "kura/banned.h"

bool s3_checksum_mode(struct s3_req *r)
{
	const struct kura_str *h = s3_header(r, "x-amz-checksum-mode");
	return h != NULL && kura_str_caseeq_cstr(*h, "ENABLED");
}

enum kura_err s3_checksum_headers(struct s3_req *r,
				  const struct kura_checksum_value *v,
				  uint32_t parts)
{
	char text[KURA_CHECKSUM_TEXT_MAX];
	if (v->algo == KURA_CHECKSUM_NONE)
		return KURA_OK;
	kura_checksum_text(v, parts, text);
	enum kura_err rc = kura_http_resp_header(
		r->http, kura_checksum_name(v->algo), text);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(r->http, "x-amz-checksum-type",
					   kura_checksum_type_name(v->type));
	return rc;
}

void s3_checksum_xml(struct kura_buf *b, const struct kura_checksum_value *v,
		     uint32_t parts, bool with_type)
{
	char text[KURA_CHECKSUM_TEXT_MAX];
	if (v->algo == KURA_CHECKSUM_NONE)
		return;
	kura_checksum_text(v, parts, text);
	s3_xml_elem_str(b, kura_checksum_xml_name(v->algo), text);
	if (with_type)
		s3_xml_elem_str(b, "ChecksumType",
				kura_checksum_type_name(v->type));
}

/*
 * errors.c — S3 error responses: the table of codes, statuses and messages
 * (s3_int.h), the XML error document, and the mapping from kura errors.
 *
 * Clients see only the S3 code, a fixed message and the request id; the
 * internal detail (paths, library messages) goes to the server log with the
 * same request id, so an operator can match a client's report to a cause.
 */
#include <stdio.h>
#include <string.h>

#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

struct s3_error_info {
	const char *name;
	unsigned status;
	const char *message;
};

static const struct s3_error_info errors[] = {
#define S3_ERR_INFO_(n, code, s, m) { code, s, m },
	S3_ERROR_TABLE(S3_ERR_INFO_)
#undef S3_ERR_INFO_
};

const char *s3_error_name(enum s3_error code)
{
	return (unsigned)code < S3_ERROR_COUNT_ ? errors[code].name :
						  "InternalError";
}

unsigned s3_error_status(enum s3_error code)
{
	return (unsigned)code < S3_ERROR_COUNT_ ? errors[code].status : 500;
}

enum kura_err s3_respond(struct s3_req *r, unsigned status)
{
	struct kura_http_req *h = r->http;
	enum kura_err rc = kura_http_respond(h, status);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(h, "x-amz-request-id", h->id);
	if (rc == KURA_OK)
		rc = kura_http_resp_header(h, "x-amz-id-2", h->id);
	return rc;
}

bool s3_respond_xml(struct s3_req *r, const struct kura_buf *xml)
{
	enum kura_err rc = kura_buf_error(xml);
	if (rc != KURA_OK) {
		/* A document with holes is never sent: the writer's failure
		 * stuck in the buffer (its cap reached, or memory). */
		char detail[96];
		snprintf(detail, sizeof(detail),
			 "building the XML response: %s", kura_strerror(rc));
		s3_error(r, S3_InternalError, NULL, detail);
		return false;
	}
	if (s3_respond(r, 200) != KURA_OK ||
	    kura_http_resp_header(r->http, "Content-Type", "application/xml") !=
		    KURA_OK ||
	    kura_http_resp_body(r->http, xml->data, xml->len) != KURA_OK) {
		s3_error(r, S3_InternalError, NULL,
			 "out of memory building a response");
		return false;
	}
	return true;
}

/* The resource as S3 reports it: "/bucket/key" with the key as sent. */
static void append_resource(struct s3_req *r, struct kura_buf *b)
{
	s3_xml_raw(b, "/");
	if (r->bucket_name) {
		s3_xml_escape(b, r->bucket_name, strlen(r->bucket_name));
		if (r->key) {
			s3_xml_raw(b, "/");
			s3_xml_escape(b, r->key, r->key_len);
		}
	}
}

/* A 5xx that is the server's fault is an ERROR for the operator; a 501
 * only tells a client what kura does not build, which is not. */
static enum kura_log_level error_log_level(enum s3_error code, unsigned status)
{
	return status >= 500 && code != S3_NotImplemented ? KURA_LOG_ERROR :
							    KURA_LOG_INFO;
}

void s3_error(struct s3_req *r, enum s3_error code, const char *message,
	      const char *detail)
{
	s3_error_elem(r, code, message, detail, NULL, NULL);
}

void s3_error_elem(struct s3_req *r, enum s3_error code, const char *message,
		   const char *detail, const char *elem, const char *text)
{
	const struct s3_error_field f = { elem, text };
	s3_error_fields(r, code, message, detail, &f,
			elem != NULL && text != NULL ? 1 : 0);
}

void s3_error_fields(struct s3_req *r, enum s3_error code, const char *message,
		     const char *detail, const struct s3_error_field *fields,
		     size_t n)
{
	struct kura_http_req *h = r->http;
	struct kura_buf b;
	const char *name = s3_error_name(code);
	unsigned status = s3_error_status(code);
	r->failed = true;
	r->error_code = name;
	if (detail != NULL)
		KURA_LOG(error_log_level(code, status), h->id, "%s: %s", name,
			 detail);
	kura_buf_init(&b, S3_DOC_ERROR_MAX);
	s3_xml_decl(&b);
	s3_xml_open(&b, "Error");
	s3_xml_elem_str(&b, "Code", name);
	s3_xml_elem_str(&b, "Message",
			message ? message : errors[code].message);
	for (size_t i = 0; i < n; i++)
		s3_xml_elem_str(&b, fields[i].name, fields[i].text);
	if (r->bucket_name)
		s3_xml_elem_str(&b, "BucketName", r->bucket_name);
	if (r->key)
		s3_xml_elem(&b, "Key", r->key, r->key_len);
	s3_xml_open(&b, "Resource");
	append_resource(r, &b);
	s3_xml_close(&b, "Resource");
	s3_xml_elem_str(&b, "RequestId", h->id);
	s3_xml_elem_str(&b, "HostId", h->id);
	s3_xml_close(&b, "Error");
	if (s3_respond(r, status) == KURA_OK &&
	    kura_http_resp_header(h, "Content-Type", "application/xml") ==
		    KURA_OK &&
	    kura_buf_error(&b) == KURA_OK && !r->head)
		kura_http_resp_body(h, b.data, b.len);
	kura_buf_release(&b);
}

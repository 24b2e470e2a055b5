/*
 * xml.c — the few fields kura reads from a remote S3 service's XML
 * answers: an error's Code and Message, CreateMultipartUpload's UploadId,
 * CompleteMultipartUpload's ETag (and the Error a 200 may carry instead).
 *
 * The remote is not trusted to be well-behaved: the document is at most
 * S3_XML_MAX bytes, at most MAX_DEPTH deep, DOCTYPE declarations (and so
 * entity definitions) are refused outright, only the text of the root's
 * direct children named above is kept, and a value longer than its field
 * fails the parse instead of being cut.  Element names are compared
 * without namespace (S3 answers in its own default namespace).
 *
 * Thread-safe: each call has its own expat parser.
 */
#include <stddef.h>
#include <string.h>

#include <expat.h>

#include "s3_int.h"
#include "kura/banned.h"

#define MAX_DEPTH 16

struct parse {
	XML_Parser parser;
	struct rs3_answer *f;
	unsigned depth;
	char *field; /* the field the current element's text goes to */
	size_t field_cap;
	size_t field_len;
	bool failed;
};

static void stop(struct parse *p)
{
	p->failed = true;
	XML_StopParser(p->parser, XML_FALSE);
}

/* The field a child of the root with this name fills, NULL for none. */
static char *field_of(struct rs3_answer *f, const char *name, size_t *cap)
{
	static const struct {
		const char *name;
		size_t off, cap;
	} map[] = {
		{ "Code", offsetof(struct rs3_answer, code), S3_CODE_MAX },
		{ "Message", offsetof(struct rs3_answer, message),
		  S3_MESSAGE_MAX },
		{ "UploadId", offsetof(struct rs3_answer, upload_id),
		  S3_UPLOAD_ID_MAX },
		{ "ETag", offsetof(struct rs3_answer, etag), S3_ETAG_MAX },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0) {
			*cap = map[i].cap;
			return (char *)f + map[i].off;
		}
	return NULL;
}

static void on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
	struct parse *p = data;
	(void)attrs;
	if (++p->depth > MAX_DEPTH) {
		stop(p);
		return;
	}
	if (p->depth == 1) {
		if (strlen(name) >= sizeof(p->f->root)) {
			stop(p);
			return;
		}
		memcpy(p->f->root, name, strlen(name) + 1);
		return;
	}
	p->field = NULL;
	if (p->depth == 2)
		p->field = field_of(p->f, name, &p->field_cap);
	if (p->field != NULL) {
		p->field[0] = '\0';
		p->field_len = 0;
	}
}

static void on_end(void *data, const XML_Char *name)
{
	struct parse *p = data;
	(void)name;
	p->field = NULL;
	p->depth--;
}

static void on_text(void *data, const XML_Char *s, int len)
{
	struct parse *p = data;
	if (p->field == NULL || len <= 0)
		return;
	if ((size_t)len >= p->field_cap - p->field_len) {
		stop(p);
		return;
	}
	memcpy(p->field + p->field_len, s, (size_t)len);
	p->field_len += (size_t)len;
	p->field[p->field_len] = '\0';
}

static void on_doctype(void *data, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	stop(data);
}

enum kura_err rs3_answer_parse(const char *doc, size_t n,
			       struct rs3_answer *out, struct kura_error *err)
{
	if (n > S3_XML_MAX)
		return kura_fail(err, KURA_EPROTO,
				 "remote answer: XML larger than %u bytes",
				 S3_XML_MAX);
	struct rs3_answer f;
	memset(&f, 0, sizeof(f));
	struct parse p = { .f = &f };
	p.parser = XML_ParserCreate("UTF-8");
	if (p.parser == NULL)
		return kura_fail(err, KURA_ENOMEM, "XML parser");
	XML_SetUserData(p.parser, &p);
	XML_SetElementHandler(p.parser, on_start, on_end);
	XML_SetCharacterDataHandler(p.parser, on_text);
	XML_SetStartDoctypeDeclHandler(p.parser, on_doctype);
	enum XML_Status st =
		XML_Parse(p.parser, n ? doc : "", (int)n, XML_TRUE);
	XML_ParserFree(p.parser);
	if (st != XML_STATUS_OK || p.failed || f.root[0] == '\0')
		return kura_fail(err, KURA_EPROTO,
				 "remote answer: malformed or oversized XML");
	*out = f;
	return KURA_OK;
}

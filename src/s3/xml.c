/*
 * xml.c — S3 XML: a writer that always produces well-formed output, and a
 * reader (expat) into a small tree with hard limits on depth, element count
 * and size.  DOCTYPE declarations are refused outright, so entity expansion
 * attacks ("billion laughs") and external entities cannot happen.
 */
#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "kura/encode.h"

#include "s3_int.h"
#include "kura/banned.h"

/* The writer's appends.  A failure sticks in b (buf.h), where the
 * document's owner reads it once (s3_respond_xml), so the codes are dropped
 * here, in one place. */
static void put(struct kura_buf *b, const char *p, size_t n)
{
	KURA_IGNORE(kura_buf_add(b, p, n));
}

static void put_str(struct kura_buf *b, const char *s)
{
	KURA_IGNORE(kura_buf_addstr(b, s));
}

static void put_ch(struct kura_buf *b, char c)
{
	KURA_IGNORE(kura_buf_addch(b, c));
}

void s3_xml_decl(struct kura_buf *b)
{
	put_str(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void s3_xml_root(struct kura_buf *b, const char *name)
{
	s3_xml_decl(b);
	put_ch(b, '<');
	put_str(b, name);
	put_str(b, " xmlns=\"" S3_XMLNS "\">");
}

void s3_xml_raw(struct kura_buf *b, const char *markup)
{
	put_str(b, markup);
}

/* Tags are built by appends, not formatted: a listing writes a dozen per
 * entry, and printf's machinery cost more than the rest of the document. */
static void tag(struct kura_buf *b, const char *open, const char *name)
{
	put_str(b, open);
	put_str(b, name);
	put_ch(b, '>');
}

void s3_xml_open(struct kura_buf *b, const char *name)
{
	tag(b, "<", name);
}

void s3_xml_close(struct kura_buf *b, const char *name)
{
	tag(b, "</", name);
}

/* Length of the valid UTF-8 sequence starting at s (a byte >= 0x80), or 0
 * when there is none or it encodes U+FFFE or U+FFFF, which are UTF-8 but
 * not XML 1.0 characters (a document holding them is ill-formed). */
static size_t utf8_seq_len(const char *s, size_t avail)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = u[0] >= 0xC2 && u[0] <= 0xDF ? 2 :
		     u[0] >= 0xE0 && u[0] <= 0xEF ? 3 :
		     u[0] >= 0xF0 && u[0] <= 0xF4 ? 4 :
						    0;
	if (len == 0 || len > avail || !kura_utf8_valid(s, len))
		return 0;
	if (len == 3 && u[0] == 0xEF && u[1] == 0xBF &&
	    (u[2] == 0xBE || u[2] == 0xBF))
		return 0;
	return len;
}

void s3_xml_escape(struct kura_buf *b, const char *s, size_t n)
{
	size_t run = 0; /* bytes copied verbatim in one go */
	if (kura_buf_error(b) != KURA_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *rep = NULL;
		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		case '\r':
			rep = "&#13;";
			break;
		default:
			if (c < 0x20 && c != '\t' && c != '\n') {
				/* Not representable in XML 1.0 even as a reference;
				 * S3 clients only meet such keys with
				 * encoding-type=url.  Keep the output well-formed. */
				rep = "&#xFFFD;";
			} else if (c >= 0x80) {
				/* Bytes that are not UTF-8 (a rejected key echoed in
				 * an error) would make the document ill-formed. */
				size_t len = utf8_seq_len(s + i, n - i);
				if (len == 0) {
					rep = "&#xFFFD;";
				} else {
					run += len;
					i += len - 1;
					continue;
				}
			}
		}
		if (rep == NULL) {
			run++;
			continue;
		}
		put(b, s + i - run, run);
		put_str(b, rep);
		run = 0;
	}
	put(b, s + n - run, run);
}

void s3_xml_elem(struct kura_buf *b, const char *name, const char *text,
		 size_t len)
{
	s3_xml_open(b, name);
	s3_xml_escape(b, text, len);
	s3_xml_close(b, name);
}

void s3_xml_elem_str(struct kura_buf *b, const char *name, const char *text)
{
	s3_xml_elem(b, name, text, strlen(text));
}

void s3_xml_elem_u64(struct kura_buf *b, const char *name, uint64_t v)
{
	char digits[24];
	size_t n = sizeof(digits);
	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	s3_xml_open(b, name);
	put(b, digits + n, sizeof(digits) - n);
	s3_xml_close(b, name);
}

void s3_xml_elem_enc(struct kura_buf *b, const char *name, const char *text,
		     size_t len, bool url)
{
	if (!url) {
		s3_xml_elem(b, name, text, len);
		return;
	}
	/* Percent-encoding leaves only unreserved characters, '/' and %XY,
	 * none of which XML escapes; it fails only as b does (sticky). */
	s3_xml_open(b, name);
	KURA_IGNORE(kura_uri_encode(text, len, true, b));
	s3_xml_close(b, name);
}

/* ---- reader ---- */

struct parse_ctx {
	XML_Parser parser;
	struct kura_pool *pool;
	struct s3_xml_node *root;
	struct s3_xml_node *stack[S3_XML_MAX_DEPTH];
	struct s3_xml_node *last_child[S3_XML_MAX_DEPTH];
	int depth;
	size_t nodes;
	struct kura_buf text; /* character data of the open element */
	bool failed;
};

static void stop(struct parse_ctx *c)
{
	c->failed = true;
	XML_StopParser(c->parser, XML_FALSE);
}

static void on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
	struct parse_ctx *c = data;
	(void)attrs;
	if (c->failed)
		return;
	if (c->depth >= S3_XML_MAX_DEPTH || ++c->nodes > S3_XML_MAX_NODES) {
		stop(c);
		return;
	}
	/* Namespaces arrive as "URI|local" (separator '|'): keep the local
	 * name, which is what S3 matches on. */
	const char *local = strrchr(name, '|');
	local = local ? local + 1 : name;
	struct s3_xml_node *n = kura_palloc(c->pool, sizeof(*n));
	if (n == NULL || (n->name = kura_pstrdup(c->pool, local)) == NULL) {
		stop(c);
		return;
	}
	n->text = "";
	if (c->depth == 0) {
		if (c->root != NULL) {
			stop(c);
			return;
		}
		c->root = n;
	} else {
		struct s3_xml_node *parent = c->stack[c->depth - 1];
		if (c->last_child[c->depth - 1])
			c->last_child[c->depth - 1]->next = n;
		else
			parent->child = n;
		c->last_child[c->depth - 1] = n;
	}
	c->stack[c->depth] = n;
	c->last_child[c->depth] = NULL;
	c->depth++;
	kura_buf_reset(&c->text);
}

static void on_end(void *data, const XML_Char *name)
{
	struct parse_ctx *c = data;
	(void)name;
	if (c->failed || c->depth == 0)
		return;
	struct s3_xml_node *n = c->stack[--c->depth];
	if (n->child == NULL && c->text.len > 0) {
		n->text = kura_pstrndup(c->pool, c->text.data, c->text.len);
		if (n->text == NULL) {
			stop(c);
			return;
		}
		n->text_len = c->text.len;
	}
	kura_buf_reset(&c->text);
}

static void on_text(void *data, const XML_Char *s, int len)
{
	struct parse_ctx *c = data;
	if (c->failed || len <= 0)
		return;
	if (kura_buf_add(&c->text, s, (size_t)len) != KURA_OK)
		stop(c);
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

static void on_entity(void *data, const XML_Char *name, int is_param,
		      const XML_Char *value, int value_len,
		      const XML_Char *base, const XML_Char *sysid,
		      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	stop(data);
}

enum kura_err s3_xml_parse(const char *doc, size_t n, struct kura_pool *pool,
			   struct s3_xml_node **root)
{
	if (n > INT32_MAX)
		return KURA_ETOOBIG;
	struct parse_ctx c = { 0 };
	c.pool = pool;
	c.parser = XML_ParserCreateNS("UTF-8", '|');
	if (c.parser == NULL)
		return KURA_ENOMEM;
	kura_buf_init(&c.text, S3_XML_TEXT_MAX);
	XML_SetUserData(c.parser, &c);
	XML_SetElementHandler(c.parser, on_start, on_end);
	XML_SetCharacterDataHandler(c.parser, on_text);
	XML_SetStartDoctypeDeclHandler(c.parser, on_doctype);
	XML_SetEntityDeclHandler(c.parser, on_entity);
	enum XML_Status st = XML_Parse(c.parser, doc, (int)n, XML_TRUE);
	enum kura_err rc = KURA_OK;
	if (st != XML_STATUS_OK || c.failed || c.root == NULL || c.depth != 0)
		rc = KURA_EINVAL;
	XML_ParserFree(c.parser);
	kura_buf_release(&c.text);
	if (rc == KURA_OK)
		*root = c.root;
	return rc;
}

const struct s3_xml_node *s3_xml_child(const struct s3_xml_node *n,
				       const char *name)
{
	for (const struct s3_xml_node *c = n ? n->child : NULL; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

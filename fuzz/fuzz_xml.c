/*
 * fuzz_xml.c — libFuzzer target for s3_xml_parse (src/s3/xml.c) and the
 * writer's escaping.
 *
 * Input: an XML document as a client would send it.
 * Invariants checked: a parsed tree stays within S3_XML_MAX_DEPTH; text
 * escaped by s3_xml_escape always parses back to the same bytes when they
 * are representable in XML.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/pool.h"
#include "../src/s3/s3_int.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int depth_of(const struct s3_xml_node *n)
{
	int d = 0;
	for (const struct s3_xml_node *c = n->child; c; c = c->next) {
		int cd = depth_of(c);
		if (cd > d)
			d = cd;
	}
	return d + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct s3_xml_node *root = NULL;
	if (pool == NULL)
		return 0;
	if (s3_xml_parse((const char *)data, size, pool, &root) == KURA_OK &&
	    depth_of(root) > S3_XML_MAX_DEPTH)
		abort();

	/* The writer: escape the input as element text and parse it back. */
	struct kura_buf b;
	kura_buf_init(&b, 8 * size + 64);
	s3_xml_elem(&b, "K", (const char *)data, size);
	struct s3_xml_node *k = NULL;
	bool representable = kura_utf8_valid((const char *)data, size);
	for (size_t i = 0; i < size && representable; i++) {
		if (data[i] < 0x20 && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
			representable = false;
		/* U+FFFE and U+FFFF: UTF-8, but not XML characters. */
		if (i + 2 < size && data[i] == 0xEF && data[i + 1] == 0xBF &&
		    (data[i + 2] == 0xBE || data[i + 2] == 0xBF))
			representable = false;
	}
	if (b.data != NULL) {
		enum kura_err rc = s3_xml_parse(b.data, b.len, pool, &k);
		if (representable && (rc != KURA_OK || k->text_len != size ||
				      (size && memcmp(k->text, data, size) != 0)))
			abort();
	}
	kura_buf_release(&b);
	kura_pool_free(pool);
	return 0;
}

/*
 * test_xml.c — S3's XML (src/s3/xml.c): the writer always produces
 * well-formed output whatever the bytes (escaping, control characters), and
 * the reader builds its small tree within its limits and refuses DOCTYPEs,
 * entity declarations, excess depth and malformed input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kura/pool.h"
#include "../../src/s3/s3_int.h"
#include "kura/banned.h"

static void escape_is(const char *in, size_t n, const char *want)
{
	struct kura_buf b;
	kura_buf_init(&b, 4096);
	s3_xml_escape(&b, in, n);
	assert_int_equal(kura_buf_error(&b), KURA_OK);
	assert_non_null(b.data);
	assert_string_equal(b.data, want);
	kura_buf_release(&b);
}

static void test_escape(void **state)
{
	(void)state;
	escape_is("", 0, "");
	escape_is("plain key/with.dots", 19, "plain key/with.dots");
	escape_is("a&b<c>d\"e'f", 11, "a&amp;b&lt;c&gt;d&quot;e&apos;f");
	escape_is("\xe3\x81\x8b\xe3\x81\x8e", 6, "\xe3\x81\x8b\xe3\x81\x8e");
	escape_is("tab\tnl\n", 7, "tab\tnl\n");
	escape_is("cr\r", 3, "cr&#13;");
	/* Characters XML 1.0 cannot carry at all stay out of the document. */
	escape_is("x\x01y\x1fz", 5, "x&#xFFFD;y&#xFFFD;z");
	escape_is("nul\0end", 7, "nul&#xFFFD;end");
}

static void test_elements(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 4096);
	s3_xml_decl(&b);
	s3_xml_open(&b, "R");
	s3_xml_elem_str(&b, "Key", "a<b");
	s3_xml_elem_u64(&b, "Size", 18446744073709551615ull);
	s3_xml_elem_enc(&b, "Enc", "a b+c/d", 7, true);
	s3_xml_elem_enc(&b, "Raw", "a b", 3, false);
	s3_xml_close(&b, "R");
	assert_string_equal(
		b.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<R><Key>a&lt;b</Key><Size>18446744073709551615</Size>"
			"<Enc>a%20b%2Bc/d</Enc><Raw>a b</Raw></R>");
	kura_buf_release(&b);
}

static void test_root_and_raw(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 4096);
	s3_xml_root(&b, "Tagging");
	s3_xml_raw(&b, "<TagSet/>");
	s3_xml_close(&b, "Tagging");
	assert_int_equal(kura_buf_error(&b), KURA_OK);
	assert_string_equal(b.data,
			    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			    "<Tagging xmlns=\"" S3_XMLNS
			    "\"><TagSet/></Tagging>");
	kura_buf_release(&b);
}

/* A document that reaches its cap anywhere — a tag, escaped text, a number,
 * percent-encoded text — is dropped whole, and every later element is a
 * no-op: no document with a hole can come out of the writer. */
static void test_writer_failure_sticks(void **state)
{
	(void)state;
	static const char *const where[] = { "open", "escape", "u64", "enc" };
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		struct kura_buf b;
		kura_buf_init(&b, 32);
		s3_xml_open(&b, "R");
		switch (i) {
		case 0:
			s3_xml_open(&b, "AnElementNameLongerThanTheCap");
			break;
		case 1:
			s3_xml_elem_str(&b, "K", "a&b<c>d&e<f>g&h<i>j");
			break;
		case 2:
			s3_xml_elem_u64(&b, "Size", 18446744073709551615ull);
			s3_xml_elem_u64(&b, "Size", 1);
			break;
		case 3:
			s3_xml_elem_enc(&b, "K", "a b c d e f g h", 15, true);
			break;
		}
		if (kura_buf_error(&b) != KURA_ETOOBIG)
			fail_msg("%s past the cap: %d", where[i],
				 (int)kura_buf_error(&b));
		assert_null(b.data);
		s3_xml_elem_str(&b, "X", "");
		s3_xml_escape(&b, "x", 1);
		s3_xml_raw(&b, "<x/>");
		s3_xml_close(&b, "R");
		assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
		assert_null(b.data);
		assert_int_equal(b.len, 0);
		kura_buf_release(&b);
	}
}

/* Output that was escaped parses back to exactly the original bytes, for
 * every byte value that XML can represent. */
static void test_escape_round_trip(void **state)
{
	(void)state;
	char text[256];
	size_t n = 0;
	for (int c = 0x20; c < 0x80; c++)
		text[n++] = (char)c;
	text[n++] = '\t';
	text[n++] = '\n';
	text[n++] = '\r';
	struct kura_buf b;
	kura_buf_init(&b, 8192);
	s3_xml_elem(&b, "Key", text, n);
	struct kura_pool *pool = kura_pool_new(0);
	struct s3_xml_node *root = NULL;
	assert_int_equal(s3_xml_parse(b.data, b.len, pool, &root), KURA_OK);
	assert_string_equal(root->name, "Key");
	assert_int_equal(root->text_len, n);
	assert_memory_equal(root->text, text, n);
	kura_pool_free(pool);
	kura_buf_release(&b);
}

static void test_parse_tree(void **state)
{
	(void)state;
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part>"
		"<Part><PartNumber>2</PartNumber><ETag>\"def\"</ETag></Part>"
		"</CompleteMultipartUpload>";
	struct kura_pool *pool = kura_pool_new(0);
	struct s3_xml_node *root = NULL;
	assert_int_equal(s3_xml_parse(doc, sizeof(doc) - 1, pool, &root),
			 KURA_OK);
	assert_string_equal(root->name, "CompleteMultipartUpload");
	const struct s3_xml_node *p1 = s3_xml_child(root, "Part");
	assert_non_null(p1);
	assert_string_equal(s3_xml_child(p1, "PartNumber")->text, "1");
	assert_string_equal(s3_xml_child(p1, "ETag")->text, "\"abc\"");
	assert_non_null(p1->next);
	assert_string_equal(s3_xml_child(p1->next, "ETag")->text, "\"def\"");
	assert_null(p1->next->next);
	assert_null(s3_xml_child(root, "Missing"));
	kura_pool_free(pool);
}

static void test_parse_refuses(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"<a>",
		"<a></b>",
		"<a/><b/>",
		"not xml",
		"<a>&undefined;</a>",
		"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
		"<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>"
		"<lolz>&lol2;</lolz>",
		"<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>",
		"<a><b><c><d><e><f><g><h><i>deep</i></h></g></f></e></d></c></b></a>",
		"<a>\xff\xfe</a>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kura_pool *pool = kura_pool_new(0);
		struct s3_xml_node *root = NULL;
		if (s3_xml_parse(bad[i], strlen(bad[i]), pool, &root) !=
		    KURA_EINVAL)
			fail_msg("accepted: %s", bad[i]);
		kura_pool_free(pool);
	}
}

static void test_parse_element_limit(void **state)
{
	(void)state;
	struct kura_buf b;
	kura_buf_init(&b, 1u << 20);
	s3_xml_raw(&b, "<a>");
	for (int i = 0; i < S3_XML_MAX_NODES; i++)
		s3_xml_raw(&b, "<b/>");
	s3_xml_raw(&b, "</a>");
	assert_int_equal(kura_buf_error(&b), KURA_OK);
	struct kura_pool *pool = kura_pool_new(0);
	struct s3_xml_node *root = NULL;
	/* root + MAX children is one element too many */
	assert_int_equal(s3_xml_parse(b.data, b.len, pool, &root), KURA_EINVAL);
	kura_pool_free(pool);
	kura_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_elements),
		cmocka_unit_test(test_root_and_raw),
		cmocka_unit_test(test_writer_failure_sticks),
		cmocka_unit_test(test_escape_round_trip),
		cmocka_unit_test(test_parse_tree),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_parse_element_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

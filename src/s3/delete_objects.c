/*
 * delete_objects.c — DeleteObjects: up to 1000 keys in one XML request,
 * Content-MD5 required (as S3 requires), Quiet mode, a per-key result.
 * Each key is deleted in its own metadata transaction, so one failing key
 * never blocks the others; a key that does not exist counts as deleted.
 */
#include <stdio.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

#define MAX_KEYS 1000

static void delete_finish(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	const struct s3_xml_node *root = s3_xml_body(r, "Delete");
	if (root == NULL)
		return;
	const struct s3_xml_node *quiet_n = s3_xml_child(root, "Quiet");
	bool quiet = quiet_n && quiet_n->text_len == 4 && memcmp(quiet_n->text, "true", 4) == 0;
	size_t n = 0;
	for (const struct s3_xml_node *c = root->child; c; c = c->next)
		if (strcmp(c->name, "Object") == 0)
			n++;
	if (n == 0 || n > MAX_KEYS) {
		s3_error(r, S3_MalformedXML, NULL, n ? "more than 1000 keys" : "no keys");
		return;
	}
	struct kura_buf b;
	kura_buf_init(&b, 8u << 20);
	s3_xml_decl(&b);
	kura_buf_addstr(&b, "<DeleteResult xmlns=\"" S3_XMLNS "\">");
	for (const struct s3_xml_node *c = root->child; c; c = c->next) {
		if (strcmp(c->name, "Object") != 0)
			continue;
		const struct s3_xml_node *k = s3_xml_child(c, "Key");
		const struct s3_xml_node *ver = s3_xml_child(c, "VersionId");
		const char *code = NULL, *msg = NULL;
		if (k == NULL || k->text_len == 0) {
			s3_error(r, S3_MalformedXML, NULL, "Object without Key");
			kura_buf_release(&b);
			return;
		}
		if (k->text_len > KURA_OBJECT_KEY_MAX) {
			code = "KeyTooLongError";
			msg = "Your key is too long";
		} else if (ver != NULL && !(ver->text_len == 4 && memcmp(ver->text, "null", 4) == 0)) {
			code = "NoSuchVersion";
			msg = "The specified version does not exist.";
		} else {
			struct kura_error err = { 0 };
			enum kura_err rc = meta->ops->object_delete(meta->priv, r->bucket.id,
								    k->text, k->text_len, &err);
			if (rc != KURA_OK && rc != KURA_ENOENT) {
				kura_error(r->http->id, "DeleteObjects: %s", err.msg);
				code = "InternalError";
				msg = "We encountered an internal error. Please try again.";
			}
		}
		if (code != NULL) {
			s3_xml_open(&b, "Error");
			s3_xml_elem(&b, "Key", k->text, k->text_len);
			s3_xml_elem_str(&b, "Code", code);
			s3_xml_elem_str(&b, "Message", msg);
			s3_xml_close(&b, "Error");
		} else if (!quiet) {
			s3_xml_open(&b, "Deleted");
			s3_xml_elem(&b, "Key", k->text, k->text_len);
			s3_xml_close(&b, "Deleted");
		}
	}
	s3_xml_close(&b, "DeleteResult");
	s3_collect_garbage(r);
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_delete_objects(struct s3_req *r)
{
	if (!s3_load_bucket(r))
		return;
	if (s3_header(r, "Content-MD5") == NULL &&
	    s3_header(r, "x-amz-checksum-crc32") == NULL &&
	    s3_header(r, "x-amz-checksum-crc32c") == NULL &&
	    s3_header(r, "x-amz-checksum-sha1") == NULL &&
	    s3_header(r, "x-amz-checksum-sha256") == NULL) {
		s3_error(r, S3_InvalidRequest,
			 "Missing required header for this request: Content-Md5", NULL);
		return;
	}
	/* 1000 keys of up to 1024 bytes, escaped. */
	uint64_t max = 8u << 20;
	s3_expect_xml(r, max, delete_finish);
}

/*
 * tagging.c — GetObjectTagging, PutObjectTagging, DeleteObjectTagging.
 * Tags are at most 10 per object, keys up to 128 and values up to 256
 * characters, keys unique (S3's limits), stored as JSON with the object.
 */
#include <string.h>

#include <jansson.h>

#include "s3_int.h"
#include "kura/banned.h"

static bool load_object(struct s3_req *r, struct kura_object **o)
{
	return s3_load_bucket(r) && s3_load_requested(r, o);
}

void s3_get_object_tagging(struct s3_req *r)
{
	struct kura_object *o;
	if (!load_object(r, &o))
		return;
	json_t *tags = o->tags_json ? json_loads(o->tags_json, 0, NULL) : NULL;
	struct kura_buf b;
	const char *k;
	json_t *v;
	kura_buf_init(&b, S3_DOC_TAGGING_MAX);
	s3_xml_root(&b, "Tagging");
	s3_xml_open(&b, "TagSet");
	json_object_foreach(tags, k, v)
	{
		s3_xml_open(&b, "Tag");
		s3_xml_elem_str(&b, "Key", k);
		s3_xml_elem(&b, "Value", json_string_value(v),
			    json_string_length(v));
		s3_xml_close(&b, "Tag");
	}
	s3_xml_close(&b, "TagSet");
	s3_xml_close(&b, "Tagging");
	json_decref(tags);
	if (s3_respond_xml(r, &b))
		s3_version_headers(r, o);
	kura_buf_release(&b);
}

/* Replace the tags of the version named (the newest by default) and seal
 * it again over them.
 * The object is read (and its seal checked) first; a version replaced in
 * between is read again, as if this request had come after it. */
static void set_tags(struct s3_req *r, const char *json, unsigned status)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	enum kura_err rc = KURA_ESTATE;
	struct kura_object *o = NULL;
	for (int attempt = 0; attempt < 3 && rc == KURA_ESTATE; attempt++) {
		kura_error_clear(&err);
		if (!s3_load_requested(r, &o))
			return;
		/* The new seal replaces exactly the one read (and checked). */
		uint8_t old[KURA_SEAL_MAX];
		size_t old_len = o->seal_len;
		memcpy(old, o->seal, old_len);
		o->tags_json = json;
		if (!s3_seal_new_object(r, o))
			return;
		rc = kura_meta_object_set_tags(meta, r->bucket.id, r->key,
					       r->key_len, o->version_uid, old,
					       old_len, json, o->seal,
					       o->seal_len, o->seal_bk_id,
					       &err);
		if (rc == KURA_OK)
			s3_note_version(r, o->version_uid);
		/* The audit replay must not take a tagged older version
		 * for the newest. */
		if (rc == KURA_OK && s3_param_get(r, "versionId") != NULL)
			r->audit_detail = "{\"version_named\":true}";
	}
	if (rc == KURA_ENOENT)
		s3_error(r, S3_NoSuchKey, NULL, NULL);
	else if (rc != KURA_OK)
		s3_error_from(r, rc, &err);
	else if (s3_respond(r, status) == KURA_OK)
		s3_version_headers(r, o);
}

static void put_tagging_finish(struct s3_req *r)
{
	const struct s3_xml_node *root = s3_xml_body(r, "Tagging");
	if (root == NULL)
		return;
	const struct s3_xml_node *set = s3_xml_child(root, "TagSet");
	json_t *obj = json_object();
	if (set == NULL || obj == NULL) {
		json_decref(obj);
		s3_error(r, S3_MalformedXML, NULL, NULL);
		return;
	}
	for (const struct s3_xml_node *t = set->child; t; t = t->next) {
		const struct s3_xml_node *k = s3_xml_child(t, "Key");
		const struct s3_xml_node *v = s3_xml_child(t, "Value");
		if (strcmp(t->name, "Tag") != 0 || k == NULL || v == NULL) {
			json_decref(obj);
			s3_error(r, S3_MalformedXML, NULL, NULL);
			return;
		}
		if (!s3_tag_add(r, obj, k->text, k->text_len, v->text,
				v->text_len)) {
			json_decref(obj);
			return;
		}
	}
	const char *json = s3_tags_json(r, obj);
	json_decref(obj);
	if (!r->failed)
		set_tags(r, json, 200);
}

void s3_put_object_tagging(struct s3_req *r)
{
	struct kura_object *o;
	if (!load_object(r, &o))
		return;
	s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_tagging_finish);
}

void s3_delete_object_tagging(struct s3_req *r)
{
	if (s3_load_bucket(r))
		set_tags(r, NULL, 204);
}

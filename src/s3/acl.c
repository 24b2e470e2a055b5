/*
 * acl.c — bucket and object ACLs, answered as S3 answers for an owner-only
 * bucket: the owner has FULL_CONTROL and nobody else has anything.  Setting
 * the private canned ACL (or a policy granting only the owner) succeeds and
 * changes nothing; any other grant is refused — kura never makes data
 * public or shares it through ACLs.
 */
#include <stdio.h>
#include <string.h>

#include "s3_int.h"
#include "kura/banned.h"

/* The bucket, and the object when the request names one, must exist. */
static bool load_target(struct s3_req *r)
{
	struct kura_object *o;
	return s3_load_bucket(r) &&
	       (r->key == NULL || s3_load_requested(r, &o));
}

void s3_get_acl(struct s3_req *r)
{
	char id[32];
	struct kura_buf b;
	if (!load_target(r))
		return;
	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->tenant_id);
	kura_buf_init(&b, S3_DOC_SMALL_MAX);
	s3_xml_root(&b, "AccessControlPolicy");
	s3_xml_open(&b, "Owner");
	s3_xml_elem_str(&b, "ID", id);
	s3_xml_elem_str(&b, "DisplayName", id);
	s3_xml_close(&b, "Owner");
	s3_xml_raw(&b,
		   "<AccessControlList><Grant><Grantee "
		   "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
		   "xsi:type=\"CanonicalUser\">");
	s3_xml_elem_str(&b, "ID", id);
	s3_xml_elem_str(&b, "DisplayName", id);
	s3_xml_raw(&b, "</Grantee><Permission>FULL_CONTROL</Permission></Grant>"
		       "</AccessControlList></AccessControlPolicy>");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

/* Does the AccessControlPolicy grant anything to anyone but the owner? */
static bool grants_only_owner(struct s3_req *r, const struct s3_xml_node *root)
{
	char id[32];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->tenant_id);
	const struct s3_xml_node *acl = s3_xml_child(root, "AccessControlList");
	for (const struct s3_xml_node *g = acl ? acl->child : NULL; g;
	     g = g->next) {
		const struct s3_xml_node *grantee = s3_xml_child(g, "Grantee");
		const struct s3_xml_node *gid = s3_xml_child(grantee, "ID");
		if (gid == NULL || gid->text_len != strlen(id) ||
		    memcmp(gid->text, id, gid->text_len) != 0)
			return false;
	}
	return true;
}

static void put_acl_finish(struct s3_req *r)
{
	if (r->xml_body.len > 0) {
		const struct s3_xml_node *root =
			s3_xml_body(r, "AccessControlPolicy");
		if (root == NULL)
			return;
		if (!grants_only_owner(r, root)) {
			s3_error(
				r, S3_AccessDenied,
				"kura never grants access through ACLs; only the owner "
				"has access.",
				NULL);
			return;
		}
	}
	s3_respond(r, 200);
}

void s3_put_acl(struct s3_req *r)
{
	static const char *const grants[] = {
		"x-amz-grant-read",	    "x-amz-grant-write",
		"x-amz-grant-read-acp",	    "x-amz-grant-write-acp",
		"x-amz-grant-full-control", NULL,
	};
	if (!load_target(r))
		return;
	const struct kura_str *acl = s3_header(r, "x-amz-acl");
	if (acl && !kura_str_eq_cstr(*acl, "private") &&
	    !kura_str_eq_cstr(*acl, "bucket-owner-full-control")) {
		s3_error(r, S3_AccessDenied, "kura never makes data public.",
			 NULL);
		return;
	}
	for (size_t i = 0; grants[i]; i++) {
		if (s3_header(r, grants[i])) {
			s3_error(r, S3_AccessDenied,
				 "kura never grants access through ACLs.",
				 NULL);
			return;
		}
	}
	s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_acl_finish);
}

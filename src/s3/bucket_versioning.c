/*
 * bucket_versioning.c — PutBucketVersioning and GetBucketVersioning.
 *
 * A bucket starts unversioned; Enabled keeps every version of every key
 * (a PUT adds one, a DELETE adds a delete marker), Suspended writes the
 * null version again.  As on S3 there is no way back to unversioned, and
 * MFA Delete (which needs an MFA device kura has no notion of) is refused
 * rather than silently ignored.  A bucket with Object Lock keeps
 * versioning enabled (409 InvalidBucketState), as on S3: suspended, a
 * write would replace the null version in place.  The state is part of the bucket's row
 * MAC, so someone who can only rewrite the metadata cannot switch a
 * bucket back to replacing data in place.
 */
#include <string.h>

#include "s3_int.h"
#include "kura/banned.h"

static bool text_is(const struct s3_xml_node *n, const char *s)
{
	return n != NULL && n->text_len == strlen(s) &&
	       memcmp(n->text, s, n->text_len) == 0;
}

static void put_versioning_finish(struct s3_req *r)
{
	struct kura_error err = { 0 };
	const struct s3_xml_node *root =
		s3_xml_body(r, "VersioningConfiguration");
	if (root == NULL)
		return;
	const struct s3_xml_node *status = s3_xml_child(root, "Status");
	const struct s3_xml_node *mfa = s3_xml_child(root, "MfaDelete");
	if (mfa != NULL && !text_is(mfa, "Disabled")) {
		if (text_is(mfa, "Enabled"))
			s3_not_implemented(r, "MFA Delete");
		else
			s3_error(r, S3_MalformedXML, NULL, "bad MfaDelete");
		return;
	}
	enum kura_versioning state;
	if (text_is(status, "Enabled")) {
		state = KURA_VERSIONING_ENABLED;
	} else if (text_is(status, "Suspended")) {
		state = KURA_VERSIONING_SUSPENDED;
	} else if (status == NULL) {
		/* Nothing to change (S3 accepts a configuration with only
		 * MfaDelete). */
		s3_respond(r, 200);
		return;
	} else {
		s3_error(r, S3_MalformedXML, NULL,
			 "Status must be Enabled or "
			 "Suspended");
		return;
	}
	enum kura_err rc = kura_meta_bucket_set_versioning(
		r->svc->meta, r->bucket.id, state, &err);
	if (rc == KURA_ESTATE) /* Object Lock keeps versioning enabled */
		s3_error(r, S3_InvalidBucketState,
			 "An Object Lock configuration is present on this "
			 "bucket, so the versioning state cannot be changed.",
			 err.msg);
	else if (s3_ok(r, rc, &err, S3_NoSuchBucket)) {
		/* The state set, for kura audit verify --against-meta. */
		r->audit_detail = state == KURA_VERSIONING_ENABLED ?
					  "{\"versioning\":\"Enabled\"}" :
					  "{\"versioning\":\"Suspended\"}";
		s3_respond(r, 200);
	}
}

void s3_put_bucket_versioning(struct s3_req *r)
{
	if (s3_load_bucket(r))
		s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_versioning_finish);
}

void s3_get_bucket_versioning(struct s3_req *r)
{
	if (!s3_load_bucket(r))
		return;
	struct kura_buf b;
	kura_buf_init(&b, S3_DOC_SMALL_MAX);
	/* A bucket never versioned: S3 answers an empty configuration. */
	s3_xml_root(&b, "VersioningConfiguration");
	if (r->bucket.versioning == KURA_VERSIONING_ENABLED)
		s3_xml_elem_str(&b, "Status", "Enabled");
	else if (r->bucket.versioning == KURA_VERSIONING_SUSPENDED)
		s3_xml_elem_str(&b, "Status", "Suspended");
	s3_xml_close(&b, "VersioningConfiguration");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

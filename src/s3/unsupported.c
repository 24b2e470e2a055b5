/*
 * unsupported.c — the surface kura does not build, refused loudly.
 *
 * A request asking for a feature kura lacks must never be taken for a
 * plain one: a bucket created "with object lock" that has none is a WORM
 * trap, a PUT "at an offset" that overwrites is data loss.  So every such
 * request answers 501 NotImplemented naming the S3 operation or header it
 * asked for (logged at INFO: the client's wish, not a server fault), or the
 * error AWS itself gives (AccessDenied for public ACLs, InvalidStorageClass
 * for unknown classes).  The lists below are the whole policy, documented
 * in docs/S3.md.
 *
 * Stateless; thread-safe.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s3_int.h"
#include "kura/banned.h"

void s3_not_implemented(struct s3_req *r, const char *what)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "%s is not implemented by this server.",
		 what);
	s3_error(r, S3_NotImplemented, msg, what);
}

/* ---- sub-resources (query parameters) ---- */

enum {
	UM_GET,
	UM_PUT,
	UM_HEAD,
	UM_DELETE,
	UM_POST,
	UM_COUNT
};

struct unimplemented {
	const char *param;
	bool object; /* an object's sub-resource, else a bucket's */
	const char *op[UM_COUNT]; /* S3 operation per method, or NULL */
	const char *feature;	  /* named when the method has no operation */
};

#define GPD(get, put, del)                \
	{                                 \
		get, put, NULL, del, NULL \
	}

static const struct unimplemented subresources[] = {
	{ "policy", false, GPD(NULL, "PutBucketPolicy", NULL),
	  "Bucket policies" },
	{ "policyStatus", false, GPD("GetBucketPolicyStatus", NULL, NULL),
	  "Bucket policies" },
	{ "cors", false,
	  GPD("GetBucketCors", "PutBucketCors", "DeleteBucketCors"), "CORS" },
	{ "website", false,
	  GPD("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
	  "Website hosting" },
	{ "logging", false, GPD("GetBucketLogging", "PutBucketLogging", NULL),
	  "Access logging" },
	{ "notification", false,
	  GPD("GetBucketNotificationConfiguration",
	      "PutBucketNotificationConfiguration", NULL),
	  "Event notifications" },
	{ "replication", false,
	  GPD("GetBucketReplication", "PutBucketReplication",
	      "DeleteBucketReplication"),
	  "Replication" },
	{ "accelerate", false,
	  GPD("GetBucketAccelerateConfiguration",
	      "PutBucketAccelerateConfiguration", NULL),
	  "Transfer acceleration" },
	{ "requestPayment", false,
	  GPD("GetBucketRequestPayment", "PutBucketRequestPayment", NULL),
	  "Requester pays" },
	{ "analytics", false,
	  GPD("GetBucketAnalyticsConfiguration",
	      "PutBucketAnalyticsConfiguration",
	      "DeleteBucketAnalyticsConfiguration"),
	  "Storage class analysis" },
	{ "inventory", false,
	  GPD("GetBucketInventoryConfiguration",
	      "PutBucketInventoryConfiguration",
	      "DeleteBucketInventoryConfiguration"),
	  "Inventory" },
	{ "metrics", false,
	  GPD("GetBucketMetricsConfiguration", "PutBucketMetricsConfiguration",
	      "DeleteBucketMetricsConfiguration"),
	  "Request metrics" },
	{ "intelligent-tiering", false,
	  GPD("GetBucketIntelligentTieringConfiguration",
	      "PutBucketIntelligentTieringConfiguration",
	      "DeleteBucketIntelligentTieringConfiguration"),
	  "Intelligent-Tiering" },
	{ "ownershipControls", false,
	  GPD("GetBucketOwnershipControls", "PutBucketOwnershipControls",
	      "DeleteBucketOwnershipControls"),
	  "Ownership controls" },
	{ "publicAccessBlock", false,
	  GPD("GetPublicAccessBlock", "PutPublicAccessBlock",
	      "DeletePublicAccessBlock"),
	  "Public access block" },
	{ "tagging", false,
	  GPD("GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging"),
	  "Bucket tagging" },
	{ "session", false, GPD("CreateSession", NULL, NULL),
	  "Directory buckets" },
	{ "metadataTable",
	  false,
	  { "GetBucketMetadataTableConfiguration", NULL, NULL,
	    "DeleteBucketMetadataTableConfiguration",
	    "CreateBucketMetadataTableConfiguration" },
	  "Metadata tables" },
	{ "restore",
	  true,
	  { NULL, NULL, NULL, NULL, "RestoreObject" },
	  "Restoring archives" },
	{ "select",
	  true,
	  { NULL, NULL, NULL, NULL, "SelectObjectContent" },
	  "S3 Select" },
	{ "torrent", true, GPD("GetObjectTorrent", NULL, NULL), "BitTorrent" },
	/* GetObjectAttributes is routed before this table is asked: what
	 * remains is any other method on the sub-resource. */
	{ "attributes", true, GPD(NULL, NULL, NULL),
	  "Object attributes other than GetObjectAttributes" },
	{ "renameObject", true, GPD(NULL, "RenameObject", NULL),
	  "RenameObject" },
};

static int method_index(const char *m)
{
	static const char *const names[UM_COUNT] = { "GET", "PUT", "HEAD",
						     "DELETE", "POST" };
	for (int i = 0; i < UM_COUNT; i++)
		if (strcmp(m, names[i]) == 0)
			return i;
	return -1;
}

const char *s3_unimplemented_op(const struct s3_req *r)
{
	int m = method_index(r->http->method);
	bool object = r->key != NULL;
	for (size_t i = 0; i < sizeof(subresources) / sizeof(subresources[0]);
	     i++) {
		const struct unimplemented *u = &subresources[i];
		if (s3_param_get(r, u->param) == NULL)
			continue;
		if (u->object == object && m >= 0 && u->op[m] != NULL)
			return u->op[m];
		/* The operations kura does implement on these sub-resources
		 * (GetBucketVersioning, GetBucketPolicy, DeleteBucketPolicy,
		 * object tagging) are routed before this table is asked. */
		if (u->object == object || strcmp(u->param, "tagging") != 0)
			return u->feature;
	}
	return NULL;
}

/* ---- request headers ---- */

/* Headers that ask a write for something kura does not build. */
static const struct {
	const char *header, *what;
} refused_write_headers[] = {
	{ "x-amz-website-redirect-location",
	  "Website redirects (x-amz-website-redirect-location)" },
	{ "x-amz-grant-read", "Access grants (x-amz-grant-read)" },
	{ "x-amz-grant-write", "Access grants (x-amz-grant-write)" },
	{ "x-amz-grant-read-acp", "Access grants (x-amz-grant-read-acp)" },
	{ "x-amz-grant-write-acp", "Access grants (x-amz-grant-write-acp)" },
	{ "x-amz-grant-full-control",
	  "Access grants (x-amz-grant-full-control)" },
	/* Appending would need the old object's bytes; writing the body as
	 * a new object instead would destroy them. */
	{ "x-amz-write-offset-bytes",
	  "Appending to an object (x-amz-write-offset-bytes)" },
	{ "x-amz-server-side-encryption-context",
	  "SSE-KMS encryption context (x-amz-server-side-encryption-context)" },
};

/* AWS's storage classes.  kura stores everything one way, STANDARD; a
 * known other class is a feature it lacks, anything else a bad value. */
static const char *const storage_classes[] = {
	"REDUCED_REDUNDANCY",
	"STANDARD_IA",
	"ONEZONE_IA",
	"INTELLIGENT_TIERING",
	"GLACIER",
	"DEEP_ARCHIVE",
	"OUTPOSTS",
	"GLACIER_IR",
	"SNOW",
	"EXPRESS_ONEZONE",
};

/* x-amz-acl: kura never makes data public; private (and, on objects,
 * bucket-owner-full-control: the owner is the writer) is what it does. */
static bool acl_private(struct s3_req *r, bool object)
{
	const struct kura_str *acl = s3_header(r, "x-amz-acl");
	if (acl == NULL || kura_str_eq_cstr(*acl, "private") ||
	    (object && kura_str_eq_cstr(*acl, "bucket-owner-full-control")))
		return true;
	s3_error(r, S3_AccessDenied, "kura never makes data public.", NULL);
	return false;
}

static bool storage_class_ok(struct s3_req *r)
{
	const struct kura_str *sc = s3_header(r, "x-amz-storage-class");
	if (sc == NULL || kura_str_eq_cstr(*sc, "STANDARD"))
		return true;
	for (size_t i = 0;
	     i < sizeof(storage_classes) / sizeof(storage_classes[0]); i++) {
		if (kura_str_eq_cstr(*sc, storage_classes[i])) {
			char what[96];
			snprintf(what, sizeof(what),
				 "Storage class %s (only STANDARD is)",
				 storage_classes[i]);
			s3_not_implemented(r, what);
			return false;
		}
	}
	s3_error(r, S3_InvalidStorageClass, NULL, NULL);
	return false;
}

bool s3_check_unsupported_put_headers(struct s3_req *r)
{
	for (size_t i = 0; i < sizeof(refused_write_headers) /
				       sizeof(refused_write_headers[0]);
	     i++) {
		if (s3_header(r, refused_write_headers[i].header)) {
			s3_not_implemented(r, refused_write_headers[i].what);
			return false;
		}
	}
	return acl_private(r, true) && storage_class_ok(r);
}

/* x-amz-bucket-object-lock-enabled: true or false (bucket.c acts on it). */
static bool object_lock_ok(struct s3_req *r)
{
	const struct kura_str *v =
		s3_header(r, "x-amz-bucket-object-lock-enabled");
	if (v == NULL || (v->len == 5 && strncasecmp(v->p, "false", 5) == 0) ||
	    (v->len == 4 && strncasecmp(v->p, "true", 4) == 0))
		return true;
	s3_error(r, S3_InvalidArgument,
		 "x-amz-bucket-object-lock-enabled must be true or false.",
		 NULL);
	return false;
}

bool s3_check_unsupported_bucket_headers(struct s3_req *r)
{
	static const char *const grants[] = {
		"x-amz-grant-read",	    "x-amz-grant-write",
		"x-amz-grant-read-acp",	    "x-amz-grant-write-acp",
		"x-amz-grant-full-control",
	};
	char what[96];
	for (size_t i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
		if (s3_header(r, grants[i])) {
			snprintf(what, sizeof(what), "Access grants (%s)",
				 grants[i]);
			s3_not_implemented(r, what);
			return false;
		}
	}
	/* Every object of a kura bucket belongs to the bucket's tenant and
	 * ACLs are always private: that is BucketOwnerEnforced. */
	const struct kura_str *own = s3_header(r, "x-amz-object-ownership");
	if (own && !kura_str_eq_cstr(*own, "BucketOwnerEnforced")) {
		s3_not_implemented(
			r, "Ownership controls other than BucketOwnerEnforced "
			   "(x-amz-object-ownership)");
		return false;
	}
	return object_lock_ok(r) && acl_private(r, false);
}

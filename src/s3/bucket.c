/*
 * bucket.c — bucket operations: ListBuckets, CreateBucket, HeadBucket,
 * DeleteBucket, GetBucketLocation, GetBucketVersioning, GetBucketPolicy,
 * DeleteBucketPolicy; and the shared bucket lookup with its ownership check
 * (tenants never see each other's buckets: AccessDenied) and the client's
 * x-amz-expected-bucket-owner guard.
 *
 * Each bucket gets its own KEK in the key provider and a bucket key wrapped
 * by it; deleting the (empty) bucket destroys that KEK.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kura/auth.h"
#include "kura/encode.h"
#include "kura/kms.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "kura/placement.h"
#include "s3_int.h"
#include "kura/banned.h"

bool s3_bucket_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && c != '-' && c != '.')
			return false;
		if ((i == 0 || i == n - 1) && !alnum)
			return false;
		if (c == '.' && (name[i + 1] == '.' || name[i + 1] == '-' ||
				 (i > 0 && name[i - 1] == '-')))
			return false;
	}
	/* Not formatted as an IPv4 address. */
	unsigned a, b, c, d;
	char tail;
	if (sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4)
		return false;
	if (strncmp(name, "xn--", 4) == 0 || strncmp(name, "sthree-", 7) == 0)
		return false;
	if (n > 8 && strcmp(name + n - 8, "-s3alias") == 0)
		return false;
	if (n > 7 && strcmp(name + n - 7, "--ol-s3") == 0)
		return false;
	return true;
}

/* x-amz-expected-bucket-owner (and, for copies, x-amz-source-expected-
 * bucket-owner) is the client's guard against writing to or reading from
 * a bucket someone else owns: refused unless it names the owner.  Owner ids
 * are tenant ids (ListBuckets' Owner/ID).  A copy source is always a bucket
 * of the requester's own tenant (copy.c refuses any other), so the
 * requester's tenant is its owner too. */
static bool expected_owner_ok(struct s3_req *r)
{
	static const char *const headers[] = {
		"x-amz-expected-bucket-owner",
		"x-amz-source-expected-bucket-owner",
	};
	char id[24];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->tenant_id);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		const struct kura_str *v = s3_header(r, headers[i]);
		if (v != NULL && !kura_str_eq_cstr(*v, id)) {
			s3_error(r, S3_AccessDenied, NULL,
				 "expected bucket owner differs");
			return false;
		}
	}
	return true;
}

bool s3_load_bucket(struct s3_req *r)
{
	struct kura_error err = { 0 };
	struct kura_meta *meta = r->svc->meta;
	if (strlen(r->bucket_name) >= KURA_BUCKET_NAME_MAX) {
		s3_error(r, S3_NoSuchBucket, NULL, NULL);
		return false;
	}
	enum kura_err rc =
		kura_meta_bucket_get(meta, r->bucket_name, &r->bucket, &err);
	if (!s3_ok(r, rc, &err, S3_NoSuchBucket))
		return false;
	if (r->bucket.tenant_id != r->tenant_id) {
		s3_error(r, S3_AccessDenied, NULL,
			 "bucket belongs to another tenant");
		return false;
	}
	if (!expected_owner_ok(r))
		return false;
	r->have_bucket = true;
	return true;
}

/* ---- ListBuckets ----
 *
 * The 2024 parameters: max-buckets (1..10000), continuation-token, prefix
 * and bucket-region.  With any of them a page holds at most max-buckets
 * (default 10000) and a truncated one names the next in
 * <ContinuationToken>; without them every bucket is listed, as before they
 * existed.  The tenant's buckets come from the one metadata call that
 * ListBuckets always made (name order; the document is capped at
 * S3_DOC_BUCKETS_MAX) and are paged here, leaving the metadata interface as
 * it is; a bounded slot is the step to take if tenants come to hold very
 * many buckets.
 *
 * The token is base64 of LB_TOKEN_TAG and the last bucket name listed.  It
 * is opaque to clients, and validated (a bucket name after its tag), not
 * signed: a forged one can only make the page begin after another name,
 * and only the requester's own buckets are ever listed.
 */

#define LIST_BUCKETS_MAX 10000
#define LB_TOKEN_TAG 'B'

struct bucket_query {
	struct kura_str prefix;
	bool has_prefix;
	const struct s3_param *region;	  /* NULL: every region */
	char after[KURA_BUCKET_NAME_MAX]; /* "" for the first page */
	size_t max;			  /* 0: no limit (no parameter) */
};

static bool bad_list_argument(struct s3_req *r, const char *message,
			      const char *argument)
{
	s3_error_elem(r, S3_InvalidArgument, message, NULL, "ArgumentName",
		      argument);
	return false;
}

static bool parse_bucket_token(struct s3_req *r, const struct s3_param *p,
			       struct bucket_query *q)
{
	uint8_t raw[KURA_BUCKET_NAME_MAX + 4];
	size_t n = 0;
	if (p->value_len == 0 || p->value_len > 4 * sizeof(raw) / 3 ||
	    kura_base64_decode(p->value, p->value_len, raw, sizeof(raw), &n) !=
		    KURA_OK ||
	    n < 2 || n > KURA_BUCKET_NAME_MAX || raw[0] != LB_TOKEN_TAG)
		goto bad;
	memcpy(q->after, raw + 1, n - 1);
	q->after[n - 1] = '\0';
	if (s3_bucket_name_valid(q->after))
		return true;
bad:
	return bad_list_argument(r,
				 "The continuation token provided is incorrect",
				 "continuation-token");
}

static bool parse_bucket_query(struct s3_req *r, struct bucket_query *q)
{
	const struct s3_param *p;
	memset(q, 0, sizeof(*q));
	bool paged = false;
	if ((p = s3_param_get(r, "max-buckets")) != NULL) {
		uint64_t v;
		if (kura_parse_u64(p->value, p->value_len, LIST_BUCKETS_MAX,
				   &v) != KURA_OK ||
		    v == 0)
			return bad_list_argument(
				r,
				"Argument max-buckets must be an integer "
				"between 1 and 10000.",
				"max-buckets");
		q->max = (size_t)v;
		paged = true;
	}
	if ((p = s3_param_get(r, "continuation-token")) != NULL) {
		if (!parse_bucket_token(r, p, q))
			return false;
		paged = true;
	}
	if ((p = s3_param_get(r, "prefix")) != NULL) {
		q->prefix = (struct kura_str){ p->value, p->value_len };
		q->has_prefix = paged = true;
	}
	if ((q->region = s3_param_get(r, "bucket-region")) != NULL)
		paged = true;
	if (paged && q->max == 0)
		q->max = LIST_BUCKETS_MAX;
	return true;
}

static bool bucket_selected(const struct bucket_query *q,
			    const struct kura_bucket *b)
{
	size_t n = strlen(b->name);
	return strcmp(b->name, q->after) > 0 &&
	       (!q->has_prefix ||
		(n >= q->prefix.len &&
		 memcmp(b->name, q->prefix.p, q->prefix.len) == 0)) &&
	       (q->region == NULL ||
		(strlen(b->region) == q->region->value_len &&
		 memcmp(b->region, q->region->value, q->region->value_len) ==
			 0));
}

static void write_bucket_token(struct kura_buf *b, const char *last)
{
	uint8_t raw[KURA_BUCKET_NAME_MAX + 1];
	size_t n = strlen(last);
	raw[0] = LB_TOKEN_TAG;
	memcpy(raw + 1, last, n);
	s3_xml_open(b, "ContinuationToken");
	/* Fails only as b does, and that sticks in b. */
	KURA_IGNORE(kura_base64_encode(raw, n + 1, b));
	s3_xml_close(b, "ContinuationToken");
}

static void write_buckets(struct kura_buf *b, const struct bucket_query *q,
			  const struct kura_bucket *bs, size_t n)
{
	char ts[KURA_TIME_ISO8601_LEN];
	const char *last = NULL;
	size_t listed = 0;
	bool more = false; /* a selected bucket is left for the next page */
	s3_xml_open(b, "Buckets");
	for (size_t i = 0; i < n && !more; i++) {
		if (!bucket_selected(q, &bs[i]))
			continue;
		if (q->max > 0 && listed == q->max) {
			more = true;
			continue;
		}
		kura_time_iso8601(bs[i].created_ms, ts);
		s3_xml_open(b, "Bucket");
		s3_xml_elem_str(b, "Name", bs[i].name);
		s3_xml_elem_str(b, "CreationDate", ts);
		s3_xml_elem_str(b, "BucketRegion", bs[i].region);
		s3_xml_close(b, "Bucket");
		last = bs[i].name;
		listed++;
	}
	s3_xml_close(b, "Buckets");
	if (more)
		write_bucket_token(b, last);
	if (q->has_prefix)
		s3_xml_elem(b, "Prefix", q->prefix.p, q->prefix.len);
}

void s3_list_buckets(struct s3_req *r)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	struct kura_bucket *bs = NULL;
	size_t n = 0;
	struct kura_tenant t;
	struct bucket_query q;
	if (!parse_bucket_query(r, &q))
		return;
	enum kura_err rc = kura_meta_bucket_list(meta, r->tenant_id, r->pool,
						 &bs, &n, &err);
	if (rc == KURA_OK)
		rc = kura_meta_tenant_get(meta, r->tenant_id, &t, &err);
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	struct kura_buf b;
	char id[32];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)t.id);
	kura_buf_init(&b, S3_DOC_BUCKETS_MAX);
	s3_xml_root(&b, "ListAllMyBucketsResult");
	s3_xml_open(&b, "Owner");
	s3_xml_elem_str(&b, "ID", id);
	s3_xml_elem_str(&b, "DisplayName", t.name);
	s3_xml_close(&b, "Owner");
	write_buckets(&b, &q, bs, n);
	s3_xml_close(&b, "ListAllMyBucketsResult");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

/* ---- CreateBucket ---- */

/* CreateBucketConfiguration: a LocationConstraint naming a placement
 * policy (docs/PLACEMENT.md), or the server's region for the default one.
 * Its other elements (a directory bucket's Bucket and Location, Tags) ask
 * for what kura does not build; ignoring them would create a bucket other
 * than the one asked for.  Responds on failure. */
static bool bucket_configuration_ok(struct s3_req *r, char *placement,
				    size_t cap)
{
	const char *region = r->svc->region;
	const struct s3_xml_node *root =
		s3_xml_body(r, "CreateBucketConfiguration");
	if (root == NULL)
		return false;
	size_t seen = 0;
	for (const struct s3_xml_node *c = root->child; c; c = c->next) {
		if (strcmp(c->name, "LocationConstraint") == 0 && seen++ > 0) {
			/* Two constraints: which one was meant? */
			s3_error(r, S3_MalformedXML, NULL,
				 "more than one LocationConstraint");
			return false;
		}
		if (strcmp(c->name, "LocationConstraint") != 0) {
			char what[96];
			snprintf(what, sizeof(what),
				 "CreateBucketConfiguration <%.40s>", c->name);
			s3_not_implemented(r, what);
			return false;
		}
		if (c->text_len == 0 ||
		    (c->text_len == strlen(region) &&
		     memcmp(c->text, region, c->text_len) == 0))
			continue;
		char name[KURA_PLACEMENT_NAME_MAX];
		if (c->text_len >= sizeof(name) ||
		    memchr(c->text, '\0', c->text_len) != NULL) {
			s3_error(r, S3_InvalidLocationConstraint, NULL, NULL);
			return false;
		}
		memcpy(name, c->text, c->text_len);
		name[c->text_len] = '\0';
		if (kura_placement_policy(r->svc->placement, name) == NULL) {
			s3_error(r, S3_InvalidLocationConstraint, NULL,
				 "names neither this region nor a placement "
				 "policy");
			return false;
		}
		snprintf(placement, cap, "%s", name);
	}
	return true;
}

/* May the requesting tenant put a bucket under the policy?  Every rule
 * again (seed 001, jurisdictions) and the dedicated backends.  Responds
 * on failure. */
static bool placement_allowed(struct s3_req *r, const char *placement)
{
	struct kura_tenant t;
	struct kura_error err = { 0 };
	const struct kura_policy *pol =
		kura_placement_policy(r->svc->placement, placement);
	enum kura_err rc = pol ? kura_meta_tenant_get(r->svc->meta,
						      r->tenant_id, &t, &err) :
				 KURA_ENOENT;
	if (rc == KURA_OK)
		rc = kura_placement_allows(r->svc->placement, pol, t.name,
					   &err);
	if (rc == KURA_OK)
		return true;
	if (rc == KURA_EPERM || rc == KURA_ECONFIG || rc == KURA_ENOENT)
		s3_error(r, S3_InvalidLocationConstraint, NULL,
			 rc == KURA_ENOENT ? "no such placement policy" :
					     err.msg);
	else
		s3_error_from(r, rc, &err);
	return false;
}

static void create_bucket_finish(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_meta *meta = svc->meta;
	struct kura_error err = { 0 };
	struct kura_bucket b = { 0 };

	char placement[KURA_PLACEMENT_NAME_MAX];
	const struct kura_policy *dflt =
		kura_placement_policy(svc->placement, NULL);
	snprintf(placement, sizeof(placement), "%s", dflt->name);
	if (r->xml_body.len > 0 &&
	    !bucket_configuration_ok(r, placement, sizeof(placement)))
		return;
	if (!placement_allowed(r, placement))
		return;

	/* Answer a clash before creating any key material. */
	enum kura_err rc = kura_meta_bucket_get(meta, r->bucket_name, &b, &err);
	if (rc == KURA_OK) {
		s3_error(r,
			 b.tenant_id == r->tenant_id ?
				 S3_BucketAlreadyOwnedByYou :
				 S3_BucketAlreadyExists,
			 NULL, NULL);
		return;
	}
	if (rc != KURA_ENOENT) {
		s3_error_from(r, rc, &err);
		return;
	}
	kura_error_clear(&err);
	memset(&b, 0, sizeof(b));
	uint8_t rnd[8];
	if (kura_random_bytes(rnd, sizeof(rnd), &err) != KURA_OK) {
		s3_error_from(r, KURA_ECRYPTO, &err);
		return;
	}
	/* Random ids (never 0) are known before the row exists, so the
	 * bucket key can be bound to the id in one step. */
	for (size_t i = 0; i < 8; i++)
		b.id = b.id << 8 | rnd[i];
	b.id = (b.id >> 1) | 1;
	b.tenant_id = r->tenant_id;
	snprintf(b.name, sizeof(b.name), "%s", r->bucket_name);
	snprintf(b.region, sizeof(b.region), "%s", svc->region);
	/* The implicit policy stays unnamed, as for buckets made before
	 * placement: both follow [storage]'s local backend. */
	if (strcmp(placement, "default") != 0)
		snprintf(b.placement, sizeof(b.placement), "%s", placement);
	b.created_ms = kura_now_ms();
	b.default_sse = KURA_SSE_S3;
	/* Object Lock at creation turns versioning on, as on S3. */
	const struct kura_str *lock =
		s3_header(r, "x-amz-bucket-object-lock-enabled");
	if (lock != NULL && lock->len == 4 &&
	    strncasecmp(lock->p, "true", 4) == 0) {
		b.object_lock = true;
		b.versioning = KURA_VERSIONING_ENABLED;
		r->audit_detail = "{\"object_lock\":true}";
	}
	/* The bucket's own key (a new KEK in the provider) and its first
	 * bucket key, created with the bucket in one transaction. */
	rc = kura_kms_bucket_create(svc->kms, &b, &err);
	if (rc != KURA_OK) {
		if (rc == KURA_EEXIST) {
			/* Lost a race with another CreateBucket. */
			struct kura_bucket other;
			bool mine = kura_meta_bucket_get(meta, b.name, &other,
							 NULL) == KURA_OK &&
				    other.tenant_id == r->tenant_id;
			s3_error(r,
				 mine ? S3_BucketAlreadyOwnedByYou :
					S3_BucketAlreadyExists,
				 NULL, NULL);
		} else {
			s3_error_from(r, rc, &err);
		}
		return;
	}
	char loc[KURA_BUCKET_NAME_MAX + 1];
	snprintf(loc, sizeof(loc), "/%s", b.name);
	if (s3_respond(r, 200) != KURA_OK ||
	    kura_http_resp_header(r->http, "Location", loc) != KURA_OK)
		s3_error(r, S3_InternalError, NULL, "out of memory");
}

void s3_create_bucket(struct s3_req *r)
{
	if (!s3_bucket_name_valid(r->bucket_name)) {
		s3_error(r, S3_InvalidBucketName, NULL, NULL);
		return;
	}
	if (!s3_check_unsupported_bucket_headers(r))
		return;
	s3_expect_xml(r, r->svc->max_xml_body, create_bucket_finish);
}

void s3_head_bucket(struct s3_req *r)
{
	if (!s3_load_bucket(r))
		return;
	if (s3_respond(r, 200) != KURA_OK ||
	    kura_http_resp_header(r->http, "x-amz-bucket-region",
				  r->bucket.region) != KURA_OK)
		s3_error(r, S3_InternalError, NULL, "out of memory");
}

void s3_delete_bucket(struct s3_req *r)
{
	struct kura_service *svc = r->svc;
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r))
		return;
	enum kura_err rc =
		kura_meta_bucket_delete(svc->meta, r->bucket.id, &err);
	if (rc == KURA_ENOTEMPTY) {
		s3_error(r, S3_BucketNotEmpty, NULL, NULL);
		return;
	}
	if (!s3_ok(r, rc, &err, S3_NoSuchBucket))
		return;
	/* The bucket is gone and held no objects: its own key can go too
	 * (a tenant-wide key stays: other buckets use it). */
	struct kura_key k;
	kura_error_clear(&err);
	if (kura_meta_key_get(svc->meta, r->bucket.key_id, &k, &err) ==
		    KURA_OK &&
	    k.kind == KURA_KEY_BUCKET &&
	    kura_kms_key_destroy(svc->kms, k.id, NULL, &err) != KURA_OK)
		kura_warn(r->http->id,
			  "bucket '%s' deleted but its key '%s' was not "
			  "destroyed: %s",
			  r->bucket.name, k.name, err.msg);
	s3_respond(r, 204);
}

void s3_get_bucket_location(struct s3_req *r)
{
	if (!s3_load_bucket(r))
		return;
	struct kura_buf b;
	kura_buf_init(&b, S3_DOC_SMALL_MAX);
	s3_xml_root(&b, "LocationConstraint");
	/* A placement policy the bucket follows is its location. */
	if (r->bucket.placement[0] != '\0')
		s3_xml_escape(&b, r->bucket.placement,
			      strlen(r->bucket.placement));
	/* S3 reports us-east-1 as an empty constraint. */
	else if (strcmp(r->bucket.region, "us-east-1") != 0)
		s3_xml_escape(&b, r->bucket.region, strlen(r->bucket.region));
	s3_xml_close(&b, "LocationConstraint");
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

/* ---- bucket policies ---- */

/* kura has no bucket policies (access is the owning tenant's alone), so
 * every bucket is one "without a policy": AWS answers that with 404
 * NoSuchBucketPolicy, and deleting the policy that is not there with 204.
 * PutBucketPolicy is NotImplemented (unsupported.c). */
void s3_get_bucket_policy(struct s3_req *r)
{
	if (s3_load_bucket(r))
		s3_error(r, S3_NoSuchBucketPolicy, NULL, NULL);
}

void s3_delete_bucket_policy(struct s3_req *r)
{
	if (s3_load_bucket(r))
		s3_respond(r, 204);
}

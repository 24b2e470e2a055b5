/*
 * lifecycle.c — Put/Get/DeleteBucketLifecycleConfiguration and the
 * x-amz-expiration header of PUT, HEAD and GET.
 *
 * The configuration is read and checked by lifecycle_xml.c, stored as its
 * canonical JSON with the bucket (meta.h bucket_set_lifecycle: its digest
 * is under the bucket's row MAC, so a rule planted in the database reads
 * as an integrity failure, never as a rule), and applied by the daemon's
 * lifecycle job (src/daemon/lifecycle_job.c).  A configuration replaces
 * the previous one whole, as on S3.
 *
 * Thread-safe (per request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

static void put_lifecycle_finish(struct s3_req *r)
{
	struct kura_error err = { 0 };
	struct kura_lc_config c;
	struct s3_lc_fault f;
	const struct s3_xml_node *root =
		s3_xml_body(r, "LifecycleConfiguration");
	if (root == NULL)
		return;
	if (!s3_lc_from_xml(root, r->pool, &c, &f)) {
		s3_error(r, f.code, f.msg[0] ? f.msg : NULL, NULL);
		return;
	}
	char *json = kura_lc_to_json(&c);
	if (json == NULL) {
		s3_error(r, S3_InternalError, NULL, "lifecycle JSON");
		return;
	}
	enum kura_err rc = kura_meta_bucket_set_lifecycle(
		r->svc->meta, r->bucket.id, json, &err);
	free(json);
	if (s3_ok(r, rc, &err, S3_NoSuchBucket))
		s3_respond(r, 200);
}

void s3_put_bucket_lifecycle(struct s3_req *r)
{
	if (s3_load_bucket(r) && s3_body_digest_required(r))
		s3_expect_xml(r, S3_BODY_LIFECYCLE_MAX, put_lifecycle_finish);
}

/* The bucket's configuration into c (from r->pool); false when it has none
 * or it cannot be read (answered when answer is set). */
static bool load_config(struct s3_req *r, struct kura_lc_config *c, bool answer)
{
	struct kura_error err = { 0 };
	char *text = NULL;
	enum kura_err rc = kura_meta_bucket_get_lifecycle(
		r->svc->meta, r->bucket.id, &text, &err);
	if (rc == KURA_OK) {
		rc = kura_lc_from_json(text, strlen(text), r->pool, c, &err);
		/* Text under a valid MAC that does not parse: not a rule. */
		if (rc == KURA_EINVAL)
			rc = kura_fail(&err, KURA_EINTEGRITY, "%s", err.msg);
	}
	free(text);
	if (rc != KURA_OK && answer)
		s3_ok(r, rc, &err, S3_NoSuchLifecycleConfiguration);
	return rc == KURA_OK;
}

void s3_get_bucket_lifecycle(struct s3_req *r)
{
	struct kura_lc_config c;
	struct kura_buf b;
	if (!s3_load_bucket(r))
		return;
	if (!r->bucket.has_lifecycle) {
		s3_error(r, S3_NoSuchLifecycleConfiguration, NULL, NULL);
		return;
	}
	if (!load_config(r, &c, true))
		return;
	kura_buf_init(&b, S3_DOC_LIFECYCLE_MAX);
	s3_lc_to_xml(&b, &c);
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_delete_bucket_lifecycle(struct s3_req *r)
{
	struct kura_error err = { 0 };
	if (!s3_load_bucket(r))
		return;
	enum kura_err rc = kura_meta_bucket_set_lifecycle(
		r->svc->meta, r->bucket.id, NULL, &err);
	if (s3_ok(r, rc, &err, S3_NoSuchBucket))
		s3_respond(r, 204);
}

/* ---- x-amz-expiration ---- */

/* A rule ID as a header value: bytes a header cannot carry (controls, the
 * quote that ends the value, the percent that starts an escape) are
 * percent-encoded, so an ID can never add a header. */
static void header_id(const char *id, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)id;
	     *p && o + 4 < cap; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '%') {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
}

void s3_expiration_header(struct s3_req *r, const struct kura_object *o)
{
	struct kura_lc_config c;
	const struct kura_lc_rule *best = NULL;
	int64_t when = INT64_MAX;
	if (!r->bucket.has_lifecycle || o->delete_marker ||
	    !load_config(r, &c, false))
		return;
	for (size_t i = 0; i < c.n; i++) {
		const struct kura_lc_rule *rule = &c.rules[i];
		if (!rule->enabled || !kura_lc_matches(rule, o->key, o->key_len,
						       o->size, o->tags_json))
			continue;
		int64_t t = kura_lc_expiry_ms(rule, o->mtime_ms,
					      r->svc->lifecycle_day_ms);
		if (t < when) {
			when = t;
			best = rule;
		}
	}
	if (best == NULL)
		return;
	char date[KURA_TIME_HTTP_LEN], id[3 * KURA_LC_ID_MAX * 4 + 1];
	char value[sizeof(date) + sizeof(id) + 40];
	kura_time_http(when, date);
	header_id(best->id, id, sizeof(id));
	snprintf(value, sizeof(value), "expiry-date=\"%s\", rule-id=\"%s\"",
		 date, id);
	/* Advice only: an answer without it is still right. */
	KURA_IGNORE(kura_http_resp_header(r->http, "x-amz-expiration", value));
}

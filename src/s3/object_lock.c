/*
 * object_lock.c — Object Lock (WORM): a bucket's configuration and default
 * retention (Put/GetObjectLockConfiguration), a version's retention and
 * legal hold (Put/GetObjectRetention, Put/GetObjectLegalHold, the
 * x-amz-object-lock-* headers of writes), and the rule every path that
 * removes a version checks (kura_version_locked, answered by
 * s3_lock_denied).
 *
 * Enforcement, not a stored setting: a locked version — a legal hold, or
 * retention not yet ended — is never removed by any S3 call; the metadata
 * store refuses it again for every other caller (meta.h object_delete,
 * bucket_purge), and the settings are sealed with the version, so a
 * metadata edit that drops them fails the seal instead of unlocking.
 * COMPLIANCE retention can be extended and never shortened, by anyone;
 * GOVERNANCE retention can be shortened or removed only with
 * x-amz-bypass-governance-retention: true.  Until kura has policies (a
 * later issue) every credential of the bucket's tenant may bypass; the
 * tenant's owner holds them all.
 *
 * Thread-safe (per request).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define DAY_MS (86400ll * 1000)

static const char *mode_name(enum kura_lock_mode m)
{
	return m == KURA_LOCK_COMPLIANCE ? "COMPLIANCE" :
	       m == KURA_LOCK_GOVERNANCE ? "GOVERNANCE" :
					   "";
}

static bool parse_mode(const char *p, size_t n, enum kura_lock_mode *m)
{
	if (n == 10 && memcmp(p, "GOVERNANCE", 10) == 0)
		*m = KURA_LOCK_GOVERNANCE;
	else if (n == 10 && memcmp(p, "COMPLIANCE", 10) == 0)
		*m = KURA_LOCK_COMPLIANCE;
	else
		return false;
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff...]Z" in milliseconds. */
static bool parse_date_ms(const char *p, size_t n, int64_t *ms)
{
	int64_t secs;
	if (kura_time_parse_iso8601(p, n, &secs) != KURA_OK ||
	    secs > INT64_MAX / 1000 - 1)
		return false;
	*ms = secs * 1000;
	/* Milliseconds of the fraction, if any: "SS.fff". */
	for (size_t i = 20, f = 100; i + 1 < n && f > 0; i++, f /= 10)
		*ms += (p[i] - '0') * (int64_t)f;
	return true;
}

static bool is_true(const struct kura_str *v)
{
	return v != NULL && v->len == 4 && strncasecmp(v->p, "true", 4) == 0;
}

bool s3_bypass_governance(struct s3_req *r)
{
	return is_true(s3_header(r, "x-amz-bypass-governance-retention"));
}

/* ---- writes: the x-amz-object-lock-* headers and the default ---- */

static bool lock_headers(struct s3_req *r, struct s3_lock *out, bool *any)
{
	const struct kura_str *mode = s3_header(r, "x-amz-object-lock-mode");
	const struct kura_str *until =
		s3_header(r, "x-amz-object-lock-retain-until-date");
	const struct kura_str *hold =
		s3_header(r, "x-amz-object-lock-legal-hold");
	*any = mode || until || hold;
	if ((mode == NULL) != (until == NULL)) {
		s3_error(r, S3_InvalidArgument,
			 "x-amz-object-lock-retain-until-date and "
			 "x-amz-object-lock-mode must both be supplied",
			 NULL);
		return false;
	}
	if (mode != NULL && !parse_mode(mode->p, mode->len, &out->mode)) {
		s3_error(r, S3_InvalidArgument, "Unknown wormMode directive.",
			 NULL);
		return false;
	}
	if (until != NULL &&
	    !parse_date_ms(until->p, until->len, &out->until_ms)) {
		s3_error(r, S3_InvalidArgument,
			 "The retain until date is not valid.", NULL);
		return false;
	}
	if (until != NULL && out->until_ms <= kura_now_ms()) {
		s3_error(r, S3_InvalidArgument,
			 "The retain until date must be in the future!", NULL);
		return false;
	}
	if (hold != NULL && !kura_str_eq_cstr(*hold, "ON") &&
	    !kura_str_eq_cstr(*hold, "OFF")) {
		s3_error(r, S3_InvalidArgument,
			 "Legal Hold must be either of 'ON' or 'OFF'", NULL);
		return false;
	}
	out->legal_hold = hold != NULL && kura_str_eq_cstr(*hold, "ON");
	return true;
}

bool s3_lock_for_write(struct s3_req *r, struct s3_lock *out, bool with_default)
{
	bool any = false;
	memset(out, 0, sizeof(*out));
	if (!lock_headers(r, out, &any))
		return false;
	if (any && !r->bucket.object_lock) {
		s3_error(r, S3_InvalidRequest,
			 "Bucket is missing Object Lock Configuration", NULL);
		return false;
	}
	if (with_default)
		s3_lock_default(r, out);
	return true;
}

void s3_lock_default(struct s3_req *r, struct s3_lock *out)
{
	const struct kura_bucket *b = &r->bucket;
	/* The bucket's default retention, unless the write names its own;
	 * counted from now, when the version is made. */
	if (out->mode == KURA_LOCK_NONE && b->object_lock &&
	    b->lock_default_mode != KURA_LOCK_NONE) {
		int64_t days = b->lock_default_days > 0 ?
				       (int64_t)b->lock_default_days :
				       (int64_t)b->lock_default_years * 365;
		out->mode = b->lock_default_mode;
		out->until_ms = kura_now_ms() + days * DAY_MS;
	}
}

void s3_lock_headers(struct s3_req *r, const struct kura_object *o)
{
	char until[KURA_TIME_ISO8601_LEN];
	/* Extra detail of an answer already decided: a dropped header
	 * leaves the object itself right. */
	if (o->lock_mode != KURA_LOCK_NONE) {
		kura_time_iso8601(o->lock_until_ms, until);
		KURA_IGNORE(kura_http_resp_header(r->http,
						  "x-amz-object-lock-mode",
						  mode_name(o->lock_mode)));
		KURA_IGNORE(kura_http_resp_header(
			r->http, "x-amz-object-lock-retain-until-date", until));
	}
	if (o->legal_hold || r->bucket.object_lock)
		KURA_IGNORE(kura_http_resp_header(
			r->http, "x-amz-object-lock-legal-hold",
			o->legal_hold ? "ON" : "OFF"));
}

void s3_lock_denied(struct s3_req *r, const char *detail)
{
	s3_error(r, S3_AccessDenied, S3_LOCK_DENIED, detail);
	r->audit_detail = "{\"refused\":\"object lock\"}";
}

/* ---- the bucket's configuration ---- */

static bool default_retention(struct s3_req *r, const struct s3_xml_node *rule,
			      struct kura_bucket *b)
{
	const struct s3_xml_node *dr = s3_xml_child(rule, "DefaultRetention");
	const struct s3_xml_node *mode = s3_xml_child(dr, "Mode");
	const struct s3_xml_node *days = s3_xml_child(dr, "Days");
	const struct s3_xml_node *years = s3_xml_child(dr, "Years");
	uint64_t n = 0;
	if (dr == NULL || mode == NULL ||
	    !parse_mode(mode->text, mode->text_len, &b->lock_default_mode) ||
	    (days == NULL) == (years == NULL)) {
		s3_error(r, S3_MalformedXML, NULL,
			 "DefaultRetention needs a Mode and Days or Years");
		return false;
	}
	const struct s3_xml_node *period = days ? days : years;
	uint64_t max = days ? KURA_LOCK_DAYS_MAX : KURA_LOCK_DAYS_MAX / 365;
	if (kura_parse_u64(period->text, period->text_len, max, &n) !=
		    KURA_OK ||
	    n == 0) {
		s3_error(r, S3_InvalidArgument,
			 "Default retention period must be a positive integer "
			 "value.",
			 NULL);
		return false;
	}
	if (days)
		b->lock_default_days = (uint32_t)n;
	else
		b->lock_default_years = (uint32_t)n;
	return true;
}

static void put_lock_config_finish(struct s3_req *r)
{
	struct kura_error err = { 0 };
	const struct s3_xml_node *root =
		s3_xml_body(r, "ObjectLockConfiguration");
	if (root == NULL)
		return;
	const struct s3_xml_node *en = s3_xml_child(root, "ObjectLockEnabled");
	const struct s3_xml_node *rule = s3_xml_child(root, "Rule");
	if (en == NULL || en->text_len != 7 ||
	    memcmp(en->text, "Enabled", 7) != 0) {
		s3_error(r, S3_MalformedXML, NULL,
			 "ObjectLockEnabled must be Enabled");
		return;
	}
	struct kura_bucket b = r->bucket;
	b.lock_default_mode = KURA_LOCK_NONE;
	b.lock_default_days = b.lock_default_years = 0;
	if (rule != NULL && !default_retention(r, rule, &b))
		return;
	if (r->bucket.versioning != KURA_VERSIONING_ENABLED) {
		s3_error(r, S3_InvalidBucketState,
			 "Versioning must be 'Enabled' on the bucket to apply "
			 "a Object Lock configuration",
			 NULL);
		return;
	}
	enum kura_err rc =
		kura_meta_bucket_set_object_lock(r->svc->meta, &b, &err);
	if (rc == KURA_ESTATE)
		s3_error(r, S3_InvalidBucketState, NULL, err.msg);
	else if (s3_ok(r, rc, &err, S3_NoSuchBucket))
		s3_respond(r, 200);
}

void s3_put_object_lock_config(struct s3_req *r)
{
	if (s3_load_bucket(r))
		s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_lock_config_finish);
}

void s3_get_object_lock_config(struct s3_req *r)
{
	const struct kura_bucket *b = &r->bucket;
	if (!s3_load_bucket(r))
		return;
	if (!b->object_lock) {
		s3_error(r, S3_ObjectLockConfigurationNotFoundError, NULL,
			 NULL);
		return;
	}
	struct kura_buf x;
	kura_buf_init(&x, S3_DOC_SMALL_MAX);
	s3_xml_root(&x, "ObjectLockConfiguration");
	s3_xml_elem_str(&x, "ObjectLockEnabled", "Enabled");
	if (b->lock_default_mode != KURA_LOCK_NONE) {
		s3_xml_open(&x, "Rule");
		s3_xml_open(&x, "DefaultRetention");
		s3_xml_elem_str(&x, "Mode", mode_name(b->lock_default_mode));
		if (b->lock_default_days > 0)
			s3_xml_elem_u64(&x, "Days", b->lock_default_days);
		else
			s3_xml_elem_u64(&x, "Years", b->lock_default_years);
		s3_xml_close(&x, "DefaultRetention");
		s3_xml_close(&x, "Rule");
	}
	s3_xml_close(&x, "ObjectLockConfiguration");
	s3_respond_xml(r, &x);
	kura_buf_release(&x);
}

/* ---- a version's retention and legal hold ---- */

/* The version the request names, in a bucket with Object Lock. */
static bool load_locked_bucket_version(struct s3_req *r, struct kura_object **o)
{
	if (!s3_load_bucket(r))
		return false;
	if (!r->bucket.object_lock) {
		s3_error(r, S3_InvalidRequest,
			 "Bucket is missing Object Lock Configuration", NULL);
		return false;
	}
	return s3_load_requested(r, o);
}

/* A retention change allowed by S3's rules, from o's to want's: anything
 * once retention ended; while it runs, only as strict or stricter (a
 * later date, GOVERNANCE to COMPLIANCE) — or weaker GOVERNANCE with the
 * bypass header. */
static bool retention_change_ok(struct s3_req *r, const struct kura_object *o,
				const struct kura_object *want)
{
	bool active = o->lock_mode != KURA_LOCK_NONE &&
		      o->lock_until_ms > kura_now_ms();
	bool weaker = want->lock_mode == KURA_LOCK_NONE ||
		      want->lock_until_ms < o->lock_until_ms ||
		      (o->lock_mode == KURA_LOCK_COMPLIANCE &&
		       want->lock_mode == KURA_LOCK_GOVERNANCE);
	if (!active || !weaker ||
	    (o->lock_mode == KURA_LOCK_GOVERNANCE && s3_bypass_governance(r)))
		return true;
	s3_lock_denied(r, "retention may not be shortened or removed");
	return false;
}

/* Re-seal o with its new lock settings and store them, while the row is
 * the one read (a concurrent change: read again, up to 3 times). */
static enum kura_err store_lock(struct s3_req *r, struct kura_object *o,
				const struct kura_object *want,
				struct kura_error *err)
{
	uint8_t old[KURA_SEAL_MAX];
	size_t old_len = o->seal_len;
	memcpy(old, o->seal, old_len);
	o->lock_mode = want->lock_mode;
	o->lock_until_ms = want->lock_until_ms;
	o->legal_hold = want->legal_hold;
	enum kura_err rc = kura_seal_object(&r->seal, &r->bucket, o, err);
	if (rc == KURA_OK)
		rc = kura_meta_object_set_lock(r->svc->meta, o, old, old_len,
					       err);
	return rc;
}

static void record_lock(struct s3_req *r, const struct kura_object *o)
{
	char until[KURA_TIME_ISO8601_LEN] = "";
	char *d = kura_palloc(r->pool, 192);
	if (o->lock_mode != KURA_LOCK_NONE)
		kura_time_iso8601(o->lock_until_ms, until);
	if (d == NULL) {
		r->audit_lost = true;
		return;
	}
	/* version_named: the audit replay must not take a named older
	 * version for the newest (src/cli/audit_meta.c). */
	snprintf(d, 192,
		 "{\"lock_mode\":\"%s\",\"retain_until\":\"%s\","
		 "\"legal_hold\":%s%s}",
		 mode_name(o->lock_mode), until,
		 o->legal_hold ? "true" : "false",
		 s3_param_get(r, "versionId") != NULL ?
			 ",\"version_named\":true" :
			 "");
	r->audit_detail = d;
}

/* Apply a change (retention or legal hold, by `apply`) to the version. */
static void change_lock(struct s3_req *r,
			bool (*apply)(struct s3_req *r,
				      const struct kura_object *o,
				      struct kura_object *want, void *ctx),
			void *ctx)
{
	struct kura_error err = { 0 };
	enum kura_err rc = KURA_ESTATE;
	struct kura_object *o = NULL;
	for (int i = 0; i < 3 && rc == KURA_ESTATE; i++) {
		struct kura_object want;
		kura_error_clear(&err);
		if (!load_locked_bucket_version(r, &o))
			return;
		want = *o;
		if (!apply(r, o, &want, ctx))
			return;
		rc = store_lock(r, o, &want, &err);
	}
	if (rc == KURA_ENOENT) {
		s3_error(r, S3_NoSuchVersion, NULL, err.msg);
		return;
	}
	if (rc != KURA_OK) {
		s3_error_from(r, rc, &err);
		return;
	}
	s3_note_version(r, o->version_uid);
	s3_note_row(r, r->bucket.tenant_id, o);
	record_lock(r, o);
	if (s3_respond(r, 200) == KURA_OK)
		s3_version_headers(r, o);
}

static bool apply_retention(struct s3_req *r, const struct kura_object *o,
			    struct kura_object *want, void *ctx)
{
	const struct s3_xml_node *root = ctx;
	const struct s3_xml_node *mode = s3_xml_child(root, "Mode");
	const struct s3_xml_node *until = s3_xml_child(root, "RetainUntilDate");
	if ((mode == NULL) != (until == NULL)) {
		s3_error(r, S3_MalformedXML, NULL,
			 "Mode and RetainUntilDate go together");
		return false;
	}
	want->lock_mode = KURA_LOCK_NONE;
	want->lock_until_ms = 0;
	if (mode != NULL &&
	    (!parse_mode(mode->text, mode->text_len, &want->lock_mode) ||
	     !parse_date_ms(until->text, until->text_len,
			    &want->lock_until_ms))) {
		s3_error(r, S3_MalformedXML, NULL, "bad Mode or date");
		return false;
	}
	if (mode != NULL && want->lock_until_ms <= kura_now_ms()) {
		s3_error(r, S3_InvalidArgument,
			 "The retain until date must be in the future!", NULL);
		return false;
	}
	return retention_change_ok(r, o, want);
}

static void put_retention_finish(struct s3_req *r)
{
	const struct s3_xml_node *root = s3_xml_body(r, "Retention");
	if (root != NULL)
		change_lock(r, apply_retention, (void *)root);
}

void s3_put_object_retention(struct s3_req *r)
{
	struct kura_object *o;
	if (load_locked_bucket_version(r, &o))
		s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_retention_finish);
}

void s3_get_object_retention(struct s3_req *r)
{
	struct kura_object *o;
	char until[KURA_TIME_ISO8601_LEN];
	if (!load_locked_bucket_version(r, &o))
		return;
	if (o->lock_mode == KURA_LOCK_NONE) {
		s3_error(r, S3_NoSuchObjectLockConfiguration, NULL, NULL);
		return;
	}
	kura_time_iso8601(o->lock_until_ms, until);
	struct kura_buf x;
	kura_buf_init(&x, S3_DOC_SMALL_MAX);
	s3_xml_root(&x, "Retention");
	s3_xml_elem_str(&x, "Mode", mode_name(o->lock_mode));
	s3_xml_elem_str(&x, "RetainUntilDate", until);
	s3_xml_close(&x, "Retention");
	s3_respond_xml(r, &x);
	kura_buf_release(&x);
}

static bool apply_legal_hold(struct s3_req *r, const struct kura_object *o,
			     struct kura_object *want, void *ctx)
{
	const struct s3_xml_node *status = s3_xml_child(ctx, "Status");
	(void)o;
	if (status != NULL && status->text_len == 2 &&
	    memcmp(status->text, "ON", 2) == 0)
		want->legal_hold = true;
	else if (status != NULL && status->text_len == 3 &&
		 memcmp(status->text, "OFF", 3) == 0)
		want->legal_hold = false;
	else {
		s3_error(r, S3_MalformedXML, NULL, "Status must be ON or OFF");
		return false;
	}
	return true;
}

static void put_legal_hold_finish(struct s3_req *r)
{
	const struct s3_xml_node *root = s3_xml_body(r, "LegalHold");
	if (root != NULL)
		change_lock(r, apply_legal_hold, (void *)root);
}

void s3_put_object_legal_hold(struct s3_req *r)
{
	struct kura_object *o;
	if (load_locked_bucket_version(r, &o))
		s3_expect_xml(r, S3_BODY_CONFIG_MAX, put_legal_hold_finish);
}

void s3_get_object_legal_hold(struct s3_req *r)
{
	struct kura_object *o;
	if (!load_locked_bucket_version(r, &o))
		return;
	struct kura_buf x;
	kura_buf_init(&x, S3_DOC_SMALL_MAX);
	s3_xml_root(&x, "LegalHold");
	s3_xml_elem_str(&x, "Status", o->legal_hold ? "ON" : "OFF");
	s3_xml_close(&x, "LegalHold");
	s3_respond_xml(r, &x);
	kura_buf_release(&x);
}

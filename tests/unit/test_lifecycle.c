/*
 * test_lifecycle.c — the lifecycle rule model: XML read into rules
 * (src/s3/lifecycle_xml.c) with S3's answer for each fault, the canonical
 * JSON written and read back to the same rules (src/s3/lifecycle_rules.c),
 * a stored text that breaks a limit refused, and the matcher and the date
 * arithmetic the job and x-amz-expiration share.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kura/daemon.h"
#include "kura/lifecycle.h"
#include "kura/pool.h"
#include "../../src/s3/s3_int.h"
#include "kura/banned.h"

#define NS "<LifecycleConfiguration>"
#define END "</LifecycleConfiguration>"

/* Parse doc; *f holds the fault when it returns false. */
static bool parse(struct kura_pool *pool, const char *doc,
		  struct kura_lc_config *c, struct s3_lc_fault *f)
{
	struct s3_xml_node *root = NULL;
	assert_int_equal(s3_xml_parse(doc, strlen(doc), pool, &root), KURA_OK);
	return s3_lc_from_xml(root, pool, c, f);
}

static void refused(const char *doc, enum s3_error code, const char *msg)
{
	struct kura_pool *pool = kura_pool_new(4096);
	struct kura_lc_config c;
	struct s3_lc_fault f;
	assert_false(parse(pool, doc, &c, &f));
	assert_true(f.set);
	assert_int_equal(f.code, code);
	if (msg != NULL)
		assert_string_equal(f.msg, msg);
	kura_pool_free(pool);
}

static void test_faults(void **state)
{
	(void)state;
	refused(NS END, S3_MalformedXML, NULL);
	refused(NS
		"<Rule><ID>a</ID><Filter/><Status>Enabled</Status></Rule>" END,
		S3_InvalidRequest,
		"At least one action needs to be specified in a rule");
	refused(NS "<Rule><Filter/><Status>Enabled</Status><Expiration><Days>-1"
		   "</Days></Expiration></Rule>" END,
		S3_InvalidArgument,
		"'Days' for Expiration action must be a positive integer");
	refused(NS "<Rule><Filter/><Status>Enabled</Status><Expiration><Days>"
		   "99999999999999999999</Days></Expiration></Rule>" END,
		S3_MalformedXML, NULL);
	refused(NS "<Rule><Filter/><Status>Enabled</Status><Expiration><Date>"
		   "2030-01-01T00:00:00.001Z</Date></Expiration></Rule>" END,
		S3_InvalidArgument, "'Date' must be at midnight GMT");
	refused(NS "<Rule><Filter><And></And></Filter><Status>Enabled</Status>"
		   "<Expiration><Days>1</Days></Expiration></Rule>" END,
		S3_MalformedXML, NULL);
	refused(NS "<Rule><Filter/><Status>Enabled</Status><Transition><Days>1"
		   "</Days><StorageClass>GLACIER</StorageClass></Transition>"
		   "</Rule>" END,
		S3_NotImplemented, NULL);
}

static const char *const round_trip_doc = NS
	"<Rule><ID>one</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key>"
	"<Value>v</Value></Tag><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan>"
	"</And></Filter><Status>Enabled</Status><Expiration><Days>3</Days>"
	"</Expiration><NoncurrentVersionExpiration><NoncurrentDays>2"
	"</NoncurrentDays><NewerNoncurrentVersions>4</NewerNoncurrentVersions>"
	"</NoncurrentVersionExpiration></Rule>"
	"<Rule><Filter><Prefix>m/</Prefix></Filter><Status>Disabled</Status>"
	"<Expiration><ExpiredObjectDeleteMarker>true"
	"</ExpiredObjectDeleteMarker></Expiration>"
	"<AbortIncompleteMultipartUpload><DaysAfterInitiation>9"
	"</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
	"<Rule><ID>d</ID><Filter/><Status>Enabled</Status><Expiration><Date>"
	"2030-01-02T00:00:00Z</Date></Expiration></Rule>" END;

static void test_json_round_trip(void **state)
{
	(void)state;
	struct kura_pool *pool = kura_pool_new(4096);
	struct kura_lc_config c, back;
	struct s3_lc_fault f;
	struct kura_error err = { 0 };
	assert_true(parse(pool, round_trip_doc, &c, &f));
	assert_int_equal(c.n, 3);
	assert_string_equal(c.rules[1].id, "rule-1");
	char *json = kura_lc_to_json(&c);
	assert_non_null(json);
	assert_int_equal(kura_lc_from_json(json, strlen(json), pool, &back,
					   &err),
			 KURA_OK);
	char *again = kura_lc_to_json(&back);
	assert_string_equal(json, again);
	assert_int_equal(back.rules[0].ntags, 1);
	assert_string_equal(back.rules[0].tags[0].value, "v");
	assert_int_equal(back.rules[0].newer_noncurrent, 4);
	assert_true(back.rules[1].exp_marker);
	assert_false(back.rules[1].enabled);
	assert_int_equal(back.rules[1].abort_days, 9);
	assert_int_equal(back.rules[2].exp_date_day, 21916);
	free(json);
	free(again);
	kura_pool_free(pool);
}

static void stored_refused(const char *json)
{
	struct kura_pool *pool = kura_pool_new(4096);
	struct kura_lc_config c;
	struct kura_error err = { 0 };
	assert_int_equal(kura_lc_from_json(json, strlen(json), pool, &c, &err),
			 KURA_EINVAL);
	kura_pool_free(pool);
}

static void test_stored_limits(void **state)
{
	(void)state;
	stored_refused("");
	stored_refused("{\"rules\":[]}");
	stored_refused("{\"rules\":[{\"id\":\"\",\"on\":true,\"scope\":0}]}");
	stored_refused("{\"rules\":[{\"id\":\"a\",\"on\":1,\"scope\":0}]}");
	stored_refused("{\"rules\":[{\"id\":\"a\",\"on\":true,\"scope\":7}]}");
	stored_refused("{\"rules\":[{\"id\":\"a\",\"on\":true,\"scope\":0,"
		       "\"exp\":{\"days\":0}}]}");
	stored_refused("{\"rules\":[{\"id\":\"a\",\"on\":true,\"scope\":0,"
		       "\"nc\":{\"days\":-1}}]}");
	stored_refused("{\"rules\":[{\"id\":\"a\",\"on\":true,\"scope\":0,"
		       "\"tags\":[[\"k\"]]}]}");
}

static void test_matching(void **state)
{
	(void)state;
	struct kura_lc_rule r = { 0 };
	r.prefix = "logs/";
	assert_true(kura_lc_matches(&r, "logs/a", 6, 0, NULL));
	assert_false(kura_lc_matches(&r, "log", 3, 0, NULL));
	assert_false(kura_lc_matches(&r, "other/logs/", 11, 0, NULL));
	r.has_size_gt = true;
	r.size_gt = 10;
	assert_false(kura_lc_matches(&r, "logs/a", 6, 10, NULL));
	assert_true(kura_lc_matches(&r, "logs/a", 6, 11, NULL));
	r.ntags = 1;
	r.tags[0].key = "k";
	r.tags[0].value = "v";
	assert_false(kura_lc_matches(&r, "logs/a", 6, 11, NULL));
	assert_false(kura_lc_matches(&r, "logs/a", 6, 11, "{\"k\":\"w\"}"));
	assert_true(kura_lc_matches(&r, "logs/a", 6, 11,
				    "{\"x\":\"y\",\"k\":\"v\"}"));
	assert_false(kura_lc_prefix_only(&r));
}

static void test_expiry(void **state)
{
	(void)state;
	const int64_t day = 86400000;
	struct kura_lc_rule r = { 0 };
	assert_int_equal(kura_lc_expiry_ms(&r, 5, day), INT64_MAX);
	r.exp_days = 1;
	/* 10:00 on day 0, plus a day: midnight starting day 2. */
	assert_int_equal(kura_lc_expiry_ms(&r, 10 * 3600000, day), 2 * day);
	/* Exactly midnight stays. */
	assert_int_equal(kura_lc_expiry_ms(&r, day, day), 2 * day);
	/* A short test day. */
	assert_int_equal(kura_lc_expiry_ms(&r, 1500, 1000), 3000);
	r.exp_days = 0;
	r.has_exp_date = true;
	r.exp_date_day = 3;
	assert_int_equal(kura_lc_expiry_ms(&r, 999999999, 1000), 3 * day);
}

/* [maintenance] window (src/daemon/lifecycle_job.c). */
static void test_window(void **state)
{
	(void)state;
	const int64_t min = 60000;
	int a, b;
	assert_true(kura_daemon_window_parse("01:30-02:45", &a, &b));
	assert_int_equal(a, 90);
	assert_int_equal(b, 165);
	assert_false(kura_daemon_window_parse("24:00-01:00", &a, &b));
	assert_false(kura_daemon_window_parse("01:60-02:00", &a, &b));
	assert_false(kura_daemon_window_parse("01:00-01:00", &a, &b));
	assert_false(kura_daemon_window_parse("1:00-02:00", &a, &b));
	assert_false(kura_daemon_window_parse("01:00-02:00 ", &a, &b));
	assert_true(kura_daemon_in_window(NULL, 0));
	assert_true(kura_daemon_in_window("01:00-02:00", 61 * min));
	assert_false(kura_daemon_in_window("01:00-02:00", 120 * min));
	assert_false(kura_daemon_in_window("01:00-02:00", 59 * min));
	/* Wrapping midnight: both sides of it, a later day too. */
	assert_true(kura_daemon_in_window("22:00-02:00", 23 * 60 * min));
	assert_true(
		kura_daemon_in_window("22:00-02:00", (3 * 1440 + 60) * min));
	assert_false(kura_daemon_in_window("22:00-02:00", 12 * 60 * min));
	assert_false(kura_daemon_in_window("bad", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_stored_limits),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_cli_fmt.c — the documents of the location and health commands
 * (src/cli/cli_fmt.c): the JSON shapes of docs/PLACEMENT.md (object
 * locate's replicas and history, bucket locate's sums per backend and per
 * jurisdiction with deleted replicas left out of the totals, scrub's
 * counters, status's health) and the one line of text `kura scrub`
 * prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/cli/cli_fmt.h"
#include "kura/banned.h"

/* 2026-11-22T02:36:27.123Z */
#define T1 1795314987123LL

static struct kura_replica replica(const char *backend, const char *jur,
				   enum kura_replica_state st)
{
	struct kura_replica r;
	memset(&r, 0, sizeof(r));
	snprintf(r.backend, sizeof(r.backend), "%s", backend);
	snprintf(r.type, sizeof(r.type), "fs");
	snprintf(r.site, sizeof(r.site), "%s-1", backend);
	snprintf(r.region, sizeof(r.region), "r");
	snprintf(r.jurisdiction, sizeof(r.jurisdiction), "%s", jur);
	snprintf(r.remote_id, sizeof(r.remote_id), "00ff");
	r.state = st;
	r.stored_ms = T1;
	r.changed_ms = T1;
	return r;
}

static void test_time(void **state)
{
	json_t *t = cli_time_json(T1);
	assert_string_equal(json_string_value(t), "2026-11-22T02:36:27.123Z");
	json_decref(t);
	t = cli_time_json(0);
	assert_true(json_is_null(t));
	json_decref(t);
}

static void test_replica(void **state)
{
	struct kura_replica r = replica("tokyo", "JP", KURA_REPLICA_STORED);
	struct kura_replica_event h[2] = {
		{ KURA_REPLICA_PENDING, T1 - 1000, "queued" },
		{ KURA_REPLICA_STORED, T1, "written" },
	};
	json_t *j = cli_replica_json(&r, h, 2);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "backend")),
			    "tokyo");
	assert_string_equal(
		json_string_value(json_object_get(j, "jurisdiction")), "JP");
	assert_string_equal(json_string_value(json_object_get(j, "state")),
			    "stored");
	assert_string_equal(json_string_value(json_object_get(j, "stored_at")),
			    "2026-11-22T02:36:27.123Z");
	assert_true(json_is_null(json_object_get(j, "verified_at")));
	json_t *hist = json_object_get(j, "history");
	assert_int_equal(json_array_size(hist), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(hist, 0), "state")),
			    "pending");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(hist, 1), "note")),
			    "written");
	json_decref(j);
}

static struct kura_replica_group group(const char *backend, const char *jur,
				       enum kura_replica_state st,
				       uint64_t count, uint64_t bytes)
{
	struct kura_replica_group g;
	memset(&g, 0, sizeof(g));
	snprintf(g.backend, sizeof(g.backend), "%s", backend);
	snprintf(g.jurisdiction, sizeof(g.jurisdiction), "%s", jur);
	g.state = st;
	g.count = count;
	g.bytes = bytes;
	return g;
}

static json_int_t geti(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	return json_integer_value(b ? json_object_get(v, b) : v);
}

static void test_bucket_sum(void **state)
{
	struct cli_bucket_sum *s = calloc(1, sizeof(*s));
	const struct kura_replica_group gs[] = {
		group("osaka", "JP", KURA_REPLICA_STORED, 3, 300),
		group("osaka", "JP", KURA_REPLICA_VERIFIED, 1, 100),
		group("tokyo", "JP", KURA_REPLICA_STORED, 4, 400),
		group("tokyo", "JP", KURA_REPLICA_DELETED, 9, 900),
		group("virginia", "US", KURA_REPLICA_PENDING, 4, 400),
		group("gone", "DE", KURA_REPLICA_DELETED, 2, 200),
	};
	assert_non_null(s);
	for (size_t i = 0; i < sizeof(gs) / sizeof(gs[0]); i++)
		assert_true(cli_bucket_sum_add(s, &gs[i]));
	json_t *j = cli_bucket_sum_json(s, "b", "jp2us");
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "placement")),
			    "jp2us");
	json_t *bs = json_object_get(j, "backends");
	assert_int_equal(json_array_size(bs), 4);
	json_t *tokyo = json_array_get(bs, 1);
	assert_string_equal(
		json_string_value(json_object_get(tokyo, "backend")), "tokyo");
	assert_int_equal(geti(tokyo, "replicas", NULL), 4);
	assert_int_equal(geti(tokyo, "bytes", NULL), 400);
	assert_int_equal(geti(tokyo, "states", "deleted"), 9);
	assert_int_equal(geti(tokyo, "states", "stored"), 4);
	assert_int_equal(geti(json_array_get(bs, 0), "states", "verified"), 1);
	json_t *jur = json_object_get(j, "jurisdictions");
	assert_int_equal(geti(jur, "JP", "replicas"), 8);
	assert_int_equal(geti(jur, "JP", "bytes"), 800);
	assert_int_equal(geti(jur, "US", "replicas"), 4);
	/* Only deleted copies there: no line for the jurisdiction. */
	assert_null(json_object_get(jur, "DE"));
	json_decref(j);
	free(s);
}

static void test_scrub(void **state)
{
	struct kura_scrub_report r = { 5, 10, 7, 1, 2, 2, 1 };
	json_t *j = cli_scrub_json(&r);
	assert_int_equal(geti(j, "blobs", NULL), 5);
	assert_int_equal(geti(j, "corrupt", NULL), 2);
	assert_int_equal(geti(j, "unrepairable", NULL), 1);
	json_decref(j);
	char buf[256] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
	assert_non_null(f);
	cli_scrub_text(f, &r);
	fclose(f);
	assert_string_equal(buf,
			    "scrub: 5 blobs, 10 replicas, 7 ok, 1 missing, "
			    "2 corrupt, 2 repaired, 1 unrepairable\n");
}

static void test_health(void **state)
{
	struct cli_backend_health h = { "virginia",   "s3",
					"us-east-dr", "us-east",
					"US",	      false,
					12.5,	      3,
					4.25,	      "connection refused" };
	json_t *j = cli_health_json(&h);
	assert_true(json_is_false(json_object_get(j, "reachable")));
	assert_true(json_is_real(json_object_get(j, "latency_ms")));
	assert_int_equal(geti(j, "queue", NULL), 3);
	assert_true(json_real_value(json_object_get(j, "lag_seconds")) == 4.25);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_replica),
		cmocka_unit_test(test_bucket_sum),
		cmocka_unit_test(test_scrub),
		cmocka_unit_test(test_health),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

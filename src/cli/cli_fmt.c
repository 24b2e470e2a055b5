/*
 * cli_fmt.c — the documents of the location and health commands
 * (cli_fmt.h): JSON for programs, an aligned table for people.  Times are
 * UTC, ISO 8601 with milliseconds; "-" (text) or null (JSON) for never.
 * Single-threaded.
 */
#include <stdio.h>
#include <string.h>

#include "kura/timefmt.h"
#include "cli_fmt.h"
#include "kura/banned.h"

json_t *cli_time_json(int64_t ms)
{
	char t[KURA_TIME_ISO8601_LEN];
	if (ms == 0)
		return json_null();
	kura_time_iso8601(ms, t);
	return json_string(t);
}

static const char *text_time(int64_t ms, char t[KURA_TIME_ISO8601_LEN])
{
	if (ms == 0)
		return "-";
	kura_time_iso8601(ms, t);
	return t;
}

/* An empty label reads as "-" in a table. */
static const char *dash(const char *s)
{
	return s != NULL && s[0] ? s : "-";
}

json_t *cli_replica_json(const struct kura_replica *r,
			 const struct kura_replica_event *h, size_t nh)
{
	json_t *hist = json_array();
	for (size_t i = 0; hist != NULL && i < nh; i++)
		json_array_append_new(
			hist, json_pack("{s:s, s:o, s:s}", "state",
					kura_replica_state_name(h[i].state),
					"at", cli_time_json(h[i].at_ms), "note",
					h[i].note));
	if (hist == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, "
			 "s:o}",
			 "backend", r->backend, "type", r->type, "site",
			 r->site, "region", r->region, "jurisdiction",
			 r->jurisdiction, "remote_id", r->remote_id, "state",
			 kura_replica_state_name(r->state), "stored_at",
			 cli_time_json(r->stored_ms), "verified_at",
			 cli_time_json(r->verified_ms), "changed_at",
			 cli_time_json(r->changed_ms), "history", hist);
}

#define REPLICA_ROW "%-5s %-12s %-12s %-12s %-4s %-9s %-24s %s\n"

void cli_replica_text_header(FILE *out)
{
	fprintf(out, REPLICA_ROW, "PART", "BACKEND", "SITE", "REGION", "JUR",
		"STATE", "STORED", "VERIFIED");
}

void cli_replica_text(FILE *out, uint32_t part_no, const struct kura_replica *r,
		      const struct kura_replica_event *h, size_t nh)
{
	char part[16], st[KURA_TIME_ISO8601_LEN], vt[KURA_TIME_ISO8601_LEN];
	snprintf(part, sizeof(part), "%u", part_no);
	fprintf(out, REPLICA_ROW, part, r->backend, dash(r->site),
		dash(r->region), dash(r->jurisdiction),
		kura_replica_state_name(r->state), text_time(r->stored_ms, st),
		text_time(r->verified_ms, vt));
	for (size_t i = 0; i < nh; i++)
		fprintf(out, "      %s  %-9s %s\n", text_time(h[i].at_ms, st),
			kura_replica_state_name(h[i].state), h[i].note);
}

/* ---- bucket locate ---- */

bool cli_bucket_sum_add(struct cli_bucket_sum *s,
			const struct kura_replica_group *g)
{
	struct cli_backend_sum *b = NULL;
	for (size_t i = 0; i < s->n && b == NULL; i++)
		if (strcmp(s->b[i].backend, g->backend) == 0)
			b = &s->b[i];
	if (b == NULL) {
		if (s->n == CLI_SUM_BACKENDS)
			return false;
		b = &s->b[s->n++];
		memset(b, 0, sizeof(*b));
		snprintf(b->backend, sizeof(b->backend), "%s", g->backend);
		snprintf(b->site, sizeof(b->site), "%s", g->site);
		snprintf(b->region, sizeof(b->region), "%s", g->region);
		snprintf(b->jurisdiction, sizeof(b->jurisdiction), "%s",
			 g->jurisdiction);
	}
	if ((unsigned)g->state < KURA_REPLICA_STATES)
		b->states[g->state] += g->count;
	if (g->state != KURA_REPLICA_DELETED) {
		b->replicas += g->count;
		b->bytes += g->bytes;
	}
	return true;
}

static json_t *states_json(const struct cli_backend_sum *b)
{
	json_t *o = json_object();
	for (int k = 0; o != NULL && k < KURA_REPLICA_STATES; k++)
		json_object_set_new(o, kura_replica_state_name(k),
				    json_integer((json_int_t)b->states[k]));
	return o;
}

/* Add b's totals to its jurisdiction's entry of jur. */
static void add_jurisdiction(json_t *jur, const struct cli_backend_sum *b)
{
	const char *j = b->jurisdiction[0] ? b->jurisdiction : "-";
	json_t *e = json_object_get(jur, j);
	json_int_t n = 0, bytes = 0;
	if (b->replicas == 0)
		return; /* only deleted copies there: nothing is there */
	if (e != NULL) {
		n = json_integer_value(json_object_get(e, "replicas"));
		bytes = json_integer_value(json_object_get(e, "bytes"));
	}
	json_object_set_new(jur, j,
			    json_pack("{s:I, s:I}", "replicas",
				      n + (json_int_t)b->replicas, "bytes",
				      bytes + (json_int_t)b->bytes));
}

json_t *cli_bucket_sum_json(const struct cli_bucket_sum *s, const char *bucket,
			    const char *placement)
{
	json_t *backends = json_array(), *jur = json_object();
	for (size_t i = 0; backends != NULL && jur != NULL && i < s->n; i++) {
		const struct cli_backend_sum *b = &s->b[i];
		json_array_append_new(
			backends,
			json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}",
				  "backend", b->backend, "site", b->site,
				  "region", b->region, "jurisdiction",
				  b->jurisdiction, "replicas",
				  (json_int_t)b->replicas, "bytes",
				  (json_int_t)b->bytes, "states",
				  states_json(b)));
		add_jurisdiction(jur, b);
	}
	if (backends == NULL || jur == NULL) {
		json_decref(backends);
		json_decref(jur);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:o, s:o}", "bucket", bucket, "placement",
			 placement, "backends", backends, "jurisdictions", jur);
}

void cli_bucket_sum_text(FILE *out, const struct cli_bucket_sum *s,
			 const char *bucket, const char *placement)
{
	fprintf(out, "bucket %s  placement %s\n", bucket, placement);
	fprintf(out, "%-12s %-12s %-12s %-4s %10s %14s  %s\n", "BACKEND",
		"SITE", "REGION", "JUR", "REPLICAS", "BYTES", "STATES");
	for (size_t i = 0; i < s->n; i++) {
		const struct cli_backend_sum *b = &s->b[i];
		fprintf(out, "%-12s %-12s %-12s %-4s %10llu %14llu ",
			b->backend, dash(b->site), dash(b->region),
			dash(b->jurisdiction), (unsigned long long)b->replicas,
			(unsigned long long)b->bytes);
		for (int k = 0; k < KURA_REPLICA_STATES; k++)
			if (b->states[k] > 0)
				fprintf(out, " %s=%llu",
					kura_replica_state_name(k),
					(unsigned long long)b->states[k]);
		fputc('\n', out);
	}
	json_t *jur = json_object();
	for (size_t i = 0; jur != NULL && i < s->n; i++)
		add_jurisdiction(jur, &s->b[i]);
	const char *j;
	json_t *e;
	json_object_foreach(jur, j, e)
	{
		fprintf(out, "jurisdiction %s: %lld replicas, %lld bytes\n", j,
			(long long)json_integer_value(
				json_object_get(e, "replicas")),
			(long long)json_integer_value(
				json_object_get(e, "bytes")));
	}
	json_decref(jur);
}

/* ---- scrub ---- */

json_t *cli_scrub_json(const struct kura_scrub_report *r)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "blobs",
			 (json_int_t)r->blobs, "replicas",
			 (json_int_t)r->replicas, "ok", (json_int_t)r->ok,
			 "missing", (json_int_t)r->missing, "corrupt",
			 (json_int_t)r->corrupt, "repaired",
			 (json_int_t)r->repaired, "unrepairable",
			 (json_int_t)r->unrepairable);
}

void cli_scrub_text(FILE *out, const struct kura_scrub_report *r)
{
	char text[256];
	kura_scrub_report_format(r, text, sizeof(text));
	fprintf(out, "scrub: %s\n", text);
}

/* ---- status ---- */

json_t *cli_health_json(const struct cli_backend_health *h)
{
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:b, s:f, s:I, s:f}", "backend",
		h->backend, "type", h->type, "site", h->site, "region",
		h->region, "jurisdiction", h->jurisdiction, "reachable",
		h->reachable, "latency_ms",
		h->reachable ?
			(double)(int64_t)(h->latency_ms * 1000 + 0.5) / 1000 :
			0.0,
		"queue", (json_int_t)h->queue, "lag_seconds", h->lag_seconds);
}

#define HEALTH_ROW "%-12s %-4s %-12s %-12s %-4s %-11s %10s %8s %10s\n"

void cli_health_text_header(FILE *out)
{
	fprintf(out, HEALTH_ROW, "BACKEND", "TYPE", "SITE", "REGION", "JUR",
		"REACHABLE", "LATENCY", "QUEUE", "LAG");
}

void cli_health_text(FILE *out, const struct cli_backend_health *h)
{
	char lat[32], q[32], lag[32];
	if (h->reachable)
		snprintf(lat, sizeof(lat), "%.2fms", h->latency_ms);
	else
		snprintf(lat, sizeof(lat), "-");
	snprintf(q, sizeof(q), "%llu", (unsigned long long)h->queue);
	snprintf(lag, sizeof(lag), "%.1fs", h->lag_seconds);
	fprintf(out, HEALTH_ROW, h->backend, dash(h->type), dash(h->site),
		dash(h->region), dash(h->jurisdiction),
		h->reachable ? "yes" : "no", lat, q, lag);
	if (!h->reachable && h->problem != NULL && h->problem[0])
		fprintf(out, "  %s: %s\n", h->backend, h->problem);
}

bool cli_json_print(FILE *out, json_t *doc)
{
	if (doc == NULL) {
		fprintf(stderr, "kura: out of memory\n");
		return false;
	}
	int rc = json_dumpf(doc, out,
			    JSON_INDENT(2) | JSON_PRESERVE_ORDER |
				    JSON_REAL_PRECISION(10));
	json_decref(doc);
	fputc('\n', out);
	return rc == 0;
}

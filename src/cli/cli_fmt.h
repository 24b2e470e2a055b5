/*
 * cli_fmt.h — the documents of `kura object locate`, `kura bucket locate`,
 * `kura scrub` and `kura status`, as JSON (the shapes are fixed in
 * docs/PLACEMENT.md) and as text.  Pure: no service, no I/O but the FILE
 * given, so tests/unit/test_cli_fmt.c checks them without a data
 * directory.  Single-threaded, as the kura command is.
 */
#ifndef KURA_CLI_FMT_H
#define KURA_CLI_FMT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "kura/meta.h"
#include "kura/service.h"

/* An ISO 8601 UTC time string; JSON null for 0 ("never"). */
json_t *cli_time_json(int64_t ms);

/* One replica of `object locate`, with its history h[0..nh). */
json_t *cli_replica_json(const struct kura_replica *r,
			 const struct kura_replica_event *h, size_t nh);

/* The same as text: a table row (below cli_replica_text_header) and one
 * indented line per history event. */
void cli_replica_text_header(FILE *out);
void cli_replica_text(FILE *out, uint32_t part_no, const struct kura_replica *r,
		      const struct kura_replica_event *h, size_t nh);

/* `bucket locate`: replica groups summed per backend (every state
 * counted in "states"; totals leave deleted replicas out) and per
 * jurisdiction. */
struct cli_backend_sum {
	char backend[KURA_PLACEMENT_NAME_MAX];
	char site[KURA_LABEL_MAX];
	char region[KURA_LABEL_MAX];
	char jurisdiction[KURA_JURISDICTION_LEN];
	uint64_t replicas, bytes;
	uint64_t states[KURA_REPLICA_STATES];
};

#define CLI_SUM_BACKENDS 64

struct cli_bucket_sum {
	struct cli_backend_sum b[CLI_SUM_BACKENDS];
	size_t n;
};

/* Add one group; false when there are more backends than the table
 * holds. */
bool cli_bucket_sum_add(struct cli_bucket_sum *s,
			const struct kura_replica_group *g);
json_t *cli_bucket_sum_json(const struct cli_bucket_sum *s, const char *bucket,
			    const char *placement);
void cli_bucket_sum_text(FILE *out, const struct cli_bucket_sum *s,
			 const char *bucket, const char *placement);

/* `scrub`: the report as JSON, and as its one line of text. */
json_t *cli_scrub_json(const struct kura_scrub_report *r);
void cli_scrub_text(FILE *out, const struct kura_scrub_report *r);

/* `status`: one backend's health. */
struct cli_backend_health {
	const char *backend, *type, *site, *region, *jurisdiction;
	bool reachable;
	double latency_ms;   /* of the probe; meaningful when reachable */
	uint64_t queue;	     /* pending replicas */
	double lag_seconds;  /* age of the oldest pending one; 0: none */
	const char *problem; /* why not reachable; NULL */
};
json_t *cli_health_json(const struct cli_backend_health *h);
void cli_health_text_header(FILE *out);
void cli_health_text(FILE *out, const struct cli_backend_health *h);

/* Print doc (indented) and a newline to out, then drop it; false when
 * doc is NULL (out of memory) or the print failed. */
bool cli_json_print(FILE *out, json_t *doc);

#endif

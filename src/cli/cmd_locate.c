/*
 * cmd_locate.c — location evidence: `kura object locate BUCKET KEY
 * [--version V] [--json]` shows, for each part of an object version,
 * every replica of its blob — backend, site, region, jurisdiction, state,
 * when stored and last verified — with each replica's history;
 * `kura bucket locate BUCKET [--json]` sums a bucket's replicas per
 * backend and per jurisdiction.  Both read the metadata only (the replica
 * rows the placement and the scrub keep) and work while a server runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/placement.h"
#include "cli.h"
#include "cli_fmt.h"
#include "kura/banned.h"

/* A replica's history is read up to this many events (oldest first). */
#define HISTORY_MAX 4096

static const char *policy_of(const struct kura_bucket *b)
{
	return b->placement[0] ? b->placement : "default";
}

static bool find_bucket(struct kura_service *svc, const char *name,
			struct kura_bucket *b)
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_meta_bucket_get(svc->meta, name, b, &err);
	if (rc == KURA_ENOENT)
		fprintf(stderr, "kura: no bucket '%s'\n", name);
	else if (rc != KURA_OK)
		fprintf(stderr, "kura: %s\n", err.msg);
	return rc == KURA_OK;
}

/* The version named by --version (a version id, "null"), or the newest;
 * prints why not and returns NULL. */
static struct kura_object *find_version(struct kura_service *svc,
					const struct kura_bucket *b,
					const char *key, const char *version,
					struct kura_pool *pool)
{
	struct kura_error err = { 0 };
	struct kura_object *o = NULL;
	uint8_t uid[KURA_UID_LEN];
	bool null_version = version != NULL && strcmp(version, "null") == 0;
	enum kura_err rc;
	if (version != NULL && !null_version &&
	    (strlen(version) != 2 * KURA_UID_LEN ||
	     kura_hex_decode(version, strlen(version), uid, sizeof(uid)) !=
		     KURA_OK)) {
		fprintf(stderr,
			"kura: '%s' is not a version id (32 hex digits or "
			"\"null\")\n",
			version);
		return NULL;
	}
	if (version != NULL)
		rc = kura_meta_object_get_version(svc->meta, b->id, key,
						  strlen(key),
						  null_version ? NULL : uid,
						  pool, &o, &err);
	else
		rc = kura_meta_object_get(svc->meta, b->id, key, strlen(key),
					  pool, &o, &err);
	if (rc == KURA_ENOENT && version != NULL)
		fprintf(stderr, "kura: no version '%s' of '%s' in '%s'\n",
			version, key, b->name);
	else if (rc == KURA_ENOENT)
		fprintf(stderr, "kura: no object '%s' in '%s'\n", key, b->name);
	else if (rc != KURA_OK)
		fprintf(stderr, "kura: %s\n", err.msg);
	if (rc == KURA_OK && o->delete_marker) {
		fprintf(stderr, "kura: '%s' in '%s'%s%s is a delete marker\n",
			key, b->name, version ? " version " : "",
			version ? version : "");
		return NULL;
	}
	return rc == KURA_OK ? o : NULL;
}

/* One part: every replica with its history, into parts (JSON) or out. */
static bool locate_part(struct kura_service *svc, const struct kura_part *p,
			struct kura_replica_event *hist, json_t *parts,
			FILE *out)
{
	struct kura_replica rows[KURA_BACKENDS_MAX];
	struct kura_error err = { 0 };
	char hex[2 * KURA_BLOB_ID_LEN + 1];
	size_t n = 0;
	json_t *reps = parts ? json_array() : NULL;
	kura_hex_encode(p->blob_id, KURA_BLOB_ID_LEN, hex);
	enum kura_err rc = kura_meta_replica_list(svc->meta, p->blob_id, rows,
						  KURA_BACKENDS_MAX, &n, &err);
	for (size_t i = 0; rc == KURA_OK && i < n; i++) {
		size_t nh = 0;
		rc = kura_meta_replica_history(svc->meta, p->blob_id,
					       rows[i].backend, hist,
					       HISTORY_MAX, &nh, &err);
		if (rc == KURA_OK && reps != NULL)
			json_array_append_new(reps, cli_replica_json(&rows[i],
								     hist, nh));
		else if (rc == KURA_OK)
			cli_replica_text(out, p->part_no, &rows[i], hist, nh);
	}
	if (rc != KURA_OK) {
		fprintf(stderr, "kura: blob %s: %s\n", hex, err.msg);
		json_decref(reps);
		return false;
	}
	if (reps != NULL)
		json_array_append_new(
			parts, json_pack("{s:I, s:s, s:I, s:o}", "part_no",
					 (json_int_t)p->part_no, "blob_id", hex,
					 "bytes", (json_int_t)p->size,
					 "replicas", reps));
	else if (n == 0)
		fprintf(out, "%-5u (no replica recorded for blob %s)\n",
			p->part_no, hex);
	return true;
}

static bool locate_object(struct kura_service *svc, const struct kura_bucket *b,
			  const struct kura_object *o, const char *key,
			  bool json)
{
	struct kura_replica_event *hist = malloc(HISTORY_MAX * sizeof(*hist));
	json_t *parts = json ? json_array() : NULL;
	char vid[2 * KURA_UID_LEN + 1];
	bool ok = hist != NULL && (!json || parts != NULL);
	kura_hex_encode(o->version_uid, KURA_UID_LEN, vid);
	if (ok && !json) {
		printf("bucket %s  key %s  version %s  placement %s\n", b->name,
		       key, o->null_version ? "null" : vid, policy_of(b));
		cli_replica_text_header(stdout);
	}
	for (uint32_t i = 0; ok && i < o->part_count; i++)
		ok = locate_part(svc, &o->parts[i], hist, parts, stdout);
	free(hist);
	if (ok && json)
		return cli_json_print(
			stdout,
			json_pack("{s:s, s:s, s:o, s:s, s:o}", "bucket",
				  b->name, "key", key, "version_id",
				  o->null_version ? json_null() :
						    json_string(vid),
				  "placement", policy_of(b), "parts", parts));
	json_decref(parts);
	if (hist == NULL)
		fprintf(stderr, "kura: out of memory\n");
	return ok;
}

int cli_object(const struct kura_config *cfg, const struct cli *c)
{
	if (c->nwords != 4 || strcmp(c->words[1], "locate") != 0) {
		fprintf(stderr, "usage: kura object locate BUCKET KEY "
				"[--version V] [--json]\n");
		return 2;
	}
	struct kura_service *svc = cli_open_service(cfg);
	struct kura_pool *pool = kura_pool_new(64 * 1024);
	struct kura_bucket b;
	struct kura_object *o = NULL;
	int code = 1;
	if (svc != NULL && pool != NULL && find_bucket(svc, c->words[2], &b))
		o = find_version(svc, &b, c->words[3], c->object_version, pool);
	if (o != NULL && locate_object(svc, &b, o, c->words[3], c->json))
		code = 0;
	kura_pool_free(pool);
	kura_service_close(svc);
	return code;
}

static enum kura_err add_group(void *ctx, const struct kura_replica_group *g,
			       struct kura_error *err)
{
	if (!cli_bucket_sum_add(ctx, g))
		return kura_fail(err, KURA_ETOOBIG, "too many backends");
	return KURA_OK;
}

int cli_bucket_locate(const struct kura_config *cfg, const struct cli *c)
{
	struct kura_service *svc = cli_open_service(cfg);
	struct cli_bucket_sum *sum = calloc(1, sizeof(*sum));
	struct kura_error err = { 0 };
	struct kura_bucket b;
	int code = 1;
	if (svc == NULL || sum == NULL || !find_bucket(svc, c->words[2], &b))
		goto out;
	if (kura_meta_replica_groups(svc->meta, b.id, add_group, sum, &err) !=
	    KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		goto out;
	}
	if (c->json) {
		if (cli_json_print(stdout, cli_bucket_sum_json(sum, b.name,
							       policy_of(&b))))
			code = 0;
	} else {
		cli_bucket_sum_text(stdout, sum, b.name, policy_of(&b));
		code = 0;
	}
out:
	free(sum);
	kura_service_close(svc);
	return code;
}

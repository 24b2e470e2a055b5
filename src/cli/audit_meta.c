/*
 * audit_meta.c — `kura audit verify --against-meta`: does the metadata
 * hold, for every object key the audit log knows, the version that the
 * log says was written last?
 *
 * Seals (src/kms/seal.c) stop anyone without keys from changing a row, but
 * not from putting back a whole older row with its older blobs (a
 * rollback): that row is consistent under every key.  The audit log is
 * the other witness: it records every write with its version.  This walk
 * replays the log's object writes and deletions and compares the last
 * state of each key with the metadata, reporting every key that was
 * rolled back, resurrected or made to vanish.
 *
 * Concurrent requests: a record is written after its operation committed,
 * so records of overlapping requests on one key may come in either order.
 * A write w can be the last one only if it ended after every other write
 * of the key started; all such writes are candidates, and the metadata
 * must match one of them.  Keys written after the log was read (a server
 * still running) are told apart by their modification time.
 *
 * Single-threaded (a CLI command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/encode.h"
#include "kura/seal.h"
#include "kura/timefmt.h"
#include "cli.h"
#include "kura/banned.h"

#define TABLE_BITS 16
#define VERSION_HEX (2 * KURA_UID_LEN + 1)

/* One write of a key: a version written, or a deletion (version ""). */
struct write {
	char version[VERSION_HEX];
	int64_t start_ms, end_ms;
};

struct key_state {
	struct key_state *next;
	char *bucket;
	char *key;
	size_t key_len;
	int64_t max_start;	/* latest start of any write */
	struct write *cand;	/* writes that may be the last */
	size_t ncand, cap;
};

struct replay {
	struct key_state **slots;
	size_t nslots, nkeys;
	int64_t last_ms;	/* time of the last record read */
	bool failed;		/* out of memory */
};

static uint64_t hash(const char *bucket, const char *key, size_t key_len)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */
	for (const char *p = bucket; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (size_t i = 0; i < key_len; i++)
		h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
	return h;
}

static struct key_state *lookup(struct replay *rp, const char *bucket, const char *key,
				size_t key_len)
{
	struct key_state **pp = &rp->slots[hash(bucket, key, key_len) & (rp->nslots - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->key_len == key_len && memcmp((*pp)->key, key, key_len) == 0 &&
		    strcmp((*pp)->bucket, bucket) == 0)
			return *pp;
	struct key_state *k = calloc(1, sizeof(*k));
	if (k == NULL || (k->bucket = strdup(bucket)) == NULL ||
	    (k->key = malloc(key_len + 1)) == NULL) {
		if (k)
			free(k->bucket);
		free(k);
		rp->failed = true;
		return NULL;
	}
	memcpy(k->key, key, key_len);
	k->key[key_len] = '\0';
	k->key_len = key_len;
	k->max_start = INT64_MIN;
	*pp = k;
	rp->nkeys++;
	return k;
}

/* Add a write; keep only the writes that may still be the last. */
static void add_write(struct replay *rp, struct key_state *k, const char *version,
		      int64_t start, int64_t end)
{
	if (start > k->max_start)
		k->max_start = start;
	size_t n = 0;
	for (size_t i = 0; i < k->ncand; i++)
		if (k->cand[i].end_ms >= k->max_start)
			k->cand[n++] = k->cand[i];
	k->ncand = n;
	if (end < k->max_start)
		return;
	if (k->ncand == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 2;
		struct write *w = realloc(k->cand, cap * sizeof(*w));
		if (w == NULL) {
			rp->failed = true;
			return;
		}
		k->cand = w;
		k->cap = cap;
	}
	struct write *w = &k->cand[k->ncand++];
	snprintf(w->version, sizeof(w->version), "%s", version);
	w->start_ms = start;
	w->end_ms = end;
}

/* Every key of bucket is gone from time t on (a shred). */
static void bucket_gone(struct replay *rp, const char *bucket, int64_t t)
{
	for (size_t i = 0; i < rp->nslots; i++)
		for (struct key_state *k = rp->slots[i]; k; k = k->next)
			if (strcmp(k->bucket, bucket) == 0)
				add_write(rp, k, "", t, t);
}

/* A record's time in milliseconds ("...:SS.fffZ"). */
static int64_t record_time(json_t *rec)
{
	const char *t = json_string_value(json_object_get(rec, "time"));
	int64_t secs = 0, ms = 0;
	size_t n = t ? strlen(t) : 0;
	if (t == NULL || kura_time_parse_iso8601(t, n, &secs) != KURA_OK)
		return 0;
	for (size_t i = 20; i < 23 && i + 1 < n; i++)
		ms = ms * 10 + (t[i] - '0');
	return secs * 1000 + ms;
}

static bool is_ok_status(json_t *rec)
{
	json_int_t st = json_integer_value(json_object_get(rec, "status"));
	return st >= 200 && st < 300 && json_object_get(rec, "aborted") == NULL;
}

/* An object write or deletion recorded for an S3 request, if rec is one:
 * *version is the version written, "" for a deletion. */
static bool object_write(json_t *rec, const char **version)
{
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *v = json_string_value(json_object_get(rec, "version"));
	if (op == NULL || !is_ok_status(rec))
		return false;
	if (strcmp(op, "PutObject") == 0 || strcmp(op, "CopyObject") == 0 ||
	    strcmp(op, "CompleteMultipartUpload") == 0) {
		*version = v;
		return v != NULL && strlen(v) == VERSION_HEX - 1;
	}
	if (strcmp(op, "DeleteObject") == 0) {
		*version = "";
		return true;
	}
	return false;
}

/* A key of a DeleteObjects request, recorded one per key (docs/AUDIT.md). */
static bool batch_delete(json_t *rec)
{
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *res = json_string_value(json_object_get(rec, "result"));
	return op != NULL && res != NULL && strcmp(op, "DeleteObjects") == 0 &&
	       (strcmp(res, "deleted") == 0 || strcmp(res, "absent") == 0);
}

static enum kura_err replay_one(void *ctx, uint64_t seq, const char *json, size_t len,
				bool *stop, struct kura_error *err)
{
	struct replay *rp = ctx;
	json_t *rec = json_loadb(json, len, 0, NULL);
	const char *version = NULL;
	if (rec == NULL)
		return kura_fail(err, KURA_EINTEGRITY, "audit record %llu is not JSON",
				 (unsigned long long)seq);
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *bucket = json_string_value(json_object_get(rec, "bucket"));
	json_t *key = json_object_get(rec, "key");
	int64_t end = record_time(rec);
	int64_t start = end - json_integer_value(json_object_get(rec, "latency_us")) / 1000;
	rp->last_ms = end;
	if (type != NULL && strcmp(type, "s3") == 0 && bucket != NULL && json_is_string(key) &&
	    (object_write(rec, &version) || (batch_delete(rec) && (version = "")))) {
		struct key_state *k = lookup(rp, bucket, json_string_value(key),
					     json_string_length(key));
		if (k != NULL)
			add_write(rp, k, version, start, end);
	}
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *phase = json_string_value(json_object_get(rec, "phase"));
	const char *subject = json_string_value(json_object_get(rec, "subject"));
	if (type != NULL && strcmp(type, "admin") == 0 && op != NULL &&
	    strcmp(op, "bucket.shred") == 0 && phase != NULL && strcmp(phase, "result") == 0 &&
	    json_object_get(rec, "error") == NULL && subject != NULL)
		bucket_gone(rp, subject, end);
	json_decref(rec);
	if (rp->failed)
		return kura_fail(err, KURA_ENOMEM, "audit replay");
	*stop = false;
	return KURA_OK;
}

/* Compare one key's replayed state with the metadata; prints and returns
 * false on a mismatch. */
static bool check_key(struct kura_service *svc, struct kura_pool *pool,
		      const struct replay *rp, const struct key_state *k)
{
	struct kura_meta *meta = svc->meta;
	struct kura_error err = { 0 };
	struct kura_bucket b;
	struct kura_object *o = NULL;
	char have[VERSION_HEX] = "";
	bool may_be_gone = false;
	for (size_t i = 0; i < k->ncand; i++)
		may_be_gone |= k->cand[i].version[0] == '\0';
	enum kura_err rc = kura_meta_bucket_get(meta, k->bucket, &b, &err);
	if (rc == KURA_OK)
		rc = kura_meta_object_get(meta, b.id, k->key, k->key_len, pool, &o, &err);
	if (rc == KURA_ENOENT) {
		if (may_be_gone)
			return true;
		printf("MISSING %s/%s: the audit log's last write left version %s, the "
		       "metadata holds nothing\n", k->bucket, k->key, k->cand[0].version);
		return false;
	}
	if (rc != KURA_OK) {
		printf("UNREADABLE %s/%s: %s\n", k->bucket, k->key, err.msg);
		return false;
	}
	kura_hex_encode(o->version_uid, KURA_UID_LEN, have);
	struct kura_seal_ctx sc;
	kura_seal_ctx_init(&sc, svc->kms, meta);
	rc = kura_seal_object_open(&sc, b.tenant_id, o, true, &err);
	kura_seal_ctx_release(&sc);
	if (rc == KURA_EINTEGRITY) {
		printf("TAMPERED %s/%s: %s\n", k->bucket, k->key, err.msg);
		return false;
	}
	for (size_t i = 0; i < k->ncand; i++)
		if (strcmp(k->cand[i].version, have) == 0)
			return true;
	if (o->mtime_ms > rp->last_ms)
		return true;	/* written after the log was read */
	printf("ROLLED BACK %s/%s: the metadata holds version %s, the audit log's last "
	       "write %s %s\n", k->bucket, k->key, have,
	       may_be_gone && k->ncand == 1 ? "deleted it" : "was version",
	       may_be_gone && k->ncand == 1 ? "" : k->cand[0].version);
	return false;
}

static void replay_free(struct replay *rp)
{
	for (size_t i = 0; i < rp->nslots; i++) {
		struct key_state *k = rp->slots[i];
		while (k) {
			struct key_state *next = k->next;
			free(k->bucket);
			free(k->key);
			free(k->cand);
			free(k);
			k = next;
		}
	}
	free(rp->slots);
}

int cli_audit_against_meta(const struct kura_config *cfg, const char *dir)
{
	struct replay rp = { .nslots = (size_t)1 << TABLE_BITS };
	struct kura_error err = { 0 };
	uint64_t first = 0;
	size_t bad = 0;
	int code = 2;
	rp.slots = calloc(rp.nslots, sizeof(*rp.slots));
	struct kura_service *svc = rp.slots ? cli_open_service(cfg) : NULL;
	if (svc == NULL)
		goto out;
	if (kura_audit_each(dir, replay_one, &rp, &first, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		goto out;
	}
	for (size_t i = 0; i < rp.nslots; i++)
		for (struct key_state *k = rp.slots[i]; k; k = k->next) {
			struct kura_pool *pool = kura_pool_new(0);
			if (pool == NULL)
				goto out;
			if (!check_key(svc, pool, &rp, k))
				bad++;
			kura_pool_free(pool);
		}
	if (first > 0)
		printf("note: records before %llu are archived; keys last written before "
		       "then are not checked\n", (unsigned long long)first);
	printf("%zu object keys of the audit log checked against the metadata: %zu "
	       "disagree\n", rp.nkeys, bad);
	code = bad == 0 ? 0 : 1;
out:
	kura_service_close(svc);
	replay_free(&rp);
	return code;
}

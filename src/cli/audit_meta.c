/*
 * audit_meta.c — `kura audit verify --against-meta`: does the metadata
 * hold, for every object key the audit log knows, the version that the
 * log says was written last?
 *
 * Seals (src/kms/seal.c) stop anyone without keys from changing a row, but
 * not from putting back a whole older row with its older blobs (a
 * rollback): that row is consistent under every key.  The audit log is
 * the other witness: it records every write with its version and a keyed
 * digest of the row written (seal.h, kura_seal_object_digest), tagging
 * included.  This walk replays the log's object writes and deletions and
 * compares the last state of each key with the metadata, reporting every
 * key that was rolled back (to another version, or to the same version
 * with other tags or headers), resurrected or made to vanish; then walks
 * every object of the metadata for ones the log never saw written (when
 * the log is whole); and compares tenants, access keys and keys with the
 * last change the log recorded of each (audit_control.c).
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
#define LIST_PAGE 1000 /* objects read at a time */

#define ROW_HEX (2 * KURA_ROW_DIGEST_LEN + 1)

/* One write of a key: a version written, or a deletion (version ""), with
 * the digest of the row written ("" when the record has none). */
struct write {
	char version[VERSION_HEX];
	char row[ROW_HEX];
	int64_t start_ms, end_ms;
};

struct key_state {
	struct key_state *next;
	char *bucket;
	char *key;
	size_t key_len;
	int64_t max_start;  /* latest start of any write */
	struct write *cand; /* writes that may be the last */
	size_t ncand, cap;
	/* A version that may be the newest was removed by its id: which one
	 * is newest now the log does not say (an older version it may not
	 * have seen written), so the key is not checked until written
	 * again. */
	bool newest_unknown;
	/* Versions whose Object Lock settings the log changed: each must
	 * still hold the row the last change left, newest or not (a
	 * noncurrent version's row put back from before a legal hold would
	 * lift the hold unseen). */
	struct write *locked;
	size_t nlocked, caplocked;
};

struct replay {
	struct key_state **slots;
	size_t nslots, nkeys;
	int64_t last_ms; /* time of the last record read */
	bool failed;	 /* out of memory */
	struct audit_control *control;
};

static uint64_t hash(const char *bucket, const char *key, size_t key_len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = bucket; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (size_t i = 0; i < key_len; i++)
		h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
	return h;
}

static struct key_state **slot_of(const struct replay *rp, const char *bucket,
				  const char *key, size_t key_len)
{
	struct key_state **pp =
		&rp->slots[hash(bucket, key, key_len) & (rp->nslots - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->key_len == key_len &&
		    memcmp((*pp)->key, key, key_len) == 0 &&
		    strcmp((*pp)->bucket, bucket) == 0)
			break;
	return pp;
}

/* The state of (bucket, key), added when new. */
static struct key_state *lookup(struct replay *rp, const char *bucket,
				const char *key, size_t key_len)
{
	struct key_state **pp = slot_of(rp, bucket, key, key_len);
	if (*pp != NULL)
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

/* Room for one more write at the end of *v (n of cap), zeroed; NULL (and
 * rp->failed) when out of memory. */
static struct write *push_write(struct replay *rp, struct write **v, size_t *n,
				size_t *cap)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 2;
		struct write *grown = realloc(*v, nc * sizeof(**v));
		if (grown == NULL) {
			rp->failed = true;
			return NULL;
		}
		*v = grown;
		*cap = nc;
	}
	struct write *w = &(*v)[(*n)++];
	memset(w, 0, sizeof(*w));
	return w;
}

/* Add a write; keep only the writes that may still be the last. */
static void add_write(struct replay *rp, struct key_state *k,
		      const char *version, const char *row, int64_t start,
		      int64_t end)
{
	k->newest_unknown = false;
	if (start > k->max_start)
		k->max_start = start;
	size_t n = 0;
	for (size_t i = 0; i < k->ncand; i++)
		if (k->cand[i].end_ms >= k->max_start)
			k->cand[n++] = k->cand[i];
	k->ncand = n;
	if (end < k->max_start)
		return;
	struct write *w = push_write(rp, &k->cand, &k->ncand, &k->cap);
	if (w == NULL)
		return;
	snprintf(w->version, sizeof(w->version), "%s", version);
	snprintf(w->row, sizeof(w->row), "%s",
		 row != NULL && strlen(row) == ROW_HEX - 1 ? row : "");
	w->start_ms = start;
	w->end_ms = end;
}

/* The locked-row expectation of `version` in k, or NULL. */
static struct write *locked_of(struct key_state *k, const char *version)
{
	for (size_t i = 0; i < k->nlocked; i++)
		if (strcmp(k->locked[i].version, version) == 0)
			return &k->locked[i];
	return NULL;
}

/* A retention or legal-hold change left `version` with row `row`. */
static void lock_changed(struct replay *rp, struct key_state *k,
			 const char *version, const char *row)
{
	struct write *w = locked_of(k, version);
	if (row == NULL || strlen(row) != ROW_HEX - 1)
		return;
	if (w == NULL) {
		w = push_write(rp, &k->locked, &k->nlocked, &k->caplocked);
		if (w == NULL)
			return;
		snprintf(w->version, sizeof(w->version), "%s", version);
	}
	snprintf(w->row, sizeof(w->row), "%s", row);
}

/* A later write of the row of `version` (tags) moves its expectation. */
static void locked_rewritten(struct key_state *k, const char *version,
			     const char *row)
{
	struct write *w = locked_of(k, version);
	if (w != NULL && row != NULL && strlen(row) == ROW_HEX - 1)
		snprintf(w->row, sizeof(w->row), "%s", row);
}

static void locked_removed(struct key_state *k, const char *version)
{
	struct write *w = locked_of(k, version);
	if (w != NULL)
		*w = k->locked[--k->nlocked];
}

/* Version `version` of k was removed for good (versioned buckets): when it
 * may have been the newest, the newest is now unknown; an older one's
 * removal changes nothing the check looks at. */
static void remove_version(struct key_state *k, const char *version)
{
	for (size_t i = 0; i < k->ncand; i++)
		if (strcmp(k->cand[i].version, version) == 0)
			k->newest_unknown = true;
}

/* A tagging call named version `version`: it rewrote that version's row,
 * which is the newest only if the log says so. */
static void retag_version(struct key_state *k, const char *version,
			  const char *row)
{
	for (size_t i = 0; i < k->ncand; i++)
		if (strcmp(k->cand[i].version, version) == 0 && row != NULL &&
		    strlen(row) == ROW_HEX - 1)
			snprintf(k->cand[i].row, sizeof(k->cand[i].row), "%s",
				 row);
}

/* Every key of bucket is gone from time t on (a shred). */
static void bucket_gone(struct replay *rp, const char *bucket, int64_t t)
{
	for (size_t i = 0; i < rp->nslots; i++)
		for (struct key_state *k = rp->slots[i]; k; k = k->next)
			if (strcmp(k->bucket, bucket) == 0) {
				add_write(rp, k, "", NULL, t, t);
				k->nlocked = 0;
			}
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

/* What a record did to its key's versions. */
enum effect {
	NO_EFFECT,
	WRITTEN,  /* *version became the newest (a delete marker too) */
	GONE,	  /* the key has no version left (unversioned deletion) */
	REMOVED,  /* version *version removed for good */
	RETAGGED, /* version *version (named by id) has a new row */
};

static bool is_version(const char *v)
{
	return v != NULL && strlen(v) == VERSION_HEX - 1;
}

/* The version effect of a deletion in a versioned bucket, recorded as
 * "version_effect" (docs/AUDIT.md): a delete marker written, or a
 * version removed; none: the key is gone. */
static enum effect deletion(json_t *rec, const char *v)
{
	const char *e =
		json_string_value(json_object_get(rec, "version_effect"));
	if (e != NULL && strcmp(e, "marker") == 0 && is_version(v))
		return WRITTEN;
	if (e != NULL && strcmp(e, "removed") == 0 && is_version(v))
		return REMOVED;
	if (e != NULL && strcmp(e, "none") == 0)
		return NO_EFFECT;
	return GONE;
}

/* An object write or deletion recorded for an S3 request, if rec is one.
 * A write names its version only once it committed (s3_note_version), so
 * a write with a version counts whatever its status — a client gone
 * before the answer ("aborted") does not undo it. */
static enum effect object_write(json_t *rec, const char **version)
{
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *v = json_string_value(json_object_get(rec, "version"));
	*version = v;
	if (op == NULL)
		return NO_EFFECT;
	/* A tagging or Object Lock request writes the row of the version it
	 * names anew. */
	if (strcmp(op, "PutObjectTagging") == 0 ||
	    strcmp(op, "DeleteObjectTagging") == 0 ||
	    strcmp(op, "PutObjectRetention") == 0 ||
	    strcmp(op, "PutObjectLegalHold") == 0)
		return !is_version(v) ? NO_EFFECT :
		       json_is_true(json_object_get(rec, "version_named")) ?
					RETAGGED :
					WRITTEN;
	if (strcmp(op, "PutObject") == 0 || strcmp(op, "CopyObject") == 0 ||
	    strcmp(op, "CompleteMultipartUpload") == 0)
		return is_version(v) ? WRITTEN : NO_EFFECT;
	if (strcmp(op, "DeleteObject") == 0 && is_ok_status(rec))
		return deletion(rec, v);
	return NO_EFFECT;
}

/* A key of a DeleteObjects request, recorded one per key (docs/AUDIT.md),
 * its version in the record's detail. */
static enum effect batch_delete(json_t *rec, const char **version)
{
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *res = json_string_value(json_object_get(rec, "result"));
	*version = json_string_value(json_object_get(rec, "version"));
	if (op == NULL || res == NULL || strcmp(op, "DeleteObjects") != 0 ||
	    (strcmp(res, "deleted") != 0 && strcmp(res, "absent") != 0))
		return NO_EFFECT;
	return deletion(rec, *version);
}

/* A lifecycle action (src/daemon/lifecycle_job.c, docs/AUDIT.md): its
 * "version_effect" says what it did to the key's versions — a delete
 * marker written, a version removed, or (a never-versioned bucket) the key
 * gone; a record without one (a locked version left alone, an upload
 * aborted) changed none. */
static enum effect lifecycle_action(json_t *rec, const char **version)
{
	const char *e =
		json_string_value(json_object_get(rec, "version_effect"));
	*version = json_string_value(json_object_get(rec, "version"));
	if (e == NULL || json_object_get(rec, "error") != NULL)
		return NO_EFFECT;
	if (strcmp(e, "marker") == 0 && is_version(*version))
		return WRITTEN;
	if (strcmp(e, "removed") == 0 && is_version(*version))
		return REMOVED;
	if (strcmp(e, "gone") == 0)
		return GONE;
	return NO_EFFECT;
}

/* Apply what rec did to the versions of key k. */
static void apply(struct replay *rp, struct key_state *k, enum effect e,
		  const char *version, const char *row, int64_t start,
		  int64_t end)
{
	switch (e) {
	case WRITTEN:
		add_write(rp, k, version, row, start, end);
		locked_rewritten(k, version, row);
		break;
	case GONE:
		add_write(rp, k, "", NULL, start, end);
		k->nlocked = 0;
		break;
	case REMOVED:
		remove_version(k, version);
		locked_removed(k, version);
		break;
	case RETAGGED:
		retag_version(k, version, row);
		locked_rewritten(k, version, row);
		break;
	case NO_EFFECT:
		break;
	}
}

static bool is_lock_change(json_t *rec)
{
	const char *op = json_string_value(json_object_get(rec, "op"));
	return op != NULL && (strcmp(op, "PutObjectRetention") == 0 ||
			      strcmp(op, "PutObjectLegalHold") == 0);
}

static enum kura_err replay_one(void *ctx, uint64_t seq, const char *json,
				size_t len, bool *stop, struct kura_error *err)
{
	struct replay *rp = ctx;
	json_t *rec = json_loadb(json, len, 0, NULL);
	const char *version = NULL;
	if (rec == NULL)
		return kura_fail(err, KURA_EINTEGRITY,
				 "audit record %llu is not JSON",
				 (unsigned long long)seq);
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *bucket = json_string_value(json_object_get(rec, "bucket"));
	json_t *key = json_object_get(rec, "key");
	int64_t end = record_time(rec);
	int64_t start =
		end -
		json_integer_value(json_object_get(rec, "latency_us")) / 1000;
	rp->last_ms = end;
	enum effect e = NO_EFFECT;
	if (type != NULL && strcmp(type, "s3") == 0 && bucket != NULL &&
	    json_is_string(key)) {
		e = object_write(rec, &version);
		if (e == NO_EFFECT)
			e = batch_delete(rec, &version);
	}
	if (type != NULL && strcmp(type, "lifecycle") == 0 && bucket != NULL &&
	    json_is_string(key))
		e = lifecycle_action(rec, &version);
	if (e != NO_EFFECT) {
		struct key_state *k = lookup(rp, bucket, json_string_value(key),
					     json_string_length(key));
		const char *row =
			json_string_value(json_object_get(rec, "row"));
		if (k != NULL)
			apply(rp, k, e, version, row, start, end);
		if (k != NULL && is_lock_change(rec))
			lock_changed(rp, k, version, row);
	}
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *phase = json_string_value(json_object_get(rec, "phase"));
	const char *subject =
		json_string_value(json_object_get(rec, "subject"));
	bool changed = type != NULL && strcmp(type, "admin") == 0 &&
		       op != NULL && phase != NULL &&
		       strcmp(phase, "result") == 0 &&
		       json_object_get(rec, "error") == NULL && subject != NULL;
	if (changed && strcmp(op, "bucket.shred") == 0) {
		bucket_gone(rp, subject, end);
		if (!audit_control_note_bucket(rp->control, op, subject, NULL,
					       false))
			rp->failed = true;
	}
	if (type != NULL && strcmp(type, "s3") == 0 && op != NULL &&
	    is_ok_status(rec) &&
	    !audit_control_note_bucket(
		    rp->control, op, bucket,
		    json_string_value(json_object_get(rec, "versioning")),
		    json_is_true(json_object_get(rec, "object_lock"))))
		rp->failed = true;
	if (changed &&
	    !audit_control_note(rp->control, op,
				(uint64_t)json_integer_value(
					json_object_get(rec, "tenant_id")),
				subject))
		rp->failed = true;
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
	if (k->newest_unknown)
		return true;
	for (size_t i = 0; i < k->ncand; i++)
		may_be_gone |= k->cand[i].version[0] == '\0';
	enum kura_err rc = kura_meta_bucket_get(meta, k->bucket, &b, &err);
	if (rc == KURA_OK)
		rc = kura_meta_object_get(meta, b.id, k->key, k->key_len, pool,
					  &o, &err);
	if (rc == KURA_ENOENT) {
		if (may_be_gone)
			return true;
		printf("MISSING %s/%s: the audit log's last write left version %s, the "
		       "metadata holds nothing\n",
		       k->bucket, k->key, k->cand[0].version);
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
	char row[ROW_HEX] = "";
	if (kura_seal_object_digest(svc->row_digest_key, b.tenant_id, o, row,
				    &err) != KURA_OK) {
		printf("UNREADABLE %s/%s: %s\n", k->bucket, k->key, err.msg);
		return false;
	}
	bool same_version = false;
	for (size_t i = 0; i < k->ncand; i++) {
		const struct write *w = &k->cand[i];
		if (strcmp(w->version, have) != 0)
			continue;
		same_version = true;
		if (w->row[0] == '\0' || strcmp(w->row, row) == 0)
			return true;
	}
	if (o->mtime_ms > rp->last_ms)
		return true; /* written after the log was read */
	if (same_version) {
		printf("ROLLED BACK %s/%s: version %s holds other tags or headers than the "
		       "audit log's last write of it left\n",
		       k->bucket, k->key, have);
		return false;
	}
	printf("ROLLED BACK %s/%s: the metadata holds version %s, the audit log's last "
	       "write %s %s\n",
	       k->bucket, k->key, have,
	       may_be_gone && k->ncand == 1 ? "deleted it" : "was version",
	       may_be_gone && k->ncand == 1 ? "" : k->cand[0].version);
	return false;
}

/* The versions of k whose Object Lock settings the log changed: each must
 * hold the row the last change (or a later tagging) left.  Returns how
 * many disagree, printing each. */
static size_t check_locked(struct kura_service *svc, struct kura_pool *pool,
			   const struct key_state *k)
{
	struct kura_meta *meta = svc->meta;
	struct kura_bucket b;
	size_t bad = 0;
	for (size_t i = 0; i < k->nlocked; i++) {
		const struct write *w = &k->locked[i];
		struct kura_error err = { 0 };
		struct kura_object *o = NULL;
		uint8_t uid[KURA_UID_LEN];
		char row[ROW_HEX] = "";
		enum kura_err rc = kura_hex_decode(
			w->version, strlen(w->version), uid, KURA_UID_LEN);
		if (rc == KURA_OK)
			rc = kura_meta_bucket_get(meta, k->bucket, &b, &err);
		if (rc == KURA_OK)
			rc = kura_meta_object_get_version(meta, b.id, k->key,
							  k->key_len, uid, pool,
							  &o, &err);
		if (rc == KURA_ENOENT) {
			printf("MISSING %s/%s: version %s, whose Object Lock "
			       "settings the audit log changed, is gone\n",
			       k->bucket, k->key, w->version);
			bad++;
			continue;
		}
		struct kura_seal_ctx sc;
		kura_seal_ctx_init(&sc, svc->kms, meta);
		if (rc == KURA_OK)
			rc = kura_seal_object_open(&sc, b.tenant_id, o, true,
						   &err);
		kura_seal_ctx_release(&sc);
		if (rc == KURA_OK)
			rc = kura_seal_object_digest(svc->row_digest_key,
						     b.tenant_id, o, row, &err);
		if (rc != KURA_OK) {
			printf("%s %s/%s: version %s: %s\n",
			       rc == KURA_EINTEGRITY ? "TAMPERED" :
						       "UNREADABLE",
			       k->bucket, k->key, w->version, err.msg);
			bad++;
		} else if (strcmp(row, w->row) != 0) {
			printf("ROLLED BACK %s/%s: version %s holds other Object Lock "
			       "settings, tags or headers than the audit log's last "
			       "change of it left\n",
			       k->bucket, k->key, w->version);
			bad++;
		}
	}
	return bad;
}

/* The objects of bucket b the log never saw written, page by page; each
 * row's seal is opened, so its time cannot be forged to look recent. */
static size_t unrecorded_in(struct kura_service *svc, const struct replay *rp,
			    const struct kura_bucket *b)
{
	struct kura_meta *meta = svc->meta;
	char *after = malloc(KURA_OBJECT_KEY_MAX);
	size_t after_len = 0, bad = 0, n = LIST_PAGE;
	struct kura_seal_ctx sc;
	if (after == NULL)
		return 1;
	kura_seal_ctx_init(&sc, svc->kms, meta);
	while (n == LIST_PAGE) {
		struct kura_error err = { 0 };
		struct kura_object *os = NULL;
		struct kura_pool *pool = kura_pool_new(0);
		n = 0;
		if (pool == NULL ||
		    kura_meta_object_list(meta, b->id, NULL, 0,
					  after_len ? after : NULL, after_len,
					  LIST_PAGE, pool, &os, &n,
					  &err) != KURA_OK) {
			printf("UNREADABLE bucket '%s': %s\n", b->name,
			       pool ? err.msg : "out of memory");
			kura_pool_free(pool);
			bad++;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			struct kura_object *o = &os[i];
			if (*slot_of(rp, b->name, o->key, o->key_len) != NULL)
				continue;
			if (kura_seal_object_open(&sc, b->tenant_id, o, false,
						  &err) != KURA_OK) {
				printf("TAMPERED %s/%.*s: %s\n", b->name,
				       (int)o->key_len, o->key, err.msg);
				bad++;
			} else if (o->mtime_ms <= rp->last_ms) {
				printf("UNRECORDED %s/%.*s: in the metadata, but the audit log "
				       "never saw it written\n",
				       b->name, (int)o->key_len, o->key);
				bad++;
			}
		}
		if (n > 0) {
			memcpy(after, os[n - 1].key, os[n - 1].key_len);
			after_len = os[n - 1].key_len;
		}
		kura_pool_free(pool);
	}
	kura_seal_ctx_release(&sc);
	free(after);
	return bad;
}

/* Every object of every bucket of every tenant that the log never saw
 * written: with the whole log at hand, a row from nowhere. */
static size_t check_unrecorded(struct kura_service *svc,
			       const struct replay *rp)
{
	struct kura_meta *meta = svc->meta;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_tenant *ts = NULL;
	size_t nt = 0, bad = 0;
	if (pool == NULL ||
	    kura_meta_tenant_list(meta, pool, &ts, &nt, &err) != KURA_OK) {
		printf("UNREADABLE tenants: %s\n",
		       pool ? err.msg : "out of memory");
		kura_pool_free(pool);
		return 1;
	}
	for (size_t t = 0; t < nt; t++) {
		struct kura_bucket *bs = NULL;
		size_t nb = 0;
		if (kura_meta_bucket_list(meta, ts[t].id, pool, &bs, &nb,
					  &err) != KURA_OK) {
			printf("UNREADABLE buckets of tenant '%s': %s\n",
			       ts[t].name, err.msg);
			bad++;
			continue;
		}
		for (size_t i = 0; i < nb; i++)
			bad += unrecorded_in(svc, rp, &bs[i]);
	}
	kura_pool_free(pool);
	return bad;
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
			free(k->locked);
			free(k);
			k = next;
		}
	}
	free(rp->slots);
	audit_control_free(rp->control);
}

int cli_audit_against_meta(const struct kura_config *cfg, const char *dir)
{
	struct replay rp = { .nslots = (size_t)1 << TABLE_BITS };
	struct kura_error err = { 0 };
	uint64_t first = 0;
	size_t bad = 0;
	int code = 2;
	rp.slots = calloc(rp.nslots, sizeof(*rp.slots));
	rp.control = audit_control_new();
	struct kura_service *svc =
		rp.slots && rp.control ? cli_open_service(cfg) : NULL;
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
			bad += check_locked(svc, pool, k);
			kura_pool_free(pool);
		}
	if (first > 0)
		printf("note: records before %llu are archived; keys last written before "
		       "then are not checked, nor objects the log does not name\n",
		       (unsigned long long)first);
	else
		bad += check_unrecorded(svc, &rp);
	printf("%zu object keys of the audit log checked against the metadata: %zu "
	       "disagree\n",
	       rp.nkeys, bad);
	bad += audit_control_check(rp.control, svc);
	code = bad == 0 ? 0 : 1;
out:
	kura_service_close(svc);
	replay_free(&rp);
	return code;
}

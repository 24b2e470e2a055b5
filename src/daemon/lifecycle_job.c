/*
 * lifecycle_job.c — the background job that applies buckets' lifecycle
 * rules (kura/lifecycle.h): current versions past their Expiration become
 * a delete marker (versioned or suspended bucket) or are removed (never
 * versioned); a delete marker that is its key's only version goes
 * (ExpiredObjectDeleteMarker); noncurrent versions go NoncurrentDays after
 * they became noncurrent (the next newer version's mtime), the
 * NewerNoncurrentVersions newest of them kept; incomplete multipart
 * uploads are aborted DaysAfterInitiation after they began.
 *
 * Never a locked version: each row's Object Lock settings are read from
 * its seal (kura_version_locked), and the store refuses again; a locked
 * version is skipped, counted and recorded.  A configuration whose text
 * fails its digest or MAC is an integrity failure, never rules.
 *
 * Idempotent and resumable: each action is its own short transaction
 * (the store's), versions are walked a page at a time, and after each page
 * the position — bucket, phase, last key done — is kept in the settings
 * table ("lifecycle_cursor"), so a restart (kill -9 too) continues there;
 * repeating a page repeats nothing, since what was done is no longer due.
 * Only whole keys are done per page, so a key's noncurrent count never
 * starts in the middle.  With [maintenance] window set the job acts only
 * inside it (UTC).  Every action and every skipped locked version is an
 * audit record of type "lifecycle" (docs/AUDIT.md).
 *
 * Runs on the main thread only (the server's background loop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/daemon.h"
#include "kura/encode.h"
#include "kura/lifecycle.h"
#include "kura/log.h"
#include "kura/seal.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define CURSOR_NAME "lifecycle_cursor"
#define CURSOR_MAX 4096
#define PAGE 500		      /* versions per step */
#define UPLOAD_PAGE 1000	      /* uploads per step */
#define KEY_VERSIONS_MAX (PAGE * 256) /* versions of one key judged together */

enum phase {
	PHASE_VERSIONS = 0,
	PHASE_UPLOADS = 1
};

struct cursor {
	uint64_t bucket_id;
	enum phase phase;
	char *key; /* last key done (malloc'ed), NULL: none yet */
	size_t key_len;
};

struct job {
	struct kura_service *svc;
	struct kura_bucket b;
	struct kura_lc_config cfg;
	struct kura_seal_ctx seal;
	struct kura_pool *pool;
	int64_t now_ms, day_ms;
	struct kura_lc_stats *stats;
};

/* ---- the maintenance window ---- */

static bool hhmm(const char *s, int *min)
{
	if (!(s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
	      s[2] == ':' && s[3] >= '0' && s[3] <= '5' && s[4] >= '0' &&
	      s[4] <= '9'))
		return false;
	int h = (s[0] - '0') * 10 + (s[1] - '0');
	*min = h * 60 + (s[3] - '0') * 10 + (s[4] - '0');
	return h < 24;
}

bool kura_daemon_window_parse(const char *s, int *start_min, int *end_min)
{
	return s != NULL && strlen(s) == 11 && s[5] == '-' &&
	       hhmm(s, start_min) && hhmm(s + 6, end_min) &&
	       *start_min != *end_min;
}

bool kura_daemon_in_window(const char *window, int64_t now_ms)
{
	int start, end;
	if (window == NULL)
		return true;
	if (!kura_daemon_window_parse(window, &start, &end))
		return false; /* refused at start; never act on a bad one */
	int m = (int)((now_ms / 60000) % (24 * 60));
	return start < end ? (m >= start && m < end) : (m >= start || m < end);
}

/* ---- the cursor ---- */

static void cursor_release(struct cursor *c)
{
	free(c->key);
	memset(c, 0, sizeof(*c));
}

static void cursor_load(struct kura_meta *meta, struct cursor *c)
{
	uint8_t buf[CURSOR_MAX];
	size_t len = 0;
	memset(c, 0, sizeof(*c));
	if (kura_meta_setting_get(meta, CURSOR_NAME, buf, sizeof(buf), &len,
				  NULL) != KURA_OK)
		return;
	json_t *j = json_loadb((const char *)buf, len, 0, NULL);
	const char *hex = json_string_value(json_object_get(j, "key"));
	c->bucket_id = (uint64_t)json_integer_value(json_object_get(j, "b"));
	c->phase = json_integer_value(json_object_get(j, "p")) == 1 ?
			   PHASE_UPLOADS :
			   PHASE_VERSIONS;
	size_t n = hex ? strlen(hex) : 0;
	if (n > 0 && n % 2 == 0 && n / 2 <= KURA_OBJECT_KEY_MAX &&
	    (c->key = malloc(n / 2 + 1)) != NULL) {
		if (kura_hex_decode(hex, n, (uint8_t *)c->key, n / 2) ==
		    KURA_OK) {
			c->key_len = n / 2;
			c->key[c->key_len] = '\0';
		} else {
			free(c->key);
			c->key = NULL;
		}
	}
	json_decref(j);
}

/* Replace the stored cursor (delete and insert: a crash in between only
 * starts the round again, which repeats nothing). */
static void cursor_save(struct kura_meta *meta, const struct cursor *c)
{
	char hex[2 * KURA_OBJECT_KEY_MAX + 1] = "";
	struct kura_error err = { 0 };
	if (c->key_len > 0)
		kura_hex_encode((const uint8_t *)c->key, c->key_len, hex);
	json_t *j = json_pack("{sIsiss}", "b", (json_int_t)c->bucket_id, "p",
			      (int)c->phase, "key", hex);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text == NULL ||
	    kura_meta_setting_delete(meta, CURSOR_NAME, &err) != KURA_OK ||
	    kura_meta_setting_insert(meta, CURSOR_NAME, (const uint8_t *)text,
				     strlen(text), &err) != KURA_OK)
		kura_warn(NULL, "lifecycle: cannot keep the cursor: %s",
			  err.msg);
	free(text);
}

/* ---- audit ---- */

/* Append one record; false when the log refused it (logged). */
static bool record(struct job *j, const char *op, const char *key,
		   size_t key_len, const char *version, const char *rule,
		   const char *effect, const char *row, enum kura_err outcome)
{
	struct kura_error err = { 0 };
	json_t *d = json_pack("{ss}", "bucket", j->b.name);
	json_t *k = json_stringn(key, key_len);
	bool ok = false;
	if (d == NULL) {
		json_decref(k);
		return false;
	}
	/* A key that is not UTF-8 is named in hex. */
	if (k != NULL)
		json_object_set_new(d, "key", k);
	else if (key_len <= KURA_OBJECT_KEY_MAX) {
		char hex[2 * KURA_OBJECT_KEY_MAX + 1];
		kura_hex_encode((const uint8_t *)key, key_len, hex);
		json_object_set_new(d, "key_hex", json_string(hex));
	}
	if (version != NULL)
		json_object_set_new(d, "version", json_string(version));
	if (rule != NULL)
		json_object_set_new(d, "rule", json_string(rule));
	if (effect != NULL)
		json_object_set_new(d, "version_effect", json_string(effect));
	if (row != NULL && row[0] != '\0')
		json_object_set_new(d, "row", json_string(row));
	char *text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	if (text != NULL &&
	    kura_service_audit_event(j->svc, "lifecycle", op, j->b.tenant_id,
				     NULL, text, outcome, &err) == KURA_OK)
		ok = true;
	else
		kura_error(NULL, "lifecycle: audit log refused a record: %s",
			   err.msg);
	free(text);
	return ok;
}

/* A version as the audit log names it: its uid in hex, the null version's
 * too (as S3 records note it), so the replay can match it. */
static void version_name(const struct kura_object *o, char out[33])
{
	kura_hex_encode(o->version_uid, KURA_UID_LEN, out);
}

/* ---- actions ---- */

/* Remove version o for good (the store refuses a locked one too).  The
 * record comes first, as for a KEK destruction: a removal cannot be undone
 * should the log then refuse, so a log that refuses stops it, and a crash
 * in between leaves a record of a removal the next round does (repeating
 * the record) rather than a removal nobody recorded.  The version is
 * checked unlocked first (as its seal says), so the store's own refusal
 * is not expected here. */
static void remove_version(struct job *j, const struct kura_object *o,
			   const char *rule, const char *op, bool gone)
{
	struct kura_error err = { 0 };
	char v[33];
	version_name(o, v);
	if (kura_version_locked(o, j->now_ms, false)) {
		j->stats->locked++;
		KURA_IGNORE(record(j, "lifecycle.locked", o->key, o->key_len, v,
				   rule, NULL, NULL, KURA_EPERM));
		return;
	}
	if (!record(j, op, o->key, o->key_len, v, rule,
		    gone ? "gone" : "removed", NULL, KURA_OK)) {
		j->stats->failed++;
		return;
	}
	enum kura_err rc = kura_meta_object_delete(
		j->svc->meta, j->b.id, o->key, o->key_len,
		o->null_version ? NULL : o->version_uid, NULL, false, &err);
	if (rc == KURA_ENOENT)
		return; /* gone already */
	if (rc != KURA_OK) {
		j->stats->failed++;
		kura_warn(NULL, "lifecycle: bucket '%s': %s", j->b.name,
			  err.msg);
		return;
	}
	j->stats->removed++;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec < 0 ? 1 :
			       (uint64_t)ts.tv_sec * 1000000u +
				       (uint64_t)ts.tv_nsec / 1000u;
}

/* A delete marker over current version cur, as DeleteObject writes one:
 * sealed with the bucket's key, and only while cur is still the newest. */
static void put_marker(struct job *j, const struct kura_object *cur,
		       const char *rule)
{
	struct kura_error err = { 0 };
	struct kura_object m;
	struct kura_put_cond cond = { .expect_vseq = cur->vseq };
	char v[33], row[2 * KURA_ROW_DIGEST_LEN + 1] = "";
	memset(&m, 0, sizeof(m));
	m.bucket_id = j->b.id;
	m.key = cur->key;
	m.key_len = cur->key_len;
	m.delete_marker = true;
	m.sse = KURA_SSE_S3;
	m.mtime_ms = kura_now_ms();
	m.null_version = j->b.versioning != KURA_VERSIONING_ENABLED;
	m.vseq = now_us();
	if (m.vseq <= cur->vseq)
		m.vseq = cur->vseq + 1;
	enum kura_err rc = kura_random_bytes(m.version_uid, KURA_UID_LEN, &err);
	if (rc == KURA_OK)
		rc = kura_seal_object(&j->seal, &j->b, &m, &err);
	if (rc == KURA_OK)
		rc = kura_meta_object_put(j->svc->meta, &m, &cond, &err);
	if (rc == KURA_ECONFLICT || rc == KURA_ENOENT)
		return; /* written meanwhile: no longer due */
	if (rc != KURA_OK) {
		j->stats->failed++;
		kura_warn(NULL, "lifecycle: bucket '%s': %s", j->b.name,
			  err.msg);
		return;
	}
	if (kura_seal_object_digest(j->svc->row_digest_key, j->b.tenant_id, &m,
				    row, &err) != KURA_OK)
		row[0] = '\0';
	version_name(&m, v);
	j->stats->markers++;
	/* After the write, which may find the key changed (then nothing is
	 * due): a crash in between leaves this marker unrecorded, which
	 * --against-meta reports for the key. */
	KURA_IGNORE(record(j, "lifecycle.expire", m.key, m.key_len, v, rule,
			   "marker", row, KURA_OK));
}

/* ---- deciding ---- */

static const struct kura_lc_rule *expiring_rule(struct job *j,
						const struct kura_object *o)
{
	for (size_t i = 0; i < j->cfg.n; i++) {
		const struct kura_lc_rule *r = &j->cfg.rules[i];
		if (r->enabled && (r->exp_days || r->has_exp_date) &&
		    kura_lc_matches(r, o->key, o->key_len, o->size,
				    o->tags_json) &&
		    kura_lc_expiry_ms(r, o->mtime_ms, j->day_ms) <= j->now_ms)
			return r;
	}
	return NULL;
}

/* Noncurrent version o, the n-th newest noncurrent one, noncurrent since
 * since_ms: the rule that removes it now, if any. */
static const struct kura_lc_rule *noncurrent_rule(struct job *j,
						  const struct kura_object *o,
						  size_t n, int64_t since_ms)
{
	for (size_t i = 0; i < j->cfg.n; i++) {
		const struct kura_lc_rule *r = &j->cfg.rules[i];
		if (!r->enabled || r->noncurrent_days == 0 ||
		    n <= r->newer_noncurrent ||
		    !kura_lc_matches(r, o->key, o->key_len, o->size,
				     o->tags_json))
			continue;
		int64_t due = kura_lc_day_ceil(
			since_ms + (int64_t)r->noncurrent_days * j->day_ms,
			j->day_ms);
		if (due <= j->now_ms)
			return r;
	}
	return NULL;
}

static const struct kura_lc_rule *marker_rule(struct job *j,
					      const struct kura_object *o)
{
	for (size_t i = 0; i < j->cfg.n; i++) {
		const struct kura_lc_rule *r = &j->cfg.rules[i];
		if (r->enabled && r->exp_marker && kura_lc_prefix_only(r) &&
		    kura_lc_matches(r, o->key, o->key_len, 0, NULL))
			return r;
	}
	return NULL;
}

/* Whether o is locked as its seal says (the row's own fields may lie). */
static bool sealed(struct job *j, struct kura_object *o)
{
	struct kura_error err = { 0 };
	if (kura_seal_object_open(&j->seal, j->b.tenant_id, o, false, &err) ==
	    KURA_OK)
		return true;
	j->stats->failed++;
	kura_daemon_record_integrity(j->svc, &err, true);
	return false;
}

/* One key's versions v[0..n), newest first (v[0] its current one). */
static void do_key(struct job *j, struct kura_object *v, size_t n)
{
	size_t remaining = n;
	for (size_t i = 0; i < n; i++) {
		if (!sealed(j, &v[i]))
			return;
		const struct kura_lc_rule *r;
		if (i == 0 && !v[0].delete_marker) {
			if ((r = expiring_rule(j, &v[0])) == NULL)
				continue;
			if (j->b.versioning == KURA_VERSIONING_OFF) {
				remove_version(j, &v[0], r->id,
					       "lifecycle.expire", true);
				remaining--;
			} else {
				put_marker(j, &v[0], r->id);
			}
		} else if (i > 0 &&
			   (r = noncurrent_rule(j, &v[i], i,
						v[i - 1].mtime_ms)) != NULL) {
			uint64_t before = j->stats->removed;
			remove_version(j, &v[i], r->id, "lifecycle.noncurrent",
				       false);
			remaining -= j->stats->removed > before;
		}
	}
	const struct kura_lc_rule *r;
	if (n > 0 && v[0].delete_marker && remaining == 1 &&
	    (r = marker_rule(j, &v[0])) != NULL)
		remove_version(j, &v[0], r->id, "lifecycle.marker", false);
}

static bool same_key(const struct kura_object *a, const struct kura_object *b)
{
	return a->key_len == b->key_len &&
	       memcmp(a->key, b->key, a->key_len) == 0;
}

/* One page of versions after c's key; *done when the bucket has no more.
 * c's key moves to the last key done. */
static enum kura_err versions_page(struct job *j, struct cursor *c, bool *done,
				   struct kura_error *err)
{
	struct kura_object *v = NULL;
	size_t count = 0, limit = PAGE;
	enum kura_err rc;
	/* A page holding one key only is read again larger, so that a key's
	 * versions are judged together (up to KEY_VERSIONS_MAX of them). */
	for (;;) {
		rc = kura_meta_object_list_versions(j->svc->meta, j->b.id, "",
						    0, c->key ? c->key : "",
						    c->key_len, 0, limit,
						    j->pool, &v, &count, err);
		if (rc != KURA_OK)
			return rc;
		if (count < limit || !same_key(&v[0], &v[count - 1]) ||
		    limit >= KEY_VERSIONS_MAX)
			break;
		limit *= 4;
	}
	*done = count < limit;
	/* A full page may end inside a key: leave that key to the next page
	 * (unless it is the only one: then its first KEY_VERSIONS_MAX
	 * versions are all this round sees of it). */
	size_t end = count;
	if (!*done) {
		while (end > 0 && same_key(&v[end - 1], &v[count - 1]))
			end--;
		if (end == 0)
			end = count;
	}
	for (size_t i = 0; i < end;) {
		size_t k = i + 1;
		while (k < end && same_key(&v[k], &v[i]))
			k++;
		do_key(j, v + i, k - i);
		i = k;
	}
	if (end > 0) {
		char *key = malloc(v[end - 1].key_len + 1);
		if (key == NULL)
			return kura_fail(err, KURA_ENOMEM, "out of memory");
		memcpy(key, v[end - 1].key, v[end - 1].key_len);
		key[v[end - 1].key_len] = '\0';
		free(c->key);
		c->key = key;
		c->key_len = v[end - 1].key_len;
	}
	return KURA_OK;
}

static const struct kura_lc_rule *abort_rule(struct job *j,
					     const struct kura_upload *u)
{
	for (size_t i = 0; i < j->cfg.n; i++) {
		const struct kura_lc_rule *r = &j->cfg.rules[i];
		if (r->enabled && r->abort_days > 0 && kura_lc_prefix_only(r) &&
		    kura_lc_matches(r, u->key, u->key_len, 0, NULL) &&
		    kura_lc_day_ceil(u->created_ms +
					     (int64_t)r->abort_days * j->day_ms,
				     j->day_ms) <= j->now_ms)
			return r;
	}
	return NULL;
}

/* Abort the bucket's due uploads, one page after (*key, id). */
static enum kura_err uploads_page(struct job *j, const char **key,
				  size_t *key_len, char id[KURA_UPLOAD_ID_MAX],
				  bool *more, struct kura_error *err)
{
	struct kura_upload *u = NULL;
	size_t count = 0;
	enum kura_err rc = kura_meta_upload_list(j->svc->meta, j->b.id, "", 0,
						 *key, *key_len, id,
						 UPLOAD_PAGE, j->pool, &u,
						 &count, err);
	*more = rc == KURA_OK && count == UPLOAD_PAGE;
	for (size_t i = 0; rc == KURA_OK && i < count; i++) {
		const struct kura_lc_rule *r = abort_rule(j, &u[i]);
		struct kura_error e = { 0 };
		if (r == NULL)
			continue;
		/* Recorded first, as a removal (remove_version). */
		if (!record(j, "lifecycle.abort", u[i].key, u[i].key_len, NULL,
			    r->id, NULL, NULL, KURA_OK)) {
			j->stats->failed++;
			continue;
		}
		enum kura_err a = kura_meta_upload_abort(j->svc->meta, j->b.id,
							 u[i].id, &e);
		if (a == KURA_OK)
			j->stats->aborted++;
		else if (a != KURA_ENOENT) {
			j->stats->failed++;
			kura_warn(NULL, "lifecycle: bucket '%s': %s", j->b.name,
				  e.msg);
		}
	}
	if (*more) {
		*key = u[count - 1].key;
		*key_len = u[count - 1].key_len;
		snprintf(id, KURA_UPLOAD_ID_MAX, "%s", u[count - 1].id);
	}
	return rc;
}

/* Abort every due upload of the bucket, page by page (uploads are few
 * beside versions; a restart lists them again, which repeats nothing). */
static enum kura_err uploads_step(struct job *j, struct kura_error *err)
{
	const char *key = "";
	size_t key_len = 0;
	char id[KURA_UPLOAD_ID_MAX] = "";
	bool more = true;
	enum kura_err rc = KURA_OK;
	while (rc == KURA_OK && more)
		rc = uploads_page(j, &key, &key_len, id, &more, err);
	return rc;
}

/* ---- the round ---- */

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const struct kura_bucket *)a)->id;
	uint64_t y = ((const struct kura_bucket *)b)->id;
	return x < y ? -1 : x > y;
}

/* The first bucket with a lifecycle configuration and an id >= from. */
static enum kura_err next_bucket(struct kura_service *svc, uint64_t from,
				 struct kura_pool *pool,
				 struct kura_bucket *out, bool *found,
				 struct kura_error *err)
{
	struct kura_tenant *ts = NULL;
	size_t nt = 0;
	*found = false;
	enum kura_err rc =
		kura_meta_tenant_list(svc->meta, pool, &ts, &nt, err);
	for (size_t t = 0; rc == KURA_OK && t < nt; t++) {
		struct kura_bucket *bs = NULL;
		size_t nb = 0;
		rc = kura_meta_bucket_list(svc->meta, ts[t].id, pool, &bs, &nb,
					   err);
		if (rc == KURA_OK && nb > 1)
			qsort(bs, nb, sizeof(*bs), by_id);
		for (size_t i = 0; rc == KURA_OK && i < nb; i++) {
			if (!bs[i].has_lifecycle || bs[i].id < from ||
			    (*found && bs[i].id >= out->id))
				continue;
			*out = bs[i];
			*found = true;
		}
	}
	return rc;
}

static enum kura_err load_rules(struct job *j, struct kura_error *err)
{
	char *text = NULL;
	enum kura_err rc = kura_meta_bucket_get_lifecycle(j->svc->meta, j->b.id,
							  &text, err);
	if (rc == KURA_OK) {
		rc = kura_lc_from_json(text, strlen(text), j->pool, &j->cfg,
				       err);
		if (rc == KURA_EINVAL)
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "bucket '%s': lifecycle: %s", j->b.name,
				       err->msg);
	}
	free(text);
	return rc;
}

/* One page of bucket b's work at cursor c; *bucket_done when it has none
 * left this round. */
static enum kura_err bucket_step(struct job *j, struct cursor *c,
				 bool *bucket_done, struct kura_error *err)
{
	enum kura_err rc = load_rules(j, err);
	*bucket_done = false;
	if (rc == KURA_EINTEGRITY || rc == KURA_ENOENT) {
		/* Planted or gone: never rules; the next bucket. */
		if (rc == KURA_EINTEGRITY)
			kura_daemon_record_integrity(j->svc, err, true);
		*bucket_done = true;
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return rc;
	if (c->phase == PHASE_VERSIONS) {
		bool done = false;
		rc = versions_page(j, c, &done, err);
		if (rc == KURA_OK && done) {
			c->phase = PHASE_UPLOADS;
			free(c->key);
			c->key = NULL;
			c->key_len = 0;
		}
		return rc;
	}
	rc = uploads_step(j, err);
	*bucket_done = rc == KURA_OK;
	return rc;
}

enum kura_err kura_daemon_lifecycle_step(struct kura_service *svc,
					 struct kura_lc_stats *stats,
					 bool *finished, struct kura_error *err)
{
	struct job j = { .svc = svc, .stats = stats };
	struct cursor c;
	bool found = false, bucket_done = false;
	enum kura_err rc;
	*finished = true;
	j.now_ms = kura_now_ms();
	j.day_ms = svc->lifecycle_day_ms > 0 ? svc->lifecycle_day_ms : 86400000;
	if (!kura_daemon_in_window(kura_config_get(svc->cfg, "maintenance",
						   "window"),
				   j.now_ms))
		return KURA_OK;
	if ((j.pool = kura_pool_new(0)) == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	cursor_load(svc->meta, &c);
	rc = next_bucket(svc, c.bucket_id, j.pool, &j.b, &found, err);
	if (rc == KURA_OK && !found) {
		/* The round is over: the next starts from the first bucket. */
		rc = kura_meta_setting_delete(svc->meta, CURSOR_NAME, err);
		goto out;
	}
	if (rc != KURA_OK)
		goto out;
	if (j.b.id != c.bucket_id) {
		cursor_release(&c);
		c.bucket_id = j.b.id;
	}
	kura_seal_ctx_init(&j.seal, svc->kms, svc->meta);
	rc = bucket_step(&j, &c, &bucket_done, err);
	kura_seal_ctx_release(&j.seal);
	if (rc == KURA_OK && bucket_done && j.b.id == UINT64_MAX) {
		/* No id follows: the round is over. */
		rc = kura_meta_setting_delete(svc->meta, CURSOR_NAME, err);
		goto out;
	}
	if (rc == KURA_OK && bucket_done) {
		cursor_release(&c);
		c.bucket_id = j.b.id + 1;
	}
	if (rc == KURA_OK)
		cursor_save(svc->meta, &c);
	*finished = false;
out:
	cursor_release(&c);
	kura_pool_free(j.pool);
	return rc;
}

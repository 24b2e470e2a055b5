/*
 * scrub.c — keeping copies healthy (F-6): re-read every replica of every
 * blob of a bucket (or of all buckets), judge each copy
 * (scrub_read.c), and repair a missing or corrupt one from a copy that
 * was judged good in the same pass.
 *
 * What a pass leaves behind, per replica, in the replica history
 * (meta.h "Replicas"): verified (with verified_ms) for a good copy; failed
 * with "scrub: missing" or "scrub: corrupt: WHY" for a bad one, then
 * stored with "scrub: repaired from BACKEND" once the copy made from a
 * good one was read back and judged good itself.  Every bad copy is also
 * an integrity.failure record in the audit log (and counted in
 * svc->integrity_failures), written before the repair, so a log that
 * refuses it stops the scrub before it acts; what became of the copy is
 * a replica.repaired or replica.unrepairable record (docs/AUDIT.md).
 *
 * Judging by majority: copies that cannot be authenticated (SSE-C, a key
 * disabled or destroyed) are compared by the SHA-256 of their bytes; a
 * copy that differs from the digest most copies share is corrupt, and when
 * two digests tie (two copies that differ) neither is taken as good.
 *
 * Runs beside a server: a blob deleted while the scrub reads it looks
 * missing, so before a bad copy is recorded or repaired the blob must
 * still be referenced and its replica not deleted; after a repair the
 * replica is looked at again, and a copy made for a blob deleted in the
 * meantime is removed.  Pending (async, not yet copied) and deleted
 * replicas are not read.  A copy that cannot be read (backend
 * unreachable) is logged and left as it is, for the next pass.
 *
 * Memory: a page of blobs, one blob's replica rows, one segment buffer and
 * one copy chunk (kura_service_copy_replica).  Single-threaded (one scrub
 * per call).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/placement.h"
#include "kura/timefmt.h"
#include "service_int.h"
#include "kura/banned.h"

#define PAGE 64
#define COPIES KURA_BACKENDS_MAX

struct scrub {
	struct kura_service *svc;
	struct kura_scrub_report *rep;
	const struct kura_scrub_blob *blob;
	struct scrub_reader reader;
	char blob_hex[2 * KURA_BLOB_ID_LEN + 1];
	char version_hex[2 * KURA_UID_LEN + 1];
	/* The name of the bucket of the blob at hand (for the audit log). */
	uint64_t bucket_id;
	char bucket[KURA_BUCKET_NAME_MAX];
	/* The blob's replicas and what this pass found of each. */
	struct kura_replica rows[COPIES];
	struct scrub_check checks[COPIES];
	int backend[COPIES]; /* index in the placement; -1: not read */
	size_t nrows;
	/* A bad copy of the blob stays bad: the blob counts as unrepairable
	 * (once, however many of its copies are bad). */
	bool unrepaired;
};

/* ---- records ---- */

/* A bad copy is an integrity failure: logged, counted and recorded as
 * one (type "integrity", with the bucket and version it belongs to), so
 * the count a server.stop record carries matches the records. */
static enum kura_err failure(struct scrub *s, const char *backend,
			     const char *what, struct kura_error *err)
{
	uint64_t n = __atomic_add_fetch(&s->svc->integrity_failures, 1,
					__ATOMIC_RELAXED);
	kura_error(NULL, "integrity failure #%llu: blob %s on '%s': %s",
		   (unsigned long long)n, s->blob_hex, backend, what);
	json_t *d = json_pack("{s:s, s:s, s:s}", "what", what, "backend",
			      backend, "blob", s->blob_hex);
	char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	if (detail == NULL)
		return kura_fail(err, KURA_ENOMEM, "scrub: audit record");
	struct kura_audit_record r = {
		.type = "integrity",
		.op = "integrity.failure",
		.tenant_id = s->blob->tenant_id,
		.bucket = s->bucket[0] ? s->bucket : NULL,
		.version = s->version_hex,
		.actor = kura_service_actor(),
		.error = kura_errname(KURA_EINTEGRITY),
		.detail_json = detail,
	};
	enum kura_err rc = kura_service_audit(s->svc, &r, err);
	free(detail);
	return rc;
}

/* What became of a bad copy (type "replica": replica.repaired,
 * replica.unrepairable), with the row as it now is. */
static enum kura_err outcome(struct scrub *s, size_t i, const char *op,
			     const char *note, enum kura_err result,
			     struct kura_error *err)
{
	enum kura_err rc = kura_service_audit_replica(s->svc, op, &s->rows[i],
						      note, result);
	if (rc != KURA_OK)
		return kura_fail(err, rc, "audit log refused the %s record",
				 op);
	return KURA_OK;
}

/* Is replica i still one to judge (not deleted or made pending by the
 * server since it was listed)?  A blob from before placement has no rows
 * yet: its local copy is. */
static enum kura_err row_live(struct scrub *s, size_t i, bool *live,
			      struct kura_error *err)
{
	struct kura_replica now[COPIES];
	size_t n = 0;
	enum kura_err rc = kura_meta_replica_list(
		s->svc->meta, s->blob->part.blob_id, now, COPIES, &n, err);
	if (rc != KURA_OK)
		return rc;
	*live = n == 0;
	for (size_t k = 0; k < n; k++)
		if (strcmp(now[k].backend, s->rows[i].backend) == 0)
			*live = now[k].state != KURA_REPLICA_DELETED &&
				now[k].state != KURA_REPLICA_PENDING;
	return KURA_OK;
}

/* Is the blob still referenced, and replica i live? */
static enum kura_err still_there(struct scrub *s, size_t i, bool *yes,
				 struct kura_error *err)
{
	bool ref = false;
	enum kura_err rc = kura_meta_blob_referenced(
		s->svc->meta, s->blob->part.blob_id, &ref, err);
	*yes = false;
	if (rc == KURA_OK && ref)
		rc = row_live(s, i, yes, err);
	return rc;
}

/* Move row i to state with note in its history — unless the server
 * deleted it meanwhile, which must not be overwritten.  (The check and
 * the write are two statements: a deletion between them leaves a row
 * that a later deletion pass or scrub corrects.) */
static enum kura_err set_state(struct scrub *s, size_t i,
			       enum kura_replica_state state, const char *note,
			       struct kura_error *err)
{
	struct kura_replica *row = &s->rows[i];
	int64_t now = kura_now_ms();
	bool live = false;
	enum kura_err rc = row_live(s, i, &live, err);
	if (rc != KURA_OK || !live)
		return rc;
	row->state = state;
	row->changed_ms = now;
	if (state == KURA_REPLICA_VERIFIED)
		row->verified_ms = now;
	if (state == KURA_REPLICA_STORED)
		row->stored_ms = now;
	return kura_meta_replica_set(s->svc->meta, row, 1, note, err);
}

/* ---- one blob ---- */

static enum kura_err bucket_name(struct scrub *s, struct kura_error *err)
{
	struct kura_bucket b;
	if (s->bucket_id == s->blob->bucket_id && s->bucket[0])
		return KURA_OK;
	enum kura_err rc = kura_meta_bucket_get_id(s->svc->meta,
						   s->blob->bucket_id, &b, err);
	if (rc != KURA_OK)
		return rc;
	s->bucket_id = b.id;
	snprintf(s->bucket, sizeof(s->bucket), "%s", b.name);
	return KURA_OK;
}

/* The blob's replica rows.  A blob written before placement has none: it
 * lives on "local", and this pass gives it its first row. */
static enum kura_err load_rows(struct scrub *s, struct kura_error *err)
{
	const struct kura_placement *p = s->svc->placement;
	const uint8_t *id = s->blob->part.blob_id;
	enum kura_err rc = kura_meta_replica_list(s->svc->meta, id, s->rows,
						  COPIES, &s->nrows, err);
	if (rc != KURA_OK || s->nrows > 0)
		return rc;
	int local = kura_placement_backend_index(p, "local");
	if (local < 0)
		return KURA_OK;
	memset(&s->rows[0], 0, sizeof(s->rows[0]));
	kura_placement_replica_row(p, (size_t)local, id,
				   kura_blob_size(s->blob->part.size,
						  s->blob->part.seg_size),
				   &s->rows[0]);
	s->rows[0].state = KURA_REPLICA_STORED;
	s->nrows = 1;
	return KURA_OK;
}

/* Read every replica that should be there. */
static enum kura_err check_all(struct scrub *s, struct kura_error *err)
{
	const struct kura_placement *p = s->svc->placement;
	for (size_t i = 0; i < s->nrows; i++) {
		const struct kura_replica *row = &s->rows[i];
		s->backend[i] = -1;
		if (row->state == KURA_REPLICA_PENDING ||
		    row->state == KURA_REPLICA_DELETED)
			continue;
		int b = kura_placement_backend_index(p, row->backend);
		if (b < 0) {
			kura_warn(NULL,
				  "scrub: blob %s: backend '%s' is no longer "
				  "configured; its copy is not read",
				  s->blob_hex, row->backend);
			continue;
		}
		s->backend[i] = b;
		s->rep->replicas++;
		enum kura_err rc = scrub_check_copy(
			&s->reader, kura_placement_backend_store(p, (size_t)b),
			&s->checks[i], err);
		if (rc != KURA_OK)
			return rc;
	}
	return KURA_OK;
}

/* Copies judged only by their bytes: the digest most copies share is the
 * good one; when two digests tie for that, no copy is. */
static void judge_by_majority(struct scrub *s)
{
	size_t best = 0, best_n = 0;
	bool tie = false;
	for (size_t i = 0; i < s->nrows; i++) {
		if (s->backend[i] < 0 || s->checks[i].verdict != SCRUB_OK)
			continue;
		size_t n = 0;
		for (size_t k = 0; k < s->nrows; k++)
			if (s->backend[k] >= 0 &&
			    s->checks[k].verdict == SCRUB_OK &&
			    memcmp(s->checks[k].digest, s->checks[i].digest,
				   32) == 0)
				n++;
		if (n > best_n) {
			best = i;
			best_n = n;
			tie = false;
		} else if (n == best_n &&
			   memcmp(s->checks[best].digest, s->checks[i].digest,
				  32) != 0) {
			tie = true;
		}
	}
	for (size_t i = 0; i < s->nrows; i++) {
		struct scrub_check *c = &s->checks[i];
		if (s->backend[i] < 0 || c->verdict != SCRUB_OK)
			continue;
		if (tie)
			snprintf(c->reason, sizeof(c->reason),
				 "copies differ and none is in the majority");
		else if (memcmp(c->digest, s->checks[best].digest, 32) != 0)
			snprintf(c->reason, sizeof(c->reason),
				 "bytes differ from the other copies");
		else
			continue;
		c->verdict = SCRUB_CORRUPT;
		c->by_majority = true;
	}
}

/* The first copy judged good: where repairs come from; -1 when none. */
static int good_copy(const struct scrub *s)
{
	for (size_t i = 0; i < s->nrows; i++)
		if (s->backend[i] >= 0 && s->checks[i].verdict == SCRUB_OK)
			return (int)i;
	return -1;
}

/* A repair that did not work: the replica stays failed. */
static enum kura_err not_repaired(struct scrub *s, size_t i, const char *note,
				  enum kura_err why, struct kura_error *err)
{
	s->unrepaired = true;
	kura_warn(NULL, "scrub: blob %s on '%s': %s", s->blob_hex,
		  s->rows[i].backend, note + 7);
	enum kura_err rc = set_state(s, i, KURA_REPLICA_FAILED, note, err);
	return rc == KURA_OK ?
		       outcome(s, i, "replica.unrepairable", note, why, err) :
		       rc;
}

/* After the copy: judge it; drop it again if the blob went meanwhile. */
static enum kura_err after_copy(struct scrub *s, size_t i, size_t src,
				struct kura_store *to, struct kura_error *err)
{
	const char *from = s->rows[src].backend;
	struct scrub_check c;
	char note[KURA_REPLICA_NOTE_MAX];
	bool there = false;
	enum kura_err rc = scrub_check_copy(&s->reader, to, &c, err);
	if (rc == KURA_OK)
		rc = still_there(s, i, &there, err);
	if (rc != KURA_OK)
		return rc;
	if (!there) /* deleted while we copied: no resurrection */
		return kura_store_remove(to, s->blob->part.blob_id, err);
	/* Copies judged by their bytes: the new one must be the good one's. */
	if (c.verdict == SCRUB_OK && s->reader.dek == NULL &&
	    memcmp(c.digest, s->checks[src].digest, sizeof(c.digest)) != 0) {
		c.verdict = SCRUB_CORRUPT;
		snprintf(c.reason, sizeof(c.reason),
			 "the copy's bytes differ from its source's");
	}
	if (c.verdict != SCRUB_OK) {
		snprintf(note, sizeof(note),
			 "scrub: repair from %s failed: %.120s", from,
			 c.reason);
		return not_repaired(s, i, note, KURA_EINTEGRITY, err);
	}
	s->rep->repaired++;
	snprintf(note, sizeof(note), "scrub: repaired from %s", from);
	kura_info(NULL, "scrub: blob %s on '%s' %s", s->blob_hex,
		  s->rows[i].backend, note + 7);
	rc = set_state(s, i, KURA_REPLICA_STORED, note, err);
	return rc == KURA_OK ?
		       outcome(s, i, "replica.repaired", note, KURA_OK, err) :
		       rc;
}

/* Copy row src's good copy over row i's bad one. */
static enum kura_err repair(struct scrub *s, size_t i, size_t src,
			    struct kura_error *err)
{
	const uint8_t *id = s->blob->part.blob_id;
	size_t from = (size_t)s->backend[src], to = (size_t)s->backend[i];
	struct kura_store *dst =
		kura_placement_backend_store(s->svc->placement, to);
	const char *name = s->rows[src].backend;
	struct kura_error e = { 0 };
	char note[KURA_REPLICA_NOTE_MAX];
	uint64_t bytes = 0;
	enum kura_err rc =
		kura_service_copy_replica(s->svc, id, from, to, &bytes, &e);
	if (rc != KURA_OK) {
		/* A damaged staged copy of the id may be in the way (fs
		 * stages exclusively): it is bad anyway; remove it, once. */
		kura_error_clear(&e);
		rc = kura_store_remove(dst, id, &e);
		if (rc == KURA_OK)
			rc = kura_service_copy_replica(s->svc, id, from, to,
						       &bytes, &e);
	}
	if (rc == KURA_OK)
		return after_copy(s, i, src, dst, err);
	/* A backend that refuses the copy now may take it next pass. */
	snprintf(note, sizeof(note), "scrub: repair from %s failed: %.120s",
		 name, e.msg);
	return not_repaired(s, i, note, rc, err);
}

/* A missing or corrupt copy: recorded, then repaired when it can be. */
static enum kura_err bad_copy(struct scrub *s, size_t i, int src,
			      struct kura_error *err)
{
	const struct scrub_check *c = &s->checks[i];
	char note[KURA_REPLICA_NOTE_MAX];
	bool there = false;
	enum kura_err rc = still_there(s, i, &there, err);
	if (rc != KURA_OK || !there)
		return rc; /* deleted meanwhile: nothing was wrong */
	if (c->verdict == SCRUB_MISSING) {
		s->rep->missing++;
		snprintf(note, sizeof(note), "scrub: missing");
	} else {
		s->rep->corrupt++;
		snprintf(note, sizeof(note), "scrub: corrupt: %s", c->reason);
	}
	if ((rc = bucket_name(s, err)) != KURA_OK ||
	    (rc = failure(s, s->rows[i].backend, note + 7, err)) != KURA_OK ||
	    (rc = set_state(s, i, KURA_REPLICA_FAILED, note, err)) != KURA_OK)
		return rc;
	if (src >= 0)
		return repair(s, i, (size_t)src, err);
	s->unrepaired = true;
	kura_error(NULL, "scrub: blob %s on '%s': no good copy to repair from",
		   s->blob_hex, s->rows[i].backend);
	return outcome(s, i, "replica.unrepairable",
		       "scrub: no good copy to repair from", KURA_EINTEGRITY,
		       err);
}

/* Record what the checks found, and repair. */
static enum kura_err conclude(struct scrub *s, struct kura_error *err)
{
	int src = good_copy(s);
	char note[KURA_REPLICA_NOTE_MAX];
	enum kura_err rc = KURA_OK;
	if (s->reader.dek == NULL)
		snprintf(note, sizeof(note),
			 "scrub: verified (bytes compared, not "
			 "authenticated: %s)",
			 s->reader.no_dek);
	else
		snprintf(note, sizeof(note), "scrub: verified");
	for (size_t i = 0; rc == KURA_OK && i < s->nrows; i++) {
		if (s->backend[i] < 0)
			continue;
		switch (s->checks[i].verdict) {
		case SCRUB_OK:
			s->rep->ok++;
			rc = set_state(s, i, KURA_REPLICA_VERIFIED, note, err);
			break;
		case SCRUB_MISSING:
		case SCRUB_CORRUPT:
			/* Bytes that merely disagree with copies that cannot
			 * be authenticated either are marked, not replaced:
			 * two copies altered alike would outvote a good one. */
			rc = bad_copy(s, i, s->checks[i].by_majority ? -1 : src,
				      err);
			break;
		case SCRUB_UNREACHABLE:
			kura_warn(NULL, "scrub: blob %s on '%s' not read: %s",
				  s->blob_hex, s->rows[i].backend,
				  s->checks[i].reason);
			break;
		}
	}
	return rc;
}

static enum kura_err scrub_blob(struct scrub *s,
				const struct kura_scrub_blob *blob,
				struct kura_error *err)
{
	s->blob = blob;
	s->unrepaired = false;
	s->rep->blobs++;
	kura_hex_encode(blob->part.blob_id, KURA_BLOB_ID_LEN, s->blob_hex);
	kura_hex_encode(blob->version_uid, KURA_UID_LEN, s->version_hex);
	enum kura_err rc = load_rows(s, err);
	if (rc != KURA_OK || s->nrows == 0)
		return rc;
	rc = scrub_reader_init(&s->reader, s->svc, blob, err);
	if (rc == KURA_OK && s->reader.dek_damaged &&
	    (rc = bucket_name(s, err)) == KURA_OK)
		rc = failure(s, "-", "the wrapped data key does not open", err);
	if (rc == KURA_OK)
		rc = check_all(s, err);
	if (rc == KURA_OK && s->reader.dek == NULL)
		judge_by_majority(s);
	if (rc == KURA_OK)
		rc = conclude(s, err);
	if (s->unrepaired)
		s->rep->unrepairable++;
	scrub_reader_release(&s->reader);
	return rc;
}

void kura_scrub_report_format(const struct kura_scrub_report *r, char *buf,
			      size_t cap)
{
	snprintf(buf, cap,
		 "%llu blobs, %llu replicas, %llu ok, %llu missing, %llu "
		 "corrupt, %llu repaired, %llu unrepairable",
		 (unsigned long long)r->blobs, (unsigned long long)r->replicas,
		 (unsigned long long)r->ok, (unsigned long long)r->missing,
		 (unsigned long long)r->corrupt,
		 (unsigned long long)r->repaired,
		 (unsigned long long)r->unrepairable);
}

enum kura_err kura_service_scrub(struct kura_service *svc, const char *bucket,
				 struct kura_scrub_report *rep,
				 struct kura_error *err)
{
	struct kura_scrub_report r = { 0 };
	struct kura_bucket b;
	uint8_t after[KURA_BLOB_ID_LEN] = { 0 };
	uint64_t bucket_id = 0;
	enum kura_err rc = KURA_OK;
	if (bucket != NULL) {
		rc = kura_meta_bucket_get(svc->meta, bucket, &b, err);
		if (rc != KURA_OK)
			return rc;
		bucket_id = b.id;
	}
	struct kura_scrub_blob *page = malloc(PAGE * sizeof(*page));
	struct scrub *s = calloc(1, sizeof(*s));
	if (page == NULL || s == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "scrub");
		goto out;
	}
	s->svc = svc;
	s->rep = &r;
	for (;;) {
		size_t n = 0;
		rc = kura_meta_scrub_blobs(svc->meta, bucket_id, after, page,
					   PAGE, &n, err);
		for (size_t i = 0; rc == KURA_OK && i < n; i++) {
			if (__atomic_load_n(&svc->scrub_stop,
					    __ATOMIC_RELAXED)) {
				rc = kura_fail(err, KURA_EBUSY,
					       "scrub stopped");
				break;
			}
			rc = scrub_blob(s, &page[i], err);
		}
		if (rc != KURA_OK || n < PAGE)
			break;
		memcpy(after, page[n - 1].part.blob_id, KURA_BLOB_ID_LEN);
	}
	if (rc == KURA_OK) {
		char text[256];
		kura_scrub_report_format(&r, text, sizeof(text));
		kura_info(NULL, "scrub: %s", text);
	}
out:
	if (page != NULL)
		kura_wipe(page, PAGE * sizeof(*page)); /* wrapped DEKs */
	free(page);
	free(s);
	if (rc == KURA_OK)
		*rep = r;
	return rc;
}

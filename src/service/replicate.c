/*
 * replicate.c — the async queue and the start-up sweep of the placement
 * layer (docs/PLACEMENT.md).
 *
 * A pending replica row is the durable queue entry: written with the
 * blob's sync copies, before the object commits, so a copy is never
 * forgotten across a crash or restart.  Each pass copies due rows whose
 * blob is committed: the ciphertext bytes as they are (the copy needs no
 * key, and a backend abroad receives exactly what the home one holds),
 * read from a stored copy, written to the target, then checked by size.
 * A failure stays pending with a back-off; nothing is dropped.
 *
 * The sweep removes the copies of blobs nothing references: a write that
 * crashed after its copies and before its commit.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/placement.h"
#include "kura/service.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define COPY_CHUNK (1u << 20)
#define DUE_BATCH 64
#define BACKOFF_MAX_S 300

/* The backend of row, or -1 (no longer configured). */
static int backend_of(const struct kura_service *svc,
		      const struct kura_replica *row)
{
	return kura_placement_backend_index(svc->placement, row->backend);
}

/* Copy blob id's bytes from store src to store dst, in chunks. */
static enum kura_err copy_blob(struct kura_store *src, struct kura_store *dst,
			       const uint8_t id[KURA_BLOB_ID_LEN],
			       uint64_t *bytes, struct kura_error *err)
{
	struct kura_store_reader *r = NULL;
	struct kura_store_writer *w = NULL;
	uint64_t size = 0;
	uint8_t *buf = malloc(COPY_CHUNK);
	if (buf == NULL)
		return kura_fail(err, KURA_ENOMEM, "copy buffer");
	enum kura_err rc = kura_store_reader_open(src, id, &r, &size, err);
	if (rc == KURA_OK)
		rc = kura_store_writer_open(dst, id, &w, err);
	for (uint64_t off = 0; rc == KURA_OK && off < size;) {
		size_t n = size - off < COPY_CHUNK ? (size_t)(size - off) :
						     COPY_CHUNK;
		rc = kura_store_reader_pread(src, r, buf, n, off, err);
		if (rc == KURA_OK)
			rc = kura_store_writer_write(dst, w, buf, n, err);
		off += n;
	}
	if (w != NULL) {
		if (rc == KURA_OK)
			rc = kura_store_writer_finish(dst, w, err);
		else
			kura_store_writer_abort(dst, w);
	}
	if (rc == KURA_OK)
		rc = kura_store_publish(dst, id, err);
	kura_store_reader_close(src, r);
	free(buf);
	if (rc == KURA_OK)
		*bytes = size;
	return rc;
}

enum kura_err kura_service_copy_replica(struct kura_service *svc,
					const uint8_t id[KURA_BLOB_ID_LEN],
					size_t from, size_t to, uint64_t *bytes,
					struct kura_error *err)
{
	struct kura_store *src =
		kura_placement_backend_store(svc->placement, from);
	struct kura_store *dst =
		kura_placement_backend_store(svc->placement, to);
	if (src == NULL || dst == NULL)
		return kura_fail(err, KURA_EINVAL, "no such backend");
	return copy_blob(src, dst, id, bytes, err);
}

/* The blob's rows, read once the blob is pinned: is row still pending
 * (not removed, nor copied by another pass, meanwhile: then there is
 * nothing to do and nothing to write back over it), and *from the backend
 * of a stored copy to copy from (-1: none). */
static bool still_pending(struct kura_service *svc,
			  const struct kura_replica *row, int *from)
{
	struct kura_replica rows[KURA_BACKENDS_MAX];
	size_t n = 0;
	bool pending = false;
	*from = -1;
	if (kura_meta_replica_list(svc->meta, row->blob_id, rows,
				   KURA_BACKENDS_MAX, &n, NULL) != KURA_OK)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].backend, row->backend) == 0)
			pending = rows[i].state == KURA_REPLICA_PENDING;
		else if (*from < 0 && (rows[i].state == KURA_REPLICA_STORED ||
				       rows[i].state == KURA_REPLICA_VERIFIED))
			*from = backend_of(svc, &rows[i]);
	}
	return pending;
}

enum kura_err kura_service_audit_replica(struct kura_service *svc,
					 const char *op,
					 const struct kura_replica *row,
					 const char *note,
					 enum kura_err outcome)
{
	char hex[2 * KURA_BLOB_ID_LEN + 1];
	struct kura_error e = { 0 };
	kura_hex_encode(row->blob_id, KURA_BLOB_ID_LEN, hex);
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "blob", hex,
			      "backend", row->backend, "site", row->site,
			      "region", row->region, "jurisdiction",
			      row->jurisdiction, "state",
			      kura_replica_state_name(row->state), "note",
			      note ? note : "");
	char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	enum kura_err rc = detail ? kura_service_audit_event(svc, "replica", op,
							     0, NULL, detail,
							     outcome, &e) :
				    kura_fail(&e, KURA_ENOMEM, "audit detail");
	if (rc != KURA_OK)
		kura_error(NULL, "audit log refused the %s record: %s", op,
			   e.msg);
	free(detail);
	return rc;
}

static void record(struct kura_service *svc, struct kura_replica *row,
		   const char *note)
{
	struct kura_error e = { 0 };
	if (kura_meta_replica_set(svc->meta, row, 1, note, &e) != KURA_OK)
		kura_warn(NULL, "replication: cannot record: %s", e.msg);
}

/* Make one pending copy; false when it failed (recorded, retried). */
static bool replicate_one(struct kura_service *svc, struct kura_replica *row)
{
	struct kura_error err = { 0 };
	char note[KURA_REPLICA_NOTE_MAX];
	int to = backend_of(svc, row), from = -1;
	uint64_t bytes = 0;
	/* Pinned while copied: garbage collection of a blob deleted
	 * meanwhile waits for the copy, then removes it everywhere. */
	const uint8_t(*ids)[KURA_BLOB_ID_LEN] =
		(const uint8_t(*)[KURA_BLOB_ID_LEN])row->blob_id;
	bool pinned = kura_service_pin(svc, ids, 1, NULL) == KURA_OK;
	if (!pinned || !still_pending(svc, row, &from)) {
		if (pinned)
			kura_service_unpin(svc, ids, 1);
		return true; /* nothing to copy any more */
	}
	enum kura_err rc =
		to < 0 ?
			kura_fail(&err, KURA_ECONFIG,
				  "backend '%s' is not configured",
				  row->backend) :
		from < 0 ?
			kura_fail(&err, KURA_ENOENT, "no stored copy to copy") :
			kura_service_copy_replica(svc, row->blob_id,
						  (size_t)from, (size_t)to,
						  &bytes, &err);
	if (rc == KURA_OK && bytes != row->bytes)
		rc = kura_fail(&err, KURA_EINTEGRITY,
			       "copied %llu bytes, expected %llu",
			       (unsigned long long)bytes,
			       (unsigned long long)row->bytes);
	kura_service_unpin(svc, ids, 1);
	int64_t now = kura_now_ms();
	if (rc == KURA_OK) {
		row->state = KURA_REPLICA_STORED;
		row->stored_ms = now;
		row->changed_ms = now;
		row->attempts = 0;
		snprintf(note, sizeof(note), "replicated from %s",
			 kura_placement_backend(svc->placement, (size_t)from)
				 ->name);
		record(svc, row, note);
		(void)kura_service_audit_replica(svc, "replica.stored", row,
						 note, KURA_OK);
		return true;
	}
	/* Stays pending: the back-off doubles up to BACKOFF_MAX_S. */
	uint32_t shift = row->attempts < 8 ? row->attempts : 8;
	int64_t wait_s = (int64_t)1 << shift;
	if (wait_s > BACKOFF_MAX_S)
		wait_s = BACKOFF_MAX_S;
	row->attempts++;
	row->next_try_ms = now + wait_s * 1000;
	row->changed_ms = now;
	snprintf(note, sizeof(note), "copy failed (attempt %u): %.150s",
		 row->attempts, err.msg);
	/* The queue keeps its entry; only a changed note is worth a row in
	 * the history, so a long outage does not flood it. */
	if (row->attempts == 1 || row->attempts % 16 == 0) {
		record(svc, row, note);
		(void)kura_service_audit_replica(svc, "replica.copy_failed",
						 row, note, rc);
	} else {
		struct kura_error e = { 0 };
		(void)kura_meta_replica_set(svc->meta, row, 1, note, &e);
	}
	kura_warn(NULL, "replication to '%s': %s", row->backend, err.msg);
	return false;
}

/* Make up to max due copies to backend b, stopping at its first failure
 * (the rest of its queue waits for the next pass rather than each entry
 * timing out in turn); *copied counts them. */
static enum kura_err replicate_to(struct kura_service *svc, size_t b,
				  size_t max, size_t *copied,
				  struct kura_error *err)
{
	struct kura_replica rows[DUE_BATCH];
	size_t n = 0;
	const char *name = kura_placement_backend(svc->placement, b)->name;
	enum kura_err rc = kura_meta_replica_due(
		svc->meta, name, kura_now_ms(), rows,
		max < DUE_BATCH ? max : DUE_BATCH, &n, err);
	for (size_t i = 0; rc == KURA_OK && i < n; i++) {
		if (!replicate_one(svc, &rows[i]))
			break;
		(*copied)++;
	}
	return rc;
}

enum kura_err kura_service_replicate(struct kura_service *svc, size_t max,
				     size_t *copied, struct kura_error *err)
{
	/* Each backend's queue on its own: one backend that is down does
	 * not hold up the copies to the others. */
	size_t nb = kura_placement_nbackends(svc->placement);
	size_t share = max / nb > 0 ? max / nb : 1, done = 0;
	for (size_t b = 0; b < nb; b++) {
		enum kura_err rc = replicate_to(svc, b, share, &done, err);
		if (rc != KURA_OK)
			return rc;
	}
	*copied = done;
	return KURA_OK;
}

#define SWEEP_NAME "replica_sweep_ms"
/* Rows written this long before the last sweep began are looked at again
 * (a clock that stepped back). */
#define SWEEP_MARGIN_MS (3600 * 1000)

/* When the last sweep began (0: never: every row). */
static int64_t last_sweep(struct kura_service *svc)
{
	int64_t ms = 0;
	if (kura_meta_setting_get_ms(svc->meta, SWEEP_NAME, &ms, NULL) !=
	    KURA_OK)
		return 0;
	return ms;
}

/* Remove one orphan copy; false when it could not be (left for the next
 * start). */
static bool sweep_one(struct kura_service *svc, struct kura_replica *row,
		      struct kura_error *err, enum kura_err *rc)
{
	int b = backend_of(svc, row);
	struct kura_error e = { 0 };
	if (b < 0 || kura_store_remove(kura_placement_backend_store(
					       svc->placement, (size_t)b),
				       row->blob_id, &e) != KURA_OK) {
		kura_warn(NULL,
			  "sweep: cannot remove an orphan copy on '%s': %s",
			  row->backend, b < 0 ? "not configured" : e.msg);
		return false;
	}
	const char *why = "removed: written but never committed";
	row->state = KURA_REPLICA_DELETED;
	row->changed_ms = kura_now_ms();
	*rc = kura_meta_replica_set(svc->meta, row, 1, why, err);
	if (*rc == KURA_OK)
		(void)kura_service_audit_replica(svc, "replica.removed", row,
						 why, KURA_OK);
	return *rc == KURA_OK;
}

enum kura_err kura_service_sweep_replicas(struct kura_service *svc,
					  size_t *removed,
					  struct kura_error *err)
{
	struct kura_replica rows[64];
	size_t total = 0;
	int64_t began = kura_now_ms(), since = last_sweep(svc);
	since = since > SWEEP_MARGIN_MS ? since - SWEEP_MARGIN_MS : 0;
	bool all_gone = true;
	for (;;) {
		size_t n = 0, gone = 0;
		enum kura_err rc = kura_meta_replica_orphans(svc->meta, since,
							     rows, 64, &n, err);
		if (rc != KURA_OK)
			return rc;
		for (size_t i = 0; i < n; i++) {
			if (sweep_one(svc, &rows[i], err, &rc))
				gone++;
			else if (rc != KURA_OK)
				return rc;
		}
		total += gone;
		all_gone = all_gone && gone == n;
		/* Stop when done, or when what is left cannot be removed. */
		if (n < 64 || gone == 0)
			break;
	}
	*removed = total;
	/* The next start looks only at rows changed since this one began,
	 * unless some orphan stayed (then at them again). */
	return all_gone ? kura_meta_setting_put_ms(svc->meta, SWEEP_NAME, began,
						   err) :
			  KURA_OK;
}

/*
 * replicated.c — the store a placement policy writes and reads through
 * (placement.h), and opening the backends under it.
 *
 * Writes go to every sync backend of the policy; the writer finishes only
 * when each one's copy is durable, then records the replicas (stored for
 * sync, pending for async: the async queue) before the caller commits the
 * metadata that references the blob.  If one sync copy fails, the copies
 * already made are removed and the write fails: nothing half-placed
 * remains.  Reads take the first backend holding the blob, in policy order
 * then every other backend, and move on when one fails or when the caller
 * says its bytes were wrong (reader_next).  Removal removes the blob from
 * every backend.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/secret.h"
#ifdef KURA_HAVE_S3
#include "kura/store_s3.h"
#endif
#include "kura/timefmt.h"
#include "place_int.h"
#include "kura/banned.h"

/* ---- replica records ---- */

void kura_placement_replica_row(const struct kura_placement *p, size_t i,
				const uint8_t blob_id[KURA_BLOB_ID_LEN],
				uint64_t bytes, struct kura_replica *row)
{
	const struct kura_backend_desc *d = &p->backends[i].desc;
	char hex[2 * KURA_BLOB_ID_LEN + 1];
	memset(row, 0, sizeof(*row));
	memcpy(row->blob_id, blob_id, KURA_BLOB_ID_LEN);
	snprintf(row->backend, sizeof(row->backend), "%s", d->name);
	snprintf(row->type, sizeof(row->type), "%s", d->type);
	snprintf(row->site, sizeof(row->site), "%s", d->site);
	snprintf(row->region, sizeof(row->region), "%s", d->region);
	snprintf(row->jurisdiction, sizeof(row->jurisdiction), "%s",
		 d->jurisdiction);
	kura_hex_encode(blob_id, KURA_BLOB_ID_LEN, hex);
	snprintf(row->remote_id, sizeof(row->remote_id), "%s%s",
		 d->remote_prefix, hex);
	row->bytes = bytes;
}

/* Change the state of the replica of blob on backend i (a row made from
 * the backend's labels when there is none yet). */
static void mark(struct kura_placement *p, size_t i,
		 const uint8_t blob_id[KURA_BLOB_ID_LEN], uint64_t bytes,
		 enum kura_replica_state state, const char *note)
{
	struct kura_replica rows[KURA_BACKENDS_MAX], row;
	struct kura_error err = { 0 };
	size_t n = 0;
	if (p->meta == NULL)
		return;
	kura_placement_replica_row(p, i, blob_id, bytes, &row);
	bool found = false;
	if (kura_meta_replica_list(p->meta, blob_id, rows, KURA_BACKENDS_MAX,
				   &n, &err) == KURA_OK)
		for (size_t k = 0; k < n; k++)
			if (strcmp(rows[k].backend, row.backend) == 0) {
				row = rows[k];
				found = true;
			}
	/* Only a change is written: a bad copy read again and again (a
	 * hostile remote) costs no metadata write per read. */
	if (found && row.state == state)
		return;
	row.state = state;
	row.changed_ms = kura_now_ms();
	if (kura_meta_replica_set(p->meta, &row, 1, note, &err) != KURA_OK)
		kura_warn(NULL,
			  "placement: cannot record a replica on '%s': %s",
			  row.backend, err.msg);
}

/* The rows of a new blob: stored on the sync backends, pending on the
 * async ones (the durable queue). */
static enum kura_err record_write(struct place_repl *r,
				  const uint8_t id[KURA_BLOB_ID_LEN],
				  uint64_t bytes, struct kura_error *err)
{
	const struct kura_policy *pol = r->policy;
	struct kura_replica rows[2 * KURA_POLICY_BACKENDS];
	size_t n = 0;
	int64_t now = kura_now_ms();
	if (r->p->meta == NULL)
		return KURA_OK;
	for (size_t i = 0; i < kura_policy_nbackends(pol); i++) {
		bool sync = i < pol->nsync;
		size_t b = kura_policy_backend(pol, i);
		struct kura_replica *row = &rows[n++];
		kura_placement_replica_row(r->p, b, id, bytes, row);
		row->state = sync ? KURA_REPLICA_STORED : KURA_REPLICA_PENDING;
		row->stored_ms = sync ? now : 0;
		row->changed_ms = now;
		row->next_try_ms = now;
	}
	return kura_meta_replica_set(r->p->meta, rows, n, "written", err);
}

/* ---- writing ---- */

/* Before a copy goes to a backend that stages nothing (a remote: the
 * object is written under its final name), its row is recorded pending
 * ("writing"): a crash before the commit leaves a row the start-up sweep
 * finds, never a copy nothing knows of.  fs backends stage, and their
 * recovery removes what was never committed. */
static enum kura_err record_intent(struct place_repl *r,
				   const uint8_t id[KURA_BLOB_ID_LEN],
				   enum kura_replica_state state,
				   const char *note, bool *recorded,
				   struct kura_error *err)
{
	const struct kura_policy *pol = r->policy;
	struct kura_replica rows[KURA_POLICY_BACKENDS];
	size_t n = 0;
	int64_t now = kura_now_ms();
	if (r->p->meta == NULL)
		return KURA_OK;
	for (size_t i = 0; i < pol->nsync; i++) {
		size_t b = pol->sync[i];
		if (strcmp(r->p->backends[b].desc.type, "fs") == 0)
			continue;
		struct kura_replica *row = &rows[n++];
		kura_placement_replica_row(r->p, b, id, 0, row);
		row->state = state;
		row->changed_ms = now;
		row->next_try_ms = INT64_MAX; /* not the async queue's */
	}
	if (recorded != NULL)
		*recorded = n > 0;
	if (n == 0)
		return KURA_OK;
	return kura_meta_replica_set(r->p->meta, rows, n, note, err);
}

struct repl_writer {
	struct place_repl *r;
	uint8_t id[KURA_BLOB_ID_LEN];
	size_t n; /* sync backends with an open writer */
	struct kura_store_writer *w[KURA_POLICY_BACKENDS];
	uint64_t bytes;
	bool intent; /* rows recorded pending before the copies */
};

static struct kura_store *sync_store(const struct place_repl *r, size_t i)
{
	return r->p->backends[r->policy->sync[i]].store;
}

/* A sync backend failed: the write cannot be acknowledged.  Out of
 * space stays itself; any other failure of a backend is "unavailable"
 * (503: the client may retry), naming the backend. */
static enum kura_err sync_failed(const struct place_repl *r, size_t i,
				 enum kura_err rc, struct kura_error *err)
{
	if (rc == KURA_ENOSPC || rc == KURA_ENOMEM || err == NULL)
		return rc;
	char msg[KURA_ERROR_MSG_MAX];
	snprintf(msg, sizeof(msg), "%s", err->msg);
	kura_error_clear(err);
	return kura_fail(err, KURA_EBUSY, "backend '%s' is unavailable: %.180s",
			 r->p->backends[r->policy->sync[i]].desc.name, msg);
}

/* Abort the writers not finished (their staged data goes). */
static void abort_writers(struct repl_writer *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->w[i] != NULL) {
			kura_store_writer_abort(sync_store(w->r, i), w->w[i]);
			w->w[i] = NULL;
		}
}

/* A write that will not be committed: the pending rows recorded before
 * its remote copies say so (the copies are gone). */
static void forget_intent(struct repl_writer *w)
{
	struct kura_error e = { 0 };
	if (w->intent &&
	    record_intent(w->r, w->id, KURA_REPLICA_DELETED,
			  "write failed or abandoned", NULL, &e) != KURA_OK)
		kura_warn(NULL,
			  "placement: cannot record an abandoned write: %s "
			  "(the start-up sweep will)",
			  e.msg);
}

static void repl_writer_abort(struct kura_store_writer *sw)
{
	struct repl_writer *w = (struct repl_writer *)sw;
	if (w == NULL)
		return;
	abort_writers(w);
	forget_intent(w);
	free(w);
}

static enum kura_err repl_writer_open(void *priv,
				      const uint8_t id[KURA_BLOB_ID_LEN],
				      struct kura_store_writer **out,
				      struct kura_error *err)
{
	struct place_repl *r = priv;
	if (r->policy == NULL)
		return kura_fail(err, KURA_EINVAL,
				 "the all-backends store does not write");
	bool intent = false;
	enum kura_err rc0 = record_intent(r, id, KURA_REPLICA_PENDING,
					  "writing", &intent, err);
	if (rc0 != KURA_OK)
		return rc0;
	struct repl_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return kura_fail(err, KURA_ENOMEM, "replicated writer");
	w->intent = intent;
	w->r = r;
	memcpy(w->id, id, KURA_BLOB_ID_LEN);
	for (; w->n < r->policy->nsync; w->n++) {
		enum kura_err rc = kura_store_writer_open(sync_store(r, w->n),
							  id, &w->w[w->n], err);
		if (rc != KURA_OK)
			rc = sync_failed(r, w->n, rc, err);
		if (rc != KURA_OK) {
			repl_writer_abort((struct kura_store_writer *)w);
			return rc;
		}
	}
	*out = (struct kura_store_writer *)w;
	return KURA_OK;
}

static enum kura_err repl_writer_write(struct kura_store_writer *sw,
				       const void *p, size_t n,
				       struct kura_error *err)
{
	struct repl_writer *w = (struct repl_writer *)sw;
	for (size_t i = 0; i < w->n; i++) {
		enum kura_err rc = kura_store_writer_write(sync_store(w->r, i),
							   w->w[i], p, n, err);
		if (rc != KURA_OK)
			return sync_failed(w->r, i, rc, err);
	}
	w->bytes += n;
	return KURA_OK;
}

static enum kura_err repl_writer_finish(struct kura_store_writer *sw,
					struct kura_error *err)
{
	struct repl_writer *w = (struct repl_writer *)sw;
	struct place_repl *r = w->r;
	enum kura_err rc = KURA_OK;
	size_t done = 0;
	for (; done < w->n && rc == KURA_OK; done++) {
		struct kura_store_writer *bw = w->w[done];
		w->w[done] = NULL; /* finish frees it, on success or not */
		rc = kura_store_writer_finish(sync_store(r, done), bw, err);
		if (rc != KURA_OK)
			rc = sync_failed(r, done, rc, err);
	}
	if (rc == KURA_OK)
		rc = record_write(r, w->id, w->bytes, err);
	if (rc != KURA_OK) {
		/* No copy of a failed write may stay behind. */
		for (size_t i = 0; i < done; i++)
			(void)kura_store_remove(sync_store(r, i), w->id, NULL);
		forget_intent(w);
	}
	abort_writers(w); /* any not finished */
	free(w);
	return rc;
}

static enum kura_err repl_publish(void *priv,
				  const uint8_t id[KURA_BLOB_ID_LEN],
				  struct kura_error *err)
{
	struct place_repl *r = priv;
	enum kura_err first = KURA_OK;
	for (size_t i = 0; r->policy && i < r->policy->nsync; i++) {
		enum kura_err rc =
			kura_store_publish(sync_store(r, i), id, err);
		if (rc != KURA_OK && first == KURA_OK)
			first = rc;
	}
	return first;
}

/* ---- reading ---- */

struct repl_reader {
	struct place_repl *r;
	uint8_t id[KURA_BLOB_ID_LEN];
	size_t pos; /* index into r->order of the backend being read */
	struct kura_store_reader *cur;
	uint64_t size; /* of the first copy found: every copy must match */
	bool sized;
	uint32_t tried; /* positions already opened (or failed to) */
};

static struct kura_store *order_store(const struct place_repl *r, size_t pos)
{
	return r->p->backends[r->order[pos]].store;
}

/* How long reads pass over a backend that failed. */
#define DOWN_MS 30000

static bool is_down(const struct place_backend *b, int64_t now)
{
	return __atomic_load_n(&b->down_until_ms, __ATOMIC_RELAXED) > now;
}

static void set_down(struct place_backend *b, bool down)
{
	__atomic_store_n(&b->down_until_ms, down ? kura_now_ms() + DOWN_MS : 0,
			 __ATOMIC_RELAXED);
}

/* Open a copy at a position not tried yet: the healthy backends in
 * order first, then those that failed lately.  KURA_ENOENT when no
 * untried backend has a copy (of the size the reader expects, once it
 * knows one). */
static enum kura_err open_next(struct repl_reader *rd, struct kura_error *err)
{
	enum kura_err last = KURA_ENOENT;
	struct kura_error e = { 0 };
	int64_t now = kura_now_ms();
	size_t n = rd->r->norder;
	for (size_t k = 0; k < 2 * n; k++) {
		bool second = k >= n; /* the pass over backends marked down */
		size_t pos = second ? k - n : k;
		struct place_backend *b =
			&rd->r->p->backends[rd->r->order[pos]];
		if ((rd->tried & (1u << pos)) || is_down(b, now) != second)
			continue;
		rd->tried |= 1u << pos;
		uint64_t size = 0;
		struct kura_store_reader *sr = NULL;
		kura_error_clear(&e);
		enum kura_err rc = kura_store_reader_open(
			order_store(rd->r, pos), rd->id, &sr, &size, &e);
		if (rc == KURA_OK && rd->sized && size != rd->size) {
			kura_store_reader_close(order_store(rd->r, pos), sr);
			mark(rd->r->p, rd->r->order[pos], rd->id, size,
			     KURA_REPLICA_FAILED, "read: wrong size");
			continue;
		}
		if (rc == KURA_OK) {
			if (second)
				set_down(b, false); /* it is back */
			rd->pos = pos;
			rd->cur = sr;
			rd->size = size;
			rd->sized = true;
			return KURA_OK;
		}
		if (rc != KURA_ENOENT) {
			set_down(b, true);
			kura_warn(NULL, "placement: backend '%s': %s",
				  b->desc.name, e.msg);
			last = rc;
		}
	}
	if (last == KURA_ENOENT)
		return kura_fail(err, KURA_ENOENT, "no copy of the blob");
	return kura_fail(err, last, "%s", e.msg);
}

static enum kura_err repl_reader_open(void *priv,
				      const uint8_t id[KURA_BLOB_ID_LEN],
				      struct kura_store_reader **out,
				      uint64_t *size, struct kura_error *err)
{
	struct repl_reader *rd = calloc(1, sizeof(*rd));
	if (rd == NULL)
		return kura_fail(err, KURA_ENOMEM, "replicated reader");
	rd->r = priv;
	memcpy(rd->id, id, KURA_BLOB_ID_LEN);
	enum kura_err rc = open_next(rd, err);
	if (rc != KURA_OK) {
		free(rd);
		return rc;
	}
	*size = rd->size;
	*out = (struct kura_store_reader *)rd;
	return KURA_OK;
}

static void close_current(struct repl_reader *rd)
{
	if (rd->cur != NULL)
		kura_store_reader_close(order_store(rd->r, rd->pos), rd->cur);
	rd->cur = NULL;
}

static enum kura_err repl_reader_next(struct kura_store_reader *sr,
				      uint64_t *size, struct kura_error *err)
{
	struct repl_reader *rd = (struct repl_reader *)sr;
	size_t bad = rd->pos;
	close_current(rd);
	mark(rd->r->p, rd->r->order[bad], rd->id, rd->size, KURA_REPLICA_FAILED,
	     "read: failed authentication");
	/* The caller judges the size too: the bad copy's may be the wrong
	 * one. */
	rd->sized = false;
	enum kura_err rc = open_next(rd, err);
	if (rc == KURA_OK)
		kura_warn(NULL,
			  "placement: a copy on '%s' failed; reading '%s'",
			  rd->r->p->backends[rd->r->order[bad]].desc.name,
			  rd->r->p->backends[rd->r->order[rd->pos]].desc.name);
	*size = rd->size;
	return rc;
}

static enum kura_err repl_reader_pread(struct kura_store_reader *sr, void *p,
				       size_t n, uint64_t off,
				       struct kura_error *err)
{
	struct repl_reader *rd = (struct repl_reader *)sr;
	for (;;) {
		if (rd->cur == NULL)
			return kura_fail(err, KURA_EIO, "no copy left to read");
		enum kura_err rc = kura_store_reader_pread(
			order_store(rd->r, rd->pos), rd->cur, p, n, off, err);
		if (rc == KURA_OK)
			return KURA_OK;
		/* This copy cannot be read: the next one, transparently. */
		uint64_t size;
		size_t bad = rd->pos;
		set_down(&rd->r->p->backends[rd->r->order[bad]], true);
		close_current(rd);
		mark(rd->r->p, rd->r->order[bad], rd->id, rd->size,
		     KURA_REPLICA_FAILED, "read: I/O error");
		if (open_next(rd, NULL) != KURA_OK)
			return rc;
		(void)size;
	}
}

static void repl_reader_close(struct kura_store_reader *sr)
{
	struct repl_reader *rd = (struct repl_reader *)sr;
	if (rd == NULL)
		return;
	close_current(rd);
	free(rd);
}

/* ---- removing and recovering ---- */

/* Remove the blob from backend i; the first failure goes to err. */
static void remove_on(struct kura_placement *p, size_t i,
		      const uint8_t id[KURA_BLOB_ID_LEN], enum kura_err *first,
		      struct kura_error *err)
{
	struct kura_error e = { 0 };
	enum kura_err rc = kura_store_remove(p->backends[i].store, id, &e);
	if (rc != KURA_OK && *first == KURA_OK)
		*first = kura_fail(err, rc, "backend '%s': %s",
				   p->backends[i].desc.name, e.msg);
}

/* Remove the blob from every backend its replica rows name, or from
 * every backend when it has none (written before placement, or without
 * records); then record the removal. */
static enum kura_err repl_remove(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
				 struct kura_error *err)
{
	struct place_repl *r = priv;
	struct kura_placement *p = r->p;
	struct kura_replica rows[KURA_BACKENDS_MAX];
	bool on[KURA_BACKENDS_MAX] = { false };
	size_t n = 0, named = 0;
	struct kura_error e = { 0 };
	enum kura_err first = KURA_OK;
	if (p->meta == NULL ||
	    kura_meta_replica_list(p->meta, id, rows, KURA_BACKENDS_MAX, &n,
				   &e) != KURA_OK)
		n = 0;
	for (size_t k = 0; k < n; k++) {
		int b = kura_placement_backend_index(p, rows[k].backend);
		if (b >= 0) {
			on[b] = true;
			named++;
		}
	}
	for (size_t i = 0; i < p->nbackends; i++)
		if (named == 0 || on[i])
			remove_on(p, i, id, &first, err);
	if (first != KURA_OK || n == 0)
		return first;
	/* Every recorded copy is gone now. */
	size_t live = 0;
	for (size_t k = 0; k < n; k++) {
		/* A copy on a backend no longer configured was not
		 * removed: its row stays as it is, and says so. */
		if (kura_placement_backend_index(p, rows[k].backend) < 0) {
			kura_warn(
				NULL,
				"placement: a copy on backend '%s', no longer "
				"configured, was not removed",
				rows[k].backend);
			continue;
		}
		if (rows[k].state != KURA_REPLICA_DELETED) {
			rows[live] = rows[k];
			rows[live].state = KURA_REPLICA_DELETED;
			rows[live].changed_ms = kura_now_ms();
			live++;
		}
	}
	if (live > 0 && kura_meta_replica_set(p->meta, rows, live, "removed",
					      &e) != KURA_OK)
		kura_warn(NULL, "placement: cannot record a removal: %s",
			  e.msg);
	return KURA_OK;
}

static enum kura_err repl_recover(void *priv,
				  kura_store_referenced_fn referenced,
				  void *ctx, uint64_t *removed,
				  struct kura_error *err)
{
	struct place_repl *r = priv;
	uint64_t total = 0;
	for (size_t i = 0; i < r->p->nbackends; i++) {
		uint64_t n = 0;
		enum kura_err rc = kura_store_recover(r->p->backends[i].store,
						      referenced, ctx, &n, err);
		if (rc != KURA_OK)
			return rc;
		total += n;
	}
	*removed = total;
	return KURA_OK;
}

static enum kura_err repl_open(void *priv, const struct kura_config *cfg,
			       const char *section, const char *data_dir,
			       struct kura_error *err)
{
	(void)priv;
	(void)cfg;
	(void)data_dir;
	return kura_fail(err, KURA_ECONFIG,
			 "[%s]: the replicated store is built by placement",
			 section);
}

const struct kura_store_ops place_repl_ops = {
	.name = "replicated",
	.open = repl_open,
	.writer_open = repl_writer_open,
	.writer_write = repl_writer_write,
	.writer_finish = repl_writer_finish,
	.writer_abort = repl_writer_abort,
	.publish = repl_publish,
	.reader_open = repl_reader_open,
	.reader_pread = repl_reader_pread,
	.reader_close = repl_reader_close,
	.reader_next = repl_reader_next,
	.remove = repl_remove,
	.recover = repl_recover,
};

/* ---- opening ---- */

static void build_order(struct kura_placement *p, struct place_repl *r,
			const struct kura_policy *pol)
{
	bool taken[KURA_BACKENDS_MAX] = { false };
	r->p = p;
	r->policy = pol;
	r->norder = 0;
	for (size_t i = 0; pol && i < kura_policy_nbackends(pol); i++) {
		size_t b = kura_policy_backend(pol, i);
		r->order[r->norder++] = b;
		taken[b] = true;
	}
	for (size_t b = 0; b < p->nbackends; b++)
		if (!taken[b])
			r->order[r->norder++] = b;
}

enum kura_err kura_placement_open(struct kura_placement *p,
				  const struct kura_config *cfg,
				  const char *data_dir, struct kura_meta *meta,
				  struct kura_error *err)
{
	for (size_t i = 0; i < p->nbackends; i++) {
		struct place_backend *b = &p->backends[i];
		enum kura_err rc = kura_store_open_section(
			cfg, b->section, data_dir, &b->store, err);
		if (rc != KURA_OK)
			return rc;
	}
	p->meta = meta;
	for (size_t i = 0; i < p->npolicies; i++) {
		struct place_policy *pp = &p->policies[i];
		build_order(p, &pp->repl, &pp->policy);
		pp->store =
			(struct kura_store){ &place_repl_ops, &pp->repl, NULL };
	}
	build_order(p, &p->all_repl, NULL);
	p->all_store =
		(struct kura_store){ &place_repl_ops, &p->all_repl, NULL };
	return KURA_OK;
}

void kura_placement_free(struct kura_placement *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nbackends; i++)
		kura_store_close(p->backends[i].store);
	free(p);
}

struct kura_store *kura_placement_store(const struct kura_placement *p,
					const struct kura_policy *policy)
{
	struct kura_placement *mp = (struct kura_placement *)p;
	if (policy == NULL)
		return &mp->all_store;
	for (size_t i = 0; i < p->npolicies; i++)
		if (&p->policies[i].policy == policy)
			return &mp->policies[i].store;
	return NULL;
}

enum kura_err kura_placement_probe(const struct kura_placement *p, size_t i,
				   double *latency_ms, struct kura_error *err)
{
#ifdef KURA_HAVE_S3
	/* A remote: one HEAD of its bucket, no retries. */
	if (strcmp(p->backends[i].desc.type, "s3") == 0)
		return kura_store_s3_probe(p->backends[i].store->priv,
					   latency_ms, err);
#endif
	/* A round trip every backend answers: open a blob that cannot
	 * exist (a fresh random id); "not found" is a healthy answer. */
	uint8_t id[KURA_BLOB_ID_LEN];
	struct kura_store_reader *r = NULL;
	uint64_t size = 0;
	struct timespec a, b;
	enum kura_err rc = kura_random_bytes(id, sizeof(id), err);
	if (rc != KURA_OK)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = kura_store_reader_open(p->backends[i].store, id, &r, &size, err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (rc == KURA_OK)
		kura_store_reader_close(p->backends[i].store, r);
	*latency_ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
		      (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	if (rc == KURA_ENOENT) {
		kura_error_clear(err);
		return KURA_OK;
	}
	return rc;
}

/*
 * log.c — the audit log writer: kura_audit_open / _append / _checkpoint /
 * _close.
 *
 * Group commit, leader and followers: appenders render their record
 * (record.c) — or a group of records that must be written together, all
 * or none and consecutively (kura_audit_append_batch) — in their own
 * thread and queue it.  The first appender to find
 * no batch in progress becomes the leader: it takes everything queued and,
 * per batch, takes the exclusive flock on
 * DATA_DIR/audit/lock, folds in whatever other processes appended since
 * (hashing their entries into the frontier), rolls the segment over when
 * it is too big or too old (a checkpoint first, so every segment starts
 * at a checkpointed size), writes all entries with one pwrite (one per
 * 16 MiB, never splitting a group), fdatasyncs,
 * unlocks and wakes exactly the appenders of its batch with their sequence
 * numbers, then hands leadership to the first appender queued meanwhile
 * (leading further batches itself was tried: its own client then waits,
 * and throughput fell).
 * While one batch is on its way to disk the next one queues, so the cost of
 * a sync is shared by everything that arrived during the previous one; no
 * thread hand-off is needed for the leader's own record, and no appender is
 * woken for a batch it is not in (on two cores a broadcast wake-up of every
 * waiter per batch cost more than the fdatasync itself).
 *
 * Crash repair: an entry that a dead writer left incomplete at the end of
 * the last segment (or a zero-filled tail, as a power loss can leave) was
 * never acknowledged — its appender was still waiting for the sync — so
 * the next writer to take the lock truncates it (with a warning).  A
 * complete entry whose leaf hash is wrong, a segment that shrank, or
 * checkpoints claiming more records than the log holds are never repaired:
 * open and append fail with KURA_EINTEGRITY naming the position.
 *
 * Threading: the queue and the leader flag are guarded by mu; everything
 * else in struct kura_audit belongs to the current leader (or to open,
 * before any append).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"
#include "kura/fsutil.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define DEFAULT_SEGMENT_BYTES (64ull << 20)
#define DEFAULT_SEGMENT_AGE_S 86400ull
#define BATCH_MAX (16u << 20)

enum pending_kind {
	PENDING_APPEND,
	PENDING_CHECKPOINT
};

/* The bytes a prepared record takes in a segment at most: its members,
 * the braces, "seq" and "time" with their values, length and leaf hash. */
#define ENTRY_EXTRA (80u + AUDIT_ENTRY_OVERHEAD)

struct pending {
	struct pending *next;
	enum pending_kind kind;
	struct audit_prepared *recs; /* a group: all or none, in one run */
	size_t nrecs;
	size_t bytes; /* the group's entries, at most */
	bool done;
	pthread_cond_t wake; /* done, or this appender leads next */
	enum kura_err rc;
	struct kura_error err;
	uint64_t seq; /* of the group's first record */
};

struct kura_audit {
	char dir[AUDIT_DIR_MAX];
	char publish_dir[AUDIT_DIR_MAX];
	uint64_t max_bytes;
	int64_t max_age_ms;
	kura_audit_sign_fn sign;
	void *sign_ctx;
	bool nosync;
	int64_t (*clock)(void *ctx);
	void *clock_ctx;

	pthread_mutex_t mu;
	pthread_cond_t idle; /* close waits for the last batch */
	struct pending *head, **tail;
	bool leading; /* a leader is writing a batch */
	bool closing;

	/* leader state */
	int lock_fd, seg_fd, cp_fd;
	uint64_t segno, seg_first, seg_size;
	int64_t seg_created_ms;
	struct audit_tree tree;
	uint64_t cp_known;     /* bytes of checkpoints.log accounted for */
	uint64_t last_cp_size; /* tree size of the last checkpoint */
	int64_t last_time_ms;
	struct kura_buf batch, rec;
};

void audit_set_nosync(struct kura_audit *a, bool nosync)
{
	a->nosync = nosync;
}

void audit_set_clock(struct kura_audit *a, int64_t (*now)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&a->mu);
	a->clock = now;
	a->clock_ctx = ctx;
	pthread_mutex_unlock(&a->mu);
}

static int64_t now_ms(struct kura_audit *a)
{
	return a->clock ? a->clock(a->clock_ctx) : kura_now_ms();
}

static enum kura_err sync_fd(struct kura_audit *a, int fd, bool data_only,
			     const char *what, struct kura_error *err)
{
	if (a->nosync)
		return KURA_OK;
	int r;
	do
		r = data_only ? fdatasync(fd) : fsync(fd);
	while (r != 0 && errno == EINTR);
	if (r != 0)
		return kura_fail_errno(err, KURA_EIO, errno, "sync '%s'", what);
	return KURA_OK;
}

static enum kura_err pwrite_all(int fd, const void *p, size_t n, uint64_t off,
				const char *what, struct kura_error *err)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return kura_fail_errno(
				err, errno == ENOSPC ? KURA_ENOSPC : KURA_EIO,
				errno, "write '%s'", what);
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return KURA_OK;
}

static void lock_ex(struct kura_audit *a)
{
	while (flock(a->lock_fd, LOCK_EX) != 0 && errno == EINTR)
		;
}

static void unlock(struct kura_audit *a)
{
	flock(a->lock_fd, LOCK_UN);
}

/* Read the entries of the current segment past seg_size (appended by
 * another process, or everything at open) into the tree, repairing a torn
 * tail.  Called under the lock. */
static enum kura_err fold_segment(struct kura_audit *a, uint64_t size,
				  struct kura_error *err)
{
	struct audit_seg_reader r;
	struct audit_entry e;
	enum audit_entry_status st;
	uint64_t off = 0, tail = 0;
	enum kura_err rc =
		audit_seg_reader_open(&r, a->dir, a->segno, size, err);
	if (rc != KURA_OK)
		return rc;
	r.buf_off = a->seg_size;
	struct audit_tree t = a->tree;
	for (;;) {
		rc = audit_seg_reader_next(&r, &e, &off, &st, &tail, err);
		if (rc != KURA_OK)
			goto out;
		if (st != AUDIT_ENTRY_OK)
			break;
		uint8_t h[AUDIT_HASH];
		struct audit_fields f;
		audit_leaf_hash(e.rec, e.rec_len, h);
		if (memcmp(h, e.hash, AUDIT_HASH) != 0 ||
		    audit_record_scan((const char *)e.rec, e.rec_len, &f) !=
			    KURA_OK ||
		    !f.has_seq || f.seq != t.size) {
			rc = kura_fail(
				err, KURA_EINTEGRITY,
				"audit segment %llu offset %llu: "
				"record %llu is damaged (run kura audit verify)",
				(unsigned long long)a->segno,
				(unsigned long long)off,
				(unsigned long long)t.size);
			goto out;
		}
		audit_tree_push(&t, h);
	}
	if (tail > 0) {
		bool zero = false;
		if (st == AUDIT_ENTRY_BADLEN) {
			rc = audit_seg_reader_tail_zero(&r, off, &zero, err);
			if (rc != KURA_OK)
				goto out;
		}
		if (st == AUDIT_ENTRY_BADLEN && !zero) {
			rc = kura_fail(
				err, KURA_EINTEGRITY,
				"audit segment %llu offset %llu: "
				"damaged entry length (run kura audit verify)",
				(unsigned long long)a->segno,
				(unsigned long long)off);
			goto out;
		}
		/* Never acknowledged: its writer died before the sync returned. */
		if (ftruncate(a->seg_fd, (off_t)off) != 0) {
			rc = kura_fail_errno(err, KURA_EIO, errno,
					     "truncate audit segment %llu",
					     (unsigned long long)a->segno);
			goto out;
		}
		rc = sync_fd(a, a->seg_fd, true, "audit segment", err);
		if (rc != KURA_OK)
			goto out;
		kura_warn(
			NULL,
			"audit: removed an unfinished entry of %llu bytes at the end "
			"of segment %llu (a writer died before it was acknowledged)",
			(unsigned long long)tail, (unsigned long long)a->segno);
	}
	a->tree = t;
	a->seg_size = off;
out:
	audit_seg_reader_close(&r);
	return rc;
}

/* Catch up with other processes: appends to our segment, then any
 * segments they created after it. */
static enum kura_err sync_state(struct kura_audit *a, struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	for (;;) {
		struct stat st;
		if (fstat(a->seg_fd, &st) != 0)
			return kura_fail_errno(err, KURA_EIO, errno,
					       "stat audit segment");
		uint64_t size = (uint64_t)st.st_size;
		if (size < a->seg_size)
			return kura_fail(
				err, KURA_EINTEGRITY,
				"audit segment %llu shrank from "
				"%llu to %llu bytes: records were removed",
				(unsigned long long)a->segno,
				(unsigned long long)a->seg_size,
				(unsigned long long)size);
		if (size > a->seg_size) {
			enum kura_err rc = fold_segment(a, size, err);
			if (rc != KURA_OK)
				return rc;
		}
		audit_seg_path(a->dir, a->segno + 1, path, sizeof(path));
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				return KURA_OK;
			return kura_fail_errno(err, KURA_EIO, errno,
					       "open '%s'", path);
		}
		uint8_t hb[AUDIT_SEG_HEADER_MAX];
		struct audit_seg_header h;
		if (fstat(fd, &st) != 0) {
			close(fd);
			return kura_fail_errno(err, KURA_EIO, errno,
					       "stat '%s'", path);
		}
		size_t hn = (uint64_t)st.st_size < sizeof(hb) ?
				    (size_t)st.st_size :
				    sizeof(hb);
		struct kura_error e2 = { 0 };
		enum kura_err rc = kura_pread_all(fd, hb, hn, 0, &e2);
		if (rc == KURA_OK)
			rc = audit_seg_header_parse(hb, hn, &h, &e2);
		if (rc == KURA_OK && (h.segno != a->segno + 1 ||
				      !audit_tree_equal(&h.tree, &a->tree)))
			rc = kura_fail(&e2, KURA_EINTEGRITY,
				       "does not continue segment %llu",
				       (unsigned long long)a->segno);
		if (rc != KURA_OK) {
			close(fd);
			return kura_fail(err, KURA_EINTEGRITY, "'%s': %s", path,
					 e2.msg);
		}
		close(a->seg_fd);
		a->seg_fd = fd;
		a->segno = h.segno;
		a->seg_first = h.first_seq;
		a->seg_size = h.len;
		a->seg_created_ms = h.created_ms;
	}
}

/* Catch up with checkpoints written by other processes: only the last
 * one's size matters.  Repairs a torn last line.  Under the lock. */
static enum kura_err sync_checkpoints(struct kura_audit *a,
				      struct kura_error *err)
{
	struct stat st;
	if (fstat(a->cp_fd, &st) != 0)
		return kura_fail_errno(err, KURA_EIO, errno,
				       "stat checkpoints.log");
	uint64_t size = (uint64_t)st.st_size;
	if (size == a->cp_known)
		return KURA_OK;
	if (size < a->cp_known)
		return kura_fail(err, KURA_EINTEGRITY,
				 "checkpoints.log shrank");
	/* Only the tail matters: read at most the last few lines. */
	uint64_t from = a->cp_known;
	if (size - from > 4 * AUDIT_CP_LINE_MAX)
		from = size - 4 * AUDIT_CP_LINE_MAX;
	size_t n = (size_t)(size - from);
	char *b = malloc(n + 1);
	if (b == NULL)
		return kura_fail(err, KURA_ENOMEM, "checkpoints");
	enum kura_err rc = kura_pread_all(a->cp_fd, b, n, (off_t)from, err);
	if (rc != KURA_OK)
		goto out;
	size_t end = n;
	while (end > 0 && b[end - 1] != '\n')
		end--;
	if (end < n) {
		/* A writer died in the middle of a line: its checkpoint call
		 * never returned. */
		if (ftruncate(a->cp_fd, (off_t)(from + end)) != 0) {
			rc = kura_fail_errno(err, KURA_EIO, errno,
					     "truncate checkpoints.log");
			goto out;
		}
		kura_warn(NULL, "audit: removed an unfinished checkpoint line");
		size = from + end;
	}
	if (end > 0) {
		size_t start = end - 1;
		while (start > 0 && b[start - 1] != '\n')
			start--;
		struct audit_checkpoint cp;
		struct kura_error e2 = { 0 };
		if (start == 0 && from > 0 && from != a->cp_known) {
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "checkpoints.log: line too long");
			goto out;
		}
		if (audit_cp_parse(b + start, end - 1 - start, &cp, &e2) !=
		    KURA_OK) {
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "checkpoints.log: last line: %s",
				       e2.msg);
			goto out;
		}
		a->last_cp_size = cp.tree_size;
	}
	a->cp_known = size;
out:
	free(b);
	return rc;
}

static enum kura_err publish(struct kura_audit *a, const struct kura_buf *line,
			     struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	struct stat st;
	enum kura_err rc = kura_mkdirs(a->publish_dir, 0700, err);
	if (rc != KURA_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/checkpoints.log", a->publish_dir);
	bool created = stat(path, &st) != 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return kura_fail_errno(err, KURA_EIO, errno, "open '%s'", path);
	rc = kura_write_all(fd, line->data, line->len, err);
	if (rc == KURA_OK)
		rc = sync_fd(a, fd, false, path, err);
	close(fd);
	if (rc == KURA_OK && created && !a->nosync)
		rc = kura_fsync_dir(a->publish_dir, err);
	return rc;
}

/* Sign and store a checkpoint of the current tree.  Under the lock, after
 * sync_state. */
static enum kura_err write_checkpoint(struct kura_audit *a,
				      struct kura_error *err)
{
	enum kura_err rc = sync_checkpoints(a, err);
	if (rc != KURA_OK || a->tree.size == a->last_cp_size)
		return rc;
	struct audit_checkpoint cp;
	uint8_t root[AUDIT_HASH];
	struct kura_buf line;
	audit_tree_root(&a->tree, root);
	rc = audit_cp_sign(a->sign, a->sign_ctx, a->tree.size, root, now_ms(a),
			   &cp, err);
	if (rc != KURA_OK)
		return rc;
	kura_buf_init(&line, AUDIT_CP_LINE_MAX);
	rc = audit_cp_format(&cp, &line, err);
	if (rc == KURA_OK)
		rc = pwrite_all(a->cp_fd, line.data, line.len, a->cp_known,
				"checkpoints.log", err);
	if (rc == KURA_OK)
		rc = sync_fd(a, a->cp_fd, false, "checkpoints.log", err);
	if (rc != KURA_OK) {
		/* leave no partial line behind */
		if (ftruncate(a->cp_fd, (off_t)a->cp_known) != 0)
			kura_warn(NULL,
				  "audit: cannot truncate checkpoints.log");
		goto out;
	}
	a->cp_known += line.len;
	a->last_cp_size = cp.tree_size;
	if (a->publish_dir[0] != '\0')
		rc = publish(a, &line, err);
out:
	kura_buf_release(&line);
	return rc;
}

/* Create segment segno starting at the current tree.  Under the lock. */
static enum kura_err create_segment(struct kura_audit *a, uint64_t segno,
				    struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	struct audit_seg_header h = { .segno = segno,
				      .first_seq = a->tree.size,
				      .created_ms = now_ms(a),
				      .tree = a->tree };
	struct kura_buf b;
	kura_buf_init(&b, AUDIT_SEG_HEADER_MAX);
	audit_seg_path(a->dir, segno, path, sizeof(path));
	enum kura_err rc = audit_seg_header_encode(&h, &b);
	int fd = -1;
	if (rc != KURA_OK) {
		rc = kura_fail(err, rc, "segment header");
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = kura_fail_errno(err, KURA_EIO, errno, "create '%s'", path);
		goto out;
	}
	rc = pwrite_all(fd, b.data, b.len, 0, path, err);
	if (rc == KURA_OK)
		rc = sync_fd(a, fd, false, path, err);
	if (rc == KURA_OK && !a->nosync)
		rc = kura_fsync_dir(a->dir, err);
	if (rc != KURA_OK) {
		close(fd);
		unlink(path);
		goto out;
	}
	if (a->seg_fd >= 0)
		close(a->seg_fd);
	a->seg_fd = fd;
	a->segno = segno;
	a->seg_first = h.first_seq;
	a->seg_size = b.len;
	a->seg_created_ms = h.created_ms;
out:
	kura_buf_release(&b);
	return rc;
}

static void maybe_rollover(struct kura_audit *a, int64_t now)
{
	if (a->sign == NULL || a->tree.size == a->seg_first)
		return;
	if (a->seg_size < a->max_bytes &&
	    now - a->seg_created_ms < a->max_age_ms)
		return;
	struct kura_error err = { 0 };
	/* The checkpoint first: every segment starts at a signed size, which
	 * is what lets older segments be archived. */
	if (write_checkpoint(a, &err) != KURA_OK ||
	    create_segment(a, a->segno + 1, &err) != KURA_OK)
		kura_warn(NULL, "audit: segment rollover postponed: %s",
			  err.msg);
}

static void fail_all(struct pending *list, enum kura_err rc,
		     const struct kura_error *err)
{
	for (struct pending *p = list; p; p = p->next) {
		if (p->kind != PENDING_APPEND || p->rc != KURA_OK)
			continue;
		p->rc = rc;
		p->err = *err;
	}
}

/* Append p's records to the batch being built, all or none; t follows.
 * A record that does not fit fails p alone (KURA_OK is returned); a failure
 * of the batch buffer itself (memory) loses every group in it and is
 * returned (buf.h: a failed buffer drops its content). */
static enum kura_err add_group(struct kura_audit *a, struct pending *p,
			       struct audit_tree *t, int64_t now)
{
	size_t before = a->batch.len;
	struct audit_tree t0 = *t;
	for (size_t i = 0; i < p->nrecs; i++) {
		uint8_t h[AUDIT_HASH];
		kura_buf_reset(&a->rec);
		enum kura_err r2 =
			audit_record_finish(&p->recs[i], t->size, now, &a->rec);
		if (r2 == KURA_OK && kura_buf_room(&a->batch) <
					     a->rec.len + AUDIT_ENTRY_OVERHEAD)
			r2 = KURA_ETOOBIG;
		if (r2 == KURA_OK) {
			audit_leaf_hash(a->rec.data, a->rec.len, h);
			r2 = audit_entry_encode(a->rec.data, a->rec.len, h,
						&a->batch);
		}
		if (kura_buf_error(&a->batch) != KURA_OK) {
			*t = t0;
			return kura_buf_error(&a->batch);
		}
		if (r2 != KURA_OK) {
			kura_buf_truncate(&a->batch, before);
			*t = t0;
			p->rc = kura_fail(&p->err, KURA_ETOOBIG,
					  "audit record too large");
			return KURA_OK;
		}
		audit_tree_push(t, h);
	}
	p->seq = t0.size;
	return KURA_OK;
}

/* Write and sync the batch built so far; t is the tree with it.  On
 * failure nothing of it stays in the segment. */
static enum kura_err flush(struct kura_audit *a, const struct audit_tree *t,
			   int64_t now, struct kura_error *err)
{
	if (a->batch.len == 0)
		return KURA_OK;
	enum kura_err rc = pwrite_all(a->seg_fd, a->batch.data, a->batch.len,
				      a->seg_size, "audit segment", err);
	if (rc == KURA_OK)
		rc = sync_fd(a, a->seg_fd, true, "audit segment", err);
	if (rc != KURA_OK) {
		if (ftruncate(a->seg_fd, (off_t)a->seg_size) != 0)
			kura_warn(NULL, "audit: cannot remove a failed batch");
		kura_error(NULL, "audit: append failed: %s", err->msg);
		return rc;
	}
	a->seg_size += a->batch.len;
	a->tree = *t;
	a->last_time_ms = now;
	kura_buf_reset(&a->batch);
	return KURA_OK;
}

/* Write every queued group: as many as fit in BATCH_MAX per write and
 * sync (a group always fits: kura_audit_append_batch checks). */
static void write_batch(struct kura_audit *a, struct pending *list)
{
	struct kura_error err = { 0 };
	lock_ex(a);
	enum kura_err rc = sync_state(a, &err);
	int64_t now = now_ms(a);
	if (now < a->last_time_ms)
		now = a->last_time_ms;
	if (rc == KURA_OK)
		maybe_rollover(a, now);
	if (rc != KURA_OK) {
		fail_all(list, rc, &err);
		goto out;
	}
	/* Groups from `from` on are in the batch being built, or not yet. */
	struct audit_tree t = a->tree;
	struct pending *from = list;
	kura_buf_reset(&a->batch);
	for (struct pending *p = list; p; p = p->next) {
		if (p->kind != PENDING_APPEND)
			continue;
		if (a->batch.len > 0 && a->batch.len + p->bytes > BATCH_MAX) {
			rc = flush(a, &t, now, &err);
			if (rc != KURA_OK)
				break;
			from = p;
		}
		rc = add_group(a, p, &t, now);
		if (rc != KURA_OK) {
			kura_fail(&err, rc, "audit batch");
			break;
		}
	}
	if (rc == KURA_OK)
		rc = flush(a, &t, now, &err);
	if (rc != KURA_OK)
		fail_all(from, rc, &err);
out:
	unlock(a);
}

static void run_checkpoint(struct kura_audit *a, struct pending *p)
{
	lock_ex(a);
	p->rc = sync_state(a, &p->err);
	if (p->rc == KURA_OK)
		p->rc = write_checkpoint(a, &p->err);
	unlock(a);
}

/* Write one batch (called by the leader without mu held). */
static void process(struct kura_audit *a, struct pending *list)
{
	bool appends = false;
	for (struct pending *p = list; p; p = p->next)
		appends |= p->kind == PENDING_APPEND;
	if (appends)
		write_batch(a, list);
	for (struct pending *p = list; p; p = p->next)
		if (p->kind == PENDING_CHECKPOINT)
			run_checkpoint(a, p);
}

/* Queue p and return when it is done, leading batches while no one else
 * does. */
static enum kura_err submit(struct kura_audit *a, struct pending *p)
{
	pthread_cond_init(&p->wake, NULL);
	pthread_mutex_lock(&a->mu);
	if (a->closing) {
		pthread_mutex_unlock(&a->mu);
		pthread_cond_destroy(&p->wake);
		return kura_fail(&p->err, KURA_ESTATE, "audit log is closing");
	}
	p->next = NULL;
	*a->tail = p;
	a->tail = &p->next;
	while (!p->done) {
		if (a->leading || a->head == NULL) {
			pthread_cond_wait(&p->wake, &a->mu);
			continue;
		}
		a->leading = true;
		struct pending *list = a->head;
		a->head = NULL;
		a->tail = &a->head;
		pthread_mutex_unlock(&a->mu);

		process(a, list);

		pthread_mutex_lock(&a->mu);
		for (struct pending *q = list, *next; q; q = next) {
			next = q->next; /* q may go away once done */
			q->done = true;
			if (q != p)
				pthread_cond_signal(&q->wake);
		}
		a->leading = false;
		if (a->head)
			pthread_cond_signal(&a->head->wake);
		else if (a->closing)
			pthread_cond_broadcast(&a->idle);
	}
	pthread_mutex_unlock(&a->mu);
	pthread_cond_destroy(&p->wake);
	return p->rc;
}

enum kura_err kura_audit_append_batch(struct kura_audit *a,
				      const struct kura_audit_record *r,
				      size_t n, uint64_t *first_seq,
				      struct kura_error *err)
{
	struct pending p;
	enum kura_err rc = KURA_OK;
	memset(&p, 0, sizeof(p));
	p.kind = PENDING_APPEND;
	if (n == 0 || n > KURA_AUDIT_BATCH_MAX)
		return kura_fail(err, KURA_EINVAL, "audit batch of %zu records",
				 n);
	p.recs = calloc(n, sizeof(*p.recs));
	if (p.recs == NULL)
		return kura_fail(err, KURA_ENOMEM, "audit batch");
	for (; p.nrecs < n; p.nrecs++) {
		rc = audit_record_prepare(&r[p.nrecs], &p.recs[p.nrecs], err);
		if (rc != KURA_OK)
			goto out;
		const struct audit_prepared *x = &p.recs[p.nrecs];
		p.bytes += x->pre_len + x->mid_len + x->post_len + ENTRY_EXTRA;
	}
	if (p.bytes > BATCH_MAX) {
		rc = kura_fail(err, KURA_ETOOBIG, "audit batch of %zu bytes",
			       p.bytes);
		goto out;
	}
	rc = submit(a, &p);
	if (rc != KURA_OK)
		rc = kura_fail(err, rc, "%s", p.err.msg);
	else if (first_seq)
		*first_seq = p.seq;
out:
	for (size_t i = 0; i < p.nrecs; i++)
		audit_prepared_release(&p.recs[i]);
	free(p.recs);
	return rc;
}

enum kura_err kura_audit_append(struct kura_audit *a,
				const struct kura_audit_record *r,
				uint64_t *seq, struct kura_error *err)
{
	return kura_audit_append_batch(a, r, 1, seq, err);
}

enum kura_err kura_audit_checkpoint(struct kura_audit *a,
				    struct kura_error *err)
{
	struct pending p;
	memset(&p, 0, sizeof(p));
	p.kind = PENDING_CHECKPOINT;
	enum kura_err rc = submit(a, &p);
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", p.err.msg);
	return KURA_OK;
}

/* Everything open needs under the lock: the last segment (or a first
 * one), its entries, the last checkpoint. */
static enum kura_err load(struct kura_audit *a, struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	uint64_t *segs = NULL;
	size_t nsegs = 0;
	struct stat st;
	enum kura_err rc = audit_seg_list(a->dir, &segs, &nsegs, err);
	if (rc != KURA_OK)
		return rc;
	if (nsegs == 0) {
		audit_tree_init(&a->tree);
		rc = create_segment(a, 1, err);
	} else {
		struct audit_seg_reader r;
		rc = audit_seg_reader_open(&r, a->dir, segs[nsegs - 1],
					   UINT64_MAX, err);
		if (rc == KURA_OK) {
			a->segno = r.hdr.segno;
			a->seg_first = r.hdr.first_seq;
			a->seg_size = r.hdr.len;
			a->seg_created_ms = r.hdr.created_ms;
			a->tree = r.hdr.tree;
			audit_seg_reader_close(&r);
			audit_seg_path(a->dir, a->segno, path, sizeof(path));
			a->seg_fd = open(path, O_RDWR | O_CLOEXEC);
			if (a->seg_fd < 0)
				rc = kura_fail_errno(err, KURA_EIO, errno,
						     "open '%s'", path);
		}
		if (rc == KURA_OK)
			rc = sync_state(a, err);
	}
	free(segs);
	if (rc != KURA_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/checkpoints.log", a->dir);
	bool created = stat(path, &st) != 0;
	a->cp_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->cp_fd < 0)
		return kura_fail_errno(err, KURA_EIO, errno, "open '%s'", path);
	if (created && !a->nosync) {
		rc = kura_fsync_dir(a->dir, err);
		if (rc != KURA_OK)
			return rc;
	}
	rc = sync_checkpoints(a, err);
	if (rc == KURA_OK && a->last_cp_size > a->tree.size)
		rc = kura_fail(
			err, KURA_EINTEGRITY,
			"audit log truncated: a checkpoint "
			"covers %llu records but the log holds %llu (run kura audit verify)",
			(unsigned long long)a->last_cp_size,
			(unsigned long long)a->tree.size);
	return rc;
}

enum kura_err kura_audit_open(const struct kura_audit_options *opt,
			      struct kura_audit **out, struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	enum kura_err rc;
	if (opt == NULL || opt->dir == NULL ||
	    strlen(opt->dir) >= AUDIT_DIR_MAX ||
	    (opt->publish_dir && strlen(opt->publish_dir) >= AUDIT_DIR_MAX))
		return kura_fail(err, KURA_EINVAL, "audit log directory");
	struct kura_audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return kura_fail(err, KURA_ENOMEM, "audit log");
	snprintf(a->dir, sizeof(a->dir), "%s", opt->dir);
	if (opt->publish_dir)
		snprintf(a->publish_dir, sizeof(a->publish_dir), "%s",
			 opt->publish_dir);
	a->max_bytes = opt->segment_max_bytes ? opt->segment_max_bytes :
						DEFAULT_SEGMENT_BYTES;
	a->max_age_ms = (int64_t)(opt->segment_max_age_s ?
					  opt->segment_max_age_s :
					  DEFAULT_SEGMENT_AGE_S) *
			1000;
	a->sign = opt->sign;
	a->sign_ctx = opt->sign_ctx;
	a->lock_fd = a->seg_fd = a->cp_fd = -1;
	a->tail = &a->head;
	kura_buf_init(&a->batch,
		      BATCH_MAX + AUDIT_RECORD_MAX + AUDIT_ENTRY_OVERHEAD);
	kura_buf_init(&a->rec, AUDIT_RECORD_MAX);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->idle, NULL);

	rc = kura_mkdirs(a->dir, 0700, err);
	if (rc != KURA_OK)
		goto fail;
	snprintf(path, sizeof(path), "%s/lock", a->dir);
	a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->lock_fd < 0) {
		rc = kura_fail_errno(err, KURA_EIO, errno, "open '%s'", path);
		goto fail;
	}
	lock_ex(a);
	rc = load(a, err);
	unlock(a);
	if (rc != KURA_OK)
		goto fail;
	*out = a;
	return KURA_OK;
fail:
	kura_audit_close(a);
	return rc;
}

void kura_audit_close(struct kura_audit *a)
{
	if (a == NULL)
		return;
	/* Appends still queued finish under their own leaders; later ones are
	 * refused. */
	pthread_mutex_lock(&a->mu);
	a->closing = true;
	while (a->leading || a->head)
		pthread_cond_wait(&a->idle, &a->mu);
	pthread_mutex_unlock(&a->mu);
	if (a->seg_fd >= 0)
		close(a->seg_fd);
	if (a->cp_fd >= 0)
		close(a->cp_fd);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	kura_buf_release(&a->batch);
	kura_buf_release(&a->rec);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->idle);
	free(a);
}

/*
 * proof.c — reading the log in order (audit_walk), inclusion and
 * consistency proofs computed from it (RFC 9162 §2.1.3, §2.1.4), and
 * export as JSON lines.
 *
 * The walker checks what every reader needs: consecutive segments, each
 * header continuing the sequence, each stored leaf hash matching its
 * record.  It does not check signatures: that is kura_audit_verify's job.
 * Proofs need every record from 0: they fail when early segments are
 * archived.  Thread-safe.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "kura/encode.h"
#include "kura/banned.h"

enum kura_err audit_walk(const char *dir, const struct audit_snapshot *s,
			 uint64_t from_seg, uint64_t from_off,
			 uint64_t from_seq, audit_walk_fn fn, void *ctx,
			 struct kura_error *err)
{
	uint64_t seq = from_seq;
	bool started = false;
	for (size_t i = 0; i < s->nsegs; i++) {
		uint64_t segno = s->segs[i];
		if (segno < from_seg)
			continue;
		if (started && segno != s->segs[i - 1] + 1)
			return kura_fail(err, KURA_EINTEGRITY,
					 "audit segment %llu is missing "
					 "(run kura audit verify)",
					 (unsigned long long)s->segs[i - 1] +
						 1);
		struct audit_seg_reader r;
		enum kura_err rc =
			audit_seg_reader_open(&r, dir, segno, s->sizes[i], err);
		if (rc != KURA_OK)
			return rc;
		if (!started && segno == from_seg && from_off >= r.hdr.len) {
			r.buf_off = from_off;
		} else if (!started) {
			seq = r.hdr.first_seq;
		} else if (r.hdr.first_seq != seq) {
			audit_seg_reader_close(&r);
			return kura_fail(
				err, KURA_EINTEGRITY,
				"audit segment %llu does not "
				"continue at record %llu (run kura audit verify)",
				(unsigned long long)segno,
				(unsigned long long)seq);
		}
		started = true;
		bool stop = false;
		while (rc == KURA_OK && !stop) {
			struct audit_entry e;
			enum audit_entry_status st;
			uint64_t off, tail;
			uint8_t h[AUDIT_HASH];
			rc = audit_seg_reader_next(&r, &e, &off, &st, &tail,
						   err);
			if (rc != KURA_OK)
				break;
			if (st != AUDIT_ENTRY_OK) {
				/* an unfinished tail of the last segment is not a record */
				if (tail > 0 && (i + 1 < s->nsegs ||
						 st != AUDIT_ENTRY_SHORT))
					rc = kura_fail(
						err, KURA_EINTEGRITY,
						"audit segment %llu "
						"offset %llu: damaged entry (run kura audit "
						"verify)",
						(unsigned long long)segno,
						(unsigned long long)off);
				break;
			}
			audit_leaf_hash(e.rec, e.rec_len, h);
			if (memcmp(h, e.hash, AUDIT_HASH) != 0) {
				rc = kura_fail(err, KURA_EINTEGRITY,
					       "audit record %llu is damaged "
					       "(run kura audit verify)",
					       (unsigned long long)seq);
				break;
			}
			rc = fn(ctx, seq, &e, segno, off, &stop, err);
			seq++;
		}
		audit_seg_reader_close(&r);
		if (rc != KURA_OK || stop)
			return rc;
	}
	return KURA_OK;
}

/* ---- proofs ---- */

struct proof_ctx {
	uint64_t want_seq;     /* record to capture (inclusion) */
	uint64_t size1, size2; /* tree sizes of interest */
	struct audit_tree tree;
	uint8_t root1[AUDIT_HASH], root2[AUDIT_HASH];
	struct audit_ranges_hasher rh;
	struct kura_buf record;
	uint8_t leaf[AUDIT_HASH];
	bool archived;
};

static enum kura_err proof_leaf(void *arg, uint64_t seq,
				const struct audit_entry *e, uint64_t segno,
				uint64_t off, bool *stop,
				struct kura_error *err)
{
	struct proof_ctx *p = arg;
	if (seq != p->tree.size) {
		p->archived = true;
		*stop = true;
		return KURA_OK;
	}
	if (seq == p->want_seq) {
		memcpy(p->leaf, e->hash, AUDIT_HASH);
		if (kura_buf_add(&p->record, e->rec, e->rec_len) != KURA_OK)
			return kura_fail(err, KURA_ENOMEM, "proof record");
	}
	audit_ranges_hasher_push(&p->rh, seq, e->hash);
	audit_tree_push(&p->tree, e->hash);
	if (p->tree.size == p->size1)
		audit_tree_root(&p->tree, p->root1);
	if (p->tree.size == p->size2) {
		audit_tree_root(&p->tree, p->root2);
		*stop = true;
	}
	return KURA_OK;
}

/* The latest checkpoint (size 0 when there is none), and the one of a
 * given size. */
static enum kura_err find_checkpoints(const char *dir,
				      const struct audit_snapshot *s,
				      struct audit_cp_list *l,
				      struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	snprintf(path, sizeof(path), "%s/checkpoints.log", dir);
	return audit_cp_load(path, s->cp_size, l, err);
}

static const struct audit_checkpoint *cp_of_size(const struct audit_cp_list *l,
						 uint64_t size)
{
	for (size_t i = l->n; i-- > 0;)
		if (l->v[i].tree_size == size)
			return &l->v[i];
	return NULL;
}

static void print_hex(FILE *out, const uint8_t *h)
{
	char hex[2 * AUDIT_HASH + 1];
	kura_hex_encode(h, AUDIT_HASH, hex);
	fprintf(out, "\"%s\"", hex);
}

static enum kura_err print_cp(FILE *out, const struct audit_checkpoint *c,
			      struct kura_error *err)
{
	if (c == NULL) {
		fputs("null", out);
		return KURA_OK;
	}
	struct kura_buf line;
	kura_buf_init(&line, AUDIT_CP_LINE_MAX);
	enum kura_err rc = audit_cp_format(c, &line, err);
	if (rc == KURA_OK)
		fwrite(line.data, 1, line.len - 1, out); /* without '\n' */
	kura_buf_release(&line);
	return rc;
}

/* Walk the log from record 0 computing the given ranges and the roots at
 * size1 and size2. */
static enum kura_err compute(const char *dir, const struct audit_snapshot *s,
			     struct proof_ctx *p, const struct audit_range *r,
			     size_t nr, struct kura_error *err)
{
	audit_tree_init(&p->tree);
	kura_buf_init(&p->record, AUDIT_RECORD_MAX);
	enum kura_err rc = audit_ranges_hasher_init(&p->rh, r, nr, err);
	if (rc != KURA_OK)
		return rc;
	rc = audit_walk(dir, s, 0, 0, 0, proof_leaf, p, err);
	if (rc == KURA_OK && p->archived)
		rc = kura_fail(err, KURA_ENOENT,
			       "records before %llu are archived: proofs "
			       "need every record from the first",
			       (unsigned long long)p->tree.size);
	if (rc == KURA_OK && p->tree.size < p->size2)
		rc = kura_fail(err, KURA_EINVAL,
			       "the log holds %llu records, not %llu",
			       (unsigned long long)p->tree.size,
			       (unsigned long long)p->size2);
	return rc;
}

static void print_path(FILE *out, const struct proof_ctx *p, size_t nr)
{
	uint8_t(*h)[AUDIT_HASH] = malloc((nr ? nr : 1) * AUDIT_HASH);
	fputs("[", out);
	if (h != NULL) {
		audit_ranges_hasher_result(&p->rh, h);
		for (size_t i = 0; i < nr; i++) {
			if (i > 0)
				fputs(",", out);
			print_hex(out, h[i]);
		}
	}
	fputs("]", out);
	free(h);
}

enum kura_err kura_audit_inclusion_proof(const char *dir, uint64_t seq,
					 uint64_t tree_size, FILE *out,
					 struct kura_error *err)
{
	struct audit_snapshot s;
	struct audit_cp_list l = { 0 };
	struct proof_ctx p;
	struct audit_range r[AUDIT_PROOF_MAX];
	memset(&p, 0, sizeof(p));
	enum kura_err rc = audit_snapshot_take(dir, &s, err);
	if (rc != KURA_OK)
		return rc;
	rc = find_checkpoints(dir, &s, &l, err);
	if (rc != KURA_OK)
		goto out;
	if (tree_size == 0) {
		if (l.n == 0) {
			rc = kura_fail(err, KURA_ENOENT,
				       "no checkpoint yet: give a tree size");
			goto out;
		}
		tree_size = l.v[l.n - 1].tree_size;
	}
	if (seq >= tree_size) {
		rc = kura_fail(err, KURA_EINVAL,
			       "record %llu is not in the tree of size %llu",
			       (unsigned long long)seq,
			       (unsigned long long)tree_size);
		goto out;
	}
	size_t nr = audit_inclusion_ranges(seq, tree_size, r);
	p.want_seq = seq;
	p.size1 = p.size2 = tree_size;
	rc = compute(dir, &s, &p, r, nr, err);
	if (rc != KURA_OK)
		goto out;
	fprintf(out,
		"{\"type\":\"inclusion\",\"leaf_index\":%" PRIu64
		",\"tree_size\":%" PRIu64 ",\"record\":",
		seq, tree_size);
	struct kura_buf q;
	kura_buf_init(&q, 8 * AUDIT_RECORD_MAX);
	rc = audit_json_string(&q, p.record.data, p.record.len);
	if (rc != KURA_OK) {
		kura_buf_release(&q);
		rc = kura_fail(err, rc, "proof record");
		goto out;
	}
	fwrite(q.data, 1, q.len, out);
	kura_buf_release(&q);
	fputs(",\"leaf_hash\":", out);
	print_hex(out, p.leaf);
	fputs(",\"path\":", out);
	print_path(out, &p, nr);
	fputs(",\"root\":", out);
	print_hex(out, p.root2);
	fputs(",\"checkpoint\":", out);
	rc = print_cp(out, cp_of_size(&l, tree_size), err);
	fputs("}\n", out);
out:
	audit_ranges_hasher_release(&p.rh);
	kura_buf_release(&p.record);
	audit_cp_list_release(&l);
	audit_snapshot_release(&s);
	return rc;
}

enum kura_err kura_audit_consistency_proof(const char *dir, uint64_t size1,
					   uint64_t size2, FILE *out,
					   struct kura_error *err)
{
	struct audit_snapshot s;
	struct audit_cp_list l = { 0 };
	struct proof_ctx p;
	struct audit_range r[AUDIT_PROOF_MAX];
	memset(&p, 0, sizeof(p));
	enum kura_err rc = audit_snapshot_take(dir, &s, err);
	if (rc != KURA_OK)
		return rc;
	rc = find_checkpoints(dir, &s, &l, err);
	if (rc != KURA_OK)
		goto out;
	if (size2 == 0 && l.n > 0)
		size2 = l.v[l.n - 1].tree_size;
	if (size1 == 0 || size1 > size2) {
		rc = kura_fail(err, KURA_EINVAL,
			       "consistency proof needs 0 < size1 <= size2 "
			       "(got %llu and %llu)",
			       (unsigned long long)size1,
			       (unsigned long long)size2);
		goto out;
	}
	size_t nr = audit_consistency_ranges(size1, size2, r);
	p.want_seq = UINT64_MAX;
	p.size1 = size1;
	p.size2 = size2;
	rc = compute(dir, &s, &p, r, nr, err);
	if (rc != KURA_OK)
		goto out;
	fprintf(out,
		"{\"type\":\"consistency\",\"size1\":%" PRIu64
		",\"size2\":%" PRIu64 ",\"root1\":",
		size1, size2);
	print_hex(out, p.root1);
	fputs(",\"root2\":", out);
	print_hex(out, p.root2);
	fputs(",\"path\":", out);
	print_path(out, &p, nr);
	fputs(",\"checkpoint1\":", out);
	rc = print_cp(out, cp_of_size(&l, size1), err);
	fputs(",\"checkpoint2\":", out);
	if (rc == KURA_OK)
		rc = print_cp(out, cp_of_size(&l, size2), err);
	fputs("}\n", out);
out:
	audit_ranges_hasher_release(&p.rh);
	kura_buf_release(&p.record);
	audit_cp_list_release(&l);
	audit_snapshot_release(&s);
	return rc;
}

/* ---- export ---- */

static enum kura_err export_one(void *arg, uint64_t seq,
				const struct audit_entry *e, uint64_t segno,
				uint64_t off, bool *stop,
				struct kura_error *err)
{
	FILE *out = arg;
	if (fwrite(e->rec, 1, e->rec_len, out) != e->rec_len ||
	    fputc('\n', out) == EOF)
		return kura_fail(err, KURA_EIO, "write export");
	return KURA_OK;
}

struct each_arg {
	kura_audit_record_fn fn;
	void *ctx;
	uint64_t first;
	bool seen;
};

static enum kura_err each_one(void *arg, uint64_t seq,
			      const struct audit_entry *e, uint64_t segno,
			      uint64_t off, bool *stop, struct kura_error *err)
{
	struct each_arg *a = arg;
	if (!a->seen) {
		a->first = seq;
		a->seen = true;
	}
	return a->fn(a->ctx, seq, (const char *)e->rec, e->rec_len, stop, err);
}

enum kura_err kura_audit_each(const char *dir, kura_audit_record_fn fn,
			      void *ctx, uint64_t *first_seq,
			      struct kura_error *err)
{
	struct audit_snapshot s;
	struct each_arg a = { fn, ctx, 0, false };
	enum kura_err rc = audit_snapshot_take(dir, &s, err);
	if (rc != KURA_OK)
		return rc;
	rc = audit_walk(dir, &s, 0, 0, 0, each_one, &a, err);
	audit_snapshot_release(&s);
	if (rc == KURA_OK && first_seq != NULL)
		*first_seq = a.first;
	return rc;
}

enum kura_err kura_audit_export(const char *dir, FILE *out,
				struct kura_error *err)
{
	struct audit_snapshot s;
	struct audit_cp_list l = { 0 };
	enum kura_err rc = audit_snapshot_take(dir, &s, err);
	if (rc != KURA_OK)
		return rc;
	rc = audit_walk(dir, &s, 0, 0, 0, export_one, out, err);
	if (rc == KURA_OK)
		rc = find_checkpoints(dir, &s, &l, err);
	for (size_t i = 0; rc == KURA_OK && i < l.n; i++) {
		rc = print_cp(out, &l.v[i], err);
		fputc('\n', out);
	}
	if (rc == KURA_OK && fflush(out) != 0)
		rc = kura_fail(err, KURA_EIO, "write export");
	audit_cp_list_release(&l);
	audit_snapshot_release(&s);
	return rc;
}

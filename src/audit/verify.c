/*
 * verify.c — kura_audit_verify: the whole log against its checkpoints.
 *
 * Order of the checks, each stopping at the first problem so that the
 * report names the first bad position:
 *   1. checkpoints.log: every line canonical, every signature valid, one
 *      signer (the pinned key when given), sizes never decreasing;
 *   2. the published copy, when given: every published checkpoint valid
 *      and identical to the local one of the same size;
 *   3. segments in order: consecutive numbers (a missing one after a
 *      present one is a gap); the first present segment's header frontier
 *      equal to the checkpoint of its size when earlier ones were archived;
 *      every later header continuing the records before it;
 *   4. records: stored leaf hash equals SHA-256(0x00 || bytes); the
 *      record's own "seq" equals its position (deletion, reordering); the
 *      root at each checkpoint's size equals the signed root (a record
 *      changed together with its stored hash, or a re-hashed forgery);
 *   5. no checkpoint claims more records than the log holds (truncation).
 *
 * Reads a snapshot taken under the writers' lock (shared), so it runs
 * safely beside a live writer.  Thread-safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "audit_int.h"
#include "kura/encode.h"
#include "kura/banned.h"

struct verifier {
	const char *dir;
	struct kura_audit_verify_report *rep;
	struct audit_cp_list cps;
	size_t ci;		/* next checkpoint to compare */
	uint64_t last_good;	/* size of the last checkpoint that matched */
};

__attribute__((format(printf, 4, 5)))
static void bad(struct kura_audit_verify_report *rep, bool known, uint64_t seq,
		const char *fmt, ...)
{
	va_list ap;
	if (!rep->ok)
		return;
	rep->ok = false;
	rep->bad_seq = seq;
	rep->bad_seq_known = known;
	va_start(ap, fmt);
	vsnprintf(rep->problem, sizeof(rep->problem), fmt, ap);
	va_end(ap);
}

/* The first 8 bytes of the SHA-256 of a DER public key, for messages. */
static void fingerprint(const uint8_t *der, size_t n, char out[17])
{
	uint8_t h[32];
	SHA256(der, n, h);
	kura_hex_encode(h, 8, out);
}

/* Signatures, signer and order of one checkpoint list. */
static bool check_cps(struct kura_audit_verify_report *rep,
		      const struct audit_cp_list *l, const char *name,
		      const uint8_t *trusted, size_t trusted_len, const char *anchor)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct audit_checkpoint *c = &l->v[i];
		struct kura_error e = { 0 };
		char fp[17];
		if (audit_cp_check_signature(c, &e) != KURA_OK) {
			bad(rep, false, c->tree_size, "%s line %zu (tree_size %llu): %s", name,
			    i + 1, (unsigned long long)c->tree_size, e.msg);
			return false;
		}
		const uint8_t *want = trusted ? trusted : l->v[0].pub;
		size_t want_len = trusted ? trusted_len : l->v[0].pub_len;
		if (c->pub_len != want_len || memcmp(c->pub, want, want_len) != 0) {
			fingerprint(c->pub, c->pub_len, fp);
			bad(rep, false, c->tree_size, "%s line %zu (tree_size %llu) is signed "
			    "by another key (sha256:%s...) than %s", name, i + 1,
			    (unsigned long long)c->tree_size, fp,
			    trusted ? anchor : "the first checkpoint");
			return false;
		}
		if (i > 0 && (c->tree_size < l->v[i - 1].tree_size ||
			      (c->tree_size == l->v[i - 1].tree_size &&
			       memcmp(c->root, l->v[i - 1].root, AUDIT_HASH) != 0))) {
			bad(rep, false, c->tree_size, "%s line %zu (tree_size %llu) does not "
			    "follow line %zu (tree_size %llu)", name, i + 1,
			    (unsigned long long)c->tree_size, i,
			    (unsigned long long)l->v[i - 1].tree_size);
			return false;
		}
	}
	return true;
}

static void check_published(struct kura_audit_verify_report *rep,
			    const struct audit_cp_list *local,
			    const struct audit_cp_list *pub)
{
	size_t j = 0;
	for (size_t i = 0; i < pub->n && rep->ok; i++) {
		const struct audit_checkpoint *p = &pub->v[i];
		while (j < local->n && local->v[j].tree_size < p->tree_size)
			j++;
		if (j == local->n || local->v[j].tree_size != p->tree_size) {
			bad(rep, false, p->tree_size, "published checkpoint line %zu "
			    "(tree_size %llu, %s) is missing from the local checkpoints.log",
			    i + 1, (unsigned long long)p->tree_size, p->time);
			return;
		}
		const struct audit_checkpoint *l = &local->v[j];
		if (memcmp(l->root, p->root, AUDIT_HASH) != 0 || strcmp(l->time, p->time) != 0 ||
		    l->sig_len != p->sig_len || memcmp(l->sig, p->sig, p->sig_len) != 0 ||
		    l->pub_len != p->pub_len || memcmp(l->pub, p->pub, p->pub_len) != 0) {
			bad(rep, false, p->tree_size, "published checkpoint line %zu "
			    "(tree_size %llu) differs from local checkpoints.log line %zu",
			    i + 1, (unsigned long long)p->tree_size, j + 1);
			return;
		}
	}
}

/* Compare the tree with every checkpoint of its size. */
static void at_size(struct verifier *v, const struct audit_tree *t)
{
	while (v->rep->ok && v->ci < v->cps.n && v->cps.v[v->ci].tree_size == t->size) {
		const struct audit_checkpoint *c = &v->cps.v[v->ci];
		uint8_t root[AUDIT_HASH];
		audit_tree_root(t, root);
		if (memcmp(root, c->root, AUDIT_HASH) != 0) {
			bad(v->rep, false, v->last_good, "checkpoint line %zu (tree_size %llu, "
			    "%s) does not match the log: a record in [%llu, %llu) was changed "
			    "or the log was rewritten", v->ci + 1,
			    (unsigned long long)c->tree_size, c->time,
			    (unsigned long long)v->last_good, (unsigned long long)c->tree_size);
			return;
		}
		v->last_good = c->tree_size;
		v->ci++;
	}
}

static enum kura_err check_segment(struct verifier *v, const struct audit_snapshot *s,
				   size_t i, struct audit_tree *t, struct kura_error *err)
{
	struct kura_audit_verify_report *rep = v->rep;
	struct audit_seg_reader r;
	struct kura_error e = { 0 };
	uint64_t segno = s->segs[i];
	enum kura_err rc = audit_seg_reader_open(&r, v->dir, segno, s->sizes[i], &e);
	if (rc == KURA_EINTEGRITY || rc == KURA_EIO) {
		bad(rep, false, t->size, "%s", e.msg);
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", e.msg);
	if (i == 0) {
		rep->first_seq = r.hdr.first_seq;
		*t = r.hdr.tree;
		/* Checkpoints of archived sizes cannot be compared. */
		while (v->ci < v->cps.n && v->cps.v[v->ci].tree_size < t->size)
			v->ci++;
		v->last_good = t->size;
		if (t->size > 0 && (v->ci == v->cps.n || v->cps.v[v->ci].tree_size != t->size)) {
			bad(rep, false, t->size, "segment %llu starts at record %llu (earlier "
			    "segments archived) but no checkpoint of size %llu vouches for its "
			    "header", (unsigned long long)segno, (unsigned long long)t->size,
			    (unsigned long long)t->size);
			goto out;
		}
		at_size(v, t);
		if (!rep->ok) {
			snprintf(rep->problem, sizeof(rep->problem), "segment %llu header "
				 "(records before %llu archived) does not match checkpoint "
				 "line %zu", (unsigned long long)segno,
				 (unsigned long long)t->size, v->ci + 1);
			goto out;
		}
	} else if (r.hdr.first_seq != t->size || !audit_tree_equal(&r.hdr.tree, t)) {
		bad(rep, true, t->size, "segment %llu header (first record %llu) does not "
		    "continue the records before it (which end at %llu)",
		    (unsigned long long)segno, (unsigned long long)r.hdr.first_seq,
		    (unsigned long long)t->size);
		goto out;
	}
	for (;;) {
		struct audit_entry en;
		enum audit_entry_status st;
		uint64_t off, tail;
		rc = audit_seg_reader_next(&r, &en, &off, &st, &tail, err);
		if (rc != KURA_OK)
			goto out;
		if (st != AUDIT_ENTRY_OK) {
			if (tail == 0)
				break;
			bool last = i + 1 == s->nsegs, zero = false;
			if (st == AUDIT_ENTRY_BADLEN) {
				rc = audit_seg_reader_tail_zero(&r, off, &zero, err);
				if (rc != KURA_OK)
					goto out;
			}
			/* A crash's unfinished entry: never acknowledged, and
			 * removed by the next writer. */
			if (last && (st == AUDIT_ENTRY_SHORT || zero))
				break;
			bad(rep, true, t->size, "segment %llu offset %llu: %s entry where "
			    "record %llu should be", (unsigned long long)segno,
			    (unsigned long long)off,
			    st == AUDIT_ENTRY_SHORT ? "truncated" : "damaged length of an",
			    (unsigned long long)t->size);
			goto out;
		}
		uint8_t h[AUDIT_HASH];
		struct audit_fields f;
		audit_leaf_hash(en.rec, en.rec_len, h);
		if (memcmp(h, en.hash, AUDIT_HASH) != 0) {
			bad(rep, true, t->size, "record %llu (segment %llu offset %llu): stored "
			    "leaf hash does not match its bytes (record changed)",
			    (unsigned long long)t->size, (unsigned long long)segno,
			    (unsigned long long)off);
			goto out;
		}
		if (audit_record_scan((const char *)en.rec, en.rec_len, &f) != KURA_OK ||
		    !f.has_seq) {
			bad(rep, true, t->size, "record %llu (segment %llu offset %llu) is not "
			    "a valid record", (unsigned long long)t->size,
			    (unsigned long long)segno, (unsigned long long)off);
			goto out;
		}
		if (f.seq != t->size) {
			bad(rep, true, t->size, "position %llu (segment %llu offset %llu) holds "
			    "record %llu: records %s", (unsigned long long)t->size,
			    (unsigned long long)segno, (unsigned long long)off,
			    (unsigned long long)f.seq,
			    f.seq > t->size ? "deleted or reordered" : "reordered or repeated");
			goto out;
		}
		audit_tree_push(t, h);
		rep->records++;
		at_size(v, t);
		if (!rep->ok)
			goto out;
	}
out:
	audit_seg_reader_close(&r);
	return rc;
}

enum kura_err kura_audit_verify(const char *dir, const char *publish_dir,
				const uint8_t *trusted, size_t trusted_len,
				struct kura_audit_verify_report *report,
				struct kura_error *err)
{
	struct kura_audit_verify_report rep;
	struct audit_snapshot s;
	struct audit_cp_list pub = { 0 };
	struct verifier v = { .dir = dir, .rep = &rep };
	struct audit_tree t;
	char path[AUDIT_PATH_MAX];
	struct kura_error e = { 0 };
	memset(&rep, 0, sizeof(rep));
	rep.ok = true;
	audit_tree_init(&t);
	enum kura_err rc = audit_snapshot_take(dir, &s, err);
	if (rc != KURA_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/checkpoints.log", dir);
	rc = audit_cp_load(path, s.cp_size, &v.cps, &e);
	if (rc == KURA_EINTEGRITY) {
		bad(&rep, false, 0, "%s", e.msg);
		rc = KURA_OK;
		goto done;
	}
	if (rc != KURA_OK) {
		kura_fail(err, rc, "%s", e.msg);
		goto out;
	}
	if (!check_cps(&rep, &v.cps, "checkpoints.log", trusted, trusted_len,
		       "the pinned one"))
		goto done;
	rep.checkpoints = v.cps.n;
	if (publish_dir != NULL) {
		snprintf(path, sizeof(path), "%s/checkpoints.log", publish_dir);
		struct kura_error e2 = { 0 };
		rc = audit_cp_load(path, UINT64_MAX, &pub, &e2);
		if (rc == KURA_EINTEGRITY) {
			bad(&rep, false, 0, "published %s", e2.msg);
			rc = KURA_OK;
			goto done;
		}
		if (rc != KURA_OK) {
			kura_fail(err, rc, "%s", e2.msg);
			goto out;
		}
		if (!check_cps(&rep, &pub, "published checkpoints.log",
			       trusted ? trusted : (v.cps.n ? v.cps.v[0].pub : NULL),
			       trusted ? trusted_len : (v.cps.n ? v.cps.v[0].pub_len : 0),
			       trusted ? "the pinned one" : "the local checkpoints'"))
			goto done;
		check_published(&rep, &v.cps, &pub);
		if (!rep.ok)
			goto done;
	}
	for (size_t i = 0; i < s.nsegs && rep.ok; i++) {
		if (i > 0 && s.segs[i] != s.segs[i - 1] + 1) {
			bad(&rep, true, t.size, "segment %llu is missing (a gap after segment "
			    "%llu: records from %llu on)", (unsigned long long)s.segs[i - 1] + 1,
			    (unsigned long long)s.segs[i - 1], (unsigned long long)t.size);
			break;
		}
		rc = check_segment(&v, &s, i, &t, err);
		if (rc != KURA_OK)
			goto out;
	}
	if (rep.ok && v.ci < v.cps.n) {
		const struct audit_checkpoint *c = &v.cps.v[v.ci];
		bad(&rep, true, t.size, "log truncated: checkpoint line %zu (%s) covers "
		    "%llu records but the log holds %llu (records %llu to %llu missing)",
		    v.ci + 1, c->time, (unsigned long long)c->tree_size,
		    (unsigned long long)t.size, (unsigned long long)t.size,
		    (unsigned long long)c->tree_size - 1);
	}
done:
	*report = rep;
	rc = KURA_OK;
out:
	audit_cp_list_release(&v.cps);
	audit_cp_list_release(&pub);
	audit_snapshot_release(&s);
	return rc;
}

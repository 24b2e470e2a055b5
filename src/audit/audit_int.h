/*
 * audit_int.h — what the files of src/audit share (not a contract: the
 * contract is include/kura/audit.h, the formats are docs/AUDIT.md).
 *
 *   merkle.c      RFC 9162 §2.1 hashes, the tree frontier, proof ranges,
 *                 proof verification
 *   record.c      canonical JSON of a record; a small scanner for records
 *   segment.c     segment header, entries, sequential reader, listing
 *   checkpoint.c  checkpoint lines: text, signing digest, parse, signature
 *   log.c         the writer (group commit thread, flock, rollover)
 *   verify.c      kura_audit_verify
 *   proof.c       inclusion and consistency proofs from the log; export
 *   search.c      the SQLite index and kura_audit_search
 *
 * Everything here is pure or works on caller-owned state; thread-safety is
 * the caller's (log.c serialises its own state).
 */
#ifndef KURA_AUDIT_INT_H
#define KURA_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kura/audit.h"
#include "kura/buf.h"
#include "kura/err.h"

#define AUDIT_HASH KURA_AUDIT_HASH_LEN
#define AUDIT_RECORD_MAX (1u << 20)	/* bytes of one record */
#define AUDIT_ENTRY_OVERHEAD (4u + AUDIT_HASH)
#define AUDIT_FRONTIER_MAX 64		/* one hash per bit of a u64 size */
#define AUDIT_SEG_MAGIC "KURAAUD1"
#define AUDIT_SEG_VERSION 1u
#define AUDIT_SEG_HEADER_FIXED (8 + 4 + 4 + 8 + 8 + 8 + 4)
#define AUDIT_SEG_HEADER_MAX (AUDIT_SEG_HEADER_FIXED + AUDIT_FRONTIER_MAX * AUDIT_HASH + AUDIT_HASH)
#define AUDIT_PUB_MAX 1024		/* DER SubjectPublicKeyInfo */
#define AUDIT_SIG_MAX 1024
#define AUDIT_CP_LINE_MAX 8192
#define AUDIT_CP_DOMAIN "kura-audit-checkpoint-v1"
#define AUDIT_PATH_MAX 4200
#define AUDIT_DIR_MAX 4096	/* a directory name, leaving room for file names */

/* ---- merkle.c ---- */

/* The frontier (compact range [0, size)) of a tree: the roots of the
 * perfect subtrees of the binary decomposition of size, largest (leftmost)
 * first.  Enough to append and to compute the root. */
struct audit_tree {
	uint64_t size;
	unsigned n;
	uint8_t h[AUDIT_FRONTIER_MAX][AUDIT_HASH];
};

void audit_leaf_hash(const void *rec, size_t len, uint8_t out[AUDIT_HASH]);
void audit_node_hash(const uint8_t l[AUDIT_HASH], const uint8_t r[AUDIT_HASH],
		     uint8_t out[AUDIT_HASH]);
void audit_tree_init(struct audit_tree *t);
void audit_tree_push(struct audit_tree *t, const uint8_t leaf[AUDIT_HASH]);
/* MTH of the tree; SHA-256("") when empty. */
void audit_tree_root(const struct audit_tree *t, uint8_t out[AUDIT_HASH]);
bool audit_tree_equal(const struct audit_tree *a, const struct audit_tree *b);

/* [lo, hi) leaf ranges whose MTHs form a proof, in proof order. */
struct audit_range {
	uint64_t lo, hi;
};
#define AUDIT_PROOF_MAX 130

/* PATH(m, D[n]) of RFC 6962 §2.1.1 / RFC 9162 §2.1.3.1 (m < n). */
size_t audit_inclusion_ranges(uint64_t m, uint64_t n,
			      struct audit_range out[AUDIT_PROOF_MAX]);
/* PROOF(m, D[n]) of RFC 6962 §2.1.2 / RFC 9162 §2.1.4.1 (0 < m <= n). */
size_t audit_consistency_ranges(uint64_t m, uint64_t n,
				struct audit_range out[AUDIT_PROOF_MAX]);

/* Computes the MTHs of disjoint ranges from leaves fed in index order. */
struct audit_ranges_hasher {
	size_t n;
	struct audit_range r[AUDIT_PROOF_MAX];
	struct audit_tree *t;		/* one per range (heap) */
	size_t order[AUDIT_PROOF_MAX];	/* range indexes sorted by lo */
	size_t cur;			/* position in order */
};
enum kura_err audit_ranges_hasher_init(struct audit_ranges_hasher *h,
				       const struct audit_range *r, size_t n,
				       struct kura_error *err);
void audit_ranges_hasher_push(struct audit_ranges_hasher *h, uint64_t index,
			      const uint8_t leaf[AUDIT_HASH]);
/* out[i] = MTH of range i (every range must have been fed completely). */
void audit_ranges_hasher_result(const struct audit_ranges_hasher *h,
				uint8_t (*out)[AUDIT_HASH]);
void audit_ranges_hasher_release(struct audit_ranges_hasher *h);

/* RFC 9162 §2.1.3.2 and §2.1.4.2. */
bool audit_verify_inclusion(uint64_t index, uint64_t size,
			    const uint8_t leaf[AUDIT_HASH],
			    const uint8_t (*path)[AUDIT_HASH], size_t len,
			    const uint8_t root[AUDIT_HASH]);
bool audit_verify_consistency(uint64_t size1, uint64_t size2,
			      const uint8_t (*path)[AUDIT_HASH], size_t len,
			      const uint8_t root1[AUDIT_HASH],
			      const uint8_t root2[AUDIT_HASH]);

/* ---- record.c ---- */

/* A record encoded up to its "seq" and "time" members, which the writer
 * adds once it knows them: the members sorting before "seq", between
 * "seq" and "time", and after "time", each as comma-separated canonical
 * member text without braces (possibly empty).  Heap-owned. */
struct audit_prepared {
	char *pre, *mid, *post;
	size_t pre_len, mid_len, post_len;
};

enum kura_err audit_record_prepare(const struct kura_audit_record *r,
				   struct audit_prepared *out,
				   struct kura_error *err);
void audit_prepared_release(struct audit_prepared *p);
/* The record bytes: appended to out. */
enum kura_err audit_record_finish(const struct audit_prepared *p, uint64_t seq,
				  int64_t time_ms, struct kura_buf *out);

/* Append the canonical JSON string for s[0..n) (with quotes); invalid
 * UTF-8 bytes are replaced by U+FFFD. */
enum kura_err audit_json_string(struct kura_buf *out, const char *s, size_t n);

/* The members of a record that kura reads back (views into the record;
 * strings still escaped, without quotes). */
struct audit_fields {
	bool has_seq;
	uint64_t seq;
	int64_t time_ms;	/* -1 when absent or malformed */
	uint64_t tenant_id;
	struct kura_str time, type, op, request_id, tenant, bucket, key;
};

/* Scan a record: a JSON object with unique member names; fills f.
 * KURA_EINVAL when the bytes are not such an object. */
enum kura_err audit_record_scan(const char *p, size_t n, struct audit_fields *f);
/* Unescape a JSON string body (between the quotes) into UTF-8. */
enum kura_err audit_json_unescape(struct kura_str s, struct kura_buf *out);

/* ---- segment.c ---- */

struct audit_seg_header {
	uint64_t segno;
	uint64_t first_seq;
	int64_t created_ms;
	struct audit_tree tree;	/* frontier at first_seq (tree.size == first_seq) */
	size_t len;		/* header bytes */
};

enum kura_err audit_seg_header_encode(const struct audit_seg_header *h,
				      struct kura_buf *out);
/* Parse a header from the start of p[0..n).  KURA_EINTEGRITY (with a
 * message) when it is not a valid header; KURA_EIO when n is too short. */
enum kura_err audit_seg_header_parse(const uint8_t *p, size_t n,
				     struct audit_seg_header *h,
				     struct kura_error *err);

enum audit_entry_status {
	AUDIT_ENTRY_OK,
	AUDIT_ENTRY_SHORT,	/* p[0..n) ends inside the entry */
	AUDIT_ENTRY_BADLEN,	/* length 0 or above AUDIT_RECORD_MAX */
};
struct audit_entry {
	const uint8_t *rec;
	uint32_t rec_len;
	const uint8_t *hash;	/* stored leaf hash */
	size_t len;		/* whole entry */
};
enum audit_entry_status audit_entry_parse(const uint8_t *p, size_t n,
					  struct audit_entry *e);
/* Append an entry (length, record, leaf hash) to out. */
enum kura_err audit_entry_encode(const void *rec, size_t len,
				 const uint8_t hash[AUDIT_HASH],
				 struct kura_buf *out);

void audit_seg_path(const char *dir, uint64_t segno, char *out, size_t cap);
/* Segment numbers present in dir, ascending (malloc'd; *n may be 0). */
enum kura_err audit_seg_list(const char *dir, uint64_t **out, size_t *n,
			     struct kura_error *err);

/* Sequential reader of one segment's entries up to a byte limit. */
struct audit_seg_reader {
	int fd;
	uint64_t segno;
	uint64_t end;		/* read no further than this offset */
	uint64_t buf_off;	/* file offset of buf[0] */
	uint8_t *buf;
	size_t buf_len, pos, cap;
	struct audit_seg_header hdr;
};
/* Open segment segno of dir and parse its header.  limit: bytes of the
 * file to consider (UINT64_MAX: its size now). */
enum kura_err audit_seg_reader_open(struct audit_seg_reader *r,
				    const char *dir, uint64_t segno,
				    uint64_t limit, struct kura_error *err);
/* The next entry: KURA_OK with *status AUDIT_ENTRY_OK and *off its offset;
 * *status AUDIT_ENTRY_SHORT at the end (*off: where the tail starts, and
 * *tail bytes remain), BADLEN for a damaged length. */
enum kura_err audit_seg_reader_next(struct audit_seg_reader *r,
				    struct audit_entry *e, uint64_t *off,
				    enum audit_entry_status *status,
				    uint64_t *tail, struct kura_error *err);
void audit_seg_reader_close(struct audit_seg_reader *r);
/* Are the bytes from off to the reader's end all zero? */
enum kura_err audit_seg_reader_tail_zero(struct audit_seg_reader *r,
					 uint64_t off, bool *zero,
					 struct kura_error *err);
/* Are the n bytes at p all zero (a crash's zero-filled extension)? */
bool audit_all_zero(const uint8_t *p, size_t n);

/* ---- checkpoint.c ---- */

struct audit_checkpoint {
	uint64_t tree_size;
	uint8_t root[AUDIT_HASH];
	char time[32];
	char alg[32];
	char signer[128];
	uint8_t pub[AUDIT_PUB_MAX];
	size_t pub_len;
	uint8_t sig[AUDIT_SIG_MAX];
	size_t sig_len;
};

/* SHA-256 of "kura-audit-checkpoint-v1\n<size>\n<root hex>\n<time>\n". */
void audit_cp_digest(uint64_t tree_size, const uint8_t root[AUDIT_HASH],
		     const char *time, uint8_t digest[32]);
/* Sign with the writer's signer and fill cp. */
enum kura_err audit_cp_sign(kura_audit_sign_fn sign, void *ctx,
			    uint64_t tree_size, const uint8_t root[AUDIT_HASH],
			    int64_t time_ms, struct audit_checkpoint *cp,
			    struct kura_error *err);
/* The canonical line (with its '\n'). */
enum kura_err audit_cp_format(const struct audit_checkpoint *cp,
			      struct kura_buf *out, struct kura_error *err);
enum kura_err audit_cp_parse(const char *line, size_t n,
			     struct audit_checkpoint *cp, struct kura_error *err);
/* KURA_EINTEGRITY when the signature does not verify. */
enum kura_err audit_cp_check_signature(const struct audit_checkpoint *cp,
				       struct kura_error *err);

struct audit_cp_list {
	struct audit_checkpoint *v;
	size_t n;
	bool torn_tail;		/* last line had no newline (ignored) */
};
/* Parse checkpoints.log up to limit bytes (UINT64_MAX: all); a missing
 * file is an empty list.  A malformed line: KURA_EINTEGRITY naming it. */
enum kura_err audit_cp_load(const char *path, uint64_t limit,
			    struct audit_cp_list *out, struct kura_error *err);
void audit_cp_list_release(struct audit_cp_list *l);

/* ---- shared by the readers ---- */

/* A consistent view of the log: under a shared flock on the lock file
 * (when it exists), the segments and their sizes and the checkpoints
 * file's size, so a running writer's half-written batch is never seen. */
struct audit_snapshot {
	uint64_t *segs;
	uint64_t *sizes;
	size_t nsegs;
	uint64_t cp_size;
};
enum kura_err audit_snapshot_take(const char *dir, struct audit_snapshot *s,
				  struct kura_error *err);
void audit_snapshot_release(struct audit_snapshot *s);

/* ---- proof.c: reading in order ---- */

/* Called for each record in order; set *stop to end the walk early. */
typedef enum kura_err (*audit_walk_fn)(void *ctx, uint64_t seq,
				       const struct audit_entry *e,
				       uint64_t segno, uint64_t off, bool *stop,
				       struct kura_error *err);
/* Walk the snapshot's records: from the first present segment, or from
 * entry offset from_off of segment from_seg holding record from_seq (an
 * offset below the header means that segment's start).  Gaps, broken
 * continuity and stored leaf hashes that do not match are
 * KURA_EINTEGRITY; an unfinished tail of the last segment ends the walk. */
enum kura_err audit_walk(const char *dir, const struct audit_snapshot *s,
			 uint64_t from_seg, uint64_t from_off, uint64_t from_seq,
			 audit_walk_fn fn, void *ctx, struct kura_error *err);

/* Test and benchmark knobs: skip fdatasync/fsync in the writer; replace
 * the clock that stamps records and checkpoints (NULL: kura_now_ms). */
void audit_set_nosync(struct kura_audit *a, bool nosync);
void audit_set_clock(struct kura_audit *a, int64_t (*now)(void *ctx), void *ctx);

#endif

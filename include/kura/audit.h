/*
 * audit.h — the tamper-evident audit log (requirement B-6): every S3
 * request, every admin and key operation, every key-provider use, server
 * start and stop, appended to a log that nobody can rewrite without
 * detection.  docs/AUDIT.md specifies the on-disk formats so that an
 * auditor can verify a log with their own tool.
 *
 * Model (RFC 6962 / RFC 9162): every record is a leaf of one Merkle tree
 * over the whole log, leaf hash SHA-256(0x00 || record), node hash
 * SHA-256(0x01 || left || right).  At intervals, at every segment
 * rollover and at shutdown the writer signs a *checkpoint* (tree size, root
 * hash, time) with kura's signing key (held by the key provider where it
 * can sign, else sealed under the system key: apart from the log either
 * way).  Checkpoints can be published to a second directory too, so that
 * rewriting the log *and* its checkpoints in one place is still caught.
 *
 * Layout under DATA_DIR/audit/:
 *   seg-NNNNNNNN.log   segments: a header (with the tree's frontier at the
 *                      segment's first record) and length-prefixed records
 *                      each followed by its leaf hash
 *   checkpoints.log    one signed checkpoint per line (JSON)
 *   index.db           search index (SQLite; rebuilt from the log, never
 *                      trusted)
 *   lock               writers take an exclusive flock on it
 *
 * Durability: kura_audit_append returns only once the record is on disk
 * (group commit: concurrent appends share one fdatasync), so a request is
 * acknowledged only after its record is durable.
 *
 * Several processes may append (the server and `kura key ...` commands):
 * each batch is written under the lock, and a writer that finds records
 * appended by another process folds them into its tree state first.
 *
 * Thread-safe.
 */
#ifndef KURA_AUDIT_H
#define KURA_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kura/err.h"

#define KURA_AUDIT_HASH_LEN 32

/* What a caller logs.  NULL strings and zero numbers are left out of the
 * record; the log adds "seq" (0-based leaf index) and "time". */
struct kura_audit_record {
	const char *
		type; /* "s3", "admin", "key", "provider", "server", "config" */
	const char *op; /* "PutObject", "key.rotate", "server.start", ... */
	const char *request_id;
	uint64_t tenant_id;
	const char *tenant;	/* name, when known */
	const char *access_key; /* access key id (never a secret) */
	const char *source;	/* client address */
	const char *bucket;
	const char *key; /* object key; key_len bytes (UTF-8) */
	size_t key_len;
	const char *version; /* object version uid, hex */
	const char *row;     /* keyed digest of the object row written, hex
				 * (kura_seal_object_digest) */
	uint64_t bytes_in;
	uint64_t bytes_out;
	unsigned status;   /* HTTP status, or 0 */
	const char *error; /* S3 error code or kura error name */
	uint64_t latency_us;
	const char *actor; /* who ran an admin/key command (user@host) */
	/* Extra fields as a JSON object text ({"kek_id": "...", "before":
	 * ..., "after": ...}); merged into the record.  Never secrets. */
	const char *detail_json;
};

/* Signs a checkpoint digest; kura passes kura_kms_sign through this so the
 * audit layer does not depend on key management. */
typedef enum kura_err (*kura_audit_sign_fn)(void *ctx, const uint8_t digest[32],
					    uint8_t *sig, size_t *sig_len,
					    char alg[32], uint8_t *pub,
					    size_t *pub_len, char signer[128],
					    struct kura_error *err);

struct kura_audit_options {
	const char *dir;	    /* DATA_DIR/audit */
	const char *publish_dir;    /* optional second home for checkpoints */
	uint64_t segment_max_bytes; /* roll over beyond this (0: 64 MiB) */
	uint64_t segment_max_age_s; /* roll over older segments (0: 1 day) */
	kura_audit_sign_fn sign;    /* NULL: checkpoints cannot be written */
	void *sign_ctx;
};

struct kura_audit;

/* Open (creating on first use) the log for appending. */
enum kura_err kura_audit_open(const struct kura_audit_options *opt,
			      struct kura_audit **out, struct kura_error *err);

/* Append one record and return once it is durable; *seq (may be NULL)
 * receives its leaf index. */
enum kura_err kura_audit_append(struct kura_audit *a,
				const struct kura_audit_record *r,
				uint64_t *seq, struct kura_error *err);

/* Most records in one kura_audit_append_batch (DeleteObjects: 1000 keys
 * and the request itself, with room to spare). */
#define KURA_AUDIT_BATCH_MAX 4096

/*
 * Append r[0..n) as consecutive records, all or none, with one sync, and
 * return once they are durable; *first_seq (may be NULL) receives the
 * first one's leaf index.  KURA_ETOOBIG when together they exceed what
 * one write takes (16 MiB), KURA_EINVAL for n 0 or above
 * KURA_AUDIT_BATCH_MAX.
 */
enum kura_err kura_audit_append_batch(struct kura_audit *a,
				      const struct kura_audit_record *r,
				      size_t n, uint64_t *first_seq,
				      struct kura_error *err);

/* Sign and store a checkpoint of the current tree (no-op when nothing was
 * appended since the last one). */
enum kura_err kura_audit_checkpoint(struct kura_audit *a,
				    struct kura_error *err);

/* Close (no checkpoint is implied: call kura_audit_checkpoint first). */
void kura_audit_close(struct kura_audit *a);

/* ---- reading and verifying (no writer needed; safe while one runs) ---- */

struct kura_audit_verify_report {
	bool ok;
	uint64_t records;     /* records read and checked */
	uint64_t checkpoints; /* checkpoints checked */
	uint64_t first_seq;   /* first record present (archived before) */
	uint64_t bad_seq;     /* first bad record, when !ok and known */
	bool bad_seq_known;
	char problem[512]; /* what is wrong, naming the position */
};

/*
 * Verify the whole log in dir: each record's stored leaf hash, the
 * sequence (no gap, no reordering), segment continuity (a missing segment
 * in the middle is a gap; segments archived away at the start are allowed
 * when the first present segment's frontier matches a signed checkpoint),
 * every checkpoint's root and signature, that no checkpoint claims more
 * records than the log holds (truncation), and — when publish_dir is given
 * — that the published checkpoints agree.  trusted: the signer's DER public
 * key to pin (NULL: the key recorded in the checkpoints, which must all
 * agree).  Returns KURA_OK with report->ok false when the log is bad.
 */
enum kura_err kura_audit_verify(const char *dir, const char *publish_dir,
				const uint8_t *trusted, size_t trusted_len,
				struct kura_audit_verify_report *report,
				struct kura_error *err);

/* Inclusion proof (RFC 9162 §2.1.3) of record seq in the tree of size
 * tree_size (0: the latest checkpoint's): written as JSON to out, with the
 * leaf hash, the audit path and the root. */
enum kura_err kura_audit_inclusion_proof(const char *dir, uint64_t seq,
					 uint64_t tree_size, FILE *out,
					 struct kura_error *err);

/* Consistency proof (RFC 9162 §2.1.4) between the trees of size1 and
 * size2, as JSON with both roots. */
enum kura_err kura_audit_consistency_proof(const char *dir, uint64_t size1,
					   uint64_t size2, FILE *out,
					   struct kura_error *err);

/* Called with each record's canonical JSON text, in log order; set *stop
 * to end early.  A non-OK return stops the walk and is returned. */
typedef enum kura_err (*kura_audit_record_fn)(void *ctx, uint64_t seq,
					      const char *json, size_t len,
					      bool *stop,
					      struct kura_error *err);

/* Walk every record present in dir in order (leaf hashes and continuity
 * checked as they are read; signatures are kura_audit_verify's business).
 * *first_seq receives the first record present (0 unless early segments
 * were archived); may be NULL. */
enum kura_err kura_audit_each(const char *dir, kura_audit_record_fn fn,
			      void *ctx, uint64_t *first_seq,
			      struct kura_error *err);

/* Every record, then every checkpoint, as JSON lines. */
enum kura_err kura_audit_export(const char *dir, FILE *out,
				struct kura_error *err);

struct kura_audit_query {
	int64_t from_ms, to_ms; /* 0: open */
	uint64_t tenant_id;	/* 0: any */
	const char *bucket;
	const char *key;
	size_t key_len;
	const char *op;
	const char *request_id;
	uint64_t limit; /* 0: 1000 */
};

/* Records matching q, as JSON lines to out, newest last.  The index finds
 * candidates; each is re-read from the log and checked (leaf hash, fields)
 * before it is printed, so a tampered index cannot invent or alter
 * results.  The index catches up with the log first. */
enum kura_err kura_audit_search(const char *dir,
				const struct kura_audit_query *q, FILE *out,
				uint64_t *matches, struct kura_error *err);

#endif

/*
 * service_int.h — what the files of src/service share (not a public
 * contract).
 */
#ifndef KURA_SERVICE_INT_H
#define KURA_SERVICE_INT_H

#include "kura/audit.h"
#include "kura/crypt.h"
#include "kura/keys.h"
#include "kura/service.h"

/* Make an opened key provider record every KEK operation (create, import,
 * wrap, unwrap, destroy) in audit, in place: holders of keys see the
 * audited provider (audit_keys.c). */
enum kura_err service_audit_keys(struct kura_keys *keys,
				 struct kura_audit *audit,
				 struct kura_error *err);

/*
 * One copy of a blob, as a scrub judges it (scrub_read.c).
 */
enum scrub_verdict {
	SCRUB_OK,	   /* read whole; authenticated (or alike, below) */
	SCRUB_MISSING,	   /* the backend does not have it */
	SCRUB_CORRUPT,	   /* there, but wrong: size, header, a segment */
	SCRUB_UNREACHABLE, /* could not be read: judged next time */
};

struct scrub_check {
	enum scrub_verdict verdict;
	char reason[160];   /* what was wrong, for the history and the log */
	uint8_t digest[32]; /* SHA-256 of the copy's bytes (SCRUB_OK) */
	/* Corrupt only because its bytes differ from the others' (the
	 * copies could not be authenticated): never overwritten, since the
	 * majority may be what was altered. */
	bool by_majority;
};

/* What checking the copies of one blob needs: its binding, its DEK and
 * one segment buffer. */
struct scrub_reader {
	struct kura_service *svc;
	const struct kura_scrub_blob *blob;
	struct kura_binding binding;
	/* NULL: the copies can only be compared (no_dek says why: SSE-C,
	 * the key disabled or destroyed, a damaged wrapped DEK). */
	struct kura_secret *dek;
	char no_dek[64];
	bool dek_damaged; /* the metadata's wrapped DEK failed to open */
	uint8_t *buf;
	size_t cap;
};

/* Unwrap blob's DEK (when it can be) and allocate the buffer.  Errors
 * only for what stops the scrub: out of memory, the key provider. */
enum kura_err scrub_reader_init(struct scrub_reader *r,
				struct kura_service *svc,
				const struct kura_scrub_blob *blob,
				struct kura_error *err);
void scrub_reader_release(struct scrub_reader *r);

/* Read the copy on store whole and judge it into *c.  The error return is
 * for this process's own failures (memory, OpenSSL), never the copy's. */
enum kura_err scrub_check_copy(struct scrub_reader *r, struct kura_store *store,
			       struct scrub_check *c, struct kura_error *err);

#endif

/*
 * scrub_read.c — what a scrub does to one copy of a blob: read it whole
 * from one backend's own store and judge it (scrub_check_copy).  Repairs
 * copy a good one with kura_service_copy_replica (replicate.c).
 *
 * A copy is judged as a GET would judge it, and more: its size must be
 * kura_blob_size of the part, the header must name the blob and its
 * segment size, and every segment — not only those a reader touches —
 * must authenticate under the blob's DEK.  An SSE-C blob's DEK is wrapped
 * under a key only the client has, so its copies are judged by structure
 * (size, header) and by the SHA-256 of their bytes, which the caller
 * compares across copies.  So are the copies of a blob whose key is
 * disabled or destroyed.
 *
 * Memory is bounded by one segment (plaintext, wiped after each copy),
 * never by the blob's size.  Single-threaded: one reader
 * per scrub.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kura/crypt.h"
#include "service_int.h"
#include "kura/banned.h"

enum kura_err scrub_reader_init(struct scrub_reader *r,
				struct kura_service *svc,
				const struct kura_scrub_blob *blob,
				struct kura_error *err)
{
	const struct kura_part *p = &blob->part;
	struct kura_secret *bk = NULL;
	memset(r, 0, sizeof(*r));
	r->svc = svc;
	r->blob = blob;
	r->binding.tenant_id = blob->tenant_id;
	r->binding.bucket_id = blob->bucket_id;
	memcpy(r->binding.version_uid, blob->version_uid, KURA_UID_LEN);
	r->binding.part_no = p->part_no;
	size_t seg_max = p->size < p->seg_size ? (size_t)p->size : p->seg_size;
	r->cap = seg_max + KURA_SEG_TAG_LEN;
	r->buf = malloc(r->cap);
	if (r->buf == NULL)
		return kura_fail(err, KURA_ENOMEM, "scrub: segment buffer");
	if (blob->ssec || p->bk_id == 0) {
		snprintf(r->no_dek, sizeof(r->no_dek), "SSE-C");
		return KURA_OK;
	}
	struct kura_error e = { 0 };
	enum kura_err rc = kura_kms_read_key(svc->kms, p->bk_id, &bk, &e);
	if (rc == KURA_EKEY_DISABLED || rc == KURA_EKEY_DESTROYED) {
		/* The data is unreadable to everyone for now (or for good),
		 * but its copies must still be there and alike. */
		snprintf(r->no_dek, sizeof(r->no_dek), "%s", kura_strerror(rc));
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return kura_fail(err, rc, "scrub: bucket key: %s", e.msg);
	rc = kura_dek_unwrap(bk, &r->binding, p->dek_wrapped, &r->dek, &e);
	kura_secret_free(bk);
	if (rc == KURA_EINTEGRITY) {
		/* The row's wrapped DEK, not a copy, is damaged: the caller
		 * records that once; the copies are compared all the same. */
		snprintf(r->no_dek, sizeof(r->no_dek),
			 "data key does not unwrap");
		r->dek_damaged = true;
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return kura_fail(err, rc, "scrub: data key: %s", e.msg);
	return KURA_OK;
}

void scrub_reader_release(struct scrub_reader *r)
{
	if (r->buf != NULL)
		kura_wipe(r->buf, r->cap);
	free(r->buf);
	kura_secret_free(r->dek);
	memset(r, 0, sizeof(*r));
}

static void verdict(struct scrub_check *c, enum scrub_verdict v,
		    const char *what, const char *msg)
{
	c->verdict = v;
	snprintf(c->reason, sizeof(c->reason), "%.40s%s%.110s", what,
		 msg[0] ? ": " : "", msg);
}

/* Every segment from the header on: digest always, authentication when
 * there is a DEK.  Returns false with c set when the copy is not good. */
static bool read_segments(struct scrub_reader *r, struct kura_store *store,
			  struct kura_store_reader *rd, EVP_MD_CTX *md,
			  struct kura_opener *op, struct scrub_check *c)
{
	const struct kura_part *p = &r->blob->part;
	uint64_t nseg = kura_seg_count(p->size, p->seg_size);
	char what[64];
	for (uint64_t i = 0; i < nseg; i++) {
		struct kura_error e = { 0 };
		size_t clen = kura_seg_plain_len(i, p->size, p->seg_size) +
			      KURA_SEG_TAG_LEN;
		if (kura_store_reader_pread(store, rd, r->buf, clen,
					    kura_seg_offset(i, p->seg_size),
					    &e) != KURA_OK) {
			verdict(c, SCRUB_UNREACHABLE, "read", e.msg);
			return false;
		}
		if (EVP_DigestUpdate(md, r->buf, clen) != 1) {
			verdict(c, SCRUB_UNREACHABLE, "digest", "");
			return false;
		}
		if (op == NULL)
			continue;
		enum kura_err rc =
			kura_opener_segment(op, i, r->buf, clen, r->buf, &e);
		if (rc == KURA_EINTEGRITY) {
			snprintf(what, sizeof(what),
				 "segment %llu does not authenticate",
				 (unsigned long long)i);
			verdict(c, SCRUB_CORRUPT, what, "");
			return false;
		}
		if (rc != KURA_OK) {
			verdict(c, SCRUB_UNREACHABLE, "decrypt", e.msg);
			return false;
		}
	}
	return true;
}

/* Size and header of an opened copy; false with c set when wrong. */
static bool check_frame(struct scrub_reader *r, struct kura_store *store,
			struct kura_store_reader *rd, uint64_t size,
			EVP_MD_CTX *md, struct scrub_check *c)
{
	const struct kura_part *p = &r->blob->part;
	uint8_t hdr[KURA_BLOB_HEADER_LEN];
	uint64_t want = kura_blob_size(p->size, p->seg_size);
	struct kura_error e = { 0 };
	char msg[96];
	if (size != want) {
		snprintf(msg, sizeof(msg), "%llu bytes, expected %llu",
			 (unsigned long long)size, (unsigned long long)want);
		verdict(c, SCRUB_CORRUPT, "size", msg);
		return false;
	}
	if (kura_store_reader_pread(store, rd, hdr, sizeof(hdr), 0, &e) !=
	    KURA_OK) {
		verdict(c, SCRUB_UNREACHABLE, "read", e.msg);
		return false;
	}
	if (kura_blob_header_check(hdr, p->seg_size, p->blob_id, &e) !=
	    KURA_OK) {
		verdict(c, SCRUB_CORRUPT, "header", e.msg);
		return false;
	}
	if (EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1) {
		verdict(c, SCRUB_UNREACHABLE, "digest", "");
		return false;
	}
	return true;
}

enum kura_err scrub_check_copy(struct scrub_reader *r, struct kura_store *store,
			       struct scrub_check *c, struct kura_error *err)
{
	const struct kura_part *p = &r->blob->part;
	struct kura_store_reader *rd = NULL;
	struct kura_opener *op = NULL;
	struct kura_error e = { 0 };
	uint64_t size = 0;
	memset(c, 0, sizeof(*c));
	enum kura_err rc =
		kura_store_reader_open(store, p->blob_id, &rd, &size, &e);
	if (rc == KURA_ENOENT) {
		verdict(c, SCRUB_MISSING, "missing", "");
		return KURA_OK;
	}
	if (rc != KURA_OK) {
		verdict(c, SCRUB_UNREACHABLE, "open", e.msg);
		return KURA_OK;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = kura_fail_openssl(err, KURA_ENOMEM, "scrub: SHA-256");
		goto out;
	}
	if (r->dek != NULL) {
		rc = kura_opener_new(r->dek, &r->binding, p->seg_size, p->size,
				     &op, err);
		if (rc != KURA_OK)
			goto out;
	}
	if (check_frame(r, store, rd, size, md, c) &&
	    read_segments(r, store, rd, md, op, c)) {
		unsigned dlen = 0;
		if (EVP_DigestFinal_ex(md, c->digest, &dlen) != 1 ||
		    dlen != sizeof(c->digest)) {
			rc = kura_fail_openssl(err, KURA_EIO, "scrub: SHA-256");
			goto out;
		}
		c->verdict = SCRUB_OK;
	}
out:
	kura_wipe(r->buf, r->cap); /* plaintext of the last segment */
	kura_opener_free(op);
	EVP_MD_CTX_free(md);
	if (rd != NULL)
		kura_store_reader_close(store, rd);
	return rc;
}

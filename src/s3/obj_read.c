/*
 * obj_read.c — reading an object version's plaintext: per part, unwrap the
 * DEK, open the blob, check its header and exact size, then authenticate
 * and decrypt only the segments a read touches.  Shared by GetObject and
 * the copy operations.
 *
 * The reader pins the version's blobs for its lifetime, so garbage
 * collection cannot remove them while it reads (see service.h).  A blob
 * found missing is reported as KURA_ENOENT: the version may have been
 * replaced and collected before the pin.
 *
 * Plaintext leaves a segment buffer only after the segment's tag verified.
 * Reads are expected to move forward; a backward read restarts from the
 * first part (correct, just slower).
 */
#include <stdlib.h>
#include <string.h>

#include "kura/kms.h"
#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

struct s3_objread {
	struct kura_service *svc;
	const struct kura_object *obj;
	struct kura_bucket bucket;
	struct kura_secret *customer_key; /* SSE-C objects only */
	/* The bucket key the request just read to open the object's seal,
	 * for its first part: one lookup less on a small GET.  Used once;
	 * every later part reads its key again, so a key disabled while a
	 * long object streams stops the stream at the next part. */
	uint64_t bk_id;
	struct kura_secret *bk;
	uint8_t (*pinned)[KURA_BLOB_ID_LEN]; /* blob ids pinned against gc */
	/* The part currently open. */
	uint32_t part_idx;
	uint64_t part_start; /* object offset of the part's first byte */
	bool part_open;
	/* The bucket's placement store: reads its policy's backends in
	 * order and moves to the next copy on a failure. */
	struct kura_store *store;
	struct kura_store_reader *reader;
	struct kura_opener *opener;
	/* The segment currently decrypted, in place: ciphertext is read into
	 * buf and replaced by its plaintext once the tag verified. */
	uint8_t *buf; /* seg_size + tag */
	size_t buf_cap;
	uint64_t seg_start; /* object offset of buf[0] */
	size_t seg_len;
	bool seg_valid;
};

static void part_close(struct s3_objread * or)
{
	if (or->reader)
		kura_store_reader_close(or->store, or->reader);
	or->reader = NULL;
	kura_opener_free(or->opener);
	or->opener = NULL;
	or->part_open = false;
	or->seg_valid = false;
}

enum kura_err s3_objread_new(struct kura_service *svc,
			     const struct kura_bucket *bucket,
			     const struct kura_object *obj,
			     const struct kura_secret *customer_key,
			     const struct kura_seal_ctx *seal,
			     struct s3_objread **out, struct kura_error *err)
{
	struct s3_objread * or = calloc(1, sizeof(* or));
	if (or == NULL)
		return kura_fail(err, KURA_ENOMEM, "object reader");
	or->svc = svc;
	or->obj = obj;
	or->bucket = *bucket;
	if (seal != NULL && seal->bucket_key != NULL && obj->part_count > 0 &&
	    obj->parts[0].bk_id == seal->bk_id) {
		or->bk = kura_secret_dup(seal->bucket_key);
		or->bk_id = or->bk ? seal->bk_id : 0;
	}
	if (obj->sse == KURA_SSE_C) {
		or->customer_key =
			customer_key ? kura_secret_dup(customer_key) : NULL;
		if (or->customer_key == NULL) {
			free(or);
			return kura_fail(
				err, customer_key ? KURA_ENOMEM : KURA_EINVAL,
				"an SSE-C object needs its customer key");
		}
	}
	if (obj->part_count > 0) {
		or->pinned = malloc(obj->part_count * sizeof(* or->pinned));
		if (or->pinned == NULL) {
			free(or);
			return kura_fail(err, KURA_ENOMEM, "object reader");
		}
		for (uint32_t i = 0; i < obj->part_count; i++)
			memcpy(or->pinned[i], obj->parts[i].blob_id,
			       KURA_BLOB_ID_LEN);
		enum kura_err rc = kura_service_pin(
			svc, (const uint8_t(*)[KURA_BLOB_ID_LEN]) or->pinned,
			obj->part_count, err);
		if (rc != KURA_OK) {
			free(or->pinned);
			kura_secret_free(or->customer_key);
			free(or);
			return rc;
		}
	}
	*out = or ;
	return KURA_OK;
}

void s3_objread_free(struct s3_objread * or)
{
	if (or == NULL)
		return;
	part_close(or);
	if (or->pinned) {
		kura_service_unpin(
			or->svc,
			(const uint8_t(*)[KURA_BLOB_ID_LEN]) or->pinned,
			or->obj->part_count);
		free(or->pinned);
	}
	if (or->buf)
		kura_wipe(or->buf, or->buf_cap);
	free(or->buf);
	kura_secret_free(or->customer_key);
	kura_secret_free(or->bk);
	free(or);
}

static enum kura_err grow_buffers(struct s3_objread * or, size_t need,
				  struct kura_error *err)
{
	if (need <= or->buf_cap)
		return KURA_OK;
	if (or->buf)
		kura_wipe(or->buf, or->buf_cap);
	free(or->buf);
	or->buf = malloc(need);
	or->buf_cap = or->buf ? need : 0;
	if (or->buf == NULL)
		return kura_fail(err, KURA_ENOMEM, "segment buffer");
	return KURA_OK;
}

/* Open part idx: unwrap its DEK, open the blob, check header and size. */
/* After an integrity failure: move the reader to the blob's next copy
 * (the placement store records the bad one as failed; the scrub records
 * it as an integrity failure and repairs it).  False when there is none:
 * then the request's own integrity failure is recorded and counted. */
static bool next_copy(struct s3_objread * or, uint64_t *size)
{
	struct kura_error e = { 0 };
	if (kura_store_reader_next(or->store, or->reader, size, &e) != KURA_OK)
		return false;
	kura_warn(NULL, "a copy failed authentication; reading another");
	return true;
}

/* The next copy whose size is the part's blob's; false when none. */
static bool next_good_size(struct s3_objread * or, const struct kura_part *p)
{
	uint64_t size = 0;
	while (next_copy(or, &size))
		if (size == kura_blob_size(p->size, p->seg_size))
			return true;
	return false;
}

static enum kura_err part_open(struct s3_objread * or, uint32_t idx,
			       struct kura_error *err)
{
	const struct kura_part *p = & or->obj->parts[idx];
	if (or->store == NULL &&
		      kura_service_bucket_store(or->svc, & or->bucket,
						& or->store, NULL) != KURA_OK)
		or->store = or->svc->store; /* every backend, in turn */
	struct kura_store *store = or->store;
	struct kura_secret *bk = NULL, *wk = NULL, *dek = NULL;
	struct kura_binding b = {
		or->bucket.tenant_id, or->bucket.id, { 0 }, p->part_no
	};
	uint8_t hdr[KURA_BLOB_HEADER_LEN];
	uint64_t size;
	memcpy(b.version_uid, or->obj->version_uid, KURA_UID_LEN);
	part_close(or);

	/* The largest segment of this part: a small object's whole body, not
	 * a full segment (the buffer is wiped at the end, so its size is paid
	 * on every GET). */
	size_t seg_max = p->size < p->seg_size ? (size_t)p->size : p->seg_size;
	enum kura_err rc = grow_buffers(or, seg_max + KURA_SEG_TAG_LEN, err);
	if (rc == KURA_OK && or->bk != NULL && or->bk_id == p->bk_id) {
		bk = or->bk;
		or->bk = NULL;
	} else if (rc == KURA_OK) {
		rc = kura_kms_read_key(or->svc->kms, p->bk_id, &bk, err);
	}
	kura_secret_free(or->bk);
	or->bk = NULL;
	if (rc == KURA_OK && or->customer_key != NULL)
		rc = kura_ssec_wrap_key(bk, or->customer_key, &wk, err);
	if (rc == KURA_OK)
		rc = kura_dek_unwrap(wk ? wk : bk, &b, p->dek_wrapped, &dek,
				     err);
	kura_secret_free(bk);
	kura_secret_free(wk);
	if (rc == KURA_OK)
		rc = kura_opener_new(dek, &b, p->seg_size, p->size,
				     & or->opener, err);
	kura_secret_free(dek);
	if (rc != KURA_OK)
		return rc;
	rc = kura_store_reader_open(store, p->blob_id, & or->reader, &size,
				    err);
	if (rc == KURA_ENOENT) /* collected before we pinned it, or lost */
		return kura_fail(err, KURA_ENOENT, "blob of part %u is missing",
				 p->part_no);
	if (rc != KURA_OK)
		return rc;
	/* A copy of the wrong size or with a bad header: the next copy. */
	for (;;) {
		if (size != kura_blob_size(p->size, p->seg_size))
			rc = kura_fail(
				err, KURA_EINTEGRITY,
				"blob of part %u has %llu bytes, expected %llu",
				p->part_no, (unsigned long long)size,
				(unsigned long long)kura_blob_size(
					p->size, p->seg_size));
		else
			rc = kura_store_reader_pread(store, or->reader, hdr,
						     sizeof(hdr), 0, err);
		if (rc == KURA_OK)
			rc = kura_blob_header_check(hdr, p->seg_size,
						    p->blob_id, err);
		if (rc != KURA_EINTEGRITY || !next_copy(or, &size))
			break;
	}
	if (rc != KURA_OK)
		return rc;
	or->part_idx = idx;
	or->part_open = true;
	return KURA_OK;
}

/* Make the segment holding object offset off the current one.  When dst
 * is given, off is the segment's first byte and its whole plaintext fits in
 * dst_cap, the segment is decrypted straight into dst instead (*direct set
 * to its length; buf then holds ciphertext): a streamed GET hands over
 * whole segments, and this saves copying every byte once more. */
static enum kura_err load_segment(struct s3_objread * or, uint64_t off,
				  uint8_t *dst, size_t dst_cap, size_t *direct,
				  struct kura_error *err)
{
	const struct kura_object *o = or->obj;
	uint32_t idx = or->part_open ? or->part_idx : 0;
	uint64_t start = or->part_open ? or->part_start : 0;
	if (off < start) {
		idx = 0;
		start = 0;
	}
	while (idx < o->part_count && off >= start + o->parts[idx].size) {
		start += o->parts[idx].size;
		idx++;
	}
	if (idx >= o->part_count) {
		/* An empty object still has one (empty) segment to verify. */
		if (!(off == 0 && o->size == 0 && o->part_count > 0))
			return kura_fail(err, KURA_EINVAL,
					 "offset beyond the object");
		idx = 0;
		start = 0;
	}
	if (! or->part_open || or->part_idx != idx) {
		enum kura_err rc = part_open(or, idx, err);
		if (rc != KURA_OK)
			return rc;
		or->part_start = start;
	}
	const struct kura_part *p = &o->parts[idx];
	uint64_t seg = (off - start) / p->seg_size;
	size_t plen = kura_seg_plain_len(seg, p->size, p->seg_size);
	size_t clen = plen + KURA_SEG_TAG_LEN;
	bool to_dst = dst != NULL && off == start + seg * p->seg_size &&
		      plen <= dst_cap;
	or->seg_valid = false;
	enum kura_err rc;
	for (;;) {
		rc = kura_store_reader_pread(or->store, or->reader, or->buf,
					     clen,
					     kura_seg_offset(seg, p->seg_size),
					     err);
		if (rc == KURA_OK)
			rc = kura_opener_segment(or->opener, seg, or->buf, clen,
						 to_dst ? dst : or->buf, err);
		/* A segment that fails authentication on one copy may be
		 * whole on another: the client still gets the right bytes. */
		if (rc != KURA_EINTEGRITY || !next_good_size(or, p))
			break;
	}
	if (rc != KURA_OK)
		return rc;
	if (to_dst) {
		*direct = plen;
		return KURA_OK;
	}
	or->seg_start = start + seg * p->seg_size;
	or->seg_len = plen;
	or->seg_valid = true;
	return KURA_OK;
}

enum kura_err s3_objread_verify_at(struct s3_objread * or, uint64_t off,
				   struct kura_error *err)
{
	return load_segment(or, off, NULL, 0, NULL, err);
}

enum kura_err s3_objread_read(struct s3_objread * or, uint64_t off, void *buf,
			      size_t n, size_t *got, struct kura_error *err)
{
	size_t done = 0;
	uint64_t end = or->obj->size;
	uint8_t *out = buf;
	if (off >= end) {
		*got = 0;
		return KURA_OK;
	}
	if (n > end - off)
		n = (size_t)(end - off);
	while (done < n) {
		if (! or->seg_valid || off < or->seg_start ||
		    off >= or->seg_start + or->seg_len) {
			size_t direct = 0;
			enum kura_err rc = load_segment(or, off, out + done,
							n - done, &direct, err);
			if (rc != KURA_OK) {
				if (done > 0)
					break; /* deliver what verified; fail next time */
				return rc;
			}
			if (direct > 0) {
				done += direct;
				off += direct;
				continue;
			}
		}
		size_t in_seg = (size_t)(off - or->seg_start);
		size_t k = or->seg_len - in_seg;
		if (k > n - done)
			k = n - done;
		memcpy(out + done, or->buf + in_seg, k);
		done += k;
		off += k;
	}
	*got = done;
	return KURA_OK;
}

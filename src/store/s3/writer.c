/*
 * writer.c — writing a blob to the remote: one PutObject when it fits in
 * one part, else a multipart upload.
 *
 * The writer fills one part buffer, grown as bytes arrive up to part_size
 * and never beyond, so memory does not grow with the blob.  When it is
 * full, the upload is started (CreateMultipartUpload) if it is not yet,
 * and the buffer goes out as the next part from a thread of its own while
 * the writer fills a second buffer: the caller's bytes keep coming (to
 * the other copies of a sync policy too) while a part travels.  One part
 * at most is in flight, so a writer holds at most two part buffers.
 * writer_finish waits for it, sends what is left (the whole blob as one
 * PutObject when no part went yet, or the last part) and completes the
 * upload.  The remote has acknowledged
 * every byte when writer_finish returns KURA_OK: an S3 PUT or
 * CompleteMultipartUpload answers only when the object is stored.
 *
 * There is no staging on the remote: the object appears under its final
 * name only when complete (S3 makes a multipart object visible at
 * CompleteMultipartUpload), so publish is not needed.  A failed or
 * aborted writer aborts its multipart upload, and a failed finish also
 * deletes the name (best effort: a PUT whose answer was lost may have
 * stored it).
 *
 * Payloads are signed with their real SHA-256 (sign.c).  Part ETags are
 * kept for the completion document: at most S3_MAX_PARTS of them, a few
 * hundred kilobytes at most.
 *
 * Threading: a writer is used by one thread at a time (store.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/buf.h"
#include "kura/encode.h"
#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

/* First allocation of the part buffer; it doubles up to part_size. */
#define BUF_FIRST (256u * 1024u)
/* "<Part><PartNumber>10000</PartNumber><ETag>..</ETag></Part>" */
#define PART_XML_MAX (64 + S3_ETAG_MAX)
#define COMPLETE_MAX (64 + (size_t)S3_MAX_PARTS * PART_XML_MAX)

struct kura_store_writer {
	struct rs3_store *s;
	char key[S3_KEY_MAX];
	uint8_t *buf;
	size_t len, cap;
	char upload_id[S3_UPLOAD_ID_MAX]; /* "" until a part is sent */
	char *upload_query;		  /* "uploadId=<encoded>" */
	unsigned parts;			  /* parts sent so far */
	struct kura_buf complete;	  /* the completion document's parts */
	/* The part in flight: its buffer, the thread sending it and what
	 * came of it (read only after the thread is joined). */
	uint8_t *fbuf;
	size_t flen, fcap;
	pthread_t thread;
	bool in_flight;
	enum kura_err frc;
	struct kura_error ferr;
};

enum kura_err rs3_writer_open(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
			      struct kura_store_writer **out,
			      struct kura_error *err)
{
	struct rs3_store *s = priv;
	struct kura_store_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return kura_fail(err, KURA_ENOMEM, "blob writer");
	w->s = s;
	rs3_conf_object_key(&s->conf, id, w->key);
	kura_buf_init(&w->complete, COMPLETE_MAX);
	*out = w;
	return KURA_OK;
}

size_t rs3_writer_capacity(const struct kura_store_writer *w)
{
	return w->cap + w->fcap;
}

static void writer_free(struct kura_store_writer *w)
{
	free(w->buf);
	free(w->fbuf);
	free(w->upload_query);
	kura_buf_release(&w->complete);
	free(w);
}

/* Grow the buffer to hold want bytes (want <= part_size). */
static enum kura_err buf_reserve(struct kura_store_writer *w, size_t want,
				 struct kura_error *err)
{
	if (want <= w->cap)
		return KURA_OK;
	size_t cap = w->cap ? w->cap : BUF_FIRST;
	while (cap < want)
		cap *= 2;
	if (cap > w->s->conf.part_size)
		cap = w->s->conf.part_size;
	uint8_t *b = realloc(w->buf, cap);
	if (b == NULL)
		return kura_fail(err, KURA_ENOMEM, "part buffer");
	w->buf = b;
	w->cap = cap;
	return KURA_OK;
}

/* CreateMultipartUpload: remember the UploadId the remote gives. */
static enum kura_err upload_start(struct kura_store_writer *w,
				  struct kura_error *err)
{
	struct rs3_req req = { .method = "POST",
			       .key = w->key,
			       .query = "uploads" };
	struct rs3_resp resp = { 0 };
	struct rs3_answer f;
	enum kura_err rc = rs3_client_do(w->s->client, &req, &resp, err);
	if (rc == KURA_OK && resp.status != 200)
		rc = rs3_client_fail(w->s->client, "CreateMultipartUpload",
				     &resp, err);
	if (rc == KURA_OK)
		rc = rs3_answer_parse(resp.xml, resp.xml_len, &f, err);
	if (rc == KURA_OK && f.upload_id[0] == '\0')
		rc = kura_fail(err, KURA_EPROTO,
			       "[%s] CreateMultipartUpload: no UploadId",
			       w->s->conf.section);
	rs3_resp_release(&resp);
	if (rc != KURA_OK)
		return rc;
	struct kura_buf q;
	kura_buf_init(&q, 16 + 3 * S3_UPLOAD_ID_MAX);
	if (kura_buf_addstr(&q, "uploadId=") != KURA_OK ||
	    kura_uri_encode(f.upload_id, strlen(f.upload_id), false, &q) !=
		    KURA_OK ||
	    (w->upload_query = kura_buf_detach(&q, NULL)) == NULL) {
		kura_buf_release(&q);
		return kura_fail(err, KURA_ENOMEM, "upload id");
	}
	memcpy(w->upload_id, f.upload_id, strlen(f.upload_id) + 1);
	return KURA_OK;
}

/* An ETag goes into the completion document verbatim: refuse one that
 * could change its structure. */
static bool etag_valid(const char *e)
{
	if (e[0] == '\0')
		return false;
	for (const char *p = e; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '<' || *p == '>' ||
		    *p == '&' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

/* UploadPart: buf[0..len) as part number parts + 1. */
static enum kura_err part_send(struct kura_store_writer *w, const uint8_t *buf,
			       size_t len, struct kura_error *err)
{
	if (w->parts >= S3_MAX_PARTS)
		return kura_fail(err, KURA_ETOOBIG,
				 "[%s] blob needs more than %u parts of %zu "
				 "bytes",
				 w->s->conf.section, S3_MAX_PARTS,
				 w->s->conf.part_size);
	char query[32 + 3 * S3_UPLOAD_ID_MAX];
	snprintf(query, sizeof(query), "partNumber=%u&%s", w->parts + 1,
		 w->upload_query);
	struct rs3_req req = { .method = "PUT",
			       .key = w->key,
			       .query = query,
			       .body = buf,
			       .body_len = len };
	struct rs3_resp resp = { 0 };
	enum kura_err rc = rs3_client_do(w->s->client, &req, &resp, err);
	if (rc == KURA_OK && resp.status != 200)
		rc = rs3_client_fail(w->s->client, "UploadPart", &resp, err);
	if (rc == KURA_OK && !etag_valid(resp.etag))
		rc = kura_fail(err, KURA_EPROTO,
			       "[%s] UploadPart: no usable ETag",
			       w->s->conf.section);
	if (rc == KURA_OK &&
	    kura_buf_addf(&w->complete,
			  "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag>"
			  "</Part>",
			  w->parts + 1, resp.etag) != KURA_OK)
		rc = kura_fail(err, KURA_ENOMEM, "completion document");
	rs3_resp_release(&resp);
	if (rc != KURA_OK)
		return rc;
	w->parts++;
	return KURA_OK;
}

static void *part_thread(void *arg)
{
	struct kura_store_writer *w = arg;
	w->frc = part_send(w, w->fbuf, w->flen, &w->ferr);
	return NULL;
}

/* Wait for the part in flight; its failure is the writer's. */
static enum kura_err land(struct kura_store_writer *w, struct kura_error *err)
{
	if (!w->in_flight)
		return KURA_OK;
	pthread_join(w->thread, NULL);
	w->in_flight = false;
	if (w->frc != KURA_OK)
		return kura_fail(err, w->frc, "%s", w->ferr.msg);
	return KURA_OK;
}

/* Send the full buffer as the next part from a thread of its own, and
 * fill the other buffer meanwhile (swapped; grown as bytes come). */
static enum kura_err part_launch(struct kura_store_writer *w,
				 struct kura_error *err)
{
	uint8_t *b = w->fbuf;
	size_t cap = w->fcap;
	w->fbuf = w->buf;
	w->fcap = w->cap;
	w->flen = w->len;
	w->buf = b;
	w->cap = cap;
	w->len = 0;
	kura_error_clear(&w->ferr);
	int e = pthread_create(&w->thread, NULL, part_thread, w);
	if (e == 0) {
		w->in_flight = true;
		return KURA_OK;
	}
	/* No thread: send it here and now. */
	return part_send(w, w->fbuf, w->flen, err);
}

/* The buffer is full: send it as the next part (one in flight at most:
 * the previous one lands first). */
static enum kura_err flush_part(struct kura_store_writer *w,
				struct kura_error *err)
{
	enum kura_err rc = land(w, err);
	if (rc == KURA_OK && w->upload_id[0] == '\0')
		rc = upload_start(w, err);
	if (rc == KURA_OK)
		rc = part_launch(w, err);
	return rc;
}

enum kura_err rs3_writer_write(struct kura_store_writer *w, const void *p,
			       size_t n, struct kura_error *err)
{
	const uint8_t *c = p;
	size_t part = w->s->conf.part_size;
	while (n > 0) {
		if (w->len == part) {
			enum kura_err rc = flush_part(w, err);
			if (rc != KURA_OK)
				return rc;
		}
		size_t k = part - w->len < n ? part - w->len : n;
		enum kura_err rc = buf_reserve(w, w->len + k, err);
		if (rc != KURA_OK)
			return rc;
		memcpy(w->buf + w->len, c, k);
		w->len += k;
		c += k;
		n -= k;
	}
	return KURA_OK;
}

/* PutObject of the whole (small) blob. */
static enum kura_err put_whole(struct kura_store_writer *w,
			       struct kura_error *err)
{
	struct rs3_req req = { .method = "PUT",
			       .key = w->key,
			       .body = w->buf,
			       .body_len = w->len };
	struct rs3_resp resp = { 0 };
	enum kura_err rc = rs3_client_do(w->s->client, &req, &resp, err);
	if (rc == KURA_OK && resp.status != 200)
		rc = rs3_client_fail(w->s->client, "PutObject", &resp, err);
	rs3_resp_release(&resp);
	return rc;
}

/* CompleteMultipartUpload.  S3 may answer 200 and still carry an Error
 * in the body (the failure came after the headers): only a
 * CompleteMultipartUploadResult is success. */
static enum kura_err upload_complete(struct kura_store_writer *w,
				     struct kura_error *err)
{
	struct kura_buf doc;
	kura_buf_init(&doc, COMPLETE_MAX + 128);
	enum kura_err rc =
		kura_buf_addf(&doc,
			      "<CompleteMultipartUpload>%s"
			      "</CompleteMultipartUpload>",
			      w->complete.data ? w->complete.data : "");
	if (rc != KURA_OK) {
		kura_buf_release(&doc);
		return kura_fail(err, rc, "completion document");
	}
	struct rs3_req req = { .method = "POST",
			       .key = w->key,
			       .query = w->upload_query,
			       .body = doc.data,
			       .body_len = doc.len };
	struct rs3_resp resp = { 0 };
	struct rs3_answer f;
	rc = rs3_client_do(w->s->client, &req, &resp, err);
	if (rc == KURA_OK && resp.status != 200)
		rc = rs3_client_fail(w->s->client, "CompleteMultipartUpload",
				     &resp, err);
	if (rc == KURA_OK)
		rc = rs3_answer_parse(resp.xml, resp.xml_len, &f, err);
	if (rc == KURA_OK &&
	    strcmp(f.root, "CompleteMultipartUploadResult") != 0)
		rc = kura_fail(err, KURA_EIO,
			       "[%s] CompleteMultipartUpload: %.64s %.120s",
			       w->s->conf.section, f.code, f.message);
	rs3_resp_release(&resp);
	kura_buf_release(&doc);
	return rc;
}

/* AbortMultipartUpload, best effort: the remote's own lifecycle rules are
 * the safety net for one that fails here. */
static void upload_abort(struct kura_store_writer *w)
{
	if (w->upload_id[0] == '\0')
		return;
	struct rs3_req req = { .method = "DELETE",
			       .key = w->key,
			       .query = w->upload_query };
	struct rs3_resp resp = { 0 };
	struct kura_error e = { 0 };
	enum kura_err rc = rs3_client_do(w->s->client, &req, &resp, &e);
	if (rc == KURA_OK && resp.status != 204 && resp.status != 200 &&
	    resp.status != 404)
		rc = rs3_client_fail(w->s->client, "AbortMultipartUpload",
				     &resp, &e);
	if (rc != KURA_OK)
		kura_warn(NULL, "store: %s", e.msg);
	rs3_resp_release(&resp);
}

/* DELETE the name, best effort (see the top of the file). */
static void object_forget(struct kura_store_writer *w)
{
	struct rs3_req req = { .method = "DELETE", .key = w->key };
	struct rs3_resp resp = { 0 };
	struct kura_error e = { 0 };
	if (rs3_client_do(w->s->client, &req, &resp, &e) != KURA_OK)
		kura_warn(NULL, "store: %s", e.msg);
	rs3_resp_release(&resp);
}

enum kura_err rs3_writer_finish(struct kura_store_writer *w,
				struct kura_error *err)
{
	enum kura_err rc = land(w, err);
	if (rc != KURA_OK) {
		/* a part failed: the upload is aborted below */
	} else if (w->upload_id[0] == '\0') {
		rc = put_whole(w, err);
	} else {
		rc = w->len > 0 ? part_send(w, w->buf, w->len, err) : KURA_OK;
		if (rc == KURA_OK)
			rc = upload_complete(w, err);
	}
	if (rc != KURA_OK) {
		upload_abort(w);
		object_forget(w);
	}
	writer_free(w);
	return rc;
}

void rs3_writer_abort(struct kura_store_writer *w)
{
	if (w == NULL)
		return;
	(void)land(w, NULL);
	upload_abort(w);
	writer_free(w);
}

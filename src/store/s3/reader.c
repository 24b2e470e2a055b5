/*
 * reader.c — reading a blob from the remote: HEAD for its size, ranged
 * GETs for its bytes.
 *
 * kura reads a blob segment by segment (a segment is about 256 KiB), in
 * order.  One request per segment would pay a round trip for each, so a
 * reader keeps one read-ahead window: a read that misses it fetches
 * max(n, WINDOW) bytes (never past the blob's end) and later reads are
 * served from memory.  A read at least WINDOW long goes straight into the
 * caller's buffer.  Memory per reader is therefore at most WINDOW bytes,
 * whatever the blob's size.
 *
 * Every GET must return exactly the bytes asked for (a 206 of that length,
 * or a 200 of the whole blob when the range was the whole blob);
 * anything else is KURA_EIO, as store.h requires of a short blob.
 *
 * Threading: a reader is used by one thread at a time (store.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"
#include "kura/banned.h"

#define WINDOW (4u << 20)

struct kura_store_reader {
	struct rs3_store *s;
	char key[S3_KEY_MAX];
	uint64_t size;
	uint8_t *win; /* WINDOW bytes once a read needed it */
	uint64_t win_off;
	size_t win_len;
};

enum kura_err rs3_reader_open(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
			      struct kura_store_reader **out, uint64_t *size,
			      struct kura_error *err)
{
	struct rs3_store *s = priv;
	struct kura_store_reader *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return kura_fail(err, KURA_ENOMEM, "blob reader");
	r->s = s;
	rs3_conf_object_key(&s->conf, id, r->key);
	struct rs3_req req = { .method = "HEAD", .key = r->key };
	struct rs3_resp resp = { 0 };
	enum kura_err rc = rs3_client_do(s->client, &req, &resp, err);
	if (rc == KURA_OK && resp.status == 404)
		rc = kura_fail(err, KURA_ENOENT, "[%s] blob '%s' not found",
			       s->conf.section, r->key);
	else if (rc == KURA_OK && resp.status != 200)
		rc = rs3_client_fail(s->client, "HeadObject", &resp, err);
	else if (rc == KURA_OK && !resp.have_length)
		rc = kura_fail(err, KURA_EPROTO,
			       "[%s] HeadObject '%s': no Content-Length",
			       s->conf.section, r->key);
	r->size = resp.content_length;
	rs3_resp_release(&resp);
	if (rc != KURA_OK) {
		free(r);
		return rc;
	}
	*out = r;
	*size = r->size;
	return KURA_OK;
}

/* GET bytes [off, off + n) into p; exactly n bytes or KURA_EIO. */
static enum kura_err get_range(struct kura_store_reader *r, void *p, size_t n,
			       uint64_t off, struct kura_error *err)
{
	char range[64];
	snprintf(range, sizeof(range), "bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + n - 1));
	struct rs3_req req = { .method = "GET",
			       .key = r->key,
			       .range = range,
			       .out = p,
			       .out_cap = n };
	struct rs3_resp resp = { 0 };
	enum kura_err rc = rs3_client_do(r->s->client, &req, &resp, err);
	bool whole = off == 0 && n == r->size;
	if (rc == KURA_OK && resp.status != 206 &&
	    !(resp.status == 200 && whole))
		rc = resp.status == 404 ?
			     kura_fail(err, KURA_EIO,
				       "[%s] blob '%s' vanished while read",
				       r->s->conf.section, r->key) :
			     rs3_client_fail(r->s->client, "GetObject", &resp,
					     err);
	if (rc == KURA_OK && resp.out_len != n)
		rc = kura_fail(err, KURA_EIO,
			       "[%s] GetObject '%s': %zu bytes at %llu, "
			       "wanted %zu",
			       r->s->conf.section, r->key, resp.out_len,
			       (unsigned long long)off, n);
	rs3_resp_release(&resp);
	return rc;
}

static bool in_window(const struct kura_store_reader *r, size_t n, uint64_t off)
{
	return r->win_len > 0 && off >= r->win_off &&
	       off - r->win_off <= r->win_len &&
	       n <= r->win_len - (off - r->win_off);
}

enum kura_err rs3_reader_pread(struct kura_store_reader *r, void *p, size_t n,
			       uint64_t off, struct kura_error *err)
{
	if (off > r->size || n > r->size - off)
		return kura_fail(
			err, KURA_EIO,
			"read of %zu bytes at %llu past the end of a %llu-byte blob",
			n, (unsigned long long)off,
			(unsigned long long)r->size);
	if (n == 0)
		return KURA_OK;
	if (n >= WINDOW)
		return get_range(r, p, n, off, err);
	if (!in_window(r, n, off)) {
		if (r->win == NULL && (r->win = malloc(WINDOW)) == NULL)
			return kura_fail(err, KURA_ENOMEM, "read-ahead window");
		uint64_t left = r->size - off;
		size_t len = left < WINDOW ? (size_t)left : WINDOW;
		r->win_len = 0;
		enum kura_err rc = get_range(r, r->win, len, off, err);
		if (rc != KURA_OK)
			return rc;
		r->win_off = off;
		r->win_len = len;
	}
	memcpy(p, r->win + (off - r->win_off), n);
	return KURA_OK;
}

void rs3_reader_close(struct kura_store_reader *r)
{
	if (r == NULL)
		return;
	free(r->win);
	free(r);
}

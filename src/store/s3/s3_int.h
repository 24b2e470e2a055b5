/*
 * s3_int.h — what the files of the remote S3 data store share.
 *
 * The store is one unit, one concept per file:
 *   conf.c    [backend.NAME] read and checked: endpoint rules, the secret,
 *             the remote name of a blob
 *   sign.c    SigV4 signing of one request (core/sigv4.c canonicalises)
 *   xml.c     the few fields kura reads from the remote's XML, bounded
 *   client.c  libcurl: the handle pool, one request with retries, limits
 *   writer.c  single PUT or multipart upload, one part in flight while the next fills
 *   reader.c  HEAD for the size, ranged GETs through a read-ahead window
 *   store.c   the ops table, open/close, remove, recover, the probe
 * Each file calls only files above it in this list, so no two need each
 * other.
 *
 * Threading: a struct rs3_client is shared by every thread of the store;
 * its pool and curl's share object are locked inside client.c.  A
 * request's struct rs3_req / rs3_resp belong to the calling thread.
 */
#ifndef KURA_STORE_S3_INT_H
#define KURA_STORE_S3_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/lengths.h"
#include "kura/secret.h"

#define S3_HOST_MAX 256	  /* "host[:port]" as in the Host header */
#define S3_BUCKET_MAX 63  /* S3's own limit on bucket names */
#define S3_PREFIX_MAX 512 /* object-name prefix, before encoding */
#define S3_AKID_MAX 128
#define S3_REGION_MAX 63
#define S3_SECRET_MAX 256 /* secret access key bytes */
#define S3_SECTION_MAX 64 /* "backend." + 32-byte NAME, for messages */
#define S3_MIN_PART (5ull << 20)
#define S3_MAX_PARTS 10000 /* S3's own limit on parts of one upload */

/* Object names: prefix + 32 hex digits, percent-encoded in the URL path
 * "/bucket/name" (at most 3 bytes per prefix byte). */
#define S3_PATH_MAX \
	(2 + S3_BUCKET_MAX + 3 * S3_PREFIX_MAX + 2 * KURA_BLOB_ID_LEN + 1)

/* Limits on what the remote sends back.  An S3 error document or an
 * upload's answer is a few hundred bytes; ETags are quoted MD5s (or
 * "md5-N" for multipart), upload ids opaque tokens of a few hundred bytes
 * at most on AWS, RGW and kura. */
#define S3_XML_MAX (64u * 1024u)
#define S3_ETAG_MAX 128
#define S3_UPLOAD_ID_MAX 1024
#define S3_CODE_MAX 64
#define S3_MESSAGE_MAX 256

/* One configured remote (conf.c). */
struct rs3_conf {
	char section[S3_SECTION_MAX]; /* "backend.NAME", for messages */
	bool https;
	char base_url[16 + S3_HOST_MAX]; /* "https://host:port", no slash */
	char host[S3_HOST_MAX];		 /* Host header value (signed) */
	char bucket[S3_BUCKET_MAX + 1];
	char prefix[S3_PREFIX_MAX + 1];
	char access_key[S3_AKID_MAX + 1];
	char region[S3_REGION_MAX + 1];
	char ca_file[PATH_MAX];	    /* "" = the system's CA bundle */
	struct kura_secret *secret; /* secret access key; owned */
	size_t part_size;
	long timeout_s;
	unsigned retries;
};

/* Read and check [section] (a "backend.NAME" of type s3) into *c.  On
 * failure nothing is left to release.  KURA_ECONFIG, KURA_EPERM (secret
 * file not private), KURA_ENOMEM. */
enum kura_err rs3_conf_load(struct rs3_conf *c, const struct kura_config *cfg,
			    const char *section, struct kura_error *err);

/* Release what rs3_conf_load took (wipes the secret). */
void rs3_conf_release(struct rs3_conf *c);

/* The host part of an endpoint "scheme://host[:port]" is one a plain http
 * endpoint may use: 127.0.0.1, ::1 or localhost. */
bool rs3_conf_host_is_loopback(const char *host, size_t n);

/* ---- signing (sign.c) ---- */

/* A signed request's headers, ready for the wire.  auth holds the
 * signature: it is wiped when released and never logged. */
struct rs3_signed {
	char amz_date[17];
	char payload_hash[65];
	char authorization[512];
};

/* Sign METHOD path?query with the given Range header (NULL: none) and
 * payload (body NULL and n 0 for none) at time now_ms.  path and query
 * are as they go on the wire (percent-encoded). */
enum kura_err rs3_sign(const struct rs3_conf *c, const char *method,
		       const char *path, const char *query, const char *range,
		       const void *body, size_t n, int64_t now_ms,
		       struct rs3_signed *out, struct kura_error *err);

/* Wipe a signed request's headers. */
void rs3_signed_wipe(struct rs3_signed *s);

/* ---- the remote's XML (xml.c) ---- */

/* The fields kura reads from an answer: the root element's name, and the
 * text of its children Code, Message, UploadId and ETag (each "" when
 * absent).  Nothing else of the document is kept. */
struct rs3_answer {
	char root[32];
	char code[S3_CODE_MAX];
	char message[S3_MESSAGE_MAX];
	char upload_id[S3_UPLOAD_ID_MAX];
	char etag[S3_ETAG_MAX];
};

/* Parse doc[0..n) (at most S3_XML_MAX bytes, no DOCTYPE, depth <= 16).  A
 * field longer than its buffer makes the document malformed rather than
 * cut: a truncated upload id would name another upload.  KURA_EPROTO for a
 * document that is not one, too large or too deep. */
enum kura_err rs3_answer_parse(const char *doc, size_t n,
			       struct rs3_answer *out, struct kura_error *err);

/* ---- requests (client.c) ---- */

struct rs3_client;

/* One request.  key NULL addresses the bucket itself.  query is the raw
 * query without '?' ("" for none).  body/body_len the payload (PUT, POST).
 * out/out_cap receive a 2xx response body of a GET, which must fit (a
 * longer one fails the request); otherwise a body is kept in
 * rs3_resp.xml, at most S3_XML_MAX bytes. */
struct rs3_req {
	const char *method;
	const char *key;
	const char *query;
	const char *range;
	const void *body;
	size_t body_len;
	void *out;
	size_t out_cap;
	bool no_retry; /* one try only (the health probe) */
};

struct rs3_resp {
	long status;
	size_t out_len;		 /* bytes written to req.out */
	uint64_t content_length; /* the Content-Length header, when have_length */
	bool have_length;
	char etag[S3_ETAG_MAX]; /* the ETag header, "" when absent */
	char *xml; /* body kept in memory, NUL-terminated, or NULL */
	size_t xml_len;
};

/* Free what a response holds; it may be reused afterwards. */
void rs3_resp_release(struct rs3_resp *resp);

/* A client of conf (which must outlive it).  KURA_ENOMEM, KURA_EIO when
 * libcurl cannot start. */
enum kura_err rs3_client_new(const struct rs3_conf *conf,
			     struct rs3_client **out, struct kura_error *err);
void rs3_client_free(struct rs3_client *c);

/*
 * Send req, retrying with exponential back-off (100 ms doubling, at most
 * 5 s between tries) up to conf->retries times when the connection fails
 * or the remote answers 5xx or 429 — every request kura sends is
 * idempotent or safe to repeat (the same part, the same whole object).
 * KURA_OK with *resp filled when an answer arrived, whatever its status
 * (callers judge it); KURA_EIO when none did after the last try, or a
 * response broke a limit.
 */
enum kura_err rs3_client_do(struct rs3_client *c, const struct rs3_req *req,
			    struct rs3_resp *resp, struct kura_error *err);

/* Record the failure an unexpected answer stands for: 403 is KURA_EAUTH
 * (the credentials or the signature were refused), anything else
 * KURA_EIO (a caller for whom 404 means "missing" checks it first); the
 * message names the backend, what was done, the status and the remote's
 * Code and Message. */
enum kura_err rs3_client_fail(const struct rs3_client *c, const char *what,
			      const struct rs3_resp *resp,
			      struct kura_error *err);

/* The configuration the client was made with. */
const struct rs3_conf *rs3_client_conf(const struct rs3_client *c);

/* ---- the store's state and its slots (writer.c, reader.c) ---- */

struct rs3_store {
	struct rs3_conf conf;
	struct rs3_client *client;
};

/* The remote object name of a blob: prefix + 32 lowercase hex digits. */
#define S3_KEY_MAX (S3_PREFIX_MAX + 2 * KURA_BLOB_ID_LEN + 1)
void rs3_conf_object_key(const struct rs3_conf *c,
			 const uint8_t id[KURA_BLOB_ID_LEN],
			 char out[S3_KEY_MAX]);

struct kura_store_writer;
struct kura_store_reader;

/* The store.h slots, with store.h's contracts. */
enum kura_err rs3_writer_open(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
			      struct kura_store_writer **out,
			      struct kura_error *err);
enum kura_err rs3_writer_write(struct kura_store_writer *w, const void *p,
			       size_t n, struct kura_error *err);
enum kura_err rs3_writer_finish(struct kura_store_writer *w,
				struct kura_error *err);
void rs3_writer_abort(struct kura_store_writer *w);
size_t rs3_writer_capacity(const struct kura_store_writer *w);

enum kura_err rs3_reader_open(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
			      struct kura_store_reader **out, uint64_t *size,
			      struct kura_error *err);
enum kura_err rs3_reader_pread(struct kura_store_reader *r, void *p, size_t n,
			       uint64_t off, struct kura_error *err);
void rs3_reader_close(struct kura_store_reader *r);

#endif

/*
 * versions.c — object versions as S3 shows them: version ids, the version
 * a request names, the order of new versions, and writing one.
 *
 * A version id is its version uid in hex (32 digits), or "null" for the
 * null version (the only version of a key in a bucket never versioned,
 * the one a write in a suspended bucket replaces).  New versions are
 * ordered by the clock in microseconds (vseq, sealed with the row); when
 * another writer's version is newer — a race, or a clock that went back —
 * the store refuses and the write takes a vseq just above it, sealed
 * again.  So the version committed last is the current one, whatever the
 * clocks say.
 *
 * Thread-safe (per request).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

/* Writers racing on one key each retry at most this often. */
#define WRITE_ATTEMPTS 8

bool s3_version_decode(const char *v, size_t n, struct s3_version_sel *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->given = true;
	if (n == 4 && memcmp(v, "null", 4) == 0) {
		sel->null_version = true;
		return true;
	}
	return n == 2 * KURA_UID_LEN &&
	       kura_hex_decode(v, n, sel->uid, KURA_UID_LEN) == KURA_OK;
}

bool s3_version_parse(struct s3_req *r, const char *v, size_t n,
		      struct s3_version_sel *sel)
{
	if (s3_version_decode(v, n, sel))
		return true;
	s3_error(r, S3_InvalidArgument, "Invalid version id specified",
		 "malformed version id");
	return false;
}

bool s3_request_version(struct s3_req *r, struct s3_version_sel *sel)
{
	const struct s3_param *p = s3_param_get(r, "versionId");
	memset(sel, 0, sizeof(*sel));
	if (p == NULL)
		return true;
	if (p->value_len == 0) {
		s3_error(r, S3_InvalidArgument,
			 "Version id cannot be the empty string", NULL);
		return false;
	}
	return s3_version_parse(r, p->value, p->value_len, sel);
}

void s3_version_id_of(const uint8_t uid[KURA_UID_LEN],
		      char out[S3_VERSION_ID_MAX])
{
	kura_hex_encode(uid, KURA_UID_LEN, out);
}

void s3_version_id(const struct kura_object *o, char out[S3_VERSION_ID_MAX])
{
	if (o->null_version)
		snprintf(out, S3_VERSION_ID_MAX, "null");
	else
		s3_version_id_of(o->version_uid, out);
}

/* The version named is a delete marker: S3 answers 404 for the newest
 * (the key is deleted) and 405 for one named by id, both saying so. */
static void delete_marker_answer(struct s3_req *r, const struct kura_object *o,
				 bool named)
{
	char lm[KURA_TIME_HTTP_LEN];
	if (named)
		s3_error(r, S3_MethodNotAllowed, NULL, "a delete marker");
	else
		s3_error(r, S3_NoSuchKey, NULL,
			 "the newest is a delete marker");
	kura_time_http(o->mtime_ms, lm);
	/* Extra detail only; the status already says it all.  The version
	 * headers carry x-amz-delete-marker when r->bucket is versioned (a
	 * copy source's bucket may be, when the target is not). */
	if (r->bucket.versioning == KURA_VERSIONING_OFF)
		KURA_IGNORE(kura_http_resp_header(
			r->http, "x-amz-delete-marker", "true"));
	if (named)
		KURA_IGNORE(
			kura_http_resp_header(r->http, "Last-Modified", lm));
	s3_version_headers(r, o);
}

bool s3_load_object(struct s3_req *r, const struct kura_bucket *b,
		    const char *key, size_t key_len,
		    const struct s3_version_sel *sel, struct kura_object **o)
{
	struct kura_meta *meta = r->svc->meta;
	struct kura_error err = { 0 };
	bool named = sel != NULL && sel->given;
	enum kura_err rc = named ? kura_meta_object_get_version(
					   meta, b->id, key, key_len,
					   sel->null_version ? NULL : sel->uid,
					   r->pool, o, &err) :
				   kura_meta_object_get(meta, b->id, key,
							key_len, r->pool, o,
							&err);
	if (rc == KURA_EINTEGRITY) /* the row and its parts disagree */
		return s3_seal_ok(r, rc, &err, b->name, key, key_len, NULL);
	if (!s3_ok(r, rc, &err, named ? S3_NoSuchVersion : S3_NoSuchKey))
		return false;
	rc = kura_seal_object_open(&r->seal, b->tenant_id, *o, true, &err);
	if (!s3_seal_ok(r, rc, &err, b->name, key, key_len, (*o)->version_uid))
		return false;
	if ((*o)->delete_marker) {
		delete_marker_answer(r, *o, named);
		return false;
	}
	return true;
}

bool s3_load_requested(struct s3_req *r, struct kura_object **o)
{
	struct s3_version_sel sel;
	return s3_request_version(r, &sel) &&
	       s3_load_object(r, &r->bucket, r->key, r->key_len, &sel, o);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec < 0)
		return 1;
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void s3_version_prepare(struct s3_req *r, struct kura_object *o)
{
	o->null_version = r->bucket.versioning != KURA_VERSIONING_ENABLED;
	o->vseq = now_us();
}

void s3_version_headers(struct s3_req *r, const struct kura_object *o)
{
	char id[S3_VERSION_ID_MAX];
	if (r->bucket.versioning == KURA_VERSIONING_OFF)
		return;
	s3_version_id(o, id);
	/* Dropped headers leave a usable answer: the object itself is
	 * right, only its version id is missing. */
	KURA_IGNORE(kura_http_resp_header(r->http, "x-amz-version-id", id));
	if (o->delete_marker)
		KURA_IGNORE(kura_http_resp_header(
			r->http, "x-amz-delete-marker", "true"));
}

/* The vseq of the key's newest version (0: none). */
static uint64_t newest_vseq(struct s3_req *r, const struct kura_object *o)
{
	struct kura_error err = { 0 };
	struct kura_object *cur = NULL;
	if (kura_meta_object_get(r->svc->meta, o->bucket_id, o->key, o->key_len,
				 r->pool, &cur, &err) != KURA_OK)
		return 0;
	return cur->vseq;
}

enum kura_err s3_version_write(struct s3_req *r, struct kura_object *o,
			       const struct kura_put_cond *cond,
			       s3_version_write_fn fn, void *ctx,
			       struct kura_error *err)
{
	enum kura_err rc = KURA_ECONFLICT;
	if (cond != NULL && o->vseq <= cond->expect_vseq)
		o->vseq = cond->expect_vseq + 1;
	for (int i = 0; i < WRITE_ATTEMPTS && rc == KURA_ECONFLICT; i++) {
		if (i > 0) {
			uint64_t newest = newest_vseq(r, o);
			o->vseq = (newest >= o->vseq ? newest : o->vseq) + 1;
		}
		rc = kura_seal_object(&r->seal, &r->bucket, o, err);
		if (rc == KURA_OK)
			rc = fn(r, o, cond, ctx, err);
		/* A condition that no longer holds is the caller's answer,
		 * not a reason to write anyway. */
		if (cond != NULL)
			break;
	}
	if (rc == KURA_OK)
		s3_note_row(r, r->bucket.tenant_id, o);
	return rc;
}

static enum kura_err put_row(struct s3_req *r, const struct kura_object *o,
			     const struct kura_put_cond *cond, void *ctx,
			     struct kura_error *err)
{
	(void)ctx;
	return kura_meta_object_put(r->svc->meta, o, cond, err);
}

bool s3_version_put(struct s3_req *r, struct kura_object *o,
		    const struct kura_put_cond *cond)
{
	struct kura_error err = { 0 };
	enum kura_err rc = s3_version_write(r, o, cond, put_row, NULL, &err);
	if (rc == KURA_ECONFLICT && cond != NULL)
		s3_write_cond_conflict(r);
	else if (rc != KURA_OK)
		s3_ok(r, rc, &err, S3_NoSuchBucket);
	return rc == KURA_OK;
}

enum kura_err s3_put_delete_marker(struct s3_req *r, const char *key,
				   size_t key_len,
				   const struct kura_put_cond *cond,
				   struct kura_object *out,
				   struct kura_error *err)
{
	memset(out, 0, sizeof(*out));
	out->bucket_id = r->bucket.id;
	out->key = key;
	out->key_len = key_len;
	out->delete_marker = true;
	out->sse = KURA_SSE_S3;
	out->mtime_ms = kura_now_ms();
	s3_version_prepare(r, out);
	enum kura_err rc =
		kura_random_bytes(out->version_uid, KURA_UID_LEN, err);
	if (rc != KURA_OK)
		return rc;
	return s3_version_write(r, out, cond, put_row, NULL, err);
}

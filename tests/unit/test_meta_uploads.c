/*
 * test_meta_uploads.c — conformance tests of the metadata stores, part 2:
 * multipart uploads — creating, parts (replaced, refused, listed),
 * completion (row moves, part checks, retries), abort, listing against a
 * brute-force model, expiry, bucket deletion with uploads in progress, and
 * part uploads raced against a completion and an abort, after which every
 * blob id stored is accounted for (live xor queued for gc).
 *
 * Every test runs once per compiled-in metadata store (meta_fixture.h),
 * only through kura_meta_open and the ops of meta.h.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "meta_fixture.h"
#include "kura/banned.h"

/* ------------------------------------------------------------------ */
/* uploads                                                            */

static void test_upload_basics(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_upload u, *got = NULL;
	struct kura_part p, old, *parts = NULL;
	static const char key[] = "big/\xc3\xa9\x00file";
	size_t klen = sizeof(key) - 1;
	static const uint32_t order[] = { 3, 1, 10000, 2 };
	size_t n = 0;

	assert_non_null(pool);
	make_upload(&u, f->bucket, key, klen, "0001upload", 1, 5000);
	u.content_type = "application/x-tar";
	u.content_encoding = "gzip";
	u.content_language = "de";
	u.content_disposition = "inline";
	u.cache_control = "no-cache";
	u.expires = "Thu, 01 Dec 2044 16:00:00 GMT";
	u.user_meta_json = "{\"m\":\"1\"}";
	u.tags_json = "{\"t\":\"2\"}";
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);

	/* Create errors: duplicate id, unknown bucket, bad id, bad key, a
	 * version uid that is already an object's. */
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_EEXIST);
	kura_error_clear(&err);
	{
		struct kura_upload v;
		struct kura_object o;
		struct kura_part op[1];

		make_upload(&v, f->bucket + 1, "k", 1, "other", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_ENOENT);
		kura_error_clear(&err);
		make_upload(&v, f->bucket, "k", 1, "has space", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		make_upload(&v, f->bucket, "k", 1, "", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		make_upload(&v, f->bucket, "", 0, "other", 2, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EINVAL);
		kura_error_clear(&err);
		/* The uid of an upload in progress: another upload ... */
		make_upload(&v, f->bucket, "k", 1, "other", 1, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
		/* ... or an object may not take it, nor the reverse. */
		make_object(&o, op, 1, f->bucket, "obj", 3, 2);
		memcpy(o.version_uid, u.version_uid, KURA_UID_LEN);
		assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
		make_object(&o, op, 1, f->bucket, "obj", 3, 2);
		assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
				 KURA_OK);
		make_upload(&v, f->bucket, "k", 1, "other", 2, 1);
		memcpy(v.version_uid, o.version_uid, KURA_UID_LEN);
		assert_int_equal(f->ops->upload_create(f->priv, &v, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
	}

	/* Get: every field round-trips; another bucket or id misses. */
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "0001upload",
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->id, "0001upload");
	assert_int_equal(got->bucket_id, f->bucket);
	assert_int_equal(got->key_len, klen);
	assert_memory_equal(got->key, key, klen);
	assert_memory_equal(got->version_uid, u.version_uid, KURA_UID_LEN);
	assert_int_equal(got->created_ms, 5000);
	assert_string_equal(got->content_type, u.content_type);
	assert_string_equal(got->content_encoding, u.content_encoding);
	assert_string_equal(got->content_language, u.content_language);
	assert_string_equal(got->content_disposition, u.content_disposition);
	assert_string_equal(got->cache_control, u.cache_control);
	assert_string_equal(got->expires, u.expires);
	assert_string_equal(got->user_meta_json, u.user_meta_json);
	assert_string_equal(got->tags_json, u.tags_json);
	got = NULL;
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket + 1,
					    "0001upload", pool, &got, &err),
			 KURA_ENOENT);
	assert_null(got);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "0001uploa",
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "bad\nid", pool,
					    &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);

	/* Parts in any order; none yet. */
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 0);
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		make_part(&p, order[i], 1, order[i]);
		assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
							 "0001upload", &p,
							 &err),
				 KURA_OK);
		assert_true(referenced(f, p.blob_id));
	}
	assert_int_equal(gc_count(f), 0);

	/* Replace part 2: the old blob is queued, the new one listed. */
	make_part(&old, 2, 1, 2);
	make_part(&p, 2, 1, 22);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 1);
	assert_true(gc_contains(f, old.blob_id));
	assert_true(referenced(f, old.blob_id)); /* until gc_done */
	/* Retrying with the same blob changes nothing. */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 1);
	assert_false(gc_contains(f, p.blob_id));

	/* List with after and limit. */
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 4);
	assert_int_equal(parts[0].part_no, 1);
	assert_int_equal(parts[1].part_no, 2);
	assert_memory_equal(parts[1].blob_id, p.blob_id, KURA_BLOB_ID_LEN);
	assert_int_equal(parts[1].size, 12);
	assert_int_equal(parts[1].seg_size, 65536);
	assert_memory_equal(parts[1].dek_wrapped, p.dek_wrapped,
			    KURA_WRAPPED_DEK_LEN);
	assert_string_equal(parts[1].etag, p.etag);
	assert_int_equal(parts[1].mtime_ms, p.mtime_ms);
	assert_int_equal(parts[2].part_no, 3);
	assert_int_equal(parts[3].part_no, 10000);
	assert_int_equal(list_parts(f, "0001upload", 0, 2, pool, &parts), 2);
	assert_int_equal(parts[1].part_no, 2);
	assert_int_equal(list_parts(f, "0001upload", 2, 2, pool, &parts), 2);
	assert_int_equal(parts[0].part_no, 3);
	assert_int_equal(parts[1].part_no, 10000);
	assert_int_equal(list_parts(f, "0001upload", 3, 100, pool, &parts), 1);
	assert_int_equal(list_parts(f, "0001upload", 10000, 100, pool, &parts),
			 0);
	assert_int_equal(list_parts(f, "0001upload", 0, 0, pool, &parts), 0);

	/* Part errors: numbers out of range, a blob another part, an
	 * object or the gc queue holds. */
	make_part(&p, 0, 1, 50);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_part(&p, 10001, 1, 50);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	make_part(&p, 4, 1, 3); /* part 3's blob */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	make_part(&p, 4, 1, 50);
	fill_id(p.blob_id, 2, 0); /* object "obj"'s blob */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	memcpy(p.blob_id, old.blob_id, KURA_BLOB_ID_LEN); /* queued */
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_EEXIST);
	kura_error_clear(&err);
	/* ... and an object may not take an upload's blob. */
	{
		struct kura_object o;
		struct kura_part op[1];
		make_object(&o, op, 1, f->bucket, "thief", 5, 3);
		make_part(&p, 3, 1, 3);
		memcpy(op[0].blob_id, p.blob_id, KURA_BLOB_ID_LEN);
		assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
				 KURA_EEXIST);
		kura_error_clear(&err);
	}
	/* Wrong bucket, unknown id: ENOENT. */
	make_part(&p, 5, 1, 51);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket + 1,
						 "0001upload", &p, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_list_parts(f->priv, f->bucket, "nosuch",
						   0, 10, pool, &parts, &n,
						   &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 4);

	/* Abort: all four blobs queued, the upload gone. */
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket + 1,
					      "0001upload", &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "0001upload",
					      &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 5);
	for (size_t i = 0; i < 4; i++)
		assert_true(gc_contains(f, parts[i].blob_id));
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "0001upload",
					    pool, &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "0001upload",
					      &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	make_part(&p, 5, 1, 52);
	assert_int_equal(f->ops->upload_put_part(f->priv, f->bucket,
						 "0001upload", &p, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_false(referenced(f, p.blob_id));
	assert_int_equal(f->ops->upload_list_parts(f->priv, f->bucket,
						   "0001upload", 0, 10, pool,
						   &parts, &n, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	/* The id may be used again. */
	make_upload(&u, f->bucket, "again", 5, "0001upload", 9, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	assert_int_equal(list_parts(f, "0001upload", 0, 100, pool, &parts), 0);
	kura_pool_free(pool);
}

static void test_upload_complete(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_part parts[5], chosen[3], prev[2];
	struct kura_object o, *got = NULL;
	struct kura_upload *u = NULL;
	struct kura_part *lp = NULL;

	assert_non_null(pool);
	/* An object the completion replaces. */
	make_object(&o, prev, 2, f->bucket, "movie", 5, 60);
	assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err), KURA_OK);
	upload_with_parts(f, "U1", "movie", 61, parts);
	chosen[0] = parts[0];
	chosen[1] = parts[2];
	chosen[2] = parts[4];

	/* Mismatches first; each leaves everything as it was. */
	completed_object(&o, f->bucket, "movie", 61, chosen, 3);
	chosen[1].blob_id[0] ^= 1;
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[1] = parts[2];
	chosen[1].size++;
	o.size++;
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[1] = parts[2];
	o.size--;
	snprintf(chosen[2].etag, sizeof(chosen[2].etag), "other");
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[2] = parts[4];
	chosen[2].part_no = 6; /* never uploaded */
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_ESTATE);
	kura_error_clear(&err);
	chosen[2] = parts[4];
	/* Another key, another uid, another bucket, a malformed record. */
	completed_object(&o, f->bucket, "movie2", 61, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	completed_object(&o, f->bucket, "movie", 62, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	completed_object(&o, f->bucket + 1, "movie", 61, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	completed_object(&o, f->bucket, "movie", 61, chosen, 0);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	completed_object(&o, f->bucket, "movie", 61, chosen, 3);
	o.size++;
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_EINVAL);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(list_parts(f, "U1", 0, 100, pool, &lp), 5);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "movie", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_string_equal(got->etag, "etag-60");

	/* Complete with parts 1, 3, 5. */
	completed_object(&o, f->bucket, "movie", 61, chosen, 3);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_OK);
	/* Unchosen parts 2, 4 and the replaced object's two blobs queued. */
	assert_int_equal(gc_count(f), 4);
	assert_true(gc_contains(f, parts[1].blob_id));
	assert_true(gc_contains(f, parts[3].blob_id));
	assert_true(gc_contains(f, prev[0].blob_id));
	assert_true(gc_contains(f, prev[1].blob_id));
	for (size_t i = 0; i < 3; i++) {
		assert_false(gc_contains(f, chosen[i].blob_id));
		assert_true(referenced(f, chosen[i].blob_id));
	}
	/* The object reads back with the upload's parts, in order, under
	 * the upload's uid and part numbers. */
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "movie", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_memory_equal(got->version_uid, o.version_uid, KURA_UID_LEN);
	assert_int_equal(got->size, 11 + 13 + 15);
	assert_string_equal(got->etag, o.etag);
	assert_int_equal(got->mtime_ms, 1900000000000);
	assert_string_equal(got->content_type, "video/mp4");
	assert_string_equal(got->tags_json, "{\"done\":\"yes\"}");
	assert_int_equal(got->part_count, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(got->parts[i].part_no, chosen[i].part_no);
		assert_memory_equal(got->parts[i].blob_id, chosen[i].blob_id,
				    KURA_BLOB_ID_LEN);
		assert_int_equal(got->parts[i].size, chosen[i].size);
		assert_memory_equal(got->parts[i].dek_wrapped,
				    chosen[i].dek_wrapped,
				    KURA_WRAPPED_DEK_LEN);
		assert_string_equal(got->parts[i].etag, chosen[i].etag);
		assert_int_equal(got->parts[i].mtime_ms, chosen[i].mtime_ms);
	}
	/* The upload is gone: get, list, put, complete, abort all miss. */
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "U1", pool, &u,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_complete(f->priv, "U1", &o, NULL, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "U1", &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 4);

	/* Deleting the completed object queues exactly its parts. */
	assert_int_equal(f->ops->object_delete(f->priv, f->bucket, "movie", 5,
					       NULL, NULL, false, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 7);
	for (size_t i = 0; i < 3; i++)
		assert_true(gc_contains(f, chosen[i].blob_id));

	/* Complete after abort: ENOENT, nothing created. */
	upload_with_parts(f, "U2", "clip", 63, parts);
	assert_int_equal(f->ops->upload_abort(f->priv, f->bucket, "U2", &err),
			 KURA_OK);
	completed_object(&o, f->bucket, "clip", 63, parts, 5);
	assert_int_equal(f->ops->upload_complete(f->priv, "U2", &o, NULL, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "clip", 4, pool,
					    &got, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(gc_count(f), 12);

	/* Completing with every part, no object to replace: nothing
	 * queued. */
	upload_with_parts(f, "U3", "whole", 64, parts);
	completed_object(&o, f->bucket, "whole", 64, parts, 5);
	o.tags_json = NULL;
	assert_int_equal(f->ops->upload_complete(f->priv, "U3", &o, NULL, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 12);
	got = NULL;
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "whole", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_int_equal(got->part_count, 5);
	assert_null(got->tags_json);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* listing                                                            */

struct ukey {
	struct bkey key;
	const char *id;
};

static int ukey_cmp(const void *x, const void *y)
{
	const struct ukey *a = x, *b = y;
	int d = bytes_cmp(a->key.p, a->key.n, b->key.p, b->key.n);

	return d != 0 ? d : strcmp(a->id, b->id);
}

/* Brute-force model of upload_list over the sorted (key, id) pairs. */
static size_t model_ulist(const struct ukey *sorted, size_t nk,
			  const struct bkey *prefix, const struct bkey *km,
			  const char *idm, size_t limit, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < nk && n < limit; i++) {
		const struct ukey *u = &sorted[i];
		int d;
		if (u->key.n < prefix->n ||
		    memcmp(u->key.p, prefix->p, prefix->n) != 0)
			continue;
		if (km->n > 0) {
			d = bytes_cmp(u->key.p, u->key.n, km->p, km->n);
			if (d < 0)
				continue;
			if (d == 0 &&
			    (idm[0] == '\0' || strcmp(u->id, idm) <= 0))
				continue;
		}
		idx[n++] = i;
	}
	return n;
}

static void test_upload_list(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	static const char *const ids[] = { "0a", "5zz", "7b" };
	static const char *const id_markers[] = { "",	 "0a", "5",
						  "5zz", "7b", "~" };
	static const size_t limits[] = { 1, 2, 5, 1000 };
	enum {
		NKEYS = 12,
		NU = NKEYS * 2
	};
	struct ukey all[NU];
	struct bkey bounds[3 * NKEYS + 3];
	size_t nb = 0, checks = 0;

	/* Keys 0..11 of list_keys; key i gets ids i%3 and (i+1)%3, so
	 * both orders of creation occur.  Ids are globally unique, so
	 * prefix them with the key index. */
	for (size_t i = 0; i < NKEYS; i++) {
		for (size_t j = 0; j < 2; j++) {
			struct ukey *u = &all[i * 2 + j];
			struct kura_upload up;
			char *id = malloc(16);
			assert_non_null(id);
			snprintf(id, 16, "%s%02zu", ids[(i + j) % 3], i);
			u->key = list_keys[i];
			u->id = id;
			make_upload(&up, f->bucket, u->key.p, u->key.n, id,
				    (uint32_t)(200 + i * 2 + j),
				    (int64_t)(i * 2 + j));
			assert_int_equal(f->ops->upload_create(f->priv, &up,
							       &err),
					 KURA_OK);
		}
	}
	/* An upload in another bucket never shows. */
	{
		struct kura_upload up;
		assert_int_equal(create_bucket(f, f->tenant, 77, "other", NULL,
					       NULL),
				 KURA_OK);
		make_upload(&up, 77, "a", 1, "elsewhere", 300, 1);
		assert_int_equal(f->ops->upload_create(f->priv, &up, &err),
				 KURA_OK);
	}
	qsort(all, NU, sizeof(all[0]), ukey_cmp);

	bounds[nb++] = (struct bkey)BK("");
	bounds[nb++] = (struct bkey)BK("q");
	bounds[nb++] = (struct bkey)BK("\xff\xff\xff\xff");
	for (size_t i = 0; i < NKEYS; i++) {
		bounds[nb++] = list_keys[i];
		bounds[nb++] = (struct bkey){ list_keys[i].p, 1 };
		if (list_keys[i].n > 1)
			bounds[nb++] = (struct bkey){ list_keys[i].p,
						      list_keys[i].n - 1 };
	}
	for (size_t pi = 0; pi < nb; pi++) {
		for (size_t ki = 0; ki < nb; ki++) {
			for (size_t ii = 0; ii < ARRAY_LEN(id_markers); ii++) {
				for (size_t li = 0; li < ARRAY_LEN(limits);
				     li++) {
					struct kura_pool *pool =
						kura_pool_new(0);
					struct kura_upload *e = NULL;
					size_t cnt = 12345, want[NU], nw;
					char idm[16];

					/* Markers that exist, with the key
					 * index suffix, and ones that do
					 * not. */
					snprintf(idm, sizeof(idm), "%s%s",
						 id_markers[ii],
						 ii % 2 == 1 ? "03" : "");
					nw = model_ulist(all, NU, &bounds[pi],
							 &bounds[ki], idm,
							 limits[li], want);
					assert_int_equal(
						f->ops->upload_list(
							f->priv, f->bucket,
							bounds[pi].p,
							bounds[pi].n,
							bounds[ki].p,
							bounds[ki].n, idm,
							limits[li], pool, &e,
							&cnt, &err),
						KURA_OK);
					if (cnt != nw)
						fail_msg(
							"prefix %zu marker %zu "
							"id '%s' limit %zu: "
							"got %zu want %zu",
							pi, ki, idm, limits[li],
							cnt, nw);
					for (size_t i = 0; i < nw; i++) {
						const struct ukey *u =
							&all[want[i]];
						assert_int_equal(e[i].key_len,
								 u->key.n);
						assert_memory_equal(e[i].key,
								    u->key.p,
								    u->key.n);
						assert_string_equal(e[i].id,
								    u->id);
						assert_int_equal(e[i].bucket_id,
								 f->bucket);
					}
					checks++;
					kura_pool_free(pool);
				}
			}
		}
	}
	assert_true(checks > 10000);

	/* Paging with (last key, last id) walks every upload once. */
	{
		struct kura_pool *pool = kura_pool_new(0);
		char km[KURA_OBJECT_KEY_MAX], idm[KURA_UPLOAD_ID_MAX] = "";
		size_t km_len = 0, seen = 0, cnt;

		do {
			struct kura_upload *e = NULL;
			assert_int_equal(
				f->ops->upload_list(f->priv, f->bucket, NULL, 0,
						    km, km_len, idm, 3, pool,
						    &e, &cnt, &err),
				KURA_OK);
			for (size_t i = 0; i < cnt; i++) {
				assert_true(seen < NU);
				assert_string_equal(e[i].id, all[seen].id);
				seen++;
			}
			if (cnt > 0) {
				memcpy(km, e[cnt - 1].key, e[cnt - 1].key_len);
				km_len = e[cnt - 1].key_len;
				snprintf(idm, sizeof(idm), "%s", e[cnt - 1].id);
			}
		} while (cnt == 3);
		assert_int_equal(seen, NU);
		kura_pool_free(pool);
	}

	/* Expiry: across buckets, oldest first (ties by id), bounded. */
	{
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_upload *e = NULL;
		size_t cnt = 99;

		/* created_ms: ours 0..23, "elsewhere" 1. */
		assert_int_equal(f->ops->upload_expired(f->priv, 0, 100, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 0);
		assert_int_equal(f->ops->upload_expired(f->priv, 3, 100, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 4);
		assert_int_equal(e[0].created_ms, 0);
		assert_int_equal(e[1].created_ms, 1);
		assert_int_equal(e[2].created_ms, 1);
		assert_int_equal(e[3].created_ms, 2);
		/* Same time: by id ("5zz00" < "elsewhere"). */
		assert_string_equal(e[1].id, "5zz00");
		assert_string_equal(e[2].id, "elsewhere");
		assert_int_equal(e[2].bucket_id, 77);
		assert_int_equal(f->ops->upload_expired(f->priv, 1000, 5, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 5);
		assert_int_equal(f->ops->upload_expired(f->priv, 1000, 1000,
							pool, &e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, NU + 1);
		for (size_t i = 1; i < cnt; i++)
			assert_true(e[i - 1].created_ms <= e[i].created_ms);
		assert_int_equal(f->ops->upload_expired(f->priv, 1000, 0, pool,
							&e, &cnt, &err),
				 KURA_OK);
		assert_int_equal(cnt, 0);
		kura_pool_free(pool);
	}

	for (size_t i = 0; i < NU; i++)
		free((char *)all[i].id);
}

static void test_bucket_delete_uploads(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_bucket b = { 0 };
	struct kura_bucket_key bk;
	struct kura_upload u, *got = NULL;
	struct kura_part p[4], mine[5];
	uint64_t bid = 0x8000000000000099ull;

	assert_non_null(pool);
	assert_int_equal(create_bucket(f, f->tenant, bid, "doomed", &b, &bk),
			 KURA_OK);
	/* Two uploads in the doomed bucket (one without parts), one in
	 * the fixture's bucket that must survive. */
	make_upload(&u, bid, "x", 1, "D1", 400, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	for (uint32_t i = 0; i < 3; i++) {
		make_part(&p[i], i + 1, 400, i);
		/* The fixture bucket's key is not this bucket's. */
		assert_int_equal(f->ops->upload_put_part(f->priv, bid, "D1",
							 &p[i], &err),
				 KURA_ESTATE);
		kura_error_clear(&err);
		p[i].bk_id = bk.id;
		assert_int_equal(f->ops->upload_put_part(f->priv, bid, "D1",
							 &p[i], &err),
				 KURA_OK);
	}
	make_upload(&u, bid, "y", 1, "D2", 401, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	upload_with_parts(f, "KEEP", "z", 402, mine);

	/* With an object: ENOTEMPTY, and the uploads are untouched. */
	{
		struct kura_object o;
		make_object(&o, &p[3], 1, bid, "obj", 3, 403);
		assert_int_equal(f->ops->object_put(f->priv, &o, NULL, &err),
				 KURA_OK);
	}
	assert_int_equal(f->ops->bucket_delete(f->priv, bid, &err),
			 KURA_ENOTEMPTY);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, bid, "D1", pool, &got,
					    &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 0);
	assert_int_equal(f->ops->object_delete(f->priv, bid, "obj", 3, NULL,
					       NULL, false, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 1);

	/* Only uploads left: deleted, their parts' blobs queued, the bucket
	 * key gone (the generation says so), the bucket's own key left for
	 * the caller. */
	{
		uint64_t g = gen(f);
		assert_int_equal(f->ops->bucket_delete(f->priv, bid, &err),
				 KURA_OK);
		assert_int_equal(gen(f), g + 1);
	}
	{
		struct kura_bucket_key g;
		struct kura_key k;
		assert_int_equal(f->ops->bucket_key_get(f->priv, bk.id, &g,
							&err),
				 KURA_ENOENT);
		kura_error_clear(&err);
		assert_int_equal(f->ops->key_get(f->priv, b.key_id, &k, &err),
				 KURA_OK);
		assert_string_equal(k.name, "bucket/doomed");
		assert_int_equal(k.state, KURA_KEY_ENABLED);
	}
	assert_int_equal(gc_count(f), 4);
	for (size_t i = 0; i < 3; i++)
		assert_true(gc_contains(f, p[i].blob_id));
	assert_int_equal(f->ops->upload_get(f->priv, bid, "D1", pool, &got,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_get(f->priv, bid, "D2", pool, &got,
					    &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(f->ops->upload_abort(f->priv, bid, "D1", &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	make_upload(&u, bid, "x", 1, "D3", 404, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_ENOENT);
	kura_error_clear(&err);
	/* The other bucket's upload is whole. */
	assert_int_equal(f->ops->upload_get(f->priv, f->bucket, "KEEP", pool,
					    &got, &err),
			 KURA_OK);
	{
		struct kura_part *lp = NULL;
		assert_int_equal(list_parts(f, "KEEP", 0, 10, pool, &lp), 5);
	}
	for (size_t i = 0; i < 5; i++)
		assert_false(gc_contains(f, mine[i].blob_id));
	/* A bucket with uploads in progress is not "not empty". */
	assert_int_equal(f->ops->bucket_delete(f->priv, f->bucket, &err),
			 KURA_OK);
	assert_int_equal(gc_count(f), 9);
	kura_pool_free(pool);
}

/* ------------------------------------------------------------------ */
/* multipart concurrency                                              */

#define UP_THREADS 6
#define UP_ROUNDS 150
#define UP_PARTS 8 /* part numbers overlap, so parts are replaced */

struct up_race {
	struct fx *f;
	pthread_mutex_t mu;
	unsigned puts_ok; /* successful puts so far, under mu */
	bool stop;	  /* under mu */
};

struct up_worker {
	struct up_race *race;
	int no;
	/* Per round: 0 not tried, 1 recorded, 2 refused (upload gone). */
	uint8_t outcome[UP_ROUNDS];
	int failures;
	char msg[KURA_ERROR_MSG_MAX + 16];
};

static void up_blob(uint8_t id[16], int thread, int round)
{
	fill_id(id, 0x50000u + (uint32_t)thread, (uint32_t)round);
	id[13] = 0x99;
}

/* Puts parts to "C" (completed below) and "A" (aborted below)
 * alternately, until both are gone or the rounds run out. */
static void *up_worker_main(void *arg)
{
	struct up_worker *w = arg;
	struct fx *f = w->race->f;
	bool gone[2] = { false, false };

	for (int i = 0; i < UP_ROUNDS && !(gone[0] && gone[1]); i++) {
		struct kura_error err = { 0 };
		struct kura_part p;
		int which = i % 2;
		enum kura_err r;

		if (gone[which])
			which = !which;
		memset(&p, 0, sizeof(p));
		p.part_no = (uint32_t)(1 + (i / 2 + w->no) % UP_PARTS);
		up_blob(p.blob_id, w->no, i);
		p.size = 100;
		p.seg_size = 65536;
		snprintf(p.etag, sizeof(p.etag), "%d-%d", w->no, i);
		p.mtime_ms = i;
		p.bk_id = f->bk;
		r = f->ops->upload_put_part(f->priv, f->bucket,
					    which == 0 ? "C" : "A", &p, &err);
		if (r == KURA_OK) {
			w->outcome[i] = 1;
			pthread_mutex_lock(&w->race->mu);
			w->race->puts_ok++;
			pthread_mutex_unlock(&w->race->mu);
		} else if (r == KURA_ENOENT) {
			w->outcome[i] = 2;
			gone[which] = true;
		} else {
			w->failures++;
			snprintf(w->msg, sizeof(w->msg), "put: %s", err.msg);
			break;
		}
	}
	pthread_mutex_lock(&w->race->mu);
	w->race->stop = true; /* the finisher need not wait any more */
	pthread_mutex_unlock(&w->race->mu);
	return NULL;
}

struct up_finisher {
	struct up_race *race;
	int completes_refused; /* ESTATE: a part changed under us */
	int failures;
	char msg[KURA_ERROR_MSG_MAX + 16];
};

/* Once parts are flowing, completes "C" with every part it lists
 * (retrying when a part is replaced in between) and aborts "A". */
static void *up_finisher_main(void *arg)
{
	struct up_finisher *fin = arg;
	struct fx *f = fin->race->f;
	struct kura_error err = { 0 };
	bool done = false;

	for (;;) {
		bool go;
		pthread_mutex_lock(&fin->race->mu);
		go = fin->race->puts_ok >= 40 || fin->race->stop;
		pthread_mutex_unlock(&fin->race->mu);
		if (go)
			break;
		usleep(1000);
	}
	while (!done) {
		struct kura_pool *pool = kura_pool_new(0);
		struct kura_part *parts = NULL;
		struct kura_object o;
		size_t n = 0;
		enum kura_err r;

		r = f->ops->upload_list_parts(f->priv, f->bucket, "C", 0,
					      KURA_MAX_PARTS, pool, &parts, &n,
					      &err);
		if (r == KURA_OK) {
			completed_object(&o, f->bucket, "raced", 500, parts,
					 (uint32_t)n);
			r = f->ops->upload_complete(f->priv, "C", &o, NULL,
						    &err);
		}
		kura_pool_free(pool);
		if (r == KURA_ESTATE) {
			fin->completes_refused++;
			kura_error_clear(&err);
			continue;
		}
		if (r != KURA_OK) {
			fin->failures++;
			snprintf(fin->msg, sizeof(fin->msg), "complete: %s",
				 err.msg);
			return NULL;
		}
		done = true;
	}
	if (f->ops->upload_abort(f->priv, f->bucket, "A", &err) != KURA_OK) {
		fin->failures++;
		snprintf(fin->msg, sizeof(fin->msg), "abort: %s", err.msg);
	}
	return NULL;
}

static void test_upload_concurrency(void **state)
{
	struct fx *f = *state;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	struct up_race race = { .f = f };
	struct up_worker *w = calloc(UP_THREADS, sizeof(*w));
	struct up_finisher fin = { .race = &race };
	pthread_t th[UP_THREADS], fth;
	uint8_t(*queued)[KURA_BLOB_ID_LEN] =
		malloc(UP_THREADS * UP_ROUNDS * 2 * KURA_BLOB_ID_LEN);
	size_t nq = 0, recorded = 0, refused = 0, in_object = 0;
	struct kura_object *got = NULL;
	struct kura_upload u;

	assert_non_null(pool);
	assert_non_null(w);
	assert_non_null(queued);
	pthread_mutex_init(&race.mu, NULL);
	make_upload(&u, f->bucket, "raced", 5, "C", 500, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);
	make_upload(&u, f->bucket, "raced", 5, "A", 501, 1);
	assert_int_equal(f->ops->upload_create(f->priv, &u, &err), KURA_OK);

	for (int i = 0; i < UP_THREADS; i++) {
		w[i].race = &race;
		w[i].no = i;
		assert_int_equal(
			pthread_create(&th[i], NULL, up_worker_main, &w[i]), 0);
	}
	assert_int_equal(pthread_create(&fth, NULL, up_finisher_main, &fin), 0);
	for (int i = 0; i < UP_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_join(fth, NULL);
	for (int i = 0; i < UP_THREADS; i++)
		if (w[i].failures != 0)
			fail_msg("thread %d: %s", i, w[i].msg);
	if (fin.failures != 0)
		fail_msg("finisher: %s", fin.msg);

	/* Both uploads are gone, the object exists. */
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM uploads"), 0);
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM upload_parts"), 0);
	assert_int_equal(f->ops->object_get(f->priv, f->bucket, "raced", 5,
					    pool, &got, &err),
			 KURA_OK);
	assert_true(got->part_count >= 1);
	/* No blob is both live and queued. */
	assert_int_equal(meta_sql(f, "SELECT count(*) FROM gc JOIN parts "
				     "USING (blob_id)"),
			 0);
	assert_int_equal(f->ops->gc_next(f->priv, queued,
					 UP_THREADS * UP_ROUNDS * 2, &nq, &err),
			 KURA_OK);

	/* Every recorded blob is exactly one of: a part of the object,
	 * queued for gc.  A refused put left no trace. */
	for (int t = 0; t < UP_THREADS; t++) {
		for (int i = 0; i < UP_ROUNDS; i++) {
			uint8_t id[16];
			bool live = false, q = false;
			if (w[t].outcome[i] == 0)
				continue;
			up_blob(id, t, i);
			for (uint32_t k = 0; k < got->part_count; k++)
				live |= memcmp(got->parts[k].blob_id, id, 16) ==
					0;
			for (size_t k = 0; k < nq; k++)
				q |= memcmp(queued[k], id, 16) == 0;
			if (w[t].outcome[i] == 1) {
				recorded++;
				in_object += live;
				if (live == q)
					fail_msg("blob of thread %d round %d: "
						 "live %d queued %d",
						 t, i, live, q);
			} else {
				refused++;
				assert_false(live || q);
				assert_false(referenced(f, id));
			}
		}
	}
	assert_int_equal(in_object, got->part_count);
	assert_int_equal(nq + in_object, recorded);
	print_message("# %zu parts recorded, %zu refused after the end, "
		      "object of %u parts, %d completes retried\n",
		      recorded, refused, got->part_count,
		      fin.completes_refused);
	pthread_mutex_destroy(&race.mu);
	free(queued);
	free(w);
	kura_pool_free(pool);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		meta_test(test_upload_basics),
		meta_test(test_upload_complete),
		meta_test(test_upload_list),
		meta_test(test_bucket_delete_uploads),
		meta_test(test_upload_concurrency),
	};

	return meta_run_suite("test_meta_uploads", tests, ARRAY_LEN(tests));
}

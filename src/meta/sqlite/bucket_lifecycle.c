/*
 * bucket_lifecycle.c — a bucket's lifecycle configuration in the SQLite
 * store: the text in buckets.lifecycle, its digest (kura_lc_digest) in
 * buckets.lifecycle_digest, which is part of the bucket's row MAC.  A text
 * planted or altered by someone who can write meta.db but holds no row key
 * either fails the MAC (a new digest) or the digest (a new text): both are
 * KURA_EINTEGRITY, never rules that delete data.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdlib.h>

#include <openssl/crypto.h>

#include "sqlite_int.h"
#include "kura/banned.h"

static const struct sq_sql sql_set_lifecycle = {
	.what = "set bucket lifecycle",
	.text = "UPDATE buckets SET lifecycle = ?2, lifecycle_digest = ?3, "
		"mac = ?4 WHERE id = ?1",
};

struct set_arg {
	uint64_t bucket_id;
	const char *text; /* NULL: remove */
};

static enum kura_err set_body(struct sq_conn *c, void *arg,
			      struct kura_error *err)
{
	const struct set_arg *a = arg;
	struct kura_bucket b;
	struct sq_stmt st;
	enum kura_err r = sq_bucket_fetch(c, a->bucket_id, &b, err);

	if (r != KURA_OK)
		return r;
	b.has_lifecycle = a->text != NULL;
	memset(b.lifecycle_digest, 0, sizeof(b.lifecycle_digest));
	if (b.has_lifecycle &&
	    !kura_lc_digest(a->text, strlen(a->text), b.lifecycle_digest))
		return kura_fail(err, KURA_ECRYPTO, "lifecycle digest");
	sq_begin(&st, c, &sql_set_lifecycle, err);
	sq_bind_u64(&st, 1, b.id);
	if (a->text != NULL) {
		sq_bind_text(&st, 2, a->text);
		sq_bind_blob(&st, 3, b.lifecycle_digest,
			     sizeof(b.lifecycle_digest));
	} else {
		sq_bind_opt_blob(&st, 2, NULL, 0);
		sq_bind_opt_blob(&st, 3, NULL, 0);
	}
	sq_bind_row_mac(&st, 4, SQ_ROW_BUCKET, &b);
	return sq_exec(&st);
}

enum kura_err sq_bucket_set_lifecycle(void *priv, uint64_t bucket_id,
				      const char *text, struct kura_error *err)
{
	struct set_arg a = { bucket_id, text };

	if (text != NULL &&
	    (text[0] == '\0' ||
	     strnlen(text, KURA_LC_TEXT_MAX + 1) > KURA_LC_TEXT_MAX))
		return kura_fail(err, KURA_ETOOBIG, "lifecycle text size");
	return sq_write_tx(priv, set_body, &a, err);
}

static const struct sq_sql sql_get_lifecycle = {
	.what = "get bucket lifecycle",
	.text = "SELECT lifecycle FROM buckets WHERE id = ?1",
};

/* The text of bucket b (read in this transaction), checked against the
 * digest its MAC covers. */
static enum kura_err text_read(struct sq_conn *c, const struct kura_bucket *b,
			       struct kura_pool *pool, const char **text,
			       struct kura_error *err)
{
	struct sq_stmt st;
	uint8_t digest[KURA_LC_DIGEST_LEN];
	enum kura_err r;

	*text = NULL;
	sq_begin(&st, c, &sql_get_lifecycle, err);
	sq_bind_u64(&st, 1, b->id);
	if (sq_row(&st))
		sq_col_ptext(&st, 0, pool, text);
	r = sq_end(&st);
	if (r != KURA_OK)
		return r;
	if (*text == NULL || strlen(*text) > KURA_LC_TEXT_MAX ||
	    !kura_lc_digest(*text, strlen(*text), digest) ||
	    CRYPTO_memcmp(digest, b->lifecycle_digest, sizeof(digest)) != 0)
		return kura_fail(err, KURA_EINTEGRITY,
				 "bucket '%s': lifecycle configuration does "
				 "not match its digest",
				 b->name);
	return KURA_OK;
}

enum kura_err sq_bucket_get_lifecycle(void *priv, uint64_t bucket_id,
				      char **out, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_bucket b;
	struct kura_pool *pool = kura_pool_new(64 << 10);
	const char *text = NULL;
	enum kura_err r;

	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK) {
		r = sq_tx_begin(c, false, err);
		if (r == KURA_OK)
			r = sq_bucket_fetch(c, bucket_id, &b, err);
		if (r == KURA_OK && !b.has_lifecycle)
			r = kura_fail(err, KURA_ENOENT,
				      "bucket '%s' has no lifecycle", b.name);
		if (r == KURA_OK)
			r = text_read(c, &b, pool, &text, err);
		if (r == KURA_OK)
			r = sq_tx_end_read(c, err);
		else
			sq_tx_rollback(c);
		sq_conn_release(m, c);
	}
	if (r == KURA_OK) {
		*out = strdup(text);
		if (*out == NULL)
			r = kura_fail(err, KURA_ENOMEM, "out of memory");
	}
	kura_pool_free(pool);
	return r;
}

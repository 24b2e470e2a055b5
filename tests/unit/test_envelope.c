/*
 * test_envelope.c — DEK envelopes, bucket keys and the bucket-key cache.
 *
 * The key provider here is a test double: an ordinary struct kura_keys_ops
 * that keeps its KEKs in memory (sealing with kura_box), counts its calls
 * and can be told to fail any slot with a chosen error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kura/box.h"
#include "kura/crypt.h"
#include "kura/banned.h"

/* ---- the test-double provider ---- */

#define TD_MAX_KEKS 16

struct td {
	pthread_mutex_t lock;
	struct kura_secret *kek[TD_MAX_KEKS];
	int nkek;
	enum kura_err fail_create, fail_wrap, fail_unwrap;
	atomic_int creates, wraps, unwraps, destroys;
	unsigned unwrap_delay_us;	/* widen race windows */
};

static enum kura_err td_find(struct td *t, const char *id,
			     struct kura_secret **out, struct kura_error *err)
{
	int n = -1;
	if (sscanf(id, "td-%d", &n) != 1 || n < 0 || n >= TD_MAX_KEKS)
		return kura_fail(err, KURA_ENOENT, "no KEK '%s'", id);
	pthread_mutex_lock(&t->lock);
	struct kura_secret *k = n < t->nkek ? t->kek[n] : NULL;
	enum kura_err rc = KURA_OK;
	if (n >= t->nkek)
		rc = kura_fail(err, KURA_ENOENT, "no KEK '%s'", id);
	else if (k == NULL)
		rc = kura_fail(err, KURA_EKEY, "KEK '%s' destroyed", id);
	else if ((*out = kura_secret_dup(k)) == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "dup");
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static enum kura_err td_kek_create(void *priv, const char *label,
				   char id_out[KURA_KEK_ID_MAX],
				   struct kura_error *err)
{
	struct td *t = priv;
	atomic_fetch_add(&t->creates, 1);
	if (t->fail_create != KURA_OK)
		return kura_fail(err, t->fail_create, "injected kek_create failure");
	struct kura_secret *k = NULL;
	enum kura_err rc = kura_secret_random(32, &k, err);
	if (rc != KURA_OK)
		return rc;
	pthread_mutex_lock(&t->lock);
	if (t->nkek == TD_MAX_KEKS) {
		pthread_mutex_unlock(&t->lock);
		kura_secret_free(k);
		return kura_fail(err, KURA_ENOSPC, "test provider full");
	}
	int n = t->nkek++;
	t->kek[n] = k;
	pthread_mutex_unlock(&t->lock);
	snprintf(id_out, KURA_KEK_ID_MAX, "td-%d", n);
	return KURA_OK;
}

static enum kura_err td_wrap(void *priv, const char *kek_id,
			     const struct kura_secret *plain,
			     const uint8_t *aad, size_t aad_len,
			     uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
			     struct kura_error *err)
{
	struct td *t = priv;
	atomic_fetch_add(&t->wraps, 1);
	if (t->fail_wrap != KURA_OK)
		return kura_fail(err, t->fail_wrap, "injected wrap failure");
	struct kura_secret *k = NULL;
	enum kura_err rc = td_find(t, kek_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_box_seal(k, aad, aad_len, plain->data, plain->len, out, err);
	kura_secret_free(k);
	if (rc == KURA_OK)
		*out_len = plain->len + KURA_BOX_OVERHEAD;
	return rc;
}

static enum kura_err td_unwrap(void *priv, const char *kek_id,
			       const uint8_t *in, size_t in_len,
			       const uint8_t *aad, size_t aad_len,
			       struct kura_secret **out, struct kura_error *err)
{
	struct td *t = priv;
	atomic_fetch_add(&t->unwraps, 1);
	if (t->unwrap_delay_us) {
		struct timespec ts = { 0, (long)t->unwrap_delay_us * 1000 };
		nanosleep(&ts, NULL);
	}
	if (t->fail_unwrap != KURA_OK)
		return kura_fail(err, t->fail_unwrap, "injected unwrap failure");
	struct kura_secret *k = NULL;
	enum kura_err rc = td_find(t, kek_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_box_open_secret(k, aad, aad_len, in, in_len, out, err);
	kura_secret_free(k);
	return rc;
}

static enum kura_err td_kek_destroy(void *priv, const char *kek_id,
				    struct kura_error *err)
{
	struct td *t = priv;
	atomic_fetch_add(&t->destroys, 1);
	int n = -1;
	if (sscanf(kek_id, "td-%d", &n) != 1 || n < 0 || n >= TD_MAX_KEKS)
		return kura_fail(err, KURA_ENOENT, "no KEK '%s'", kek_id);
	pthread_mutex_lock(&t->lock);
	if (n < t->nkek) {
		kura_secret_free(t->kek[n]);
		t->kek[n] = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	return KURA_OK;
}

static const struct kura_keys_ops td_ops = {
	.name = "test-double",
	.caps = KURA_KEYS_CAP_DESTROY,
	.priv_size = sizeof(struct td),
	.kek_create = td_kek_create,
	.wrap = td_wrap,
	.unwrap = td_unwrap,
	.kek_destroy = td_kek_destroy,
};

/* The same provider without the optional destroy slot. */
static const struct kura_keys_ops td_ops_nodestroy = {
	.name = "test-double-nodestroy",
	.priv_size = sizeof(struct td),
	.kek_create = td_kek_create,
	.wrap = td_wrap,
	.unwrap = td_unwrap,
};

struct fixture {
	struct td td;
	struct kura_keys keys;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	pthread_mutex_init(&f->td.lock, NULL);
	f->keys.ops = &td_ops;
	f->keys.priv = &f->td;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < f->td.nkek; i++)
		kura_secret_free(f->td.kek[i]);
	pthread_mutex_destroy(&f->td.lock);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static struct kura_binding test_binding(void)
{
	struct kura_binding b = {
		.tenant_id = 42,
		.bucket_id = 0xdeadbeefcafef00du,
		.part_no = 0,
	};
	for (int i = 0; i < KURA_UID_LEN; i++)
		b.version_uid[i] = (uint8_t)(i * 17 + 1);
	return b;
}

static struct kura_secret *random_key(void)
{
	struct kura_secret *k = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_secret_random(32, &k, &err), KURA_OK);
	return k;
}

/* Create a bucket key for (tenant, bucket) through the fixture provider. */
struct bk {
	char kek_id[KURA_KEK_ID_MAX];
	uint8_t wrapped[KURA_WRAPPED_MAX];
	size_t wrapped_len;
};

static void make_bucket_key(struct fixture *f, uint64_t tenant,
			    uint64_t bucket, struct bk *out)
{
	struct kura_error err = { 0 };
	assert_int_equal(kura_bucket_key_create(&f->keys, tenant, bucket, "b",
						out->kek_id, out->wrapped,
						&out->wrapped_len, &err),
			 KURA_OK);
}

/* ---- DEKs ---- */

static void test_dek_new(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	struct kura_secret *a = NULL, *b = NULL;
	assert_int_equal(kura_dek_new(&a, &err), KURA_OK);
	assert_int_equal(kura_dek_new(&b, &err), KURA_OK);
	assert_int_equal(a->len, KURA_DEK_LEN);
	assert_int_equal(b->len, KURA_DEK_LEN);
	assert_memory_not_equal(a->data, b->data, KURA_DEK_LEN);
	kura_secret_free(a);
	kura_secret_free(b);
}

static void test_dek_wrap_roundtrip(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	struct kura_secret *bk = random_key();
	struct kura_secret *dek = NULL;
	assert_int_equal(kura_dek_new(&dek, &err), KURA_OK);
	struct kura_binding b = test_binding();
	uint8_t w[KURA_WRAPPED_DEK_LEN], w2[KURA_WRAPPED_DEK_LEN];
	assert_int_equal(kura_dek_wrap(bk, &b, dek, w, &err), KURA_OK);
	/* Random box nonce: wrapping twice differs. */
	assert_int_equal(kura_dek_wrap(bk, &b, dek, w2, &err), KURA_OK);
	assert_memory_not_equal(w, w2, sizeof(w));
	/* The DEK is not visible in the envelope. */
	for (size_t i = 0; i + 8 <= sizeof(w); i++)
		assert_memory_not_equal(w + i, dek->data, 8);

	struct kura_secret *back = NULL;
	assert_int_equal(kura_dek_unwrap(bk, &b, w, &back, &err), KURA_OK);
	assert_int_equal(back->len, KURA_DEK_LEN);
	assert_memory_equal(back->data, dek->data, KURA_DEK_LEN);
	kura_secret_free(back);
	back = NULL;
	assert_int_equal(kura_dek_unwrap(bk, &b, w2, &back, &err), KURA_OK);
	assert_memory_equal(back->data, dek->data, KURA_DEK_LEN);
	kura_secret_free(back);

	/* Envelope layout: box nonce (12) || ciphertext (32) || tag (16),
	 * opened here by hand with the documented 44-byte AAD. */
	uint8_t aad[44] = { 'K', 'U', 'R', 'A', 'D', 'E', 'K', '1',
			    0, 0, 0, 0, 0, 0, 0, 42,
			    0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d };
	memcpy(aad + 24, b.version_uid, KURA_UID_LEN);
	/* part_no 0: aad[40..44) stay zero */
	uint8_t plain[KURA_DEK_LEN];
	assert_int_equal(kura_box_open(bk, aad, sizeof(aad), w, sizeof(w), plain,
				       &err), KURA_OK);
	assert_memory_equal(plain, dek->data, KURA_DEK_LEN);
	kura_wipe(plain, sizeof(plain));

	kura_secret_free(dek);
	kura_secret_free(bk);
}

static void test_dek_binding_changes(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	struct kura_secret *bk = random_key();
	struct kura_secret *dek = NULL;
	assert_int_equal(kura_dek_new(&dek, &err), KURA_OK);
	struct kura_binding b = test_binding();
	uint8_t w[KURA_WRAPPED_DEK_LEN];
	assert_int_equal(kura_dek_wrap(bk, &b, dek, w, &err), KURA_OK);

	struct kura_binding bad[3 + 2 + KURA_UID_LEN];
	size_t nbad = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad[i] = b;
	bad[nbad++].tenant_id = 43;
	bad[nbad++].bucket_id ^= UINT64_C(1) << 63;
	bad[nbad++].part_no = 1;
	bad[nbad++].part_no = 10000;
	bad[nbad++].tenant_id = 0;
	for (int i = 0; i < KURA_UID_LEN; i++)
		bad[nbad++].version_uid[i] ^= 1;
	for (size_t i = 0; i < nbad; i++) {
		struct kura_secret *out = NULL;
		kura_error_clear(&err);
		assert_int_equal(kura_dek_unwrap(bk, &bad[i], w, &out, &err),
				 KURA_EINTEGRITY);
		assert_null(out);
	}
	/* Any flipped byte of the envelope. */
	for (size_t i = 0; i < sizeof(w); i++) {
		struct kura_secret *out = NULL;
		w[i] ^= 0x40;
		kura_error_clear(&err);
		assert_int_equal(kura_dek_unwrap(bk, &b, w, &out, &err),
				 KURA_EINTEGRITY);
		assert_null(out);
		w[i] ^= 0x40;
	}
	/* Another bucket key. */
	struct kura_secret *other = random_key();
	struct kura_secret *out = NULL;
	kura_error_clear(&err);
	assert_int_equal(kura_dek_unwrap(other, &b, w, &out, &err),
			 KURA_EINTEGRITY);
	assert_null(out);
	kura_secret_free(other);

	/* A wrong-sized DEK is refused, the output untouched. */
	struct kura_secret *small = kura_secret_new(16);
	uint8_t w2[KURA_WRAPPED_DEK_LEN];
	memset(w2, 0x5a, sizeof(w2));
	kura_error_clear(&err);
	assert_int_equal(kura_dek_wrap(bk, &b, small, w2, &err), KURA_EINVAL);
	for (size_t i = 0; i < sizeof(w2); i++)
		assert_int_equal(w2[i], 0x5a);
	kura_secret_free(small);

	kura_secret_free(dek);
	kura_secret_free(bk);
}

/* The wrapped DEK of docs/FORMAT.md §9 opens to the documented DEK. */
static void test_dek_format_vector(void **state)
{
	(void)state;
	uint8_t k[32];
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (uint8_t)(0x40 + i);
	struct kura_secret *bk = kura_secret_from(k, sizeof(k));
	struct kura_binding b = { .tenant_id = 1, .bucket_id = 2, .part_no = 0 };
	for (int i = 0; i < KURA_UID_LEN; i++)
		b.version_uid[i] = (uint8_t)(0xf0 + i);
	static const uint8_t wrapped[KURA_WRAPPED_DEK_LEN] = {
		0x2b, 0xe9, 0x38, 0xdb, 0x96, 0x5b, 0x4c, 0x40,
		0xb7, 0x45, 0xd7, 0xba, 0x54, 0xa0, 0xc3, 0x6e,
		0x49, 0x6e, 0x35, 0xe0, 0xac, 0xec, 0x90, 0x17,
		0x3e, 0x7b, 0x5e, 0x32, 0x2f, 0x73, 0xb2, 0xdc,
		0xc3, 0x49, 0x1d, 0x66, 0xe6, 0x43, 0x93, 0x3c,
		0x40, 0xdc, 0x16, 0x3d, 0x24, 0x23, 0x8b, 0xd0,
		0xfc, 0x01, 0x02, 0x05, 0xcf, 0xde, 0xaf, 0xae,
		0xd4, 0x79, 0x12, 0x42,
	};
	struct kura_error err = { 0 };
	struct kura_secret *dek = NULL;
	assert_int_equal(kura_dek_unwrap(bk, &b, wrapped, &dek, &err), KURA_OK);
	for (size_t i = 0; i < KURA_DEK_LEN; i++)
		assert_int_equal(dek->data[i], i);
	kura_secret_free(dek);
	kura_secret_free(bk);
}

/* ---- bucket keys ---- */

static void test_bucket_key_aad(void **state)
{
	(void)state;
	uint8_t aad[KURA_BUCKET_KEY_AAD_LEN];
	memset(aad, 0xff, sizeof(aad));
	kura_bucket_key_aad(0x0102030405060708u, 0x1112131415161718u, aad);
	static const uint8_t want[KURA_BUCKET_KEY_AAD_LEN] = {
		'k', 'u', 'r', 'a', '-', 'b', 'k', '1', 0, 0,
		1, 2, 3, 4, 5, 6, 7, 8,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		0, 0, 0, 0, 0, 0, 0, 0,
	};
	assert_int_equal(sizeof(want), 34);
	assert_memory_equal(aad, want, sizeof(want));
}

static void test_bucket_key_create(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	struct bk k;
	make_bucket_key(f, 7, 99, &k);
	assert_string_equal(k.kek_id, "td-0");
	assert_int_equal(k.wrapped_len, 32 + KURA_BOX_OVERHEAD);
	assert_int_equal(atomic_load(&f->td.creates), 1);
	assert_int_equal(atomic_load(&f->td.wraps), 1);

	/* The provider opens it only with this bucket's AAD. */
	uint8_t aad[KURA_BUCKET_KEY_AAD_LEN];
	struct kura_secret *key = NULL;
	kura_bucket_key_aad(7, 99, aad);
	assert_int_equal(td_ops.unwrap(&f->td, k.kek_id, k.wrapped, k.wrapped_len,
				       aad, sizeof(aad), &key, &err), KURA_OK);
	assert_int_equal(key->len, 32);
	kura_secret_free(key);
	key = NULL;
	kura_bucket_key_aad(7, 100, aad);
	assert_int_equal(td_ops.unwrap(&f->td, k.kek_id, k.wrapped, k.wrapped_len,
				       aad, sizeof(aad), &key, &err),
			 KURA_EINTEGRITY);
	kura_bucket_key_aad(8, 99, aad);
	kura_error_clear(&err);
	assert_int_equal(td_ops.unwrap(&f->td, k.kek_id, k.wrapped, k.wrapped_len,
				       aad, sizeof(aad), &key, &err),
			 KURA_EINTEGRITY);
	assert_null(key);

	/* Two buckets get two KEKs and two different keys. */
	struct bk k2;
	make_bucket_key(f, 7, 100, &k2);
	assert_string_equal(k2.kek_id, "td-1");
	assert_memory_not_equal(k.wrapped, k2.wrapped, k.wrapped_len);
}

static void test_bucket_key_create_failures(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	char id[KURA_KEK_ID_MAX] = "untouched";
	uint8_t w[KURA_WRAPPED_MAX] = { 0x77 };
	size_t wlen = 12345;

	/* kek_create fails: nothing to destroy. */
	f->td.fail_create = KURA_EKEY;
	assert_int_equal(kura_bucket_key_create(&f->keys, 1, 2, "x", id, w,
						&wlen, &err), KURA_EKEY);
	assert_int_equal(atomic_load(&f->td.destroys), 0);
	f->td.fail_create = KURA_OK;

	/* wrap fails after the KEK exists: it is destroyed, the error kept. */
	f->td.fail_wrap = KURA_EIO;
	kura_error_clear(&err);
	assert_int_equal(kura_bucket_key_create(&f->keys, 1, 2, "x", id, w,
						&wlen, &err), KURA_EIO);
	assert_int_equal(err.code, KURA_EIO);
	assert_int_equal(atomic_load(&f->td.creates), 2);
	assert_int_equal(atomic_load(&f->td.destroys), 1);
	assert_null(f->td.kek[0]);	/* KEK td-0 is gone */

	/* Outputs are written only on success. */
	assert_string_equal(id, "untouched");
	assert_int_equal(w[0], 0x77);
	assert_int_equal(wlen, 12345);

	/* A provider without kek_destroy fails the same way. */
	struct kura_keys nd = { .ops = &td_ops_nodestroy, .priv = &f->td };
	kura_error_clear(&err);
	assert_int_equal(kura_bucket_key_create(&nd, 1, 2, "x", id, w, &wlen,
						&err), KURA_EIO);
	assert_int_equal(atomic_load(&f->td.destroys), 1);
	f->td.fail_wrap = KURA_OK;
	kura_error_clear(&err);
	assert_int_equal(kura_bucket_key_create(&nd, 1, 2, "x", id, w, &wlen,
						&err), KURA_OK);
	assert_string_equal(id, "td-2");
}

/* ---- key cache ---- */

static void test_keycache_hit_and_evict(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	struct bk k;
	make_bucket_key(f, 5, 500, &k);
	struct kura_keycache *kc = NULL;
	assert_int_equal(kura_keycache_new(&f->keys, 60000, &kc, &err), KURA_OK);

	struct kura_secret *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(kura_keycache_get(kc, 500, 5, 500, k.kek_id, k.wrapped,
					   k.wrapped_len, &a, &err), KURA_OK);
	assert_int_equal(atomic_load(&f->td.unwraps), 1);
	assert_int_equal(kura_keycache_get(kc, 500, 5, 500, k.kek_id, k.wrapped,
					   k.wrapped_len, &b, &err), KURA_OK);
	assert_int_equal(atomic_load(&f->td.unwraps), 1);	/* a hit */
	assert_int_equal(a->len, 32);
	assert_ptr_not_equal(a, b);				/* a copy */
	assert_memory_equal(a->data, b->data, 32);

	/* The key is the one the envelope was made with: a DEK wrapped under
	 * it opens. */
	struct kura_binding bind = test_binding();
	struct kura_secret *dek = NULL, *dek2 = NULL;
	uint8_t w[KURA_WRAPPED_DEK_LEN];
	assert_int_equal(kura_dek_new(&dek, &err), KURA_OK);
	assert_int_equal(kura_dek_wrap(a, &bind, dek, w, &err), KURA_OK);
	kura_secret_free(a);	/* the cache's own copy is unaffected */
	assert_int_equal(kura_dek_unwrap(b, &bind, w, &dek2, &err), KURA_OK);
	assert_memory_equal(dek->data, dek2->data, 32);

	/* Evict: the next get asks the provider again. */
	kura_keycache_evict(kc, 500);
	kura_keycache_evict(kc, 12345);	/* absent: no-op */
	assert_int_equal(kura_keycache_get(kc, 500, 5, 500, k.kek_id, k.wrapped,
					   k.wrapped_len, &c, &err), KURA_OK);
	assert_int_equal(atomic_load(&f->td.unwraps), 2);
	assert_memory_equal(b->data, c->data, 32);

	/* A re-keyed bucket (new KEK and wrapped key) is not served the
	 * cached key. */
	struct bk k2;
	make_bucket_key(f, 5, 500, &k2);
	struct kura_secret *d = NULL;
	assert_int_equal(kura_keycache_get(kc, 500, 5, 500, k2.kek_id, k2.wrapped,
					   k2.wrapped_len, &d, &err), KURA_OK);
	assert_int_equal(atomic_load(&f->td.unwraps), 3);
	assert_memory_not_equal(c->data, d->data, 32);

	kura_secret_free(b);
	kura_secret_free(c);
	kura_secret_free(d);
	kura_secret_free(dek);
	kura_secret_free(dek2);
	kura_keycache_free(kc);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void test_keycache_ttl(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	struct bk k;
	make_bucket_key(f, 1, 1, &k);
	struct kura_keycache *kc = NULL;
	assert_int_equal(kura_keycache_new(&f->keys, 40, &kc, &err), KURA_OK);
	struct kura_secret *a = NULL;
	assert_int_equal(kura_keycache_get(kc, 1, 1, 1, k.kek_id, k.wrapped,
					   k.wrapped_len, &a, &err), KURA_OK);
	kura_secret_free(a);
	assert_int_equal(kura_keycache_get(kc, 1, 1, 1, k.kek_id, k.wrapped,
					   k.wrapped_len, &a, &err), KURA_OK);
	kura_secret_free(a);
	int before = atomic_load(&f->td.unwraps);
	assert_in_range(before, 1, 2);	/* 2 only on a very slow machine */
	sleep_ms(80);
	assert_int_equal(kura_keycache_get(kc, 1, 1, 1, k.kek_id, k.wrapped,
					   k.wrapped_len, &a, &err), KURA_OK);
	kura_secret_free(a);
	assert_int_equal(atomic_load(&f->td.unwraps), before + 1);
	kura_keycache_free(kc);

	/* ttl 0: nothing is cached. */
	assert_int_equal(kura_keycache_new(&f->keys, 0, &kc, &err), KURA_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kura_keycache_get(kc, 1, 1, 1, k.kek_id, k.wrapped,
						   k.wrapped_len, &a, &err),
				 KURA_OK);
		kura_secret_free(a);
	}
	assert_int_equal(atomic_load(&f->td.unwraps), before + 4);
	kura_keycache_free(kc);
}

static void test_keycache_provider_failure(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	struct bk k;
	make_bucket_key(f, 3, 33, &k);
	struct kura_keycache *kc = NULL;
	assert_int_equal(kura_keycache_new(&f->keys, 60000, &kc, &err), KURA_OK);
	struct kura_secret *sentinel = (struct kura_secret *)&err;
	struct kura_secret *out = sentinel;

	static const enum kura_err injected[] = { KURA_EKEY, KURA_EINTEGRITY,
						  KURA_ENOENT };
	for (size_t i = 0; i < 3; i++) {
		f->td.fail_unwrap = injected[i];
		kura_error_clear(&err);
		assert_int_equal(kura_keycache_get(kc, 33, 3, 33, k.kek_id, k.wrapped,
						   k.wrapped_len, &out, &err),
				 injected[i]);
		assert_ptr_equal(out, sentinel);
	}
	f->td.fail_unwrap = KURA_OK;

	/* Real failures from the provider: unknown KEK, wrong binding,
	 * tampered wrapped key, destroyed KEK. */
	kura_error_clear(&err);
	assert_int_equal(kura_keycache_get(kc, 33, 3, 33, "td-15", k.wrapped,
					   k.wrapped_len, &out, &err), KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(kura_keycache_get(kc, 33, 4, 33, k.kek_id, k.wrapped,
					   k.wrapped_len, &out, &err),
			 KURA_EINTEGRITY);
	kura_error_clear(&err);
	assert_int_equal(kura_keycache_get(kc, 34, 3, 34, k.kek_id, k.wrapped,
					   k.wrapped_len, &out, &err),
			 KURA_EINTEGRITY);
	k.wrapped[20] ^= 1;
	kura_error_clear(&err);
	assert_int_equal(kura_keycache_get(kc, 33, 3, 33, k.kek_id, k.wrapped,
					   k.wrapped_len, &out, &err),
			 KURA_EINTEGRITY);
	k.wrapped[20] ^= 1;
	/* Nothing was cached by the failures: this one unwraps and works. */
	int before = atomic_load(&f->td.unwraps);
	assert_int_equal(kura_keycache_get(kc, 33, 3, 33, k.kek_id, k.wrapped,
					   k.wrapped_len, &out, &err), KURA_OK);
	assert_int_equal(atomic_load(&f->td.unwraps), before + 1);
	kura_secret_free(out);
	out = sentinel;
	/* Destroyed KEK (crypto-shredding) after evict: KURA_EKEY. */
	assert_int_equal(td_kek_destroy(&f->td, k.kek_id, &err), KURA_OK);
	kura_keycache_evict(kc, 33);
	kura_error_clear(&err);
	assert_int_equal(kura_keycache_get(kc, 33, 3, 33, k.kek_id, k.wrapped,
					   k.wrapped_len, &out, &err), KURA_EKEY);
	assert_ptr_equal(out, sentinel);
	/* Malformed references never reach the provider. */
	kura_error_clear(&err);
	assert_int_equal(kura_keycache_get(kc, 33, 3, 33, k.kek_id, k.wrapped, 0,
					   &out, &err), KURA_EINVAL);
	kura_keycache_free(kc);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NBUCKETS 4
#define NITER 2000

struct conc {
	struct kura_keycache *kc;
	struct bk bk[NBUCKETS];
	uint8_t expect[NBUCKETS][32];
	int seed;
	atomic_int bad;
};

struct worker {
	struct conc *c;
	int id;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conc *c = w->c;
	unsigned r = (unsigned)w->id * 2654435761u + 1;
	for (int i = 0; i < NITER; i++) {
		r = r * 1103515245u + 12345u;
		int b = (int)((r >> 16) % NBUCKETS);
		if ((r >> 8) % 97 == 0) {
			kura_keycache_evict(c->kc, (uint64_t)b + 1000);
			continue;
		}
		struct kura_error err = { 0 };
		struct kura_secret *k = NULL;
		if (kura_keycache_get(c->kc, (uint64_t)b + 1000, 9, (uint64_t)b + 1000,
				      c->bk[b].kek_id, c->bk[b].wrapped,
				      c->bk[b].wrapped_len, &k, &err) != KURA_OK ||
		    k->len != 32 || memcmp(k->data, c->expect[b], 32) != 0)
			atomic_fetch_add(&c->bad, 1);
		kura_secret_free(k);
	}
	return NULL;
}

static void test_keycache_concurrent(void **state)
{
	struct fixture *f = *state;
	struct kura_error err = { 0 };
	struct conc *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	uint8_t aad[KURA_BUCKET_KEY_AAD_LEN];
	for (int b = 0; b < NBUCKETS; b++) {
		make_bucket_key(f, 9, (uint64_t)b + 1000, &c->bk[b]);
		struct kura_secret *k = NULL;
		kura_bucket_key_aad(9, (uint64_t)b + 1000, aad);
		assert_int_equal(td_ops.unwrap(&f->td, c->bk[b].kek_id,
					       c->bk[b].wrapped,
					       c->bk[b].wrapped_len, aad,
					       sizeof(aad), &k, &err), KURA_OK);
		memcpy(c->expect[b], k->data, 32);
		kura_secret_free(k);
	}
	f->td.unwrap_delay_us = 200;
	int before = atomic_load(&f->td.unwraps);
	assert_int_equal(kura_keycache_new(&f->keys, 60000, &c->kc, &err),
			 KURA_OK);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ c, i };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]),
				 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&c->bad), 0);
	int unwraps = atomic_load(&f->td.unwraps) - before;
	/* Hits dominate: far fewer provider calls than gets. */
	assert_in_range(unwraps, NBUCKETS, NTHREADS * NITER / 4);
	print_message("# %d threads x %d gets: %d provider unwraps\n", NTHREADS,
		      NITER, unwraps);
	kura_keycache_free(c->kc);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dek_new),
		cmocka_unit_test(test_dek_wrap_roundtrip),
		cmocka_unit_test(test_dek_binding_changes),
		cmocka_unit_test(test_dek_format_vector),
		cmocka_unit_test(test_bucket_key_aad),
		cmocka_unit_test_setup_teardown(test_bucket_key_create, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bucket_key_create_failures,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_keycache_hit_and_evict,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_keycache_ttl, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keycache_provider_failure,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_keycache_concurrent, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_keys_local.c — the local key provider (src/keys/local.c) through the
 * keys.h contract: file creation and permissions, wrap/unwrap and their
 * error codes, persistence, sharing a keystore between instances, that
 * nothing secret is stored in the clear, and concurrent use.
 *
 * Each test works in its own mkdtemp directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kura/box.h"
#include "kura/config.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/keys.h"
#include "kura/secret.h"
#include "rmtree.h"
#include "kura/banned.h"

struct fixture {
	char dir[64];
	char master[PATH_MAX];
	char keystore[PATH_MAX];
	struct kura_config *cfg;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kura-keys-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->master, sizeof(f->master), "%s/keys/master.key", f->dir);
	snprintf(f->keystore, sizeof(f->keystore), "%s/keys/keystore", f->dir);
	assert_int_equal(kura_config_new(&f->cfg, NULL), KURA_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kura_config_free(f->cfg);
	rmtree(f->dir);
	free(f);
	return 0;
}

static struct kura_keys *open_ok(struct fixture *f)
{
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_open(f->cfg, f->dir, &k, &err);
	if (rc != KURA_OK)
		fail_msg("open: %s (%s)", kura_errname(rc), err.msg);
	assert_non_null(k);
	return k;
}

static void create_kek(struct kura_keys *k, const char *label,
		       char id[KURA_KEK_ID_MAX])
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_create(k, label, id, &err);
	if (rc != KURA_OK)
		fail_msg("kek_create: %s (%s)", kura_errname(rc), err.msg);
}

static const uint8_t aad1[] = "bucket-1-aad";
static const uint8_t aad2[] = "bucket-2-aad";

static struct kura_secret *test_key(uint8_t seed)
{
	struct kura_secret *s = kura_secret_new(32);
	assert_non_null(s);
	for (size_t i = 0; i < 32; i++)
		s->data[i] = (uint8_t)(seed + 7 * i);
	return s;
}

static enum kura_err do_wrap(struct kura_keys *k, const char *id,
			     const struct kura_secret *plain,
			     const uint8_t *aad, size_t aad_len,
			     uint8_t out[KURA_WRAPPED_MAX], size_t *out_len)
{
	struct kura_error err = { 0 };
	return kura_keys_wrap(k, id, plain, aad, aad_len, out, out_len, &err);
}

static enum kura_err do_unwrap(struct kura_keys *k, const char *id,
			       const uint8_t *in, size_t in_len,
			       const uint8_t *aad, size_t aad_len,
			       struct kura_secret **out)
{
	struct kura_error err = { 0 };
	return kura_keys_unwrap(k, id, in, in_len, aad, aad_len, out, &err);
}

static void check_mode(const char *path, mode_t want)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, want);
}

static void test_first_open_creates_files(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = open_ok(f);
	assert_string_equal(k->ops->name, "local");
	assert_true(k->ops->caps & KURA_KEYS_CAP_DESTROY);
	assert_false(k->ops->caps & KURA_KEYS_CAP_HARDWARE);
	assert_false(k->ops->caps & KURA_KEYS_CAP_SIGN);
	check_mode(f->master, 0600);
	check_mode(f->keystore, 0600);
	char keydir[PATH_MAX];
	snprintf(keydir, sizeof(keydir), "%s/keys", f->dir);
	check_mode(keydir, 0700);
	struct stat st;
	assert_int_equal(stat(f->master, &st), 0);
	assert_int_equal(st.st_size, 32);
	kura_keys_close(k);

	/* A second open reuses the same master key. */
	char *before = NULL, *after = NULL;
	size_t n1 = 0, n2 = 0;
	assert_int_equal(kura_read_file(f->master, 64, &before, &n1, NULL),
			 KURA_OK);
	k = open_ok(f);
	kura_keys_close(k);
	assert_int_equal(kura_read_file(f->master, 64, &after, &n2, NULL),
			 KURA_OK);
	assert_int_equal(n1, 32);
	assert_int_equal(n2, 32);
	assert_memory_equal(before, after, 32);
	free(before);
	free(after);
	kura_keys_close(NULL);
}

static void test_configured_paths(void **state)
{
	struct fixture *f = *state;
	char mk[PATH_MAX], ks[PATH_MAX];
	snprintf(mk, sizeof(mk), "%s/other-media/mk", f->dir);
	snprintf(ks, sizeof(ks), "%s/ks/store", f->dir);
	assert_int_equal(kura_config_set(f->cfg, "keys", "master_key_file", mk,
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(f->cfg, "keys", "keystore_file", ks,
					 NULL),
			 KURA_OK);
	struct kura_keys *k = open_ok(f);
	kura_keys_close(k);
	check_mode(mk, 0600);
	check_mode(ks, 0600);
	assert_int_equal(access(f->master, F_OK), -1);
}

static void test_unknown_provider(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_config_set(f->cfg, "keys", "provider", "hsm9000",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_keys_open(f->cfg, f->dir, &k, &err),
			 KURA_ECONFIG);
	assert_null(k);
	assert_non_null(strstr(err.msg, "hsm9000"));
	assert_non_null(strstr(err.msg, "local"));
}

static enum kura_err open_rc(struct fixture *f, struct kura_error *err)
{
	struct kura_keys *k = NULL;
	enum kura_err rc = kura_keys_open(f->cfg, f->dir, &k, err);
	if (rc == KURA_OK)
		kura_keys_close(k);
	return rc;
}

static void test_master_key_checks(void **state)
{
	struct fixture *f = *state;
	kura_keys_close(open_ok(f));
	struct kura_error err = { 0 };

	assert_int_equal(chmod(f->master, 0644), 0);
	assert_int_equal(open_rc(f, &err), KURA_EPERM);
	assert_non_null(strstr(err.msg, f->master));
	assert_non_null(strstr(err.msg, "0644"));

	kura_error_clear(&err);
	assert_int_equal(chmod(f->master, 0620), 0);
	assert_int_equal(open_rc(f, &err), KURA_EPERM);

	assert_int_equal(chmod(f->master, 0400), 0);
	assert_int_equal(open_rc(f, NULL), KURA_OK);
	assert_int_equal(chmod(f->master, 0600), 0);

	if (geteuid() == 0) {
		kura_error_clear(&err);
		assert_int_equal(chown(f->master, 12345, 12345), 0);
		assert_int_equal(open_rc(f, &err), KURA_EPERM);
		assert_non_null(strstr(err.msg, "owned"));
		assert_int_equal(chown(f->master, 0, 0), 0);
	}

	/* Wrong size. */
	assert_int_equal(truncate(f->master, 31), 0);
	kura_error_clear(&err);
	assert_int_equal(open_rc(f, &err), KURA_EPERM);
	assert_non_null(strstr(err.msg, "31 bytes"));
}

static void test_missing_master_with_keystore(void **state)
{
	struct fixture *f = *state;
	kura_keys_close(open_ok(f));
	assert_int_equal(unlink(f->master), 0);
	struct kura_error err = { 0 };
	assert_int_equal(open_rc(f, &err), KURA_EKEY);
	/* And no new master key was made behind our back. */
	assert_int_equal(access(f->master, F_OK), -1);
}

static void test_wrong_master_key(void **state)
{
	struct fixture *f = *state;
	kura_keys_close(open_ok(f));
	uint8_t other[32];
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(kura_write_file_atomic(f->master, other, 32, 0600,
						NULL),
			 KURA_OK);
	struct kura_error err = { 0 };
	assert_int_equal(open_rc(f, &err), KURA_EINTEGRITY);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = open_ok(f);
	char id[KURA_KEK_ID_MAX];
	create_kek(k, "tenant 1 / bucket photos", id);
	assert_int_equal(strlen(id), 38);
	assert_memory_equal(id, "local-", 6);
	for (size_t i = 6; i < 38; i++)
		assert_non_null(strchr("0123456789abcdef", id[i]));

	char id2[KURA_KEK_ID_MAX];
	create_kek(k, NULL, id2);
	assert_string_not_equal(id, id2);

	static const size_t lens[] = { 1, 16, 32, 64 };
	for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
		struct kura_secret *plain = kura_secret_new(lens[t]);
		assert_non_null(plain);
		for (size_t i = 0; i < lens[t]; i++)
			plain->data[i] = (uint8_t)(i * 13 + t);
		uint8_t w[KURA_WRAPPED_MAX];
		size_t wl = 0;
		assert_int_equal(do_wrap(k, id, plain, aad1, sizeof(aad1), w,
					 &wl),
				 KURA_OK);
		assert_int_equal(wl, 1 + lens[t] + KURA_BOX_OVERHEAD);
		assert_int_equal(w[0], 0x01);
		struct kura_secret *back = NULL;
		assert_int_equal(do_unwrap(k, id, w, wl, aad1, sizeof(aad1),
					   &back),
				 KURA_OK);
		assert_int_equal(back->len, lens[t]);
		assert_memory_equal(back->data, plain->data, lens[t]);
		kura_secret_free(back);
		/* Under the other KEK it does not open. */
		back = NULL;
		assert_int_equal(do_unwrap(k, id2, w, wl, aad1, sizeof(aad1),
					   &back),
				 KURA_EINTEGRITY);
		assert_null(back);
		kura_secret_free(plain);
	}

	/* Empty aad works too. */
	struct kura_secret *plain = test_key(1);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wl = 0;
	struct kura_secret *back = NULL;
	assert_int_equal(do_wrap(k, id2, plain, NULL, 0, w, &wl), KURA_OK);
	assert_int_equal(do_unwrap(k, id2, w, wl, NULL, 0, &back), KURA_OK);
	assert_memory_equal(back->data, plain->data, 32);
	kura_secret_free(back);

	/* Bad plaintext sizes. */
	struct kura_secret *big = kura_secret_new(65);
	assert_int_equal(do_wrap(k, id, big, NULL, 0, w, &wl), KURA_EINVAL);
	assert_int_equal(do_wrap(k, id, NULL, NULL, 0, w, &wl), KURA_EINVAL);
	kura_secret_free(big);
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_error_codes(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = open_ok(f);
	char id[KURA_KEK_ID_MAX], other[KURA_KEK_ID_MAX];
	create_kek(k, "a", id);
	create_kek(k, "b", other);
	struct kura_secret *plain = test_key(9);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wl = 0;
	struct kura_secret *back = NULL;
	assert_int_equal(do_wrap(k, id, plain, aad1, sizeof(aad1), w, &wl),
			 KURA_OK);

	/* Wrong aad, shorter aad, no aad. */
	assert_int_equal(do_unwrap(k, id, w, wl, aad2, sizeof(aad2), &back),
			 KURA_EINTEGRITY);
	assert_int_equal(do_unwrap(k, id, w, wl, aad1, sizeof(aad1) - 1, &back),
			 KURA_EINTEGRITY);
	assert_int_equal(do_unwrap(k, id, w, wl, NULL, 0, &back),
			 KURA_EINTEGRITY);
	assert_null(back);

	/* Every single flipped bit, including the version byte. */
	for (size_t i = 0; i < wl; i++) {
		uint8_t t[KURA_WRAPPED_MAX];
		memcpy(t, w, wl);
		t[i] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(do_unwrap(k, id, t, wl, aad1, sizeof(aad1),
					   &back),
				 KURA_EINTEGRITY);
		assert_null(back);
	}
	/* Truncated, extended, empty. */
	assert_int_equal(do_unwrap(k, id, w, wl - 1, aad1, sizeof(aad1), &back),
			 KURA_EINTEGRITY);
	assert_int_equal(do_unwrap(k, id, w, 1 + KURA_BOX_OVERHEAD, aad1,
				   sizeof(aad1), &back),
			 KURA_EINTEGRITY);
	assert_int_equal(do_unwrap(k, id, w, 0, aad1, sizeof(aad1), &back),
			 KURA_EINTEGRITY);
	uint8_t longer[KURA_WRAPPED_MAX] = { 0 };
	memcpy(longer, w, wl);
	assert_int_equal(do_unwrap(k, id, longer, wl + 1, aad1, sizeof(aad1),
				   &back),
			 KURA_EINTEGRITY);

	/* Unknown ids: well-formed but absent, malformed, NULL. */
	static const char *const unknown[] = {
		"local-00000000000000000000000000000000",
		"local-0000000000000000000000000000000",
		"local-0000000000000000000000000000000000",
		"local-ABCDEF00000000000000000000000000",
		"pkcs11-1234",
		"",
	};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_int_equal(do_unwrap(k, unknown[i], w, wl, aad1,
					   sizeof(aad1), &back),
				 KURA_ENOENT);
		assert_int_equal(do_wrap(k, unknown[i], plain, NULL, 0, w + 0,
					 &(size_t){ 0 }),
				 KURA_ENOENT);
	}
	struct kura_error err = { 0 };
	assert_int_equal(kura_keys_kek_destroy(k, unknown[0], &err),
			 KURA_ENOENT);

	/* Destroyed: unwrap and wrap say KEK unavailable, not unknown. */
	kura_error_clear(&err);
	assert_int_equal(kura_keys_kek_destroy(k, id, &err), KURA_OK);
	assert_int_equal(do_unwrap(k, id, w, wl, aad1, sizeof(aad1), &back),
			 KURA_EKEY);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_unwrap(k, id, w, wl, aad1, sizeof(aad1),
					  &back, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "destroyed"));
	uint8_t w2[KURA_WRAPPED_MAX];
	size_t wl2 = 0;
	assert_int_equal(do_wrap(k, id, plain, aad1, sizeof(aad1), w2, &wl2),
			 KURA_EKEY);
	/* Destroying twice is fine; the other KEK is untouched. */
	assert_int_equal(kura_keys_kek_destroy(k, id, NULL), KURA_OK);
	assert_int_equal(do_wrap(k, other, plain, aad1, sizeof(aad1), w2, &wl2),
			 KURA_OK);

	/* Bad labels. */
	char lab[200];
	memset(lab, 'x', sizeof(lab) - 1);
	lab[sizeof(lab) - 1] = '\0';
	char nid[KURA_KEK_ID_MAX];
	assert_int_equal(kura_keys_kek_create(k, lab, nid, NULL), KURA_EINVAL);
	lab[128] = '\0';
	assert_int_equal(kura_keys_kek_create(k, lab, nid, NULL), KURA_OK);
	assert_int_equal(kura_keys_kek_create(k, "tab\there", nid, NULL),
			 KURA_EINVAL);
	assert_int_equal(kura_keys_kek_create(k, "\xff\xfe", nid, NULL),
			 KURA_EINVAL);

	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_reopen_sees_keks(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = open_ok(f);
	char ids[40][KURA_KEK_ID_MAX];
	uint8_t w[40][KURA_WRAPPED_MAX];
	size_t wl[40];
	struct kura_secret *plain = test_key(3);
	/* Long labels: entries of ~186 bytes, so several chunks. */
	for (int i = 0; i < 40; i++) {
		char label[129];
		memset(label, 'a' + i % 26, 128);
		label[128] = '\0';
		create_kek(k, label, ids[i]);
		assert_int_equal(do_wrap(k, ids[i], plain, aad1, sizeof(aad1),
					 w[i], &wl[i]),
				 KURA_OK);
	}
	assert_int_equal(kura_keys_kek_destroy(k, ids[7], NULL), KURA_OK);
	kura_keys_close(k);

	k = open_ok(f);
	for (int i = 0; i < 40; i++) {
		struct kura_secret *back = NULL;
		enum kura_err rc = do_unwrap(k, ids[i], w[i], wl[i], aad1,
					     sizeof(aad1), &back);
		if (i == 7) {
			assert_int_equal(rc, KURA_EKEY);
			continue;
		}
		assert_int_equal(rc, KURA_OK);
		assert_memory_equal(back->data, plain->data, 32);
		kura_secret_free(back);
	}
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_second_instance(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *a = open_ok(f);
	struct kura_keys *b = open_ok(f);
	char ida[KURA_KEK_ID_MAX], idb[KURA_KEK_ID_MAX], ida2[KURA_KEK_ID_MAX];
	create_kek(a, "from a", ida);
	create_kek(b, "from b", idb); /* b must not lose a's KEK */
	struct kura_secret *plain = test_key(5);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wl = 0;
	struct kura_secret *back = NULL;

	/* a has never heard of idb: found after a reload on the miss. */
	assert_int_equal(do_wrap(b, idb, plain, aad1, sizeof(aad1), w, &wl),
			 KURA_OK);
	assert_int_equal(do_unwrap(a, idb, w, wl, aad1, sizeof(aad1), &back),
			 KURA_OK);
	assert_memory_equal(back->data, plain->data, 32);
	kura_secret_free(back);

	/* a writes again after b did: nothing of b's may be lost. */
	create_kek(a, "from a again", ida2);
	/* b destroys a's first KEK; a notices on its next write or reopen. */
	assert_int_equal(kura_keys_kek_destroy(b, ida, NULL), KURA_OK);

	struct kura_keys *c = open_ok(f);
	assert_int_equal(do_wrap(c, ida2, plain, NULL, 0, w, &wl), KURA_OK);
	assert_int_equal(do_wrap(c, idb, plain, NULL, 0, w, &wl), KURA_OK);
	assert_int_equal(do_wrap(c, ida, plain, NULL, 0, w, &wl), KURA_EKEY);
	/* A still-unknown id after the reload is ENOENT. */
	assert_int_equal(do_wrap(a, "local-0123456789abcdef0123456789abcdef",
				 plain, NULL, 0, w, &wl),
			 KURA_ENOENT);
	kura_secret_free(plain);
	kura_keys_close(c);
	kura_keys_close(b);
	kura_keys_close(a);
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle,
		     size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return true;
	return false;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Decrypt the first chunk as the format comment of local.c describes, take
 * the first KEK's bytes from it, prove they are the KEK (they open what the
 * provider wrapped), then check neither they nor the master key appear in
 * the keystore file. */
static void test_nothing_in_clear(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = open_ok(f);
	char id[KURA_KEK_ID_MAX];
	create_kek(k, "LABEL-IN-CLEAR?", id);
	struct kura_secret *plain = test_key(11);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wl = 0;
	assert_int_equal(do_wrap(k, id, plain, aad1, sizeof(aad1), w, &wl),
			 KURA_OK);
	kura_keys_close(k);

	char *mk = NULL, *ks = NULL;
	size_t mkl = 0, ksl = 0;
	assert_int_equal(kura_read_file(f->master, 64, &mk, &mkl, NULL),
			 KURA_OK);
	assert_int_equal(kura_read_file(f->keystore, 1 << 20, &ks, &ksl, NULL),
			 KURA_OK);
	assert_int_equal(mkl, 32);
	const uint8_t *file = (const uint8_t *)ks;
	assert_true(ksl > 34 + KURA_BOX_OVERHEAD);
	assert_memory_equal(file, "KURAKEYS\x01", 9);
	assert_int_equal(be32(file + 12), 1);

	struct kura_secret *master = kura_secret_from(mk, 32);
	size_t slen = (size_t)file[32] << 8 | file[33];
	assert_int_equal(34 + slen, ksl);
	uint8_t aad[40];
	memcpy(aad, "kura-keystore-v1", 16);
	memcpy(aad + 16, file + 16, 16);
	memset(aad + 32, 0, 4);
	memcpy(aad + 36, file + 12, 4);
	struct kura_secret *chunk = NULL;
	assert_int_equal(kura_box_open_secret(master, aad, sizeof(aad),
					      file + 34, slen, &chunk, NULL),
			 KURA_OK);
	/* count u16 | id 16 | created 8 | state 1 | label_len 1 | label | key 32 */
	const uint8_t *p = chunk->data;
	assert_int_equal(p[0] << 8 | p[1], 1);
	uint8_t rawid[16];
	assert_int_equal(kura_hex_decode(id + 6, 32, rawid, 16), KURA_OK);
	assert_memory_equal(p + 2, rawid, 16);
	assert_int_equal(p[2 + 24], 1);
	size_t ll = p[2 + 25];
	assert_int_equal(ll, strlen("LABEL-IN-CLEAR?"));
	assert_int_equal(chunk->len, 2 + 26 + ll + 32);
	struct kura_secret *kek = kura_secret_from(p + 2 + 26 + ll, 32);

	struct kura_secret *back = NULL;
	assert_int_equal(kura_box_open_secret(kek, aad1, sizeof(aad1), w + 1,
					      wl - 1, &back, NULL),
			 KURA_OK);
	assert_memory_equal(back->data, plain->data, 32);

	assert_false(contains(file, ksl, kek->data, 32));
	assert_false(contains(file, ksl, kek->data, 8));
	assert_false(contains(file, ksl, (const uint8_t *)mk, 32));
	assert_false(
		contains(file, ksl, (const uint8_t *)"LABEL-IN-CLEAR?", 15));

	/* Flipping a byte of the sealed part makes the keystore unopenable. */
	uint8_t *copy = malloc(ksl);
	memcpy(copy, file, ksl);
	copy[ksl - 5] ^= 1;
	assert_int_equal(kura_write_file_atomic(f->keystore, copy, ksl, 0600,
						NULL),
			 KURA_OK);
	struct kura_error err = { 0 };
	assert_int_equal(open_rc(f, &err), KURA_EINTEGRITY);
	/* So does truncation. */
	assert_int_equal(kura_write_file_atomic(f->keystore, file, ksl - 1,
						0600, NULL),
			 KURA_OK);
	assert_int_equal(open_rc(f, NULL), KURA_EINTEGRITY);
	assert_int_equal(kura_write_file_atomic(f->keystore, file, 20, 0600,
						NULL),
			 KURA_OK);
	assert_int_equal(open_rc(f, NULL), KURA_EINTEGRITY);
	/* The original opens again. */
	assert_int_equal(kura_write_file_atomic(f->keystore, file, ksl, 0600,
						NULL),
			 KURA_OK);
	assert_int_equal(open_rc(f, NULL), KURA_OK);

	free(copy);
	kura_secret_free(back);
	kura_secret_free(kek);
	kura_secret_free(chunk);
	kura_secret_free(master);
	kura_secret_free(plain);
	kura_wipe(mk, mkl);
	free(mk);
	free(ks);
}

#define NTHREADS 6
#define NITER 200

struct worker {
	struct kura_keys *k;
	const char (*ids)[KURA_KEK_ID_MAX];
	int nids;
	int seed;
	int failures;
	bool creator;
};

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct kura_secret *plain = test_key((uint8_t)wk->seed);
	for (int i = 0; i < NITER; i++) {
		if (wk->creator && i % 20 == 0) {
			char nid[KURA_KEK_ID_MAX];
			if (kura_keys_kek_create(wk->k, "thread", nid, NULL) !=
			    KURA_OK)
				wk->failures++;
		}
		const char *id = wk->ids[(i + wk->seed) % wk->nids];
		uint8_t w[KURA_WRAPPED_MAX];
		size_t wl = 0;
		struct kura_secret *back = NULL;
		if (do_wrap(wk->k, id, plain, aad1, sizeof(aad1), w, &wl) !=
			    KURA_OK ||
		    do_unwrap(wk->k, id, w, wl, aad1, sizeof(aad1), &back) !=
			    KURA_OK ||
		    memcmp(back->data, plain->data, 32) != 0)
			wk->failures++;
		kura_secret_free(back);
	}
	kura_secret_free(plain);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	struct kura_keys *k = open_ok(f);
	char ids[4][KURA_KEK_ID_MAX];
	for (int i = 0; i < 4; i++)
		create_kek(k, "shared", ids[i]);
	pthread_t th[NTHREADS];
	struct worker wk[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		wk[i] = (struct worker){
			.k = k,
			.ids = (const char(*)[KURA_KEK_ID_MAX])ids,
			.nids = 4,
			.seed = i,
			.creator = i < 2
		};
		assert_int_equal(
			pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(wk[i].failures, 0);
	}
	kura_keys_close(k);
}

#define NPROCS 3
#define PER_PROC 8

/* Several processes (server, CLI) creating KEKs in one keystore at once:
 * the flock'd reload-change-rewrite cycle must lose none of them. */
static void test_multi_process(void **state)
{
	struct fixture *f = *state;
	kura_keys_close(open_ok(f)); /* create the files first */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pids[NPROCS];
	for (int p = 0; p < NPROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			close(fds[0]);
			struct kura_keys *k = NULL;
			if (kura_keys_open(f->cfg, f->dir, &k, NULL) != KURA_OK)
				_exit(2);
			for (int i = 0; i < PER_PROC; i++) {
				char id[KURA_KEK_ID_MAX] = { 0 };
				if (kura_keys_kek_create(k, "proc", id, NULL) !=
				    KURA_OK)
					_exit(3);
				if (write(fds[1], id, KURA_KEK_ID_MAX) !=
				    KURA_KEK_ID_MAX)
					_exit(4);
			}
			kura_keys_close(k);
			_exit(0);
		}
	}
	close(fds[1]);
	for (int p = 0; p < NPROCS; p++) {
		int status = 0;
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	struct kura_keys *k = open_ok(f);
	struct kura_secret *plain = test_key(2);
	char id[KURA_KEK_ID_MAX];
	int seen = 0;
	while (read(fds[0], id, sizeof(id)) == (ssize_t)sizeof(id)) {
		uint8_t w[KURA_WRAPPED_MAX];
		size_t wl = 0;
		assert_int_equal(do_wrap(k, id, plain, NULL, 0, w, &wl),
				 KURA_OK);
		seen++;
	}
	close(fds[0]);
	assert_int_equal(seen, NPROCS * PER_PROC);
	kura_secret_free(plain);
	kura_keys_close(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_open_creates_files,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_configured_paths, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unknown_provider, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_master_key_checks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_missing_master_with_keystore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_master_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_error_codes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reopen_sees_keks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_second_instance, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nothing_in_clear, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_multi_process, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_secret.c — unit tests of the locked secret arena (src/core/secret.c).
 *
 * Checks the promises of secret.h: sizes 1..KURA_SECRET_MAX (every size
 * class boundary), zero-filled on allocation, copies are independent, bytes
 * are wiped on free, and the arena is safe to use from several threads.
 * Reading a secret's bytes after kura_secret_free is defined here: the
 * arena's memory stays mapped for the life of the process, which is exactly
 * what lets this test look at what free left behind.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kura/err.h"
#include "kura/secret.h"
#include "kura/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Sizes on both sides of every power of two the arena might use as a size
 * class, plus the extremes. */
static const size_t boundary_sizes[] = {
	1,   2,	  15,  16,  17,	 31,  32,  33,	63,   64,   65,	  127,
	128, 129, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024,
};

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void test_new_sizes(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(boundary_sizes); i++) {
		size_t n = boundary_sizes[i];
		/* Several at once so that a size class too small for n would
		 * make neighbours overlap and clobber each other. */
		struct kura_secret *s[8];
		for (int j = 0; j < 8; j++) {
			s[j] = kura_secret_new(n);
			if (s[j] == NULL)
				fail_msg("kura_secret_new(%zu) failed", n);
			assert_int_equal(s[j]->len, n);
			assert_non_null(s[j]->data);
			if (!all_bytes(s[j]->data, n, 0))
				fail_msg("new secret of %zu bytes not zeroed",
					 n);
			memset(s[j]->data, 0x40 + j, n);
		}
		for (int j = 0; j < 8; j++) {
			for (int k = 0; k < j; k++)
				assert_ptr_not_equal(s[j], s[k]);
			if (!all_bytes(s[j]->data, n, (uint8_t)(0x40 + j)))
				fail_msg("secrets of %zu bytes overlap", n);
		}
		for (int j = 0; j < 8; j++)
			kura_secret_free(s[j]);
	}
}

static void test_new_rejects(void **state)
{
	(void)state;
	assert_null(kura_secret_new(0));
	assert_null(kura_secret_new(KURA_SECRET_MAX + 1));
	assert_null(kura_secret_new(4096));
	assert_null(kura_secret_new(SIZE_MAX));
	assert_null(kura_secret_from("x", 0));
	static uint8_t big[KURA_SECRET_MAX + 1];
	assert_null(kura_secret_from(big, sizeof(big)));

	struct kura_error err = { 0 };
	struct kura_secret *out = (struct kura_secret *)0x1;
	assert_int_equal(kura_secret_random(0, &out, &err), KURA_EINVAL);
	assert_ptr_equal(out, (struct kura_secret *)0x1);
	assert_int_equal(err.code, KURA_EINVAL);
	assert_true(strlen(err.msg) > 0);
	kura_error_clear(&err);
	assert_int_equal(kura_secret_random(KURA_SECRET_MAX + 1, &out, &err),
			 KURA_EINVAL);
	assert_ptr_equal(out, (struct kura_secret *)0x1);
	assert_int_equal(kura_secret_random(SIZE_MAX, &out, NULL), KURA_EINVAL);
	assert_ptr_equal(out, (struct kura_secret *)0x1);

	/* The largest size is accepted by every constructor. */
	struct kura_secret *s = kura_secret_new(KURA_SECRET_MAX);
	assert_non_null(s);
	kura_secret_free(s);
	assert_int_equal(kura_secret_random(KURA_SECRET_MAX, &s, &err),
			 KURA_OK);
	assert_int_equal(s->len, KURA_SECRET_MAX);
	kura_secret_free(s);
	kura_secret_free(NULL);
}

static void test_from_and_dup(void **state)
{
	(void)state;
	uint8_t raw[48];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 5 + 1);
	struct kura_secret *a = kura_secret_from(raw, sizeof(raw));
	assert_non_null(a);
	assert_int_equal(a->len, sizeof(raw));
	assert_memory_equal(a->data, raw, sizeof(raw));
	/* A copy, not a reference to the caller's bytes. */
	assert_ptr_not_equal(a->data, raw);
	raw[0] ^= 0xff;
	assert_int_equal(a->data[0], 1);

	struct kura_secret *b = kura_secret_dup(a);
	assert_non_null(b);
	assert_ptr_not_equal(b, a);
	assert_ptr_not_equal(b->data, a->data);
	assert_int_equal(b->len, a->len);
	assert_memory_equal(b->data, a->data, a->len);
	/* Independent: changing or freeing one leaves the other alone. */
	b->data[1] ^= 0xff;
	assert_int_not_equal(a->data[1], b->data[1]);
	kura_secret_free(a);
	assert_int_equal(b->data[0], 1);
	assert_int_equal(b->len, sizeof(raw));
	kura_secret_free(b);

	assert_null(kura_secret_dup(NULL));
	/* Duplicating at the class boundaries. */
	for (size_t i = 0; i < ARRAY_LEN(boundary_sizes); i++) {
		struct kura_secret *r = NULL;
		assert_int_equal(kura_secret_random(boundary_sizes[i], &r,
						    NULL),
				 KURA_OK);
		struct kura_secret *d = kura_secret_dup(r);
		assert_non_null(d);
		assert_int_equal(d->len, r->len);
		assert_memory_equal(d->data, r->data, r->len);
		kura_secret_free(r);
		kura_secret_free(d);
	}
}

static void test_random(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	struct kura_secret *a = NULL, *b = NULL;
	assert_int_equal(kura_secret_random(32, &a, &err), KURA_OK);
	assert_int_equal(kura_secret_random(32, &b, &err), KURA_OK);
	assert_int_equal(err.code, KURA_OK);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->len, 32);
	assert_memory_not_equal(a->data, b->data, 32);
	static const uint8_t zero[32];
	assert_memory_not_equal(a->data, zero, 32);
	kura_secret_free(a);
	kura_secret_free(b);

	/* A crude but sufficient check that all bytes of a large random
	 * secret are filled: a 1024-byte draw has about 4 zero bytes on
	 * average; hundreds would mean an unfilled tail. */
	assert_int_equal(kura_secret_random(1024, &a, &err), KURA_OK);
	size_t zeros = 0;
	for (size_t i = 0; i < a->len; i++)
		zeros += a->data[i] == 0;
	assert_true(zeros < 40);
	assert_false(all_bytes(a->data + 1000, 24, 0));
	kura_secret_free(a);
}

static void test_wiped_on_free(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(boundary_sizes); i++) {
		size_t n = boundary_sizes[i];
		struct kura_secret *s = kura_secret_new(n);
		assert_non_null(s);
		memset(s->data, 0xa5, n);
		/* Keep our own view of the slot: the arena memory stays
		 * mapped after free, so these reads are defined. */
		volatile const uint8_t *slot = s->data;
		kura_secret_free(s);
		for (size_t j = 0; j < n; j++)
			if (slot[j] != 0)
				fail_msg("byte %zu of a freed %zu-byte secret "
					 "still holds 0x%02x",
					 j, n, slot[j]);
	}
	/* The same for random and copied secrets. */
	struct kura_secret *r = NULL;
	assert_int_equal(kura_secret_random(64, &r, NULL), KURA_OK);
	struct kura_secret *d = kura_secret_dup(r);
	volatile const uint8_t *rs = r->data, *ds = d->data;
	kura_secret_free(r);
	kura_secret_free(d);
	for (size_t j = 0; j < 64; j++) {
		assert_int_equal(rs[j], 0);
		assert_int_equal(ds[j], 0);
	}
	/* A slot handed out again is zero-filled even though it held data. */
	struct kura_secret *again = kura_secret_new(64);
	assert_non_null(again);
	assert_true(all_bytes(again->data, 64, 0));
	kura_secret_free(again);
}

static void test_wipe(void **state)
{
	(void)state;
	uint8_t buf[100];
	memset(buf, 0xcc, sizeof(buf));
	kura_wipe(buf + 10, 50);
	assert_true(all_bytes(buf, 10, 0xcc));
	assert_true(all_bytes(buf + 10, 50, 0));
	assert_true(all_bytes(buf + 60, 40, 0xcc));
	kura_wipe(NULL, 10);
	kura_wipe(buf, 0);
	assert_int_equal(buf[0], 0xcc);
}

/* ------------------------------------------------------------------ */
/* threads                                                             */

enum {
	THREADS = 4,
	ROUNDS = 3000,
	LIVE = 48
};

struct worker {
	pthread_t tid;
	unsigned id;
	unsigned seed;
	int failures;
	char why[160];
};

static uint8_t pattern(unsigned id, unsigned slot, size_t i)
{
	return (uint8_t)(id * 61 + slot * 7 + i * 13 + 1);
}

static bool check(const struct kura_secret *s, unsigned id, unsigned slot)
{
	for (size_t i = 0; i < s->len; i++)
		if (s->data[i] != pattern(id, slot, i))
			return false;
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kura_secret *live[LIVE] = { 0 };
	unsigned x = w->seed;
	for (unsigned r = 0; r < ROUNDS && w->failures == 0; r++) {
		x = x * 1103515245u + 12345u;
		unsigned slot = (x >> 8) % LIVE;
		if (live[slot] != NULL) {
			if (!check(live[slot], w->id, slot)) {
				w->failures++;
				snprintf(w->why, sizeof(w->why),
					 "thread %u: secret in slot %u was "
					 "changed by someone else",
					 w->id, slot);
				break;
			}
			kura_secret_free(live[slot]);
			live[slot] = NULL;
		}
		size_t len = 1 + (x >> 16) % KURA_SECRET_MAX;
		struct kura_secret *s;
		switch (r % 3) {
		case 0:
			s = kura_secret_new(len);
			break;
		case 1:
			if (kura_secret_random(len, &s, NULL) != KURA_OK)
				s = NULL;
			break;
		default: {
			uint8_t tmp[KURA_SECRET_MAX];
			memset(tmp, 0x11, len);
			s = kura_secret_from(tmp, len);
			break;
		}
		}
		if (s == NULL || s->len != len) {
			w->failures++;
			snprintf(w->why, sizeof(w->why),
				 "thread %u: allocation of %zu bytes failed",
				 w->id, len);
			break;
		}
		for (size_t i = 0; i < len; i++)
			s->data[i] = pattern(w->id, slot, i);
		live[slot] = s;
	}
	for (unsigned slot = 0; slot < LIVE; slot++) {
		if (live[slot] == NULL)
			continue;
		if (!check(live[slot], w->id, slot) && w->failures == 0) {
			w->failures++;
			snprintf(w->why, sizeof(w->why),
				 "thread %u: final check of slot %u failed",
				 w->id, slot);
		}
		kura_secret_free(live[slot]);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct worker w[THREADS];
	for (unsigned i = 0; i < THREADS; i++) {
		w[i].id = i;
		w[i].seed = 0x1234u + i * 7919u;
		w[i].failures = 0;
		w[i].why[0] = '\0';
		assert_int_equal(
			pthread_create(&w[i].tid, NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	for (unsigned i = 0; i < THREADS; i++)
		if (w[i].failures != 0)
			fail_msg("%s", w[i].why);
	/* The arena still works afterwards. */
	struct kura_secret *s = kura_secret_new(32);
	assert_non_null(s);
	assert_true(all_bytes(s->data, 32, 0));
	kura_secret_free(s);
}

static void test_harden_process(void **state)
{
	(void)state;
	struct kura_error err = { 0 };
	int was_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	struct rlimit saved;
	assert_int_equal(getrlimit(RLIMIT_CORE, &saved), 0);
	assert_int_equal(kura_secret_harden_process(&err), KURA_OK);
	assert_int_equal(err.code, KURA_OK);
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_int_equal(rl.rlim_max, 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	/* Restore dumpability so LeakSanitizer can still inspect this
	 * process at exit (it cannot attach to a non-dumpable process
	 * without CAP_SYS_PTRACE). */
	if (was_dumpable > 0)
		assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
}

/* The bytes of the first "name=" entry of environ (NULL when none). */
static char *environ_entry(const char *name)
{
	extern char **environ;
	size_t n = strlen(name);
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e;
	return NULL;
}

static void test_env_capture(void **state)
{
	(void)state;
	static const char value[] = "s3cr3t-VALUE+0123456789/abcdef";
	const size_t vlen = sizeof(value) - 1;
	struct kura_error err = { 0 };
	char out[64];
	setenv("KURA_ROOT_SECRET_KEY", value, 1);
	setenv("KURA_PKCS11_PIN", "", 1);
	setenv("KURA_NOT_A_CREDENTIAL", "stays", 1);
	char *entry = environ_entry("KURA_ROOT_SECRET_KEY");
	assert_non_null(entry);
	char *bytes = entry + strlen("KURA_ROOT_SECRET_KEY=");

	assert_int_equal(kura_env_capture(&err), KURA_OK);
	/* Gone from environ, and wiped where it lay (what /proc/PID/environ
	 * shows for variables given at exec). */
	assert_null(getenv("KURA_ROOT_SECRET_KEY"));
	for (size_t i = 0; i < vlen; i++)
		assert_int_equal(bytes[i], 0);
	/* Kept in locked memory, as given. */
	const struct kura_secret *s = kura_env_secret("KURA_ROOT_SECRET_KEY");
	assert_non_null(s);
	assert_int_equal(s->len, vlen);
	assert_memory_equal(s->data, value, vlen);
	assert_true(
		kura_env_secret_str("KURA_ROOT_SECRET_KEY", out, sizeof(out)));
	assert_string_equal(out, value);
	assert_false(kura_env_secret_str("KURA_ROOT_SECRET_KEY", out, vlen));
	/* Empty counts as unset (and is removed); other names are not kura's
	 * credentials and stay. */
	assert_null(getenv("KURA_PKCS11_PIN"));
	assert_null(kura_env_secret("KURA_PKCS11_PIN"));
	assert_null(kura_env_secret("KURA_NOT_A_CREDENTIAL"));
	assert_string_equal(getenv("KURA_NOT_A_CREDENTIAL"), "stays");
	unsetenv("KURA_NOT_A_CREDENTIAL");
	assert_null(kura_env_secret("KURA_ROOT_ACCESS_KEY"));

	/* Too long for the arena: refused, and wiped all the same. */
	char big[KURA_SECRET_MAX + 2];
	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("KURA_PKCS11_PIN", big, 1);
	entry = environ_entry("KURA_PKCS11_PIN");
	kura_error_clear(&err);
	assert_int_equal(kura_env_capture(&err), KURA_ETOOBIG);
	assert_non_null(strstr(err.msg, "KURA_PKCS11_PIN"));
	assert_null(getenv("KURA_PKCS11_PIN"));
	assert_int_equal(entry[strlen("KURA_PKCS11_PIN=")], 0);
	/* A capture without the variable keeps what was captured. */
	assert_non_null(kura_env_secret("KURA_ROOT_SECRET_KEY"));

	kura_env_release();
	assert_null(kura_env_secret("KURA_ROOT_SECRET_KEY"));
	kura_env_release();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_sizes),
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test(test_from_and_dup),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_wiped_on_free),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_harden_process),
		cmocka_unit_test(test_env_capture),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_keys_pkcs11.c — the PKCS#11 key provider (src/keys/pkcs11*.c)
 * against a real SoftHSM2 token, through the keys.h contract.
 *
 * The group setup makes a private token: a mkdtemp directory with a
 * softhsm2.conf (SOFTHSM2_CONF is set before any C_Initialize, and SoftHSM
 * reads it only then, so the whole program shares this one token
 * directory), `softhsm2-util --init-token`, and a PIN file.  Each test opens
 * its own provider instances.
 *
 * Independent checks use OpenSSL directly (AES-256-GCM, AES key wrap with
 * padding, ECDSA verification) and, for extractability, the PKCS#11 module
 * itself through a session of our own.  Another process is this program
 * re-executed with --child-unwrap.
 *
 * The outage test renames the token directory away and back: SoftHSM
 * 2.6.1 then answers C_GetTokenInfo with CKR_GENERAL_ERROR, finds no
 * objects, and recovers only after C_Finalize + C_Initialize (see
 * src/keys/pkcs11_session.c), which the provider does after its backoff.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kura/config.h"
#include "kura/encode.h"
#include "kura/keys.h"
#include "kura/secret.h"
#include "../../src/keys/pkcs11_int.h"
#include "rmtree.h"
#include "kura/banned.h"

extern char **environ;

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "kura-test"
#define PIN "483920"
#define SO_PIN "91827364"

static struct {
	char dir[64];
	char tokens[PATH_MAX];
	char tokens_away[PATH_MAX];
	char conf[PATH_MAX];
	char pin_file[PATH_MAX];
	char self[PATH_MAX];
} g;

static const uint8_t aad1[] = "bucket-1|tenant-a";
static const uint8_t aad2[] = "bucket-2|tenant-a";

/* ---- helpers ---- */

static int run(char *const argv[])
{
	pid_t pid;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(g.dir, sizeof(g.dir), "/tmp/kura-p11-XXXXXX");
	if (mkdtemp(g.dir) == NULL)
		return -1;
	snprintf(g.tokens, sizeof(g.tokens), "%s/tokens", g.dir);
	snprintf(g.tokens_away, sizeof(g.tokens_away), "%s/tokens.away", g.dir);
	snprintf(g.conf, sizeof(g.conf), "%s/softhsm2.conf", g.dir);
	snprintf(g.pin_file, sizeof(g.pin_file), "%s/pin", g.dir);
	if (mkdir(g.tokens, 0700) != 0)
		return -1;
	char text[PATH_MAX + 128];
	snprintf(text, sizeof(text),
		 "directories.tokendir = %s\nobjectstore.backend = file\n"
		 "log.level = ERROR\n",
		 g.tokens);
	FILE *f = fopen(g.conf, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	setenv("SOFTHSM2_CONF", g.conf, 1);
	char *argv[] = { "softhsm2-util",
			 "--init-token",
			 "--free",
			 "--label",
			 TOKEN,
			 "--pin",
			 PIN,
			 "--so-pin",
			 SO_PIN,
			 NULL };
	if (run(argv) != 0) {
		fprintf(stderr, "softhsm2-util --init-token failed\n");
		return -1;
	}
	/* With the trailing newline editors add: the provider strips it. */
	int fd = open(g.pin_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, PIN "\n", sizeof(PIN)) != (ssize_t)sizeof(PIN))
		return -1;
	close(fd);
	ssize_t n = readlink("/proc/self/exe", g.self, sizeof(g.self) - 1);
	if (n <= 0)
		return -1;
	g.self[n] = '\0';
	unsetenv("KURA_PKCS11_PIN");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rmtree(g.dir);
	return 0;
}

static struct kura_config *config_new(const char *pin_file)
{
	struct kura_config *cfg = NULL;
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "provider", "pkcs11",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "module", MODULE, NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "token", TOKEN, NULL),
			 KURA_OK);
	if (pin_file != NULL)
		assert_int_equal(kura_config_set(cfg, "keys", "pin_file",
						 pin_file, NULL),
				 KURA_OK);
	return cfg;
}

static struct kura_keys *open_ok(void)
{
	struct kura_config *cfg = config_new(g.pin_file);
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_open(cfg, g.dir, &k, &err);
	kura_config_free(cfg);
	if (rc != KURA_OK)
		fail_msg("open: %s (%s)", kura_errname(rc), err.msg);
	assert_string_equal(k->ops->name, "pkcs11");
	return k;
}

static void create_kek(struct kura_keys *k, const char *label,
		       char id[KURA_KEK_ID_MAX])
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_create(k, label, id, &err);
	if (rc != KURA_OK)
		fail_msg("kek_create: %s (%s)", kura_errname(rc), err.msg);
	assert_int_equal(strncmp(id, "p11:", 4), 0);
	assert_int_equal(strlen(id), 4 + 32);
}

static struct kura_secret *test_key(uint8_t seed, size_t len)
{
	struct kura_secret *s = kura_secret_new(len);
	assert_non_null(s);
	for (size_t i = 0; i < len; i++)
		s->data[i] = (uint8_t)(seed + 7 * i);
	return s;
}

static enum kura_err wrap(struct kura_keys *k, const char *id,
			  const struct kura_secret *plain, const uint8_t *aad,
			  size_t aad_len, uint8_t out[KURA_WRAPPED_MAX],
			  size_t *out_len, struct kura_error *err)
{
	struct kura_error local = { 0 };
	return kura_keys_wrap(k, id, plain, aad, aad_len, out, out_len,
			      err ? err : &local);
}

static enum kura_err unwrap(struct kura_keys *k, const char *id,
			    const uint8_t *in, size_t in_len,
			    const uint8_t *aad, size_t aad_len,
			    struct kura_secret **out, struct kura_error *err)
{
	struct kura_error local = { 0 };
	return kura_keys_unwrap(k, id, in, in_len, aad, aad_len, out,
				err ? err : &local);
}

static void wrap_ok(struct kura_keys *k, const char *id,
		    const struct kura_secret *plain, const uint8_t *aad,
		    size_t aad_len, uint8_t out[KURA_WRAPPED_MAX],
		    size_t *out_len)
{
	struct kura_error err = { 0 };
	enum kura_err rc = wrap(k, id, plain, aad, aad_len, out, out_len, &err);
	if (rc != KURA_OK)
		fail_msg("wrap: %s (%s)", kura_errname(rc), err.msg);
}

static void unwrap_expect(struct kura_keys *k, const char *id,
			  const uint8_t *in, size_t in_len, const uint8_t *aad,
			  size_t aad_len, const struct kura_secret *want)
{
	struct kura_error err = { 0 };
	struct kura_secret *got = NULL;
	enum kura_err rc = unwrap(k, id, in, in_len, aad, aad_len, &got, &err);
	if (rc != KURA_OK)
		fail_msg("unwrap: %s (%s)", kura_errname(rc), err.msg);
	assert_int_equal(got->len, want->len);
	assert_memory_equal(got->data, want->data, want->len);
	kura_secret_free(got);
}

static void unwrap_fails(struct kura_keys *k, const char *id, const uint8_t *in,
			 size_t in_len, const uint8_t *aad, size_t aad_len,
			 enum kura_err want)
{
	struct kura_error err = { 0 };
	struct kura_secret *got = NULL;
	enum kura_err rc = unwrap(k, id, in, in_len, aad, aad_len, &got, &err);
	if (rc != want)
		fail_msg("unwrap: want %s, got %s (%s)", kura_errname(want),
			 kura_errname(rc), err.msg);
	assert_null(got);
	assert_true(err.msg[0] != '\0');
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- an independent view of the token: our own session ---- */

struct direct {
	void *dl;
	CK_FUNCTION_LIST_PTR fn;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE h;
};

/* Needs an open provider: the module is initialised and logged in. */
static void direct_open(struct direct *d)
{
	d->dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(d->dl);
	CK_C_GetFunctionList get = NULL;
	*(void **)&get = dlsym(d->dl, "C_GetFunctionList");
	assert_non_null(get);
	assert_int_equal(get(&d->fn), CKR_OK);
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	assert_int_equal(d->fn->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (d->fn->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, TOKEN, strlen(TOKEN)) == 0) {
			d->slot = slots[i];
			assert_int_equal(
				d->fn->C_OpenSession(slots[i],
						     CKF_SERIAL_SESSION |
							     CKF_RW_SESSION,
						     NULL, NULL, &d->h),
				CKR_OK);
			return;
		}
	}
	fail_msg("token not found");
}

static void direct_close(struct direct *d)
{
	d->fn->C_CloseSession(d->h);
	dlclose(d->dl);
}

static CK_OBJECT_HANDLE direct_find(struct direct *d, CK_OBJECT_CLASS cls,
				    const char *id_text, size_t prefix)
{
	uint8_t id[16];
	assert_int_equal(kura_hex_decode(id_text + prefix, 32, id, 16),
			 KURA_OK);
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	assert_int_equal(d->fn->C_FindObjectsInit(d->h, t, 2), CKR_OK);
	assert_int_equal(d->fn->C_FindObjects(d->h, &h, 1, &n), CKR_OK);
	assert_int_equal(d->fn->C_FindObjectsFinal(d->h), CKR_OK);
	assert_int_equal(n, 1);
	return h;
}

static void assert_key_locked_in(struct direct *d, CK_OBJECT_HANDLE h)
{
	uint8_t value[64];
	CK_ATTRIBUTE v = { CKA_VALUE, value, sizeof(value) };
	CK_RV rv = d->fn->C_GetAttributeValue(d->h, h, &v, 1);
	assert_int_equal(rv, CKR_ATTRIBUTE_SENSITIVE);
	assert_true(v.ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CK_BBOOL sens = CK_FALSE, extr = CK_TRUE, tok = CK_FALSE,
		 priv = CK_FALSE;
	CK_BBOOL never = CK_FALSE;
	CK_ATTRIBUTE a[] = {
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
		{ CKA_TOKEN, &tok, sizeof(tok) },
		{ CKA_PRIVATE, &priv, sizeof(priv) },
		{ CKA_NEVER_EXTRACTABLE, &never, sizeof(never) },
	};
	assert_int_equal(d->fn->C_GetAttributeValue(d->h, h, a, 5), CKR_OK);
	assert_true(sens);
	assert_false(extr);
	assert_true(tok);
	assert_true(priv);
	(void)never; /* false for imported keys, true for generated ones */
}

/* ---- OpenSSL, independently ---- */

static int ossl_gcm(int enc, const uint8_t key[32], const uint8_t iv[12],
		    const uint8_t *aad, size_t aad_len, const uint8_t *in,
		    size_t n, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0,
	    ok = ctx != NULL &&
		 EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv,
				   enc) == 1 &&
		 EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len) == 1 &&
		 EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) ==
		     1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + len, &len) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) ==
		     1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

static int ossl_kwp(int enc, const uint8_t key[32], const uint8_t *in, size_t n,
		    uint8_t *out, size_t *out_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0;
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	int ok = EVP_CipherInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, key, NULL,
				   enc) == 1 &&
		 EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1 &&
		 EVP_CipherFinal_ex(ctx, out + len, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	*out_len = (size_t)(len + fin);
	return ok;
}

static void sha256_of(const uint8_t *hdr, const uint8_t *aad, size_t aad_len,
		      uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned n = 0;
	assert_true(EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		    EVP_DigestUpdate(md, hdr, 2) == 1 &&
		    EVP_DigestUpdate(md, aad, aad_len) == 1 &&
		    EVP_DigestFinal_ex(md, out, &n) == 1);
	EVP_MD_CTX_free(md);
}

/* ---- tests ---- */

static void test_open_errors(void **state)
{
	(void)state;
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	struct kura_config *cfg = NULL;
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "provider", "pkcs11",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "module"));
	kura_config_free(cfg);

	cfg = config_new(g.pin_file);
	kura_error_clear(&err);
	assert_int_equal(kura_config_set(cfg, "keys", "module",
					 "/nonexistent/libp11.so", NULL),
			 KURA_OK);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/libp11.so"));
	kura_config_free(cfg);

	cfg = config_new(g.pin_file);
	kura_error_clear(&err);
	assert_int_equal(kura_config_set(cfg, "keys", "token", "no-such-token",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_EKEY);
	assert_non_null(strstr(err.msg, "no-such-token"));
	kura_config_free(cfg);

	/* Neither pin_file nor the environment variable. */
	cfg = config_new(NULL);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "KURA_PKCS11_PIN"));
	/* The environment variable works when pin_file is unset; it is read
	 * once, into locked memory, and leaves the environment. */
	setenv("KURA_PKCS11_PIN", PIN, 1);
	assert_int_equal(kura_env_capture(&err), KURA_OK);
	assert_null(getenv("KURA_PKCS11_PIN"));
	kura_error_clear(&err);
	enum kura_err rc = kura_keys_open(cfg, g.dir, &k, &err);
	kura_env_release();
	if (rc != KURA_OK)
		fail_msg("open with KURA_PKCS11_PIN: %s", err.msg);
	assert_int_equal(k->ops->caps,
			 KURA_KEYS_CAP_HARDWARE | KURA_KEYS_CAP_IMPORT |
				 KURA_KEYS_CAP_DESTROY | KURA_KEYS_CAP_SIGN);
	kura_keys_close(k);
	kura_config_free(cfg);
}

static void test_pin_file_checks(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/pin-open", g.dir);
	write_file(path, PIN "\n", 0644);
	struct kura_config *cfg = config_new(path);
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_EPERM);
	assert_non_null(strstr(err.msg, "0644"));
	assert_null(strstr(err.msg, PIN));

	/* 0640 is refused as well; 0400 is fine. */
	assert_int_equal(chmod(path, 0640), 0);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_EPERM);
	assert_int_equal(chmod(path, 0400), 0);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_OK);
	kura_keys_close(k);

	/* Owned by someone else (only root can arrange that). */
	if (geteuid() == 0) {
		assert_int_equal(chmod(path, 0600), 0);
		assert_int_equal(chown(path, 65534, 65534), 0);
		kura_error_clear(&err);
		assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err),
				 KURA_EPERM);
		assert_non_null(strstr(err.msg, "owned"));
	}

	/* Empty after stripping the newline. */
	write_file(path, "\n", 0600);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_ECONFIG);
	unlink(path);
	kura_config_free(cfg);
}

static void test_wrong_pin(void **state)
{
	(void)state;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/pin-wrong", g.dir);
	write_file(path, "77711122\n", 0600);
	struct kura_config *cfg = config_new(path);
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_keys_open(cfg, g.dir, &k, &err), KURA_EAUTH);
	assert_non_null(strstr(err.msg, "CKR_PIN_INCORRECT"));
	assert_non_null(strstr(err.msg, TOKEN));
	assert_null(strstr(err.msg, "777111"));
	assert_null(strstr(err.msg, PIN));
	kura_config_free(cfg);
	unlink(path);
	/* The right PIN still works afterwards. */
	k = open_ok();
	kura_keys_close(k);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char id[KURA_KEK_ID_MAX], id2[KURA_KEK_ID_MAX];
	create_kek(k, "tenant-a", id);
	create_kek(k, NULL, id2);
	assert_string_not_equal(id, id2);

	struct kura_secret *bk = test_key(1, 32);
	uint8_t w1[KURA_WRAPPED_MAX], w2[KURA_WRAPPED_MAX];
	size_t n1 = 0, n2 = 0;
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w1, &n1);
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w2, &n2);
	/* version 1, AES-GCM, 12-byte IV, 32-byte ciphertext, 16-byte tag */
	assert_int_equal(n1, 2 + 12 + 32 + 16);
	assert_int_equal(w1[0], 0x01);
	assert_int_equal(w1[1], P11_MECH_GCM);
	assert_int_equal(n2, n1);
	assert_memory_not_equal(w1, w2, n1); /* fresh IV each time */
	unwrap_expect(k, id, w1, n1, aad1, sizeof(aad1), bk);
	unwrap_expect(k, id, w2, n2, aad1, sizeof(aad1), bk);

	/* Lengths 1 and 64, empty AAD. */
	for (size_t len = 1; len <= 64; len += 63) {
		struct kura_secret *s = test_key((uint8_t)len, len);
		uint8_t w[KURA_WRAPPED_MAX];
		size_t n = 0;
		wrap_ok(k, id2, s, NULL, 0, w, &n);
		assert_int_equal(n, 2 + 12 + len + 16);
		unwrap_expect(k, id2, w, n, NULL, 0, s);
		kura_secret_free(s);
	}
	struct kura_secret *big = test_key(3, 65);
	struct kura_error err = { 0 };
	assert_int_equal(wrap(k, id, big, NULL, 0, w1, &n1, &err), KURA_EINVAL);
	kura_secret_free(big);

	/* A second instance sees the KEK (object lookup, not a cache). */
	struct kura_keys *k2 = open_ok();
	unwrap_expect(k2, id, w2, n2, aad1, sizeof(aad1), bk);
	kura_keys_close(k2);
	kura_secret_free(bk);
	kura_keys_close(k);
}

static void test_integrity(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char id[KURA_KEK_ID_MAX], other[KURA_KEK_ID_MAX];
	create_kek(k, "integrity", id);
	create_kek(k, "other", other);
	struct kura_secret *bk = test_key(9, 32);
	uint8_t w[KURA_WRAPPED_MAX], t[KURA_WRAPPED_MAX];
	size_t n = 0;
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w, &n);

	unwrap_fails(k, id, w, n, aad2, sizeof(aad2), KURA_EINTEGRITY);
	unwrap_fails(k, id, w, n, aad1, sizeof(aad1) - 1, KURA_EINTEGRITY);
	unwrap_fails(k, id, w, n, NULL, 0, KURA_EINTEGRITY);
	unwrap_fails(k, other, w, n, aad1, sizeof(aad1), KURA_EINTEGRITY);
	/* Every byte matters: header, IV, ciphertext, tag. */
	for (size_t i = 0; i < n; i++) {
		memcpy(t, w, n);
		t[i] ^= 0x01;
		unwrap_fails(k, id, t, n, aad1, sizeof(aad1), KURA_EINTEGRITY);
	}
	unwrap_fails(k, id, w, n - 1, aad1, sizeof(aad1), KURA_EINTEGRITY);
	unwrap_fails(k, id, w, 1, aad1, sizeof(aad1), KURA_EINTEGRITY);
	memcpy(t, w, n);
	t[n] = 0;
	unwrap_fails(k, id, t, n + 1, aad1, sizeof(aad1), KURA_EINTEGRITY);
	/* After all those failures the sessions still work. */
	unwrap_expect(k, id, w, n, aad1, sizeof(aad1), bk);
	kura_secret_free(bk);
	kura_keys_close(k);
}

static void test_unknown_id(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char id[KURA_KEK_ID_MAX];
	create_kek(k, "known", id);
	struct kura_secret *bk = test_key(5, 32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t n = 0;
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w, &n);
	const char *unknown = "p11:00112233445566778899aabbccddeeff";
	const char *bad[] = {
		"local-00112233445566778899aabbccddeeff",
		"p11:00112233445566778899AABBCCDDEEFF",
		"p11:0011",
		"",
	};
	struct kura_error err = { 0 };
	uint8_t w2[KURA_WRAPPED_MAX];
	size_t n2 = 0;
	assert_int_equal(wrap(k, unknown, bk, aad1, sizeof(aad1), w2, &n2,
			      &err),
			 KURA_ENOENT);
	assert_non_null(strstr(err.msg, unknown));
	unwrap_fails(k, unknown, w, n, aad1, sizeof(aad1), KURA_ENOENT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		unwrap_fails(k, bad[i], w, n, aad1, sizeof(aad1), KURA_ENOENT);
	/* Destroying what does not exist is success. */
	kura_error_clear(&err);
	assert_int_equal(kura_keys_kek_destroy(k, unknown, &err), KURA_OK);
	kura_secret_free(bk);
	kura_keys_close(k);
}

/* Child: unwrap, wait for a line on stdin, unwrap again.  Exit status: 100
 * when the first unwrap failed, else the kura_err of the second. */
static int child_unwrap(char **argv)
{
	const char *id = argv[2], *hex = argv[3];
	uint8_t w[KURA_WRAPPED_MAX];
	size_t n = strlen(hex) / 2;
	if (n > sizeof(w) || kura_hex_decode(hex, 2 * n, w, n) != KURA_OK)
		return 101;
	struct kura_config *cfg = NULL;
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	if (kura_config_new(&cfg, NULL) != KURA_OK ||
	    kura_config_set(cfg, "keys", "provider", "pkcs11", NULL) !=
		    KURA_OK ||
	    kura_config_set(cfg, "keys", "module", MODULE, NULL) != KURA_OK ||
	    kura_config_set(cfg, "keys", "token", TOKEN, NULL) != KURA_OK ||
	    kura_config_set(cfg, "keys", "pin_file", argv[4], NULL) !=
		    KURA_OK ||
	    kura_keys_open(cfg, "/tmp", &k, &err) != KURA_OK) {
		fprintf(stderr, "child open: %s\n", err.msg);
		return 102;
	}
	struct kura_secret *s = NULL;
	if (kura_keys_unwrap(k, id, w, n, aad1, sizeof(aad1), &s, &err) !=
	    KURA_OK) {
		fprintf(stderr, "child unwrap: %s\n", err.msg);
		return 100;
	}
	kura_secret_free(s);
	s = NULL;
	char line[16];
	printf("ready\n");
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 103;
	kura_error_clear(&err);
	enum kura_err rc =
		kura_keys_unwrap(k, id, w, n, aad1, sizeof(aad1), &s, &err);
	kura_secret_free(s);
	fprintf(stderr, "child second unwrap: %s %s\n", kura_errname(rc),
		err.msg);
	kura_keys_close(k);
	kura_config_free(cfg);
	return (int)rc;
}

static void test_destroy(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	struct kura_keys *k2 = open_ok();
	char id[KURA_KEK_ID_MAX], keep[KURA_KEK_ID_MAX];
	create_kek(k, "to-shred", id);
	create_kek(k, "to-keep", keep);
	struct kura_secret *bk = test_key(7, 32);
	uint8_t w[KURA_WRAPPED_MAX], wk[KURA_WRAPPED_MAX];
	size_t n = 0, nk = 0;
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w, &n);
	wrap_ok(k, keep, bk, aad1, sizeof(aad1), wk, &nk);
	/* The second instance caches the handle before the destroy. */
	unwrap_expect(k2, id, w, n, aad1, sizeof(aad1), bk);

	/* Another process: unwraps (holding the key's handle), then waits. */
	char hex[2 * KURA_WRAPPED_MAX + 1];
	kura_hex_encode(w, n, hex);
	int in_pipe[2], out_pipe[2];
	assert_int_equal(pipe(in_pipe), 0);
	assert_int_equal(pipe(out_pipe), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
	posix_spawn_file_actions_addclose(&fa, in_pipe[1]);
	posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
	char *argv[] = { g.self, "--child-unwrap", id, hex, g.pin_file, NULL };
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, g.self, &fa, NULL, argv, environ),
			 0);
	posix_spawn_file_actions_destroy(&fa);
	close(in_pipe[0]);
	close(out_pipe[1]);
	char ready[16] = { 0 };
	ssize_t r = read(out_pipe[0], ready, sizeof(ready) - 1);
	assert_true(r > 0);
	assert_non_null(strstr(ready, "ready"));

	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_destroy(k, id, &err);
	if (rc != KURA_OK)
		fail_msg("destroy: %s", err.msg);
	assert_int_equal(write(in_pipe[1], "go\n", 3), 3);
	close(in_pipe[1]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	close(out_pipe[0]);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), KURA_EKEY);

	/* This instance, the other instance, a new instance. */
	unwrap_fails(k, id, w, n, aad1, sizeof(aad1), KURA_EKEY);
	unwrap_fails(k2, id, w, n, aad1, sizeof(aad1), KURA_EKEY);
	struct kura_keys *k3 = open_ok();
	kura_error_clear(&err);
	struct kura_secret *got = NULL;
	assert_int_equal(unwrap(k3, id, w, n, aad1, sizeof(aad1), &got, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "destroyed"));
	kura_error_clear(&err);
	assert_int_equal(wrap(k3, id, bk, aad1, sizeof(aad1), w, &n, &err),
			 KURA_EKEY);
	kura_keys_close(k3);
	/* Idempotent, from either instance; the other KEK is untouched. */
	kura_error_clear(&err);
	assert_int_equal(kura_keys_kek_destroy(k, id, &err), KURA_OK);
	assert_int_equal(kura_keys_kek_destroy(k2, id, &err), KURA_OK);
	unwrap_expect(k2, keep, wk, nk, aad1, sizeof(aad1), bk);

	/* The object is gone from the token itself. */
	struct direct d;
	direct_open(&d);
	uint8_t raw[16];
	assert_int_equal(kura_hex_decode(id + 4, 32, raw, 16), KURA_OK);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) },
			     { CKA_ID, raw, 16 } };
	CK_OBJECT_HANDLE h;
	CK_ULONG found = 9;
	assert_int_equal(d.fn->C_FindObjectsInit(d.h, t, 2), CKR_OK);
	assert_int_equal(d.fn->C_FindObjects(d.h, &h, 1, &found), CKR_OK);
	d.fn->C_FindObjectsFinal(d.h);
	assert_int_equal(found, 0);
	direct_close(&d);

	kura_secret_free(bk);
	kura_keys_close(k2);
	kura_keys_close(k);
}

static void test_import_interop(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	uint8_t kek_bytes[32];
	for (size_t i = 0; i < 32; i++)
		kek_bytes[i] = (uint8_t)(0xa0 + 3 * i);
	struct kura_secret *kek = kura_secret_from(kek_bytes, 32);
	char id[KURA_KEK_ID_MAX];
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_import(k, "byok", kek, id, &err);
	if (rc != KURA_OK)
		fail_msg("import: %s", err.msg);
	struct kura_secret *short_key = test_key(1, 16);
	kura_error_clear(&err);
	char id_bad[KURA_KEK_ID_MAX];
	assert_int_equal(kura_keys_kek_import(k, "short", short_key, id_bad,
					      &err),
			 KURA_EINVAL);
	kura_secret_free(short_key);

	struct kura_secret *bk = test_key(0x42, 32);
	uint8_t w[KURA_WRAPPED_MAX], ad[2 + sizeof(aad1)], plain[64], tag[16];
	size_t n = 0;

	/* Provider GCM -> OpenSSL. */
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w, &n);
	memcpy(ad, w, 2);
	memcpy(ad + 2, aad1, sizeof(aad1));
	assert_true(ossl_gcm(0, kek_bytes, w + 2, ad, sizeof(ad), w + 14, 32,
			     plain, w + 46));
	assert_memory_equal(plain, bk->data, 32);

	/* OpenSSL GCM -> provider. */
	uint8_t mine[2 + 12 + 32 + 16] = { 0x01, 0x01 };
	for (size_t i = 0; i < 12; i++)
		mine[2 + i] = (uint8_t)(0x10 + i);
	memcpy(ad, mine, 2);
	assert_true(ossl_gcm(1, kek_bytes, mine + 2, ad, sizeof(ad), bk->data,
			     32, mine + 14, tag));
	memcpy(mine + 46, tag, 16);
	unwrap_expect(k, id, mine, sizeof(mine), aad1, sizeof(aad1), bk);
	unwrap_fails(k, id, mine, sizeof(mine), aad2, sizeof(aad2),
		     KURA_EINTEGRITY);

	/* OpenSSL key wrap with padding (mechanism 2) -> provider.  Payload:
	 * length byte, key, zeros to 8-byte blocks, SHA-256(header || aad). */
	uint8_t hdr[2] = { 0x01, P11_MECH_KWP }, payload[80], kwp[2 + 88];
	size_t kn = 0;
	memset(payload, 0, sizeof(payload));
	payload[0] = 32;
	memcpy(payload + 1, bk->data, 32);
	sha256_of(hdr, aad1, sizeof(aad1), payload + 40);
	memcpy(kwp, hdr, 2);
	assert_true(ossl_kwp(1, kek_bytes, payload, 72, kwp + 2, &kn));
	assert_int_equal(kn, 80);
	unwrap_expect(k, id, kwp, 2 + kn, aad1, sizeof(aad1), bk);
	unwrap_fails(k, id, kwp, 2 + kn, aad2, sizeof(aad2), KURA_EINTEGRITY);
	kwp[10] ^= 0x80;
	unwrap_fails(k, id, kwp, 2 + kn, aad1, sizeof(aad1), KURA_EINTEGRITY);
	/* A payload whose padding is not zero is refused too. */
	payload[39] = 1;
	assert_true(ossl_kwp(1, kek_bytes, payload, 72, kwp + 2, &kn));
	unwrap_fails(k, id, kwp, 2 + kn, aad1, sizeof(aad1), KURA_EINTEGRITY);

	/* Provider key wrap with padding -> OpenSSL, and back. */
	kura_error_clear(&err);
	assert_int_equal(kura_keys_pkcs11_set_wrap_mech(k->priv, P11_MECH_KWP,
							&err),
			 KURA_OK);
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w, &n);
	assert_int_equal(w[0], 0x01);
	assert_int_equal(w[1], P11_MECH_KWP);
	assert_int_equal(n, 2 + 80);
	assert_true(ossl_kwp(0, kek_bytes, w + 2, n - 2, payload, &kn));
	assert_int_equal(kn, 72);
	assert_int_equal(payload[0], 32);
	assert_memory_equal(payload + 1, bk->data, 32);
	for (size_t i = 33; i < 40; i++)
		assert_int_equal(payload[i], 0);
	uint8_t digest[32];
	sha256_of(w, aad1, sizeof(aad1), digest);
	assert_memory_equal(payload + 40, digest, 32);
	unwrap_expect(k, id, w, n, aad1, sizeof(aad1), bk);
	unwrap_fails(k, id, w, n, aad2, sizeof(aad2), KURA_EINTEGRITY);
	for (size_t i = 0; i < n; i += 7) {
		uint8_t t[KURA_WRAPPED_MAX];
		memcpy(t, w, n);
		t[i] ^= 0x04;
		unwrap_fails(k, id, t, n, aad1, sizeof(aad1), KURA_EINTEGRITY);
	}
	struct kura_secret *odd = test_key(0x11, 5);
	wrap_ok(k, id, odd, NULL, 0, w, &n);
	assert_int_equal(n, 2 + 8 + 8 + 32);
	unwrap_expect(k, id, w, n, NULL, 0, odd);
	kura_secret_free(odd);

	/* The imported key is as locked in as a generated one. */
	struct direct d;
	direct_open(&d);
	assert_key_locked_in(&d, direct_find(&d, CKO_SECRET_KEY, id, 4));
	direct_close(&d);

	kura_wipe(kek_bytes, sizeof(kek_bytes));
	kura_secret_free(kek);
	kura_secret_free(bk);
	kura_keys_close(k);
}

static void test_not_extractable(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char id[KURA_KEK_ID_MAX], sid[KURA_KEK_ID_MAX];
	create_kek(k, "locked", id);
	struct kura_error err = { 0 };
	assert_int_equal(kura_keys_signer_create(k, "signer", sid, &err),
			 KURA_OK);

	struct direct d;
	direct_open(&d);
	CK_OBJECT_HANDLE h = direct_find(&d, CKO_SECRET_KEY, id, 4);
	assert_key_locked_in(&d, h);
	CK_OBJECT_HANDLE sk = direct_find(&d, CKO_PRIVATE_KEY, sid, 7);
	assert_key_locked_in(&d, sk);

	/* Nor can it be wrapped out under another key. */
	char other[KURA_KEK_ID_MAX];
	create_kek(k, "wrapper", other);
	CK_OBJECT_HANDLE wrapper = direct_find(&d, CKO_SECRET_KEY, other, 4);
	CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	uint8_t out[128];
	CK_ULONG n = sizeof(out);
	CK_RV rv = d.fn->C_WrapKey(d.h, &mech, wrapper, h, out, &n);
	assert_int_equal(rv, CKR_KEY_UNEXTRACTABLE);
	direct_close(&d);
	kura_keys_close(k);
}

static void test_sign(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char sid[KURA_KEK_ID_MAX], kek[KURA_KEK_ID_MAX];
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_signer_create(k, "audit", sid, &err);
	if (rc != KURA_OK)
		fail_msg("signer_create: %s", err.msg);
	assert_int_equal(strncmp(sid, "p11sig:", 7), 0);
	create_kek(k, "not-a-signer", kek);

	uint8_t pub[KURA_PUBKEY_MAX];
	size_t pub_len = 0;
	rc = kura_keys_public_key(k, sid, pub, &pub_len, &err);
	if (rc != KURA_OK)
		fail_msg("public_key: %s", err.msg);
	const uint8_t *pp = pub;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &pp, (long)pub_len);
	assert_non_null(pk);
	assert_true(pp == pub + pub_len);
	assert_true(EVP_PKEY_is_a(pk, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pk), 256);

	for (int i = 0; i < 4; i++) {
		uint8_t digest[32], sig[KURA_SIGNATURE_MAX];
		size_t sig_len = 0;
		unsigned dn = 0;
		char msg[32];
		snprintf(msg, sizeof(msg), "checkpoint %d", i);
		EVP_Digest(msg, strlen(msg), digest, &dn, EVP_sha256(), NULL);
		rc = kura_keys_sign(k, sid, digest, sig, &sig_len, &err);
		if (rc != KURA_OK)
			fail_msg("sign: %s", err.msg);
		assert_int_equal(sig[0], 0x30); /* DER SEQUENCE */
		assert_true(sig_len >= 8 && sig_len <= 72);
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
		assert_non_null(ctx);
		assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
		assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32),
				 1);
		digest[0] ^= 1;
		assert_int_not_equal(
			EVP_PKEY_verify(ctx, sig, sig_len, digest, 32), 1);
		EVP_PKEY_CTX_free(ctx);
	}
	EVP_PKEY_free(pk);

	/* A second instance reads the same public key. */
	struct kura_keys *k2 = open_ok();
	uint8_t pub2[KURA_PUBKEY_MAX];
	size_t pub2_len = 0;
	assert_int_equal(kura_keys_public_key(k2, sid, pub2, &pub2_len, &err),
			 KURA_OK);
	assert_int_equal(pub2_len, pub_len);
	assert_memory_equal(pub2, pub, pub_len);
	kura_keys_close(k2);

	uint8_t digest[32] = { 0 }, sig[KURA_SIGNATURE_MAX];
	size_t sig_len = 0;
	kura_error_clear(&err);
	assert_int_equal(kura_keys_sign(k, kek, digest, sig, &sig_len, &err),
			 KURA_ENOENT);
	kura_error_clear(&err);
	assert_int_equal(
		kura_keys_sign(k, "p11sig:00000000000000000000000000000000",
			       digest, sig, &sig_len, &err),
		KURA_ENOENT);
	kura_keys_close(k);
}

struct worker {
	struct kura_keys *k;
	const char *id;
	int iterations;
	int failures;
	uint8_t seed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->iterations; i++) {
		struct kura_secret *bk = kura_secret_new(32);
		for (size_t j = 0; j < 32; j++)
			bk->data[j] = (uint8_t)(w->seed + i + j);
		uint8_t aad[16], out[KURA_WRAPPED_MAX];
		size_t n = 0;
		snprintf((char *)aad, sizeof(aad), "t%u-%d", w->seed, i);
		struct kura_error err = { 0 };
		struct kura_secret *got = NULL;
		if (kura_keys_wrap(w->k, w->id, bk, aad, sizeof(aad), out, &n,
				   &err) != KURA_OK ||
		    kura_keys_unwrap(w->k, w->id, out, n, aad, sizeof(aad),
				     &got, &err) != KURA_OK ||
		    got->len != 32 || memcmp(got->data, bk->data, 32) != 0) {
			if (w->failures++ == 0)
				fprintf(stderr, "worker %u: %s\n", w->seed,
					err.msg);
		}
		kura_secret_free(got);
		kura_secret_free(bk);
	}
	return NULL;
}

static double run_workers(struct kura_keys *k, char ids[][KURA_KEK_ID_MAX],
			  size_t n_ids, int threads, int iterations)
{
	pthread_t t[16];
	struct worker w[16];
	double t0 = now_s();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .k = k,
					.id = ids[(size_t)i % n_ids],
					.iterations = iterations,
					.seed = (uint8_t)i };
		assert_int_equal(
			pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	int failures = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	double dt = now_s() - t0;
	assert_int_equal(failures, 0);
	return dt;
}

static void test_concurrent(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char ids[2][KURA_KEK_ID_MAX];
	create_kek(k, "conc-1", ids[0]);
	create_kek(k, "conc-2", ids[1]);
	run_workers(k, ids, 2, 8, 300);
	kura_keys_close(k);
}

struct bench {
	struct kura_keys *k;
	const char *id;
	int unwrap; /* 0: time wraps, 1: time unwraps */
	int n;
	uint8_t (*blobs)[KURA_WRAPPED_MAX];
	size_t *lens;
	int failures;
};

static void *bench_main(void *arg)
{
	struct bench *b = arg;
	struct kura_secret *bk = test_key(0x5a, 32);
	for (int i = 0; i < b->n; i++) {
		struct kura_error err = { 0 };
		struct kura_secret *got = NULL;
		enum kura_err rc =
			b->unwrap ? kura_keys_unwrap(b->k, b->id, b->blobs[i],
						     b->lens[i], aad1,
						     sizeof(aad1), &got, &err) :
				    kura_keys_wrap(b->k, b->id, bk, aad1,
						   sizeof(aad1), b->blobs[i],
						   &b->lens[i], &err);
		if (rc != KURA_OK)
			b->failures++;
		kura_secret_free(got);
	}
	kura_secret_free(bk);
	return NULL;
}

/* Measurement, not asserted (beyond success): wraps and unwraps per second
 * from 1 and 2 threads, one KEK per thread. */
static void test_throughput(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char ids[2][KURA_KEK_ID_MAX];
	create_kek(k, "bench-1", ids[0]);
	create_kek(k, "bench-2", ids[1]);
	enum {
		N = 4000
	};
	static uint8_t blobs[2][N][KURA_WRAPPED_MAX];
	static size_t lens[2][N];
	for (int threads = 1; threads <= 2; threads++) {
		for (int phase = 0; phase < 2; phase++) {
			pthread_t t[2];
			struct bench b[2];
			double t0 = now_s();
			for (int i = 0; i < threads; i++) {
				b[i] = (struct bench){ .k = k,
						       .id = ids[i],
						       .unwrap = phase,
						       .n = N,
						       .blobs = blobs[i],
						       .lens = lens[i] };
				assert_int_equal(pthread_create(&t[i], NULL,
								bench_main,
								&b[i]),
						 0);
			}
			for (int i = 0; i < threads; i++) {
				pthread_join(t[i], NULL);
				assert_int_equal(b[i].failures, 0);
			}
			double dt = now_s() - t0;
			fprintf(stderr,
				"# pkcs11 on SoftHSM2, %d thread(s): %.0f %s/s\n",
				threads, threads * N / dt,
				phase ? "unwraps" : "wraps");
		}
	}
	kura_keys_close(k);
}

/* A cached handle that names another object (a module may reuse handle
 * numbers) must never be used to wrap, and must not fail an unwrap. */
static void test_stale_handle(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	struct p11 *p = k->priv;
	char a[KURA_KEK_ID_MAX], b[KURA_KEK_ID_MAX];
	create_kek(k, "stale-a", a);
	create_kek(k, "stale-b", b);
	struct kura_secret *bk = test_key(0x77, 32);
	uint8_t w[KURA_WRAPPED_MAX], wb[KURA_WRAPPED_MAX];
	size_t n = 0, nb = 0;
	wrap_ok(k, a, bk, aad1, sizeof(aad1), w, &n);
	wrap_ok(k, b, bk, aad1, sizeof(aad1), wb, &nb);

	/* Point a's cache entry at b's key. */
	uint8_t ida[16], idb[16];
	assert_int_equal(kura_hex_decode(a + 4, 32, ida, 16), KURA_OK);
	assert_int_equal(kura_hex_decode(b + 4, 32, idb, 16), KURA_OK);
	struct p11_cache_entry *ea = NULL, *eb = NULL;
	for (size_t i = 0; i < P11_CACHE_SLOTS; i++) {
		if (p->cache[i].kind == P11_KIND_KEK &&
		    memcmp(p->cache[i].id, ida, 16) == 0)
			ea = &p->cache[i];
		if (p->cache[i].kind == P11_KIND_KEK &&
		    memcmp(p->cache[i].id, idb, 16) == 0)
			eb = &p->cache[i];
	}
	assert_non_null(ea);
	assert_non_null(eb);
	assert_true(ea != eb);
	ea->handle = eb->handle;
	unwrap_expect(k, a, w, n, aad1, sizeof(aad1), bk);
	assert_int_not_equal(ea->handle, eb->handle); /* repaired */

	ea->handle = eb->handle;
	wrap_ok(k, a, bk, aad2, sizeof(aad2), w, &n);
	assert_int_not_equal(ea->handle, eb->handle);
	struct kura_keys *k2 = open_ok(); /* no cache */
	unwrap_expect(k2, a, w, n, aad2, sizeof(aad2), bk);
	kura_keys_close(k2);

	/* A handle that names nothing at all. */
	ea->handle = 0x7fffff;
	unwrap_expect(k, a, w, n, aad2, sizeof(aad2), bk);
	kura_secret_free(bk);
	kura_keys_close(k);
}

/* Sessions closed under the provider's feet are replaced transparently;
 * a PIN the token no longer accepts is tried once, then never again. */
static void test_session_loss_and_pin_change(void **state)
{
	(void)state;
	struct kura_keys *k = open_ok();
	char id[KURA_KEK_ID_MAX];
	create_kek(k, "sessions", id);
	struct kura_secret *bk = test_key(0x21, 32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t n = 0;
	wrap_ok(k, id, bk, aad1, sizeof(aad1), w, &n);

	/* Every session of the process closes: the user is logged out. */
	struct direct d;
	direct_open(&d);
	CK_SLOT_ID slot = d.slot;
	assert_int_equal(d.fn->C_CloseAllSessions(slot), CKR_OK);
	unwrap_expect(k, id, w, n, aad1, sizeof(aad1), bk);
	wrap_ok(k, id, bk, aad2, sizeof(aad2), w, &n);

	/* The user PIN changes behind kura's back. */
	const char *new_pin = "55667788";
	assert_int_equal(
		d.fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				    NULL, NULL, &d.h),
		CKR_OK);
	CK_RV rv =
		d.fn->C_Login(d.h, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN));
	assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
	assert_int_equal(d.fn->C_SetPIN(d.h, (CK_UTF8CHAR_PTR)PIN, strlen(PIN),
					(CK_UTF8CHAR_PTR)new_pin,
					strlen(new_pin)),
			 CKR_OK);
	assert_int_equal(d.fn->C_CloseAllSessions(slot), CKR_OK);

	struct kura_error err = { 0 };
	struct kura_secret *got = NULL;
	assert_int_equal(unwrap(k, id, w, n, aad2, sizeof(aad2), &got, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "CKR_PIN_INCORRECT"));
	assert_null(strstr(err.msg, PIN));
	assert_null(strstr(err.msg, new_pin));
	kura_error_clear(&err);
	assert_int_equal(unwrap(k, id, w, n, aad2, sizeof(aad2), &got, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "not retried"));

	/* Put the PIN back; a new instance works, the refused one stays
	 * down (its PIN was read at start-up and was wrong). */
	assert_int_equal(
		d.fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				    NULL, NULL, &d.h),
		CKR_OK);
	assert_int_equal(d.fn->C_Login(d.h, CKU_USER, (CK_UTF8CHAR_PTR)new_pin,
				       strlen(new_pin)),
			 CKR_OK);
	assert_int_equal(d.fn->C_SetPIN(d.h, (CK_UTF8CHAR_PTR)new_pin,
					strlen(new_pin), (CK_UTF8CHAR_PTR)PIN,
					strlen(PIN)),
			 CKR_OK);
	struct kura_keys *k2 = open_ok();
	direct_close(&d);
	unwrap_expect(k2, id, w, n, aad2, sizeof(aad2), bk);
	kura_error_clear(&err);
	assert_int_equal(unwrap(k, id, w, n, aad2, sizeof(aad2), &got, &err),
			 KURA_EKEY);
	kura_keys_close(k2);
	kura_keys_close(k);
	kura_secret_free(bk);
}

static void test_outage_recovery(void **state)
{
	(void)state;
	struct kura_keys *a = open_ok();
	struct kura_keys *b = open_ok();
	char id[KURA_KEK_ID_MAX];
	create_kek(a, "outage", id);
	struct kura_secret *bk = test_key(0x33, 32);
	uint8_t w[KURA_WRAPPED_MAX], w2[KURA_WRAPPED_MAX];
	size_t n = 0, n2 = 0;
	wrap_ok(a, id, bk, aad1, sizeof(aad1), w, &n);
	unwrap_expect(b, id, w, n, aad1, sizeof(aad1), bk);

	/* The token directory disappears. */
	assert_int_equal(rename(g.tokens, g.tokens_away), 0);
	struct kura_error err = { 0 };
	struct kura_secret *got = NULL;
	assert_int_equal(unwrap(a, id, w, n, aad1, sizeof(aad1), &got, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "unavailable"));
	assert_non_null(strstr(err.msg, TOKEN));
	/* Now it fails fast, without touching the module, and says when it
	 * will try again; no call reports the key as missing or destroyed. */
	double t0 = now_s();
	for (int i = 0; i < 100; i++) {
		kura_error_clear(&err);
		assert_int_equal(unwrap(a, id, w, n, aad1, sizeof(aad1), &got,
					&err),
				 KURA_EKEY);
	}
	assert_true(now_s() - t0 < 0.5);
	assert_non_null(strstr(err.msg, "next retry"));
	kura_error_clear(&err);
	assert_int_equal(wrap(a, id, bk, aad1, sizeof(aad1), w2, &n2, &err),
			 KURA_EKEY);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_kek_destroy(a, id, &err), KURA_EKEY);
	unwrap_fails(a, "p11:00112233445566778899aabbccddeeff", w, n, aad1,
		     sizeof(aad1), KURA_EKEY);
	/* The other instance finds out on its own: a miss on a dead token is
	 * not "unknown key". */
	unwrap_fails(b, "p11:ffeeddccbbaa99887766554433221100", w, n, aad1,
		     sizeof(aad1), KURA_EKEY);

	/* After the backoff a recovery attempt re-initialises the module,
	 * but the token is still away: still unavailable, longer backoff. */
	usleep(1100 * 1000);
	kura_error_clear(&err);
	assert_int_equal(unwrap(a, id, w, n, aad1, sizeof(aad1), &got, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "still unavailable"));

	/* The directory comes back; the next attempt (2 s backoff) works. */
	assert_int_equal(rename(g.tokens_away, g.tokens), 0);
	kura_error_clear(&err);
	assert_int_equal(unwrap(a, id, w, n, aad1, sizeof(aad1), &got, &err),
			 KURA_EKEY);
	usleep(2100 * 1000);
	unwrap_expect(a, id, w, n, aad1, sizeof(aad1), bk);
	wrap_ok(a, id, bk, aad2, sizeof(aad2), w2, &n2);
	/* b saw the outage too and its backoff has long passed; its sessions
	 * died with a's re-initialisation: it finds the token again. */
	unwrap_expect(b, id, w2, n2, aad2, sizeof(aad2), bk);
	unwrap_expect(b, id, w, n, aad1, sizeof(aad1), bk);
	char id2[KURA_KEK_ID_MAX];
	create_kek(b, "after-outage", id2);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_kek_destroy(a, id2, &err), KURA_OK);
	unwrap_fails(b, id2, w, n, aad1, sizeof(aad1), KURA_EKEY);

	kura_secret_free(bk);
	kura_keys_close(b);
	kura_keys_close(a);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--child-unwrap") == 0)
		return child_unwrap(argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_pin_file_checks),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_integrity),
		cmocka_unit_test(test_unknown_id),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_import_interop),
		cmocka_unit_test(test_not_extractable),
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_stale_handle),
		cmocka_unit_test(test_throughput),
		cmocka_unit_test(test_session_loss_and_pin_change),
		cmocka_unit_test(test_outage_recovery),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * test_keys_kmip.c — the kmip key provider (src/keys/kmip*.c) through the
 * keys.h contract, against real PyKMIP 0.10 servers on 127.0.0.1.
 *
 * The group setup makes a mkdtemp directory with throwaway ECDSA P-256
 * certificates (a CA, a server certificate for 127.0.0.1 with serverAuth, a
 * client certificate with clientAuth, and a client certificate from another
 * CA), writes a server configuration with a private database, log and
 * policy directory, and starts PyKMIP (Debian's /usr/bin/python3) in its own
 * process group.  A second server, whose Encrypt/Decrypt answer Operation
 * Not Supported, exercises kmip_allow_get.  Teardown kills both process
 * groups (PyKMIP takes ~10 s to stop politely, so SIGKILL after a short
 * grace) and removes the directory; nothing is left running.
 *
 * When /usr/bin/python3 cannot import PyKMIP the tests are skipped.
 *
 * The throughput test prints wraps per second over one connection and over
 * four threads; it asserts only that every operation succeeded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kura/config.h"
#include "kura/keys.h"
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "rmtree.h"
#include "kura/banned.h"

#define PYTHON "/usr/bin/python3"
#define WAIT_START_MS 30000

struct server {
	pid_t pid; /* process group leader, 0: not running */
	uint16_t port;
	char conf[PATH_MAX];
	char log[PATH_MAX];
	bool refuse_crypto;
};

struct fixture {
	bool skip;
	char dir[64];
	char path[PATH_MAX]; /* scratch */
	struct server main, refusing;
};

static struct fixture *g;

static const char *in_dir(const char *name)
{
	snprintf(g->path, sizeof(g->path), "%s/%s", g->dir, name);
	return g->path;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Certificates: P-256 keys, clientAuth/serverAuth EKUs, 2 days. */
static const char mkcerts_sh[] =
	"set -e\n"
	"cd \"$1\"\n"
	"ca() {\n"
	"  openssl ecparam -name prime256v1 -genkey -noout -out $1.key\n"
	"  openssl req -x509 -new -key $1.key -subj /CN=$1 -days 2 -out $1.pem \\\n"
	"    -addext basicConstraints=critical,CA:TRUE \\\n"
	"    -addext keyUsage=critical,keyCertSign,cRLSign\n"
	"}\n"
	"leaf() {\n"
	"  openssl ecparam -name prime256v1 -genkey -noout -out $1.key\n"
	"  openssl req -new -key $1.key -subj /CN=$3 -out $1.csr\n"
	"  printf '%s\\nbasicConstraints=CA:FALSE\\nkeyUsage=digitalSignature\\n' \"$4\" > $1.ext\n"
	"  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial \\\n"
	"    -days 2 -extfile $1.ext -out $1.pem 2>/dev/null\n"
	"}\n"
	"ca ca\n"
	"ca rogue-ca\n"
	"leaf server ca kmip-server 'extendedKeyUsage=serverAuth\n"
	"subjectAltName=IP:127.0.0.1,DNS:localhost'\n"
	"leaf client ca kura-test extendedKeyUsage=clientAuth\n"
	"leaf rogue rogue-ca kura-test extendedKeyUsage=clientAuth\n"
	"chmod 600 *.key\n";

/* Runs PyKMIP's server; with KURA_TEST_REFUSE_CRYPTO=1 its Encrypt and
 * Decrypt answer Operation Not Supported, like a server without them. */
static const char launcher_py[] =
	"import os, sys\n"
	"from kmip.core import exceptions\n"
	"from kmip.services.server import engine, server\n"
	"if os.environ.get('KURA_TEST_REFUSE_CRYPTO') == '1':\n"
	"    def refuse(self, payload):\n"
	"        raise exceptions.OperationNotSupported('no Encrypt/Decrypt here')\n"
	"    engine.KmipEngine._process_encrypt = refuse\n"
	"    engine.KmipEngine._process_decrypt = refuse\n"
	"sys.argv = ['pykmip-server'] + sys.argv[1:]\n"
	"server.main()\n";

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void server_config(struct server *s, const char *name)
{
	char text[4096];
	snprintf(s->conf, sizeof(s->conf), "%s/%s.conf", g->dir, name);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", g->dir, name);
	snprintf(text, sizeof(text),
		 "[server]\n"
		 "hostname=127.0.0.1\n"
		 "port=%u\n"
		 "certificate_path=%s/server.pem\n"
		 "key_path=%s/server.key\n"
		 "ca_path=%s/ca.pem\n"
		 "auth_suite=TLS1.2\n"
		 "policy_path=%s/policies\n"
		 "enable_tls_client_auth=True\n"
		 "logging_level=INFO\n"
		 "database_path=%s/%s.db\n",
		 (unsigned)s->port, g->dir, g->dir, g->dir, g->dir, g->dir,
		 name);
	write_file(s->conf, text, 0600);
}

static void server_start(struct server *s)
{
	char launcher[PATH_MAX], out[PATH_MAX + 8];
	snprintf(launcher, sizeof(launcher), "%s/launcher.py", g->dir);
	snprintf(out, sizeof(out), "%s.out", s->log);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setsid(); /* its own group: killed whole, helpers too */
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (s->refuse_crypto)
			setenv("KURA_TEST_REFUSE_CRYPTO", "1", 1);
		execl(PYTHON, PYTHON, launcher, "-f", s->conf, "-l", s->log,
		      (char *)NULL);
		_exit(127);
	}
	s->pid = pid;
	uint64_t until = kura_mono_ns() + WAIT_START_MS * 1000000ull;
	while (!port_open(s->port)) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			s->pid = 0;
			fail_msg("PyKMIP exited during start-up (see %s)", out);
		}
		if (kura_mono_ns() > until)
			fail_msg("PyKMIP did not listen on port %u",
				 (unsigned)s->port);
		usleep(50 * 1000);
	}
}

static void server_kill(struct server *s)
{
	if (s->pid <= 0)
		return;
	(void)kill(-s->pid, SIGKILL);
	(void)waitpid(s->pid, NULL, 0);
	/* helpers in the group are reaped by init; make sure they are gone */
	for (int i = 0; i < 100 && kill(-s->pid, 0) == 0; i++)
		usleep(20 * 1000);
	s->pid = 0;
}

static int group_setup(void **state)
{
	(void)state;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -1;
	if (system(PYTHON
		   " -c 'import kmip.services.server' >/dev/null 2>&1") != 0) {
		g->skip = true;
		return 0;
	}
	snprintf(g->dir, sizeof(g->dir), "/tmp/kura-kmip-XXXXXX");
	if (mkdtemp(g->dir) == NULL)
		return -1;
	write_file(in_dir("mkcerts.sh"), mkcerts_sh, 0700);
	write_file(in_dir("launcher.py"), launcher_py, 0600);
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "sh %s/mkcerts.sh %s >%s/mkcerts.log 2>&1",
		 g->dir, g->dir, g->dir);
	if (system(cmd) != 0)
		return -1;
	if (mkdir(in_dir("policies"), 0700) != 0)
		return -1;
	g->main.port = free_port();
	server_config(&g->main, "main");
	server_start(&g->main);
	g->refusing.port = free_port();
	g->refusing.refuse_crypto = true;
	server_config(&g->refusing, "refusing");
	server_start(&g->refusing);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (g == NULL)
		return 0;
	server_kill(&g->main);
	server_kill(&g->refusing);
	if (g->dir[0] != '\0')
		rmtree(g->dir);
	free(g);
	g = NULL;
	return 0;
}

/* ---- provider helpers ---- */

static struct kura_config *config_for(const struct server *s,
				      const char *client)
{
	struct kura_config *cfg = NULL;
	char v[PATH_MAX + 32];
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "provider", "kmip", NULL),
			 KURA_OK);
	snprintf(v, sizeof(v), "127.0.0.1:%u", (unsigned)s->port);
	assert_int_equal(kura_config_set(cfg, "keys", "server", v, NULL),
			 KURA_OK);
	snprintf(v, sizeof(v), "%s/ca.pem", g->dir);
	assert_int_equal(kura_config_set(cfg, "keys", "ca_file", v, NULL),
			 KURA_OK);
	snprintf(v, sizeof(v), "%s/%s.pem", g->dir, client);
	assert_int_equal(kura_config_set(cfg, "keys", "cert_file", v, NULL),
			 KURA_OK);
	snprintf(v, sizeof(v), "%s/%s.key", g->dir, client);
	assert_int_equal(kura_config_set(cfg, "keys", "key_file", v, NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "timeout", "5", NULL),
			 KURA_OK);
	return cfg;
}

static struct kura_keys *open_ok(struct kura_config *cfg)
{
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_open(cfg, g->dir, &k, &err);
	if (rc != KURA_OK)
		fail_msg("open: %s (%s)", kura_errname(rc), err.msg);
	return k;
}

static struct kura_keys *open_main(void)
{
	struct kura_config *cfg = config_for(&g->main, "client");
	struct kura_keys *k = open_ok(cfg);
	kura_config_free(cfg);
	return k;
}

static void create_ok(struct kura_keys *k, const char *label,
		      char id[KURA_KEK_ID_MAX])
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_create(k, label, id, &err);
	if (rc != KURA_OK)
		fail_msg("kek_create: %s (%s)", kura_errname(rc), err.msg);
	assert_memory_equal(id, "kmip:", 5);
}

static void wrap_ok(struct kura_keys *k, const char *id,
		    const struct kura_secret *plain, const char *aad,
		    uint8_t out[KURA_WRAPPED_MAX], size_t *out_len)
{
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_wrap(k, id, plain, (const uint8_t *)aad,
					  strlen(aad), out, out_len, &err);
	if (rc != KURA_OK)
		fail_msg("wrap: %s (%s)", kura_errname(rc), err.msg);
}

static enum kura_err unwrap(struct kura_keys *k, const char *id,
			    const uint8_t *in, size_t n, const char *aad,
			    struct kura_secret **out, struct kura_error *err)
{
	return kura_keys_unwrap(k, id, in, n, (const uint8_t *)aad, strlen(aad),
				out, err);
}

static struct kura_secret *random_secret(size_t n)
{
	struct kura_secret *s = NULL;
	assert_int_equal(kura_secret_random(n, &s, NULL), KURA_OK);
	return s;
}

/* AES-256-GCM open with OpenSSL directly: does the wrapped form mean what
 * the format says? */
static bool gcm_open(const uint8_t key[32], const uint8_t *wrapped, size_t n,
		     const char *aad, uint8_t *plain)
{
	const uint8_t *iv = wrapped + 2, *ct = wrapped + 14;
	size_t ct_len = n - 2 - 12 - 16;
	const uint8_t *tag = ct + ct_len;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0;
	bool ok =
		c != NULL &&
		EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) ==
			1 &&
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
		EVP_DecryptInit_ex(c, NULL, NULL, key, iv) == 1 &&
		EVP_DecryptUpdate(c, NULL, &len, (const uint8_t *)aad,
				  (int)strlen(aad)) == 1 &&
		EVP_DecryptUpdate(c, plain, &len, ct, (int)ct_len) == 1 &&
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) ==
			1 &&
		EVP_DecryptFinal_ex(c, plain + len, &len) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

#define SKIP_IF_NO_PYKMIP()     \
	do {                    \
		if (g->skip)    \
			skip(); \
	} while (0)

/* ---- tests ---- */

static void test_caps(void **state)
{
	(void)state;
	const struct kura_keys_ops *ops = &kura_keys_kmip;
	assert_string_equal(ops->name, "kmip");
	assert_int_equal(ops->caps, KURA_KEYS_CAP_REMOTE |
					    KURA_KEYS_CAP_IMPORT |
					    KURA_KEYS_CAP_DESTROY);
	assert_non_null(ops->kek_import);
	assert_non_null(ops->kek_destroy);
	/* PyKMIP cannot sign a digest with a CRYPTREC-listed scheme. */
	assert_null(ops->signer_create);
	assert_null(ops->sign);
	assert_null(ops->public_key);
}

static void test_round_trip(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	char id[KURA_KEK_ID_MAX];
	create_ok(k, "bucket-a", id);
	static const size_t sizes[] = { 1, 16, 32, 64 };
	for (size_t i = 0; i < 4; i++) {
		struct kura_secret *plain = random_secret(sizes[i]);
		uint8_t w[KURA_WRAPPED_MAX];
		size_t wn = 0;
		const char *aad = i % 2 ? "" : "tenant 1 bucket 7";
		wrap_ok(k, id, plain, aad, w, &wn);
		assert_int_equal(wn, 2 + 12 + sizes[i] + 16);
		assert_int_equal(w[0], 0x01);
		assert_int_equal(w[1], 0x01); /* sealed by the server */
		struct kura_secret *back = NULL;
		struct kura_error err = { 0 };
		enum kura_err rc = unwrap(k, id, w, wn, aad, &back, &err);
		if (rc != KURA_OK)
			fail_msg("unwrap: %s (%s)", kura_errname(rc), err.msg);
		assert_int_equal(back->len, plain->len);
		assert_memory_equal(back->data, plain->data, plain->len);
		kura_secret_free(back);
		kura_secret_free(plain);
	}
	/* Two wraps of the same key differ (fresh IV). */
	struct kura_secret *plain = random_secret(32);
	uint8_t a[KURA_WRAPPED_MAX], b[KURA_WRAPPED_MAX];
	size_t an = 0, bn = 0;
	wrap_ok(k, id, plain, "x", a, &an);
	wrap_ok(k, id, plain, "x", b, &bn);
	assert_int_equal(an, bn);
	assert_memory_not_equal(a, b, an);
	/* A second provider instance sees the same KEK. */
	struct kura_keys *k2 = open_main();
	struct kura_secret *back = NULL;
	assert_int_equal(unwrap(k2, id, a, an, "x", &back, NULL), KURA_OK);
	assert_memory_equal(back->data, plain->data, 32);
	kura_secret_free(back);
	kura_keys_close(k2);
	/* Bad arguments. */
	struct kura_secret *big = random_secret(65);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	assert_int_equal(kura_keys_wrap(k, id, big, NULL, 0, w, &wn, NULL),
			 KURA_EINVAL);
	char longlabel[200];
	memset(longlabel, 'a', sizeof(longlabel) - 1);
	longlabel[sizeof(longlabel) - 1] = '\0';
	char id2[KURA_KEK_ID_MAX];
	assert_int_equal(kura_keys_kek_create(k, longlabel, id2, NULL),
			 KURA_EINVAL);
	assert_int_equal(kura_keys_kek_create(k, "bad\nlabel", id2, NULL),
			 KURA_EINVAL);
	kura_secret_free(big);
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_integrity(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	char id[KURA_KEK_ID_MAX], other[KURA_KEK_ID_MAX];
	create_ok(k, "integrity", id);
	create_ok(k, "integrity-other", other);
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	wrap_ok(k, id, plain, "aad-1", w, &wn);
	struct kura_secret *out = NULL;
	struct kura_error err = { 0 };

	assert_int_equal(unwrap(k, id, w, wn, "aad-2", &out, &err),
			 KURA_EINTEGRITY);
	assert_null(out);
	assert_int_equal(unwrap(k, id, w, wn, "", &out, NULL), KURA_EINTEGRITY);
	/* another KEK */
	assert_int_equal(unwrap(k, other, w, wn, "aad-1", &out, NULL),
			 KURA_EINTEGRITY);
	/* a flipped bit in the IV, the ciphertext, the tag */
	static const size_t at[] = { 2, 13, 14, 30, 45, 61 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		uint8_t t[KURA_WRAPPED_MAX];
		memcpy(t, w, wn);
		t[at[i]] ^= 0x01;
		assert_int_equal(unwrap(k, id, t, wn, "aad-1", &out, NULL),
				 KURA_EINTEGRITY);
	}
	/* truncated (a shorter tag would satisfy PyKMIP), bad header */
	assert_int_equal(unwrap(k, id, w, wn - 1, "aad-1", &out, NULL),
			 KURA_EINTEGRITY);
	assert_int_equal(unwrap(k, id, w, 30, "aad-1", &out, NULL),
			 KURA_EINTEGRITY);
	uint8_t t[KURA_WRAPPED_MAX];
	memcpy(t, w, wn);
	t[0] = 0x02;
	assert_int_equal(unwrap(k, id, t, wn, "aad-1", &out, NULL),
			 KURA_EINTEGRITY);
	memcpy(t, w, wn);
	t[1] = 0x07;
	assert_int_equal(unwrap(k, id, t, wn, "aad-1", &out, NULL),
			 KURA_EINTEGRITY);
	/* still fine untouched */
	assert_int_equal(unwrap(k, id, w, wn, "aad-1", &out, NULL), KURA_OK);
	kura_secret_free(out);
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_unknown_id(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	struct kura_error err = { 0 };
	assert_int_equal(kura_keys_wrap(k, "kmip:999999", plain, NULL, 0, w,
					&wn, &err),
			 KURA_ENOENT);
	assert_non_null(strstr(err.msg, "999999"));
	assert_int_equal(kura_keys_wrap(k, "local-00", plain, NULL, 0, w, &wn,
					NULL),
			 KURA_ENOENT);
	assert_int_equal(kura_keys_wrap(k, "kmip:", plain, NULL, 0, w, &wn,
					NULL),
			 KURA_ENOENT);
	assert_int_equal(kura_keys_wrap(k, "kmip:a b", plain, NULL, 0, w, &wn,
					NULL),
			 KURA_ENOENT);
	uint8_t fake[2 + 12 + 32 + 16] = { 0x01, 0x01 };
	struct kura_secret *out = NULL;
	assert_int_equal(unwrap(k, "kmip:999999", fake, sizeof(fake), "", &out,
				NULL),
			 KURA_ENOENT);
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_destroy(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	char id[KURA_KEK_ID_MAX];
	create_ok(k, "to-shred", id);
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	wrap_ok(k, id, plain, "a", w, &wn);
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_destroy(k, id, &err);
	if (rc != KURA_OK)
		fail_msg("destroy: %s (%s)", kura_errname(rc), err.msg);
	/* PyKMIP deletes destroyed objects: the id is now unknown. */
	struct kura_secret *out = NULL;
	rc = unwrap(k, id, w, wn, "a", &out, NULL);
	assert_true(rc == KURA_ENOENT || rc == KURA_EKEY);
	assert_null(out);
	rc = kura_keys_wrap(k, id, plain, NULL, 0, w, &wn, NULL);
	assert_true(rc == KURA_ENOENT || rc == KURA_EKEY);
	/* again: success */
	assert_int_equal(kura_keys_kek_destroy(k, id, NULL), KURA_OK);
	/* and in another instance too */
	struct kura_keys *k2 = open_main();
	rc = unwrap(k2, id, w, wn, "a", &out, NULL);
	assert_true(rc == KURA_ENOENT || rc == KURA_EKEY);
	kura_keys_close(k2);
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_import_matches_openssl(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	struct kura_secret *kek = random_secret(32);
	char id[KURA_KEK_ID_MAX];
	struct kura_error err = { 0 };
	enum kura_err rc = kura_keys_kek_import(k, "byok", kek, id, &err);
	if (rc != KURA_OK)
		fail_msg("import: %s (%s)", kura_errname(rc), err.msg);
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX], got[64];
	size_t wn = 0;
	wrap_ok(k, id, plain, "bound to this", w, &wn);
	assert_true(gcm_open(kek->data, w, wn, "bound to this", got));
	assert_memory_equal(got, plain->data, 32);
	assert_false(gcm_open(kek->data, w, wn, "bound to that", got));
	struct kura_secret *back = NULL;
	assert_int_equal(unwrap(k, id, w, wn, "bound to this", &back, NULL),
			 KURA_OK);
	assert_memory_equal(back->data, plain->data, 32);
	kura_secret_free(back);
	struct kura_secret *short_key = random_secret(16);
	assert_int_equal(kura_keys_kek_import(k, "short", short_key, id, NULL),
			 KURA_EINVAL);
	kura_secret_free(short_key);
	kura_secret_free(plain);
	kura_secret_free(kek);
	kura_keys_close(k);
}

static void test_tls_failures(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };

	/* A client certificate from a CA the server does not trust. */
	struct kura_config *cfg = config_for(&g->main, "rogue");
	uint64_t t0 = kura_mono_ns();
	assert_int_equal(kura_keys_open(cfg, g->dir, &k, &err), KURA_EKEY);
	assert_null(k);
	assert_true(kura_mono_ns() - t0 < 3000000000ull);
	assert_non_null(strstr(err.msg, "TLS handshake"));
	print_message("# untrusted client: %s\n", err.msg);
	kura_config_free(cfg);

	/* The server's certificate does not carry the name we expect. */
	cfg = config_for(&g->main, "client");
	assert_int_equal(kura_config_set(cfg, "keys", "server_name",
					 "kms.example", NULL),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g->dir, &k, &err), KURA_EKEY);
	assert_non_null(strstr(err.msg, "certificate rejected"));
	print_message("# wrong name: %s\n", err.msg);
	kura_config_free(cfg);

	/* A server trusted by another CA. */
	cfg = config_for(&g->main, "client");
	char v[PATH_MAX];
	snprintf(v, sizeof(v), "%s/rogue-ca.pem", g->dir);
	assert_int_equal(kura_config_set(cfg, "keys", "ca_file", v, NULL),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g->dir, &k, &err), KURA_EKEY);
	assert_non_null(strstr(err.msg, "certificate rejected"));
	kura_config_free(cfg);

	/* A key file others can read is refused before anything is sent. */
	cfg = config_for(&g->main, "client");
	snprintf(v, sizeof(v), "%s/client.key", g->dir);
	assert_int_equal(chmod(v, 0640), 0);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g->dir, &k, &err), KURA_EPERM);
	assert_non_null(strstr(err.msg, "0640"));
	assert_int_equal(chmod(v, 0600), 0);
	kura_config_free(cfg);

	/* Missing settings. */
	assert_int_equal(kura_config_new(&cfg, NULL), KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "provider", "kmip", NULL),
			 KURA_OK);
	kura_error_clear(&err);
	assert_int_equal(kura_keys_open(cfg, g->dir, &k, &err), KURA_ECONFIG);
	assert_non_null(strstr(err.msg, "server"));
	kura_config_free(cfg);
}

struct worker {
	struct kura_keys *k;
	const char *id;
	int n;
	bool check; /* unwrap and compare each wrap */
	int ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n; i++) {
		struct kura_secret *plain = NULL;
		if (kura_secret_random(32, &plain, NULL) != KURA_OK)
			continue;
		uint8_t buf[KURA_WRAPPED_MAX];
		size_t n = 0;
		struct kura_secret *back = NULL;
		bool ok = kura_keys_wrap(w->k, w->id, plain,
					 (const uint8_t *)"c", 1, buf, &n,
					 NULL) == KURA_OK;
		if (ok && w->check)
			ok = kura_keys_unwrap(w->k, w->id, buf, n,
					      (const uint8_t *)"c", 1, &back,
					      NULL) == KURA_OK &&
			     back->len == 32 &&
			     memcmp(back->data, plain->data, 32) == 0;
		w->ok += ok;
		kura_secret_free(back);
		kura_secret_free(plain);
	}
	return NULL;
}

static double run_workers(struct kura_keys *k, const char *id, int threads,
			  int per_thread, bool check)
{
	pthread_t t[8];
	struct worker w[8];
	uint64_t t0 = kura_mono_ns();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){
			.k = k, .id = id, .n = per_thread, .check = check
		};
		assert_int_equal(
			pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
	}
	double secs = (double)(kura_mono_ns() - t0) / 1e9;
	assert_int_equal(ok, threads * per_thread);
	return ok / secs;
}

static void test_concurrent_and_throughput(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	char id[KURA_KEK_ID_MAX];
	create_ok(k, "concurrent", id);
	/* correctness: 4 threads wrap and unwrap at once */
	(void)run_workers(k, id, 4, 50, true);
	/* throughput of wrap alone (one KMIP Encrypt each), not asserted */
	double one = run_workers(k, id, 1, 300, false);
	double four = run_workers(k, id, 4, 100, false);
	print_message("# KMIP wraps per second: %.0f over one connection, %.0f "
		      "from 4 threads over 4 connections\n",
		      one, four);
	kura_keys_close(k);
}

/* The server dies under an open provider, then comes back on the same
 * database: calls fail fast with KURA_EKEY, then recover by themselves. */
static void test_server_restart(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_keys *k = open_main();
	char id[KURA_KEK_ID_MAX];
	create_ok(k, "survives", id);
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	wrap_ok(k, id, plain, "r", w, &wn);

	server_kill(&g->main);
	struct kura_secret *out = NULL;
	struct kura_error err = { 0 };
	uint64_t t0 = kura_mono_ns();
	assert_int_equal(unwrap(k, id, w, wn, "r", &out, &err), KURA_EKEY);
	uint64_t first = kura_mono_ns() - t0;
	print_message("# server down: %s (%.1f ms)\n", err.msg,
		      (double)first / 1e6);
	assert_true(first < 2000000000ull);
	assert_non_null(strstr(err.msg, "KMIP server"));
	/* During the back-off: no wait at all. */
	kura_error_clear(&err);
	t0 = kura_mono_ns();
	assert_int_equal(kura_keys_wrap(k, id, plain, NULL, 0, w, &wn, &err),
			 KURA_EKEY);
	assert_true(kura_mono_ns() - t0 < 100000000ull);
	assert_non_null(strstr(err.msg, "next attempt"));

	server_start(&g->main);
	enum kura_err rc = KURA_EKEY;
	uint64_t until = kura_mono_ns() + 30000000000ull;
	size_t wn2 = 0;
	uint8_t w2[KURA_WRAPPED_MAX];
	while (rc != KURA_OK && kura_mono_ns() < until) {
		kura_error_clear(&err);
		rc = kura_keys_wrap(k, id, plain, (const uint8_t *)"r", 1, w2,
				    &wn2, &err);
		if (rc != KURA_OK) {
			assert_int_equal(rc, KURA_EKEY);
			usleep(100 * 1000);
		}
	}
	if (rc != KURA_OK)
		fail_msg("no recovery: %s", err.msg);
	assert_int_equal(unwrap(k, id, w2, wn2, "r", &out, NULL), KURA_OK);
	assert_memory_equal(out->data, plain->data, 32);
	kura_secret_free(out);
	kura_secret_free(plain);
	kura_keys_close(k);
}

/* The server hangs (SIGSTOP): the first call waits one timeout, the next
 * ones fail at once, and service resumes when the server does. */
static void test_server_hangs(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	struct kura_config *cfg = config_for(&g->main, "client");
	assert_int_equal(kura_config_set(cfg, "keys", "timeout", "1", NULL),
			 KURA_OK);
	struct kura_keys *k = open_ok(cfg);
	kura_config_free(cfg);
	char id[KURA_KEK_ID_MAX];
	create_ok(k, "hangs", id);
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	wrap_ok(k, id, plain, "h", w, &wn);

	assert_int_equal(kill(-g->main.pid, SIGSTOP), 0);
	struct kura_error err = { 0 };
	uint64_t t0 = kura_mono_ns();
	enum kura_err rc = kura_keys_wrap(k, id, plain, NULL, 0, w, &wn, &err);
	uint64_t first = kura_mono_ns() - t0;
	print_message("# server hung: %s (%.0f ms)\n", err.msg,
		      (double)first / 1e6);
	assert_int_equal(rc, KURA_EKEY);
	assert_non_null(strstr(err.msg, "timed out"));
	assert_true(first >= 900000000ull && first < 3000000000ull);
	kura_error_clear(&err);
	t0 = kura_mono_ns();
	assert_int_equal(kura_keys_wrap(k, id, plain, NULL, 0, w, &wn, &err),
			 KURA_EKEY);
	assert_true(kura_mono_ns() - t0 < 100000000ull);

	assert_int_equal(kill(-g->main.pid, SIGCONT), 0);
	rc = KURA_EKEY;
	uint64_t until = kura_mono_ns() + 20000000000ull;
	while (rc != KURA_OK && kura_mono_ns() < until) {
		rc = kura_keys_wrap(k, id, plain, NULL, 0, w, &wn, NULL);
		if (rc != KURA_OK)
			usleep(100 * 1000);
	}
	assert_int_equal(rc, KURA_OK);
	kura_secret_free(plain);
	kura_keys_close(k);
}

static void test_allow_get(void **state)
{
	(void)state;
	SKIP_IF_NO_PYKMIP();
	/* Off (the default): such a server is refused at the first wrap. */
	struct kura_config *cfg = config_for(&g->refusing, "client");
	struct kura_keys *k = open_ok(cfg);
	char id[KURA_KEK_ID_MAX];
	create_ok(k, "no-encrypt", id);
	struct kura_secret *plain = random_secret(32);
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wn = 0;
	struct kura_error err = { 0 };
	assert_int_equal(kura_keys_wrap(k, id, plain, NULL, 0, w, &wn, &err),
			 KURA_EKEY);
	assert_non_null(strstr(err.msg, "kmip_allow_get"));
	print_message("# refusing server: %s\n", err.msg);
	kura_keys_close(k);

	/* On: the KEK is fetched and used here, mode byte 0x02. */
	assert_int_equal(kura_config_set(cfg, "keys", "kmip_allow_get", "true",
					 NULL),
			 KURA_OK);
	assert_int_equal(kura_config_set(cfg, "keys", "bucket_key_ttl", "1",
					 NULL),
			 KURA_OK);
	k = open_ok(cfg);
	struct kura_secret *kek = random_secret(32);
	err = (struct kura_error){ 0 };
	enum kura_err rc = kura_keys_kek_import(k, "byok-local", kek, id, &err);
	if (rc != KURA_OK)
		fail_msg("import: %s (%s)", kura_errname(rc), err.msg);
	wrap_ok(k, id, plain, "local", w, &wn);
	assert_int_equal(wn, 2 + 12 + 32 + 16);
	assert_int_equal(w[0], 0x01);
	assert_int_equal(w[1], 0x02);
	uint8_t got[64];
	assert_true(gcm_open(kek->data, w, wn, "local", got));
	assert_memory_equal(got, plain->data, 32);
	struct kura_secret *back = NULL;
	assert_int_equal(unwrap(k, id, w, wn, "local", &back, NULL), KURA_OK);
	assert_memory_equal(back->data, plain->data, 32);
	kura_secret_free(back);
	assert_int_equal(unwrap(k, id, w, wn, "other", &back, NULL),
			 KURA_EINTEGRITY);
	/* after the TTL the KEK is fetched again; still works */
	usleep(1200 * 1000);
	assert_int_equal(unwrap(k, id, w, wn, "local", &back, NULL), KURA_OK);
	kura_secret_free(back);
	/* destroy: no cached copy may survive */
	assert_int_equal(kura_keys_kek_destroy(k, id, NULL), KURA_OK);
	rc = unwrap(k, id, w, wn, "local", &back, NULL);
	assert_true(rc == KURA_ENOENT || rc == KURA_EKEY);
	kura_secret_free(kek);
	kura_secret_free(plain);
	kura_keys_close(k);
	kura_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_integrity),
		cmocka_unit_test(test_unknown_id),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_import_matches_openssl),
		cmocka_unit_test(test_tls_failures),
		cmocka_unit_test(test_concurrent_and_throughput),
		cmocka_unit_test(test_allow_get),
		cmocka_unit_test(test_server_hangs),
		cmocka_unit_test(test_server_restart),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

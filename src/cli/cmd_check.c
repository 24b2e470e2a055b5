/*
 * cmd_check.c — `kura check`: report configuration choices that weaken
 * the protection kura can give (requirement A-16).  Each finding is one
 * line: ERROR (unsafe: the exit status is 1), WARN (a weaker setting that
 * may be deliberate) or INFO.  It reads the configuration and the files it
 * names; it changes nothing and needs no running server.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/fsutil.h"
#include "cli.h"
#include "kura/banned.h"

struct findings {
	int errors;
	int warnings;
};

static void say(struct findings *f, const char *level, const char *item,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void say(struct findings *f, const char *level, const char *item,
		const char *fmt, ...)
{
	va_list ap;
	if (strcmp(level, "ERROR") == 0)
		f->errors++;
	else if (strcmp(level, "WARN") == 0)
		f->warnings++;
	printf("%-5s %-24s ", level, item);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* A secret file must exist and be private (kura_check_private_file). */
static void private_file(struct findings *f, const char *item, const char *path)
{
	struct kura_error err = { 0 };
	if (path == NULL)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		say(f, "ERROR", item, "'%s' cannot be opened: %s", path, strerror(errno));
		return;
	}
	if (kura_check_private_file(fd, item, path, &err) != KURA_OK)
		say(f, "ERROR", item, "%s", err.msg);
	else
		say(f, "OK", item, "'%s' is private", path);
	close(fd);
}

/* Is path inside dir (after resolving both)? */
static bool inside(const char *path, const char *dir)
{
	char rp[PATH_MAX], rd[PATH_MAX];
	if (realpath(dir, rd) == NULL)
		return false;
	if (realpath(path, rp) == NULL)
		return strncmp(path, dir, strlen(dir)) == 0;
	size_t n = strlen(rd);
	return strncmp(rp, rd, n) == 0 && (rp[n] == '/' || rp[n] == '\0');
}

static void check_keys(struct findings *f, const struct kura_config *cfg,
		       const char *data_dir)
{
	const char *provider = kura_config_get(cfg, "keys", "provider");
	if (strcmp(provider, "local") == 0) {
		say(f, "WARN", "keys.provider",
		    "local keystore: the keys live on this host; not suitable where keys "
		    "must be held apart from the data (A-4), in hardware (A-5) or by "
		    "another organisation (A-6) — use pkcs11 or kmip");
		const char *mk = kura_config_get(cfg, "keys", "master_key_file");
		char def[PATH_MAX];
		if (mk == NULL) {
			snprintf(def, sizeof(def), "%s/keys/master.key", data_dir);
			mk = def;
		}
		if (inside(mk, data_dir))
			say(f, "WARN", "keys.master_key_file",
			    "the master key is stored with the data ('%s'): whoever copies the "
			    "data directory can decrypt it; move it to other media", mk);
		private_file(f, "keys.master_key_file", mk);
	} else if (strcmp(provider, "pkcs11") == 0) {
		say(f, "OK", "keys.provider", "pkcs11: KEKs held in a token, not extractable");
		if (kura_config_get(cfg, "keys", "pin_file"))
			private_file(f, "keys.pin_file", kura_config_get(cfg, "keys", "pin_file"));
		else if (kura_env_secret("KURA_PKCS11_PIN") == NULL)
			say(f, "ERROR", "keys.pin_file",
			    "no pin_file and KURA_PKCS11_PIN is not set");
	} else if (strcmp(provider, "kmip") == 0) {
		say(f, "OK", "keys.provider", "kmip: KEKs held by a key manager");
		private_file(f, "keys.key_file", kura_config_get(cfg, "keys", "key_file"));
		if (kura_config_get_bool(cfg, "keys", "kmip_allow_get"))
			say(f, "WARN", "keys.kmip_allow_get",
			    "KEKs may be fetched into this host's memory when the server "
			    "cannot encrypt");
	}
	if (kura_config_get_u64(cfg, "keys", "bucket_key_ttl") > 3600)
		say(f, "WARN", "keys.bucket_key_ttl",
		    "bucket keys stay in memory over an hour after use: disabling or "
		    "destroying a key still takes effect at once, but a memory dump "
		    "holds more keys");
	if (strcmp(kura_config_get(cfg, "keys", "kek_scope"), "tenant") == 0)
		say(f, "INFO", "keys.kek_scope",
		    "tenant-wide keys: shredding one bucket cannot destroy its key (other "
		    "buckets share it)");
}

int cli_check(const struct kura_config *cfg, const struct cli *c)
{
	struct findings f = { 0 };
	struct stat st;
	const char *data_dir = kura_config_get(cfg, "server", "data_dir");
	(void)c;
	if (stat(data_dir, &st) != 0)
		say(&f, "INFO", "server.data_dir", "'%s' does not exist yet", data_dir);
	else if (st.st_mode & 077)
		say(&f, "ERROR", "server.data_dir", "'%s' is accessible to others (mode %04o)",
		    data_dir, (unsigned)(st.st_mode & 07777));
	else
		say(&f, "OK", "server.data_dir", "'%s' is private", data_dir);

	const char *cert = kura_config_get(cfg, "server", "tls_cert");
	if (cert == NULL)
		say(&f, "INFO", "server.tls_cert",
		    "no TLS: plain HTTP, which kura allows on loopback only");
	else
		private_file(&f, "server.tls_key", kura_config_get(cfg, "server", "tls_key"));

	check_keys(&f, cfg, data_dir);
	printf("%d errors, %d warnings\n", f.errors, f.warnings);
	return f.errors > 0 ? 1 : 0;
}

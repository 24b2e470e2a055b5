/*
 * cmd_check.c — `kura check`: report configuration choices that weaken
 * the protection kura can give (requirement A-16).  Each finding is one
 * line: level, the setting or file it is about, what it means in words,
 * and the requirements of docs/REQUIREMENTS.md it concerns, e.g.
 *   WARN  keys.provider  local keystore: ...
 * ERROR is unsafe (the exit status is 1), WARN a weaker setting that may
 * be deliberate, INFO worth knowing, OK a check that passed.  It reads the
 * configuration, the files it names and the data directory's lock; it
 * changes nothing and works with or without a running server.
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

#include "kura/daemon.h"
#include "kura/dirlock.h"
#include "kura/fsutil.h"
#include "cli.h"
#include "kura/placement.h"
#include "kura/banned.h"

struct findings {
	int errors;
	int warnings;
};

static void say(struct findings *f, const char *level, const char *item,
		const char *reqs, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void say(struct findings *f, const char *level, const char *item,
		const char *reqs, const char *fmt, ...)
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
	printf(" (%s)\n", reqs);
}

/* A secret file must exist and be private (kura_check_private_file). */
static void private_file(struct findings *f, const char *item, const char *reqs,
			 const char *path)
{
	struct kura_error err = { 0 };
	if (path == NULL)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		say(f, "ERROR", item, reqs,
		    "'%s' cannot be opened (%s): the server will "
		    "not start",
		    path, strerror(errno));
		return;
	}
	if (kura_check_private_file(fd, item, path, &err) != KURA_OK)
		say(f, "ERROR", item, reqs,
		    "%s: other users could read the secret in it; "
		    "chmod 600 it and make this user its owner",
		    err.msg);
	else
		say(f, "OK", item, reqs,
		    "'%s' is private: only this user can read it", path);
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

static void check_local_keys(struct findings *f, const struct kura_config *cfg,
			     const char *data_dir)
{
	say(f, "WARN", "keys.provider", "A-4, A-5, A-6",
	    "local keystore: the keys live on this host, so whoever controls the "
	    "host can read every object; it cannot hold keys apart from the data, "
	    "in hardware or with another organisation — use pkcs11 or kmip");
	const char *mk = kura_config_get(cfg, "keys", "master_key_file");
	char def[PATH_MAX];
	if (mk == NULL) {
		snprintf(def, sizeof(def), "%s/keys/master.key", data_dir);
		mk = def;
	}
	if (inside(mk, data_dir))
		say(f, "WARN", "keys.master_key_file", "A-4",
		    "the master key is stored with the data ('%s'): whoever copies the "
		    "data directory (a backup, a stolen disk) can decrypt it; move it "
		    "to other media",
		    mk);
	if (access(mk, F_OK) == 0)
		private_file(f, "keys.master_key_file", "A-4", mk);
}

static void check_keys(struct findings *f, const struct kura_config *cfg,
		       const char *data_dir)
{
	const char *provider = kura_config_get(cfg, "keys", "provider");
	if (strcmp(provider, "local") == 0) {
		check_local_keys(f, cfg, data_dir);
	} else if (strcmp(provider, "pkcs11") == 0) {
		say(f, "OK", "keys.provider", "A-4, A-5",
		    "pkcs11: the KEKs are held in a token and never leave it");
		/* A missing PIN is a configuration problem, reported above. */
		if (kura_config_get(cfg, "keys", "pin_file"))
			private_file(f, "keys.pin_file", "A-5",
				     kura_config_get(cfg, "keys", "pin_file"));
	} else if (strcmp(provider, "kmip") == 0) {
		say(f, "OK", "keys.provider", "A-4, A-6",
		    "kmip: the KEKs are held by a key manager that another organisation "
		    "can run");
		private_file(f, "keys.key_file", "A-6",
			     kura_config_get(cfg, "keys", "key_file"));
		if (kura_config_get_bool(cfg, "keys", "kmip_allow_get"))
			say(f, "WARN", "keys.kmip_allow_get", "A-6",
			    "KEKs may be fetched into this host's memory when the key "
			    "manager cannot encrypt: they then exist outside it");
	}
	if (kura_config_get_u64(cfg, "keys", "bucket_key_ttl") > 3600)
		say(f, "WARN", "keys.bucket_key_ttl", "A-11",
		    "bucket keys stay in memory over an hour after use: disabling or "
		    "destroying a key still takes effect at once, but a memory dump "
		    "holds more keys");
	if (strcmp(kura_config_get(cfg, "keys", "kek_scope"), "tenant") == 0)
		say(f, "INFO", "keys.kek_scope", "A-7, A-8",
		    "tenant-wide keys: shredding one bucket cannot destroy its key, "
		    "because the tenant's other buckets share it");
}

static void check_data_dir(struct findings *f, const char *data_dir)
{
	struct stat st;
	struct kura_error err = { 0 };
	pid_t pid = 0;
	if (stat(data_dir, &st) != 0) {
		say(f, "INFO", "server.data_dir", "A-16",
		    "'%s' does not exist yet; the "
		    "server creates it (mode 0700) at its first start",
		    data_dir);
		return;
	}
	if (st.st_mode & 077)
		say(f, "ERROR", "server.data_dir", "A-16",
		    "'%s' is open to other users (mode %04o): they could copy meta.db "
		    "(names, sizes, credentials' ids) and the keystore; chmod 700 it",
		    data_dir, (unsigned)(st.st_mode & 07777));
	else
		say(f, "OK", "server.data_dir", "A-16",
		    "'%s' is private: only this user "
		    "can enter it",
		    data_dir);
	if (kura_dirlock_holder(data_dir, &pid, &err) != KURA_OK)
		say(f, "WARN", "server.data_dir", "A-16", "%s", err.msg);
	else if (pid != 0)
		say(f, "INFO", "server.data_dir", "A-16",
		    "a server (pid %ld) owns this "
		    "data directory now",
		    (long)pid);
}

/* DATA_DIR/root-credentials holds the root secret in the clear: tolerable
 * on a host whose operator holds the keys anyway (local keystore), not
 * where the keys are kept from the operator. */
static void check_root_credentials(struct findings *f,
				   const struct kura_config *cfg,
				   const char *data_dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", data_dir,
		 KURA_ROOT_CREDENTIALS_FILE);
	if (access(path, F_OK) != 0)
		return;
	bool external =
		strcmp(kura_config_get(cfg, "keys", "provider"), "local") != 0;
	say(f, external ? "ERROR" : "WARN", "root-credentials", "A-1",
	    "'%s' holds the root tenant's secret in the clear: whoever reads the "
	    "data directory can read every root bucket through S3%s; keep the "
	    "secret elsewhere, then remove the file (or run kura tenant key "
	    "rotate root, which prints a new secret once and removes it)",
	    path, external ? ", defeating the external key provider" : "");
}

static void check_audit(struct findings *f, const struct kura_config *cfg)
{
	if (!kura_config_get_bool(cfg, "audit", "enabled")) {
		say(f, "ERROR", "audit.enabled", "B-6",
		    "the audit log is off: no request, admin or key command is "
		    "recorded, so nobody can later tell who read, changed or deleted "
		    "what; set [audit] enabled = true");
		return;
	}
	if (kura_config_get(cfg, "audit", "publish_dir") == NULL)
		say(f, "INFO", "audit.publish_dir", "B-6",
		    "signed checkpoints stay beside the log only: someone who controls "
		    "this host and its signing key could rewrite history unnoticed; "
		    "publish them to other media with [audit] publish_dir");
}

static void check_tls(struct findings *f, const struct kura_config *cfg)
{
	const char *cert = kura_config_get(cfg, "server", "tls_cert");
	if (cert == NULL)
		say(f, "INFO", "server.tls_cert", "A-12",
		    "no TLS: plain HTTP, which kura allows on loopback only");
	else
		private_file(f, "server.tls_key", "A-12",
			     kura_config_get(cfg, "server", "tls_key"));
}

static void config_problem(void *ctx, const char *msg)
{
	say(ctx, "ERROR", "configuration", "A-16",
	    "%s: the server refuses to start "
	    "with it",
	    msg);
}

/* Every backend and placement policy with its jurisdictions, so the
 * owner sees where copies may go (A-10, F-3); refusals are reported by
 * the configuration check above. */
static void check_placement(struct findings *f, const struct kura_config *cfg)
{
	struct kura_placement *p = NULL;
	struct kura_error err = { 0 };
	if (kura_placement_load(cfg, &p, &err) != KURA_OK)
		return;
	char line[1024];
	say(f, "OK", "placement", "A-10, E-1",
	    "%zu backends, %zu policies, home jurisdiction %s",
	    kura_placement_nbackends(p), kura_placement_npolicies(p),
	    kura_config_get(cfg, "server", "home_jurisdiction"));
	for (size_t i = 0; i < kura_placement_nbackends(p); i++) {
		kura_placement_describe_backend(p, i, line, sizeof(line));
		say(f, "INFO", "backend", "A-10", "%s", line);
	}
	for (size_t i = 0; i < kura_placement_npolicies(p); i++) {
		kura_placement_describe_policy(
			p, kura_placement_policy_at(p, i), line, sizeof(line));
		say(f, "INFO", "placement", "E-1, A-14",
		    "policy %s; copies of its buckets go there", line);
	}
	kura_placement_free(p);
}

int cli_check(const struct kura_config *cfg, const struct cli *c)
{
	struct findings f = { 0 };
	struct kura_error err = { 0 };
	const char *data_dir = kura_config_get(cfg, "server", "data_dir");
	(void)c;
	if (kura_daemon_check_config(cfg, config_problem, &f, &err) == KURA_OK)
		say(&f, "OK", "configuration", "A-16",
		    "every setting is valid");
	check_data_dir(&f, data_dir);
	check_tls(&f, cfg);
	check_keys(&f, cfg, data_dir);
	check_root_credentials(&f, cfg, data_dir);
	check_audit(&f, cfg);
	check_placement(&f, cfg);
	printf("%d errors, %d warnings\n", f.errors, f.warnings);
	return f.errors > 0 ? 1 : 0;
}

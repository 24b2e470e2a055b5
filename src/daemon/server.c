/*
 * server.c — the server process: bootstrap, recovery, listener, background
 * garbage collection, and shutdown.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread (the mask is set
 * before any thread starts) and taken synchronously by the main thread with
 * sigtimedwait, which doubles as the timer for background work.  Shutdown
 * stops accepting connections, lets requests in flight finish for a grace
 * period, then closes everything; anything not committed by then is
 * discarded by the same rules that make crashes safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kura/auth.h"
#include "kura/daemon.h"
#include "kura/fsutil.h"
#include "kura/http.h"
#include "kura/kms.h"
#include "kura/log.h"
#include "kura/s3.h"
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define GC_BATCH 4096
#define UPLOAD_SWEEP_BATCH 256
#define REWRAP_BATCH 20000
#define SHUTDOWN_GRACE_MS 10000

static enum kura_err save_credentials(struct kura_service *svc, const char *id,
				      const char *secret,
				      struct kura_error *err)
{
	char path[4200];
	char text[512];
	int n = snprintf(text, sizeof(text),
			 "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n"
			 "AWS_DEFAULT_REGION=%s\n",
			 id, secret, svc->region);
	snprintf(path, sizeof(path), "%s/%s", svc->data_dir,
		 KURA_ROOT_CREDENTIALS_FILE);
	enum kura_err rc =
		kura_write_file_atomic(path, text, (size_t)n, 0600, err);
	kura_wipe(text, sizeof(text));
	return rc;
}

/* The access key id is no secret; it is what S3 records will name. */
static enum kura_err audit_key_added(struct kura_service *svc, uint64_t tenant,
				     const char *id, struct kura_error *err)
{
	char detail[KURA_ACCESS_KEY_ID_MAX + 32];
	snprintf(detail, sizeof(detail), "{\"access_key_id\":\"%s\"}", id);
	return kura_service_audit_event(svc, "admin", "access_key.create",
					tenant, KURA_ROOT_TENANT, detail,
					KURA_OK, err);
}

/* The root tenant, created (and audited) when missing; *created says so. */
static enum kura_err root_tenant(struct kura_service *svc,
				 struct kura_tenant *root, bool *created,
				 struct kura_error *err)
{
	struct kura_meta *meta = svc->meta;
	*created = false;
	enum kura_err rc =
		kura_meta_tenant_get_by_name(meta, KURA_ROOT_TENANT, root, err);
	if (rc != KURA_ENOENT)
		return rc;
	kura_error_clear(err);
	memset(root, 0, sizeof(*root));
	snprintf(root->name, sizeof(root->name), "%s", KURA_ROOT_TENANT);
	root->created_ms = kura_now_ms();
	rc = kura_meta_tenant_create(meta, root, err);
	if (rc == KURA_EEXIST) {
		kura_error_clear(err);
		return kura_meta_tenant_get_by_name(meta, KURA_ROOT_TENANT,
						    root, err);
	}
	if (rc == KURA_OK) {
		*created = true;
		rc = kura_service_audit_event(svc, "admin", "tenant.create",
					      root->id, root->name, NULL,
					      KURA_OK, err);
	}
	return rc;
}

/* First start without credentials in the environment: a generated key,
 * shown once and saved to DATA_DIR/root-credentials (the quick start reads
 * it; the owner removes it, see the README). */
static enum kura_err generate_root_key(struct kura_service *svc,
				       const struct kura_tenant *root,
				       struct kura_error *err)
{
	char id[KURA_ACCESS_KEY_LEN + 1], secret[KURA_SECRET_KEY_LEN + 1];
	enum kura_err rc = kura_auth_generate_key(id, secret, err);
	if (rc == KURA_OK)
		rc = kura_auth_add_key(svc->meta, svc->system_key, root->id, id,
				       secret, err);
	if (rc == KURA_OK)
		rc = audit_key_added(svc, root->id, id, err);
	if (rc == KURA_OK)
		rc = save_credentials(svc, id, secret, err);
	if (rc == KURA_OK)
		fprintf(stderr,
			"kura: created the root tenant; its credentials "
			"(shown once, saved to %s/%s):\n"
			"  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n",
			svc->data_dir, KURA_ROOT_CREDENTIALS_FILE, id, secret);
	kura_wipe(secret, sizeof(secret));
	return rc;
}

/* Credentials from the environment: the key is added to the root tenant
 * when missing.  They are never written to a file — whoever set them has
 * them. */
static enum kura_err env_root_key(struct kura_service *svc,
				  const struct kura_tenant *root,
				  const char *id, const char *secret,
				  struct kura_error *err)
{
	struct kura_meta *meta = svc->meta;
	struct kura_access_key existing;
	struct kura_error e = { 0 };
	enum kura_err rc = kura_meta_access_key_get(meta, id, &existing, &e);
	if (rc == KURA_ENOENT) {
		rc = kura_auth_add_key(meta, svc->system_key, root->id, id,
				       secret, err);
		if (rc == KURA_OK)
			rc = audit_key_added(svc, root->id, id, err);
		if (rc == KURA_OK)
			kura_info(NULL,
				  "root tenant: added access key '%s' from the "
				  "environment",
				  id);
		return rc;
	}
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", e.msg);
	if (existing.tenant_id != root->id)
		return kura_fail(
			err, KURA_ECONFIG,
			"KURA_ROOT_ACCESS_KEY '%s' belongs to another tenant",
			id);
	if (!existing.active)
		kura_warn(
			NULL,
			"KURA_ROOT_ACCESS_KEY '%s' was revoked and stays revoked: "
			"requests signed with it are refused",
			id);
	return KURA_OK;
}

enum kura_err kura_daemon_bootstrap(struct kura_service *svc,
				    struct kura_error *err)
{
	struct kura_tenant root;
	char id[KURA_ACCESS_KEY_ID_MAX], secret[KURA_SECRET_KEY_MAX + 1];
	bool created;
	bool have_id =
		kura_env_secret_str("KURA_ROOT_ACCESS_KEY", id, sizeof(id));
	bool have_secret = kura_env_secret_str("KURA_ROOT_SECRET_KEY", secret,
					       sizeof(secret));
	enum kura_err rc;
	if (have_id != have_secret)
		rc = kura_fail(err, KURA_ECONFIG,
			       "set both KURA_ROOT_ACCESS_KEY and "
			       "KURA_ROOT_SECRET_KEY, or neither");
	else
		rc = root_tenant(svc, &root, &created, err);
	if (rc == KURA_OK && have_id)
		rc = env_root_key(svc, &root, id, secret, err);
	else if (rc == KURA_OK && created)
		rc = generate_root_key(svc, &root, err);
	kura_wipe(secret, sizeof(secret));
	return rc;
}

/* Abort multipart uploads older than [storage] abandoned_upload_age. */
static void sweep_uploads(struct kura_service *svc)
{
	uint64_t age = kura_config_get_u64(svc->cfg, "storage",
					   "abandoned_upload_age");
	struct kura_meta *meta = svc->meta;
	struct kura_pool *pool;
	if (age == 0 || (pool = kura_pool_new(0)) == NULL)
		return;
	struct kura_upload *us = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	int64_t before = kura_now_ms() - (int64_t)(age * 1000);
	if (kura_meta_upload_expired(meta, before, UPLOAD_SWEEP_BATCH, pool,
				     &us, &n, &err) != KURA_OK)
		kura_warn(NULL, "upload sweeper: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		kura_error_clear(&err);
		enum kura_err rc = kura_meta_upload_abort(meta, us[i].bucket_id,
							  us[i].id, &err);
		if (rc == KURA_OK)
			kura_info(NULL,
				  "aborted abandoned multipart upload '%s'",
				  us[i].id);
		else if (rc != KURA_ENOENT)
			kura_warn(NULL, "upload sweeper: %s", err.msg);
	}
	kura_pool_free(pool);
}

/* How to reach the server, on standard error for the person who started
 * it (the secret itself is printed only when it is created). */
static void print_banner(const struct kura_service *svc, const char *scheme,
			 const char *listen)
{
	char path[4200], creds[8600];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", svc->data_dir,
		 KURA_ROOT_CREDENTIALS_FILE);
	if (stat(path, &st) == 0)
		snprintf(
			creds, sizeof(creds),
			"%s\n"
			"                load them with:  set -a; . %s; set +a\n"
			"                (remove the file once they are kept elsewhere)",
			path, path);
	else if (kura_env_secret("KURA_ROOT_ACCESS_KEY") != NULL)
		snprintf(creds, sizeof(creds),
			 "the root access key given in "
			 "KURA_ROOT_ACCESS_KEY");
	else
		snprintf(
			creds, sizeof(creds),
			"the root tenant's keys (kura tenant key "
			"list root; kura tenant key create root makes a new one)");
	fprintf(stderr,
		"\nkura is ready.\n"
		"  endpoint:     %s://%s   (region %s)\n"
		"  credentials:  %s\n"
		"  try:          aws --endpoint-url %s://%s s3 mb s3://demo\n"
		"  stop:         Ctrl-C or SIGTERM\n\n",
		scheme, listen, svc->region, creds, scheme, listen);
}

/* One step of the lifecycle job; true when its round is over. */
static bool lifecycle(struct kura_service *svc, struct kura_lc_stats *st)
{
	struct kura_error err = { 0 };
	bool finished = true;
	if (kura_daemon_lifecycle_step(svc, st, &finished, &err) != KURA_OK) {
		kura_warn(NULL, "lifecycle: %s", err.msg);
		kura_daemon_record_integrity(svc, &err, true);
		return true;
	}
	if (finished && (st->markers || st->removed || st->aborted ||
			 st->locked || st->failed)) {
		kura_info(NULL,
			  "lifecycle: %llu expired, %llu removed, %llu "
			  "uploads aborted, %llu locked left alone, %llu "
			  "failed",
			  (unsigned long long)st->markers,
			  (unsigned long long)st->removed,
			  (unsigned long long)st->aborted,
			  (unsigned long long)st->locked,
			  (unsigned long long)st->failed);
		memset(st, 0, sizeof(*st));
	}
	return finished;
}

/* Move DEKs of rotated keys to their new bucket keys. */
static void rewrap(struct kura_service *svc)
{
	struct kura_error err = { 0 };
	size_t n = 0;
	if (kura_kms_rewrap_step(svc->kms, REWRAP_BATCH, &n, &err) != KURA_OK) {
		kura_warn(NULL, "key rotation: %s", err.msg);
		kura_daemon_record_integrity(svc, &err, true);
	} else if (n > 0)
		kura_info(NULL, "key rotation: re-wrapped %zu data keys", n);
}

/* Copies of blobs written but never committed (a crash in between), on
 * every backend: removed before the first request. */
static enum kura_err sweep_replicas(struct kura_service *svc,
				    struct kura_error *err)
{
	size_t swept = 0;
	enum kura_err rc = kura_service_sweep_replicas(svc, &swept, err);
	if (rc == KURA_OK && swept > 0)
		kura_info(NULL,
			  "recovery: removed %zu copies of blobs written but "
			  "never committed",
			  swept);
	return rc;
}

static void collect_garbage(struct kura_service *svc)
{
	struct kura_error err = { 0 };
	size_t n = 0;
	if (kura_service_collect(svc, GC_BATCH, &n, &err) != KURA_OK) {
		kura_warn(NULL, "garbage collection: %s", err.msg);
		kura_daemon_record_integrity(svc, &err, true);
	} else if (n > 0)
		kura_debug(NULL, "garbage collection removed %zu blobs", n);
}

/* Seal what the start-up upgrade had to leave (buckets whose key was
 * disabled then), until nothing is left. */
static void seal_upgrade(struct kura_service *svc, struct kura_seal_wait *wait)
{
	struct kura_error err = { 0 };
	if (!wait->done &&
	    kura_daemon_seal_upgrade(svc, wait, &err) != KURA_OK) {
		kura_warn(NULL, "metadata seal upgrade: %s", err.msg);
		kura_daemon_record_integrity(svc, &err, true);
	}
}

/* Background work every interval seconds and an audit checkpoint every
 * checkpoint_every seconds, until a signal; returns what stopped it. */
static const char *run_loop(struct kura_service *svc, const sigset_t *sigs,
			    uint64_t interval, uint64_t checkpoint_every,
			    struct kura_seal_wait *seals)
{
	const uint64_t s = 1000000000ull;
	uint64_t now = kura_mono_ns();
	uint64_t next_work = now + interval * s;
	uint64_t next_checkpoint = now + checkpoint_every * s;
	uint64_t lc_interval =
		kura_config_get_u64(svc->cfg, "lifecycle", "interval");
	/* The first round soon after start: one interrupted resumes. */
	uint64_t next_lc = now + s;
	uint64_t day =
		kura_config_get_u64(svc->cfg, "lifecycle", "day_seconds");
	/* A shorter day makes every rule delete sooner: say so at every
	 * start (the audit log's server.start holds the value too). */
	if (day != 86400)
		kura_warn(NULL,
			  "[lifecycle] day_seconds is %llu: lifecycle rules "
			  "count days of that many seconds (for tests only)",
			  (unsigned long long)day);
	struct kura_lc_stats lc_stats = { 0 };
	for (;;) {
		uint64_t next = next_work < next_checkpoint ? next_work :
							      next_checkpoint;
		if (next_lc < next)
			next = next_lc;
		uint64_t wait = next > now ? next - now : 0;
		struct timespec ts = { (time_t)(wait / s), (long)(wait % s) };
		int sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			const char *name = sig == SIGTERM ? "SIGTERM" :
							    "SIGINT";
			kura_info(NULL, "received %s: shutting down", name);
			return name;
		}
		if (sig < 0 && errno != EAGAIN && errno != EINTR) {
			kura_error(NULL, "sigtimedwait: %s", strerror(errno));
			return "error";
		}
		now = kura_mono_ns();
		if (now >= next_checkpoint) {
			kura_daemon_audit_checkpoint(svc);
			next_checkpoint = now + checkpoint_every * s;
		}
		if (now >= next_work) {
			seal_upgrade(svc, seals);
			sweep_uploads(svc);
			rewrap(svc);
			collect_garbage(svc);
			now = kura_mono_ns();
			next_work = now + interval * s;
		}
		if (now >= next_lc) {
			/* A round goes on step after step, signals checked
			 * in between; then it waits its interval. */
			bool done = lifecycle(svc, &lc_stats);
			now = kura_mono_ns();
			next_lc = done ? now + lc_interval * s : now;
		}
	}
}

static int open_append(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static int open_log(const struct kura_config *cfg)
{
	const char *level = kura_config_get(cfg, "server", "log_level");
	int lv = kura_log_level_parse(level);
	if (lv < 0) {
		fprintf(stderr,
			"kura: [server] log_level '%s' is not debug, info, "
			"warn or error\n",
			level);
		return -1;
	}
	kura_log_threshold = (enum kura_log_level)lv;
	const char *file = kura_config_get(cfg, "server", "log_file");
	if (file != NULL) {
		int fd = open_append(file);
		if (fd < 0) {
			fprintf(stderr, "kura: cannot open log file '%s': %s\n",
				file, strerror(errno));
			return -1;
		}
		kura_log_set_fd(fd);
	}
	return 0;
}

/* A start refused; one refused because a row failed its integrity check
 * (the root tenant's, say) is recorded too, when the log is open. */
static void start_failed(struct kura_service *svc, const struct kura_error *err)
{
	kura_error(NULL, "cannot start: %s", err->msg);
	kura_daemon_record_integrity(svc, err, false);
}

int kura_daemon_run(const struct kura_config *cfg)
{
	struct kura_error err = { 0 };
	struct kura_service *svc = NULL;
	struct kura_http_server *srv = NULL;
	struct kura_http_handler handler;
	sigset_t sigs;
	struct kura_seal_wait seals;
	struct kura_scrub_job *scrub = NULL;
	struct kura_replication_job *repl = NULL;
	int code = 1;

	/* Nothing is created before the configuration is known to be good
	 * and the port free: a bad start leaves no data directory, database,
	 * root tenant or printed secret behind. */
	if (kura_daemon_check_config(cfg, NULL, NULL, &err) != KURA_OK) {
		kura_error(NULL, "cannot start: %s", err.msg);
		return 1;
	}
	if (open_log(cfg) != 0)
		return 1;
	uint64_t interval =
		kura_config_get_u64(cfg, "storage", "background_interval");
	uint64_t checkpoint_every =
		kura_config_get_u64(cfg, "audit", "checkpoint_interval");
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (kura_http_probe_listen(cfg, &err) != KURA_OK ||
	    kura_secret_harden_process(&err) != KURA_OK ||
	    kura_service_open(cfg, KURA_SERVICE_INIT | KURA_SERVICE_OWNER, &svc,
			      &err) != KURA_OK ||
	    kura_daemon_seal_scope(svc, &seals, &err) != KURA_OK ||
	    kura_daemon_row_mac_upgrade(svc, &seals, &err) != KURA_OK ||
	    kura_daemon_bootstrap(svc, &err) != KURA_OK ||
	    kura_service_recover(svc, &err) != KURA_OK ||
	    sweep_replicas(svc, &err) != KURA_OK ||
	    kura_daemon_seal_upgrade(svc, &seals, &err) != KURA_OK) {
		start_failed(svc, &err);
		goto out;
	}
	if (kura_kms_watch(svc->kms, &err) != KURA_OK) {
		kura_error(NULL, "cannot start: %s", err.msg);
		goto out;
	}
	kura_s3_handler_init(&handler, svc);
	if (kura_http_start(cfg, &handler, &srv, &err) != KURA_OK) {
		kura_error(NULL, "cannot start: %s", err.msg);
		goto out;
	}
	const char *listen = kura_config_get(cfg, "server", "listen");
	bool tls = kura_config_get(cfg, "server", "tls_cert") != NULL;
	kura_info(NULL,
		  "kura listening on %s://%s (data dir '%s', region %s, key "
		  "provider %s)",
		  tls ? "https" : "http", listen, svc->data_dir, svc->region,
		  svc->keys->ops->name);
	if (kura_daemon_audit_start(svc, tls ? "https" : "http", listen,
				    &err) != KURA_OK) {
		kura_error(NULL, "cannot start: audit log: %s", err.msg);
		goto out;
	}
	print_banner(svc, tls ? "https" : "http", listen);
	if (kura_daemon_scrub_start(svc, &scrub, &err) != KURA_OK)
		kura_warn(NULL, "no scheduled scrubs: %s", err.msg);
	if (kura_daemon_replication_start(svc, &repl, &err) != KURA_OK) {
		kura_error(NULL, "cannot start: %s", err.msg);
		kura_daemon_scrub_stop(scrub);
		goto out;
	}

	const char *reason =
		run_loop(svc, &sigs, interval, checkpoint_every, &seals);
	kura_daemon_scrub_stop(scrub);
	kura_http_stop(srv, SHUTDOWN_GRACE_MS);
	srv = NULL;
	kura_daemon_replication_stop(repl);
	collect_garbage(svc);
	kura_daemon_audit_stop(svc, reason);
	kura_info(NULL, "kura stopped");
	code = 0;
out:
	kura_http_stop(srv, 0);
	kura_service_close(svc);
	return code;
}

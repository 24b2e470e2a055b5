/*
 * daemon.h — running the server: bootstrap of a data directory (root tenant
 * and its credentials), start-up recovery, the listener, periodic
 * background work and clean shutdown on SIGTERM/SIGINT.
 */
#ifndef KURA_DAEMON_H
#define KURA_DAEMON_H

#include <stdbool.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/seal.h"
#include "kura/service.h"

#define KURA_ROOT_CREDENTIALS_FILE "root-credentials"

/* Make sure the root tenant exists and has credentials: those of
 * KURA_ROOT_ACCESS_KEY / KURA_ROOT_SECRET_KEY when set (captured from the
 * environment, kura_env_capture; added when missing, never written to a
 * file, never re-activated once revoked), else — when the root tenant is
 * created — generated ones, which are printed once and saved (mode 0600)
 * to DATA_DIR/root-credentials for the owner to collect and remove. */
enum kura_err kura_daemon_bootstrap(struct kura_service *svc,
				    struct kura_error *err);

/* The server's audit entries (server_audit.c): server.start with the
 * effective configuration followed by a checkpoint (an error means the
 * server must not start); a checkpoint (errors are logged); server.stop
 * (reason: a constant such as "SIGTERM") with a final checkpoint. */
enum kura_err kura_daemon_audit_start(struct kura_service *svc,
				      const char *scheme, const char *listen,
				      struct kura_error *err);
void kura_daemon_audit_checkpoint(struct kura_service *svc);
void kura_daemon_audit_stop(struct kura_service *svc, const char *reason);

/* Where the upgrade of metadata written before schema 5 stands
 * (seal_job.c). */
struct kura_seal_wait {
	bool all;			  /* may seal every bucket */
	uint64_t ids[KURA_SEAL_WAIT_MAX]; /* else only these */
	size_t n;
	bool done;     /* nothing waits any more */
	bool row_macs; /* rows without a MAC get one (once, meta.rowmac) */
};

/* What the upgrade may seal, from the audit log's record of earlier runs:
 * everything on the first run, then only what the last run left waiting,
 * nothing once a run finished (see seal_job.c for why). */
enum kura_err kura_daemon_seal_scope(struct kura_service *svc,
				     struct kura_seal_wait *wait,
				     struct kura_error *err);

/* On the upgrade's first run only (wait->row_macs), give the tenant,
 * access key, bucket and key rows written before schema 5 their MAC. */
enum kura_err kura_daemon_row_mac_upgrade(struct kura_service *svc,
					  struct kura_seal_wait *wait,
					  struct kura_error *err);

/* Seal the rows wait allows and update it; records the run in the audit
 * log ("meta.seal"); rows it may not seal are logged as an error. */
enum kura_err kura_daemon_seal_upgrade(struct kura_service *svc,
				       struct kura_seal_wait *wait,
				       struct kura_error *err);

/* What the lifecycle job did (lifecycle_job.c), added up over steps. */
struct kura_lc_stats {
	uint64_t markers; /* current versions expired behind a delete marker */
	uint64_t removed; /* versions and delete markers removed */
	uint64_t aborted; /* incomplete multipart uploads aborted */
	uint64_t locked;  /* locked versions left alone */
	uint64_t failed;  /* actions that failed (logged) */
};

/*
 * One step of the lifecycle job: a page of one bucket's versions (or its
 * uploads), the position kept in the settings table so that a restart
 * continues there.  *finished when the round is over (or the time is
 * outside [maintenance] window): the caller waits [lifecycle] interval
 * before the next; otherwise it calls again soon.  Main thread only.
 */
enum kura_err kura_daemon_lifecycle_step(struct kura_service *svc,
					 struct kura_lc_stats *stats,
					 bool *finished,
					 struct kura_error *err);
/* The scheduled scrub (scrub_job.c): every [scrub] interval seconds,
 * inside [maintenance] window, in a thread of its own.  *out is NULL when
 * scheduled scrubs are off ([scrub] interval = 0). */
struct kura_scrub_job;
enum kura_err kura_daemon_scrub_start(struct kura_service *svc,
				      struct kura_scrub_job **out,
				      struct kura_error *err);
/* Stop it — a round in progress stops at its next blob — and free it.
 * NULL is a no-op. */
void kura_daemon_scrub_stop(struct kura_scrub_job *job);

/* The async replication queue's worker (replication_job.c), in a thread
 * of its own: copies what placement policies queued, every [storage]
 * replication_interval seconds and at once while a backlog lasts. */
struct kura_replication_job;
enum kura_err kura_daemon_replication_start(struct kura_service *svc,
					    struct kura_replication_job **out,
					    struct kura_error *err);
/* Stop it after the copy in progress, and free it.  NULL is a no-op. */
void kura_daemon_replication_stop(struct kura_replication_job *job);

/* "HH:MM-HH:MM" ([maintenance] window, UTC): its minutes of the day;
 * false when malformed or empty (start equal to end). */
bool kura_daemon_window_parse(const char *s, int *start_min, int *end_min);
/* Whether now_ms lies in window (NULL: always); a window that wraps
 * midnight (22:00-02:00) holds on both sides of it. */
bool kura_daemon_in_window(const char *window, int64_t now_ms);
/* Log, count and record (integrity.failure) an integrity failure found
 * with no request to name — at start or by a background job; with once,
 * the same one met again and again is recorded once (server_audit.c). */
void kura_daemon_record_integrity(struct kura_service *svc,
				  const struct kura_error *err, bool once);

/* Told about each problem kura_daemon_check_config finds (msg names the
 * key and what is wrong). */
typedef void (*kura_config_problem_fn)(void *ctx, const char *msg);

/*
 * Check the whole configuration without creating, opening or locking
 * anything (config_check.c): the listen address against TLS, the TLS
 * files, the key provider, data store and metadata store names, the key
 * provider's own settings and files (keys.h check_config), and the
 * settings the service reads.  With report NULL, stop at the first problem;
 * else report every problem and carry on.  Returns the first problem's
 * code (its message in err), KURA_OK when there is none.
 */
enum kura_err kura_daemon_check_config(const struct kura_config *cfg,
				       kura_config_problem_fn report, void *ctx,
				       struct kura_error *err);

/* Run the server until SIGTERM or SIGINT; returns the process exit code.
 * Start-up order: the whole configuration is checked, then the port, and
 * only then is the data directory created and locked (a second server on
 * it exits at once naming the owner's pid), migrated and recovered. */
int kura_daemon_run(const struct kura_config *cfg);

#endif

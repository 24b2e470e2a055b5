/*
 * replication_job.c — the async replication queue's worker (F-6,
 * docs/PLACEMENT.md): a thread of its own that makes the copies the
 * placement policies queued (kura_service_replicate), so a slow or
 * unreachable remote never holds up the main loop's work (garbage,
 * lifecycle, checkpoints, signals).
 *
 * A pass copies up to BATCH due entries, each backend's queue on its own;
 * a pass that copied anything is followed at once by the next, so a
 * backlog drains as fast as copies can be made; a pass that found nothing
 * due (or only copies that failed, now backing off) waits [storage]
 * replication_interval seconds.  At shutdown it stops after the copy in
 * progress; what is left stays queued in the metadata.
 *
 * Thread-safety: the thread uses the service's thread-safe parts
 * (metadata, stores, pins, audit log); start and stop are the main
 * thread's.
 */
#include <pthread.h>
#include <stdlib.h>

#include "daemon_int.h"
#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define BATCH 256

struct kura_replication_job {
	struct kura_service *svc;
	int64_t interval_ms;
	struct job_thread t;
};

static void *job_main(void *arg)
{
	struct kura_replication_job *job = arg;
	pthread_mutex_lock(&job->t.mu);
	while (!job->t.stop) {
		size_t n = 0;
		struct kura_error err = { 0 };
		pthread_mutex_unlock(&job->t.mu);
		enum kura_err rc =
			kura_service_replicate(job->svc, BATCH, &n, &err);
		if (rc != KURA_OK)
			kura_warn(NULL, "replication: %s", err.msg);
		else if (n > 0)
			kura_info(NULL, "replication: made %zu copies", n);
		pthread_mutex_lock(&job->t.mu);
		if (rc == KURA_OK && n > 0)
			continue; /* perhaps a backlog: on at once */
		(void)job_thread_wait_until(&job->t,
					    kura_now_ms() + job->interval_ms);
	}
	pthread_mutex_unlock(&job->t.mu);
	return NULL;
}

enum kura_err kura_daemon_replication_start(struct kura_service *svc,
					    struct kura_replication_job **out,
					    struct kura_error *err)
{
	struct kura_replication_job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return kura_fail(err, KURA_ENOMEM, "replication job");
	job->svc = svc;
	job->interval_ms =
		(int64_t)kura_config_get_u64(svc->cfg, "storage",
					     "replication_interval") *
		1000;
	enum kura_err rc = job_thread_start(&job->t, job_main, job,
					    "replication job", err);
	if (rc != KURA_OK) {
		free(job);
		return rc;
	}
	*out = job;
	return KURA_OK;
}

void kura_daemon_replication_stop(struct kura_replication_job *job)
{
	if (job == NULL)
		return;
	job_thread_stop(&job->t);
	free(job);
}

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
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define BATCH 256

struct kura_replication_job {
	struct kura_service *svc;
	int64_t interval_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* under mu */
};

/* Wait until until_ms or a stop; true when stopped.  With mu held. */
static bool wait_until(struct kura_replication_job *job, int64_t until_ms)
{
	struct timespec ts = { (time_t)(until_ms / 1000),
			       (long)(until_ms % 1000) * 1000000 };
	while (!job->stop && kura_now_ms() < until_ms)
		if (pthread_cond_timedwait(&job->cv, &job->mu, &ts) ==
		    ETIMEDOUT)
			break;
	return job->stop;
}

static void *job_main(void *arg)
{
	struct kura_replication_job *job = arg;
	pthread_mutex_lock(&job->mu);
	while (!job->stop) {
		size_t n = 0;
		struct kura_error err = { 0 };
		pthread_mutex_unlock(&job->mu);
		enum kura_err rc =
			kura_service_replicate(job->svc, BATCH, &n, &err);
		if (rc != KURA_OK)
			kura_warn(NULL, "replication: %s", err.msg);
		else if (n > 0)
			kura_info(NULL, "replication: made %zu copies", n);
		pthread_mutex_lock(&job->mu);
		if (rc == KURA_OK && n > 0)
			continue; /* perhaps a backlog: on at once */
		(void)wait_until(job, kura_now_ms() + job->interval_ms);
	}
	pthread_mutex_unlock(&job->mu);
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
	pthread_mutex_init(&job->mu, NULL);
	pthread_cond_init(&job->cv, NULL);
	int e = pthread_create(&job->thread, NULL, job_main, job);
	if (e != 0) {
		pthread_cond_destroy(&job->cv);
		pthread_mutex_destroy(&job->mu);
		free(job);
		return kura_fail_errno(err, KURA_EINTERNAL, e,
				       "start the replication job");
	}
	*out = job;
	return KURA_OK;
}

void kura_daemon_replication_stop(struct kura_replication_job *job)
{
	if (job == NULL)
		return;
	pthread_mutex_lock(&job->mu);
	job->stop = true;
	pthread_cond_broadcast(&job->cv);
	pthread_mutex_unlock(&job->mu);
	pthread_join(job->thread, NULL);
	pthread_cond_destroy(&job->cv);
	pthread_mutex_destroy(&job->mu);
	free(job);
}

/*
 * scrub_job.c — the scheduled scrub (F-6, C-11): every [scrub] interval
 * seconds (0: never) the server scrubs every bucket, one after the other
 * (kura_service_scrub: every replica re-read and authenticated, bad ones
 * repaired and recorded), and only inside [maintenance] window when one is
 * set: outside it the round waits before its next bucket.
 *
 * A round takes as long as reading every copy takes, so it runs in a
 * thread of its own and the main loop's work (garbage, replication,
 * lifecycle, checkpoints) goes on.  At shutdown the round stops at its
 * next blob (svc->scrub_stop).  The end of the last complete round is
 * kept in the settings table ("scrub_last_ms", 8 bytes big-endian), so a
 * restart neither postpones the next round for ever nor repeats one; a
 * round that a shutdown cut short is done again from the start.  The
 * first round comes one interval after the first start.
 *
 * Thread-safety: the job's thread uses the service's thread-safe parts
 * (metadata, stores, keys, audit log); start and stop are the main
 * thread's.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define LAST_NAME "scrub_last_ms"
#define WINDOW_POLL_MS 30000

struct kura_scrub_job {
	struct kura_service *svc;
	int64_t interval_ms;
	struct job_thread t;
};

/* ---- the time of the last round ---- */

static int64_t last_round(struct kura_service *svc)
{
	struct kura_error err = { 0 };
	int64_t ms = 0;
	enum kura_err rc =
		kura_meta_setting_get_ms(svc->meta, LAST_NAME, &ms, &err);
	if (rc == KURA_OK)
		return ms;
	if (rc != KURA_ENOENT)
		kura_warn(NULL, "scrub: cannot read '%s': %s", LAST_NAME,
			  err.msg);
	return -1;
}

static void save_round(struct kura_service *svc, int64_t ms)
{
	struct kura_error err = { 0 };
	if (kura_meta_setting_put_ms(svc->meta, LAST_NAME, ms, &err) != KURA_OK)
		kura_warn(NULL, "scrub: cannot record the round: %s", err.msg);
}

/* ---- waiting ---- */

/* Wait for the maintenance window (none set: at once); true when
 * stopped.  Called with mu held. */
static bool wait_window(struct kura_scrub_job *job)
{
	const char *window =
		kura_config_get(job->svc->cfg, "maintenance", "window");
	while (!job->t.stop && !kura_daemon_in_window(window, kura_now_ms()))
		if (job_thread_wait_until(&job->t,
					  kura_now_ms() + WINDOW_POLL_MS))
			break;
	return job->t.stop;
}

/* ---- a round ---- */

static void add(struct kura_scrub_report *sum,
		const struct kura_scrub_report *r)
{
	sum->blobs += r->blobs;
	sum->replicas += r->replicas;
	sum->ok += r->ok;
	sum->missing += r->missing;
	sum->corrupt += r->corrupt;
	sum->repaired += r->repaired;
	sum->unrepairable += r->unrepairable;
}

/* Scrub one bucket inside the window; false when the job stops.  Called
 * with mu held; released while the scrub runs. */
static bool one_bucket(struct kura_scrub_job *job, const char *name,
		       struct kura_scrub_report *sum)
{
	struct kura_scrub_report r = { 0 };
	struct kura_error err = { 0 };
	if (wait_window(job))
		return false;
	pthread_mutex_unlock(&job->t.mu);
	enum kura_err rc = kura_service_scrub(job->svc, name, &r, &err);
	pthread_mutex_lock(&job->t.mu);
	if (rc == KURA_EBUSY && job->t.stop)
		return false;
	if (rc == KURA_OK)
		add(sum, &r);
	else if (rc != KURA_ENOENT) /* ENOENT: deleted meanwhile */
		kura_warn(NULL, "scrub of '%s': %s", name, err.msg);
	return true;
}

/* Every bucket of every tenant; false when the job stopped it. */
static bool round_all(struct kura_scrub_job *job, struct kura_scrub_report *sum)
{
	struct kura_meta *meta = job->svc->meta;
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_tenant *ts = NULL;
	struct kura_error err = { 0 };
	size_t nt = 0;
	bool going = true;
	if (pool == NULL ||
	    kura_meta_tenant_list(meta, pool, &ts, &nt, &err) != KURA_OK) {
		kura_warn(NULL, "scrub: cannot list tenants: %s",
			  pool ? err.msg : "out of memory");
		kura_pool_free(pool);
		return true; /* tried; the next interval tries again */
	}
	for (size_t t = 0; going && t < nt; t++) {
		struct kura_bucket *bs = NULL;
		size_t nb = 0;
		kura_error_clear(&err);
		if (kura_meta_bucket_list(meta, ts[t].id, pool, &bs, &nb,
					  &err) != KURA_OK) {
			kura_warn(NULL, "scrub: buckets of '%s': %s",
				  ts[t].name, err.msg);
			continue;
		}
		for (size_t b = 0; going && b < nb; b++)
			going = one_bucket(job, bs[b].name, sum);
	}
	kura_pool_free(pool);
	return going;
}

static void *job_main(void *arg)
{
	struct kura_scrub_job *job = arg;
	struct kura_service *svc = job->svc;
	pthread_mutex_lock(&job->t.mu);
	int64_t last = last_round(svc);
	if (last < 0) {
		last = kura_now_ms();
		save_round(svc, last);
	}
	while (!job_thread_wait_until(&job->t, last + job->interval_ms)) {
		struct kura_scrub_report sum = { 0 };
		kura_info(NULL, "scheduled scrub: starting");
		if (!round_all(job, &sum))
			break;
		last = kura_now_ms();
		save_round(svc, last);
		char text[256];
		kura_scrub_report_format(&sum, text, sizeof(text));
		kura_info(NULL, "scheduled scrub: %s", text);
	}
	pthread_mutex_unlock(&job->t.mu);
	return NULL;
}

enum kura_err kura_daemon_scrub_start(struct kura_service *svc,
				      struct kura_scrub_job **out,
				      struct kura_error *err)
{
	uint64_t interval = kura_config_get_u64(svc->cfg, "scrub", "interval");
	*out = NULL;
	if (interval == 0)
		return KURA_OK;
	struct kura_scrub_job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return kura_fail(err, KURA_ENOMEM, "scrub job");
	job->svc = svc;
	job->interval_ms = (int64_t)interval * 1000;
	enum kura_err rc =
		job_thread_start(&job->t, job_main, job, "scrub job", err);
	if (rc != KURA_OK) {
		free(job);
		return rc;
	}
	*out = job;
	return KURA_OK;
}

void kura_daemon_scrub_stop(struct kura_scrub_job *job)
{
	if (job == NULL)
		return;
	__atomic_store_n(&job->svc->scrub_stop, 1, __ATOMIC_RELAXED);
	job_thread_stop(&job->t);
	free(job);
}

/*
 * job_thread.c — the thread a background job runs in (daemon_int.h):
 * started once, woken and joined at shutdown.  What the job does between
 * its waits is its own (scrub_job.c, replication_job.c).
 */
#include <errno.h>
#include <time.h>

#include "daemon_int.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

enum kura_err job_thread_start(struct job_thread *t, void *(*fn)(void *),
			       void *arg, const char *what,
			       struct kura_error *err)
{
	t->stop = false;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	int e = pthread_create(&t->thread, NULL, fn, arg);
	if (e == 0)
		return KURA_OK;
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	return kura_fail_errno(err, KURA_EINTERNAL, e, "start the %s", what);
}

bool job_thread_wait_until(struct job_thread *t, int64_t until_ms)
{
	struct timespec ts = { (time_t)(until_ms / 1000),
			       (long)(until_ms % 1000) * 1000000 };
	while (!t->stop && kura_now_ms() < until_ms)
		if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) == ETIMEDOUT)
			break;
	return t->stop;
}

void job_thread_stop(struct job_thread *t)
{
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
}

/*
 * daemon_int.h — what the files of the server process share: the thread
 * a background job runs in (job_thread.c; the scheduled scrub and the
 * replication worker).
 */
#ifndef KURA_DAEMON_INT_H
#define KURA_DAEMON_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kura/err.h"

/* A job's thread, and how it is told to stop: stop is read and written
 * under mu, and cv wakes a thread waiting in job_thread_wait_until. */
struct job_thread {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

/* Run fn(arg) in a thread of its own; what names the job in the error. */
enum kura_err job_thread_start(struct job_thread *t, void *(*fn)(void *),
			       void *arg, const char *what,
			       struct kura_error *err);
/* With t->mu held: wait until until_ms (wall clock) or a stop; true when
 * stopped. */
bool job_thread_wait_until(struct job_thread *t, int64_t until_ms);
/* Tell it to stop, wake it, wait for it to end and release t. */
void job_thread_stop(struct job_thread *t);

#endif

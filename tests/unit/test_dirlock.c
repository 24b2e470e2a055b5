/*
 * test_dirlock.c — one owner per directory (src/core/dirlock.c): a second
 * process is refused with the owner's pid, the lock is not inherited by a
 * forked child, it dies with its owner however the owner dies, its own
 * process cannot take it twice (closing the second descriptor would drop
 * it), and the holder can be asked without taking it.
 *
 * Other processes are fork()ed children that report over a pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kura/dirlock.h"
#include "rmtree.h"
#include "kura/banned.h"

struct fx {
	char dir[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kura-dirlock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	rmtree(f->dir);
	free(f);
	return 0;
}

/* In a child: ask who holds dir's lock, read the pid text of its file (a
 * read in the owner itself would close a descriptor of the file, which
 * drops a POSIX lock), then try to take the lock; write
 * "code holder text|message" to fd. */
static void child_try(const char *dir, int fd)
{
	struct kura_dirlock *l = NULL;
	struct kura_error err = { 0 };
	char line[sizeof(err.msg) + 64], path[128], text[32] = "-";
	pid_t holder = -1;
	if (kura_dirlock_holder(dir, &holder, &err) != KURA_OK)
		holder = -2;
	snprintf(path, sizeof(path), "%s/%s", dir, KURA_DIRLOCK_FILE);
	FILE *fp = fopen(path, "r");
	if (fp != NULL) {
		if (fgets(text, sizeof(text), fp) == NULL)
			snprintf(text, sizeof(text), "-");
		text[strcspn(text, "\n")] = '\0';
		fclose(fp);
	}
	enum kura_err rc =
		kura_dirlock_acquire(dir, "data directory", &l, &err);
	int n = snprintf(line, sizeof(line), "%d %ld %s|%s", (int)rc,
			 (long)holder, text, err.msg);
	if (write(fd, line, (size_t)n) != n)
		_exit(3);
	kura_dirlock_release(l);
}

/* Run child_try in a forked child; returns its report. */
static void try_in_child(const char *dir, char *out, size_t cap)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child_try(dir, p[1]);
		_exit(0);
	}
	close(p[1]);
	ssize_t n = read(p[0], out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_owner_and_second_process(void **state)
{
	struct fx *f = *state;
	struct kura_dirlock *l = NULL;
	struct kura_error err = { 0 };
	char got[700], want[80], path[128];
	assert_int_equal(kura_dirlock_acquire(f->dir, "data directory", &l,
					      &err),
			 KURA_OK);

	/* The file is private; a second process sees the owner through the
	 * kernel and in the file's text, and is refused naming it — which
	 * also shows that a fork()ed child does not inherit the lock. */
	snprintf(path, sizeof(path), "%s/%s", f->dir, KURA_DIRLOCK_FILE);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	try_in_child(f->dir, got, sizeof(got));
	snprintf(want, sizeof(want), "%d %ld %ld|", (int)KURA_EBUSY,
		 (long)getpid(), (long)getpid());
	if (strncmp(got, want, strlen(want)) != 0)
		fail_msg("a second process got '%s', want '%s...'", got, want);
	snprintf(want, sizeof(want), "(pid %ld,", (long)getpid());
	if (strstr(got, want) == NULL || strstr(got, f->dir) == NULL)
		fail_msg("refusal '%s' does not name pid and directory", got);

	pid_t holder = 0;
	assert_int_equal(kura_dirlock_holder(f->dir, &holder, &err), KURA_OK);
	assert_int_equal(holder, getpid());

	/* Released: the next process gets it (nobody held it, the text was
	 * emptied), and nobody holds it after. */
	kura_dirlock_release(l);
	try_in_child(f->dir, got, sizeof(got));
	snprintf(want, sizeof(want), "%d 0 -|", (int)KURA_OK);
	assert_true(strncmp(got, want, strlen(want)) == 0);
	assert_int_equal(kura_dirlock_holder(f->dir, &holder, &err), KURA_OK);
	assert_int_equal(holder, 0);
}

static void test_same_process_twice(void **state)
{
	struct fx *f = *state;
	struct kura_dirlock *a = NULL, *b = NULL;
	struct kura_error err = { 0 };
	char got[700], want[32];
	assert_int_equal(kura_dirlock_acquire(f->dir, "data directory", &a,
					      &err),
			 KURA_OK);
	assert_int_equal(kura_dirlock_acquire(f->dir, "data directory", &b,
					      &err),
			 KURA_EBUSY);
	assert_null(b);
	assert_non_null(strstr(err.msg, "this process"));
	/* Refusing did not drop the first lock (a POSIX lock dies with any
	 * close of its file in the owning process). */
	try_in_child(f->dir, got, sizeof(got));
	snprintf(want, sizeof(want), "%d ", (int)KURA_EBUSY);
	assert_true(strncmp(got, want, strlen(want)) == 0);
	kura_dirlock_release(a);
	kura_dirlock_release(NULL);
}

static void test_dies_with_owner(void **state)
{
	struct fx *f = *state;
	int p[2];
	char got[700], want[32];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kura_dirlock *l = NULL;
		struct kura_error err = { 0 };
		close(p[0]);
		if (kura_dirlock_acquire(f->dir, "data directory", &l, &err) !=
		    KURA_OK)
			_exit(2);
		if (write(p[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	pid_t holder = 0;
	struct kura_error err = { 0 };
	assert_int_equal(kura_dirlock_holder(f->dir, &holder, &err), KURA_OK);
	assert_int_equal(holder, pid);
	/* kill -9: no clean-up code runs, the kernel drops the lock. */
	kill(pid, SIGKILL);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	try_in_child(f->dir, got, sizeof(got));
	snprintf(want, sizeof(want), "%d ", (int)KURA_OK);
	assert_true(strncmp(got, want, strlen(want)) == 0);
}

static void test_missing_and_odd(void **state)
{
	struct fx *f = *state;
	struct kura_dirlock *l = NULL;
	struct kura_error err = { 0 };
	char dir[128], path[160];
	pid_t holder = 1;
	snprintf(dir, sizeof(dir), "%s/none", f->dir);
	assert_int_equal(kura_dirlock_holder(dir, &holder, &err), KURA_OK);
	assert_int_equal(holder, 0);
	assert_int_not_equal(
		kura_dirlock_acquire(dir, "data directory", &l, &err), KURA_OK);
	assert_null(l);
	/* A symbolic link where the lock file belongs is not followed. */
	snprintf(path, sizeof(path), "%s/%s", f->dir, KURA_DIRLOCK_FILE);
	assert_int_equal(symlink("/tmp/kura-dirlock-elsewhere", path), 0);
	kura_error_clear(&err);
	assert_int_not_equal(kura_dirlock_acquire(f->dir, "data directory", &l,
						  &err),
			     KURA_OK);
	assert_null(l);
	assert_int_equal(access("/tmp/kura-dirlock-elsewhere", F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_owner_and_second_process,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_process_twice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dies_with_owner, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_odd, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * envsecret.c — credentials taken from the environment, moved into locked
 * memory and wiped from the process (see secret.h).
 *
 * Why overwrite and not only unsetenv: unsetenv removes the pointer from
 * environ, but the "NAME=value" bytes stay where the kernel put them at
 * exec, and /proc/PID/environ (readable by the same user, and by root) shows
 * exactly those bytes for the life of the process.
 *
 * Threading: capture and release run before and after any thread (environ
 * is not thread-safe); kura_env_secret may be called from any thread in
 * between (the table is not changed then).
 */
#include <stdlib.h>
#include <string.h>

#include "kura/secret.h"
#include "kura/banned.h"

extern char **environ;

/* Every variable kura reads; all are treated as secrets. */
static const char *const names[] = {
	"KURA_ROOT_ACCESS_KEY",
	"KURA_ROOT_SECRET_KEY",
	"KURA_PKCS11_PIN",
};

#define NNAMES (sizeof(names) / sizeof(names[0]))

static struct kura_secret *values[NNAMES];

static int slot_of(const char *name)
{
	for (size_t i = 0; i < NNAMES; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

/* The value of the first "name=" entry of environ, NULL when none. */
static char *value_in_environ(const char *name)
{
	size_t n = strlen(name);
	for (char **e = environ; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* Overwrite every "name=" entry's value in place, then drop them all from
 * environ. */
static void wipe_from_environ(const char *name)
{
	size_t n = strlen(name);
	for (char **e = environ; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			kura_wipe(*e + n + 1, strlen(*e + n + 1));
	unsetenv(name);
}

enum kura_err kura_env_capture(struct kura_error *err)
{
	enum kura_err first = KURA_OK;
	for (size_t i = 0; i < NNAMES; i++) {
		const char *v = value_in_environ(names[i]);
		if (v == NULL)
			continue;
		size_t len = strlen(v);
		struct kura_secret *s = NULL;
		if (len > KURA_SECRET_MAX) {
			if (first == KURA_OK)
				first = kura_fail(err, KURA_ETOOBIG,
						  "%s is longer than %d "
						  "bytes",
						  names[i], KURA_SECRET_MAX);
		} else if (len > 0 && (s = kura_secret_from(v, len)) == NULL &&
			   first == KURA_OK) {
			first = kura_fail(err, KURA_ENOMEM,
					  "locked memory for %s", names[i]);
		}
		wipe_from_environ(names[i]);
		kura_secret_free(values[i]);
		values[i] = s;
	}
	return first;
}

const struct kura_secret *kura_env_secret(const char *name)
{
	int i = slot_of(name);
	return i < 0 ? NULL : values[i];
}

bool kura_env_secret_str(const char *name, char *out, size_t cap)
{
	const struct kura_secret *s = kura_env_secret(name);
	if (s == NULL || s->len >= cap)
		return false;
	memcpy(out, s->data, s->len);
	out[s->len] = '\0';
	return true;
}

void kura_env_release(void)
{
	for (size_t i = 0; i < NNAMES; i++) {
		kura_secret_free(values[i]);
		values[i] = NULL;
	}
}

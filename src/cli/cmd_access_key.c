/*
 * cmd_access_key.c — `kura tenant key list|create|rotate|revoke TENANT`:
 * a tenant's S3 access keys.  A new secret is printed once and kept
 * nowhere else in the clear; a revoked key is refused by a running server
 * at its next request (authentication reads the key from meta every time)
 * and can never be made active again.  Every change is audited.
 *
 * DATA_DIR/root-credentials holds the secret generated at the first start;
 * when the key it names is rotated or revoked, the file is removed: a
 * secret that no longer works has no reason to stay on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kura/auth.h"
#include "kura/daemon.h"
#include "kura/fsutil.h"
#include "kura/timefmt.h"
#include "cli.h"
#include "kura/banned.h"

#define CREDENTIALS_MAX 4096

/* Remove DATA_DIR/root-credentials when it names access key id: its bytes
 * are overwritten first (best effort on file systems that copy on write)
 * and the removal is made durable. */
static void forget_saved_credentials(struct kura_service *svc, const char *id)
{
	char path[4200], needle[KURA_ACCESS_KEY_ID_MAX + 32];
	char *text = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	snprintf(path, sizeof(path), "%s/%s", svc->data_dir,
		 KURA_ROOT_CREDENTIALS_FILE);
	snprintf(needle, sizeof(needle), "AWS_ACCESS_KEY_ID=%s\n", id);
	if (kura_read_file(path, CREDENTIALS_MAX, &text, &n, &err) != KURA_OK)
		return;
	bool names_it = strstr(text, needle) != NULL;
	kura_wipe(text, n);
	free(text);
	if (!names_it)
		return;
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		char zeros[CREDENTIALS_MAX] = { 0 };
		if (kura_write_all(fd, zeros, n, &err) == KURA_OK)
			(void)fsync(fd);
		close(fd);
	}
	if (unlink(path) != 0) {
		fprintf(stderr, "kura: warning: cannot remove '%s': %s\n", path,
			strerror(errno));
		return;
	}
	(void)kura_fsync_dir(svc->data_dir, &err);
	printf("removed '%s': the secret it held no longer works\n", path);
}

static int list_keys(struct kura_service *svc, const struct kura_tenant *t)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_access_key *ks = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	if (pool == NULL ||
	    kura_meta_access_key_list(svc->meta, t->id, pool, &ks, &n, &err) !=
		    KURA_OK) {
		fprintf(stderr, "kura: %s\n", pool ? err.msg : "out of memory");
		kura_pool_free(pool);
		return 1;
	}
	printf("%-40s %-8s %s\n", "ACCESS KEY ID", "STATE", "CREATED");
	for (size_t i = 0; i < n; i++) {
		char when[KURA_TIME_ISO8601_LEN];
		kura_time_iso8601(ks[i].created_ms, when);
		printf("%-40s %-8s %s\n", ks[i].id,
		       ks[i].active ? "active" : "revoked", when);
	}
	kura_pool_free(pool);
	return 0;
}

static void print_new(const struct kura_tenant *t, const char *id,
		      const char *secret)
{
	printf("# access key of tenant '%s'; the secret is shown only this once\n"
	       "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n",
	       t->name, id, secret);
}

static int create_key(struct kura_service *svc, const struct kura_tenant *t)
{
	char id[KURA_ACCESS_KEY_LEN + 1] = "", secret[KURA_SECRET_KEY_LEN + 1];
	struct kura_error err = { 0 };
	if (!cli_audit_request(svc, "access_key.create", t->id, t->name,
			       t->name))
		return 1;
	enum kura_err rc = kura_auth_generate_key(id, secret, &err);
	if (rc == KURA_OK)
		rc = kura_auth_add_key(svc->meta, svc->system_key, t->id, id,
				       secret, &err);
	if (rc == KURA_OK)
		print_new(t, id, secret);
	else
		fprintf(stderr, "kura: %s\n", err.msg);
	kura_wipe(secret, sizeof(secret));
	char after[KURA_ACCESS_KEY_ID_MAX + 32];
	snprintf(after, sizeof(after), "created; access key %s", id);
	bool recorded = cli_audit_result(svc, "access_key.create", t->id,
					 t->name, t->name, NULL,
					 rc == KURA_OK ? after : NULL, rc);
	return rc == KURA_OK && recorded ? 0 : 1;
}

/* The key to act on: the one named (it must be t's), or — when none is
 * named — t's only active key.  Prints why not and returns false. */
static bool pick(struct kura_service *svc, const struct kura_tenant *t,
		 const char *id, struct kura_access_key *out)
{
	struct kura_error err = { 0 };
	if (id != NULL) {
		enum kura_err rc =
			kura_meta_access_key_get(svc->meta, id, out, &err);
		if (rc == KURA_OK && out->tenant_id == t->id)
			return true;
		fprintf(stderr, "kura: tenant '%s' has no access key '%s'\n",
			t->name, id);
		return false;
	}
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_access_key *ks = NULL;
	size_t n = 0, active = 0;
	if (pool != NULL && kura_meta_access_key_list(svc->meta, t->id, pool,
						      &ks, &n, &err) == KURA_OK)
		for (size_t i = 0; i < n; i++)
			if (ks[i].active && active++ == 0)
				*out = ks[i];
	kura_pool_free(pool);
	if (active == 1)
		return true;
	fprintf(stderr,
		"kura: tenant '%s' has %zu active access keys: name the one "
		"to rotate (kura tenant key list %s)\n",
		t->name, active, t->name);
	return false;
}

static int rotate_key(struct kura_service *svc, const struct kura_tenant *t,
		      const char *which)
{
	struct kura_access_key old;
	char id[KURA_ACCESS_KEY_LEN + 1] = "", secret[KURA_SECRET_KEY_LEN + 1];
	struct kura_error err = { 0 };
	if (!pick(svc, t, which, &old))
		return 1;
	if (!old.active) {
		fprintf(stderr,
			"kura: access key '%s' is revoked; make a new one with "
			"kura tenant key create %s\n",
			old.id, t->name);
		return 1;
	}
	if (!cli_audit_request(svc, "access_key.rotate", t->id, t->name,
			       old.id))
		return 1;
	enum kura_err rc = kura_auth_rotate_key(
		svc->meta, svc->system_key, t->id, old.id, id, secret, &err);
	if (rc == KURA_OK) {
		print_new(t, id, secret);
		printf("# access key %s is revoked\n", old.id);
	} else {
		fprintf(stderr, "kura: %s\n", err.msg);
	}
	kura_wipe(secret, sizeof(secret));
	char after[KURA_ACCESS_KEY_ID_MAX + 48];
	snprintf(after, sizeof(after), "revoked; replaced by access key %s",
		 id);
	bool recorded = cli_audit_result(svc, "access_key.rotate", t->id,
					 t->name, old.id, "active",
					 rc == KURA_OK ? after : NULL, rc);
	if (rc == KURA_OK)
		forget_saved_credentials(svc, old.id);
	return rc == KURA_OK && recorded ? 0 : 1;
}

static int revoke_key(struct kura_service *svc, const struct kura_tenant *t,
		      const char *which)
{
	struct kura_access_key k;
	struct kura_error err = { 0 };
	if (!pick(svc, t, which, &k) ||
	    !cli_audit_request(svc, "access_key.revoke", t->id, t->name, k.id))
		return 1;
	enum kura_err rc = kura_meta_access_key_revoke(svc->meta, k.id, &err);
	if (rc == KURA_OK)
		printf("access key %s revoked: requests signed with it are refused from "
		       "now on\n",
		       k.id);
	else
		fprintf(stderr, "kura: %s\n", err.msg);
	bool recorded = cli_audit_result(svc, "access_key.revoke", t->id,
					 t->name, k.id,
					 k.active ? "active" : "revoked",
					 rc == KURA_OK ? "revoked" : NULL, rc);
	if (rc == KURA_OK)
		forget_saved_credentials(svc, k.id);
	return rc == KURA_OK && recorded ? 0 : 1;
}

int cli_access_key(const struct kura_config *cfg, const struct cli *c)
{
	/* kura tenant key SUB TENANT [ACCESS_KEY_ID] */
	const char *sub = c->nwords > 2 ? c->words[2] : "";
	bool list_or_create = strcmp(sub, "list") == 0 ||
			      strcmp(sub, "create") == 0;
	if (!(list_or_create && c->nwords == 4) &&
	    !(strcmp(sub, "rotate") == 0 &&
	      (c->nwords == 4 || c->nwords == 5)) &&
	    !(strcmp(sub, "revoke") == 0 && c->nwords == 5)) {
		fprintf(stderr,
			"usage: kura tenant key list TENANT | key create TENANT |\n"
			"       key rotate TENANT [ACCESS_KEY_ID] | key revoke TENANT "
			"ACCESS_KEY_ID\n");
		return 2;
	}
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	struct kura_tenant t;
	const char *id = c->nwords == 5 ? c->words[4] : NULL;
	int code = 1;
	if (cli_find_tenant(svc, c->words[3], &t)) {
		if (strcmp(sub, "list") == 0)
			code = list_keys(svc, &t);
		else if (strcmp(sub, "create") == 0)
			code = create_key(svc, &t);
		else if (strcmp(sub, "rotate") == 0)
			code = rotate_key(svc, &t, id);
		else
			code = revoke_key(svc, &t, id);
	}
	kura_service_close(svc);
	return code;
}

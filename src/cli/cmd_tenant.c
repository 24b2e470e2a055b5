/*
 * cmd_tenant.c — `kura tenant add|list|suspend|resume|delete` (and `kura
 * tenant key ...`, cmd_access_key.c).  Every change is recorded in the
 * audit log, request before acting and result after (cli_audit.c).
 *
 * They run beside a server: a suspension is read by the server at each
 * request (auth.h), so it applies to the next request.  Deleting a tenant
 * suspends it first, so none of its requests starts while its buckets are
 * shredded and its keys destroyed; the final step (meta tenant_delete)
 * re-checks that nothing was created meanwhile.
 */
#include <stdio.h>
#include <string.h>

#include "kura/auth.h"
#include "kura/kms.h"
#include "kura/timefmt.h"
#include "cli.h"
#include "kura/banned.h"

static const char *state_name(enum kura_tenant_state s)
{
	return s == KURA_TENANT_SUSPENDED ? "suspended" : "active";
}

static int add(struct kura_service *svc, const char *name)
{
	struct kura_error err = { 0 };
	struct kura_tenant t;
	char id[KURA_ACCESS_KEY_LEN + 1], secret[KURA_SECRET_KEY_LEN + 1];
	int code = 1;
	if (!cli_audit_request(svc, "tenant.create", 0, name, name))
		return 1;
	enum kura_err rc = kura_auth_create_tenant(svc->meta, svc->system_key,
						   name, &t, id, secret, &err);
	if (rc == KURA_EEXIST)
		fprintf(stderr, "kura: tenant '%s' already exists\n", name);
	else if (rc != KURA_OK)
		fprintf(stderr, "kura: %s\n", err.msg);
	else {
		printf("# tenant '%s' created; the secret is shown only this once\n"
		       "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n",
		       name, id, secret);
		code = 0;
	}
	kura_wipe(secret, sizeof(secret));
	/* The new access key id goes in the result: S3 records name it. */
	char after[300];
	snprintf(after, sizeof(after), "created; access key %s",
		 rc == KURA_OK ? id : "-");
	if (!cli_audit_result(svc, "tenant.create", rc == KURA_OK ? t.id : 0,
			      name, name, NULL, rc == KURA_OK ? after : NULL,
			      rc))
		code = 1;
	return code;
}

/* How many access keys of tenant are active, and how many there are. */
static void key_counts(struct kura_service *svc, struct kura_pool *pool,
		       uint64_t tenant, size_t *active, size_t *total)
{
	struct kura_access_key *ks = NULL;
	struct kura_error err = { 0 };
	*active = *total = 0;
	if (kura_meta_access_key_list(svc->meta, tenant, pool, &ks, total,
				      &err) != KURA_OK)
		return;
	for (size_t i = 0; i < *total; i++)
		*active += ks[i].active;
}

static int list(struct kura_service *svc)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_tenant *ts = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	if (pool == NULL ||
	    kura_meta_tenant_list(svc->meta, pool, &ts, &n, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", pool ? err.msg : "out of memory");
		kura_pool_free(pool);
		return 1;
	}
	printf("%-24s %-10s %8s %13s  %s\n", "NAME", "STATE", "BUCKETS",
	       "KEYS (ACTIVE)", "CREATED");
	for (size_t i = 0; i < n; i++) {
		struct kura_bucket *bs = NULL;
		size_t nb = 0, active = 0, total = 0;
		char when[KURA_TIME_ISO8601_LEN];
		(void)kura_meta_bucket_list(svc->meta, ts[i].id, pool, &bs, &nb,
					    &err);
		key_counts(svc, pool, ts[i].id, &active, &total);
		kura_time_iso8601(ts[i].created_ms, when);
		printf("%-24s %-10s %8zu %6zu (%4zu)  %s\n", ts[i].name,
		       state_name(ts[i].state), nb, total, active, when);
	}
	kura_pool_free(pool);
	return 0;
}

static int set_state(struct kura_service *svc, const char *name,
		     enum kura_tenant_state to)
{
	struct kura_tenant t;
	struct kura_error err = { 0 };
	const char *op = to == KURA_TENANT_SUSPENDED ? "tenant.suspend" :
						       "tenant.resume";
	if (!cli_find_tenant(svc, name, &t) ||
	    !cli_audit_request(svc, op, t.id, t.name, t.name))
		return 1;
	enum kura_err rc =
		kura_meta_tenant_set_state(svc->meta, t.id, to, &err);
	if (rc != KURA_OK)
		fprintf(stderr, "kura: %s\n", err.msg);
	else if (to == KURA_TENANT_SUSPENDED)
		printf("tenant '%s' suspended: requests with its access keys are refused "
		       "(AccessDenied) from now on; its data is kept\n",
		       t.name);
	else
		printf("tenant '%s' active again\n", t.name);
	bool recorded = cli_audit_result(svc, op, t.id, t.name, t.name,
					 state_name(t.state),
					 rc == KURA_OK ? state_name(to) : NULL,
					 rc);
	return rc == KURA_OK && recorded ? 0 : 1;
}

/* Destroy every key of the tenant that is not destroyed yet (a tenant-wide
 * key, SSE-KMS keys): with its buckets gone they protect nothing but old
 * copies, which deletion means to make unreadable. */
static bool destroy_keys(struct kura_service *svc, const struct kura_tenant *t,
			 struct kura_pool *pool)
{
	struct kura_key *ks = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	if (kura_meta_key_list(svc->meta, t->id, pool, &ks, &n, &err) !=
	    KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (ks[i].state == KURA_KEY_DESTROYED)
			continue;
		struct kura_kms_destroyed d;
		if (!cli_audit_request(svc, "key.destroy", t->id, t->name,
				       ks[i].name))
			return false;
		kura_error_clear(&err);
		enum kura_err rc =
			kura_kms_key_destroy(svc->kms, ks[i].id, &d, &err);
		if (rc == KURA_OK)
			printf("key '%s' destroyed (%zu versions)\n",
			       ks[i].name, d.count);
		else
			fprintf(stderr, "kura: destroy key '%s': %s\n",
				ks[i].name, err.msg);
		bool recorded = cli_audit_result(
			svc, "key.destroy", t->id, t->name, ks[i].name, "live",
			rc == KURA_OK ? "destroyed" : NULL, rc);
		if (rc != KURA_OK || !recorded)
			return false;
	}
	return true;
}

/* Suspend (so nothing new starts), shred the buckets, destroy the keys,
 * delete.  Stops at the first failure, leaving the tenant suspended. */
static enum kura_err delete_steps(struct kura_service *svc,
				  const struct kura_tenant *t,
				  const struct kura_bucket *bs, size_t nb,
				  struct kura_pool *pool,
				  struct kura_error *err)
{
	struct kura_meta *meta = svc->meta;
	enum kura_err rc = kura_meta_tenant_set_state(
		meta, t->id, KURA_TENANT_SUSPENDED, err);
	for (size_t i = 0; rc == KURA_OK && i < nb; i++)
		if (!cli_shred_bucket(svc, bs[i].name))
			rc = kura_fail(err, KURA_EIO,
				       "shredding bucket '%s' failed",
				       bs[i].name);
	if (rc == KURA_OK && !destroy_keys(svc, t, pool))
		rc = kura_fail(err, KURA_EIO,
			       "destroying the tenant's keys failed");
	if (rc == KURA_OK)
		rc = kura_meta_tenant_delete(meta, t->id, err);
	return rc;
}

/* Refusals that change nothing: the root tenant, buckets without
 * --shred-buckets, no --yes. */
static int delete_refused(const struct kura_tenant *t,
			  const struct kura_bucket *bs, size_t nb,
			  const struct cli *c)
{
	if (strcmp(t->name, KURA_ROOT_TENANT) == 0) {
		fprintf(stderr, "kura: the root tenant cannot be deleted\n");
		return 1;
	}
	if (nb > 0 && !c->shred_buckets) {
		fprintf(stderr, "kura: tenant '%s' owns %zu bucket%s (",
			t->name, nb, nb == 1 ? "" : "s");
		for (size_t i = 0; i < nb && i < 10; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", bs[i].name);
		fprintf(stderr,
			"%s): shred them first (kura bucket shred), or repeat "
			"with --shred-buckets to shred every one (its data is destroyed "
			"for good; each gets a deletion certificate)\n",
			nb > 10 ? ", ..." : "");
		return 1;
	}
	if (!c->yes) {
		fprintf(stderr,
			"kura: deleting tenant '%s' destroys its keys and access "
			"keys for good; repeat with --yes\n",
			t->name);
		return 2;
	}
	return 0;
}

static int delete_tenant(struct kura_service *svc, const struct cli *c,
			 const char *name)
{
	struct kura_tenant t;
	struct kura_bucket *bs = NULL;
	size_t nb = 0, active = 0, total = 0;
	struct kura_error err = { 0 };
	struct kura_pool *pool = kura_pool_new(0);
	int code = 1;
	if (pool == NULL || !cli_find_tenant(svc, name, &t))
		goto out;
	if (kura_meta_bucket_list(svc->meta, t.id, pool, &bs, &nb, &err) !=
	    KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		goto out;
	}
	if ((code = delete_refused(&t, bs, nb, c)) != 0)
		goto out;
	code = 1;
	if (!cli_audit_request(svc, "tenant.delete", t.id, t.name, t.name))
		goto out;
	key_counts(svc, pool, t.id, &active, &total);
	char before[160];
	snprintf(before, sizeof(before),
		 "%s; %zu buckets; %zu access keys (%zu active)",
		 state_name(t.state), nb, total, active);
	enum kura_err rc = delete_steps(svc, &t, bs, nb, pool, &err);
	if (rc == KURA_ENOTEMPTY)
		fprintf(stderr,
			"kura: tenant '%s' got a new bucket meanwhile; it stays "
			"suspended: run the command again\n",
			t.name);
	else if (rc != KURA_OK)
		fprintf(stderr,
			"kura: delete tenant '%s': %s (it stays suspended)\n",
			t.name, err.msg);
	else
		printf("tenant '%s' deleted\n", t.name);
	bool recorded = cli_audit_result(svc, "tenant.delete", t.id, t.name,
					 t.name, before,
					 rc == KURA_OK ? "deleted" : NULL, rc);
	code = rc == KURA_OK && recorded ? 0 : 1;
out:
	kura_pool_free(pool);
	return code;
}

static int usage_error(void)
{
	fprintf(stderr,
		"usage: kura tenant add NAME | list | suspend NAME | resume NAME |\n"
		"       delete NAME [--shred-buckets] --yes |\n"
		"       key list NAME | key create NAME | key rotate NAME [ACCESS_KEY_ID] |\n"
		"       key revoke NAME ACCESS_KEY_ID\n");
	return 2;
}

int cli_tenant_cmd(const struct kura_config *cfg, const struct cli *c)
{
	const char *sub = c->nwords > 1 ? c->words[1] : "";
	bool one_name = c->nwords == 3;
	int code;
	if (strcmp(sub, "key") == 0)
		return cli_access_key(cfg, c);
	if (!(strcmp(sub, "list") == 0 && c->nwords == 2) &&
	    !(one_name &&
	      (strcmp(sub, "add") == 0 || strcmp(sub, "suspend") == 0 ||
	       strcmp(sub, "resume") == 0 || strcmp(sub, "delete") == 0)))
		return usage_error();
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	if (strcmp(sub, "list") == 0)
		code = list(svc);
	else if (strcmp(sub, "add") == 0)
		code = add(svc, c->words[2]);
	else if (strcmp(sub, "suspend") == 0)
		code = set_state(svc, c->words[2], KURA_TENANT_SUSPENDED);
	else if (strcmp(sub, "resume") == 0)
		code = set_state(svc, c->words[2], KURA_TENANT_ACTIVE);
	else
		code = delete_tenant(svc, c, c->words[2]);
	kura_service_close(svc);
	return code;
}

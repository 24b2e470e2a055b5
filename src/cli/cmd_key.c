/*
 * cmd_key.c — `kura key ...`: list, create, import (BYOK), rotate, disable,
 * enable, destroy.  Commands work while a server runs: the server notices
 * every change within a second (kms.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kura/auth.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/kms.h"
#include "kura/timefmt.h"
#include "cli.h"
#include "kura/banned.h"

static const char *state_name(enum kura_key_state s)
{
	return s == KURA_KEY_ENABLED  ? "enabled" :
	       s == KURA_KEY_DISABLED ? "disabled" :
					"destroyed";
}

static const char *version_state_name(enum kura_key_version_state s)
{
	return s == KURA_KEYVER_ACTIVE	? "active" :
	       s == KURA_KEYVER_RETIRED ? "retired" :
					  "destroyed";
}

static int list_keys(struct kura_service *svc, uint64_t tenant)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct kura_key *ks = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	if (pool == NULL || kura_meta_key_list(svc->meta, tenant, pool, &ks, &n,
					       &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		kura_pool_free(pool);
		return 1;
	}
	printf("%-40s %-9s %-9s %-8s %s\n", "NAME", "STATE", "PROVIDER",
	       "VERSION", "KEK (version: id state)");
	for (size_t i = 0; i < n; i++) {
		struct kura_key_version *vs = NULL;
		size_t nv = 0;
		printf("%-40s %-9s %-9s %-8u", ks[i].name,
		       state_name(ks[i].state), ks[i].provider,
		       ks[i].current_version);
		if (kura_meta_key_versions(svc->meta, ks[i].id, pool, &vs, &nv,
					   &err) == KURA_OK)
			for (size_t v = 0; v < nv; v++)
				printf(" %u:%s %s", vs[v].version, vs[v].kek_id,
				       version_state_name(vs[v].state));
		printf("%s\n", ks[i].imported ? " (imported)" : "");
	}
	kura_pool_free(pool);
	return 0;
}

/* 32 raw bytes, or 64 hex digits (with optional trailing newline). */
static struct kura_secret *read_key_file(const char *path)
{
	char *text = NULL;
	size_t n = 0;
	struct kura_error err = { 0 };
	struct kura_secret *k = NULL;
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		fprintf(stderr, "kura: warning: '%s' is readable by others\n",
			path);
	if (kura_read_file(path, 256, &text, &n, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return NULL;
	}
	if (n == 32) {
		k = kura_secret_from(text, 32);
	} else {
		while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
			n--;
		k = kura_secret_new(32);
		if (k != NULL &&
		    kura_hex_decode(text, n, k->data, 32) != KURA_OK) {
			kura_secret_free(k);
			k = NULL;
			fprintf(stderr,
				"kura: '%s' must hold 32 raw bytes or 64 hex digits\n",
				path);
		}
	}
	kura_wipe(text, n);
	free(text);
	return k;
}

static bool find_key(struct kura_service *svc, uint64_t tenant,
		     const char *name, struct kura_key *k)
{
	struct kura_error err = { 0 };
	enum kura_err rc =
		kura_meta_key_get_by_name(svc->meta, tenant, name, k, &err);
	if (rc == KURA_ENOENT)
		fprintf(stderr, "kura: no key '%s'\n", name);
	else if (rc != KURA_OK)
		fprintf(stderr, "kura: %s\n", err.msg);
	return rc == KURA_OK;
}

/* Each mutating command: its preconditions (nothing recorded when they
 * fail), the audit request, the action, the audit result. */
static enum kura_err act(struct kura_service *svc, const char *sub,
			 uint64_t tenant, const char *name,
			 const struct kura_key *k,
			 const struct kura_secret *material, char *after,
			 size_t cap, struct kura_error *err)
{
	struct kura_key made;
	enum kura_err rc;
	if (strcmp(sub, "create") == 0) {
		rc = kura_kms_key_create(svc->kms, tenant, name, &made, err);
		if (rc == KURA_EEXIST)
			fprintf(stderr, "kura: key '%s' already exists\n",
				name);
		else if (rc == KURA_OK)
			printf("key '%s' created (%s)\n", made.name,
			       made.provider);
		snprintf(after, cap, "enabled, version 1");
	} else if (strcmp(sub, "import") == 0) {
		rc = kura_kms_key_import(svc->kms, tenant, name, material,
					 &made, err);
		if (rc == KURA_OK)
			printf("key '%s' imported into %s\n", made.name,
			       made.provider);
		snprintf(after, cap, "enabled, version 1, imported");
	} else if (strcmp(sub, "rotate") == 0) {
		uint32_t v = 0;
		rc = kura_kms_key_rotate(svc->kms, k->id, &v, err);
		if (rc == KURA_OK)
			printf("key '%s' is now at version %u; existing data keys are "
			       "re-wrapped in the background\n",
			       k->name, v);
		snprintf(after, cap, "version %u", v);
	} else if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
		bool on = strcmp(sub, "enable") == 0;
		rc = kura_kms_key_set_state(
			svc->kms, k->id,
			on ? KURA_KEY_ENABLED : KURA_KEY_DISABLED, err);
		if (rc == KURA_OK)
			printf("key '%s' %s\n", k->name,
			       on ? "enabled" : "disabled");
		snprintf(after, cap, "%s", on ? "enabled" : "disabled");
	} else {
		struct kura_kms_destroyed d;
		rc = kura_kms_key_destroy(svc->kms, k->id, &d, err);
		if (rc == KURA_OK)
			printf("key '%s' destroyed (%zu versions)\n", k->name,
			       d.count);
		snprintf(after, cap, "destroyed");
	}
	return rc;
}

static bool known_command(const char *sub)
{
	static const char *const subs[] = { "create",  "import", "rotate",
					    "disable", "enable", "destroy" };
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(sub, subs[i]) == 0)
			return true;
	return false;
}

static int run(struct kura_service *svc, const struct cli *c, uint64_t tenant)
{
	const char *sub = c->words[1];
	const char *name = c->nwords > 2 ? c->words[2] : NULL;
	const char *tenant_name = c->tenant ? c->tenant : KURA_ROOT_TENANT;
	struct kura_error err = { 0 };
	struct kura_key k = { 0 };
	if (strcmp(sub, "list") == 0)
		return list_keys(svc, tenant);
	if (!known_command(sub)) {
		fprintf(stderr, "kura: unknown key command '%s'\n", sub);
		return 2;
	}
	if (name == NULL) {
		fprintf(stderr, "kura: key %s needs a key name\n", sub);
		return 2;
	}
	bool is_new = strcmp(sub, "create") == 0 || strcmp(sub, "import") == 0;
	if (strcmp(sub, "import") == 0 && c->from == NULL) {
		fprintf(stderr, "kura: key import needs --from FILE\n");
		return 2;
	}
	if (!is_new && !find_key(svc, tenant, name, &k))
		return 1;
	if (strcmp(sub, "destroy") == 0 && !c->yes) {
		fprintf(stderr,
			"kura: destroying key '%s' makes all data under it "
			"unrecoverable; repeat with --yes\n",
			k.name);
		return 2;
	}
	struct kura_secret *material = NULL;
	if (strcmp(sub, "import") == 0 &&
	    (material = read_key_file(c->from)) == NULL)
		return 1;
	char op[32];
	snprintf(op, sizeof(op), "key.%s", sub);
	if (!cli_audit_request(svc, op, tenant, tenant_name, name)) {
		kura_secret_free(material);
		return 1;
	}
	char before[64] = "", after[64] = "";
	if (strcmp(sub, "rotate") == 0)
		snprintf(before, sizeof(before), "version %u",
			 k.current_version);
	else if (!is_new)
		snprintf(before, sizeof(before), "%s", state_name(k.state));
	enum kura_err rc = act(svc, sub, tenant, name, &k, material, after,
			       sizeof(after), &err);
	kura_secret_free(material);
	if (rc != KURA_OK && rc != KURA_EEXIST)
		fprintf(stderr, "kura: %s\n", err.msg);
	bool recorded = cli_audit_result(svc, op, tenant, tenant_name, name,
					 before[0] ? before : NULL,
					 rc == KURA_OK ? after : NULL, rc);
	return rc == KURA_OK && recorded ? 0 : 1;
}

int cli_key(const struct kura_config *cfg, const struct cli *c)
{
	if (c->nwords < 2) {
		fprintf(stderr,
			"kura: key needs a command (list, create, import, rotate, "
			"disable, enable, destroy)\n");
		return 2;
	}
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	uint64_t tenant = 0;
	int code = cli_tenant(svc, c, &tenant) ? run(svc, c, tenant) : 1;
	kura_service_close(svc);
	return code;
}

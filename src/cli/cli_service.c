/*
 * cli_service.c — what every command that works on a data directory
 * does first: open the service, find the tenant it acts for.  A leaf of
 * src/cli, so the command files need main.c for nothing and one another
 * for nothing but the commands they run.
 *
 * Single-threaded, as the kura command is.
 */
#include <stdio.h>

#include "kura/auth.h"
#include "kura/log.h"
#include "kura/secret.h"
#include "cli.h"
#include "kura/banned.h"

struct kura_service *cli_open_service(const struct kura_config *cfg)
{
	struct kura_error err = { 0 };
	struct kura_service *svc = NULL;
	kura_log_threshold = KURA_LOG_WARN;
	if (kura_secret_harden_process(&err) != KURA_OK ||
	    kura_service_open(cfg, KURA_SERVICE_INIT, &svc, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		kura_service_close(svc);
		return NULL;
	}
	return svc;
}

bool cli_tenant(struct kura_service *svc, const struct cli *c, uint64_t *id)
{
	struct kura_tenant t;
	struct kura_error err = { 0 };
	const char *name = c->tenant ? c->tenant : KURA_ROOT_TENANT;
	enum kura_err rc =
		kura_meta_tenant_get_by_name(svc->meta, name, &t, &err);
	if (rc == KURA_ENOENT) {
		fprintf(stderr, "kura: no tenant '%s'\n", name);
		return false;
	}
	if (rc != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return false;
	}
	*id = t.id;
	return true;
}

bool cli_find_tenant(struct kura_service *svc, const char *name,
		     struct kura_tenant *t)
{
	struct kura_error err = { 0 };
	enum kura_err rc =
		kura_meta_tenant_get_by_name(svc->meta, name, t, &err);
	if (rc == KURA_ENOENT)
		fprintf(stderr, "kura: no tenant '%s'\n", name);
	else if (rc != KURA_OK)
		fprintf(stderr, "kura: %s\n", err.msg);
	return rc == KURA_OK;
}

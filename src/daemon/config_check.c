/*
 * config_check.c — the whole configuration, checked before the server
 * creates, migrates or locks anything (kura_daemon_check_config).
 *
 * Every value was already checked against its type and bounds when it was
 * read (src/core/config.c); what is checked here needs more than one key
 * or knowledge of a layer: the listen address against TLS, the TLS files,
 * the names of the key provider, data store and metadata store, each key
 * provider's own settings and files, and the settings the service parses
 * itself.  None of these checks writes anything.
 *
 * Thread-safe (no state).
 */
#include <stdio.h>
#include <string.h>

#include "kura/daemon.h"
#include "kura/http.h"
#include "kura/log.h"
#include "kura/banned.h"

typedef enum kura_err (*check_fn)(const struct kura_config *cfg,
				  struct kura_error *err);

static enum kura_err check_log_level(const struct kura_config *cfg,
				     struct kura_error *err)
{
	const char *level = kura_config_get(cfg, "server", "log_level");
	if (kura_log_level_parse(level) < 0)
		return kura_fail(err, KURA_ECONFIG, "[server] log_level '%s' is not "
				 "debug, info, warn or error", level);
	return KURA_OK;
}

static enum kura_err check_backends(const struct kura_config *cfg,
				    struct kura_error *err)
{
	const char *store = kura_config_get(cfg, "storage", "backend");
	const char *meta = kura_config_get(cfg, "meta", "driver");
	bool found = false;
	for (size_t i = 0; kura_stores[i] != NULL; i++)
		found = found || strcmp(kura_stores[i]->name, store) == 0;
	if (!found)
		return kura_fail(err, KURA_ECONFIG, "[storage] backend: unknown data "
				 "store '%s'", store);
	found = false;
	for (size_t i = 0; kura_metas[i] != NULL; i++)
		found = found || strcmp(kura_metas[i]->name, meta) == 0;
	if (!found)
		return kura_fail(err, KURA_ECONFIG, "[meta] driver: unknown metadata "
				 "store '%s'", meta);
	return KURA_OK;
}

static enum kura_err check_keys(const struct kura_config *cfg,
				struct kura_error *err)
{
	const char *scope = kura_config_get(cfg, "keys", "kek_scope");
	if (strcmp(scope, "bucket") != 0 && strcmp(scope, "tenant") != 0)
		return kura_fail(err, KURA_ECONFIG,
				 "[keys] kek_scope must be bucket or tenant, not '%s'", scope);
	return kura_keys_check_config(cfg, kura_config_get(cfg, "server", "data_dir"),
				      err);
}

static const check_fn checks[] = {
	check_log_level,
	kura_service_check_config,
	check_backends,
	kura_http_check_config,
	check_keys,
};

enum kura_err kura_daemon_check_config(const struct kura_config *cfg,
				       kura_config_problem_fn report, void *ctx,
				       struct kura_error *err)
{
	enum kura_err first = KURA_OK;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		struct kura_error e = { 0 };
		enum kura_err rc = checks[i](cfg, &e);
		if (rc == KURA_OK)
			continue;
		if (first == KURA_OK)
			first = kura_fail(err, rc, "%s", e.msg);
		if (report == NULL)
			return first;
		report(ctx, e.msg);
	}
	return first;
}

/*
 * config_check.c — the whole configuration, checked before the server
 * creates, migrates or locks anything (kura_daemon_check_config).
 *
 * Every value was already checked against its type and bounds when it was
 * read (src/core/config.c); what is checked here needs more than one key
 * or knowledge of a layer: the listen address against TLS, the TLS files,
 * the names of the key provider, data store and metadata store, each key
 * provider's own settings and files, and the settings the service parses
 * itself, and the root credentials from the environment.  None of these
 * checks writes anything.
 *
 * Thread-safe (no state).
 */
#include <stdio.h>
#include <string.h>

#include "kura/auth.h"
#include "kura/daemon.h"
#include "kura/placement.h"
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
		return kura_fail(err, KURA_ECONFIG,
				 "[server] log_level '%s' is not "
				 "debug, info, warn or error",
				 level);
	return KURA_OK;
}

static enum kura_err check_backends(const struct kura_config *cfg,
				    struct kura_error *err)
{
	enum kura_err rc = kura_store_check_config(cfg, err);
	if (rc == KURA_OK)
		rc = kura_meta_check_config(cfg, err);
	return rc;
}

static enum kura_err check_kek_scope(const struct kura_config *cfg,
				     struct kura_error *err)
{
	const char *scope = kura_config_get(cfg, "keys", "kek_scope");
	if (strcmp(scope, "bucket") != 0 && strcmp(scope, "tenant") != 0)
		return kura_fail(
			err, KURA_ECONFIG,
			"[keys] kek_scope must be bucket or tenant, not '%s'",
			scope);
	return KURA_OK;
}

static enum kura_err check_provider(const struct kura_config *cfg,
				    struct kura_error *err)
{
	return kura_keys_check_config(
		cfg, kura_config_get(cfg, "server", "data_dir"), err);
}

/* The root credentials from the environment (kura_env_capture): both or
 * neither, and acceptable, before anything is created with them. */
static enum kura_err check_env_root(const struct kura_config *cfg,
				    struct kura_error *err)
{
	char id[KURA_ACCESS_KEY_ID_MAX];
	const struct kura_secret *secret =
		kura_env_secret("KURA_ROOT_SECRET_KEY");
	bool have_id =
		kura_env_secret_str("KURA_ROOT_ACCESS_KEY", id, sizeof(id));
	(void)cfg;
	if (kura_env_secret("KURA_ROOT_ACCESS_KEY") != NULL && !have_id)
		return kura_fail(err, KURA_ECONFIG,
				 "KURA_ROOT_ACCESS_KEY is too long");
	if (have_id != (secret != NULL))
		return kura_fail(err, KURA_ECONFIG,
				 "set both KURA_ROOT_ACCESS_KEY and "
				 "KURA_ROOT_SECRET_KEY, or neither");
	if (have_id && !kura_auth_access_key_id_valid(id))
		return kura_fail(err, KURA_ECONFIG,
				 "KURA_ROOT_ACCESS_KEY must be 16-128 "
				 "characters of A-Z and 0-9");
	if (secret != NULL &&
	    (secret->len < 16 || secret->len > KURA_SECRET_KEY_MAX))
		return kura_fail(err, KURA_ECONFIG,
				 "KURA_ROOT_SECRET_KEY must be 16-%d "
				 "characters",
				 KURA_SECRET_KEY_MAX);
	return KURA_OK;
}

/* [maintenance] window: "HH:MM-HH:MM", UTC; a bad one would silently
 * keep the lifecycle job from ever running. */
static enum kura_err check_window(const struct kura_config *cfg,
				  struct kura_error *err)
{
	const char *w = kura_config_get(cfg, "maintenance", "window");
	int start, end;
	if (w == NULL || kura_daemon_window_parse(w, &start, &end))
		return KURA_OK;
	return kura_fail(err, KURA_ECONFIG,
			 "[maintenance] window '%s' is not HH:MM-HH:MM (UTC, "
			 "two different times)",
			 w);
}

/* Backends, placement policies and the seed-001 rule. */
static enum kura_err check_placement(const struct kura_config *cfg,
				     struct kura_error *err)
{
	struct kura_placement *p = NULL;
	enum kura_err rc = kura_placement_load(cfg, &p, err);
	kura_placement_free(p);
	return rc;
}

static const check_fn checks[] = {
	check_log_level, kura_service_check_config,
	check_backends,	 kura_http_check_config,
	check_kek_scope, check_provider,
	check_env_root,	 check_window,
	check_placement,
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

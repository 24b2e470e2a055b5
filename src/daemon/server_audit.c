/*
 * server_audit.c — the server's own entries in the audit log: start (with
 * the effective configuration, so that an auditor sees every change of
 * settings between runs), stop, the periodic signed checkpoints, and the
 * integrity failures found with no request to name.
 *
 * Called from the main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/banned.h"

#define NAMED_MAX 64

static void config_value(json_t *c, const struct kura_config *cfg,
			 const char *section, const char *key)
{
	const char *v = kura_config_get(cfg, section, key);
	char name[128];
	snprintf(name, sizeof(name), "%s.%s", section, key);
	json_object_set_new(c, name, v ? json_string(v) : json_null());
}

/* A key of named sections ("backend.*"): its value in each one configured
 * ("backend.NAME.key"). */
static void named_values(json_t *c, const struct kura_config *cfg,
			 const struct kura_config_key *k)
{
	char prefix[64], section[128];
	snprintf(prefix, sizeof(prefix), "%.*s", (int)strlen(k->section) - 2,
		 k->section);
	const char *names[NAMED_MAX];
	size_t n = kura_config_names(cfg, prefix, names, NAMED_MAX);
	for (size_t i = 0; i < n && i < NAMED_MAX; i++) {
		snprintf(section, sizeof(section), "%s.%s", prefix, names[i]);
		config_value(c, cfg, section, k->key);
	}
}

/* Every configuration key with its effective value: the table holds no
 * secrets, only paths to where they are kept. */
static json_t *effective_config(const struct kura_config *cfg)
{
	json_t *c = json_object();
	if (c == NULL)
		return NULL;
	for (const struct kura_config_key *k = kura_config_keys(); k->section;
	     k++) {
		size_t len = strlen(k->section);
		if (len >= 2 && strcmp(k->section + len - 2, ".*") == 0)
			named_values(c, cfg, k);
		else
			config_value(c, cfg, k->section, k->key);
	}
	return c;
}

static char *start_detail(const struct kura_service *svc, const char *scheme,
			  const char *listen)
{
	json_t *d = json_object();
	if (d == NULL)
		return NULL;
	json_object_set_new(d, "version", json_string(KURA_VERSION));
	json_object_set_new(d, "endpoint",
			    json_sprintf("%s://%s", scheme, listen));
	json_object_set_new(d, "provider", json_string(svc->keys->ops->name));
	/* This server ran on sealed metadata (seal_job.c reads this: no
	 * upgrade of unsealed rows may come after it). */
	json_object_set_new(d, "metadata_seals",
			    json_integer(KURA_SEAL_FORMAT));
	json_object_set_new(d, "config", effective_config(svc->cfg));
	char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	return text;
}

enum kura_err kura_daemon_audit_start(struct kura_service *svc,
				      const char *scheme, const char *listen,
				      struct kura_error *err)
{
	if (svc->audit == NULL) {
		kura_warn(NULL,
			  "the audit log is off ([audit] enabled = false): "
			  "operations are not recorded");
		return KURA_OK;
	}
	char *detail = start_detail(svc, scheme, listen);
	if (detail == NULL)
		return kura_fail(err, KURA_ENOMEM, "audit record");
	enum kura_err rc = kura_service_audit_event(
		svc, "server", "server.start", 0, NULL, detail, KURA_OK, err);
	free(detail);
	/* Sign at once: records appended while no server ran (key commands)
	 * are covered, and a signer that does not work is found now. */
	if (rc == KURA_OK)
		rc = kura_service_audit_checkpoint(svc, err);
	return rc;
}

void kura_daemon_audit_checkpoint(struct kura_service *svc)
{
	struct kura_error err = { 0 };
	if (kura_service_audit_checkpoint(svc, &err) != KURA_OK)
		kura_error(NULL, "audit checkpoint: %s", err.msg);
}

void kura_daemon_audit_stop(struct kura_service *svc, const char *reason)
{
	struct kura_error err = { 0 };
	char detail[128];
	if (svc->audit == NULL)
		return;
	/* The run's count of integrity failures, each also a record of its
	 * own: a summary an auditor can check the records against. */
	snprintf(detail, sizeof(detail),
		 "{\"reason\":\"%s\",\"integrity_failures\":%llu}", reason,
		 (unsigned long long)__atomic_load_n(&svc->integrity_failures,
						     __ATOMIC_RELAXED));
	if (kura_service_audit_event(svc, "server", "server.stop", 0, NULL,
				     detail, KURA_OK, &err) != KURA_OK)
		kura_error(NULL, "audit log: cannot record the stop: %s",
			   err.msg);
	kura_daemon_audit_checkpoint(svc);
}

/*
 * An integrity failure found with no request to name — at start, or by a
 * background job — is logged, counted and recorded as well.  A job that
 * meets the same one every round (once a second, say) records it once.
 * Main thread only.
 */
void kura_daemon_record_integrity(struct kura_service *svc,
				  const struct kura_error *err, bool once)
{
	static char last[KURA_ERROR_MSG_MAX];
	if (err->code != KURA_EINTEGRITY || svc == NULL)
		return;
	if (once && strcmp(last, err->msg) == 0)
		return;
	snprintf(last, sizeof(last), "%s", err->msg);
	uint64_t n = __atomic_add_fetch(&svc->integrity_failures, 1,
					__ATOMIC_RELAXED);
	kura_error(NULL, "integrity failure #%llu: %s", (unsigned long long)n,
		   err->msg);
	struct kura_error e = { 0 };
	json_t *d = json_pack("{s:s}", "what", err->msg);
	char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	if (kura_service_audit_event(svc, "integrity", "integrity.failure", 0,
				     NULL, detail, KURA_EINTEGRITY,
				     &e) != KURA_OK)
		kura_error(NULL, "audit log refused the integrity record: %s",
			   e.msg);
	free(detail);
}

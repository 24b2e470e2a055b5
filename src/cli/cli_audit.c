/*
 * cli_audit.c — admin and key commands in the audit log.  A command that
 * changes state records its request before acting (and does not act when
 * the log cannot take it) and its result after, then signs a checkpoint so
 * the records are covered even when no server runs to do it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli.h"
#include "kura/banned.h"

static bool record(struct kura_service *svc, const char *op, uint64_t tenant_id,
		   const char *tenant, const char *subject, const char *phase,
		   const char *before, const char *after, enum kura_err outcome)
{
	struct kura_error err = { 0 };
	json_t *d = json_pack("{s:s}", "phase", phase);
	if (d != NULL && subject != NULL)
		json_object_set_new(d, "subject", json_string(subject));
	if (d != NULL && before != NULL)
		json_object_set_new(d, "before", json_string(before));
	if (d != NULL && after != NULL)
		json_object_set_new(d, "after", json_string(after));
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	enum kura_err rc = text == NULL
		? kura_fail(&err, KURA_ENOMEM, "audit record")
		: kura_service_audit_event(svc, "admin", op, tenant_id, tenant, text,
					   outcome, &err);
	free(text);
	if (rc != KURA_OK)
		fprintf(stderr, "kura: audit log: %s\n", err.msg);
	return rc == KURA_OK;
}

bool cli_audit_request(struct kura_service *svc, const char *op, uint64_t tenant_id,
		       const char *tenant, const char *subject)
{
	return record(svc, op, tenant_id, tenant, subject, "request", NULL, NULL, KURA_OK);
}

bool cli_audit_result(struct kura_service *svc, const char *op, uint64_t tenant_id,
		      const char *tenant, const char *subject, const char *before,
		      const char *after, enum kura_err outcome)
{
	bool ok = record(svc, op, tenant_id, tenant, subject, "result", before, after,
			 outcome);
	struct kura_error err = { 0 };
	if (kura_service_audit_checkpoint(svc, &err) != KURA_OK) {
		fprintf(stderr, "kura: audit checkpoint: %s\n", err.msg);
		ok = false;
	}
	return ok;
}

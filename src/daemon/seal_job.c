/*
 * seal_job.c — the upgrade of metadata written before schema 5: rows that
 * have no seal yet are sealed (src/kms/seal.c), at start-up before the
 * server answers anyone, and again in the background while buckets whose
 * key was disabled at start-up still wait.
 *
 * Every run that sealed something is an audit record ("meta.seal", with
 * how many rows of each kind): an upgrade is expected once per database,
 * so a second one — someone stripped seals and forged the pending marker
 * to have forged rows sealed — stands out in the log (docs/SECURITY.md).
 *
 * Runs on the main thread only.
 */
#include <stdio.h>

#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/seal.h"
#include "kura/banned.h"

enum kura_err kura_daemon_seal_upgrade(struct kura_service *svc, bool *done,
				       struct kura_error *err)
{
	struct kura_seal_report rep;
	enum kura_err rc = kura_seal_upgrade(svc->kms, svc->meta, &rep, err);
	if (rc != KURA_OK)
		return rc;
	*done = rep.done;
	if (rep.objects + rep.uploads + rep.parts == 0)
		return KURA_OK;
	char detail[192];
	snprintf(detail, sizeof(detail),
		 "{\"objects\":%zu,\"uploads\":%zu,\"upload_parts\":%zu,"
		 "\"buckets_waiting\":%zu,\"done\":%s}",
		 rep.objects, rep.uploads, rep.parts, rep.buckets_skipped,
		 rep.done ? "true" : "false");
	kura_info(NULL, "metadata seals: sealed %zu objects, %zu uploads, %zu upload "
		  "parts written before schema 5%s", rep.objects, rep.uploads, rep.parts,
		  rep.done ? "; upgrade complete" : "; buckets with a disabled key wait");
	return kura_service_audit_event(svc, "server", "meta.seal", 0, NULL, detail,
					KURA_OK, err);
}

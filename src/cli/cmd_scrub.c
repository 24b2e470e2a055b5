/*
 * cmd_scrub.c — `kura scrub [BUCKET] [--json]`: run a scrub now
 * (kura_service_scrub: every replica re-read and authenticated, bad ones
 * repaired from good ones) and print its summary.  Exit 0 when every bad
 * copy found was repaired, 1 when some could not be (or the scrub
 * failed), 2 on a usage error.  Recorded as an admin command (request and
 * result) around the scrub's own integrity and repair records.  Works
 * while a server runs.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_fmt.h"
#include "kura/banned.h"

int cli_scrub(const struct kura_config *cfg, const struct cli *c)
{
	if (c->nwords > 2) {
		fprintf(stderr, "usage: kura scrub [BUCKET] [--json]\n");
		return 2;
	}
	const char *bucket = c->nwords == 2 ? c->words[1] : NULL;
	const char *subject = bucket ? bucket : "*";
	struct kura_scrub_report rep = { 0 };
	struct kura_error err = { 0 };
	char after[256];
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	if (!cli_audit_request(svc, "scrub", 0, NULL, subject)) {
		kura_service_close(svc);
		return 1;
	}
	enum kura_err rc = kura_service_scrub(svc, bucket, &rep, &err);
	int code = rc == KURA_OK && rep.unrepairable == 0 ? 0 : 1;
	if (rc == KURA_ENOENT && bucket != NULL)
		fprintf(stderr, "kura: no bucket '%s'\n", bucket);
	else if (rc != KURA_OK)
		fprintf(stderr, "kura: scrub failed: %s\n", err.msg);
	else if (c->json && !cli_json_print(stdout, cli_scrub_json(&rep)))
		code = 1;
	else if (!c->json)
		cli_scrub_text(stdout, &rep);
	snprintf(after, sizeof(after),
		 "%llu replicas: %llu ok, %llu missing, %llu corrupt, "
		 "%llu repaired, %llu unrepairable",
		 (unsigned long long)rep.replicas, (unsigned long long)rep.ok,
		 (unsigned long long)rep.missing,
		 (unsigned long long)rep.corrupt,
		 (unsigned long long)rep.repaired,
		 (unsigned long long)rep.unrepairable);
	if (!cli_audit_result(svc, "scrub", 0, NULL, subject, NULL,
			      rc == KURA_OK ? after : NULL, rc))
		code = 1;
	kura_service_close(svc);
	return code;
}

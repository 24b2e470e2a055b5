/*
 * cmd_bucket.c — `kura bucket shred BUCKET --yes`: crypto-shredding with a
 * deletion certificate (src/service/shred.c does the work).  Also used by
 * `kura tenant delete --shred-buckets` for each of the tenant's buckets.
 * `kura bucket locate` is cmd_locate.c's.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kura/banned.h"

bool cli_shred_bucket(struct kura_service *svc, const char *bucket)
{
	char path[4096] = "";
	struct kura_error err = { 0 };
	bool ok = true;
	if (!cli_audit_request(svc, "bucket.shred", 0, NULL, bucket))
		return false;
	enum kura_err rc =
		kura_service_shred(svc, bucket, path, sizeof(path), &err);
	if (rc == KURA_ENOENT) {
		fprintf(stderr, "kura: no bucket '%s'\n", bucket);
		ok = false;
	} else if (rc != KURA_OK) {
		fprintf(stderr, "kura: shred '%s' failed: %s\n", bucket,
			err.msg);
		ok = false;
	} else {
		printf("%s\n", path);
	}
	char after[4200];
	snprintf(after, sizeof(after), "shredded; certificate %s", path);
	if (!cli_audit_result(svc, "bucket.shred", 0, NULL, bucket, "present",
			      rc == KURA_OK ? after : NULL, rc))
		ok = false;
	return ok;
}

int cli_bucket(const struct kura_config *cfg, const struct cli *c)
{
	if (c->nwords == 3 && strcmp(c->words[1], "locate") == 0)
		return cli_bucket_locate(cfg, c);
	if (c->nwords != 3 || strcmp(c->words[1], "shred") != 0) {
		fprintf(stderr, "usage: kura bucket shred BUCKET --yes\n"
				"       kura bucket locate BUCKET [--json]\n");
		return 2;
	}
	const char *bucket = c->words[2];
	if (!c->yes) {
		fprintf(stderr,
			"kura: shredding '%s' destroys its key and every object in it "
			"for good; repeat with --yes\n",
			bucket);
		return 2;
	}
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	int code = cli_shred_bucket(svc, bucket) ? 0 : 1;
	kura_service_close(svc);
	return code;
}

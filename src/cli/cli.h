/*
 * cli.h — what the files of src/cli share: parsed arguments and the
 * command entry points.
 */
#ifndef KURA_CLI_H
#define KURA_CLI_H

#include <stdbool.h>

#include "kura/config.h"
#include "kura/service.h"

#define CLI_MAX_WORDS 16

struct cli {
	const char *config;
	const char *data_dir;
	const char *listen;
	const char *tenant;	/* --tenant (default: the root tenant) */
	const char *from;	/* --from FILE (key import) */
	const char *public_key; /* --public-key PEM (cert verify, audit verify) */
	/* kura audit: --from (above) is also the search's start time */
	const char *seq;	/* --seq N */
	const char *size;	/* --size N */
	const char *to;		/* --to TIME */
	const char *bucket;	/* --bucket B */
	const char *key;	/* --key K */
	const char *op;		/* --op OPERATION */
	const char *request_id; /* --request-id ID */
	const char *published;	/* --published DIR */
	const char *limit;	/* --limit N */
	/* --version V of `object locate` (elsewhere --version prints kura's) */
	const char *object_version;
	bool json;	    /* --json: a JSON document instead of text */
	bool yes;	    /* --yes: confirm a destructive command */
	bool against_meta;  /* --against-meta (audit verify) */
	bool shred_buckets; /* --shred-buckets: tenant delete shreds them */
	const char *words[CLI_MAX_WORDS]; /* positional arguments */
	int nwords;
};

/* Open the service for a command; prints the error and returns NULL. */
struct kura_service *cli_open_service(const struct kura_config *cfg);

/* The tenant id named by --tenant (or the root tenant); prints and
 * returns false on failure. */
bool cli_tenant(struct kura_service *svc, const struct cli *c, uint64_t *id);

/* Audit records of an admin command (cli_audit.c): the request before
 * acting (false: the log refused it; the error is printed and the command
 * must not act) and the result after — with the state before and after
 * where there is one (else NULL) — followed by a signed checkpoint (false:
 * recording or signing failed; printed). */
bool cli_audit_request(struct kura_service *svc, const char *op,
		       uint64_t tenant_id, const char *tenant,
		       const char *subject);
bool cli_audit_result(struct kura_service *svc, const char *op,
		      uint64_t tenant_id, const char *tenant,
		      const char *subject, const char *before,
		      const char *after, enum kura_err outcome);

/* The tenant called name; prints why not and returns false. */
bool cli_find_tenant(struct kura_service *svc, const char *name,
		     struct kura_tenant *t);

/* Shred bucket (kura_service_shred) with its audit records; prints the
 * certificate's path, or the error.  false on failure. */
bool cli_shred_bucket(struct kura_service *svc, const char *bucket);

int cli_tenant_cmd(const struct kura_config *cfg, const struct cli *c);
int cli_access_key(const struct kura_config *cfg, const struct cli *c);
int cli_key(const struct kura_config *cfg, const struct cli *c);
int cli_bucket(const struct kura_config *cfg, const struct cli *c);
/* Location evidence (cmd_locate.c): `object locate`, `bucket locate`. */
int cli_object(const struct kura_config *cfg, const struct cli *c);
int cli_bucket_locate(const struct kura_config *cfg, const struct cli *c);
int cli_scrub(const struct kura_config *cfg, const struct cli *c);
int cli_status(const struct kura_config *cfg, const struct cli *c);
int cli_cert(const struct kura_config *cfg, const struct cli *c);
int cli_check(const struct kura_config *cfg, const struct cli *c);
int cli_audit(const struct kura_config *cfg, const struct cli *c);
/* audit verify --against-meta (audit_meta.c): 0 when the metadata holds
 * the last version the audit log in dir recorded for every key, 1 when
 * not (each disagreement printed), 2 when it could not check. */
int cli_audit_against_meta(const struct kura_config *cfg, const char *dir);

/* audit_control.c: the tenants, access keys and keys the audit log saw
 * change, and the state each change left them in. */
struct audit_control;
struct audit_control *audit_control_new(void);
void audit_control_free(struct audit_control *ac);
/* A successful admin change (phase "result", no error) of subject (a
 * tenant or key name, an access key id); other ops are ignored.  False
 * when out of memory. */
bool audit_control_note(struct audit_control *ac, const char *op,
			uint64_t tenant_id, const char *subject);
/* Compare each subject's last recorded state with the metadata; prints
 * every disagreement and returns how many. */
/* An S3 bucket change (CreateBucket, PutBucketVersioning with the new
 * status, PutObjectLockConfiguration, DeleteBucket) or bucket.shred that
 * succeeded. */
bool audit_control_note_bucket(struct audit_control *ac, const char *op,
			       const char *bucket, const char *versioning,
			       bool locked);
size_t audit_control_check(const struct audit_control *ac,
			   struct kura_service *svc);

#endif

/*
 * cmd_audit.c — `kura audit verify | proof | export | search` over the
 * audit log in DATA_DIR/audit (docs/AUDIT.md).  Every subcommand only
 * reads the log (under the writers' lock, shared), so each works while
 * the server runs.
 *
 * Trust: checkpoints carry their signer's public key, so verify pins it:
 * --public-key PEM when given, else the signer of the data directory when
 * its metadata is there, else it says that the signer is not pinned.
 * The published copy of the checkpoints is --published DIR, else
 * [audit] publish_dir when the configuration has that key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kura/audit.h"
#include "kura/kms.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "cli.h"
#include "kura/banned.h"

#define DER_MAX 1024

static void audit_dir(const struct kura_config *cfg, char *out, size_t cap)
{
	snprintf(out, cap, "%s/audit",
		 kura_config_get(cfg, "server", "data_dir"));
}

/* [audit] publish_dir, when the configuration knows that key. */
static const char *configured_publish_dir(const struct kura_config *cfg)
{
	for (const struct kura_config_key *k = kura_config_keys(); k->section;
	     k++)
		if (strcmp(k->section, "audit") == 0 &&
		    strcmp(k->key, "publish_dir") == 0)
			return kura_config_get(cfg, "audit", "publish_dir");
	return NULL;
}

static bool read_pem(const char *path, uint8_t der[DER_MAX], size_t *len)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *pk = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	int n = pk ? i2d_PUBKEY(pk, NULL) : -1;
	if (n <= 0 || n > DER_MAX) {
		EVP_PKEY_free(pk);
		fprintf(stderr, "kura: '%s' is not a PEM public key\n", path);
		return false;
	}
	unsigned char *p = der;
	i2d_PUBKEY(pk, &p);
	EVP_PKEY_free(pk);
	*len = (size_t)n;
	return true;
}

/* The signer of the configured data directory, if its metadata exists. */
static bool data_dir_signer(const struct kura_config *cfg, uint8_t der[DER_MAX],
			    size_t *len)
{
	char db[4200];
	struct stat st;
	snprintf(db, sizeof(db), "%s/meta.db",
		 kura_config_get(cfg, "server", "data_dir"));
	if (stat(db, &st) != 0)
		return false;
	struct kura_service *svc = cli_open_service(cfg);
	struct kura_error err = { 0 };
	uint8_t buf[KURA_PUBKEY_MAX];
	size_t n = 0;
	bool ok = svc &&
		  kura_kms_signer_public_key(svc->kms, svc->system_key, buf, &n,
					     &err) == KURA_OK &&
		  n <= DER_MAX;
	if (svc && !ok)
		fprintf(stderr, "kura: signer of this data dir: %s\n", err.msg);
	if (ok) {
		memcpy(der, buf, n);
		*len = n;
	}
	kura_service_close(svc);
	return ok;
}

static int verify(const struct kura_config *cfg, const struct cli *c)
{
	char dir[4200];
	uint8_t der[DER_MAX];
	size_t dl = 0;
	const char *anchor = NULL;
	audit_dir(cfg, dir, sizeof(dir));
	if (c->public_key) {
		if (!read_pem(c->public_key, der, &dl))
			return 2;
		anchor = c->public_key;
	} else if (data_dir_signer(cfg, der, &dl)) {
		anchor = "this data directory's signer";
	}
	const char *published = c->published ? c->published :
					       configured_publish_dir(cfg);
	struct kura_audit_verify_report rep;
	struct kura_error err = { 0 };
	if (kura_audit_verify(dir, published, anchor ? der : NULL, dl, &rep,
			      &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return 2;
	}
	if (!rep.ok) {
		printf("AUDIT LOG DAMAGED: %s\n", rep.problem);
		if (rep.bad_seq_known)
			printf("first bad record: %llu\n",
			       (unsigned long long)rep.bad_seq);
		else
			printf("first unverifiable record: %llu\n",
			       (unsigned long long)rep.bad_seq);
		return 1;
	}
	printf("audit log intact: %llu records checked",
	       (unsigned long long)rep.records);
	if (rep.first_seq > 0)
		printf(" (records before %llu are archived)",
		       (unsigned long long)rep.first_seq);
	printf(", %llu signed checkpoints",
	       (unsigned long long)rep.checkpoints);
	if (published)
		printf(", published copy in '%s' agrees", published);
	if (anchor)
		printf("; signer matches %s\n", anchor);
	else
		printf("; signer NOT pinned (checked against the key the checkpoints carry): "
		       "pass --public-key PEM (kura cert public-key prints it)\n");
	return c->against_meta ? cli_audit_against_meta(cfg, dir) : 0;
}

static bool parse_num(const char *what, const char *s, uint64_t *out)
{
	if (s == NULL ||
	    kura_parse_u64(s, strlen(s), UINT64_MAX, out) != KURA_OK) {
		fprintf(stderr, "kura: %s must be a number\n", what);
		return false;
	}
	return true;
}

static int proof(const struct kura_config *cfg, const struct cli *c)
{
	char dir[4200];
	uint64_t a = 0, b = 0;
	struct kura_error err = { 0 };
	enum kura_err rc;
	audit_dir(cfg, dir, sizeof(dir));
	if (c->nwords >= 4 && c->nwords <= 5 &&
	    strcmp(c->words[2], "consistency") == 0) {
		if (!parse_num("SIZE1", c->words[3], &a) ||
		    (c->nwords == 5 && !parse_num("SIZE2", c->words[4], &b)))
			return 2;
		rc = kura_audit_consistency_proof(dir, a, b, stdout, &err);
	} else if (c->seq && c->nwords <= 3 &&
		   (c->nwords == 2 || strcmp(c->words[2], "inclusion") == 0)) {
		if (!parse_num("--seq", c->seq, &a) ||
		    (c->size && !parse_num("--size", c->size, &b)))
			return 2;
		rc = kura_audit_inclusion_proof(dir, a, b, stdout, &err);
	} else {
		fprintf(stderr,
			"usage: kura audit proof [inclusion] --seq N [--size N] | "
			"kura audit proof consistency SIZE1 [SIZE2]\n");
		return 2;
	}
	if (rc != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static int export(const struct kura_config *cfg)
{
	char dir[4200];
	struct kura_error err = { 0 };
	audit_dir(cfg, dir, sizeof(dir));
	if (kura_audit_export(dir, stdout, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return 1;
	}
	return 0;
}

/* "2026-11-01", "2026-11-01T10:00:00Z" or with milliseconds. */
static bool parse_when(const char *what, const char *s, int64_t *ms)
{
	char buf[40];
	int64_t secs;
	size_t n = strlen(s);
	if (n == 10) {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		s = buf;
		n = strlen(buf);
	}
	if (kura_time_parse_iso8601(s, n, &secs) != KURA_OK) {
		fprintf(stderr,
			"kura: %s: '%s' is not a date (YYYY-MM-DD) or an ISO 8601 "
			"UTC time (YYYY-MM-DDTHH:MM:SSZ)\n",
			what, s);
		return false;
	}
	int64_t frac = 0;
	if (n > 20 && s[19] == '.') {
		int digits = 0;
		for (size_t i = 20;
		     i < n && s[i] >= '0' && s[i] <= '9' && digits < 3;
		     i++, digits++)
			frac = frac * 10 + (s[i] - '0');
		while (digits++ < 3)
			frac *= 10;
	}
	*ms = secs * 1000 + frac;
	return true;
}

static int search(const struct kura_config *cfg, const struct cli *c)
{
	char dir[4200];
	struct kura_audit_query q = { .bucket = c->bucket,
				      .key = c->key,
				      .op = c->op,
				      .request_id = c->request_id };
	audit_dir(cfg, dir, sizeof(dir));
	if (c->nwords != 2) {
		fprintf(stderr,
			"usage: kura audit search [--from T] [--to T] [--tenant NAME|ID] "
			"[--bucket B] [--key K] [--op OP] [--request-id ID] [--limit N]\n");
		return 2;
	}
	if ((c->from && !parse_when("--from", c->from, &q.from_ms)) ||
	    (c->to && !parse_when("--to", c->to, &q.to_ms)) ||
	    (c->limit && !parse_num("--limit", c->limit, &q.limit)))
		return 2;
	if (c->key)
		q.key_len = strlen(c->key);
	if (c->tenant) {
		uint64_t id;
		if (kura_parse_u64(c->tenant, strlen(c->tenant), UINT64_MAX,
				   &id) == KURA_OK) {
			q.tenant_id = id;
		} else {
			struct kura_service *svc = cli_open_service(cfg);
			bool ok = svc && cli_tenant(svc, c, &q.tenant_id);
			kura_service_close(svc);
			if (!ok)
				return 1;
		}
	}
	struct kura_error err = { 0 };
	uint64_t n = 0;
	if (kura_audit_search(dir, &q, stdout, &n, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return 1;
	}
	fprintf(stderr, "%llu matching records%s\n", (unsigned long long)n,
		q.limit && n == q.limit ?
			" (limit reached: the newest are shown)" :
			"");
	return 0;
}

int cli_audit(const struct kura_config *cfg, const struct cli *c)
{
	const char *sub = c->nwords >= 2 ? c->words[1] : "";
	if (strcmp(sub, "verify") == 0 && c->nwords == 2)
		return verify(cfg, c);
	if (strcmp(sub, "proof") == 0)
		return proof(cfg, c);
	if (strcmp(sub, "export") == 0 && c->nwords == 2)
		return export(cfg);
	if (strcmp(sub, "search") == 0)
		return search(cfg, c);
	fprintf(stderr,
		"usage: kura audit verify [--published DIR] [--public-key PEM]\n"
		"       kura audit proof [inclusion] --seq N [--size N]\n"
		"       kura audit proof consistency SIZE1 [SIZE2]\n"
		"       kura audit export\n"
		"       kura audit search [--from T] [--to T] [--tenant NAME|ID] [--bucket B]\n"
		"                         [--key K] [--op OP] [--request-id ID] [--limit N]\n");
	return 2;
}

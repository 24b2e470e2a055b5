/*
 * cmd_cert.c — `kura cert verify FILE [--public-key PEM]` and
 * `kura cert public-key`.
 *
 * Trust: a certificate carries its signer's public key, so a forger could
 * sign with a key of their own.  verify therefore checks the signer against
 * a pinned key: --public-key PEM when given, else the signer of the data
 * directory named by --data-dir/--config when one exists there, and only
 * failing both reports the signer's fingerprint for the auditor to compare
 * (the signature itself is always checked).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kura/cert.h"
#include "kura/kms.h"
#include "cli.h"
#include "kura/banned.h"

static bool read_pem_pubkey(const char *path, uint8_t der[KURA_PUBKEY_MAX],
			    size_t *len)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *pk = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	int n = pk ? i2d_PUBKEY(pk, NULL) : -1;
	if (n <= 0 || n > KURA_PUBKEY_MAX) {
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

/* The signer of the configured data directory, if there is one. */
static bool data_dir_signer(const struct kura_config *cfg, const struct cli *c,
			    uint8_t der[KURA_PUBKEY_MAX], size_t *len)
{
	struct stat st;
	char db[4200];
	if (c->data_dir == NULL && c->config == NULL)
		return false;
	snprintf(db, sizeof(db), "%s/meta.db", kura_config_get(cfg, "server", "data_dir"));
	if (stat(db, &st) != 0)
		return false;
	struct kura_service *svc = cli_open_service(cfg);
	struct kura_error err = { 0 };
	bool ok = svc && kura_kms_signer_public_key(svc->kms, svc->system_key, der, len,
						    &err) == KURA_OK;
	if (svc && !ok)
		fprintf(stderr, "kura: signer of this data dir: %s\n", err.msg);
	kura_service_close(svc);
	return ok;
}

static int verify(const struct kura_config *cfg, const struct cli *c, const char *path)
{
	uint8_t trusted[KURA_PUBKEY_MAX];
	size_t tlen = 0;
	const char *anchor = NULL;
	if (c->public_key) {
		if (!read_pem_pubkey(c->public_key, trusted, &tlen))
			return 2;
		anchor = c->public_key;
	} else if (data_dir_signer(cfg, c, trusted, &tlen)) {
		anchor = "this data directory's signer";
	}
	struct kura_cert_summary s;
	struct kura_error err = { 0 };
	enum kura_err rc = kura_cert_verify_file(path, anchor ? trusted : NULL, tlen, &s, &err);
	if (rc != KURA_OK) {
		printf("INVALID: %s\n", err.msg);
		return 1;
	}
	printf("valid deletion certificate for bucket '%s': %llu objects, %llu keys "
	       "destroyed, %llu replicas removed\n", s.bucket,
	       (unsigned long long)s.objects, (unsigned long long)s.keys_destroyed,
	       (unsigned long long)s.replicas);
	printf("signed %s by key sha256:%s", s.algorithm, s.signer_sha256);
	if (anchor)
		printf(" — matches %s\n", anchor);
	else
		printf(" — NOT pinned: compare this fingerprint with the signer's "
		       "(kura cert public-key), or pass --public-key\n");
	return 0;
}

static int public_key(const struct kura_config *cfg)
{
	uint8_t der[KURA_PUBKEY_MAX];
	size_t len = 0;
	struct kura_error err = { 0 };
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	int code = 1;
	if (kura_kms_signer_public_key(svc->kms, svc->system_key, der, &len, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
	} else {
		const unsigned char *p = der;
		EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
		code = pk && PEM_write_PUBKEY(stdout, pk) == 1 ? 0 : 1;
		EVP_PKEY_free(pk);
	}
	kura_service_close(svc);
	return code;
}

int cli_cert(const struct kura_config *cfg, const struct cli *c)
{
	if (c->nwords == 3 && strcmp(c->words[1], "verify") == 0)
		return verify(cfg, c, c->words[2]);
	if (c->nwords == 2 && strcmp(c->words[1], "public-key") == 0)
		return public_key(cfg);
	fprintf(stderr, "usage: kura cert verify FILE [--public-key PEM] | "
		"kura cert public-key\n");
	return 2;
}

/*
 * main.c — the `kura` command: options (anywhere on the line), then a
 * subcommand, dispatched to the cmd_*.c files.  Command-line values
 * override the configuration file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/config.h"
#include "kura/daemon.h"
#include "kura/secret.h"
#include "cli.h"
#include "kura/banned.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kura [--config FILE] [--data-dir DIR] COMMAND [OPTIONS]\n"
		"\n"
		"server\n"
		"  server [--listen ADDR:PORT]   run the S3 server (default ./var, 127.0.0.1:9000)\n"
		"tenants (they work while a server runs; every change is audited)\n"
		"  tenant add NAME               create a tenant; print its credentials once\n"
		"  tenant list                   tenants, states, buckets, access keys\n"
		"  tenant suspend NAME | tenant resume NAME\n"
		"                                refuse (AccessDenied) or allow its requests\n"
		"  tenant delete NAME [--shred-buckets] --yes\n"
		"                                destroy its keys and credentials; refused while\n"
		"                                it owns buckets unless --shred-buckets shreds them\n"
		"  tenant key list NAME          its access keys (active or revoked)\n"
		"  tenant key create NAME        a new access key; the secret is printed once\n"
		"  tenant key rotate NAME [ID]   a new key replaces ID (or the only active one)\n"
		"  tenant key revoke NAME ID     refuse ID from now on, for good\n"
		"keys (default tenant: root; --tenant NAME for another)\n"
		"  key list                      keys, versions and states\n"
		"  key create NAME               a new key (its KEK in the key provider)\n"
		"  key import NAME --from FILE   bring your own key: 32 raw bytes or 64 hex digits\n"
		"  key rotate NAME               new KEK version; data keys re-wrapped in the background\n"
		"  key disable NAME | key enable NAME\n"
		"  key destroy NAME --yes        destroy every version: data under it is gone\n"
		"buckets\n"
		"  bucket shred BUCKET --yes     destroy the bucket's key and data; write a deletion\n"
		"                                certificate (its path is printed)\n"
		"location and health (docs/PLACEMENT.md; --json for a JSON document)\n"
		"  object locate BUCKET KEY [--version V] [--json]\n"
		"                                every replica of the object's blobs: backend, site,\n"
		"                                region, jurisdiction, state, times, history\n"
		"                                (V: a version id, or null)\n"
		"  bucket locate BUCKET [--json] the bucket's replicas per backend and jurisdiction\n"
		"  scrub [BUCKET] [--json]       re-read and authenticate every replica now, repair\n"
		"                                bad ones from good ones; exit 1 if some cannot be\n"
		"  status [--json]               backends: reachable, latency, queue, replication lag\n"
		"certificates\n"
		"  cert verify FILE [--public-key PEM]\n"
		"                                check a deletion certificate (against the pinned\n"
		"                                signer, or this data dir's signer)\n"
		"  cert public-key               print the signer's public key (PEM) to pin\n"
		"audit log (DATA_DIR/audit; docs/AUDIT.md)\n"
		"  audit verify [--published DIR] [--public-key PEM] [--against-meta]\n"
		"                                check every record and signed checkpoint; exit 1\n"
		"                                naming the first bad position; --against-meta:\n"
		"                                also that the metadata holds each key's last\n"
		"                                recorded version (finds rollbacks)\n"
		"  audit proof --seq N [--size N] | audit proof consistency SIZE1 [SIZE2]\n"
		"                                inclusion / consistency proof (JSON)\n"
		"  audit export                  records, then checkpoints, as JSON lines\n"
		"  audit search [--from T] [--to T] [--tenant T] [--bucket B] [--key K] [--op OP]\n"
		"               [--request-id ID] [--limit N]\n"
		"                                matching records, checked against the log\n"
		"checks\n"
		"  check                         report configuration problems (exit 1 on errors)\n"
		"other\n"
		"  config-keys                   every configuration key (Markdown)\n"
		"  version | --version\n");
}

/* Split argv into options (anywhere) and positional words. */
static int parse_args(int argc, char **argv, struct cli *c)
{
	static const struct {
		const char *name;
		size_t offset;
	} valued[] = {
		{ "--config", offsetof(struct cli, config) },
		{ "--data-dir", offsetof(struct cli, data_dir) },
		{ "--listen", offsetof(struct cli, listen) },
		{ "--tenant", offsetof(struct cli, tenant) },
		{ "--from", offsetof(struct cli, from) },
		{ "--public-key", offsetof(struct cli, public_key) },
		{ "--seq", offsetof(struct cli, seq) },
		{ "--size", offsetof(struct cli, size) },
		{ "--to", offsetof(struct cli, to) },
		{ "--bucket", offsetof(struct cli, bucket) },
		{ "--key", offsetof(struct cli, key) },
		{ "--op", offsetof(struct cli, op) },
		{ "--request-id", offsetof(struct cli, request_id) },
		{ "--published", offsetof(struct cli, published) },
		{ "--limit", offsetof(struct cli, limit) },
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool matched = false;
		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]);
		     k++) {
			if (strcmp(a, valued[k].name) != 0)
				continue;
			if (i + 1 >= argc) {
				fprintf(stderr,
					"kura: option '%s' needs a value\n", a);
				return -1;
			}
			*(const char **)((char *)c + valued[k].offset) =
				argv[++i];
			matched = true;
		}
		if (matched)
			continue;
		if (strcmp(a, "--yes") == 0) {
			c->yes = true;
		} else if (strcmp(a, "--against-meta") == 0) {
			c->against_meta = true;
		} else if (strcmp(a, "--shred-buckets") == 0) {
			c->shred_buckets = true;
		} else if (strcmp(a, "--json") == 0) {
			c->json = true;
		} else if (strcmp(a, "--version") == 0 && c->nwords > 0 &&
			   strcmp(c->words[0], "object") == 0) {
			/* `object locate ... --version V`: a version id */
			if (i + 1 >= argc) {
				fprintf(stderr,
					"kura: option '%s' needs a value\n", a);
				return -1;
			}
			c->object_version = argv[++i];
		} else if (strcmp(a, "--version") == 0) {
			printf("kura %s\n", KURA_VERSION);
			exit(0);
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "kura: unknown option '%s'\n", a);
			return -1;
		} else if (c->nwords == CLI_MAX_WORDS) {
			fprintf(stderr, "kura: too many arguments\n");
			return -1;
		} else {
			c->words[c->nwords++] = a;
		}
	}
	return 0;
}

static struct kura_config *load_config(const struct cli *c)
{
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	if (kura_config_new(&cfg, &err) != KURA_OK ||
	    (c->config && kura_config_load(cfg, c->config, &err) != KURA_OK) ||
	    (c->data_dir && kura_config_set(cfg, "server", "data_dir",
					    c->data_dir, &err) != KURA_OK) ||
	    (c->listen && kura_config_set(cfg, "server", "listen", c->listen,
					  &err) != KURA_OK)) {
		fprintf(stderr, "kura: %s\n", err.msg);
		kura_config_free(cfg);
		return NULL;
	}
	return cfg;
}

static int run(int argc, char **argv)
{
	struct cli c = { 0 };
	if (parse_args(argc, argv, &c) != 0 || c.nwords == 0) {
		usage(stderr);
		return 2;
	}
	const char *cmd = c.words[0];
	if (strcmp(cmd, "version") == 0) {
		printf("kura %s\n", KURA_VERSION);
		return 0;
	}
	if (strcmp(cmd, "config-keys") == 0) {
		kura_config_write_doc(stdout);
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	struct kura_config *cfg = load_config(&c);
	if (cfg == NULL)
		return 2;
	int code = 2;
	if (strcmp(cmd, "server") == 0 && c.nwords == 1)
		code = kura_daemon_run(cfg);
	else if (strcmp(cmd, "tenant") == 0)
		code = cli_tenant_cmd(cfg, &c);
	else if (strcmp(cmd, "key") == 0)
		code = cli_key(cfg, &c);
	else if (strcmp(cmd, "bucket") == 0)
		code = cli_bucket(cfg, &c);
	else if (strcmp(cmd, "object") == 0)
		code = cli_object(cfg, &c);
	else if (strcmp(cmd, "scrub") == 0)
		code = cli_scrub(cfg, &c);
	else if (strcmp(cmd, "status") == 0)
		code = cli_status(cfg, &c);
	else if (strcmp(cmd, "cert") == 0)
		code = cli_cert(cfg, &c);
	else if (strcmp(cmd, "check") == 0)
		code = cli_check(cfg, &c);
	else if (strcmp(cmd, "audit") == 0)
		code = cli_audit(cfg, &c);
	else {
		fprintf(stderr, "kura: unknown command '%s'\n", cmd);
		usage(stderr);
	}
	kura_config_free(cfg);
	return code;
}

int main(int argc, char **argv)
{
	struct kura_error err = { 0 };
	/* Before anything else, and before any thread: credentials in the
	 * environment move to locked memory and leave the process's
	 * environment, so /proc/PID/environ and children never show them. */
	if (kura_env_capture(&err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		return 2;
	}
	int code = run(argc, argv);
	kura_env_release();
	return code;
}

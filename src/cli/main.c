/*
 * main.c — the `kura` command: global options, then a subcommand.
 *
 *   kura [--config FILE] server [--data-dir DIR] [--listen ADDR:PORT]
 *   kura [--config FILE] tenant add NAME [--data-dir DIR]
 *   kura config-keys        print every configuration key (Markdown)
 *   kura version
 *
 * Options may appear before or after the subcommand; command-line values
 * override the configuration file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/auth.h"
#include "kura/config.h"
#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/secret.h"
#include "kura/service.h"
#include "kura/banned.h"

#define MAX_ARGS 16

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kura [--config FILE] COMMAND [OPTIONS]\n"
		"\n"
		"commands:\n"
		"  server [--data-dir DIR] [--listen ADDR:PORT]\n"
		"                       run the S3 server (default ./var, 127.0.0.1:9000)\n"
		"  tenant add NAME [--data-dir DIR]\n"
		"                       create a tenant and print its credentials once\n"
		"  config-keys          list every configuration key\n"
		"  version              print the version\n");
}

struct cli {
	const char *config;
	const char *data_dir;
	const char *listen;
	const char *words[MAX_ARGS];	/* positional arguments */
	int nwords;
};

/* Split argv into options (anywhere) and positional words. */
static int parse_args(int argc, char **argv, struct cli *c)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (strcmp(a, "--config") == 0)
			slot = &c->config;
		else if (strcmp(a, "--data-dir") == 0)
			slot = &c->data_dir;
		else if (strcmp(a, "--listen") == 0)
			slot = &c->listen;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "kura: unknown option '%s'\n", a);
			return -1;
		}
		if (slot != NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "kura: option '%s' needs a value\n", a);
				return -1;
			}
			*slot = argv[++i];
			continue;
		}
		if (c->nwords == MAX_ARGS) {
			fprintf(stderr, "kura: too many arguments\n");
			return -1;
		}
		c->words[c->nwords++] = a;
	}
	return 0;
}

static struct kura_config *load_config(const struct cli *c)
{
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	if (kura_config_new(&cfg, &err) != KURA_OK ||
	    (c->config && kura_config_load(cfg, c->config, &err) != KURA_OK) ||
	    (c->data_dir && kura_config_set(cfg, "server", "data_dir", c->data_dir, &err) != KURA_OK) ||
	    (c->listen && kura_config_set(cfg, "server", "listen", c->listen, &err) != KURA_OK)) {
		fprintf(stderr, "kura: %s\n", err.msg);
		kura_config_free(cfg);
		return NULL;
	}
	return cfg;
}

static int cmd_tenant_add(const struct kura_config *cfg, const char *name)
{
	struct kura_error err = { 0 };
	struct kura_service *svc = NULL;
	struct kura_tenant t;
	char id[KURA_ACCESS_KEY_LEN + 1], secret[KURA_SECRET_KEY_LEN + 1];
	int code = 1;
	kura_log_threshold = KURA_LOG_WARN;
	if (kura_secret_harden_process(&err) != KURA_OK ||
	    kura_service_open(cfg, true, &svc, &err) != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		goto out;
	}
	enum kura_err rc = kura_auth_create_tenant(svc->meta, svc->system_key, name, &t,
						   id, secret, &err);
	if (rc == KURA_EEXIST) {
		fprintf(stderr, "kura: tenant '%s' already exists\n", name);
		goto out;
	}
	if (rc != KURA_OK) {
		fprintf(stderr, "kura: %s\n", err.msg);
		goto out;
	}
	printf("# tenant '%s' created; the secret is shown only this once\n"
	       "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", name, id, secret);
	kura_wipe(secret, sizeof(secret));
	code = 0;
out:
	kura_service_close(svc);
	return code;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	if (parse_args(argc, argv, &c) != 0) {
		usage(stderr);
		return 2;
	}
	if (c.nwords == 0) {
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
	if (strcmp(cmd, "server") == 0 && c.nwords == 1) {
		code = kura_daemon_run(cfg);
	} else if (strcmp(cmd, "tenant") == 0 && c.nwords == 3 &&
		   strcmp(c.words[1], "add") == 0) {
		code = cmd_tenant_add(cfg, c.words[2]);
	} else {
		fprintf(stderr, "kura: unknown command\n");
		usage(stderr);
	}
	kura_config_free(cfg);
	return code;
}

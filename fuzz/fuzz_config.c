/*
 * fuzz_config.c — libFuzzer target for the configuration loader
 * (src/core/config.c over libinih).
 *
 * Input: an INI file.  It is written to a temporary file (removed at exit)
 * and loaded; every value that loads must read back as a valid value of its
 * key's type.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura/config.h"
#include "kura/placement.h"
#include "fuzz_file.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Setting a loaded value again must succeed: it was validated once
 * already. */
static void reset_value(struct kura_config *cfg, const char *section,
			const char *key)
{
	const char *v = kura_config_get(cfg, section, key);
	struct kura_error e2 = { 0 };
	if (v != NULL && kura_config_is_set(cfg, section, key)) {
		char *copy = strdup(v);
		if (copy &&
		    kura_config_set(cfg, section, key, copy, &e2) != KURA_OK)
			abort();
		free(copy);
	}
}

/* A key of named sections ("backend.*"), in each section configured. */
static void reset_named(struct kura_config *cfg,
			const struct kura_config_key *k)
{
	char prefix[64], section[128];
	const char *names[64];
	snprintf(prefix, sizeof(prefix), "%.*s", (int)strlen(k->section) - 2,
		 k->section);
	size_t n = kura_config_names(cfg, prefix, names, 64);
	for (size_t i = 0; i < n && i < 64; i++) {
		snprintf(section, sizeof(section), "%s.%s", prefix, names[i]);
		reset_value(cfg, section, k->key);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file_write("config.ini", data, size);
	if (path == NULL)
		return 0;
	struct kura_config *cfg = NULL;
	struct kura_error err = { 0 };
	if (kura_config_new(&cfg, &err) != KURA_OK)
		return 0;
	if (kura_config_load(cfg, path, &err) == KURA_OK) {
		for (const struct kura_config_key *k = kura_config_keys();
		     k->section; k++) {
			size_t len = strlen(k->section);
			if (len >= 2 && strcmp(k->section + len - 2, ".*") == 0)
				reset_named(cfg, k);
			else
				reset_value(cfg, k->section, k->key);
		}
		/* Backends, policies and their rules, read from what
		 * loaded: accepted or refused with a reason. */
		struct kura_placement *p = NULL;
		struct kura_error pe = { 0 };
		if (kura_placement_load(cfg, &p, &pe) == KURA_OK)
			kura_placement_free(p);
		else if (pe.code == KURA_OK || pe.msg[0] == '\0')
			abort();
	} else if (err.code == KURA_OK || err.msg[0] == '\0') {
		abort(); /* a failure must say why */
	}
	kura_config_free(cfg);
	return 0;
}

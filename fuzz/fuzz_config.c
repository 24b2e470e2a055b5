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
#include "fuzz_file.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		for (const struct kura_config_key *k = kura_config_keys(); k->section; k++) {
			const char *v = kura_config_get(cfg, k->section, k->key);
			struct kura_error e2 = { 0 };
			/* Setting a loaded value again must succeed: it was
			 * validated once already. */
			if (v != NULL && kura_config_is_set(cfg, k->section, k->key)) {
				char *copy = strdup(v);
				if (copy && kura_config_set(cfg, k->section, k->key, copy, &e2) != KURA_OK)
					abort();
				free(copy);
			}
		}
	} else if (err.code == KURA_OK || err.msg[0] == '\0') {
		abort();	/* a failure must say why */
	}
	kura_config_free(cfg);
	return 0;
}

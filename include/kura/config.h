/*
 * config.h — kura's configuration: an INI file (libinih) plus command-line
 * overrides, checked against one table of known keys.
 *
 * Every key kura understands is declared once in src/core/config.c with its
 * section, type, default and a one-line description; that table drives
 * validation (unknown keys and malformed values are errors, never ignored),
 * defaults, and `kura config-keys`, from which docs/CONFIG.md is written.
 *
 * A loaded configuration is read-only and may be shared between threads.
 */
#ifndef KURA_CONFIG_H
#define KURA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kura/err.h"

enum kura_config_type {
	KURA_CFG_STRING,
	KURA_CFG_U64,  /* decimal */
	KURA_CFG_SIZE, /* decimal with optional K/M/G/T suffix (binary) */
	KURA_CFG_BOOL, /* true/false/yes/no/on/off/1/0 */
	KURA_CFG_ADDR, /* HOST:PORT, IPv4 or [IPv6] */
};

struct kura_config_key {
	const char *section;
	const char *key;
	enum kura_config_type type;
	const char *default_value; /* NULL: unset unless configured */
	const char *description;
};

struct kura_config;

/* A configuration holding only defaults. */
enum kura_err kura_config_new(struct kura_config **out, struct kura_error *err);
void kura_config_free(struct kura_config *cfg);

/* Read an INI file; each value is validated as if set by kura_config_set.
 * The error names the file, line, section and key. */
enum kura_err kura_config_load(struct kura_config *cfg, const char *path,
			       struct kura_error *err);

/* Set one value (command-line overrides).  KURA_ECONFIG for an unknown key
 * or a value that does not parse as the key's type. */
enum kura_err kura_config_set(struct kura_config *cfg, const char *section,
			      const char *key, const char *value,
			      struct kura_error *err);

/* The value as configured, else the default, else NULL.  Asking for a key
 * that is not in the table is a programming error (assert). */
const char *kura_config_get(const struct kura_config *cfg, const char *section,
			    const char *key);
uint64_t kura_config_get_u64(const struct kura_config *cfg, const char *section,
			     const char *key);
bool kura_config_get_bool(const struct kura_config *cfg, const char *section,
			  const char *key);
/* Was the key set explicitly (file or override)? */
bool kura_config_is_set(const struct kura_config *cfg, const char *section,
			const char *key);

/* Named sections: a table entry whose section is "PREFIX.*" is a key of
 * every [PREFIX.NAME] ([backend.tokyo], [placement.dr]); NAME is 1 to 32 of
 * a-z, 0-9 and '-'.  Look values up with section "PREFIX.NAME". */
#define KURA_CONFIG_NAMED_MAX 64
#define KURA_CONFIG_SECTION_MAX 48

/* The NAMEs of the configured [PREFIX.NAME] sections, in the order they
 * first appeared; stores up to max in names (pointers into cfg) and returns
 * how many there are. */
size_t kura_config_names(const struct kura_config *cfg, const char *prefix,
			 const char **names, size_t max);

/* Split "HOST:PORT" / "[V6]:PORT" into host (without brackets) and port. */
enum kura_err kura_config_split_addr(const char *addr, char *host,
				     size_t host_cap, uint16_t *port,
				     struct kura_error *err);

/*
 * Named sections: a key declared for section "backend.*" is set and read
 * as [backend.NAME] (NAME: 1..32 of a-z 0-9 -), each NAME with its own
 * values.  kura_config_names lists the NAMEs of the sections "PREFIX.NAME"
 * the configuration set, in the order it first set them (file order):
 * the first max go to names (valid as long as cfg), the return value is
 * how many there are.
 */
size_t kura_config_names(const struct kura_config *cfg, const char *prefix,
			 const char **names, size_t max);

/* The table of known keys, terminated by an entry with section == NULL. */
const struct kura_config_key *kura_config_keys(void);

/* Write the table as Markdown (docs/CONFIG.md is generated from this). */
void kura_config_write_doc(FILE *out);

#endif

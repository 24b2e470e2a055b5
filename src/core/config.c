/*
 * config.c — the table of every configuration key, INI loading (libinih),
 * validation and lookup.
 *
 * Invariant: every value held has been validated against its key's type.
 * Values are looked up by (section, key) with a linear scan of a small
 * table; lookups happen at start-up, not per request.
 *
 * Named sections: a table entry whose section ends in ".*" ("backend.*")
 * stands for every section "backend.NAME" (NAME: 1..32 of a-z 0-9 -); each
 * such section seen keeps its own values, in the order the file names
 * them (kura_config_names), and falls back to the entry's default.
 */
#include <assert.h>
#include <stdbool.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "kura/config.h"
#include "kura/parse.h"
#include "kura/banned.h"

static const struct kura_config_key keys[] = {
	{ "server", "listen", KURA_CFG_ADDR, "127.0.0.1:9000",
	  "address and port of the S3 listener; plain HTTP is refused on a "
	  "non-loopback address unless tls_cert and tls_key are set" },
	{ "server", "data_dir", KURA_CFG_STRING, "./var",
	  "directory for metadata, keystore, blobs and credentials" },
	{ "server", "region", KURA_CFG_STRING, "us-east-1",
	  "region name clients must sign for (SigV4 credential scope)" },
	{ "server", "virtual_host_domains", KURA_CFG_STRING, "localhost",
	  "comma-separated domains for virtual-host-style addressing: "
	  "a request to BUCKET.DOMAIN addresses BUCKET" },
	{ "server", "tls_cert", KURA_CFG_STRING, NULL,
	  "PEM certificate chain for TLS on the S3 listener" },
	{ "server", "tls_key", KURA_CFG_STRING, NULL,
	  "PEM private key for tls_cert" },
	{ "server", "allow_ssec_over_http", KURA_CFG_BOOL, "false",
	  "accept SSE-C customer keys over plain HTTP (AWS refuses them, and so "
	  "does kura by default); only ever effective on a loopback listener, "
	  "the only one kura serves without TLS: for tests and local tools" },
	{ "server", "max_connections", KURA_CFG_U64, "512",
	  "maximum simultaneous client connections" },
	{ "server", "connection_timeout", KURA_CFG_U64, "60",
	  "seconds a connection may stay idle; a request head must arrive within "
	  "it and a body at 1 KiB/s or more over each such window (slow clients "
	  "are cut off)" },
	{ "server", "log_level", KURA_CFG_STRING, "info",
	  "debug, info, warn or error" },
	{ "server", "log_file", KURA_CFG_STRING, NULL,
	  "append log lines to this file instead of standard error" },
	{ "limits", "max_object_size", KURA_CFG_SIZE, "5G",
	  "largest single PUT body (EntityTooLarge above)" },
	{ "limits", "max_header_bytes", KURA_CFG_SIZE, "16K",
	  "largest total size of request headers" },
	{ "limits", "max_url_bytes", KURA_CFG_SIZE, "8K",
	  "longest request target (path and query)" },
	{ "limits", "max_xml_body", KURA_CFG_SIZE, "1M",
	  "largest XML request body" },
	{ "limits", "max_list_response", KURA_CFG_SIZE, "16M",
	  "largest XML document of one listing page (ListObjects, "
	  "ListObjectsV2, ListMultipartUploads); a page that would exceed it "
	  "is answered with InternalError, never cut short" },
	{ "limits", "clock_skew", KURA_CFG_U64, "900",
	  "seconds a signed request's time may differ from the server's "
	  "(RequestTimeTooSkewed beyond)" },
	{ "storage", "backend", KURA_CFG_STRING, "fs",
	  "data backend: fs (local filesystem)" },
	{ "storage", "path", KURA_CFG_STRING, NULL,
	  "fs backend root directory (default DATA_DIR/blobs)" },
	{ "storage", "segment_size", KURA_CFG_SIZE, "256K",
	  "plaintext bytes per sealed segment for new objects, a power of "
	  "two" },
	{ "storage", "background_interval", KURA_CFG_U64, "30",
	  "seconds between runs of background work (garbage collection of "
	  "removed blobs, the abandoned-upload sweeper)" },
	{ "storage", "abandoned_upload_age", KURA_CFG_U64, "604800",
	  "seconds after which an incomplete multipart upload is aborted and "
	  "its parts deleted (0: never)" },
	{ "lifecycle", "interval", KURA_CFG_U64, "3600",
	  "seconds between runs of the lifecycle job (bucket lifecycle rules: "
	  "expirations, noncurrent versions, incomplete uploads)" },
	{ "lifecycle", "day_seconds", KURA_CFG_U64, "86400",
	  "seconds in a lifecycle rule's day; for tests only (a shorter day "
	  "makes rules act sooner, and x-amz-expiration report dates on its "
	  "boundaries)" },
	{ "maintenance", "window", KURA_CFG_STRING, NULL,
	  "HH:MM-HH:MM (UTC, may wrap midnight): the lifecycle job acts only "
	  "inside this window; unset: at any time" },
	{ "meta", "driver", KURA_CFG_STRING, "sqlite",
	  "metadata store: sqlite" },
	{ "meta", "path", KURA_CFG_STRING, NULL,
	  "SQLite database file (default DATA_DIR/meta.db)" },
	{ "keys", "provider", KURA_CFG_STRING, "local",
	  "key provider: local (keystore file sealed by a master key)" },
	{ "keys", "master_key_file", KURA_CFG_STRING, NULL,
	  "local provider: 32-byte master key file, mode 0600 (default "
	  "DATA_DIR/keys/master.key; keep it on other media than the data)" },
	{ "keys", "keystore_file", KURA_CFG_STRING, NULL,
	  "local provider: sealed keystore file (default DATA_DIR/keys/keystore)" },
	{ "keys", "bucket_key_ttl", KURA_CFG_U64, "300",
	  "seconds an unwrapped bucket key stays cached in locked memory" },
	{ "keys", "kek_scope", KURA_CFG_STRING, "bucket",
	  "bucket: every bucket gets its own key (KEK); tenant: a tenant's "
	  "buckets share one key" },
	{ "keys", "rotation_grace", KURA_CFG_U64, "3600",
	  "seconds a replaced bucket key is kept after a rotation before it, and "
	  "then its KEK version, may be destroyed (uploads begun before the "
	  "rotation may still complete within it)" },
	{ "keys", "module", KURA_CFG_STRING, NULL,
	  "pkcs11 provider: path of the PKCS#11 module (e.g. "
	  "/usr/lib/softhsm/libsofthsm2.so)" },
	{ "keys", "token", KURA_CFG_STRING, NULL,
	  "pkcs11 provider: label of the token to log into" },
	{ "keys", "pin_file", KURA_CFG_STRING, NULL,
	  "pkcs11 provider: file holding the user PIN (mode 0600); when unset the "
	  "PIN is read from the environment variable KURA_PKCS11_PIN" },
	{ "keys", "server", KURA_CFG_ADDR, NULL,
	  "kmip provider: HOST:PORT of the KMIP server (TLS 1.2+)" },
	{ "keys", "ca_file", KURA_CFG_STRING, NULL,
	  "kmip provider: PEM CA certificate(s) that sign the KMIP server's "
	  "certificate" },
	{ "keys", "cert_file", KURA_CFG_STRING, NULL,
	  "kmip provider: PEM client certificate presented to the KMIP server" },
	{ "keys", "key_file", KURA_CFG_STRING, NULL,
	  "kmip provider: PEM private key of cert_file (mode 0600)" },
	{ "keys", "server_name", KURA_CFG_STRING, NULL,
	  "kmip provider: name to verify in the server certificate (default: the "
	  "host part of server)" },
	{ "keys", "timeout", KURA_CFG_U64, "10",
	  "kmip provider: seconds to wait for the KMIP server before failing" },
	{ "keys", "kmip_allow_get", KURA_CFG_BOOL, "false",
	  "kmip provider: when the server cannot encrypt, allow fetching the KEK "
	  "into locked memory for at most bucket_key_ttl seconds (weaker: the KEK "
	  "then exists on this host)" },
	{ "backend.*", "type", KURA_CFG_STRING, NULL,
	  "data backend NAME: fs (local directory) or s3 (a remote S3 "
	  "service)" },
	{ "backend.*", "path", KURA_CFG_STRING, NULL,
	  "fs: root directory of the backend's blobs" },
	{ "backend.*", "endpoint", KURA_CFG_STRING, NULL,
	  "s3: http(s)://HOST[:PORT] of the remote service; plain http only "
	  "for 127.0.0.1, ::1 or localhost" },
	{ "backend.*", "bucket", KURA_CFG_STRING, NULL,
	  "s3: bucket on the remote (must exist)" },
	{ "backend.*", "prefix", KURA_CFG_STRING, "",
	  "s3: prefix of every object name on the remote (the rest is the "
	  "blob id in hex)" },
	{ "backend.*", "access_key_id", KURA_CFG_STRING, NULL,
	  "s3: access key id kura signs with" },
	{ "backend.*", "secret_key_file", KURA_CFG_STRING, NULL,
	  "s3: file holding the secret access key (mode 0600 or stricter, "
	  "owned by kura's user)" },
	{ "backend.*", "ca_file", KURA_CFG_STRING, NULL,
	  "s3: PEM CA bundle that signs the remote's certificate (default: "
	  "the system's)" },
	{ "backend.*", "signing_region", KURA_CFG_STRING, "us-east-1",
	  "s3: region of the SigV4 credential scope" },
	{ "backend.*", "part_size", KURA_CFG_SIZE, "16M",
	  "s3: multipart part size; a blob larger than one part is uploaded "
	  "in parts" },
	{ "backend.*", "timeout", KURA_CFG_U64, "30",
	  "s3: seconds one request to the remote may take" },
	{ "backend.*", "retries", KURA_CFG_U64, "4",
	  "s3: retries of a request that failed on the connection or with a "
	  "5xx, with exponential back-off" },
	{ "backend.*", "site", KURA_CFG_STRING, NULL,
	  "label: the site (data centre) of the backend" },
	{ "backend.*", "region", KURA_CFG_STRING, NULL,
	  "label: the region of the backend" },
	{ "backend.*", "jurisdiction", KURA_CFG_STRING, NULL,
	  "label: ISO 3166-1 alpha-2 country whose law governs the backend" },
	{ "backend.*", "dedicated_to", KURA_CFG_STRING, NULL,
	  "the only tenant whose data the backend holds" },
	{ "audit", "enabled", KURA_CFG_BOOL, "true",
	  "record every operation in the tamper-evident audit log (DATA_DIR/audit)" },
	{ "audit", "checkpoint_interval", KURA_CFG_U64, "60",
	  "seconds between signed checkpoints of the audit log (also written at "
	  "every segment rollover and at shutdown)" },
	{ "audit", "publish_dir", KURA_CFG_STRING, NULL,
	  "a second directory (other media, another machine's mount) that gets a "
	  "copy of every checkpoint" },
	{ "audit", "segment_max", KURA_CFG_SIZE, "64M",
	  "audit log segments roll over beyond this size" },
	{ "audit", "segment_max_age", KURA_CFG_U64, "86400",
	  "audit log segments roll over after this many seconds" },
	{ NULL, NULL, KURA_CFG_STRING, NULL, NULL },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]) - 1)

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)
#define TIB (1024ull * GIB)
#define YEAR_S 31536000ull

/* The values a numeric key may take: beyond these a value is nonsense (a
 * zero timeout), overflows where it is scaled (seconds to milliseconds), or
 * could not be served (header limits that libmicrohttpd must buffer per
 * connection).  Checked when a value is set, so a bad one stops the server
 * before it creates anything; `kura config-keys` prints them. */
static const struct {
	const char *section, *key;
	uint64_t min, max;
} bounds[] = {
	{ "server", "max_connections", 1, 100000 },
	{ "server", "connection_timeout", 1, 86400 },
	{ "limits", "max_object_size", 1, 5 * TIB },
	{ "limits", "max_header_bytes", KIB, MIB },
	{ "limits", "max_url_bytes", KIB, MIB },
	{ "limits", "max_xml_body", KIB, 64 * MIB },
	{ "limits", "max_list_response", KIB, 64 * MIB },
	{ "limits", "clock_skew", 1, 86400 },
	{ "storage", "segment_size", 4 * KIB, 16 * MIB },
	{ "storage", "background_interval", 1, 3600 },
	{ "lifecycle", "interval", 1, 86400 },
	{ "lifecycle", "day_seconds", 1, 86400 },
	{ "storage", "abandoned_upload_age", 0, 100 * YEAR_S },
	{ "keys", "bucket_key_ttl", 0, 86400 },
	{ "keys", "rotation_grace", 0, 10 * YEAR_S },
	{ "keys", "timeout", 1, 3600 },
	{ "audit", "checkpoint_interval", 1, 86400 },
	{ "audit", "segment_max", 64 * KIB, 16 * GIB },
	{ "audit", "segment_max_age", 1, 10 * YEAR_S },
	{ "backend.*", "part_size", 5 * MIB, 5 * GIB },
	{ "backend.*", "timeout", 1, 3600 },
	{ "backend.*", "retries", 0, 20 },
};

static bool bounds_of(const struct kura_config_key *k, uint64_t *min,
		      uint64_t *max)
{
	for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++)
		if (strcmp(bounds[i].section, k->section) == 0 &&
		    strcmp(bounds[i].key, k->key) == 0) {
			*min = bounds[i].min;
			*max = bounds[i].max;
			return true;
		}
	return false;
}

/* A size as written in configuration: the largest exact suffix. */
static void size_text(uint64_t v, char *out, size_t cap)
{
	static const struct {
		uint64_t unit;
		char suffix;
	} units[] = {
		{ TIB, 'T' },
		{ GIB, 'G' },
		{ MIB, 'M' },
		{ KIB, 'K' },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (v >= units[i].unit && v % units[i].unit == 0) {
			snprintf(out, cap, "%llu%c",
				 (unsigned long long)(v / units[i].unit),
				 units[i].suffix);
			return;
		}
	snprintf(out, cap, "%llu", (unsigned long long)v);
}

static void bound_text(const struct kura_config_key *k, uint64_t v, char *out,
		       size_t cap)
{
	if (k->type == KURA_CFG_SIZE)
		size_text(v, out, cap);
	else
		snprintf(out, cap, "%llu", (unsigned long long)v);
}

static enum kura_err check_bounds(const struct kura_config_key *k,
				  const char *v, uint64_t n,
				  struct kura_error *err)
{
	uint64_t min, max;
	char lo[32], hi[32];
	if (!bounds_of(k, &min, &max) || (n >= min && n <= max))
		return KURA_OK;
	bound_text(k, min, lo, sizeof(lo));
	bound_text(k, max, hi, sizeof(hi));
	return kura_fail(err, KURA_ECONFIG,
			 "[%s] %s: '%s' is out of range (%s to %s)", k->section,
			 k->key, v, lo, hi);
}

#define NAME_MAX_LEN 32

/* The values of one named section ("backend.virginia"). */
struct named {
	char *section;
	char *values[NKEYS]; /* NULL: not set; only wildcard keys are used */
};

struct kura_config {
	char *values[NKEYS]; /* NULL: not set */
	struct named *named; /* in the order first set */
	size_t nnamed;
};

const struct kura_config_key *kura_config_keys(void)
{
	return keys;
}

/* NAME of "PREFIX.NAME" when section is one (NAME well-formed), else
 * NULL. */
static const char *named_part(const char *prefix, size_t plen,
			      const char *section)
{
	if (strncmp(section, prefix, plen) != 0 || section[plen] != '.')
		return NULL;
	const char *name = section + plen + 1;
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
			return NULL;
	return name;
}

/* Does table section pattern (exact, or "backend.*") cover section? */
static bool section_matches(const char *pattern, const char *section)
{
	size_t n = strlen(pattern);
	if (n >= 2 && strcmp(pattern + n - 2, ".*") == 0)
		return named_part(pattern, n - 2, section) != NULL;
	return strcmp(pattern, section) == 0;
}

static bool is_wildcard(const struct kura_config_key *k)
{
	size_t n = strlen(k->section);
	return n >= 2 && strcmp(k->section + n - 2, ".*") == 0;
}

/* Does section look like "PREFIX.NAME" of named sections, with a NAME
 * they do not accept? */
static bool bad_name(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++) {
		size_t n = strlen(keys[i].section);
		if (n >= 2 && strcmp(keys[i].section + n - 2, ".*") == 0 &&
		    strncmp(section, keys[i].section, n - 1) == 0)
			return named_part(keys[i].section, n - 2, section) ==
			       NULL;
	}
	return false;
}

static int find(const char *section, const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (section_matches(keys[i].section, section) &&
		    strcmp(keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

static struct named *named_find(const struct kura_config *cfg,
				const char *section)
{
	for (size_t i = 0; i < cfg->nnamed; i++)
		if (strcmp(cfg->named[i].section, section) == 0)
			return &cfg->named[i];
	return NULL;
}

static struct named *named_add(struct kura_config *cfg, const char *section)
{
	struct named *grown =
		realloc(cfg->named, (cfg->nnamed + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	cfg->named = grown;
	struct named *n = &grown[cfg->nnamed];
	memset(n, 0, sizeof(*n));
	n->section = strdup(section);
	if (n->section == NULL)
		return NULL;
	cfg->nnamed++;
	return n;
}

/* Where the value of table entry i for section is kept. */
static char **value_slot(const struct kura_config *cfg, int i,
			 const char *section)
{
	if (!is_wildcard(&keys[i]))
		return (char **)&cfg->values[i];
	struct named *n = named_find(cfg, section);
	return n != NULL ? &n->values[i] : NULL;
}

size_t kura_config_names(const struct kura_config *cfg, const char *prefix,
			 const char **names, size_t max)
{
	size_t count = 0;
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < cfg->nnamed; i++) {
		const char *name =
			named_part(prefix, plen, cfg->named[i].section);
		if (name == NULL)
			continue;
		if (count < max)
			names[count] = name;
		count++;
	}
	return count;
}

enum kura_err kura_config_new(struct kura_config **out, struct kura_error *err)
{
	struct kura_config *cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return kura_fail(err, KURA_ENOMEM, "configuration");
	*out = cfg;
	return KURA_OK;
}

void kura_config_free(struct kura_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		free(cfg->values[i]);
	for (size_t j = 0; j < cfg->nnamed; j++) {
		for (size_t i = 0; i < NKEYS; i++)
			free(cfg->named[j].values[i]);
		free(cfg->named[j].section);
	}
	free(cfg->named);
	free(cfg);
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

enum kura_err kura_config_split_addr(const char *addr, char *host,
				     size_t host_cap, uint16_t *port,
				     struct kura_error *err)
{
	const char *colon;
	const char *h = addr;
	size_t hlen;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (close == NULL || close[1] != ':')
			return kura_fail(err, KURA_ECONFIG,
					 "bad address '%s' (want [IPV6]:PORT)",
					 addr);
		h = addr + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return kura_fail(err, KURA_ECONFIG,
					 "bad address '%s' (want HOST:PORT)",
					 addr);
		hlen = (size_t)(colon - addr);
	}
	uint64_t p;
	if (hlen == 0 || hlen >= host_cap ||
	    kura_parse_u64(colon + 1, strlen(colon + 1), 65535, &p) !=
		    KURA_OK ||
	    p == 0)
		return kura_fail(err, KURA_ECONFIG, "bad address '%s'", addr);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return KURA_OK;
}

static enum kura_err validate(const struct kura_config_key *k, const char *v,
			      struct kura_error *err)
{
	uint64_t n;
	bool b;
	char host[256];
	uint16_t port;
	switch (k->type) {
	case KURA_CFG_STRING:
		for (const char *p = v; *p; p++)
			if ((unsigned char)*p < 0x20)
				return kura_fail(
					err, KURA_ECONFIG,
					"[%s] %s: control character in value",
					k->section, k->key);
		return KURA_OK;
	case KURA_CFG_U64:
		if (kura_parse_u64(v, strlen(v), UINT64_MAX, &n) != KURA_OK)
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] %s: '%s' is not a number",
					 k->section, k->key, v);
		return check_bounds(k, v, n, err);
	case KURA_CFG_SIZE:
		if (kura_parse_size(v, &n) != KURA_OK)
			return kura_fail(
				err, KURA_ECONFIG,
				"[%s] %s: '%s' is not a size (e.g. 512K, 5G)",
				k->section, k->key, v);
		return check_bounds(k, v, n, err);
	case KURA_CFG_BOOL:
		if (!parse_bool(v, &b))
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] %s: '%s' is not true or false",
					 k->section, k->key, v);
		return KURA_OK;
	case KURA_CFG_ADDR: {
		struct kura_error e = { 0 };
		if (kura_config_split_addr(v, host, sizeof(host), &port, &e) !=
		    KURA_OK)
			return kura_fail(err, KURA_ECONFIG, "[%s] %s: %s",
					 k->section, k->key, e.msg);
		return KURA_OK;
	}
	}
	return KURA_OK;
}

enum kura_err kura_config_set(struct kura_config *cfg, const char *section,
			      const char *key, const char *value,
			      struct kura_error *err)
{
	int i = find(section, key);
	if (i < 0 && bad_name(section))
		return kura_fail(err, KURA_ECONFIG,
				 "section [%s]: the name after the '.' must be "
				 "1 to %d of a-z 0-9 -",
				 section, NAME_MAX_LEN);
	if (i < 0)
		return kura_fail(err, KURA_ECONFIG,
				 "unknown key '%s' in section [%s]", key,
				 section);
	enum kura_err rc = validate(&keys[i], value, err);
	if (rc != KURA_OK)
		return rc;
	if (is_wildcard(&keys[i]) && named_find(cfg, section) == NULL &&
	    named_add(cfg, section) == NULL)
		return kura_fail(err, KURA_ENOMEM, "configuration section");
	char *copy = strdup(value);
	if (copy == NULL)
		return kura_fail(err, KURA_ENOMEM, "configuration value");
	char **slot = value_slot(cfg, i, section);
	free(*slot);
	*slot = copy;
	return KURA_OK;
}

struct load_ctx {
	struct kura_config *cfg;
	struct kura_error *err;
	const char *path;
	FILE *f;
	int line;      /* lines read so far: the line inih is handling */
	int long_line; /* first line longer than inih's buffer, 0: none */
	int max_line;  /* inih's buffer size */
	/* The first value refused, and its line: inih goes on after an
	 * error and reports only the first bad line, which may be a syntax
	 * error before it. */
	struct kura_error value_err;
	int value_line;
};

/* inih's reader, counting lines so that a value error can name its line
 * (inih reports the line only through its return value).  inih reads a
 * line into a fixed buffer and would take the rest of a longer line for a
 * line of its own, cutting a value short: such a line is an error. */
static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	char *r = fgets(str, num, ctx->f);
	if (r == NULL)
		return NULL;
	ctx->line++;
	size_t n = strlen(r);
	if (n > 0 && r[n - 1] != '\n' && !feof(ctx->f)) {
		/* Stop here: inih sees the end of the file, not half a line. */
		ctx->long_line = ctx->line;
		ctx->max_line = num;
		return NULL;
	}
	return r;
}

static int on_ini_value(void *user, const char *section, const char *name,
			const char *value)
{
	struct load_ctx *ctx = user;
	struct kura_error e = { 0 };
	if (section[0] == '\0')
		kura_fail(&e, KURA_ECONFIG, "key '%s' is outside any [section]",
			  name);
	else if (kura_config_set(ctx->cfg, section, name, value, &e) == KURA_OK)
		return 1;
	if (ctx->value_line == 0) {
		ctx->value_line = ctx->line;
		kura_fail(&ctx->value_err, KURA_ECONFIG, "%s:%d: %s", ctx->path,
			  ctx->line, e.msg);
	}
	return 0;
}

/* Line n of the file (1-based), without its newline, control characters
 * shown as '?'; empty when it cannot be read. */
static void nth_line(const char *path, int n, char *out, size_t cap)
{
	char buf[4096];
	int at = 0;
	out[0] = '\0';
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		size_t len = strlen(buf);
		bool whole = len > 0 && buf[len - 1] == '\n';
		if (++at == n) {
			size_t i = 0;
			for (; i + 1 < cap && buf[i] != '\0' &&
			       buf[i] != '\n' && buf[i] != '\r';
			     i++)
				out[i] = (unsigned char)buf[i] < 0x20 ? '?' :
									buf[i];
			out[i] = '\0';
			break;
		}
		/* The rest of an over-long line is not a line of its own. */
		while (!whole && fgets(buf, sizeof(buf), f) != NULL) {
			len = strlen(buf);
			whole = len > 0 && buf[len - 1] == '\n';
		}
	}
	fclose(f);
}

/* What inih found wrong with a line, in words. */
static void describe_bad_line(const char *path, int n, struct kura_error *err)
{
	char text[128];
	nth_line(path, n, text, sizeof(text));
	const char *t = text;
	while (*t == ' ' || *t == '\t')
		t++;
	if (t[0] == '[' && strchr(t, ']') == NULL)
		kura_fail(err, KURA_ECONFIG,
			  "%s:%d: section header '%s' has no closing "
			  "']'",
			  path, n, t);
	else if (strchr(t, '=') == NULL && strchr(t, ':') == NULL)
		kura_fail(err, KURA_ECONFIG,
			  "%s:%d: '%s' is neither a [section] "
			  "header nor a 'key = value' line",
			  path, n, t);
	else
		kura_fail(err, KURA_ECONFIG,
			  "%s:%d: malformed line '%s' (want "
			  "'key = value')",
			  path, n, t);
}

enum kura_err kura_config_load(struct kura_config *cfg, const char *path,
			       struct kura_error *err)
{
	struct load_ctx ctx = { .cfg = cfg, .err = err, .path = path };
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return kura_fail_errno(err, KURA_ECONFIG, errno,
				       "cannot open configuration '%s'", path);
	ctx.f = f;
	int line = ini_parse_stream(read_line, &ctx, on_ini_value, &ctx);
	fclose(f);
	if (line == 0 && ctx.long_line != 0)
		return kura_fail(err, KURA_ECONFIG,
				 "%s:%d: line longer than %d bytes", path,
				 ctx.long_line, ctx.max_line - 2);
	if (line == 0)
		return KURA_OK;
	if (line == ctx.value_line)
		return kura_fail(err, KURA_ECONFIG, "%s", ctx.value_err.msg);
	describe_bad_line(path, line, err);
	return KURA_ECONFIG;
}

const char *kura_config_get(const struct kura_config *cfg, const char *section,
			    const char *key)
{
	int i = find(section, key);
	assert(i >= 0 && "configuration key missing from the table");
	if (i < 0)
		return NULL;
	char **slot = value_slot(cfg, i, section);
	return slot != NULL && *slot != NULL ? *slot : keys[i].default_value;
}

uint64_t kura_config_get_u64(const struct kura_config *cfg, const char *section,
			     const char *key)
{
	const char *v = kura_config_get(cfg, section, key);
	uint64_t n = 0;
	if (v == NULL)
		return 0;
	int i = find(section, key);
	if (keys[i].type == KURA_CFG_SIZE)
		(void)kura_parse_size(v, &n);
	else
		(void)kura_parse_u64(v, strlen(v), UINT64_MAX, &n);
	return n;
}

bool kura_config_get_bool(const struct kura_config *cfg, const char *section,
			  const char *key)
{
	const char *v = kura_config_get(cfg, section, key);
	bool b = false;
	if (v)
		(void)parse_bool(v, &b);
	return b;
}

bool kura_config_is_set(const struct kura_config *cfg, const char *section,
			const char *key)
{
	int i = find(section, key);
	if (i < 0)
		return false;
	char **slot = value_slot(cfg, i, section);
	return slot != NULL && *slot != NULL;
}

void kura_config_write_doc(FILE *out)
{
	static const char *const type_names[] = { "string", "integer", "size",
						  "boolean", "address" };
	const char *section = "";
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(section, keys[i].section) != 0) {
			section = keys[i].section;
			fprintf(out,
				"\n### [%s]\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
				section);
		}
		uint64_t min, max;
		char range[80] = "", lo[32], hi[32];
		if (bounds_of(&keys[i], &min, &max)) {
			bound_text(&keys[i], min, lo, sizeof(lo));
			bound_text(&keys[i], max, hi, sizeof(hi));
			snprintf(range, sizeof(range), "; %s to %s", lo, hi);
		}
		fprintf(out, "| `%s` | %s | %s | %s%s |\n", keys[i].key,
			type_names[keys[i].type],
			keys[i].default_value ? keys[i].default_value :
						"(unset)",
			keys[i].description, range);
	}
}

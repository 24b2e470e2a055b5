/*
 * config.c — the table of every configuration key, INI loading (libinih),
 * validation and lookup.
 *
 * Invariant: every value held has been validated against its key's type.
 * Values are looked up by (section, key) with a linear scan of a small
 * table; lookups happen at start-up, not per request.
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
	{ "server", "home_jurisdiction", KURA_CFG_STRING, "JP",
	  "ISO 3166-1 alpha-2 code of the owner's jurisdiction: a copy on a "
	  "backend labelled otherwise is foreign (docs/PLACEMENT.md)" },
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
	{ "storage", "placement", KURA_CFG_STRING, "default",
	  "placement policy of new buckets that name none; \"default\" is the "
	  "implicit policy holding one copy on the local backend" },
	{ "storage", "site", KURA_CFG_STRING, "local",
	  "site label of the implicit local backend (\"local\", [storage] "
	  "path)" },
	{ "storage", "region", KURA_CFG_STRING, NULL,
	  "region label of the implicit local backend" },
	{ "storage", "jurisdiction", KURA_CFG_STRING, NULL,
	  "jurisdiction label (ISO 3166-1 alpha-2) of the implicit local "
	  "backend (default: [server] home_jurisdiction)" },
	{ "storage", "replication_interval", KURA_CFG_U64, "5",
	  "seconds between passes over the queue of asynchronous replicas" },
	{ "scrub", "interval", KURA_CFG_U64, "86400",
	  "seconds between scheduled scrubs (every replica re-read and "
	  "authenticated, bad ones repaired; inside [maintenance] window when "
	  "set); 0: only on demand (kura scrub)" },
	{ "backend.*", "type", KURA_CFG_STRING, NULL,
	  "fs (a local directory) or s3 (a remote S3 service); required" },
	{ "backend.*", "path", KURA_CFG_STRING, NULL,
	  "fs: the directory holding the blobs" },
	{ "backend.*", "endpoint", KURA_CFG_STRING, NULL,
	  "s3: https://HOST[:PORT] (http only to a loopback host)" },
	{ "backend.*", "bucket", KURA_CFG_STRING, NULL,
	  "s3: the remote bucket, which must exist" },
	{ "backend.*", "prefix", KURA_CFG_STRING, "",
	  "s3: prefix of the remote object names (then 32 hex digits of the "
	  "blob id)" },
	{ "backend.*", "access_key_id", KURA_CFG_STRING, NULL,
	  "s3: access key id for the remote" },
	{ "backend.*", "secret_key_file", KURA_CFG_STRING, NULL,
	  "s3: file holding the secret access key (mode 0600 or stricter)" },
	{ "backend.*", "ca_file", KURA_CFG_STRING, NULL,
	  "s3: PEM CA bundle that signs the remote's certificate (default: "
	  "the system's)" },
	{ "backend.*", "signing_region", KURA_CFG_STRING, "us-east-1",
	  "s3: region in the SigV4 credential scope" },
	{ "backend.*", "part_size", KURA_CFG_SIZE, "16M",
	  "s3: multipart part size; a larger blob is uploaded in parts, and a "
	  "writer holds at most two parts in memory (one in flight while "
	  "the next fills)" },
	{ "backend.*", "timeout", KURA_CFG_U64, "30",
	  "s3: seconds one request to the remote may take" },
	{ "backend.*", "retries", KURA_CFG_U64, "4",
	  "s3: retries of a failed request, with exponential back-off" },
	{ "backend.*", "site", KURA_CFG_STRING, NULL,
	  "site label (data centre), shown by kura object locate" },
	{ "backend.*", "region", KURA_CFG_STRING, NULL, "region label" },
	{ "backend.*", "jurisdiction", KURA_CFG_STRING, NULL,
	  "ISO 3166-1 alpha-2 code of the country holding the media; "
	  "required" },
	{ "backend.*", "dedicated_to", KURA_CFG_STRING, NULL,
	  "a tenant name: the backend holds only that tenant's data (its "
	  "media can be destroyed without touching anyone else's)" },
	{ "placement.*", "sync", KURA_CFG_STRING, NULL,
	  "comma-separated backends that hold a copy before a write is "
	  "acknowledged; required" },
	{ "placement.*", "async", KURA_CFG_STRING, NULL,
	  "comma-separated backends that get a copy after the write, from a "
	  "durable queue" },
	{ "placement.*", "jurisdictions", KURA_CFG_STRING, NULL,
	  "comma-separated jurisdictions the policy may place copies in "
	  "(default: [server] home_jurisdiction only)" },
	{ "placement.*", "foreign", KURA_CFG_STRING, "allow",
	  "allow or forbid copies outside [server] home_jurisdiction (allowed "
	  "ones still need keys at home in PKCS#11 or KMIP)" },
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
	{ "keys", "jurisdiction", KURA_CFG_STRING, NULL,
	  "ISO 3166-1 alpha-2 code of where the key provider keeps the keys; "
	  "foreign copies need it to be [server] home_jurisdiction" },
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
	{ "storage", "replication_interval", 1, 3600 },
	{ "scrub", "interval", 0, 10 * YEAR_S },
	{ "backend.*", "part_size", 5 * MIB, 5 * GIB },
	{ "backend.*", "timeout", 1, 3600 },
	{ "backend.*", "retries", 0, 20 },
	{ "lifecycle", "interval", 1, 86400 },
	{ "lifecycle", "day_seconds", 1, 86400 },
	{ "storage", "abandoned_upload_age", 0, 100 * YEAR_S },
	{ "keys", "bucket_key_ttl", 0, 86400 },
	{ "keys", "rotation_grace", 0, 10 * YEAR_S },
	{ "keys", "timeout", 1, 3600 },
	{ "audit", "checkpoint_interval", 1, 86400 },
	{ "audit", "segment_max", 64 * KIB, 16 * GIB },
	{ "audit", "segment_max_age", 1, 10 * YEAR_S },
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

/* A named section ([backend.tokyo]): its own value of every key of the
 * table's "backend.*" section. */
struct named_section {
	char name[KURA_CONFIG_SECTION_MAX]; /* "backend.tokyo" */
	char *values[NKEYS];		    /* only "PREFIX.*" keys used */
};

struct kura_config {
	char *values[NKEYS]; /* NULL: not set */
	struct named_section named[KURA_CONFIG_NAMED_MAX];
	size_t nnamed;
};

const struct kura_config_key *kura_config_keys(void)
{
	return keys;
}

/* Does the table's section name match section?  "backend.*" matches
 * "backend.NAME" for any NAME (checked by named_ok when set). */
static bool section_matches(const char *table, const char *section)
{
	size_t n = strlen(table);
	if (n >= 2 && strcmp(table + n - 2, ".*") == 0)
		return strncmp(table, section, n - 1) == 0 &&
		       section[n - 1] != '\0';
	return strcmp(table, section) == 0;
}

static bool is_named(const struct kura_config_key *k)
{
	size_t n = strlen(k->section);
	return n >= 2 && strcmp(k->section + n - 2, ".*") == 0;
}

static int find(const char *section, const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (section_matches(keys[i].section, section) &&
		    strcmp(keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* NAME of [PREFIX.NAME]: 1 to 32 of a-z, 0-9 and '-'. */
static bool named_ok(const char *section)
{
	const char *dot = strchr(section, '.');
	if (dot == NULL)
		return true;
	size_t n = strlen(dot + 1);
	if (n == 0 || n > 32)
		return false;
	for (const char *p = dot + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-'))
			return false;
	return true;
}

static struct named_section *named_find(const struct kura_config *cfg,
					const char *section)
{
	for (size_t i = 0; i < cfg->nnamed; i++)
		if (strcmp(cfg->named[i].name, section) == 0)
			return (struct named_section *)&cfg->named[i];
	return NULL;
}

/* Where key i's value for section lives (NULL: a named section not
 * configured, or no room for another when create). */
static char **value_slot(struct kura_config *cfg, const char *section, size_t i,
			 bool create)
{
	if (!is_named(&keys[i]))
		return &cfg->values[i];
	struct named_section *ns = named_find(cfg, section);
	if (ns == NULL && create && cfg->nnamed < KURA_CONFIG_NAMED_MAX &&
	    strlen(section) < sizeof(ns->name)) {
		ns = &cfg->named[cfg->nnamed++];
		snprintf(ns->name, sizeof(ns->name), "%s", section);
	}
	return ns ? &ns->values[i] : NULL;
}

size_t kura_config_names(const struct kura_config *cfg, const char *prefix,
			 const char **names, size_t max)
{
	size_t n = 0, plen = strlen(prefix);
	for (size_t i = 0; i < cfg->nnamed; i++) {
		const char *s = cfg->named[i].name;
		if (strncmp(s, prefix, plen) != 0 || s[plen] != '.')
			continue;
		if (n < max)
			names[n] = s + plen + 1;
		n++;
	}
	return n;
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
	for (size_t n = 0; n < cfg->nnamed; n++)
		for (size_t i = 0; i < NKEYS; i++)
			free(cfg->named[n].values[i]);
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
	if (i < 0)
		return kura_fail(err, KURA_ECONFIG,
				 "unknown key '%s' in section [%s]", key,
				 section);
	if (!named_ok(section))
		return kura_fail(err, KURA_ECONFIG,
				 "section [%s]: a name is 1 to 32 of a-z, 0-9 "
				 "and '-'",
				 section);
	enum kura_err rc = validate(&keys[i], value, err);
	if (rc != KURA_OK)
		return rc;
	char **slot = value_slot(cfg, section, (size_t)i, true);
	if (slot == NULL)
		return kura_fail(err, KURA_ECONFIG,
				 "section [%s]: more than %d named sections",
				 section, KURA_CONFIG_NAMED_MAX);
	char *copy = strdup(value);
	if (copy == NULL)
		return kura_fail(err, KURA_ENOMEM, "configuration value");
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
	char **slot = value_slot((struct kura_config *)cfg, section, (size_t)i,
				 false);
	return slot && *slot ? *slot : keys[i].default_value;
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
	char **slot = value_slot((struct kura_config *)cfg, section, (size_t)i,
				 false);
	return slot && *slot != NULL;
}

void kura_config_write_doc(FILE *out)
{
	static const char *const type_names[] = { "string", "integer", "size",
						  "boolean", "address" };
	const char *section = "";
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(section, keys[i].section) != 0) {
			section = keys[i].section;
			size_t sl = strlen(section);
			fprintf(out,
				"\n### [%.*s%s]\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
				(int)(is_named(&keys[i]) ? sl - 1 : sl),
				section, is_named(&keys[i]) ? "NAME" : "");
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

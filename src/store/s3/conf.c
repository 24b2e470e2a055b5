/*
 * conf.c — a [backend.NAME] section of type s3, read and checked once at
 * open, so that every later request works from validated values.
 *
 * Rules enforced here, each a refusal at open (KURA_ECONFIG unless said):
 *   - endpoint is http(s)://HOST[:PORT] with nothing after it but an
 *     optional '/'; plain http only when HOST is 127.0.0.1, ::1 or
 *     localhost: anything else would send kura's ciphertext, and the
 *     signed requests that name it, over the network in the clear;
 *   - bucket, access_key_id and secret_key_file are set; the secret file is
 *     private to kura's user (KURA_EPERM otherwise, kura_secret_from_file)
 *     and its bytes live only in locked memory;
 *   - ca_file, when set, is readable (else the first request would fail
 *     with a less helpful TLS error).
 *
 * Threading: load and release run at open and close; the result is read
 * only afterwards.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kura/encode.h"
#include "kura/parse.h"
#include "s3_int.h"
#include "kura/banned.h"

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

bool rs3_conf_host_is_loopback(const char *host, size_t n)
{
	static const char *const loopback[] = { "127.0.0.1", "::1",
						"localhost" };
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		if (strlen(loopback[i]) == n &&
		    memcmp(loopback[i], host, n) == 0)
			return true;
	return false;
}

/* A DNS name or IPv4 address: letters, digits, '.', '-'. */
static bool name_host_valid(const char *p, size_t n)
{
	if (n == 0 || n >= S3_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(p[i]) && p[i] != '.' && p[i] != '-')
			return false;
	return true;
}

static bool v6_host_valid(const char *p, size_t n)
{
	if (n == 0 || n > 45)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.'))
			return false;
	}
	return true;
}

/* Split the authority "host[:port]" / "[v6][:port]": the host (without
 * brackets) is a[*hoff .. *hoff + *hlen). */
static bool authority_valid(const char *a, size_t n, size_t *hoff, size_t *hlen)
{
	const char *port = NULL;
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		if (close == NULL ||
		    !v6_host_valid(a + 1, (size_t)(close - a) - 1))
			return false;
		*hoff = 1;
		*hlen = (size_t)(close - a) - 1;
		size_t rest = n - (size_t)(close - a) - 1;
		if (rest > 0 && close[1] != ':')
			return false;
		if (rest > 0)
			port = close + 1;
	} else {
		const char *colon = memchr(a, ':', n);
		size_t h = colon ? (size_t)(colon - a) : n;
		if (!name_host_valid(a, h))
			return false;
		*hoff = 0;
		*hlen = h;
		port = colon;
	}
	if (port == NULL)
		return true;
	uint64_t v;
	size_t plen = n - (size_t)(port + 1 - a);
	return kura_parse_u64(port + 1, plen, 65535, &v) == KURA_OK && v > 0;
}

static enum kura_err endpoint_load(struct rs3_conf *c, const char *ep,
				   struct kura_error *err)
{
	const char *rest;
	if (strncmp(ep, "https://", 8) == 0) {
		c->https = true;
		rest = ep + 8;
	} else if (strncmp(ep, "http://", 7) == 0) {
		c->https = false;
		rest = ep + 7;
	} else {
		return kura_fail(
			err, KURA_ECONFIG,
			"[%s] endpoint '%s': want http(s)://HOST[:PORT]",
			c->section, ep);
	}
	size_t n = strlen(rest);
	if (n > 0 && rest[n - 1] == '/')
		n--;
	size_t hoff = 0, hlen = 0;
	if (n == 0 || n >= S3_HOST_MAX ||
	    !authority_valid(rest, n, &hoff, &hlen))
		return kura_fail(
			err, KURA_ECONFIG,
			"[%s] endpoint '%s': want http(s)://HOST[:PORT] "
			"with nothing after it",
			c->section, ep);
	if (!c->https && !rs3_conf_host_is_loopback(rest + hoff, hlen))
		return kura_fail(
			err, KURA_ECONFIG,
			"[%s] endpoint '%s': plain http is allowed only "
			"to 127.0.0.1, ::1 or localhost; use https",
			c->section, ep);
	memcpy(c->host, rest, n);
	c->host[n] = '\0';
	snprintf(c->base_url, sizeof(c->base_url), "%s://%s",
		 c->https ? "https" : "http", c->host);
	return KURA_OK;
}

/* S3 bucket names: 3..63 of a-z 0-9 . - */
static bool bucket_valid(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > S3_BUCKET_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(b[i] >= 'a' && b[i] <= 'z') &&
		    !(b[i] >= '0' && b[i] <= '9') && b[i] != '.' && b[i] != '-')
			return false;
	return true;
}

/* Access key ids, as SigV4 parses them: letters, digits, -_.~ */
static bool akid_valid(const char *a)
{
	size_t n = strlen(a);
	if (n == 0 || n > S3_AKID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(a[i]) && strchr("-_.~", a[i]) == NULL)
			return false;
	return true;
}

static bool region_valid(const char *r)
{
	size_t n = strlen(r);
	if (n == 0 || n > S3_REGION_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(r[i]) && r[i] != '-' && r[i] != '_')
			return false;
	return true;
}

/* A required string key, copied into out[cap]. */
static enum kura_err required(const struct kura_config *cfg,
			      const char *section, const char *key, char *out,
			      size_t cap, struct kura_error *err)
{
	const char *v = kura_config_get(cfg, section, key);
	if (v == NULL || v[0] == '\0')
		return kura_fail(err, KURA_ECONFIG,
				 "[%s] %s is required for type s3", section,
				 key);
	if (strlen(v) >= cap)
		return kura_fail(err, KURA_ECONFIG, "[%s] %s: too long",
				 section, key);
	memcpy(out, v, strlen(v) + 1);
	return KURA_OK;
}

/* A prefix is a path of plain segments: letters, digits and "-_.", each
 * segment neither empty nor "." or "..", so the path signed is the path
 * sent (curl would fold dot segments) and stays under the prefix. */
static bool prefix_valid(const char *p)
{
	size_t seg = 0, dots = 0;
	for (; *p; p++) {
		char ch = *p;
		if (ch == '/') {
			if (seg == 0 || seg == dots)
				return false;
			seg = dots = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		      ch == '.'))
			return false;
		seg++;
		dots += ch == '.';
	}
	return seg == 0 || seg != dots;
}

static enum kura_err names_load(struct rs3_conf *c,
				const struct kura_config *cfg,
				const char *section, struct kura_error *err)
{
	enum kura_err rc;
	rc = required(cfg, section, "bucket", c->bucket, sizeof(c->bucket),
		      err);
	if (rc == KURA_OK && !bucket_valid(c->bucket))
		rc = kura_fail(err, KURA_ECONFIG,
			       "[%s] bucket '%s': want 3..63 of a-z 0-9 . -",
			       section, c->bucket);
	if (rc == KURA_OK)
		rc = required(cfg, section, "access_key_id", c->access_key,
			      sizeof(c->access_key), err);
	if (rc == KURA_OK && !akid_valid(c->access_key))
		rc = kura_fail(err, KURA_ECONFIG,
			       "[%s] access_key_id: want letters, digits, -_.~",
			       section);
	if (rc == KURA_OK)
		rc = required(cfg, section, "signing_region", c->region,
			      sizeof(c->region), err);
	if (rc == KURA_OK && !region_valid(c->region))
		rc = kura_fail(err, KURA_ECONFIG,
			       "[%s] signing_region '%s': want letters, "
			       "digits, - and _",
			       section, c->region);
	const char *prefix = kura_config_get(cfg, section, "prefix");
	if (rc == KURA_OK && prefix != NULL &&
	    strlen(prefix) >= sizeof(c->prefix))
		rc = kura_fail(err, KURA_ECONFIG, "[%s] prefix: too long",
			       section);
	if (rc == KURA_OK && prefix != NULL && !prefix_valid(prefix))
		rc = kura_fail(err, KURA_ECONFIG,
			       "[%s] prefix '%s': want segments of letters, "
			       "digits and -_. separated by '/', none empty, "
			       "'.' or '..'",
			       section, prefix);
	if (rc == KURA_OK && prefix != NULL)
		memcpy(c->prefix, prefix, strlen(prefix) + 1);
	return rc;
}

static enum kura_err files_load(struct rs3_conf *c,
				const struct kura_config *cfg,
				const char *section, struct kura_error *err)
{
	char path[PATH_MAX], what[S3_SECTION_MAX + 32];
	enum kura_err rc = required(cfg, section, "secret_key_file", path,
				    sizeof(path), err);
	if (rc != KURA_OK)
		return rc;
	const char *ca = kura_config_get(cfg, section, "ca_file");
	if (ca != NULL && ca[0] != '\0') {
		if (strlen(ca) >= sizeof(c->ca_file))
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] ca_file: too long", section);
		if (access(ca, R_OK) != 0)
			return kura_fail_errno(err, KURA_ECONFIG, errno,
					       "[%s] ca_file '%s'", section,
					       ca);
		memcpy(c->ca_file, ca, strlen(ca) + 1);
	}
	snprintf(what, sizeof(what), "[%s] secret_key_file", section);
	return kura_secret_from_file(path, what, S3_SECRET_MAX, &c->secret,
				     err);
}

enum kura_err rs3_conf_load(struct rs3_conf *c, const struct kura_config *cfg,
			    const char *section, struct kura_error *err)
{
	memset(c, 0, sizeof(*c));
	if (strncmp(section, "backend.", 8) != 0 ||
	    strlen(section) >= sizeof(c->section))
		return kura_fail(err, KURA_ECONFIG,
				 "the s3 data store is configured in a "
				 "[backend.NAME] section, not [%s]",
				 section);
	memcpy(c->section, section, strlen(section) + 1);
	const char *ep = kura_config_get(cfg, section, "endpoint");
	if (ep == NULL || ep[0] == '\0')
		return kura_fail(err, KURA_ECONFIG,
				 "[%s] endpoint is required for type s3",
				 section);
	enum kura_err rc = endpoint_load(c, ep, err);
	if (rc == KURA_OK)
		rc = names_load(c, cfg, section, err);
	uint64_t part = kura_config_get_u64(cfg, section, "part_size");
	if (rc == KURA_OK && (part < S3_MIN_PART || part > SIZE_MAX / 2))
		rc = kura_fail(err, KURA_ECONFIG, "[%s] part_size: at least 5M",
			       section);
	c->part_size = (size_t)part;
	c->timeout_s = (long)kura_config_get_u64(cfg, section, "timeout");
	c->retries = (unsigned)kura_config_get_u64(cfg, section, "retries");
	if (rc == KURA_OK)
		rc = files_load(c, cfg, section, err);
	if (rc != KURA_OK)
		rs3_conf_release(c);
	return rc;
}

void rs3_conf_release(struct rs3_conf *c)
{
	kura_secret_free(c->secret);
	c->secret = NULL;
}

void rs3_conf_object_key(const struct rs3_conf *c,
			 const uint8_t id[KURA_BLOB_ID_LEN],
			 char out[S3_KEY_MAX])
{
	char hex[2 * KURA_BLOB_ID_LEN + 1];
	kura_hex_encode(id, KURA_BLOB_ID_LEN, hex);
	snprintf(out, S3_KEY_MAX, "%s%s", c->prefix, hex);
}

/*
 * cert.c — deletion certificates (see cert.h and docs/CERTIFICATE.md).
 *
 * The document is built with jansson; the canonical form signed is
 * json_dumps(doc without "signature", JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENSURE_ASCII), which is deterministic for the values kura writes
 * (strings and integers only — no floats).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kura/cert.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define CERT_MAX_BYTES (1024u << 20)

struct kura_cert {
	json_t *doc;
	json_t *objects;
	json_t *keys_destroyed;
	json_t *keys_retained;
	json_t *replicas;
	uint64_t total_bytes;
};

static json_t *iso(int64_t ms)
{
	char ts[KURA_TIME_ISO8601_LEN];
	kura_time_iso8601(ms, ts);
	return json_string(ts);
}

static json_t *u64(uint64_t v)
{
	/* JSON integers are signed 64-bit in jansson: sizes fit. */
	return json_integer((json_int_t)v);
}

static enum kura_err put(json_t *obj, const char *k, json_t *v,
			 struct kura_error *err)
{
	if (v == NULL || json_object_set_new(obj, k, v) != 0)
		return kura_fail(err, KURA_ENOMEM, "certificate field '%s'", k);
	return KURA_OK;
}

static enum kura_err append(json_t *arr, json_t *v, struct kura_error *err)
{
	if (v == NULL || json_array_append_new(arr, v) != 0)
		return kura_fail(err, KURA_ENOMEM, "certificate entry");
	return KURA_OK;
}

enum kura_err kura_cert_new(const struct kura_bucket *b,
			    const struct kura_tenant *t, int64_t requested_ms,
			    struct kura_cert **out, struct kura_error *err)
{
	struct kura_cert *c = calloc(1, sizeof(*c));
	char id[32];
	if (c == NULL)
		return kura_fail(err, KURA_ENOMEM, "certificate");
	c->doc = json_object();
	c->objects = json_array();
	c->keys_destroyed = json_array();
	c->keys_retained = json_array();
	c->replicas = json_array();
	json_t *bucket = json_object();
	snprintf(id, sizeof(id), "%llu", (unsigned long long)b->id);
	enum kura_err rc = KURA_OK;
	if (!c->doc || !c->objects || !c->keys_destroyed || !c->keys_retained ||
	    !c->replicas || !bucket)
		rc = kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = put(bucket, "name", json_string(b->name), err);
	if (rc == KURA_OK)
		rc = put(bucket, "id", json_string(id), err);
	if (rc == KURA_OK)
		rc = put(bucket, "region", json_string(b->region), err);
	if (rc == KURA_OK)
		rc = put(bucket, "created_at", iso(b->created_ms), err);
	if (rc == KURA_OK)
		rc = put(bucket, "tenant", json_string(t->name), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "format", json_string(KURA_CERT_FORMAT), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "bucket", json_incref(bucket), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "requested_at", iso(requested_ms), err);
	json_decref(bucket);
	if (rc != KURA_OK) {
		kura_cert_free(c);
		return rc;
	}
	*out = c;
	return KURA_OK;
}

void kura_cert_free(struct kura_cert *c)
{
	if (c == NULL)
		return;
	json_decref(c->doc);
	json_decref(c->objects);
	json_decref(c->keys_destroyed);
	json_decref(c->keys_retained);
	json_decref(c->replicas);
	free(c);
}

enum kura_err kura_cert_add_object(struct kura_cert *c, const char *key,
				   size_t key_len, uint64_t size,
				   const uint8_t version_uid[KURA_UID_LEN],
				   int64_t mtime_ms, bool verified,
				   struct kura_error *err)
{
	char version[2 * KURA_UID_LEN + 1];
	json_t *o = json_object();
	kura_hex_encode(version_uid, KURA_UID_LEN, version);
	/* Keys are valid UTF-8 (checked at PUT); json_stringn refuses
	 * anything else rather than writing an unverifiable document. */
	enum kura_err rc = o ? put(o, "key", json_stringn(key, key_len), err) :
			       kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = put(o, "size", u64(size), err);
	if (rc == KURA_OK)
		rc = put(o, "version", json_string(version), err);
	if (rc == KURA_OK)
		rc = put(o, "last_modified", iso(mtime_ms), err);
	if (rc == KURA_OK && !verified)
		rc = put(o, "integrity", json_string("failed"), err);
	if (rc == KURA_OK)
		rc = append(c->objects, json_incref(o), err);
	json_decref(o);
	if (rc == KURA_OK)
		c->total_bytes += size;
	return rc;
}

static const char *kind_name(enum kura_key_kind k)
{
	return k == KURA_KEY_BUCKET ? "bucket" :
	       k == KURA_KEY_TENANT ? "tenant" :
				      "named";
}

enum kura_err kura_cert_add_key_destroyed(struct kura_cert *c,
					  const struct kura_key *k,
					  const struct kura_kms_destroyed *d,
					  struct kura_error *err)
{
	json_t *o = json_object(), *vs = json_array();
	enum kura_err rc = (o && vs) ?
				   KURA_OK :
				   kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = put(o, "name", json_string(k->name), err);
	if (rc == KURA_OK)
		rc = put(o, "kind", json_string(kind_name(k->kind)), err);
	if (rc == KURA_OK)
		rc = put(o, "provider", json_string(k->provider), err);
	for (size_t i = 0; rc == KURA_OK && i < d->count; i++) {
		json_t *v = json_object();
		rc = v ? put(v, "version", u64(d->versions[i].version), err) :
			 kura_fail(err, KURA_ENOMEM, "certificate");
		if (rc == KURA_OK)
			rc = put(v, "kek_id",
				 json_string(d->versions[i].kek_id), err);
		if (rc == KURA_OK)
			rc = put(v, "destroyed_at",
				 iso(d->versions[i].destroyed_ms), err);
		if (rc == KURA_OK)
			rc = append(vs, json_incref(v), err);
		json_decref(v);
	}
	if (rc == KURA_OK)
		rc = put(o, "versions", json_incref(vs), err);
	if (rc == KURA_OK)
		rc = append(c->keys_destroyed, json_incref(o), err);
	json_decref(vs);
	json_decref(o);
	return rc;
}

enum kura_err kura_cert_add_key_retained(struct kura_cert *c,
					 const struct kura_key *k,
					 const char *reason,
					 struct kura_error *err)
{
	json_t *o = json_object();
	enum kura_err rc = o ? put(o, "name", json_string(k->name), err) :
			       kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = put(o, "kind", json_string(kind_name(k->kind)), err);
	if (rc == KURA_OK)
		rc = put(o, "reason", json_string(reason), err);
	if (rc == KURA_OK)
		rc = append(c->keys_retained, json_incref(o), err);
	json_decref(o);
	return rc;
}

enum kura_err kura_cert_add_replica(struct kura_cert *c,
				    const struct kura_cert_place *at,
				    const uint8_t blob_id[16], uint64_t bytes,
				    int64_t removed_ms, struct kura_error *err)
{
	char hex[33];
	kura_hex_encode(blob_id, 16, hex);
	json_t *o = json_object();
	enum kura_err rc = o ? put(o, "store", json_string(at->store), err) :
			       kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = put(o, "location", json_string(at->location), err);
	if (rc == KURA_OK)
		rc = put(o, "backend", json_string(at->backend), err);
	if (rc == KURA_OK)
		rc = put(o, "site", json_string(at->site), err);
	if (rc == KURA_OK)
		rc = put(o, "region", json_string(at->region), err);
	if (rc == KURA_OK)
		rc = put(o, "jurisdiction", json_string(at->jurisdiction), err);
	if (rc == KURA_OK)
		rc = put(o, "blob", json_string(hex), err);
	if (rc == KURA_OK)
		rc = put(o, "bytes", u64(bytes), err);
	if (rc == KURA_OK)
		rc = put(o, "removed_at", iso(removed_ms), err);
	if (rc == KURA_OK)
		rc = append(c->replicas, json_incref(o), err);
	json_decref(o);
	return rc;
}

/* SHA-256 of the canonical form of doc (which must have no signature). */
static enum kura_err canonical_digest(json_t *doc, uint8_t digest[32],
				      struct kura_error *err)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS |
					     JSON_ENSURE_ASCII);
	if (text == NULL)
		return kura_fail(err, KURA_ENOMEM, "certificate serialisation");
	unsigned int n = 0;
	int ok = EVP_Digest(text, strlen(text), digest, &n, EVP_sha256(), NULL);
	free(text);
	if (ok != 1 || n != 32)
		return kura_fail_openssl(err, KURA_ECRYPTO, "SHA-256");
	return KURA_OK;
}

static json_t *b64(const uint8_t *p, size_t n)
{
	struct kura_buf b;
	kura_buf_init(&b, 2 * n + 8);
	json_t *s = kura_base64_encode(p, n, &b) == KURA_OK ?
			    json_string(b.data) :
			    NULL;
	kura_buf_release(&b);
	return s;
}

enum kura_err kura_cert_sign_and_write(struct kura_cert *c,
				       struct kura_kms *kms,
				       const struct kura_secret *system_key,
				       int64_t completed_ms, const char *path,
				       struct kura_error *err)
{
	uint8_t digest[32], sig[KURA_SIGNATURE_MAX], pub[KURA_PUBKEY_MAX];
	size_t sig_len = 0, pub_len = 0;
	char alg[KURA_SIG_ALG_MAX], signer[KURA_KEK_ID_MAX];
	enum kura_err rc = put(c->doc, "completed_at", iso(completed_ms), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "objects", json_incref(c->objects), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "object_count",
			 u64(json_array_size(c->objects)), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "total_bytes", u64(c->total_bytes), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "keys_destroyed",
			 json_incref(c->keys_destroyed), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "keys_retained", json_incref(c->keys_retained),
			 err);
	if (rc == KURA_OK)
		rc = put(c->doc, "replicas_removed", json_incref(c->replicas),
			 err);
	if (rc == KURA_OK)
		rc = canonical_digest(c->doc, digest, err);
	if (rc == KURA_OK)
		rc = kura_kms_sign(kms, system_key, digest, sig, &sig_len, alg,
				   pub, &pub_len, signer, err);
	if (rc != KURA_OK)
		return rc;
	json_t *s = json_object();
	rc = s ? put(s, "algorithm", json_string(alg), err) :
		 kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = put(s, "signer", json_string(signer), err);
	if (rc == KURA_OK)
		rc = put(s, "public_key", b64(pub, pub_len), err);
	if (rc == KURA_OK)
		rc = put(s, "value", b64(sig, sig_len), err);
	if (rc == KURA_OK)
		rc = put(c->doc, "signature", json_incref(s), err);
	json_decref(s);
	if (rc != KURA_OK)
		return rc;
	char *text = json_dumps(c->doc, JSON_INDENT(1) | JSON_SORT_KEYS |
						JSON_ENSURE_ASCII);
	if (text == NULL)
		return kura_fail(err, KURA_ENOMEM, "certificate serialisation");
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps' NUL becomes the final newline */
	rc = kura_write_file_atomic(path, text, n + 1, 0600, err);
	free(text);
	return rc;
}

static enum kura_err b64_field(json_t *obj, const char *name, uint8_t *out,
			       size_t cap, size_t *len, struct kura_error *err)
{
	const char *v = json_string_value(json_object_get(obj, name));
	if (v == NULL ||
	    kura_base64_decode(v, strlen(v), out, cap, len) != KURA_OK)
		return kura_fail(err, KURA_EINVAL,
				 "signature.%s is missing or not base64", name);
	return KURA_OK;
}

static enum kura_err check_signature(const uint8_t *pub, size_t pub_len,
				     const char *alg, const uint8_t digest[32],
				     const uint8_t *sig, size_t sig_len,
				     struct kura_error *err)
{
	const unsigned char *p = pub;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)pub_len);
	if (pk == NULL)
		return kura_fail_openssl(err, KURA_EINVAL, "signer public key");
	int id = EVP_PKEY_get_base_id(pk);
	bool ec = strcmp(alg, "ECDSA-P256-SHA256") == 0;
	bool pss = strcmp(alg, "RSA-PSS-SHA256") == 0;
	enum kura_err rc = KURA_OK;
	if ((ec && (id != EVP_PKEY_EC || EVP_PKEY_get_bits(pk) != 256)) ||
	    (pss && id != EVP_PKEY_RSA && id != EVP_PKEY_RSA_PSS) ||
	    (!ec && !pss)) {
		EVP_PKEY_free(pk);
		return kura_fail(
			err, KURA_EINTEGRITY,
			"signature algorithm '%s' does not match the signer key",
			alg);
	}
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
	    (pss &&
	     (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	      EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) != 1)))
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "verify setup");
	else if (EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) != 1)
		rc = kura_fail_openssl(
			err, KURA_EINTEGRITY,
			"the signature does not match the document");
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

enum kura_err kura_cert_verify_file(const char *path, const uint8_t *trusted,
				    size_t trusted_len,
				    struct kura_cert_summary *summary,
				    struct kura_error *err)
{
	char *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	uint8_t pub[KURA_PUBKEY_MAX], sig[KURA_SIGNATURE_MAX], digest[32];
	size_t pub_len = 0, sig_len = 0;
	enum kura_err rc =
		kura_read_file(path, CERT_MAX_BYTES, &text, &len, err);
	if (rc != KURA_OK)
		return rc;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (doc == NULL || !json_is_object(doc))
		rc = kura_fail(err, KURA_EINVAL,
			       "'%s' is not a JSON object: %s", path,
			       doc ? "" : jerr.text);
	const char *fmt = json_string_value(json_object_get(doc, "format"));
	/* Version 1 differs only in naming objects by ETag: its signatures
	 * check the same way. */
	if (rc == KURA_OK &&
	    (fmt == NULL || (strcmp(fmt, KURA_CERT_FORMAT) != 0 &&
			     strcmp(fmt, KURA_CERT_FORMAT_V1) != 0)))
		rc = kura_fail(err, KURA_EINVAL, "'%s' is not a %s", path,
			       KURA_CERT_FORMAT);
	json_t *s = json_incref(json_object_get(doc, "signature"));
	const char *alg = json_string_value(json_object_get(s, "algorithm"));
	if (rc == KURA_OK && (s == NULL || alg == NULL))
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "the certificate is not signed");
	if (rc == KURA_OK)
		rc = b64_field(s, "public_key", pub, sizeof(pub), &pub_len,
			       err);
	if (rc == KURA_OK)
		rc = b64_field(s, "value", sig, sizeof(sig), &sig_len, err);
	if (rc == KURA_OK && trusted != NULL &&
	    (trusted_len != pub_len || memcmp(trusted, pub, pub_len) != 0))
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "signed by a key other than the trusted signer");
	if (rc == KURA_OK && json_object_del(doc, "signature") != 0)
		rc = kura_fail(err, KURA_ENOMEM, "certificate");
	if (rc == KURA_OK)
		rc = canonical_digest(doc, digest, err);
	if (rc == KURA_OK)
		rc = check_signature(pub, pub_len, alg, digest, sig, sig_len,
				     err);
	if (rc == KURA_OK && summary != NULL) {
		memset(summary, 0, sizeof(*summary));
		const char *bn = json_string_value(json_object_get(
			json_object_get(doc, "bucket"), "name"));
		snprintf(summary->bucket, sizeof(summary->bucket), "%s",
			 bn ? bn : "");
		summary->objects =
			json_array_size(json_object_get(doc, "objects"));
		summary->keys_destroyed =
			json_array_size(json_object_get(doc, "keys_destroyed"));
		summary->replicas = json_array_size(
			json_object_get(doc, "replicas_removed"));
		snprintf(summary->algorithm, sizeof(summary->algorithm), "%s",
			 alg);
		uint8_t fp[32];
		unsigned int n = 0;
		EVP_Digest(pub, pub_len, fp, &n, EVP_sha256(), NULL);
		kura_hex_encode(fp, 32, summary->signer_sha256);
	}
	json_decref(s);
	json_decref(doc);
	return rc;
}

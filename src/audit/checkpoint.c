/*
 * checkpoint.c — signed checkpoints (docs/AUDIT.md): one canonical JSON
 * line {"algorithm","public_key","root","signature","signer","time",
 * "tree_size"}, the signature over SHA-256 of the text
 * "kura-audit-checkpoint-v1\n<tree_size>\n<root hex>\n<time>\n".
 *
 * Parsing is strict: a line is accepted only when re-serialising what was
 * parsed gives back exactly its bytes, so there is one form per checkpoint.
 * Pure functions; thread-safe.
 */
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "audit_int.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define CP_FILE_MAX (1024u << 20)

void audit_cp_digest(uint64_t tree_size, const uint8_t root[AUDIT_HASH],
		     const char *time, uint8_t digest[32])
{
	char hex[2 * AUDIT_HASH + 1], text[256];
	kura_hex_encode(root, AUDIT_HASH, hex);
	int n = snprintf(text, sizeof(text), "%s\n%llu\n%s\n%s\n", AUDIT_CP_DOMAIN,
			 (unsigned long long)tree_size, hex, time);
	SHA256((const unsigned char *)text, (size_t)n, digest);
}

enum kura_err audit_cp_sign(kura_audit_sign_fn sign, void *ctx,
			    uint64_t tree_size, const uint8_t root[AUDIT_HASH],
			    int64_t time_ms, struct audit_checkpoint *cp,
			    struct kura_error *err)
{
	struct audit_checkpoint c;
	uint8_t digest[32];
	memset(&c, 0, sizeof(c));
	if (sign == NULL)
		return kura_fail(err, KURA_ESTATE, "audit log has no signer: "
				 "checkpoints cannot be written");
	c.tree_size = tree_size;
	memcpy(c.root, root, AUDIT_HASH);
	kura_time_iso8601(time_ms, c.time);
	audit_cp_digest(tree_size, root, c.time, digest);
	/* The buffers are at least KURA_SIGNATURE_MAX / KURA_PUBKEY_MAX;
	 * their capacities go in through the length pointers. */
	c.sig_len = sizeof(c.sig);
	c.pub_len = sizeof(c.pub);
	enum kura_err rc = sign(ctx, digest, c.sig, &c.sig_len, c.alg, c.pub,
				&c.pub_len, c.signer, err);
	if (rc != KURA_OK)
		return rc;
	c.alg[sizeof(c.alg) - 1] = '\0';
	c.signer[sizeof(c.signer) - 1] = '\0';
	if (c.sig_len == 0 || c.sig_len > sizeof(c.sig) || c.pub_len == 0 ||
	    c.pub_len > sizeof(c.pub))
		return kura_fail(err, KURA_EINTERNAL, "audit signer returned bad lengths");
	*cp = c;
	return KURA_OK;
}

static enum kura_err add_b64(struct kura_buf *out, const uint8_t *p, size_t n)
{
	struct kura_buf b;
	kura_buf_init(&b, 4 * AUDIT_SIG_MAX);
	enum kura_err rc = kura_base64_encode(p, n, &b);
	if (rc == KURA_OK)
		rc = audit_json_string(out, b.data, b.len);
	kura_buf_release(&b);
	return rc;
}

enum kura_err audit_cp_format(const struct audit_checkpoint *cp,
			      struct kura_buf *out, struct kura_error *err)
{
	char hex[2 * AUDIT_HASH + 1];
	kura_hex_encode(cp->root, AUDIT_HASH, hex);
	enum kura_err rc = kura_buf_addstr(out, "{\"algorithm\":");
	if (rc == KURA_OK)
		rc = audit_json_string(out, cp->alg, strlen(cp->alg));
	if (rc == KURA_OK)
		rc = kura_buf_addstr(out, ",\"public_key\":");
	if (rc == KURA_OK)
		rc = add_b64(out, cp->pub, cp->pub_len);
	if (rc == KURA_OK)
		rc = kura_buf_addf(out, ",\"root\":\"%s\",\"signature\":", hex);
	if (rc == KURA_OK)
		rc = add_b64(out, cp->sig, cp->sig_len);
	if (rc == KURA_OK)
		rc = kura_buf_addstr(out, ",\"signer\":");
	if (rc == KURA_OK)
		rc = audit_json_string(out, cp->signer, strlen(cp->signer));
	if (rc == KURA_OK)
		rc = kura_buf_addstr(out, ",\"time\":");
	if (rc == KURA_OK)
		rc = audit_json_string(out, cp->time, strlen(cp->time));
	if (rc == KURA_OK)
		rc = kura_buf_addf(out, ",\"tree_size\":%llu}\n",
				   (unsigned long long)cp->tree_size);
	if (rc != KURA_OK)
		return kura_fail(err, KURA_ENOMEM, "checkpoint line");
	return KURA_OK;
}

static bool get_str(json_t *doc, const char *name, char *out, size_t cap)
{
	json_t *v = json_object_get(doc, name);
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return false;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return true;
}

static bool get_b64(json_t *doc, const char *name, uint8_t *out, size_t cap,
		    size_t *len)
{
	json_t *v = json_object_get(doc, name);
	if (!json_is_string(v) || json_string_length(v) / 4 * 3 > cap)
		return false;
	return kura_base64_decode(json_string_value(v), json_string_length(v), out,
				  cap, len) == KURA_OK;
}

enum kura_err audit_cp_parse(const char *line, size_t n,
			     struct audit_checkpoint *out, struct kura_error *err)
{
	struct audit_checkpoint cp;
	json_error_t je;
	char root[2 * AUDIT_HASH + 8];
	memset(&cp, 0, sizeof(cp));
	json_t *doc = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
	json_t *size = doc ? json_object_get(doc, "tree_size") : NULL;
	bool ok = json_is_object(doc) && json_object_size(doc) == 7 &&
		  json_is_integer(size) && json_integer_value(size) >= 0 &&
		  get_str(doc, "algorithm", cp.alg, sizeof(cp.alg)) &&
		  get_str(doc, "signer", cp.signer, sizeof(cp.signer)) &&
		  get_str(doc, "time", cp.time, sizeof(cp.time)) &&
		  get_str(doc, "root", root, sizeof(root)) &&
		  kura_hex_decode(root, strlen(root), cp.root, AUDIT_HASH) == KURA_OK &&
		  get_b64(doc, "public_key", cp.pub, sizeof(cp.pub), &cp.pub_len) &&
		  get_b64(doc, "signature", cp.sig, sizeof(cp.sig), &cp.sig_len);
	if (ok)
		cp.tree_size = (uint64_t)json_integer_value(size);
	json_decref(doc);
	if (!ok)
		return kura_fail(err, KURA_EINTEGRITY, "not a checkpoint");
	/* One form only: what we would write must be exactly this line. */
	struct kura_buf again;
	kura_buf_init(&again, AUDIT_CP_LINE_MAX);
	enum kura_err rc = audit_cp_format(&cp, &again, err);
	if (rc == KURA_OK && (again.len != n + 1 || memcmp(again.data, line, n) != 0))
		rc = kura_fail(err, KURA_EINTEGRITY, "checkpoint not in canonical form");
	kura_buf_release(&again);
	if (rc == KURA_OK)
		*out = cp;
	return rc;
}

enum kura_err audit_cp_check_signature(const struct audit_checkpoint *cp,
				       struct kura_error *err)
{
	uint8_t digest[32];
	const unsigned char *p = cp->pub;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)cp->pub_len);
	EVP_PKEY_CTX *ctx = NULL;
	enum kura_err rc = KURA_EINTEGRITY;
	audit_cp_digest(cp->tree_size, cp->root, cp->time, digest);
	if (pk == NULL || p != cp->pub + cp->pub_len) {
		kura_fail(err, KURA_EINTEGRITY, "public key is not a DER SubjectPublicKeyInfo");
		goto out;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1) {
		kura_fail(err, KURA_EINTEGRITY, "cannot verify with this public key");
		goto out;
	}
	if (strcmp(cp->alg, "ECDSA-P256-SHA256") == 0) {
		char group[64] = "";
		size_t gl = 0;
		if (!EVP_PKEY_is_a(pk, "EC") ||
		    EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &gl) != 1 ||
		    strcmp(group, "prime256v1") != 0) {
			kura_fail(err, KURA_EINTEGRITY, "algorithm ECDSA-P256-SHA256 but the "
				  "key is not a P-256 key");
			goto out;
		}
	} else if (strcmp(cp->alg, "RSA-PSS-SHA256") == 0) {
		if (!EVP_PKEY_is_a(pk, "RSA") ||
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) != 1) {
			kura_fail(err, KURA_EINTEGRITY, "algorithm RSA-PSS-SHA256 but the "
				  "key is not an RSA key");
			goto out;
		}
	} else {
		kura_fail(err, KURA_EINTEGRITY, "unknown signature algorithm '%s'", cp->alg);
		goto out;
	}
	if (EVP_PKEY_verify(ctx, cp->sig, cp->sig_len, digest, sizeof(digest)) != 1) {
		kura_fail(err, KURA_EINTEGRITY, "signature does not verify");
		goto out;
	}
	rc = KURA_OK;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return rc;
}

enum kura_err audit_cp_load(const char *path, uint64_t limit,
			    struct audit_cp_list *out, struct kura_error *err)
{
	char *text = NULL;
	size_t len = 0;
	struct audit_cp_list l = { 0 };
	size_t cap = 0;
	struct kura_error e1 = { 0 };
	enum kura_err rc = kura_read_file(path, CP_FILE_MAX, &text, &len, &e1);
	if (rc == KURA_ENOENT) {
		memset(out, 0, sizeof(*out));
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return kura_fail(err, rc, "%s", e1.msg);
	if ((uint64_t)len > limit)
		len = (size_t)limit;
	size_t lineno = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		lineno++;
		if (nl == NULL) {
			l.torn_tail = true;
			break;
		}
		size_t n = (size_t)(nl - (text + i));
		if (l.n == cap) {
			size_t c2 = cap ? cap * 2 : 64;
			struct audit_checkpoint *v = realloc(l.v, c2 * sizeof(*v));
			if (v == NULL) {
				rc = kura_fail(err, KURA_ENOMEM, "checkpoints");
				break;
			}
			l.v = v;
			cap = c2;
		}
		struct kura_error e2 = { 0 };
		if (audit_cp_parse(text + i, n, &l.v[l.n], &e2) != KURA_OK) {
			rc = kura_fail(err, KURA_EINTEGRITY, "'%s' line %zu: %s", path,
				       lineno, e2.msg);
			break;
		}
		l.n++;
		i += n + 1;
	}
	free(text);
	if (rc != KURA_OK) {
		audit_cp_list_release(&l);
		return rc;
	}
	*out = l;
	return KURA_OK;
}

void audit_cp_list_release(struct audit_cp_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

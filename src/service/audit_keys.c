/*
 * audit_keys.c — a key provider that records every use of the provider
 * it wraps in the audit log (requirement B-6: who used which key, when).
 *
 * The decorator replaces the ops and priv of an opened struct kura_keys in
 * place, so every holder of the pointer (kms, keycache, credentials) goes
 * through it.  Each KEK operation is performed, then recorded with its
 * outcome; if the record cannot be written the operation is reported as
 * failed (fail closed: no unrecorded key use), and a KEK just created or
 * imported is destroyed again so that nothing unrecorded remains.
 *
 * Signing is passed through unrecorded: the audit log's own checkpoints
 * are signed through this provider, and recording a signature inside a
 * checkpoint would recurse.  The checkpoint itself names the signer.
 *
 * Thread-safe when the wrapped provider and the audit log are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/crypt.h"
#include "kura/keys.h"
#include "kura/registry.h"
#include "service_int.h"
#include "kura/banned.h"

static const uint8_t bucket_key_aad_tag[10] = "kura-bk1\0\0";

struct audited {
	struct kura_keys_ops ops; /* the inner ops with audited slots */
	struct kura_keys inner;	  /* the provider it wraps */
	struct kura_audit *audit;
};

/* What the AAD says about the wrapped key: a bucket key names its tenant
 * and bucket (kura_bucket_key_aad); anything else is kura's own. */
static void describe_aad(json_t *d, const uint8_t *aad, size_t aad_len)
{
	if (aad_len == KURA_BUCKET_KEY_AAD_LEN &&
	    memcmp(aad, bucket_key_aad_tag, sizeof(bucket_key_aad_tag)) == 0) {
		uint64_t tenant = 0, bucket = 0;
		for (size_t i = 0; i < 8; i++) {
			tenant = tenant << 8 | aad[10 + i];
			bucket = bucket << 8 | aad[18 + i];
		}
		json_object_set_new(d, "purpose", json_string("bucket-key"));
		json_object_set_new(d, "tenant_id",
				    json_integer((json_int_t)tenant));
		json_object_set_new(d, "bucket_id",
				    json_integer((json_int_t)bucket));
	} else {
		json_object_set_new(d, "purpose", json_string("kura"));
	}
}

static enum kura_err record(struct audited *a, const char *op,
			    const char *kek_id, const char *label,
			    json_t *extra, enum kura_err outcome,
			    struct kura_error *err)
{
	json_t *d = extra ? extra : json_object();
	char *text = NULL;
	enum kura_err rc;
	if (d == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "audit record");
		goto out;
	}
	json_object_set_new(d, "provider", json_string(a->inner.ops->name));
	if (kek_id != NULL && kek_id[0] != '\0')
		json_object_set_new(d, "kek_id", json_string(kek_id));
	if (label != NULL)
		json_object_set_new(d, "label", json_string(label));
	text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "audit record");
		goto out;
	}
	struct kura_audit_record r = {
		.type = "provider",
		.op = op,
		.error = outcome == KURA_OK ? NULL : kura_errname(outcome),
		.detail_json = text,
	};
	rc = kura_audit_append(a->audit, &r, NULL, err);
out:
	free(text);
	json_decref(d);
	return rc;
}

/* The outcome to return: the provider's, unless it succeeded and the
 * record of it could not be written. */
static enum kura_err settle(enum kura_err outcome, enum kura_err recorded,
			    struct kura_error *err,
			    const struct kura_error *rec_err)
{
	if (outcome != KURA_OK || recorded == KURA_OK)
		return outcome;
	return kura_fail(err, KURA_EIO,
			 "key use not performed: the audit log "
			 "cannot record it: %s",
			 rec_err->msg);
}

static void audited_close(void *priv)
{
	struct audited *a = priv;
	kura_registry_close(a->inner.ops->close, a->inner.priv);
}

static enum kura_err audited_kek_create(void *priv, const char *label,
					char id_out[KURA_KEK_ID_MAX],
					struct kura_error *err)
{
	struct audited *a = priv;
	char id[KURA_KEK_ID_MAX] = "";
	struct kura_error rec_err = { 0 };
	enum kura_err rc = kura_keys_kek_create(&a->inner, label, id, err);
	enum kura_err rec =
		record(a, "kek.create", id, label, NULL, rc, &rec_err);
	if (rc == KURA_OK && rec != KURA_OK)
		(void)kura_keys_kek_destroy(&a->inner, id, NULL);
	rc = settle(rc, rec, err, &rec_err);
	if (rc == KURA_OK)
		memcpy(id_out, id, KURA_KEK_ID_MAX);
	return rc;
}

static enum kura_err audited_kek_import(void *priv, const char *label,
					const struct kura_secret *key,
					char id_out[KURA_KEK_ID_MAX],
					struct kura_error *err)
{
	struct audited *a = priv;
	char id[KURA_KEK_ID_MAX] = "";
	struct kura_error rec_err = { 0 };
	enum kura_err rc = kura_keys_kek_import(&a->inner, label, key, id, err);
	enum kura_err rec =
		record(a, "kek.import", id, label, NULL, rc, &rec_err);
	if (rc == KURA_OK && rec != KURA_OK)
		(void)kura_keys_kek_destroy(&a->inner, id, NULL);
	rc = settle(rc, rec, err, &rec_err);
	if (rc == KURA_OK)
		memcpy(id_out, id, KURA_KEK_ID_MAX);
	return rc;
}

static enum kura_err audited_wrap(void *priv, const char *kek_id,
				  const struct kura_secret *plain,
				  const uint8_t *aad, size_t aad_len,
				  uint8_t out[KURA_WRAPPED_MAX],
				  size_t *out_len, struct kura_error *err)
{
	struct audited *a = priv;
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wlen = 0;
	struct kura_error rec_err = { 0 };
	enum kura_err rc = kura_keys_wrap(&a->inner, kek_id, plain, aad,
					  aad_len, w, &wlen, err);
	json_t *d = json_object();
	if (d != NULL)
		describe_aad(d, aad, aad_len);
	enum kura_err rec =
		record(a, "kek.wrap", kek_id, NULL, d, rc, &rec_err);
	rc = settle(rc, rec, err, &rec_err);
	if (rc == KURA_OK) {
		memcpy(out, w, wlen);
		*out_len = wlen;
	}
	return rc;
}

static enum kura_err audited_unwrap(void *priv, const char *kek_id,
				    const uint8_t *in, size_t in_len,
				    const uint8_t *aad, size_t aad_len,
				    struct kura_secret **out,
				    struct kura_error *err)
{
	struct audited *a = priv;
	struct kura_secret *k = NULL;
	struct kura_error rec_err = { 0 };
	enum kura_err rc = kura_keys_unwrap(&a->inner, kek_id, in, in_len, aad,
					    aad_len, &k, err);
	json_t *d = json_object();
	if (d != NULL)
		describe_aad(d, aad, aad_len);
	enum kura_err rec =
		record(a, "kek.unwrap", kek_id, NULL, d, rc, &rec_err);
	rc = settle(rc, rec, err, &rec_err);
	if (rc == KURA_OK)
		*out = k;
	else
		kura_secret_free(k);
	return rc;
}

/* Destruction is recorded before it happens: a destroyed KEK cannot be
 * brought back if the log then refused the record.  A failed destroy adds a
 * second record with the error. */
static enum kura_err audited_kek_destroy(void *priv, const char *kek_id,
					 struct kura_error *err)
{
	struct audited *a = priv;
	enum kura_err rc =
		record(a, "kek.destroy", kek_id, NULL, NULL, KURA_OK, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_keys_kek_destroy(&a->inner, kek_id, err);
	if (rc != KURA_OK)
		(void)record(a, "kek.destroy.failed", kek_id, NULL, NULL, rc,
			     NULL);
	return rc;
}

static enum kura_err passthrough_signer_create(void *priv, const char *label,
					       char id_out[KURA_KEK_ID_MAX],
					       struct kura_error *err)
{
	struct audited *a = priv;
	return kura_keys_signer_create(&a->inner, label, id_out, err);
}

static enum kura_err passthrough_sign(void *priv, const char *key_id,
				      const uint8_t digest[32],
				      uint8_t sig[KURA_SIGNATURE_MAX],
				      size_t *sig_len, struct kura_error *err)
{
	struct audited *a = priv;
	return kura_keys_sign(&a->inner, key_id, digest, sig, sig_len, err);
}

static enum kura_err passthrough_public_key(void *priv, const char *key_id,
					    uint8_t der[KURA_PUBKEY_MAX],
					    size_t *der_len,
					    struct kura_error *err)
{
	struct audited *a = priv;
	return kura_keys_public_key(&a->inner, key_id, der, der_len, err);
}

enum kura_err service_audit_keys(struct kura_keys *keys,
				 struct kura_audit *audit,
				 struct kura_error *err)
{
	struct audited *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return kura_fail(err, KURA_ENOMEM, "audited key provider");
	const struct kura_keys_ops *in = keys->ops;
	a->inner.ops = in;
	a->inner.priv = keys->priv;
	a->audit = audit;
	a->ops = *in;
	a->ops.priv_size = sizeof(*a);
	a->ops.open = NULL; /* already open */
	a->ops.close = audited_close;
	a->ops.kek_create = in->kek_create ? audited_kek_create : NULL;
	a->ops.kek_import = in->kek_import ? audited_kek_import : NULL;
	a->ops.wrap = in->wrap ? audited_wrap : NULL;
	a->ops.unwrap = in->unwrap ? audited_unwrap : NULL;
	a->ops.kek_destroy = in->kek_destroy ? audited_kek_destroy : NULL;
	a->ops.signer_create = in->signer_create ? passthrough_signer_create :
						   NULL;
	a->ops.sign = in->sign ? passthrough_sign : NULL;
	a->ops.public_key = in->public_key ? passthrough_public_key : NULL;
	keys->ops = &a->ops;
	keys->priv = a;
	return KURA_OK;
}

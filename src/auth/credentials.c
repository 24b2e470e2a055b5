/*
 * credentials.c — the system key, tenants and access keys (see auth.h).
 *
 * Settings used: "system_key" = kek_id NUL wrapped-key.  The system key is
 * wrapped with AAD "kura-system-key-v1"; an access key's secret is sealed
 * with AAD "kura-access-key-v1" NUL <access key id>, so a sealed secret
 * cannot be moved to another key id.
 */
#include <stdio.h>
#include <string.h>

#include "kura/auth.h"
#include "kura/box.h"
#include "kura/encode.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define SYSTEM_KEY_SETTING "system_key"
#define SYSTEM_KEY_AAD "kura-system-key-v1"
#define ACCESS_KEY_AAD "kura-access-key-v1"

static enum kura_err load_system_key(struct kura_meta *meta,
				     struct kura_keys *keys,
				     struct kura_secret **out,
				     struct kura_error *err)
{
	uint8_t val[KURA_KEK_ID_MAX + 1 + KURA_WRAPPED_MAX];
	size_t len;
	enum kura_err rc = kura_meta_setting_get(meta, SYSTEM_KEY_SETTING, val,
						 sizeof(val), &len, err);
	if (rc != KURA_OK)
		return rc;
	const uint8_t *nul = memchr(val, 0, len);
	if (nul == NULL || nul == val || (size_t)(nul - val) >= KURA_KEK_ID_MAX)
		return kura_fail(err, KURA_EINTEGRITY,
				 "system key setting is malformed");
	const char *kek_id = (const char *)val;
	const uint8_t *wrapped = nul + 1;
	size_t wlen = len - (size_t)(wrapped - val);
	return kura_keys_unwrap(keys, kek_id, wrapped, wlen,
				(const uint8_t *)SYSTEM_KEY_AAD,
				sizeof(SYSTEM_KEY_AAD) - 1, out, err);
}

static enum kura_err create_system_key(struct kura_meta *meta,
				       struct kura_keys *keys,
				       struct kura_error *err)
{
	char kek_id[KURA_KEK_ID_MAX];
	uint8_t val[KURA_KEK_ID_MAX + 1 + KURA_WRAPPED_MAX];
	size_t wlen;
	struct kura_secret *key = NULL;
	enum kura_err rc =
		kura_keys_kek_create(keys, "kura-system", kek_id, err);
	if (rc != KURA_OK)
		return rc;
	size_t idlen = strnlen(kek_id, sizeof(kek_id));
	rc = kura_secret_random(KURA_AES256_KEY_LEN, &key, err);
	if (rc != KURA_OK)
		goto out;
	memcpy(val, kek_id, idlen);
	val[idlen] = 0;
	rc = kura_keys_wrap(keys, kek_id, key, (const uint8_t *)SYSTEM_KEY_AAD,
			    sizeof(SYSTEM_KEY_AAD) - 1, val + idlen + 1, &wlen,
			    err);
	if (rc != KURA_OK)
		goto out;
	rc = kura_meta_setting_insert(meta, SYSTEM_KEY_SETTING, val,
				      idlen + 1 + wlen, err);
out:
	kura_secret_free(key);
	/* A lost race (KURA_EEXIST) or a failure leaves our KEK unused. */
	if (rc != KURA_OK)
		(void)kura_keys_kek_destroy(keys, kek_id, NULL);
	return rc;
}

enum kura_err kura_auth_system_key(struct kura_meta *meta,
				   struct kura_keys *keys, bool create,
				   struct kura_secret **out,
				   struct kura_error *err)
{
	struct kura_error e = { 0 };
	enum kura_err rc = load_system_key(meta, keys, out, &e);
	if (rc != KURA_ENOENT || !create) {
		if (rc != KURA_OK)
			kura_fail(err, rc, "system key: %s", e.msg);
		return rc;
	}
	kura_error_clear(&e);
	rc = create_system_key(meta, keys, &e);
	if (rc != KURA_OK && rc != KURA_EEXIST)
		return kura_fail(err, rc, "create system key: %s", e.msg);
	kura_error_clear(&e);
	rc = load_system_key(meta, keys, out, &e);
	if (rc != KURA_OK)
		kura_fail(err, rc, "system key: %s", e.msg);
	return rc;
}

bool kura_auth_tenant_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= KURA_TENANT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_')))
			return false;
	}
	return true;
}

bool kura_auth_access_key_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n < 16 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9')))
			return false;
	return true;
}

enum kura_err kura_auth_generate_key(char id[KURA_ACCESS_KEY_LEN + 1],
				     char secret[KURA_SECRET_KEY_LEN + 1],
				     struct kura_error *err)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t rnd[KURA_ACCESS_KEY_LEN + KURA_SECRET_KEY_LEN];
	enum kura_err rc = kura_random_bytes(rnd, sizeof(rnd), err);
	if (rc != KURA_OK)
		return rc;
	memcpy(id, "KURA", 4);
	for (size_t i = 4; i < KURA_ACCESS_KEY_LEN; i++)
		id[i] = b32[rnd[i] & 31];
	id[KURA_ACCESS_KEY_LEN] = '\0';
	for (size_t i = 0; i < KURA_SECRET_KEY_LEN; i++)
		secret[i] = b64[rnd[KURA_ACCESS_KEY_LEN + i] & 63];
	secret[KURA_SECRET_KEY_LEN] = '\0';
	kura_wipe(rnd, sizeof(rnd));
	return KURA_OK;
}

static size_t key_aad(const char *id, uint8_t *out, size_t cap)
{
	size_t a = sizeof(ACCESS_KEY_AAD); /* includes the NUL separator */
	size_t n = strnlen(id, KURA_ACCESS_KEY_ID_MAX);
	if (a + n > cap)
		return 0;
	memcpy(out, ACCESS_KEY_AAD, a);
	memcpy(out + a, id, n);
	return a + n;
}

/* An active access key record for tenant with secret sealed under the
 * system key, bound to its id. */
static enum kura_err seal_key(const struct kura_secret *system_key,
			      uint64_t tenant_id, const char *id,
			      const char *secret, struct kura_access_key *k,
			      struct kura_error *err)
{
	uint8_t aad[sizeof(ACCESS_KEY_AAD) + KURA_ACCESS_KEY_ID_MAX];
	size_t slen = strlen(secret);
	if (!kura_auth_access_key_id_valid(id))
		return kura_fail(
			err, KURA_EINVAL,
			"access key id must be 16-128 characters of A-Z and 0-9");
	if (slen < 16 || slen > KURA_SECRET_KEY_MAX ||
	    slen + KURA_BOX_OVERHEAD > sizeof(k->secret_sealed))
		return kura_fail(err, KURA_EINVAL,
				 "secret key must be 16-%d characters",
				 KURA_SECRET_KEY_MAX);
	memset(k, 0, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	k->tenant_id = tenant_id;
	k->created_ms = kura_now_ms();
	k->active = true;
	size_t alen = key_aad(id, aad, sizeof(aad));
	enum kura_err rc = kura_box_seal(system_key, aad, alen,
					 (const uint8_t *)secret, slen,
					 k->secret_sealed, err);
	if (rc == KURA_OK)
		k->secret_sealed_len = slen + KURA_BOX_OVERHEAD;
	return rc;
}

enum kura_err kura_auth_add_key(struct kura_meta *meta,
				const struct kura_secret *system_key,
				uint64_t tenant_id, const char *id,
				const char *secret, struct kura_error *err)
{
	struct kura_access_key k;
	enum kura_err rc = seal_key(system_key, tenant_id, id, secret, &k, err);
	if (rc == KURA_OK)
		rc = kura_meta_access_key_create(meta, &k, err);
	return rc;
}

enum kura_err kura_auth_rotate_key(struct kura_meta *meta,
				   const struct kura_secret *system_key,
				   uint64_t tenant_id, const char *old_id,
				   char id[KURA_ACCESS_KEY_LEN + 1],
				   char secret[KURA_SECRET_KEY_LEN + 1],
				   struct kura_error *err)
{
	struct kura_access_key k;
	char nid[KURA_ACCESS_KEY_LEN + 1], nsecret[KURA_SECRET_KEY_LEN + 1];
	enum kura_err rc = kura_auth_generate_key(nid, nsecret, err);
	if (rc == KURA_OK)
		rc = seal_key(system_key, tenant_id, nid, nsecret, &k, err);
	if (rc == KURA_OK)
		rc = kura_meta_access_key_replace(meta, old_id, &k, err);
	if (rc == KURA_OK) {
		memcpy(id, nid, sizeof(nid));
		memcpy(secret, nsecret, sizeof(nsecret));
	}
	kura_wipe(nsecret, sizeof(nsecret));
	return rc;
}

enum kura_err kura_auth_lookup_key(struct kura_meta *meta,
				   const struct kura_secret *system_key,
				   const char *id, struct kura_access_key *rec,
				   struct kura_secret **secret,
				   struct kura_error *err)
{
	uint8_t aad[sizeof(ACCESS_KEY_AAD) + KURA_ACCESS_KEY_ID_MAX];
	struct kura_tenant t;
	enum kura_err rc = kura_meta_access_key_get(meta, id, rec, err);
	if (rc != KURA_OK)
		return rc;
	if (!rec->active)
		return kura_fail(err, KURA_ENOENT, "access key '%s' is revoked",
				 id);
	/* Read per request, like the key itself: a suspension takes effect
	 * at the next request of every process. */
	rc = kura_meta_tenant_get(meta, rec->tenant_id, &t, err);
	if (rc == KURA_ENOENT)
		return KURA_ENOENT;
	if (rc != KURA_OK)
		return rc;
	if (t.state != KURA_TENANT_ACTIVE)
		return kura_fail(err, KURA_EPERM, "tenant '%s' is suspended",
				 t.name);
	size_t alen = key_aad(id, aad, sizeof(aad));
	return kura_box_open_secret(system_key, aad, alen, rec->secret_sealed,
				    rec->secret_sealed_len, secret, err);
}

enum kura_err kura_auth_create_tenant(struct kura_meta *meta,
				      const struct kura_secret *system_key,
				      const char *name,
				      struct kura_tenant *tenant,
				      char id[KURA_ACCESS_KEY_LEN + 1],
				      char secret[KURA_SECRET_KEY_LEN + 1],
				      struct kura_error *err)
{
	struct kura_tenant t = { 0 };
	if (!kura_auth_tenant_name_valid(name))
		return kura_fail(
			err, KURA_EINVAL,
			"tenant name '%s' must be 1-63 characters of a-z, 0-9, '-' "
			"and '_', starting with a letter or digit",
			name);
	snprintf(t.name, sizeof(t.name), "%s", name);
	t.created_ms = kura_now_ms();
	enum kura_err rc = kura_meta_tenant_create(meta, &t, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_auth_generate_key(id, secret, err);
	if (rc == KURA_OK)
		rc = kura_auth_add_key(meta, system_key, t.id, id, secret, err);
	if (rc != KURA_OK)
		return rc;
	*tenant = t;
	return KURA_OK;
}

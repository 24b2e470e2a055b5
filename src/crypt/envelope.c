/*
 * envelope.c — data keys and bucket keys (docs/FORMAT.md §2, §6, §7).
 *
 * A DEK is 32 random bytes sealed with kura_box under its bucket key; the
 * box AAD binds the whole struct kura_binding, so a wrapped DEK copied to
 * another object, version, part, bucket or tenant does not open.  A bucket
 * key is 32 random bytes wrapped by a fresh KEK in the key provider, bound
 * to (tenant, bucket) by the bucket-key AAD.
 *
 * Key material stays in struct kura_secret; the AAD buffers here hold only
 * identifiers.  Outputs are written only on success.
 *
 * Threading: stateless; safe from any thread (the provider promises the
 * same for its slots).
 */
#include <string.h>

#include "kura/box.h"
#include "kura/crypt.h"
#include "kura/banned.h"

#define DEK_AAD_MAGIC "KURADEK1"
#define DEK_AAD_LEN 44
#define BK_AAD_MAGIC "kura-bk1\0\0"
#define BK_AAD_MAGIC_LEN 10
#define BUCKET_KEY_LEN 32

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

/* "KURADEK1" || tenant_id u64 || bucket_id u64 || version_uid 16
 * || part_no u32, all big-endian: 44 bytes. */
static void dek_aad(const struct kura_binding *b, uint8_t out[DEK_AAD_LEN])
{
	memcpy(out, DEK_AAD_MAGIC, 8);
	put_u64(out + 8, b->tenant_id);
	put_u64(out + 16, b->bucket_id);
	memcpy(out + 24, b->version_uid, KURA_UID_LEN);
	put_u32(out + 40, b->part_no);
}

enum kura_err kura_dek_new(struct kura_secret **out, struct kura_error *err)
{
	return kura_secret_random(KURA_DEK_LEN, out, err);
}

enum kura_err kura_dek_wrap(const struct kura_secret *bucket_key,
			    const struct kura_binding *binding,
			    const struct kura_secret *dek,
			    uint8_t out[KURA_WRAPPED_DEK_LEN],
			    struct kura_error *err)
{
	if (dek == NULL || dek->len != KURA_DEK_LEN || binding == NULL)
		return kura_fail(err, KURA_EINVAL,
				 "DEK wrap: bad DEK or binding");
	uint8_t aad[DEK_AAD_LEN];
	uint8_t sealed[KURA_WRAPPED_DEK_LEN];
	dek_aad(binding, aad);
	enum kura_err rc = kura_box_seal(bucket_key, aad, sizeof(aad),
					 dek->data, dek->len, sealed, err);
	if (rc != KURA_OK)
		return rc;
	memcpy(out, sealed, sizeof(sealed));
	return KURA_OK;
}

enum kura_err kura_dek_unwrap(const struct kura_secret *bucket_key,
			      const struct kura_binding *binding,
			      const uint8_t in[KURA_WRAPPED_DEK_LEN],
			      struct kura_secret **out, struct kura_error *err)
{
	if (binding == NULL)
		return kura_fail(err, KURA_EINVAL, "DEK unwrap: no binding");
	uint8_t aad[DEK_AAD_LEN];
	dek_aad(binding, aad);
	return kura_box_open_secret(bucket_key, aad, sizeof(aad), in,
				    KURA_WRAPPED_DEK_LEN, out, err);
}

void kura_bucket_key_aad(uint64_t tenant_id, uint64_t bucket_id,
			 uint8_t out[KURA_BUCKET_KEY_AAD_LEN])
{
	memcpy(out, BK_AAD_MAGIC, BK_AAD_MAGIC_LEN);
	put_u64(out + 10, tenant_id);
	put_u64(out + 18, bucket_id);
	memset(out + 26, 0, 8);
}

enum kura_err kura_bucket_key_create(struct kura_keys *keys, uint64_t tenant_id,
				     uint64_t bucket_id, const char *label,
				     char kek_id[KURA_KEK_ID_MAX],
				     uint8_t wrapped[KURA_WRAPPED_MAX],
				     size_t *wrapped_len,
				     struct kura_error *err)
{
	if (keys == NULL || keys->ops == NULL ||
	    keys->ops->kek_create == NULL || keys->ops->wrap == NULL)
		return kura_fail(err, KURA_EINVAL,
				 "key provider cannot create keys");
	const struct kura_keys_ops *ops = keys->ops;
	char id[KURA_KEK_ID_MAX] = { 0 };
	uint8_t w[KURA_WRAPPED_MAX];
	size_t wlen = 0;
	struct kura_secret *bk = NULL;
	uint8_t aad[KURA_BUCKET_KEY_AAD_LEN];

	enum kura_err rc =
		kura_keys_kek_create(keys, label ? label : "", id, err);
	if (rc != KURA_OK)
		return rc;
	if (memchr(id, '\0', sizeof(id)) == NULL || id[0] == '\0') {
		rc = kura_fail(err, KURA_EINTERNAL,
			       "key provider '%s' returned a bad KEK id",
			       ops->name);
		goto out;
	}
	rc = kura_secret_random(BUCKET_KEY_LEN, &bk, err);
	if (rc != KURA_OK)
		goto out;
	kura_bucket_key_aad(tenant_id, bucket_id, aad);
	rc = kura_keys_wrap(keys, id, bk, aad, sizeof(aad), w, &wlen, err);
	if (rc != KURA_OK)
		goto out;
	if (wlen == 0 || wlen > KURA_WRAPPED_MAX)
		rc = kura_fail(err, KURA_EINTERNAL,
			       "key provider '%s' returned %zu wrapped bytes",
			       ops->name, wlen);
out:
	kura_secret_free(bk);
	if (rc != KURA_OK) {
		/* Do not leave an orphan KEK behind.  The original failure is
		 * what the caller needs to see, so the cleanup's own error (if
		 * any) goes to a scratch carrier. */
		if (id[0] != '\0' && memchr(id, '\0', sizeof(id)) != NULL) {
			struct kura_error scratch = { 0 };
			(void)kura_keys_kek_destroy(keys, id, &scratch);
		}
		return rc;
	}
	memcpy(kek_id, id, sizeof(id));
	memcpy(wrapped, w, wlen);
	*wrapped_len = wlen;
	return KURA_OK;
}

/*
 * rowmac.c — the MACs of control-plane rows (see meta.h, "Row MACs").
 *
 * A row's MAC is HMAC-SHA256(row key, encoding), where the encoding is a
 * domain string naming the format and the table, then every field in a
 * fixed order: integers as 8 bytes big-endian, strings and blobs as a
 * 4-byte big-endian length and their bytes.  Lengths make the encoding
 * unambiguous (no two rows share one), the table name makes a tenant's
 * MAC useless on a bucket row.  Backend-neutral: every metadata store
 * computes the same MAC, so a database moved between stores keeps them.
 *
 * Threading: pure functions.
 */
#include <string.h>

#include "kura/hmac.h"
#include "kura/meta.h"
#include "kura/banned.h"

#define ROW_DOMAIN "kura-row-mac-v1/"
#define ROW_ENC_MAX 1024 /* the largest row (an access key) is < 600 */

struct row_enc {
	uint8_t b[ROW_ENC_MAX];
	size_t n;
	bool over;
};

static void put_bytes(struct row_enc *e, const void *p, size_t n)
{
	if (e->over || n > sizeof(e->b) - e->n) {
		e->over = true;
		return;
	}
	memcpy(e->b + e->n, p, n);
	e->n += n;
}

static void put_u64(struct row_enc *e, uint64_t v)
{
	uint8_t b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
	put_bytes(e, b, sizeof(b));
}

static void put_i64(struct row_enc *e, int64_t v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof(u));
	put_u64(e, u);
}

static void put_blob(struct row_enc *e, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		e->over = true;
		return;
	}
	uint8_t len[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16),
			   (uint8_t)(n >> 8), (uint8_t)n };
	put_bytes(e, len, sizeof(len));
	put_bytes(e, p, n);
}

/* A NUL-terminated string within a cap-byte array. */
static void put_str(struct row_enc *e, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == cap) {
		e->over = true;
		return;
	}
	put_blob(e, s, n);
}

static void start(struct row_enc *e, const char *table)
{
	e->n = 0;
	e->over = false;
	put_bytes(e, ROW_DOMAIN, strlen(ROW_DOMAIN));
	put_blob(e, table, strlen(table));
}

static bool finish(struct row_enc *e, const uint8_t key[KURA_ROW_KEY_LEN],
		   uint8_t out[KURA_ROW_MAC_LEN])
{
	bool ok = !e->over &&
		  kura_hmac_sha256(key, KURA_ROW_KEY_LEN, e->b, e->n, out);
	/* The encoding holds a sealed secret: ciphertext, but no copy stays. */
	memset(e->b, 0, e->n);
	return ok;
}

bool kura_row_mac_tenant(const uint8_t key[KURA_ROW_KEY_LEN],
			 const struct kura_tenant *t,
			 uint8_t out[KURA_ROW_MAC_LEN])
{
	struct row_enc e;
	start(&e, "tenants");
	put_u64(&e, t->id);
	put_str(&e, t->name, sizeof(t->name));
	put_i64(&e, t->created_ms);
	put_u64(&e, (uint64_t)t->state);
	return finish(&e, key, out);
}

bool kura_row_mac_access_key(const uint8_t key[KURA_ROW_KEY_LEN],
			     const struct kura_access_key *k,
			     uint8_t out[KURA_ROW_MAC_LEN])
{
	struct row_enc e;
	start(&e, "access_keys");
	put_str(&e, k->id, sizeof(k->id));
	put_u64(&e, k->tenant_id);
	put_i64(&e, k->created_ms);
	put_u64(&e, k->active ? 1 : 0);
	if (k->secret_sealed_len > sizeof(k->secret_sealed))
		e.over = true;
	else
		put_blob(&e, k->secret_sealed, k->secret_sealed_len);
	return finish(&e, key, out);
}

bool kura_row_mac_bucket(const uint8_t key[KURA_ROW_KEY_LEN],
			 const struct kura_bucket *b,
			 uint8_t out[KURA_ROW_MAC_LEN])
{
	struct row_enc e;
	start(&e, "buckets");
	put_u64(&e, b->id);
	put_u64(&e, b->tenant_id);
	put_str(&e, b->name, sizeof(b->name));
	put_str(&e, b->region, sizeof(b->region));
	put_i64(&e, b->created_ms);
	put_u64(&e, b->key_id);
	put_u64(&e, (uint64_t)b->default_sse);
	put_u64(&e, b->default_kms_key_id);
	/* Schema 6.  Only when set, so the MACs of rows written before it
	 * still hold; a row's field count is fixed, so this cannot make two
	 * rows encode alike. */
	if (b->versioning != KURA_VERSIONING_OFF || b->object_lock ||
	    b->lock_default_mode != KURA_LOCK_NONE ||
	    b->lock_default_days != 0 || b->lock_default_years != 0 ||
	    b->has_lifecycle) {
		put_u64(&e, (uint64_t)b->versioning);
		put_u64(&e, b->object_lock ? 1 : 0);
		put_u64(&e, (uint64_t)b->lock_default_mode);
		put_u64(&e, b->lock_default_days);
		put_u64(&e, b->lock_default_years);
	}
	/* The lifecycle digest, likewise only when there is one: a rule that
	 * deletes data is as much the bucket's as its versioning state, so
	 * one planted in the database fails the MAC (the tail is 40 or 76
	 * bytes, so the two cases cannot encode alike). */
	if (b->has_lifecycle)
		put_blob(&e, b->lifecycle_digest, KURA_LC_DIGEST_LEN);
	/* Schema 7: the placement policy, only when named (older rows keep
	 * their MACs).  Where the data may go is the owner's word: a policy
	 * swapped in the database fails the MAC.  The tag keeps the tail
	 * distinct from a lifecycle digest's. */
	if (b->placement[0] != '\0') {
		put_str(&e, "placement", sizeof("placement"));
		put_str(&e, b->placement, sizeof(b->placement));
	}
	return finish(&e, key, out);
}

bool kura_row_mac_key(const uint8_t key[KURA_ROW_KEY_LEN],
		      const struct kura_key *k, uint8_t out[KURA_ROW_MAC_LEN])
{
	struct row_enc e;
	start(&e, "keys");
	put_u64(&e, k->id);
	put_u64(&e, k->tenant_id);
	put_str(&e, k->name, sizeof(k->name));
	put_u64(&e, (uint64_t)k->kind);
	put_u64(&e, (uint64_t)k->state);
	put_u64(&e, k->current_version);
	put_str(&e, k->provider, sizeof(k->provider));
	put_u64(&e, k->imported ? 1 : 0);
	put_i64(&e, k->created_ms);
	put_i64(&e, k->changed_ms);
	return finish(&e, key, out);
}

bool kura_row_mac_key_version(const uint8_t key[KURA_ROW_KEY_LEN],
			      const struct kura_key_version *v,
			      uint8_t out[KURA_ROW_MAC_LEN])
{
	struct row_enc e;
	start(&e, "key_versions");
	put_u64(&e, v->key_id);
	put_u64(&e, v->version);
	put_str(&e, v->kek_id, sizeof(v->kek_id));
	put_u64(&e, (uint64_t)v->state);
	put_i64(&e, v->created_ms);
	put_i64(&e, v->destroyed_ms);
	return finish(&e, key, out);
}

bool kura_row_mac_bucket_key(const uint8_t key[KURA_ROW_KEY_LEN],
			     const struct kura_bucket_key *bk,
			     uint8_t out[KURA_ROW_MAC_LEN])
{
	struct row_enc e;
	start(&e, "bucket_keys");
	put_u64(&e, bk->id);
	put_u64(&e, bk->bucket_id);
	put_u64(&e, bk->key_id);
	put_u64(&e, bk->key_version);
	if (bk->wrapped_len > sizeof(bk->wrapped))
		e.over = true;
	else
		put_blob(&e, bk->wrapped, bk->wrapped_len);
	put_u64(&e, bk->current ? 1 : 0);
	put_i64(&e, bk->created_ms);
	put_i64(&e, bk->retired_ms);
	return finish(&e, key, out);
}

bool kura_lc_digest(const char *text, size_t len,
		    uint8_t out[KURA_LC_DIGEST_LEN])
{
	static const char domain[] = "kura-lifecycle-digest-v1";
	return kura_hmac_sha256(domain, sizeof(domain) - 1, text, len, out);
}

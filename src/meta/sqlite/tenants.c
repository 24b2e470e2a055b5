/*
 * tenants.c — tenants and access keys in the SQLite metadata store, with
 * their lifecycle (schema 4): a tenant is active or suspended and is
 * deleted only when it owns no bucket and no live key; an access key is
 * active or revoked for good, and its row stays until its tenant goes, so
 * an id is never reused meanwhile.
 *
 * Tenant ids are random (sql_tenant_insert says why): never reused.  The
 * sealed secret of an access key is ciphertext, but no copy of it is left
 * behind on the stack or in scratch memory.  Every row carries its MAC (rowmacs.c): a
 * row is checked whenever it is read, and a change reads the row, checks
 * it and writes it back with its new MAC in one transaction.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include "kura/encode.h"
#include "sqlite_int.h"
#include "kura/banned.h"

#define TENANT_COLS "SELECT id, name, created_ms, state, mac FROM tenants "
#define AK_COLS                                                         \
	"SELECT id, tenant_id, secret_sealed, created_ms, active, mac " \
	"FROM access_keys "

static enum kura_err tenant_read(struct sq_conn *c, uint64_t id,
				 struct kura_tenant *t, bool *found,
				 struct kura_error *err);

/* The tenant is read whole, so that its MAC is checked: a key or bucket
 * is never created for a row planted in the database. */
enum kura_err sq_tenant_check(struct sq_conn *c, uint64_t id,
			      struct kura_error *err)
{
	struct kura_tenant t;
	bool found = false;
	enum kura_err r = tenant_read(c, id, &t, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no tenant %llu",
			      (unsigned long long)id);
	return r;
}

/* ---- tenants ---- */

/* The id is random, not the next one: whoever can write the database can
 * steer AUTOINCREMENT (sqlite_sequence), and a new tenant given a deleted
 * one's id would inherit that tenant's access-key rows, MACs and all.
 * Chosen before the insert, it lets the row go in with its MAC. */
static const struct sq_sql sql_tenant_insert = {
	.what = "insert tenant",
	.text = "INSERT INTO tenants (id, name, created_ms, mac) VALUES (?1, "
		"?2, ?3, ?4)",
};

struct tenant_arg {
	const struct kura_tenant *t;
	uint64_t id; /* chosen by the caller */
};

static enum kura_err tenant_create_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	const struct tenant_arg *a = arg;
	struct kura_tenant t = *a->t;
	struct sq_stmt st;

	/* The row as stored, so its MAC goes in with it. */
	t.id = a->id;
	t.state = KURA_TENANT_ACTIVE;
	sq_begin(&st, c, &sql_tenant_insert, err);
	sq_bind_u64(&st, 1, t.id);
	sq_bind_text(&st, 2, t.name);
	sq_bind_i64(&st, 3, t.created_ms);
	sq_bind_row_mac(&st, 4, SQ_ROW_TENANT, &t);
	sq_run(&st);
	return sq_end_unique(&st, "tenant '%s' exists", t.name);
}

enum kura_err sq_tenant_create(void *priv, struct kura_tenant *t,
			       struct kura_error *err)
{
	struct tenant_arg a = { t, 0 };
	uint8_t rnd[8];
	enum kura_err r;

	if (t == NULL || !sq_str_ok(t->name, sizeof(t->name), false))
		return kura_fail(err, KURA_EINVAL, "bad tenant name");
	r = kura_random_bytes(rnd, sizeof(rnd), err);
	if (r != KURA_OK)
		return r;
	for (size_t i = 0; i < sizeof(rnd); i++)
		a.id = a.id << 8 | rnd[i];
	a.id >>= 1; /* a positive INTEGER: 1 .. 2^63 - 1 */
	if (a.id == 0)
		a.id = 1;
	r = sq_write_tx(priv, tenant_create_body, &a, err);
	if (r == KURA_OK) {
		t->id = a.id;
		t->state = KURA_TENANT_ACTIVE;
	}
	return r;
}

/* The fields of one row of TENANT_COLS, unchecked. */
static void tenant_fields(struct sq_stmt *st, void *row)
{
	struct kura_tenant *t = row;

	memset(t, 0, sizeof(*t));
	t->id = sq_col_u64(st, 0);
	sq_col_text(st, 1, t->name, sizeof(t->name), "tenant name");
	t->created_ms = sq_col_i64(st, 2);
	t->state = sq_col_int(st, 3) == 1 ? KURA_TENANT_SUSPENDED :
					    KURA_TENANT_ACTIVE;
}

/* One row of TENANT_COLS, checked against its MAC. */
static void tenant_row(struct sq_stmt *st, void *out)
{
	struct kura_tenant *t = out;

	tenant_fields(st, t);
	sq_col_row_mac(st, 4, SQ_ROW_TENANT, t);
}

static const struct sq_sql sql_tenant_get = {
	.what = "get tenant",
	.text = TENANT_COLS "WHERE id = ?1",
};
static const struct sq_sql sql_tenant_get_by_name = {
	.what = "get tenant",
	.text = TENANT_COLS "WHERE name = ?1",
};

/* Tenant id on c, checked; *found false when there is none. */
static enum kura_err tenant_read(struct sq_conn *c, uint64_t id,
				 struct kura_tenant *t, bool *found,
				 struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_tenant_get, err);
	sq_bind_u64(&st, 1, id);
	*found = sq_row(&st);
	if (*found)
		tenant_row(&st, t);
	return sq_end(&st);
}

/* Tenant id (name NULL) or tenant name. */
static enum kura_err tenant_lookup(struct sq_store *m, uint64_t id,
				   const char *name, struct kura_tenant *out,
				   struct kura_error *err)
{
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	struct kura_tenant t;
	bool found;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	if (name != NULL) {
		sq_begin(&st, c, &sql_tenant_get_by_name, err);
		sq_bind_text(&st, 1, name);
	} else {
		sq_begin(&st, c, &sql_tenant_get, err);
		sq_bind_u64(&st, 1, id);
	}
	found = sq_row(&st);
	if (found)
		tenant_row(&st, &t);
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = name != NULL ? kura_fail(err, KURA_ENOENT, "no tenant '%s'",
					     name) :
				   kura_fail(err, KURA_ENOENT, "no tenant %llu",
					     (unsigned long long)id);
	if (r == KURA_OK)
		*out = t;
	return r;
}

enum kura_err sq_tenant_get(void *priv, uint64_t id, struct kura_tenant *out,
			    struct kura_error *err)
{
	return tenant_lookup(priv, id, NULL, out, err);
}

enum kura_err sq_tenant_get_by_name(void *priv, const char *name,
				    struct kura_tenant *out,
				    struct kura_error *err)
{
	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "tenant name missing");
	return tenant_lookup(priv, 0, name, out, err);
}

static const struct sq_sql sql_tenant_list = {
	.what = "list tenants",
	.text = TENANT_COLS "ORDER BY name",
};

enum kura_err sq_tenant_list(void *priv, struct kura_pool *pool,
			     struct kura_tenant **out, size_t *count,
			     struct kura_error *err)
{
	static const struct sq_list list = { &sql_tenant_list,
					     sizeof(struct kura_tenant), false,
					     tenant_row };
	void *res = NULL;
	enum kura_err r =
		sq_list(priv, &list, NULL, SIZE_MAX, pool, &res, count, err);

	if (r == KURA_OK)
		*out = res;
	return r;
}

static const struct sq_sql sql_tenant_set_state = {
	.what = "set tenant state",
	.text = "UPDATE tenants SET state = ?2, mac = ?3 WHERE id = ?1",
};

struct tenant_state_arg {
	uint64_t id;
	enum kura_tenant_state state;
};

static enum kura_err tenant_set_state_body(struct sq_conn *c, void *arg,
					   struct kura_error *err)
{
	const struct tenant_state_arg *a = arg;
	struct kura_tenant t;
	struct sq_stmt st;
	bool found = false;
	enum kura_err r = tenant_read(c, a->id, &t, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no tenant %llu",
			      (unsigned long long)a->id);
	if (r != KURA_OK)
		return r;
	t.state = a->state;
	sq_begin(&st, c, &sql_tenant_set_state, err);
	sq_bind_u64(&st, 1, a->id);
	sq_bind_i64(&st, 2, (int)a->state);
	sq_bind_row_mac(&st, 3, SQ_ROW_TENANT, &t);
	return sq_exec(&st);
}

enum kura_err sq_tenant_set_state(void *priv, uint64_t id,
				  enum kura_tenant_state state,
				  struct kura_error *err)
{
	struct tenant_state_arg a = { id, state };

	if (state != KURA_TENANT_ACTIVE && state != KURA_TENANT_SUSPENDED)
		return kura_fail(err, KURA_EINVAL, "bad tenant state %d",
				 (int)state);
	return sq_write_tx(priv, tenant_set_state_body, &a, err);
}

static const struct sq_sql sql_tenant_has_buckets = {
	.what = "lookup",
	.text = "SELECT 1 FROM buckets WHERE tenant_id = ?1 LIMIT 1",
};
static const struct sq_sql sql_tenant_live_keys = {
	.what = "lookup",
	.text = "SELECT 1 FROM keys WHERE tenant_id = ?1 AND state != 3 "
		"LIMIT 1",
};
/* Deleting a tenant: its access keys, its destroyed keys' versions, its
 * keys, in this order (the references), then the tenant. */
static const struct sq_sql sql_tenant_delete_steps[] = {
	{
		.what = "delete tenant",
		.text = "DELETE FROM access_keys WHERE tenant_id = ?1",
	},
	{
		.what = "delete tenant",
		.text = "DELETE FROM key_versions WHERE key_id IN (SELECT id "
			"FROM keys WHERE tenant_id = ?1)",
	},
	{
		.what = "delete tenant",
		.text = "DELETE FROM keys WHERE tenant_id = ?1",
	},
};
static const struct sq_sql sql_tenant_delete = {
	.what = "delete tenant",
	.text = "DELETE FROM tenants WHERE id = ?1",
};

static enum kura_err tenant_delete_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	uint64_t id = *(const uint64_t *)arg;
	bool found = false;
	enum kura_err r = sq_tenant_check(c, id, err);

	if (r == KURA_OK)
		r = sq_exists_u64(c, &sql_tenant_has_buckets, id, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_ENOTEMPTY, "tenant %llu owns buckets",
			      (unsigned long long)id);
	if (r == KURA_OK)
		r = sq_exists_u64(c, &sql_tenant_live_keys, id, &found, err);
	if (r == KURA_OK && found)
		r = kura_fail(err, KURA_ESTATE,
			      "tenant %llu has keys that are not destroyed",
			      (unsigned long long)id);
	for (size_t i = 0; r == KURA_OK && i < 3; i++)
		r = sq_exec_u64(c, &sql_tenant_delete_steps[i], id, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	if (r == KURA_OK)
		r = sq_exec_u64(c, &sql_tenant_delete, id, err);
	return r;
}

enum kura_err sq_tenant_delete(void *priv, uint64_t id, struct kura_error *err)
{
	return sq_write_tx(priv, tenant_delete_body, &id, err);
}

/* ---- access keys ---- */

static const struct sq_sql sql_ak_insert = {
	.what = "insert access key",
	.text = "INSERT INTO access_keys (id, tenant_id, secret_sealed, "
		"created_ms, active, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
};

/* Insert k inside a transaction: KURA_ENOENT for no tenant. */
static enum kura_err ak_insert(struct sq_conn *c,
			       const struct kura_access_key *k,
			       struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r = sq_tenant_check(c, k->tenant_id, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_ak_insert, err);
	sq_bind_text(&st, 1, k->id);
	sq_bind_u64(&st, 2, k->tenant_id);
	sq_bind_blob(&st, 3, k->secret_sealed, k->secret_sealed_len);
	sq_bind_i64(&st, 4, k->created_ms);
	sq_bind_i64(&st, 5, k->active ? 1 : 0);
	sq_bind_row_mac(&st, 6, SQ_ROW_ACCESS_KEY, k);
	sq_run(&st);
	return sq_end_unique(&st, "access key '%s' exists", k->id);
}

static enum kura_err access_key_create_body(struct sq_conn *c, void *arg,
					    struct kura_error *err)
{
	return ak_insert(c, arg, err);
}

enum kura_err sq_access_key_create(void *priv, const struct kura_access_key *k,
				   struct kura_error *err)
{
	if (k == NULL || !sq_str_ok(k->id, sizeof(k->id), false))
		return kura_fail(err, KURA_EINVAL, "bad access key id");
	if (k->secret_sealed_len > sizeof(k->secret_sealed))
		return kura_fail(err, KURA_EINVAL, "bad sealed secret length");
	return sq_write_tx(priv, access_key_create_body, (void *)k, err);
}

/* The fields of one row of AK_COLS, unchecked. */
static void access_key_fields(struct sq_stmt *st, void *row)
{
	struct kura_access_key *k = row;

	memset(k, 0, sizeof(*k));
	sq_col_text(st, 0, k->id, sizeof(k->id), "access key id");
	k->tenant_id = sq_col_u64(st, 1);
	sq_col_blob(st, 2, k->secret_sealed, sizeof(k->secret_sealed),
		    &k->secret_sealed_len, "sealed secret");
	k->created_ms = sq_col_i64(st, 3);
	k->active = sq_col_int(st, 4) != 0;
}

/* One row of AK_COLS, checked against its MAC. */
static void access_key_row(struct sq_stmt *st, void *out)
{
	struct kura_access_key *k = out;

	access_key_fields(st, k);
	sq_col_row_mac(st, 5, SQ_ROW_ACCESS_KEY, k);
}

static const struct sq_sql sql_ak_get = {
	.what = "get access key",
	.text = AK_COLS "WHERE id = ?1",
};

/* Access key id on c; *found false when there is none. */
static enum kura_err ak_read(struct sq_conn *c, const char *id,
			     struct kura_access_key *k, bool *found,
			     struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_ak_get, err);
	sq_bind_text(&st, 1, id);
	*found = sq_row(&st);
	if (*found)
		access_key_row(&st, k);
	return sq_end(&st);
}

enum kura_err sq_access_key_get(void *priv, const char *id,
				struct kura_access_key *out,
				struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_access_key k = { 0 };
	bool found = false;
	enum kura_err r;

	if (id == NULL)
		return kura_fail(err, KURA_EINVAL, "access key id missing");
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = ak_read(c, id, &k, &found, err);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no access key '%s'", id);
	if (r == KURA_OK)
		*out = k;
	/* The sealed secret is ciphertext, but no copy need linger. */
	memset(&k, 0, sizeof(k));
	return r;
}

static const struct sq_sql sql_ak_list = {
	.what = "list access keys",
	.text = AK_COLS "WHERE tenant_id = ?1 ORDER BY created_ms, id",
};

enum kura_err sq_access_key_list(void *priv, uint64_t tenant_id,
				 struct kura_pool *pool,
				 struct kura_access_key **out, size_t *count,
				 struct kura_error *err)
{
	static const struct sq_list list = { &sql_ak_list,
					     sizeof(struct kura_access_key),
					     true, access_key_row };
	void *res = NULL;
	enum kura_err r = sq_list(priv, &list, &tenant_id, SIZE_MAX, pool, &res,
				  count, err);

	if (r == KURA_OK)
		*out = res;
	return r;
}

static const struct sq_sql sql_ak_revoke = {
	.what = "revoke access key",
	.text = "UPDATE access_keys SET active = 0, mac = ?2 WHERE id = ?1",
};

/* Revoke id inside a transaction: KURA_ENOENT when there is no such key. */
static enum kura_err ak_revoke(struct sq_conn *c, const char *id,
			       struct kura_error *err)
{
	struct kura_access_key k;
	struct sq_stmt st;
	bool found = false;
	enum kura_err r = ak_read(c, id, &k, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no access key '%s'", id);
	if (r == KURA_OK) {
		k.active = false;
		sq_begin(&st, c, &sql_ak_revoke, err);
		sq_bind_text(&st, 1, id);
		sq_bind_row_mac(&st, 2, SQ_ROW_ACCESS_KEY, &k);
		r = sq_exec(&st);
	}
	memset(&k, 0, sizeof(k));
	return r;
}

static enum kura_err access_key_revoke_body(struct sq_conn *c, void *arg,
					    struct kura_error *err)
{
	return ak_revoke(c, arg, err);
}

enum kura_err sq_access_key_revoke(void *priv, const char *id,
				   struct kura_error *err)
{
	if (id == NULL ||
	    strnlen(id, KURA_ACCESS_KEY_ID_MAX) >= KURA_ACCESS_KEY_ID_MAX)
		return kura_fail(err, KURA_EINVAL, "bad access key id");
	return sq_write_tx(priv, access_key_revoke_body, (void *)id, err);
}

struct ak_replace_arg {
	const char *old_id;
	const struct kura_access_key *k;
};

static enum kura_err access_key_replace_body(struct sq_conn *c, void *arg,
					     struct kura_error *err)
{
	const struct ak_replace_arg *a = arg;
	struct kura_access_key old;
	bool found = false;
	enum kura_err r = ak_read(c, a->old_id, &old, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no access key '%s'",
			      a->old_id);
	else if (r == KURA_OK && !old.active)
		r = kura_fail(err, KURA_ESTATE, "access key '%s' is revoked",
			      a->old_id);
	else if (r == KURA_OK && old.tenant_id != a->k->tenant_id)
		r = kura_fail(err, KURA_ESTATE,
			      "access key '%s' belongs to another tenant",
			      a->old_id);
	memset(&old, 0, sizeof(old));
	if (r == KURA_OK)
		r = ak_insert(c, a->k, err);
	if (r == KURA_OK)
		r = ak_revoke(c, a->old_id, err);
	return r;
}

enum kura_err sq_access_key_replace(void *priv, const char *old_id,
				    const struct kura_access_key *k,
				    struct kura_error *err)
{
	struct ak_replace_arg a = { old_id, k };

	if (old_id == NULL || k == NULL ||
	    !sq_str_ok(k->id, sizeof(k->id), false) || !k->active)
		return kura_fail(err, KURA_EINVAL, "bad access key");
	if (k->secret_sealed_len > sizeof(k->secret_sealed))
		return kura_fail(err, KURA_EINVAL, "bad sealed secret length");
	return sq_write_tx(priv, access_key_replace_body, &a, err);
}

/* ---- the row MAC upgrade (rowmacs.c) ---- */

static const struct sq_sql sql_tenant_unmacd = {
	.what = "row MAC upgrade",
	.text = TENANT_COLS "WHERE mac IS NULL",
};
static const struct sq_sql sql_tenant_mac = {
	.what = "row MAC upgrade",
	.text = "UPDATE tenants SET mac = ?1 WHERE id = ?2 AND mac IS NULL",
};

static void tenant_key(struct sq_stmt *st, const void *row)
{
	sq_bind_u64(st, 2, ((const struct kura_tenant *)row)->id);
}

const struct sq_mac_table sq_tenant_macs = {
	SQ_ROW_TENANT,	    sizeof(struct kura_tenant),
	&sql_tenant_unmacd, tenant_fields,
	&sql_tenant_mac,    tenant_key,
};

static const struct sq_sql sql_ak_unmacd = {
	.what = "row MAC upgrade",
	.text = AK_COLS "WHERE mac IS NULL",
};
static const struct sq_sql sql_ak_mac = {
	.what = "row MAC upgrade",
	.text = "UPDATE access_keys SET mac = ?1 WHERE id = ?2 AND mac IS NULL",
};

static void access_key_key(struct sq_stmt *st, const void *row)
{
	sq_bind_text(st, 2, ((const struct kura_access_key *)row)->id);
}

const struct sq_mac_table sq_access_key_macs = {
	SQ_ROW_ACCESS_KEY, sizeof(struct kura_access_key),
	&sql_ak_unmacd,	   access_key_fields,
	&sql_ak_mac,	   access_key_key,
};

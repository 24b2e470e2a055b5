/*
 * keys.c — kura keys in the SQLite metadata store (schema 3): their
 * records and versions (one KEK each in the key provider), their
 * lifecycle (enabled, disabled, destroyed), rotation, and the key
 * generation.
 *
 * A part's DEK is wrapped by the bucket key parts.bk_id (or
 * upload_parts.bk_id).  That reference is ON DELETE RESTRICT, so a bucket
 * key cannot go while a part uses it (bucket_keys.c).  Destroying a key
 * (key_destroyed) is the one exception, on purpose: its parts' bk_id are
 * set to NULL and then its bucket keys deleted, in one transaction; a part
 * with a NULL bk_id outside SSE-C can never be read again (that is the
 * point of destroying), and it stays listed until deleted or purged.
 * SSE-C parts may carry no bucket key at all (bk_id NULL, read as 0).
 *
 * Every change to keys, key_versions or bucket_keys bumps
 * key_generation.gen in the same transaction (sq_gen_bump), so processes
 * caching bucket keys notice changes made by another process.
 *
 * Threading: any thread; each call takes its own connection, writes go
 * through sq_write_tx.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kura/timefmt.h"
#include "sqlite_int.h"
#include "kura/banned.h"

#define KEY_COLS "SELECT " SQ_KEY_FIELDS("") " FROM keys "

/* ---- the key generation ---- */

static const struct sq_sql sql_gen_bump = {
	.what = "bump key generation",
	.text = "UPDATE key_generation SET gen = gen + 1",
};
static const struct sq_sql sql_gen_get = {
	.what = "get key generation",
	.text = "SELECT gen FROM key_generation",
};

enum kura_err sq_gen_bump(struct sq_conn *c, struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, &sql_gen_bump, err);
	r = sq_exec(&st);
	if (r == KURA_OK && st.changes != 1)
		r = kura_fail(err, KURA_EIO, "sqlite: key generation missing");
	return r;
}

enum kura_err sq_key_generation(void *priv, uint64_t *gen,
				struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	uint64_t g = 0;
	bool found;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_gen_get, err);
	found = sq_row(&st);
	if (found)
		g = sq_col_u64(&st, 0);
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_EIO, "sqlite: key generation missing");
	if (r == KURA_OK)
		*gen = g;
	return r;
}

/* ---- records ---- */

void sq_key_fields(struct sq_stmt *st, int base, struct kura_key *k)
{
	memset(k, 0, sizeof(*k));
	k->id = sq_col_u64(st, base);
	k->tenant_id = sq_col_u64(st, base + 1);
	sq_col_text(st, base + 2, k->name, sizeof(k->name), "key name");
	k->kind = (enum kura_key_kind)sq_col_int(st, base + 3);
	k->state = (enum kura_key_state)sq_col_int(st, base + 4);
	k->current_version = (uint32_t)sq_col_range(st, base + 5, 1, UINT32_MAX,
						    "key version");
	sq_col_text(st, base + 6, k->provider, sizeof(k->provider),
		    "key provider");
	k->imported = sq_col_int(st, base + 7) != 0;
	k->created_ms = sq_col_i64(st, base + 8);
	k->changed_ms = sq_col_i64(st, base + 9);
}

void sq_key_row(struct sq_stmt *st, int base, struct kura_key *k)
{
	sq_key_fields(st, base, k);
	sq_col_row_mac(st, base + SQ_KEY_NCOLS - 1, SQ_ROW_KEY, k);
}

/* One row of KEY_COLS, checked against its MAC. */
static void key_row(struct sq_stmt *st, void *out)
{
	sq_key_row(st, 0, out);
}

/* Every change of a key row: all it may change, with the new MAC. */
static const struct sq_sql sql_key_write = {
	.what = "write key",
	.text = "UPDATE keys SET state = ?2, current_version = ?3, changed_ms = ?4, "
		"mac = ?5 WHERE id = ?1",
};

/* Write key row k (as read in this transaction, then changed) with its
 * new MAC. */
static enum kura_err key_write(struct sq_conn *c, const struct kura_key *k,
			       struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, &sql_key_write, err);
	sq_bind_u64(&st, 1, k->id);
	sq_bind_i64(&st, 2, (int)k->state);
	sq_bind_i64(&st, 3, k->current_version);
	sq_bind_i64(&st, 4, k->changed_ms);
	sq_bind_row_mac(&st, 5, SQ_ROW_KEY, k);
	r = sq_exec(&st);
	if (r == KURA_OK && st.changes != 1)
		r = kura_fail(err, KURA_ENOENT, "no key %llu",
			      (unsigned long long)k->id);
	return r;
}

static const struct sq_sql sql_key_get = {
	.what = "get key",
	.text = KEY_COLS "WHERE id = ?1",
};
/* "state != 3" verbatim, so the partial unique index serves it. */
static const struct sq_sql sql_key_get_by_name = {
	.what = "key",
	.text = KEY_COLS "WHERE tenant_id = ?1 AND name = ?2 AND state != 3",
};

/* Key key_id (name NULL) or (tenant, name) on c; *found false for none. */
static enum kura_err key_read(struct sq_conn *c, uint64_t id, const char *name,
			      struct kura_key *out, bool *found,
			      struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, name != NULL ? &sql_key_get_by_name : &sql_key_get,
		 err);
	sq_bind_u64(&st, 1, id);
	if (name != NULL)
		sq_bind_text(&st, 2, name);
	*found = sq_row(&st);
	if (*found)
		key_row(&st, out);
	return sq_end(&st);
}

enum kura_err sq_key_fetch(struct sq_conn *c, uint64_t key_id,
			   struct kura_key *out, struct kura_error *err)
{
	bool found = false;
	enum kura_err r = key_read(c, key_id, NULL, out, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no key %llu",
			      (unsigned long long)key_id);
	return r;
}

enum kura_err sq_key_get(void *priv, uint64_t key_id, struct kura_key *out,
			 struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_key k;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r == KURA_OK)
		r = sq_key_fetch(c, key_id, &k, err);
	sq_conn_release(m, c);
	if (r == KURA_OK)
		*out = k;
	return r;
}

enum kura_err sq_key_get_by_name(void *priv, uint64_t tenant_id,
				 const char *name, struct kura_key *out,
				 struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct kura_key k;
	bool found = false;
	enum kura_err r;

	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "key name missing");
	r = sq_conn_acquire(m, &c, err);
	if (r == KURA_OK)
		r = key_read(c, tenant_id, name, &k, &found, err);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no key '%s'", name);
	if (r == KURA_OK)
		*out = k;
	return r;
}

static const struct sq_sql sql_key_list = {
	.what = "list keys",
	.text = KEY_COLS "WHERE tenant_id = ?1 ORDER BY name, id",
};
static const struct sq_sql sql_key_list_all = {
	.what = "list all keys",
	.text = KEY_COLS "ORDER BY name, tenant_id, id",
};

enum kura_err sq_key_list(void *priv, uint64_t tenant_id,
			  struct kura_pool *pool, struct kura_key **out,
			  size_t *count, struct kura_error *err)
{
	static const struct sq_list of_tenant = { &sql_key_list,
						  sizeof(struct kura_key),
						  false, key_row };
	static const struct sq_list all = { &sql_key_list_all,
					    sizeof(struct kura_key), false,
					    key_row };
	void *res = NULL;
	enum kura_err r;

	if (tenant_id != 0)
		r = sq_list(priv, &of_tenant, &tenant_id, SIZE_MAX, pool, &res,
			    count, err);
	else
		r = sq_list(priv, &all, NULL, SIZE_MAX, pool, &res, count, err);
	if (r == KURA_OK)
		*out = res;
	return r;
}

#define KEYVER_COLS "SELECT " SQ_KEYVER_FIELDS("") " FROM key_versions "

static const struct sq_sql sql_keyver_list = {
	.what = "list key versions",
	.text = KEYVER_COLS "WHERE key_id = ?1 ORDER BY version",
};

void sq_keyver_fields(struct sq_stmt *st, int base, struct kura_key_version *v)
{
	memset(v, 0, sizeof(*v));
	v->key_id = sq_col_u64(st, base);
	v->version = (uint32_t)sq_col_range(st, base + 1, 1, UINT32_MAX,
					    "key version");
	sq_col_text(st, base + 2, v->kek_id, sizeof(v->kek_id), "kek id");
	v->state = (enum kura_key_version_state)sq_col_int(st, base + 3);
	v->created_ms = sq_col_i64(st, base + 4);
	v->destroyed_ms = sq_col_i64(st, base + 5);
}

void sq_keyver_row(struct sq_stmt *st, int base, struct kura_key_version *v)
{
	sq_keyver_fields(st, base, v);
	sq_col_row_mac(st, base + SQ_KEYVER_NCOLS - 1, SQ_ROW_KEY_VERSION, v);
}

/* One row of KEYVER_COLS, checked against its MAC. */
static void key_version_row(struct sq_stmt *st, void *out)
{
	sq_keyver_row(st, 0, out);
}

static const struct sq_sql sql_keyver_get = {
	.what = "get key version",
	.text = KEYVER_COLS "WHERE key_id = ?1 AND version = ?2",
};

/* Version version of key_id on c, checked; *found false for none. */
static enum kura_err keyver_read(struct sq_conn *c, uint64_t key_id,
				 uint32_t version, struct kura_key_version *v,
				 bool *found, struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_keyver_get, err);
	sq_bind_u64(&st, 1, key_id);
	sq_bind_i64(&st, 2, version);
	*found = sq_row(&st);
	if (*found)
		key_version_row(&st, v);
	return sq_end(&st);
}

static const struct sq_sql sql_keyver_write = {
	.what = "write key version",
	.text = "UPDATE key_versions SET state = ?3, destroyed_ms = ?4, "
		"mac = ?5 WHERE key_id = ?1 AND version = ?2",
};

/* Write version v (read in this transaction, then changed) with its new
 * MAC. */
static enum kura_err keyver_write(struct sq_conn *c,
				  const struct kura_key_version *v,
				  struct kura_error *err)
{
	struct sq_stmt st;
	enum kura_err r;

	sq_begin(&st, c, &sql_keyver_write, err);
	sq_bind_u64(&st, 1, v->key_id);
	sq_bind_i64(&st, 2, v->version);
	sq_bind_i64(&st, 3, (int)v->state);
	sq_bind_i64(&st, 4, v->destroyed_ms);
	sq_bind_row_mac(&st, 5, SQ_ROW_KEY_VERSION, v);
	r = sq_exec(&st);
	if (r == KURA_OK && st.changes != 1)
		r = kura_fail(err, KURA_ENOENT, "no version %u of key %llu",
			      v->version, (unsigned long long)v->key_id);
	return r;
}

enum kura_err sq_key_versions(void *priv, uint64_t key_id,
			      struct kura_pool *pool,
			      struct kura_key_version **out, size_t *count,
			      struct kura_error *err)
{
	static const struct sq_list list = { &sql_keyver_list,
					     sizeof(struct kura_key_version),
					     false, key_version_row };
	void *res = NULL;
	enum kura_err r =
		sq_list(priv, &list, &key_id, SIZE_MAX, pool, &res, count, err);

	if (r == KURA_OK)
		*out = res;
	return r;
}

/* ---- creating ---- */

enum kura_err sq_check_new_key(const struct kura_key *k, const char *kek_id,
			       struct kura_error *err)
{
	if (k == NULL || !sq_str_ok(k->name, sizeof(k->name), false) ||
	    !sq_str_ok(k->provider, sizeof(k->provider), false))
		return kura_fail(err, KURA_EINVAL, "bad key record");
	if (k->kind < KURA_KEY_BUCKET || k->kind > KURA_KEY_NAMED ||
	    (k->state != KURA_KEY_ENABLED && k->state != KURA_KEY_DISABLED) ||
	    k->current_version != 1)
		return kura_fail(err, KURA_EINVAL,
				 "bad key record '%s' (kind %d, state %d, "
				 "version %u)",
				 k->name, (int)k->kind, (int)k->state,
				 k->current_version);
	if (kek_id == NULL || !sq_str_ok(kek_id, KURA_KEK_ID_MAX, false))
		return kura_fail(err, KURA_EINVAL, "bad kek id for key '%s'",
				 k->name);
	return KURA_OK;
}

static const struct sq_sql sql_key_insert = {
	.what = "insert key",
	.text = "INSERT INTO keys (tenant_id, name, kind, state, "
		"current_version, provider, imported, created_ms, "
		"changed_ms) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8) "
		"RETURNING id",
};
static const struct sq_sql sql_keyver_insert = {
	.what = "insert key version",
	.text = "INSERT INTO key_versions (key_id, version, kek_id, state, "
		"created_ms, destroyed_ms, mac) VALUES (?1, ?2, ?3, ?4, ?5, "
		"0, ?6)",
};

/* Insert version v of key_id (active) with its KEK. */
static enum kura_err keyver_insert(struct sq_conn *c, uint64_t key_id,
				   uint32_t v, const char *kek_id,
				   int64_t created, struct kura_error *err)
{
	struct kura_key_version row = { .key_id = key_id,
					.version = v,
					.state = KURA_KEYVER_ACTIVE,
					.created_ms = created };
	struct sq_stmt st;

	if (snprintf(row.kek_id, sizeof(row.kek_id), "%s", kek_id) >=
	    (int)sizeof(row.kek_id))
		return kura_fail(err, KURA_EINVAL, "kek id too long");
	sq_begin(&st, c, &sql_keyver_insert, err);
	sq_bind_u64(&st, 1, key_id);
	sq_bind_i64(&st, 2, v);
	sq_bind_text(&st, 3, kek_id);
	sq_bind_i64(&st, 4, (int)row.state);
	sq_bind_i64(&st, 5, created);
	sq_bind_row_mac(&st, 6, SQ_ROW_KEY_VERSION, &row);
	return sq_exec(&st);
}

enum kura_err sq_key_insert(struct sq_conn *c, const struct kura_key *k,
			    const char *kek_id, int64_t created,
			    int64_t changed, uint64_t *id,
			    struct kura_error *err)
{
	struct sq_stmt st;
	struct kura_key row;
	uint64_t kid = 0;
	enum kura_err r = sq_tenant_check(c, k->tenant_id, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_key_insert, err);
	sq_bind_u64(&st, 1, k->tenant_id);
	sq_bind_text(&st, 2, k->name);
	sq_bind_i64(&st, 3, (int)k->kind);
	sq_bind_i64(&st, 4, (int)k->state);
	sq_bind_text(&st, 5, k->provider);
	sq_bind_i64(&st, 6, k->imported ? 1 : 0);
	sq_bind_i64(&st, 7, created);
	sq_bind_i64(&st, 8, changed);
	if (sq_row(&st))
		kid = sq_col_u64(&st, 0);
	r = sq_end_unique(&st, "key '%s' exists", k->name);
	if (r == KURA_OK) {
		/* The MAC covers the id, which only the insert assigns. */
		row = *k;
		row.id = kid;
		row.current_version = 1;
		row.created_ms = created;
		row.changed_ms = changed;
		r = key_write(c, &row, err);
	}
	if (r == KURA_OK)
		r = keyver_insert(c, kid, 1, kek_id, created, err);
	if (r == KURA_OK)
		*id = kid;
	return r;
}

struct key_create_arg {
	const struct kura_key *k;
	const char *kek_id;
	int64_t created, changed;
	uint64_t id; /* result */
};

static enum kura_err key_create_body(struct sq_conn *c, void *arg,
				     struct kura_error *err)
{
	struct key_create_arg *a = arg;
	enum kura_err r = sq_key_insert(c, a->k, a->kek_id, a->created,
					a->changed, &a->id, err);

	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_key_create(void *priv, struct kura_key *k, const char *kek_id,
			    struct kura_error *err)
{
	struct key_create_arg a = { k, kek_id, 0, 0, 0 };
	enum kura_err r = sq_check_new_key(k, kek_id, err);

	if (r != KURA_OK)
		return r;
	a.created = k->created_ms != 0 ? k->created_ms : kura_now_ms();
	a.changed = k->changed_ms != 0 ? k->changed_ms : a.created;
	r = sq_write_tx(priv, key_create_body, &a, err);
	if (r != KURA_OK)
		return r;
	k->id = a.id;
	k->created_ms = a.created;
	k->changed_ms = a.changed;
	return KURA_OK;
}

/* ---- lifecycle ---- */

/* Set k's state (and changed_ms) to state; k was read in this
 * transaction. */
static enum kura_err key_state_write(struct sq_conn *c, struct kura_key *k,
				     enum kura_key_state state,
				     struct kura_error *err)
{
	k->state = state;
	k->changed_ms = kura_now_ms();
	return key_write(c, k, err);
}

struct key_state_arg {
	uint64_t key_id;
	enum kura_key_state state;
};

static enum kura_err key_set_state_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	struct key_state_arg *a = arg;
	struct kura_key k;
	enum kura_err r = sq_key_fetch(c, a->key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state == KURA_KEY_DESTROYED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is destroyed",
				 k.name);
	if (k.state == a->state)
		return KURA_OK;
	r = key_state_write(c, &k, a->state, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_key_set_state(void *priv, uint64_t key_id,
			       enum kura_key_state state,
			       struct kura_error *err)
{
	struct key_state_arg a = { key_id, state };

	/* Destruction has its own call (key_destroyed). */
	if (state != KURA_KEY_ENABLED && state != KURA_KEY_DISABLED)
		return kura_fail(err, KURA_EINVAL, "bad key state %d",
				 (int)state);
	return sq_write_tx(priv, key_set_state_body, &a, err);
}

/* Whether the version exists, and whether a bucket key uses it or it is
 * the current version of a live key (which new bucket keys will use, so
 * it is never "unused"). */
static const struct sq_sql sql_keyver_in_use = {
	.what = "check key version",
	.text = "SELECT EXISTS (SELECT 1 FROM key_versions WHERE key_id = ?1 "
		"AND version = ?2), EXISTS (SELECT 1 FROM bucket_keys WHERE "
		"key_id = ?1 AND key_version = ?2) OR EXISTS (SELECT 1 FROM "
		"keys WHERE id = ?1 AND current_version = ?2 AND state != 3)",
};

enum kura_err sq_key_version_in_use(void *priv, uint64_t key_id,
				    uint32_t version, bool *in_use,
				    struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	bool exists = false, used = false;
	enum kura_err r = sq_conn_acquire(m, &c, err);

	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_keyver_in_use, err);
	sq_bind_u64(&st, 1, key_id);
	sq_bind_i64(&st, 2, version);
	if (sq_row(&st)) {
		exists = sq_col_int(&st, 0) != 0;
		used = sq_col_int(&st, 1) != 0;
	} else {
		sq_fail(&st, KURA_EIO, "sqlite: check key version: no row");
	}
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK && !exists)
		r = kura_fail(err, KURA_ENOENT, "no version %u of key %llu",
			      version, (unsigned long long)key_id);
	if (r == KURA_OK)
		*in_use = used;
	return r;
}

struct keyver_arg {
	uint64_t key_id;
	uint32_t version;
};

static enum kura_err key_version_destroyed_body(struct sq_conn *c, void *arg,
						struct kura_error *err)
{
	struct keyver_arg *a = arg;
	struct kura_key_version v;
	bool found = false;
	enum kura_err r =
		keyver_read(c, a->key_id, a->version, &v, &found, err);

	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no version %u of key %llu",
			      a->version, (unsigned long long)a->key_id);
	/* Recording it twice is harmless (a retried destruction). */
	if (r != KURA_OK || v.state == KURA_KEYVER_DESTROYED)
		return r;
	v.state = KURA_KEYVER_DESTROYED;
	v.destroyed_ms = kura_now_ms();
	r = keyver_write(c, &v, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_key_version_destroyed(void *priv, uint64_t key_id,
				       uint32_t version, struct kura_error *err)
{
	struct keyver_arg a = { key_id, version };

	return sq_write_tx(priv, key_version_destroyed_body, &a, err);
}

static const struct sq_sql sql_keyver_live = {
	.what = "lookup",
	.text = "SELECT 1 FROM key_versions WHERE key_id = ?1 AND state != 3 "
		"LIMIT 1",
};
/* Parts lose their bucket key first (the reference is RESTRICT), then the
 * bucket keys go. */
static const struct sq_sql sql_key_destroy_steps[] = {
	{
		.what = "destroy key",
		.text = "UPDATE parts SET bk_id = NULL WHERE bk_id IN "
			"(SELECT id FROM bucket_keys WHERE key_id = ?1)",
	},
	{
		.what = "destroy key",
		.text = "UPDATE upload_parts SET bk_id = NULL WHERE bk_id IN "
			"(SELECT id FROM bucket_keys WHERE key_id = ?1)",
	},
	{
		.what = "destroy key",
		.text = "DELETE FROM bucket_keys WHERE key_id = ?1",
	},
};

static enum kura_err key_destroyed_body(struct sq_conn *c, void *arg,
					struct kura_error *err)
{
	const uint64_t *key_id = arg;
	struct kura_key k;
	bool live = false;
	enum kura_err r = sq_key_fetch(c, *key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state == KURA_KEY_DESTROYED)
		return KURA_OK; /* idempotent */
	r = sq_exists_u64(c, &sql_keyver_live, *key_id, &live, err);
	if (r == KURA_OK && live)
		r = kura_fail(err, KURA_ESTATE,
			      "key '%s' has versions not yet destroyed",
			      k.name);
	for (size_t i = 0; r == KURA_OK && i < 3; i++)
		r = sq_exec_u64(c, &sql_key_destroy_steps[i], *key_id, err);
	if (r == KURA_OK)
		r = key_state_write(c, &k, KURA_KEY_DESTROYED, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_key_destroyed(void *priv, uint64_t key_id,
			       struct kura_error *err)
{
	return sq_write_tx(priv, key_destroyed_body, &key_id, err);
}

/* ---- rotation ---- */

static const struct sq_sql sql_keyver_active = {
	.what = "retire key version",
	.text = KEYVER_COLS "WHERE key_id = ?1 AND state = 1 LIMIT 8",
};

/* Every active version of key_id (one, normally) becomes retired, each
 * read (so checked) and written back with its MAC. */
static enum kura_err keyver_retire(struct sq_conn *c, uint64_t key_id,
				   struct kura_error *err)
{
	struct kura_key_version v[8];
	size_t n;
	enum kura_err r;

	do {
		struct sq_stmt st;

		n = 0;
		sq_begin(&st, c, &sql_keyver_active, err);
		sq_bind_u64(&st, 1, key_id);
		while (n < 8 && sq_row(&st))
			key_version_row(&st, &v[n++]);
		r = sq_end(&st);
		for (size_t i = 0; r == KURA_OK && i < n; i++) {
			v[i].state = KURA_KEYVER_RETIRED;
			r = keyver_write(c, &v[i], err);
		}
	} while (r == KURA_OK && n == 8);
	return r;
}
static const struct sq_sql sql_bk_stale = {
	.what = "count bucket keys",
	.text = "SELECT count(*) FROM bucket_keys WHERE key_id = ?1 AND "
		"current = 1 AND key_version != ?2",
};

struct rotate_arg {
	uint64_t key_id;
	uint32_t expected;
	const char *kek_id;
	const struct kura_bucket_key *bks;
	size_t n;
	int64_t now;
	int64_t *created; /* n: the creation times to store */
	uint64_t *ids;	  /* n: results */
};

/* The key's next version v becomes current (it first: the new bucket
 * keys reference it); k was read in this transaction. */
static enum kura_err rotate_version(struct sq_conn *c,
				    const struct rotate_arg *a,
				    struct kura_key *k, uint32_t v,
				    struct kura_error *err)
{
	enum kura_err r = keyver_retire(c, a->key_id, err);

	if (r == KURA_OK)
		r = keyver_insert(c, a->key_id, v, a->kek_id, a->now, err);
	if (r != KURA_OK)
		return r;
	k->current_version = v;
	k->changed_ms = a->now;
	return key_write(c, k, err);
}

/* Bucket key i of the rotation replaces its bucket's current one, which
 * must have been of an older version (a bucket named twice finds the new
 * one and fails). */
static enum kura_err rotate_bucket(struct sq_conn *c, struct rotate_arg *a,
				   size_t i, uint32_t v, const char *name,
				   struct kura_error *err)
{
	const struct kura_bucket_key *bk = &a->bks[i];
	struct kura_bucket_key old;
	bool found = false;
	enum kura_err r;

	if (bk->key_id != a->key_id || bk->key_version != v)
		return kura_fail(err, KURA_EINVAL,
				 "bucket key %zu is for key %llu version %u, "
				 "not %llu version %u",
				 i, (unsigned long long)bk->key_id,
				 bk->key_version, (unsigned long long)a->key_id,
				 v);
	/* Retire the pair's current bucket key unless it is already the new
	 * version's (a bucket named twice). */
	r = sq_bk_current(c, bk->bucket_id, a->key_id, &old, &found, err);
	if (r == KURA_OK && found && old.key_version != v) {
		old.current = false;
		old.retired_ms = a->now;
		r = sq_bk_write(c, &old, err);
	} else if (r == KURA_OK) {
		r = kura_fail(err, KURA_ESTATE,
			      "bucket %016llx does not use key '%s' (or is "
			      "named twice)",
			      (unsigned long long)bk->bucket_id, name);
	}
	memset(&old, 0, sizeof(old));
	if (r == KURA_OK)
		r = sq_bk_insert(c, bk->bucket_id, a->key_id, v, bk->wrapped,
				 bk->wrapped_len, a->created[i], &a->ids[i],
				 err);
	return r;
}

/* Any current bucket key left on an old version belongs to a bucket that
 * started using the key after the caller listed them. */
static enum kura_err rotate_stale(struct sq_conn *c, uint64_t key_id,
				  uint32_t v, const char *name,
				  struct kura_error *err)
{
	struct sq_stmt st;
	int64_t n = -1;
	enum kura_err r;

	sq_begin(&st, c, &sql_bk_stale, err);
	sq_bind_u64(&st, 1, key_id);
	sq_bind_i64(&st, 2, v);
	if (sq_row(&st))
		n = sq_col_i64(&st, 0);
	else
		sq_fail(&st, KURA_EIO, "sqlite: count bucket keys: no row");
	r = sq_end(&st);
	if (r == KURA_OK && n != 0)
		r = kura_fail(err, KURA_ESTATE,
			      "key '%s': %lld more buckets use it now", name,
			      (long long)n);
	return r;
}

static enum kura_err key_rotate_body(struct sq_conn *c, void *arg,
				     struct kura_error *err)
{
	struct rotate_arg *a = arg;
	struct kura_key k;
	uint32_t v;
	enum kura_err r = sq_key_fetch(c, a->key_id, &k, err);

	if (r != KURA_OK)
		return r;
	if (k.state == KURA_KEY_DESTROYED)
		return kura_fail(err, KURA_ESTATE, "key '%s' is destroyed",
				 k.name);
	if (k.current_version != a->expected)
		return kura_fail(err, KURA_ESTATE,
				 "key '%s' is at version %u, not %u", k.name,
				 k.current_version, a->expected);
	if (k.current_version == UINT32_MAX)
		return kura_fail(err, KURA_EINVAL, "key '%s': no more versions",
				 k.name);
	v = k.current_version + 1;
	r = rotate_version(c, a, &k, v, err);
	for (size_t i = 0; r == KURA_OK && i < a->n; i++)
		r = rotate_bucket(c, a, i, v, k.name, err);
	if (r == KURA_OK)
		r = rotate_stale(c, a->key_id, v, k.name, err);
	if (r == KURA_OK)
		r = sq_gen_bump(c, err);
	return r;
}

enum kura_err sq_key_rotate(void *priv, uint64_t key_id,
			    uint32_t expected_version, const char *kek_id,
			    struct kura_bucket_key *new_bks, size_t n,
			    struct kura_error *err)
{
	struct rotate_arg a = { key_id, expected_version, kek_id, new_bks,
				n,	kura_now_ms(),	  NULL,	  NULL };
	enum kura_err r = KURA_OK;

	if (kek_id == NULL || !sq_str_ok(kek_id, KURA_KEK_ID_MAX, false) ||
	    (n > 0 && new_bks == NULL) || n > SIZE_MAX / sizeof(int64_t))
		return kura_fail(err, KURA_EINVAL, "bad rotation");
	for (size_t i = 0; r == KURA_OK && i < n; i++)
		r = sq_check_new_bk(&new_bks[i], err);
	if (r != KURA_OK)
		return r;
	a.created = calloc(n > 0 ? n : 1, sizeof(*a.created));
	a.ids = calloc(n > 0 ? n : 1, sizeof(*a.ids));
	if (a.created == NULL || a.ids == NULL) {
		r = kura_fail(err, KURA_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		a.created[i] = new_bks[i].created_ms != 0 ?
				       new_bks[i].created_ms :
				       a.now;
	r = sq_write_tx(priv, key_rotate_body, &a, err);
	if (r != KURA_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		new_bks[i].id = a.ids[i];
		new_bks[i].current = true;
		new_bks[i].created_ms = a.created[i];
		new_bks[i].retired_ms = 0;
	}
out:
	free(a.created);
	free(a.ids);
	return r;
}

/* ---- the row MAC upgrade (rowmacs.c) ---- */

static const struct sq_sql sql_key_unmacd = {
	.what = "row MAC upgrade",
	.text = KEY_COLS "WHERE mac IS NULL",
};
static const struct sq_sql sql_key_mac = {
	.what = "row MAC upgrade",
	.text = "UPDATE keys SET mac = ?1 WHERE id = ?2 AND mac IS NULL",
};

static void key_fields(struct sq_stmt *st, void *row)
{
	sq_key_fields(st, 0, row);
}

static void key_key(struct sq_stmt *st, const void *row)
{
	sq_bind_u64(st, 2, ((const struct kura_key *)row)->id);
}

const struct sq_mac_table sq_key_macs = {
	SQ_ROW_KEY,	 sizeof(struct kura_key),
	&sql_key_unmacd, key_fields,
	&sql_key_mac,	 key_key,
};

static const struct sq_sql sql_keyver_unmacd = {
	.what = "row MAC upgrade",
	.text = KEYVER_COLS "WHERE mac IS NULL",
};
static const struct sq_sql sql_keyver_mac = {
	.what = "row MAC upgrade",
	.text = "UPDATE key_versions SET mac = ?1 WHERE key_id = ?2 AND "
		"version = ?3 AND mac IS NULL",
};

static void keyver_fields(struct sq_stmt *st, void *row)
{
	sq_keyver_fields(st, 0, row);
}

static void keyver_key(struct sq_stmt *st, const void *row)
{
	const struct kura_key_version *v = row;

	sq_bind_u64(st, 2, v->key_id);
	sq_bind_i64(st, 3, v->version);
}

const struct sq_mac_table sq_key_version_macs = {
	SQ_ROW_KEY_VERSION, sizeof(struct kura_key_version),
	&sql_keyver_unmacd, keyver_fields,
	&sql_keyver_mac,    keyver_key,
};

/*
 * settings.c — small named values of the SQLite metadata store (the sealed
 * system key, initialisation markers, the upgrade's seal_pending): at most
 * KURA_SETTING_MAX bytes each, the first writer wins, a setting may be
 * removed.
 *
 * Threading: any thread; each call takes its own connection.
 */
#include "sqlite_int.h"
#include "kura/banned.h"

#define SETTING_NAME_MAX 256

static const struct sq_sql sql_setting_get = {
	.what = "get setting",
	.text = "SELECT value FROM settings WHERE name = ?1",
};

enum kura_err sq_setting_get(void *priv, const char *name, uint8_t *val,
			     size_t cap, size_t *len, struct kura_error *err)
{
	struct sq_store *m = priv;
	struct sq_conn *c = NULL;
	struct sq_stmt st;
	const void *p;
	int n = 0;
	bool found;
	enum kura_err r;

	if (name == NULL)
		return kura_fail(err, KURA_EINVAL, "setting name missing");
	r = sq_conn_acquire(m, &c, err);
	if (r != KURA_OK)
		return r;
	sq_begin(&st, c, &sql_setting_get, err);
	sq_bind_text(&st, 1, name);
	found = sq_row(&st);
	if (found) {
		p = sqlite3_column_blob(st.s, 0);
		n = sqlite3_column_bytes(st.s, 0);
		if (n < 0 || (p == NULL && n > 0))
			sq_fail(&st, KURA_ENOMEM, "sqlite: read setting '%s'",
				name);
		else if ((size_t)n > cap)
			sq_fail(&st, KURA_ETOOBIG,
				"setting '%s' has %d bytes, room for %zu", name,
				n, cap);
		else if (n > 0)
			memcpy(val, p, (size_t)n);
	}
	r = sq_end(&st);
	sq_conn_release(m, c);
	if (r == KURA_OK && !found)
		r = kura_fail(err, KURA_ENOENT, "no setting '%s'", name);
	if (r == KURA_OK)
		*len = (size_t)n;
	return r;
}

static const struct sq_sql sql_setting_insert = {
	.what = "insert setting",
	.text = "INSERT INTO settings (name, value) VALUES (?1, ?2)",
};

struct setting_arg {
	const char *name;
	const uint8_t *val;
	size_t len;
};

static enum kura_err setting_insert_body(struct sq_conn *c, void *arg,
					 struct kura_error *err)
{
	struct setting_arg *a = arg;
	struct sq_stmt st;

	sq_begin(&st, c, &sql_setting_insert, err);
	sq_bind_text(&st, 1, a->name);
	sq_bind_blob(&st, 2, a->val, a->len);
	sq_run(&st);
	return sq_end_unique(&st, "setting '%s' exists", a->name);
}

enum kura_err sq_setting_insert(void *priv, const char *name,
				const uint8_t *val, size_t len,
				struct kura_error *err)
{
	struct setting_arg a = { name, val, len };

	if (name == NULL || !sq_str_ok(name, SETTING_NAME_MAX, false))
		return kura_fail(err, KURA_EINVAL, "bad setting name");
	if (len > KURA_SETTING_MAX)
		return kura_fail(err, KURA_ETOOBIG,
				 "setting '%s' too large (%zu bytes)", name,
				 len);
	if (val == NULL && len > 0)
		return kura_fail(err, KURA_EINVAL, "setting value missing");
	return sq_write_tx(priv, setting_insert_body, &a, err);
}

static const struct sq_sql sql_setting_delete = {
	.what = "delete setting",
	.text = "DELETE FROM settings WHERE name = ?1",
};

static enum kura_err setting_delete_body(struct sq_conn *c, void *arg,
					 struct kura_error *err)
{
	struct sq_stmt st;

	sq_begin(&st, c, &sql_setting_delete, err);
	sq_bind_text(&st, 1, arg);
	return sq_exec(&st);
}

enum kura_err sq_setting_delete(void *priv, const char *name,
				struct kura_error *err)
{
	if (name == NULL || strnlen(name, SETTING_NAME_MAX) >= SETTING_NAME_MAX)
		return kura_fail(err, KURA_EINVAL, "bad setting name");
	return sq_write_tx(priv, setting_delete_body, (void *)name, err);
}

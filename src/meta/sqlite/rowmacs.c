/*
 * rowmacs.c — row MACs in the SQLite store (meta.h "Row MACs"): the row
 * key, checking the MAC of a row as it is read, binding the MAC of a row
 * as it is written, and the upgrade that gives rows written before schema
 * 5 their MAC.
 *
 * A row without a MAC is the upgrade's work while its marker (the
 * "seal_pending" setting the schema-5 migration leaves in a database that
 * had rows) is set — KURA_EBUSY, "not yet" — and an integrity failure
 * otherwise.  Planting the marker changes the answer from one refusal to
 * another; what gives a row its MAC is the daemon's decision, from the
 * audit log, that this is the upgrade's first run (src/daemon/seal_job.c).
 *
 * Threading: the row key is written once, before any call that reads it
 * (set_row_key happens while the service opens, before other threads).
 */
#include <stdio.h>

#include <openssl/crypto.h>

#include "kura/secret.h"
#include "sqlite_int.h"
#include "kura/banned.h"

enum kura_err sq_set_row_key(void *priv, const uint8_t key[KURA_ROW_KEY_LEN],
			     struct kura_error *err)
{
	struct sq_store *m = priv;

	if (key == NULL)
		return kura_fail(err, KURA_EINVAL, "row key missing");
	memcpy(m->row_key, key, KURA_ROW_KEY_LEN);
	m->row_key_set = true;
	return KURA_OK;
}

static bool row_mac(const struct sq_store *m, enum sq_row_kind kind,
		    const void *row, uint8_t out[KURA_ROW_MAC_LEN])
{
	switch (kind) {
	case SQ_ROW_TENANT:
		return kura_row_mac_tenant(m->row_key, row, out);
	case SQ_ROW_ACCESS_KEY:
		return kura_row_mac_access_key(m->row_key, row, out);
	case SQ_ROW_BUCKET:
		return kura_row_mac_bucket(m->row_key, row, out);
	case SQ_ROW_KEY:
		return kura_row_mac_key(m->row_key, row, out);
	case SQ_ROW_KEY_VERSION:
		return kura_row_mac_key_version(m->row_key, row, out);
	case SQ_ROW_BUCKET_KEY:
		return kura_row_mac_bucket_key(m->row_key, row, out);
	}
	return false;
}

/* "tenant 3", "access key 'AKIA...'", ... for messages. */
static void row_name(enum sq_row_kind kind, const void *row, char *buf,
		     size_t cap)
{
	const struct kura_tenant *t = row;
	const struct kura_access_key *ak = row;
	const struct kura_bucket *b = row;
	const struct kura_key *k = row;
	const struct kura_key_version *v = row;
	const struct kura_bucket_key *bk = row;

	switch (kind) {
	case SQ_ROW_TENANT:
		snprintf(buf, cap, "tenant %llu", (unsigned long long)t->id);
		return;
	case SQ_ROW_ACCESS_KEY:
		snprintf(buf, cap, "access key '%s'", ak->id);
		return;
	case SQ_ROW_BUCKET:
		snprintf(buf, cap, "bucket %llu", (unsigned long long)b->id);
		return;
	case SQ_ROW_KEY:
		snprintf(buf, cap, "key %llu", (unsigned long long)k->id);
		return;
	case SQ_ROW_KEY_VERSION:
		snprintf(buf, cap, "version %u of key %llu", v->version,
			 (unsigned long long)v->key_id);
		return;
	case SQ_ROW_BUCKET_KEY:
		snprintf(buf, cap, "bucket key %llu",
			 (unsigned long long)bk->id);
		return;
	}
	snprintf(buf, cap, "row");
}

static const struct sq_sql sql_upgrade_pending = {
	.what = "lookup",
	.text = "SELECT 1 FROM settings WHERE name = 'seal_pending'",
};

/* Is the schema-5 upgrade still to run?  Errors read as no: the answer
 * is then an integrity failure, which is the safe one. */
static bool upgrade_pending(struct sq_conn *c)
{
	struct kura_error e = { 0 };
	struct sq_stmt st;
	bool found;

	sq_begin(&st, c, &sql_upgrade_pending, &e);
	found = sq_row(&st);
	return sq_end(&st) == KURA_OK && found;
}

void sq_col_row_mac(struct sq_stmt *st, int i, enum sq_row_kind kind,
		    const void *row)
{
	struct sq_store *m = st->c->m;
	uint8_t want[KURA_ROW_MAC_LEN];
	char name[160];
	const void *p;
	int n;

	if (sq_failed(st))
		return;
	if (!m->row_key_set) {
		sq_fail(st, KURA_ESTATE, "metadata: the row key is not set");
		return;
	}
	row_name(kind, row, name, sizeof(name));
	if (sq_col_null(st, i)) {
		if (upgrade_pending(st->c))
			sq_fail(st, KURA_EBUSY,
				"%s was written before schema 5 and has no MAC "
				"yet: start the server to upgrade it",
				name);
		else
			sq_fail(st, KURA_EINTEGRITY,
				"%s has no MAC: the row was added to the "
				"database or its MAC removed",
				name);
		return;
	}
	p = sqlite3_column_blob(st->s, i);
	n = sqlite3_column_bytes(st->s, i);
	if (!row_mac(m, kind, row, want)) {
		sq_fail(st, KURA_EIO, "%s: cannot compute its MAC", name);
		return;
	}
	if (p == NULL || n != KURA_ROW_MAC_LEN ||
	    CRYPTO_memcmp(p, want, KURA_ROW_MAC_LEN) != 0)
		sq_fail(st, KURA_EINTEGRITY,
			"%s does not match its MAC: the row was altered in "
			"the database",
			name);
}

void sq_bind_row_mac(struct sq_stmt *st, int i, enum sq_row_kind kind,
		     const void *row)
{
	struct sq_store *m = st->c->m;
	uint8_t mac[KURA_ROW_MAC_LEN];

	if (sq_failed(st))
		return;
	if (!m->row_key_set) {
		sq_fail(st, KURA_ESTATE, "metadata: the row key is not set");
		return;
	}
	if (!row_mac(m, kind, row, mac)) {
		sq_fail(st, KURA_EIO, "cannot compute a row MAC");
		return;
	}
	st->rc = sqlite3_bind_blob(st->s, i, mac, (int)sizeof(mac),
				   SQLITE_TRANSIENT);
}

/* ---- the upgrade ---- */

/* Give every row of table t without a MAC its MAC. */
static enum kura_err upgrade_table(struct sq_conn *c,
				   const struct sq_mac_table *t, size_t *rows,
				   struct kura_error *err)
{
	struct sq_stmt st;
	struct sq_array a;
	void *row;
	void *all = NULL;
	size_t n = 0;
	struct kura_pool *pool = kura_pool_new(0);
	enum kura_err r;

	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "out of memory");
	/* Access keys hold sealed secrets: the scratch copy is wiped. */
	sq_array_init(&a, t->elem, 0, true);
	sq_begin(&st, c, t->select, err);
	while (sq_row(&st) && (row = sq_array_add(&a, &st)) != NULL)
		t->read(&st, row);
	r = sq_array_end(&a, sq_end(&st), pool, &all, &n, err);
	for (size_t i = 0; r == KURA_OK && i < n; i++) {
		row = (unsigned char *)all + i * t->elem;
		sq_begin(&st, c, t->update, err);
		sq_bind_row_mac(&st, 1, t->kind, row);
		t->bind_key(&st, row);
		r = sq_exec(&st);
		if (r == KURA_OK && st.changes != 1)
			r = kura_fail(
				err, KURA_ESTATE,
				"row MAC upgrade: a row changed meanwhile");
	}
	if (all != NULL)
		kura_wipe(all, n * t->elem);
	kura_pool_free(pool);
	if (r == KURA_OK)
		*rows += n;
	return r;
}

static enum kura_err upgrade_body(struct sq_conn *c, void *arg,
				  struct kura_error *err)
{
	static const struct sq_mac_table *const tables[] = {
		&sq_tenant_macs, &sq_access_key_macs,  &sq_bucket_macs,
		&sq_key_macs,	 &sq_key_version_macs, &sq_bucket_key_macs,
	};
	size_t *rows = arg;
	enum kura_err r = KURA_OK;

	*rows = 0; /* the body may run again */
	for (size_t i = 0;
	     r == KURA_OK && i < sizeof(tables) / sizeof(tables[0]); i++)
		r = upgrade_table(c, tables[i], rows, err);
	return r;
}

enum kura_err sq_row_mac_upgrade(void *priv, size_t *rows,
				 struct kura_error *err)
{
	struct sq_store *m = priv;
	size_t n = 0;
	enum kura_err r;

	if (!m->row_key_set)
		return kura_fail(err, KURA_ESTATE,
				 "metadata: the row key is not set");
	r = sq_write_tx(m, upgrade_body, &n, err);
	if (r == KURA_OK && rows != NULL)
		*rows = n;
	return r;
}

/*
 * search.c — kura_audit_search over an SQLite index (DATA_DIR/audit/
 * index.db, WAL) of the fields queries use: time, tenant, bucket, key,
 * operation, request id, and where each record lies (segment, offset).
 *
 * The index is a cache, never evidence.  It catches up with the log at
 * every search, from where it stopped (it remembers the last record it
 * indexed and that record's leaf hash; when that record is no longer
 * where it was — the log was replaced — it is rebuilt from scratch; a
 * damaged database file is deleted and rebuilt).  Every candidate it
 * returns is read back from the log and kept only when its stored leaf
 * hash matches its bytes and its own fields match the query, so a
 * tampered index can hide records but never invent or alter one.
 *
 * Thread-safe: each call opens its own connection; concurrent catch-ups
 * serialise on SQLite's write lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit_int.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/log.h"
#include "kura/banned.h"

#define COMMIT_EVERY 100000
#define BULK_BYTES \
	(32ull     \
	 << 20) /* catch-ups larger than this drop and rebuild the indexes */
#define DEFAULT_LIMIT 1000

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS state(k TEXT PRIMARY KEY, v);"
	"CREATE TABLE IF NOT EXISTS rec(seq INTEGER PRIMARY KEY, time_ms INTEGER,"
	" tenant_id INTEGER, tenant TEXT, bucket TEXT, key TEXT, op TEXT,"
	" request_id TEXT, segment INTEGER, offset INTEGER);";

static const char indexes[] =
	"CREATE INDEX IF NOT EXISTS rec_object ON rec(bucket, key, time_ms);"
	"CREATE INDEX IF NOT EXISTS rec_time ON rec(time_ms);"
	"CREATE INDEX IF NOT EXISTS rec_tenant ON rec(tenant_id, time_ms);"
	"CREATE INDEX IF NOT EXISTS rec_op ON rec(op, time_ms);"
	"CREATE INDEX IF NOT EXISTS rec_request ON rec(request_id);";

static const char drop_indexes[] =
	"DROP INDEX IF EXISTS rec_object; DROP INDEX IF EXISTS rec_time;"
	"DROP INDEX IF EXISTS rec_tenant; DROP INDEX IF EXISTS rec_op;"
	"DROP INDEX IF EXISTS rec_request;";

static enum kura_err sql_fail(struct kura_error *err, sqlite3 *db,
			      const char *what)
{
	return kura_fail(err, KURA_EIO, "audit index: %s: %s", what,
			 db ? sqlite3_errmsg(db) : "cannot open");
}

static enum kura_err exec(sqlite3 *db, const char *sql, struct kura_error *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sql_fail(err, db, sql);
	return KURA_OK;
}

static enum kura_err open_index(const char *dir, sqlite3 **out,
				struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	snprintf(path, sizeof(path), "%s/index.db", dir);
	for (int attempt = 0; attempt < 2; attempt++) {
		sqlite3 *db = NULL;
		int r = sqlite3_open_v2(path, &db,
					SQLITE_OPEN_READWRITE |
						SQLITE_OPEN_CREATE |
						SQLITE_OPEN_NOMUTEX,
					NULL);
		if (r == SQLITE_OK) {
			sqlite3_busy_timeout(db, 30000);
			r = sqlite3_exec(db, schema, NULL, NULL, NULL);
			if (r == SQLITE_OK)
				r = sqlite3_exec(db, indexes, NULL, NULL, NULL);
		}
		if (r == SQLITE_OK) {
			*out = db;
			return KURA_OK;
		}
		if (r != SQLITE_CORRUPT && r != SQLITE_NOTADB) {
			enum kura_err rc = sql_fail(err, db, "open");
			sqlite3_close(db);
			return rc;
		}
		/* Only a cache: a damaged one is thrown away. */
		sqlite3_close(db);
		kura_warn(NULL, "audit: index '%s' is damaged: rebuilding it",
			  path);
		unlink(path);
		char side[AUDIT_PATH_MAX + 8];
		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
	return kura_fail(err, KURA_EIO, "audit index '%s' cannot be rebuilt",
			 path);
}

struct state {
	bool have;
	uint64_t next_seq, next_seg, next_off, last_seg, last_off;
	uint8_t last_hash[AUDIT_HASH];
};

static bool state_get(sqlite3 *db, const char *k, sqlite3_int64 *v)
{
	sqlite3_stmt *st = NULL;
	bool ok = false;
	if (sqlite3_prepare_v2(db, "SELECT v FROM state WHERE k = ?", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		ok = true;
	}
	sqlite3_finalize(st);
	return ok;
}

static void load_state(sqlite3 *db, struct state *s)
{
	sqlite3_int64 v[5];
	sqlite3_stmt *st = NULL;
	memset(s, 0, sizeof(*s));
	const char *keys[] = { "next_seq", "next_seg", "next_off", "last_seg",
			       "last_off" };
	for (int i = 0; i < 5; i++)
		if (!state_get(db, keys[i], &v[i]) || v[i] < 0)
			return;
	if (sqlite3_prepare_v2(db, "SELECT v FROM state WHERE k = 'last_hash'",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW ||
	    sqlite3_column_bytes(st, 0) != AUDIT_HASH) {
		sqlite3_finalize(st);
		return;
	}
	memcpy(s->last_hash, sqlite3_column_blob(st, 0), AUDIT_HASH);
	sqlite3_finalize(st);
	s->next_seq = (uint64_t)v[0], s->next_seg = (uint64_t)v[1];
	s->next_off = (uint64_t)v[2], s->last_seg = (uint64_t)v[3];
	s->last_off = (uint64_t)v[4];
	s->have = true;
}

/* Read the entry at off of segment segno (for checking, not trusting). */
static enum kura_err read_entry(const char *dir, uint64_t segno, uint64_t off,
				int *fd_cache, uint64_t *seg_cache,
				struct kura_buf *out, uint8_t hash[AUDIT_HASH])
{
	char path[AUDIT_PATH_MAX];
	uint8_t len_be[4];
	if (*fd_cache < 0 || *seg_cache != segno) {
		if (*fd_cache >= 0)
			close(*fd_cache);
		audit_seg_path(dir, segno, path, sizeof(path));
		*fd_cache = open(path, O_RDONLY | O_CLOEXEC);
		*seg_cache = segno;
		if (*fd_cache < 0)
			return KURA_ENOENT;
	}
	if (off < AUDIT_SEG_HEADER_FIXED ||
	    kura_pread_all(*fd_cache, len_be, 4, (off_t)off, NULL) != KURA_OK)
		return KURA_ENOENT;
	uint32_t n = (uint32_t)len_be[0] << 24 | (uint32_t)len_be[1] << 16 |
		     (uint32_t)len_be[2] << 8 | len_be[3];
	if (n == 0 || n > AUDIT_RECORD_MAX)
		return KURA_ENOENT;
	kura_buf_reset(out);
	char *tmp = malloc((size_t)n + AUDIT_HASH);
	if (tmp == NULL)
		return KURA_ENOMEM;
	enum kura_err rc = kura_pread_all(
		*fd_cache, tmp, (size_t)n + AUDIT_HASH, (off_t)off + 4, NULL);
	if (rc == KURA_OK) {
		memcpy(hash, tmp + n, AUDIT_HASH);
		uint8_t h[AUDIT_HASH];
		audit_leaf_hash(tmp, n, h);
		rc = memcmp(h, hash, AUDIT_HASH) == 0 ?
			     kura_buf_add(out, tmp, n) :
			     KURA_EINTEGRITY;
	} else {
		rc = KURA_ENOENT;
	}
	free(tmp);
	return rc;
}

struct indexer {
	sqlite3 *db;
	sqlite3_stmt *ins;
	uint64_t count;
	struct kura_buf s[5];
	struct state last;
	bool any;
	enum kura_err rc;
};

static void bind_text(sqlite3_stmt *st, int col, struct kura_str v,
		      struct kura_buf *b)
{
	kura_buf_reset(b);
	if (v.p == NULL || audit_json_unescape(v, b) != KURA_OK) {
		sqlite3_bind_null(st, col);
		return;
	}
	sqlite3_bind_text(st, col, b->data ? b->data : "", (int)b->len,
			  SQLITE_STATIC);
}

static enum kura_err index_one(void *arg, uint64_t seq,
			       const struct audit_entry *e, uint64_t segno,
			       uint64_t off, bool *stop, struct kura_error *err)
{
	struct indexer *x = arg;
	struct audit_fields f;
	if (audit_record_scan((const char *)e->rec, e->rec_len, &f) != KURA_OK)
		memset(&f, 0, sizeof(f));
	sqlite3_stmt *st = x->ins;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	if (f.time_ms >= 0 && f.time.p)
		sqlite3_bind_int64(st, 2, f.time_ms);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)f.tenant_id);
	bind_text(st, 4, f.tenant, &x->s[0]);
	bind_text(st, 5, f.bucket, &x->s[1]);
	bind_text(st, 6, f.key, &x->s[2]);
	bind_text(st, 7, f.op, &x->s[3]);
	bind_text(st, 8, f.request_id, &x->s[4]);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)segno);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)off);
	if (sqlite3_step(st) != SQLITE_DONE)
		return sql_fail(err, x->db, "insert");
	x->last.next_seq = seq + 1;
	x->last.next_seg = segno;
	x->last.next_off = off + e->len;
	x->last.last_seg = segno;
	x->last.last_off = off;
	memcpy(x->last.last_hash, e->hash, AUDIT_HASH);
	x->any = true;
	if (++x->count % COMMIT_EVERY == 0) {
		enum kura_err rc = exec(x->db, "COMMIT; BEGIN IMMEDIATE", err);
		if (rc != KURA_OK)
			return rc;
	}
	return KURA_OK;
}

static enum kura_err save_state(sqlite3 *db, const struct state *s,
				struct kura_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *keys[] = { "next_seq", "next_seg", "next_off", "last_seg",
			       "last_off" };
	uint64_t v[] = { s->next_seq, s->next_seg, s->next_off, s->last_seg,
			 s->last_off };
	if (sqlite3_prepare_v2(
		    db, "INSERT OR REPLACE INTO state(k, v) VALUES (?, ?)", -1,
		    &st, NULL) != SQLITE_OK)
		return sql_fail(err, db, "state");
	enum kura_err rc = KURA_OK;
	for (int i = 0; i < 6 && rc == KURA_OK; i++) {
		sqlite3_reset(st);
		if (i < 5) {
			sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)v[i]);
		} else {
			sqlite3_bind_text(st, 1, "last_hash", -1,
					  SQLITE_STATIC);
			sqlite3_bind_blob(st, 2, s->last_hash, AUDIT_HASH,
					  SQLITE_STATIC);
		}
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = sql_fail(err, db, "state");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Bring the index up to the snapshot. */
static enum kura_err catch_up(const char *dir, sqlite3 *db,
			      const struct audit_snapshot *s,
			      struct kura_error *err)
{
	struct indexer x = { .db = db };
	struct state st;
	enum kura_err rc = exec(db, "BEGIN IMMEDIATE", err);
	if (rc != KURA_OK)
		return rc;
	load_state(db, &st);
	if (st.have) {
		/* Is the last record indexed still there, unchanged? */
		struct kura_buf b;
		uint8_t h[AUDIT_HASH];
		int fd = -1;
		uint64_t seg = 0;
		bool present = false;
		for (size_t i = 0; i < s->nsegs; i++)
			present |= s->segs[i] == st.last_seg;
		kura_buf_init(&b, AUDIT_RECORD_MAX);
		enum kura_err r2 = present ? read_entry(dir, st.last_seg,
							st.last_off, &fd, &seg,
							&b, h) :
					     KURA_OK;
		if (fd >= 0)
			close(fd);
		kura_buf_release(&b);
		if (r2 != KURA_OK ||
		    (present && memcmp(h, st.last_hash, AUDIT_HASH) != 0)) {
			kura_warn(
				NULL,
				"audit: the log changed under the index: rebuilding it");
			memset(&st, 0, sizeof(st));
			rc = exec(db, "DELETE FROM rec; DELETE FROM state",
				  err);
		}
	}
	uint64_t pending = 0;
	for (size_t i = 0; i < s->nsegs; i++)
		if (!st.have || s->segs[i] >= st.next_seg)
			pending += s->sizes[i] -
				   (st.have && s->segs[i] == st.next_seg ?
					    (st.next_off < s->sizes[i] ?
						     st.next_off :
						     s->sizes[i]) :
					    0);
	bool bulk = pending > BULK_BYTES;
	if (rc == KURA_OK && bulk)
		rc = exec(db, drop_indexes, err);
	if (rc == KURA_OK &&
	    sqlite3_prepare_v2(
		    db,
		    "INSERT OR REPLACE INTO rec VALUES (?,?,?,?,?,?,?,?,?,?)",
		    -1, &x.ins, NULL) != SQLITE_OK)
		rc = sql_fail(err, db, "insert");
	for (int i = 0; i < 5; i++)
		kura_buf_init(&x.s[i], AUDIT_RECORD_MAX);
	if (rc == KURA_OK)
		rc = audit_walk(dir, s, st.have ? st.next_seg : 0,
				st.have ? st.next_off : 0,
				st.have ? st.next_seq : 0, index_one, &x, err);
	sqlite3_finalize(x.ins);
	for (int i = 0; i < 5; i++)
		kura_buf_release(&x.s[i]);
	if (rc == KURA_OK && x.any)
		rc = save_state(db, &x.last, err);
	if (rc == KURA_OK && bulk)
		rc = exec(db, indexes, err);
	if (rc == KURA_OK)
		rc = exec(db, "COMMIT", err);
	else
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static bool str_matches(struct kura_str field, const char *want,
			size_t want_len, struct kura_buf *tmp)
{
	kura_buf_reset(tmp);
	if (field.p == NULL || audit_json_unescape(field, tmp) != KURA_OK)
		return false;
	return tmp->len == want_len &&
	       (want_len == 0 || memcmp(tmp->data, want, want_len) == 0);
}

/* Does the record itself satisfy the query? */
static bool record_matches(const struct audit_fields *f, uint64_t seq,
			   const struct kura_audit_query *q,
			   struct kura_buf *tmp)
{
	if (!f->has_seq || f->seq != seq)
		return false;
	if ((q->from_ms || q->to_ms) && f->time_ms < 0)
		return false;
	if (q->from_ms && f->time_ms < q->from_ms)
		return false;
	if (q->to_ms && f->time_ms >= q->to_ms)
		return false;
	if (q->tenant_id && f->tenant_id != q->tenant_id)
		return false;
	if (q->bucket &&
	    !str_matches(f->bucket, q->bucket, strlen(q->bucket), tmp))
		return false;
	if (q->key &&
	    !str_matches(f->key, q->key,
			 q->key_len ? q->key_len : strlen(q->key), tmp))
		return false;
	if (q->op && !str_matches(f->op, q->op, strlen(q->op), tmp))
		return false;
	if (q->request_id && !str_matches(f->request_id, q->request_id,
					  strlen(q->request_id), tmp))
		return false;
	return true;
}

struct hit {
	char *rec;
	size_t len;
};

/* Append text to the query when on; a failure sticks in sql (buf.h) and
 * the last append reports it. */
static void clause(struct kura_buf *sql, bool on, const char *text)
{
	if (on)
		KURA_IGNORE(kura_buf_addstr(sql, text));
}

enum kura_err kura_audit_search(const char *dir,
				const struct kura_audit_query *q, FILE *out,
				uint64_t *matches, struct kura_error *err)
{
	struct audit_snapshot s;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct hit *hits = NULL;
	size_t nhits = 0;
	uint64_t limit = q->limit ? q->limit : DEFAULT_LIMIT;
	uint64_t rejected = 0;
	struct kura_buf sql, rec, tmp;
	int fd = -1;
	uint64_t fd_seg = 0;
	kura_buf_init(&sql, 4096);
	kura_buf_init(&rec, AUDIT_RECORD_MAX);
	kura_buf_init(&tmp, AUDIT_RECORD_MAX);
	enum kura_err rc = audit_snapshot_take(dir, &s, err);
	if (rc != KURA_OK)
		goto out_nosnap;
	rc = open_index(dir, &db, err);
	if (rc == KURA_OK)
		rc = catch_up(dir, db, &s, err);
	if (rc != KURA_OK)
		goto out;

	clause(&sql, true, "SELECT seq, segment, offset FROM rec WHERE 1");
	clause(&sql, q->from_ms, " AND time_ms >= :from");
	clause(&sql, q->to_ms, " AND time_ms < :to");
	clause(&sql, q->tenant_id, " AND tenant_id = :tenant");
	clause(&sql, q->bucket, " AND bucket = :bucket");
	clause(&sql, q->key, " AND key = :key");
	clause(&sql, q->op, " AND op = :op");
	clause(&sql, q->request_id, " AND request_id = :req");
	if (kura_buf_addstr(&sql, " ORDER BY seq DESC") != KURA_OK ||
	    sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK) {
		rc = sql_fail(err, db, "query");
		goto out;
	}
#define BIND_TEXT(name, v, n)                                              \
	sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), (v), \
			  (int)(n), SQLITE_STATIC)
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":from"),
			   q->from_ms);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":to"),
			   q->to_ms);
	sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":tenant"),
			   (sqlite3_int64)q->tenant_id);
	if (q->bucket)
		BIND_TEXT(":bucket", q->bucket, strlen(q->bucket));
	if (q->key)
		BIND_TEXT(":key", q->key,
			  q->key_len ? q->key_len : strlen(q->key));
	if (q->op)
		BIND_TEXT(":op", q->op, strlen(q->op));
	if (q->request_id)
		BIND_TEXT(":req", q->request_id, strlen(q->request_id));
#undef BIND_TEXT
	hits = calloc(limit < 4096 ? limit : 4096, sizeof(*hits));
	size_t hits_cap = limit < 4096 ? (size_t)limit : 4096;
	if (hits == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "search results");
		goto out;
	}
	int r = SQLITE_DONE;
	while (nhits < limit && (r = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t seg = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t off = (uint64_t)sqlite3_column_int64(st, 2);
		uint8_t h[AUDIT_HASH];
		struct audit_fields f;
		bool in_snapshot = false;
		for (size_t i = 0; i < s.nsegs; i++)
			if (s.segs[i] == seg && off < s.sizes[i])
				in_snapshot = true;
		if (!in_snapshot) {
			rejected++; /* archived since it was indexed */
			continue;
		}
		enum kura_err r2 =
			read_entry(dir, seg, off, &fd, &fd_seg, &rec, h);
		if (r2 == KURA_ENOMEM) {
			rc = kura_fail(err, r2, "search");
			goto out;
		}
		if (r2 != KURA_OK ||
		    audit_record_scan(rec.data, rec.len, &f) != KURA_OK ||
		    !record_matches(&f, seq, q, &tmp)) {
			rejected++;
			continue;
		}
		if (nhits == hits_cap) {
			size_t c2 = hits_cap * 2;
			struct hit *h2 = realloc(hits, c2 * sizeof(*h2));
			if (h2 == NULL) {
				rc = kura_fail(err, KURA_ENOMEM,
					       "search results");
				goto out;
			}
			hits = h2;
			hits_cap = c2;
		}
		hits[nhits].rec = kura_buf_detach(&rec, &hits[nhits].len);
		if (hits[nhits].rec == NULL) {
			rc = kura_fail(err, KURA_ENOMEM, "search results");
			goto out;
		}
		nhits++;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		rc = sql_fail(err, db, "query");
		goto out;
	}
	if (rejected > 0)
		kura_warn(
			NULL,
			"audit: %llu index entries did not match the log and were "
			"ignored",
			(unsigned long long)rejected);
	for (size_t i = nhits; i-- > 0;) {
		fwrite(hits[i].rec, 1, hits[i].len, out);
		fputc('\n', out);
	}
	if (fflush(out) != 0)
		rc = kura_fail(err, KURA_EIO, "write search results");
	if (rc == KURA_OK && matches)
		*matches = nhits;
out:
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < nhits; i++)
		free(hits[i].rec);
	free(hits);
	sqlite3_finalize(st);
	sqlite3_close(db);
	audit_snapshot_release(&s);
out_nosnap:
	kura_buf_release(&sql);
	kura_buf_release(&rec);
	kura_buf_release(&tmp);
	return rc;
}

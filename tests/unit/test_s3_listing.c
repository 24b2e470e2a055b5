/*
 * test_s3_listing.c — the listing engine (src/s3/listing.c) over a source
 * that is a table in memory, as a third kind of row (versions) will be one:
 * the prefix and delimiter roll-up with its skip past a rolled-up prefix,
 * page size, truncation and the next position with its id; markers that
 * are common prefixes; every row used checked against its seal, also one
 * that only names a common prefix or tells that the page is truncated.
 * And the respond path: a document whose buffer failed (its cap reached)
 * is answered 500 InternalError, never 200 with a document cut short.
 *
 * Requests are built by hand: an http request with a pool, a service with
 * nothing open (no audit log).  Single-threaded.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kura/log.h"
#include "kura/pool.h"
#include "../../src/s3/s3_int.h"
#include "kura/banned.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a source in memory ---- */

struct row {
	const char *key; /* in (key, id) order in the table */
	const char *id;
	bool forged; /* fails its seal */
};

struct table {
	const struct row *rows;
	size_t n;
	size_t fetches, read, opened;
	const char *forged_seen; /* key of the forged row opened */
};

static struct table *tbl;

static int pos_cmp(const char *k, size_t kl, const char *id,
		   const struct s3_list_pos *p)
{
	size_t n = kl < p->len ? kl : p->len;
	int c = n ? memcmp(k, p->key, n) : 0;
	if (c == 0 && kl != p->len)
		c = kl < p->len ? -1 : 1;
	return c != 0 ? c : strcmp(id, p->id);
}

static enum kura_err fetch(struct s3_req *r, struct kura_str prefix,
			   const struct s3_list_pos *after, size_t want,
			   void **rows, size_t *n, struct kura_error *err)
{
	(void)err;
	assert_false(after->prefix);
	struct row *out =
		kura_palloc(r->pool, (tbl->n ? tbl->n : 1) * sizeof(*out));
	assert_non_null(out);
	size_t got = 0;
	tbl->fetches++;
	for (size_t i = 0; i < tbl->n && got < want; i++) {
		const struct row *w = &tbl->rows[i];
		size_t kl = strlen(w->key);
		if (kl < prefix.len ||
		    memcmp(w->key, prefix.p, prefix.len) != 0 ||
		    pos_cmp(w->key, kl, w->id, after) <= 0)
			continue;
		out[got++] = *w;
	}
	tbl->read += got;
	*rows = out;
	*n = got;
	return KURA_OK;
}

static enum kura_err open_row(struct s3_req *r, void *row,
			      struct kura_error *err)
{
	const struct row *w = row;
	(void)r;
	tbl->opened++;
	if (w->forged) {
		tbl->forged_seen = w->key;
		return kura_fail(err, KURA_EINTEGRITY, "seal of '%s'", w->key);
	}
	return KURA_OK;
}

static void describe(const void *row, struct s3_list_row *out)
{
	const struct row *w = row;
	*out = (struct s3_list_row){ { w->key, strlen(w->key), w->id, false },
				     NULL };
}

static const struct s3_list_source source = {
	.row_size = sizeof(struct row),
	.fetch = fetch,
	.open = open_row,
	.describe = describe,
};

/* ---- a request ---- */

struct fixture {
	struct kura_service svc;
	struct kura_http_req http;
	struct s3_req r;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	f.http.pool = kura_pool_new(0);
	assert_non_null(f.http.pool);
	snprintf(f.http.id, sizeof(f.http.id), "test-request");
	f.r.svc = &f.svc;
	f.r.http = &f.http;
	f.r.pool = f.http.pool;
	snprintf(f.r.bucket.name, sizeof(f.r.bucket.name), "bkt");
	f.r.have_bucket = true;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kura_pool_free(f->http.pool);
	return 0;
}

static struct s3_list_query query(const char *prefix, const char *delim,
				  uint64_t max)
{
	struct s3_list_query q = { 0 };
	q.prefix = kura_str_from(prefix);
	q.delimiter = kura_str_from(delim);
	q.start.key = "";
	q.start.id = "";
	q.max = max;
	return q;
}

/* The page's entries as "key" for a row and "key*" for a common prefix,
 * joined by spaces. */
static const char *entries(const struct s3_list_page *page)
{
	static char out[4096];
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < page->count; i++) {
		const struct s3_list_entry *e = &page->entries[i];
		int w = snprintf(out + n, sizeof(out) - n, "%s%.*s%s",
				 i ? " " : "", (int)e->len, e->key,
				 e->row ? "" : "*");
		assert_true(w > 0 && (size_t)w < sizeof(out) - n);
		n += (size_t)w;
	}
	return out;
}

static const struct row objects[] = {
	{ "a", "", false },   { "b/1", "", false },   { "b/2", "", false },
	{ "b/3", "", false }, { "b/4", "", false },   { "b/5", "", false },
	{ "b/6", "", false }, { "b/7", "", false },   { "b/8", "", false },
	{ "b/9", "", false }, { "b/x/1", "", false }, { "c", "", false },
	{ "d/1", "", false }, { "e", "", false },
};

static void use(struct table *t, const struct row *rows, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->rows = rows;
	t->n = n;
	tbl = t;
}

/* ---- the walk ---- */

static void test_pages_without_delimiter(void **state)
{
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	use(&t, objects, ARRAY_LEN(objects));
	struct s3_list_query q = query("", "", 3);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "a b/1 b/2");
	assert_true(page.truncated);
	assert_string_equal(page.next.key, "b/2");
	assert_false(page.next.prefix);
	/* The row read to tell that the page is truncated was checked too. */
	assert_int_equal(t.read, 4);
	assert_int_equal(t.opened, 4);

	/* The next page begins after the last entry; the last page is not
	 * truncated. */
	q.start = page.next;
	q.max = 100;
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page),
			    "b/3 b/4 b/5 b/6 b/7 b/8 b/9 b/x/1 c d/1 e");
	assert_false(page.truncated);

	/* Under a prefix. */
	q = query("b/", "", 100);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_int_equal(page.count, 10);
	assert_false(page.truncated);
}

static void test_rollup_skips_the_prefix(void **state)
{
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	use(&t, objects, ARRAY_LEN(objects));
	struct s3_list_query q = query("", "/", 100);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "a b/* c d/* e");
	assert_false(page.truncated);
	/* After b/ is rolled up the walk jumps past every key under it: not
	 * all of them are read, and those a batch brought beyond it are
	 * dropped unused.  Each row used was checked. */
	assert_true(t.read < ARRAY_LEN(objects));
	assert_int_equal(t.opened, 5);

	/* One level down: b/x/ rolls up, b/1... are rows. */
	q = query("b/", "/", 100);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page),
			    "b/1 b/2 b/3 b/4 b/5 b/6 b/7 b/8 b/9 b/x/*");

	/* A page that ends on a common prefix names it as the next position;
	 * resuming there skips what it rolled up. */
	q = query("", "/", 2);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "a b/*");
	assert_true(page.truncated);
	assert_true(page.next.prefix);
	assert_memory_equal(page.next.key, "b/", 2);
	assert_int_equal(page.next.len, 2);
	assert_string_equal(page.next.id, "");
	q.start = page.next;
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "c d/*");
	assert_true(page.truncated);

	/* A multi-byte delimiter. */
	static const struct row dashed[] = {
		{ "x--1", "", false },
		{ "x--2", "", false },
		{ "x-y", "", false },
	};
	use(&t, dashed, ARRAY_LEN(dashed));
	q = query("", "--", 100);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "x--* x-y");

	/* The common prefixes of a page, in order, as XML. */
	struct kura_buf b;
	kura_buf_init(&b, 4096);
	s3_list_write_prefixes(&b, &page, false);
	assert_int_equal(kura_buf_error(&b), KURA_OK);
	assert_string_equal(
		b.data,
		"<CommonPrefixes><Prefix>x--</Prefix></CommonPrefixes>");
	kura_buf_release(&b);
}

static void test_marker_that_is_a_prefix(void **state)
{
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	struct s3_list_query q = query("", "/", 100);
	assert_true(s3_list_marker_is_prefix(&q, kura_str_from("b/")));
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("b/x/")));
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("b/1")));
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("b")));
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("")));
	q = query("b/", "/", 100);
	assert_true(s3_list_marker_is_prefix(&q, kura_str_from("b/x/")));
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("c/")));
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("b/")));
	q = query("", "", 100);
	assert_false(s3_list_marker_is_prefix(&q, kura_str_from("b/")));

	/* Resuming at such a marker skips everything under it. */
	use(&t, objects, ARRAY_LEN(objects));
	q = query("", "/", 100);
	q.start = (struct s3_list_pos){ "b/", 2, "", true };
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "c d/* e");
}

/* Rows of one key told apart by an id, as uploads are (and versions will
 * be): the position is (key, id). */
static void test_positions_carry_the_id(void **state)
{
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	static const struct row uploads[] = {
		{ "k", "1", false },   { "k", "2", false },
		{ "k", "3", false },   { "l", "1", false },
		{ "m/a", "1", false }, { "m/b", "1", false },
	};
	use(&t, uploads, ARRAY_LEN(uploads));
	struct s3_list_query q = query("", "/", 2);
	q.start = (struct s3_list_pos){ "k", 1, "1", false };
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "k k");
	assert_true(page.truncated);
	assert_string_equal(page.next.id, "3");
	q.start = page.next;
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "l m/*");
	assert_false(page.truncated);
	assert_string_equal(page.next.id, "");
}

/* max 0 reads one row only to tell whether the page is truncated. */
static void test_zero_entries(void **state)
{
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	use(&t, objects, ARRAY_LEN(objects));
	struct s3_list_query q = query("", "", 0);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_int_equal(page.count, 0);
	assert_true(page.truncated);
	assert_int_equal(t.opened, 1);
	q = query("zzz", "", 0);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_false(page.truncated);
}

/* A forged row fails the listing with 500 and an integrity report,
 * wherever the walk meets it. */
static void forged_fails(void **state, const struct row *rows, size_t n,
			 struct s3_list_query q, const char *forged)
{
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	teardown(state);
	setup(state);
	f = *state;
	use(&t, rows, n);
	assert_false(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(t.forged_seen, forged);
	assert_int_equal(kura_http_resp_status(&f->http), 500);
	assert_string_equal(f->r.error_code, "InternalError");
	assert_int_equal(f->svc.integrity_failures, 1);
}

static void test_every_row_used_is_checked(void **state)
{
	/* A row that would only name a common prefix: a forged key could
	 * invent one. */
	static const struct row in_prefix[] = {
		{ "a", "", false },
		{ "p/forged", "", true },
		{ "z", "", false },
	};
	forged_fails(state, in_prefix, ARRAY_LEN(in_prefix), query("", "/", 10),
		     "p/forged");
	/* A row listed as itself. */
	forged_fails(state, in_prefix, ARRAY_LEN(in_prefix), query("", "", 10),
		     "p/forged");
	/* The row read beyond a full page. */
	static const struct row beyond[] = {
		{ "a", "", false },
		{ "b", "", false },
		{ "c", "", true },
	};
	forged_fails(state, beyond, ARRAY_LEN(beyond), query("", "", 2), "c");
	/* And with max 0. */
	forged_fails(state, beyond + 2, 1, query("", "", 0), "c");

	/* A row under a prefix that a checked row already rolled up is
	 * skipped unused: it changes nothing a client sees. */
	struct fixture *f = *state;
	struct table t;
	struct s3_list_page page;
	static const struct row under[] = {
		{ "p/1", "", false },
		{ "p/forged", "", true },
		{ "z", "", false },
	};
	use(&t, under, ARRAY_LEN(under));
	struct s3_list_query q = query("", "/", 10);
	assert_true(s3_list_walk(&f->r, &source, &q, &page));
	assert_string_equal(entries(&page), "p/* z");
	assert_null(t.forged_seen);
}

/* ---- the respond path ---- */

static void test_failed_document_is_not_sent(void **state)
{
	struct fixture *f = *state;
	struct kura_buf b;
	/* A listing over its cap: the writer's failure sticks, later elements
	 * change nothing, and the answer is 500, not 200. */
	kura_buf_init(&b, 128);
	s3_xml_root(&b, "ListBucketResult");
	for (int i = 0; i < 20; i++)
		s3_xml_elem_str(&b, "Key", "some-key");
	assert_int_equal(kura_buf_error(&b), KURA_ETOOBIG);
	s3_xml_close(&b, "ListBucketResult");
	assert_null(b.data);
	assert_false(s3_respond_xml(&f->r, &b));
	assert_int_equal(kura_http_resp_status(&f->http), 500);
	assert_string_equal(f->r.error_code, "InternalError");
	assert_true(f->r.failed);
	kura_buf_release(&b);

	/* The same document within its cap is the answer. */
	teardown(state);
	setup(state);
	f = *state;
	kura_buf_init(&b, 4096);
	s3_xml_root(&b, "ListBucketResult");
	for (int i = 0; i < 20; i++)
		s3_xml_elem_str(&b, "Key", "some-key");
	s3_xml_close(&b, "ListBucketResult");
	assert_true(s3_respond_xml(&f->r, &b));
	assert_int_equal(kura_http_resp_status(&f->http), 200);
	assert_int_equal(kura_http_resp_length(&f->http), b.len);
	assert_false(f->r.failed);
	kura_buf_release(&b);
}

int main(void)
{
	/* The failures these tests provoke are logged: keep them out of the
	 * TAP output. */
	int devnull = open("/dev/null", O_WRONLY);
	if (devnull >= 0)
		kura_log_set_fd(devnull);
#define WITH_REQUEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		WITH_REQUEST(test_pages_without_delimiter),
		WITH_REQUEST(test_rollup_skips_the_prefix),
		WITH_REQUEST(test_marker_that_is_a_prefix),
		WITH_REQUEST(test_positions_carry_the_id),
		WITH_REQUEST(test_zero_entries),
		WITH_REQUEST(test_every_row_used_is_checked),
		WITH_REQUEST(test_failed_document_is_not_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

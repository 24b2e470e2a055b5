/*
 * test_audit.c — the audit log (include/kura/audit.h, docs/AUDIT.md):
 * canonical record bytes against a hand-checked vector, writer/reader
 * round trips with proofs, concurrent appends from threads and from two
 * processes, rollover and archiving, every tampering the issue lists
 * (flipped byte, deleted record, reordered records, truncated tail,
 * re-hashed forgery, published checkpoint mismatch, missing segment)
 * detected at the right position, crash repair (torn tail, kill -9 during
 * a workload), and the search index (re-checked against the log, immune
 * to a tampered index).
 *
 * Measurements are printed, not asserted: append latency and throughput
 * (one thread, 16 threads) with real fdatasync, and the "who read this
 * object last month" query on KURA_AUDIT_SEARCH_RECORDS records (default
 * 100000; the 10-million figure in docs/AUDIT.md comes from running this
 * test with KURA_AUDIT_SEARCH_RECORDS=10000000).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "../../src/audit/audit_int.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

/* ---- helpers ---- */

static EVP_PKEY *signer_key, *forger_key;

static enum kura_err test_sign(void *ctx, const uint8_t digest[32],
			       uint8_t *sig, size_t *sig_len, char alg[32],
			       uint8_t *pub, size_t *pub_len, char signer[128],
			       struct kura_error *err)
{
	EVP_PKEY *k = ctx;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
	size_t n = *sig_len;
	if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_sign(c, sig, &n, digest, 32) != 1) {
		EVP_PKEY_CTX_free(c);
		return kura_fail(err, KURA_ECRYPTO, "test signer");
	}
	EVP_PKEY_CTX_free(c);
	*sig_len = n;
	unsigned char *p = pub;
	int l = i2d_PUBKEY(k, &p);
	assert_true(l > 0 && (size_t)l <= *pub_len);
	*pub_len = (size_t)l;
	snprintf(alg, 32, "ECDSA-P256-SHA256");
	snprintf(signer, 128, "%s", k == signer_key ? "test-signer" : "forger");
	return KURA_OK;
}

static void pub_der(EVP_PKEY *k, uint8_t *out, size_t *len)
{
	unsigned char *p = out;
	int l = i2d_PUBKEY(k, &p);
	assert_true(l > 0);
	*len = (size_t)l;
}

static char tmp_root[256];

static void make_dir(char *out, size_t cap, const char *name)
{
	static int n;
	snprintf(out, cap, "%s/%s-%d", tmp_root, name, ++n);
	assert_int_equal(kura_mkdirs(out, 0700, NULL), KURA_OK);
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static struct kura_audit *open_log(const char *dir, const char *publish,
				   uint64_t seg_bytes, bool nosync)
{
	struct kura_audit_options o = { .dir = dir,
					.publish_dir = publish,
					.segment_max_bytes = seg_bytes,
					.sign = test_sign,
					.sign_ctx = signer_key };
	struct kura_audit *a = NULL;
	struct kura_error err = { 0 };
	enum kura_err rc = kura_audit_open(&o, &a, &err);
	if (rc != KURA_OK)
		fail_msg("open: %s", err.msg);
	audit_set_nosync(a, nosync);
	return a;
}

static uint64_t append(struct kura_audit *a, const char *op, const char *bucket,
		       const char *key, const char *reqid)
{
	struct kura_audit_record r = { .type = "s3",
				       .op = op,
				       .request_id = reqid,
				       .tenant_id = 1,
				       .tenant = "root",
				       .bucket = bucket,
				       .key = key,
				       .key_len = key ? strlen(key) : 0,
				       .status = 200,
				       .bytes_out = 4096,
				       .latency_us = 120,
				       .source = "127.0.0.1",
				       .access_key = "AKIATEST" };
	uint64_t seq = UINT64_MAX;
	struct kura_error err = { 0 };
	if (kura_audit_append(a, &r, &seq, &err) != KURA_OK)
		fail_msg("append: %s", err.msg);
	return seq;
}

static void checkpoint(struct kura_audit *a)
{
	struct kura_error err = { 0 };
	if (kura_audit_checkpoint(a, &err) != KURA_OK)
		fail_msg("checkpoint: %s", err.msg);
}

static struct kura_audit_verify_report verify(const char *dir,
					      const char *publish, bool pin)
{
	struct kura_audit_verify_report rep;
	struct kura_error err = { 0 };
	uint8_t der[1024];
	size_t dl = 0;
	if (pin)
		pub_der(signer_key, der, &dl);
	if (kura_audit_verify(dir, publish, pin ? der : NULL, dl, &rep, &err) !=
	    KURA_OK)
		fail_msg("verify: %s", err.msg);
	return rep;
}

static void expect_ok(const char *dir, const char *publish, uint64_t records)
{
	struct kura_audit_verify_report rep = verify(dir, publish, true);
	if (!rep.ok)
		fail_msg("verify failed: %s", rep.problem);
	assert_int_equal(rep.records, records);
}

static void expect_bad(const char *dir, const char *publish, bool pin,
		       bool known, uint64_t seq, const char *words)
{
	struct kura_audit_verify_report rep = verify(dir, publish, pin);
	assert_false(rep.ok);
	printf("# detected: %s\n", rep.problem);
	if (strstr(rep.problem, words) == NULL)
		fail_msg("problem '%s' does not mention '%s'", rep.problem,
			 words);
	assert_int_equal(rep.bad_seq_known, known);
	assert_int_equal(rep.bad_seq, seq);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A segment file as header bytes plus entries, for tampering. */
struct seg_entry {
	uint8_t *rec;
	size_t len;
	uint8_t hash[AUDIT_HASH];
};

struct seg_image {
	uint8_t *hdr;
	size_t hdr_len;
	size_t n;
	struct seg_entry e[4096];
};

static struct seg_image *seg_load(const char *dir, uint64_t segno)
{
	char path[AUDIT_PATH_MAX];
	char *data;
	size_t len;
	struct audit_seg_header h;
	audit_seg_path(dir, segno, path, sizeof(path));
	assert_int_equal(kura_read_file(path, 64u << 20, &data, &len, NULL),
			 KURA_OK);
	assert_int_equal(audit_seg_header_parse((uint8_t *)data, len, &h, NULL),
			 KURA_OK);
	struct seg_image *s = calloc(1, sizeof(*s));
	s->hdr = malloc(h.len);
	memcpy(s->hdr, data, h.len);
	s->hdr_len = h.len;
	size_t off = h.len;
	while (off < len) {
		struct audit_entry e;
		assert_int_equal(audit_entry_parse((uint8_t *)data + off,
						   len - off, &e),
				 AUDIT_ENTRY_OK);
		assert_true(s->n < 4096);
		s->e[s->n].rec = malloc(e.rec_len);
		memcpy(s->e[s->n].rec, e.rec, e.rec_len);
		s->e[s->n].len = e.rec_len;
		memcpy(s->e[s->n].hash, e.hash, AUDIT_HASH);
		s->n++;
		off += e.len;
	}
	free(data);
	return s;
}

static void seg_save(const char *dir, uint64_t segno, const struct seg_image *s)
{
	char path[AUDIT_PATH_MAX];
	struct kura_buf b;
	kura_buf_init(&b, 256u << 20);
	assert_int_equal(kura_buf_add(&b, s->hdr, s->hdr_len), KURA_OK);
	for (size_t i = 0; i < s->n; i++)
		assert_int_equal(audit_entry_encode(s->e[i].rec, s->e[i].len,
						    s->e[i].hash, &b),
				 KURA_OK);
	audit_seg_path(dir, segno, path, sizeof(path));
	assert_int_equal(kura_write_file_atomic(path, b.data, b.len, 0600,
						NULL),
			 KURA_OK);
	kura_buf_release(&b);
}

static void seg_free(struct seg_image *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].rec);
	free(s->hdr);
	free(s);
}

/* ---- canonical encoding ---- */

static void test_canonical_record(void **state)
{
	(void)state;
	/* Expected bytes checked with Python's json.dumps(sort_keys=True,
	 * separators=(",", ":"), ensure_ascii=True) with \u escapes
	 * upper-cased (docs/CERTIFICATE.md's description), and the leaf hash
	 * with hashlib.sha256(b"\0" + bytes). */
	static const char want[] =
		"{\"a\":\"x\",\"access_key\":\"AKIA\",\"actor\":\"op\\uD83D\\uDE00\","
		"\"bucket\":\"b\",\"bytes_out\":5,\"key\":\"caf\\u00E9/\\\"q\\\"\\n\\u0001\","
		"\"nested\":{\"a\":null,\"b\":[1,\"\\u00E9\"]},\"op\":\"GetObject\","
		"\"request_id\":\"R1\",\"seq\":42,\"status\":200,\"tenant\":\"acme\","
		"\"tenant_id\":7,\"time\":\"2026-11-22T03:04:05.678Z\",\"type\":\"s3\",\"z\":1}";
	static const char want_leaf[] =
		"4dfb53d4f0c44267b1f3e0f8dbf848f2b29df25424d510b9d4f78a57a35718a7";
	const char key[] = "caf\xc3\xa9/\"q\"\n\x01";
	struct kura_audit_record r = {
		.type = "s3",
		.op = "GetObject",
		.request_id = "R1",
		.tenant_id = 7,
		.tenant = "acme",
		.bucket = "b",
		.key = key,
		.key_len = sizeof(key) - 1,
		.status = 200,
		.bytes_out = 5,
		.access_key = "AKIA",
		.actor = "op\xf0\x9f\x98\x80",
		.detail_json =
			"{\"z\": 1, \"a\": \"x\", \"nested\": {\"b\": [1, \"\xc3\xa9\"], \"a\": null}}",
	};
	struct audit_prepared p;
	struct kura_buf out;
	uint8_t leaf[AUDIT_HASH], wl[AUDIT_HASH];
	kura_buf_init(&out, 1 << 20);
	assert_int_equal(audit_record_prepare(&r, &p, NULL), KURA_OK);
	assert_int_equal(audit_record_finish(&p, 42, 1795316645678, &out),
			 KURA_OK);
	assert_string_equal(out.data, want);
	audit_leaf_hash(out.data, out.len, leaf);
	assert_int_equal(kura_hex_decode(want_leaf, 64, wl, 32), KURA_OK);
	assert_memory_equal(leaf, wl, AUDIT_HASH);

	/* the scanner reads the members back */
	struct audit_fields f;
	struct kura_buf u;
	kura_buf_init(&u, 1024);
	assert_int_equal(audit_record_scan(out.data, out.len, &f), KURA_OK);
	assert_true(f.has_seq);
	assert_int_equal(f.seq, 42);
	assert_int_equal(f.time_ms, 1795316645678);
	assert_int_equal(f.tenant_id, 7);
	assert_int_equal(audit_json_unescape(f.key, &u), KURA_OK);
	assert_int_equal(u.len, sizeof(key) - 1);
	assert_memory_equal(u.data, key, sizeof(key) - 1);
	kura_buf_reset(&u);
	assert_int_equal(
		audit_json_unescape((struct kura_str){ "op\\uD83D\\uDE00", 14 },
				    &u),
		KURA_OK);
	assert_string_equal(u.data, "op\xf0\x9f\x98\x80");
	audit_prepared_release(&p);

	/* minimal record; invalid UTF-8 becomes U+FFFD; DEL and '/' kept */
	struct kura_audit_record m = { .op = "server.start",
				       .key = "a\xff/\x7f",
				       .key_len = 4 };
	kura_buf_reset(&out);
	assert_int_equal(audit_record_prepare(&m, &p, NULL), KURA_OK);
	assert_int_equal(audit_record_finish(&p, 0, 0, &out), KURA_OK);
	assert_string_equal(
		out.data, "{\"key\":\"a\\uFFFD/\x7f\",\"op\":\"server.start\","
			  "\"seq\":0,\"time\":\"1970-01-01T00:00:00.000Z\"}");
	audit_prepared_release(&p);

	/* detail may not shadow a member, nor hold reals, nor be a non-object */
	const char *bad_detail[] = {
		"{\"bucket\":\"x\"}", "{\"seq\":1}", "{\"time\":\"t\"}",
		"{\"x\":1.5}",	      "[1]",	     "{",
		"{\"a\":1,\"a\":2}"
	};
	for (size_t i = 0; i < sizeof(bad_detail) / sizeof(bad_detail[0]);
	     i++) {
		struct kura_audit_record d = { .op = "x",
					       .bucket = "b",
					       .detail_json = bad_detail[i] };
		struct kura_error err = { 0 };
		assert_int_equal(audit_record_prepare(&d, &p, &err),
				 KURA_EINVAL);
	}
	/* malformed records are refused by the scanner */
	const char *bad_rec[] = { "",
				  "{",
				  "[]",
				  "{\"seq\":1,\"seq\":2}",
				  "{\"seq\":-1}",
				  "{\"seq\":1} x",
				  "{\"a\":\"\\x\"}",
				  "{\"a\":tru}",
				  "{\"seq\":\"1\"}" };
	for (size_t i = 0; i < sizeof(bad_rec) / sizeof(bad_rec[0]); i++)
		assert_int_equal(audit_record_scan(bad_rec[i],
						   strlen(bad_rec[i]), &f),
				 KURA_EINVAL);
	kura_buf_release(&u);
	kura_buf_release(&out);
}

/* ---- round trip, proofs, export ---- */

static json_t *capture_json(enum kura_err (*fn)(const char *, uint64_t,
						uint64_t, FILE *,
						struct kura_error *),
			    const char *dir, uint64_t a, uint64_t b)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct kura_error err = { 0 };
	if (fn(dir, a, b, f, &err) != KURA_OK)
		fail_msg("proof: %s", err.msg);
	fclose(f);
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	assert_non_null(j);
	free(text);
	return j;
}

static void hexfield(json_t *o, const char *name, uint8_t *out)
{
	const char *s = json_string_value(json_object_get(o, name));
	assert_non_null(s);
	assert_int_equal(kura_hex_decode(s, strlen(s), out, AUDIT_HASH),
			 KURA_OK);
}

static size_t path_of(json_t *o, uint8_t (*p)[AUDIT_HASH])
{
	json_t *arr = json_object_get(o, "path");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		assert_int_equal(kura_hex_decode(s, strlen(s), p[i],
						 AUDIT_HASH),
				 KURA_OK);
	}
	return json_array_size(arr);
}

static void test_roundtrip_proofs_export(void **state)
{
	(void)state;
	char dir[512];
	make_dir(dir, sizeof(dir), "roundtrip");
	struct kura_audit *a = open_log(dir, NULL, 0, false);
	for (int i = 0; i < 37; i++) {
		char req[32];
		snprintf(req, sizeof(req), "REQ%d", i);
		assert_int_equal(append(a, "PutObject", "photos", "cat.jpg",
					req),
				 (uint64_t)i);
		if (i == 12)
			checkpoint(a);
	}
	checkpoint(a);
	checkpoint(a); /* nothing new: no second line */
	kura_audit_close(a);
	expect_ok(dir, NULL, 37);
	struct kura_audit_verify_report rep = verify(dir, NULL, false);
	assert_int_equal(rep.checkpoints, 2);

	/* reopen continues the tree */
	a = open_log(dir, NULL, 0, false);
	assert_int_equal(append(a, "GetObject", "photos", "cat.jpg", "REQ37"),
			 37);
	checkpoint(a);
	kura_audit_close(a);
	expect_ok(dir, NULL, 38);

	/* inclusion proof of record 5 in the latest checkpoint (38) */
	json_t *j = capture_json(kura_audit_inclusion_proof, dir, 5, 0);
	uint8_t leaf[AUDIT_HASH], root[AUDIT_HASH],
		p[AUDIT_PROOF_MAX][AUDIT_HASH];
	assert_int_equal(json_integer_value(json_object_get(j, "tree_size")),
			 38);
	hexfield(j, "leaf_hash", leaf);
	hexfield(j, "root", root);
	size_t n = path_of(j, p);
	assert_true(audit_verify_inclusion(
		5, 38, leaf, (const uint8_t(*)[AUDIT_HASH])p, n, root));
	const char *rec = json_string_value(json_object_get(j, "record"));
	uint8_t again[AUDIT_HASH];
	audit_leaf_hash(rec, strlen(rec), again);
	assert_memory_equal(again, leaf, AUDIT_HASH);
	assert_non_null(strstr(rec, "\"request_id\":\"REQ5\""));
	/* the checkpoint carried along is the signed one of that size */
	struct audit_checkpoint cp;
	char *cps = json_dumps(json_object_get(j, "checkpoint"),
			       JSON_COMPACT | JSON_SORT_KEYS);
	assert_int_equal(audit_cp_parse(cps, strlen(cps), &cp, NULL), KURA_OK);
	assert_memory_equal(cp.root, root, AUDIT_HASH);
	assert_int_equal(audit_cp_check_signature(&cp, NULL), KURA_OK);
	free(cps);
	json_decref(j);

	/* consistency between the first checkpoint (13) and the last (38) */
	j = capture_json(kura_audit_consistency_proof, dir, 13, 38);
	uint8_t r1[AUDIT_HASH], r2[AUDIT_HASH];
	hexfield(j, "root1", r1);
	hexfield(j, "root2", r2);
	n = path_of(j, p);
	assert_true(audit_verify_consistency(
		13, 38, (const uint8_t(*)[AUDIT_HASH])p, n, r1, r2));
	assert_false(json_is_null(json_object_get(j, "checkpoint1")));
	json_decref(j);

	/* export: 38 records then 3 checkpoints, each record's leaf hash as stored */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(kura_audit_export(dir, f, NULL), KURA_OK);
	fclose(f);
	int lines = 0, records = 0;
	for (char *s = text, *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
		lines++;
		if (strncmp(s, "{\"access_key\"", 13) == 0)
			records++;
	}
	assert_int_equal(lines, 41);
	assert_int_equal(records, 38);
	free(text);
}

/* ---- concurrency ---- */

struct worker {
	struct kura_audit *a;
	int id, count;
	uint64_t *seqs;
	double lat_sum;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->count; i++) {
		char req[48];
		snprintf(req, sizeof(req), "T%d-%d", w->id, i);
		double t0 = now_s();
		w->seqs[i] =
			append(w->a, "GetObject", "bench", "object-4k", req);
		w->lat_sum += now_s() - t0;
	}
	return NULL;
}

static double run_threads(struct kura_audit *a, int threads, int per,
			  uint64_t *seqs, double *mean_lat)
{
	pthread_t t[64];
	struct worker w[64];
	double t0 = now_s();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){
			.a = a, .id = i, .count = per, .seqs = seqs + i * per
		};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	double lat = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		lat += w[i].lat_sum;
	}
	*mean_lat = lat / (threads * per);
	return (double)(threads * per) / (now_s() - t0);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static void test_concurrent_threads(void **state)
{
	(void)state;
	char dir[512];
	enum {
		THREADS = 16,
		PER = 100
	};
	static uint64_t seqs[THREADS * PER];
	make_dir(dir, sizeof(dir), "threads");
	struct kura_audit *a = open_log(dir, NULL, 0, false);

	/* one appender: every append waits for its own fdatasync */
	double lat1 = 0;
	double tput1 = run_threads(a, 1, 200, seqs, &lat1);
	/* sixteen: group commit shares the syncs */
	double lat16 = 0;
	double tput16 = run_threads(a, THREADS, PER, seqs, &lat16);
	printf("# audit append, fdatasync per batch: 1 thread %.0f records/s, mean latency "
	       "%.3f ms; 16 threads %.0f records/s, mean latency %.3f ms\n",
	       tput1, lat1 * 1e3, tput16, lat16 * 1e3);
	/* the same without the disk, to show what the sync costs */
	audit_set_nosync(a, true);
	double latn = 0;
	double tputn = run_threads(a, THREADS, PER, seqs + 0, &latn);
	printf("# audit append without fdatasync (CPU cost only): 16 threads %.0f records/s, "
	       "mean latency %.3f ms\n",
	       tputn, latn * 1e3);
	audit_set_nosync(a, false);
	checkpoint(a);
	kura_audit_close(a);

	/* the last round's seqs are exactly 1800..3399, each once */
	qsort(seqs, THREADS * PER, sizeof(seqs[0]), cmp_u64);
	for (int i = 0; i < THREADS * PER; i++)
		assert_int_equal(seqs[i], 200 + THREADS * PER + (uint64_t)i);
	expect_ok(dir, NULL, 200 + 2 * THREADS * PER);
}

static void child_appender(const char *dir, int id, int count)
{
	struct kura_audit *a = open_log(dir, NULL, 8192, false);
	uint64_t seqs[400];
	struct worker w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .a = a,
					.id = id * 10 + i,
					.count = count / 4,
					.seqs = seqs + i * (count / 4) };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	checkpoint(a);
	kura_audit_close(a);
}

static void test_two_processes(void **state)
{
	(void)state;
	char dir[512];
	make_dir(dir, sizeof(dir), "procs");
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			child_appender(dir, k + 1, 400);
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st = 0;
		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	expect_ok(dir, NULL, 800);
	/* every request id exactly once */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(kura_audit_export(dir, f, NULL), KURA_OK);
	fclose(f);
	for (int k = 1; k <= 2; k++)
		for (int t = 0; t < 4; t++)
			for (int i = 0; i < 100; i++) {
				char needle[64];
				snprintf(needle, sizeof(needle),
					 "\"request_id\":\"T%d-%d\"",
					 k * 10 + t, i);
				char *first = strstr(text, needle);
				assert_non_null(first);
				assert_null(strstr(first + 1, needle));
			}
	free(text);
	uint64_t *segs;
	size_t nsegs;
	assert_int_equal(audit_seg_list(dir, &segs, &nsegs, NULL), KURA_OK);
	printf("# two processes, 800 records in %zu segments\n", nsegs);
	assert_true(nsegs > 2); /* both processes rolled over */
	free(segs);
}

/* ---- rollover, archiving, gaps ---- */

static void test_rollover_archive_gap(void **state)
{
	(void)state;
	char dir[512], arch[512], copy[512];
	make_dir(dir, sizeof(dir), "rollover");
	make_dir(arch, sizeof(arch), "archive");
	struct kura_audit *a = open_log(dir, NULL, 4096, false);
	for (int i = 0; i < 200; i++)
		append(a, "HeadObject", "logs", "2026/11/22/app.log", "R");
	checkpoint(a);
	kura_audit_close(a);
	uint64_t *segs;
	size_t nsegs;
	assert_int_equal(audit_seg_list(dir, &segs, &nsegs, NULL), KURA_OK);
	assert_true(nsegs >= 5);
	expect_ok(dir, NULL, 200);

	/* archive the first two segments away: still verifies */
	make_dir(copy, sizeof(copy), "rollover-copy");
	run("cp -a %s/. %s/", dir, copy);
	run("mv %s/seg-00000001.log %s/seg-00000002.log %s/", copy, copy, arch);
	struct kura_audit_verify_report rep = verify(copy, NULL, true);
	if (!rep.ok)
		fail_msg("%s", rep.problem);
	assert_true(rep.first_seq > 0);
	assert_int_equal(rep.records, 200 - rep.first_seq);
	/* the writer goes on after archiving */
	a = open_log(copy, NULL, 4096, false);
	assert_int_equal(append(a, "HeadObject", "logs", "x", "R"), 200);
	checkpoint(a);
	kura_audit_close(a);
	rep = verify(copy, NULL, true);
	assert_true(rep.ok);

	/* a missing middle segment is a gap */
	make_dir(copy, sizeof(copy), "rollover-gap");
	run("cp -a %s/. %s/", dir, copy);
	struct audit_seg_reader r;
	assert_int_equal(audit_seg_reader_open(&r, copy, 4, UINT64_MAX, NULL),
			 KURA_OK);
	uint64_t first4 = r.hdr.first_seq;
	audit_seg_reader_close(&r);
	run("rm %s/seg-00000003.log", copy);
	rep = verify(copy, NULL, true);
	assert_false(rep.ok);
	printf("# detected: %s\n", rep.problem);
	assert_non_null(strstr(rep.problem, "segment 3 is missing"));
	assert_true(rep.bad_seq < first4);

	/* archiving a segment whose header was tampered with is caught by the
	 * checkpoint at its size */
	make_dir(copy, sizeof(copy), "rollover-hdr");
	run("cp -a %s/. %s/", dir, copy);
	run("rm %s/seg-00000001.log", copy);
	struct seg_image *s = seg_load(copy, 2);
	s->hdr[AUDIT_SEG_HEADER_FIXED] ^= 1; /* first frontier hash */
	/* fix the header checksum, as a forger would */
	struct audit_seg_header h;
	assert_int_equal(audit_seg_header_parse(s->hdr, s->hdr_len, &h, NULL),
			 KURA_EINTEGRITY);
	SHA256(s->hdr, s->hdr_len - AUDIT_HASH,
	       s->hdr + s->hdr_len - AUDIT_HASH);
	seg_save(copy, 2, s);
	seg_free(s);
	rep = verify(copy, NULL, true);
	assert_false(rep.ok);
	printf("# detected: %s\n", rep.problem);
	assert_non_null(strstr(rep.problem, "segment 2 header"));
	free(segs);
}

/* ---- tampering ---- */

/* A log of 60 records in one segment with checkpoints at 20, 40 and 60;
 * also published to pub. */
static void build_sample(char *dir, size_t cap, char *pub, size_t pcap)
{
	make_dir(dir, cap, "sample");
	snprintf(pub, pcap, "%s-published", dir);
	struct kura_audit *a = open_log(dir, pub, 0, true);
	for (int i = 0; i < 60; i++) {
		char req[32], key[32];
		snprintf(req, sizeof(req), "REQ%03d", i);
		snprintf(key, sizeof(key), "doc-%d.pdf", i % 7);
		append(a, i % 3 ? "GetObject" : "PutObject", "contracts", key,
		       req);
		if (i == 19 || i == 39)
			checkpoint(a);
	}
	checkpoint(a);
	kura_audit_close(a);
}

static void clone_dir(const char *src, char *dst, size_t cap, const char *name)
{
	make_dir(dst, cap, name);
	run("cp -a %s/. %s/", src, dst);
}

static void rehash(struct seg_image *s, size_t i)
{
	audit_leaf_hash(s->e[i].rec, s->e[i].len, s->e[i].hash);
}

static void test_mutations(void **state)
{
	(void)state;
	char dir[512], pub[600], m[512];
	build_sample(dir, sizeof(dir), pub, sizeof(pub));
	expect_ok(dir, pub, 60);

	/* 1. one byte of record 17 flipped */
	clone_dir(dir, m, sizeof(m), "flip");
	struct seg_image *s = seg_load(m, 1);
	s->e[17].rec[s->e[17].len / 2] ^= 0x01;
	seg_save(m, 1, s);
	seg_free(s);
	expect_bad(m, NULL, true, true, 17, "record 17");

	/* 1b. one byte flipped anywhere in the file: every position detected */
	char path[AUDIT_PATH_MAX];
	audit_seg_path(dir, 1, path, sizeof(path));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	clone_dir(dir, m, sizeof(m), "flip-any");
	audit_seg_path(m, 1, path, sizeof(path));
	for (off_t off = 0; off < st.st_size; off += 97) {
		int fd = open(path, O_RDWR);
		uint8_t b;
		assert_int_equal(pread(fd, &b, 1, off), 1);
		b ^= 0x20;
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
		struct kura_audit_verify_report rep = verify(m, NULL, true);
		if (rep.ok)
			fail_msg("flipped byte at offset %lld not detected",
				 (long long)off);
		b ^= 0x20;
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
		close(fd);
	}
	expect_ok(m, NULL, 60);

	/* 2. record 33 changed and its stored hash recomputed: the checkpoint
	 * at 40 no longer matches; the range since the last good one is named */
	clone_dir(dir, m, sizeof(m), "rehash");
	s = seg_load(m, 1);
	char *hit = strstr((char *)s->e[33].rec, "contracts");
	assert_non_null(hit);
	memcpy(hit, "CONTRACTS", 9);
	rehash(s, 33);
	seg_save(m, 1, s);
	seg_free(s);
	expect_bad(m, NULL, true, false, 20, "[20, 40)");

	/* 3. record 30 deleted */
	clone_dir(dir, m, sizeof(m), "delete");
	s = seg_load(m, 1);
	free(s->e[30].rec);
	memmove(&s->e[30], &s->e[31], (s->n - 31) * sizeof(s->e[0]));
	s->n--;
	seg_save(m, 1, s);
	seg_free(s);
	expect_bad(m, NULL, true, true, 30, "position 30");

	/* 4. records 44 and 45 swapped */
	clone_dir(dir, m, sizeof(m), "reorder");
	s = seg_load(m, 1);
	struct seg_entry tmp = s->e[44];
	s->e[44] = s->e[45];
	s->e[45] = tmp;
	seg_save(m, 1, s);
	seg_free(s);
	expect_bad(m, NULL, true, true, 44, "holds record 45");

	/* 5. tail truncated: the last 8 records gone */
	clone_dir(dir, m, sizeof(m), "truncate");
	s = seg_load(m, 1);
	for (size_t i = 52; i < s->n; i++)
		free(s->e[i].rec);
	s->n = 52;
	seg_save(m, 1, s);
	seg_free(s);
	expect_bad(m, NULL, true, true, 52, "truncated");
	/* ... and a writer refuses to continue such a log */
	struct kura_audit_options o = { .dir = m,
					.sign = test_sign,
					.sign_ctx = signer_key };
	struct kura_audit *a = NULL;
	struct kura_error err = { 0 };
	assert_int_equal(kura_audit_open(&o, &a, &err), KURA_EINTEGRITY);

	/* 6. re-hashed forgery without the signing key: records rewritten,
	 * hashes recomputed, checkpoints re-signed with another key */
	clone_dir(dir, m, sizeof(m), "forgery");
	s = seg_load(m, 1);
	for (size_t i = 0; i < s->n; i++) {
		char *h2 = strstr((char *)s->e[i].rec, "contracts");
		memcpy(h2, "CONTRACTS", 9);
		rehash(s, i);
	}
	seg_save(m, 1, s);
	/* the old checkpoints no longer match */
	expect_bad(m, NULL, true, false, 0, "checkpoint line 1");
	/* new checkpoints signed by the forger */
	struct audit_tree t;
	audit_tree_init(&t);
	struct kura_buf lines;
	kura_buf_init(&lines, 1 << 20);
	for (size_t i = 0; i < s->n; i++) {
		audit_tree_push(&t, s->e[i].hash);
		if (t.size == 20 || t.size == 40 || t.size == 60) {
			uint8_t root[AUDIT_HASH];
			struct audit_checkpoint cp;
			audit_tree_root(&t, root);
			assert_int_equal(
				audit_cp_sign(test_sign, forger_key, t.size,
					      root, kura_now_ms(), &cp, NULL),
				KURA_OK);
			assert_int_equal(audit_cp_format(&cp, &lines, NULL),
					 KURA_OK);
		}
	}
	seg_free(s);
	snprintf(path, sizeof(path), "%s/checkpoints.log", m);
	assert_int_equal(kura_write_file_atomic(path, lines.data, lines.len,
						0600, NULL),
			 KURA_OK);
	kura_buf_release(&lines);
	expect_bad(m, NULL, true, false, 20, "another key"); /* pinned signer */
	expect_bad(m, pub, false, false, 20, "published"); /* published copy */

	/* 7. a published checkpoint that differs from the local one */
	char pub2[600];
	clone_dir(dir, m, sizeof(m), "pubdiff");
	snprintf(pub2, sizeof(pub2), "%s-pub", m);
	run("cp -a %s %s", pub, pub2);
	snprintf(path, sizeof(path), "%s/checkpoints.log", pub2);
	struct audit_cp_list l;
	assert_int_equal(audit_cp_load(path, UINT64_MAX, &l, NULL), KURA_OK);
	assert_int_equal(l.n, 3);
	kura_buf_init(&lines, 1 << 20);
	for (size_t i = 0; i < l.n; i++) {
		if (i == 1) {
			l.v[i].root[0] ^= 1;
			assert_int_equal(
				audit_cp_sign(test_sign, signer_key,
					      l.v[i].tree_size, l.v[i].root,
					      kura_now_ms(), &l.v[i], NULL),
				KURA_OK);
		}
		assert_int_equal(audit_cp_format(&l.v[i], &lines, NULL),
				 KURA_OK);
	}
	audit_cp_list_release(&l);
	assert_int_equal(kura_write_file_atomic(path, lines.data, lines.len,
						0600, NULL),
			 KURA_OK);
	kura_buf_release(&lines);
	expect_bad(m, pub2, true, false, 40, "published checkpoint line 2");

	/* 8. local checkpoints rewritten to drop the last one: the published
	 * copy still has it */
	clone_dir(dir, m, sizeof(m), "droplocal");
	snprintf(path, sizeof(path), "%s/checkpoints.log", m);
	run("sed -i '$d' %s", path);
	expect_ok(m, NULL, 60);
	expect_bad(m, pub, true, false, 60, "missing from the local");

	/* 9. a checkpoint line altered in place */
	clone_dir(dir, m, sizeof(m), "cpflip");
	snprintf(path, sizeof(path), "%s/checkpoints.log", m);
	run("sed -i '2s/\"tree_size\":40/\"tree_size\":41/' %s", path);
	expect_bad(m, NULL, true, false, 41, "line 2");
}

/* ---- crashes ---- */

static void test_torn_tail_repaired(void **state)
{
	(void)state;
	char dir[512], path[AUDIT_PATH_MAX];
	make_dir(dir, sizeof(dir), "torn");
	struct kura_audit *a = open_log(dir, NULL, 0, false);
	for (int i = 0; i < 10; i++)
		append(a, "PutObject", "b", "k", "R");
	checkpoint(a);
	kura_audit_close(a);
	audit_seg_path(dir, 1, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_APPEND);
	/* half an entry, as a writer killed mid-write leaves it */
	const uint8_t half[] = { 0, 0, 0, 80, '{', '"', 'o', 'p', '"' };
	assert_int_equal(write(fd, half, sizeof(half)), (ssize_t)sizeof(half));
	close(fd);
	expect_ok(dir, NULL, 10); /* never acknowledged: not an error */
	a = open_log(dir, NULL, 0, false);
	assert_int_equal(append(a, "PutObject", "b", "k", "R"), 10);
	kura_audit_close(a);
	expect_ok(dir, NULL, 11);
	/* a zero-filled tail (power loss after the size was extended) */
	fd = open(path, O_WRONLY | O_APPEND);
	uint8_t zeros[300] = { 0 };
	assert_int_equal(write(fd, zeros, sizeof(zeros)),
			 (ssize_t)sizeof(zeros));
	close(fd);
	expect_ok(dir, NULL, 11);
	a = open_log(dir, NULL, 0, false);
	assert_int_equal(append(a, "PutObject", "b", "k", "R"), 11);
	checkpoint(a);
	kura_audit_close(a);
	expect_ok(dir, NULL, 12);
	/* a complete entry with a wrong hash is never "repaired" */
	fd = open(path, O_WRONLY | O_APPEND);
	struct kura_buf b;
	uint8_t h[AUDIT_HASH] = { 1 };
	kura_buf_init(&b, 1024);
	audit_entry_encode("{\"seq\":12}", 10, h, &b);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	close(fd);
	kura_buf_release(&b);
	expect_bad(dir, NULL, true, true, 12, "record 12");
	struct kura_audit_options o = { .dir = dir,
					.sign = test_sign,
					.sign_ctx = signer_key };
	struct kura_error err = { 0 };
	assert_int_equal(kura_audit_open(&o, &a, &err), KURA_EINTEGRITY);
}

static void test_kill9_during_workload(void **state)
{
	(void)state;
	char dir[512], acks[600];
	make_dir(dir, sizeof(dir), "kill9");
	snprintf(acks, sizeof(acks), "%s-acks", dir);
	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/* 8 threads append forever; each acknowledged seq is written
			 * to the acks file after kura_audit_append returned */
			struct kura_audit *a =
				open_log(dir, NULL, 16384, false);
			int fd =
				open(acks, O_WRONLY | O_APPEND | O_CREAT, 0600);
			for (;;) {
				char req[32];
				snprintf(req, sizeof(req), "K%d", round);
				uint64_t seq = append(a, "PutObject", "crash",
						      "k", req);
				char line[32];
				int n = snprintf(line, sizeof(line), "%llu\n",
						 (unsigned long long)seq);
				if (write(fd, line, (size_t)n) != n)
					_exit(3);
				if (seq % 50 == 0)
					checkpoint(a);
			}
		}
		struct timespec ts = { 0, 150000000 + round * 50000000 };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		/* verify before any writer repairs the tail, then after */
		struct kura_audit_verify_report rep = verify(dir, NULL, true);
		if (!rep.ok)
			fail_msg("after kill -9 (round %d): %s", round,
				 rep.problem);
		struct kura_audit *a = open_log(dir, NULL, 16384, false);
		append(a, "server.start", NULL, NULL, "restart");
		checkpoint(a);
		kura_audit_close(a);
		rep = verify(dir, NULL, true);
		if (!rep.ok)
			fail_msg("after restart (round %d): %s", round,
				 rep.problem);
		/* every acknowledged record is in the log */
		char *text;
		size_t len;
		assert_int_equal(kura_read_file(acks, 64u << 20, &text, &len,
						NULL),
				 KURA_OK);
		uint64_t max = 0, n = 0;
		for (char *s = text; *s; s = strchr(s, '\n') + 1) {
			uint64_t v = strtoull(s, NULL, 10);
			max = v > max ? v : max;
			n++;
		}
		free(text);
		printf("# kill -9 round %d: %llu acknowledged appends, log holds %llu records\n",
		       round, (unsigned long long)n,
		       (unsigned long long)rep.records);
		assert_true(n > 0);
		assert_true(rep.records > max);
	}
}

/* ---- search ---- */

struct fake_clock {
	int64_t t;
};

static int64_t fake_now(void *ctx)
{
	struct fake_clock *c = ctx;
	return c->t;
}

static uint64_t search(const char *dir, const struct kura_audit_query *q,
		       char **text)
{
	size_t len = 0;
	uint64_t n = 0;
	FILE *f = open_memstream(text, &len);
	struct kura_error err = { 0 };
	if (kura_audit_search(dir, q, f, &n, &err) != KURA_OK)
		fail_msg("search: %s", err.msg);
	fclose(f);
	return n;
}

/* A group of records of one DeleteObjects-like request. */
struct group_writer {
	struct kura_audit *a;
	int id;
	size_t n;
	size_t key_bytes; /* each record's key size */
	uint64_t first;
	enum kura_err rc;
};

static void *group_main(void *arg)
{
	struct group_writer *g = arg;
	struct kura_audit_record *r = calloc(g->n, sizeof(*r));
	char *key = malloc(g->key_bytes + 1);
	char req[32];
	struct kura_error err = { 0 };
	assert_non_null(r);
	assert_non_null(key);
	memset(key, 'a' + g->id, g->key_bytes);
	key[g->key_bytes] = '\0';
	snprintf(req, sizeof(req), "GROUP%d", g->id);
	for (size_t i = 0; i < g->n; i++)
		r[i] = (struct kura_audit_record){ .type = "s3",
						   .op = "DeleteObjects",
						   .request_id = req,
						   .bucket = "b",
						   .key = key,
						   .key_len = g->key_bytes };
	g->rc = kura_audit_append_batch(g->a, r, g->n, &g->first, &err);
	free(key);
	free(r);
	return NULL;
}

/* kura_audit_append_batch: a group is written all or none, its records
 * consecutive even while others append; groups larger together than one
 * write (16 MiB) are split between writes, never inside a group; a group
 * too large alone is refused and leaves nothing. */
static void test_append_batch(void **state)
{
	(void)state;
	char dir[512];
	make_dir(dir, sizeof(dir), "batch");
	struct kura_audit *a = open_log(dir, NULL, 0, true);
	struct kura_error err = { 0 };
	struct kura_audit_record one = { .type = "s3", .op = "x" };
	uint64_t first = UINT64_MAX;
	assert_int_equal(kura_audit_append_batch(a, &one, 0, &first, &err),
			 KURA_EINVAL);
	append(a, "PutObject", "b", "k", "R0");

	/* four groups of 1001 small records and single appends, together */
	enum {
		GROUPS = 4,
		SINGLES = 4
	};
	pthread_t t[GROUPS + SINGLES];
	struct group_writer g[GROUPS];
	struct worker w[SINGLES];
	static uint64_t seqs[SINGLES * 50];
	for (int i = 0; i < GROUPS; i++) {
		g[i] = (struct group_writer){
			.a = a, .id = i, .n = 1001, .key_bytes = 100
		};
		pthread_create(&t[i], NULL, group_main, &g[i]);
	}
	for (int i = 0; i < SINGLES; i++) {
		w[i] = (struct worker){
			.a = a, .id = i, .count = 50, .seqs = seqs + i * 50
		};
		pthread_create(&t[GROUPS + i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < GROUPS + SINGLES; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < GROUPS; i++) {
		assert_int_equal(g[i].rc, KURA_OK);
		/* no single append landed inside a group */
		for (int j = 0; j < SINGLES * 50; j++)
			assert_false(seqs[j] >= g[i].first &&
				     seqs[j] < g[i].first + 1001);
	}
	uint64_t total = 1 + GROUPS * 1001 + SINGLES * 50;

	/* three groups of 12 records of 900 KB (10.8 MB each): more than one
	 * write takes, so the leader splits between groups */
	struct group_writer big[3];
	for (int i = 0; i < 3; i++) {
		big[i] = (struct group_writer){
			.a = a, .id = 10 + i, .n = 12, .key_bytes = 900000
		};
		pthread_create(&t[i], NULL, group_main, &big[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(big[i].rc, KURA_OK);
	}
	total += 3 * 12;

	/* 20 records of 900 KB cannot go in one write: refused, nothing left */
	struct group_writer huge = {
		.a = a, .id = 20, .n = 20, .key_bytes = 900000
	};
	group_main(&huge);
	assert_int_equal(huge.rc, KURA_ETOOBIG);
	checkpoint(a);
	kura_audit_close(a);
	expect_ok(dir, NULL, total);

	/* each group is one run of consecutive records */
	for (int i = 0; i < GROUPS; i++) {
		char req[32], *text = NULL;
		snprintf(req, sizeof(req), "GROUP%d", i);
		struct kura_audit_query q = { .request_id = req,
					      .limit = 2000 };
		assert_int_equal(search(dir, &q, &text), 1001);
		uint64_t expect = g[i].first;
		for (char *line = text; line && *line;
		     line = strchr(line, '\n') + 1) {
			json_t *j =
				json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
			assert_non_null(j);
			assert_int_equal(
				json_integer_value(json_object_get(j, "seq")),
				expect++);
			json_decref(j);
		}
		free(text);
	}
}

static void test_search(void **state)
{
	(void)state;
	const char *env = getenv("KURA_AUDIT_SEARCH_RECORDS");
	uint64_t total = env ? strtoull(env, NULL, 10) : 100000;
	char dir[512];
	make_dir(dir, sizeof(dir), "search");
	struct kura_audit *a = open_log(dir, NULL, 64u << 20, true);
	/* a year of traffic from 2026-01-01, evenly spread; 1000 objects in
	 * 10 buckets; every 4th request a GetObject */
	struct fake_clock clk = { 1767225600000 };
	int64_t step = (int64_t)(365LL * 86400000 / (int64_t)total);
	audit_set_clock(a, fake_now, &clk);
	const int64_t month_from = 1793491200000; /* 2026-11-01 */
	const int64_t month_to = 1796083200000;	  /* 2026-12-01 */
	uint64_t expect = 0;
	double t0 = now_s();
	enum {
		THREADS = 8
	};
	for (uint64_t i = 0; i < total; i += THREADS) {
		/* appends from threads would interleave the clock; batches of
		 * sequential appends keep the expectation simple */
		for (uint64_t j = i; j < i + THREADS && j < total; j++) {
			char bucket[16], key[32], req[32];
			snprintf(bucket, sizeof(bucket), "b%llu",
				 (unsigned long long)(j % 10));
			snprintf(key, sizeof(key), "k%llu",
				 (unsigned long long)(j % 1000));
			snprintf(req, sizeof(req), "R%llu",
				 (unsigned long long)j);
			const char *op = j % 4 == 3 ? "GetObject" : "PutObject";
			clk.t = 1767225600000 + (int64_t)j * step;
			append(a, op, bucket, key, req);
			if (j % 10 == 3 && j % 1000 == 123 && j % 4 == 3 &&
			    clk.t >= month_from && clk.t < month_to)
				expect++;
		}
	}
	checkpoint(a);
	kura_audit_close(a);
	double t_write = now_s() - t0;

	struct kura_audit_query q = { .from_ms = month_from,
				      .to_ms = month_to,
				      .bucket = "b3",
				      .key = "k123",
				      .op = "GetObject" };
	char *text = NULL;
	t0 = now_s();
	uint64_t n = search(dir, &q, &text); /* builds the index */
	double t_index = now_s() - t0;
	free(text);
	t0 = now_s();
	n = search(dir, &q, &text);
	double t_query = now_s() - t0;
	printf("# search on %llu records: log written in %.1f s, index built in %.1f s, "
	       "\"who read b3/k123 in November\" in %.2f ms (%llu results, %llu expected)\n",
	       (unsigned long long)total, t_write, t_index, t_query * 1e3,
	       (unsigned long long)n, (unsigned long long)expect);
	assert_int_equal(n, expect);
	/* results are the records themselves, oldest first */
	uint64_t prev = 0;
	for (char *s = text; s && *s; s = strchr(s, '\n') + 1) {
		struct audit_fields f;
		assert_int_equal(
			audit_record_scan(s, (size_t)(strchr(s, '\n') - s), &f),
			KURA_OK);
		assert_true(f.time_ms >= month_from && f.time_ms < month_to);
		assert_true(f.seq >= prev);
		prev = f.seq;
	}
	free(text);

	/* request id, tenant and limit */
	struct kura_audit_query q2 = { .request_id = "R77" };
	assert_int_equal(search(dir, &q2, &text), 1);
	assert_non_null(strstr(text, "\"seq\":77,"));
	free(text);
	struct kura_audit_query q3 = { .tenant_id = 1, .limit = 5 };
	assert_int_equal(search(dir, &q3, &text), 5);
	char want_last[48];
	snprintf(want_last, sizeof(want_last), "\"seq\":%llu,",
		 (unsigned long long)total - 1);
	assert_non_null(strstr(text, want_last)); /* the newest five */
	free(text);

	/* a tampered index cannot invent results: rows re-pointed and
	 * relabelled are checked against the log and dropped */
	char db_path[AUDIT_PATH_MAX];
	snprintf(db_path, sizeof(db_path), "%s/index.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"UPDATE rec SET bucket='b3', key='k123', op='GetObject', "
			"time_ms=1794000000000 WHERE seq < 50",
			NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "UPDATE rec SET offset=offset+1 WHERE seq = 77",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(search(dir, &q, &text), expect);
	free(text);
	assert_int_equal(search(dir, &q2, &text), 0);
	free(text);

	/* the index follows the log: new records, and a replaced log */
	a = open_log(dir, NULL, 64u << 20, true);
	audit_set_clock(a, fake_now, &clk);
	clk.t = month_from + 1000;
	append(a, "GetObject", "b3", "k123", "LATE");
	kura_audit_close(a);
	assert_int_equal(search(dir, &q, &text), expect + 1);
	assert_non_null(strstr(text, "LATE"));
	free(text);
	/* a damaged index file is rebuilt */
	run("dd if=/dev/urandom of=%s bs=4096 count=2 conv=notrunc status=none",
	    db_path);
	run("rm -f %s-wal %s-shm", db_path, db_path);
	assert_int_equal(search(dir, &q, &text), expect + 1);
	free(text);
}

/* ---- setup ---- */

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp_root, sizeof(tmp_root), "%s/kura-audit-test-XXXXXX", base);
	if (mkdtemp(tmp_root) == NULL)
		return -1;
	signer_key = EVP_EC_gen("P-256");
	forger_key = EVP_EC_gen("P-256");
	return signer_key && forger_key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(signer_key);
	EVP_PKEY_free(forger_key);
	if (getenv("KURA_KEEP_TMP") == NULL) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_root);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_record),
		cmocka_unit_test(test_roundtrip_proofs_export),
		cmocka_unit_test(test_concurrent_threads),
		cmocka_unit_test(test_two_processes),
		cmocka_unit_test(test_rollover_archive_gap),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_torn_tail_repaired),
		cmocka_unit_test(test_kill9_during_workload),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_append_batch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

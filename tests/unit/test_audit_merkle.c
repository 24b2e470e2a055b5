/*
 * test_audit_merkle.c — the audit log's Merkle tree (src/audit/merkle.c)
 * against the published RFC 6962 reference vectors: the eight leaves of
 * the Certificate Transparency test tree, the roots of its first n leaves,
 * and known inclusion and consistency proofs, as listed in the
 * transparency-dev/merkle reference tests (proof/verify_test.go, which
 * carries them over from the original certificate-transparency
 * merkle_tree_test.cc).  Then every proof of every small tree is checked
 * with the RFC 9162 verification algorithms, and corrupted proofs must
 * fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/audit/audit_int.h"
#include "kura/encode.h"
#include "kura/banned.h"

/* The reference leaves (hex of the leaf data, not of its hash). */
static const char *const leaves_hex[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

/* MTH of the first n leaves, n = 1..8. */
static const char *const roots_hex[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static const char empty_root_hex[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct inclusion_vec {
	uint64_t index, size;	/* 0-based leaf index */
	size_t len;
	const char *path[3];
};

static const struct inclusion_vec inclusion_vecs[] = {
	{ 0, 1, 0, { NULL } },
	{ 0, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3, { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

struct consistency_vec {
	uint64_t size1, size2;
	size_t len;
	const char *path[3];
};

static const struct consistency_vec consistency_vecs[] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2, { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
	{ 6, 7, 3, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(kura_hex_decode(hex, strlen(hex), out, n), KURA_OK);
}

static uint8_t ref_leaf[8][AUDIT_HASH];

static void reference_leaves(void)
{
	for (int i = 0; i < 8; i++) {
		uint8_t data[16];
		size_t n = strlen(leaves_hex[i]) / 2;
		if (n)
			unhex(leaves_hex[i], data, n);
		audit_leaf_hash(data, n, ref_leaf[i]);
	}
}

static void test_roots(void **state)
{
	(void)state;
	struct audit_tree t;
	uint8_t root[AUDIT_HASH], want[AUDIT_HASH];
	reference_leaves();
	audit_tree_init(&t);
	audit_tree_root(&t, root);
	unhex(empty_root_hex, want, AUDIT_HASH);
	assert_memory_equal(root, want, AUDIT_HASH);
	for (int n = 1; n <= 8; n++) {
		audit_tree_push(&t, ref_leaf[n - 1]);
		assert_int_equal(t.size, (uint64_t)n);
		assert_int_equal(t.n, (unsigned)__builtin_popcount((unsigned)n));
		audit_tree_root(&t, root);
		unhex(roots_hex[n - 1], want, AUDIT_HASH);
		assert_memory_equal(root, want, AUDIT_HASH);
	}
}

/* Compute the proof hashes of ranges over leaves[0..n). */
static size_t proof_hashes(const struct audit_range *r, size_t nr, const uint8_t (*lv)[AUDIT_HASH],
			   uint64_t n, uint8_t (*out)[AUDIT_HASH])
{
	struct audit_ranges_hasher h;
	assert_int_equal(audit_ranges_hasher_init(&h, r, nr, NULL), KURA_OK);
	for (uint64_t i = 0; i < n; i++)
		audit_ranges_hasher_push(&h, i, lv[i]);
	audit_ranges_hasher_result(&h, out);
	audit_ranges_hasher_release(&h);
	return nr;
}

static void test_inclusion_vectors(void **state)
{
	(void)state;
	reference_leaves();
	for (size_t v = 0; v < sizeof(inclusion_vecs) / sizeof(inclusion_vecs[0]); v++) {
		const struct inclusion_vec *iv = &inclusion_vecs[v];
		struct audit_range r[AUDIT_PROOF_MAX];
		uint8_t got[AUDIT_PROOF_MAX][AUDIT_HASH], want[3][AUDIT_HASH], root[AUDIT_HASH];
		size_t nr = audit_inclusion_ranges(iv->index, iv->size, r);
		assert_int_equal(nr, iv->len);
		proof_hashes(r, nr, (const uint8_t(*)[AUDIT_HASH])ref_leaf, iv->size, got);
		for (size_t i = 0; i < iv->len; i++) {
			unhex(iv->path[i], want[i], AUDIT_HASH);
			assert_memory_equal(got[i], want[i], AUDIT_HASH);
		}
		unhex(roots_hex[iv->size - 1], root, AUDIT_HASH);
		assert_true(audit_verify_inclusion(iv->index, iv->size, ref_leaf[iv->index],
						   (const uint8_t(*)[AUDIT_HASH])want, iv->len, root));
		/* wrong index, wrong size, wrong leaf, flipped bit, truncated */
		assert_false(audit_verify_inclusion(iv->index + 1, iv->size, ref_leaf[iv->index],
						    (const uint8_t(*)[AUDIT_HASH])want, iv->len, root));
		assert_false(audit_verify_inclusion(iv->index, iv->size * 2, ref_leaf[iv->index],
						    (const uint8_t(*)[AUDIT_HASH])want, iv->len, root));
		assert_false(audit_verify_inclusion(iv->index, iv->size,
						    ref_leaf[(iv->index + 1) % 8],
						    (const uint8_t(*)[AUDIT_HASH])want, iv->len, root));
		for (size_t i = 0; i < iv->len; i++) {
			want[i][0] ^= 8;
			assert_false(audit_verify_inclusion(iv->index, iv->size, ref_leaf[iv->index],
							    (const uint8_t(*)[AUDIT_HASH])want,
							    iv->len, root));
			want[i][0] ^= 8;
		}
		if (iv->len > 0)
			assert_false(audit_verify_inclusion(iv->index, iv->size, ref_leaf[iv->index],
							    (const uint8_t(*)[AUDIT_HASH])want,
							    iv->len - 1, root));
	}
}

static void test_consistency_vectors(void **state)
{
	(void)state;
	reference_leaves();
	for (size_t v = 0; v < sizeof(consistency_vecs) / sizeof(consistency_vecs[0]); v++) {
		const struct consistency_vec *cv = &consistency_vecs[v];
		struct audit_range r[AUDIT_PROOF_MAX];
		uint8_t got[AUDIT_PROOF_MAX][AUDIT_HASH], want[3][AUDIT_HASH];
		uint8_t r1[AUDIT_HASH], r2[AUDIT_HASH];
		size_t nr = audit_consistency_ranges(cv->size1, cv->size2, r);
		assert_int_equal(nr, cv->len);
		proof_hashes(r, nr, (const uint8_t(*)[AUDIT_HASH])ref_leaf, cv->size2, got);
		for (size_t i = 0; i < cv->len; i++) {
			unhex(cv->path[i], want[i], AUDIT_HASH);
			assert_memory_equal(got[i], want[i], AUDIT_HASH);
		}
		unhex(roots_hex[cv->size1 - 1], r1, AUDIT_HASH);
		unhex(roots_hex[cv->size2 - 1], r2, AUDIT_HASH);
		assert_true(audit_verify_consistency(cv->size1, cv->size2,
						     (const uint8_t(*)[AUDIT_HASH])want, cv->len,
						     r1, r2));
		if (cv->len == 0)
			continue;
		assert_false(audit_verify_consistency(cv->size1, cv->size2,
						      (const uint8_t(*)[AUDIT_HASH])want, cv->len,
						      r2, r1));
		assert_false(audit_verify_consistency(cv->size1 + 1, cv->size2,
						      (const uint8_t(*)[AUDIT_HASH])want, cv->len,
						      r1, r2));
		assert_false(audit_verify_consistency(cv->size1, cv->size2,
						      (const uint8_t(*)[AUDIT_HASH])want,
						      cv->len - 1, r1, r2));
		for (size_t i = 0; i < cv->len; i++) {
			want[i][0] ^= 16;
			assert_false(audit_verify_consistency(cv->size1, cv->size2,
							      (const uint8_t(*)[AUDIT_HASH])want,
							      cv->len, r1, r2));
			want[i][0] ^= 16;
		}
	}
}

/* The recursive MTH of RFC 6962 §2.1, written independently of the
 * frontier, to cross-check the frontier on larger trees. */
static void mth(const uint8_t (*lv)[AUDIT_HASH], uint64_t lo, uint64_t hi, uint8_t *out)
{
	if (hi - lo == 1) {
		memcpy(out, lv[lo], AUDIT_HASH);
		return;
	}
	uint64_t k = 1;
	while (k * 2 < hi - lo)
		k *= 2;
	uint8_t l[AUDIT_HASH], r[AUDIT_HASH];
	mth(lv, lo, lo + k, l);
	mth(lv, lo + k, hi, r);
	audit_node_hash(l, r, out);
}

static void test_all_small_trees(void **state)
{
	(void)state;
	enum { N = 70 };
	static uint8_t lv[N][AUDIT_HASH];
	uint8_t roots[N + 1][AUDIT_HASH];
	struct audit_tree t;
	audit_tree_init(&t);
	for (int i = 0; i < N; i++) {
		uint8_t d[2] = { (uint8_t)i, 0x5a };
		audit_leaf_hash(d, sizeof(d), lv[i]);
		audit_tree_push(&t, lv[i]);
		audit_tree_root(&t, roots[i + 1]);
		uint8_t want[AUDIT_HASH];
		mth((const uint8_t(*)[AUDIT_HASH])lv, 0, (uint64_t)i + 1, want);
		assert_memory_equal(roots[i + 1], want, AUDIT_HASH);
	}
	for (uint64_t n = 1; n <= N; n++) {
		for (uint64_t m = 0; m < n; m++) {
			struct audit_range r[AUDIT_PROOF_MAX];
			uint8_t p[AUDIT_PROOF_MAX][AUDIT_HASH];
			size_t nr = audit_inclusion_ranges(m, n, r);
			proof_hashes(r, nr, (const uint8_t(*)[AUDIT_HASH])lv, n, p);
			assert_true(audit_verify_inclusion(m, n, lv[m], (const uint8_t(*)[AUDIT_HASH])p,
							   nr, roots[n]));
			if (n > 1)
				assert_false(audit_verify_inclusion(m, n, lv[(m + 1) % n],
								    (const uint8_t(*)[AUDIT_HASH])p,
								    nr, roots[n]));
		}
		for (uint64_t m = 1; m <= n; m++) {
			struct audit_range r[AUDIT_PROOF_MAX];
			uint8_t p[AUDIT_PROOF_MAX][AUDIT_HASH];
			size_t nr = audit_consistency_ranges(m, n, r);
			proof_hashes(r, nr, (const uint8_t(*)[AUDIT_HASH])lv, n, p);
			assert_true(audit_verify_consistency(m, n, (const uint8_t(*)[AUDIT_HASH])p,
							     nr, roots[m], roots[n]));
			if (m > 1 && m < n)
				assert_false(audit_verify_consistency(m, n,
								      (const uint8_t(*)[AUDIT_HASH])p,
								      nr, roots[m - 1], roots[n]));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roots),
		cmocka_unit_test(test_inclusion_vectors),
		cmocka_unit_test(test_consistency_vectors),
		cmocka_unit_test(test_all_small_trees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

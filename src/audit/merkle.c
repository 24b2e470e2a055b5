/*
 * merkle.c — the Merkle tree of RFC 9162 §2.1 (as RFC 6962): leaf hash
 * SHA-256(0x00 || record), node hash SHA-256(0x01 || left || right), the
 * frontier of a growing tree, the leaf ranges whose hashes make inclusion
 * and consistency proofs, and the verification algorithms of §2.1.3.2 and
 * §2.1.4.2.
 *
 * The frontier of a tree of size n holds one hash per set bit of n — the
 * perfect subtrees of its binary decomposition, largest first — so its
 * root is those hashes folded from the right: exactly MTH's split at the
 * largest power of two below n.
 *
 * Pure functions; thread-safe.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "audit_int.h"
#include "kura/banned.h"

/* Fetched once: the implicit fetch of EVP_sha256() per digest costs more
 * than hashing a short record. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void audit_leaf_hash(const void *rec, size_t len, uint8_t out[AUDIT_HASH])
{
	static const uint8_t zero = 0x00;
	pthread_once(&sha256_once, sha256_fetch);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;
	/* Only allocation can fail here; a zero hash then mismatches every
	 * check rather than passing one. */
	if (c == NULL || sha256_md == NULL || EVP_DigestInit_ex(c, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(c, &zero, 1) != 1 || EVP_DigestUpdate(c, rec, len) != 1 ||
	    EVP_DigestFinal_ex(c, out, &n) != 1)
		memset(out, 0, AUDIT_HASH);
	EVP_MD_CTX_free(c);
}

void audit_node_hash(const uint8_t l[AUDIT_HASH], const uint8_t r[AUDIT_HASH],
		     uint8_t out[AUDIT_HASH])
{
	uint8_t b[1 + 2 * AUDIT_HASH];
	b[0] = 0x01;
	memcpy(b + 1, l, AUDIT_HASH);
	memcpy(b + 1 + AUDIT_HASH, r, AUDIT_HASH);
	SHA256(b, sizeof(b), out);
}

void audit_tree_init(struct audit_tree *t)
{
	t->size = 0;
	t->n = 0;
}

void audit_tree_push(struct audit_tree *t, const uint8_t leaf[AUDIT_HASH])
{
	uint8_t h[AUDIT_HASH];
	memcpy(h, leaf, AUDIT_HASH);
	/* Each trailing one bit of size is a subtree of the same height as
	 * the one being carried: merge them, as binary addition carries. */
	for (uint64_t k = t->size; k & 1; k >>= 1) {
		audit_node_hash(t->h[t->n - 1], h, h);
		t->n--;
	}
	memcpy(t->h[t->n++], h, AUDIT_HASH);
	t->size++;
}

void audit_tree_root(const struct audit_tree *t, uint8_t out[AUDIT_HASH])
{
	if (t->n == 0) {
		SHA256((const unsigned char *)"", 0, out);
		return;
	}
	uint8_t r[AUDIT_HASH];
	memcpy(r, t->h[t->n - 1], AUDIT_HASH);
	for (unsigned i = t->n - 1; i-- > 0;)
		audit_node_hash(t->h[i], r, r);
	memcpy(out, r, AUDIT_HASH);
}

bool audit_tree_equal(const struct audit_tree *a, const struct audit_tree *b)
{
	return a->size == b->size && a->n == b->n &&
	       memcmp(a->h, b->h, (size_t)a->n * AUDIT_HASH) == 0;
}

/* The largest power of two strictly below n (n > 1). */
static uint64_t split_point(uint64_t n)
{
	uint64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void add_range(struct audit_range *out, size_t *len, uint64_t lo,
		      uint64_t hi)
{
	if (*len < AUDIT_PROOF_MAX)
		out[(*len)++] = (struct audit_range){ lo, hi };
}

/* PATH(m, D[lo:hi]): the recursive call's nodes first, then the sibling. */
static void path(uint64_t m, uint64_t lo, uint64_t hi, struct audit_range *out,
		 size_t *len)
{
	uint64_t n = hi - lo;
	if (n <= 1)
		return;
	uint64_t k = split_point(n);
	if (m < k) {
		path(m, lo, lo + k, out, len);
		add_range(out, len, lo + k, hi);
	} else {
		path(m - k, lo + k, hi, out, len);
		add_range(out, len, lo, lo + k);
	}
}

size_t audit_inclusion_ranges(uint64_t m, uint64_t n,
			      struct audit_range out[AUDIT_PROOF_MAX])
{
	size_t len = 0;
	if (m < n)
		path(m, 0, n, out, &len);
	return len;
}

/* SUBPROOF(m, D[lo:hi], b) of RFC 6962 §2.1.2. */
static void subproof(uint64_t m, uint64_t lo, uint64_t hi, bool b,
		     struct audit_range *out, size_t *len)
{
	uint64_t n = hi - lo;
	if (m == n) {
		if (!b)
			add_range(out, len, lo, hi);
		return;
	}
	uint64_t k = split_point(n);
	if (m <= k) {
		subproof(m, lo, lo + k, b, out, len);
		add_range(out, len, lo + k, hi);
	} else {
		subproof(m - k, lo + k, hi, false, out, len);
		add_range(out, len, lo, lo + k);
	}
}

size_t audit_consistency_ranges(uint64_t m, uint64_t n,
				struct audit_range out[AUDIT_PROOF_MAX])
{
	size_t len = 0;
	if (m > 0 && m < n)
		subproof(m, 0, n, true, out, &len);
	return len;
}

enum kura_err audit_ranges_hasher_init(struct audit_ranges_hasher *h,
				       const struct audit_range *r, size_t n,
				       struct kura_error *err)
{
	memset(h, 0, sizeof(*h));
	if (n > AUDIT_PROOF_MAX)
		return kura_fail(err, KURA_EINVAL, "too many proof ranges");
	h->t = calloc(n ? n : 1, sizeof(*h->t));
	if (h->t == NULL)
		return kura_fail(err, KURA_ENOMEM, "proof ranges");
	h->n = n;
	memcpy(h->r, r, n * sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		audit_tree_init(&h->t[i]);
		/* insertion sort by lo: at most ~130 ranges */
		size_t j = i;
		while (j > 0 && h->r[h->order[j - 1]].lo > r[i].lo) {
			h->order[j] = h->order[j - 1];
			j--;
		}
		h->order[j] = i;
	}
	return KURA_OK;
}

void audit_ranges_hasher_push(struct audit_ranges_hasher *h, uint64_t index,
			      const uint8_t leaf[AUDIT_HASH])
{
	while (h->cur < h->n && h->r[h->order[h->cur]].hi <= index)
		h->cur++;
	if (h->cur == h->n)
		return;
	size_t i = h->order[h->cur];
	if (index >= h->r[i].lo)
		audit_tree_push(&h->t[i], leaf);
}

void audit_ranges_hasher_result(const struct audit_ranges_hasher *h,
				uint8_t (*out)[AUDIT_HASH])
{
	for (size_t i = 0; i < h->n; i++)
		audit_tree_root(&h->t[i], out[i]);
}

void audit_ranges_hasher_release(struct audit_ranges_hasher *h)
{
	free(h->t);
	h->t = NULL;
}

bool audit_verify_inclusion(uint64_t index, uint64_t size,
			    const uint8_t leaf[AUDIT_HASH],
			    const uint8_t (*path_)[AUDIT_HASH], size_t len,
			    const uint8_t root[AUDIT_HASH])
{
	if (index >= size)
		return false;
	uint64_t fn = index, sn = size - 1;
	uint8_t r[AUDIT_HASH];
	memcpy(r, leaf, AUDIT_HASH);
	for (size_t i = 0; i < len; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			audit_node_hash(path_[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			audit_node_hash(r, path_[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, AUDIT_HASH) == 0;
}

bool audit_verify_consistency(uint64_t size1, uint64_t size2,
			      const uint8_t (*path_)[AUDIT_HASH], size_t len,
			      const uint8_t root1[AUDIT_HASH],
			      const uint8_t root2[AUDIT_HASH])
{
	if (size1 > size2)
		return false;
	if (size1 == size2)
		return len == 0 && memcmp(root1, root2, AUDIT_HASH) == 0;
	if (size1 == 0)
		return len == 0;
	if (len == 0)
		return false;
	/* When size1 is a power of two, the old root is itself a node of
	 * the new tree and the proof omits it: start from root1. */
	bool pow2 = (size1 & (size1 - 1)) == 0;
	size_t i = 0;
	const uint8_t *first = pow2 ? root1 : path_[i++];
	uint64_t fn = size1 - 1, sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	uint8_t fr[AUDIT_HASH], sr[AUDIT_HASH];
	memcpy(fr, first, AUDIT_HASH);
	memcpy(sr, first, AUDIT_HASH);
	for (; i < len; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			audit_node_hash(path_[i], fr, fr);
			audit_node_hash(path_[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			audit_node_hash(sr, path_[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, root1, AUDIT_HASH) == 0 &&
	       memcmp(sr, root2, AUDIT_HASH) == 0;
}

/*
 * crypt.h — kura's object encryption: the segment format of a blob, data
 * keys (DEKs) and their envelope under bucket keys, and the bucket-key cache.
 * docs/FORMAT.md is the normative description; this header is its API.
 *
 * Key hierarchy:
 *   KEK (in the key provider)  wraps  bucket key (one per bucket)
 *   bucket key (cached, locked memory)  wraps  DEK (one per blob)
 *   DEK  seals  the blob's segments (AES-256-GCM)
 * A DEK is generated for one blob and never reused, so segment nonces can be
 * deterministic (the segment index) without ever repeating under a key.
 *
 * Blob layout: a 32-byte header, then segments.  Segment i holds
 * min(seg_size, remaining) plaintext bytes, sealed as ciphertext || tag.
 * Every blob has at least one segment (an empty object has one empty final
 * segment), so truncation to a segment boundary is detected by the final
 * flag in the AAD.
 */
#ifndef KURA_CRYPT_H
#define KURA_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/buf.h"
#include "kura/err.h"
#include "kura/keys.h"
#include "kura/lengths.h"
#include "kura/secret.h"

#define KURA_SEG_TAG_LEN 16
#define KURA_SEG_NONCE_LEN 12
#define KURA_BLOB_HEADER_LEN 32
#define KURA_SEG_SIZE_MIN (4u * 1024)
#define KURA_SEG_SIZE_MAX (16u * 1024 * 1024)
#define KURA_SEG_SIZE_DEFAULT (256u * 1024)

/* What a blob's ciphertext is bound to (part of every segment's AAD and of
 * the DEK envelope's AAD). */
struct kura_binding {
	uint64_t tenant_id;
	uint64_t bucket_id;
	uint8_t version_uid[KURA_UID_LEN]; /* random per object version */
	uint32_t part_no;		   /* 0 simple PUT, 1..10000 parts */
};

/* ---- layout arithmetic (pure) ---- */

/* Number of segments for plain_size bytes (at least 1). */
uint64_t kura_seg_count(uint64_t plain_size, uint32_t seg_size);
/* Total blob length: header + plaintext + one tag per segment. */
uint64_t kura_blob_size(uint64_t plain_size, uint32_t seg_size);
/* Offset of segment index in the blob. */
uint64_t kura_seg_offset(uint64_t index, uint32_t seg_size);
/* Plaintext length of segment index (the last may be short or empty). */
size_t kura_seg_plain_len(uint64_t index, uint64_t plain_size,
			  uint32_t seg_size);
/* Is seg_size acceptable (power of two within MIN..MAX)? */
bool kura_seg_size_valid(uint32_t seg_size);

/* Write / check the blob header: magic "KURABLB1", seg_size, flags 0,
 * blob id.  check fails with KURA_EINTEGRITY on any mismatch. */
void kura_blob_header_write(uint8_t out[KURA_BLOB_HEADER_LEN],
			    uint32_t seg_size,
			    const uint8_t blob_id[KURA_BLOB_ID_LEN]);
enum kura_err kura_blob_header_check(const uint8_t hdr[KURA_BLOB_HEADER_LEN],
				     uint32_t seg_size,
				     const uint8_t blob_id[KURA_BLOB_ID_LEN],
				     struct kura_error *err);

/* ---- sealing a blob, streaming ---- */

struct kura_sealer;

/* Start a blob: the header is emitted to sink at once.  Holds at most one
 * segment of plaintext at a time (memory is O(seg_size), never O(object)). */
enum kura_err kura_sealer_new(const struct kura_secret *dek,
			      const struct kura_binding *binding,
			      uint32_t seg_size,
			      const uint8_t blob_id[KURA_BLOB_ID_LEN],
			      kura_sink_fn sink, void *sink_ctx,
			      struct kura_sealer **out, struct kura_error *err);

/* Feed plaintext; full segments are sealed and emitted as soon as it is
 * known that they are not the last. */
enum kura_err kura_sealer_write(struct kura_sealer *s, const void *p, size_t n,
				struct kura_error *err);

/* Seal the final segment; *plain_size receives the total plaintext length. */
enum kura_err kura_sealer_finish(struct kura_sealer *s, uint64_t *plain_size,
				 struct kura_error *err);

/* Wipe and free.  NULL is a no-op. */
void kura_sealer_free(struct kura_sealer *s);

/* ---- opening segments, random access ---- */

struct kura_opener;

enum kura_err kura_opener_new(const struct kura_secret *dek,
			      const struct kura_binding *binding,
			      uint32_t seg_size, uint64_t plain_size,
			      struct kura_opener **out, struct kura_error *err);

/* Authenticate and decrypt segment index: ct holds exactly
 * kura_seg_plain_len(index) + KURA_SEG_TAG_LEN bytes; out receives the
 * plaintext.  KURA_EINTEGRITY when the segment does not authenticate (out
 * is then wiped); nothing unauthenticated is ever left in out. */
enum kura_err kura_opener_segment(struct kura_opener *o, uint64_t index,
				  const uint8_t *ct, size_t ct_len,
				  uint8_t *out, struct kura_error *err);

void kura_opener_free(struct kura_opener *o);

/* ---- data keys ---- */

/* A fresh random DEK. */
enum kura_err kura_dek_new(struct kura_secret **out, struct kura_error *err);

/* Envelope a DEK under a bucket key, bound to binding. */
enum kura_err kura_dek_wrap(const struct kura_secret *bucket_key,
			    const struct kura_binding *binding,
			    const struct kura_secret *dek,
			    uint8_t out[KURA_WRAPPED_DEK_LEN],
			    struct kura_error *err);

enum kura_err kura_dek_unwrap(const struct kura_secret *bucket_key,
			      const struct kura_binding *binding,
			      const uint8_t in[KURA_WRAPPED_DEK_LEN],
			      struct kura_secret **out, struct kura_error *err);

/* ---- SSE-C (customer-provided keys, never stored) ---- */

/* The key that wraps DEKs of an SSE-C object:
 * HMAC-SHA256(bucket key, "kura-ssec-wrap-v1" || customer key). */
enum kura_err kura_ssec_wrap_key(const struct kura_secret *bucket_key,
				 const struct kura_secret *customer_key,
				 struct kura_secret **out,
				 struct kura_error *err);

/* The check value stored with an SSE-C object to recognise its key:
 * HMAC-SHA256(system key, "kura-ssec-check-v1" || customer key ||
 * version uid). */
enum kura_err kura_ssec_check_value(const struct kura_secret *system_key,
				    const struct kura_secret *customer_key,
				    const uint8_t version_uid[KURA_UID_LEN],
				    uint8_t out[32], struct kura_error *err);

/* ---- bucket keys ---- */

#define KURA_BUCKET_KEY_AAD_LEN 34

/* The AAD a provider binds when it wraps a bucket key:
 * "kura-bk1\0\0" (10 bytes) || tenant_id (u64 BE) || bucket_id (u64 BE)
 * || reserved zeros (8). */
void kura_bucket_key_aad(uint64_t tenant_id, uint64_t bucket_id,
			 uint8_t out[KURA_BUCKET_KEY_AAD_LEN]);

/*
 * Create a bucket key: a new KEK in the provider (label names the bucket)
 * and a fresh random bucket key wrapped by it.  kek_id and wrapped receive
 * what the bucket's metadata row stores.
 */
enum kura_err kura_bucket_key_create(struct kura_keys *keys, uint64_t tenant_id,
				     uint64_t bucket_id, const char *label,
				     char kek_id[KURA_KEK_ID_MAX],
				     uint8_t wrapped[KURA_WRAPPED_MAX],
				     size_t *wrapped_len,
				     struct kura_error *err);

/*
 * The bucket-key cache keeps the provider round trip off the per-object
 * path: an unwrapped bucket key stays in locked memory for at most ttl_ms
 * after it was unwrapped, is wiped on eviction, and evict() drops it at once
 * (disable, destroy).  Thread-safe.
 */
struct kura_keycache;

enum kura_err kura_keycache_new(struct kura_keys *keys, uint64_t ttl_ms,
				struct kura_keycache **out,
				struct kura_error *err);
void kura_keycache_free(struct kura_keycache *kc);

/* A copy of a bucket key (caller frees with kura_secret_free).  cache_id
 * names the bucket key (its metadata row id); tenant_id and bucket_id are
 * bound by the wrapping (kura_bucket_key_aad). */
enum kura_err kura_keycache_get(struct kura_keycache *kc, uint64_t cache_id,
				uint64_t tenant_id, uint64_t bucket_id,
				const char *kek_id, const uint8_t *wrapped,
				size_t wrapped_len, struct kura_secret **out,
				struct kura_error *err);

/* Drop one entry (wiped at once). */
void kura_keycache_evict(struct kura_keycache *kc, uint64_t cache_id);

/* Drop every entry (a key was disabled or destroyed, possibly by another
 * process). */
void kura_keycache_clear(struct kura_keycache *kc);

#endif

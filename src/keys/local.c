/*
 * local.c — the local key provider: KEKs kept in a keystore file that is
 * sealed under a master key file.
 *
 * Files (paths from [keys], defaults under DATA_DIR/keys/, directories 0700):
 *   master_key_file      32 random bytes, mode 0600, owned by us.  Created
 *                        at the first open, only when the keystore does not
 *                        exist either (a new master key could never open an
 *                        existing keystore, so a missing one is an error).
 *   keystore_file        the KEKs, sealed under the master key (format
 *                        below), mode 0600, replaced atomically and durably
 *                        on every change.
 *   keystore_file.lock   flock()ed exclusively by every writer, in every
 *                        process, around reload -> change -> rewrite.
 *
 * Keystore format (integers big-endian):
 *   header, 32 bytes, plaintext:
 *     "KURAKEYS" | version u8 = 1 | 3 zero bytes | chunk count u32 |
 *     file id (16 random bytes, new on every rewrite)
 *   then chunk count times:
 *     sealed length u16 | kura_box_seal(master key, aad, plain)
 *     aad   = "kura-keystore-v1" | file id | chunk index u32 | chunk count u32
 *     plain = entry count u16 | entries      (at most KURA_SECRET_MAX bytes)
 *   entry = id (16 bytes) | created u64 (unix seconds) | state u8 |
 *           label length u8 (<= 128) | label (UTF-8, no control characters) |
 *           key (32 bytes, present only when state is ACTIVE)
 * Entries appear in strictly ascending id order across the file (so an id
 * can never appear twice) and never straddle chunks.  An empty keystore is
 * one chunk with no entries, so emptiness is authenticated as well.
 *
 * Why chunks rather than one sealed blob: each chunk's plaintext fits in a
 * struct kura_secret, so KEK bytes never sit in ordinary memory, not even
 * while the file is (de)serialised.  The AAD binds each chunk to its file,
 * position and count, so chunks cannot be dropped, reordered or mixed
 * between versions of the file.  Replacing the whole file by an older copy
 * (rollback, which would resurrect destroyed KEKs) cannot be detected without
 * state kept elsewhere; crypto-shredding assumes old copies are gone.
 *
 * Limits: at most KS_MAX_KEKS KEKs (destroyed ones included, they stay as
 * tombstones so that unwrap can say "destroyed" rather than "unknown").
 *
 * Threading: the in-memory table is guarded by a rwlock (wrap/unwrap take it
 * shared).  Writers are serialised by a mutex within the process and by
 * flock across processes; lock order is wmu -> flock -> rw.  A lookup miss
 * reloads the file once under the write lock (another process may have
 * created the KEK); the file id in the header makes "unchanged" cheap to see.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kura/box.h"
#include "kura/config.h"
#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/keys.h"
#include "kura/secret.h"
#include "kura/banned.h"

#define MASTER_KEY_LEN KURA_AES256_KEY_LEN
#define KEK_LEN KURA_AES256_KEY_LEN
#define KEK_RAW_ID_LEN 16
#define KEK_ID_PREFIX "local-"
#define KEK_ID_PREFIX_LEN (sizeof(KEK_ID_PREFIX) - 1)
#define KEK_ID_TEXT_LEN (KEK_ID_PREFIX_LEN + 2 * KEK_RAW_ID_LEN)

#define WRAP_VERSION 0x01
#define WRAP_PLAIN_MAX 64

#define KS_MAGIC "KURAKEYS"
#define KS_MAGIC_LEN 8
#define KS_VERSION 1
#define KS_HEADER_LEN 32
#define KS_FILE_ID_OFF 16
#define KS_FILE_ID_LEN 16
#define KS_AAD_PREFIX "kura-keystore-v1"
#define KS_AAD_PREFIX_LEN (sizeof(KS_AAD_PREFIX) - 1)
#define KS_AAD_LEN (KS_AAD_PREFIX_LEN + KS_FILE_ID_LEN + 8)
#define KS_CHUNK_PLAIN_MAX KURA_SECRET_MAX
#define KS_CHUNK_SEALED_MAX (KS_CHUNK_PLAIN_MAX + KURA_BOX_OVERHEAD)
#define KS_MAX_KEKS 100000
#define KS_LABEL_MAX 128
#define KS_ENTRY_FIXED (KEK_RAW_ID_LEN + 8 + 1 + 1)
/* Every chunk but the lone chunk of an empty keystore holds an entry. */
#define KS_MAX_CHUNKS KS_MAX_KEKS
#define KS_FILE_MAX              \
	((size_t)KS_HEADER_LEN + \
	 (size_t)KS_MAX_CHUNKS * (2 + (size_t)KS_CHUNK_SEALED_MAX))

enum kek_state {
	KEK_ACTIVE = 1,
	KEK_DESTROYED = 2,
};

struct kek {
	uint8_t id[KEK_RAW_ID_LEN];
	uint64_t created;
	uint8_t state; /* enum kek_state */
	uint8_t label_len;
	bool lent; /* key borrowed by a table being parsed */
	char label[KS_LABEL_MAX + 1];
	struct kura_secret *key; /* NULL unless ACTIVE */
};

struct local {
	char master_path[PATH_MAX];
	char store_path[PATH_MAX];
	char lock_path[PATH_MAX];
	int lock_fd;
	struct kura_secret *master;
	pthread_rwlock_t rw; /* guards keks, n, cap, file_id */
	pthread_mutex_t wmu; /* one writer per process at a time */
	struct kek *keks;    /* sorted by id */
	size_t n, cap;
	uint8_t file_id[KS_FILE_ID_LEN];
};

/* ---- small helpers ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The directory part of path ("." when there is none). */
static void parent_dir(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(out, cap, ".");
	else if (slash == path)
		snprintf(out, cap, "/");
	else
		snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* A configured path, or data_dir/dflt when unset. */
static enum kura_err resolve_path(const struct kura_config *cfg,
				  const char *key, const char *data_dir,
				  const char *dflt, char out[PATH_MAX],
				  struct kura_error *err)
{
	const char *v = kura_config_get(cfg, "keys", key);
	int n;
	if (v != NULL && v[0] != '\0') {
		n = snprintf(out, PATH_MAX, "%s", v);
	} else {
		if (data_dir == NULL || data_dir[0] == '\0')
			return kura_fail(
				err, KURA_ECONFIG,
				"[keys] %s is unset and there is no data directory",
				key);
		n = snprintf(out, PATH_MAX, "%s/%s", data_dir, dflt);
	}
	if (n < 0 || n >= PATH_MAX)
		return kura_fail(err, KURA_ECONFIG, "[keys] %s: path too long",
				 key);
	return KURA_OK;
}

/* "local-" + 32 lowercase hex digits, exactly. */
static bool id_parse(const char *text, uint8_t out[KEK_RAW_ID_LEN])
{
	if (text == NULL)
		return false;
	size_t len = strnlen(text, KEK_ID_TEXT_LEN + 1);
	if (len != KEK_ID_TEXT_LEN ||
	    memcmp(text, KEK_ID_PREFIX, KEK_ID_PREFIX_LEN) != 0)
		return false;
	const char *hex = text + KEK_ID_PREFIX_LEN;
	for (size_t i = 0; i < 2 * KEK_RAW_ID_LEN; i++) {
		char c = hex[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return kura_hex_decode(hex, 2 * KEK_RAW_ID_LEN, out, KEK_RAW_ID_LEN) ==
	       KURA_OK;
}

static void id_format(const uint8_t id[KEK_RAW_ID_LEN],
		      char out[KURA_KEK_ID_MAX])
{
	memcpy(out, KEK_ID_PREFIX, KEK_ID_PREFIX_LEN);
	kura_hex_encode(id, KEK_RAW_ID_LEN, out + KEK_ID_PREFIX_LEN);
}

/* Labels are human hints: bounded, UTF-8, no control characters (they may
 * end up in logs and listings). */
static bool label_valid(const char *p, size_t n)
{
	if (n > KS_LABEL_MAX || !kura_utf8_valid(p, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static size_t entry_size(const struct kek *k)
{
	return KS_ENTRY_FIXED + k->label_len +
	       (k->state == KEK_ACTIVE ? KEK_LEN : 0);
}

static void table_free(struct kek *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (!v[i].lent)
			kura_secret_free(v[i].key);
	free(v);
}

/* Index of the first entry whose id is >= id. */
static size_t table_lower_bound(const struct kek *v, size_t n,
				const uint8_t id[KEK_RAW_ID_LEN])
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(v[mid].id, id, KEK_RAW_ID_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct kek *table_find(struct local *l, const uint8_t id[KEK_RAW_ID_LEN])
{
	size_t i = table_lower_bound(l->keks, l->n, id);
	if (i < l->n && memcmp(l->keks[i].id, id, KEK_RAW_ID_LEN) == 0)
		return &l->keks[i];
	return NULL;
}

static void ks_aad(uint8_t aad[KS_AAD_LEN],
		   const uint8_t file_id[KS_FILE_ID_LEN], uint32_t index,
		   uint32_t count)
{
	memcpy(aad, KS_AAD_PREFIX, KS_AAD_PREFIX_LEN);
	memcpy(aad + KS_AAD_PREFIX_LEN, file_id, KS_FILE_ID_LEN);
	put_u32(aad + KS_AAD_PREFIX_LEN + KS_FILE_ID_LEN, index);
	put_u32(aad + KS_AAD_PREFIX_LEN + KS_FILE_ID_LEN + 4, count);
}

/* ---- the keystore file ---- */

/* Entries [start, end) that fit one chunk's plaintext, greedily. */
static size_t chunk_end(const struct kek *v, size_t n, size_t start)
{
	size_t used = 2;
	size_t i = start;
	while (i < n && used + entry_size(&v[i]) <= KS_CHUNK_PLAIN_MAX) {
		used += entry_size(&v[i]);
		i++;
	}
	return i;
}

/* Serialise, seal and durably replace the keystore file from the table.
 * Called with the write lock held (and flock for an existing store). */
static enum kura_err ks_save(struct local *l, struct kura_error *err)
{
	enum kura_err rc;
	uint8_t *out = NULL;
	struct kura_secret *plain = NULL;
	uint8_t file_id[KS_FILE_ID_LEN];

	size_t nchunks = 0;
	for (size_t i = 0; i < l->n || nchunks == 0;) {
		i = chunk_end(l->keks, l->n, i);
		nchunks++;
	}
	if (nchunks > KS_MAX_CHUNKS)
		return kura_fail(err, KURA_ETOOBIG, "keystore '%s' too large",
				 l->store_path);
	size_t cap = KS_HEADER_LEN + nchunks * (2 + KS_CHUNK_SEALED_MAX);
	out = malloc(cap);
	plain = kura_secret_new(KS_CHUNK_PLAIN_MAX);
	if (out == NULL || plain == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "serialise keystore '%s'",
			       l->store_path);
		goto out;
	}
	rc = kura_random_bytes(file_id, sizeof(file_id), err);
	if (rc != KURA_OK)
		goto out;

	memset(out, 0, KS_HEADER_LEN);
	memcpy(out, KS_MAGIC, KS_MAGIC_LEN);
	out[KS_MAGIC_LEN] = KS_VERSION;
	put_u32(out + 12, (uint32_t)nchunks);
	memcpy(out + KS_FILE_ID_OFF, file_id, KS_FILE_ID_LEN);
	size_t off = KS_HEADER_LEN;

	size_t i = 0;
	for (uint32_t c = 0; c < nchunks; c++) {
		size_t end = chunk_end(l->keks, l->n, i);
		uint8_t *p = plain->data;
		size_t pos = 2;
		put_u16(p, (uint16_t)(end - i));
		for (; i < end; i++) {
			const struct kek *k = &l->keks[i];
			memcpy(p + pos, k->id, KEK_RAW_ID_LEN);
			pos += KEK_RAW_ID_LEN;
			put_u64(p + pos, k->created);
			pos += 8;
			p[pos++] = k->state;
			p[pos++] = k->label_len;
			memcpy(p + pos, k->label, k->label_len);
			pos += k->label_len;
			if (k->state == KEK_ACTIVE) {
				memcpy(p + pos, k->key->data, KEK_LEN);
				pos += KEK_LEN;
			}
		}
		uint8_t aad[KS_AAD_LEN];
		ks_aad(aad, file_id, c, (uint32_t)nchunks);
		put_u16(out + off, (uint16_t)(pos + KURA_BOX_OVERHEAD));
		rc = kura_box_seal(l->master, aad, sizeof(aad), p, pos,
				   out + off + 2, err);
		if (rc != KURA_OK)
			goto out;
		off += 2 + pos + KURA_BOX_OVERHEAD;
	}
	rc = kura_write_file_atomic(l->store_path, out, off, 0600, err);
	if (rc == KURA_OK)
		memcpy(l->file_id, file_id, KS_FILE_ID_LEN);
out:
	kura_secret_free(plain);
	free(out);
	return rc;
}

/* Add one parsed entry to the new table.  When the current table holds the
 * same active key, its secret is lent rather than copied, so a reload of a
 * large keystore does not double the locked memory it needs. */
static enum kura_err parse_entry(struct local *l, const uint8_t *p, size_t len,
				 size_t *pos, const uint8_t *prev,
				 struct kek *k, size_t *old_cursor,
				 struct kura_error *err)
{
	size_t at = *pos;
	if (len - at < KS_ENTRY_FIXED)
		return kura_fail(err, KURA_EINTEGRITY,
				 "keystore '%s': truncated entry",
				 l->store_path);
	memcpy(k->id, p + at, KEK_RAW_ID_LEN);
	at += KEK_RAW_ID_LEN;
	if (prev != NULL && memcmp(prev, k->id, KEK_RAW_ID_LEN) >= 0)
		return kura_fail(err, KURA_EINTEGRITY,
				 "keystore '%s': entries out of order",
				 l->store_path);
	k->created = get_u64(p + at);
	at += 8;
	k->state = p[at++];
	k->label_len = p[at++];
	if (k->state != KEK_ACTIVE && k->state != KEK_DESTROYED)
		return kura_fail(err, KURA_EINTEGRITY,
				 "keystore '%s': unknown KEK state %u",
				 l->store_path, (unsigned)k->state);
	if (k->label_len > KS_LABEL_MAX || len - at < k->label_len ||
	    !label_valid((const char *)p + at, k->label_len))
		return kura_fail(err, KURA_EINTEGRITY,
				 "keystore '%s': bad KEK label", l->store_path);
	memcpy(k->label, p + at, k->label_len);
	k->label[k->label_len] = '\0';
	at += k->label_len;
	if (k->state == KEK_ACTIVE) {
		if (len - at < KEK_LEN)
			return kura_fail(err, KURA_EINTEGRITY,
					 "keystore '%s': truncated KEK",
					 l->store_path);
		while (*old_cursor < l->n && memcmp(l->keks[*old_cursor].id,
						    k->id, KEK_RAW_ID_LEN) < 0)
			(*old_cursor)++;
		struct kek *old = *old_cursor < l->n ? &l->keks[*old_cursor] :
						       NULL;
		if (old != NULL && old->key != NULL && !old->lent &&
		    memcmp(old->id, k->id, KEK_RAW_ID_LEN) == 0 &&
		    kura_ct_equal(old->key->data, p + at, KEK_LEN)) {
			old->lent = true;
			k->key = old->key;
			k->lent = true;
		} else {
			k->key = kura_secret_from(p + at, KEK_LEN);
			if (k->key == NULL)
				return kura_fail(err, KURA_ENOMEM,
						 "locked memory for a KEK");
		}
		at += KEK_LEN;
	}
	*pos = at;
	return KURA_OK;
}

/* Parse and authenticate a whole keystore image.  On success the new table
 * replaces the current one.  Called with the write lock held. */
static enum kura_err ks_parse(struct local *l, const uint8_t *buf, size_t len,
			      struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	struct kek *v = NULL;
	size_t n = 0, cap = 0, old_cursor = 0;
	struct kura_secret *plain = NULL;

	if (len < KS_HEADER_LEN || memcmp(buf, KS_MAGIC, KS_MAGIC_LEN) != 0)
		return kura_fail(err, KURA_EINTEGRITY,
				 "'%s' is not a kura keystore", l->store_path);
	if (buf[KS_MAGIC_LEN] != KS_VERSION)
		return kura_fail(err, KURA_EINTEGRITY,
				 "keystore '%s' has unsupported version %u",
				 l->store_path, (unsigned)buf[KS_MAGIC_LEN]);
	uint32_t nchunks = get_u32(buf + 12);
	if (buf[9] != 0 || buf[10] != 0 || buf[11] != 0 || nchunks == 0 ||
	    nchunks > KS_MAX_CHUNKS)
		return kura_fail(err, KURA_EINTEGRITY,
				 "keystore '%s' has a bad header",
				 l->store_path);
	const uint8_t *file_id = buf + KS_FILE_ID_OFF;

	size_t off = KS_HEADER_LEN;
	for (uint32_t c = 0; c < nchunks; c++) {
		if (len - off < 2) {
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "keystore '%s' is truncated",
				       l->store_path);
			goto out;
		}
		size_t slen = get_u16(buf + off);
		off += 2;
		if (slen < KURA_BOX_OVERHEAD + 2 ||
		    slen > KS_CHUNK_SEALED_MAX || len - off < slen) {
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "keystore '%s': bad chunk %u",
				       l->store_path, (unsigned)c);
			goto out;
		}
		uint8_t aad[KS_AAD_LEN];
		ks_aad(aad, file_id, c, nchunks);
		rc = kura_box_open_secret(l->master, aad, sizeof(aad),
					  buf + off, slen, &plain, err);
		if (rc != KURA_OK) {
			if (rc == KURA_EINTEGRITY)
				kura_fail(
					err, rc,
					"keystore '%s' does not authenticate under the master key '%s'",
					l->store_path, l->master_path);
			goto out;
		}
		off += slen;

		const uint8_t *p = plain->data;
		size_t plen = plain->len;
		size_t count = get_u16(p);
		size_t pos = 2;
		if ((count == 0 && nchunks != 1) || count > KS_MAX_KEKS - n) {
			rc = kura_fail(err, KURA_EINTEGRITY,
				       "keystore '%s': bad entry count",
				       l->store_path);
			goto out;
		}
		if (n + count > cap) {
			size_t ncap = cap ? cap : 16;
			while (ncap < n + count)
				ncap *= 2;
			struct kek *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				rc = kura_fail(err, KURA_ENOMEM,
					       "keystore table");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		for (size_t e = 0; e < count; e++) {
			struct kek *k = &v[n];
			memset(k, 0, sizeof(*k));
			rc = parse_entry(l, p, plen, &pos,
					 n > 0 ? v[n - 1].id : NULL, k,
					 &old_cursor, err);
			if (rc != KURA_OK) {
				if (!k->lent)
					kura_secret_free(k->key);
				goto out;
			}
			n++;
		}
		if (pos != plen) {
			rc = kura_fail(
				err, KURA_EINTEGRITY,
				"keystore '%s': trailing bytes in chunk %u",
				l->store_path, (unsigned)c);
			goto out;
		}
		kura_secret_free(plain);
		plain = NULL;
	}
	if (off != len) {
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "keystore '%s': trailing bytes", l->store_path);
		goto out;
	}

	/* Commit: keys lent by the old table now belong to the new one. */
	for (size_t i = 0; i < n; i++)
		v[i].lent = false;
	table_free(l->keks, l->n);
	l->keks = v;
	l->n = n;
	l->cap = cap;
	memcpy(l->file_id, file_id, KS_FILE_ID_LEN);
	v = NULL;
	n = 0;
out:
	kura_secret_free(plain);
	table_free(v, n);
	for (size_t i = 0; i < l->n; i++)
		l->keks[i].lent = false;
	return rc;
}

/* The file id in the keystore's header, to see cheaply whether it changed. */
static bool ks_peek_file_id(const char *path, uint8_t out[KS_FILE_ID_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	uint8_t hdr[KS_HEADER_LEN];
	bool ok = kura_pread_all(fd, hdr, sizeof(hdr), 0, NULL) == KURA_OK &&
		  memcmp(hdr, KS_MAGIC, KS_MAGIC_LEN) == 0;
	close(fd);
	if (ok)
		memcpy(out, hdr + KS_FILE_ID_OFF, KS_FILE_ID_LEN);
	return ok;
}

/* Bring the table up to date with the file.  Unless force, an unchanged file
 * id means nothing to do.  Called with the write lock held. */
static enum kura_err ks_reload(struct local *l, bool force,
			       struct kura_error *err)
{
	uint8_t seen[KS_FILE_ID_LEN];
	if (!force && ks_peek_file_id(l->store_path, seen) &&
	    memcmp(seen, l->file_id, KS_FILE_ID_LEN) == 0)
		return KURA_OK;
	char *buf = NULL;
	size_t len = 0;
	enum kura_err rc =
		kura_read_file(l->store_path, KS_FILE_MAX, &buf, &len, err);
	if (rc != KURA_OK)
		return rc;
	rc = ks_parse(l, (const uint8_t *)buf, len, err);
	free(buf);
	return rc;
}

/* ---- cross-process writer lock ---- */

static enum kura_err flock_retry(struct local *l, int op,
				 struct kura_error *err)
{
	while (flock(l->lock_fd, op) != 0) {
		if (errno == EINTR)
			continue;
		return kura_fail_errno(err, KURA_EIO, errno, "flock '%s'",
				       l->lock_path);
	}
	return KURA_OK;
}

/* Take every writer lock and reload the file: wmu -> flock -> rw. */
static enum kura_err writer_begin(struct local *l, struct kura_error *err)
{
	pthread_mutex_lock(&l->wmu);
	enum kura_err rc = flock_retry(l, LOCK_EX, err);
	if (rc != KURA_OK) {
		pthread_mutex_unlock(&l->wmu);
		return rc;
	}
	pthread_rwlock_wrlock(&l->rw);
	rc = ks_reload(l, false, err);
	if (rc != KURA_OK) {
		pthread_rwlock_unlock(&l->rw);
		(void)flock_retry(l, LOCK_UN, NULL);
		pthread_mutex_unlock(&l->wmu);
	}
	return rc;
}

static void writer_end(struct local *l)
{
	pthread_rwlock_unlock(&l->rw);
	(void)flock_retry(l, LOCK_UN, NULL);
	pthread_mutex_unlock(&l->wmu);
}

/* ---- master key ---- */

/* Load the master key; *absent is set when the file does not exist. */
/* Open the master key file and check it is private and 32 bytes: *fd
 * receives the open file, or -1 with *absent set when there is none. */
static enum kura_err master_open(const char *path, int *fd, bool *absent,
				 struct kura_error *err)
{
	struct stat st;
	enum kura_err rc;
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	*absent = *fd < 0 && errno == ENOENT;
	if (*fd < 0)
		return *absent ?
			       KURA_OK :
			       kura_fail_errno(err, kura_err_from_errno(errno),
					       errno, "open master key '%s'",
					       path);
	if ((rc = kura_check_private_file(*fd, "master key", path, err)) !=
	    KURA_OK)
		goto fail;
	if (fstat(*fd, &st) != 0) {
		rc = kura_fail_errno(err, KURA_EIO, errno, "stat '%s'", path);
		goto fail;
	}
	if (st.st_size != MASTER_KEY_LEN) {
		rc = kura_fail(
			err, KURA_EPERM,
			"master key '%s' is %lld bytes, not %d: not a kura master key",
			path, (long long)st.st_size, MASTER_KEY_LEN);
		goto fail;
	}
	return KURA_OK;
fail:
	close(*fd);
	*fd = -1;
	return rc;
}

static enum kura_err master_load(struct local *l, bool *absent,
				 struct kura_error *err)
{
	int fd;
	enum kura_err rc = master_open(l->master_path, &fd, absent, err);
	if (rc != KURA_OK || *absent)
		return rc;
	struct kura_secret *key = kura_secret_new(MASTER_KEY_LEN);
	if (key == NULL) {
		rc = kura_fail(err, KURA_ENOMEM,
			       "locked memory for the master key");
		goto out;
	}
	rc = kura_pread_all(fd, key->data, MASTER_KEY_LEN, 0, err);
	if (rc != KURA_OK) {
		kura_secret_free(key);
		goto out;
	}
	l->master = key;
out:
	close(fd);
	return rc;
}

/* Before anything is created: both paths resolve, and a master key that
 * exists is private and 32 bytes; a keystore without its master key can
 * never be opened. */
static enum kura_err local_check_config(const struct kura_config *cfg,
					const char *data_dir,
					struct kura_error *err)
{
	char master[PATH_MAX], store[PATH_MAX];
	struct stat st;
	int fd = -1;
	bool absent = false;
	enum kura_err rc = resolve_path(cfg, "master_key_file", data_dir,
					"keys/master.key", master, err);
	if (rc == KURA_OK)
		rc = resolve_path(cfg, "keystore_file", data_dir,
				  "keys/keystore", store, err);
	if (rc == KURA_OK)
		rc = master_open(master, &fd, &absent, err);
	if (rc != KURA_OK)
		return rc;
	if (fd >= 0)
		close(fd);
	if (absent && stat(store, &st) == 0)
		return kura_fail(
			err, KURA_EKEY,
			"master key '%s' is missing but keystore '%s' exists; "
			"restore the master key (a new one could not open the keystore)",
			master, store);
	return KURA_OK;
}

static enum kura_err master_create(struct local *l, struct kura_error *err)
{
	const char *path = l->master_path;
	char dir[PATH_MAX];
	struct kura_secret *key = NULL;
	enum kura_err rc = kura_secret_random(MASTER_KEY_LEN, &key, err);
	if (rc != KURA_OK)
		return rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
		      0600);
	if (fd < 0) {
		kura_secret_free(key);
		return kura_fail_errno(err, kura_err_from_errno(errno), errno,
				       "create master key '%s'", path);
	}
	rc = kura_write_all(fd, key->data, MASTER_KEY_LEN, err);
	if (rc == KURA_OK && fsync(fd) != 0)
		rc = kura_fail_errno(err, kura_err_from_errno(errno), errno,
				     "fsync '%s'", path);
	if (close(fd) != 0 && rc == KURA_OK)
		rc = kura_fail_errno(err, KURA_EIO, errno, "close '%s'", path);
	if (rc == KURA_OK) {
		parent_dir(path, dir, sizeof(dir));
		rc = kura_fsync_dir(dir, err);
	}
	if (rc != KURA_OK) {
		unlink(path);
		kura_secret_free(key);
		return rc;
	}
	l->master = key;
	return KURA_OK;
}

/* ---- operations ---- */

static void local_release(struct local *l)
{
	table_free(l->keks, l->n);
	l->keks = NULL;
	l->n = l->cap = 0;
	kura_secret_free(l->master);
	l->master = NULL;
	if (l->lock_fd >= 0)
		close(l->lock_fd);
	l->lock_fd = -1;
}

static enum kura_err local_open(void *priv, const struct kura_config *cfg,
				const char *data_dir, struct kura_error *err)
{
	struct local *l = priv;
	char dir[PATH_MAX];
	bool locks_ready = false, flocked = false;
	l->lock_fd = -1;

	enum kura_err rc = resolve_path(cfg, "master_key_file", data_dir,
					"keys/master.key", l->master_path, err);
	if (rc == KURA_OK)
		rc = resolve_path(cfg, "keystore_file", data_dir,
				  "keys/keystore", l->store_path, err);
	if (rc != KURA_OK)
		goto out;
	int n = snprintf(l->lock_path, sizeof(l->lock_path), "%s.lock",
			 l->store_path);
	if (n < 0 || (size_t)n >= sizeof(l->lock_path)) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "[keys] keystore_file: path too long");
		goto out;
	}
	parent_dir(l->master_path, dir, sizeof(dir));
	rc = kura_mkdirs(dir, 0700, err);
	if (rc != KURA_OK)
		goto out;
	parent_dir(l->store_path, dir, sizeof(dir));
	rc = kura_mkdirs(dir, 0700, err);
	if (rc != KURA_OK)
		goto out;

	l->lock_fd = open(l->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY,
			  0600);
	if (l->lock_fd < 0) {
		rc = kura_fail_errno(err, kura_err_from_errno(errno), errno,
				     "open '%s'", l->lock_path);
		goto out;
	}
	if (pthread_rwlock_init(&l->rw, NULL) != 0) {
		rc = kura_fail(err, KURA_ENOMEM, "rwlock");
		goto out;
	}
	if (pthread_mutex_init(&l->wmu, NULL) != 0) {
		pthread_rwlock_destroy(&l->rw);
		rc = kura_fail(err, KURA_ENOMEM, "mutex");
		goto out;
	}
	locks_ready = true;

	/* Serialise first-time creation with other processes. */
	rc = flock_retry(l, LOCK_EX, err);
	if (rc != KURA_OK)
		goto out;
	flocked = true;

	struct stat st;
	bool store_exists = stat(l->store_path, &st) == 0;
	if (!store_exists && errno != ENOENT) {
		rc = kura_fail_errno(err, KURA_EIO, errno, "stat '%s'",
				     l->store_path);
		goto out;
	}
	bool absent = false;
	rc = master_load(l, &absent, err);
	if (rc != KURA_OK)
		goto out;
	if (absent && store_exists) {
		rc = kura_fail(
			err, KURA_EKEY,
			"master key '%s' is missing but keystore '%s' exists; "
			"restore the master key (a new one could not open the keystore)",
			l->master_path, l->store_path);
		goto out;
	}
	if (absent) {
		rc = master_create(l, err);
		if (rc != KURA_OK)
			goto out;
	}
	if (store_exists)
		rc = ks_reload(l, true, err);
	else
		rc = ks_save(l, err);
out:
	if (flocked)
		(void)flock_retry(l, LOCK_UN, NULL);
	if (rc != KURA_OK) {
		if (locks_ready) {
			pthread_mutex_destroy(&l->wmu);
			pthread_rwlock_destroy(&l->rw);
		}
		local_release(l);
	}
	return rc;
}

static void local_close(void *priv)
{
	struct local *l = priv;
	local_release(l);
	pthread_mutex_destroy(&l->wmu);
	pthread_rwlock_destroy(&l->rw);
}

/* Add a KEK holding key (taken over: freed on failure too). */
static enum kura_err add_kek(struct local *l, const char *label,
			     struct kura_secret *key,
			     char id_out[KURA_KEK_ID_MAX],
			     struct kura_error *err)
{
	struct kek k;
	memset(&k, 0, sizeof(k));
	size_t label_len = label ? strnlen(label, KS_LABEL_MAX + 1) : 0;
	if (!label_valid(label ? label : "", label_len)) {
		kura_secret_free(key);
		return kura_fail(
			err, KURA_EINVAL,
			"KEK label must be at most %d bytes of UTF-8 without control characters",
			KS_LABEL_MAX);
	}
	memcpy(k.label, label ? label : "", label_len);
	k.label[label_len] = '\0';
	k.label_len = (uint8_t)label_len;
	k.state = KEK_ACTIVE;
	time_t now = time(NULL);
	k.created = now > 0 ? (uint64_t)now : 0;
	k.key = key;
	enum kura_err rc = kura_random_bytes(k.id, sizeof(k.id), err);
	if (rc != KURA_OK) {
		kura_secret_free(k.key);
		return rc;
	}

	rc = writer_begin(l, err);
	if (rc != KURA_OK) {
		kura_secret_free(k.key);
		return rc;
	}
	size_t at = table_lower_bound(l->keks, l->n, k.id);
	if (at < l->n && memcmp(l->keks[at].id, k.id, KEK_RAW_ID_LEN) == 0) {
		rc = kura_fail(err, KURA_EEXIST, "KEK id collision");
		goto out;
	}
	if (l->n >= KS_MAX_KEKS) {
		rc = kura_fail(
			err, KURA_ETOOBIG,
			"keystore '%s' already holds the maximum of %d KEKs",
			l->store_path, KS_MAX_KEKS);
		goto out;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		struct kek *nv = realloc(l->keks, ncap * sizeof(*nv));
		if (nv == NULL) {
			rc = kura_fail(err, KURA_ENOMEM, "keystore table");
			goto out;
		}
		l->keks = nv;
		l->cap = ncap;
	}
	memmove(&l->keks[at + 1], &l->keks[at], (l->n - at) * sizeof(k));
	l->keks[at] = k;
	l->n++;
	rc = ks_save(l, err);
	if (rc != KURA_OK) {
		/* Not on disk: forget it. */
		memmove(&l->keks[at], &l->keks[at + 1],
			(l->n - at - 1) * sizeof(k));
		l->n--;
		goto out;
	}
	id_format(k.id, id_out);
	k.key = NULL; /* owned by the table now */
out:
	writer_end(l);
	kura_secret_free(k.key);
	return rc;
}

static enum kura_err local_kek_create(void *priv, const char *label,
				      char id_out[KURA_KEK_ID_MAX],
				      struct kura_error *err)
{
	struct kura_secret *key = NULL;
	enum kura_err rc = kura_secret_random(KEK_LEN, &key, err);
	if (rc != KURA_OK)
		return rc;
	return add_kek(priv, label, key, id_out, err);
}

/* Bring your own key: the owner's 32 bytes become a KEK like any other
 * (the local keystore cannot make it non-extractable: it is a file). */
static enum kura_err local_kek_import(void *priv, const char *label,
				      const struct kura_secret *material,
				      char id_out[KURA_KEK_ID_MAX],
				      struct kura_error *err)
{
	if (material == NULL || material->len != KEK_LEN)
		return kura_fail(err, KURA_EINVAL,
				 "an imported KEK must be %d bytes", KEK_LEN);
	struct kura_secret *key = kura_secret_dup(material);
	if (key == NULL)
		return kura_fail(err, KURA_ENOMEM, "locked memory for a KEK");
	return add_kek(priv, label, key, id_out, err);
}

/* Find an active KEK.  On success returns with the read lock held; the
 * caller releases it.  A miss reloads the file once. */
static enum kura_err kek_acquire(struct local *l, const char *kek_id,
				 const struct kek **out, struct kura_error *err)
{
	uint8_t id[KEK_RAW_ID_LEN];
	if (!id_parse(kek_id, id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown KEK: not a local provider id");
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_rwlock_rdlock(&l->rw);
		const struct kek *k = table_find(l, id);
		if (k != NULL) {
			if (k->state != KEK_ACTIVE) {
				pthread_rwlock_unlock(&l->rw);
				return kura_fail(err, KURA_EKEY,
						 "KEK '%s' is destroyed",
						 kek_id);
			}
			*out = k;
			return KURA_OK;
		}
		pthread_rwlock_unlock(&l->rw);
		if (attempt > 0)
			break;
		struct kura_error sub = { 0 };
		pthread_rwlock_wrlock(&l->rw);
		enum kura_err rc = ks_reload(l, false, &sub);
		pthread_rwlock_unlock(&l->rw);
		if (rc != KURA_OK)
			return kura_fail(
				err, KURA_EKEY,
				"KEK '%s' not loaded and the keystore cannot be reloaded: %s",
				kek_id, sub.msg);
	}
	return kura_fail(err, KURA_ENOENT, "unknown KEK '%s'", kek_id);
}

static enum kura_err local_wrap(void *priv, const char *kek_id,
				const struct kura_secret *plain,
				const uint8_t *aad, size_t aad_len,
				uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
				struct kura_error *err)
{
	struct local *l = priv;
	if (plain == NULL || plain->len == 0 || plain->len > WRAP_PLAIN_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "wrap: key must be 1..%d bytes",
				 WRAP_PLAIN_MAX);
	if (aad == NULL && aad_len > 0)
		return kura_fail(err, KURA_EINVAL, "wrap: NULL aad");
	const struct kek *k = NULL;
	enum kura_err rc = kek_acquire(l, kek_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	uint8_t buf[1 + WRAP_PLAIN_MAX + KURA_BOX_OVERHEAD];
	buf[0] = WRAP_VERSION;
	rc = kura_box_seal(k->key, aad, aad_len, plain->data, plain->len,
			   buf + 1, err);
	pthread_rwlock_unlock(&l->rw);
	if (rc != KURA_OK)
		return rc;
	size_t n = 1 + plain->len + KURA_BOX_OVERHEAD;
	memcpy(out, buf, n);
	*out_len = n;
	return KURA_OK;
}

static enum kura_err local_unwrap(void *priv, const char *kek_id,
				  const uint8_t *in, size_t in_len,
				  const uint8_t *aad, size_t aad_len,
				  struct kura_secret **out,
				  struct kura_error *err)
{
	struct local *l = priv;
	if (aad == NULL && aad_len > 0)
		return kura_fail(err, KURA_EINVAL, "unwrap: NULL aad");
	const struct kek *k = NULL;
	enum kura_err rc = kek_acquire(l, kek_id, &k, err);
	if (rc != KURA_OK)
		return rc;
	if (in == NULL || in_len < 1 + KURA_BOX_OVERHEAD + 1 ||
	    in_len > 1 + KURA_BOX_OVERHEAD + WRAP_PLAIN_MAX) {
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "wrapped key has a bad length (%zu bytes)",
			       in_len);
	} else if (in[0] != WRAP_VERSION) {
		rc = kura_fail(err, KURA_EINTEGRITY,
			       "wrapped key has unknown version %u",
			       (unsigned)in[0]);
	} else {
		rc = kura_box_open_secret(k->key, aad, aad_len, in + 1,
					  in_len - 1, out, err);
	}
	pthread_rwlock_unlock(&l->rw);
	return rc;
}

static enum kura_err local_kek_destroy(void *priv, const char *kek_id,
				       struct kura_error *err)
{
	struct local *l = priv;
	uint8_t id[KEK_RAW_ID_LEN];
	if (!id_parse(kek_id, id))
		return kura_fail(err, KURA_ENOENT,
				 "unknown KEK: not a local provider id");
	enum kura_err rc = writer_begin(l, err);
	if (rc != KURA_OK)
		return rc;
	struct kek *k = table_find(l, id);
	if (k == NULL) {
		rc = kura_fail(err, KURA_ENOENT, "unknown KEK '%s'", kek_id);
		goto out;
	}
	if (k->state == KEK_DESTROYED)
		goto out; /* already shredded: nothing to do */
	k->state = KEK_DESTROYED;
	rc = ks_save(l, err);
	if (rc != KURA_OK) {
		k->state = KEK_ACTIVE;
		goto out;
	}
	kura_secret_free(k->key);
	k->key = NULL;
out:
	writer_end(l);
	return rc;
}

const struct kura_keys_ops kura_keys_local = {
	.name = "local",
	.caps = KURA_KEYS_CAP_DESTROY | KURA_KEYS_CAP_IMPORT,
	.priv_size = sizeof(struct local),
	.open = local_open,
	.close = local_close,
	.check_config = local_check_config,
	.kek_create = local_kek_create,
	.wrap = local_wrap,
	.unwrap = local_unwrap,
	.kek_destroy = local_kek_destroy,
	.kek_import = local_kek_import,
};

/*
 * fuzz_keystore.c — libFuzzer target for the local key provider's
 * keystore file (src/keys/local.c: header, chunk framing, entry parsing,
 * ordering and label rules) as kura_keys_open reads it from disk.
 *
 * Input: byte 0 is a mode.  Mode bit 0 set: the rest is the keystore file
 * as is (header and framing checks; nothing authenticates).  Otherwise the
 * rest is a 32-byte header followed by chunk plaintexts, each as a 16-bit
 * big-endian length and that many bytes; the harness seals every chunk
 * under the fixed master key with the AAD the format prescribes (file id
 * and chunk count taken from the header), so the fuzzer reaches the entry
 * parser.  Mode bit 1 set: the header's chunk count is replaced by the
 * number of chunks given.
 * Files live in a fresh directory under /tmp (removed at exit).
 * Invariants checked: a keystore that opens can be rewritten (a KEK is
 * created) and the rewritten file opens again; a KEK id taken from the
 * first entry either wraps and unwraps a key back to the same bytes or is
 * refused; a failure says why.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kura/box.h"
#include "kura/buf.h"
#include "kura/config.h"
#include "kura/encode.h"
#include "kura/keys.h"
#include "kura/secret.h"
#include "../tests/unit/rmtree.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER_LEN 32
#define AAD_PREFIX "kura-keystore-v1"
#define AAD_LEN (16 + 16 + 8)

static char dir[64], master_path[128], store_path[128];
static struct kura_config *cfg;
static struct kura_secret *master;

static void teardown(void)
{
	kura_config_free(cfg);
	kura_secret_free(master);
	if (dir[0] != '\0')
		rmtree(dir);
}

static bool write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	bool ok = write(fd, p, n) == (ssize_t)n;
	close(fd);
	return ok;
}

static void setup(void)
{
	static const uint8_t mk[32] = "fuzz-master-key-0123456789abcdef";
	struct kura_error err = { 0 };
	snprintf(dir, sizeof(dir), "/tmp/kura-fuzz-keystore-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(teardown);
	snprintf(master_path, sizeof(master_path), "%s/master.key", dir);
	snprintf(store_path, sizeof(store_path), "%s/keystore", dir);
	master = kura_secret_from(mk, sizeof(mk));
	if (master == NULL || !write_file(master_path, mk, sizeof(mk)) ||
	    kura_config_new(&cfg, &err) != KURA_OK ||
	    kura_config_set(cfg, "keys", "provider", "local", &err) !=
		    KURA_OK ||
	    kura_config_set(cfg, "keys", "master_key_file", master_path,
			    &err) != KURA_OK ||
	    kura_config_set(cfg, "keys", "keystore_file", store_path, &err) !=
		    KURA_OK)
		abort();
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Build the keystore file from the structured input into b. */
static void build(const uint8_t *p, size_t n, bool fix_count,
		  struct kura_buf *b)
{
	uint8_t hdr[HEADER_LEN] = { 0 };
	memcpy(hdr, p, n < HEADER_LEN ? n : HEADER_LEN);
	p += n < HEADER_LEN ? n : HEADER_LEN;
	n -= n < HEADER_LEN ? n : HEADER_LEN;
	/* Count the chunks first (the AAD binds their number). */
	uint32_t given = 0;
	for (size_t i = 0; i + 2 <= n;) {
		size_t len = (size_t)p[i] << 8 | p[i + 1];
		i += 2 + (len < n - i - 2 ? len : n - i - 2);
		given++;
	}
	if (fix_count)
		put_u32(hdr + 12, given);
	uint32_t count = (uint32_t)hdr[12] << 24 | (uint32_t)hdr[13] << 16 |
			 (uint32_t)hdr[14] << 8 | hdr[15];
	/* Whatever b ends up holding (nothing, after a failure) is as good
	 * a keystore file to try. */
	KURA_IGNORE(kura_buf_add(b, hdr, sizeof(hdr)));
	uint32_t c = 0;
	for (size_t i = 0; i + 2 <= n; c++) {
		size_t len = (size_t)p[i] << 8 | p[i + 1];
		if (len > n - i - 2)
			len = n - i - 2;
		const uint8_t *plain = p + i + 2;
		i += 2 + len;
		uint8_t aad[AAD_LEN];
		memcpy(aad, AAD_PREFIX, 16);
		memcpy(aad + 16, hdr + 16, 16);
		put_u32(aad + 32, c);
		put_u32(aad + 36, count);
		size_t slen = len + KURA_BOX_OVERHEAD;
		uint8_t *sealed = malloc(slen);
		struct kura_error err = { 0 };
		if (sealed == NULL ||
		    kura_box_seal(master, aad, sizeof(aad), plain, len, sealed,
				  &err) != KURA_OK)
			abort();
		uint8_t sl[2] = { (uint8_t)(slen >> 8), (uint8_t)slen };
		KURA_IGNORE(kura_buf_add(b, sl, 2));
		KURA_IGNORE(kura_buf_add(b, sealed, slen));
		free(sealed);
	}
}

/* The id of the first entry of the first chunk, as kura names it. */
static void first_id(const uint8_t *p, size_t n, char id[KURA_KEK_ID_MAX])
{
	uint8_t raw[16] = { 0 };
	if (n >= HEADER_LEN + 2 + 2 + 16)
		memcpy(raw, p + HEADER_LEN + 4, 16);
	char hex[33];
	kura_hex_encode(raw, 16, hex);
	snprintf(id, KURA_KEK_ID_MAX, "local-%s", hex);
}

static void exercise(struct kura_keys *k, const char *id)
{
	static const uint8_t dek[32] = "a data encryption key, 32 bytes.";
	static const uint8_t aad[] = "fuzz-aad";
	struct kura_error err = { 0 };
	struct kura_secret *plain = kura_secret_from(dek, sizeof(dek));
	struct kura_secret *back = NULL;
	uint8_t wrapped[KURA_WRAPPED_MAX];
	size_t wlen = 0;
	if (plain == NULL)
		abort();
	if (kura_keys_wrap(k, id, plain, aad, sizeof(aad), wrapped, &wlen,
			   &err) == KURA_OK) {
		if (kura_keys_unwrap(k, id, wrapped, wlen, aad, sizeof(aad),
				     &back, &err) != KURA_OK ||
		    back->len != sizeof(dek) ||
		    memcmp(back->data, dek, sizeof(dek)) != 0)
			abort();
		kura_secret_free(back);
	} else if (err.msg[0] == '\0') {
		abort();
	}
	kura_secret_free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0')
		setup();
	if (size < 1)
		return 0;
	struct kura_buf file;
	kura_buf_init(&file, 4u << 20);
	/* An empty file, after a failure, is still an input. */
	if (data[0] & 1)
		KURA_IGNORE(kura_buf_add(&file, data + 1, size - 1));
	else
		build(data + 1, size - 1, (data[0] & 2) != 0, &file);
	if (!write_file(store_path, file.data ? file.data : "", file.len))
		abort();

	struct kura_keys *k = NULL;
	struct kura_error err = { 0 };
	char id[KURA_KEK_ID_MAX];
	if (kura_keys_open(cfg, dir, &k, &err) != KURA_OK) {
		if (err.code == KURA_OK || err.msg[0] == '\0')
			abort();
		goto out;
	}
	first_id((const uint8_t *)file.data, file.len, id);
	if (!(data[0] & 1))
		exercise(k, id);
	if (kura_keys_kek_create(k, "fuzz", id, &err) != KURA_OK) {
		/* A full keystore may refuse; anything else is a bug. */
		if (err.code != KURA_ETOOBIG && err.code != KURA_EINVAL)
			abort();
	}
	kura_keys_close(k);
	k = NULL;
	if (kura_keys_open(cfg, dir, &k, &err) != KURA_OK) {
		fprintf(stderr, "rewritten keystore does not open: %s\n",
			err.msg);
		abort();
	}
	exercise(k, id);
	kura_keys_close(k);
out:
	kura_buf_release(&file);
	return 0;
}

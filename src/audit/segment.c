/*
 * segment.c — the segment file format (docs/AUDIT.md): a header carrying
 * the tree's frontier at the segment's first record, then entries
 * (u32 BE length, record bytes, 32-byte leaf hash); a buffered sequential
 * reader; the listing of a log directory; and the consistent snapshot the
 * readers take under a shared flock.
 *
 * Parsers take (pointer, length) input and never read past it.  Functions
 * work on caller-owned state; thread-safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "audit_int.h"
#include "kura/fsutil.h"
#include "kura/banned.h"

#define READER_CAP (AUDIT_RECORD_MAX + AUDIT_ENTRY_OVERHEAD + (1u << 20))

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

enum kura_err audit_seg_header_encode(const struct audit_seg_header *h,
				      struct kura_buf *out)
{
	uint8_t b[AUDIT_SEG_HEADER_MAX];
	size_t len = AUDIT_SEG_HEADER_FIXED + (size_t)h->tree.n * AUDIT_HASH + AUDIT_HASH;
	memcpy(b, AUDIT_SEG_MAGIC, 8);
	put32(b + 8, AUDIT_SEG_VERSION);
	put32(b + 12, (uint32_t)len);
	put64(b + 16, h->segno);
	put64(b + 24, h->first_seq);
	put64(b + 32, (uint64_t)h->created_ms);
	put32(b + 40, h->tree.n);
	memcpy(b + AUDIT_SEG_HEADER_FIXED, h->tree.h, (size_t)h->tree.n * AUDIT_HASH);
	SHA256(b, len - AUDIT_HASH, b + len - AUDIT_HASH);
	return kura_buf_add(out, b, len);
}

enum kura_err audit_seg_header_parse(const uint8_t *p, size_t n,
				     struct audit_seg_header *h,
				     struct kura_error *err)
{
	if (n < AUDIT_SEG_HEADER_FIXED)
		return kura_fail(err, KURA_EIO, "segment shorter than its header");
	if (memcmp(p, AUDIT_SEG_MAGIC, 8) != 0)
		return kura_fail(err, KURA_EINTEGRITY, "not an audit segment (bad magic)");
	if (get32(p + 8) != AUDIT_SEG_VERSION)
		return kura_fail(err, KURA_EINTEGRITY, "unknown segment format version %u",
				 get32(p + 8));
	uint32_t len = get32(p + 12), fn = get32(p + 40);
	uint64_t first = get64(p + 24);
	if (fn > AUDIT_FRONTIER_MAX || fn != (unsigned)__builtin_popcountll(first) ||
	    len != AUDIT_SEG_HEADER_FIXED + fn * AUDIT_HASH + AUDIT_HASH)
		return kura_fail(err, KURA_EINTEGRITY, "segment header damaged (sizes)");
	if (n < len)
		return kura_fail(err, KURA_EIO, "segment shorter than its header");
	uint8_t sum[AUDIT_HASH];
	SHA256(p, len - AUDIT_HASH, sum);
	if (memcmp(sum, p + len - AUDIT_HASH, AUDIT_HASH) != 0)
		return kura_fail(err, KURA_EINTEGRITY, "segment header damaged (checksum)");
	h->segno = get64(p + 16);
	h->first_seq = first;
	h->created_ms = (int64_t)get64(p + 32);
	h->tree.size = first;
	h->tree.n = fn;
	memcpy(h->tree.h, p + AUDIT_SEG_HEADER_FIXED, (size_t)fn * AUDIT_HASH);
	h->len = len;
	return KURA_OK;
}

enum audit_entry_status audit_entry_parse(const uint8_t *p, size_t n,
					  struct audit_entry *e)
{
	if (n < 4)
		return AUDIT_ENTRY_SHORT;
	uint32_t len = get32(p);
	if (len == 0 || len > AUDIT_RECORD_MAX)
		return AUDIT_ENTRY_BADLEN;
	if (n - 4 < (size_t)len + AUDIT_HASH)
		return AUDIT_ENTRY_SHORT;
	e->rec = p + 4;
	e->rec_len = len;
	e->hash = p + 4 + len;
	e->len = 4 + (size_t)len + AUDIT_HASH;
	return AUDIT_ENTRY_OK;
}

enum kura_err audit_entry_encode(const void *rec, size_t len,
				 const uint8_t hash[AUDIT_HASH],
				 struct kura_buf *out)
{
	uint8_t l[4];
	if (len == 0 || len > AUDIT_RECORD_MAX)
		return KURA_ETOOBIG;
	put32(l, (uint32_t)len);
	enum kura_err rc = kura_buf_add(out, l, 4);
	if (rc == KURA_OK)
		rc = kura_buf_add(out, rec, len);
	if (rc == KURA_OK)
		rc = kura_buf_add(out, hash, AUDIT_HASH);
	return rc;
}

void audit_seg_path(const char *dir, uint64_t segno, char *out, size_t cap)
{
	snprintf(out, cap, "%s/seg-%08llu.log", dir, (unsigned long long)segno);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

enum kura_err audit_seg_list(const char *dir, uint64_t **out, size_t *n,
			     struct kura_error *err)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT) {
			*out = NULL;
			*n = 0;
			return KURA_OK;
		}
		return kura_fail_errno(err, KURA_EIO, errno, "open '%s'", dir);
	}
	uint64_t *v = NULL;
	size_t len = 0, cap = 0;
	enum kura_err rc = KURA_OK;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *s = de->d_name;
		size_t l = strlen(s);
		if (l < 16 || l > 24 || memcmp(s, "seg-", 4) != 0 ||
		    strcmp(s + l - 4, ".log") != 0)
			continue;
		uint64_t num = 0;
		bool ok = true;
		for (size_t i = 4; i < l - 4; i++) {
			if (s[i] < '0' || s[i] > '9')
				ok = false;
			else
				num = num * 10 + (uint64_t)(s[i] - '0');
		}
		if (!ok)
			continue;
		if (len == cap) {
			size_t c2 = cap ? cap * 2 : 16;
			uint64_t *v2 = realloc(v, c2 * sizeof(*v2));
			if (v2 == NULL) {
				rc = kura_fail(err, KURA_ENOMEM, "segment list");
				break;
			}
			v = v2;
			cap = c2;
		}
		v[len++] = num;
	}
	closedir(d);
	if (rc != KURA_OK) {
		free(v);
		return rc;
	}
	if (len > 0)
		qsort(v, len, sizeof(*v), u64_cmp);
	*out = v;
	*n = len;
	return KURA_OK;
}

bool audit_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

enum kura_err audit_seg_reader_open(struct audit_seg_reader *r,
				    const char *dir, uint64_t segno,
				    uint64_t limit, struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	struct stat st;
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	audit_seg_path(dir, segno, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kura_fail_errno(err, errno == ENOENT ? KURA_ENOENT : KURA_EIO,
				       errno, "open '%s'", path);
	if (fstat(fd, &st) != 0) {
		close(fd);
		return kura_fail_errno(err, KURA_EIO, errno, "stat '%s'", path);
	}
	r->end = (uint64_t)st.st_size < limit ? (uint64_t)st.st_size : limit;
	r->buf = malloc(READER_CAP);
	if (r->buf == NULL) {
		close(fd);
		return kura_fail(err, KURA_ENOMEM, "segment reader");
	}
	r->fd = fd;
	r->cap = READER_CAP;
	r->segno = segno;
	uint8_t h[AUDIT_SEG_HEADER_MAX];
	size_t hn = r->end < sizeof(h) ? (size_t)r->end : sizeof(h);
	struct kura_error e2 = { 0 };
	enum kura_err rc = kura_pread_all(fd, h, hn, 0, &e2);
	if (rc == KURA_OK)
		rc = audit_seg_header_parse(h, hn, &r->hdr, &e2);
	if (rc == KURA_OK && r->hdr.segno != segno)
		rc = kura_fail(&e2, KURA_EINTEGRITY, "header names segment %llu",
			       (unsigned long long)r->hdr.segno);
	if (rc != KURA_OK) {
		audit_seg_reader_close(r);
		return kura_fail(err, rc, "segment %llu: %s", (unsigned long long)segno, e2.msg);
	}
	r->buf_off = r->hdr.len;
	return KURA_OK;
}

/* Make at least want bytes available at r->pos (or all that remain). */
static enum kura_err fill(struct audit_seg_reader *r, size_t want,
			  struct kura_error *err)
{
	if (r->buf_len - r->pos >= want)
		return KURA_OK;
	memmove(r->buf, r->buf + r->pos, r->buf_len - r->pos);
	r->buf_off += r->pos;
	r->buf_len -= r->pos;
	r->pos = 0;
	uint64_t file_pos = r->buf_off + r->buf_len;
	while (r->buf_len < r->cap && file_pos < r->end) {
		size_t room = r->cap - r->buf_len;
		if ((uint64_t)room > r->end - file_pos)
			room = (size_t)(r->end - file_pos);
		ssize_t got = pread(r->fd, r->buf + r->buf_len, room, (off_t)file_pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return kura_fail_errno(err, KURA_EIO, errno, "read segment %llu",
					       (unsigned long long)r->segno);
		if (got == 0)
			break;
		r->buf_len += (size_t)got;
		file_pos += (uint64_t)got;
		if (r->buf_len - r->pos >= want)
			break;
	}
	return KURA_OK;
}

enum kura_err audit_seg_reader_next(struct audit_seg_reader *r,
				    struct audit_entry *e, uint64_t *off,
				    enum audit_entry_status *status,
				    uint64_t *tail, struct kura_error *err)
{
	enum kura_err rc = fill(r, 4, err);
	if (rc != KURA_OK)
		return rc;
	for (;;) {
		enum audit_entry_status st =
			audit_entry_parse(r->buf + r->pos, r->buf_len - r->pos, e);
		uint64_t here = r->buf_off + r->pos;
		if (st == AUDIT_ENTRY_SHORT && here + (r->buf_len - r->pos) < r->end) {
			size_t want = r->buf_len - r->pos >= 4 ?
				4 + (size_t)get32(r->buf + r->pos) + AUDIT_HASH : 4;
			uint64_t had = r->buf_off + r->buf_len;
			rc = fill(r, want, err);
			if (rc != KURA_OK)
				return rc;
			if (r->buf_off + r->buf_len > had)
				continue;
			/* the file shrank under us: report what we have */
			r->end = r->buf_off + r->buf_len;
		}
		*off = here;
		*status = st;
		*tail = r->end - here;
		if (st == AUDIT_ENTRY_OK)
			r->pos += e->len;
		return KURA_OK;
	}
}

enum kura_err audit_seg_reader_tail_zero(struct audit_seg_reader *r,
					 uint64_t off, bool *zero,
					 struct kura_error *err)
{
	uint8_t b[65536];
	*zero = true;
	while (off < r->end && *zero) {
		size_t n = r->end - off < sizeof(b) ? (size_t)(r->end - off) : sizeof(b);
		enum kura_err rc = kura_pread_all(r->fd, b, n, (off_t)off, err);
		if (rc != KURA_OK)
			return rc;
		*zero = audit_all_zero(b, n);
		off += n;
	}
	return KURA_OK;
}

void audit_seg_reader_close(struct audit_seg_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->fd = -1;
	r->buf = NULL;
}

enum kura_err audit_snapshot_take(const char *dir, struct audit_snapshot *s,
				  struct kura_error *err)
{
	char path[AUDIT_PATH_MAX];
	struct stat st;
	memset(s, 0, sizeof(*s));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return kura_fail(err, KURA_ENOENT, "no audit log in '%s'", dir);
	snprintf(path, sizeof(path), "%s/lock", dir);
	int lfd = open(path, O_RDONLY | O_CLOEXEC);
	if (lfd >= 0) {
		while (flock(lfd, LOCK_SH) != 0 && errno == EINTR)
			;
	}
	enum kura_err rc = audit_seg_list(dir, &s->segs, &s->nsegs, err);
	if (rc == KURA_OK && s->nsegs > 0) {
		s->sizes = calloc(s->nsegs, sizeof(*s->sizes));
		if (s->sizes == NULL)
			rc = kura_fail(err, KURA_ENOMEM, "snapshot");
	}
	for (size_t i = 0; rc == KURA_OK && i < s->nsegs; i++) {
		audit_seg_path(dir, s->segs[i], path, sizeof(path));
		if (stat(path, &st) != 0)
			rc = kura_fail_errno(err, KURA_EIO, errno, "stat '%s'", path);
		else
			s->sizes[i] = (uint64_t)st.st_size;
	}
	if (rc == KURA_OK) {
		snprintf(path, sizeof(path), "%s/checkpoints.log", dir);
		s->cp_size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	}
	if (lfd >= 0) {
		flock(lfd, LOCK_UN);
		close(lfd);
	}
	if (rc != KURA_OK)
		audit_snapshot_release(s);
	return rc;
}

void audit_snapshot_release(struct audit_snapshot *s)
{
	free(s->segs);
	free(s->sizes);
	memset(s, 0, sizeof(*s));
}

/*
 * record.c — the bytes of an audit record: canonical JSON (members sorted
 * by name in byte order, no white space, ASCII only: the escaping of
 * docs/CERTIFICATE.md, which jansson's JSON_ENSURE_ASCII also produces),
 * and a small scanner that reads the members kura needs back.
 *
 * A record is encoded in two steps because its "seq" and "time" are only
 * known when the writer thread places it in the log: prepare (in the
 * caller's thread) renders every other member and splits them around
 * where "seq" and "time" sort; finish (in the writer) joins the pieces.
 *
 * Invariant: the record struct has no member for a secret, and detail
 * members may not shadow the fixed ones.  Pure functions; thread-safe.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit_int.h"
#include "kura/encode.h"
#include "kura/parse.h"
#include "kura/timefmt.h"
#include "kura/banned.h"

#define DETAIL_DEPTH_MAX 16

static const char hexup[] = "0123456789ABCDEF";

static enum kura_err add_u(struct kura_buf *out, unsigned cp)
{
	char e[6] = { '\\',
		      'u',
		      hexup[(cp >> 12) & 15],
		      hexup[(cp >> 8) & 15],
		      hexup[(cp >> 4) & 15],
		      hexup[cp & 15] };
	return kura_buf_add(out, e, sizeof(e));
}

/* Decode one UTF-8 sequence at s[0..n); *len its length.  Returns the
 * code point, or -1 for an ill-formed sequence (then *len is 1). */
static long utf8_next(const unsigned char *s, size_t n, size_t *len)
{
	unsigned char c = s[0];
	size_t l;
	unsigned long cp, min;
	*len = 1;
	if (c < 0x80)
		return c;
	if ((c & 0xE0) == 0xC0) {
		l = 2, cp = c & 0x1F, min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		l = 3, cp = c & 0x0F, min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		l = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (l > n)
		return -1;
	for (size_t i = 1; i < l; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*len = l;
	return (long)cp;
}

enum kura_err audit_json_string(struct kura_buf *out, const char *s, size_t n)
{
	enum kura_err rc = kura_buf_addch(out, '"');
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (rc == KURA_OK && i < n) {
		size_t l;
		long cp = utf8_next(p + i, n - i, &l);
		i += l;
		if (cp < 0)
			cp = 0xFFFD;
		switch (cp) {
		case '"':
			rc = kura_buf_add(out, "\\\"", 2);
			break;
		case '\\':
			rc = kura_buf_add(out, "\\\\", 2);
			break;
		case '\b':
			rc = kura_buf_add(out, "\\b", 2);
			break;
		case '\f':
			rc = kura_buf_add(out, "\\f", 2);
			break;
		case '\n':
			rc = kura_buf_add(out, "\\n", 2);
			break;
		case '\r':
			rc = kura_buf_add(out, "\\r", 2);
			break;
		case '\t':
			rc = kura_buf_add(out, "\\t", 2);
			break;
		default:
			if (cp < 0x20) {
				rc = add_u(out, (unsigned)cp);
			} else if (cp < 0x80) {
				rc = kura_buf_addch(out, (char)cp);
			} else if (cp < 0x10000) {
				rc = add_u(out, (unsigned)cp);
			} else {
				unsigned long v = (unsigned long)cp - 0x10000;
				rc = add_u(out, (unsigned)(0xD800 + (v >> 10)));
				if (rc == KURA_OK)
					rc = add_u(out,
						   (unsigned)(0xDC00 +
							      (v & 0x3FF)));
			}
		}
	}
	return rc == KURA_OK ? kura_buf_addch(out, '"') : rc;
}

/* ---- prepare / finish ---- */

struct member {
	const char *name;
	size_t name_len;
	size_t off, len; /* the value's canonical text in vals */
};

struct members {
	struct member *v;
	size_t n, cap;
	struct kura_buf vals;
};

static enum kura_err push(struct members *m, const char *name, size_t name_len,
			  size_t off)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct member *v = realloc(m->v, cap * sizeof(*v));
		if (v == NULL)
			return KURA_ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n++] =
		(struct member){ name, name_len, off, m->vals.len - off };
	return KURA_OK;
}

static enum kura_err add_str(struct members *m, const char *name, const char *s,
			     size_t n)
{
	size_t off = m->vals.len;
	enum kura_err rc = audit_json_string(&m->vals, s, n);
	return rc == KURA_OK ? push(m, name, strlen(name), off) : rc;
}

static enum kura_err add_num(struct members *m, const char *name, uint64_t v)
{
	size_t off = m->vals.len;
	enum kura_err rc =
		kura_buf_addf(&m->vals, "%llu", (unsigned long long)v);
	return rc == KURA_OK ? push(m, name, strlen(name), off) : rc;
}

static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

static int member_cmp(const void *x, const void *y)
{
	const struct member *a = x, *b = y;
	return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* Canonical text of a detail value: strings and integers, objects and
 * arrays of them; no reals (their text is not canonical). */
static enum kura_err detail_value(struct kura_buf *out, json_t *v, int depth)
{
	enum kura_err rc = KURA_OK;
	if (depth > DETAIL_DEPTH_MAX)
		return KURA_EINVAL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return audit_json_string(out, json_string_value(v),
					 json_string_length(v));
	case JSON_INTEGER:
		return kura_buf_addf(out, "%lld",
				     (long long)json_integer_value(v));
	case JSON_TRUE:
		return kura_buf_addstr(out, "true");
	case JSON_FALSE:
		return kura_buf_addstr(out, "false");
	case JSON_NULL:
		return kura_buf_addstr(out, "null");
	case JSON_ARRAY:
		rc = kura_buf_addch(out, '[');
		for (size_t i = 0; rc == KURA_OK && i < json_array_size(v);
		     i++) {
			if (i > 0)
				rc = kura_buf_addch(out, ',');
			if (rc == KURA_OK)
				rc = detail_value(out, json_array_get(v, i),
						  depth + 1);
		}
		return rc == KURA_OK ? kura_buf_addch(out, ']') : rc;
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		struct member *ms = calloc(n ? n : 1, sizeof(*ms));
		const char *k;
		json_t *x;
		if (ms == NULL)
			return KURA_ENOMEM;
		json_object_foreach(v, k, x)
		{
			ms[i].name = k;
			ms[i].name_len = strlen(k);
			i++;
		}
		qsort(ms, n, sizeof(*ms), member_cmp);
		rc = kura_buf_addch(out, '{');
		for (i = 0; rc == KURA_OK && i < n; i++) {
			if (i > 0)
				rc = kura_buf_addch(out, ',');
			if (rc == KURA_OK)
				rc = audit_json_string(out, ms[i].name,
						       ms[i].name_len);
			if (rc == KURA_OK)
				rc = kura_buf_addch(out, ':');
			if (rc == KURA_OK)
				rc = detail_value(
					out, json_object_get(v, ms[i].name),
					depth + 1);
		}
		free(ms);
		return rc == KURA_OK ? kura_buf_addch(out, '}') : rc;
	}
	default:
		return KURA_EINVAL;
	}
}

static enum kura_err emit(struct kura_buf *b, const struct members *m,
			  const struct member *x)
{
	enum kura_err rc = b->len ? kura_buf_addch(b, ',') : KURA_OK;
	if (rc == KURA_OK)
		rc = audit_json_string(b, x->name, x->name_len);
	if (rc == KURA_OK)
		rc = kura_buf_addch(b, ':');
	if (rc == KURA_OK)
		rc = kura_buf_add(b, m->vals.data + x->off, x->len);
	return rc;
}

enum kura_err audit_record_prepare(const struct kura_audit_record *r,
				   struct audit_prepared *out,
				   struct kura_error *err)
{
	struct members m = { 0 };
	struct kura_buf part[3];
	json_t *detail = NULL;
	enum kura_err rc = KURA_OK;
	kura_buf_init(&m.vals, AUDIT_RECORD_MAX);
	for (int i = 0; i < 3; i++)
		kura_buf_init(&part[i], AUDIT_RECORD_MAX);

#define STR(field)                                                            \
	do {                                                                  \
		if (rc == KURA_OK && r->field != NULL)                        \
			rc = add_str(&m, #field, r->field, strlen(r->field)); \
	} while (0)
#define NUM(field)                                          \
	do {                                                \
		if (rc == KURA_OK && r->field != 0)         \
			rc = add_num(&m, #field, r->field); \
	} while (0)
	STR(type);
	STR(op);
	STR(request_id);
	NUM(tenant_id);
	STR(tenant);
	STR(access_key);
	STR(source);
	STR(bucket);
	STR(version);
	STR(row);
	NUM(bytes_in);
	NUM(bytes_out);
	NUM(status);
	STR(error);
	NUM(latency_us);
	STR(actor);
#undef STR
#undef NUM
	if (rc == KURA_OK && r->key != NULL)
		rc = add_str(&m, "key", r->key,
			     r->key_len ? r->key_len : strlen(r->key));

	if (rc == KURA_OK && r->detail_json != NULL) {
		json_error_t je;
		detail =
			json_loads(r->detail_json, JSON_REJECT_DUPLICATES, &je);
		if (detail == NULL || !json_is_object(detail)) {
			rc = kura_fail(err, KURA_EINVAL,
				       "audit detail is not a JSON object");
			goto out;
		}
		const char *k;
		json_t *v;
		json_object_foreach(detail, k, v)
		{
			size_t off = m.vals.len;
			rc = detail_value(&m.vals, v, 0);
			if (rc == KURA_OK)
				rc = push(&m, k, strlen(k), off);
			if (rc != KURA_OK)
				break;
		}
	}
	if (rc != KURA_OK) {
		rc = kura_fail(
			err, rc == KURA_EINVAL ? KURA_EINVAL : KURA_ENOMEM,
			"audit record: %s",
			rc == KURA_EINVAL ?
				"detail holds a value that is not a string, integer, "
				"boolean, null, array or object" :
				"too large or out of memory");
		goto out;
	}
	qsort(m.v, m.n, sizeof(*m.v), member_cmp);
	for (size_t i = 0; i < m.n; i++) {
		const struct member *x = &m.v[i];
		bool dup = i > 0 && member_cmp(&m.v[i - 1], x) == 0;
		if (dup || name_cmp(x->name, x->name_len, "seq", 3) == 0 ||
		    name_cmp(x->name, x->name_len, "time", 4) == 0) {
			rc = kura_fail(err, KURA_EINVAL,
				       "audit detail member '%.*s' "
				       "shadows a record member",
				       (int)x->name_len, x->name);
			goto out;
		}
		int where = name_cmp(x->name, x->name_len, "seq", 3) < 0  ? 0 :
			    name_cmp(x->name, x->name_len, "time", 4) < 0 ? 1 :
									    2;
		rc = emit(&part[where], &m, x);
		if (rc != KURA_OK) {
			rc = kura_fail(err, KURA_ETOOBIG,
				       "audit record too large");
			goto out;
		}
	}
	out->pre = kura_buf_detach(&part[0], &out->pre_len);
	out->mid = kura_buf_detach(&part[1], &out->mid_len);
	out->post = kura_buf_detach(&part[2], &out->post_len);
	if (out->pre == NULL || out->mid == NULL || out->post == NULL) {
		audit_prepared_release(out);
		rc = kura_fail(err, KURA_ENOMEM, "audit record");
	}
out:
	json_decref(detail);
	free(m.v);
	kura_buf_release(&m.vals);
	for (int i = 0; i < 3; i++)
		kura_buf_release(&part[i]);
	return rc;
}

void audit_prepared_release(struct audit_prepared *p)
{
	free(p->pre);
	free(p->mid);
	free(p->post);
	memset(p, 0, sizeof(*p));
}

enum kura_err audit_record_finish(const struct audit_prepared *p, uint64_t seq,
				  int64_t time_ms, struct kura_buf *out)
{
	char ts[KURA_TIME_ISO8601_LEN];
	kura_time_iso8601(time_ms, ts);
	enum kura_err rc = kura_buf_addch(out, '{');
	if (rc == KURA_OK && p->pre_len)
		rc = kura_buf_add(out, p->pre, p->pre_len);
	if (rc == KURA_OK)
		rc = kura_buf_addf(out, "%s\"seq\":%llu", p->pre_len ? "," : "",
				   (unsigned long long)seq);
	if (rc == KURA_OK && p->mid_len) {
		rc = kura_buf_addch(out, ',');
		if (rc == KURA_OK)
			rc = kura_buf_add(out, p->mid, p->mid_len);
	}
	if (rc == KURA_OK)
		rc = kura_buf_addf(out, ",\"time\":\"%s\"", ts);
	if (rc == KURA_OK && p->post_len) {
		rc = kura_buf_addch(out, ',');
		if (rc == KURA_OK)
			rc = kura_buf_add(out, p->post, p->post_len);
	}
	return rc == KURA_OK ? kura_buf_addch(out, '}') : rc;
}

/* ---- scanning ---- */

struct scan {
	const char *p;
	size_t n, i;
};

static void ws(struct scan *s)
{
	while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' ||
			       s->p[s->i] == '\n' || s->p[s->i] == '\r'))
		s->i++;
}

static bool ishex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* A string at s->i; *body is what lies between the quotes. */
static bool scan_string(struct scan *s, struct kura_str *body)
{
	if (s->i >= s->n || s->p[s->i] != '"')
		return false;
	size_t start = ++s->i;
	while (s->i < s->n) {
		unsigned char c = (unsigned char)s->p[s->i];
		if (c == '"') {
			*body = (struct kura_str){ s->p + start, s->i - start };
			s->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (s->i + 1 >= s->n)
				return false;
			char e = s->p[s->i + 1];
			if (e == 'u') {
				if (s->i + 6 > s->n)
					return false;
				for (int k = 2; k < 6; k++)
					if (!ishex(s->p[s->i + k]))
						return false;
				s->i += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", e) || e == '\0')
				return false;
			s->i += 2;
			continue;
		}
		s->i++;
	}
	return false;
}

static bool scan_value(struct scan *s, int depth);

static bool scan_number(struct scan *s)
{
	size_t start = s->i;
	if (s->i < s->n && s->p[s->i] == '-')
		s->i++;
	size_t d = s->i;
	while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
		s->i++;
	if (s->i == d)
		return false;
	if (s->i < s->n && s->p[s->i] == '.') {
		size_t f = ++s->i;
		while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
			s->i++;
		if (s->i == f)
			return false;
	}
	if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
		s->i++;
		if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
			s->i++;
		size_t e = s->i;
		while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
			s->i++;
		if (s->i == e)
			return false;
	}
	return s->i > start;
}

static bool scan_lit(struct scan *s, const char *lit)
{
	size_t l = strlen(lit);
	if (s->n - s->i < l || memcmp(s->p + s->i, lit, l) != 0)
		return false;
	s->i += l;
	return true;
}

static bool scan_container(struct scan *s, int depth, char close)
{
	s->i++;
	ws(s);
	if (s->i < s->n && s->p[s->i] == close) {
		s->i++;
		return true;
	}
	for (;;) {
		if (close == '}') {
			struct kura_str name;
			if (!scan_string(s, &name))
				return false;
			ws(s);
			if (s->i >= s->n || s->p[s->i] != ':')
				return false;
			s->i++;
			ws(s);
		}
		if (!scan_value(s, depth + 1))
			return false;
		ws(s);
		if (s->i >= s->n)
			return false;
		if (s->p[s->i] == close) {
			s->i++;
			return true;
		}
		if (s->p[s->i] != ',')
			return false;
		s->i++;
		ws(s);
	}
}

static bool scan_value(struct scan *s, int depth)
{
	if (depth > DETAIL_DEPTH_MAX + 2 || s->i >= s->n)
		return false;
	struct kura_str body;
	switch (s->p[s->i]) {
	case '"':
		return scan_string(s, &body);
	case '{':
		return scan_container(s, depth, '}');
	case '[':
		return scan_container(s, depth, ']');
	case 't':
		return scan_lit(s, "true");
	case 'f':
		return scan_lit(s, "false");
	case 'n':
		return scan_lit(s, "null");
	default:
		return scan_number(s);
	}
}

static bool parse_time_ms(struct kura_str t, int64_t *ms)
{
	int64_t secs;
	/* "YYYY-MM-DDTHH:MM:SS.fffZ" */
	if (t.len != 24 || t.p[19] != '.' ||
	    kura_time_parse_iso8601(t.p, t.len, &secs) != KURA_OK)
		return false;
	int64_t f = 0;
	for (int k = 20; k < 23; k++) {
		if (t.p[k] < '0' || t.p[k] > '9')
			return false;
		f = f * 10 + (t.p[k] - '0');
	}
	*ms = secs * 1000 + f;
	return true;
}

enum kura_err audit_record_scan(const char *p, size_t n,
				struct audit_fields *out)
{
	struct scan s = { p, n, 0 };
	struct audit_fields f;
	memset(&f, 0, sizeof(f));
	f.time_ms = -1;
	unsigned seen = 0;
	ws(&s);
	if (s.i >= n || p[s.i] != '{')
		return KURA_EINVAL;
	s.i++;
	ws(&s);
	if (s.i < n && p[s.i] == '}')
		s.i++;
	else
		for (;;) {
			struct kura_str name;
			if (!scan_string(&s, &name))
				return KURA_EINVAL;
			ws(&s);
			if (s.i >= n || p[s.i] != ':')
				return KURA_EINVAL;
			s.i++;
			ws(&s);
			size_t v0 = s.i;
			if (!scan_value(&s, 1))
				return KURA_EINVAL;
			struct kura_str val = { p + v0, s.i - v0 };
			struct kura_str body = { 0 };
			bool str = val.len >= 2 && val.p[0] == '"';
			if (str)
				body = (struct kura_str){ val.p + 1,
							  val.len - 2 };
			static const char *const names[] = {
				"seq",	  "time",   "tenant_id",
				"type",	  "op",	    "request_id",
				"tenant", "bucket", "key",
			};
			for (unsigned k = 0;
			     k < sizeof(names) / sizeof(names[0]); k++) {
				if (!kura_str_eq_cstr(name, names[k]))
					continue;
				if (seen & (1u << k))
					return KURA_EINVAL; /* duplicate member */
				seen |= 1u << k;
				switch (k) {
				case 0:
					if (kura_parse_u64(val.p, val.len,
							   UINT64_MAX,
							   &f.seq) != KURA_OK)
						return KURA_EINVAL;
					f.has_seq = true;
					break;
				case 1:
					if (!str)
						return KURA_EINVAL;
					f.time = body;
					if (!parse_time_ms(body, &f.time_ms))
						f.time_ms = -1;
					break;
				case 2:
					if (kura_parse_u64(
						    val.p, val.len, UINT64_MAX,
						    &f.tenant_id) != KURA_OK)
						return KURA_EINVAL;
					break;
				default:
					if (!str)
						return KURA_EINVAL;
					struct kura_str *dst[] = {
						&f.type,       &f.op,
						&f.request_id, &f.tenant,
						&f.bucket,     &f.key
					};
					*dst[k - 3] = body;
				}
			}
			ws(&s);
			if (s.i >= n)
				return KURA_EINVAL;
			if (p[s.i] == '}') {
				s.i++;
				break;
			}
			if (p[s.i] != ',')
				return KURA_EINVAL;
			s.i++;
			ws(&s);
		}
	ws(&s);
	if (s.i != n)
		return KURA_EINVAL;
	*out = f;
	return KURA_OK;
}

static int hexv(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static enum kura_err add_utf8(struct kura_buf *b, unsigned long cp)
{
	char u[4];
	size_t l;
	if (cp < 0x80) {
		u[0] = (char)cp, l = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6)),
		u[1] = (char)(0x80 | (cp & 0x3F)), l = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12)),
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F)), l = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18)),
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)),
		u[3] = (char)(0x80 | (cp & 0x3F));
		l = 4;
	}
	return kura_buf_add(b, u, l);
}

enum kura_err audit_json_unescape(struct kura_str s, struct kura_buf *out)
{
	enum kura_err rc = KURA_OK;
	for (size_t i = 0; rc == KURA_OK && i < s.len;) {
		char c = s.p[i];
		if (c != '\\') {
			rc = kura_buf_addch(out, c);
			i++;
			continue;
		}
		if (i + 1 >= s.len)
			return KURA_EINVAL;
		char e = s.p[i + 1];
		static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
		const char *m = e ? strchr(esc, e) : NULL;
		if (e != 'u') {
			if (m == NULL || (m - esc) % 2 != 0)
				return KURA_EINVAL;
			rc = kura_buf_addch(out, m[1]);
			i += 2;
			continue;
		}
		if (i + 6 > s.len)
			return KURA_EINVAL;
		unsigned long cp = 0;
		for (int k = 2; k < 6; k++) {
			if (!ishex(s.p[i + k]))
				return KURA_EINVAL;
			cp = cp * 16 + (unsigned long)hexv(s.p[i + k]);
		}
		i += 6;
		if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= s.len &&
		    s.p[i] == '\\' && s.p[i + 1] == 'u') {
			unsigned long lo = 0;
			bool ok = true;
			for (int k = 2; k < 6; k++) {
				if (!ishex(s.p[i + k]))
					ok = false;
				else
					lo = lo * 16 +
					     (unsigned long)hexv(s.p[i + k]);
			}
			if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				     (lo - 0xDC00);
				i += 6;
			}
		}
		if (cp >= 0xD800 && cp <= 0xDFFF)
			cp = 0xFFFD;
		rc = add_utf8(out, cp);
	}
	return rc;
}

/*
 * kmip.c — the kmip key provider: KEKs held by a KMIP 1.4 server, which
 * performs wrap and unwrap itself (Encrypt/Decrypt, AES-256-GCM), so a KEK
 * never reaches this host.
 *
 * Configuration ([keys]): server = HOST:PORT, ca_file, cert_file, key_file
 * (mode 0600), server_name (default: the host of server), timeout seconds,
 * kmip_allow_get (default false), bucket_key_ttl.  open() dials once and
 * negotiates the protocol version (Discover Versions; 1.4 preferred, which
 * AES-GCM with additional data needs), so a wrong address, certificate or
 * name is reported at start-up.
 *
 * KEK id: "kmip:" + the server's Unique Identifier (printable ASCII).
 *
 * Wrapped form (at most 2 + 12 + 64 + 16 = 94 bytes):
 *   version u8 = 0x01 | mode u8 | IV (12 random bytes) | ciphertext (the
 *   length of the plaintext, 1..64) | GCM tag (16 bytes)
 *   AES-256-GCM under the KEK with the caller's AAD (nothing else).
 *   mode 0x01: sealed by the server (KMIP Encrypt); 0x02: sealed here with
 *   the KEK fetched by Get (kmip_allow_get).  Both modes compute the same
 *   function, so either path opens either mode; the byte records where the
 *   KEK was used.  The tag is always sent whole: PyKMIP would accept a
 *   truncated one.
 *
 * kmip_allow_get: a server that answers Encrypt/Decrypt with Operation Not
 * Supported (or speaks no KMIP 1.4) can still be used by fetching the KEK
 * into locked memory and running AES-GCM locally; the copy is kept at most
 * bucket_key_ttl seconds (0: not kept) and wiped by a sweeper thread.  Off
 * by default, and then such a server is refused at the first wrap.
 *
 * Errors: a server that cannot be reached is KURA_EKEY (with a short
 * back-off, see kmip_int.h); Item Not Found is KURA_ENOENT; a KEK that is
 * not Active (asked with Get Attributes when an operation fails) is
 * KURA_EKEY; a Decrypt refused on an Active key is KURA_EINTEGRITY, since
 * servers report a bad tag only as a generic failure.  PyKMIP deletes
 * destroyed objects outright, so there a destroyed KEK reads as KURA_ENOENT.
 *
 * Signing slots are left NULL: PyKMIP 0.10 creates no EC key pairs, and its
 * RSA Sign hashes the data it is given and uses the maximum PSS salt, so it
 * cannot sign a caller's SHA-256 digest as RSASSA-PSS with a 32-byte salt.
 *
 * Threading: the connection pool is thread-safe; the fetched-KEK cache has
 * its own mutex; the negotiated version is fixed at open.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kura/box.h"
#include "kura/buf.h"
#include "kura/config.h"
#include "kura/encode.h"
#include "kura/keys.h"
#include "kura/kmip_ttlv.h"
#include "kura/log.h"
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "kmip_int.h"
#include "kura/banned.h"

#define ID_PREFIX "kmip:"
#define ID_PREFIX_LEN (sizeof(ID_PREFIX) - 1)
#define UID_MAX (KURA_KEK_ID_MAX - 1 - ID_PREFIX_LEN)
#define LABEL_MAX 128
#define KEK_LEN 32
#define PLAIN_MAX 64
#define AAD_MAX 512
#define IV_LEN 12
#define TAG_LEN 16
#define WRAP_VERSION 0x01
#define WRAP_MODE_SERVER 0x01
#define WRAP_MODE_LOCAL 0x02
#define WRAP_HDR 2
#define WRAP_OVERHEAD (WRAP_HDR + IV_LEN + TAG_LEN)
#define REQ_MAX 4096
#define CACHE_MAX 64

struct cached_kek {
	char uid[UID_MAX + 1];
	struct kura_secret *key; /* NULL: free slot */
	uint64_t expires_ns;
};

struct kmip {
	struct kmip_pool pool;
	struct kura_kmip_version ver;
	bool allow_get;
	uint64_t ttl_ns;
	atomic_bool refused; /* server will not Encrypt/Decrypt */
	atomic_bool warned;

	pthread_mutex_t cmu; /* guards cache and stop */
	pthread_cond_t cwake;
	bool sweeper; /* thread running */
	bool stop;
	pthread_t sweeper_tid;
	struct cached_kek cache[CACHE_MAX];
};

/* ---- ids, labels ---- */

static bool uid_valid(const char *p, size_t n)
{
	if (n == 0 || n > UID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return false;
	return true;
}

/* The server's identifier inside a kmip provider id. */
static enum kura_err id_parse(const char *id, struct kura_str *uid,
			      struct kura_error *err)
{
	size_t n = id ? strnlen(id, KURA_KEK_ID_MAX) : 0;
	if (n <= ID_PREFIX_LEN || n >= KURA_KEK_ID_MAX ||
	    memcmp(id, ID_PREFIX, ID_PREFIX_LEN) != 0 ||
	    !uid_valid(id + ID_PREFIX_LEN, n - ID_PREFIX_LEN))
		return kura_fail(err, KURA_ENOENT,
				 "unknown KEK: not a kmip provider id");
	uid->p = id + ID_PREFIX_LEN;
	uid->len = n - ID_PREFIX_LEN;
	return KURA_OK;
}

static enum kura_err label_check(const char *label, struct kura_str *out,
				 struct kura_error *err)
{
	size_t n = label ? strnlen(label, LABEL_MAX + 1) : 0;
	bool ok = n <= LABEL_MAX && kura_utf8_valid(label ? label : "", n);
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char c = (unsigned char)label[i];
		if (c < 0x20 || c == 0x7f)
			ok = false;
	}
	if (!ok)
		return kura_fail(
			err, KURA_EINVAL,
			"KEK label must be at most %d bytes of UTF-8 without control characters",
			LABEL_MAX);
	out->p = label ? label : "";
	out->len = n;
	return KURA_OK;
}

static const char *state_name(uint32_t s)
{
	switch (s) {
	case KURA_KMIP_STATE_PRE_ACTIVE:
		return "pre-active";
	case KURA_KMIP_STATE_ACTIVE:
		return "active";
	case KURA_KMIP_STATE_DEACTIVATED:
		return "deactivated";
	case KURA_KMIP_STATE_COMPROMISED:
		return "compromised";
	case KURA_KMIP_STATE_DESTROYED:
		return "destroyed";
	case KURA_KMIP_STATE_DESTROYED_COMPROMISED:
		return "destroyed (compromised)";
	default:
		return "in an unknown state";
	}
}

static const char *op_name(uint32_t op)
{
	switch (op) {
	case KURA_KMIP_OP_CREATE:
		return "Create";
	case KURA_KMIP_OP_REGISTER:
		return "Register";
	case KURA_KMIP_OP_GET:
		return "Get";
	case KURA_KMIP_OP_GET_ATTRIBUTES:
		return "Get Attributes";
	case KURA_KMIP_OP_ACTIVATE:
		return "Activate";
	case KURA_KMIP_OP_REVOKE:
		return "Revoke";
	case KURA_KMIP_OP_DESTROY:
		return "Destroy";
	case KURA_KMIP_OP_DISCOVER_VERSIONS:
		return "Discover Versions";
	case KURA_KMIP_OP_ENCRYPT:
		return "Encrypt";
	case KURA_KMIP_OP_DECRYPT:
		return "Decrypt";
	default:
		return "operation";
	}
}

/* ---- one request ---- */

/* An encoder over locked memory (sensitive requests) or a bounded buffer. */
struct req {
	struct kura_ttlv_enc e;
	struct kura_buf buf;
	struct kura_secret *sec;
};

static enum kura_err req_init(struct req *r, bool sensitive,
			      struct kura_error *err)
{
	memset(r, 0, sizeof(*r));
	if (sensitive) {
		r->sec = kura_secret_new(KURA_SECRET_MAX);
		if (r->sec == NULL)
			return kura_fail(err, KURA_ENOMEM,
					 "locked memory for a KMIP request");
		kura_ttlv_enc_init_fixed(&r->e, r->sec->data, r->sec->len);
	} else {
		kura_buf_init(&r->buf, REQ_MAX);
		kura_ttlv_enc_init_buf(&r->e, &r->buf);
	}
	return KURA_OK;
}

static void req_release(struct req *r)
{
	kura_secret_free(r->sec);
	kura_buf_release(&r->buf);
}

/* Send the encoded request and parse the reply into res (whose views
 * borrow reply).  A KMIP-level failure is not an error here: res->status
 * says so. */
static enum kura_err call(struct kmip *k, struct req *r, uint32_t op,
			  bool sensitive_reply, struct kmip_reply *reply,
			  struct kura_kmip_result *res, struct kura_error *err)
{
	size_t len = 0;
	enum kura_err rc = kura_ttlv_enc_finish(&r->e, &len, err);
	if (rc != KURA_OK)
		return rc;
	rc = kmip_pool_roundtrip(&k->pool, kura_ttlv_enc_data(&r->e), len,
				 sensitive_reply, reply, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_kmip_parse_response(reply->p, reply->len, op, res, err);
	if (rc != KURA_OK) {
		kmip_reply_release(reply);
		return rc;
	}
	if (res->status == KURA_KMIP_STATUS_PENDING ||
	    res->status == KURA_KMIP_STATUS_UNDONE) {
		kmip_reply_release(reply);
		return kura_fail(err, KURA_EPROTO,
				 "KMIP %s: unexpected asynchronous result %u",
				 op_name(op), (unsigned)res->status);
	}
	return KURA_OK;
}

/* A failed result as a kura error. */
static enum kura_err result_fail(const struct kura_kmip_result *res,
				 uint32_t op, struct kura_str uid,
				 struct kura_error *err)
{
	enum kura_err code = KURA_EKEY;
	if (res->reason == KURA_KMIP_REASON_ITEM_NOT_FOUND)
		code = KURA_ENOENT;
	int mlen = res->message.len > 160 ? 160 : (int)res->message.len;
	return kura_fail(err, code,
			 "KMIP %s of '%.*s' failed (reason 0x%x): %.*s",
			 op_name(op), (int)uid.len, uid.p ? uid.p : "",
			 (unsigned)res->reason, mlen,
			 res->message.p ? res->message.p : "");
}

/* The Unique Identifier of a response payload, checked. */
static enum kura_err payload_uid(const struct kura_kmip_result *res,
				 uint32_t op, struct kura_str *out,
				 struct kura_error *err)
{
	struct kura_ttlv it;
	struct kura_str uid;
	if (!kura_ttlv_find(&res->payload, KURA_KMIP_TAG_UNIQUE_IDENTIFIER,
			    &it) ||
	    kura_ttlv_get_text(&it, &uid) != KURA_OK ||
	    !uid_valid(uid.p, uid.len))
		return kura_fail(
			err, KURA_EPROTO,
			"KMIP %s: reply without a usable unique identifier",
			op_name(op));
	*out = uid;
	return KURA_OK;
}

/* Operations on one object with nothing to read back but success. */
static enum kura_err simple_op(struct kmip *k, uint32_t op, struct kura_str uid,
			       struct kura_kmip_result *res_out,
			       struct kura_error *err)
{
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	enum kura_err rc = req_init(&r, false, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_uid_op(&r.e, k->ver, op, uid);
	rc = call(k, &r, op, false, &reply, &res, err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res_out != NULL) {
		*res_out = res;
		res_out->message.p = NULL; /* borrowed the reply */
		res_out->message.len = 0;
		res_out->has_payload = false;
	}
	if (res.status != KURA_KMIP_STATUS_SUCCESS)
		rc = result_fail(&res, op, uid, err);
	kmip_reply_release(&reply);
	return rc;
}

/* The State attribute of an object. */
static enum kura_err get_state(struct kmip *k, struct kura_str uid,
			       uint32_t *state, struct kura_error *err)
{
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	enum kura_err rc = req_init(&r, false, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_get_state(&r.e, k->ver, uid);
	rc = call(k, &r, KURA_KMIP_OP_GET_ATTRIBUTES, false, &reply, &res, err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res.status != KURA_KMIP_STATUS_SUCCESS) {
		rc = result_fail(&res, KURA_KMIP_OP_GET_ATTRIBUTES, uid, err);
		goto out;
	}
	struct kura_ttlv attr = { 0 };
	rc = KURA_EPROTO;
	while (kura_ttlv_next(&res.payload, &attr)) {
		struct kura_ttlv name, value;
		struct kura_str n;
		if (attr.tag != KURA_KMIP_TAG_ATTRIBUTE ||
		    !kura_ttlv_find(&attr, KURA_KMIP_TAG_ATTRIBUTE_NAME,
				    &name) ||
		    kura_ttlv_get_text(&name, &n) != KURA_OK ||
		    !kura_str_eq_cstr(n, "State") ||
		    !kura_ttlv_find(&attr, KURA_KMIP_TAG_ATTRIBUTE_VALUE,
				    &value))
			continue;
		if (kura_ttlv_get_enum(&value, state) == KURA_OK)
			rc = KURA_OK;
		break;
	}
	if (rc != KURA_OK)
		rc = kura_fail(
			err, KURA_EPROTO,
			"KMIP Get Attributes of '%.*s': no State in the reply",
			(int)uid.len, uid.p);
out:
	kmip_reply_release(&reply);
	return rc;
}

/* Why an operation on an existing-looking KEK failed: not Active is
 * KURA_EKEY, gone is KURA_ENOENT; KURA_OK means the KEK is Active. */
static enum kura_err check_active(struct kmip *k, struct kura_str uid,
				  struct kura_error *err)
{
	uint32_t state = 0;
	struct kura_error sub = { 0 };
	enum kura_err rc = get_state(k, uid, &state, &sub);
	if (rc == KURA_ENOENT)
		return kura_fail(err, KURA_ENOENT, "unknown KEK 'kmip:%.*s'",
				 (int)uid.len, uid.p);
	if (rc != KURA_OK)
		return kura_fail(err,
				 rc == KURA_EPROTO ? KURA_EPROTO : KURA_EKEY,
				 "%s", sub.msg);
	if (state != KURA_KMIP_STATE_ACTIVE)
		return kura_fail(err, KURA_EKEY, "KEK 'kmip:%.*s' is %s",
				 (int)uid.len, uid.p, state_name(state));
	return KURA_OK;
}

/* ---- the fetched-KEK cache (kmip_allow_get only) ---- */

static void cache_sweep_locked(struct kmip *k, uint64_t now)
{
	for (size_t i = 0; i < CACHE_MAX; i++) {
		struct cached_kek *c = &k->cache[i];
		if (c->key != NULL && now >= c->expires_ns) {
			kura_secret_free(c->key);
			c->key = NULL;
		}
	}
}

static void cache_drop(struct kmip *k, struct kura_str uid)
{
	pthread_mutex_lock(&k->cmu);
	for (size_t i = 0; i < CACHE_MAX; i++) {
		struct cached_kek *c = &k->cache[i];
		if (c->key != NULL && kura_str_eq_cstr(uid, c->uid)) {
			kura_secret_free(c->key);
			c->key = NULL;
		}
	}
	pthread_mutex_unlock(&k->cmu);
}

static struct kura_secret *cache_get(struct kmip *k, struct kura_str uid)
{
	struct kura_secret *key = NULL;
	pthread_mutex_lock(&k->cmu);
	cache_sweep_locked(k, kura_mono_ns());
	for (size_t i = 0; i < CACHE_MAX && key == NULL; i++) {
		struct cached_kek *c = &k->cache[i];
		if (c->key != NULL && kura_str_eq_cstr(uid, c->uid))
			key = kura_secret_dup(c->key);
	}
	pthread_mutex_unlock(&k->cmu);
	return key;
}

static void cache_put(struct kmip *k, struct kura_str uid,
		      const struct kura_secret *key)
{
	if (k->ttl_ns == 0)
		return;
	struct kura_secret *copy = kura_secret_dup(key);
	if (copy == NULL)
		return; /* not caching is not an error */
	uint64_t now = kura_mono_ns();
	pthread_mutex_lock(&k->cmu);
	cache_sweep_locked(k, now);
	struct cached_kek *slot = &k->cache[0];
	for (size_t i = 0; i < CACHE_MAX; i++) {
		struct cached_kek *c = &k->cache[i];
		if (c->key == NULL || kura_str_eq_cstr(uid, c->uid)) {
			slot = c;
			break;
		}
		if (c->expires_ns < slot->expires_ns)
			slot = c;
	}
	kura_secret_free(slot->key);
	memcpy(slot->uid, uid.p, uid.len);
	slot->uid[uid.len] = '\0';
	slot->key = copy;
	slot->expires_ns = now + k->ttl_ns;
	pthread_cond_signal(&k->cwake);
	pthread_mutex_unlock(&k->cmu);
}

/* Wipes fetched KEKs when their time is up, even when no call comes. */
static void *sweeper_main(void *arg)
{
	struct kmip *k = arg;
	pthread_mutex_lock(&k->cmu);
	while (!k->stop) {
		uint64_t now = kura_mono_ns();
		cache_sweep_locked(k, now);
		uint64_t next = 0;
		for (size_t i = 0; i < CACHE_MAX; i++)
			if (k->cache[i].key != NULL &&
			    (next == 0 || k->cache[i].expires_ns < next))
				next = k->cache[i].expires_ns;
		if (next == 0) {
			pthread_cond_wait(&k->cwake, &k->cmu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait = next > now ? next - now : 0;
		wait += 1000000; /* past the expiry, not just before */
		ts.tv_sec += (time_t)(wait / 1000000000ull);
		ts.tv_nsec += (long)(wait % 1000000000ull);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&k->cwake, &k->cmu, &ts);
	}
	pthread_mutex_unlock(&k->cmu);
	return NULL;
}

/* The raw AES-256 key of an Active KEK, from the cache or Get. */
static enum kura_err fetch_kek(struct kmip *k, struct kura_str uid,
			       struct kura_secret **out, struct kura_error *err)
{
	struct kura_secret *key = cache_get(k, uid);
	if (key != NULL) {
		*out = key;
		return KURA_OK;
	}
	enum kura_err rc = check_active(k, uid, err);
	if (rc != KURA_OK)
		return rc;
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	rc = req_init(&r, false, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_uid_op(&r.e, k->ver, KURA_KMIP_OP_GET, uid);
	rc = call(k, &r, KURA_KMIP_OP_GET, true, &reply, &res, err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res.status != KURA_KMIP_STATUS_SUCCESS) {
		rc = result_fail(&res, KURA_KMIP_OP_GET, uid, err);
		goto out;
	}
	struct kura_ttlv it, sk, kb, kv, km;
	uint32_t otype = 0, fmt = 0;
	const uint8_t *bytes = NULL;
	size_t n = 0;
	if (!kura_ttlv_find(&res.payload, KURA_KMIP_TAG_OBJECT_TYPE, &it) ||
	    kura_ttlv_get_enum(&it, &otype) != KURA_OK ||
	    otype != KURA_KMIP_OBJECT_SYMMETRIC_KEY ||
	    !kura_ttlv_find(&res.payload, KURA_KMIP_TAG_SYMMETRIC_KEY, &sk) ||
	    !kura_ttlv_find(&sk, KURA_KMIP_TAG_KEY_BLOCK, &kb) ||
	    !kura_ttlv_find(&kb, KURA_KMIP_TAG_KEY_FORMAT_TYPE, &it) ||
	    kura_ttlv_get_enum(&it, &fmt) != KURA_OK ||
	    fmt != KURA_KMIP_KEY_FORMAT_RAW ||
	    !kura_ttlv_find(&kb, KURA_KMIP_TAG_KEY_VALUE, &kv) ||
	    !kura_ttlv_find(&kv, KURA_KMIP_TAG_KEY_MATERIAL, &km) ||
	    kura_ttlv_get_bytes(&km, &bytes, &n) != KURA_OK || n != KEK_LEN) {
		rc = kura_fail(
			err, KURA_EKEY,
			"KMIP Get of '%.*s': not a raw 256-bit symmetric key",
			(int)uid.len, uid.p);
		goto out;
	}
	key = kura_secret_from(bytes, n);
	if (key == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for a KEK");
		goto out;
	}
	cache_put(k, uid, key);
	*out = key;
out:
	kmip_reply_release(&reply);
	return rc;
}

/* ---- AES-GCM on the server or here ---- */

/* Whether to run AES-GCM here; KURA_EKEY when the server cannot and we
 * may not fetch the KEK. */
static enum kura_err use_local(struct kmip *k, bool *local,
			       struct kura_error *err)
{
	if (!atomic_load(&k->refused)) {
		*local = false;
		return KURA_OK;
	}
	if (!k->allow_get)
		return kura_fail(
			err, KURA_EKEY,
			"KMIP server %s:%s cannot Encrypt/Decrypt with AES-GCM (KMIP %d.%d); "
			"set [keys] kmip_allow_get = true to fetch KEKs into locked memory instead (weaker)",
			k->pool.host, k->pool.port, (int)k->ver.major,
			(int)k->ver.minor);
	if (!atomic_exchange(&k->warned, true))
		kura_warn(
			NULL,
			"KMIP server %s:%s cannot Encrypt/Decrypt: KEKs are fetched and used here (kmip_allow_get)",
			k->pool.host, k->pool.port);
	*local = true;
	return KURA_OK;
}

/* The server answered Operation Not Supported: remember, then decide. */
static enum kura_err server_refused(struct kmip *k, bool *local,
				    struct kura_error *err)
{
	atomic_store(&k->refused, true);
	return use_local(k, local, err);
}

/* A server-side Encrypt or Decrypt that did not succeed: *refused (and
 * KURA_OK) when the server does not offer the operation, so the caller
 * falls back; an unknown or no longer active KEK says so; otherwise the
 * server's answer — for a Decrypt other than a refused permission, a
 * wrapped key that does not authenticate. */
static enum kura_err gcm_failed(struct kmip *k,
				const struct kura_kmip_result *res, uint32_t op,
				struct kura_str uid, bool *refused,
				struct kura_error *err)
{
	if (res->reason == KURA_KMIP_REASON_OPERATION_NOT_SUPPORTED) {
		*refused = true;
		return KURA_OK;
	}
	if (res->reason == KURA_KMIP_REASON_ITEM_NOT_FOUND)
		return kura_fail(err, KURA_ENOENT, "unknown KEK 'kmip:%.*s'",
				 (int)uid.len, uid.p);
	struct kura_error why = { 0 };
	(void)result_fail(res, op, uid, &why);
	enum kura_err rc = check_active(k, uid, err);
	if (rc != KURA_OK)
		return rc;
	if (op == KURA_KMIP_OP_DECRYPT &&
	    res->reason != KURA_KMIP_REASON_PERMISSION_DENIED)
		return kura_fail(
			err, KURA_EINTEGRITY,
			"wrapped key does not authenticate under KEK 'kmip:%.*s' (%s)",
			(int)uid.len, uid.p, why.msg);
	return kura_fail(err, KURA_EKEY, "%s", why.msg);
}

static enum kura_err server_encrypt(struct kmip *k, struct kura_str uid,
				    const struct kura_secret *plain,
				    const uint8_t *aad, size_t aad_len,
				    const uint8_t iv[IV_LEN], uint8_t *ct,
				    uint8_t tag[TAG_LEN], bool *refused,
				    struct kura_error *err)
{
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	*refused = false;
	enum kura_err rc = req_init(&r, true, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_gcm(&r.e, k->ver, uid, plain->data, plain->len, iv,
			  IV_LEN, aad, aad_len, NULL, 0);
	rc = call(k, &r, KURA_KMIP_OP_ENCRYPT, false, &reply, &res, err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res.status != KURA_KMIP_STATUS_SUCCESS) {
		rc = gcm_failed(k, &res, KURA_KMIP_OP_ENCRYPT, uid, refused,
				err);
		goto out;
	}
	struct kura_ttlv it;
	const uint8_t *p = NULL, *t = NULL;
	size_t n = 0, tn = 0;
	if (!kura_ttlv_find(&res.payload, KURA_KMIP_TAG_DATA, &it) ||
	    kura_ttlv_get_bytes(&it, &p, &n) != KURA_OK || n != plain->len ||
	    !kura_ttlv_find(&res.payload, KURA_KMIP_TAG_AEAD_TAG, &it) ||
	    kura_ttlv_get_bytes(&it, &t, &tn) != KURA_OK || tn != TAG_LEN) {
		rc = kura_fail(
			err, KURA_EPROTO,
			"KMIP Encrypt: reply lacks a %zu-byte ciphertext and a %d-byte tag",
			plain->len, TAG_LEN);
		goto out;
	}
	/* A server may only echo our IV; one that chose its own broke the
	 * request. */
	const uint8_t *riv = NULL;
	size_t rivn = 0;
	if (kura_ttlv_find(&res.payload, KURA_KMIP_TAG_IV_COUNTER_NONCE, &it) &&
	    (kura_ttlv_get_bytes(&it, &riv, &rivn) != KURA_OK ||
	     rivn != IV_LEN || memcmp(riv, iv, IV_LEN) != 0)) {
		rc = kura_fail(err, KURA_EPROTO,
			       "KMIP Encrypt: server used another IV");
		goto out;
	}
	memcpy(ct, p, n);
	memcpy(tag, t, TAG_LEN);
out:
	kmip_reply_release(&reply);
	return rc;
}

static enum kura_err server_decrypt(struct kmip *k, struct kura_str uid,
				    const uint8_t *in, size_t in_len,
				    const uint8_t *aad, size_t aad_len,
				    struct kura_secret **out, bool *refused,
				    struct kura_error *err)
{
	const uint8_t *iv = in + WRAP_HDR;
	const uint8_t *ct = iv + IV_LEN;
	size_t ct_len = in_len - WRAP_OVERHEAD;
	const uint8_t *tag = ct + ct_len;
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	*refused = false;
	enum kura_err rc = req_init(&r, false, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_gcm(&r.e, k->ver, uid, ct, ct_len, iv, IV_LEN, aad,
			  aad_len, tag, TAG_LEN);
	rc = call(k, &r, KURA_KMIP_OP_DECRYPT, true, &reply, &res, err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res.status != KURA_KMIP_STATUS_SUCCESS) {
		rc = gcm_failed(k, &res, KURA_KMIP_OP_DECRYPT, uid, refused,
				err);
		goto out;
	}
	struct kura_ttlv it;
	const uint8_t *p = NULL;
	size_t n = 0;
	if (!kura_ttlv_find(&res.payload, KURA_KMIP_TAG_DATA, &it) ||
	    kura_ttlv_get_bytes(&it, &p, &n) != KURA_OK || n != ct_len) {
		rc = kura_fail(
			err, KURA_EPROTO,
			"KMIP Decrypt: reply lacks the %zu-byte plaintext",
			ct_len);
		goto out;
	}
	*out = kura_secret_from(p, n);
	if (*out == NULL)
		rc = kura_fail(err, KURA_ENOMEM, "locked memory for a key");
out:
	kmip_reply_release(&reply);
	return rc;
}

/* ---- operations ---- */

/* Ask the server which versions it speaks; prefer 1.4. */
static enum kura_err negotiate(struct kmip *k, struct kura_error *err)
{
	static const struct kura_kmip_version offer[] = {
		{ 1, 4 }, { 1, 3 }, { 1, 2 }, { 1, 1 }, { 1, 0 },
	};
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	k->ver = offer[0];
	enum kura_err rc = req_init(&r, false, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_discover(&r.e, k->ver, offer,
			       sizeof(offer) / sizeof(offer[0]));
	rc = call(k, &r, KURA_KMIP_OP_DISCOVER_VERSIONS, false, &reply, &res,
		  err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res.status != KURA_KMIP_STATUS_SUCCESS) {
		/* A KMIP 1.0 server has no Discover Versions. */
		if (res.reason == KURA_KMIP_REASON_OPERATION_NOT_SUPPORTED) {
			k->ver = offer[4];
		} else {
			rc = result_fail(&res, KURA_KMIP_OP_DISCOVER_VERSIONS,
					 KURA_STR_LIT(""), err);
		}
		goto out;
	}
	bool found = false;
	struct kura_ttlv it = { 0 };
	while (kura_ttlv_next(&res.payload, &it)) {
		struct kura_ttlv f;
		int32_t major = 0, minor = 0;
		if (it.tag != KURA_KMIP_TAG_PROTOCOL_VERSION ||
		    !kura_ttlv_find(&it, KURA_KMIP_TAG_PROTOCOL_VERSION_MAJOR,
				    &f) ||
		    kura_ttlv_get_int(&f, &major) != KURA_OK ||
		    !kura_ttlv_find(&it, KURA_KMIP_TAG_PROTOCOL_VERSION_MINOR,
				    &f) ||
		    kura_ttlv_get_int(&f, &minor) != KURA_OK)
			continue;
		if (major == 1 && minor >= 0 && minor <= 4 &&
		    (!found || minor > k->ver.minor)) {
			k->ver.major = 1;
			k->ver.minor = minor;
			found = true;
		}
	}
	if (!found)
		rc = kura_fail(err, KURA_ECONFIG,
			       "KMIP server %s:%s speaks none of KMIP 1.0-1.4",
			       k->pool.host, k->pool.port);
out:
	kmip_reply_release(&reply);
	/* AES-GCM with additional data and tag needs KMIP 1.4. */
	if (rc == KURA_OK && (k->ver.major != 1 || k->ver.minor < 4))
		atomic_store(&k->refused, true);
	return rc;
}

static void kmip_release(struct kmip *k)
{
	if (k->sweeper) {
		pthread_mutex_lock(&k->cmu);
		k->stop = true;
		pthread_cond_signal(&k->cwake);
		pthread_mutex_unlock(&k->cmu);
		pthread_join(k->sweeper_tid, NULL);
		k->sweeper = false;
	}
	for (size_t i = 0; i < CACHE_MAX; i++) {
		kura_secret_free(k->cache[i].key);
		k->cache[i].key = NULL;
	}
	kmip_pool_release(&k->pool);
}

/* Before anything is created: the settings and the TLS files (CA,
 * certificate, a private key that matches it), by building the TLS context
 * the connections would use and dropping it.  Does not dial: whether the
 * server answers is the business of open. */
static enum kura_err kmip_check_config(const struct kura_config *cfg,
				       const char *data_dir,
				       struct kura_error *err)
{
	(void)data_dir;
	struct kmip_pool *pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return kura_fail(err, KURA_ENOMEM, "KMIP configuration check");
	enum kura_err rc = kmip_pool_init(pool, cfg, err);
	kmip_pool_release(pool);
	free(pool);
	return rc;
}

static enum kura_err kmip_open(void *priv, const struct kura_config *cfg,
			       const char *data_dir, struct kura_error *err)
{
	struct kmip *k = priv;
	(void)data_dir;
	bool locks = false;
	enum kura_err rc = kmip_pool_init(&k->pool, cfg, err);
	if (rc != KURA_OK)
		return rc;
	k->allow_get = kura_config_get_bool(cfg, "keys", "kmip_allow_get");
	uint64_t ttl = kura_config_get_u64(cfg, "keys", "bucket_key_ttl");
	if (ttl > 86400)
		ttl = 86400;
	k->ttl_ns = ttl * 1000000000ull;
	atomic_init(&k->refused, false);
	atomic_init(&k->warned, false);
	if (pthread_mutex_init(&k->cmu, NULL) != 0) {
		rc = kura_fail(err, KURA_ENOMEM, "KMIP cache mutex");
		goto out;
	}
	if (pthread_cond_init(&k->cwake, NULL) != 0) {
		pthread_mutex_destroy(&k->cmu);
		rc = kura_fail(err, KURA_ENOMEM, "KMIP cache condition");
		goto out;
	}
	locks = true;
	if (k->allow_get && k->ttl_ns > 0) {
		if (pthread_create(&k->sweeper_tid, NULL, sweeper_main, k) !=
		    0) {
			rc = kura_fail(err, KURA_ENOMEM, "KMIP cache sweeper");
			goto out;
		}
		k->sweeper = true;
	}
	rc = negotiate(k, err);
out:
	if (rc != KURA_OK) {
		kmip_release(k);
		if (locks) {
			pthread_cond_destroy(&k->cwake);
			pthread_mutex_destroy(&k->cmu);
		}
	}
	return rc;
}

static void kmip_close(void *priv)
{
	struct kmip *k = priv;
	kmip_release(k);
	pthread_cond_destroy(&k->cwake);
	pthread_mutex_destroy(&k->cmu);
}

/* Create (key == NULL) or Register, then Activate. */
static enum kura_err new_kek(struct kmip *k, const char *label,
			     const struct kura_secret *key,
			     char id_out[KURA_KEK_ID_MAX],
			     struct kura_error *err)
{
	struct kura_str name, uid;
	uint32_t op = key ? KURA_KMIP_OP_REGISTER : KURA_KMIP_OP_CREATE;
	char uid_buf[UID_MAX + 1];
	enum kura_err rc = label_check(label, &name, err);
	if (rc != KURA_OK)
		return rc;
	struct req r;
	struct kmip_reply reply = { 0 };
	struct kura_kmip_result res;
	rc = req_init(&r, key != NULL, err);
	if (rc != KURA_OK)
		return rc;
	kura_kmip_req_symmetric(&r.e, k->ver, name, key ? key->data : NULL,
				key ? key->len : 0);
	rc = call(k, &r, op, false, &reply, &res, err);
	req_release(&r);
	if (rc != KURA_OK)
		return rc;
	if (res.status != KURA_KMIP_STATUS_SUCCESS)
		rc = result_fail(&res, op, KURA_STR_LIT(""), err);
	else
		rc = payload_uid(&res, op, &uid, err);
	if (rc == KURA_OK) {
		memcpy(uid_buf, uid.p, uid.len);
		uid_buf[uid.len] = '\0';
		uid.p = uid_buf;
	}
	kmip_reply_release(&reply);
	if (rc != KURA_OK)
		return rc;

	rc = simple_op(k, KURA_KMIP_OP_ACTIVATE, uid, NULL, err);
	if (rc != KURA_OK) {
		/* A Pre-Active key nobody knows of: do not leave it behind. */
		(void)simple_op(k, KURA_KMIP_OP_DESTROY, uid, NULL, NULL);
		return rc;
	}
	snprintf(id_out, KURA_KEK_ID_MAX, "%s%s", ID_PREFIX, uid_buf);
	return KURA_OK;
}

static enum kura_err kmip_kek_create(void *priv, const char *label,
				     char id_out[KURA_KEK_ID_MAX],
				     struct kura_error *err)
{
	return new_kek(priv, label, NULL, id_out, err);
}

static enum kura_err kmip_kek_import(void *priv, const char *label,
				     const struct kura_secret *key,
				     char id_out[KURA_KEK_ID_MAX],
				     struct kura_error *err)
{
	if (key == NULL || key->len != KEK_LEN)
		return kura_fail(err, KURA_EINVAL,
				 "import: a KEK must be %d bytes", KEK_LEN);
	return new_kek(priv, label, key, id_out, err);
}

static enum kura_err kmip_wrap(void *priv, const char *kek_id,
			       const struct kura_secret *plain,
			       const uint8_t *aad, size_t aad_len,
			       uint8_t out[KURA_WRAPPED_MAX], size_t *out_len,
			       struct kura_error *err)
{
	struct kmip *k = priv;
	struct kura_str uid;
	if (plain == NULL || plain->len == 0 || plain->len > PLAIN_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "wrap: key must be 1..%d bytes", PLAIN_MAX);
	if ((aad == NULL && aad_len > 0) || aad_len > AAD_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "wrap: additional data must be 0..%d bytes",
				 AAD_MAX);
	enum kura_err rc = id_parse(kek_id, &uid, err);
	if (rc != KURA_OK)
		return rc;
	uint8_t buf[WRAP_OVERHEAD + PLAIN_MAX];
	size_t n = WRAP_OVERHEAD + plain->len;
	bool local = false, refused = false;
	rc = use_local(k, &local, err);
	if (rc != KURA_OK)
		return rc;
	buf[0] = WRAP_VERSION;
	if (!local) {
		buf[1] = WRAP_MODE_SERVER;
		rc = kura_random_bytes(buf + WRAP_HDR, IV_LEN, err);
		if (rc == KURA_OK)
			rc = server_encrypt(
				k, uid, plain, aad, aad_len, buf + WRAP_HDR,
				buf + WRAP_HDR + IV_LEN,
				buf + WRAP_HDR + IV_LEN + plain->len, &refused,
				err);
		if (rc == KURA_OK && refused)
			rc = server_refused(k, &local, err);
		if (rc != KURA_OK)
			return rc;
	}
	if (local) {
		struct kura_secret *kek = NULL;
		buf[1] = WRAP_MODE_LOCAL;
		rc = fetch_kek(k, uid, &kek, err);
		if (rc != KURA_OK)
			return rc;
		/* kura_box_seal writes IV | ciphertext | tag: our layout. */
		rc = kura_box_seal(kek, aad, aad_len, plain->data, plain->len,
				   buf + WRAP_HDR, err);
		kura_secret_free(kek);
		if (rc != KURA_OK)
			return rc;
	}
	memcpy(out, buf, n);
	*out_len = n;
	return KURA_OK;
}

static enum kura_err kmip_unwrap(void *priv, const char *kek_id,
				 const uint8_t *in, size_t in_len,
				 const uint8_t *aad, size_t aad_len,
				 struct kura_secret **out,
				 struct kura_error *err)
{
	struct kmip *k = priv;
	struct kura_str uid;
	if ((aad == NULL && aad_len > 0) || aad_len > AAD_MAX)
		return kura_fail(err, KURA_EINVAL,
				 "unwrap: additional data must be 0..%d bytes",
				 AAD_MAX);
	enum kura_err rc = id_parse(kek_id, &uid, err);
	if (rc != KURA_OK)
		return rc;
	if (in == NULL || in_len < WRAP_OVERHEAD + 1 ||
	    in_len > WRAP_OVERHEAD + PLAIN_MAX)
		return kura_fail(err, KURA_EINTEGRITY,
				 "wrapped key has a bad length (%zu bytes)",
				 in_len);
	if (in[0] != WRAP_VERSION ||
	    (in[1] != WRAP_MODE_SERVER && in[1] != WRAP_MODE_LOCAL))
		return kura_fail(err, KURA_EINTEGRITY,
				 "wrapped key has unknown version/mode %u/%u",
				 (unsigned)in[0], (unsigned)in[1]);
	bool local = false, refused = false;
	rc = use_local(k, &local, err);
	if (rc != KURA_OK)
		return rc;
	if (!local) {
		rc = server_decrypt(k, uid, in, in_len, aad, aad_len, out,
				    &refused, err);
		if (rc != KURA_OK || !refused)
			return rc;
		rc = server_refused(k, &local, err);
		if (rc != KURA_OK)
			return rc;
	}
	struct kura_secret *kek = NULL;
	rc = fetch_kek(k, uid, &kek, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_box_open_secret(kek, aad, aad_len, in + WRAP_HDR,
				  in_len - WRAP_HDR, out, err);
	kura_secret_free(kek);
	return rc;
}

static enum kura_err kmip_kek_destroy(void *priv, const char *kek_id,
				      struct kura_error *err)
{
	struct kmip *k = priv;
	struct kura_str uid;
	struct kura_kmip_result res;
	enum kura_err rc = id_parse(kek_id, &uid, err);
	if (rc != KURA_OK)
		return rc;
	cache_drop(k, uid);
	/* Revoke first: servers refuse to destroy an Active key.  A key that
	 * is no longer Active cannot be revoked for this reason, which is
	 * fine: Destroy decides. */
	struct kura_error sub = { 0 };
	memset(&res, 0, sizeof(res));
	rc = simple_op(k, KURA_KMIP_OP_REVOKE, uid, &res, &sub);
	if (rc == KURA_ENOENT)
		return KURA_OK; /* already gone */
	if (rc != KURA_OK && res.status != KURA_KMIP_STATUS_FAILED)
		return kura_fail(err, rc, "%s", sub.msg); /* no answer */
	memset(&res, 0, sizeof(res));
	kura_error_clear(&sub);
	rc = simple_op(k, KURA_KMIP_OP_DESTROY, uid, &res, &sub);
	if (rc == KURA_ENOENT)
		return KURA_OK;
	if (rc != KURA_OK) {
		/* Some servers keep destroyed objects and refuse a second
		 * Destroy: that is success too. */
		uint32_t state = 0;
		if (res.status == KURA_KMIP_STATUS_FAILED &&
		    get_state(k, uid, &state, NULL) == KURA_OK &&
		    (state == KURA_KMIP_STATE_DESTROYED ||
		     state == KURA_KMIP_STATE_DESTROYED_COMPROMISED))
			return KURA_OK;
		return kura_fail(err, rc, "%s", sub.msg);
	}
	cache_drop(k, uid);
	return KURA_OK;
}

const struct kura_keys_ops kura_keys_kmip = {
	.name = "kmip",
	.caps = KURA_KEYS_CAP_REMOTE | KURA_KEYS_CAP_IMPORT |
		KURA_KEYS_CAP_DESTROY,
	.priv_size = sizeof(struct kmip),
	.open = kmip_open,
	.close = kmip_close,
	.check_config = kmip_check_config,
	.kek_create = kmip_kek_create,
	.wrap = kmip_wrap,
	.unwrap = kmip_unwrap,
	.kek_destroy = kmip_kek_destroy,
	.kek_import = kmip_kek_import,
};

/*
 * kmip_conn.c — TLS connections to a KMIP server and their pool (see
 * kmip_int.h).
 *
 * TLS: OpenSSL, TLS 1.2 or later, the server certificate verified against
 * [keys] ca_file and server_name (DNS name or IP address), our certificate
 * presented from cert_file/key_file.  Sockets are non-blocking and every
 * wait goes through poll() against one deadline per dial and per round
 * trip, so no call blocks longer than [keys] timeout.  Writes use
 * send(MSG_NOSIGNAL) through a small BIO of our own, so a server that
 * vanishes cannot raise SIGPIPE in a process that did not ignore it.
 *
 * A connection found dead when reused (the server restarted or dropped an
 * idle session) is replaced once, transparently, when nothing of the reply
 * had arrived; every other failure is reported.
 *
 * Threading: the pool's mutex guards the idle list, the counters and the
 * back-off state; a borrowed connection belongs to one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "kura/config.h"
#include "kura/kmip_ttlv.h"
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "kura/fsutil.h"
#include "kmip_int.h"
#include "kura/banned.h"

#define BACKOFF_FIRST_NS (200ull * 1000 * 1000)
#define BACKOFF_MAX_NS (5ull * 1000 * 1000 * 1000)
#define TIMEOUT_MAX_S 3600

struct kmip_conn {
	int fd;
	SSL *ssl;
	bool reused;		/* served a round trip before */
	bool timed_out;		/* its last failure was a timeout */
};

/* ---- a socket BIO that never raises SIGPIPE ---- */

static BIO_METHOD *sock_method;
static pthread_once_t sock_method_once = PTHREAD_ONCE_INIT;

static int sock_write(BIO *b, const char *p, int n)
{
	int fd = (int)(intptr_t)BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t w = send(fd, p, (size_t)n, MSG_NOSIGNAL);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)w;
}

static int sock_read(BIO *b, char *p, int n)
{
	int fd = (int)(intptr_t)BIO_get_data(b);
	BIO_clear_retry_flags(b);
	ssize_t r = recv(fd, p, (size_t)n, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)r;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void sock_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
					     BIO_TYPE_DESCRIPTOR,
				     "kura kmip socket");
	if (m == NULL)
		return;
	if (BIO_meth_set_write(m, sock_write) != 1 ||
	    BIO_meth_set_read(m, sock_read) != 1 ||
	    BIO_meth_set_ctrl(m, sock_ctrl) != 1 ||
	    BIO_meth_set_create(m, sock_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	sock_method = m;
}

/* ---- configuration ---- */

static enum kura_err need(const struct kura_config *cfg, const char *key,
			  const char **out, struct kura_error *err)
{
	const char *v = kura_config_get(cfg, "keys", key);
	if (v == NULL || v[0] == '\0')
		return kura_fail(err, KURA_ECONFIG,
				 "[keys] %s must be set for the kmip provider", key);
	*out = v;
	return KURA_OK;
}

/* The client key must be ours alone: it authenticates us to the server,
 * which is all that stands between a thief and every KEK. */
static enum kura_err key_file_check(const char *path, struct kura_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kura_fail_errno(err, KURA_ECONFIG, errno, "[keys] key_file '%s'", path);
	enum kura_err rc = kura_check_private_file(fd, "[keys] key_file", path, err);
	close(fd);
	return rc;
}

static bool is_ip_literal(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

enum kura_err kmip_pool_init(struct kmip_pool *pool,
			     const struct kura_config *cfg,
			     struct kura_error *err)
{
	const char *server = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	uint16_t port = 0;
	enum kura_err rc;
	memset(pool, 0, sizeof(*pool));

	if ((rc = need(cfg, "server", &server, err)) != KURA_OK ||
	    (rc = need(cfg, "ca_file", &ca, err)) != KURA_OK ||
	    (rc = need(cfg, "cert_file", &cert, err)) != KURA_OK ||
	    (rc = need(cfg, "key_file", &key, err)) != KURA_OK)
		return rc;
	rc = kura_config_split_addr(server, pool->host, sizeof(pool->host),
				    &port, err);
	if (rc != KURA_OK)
		return rc;
	if (port == 0)
		return kura_fail(err, KURA_ECONFIG, "[keys] server '%s': port 0",
				 server);
	snprintf(pool->port, sizeof(pool->port), "%u", (unsigned)port);
	const char *name = kura_config_get(cfg, "keys", "server_name");
	if (name == NULL || name[0] == '\0')
		name = pool->host;
	if (strlen(name) >= sizeof(pool->name))
		return kura_fail(err, KURA_ECONFIG, "[keys] server_name too long");
	snprintf(pool->name, sizeof(pool->name), "%s", name);
	pool->name_is_ip = is_ip_literal(pool->name);
	uint64_t t = kura_config_get_u64(cfg, "keys", "timeout");
	if (t == 0 || t > TIMEOUT_MAX_S)
		return kura_fail(err, KURA_ECONFIG,
				 "[keys] timeout must be 1..%d seconds",
				 TIMEOUT_MAX_S);
	pool->timeout_ms = (int)t * 1000;
	rc = key_file_check(key, err);
	if (rc != KURA_OK)
		return rc;

	pthread_once(&sock_method_once, sock_method_make);
	if (sock_method == NULL)
		return kura_fail(err, KURA_ENOMEM, "KMIP socket BIO");
	pool->ctx = SSL_CTX_new(TLS_client_method());
	if (pool->ctx == NULL)
		return kura_fail_openssl(err, KURA_ECRYPTO, "TLS context");
	if (SSL_CTX_set_min_proto_version(pool->ctx, TLS1_2_VERSION) != 1) {
		rc = kura_fail_openssl(err, KURA_ECRYPTO, "TLS minimum version");
		goto out;
	}
	SSL_CTX_set_options(pool->ctx, SSL_OP_NO_RENEGOTIATION |
					       SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_verify(pool->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(pool->ctx, ca, NULL) != 1) {
		rc = kura_fail_openssl(err, KURA_ECONFIG,
				       "[keys] ca_file '%s'", ca);
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(pool->ctx, cert) != 1) {
		rc = kura_fail_openssl(err, KURA_ECONFIG,
				       "[keys] cert_file '%s'", cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(pool->ctx, key, SSL_FILETYPE_PEM) != 1) {
		rc = kura_fail_openssl(err, KURA_ECONFIG,
				       "[keys] key_file '%s'", key);
		goto out;
	}
	if (SSL_CTX_check_private_key(pool->ctx) != 1) {
		rc = kura_fail_openssl(err, KURA_ECONFIG,
				       "[keys] key_file '%s' does not match cert_file '%s'",
				       key, cert);
		goto out;
	}
	if (pthread_mutex_init(&pool->mu, NULL) != 0) {
		rc = kura_fail(err, KURA_ENOMEM, "KMIP pool mutex");
		goto out;
	}
	if (pthread_cond_init(&pool->cv, NULL) != 0) {
		pthread_mutex_destroy(&pool->mu);
		rc = kura_fail(err, KURA_ENOMEM, "KMIP pool condition");
		goto out;
	}
out:
	if (rc != KURA_OK) {
		SSL_CTX_free(pool->ctx);
		pool->ctx = NULL;
	}
	return rc;
}

/* ---- one connection ---- */

static void conn_close(struct kmip_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		/* No close_notify: the peer may be gone, and a KMIP server
		 * needs none to release the session. */
		SSL_set_quiet_shutdown(c->ssl, 1);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = kura_mono_ns();
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Wait until fd is ready for events or the deadline passes. */
static enum kura_err wait_fd(int fd, short events, uint64_t deadline,
			     const char *what, struct kura_error *err)
{
	for (;;) {
		int left = ms_left(deadline);
		if (left == 0)
			return kura_fail(err, KURA_EKEY, "timed out %s", what);
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, left);
		if (n > 0)
			return KURA_OK;
		if (n < 0 && errno != EINTR)
			return kura_fail_errno(err, KURA_EKEY, errno, "poll");
	}
}

static enum kura_err tcp_connect(struct kmip_pool *pool, uint64_t deadline,
				 int *fd_out, struct kura_error *err)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int g = getaddrinfo(pool->host, pool->port, &hints, &res);
	if (g != 0)
		return kura_fail(err, KURA_EKEY, "resolve '%s': %s", pool->host,
				 gai_strerror(g));
	enum kura_err rc = KURA_EKEY;
	int last_errno = 0;
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		int fd = socket(a->ai_family,
				a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				a->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			if (errno != EINPROGRESS) {
				last_errno = errno;
				close(fd);
				continue;
			}
			struct kura_error sub = { 0 };
			if (wait_fd(fd, POLLOUT, deadline, "connecting", &sub) !=
			    KURA_OK) {
				last_errno = ETIMEDOUT;
				close(fd);
				break;
			}
			int so = 0;
			socklen_t sl = sizeof(so);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0)
				so = errno;
			if (so != 0) {
				last_errno = so;
				close(fd);
				continue;
			}
		}
		*fd_out = fd;
		rc = KURA_OK;
		break;
	}
	freeaddrinfo(res);
	if (rc != KURA_OK)
		return kura_fail(err, KURA_EKEY, "connect: %s",
				 strerror(last_errno ? last_errno : ECONNREFUSED));
	return KURA_OK;
}

/* Drive one TLS call (connect, read, write) to completion or the deadline.
 * Returns the call's positive result, or 0/-1 with *ssl_err set. */
static int ssl_drive(struct kmip_conn *c, int (*op)(SSL *, void *, int),
		     void *p, int n, uint64_t deadline, int *ssl_err,
		     bool *timed_out)
{
	*timed_out = false;
	for (;;) {
		ERR_clear_error();
		int r = op(c->ssl, p, n);
		if (r > 0)
			return r;
		int e = SSL_get_error(c->ssl, r);
		short ev;
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			*ssl_err = e;
			return r;
		}
		struct kura_error sub = { 0 };
		if (wait_fd(c->fd, ev, deadline, "", &sub) != KURA_OK) {
			*timed_out = true;
			*ssl_err = e;
			return -1;
		}
	}
}

static int op_connect(SSL *ssl, void *p, int n)
{
	(void)p;
	(void)n;
	return SSL_connect(ssl);
}

static int op_read(SSL *ssl, void *p, int n)
{
	return SSL_read(ssl, p, n);
}

static int op_write(SSL *ssl, void *p, int n)
{
	return SSL_write(ssl, p, n);
}

/* One line on why a TLS call failed, from the verify result, the OpenSSL
 * queue or errno. */
static enum kura_err tls_fail(struct kmip_conn *c, int ssl_err, bool timed_out,
			      const char *what, struct kura_error *err)
{
	if (timed_out) {
		c->timed_out = true;
		return kura_fail(err, KURA_EKEY, "timed out %s", what);
	}
	long v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK)
		return kura_fail(err, KURA_EKEY,
				 "%s: server certificate rejected: %s", what,
				 X509_verify_cert_error_string(v));
	if (ssl_err == SSL_ERROR_ZERO_RETURN ||
	    (ssl_err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
	     (errno == 0 || errno == ECONNRESET || errno == EPIPE)))
		return kura_fail(err, KURA_EKEY, "%s: connection closed by the server",
				 what);
	if (ssl_err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return kura_fail_errno(err, KURA_EKEY, errno, "%s", what);
	return kura_fail_openssl(err, KURA_EKEY, "%s", what);
}

static enum kura_err conn_dial(struct kmip_pool *pool, struct kmip_conn **out,
			       struct kura_error *err)
{
	uint64_t deadline = kura_mono_ns() +
			    (uint64_t)pool->timeout_ms * 1000000ull;
	struct kmip_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return kura_fail(err, KURA_ENOMEM, "KMIP connection");
	c->fd = -1;
	enum kura_err rc = tcp_connect(pool, deadline, &c->fd, err);
	if (rc != KURA_OK)
		goto out;
	c->ssl = SSL_new(pool->ctx);
	BIO *bio = c->ssl ? BIO_new(sock_method) : NULL;
	if (bio == NULL) {
		rc = kura_fail_openssl(err, KURA_ENOMEM, "TLS session");
		goto out;
	}
	BIO_set_data(bio, (void *)(intptr_t)c->fd);
	SSL_set_bio(c->ssl, bio, bio);
	if (pool->name_is_ip) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, pool->name) != 1) {
			rc = kura_fail_openssl(err, KURA_ECONFIG,
					       "server_name '%s'", pool->name);
			goto out;
		}
	} else if (SSL_set_tlsext_host_name(c->ssl, pool->name) != 1 ||
		   SSL_set1_host(c->ssl, pool->name) != 1) {
		rc = kura_fail_openssl(err, KURA_ECONFIG, "server_name '%s'",
				       pool->name);
		goto out;
	}
	int ssl_err = 0;
	bool timed_out = false;
	if (ssl_drive(c, op_connect, NULL, 0, deadline, &ssl_err, &timed_out) <= 0) {
		rc = tls_fail(c, ssl_err, timed_out, "TLS handshake", err);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	conn_close(c);
	return rc;
}

static enum kura_err conn_write(struct kmip_conn *c, const uint8_t *p, size_t n,
				uint64_t deadline, struct kura_error *err)
{
	while (n > 0) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
		int ssl_err = 0;
		bool timed_out = false;
		int w = ssl_drive(c, op_write, (void *)p, chunk, deadline,
				  &ssl_err, &timed_out);
		if (w <= 0)
			return tls_fail(c, ssl_err, timed_out, "sending to the KMIP server",
					err);
		p += w;
		n -= (size_t)w;
	}
	return KURA_OK;
}

/* Read exactly n bytes; *got tells whether any byte arrived. */
static enum kura_err conn_read(struct kmip_conn *c, uint8_t *p, size_t n,
			       uint64_t deadline, bool *got,
			       struct kura_error *err)
{
	while (n > 0) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
		int ssl_err = 0;
		bool timed_out = false;
		int r = ssl_drive(c, op_read, p, chunk, deadline, &ssl_err,
				  &timed_out);
		if (r <= 0)
			return tls_fail(c, ssl_err, timed_out,
					"waiting for the KMIP server", err);
		*got = true;
		p += r;
		n -= (size_t)r;
	}
	return KURA_OK;
}

void kmip_reply_release(struct kmip_reply *reply)
{
	if (reply == NULL)
		return;
	kura_secret_free(reply->sec);
	if (reply->heap != NULL) {
		kura_wipe(reply->heap, reply->len);
		free(reply->heap);
	}
	memset(reply, 0, sizeof(*reply));
}

/* One request and its reply on c.  *got_reply tells whether the server had
 * started answering when a failure happened. */
static enum kura_err exchange(struct kmip_pool *pool, struct kmip_conn *c,
			      const uint8_t *req, size_t req_len,
			      bool sensitive, struct kmip_reply *reply,
			      bool *got_reply, bool *proto_err,
			      struct kura_error *err)
{
	uint64_t deadline = kura_mono_ns() +
			    (uint64_t)pool->timeout_ms * 1000000ull;
	uint8_t hdr[KURA_TTLV_HDR_LEN];
	struct kmip_reply r = { 0 };
	size_t total = 0;
	*got_reply = false;
	*proto_err = false;
	enum kura_err rc = conn_write(c, req, req_len, deadline, err);
	if (rc == KURA_OK)
		rc = conn_read(c, hdr, sizeof(hdr), deadline, got_reply, err);
	if (rc != KURA_OK)
		return rc;
	rc = kura_ttlv_frame_len(hdr, sensitive ? KURA_SECRET_MAX : KMIP_REPLY_MAX,
				 &total, err);
	if (rc != KURA_OK) {
		*proto_err = true;
		return rc;
	}
	uint8_t *p;
	if (sensitive) {
		r.sec = kura_secret_new(total);
		p = r.sec ? r.sec->data : NULL;
	} else {
		r.heap = malloc(total);
		p = r.heap;
	}
	if (p == NULL)
		return kura_fail(err, KURA_ENOMEM, "KMIP reply of %zu bytes", total);
	r.len = total;
	memcpy(p, hdr, sizeof(hdr));
	rc = conn_read(c, p + sizeof(hdr), total - sizeof(hdr), deadline,
		       got_reply, err);
	if (rc != KURA_OK) {
		kmip_reply_release(&r);
		return rc;
	}
	r.p = p;
	*reply = r;
	return KURA_OK;
}

/* ---- the pool ---- */

static void mark_down(struct kmip_pool *pool, const char *msg)
{
	pthread_mutex_lock(&pool->mu);
	uint64_t b = pool->backoff_ns ? 2 * pool->backoff_ns : BACKOFF_FIRST_NS;
	if (b > BACKOFF_MAX_NS)
		b = BACKOFF_MAX_NS;
	pool->backoff_ns = b;
	pool->down_until_ns = kura_mono_ns() + b;
	snprintf(pool->down_msg, sizeof(pool->down_msg), "%s", msg);
	/* Idle connections to a server that failed are suspect: drop them
	 * rather than let each caller find out alone. */
	for (unsigned i = 0; i < pool->n_idle; i++) {
		conn_close(pool->idle[i]);
		pool->n_total--;
	}
	pool->n_idle = 0;
	pthread_cond_broadcast(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
}

static void mark_up(struct kmip_pool *pool)
{
	pthread_mutex_lock(&pool->mu);
	pool->backoff_ns = 0;
	pool->down_until_ns = 0;
	pthread_mutex_unlock(&pool->mu);
}

/* Give back a slot (c == NULL: the connection was closed). */
static void pool_put(struct kmip_pool *pool, struct kmip_conn *c)
{
	pthread_mutex_lock(&pool->mu);
	if (c != NULL && pool->n_idle < KMIP_POOL_MAX) {
		c->reused = true;
		pool->idle[pool->n_idle++] = c;
		c = NULL;
	} else {
		pool->n_total--;
	}
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	conn_close(c);
}

/* Borrow an idle connection or a slot to dial one (*c == NULL). */
static enum kura_err pool_get(struct kmip_pool *pool, struct kmip_conn **c,
			      struct kura_error *err)
{
	uint64_t deadline = kura_mono_ns() +
			    (uint64_t)pool->timeout_ms * 1000000ull;
	enum kura_err rc = KURA_OK;
	pthread_mutex_lock(&pool->mu);
	for (;;) {
		uint64_t now = kura_mono_ns();
		if (now < pool->down_until_ns) {
			rc = kura_fail(err, KURA_EKEY,
				       "KMIP server %s:%s unavailable: %s (next attempt in %llu ms)",
				       pool->host, pool->port, pool->down_msg,
				       (unsigned long long)((pool->down_until_ns - now) /
							    1000000 + 1));
			break;
		}
		if (pool->n_idle > 0) {
			*c = pool->idle[--pool->n_idle];
			break;
		}
		if (pool->n_total < KMIP_POOL_MAX) {
			pool->n_total++;
			*c = NULL;
			break;
		}
		if (now >= deadline) {
			rc = kura_fail(err, KURA_EBUSY,
				       "all %d KMIP connections busy for %d ms",
				       KMIP_POOL_MAX, pool->timeout_ms);
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait_ns = deadline - now;
		ts.tv_sec += (time_t)(wait_ns / 1000000000ull);
		ts.tv_nsec += (long)(wait_ns % 1000000000ull);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&pool->cv, &pool->mu, &ts);
	}
	pthread_mutex_unlock(&pool->mu);
	return rc;
}

enum kura_err kmip_pool_roundtrip(struct kmip_pool *pool, const uint8_t *req,
				  size_t req_len, bool sensitive,
				  struct kmip_reply *reply,
				  struct kura_error *err)
{
	struct kmip_conn *c = NULL;
	enum kura_err rc = pool_get(pool, &c, err);
	if (rc != KURA_OK)
		return rc;
	for (int attempt = 0;; attempt++) {
		struct kura_error sub = { 0 };
		if (c == NULL) {
			rc = conn_dial(pool, &c, &sub);
			if (rc != KURA_OK) {
				if (rc == KURA_EKEY)
					mark_down(pool, sub.msg);
				pool_put(pool, NULL);
				return kura_fail(err, rc, "KMIP server %s:%s: %s",
						 pool->host, pool->port, sub.msg);
			}
			mark_up(pool);
		}
		bool got = false, proto = false;
		bool reused = c->reused;
		rc = exchange(pool, c, req, req_len, sensitive, reply, &got,
			      &proto, &sub);
		if (rc == KURA_OK) {
			pool_put(pool, c);
			return KURA_OK;
		}
		bool timed_out = c->timed_out;
		conn_close(c);
		c = NULL;
		/* A pooled connection the server had already dropped: try
		 * once more on a fresh one.  Not after a timeout: a server
		 * that hangs would cost the caller twice the timeout. */
		if (rc == KURA_EKEY && reused && !got && !timed_out &&
		    attempt == 0)
			continue;
		if (rc == KURA_EKEY && !proto)
			mark_down(pool, sub.msg);
		pool_put(pool, NULL);
		return kura_fail(err, rc, "KMIP server %s:%s: %s", pool->host,
				 pool->port, sub.msg);
	}
}

void kmip_pool_release(struct kmip_pool *pool)
{
	if (pool->ctx == NULL)
		return;
	for (unsigned i = 0; i < pool->n_idle; i++)
		conn_close(pool->idle[i]);
	pool->n_idle = 0;
	pool->n_total = 0;
	pthread_cond_destroy(&pool->cv);
	pthread_mutex_destroy(&pool->mu);
	SSL_CTX_free(pool->ctx);
	pool->ctx = NULL;
}

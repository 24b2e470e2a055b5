/*
 * server.c — the HTTP listener: libmicrohttpd glue that turns connections
 * into struct kura_http_req and drives the handler (see http.h).
 *
 * Threading: libmicrohttpd runs one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION), so a handler may block on disk or a key
 * provider without stalling other clients, and concurrent PUTs can share a
 * group commit.  All request state lives in the request's pool.
 *
 * Slow clients: libmicrohttpd's connection timeout counts idle time only,
 * so a client sending one header byte a second would hold its thread
 * forever.  A watchdog thread therefore shuts down any connection that has
 * not completed a request head within connection_timeout seconds of
 * connecting or of finishing its previous request, and one whose body
 * arrives at less than BODY_RATE_MIN bytes per second over a window of
 * connection_timeout seconds (the connection thread then sees end-of-file
 * and closes it; a half-received upload is dropped like any aborted one).  A connection's entry is removed,
 * under the same lock, when libmicrohttpd reports it closed, which happens
 * before the socket is closed: the watchdog never touches a reused fd.
 *
 * Evidence: every request whose request line arrived reaches the handler's
 * done() exactly once, with the reason it ended early (req->abort) — also
 * one whose head never completed or that libmicrohttpd refused itself —
 * so that the audit log can account for every request (what kura cut
 * itself is told apart from what the client or the network did).
 *
 * Keep-alive: libmicrohttpd 0.9.75 answers "Connection: close" when a
 * response is queued on the first call of the access handler, so responses
 * are queued on a later call — except early errors for requests that carry
 * a body we do not want to read, where closing is the point.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "kura/encode.h"
#include "kura/fsutil.h"
#include "kura/http.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/secret.h"
#include "kura/timefmt.h"
#include "http_int.h"
#include "kura/banned.h"

#define MAX_HEADERS 256
#define STREAM_BLOCK (256 * 1024)
#define DISCARD_MAX (64u << 20)

struct resp_header {
	const char *name;
	const char *value;
};

struct kura_http_resp {
	unsigned status;
	struct resp_header *headers;
	size_t nheaders, cap;
	const void *body; /* buffer body (pool memory) */
	size_t body_len;
	kura_http_reader_fn reader; /* or streamed body */
	void *reader_cls;
	void (*reader_free)(void *);
	uint64_t stream_size;
};

/* Per-request state private to this file, wrapping the public request. */
/* The slowest body accepted, averaged over each connection_timeout window:
 * far below any working link, far above a trickle meant to hold a
 * connection thread. */
#define BODY_RATE_MIN 1024u

struct conn_watch;

struct conn_req {
	struct kura_http_req req;
	struct kura_http_server *srv;
	struct conn_watch *watch; /* NULL when the connection is unwatched */
	bool begun;
	bool queued;
	bool is_head;
	bool cut;	    /* kura ended it: reader failed, body too large */
	uint64_t discarded; /* body bytes read after the answer was decided */
};

/* One TCP connection, as the slow-client watchdog sees it. */
struct conn_watch {
	struct conn_watch *prev, *next;
	MHD_socket fd;
	bool in_request;       /* head complete, request not finished */
	bool cut;	       /* shut down as too slow */
	uint64_t since_ns;     /* when it began waiting for a request head */
	bool receiving;	       /* the body is arriving */
	uint64_t window_ns;    /* start of the current body-rate window */
	uint64_t window_bytes; /* body bytes received in it */
};

struct kura_http_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_wake;
	struct conn_watch *watched;
	uint64_t head_timeout_ns;
	bool watch_stop;
	bool watch_running;
	pthread_t watch_thread;
	struct kura_http_handler handler;
	uint16_t port;
	uint64_t max_header_bytes;
	uint64_t max_url_bytes;
	atomic_int in_flight;
	char *tls_cert;
	char *tls_key;
};

const struct kura_str *kura_http_header_get(const struct kura_http_req *req,
					    const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (kura_str_caseeq_cstr(req->headers[i].name, name))
			return &req->headers[i].value;
	return NULL;
}

bool kura_http_resp_ready(const struct kura_http_req *req)
{
	return req->resp != NULL && req->resp->status != 0;
}

unsigned kura_http_resp_status(const struct kura_http_req *req)
{
	return req->resp ? req->resp->status : 0;
}

uint64_t kura_http_resp_length(const struct kura_http_req *req)
{
	const struct kura_http_resp *r = req->resp;
	if (r == NULL)
		return 0;
	return r->reader ? r->stream_size : r->body_len;
}

static void resp_clear_stream(struct kura_http_resp *r)
{
	if (r->reader_free && r->reader_cls)
		r->reader_free(r->reader_cls);
	r->reader = NULL;
	r->reader_cls = NULL;
	r->reader_free = NULL;
}

enum kura_err kura_http_respond(struct kura_http_req *req, unsigned status)
{
	struct kura_http_resp *r = req->resp;
	if (r == NULL) {
		r = kura_palloc(req->pool, sizeof(*r));
		if (r == NULL)
			return KURA_ENOMEM;
		req->resp = r;
	}
	resp_clear_stream(r);
	r->status = status;
	r->nheaders = 0;
	r->body = NULL;
	r->body_len = 0;
	r->stream_size = 0;
	return KURA_OK;
}

static bool has_crlf(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return true;
	return false;
}

enum kura_err kura_http_resp_header(struct kura_http_req *req, const char *name,
				    const char *value)
{
	struct kura_http_resp *r = req->resp;
	if (r == NULL || has_crlf(name) || has_crlf(value))
		return KURA_EINVAL;
	if (r->nheaders == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct resp_header *h =
			kura_palloc(req->pool, cap * sizeof(*h));
		if (h == NULL)
			return KURA_ENOMEM;
		if (r->nheaders)
			memcpy(h, r->headers, r->nheaders * sizeof(*h));
		r->headers = h;
		r->cap = cap;
	}
	const char *n = kura_pstrdup(req->pool, name);
	const char *v = kura_pstrdup(req->pool, value);
	if (n == NULL || v == NULL)
		return KURA_ENOMEM;
	r->headers[r->nheaders].name = n;
	r->headers[r->nheaders].value = v;
	r->nheaders++;
	return KURA_OK;
}

enum kura_err kura_http_resp_body(struct kura_http_req *req, const void *p,
				  size_t n)
{
	struct kura_http_resp *r = req->resp;
	if (r == NULL)
		return KURA_EINVAL;
	resp_clear_stream(r);
	r->body = n ? kura_pmemdup(req->pool, p, n) : NULL;
	if (n && r->body == NULL)
		return KURA_ENOMEM;
	r->body_len = n;
	return KURA_OK;
}

enum kura_err kura_http_resp_stream(struct kura_http_req *req, uint64_t size,
				    kura_http_reader_fn reader, void *cls,
				    void (*free_cls)(void *cls))
{
	struct kura_http_resp *r = req->resp;
	if (r == NULL) {
		if (free_cls)
			free_cls(cls);
		return KURA_EINVAL;
	}
	resp_clear_stream(r);
	r->body = NULL;
	r->body_len = 0;
	r->reader = reader;
	r->reader_cls = cls;
	r->reader_free = free_cls;
	r->stream_size = size;
	return KURA_OK;
}

/* ---- libmicrohttpd callbacks ---- */

static void new_request_id(char out[KURA_REQUEST_ID_LEN + 1])
{
	uint8_t rnd[KURA_REQUEST_ID_LEN / 2];
	if (kura_random_bytes(rnd, sizeof(rnd), NULL) != KURA_OK)
		memset(rnd, 0, sizeof(rnd));
	kura_hex_encode(rnd, sizeof(rnd), out);
	for (char *p = out; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct kura_http_server *srv = cls;
	struct kura_pool *pool = kura_pool_new(8192);
	if (pool == NULL)
		return NULL;
	struct conn_req *cr = kura_palloc(pool, sizeof(*cr));
	if (cr == NULL) {
		kura_pool_free(pool);
		return NULL;
	}
	struct kura_http_req *req = &cr->req;
	cr->srv = srv;
	req->pool = pool;
	new_request_id(req->id);
	req->start_ms = kura_now_ms();
	req->start_ns = kura_mono_ns();
	size_t n = strlen(uri);
	req->target.p = kura_pstrndup(pool, uri, n);
	req->target.len = req->target.p ? n : 0;
	const char *q = req->target.p ? memchr(req->target.p, '?', n) : NULL;
	req->path.p = req->target.p;
	req->path.len = q ? (size_t)(q - req->target.p) : req->target.len;
	req->query.p = q ? q + 1 : "";
	req->query.len = q ? n - req->path.len - 1 : 0;

	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(
				AF_INET,
				&((const struct sockaddr_in *)(const void *)sa)
					 ->sin_addr,
				req->remote, sizeof(req->remote));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(
				AF_INET6,
				&((const struct sockaddr_in6 *)(const void *)sa)
					 ->sin6_addr,
				req->remote, sizeof(req->remote));
	}
	atomic_fetch_add(&srv->in_flight, 1);
	return cr;
}

struct header_collect {
	struct kura_http_req *req;
	size_t cap;
	bool too_many;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
				      const char *key, size_t key_size,
				      const char *value, size_t value_size)
{
	struct header_collect *hc = cls;
	struct kura_http_req *req = hc->req;
	(void)kind;
	if (req->nheaders == hc->cap) {
		hc->too_many = true;
		return MHD_NO;
	}
	req->headers[req->nheaders].name.p = key;
	req->headers[req->nheaders].name.len = key_size;
	req->headers[req->nheaders].value.p = value ? value : "";
	req->headers[req->nheaders].value.len = value ? value_size : 0;
	req->header_bytes += key_size + value_size;
	req->nheaders++;
	return MHD_YES;
}

static void detect_body(struct kura_http_req *req)
{
	const struct kura_str *te =
		kura_http_header_get(req, "Transfer-Encoding");
	const struct kura_str *cl = kura_http_header_get(req, "Content-Length");
	uint64_t len = 0;
	if (te != NULL)
		req->has_body = true;
	else if (cl != NULL &&
		 kura_parse_u64(cl->p, cl->len, UINT64_MAX, &len) == KURA_OK)
		req->has_body = len > 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct conn_req *cr = cls;
	struct kura_http_resp *r = cr->req.resp;
	ssize_t n = r->reader(r->reader_cls, pos, buf, max);
	if (n < 0) {
		cr->cut = true;
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	cr->req.bytes_out += (uint64_t)n;
	return n;
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct conn_req *cr)
{
	struct kura_http_req *req = &cr->req;
	struct kura_http_resp *r = req->resp;
	struct MHD_Response *mr;
	if (!kura_http_resp_ready(req)) {
		kura_error(req->id, "handler produced no response");
		if (kura_http_respond(req, 500) != KURA_OK)
			return MHD_NO;
		r = req->resp;
	}
	if (cr->srv->handler.before_send) {
		cr->srv->handler.before_send(cr->srv->handler.ctx, req);
		r = req->resp; /* the hook may have replaced the response */
	}
	if (r->reader) {
		/* libmicrohttpd allocates (and zeroes) the whole block for
		 * every response: a small body gets a block of its size. */
		size_t block = r->stream_size < STREAM_BLOCK ?
				       (size_t)r->stream_size :
				       STREAM_BLOCK;
		mr = MHD_create_response_from_callback(r->stream_size,
						       block ? block : 1,
						       stream_reader, cr, NULL);
	} else {
		mr = MHD_create_response_from_buffer(
			r->body_len, (void *)r->body, MHD_RESPMEM_PERSISTENT);
	}
	if (mr == NULL)
		return MHD_NO;
	/* libmicrohttpd 0.9.75 refuses an empty value (S3 returns empty user
	 * metadata): a single space is the same field value on the wire,
	 * since clients strip the optional whitespace around it. */
	for (size_t i = 0; i < r->nheaders; i++)
		MHD_add_response_header(
			mr, r->headers[i].name,
			r->headers[i].value[0] ? r->headers[i].value : " ");
	MHD_add_response_header(mr, "Server", "kura");
	if (!r->reader && !cr->is_head)
		req->bytes_out = r->body_len;
	enum MHD_Result rc = MHD_queue_response(conn, r->status, mr);
	MHD_destroy_response(mr);
	cr->queued = rc == MHD_YES;
	return rc;
}

/* ---- slow-client watchdog ---- */

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void watch_mark(struct kura_http_server *srv, struct conn_watch *w,
		       bool in_request)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&srv->watch_lock);
	w->in_request = in_request;
	w->since_ns = kura_mono_ns();
	w->receiving = false;
	pthread_mutex_unlock(&srv->watch_lock);
}

/* The body starts (receiving) or is complete; n more body bytes arrived. */
static void watch_body(struct kura_http_server *srv, struct conn_watch *w,
		       bool receiving, size_t n)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&srv->watch_lock);
	if (receiving && !w->receiving) {
		w->window_ns = kura_mono_ns();
		w->window_bytes = 0;
	}
	w->receiving = receiving;
	w->window_bytes += n;
	pthread_mutex_unlock(&srv->watch_lock);
}

/* Is w too slow (called with watch_lock held)?  A body window that met the
 * rate starts the next one. */
static bool watch_too_slow(struct kura_http_server *srv, struct conn_watch *w,
			   uint64_t now)
{
	if (!w->in_request)
		return now >= w->since_ns &&
		       now - w->since_ns >= srv->head_timeout_ns;
	if (!w->receiving || now < w->window_ns ||
	    now - w->window_ns < srv->head_timeout_ns)
		return false;
	uint64_t need = BODY_RATE_MIN * (srv->head_timeout_ns / 1000000000u);
	if (w->window_bytes < need)
		return true;
	w->window_ns = now;
	w->window_bytes = 0;
	return false;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct kura_http_server *srv = cls;
	struct conn_watch *w = *socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		w = calloc(1, sizeof(*w));
		if (w == NULL || ci == NULL) {
			free(w); /* unwatched: only the idle timeout applies */
			return;
		}
		w->fd = ci->connect_fd;
		w->since_ns = kura_mono_ns();
		pthread_mutex_lock(&srv->watch_lock);
		w->next = srv->watched;
		if (srv->watched)
			srv->watched->prev = w;
		srv->watched = w;
		pthread_mutex_unlock(&srv->watch_lock);
		*socket_context = w;
		return;
	}
	if (w == NULL)
		return;
	pthread_mutex_lock(&srv->watch_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		srv->watched = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&srv->watch_lock);
	*socket_context = NULL;
	free(w);
}

static void *watchdog(void *arg)
{
	struct kura_http_server *srv = arg;
	pthread_mutex_lock(&srv->watch_lock);
	while (!srv->watch_stop) {
		uint64_t now = kura_mono_ns();
		for (struct conn_watch *w = srv->watched; w; w = w->next) {
			if (!watch_too_slow(srv, w, now))
				continue;
			kura_debug(
				NULL, "http: %s: closing",
				w->in_request ?
					"request body slower than the minimum rate" :
					"no complete request head within the connection timeout");
			shutdown(w->fd, SHUT_RDWR);
			w->cut = true;
			/* once is enough */
			w->in_request = w->receiving = false;
			w->since_ns = UINT64_MAX / 2;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000 * 1000 * 1000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&srv->watch_wake, &srv->watch_lock, &ts);
	}
	pthread_mutex_unlock(&srv->watch_lock);
	return NULL;
}

static void watch_stop(struct kura_http_server *srv)
{
	if (!srv->watch_running)
		return;
	pthread_mutex_lock(&srv->watch_lock);
	srv->watch_stop = true;
	pthread_cond_signal(&srv->watch_wake);
	pthread_mutex_unlock(&srv->watch_lock);
	pthread_join(srv->watch_thread, NULL);
	srv->watch_running = false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct kura_http_server *srv = cls;
	struct conn_req *cr = *req_cls;
	(void)url;
	(void)version;
	if (cr == NULL || cr->req.target.p == NULL)
		return MHD_NO; /* out of memory in on_uri: drop the connection */
	struct kura_http_req *req = &cr->req;

	if (!cr->begun) {
		cr->begun = true;
		cr->watch = watch_of(conn);
		watch_mark(srv, cr->watch, true);
		req->method = kura_pstrdup(req->pool, method);
		cr->is_head = strcmp(method, "HEAD") == 0;
		req->headers = kura_palloc(req->pool,
					   MAX_HEADERS * sizeof(*req->headers));
		if (req->method == NULL || req->headers == NULL)
			return MHD_NO;
		struct header_collect hc = { req, MAX_HEADERS, false };
		MHD_get_connection_values_n(conn, MHD_HEADER_KIND,
					    collect_header, &hc);
		if (hc.too_many) /* reported as an oversized header section */
			req->header_bytes = SIZE_MAX;
		detect_body(req);
		if (req->has_body)
			watch_body(srv, cr->watch, true, 0);
		srv->handler.begin(srv->handler.ctx, req);
		/* An early answer to a request with a body is sent at once:
		 * the body is then never read and the connection closes. */
		if (kura_http_resp_ready(req) && req->has_body)
			return queue(conn, cr);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		req->bytes_in += n;
		watch_body(srv, cr->watch, true, n);
		/* libmicrohttpd 0.9.75 cannot queue a response while the body
		 * is being received (the connection would just be dropped), so
		 * an answer decided mid-body waits for the body's end; the rest
		 * is discarded, up to a bound past which the client gets no
		 * answer and the connection closes. */
		if (kura_http_resp_ready(req)) {
			cr->discarded += n;
			cr->cut = cr->discarded > DISCARD_MAX;
			return cr->cut ? MHD_NO : MHD_YES;
		}
		srv->handler.body(srv->handler.ctx, req,
				  (const uint8_t *)upload_data, n);
		return MHD_YES;
	}
	if (cr->queued)
		return MHD_YES;
	/* The body is complete: what follows is kura's work, not the client's. */
	watch_body(srv, cr->watch, false, 0);
	if (!kura_http_resp_ready(req))
		srv->handler.end(srv->handler.ctx, req);
	return queue(conn, cr);
}

const char *kura_http_abort_name(enum kura_http_abort a)
{
	static const char *const names[] = {
		"unknown", "client",   "connection",
		"timeout", "shutdown", "server",
	};
	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] :
								"unknown";
}

/* Why libmicrohttpd ended the request, in the handler's terms.  What kura
 * did itself (cut, the watchdog) comes first: libmicrohttpd then sees only
 * a failed or closed connection. */
static enum kura_http_abort abort_reason(const struct conn_req *cr,
					 const struct conn_watch *w,
					 enum MHD_RequestTerminationCode toe)
{
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		return KURA_HTTP_ABORT_NONE;
	if (cr->cut)
		return KURA_HTTP_ABORT_SERVER;
	if (w != NULL && w->cut)
		return KURA_HTTP_ABORT_TIMEOUT;
	switch (toe) {
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
		return KURA_HTTP_ABORT_TIMEOUT;
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
		return KURA_HTTP_ABORT_SHUTDOWN;
	case MHD_REQUEST_TERMINATED_READ_ERROR:
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
		return KURA_HTTP_ABORT_CLIENT;
	default:
		return cr->queued ? KURA_HTTP_ABORT_CONNECTION :
				    KURA_HTTP_ABORT_CLIENT;
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct kura_http_server *srv = cls;
	struct conn_req *cr = *req_cls;
	if (cr == NULL)
		return;
	*req_cls = NULL;
	struct conn_watch *w = watch_of(conn);
	if (w != NULL) {
		pthread_mutex_lock(&srv->watch_lock);
		cr->req.abort = abort_reason(cr, w, toe);
		pthread_mutex_unlock(&srv->watch_lock);
	} else {
		cr->req.abort = abort_reason(cr, NULL, toe);
	}
	bool completed = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
	if (!cr->begun && cr->req.target.p != NULL) {
		/* The head never reached begin: libmicrohttpd refused it or
		 * the connection ended first.  Still a request to account
		 * for.  A refusal is answered and then the connection closed
		 * "with error": the answer went out all the same. */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_HTTP_STATUS);
		cr->req.refused_status = ci ? ci->http_status : 0;
		if (cr->req.refused_status != 0) {
			completed = true;
			cr->req.abort = KURA_HTTP_ABORT_NONE;
		}
	}
	if (cr->req.target.p != NULL)
		srv->handler.done(srv->handler.ctx, &cr->req, completed);
	watch_mark(srv, w, false);
	if (cr->req.resp)
		resp_clear_stream(cr->req.resp);
	kura_pool_free(cr->req.pool);
	atomic_fetch_sub(&srv->in_flight, 1);
}

static size_t keep_raw(void *cls, struct MHD_Connection *conn, char *s)
{
	/* kura parses the raw target itself (SigV4 needs the bytes as sent);
	 * libmicrohttpd must not unescape anything. */
	(void)cls;
	(void)conn;
	return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	kura_debug(NULL, "http: %s", line);
}

enum kura_err kura_http_start(const struct kura_config *cfg,
			      const struct kura_http_handler *handler,
			      struct kura_http_server **out,
			      struct kura_error *err)
{
	const char *listen = kura_config_get(cfg, "server", "listen");
	const char *cert = kura_config_get(cfg, "server", "tls_cert");
	const char *key = kura_config_get(cfg, "server", "tls_key");
	struct sockaddr_storage ss;
	socklen_t sslen;
	enum kura_err rc = kura_http_check_config(cfg, err);
	if (rc == KURA_OK)
		rc = http_resolve(listen, &ss, &sslen, err);
	if (rc != KURA_OK)
		return rc;

	struct kura_http_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return kura_fail(err, KURA_ENOMEM, "http server");
	srv->handler = *handler;
	pthread_mutex_init(&srv->watch_lock, NULL);
	pthread_cond_init(&srv->watch_wake, NULL);
	srv->max_header_bytes =
		kura_config_get_u64(cfg, "limits", "max_header_bytes");
	srv->max_url_bytes =
		kura_config_get_u64(cfg, "limits", "max_url_bytes");
	if (cert != NULL) {
		size_t n;
		if ((rc = kura_read_file(cert, 1 << 20, &srv->tls_cert, &n,
					 err)) != KURA_OK ||
		    (rc = kura_read_file(key, 1 << 20, &srv->tls_key, &n,
					 err)) != KURA_OK)
			goto fail;
	}

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
			 MHD_USE_ERROR_LOG | MHD_USE_POLL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cert != NULL)
		flags |= MHD_USE_TLS;
	/* Headers and the request target must fit in connection memory with
	 * room to spare, so that kura (not libmicrohttpd) enforces the limits
	 * and answers with S3 errors; the rest buffers upload pieces. */
	size_t mem = (size_t)(srv->max_header_bytes + srv->max_url_bytes) * 2 +
		     32 * 1024;
	unsigned max_conn =
		(unsigned)kura_config_get_u64(cfg, "server", "max_connections");
	unsigned timeout = (unsigned)kura_config_get_u64(cfg, "server",
							 "connection_timeout");
	srv->head_timeout_ns = (uint64_t)(timeout ? timeout : 60) * 1000000000u;

	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0,
		  (void *)"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
		{ MHD_OPTION_END, 0, NULL },
	};
	srv->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
		srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
		MHD_OPTION_CONNECTION_LIMIT, max_conn,
		MHD_OPTION_CONNECTION_TIMEOUT, timeout,
		/* RFC 9112: a 400 for an HTTP/1.1 request without Host, and no
		 * tolerance for header lines without a colon. */
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_ARRAY,
		cert != NULL ? tls_opts : &tls_opts[3], MHD_OPTION_END);
	if (srv->daemon == NULL) {
		rc = kura_fail(
			err, KURA_EIO,
			"cannot listen on '%s' (address in use or not available)",
			listen);
		goto fail;
	}
	if (pthread_create(&srv->watch_thread, NULL, watchdog, srv) != 0) {
		MHD_stop_daemon(srv->daemon);
		rc = kura_fail(err, KURA_ENOMEM,
			       "cannot start the connection watchdog");
		goto fail;
	}
	srv->watch_running = true;
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di ? di->port : 0;
	*out = srv;
	return KURA_OK;
fail:
	pthread_cond_destroy(&srv->watch_wake);
	pthread_mutex_destroy(&srv->watch_lock);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv);
	return rc;
}

uint16_t kura_http_port(const struct kura_http_server *srv)
{
	return srv->port;
}

void kura_http_stop(struct kura_http_server *srv, unsigned grace_ms)
{
	if (srv == NULL)
		return;
	MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	uint64_t deadline = kura_mono_ns() + (uint64_t)grace_ms * 1000000u;
	while (atomic_load(&srv->in_flight) > 0 && kura_mono_ns() < deadline) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(srv->daemon);
	watch_stop(srv);
	pthread_cond_destroy(&srv->watch_wake);
	pthread_mutex_destroy(&srv->watch_lock);
	if (srv->tls_key)
		kura_wipe(srv->tls_key, strlen(srv->tls_key));
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv);
}

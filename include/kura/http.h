/*
 * http.h — the HTTP layer's contract with the handler above it (src/s3).
 *
 * The listener (libmicrohttpd) turns each request into a struct
 * kura_http_req and drives a struct kura_http_handler through it:
 *
 *   begin(req)            headers complete; the handler routes and
 *                         authenticates, and may already set a response
 *                         (an early error: the body is then not read)
 *   body(req, p, n) ...   request body pieces as they arrive (decoded from
 *                         HTTP chunked transfer coding), never all at once
 *   end(req)              the body is complete: the handler must set a
 *                         response if it has not
 *   before_send(req)      the response is complete and about to be sent:
 *                         the last moment to record it (the audit log) or
 *                         to replace it; optional
 *   done(req, ok)         the response was sent (ok) or the request was
 *                         aborted (req->abort says why): release
 *                         everything; always called once — also for a
 *                         request that never reached begin because its
 *                         head was incomplete when the connection ended
 *                         or libmicrohttpd refused it itself (malformed,
 *                         no Host): then req->method is NULL, there are no
 *                         headers, and req->refused_status is the status
 *                         libmicrohttpd answered with (0: none)
 *
 * Responses are assembled with kura_http_resp_*: a status, headers, and a
 * body that is either a buffer or a stream pulled through a reader callback,
 * so memory never grows with object size.
 *
 * Threading: one request is handled by one thread at a time; handlers for
 * different requests run concurrently.
 */
#ifndef KURA_HTTP_H
#define KURA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kura/buf.h"
#include "kura/config.h"
#include "kura/err.h"
#include "kura/pool.h"

#define KURA_REQUEST_ID_LEN 16

struct kura_http_header {
	struct kura_str name;
	struct kura_str value;
};

/*
 * Pull the next bytes of a streamed response body: fill buf with at most max
 * bytes starting at body offset pos and return how many (> 0), 0 at the end,
 * or -1 to abort the response (the client then sees a truncated body and a
 * closed connection, never wrong bytes).
 */
typedef ssize_t (*kura_http_reader_fn)(void *cls, uint64_t pos, char *buf,
				       size_t max);

struct kura_http_resp; /* private to the http layer */

/* Why a request ended before its response was completely sent. */
enum kura_http_abort {
	KURA_HTTP_ABORT_NONE = 0,   /* not aborted (or not known) */
	KURA_HTTP_ABORT_CLIENT,	    /* the client closed or reset the
					 * connection before its request was
					 * complete */
	KURA_HTTP_ABORT_CONNECTION, /* the connection failed while the
					 * answer was being sent (mostly: the
					 * client went away) */
	KURA_HTTP_ABORT_TIMEOUT,    /* idle beyond connection_timeout, or
					 * cut off as too slow */
	KURA_HTTP_ABORT_SHUTDOWN,   /* the server was stopping */
	KURA_HTTP_ABORT_SERVER,	    /* kura cut it: a streamed body's reader
					 * failed, or an unread body was too
					 * large to discard */
};

/* "client", "connection", "timeout", "shutdown", "server"; "unknown" for
 * KURA_HTTP_ABORT_NONE. */
const char *kura_http_abort_name(enum kura_http_abort a);

struct kura_http_req {
	struct kura_pool *pool;		  /* freed after done() */
	char id[KURA_REQUEST_ID_LEN + 1]; /* x-amz-request-id */
	const char *method;	/* "GET", "PUT", ...; NULL before begin */
	struct kura_str target; /* raw request target, path?query */
	struct kura_str path;	/* raw (percent-encoded) path */
	struct kura_str query;	/* raw query without '?', maybe empty */
	struct kura_http_header *headers;
	size_t nheaders;
	size_t header_bytes; /* total size of names and values */
	bool has_body;	     /* Content-Length > 0 or chunked */
	char remote[64];     /* client address */
	bool tls;
	int64_t start_ms;	     /* wall clock at arrival */
	uint64_t start_ns;	     /* monotonic at arrival */
	uint64_t bytes_in;	     /* body bytes received so far */
	uint64_t bytes_out;	     /* body bytes handed to the connection so
					 * far (a streamed body: up to one block
					 * more than the client received) */
	enum kura_http_abort abort;  /* set before done() */
	unsigned refused_status;     /* see done() */
	void *handler_ctx;	     /* owned by the handler */
	struct kura_http_resp *resp; /* private */
};

struct kura_http_handler {
	void (*begin)(void *ctx, struct kura_http_req *req);
	void (*body)(void *ctx, struct kura_http_req *req, const uint8_t *p,
		     size_t n);
	void (*end)(void *ctx, struct kura_http_req *req);
	void (*before_send)(void *ctx, struct kura_http_req *req);
	void (*done)(void *ctx, struct kura_http_req *req, bool completed);
	void *ctx;
};

/* First header named name (case-insensitive), or NULL. */
const struct kura_str *kura_http_header_get(const struct kura_http_req *req,
					    const char *name);

/* Has a response been set? */
bool kura_http_resp_ready(const struct kura_http_req *req);
unsigned kura_http_resp_status(const struct kura_http_req *req);

/* Body bytes the response will carry (buffer length or stream size). */
uint64_t kura_http_resp_length(const struct kura_http_req *req);

/* Start the response with a status; headers and a body may follow.  Setting
 * a second response replaces the first (e.g. an error found late). */
enum kura_err kura_http_respond(struct kura_http_req *req, unsigned status);

/* Add a response header (value copied to the request pool).  Values with CR
 * or LF are refused (KURA_EINVAL). */
enum kura_err kura_http_resp_header(struct kura_http_req *req, const char *name,
				    const char *value);

/* Body from memory (copied into the request pool); also sets the length. */
enum kura_err kura_http_resp_body(struct kura_http_req *req, const void *p,
				  size_t n);

/* Body streamed by reader (size bytes exactly); free_cls(cls) runs once when
 * the response is destroyed.  For HEAD, size is announced as Content-Length
 * and the reader is never called. */
enum kura_err kura_http_resp_stream(struct kura_http_req *req, uint64_t size,
				    kura_http_reader_fn reader, void *cls,
				    void (*free_cls)(void *cls));

struct kura_http_server;

/*
 * Check [server] listen, tls_cert and tls_key without binding anything:
 * a numeric address, plain HTTP only on loopback, both TLS files set,
 * readable, PEM, and the key the certificate's.  KURA_ECONFIG naming the
 * key.  The server calls it before it creates anything; `kura check` too.
 */
enum kura_err kura_http_check_config(const struct kura_config *cfg,
				     struct kura_error *err);

/*
 * Can [server] listen be bound now?  Binds a socket the way the listener
 * will (SO_REUSEADDR, never SO_REUSEPORT) and closes it: KURA_EBUSY with a
 * clear message when another process listens there.  A start-up check
 * only: the listener's own bind is what finally counts.
 */
enum kura_err kura_http_probe_listen(const struct kura_config *cfg,
				     struct kura_error *err);

/*
 * Start listening as configured ([server] listen, tls_cert, tls_key,
 * max_connections, connection_timeout; [limits] max_header_bytes,
 * max_url_bytes).  Refuses plain HTTP on a non-loopback address.  The
 * port is bound without SO_REUSEPORT: a port in use is an error.
 */
enum kura_err kura_http_start(const struct kura_config *cfg,
			      const struct kura_http_handler *handler,
			      struct kura_http_server **out,
			      struct kura_error *err);

/* The port actually bound (useful with port 0). */
uint16_t kura_http_port(const struct kura_http_server *srv);

/* Stop accepting, wait up to grace_ms for requests in flight, then stop. */
void kura_http_stop(struct kura_http_server *srv, unsigned grace_ms);

#endif

/*
 * kmip_int.h — private to the kmip key provider: the TLS connection pool
 * that carries KMIP requests (kmip_conn.c) to one server.
 *
 * The pool keeps at most KMIP_POOL_MAX mutually-authenticated TLS 1.2+
 * connections; a round trip borrows one, and a connection that fails in any
 * way is closed rather than returned.  After a failure to reach the server
 * the pool refuses calls at once for a short, growing back-off, so a dead
 * server costs each caller microseconds rather than the full timeout; the
 * first call after the back-off dials again.
 *
 * Thread-safe.
 */
#ifndef KURA_KEYS_KMIP_INT_H
#define KURA_KEYS_KMIP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "kura/config.h"
#include "kura/err.h"
#include "kura/secret.h"

#define KMIP_POOL_MAX 8
#define KMIP_HOST_MAX 256
#define KMIP_REPLY_MAX (64u * 1024u)	/* largest reply we accept */

struct kmip_conn;

struct kmip_pool {
	SSL_CTX *ctx;
	char host[KMIP_HOST_MAX];	/* to dial */
	char port[8];
	char name[KMIP_HOST_MAX];	/* to verify in the certificate */
	bool name_is_ip;
	int timeout_ms;

	pthread_mutex_t mu;		/* guards everything below */
	pthread_cond_t cv;		/* a connection was returned */
	struct kmip_conn *idle[KMIP_POOL_MAX];
	unsigned n_idle, n_total;
	uint64_t down_until_ns;		/* refuse calls until then */
	uint64_t backoff_ns;		/* next back-off (0: server fine) */
	char down_msg[KURA_ERROR_MSG_MAX];
};

/* A reply: in locked memory (sensitive) or on the heap, wiped when
 * released either way. */
struct kmip_reply {
	const uint8_t *p;
	size_t len;
	struct kura_secret *sec;
	uint8_t *heap;
};

/* Read the TLS settings from [keys] (server, ca_file, cert_file, key_file,
 * server_name, timeout) and build the TLS context.  Does not dial. */
enum kura_err kmip_pool_init(struct kmip_pool *pool,
			     const struct kura_config *cfg,
			     struct kura_error *err);

/* Close every connection and free the context.  No call may be in flight. */
void kmip_pool_release(struct kmip_pool *pool);

/* Send req and read one reply message.  sensitive: the reply may carry key
 * material, so it is read into locked memory (and must fit
 * KURA_SECRET_MAX).  KURA_EKEY when the server cannot be reached or the
 * connection fails (the message says why), KURA_EPROTO for a malformed
 * frame. */
enum kura_err kmip_pool_roundtrip(struct kmip_pool *pool, const uint8_t *req,
				  size_t req_len, bool sensitive,
				  struct kmip_reply *reply,
				  struct kura_error *err);

void kmip_reply_release(struct kmip_reply *reply);

#endif

/*
 * http_int.h — what the files of src/http share: the listen address as a
 * socket address (listen.c), used by the listener (server.c).
 */
#ifndef KURA_HTTP_INT_H
#define KURA_HTTP_INT_H

#include <sys/socket.h>

#include "kura/err.h"

/* "HOST:PORT" ("localhost" or a numeric IPv4/[IPv6] address) as a socket
 * address.  KURA_ECONFIG for anything else. */
enum kura_err http_resolve(const char *addr, struct sockaddr_storage *ss,
			   socklen_t *len, struct kura_error *err);

#endif

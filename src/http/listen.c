/*
 * listen.c — the listener's configuration, checked before the server
 * creates anything: the listen address, the loopback rule for plain HTTP,
 * the TLS certificate and key, and whether the port is free.
 *
 * The port is bound with SO_REUSEADDR only (libmicrohttpd's default), never
 * SO_REUSEPORT: with SO_REUSEPORT a second server could bind the same port
 * and the kernel would split clients between the two.
 *
 * Thread-safe (no state).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kura/fsutil.h"
#include "kura/http.h"
#include "kura/secret.h"
#include "http_int.h"
#include "kura/banned.h"

#define TLS_FILE_MAX (1u << 20)

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	const struct sockaddr_in6 *s6 = (const void *)ss;
	return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

enum kura_err http_resolve(const char *addr, struct sockaddr_storage *ss,
			   socklen_t *len, struct kura_error *err)
{
	char host[256];
	uint16_t port;
	enum kura_err rc =
		kura_config_split_addr(addr, host, sizeof(host), &port, err);
	if (rc != KURA_OK)
		return rc;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
	} else {
		return kura_fail(
			err, KURA_ECONFIG,
			"[server] listen: '%s' must be a numeric IP address "
			"(or localhost) and a port",
			addr);
	}
	return KURA_OK;
}

/* Never ask a terminal for a passphrase: libmicrohttpd is given none, so
 * an encrypted key could not be used anyway. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* The certificate and key parse as PEM and belong together. */
static enum kura_err check_pem_pair(const char *cert, const char *key,
				    struct kura_error *err)
{
	char *ctext = NULL, *ktext = NULL;
	size_t clen = 0, klen = 0;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	enum kura_err rc =
		kura_read_file(cert, TLS_FILE_MAX, &ctext, &clen, err);
	if (rc != KURA_OK)
		goto out;
	rc = kura_read_file(key, TLS_FILE_MAX, &ktext, &klen, err);
	if (rc != KURA_OK)
		goto out;
	BIO *b = BIO_new_mem_buf(ctext, (int)clen);
	x = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
	BIO_free(b);
	if (x == NULL) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "[server] tls_cert '%s' holds no PEM "
			       "certificate",
			       cert);
		goto out;
	}
	b = BIO_new_mem_buf(ktext, (int)klen);
	pk = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
	BIO_free(b);
	if (pk == NULL) {
		rc = kura_fail(err, KURA_ECONFIG,
			       "[server] tls_key '%s' holds no "
			       "unencrypted PEM private key",
			       key);
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1)
		rc = kura_fail(err, KURA_ECONFIG,
			       "[server] tls_key '%s' is not the key "
			       "of tls_cert '%s'",
			       key, cert);
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	if (ktext != NULL)
		kura_wipe(ktext, klen);
	free(ktext);
	free(ctext);
	return rc;
}

enum kura_err kura_http_check_config(const struct kura_config *cfg,
				     struct kura_error *err)
{
	const char *listen = kura_config_get(cfg, "server", "listen");
	const char *cert = kura_config_get(cfg, "server", "tls_cert");
	const char *key = kura_config_get(cfg, "server", "tls_key");
	struct sockaddr_storage ss;
	socklen_t sslen;
	enum kura_err rc = http_resolve(listen, &ss, &sslen, err);
	if (rc != KURA_OK)
		return rc;
	if ((cert == NULL) != (key == NULL))
		return kura_fail(
			err, KURA_ECONFIG,
			"[server] tls_cert and tls_key must be set together");
	if (cert == NULL && !is_loopback(&ss))
		return kura_fail(
			err, KURA_ECONFIG,
			"refusing plain HTTP on non-loopback address '%s': "
			"set [server] tls_cert and tls_key",
			listen);
	if (cert == NULL)
		return KURA_OK;
	return check_pem_pair(cert, key, err);
}

enum kura_err kura_http_probe_listen(const struct kura_config *cfg,
				     struct kura_error *err)
{
	const char *listen = kura_config_get(cfg, "server", "listen");
	struct sockaddr_storage ss;
	socklen_t sslen;
	enum kura_err rc = http_resolve(listen, &ss, &sslen, err);
	if (rc != KURA_OK)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kura_fail_errno(err, KURA_EIO, errno, "socket for '%s'",
				       listen);
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	int e = bind(fd, (struct sockaddr *)&ss, sslen) == 0 ? 0 : errno;
	close(fd);
	if (e == 0)
		return KURA_OK;
	if (e == EADDRINUSE)
		return kura_fail(
			err, KURA_EBUSY,
			"cannot listen on '%s': the address is "
			"in use (another kura server or another program "
			"listens there)",
			listen);
	if (e == EADDRNOTAVAIL)
		return kura_fail(err, KURA_ECONFIG,
				 "cannot listen on '%s': not an "
				 "address of this host",
				 listen);
	return kura_fail_errno(err, kura_err_from_errno(e), e,
			       "cannot listen on '%s'", listen);
}

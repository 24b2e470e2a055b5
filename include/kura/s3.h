/*
 * s3.h — the S3 protocol layer: routes authenticated requests to bucket and
 * object operations and speaks S3's XML and errors.  It is the only layer
 * that knows S3 error codes.
 */
#ifndef KURA_S3_H
#define KURA_S3_H

#include "kura/http.h"
#include "kura/service.h"

/* Fill handler so that the HTTP layer serves S3 on svc. */
void kura_s3_handler_init(struct kura_http_handler *handler,
			  struct kura_service *svc);

#endif

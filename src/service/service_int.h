/*
 * service_int.h — what the files of src/service share (not a public
 * contract).
 */
#ifndef KURA_SERVICE_INT_H
#define KURA_SERVICE_INT_H

#include "kura/audit.h"
#include "kura/keys.h"
#include "kura/service.h"

/* Make an opened key provider record every KEK operation (create, import,
 * wrap, unwrap, destroy) in audit, in place: holders of keys see the
 * audited provider (audit_keys.c). */
enum kura_err service_audit_keys(struct kura_keys *keys,
				 struct kura_audit *audit,
				 struct kura_error *err);

#endif

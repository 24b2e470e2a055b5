/*
 * fields.c — what a parsed request carries, as every operation reads it:
 * its headers, its query parameters and the name of its operation.
 *
 * A leaf of src/s3: request.c fills struct s3_req and routes it, the
 * operations read it through these, and neither needs the other's file.
 * Thread-safe: a request belongs to one thread; the name table is
 * constant.
 */
#include <string.h>

#include "s3_int.h"
#include "kura/banned.h"

static const char *const op_names[] = { "-",
#define S3_OP_NAME_(name) #name,
					S3_OP_TABLE(S3_OP_NAME_)
#undef S3_OP_NAME_
};

const char *s3_op_name(enum s3_op op)
{
	return op_names[(unsigned)op < S3_OP_COUNT_ ? op : 0];
}

const struct s3_param *s3_param_get(const struct s3_req *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return &r->params[i];
	return NULL;
}

const struct kura_str *s3_header(const struct s3_req *r, const char *name)
{
	return kura_http_header_get(r->http, name);
}

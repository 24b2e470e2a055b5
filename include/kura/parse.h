/*
 * parse.h — strict number parsing from (pointer, length) views.
 *
 * Only plain decimal digits are accepted: no sign, no spaces, no leading '+',
 * no empty string; overflow of the given maximum is an error.
 */
#ifndef KURA_PARSE_H
#define KURA_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"

enum kura_err kura_parse_u64(const char *s, size_t n, uint64_t max,
			     uint64_t *out);
/* Hexadecimal digits only (either case), at most 16 of them. */
enum kura_err kura_parse_hex_u64(const char *s, size_t n, uint64_t *out);

/* Parse a size with an optional suffix K, M, G, T (binary multiples). */
enum kura_err kura_parse_size(const char *s, uint64_t *out);

#endif

/*
 * lifecycle.h — a bucket's lifecycle configuration as kura keeps it: the
 * rules S3's PutBucketLifecycleConfiguration accepts (src/s3/lifecycle.c
 * reads them from XML and answers every fault as S3 does), their compact
 * canonical JSON form stored with the bucket (meta.h
 * bucket_set_lifecycle; its digest is under the bucket's row MAC), and the
 * questions the lifecycle job and the x-amz-expiration header ask of them:
 * does a rule apply to this version, and when does it expire it.
 *
 * Days: a rule's day counts are in units of day_ms (86400000 in
 * production; [lifecycle] day_seconds shortens it for tests).  An
 * expiration "after n days" falls at the first day boundary (midnight UTC
 * when a day is 86400 s) at or after mtime + n days, as S3 rounds it.
 *
 * Memory: every string of a configuration lives in the pool it was read
 * into; nothing here frees.  Threading: pure functions.
 */
#ifndef KURA_LIFECYCLE_H
#define KURA_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kura/err.h"
#include "kura/pool.h"

#define KURA_LC_RULES_MAX 1000
#define KURA_LC_ID_MAX 255	  /* characters of a rule ID */
#define KURA_LC_TAGS_MAX 10	  /* tags of a filter (an object holds 10) */
#define KURA_LC_PREFIX_MAX 1024	  /* bytes: the longest key */
#define KURA_LC_TAG_KEY_MAX 128	  /* S3's tag limits */
#define KURA_LC_TAG_VALUE_MAX 256 /* characters */
#define KURA_LC_SIZE_MAX 1099511627776000ull /* S3's ObjectSize bound */
#define KURA_LC_DAYS_MAX 2147483647u
/* The stored JSON of the largest configuration (1000 rules with their
 * longest IDs, prefixes and ten tags each) stays below this. */
#define KURA_LC_JSON_MAX (16u << 20)

/* How a rule named its objects, kept so GET answers in the same form. */
enum kura_lc_scope {
	KURA_LC_SCOPE_FILTER = 0,   /* <Filter> with one condition or none */
	KURA_LC_SCOPE_AND = 1,	    /* <Filter><And>...</And></Filter> */
	KURA_LC_SCOPE_V1_PREFIX = 2 /* the rule-level <Prefix> (V1) */
};

struct kura_lc_tag {
	const char *key, *value;
};

struct kura_lc_rule {
	const char *id; /* 1..KURA_LC_ID_MAX characters, unique */
	bool enabled;
	enum kura_lc_scope scope;
	const char *prefix; /* NULL: no prefix condition */
	struct kura_lc_tag tags[KURA_LC_TAGS_MAX];
	size_t ntags;
	bool has_size_gt, has_size_lt;
	uint64_t size_gt, size_lt; /* strict bounds */
	/* Expiration: at most one of days, date and marker. */
	uint32_t exp_days; /* 0: none */
	bool has_exp_date;
	int64_t exp_date_day;  /* days since 1970-01-01 */
	bool exp_marker;       /* ExpiredObjectDeleteMarker true */
	bool exp_marker_given; /* ... given (true or false) */
	/* NoncurrentVersionExpiration: noncurrent_days 0 for none. */
	uint32_t noncurrent_days;
	uint32_t newer_noncurrent; /* 0: none given */
	/* AbortIncompleteMultipartUpload: 0 for none. */
	uint32_t abort_days;
};

struct kura_lc_config {
	struct kura_lc_rule *rules;
	size_t n;
};

/* The canonical JSON of c, malloc'ed (the caller frees), or NULL when out
 * of memory.  The same configuration always gives the same bytes. */
char *kura_lc_to_json(const struct kura_lc_config *c);

/* Read a stored configuration into out, its strings from pool.  Checks
 * every limit again (the text comes from meta.db): KURA_EINVAL when it is
 * not one kura_lc_to_json could have written. */
KURA_WUR
enum kura_err kura_lc_from_json(const char *json, size_t len,
				struct kura_pool *pool,
				struct kura_lc_config *out,
				struct kura_error *err);

/* Whether rule r's filter selects an object with this key, size and tags
 * (meta.h's tags_json, NULL for none). */
bool kura_lc_matches(const struct kura_lc_rule *r, const char *key,
		     size_t key_len, uint64_t size, const char *tags_json);

/* Whether r's filter can be answered without an object's size or tags
 * (a prefix only): what AbortIncompleteMultipartUpload and
 * ExpiredObjectDeleteMarker require. */
bool kura_lc_prefix_only(const struct kura_lc_rule *r);

/* The first day boundary at or after ms (day_ms long days). */
int64_t kura_lc_day_ceil(int64_t ms, int64_t day_ms);

/* When rule r's Expiration (Days or Date) expires a current version
 * written at mtime_ms: the time in ms, or INT64_MAX when r has none. */
int64_t kura_lc_expiry_ms(const struct kura_lc_rule *r, int64_t mtime_ms,
			  int64_t day_ms);

#endif

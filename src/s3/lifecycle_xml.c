/*
 * lifecycle_xml.c — a PutBucketLifecycleConfiguration document read into
 * kura/lifecycle.h's model, every fault answered as S3 answers it (code and
 * message), and the model written back as GetBucketLifecycleConfiguration's
 * document.
 *
 * Order of checks, as S3's: the number of rules, then the rule IDs (length,
 * uniqueness), then each rule in order (status, scope, filter, actions,
 * the combinations an action forbids), then the overlapping prefixes of a
 * configuration in the V1 form (rule-level Prefix), and transitions last:
 * a document S3 would refuse is refused the same way, and one S3 would
 * take but that asks for a transition answers 501 (kura has one placement
 * class).  A configuration is in the V2 form when its first rule has a
 * Filter; then no rule may have a rule-level Prefix, and in the V1 form no
 * rule a Filter or NewerNoncurrentVersions.
 *
 * Thread-safe (per request); allocates from the given pool only.
 */
#include <stdio.h>
#include <string.h>

#include "kura/parse.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

#define DAY_SECS 86400

static void fault(struct s3_lc_fault *f, enum s3_error code, const char *msg)
{
	if (f->set)
		return;
	f->set = true;
	f->code = code;
	size_t n = msg ? strnlen(msg, sizeof(f->msg) - 1) : 0;
	memcpy(f->msg, msg ? msg : "", n);
	f->msg[n] = '\0';
}

static bool malformed(struct s3_lc_fault *f)
{
	fault(f, S3_MalformedXML, NULL);
	return false;
}

static bool named(const struct s3_xml_node *n, const char *name)
{
	return strcmp(n->name, name) == 0;
}

static size_t count_children(const struct s3_xml_node *n, const char *name)
{
	size_t k = 0;
	for (const struct s3_xml_node *c = n->child; c; c = c->next)
		k += named(c, name);
	return k;
}

/* The single child name of n: NULL when absent; *dup when repeated. */
static const struct s3_xml_node *one(const struct s3_xml_node *n,
				     const char *name, bool *dup)
{
	if (count_children(n, name) > 1)
		*dup = true;
	return s3_xml_child(n, name);
}

/* Characters of a UTF-8 string (continuation bytes not counted). */
static size_t utf8_chars(const char *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)p[i] & 0xC0) != 0x80;
	return k;
}

static const char *text_dup(struct kura_pool *pool, const struct s3_xml_node *n)
{
	return kura_pstrndup(pool, n->text, n->text_len);
}

static bool text_is(const struct s3_xml_node *n, const char *s)
{
	return n->text_len == strlen(s) && memcmp(n->text, s, n->text_len) == 0;
}

/* An integer element; false (MalformedXML) when it is not one.  A value
 * beyond max sets *big, for the caller's own message. */
static bool int_elem(const struct s3_xml_node *n, int64_t *v,
		     struct s3_lc_fault *f)
{
	uint64_t u = 0;
	const char *p = n->text;
	size_t len = n->text_len;
	bool neg = len > 0 && p[0] == '-';
	if (neg) {
		p++;
		len--;
	}
	if (len == 0 || len > 19 ||
	    kura_parse_u64(p, len, INT64_MAX, &u) != KURA_OK)
		return malformed(f);
	*v = neg ? -(int64_t)u : (int64_t)u;
	return true;
}

/* A positive day count of at most KURA_LC_DAYS_MAX, else msg. */
static bool days_elem(const struct s3_xml_node *n, uint32_t *out,
		      const char *msg, struct s3_lc_fault *f)
{
	int64_t v = 0;
	if (!int_elem(n, &v, f))
		return false;
	if (v <= 0 || v > (int64_t)KURA_LC_DAYS_MAX) {
		fault(f, S3_InvalidArgument, msg);
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

/* ---- filters ---- */

static bool tag_read(const struct s3_xml_node *t, struct kura_pool *pool,
		     struct kura_lc_rule *r, struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *k = one(t, "Key", &dup);
	const struct s3_xml_node *v = one(t, "Value", &dup);
	if (dup || k == NULL || v == NULL || k->text_len == 0)
		return malformed(f);
	if (utf8_chars(k->text, k->text_len) > KURA_LC_TAG_KEY_MAX ||
	    utf8_chars(v->text, v->text_len) > KURA_LC_TAG_VALUE_MAX) {
		fault(f, S3_InvalidTag,
		      "The TagKey you have provided is too long, max 128");
		return false;
	}
	if (r->ntags == KURA_LC_TAGS_MAX) {
		fault(f, S3_InvalidArgument,
		      "A Filter may hold at most 10 Tags.");
		return false;
	}
	for (size_t i = 0; i < r->ntags; i++) {
		if (strlen(r->tags[i].key) == k->text_len &&
		    memcmp(r->tags[i].key, k->text, k->text_len) == 0) {
			fault(f, S3_InvalidRequest,
			      "Duplicate Tag Keys are not allowed.");
			return false;
		}
	}
	r->tags[r->ntags].key = text_dup(pool, k);
	r->tags[r->ntags].value = text_dup(pool, v);
	r->ntags++;
	return true;
}

static bool prefix_read(const struct s3_xml_node *p, struct kura_pool *pool,
			struct kura_lc_rule *r, struct s3_lc_fault *f)
{
	if (p->text_len > KURA_LC_PREFIX_MAX) {
		fault(f, S3_InvalidArgument,
		      "The maximum size of a prefix is 1024.");
		return false;
	}
	r->prefix = text_dup(pool, p);
	return true;
}

static bool size_read(const struct s3_xml_node *n, struct kura_lc_rule *r,
		      struct s3_lc_fault *f)
{
	int64_t v = 0;
	if (!int_elem(n, &v, f))
		return false;
	if (named(n, "ObjectSizeGreaterThan")) {
		if (v < 0 || (uint64_t)v > KURA_LC_SIZE_MAX) {
			fault(f, S3_InvalidRequest,
			      "'ObjectSizeGreaterThan' should be between 0 "
			      "and 1099511627776000.");
			return false;
		}
		r->has_size_gt = true;
		r->size_gt = (uint64_t)v;
	} else {
		if (v < 1 || (uint64_t)v > KURA_LC_SIZE_MAX) {
			fault(f, S3_InvalidRequest,
			      "'ObjectSizeLessThan' should be between 1 "
			      "and 1099511627776000.");
			return false;
		}
		r->has_size_lt = true;
		r->size_lt = (uint64_t)v;
	}
	return true;
}

/* One condition of a Filter or of its And. */
static bool condition_read(const struct s3_xml_node *c, bool in_and,
			   struct kura_pool *pool, struct kura_lc_rule *r,
			   struct s3_lc_fault *f)
{
	if (named(c, "Prefix"))
		return prefix_read(c, pool, r, f);
	if (named(c, "Tag"))
		return tag_read(c, pool, r, f);
	if (named(c, "ObjectSizeGreaterThan") || named(c, "ObjectSizeLessThan"))
		return size_read(c, r, f);
	(void)in_and;
	return malformed(f);
}

static bool sizes_ordered(const struct kura_lc_rule *r, struct s3_lc_fault *f)
{
	if (r->has_size_gt && r->has_size_lt && r->size_lt <= r->size_gt) {
		fault(f, S3_InvalidRequest,
		      "'ObjectSizeLessThan' has to be a value greater than "
		      "'ObjectSizeGreaterThan'.");
		return false;
	}
	return true;
}

static bool and_read(const struct s3_xml_node *and, struct kura_pool *pool,
		     struct kura_lc_rule *r, struct s3_lc_fault *f)
{
	size_t n = 0;
	r->scope = KURA_LC_SCOPE_AND;
	if (count_children(and, "Prefix") > 1 ||
	    count_children(and, "ObjectSizeGreaterThan") > 1 ||
	    count_children(and, "ObjectSizeLessThan") > 1)
		return malformed(f);
	for (const struct s3_xml_node *c = and->child; c; c = c->next, n++)
		if (!condition_read(c, true, pool, r, f))
			return false;
	return n > 0 ? sizes_ordered(r, f) : malformed(f);
}

/* A Filter: empty, one condition, both sizes, or an And. */
static bool filter_read(const struct s3_xml_node *filter,
			struct kura_pool *pool, struct kura_lc_rule *r,
			struct s3_lc_fault *f)
{
	size_t n = 0, sizes = 0;
	const struct s3_xml_node *and = NULL;
	for (const struct s3_xml_node *c = filter->child; c; c = c->next) {
		n++;
		sizes += named(c, "ObjectSizeGreaterThan") ||
			 named(c, "ObjectSizeLessThan");
		if (named(c, "And"))
			and = c;
	}
	r->scope = KURA_LC_SCOPE_FILTER;
	if (n == 0)
		return true;
	if (and != NULL)
		return n == 1 ? and_read(and, pool, r, f) : malformed(f);
	/* Both size bounds may stand side by side; nothing else may. */
	if (n > 1 && !(n == 2 && sizes == 2 &&
		       count_children(filter, "ObjectSizeLessThan") == 1))
		return malformed(f);
	for (const struct s3_xml_node *c = filter->child; c; c = c->next)
		if (!condition_read(c, false, pool, r, f))
			return false;
	return sizes_ordered(r, f);
}

/* ---- actions ---- */

/* A Date at midnight UTC, as days since 1970. */
static bool date_read(const struct s3_xml_node *n, int64_t *day,
		      struct s3_lc_fault *f)
{
	int64_t secs = 0;
	const char *p = n->text;
	size_t len = n->text_len;
	if (kura_time_parse_iso8601(p, len, &secs) != KURA_OK)
		return malformed(f);
	/* A fraction of a second other than zero is not midnight. */
	for (size_t i = 20; i + 1 < len; i++) {
		if (p[i] != '0') {
			secs = 1;
			break;
		}
	}
	if (secs < 0 || secs % DAY_SECS != 0 ||
	    secs / DAY_SECS > 2932896 /* 9999-12-31 */) {
		fault(f, S3_InvalidArgument, "'Date' must be at midnight GMT");
		return false;
	}
	*day = secs / DAY_SECS;
	return true;
}

static bool expiration_read(const struct s3_xml_node *e, struct kura_lc_rule *r,
			    struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *days = one(e, "Days", &dup);
	const struct s3_xml_node *date = one(e, "Date", &dup);
	const struct s3_xml_node *mark =
		one(e, "ExpiredObjectDeleteMarker", &dup);
	size_t given = (days != NULL) + (date != NULL) + (mark != NULL);
	for (const struct s3_xml_node *c = e->child; c; c = c->next)
		if (!named(c, "Days") && !named(c, "Date") &&
		    !named(c, "ExpiredObjectDeleteMarker"))
			dup = true;
	if (dup || given != 1)
		return malformed(f);
	if (days != NULL)
		return days_elem(days, &r->exp_days,
				 "'Days' for Expiration action must be a "
				 "positive integer",
				 f);
	if (date != NULL) {
		r->has_exp_date = true;
		return date_read(date, &r->exp_date_day, f);
	}
	if (!text_is(mark, "true") && !text_is(mark, "false"))
		return malformed(f);
	r->exp_marker_given = true;
	r->exp_marker = text_is(mark, "true");
	return true;
}

static bool noncurrent_read(const struct s3_xml_node *e, bool v2,
			    struct kura_lc_rule *r, struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *days = one(e, "NoncurrentDays", &dup);
	const struct s3_xml_node *newer =
		one(e, "NewerNoncurrentVersions", &dup);
	if (dup || days == NULL)
		return malformed(f);
	if (!days_elem(days, &r->noncurrent_days,
		       "'NoncurrentDays' for NoncurrentVersionExpiration "
		       "action must be a positive integer",
		       f))
		return false;
	if (newer == NULL)
		return true;
	if (!v2) {
		fault(f, S3_InvalidRequest,
		      "NewerNoncurrentVersions element can only be used in "
		      "Lifecycle V2.");
		return false;
	}
	return days_elem(newer, &r->newer_noncurrent,
			 "'NewerNoncurrentVersions' must be a positive "
			 "integer",
			 f);
}

static bool abort_read(const struct s3_xml_node *e, struct kura_lc_rule *r,
		       struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *days = one(e, "DaysAfterInitiation", &dup);
	if (dup || days == NULL)
		return malformed(f);
	return days_elem(days, &r->abort_days,
			 "'DaysAfterInitiation' for "
			 "AbortIncompleteMultipartUpload action must be a "
			 "positive integer",
			 f);
}

/* Actions that may not be combined with tag or size conditions. */
static bool combinations_ok(const struct kura_lc_rule *r, struct s3_lc_fault *f)
{
	bool tags = r->ntags > 0, sizes = r->has_size_gt || r->has_size_lt;
	const char *msg = NULL;
	if (r->exp_marker_given && tags)
		msg = "ExpiredObjectDeleteMarker cannot be specified with "
		      "Tags.";
	else if (r->exp_marker_given && sizes)
		msg = "ExpiredObjectDeleteMarker cannot be specified with "
		      "Object Size.";
	else if (r->abort_days > 0 && tags)
		msg = "AbortIncompleteMultipartUpload cannot be specified "
		      "with Tags.";
	else if (r->abort_days > 0 && sizes)
		msg = "AbortIncompleteMultipartUpload cannot be specified "
		      "with Object Size.";
	if (msg != NULL)
		fault(f, S3_InvalidRequest, msg);
	return msg == NULL;
}

static bool actions_read(const struct s3_xml_node *rule, bool v2,
			 struct kura_lc_rule *r, bool *transition,
			 struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *exp = one(rule, "Expiration", &dup);
	const struct s3_xml_node *nc =
		one(rule, "NoncurrentVersionExpiration", &dup);
	const struct s3_xml_node *ab =
		one(rule, "AbortIncompleteMultipartUpload", &dup);
	bool tr = s3_xml_child(rule, "Transition") != NULL ||
		  s3_xml_child(rule, "NoncurrentVersionTransition") != NULL;
	if (dup)
		return malformed(f);
	if (exp == NULL && nc == NULL && ab == NULL && !tr) {
		fault(f, S3_InvalidRequest,
		      "At least one action needs to be specified in a rule");
		return false;
	}
	*transition |= tr;
	return (exp == NULL || expiration_read(exp, r, f)) &&
	       (nc == NULL || noncurrent_read(nc, v2, r, f)) &&
	       (ab == NULL || abort_read(ab, r, f)) && combinations_ok(r, f);
}

/* ---- rules ---- */

static const char *const rule_children[] = {
	"ID",
	"Status",
	"Prefix",
	"Filter",
	"Expiration",
	"NoncurrentVersionExpiration",
	"AbortIncompleteMultipartUpload",
	"Transition",
	"NoncurrentVersionTransition",
};

static bool known_child(const struct s3_xml_node *c)
{
	for (size_t i = 0; i < sizeof(rule_children) / sizeof(*rule_children);
	     i++)
		if (named(c, rule_children[i]))
			return true;
	return false;
}

static bool scope_read(const struct s3_xml_node *rule, bool v2,
		       struct kura_pool *pool, struct kura_lc_rule *r,
		       struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *prefix = one(rule, "Prefix", &dup);
	const struct s3_xml_node *filter = one(rule, "Filter", &dup);
	if (dup || (prefix == NULL && filter == NULL))
		return malformed(f);
	if (prefix != NULL && v2) {
		fault(f, S3_InvalidRequest,
		      "Base level prefix cannot be used in Lifecycle V2, "
		      "prefixes are only supported in the Filter.");
		return false;
	}
	if (filter != NULL && !v2) {
		fault(f, S3_InvalidRequest,
		      "Filter element can only be used in Lifecycle V2.");
		return false;
	}
	if (prefix != NULL) {
		r->scope = KURA_LC_SCOPE_V1_PREFIX;
		return prefix_read(prefix, pool, r, f);
	}
	return filter_read(filter, pool, r, f);
}

static bool rule_read(const struct s3_xml_node *rule, bool v2,
		      struct kura_pool *pool, struct kura_lc_rule *r,
		      bool *transition, struct s3_lc_fault *f)
{
	bool dup = false;
	const struct s3_xml_node *status = one(rule, "Status", &dup);
	for (const struct s3_xml_node *c = rule->child; c; c = c->next)
		if (!known_child(c))
			dup = true;
	if (dup || status == NULL ||
	    !(text_is(status, "Enabled") || text_is(status, "Disabled")))
		return malformed(f);
	r->enabled = text_is(status, "Enabled");
	return scope_read(rule, v2, pool, r, f) &&
	       actions_read(rule, v2, r, transition, f);
}

/* Every given ID: at most 255 characters, and unique. */
static bool ids_read(const struct s3_xml_node *root, struct kura_pool *pool,
		     struct kura_lc_rule *rules, struct s3_lc_fault *f)
{
	size_t i = 0;
	for (const struct s3_xml_node *c = root->child; c; c = c->next) {
		bool dup = false;
		const struct s3_xml_node *id = one(c, "ID", &dup);
		if (dup)
			return malformed(f);
		if (id != NULL && id->text_len > 0) {
			if (utf8_chars(id->text, id->text_len) >
			    KURA_LC_ID_MAX) {
				fault(f, S3_InvalidArgument,
				      "ID length should not exceed allowed "
				      "limit of 255");
				return false;
			}
			rules[i].id = text_dup(pool, id);
			for (size_t j = 0; j < i; j++) {
				if (rules[j].id &&
				    strcmp(rules[j].id, rules[i].id) == 0) {
					fault(f, S3_InvalidArgument,
					      "Rule ID must be unique. Found "
					      "same ID for more than one rule");
					return false;
				}
			}
		}
		i++;
	}
	return true;
}

static bool id_taken(const struct kura_lc_config *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->rules[i].id != NULL && strcmp(c->rules[i].id, id) == 0)
			return true;
	return false;
}

/* A rule given no ID gets the lowest free "rule-N" (S3 makes one up). */
static void ids_fill(struct kura_lc_config *c, struct kura_pool *pool)
{
	unsigned next = 1;
	for (size_t i = 0; i < c->n; i++) {
		char id[32];
		if (c->rules[i].id != NULL)
			continue;
		do
			snprintf(id, sizeof(id), "rule-%u", next++);
		while (id_taken(c, id));
		c->rules[i].id = kura_pstrdup(pool, id);
	}
}

/* Whether a takes the action kind k (0 Expiration, 1 Noncurrent..., 2
 * Abort...). */
static bool takes(const struct kura_lc_rule *r, int k)
{
	return k == 0 ?
		       (r->exp_days || r->has_exp_date || r->exp_marker_given) :
	       k == 1 ? r->noncurrent_days > 0 :
			r->abort_days > 0;
}

/* V1: no two rules whose prefixes overlap may take the same kind of
 * action (S3's rule; V2 filters may overlap). */
static bool overlaps_ok(const struct kura_lc_config *c, struct s3_lc_fault *f)
{
	static const char *const kinds[] = { "Expiration",
					     "NoncurrentVersionExpiration",
					     "AbortIncompleteMultipartUpload" };
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < c->n; i++) {
			const struct kura_lc_rule *a = &c->rules[i];
			for (size_t j = i + 1; takes(a, k) && j < c->n; j++) {
				const struct kura_lc_rule *b = &c->rules[j];
				size_t la = strlen(a->prefix),
				       lb = strlen(b->prefix);
				if (!takes(b, k) ||
				    strncmp(a->prefix, b->prefix,
					    la < lb ? la : lb) != 0)
					continue;
				char msg[sizeof(f->msg)];
				snprintf(msg, sizeof(msg),
					 "Found overlapping prefixes '%.*s' "
					 "and '%.*s' for same action type "
					 "'%s'",
					 80, la < lb ? a->prefix : b->prefix,
					 80, la < lb ? b->prefix : a->prefix,
					 kinds[k]);
				fault(f, S3_InvalidRequest, msg);
				return false;
			}
		}
	}
	return true;
}

bool s3_lc_from_xml(const struct s3_xml_node *root, struct kura_pool *pool,
		    struct kura_lc_config *out, struct s3_lc_fault *f)
{
	size_t n = count_children(root, "Rule");
	bool transition = false, v2;
	struct kura_lc_config c = { 0 };
	f->set = false;
	f->msg[0] = '\0';
	for (const struct s3_xml_node *x = root->child; x; x = x->next)
		if (!named(x, "Rule"))
			return malformed(f);
	if (n == 0 || n > KURA_LC_RULES_MAX) {
		fault(f, n == 0 ? S3_MalformedXML : S3_InvalidRequest,
		      n == 0 ? NULL :
			       "The number of lifecycle rules must not exceed "
			       "the allowed limit of 1000 rules.");
		return false;
	}
	c.rules = kura_palloc(pool, n * sizeof(*c.rules));
	if (c.rules == NULL) {
		fault(f, S3_InternalError, NULL);
		return false;
	}
	memset(c.rules, 0, n * sizeof(*c.rules));
	c.n = n;
	if (!ids_read(root, pool, c.rules, f))
		return false;
	v2 = s3_xml_child(root->child, "Filter") != NULL;
	size_t i = 0;
	for (const struct s3_xml_node *x = root->child; x; x = x->next, i++)
		if (!rule_read(x, v2, pool, &c.rules[i], &transition, f))
			return false;
	if (!v2 && !overlaps_ok(&c, f))
		return false;
	if (transition) {
		fault(f, S3_NotImplemented,
		      "Lifecycle transitions are not implemented by this "
		      "server (until placement classes exist).");
		return false;
	}
	ids_fill(&c, pool);
	*out = c;
	return true;
}

/* ---- writing the document ---- */

static void filter_write(struct kura_buf *b, const struct kura_lc_rule *r)
{
	if (r->scope == KURA_LC_SCOPE_V1_PREFIX) {
		s3_xml_elem_str(b, "Prefix", r->prefix ? r->prefix : "");
		return;
	}
	s3_xml_open(b, "Filter");
	if (r->scope == KURA_LC_SCOPE_AND)
		s3_xml_open(b, "And");
	if (r->prefix != NULL)
		s3_xml_elem_str(b, "Prefix", r->prefix);
	for (size_t i = 0; i < r->ntags; i++) {
		s3_xml_open(b, "Tag");
		s3_xml_elem_str(b, "Key", r->tags[i].key);
		s3_xml_elem_str(b, "Value", r->tags[i].value);
		s3_xml_close(b, "Tag");
	}
	if (r->has_size_gt)
		s3_xml_elem_u64(b, "ObjectSizeGreaterThan", r->size_gt);
	if (r->has_size_lt)
		s3_xml_elem_u64(b, "ObjectSizeLessThan", r->size_lt);
	if (r->scope == KURA_LC_SCOPE_AND)
		s3_xml_close(b, "And");
	s3_xml_close(b, "Filter");
}

static void expiration_write(struct kura_buf *b, const struct kura_lc_rule *r)
{
	if (!r->exp_days && !r->has_exp_date && !r->exp_marker_given)
		return;
	s3_xml_open(b, "Expiration");
	if (r->exp_days > 0) {
		s3_xml_elem_u64(b, "Days", r->exp_days);
	} else if (r->has_exp_date) {
		char iso[KURA_TIME_ISO8601_LEN];
		kura_time_iso8601(r->exp_date_day * DAY_SECS * 1000, iso);
		s3_xml_elem_str(b, "Date", iso);
	} else {
		s3_xml_elem_str(b, "ExpiredObjectDeleteMarker",
				r->exp_marker ? "true" : "false");
	}
	s3_xml_close(b, "Expiration");
}

void s3_lc_to_xml(struct kura_buf *b, const struct kura_lc_config *c)
{
	s3_xml_root(b, "LifecycleConfiguration");
	for (size_t i = 0; i < c->n; i++) {
		const struct kura_lc_rule *r = &c->rules[i];
		s3_xml_open(b, "Rule");
		s3_xml_elem_str(b, "ID", r->id);
		filter_write(b, r);
		s3_xml_elem_str(b, "Status",
				r->enabled ? "Enabled" : "Disabled");
		expiration_write(b, r);
		if (r->noncurrent_days > 0) {
			s3_xml_open(b, "NoncurrentVersionExpiration");
			s3_xml_elem_u64(b, "NoncurrentDays",
					r->noncurrent_days);
			if (r->newer_noncurrent > 0)
				s3_xml_elem_u64(b, "NewerNoncurrentVersions",
						r->newer_noncurrent);
			s3_xml_close(b, "NoncurrentVersionExpiration");
		}
		if (r->abort_days > 0) {
			s3_xml_open(b, "AbortIncompleteMultipartUpload");
			s3_xml_elem_u64(b, "DaysAfterInitiation",
					r->abort_days);
			s3_xml_close(b, "AbortIncompleteMultipartUpload");
		}
		s3_xml_close(b, "Rule");
	}
	s3_xml_close(b, "LifecycleConfiguration");
}

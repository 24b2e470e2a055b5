/*
 * lifecycle_rules.c — the lifecycle configuration model (kura/lifecycle.h):
 * its canonical JSON, read back with every limit checked again, and the
 * matching and date arithmetic the job and the x-amz-expiration header
 * share, so both always agree on when a version expires.
 *
 * The stored form is compact JSON with a fixed key order:
 *   {"rules":[{"id":..,"on":true,"scope":0,"prefix":..,"tags":[[k,v]],
 *              "gt":n,"lt":n,"exp":{"days":n}|{"date":day}|{"marker":b},
 *              "nc":{"days":n,"newer":n},"abort":n}]}
 * with absent conditions and actions left out.
 *
 * Threading: pure functions.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/lifecycle.h"
#include "kura/banned.h"

/* ---- writing ---- */

static int set_new(json_t *o, const char *k, json_t *v)
{
	return v == NULL ? -1 : json_object_set_new(o, k, v);
}

static json_t *filter_json(const struct kura_lc_rule *r, json_t *o)
{
	int bad = 0;
	if (r->prefix != NULL)
		bad |= set_new(o, "prefix", json_string(r->prefix));
	if (r->ntags > 0) {
		json_t *tags = json_array();
		for (size_t i = 0; tags != NULL && i < r->ntags; i++) {
			json_t *kv = json_pack("[ss]", r->tags[i].key,
					       r->tags[i].value);
			if (kv == NULL || json_array_append_new(tags, kv) != 0)
				bad = -1;
		}
		bad |= set_new(o, "tags", tags);
	}
	if (r->has_size_gt)
		bad |= set_new(o, "gt", json_integer((json_int_t)r->size_gt));
	if (r->has_size_lt)
		bad |= set_new(o, "lt", json_integer((json_int_t)r->size_lt));
	return bad ? NULL : o;
}

static json_t *actions_json(const struct kura_lc_rule *r, json_t *o)
{
	int bad = 0;
	if (r->exp_days > 0)
		bad |= set_new(o, "exp",
			       json_pack("{sI}", "days",
					 (json_int_t)r->exp_days));
	else if (r->has_exp_date)
		bad |= set_new(o, "exp",
			       json_pack("{sI}", "date",
					 (json_int_t)r->exp_date_day));
	else if (r->exp_marker_given)
		bad |= set_new(o, "exp",
			       json_pack("{sb}", "marker", r->exp_marker));
	if (r->noncurrent_days > 0)
		bad |= set_new(o, "nc",
			       json_pack("{sIsI}", "days",
					 (json_int_t)r->noncurrent_days,
					 "newer",
					 (json_int_t)r->newer_noncurrent));
	if (r->abort_days > 0)
		bad |= set_new(o, "abort", json_integer(r->abort_days));
	return bad ? NULL : o;
}

static json_t *rule_json(const struct kura_lc_rule *r)
{
	json_t *o = json_pack("{sssbsi}", "id", r->id, "on", r->enabled,
			      "scope", (int)r->scope);
	if (o == NULL || filter_json(r, o) == NULL ||
	    actions_json(r, o) == NULL) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *kura_lc_to_json(const struct kura_lc_config *c)
{
	json_t *rules = json_array();
	char *out = NULL;
	for (size_t i = 0; rules != NULL && i < c->n; i++) {
		json_t *r = rule_json(&c->rules[i]);
		if (r == NULL || json_array_append_new(rules, r) != 0)
			goto out;
	}
	json_t *doc = json_pack("{so}", "rules", rules);
	rules = NULL; /* doc owns it, or json_pack freed it */
	if (doc != NULL)
		out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
out:
	json_decref(rules);
	return out;
}

/* ---- reading ---- */

static bool get_u64(json_t *o, const char *k, uint64_t max, uint64_t *v,
		    bool *present)
{
	json_t *j = json_object_get(o, k);
	*present = j != NULL;
	if (j == NULL)
		return true;
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    (uint64_t)json_integer_value(j) > max)
		return false;
	*v = (uint64_t)json_integer_value(j);
	return true;
}

static const char *pool_str(struct kura_pool *pool, json_t *j, size_t max)
{
	if (!json_is_string(j) || json_string_length(j) > max ||
	    strlen(json_string_value(j)) != json_string_length(j))
		return NULL;
	return kura_pstrndup(pool, json_string_value(j), json_string_length(j));
}

static bool tags_read(json_t *tags, struct kura_pool *pool,
		      struct kura_lc_rule *r)
{
	if (tags == NULL)
		return true;
	if (!json_is_array(tags) || json_array_size(tags) == 0 ||
	    json_array_size(tags) > KURA_LC_TAGS_MAX)
		return false;
	for (size_t i = 0; i < json_array_size(tags); i++) {
		json_t *kv = json_array_get(tags, i);
		if (!json_is_array(kv) || json_array_size(kv) != 2)
			return false;
		/* Bytes: a character is at most 4 of them. */
		r->tags[i].key = pool_str(pool, json_array_get(kv, 0),
					  4 * KURA_LC_TAG_KEY_MAX);
		r->tags[i].value = pool_str(pool, json_array_get(kv, 1),
					    4 * KURA_LC_TAG_VALUE_MAX);
		if (r->tags[i].key == NULL || r->tags[i].value == NULL)
			return false;
	}
	r->ntags = json_array_size(tags);
	return true;
}

static bool filter_read(json_t *o, struct kura_pool *pool,
			struct kura_lc_rule *r)
{
	json_t *prefix = json_object_get(o, "prefix");
	uint64_t v = 0;
	if (prefix != NULL) {
		r->prefix = pool_str(pool, prefix, KURA_LC_PREFIX_MAX);
		if (r->prefix == NULL)
			return false;
	}
	if (!tags_read(json_object_get(o, "tags"), pool, r))
		return false;
	if (!get_u64(o, "gt", KURA_LC_SIZE_MAX, &v, &r->has_size_gt))
		return false;
	r->size_gt = v;
	if (!get_u64(o, "lt", KURA_LC_SIZE_MAX, &v, &r->has_size_lt))
		return false;
	r->size_lt = v;
	return true;
}

static bool expiration_read(json_t *exp, struct kura_lc_rule *r)
{
	uint64_t v = 0;
	bool days = false, date = false;
	json_t *marker = json_object_get(exp, "marker");
	if (!json_is_object(exp) || json_object_size(exp) != 1)
		return false;
	if (!get_u64(exp, "days", KURA_LC_DAYS_MAX, &v, &days))
		return false;
	if (days) {
		r->exp_days = (uint32_t)v;
		return v > 0;
	}
	/* Days since 1970 up to the year 9999. */
	if (!get_u64(exp, "date", 2932896, &v, &date))
		return false;
	if (date) {
		r->has_exp_date = true;
		r->exp_date_day = (int64_t)v;
		return true;
	}
	if (!json_is_boolean(marker))
		return false;
	r->exp_marker_given = true;
	r->exp_marker = json_is_true(marker);
	return true;
}

static bool actions_read(json_t *o, struct kura_lc_rule *r)
{
	json_t *exp = json_object_get(o, "exp"), *nc = json_object_get(o, "nc");
	uint64_t v = 0;
	bool present = false;
	if (exp != NULL && !expiration_read(exp, r))
		return false;
	if (nc != NULL) {
		if (!json_is_object(nc) ||
		    !get_u64(nc, "days", KURA_LC_DAYS_MAX, &v, &present) ||
		    !present || v == 0)
			return false;
		r->noncurrent_days = (uint32_t)v;
		if (!get_u64(nc, "newer", KURA_LC_DAYS_MAX, &v, &present))
			return false;
		r->newer_noncurrent = present ? (uint32_t)v : 0;
	}
	if (!get_u64(o, "abort", KURA_LC_DAYS_MAX, &v, &present) ||
	    (present && v == 0))
		return false;
	r->abort_days = present ? (uint32_t)v : 0;
	return true;
}

static bool rule_read(json_t *o, struct kura_pool *pool, struct kura_lc_rule *r)
{
	json_t *on = json_object_get(o, "on");
	uint64_t scope = 0;
	bool present = false;
	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) || !json_is_boolean(on))
		return false;
	/* An ID is at most 255 characters, up to 4 bytes each. */
	r->id = pool_str(pool, json_object_get(o, "id"), 4 * KURA_LC_ID_MAX);
	if (r->id == NULL || r->id[0] == '\0')
		return false;
	r->enabled = json_is_true(on);
	if (!get_u64(o, "scope", KURA_LC_SCOPE_V1_PREFIX, &scope, &present) ||
	    !present)
		return false;
	r->scope = (enum kura_lc_scope)scope;
	return filter_read(o, pool, r) && actions_read(o, r);
}

enum kura_err kura_lc_from_json(const char *json, size_t len,
				struct kura_pool *pool,
				struct kura_lc_config *out,
				struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	json_t *doc = NULL, *rules;
	struct kura_lc_rule *rs = NULL;
	if (len > KURA_LC_JSON_MAX)
		return kura_fail(err, KURA_EINVAL, "lifecycle too large");
	doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	rules = json_object_get(doc, "rules");
	if (!json_is_array(rules) || json_array_size(rules) == 0 ||
	    json_array_size(rules) > KURA_LC_RULES_MAX) {
		rc = kura_fail(err, KURA_EINVAL, "lifecycle: bad rule list");
		goto out;
	}
	rs = kura_palloc(pool, json_array_size(rules) * sizeof(*rs));
	if (rs == NULL) {
		rc = kura_fail(err, KURA_ENOMEM, "lifecycle rules");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(rules); i++) {
		if (!rule_read(json_array_get(rules, i), pool, &rs[i])) {
			rc = kura_fail(err, KURA_EINVAL,
				       "lifecycle: bad rule %zu", i + 1);
			goto out;
		}
	}
	out->rules = rs;
	out->n = json_array_size(rules);
out:
	json_decref(doc);
	return rc;
}

/* ---- matching ---- */

static bool has_tag(json_t *tags, const struct kura_lc_tag *t)
{
	const char *v = json_string_value(json_object_get(tags, t->key));
	return v != NULL && strcmp(v, t->value) == 0;
}

bool kura_lc_matches(const struct kura_lc_rule *r, const char *key,
		     size_t key_len, uint64_t size, const char *tags_json)
{
	size_t plen = r->prefix ? strlen(r->prefix) : 0;
	if (plen > key_len || (plen > 0 && memcmp(key, r->prefix, plen) != 0))
		return false;
	if (r->has_size_gt && !(size > r->size_gt))
		return false;
	if (r->has_size_lt && !(size < r->size_lt))
		return false;
	if (r->ntags == 0)
		return true;
	json_t *tags = tags_json ? json_loads(tags_json, 0, NULL) : NULL;
	bool all = tags != NULL;
	for (size_t i = 0; all && i < r->ntags; i++)
		all = has_tag(tags, &r->tags[i]);
	json_decref(tags);
	return all;
}

bool kura_lc_prefix_only(const struct kura_lc_rule *r)
{
	return r->ntags == 0 && !r->has_size_gt && !r->has_size_lt;
}

int64_t kura_lc_day_ceil(int64_t ms, int64_t day_ms)
{
	if (day_ms <= 0 || ms <= 0)
		return ms;
	int64_t q = ms / day_ms + (ms % day_ms != 0);
	return q > INT64_MAX / day_ms ? INT64_MAX : q * day_ms;
}

int64_t kura_lc_expiry_ms(const struct kura_lc_rule *r, int64_t mtime_ms,
			  int64_t day_ms)
{
	if (r->has_exp_date)
		return r->exp_date_day * 86400000ll;
	if (r->exp_days == 0 || day_ms <= 0)
		return INT64_MAX;
	if ((int64_t)r->exp_days > (INT64_MAX - mtime_ms) / day_ms)
		return INT64_MAX;
	return kura_lc_day_ceil(mtime_ms + (int64_t)r->exp_days * day_ms,
				day_ms);
}

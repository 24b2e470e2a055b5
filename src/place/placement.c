/*
 * placement.c — backends with labels and placement policies read from the
 * configuration, and the rules they must keep (placement.h):
 *   - seed 001: a copy outside [server] home_jurisdiction only when the
 *     keys live in an external provider (pkcs11, kmip) whose [keys]
 *     jurisdiction is the home one; the data cipher (AES-256-GCM) is
 *     CRYPTREC-listed, always;
 *   - a policy's jurisdictions: its allowed set (default: home only);
 *   - foreign = forbid: no foreign backend at all;
 *   - dedicated backends: only their tenant's buckets.
 * Everything is checked at load, before anything is opened, so `kura
 * check` and start-up refuse the same configurations with the same words.
 */
#include <stdlib.h>
#include <string.h>

#include "kura/placement.h"
#include "place_int.h"
#include "kura/banned.h"

#define IMPLICIT_BACKEND "local"
#define IMPLICIT_POLICY "default"

size_t kura_placement_nbackends(const struct kura_placement *p)
{
	return p->nbackends;
}

const struct kura_backend_desc *
kura_placement_backend(const struct kura_placement *p, size_t i)
{
	return i < p->nbackends ? &p->backends[i].desc : NULL;
}

struct kura_store *kura_placement_backend_store(const struct kura_placement *p,
						size_t i)
{
	return i < p->nbackends ? p->backends[i].store : NULL;
}

int kura_placement_backend_index(const struct kura_placement *p,
				 const char *name)
{
	for (size_t i = 0; i < p->nbackends; i++)
		if (strcmp(p->backends[i].desc.name, name) == 0)
			return (int)i;
	return -1;
}

size_t kura_placement_npolicies(const struct kura_placement *p)
{
	return p->npolicies;
}

const struct kura_policy *
kura_placement_policy_at(const struct kura_placement *p, size_t i)
{
	return i < p->npolicies ? &p->policies[i].policy : NULL;
}

const struct kura_policy *kura_placement_policy(const struct kura_placement *p,
						const char *name)
{
	if (name == NULL || name[0] == '\0')
		return &p->policies[p->default_policy].policy;
	for (size_t i = 0; i < p->npolicies; i++)
		if (strcmp(p->policies[i].policy.name, name) == 0)
			return &p->policies[i].policy;
	return NULL;
}

/* ---- reading the configuration ---- */

/* Two capital letters (ISO 3166-1 alpha-2 in form). */
static bool jurisdiction_ok(const char *j)
{
	return j != NULL && strlen(j) == 2 && j[0] >= 'A' && j[0] <= 'Z' &&
	       j[1] >= 'A' && j[1] <= 'Z';
}

static enum kura_err copy_label(char *dst, size_t cap, const char *v,
				const char *section, const char *key,
				struct kura_error *err)
{
	if (v == NULL)
		v = "";
	if (strlen(v) >= cap)
		return kura_fail(err, KURA_ECONFIG, "[%s] %s: too long",
				 section, key);
	snprintf(dst, cap, "%s", v);
	return KURA_OK;
}

static enum kura_err implicit_backend(struct kura_placement *p,
				      const struct kura_config *cfg,
				      struct kura_error *err)
{
	struct place_backend *b = &p->backends[p->nbackends++];
	struct kura_backend_desc *d = &b->desc;
	const char *j = kura_config_get(cfg, "storage", "jurisdiction");
	snprintf(d->name, sizeof(d->name), IMPLICIT_BACKEND);
	snprintf(b->section, sizeof(b->section), "storage");
	snprintf(d->type, sizeof(d->type), "%s",
		 kura_config_get(cfg, "storage", "backend"));
	if (j == NULL)
		j = p->home;
	if (!jurisdiction_ok(j))
		return kura_fail(err, KURA_ECONFIG,
				 "[storage] jurisdiction: '%s' is not an "
				 "ISO 3166-1 alpha-2 code (two capitals)",
				 j);
	snprintf(d->jurisdiction, sizeof(d->jurisdiction), "%s", j);
	enum kura_err rc = copy_label(d->site, sizeof(d->site),
				      kura_config_get(cfg, "storage", "site"),
				      "storage", "site", err);
	if (rc == KURA_OK)
		rc = copy_label(d->region, sizeof(d->region),
				kura_config_get(cfg, "storage", "region"),
				"storage", "region", err);
	const char *path = kura_config_get(cfg, "storage", "path");
	if (rc == KURA_OK && path != NULL)
		rc = copy_label(d->location, sizeof(d->location), path,
				"storage", "path", err);
	else if (rc == KURA_OK)
		snprintf(d->location, sizeof(d->location), "%.400s/blobs",
			 kura_config_get(cfg, "server", "data_dir"));
	return rc;
}

static enum kura_err declared_backend(struct kura_placement *p,
				      const struct kura_config *cfg,
				      const char *name, struct kura_error *err)
{
	if (strcmp(name, IMPLICIT_BACKEND) == 0)
		return kura_fail(
			err, KURA_ECONFIG,
			"[backend.local]: the name 'local' is the "
			"implicit backend ([storage]); choose another");
	if (p->nbackends == KURA_BACKENDS_MAX)
		return kura_fail(err, KURA_ECONFIG,
				 "[backend.%s]: more than %d backends", name,
				 KURA_BACKENDS_MAX - 1);
	struct place_backend *b = &p->backends[p->nbackends];
	struct kura_backend_desc *d = &b->desc;
	snprintf(b->section, sizeof(b->section), "backend.%s", name);
	snprintf(d->name, sizeof(d->name), "%s", name);
	const char *sec = b->section;
	enum kura_err rc = kura_store_check_section(cfg, sec, err);
	if (rc != KURA_OK)
		return rc;
	snprintf(d->type, sizeof(d->type), "%s",
		 kura_config_get(cfg, sec, "type"));
	const char *j = kura_config_get(cfg, sec, "jurisdiction");
	if (j == NULL)
		return kura_fail(err, KURA_ECONFIG,
				 "[%s] jurisdiction: required (ISO 3166-1 "
				 "alpha-2, e.g. JP)",
				 sec);
	if (!jurisdiction_ok(j))
		return kura_fail(err, KURA_ECONFIG,
				 "[%s] jurisdiction: '%s' is not an ISO 3166-1 "
				 "alpha-2 code (two capitals)",
				 sec, j);
	snprintf(d->jurisdiction, sizeof(d->jurisdiction), "%s", j);
	static const struct {
		const char *key;
		size_t off, cap;
	} labels[] = {
		{ "site", offsetof(struct kura_backend_desc, site),
		  KURA_LABEL_MAX },
		{ "region", offsetof(struct kura_backend_desc, region),
		  KURA_LABEL_MAX },
		{ "dedicated_to",
		  offsetof(struct kura_backend_desc, dedicated_to),
		  KURA_TENANT_NAME_MAX },
		{ "prefix", offsetof(struct kura_backend_desc, remote_prefix),
		  KURA_LABEL_MAX },
	};
	for (size_t i = 0; rc == KURA_OK && i < 4; i++)
		rc = copy_label((char *)d + labels[i].off, labels[i].cap,
				kura_config_get(cfg, sec, labels[i].key), sec,
				labels[i].key, err);
	if (rc != KURA_OK)
		return rc;
	if (strcmp(d->type, "s3") == 0)
		snprintf(d->location, sizeof(d->location), "%.200s/%.100s/%s",
			 kura_config_get(cfg, sec, "endpoint") ?: "",
			 kura_config_get(cfg, sec, "bucket") ?: "",
			 kura_config_get(cfg, sec, "prefix") ?: "");
	else
		snprintf(d->location, sizeof(d->location), "%.500s",
			 kura_config_get(cfg, sec, "path") ?: "");
	p->nbackends++;
	return KURA_OK;
}

/* Parse "a,b,c" into backend indexes. */
static enum kura_err backend_list(const struct kura_placement *p,
				  const char *sec, const char *key,
				  const char *text, size_t *out, size_t *n,
				  struct kura_error *err)
{
	char buf[512];
	*n = 0;
	if (text == NULL)
		return KURA_OK;
	if (strlen(text) >= sizeof(buf))
		return kura_fail(err, KURA_ECONFIG, "[%s] %s: too long", sec,
				 key);
	snprintf(buf, sizeof(buf), "%s", text);
	char *save = NULL;
	for (char *t = strtok_r(buf, ", ", &save); t != NULL;
	     t = strtok_r(NULL, ", ", &save)) {
		int i = kura_placement_backend_index(p, t);
		if (i < 0)
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] %s: no backend '%s'", sec, key,
					 t);
		if (*n == KURA_POLICY_BACKENDS)
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] %s: more than %d backends", sec,
					 key, KURA_POLICY_BACKENDS);
		out[(*n)++] = (size_t)i;
	}
	return KURA_OK;
}

/* The allowed set, checked and normalised to "JP,US". */
static enum kura_err jurisdiction_set(const char *sec, const char *text,
				      const char *home, char *out, size_t cap,
				      struct kura_error *err)
{
	char buf[128];
	size_t used = 0;
	if (text == NULL)
		text = home;
	if (strlen(text) >= sizeof(buf))
		return kura_fail(err, KURA_ECONFIG,
				 "[%s] jurisdictions: too long", sec);
	snprintf(buf, sizeof(buf), "%s", text);
	out[0] = '\0';
	char *save = NULL;
	for (char *t = strtok_r(buf, ", ", &save); t != NULL;
	     t = strtok_r(NULL, ", ", &save)) {
		if (!jurisdiction_ok(t))
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] jurisdictions: '%s' is not an "
					 "ISO 3166-1 alpha-2 code",
					 sec, t);
		if (used + 4 >= cap)
			return kura_fail(err, KURA_ECONFIG,
					 "[%s] jurisdictions: too many", sec);
		used += (size_t)snprintf(out + used, cap - used, "%s%s",
					 used ? "," : "", t);
	}
	return KURA_OK;
}

static bool in_set(const char *set, const char *j)
{
	for (const char *s = set; *s;) {
		if (strncmp(s, j, 2) == 0)
			return true;
		s += 2;
		if (*s == ',')
			s++;
	}
	return false;
}

/* Every rule a policy must keep, for one of its backends. */
static enum kura_err check_backend_rules(const struct kura_placement *p,
					 const struct kura_policy *pol,
					 const struct kura_backend_desc *d,
					 struct kura_error *err)
{
	bool foreign = strcmp(d->jurisdiction, p->home) != 0;
	if (!in_set(pol->jurisdictions, d->jurisdiction))
		return kura_fail(err, KURA_ECONFIG,
				 "placement '%s': backend '%s' (%s) is outside "
				 "the policy's jurisdictions %s",
				 pol->name, d->name, d->jurisdiction,
				 pol->jurisdictions);
	if (!foreign)
		return KURA_OK;
	if (pol->forbid_foreign)
		return kura_fail(err, KURA_ECONFIG,
				 "placement '%s': backend '%s' (%s) is outside "
				 "home jurisdiction %s and the policy forbids "
				 "foreign copies (foreign = forbid)",
				 pol->name, d->name, d->jurisdiction, p->home);
	if (!p->keys_external)
		return kura_fail(
			err, KURA_ECONFIG,
			"placement '%s': backend '%s' (%s) is outside "
			"home jurisdiction %s: refused by the seed-001 "
			"rule (foreign copies need keys in an external "
			"PKCS#11/KMIP provider in %s; [keys] provider "
			"is %s)",
			pol->name, d->name, d->jurisdiction, p->home, p->home,
			p->keys_provider);
	if (strcmp(p->keys_jurisdiction, p->home) != 0)
		return kura_fail(
			err, KURA_ECONFIG,
			"placement '%s': backend '%s' (%s) is outside "
			"home jurisdiction %s: refused by the seed-001 "
			"rule (foreign copies need the key provider in "
			"%s; [keys] jurisdiction is %s)",
			pol->name, d->name, d->jurisdiction, p->home, p->home,
			p->keys_jurisdiction[0] ? p->keys_jurisdiction :
						  "unset");
	return KURA_OK;
}

/* Seed 001 for a backend no policy names yet: a copy can reach any
 * declared backend (a replica row names it), so a foreign one needs the
 * keys at home in an external provider whether a policy uses it or not. */
static enum kura_err check_foreign_backend(const struct kura_placement *p,
					   const struct kura_backend_desc *d,
					   struct kura_error *err)
{
	if (strcmp(d->jurisdiction, p->home) == 0 ||
	    (p->keys_external && strcmp(p->keys_jurisdiction, p->home) == 0))
		return KURA_OK;
	return kura_fail(
		err, KURA_ECONFIG,
		"backend '%s' (%s) is outside home jurisdiction %s: "
		"refused by the seed-001 rule (a foreign backend needs "
		"the keys in an external PKCS#11/KMIP provider in %s; "
		"[keys] provider is %s, jurisdiction %s)",
		d->name, d->jurisdiction, p->home, p->home, p->keys_provider,
		p->keys_jurisdiction[0] ? p->keys_jurisdiction : "unset");
}

static enum kura_err check_policy(const struct kura_placement *p,
				  const struct kura_policy *pol,
				  struct kura_error *err)
{
	enum kura_err rc = KURA_OK;
	size_t n = kura_policy_nbackends(pol);
	for (size_t i = 0; rc == KURA_OK && i < n; i++)
		rc = check_backend_rules(
			p, pol, &p->backends[kura_policy_backend(pol, i)].desc,
			err);
	/* A backend twice in one policy would be one copy counted as two. */
	for (size_t i = 0; rc == KURA_OK && i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (kura_policy_backend(pol, i) ==
			    kura_policy_backend(pol, j))
				return kura_fail(
					err, KURA_ECONFIG,
					"placement '%s': backend '%s' is "
					"named twice",
					pol->name,
					p->backends[kura_policy_backend(pol, i)]
						.desc.name);
	return rc;
}

static enum kura_err declared_policy(struct kura_placement *p,
				     const struct kura_config *cfg,
				     const char *name, struct kura_error *err)
{
	char sec[KURA_CONFIG_SECTION_MAX];
	if (strcmp(name, IMPLICIT_POLICY) == 0)
		return kura_fail(
			err, KURA_ECONFIG,
			"[placement.default]: 'default' is the implicit "
			"policy (sync = local); choose another name");
	if (p->npolicies == KURA_POLICIES_MAX)
		return kura_fail(err, KURA_ECONFIG,
				 "[placement.%s]: more than %d policies", name,
				 KURA_POLICIES_MAX - 1);
	snprintf(sec, sizeof(sec), "placement.%s", name);
	struct kura_policy *pol = &p->policies[p->npolicies].policy;
	snprintf(pol->name, sizeof(pol->name), "%s", name);
	enum kura_err rc = backend_list(p, sec, "sync",
					kura_config_get(cfg, sec, "sync"),
					pol->sync, &pol->nsync, err);
	if (rc == KURA_OK)
		rc = backend_list(p, sec, "async",
				  kura_config_get(cfg, sec, "async"),
				  pol->async, &pol->nasync, err);
	if (rc == KURA_OK && pol->nsync == 0)
		rc = kura_fail(err, KURA_ECONFIG,
			       "[%s] sync: required (at least one backend "
			       "holds a copy before a write is acknowledged)",
			       sec);
	if (rc == KURA_OK)
		rc = jurisdiction_set(
			sec, kura_config_get(cfg, sec, "jurisdictions"),
			p->home, pol->jurisdictions, sizeof(pol->jurisdictions),
			err);
	const char *foreign = kura_config_get(cfg, sec, "foreign");
	if (rc == KURA_OK && strcmp(foreign, "allow") != 0 &&
	    strcmp(foreign, "forbid") != 0)
		rc = kura_fail(err, KURA_ECONFIG,
			       "[%s] foreign: '%s' is neither allow nor forbid",
			       sec, foreign);
	pol->forbid_foreign = strcmp(foreign, "forbid") == 0;
	if (rc == KURA_OK)
		rc = check_policy(p, pol, err);
	if (rc == KURA_OK)
		p->npolicies++;
	return rc;
}

static enum kura_err read_home(struct kura_placement *p,
			       const struct kura_config *cfg,
			       struct kura_error *err)
{
	const char *home = kura_config_get(cfg, "server", "home_jurisdiction");
	const char *kj = kura_config_get(cfg, "keys", "jurisdiction");
	const char *prov = kura_config_get(cfg, "keys", "provider");
	if (!jurisdiction_ok(home))
		return kura_fail(err, KURA_ECONFIG,
				 "[server] home_jurisdiction: '%s' is not an "
				 "ISO 3166-1 alpha-2 code (two capitals)",
				 home);
	if (kj != NULL && !jurisdiction_ok(kj))
		return kura_fail(err, KURA_ECONFIG,
				 "[keys] jurisdiction: '%s' is not an ISO "
				 "3166-1 alpha-2 code (two capitals)",
				 kj);
	snprintf(p->home, sizeof(p->home), "%s", home);
	snprintf(p->keys_jurisdiction, sizeof(p->keys_jurisdiction), "%s",
		 kj ? kj : "");
	snprintf(p->keys_provider, sizeof(p->keys_provider), "%s",
		 prov ? prov : "local");
	p->keys_external = strcmp(p->keys_provider, "pkcs11") == 0 ||
			   strcmp(p->keys_provider, "kmip") == 0;
	return KURA_OK;
}

static enum kura_err choose_default(struct kura_placement *p,
				    const struct kura_config *cfg,
				    struct kura_error *err)
{
	const char *name = kura_config_get(cfg, "storage", "placement");
	for (size_t i = 0; i < p->npolicies; i++)
		if (strcmp(p->policies[i].policy.name, name) == 0) {
			p->default_policy = i;
			p->policies[i].policy.is_default = true;
			/* A dedicated backend holds one tenant's data; every
			 * tenant's buckets may land in the default. */
			const struct kura_policy *pol = &p->policies[i].policy;
			for (size_t k = 0; k < kura_policy_nbackends(pol);
			     k++) {
				size_t b = kura_policy_backend(pol, k);
				if (p->backends[b].desc.dedicated_to[0])
					return kura_fail(
						err, KURA_ECONFIG,
						"[storage] placement: policy "
						"'%s' uses backend '%s', "
						"dedicated to tenant '%s'; "
						"the default policy cannot",
						name, p->backends[b].desc.name,
						p->backends[b]
							.desc.dedicated_to);
			}
			return KURA_OK;
		}
	return kura_fail(err, KURA_ECONFIG,
			 "[storage] placement: no policy '%s'", name);
}

enum kura_err kura_placement_load(const struct kura_config *cfg,
				  struct kura_placement **out,
				  struct kura_error *err)
{
	struct kura_placement *p = calloc(1, sizeof(*p));
	const char *names[KURA_CONFIG_NAMED_MAX];
	if (p == NULL)
		return kura_fail(err, KURA_ENOMEM, "placement");
	enum kura_err rc = read_home(p, cfg, err);
	if (rc == KURA_OK)
		rc = implicit_backend(p, cfg, err);
	size_t n =
		kura_config_names(cfg, "backend", names, KURA_CONFIG_NAMED_MAX);
	for (size_t i = 0; rc == KURA_OK && i < n; i++)
		rc = declared_backend(p, cfg, names[i], err);
	if (rc == KURA_OK) {
		/* The implicit policy: one copy, on the local backend. */
		struct kura_policy *d = &p->policies[p->npolicies++].policy;
		snprintf(d->name, sizeof(d->name), IMPLICIT_POLICY);
		d->nsync = 1;
		d->sync[0] = 0;
		snprintf(d->jurisdictions, sizeof(d->jurisdictions), "%s",
			 p->backends[0].desc.jurisdiction);
		rc = check_policy(p, d, err);
	}
	n = kura_config_names(cfg, "placement", names, KURA_CONFIG_NAMED_MAX);
	for (size_t i = 0; rc == KURA_OK && i < n; i++)
		rc = declared_policy(p, cfg, names[i], err);
	if (rc == KURA_OK)
		rc = choose_default(p, cfg, err);
	for (size_t i = 0; rc == KURA_OK && i < p->nbackends; i++)
		rc = check_foreign_backend(p, &p->backends[i].desc, err);
	if (rc != KURA_OK) {
		free(p);
		return rc;
	}
	*out = p;
	return KURA_OK;
}

enum kura_err kura_placement_allows(const struct kura_placement *p,
				    const struct kura_policy *pol,
				    const char *tenant_name,
				    struct kura_error *err)
{
	enum kura_err rc = check_policy(p, pol, err);
	for (size_t k = 0; rc == KURA_OK && k < kura_policy_nbackends(pol);
	     k++) {
		size_t b = kura_policy_backend(pol, k);
		const struct kura_backend_desc *d = &p->backends[b].desc;
		if (d->dedicated_to[0] &&
		    strcmp(d->dedicated_to, tenant_name) != 0)
			return kura_fail(err, KURA_EPERM,
					 "placement '%s': backend '%s' is "
					 "dedicated to another tenant",
					 pol->name, d->name);
	}
	return rc;
}

/* "a,b" of backend indexes, appended at *used. */
static void name_list(const struct kura_placement *p, const size_t *idx,
		      size_t n, char *buf, size_t cap, size_t *used)
{
	for (size_t i = 0; i < n && *used < cap; i++) {
		int k = snprintf(buf + *used, cap - *used, "%s%s", i ? "," : "",
				 p->backends[idx[i]].desc.name);
		*used += k > 0 ? (size_t)k : 0;
	}
}

void kura_placement_describe_backend(const struct kura_placement *p, size_t i,
				     char *buf, size_t cap)
{
	const struct kura_backend_desc *d = &p->backends[i].desc;
	snprintf(buf, cap,
		 "%s: type=%s site=%s region=%s jurisdiction=%s%s%s%s", d->name,
		 d->type, d->site, d->region[0] ? d->region : "-",
		 d->jurisdiction,
		 strcmp(d->jurisdiction, p->home) ? " (foreign)" : "",
		 d->dedicated_to[0] ? " dedicated_to=" : "", d->dedicated_to);
}

void kura_placement_describe_policy(const struct kura_placement *p,
				    const struct kura_policy *pol, char *buf,
				    size_t cap)
{
	size_t used = 0;
	int k = snprintf(buf, cap, "%s: sync=", pol->name);
	used = k > 0 ? (size_t)k : 0;
	name_list(p, pol->sync, pol->nsync, buf, cap, &used);
	if (used < cap)
		used += (size_t)snprintf(buf + used, cap - used, " async=");
	name_list(p, pol->async, pol->nasync, buf, cap, &used);
	if (used < cap)
		snprintf(buf + used, cap - used, " jurisdictions=%s%s",
			 pol->jurisdictions,
			 pol->is_default ? " (default)" : "");
}

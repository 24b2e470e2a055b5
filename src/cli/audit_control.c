/*
 * audit_control.c — the control-plane half of `kura audit verify
 * --against-meta`: does the metadata hold each tenant, access key, key and
 * bucket in the state the audit log's last change of it left?
 *
 * Row MACs (meta.h) stop anyone without the key provider from editing a
 * tenant, access key or key row, but not from putting back the whole row
 * as it was before a change — a revoked access key's older, active row, a
 * suspended tenant's active one — which every MAC accepts.  The log saw
 * the change: every suspension, resumption, revocation, rotation and key
 * state change is recorded with its result.  The last successful one of
 * each subject is what the metadata must show.  So for buckets: their
 * versioning and Object Lock state (a bucket row put back from before
 * versioning was enabled would replace data in place again).
 *
 * A change made after the log was read (a command running meanwhile)
 * shows as a disagreement; run the check again to tell.
 *
 * Single-threaded (a CLI command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kura/banned.h"

enum subject_kind {
	SUBJECT_TENANT,
	SUBJECT_ACCESS_KEY,
	SUBJECT_KEY,
	SUBJECT_BUCKET /* its versioning and Object Lock state */
};

struct fact {
	enum subject_kind kind;
	uint64_t tenant_id;	      /* SUBJECT_KEY: the key's tenant */
	char name[KURA_KEY_NAME_MAX]; /* tenant or key name, access key id */
	char state[24];		      /* what the last change left */
};

struct audit_control {
	struct fact *v;
	size_t n, cap;
	bool failed; /* out of memory */
};

struct audit_control *audit_control_new(void)
{
	return calloc(1, sizeof(struct audit_control));
}

void audit_control_free(struct audit_control *ac)
{
	if (ac == NULL)
		return;
	free(ac->v);
	free(ac);
}

static void set_fact(struct audit_control *ac, enum subject_kind kind,
		     uint64_t tenant_id, const char *name, const char *state)
{
	struct fact *f = NULL;
	if (strlen(name) >= sizeof(f->name) ||
	    strlen(state) >= sizeof(f->state))
		return; /* not a name kura writes */
	for (size_t i = 0; i < ac->n && f == NULL; i++)
		if (ac->v[i].kind == kind && ac->v[i].tenant_id == tenant_id &&
		    strcmp(ac->v[i].name, name) == 0)
			f = &ac->v[i];
	if (f == NULL) {
		if (ac->n == ac->cap) {
			size_t cap = ac->cap ? ac->cap * 2 : 16;
			struct fact *v = realloc(ac->v, cap * sizeof(*v));
			if (v == NULL) {
				ac->failed = true;
				return;
			}
			ac->v = v;
			ac->cap = cap;
		}
		f = &ac->v[ac->n++];
		f->kind = kind;
		f->tenant_id = tenant_id;
		snprintf(f->name, sizeof(f->name), "%s", name);
	}
	snprintf(f->state, sizeof(f->state), "%s", state);
}

/* What a successful change leaves its subject in. */
static const struct {
	const char *op;
	enum subject_kind kind;
	const char *state;
} changes[] = {
	{ "tenant.create", SUBJECT_TENANT, "active" },
	{ "tenant.suspend", SUBJECT_TENANT, "suspended" },
	{ "tenant.resume", SUBJECT_TENANT, "active" },
	{ "tenant.delete", SUBJECT_TENANT, "deleted" },
	{ "access_key.revoke", SUBJECT_ACCESS_KEY, "revoked" },
	{ "access_key.rotate", SUBJECT_ACCESS_KEY,
	  "revoked" }, /* the old one */
	{ "key.create", SUBJECT_KEY, "enabled" },
	{ "key.import", SUBJECT_KEY, "enabled" },
	{ "key.disable", SUBJECT_KEY, "disabled" },
	{ "key.enable", SUBJECT_KEY, "enabled" },
	{ "key.destroy", SUBJECT_KEY, "destroyed" },
};

bool audit_control_note(struct audit_control *ac, const char *op,
			uint64_t tenant_id, const char *subject)
{
	for (size_t i = 0;
	     subject != NULL && i < sizeof(changes) / sizeof(changes[0]); i++)
		if (strcmp(op, changes[i].op) == 0)
			set_fact(ac, changes[i].kind,
				 changes[i].kind == SUBJECT_KEY ? tenant_id : 0,
				 subject, changes[i].state);
	return !ac->failed;
}

/*
 * Buckets: a versioned bucket put back as it was before versioning (or
 * Object Lock) was enabled would replace data in place again, and its row
 * MAC accepts the older row.  The log records each change (S3 records of
 * CreateBucket, PutBucketVersioning, PutObjectLockConfiguration, with the
 * state set in their detail; DeleteBucket, bucket.shred): the state is
 * "versioning/lock", e.g. "Enabled/locked", "off/-", or "deleted".
 */
static void bucket_part(struct audit_control *ac, const char *bucket,
			const char *versioning, const char *lock)
{
	char state[24] = "off/-";
	for (size_t i = 0; i < ac->n; i++)
		if (ac->v[i].kind == SUBJECT_BUCKET &&
		    strcmp(ac->v[i].name, bucket) == 0 &&
		    strcmp(ac->v[i].state, "deleted") != 0)
			snprintf(state, sizeof(state), "%s", ac->v[i].state);
	char *slash = strchr(state, '/');
	char v[16], l[8];
	snprintf(v, sizeof(v), "%.*s", (int)(slash - state), state);
	snprintf(l, sizeof(l), "%s", slash + 1);
	snprintf(state, sizeof(state), "%s/%s", versioning ? versioning : v,
		 lock ? lock : l);
	set_fact(ac, SUBJECT_BUCKET, 0, bucket, state);
}

bool audit_control_note_bucket(struct audit_control *ac, const char *op,
			       const char *bucket, const char *versioning,
			       bool locked)
{
	if (bucket == NULL)
		return !ac->failed;
	if (strcmp(op, "CreateBucket") == 0)
		set_fact(ac, SUBJECT_BUCKET, 0, bucket,
			 locked ? "Enabled/locked" : "off/-");
	else if (strcmp(op, "PutBucketVersioning") == 0 && versioning != NULL)
		bucket_part(ac, bucket, versioning, NULL);
	else if (strcmp(op, "PutObjectLockConfiguration") == 0)
		bucket_part(ac, bucket, NULL, "locked");
	else if (strcmp(op, "DeleteBucket") == 0 ||
		 strcmp(op, "bucket.shred") == 0)
		set_fact(ac, SUBJECT_BUCKET, 0, bucket, "deleted");
	return !ac->failed;
}

static const char *bucket_state(struct kura_meta *meta, const char *name,
				char buf[24], struct kura_error *err)
{
	struct kura_bucket b;
	enum kura_err rc = kura_meta_bucket_get(meta, name, &b, err);
	if (rc == KURA_ENOENT)
		return "deleted";
	if (rc != KURA_OK)
		return NULL;
	snprintf(buf, 24, "%s/%s",
		 b.versioning == KURA_VERSIONING_ENABLED   ? "Enabled" :
		 b.versioning == KURA_VERSIONING_SUSPENDED ? "Suspended" :
							     "off",
		 b.object_lock ? "locked" : "-");
	return buf;
}

static const char *tenant_state(struct kura_meta *meta, const char *name,
				struct kura_error *err)
{
	struct kura_tenant t;
	enum kura_err rc = kura_meta_tenant_get_by_name(meta, name, &t, err);
	if (rc == KURA_ENOENT)
		return "deleted";
	if (rc != KURA_OK)
		return NULL;
	return t.state == KURA_TENANT_SUSPENDED ? "suspended" : "active";
}

static const char *access_key_state(struct kura_meta *meta, const char *id,
				    struct kura_error *err)
{
	struct kura_access_key k;
	enum kura_err rc = kura_meta_access_key_get(meta, id, &k, err);
	bool active = rc == KURA_OK && k.active;
	memset(&k, 0, sizeof(k));
	if (rc == KURA_ENOENT)
		return "revoked"; /* gone with its tenant */
	if (rc != KURA_OK)
		return NULL;
	return active ? "active" : "revoked";
}

static const char *key_state(struct kura_meta *meta, uint64_t tenant_id,
			     const char *name, struct kura_error *err)
{
	struct kura_key k;
	/* Only live keys are found by name: a destroyed one is not. */
	enum kura_err rc =
		kura_meta_key_get_by_name(meta, tenant_id, name, &k, err);
	if (rc == KURA_ENOENT)
		return "destroyed";
	if (rc != KURA_OK)
		return NULL;
	return k.state == KURA_KEY_ENABLED  ? "enabled" :
	       k.state == KURA_KEY_DISABLED ? "disabled" :
					      "destroyed";
}

static const char *const kind_names[] = { "tenant", "access key", "key",
					  "bucket" };

size_t audit_control_check(const struct audit_control *ac,
			   struct kura_service *svc)
{
	size_t bad = 0;
	for (size_t i = 0; i < ac->n; i++) {
		const struct fact *f = &ac->v[i];
		struct kura_error err = { 0 };
		char buf[24];
		const char *have =
			f->kind == SUBJECT_TENANT ?
				tenant_state(svc->meta, f->name, &err) :
			f->kind == SUBJECT_ACCESS_KEY ?
				access_key_state(svc->meta, f->name, &err) :
			f->kind == SUBJECT_BUCKET ?
				bucket_state(svc->meta, f->name, buf, &err) :
				key_state(svc->meta, f->tenant_id, f->name,
					  &err);
		if (have == NULL) {
			printf("UNREADABLE %s '%s': %s\n", kind_names[f->kind],
			       f->name, err.msg);
			bad++;
		} else if (strcmp(have, f->state) != 0) {
			printf("ROLLED BACK %s '%s': the audit log's last change left it %s, "
			       "the metadata says %s\n",
			       kind_names[f->kind], f->name, f->state, have);
			bad++;
		}
	}
	printf("%zu tenants, access keys, keys and buckets changed in the audit "
	       "log checked against the metadata: %zu disagree\n",
	       ac->n, bad);
	return bad;
}

/*
 * seal_job.c — the upgrade of metadata written before schema 5: rows that
 * have no seal yet are sealed (src/kms/seal.c), at start-up before the
 * server answers anyone, and again in the background while buckets whose
 * key was disabled then still wait.
 *
 * The settings marker that asks for an upgrade is no proof that one is
 * due: anyone who can write meta.db can plant it, together with rows whose
 * seals they stripped, hoping to have forged rows sealed.  The audit log is
 * the proof: every run is recorded ("meta.seal", with the buckets it left
 * waiting and whether it finished), and so is every server start on
 * sealed metadata (server.start's "metadata_seals").  So the first run
 * seals every bucket — if no server ever started on sealed metadata; a
 * later run only the buckets the last recorded run left waiting; once a
 * run finished, or a server started on a database sealed from its
 * creation, nothing is ever sealed again — rows found without a seal then
 * are counted, logged as an error and recorded, and stay integrity
 * failures.  Without an audit log ([audit] enabled = false, which kura
 * check reports as an error) there is no such proof: every run is a first.
 * The rows of tenants, access keys, buckets and keys get their row MAC
 * (meta.h "Row MACs") on the first run only, before anything reads them.
 *
 * Runs on the main thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kura/audit.h"
#include "kura/daemon.h"
#include "kura/log.h"
#include "kura/parse.h"
#include "kura/seal.h"
#include "kura/banned.h"

/* What earlier runs left on record. */
struct history {
	bool any;		    /* a run was recorded */
	bool finished;		    /* one of them finished */
	bool sealed_start;	    /* a server started on sealed metadata */
	bool row_macs;		    /* rows were given their MAC */
	struct kura_seal_wait last; /* buckets the last one left waiting */
};

static enum kura_err history_one(void *ctx, uint64_t seq, const char *json,
				 size_t len, bool *stop, struct kura_error *err)
{
	struct history *h = ctx;
	/* Cheap filter first: most records are S3 requests. */
	if (memmem(json, len, "\"meta.seal\"", 11) == NULL &&
	    memmem(json, len, "\"meta.rowmac\"", 13) == NULL &&
	    memmem(json, len, "\"metadata_seals\"", 16) == NULL)
		return KURA_OK;
	json_t *rec = json_loadb(json, len, 0, NULL);
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *type = json_string_value(json_object_get(rec, "type"));
	if (op != NULL && type != NULL && strcmp(op, "server.start") == 0 &&
	    strcmp(type, "server") == 0 &&
	    json_object_get(rec, "metadata_seals") != NULL)
		h->sealed_start = true;
	if (op != NULL && type != NULL && strcmp(op, "meta.rowmac") == 0 &&
	    strcmp(type, "server") == 0)
		h->row_macs = true;
	if (op != NULL && type != NULL && strcmp(op, "meta.seal") == 0 &&
	    strcmp(type, "server") == 0) {
		json_t *w = json_object_get(rec, "waiting");
		size_t i;
		json_t *v;
		h->any = true;
		h->finished |= json_is_true(json_object_get(rec, "done"));
		h->last.n = 0;
		json_array_foreach(w, i, v)
		{
			const char *s = json_string_value(v);
			uint64_t id;
			if (s != NULL && h->last.n < KURA_SEAL_WAIT_MAX &&
			    kura_parse_u64(s, strlen(s), UINT64_MAX, &id) ==
				    KURA_OK)
				h->last.ids[h->last.n++] = id;
		}
	}
	json_decref(rec);
	(void)seq;
	(void)stop;
	(void)err;
	return KURA_OK;
}

enum kura_err kura_daemon_seal_scope(struct kura_service *svc,
				     struct kura_seal_wait *wait,
				     struct kura_error *err)
{
	char dir[sizeof(svc->data_dir) + 8];
	struct history h;
	uint8_t v[8];
	size_t vlen = 0;
	memset(&h, 0, sizeof(h));
	memset(wait, 0, sizeof(*wait));
	wait->all = true;
	/* No marker, nothing to decide (and no log to read at every start). */
	enum kura_err rc = kura_meta_setting_get(svc->meta, KURA_SEAL_PENDING,
						 v, sizeof(v), &vlen, err);
	if (rc == KURA_ENOENT) {
		kura_error_clear(err);
		return KURA_OK;
	}
	if (rc != KURA_OK)
		return rc;
	wait->row_macs = true;
	if (svc->audit == NULL)
		return KURA_OK;
	snprintf(dir, sizeof(dir), "%s/audit", svc->data_dir);
	rc = kura_audit_each(dir, history_one, &h, NULL, err);
	if (rc != KURA_OK)
		return rc;
	/* Rows get their MAC once: recorded ("meta.rowmac") before anything
	 * else of the start can fail. */
	wait->row_macs = !h.row_macs && !h.any && !h.sealed_start;
	if (!h.any && !h.sealed_start)
		return KURA_OK; /* the first run of the seal upgrade */
	*wait = h.last;
	wait->all = false;
	/* Finished once, or a server already ran on this database sealed
	 * from the start: nothing is ever sealed again. */
	if (h.finished || !h.any)
		wait->n = 0;
	return KURA_OK;
}

/* The audit record of a run: counts, the buckets left waiting (decimal
 * strings: ids are 64-bit) and whether it finished. */
static char *run_record(const struct kura_seal_report *rep)
{
	json_t *waiting = json_array();
	for (size_t i = 0; waiting && i < rep->n_waiting; i++) {
		char id[24];
		snprintf(id, sizeof(id), "%llu",
			 (unsigned long long)rep->waiting[i]);
		json_array_append_new(waiting, json_string(id));
	}
	json_t *d = json_pack("{s:I,s:I,s:I,s:o,s:I,s:b}", "objects",
			      (json_int_t)rep->objects, "uploads",
			      (json_int_t)rep->uploads, "upload_parts",
			      (json_int_t)rep->parts, "waiting", waiting,
			      "refused_buckets",
			      (json_int_t)rep->buckets_refused, "done",
			      rep->done);
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	return text;
}

enum kura_err kura_daemon_row_mac_upgrade(struct kura_service *svc,
					  struct kura_seal_wait *wait,
					  struct kura_error *err)
{
	size_t n = 0;
	if (!wait->row_macs)
		return KURA_OK;
	enum kura_err rc = kura_meta_row_mac_upgrade(svc->meta, &n, err);
	if (rc != KURA_OK)
		return rc;
	wait->row_macs = false;
	kura_info(NULL,
		  "row MACs: %zu tenant, access key, bucket, key, key version "
		  "and bucket key rows written before schema 5 have theirs",
		  n);
	char detail[64];
	snprintf(detail, sizeof(detail), "{\"rows\":%zu}", n);
	return kura_service_audit_event(svc, "server", "meta.rowmac", 0, NULL,
					detail, KURA_OK, err);
}

enum kura_err kura_daemon_seal_upgrade(struct kura_service *svc,
				       struct kura_seal_wait *wait,
				       struct kura_error *err)
{
	struct kura_seal_report rep;
	struct kura_seal_scope scope = { wait->all, wait->ids, wait->n };
	enum kura_err rc =
		kura_seal_upgrade(svc->kms, svc->meta, &scope, &rep, err);
	if (rc != KURA_OK)
		return rc;
	bool was_all = wait->all;
	wait->all = false;
	wait->n = rep.n_waiting;
	memcpy(wait->ids, rep.waiting, rep.n_waiting * sizeof(rep.waiting[0]));
	wait->done = rep.done;
	kura_seal_upgrade_state(svc->kms, rep.waiting, rep.n_waiting);
	if (rep.buckets_refused > 0)
		kura_error(
			NULL,
			"metadata seals: %zu bucket(s) hold rows without a seal that no "
			"upgrade may seal (%s): they stay integrity failures — someone "
			"stripped seals from meta.db",
			rep.buckets_refused,
			was_all ? "-" :
				  "the audit log shows the upgrade ran before");
	/* On record: every first run, and any later one that changed
	 * something (not the rounds that find the same keys still disabled). */
	if (!rep.ran ||
	    (!was_all && rep.objects + rep.uploads + rep.parts == 0 &&
	     rep.buckets_refused == 0 && !rep.done))
		return KURA_OK;
	char *detail = run_record(&rep);
	if (detail == NULL)
		return kura_fail(err, KURA_ENOMEM, "seal upgrade record");
	kura_info(
		NULL,
		"metadata seals: sealed %zu objects, %zu uploads, %zu upload parts "
		"written before schema 5%s",
		rep.objects, rep.uploads, rep.parts,
		rep.done ? "; upgrade complete" :
			   "; buckets with a disabled key wait");
	rc = kura_service_audit_event(svc, "server", "meta.seal", 0, NULL,
				      detail, KURA_OK, err);
	free(detail);
	return rc;
}

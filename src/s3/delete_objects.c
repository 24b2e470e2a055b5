/*
 * delete_objects.c — DeleteObjects: up to 1000 keys in one XML request,
 * Content-MD5 required (as S3 requires), Quiet mode, a per-key result.
 * Each key is deleted in its own metadata transaction, so one failing key
 * never blocks the others; a key that does not exist counts as deleted.
 * Each entry is deleted as DeleteObject would (object_delete.c): a version
 * named by <VersionId> goes for good, a key in a versioned bucket gets a
 * delete marker.
 *
 * Evidence: one audit record per key (deleted, absent or failed, with the
 * code the client was given), written with the request's own record —
 * which counts them — as one group before the answer is sent, so that
 * `kura audit search --key` finds who deleted a key whichever way.
 */
#include <stdio.h>
#include <string.h>

#include "kura/encode.h"
#include "kura/log.h"
#include "s3_int.h"
#include "kura/banned.h"

#define MAX_KEYS 1000

enum outcome {
	DELETED,
	ABSENT,
	FAILED,
	OUTCOMES
};

static const char *const outcome_names[OUTCOMES] = { "deleted", "absent",
						     "failed" };

/* The length of the longest prefix of s[0..n) of at most max bytes that
 * does not end inside a UTF-8 sequence. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* The audit record of one key: its name (a name over the key limit cut to
 * it, with its full length), what happened to it, the version and how
 * (a delete marker added, a version removed) in a versioned bucket, and
 * the S3 code the client was given for it.  The record goes into the log
 * with the request's own (see s3_audit_add). */
static void record_key(struct s3_req *r, const struct s3_xml_node *k,
		       enum outcome what, const char *code,
		       const struct s3_deleted *del, bool named)
{
	static const char *const details[OUTCOMES] = {
		"{\"result\":\"deleted\"}",
		"{\"result\":\"absent\"}",
		"{\"result\":\"failed\"}",
	};
	struct kura_audit_record rec = {
		.key = k->text,
		.key_len =
			utf8_prefix(k->text, k->text_len, KURA_OBJECT_KEY_MAX),
		.error = code,
		.detail_json = details[what],
	};
	if (rec.key_len < k->text_len) {
		char *d = kura_palloc(r->pool, 64);
		if (d == NULL) {
			r->audit_lost = true;
			return;
		}
		snprintf(d, 64, "{\"key_length\":%zu,\"result\":\"%s\"}",
			 k->text_len, outcome_names[what]);
		rec.detail_json = d;
	} else if (what == ABSENT && named &&
		   r->bucket.versioning != KURA_VERSIONING_OFF) {
		/* No such version: nothing happened to the key. */
		rec.detail_json =
			"{\"result\":\"absent\",\"version_effect\":\"none\"}";
	} else if (what == DELETED && del->versioned &&
		   r->bucket.versioning != KURA_VERSIONING_OFF) {
		char *dj = kura_palloc(r->pool, 128);
		char uid[2 * KURA_UID_LEN + 1];
		if (dj == NULL) {
			r->audit_lost = true;
			return;
		}
		kura_hex_encode(del->uid, KURA_UID_LEN, uid);
		snprintf(dj, 128,
			 "{\"result\":\"deleted\",\"version_effect\":\"%s\","
			 "\"version\":\"%s\"}",
			 del->marker && !named ? "marker" : "removed", uid);
		rec.detail_json = dj;
	}
	(void)s3_audit_add(r, &rec); /* failure: the request answers 503 */
}

/* The request's own record counts the outcomes. */
static void record_counts(struct s3_req *r, const size_t count[OUTCOMES])
{
	char *d = kura_palloc(r->pool, 96);
	if (d == NULL) {
		r->audit_lost = true;
		return;
	}
	snprintf(d, 96, "{\"%s\":%zu,\"%s\":%zu,\"%s\":%zu}",
		 outcome_names[ABSENT], count[ABSENT], outcome_names[DELETED],
		 count[DELETED], outcome_names[FAILED], count[FAILED]);
	r->audit_detail = d;
}

/* <Deleted> for one key: the version named, and the delete marker made
 * (its id) or removed. */
static void write_deleted(struct kura_buf *b, const struct s3_xml_node *k,
			  const struct s3_xml_node *ver,
			  const struct s3_deleted *d)
{
	s3_xml_open(b, "Deleted");
	s3_xml_elem(b, "Key", k->text, k->text_len);
	if (ver != NULL)
		s3_xml_elem(b, "VersionId", ver->text, ver->text_len);
	if (d->marker) {
		s3_xml_elem_str(b, "DeleteMarker", "true");
		if (ver == NULL && d->versioned)
			s3_xml_elem_str(b, "DeleteMarkerVersionId",
					d->version_id);
	}
	s3_xml_close(b, "Deleted");
}

static void delete_finish(struct s3_req *r)
{
	const struct s3_xml_node *root = s3_xml_body(r, "Delete");
	if (root == NULL)
		return;
	const struct s3_xml_node *quiet_n = s3_xml_child(root, "Quiet");
	bool quiet = quiet_n && quiet_n->text_len == 4 &&
		     memcmp(quiet_n->text, "true", 4) == 0;
	size_t n = 0;
	for (const struct s3_xml_node *c = root->child; c; c = c->next)
		if (strcmp(c->name, "Object") == 0)
			n++;
	if (n == 0 || n > MAX_KEYS) {
		s3_error(r, S3_MalformedXML, NULL,
			 n ? "more than 1000 keys" : "no keys");
		return;
	}
	struct kura_buf b;
	size_t count[OUTCOMES] = { 0 };
	kura_buf_init(&b, S3_DOC_DELETE_MAX);
	s3_xml_root(&b, "DeleteResult");
	for (const struct s3_xml_node *c = root->child; c; c = c->next) {
		if (strcmp(c->name, "Object") != 0)
			continue;
		const struct s3_xml_node *k = s3_xml_child(c, "Key");
		const struct s3_xml_node *ver = s3_xml_child(c, "VersionId");
		const char *code = NULL, *msg = NULL;
		enum outcome what = DELETED;
		if (k == NULL || k->text_len == 0) {
			s3_error(r, S3_MalformedXML, NULL,
				 "Object without Key");
			kura_buf_release(&b);
			return;
		}
		struct s3_version_sel sel = { 0 };
		struct s3_deleted d = { 0 };
		if (k->text_len > KURA_OBJECT_KEY_MAX) {
			code = "KeyTooLongError";
			msg = "Your key is too long";
		} else if (ver != NULL &&
			   !s3_version_decode(ver->text, ver->text_len, &sel)) {
			code = "NoSuchVersion";
			msg = "The specified version does not exist.";
		} else {
			struct kura_error err = { 0 };
			enum kura_err rc = s3_delete_key(
				r, k->text, k->text_len, &sel, NULL, &d, &err);
			if (rc == KURA_ENOENT)
				what = ABSENT;
			if (rc == KURA_EPERM) {
				code = "AccessDenied";
				msg = S3_LOCK_DENIED;
			} else if (rc != KURA_OK && rc != KURA_ENOENT) {
				kura_error(r->http->id, "DeleteObjects: %s",
					   err.msg);
				code = "InternalError";
				msg = "We encountered an internal error. Please try again.";
			}
		}
		if (code != NULL)
			what = FAILED;
		count[what]++;
		record_key(r, k, what, code, &d, ver != NULL);
		if (code != NULL) {
			s3_xml_open(&b, "Error");
			s3_xml_elem(&b, "Key", k->text, k->text_len);
			if (ver != NULL)
				s3_xml_elem(&b, "VersionId", ver->text,
					    ver->text_len);
			s3_xml_elem_str(&b, "Code", code);
			s3_xml_elem_str(&b, "Message", msg);
			s3_xml_close(&b, "Error");
		} else if (!quiet) {
			write_deleted(&b, k, ver, &d);
		}
	}
	s3_xml_close(&b, "DeleteResult");
	record_counts(r, count);
	s3_collect_garbage(r);
	s3_respond_xml(r, &b);
	kura_buf_release(&b);
}

void s3_delete_objects(struct s3_req *r)
{
	if (s3_load_bucket(r) && s3_body_digest_required(r))
		s3_expect_xml(r, S3_BODY_DELETE_MAX, delete_finish);
}

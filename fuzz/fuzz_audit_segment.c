/*
 * fuzz_audit_segment.c — the audit log's readers on hostile bytes: the
 * segment header, entry framing, the record scanner and unescaper, and
 * the checkpoint line parser (src/audit/segment.c, record.c,
 * checkpoint.c).  The input is a segment file; when it starts with '{'
 * each line is also tried as a checkpoint.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../src/audit/audit_int.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void scan_record(const uint8_t *p, size_t n)
{
	struct audit_fields f;
	struct kura_buf b;
	if (audit_record_scan((const char *)p, n, &f) != KURA_OK)
		return;
	kura_buf_init(&b, AUDIT_RECORD_MAX);
	const struct kura_str *s[] = { &f.time, &f.type, &f.op, &f.request_id,
				       &f.tenant, &f.bucket, &f.key };
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		kura_buf_reset(&b);
		if (s[i]->p != NULL)
			(void)audit_json_unescape(*s[i], &b);
	}
	kura_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_seg_header h;
	if (size > 0 && data[0] == '{') {
		for (size_t i = 0; i < size;) {
			const uint8_t *nl = memchr(data + i, '\n', size - i);
			size_t n = nl ? (size_t)(nl - (data + i)) : size - i;
			struct audit_checkpoint cp;
			if (audit_cp_parse((const char *)data + i, n, &cp, NULL) == KURA_OK)
				(void)audit_cp_check_signature(&cp, NULL);
			scan_record(data + i, n);
			i += n + 1;
		}
		return 0;
	}
	if (audit_seg_header_parse(data, size, &h, NULL) != KURA_OK)
		return 0;
	struct audit_tree t = h.tree;
	uint8_t root[AUDIT_HASH];
	for (size_t off = h.len; off < size;) {
		struct audit_entry e;
		if (audit_entry_parse(data + off, size - off, &e) != AUDIT_ENTRY_OK)
			break;
		uint8_t leaf[AUDIT_HASH];
		audit_leaf_hash(e.rec, e.rec_len, leaf);
		if (memcmp(leaf, e.hash, AUDIT_HASH) == 0 && t.size < UINT64_MAX)
			audit_tree_push(&t, leaf);
		scan_record(e.rec, e.rec_len);
		off += e.len;
	}
	audit_tree_root(&t, root);
	return 0;
}

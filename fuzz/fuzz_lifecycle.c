/*
 * fuzz_lifecycle.c — libFuzzer target for the lifecycle configuration
 * reader (src/s3/lifecycle_xml.c) and its stored form
 * (src/s3/lifecycle_rules.c).
 *
 * Input: a PutBucketLifecycleConfiguration body; the same bytes are also
 * read as a stored configuration (kura_lc_from_json), which must refuse
 * or accept without harm.
 * Invariants checked: a refusal always names an S3 error; an accepted
 * configuration has 1..1000 rules with unique, non-empty IDs of at most
 * 255 characters; its JSON reads back and writes the same bytes again;
 * the GetBucketLifecycleConfiguration document written from it reads back
 * to the same JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kura/lifecycle.h"
#include "kura/pool.h"
#include "../src/s3/s3_int.h"
#include "kura/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rules(const struct kura_lc_config *c)
{
	if (c->n == 0 || c->n > KURA_LC_RULES_MAX)
		abort();
	for (size_t i = 0; i < c->n; i++) {
		const char *id = c->rules[i].id;
		if (id == NULL || id[0] == '\0' ||
		    strlen(id) > 4 * KURA_LC_ID_MAX)
			abort();
		for (size_t k = 0; k < i; k++)
			if (strcmp(c->rules[k].id, id) == 0)
				abort();
	}
}

/* json reads back into the same JSON. */
static void json_round_trip(const char *json, struct kura_pool *pool)
{
	struct kura_lc_config back;
	struct kura_error err = { 0 };
	if (kura_lc_from_json(json, strlen(json), pool, &back, &err) != KURA_OK)
		abort();
	char *again = kura_lc_to_json(&back);
	if (again == NULL || strcmp(again, json) != 0)
		abort();
	free(again);
}

/* The GET document of c reads back into the same JSON. */
static void xml_round_trip(const struct kura_lc_config *c, const char *json,
			   struct kura_pool *pool)
{
	struct kura_buf b;
	struct s3_xml_node *root = NULL;
	struct kura_lc_config back;
	struct s3_lc_fault f;
	kura_buf_init(&b, 64u << 20);
	s3_lc_to_xml(&b, c);
	if (b.data == NULL ||
	    s3_xml_parse(b.data, b.len, pool, &root) != KURA_OK ||
	    !s3_lc_from_xml(root, pool, &back, &f))
		abort();
	char *again = kura_lc_to_json(&back);
	if (again == NULL || strcmp(again, json) != 0)
		abort();
	free(again);
	kura_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kura_pool *pool = kura_pool_new(0);
	struct s3_xml_node *root = NULL;
	struct kura_lc_config c;
	struct kura_error err = { 0 };
	struct s3_lc_fault f;
	if (pool == NULL)
		return 0;
	/* As stored text: refused or read, never more. */
	if (kura_lc_from_json((const char *)data, size, pool, &c, &err) ==
	    KURA_OK)
		check_rules(&c);
	if (s3_xml_parse((const char *)data, size, pool, &root) == KURA_OK &&
	    strcmp(root->name, "LifecycleConfiguration") == 0) {
		if (!s3_lc_from_xml(root, pool, &c, &f)) {
			if (!f.set)
				abort();
		} else {
			check_rules(&c);
			char *json = kura_lc_to_json(&c);
			if (json == NULL)
				abort();
			json_round_trip(json, pool);
			xml_round_trip(&c, json, pool);
			free(json);
		}
	}
	kura_pool_free(pool);
	return 0;
}

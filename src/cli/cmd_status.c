/*
 * cmd_status.c — `kura status [--json]`: each backend's health — its
 * labels, whether a probe reaches it and how long the round trip took,
 * how many replicas wait in its asynchronous queue and how old the oldest
 * of them is (the replication lag).  Reads the metadata and probes the
 * backends; changes nothing; works while a server runs.  An unreachable
 * backend is reported, not an error: the exit status is 0 unless the
 * status itself could not be read.
 */
#include <stdio.h>

#include "kura/placement.h"
#include "kura/timefmt.h"
#include "cli.h"
#include "cli_fmt.h"
#include "kura/banned.h"

/* Probe backend i and read its queue into h; false (printed) when the
 * metadata cannot be read. */
static bool health(struct kura_service *svc, size_t i,
		   struct cli_backend_health *h, struct kura_error *probe)
{
	const struct kura_backend_desc *d =
		kura_placement_backend(svc->placement, i);
	struct kura_error err = { 0 };
	uint64_t count = 0;
	int64_t oldest = 0;
	h->backend = d->name;
	h->type = d->type;
	h->site = d->site;
	h->region = d->region;
	h->jurisdiction = d->jurisdiction;
	h->reachable = kura_placement_probe(svc->placement, i, &h->latency_ms,
					    probe) == KURA_OK;
	h->problem = h->reachable ? NULL : probe->msg;
	if (kura_meta_replica_queue(svc->meta, d->name, &count, &oldest,
				    &err) != KURA_OK) {
		fprintf(stderr, "kura: backend '%s': %s\n", d->name, err.msg);
		return false;
	}
	int64_t now = kura_now_ms();
	h->queue = count;
	h->lag_seconds = oldest > 0 && now > oldest ?
				 (double)(now - oldest) / 1000.0 :
				 0;
	return true;
}

int cli_status(const struct kura_config *cfg, const struct cli *c)
{
	if (c->nwords != 1) {
		fprintf(stderr, "usage: kura status [--json]\n");
		return 2;
	}
	struct kura_service *svc = cli_open_service(cfg);
	if (svc == NULL)
		return 1;
	size_t n = kura_placement_nbackends(svc->placement);
	json_t *list = c->json ? json_array() : NULL;
	bool ok = !c->json || list != NULL;
	if (ok && !c->json)
		cli_health_text_header(stdout);
	for (size_t i = 0; ok && i < n; i++) {
		struct cli_backend_health h = { 0 };
		struct kura_error probe = { 0 };
		ok = health(svc, i, &h, &probe);
		if (ok && list != NULL)
			json_array_append_new(list, cli_health_json(&h));
		else if (ok)
			cli_health_text(stdout, &h);
	}
	if (ok && list != NULL)
		ok = cli_json_print(stdout,
				    json_pack("{s:o}", "backends", list));
	else
		json_decref(list);
	kura_service_close(svc);
	return ok ? 0 : 1;
}

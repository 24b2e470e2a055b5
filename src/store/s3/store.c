/*
 * store.c — the remote S3 data store's ops table (store_s3.h): open and
 * close, remove, recover, and the health probe; the writer and the
 * reader are in writer.c and reader.c.
 *
 * Threading: the state is written only by open and close; every other
 * call reads it and goes through the client, which is thread-safe.
 */
#include <string.h>

#include "kura/store_s3.h"
#include "kura/timefmt.h"
#include "s3_int.h"
#include "kura/banned.h"

static enum kura_err rs3_open(void *priv, const struct kura_config *cfg,
			      const char *section, const char *data_dir,
			      struct kura_error *err)
{
	struct rs3_store *s = priv;
	(void)data_dir;
	enum kura_err rc = rs3_conf_load(&s->conf, cfg, section, err);
	if (rc != KURA_OK)
		return rc;
	rc = rs3_client_new(&s->conf, &s->client, err);
	if (rc != KURA_OK)
		rs3_conf_release(&s->conf);
	return rc;
}

/* The settings as open reads them (endpoint and its TLS rule, names,
 * the secret file's mode and owner), without connecting. */
static enum kura_err rs3_check(const struct kura_config *cfg,
			       const char *section, struct kura_error *err)
{
	struct rs3_conf conf;
	memset(&conf, 0, sizeof(conf));
	enum kura_err rc = rs3_conf_load(&conf, cfg, section, err);
	if (rc == KURA_OK)
		rs3_conf_release(&conf);
	return rc;
}

static void rs3_close(void *priv)
{
	struct rs3_store *s = priv;
	rs3_client_free(s->client);
	s->client = NULL;
	rs3_conf_release(&s->conf);
}

static enum kura_err rs3_remove(void *priv, const uint8_t id[KURA_BLOB_ID_LEN],
				struct kura_error *err)
{
	struct rs3_store *s = priv;
	char key[S3_KEY_MAX];
	rs3_conf_object_key(&s->conf, id, key);
	struct rs3_req req = { .method = "DELETE", .key = key };
	struct rs3_resp resp = { 0 };
	enum kura_err rc = rs3_client_do(s->client, &req, &resp, err);
	if (rc == KURA_OK && resp.status != 204 && resp.status != 200 &&
	    resp.status != 404)
		rc = rs3_client_fail(s->client, "DeleteObject", &resp, err);
	rs3_resp_release(&resp);
	return rc;
}

/* Nothing is staged on the remote (writer.c), so nothing to publish or
 * sweep here. */
static enum kura_err rs3_recover(void *priv,
				 kura_store_referenced_fn referenced, void *ctx,
				 uint64_t *removed, struct kura_error *err)
{
	(void)priv;
	(void)referenced;
	(void)ctx;
	(void)err;
	*removed = 0;
	return KURA_OK;
}

enum kura_err kura_store_s3_probe(void *priv, double *latency_ms,
				  struct kura_error *err)
{
	struct rs3_store *s = priv;
	struct rs3_req req = { .method = "HEAD", .no_retry = true };
	struct rs3_resp resp = { 0 };
	uint64_t t0 = kura_mono_ns();
	enum kura_err rc = rs3_client_do(s->client, &req, &resp, err);
	if (rc == KURA_OK)
		*latency_ms = (double)(kura_mono_ns() - t0) / 1e6;
	if (rc == KURA_OK && resp.status != 200)
		rc = rs3_client_fail(s->client, "HeadBucket", &resp, err);
	rs3_resp_release(&resp);
	return rc;
}

size_t kura_store_s3_writer_memory(const struct kura_store_writer *w)
{
	return rs3_writer_capacity(w);
}

const struct kura_store_ops kura_store_s3 = {
	.name = "s3",
	.caps = 0,
	.priv_size = sizeof(struct rs3_store),
	.open = rs3_open,
	.close = rs3_close,
	.check = rs3_check,
	.writer_open = rs3_writer_open,
	.writer_write = rs3_writer_write,
	.writer_finish = rs3_writer_finish,
	.writer_abort = rs3_writer_abort,
	.publish = NULL,
	.reader_open = rs3_reader_open,
	.reader_pread = rs3_reader_pread,
	.reader_close = rs3_reader_close,
	.remove = rs3_remove,
	.recover = rs3_recover,
};

/*
 * kmip.c — the kmip key provider (being written; see include/kura/keys.h).
 * Until then it refuses to open, so configuring it fails clearly.
 */
#include "kura/keys.h"
#include "kura/banned.h"

static enum kura_err kmip_open(void *priv, const struct kura_config *cfg,
			       const char *data_dir, struct kura_error *err)
{
	(void)priv;
	(void)cfg;
	(void)data_dir;
	return kura_fail(err, KURA_ECONFIG, "the kmip key provider is not available yet");
}

static void kmip_close(void *priv)
{
	(void)priv;
}

const struct kura_keys_ops kura_keys_kmip = {
	.name = "kmip",
	.priv_size = 1,
	.open = kmip_open,
	.close = kmip_close,
};

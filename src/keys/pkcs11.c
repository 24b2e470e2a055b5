/*
 * pkcs11.c — the pkcs11 key provider (being written; see include/kura/keys.h).
 * Until then it refuses to open, so configuring it fails clearly.
 */
#include "kura/keys.h"
#include "kura/banned.h"

static enum kura_err pkcs11_open(void *priv, const struct kura_config *cfg,
			       const char *data_dir, struct kura_error *err)
{
	(void)priv;
	(void)cfg;
	(void)data_dir;
	return kura_fail(err, KURA_ECONFIG, "the pkcs11 key provider is not available yet");
}

static void pkcs11_close(void *priv)
{
	(void)priv;
}

const struct kura_keys_ops kura_keys_pkcs11 = {
	.name = "pkcs11",
	.priv_size = 1,
	.open = pkcs11_open,
	.close = pkcs11_close,
};

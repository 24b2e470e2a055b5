/*
 * lengths.h — fixed lengths that several contracts share: the ids and
 * wrapped keys that the data store, the key provider, the crypto layer and
 * the metadata store all carry.
 *
 * A leaf: it includes nothing, so a contract that only stores these values
 * (meta.h keeps blob ids, version uids, KEK ids and wrapped keys in its
 * rows) need not include the header of the layer that makes them.  Each
 * value is defined by its owner's format and documented there: blob ids in
 * store.h, version uids and DEKs in crypt.h and docs/FORMAT.md, KEK ids
 * and wrapped keys in keys.h.
 */
#ifndef KURA_LENGTHS_H
#define KURA_LENGTHS_H

#define KURA_BLOB_ID_LEN 16 /* a blob's random id (store.h) */
#define KURA_UID_LEN 16	    /* an object version's uid (crypt.h) */
#define KURA_DEK_LEN 32	    /* a data key: AES-256 (crypt.h) */
/* A DEK boxed under a bucket key: nonce (12) || ciphertext || tag (16). */
#define KURA_WRAPPED_DEK_LEN (KURA_DEK_LEN + 28)
#define KURA_KEK_ID_MAX 128  /* a provider's KEK id, NUL included (keys.h) */
#define KURA_WRAPPED_MAX 512 /* largest wrapped key any provider returns */

#endif

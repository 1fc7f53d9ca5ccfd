#ifndef ASSETD_COPENSSL_SHIM_H
#define ASSETD_COPENSSL_SHIM_H
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* One-shot HMAC-SHA256; returns 1 on success. out must hold 32 bytes. */
static inline int assetd_crypto_hmac_sha256(const void *key, size_t key_len,
                                            const void *data, size_t data_len,
                                            unsigned char *out) {
    unsigned int out_len = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, data_len,
                out, &out_len) != NULL && out_len == 32;
}
#endif

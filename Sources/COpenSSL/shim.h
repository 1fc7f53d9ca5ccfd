#ifndef ASSETD_COPENSSL_SHIM_H
#define ASSETD_COPENSSL_SHIM_H
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/*
 * SHA-256 through the low-level interface. It is deprecated in OpenSSL 3 in favour of
 * EVP, but EVP looks the algorithm up in a provider and allocates a context on every
 * digest, which cost more than the hashing itself for the short messages SigV4 signs.
 * SHA256_CTX is a plain struct: copying it forks a stream (HMAC's prepared pads).
 */
static inline void assetd_sha256(const void *data, size_t len, unsigned char *out) {
    /* Not SHA256(): in OpenSSL 3 that one-shot goes through EVP_Q_digest. */
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, len);
    SHA256_Final(out, &ctx);
}
static inline void assetd_sha256_init(SHA256_CTX *ctx) { SHA256_Init(ctx); }
static inline void assetd_sha256_update(SHA256_CTX *ctx, const void *data, size_t len) {
    SHA256_Update(ctx, data, len);
}
static inline void assetd_sha256_final(SHA256_CTX *ctx, unsigned char *out) { SHA256_Final(out, ctx); }

/* One-shot HMAC-SHA256; returns 1 on success. out must hold 32 bytes. */
static inline int assetd_crypto_hmac_sha256(const void *key, size_t key_len,
                                            const void *data, size_t data_len,
                                            unsigned char *out) {
    unsigned int out_len = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, data_len,
                out, &out_len) != NULL && out_len == 32;
}
#endif

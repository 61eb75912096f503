/* Signing-algorithm choice for SignData (see signing.h). */
#include "keymanager/signing.h"

#include <stdio.h>

size_t signing_digest_length(km_hash hash)
{
    switch (hash) {
    case KM_HASH_SHA224:
    case KM_HASH_SHA3_224:
    case KM_HASH_SHA512_224:
        return 28;
    case KM_HASH_SHA256:
    case KM_HASH_SHA3_256:
    case KM_HASH_SHA512_256:
        return 32;
    case KM_HASH_SHA384:
    case KM_HASH_SHA3_384:
        return 48;
    case KM_HASH_SHA512:
    case KM_HASH_SHA3_512:
        return 64;
    default:
        return 0;
    }
}

const char *signing_hash_name(km_hash hash)
{
    switch (hash) {
    case KM_HASH_UNSPECIFIED:
        return "UNSPECIFIED_HASH_ALGORITHM";
    case KM_HASH_SHA224:
        return "SHA224";
    case KM_HASH_SHA256:
        return "SHA256";
    case KM_HASH_SHA384:
        return "SHA384";
    case KM_HASH_SHA512:
        return "SHA512";
    case KM_HASH_SHA3_224:
        return "SHA3_224";
    case KM_HASH_SHA3_256:
        return "SHA3_256";
    case KM_HASH_SHA3_384:
        return "SHA3_384";
    case KM_HASH_SHA3_512:
        return "SHA3_512";
    case KM_HASH_SHA512_224:
        return "SHA512_224";
    case KM_HASH_SHA512_256:
        return "SHA512_256";
    }
    return "UNKNOWN";
}

const char *signing_key_type_name(km_key_type type)
{
    switch (type) {
    case KM_KEY_TYPE_UNSPECIFIED:
        return "UNSPECIFIED_KEY_TYPE";
    case KM_KEY_TYPE_EC_P256:
        return "EC_P256";
    case KM_KEY_TYPE_EC_P384:
        return "EC_P384";
    case KM_KEY_TYPE_RSA_2048:
        return "RSA_2048";
    case KM_KEY_TYPE_RSA_4096:
        return "RSA_4096";
    }
    return "UNKNOWN";
}

static const char *rsa_algorithm(km_hash hash, bool pss)
{
    switch (hash) {
    case KM_HASH_SHA256:
        return pss ? "RSASSA_PSS_SHA_256" : "RSASSA_PKCS1_V1_5_SHA_256";
    case KM_HASH_SHA384:
        return pss ? "RSASSA_PSS_SHA_384" : "RSASSA_PKCS1_V1_5_SHA_384";
    case KM_HASH_SHA512:
        return pss ? "RSASSA_PSS_SHA_512" : "RSASSA_PKCS1_V1_5_SHA_512";
    default:
        return NULL;
    }
}

static const char *algorithm_for(km_key_type type, km_hash hash, bool pss)
{
    switch (type) {
    case KM_KEY_TYPE_EC_P256:
        return !pss && hash == KM_HASH_SHA256 ? "ECDSA_SHA_256" : NULL;
    case KM_KEY_TYPE_EC_P384:
        return !pss && hash == KM_HASH_SHA384 ? "ECDSA_SHA_384" : NULL;
    case KM_KEY_TYPE_RSA_2048:
    case KM_KEY_TYPE_RSA_4096:
        return rsa_algorithm(hash, pss);
    default:
        return NULL;
    }
}

static bool choose(km_key_type type, const km_signer_opts *opts, signing_choice *out, char *error,
                   size_t error_size)
{
    if (opts->hash == KM_HASH_UNSPECIFIED) {
        snprintf(error, error_size, "hash algorithm is required");
        return false;
    }
    const char *algorithm = algorithm_for(type, opts->hash, opts->pss);
    if (algorithm == NULL) {
        snprintf(
            error, error_size, "unsupported combination of keytype: %s and hashing algorithm: %s%s",
            signing_key_type_name(type), signing_hash_name(opts->hash), opts->pss ? " (PSS)" : "");
        return false;
    }
    size_t digest_len = signing_digest_length(opts->hash);
    if (opts->pss && opts->pss_salt_length != -1 && opts->pss_salt_length != 0 &&
        opts->pss_salt_length != (int32_t)digest_len) {
        snprintf(error, error_size,
                 "unsupported PSS salt length %d for keytype: %s and hashing algorithm: %s (KMS "
                 "uses a salt as long as the hash: %zu bytes)",
                 (int)opts->pss_salt_length, signing_key_type_name(type),
                 signing_hash_name(opts->hash), digest_len);
        return false;
    }
    out->algorithm = algorithm;
    out->digest_len = digest_len;
    return true;
}

bool signing_choose(km_key_type type, const km_signer_opts *opts, signing_choice *out,
                    km_status *status)
{
    char error[512];
    if (choose(type, opts, out, error, sizeof error))
        return true;
    km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "%s", error);
    return false;
}

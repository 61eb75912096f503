/* SPIRE signer options (hash, or PSS with hash and salt length) for a key
 * type, mapped to the KMS SigningAlgorithm and the digest length SignData
 * must receive. Every combination KMS cannot serve is refused with a message
 * naming the key type and hash. */
#ifndef KM_SIGNING_H
#define KM_SIGNING_H

#include <stdbool.h>
#include <stddef.h>

#include "keymanager/keymanager.h"

typedef struct {
    const char *algorithm; /* KMS name, e.g. "ECDSA_SHA_256" */
    size_t digest_len;     /* bytes SignData's data must have */
} signing_choice;

/* False with status INVALID_ARGUMENT and the reason when the combination is
 * not supported. */
bool signing_choose(km_key_type type, const km_signer_opts *opts, signing_choice *out,
                    km_status *status);

/* Digest length in bytes of a hash; 0 for unspecified or unknown values. */
size_t signing_digest_length(km_hash hash);
/* Wire enum names: "SHA256", "EC_P256", ...; "UNKNOWN" for other values. */
const char *signing_hash_name(km_hash hash);
const char *signing_key_type_name(km_key_type type);

#endif

/* The KeyManager: SPIRE's view of keys (ids, types, public keys, signing)
 * mapped onto KMS keys and aliases alias/SPIRE_SERVER/{TD}/{SERVER_ID}/{KEY_ID}.
 * This is the API the gRPC face calls; it knows nothing of protobuf.
 * Every function is thread-safe. Failures fill km_status with a gRPC status
 * code and a message an operator can act on (KMS code and text included). */
#ifndef KM_KEYMANAGER_H
#define KM_KEYMANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h> /* grpc_status_code: the one spelling of status codes */

#include "aws/call_ctx.h" /* aws_call_ctx: a call's deadline and cancellation */
#include "config/config.h"

/* Values are the wire enum values of spire.plugin.server.keymanager.v1. */
typedef enum {
    KM_KEY_TYPE_UNSPECIFIED = 0,
    KM_KEY_TYPE_EC_P256 = 1,
    KM_KEY_TYPE_EC_P384 = 2,
    KM_KEY_TYPE_RSA_2048 = 3,
    KM_KEY_TYPE_RSA_4096 = 4,
} km_key_type;

typedef enum {
    KM_HASH_UNSPECIFIED = 0,
    KM_HASH_SHA224 = 4,
    KM_HASH_SHA256 = 5,
    KM_HASH_SHA384 = 6,
    KM_HASH_SHA512 = 7,
    KM_HASH_SHA3_224 = 10,
    KM_HASH_SHA3_256 = 11,
    KM_HASH_SHA3_384 = 12,
    KM_HASH_SHA3_512 = 13,
    KM_HASH_SHA512_224 = 14,
    KM_HASH_SHA512_256 = 15,
} km_hash;

typedef struct {
    grpc_status_code code; /* GRPC_STATUS_OK on success */
    char message[1024];
} km_status;

typedef struct {
    char *id;
    km_key_type type;
    uint8_t *pkix; /* DER SubjectPublicKeyInfo */
    size_t pkix_len;
    char fingerprint[65]; /* lowercase hex SHA-256 of pkix */
} km_public_key;

/* Signer options: a plain hash, or PSS with its own hash and salt length. */
typedef struct {
    km_hash hash;
    bool pss;
    int32_t pss_salt_length; /* -1 or 0: equal to hash length */
} km_signer_opts;

typedef struct {
    uint8_t *signature;
    size_t signature_len;
    char key_fingerprint[65];
} km_signature;

typedef struct km_manager km_manager;

km_manager *km_new(void);
/* Stops background work, waits for it, frees everything. */
void km_free(km_manager *manager);

/* Applies a checked configuration: loads/creates the server id, connects to
 * KMS, loads this server's keys (retrying an unreachable KMS until the call's
 * deadline or the start-up budget, whichever comes first, or until the call is
 * cancelled). On success the new state replaces the old one atomically
 * (in-flight calls finish with the old); on failure the old state stays.
 * Takes no ownership of config; call may be NULL. */
int km_configure(km_manager *manager, const aws_call_ctx *call, const plugin_config *config,
                 km_status *status);
bool km_is_configured(km_manager *manager);

int km_generate_key(km_manager *manager, const aws_call_ctx *call, const char *key_id,
                    km_key_type type, km_public_key *out, km_status *status);
int km_get_public_key(km_manager *manager, const char *key_id, km_public_key *out,
                      km_status *status);
/* *keys is a malloc'd array of *count keys; free with km_public_keys_free. */
int km_get_public_keys(km_manager *manager, km_public_key **keys, size_t *count, km_status *status);

/* The end of km_sign_data_start: rc 0 with *signature (the callee's: it frees
 * it with km_signature_clear), or -1 with status. */
typedef void (*km_sign_done_fn)(void *user, int rc, km_signature *signature,
                                const km_status *status);
/* SignData without holding the calling thread while KMS answers: the key is
 * looked up and the request signed here (never waiting on the network or on
 * a credential refresh), and done runs once the answer is in, on the HTTP
 * event thread (or the KMS client's helper thread, after a wait for
 * credentials or after following our alias to a rotated key). Returns 0 when
 * done will run exactly once, possibly before this returns; -1 with status
 * when the call failed at once (not configured, unknown key, bad digest:
 * done never runs). key_id and data are only read before this returns;
 * *call->cancelled must stay valid until done runs: once set, the exchange
 * in flight or the backoff under way ends and done gets CANCELLED. */
int km_sign_data_start(km_manager *manager, const aws_call_ctx *call, const char *key_id,
                       const uint8_t *data, size_t data_len, const km_signer_opts *opts,
                       km_sign_done_fn done, void *user, km_status *status);

/* Stops background work (tasks, deletion queue) within its bound; logs what
 * the deletion queue could not finish. Safe to call more than once. */
void km_shutdown(km_manager *manager);

void km_public_key_clear(km_public_key *key);
void km_public_keys_free(km_public_key *keys, size_t count);
void km_signature_clear(km_signature *signature);
void km_status_set(km_status *status, grpc_status_code code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* A config_environment_check (config/config.h): adds a note when the AWS SDK
 * environment cannot complete plugin_data (no region from any source, a bad
 * AWS_REGION, AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS or AWS_RETRY_MODE, ...), as
 * Configure's KMS client would find. */
void km_check_environment(const plugin_config *config, config_notes *notes);

#endif

/* Typed AWS KMS (and STS GetCallerIdentity) client: the only interface the
 * KeyManager uses to reach AWS. JSON 1.1 protocol, SigV4 signing, the
 * credential chain, endpoints and standard-mode retries live behind it.
 * All functions are thread-safe; they return 0 on success and -1 with err
 * filled on failure. They wait for their answer, except kms_sign_start, which
 * hands it to a callback; none may be called on the HTTP event thread (a
 * callback of kms_sign_start), which would wait for itself. Point `endpoint`
 * at the test emulator to test against it. */
#ifndef KM_AWS_KMS_H
#define KM_AWS_KMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/aws_error.h"
#include "aws/call_ctx.h"

/* region, ca_bundle and max_attempts left unset come from the AWS SDK
 * environment (aws/sdk_env.h: AWS_REGION, AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS, the
 * shared config profile); kms_client_new fails when no source gives a region. */
typedef struct {
    const char *region;            /* NULL: AWS_REGION, AWS_DEFAULT_REGION, profile */
    const char *endpoint;          /* custom KMS URL (KMS only); NULL: env, then derived */
    const char *ca_bundle;         /* CA file instead of the system store; NULL: env, profile */
    bool use_fips_endpoint;        /* also AWS_USE_FIPS_ENDPOINT=true */
    const char *access_key_id;     /* from config, or NULL */
    const char *secret_access_key; /* from config, or NULL */
    int max_attempts;              /* 0: AWS_MAX_ATTEMPTS, profile, then 3 */
    int connect_timeout_ms;        /* 0: default */
    int request_timeout_ms;        /* 0: default */
    size_t pool_size;              /* connections kept alive; 0: default */
} aws_client_config;

typedef struct kms_client kms_client;

kms_client *kms_client_new(const aws_client_config *config, aws_error *err);
void kms_client_free(kms_client *client);
/* Where requests go (for logs and tests), e.g. "https://kms.us-east-2.amazonaws.com". */
const char *kms_client_endpoint(const kms_client *client);

/* What the client resolved, and from where ("plugin_data", "AWS_REGION",
 * "region in shared profile \"default\"", ...); strings live as long as the client. */
typedef struct {
    const char *region;
    const char *region_source;
    const char *kms_endpoint;
    const char *sts_endpoint;
    const char *tagging_endpoint;
    const char *ca_bundle; /* "": the system trust store */
    const char *ca_bundle_source;
    int max_attempts;
    const char *max_attempts_source;
} kms_client_info;
void kms_client_get_info(const kms_client *client, kms_client_info *out);

/* HTTP exchanges made and TCP connections opened by this client so far
 * (connections_opened well below http_requests shows keep-alive reuse). */
typedef struct {
    long http_requests;
    long connections_opened;
} kms_client_stats;
void kms_client_get_stats(kms_client *client, kms_client_stats *out);

typedef enum {
    KMS_KEY_SPEC_UNKNOWN = 0,
    KMS_KEY_SPEC_RSA_2048,
    KMS_KEY_SPEC_RSA_4096,
    KMS_KEY_SPEC_ECC_NIST_P256,
    KMS_KEY_SPEC_ECC_NIST_P384,
} kms_key_spec;

const char *kms_key_spec_name(kms_key_spec spec); /* "RSA_2048", ... */
kms_key_spec kms_key_spec_parse(const char *name);

typedef struct {
    char key_id[64]; /* the key's UUID */
    char arn[256];
    char key_state[32]; /* "Enabled", "Disabled", "PendingDeletion", ... */
    bool enabled;
    char description[1024];
    char key_manager[16]; /* "CUSTOMER" or "AWS" */
    double creation_date; /* epoch seconds */
    kms_key_spec key_spec;
} kms_key_metadata;

typedef struct {
    char key_id[256]; /* ARN of the key, as KMS returns it */
    kms_key_spec key_spec;
    uint8_t *der; /* DER SubjectPublicKeyInfo, malloc'd */
    size_t der_len;
} kms_public_key;
void kms_public_key_clear(kms_public_key *key);

typedef struct {
    char alias_name[257]; /* "alias/..." */
    char alias_arn[512];
    char target_key_id[64]; /* "" for AWS-managed aliases without a target */
    double creation_date;
    double last_updated_date;
} kms_alias;

typedef struct {
    kms_alias *aliases; /* malloc'd */
    size_t count;
    bool truncated;
    char next_marker[1024];
} kms_alias_page;
void kms_alias_page_clear(kms_alias_page *page);

typedef struct {
    char key_id[64];
    char arn[256];
} kms_key_entry;

typedef struct {
    kms_key_entry *keys; /* malloc'd */
    size_t count;
    bool truncated;
    char next_marker[1024];
} kms_key_page;
void kms_key_page_clear(kms_key_page *page);

typedef struct {
    const char *key;
    const char *value;
} kms_tag;

/* Tags read back from AWS: owned copies that aws_tag_set_clear frees. */
typedef struct {
    char *key;
    char *value; /* "" for an empty value */
} aws_tag;

typedef struct {
    aws_tag *items; /* malloc'd */
    size_t count;
} aws_tag_set;
void aws_tag_set_clear(aws_tag_set *set);
/* The value of key (the first such tag), or NULL when the set has none. */
const char *aws_tag_set_get(const aws_tag_set *set, const char *key);

typedef struct {
    aws_tag_set tags;
    bool truncated;
    char next_marker[1024];
} kms_tag_page;
void kms_tag_page_clear(kms_tag_page *page);

typedef struct {
    kms_key_spec key_spec; /* KeyUsage is always SIGN_VERIFY */
    const char *description;
    const char *policy; /* JSON document, or NULL for KMS's default */
    const kms_tag *tags;
    size_t tag_count;
} kms_create_key_input;

typedef struct {
    char account[32];
    char arn[512];
    char user_id[256];
} sts_identity;

int kms_create_key(kms_client *client, const aws_call_ctx *ctx, const kms_create_key_input *input,
                   kms_key_metadata *out, aws_error *err);
int kms_describe_key(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     kms_key_metadata *out, aws_error *err);
int kms_get_public_key(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                       kms_public_key *out, aws_error *err);
/* Sign with MessageType DIGEST; algorithm is KMS's name ("ECDSA_SHA_256", ...).
 * *signature is malloc'd. */
int kms_sign(kms_client *client, const aws_call_ctx *ctx, const char *key_id, const uint8_t *digest,
             size_t digest_len, const char *algorithm, uint8_t **signature, size_t *signature_len,
             aws_error *err);
/* The end of kms_sign_start: rc 0 with *signature (malloc'd, the callee's
 * to free), or -1 with err. */
typedef void (*kms_sign_done_fn)(void *user, int rc, uint8_t *signature, size_t signature_len,
                                 const aws_error *err);
/* kms_sign without holding the calling thread while KMS answers: the request
 * is signed here with the cached credentials (when they must be waited for,
 * the client's helper thread waits), retries wait on timers of the HTTP event
 * thread, and the answer is decoded there. Returns 0 when done will run
 * exactly once: on the HTTP event thread, on the helper thread, or (a call
 * that ends before any exchange, e.g. cancelled) on this thread before this
 * returns. -1 with err when the call could not start (done never runs).
 * ctx is copied; *ctx->cancelled must stay valid until done runs. */
int kms_sign_start(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                   const uint8_t *digest, size_t digest_len, const char *algorithm,
                   kms_sign_done_fn done, void *user, aws_error *err);
/* Runs fn(user) on the client's helper thread, which may block, for the
 * blocking steps that continue an asynchronous call. Jobs run one at a time.
 * Returns 0, or -1 when the client is closing (fn never runs). */
int kms_client_run_blocking(kms_client *client, void (*fn)(void *user), void *user);
int kms_create_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     const char *target_key_id, aws_error *err);
int kms_update_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     const char *target_key_id, aws_error *err);
int kms_delete_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     aws_error *err);
/* One page. key_id (a filter) and marker may be NULL; limit 0 means KMS's default. */
int kms_list_aliases(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     const char *marker, int limit, kms_alias_page *out, aws_error *err);
int kms_list_keys(kms_client *client, const aws_call_ctx *ctx, const char *marker, int limit,
                  kms_key_page *out, aws_error *err);
int kms_schedule_key_deletion(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                              int pending_window_days, aws_error *err);
/* KMS refuses TagResource and UntagResource on a key pending deletion
 * (KMSInvalidStateException: AWS_ERR_INVALID_STATE), as its key-state table
 * says; ListResourceTags works in every key state. */
int kms_tag_resource(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     const kms_tag *tags, size_t tag_count, aws_error *err);
/* Removes the tags with these keys; a key the KMS key does not carry is no error. */
int kms_untag_resource(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                       const char *const *tag_keys, size_t tag_key_count, aws_error *err);
/* One page of a key's tags. marker may be NULL; limit 1 to 50, 0 means KMS's
 * default (50). */
int kms_list_resource_tags(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                           const char *marker, int limit, kms_tag_page *out, aws_error *err);
int sts_get_caller_identity(kms_client *client, const aws_call_ctx *ctx, sts_identity *out,
                            aws_error *err);

#endif

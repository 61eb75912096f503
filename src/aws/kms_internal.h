/* Private seams of the KMS client for unit tests: the HTTP exchange, the
 * credentials, the environment and the retry randomness/clock/sleep can be
 * replaced, so that request encoding, answer decoding and retries are tested
 * without a network. Also the one JSON 1.1 call that kms.c and tagging.c
 * share, and the client's parts that the asynchronous calls (kms_async.c)
 * share with the synchronous ones (kms.c). */
#ifndef KM_AWS_KMS_INTERNAL_H
#define KM_AWS_KMS_INTERNAL_H

#include <jansson.h>

#include "aws/credentials.h"
#include "aws/credentials_internal.h"
#include "aws/http.h"
#include "aws/kms.h"
#include "aws/retry.h"
#include "aws/sdk_env.h"
#include "aws/sigv4.h"

typedef struct {
    /* One HTTP exchange, with aws_http_perform's contract. NULL: real HTTP. */
    int (*send)(void *user, const aws_http_request *request, aws_http_response *response,
                aws_error *err);
    /* Credentials for one attempt. NULL: the default provider chain. */
    int (*get_credentials)(void *user, aws_credentials *out, aws_error *err);
    void *user;
    aws_retry_hooks retry;
    /* Environment for the SDK settings (aws/sdk_env.h); zero: the process's. */
    aws_cred_env env;
} kms_client_hooks;

struct kms_client {
    char endpoint[512];
    char sts_endpoint[512];
    char tagging_endpoint[512];
    aws_sigv4_scope kms_scope;
    aws_sigv4_scope sts_scope;
    aws_sigv4_scope tagging_scope;
    aws_sdk_settings settings; /* region, CA bundle, max attempts and where they came from */
    aws_http *http;            /* NULL when hooks.send replaces it */
    aws_credentials_provider *credentials;
    kms_client_hooks hooks;
    aws_retry_quota quota;
    atomic_bool closing; /* kms_client_free began: background refreshes give up */
};

#define KMS_JSON_CONTENT_TYPE "Content-Type: application/x-amz-json-1.1"
#define KMS_USER_AGENT        "User-Agent: spire-aws-kms/" KM_VERSION

/* Credentials for one attempt (may block: a refresh, another thread's). */
int kms_client_credentials(kms_client *client, const aws_call_ctx *ctx, aws_credentials *out,
                           aws_error *err);
/* The retry policy of the client's calls (attempts, bucket, hooks). */
aws_retry_policy kms_client_retry_policy(kms_client *client);
/* The "AWS call" debug line of a finished call. */
void kms_log_call(const char *operation, long status, const char *request_id, const aws_error *err,
                  int64_t started_ms, int rc);
/* Whether a refusal for clock skew of a request signed with signed_offset is
 * worth one more, re-signed, exchange (at most once per call). */
bool kms_resign_after_skew(const aws_error *err, int64_t signed_offset, bool already_resigned);
/* A 2xx answer we could not use: AWS_ERR_BAD_RESPONSE naming the operation,
 * with the answer's status and request id; err->attempts is kept. */
void kms_bad_response(aws_error *err, const char *operation, const aws_http_response *response,
                      const char *what);

kms_client *kms_client_new_with_hooks(const aws_client_config *config,
                                      const kms_client_hooks *hooks, aws_error *err);

/* Tokens left in the client's retry bucket. */
int kms_client_retry_tokens(kms_client *client);

typedef enum {
    AWS_JSON_SERVICE_KMS,     /* TrentService.<Op>, SigV4 "kms", the KMS endpoint */
    AWS_JSON_SERVICE_TAGGING, /* ResourceGroupsTaggingAPI_20170126.<Op>, SigV4 "tagging" */
} aws_json_service;

/* The "X-Amz-Target: Service.Operation" line of a JSON 1.1 call. */
void kms_target_header(aws_json_service service, const char *operation, char *out, size_t size);

/* One JSON 1.1 call with the client's credentials, connection pool and retry
 * quota, whose 2xx answer is left undecoded in *answer (cleared by the
 * caller with aws_http_response_clear). body is consumed (a JSON text, or
 * NULL when it could not be encoded); err keeps the HTTP status, request id
 * and attempts. */
int kms_client_call(kms_client *client, const aws_call_ctx *ctx, aws_json_service service,
                    const char *operation, char *body, aws_http_response *answer, aws_error *err);

/* One JSON 1.1 call with the client's credentials, connection pool and retry
 * quota. body is consumed (a JSON text, or NULL when it could not be encoded);
 * on success *answer is the decoded JSON object (an empty object for an empty
 * body) and err keeps the HTTP status, request id and attempts. */
int kms_client_json_call(kms_client *client, const aws_call_ctx *ctx, aws_json_service service,
                         const char *operation, char *body, json_t **answer, aws_error *err);

/* The end of an asynchronous call: rc 0 with the 2xx answer in *response
 * (the callee clears it) and err holding its HTTP status, request id and
 * attempts; -1 with err. */
typedef void (*kms_async_done_fn)(void *user, int rc, aws_http_response *response, aws_error *err);

/* kms_client_json_call without holding the calling thread (kms_async.c): the
 * first attempt is prepared and signed here, with the cached credentials
 * (never waited for here: when they cannot be used now, the helper thread
 * gets them), backoff waits on a timer, and the answer arrives on the event
 * thread. body is consumed (also on failure). Returns 0 when done will run
 * exactly once: on the event thread, on the helper thread, or (when the call
 * ends before an exchange starts) on this thread before this returns. -1 with
 * err when the call cannot start (done never runs). ctx is copied;
 * *ctx->cancelled must stay valid until done runs. Needs the real HTTP layer
 * (a client whose hooks replace send cannot make asynchronous calls). */
int kms_client_json_call_start(kms_client *client, const aws_call_ctx *ctx,
                               aws_json_service service, const char *operation, char *body,
                               kms_async_done_fn done, void *user, aws_error *err);

/* Decodes a JSON array of tag objects ({key_member: s, value_member: s}; an
 * absent array is empty) into out. Returns 0, or -1 (out cleared) for a
 * malformed array or when out of memory. */
int aws_tag_set_decode(const json_t *array, const char *key_member, const char *value_member,
                       aws_tag_set *out);

#endif

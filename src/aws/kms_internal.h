/* Private seams of the KMS client for unit tests: the HTTP exchange, the
 * credentials, the environment and the retry randomness/clock/sleep can be
 * replaced, so that request encoding, answer decoding and retries are tested
 * without a network. Also the one JSON 1.1 call that kms.c and tagging.c share. */
#ifndef KM_AWS_KMS_INTERNAL_H
#define KM_AWS_KMS_INTERNAL_H

#include <jansson.h>

#include "aws/credentials.h"
#include "aws/credentials_internal.h"
#include "aws/http.h"
#include "aws/kms.h"
#include "aws/retry.h"

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

kms_client *kms_client_new_with_hooks(const aws_client_config *config,
                                      const kms_client_hooks *hooks, aws_error *err);

/* Tokens left in the client's retry bucket. */
int kms_client_retry_tokens(kms_client *client);

typedef enum {
    AWS_JSON_SERVICE_KMS,     /* TrentService.<Op>, SigV4 "kms", the KMS endpoint */
    AWS_JSON_SERVICE_TAGGING, /* ResourceGroupsTaggingAPI_20170126.<Op>, SigV4 "tagging" */
} aws_json_service;

/* One JSON 1.1 call with the client's credentials, connection pool and retry
 * quota. body is consumed (a JSON text, or NULL when it could not be encoded);
 * on success *answer is the decoded JSON object (an empty object for an empty
 * body) and err keeps the HTTP status, request id and attempts. */
int kms_client_json_call(kms_client *client, const aws_call_ctx *ctx, aws_json_service service,
                         const char *operation, char *body, json_t **answer, aws_error *err);

/* Decodes a JSON array of tag objects ({key_member: s, value_member: s}; an
 * absent array is empty) into out. Returns 0, or -1 (out cleared) for a
 * malformed array or when out of memory. */
int aws_tag_set_decode(const json_t *array, const char *key_member, const char *value_member,
                       aws_tag_set *out);

#endif

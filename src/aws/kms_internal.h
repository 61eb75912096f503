/* Private seams of the KMS client for unit tests: the HTTP exchange, the
 * credentials and the retry randomness/clock/sleep can be replaced, so that
 * request encoding, answer decoding and retries are tested without a network. */
#ifndef KM_AWS_KMS_INTERNAL_H
#define KM_AWS_KMS_INTERNAL_H

#include "aws/credentials.h"
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
} kms_client_hooks;

kms_client *kms_client_new_with_hooks(const aws_client_config *config,
                                      const kms_client_hooks *hooks, aws_error *err);

/* Tokens left in the client's retry bucket. */
int kms_client_retry_tokens(kms_client *client);

#endif

/* STS over the query protocol: the one path every STS call takes
 * (AssumeRoleWithWebIdentity and AssumeRole for the credential chain,
 * GetCallerIdentity for the key policy and the cli). A form is POSTed to the
 * STS endpoint, SigV4-signed when a signer is given, under the standard
 * retry policy (retry.h); each answer's Date teaches the skew-corrected clock,
 * and an answer refusing the request's time is signed again once. Error
 * answers are read by aws_error_from_answer (aws_json.h), the one reader of
 * AWS error bodies. */
#ifndef KM_AWS_STS_H
#define KM_AWS_STS_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/aws_error.h"
#include "aws/call_ctx.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/retry.h"
#include "aws/sigv4.h"

/* One HTTP exchange (aws_http_perform, or a caller's seam). */
typedef int (*aws_sts_send_fn)(void *user, const aws_http_request *request,
                               aws_http_response *response, aws_error *err);
/* The credentials to sign one attempt with (copied into out, wiped by the
 * caller after signing). */
typedef int (*aws_sts_signer_fn)(void *user, const aws_call_ctx *ctx, aws_credentials *out,
                                 aws_error *err);

typedef struct {
    const char *operation;        /* "AssumeRole": for errors and logs */
    const char *url;              /* the endpoint, ending in "/" */
    const aws_sigv4_scope *scope; /* NULL: unsigned (AssumeRoleWithWebIdentity) */
    const char *body;             /* the form: "Action=...&Version=2011-06-15&..." */
    size_t body_len;
    const char *user_agent; /* an extra header line, or NULL */
    bool carries_secrets;   /* credentials come back in the answer (aws_http_request) */
    aws_sts_signer_fn signer;
    void *signer_user;
    aws_sts_send_fn send;
    void *send_user;
} aws_sts_request;

/* Sends request until a 2xx answer, a non-retryable error, or the policy or
 * ctx's deadline ends the tries. Returns 0 with the 2xx answer in response
 * (the caller clears it); -1 with err (AWS's code, message, request id and
 * HTTP status for an error answer) and response cleared. err->attempts counts
 * every HTTP attempt. */
int aws_sts_post(const aws_sts_request *request, const aws_retry_policy *policy,
                 const aws_call_ctx *ctx, aws_http_response *response, aws_error *err);

#endif

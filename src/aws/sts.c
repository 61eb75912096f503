/* STS's query protocol: one signed (or unsigned) POST with the standard
 * retries and one re-sign after clock skew (see sts.h). */
#include "aws/sts.h"

#include <string.h>

#include "aws/aws_json.h"
#include "aws/clock.h"

#define QUERY_CONTENT_TYPE "Content-Type: application/x-www-form-urlencoded; charset=utf-8"

typedef struct {
    const aws_sts_request *request;
    const aws_call_ctx *ctx;
    aws_http_response *response;
    bool resigned; /* the one re-sign after clock skew is spent */
} sts_call;

/* One exchange, signed with fresh credentials when the request is signed. */
static int exchange(sts_call *call, aws_error *err)
{
    const aws_sts_request *request = call->request;
    aws_http_response_clear(call->response);
    aws_credentials credentials;
    memset(&credentials, 0, sizeof credentials);
    if (request->scope != NULL &&
        request->signer(request->signer_user, call->ctx, &credentials, err) != 0) {
        aws_credentials_clear(&credentials);
        if (err->status == AWS_OK)
            aws_error_set(err, AWS_ERR_CREDENTIALS, "no AWS credentials");
        return -1;
    }
    const char *headers[] = {QUERY_CONTENT_TYPE, request->user_agent, NULL};
    aws_http_request http = {
        .method = "POST",
        .url = request->url,
        .headers = headers,
        .body = request->body,
        .body_len = request->body_len,
        .sigv4_scope = request->scope,
        .credentials = request->scope != NULL ? &credentials : NULL,
        .call = call->ctx != NULL ? *call->ctx : (aws_call_ctx){0},
        .carries_secrets = request->carries_secrets,
    };
    int rc = request->send(request->send_user, &http, call->response, err);
    aws_credentials_clear(&credentials);
    if (rc == 0)
        aws_clock_observe(call->response->server_date, call->response->host_time, request->url);
    return rc;
}

/* One attempt of the retry loop: an exchange, and a second one re-signed
 * when a signed request was refused for a clock skew the clock now knows. */
static int attempt(void *user, aws_error *err)
{
    sts_call *call = user;
    for (;;) {
        if (exchange(call, err) != 0)
            return -1;
        const aws_http_response *response = call->response;
        if (response->status >= 200 && response->status < 300)
            return 0;
        aws_error_from_answer(call->request->operation, response->status, response->body,
                              response->request_id, err);
        if (call->request->scope == NULL || call->resigned ||
            !aws_clock_is_skew_error(err->code, err->message) ||
            !aws_clock_worth_resigning(response->clock_offset))
            return -1;
        call->resigned = true;
        int attempts = err->attempts;
        aws_error_clear(err);
        err->attempts = attempts;
    }
}

int aws_sts_post(const aws_sts_request *request, const aws_retry_policy *policy,
                 const aws_call_ctx *ctx, aws_http_response *response, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    memset(response, 0, sizeof *response);
    sts_call call = {.request = request, .ctx = ctx, .response = response};
    int rc = aws_retry_run(policy, ctx, attempt, &call, err);
    if (call.resigned)
        err->attempts++; /* the re-signed exchange was an HTTP attempt too */
    if (rc != 0)
        aws_http_response_clear(response);
    return rc;
}

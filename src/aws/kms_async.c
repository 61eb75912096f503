/* Asynchronous JSON 1.1 calls of the KMS client (kms_client_json_call_start
 * in kms_internal.h): the synchronous call's steps (kms.c) as a chain of
 * callbacks, so no thread waits while AWS answers.
 *
 *   attempt --(credentials usable now)--> aws_http_start --> on_answer
 *      |                                                      |  2xx: done
 *      +--(they must be waited for)--> helper thread          |  skew refusal, once:
 *            aws_credentials_get --> aws_http_start           |    attempt again
 *                                                             |  else: after_failure
 *   after_failure: aws_retry_plan --> timer (backoff) --> attempt | done
 *
 * The same rules as the synchronous path: standard-mode retries and the
 * client's retry bucket, a refusal for clock skew signed again once outside
 * the attempts and the bucket, every answer's Date teaching the clock. A call
 * object belongs to one thread at a time (the caller, the event thread, the
 * helper); it is handed over through the HTTP layer's queues, and whoever ends
 * it frees it before calling done, the last thing that uses the caller's
 * cancel flag. The cached credentials are copied for one attempt and wiped as
 * soon as its request is signed; when they are due for a refresh, the helper
 * thread refreshes them in the background while calls go on with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/clock.h"
#include "aws/kms_internal.h"
#include "common/clock.h"

enum {
    BACKGROUND_REFRESH_MS = 30000, /* bound of a refresh nobody waits for */
};

typedef struct {
    kms_client *client;
    aws_call_ctx ctx;
    const char *operation;
    const char *url;              /* the client's */
    const aws_sigv4_scope *scope; /* the client's */
    char target[128];
    const char *headers[4];
    char *body;
    size_t body_len;
    int attempts;      /* attempts started, the one running included */
    int tokens_held;   /* retry tokens the last retry took */
    bool skew_retried; /* the one re-signed exchange after a clock skew refusal is spent */
    int64_t started_ms;
    kms_async_done_fn done;
    void *user;
} async_call;

static void attempt(async_call *call);

static bool is_cancelled(const async_call *call)
{
    return call->ctx.cancelled != NULL && atomic_load(call->ctx.cancelled);
}

/* Ends the call: frees it, then hands the outcome to done. */
static void complete(async_call *call, int rc, aws_http_response *response, aws_error *err)
{
    err->attempts = call->attempts + (call->skew_retried ? 1 : 0);
    if (rc == 0) {
        err->http_status = (int)response->status;
        snprintf(err->request_id, sizeof err->request_id, "%s", response->request_id);
    }
    kms_log_call(call->operation, response->status, response->request_id, err, call->started_ms,
                 rc);
    kms_async_done_fn done = call->done;
    void *user = call->user;
    free(call->body);
    free(call);
    done(user, rc, response, err);
}

static void fail(async_call *call, aws_error *err)
{
    aws_http_response none;
    memset(&none, 0, sizeof none);
    complete(call, -1, &none, err);
}

static void fail_cancelled(async_call *call)
{
    aws_error err;
    aws_error_clear(&err);
    aws_error_set(&err, AWS_ERR_CANCELLED, "the call was cancelled");
    fail(call, &err);
}

static void on_backoff_over(void *user, bool cancelled)
{
    async_call *call = user;
    if (cancelled || is_cancelled(call)) {
        fail_cancelled(call);
        return;
    }
    call->attempts++;
    attempt(call);
}

/* A failed attempt: retried after its backoff (on a timer) when the policy
 * allows, else the call fails with err. */
static void after_failure(async_call *call, aws_error *err)
{
    err->attempts = call->attempts;
    aws_retry_policy policy = kms_client_retry_policy(call->client);
    int64_t delay = aws_retry_plan(&policy, &call->ctx, err, call->attempts, &call->tokens_held);
    if (delay < 0 ||
        aws_http_after(call->client->http, delay, call->ctx.cancelled, on_backoff_over, call) != 0)
        fail(call, err);
}

/* The event thread: an HTTP answer of any status, or a failed exchange. */
static void on_answer(void *user, int rc, aws_http_response *response, const aws_error *http_err)
{
    async_call *call = user;
    aws_error err = *http_err;
    if (rc != 0) {
        after_failure(call, &err);
        return;
    }
    aws_clock_observe(response->server_date, response->host_time, call->url);
    if (response->status >= 200 && response->status < 300) {
        aws_retry_policy policy = kms_client_retry_policy(call->client);
        aws_retry_succeeded(&policy, call->tokens_held);
        complete(call, 0, response, &err);
        return;
    }
    aws_error_clear(&err);
    aws_error_from_answer(call->operation, response->status, response->body, response->request_id,
                          &err);
    bool resign = kms_resign_after_skew(&err, response->clock_offset, call->skew_retried);
    aws_http_response_clear(response);
    if (resign) {
        call->skew_retried = true;
        attempt(call);
        return;
    }
    after_failure(call, &err);
}

/* Signs the attempt's request with credentials and hands it to the event thread. */
static void send_with(async_call *call, const aws_credentials *credentials)
{
    aws_http_request request = {
        .method = "POST",
        .url = call->url,
        .headers = call->headers,
        .body = call->body,
        .body_len = call->body_len,
        .sigv4_scope = call->scope,
        .credentials = credentials,
        .call = call->ctx,
    };
    aws_error err;
    aws_error_clear(&err);
    if (aws_http_start(call->client->http, &request, on_answer, call, &err) != 0)
        after_failure(call, &err);
}

/* The helper thread: waits for credentials (a refresh, maybe another
 * thread's), bounded by the call's deadline and cancellation. */
static void attempt_after_waiting(void *user)
{
    async_call *call = user;
    aws_credentials credentials;
    memset(&credentials, 0, sizeof credentials);
    aws_error err;
    aws_error_clear(&err);
    if (kms_client_credentials(call->client, &call->ctx, &credentials, &err) != 0) {
        aws_credentials_clear(&credentials);
        if (err.status == AWS_OK)
            aws_error_set(&err, AWS_ERR_CREDENTIALS, "no AWS credentials");
        after_failure(call, &err);
        return;
    }
    send_with(call, &credentials);
    aws_credentials_clear(&credentials);
}

static void refresh_in_background(void *user)
{
    kms_client *client = user;
    aws_call_ctx ctx = {.deadline_ms = clock_monotonic_ms() + BACKGROUND_REFRESH_MS,
                        .cancelled = &client->closing};
    aws_credentials_refresh_due(client->credentials, &ctx);
}

/* The credentials, when they can be had without waiting; -1 otherwise. */
static int credentials_now(async_call *call, aws_credentials *out)
{
    kms_client *client = call->client;
    if (client->hooks.get_credentials != NULL) {
        aws_error ignored;
        aws_error_clear(&ignored);
        return client->hooks.get_credentials(client->hooks.user, out, &ignored);
    }
    bool refresh_due = false;
    if (aws_credentials_peek(client->credentials, out, &refresh_due) != 0)
        return -1;
    /* Refused only while the client closes: the next blocking get refreshes. */
    if (refresh_due)
        (void)aws_http_run_blocking(client->http, refresh_in_background, client);
    return 0;
}

/* One attempt, on a thread that must not block (the caller's, the event thread). */
static void attempt(async_call *call)
{
    if (is_cancelled(call)) {
        fail_cancelled(call);
        return;
    }
    aws_credentials credentials;
    memset(&credentials, 0, sizeof credentials);
    if (credentials_now(call, &credentials) == 0) {
        send_with(call, &credentials);
        aws_credentials_clear(&credentials);
        return;
    }
    aws_credentials_clear(&credentials);
    if (aws_http_run_blocking(call->client->http, attempt_after_waiting, call) != 0) {
        aws_error err;
        aws_error_clear(&err);
        aws_error_set(&err, AWS_ERR_CANCELLED, "the AWS client is shutting down");
        fail(call, &err);
    }
}

int kms_client_json_call_start(kms_client *client, const aws_call_ctx *ctx,
                               aws_json_service service, const char *operation, char *body,
                               kms_async_done_fn done, void *user, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    aws_error_clear(err);
    async_call *call = body != NULL && client->http != NULL ? calloc(1, sizeof *call) : NULL;
    if (call == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "cannot start the %s request", operation);
        free(body);
        return -1;
    }
    bool tagging = service == AWS_JSON_SERVICE_TAGGING;
    call->client = client;
    if (ctx != NULL)
        call->ctx = *ctx;
    call->operation = operation;
    call->url = tagging ? client->tagging_endpoint : client->endpoint;
    call->scope = tagging ? &client->tagging_scope : &client->kms_scope;
    kms_target_header(service, operation, call->target, sizeof call->target);
    call->headers[0] = call->target;
    call->headers[1] = KMS_JSON_CONTENT_TYPE;
    call->headers[2] = KMS_USER_AGENT;
    call->headers[3] = NULL;
    call->body = body;
    call->body_len = strlen(body);
    call->attempts = 1;
    call->started_ms = clock_monotonic_ms();
    call->done = done;
    call->user = user;
    attempt(call);
    return 0;
}

int kms_client_run_blocking(kms_client *client, void (*fn)(void *user), void *user)
{
    return client->http != NULL ? aws_http_run_blocking(client->http, fn, user) : -1;
}

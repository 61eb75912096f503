/* The HTTP layer's API (http.h), run on the callers' threads: an exchange's
 * header lines are written and signed here (SigV4 is ours, sigv4.h: curl's
 * own signer cost more CPU than everything else in a SignData together), on
 * the skew-corrected clock (clock.h), then the exchange goes to the event
 * thread (http_loop.c). The synchronous aws_http_perform waits for it; the
 * helper thread runs the blocking steps of asynchronous calls. Secrets do not
 * outlive the exchange: curl frees through the wiping allocator
 * (common/secrets.h), and our header lines and response bodies are wiped
 * before they are freed. */
#include "aws/http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/clock.h"
#include "aws/http_internal.h"
#include "common/clock.h"
#include "common/secrets.h"

#define DEFAULT_POOL_SIZE          8
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 15000
#define MAX_REQUEST_HEADERS        16

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

/* curl's copies of our headers (the session and container tokens) and of
 * the answers (credentials) are wiped when curl frees them. */
static void curl_global_setup(void)
{
    curl_init_result = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, secret_free,
                                            secret_realloc, strdup, calloc);
}

/* --- lifetime ------------------------------------------------------------------------ */

static int copy_options(aws_http *http, const aws_http_options *options)
{
    http->pool_size = options && options->pool_size ? options->pool_size : DEFAULT_POOL_SIZE;
    http->connect_timeout_ms = options && options->connect_timeout_ms > 0
                                   ? options->connect_timeout_ms
                                   : DEFAULT_CONNECT_TIMEOUT_MS;
    http->request_timeout_ms = options && options->request_timeout_ms > 0
                                   ? options->request_timeout_ms
                                   : DEFAULT_REQUEST_TIMEOUT_MS;
    if (options && options->ca_bundle && options->ca_bundle[0] &&
        (http->ca_bundle = strdup(options->ca_bundle)) == NULL)
        return -1;
    return 0;
}

/* Frees what aws_http_new set up, once the event thread is stopped (or was
 * never started). */
static void http_destroy(aws_http *http)
{
    http_loop_free(http);
    aws_sigv4_cache_destroy(&http->sigv4);
    pthread_cond_destroy(&http->helper_wake);
    pthread_mutex_destroy(&http->helper_lock);
    pthread_mutex_destroy(&http->lock);
    free(http->ca_bundle);
    free(http);
}

aws_http *aws_http_new(const aws_http_options *options)
{
    pthread_once(&curl_once, curl_global_setup);
    if (curl_init_result != CURLE_OK)
        return NULL;
    aws_http *http = calloc(1, sizeof *http);
    if (http == NULL)
        return NULL;
    http->wake_fd = -1;
    pthread_mutex_init(&http->lock, NULL);
    pthread_mutex_init(&http->helper_lock, NULL);
    pthread_cond_init(&http->helper_wake, NULL);
    aws_sigv4_cache_init(&http->sigv4);
    if (copy_options(http, options) != 0 || http_loop_start(http) != 0) {
        http_destroy(http);
        return NULL;
    }
    return http;
}

static void helper_stop(aws_http *http)
{
    pthread_mutex_lock(&http->helper_lock);
    http->helper_stopping = true;
    bool started = http->helper_started;
    pthread_cond_signal(&http->helper_wake);
    pthread_mutex_unlock(&http->helper_lock);
    if (started)
        pthread_join(http->helper, NULL);
}

void aws_http_free(aws_http *http)
{
    if (http == NULL)
        return;
    helper_stop(http); /* its queued jobs still use the event thread */
    http_loop_stop(http);
    http_destroy(http);
}

long aws_http_requests_made(aws_http *http) { return atomic_load(&http->requests); }

long aws_http_connections_opened(aws_http *http) { return atomic_load(&http->connects); }

bool aws_http_on_event_thread(const aws_http *http)
{
    return pthread_equal(pthread_self(), http->thread) != 0;
}

/* --- preparing an exchange ---------------------------------------------------------------- */

/* Time allowed for this exchange: the request timeout, cut to the deadline.
 * Returns 0 when the deadline has passed. */
static long effective_timeout_ms(const aws_http *http, const aws_http_request *request)
{
    long timeout = request->timeout_ms > 0 ? request->timeout_ms : http->request_timeout_ms;
    if (request->call.deadline_ms > 0) {
        int64_t left = request->call.deadline_ms - clock_monotonic_ms();
        if (left <= 0)
            return 0;
        if (left < timeout)
            timeout = (long)left;
    }
    return timeout;
}

void http_free_header_block(http_exchange *exchange)
{
    if (exchange->headers == NULL)
        return;
    secret_wipe(exchange->headers, exchange->headers_size);
    free(exchange->headers);
    exchange->headers = NULL;
    exchange->headers_size = 0;
}

/* Copies lines into one block of curl_slist nodes followed by the text, which
 * curl reads as CURLOPT_HTTPHEADER and we wipe and free whole. */
static int make_header_block(http_exchange *exchange, const char *const *lines, size_t count)
{
    if (count == 0)
        return 0;
    size_t size = count * sizeof(struct curl_slist);
    for (size_t i = 0; i < count; i++)
        size += strlen(lines[i]) + 1;
    struct curl_slist *nodes = malloc(size);
    if (nodes == NULL)
        return -1;
    char *text = (char *)(nodes + count);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(lines[i]) + 1;
        memcpy(text, lines[i], len);
        nodes[i].data = text;
        nodes[i].next = i + 1 < count ? &nodes[i + 1] : NULL;
        text += len;
    }
    exchange->headers = nodes;
    exchange->headers_size = size;
    return 0;
}

static int sign(aws_http *http, const aws_http_request *request, const char *const *lines,
                int64_t clock_offset, aws_sigv4_headers *out)
{
    aws_sigv4_input input = {.method = request->method ? request->method : "GET",
                             .url = request->url,
                             .headers = lines,
                             .body = request->body,
                             .body_len = request->body ? request->body_len : 0,
                             .scope = request->sigv4_scope,
                             .access_key_id = request->credentials->access_key_id,
                             .secret_access_key = request->credentials->secret_access_key,
                             .now = (time_t)((int64_t)time(NULL) + clock_offset)};
    return aws_sigv4_sign(&http->sigv4, &input, out);
}

/* The caller's headers, the session token and, when signing, the SigV4
 * lines (Host, X-Amz-Date, Authorization), in the exchange's header block.
 * Returns 0, or -1 with err set. */
static int build_headers(aws_http *http, const aws_http_request *request, int64_t clock_offset,
                         http_exchange *exchange, aws_error *err)
{
    /* No "Expect:" removal line here: it would be a signed header never sent.
     * Bodies stay far below curl's 100-continue threshold. */
    const char *lines[MAX_REQUEST_HEADERS + 5];
    size_t count = 0;
    for (const char *const *h = request->headers; h != NULL && *h != NULL; h++) {
        if (count == MAX_REQUEST_HEADERS) {
            aws_error_set(err, AWS_ERR_INTERNAL, "too many HTTP headers");
            return -1;
        }
        lines[count++] = *h;
    }
    bool signing = request->sigv4_scope != NULL && request->credentials != NULL;
    char token[sizeof request->credentials->session_token + 32];
    if (signing && request->credentials->session_token[0] != '\0') {
        snprintf(token, sizeof token, "X-Amz-Security-Token: %s",
                 request->credentials->session_token);
        lines[count++] = token;
    }
    lines[count] = NULL;
    aws_sigv4_headers signature;
    int rc = 0;
    if (signing && sign(http, request, lines, clock_offset, &signature) != 0) {
        aws_error_set(err, AWS_ERR_INTERNAL, "cannot sign the request (SigV4)");
        rc = -1;
    } else {
        if (signing) {
            lines[count++] = signature.host;
            lines[count++] = signature.date;
            lines[count++] = signature.authorization;
        }
        if (make_header_block(exchange, lines, count) != 0) {
            aws_error_set(err, AWS_ERR_INTERNAL, "out of memory building HTTP headers");
            rc = -1;
        }
    }
    if (signing && request->credentials->session_token[0] != '\0')
        secret_wipe(token, sizeof token);
    return rc;
}

int aws_http_start(aws_http *http, const aws_http_request *request, aws_http_done_fn done,
                   void *user, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    long timeout_ms = effective_timeout_ms(http, request);
    if (timeout_ms <= 0) {
        aws_error_set(err, AWS_ERR_TIMEOUT, "deadline exceeded before the HTTP request");
        return -1;
    }
    http_exchange *exchange = calloc(1, sizeof *exchange);
    if (exchange == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory");
        return -1;
    }
    exchange->response.clock_offset = aws_clock_offset();
    if (build_headers(http, request, exchange->response.clock_offset, exchange, err) != 0) {
        free(exchange);
        return -1;
    }
    exchange->method = request->method;
    exchange->url = request->url;
    exchange->body = request->body;
    exchange->body_len = request->body ? request->body_len : 0;
    exchange->timeout_ms = timeout_ms;
    exchange->cancelled = request->call.cancelled;
    exchange->carries_secrets = request->carries_secrets;
    exchange->done = done;
    exchange->user = user;
    if (http_loop_submit(http, exchange, NULL) != 0) {
        http_free_header_block(exchange);
        free(exchange);
        aws_error_set(err, AWS_ERR_CANCELLED, "the HTTP client is shutting down");
        return -1;
    }
    return 0;
}

/* --- the synchronous exchange ------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t finished;
    bool done;
    int rc;
    aws_http_response response;
    aws_error err;
} sync_wait;

static void wake_waiter(void *user, int rc, aws_http_response *response, const aws_error *err)
{
    sync_wait *wait = user;
    pthread_mutex_lock(&wait->lock);
    wait->rc = rc;
    wait->response = *response;
    wait->err = *err;
    wait->done = true;
    pthread_cond_signal(&wait->finished);
    pthread_mutex_unlock(&wait->lock);
}

int aws_http_perform(aws_http *http, const aws_http_request *request, aws_http_response *response,
                     aws_error *err)
{
    memset(response, 0, sizeof *response);
    if (aws_http_on_event_thread(http)) {
        aws_error_set(err, AWS_ERR_INTERNAL,
                      "a synchronous HTTP exchange on the HTTP event thread would never end");
        return -1;
    }
    sync_wait wait = {.done = false};
    pthread_mutex_init(&wait.lock, NULL);
    pthread_cond_init(&wait.finished, NULL);
    int rc = aws_http_start(http, request, wake_waiter, &wait, err);
    if (rc == 0) {
        pthread_mutex_lock(&wait.lock);
        while (!wait.done)
            pthread_cond_wait(&wait.finished, &wait.lock);
        pthread_mutex_unlock(&wait.lock);
        rc = wait.rc;
        *response = wait.response;
        if (rc != 0 && err != NULL)
            *err = wait.err;
    }
    pthread_cond_destroy(&wait.finished);
    pthread_mutex_destroy(&wait.lock);
    return rc;
}

void aws_http_response_clear(aws_http_response *response)
{
    if (response == NULL)
        return;
    secret_wipe(response->body, response->body_len);
    free(response->body);
    memset(response, 0, sizeof *response);
}

/* --- timers and the helper thread ----------------------------------------------------------- */

int aws_http_after(aws_http *http, int64_t delay_ms, const atomic_bool *cancelled,
                   aws_http_timer_fn fn, void *user)
{
    http_timer *timer = calloc(1, sizeof *timer);
    if (timer == NULL)
        return -1;
    timer->due_ms = clock_monotonic_ms() + (delay_ms > 0 ? delay_ms : 0);
    timer->cancelled = cancelled;
    timer->fn = fn;
    timer->user = user;
    if (http_loop_submit(http, NULL, timer) != 0) {
        free(timer);
        return -1;
    }
    return 0;
}

static void *helper_main(void *arg)
{
    aws_http *http = arg;
    pthread_mutex_lock(&http->helper_lock);
    for (;;) {
        while (http->jobs == NULL && !http->helper_stopping)
            pthread_cond_wait(&http->helper_wake, &http->helper_lock);
        http_job *job = http->jobs;
        if (job == NULL)
            break; /* stopping, and every queued job has run */
        http->jobs = job->next;
        if (http->jobs == NULL)
            http->jobs_tail = NULL;
        pthread_mutex_unlock(&http->helper_lock);
        job->fn(job->user);
        free(job);
        pthread_mutex_lock(&http->helper_lock);
    }
    pthread_mutex_unlock(&http->helper_lock);
    secret_scrub_stack(); /* credential refreshes ran here */
    return NULL;
}

int aws_http_run_blocking(aws_http *http, void (*fn)(void *user), void *user)
{
    http_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return -1;
    job->fn = fn;
    job->user = user;
    int rc = 0;
    pthread_mutex_lock(&http->helper_lock);
    if (http->helper_stopping) {
        rc = -1;
    } else if (!http->helper_started) {
        if (pthread_create(&http->helper, NULL, helper_main, http) == 0)
            http->helper_started = true;
        else
            rc = -1;
    }
    if (rc == 0) {
        if (http->jobs_tail != NULL)
            http->jobs_tail->next = job;
        else
            http->jobs = job;
        http->jobs_tail = job;
        pthread_cond_signal(&http->helper_wake);
    }
    pthread_mutex_unlock(&http->helper_lock);
    if (rc != 0)
        free(job);
    return rc;
}

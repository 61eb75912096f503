/* HTTPS on libcurl for the AWS layer: a fixed pool of easy handles, each
 * keeping its keep-alive connection between requests, shared by all threads
 * (take/return under a mutex and condition variable). TLS verification is
 * always on; proxies come from the standard environment variables, which
 * libcurl reads itself; SigV4 signing is ours (sigv4.h: curl's own signer
 * cost more CPU than everything else in a SignData together), on the
 * skew-corrected clock (clock.h). Secrets do not outlive the exchange: curl
 * frees through the wiping allocator (common/secrets.h), our header lines
 * and response bodies are wiped before they are freed. */
#include "aws/http.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/clock.h"
#include "aws/sigv4.h"
#include "common/secrets.h"

#define DEFAULT_POOL_SIZE          8
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 15000
#define MAX_REQUEST_HEADERS        16
#define MAX_RESPONSE_BYTES         (8u * 1024u * 1024u)

struct aws_http {
    size_t pool_size;
    int connect_timeout_ms;
    int request_timeout_ms;
    char *ca_bundle;
    pthread_mutex_t lock;
    pthread_cond_t handle_returned;
    CURL **idle;       /* stack of idle handles */
    size_t idle_count; /* handles on the stack */
    size_t created;    /* handles created so far (<= pool_size) */
    atomic_long requests;
    atomic_long connects;
    aws_sigv4_cache sigv4;
};

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool too_large;
} body_buffer;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_OK;

/* curl's copies of our headers (the session and container tokens) and of
 * the answers (credentials) are wiped when curl frees them. */
static void curl_global_setup(void)
{
    curl_init_result = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, secret_free,
                                            secret_realloc, strdup, calloc);
}

int64_t aws_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

aws_http *aws_http_new(const aws_http_options *options)
{
    pthread_once(&curl_once, curl_global_setup);
    if (curl_init_result != CURLE_OK)
        return NULL;
    aws_http *http = calloc(1, sizeof *http);
    if (http == NULL)
        return NULL;
    http->pool_size = options && options->pool_size ? options->pool_size : DEFAULT_POOL_SIZE;
    http->connect_timeout_ms = options && options->connect_timeout_ms > 0
                                   ? options->connect_timeout_ms
                                   : DEFAULT_CONNECT_TIMEOUT_MS;
    http->request_timeout_ms = options && options->request_timeout_ms > 0
                                   ? options->request_timeout_ms
                                   : DEFAULT_REQUEST_TIMEOUT_MS;
    if (options && options->ca_bundle && options->ca_bundle[0])
        http->ca_bundle = strdup(options->ca_bundle);
    http->idle = calloc(http->pool_size, sizeof *http->idle);
    if (http->idle == NULL ||
        (options && options->ca_bundle && options->ca_bundle[0] && http->ca_bundle == NULL)) {
        free(http->idle);
        free(http->ca_bundle);
        free(http);
        return NULL;
    }
    pthread_mutex_init(&http->lock, NULL);
    pthread_cond_init(&http->handle_returned, NULL);
    aws_sigv4_cache_init(&http->sigv4);
    return http;
}

void aws_http_free(aws_http *http)
{
    if (http == NULL)
        return;
    for (size_t i = 0; i < http->idle_count; i++)
        curl_easy_cleanup(http->idle[i]);
    pthread_cond_destroy(&http->handle_returned);
    pthread_mutex_destroy(&http->lock);
    aws_sigv4_cache_destroy(&http->sigv4);
    free(http->idle);
    free(http->ca_bundle);
    free(http);
}

long aws_http_requests_made(aws_http *http) { return atomic_load(&http->requests); }

long aws_http_connections_opened(aws_http *http) { return atomic_load(&http->connects); }

/* Takes an idle handle (or creates one while the pool is not full); waits for
 * one to be returned otherwise. */
static CURL *take_handle(aws_http *http)
{
    CURL *curl = NULL;
    pthread_mutex_lock(&http->lock);
    for (;;) {
        if (http->idle_count > 0) {
            curl = http->idle[--http->idle_count];
            break;
        }
        if (http->created < http->pool_size) {
            curl = curl_easy_init();
            if (curl != NULL)
                http->created++;
            break;
        }
        pthread_cond_wait(&http->handle_returned, &http->lock);
    }
    pthread_mutex_unlock(&http->lock);
    return curl;
}

static void return_handle(aws_http *http, CURL *curl)
{
    pthread_mutex_lock(&http->lock);
    http->idle[http->idle_count++] = curl;
    pthread_cond_signal(&http->handle_returned);
    pthread_mutex_unlock(&http->lock);
}

/* Frees a handle instead of keeping it (its buffers held secrets; curl frees
 * through secret_free) and lets a new one be created in its place. */
static void discard_handle(aws_http *http, CURL *curl)
{
    curl_easy_cleanup(curl);
    pthread_mutex_lock(&http->lock);
    http->created--;
    pthread_cond_signal(&http->handle_returned);
    pthread_mutex_unlock(&http->lock);
}

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    body_buffer *buffer = user;
    size_t n = size * count;
    if (buffer->len + n > MAX_RESPONSE_BYTES) {
        buffer->too_large = true;
        return 0;
    }
    if (buffer->len + n + 1 > buffer->cap) {
        size_t cap = buffer->cap ? buffer->cap : 1024;
        while (cap < buffer->len + n + 1)
            cap *= 2;
        char *grown = secret_realloc(buffer->data, cap); /* the old block may hold credentials */
        if (grown == NULL)
            return 0;
        buffer->data = grown;
        buffer->cap = cap;
    }
    memcpy(buffer->data + buffer->len, data, n);
    buffer->len += n;
    buffer->data[buffer->len] = '\0';
    return n;
}

/* Copies the value of header line (name_len bytes of name and colon first),
 * blanks and line break trimmed, cut to out_size. */
static void header_value(const char *line, size_t n, size_t name_len, char *out, size_t out_size)
{
    const char *value = line + name_len;
    size_t value_len = n - name_len;
    while (value_len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        value_len--;
    }
    while (value_len > 0 && (value[value_len - 1] == '\r' || value[value_len - 1] == '\n' ||
                             value[value_len - 1] == ' '))
        value_len--;
    if (value_len >= out_size)
        value_len = out_size - 1;
    memcpy(out, value, value_len);
    out[value_len] = '\0';
}

static bool header_is(const char *line, size_t n, const char *name)
{
    size_t name_len = strlen(name);
    return n > name_len && strncasecmp(line, name, name_len) == 0;
}

/* Keeps x-amzn-RequestId (or x-amz-request-id), and the Date with the host
 * time it arrived at (clock skew, clock.h), from the response headers. */
static size_t on_header(char *line, size_t size, size_t count, void *user)
{
    aws_http_response *response = user;
    size_t n = size * count;
    static const char *const names[] = {"x-amzn-requestid:", "x-amz-request-id:"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (header_is(line, n, names[i]))
            header_value(line, n, strlen(names[i]), response->request_id,
                         sizeof response->request_id);
    }
    if (header_is(line, n, "date:")) {
        char date[64];
        header_value(line, n, strlen("date:"), date, sizeof date);
        if (aws_clock_parse_http_date(date, &response->server_date) == 0)
            response->host_time = (int64_t)time(NULL);
        else
            response->server_date = 0;
    }
    return n;
}

/* Time allowed for this exchange: the request timeout, cut to the deadline.
 * Returns 0 when the deadline has passed. */
static long effective_timeout_ms(const aws_http *http, const aws_http_request *request)
{
    long timeout = request->timeout_ms > 0 ? request->timeout_ms : http->request_timeout_ms;
    if (request->deadline_ms > 0) {
        int64_t left = request->deadline_ms - aws_monotonic_ms();
        if (left <= 0)
            return 0;
        if (left < timeout)
            timeout = (long)left;
    }
    return timeout;
}

/* Appends lines to *list; false when out of memory. */
static bool append_lines(struct curl_slist **list, const char *const *lines)
{
    for (const char *const *line = lines; *line != NULL; line++) {
        struct curl_slist *next = curl_slist_append(*list, *line);
        if (next == NULL)
            return false;
        *list = next;
    }
    return true;
}

/* The "X-Amz-Security-Token: ..." line, or NULL (none, or out of memory:
 * *failed tells). The caller wipes and frees it. */
static char *token_line(const aws_http_request *request, bool *failed)
{
    *failed = false;
    if (request->sigv4_scope == NULL || request->credentials == NULL ||
        request->credentials->session_token[0] == '\0')
        return NULL;
    size_t len = strlen(request->credentials->session_token) + 32;
    char *line = malloc(len);
    if (line == NULL)
        *failed = true;
    else
        snprintf(line, len, "X-Amz-Security-Token: %s", request->credentials->session_token);
    return line;
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

/* Frees a header list after wiping every line: the session token and the
 * container's Authorization header are among them. */
static void free_header_lines(struct curl_slist *list)
{
    for (struct curl_slist *item = list; item != NULL; item = item->next)
        secret_wipe(item->data, strlen(item->data));
    curl_slist_free_all(list);
}

/* The caller's headers, the session token and, when signing, the SigV4
 * lines (Host, X-Amz-Date, Authorization); *out is NULL when there are none.
 * Returns 0, or -1 with err set. */
static int build_headers(aws_http *http, const aws_http_request *request, int64_t clock_offset,
                         struct curl_slist **out, aws_error *err)
{
    /* No "Expect:" removal line here: it would be signed but never sent.
     * Bodies stay far below curl's 100-continue threshold. */
    const char *lines[MAX_REQUEST_HEADERS + 2];
    size_t count = 0;
    for (const char *const *h = request->headers; h != NULL && *h != NULL; h++) {
        if (count == MAX_REQUEST_HEADERS) {
            aws_error_set(err, AWS_ERR_INTERNAL, "too many HTTP headers");
            return -1;
        }
        lines[count++] = *h;
    }
    bool failed;
    char *token = token_line(request, &failed);
    if (token != NULL)
        lines[count++] = token;
    lines[count] = NULL;
    bool signing = request->sigv4_scope != NULL && request->credentials != NULL;
    aws_sigv4_headers signature;
    struct curl_slist *list = NULL;
    int rc = failed ? -1 : 0;
    if (rc == 0 && signing && sign(http, request, lines, clock_offset, &signature) != 0) {
        aws_error_set(err, AWS_ERR_INTERNAL, "cannot sign the request (SigV4)");
        rc = -1;
    } else if (rc == 0) {
        const char *signature_lines[] = {signature.host, signature.date, signature.authorization,
                                         NULL};
        if (!append_lines(&list, lines) || (signing && !append_lines(&list, signature_lines)))
            rc = -1;
        if (rc != 0)
            aws_error_set(err, AWS_ERR_INTERNAL, "out of memory building HTTP headers");
    }
    if (failed)
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory building HTTP headers");
    if (token != NULL) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    if (rc != 0)
        free_header_lines(list);
    *out = rc == 0 ? list : NULL;
    return rc;
}

static void set_method_and_body(CURL *curl, const aws_http_request *request)
{
    const char *method = request->method ? request->method : "GET";
    if (strcmp(method, "GET") == 0 && request->body == NULL) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        return;
    }
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request->body ? request->body : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(request->body ? request->body_len : 0));
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
}

/* curl's progress callback: a non-zero answer aborts the transfer, so a
 * cancelled call (shutdown, client gone) stops waiting on the network. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const atomic_bool *cancelled = user;
    return cancelled != NULL && atomic_load(cancelled) ? 1 : 0;
}

static void configure(aws_http *http, CURL *curl, const aws_http_request *request,
                      struct curl_slist *headers, long timeout_ms, char *errbuf)
{
    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (http->ca_bundle != NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, http->ca_bundle);
    curl_easy_setopt(
        curl, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(http->connect_timeout_ms < timeout_ms ? http->connect_timeout_ms : timeout_ms));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (request->cancelled != NULL) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)request->cancelled);
    }
    set_method_and_body(curl, request);
}

static void report_curl_failure(CURLcode code, const char *errbuf, const body_buffer *body,
                                aws_error *err)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(code);
    if (body->too_large)
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "HTTP response larger than %u bytes",
                      MAX_RESPONSE_BYTES);
    else if (code == CURLE_ABORTED_BY_CALLBACK)
        aws_error_set(err, AWS_ERR_CANCELLED, "the call was cancelled");
    else if (code == CURLE_OPERATION_TIMEDOUT)
        aws_error_set(err, AWS_ERR_TIMEOUT, "HTTP request timed out: %s", detail);
    else
        aws_error_set(err, AWS_ERR_TRANSPORT, "HTTP request failed: %s", detail);
}

int aws_http_perform(aws_http *http, const aws_http_request *request, aws_http_response *response,
                     aws_error *err)
{
    memset(response, 0, sizeof *response);
    long timeout_ms = effective_timeout_ms(http, request);
    if (timeout_ms <= 0) {
        aws_error_set(err, AWS_ERR_TIMEOUT, "deadline exceeded before the HTTP request");
        return -1;
    }
    struct curl_slist *headers = NULL;
    response->clock_offset = aws_clock_offset();
    if (build_headers(http, request, response->clock_offset, &headers, err) != 0)
        return -1;
    CURL *curl = take_handle(http);
    if (curl == NULL) {
        free_header_lines(headers);
        aws_error_set(err, AWS_ERR_INTERNAL, "cannot create a curl handle");
        return -1;
    }
    /* Reset keeps the handle's connection cache: that is the keep-alive. */
    curl_easy_reset(curl);
    char errbuf[CURL_ERROR_SIZE] = "";
    body_buffer body = {0};
    configure(http, curl, request, headers, timeout_ms, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
    CURLcode code = curl_easy_perform(curl);
    long connects = 0;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
    /* The header list (session token included) is freed below. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    if (request->carries_secrets)
        discard_handle(http, curl);
    else
        return_handle(http, curl);
    free_header_lines(headers);
    atomic_fetch_add(&http->requests, 1);
    atomic_fetch_add(&http->connects, connects);
    response->new_connections = connects;
    if (code != CURLE_OK) {
        report_curl_failure(code, errbuf, &body, err);
        secret_wipe(body.data, body.len);
        free(body.data);
        response->body = NULL;
        response->status = 0;
        return -1;
    }
    response->body = body.data ? body.data : calloc(1, 1);
    response->body_len = body.len;
    if (response->body == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory reading the HTTP response");
        return -1;
    }
    return 0;
}

void aws_http_response_clear(aws_http_response *response)
{
    if (response == NULL)
        return;
    secret_wipe(response->body, response->body_len);
    free(response->body);
    memset(response, 0, sizeof *response);
}

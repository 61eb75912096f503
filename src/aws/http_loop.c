/* The event thread of the HTTP layer (http_internal.h): one libcurl multi
 * handle drives every exchange of an aws_http, so connections (the multi's
 * connection cache) and TLS sessions (a share) are reused by all of them.
 * The thread waits in curl_multi_poll, woken through an eventfd among the
 * descriptors it polls when another thread hands it work while it sleeps
 * (one write and one read: curl_multi_wakeup's socket pair costs a send and
 * two reads). Besides the exchanges it runs timers
 * (retry backoff), and every CANCEL_SCAN_MS, while something cancellable is
 * pending, it looks at the cancellation flags: a cancelled exchange is taken
 * out of the multi handle (curl closes its connection) and ends as
 * AWS_ERR_CANCELLED; a cancelled timer fires early. Deadlines are curl's
 * timeouts, cut to the call's deadline when the exchange was prepared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "aws/clock.h"
#include "aws/http_internal.h"
#include "common/clock.h"
#include "common/secrets.h"

enum {
    CANCEL_SCAN_MS = 50,  /* how soon a cancelled call's exchange or timer ends */
    IDLE_WAIT_MS = 60000, /* the longest sleep with nothing due */
    /* curl's receive buffer, allocated and (wiped and) freed by every
     * transfer: 16 KiB by default, while a KMS answer is mostly far smaller */
    RECEIVE_BUFFER_BYTES = 4096,
};

#define MAX_RESPONSE_BYTES (8u * 1024u * 1024u)

/* --- curl callbacks (event thread) ------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    http_body_buffer *buffer = user;
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

static bool header_is(const char *line, size_t n, const char *name, size_t name_len)
{
    return n > name_len && strncasecmp(line, name, name_len) == 0;
}

/* Keeps x-amzn-RequestId (or x-amz-request-id), and the Date with the host
 * time it arrived at (clock skew, clock.h), from the response headers. */
static size_t on_header(char *line, size_t size, size_t count, void *user)
{
    static const char request_id[] = "x-amzn-requestid:";
    static const char s3_request_id[] = "x-amz-request-id:";
    static const char date_name[] = "date:";
    aws_http_response *response = user;
    size_t n = size * count;
    if (n < sizeof date_name ||
        (line[0] != 'x' && line[0] != 'X' && line[0] != 'd' && line[0] != 'D'))
        return n;
    if (header_is(line, n, request_id, sizeof request_id - 1))
        header_value(line, n, sizeof request_id - 1, response->request_id,
                     sizeof response->request_id);
    else if (header_is(line, n, s3_request_id, sizeof s3_request_id - 1))
        header_value(line, n, sizeof s3_request_id - 1, response->request_id,
                     sizeof response->request_id);
    else if (header_is(line, n, date_name, sizeof date_name - 1)) {
        char date[64];
        header_value(line, n, sizeof date_name - 1, date, sizeof date);
        if (aws_clock_parse_http_date(date, &response->server_date) == 0)
            response->host_time = (int64_t)time(NULL);
        else
            response->server_date = 0;
    }
    return n;
}

/* --- easy handles ---------------------------------------------------------------- */

static CURL *new_easy(aws_http *http)
{
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return NULL;
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (http->ca_bundle != NULL)
        curl_easy_setopt(easy, CURLOPT_CAINFO, http->ca_bundle);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)RECEIVE_BUFFER_BYTES);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    if (http->share != NULL)
        curl_easy_setopt(easy, CURLOPT_SHARE, http->share);
    return easy;
}

static CURL *take_easy(aws_http *http)
{
    if (http->idle_count > 0)
        return http->idle[--http->idle_count];
    return new_easy(http);
}

/* Keeps a handle for the next exchange, unless its buffers held secrets (curl
 * frees through secret_free, which wipes) or enough are kept. */
static void put_easy_back(aws_http *http, CURL *easy, bool discard)
{
    if (!discard && http->idle_count < http->pool_size)
        http->idle[http->idle_count++] = easy;
    else
        curl_easy_cleanup(easy);
}

static void set_method_and_body(CURL *easy, const http_exchange *exchange)
{
    const char *method = exchange->method ? exchange->method : "GET";
    if (strcmp(method, "GET") == 0 && exchange->body == NULL) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, NULL);
        return;
    }
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, exchange->body ? exchange->body : "");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(exchange->body ? exchange->body_len : 0));
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") != 0 ? method : NULL);
}

static void active_add(aws_http *http, http_exchange *exchange)
{
    exchange->prev = NULL;
    exchange->next = http->active;
    if (http->active != NULL)
        http->active->prev = exchange;
    http->active = exchange;
}

static void active_remove(aws_http *http, http_exchange *exchange)
{
    if (exchange->prev != NULL)
        exchange->prev->next = exchange->next;
    else
        http->active = exchange->next;
    if (exchange->next != NULL)
        exchange->next->prev = exchange->prev;
    exchange->prev = exchange->next = NULL;
}

/* --- ending an exchange ------------------------------------------------------------ */

static void report_curl_failure(CURLcode code, const http_exchange *exchange, aws_error *err)
{
    const char *detail = exchange->errbuf[0] ? exchange->errbuf : curl_easy_strerror(code);
    if (exchange->received.too_large)
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "HTTP response larger than %u bytes",
                      MAX_RESPONSE_BYTES);
    else if (code == CURLE_OPERATION_TIMEDOUT)
        aws_error_set(err, AWS_ERR_TIMEOUT, "HTTP request timed out: %s", detail);
    else
        aws_error_set(err, AWS_ERR_TRANSPORT, "HTTP request failed: %s", detail);
}

typedef enum { ENDED_BY_CURL, ENDED_CANCELLED, ENDED_NOT_STARTED } end_kind;

/* Takes the exchange out of the multi handle, gives its answer (or error) to
 * its done callback and frees it. */
static void finish(aws_http *http, http_exchange *exchange, end_kind kind, CURLcode code)
{
    aws_error err;
    aws_error_clear(&err);
    aws_http_response *response = &exchange->response;
    if (exchange->easy != NULL) {
        curl_multi_remove_handle(http->multi, exchange->easy);
        long connects = 0;
        curl_easy_getinfo(exchange->easy, CURLINFO_NUM_CONNECTS, &connects);
        curl_easy_getinfo(exchange->easy, CURLINFO_RESPONSE_CODE, &response->status);
        curl_easy_setopt(exchange->easy, CURLOPT_HTTPHEADER, NULL); /* the block is freed below */
        put_easy_back(http, exchange->easy, exchange->carries_secrets);
        exchange->easy = NULL;
        active_remove(http, exchange);
        atomic_fetch_add(&http->requests, 1);
        atomic_fetch_add(&http->connects, connects);
        response->new_connections = connects;
    }
    http_free_header_block(exchange);
    int rc = -1;
    if (kind == ENDED_CANCELLED)
        aws_error_set(&err, AWS_ERR_CANCELLED, "the call was cancelled");
    else if (kind == ENDED_NOT_STARTED)
        aws_error_set(&err, AWS_ERR_INTERNAL, "cannot start the HTTP exchange");
    else if (code != CURLE_OK)
        report_curl_failure(code, exchange, &err);
    else if ((response->body = exchange->received.data ? exchange->received.data : calloc(1, 1)) ==
             NULL)
        aws_error_set(&err, AWS_ERR_INTERNAL, "out of memory reading the HTTP response");
    else {
        response->body_len = exchange->received.len;
        exchange->received.data = NULL;
        rc = 0;
    }
    if (rc != 0) {
        secret_wipe(exchange->received.data, exchange->received.len);
        free(exchange->received.data);
        response->body = NULL;
        response->body_len = 0;
        response->status = 0;
    }
    if (exchange->carries_secrets)
        secret_scrub_stack(); /* curl's work on the token and the answer left residue */
    exchange->done(exchange->user, rc, response, &err);
    free(exchange);
}

/* --- starting an exchange ------------------------------------------------------------ */

static void begin(aws_http *http, http_exchange *exchange)
{
    CURL *easy = take_easy(http);
    if (easy == NULL) {
        finish(http, exchange, ENDED_NOT_STARTED, CURLE_OK);
        return;
    }
    exchange->errbuf[0] = '\0';
    curl_easy_setopt(easy, CURLOPT_URL, exchange->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, exchange->headers);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, exchange->errbuf);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, exchange->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(http->connect_timeout_ms < exchange->timeout_ms
                                ? http->connect_timeout_ms
                                : exchange->timeout_ms));
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &exchange->received);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &exchange->response);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, exchange);
    set_method_and_body(easy, exchange);
    if (curl_multi_add_handle(http->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
        put_easy_back(http, easy, true);
        finish(http, exchange, ENDED_NOT_STARTED, CURLE_OK);
        return;
    }
    exchange->easy = easy;
    active_add(http, exchange);
}

/* --- timers --------------------------------------------------------------------------- */

static void timer_insert(aws_http *http, http_timer *timer)
{
    http_timer **at = &http->timers;
    while (*at != NULL && (*at)->due_ms <= timer->due_ms)
        at = &(*at)->next;
    timer->next = *at;
    *at = timer;
}

static void timer_fire(http_timer *timer, bool cancelled)
{
    timer->fn(timer->user, cancelled);
    free(timer);
}

static void fire_due_timers(aws_http *http, int64_t now)
{
    while (http->timers != NULL && http->timers->due_ms <= now) {
        http_timer *timer = http->timers;
        http->timers = timer->next;
        timer_fire(timer, false);
    }
}

static bool is_set(const atomic_bool *flag) { return flag != NULL && atomic_load(flag); }

/* Ends cancelled exchanges and fires cancelled timers. */
static void scan_cancelled(aws_http *http)
{
    for (http_exchange *exchange = http->active, *next; exchange != NULL; exchange = next) {
        next = exchange->next;
        if (is_set(exchange->cancelled))
            finish(http, exchange, ENDED_CANCELLED, CURLE_OK);
    }
    http_timer *fired = NULL;
    for (http_timer **at = &http->timers; *at != NULL;) {
        http_timer *timer = *at;
        if (is_set(timer->cancelled)) {
            *at = timer->next;
            timer->next = fired;
            fired = timer;
        } else {
            at = &timer->next;
        }
    }
    while (fired != NULL) {
        http_timer *timer = fired;
        fired = timer->next;
        timer_fire(timer, true);
    }
}

static bool anything_cancellable(const aws_http *http)
{
    for (const http_exchange *exchange = http->active; exchange != NULL; exchange = exchange->next)
        if (exchange->cancelled != NULL)
            return true;
    for (const http_timer *timer = http->timers; timer != NULL; timer = timer->next)
        if (timer->cancelled != NULL)
            return true;
    return false;
}

/* How long curl_multi_poll may sleep (curl shortens it for its own timeouts). */
static int wait_ms(const aws_http *http, int64_t now)
{
    int64_t wait = IDLE_WAIT_MS;
    if (http->timers != NULL && http->timers->due_ms - now < wait)
        wait = http->timers->due_ms - now;
    if (anything_cancellable(http) && http->next_cancel_scan_ms - now < wait)
        wait = http->next_cancel_scan_ms - now;
    return wait < 0 ? 0 : (int)wait;
}

/* --- the hand-over from other threads --------------------------------------------------- */

/* Takes what other threads queued; returns whether aws_http_free began. */
static bool take_incoming(aws_http *http)
{
    pthread_mutex_lock(&http->lock);
    http_exchange *exchanges = http->incoming;
    http_timer *timers = http->incoming_timers;
    http->incoming = http->incoming_tail = NULL;
    http->incoming_timers = NULL;
    bool stopping = http->stopping;
    pthread_mutex_unlock(&http->lock);
    while (timers != NULL) {
        http_timer *timer = timers;
        timers = timer->next;
        if (stopping)
            timer_fire(timer, true);
        else
            timer_insert(http, timer);
    }
    while (exchanges != NULL) {
        http_exchange *exchange = exchanges;
        exchanges = exchange->next;
        exchange->next = NULL;
        if (stopping)
            finish(http, exchange, ENDED_CANCELLED, CURLE_OK);
        else
            begin(http, exchange);
    }
    return stopping;
}

static void wake_up(aws_http *http)
{
    uint64_t one = 1;
    if (write(http->wake_fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is full, so the thread is woken anyway */
    }
}

int http_loop_submit(aws_http *http, http_exchange *exchange, http_timer *timer)
{
    pthread_mutex_lock(&http->lock);
    if (http->stopping) {
        pthread_mutex_unlock(&http->lock);
        return -1;
    }
    if (exchange != NULL) {
        exchange->next = NULL;
        if (http->incoming_tail != NULL)
            http->incoming_tail->next = exchange;
        else
            http->incoming = exchange;
        http->incoming_tail = exchange;
    }
    if (timer != NULL) {
        timer->next = http->incoming_timers;
        http->incoming_timers = timer;
    }
    bool wake = http->sleeping;
    http->sleeping = false;
    pthread_mutex_unlock(&http->lock);
    if (wake)
        wake_up(http);
    return 0;
}

/* Marks the thread asleep unless work is already waiting. */
static bool enter_sleep(aws_http *http)
{
    pthread_mutex_lock(&http->lock);
    bool idle = http->incoming == NULL && http->incoming_timers == NULL && !http->stopping;
    http->sleeping = idle;
    pthread_mutex_unlock(&http->lock);
    return idle;
}

static void leave_sleep(aws_http *http)
{
    pthread_mutex_lock(&http->lock);
    http->sleeping = false;
    pthread_mutex_unlock(&http->lock);
}

/* At stop: every exchange and timer ends as cancelled. Their callbacks
 * cannot queue more (stopping refuses it). */
static void end_everything(aws_http *http)
{
    while (http->active != NULL)
        finish(http, http->active, ENDED_CANCELLED, CURLE_OK);
    while (http->timers != NULL) {
        http_timer *timer = http->timers;
        http->timers = timer->next;
        timer_fire(timer, true);
    }
}

/* --- the thread ------------------------------------------------------------------------ */

static void collect_finished(aws_http *http)
{
    CURLMsg *message;
    int left = 0;
    while ((message = curl_multi_info_read(http->multi, &left)) != NULL) {
        if (message->msg != CURLMSG_DONE)
            continue;
        CURLcode code = message->data.result;
        http_exchange *exchange = NULL;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&exchange);
        if (exchange != NULL)
            finish(http, exchange, ENDED_BY_CURL, code);
    }
}

static void *loop_main(void *arg)
{
    aws_http *http = arg;
    for (;;) {
        if (take_incoming(http)) {
            end_everything(http); /* and nothing new can come: stopping refuses it */
            secret_scrub_stack(); /* a dead thread's stack stays mapped for the next one */
            break;
        }
        int running = 0;
        curl_multi_perform(http->multi, &running);
        collect_finished(http);
        int64_t now = clock_monotonic_ms();
        fire_due_timers(http, now);
        if (now >= http->next_cancel_scan_ms) {
            scan_cancelled(http);
            http->next_cancel_scan_ms = now + CANCEL_SCAN_MS;
        }
        int wait = wait_ms(http, now);
        if (!enter_sleep(http))
            continue;
        struct curl_waitfd wake = {.fd = http->wake_fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(http->multi, &wake, 1, wait, NULL);
        leave_sleep(http);
        uint64_t count;
        if ((wake.revents & CURL_WAIT_POLLIN) && read(http->wake_fd, &count, sizeof count) < 0) {
            /* EAGAIN: another read took it */
        }
    }
    return NULL;
}

int http_loop_start(aws_http *http)
{
    http->idle = calloc(http->pool_size, sizeof *http->idle);
    http->multi = curl_multi_init();
    http->share = curl_share_init();
    http->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (http->idle == NULL || http->multi == NULL || http->share == NULL || http->wake_fd < 0)
        return -1;
    /* One thread uses the share: no lock callbacks needed. */
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)http->pool_size);
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, (long)http->pool_size);
    if (pthread_create(&http->thread, NULL, loop_main, http) != 0)
        return -1;
    return 0;
}

void http_loop_stop(aws_http *http)
{
    pthread_mutex_lock(&http->lock);
    http->stopping = true;
    http->sleeping = false;
    pthread_mutex_unlock(&http->lock);
    wake_up(http);
    pthread_join(http->thread, NULL);
}

void http_loop_free(aws_http *http)
{
    for (size_t i = 0; i < http->idle_count; i++)
        curl_easy_cleanup(http->idle[i]);
    http->idle_count = 0;
    if (http->multi != NULL)
        curl_multi_cleanup(http->multi);
    if (http->share != NULL)
        curl_share_cleanup(http->share);
    if (http->wake_fd >= 0)
        close(http->wake_fd);
    free(http->idle);
}

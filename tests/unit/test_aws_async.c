/* Unit tests for the asynchronous side of the AWS layer against a scripted
 * HTTP/1.1 server on 127.0.0.1: kms_sign_start answering on the HTTP event
 * thread, retries waiting on the event loop's timers (and the retry bucket),
 * the clock skew re-sign, cancellation of an exchange in flight and of a
 * backoff, deadlines, aws_http_free / kms_client_free ending calls in flight,
 * a synchronous call refused on the event thread, and the HTTP layer's timers
 * and helper thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aws/clock.h"
#include "aws/http.h"
#include "aws/kms_internal.h"
#include "common/clock.h"
#include "common/log.h"

/* --- the scripted server ------------------------------------------------------------ */

#define MAX_SCRIPT      16
#define MAX_REQUESTS    16
#define MAX_CONNECTIONS 16

typedef struct {
    int status; /* 0: never answer (the client gives up and closes) */
    const char *body;
    int64_t date_skew; /* the Date header: now plus this many seconds */
} scripted;

typedef struct {
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_t workers[MAX_CONNECTIONS];
    int connections;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    scripted script[MAX_SCRIPT];
    int script_len;
    int requests;
    char amz_dates[MAX_REQUESTS][20];
} server;

static server srv;

static size_t read_request(int fd, char *buffer, size_t size)
{
    size_t len = 0;
    for (;;) {
        buffer[len] = '\0';
        char *end = strstr(buffer, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buffer, "\r\nContent-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (len >= (size_t)(end + 4 - buffer) + body)
                return len;
        }
        ssize_t n = recv(fd, buffer + len, size - len - 1, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
    }
}

/* The next scripted answer (the last one repeats) and the request's X-Amz-Date. */
static scripted record(const char *request)
{
    pthread_mutex_lock(&srv.lock);
    int n = srv.requests++;
    const char *date = strstr(request, "X-Amz-Date: ");
    if (n < MAX_REQUESTS && date != NULL)
        snprintf(srv.amz_dates[n], sizeof srv.amz_dates[n], "%.16s", date + 12);
    scripted answer = srv.script[n < srv.script_len ? n : srv.script_len - 1];
    pthread_cond_broadcast(&srv.changed);
    pthread_mutex_unlock(&srv.lock);
    return answer;
}

static void *serve_connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char request[16384];
    while (read_request(fd, request, sizeof request) > 0) {
        scripted answer = record(request);
        if (answer.status == 0) {
            while (recv(fd, request, sizeof request, 0) > 0) {
            }
            break;
        }
        char date[64], head[512];
        time_t when = time(NULL) + (time_t)answer.date_skew;
        struct tm utc;
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&when, &utc));
        const char *body = answer.body ? answer.body : "{}";
        int len = snprintf(head, sizeof head,
                           "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nDate: %s\r\n"
                           "x-amzn-RequestId: rid-%d\r\n\r\n",
                           answer.status, strlen(body), date, srv.requests);
        if (send(fd, head, (size_t)len, MSG_NOSIGNAL) != len ||
            send(fd, body, strlen(body), MSG_NOSIGNAL) != (ssize_t)strlen(body))
            break;
    }
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&srv.lock);
        int index = srv.connections++;
        pthread_mutex_unlock(&srv.lock);
        assert_true(index < MAX_CONNECTIONS);
        pthread_create(&srv.workers[index], NULL, serve_connection, (void *)(intptr_t)fd);
    }
}

static void server_start(void)
{
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.changed, NULL);
    srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(srv.listen_fd, 16), 0);
    getsockname(srv.listen_fd, (struct sockaddr *)&addr, &addr_len);
    srv.port = ntohs(addr.sin_port);
    pthread_create(&srv.acceptor, NULL, accept_loop, NULL);
}

/* After every client is freed: its connections end by EOF. */
static void server_stop(void)
{
    shutdown(srv.listen_fd, SHUT_RDWR);
    close(srv.listen_fd);
    pthread_join(srv.acceptor, NULL);
    for (int i = 0; i < srv.connections; i++)
        pthread_join(srv.workers[i], NULL);
    pthread_cond_destroy(&srv.changed);
    pthread_mutex_destroy(&srv.lock);
}

static void script(scripted answer)
{
    pthread_mutex_lock(&srv.lock);
    srv.script[srv.script_len++] = answer;
    pthread_mutex_unlock(&srv.lock);
}

static struct timespec deadline_in(int seconds)
{
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += seconds;
    return at;
}

/* Waits (at most 10 s) until the server has received n requests. */
static void wait_requests(int n)
{
    struct timespec until = deadline_in(10);
    pthread_mutex_lock(&srv.lock);
    while (srv.requests < n) {
        if (pthread_cond_timedwait(&srv.changed, &srv.lock, &until) != 0)
            fail_msg("the server got %d requests, expected %d", srv.requests, n);
    }
    pthread_mutex_unlock(&srv.lock);
}

static int requests_received(void)
{
    pthread_mutex_lock(&srv.lock);
    int n = srv.requests;
    pthread_mutex_unlock(&srv.lock);
    return n;
}

/* --- the client ------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int done;
    int rc;
    aws_error err;
    char signature[64];
    bool on_event_thread;
    aws_status sync_call_status; /* a synchronous call tried from the callback */
} outcome;

typedef struct {
    kms_client *client;
    double random;
    bool try_sync_call;
    outcome out;
} fixture;

static int fake_credentials(void *user, aws_credentials *out, aws_error *err)
{
    (void)user;
    (void)err;
    memset(out, 0, sizeof *out);
    snprintf(out->access_key_id, sizeof out->access_key_id, "AKIDTEST");
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "secret-test");
    return 0;
}

static double scripted_random(void *user) { return ((fixture *)user)->random; }

static const char *no_environment(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static int setup(void **state)
{
    server_start();
    fixture *fx = calloc(1, sizeof *fx);
    pthread_mutex_init(&fx->out.lock, NULL);
    pthread_cond_init(&fx->out.changed, NULL);
    fx->random = 0.0;
    kms_client_hooks hooks = {.get_credentials = fake_credentials,
                              .user = fx,
                              .retry = {.random = scripted_random, .user = fx},
                              .env = {.getenv = no_environment}};
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", srv.port);
    aws_client_config config = {.region = "us-east-2", .endpoint = endpoint};
    aws_error err;
    fx->client = kms_client_new_with_hooks(&config, &hooks, &err);
    assert_non_null(fx->client);
    aws_clock_set_offset(0);
    log_set_level(LOG_ERROR);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kms_client_free(fx->client);
    server_stop();
    pthread_cond_destroy(&fx->out.changed);
    pthread_mutex_destroy(&fx->out.lock);
    free(fx);
    aws_clock_set_offset(0);
    return 0;
}

static void on_signed(void *user, int rc, uint8_t *signature, size_t signature_len,
                      const aws_error *err)
{
    fixture *fx = user;
    aws_status sync_status = AWS_OK;
    if (fx->try_sync_call) {
        kms_key_page page;
        aws_error sync_err;
        aws_error_clear(&sync_err);
        if (kms_list_keys(fx->client, NULL, NULL, 0, &page, &sync_err) == 0)
            kms_key_page_clear(&page);
        sync_status = sync_err.status;
    }
    pthread_mutex_lock(&fx->out.lock);
    fx->out.done++;
    fx->out.rc = rc;
    fx->out.err = *err;
    fx->out.on_event_thread = aws_http_on_event_thread(fx->client->http);
    fx->out.sync_call_status = sync_status;
    snprintf(fx->out.signature, sizeof fx->out.signature, "%.*s", (int)signature_len,
             signature ? (const char *)signature : "");
    pthread_cond_broadcast(&fx->out.changed);
    pthread_mutex_unlock(&fx->out.lock);
    free(signature);
}

static void start_sign(fixture *fx, const aws_call_ctx *ctx)
{
    static const uint8_t digest[32] = {1, 2, 3};
    aws_error err;
    assert_int_equal(kms_sign_start(fx->client, ctx, "arn:aws:kms:us-east-2:1:key/k", digest,
                                    sizeof digest, "ECDSA_SHA_256", on_signed, fx, &err),
                     0);
}

/* Waits (at most 10 s) until n calls have ended. */
static void wait_done(fixture *fx, int n)
{
    struct timespec until = deadline_in(10);
    pthread_mutex_lock(&fx->out.lock);
    while (fx->out.done < n) {
        if (pthread_cond_timedwait(&fx->out.changed, &fx->out.lock, &until) != 0)
            fail_msg("%d calls ended, expected %d", fx->out.done, n);
    }
    pthread_mutex_unlock(&fx->out.lock);
}

#define SIGNED "{\"KeyId\":\"k\",\"Signature\":\"c2lnbmVk\",\"SigningAlgorithm\":\"ECDSA_SHA_256\"}"

/* --- tests --------------------------------------------------------------------- */

static void test_sign_is_answered_on_the_event_thread(void **state)
{
    fixture *fx = *state;
    script((scripted){.status = 200, .body = SIGNED});
    start_sign(fx, NULL);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, 0);
    assert_string_equal(fx->out.signature, "signed");
    assert_true(fx->out.on_event_thread);
    assert_int_equal(fx->out.err.attempts, 1);
    assert_int_equal(fx->out.err.http_status, 200);
    assert_string_equal(fx->out.err.request_id, "rid-1");
}

static void test_retries_wait_on_timers(void **state)
{
    fixture *fx = *state;
    fx->random = 0.1; /* backoff: 0.1 x 1 s, then 0.1 x 2 s */
    script((scripted){.status = 500, .body = "{\"__type\":\"KMSInternalException\"}"});
    script((scripted){.status = 503, .body = "{\"__type\":\"ServiceUnavailableException\"}"});
    script((scripted){.status = 200, .body = SIGNED});
    int64_t started = clock_monotonic_ms();
    start_sign(fx, NULL);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, 0);
    assert_int_equal(fx->out.err.attempts, 3);
    assert_int_equal(requests_received(), 3);
    assert_true(clock_monotonic_ms() - started >= 300); /* the backoffs were waited for */
    /* two retries took 5 tokens each; the success gave the last 5 back */
    assert_int_equal(kms_client_retry_tokens(fx->client), AWS_RETRY_QUOTA_CAPACITY - 5);
}

static void test_errors_end_the_call_after_max_attempts(void **state)
{
    fixture *fx = *state;
    script((scripted){.status = 503, .body = "{\"__type\":\"ServiceUnavailableException\"}"});
    start_sign(fx, NULL);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, -1);
    assert_int_equal(fx->out.err.status, AWS_ERR_SERVER);
    assert_int_equal(fx->out.err.attempts, 3);
    assert_int_equal(requests_received(), 3);
}

#define SIGNATURE_EXPIRED                                                                          \
    "{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature expired: "                  \
    "20270115T080000Z is now earlier than 20270115T081500Z (20270115T082000Z - 5 min.)\"}"

static int64_t amz_epoch(const char *amz_date)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_non_null(strptime(amz_date, "%Y%m%dT%H%M%SZ", &tm));
    return (int64_t)timegm(&tm);
}

static void test_skew_refusal_is_signed_again_once(void **state)
{
    fixture *fx = *state;
    script((scripted){.status = 400, .body = SIGNATURE_EXPIRED, .date_skew = 1200});
    script((scripted){.status = 200, .body = SIGNED, .date_skew = 1200});
    start_sign(fx, NULL);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, 0);
    assert_int_equal(fx->out.err.attempts,
                     2); /* the re-signed exchange counts as an HTTP attempt */
    assert_int_equal(requests_received(), 2);
    int64_t moved = amz_epoch(srv.amz_dates[1]) - amz_epoch(srv.amz_dates[0]);
    assert_true(moved >= 1195 && moved <= 1210);
    assert_true(aws_clock_offset() >= 1195 && aws_clock_offset() <= 1205);
    /* not an attempt and no retry token */
    assert_int_equal(kms_client_retry_tokens(fx->client), AWS_RETRY_QUOTA_CAPACITY);
}

static void test_cancel_ends_the_exchange_in_flight(void **state)
{
    fixture *fx = *state;
    script((scripted){.status = 0}); /* never answers */
    atomic_bool cancelled;
    atomic_init(&cancelled, false);
    aws_call_ctx ctx = {.cancelled = &cancelled};
    start_sign(fx, &ctx);
    wait_requests(1);
    atomic_store(&cancelled, true);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, -1);
    assert_int_equal(fx->out.err.status, AWS_ERR_CANCELLED);
    assert_true(fx->out.on_event_thread);
}

static void test_cancel_during_backoff(void **state)
{
    fixture *fx = *state;
    fx->random = 0.99; /* a backoff of almost a second */
    script((scripted){.status = 503, .body = "{\"__type\":\"ServiceUnavailableException\"}"});
    atomic_bool cancelled;
    atomic_init(&cancelled, false);
    aws_call_ctx ctx = {.cancelled = &cancelled};
    start_sign(fx, &ctx);
    wait_requests(1);
    atomic_store(&cancelled, true);
    wait_done(fx, 1);
    assert_int_equal(fx->out.err.status, AWS_ERR_CANCELLED);
    assert_int_equal(fx->out.err.attempts, 1);
    assert_int_equal(requests_received(), 1);
}

static void test_deadline_ends_the_exchange(void **state)
{
    fixture *fx = *state;
    script((scripted){.status = 0});
    aws_call_ctx ctx = {.deadline_ms = clock_monotonic_ms() + 300};
    start_sign(fx, &ctx);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, -1);
    assert_int_equal(fx->out.err.status, AWS_ERR_TIMEOUT);
    assert_int_equal(requests_received(), 1); /* a backoff would pass the deadline */
}

static void test_a_cancelled_call_ends_before_any_exchange(void **state)
{
    fixture *fx = *state;
    atomic_bool cancelled;
    atomic_init(&cancelled, true);
    aws_call_ctx ctx = {.cancelled = &cancelled};
    start_sign(fx, &ctx);
    wait_done(fx, 1);
    assert_int_equal(fx->out.err.status, AWS_ERR_CANCELLED);
    assert_int_equal(requests_received(), 0);
}

static void test_client_free_ends_calls_in_flight(void **state)
{
    fixture *fx = *state;
    script((scripted){.status = 0});
    for (int i = 0; i < 3; i++)
        start_sign(fx, NULL);
    wait_requests(3);
    kms_client_free(fx->client);
    fx->client = NULL;
    assert_int_equal(fx->out.done, 3); /* all ended before the free returned */
    assert_int_equal(fx->out.err.status, AWS_ERR_CANCELLED);
}

static void test_synchronous_call_refused_on_the_event_thread(void **state)
{
    fixture *fx = *state;
    fx->try_sync_call = true;
    script((scripted){.status = 200, .body = SIGNED});
    start_sign(fx, NULL);
    wait_done(fx, 1);
    assert_int_equal(fx->out.rc, 0);
    assert_int_equal(fx->out.sync_call_status, AWS_ERR_INTERNAL);
    assert_int_equal(requests_received(), 1);
}

/* --- the HTTP layer's timers and helper thread ------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    int order[8];
    bool cancelled[8];
    int count;
    aws_http *http;
    bool on_event_thread;
} timeline;

static timeline tl;

static void note(int id, bool cancelled)
{
    pthread_mutex_lock(&tl.lock);
    tl.order[tl.count] = id;
    tl.cancelled[tl.count] = cancelled;
    tl.count++;
    pthread_mutex_unlock(&tl.lock);
}

static void timer_fired(void *user, bool cancelled)
{
    tl.on_event_thread = aws_http_on_event_thread(tl.http);
    note((int)(intptr_t)user, cancelled);
}

static int noted(void)
{
    pthread_mutex_lock(&tl.lock);
    int n = tl.count;
    pthread_mutex_unlock(&tl.lock);
    return n;
}

static void wait_noted(int n)
{
    int64_t until = clock_monotonic_ms() + 10000;
    while (noted() < n) {
        if (clock_monotonic_ms() > until)
            fail_msg("%d events, expected %d", noted(), n);
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL); /* polling the events with a deadline */
    }
}

static void test_timers_fire_in_due_order_and_early_when_cancelled(void **state)
{
    (void)state;
    memset(&tl, 0, sizeof tl);
    pthread_mutex_init(&tl.lock, NULL);
    tl.http = aws_http_new(NULL);
    atomic_bool cancel;
    atomic_init(&cancel, false);
    assert_int_equal(aws_http_after(tl.http, 200, NULL, timer_fired, (void *)2), 0);
    assert_int_equal(aws_http_after(tl.http, 50, NULL, timer_fired, (void *)1), 0);
    assert_int_equal(aws_http_after(tl.http, 60000, &cancel, timer_fired, (void *)3), 0);
    assert_int_equal(aws_http_after(tl.http, 60000, NULL, timer_fired, (void *)4), 0);
    wait_noted(2);
    assert_int_equal(tl.order[0], 1);
    assert_int_equal(tl.order[1], 2);
    assert_false(tl.cancelled[0] || tl.cancelled[1]);
    assert_true(tl.on_event_thread);
    atomic_store(&cancel, true);
    wait_noted(3);
    assert_int_equal(tl.order[2], 3);
    assert_true(tl.cancelled[2]);
    aws_http_free(tl.http); /* ends the last timer, as cancelled */
    assert_int_equal(noted(), 4);
    assert_int_equal(tl.order[3], 4);
    assert_true(tl.cancelled[3]);
    pthread_mutex_destroy(&tl.lock);
}

static void job(void *user)
{
    tl.on_event_thread = aws_http_on_event_thread(tl.http);
    note((int)(intptr_t)user, false);
}

static void test_helper_runs_jobs_in_order_and_finishes_them_at_free(void **state)
{
    (void)state;
    memset(&tl, 0, sizeof tl);
    pthread_mutex_init(&tl.lock, NULL);
    tl.http = aws_http_new(NULL);
    for (intptr_t i = 1; i <= 5; i++)
        assert_int_equal(aws_http_run_blocking(tl.http, job, (void *)i), 0);
    aws_http_free(tl.http);
    assert_int_equal(tl.count, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tl.order[i], i + 1);
    assert_false(tl.on_event_thread);
    pthread_mutex_destroy(&tl.lock);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sign_is_answered_on_the_event_thread),
        T(test_retries_wait_on_timers),
        T(test_errors_end_the_call_after_max_attempts),
        T(test_skew_refusal_is_signed_again_once),
        T(test_cancel_ends_the_exchange_in_flight),
        T(test_cancel_during_backoff),
        T(test_deadline_ends_the_exchange),
        T(test_a_cancelled_call_ends_before_any_exchange),
        T(test_client_free_ends_calls_in_flight),
        T(test_synchronous_call_refused_on_the_event_thread),
        cmocka_unit_test(test_timers_fire_in_due_order_and_early_when_cancelled),
        cmocka_unit_test(test_helper_runs_jobs_in_order_and_finishes_them_at_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the libcurl HTTP pool against a tiny in-process HTTP/1.1
 * server on 127.0.0.1: keep-alive reuse (one TCP connection for many
 * requests, also across threads), answers and request ids, SigV4 and the
 * session token header, timeouts, deadlines, refused connections, and the
 * proxy environment (a dead proxy, bypassed by NO_PROXY). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aws/http.h"
#include "common/clock.h"

/* --- the test server ------------------------------------------------------------- */

#define MAX_CONNECTIONS 16

typedef struct {
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_t workers[MAX_CONNECTIONS];
    int fds[MAX_CONNECTIONS];
    pthread_mutex_t lock;
    int connections; /* accepted so far */
    int requests;    /* answered so far */
    bool hang;       /* read requests but never answer */
    char last_request[8192];
} server;

static server srv;

/* Reads one request (headers and Content-Length body) into buffer. Returns
 * its length, or 0 when the peer closed the connection. */
static size_t read_request(int fd, char *buffer, size_t size)
{
    size_t len = 0;
    for (;;) {
        buffer[len] = '\0';
        char *end = strstr(buffer, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buffer, "\r\nContent-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            size_t total = (size_t)(end + 4 - buffer) + body;
            if (len >= total)
                return len;
        }
        ssize_t n = recv(fd, buffer + len, size - len - 1, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
    }
}

static void *serve_connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char request[8192];
    while (read_request(fd, request, sizeof request) > 0) {
        pthread_mutex_lock(&srv.lock);
        snprintf(srv.last_request, sizeof srv.last_request, "%s", request);
        bool hang = srv.hang;
        int number = ++srv.requests;
        pthread_mutex_unlock(&srv.lock);
        if (hang)
            continue; /* the client gives up and closes */
        char body[64], answer[256];
        int body_len = snprintf(body, sizeof body, "{\"n\":%d}", number);
        int len = snprintf(answer, sizeof answer,
                           "HTTP/1.1 %d X\r\nContent-Length: %d\r\nx-amzn-RequestId: rid-%d\r\n"
                           "Content-Type: application/x-amz-json-1.1\r\n\r\n%s",
                           number % 5 == 0 ? 400 : 200, body_len, number, body);
        if (send(fd, answer, (size_t)len, MSG_NOSIGNAL) != len)
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
        srv.fds[index] = fd;
        pthread_create(&srv.workers[index], NULL, serve_connection, (void *)(intptr_t)fd);
    }
}

static int server_start(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.lock, NULL);
    srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(srv.listen_fd, 16), 0);
    getsockname(srv.listen_fd, (struct sockaddr *)&addr, &addr_len);
    srv.port = ntohs(addr.sin_port);
    pthread_create(&srv.acceptor, NULL, accept_loop, NULL);
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("https_proxy");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    unsetenv("NO_PROXY");
    unsetenv("no_proxy");
    return 0;
}

/* Call after every aws_http is freed: the connections then end by EOF. */
static int server_stop(void **state)
{
    (void)state;
    shutdown(srv.listen_fd, SHUT_RDWR);
    close(srv.listen_fd);
    pthread_join(srv.acceptor, NULL);
    for (int i = 0; i < srv.connections; i++)
        pthread_join(srv.workers[i], NULL);
    pthread_mutex_destroy(&srv.lock);
    return 0;
}

static char url[64];

static const char *server_url(void)
{
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", srv.port);
    return url;
}

static aws_http_request post(const char *body)
{
    static const char *const headers[] = {"X-Amz-Target: TrentService.ListKeys",
                                          "Content-Type: application/x-amz-json-1.1", NULL};
    return (aws_http_request){.method = "POST",
                              .url = server_url(),
                              .headers = headers,
                              .body = body,
                              .body_len = strlen(body)};
}

/* --- tests ------------------------------------------------------------------------ */

static void test_keep_alive_reuses_one_connection(void **state)
{
    (void)state;
    aws_http *http = aws_http_new(NULL);
    aws_http_request request = post("{}");
    for (int i = 1; i <= 6; i++) {
        aws_http_response response;
        aws_error err;
        assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
        assert_int_equal(response.status, i % 5 == 0 ? 400 : 200);
        char expected[32];
        snprintf(expected, sizeof expected, "{\"n\":%d}", i);
        assert_string_equal(response.body, expected);
        assert_int_equal(response.body_len, strlen(expected));
        snprintf(expected, sizeof expected, "rid-%d", i);
        assert_string_equal(response.request_id, expected);
        assert_int_equal(response.new_connections, i == 1 ? 1 : 0);
        aws_http_response_clear(&response);
    }
    assert_int_equal(aws_http_requests_made(http), 6);
    assert_int_equal(aws_http_connections_opened(http), 1);
    aws_http_free(http);
    assert_int_equal(srv.connections, 1);
}

typedef struct {
    aws_http *http;
    int failures;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    aws_http_request request = post("{}");
    for (int i = 0; i < 25; i++) {
        aws_http_response response;
        aws_error err;
        if (aws_http_perform(w->http, &request, &response, &err) != 0)
            w->failures++;
        aws_http_response_clear(&response);
    }
    return NULL;
}

static void test_pool_bounds_connections_across_threads(void **state)
{
    (void)state;
    aws_http_options options = {.pool_size = 3};
    aws_http *http = aws_http_new(&options);
    pthread_t threads[6];
    worker workers[6];
    for (int i = 0; i < 6; i++) {
        workers[i] = (worker){.http = http};
        pthread_create(&threads[i], NULL, hammer, &workers[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].failures, 0);
    }
    assert_int_equal(aws_http_requests_made(http), 150);
    assert_true(aws_http_connections_opened(http) <= 3);
    aws_http_free(http);
    assert_true(srv.connections <= 3);
}

static void test_sigv4_and_session_token(void **state)
{
    (void)state;
    aws_http *http = aws_http_new(NULL);
    aws_credentials credentials = {.access_key_id = "AKIDUNIT",
                                   .secret_access_key = "very-secret-key",
                                   .session_token = "session-token-xyz"};
    aws_http_request request = post("{\"Limit\":1}");
    aws_sigv4_scope scope;
    assert_int_equal(aws_sigv4_scope_init(&scope, "us-east-2", "kms"), 0);
    request.sigv4_scope = &scope;
    request.credentials = &credentials;
    aws_http_response response;
    aws_error err;
    assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
    aws_http_response_clear(&response);
    const char *sent = srv.last_request;
    assert_non_null(strstr(sent, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDUNIT/"));
    assert_non_null(strstr(sent, "/us-east-2/kms/aws4_request"));
    assert_non_null(strstr(sent, "X-Amz-Security-Token: session-token-xyz\r\n"));
    assert_non_null(strcasestr(sent, "x-amz-security-token"));
    assert_non_null(strstr(sent, "X-Amz-Date: "));
    assert_non_null(strstr(sent, "X-Amz-Target: TrentService.ListKeys\r\n"));
    assert_non_null(strstr(sent, "\r\n\r\n{\"Limit\":1}"));
    assert_null(strstr(sent, "very-secret-key"));
    assert_null(strstr(sent, "Expect:"));

    /* without a token: no token header; unsigned: no Authorization */
    credentials.session_token[0] = '\0';
    assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
    aws_http_response_clear(&response);
    assert_null(strcasestr(srv.last_request, "x-amz-security-token"));
    request.sigv4_scope = NULL;
    assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
    aws_http_response_clear(&response);
    assert_null(strstr(srv.last_request, "Authorization:"));
    aws_http_free(http);
}

static void test_get_and_put(void **state)
{
    (void)state;
    aws_http *http = aws_http_new(NULL);
    aws_http_request request = {.method = "GET", .url = server_url()};
    aws_http_response response;
    aws_error err;
    assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
    aws_http_response_clear(&response);
    assert_true(strncmp(srv.last_request, "GET / HTTP/1.1\r\n", 16) == 0);
    static const char *const headers[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
    request = (aws_http_request){.method = "PUT", .url = server_url(), .headers = headers};
    assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
    aws_http_response_clear(&response);
    assert_true(strncmp(srv.last_request, "PUT / HTTP/1.1\r\n", 16) == 0);
    assert_non_null(strstr(srv.last_request, "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"));
    aws_http_free(http);
}

static void test_request_timeout(void **state)
{
    (void)state;
    srv.hang = true;
    aws_http *http = aws_http_new(NULL);
    aws_http_request request = post("{}");
    request.timeout_ms = 200;
    aws_http_response response;
    aws_error err;
    int64_t started = clock_monotonic_ms();
    assert_int_equal(aws_http_perform(http, &request, &response, &err), -1);
    int64_t took = clock_monotonic_ms() - started;
    assert_int_equal(err.status, AWS_ERR_TIMEOUT);
    assert_true(took >= 150 && took < 5000);
    assert_null(response.body);
    aws_http_free(http);
}

static void test_deadline_caps_the_timeout(void **state)
{
    (void)state;
    srv.hang = true;
    aws_http_options options = {.request_timeout_ms = 60000};
    aws_http *http = aws_http_new(&options);
    aws_http_request request = post("{}");
    request.call.deadline_ms = clock_monotonic_ms() + 200;
    aws_http_response response;
    aws_error err;
    assert_int_equal(aws_http_perform(http, &request, &response, &err), -1);
    assert_int_equal(err.status, AWS_ERR_TIMEOUT);
    assert_true(clock_monotonic_ms() < request.call.deadline_ms + 5000);
    /* a deadline already past: no request at all */
    long before = aws_http_requests_made(http);
    request.call.deadline_ms = clock_monotonic_ms() - 1;
    assert_int_equal(aws_http_perform(http, &request, &response, &err), -1);
    assert_int_equal(err.status, AWS_ERR_TIMEOUT);
    assert_int_equal(aws_http_requests_made(http), before);
    aws_http_free(http);
}

static void test_refused_connection(void **state)
{
    (void)state;
    aws_http *http = aws_http_new(NULL);
    aws_http_request request = post("{}");
    request.url = "http://127.0.0.1:1/";
    aws_http_response response;
    aws_error err;
    assert_int_equal(aws_http_perform(http, &request, &response, &err), -1);
    assert_int_equal(err.status, AWS_ERR_TRANSPORT);
    assert_non_null(strstr(err.message, "HTTP request failed"));
    aws_http_free(http);
}

static void test_proxy_environment_and_no_proxy(void **state)
{
    (void)state;
    aws_http *http = aws_http_new(NULL);
    aws_http_request request = post("{}");
    aws_http_response response;
    aws_error err;
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    assert_int_equal(aws_http_perform(http, &request, &response, &err), -1);
    assert_int_equal(err.status, AWS_ERR_TRANSPORT); /* went to the dead proxy */
    setenv("NO_PROXY", "localhost,127.0.0.1", 1);
    assert_int_equal(aws_http_perform(http, &request, &response, &err), 0);
    assert_int_equal(response.status, 200);
    aws_http_response_clear(&response);
    aws_http_free(http);
    unsetenv("http_proxy");
    unsetenv("NO_PROXY");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, server_start, server_stop)
    const struct CMUnitTest tests[] = {
        T(test_keep_alive_reuses_one_connection),
        T(test_pool_bounds_connections_across_threads),
        T(test_sigv4_and_session_token),
        T(test_get_and_put),
        T(test_request_timeout),
        T(test_deadline_caps_the_timeout),
        T(test_refused_connection),
        T(test_proxy_environment_and_no_proxy),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Benchmark client for the floor: the same KMS Sign request the plugin sends,
 * sent straight to the KMS stub (bench/kms_stub.c) over keep-alive HTTP/1.1
 * on plain sockets, T connections with one request in flight each. The
 * request is read from a file holding the exact bytes to send (request line,
 * headers with Content-Length and a SigV4 signature, body), written by
 * bench/bench_signdata.py; it is sent as is, again and again (the stub checks
 * no signature). An answer counts as a success when it is a 200 whose body
 * names a "Signature". Prints bench_run.h's JSON line.
 *
 *   bench_sign_direct_client --url http://127.0.0.1:PORT --request-file FILE
 *       --calls N --concurrency T [--warmup N] [--pid NAME=PID]...
 *       [--at-start CMD] [--at-end CMD] */
#include "bench_run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    struct sockaddr_in address;
    char *request;
    size_t request_len;
} direct_job;

typedef struct {
    const direct_job *job;
    int fd; /* -1 until connected, and after the stub asked to close */
    char *buffer;
    size_t cap;
} connection;

static int connect_to(const struct sockaddr_in *address)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)address, sizeof *address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *open_connection(void *shared)
{
    connection *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->job = shared;
    c->cap = 16384;
    c->buffer = malloc(c->cap);
    c->fd = connect_to(&c->job->address);
    if (c->buffer == NULL || c->fd < 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c->buffer);
        free(c);
        return NULL;
    }
    return c;
}

static void close_connection(void *state)
{
    connection *c = state;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buffer);
    free(c);
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
        if (sent <= 0)
            return -1;
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* The value of header `name` in the header block (NUL-terminated, lines
 * ending in CRLF), or NULL. */
static const char *header_value(const char *head, const char *name)
{
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            while (*value == ' ')
                value++;
            return value;
        }
    }
    return NULL;
}

/* Reads one whole answer; returns its length (head + body) and sets
 * *head_len, or -1 on a closed connection, a bad answer or a full buffer. */
static long read_answer(connection *c, size_t *head_len)
{
    size_t have = 0, total = 0;
    *head_len = 0;
    for (;;) {
        if (*head_len == 0) {
            c->buffer[have] = '\0';
            char *end = strstr(c->buffer, "\r\n\r\n");
            if (end != NULL) {
                *head_len = (size_t)(end - c->buffer) + 4;
                *end = '\0'; /* header_value stops here */
                const char *length = header_value(c->buffer, "Content-Length");
                if (length == NULL)
                    return -1;
                total = *head_len + strtoul(length, NULL, 10);
                *end = '\r';
            }
        }
        if (*head_len != 0 && have >= total)
            return have == total ? (long)total : -1; /* nothing is pipelined */
        if (have + 1 >= c->cap)
            return -1;
        ssize_t got = recv(c->fd, c->buffer + have, c->cap - 1 - have, 0);
        if (got <= 0)
            return -1;
        have += (size_t)got;
    }
}

static int sign(void *state)
{
    connection *c = state;
    if (c->fd < 0 && (c->fd = connect_to(&c->job->address)) < 0)
        return -1;
    size_t head_len;
    long total = -1;
    if (send_all(c->fd, c->job->request, c->job->request_len) == 0)
        total = read_answer(c, &head_len);
    if (total < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->buffer[head_len - 4] = '\0';
    bool ok = strncmp(c->buffer, "HTTP/1.1 200 ", 13) == 0 &&
              memmem(c->buffer + head_len, (size_t)total - head_len, "\"Signature\"", 11) != NULL;
    const char *connection_header = header_value(c->buffer, "Connection");
    if (connection_header != NULL && strncasecmp(connection_header, "close", 5) == 0) {
        close(c->fd);
        c->fd = -1;
    }
    return ok ? 0 : -1;
}

/* "http://127.0.0.1:PORT[/]" into an IPv4 address; -1 when it is not one. */
static int parse_url(const char *url, struct sockaddr_in *address)
{
    char host[64];
    unsigned port;
    char rest[2] = "";
    if (sscanf(url, "http://%63[0-9.]:%u%1s", host, &port, rest) < 2 || port == 0 || port > 65535 ||
        (rest[0] != '\0' && strcmp(rest, "/") != 0))
        return -1;
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &address->sin_addr) == 1 ? 0 : -1;
}

/* The whole file into *data; -1 when it cannot be read. */
static int read_file(const char *path, char **data, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return -1;
    size_t cap = 65536;
    *data = malloc(cap);
    *len = *data != NULL ? fread(*data, 1, cap, file) : 0;
    int complete = *data != NULL && feof(file) && !ferror(file);
    fclose(file);
    if (!complete || *len == 0) {
        free(*data);
        *data = NULL;
        return -1;
    }
    return 0;
}

static int usage(const char *program)
{
    fprintf(stderr,
            "usage: %s --url http://127.0.0.1:PORT --request-file FILE --calls N "
            "--concurrency T [--warmup N] [--pid NAME=PID]... [--at-start CMD] [--at-end CMD]\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    bench_plan plan;
    bench_plan_init(&plan);
    const char *url = NULL, *request_file = NULL;
    for (int i = 1; i < argc; i++) {
        int taken = bench_plan_option(&plan, argc, argv, &i);
        if (taken < 0)
            return usage(argv[0]);
        if (taken > 0)
            continue;
        const char **value = strcmp(argv[i], "--url") == 0            ? &url
                             : strcmp(argv[i], "--request-file") == 0 ? &request_file
                                                                      : NULL;
        if (value == NULL || i + 1 >= argc)
            return usage(argv[0]);
        *value = argv[++i];
    }
    const char *problem = bench_plan_problem(&plan);
    if (problem != NULL)
        fprintf(stderr, "%s\n", problem);
    direct_job job;
    if (problem != NULL || url == NULL || request_file == NULL || parse_url(url, &job.address) != 0)
        return usage(argv[0]);
    if (read_file(request_file, &job.request, &job.request_len) != 0) {
        fprintf(stderr, "cannot read %s (at most 64 KiB)\n", request_file);
        return 2;
    }
    bench_client client = {open_connection, sign, close_connection, &job};
    int rc = bench_run(&client, &plan);
    free(job.request);
    return rc;
}

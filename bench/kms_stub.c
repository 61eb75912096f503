/* A zero-latency AWS KMS stub for benchmarks: the plugin's KMS endpoint when
 * what is measured is the plugin, not KMS.
 *
 *   bench_kms_stub --upstream http://127.0.0.1:PORT [--port N] [--sign-delay-ms MS]
 *
 * One thread, epoll, non-blocking sockets: HTTP/1.1 keep-alive on 127.0.0.1
 * (port 0 = any; the line "KMS_STUB_URL=http://127.0.0.1:PORT" on stdout says
 * which), any number of connections, Content-Length bodies (chunked bodies are
 * refused, pipelining is not needed and is served one request at a time).
 *
 * Proxy by design. Everything but TrentService.Sign (CreateKey, CreateAlias,
 * ListAliases, DescribeKey, GetPublicKey, STS GetCallerIdentity, the
 * emulator's /_emulator/ control API, ...) is forwarded byte for byte to the
 * upstream KMS emulator (tests/emulator/kms_emulator.py in process mode), so
 * the plugin reaches "configured with keys" against the real emulator: its
 * botocore model checks, its SigV4 verification, its key store and ARNs; no
 * second implementation of those calls to keep true. Each client connection
 * gets its own keep-alive upstream connection when it first needs one.
 *
 * Sign is answered here. A Sign whose request body was seen before is
 * answered from memory with the answer the emulator gave to that body (KeyId
 * ARN, a real Signature, SigningAlgorithm), at once or --sign-delay-ms after
 * it arrived (a FIFO of answers on one timerfd: no thread, no sleep). A Sign
 * with a new body is forwarded, and a 200 answer is remembered (up to
 * CACHE_SLOTS bodies). A benchmark signs the same digest again and again, so
 * after its first call every Sign costs the stub a read and a write, and the
 * answers stay genuine signatures of what was asked.
 *
 * Not checked here: SigV4. A replayed Sign is answered whatever its
 * signature; forwarded requests are verified by the emulator.
 *
 * Control (not forwarded):
 *   GET  /_stub/stats            {"sign_replayed", "sign_forwarded", "forwarded",
 *                                 "connections", "sign_delay_ms"}
 *   POST /_stub/sign_delay_ms    body: milliseconds (0-60000) for the Signs that
 *                                arrive from now on; answers the stats
 * SIGTERM or SIGINT ends it, with the stats on stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SLOTS     256
#define MAX_HEAD        (64 * 1024)
#define MAX_BODY        (1024 * 1024)
#define MAX_DELAY_MS    60000
#define READ_CHUNK      16384
#define EVENTS_PER_WAIT 64

enum watch_kind { WATCH_LISTENER, WATCH_CLIENT, WATCH_UPSTREAM, WATCH_TIMER, WATCH_SIGNAL };

struct conn;

/* What an epoll event points at. */
typedef struct {
    enum watch_kind kind;
    struct conn *conn;
} watch;

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

/* A remembered Sign: the request body and the emulator's answer body. */
typedef struct {
    uint64_t hash;
    buffer request;
    buffer answer;
} cache_entry;

/* One client connection, and its upstream connection when it has one. */
typedef struct conn {
    watch client_watch, upstream_watch;
    int fd, upstream_fd;
    uint32_t client_events, upstream_events; /* the epoll masks now set */
    buffer in;                               /* read from the client, not yet served */
    buffer out;                              /* to write to the client */
    size_t out_sent;
    buffer up_out; /* the request being forwarded */
    size_t up_sent;
    buffer up_in; /* the upstream answer being read */
    bool upstream_connecting;
    bool upstream_close; /* the upstream answer said Connection: close */
    bool busy;           /* a request is being answered (forwarded or delayed) */
    bool continue_sent;  /* "100 Continue" sent for the request being read */
    bool close_after_write;
    bool closed;         /* the client is gone; freed when no delayed answer refers to it */
    int delayed;         /* delayed answers queued for this connection */
    buffer sign_request; /* a forwarded Sign's body, to remember its answer */
    bool forwarding_sign;
    struct conn *next, *prev; /* every connection, for the final clean-up */
} conn;

typedef struct {
    conn *conn;
    const cache_entry *entry;
    int64_t due_ns;
} delayed_answer;

typedef struct {
    int epoll_fd, listen_fd, timer_fd, signal_fd;
    watch listen_watch, timer_watch, signal_watch;
    struct sockaddr_in upstream;
    int64_t sign_delay_ns;
    delayed_answer *queue; /* ring, in arrival order */
    size_t queue_head, queue_count, queue_cap;
    cache_entry cache[CACHE_SLOTS];
    conn *conns;
    conn *dead; /* closed this round, freed after the round's events */
    uint64_t sign_replayed, sign_forwarded, forwarded, connections, request_ids;
    bool stopping;
} stub;

/* The parts of a request head the stub acts on. */
typedef struct {
    size_t head_len, body_len;
    bool is_post, is_get, control, sign, expect_continue, close, chunked;
    const char *control_path; /* after "/_stub/", up to the end of the target */
    size_t control_path_len;
} request_head;

/* --- buffers --------------------------------------------------------------- */

static int buffer_reserve(buffer *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buffer_append(buffer *b, const void *data, size_t len)
{
    if (buffer_reserve(b, len + 1) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static void buffer_consume(buffer *b, size_t len)
{
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
}

static void buffer_free(buffer *b)
{
    free(b->data);
    *b = (buffer){0};
}

/* --- small helpers ----------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint64_t fnv1a(const char *data, size_t len)
{
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ (unsigned char)data[i]) * 1099511628211ULL;
    return hash;
}

static bool equals_token(const char *value, size_t len, const char *token)
{
    return strlen(token) == len && strncasecmp(value, token, len) == 0;
}

/* The position of "\r\n\r\n" in data[0, len) plus 4, or 0. */
static size_t head_end(const char *data, size_t len)
{
    const char *end = memmem(data, len, "\r\n\r\n", 4);
    return end != NULL ? (size_t)(end - data) + 4 : 0;
}

/* Content-Length's digits; -1 when they are not digits or too many. */
static long parse_length(const char *value, size_t len)
{
    long n = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        n = n * 10 + (value[i] - '0');
    }
    return n;
}

/* Calls on_header(name, name_len, value, value_len, ctx) for each header line
 * of a head (from the line after the first to the blank line); the value is
 * trimmed. Returns -1 on a line without a colon. */
static int for_each_header(const char *head, size_t head_len,
                           void (*on_header)(const char *, size_t, const char *, size_t, void *),
                           void *ctx)
{
    const char *end = head + head_len - 2; /* the final CRLF */
    const char *line = memmem(head, head_len, "\r\n", 2) + 2;
    while (line < end) {
        const char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL)
            return -1;
        const char *value = colon + 1;
        const char *value_end = eol;
        while (value < value_end && (*value == ' ' || *value == '\t'))
            value++;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
        on_header(line, (size_t)(colon - line), value, (size_t)(value_end - value), ctx);
        line = eol + 2;
    }
    return 0;
}

/* --- request parsing ------------------------------------------------------- */

typedef struct {
    request_head *request;
    long length; /* -1 absent, -2 bad */
} header_scan;

static void on_request_header(const char *name, size_t name_len, const char *value,
                              size_t value_len, void *ctx)
{
    header_scan *scan = ctx;
    request_head *r = scan->request;
    if (equals_token(name, name_len, "content-length")) {
        long length = parse_length(value, value_len);
        scan->length = length < 0 || (scan->length >= 0 && scan->length != length) ? -2 : length;
    } else if (equals_token(name, name_len, "x-amz-target")) {
        r->sign = equals_token(value, value_len, "TrentService.Sign");
    } else if (equals_token(name, name_len, "expect")) {
        r->expect_continue = equals_token(value, value_len, "100-continue");
    } else if (equals_token(name, name_len, "connection")) {
        if (equals_token(value, value_len, "close"))
            r->close = true;
        else if (equals_token(value, value_len, "keep-alive"))
            r->close = false;
    } else if (equals_token(name, name_len, "transfer-encoding")) {
        r->chunked = true;
    }
}

/* Parses the request line "METHOD TARGET HTTP/1.x" into r. */
static int parse_request_line(const char *head, size_t head_len, request_head *r)
{
    const char *eol = memmem(head, head_len, "\r\n", 2);
    const char *space1 = memchr(head, ' ', (size_t)(eol - head));
    if (space1 == NULL)
        return -1;
    const char *target = space1 + 1;
    const char *space2 = memchr(target, ' ', (size_t)(eol - target));
    if (space2 == NULL || space2 == target || (size_t)(eol - space2) != 9 ||
        strncmp(space2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    size_t method_len = (size_t)(space1 - head);
    r->is_post = method_len == 4 && strncmp(head, "POST", 4) == 0;
    r->is_get = method_len == 3 && strncmp(head, "GET", 3) == 0;
    r->close = space2[8] == '0'; /* HTTP/1.0 closes unless it asks for keep-alive */
    static const char prefix[] = "/_stub/";
    size_t target_len = (size_t)(space2 - target);
    if (target_len >= sizeof prefix - 1 && strncmp(target, prefix, sizeof prefix - 1) == 0) {
        r->control = true;
        r->control_path = target + sizeof prefix - 1;
        r->control_path_len = target_len - (sizeof prefix - 1);
    }
    return 0;
}

/* 1 with *r filled when in holds a whole head, 0 when more is needed, -1 when
 * it cannot be served (then r->head_len is 0). The head is NUL-terminated in
 * place by the buffer, so string functions stop at the buffered bytes. */
static int parse_request_head(const buffer *in, request_head *r)
{
    memset(r, 0, sizeof *r);
    size_t head_len = head_end(in->data, in->len);
    if (head_len == 0)
        return in->len > MAX_HEAD ? -1 : 0;
    header_scan scan = {.request = r, .length = -1};
    if (parse_request_line(in->data, head_len, r) != 0 ||
        for_each_header(in->data, head_len, on_request_header, &scan) != 0 || scan.length == -2)
        return -1;
    r->head_len = head_len;
    r->body_len = scan.length > 0 ? (size_t)scan.length : 0;
    return 1;
}

/* --- epoll ------------------------------------------------------------------- */

static void watch_fd(stub *s, int fd, watch *w, uint32_t *current, uint32_t wanted)
{
    if (*current == wanted)
        return;
    struct epoll_event event = {.events = wanted, .data.ptr = w};
    epoll_ctl(s->epoll_fd, *current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
    *current = wanted;
}

/* --- connections ------------------------------------------------------------ */

static void close_upstream(stub *s, conn *c)
{
    if (c->upstream_fd < 0)
        return;
    epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->upstream_fd, NULL);
    close(c->upstream_fd);
    c->upstream_fd = -1;
    c->upstream_events = 0;
    c->upstream_connecting = false;
    c->up_in.len = 0;
}

static void close_conn(stub *s, conn *c)
{
    if (c->closed)
        return;
    close_upstream(s, c);
    epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->closed = true;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = s->dead;
    c->prev = NULL;
    s->dead = c;
}

static void free_conn(conn *c)
{
    buffer_free(&c->in);
    buffer_free(&c->out);
    buffer_free(&c->up_out);
    buffer_free(&c->up_in);
    buffer_free(&c->sign_request);
    free(c);
}

/* Frees the connections closed in this round that no delayed answer names. */
static void bury_dead(stub *s)
{
    conn **link = &s->dead;
    while (*link != NULL) {
        conn *c = *link;
        if (c->delayed > 0) {
            link = &c->next;
            continue;
        }
        *link = c->next;
        free_conn(c);
    }
}

static void serve_input(stub *s, conn *c);

/* Writes what is pending to the client (the rest when the socket is full),
 * and closes it after an answer that said Connection: close. */
static void flush_out(stub *s, conn *c)
{
    if (c->closed)
        return;
    while (c->out_sent < c->out.len) {
        ssize_t sent =
            send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
            watch_fd(s, c->fd, &c->client_watch, &c->client_events, EPOLLIN | EPOLLOUT);
            return;
        }
        if (sent <= 0) {
            close_conn(s, c);
            return;
        }
        c->out_sent += (size_t)sent;
    }
    c->out.len = 0;
    c->out_sent = 0;
    watch_fd(s, c->fd, &c->client_watch, &c->client_events, EPOLLIN);
    if (c->close_after_write && !c->busy)
        close_conn(s, c);
}

/* An answer that was waiting (delayed, forwarded) is ready: write it, then
 * serve what the client sent meanwhile. */
static void resume(stub *s, conn *c)
{
    flush_out(s, c);
    serve_input(s, c);
}

static void queue_answer(conn *c, int status, const char *reason, const char *content_type,
                         const char *body, size_t body_len, const char *request_id)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "x-amzn-RequestId: %s\r\n%s\r\n",
                     status, reason, content_type, body_len, request_id,
                     c->close_after_write ? "Connection: close\r\n" : "");
    if (buffer_append(&c->out, head, (size_t)n) != 0 || buffer_append(&c->out, body, body_len) != 0)
        c->close_after_write = true; /* out of memory: give up on this client */
}

static void answer(stub *s, conn *c, int status, const char *reason, const char *content_type,
                   const char *body)
{
    char request_id[40];
    snprintf(request_id, sizeof request_id, "00000000-0000-4000-8000-%012llx",
             (unsigned long long)++s->request_ids);
    queue_answer(c, status, reason, content_type, body, strlen(body), request_id);
}

/* An error the stub itself gives (bad request, upstream down), JSON as KMS. */
static void answer_error(stub *s, conn *c, int status, const char *reason, const char *message)
{
    char body[512];
    snprintf(body, sizeof body, "{\"__type\":\"KmsStubError\",\"message\":\"%s\"}", message);
    answer(s, c, status, reason, "application/x-amz-json-1.1", body);
}

/* --- the Sign memory ------------------------------------------------------ */

static const cache_entry *cache_find(const stub *s, const char *body, size_t len)
{
    uint64_t hash = fnv1a(body, len);
    for (size_t probe = 0; probe < CACHE_SLOTS; probe++) {
        const cache_entry *entry = &s->cache[(hash + probe) % CACHE_SLOTS];
        if (entry->request.data == NULL)
            return NULL;
        if (entry->hash == hash && entry->request.len == len &&
            memcmp(entry->request.data, body, len) == 0)
            return entry;
    }
    return NULL;
}

/* Remembers an answer; a full memory or no memory just forgets it. */
static void cache_put(stub *s, const buffer *request, const char *answer_body, size_t answer_len)
{
    if (cache_find(s, request->data, request->len) != NULL)
        return;
    uint64_t hash = fnv1a(request->data, request->len);
    for (size_t probe = 0; probe < CACHE_SLOTS; probe++) {
        cache_entry *entry = &s->cache[(hash + probe) % CACHE_SLOTS];
        if (entry->request.data != NULL)
            continue;
        if (buffer_append(&entry->request, request->data, request->len) != 0 ||
            buffer_append(&entry->answer, answer_body, answer_len) != 0) {
            buffer_free(&entry->request);
            buffer_free(&entry->answer);
            return;
        }
        entry->hash = hash;
        return;
    }
}

static void write_sign_answer(stub *s, conn *c, const cache_entry *entry)
{
    char request_id[40];
    snprintf(request_id, sizeof request_id, "00000000-0000-4000-8000-%012llx",
             (unsigned long long)++s->request_ids);
    queue_answer(c, 200, "OK", "application/x-amz-json-1.1", entry->answer.data, entry->answer.len,
                 request_id);
}

/* --- delayed answers: a FIFO on one timerfd ---------------------------- */

static void arm_timer(stub *s)
{
    struct itimerspec when = {0};
    if (s->queue_count > 0) {
        int64_t due = s->queue[s->queue_head].due_ns;
        if (due <= 0)
            due = 1;
        when.it_value.tv_sec = due / 1000000000;
        when.it_value.tv_nsec = due % 1000000000;
    }
    timerfd_settime(s->timer_fd, TFD_TIMER_ABSTIME, &when, NULL);
}

static int queue_push(stub *s, conn *c, const cache_entry *entry)
{
    if (s->queue_count == s->queue_cap) {
        size_t cap = s->queue_cap ? s->queue_cap * 2 : 64;
        delayed_answer *queue = malloc(cap * sizeof *queue);
        if (queue == NULL)
            return -1;
        for (size_t i = 0; i < s->queue_count; i++)
            queue[i] = s->queue[(s->queue_head + i) % s->queue_cap];
        free(s->queue);
        s->queue = queue;
        s->queue_cap = cap;
        s->queue_head = 0;
    }
    s->queue[(s->queue_head + s->queue_count) % s->queue_cap] =
        (delayed_answer){c, entry, now_ns() + s->sign_delay_ns};
    if (s->queue_count++ == 0)
        arm_timer(s);
    return 0;
}

/* The timer fired: answers every queued Sign that is due. */
static void on_timer(stub *s)
{
    uint64_t expirations;
    if (read(s->timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        return;
    int64_t now = now_ns();
    while (s->queue_count > 0 && s->queue[s->queue_head].due_ns <= now) {
        delayed_answer due = s->queue[s->queue_head];
        s->queue_head = (s->queue_head + 1) % s->queue_cap;
        s->queue_count--;
        due.conn->delayed--;
        if (due.conn->closed)
            continue;
        due.conn->busy = false;
        write_sign_answer(s, due.conn, due.entry);
        resume(s, due.conn);
    }
    arm_timer(s);
}

/* --- forwarding ------------------------------------------------------------- */

static void upstream_failed(stub *s, conn *c, const char *message)
{
    close_upstream(s, c);
    if (!c->busy)
        return;
    c->busy = false;
    c->forwarding_sign = false;
    answer_error(s, c, 502, "Bad Gateway", message);
    resume(s, c);
}

static void upstream_write(stub *s, conn *c)
{
    while (c->up_sent < c->up_out.len) {
        ssize_t sent = send(c->upstream_fd, c->up_out.data + c->up_sent, c->up_out.len - c->up_sent,
                            MSG_NOSIGNAL);
        if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
            watch_fd(s, c->upstream_fd, &c->upstream_watch, &c->upstream_events,
                     EPOLLIN | EPOLLOUT);
            return;
        }
        if (sent <= 0) {
            upstream_failed(s, c, "the upstream emulator closed the connection");
            return;
        }
        c->up_sent += (size_t)sent;
    }
    watch_fd(s, c->upstream_fd, &c->upstream_watch, &c->upstream_events, EPOLLIN);
}

static int upstream_connect(stub *s, conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&s->upstream, sizeof s->upstream) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    c->upstream_fd = fd;
    c->upstream_connecting = true;
    c->upstream_events = 0;
    watch_fd(s, fd, &c->upstream_watch, &c->upstream_events, EPOLLIN | EPOLLOUT);
    return 0;
}

/* Sends the request bytes upstream; the answer goes back as it comes. */
static void forward(stub *s, conn *c, const char *request, size_t len)
{
    c->busy = true;
    c->up_out.len = 0;
    c->up_sent = 0;
    c->up_in.len = 0;
    c->upstream_close = false;
    if (buffer_append(&c->up_out, request, len) != 0) {
        upstream_failed(s, c, "out of memory");
        return;
    }
    if (c->upstream_fd < 0 && upstream_connect(s, c) != 0) {
        upstream_failed(s, c, "cannot connect to the upstream emulator");
        return;
    }
    if (!c->upstream_connecting)
        upstream_write(s, c);
}

typedef struct {
    long length;
    bool close;
} answer_scan;

static void on_answer_header(const char *name, size_t name_len, const char *value, size_t value_len,
                             void *ctx)
{
    answer_scan *scan = ctx;
    if (equals_token(name, name_len, "content-length"))
        scan->length = parse_length(value, value_len);
    else if (equals_token(name, name_len, "connection"))
        scan->close = equals_token(value, value_len, "close");
}

/* A whole upstream answer is in up_in[0, total): hand it to the client. */
static void deliver_upstream_answer(stub *s, conn *c, size_t head_len, size_t total, int status)
{
    if (c->forwarding_sign && status == 200)
        cache_put(s, &c->sign_request, c->up_in.data + head_len, total - head_len);
    c->forwarding_sign = false;
    if (buffer_append(&c->out, c->up_in.data, total) != 0)
        c->close_after_write = true;
    if (c->upstream_close)
        c->close_after_write = true;
    /* A connection whose request was not all sent cannot carry another. */
    if (c->upstream_close || c->up_sent < c->up_out.len)
        close_upstream(s, c);
    else
        buffer_consume(&c->up_in, total);
    c->busy = false;
    resume(s, c);
}

/* Parses what the upstream sent so far; 1xx interim answers are dropped. */
static void upstream_parse(stub *s, conn *c)
{
    for (;;) {
        size_t head_len = head_end(c->up_in.data, c->up_in.len);
        if (head_len == 0)
            return;
        int status = 0;
        if (sscanf(c->up_in.data, "HTTP/1.%*d %d", &status) != 1) {
            upstream_failed(s, c, "the upstream answer has no status line");
            return;
        }
        if (status >= 100 && status < 200) {
            buffer_consume(&c->up_in, head_len);
            continue;
        }
        answer_scan scan = {.length = -1};
        if (for_each_header(c->up_in.data, head_len, on_answer_header, &scan) != 0 ||
            scan.length < 0) {
            upstream_failed(s, c, "the upstream answer has no Content-Length");
            return;
        }
        c->upstream_close = scan.close;
        size_t total = head_len + (size_t)scan.length;
        if (c->up_in.len >= total)
            deliver_upstream_answer(s, c, head_len, total, status);
        return;
    }
}

static void on_upstream(stub *s, conn *c, uint32_t events)
{
    if (c->closed || c->upstream_fd < 0)
        return;
    if (c->upstream_connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int error = 0;
        socklen_t len = sizeof error;
        getsockopt(c->upstream_fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error != 0) {
            upstream_failed(s, c, "cannot connect to the upstream emulator");
            return;
        }
        c->upstream_connecting = false;
    }
    if ((events & EPOLLOUT) && !c->upstream_connecting) {
        upstream_write(s, c);
        if (c->upstream_fd < 0)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    if (buffer_reserve(&c->up_in, READ_CHUNK + 1) != 0) {
        upstream_failed(s, c, "out of memory");
        return;
    }
    ssize_t got = recv(c->upstream_fd, c->up_in.data + c->up_in.len, READ_CHUNK, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        upstream_failed(s, c, "the upstream emulator closed the connection");
        return;
    }
    c->up_in.len += (size_t)got;
    c->up_in.data[c->up_in.len] = '\0';
    if (c->busy)
        upstream_parse(s, c);
}

/* --- serving --------------------------------------------------------------- */

static void write_stats(const stub *s, char *out, size_t cap)
{
    snprintf(out, cap,
             "{\"sign_replayed\":%llu,\"sign_forwarded\":%llu,\"forwarded\":%llu,"
             "\"connections\":%llu,\"sign_delay_ms\":%lld}",
             (unsigned long long)s->sign_replayed, (unsigned long long)s->sign_forwarded,
             (unsigned long long)s->forwarded, (unsigned long long)s->connections,
             (long long)(s->sign_delay_ns / 1000000));
}

static void serve_control(stub *s, conn *c, const request_head *r, const char *body)
{
    char stats[512];
    bool is_stats = equals_token(r->control_path, r->control_path_len, "stats");
    bool is_delay = equals_token(r->control_path, r->control_path_len, "sign_delay_ms");
    if (is_delay && r->is_post) {
        long ms = parse_length(body, r->body_len);
        if (ms < 0 || ms > MAX_DELAY_MS) {
            answer_error(s, c, 400, "Bad Request", "sign_delay_ms: milliseconds, 0 to 60000");
            return;
        }
        s->sign_delay_ns = ms * 1000000LL;
    } else if (!(is_stats && r->is_get)) {
        answer_error(s, c, 404, "Not Found", "GET /_stub/stats or POST /_stub/sign_delay_ms");
        return;
    }
    write_stats(s, stats, sizeof stats);
    answer(s, c, 200, "OK", "application/json", stats);
}

static void serve_sign(stub *s, conn *c, const char *request, size_t head_len, size_t body_len)
{
    const char *body = request + head_len;
    const cache_entry *entry = cache_find(s, body, body_len);
    if (entry == NULL) {
        s->sign_forwarded++;
        c->sign_request.len = 0;
        c->forwarding_sign = buffer_append(&c->sign_request, body, body_len) == 0;
        forward(s, c, request, head_len + body_len);
    } else if (s->sign_delay_ns == 0) {
        s->sign_replayed++;
        write_sign_answer(s, c, entry);
    } else if (queue_push(s, c, entry) == 0) {
        s->sign_replayed++;
        c->busy = true;
        c->delayed++;
    } else {
        answer_error(s, c, 500, "Internal Server Error", "out of memory");
    }
}

/* Serves the requests waiting in c->in, one at a time. */
static void serve_input(stub *s, conn *c)
{
    while (!c->busy && !c->closed && c->in.len > 0 && c->out.len == 0) {
        request_head r;
        int parsed = parse_request_head(&c->in, &r);
        if (parsed == 0)
            return;
        if (parsed < 0 || r.chunked || r.body_len > MAX_BODY) {
            c->close_after_write = true;
            answer_error(s, c,
                         parsed < 0  ? 400
                         : r.chunked ? 501
                                     : 413,
                         "Refused", "the KMS stub serves Content-Length bodies up to 1 MiB");
            flush_out(s, c);
            return;
        }
        if (c->in.len < r.head_len + r.body_len) {
            if (r.expect_continue && !c->continue_sent) {
                c->continue_sent = true;
                buffer_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                flush_out(s, c);
            }
            return;
        }
        c->continue_sent = false;
        c->close_after_write = r.close;
        const char *body = c->in.data + r.head_len;
        if (r.control) {
            serve_control(s, c, &r, body);
        } else if (r.sign && r.is_post) {
            serve_sign(s, c, c->in.data, r.head_len, r.body_len);
        } else {
            s->forwarded++;
            forward(s, c, c->in.data, r.head_len + r.body_len);
        }
        if (c->closed)
            return;
        buffer_consume(&c->in, r.head_len + r.body_len);
        if (c->out.len > 0)
            flush_out(s, c);
    }
}

static void on_client(stub *s, conn *c, uint32_t events)
{
    if (c->closed)
        return;
    if (events & EPOLLOUT) {
        resume(s, c);
        if (c->closed)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    if (c->in.len > MAX_HEAD + MAX_BODY || buffer_reserve(&c->in, READ_CHUNK + 1) != 0) {
        close_conn(s, c);
        return;
    }
    ssize_t got = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, 0);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        close_conn(s, c);
        return;
    }
    c->in.len += (size_t)got;
    c->in.data[c->in.len] = '\0';
    serve_input(s, c);
}

static void on_listener(stub *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->upstream_fd = -1;
        c->client_watch = (watch){WATCH_CLIENT, c};
        c->upstream_watch = (watch){WATCH_UPSTREAM, c};
        c->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = c;
        s->conns = c;
        s->connections++;
        watch_fd(s, fd, &c->client_watch, &c->client_events, EPOLLIN);
    }
}

/* --- set-up and the loop -------------------------------------------------- */

static int parse_upstream(const char *url, struct sockaddr_in *address)
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

static int listen_on(stub *s, int port)
{
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof address;
    if (bind(s->listen_fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(s->listen_fd, 1024) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&address, &len) != 0)
        return -1;
    printf("KMS_STUB_URL=http://127.0.0.1:%d\n", ntohs(address.sin_port));
    fflush(stdout);
    return 0;
}

static int start(stub *s, int port)
{
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->signal_fd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->epoll_fd < 0 || s->signal_fd < 0 || s->timer_fd < 0 || listen_on(s, port) != 0)
        return -1;
    s->listen_watch = (watch){WATCH_LISTENER, NULL};
    s->timer_watch = (watch){WATCH_TIMER, NULL};
    s->signal_watch = (watch){WATCH_SIGNAL, NULL};
    uint32_t listen_events = 0, timer_events = 0, signal_events = 0;
    watch_fd(s, s->listen_fd, &s->listen_watch, &listen_events, EPOLLIN);
    watch_fd(s, s->timer_fd, &s->timer_watch, &timer_events, EPOLLIN);
    watch_fd(s, s->signal_fd, &s->signal_watch, &signal_events, EPOLLIN);
    return 0;
}

static void dispatch(stub *s, const struct epoll_event *event)
{
    const watch *w = event->data.ptr;
    switch (w->kind) {
    case WATCH_LISTENER:
        on_listener(s);
        break;
    case WATCH_CLIENT:
        on_client(s, w->conn, event->events);
        break;
    case WATCH_UPSTREAM:
        on_upstream(s, w->conn, event->events);
        break;
    case WATCH_TIMER:
        on_timer(s);
        break;
    case WATCH_SIGNAL:
        s->stopping = true;
        break;
    }
}

static void run(stub *s)
{
    struct epoll_event events[EVENTS_PER_WAIT];
    while (!s->stopping) {
        int n = epoll_wait(s->epoll_fd, events, EVENTS_PER_WAIT, -1);
        if (n < 0 && errno != EINTR)
            return;
        for (int i = 0; i < n; i++)
            dispatch(s, &events[i]);
        bury_dead(s);
    }
}

static void finish(stub *s)
{
    char stats[512];
    write_stats(s, stats, sizeof stats);
    fprintf(stderr, "kms stub: %s\n", stats);
    while (s->conns != NULL)
        close_conn(s, s->conns);
    for (conn *c = s->dead, *next; c != NULL; c = next) {
        next = c->next;
        free_conn(c);
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        buffer_free(&s->cache[i].request);
        buffer_free(&s->cache[i].answer);
    }
    free(s->queue);
    close(s->listen_fd);
    close(s->timer_fd);
    close(s->signal_fd);
    close(s->epoll_fd);
}

static int usage(const char *program)
{
    fprintf(stderr, "usage: %s --upstream http://127.0.0.1:PORT [--port N] [--sign-delay-ms MS]\n",
            program);
    return 2;
}

int main(int argc, char **argv)
{
    static stub s;
    const char *upstream = NULL;
    long port = 0, delay_ms = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage(argv[0]);
        const char *value = argv[++i];
        const char *name = argv[i - 1];
        if (strcmp(name, "--upstream") == 0)
            upstream = value;
        else if (strcmp(name, "--port") == 0)
            port = parse_length(value, strlen(value));
        else if (strcmp(name, "--sign-delay-ms") == 0)
            delay_ms = parse_length(value, strlen(value));
        else
            return usage(argv[0]);
    }
    if (upstream == NULL || parse_upstream(upstream, &s.upstream) != 0 || port < 0 ||
        port > 65535 || delay_ms < 0 || delay_ms > MAX_DELAY_MS)
        return usage(argv[0]);
    s.sign_delay_ns = delay_ms * 1000000LL;
    if (start(&s, (int)port) != 0) {
        perror("kms stub: start");
        return 1;
    }
    run(&s);
    finish(&s);
    return 0;
}

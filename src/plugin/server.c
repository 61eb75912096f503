/* gRPC core server: completion-queue loop, call objects with reference
 * counts (one per outstanding batch, one for the handler, and one that an
 * asynchronous handler holds until it answers, on another thread), dispatch
 * by method kind, and the graceful stop sequence (see server.h). */
#include "plugin/server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "plugin/call.h"
#include "plugin/deadline.h"

enum {
    REQUESTS_PER_METHOD = 16, /* outstanding request_registered_call per method */
    GENERIC_REQUESTS = 2,     /* outstanding request_call for unknown methods */
    MAX_METHODS = 32,
    STOP_TICK_MS = 50,
    ASYNC_CALLS_MAX = 4096, /* METHOD_ASYNC calls waiting for KMS at once (KM_MAX_ASYNC_CALLS) */
};

typedef enum {
    TAG_NEW_CALL,
    TAG_RECV_CLOSE,
    TAG_SEND_INITIAL,
    TAG_SEND_FINAL,
    TAG_RECV_MESSAGE,
    TAG_SERVER_SHUTDOWN,
} tag_kind;

typedef struct {
    tag_kind kind;
    call_context *ctx;
} call_tag;

struct call_context {
    plugin_server *server;
    const method_def *method; /* NULL: a method we do not serve */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_metadata;
    grpc_call_details details; /* generic requests only */
    grpc_byte_buffer *payload; /* unary request, or the last stream message */
    grpc_slice request_slice;
    bool have_request_slice;
    int close_cancelled;
    atomic_bool cancelled;
    bool counted_async; /* counted in live_async until released */
    aws_call_ctx call_ctx;
    atomic_int refs;
    pthread_mutex_t lock; /* serialises batches started on this call */
    bool final_started;
    grpc_byte_buffer *response;
    grpc_slice status_details;
    grpc_status_code status_code;
    int64_t started_us;
    call_context *next_stream, *prev_stream; /* open streams, CQ thread only */
    call_tag tag_new, tag_close, tag_initial, tag_final, tag_recv;
};

struct plugin_server {
    server_methods methods;
    grpc_completion_queue *cq;
    grpc_server *server;
    void *registered[MAX_METHODS];
    worker_pool *pool;
    atomic_bool stop_requested;
    atomic_int live_calls; /* arrived and not yet released */
    atomic_int live_unary; /* unary calls among them */
    atomic_int live_async; /* METHOD_ASYNC calls among them */
    int async_limit;
    int pending_requests; /* CQ thread only */
    bool shutdown_done;   /* CQ thread only */
    call_tag shutdown_tag;
    call_context *streams; /* CQ thread only */
    void (*stop_hook)(void *arg);
    void *stop_hook_arg;
};

/* --- call objects ------------------------------------------------------------ */

static bool method_is_unary(const method_def *method)
{
    return method != NULL && (method->kind == METHOD_INLINE || method->kind == METHOD_ASYNC ||
                              method->kind == METHOD_WORKER);
}

static call_context *call_new(plugin_server *server, const method_def *method)
{
    call_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return NULL;
    ctx->server = server;
    ctx->method = method;
    grpc_metadata_array_init(&ctx->request_metadata);
    grpc_call_details_init(&ctx->details);
    pthread_mutex_init(&ctx->lock, NULL);
    atomic_init(&ctx->cancelled, false);
    atomic_init(&ctx->refs, 0);
    ctx->status_code = GRPC_STATUS_OK;
    ctx->tag_new = (call_tag){TAG_NEW_CALL, ctx};
    ctx->tag_close = (call_tag){TAG_RECV_CLOSE, ctx};
    ctx->tag_initial = (call_tag){TAG_SEND_INITIAL, ctx};
    ctx->tag_final = (call_tag){TAG_SEND_FINAL, ctx};
    ctx->tag_recv = (call_tag){TAG_RECV_MESSAGE, ctx};
    return ctx;
}

static void call_destroy(call_context *ctx)
{
    if (ctx->payload != NULL)
        grpc_byte_buffer_destroy(ctx->payload);
    if (ctx->have_request_slice)
        grpc_slice_unref(ctx->request_slice);
    grpc_metadata_array_destroy(&ctx->request_metadata);
    grpc_call_details_destroy(&ctx->details);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static const char *call_path(const call_context *ctx, char **owned)
{
    *owned = NULL;
    if (ctx->method != NULL)
        return ctx->method->path;
    *owned = grpc_slice_to_c_string(ctx->details.method);
    return *owned;
}

static void log_call_end(const call_context *ctx)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char *owned;
    const char *path = call_path(ctx, &owned);
    char status[16], duration[32];
    snprintf(status, sizeof status, "%d", (int)ctx->status_code);
    snprintf(duration, sizeof duration, "%lld",
             (long long)(clock_monotonic_us() - ctx->started_us));
    log_write(LOG_DEBUG, "grpc", "rpc", "method", path, "code", status, "duration_us", duration,
              LOG_END);
    gpr_free(owned);
}

void call_hold(call_context *ctx) { atomic_fetch_add(&ctx->refs, 1); }

/* Drops one reference; the last one ends the call. Any thread. */
void call_release(call_context *ctx)
{
    if (atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    plugin_server *server = ctx->server;
    bool unary = method_is_unary(ctx->method);
    bool counted_async = ctx->counted_async;
    log_call_end(ctx);
    grpc_call_unref(ctx->call);
    call_destroy(ctx);
    if (counted_async)
        atomic_fetch_sub(&server->live_async, 1);
    if (unary)
        atomic_fetch_sub(&server->live_unary, 1);
    atomic_fetch_sub(&server->live_calls, 1);
}

/* Starts a batch holding one reference until its tag completes. */
static bool call_start(call_context *ctx, const grpc_op *ops, size_t count, call_tag *tag)
{
    call_hold(ctx);
    pthread_mutex_lock(&ctx->lock);
    grpc_call_error error = grpc_call_start_batch(ctx->call, ops, count, tag, NULL);
    pthread_mutex_unlock(&ctx->lock);
    if (error == GRPC_CALL_OK)
        return true;
    log_writef(LOG_ERROR, "grpc", "grpc_call_start_batch failed: %d", (int)error);
    call_release(ctx);
    return false;
}

/* The one final batch: initial metadata (unless sent), message, status. */
static void call_finish(call_context *ctx, grpc_byte_buffer *response, grpc_status_code code,
                        const char *message, bool initial_sent)
{
    pthread_mutex_lock(&ctx->lock);
    bool first = !ctx->final_started;
    ctx->final_started = true;
    pthread_mutex_unlock(&ctx->lock);
    if (!first) {
        if (response != NULL)
            grpc_byte_buffer_destroy(response);
        return;
    }
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!initial_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (response != NULL) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = response;
    }
    ctx->response = response;
    ctx->status_code = code;
    ctx->status_details = grpc_slice_from_copied_string(message != NULL ? message : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &ctx->status_details;
    if (!call_start(ctx, ops, n, &ctx->tag_final)) {
        grpc_slice_unref(ctx->status_details);
        ctx->status_details = grpc_empty_slice();
    }
}

static bool call_is_stream(const call_context *ctx)
{
    return ctx->method != NULL &&
           (ctx->method->kind == METHOD_SERVER_STREAM || ctx->method->kind == METHOD_BIDI_STREAM);
}

void call_reply(call_context *ctx, const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size(message);
    grpc_slice slice = grpc_slice_malloc(size);
    protobuf_c_message_pack(message, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    call_finish(ctx, buffer, GRPC_STATUS_OK, "", call_is_stream(ctx));
}

void call_fail(call_context *ctx, grpc_status_code code, const char *message)
{
    call_finish(ctx, NULL, code, message, call_is_stream(ctx));
}

const aws_call_ctx *call_ctx_of(const call_context *ctx) { return &ctx->call_ctx; }

const char *call_method_name(const call_context *ctx)
{
    return ctx->method != NULL ? ctx->method->name : "unknown";
}

void *call_user(const call_context *ctx) { return ctx->server->methods.user; }

void call_request_stop(const call_context *ctx, const char *reason)
{
    server_request_stop(ctx->server, reason);
}

/* --- requesting calls ------------------------------------------------------- */

static void post_request(plugin_server *server, const method_def *method)
{
    call_context *ctx = call_new(server, method);
    if (ctx == NULL)
        return;
    grpc_call_error error;
    if (method == NULL) {
        error =
            grpc_server_request_call(server->server, &ctx->call, &ctx->details,
                                     &ctx->request_metadata, server->cq, server->cq, &ctx->tag_new);
    } else {
        bool unary = method_is_unary(method);
        error = grpc_server_request_registered_call(
            server->server, server->registered[method - server->methods.methods], &ctx->call,
            &ctx->deadline, &ctx->request_metadata, unary ? &ctx->payload : NULL, server->cq,
            server->cq, &ctx->tag_new);
    }
    if (error != GRPC_CALL_OK) {
        call_destroy(ctx);
        return;
    }
    server->pending_requests++;
}

/* --- dispatch ---------------------------------------------------------------- */

static bool read_payload(call_context *ctx, ProtobufCBinaryData *out)
{
    out->data = NULL;
    out->len = 0;
    if (ctx->payload == NULL)
        return true;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, ctx->payload))
        return false;
    if (ctx->have_request_slice)
        grpc_slice_unref(ctx->request_slice);
    ctx->request_slice = grpc_byte_buffer_reader_readall(&reader);
    ctx->have_request_slice = true;
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(ctx->payload);
    ctx->payload = NULL;
    out->data = GRPC_SLICE_START_PTR(ctx->request_slice);
    out->len = GRPC_SLICE_LENGTH(ctx->request_slice);
    return true;
}

static void run_handler(call_context *ctx)
{
    ProtobufCBinaryData request;
    if (!read_payload(ctx, &request)) {
        char message[160];
        snprintf(message, sizeof message, "%s: unreadable request payload", call_method_name(ctx));
        call_fail(ctx, GRPC_STATUS_INVALID_ARGUMENT, message);
        return;
    }
    ctx->method->handle(ctx, &request);
}

static void worker_job_main(void *arg)
{
    call_context *ctx = arg;
    run_handler(ctx);
    call_release(ctx);
}

static void start_recv_message(call_context *ctx)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &ctx->payload;
    call_start(ctx, &op, 1, &ctx->tag_recv);
}

static void stream_list_add(plugin_server *server, call_context *ctx)
{
    ctx->next_stream = server->streams;
    ctx->prev_stream = NULL;
    if (server->streams != NULL)
        server->streams->prev_stream = ctx;
    server->streams = ctx;
}

static bool stream_list_remove(plugin_server *server, call_context *ctx)
{
    if (ctx->prev_stream == NULL && server->streams != ctx)
        return false;
    if (ctx->prev_stream != NULL)
        ctx->prev_stream->next_stream = ctx->next_stream;
    else
        server->streams = ctx->next_stream;
    if (ctx->next_stream != NULL)
        ctx->next_stream->prev_stream = ctx->prev_stream;
    ctx->next_stream = ctx->prev_stream = NULL;
    return true;
}

static void start_stream(call_context *ctx)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    call_start(ctx, &op, 1, &ctx->tag_initial);
    if (ctx->method->kind == METHOD_BIDI_STREAM)
        start_recv_message(ctx);
    /* The handler reference stays with the stream list until RECV_CLOSE. */
    stream_list_add(ctx->server, ctx);
}

/* Counts an asynchronous call in, unless the limit is reached. */
static bool admit_async(call_context *ctx)
{
    plugin_server *server = ctx->server;
    if (atomic_fetch_add(&server->live_async, 1) >= server->async_limit) {
        atomic_fetch_sub(&server->live_async, 1);
        return false;
    }
    ctx->counted_async = true;
    return true;
}

static void dispatch_unary(call_context *ctx)
{
    atomic_fetch_add(&ctx->server->live_unary, 1);
    if (ctx->payload == NULL && grpc_call_failed_before_recv_message(ctx->call)) {
        call_release(ctx); /* cancelled before its request arrived */
        return;
    }
    if (ctx->method->kind == METHOD_ASYNC && !admit_async(ctx)) {
        char message[160];
        snprintf(message, sizeof message, "%s: the plugin is busy (%d calls wait for KMS); retry",
                 call_method_name(ctx), ctx->server->async_limit);
        call_fail(ctx, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
        call_release(ctx);
        return;
    }
    if (ctx->method->kind == METHOD_INLINE || ctx->method->kind == METHOD_ASYNC) {
        run_handler(ctx);
        call_release(ctx);
        return;
    }
    if (!workers_submit(ctx->server->pool, worker_job_main, ctx)) {
        char message[160];
        snprintf(message, sizeof message, "%s: the plugin is busy (worker queue full); retry",
                 call_method_name(ctx));
        call_fail(ctx, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
        call_release(ctx);
    }
}

static void dispatch_unknown(call_context *ctx)
{
    char *path = grpc_slice_to_c_string(ctx->details.method);
    char message[300];
    snprintf(message, sizeof message, "unknown method %.200s", path);
    gpr_free(path);
    call_fail(ctx, GRPC_STATUS_UNIMPLEMENTED, message);
    call_release(ctx);
}

static void on_new_call(call_context *ctx, bool success)
{
    plugin_server *server = ctx->server;
    server->pending_requests--;
    if (!atomic_load(&server->stop_requested))
        post_request(server, ctx->method);
    if (!success) {
        call_destroy(ctx);
        return;
    }
    atomic_fetch_add(&server->live_calls, 1);
    ctx->started_us = clock_monotonic_us();
    if (ctx->method == NULL)
        ctx->deadline = ctx->details.deadline;
    ctx->call_ctx.deadline_ms = deadline_monotonic_ms(ctx->deadline);
    ctx->call_ctx.cancelled = &ctx->cancelled;
    atomic_store(&ctx->refs, 1); /* the handler's reference */

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &ctx->close_cancelled;
    call_start(ctx, &op, 1, &ctx->tag_close);

    if (ctx->method == NULL)
        dispatch_unknown(ctx);
    else if (method_is_unary(ctx->method))
        dispatch_unary(ctx);
    else
        start_stream(ctx);
}

static void on_recv_close(call_context *ctx)
{
    if (ctx->close_cancelled) {
        atomic_store(&ctx->cancelled, true);
        pthread_mutex_lock(&ctx->lock);
        if (!ctx->final_started)
            ctx->status_code = GRPC_STATUS_CANCELLED;
        pthread_mutex_unlock(&ctx->lock);
    }
    if (call_is_stream(ctx) && stream_list_remove(ctx->server, ctx))
        call_release(ctx); /* the stream's handler reference */
    call_release(ctx);
}

static void on_recv_message(call_context *ctx, bool success)
{
    if (success && ctx->payload != NULL) {
        ProtobufCBinaryData message;
        if (read_payload(ctx, &message))
            ctx->method->handle(ctx, &message);
        if (!atomic_load(&ctx->server->stop_requested))
            start_recv_message(ctx);
    } else if (success && !ctx->close_cancelled &&
               !grpc_call_failed_before_recv_message(ctx->call)) {
        call_finish(ctx, NULL, GRPC_STATUS_OK, "", true); /* the client half-closed */
    }
    call_release(ctx);
}

static void on_send_final(call_context *ctx)
{
    if (ctx->response != NULL) {
        grpc_byte_buffer_destroy(ctx->response);
        ctx->response = NULL;
    }
    grpc_slice_unref(ctx->status_details);
    call_release(ctx);
}

static void handle_event(plugin_server *server, const grpc_event *event)
{
    call_tag *tag = event->tag;
    switch (tag->kind) {
    case TAG_NEW_CALL:
        on_new_call(tag->ctx, event->success != 0);
        break;
    case TAG_RECV_CLOSE:
        on_recv_close(tag->ctx);
        break;
    case TAG_RECV_MESSAGE:
        on_recv_message(tag->ctx, event->success != 0);
        break;
    case TAG_SEND_FINAL:
        on_send_final(tag->ctx);
        break;
    case TAG_SEND_INITIAL:
        call_release(tag->ctx);
        break;
    case TAG_SERVER_SHUTDOWN:
        server->shutdown_done = true;
        break;
    }
}

/* --- start, run, stop -------------------------------------------------------- */

/* ASYNC_CALLS_MAX, or KM_MAX_ASYNC_CALLS (1..ASYNC_CALLS_MAX) for tests. */
static int async_limit(void)
{
    const char *text = getenv("KM_MAX_ASYNC_CALLS");
    char *end = NULL;
    long value = text != NULL ? strtol(text, &end, 10) : 0;
    if (text == NULL || end == text || *end != '\0' || value < 1 || value > ASYNC_CALLS_MAX)
        return ASYNC_CALLS_MAX;
    return (int)value;
}

plugin_server *server_start(const char *socket_path, const server_methods *methods,
                            worker_pool *pool, char *error, size_t error_size)
{
    if (methods->count > MAX_METHODS) {
        snprintf(error, error_size, "too many methods");
        return NULL;
    }
    plugin_server *server = calloc(1, sizeof *server);
    if (server == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    server->methods = *methods;
    server->pool = pool;
    server->async_limit = async_limit();
    server->shutdown_tag = (call_tag){TAG_SERVER_SHUTDOWN, NULL};
    server->cq = grpc_completion_queue_create_for_next(NULL);
    server->server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(server->server, server->cq, NULL);
    for (size_t i = 0; i < methods->count; i++) {
        const method_def *method = &methods->methods[i];
        bool unary = method_is_unary(method);
        server->registered[i] = grpc_server_register_method(
            server->server, method->path, NULL,
            unary ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
    }
    char address[256];
    snprintf(address, sizeof address, "unix:%s", socket_path);
    grpc_server_credentials *credentials = grpc_insecure_server_credentials_create();
    int bound = grpc_server_add_http2_port(server->server, address, credentials);
    grpc_server_credentials_release(credentials);
    if (!bound) {
        snprintf(error, error_size, "cannot listen on %s", socket_path);
        server_request_stop(server, "cannot listen");
        server_run(server, 0, 0);
        server_free(server);
        return NULL;
    }
    grpc_server_start(server->server);
    for (size_t i = 0; i < methods->count; i++) {
        for (int k = 0; k < REQUESTS_PER_METHOD; k++)
            post_request(server, &methods->methods[i]);
    }
    for (int k = 0; k < GENERIC_REQUESTS; k++)
        post_request(server, NULL);
    return server;
}

void server_set_stop_hook(plugin_server *server, void (*hook)(void *arg), void *arg)
{
    server->stop_hook = hook;
    server->stop_hook_arg = arg;
}

void server_request_stop(plugin_server *server, const char *reason)
{
    if (atomic_exchange(&server->stop_requested, true))
        return;
    log_write(LOG_INFO, "plugin", "stopping", "reason", reason, LOG_END);
    grpc_server_shutdown_and_notify(server->server, server->cq, &server->shutdown_tag);
}

/* Ends every open stream with status OK (the host sees a clean end). */
static void finish_streams(plugin_server *server)
{
    for (call_context *ctx = server->streams; ctx != NULL; ctx = ctx->next_stream)
        call_finish(ctx, NULL, GRPC_STATUS_OK, "", true);
}

int server_run(plugin_server *server, int64_t drain_ms, int64_t cancel_ms)
{
    bool stopping = false, cancelled_all = false;
    int64_t stop_started = 0;
    for (;;) {
        gpr_timespec wait = stopping
                                ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                               gpr_time_from_millis(STOP_TICK_MS, GPR_TIMESPAN))
                                : gpr_inf_future(GPR_CLOCK_MONOTONIC);
        grpc_event event = grpc_completion_queue_next(server->cq, wait, NULL);
        if (event.type == GRPC_OP_COMPLETE)
            handle_event(server, &event);
        if (!stopping && atomic_load(&server->stop_requested)) {
            stopping = true;
            stop_started = clock_monotonic_ms();
            finish_streams(server);
            if (server->stop_hook != NULL)
                server->stop_hook(server->stop_hook_arg);
        }
        if (!stopping)
            continue;
        int64_t elapsed = clock_monotonic_ms() - stop_started;
        if (!cancelled_all && (atomic_load(&server->live_unary) == 0 || elapsed >= drain_ms)) {
            grpc_server_cancel_all_calls(server->server);
            cancelled_all = true;
        }
        if (server->shutdown_done && atomic_load(&server->live_calls) == 0 &&
            server->pending_requests == 0)
            return 0;
        if (elapsed >= drain_ms + cancel_ms)
            return -1;
    }
}

void server_free(plugin_server *server)
{
    if (server == NULL)
        return;
    grpc_server_destroy(server->server);
    grpc_completion_queue_shutdown(server->cq);
    for (;;) {
        grpc_event event =
            grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (event.type == GRPC_QUEUE_SHUTDOWN)
            break;
    }
    grpc_completion_queue_destroy(server->cq);
    free(server);
}

/* The call object handlers see, and the method table the server serves: a
 * plain function per method receives the call and the request bytes, and
 * answers exactly once with call_reply or call_fail, from whichever thread it
 * runs on. A METHOD_ASYNC handler that answers after it returns takes a
 * reference with call_hold first and drops it with call_release after its
 * answer. The server knows only this header's types; what a handler works on
 * (the keymanager) reaches it as the server's user pointer (call_user).
 * Internal to src/plugin. */
#ifndef KM_PLUGIN_CALL_H
#define KM_PLUGIN_CALL_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>

#include "aws/call_ctx.h"

typedef struct call_context call_context;

typedef enum {
    METHOD_INLINE,        /* unary, cheap: answered on the completion-queue thread */
    METHOD_ASYNC,         /* unary, waits for KMS without a thread: started on the
                             completion-queue thread, which never blocks in it; the
                             handler holds the call (call_hold) and answers from the
                             thread that ends it (the HTTP event thread) */
    METHOD_WORKER,        /* unary, may block (KMS): answered on the worker pool */
    METHOD_SERVER_STREAM, /* held open, sends nothing, ends at shutdown */
    METHOD_BIDI_STREAM,   /* every received message goes to handle */
} method_kind;

typedef void (*method_handler)(call_context *ctx, const ProtobufCBinaryData *request);

typedef struct {
    const char *path; /* "/package.Service/Method" */
    const char *name; /* "Method" */
    method_kind kind;
    method_handler handle; /* NULL for METHOD_SERVER_STREAM */
} method_def;

/* One more reference to the call (any thread); call_release drops it, and
 * the last one ends the call. */
void call_hold(call_context *ctx);
void call_release(call_context *ctx);

/* Answers OK with message (packed here; the caller keeps ownership). */
void call_reply(call_context *ctx, const ProtobufCMessage *message);

/* Answers with a gRPC status code (not OK) and a message for the client. */
void call_fail(call_context *ctx, grpc_status_code code, const char *message);

/* The call's deadline (CLOCK_MONOTONIC ms) and cancellation flag. */
const aws_call_ctx *call_ctx_of(const call_context *ctx);

/* The method's short name ("SignData"), for messages. */
const char *call_method_name(const call_context *ctx);

/* The user pointer given to server_start (the handlers' keymanager). */
void *call_user(const call_context *ctx);

/* Begins the graceful stop of the server serving this call (see
 * server_request_stop). */
void call_request_stop(const call_context *ctx, const char *reason);

#endif

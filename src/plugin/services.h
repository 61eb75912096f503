/* The method table: every gRPC method this plugin serves, how it runs
 * (inline on the completion-queue thread, started there and answered later,
 * on the worker pool, or as a stream) and the handler that maps protobuf to
 * the keymanager. */
#ifndef KM_PLUGIN_SERVICES_H
#define KM_PLUGIN_SERVICES_H

#include <stddef.h>

#include "keymanager/keymanager.h"
#include "plugin/call.h"

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

extern const method_def service_methods[];
extern const size_t service_method_count;

/* The keymanager the handlers use (set once before serving). */
void services_bind(km_manager *manager);

#endif

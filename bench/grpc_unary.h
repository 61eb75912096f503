/* One unary call on gRPC core's C API, for the benchmark clients: the
 * request bytes go out, the response bytes come back flattened. */
#ifndef BENCH_GRPC_UNARY_H
#define BENCH_GRPC_UNARY_H

#include <grpc/grpc.h>
#include <stddef.h>

typedef struct {
    grpc_channel *channel;
    grpc_completion_queue *cq; /* a pluck queue owned by the calling thread */
} grpc_unary_caller;

/* A channel to "unix:PATH" (insecure, like go-plugin); NULL on failure. */
grpc_channel *grpc_unary_channel(const char *socket_path);

/* Calls method with the request bytes and a 10 s deadline. Returns the
 * status (GRPC_STATUS_UNKNOWN when the batch failed); on OK, *response is the
 * flattened answer (grpc_slice_unref it). */
grpc_status_code grpc_unary_call(const grpc_unary_caller *caller, const char *method,
                                 const void *request, size_t request_len, grpc_slice *response);

/* A caller with its own pluck queue; grpc_unary_caller_close drains and
 * frees the queue. */
void grpc_unary_caller_open(grpc_unary_caller *caller, grpc_channel *channel);
void grpc_unary_caller_close(grpc_unary_caller *caller);

#endif

/* One unary call on gRPC core's C API: see grpc_unary.h. */
#include "grpc_unary.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_flag failure_reported = ATOMIC_FLAG_INIT;

grpc_channel *grpc_unary_channel(const char *socket_path)
{
    char target[512];
    if ((size_t)snprintf(target, sizeof target, "unix:%s", socket_path) >= sizeof target)
        return NULL;
    grpc_channel_credentials *credentials = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(target, credentials, NULL);
    grpc_channel_credentials_release(credentials);
    return channel;
}

void grpc_unary_caller_open(grpc_unary_caller *caller, grpc_channel *channel)
{
    caller->channel = channel;
    caller->cq = grpc_completion_queue_create_for_pluck(NULL);
}

void grpc_unary_caller_close(grpc_unary_caller *caller)
{
    grpc_completion_queue_shutdown(caller->cq);
    while (grpc_completion_queue_pluck(caller->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(caller->cq);
}

/* The first failed call is described on stderr; later ones are only counted. */
static void report_failure(const char *method, grpc_status_code status, grpc_slice details)
{
    if (atomic_flag_test_and_set(&failure_reported))
        return;
    char *text = grpc_slice_to_c_string(details);
    fprintf(stderr, "%s failed: status %d: %s\n", method, (int)status, text);
    gpr_free(text);
}

static grpc_slice flatten(grpc_byte_buffer *buffer)
{
    grpc_byte_buffer_reader reader;
    if (buffer == NULL || !grpc_byte_buffer_reader_init(&reader, buffer))
        return grpc_empty_slice();
    grpc_slice whole = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return whole;
}

grpc_status_code grpc_unary_call(const grpc_unary_caller *caller, const char *method,
                                 const void *request, size_t request_len, grpc_slice *response)
{
    *response = grpc_empty_slice();
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(10, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(caller->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                               caller->cq, method_slice, NULL, deadline, NULL);
    grpc_slice payload = grpc_slice_from_static_buffer(request, request_len);
    grpc_byte_buffer *request_buffer = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_byte_buffer *response_buffer = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request_buffer;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response_buffer;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
        grpc_event event = grpc_completion_queue_pluck(caller->cq, call, deadline, NULL);
        if (event.type != GRPC_OP_COMPLETE || !event.success)
            status = GRPC_STATUS_UNKNOWN;
    }
    if (status == GRPC_STATUS_OK)
        *response = flatten(response_buffer);
    else
        report_failure(method, status, details);
    grpc_slice_unref(details);
    grpc_byte_buffer_destroy(request_buffer);
    if (response_buffer != NULL)
        grpc_byte_buffer_destroy(response_buffer);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    return status;
}

/* AWS error to km_status mapping (see km_status.h) and km_status_set. */
#include "keymanager/km_status.h"

#include <stdarg.h>
#include <stdio.h>

void km_status_set(km_status *status, grpc_status_code code, const char *format, ...)
{
    status->code = code;
    va_list args;
    va_start(args, format);
    vsnprintf(status->message, sizeof status->message, format, args);
    va_end(args);
}

void km_status_ok(km_status *status)
{
    status->code = GRPC_STATUS_OK;
    status->message[0] = '\0';
}

grpc_status_code km_code_for_aws(aws_status status)
{
    switch (status) {
    case AWS_ERR_NOT_FOUND:
        return GRPC_STATUS_NOT_FOUND;
    case AWS_ERR_VALIDATION:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case AWS_ERR_THROTTLED:
    case AWS_ERR_SERVER:
    case AWS_ERR_TRANSPORT:
        return GRPC_STATUS_UNAVAILABLE;
    case AWS_ERR_ACCESS_DENIED:
        return GRPC_STATUS_PERMISSION_DENIED;
    case AWS_ERR_TIMEOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case AWS_ERR_CANCELLED:
        return GRPC_STATUS_CANCELLED;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

int km_fail_aws(km_status *status, const char *operation, const aws_error *err)
{
    const char *code = aws_error_name(err);
    if (err->request_id[0] != '\0')
        km_status_set(status, km_code_for_aws(err->status), "kms %s failed: %s: %s (request id %s)",
                      operation, code, err->message, err->request_id);
    else
        km_status_set(status, km_code_for_aws(err->status), "kms %s failed: %s: %s", operation,
                      code, err->message);
    return -1;
}

/* aws_error helpers: status names and formatted error text. */
#include "aws/aws_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *aws_status_name(aws_status status)
{
    static const char *const names[] = {
        [AWS_OK] = "OK",
        [AWS_ERR_NOT_FOUND] = "NotFound",
        [AWS_ERR_ALREADY_EXISTS] = "AlreadyExists",
        [AWS_ERR_INVALID_STATE] = "InvalidState",
        [AWS_ERR_DISABLED] = "Disabled",
        [AWS_ERR_THROTTLED] = "Throttled",
        [AWS_ERR_ACCESS_DENIED] = "AccessDenied",
        [AWS_ERR_VALIDATION] = "Validation",
        [AWS_ERR_LIMIT_EXCEEDED] = "LimitExceeded",
        [AWS_ERR_CLIENT] = "ClientError",
        [AWS_ERR_SERVER] = "ServerError",
        [AWS_ERR_TRANSPORT] = "TransportError",
        [AWS_ERR_TIMEOUT] = "Timeout",
        [AWS_ERR_CANCELLED] = "Cancelled",
        [AWS_ERR_CREDENTIALS] = "NoCredentials",
        [AWS_ERR_BAD_RESPONSE] = "BadResponse",
        [AWS_ERR_INTERNAL] = "Internal",
    };
    if ((unsigned)status >= sizeof names / sizeof names[0] || names[status] == NULL)
        return "Unknown";
    return names[status];
}

const char *aws_error_name(const aws_error *err)
{
    return err->code[0] != '\0' ? err->code : aws_status_name(err->status);
}

void aws_error_clear(aws_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

void aws_error_set(aws_error *err, aws_status status, const char *format, ...)
{
    if (err == NULL)
        return;
    err->status = status;
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
}

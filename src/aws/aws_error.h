/* Errors from the AWS layer: a typed status an operator and the KeyManager can
 * act on, plus AWS's own error code, message and request id. */
#ifndef KM_AWS_ERROR_H
#define KM_AWS_ERROR_H

typedef enum {
    AWS_OK = 0,
    AWS_ERR_NOT_FOUND,      /* NotFoundException */
    AWS_ERR_ALREADY_EXISTS, /* AlreadyExistsException */
    AWS_ERR_INVALID_STATE,  /* KMSInvalidStateException */
    AWS_ERR_DISABLED,       /* DisabledException */
    AWS_ERR_THROTTLED,      /* ThrottlingException and kin (after retries) */
    AWS_ERR_ACCESS_DENIED,  /* AccessDeniedException, UnrecognizedClient, signature errors */
    AWS_ERR_VALIDATION,     /* ValidationException, InvalidParameter*, *Invalid* */
    AWS_ERR_LIMIT_EXCEEDED, /* LimitExceededException (a quota; never retried) */
    AWS_ERR_CLIENT,         /* any other 4xx */
    AWS_ERR_SERVER,         /* 5xx (after retries) */
    AWS_ERR_TRANSPORT,      /* connection failure (after retries) */
    AWS_ERR_TIMEOUT,        /* request or call deadline exceeded */
    AWS_ERR_CANCELLED,      /* the caller cancelled */
    AWS_ERR_CREDENTIALS,    /* no credentials could be obtained */
    AWS_ERR_BAD_RESPONSE,   /* an answer we could not parse */
    AWS_ERR_INTERNAL,
} aws_status;

typedef struct {
    aws_status status;
    int http_status;     /* 0 when no HTTP answer */
    char code[96];       /* AWS error code ("NotFoundException"), or "" */
    char message[1024];  /* AWS's message or the local cause; never a secret */
    char request_id[96]; /* x-amzn-RequestId, or "" */
    int attempts;        /* HTTP attempts made for the call */
} aws_error;

const char *aws_status_name(aws_status status);
/* How an error names itself in messages and logs: AWS's code
 * ("ThrottlingException"), or the status's name when AWS gave none. */
const char *aws_error_name(const aws_error *err);
void aws_error_clear(aws_error *err);
void aws_error_set(aws_error *err, aws_status status, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#endif

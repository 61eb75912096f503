/* HTTPS for the AWS layer on libcurl: a pool of keep-alive handles shared by
 * all threads, TLS verification, proxies from the environment, timeouts, and
 * optional SigV4 signing (sigv4.h). */
#ifndef KM_AWS_HTTP_H
#define KM_AWS_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/aws_error.h"
#include "aws/credentials.h"

typedef struct aws_http aws_http;

typedef struct {
    size_t pool_size;       /* handles kept alive; 0: default (8) */
    int connect_timeout_ms; /* 0: default (5000) */
    int request_timeout_ms; /* 0: default (15000) */
    const char *ca_bundle;  /* extra CA file, or NULL for the system store */
} aws_http_options;

typedef struct {
    const char *method; /* "GET", "PUT", "POST" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    const char *sigv4_scope;            /* e.g. "aws:amz:us-east-2:kms"; NULL: unsigned */
    const aws_credentials *credentials; /* required when sigv4_scope is set */
    int64_t deadline_ms;                /* CLOCK_MONOTONIC ms; 0: options' timeout only */
    int timeout_ms;                     /* 0: options' request timeout */
    const atomic_bool *cancelled;       /* aborts the exchange when set; may be NULL */
    bool carries_secrets; /* credentials travel in it or its answer: the curl handle, whose
                             buffers keep copies, is wiped and discarded afterwards */
} aws_http_request;

typedef struct {
    long status; /* HTTP status */
    char *body;  /* malloc'd, NUL-terminated */
    size_t body_len;
    char request_id[96];  /* x-amzn-RequestId, or "" */
    long new_connections; /* TCP connections opened for this exchange (0: reused) */
    int64_t server_date;  /* the Date header, epoch seconds; 0 when absent (clock.h) */
    int64_t host_time;    /* the host clock (epoch seconds) when Date arrived */
    int64_t clock_offset; /* the aws_clock_offset() the request was signed with */
} aws_http_response;

aws_http *aws_http_new(const aws_http_options *options);
void aws_http_free(aws_http *http);

/* Performs one HTTP exchange (no retries), signed on the skew-corrected clock
 * (clock.h). Returns 0 when an HTTP answer of any status arrived; -1 with err
 * (AWS_ERR_TRANSPORT or AWS_ERR_TIMEOUT) otherwise. */
int aws_http_perform(aws_http *http, const aws_http_request *request, aws_http_response *response,
                     aws_error *err);
/* Wipes and frees the body (it may carry credentials). */
void aws_http_response_clear(aws_http_response *response);

/* Counters since aws_http_new: exchanges performed and TCP connections opened
 * (fewer connections than requests shows keep-alive reuse). */
long aws_http_requests_made(aws_http *http);
long aws_http_connections_opened(aws_http *http);

/* Milliseconds on CLOCK_MONOTONIC (the clock deadlines use). */
int64_t aws_monotonic_ms(void);

#endif

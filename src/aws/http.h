/* HTTPS for the AWS layer on libcurl's multi interface. Each aws_http owns
 * one event thread that drives every one of its exchanges (keep-alive
 * connections and TLS sessions shared by all of them), its timers, and a
 * helper thread for the blocking steps of asynchronous calls. Exchanges are
 * prepared (headers, SigV4 signature) on the caller's thread and then run on
 * the event thread: asynchronously (aws_http_start: a callback on the event
 * thread) or synchronously (aws_http_perform: the caller waits). TLS
 * verification is always on; proxies come from the standard environment
 * variables. */
#ifndef KM_AWS_HTTP_H
#define KM_AWS_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/aws_error.h"
#include "aws/call_ctx.h"
#include "aws/credentials.h"
#include "aws/sigv4.h"

typedef struct aws_http aws_http;

typedef struct {
    size_t pool_size;       /* connections kept alive (and at most per host); 0: default (8) */
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
    const aws_sigv4_scope *sigv4_scope; /* NULL: unsigned */
    const aws_credentials *credentials; /* required when sigv4_scope is set */
    aws_call_ctx call;    /* the call's deadline (0: options' timeout only) and cancel flag (aborts
                             the exchange when set; may be NULL) */
    int timeout_ms;       /* 0: options' request timeout */
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

/* Starts the event thread; NULL when libcurl or a thread cannot be set up. */
aws_http *aws_http_new(const aws_http_options *options);
/* Runs the helper's queued work, ends every exchange and timer still pending
 * (as cancelled), stops the threads and frees. Not from the event thread. */
void aws_http_free(aws_http *http);

/* Performs one HTTP exchange (no retries), signed on the skew-corrected clock
 * (clock.h), and waits for it. Returns 0 when an HTTP answer of any status
 * arrived; -1 with err (AWS_ERR_TRANSPORT, AWS_ERR_TIMEOUT, AWS_ERR_CANCELLED,
 * AWS_ERR_INTERNAL) otherwise. Refused on the event thread, which would wait
 * for itself. */
int aws_http_perform(aws_http *http, const aws_http_request *request, aws_http_response *response,
                     aws_error *err);

/* The end of an exchange started with aws_http_start, on the event thread:
 * rc 0 with an HTTP answer of any status, or -1 with err. response is the
 * callee's: it keeps the body (and clears it later) or clears it now. */
typedef void (*aws_http_done_fn)(void *user, int rc, aws_http_response *response,
                                 const aws_error *err);

/* Prepares the exchange here (headers and signature: request->credentials may
 * be wiped when this returns) and hands it to the event thread. Returns 0 when
 * done will run exactly once, on the event thread (possibly before this
 * returns); request->url and request->body must stay valid until then. -1 with
 * err when nothing was started (deadline passed, cannot sign, stopping). */
int aws_http_start(aws_http *http, const aws_http_request *request, aws_http_done_fn done,
                   void *user, aws_error *err);

/* fn(user, false) on the event thread after delay_ms, or fn(user, true) as
 * soon as *cancelled (may be NULL) is seen set, or when aws_http_free ends
 * the timer. Returns 0, or -1 when stopping or out of memory (fn never runs). */
typedef void (*aws_http_timer_fn)(void *user, bool cancelled);
int aws_http_after(aws_http *http, int64_t delay_ms, const atomic_bool *cancelled,
                   aws_http_timer_fn fn, void *user);

/* Runs fn(user) on the helper thread, which may block (a credential refresh,
 * a synchronous call); jobs run one at a time, in order. The thread starts on
 * first use. Returns 0, or -1 when stopping or out of memory (fn never runs). */
int aws_http_run_blocking(aws_http *http, void (*fn)(void *user), void *user);

/* Whether the calling thread is http's event thread. */
bool aws_http_on_event_thread(const aws_http *http);

/* Wipes and frees the body (it may carry credentials). */
void aws_http_response_clear(aws_http_response *response);

/* Counters since aws_http_new: exchanges performed and TCP connections opened
 * (fewer connections than requests shows keep-alive reuse). */
long aws_http_requests_made(aws_http *http);
long aws_http_connections_opened(aws_http *http);

#endif

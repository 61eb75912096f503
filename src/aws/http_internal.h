/* Internal to the HTTP layer: the aws_http object shared by http.c (the API,
 * run on callers' threads: preparing and signing requests, the synchronous
 * wait, the helper thread) and http_loop.c (the event thread: libcurl's multi
 * handle, timers, cancellation).
 *
 * Ownership. An exchange is allocated by aws_http_start and belongs to the
 * `incoming` queue (under `lock`) until the event thread takes it; from then
 * on only the event thread touches it, until its done callback has returned
 * and it is freed. Timers go the same way. The event thread's fields (multi,
 * active, timers, idle) are never touched by another thread while it runs. */
#ifndef KM_AWS_HTTP_INTERNAL_H
#define KM_AWS_HTTP_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "aws/http.h"
#include "aws/sigv4.h"

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool too_large;
} http_body_buffer;

typedef struct http_exchange {
    struct http_exchange *prev, *next; /* incoming queue (next only), then the active list */
    CURL *easy;                        /* NULL until the event thread starts it */
    struct curl_slist *headers;        /* one block: nodes and lines; wiped and freed at the end */
    size_t headers_size;
    const char *method;
    const char *url;
    const char *body;
    size_t body_len;
    long timeout_ms;
    const atomic_bool *cancelled;
    bool carries_secrets;
    http_body_buffer received;
    aws_http_response response;
    char errbuf[CURL_ERROR_SIZE];
    aws_http_done_fn done;
    void *user;
} http_exchange;

typedef struct http_timer {
    struct http_timer *next;
    int64_t due_ms;
    const atomic_bool *cancelled;
    aws_http_timer_fn fn;
    void *user;
} http_timer;

typedef struct http_job {
    struct http_job *next;
    void (*fn)(void *user);
    void *user;
} http_job;

struct aws_http {
    /* settings, read by every thread */
    size_t pool_size;
    int connect_timeout_ms;
    int request_timeout_ms;
    char *ca_bundle;
    aws_sigv4_cache sigv4;
    atomic_long requests;
    atomic_long connects;

    /* hand-over to the event thread, under lock */
    pthread_mutex_t lock;
    http_exchange *incoming, *incoming_tail;
    http_timer *incoming_timers;
    bool sleeping; /* the event thread waits in curl_multi_poll: wake it (wake_fd) */
    bool stopping; /* aws_http_free began: nothing new is accepted */

    /* the event thread's own */
    pthread_t thread;
    int wake_fd; /* an eventfd among curl_multi_poll's descriptors */
    CURLM *multi;
    CURLSH *share;
    http_exchange *active; /* started, not finished */
    http_timer *timers;    /* by due time */
    CURL **idle;           /* easy handles kept for reuse */
    size_t idle_count;
    int64_t next_cancel_scan_ms;

    /* the helper thread for blocking work, under helper_lock */
    pthread_mutex_t helper_lock;
    pthread_cond_t helper_wake;
    http_job *jobs, *jobs_tail;
    bool helper_started;
    bool helper_stopping;
    pthread_t helper;
};

/* Event thread (http_loop.c). */
int http_loop_start(aws_http *http);
/* Ends what is pending (as cancelled) and joins the event thread. */
void http_loop_stop(aws_http *http);
/* Frees the easy handles, the multi and the share (after http_loop_stop). */
void http_loop_free(aws_http *http);
/* Queues work for the event thread (wakes it when it sleeps). Returns -1
 * when stopping. */
int http_loop_submit(aws_http *http, http_exchange *exchange, http_timer *timer);

/* Wipes and frees an exchange's header block. */
void http_free_header_block(http_exchange *exchange);

#endif

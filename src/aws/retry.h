/* Retries in the AWS SDKs' "standard" mode, as botocore implements it
 * (botocore/retries/standard.py, quota.py): at most max_attempts attempts;
 * retry throttling errors, transient errors (HTTP 500/502/503/504, connection
 * failures, timeouts); full-jitter backoff min(rand(0,1) * 2^(attempt-1), 20) s;
 * a retry-token bucket per client (500 tokens, a retry costs 5, 10 after a
 * timeout; a success gives back the last retry's cost, or 1 without retry).
 * One deliberate difference: LimitExceededException is a KMS quota, never
 * retried (botocore lists it among throttling codes). */
#ifndef KM_AWS_RETRY_H
#define KM_AWS_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/aws_error.h"
#include "aws/call_ctx.h"

#define AWS_RETRY_DEFAULT_MAX_ATTEMPTS 3
#define AWS_RETRY_QUOTA_CAPACITY       500
#define AWS_RETRY_COST                 5
#define AWS_RETRY_TIMEOUT_COST         10
#define AWS_RETRY_SUCCESS_REFUND       1
#define AWS_RETRY_MAX_BACKOFF_MS       20000
#define AWS_RETRY_BASE_BACKOFF_MS      1000

typedef enum {
    AWS_RETRY_NEVER = 0, /* not retryable */
    AWS_RETRY_THROTTLING,
    AWS_RETRY_TRANSIENT,
    AWS_RETRY_TIMEOUT, /* transient, and costs the timeout price */
} aws_retry_kind;

/* The retry-token bucket, shared by all calls of one client. */
typedef struct {
    pthread_mutex_t lock;
    int available;
    int capacity;
} aws_retry_quota;

void aws_retry_quota_init(aws_retry_quota *quota, int capacity);
void aws_retry_quota_destroy(aws_retry_quota *quota);
bool aws_retry_quota_acquire(aws_retry_quota *quota, int amount);
void aws_retry_quota_release(aws_retry_quota *quota, int amount);
int aws_retry_quota_available(aws_retry_quota *quota);

/* Replaceable randomness, clock and sleep (unit tests assert delays without
 * sleeping). Any NULL member uses the real one. */
typedef struct {
    double (*random)(void *user);  /* uniform in [0, 1) */
    int64_t (*now_ms)(void *user); /* CLOCK_MONOTONIC ms */
    /* Waits ms; returns -1 as soon as *cancelled becomes true, else 0. */
    int (*sleep_ms)(void *user, int64_t ms, const atomic_bool *cancelled);
    void *user;
} aws_retry_hooks;

typedef struct {
    int max_attempts; /* 0: default 3 */
    aws_retry_quota *quota;
    aws_retry_hooks hooks;
} aws_retry_policy;

/* Waits ms milliseconds in short slices; returns -1 as soon as *cancelled
 * (may be NULL) becomes true, else 0. */
int aws_sleep_ms(int64_t ms, const atomic_bool *cancelled);

/* Whether an attempt's error may be retried (ignoring attempts and tokens). */
aws_retry_kind aws_retry_classify(const aws_error *err);
bool aws_retry_is_throttling_code(const char *code);

/* Backoff before the retry that follows attempt number `attempts_made`
 * (1-based), for a random draw in [0, 1). */
int64_t aws_retry_backoff_ms(int attempts_made, double random01);

/* After failed attempt number attempts_made (1-based): whether to retry.
 * On yes, takes the retry's tokens from the bucket (recorded in
 * *tokens_held, which the success of a later attempt gives back) and returns
 * the backoff in ms; -1 otherwise (not retryable, max attempts, empty bucket,
 * a backoff past the deadline). aws_retry_run's decision, for calls that wait
 * for their backoff on a timer instead of sleeping. */
int64_t aws_retry_plan(const aws_retry_policy *policy, const aws_call_ctx *ctx,
                       const aws_error *err, int attempts_made, int *tokens_held);
/* After a successful attempt: gives back the last retry's tokens (or the
 * success refund when there was no retry). */
void aws_retry_succeeded(const aws_retry_policy *policy, int tokens_held);

/* One attempt: 0 on success; -1 with err's status, http_status and code set. */
typedef int (*aws_attempt_fn)(void *user, aws_error *err);

/* Runs attempt until success, a non-retryable error, max attempts, an empty
 * bucket, the deadline, or cancellation (AWS_ERR_CANCELLED). Sets
 * err->attempts (also on success, when err is not NULL). */
int aws_retry_run(const aws_retry_policy *policy, const aws_call_ctx *ctx, aws_attempt_fn attempt,
                  void *user, aws_error *err);

#endif

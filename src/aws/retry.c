/* Standard-mode retries (see retry.h): which errors are retried, the backoff,
 * the retry-token bucket and the loop that ties them to a call's deadline and
 * cancellation. */
#include "aws/retry.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"

#define CANCEL_POLL_MS 10

void aws_retry_quota_init(aws_retry_quota *quota, int capacity)
{
    pthread_mutex_init(&quota->lock, NULL);
    quota->available = capacity;
    quota->capacity = capacity;
}

void aws_retry_quota_destroy(aws_retry_quota *quota) { pthread_mutex_destroy(&quota->lock); }

bool aws_retry_quota_acquire(aws_retry_quota *quota, int amount)
{
    pthread_mutex_lock(&quota->lock);
    bool granted = amount <= quota->available;
    if (granted)
        quota->available -= amount;
    pthread_mutex_unlock(&quota->lock);
    return granted;
}

void aws_retry_quota_release(aws_retry_quota *quota, int amount)
{
    pthread_mutex_lock(&quota->lock);
    quota->available += amount;
    if (quota->available > quota->capacity)
        quota->available = quota->capacity;
    pthread_mutex_unlock(&quota->lock);
}

int aws_retry_quota_available(aws_retry_quota *quota)
{
    pthread_mutex_lock(&quota->lock);
    int available = quota->available;
    pthread_mutex_unlock(&quota->lock);
    return available;
}

/* botocore's throttling codes, less LimitExceededException (a KMS quota). */
bool aws_retry_is_throttling_code(const char *code)
{
    static const char *const codes[] = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    };
    for (size_t i = 0; code != NULL && i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i]) == 0)
            return true;
    }
    return false;
}

static bool is_transient_code(const char *code)
{
    return strcmp(code, "RequestTimeout") == 0 || strcmp(code, "RequestTimeoutException") == 0 ||
           strcmp(code, "PriorRequestNotComplete") == 0;
}

aws_retry_kind aws_retry_classify(const aws_error *err)
{
    if (err->status == AWS_ERR_TIMEOUT && err->http_status == 0)
        return AWS_RETRY_TIMEOUT;
    if (err->status == AWS_ERR_TRANSPORT)
        return AWS_RETRY_TRANSIENT;
    if (err->status == AWS_ERR_LIMIT_EXCEEDED)
        return AWS_RETRY_NEVER;
    if (aws_retry_is_throttling_code(err->code))
        return AWS_RETRY_THROTTLING;
    if (is_transient_code(err->code))
        return AWS_RETRY_TRANSIENT;
    switch (err->http_status) {
    case 500:
    case 502:
    case 503:
    case 504:
        return AWS_RETRY_TRANSIENT;
    default:
        return AWS_RETRY_NEVER;
    }
}

int64_t aws_retry_backoff_ms(int attempts_made, double random01)
{
    if (attempts_made < 1)
        attempts_made = 1;
    double ceiling = AWS_RETRY_BASE_BACKOFF_MS;
    for (int i = 1; i < attempts_made && ceiling < AWS_RETRY_MAX_BACKOFF_MS; i++)
        ceiling *= 2;
    double delay = random01 * ceiling;
    return delay > AWS_RETRY_MAX_BACKOFF_MS ? AWS_RETRY_MAX_BACKOFF_MS : (int64_t)delay;
}

static double default_random(void *user)
{
    (void)user;
    uint32_t value = 0;
    if (RAND_bytes((unsigned char *)&value, sizeof value) != 1)
        return 0.5;
    return (double)value / 4294967296.0;
}

static int64_t default_now_ms(void *user)
{
    (void)user;
    return clock_monotonic_ms();
}

static bool is_cancelled(const atomic_bool *cancelled)
{
    return cancelled != NULL && atomic_load(cancelled);
}

int aws_sleep_ms(int64_t ms, const atomic_bool *cancelled)
{
    int64_t end = clock_monotonic_ms() + ms;
    for (;;) {
        if (is_cancelled(cancelled))
            return -1;
        int64_t left = end - clock_monotonic_ms();
        if (left <= 0)
            return 0;
        int64_t slice = left < CANCEL_POLL_MS ? left : CANCEL_POLL_MS;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static int default_sleep_ms(void *user, int64_t ms, const atomic_bool *cancelled)
{
    (void)user;
    return aws_sleep_ms(ms, cancelled);
}

static aws_retry_hooks resolve_hooks(const aws_retry_hooks *given)
{
    aws_retry_hooks hooks = *given;
    if (hooks.random == NULL)
        hooks.random = default_random;
    if (hooks.now_ms == NULL)
        hooks.now_ms = default_now_ms;
    if (hooks.sleep_ms == NULL)
        hooks.sleep_ms = default_sleep_ms;
    return hooks;
}

static void set_cancelled(aws_error *err, int attempts)
{
    aws_error_clear(err);
    aws_error_set(err, AWS_ERR_CANCELLED, "the call was cancelled");
    err->attempts = attempts;
}

/* Decides whether to retry after a failed attempt; on yes, takes the tokens
 * (recorded in *tokens_held) and returns the delay, else returns -1. */
static int64_t plan_retry(const aws_retry_policy *policy, const aws_retry_hooks *hooks,
                          const aws_call_ctx *ctx, const aws_error *err, int attempts_made,
                          int *tokens_held)
{
    int max_attempts =
        policy->max_attempts > 0 ? policy->max_attempts : AWS_RETRY_DEFAULT_MAX_ATTEMPTS;
    aws_retry_kind kind = aws_retry_classify(err);
    if (kind == AWS_RETRY_NEVER || attempts_made >= max_attempts)
        return -1;
    int64_t delay = aws_retry_backoff_ms(attempts_made, hooks->random(hooks->user));
    if (ctx != NULL && ctx->deadline_ms > 0 &&
        hooks->now_ms(hooks->user) + delay >= ctx->deadline_ms)
        return -1;
    int cost = kind == AWS_RETRY_TIMEOUT ? AWS_RETRY_TIMEOUT_COST : AWS_RETRY_COST;
    if (policy->quota != NULL && !aws_retry_quota_acquire(policy->quota, cost))
        return -1;
    *tokens_held = cost;
    return delay;
}

int64_t aws_retry_plan(const aws_retry_policy *policy, const aws_call_ctx *ctx,
                       const aws_error *err, int attempts_made, int *tokens_held)
{
    aws_retry_hooks hooks = resolve_hooks(&policy->hooks);
    return plan_retry(policy, &hooks, ctx, err, attempts_made, tokens_held);
}

void aws_retry_succeeded(const aws_retry_policy *policy, int tokens_held)
{
    if (policy->quota != NULL)
        aws_retry_quota_release(policy->quota,
                                tokens_held > 0 ? tokens_held : AWS_RETRY_SUCCESS_REFUND);
}

int aws_retry_run(const aws_retry_policy *policy, const aws_call_ctx *ctx, aws_attempt_fn attempt,
                  void *user, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    aws_retry_hooks hooks = resolve_hooks(&policy->hooks);
    const atomic_bool *cancelled = ctx != NULL ? ctx->cancelled : NULL;
    int tokens_held = 0;
    for (int attempts = 0;;) {
        if (is_cancelled(cancelled)) {
            set_cancelled(err, attempts);
            return -1;
        }
        aws_error_clear(err);
        attempts++;
        int rc = attempt(user, err);
        err->attempts = attempts;
        if (rc == 0) {
            aws_retry_succeeded(policy, tokens_held);
            return 0;
        }
        int64_t delay = plan_retry(policy, &hooks, ctx, err, attempts, &tokens_held);
        if (delay < 0)
            return -1;
        if (hooks.sleep_ms(hooks.user, delay, cancelled) != 0) {
            set_cancelled(err, attempts);
            return -1;
        }
    }
}

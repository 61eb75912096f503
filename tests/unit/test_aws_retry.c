/* Unit tests for standard-mode retries: which errors are retried, the
 * full-jitter backoff, the retry-token bucket, and the retry loop with its
 * deadline and cancellation (with a fake clock and sleep: no real waiting). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "aws/http.h"
#include "aws/retry.h"
#include "common/clock.h"

/* --- fakes ------------------------------------------------------------------ */

typedef struct {
    double random_value;
    int64_t now;
    int64_t sleeps[16];
    int sleep_count;
    atomic_bool *cancel_during_sleep; /* set to true by the first sleep */
} fake_env;

static double fake_random(void *user) { return ((fake_env *)user)->random_value; }

static int64_t fake_now(void *user) { return ((fake_env *)user)->now; }

static int fake_sleep(void *user, int64_t ms, const atomic_bool *cancelled)
{
    fake_env *env = user;
    env->sleeps[env->sleep_count++] = ms;
    env->now += ms;
    if (env->cancel_during_sleep != NULL)
        atomic_store(env->cancel_during_sleep, true);
    return cancelled != NULL && atomic_load(cancelled) ? -1 : 0;
}

/* Attempts fail with the scripted errors, then succeed. */
typedef struct {
    aws_error failures[8];
    int failure_count;
    int calls;
} script;

static int scripted_attempt(void *user, aws_error *err)
{
    script *s = user;
    if (s->calls < s->failure_count) {
        int attempts = err->attempts;
        *err = s->failures[s->calls++];
        err->attempts = attempts;
        return -1;
    }
    s->calls++;
    return 0;
}

static aws_error http_error(int http_status, const char *code, aws_status status)
{
    aws_error err;
    aws_error_clear(&err);
    err.http_status = http_status;
    err.status = status;
    snprintf(err.code, sizeof err.code, "%s", code);
    return err;
}

static aws_error transport_error(aws_status status)
{
    aws_error err;
    aws_error_clear(&err);
    err.status = status;
    return err;
}

typedef struct {
    fake_env env;
    aws_retry_quota quota;
    aws_retry_policy policy;
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    f.env.random_value = 0.5;
    f.env.now = 1000;
    aws_retry_quota_init(&f.quota, AWS_RETRY_QUOTA_CAPACITY);
    f.policy = (aws_retry_policy){
        .max_attempts = 3,
        .quota = &f.quota,
        .hooks = {.random = fake_random,
                  .now_ms = fake_now,
                  .sleep_ms = fake_sleep,
                  .user = &f.env},
    };
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    aws_retry_quota_destroy(&f->quota);
    return 0;
}

/* --- decisions ----------------------------------------------------------------- */

static void test_classification(void **state)
{
    (void)state;
    aws_error e = http_error(400, "ThrottlingException", AWS_ERR_THROTTLED);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_THROTTLING);
    e = http_error(400, "LimitExceededException", AWS_ERR_LIMIT_EXCEEDED);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_NEVER);
    e = http_error(400, "NotFoundException", AWS_ERR_NOT_FOUND);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_NEVER);
    e = http_error(400, "AccessDeniedException", AWS_ERR_ACCESS_DENIED);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_NEVER);
    e = http_error(400, "RequestTimeoutException", AWS_ERR_CLIENT);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_TRANSIENT);
    int transient[] = {500, 502, 503, 504};
    for (size_t i = 0; i < 4; i++) {
        e = http_error(transient[i], "", AWS_ERR_SERVER);
        assert_int_equal(aws_retry_classify(&e), AWS_RETRY_TRANSIENT);
    }
    e = http_error(501, "", AWS_ERR_SERVER);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_NEVER);
    e = transport_error(AWS_ERR_TRANSPORT);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_TRANSIENT);
    e = transport_error(AWS_ERR_TIMEOUT);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_TIMEOUT);
    e = transport_error(AWS_ERR_CREDENTIALS);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_NEVER);
    e = transport_error(AWS_ERR_BAD_RESPONSE);
    assert_int_equal(aws_retry_classify(&e), AWS_RETRY_NEVER);
}

static void test_backoff_is_full_jitter_exponential_capped_at_20s(void **state)
{
    (void)state;
    assert_int_equal(aws_retry_backoff_ms(1, 0.5), 500);
    assert_int_equal(aws_retry_backoff_ms(2, 0.5), 1000);
    assert_int_equal(aws_retry_backoff_ms(3, 0.5), 2000);
    assert_int_equal(aws_retry_backoff_ms(3, 0.0), 0);
    assert_int_equal(aws_retry_backoff_ms(3, 0.999), 3996);
    assert_int_equal(aws_retry_backoff_ms(5, 0.5), 8000);
    assert_int_equal(aws_retry_backoff_ms(6, 0.5), 16000);
    assert_int_equal(aws_retry_backoff_ms(6, 0.99), 20000);
    assert_int_equal(aws_retry_backoff_ms(40, 0.9), 20000);
}

static void test_quota_arithmetic(void **state)
{
    (void)state;
    aws_retry_quota q;
    aws_retry_quota_init(&q, 500);
    int granted = 0;
    while (aws_retry_quota_acquire(&q, AWS_RETRY_COST))
        granted++;
    assert_int_equal(granted, 100);
    assert_int_equal(aws_retry_quota_available(&q), 0);
    aws_retry_quota_release(&q, 1);
    assert_false(aws_retry_quota_acquire(&q, AWS_RETRY_COST));
    aws_retry_quota_release(&q, 4);
    assert_true(aws_retry_quota_acquire(&q, AWS_RETRY_COST));
    aws_retry_quota_release(&q, 1000);
    assert_int_equal(aws_retry_quota_available(&q), 500);
    aws_retry_quota_destroy(&q);
}

/* --- the loop ------------------------------------------------------------------ */

static void test_throttled_twice_then_success(void **state)
{
    fixture *f = *state;
    script s = {.failure_count = 2};
    s.failures[0] = http_error(400, "ThrottlingException", AWS_ERR_THROTTLED);
    s.failures[1] = http_error(400, "ThrottlingException", AWS_ERR_THROTTLED);
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), 0);
    assert_int_equal(s.calls, 3);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(f->env.sleep_count, 2);
    assert_int_equal(f->env.sleeps[0], 500);  /* 0.5 * 1 s */
    assert_int_equal(f->env.sleeps[1], 1000); /* 0.5 * 2 s */
    /* two retries took 5 each; the success gives back the last retry's 5 */
    assert_int_equal(aws_retry_quota_available(&f->quota), 495);
}

static void test_client_error_is_not_retried(void **state)
{
    fixture *f = *state;
    script s = {.failure_count = 1};
    s.failures[0] = http_error(400, "ValidationException", AWS_ERR_VALIDATION);
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(err.status, AWS_ERR_VALIDATION);
    assert_int_equal(f->env.sleep_count, 0);
    assert_int_equal(aws_retry_quota_available(&f->quota), 500);
}

static void test_limit_exceeded_is_not_retried(void **state)
{
    fixture *f = *state;
    script s = {.failure_count = 1};
    s.failures[0] = http_error(400, "LimitExceededException", AWS_ERR_LIMIT_EXCEEDED);
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(err.status, AWS_ERR_LIMIT_EXCEEDED);
}

static void test_server_error_storm_is_bounded(void **state)
{
    fixture *f = *state;
    script s = {.failure_count = 8};
    for (int i = 0; i < 8; i++)
        s.failures[i] = http_error(503, "ServiceUnavailable", AWS_ERR_SERVER);
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 3);
    assert_int_equal(err.attempts, 3);
    assert_int_equal(err.status, AWS_ERR_SERVER);
    assert_int_equal(f->env.sleep_count, 2);
    /* failed calls give nothing back */
    assert_int_equal(aws_retry_quota_available(&f->quota), 490);
}

static void test_timeouts_cost_more(void **state)
{
    fixture *f = *state;
    script s = {.failure_count = 2};
    s.failures[0] = transport_error(AWS_ERR_TIMEOUT);
    s.failures[1] = transport_error(AWS_ERR_TRANSPORT);
    aws_error err;
    f->policy.max_attempts = 2;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), -1);
    assert_int_equal(err.attempts, 2);
    assert_int_equal(err.status, AWS_ERR_TRANSPORT);
    assert_int_equal(aws_retry_quota_available(&f->quota), 490);
    /* a success after a timeout retry gives its 10 back */
    script ok = {.failure_count = 1};
    ok.failures[0] = transport_error(AWS_ERR_TIMEOUT);
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &ok, &err), 0);
    assert_int_equal(aws_retry_quota_available(&f->quota), 490);
}

static void test_success_without_retry_refunds_one(void **state)
{
    fixture *f = *state;
    assert_true(aws_retry_quota_acquire(&f->quota, 10));
    script s = {0};
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), 0);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(aws_retry_quota_available(&f->quota), 491);
}

static void test_empty_bucket_stops_retries(void **state)
{
    fixture *f = *state;
    while (aws_retry_quota_acquire(&f->quota, 1))
        ;
    aws_retry_quota_release(&f->quota, 4);
    script s = {.failure_count = 1};
    s.failures[0] = http_error(400, "ThrottlingException", AWS_ERR_THROTTLED);
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, NULL, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(err.status, AWS_ERR_THROTTLED);
    assert_string_equal(err.code, "ThrottlingException");
    assert_int_equal(aws_retry_quota_available(&f->quota), 4);
}

static void test_no_sleep_past_the_deadline(void **state)
{
    fixture *f = *state;
    script s = {.failure_count = 2};
    s.failures[0] = http_error(500, "KMSInternalException", AWS_ERR_SERVER);
    s.failures[1] = http_error(500, "KMSInternalException", AWS_ERR_SERVER);
    aws_call_ctx ctx = {.deadline_ms = f->env.now + 400}; /* first backoff would be 500 */
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, &ctx, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(f->env.sleep_count, 0);
    assert_int_equal(err.status, AWS_ERR_SERVER);
    assert_int_equal(aws_retry_quota_available(&f->quota), 500);
}

static void test_cancelled_before_first_attempt(void **state)
{
    fixture *f = *state;
    atomic_bool cancelled;
    atomic_init(&cancelled, true);
    aws_call_ctx ctx = {.cancelled = &cancelled};
    script s = {0};
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, &ctx, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 0);
    assert_int_equal(err.status, AWS_ERR_CANCELLED);
    assert_int_equal(err.attempts, 0);
}

static void test_cancelled_during_backoff(void **state)
{
    fixture *f = *state;
    atomic_bool cancelled;
    atomic_init(&cancelled, false);
    f->env.cancel_during_sleep = &cancelled;
    aws_call_ctx ctx = {.cancelled = &cancelled};
    script s = {.failure_count = 1};
    s.failures[0] = http_error(503, "", AWS_ERR_SERVER);
    aws_error err;
    assert_int_equal(aws_retry_run(&f->policy, &ctx, scripted_attempt, &s, &err), -1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(err.status, AWS_ERR_CANCELLED);
    assert_int_equal(err.attempts, 1);
}

/* Fails like scripted_attempt, and raises the cancel flag while doing so. */
typedef struct {
    script s;
    atomic_bool *flag;
} cancelling_script;

static int cancelling_attempt(void *user, aws_error *err)
{
    cancelling_script *c = user;
    atomic_store(c->flag, true);
    return scripted_attempt(&c->s, err);
}

/* The real sleep ends at once on cancellation. */
static void test_real_sleep_honours_cancellation(void **state)
{
    fixture *f = *state;
    atomic_bool cancelled;
    atomic_init(&cancelled, false);
    f->env.random_value = 0.999;
    f->policy.hooks.sleep_ms = NULL;
    f->policy.hooks.now_ms = NULL;
    f->policy.max_attempts = 12;
    cancelling_script c = {.s = {.failure_count = 8}, .flag = &cancelled};
    for (int i = 0; i < 8; i++)
        c.s.failures[i] = http_error(503, "", AWS_ERR_SERVER);
    aws_call_ctx ctx = {.cancelled = &cancelled};
    aws_error err;
    int64_t started = clock_monotonic_ms();
    int rc = aws_retry_run(&f->policy, &ctx, cancelling_attempt, &c, &err);
    /* the backoff drawn is 999 ms; the wait must end well before */
    assert_true(clock_monotonic_ms() - started < 500);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, AWS_ERR_CANCELLED);
    assert_int_equal(c.s.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_backoff_is_full_jitter_exponential_capped_at_20s),
        cmocka_unit_test(test_quota_arithmetic),
        cmocka_unit_test_setup_teardown(test_throttled_twice_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_error_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_exceeded_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_error_storm_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts_cost_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_without_retry_refunds_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_bucket_stops_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_sleep_past_the_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_before_first_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_during_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_sleep_honours_cancellation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

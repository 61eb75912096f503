/* Unit tests for common/clock.h: the monotonic clock in ms and us agree and
 * never go back, the wall clock is the epoch's, an instant converts to the
 * timespec a condition variable of clock_cond_init waits for (a past one
 * times out at once, a future one is not reached early). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "common/clock.h"

static void monotonic_ms_and_us_agree(void **state)
{
    (void)state;
    int64_t ms = clock_monotonic_ms();
    int64_t us = clock_monotonic_us();
    int64_t later_ms = clock_monotonic_ms();
    assert_true(us / 1000 >= ms);
    assert_true(later_ms >= us / 1000);
    assert_true(later_ms >= ms);
}

static void wall_clock_is_the_epoch(void **state)
{
    (void)state;
    double before = (double)time(NULL);
    double now = clock_wall_s();
    double after = (double)time(NULL);
    assert_true(now >= before && now < after + 1);
}

static void timespec_of_an_instant(void **state)
{
    (void)state;
    struct timespec at = clock_monotonic_timespec(12345);
    assert_int_equal(at.tv_sec, 12);
    assert_int_equal(at.tv_nsec, 345000000L);
    at = clock_monotonic_timespec(999);
    assert_int_equal(at.tv_sec, 0);
    assert_int_equal(at.tv_nsec, 999000000L);
}

static void condition_waits_on_the_monotonic_clock(void **state)
{
    (void)state;
    pthread_cond_t cond;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    assert_int_equal(clock_cond_init(&cond), 0);
    pthread_mutex_lock(&lock);
    /* an instant already past on CLOCK_MONOTONIC: no wait */
    struct timespec past = clock_monotonic_timespec(clock_monotonic_ms() - 1);
    assert_int_equal(pthread_cond_timedwait(&cond, &lock, &past), ETIMEDOUT);
    /* 20 ms ahead: not over before that instant */
    int64_t due = clock_monotonic_ms() + 20;
    struct timespec until = clock_monotonic_timespec(due);
    int rc;
    do
        rc = pthread_cond_timedwait(&cond, &lock, &until);
    while (rc == 0); /* spurious wake-ups */
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(clock_monotonic_ms() >= due);
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&cond);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(monotonic_ms_and_us_agree),
        cmocka_unit_test(wall_clock_is_the_epoch),
        cmocka_unit_test(timespec_of_an_instant),
        cmocka_unit_test(condition_waits_on_the_monotonic_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

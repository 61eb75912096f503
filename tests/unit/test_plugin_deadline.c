/* Unit tests for the deadline conversion (gRPC clocks to CLOCK_MONOTONIC ms)
 * and the worker pool's bounded queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "common/clock.h"
#include "plugin/deadline.h"
#include "plugin/workers.h"

static gpr_timespec at(int64_t sec, int32_t nsec, gpr_clock_type clock)
{
    gpr_timespec t = {.tv_sec = sec, .tv_nsec = nsec, .clock_type = clock};
    return t;
}

static void test_infinite_deadline_is_zero(void **state)
{
    (void)state;
    gpr_timespec now = at(100, 0, GPR_CLOCK_REALTIME);
    assert_int_equal(deadline_to_monotonic_ms(gpr_inf_future(GPR_CLOCK_REALTIME), now, 5000), 0);
    assert_int_equal(deadline_monotonic_ms(gpr_inf_future(GPR_CLOCK_MONOTONIC)), 0);
}

static void test_future_deadline_adds_remaining_time(void **state)
{
    (void)state;
    gpr_timespec now = at(1700000000, 250000000, GPR_CLOCK_REALTIME);
    gpr_timespec deadline = at(1700000002, 750000000, GPR_CLOCK_REALTIME);
    assert_int_equal(deadline_to_monotonic_ms(deadline, now, 10000), 12500);
}

static void test_past_deadline_is_before_now_but_not_zero(void **state)
{
    (void)state;
    gpr_timespec now = at(50, 0, GPR_CLOCK_MONOTONIC);
    gpr_timespec deadline = at(49, 500000000, GPR_CLOCK_MONOTONIC);
    assert_int_equal(deadline_to_monotonic_ms(deadline, now, 10000), 9500);
    assert_int_equal(deadline_to_monotonic_ms(at(0, 0, GPR_CLOCK_MONOTONIC), now, 10), 1);
}

static void test_live_conversion_is_close(void **state)
{
    (void)state;
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(3000, GPR_TIMESPAN));
    int64_t expected = clock_monotonic_ms() + 3000;
    int64_t got = deadline_monotonic_ms(deadline);
    assert_true(got >= expected - 50 && got <= expected + 50);
}

/* --- worker pool ---------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool released;
    int started;
    atomic_int finished;
} gate;

static void blocking_job(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->lock);
    g->started++;
    pthread_cond_broadcast(&g->changed);
    while (!g->released)
        pthread_cond_wait(&g->changed, &g->lock);
    pthread_mutex_unlock(&g->lock);
    atomic_fetch_add(&g->finished, 1);
}

static void test_full_queue_refuses(void **state)
{
    (void)state;
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
    worker_pool *pool = workers_new(2, 3);
    assert_non_null(pool);
    assert_true(workers_submit(pool, blocking_job, &g));
    assert_true(workers_submit(pool, blocking_job, &g));
    pthread_mutex_lock(&g.lock);
    while (g.started < 2) /* both threads busy */
        pthread_cond_wait(&g.changed, &g.lock);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < 3; i++)
        assert_true(workers_submit(pool, blocking_job, &g));
    assert_false(workers_submit(pool, blocking_job, &g));
    pthread_mutex_lock(&g.lock);
    g.released = true;
    pthread_cond_broadcast(&g.changed);
    pthread_mutex_unlock(&g.lock);
    workers_free(pool); /* runs the queued jobs, then joins */
    assert_int_equal(atomic_load(&g.finished), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infinite_deadline_is_zero),
        cmocka_unit_test(test_future_deadline_adds_remaining_time),
        cmocka_unit_test(test_past_deadline_is_before_now_but_not_zero),
        cmocka_unit_test(test_live_conversion_is_close),
        cmocka_unit_test(test_full_queue_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

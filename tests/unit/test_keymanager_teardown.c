/* Unit tests of the teardown thread: handing an object over returns at once
 * even while its teardown blocks (the gRPC completion-queue thread drops state
 * references and must never join threads), teardowns run on the teardown
 * thread in order, teardowns may hand over more, and drain waits for all. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "keymanager/teardown.h"

typedef struct {
    teardown_item item;
    pthread_t ran_on;
    int order;
    bool blocks;               /* waits for `released` */
    teardown_item *hands_over; /* handed over from inside the teardown */
} fake_object;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool released;
    int runs;
    bool drained;
    bool released_when_drained;
} world = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static teardown *reaper;

static void run_fake(void *object)
{
    fake_object *fake = object;
    fake->ran_on = pthread_self();
    pthread_mutex_lock(&world.lock);
    fake->order = ++world.runs;
    pthread_cond_broadcast(&world.changed);
    while (fake->blocks && !world.released)
        pthread_cond_wait(&world.changed, &world.lock);
    pthread_mutex_unlock(&world.lock);
    if (fake->hands_over != NULL)
        teardown_hand_over(reaper, fake->hands_over);
}

static void init_fake(fake_object *fake, bool blocks)
{
    *fake = (fake_object){.blocks = blocks};
    fake->item.run = run_fake;
    fake->item.object = fake;
}

/* Waits (with a deadline) until at least `runs` teardowns have started. */
static bool wait_for_runs(int runs)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&world.lock);
    int rc = 0;
    while (world.runs < runs && rc == 0)
        rc = pthread_cond_timedwait(&world.changed, &world.lock, &deadline);
    bool reached = world.runs >= runs;
    pthread_mutex_unlock(&world.lock);
    return reached;
}

static void *drainer(void *arg)
{
    (void)arg;
    teardown_drain(reaper);
    pthread_mutex_lock(&world.lock);
    world.drained = true;
    world.released_when_drained = world.released;
    pthread_mutex_unlock(&world.lock);
    return NULL;
}

static void release_all(void)
{
    pthread_mutex_lock(&world.lock);
    world.released = true;
    pthread_cond_broadcast(&world.changed);
    pthread_mutex_unlock(&world.lock);
}

static void test_hand_over_never_waits_for_the_teardown(void **state)
{
    (void)state;
    reaper = teardown_start();
    assert_non_null(reaper);
    fake_object slow, next, handed_later;
    init_fake(&slow, true);
    init_fake(&next, false);
    init_fake(&handed_later, false);
    next.hands_over = &handed_later.item;

    /* returns although slow's teardown blocks until released below */
    teardown_hand_over(reaper, &slow.item);
    teardown_hand_over(reaper, &next.item);
    assert_true(wait_for_runs(1));
    assert_false(pthread_equal(slow.ran_on, pthread_self()));

    pthread_t waiter;
    assert_int_equal(pthread_create(&waiter, NULL, drainer, NULL), 0);
    release_all();
    pthread_join(waiter, NULL);

    /* drain returned only after the blocked teardown, and after the one
     * handed over from inside a teardown */
    assert_true(world.drained);
    assert_true(world.released_when_drained);
    assert_int_equal(slow.order, 1);
    assert_int_equal(next.order, 2);
    assert_int_equal(handed_later.order, 3);
    assert_true(pthread_equal(next.ran_on, slow.ran_on));
    teardown_stop(reaper);
}

static void test_stop_runs_what_is_left(void **state)
{
    (void)state;
    world.runs = 0;
    world.released = true;
    reaper = teardown_start();
    fake_object objects[5];
    for (int i = 0; i < 5; i++) {
        init_fake(&objects[i], false);
        teardown_hand_over(reaper, &objects[i].item);
    }
    teardown_stop(reaper);
    for (int i = 0; i < 5; i++)
        assert_int_equal(objects[i].order, i + 1);
    teardown_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_over_never_waits_for_the_teardown),
        cmocka_unit_test(test_stop_runs_what_is_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the provider's caching: the chain is resolved once, temporary
 * credentials are refreshed within 5 minutes of expiry by one thread while the
 * others keep the still-valid ones, failures keep valid credentials, and
 * expired ones are never returned. Clock and fetch are injected; expiry is
 * also judged on the skew-corrected clock, and a caller waiting for another
 * thread's refresh gives up at its deadline or cancellation. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aws/clock.h"
#include "aws/credentials_internal.h"
#include "aws/http.h"
#include "common/clock.h"
#include "common/log.h"

enum { T0 = 1800000000, LIFETIME = 3600, WAIT_LIMIT_S = 10, THREADS = 8 };

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int64_t now;
    int calls;        /* fetches started */
    bool fail;        /* fetches fail */
    int fail_next;    /* so many next fetches fail */
    int now_calls;    /* clock reads: a caller inside aws_credentials_get reads it */
    bool block;       /* fetches wait until released */
    int64_t lifetime; /* of the credentials handed out */
    int finished;     /* worker threads done */
} world;

static const char *empty_env(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static int64_t world_now(void *ctx)
{
    world *w = ctx;
    pthread_mutex_lock(&w->lock);
    int64_t now = w->now;
    w->now_calls++;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    return now;
}

static int world_fetch(void *ctx, const aws_cred_plan *plan, aws_credentials *out, aws_error *err)
{
    world *w = ctx;
    pthread_mutex_lock(&w->lock);
    int call = ++w->calls;
    pthread_cond_broadcast(&w->changed);
    while (w->block)
        pthread_cond_wait(&w->changed, &w->lock);
    bool fail = w->fail || w->fail_next > 0;
    if (w->fail_next > 0)
        w->fail_next--;
    int64_t expiration = w->now + w->lifetime;
    pthread_mutex_unlock(&w->lock);
    if (fail) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "web identity: STS error InvalidIdentityToken");
        return -1;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->access_key_id, sizeof out->access_key_id, "ASIA%d", call);
    snprintf(out->secret_access_key, sizeof out->secret_access_key, "secret%d", call);
    snprintf(out->session_token, sizeof out->session_token, "token%d", call);
    snprintf(out->source, sizeof out->source, "%s", plan->source);
    out->expiration = expiration;
    return 0;
}

static void set_now(world *w, int64_t now)
{
    pthread_mutex_lock(&w->lock);
    w->now = now;
    pthread_mutex_unlock(&w->lock);
}

static void set_fail(world *w, bool fail)
{
    pthread_mutex_lock(&w->lock);
    w->fail = fail;
    pthread_mutex_unlock(&w->lock);
}

static void set_block(world *w, bool block)
{
    pthread_mutex_lock(&w->lock);
    w->block = block;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

static int calls(world *w)
{
    pthread_mutex_lock(&w->lock);
    int n = w->calls;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* Waits (with a deadline) until at least `calls` fetches have started and
 * `finished` workers are done. */
static void wait_for(world *w, int min_calls, int min_finished)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_LIMIT_S;
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while ((w->calls < min_calls || w->finished < min_finished) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->changed, &w->lock, &deadline);
    bool ok = w->calls >= min_calls && w->finished >= min_finished;
    pthread_mutex_unlock(&w->lock);
    if (!ok)
        fail_msg("timed out waiting for %d fetches / %d workers", min_calls, min_finished);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, NULL);
    w->now = T0;
    w->lifetime = LIFETIME;
    *state = w;
    log_set_level(LOG_ERROR);
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return 0;
}

static aws_credentials_provider *provider_for(world *w)
{
    aws_credentials_options options = {.access_key_id = "AKIACONFIG",
                                       .secret_access_key = "configsecret"};
    aws_cred_hooks hooks = {.env = {.getenv = empty_env},
                            .now = world_now,
                            .now_ctx = w,
                            .fetch = world_fetch,
                            .fetch_ctx = w};
    aws_credentials_provider *p = aws_credentials_provider_new_with_hooks(&options, &hooks);
    assert_non_null(p);
    return p;
}

static void get_ok(aws_credentials_provider *p, const char *expected_key)
{
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    int rc = aws_credentials_get(p, NULL, &c, &err);
    if (rc != 0)
        fail_msg("get failed: %s", err.message);
    assert_string_equal(c.access_key_id, expected_key);
    assert_string_equal(c.source, "config");
    aws_credentials_clear(&c);
}

static void get_fails(aws_credentials_provider *p, const char *expected_text)
{
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_credentials_get(p, NULL, &c, &err), -1);
    assert_int_equal(err.status, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, expected_text));
    assert_string_equal(c.access_key_id, "");
}

static void resolved_once_and_cached(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    assert_int_equal(calls(w), 0); /* nothing before the first get */
    for (int i = 0; i < 5; i++)
        get_ok(p, "ASIA1");
    assert_int_equal(calls(w), 1);
    aws_credentials_provider_free(p);
}

static void refresh_within_five_minutes(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    get_ok(p, "ASIA1");
    set_now(w, T0 + LIFETIME - 301); /* 301 s left: still fresh */
    get_ok(p, "ASIA1");
    assert_int_equal(calls(w), 1);
    set_now(w, T0 + LIFETIME - 300); /* in the window */
    get_ok(p, "ASIA2");
    assert_int_equal(calls(w), 2);
    get_ok(p, "ASIA2");
    set_now(w, T0 + 10 * LIFETIME); /* long expired: refreshed before use */
    get_ok(p, "ASIA3");
    assert_int_equal(calls(w), 3);
    aws_credentials_provider_free(p);
}

static void failed_refresh_keeps_valid_credentials(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    get_ok(p, "ASIA1");
    set_fail(w, true);
    set_now(w, T0 + LIFETIME - 200);
    get_ok(p, "ASIA1"); /* refresh failed: the valid ones are used */
    assert_int_equal(calls(w), 2);
    get_ok(p, "ASIA1"); /* no new attempt right after a failure */
    assert_int_equal(calls(w), 2);
    set_now(w, T0 + LIFETIME - 200 + AWS_CRED_RETRY_AFTER_FAILURE_S);
    get_ok(p, "ASIA1");
    assert_int_equal(calls(w), 3);
    set_now(w, T0 + LIFETIME); /* expired, and the refresh fails */
    get_fails(p, "InvalidIdentityToken");
    assert_int_equal(calls(w), 4);
    get_fails(p, "InvalidIdentityToken"); /* expired: every get tries again */
    assert_int_equal(calls(w), 5);
    set_fail(w, false);
    get_ok(p, "ASIA6");
    aws_credentials_provider_free(p);
}

static void expired_on_arrival_is_an_error(void **state)
{
    world *w = *state;
    w->lifetime = 0;
    aws_credentials_provider *p = provider_for(w);
    get_fails(p, "the credentials returned have expired");
    aws_credentials_provider_free(p);
}

typedef struct {
    aws_credentials_provider *provider;
    world *world;
    int rc;
    char key[128];
} worker;

static void *worker_get(void *arg)
{
    worker *job = arg;
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    job->rc = aws_credentials_get(job->provider, NULL, &c, &err);
    snprintf(job->key, sizeof job->key, "%s", c.access_key_id);
    aws_credentials_clear(&c);
    pthread_mutex_lock(&job->world->lock);
    job->world->finished++;
    pthread_cond_broadcast(&job->world->changed);
    pthread_mutex_unlock(&job->world->lock);
    return NULL;
}

static void start(pthread_t *thread, worker *job, aws_credentials_provider *p, world *w)
{
    memset(job, 0, sizeof *job);
    job->provider = p;
    job->world = w;
    assert_int_equal(pthread_create(thread, NULL, worker_get, job), 0);
}

/* While one thread refreshes still-valid credentials, the others get the
 * cached ones at once: they finish while the refresher is still blocked. */
static void one_refresher_others_do_not_wait(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    get_ok(p, "ASIA1");
    set_now(w, T0 + LIFETIME - 100);
    set_block(w, true);
    pthread_t leader, others[THREADS];
    worker leader_job, jobs[THREADS];
    start(&leader, &leader_job, p, w);
    wait_for(w, 2, 0); /* the leader is inside the refresh */
    for (int i = 0; i < THREADS; i++)
        start(&others[i], &jobs[i], p, w);
    wait_for(w, 2, THREADS); /* all others done while the refresh is blocked */
    for (int i = 0; i < THREADS; i++) {
        pthread_join(others[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_string_equal(jobs[i].key, "ASIA1");
    }
    set_block(w, false);
    pthread_join(leader, NULL);
    assert_int_equal(leader_job.rc, 0);
    assert_string_equal(leader_job.key, "ASIA2");
    assert_int_equal(calls(w), 2);
    get_ok(p, "ASIA2");
    aws_credentials_provider_free(p);
}

/* With nothing valid cached, everyone waits for the one refresh. */
static void expired_callers_wait_for_the_refresher(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    get_ok(p, "ASIA1");
    set_now(w, T0 + LIFETIME + 1);
    set_block(w, true);
    pthread_t threads[THREADS];
    worker jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        start(&threads[i], &jobs[i], p, w);
    wait_for(w, 2, 0);
    set_block(w, false);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_string_equal(jobs[i].key, "ASIA2");
    }
    assert_int_equal(calls(w), 2);
    aws_credentials_provider_free(p);
}

/* The first resolution is shared too: one fetch for many first callers. */
static void first_get_by_many_threads(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    set_block(w, true);
    pthread_t threads[THREADS];
    worker jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        start(&threads[i], &jobs[i], p, w);
    wait_for(w, 1, 0);
    set_block(w, false);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
        assert_string_equal(jobs[i].key, "ASIA1");
    }
    assert_int_equal(calls(w), 1);
    aws_credentials_provider_free(p);
}

static const char *imds_disabled_env(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    if (strcmp(name, "AWS_SHARED_CREDENTIALS_FILE") == 0 || strcmp(name, "AWS_CONFIG_FILE") == 0)
        return "/nonexistent/aws-file";
    return NULL;
}

static void no_source_error_names_the_sources(void **state)
{
    world *w = *state;
    aws_credentials_options options = {0};
    aws_cred_hooks hooks = {.env = {.getenv = imds_disabled_env},
                            .now = world_now,
                            .now_ctx = w,
                            .fetch = world_fetch,
                            .fetch_ctx = w};
    aws_credentials_provider *p = aws_credentials_provider_new_with_hooks(&options, &hooks);
    get_fails(p, "no AWS credentials found: set access_key_id/secret_access_key, "
                 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token, a shared "
                 "profile, a container endpoint or run on EC2 with an instance role (tried: "
                 "config, environment, web identity, shared profile \"default\", container "
                 "endpoint, EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED))");
    assert_int_equal(calls(w), 0);
    aws_credentials_provider_free(p);
}

/* --- the corrected clock and the caller's deadline ------------------------------- */

/* The host clock is 20 minutes slow: credentials with 200 s left on AWS's
 * clock look fresh for 1400 s on the host's, and would be used after they
 * expired. Judged on the corrected clock they are due for refresh. */
static void expiry_is_judged_on_the_corrected_clock(void **state)
{
    world *w = *state;
    aws_clock_set_offset(1200);
    w->now = (int64_t)time(NULL) + 1200; /* AWS's time, in which expirations are given */
    w->lifetime = 200;
    aws_credentials_options options = {.access_key_id = "AKIACONFIG",
                                       .secret_access_key = "configsecret"};
    aws_cred_hooks hooks = {.env = {.getenv = empty_env}, .fetch = world_fetch, .fetch_ctx = w};
    aws_credentials_provider *p = aws_credentials_provider_new_with_hooks(&options, &hooks);
    get_ok(p, "ASIA1");
    get_ok(p, "ASIA2"); /* stale on the corrected clock: refreshed */
    assert_int_equal(calls(w), 2);
    aws_credentials_provider_free(p);

    /* Host 20 minutes fast: the same credentials with 1000 s left are fresh. */
    aws_clock_set_offset(-1200);
    w->now = (int64_t)time(NULL) - 1200;
    w->lifetime = 1000;
    p = aws_credentials_provider_new_with_hooks(&options, &hooks);
    get_ok(p, "ASIA3");
    get_ok(p, "ASIA3");
    assert_int_equal(calls(w), 3);
    aws_credentials_provider_free(p);
    aws_clock_set_offset(0);
}

static int get_with(aws_credentials_provider *p, const aws_call_ctx *call, aws_error *err)
{
    aws_credentials c;
    aws_error_clear(err);
    int rc = aws_credentials_get(p, call, &c, err);
    aws_credentials_clear(&c);
    return rc;
}

/* Nothing valid cached, another thread's refresh hangs: a caller with a
 * deadline returns at it, and one whose call is cancelled returns too, both
 * while the refresh is still blocked. */
static void waiting_caller_returns_at_its_deadline(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    get_ok(p, "ASIA1");
    set_now(w, T0 + LIFETIME + 1);
    set_block(w, true);
    pthread_t leader;
    worker leader_job;
    start(&leader, &leader_job, p, w);
    wait_for(w, 2, 0); /* the leader is inside the refresh */

    aws_error err;
    aws_call_ctx call = {.deadline_ms = clock_monotonic_ms() + 100};
    assert_int_equal(get_with(p, &call, &err), -1);
    assert_int_equal(err.status, AWS_ERR_TIMEOUT);
    assert_non_null(strstr(err.message, "deadline passed while waiting for AWS credentials"));

    atomic_bool cancelled = true;
    aws_call_ctx cancel = {.cancelled = &cancelled};
    assert_int_equal(get_with(p, &cancel, &err), -1);
    assert_int_equal(err.status, AWS_ERR_CANCELLED);

    pthread_mutex_lock(&w->lock);
    assert_int_equal(w->finished, 0); /* the refresh never ended meanwhile */
    pthread_mutex_unlock(&w->lock);
    set_block(w, false);
    pthread_join(leader, NULL);
    assert_int_equal(leader_job.rc, 0);
    assert_string_equal(leader_job.key, "ASIA2");
    assert_int_equal(calls(w), 2);
    aws_credentials_provider_free(p);
}

typedef struct {
    aws_credentials_provider *provider;
    world *world;
    aws_call_ctx call;
    atomic_bool cancelled;
    int rc;
} cancellable_job;

static void *cancellable_get(void *arg)
{
    cancellable_job *job = arg;
    aws_error err;
    job->rc = get_with(job->provider, &job->call, &err);
    return NULL;
}

/* A refresher whose own call is cancelled gives up without a verdict on
 * the source: the caller that was waiting refreshes at once. */
static void waiter_takes_over_from_a_cancelled_refresher(void **state)
{
    world *w = *state;
    aws_credentials_provider *p = provider_for(w);
    get_ok(p, "ASIA1");
    set_now(w, T0 + LIFETIME + 1);
    set_block(w, true);
    cancellable_job job = {.provider = p, .world = w};
    atomic_init(&job.cancelled, false);
    job.call.cancelled = &job.cancelled;
    pthread_t leader;
    assert_int_equal(pthread_create(&leader, NULL, cancellable_get, &job), 0);
    wait_for(w, 2, 0);
    pthread_mutex_lock(&w->lock);
    int clock_reads = w->now_calls;
    pthread_mutex_unlock(&w->lock);
    pthread_t waiter;
    worker waiter_job;
    start(&waiter, &waiter_job, p, w); /* no deadline: waits for the refresher */
    /* Once it has read the clock under the provider's lock, it waits before
     * the refresher can record its outcome (that takes the same lock). */
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += WAIT_LIMIT_S;
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while (w->now_calls == clock_reads && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->changed, &w->lock, &limit);
    pthread_mutex_unlock(&w->lock);
    assert_int_not_equal(rc, ETIMEDOUT);
    atomic_store(&job.cancelled, true);
    pthread_mutex_lock(&w->lock);
    w->fail_next = 1; /* the cancelled refresh fails */
    pthread_mutex_unlock(&w->lock);
    set_block(w, false);
    pthread_join(leader, NULL);
    pthread_join(waiter, NULL);
    assert_int_equal(job.rc, -1);
    assert_int_equal(waiter_job.rc, 0);
    assert_string_equal(waiter_job.key, "ASIA3");
    assert_int_equal(calls(w), 3);
    aws_credentials_provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(resolved_once_and_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(refresh_within_five_minutes, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_refresh_keeps_valid_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_on_arrival_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(one_refresher_others_do_not_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_callers_wait_for_the_refresher, setup, teardown),
        cmocka_unit_test_setup_teardown(first_get_by_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(no_source_error_names_the_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_is_judged_on_the_corrected_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(waiting_caller_returns_at_its_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(waiter_takes_over_from_a_cancelled_refresher, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The fleet tasks' scheduler: one thread runs refresh aliases, dispose
 * aliases and dispose keys (in tag mode: via tags), each on its own period (first run one period
 * after start, except refresh: see fleet_first_delay_ms), sleeping on a
 * CLOCK_MONOTONIC condition variable in between. Each run judges KMS's dates
 * (alias LastUpdatedDate, key CreationDate) on KMS's clock as the AWS client
 * learned it (fleet_kms_now_s), not on the host's.
 * fleet_stop raises the stop flag that every KMS call carries, wakes the
 * thread and joins it. */
#include "keymanager/fleet.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/clock.h"
#include "common/clock.h"
#include "common/log.h"
#include "keymanager/fleet_internal.h"

#define MODULE "fleet"

#define HOUR_MS                    (3600LL * 1000)
#define DEFAULT_REFRESH_ALIASES_MS (6 * HOUR_MS)
#define DEFAULT_DISPOSE_ALIASES_MS (24 * HOUR_MS)
#define DEFAULT_DISPOSE_KEYS_MS    (48 * HOUR_MS)
#define DEFAULT_STALE_ALIAS_AGE_MS (336 * HOUR_MS)
#define DEFAULT_ORPHAN_KEY_AGE_MS  (48 * HOUR_MS)

typedef enum { TASK_REFRESH_ALIASES, TASK_DISPOSE_ALIASES, TASK_DISPOSE_KEYS, TASK_COUNT } task_id;

static const char *const task_names[TASK_COUNT] = {"refresh_aliases", "dispose_aliases",
                                                   "dispose_keys"};
#define TAG_SWEEP_NAME "dispose_keys_via_tags"

struct fleet {
    fleet_options options; /* trust_domain and server_id point at our copies */
    char *trust_domain;
    char *server_id;
    fleet_key_memo *memo;
    fleet_learnt learnt; /* the fleet thread's only */
    int64_t interval_ms[TASK_COUNT];
    int64_t next_due_ms[TASK_COUNT];

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    bool stop_requested;
    atomic_bool cancelled; /* carried by every KMS call */
};

double fleet_kms_now_s(void) { return (double)aws_clock_now(); }

static int64_t or_default(int64_t value_ms, int64_t default_ms)
{
    return value_ms > 0 ? value_ms : default_ms;
}

int64_t fleet_first_delay_ms(bool is_refresh, int64_t interval_ms)
{
    if (is_refresh && interval_ms > FLEET_FIRST_REFRESH_MAX_DELAY_MS)
        return FLEET_FIRST_REFRESH_MAX_DELAY_MS;
    return interval_ms;
}

static void run_task(fleet *self, task_id task)
{
    aws_call_ctx call = {.deadline_ms = 0, .cancelled = &self->cancelled};
    fleet_run_env env = {.options = &self->options,
                         .call = &call,
                         .now_s = fleet_kms_now_s(),
                         .learnt = &self->learnt};
    bool tag_sweep = task == TASK_DISPOSE_KEYS && self->options.tag_mode;
    fleet_run_stats stats = {.task = tag_sweep ? TAG_SWEEP_NAME : task_names[task]};
    switch (task) {
    case TASK_REFRESH_ALIASES:
        fleet_run_refresh_aliases(&env, &stats);
        break;
    case TASK_DISPOSE_ALIASES:
        fleet_run_dispose_aliases(&env, &stats);
        break;
    case TASK_DISPOSE_KEYS:
        if (tag_sweep)
            fleet_run_dispose_keys_via_tags(&env, &stats);
        else
            fleet_run_dispose_keys(&env, self->memo, &stats);
        break;
    default:
        return;
    }
    fleet_log_run(&stats);
}

static task_id earliest_task(const fleet *self)
{
    task_id earliest = TASK_REFRESH_ALIASES;
    for (int task = 1; task < TASK_COUNT; task++) {
        if (self->next_due_ms[task] < self->next_due_ms[earliest]) {
            earliest = (task_id)task;
        }
    }
    return earliest;
}

/* Waits (lock held) until due_ms or a wake-up. */
static void wait_until(fleet *self, int64_t due_ms)
{
    struct timespec until = clock_monotonic_timespec(due_ms);
    int rc = pthread_cond_timedwait(&self->wake, &self->lock, &until);
    if (rc != 0 && rc != ETIMEDOUT) {
        log_writef(LOG_ERROR, MODULE, "condition wait failed: %s", strerror(rc));
    }
}

static void *fleet_main(void *arg)
{
    fleet *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->stop_requested) {
        task_id task = earliest_task(self);
        if (clock_monotonic_ms() < self->next_due_ms[task]) {
            wait_until(self, self->next_due_ms[task]);
            continue;
        }
        pthread_mutex_unlock(&self->lock);
        run_task(self, task);
        pthread_mutex_lock(&self->lock);
        self->next_due_ms[task] = clock_monotonic_ms() + self->interval_ms[task];
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static bool options_complete(const fleet_options *options)
{
    return options != NULL && options->kms != NULL && options->deletions != NULL &&
           options->trust_domain != NULL && options->server_id != NULL &&
           options->server_id[0] != '\0' && options->own_aliases != NULL;
}

static void take_options(fleet *self, const fleet_options *options)
{
    self->options = *options;
    self->options.trust_domain = self->trust_domain;
    self->options.server_id = self->server_id;
    self->options.stale_alias_age_ms =
        or_default(options->stale_alias_age_ms, DEFAULT_STALE_ALIAS_AGE_MS);
    self->options.orphan_key_age_ms =
        or_default(options->orphan_key_age_ms, DEFAULT_ORPHAN_KEY_AGE_MS);
    self->interval_ms[TASK_REFRESH_ALIASES] =
        or_default(options->refresh_aliases_interval_ms, DEFAULT_REFRESH_ALIASES_MS);
    self->interval_ms[TASK_DISPOSE_ALIASES] =
        or_default(options->dispose_aliases_interval_ms, DEFAULT_DISPOSE_ALIASES_MS);
    self->interval_ms[TASK_DISPOSE_KEYS] =
        or_default(options->dispose_keys_interval_ms, DEFAULT_DISPOSE_KEYS_MS);
    int64_t now = clock_monotonic_ms();
    for (int task = 0; task < TASK_COUNT; task++) {
        self->next_due_ms[task] =
            now + fleet_first_delay_ms(task == TASK_REFRESH_ALIASES, self->interval_ms[task]);
    }
}

static int init_sync(fleet *self)
{
    if (clock_cond_init(&self->wake) != 0) {
        return -1;
    }
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        pthread_cond_destroy(&self->wake);
        return -1;
    }
    return 0;
}

static void free_fleet(fleet *self)
{
    fleet_key_memo_free(self->memo);
    free(self->trust_domain);
    free(self->server_id);
    free(self);
}

fleet *fleet_start(const fleet_options *options)
{
    if (!options_complete(options)) {
        log_write(LOG_ERROR, MODULE, "fleet tasks not started: incomplete options", LOG_END);
        return NULL;
    }
    fleet *self = calloc(1, sizeof *self);
    if (self == NULL) {
        return NULL;
    }
    self->trust_domain = strdup(options->trust_domain);
    self->server_id = strdup(options->server_id);
    self->memo = fleet_key_memo_new();
    atomic_init(&self->cancelled, false);
    if (self->trust_domain == NULL || self->server_id == NULL || self->memo == NULL ||
        init_sync(self) != 0) {
        free_fleet(self);
        return NULL;
    }
    take_options(self, options);
    self->learnt.list_tags_denied = options->list_tags_denied;
    int rc = pthread_create(&self->thread, NULL, fleet_main, self);
    if (rc != 0) {
        log_writef(LOG_ERROR, MODULE, "cannot start the fleet thread: %s", strerror(rc));
        pthread_cond_destroy(&self->wake);
        pthread_mutex_destroy(&self->lock);
        free_fleet(self);
        return NULL;
    }
    return self;
}

void fleet_stop(fleet *self)
{
    if (self == NULL) {
        return;
    }
    pthread_mutex_lock(&self->lock);
    self->stop_requested = true;
    atomic_store(&self->cancelled, true);
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free_fleet(self);
}

void fleet_aliases_free(fleet_alias *aliases, size_t count)
{
    for (size_t i = 0; i < count && aliases != NULL; i++) {
        free(aliases[i].alias_name);
        free(aliases[i].key_id);
    }
    free(aliases);
}

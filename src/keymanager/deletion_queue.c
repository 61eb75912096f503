/* Deletion queue worker (see deletion_queue.h for what may be deleted): one
 * thread, a bounded list of keys each with its next due time,
 * condition-variable waits on the monotonic clock, exponential backoff
 * between attempts. */
#include "keymanager/deletion_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/kms_truth.h"
#include "keymanager/tag_mode.h"

enum {
    QUEUE_CAPACITY = 1024,
    PENDING_WINDOW_DAYS = 7,
    CALL_TIMEOUT_MS = 30000,
    ALIASED_CHECKS = 9, /* checks of a key KMS shows aliased: about 4 minutes of backoff */
};
static const int64_t DEFAULT_SETTLE_MS = 5 * 60 * 1000;
static const int64_t BACKOFF_BASE_MS = 1000;
static const int64_t BACKOFF_CAP_MS = 5 * 60 * 1000;

#define MODULE "deletion_queue"

typedef struct {
    char *key_id;
    char *reason;
    int attempts;
    int aliased_checks; /* checks that found an alias targeting the key */
    int64_t due_ms;
} pending_key;

struct deletion_queue {
    deletion_queue_options options; /* trust_domain and server_id: our copies */
    atomic_bool tags_denied_logged; /* ListResourceTags denied (alias mode), logged once */
    atomic_bool tag_denied_logged;  /* TagResource denied (alias mode), logged once */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pending_key keys[QUEUE_CAPACITY];
    size_t count;
    bool in_flight;
    const char *in_flight_key; /* the key being worked on (owned by the worker) */
    bool stopping;
    atomic_bool cancel;
    pthread_t thread;
};

/* A check's or an attempt's result: the key leaves the queue, comes back
 * after a backoff, or (checks only) may be scheduled for deletion now. */
typedef enum { OUTCOME_DONE, OUTCOME_RETRY, OUTCOME_UNUSED } outcome;

static int64_t backoff_ms(int attempts)
{
    int64_t delay = BACKOFF_BASE_MS;
    for (int i = 1; i < attempts && delay < BACKOFF_CAP_MS; i++)
        delay *= 2;
    return delay < BACKOFF_CAP_MS ? delay : BACKOFF_CAP_MS;
}

static void pending_free(pending_key *key)
{
    free(key->key_id);
    free(key->reason);
    key->key_id = NULL;
    key->reason = NULL;
}

/* Caller holds the lock. The key being worked on counts: it comes back to
 * the queue by itself when it needs another attempt. */
static bool queued_already(const deletion_queue *queue, const char *key_id)
{
    if (queue->in_flight && strcmp(queue->in_flight_key, key_id) == 0)
        return true;
    for (size_t i = 0; i < queue->count; i++) {
        if (strcmp(queue->keys[i].key_id, key_id) == 0)
            return true;
    }
    return false;
}

/* Caller holds the lock; takes ownership of key's strings on success. */
static bool insert_locked(deletion_queue *queue, pending_key *key)
{
    if (queue->count == QUEUE_CAPACITY)
        return false;
    queue->keys[queue->count++] = *key;
    pthread_cond_broadcast(&queue->changed);
    return true;
}

/* KMS showed aliases targeting the key: tell the owner (it may follow its
 * own alias), then check again later while KMS may still be settling. */
static outcome keep_aliased(deletion_queue *queue, pending_key *key, const aws_call_ctx *ctx,
                            const kms_alias *aliases, size_t count)
{
    char listed[24];
    snprintf(listed, sizeof listed, "%zu", count);
    for (size_t i = 0; queue->options.aliased != NULL && i < count; i++)
        queue->options.aliased(queue->options.ctx, ctx, aliases[i].alias_name);
    key->aliased_checks++;
    if (key->aliased_checks < ALIASED_CHECKS) {
        log_write(LOG_INFO, MODULE,
                  "Key not deleted: KMS shows an alias targeting it; will check again", "key_arn",
                  key->key_id, "alias_name", aliases[0].alias_name, "aliases", listed, "reason",
                  key->reason, LOG_END);
        return OUTCOME_RETRY;
    }
    log_write(LOG_WARN, MODULE,
              "Key kept: KMS shows an alias targeting it (the orphan sweep owns it if it stays "
              "unaliased)",
              "key_arn", key->key_id, "alias_name", aliases[0].alias_name, "aliases", listed,
              "reason", key->reason, LOG_END);
    return OUTCOME_DONE;
}

/* The rule's check (deletion_queue.h): our cache, then KMS's alias listing.
 * OUTCOME_UNUSED when KMS shows no alias targets the key. */
static outcome check_unused(deletion_queue *queue, pending_key *key, const aws_call_ctx *ctx)
{
    if (queue->options.is_live != NULL && queue->options.is_live(queue->options.ctx, key->key_id)) {
        log_write(LOG_INFO, MODULE, "Key not deleted: this server still uses it", "key_arn",
                  key->key_id, "reason", key->reason, LOG_END);
        return OUTCOME_DONE;
    }
    kms_alias *aliases = NULL;
    size_t count = 0;
    aws_error err;
    if (kms_truth_aliases_of_key(queue->options.kms, ctx, key->key_id, &aliases, &count, NULL,
                                 &err) != 0) {
        if (err.status == AWS_ERR_NOT_FOUND) {
            log_write(LOG_WARN, MODULE, "Key to delete does not exist", "key_arn", key->key_id,
                      LOG_END);
            return OUTCOME_DONE;
        }
        char cause[1300];
        snprintf(cause, sizeof cause, "%s: %s", aws_error_name(&err), err.message);
        log_write(LOG_WARN, MODULE,
                  "Key not deleted yet: KMS could not show that no alias targets it; will retry",
                  "key_arn", key->key_id, "error", cause, LOG_END);
        return OUTCOME_RETRY;
    }
    outcome verdict = count > 0 ? keep_aliased(queue, key, ctx, aliases, count) : OUTCOME_UNUSED;
    free(aliases);
    return verdict;
}

static void error_text(const aws_error *err, char *out, size_t size)
{
    snprintf(out, size, "%s: %s", aws_error_name(err), err->message);
}

/* The tags could not be read: kept and retried, except a denied read in
 * alias mode, where the aliases alone decide (OUTCOME_UNUSED). */
static outcome tags_unreadable(deletion_queue *queue, pending_key *key, const aws_error *err)
{
    if (err->status == AWS_ERR_NOT_FOUND) {
        log_write(LOG_WARN, MODULE, "Key to delete does not exist", "key_arn", key->key_id,
                  LOG_END);
        return OUTCOME_DONE;
    }
    char cause[1300];
    error_text(err, cause, sizeof cause);
    if (err->status == AWS_ERR_ACCESS_DENIED && !queue->options.tags_required) {
        if (!atomic_exchange(&queue->tags_denied_logged, true))
            log_write(LOG_WARN, MODULE,
                      "kms:ListResourceTags is denied: keys are judged by their aliases alone, "
                      "so a key that a tag-mode server keeps alive by its spire-last-update tag "
                      "could be deleted; grant kms:ListResourceTags",
                      "key_arn", key->key_id, "error", cause, LOG_END);
        return OUTCOME_UNUSED;
    }
    log_write(LOG_WARN, MODULE,
              "Key not deleted yet: KMS could not show its tags (whether a tag-mode server keeps "
              "it alive); will retry",
              "key_arn", key->key_id, "error", cause, LOG_END);
    return OUTCOME_RETRY;
}

/* The rule's tag check (deletion_queue.h): OUTCOME_UNUSED when the key's tags
 * show no live server; *retire when it is tagged spire-active = "true". */
static outcome check_tags(deletion_queue *queue, pending_key *key, const aws_call_ctx *ctx,
                          bool *retire)
{
    *retire = false;
    if (queue->options.trust_domain == NULL)
        return OUTCOME_UNUSED;
    tag_judge judge = {.trust_domain = queue->options.trust_domain,
                       .server_id = queue->options.server_id,
                       .now_s = fleet_kms_now_s(),
                       .stale_age_ms = queue->options.stale_alias_age_ms};
    aws_error err;
    aws_error_clear(&err);
    switch (kms_truth_tag_liveness(queue->options.kms, ctx, key->key_id, &judge, NULL, &err)) {
    case TAG_LIVENESS_NONE:
        return OUTCOME_UNUSED;
    case TAG_LIVENESS_RETIRE:
        *retire = true;
        return OUTCOME_UNUSED;
    case TAG_LIVENESS_LIVE:
        log_write(LOG_INFO, MODULE,
                  "Key kept: its tags show another server keeps it alive (spire-active and a "
                  "recent spire-last-update)",
                  "key_arn", key->key_id, "reason", key->reason, LOG_END);
        return OUTCOME_DONE;
    case TAG_LIVENESS_MALFORMED:
        log_write(LOG_WARN, MODULE, "Key kept: its " TAG_LAST_UPDATE " tag is not Unix seconds",
                  "key_arn", key->key_id, "reason", key->reason, LOG_END);
        return OUTCOME_DONE;
    case TAG_LIVENESS_UNREADABLE:
    default:
        return tags_unreadable(queue, key, &err);
    }
}

/* spire-active = "false" before ScheduleKeyDeletion: KMS refuses tags on a key
 * pending deletion, and a pending key must not look active to discovery. */
static outcome mark_inactive(deletion_queue *queue, pending_key *key, const aws_call_ctx *ctx)
{
    const kms_tag inactive = {TAG_ACTIVE, "false"};
    aws_error err;
    aws_error_clear(&err);
    if (kms_tag_resource(queue->options.kms, ctx, key->key_id, &inactive, 1, &err) == 0)
        return OUTCOME_UNUSED;
    if (err.status == AWS_ERR_INVALID_STATE) {
        log_write(LOG_INFO, MODULE, "Key already pending deletion", "key_arn", key->key_id, "error",
                  err.message, LOG_END);
        return OUTCOME_DONE;
    }
    if (err.status == AWS_ERR_NOT_FOUND) {
        log_write(LOG_WARN, MODULE, "Key to delete does not exist", "key_arn", key->key_id,
                  LOG_END);
        return OUTCOME_DONE;
    }
    char cause[1300];
    error_text(&err, cause, sizeof cause);
    if (err.status == AWS_ERR_ACCESS_DENIED && !queue->options.tags_required) {
        /* Alias mode without kms:TagResource: the key is dead all the same; it
         * stays tagged active while pending deletion, as upstream leaves it. */
        if (!atomic_exchange(&queue->tag_denied_logged, true))
            log_write(LOG_WARN, MODULE,
                      "kms:TagResource is denied: keys tagged " TAG_ACTIVE
                      "=true are scheduled for deletion without being tagged inactive first",
                      "key_arn", key->key_id, "error", cause, LOG_END);
        return OUTCOME_UNUSED;
    }
    log_write(LOG_WARN, MODULE,
              "Key not deleted yet: tagging it " TAG_ACTIVE "=false failed; will retry", "key_arn",
              key->key_id, "error", cause, LOG_END);
    return OUTCOME_RETRY;
}

static outcome schedule_deletion(deletion_queue *queue, pending_key *key)
{
    aws_call_ctx ctx = {.deadline_ms = clock_monotonic_ms() + CALL_TIMEOUT_MS,
                        .cancelled = &queue->cancel};
    outcome unused = check_unused(queue, key, &ctx);
    if (unused != OUTCOME_UNUSED)
        return unused;
    bool retire = false;
    unused = check_tags(queue, key, &ctx, &retire);
    if (unused == OUTCOME_UNUSED && retire)
        unused = mark_inactive(queue, key, &ctx);
    if (unused != OUTCOME_UNUSED)
        return unused;
    aws_error err;
    aws_error_clear(&err);
    if (kms_schedule_key_deletion(queue->options.kms, &ctx, key->key_id, PENDING_WINDOW_DAYS,
                                  &err) == 0) {
        log_write(LOG_INFO, MODULE, "Key scheduled for deletion", "key_arn", key->key_id, "reason",
                  key->reason, LOG_END);
        return OUTCOME_DONE;
    }
    switch (err.status) {
    case AWS_ERR_NOT_FOUND:
        log_write(LOG_WARN, MODULE, "Key to delete does not exist", "key_arn", key->key_id,
                  LOG_END);
        return OUTCOME_DONE;
    case AWS_ERR_INVALID_STATE:
        log_write(LOG_INFO, MODULE, "Key already pending deletion or in a state KMS cannot delete",
                  "key_arn", key->key_id, "error", err.message, LOG_END);
        return OUTCOME_DONE;
    case AWS_ERR_VALIDATION:
        log_write(LOG_ERROR, MODULE, "Failed to schedule key deletion: invalid key id", "key_arn",
                  key->key_id, "error", err.message, LOG_END);
        return OUTCOME_DONE;
    default: {
        char cause[1300];
        snprintf(cause, sizeof cause, "%s: %s", aws_error_name(&err), err.message);
        log_write(LOG_WARN, MODULE, "Failed to schedule key deletion, will retry", "key_arn",
                  key->key_id, "error", cause, LOG_END);
        return OUTCOME_RETRY;
    }
    }
}

/* Caller holds the lock; index of the key due first (count > 0). */
static size_t earliest_locked(const deletion_queue *queue)
{
    size_t best = 0;
    for (size_t i = 1; i < queue->count; i++) {
        if (queue->keys[i].due_ms < queue->keys[best].due_ms)
            best = i;
    }
    return best;
}

static void requeue_locked(deletion_queue *queue, pending_key *key)
{
    key->attempts++;
    key->due_ms = clock_monotonic_ms() + backoff_ms(key->attempts);
    if (!insert_locked(queue, key)) {
        log_write(LOG_ERROR, MODULE, "Deletion queue full: key will not be deleted", "key_arn",
                  key->key_id, LOG_END);
        pending_free(key);
    }
}

static void *worker(void *arg)
{
    deletion_queue *queue = arg;
    pthread_mutex_lock(&queue->lock);
    while (!queue->stopping) {
        if (queue->count == 0) {
            pthread_cond_wait(&queue->changed, &queue->lock);
            continue;
        }
        size_t index = earliest_locked(queue);
        if (queue->keys[index].due_ms > clock_monotonic_ms()) {
            struct timespec until = clock_monotonic_timespec(queue->keys[index].due_ms);
            pthread_cond_timedwait(&queue->changed, &queue->lock, &until);
            continue;
        }
        pending_key key = queue->keys[index];
        queue->keys[index] = queue->keys[--queue->count];
        queue->in_flight = true;
        queue->in_flight_key = key.key_id;
        pthread_mutex_unlock(&queue->lock);

        outcome result = schedule_deletion(queue, &key);

        pthread_mutex_lock(&queue->lock);
        queue->in_flight = false;
        queue->in_flight_key = NULL;
        if (result == OUTCOME_RETRY)
            requeue_locked(queue, &key);
        else
            pending_free(&key);
        pthread_cond_broadcast(&queue->changed);
    }
    pthread_mutex_unlock(&queue->lock);
    return NULL;
}

static void free_options(deletion_queue *queue)
{
    free((char *)queue->options.trust_domain);
    free((char *)queue->options.server_id);
}

int64_t deletion_queue_settle_ms(void)
{
    const char *text = getenv("KM_ALIAS_SETTLE_MS");
    if (text == NULL || text[0] == '\0')
        return DEFAULT_SETTLE_MS;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0)
        return DEFAULT_SETTLE_MS;
    return value;
}

deletion_queue *deletion_queue_start(const deletion_queue_options *options)
{
    deletion_queue *queue = calloc(1, sizeof *queue);
    if (queue == NULL)
        return NULL;
    queue->options = *options;
    queue->options.trust_domain = NULL;
    queue->options.server_id = NULL;
    if (options->trust_domain != NULL) {
        queue->options.trust_domain = strdup(options->trust_domain);
        queue->options.server_id = strdup(options->server_id != NULL ? options->server_id : "");
        if (queue->options.trust_domain == NULL || queue->options.server_id == NULL) {
            free_options(queue);
            free(queue);
            return NULL;
        }
    }
    atomic_init(&queue->cancel, false);
    atomic_init(&queue->tags_denied_logged, false);
    atomic_init(&queue->tag_denied_logged, false);
    clock_cond_init(&queue->changed);
    pthread_mutex_init(&queue->lock, NULL);
    if (pthread_create(&queue->thread, NULL, worker, queue) != 0) {
        pthread_cond_destroy(&queue->changed);
        pthread_mutex_destroy(&queue->lock);
        free_options(queue);
        free(queue);
        return NULL;
    }
    return queue;
}

bool deletion_queue_push(deletion_queue *queue, const char *key_id, const char *reason)
{
    return deletion_queue_push_after(queue, key_id, reason, 0);
}

bool deletion_queue_push_after(deletion_queue *queue, const char *key_id, const char *reason,
                               int64_t delay_ms)
{
    pending_key key = {.key_id = strdup(key_id),
                       .reason = strdup(reason != NULL ? reason : ""),
                       .due_ms = clock_monotonic_ms() + (delay_ms > 0 ? delay_ms : 0)};
    if (key.key_id == NULL || key.reason == NULL) {
        pending_free(&key);
        log_write(LOG_ERROR, MODULE, "Out of memory: key will not be deleted", "key_arn", key_id,
                  LOG_END);
        return false;
    }
    pthread_mutex_lock(&queue->lock);
    bool duplicate = queued_already(queue, key_id);
    bool inserted = !duplicate && insert_locked(queue, &key);
    pthread_mutex_unlock(&queue->lock);
    if (!inserted)
        pending_free(&key);
    if (!duplicate && !inserted) {
        log_write(LOG_ERROR, MODULE, "Deletion queue full: key will not be deleted", "key_arn",
                  key_id, "reason", reason, LOG_END);
        return false;
    }
    log_write(LOG_DEBUG, MODULE, "Key queued for deletion", "key_arn", key_id, "reason", reason,
              LOG_END);
    return true;
}

size_t deletion_queue_pending(deletion_queue *queue)
{
    pthread_mutex_lock(&queue->lock);
    size_t pending = queue->count + (queue->in_flight ? 1 : 0);
    pthread_mutex_unlock(&queue->lock);
    return pending;
}

/* Waits (bounded) for an in-flight call, then cancels it and joins. */
static void stop_worker(deletion_queue *queue, int timeout_ms)
{
    int64_t deadline = clock_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&queue->lock);
    queue->stopping = true;
    pthread_cond_broadcast(&queue->changed);
    while (queue->in_flight && clock_monotonic_ms() < deadline) {
        struct timespec until = clock_monotonic_timespec(deadline);
        pthread_cond_timedwait(&queue->changed, &queue->lock, &until);
    }
    atomic_store(&queue->cancel, true);
    pthread_mutex_unlock(&queue->lock);
    pthread_join(queue->thread, NULL);
}

void deletion_queue_stop_into(deletion_queue *queue, int timeout_ms, deletion_queue *successor)
{
    if (queue == NULL)
        return;
    stop_worker(queue, timeout_ms);
    for (size_t i = 0; i < queue->count; i++) {
        pending_key *key = &queue->keys[i];
        if (successor == NULL || !deletion_queue_push(successor, key->key_id, key->reason))
            log_write(LOG_WARN, MODULE,
                      "Key deletion not scheduled before shutdown (the orphan sweep of any server "
                      "of the trust domain deletes it if it stays unaliased)",
                      "key_arn", key->key_id, "reason", key->reason, LOG_END);
        pending_free(key);
    }
    pthread_cond_destroy(&queue->changed);
    pthread_mutex_destroy(&queue->lock);
    free_options(queue);
    free(queue);
}

void deletion_queue_stop(deletion_queue *queue, int timeout_ms)
{
    deletion_queue_stop_into(queue, timeout_ms, NULL);
}

/* Loads this server's keys from KMS at configure time (see key_fetch.h). */
#include "keymanager/key_fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/retry.h"
#include "common/log.h"
#include "keymanager/km_status.h"
#include "keymanager/listing.h"
#include "keymanager/naming.h"

#define MODULE "keymanager"

enum {
    MAX_DETAIL_THREADS = 8,
    ALIAS_PAGE_LIMIT = 100,
    FIRST_BACKOFF_MS = 250,
    MAX_BACKOFF_MS = 5000,
    DEFAULT_STARTUP_BUDGET_MS = 30000,
};

/* One alias of ours and what its details gave. */
typedef struct {
    char alias_name[257];
    char target[64];
    char *spire_id;
    key_entry *entry; /* usable key */
    bool stale;       /* left out: alias kept in mind for GenerateKey */
    bool failed;      /* KMS failure: see err, operation */
    const char *operation;
    aws_error err;
} alias_item;

typedef struct {
    alias_item *items;
    size_t count;
    size_t capacity;
} alias_list;

typedef struct {
    const key_fetch_options *options;
    alias_list *list;
    atomic_size_t next;
} detail_work;

/* A failure of one whole attempt: the KMS operation and its error. */
typedef struct {
    const char *operation;
    aws_error err;
} fetch_failure;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t key_fetch_startup_budget_ms(void)
{
    const char *text = getenv("KM_STARTUP_RETRY_MS");
    if (text == NULL || text[0] == '\0')
        return DEFAULT_STARTUP_BUDGET_MS;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0)
        return DEFAULT_STARTUP_BUDGET_MS;
    return value;
}

static void alias_list_clear(alias_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].spire_id);
        key_entry_release(list->items[i].entry);
    }
    free(list->items);
    memset(list, 0, sizeof *list);
}

static bool alias_list_add(alias_list *list, const kms_alias *alias, char *spire_id)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity > 0 ? list->capacity * 2 : 8;
        alias_item *grown = realloc(list->items, capacity * sizeof *grown);
        if (grown == NULL)
            return false;
        list->items = grown;
        list->capacity = capacity;
    }
    alias_item *item = &list->items[list->count++];
    memset(item, 0, sizeof *item);
    snprintf(item->alias_name, sizeof item->alias_name, "%s", alias->alias_name);
    snprintf(item->target, sizeof item->target, "%s", alias->target_key_id);
    item->spire_id = spire_id;
    return true;
}

/* Keeps alias when it is one of ours; takes nothing from it. */
static bool consider_alias(const key_fetch_options *options, const kms_alias *alias,
                           alias_list *list)
{
    char *server_id = NULL;
    char *spire_id = NULL;
    if (!naming_parse_alias(alias->alias_name, options->trust_domain, &server_id, &spire_id))
        return true;
    bool ours = strcmp(server_id, options->server_id) == 0;
    free(server_id);
    if (!ours) {
        free(spire_id);
        return true;
    }
    if (alias->target_key_id[0] == '\0') {
        log_write(LOG_WARN, MODULE, "Alias of ours targets no key; ignored", "alias_name",
                  alias->alias_name, LOG_END);
        free(spire_id);
        return true;
    }
    if (!alias_list_add(list, alias, spire_id)) {
        free(spire_id);
        return false;
    }
    return true;
}

/* ListAliases, every page (bounded: listing.h), keeping our aliases. */
static int list_own_aliases(const key_fetch_options *options, const aws_call_ctx *ctx,
                            alias_list *list, fetch_failure *failure)
{
    listing_cursor cursor;
    listing_start(&cursor, "ListAliases");
    failure->operation = "ListAliases";
    int rc = 0;
    listing_step step = LISTING_MORE;
    while (rc == 0 && step == LISTING_MORE) {
        kms_alias_page page;
        memset(&page, 0, sizeof page);
        aws_error_clear(&failure->err);
        rc = kms_list_aliases(options->kms, ctx, NULL, listing_marker(&cursor), ALIAS_PAGE_LIMIT,
                              &page, &failure->err);
        for (size_t i = 0; rc == 0 && i < page.count; i++) {
            if (!consider_alias(options, &page.aliases[i], list)) {
                aws_error_set(&failure->err, AWS_ERR_INTERNAL, "out of memory");
                rc = -1;
            }
        }
        if (rc == 0) {
            step = listing_advance(&cursor, page.truncated, page.next_marker, &failure->err);
            rc = step == LISTING_BROKEN ? -1 : 0;
        }
        kms_alias_page_clear(&page);
    }
    listing_end(&cursor);
    return rc;
}

static void leave_out(alias_item *item, const char *why, const char *key)
{
    log_write(LOG_WARN, MODULE, "Key behind our alias is not usable; SPIRE will get a new one",
              "alias_name", item->alias_name, "key_id", item->spire_id, "key_arn", key, "reason",
              why, LOG_END);
    item->stale = true;
}

/* DescribeKey then GetPublicKey for one alias. */
static void fetch_details(const key_fetch_options *options, alias_item *item)
{
    aws_call_ctx ctx = {.deadline_ms = options->deadline_ms, .cancelled = options->cancelled};
    kms_key_metadata meta;
    memset(&meta, 0, sizeof meta);
    if (kms_describe_key(options->kms, &ctx, item->target, &meta, &item->err) != 0) {
        if (item->err.status == AWS_ERR_NOT_FOUND) {
            leave_out(item, "key not found", item->target);
            return;
        }
        item->failed = true;
        item->operation = "DescribeKey";
        return;
    }
    if (!meta.enabled) {
        leave_out(item, meta.key_state[0] ? meta.key_state : "disabled", meta.arn);
        return;
    }
    km_key_type type = key_type_for_spec(meta.key_spec);
    if (type == KM_KEY_TYPE_UNSPECIFIED) {
        leave_out(item, "key spec is not one SPIRE uses", meta.arn);
        return;
    }
    kms_public_key pub;
    memset(&pub, 0, sizeof pub);
    if (kms_get_public_key(options->kms, &ctx, meta.arn, &pub, &item->err) != 0) {
        item->failed = true;
        item->operation = "GetPublicKey";
        return;
    }
    item->entry = key_entry_new(item->spire_id, item->alias_name, meta.arn, meta.key_id, type,
                                pub.der, pub.der_len);
    kms_public_key_clear(&pub);
    if (item->entry == NULL) {
        item->failed = true;
        item->operation = "GetPublicKey";
        aws_error_set(&item->err, AWS_ERR_INTERNAL, "out of memory");
    }
}

static void *detail_worker(void *arg)
{
    detail_work *work = arg;
    for (;;) {
        size_t index = atomic_fetch_add(&work->next, 1);
        if (index >= work->list->count)
            return NULL;
        fetch_details(work->options, &work->list->items[index]);
    }
}

static void fetch_all_details(const key_fetch_options *options, alias_list *list)
{
    detail_work work = {.options = options, .list = list};
    atomic_init(&work.next, 0);
    pthread_t threads[MAX_DETAIL_THREADS];
    size_t wanted = list->count < MAX_DETAIL_THREADS ? list->count : MAX_DETAIL_THREADS;
    size_t started = 0;
    while (started < wanted && pthread_create(&threads[started], NULL, detail_worker, &work) == 0)
        started++;
    if (started == 0)
        detail_worker(&work);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

/* One attempt; on success moves the keys into cache. */
static int fetch_once(const key_fetch_options *options, key_cache *cache, fetch_failure *failure)
{
    aws_call_ctx ctx = {.deadline_ms = options->deadline_ms, .cancelled = options->cancelled};
    alias_list list = {0};
    if (list_own_aliases(options, &ctx, &list, failure) != 0) {
        alias_list_clear(&list);
        return -1;
    }
    fetch_all_details(options, &list);
    for (size_t i = 0; i < list.count; i++) {
        if (list.items[i].failed) {
            failure->operation = list.items[i].operation;
            failure->err = list.items[i].err;
            alias_list_clear(&list);
            return -1;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < list.count; i++) {
        alias_item *item = &list.items[i];
        if (item->stale) {
            key_cache_add_stale_alias(cache, item->alias_name);
            continue;
        }
        bool stored = false;
        key_entry_release(key_cache_put(cache, item->entry, &stored));
        if (!stored) {
            failure->operation = "ListAliases";
            aws_error_set(&failure->err, AWS_ERR_INTERNAL, "out of memory");
            rc = -1;
            break;
        }
        log_write(LOG_DEBUG, MODULE, "Key loaded", "key_id", item->spire_id, "key_arn",
                  item->entry->arn, "alias_name", item->alias_name, LOG_END);
    }
    alias_list_clear(&list);
    return rc;
}

static bool transient(aws_status status)
{
    return status == AWS_ERR_THROTTLED || status == AWS_ERR_SERVER || status == AWS_ERR_TRANSPORT ||
           status == AWS_ERR_TIMEOUT;
}

static int report_failure(const fetch_failure *failure, int attempts, km_status *status)
{
    km_fail_aws(status, failure->operation, &failure->err);
    char cause[sizeof status->message];
    snprintf(cause, sizeof cause, "%s", status->message);
    if (attempts > 1)
        km_status_set(status, status->code, "failed to fetch keys from KMS (%d attempts): %s",
                      attempts, cause);
    else
        km_status_set(status, status->code, "failed to fetch keys from KMS: %s", cause);
    return -1;
}

int key_fetch_all(const key_fetch_options *options, key_cache *cache, km_status *status)
{
    int64_t backoff = FIRST_BACKOFF_MS;
    fetch_failure cause = {0}; /* the last failure that was not our own deadline */
    for (int attempt = 1;; attempt++) {
        fetch_failure failure = {0};
        if (fetch_once(options, cache, &failure) == 0)
            return 0;
        int64_t remaining = options->deadline_ms - now_ms();
        bool own_deadline = failure.err.status == AWS_ERR_TIMEOUT && remaining <= 0;
        if (!own_deadline || cause.operation == NULL)
            cause = failure;
        if (!transient(failure.err.status) || remaining <= 0)
            return report_failure(&cause, attempt, status);
        char attempt_text[16];
        snprintf(attempt_text, sizeof attempt_text, "%d", attempt);
        log_write(LOG_WARN, MODULE, "KMS not reachable while loading keys; retrying", "operation",
                  failure.operation, "error", failure.err.message, "attempt", attempt_text,
                  LOG_END);
        if (aws_sleep_ms(backoff < remaining ? backoff : remaining, options->cancelled) != 0) {
            aws_error_set(&failure.err, AWS_ERR_CANCELLED, "Configure was cancelled");
            return report_failure(&failure, attempt, status);
        }
        backoff = backoff * 2 < MAX_BACKOFF_MS ? backoff * 2 : MAX_BACKOFF_MS;
    }
}

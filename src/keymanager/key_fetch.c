/* Loads this server's keys from KMS at configure time, by alias and, in tag
 * mode, by tags (see key_fetch.h). */
#include "keymanager/key_fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/retry.h"
#include "common/clock.h"
#include "common/log.h"
#include "keymanager/km_status.h"
#include "keymanager/listing.h"
#include "keymanager/naming.h"
#include "keymanager/tag_listing.h"
#include "keymanager/tag_mode.h"

#define MODULE "keymanager"

enum {
    MAX_DETAIL_THREADS = 8,
    ALIAS_PAGE_LIMIT = 100,
    FIRST_BACKOFF_MS = 250,
    MAX_BACKOFF_MS = 5000,
    /* A timeout this close to Configure's deadline was our deadline's: the
     * request timeout is cut to it, and curl's timer may fire a few
     * milliseconds early. Such a timeout never hides an earlier cause. */
    OWN_DEADLINE_SLACK_MS = 100,
    DEFAULT_STARTUP_BUDGET_MS = 30000,
};

/* One key found by one of our aliases or by its tags, and what its details
 * gave. */
typedef struct {
    char alias_name[257];
    char target[256]; /* the alias's key id, or the tagged key's ARN */
    char *spire_id;
    bool from_tags;       /* found by GetResources, not by an alias */
    bool tagged;          /* an alias's key GetResources listed too (tagged active) */
    bool duplicate;       /* a tagged key our alias targets: described as the alias's */
    double creation_date; /* from DescribeKey */
    key_entry *entry;     /* usable key */
    bool stale;           /* left out: an alias kept in mind for GenerateKey */
    bool unusable;        /* a tagged key left out */
    bool failed;          /* KMS failure: see err, operation */
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

/* A new zeroed item at the end of list, or NULL when memory ran out. */
static alias_item *alias_list_push(alias_list *list)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity > 0 ? list->capacity * 2 : 8;
        alias_item *grown = realloc(list->items, capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        list->items = grown;
        list->capacity = capacity;
    }
    alias_item *item = &list->items[list->count++];
    memset(item, 0, sizeof *item);
    return item;
}

static bool alias_list_add(alias_list *list, const kms_alias *alias, char *spire_id)
{
    alias_item *item = alias_list_push(list);
    if (item == NULL)
        return false;
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

typedef struct {
    const key_fetch_options *options;
    const aws_call_ctx *ctx;
    alias_list *list;
} own_alias_listing;

static int own_alias_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    own_alias_listing *listing = user;
    kms_alias_page page;
    memset(&page, 0, sizeof page);
    int rc = kms_list_aliases(listing->options->kms, listing->ctx, NULL, marker, ALIAS_PAGE_LIMIT,
                              &page, err);
    for (size_t i = 0; rc == 0 && i < page.count; i++) {
        if (!consider_alias(listing->options, &page.aliases[i], listing->list)) {
            aws_error_set(err, AWS_ERR_INTERNAL, "out of memory");
            rc = -1;
        }
    }
    listing_page_end_set(end, page.truncated, page.next_marker);
    kms_alias_page_clear(&page);
    return rc;
}

/* ListAliases, every page (bounded: listing.h), keeping our aliases. */
static int list_own_aliases(const key_fetch_options *options, const aws_call_ctx *ctx,
                            alias_list *list, fetch_failure *failure)
{
    failure->operation = "ListAliases";
    own_alias_listing listing = {.options = options, .ctx = ctx, .list = list};
    return listing_walk("ListAliases", own_alias_page, &listing, &failure->err) == LISTING_DONE
               ? 0
               : -1;
}

/* ---- keys found by their tags (tag mode) ------------------------------------- */

/* Adds a tagged key of ours; one without spire-key-id (or one SPIRE's key id
 * cannot name an alias with) is logged and skipped. */
static bool add_tagged(const key_fetch_options *options, const tagged_key *key, alias_list *list)
{
    const char *spire_id = aws_tag_set_get(&key->tags, TAG_KEY_ID);
    km_status why = {0};
    char *alias = spire_id != NULL ? naming_alias_for_key(options->trust_domain, options->server_id,
                                                          spire_id, &why)
                                   : NULL;
    if (alias == NULL) {
        log_write(LOG_WARN, MODULE, "Tagged key skipped: no usable " TAG_KEY_ID " tag", "key_arn",
                  key->arn, TAG_KEY_ID, spire_id != NULL ? spire_id : "", "reason",
                  spire_id != NULL ? why.message : "missing", LOG_END);
        return true;
    }
    alias_item *item = alias_list_push(list);
    char *copy = strdup(spire_id);
    if (item == NULL || copy == NULL) {
        if (item != NULL)
            list->count--;
        free(copy);
        free(alias);
        return false;
    }
    snprintf(item->alias_name, sizeof item->alias_name, "%s", alias);
    snprintf(item->target, sizeof item->target, "%s", key->arn);
    item->spire_id = copy;
    item->from_tags = true;
    free(alias);
    return true;
}

/* GetResources: our trust domain, our server id, spire-active = "true". */
static int list_tagged_keys(const key_fetch_options *options, const aws_call_ctx *ctx,
                            alias_list *list, fetch_failure *failure)
{
    failure->operation = "GetResources";
    tag_query query = {
        .trust_domain = options->trust_domain, .server_id = options->server_id, .active = "true"};
    tagged_keys keys;
    if (tag_listing_find(options->kms, ctx, &query, &keys, NULL, &failure->err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < keys.count; i++) {
        if (!add_tagged(options, &keys.items[i], list)) {
            aws_error_set(&failure->err, AWS_ERR_INTERNAL, "out of memory");
            rc = -1;
        }
    }
    tagged_keys_clear(&keys);
    return rc;
}

/* Whether arn ("arn:...:key/ID") names the key whose id is key_id. */
static bool arn_names(const char *arn, const char *key_id)
{
    const char *tail = strrchr(arn, '/');
    return tail != NULL && key_id[0] != '\0' && strcmp(tail + 1, key_id) == 0;
}

/* A key found by its tags and by our alias for the same SPIRE key id is
 * described once, as the alias's, which remembers it is tagged active. */
static void drop_tag_duplicates(alias_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        alias_item *tagged = &list->items[i];
        for (size_t j = 0; tagged->from_tags && j < list->count; j++) {
            alias_item *alias = &list->items[j];
            if (!alias->from_tags && strcmp(alias->spire_id, tagged->spire_id) == 0 &&
                arn_names(tagged->target, alias->target)) {
                alias->tagged = true;
                tagged->duplicate = true;
            }
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].duplicate)
            free(list->items[i].spire_id);
        else
            list->items[kept++] = list->items[i];
    }
    list->count = kept;
}

/* ---- details ----------------------------------------------------------------- */

static void leave_out(alias_item *item, const char *why, const char *key)
{
    if (item->from_tags) {
        log_write(LOG_INFO, MODULE, "Tagged key is not usable; left out", "key_id", item->spire_id,
                  "key_arn", key, "reason", why, LOG_END);
        item->unusable = true;
        return;
    }
    log_write(LOG_WARN, MODULE, "Key behind our alias is not usable; SPIRE will get a new one",
              "alias_name", item->alias_name, "key_id", item->spire_id, "key_arn", key, "reason",
              why, LOG_END);
    item->stale = true;
}

/* DescribeKey then GetPublicKey for one key. */
static void fetch_details(const key_fetch_options *options, alias_item *item)
{
    aws_call_ctx ctx = options->call;
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
    item->creation_date = meta.creation_date;
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

/* ---- one key per SPIRE key id ------------------------------------------------ */

void key_fetch_plan_clear(key_fetch_plan *plan)
{
    for (size_t i = 0; plan->steps != NULL && i < plan->count; i++) {
        free(plan->steps[i].spire_id);
        free(plan->steps[i].alias_name);
        free(plan->steps[i].arn);
    }
    free(plan->steps);
    plan->steps = NULL;
    plan->count = 0;
}

static bool plan_add(key_fetch_plan *plan, key_fetch_action action, const alias_item *item)
{
    key_fetch_step *grown = realloc(plan->steps, (plan->count + 1) * sizeof *grown);
    if (grown == NULL)
        return false;
    plan->steps = grown;
    key_fetch_step *step = &plan->steps[plan->count];
    step->action = action;
    step->spire_id = strdup(item->spire_id);
    step->alias_name = strdup(item->alias_name);
    step->arn = strdup(item->entry != NULL ? item->entry->arn : item->target);
    if (step->spire_id == NULL || step->alias_name == NULL || step->arn == NULL) {
        free(step->spire_id);
        free(step->alias_name);
        free(step->arn);
        return false;
    }
    plan->count++;
    return true;
}

static bool same_key(const alias_item *a, const alias_item *b)
{
    return a->entry != NULL && b->entry != NULL &&
           strcmp(a->entry->kms_key_id, b->entry->kms_key_id) == 0;
}

/* Index of the alias item (usable or not) for spire_id, or list->count. */
static size_t alias_for(const alias_list *list, const char *spire_id)
{
    for (size_t i = 0; i < list->count; i++) {
        const alias_item *item = &list->items[i];
        if (!item->from_tags && strcmp(item->spire_id, spire_id) == 0)
            return i;
    }
    return list->count;
}

/* The tagged usable key for spire_id created last (the other ones are
 * leftovers), or list->count. */
static size_t newest_tagged(const alias_list *list, const char *spire_id)
{
    size_t best = list->count;
    for (size_t i = 0; i < list->count; i++) {
        const alias_item *item = &list->items[i];
        if (!item->from_tags || item->entry == NULL || strcmp(item->spire_id, spire_id) != 0)
            continue;
        if (best == list->count || item->creation_date > list->items[best].creation_date)
            best = i;
    }
    return best;
}

/* Decides, for a tagged usable key, whether it is the one we use (winner)
 * and what Configure must do about it. */
static bool judge_tagged(alias_list *list, size_t index, key_fetch_plan *plan)
{
    alias_item *item = &list->items[index];
    size_t alias_index = alias_for(list, item->spire_id);
    alias_item *alias = alias_index < list->count ? &list->items[alias_index] : NULL;
    if (alias != NULL && alias->entry != NULL) {
        if (same_key(alias, item)) {
            key_entry_set_tags(alias->entry, KEY_TAGS_SPIRE);
            return true; /* the alias's item is the winner */
        }
        log_write(LOG_WARN, MODULE,
                  "A second key is tagged active for this key id; our alias targets another: "
                  "it is tagged inactive and queued for deletion",
                  "key_id", item->spire_id, "key_arn", item->entry->arn, "alias_key_arn",
                  alias->entry->arn, LOG_END);
        return plan_add(plan, FETCH_RETIRE, item);
    }
    if (newest_tagged(list, item->spire_id) != index) {
        log_write(LOG_WARN, MODULE,
                  "A second key is tagged active for this key id; the newest is used, this one "
                  "is tagged inactive and queued for deletion",
                  "key_id", item->spire_id, "key_arn", item->entry->arn, LOG_END);
        return plan_add(plan, FETCH_RETIRE, item);
    }
    /* The winner: found by its tags only (its alias is gone or targets an
     * unusable key); the alias is restored so that alias-mode peers see it. */
    key_entry_set_tags(item->entry, KEY_TAGS_SPIRE);
    item->stale = false;
    if (alias != NULL) {
        alias->stale = false; /* re-pointed: no longer a stale alias of ours */
        return plan_add(plan, FETCH_UPDATE_ALIAS, item);
    }
    return plan_add(plan, FETCH_CREATE_ALIAS, item);
}

/* Tag mode: picks one key per SPIRE key id (key_fetch.h) and plans the
 * changes; the losers' entries are dropped. */
static bool merge_tagged(alias_list *list, key_fetch_plan *plan)
{
    for (size_t i = 0; i < list->count; i++) {
        alias_item *item = &list->items[i];
        if (!item->from_tags || item->entry == NULL)
            continue;
        size_t before = plan->count;
        if (!judge_tagged(list, i, plan))
            return false;
        bool lost = plan->count > before && plan->steps[before].action == FETCH_RETIRE;
        bool duplicate = alias_for(list, item->spire_id) < list->count &&
                         list->items[alias_for(list, item->spire_id)].entry != NULL;
        if (lost || duplicate) {
            key_entry_release(item->entry);
            item->entry = NULL;
        }
    }
    for (size_t i = 0; i < list->count; i++) {
        alias_item *item = &list->items[i];
        if (item->from_tags || item->entry == NULL)
            continue;
        if (item->tagged)
            key_entry_set_tags(item->entry, KEY_TAGS_SPIRE);
        else if (key_entry_tags(item->entry) != KEY_TAGS_SPIRE &&
                 !plan_add(plan, FETCH_MIGRATE, item))
            return false;
    }
    return true;
}

/* One attempt; on success moves the keys into cache and the steps into plan. */
static int fetch_once(const key_fetch_options *options, key_cache *cache, key_fetch_plan *plan,
                      fetch_failure *failure)
{
    aws_call_ctx ctx = options->call;
    alias_list list = {0};
    if ((options->tag_mode && list_tagged_keys(options, &ctx, &list, failure) != 0) ||
        list_own_aliases(options, &ctx, &list, failure) != 0) {
        alias_list_clear(&list);
        return -1;
    }
    drop_tag_duplicates(&list);
    fetch_all_details(options, &list);
    for (size_t i = 0; i < list.count; i++) {
        if (list.items[i].failed) {
            failure->operation = list.items[i].operation;
            failure->err = list.items[i].err;
            alias_list_clear(&list);
            return -1;
        }
    }
    if (options->tag_mode && !merge_tagged(&list, plan)) {
        key_fetch_plan_clear(plan);
        failure->operation = "GetResources";
        aws_error_set(&failure->err, AWS_ERR_INTERNAL, "out of memory");
        alias_list_clear(&list);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < list.count; i++) {
        alias_item *item = &list.items[i];
        if (item->stale) {
            key_cache_add_stale_alias(cache, item->alias_name);
            continue;
        }
        if (item->entry == NULL)
            continue;
        bool stored = false;
        key_entry_release(key_cache_put(cache, item->entry, &stored));
        if (!stored) {
            failure->operation = "ListAliases";
            aws_error_set(&failure->err, AWS_ERR_INTERNAL, "out of memory");
            rc = -1;
            break;
        }
        log_write(LOG_DEBUG, MODULE, "Key loaded", "key_id", item->spire_id, "key_arn",
                  item->entry->arn, "alias_name", item->alias_name, "found_by",
                  item->from_tags ? "tags" : "alias", LOG_END);
    }
    alias_list_clear(&list);
    return rc;
}

static bool transient(const aws_error *err)
{
    return err->status == AWS_ERR_THROTTLED || err->status == AWS_ERR_SERVER ||
           err->status == AWS_ERR_TRANSPORT || err->status == AWS_ERR_TIMEOUT ||
           strcmp(err->code, "PaginationTokenExpiredException") == 0;
}

static int report_failure(const fetch_failure *failure, int attempts, km_status *status)
{
    if (failure->err.status == AWS_ERR_ACCESS_DENIED &&
        strcmp(failure->operation, "GetResources") == 0) {
        char text[sizeof status->message];
        tag_listing_denied_text(&failure->err, text, sizeof text);
        km_status_set(status, GRPC_STATUS_FAILED_PRECONDITION, "%s", text);
        return -1;
    }
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

int key_fetch_all(const key_fetch_options *options, key_cache *cache, key_fetch_plan *plan,
                  km_status *status)
{
    int64_t backoff = FIRST_BACKOFF_MS;
    fetch_failure cause = {0}; /* the last failure that was not our own deadline */
    for (int attempt = 1;; attempt++) {
        fetch_failure failure = {0};
        if (fetch_once(options, cache, plan, &failure) == 0)
            return 0;
        int64_t remaining = options->call.deadline_ms - clock_monotonic_ms();
        bool own_deadline =
            failure.err.status == AWS_ERR_TIMEOUT && remaining <= OWN_DEADLINE_SLACK_MS;
        if (!own_deadline || cause.operation == NULL)
            cause = failure;
        if (!transient(&failure.err) || remaining <= 0)
            return report_failure(&cause, attempt, status);
        char attempt_text[16];
        snprintf(attempt_text, sizeof attempt_text, "%d", attempt);
        log_write(LOG_WARN, MODULE, "KMS not reachable while loading keys; retrying", "operation",
                  failure.operation, "error", failure.err.message, "attempt", attempt_text,
                  LOG_END);
        if (aws_sleep_ms(backoff < remaining ? backoff : remaining, options->call.cancelled) != 0) {
            aws_error_set(&failure.err, AWS_ERR_CANCELLED, "Configure was cancelled");
            return report_failure(&failure, attempt, status);
        }
        backoff = backoff * 2 < MAX_BACKOFF_MS ? backoff * 2 : MAX_BACKOFF_MS;
    }
}

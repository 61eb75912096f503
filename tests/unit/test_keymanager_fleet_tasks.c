/* Unit tests of the fleet task runs and their scheduler against an in-memory
 * fake of the KMS calls they make (defined here, so the real client is not
 * linked): which aliases are bumped or deleted, which keys are queued for
 * deletion, exact call counts per run, fault handling (lost answers and
 * listings KMS never completes included), the re-check right before
 * DeleteAlias, periods and prompt stop, and KMS's dates judged on KMS's
 * clock as the AWS client learned it (not the host's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "aws/clock.h"
#include "aws/tagging.h"
#include "common/clock.h"
#include "common/log.h"
#include "keymanager/fleet_internal.h"

#define HOUR_S  3600.0
#define DAY_S   (24 * HOUR_S)
#define NOW_S   1800000000.0
#define HOUR_MS (3600LL * 1000)
#define TD      "example.org"
#define ME      "server-me"
#define PEER    "server-peer"
#define MAX     32

/* ---- the fake KMS -------------------------------------------------------- */

typedef enum {
    OP_LIST_ALIASES,     /* unfiltered: the sweeps' listings */
    OP_LIST_KEY_ALIASES, /* with KeyId: the re-check before DeleteAlias */
    OP_LIST_KEYS,
    OP_DESCRIBE,
    OP_UPDATE,
    OP_DELETE,
    OP_LIST_TAGS,
    OP_TAG,
    OP_CREATE_ALIAS,
    OP_GET_RESOURCES,
    OP_COUNT
} op;

typedef struct {
    char key[32];
    char value[64];
} fake_tag;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    kms_alias aliases[MAX];
    size_t alias_count;
    kms_key_metadata keys[MAX];
    size_t key_count;
    fake_tag tags[MAX][8]; /* keys[i]'s tags */
    size_t tag_count[MAX];
    size_t page_size;
    unsigned calls[OP_COUNT];
    int passes_left[OP_COUNT];            /* calls that succeed before armed failures */
    int failures_left[OP_COUNT];          /* calls that then fail */
    aws_status fail_status[OP_COUNT];     /* how they fail (0: a 5xx) */
    bool applied_then_lost[OP_COUNT];     /* failures are applied first (an answer lost) */
    bool repeat_marker;                   /* listings answer the same NextMarker forever */
    const char *refreshed_before_recheck; /* this alias is refreshed right after the listing */
    bool block_list_keys;                 /* ListKeys waits until the call is cancelled */
    bool block_update;                    /* UpdateAlias waits until update_released */
    bool update_released;
    bool update_cancellable; /* an UpdateAlias came with a stop flag */
    bool update_saw_alias_lock_held;
    bool saw_cancellation; /* a blocked call returned because of it */
    char pushed[MAX][64];
    size_t pushed_count;
    fleet_alias own[8];
    size_t own_count;
    char moved_alias[257];
    char moved_key[64];
    double clock_s; /* LastUpdatedDate that UpdateAlias writes */
    /* Our cache after the run's first look: alias own[0] now targets this key
     * (a GenerateKey of ours rotated it in between). */
    const char *rotated_to;
    unsigned own_reads;
    bool describe_saw_alias_lock_held;
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static kms_client *const FAKE_CLIENT = (kms_client *)&fake;
static deletion_queue *const FAKE_QUEUE = (deletion_queue *)&fake.pushed;

static int reset_fake(void **state)
{
    (void)state;
    pthread_mutex_lock(&fake.lock);
    memset(fake.aliases, 0, sizeof fake.aliases);
    memset(fake.keys, 0, sizeof fake.keys);
    memset(fake.tags, 0, sizeof fake.tags);
    memset(fake.tag_count, 0, sizeof fake.tag_count);
    fake.alias_count = fake.key_count = fake.pushed_count = fake.own_count = 0;
    fake.page_size = 2;
    memset(fake.calls, 0, sizeof fake.calls);
    memset(fake.passes_left, 0, sizeof fake.passes_left);
    memset(fake.failures_left, 0, sizeof fake.failures_left);
    memset(fake.fail_status, 0, sizeof fake.fail_status);
    memset(fake.applied_then_lost, 0, sizeof fake.applied_then_lost);
    fake.repeat_marker = false;
    fake.refreshed_before_recheck = NULL;
    fake.block_list_keys = fake.saw_cancellation = false;
    fake.block_update = fake.update_released = fake.update_cancellable = false;
    fake.update_saw_alias_lock_held = false;
    fake.moved_alias[0] = fake.moved_key[0] = '\0';
    fake.clock_s = NOW_S;
    fake.rotated_to = NULL;
    fake.own_reads = 0;
    fake.describe_saw_alias_lock_held = false;
    pthread_mutex_unlock(&fake.lock);
    aws_clock_set_offset(0);
    return 0;
}

/* The owner's alias lock, as the keymanager passes it to the fleet. */
static pthread_mutex_t owner_alias_lock = PTHREAD_MUTEX_INITIALIZER;

static bool owner_alias_lock_is_held(void)
{
    if (pthread_mutex_trylock(&owner_alias_lock) != 0)
        return true;
    pthread_mutex_unlock(&owner_alias_lock);
    return false;
}

/* Counts the call; fails it (a server error) once passes_left calls went
 * through, while failures are armed. */
static int enter(op operation, aws_error *err)
{
    fake.calls[operation]++;
    pthread_cond_broadcast(&fake.changed);
    if (fake.passes_left[operation] > 0) {
        fake.passes_left[operation]--;
        return 0;
    }
    if (fake.failures_left[operation] > 0 && !fake.applied_then_lost[operation]) {
        fake.failures_left[operation]--;
        err->status = fake.fail_status[operation] ? fake.fail_status[operation] : AWS_ERR_SERVER;
        snprintf(err->message, sizeof err->message, "injected failure");
        return -1;
    }
    return 0;
}

/* After an applied call: fails it anyway when its answer is to be lost. */
static int answer(op operation, aws_error *err)
{
    if (!fake.applied_then_lost[operation] || fake.failures_left[operation] == 0)
        return 0;
    fake.failures_left[operation]--;
    err->status = fake.fail_status[operation] ? fake.fail_status[operation] : AWS_ERR_SERVER;
    snprintf(err->message, sizeof err->message, "injected lost answer");
    return -1;
}

static int not_found(aws_error *err, const char *what)
{
    err->status = AWS_ERR_NOT_FOUND;
    snprintf(err->message, sizeof err->message, "%s is not found", what);
    return -1;
}

static void add_alias(const char *name, const char *target, double last_updated)
{
    kms_alias *alias = &fake.aliases[fake.alias_count++];
    snprintf(alias->alias_name, sizeof alias->alias_name, "%s", name);
    snprintf(alias->target_key_id, sizeof alias->target_key_id, "%s", target);
    alias->last_updated_date = last_updated;
    alias->creation_date = last_updated;
}

static kms_key_metadata *add_key(const char *id, const char *description, double created)
{
    kms_key_metadata *key = &fake.keys[fake.key_count++];
    snprintf(key->key_id, sizeof key->key_id, "%s", id);
    snprintf(key->arn, sizeof key->arn, "arn:aws:kms:us-east-2:111122223333:key/%s", id);
    snprintf(key->description, sizeof key->description, "%s", description);
    strcpy(key->key_state, "Enabled");
    strcpy(key->key_manager, "CUSTOMER");
    key->enabled = true;
    key->creation_date = created;
    return key;
}

static kms_alias *find_alias(const char *name)
{
    for (size_t i = 0; i < fake.alias_count; i++) {
        if (strcmp(fake.aliases[i].alias_name, name) == 0) {
            return &fake.aliases[i];
        }
    }
    return NULL;
}

static kms_key_metadata *find_key(const char *ref)
{
    if (strncmp(ref, "alias/", 6) == 0) {
        kms_alias *alias = find_alias(ref);
        return alias ? find_key(alias->target_key_id) : NULL;
    }
    for (size_t i = 0; i < fake.key_count; i++) {
        if (strcmp(fake.keys[i].key_id, ref) == 0 || strcmp(fake.keys[i].arn, ref) == 0) {
            return &fake.keys[i];
        }
    }
    return NULL;
}

static size_t page_start(const char *marker) { return marker ? strtoul(marker, NULL, 10) : 0; }

static bool targets(const kms_alias *alias, const char *key_ref)
{
    const char *tail = strrchr(key_ref, '/');
    return strcmp(alias->target_key_id, tail != NULL ? tail + 1 : key_ref) == 0;
}

/* One page of the aliases (all of them, or those targeting key_id). */
static void alias_page(const char *key_id, const char *marker, kms_alias_page *out)
{
    kms_alias matching[MAX];
    size_t count = 0;
    for (size_t i = 0; i < fake.alias_count; i++) {
        if (key_id == NULL || targets(&fake.aliases[i], key_id))
            matching[count++] = fake.aliases[i];
    }
    size_t start = page_start(marker);
    size_t end = start + fake.page_size < count ? start + fake.page_size : count;
    start = start < end ? start : end;
    out->aliases = calloc(end - start + 1, sizeof *out->aliases);
    memcpy(out->aliases, matching + start, (end - start) * sizeof *out->aliases);
    out->count = end - start;
    out->truncated = end < count || fake.repeat_marker;
    if (out->truncated) {
        snprintf(out->next_marker, sizeof out->next_marker, "%zu", fake.repeat_marker ? 0 : end);
    }
}

int kms_list_aliases(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     const char *marker, int limit, kms_alias_page *out, aws_error *err)
{
    (void)client, (void)ctx, (void)limit;
    pthread_mutex_lock(&fake.lock);
    op operation = key_id != NULL ? OP_LIST_KEY_ALIASES : OP_LIST_ALIASES;
    int rc = enter(operation, err);
    if (rc == 0 && key_id != NULL && fake.refreshed_before_recheck != NULL) {
        kms_alias *refreshed = find_alias(fake.refreshed_before_recheck);
        if (refreshed != NULL)
            refreshed->last_updated_date = fake.clock_s;
    }
    if (rc == 0) {
        alias_page(key_id, marker, out);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

/* Like an HTTP call that notices cancellation: returns once ctx is cancelled. */
static int block_until_cancelled(const aws_call_ctx *ctx, aws_error *err)
{
    struct timespec give_up;
    clock_gettime(CLOCK_REALTIME, &give_up);
    give_up.tv_sec += 10;
    while (!atomic_load(ctx->cancelled)) {
        struct timespec tick;
        clock_gettime(CLOCK_REALTIME, &tick);
        if (tick.tv_sec >= give_up.tv_sec) {
            err->status = AWS_ERR_TIMEOUT;
            return -1;
        }
        tick.tv_nsec += 5 * 1000 * 1000;
        if (tick.tv_nsec >= 1000000000) {
            tick.tv_sec++;
            tick.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&fake.changed, &fake.lock, &tick);
    }
    fake.saw_cancellation = true;
    err->status = AWS_ERR_CANCELLED;
    return -1;
}

int kms_list_keys(kms_client *client, const aws_call_ctx *ctx, const char *marker, int limit,
                  kms_key_page *out, aws_error *err)
{
    (void)client, (void)limit;
    pthread_mutex_lock(&fake.lock);
    int rc = enter(OP_LIST_KEYS, err);
    if (rc == 0 && fake.block_list_keys) {
        rc = block_until_cancelled(ctx, err);
    }
    if (rc == 0) {
        size_t start = page_start(marker);
        size_t end =
            start + fake.page_size < fake.key_count ? start + fake.page_size : fake.key_count;
        out->keys = calloc(end - start + 1, sizeof *out->keys);
        for (size_t i = start; i < end; i++) {
            strcpy(out->keys[i - start].key_id, fake.keys[i].key_id);
            strcpy(out->keys[i - start].arn, fake.keys[i].arn);
        }
        out->count = end - start;
        out->truncated = end < fake.key_count || fake.repeat_marker;
        if (out->truncated) {
            snprintf(out->next_marker, sizeof out->next_marker, "%zu",
                     fake.repeat_marker ? 0 : end);
        }
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

int kms_describe_key(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     kms_key_metadata *out, aws_error *err)
{
    (void)client, (void)ctx;
    pthread_mutex_lock(&fake.lock);
    fake.describe_saw_alias_lock_held = owner_alias_lock_is_held();
    int rc = enter(OP_DESCRIBE, err);
    if (rc == 0) {
        kms_key_metadata *key = find_key(key_id);
        rc = key ? (*out = *key, 0) : not_found(err, key_id);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

int kms_update_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     const char *target_key_id, aws_error *err)
{
    (void)client;
    pthread_mutex_lock(&fake.lock);
    fake.update_cancellable = fake.update_cancellable || ctx->cancelled != NULL;
    fake.update_saw_alias_lock_held = owner_alias_lock_is_held();
    int rc = enter(OP_UPDATE, err);
    while (fake.block_update && !fake.update_released)
        pthread_cond_wait(&fake.changed, &fake.lock);
    kms_alias *alias = rc == 0 ? find_alias(alias_name) : NULL;
    if (rc == 0 && alias == NULL) {
        rc = not_found(err, alias_name);
    } else if (rc == 0) {
        snprintf(alias->target_key_id, sizeof alias->target_key_id, "%s", target_key_id);
        alias->last_updated_date = fake.clock_s;
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

int kms_delete_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     aws_error *err)
{
    (void)client, (void)ctx;
    pthread_mutex_lock(&fake.lock);
    int rc = enter(OP_DELETE, err);
    kms_alias *alias = rc == 0 ? find_alias(alias_name) : NULL;
    if (rc == 0 && alias == NULL) {
        rc = not_found(err, alias_name);
    } else if (rc == 0) {
        size_t index = (size_t)(alias - fake.aliases);
        memmove(alias, alias + 1, (fake.alias_count - index - 1) * sizeof *alias);
        fake.alias_count--;
        rc = answer(OP_DELETE, err);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

void kms_alias_page_clear(kms_alias_page *page)
{
    free(page->aliases);
    *page = (kms_alias_page){0};
}

void kms_key_page_clear(kms_key_page *page)
{
    free(page->keys);
    *page = (kms_key_page){0};
}

/* ---- the fake's tags (ListResourceTags, TagResource, GetResources) -------- */

static void set_tag(const char *key_ref, const char *key, const char *value)
{
    size_t index = (size_t)(find_key(key_ref) - fake.keys);
    for (size_t i = 0; i < fake.tag_count[index]; i++) {
        if (strcmp(fake.tags[index][i].key, key) == 0) {
            snprintf(fake.tags[index][i].value, sizeof fake.tags[index][i].value, "%s", value);
            return;
        }
    }
    fake_tag *tag = &fake.tags[index][fake.tag_count[index]++];
    snprintf(tag->key, sizeof tag->key, "%s", key);
    snprintf(tag->value, sizeof tag->value, "%s", value);
}

static const char *tag_of(const char *key_ref, const char *key)
{
    size_t index = (size_t)(find_key(key_ref) - fake.keys);
    for (size_t i = 0; i < fake.tag_count[index]; i++) {
        if (strcmp(fake.tags[index][i].key, key) == 0)
            return fake.tags[index][i].value;
    }
    return NULL;
}

/* A key tagged as tag-based discovery tags it. */
static void add_tagged_key(const char *id, const char *server, const char *active,
                           const char *last_update, double created)
{
    add_key(id, "SPIRE_SERVER_KEY/example_org/x509-CA-A", created);
    set_tag(id, "spire-server-td", TD);
    set_tag(id, "spire-server-id", server);
    set_tag(id, "spire-active", active);
    set_tag(id, "spire-key-id", "x509-CA-A");
    if (last_update != NULL)
        set_tag(id, "spire-last-update", last_update);
}

static void copy_tags(size_t index, aws_tag_set *out)
{
    out->count = fake.tag_count[index];
    out->items = calloc(out->count + 1, sizeof *out->items);
    for (size_t i = 0; i < out->count; i++) {
        out->items[i].key = strdup(fake.tags[index][i].key);
        out->items[i].value = strdup(fake.tags[index][i].value);
    }
}

void aws_tag_set_clear(aws_tag_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].key);
        free(set->items[i].value);
    }
    free(set->items);
    *set = (aws_tag_set){0};
}

const char *aws_tag_set_get(const aws_tag_set *set, const char *key)
{
    for (size_t i = 0; i < set->count; i++) {
        if (strcmp(set->items[i].key, key) == 0)
            return set->items[i].value;
    }
    return NULL;
}

void kms_tag_page_clear(kms_tag_page *page) { aws_tag_set_clear(&page->tags); }

int kms_list_resource_tags(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                           const char *marker, int limit, kms_tag_page *out, aws_error *err)
{
    (void)client, (void)ctx, (void)marker, (void)limit;
    pthread_mutex_lock(&fake.lock);
    int rc = enter(OP_LIST_TAGS, err);
    kms_key_metadata *key = rc == 0 ? find_key(key_id) : NULL;
    if (rc == 0 && key == NULL)
        rc = not_found(err, key_id);
    else if (rc == 0)
        copy_tags((size_t)(key - fake.keys), &out->tags);
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

int kms_tag_resource(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                     const kms_tag *tags, size_t tag_count, aws_error *err)
{
    (void)client, (void)ctx;
    pthread_mutex_lock(&fake.lock);
    int rc = enter(OP_TAG, err);
    kms_key_metadata *key = rc == 0 ? find_key(key_id) : NULL;
    if (rc == 0 && key == NULL) {
        rc = not_found(err, key_id);
    } else if (rc == 0 && strcmp(key->key_state, "PendingDeletion") == 0) {
        err->status = AWS_ERR_INVALID_STATE;
        rc = -1;
    } else if (rc == 0) {
        for (size_t i = 0; i < tag_count; i++)
            set_tag(key_id, tags[i].key, tags[i].value);
        rc = answer(OP_TAG, err);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

int kms_create_alias(kms_client *client, const aws_call_ctx *ctx, const char *alias_name,
                     const char *target_key_id, aws_error *err)
{
    (void)client, (void)ctx;
    pthread_mutex_lock(&fake.lock);
    int rc = enter(OP_CREATE_ALIAS, err);
    if (rc == 0) {
        const char *tail = strrchr(target_key_id, '/');
        add_alias(alias_name, tail != NULL ? tail + 1 : target_key_id, fake.clock_s);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

static bool matches_filters(size_t index, const tagging_get_resources_input *input)
{
    for (size_t f = 0; f < input->tag_filter_count; f++) {
        const tagging_tag_filter *filter = &input->tag_filters[f];
        const char *value = tag_of(fake.keys[index].key_id, filter->key);
        if (value == NULL || (filter->value_count > 0 && strcmp(value, filter->values[0]) != 0))
            return false;
    }
    return fake.tag_count[index] > 0;
}

int tagging_get_resources(kms_client *client, const aws_call_ctx *ctx,
                          const tagging_get_resources_input *input, tagging_resource_page *out,
                          aws_error *err)
{
    (void)client, (void)ctx;
    pthread_mutex_lock(&fake.lock);
    int rc = enter(OP_GET_RESOURCES, err);
    if (rc == 0) {
        size_t matching[MAX], count = 0;
        for (size_t i = 0; i < fake.key_count; i++) {
            if (matches_filters(i, input))
                matching[count++] = i;
        }
        size_t start = page_start(input->pagination_token);
        size_t end = start + fake.page_size < count ? start + fake.page_size : count;
        start = start < end ? start : end;
        out->resources = calloc(end - start + 1, sizeof *out->resources);
        for (size_t i = start; i < end; i++) {
            snprintf(out->resources[i - start].arn, sizeof out->resources[0].arn, "%s",
                     fake.keys[matching[i]].arn);
            copy_tags(matching[i], &out->resources[i - start].tags);
        }
        out->count = end - start;
        if (end < count || fake.repeat_marker)
            snprintf(out->next_token, sizeof out->next_token, "%zu", fake.repeat_marker ? 0 : end);
    }
    pthread_mutex_unlock(&fake.lock);
    return rc;
}

void tagging_resource_page_clear(tagging_resource_page *page)
{
    for (size_t i = 0; page->resources != NULL && i < page->count; i++)
        aws_tag_set_clear(&page->resources[i].tags);
    free(page->resources);
    *page = (tagging_resource_page){0};
}

bool deletion_queue_push(deletion_queue *queue, const char *key_id, const char *reason)
{
    assert_ptr_equal(queue, FAKE_QUEUE);
    assert_non_null(reason);
    pthread_mutex_lock(&fake.lock);
    snprintf(fake.pushed[fake.pushed_count++], sizeof fake.pushed[0], "%s", key_id);
    pthread_mutex_unlock(&fake.lock);
    return true;
}

static int own_aliases(void *ctx, fleet_alias **aliases, size_t *count)
{
    (void)ctx;
    *aliases = calloc(fake.own_count + 1, sizeof **aliases);
    for (size_t i = 0; i < fake.own_count; i++) {
        bool rotated = i == 0 && fake.rotated_to != NULL && fake.own_reads > 0;
        (*aliases)[i].alias_name = strdup(fake.own[i].alias_name);
        (*aliases)[i].key_id = strdup(rotated ? fake.rotated_to : fake.own[i].key_id);
        (*aliases)[i].tags = fake.own[i].tags;
    }
    fake.own_reads++;
    *count = fake.own_count;
    return 0;
}

static void alias_moved(void *ctx, const aws_call_ctx *call, const char *alias_name,
                        const char *new_key_id)
{
    (void)ctx;
    assert_non_null(call);
    snprintf(fake.moved_alias, sizeof fake.moved_alias, "%s", alias_name);
    snprintf(fake.moved_key, sizeof fake.moved_key, "%s", new_key_id);
}

static void add_own(const char *alias_name, const char *key_ref)
{
    fake.own[fake.own_count].alias_name = (char *)alias_name;
    fake.own[fake.own_count].key_id = (char *)key_ref;
    fake.own[fake.own_count].tags = KEY_TAGS_NONE;
    fake.own_count++;
}

static bool was_pushed(const char *key_id)
{
    for (size_t i = 0; i < fake.pushed_count; i++) {
        if (strcmp(fake.pushed[i], key_id) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- running one task ---------------------------------------------------- */

static fleet_options options_for_tests(void)
{
    return (fleet_options){
        .kms = FAKE_CLIENT,
        .deletions = FAKE_QUEUE,
        .trust_domain = TD,
        .server_id = ME,
        .own_aliases = own_aliases,
        .refresh_aliases_interval_ms = 6 * HOUR_MS,
        .dispose_aliases_interval_ms = 24 * HOUR_MS,
        .dispose_keys_interval_ms = 48 * HOUR_MS,
        .stale_alias_age_ms = 336 * HOUR_MS,
        .orphan_key_age_ms = 48 * HOUR_MS,
        .alias_moved = alias_moved,
    };
}

static atomic_bool never_cancelled = false;

static fleet_run_stats run(void (*task)(const fleet_run_env *, fleet_run_stats *), double now_s)
{
    fleet_options options = options_for_tests();
    options.alias_lock = &owner_alias_lock;
    aws_call_ctx call = {.cancelled = &never_cancelled};
    fleet_run_env env = {.options = &options, .call = &call, .now_s = now_s};
    fleet_run_stats stats = {.task = "test"};
    task(&env, &stats);
    return stats;
}

static fleet_run_stats run_dispose_keys(fleet_key_memo *memo, double now_s)
{
    fleet_options options = options_for_tests();
    aws_call_ctx call = {.cancelled = &never_cancelled};
    fleet_run_env env = {.options = &options, .call = &call, .now_s = now_s};
    fleet_run_stats stats = {.task = "dispose_keys"};
    fleet_run_dispose_keys(&env, memo, &stats);
    return stats;
}

#define ALIAS(server, key) "alias/SPIRE_SERVER/example_org/" server "/" key

/* ---- refresh aliases ----------------------------------------------------- */

static void test_refresh_bumps_aliases_still_on_our_key(void **state)
{
    (void)state;
    add_key("k-a", "SPIRE_SERVER_KEY/example_org/A", NOW_S - 3 * DAY_S);
    add_key("k-b", "SPIRE_SERVER_KEY/example_org/B", NOW_S - 3 * DAY_S);
    add_key("k-b2", "SPIRE_SERVER_KEY/example_org/B", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "A"), "k-a", NOW_S - 5 * DAY_S);
    add_alias(ALIAS(ME, "B"), "k-b2", NOW_S - DAY_S); /* a replica rotated B */
    add_own(ALIAS(ME, "A"), "arn:aws:kms:us-east-2:111122223333:key/k-a");
    add_own(ALIAS(ME, "B"), "k-b");
    add_own(ALIAS(ME, "gone"), "k-x");
    fake.clock_s = NOW_S;

    fleet_run_stats stats = run(fleet_run_refresh_aliases, NOW_S);

    assert_int_equal(fake.calls[OP_DESCRIBE], 3);
    assert_int_equal(fake.calls[OP_UPDATE], 1);
    assert_int_equal(stats.calls, 4);
    assert_int_equal(stats.refreshed, 1);
    assert_int_equal(stats.aliases_scanned, 3);
    assert_true(find_alias(ALIAS(ME, "A"))->last_updated_date == NOW_S);
    assert_string_equal(find_alias(ALIAS(ME, "A"))->target_key_id, "k-a");
    /* not reverted to our cached key, and reported */
    assert_string_equal(find_alias(ALIAS(ME, "B"))->target_key_id, "k-b2");
    assert_true(find_alias(ALIAS(ME, "B"))->last_updated_date == NOW_S - DAY_S);
    assert_string_equal(fake.moved_alias, ALIAS(ME, "B"));
    assert_string_equal(fake.moved_key, "k-b2");
    assert_int_equal(fake.calls[OP_LIST_ALIASES] + fake.calls[OP_LIST_KEYS], 0);
}

/* Our own GenerateKey rotated alias A after the run listed our aliases: the
 * refresh reads the cache again under the alias lock and bumps A on its new
 * key, instead of taking the rotation for a replica's and reporting it. */
static void test_refresh_follows_our_own_rotation_under_the_alias_lock(void **state)
{
    (void)state;
    add_key("k-a", "SPIRE_SERVER_KEY/example_org/A", NOW_S - 3 * DAY_S);
    add_key("k-a2", "SPIRE_SERVER_KEY/example_org/A", NOW_S - HOUR_S);
    add_alias(ALIAS(ME, "A"), "k-a2", NOW_S - HOUR_S);
    add_own(ALIAS(ME, "A"), "k-a");
    fake.rotated_to = "k-a2";

    fleet_run_stats stats = run(fleet_run_refresh_aliases, NOW_S);

    assert_true(fake.describe_saw_alias_lock_held);
    assert_false(owner_alias_lock_is_held());
    assert_int_equal(stats.refreshed, 1);
    assert_string_equal(find_alias(ALIAS(ME, "A"))->target_key_id, "k-a2");
    assert_true(find_alias(ALIAS(ME, "A"))->last_updated_date == NOW_S);
    assert_string_equal(fake.moved_alias, "");
}

static void test_refresh_goes_on_after_failures(void **state)
{
    (void)state;
    add_key("k-a", "SPIRE_SERVER_KEY/example_org/A", NOW_S - 3 * DAY_S);
    add_key("k-b", "SPIRE_SERVER_KEY/example_org/B", NOW_S - 3 * DAY_S);
    add_alias(ALIAS(ME, "A"), "k-a", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "B"), "k-b", NOW_S - DAY_S);
    add_own(ALIAS(ME, "A"), "k-a");
    add_own(ALIAS(ME, "B"), "k-b");
    fake.failures_left[OP_DESCRIBE] = 1;

    fleet_run_stats stats = run(fleet_run_refresh_aliases, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(stats.refreshed, 1);
    assert_true(find_alias(ALIAS(ME, "A"))->last_updated_date == NOW_S - DAY_S);
    assert_true(find_alias(ALIAS(ME, "B"))->last_updated_date == NOW_S);

    fake.failures_left[OP_UPDATE] = 1;
    fake.clock_s = NOW_S + 10;
    stats = run(fleet_run_refresh_aliases, NOW_S + 10);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(stats.refreshed, 1);
    assert_true(find_alias(ALIAS(ME, "B"))->last_updated_date == NOW_S + 10);
}

/* ---- dispose aliases ----------------------------------------------------- */

static void test_dispose_aliases_only_stale_aliases_of_other_servers(void **state)
{
    (void)state;
    double stale = NOW_S - 14 * DAY_S, fresh = NOW_S - (13 * DAY_S + 23 * HOUR_S);
    add_alias(ALIAS(ME, "mine"), "k-mine", NOW_S - 400 * DAY_S);
    add_alias(ALIAS(PEER, "stale"), "k-stale", stale);
    add_alias(ALIAS(PEER, "fresh"), "k-fresh", fresh);
    add_alias("alias/SPIRE_SERVER/example_org2/" PEER "/k", "k-td2", stale);
    add_alias("alias/SPIRE_SERVER/example_org_uk/" PEER "/k", "k-uk", stale);
    add_alias("alias/SPIRE_SERVER/other_org/" PEER "/k", "k-other", stale);
    add_alias("alias/aws/kms", "", stale);
    add_alias("alias/app", "k-app", stale);
    add_alias(ALIAS(PEER, "stale2"), "k-stale2", stale - DAY_S);

    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);

    assert_int_equal(fake.calls[OP_LIST_ALIASES], 5);     /* 9 aliases, pages of 2 */
    assert_int_equal(fake.calls[OP_LIST_KEY_ALIASES], 2); /* read again before each delete */
    assert_int_equal(fake.calls[OP_DELETE], 2);
    assert_int_equal(fake.calls[OP_DESCRIBE], 0);
    assert_int_equal(fake.calls[OP_LIST_TAGS], 2); /* the key's tags, before each delete */
    assert_int_equal(stats.calls, 11);
    assert_int_equal(stats.aliases_scanned, 9);
    assert_int_equal(stats.disposed, 2);
    assert_null(find_alias(ALIAS(PEER, "stale")));
    assert_null(find_alias(ALIAS(PEER, "stale2")));
    assert_int_equal(fake.alias_count, 7);
    assert_int_equal(fake.pushed_count, 2);
    assert_true(was_pushed("k-stale"));
    assert_true(was_pushed("k-stale2"));
}

static void test_dispose_aliases_keeps_key_another_alias_targets(void **state)
{
    (void)state;
    add_alias(ALIAS(PEER, "old"), "k-shared", NOW_S - 20 * DAY_S);
    add_alias("alias/app-uses-it-too", "k-shared", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "old2"), "k-two", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "old3"), "k-two", NOW_S - 20 * DAY_S);

    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);

    assert_int_equal(stats.disposed, 3);
    assert_non_null(find_alias("alias/app-uses-it-too"));
    assert_int_equal(fake.pushed_count, 1); /* k-two, once its last alias is gone */
    assert_true(was_pushed("k-two"));
}

static void test_dispose_aliases_survives_faults(void **state)
{
    (void)state;
    add_alias(ALIAS(PEER, "a"), "k-a", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "b"), "k-b", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "c"), "k-c", NOW_S - 20 * DAY_S);

    fake.failures_left[OP_LIST_ALIASES] = 1; /* the first page */
    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.calls, 1);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.alias_count, 3);

    /* a definite refusal: the alias stays, and so does its key */
    fake.failures_left[OP_DELETE] = 1;
    fake.fail_status[OP_DELETE] = AWS_ERR_ACCESS_DENIED;
    stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(stats.disposed, 2);
    assert_non_null(find_alias(ALIAS(PEER, "a"))); /* its delete was refused */
    assert_false(was_pushed("k-a"));               /* so its key stays */

    stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.failures, 0);
    assert_int_equal(stats.disposed, 1);
    assert_int_equal(fake.alias_count, 0);
    assert_true(was_pushed("k-a"));
}

/* DeleteAlias applied, its answer lost (a 5xx after retries, a timeout): the
 * alias may be gone, so its key is queued, and the deletion queue's own
 * check (KMS lists no alias for it) decides. A 5xx that was not applied
 * queues the key too, and the queue's check then finds the alias. */
static void test_dispose_aliases_queues_the_key_after_an_unknown_delete(void **state)
{
    (void)state;
    add_alias(ALIAS(PEER, "a"), "k-a", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "b"), "k-b", NOW_S - 20 * DAY_S);
    fake.applied_then_lost[OP_DELETE] = true;
    fake.failures_left[OP_DELETE] = 1;
    fake.fail_status[OP_DELETE] = AWS_ERR_TIMEOUT;

    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(stats.disposed, 1);
    assert_int_equal(fake.alias_count, 0);
    assert_true(was_pushed("k-a"));
    assert_true(was_pushed("k-b"));

    reset_fake(NULL);
    add_alias(ALIAS(PEER, "a"), "k-a", NOW_S - 20 * DAY_S);
    fake.failures_left[OP_DELETE] = 1; /* a 5xx, not applied */
    stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_non_null(find_alias(ALIAS(PEER, "a")));
    assert_true(was_pushed("k-a")); /* the queue's check will find the alias and keep the key */
}

/* The owner refreshed its alias after the run's listing: the read right
 * before DeleteAlias shows it fresh, and nothing is deleted. So too when it
 * moved to another key, or when KMS cannot be read then. */
static void test_dispose_aliases_reads_again_before_deleting(void **state)
{
    (void)state;
    add_alias(ALIAS(PEER, "woke"), "k-woke", NOW_S - 20 * DAY_S);
    fake.refreshed_before_recheck = ALIAS(PEER, "woke");
    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(fake.calls[OP_LIST_KEY_ALIASES], 1);
    assert_int_equal(fake.calls[OP_DELETE], 0);
    assert_int_equal(stats.disposed, 0);
    assert_int_equal(fake.pushed_count, 0);
    assert_non_null(find_alias(ALIAS(PEER, "woke")));

    reset_fake(NULL);
    add_alias(ALIAS(PEER, "a"), "k-a", NOW_S - 20 * DAY_S);
    fake.passes_left[OP_LIST_ALIASES] = 1;
    fake.failures_left[OP_LIST_KEY_ALIASES] = 1;
    stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DELETE], 0);
    assert_int_equal(fake.pushed_count, 0);
    assert_non_null(find_alias(ALIAS(PEER, "a")));
}

/* A listing KMS never completes (the same NextMarker again) is cut: neither
 * sweep judges anything from it. */
static void test_sweeps_judge_nothing_from_an_endless_listing(void **state)
{
    (void)state;
    add_alias(ALIAS(PEER, "a"), "k-a", NOW_S - 20 * DAY_S);
    add_key("k-orphan", "SPIRE_SERVER_KEY/example_org/B", NOW_S - 30 * DAY_S);
    fake.repeat_marker = true;

    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(fake.calls[OP_LIST_ALIASES], 2); /* the marker comes back once */
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DELETE] + fake.calls[OP_LIST_KEY_ALIASES], 0);

    stats = run_dispose_keys(NULL, NOW_S);
    assert_int_equal(fake.calls[OP_LIST_KEYS], 2);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DESCRIBE], 0);
    assert_int_equal(fake.pushed_count, 0);
}

static void test_dispose_aliases_partial_listing_disposes_nothing(void **state)
{
    (void)state;
    add_alias(ALIAS(PEER, "a"), "k-a", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "b"), "k-b", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(PEER, "c"), "k-c", NOW_S - 20 * DAY_S);
    fake.passes_left[OP_LIST_ALIASES] = 1; /* the first page comes, the second fails */
    fake.failures_left[OP_LIST_ALIASES] = 1;

    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.calls, 2);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DELETE], 0);
    assert_int_equal(fake.alias_count, 3);

    stats = run(fleet_run_dispose_aliases, NOW_S); /* the next period */
    assert_int_equal(stats.calls, 2 + 3 + 3 + 3);
    assert_int_equal(fake.alias_count, 0);
    assert_int_equal(fake.pushed_count, 3);
}

/* ---- dispose keys -------------------------------------------------------- */

static void add_key_fixture(void)
{
    double old = NOW_S - 48 * HOUR_S, young = NOW_S - 47 * HOUR_S;
    add_key("k-live", "SPIRE_SERVER_KEY/example_org/A", NOW_S - 30 * DAY_S);
    add_alias(ALIAS(ME, "A"), "k-live", NOW_S);
    add_key("k-orphan", "SPIRE_SERVER_KEY/example_org/B", old);
    add_key("k-spec", "SPIRE_SERVER/example_org", old);
    add_key("k-young", "SPIRE_SERVER_KEY/example_org/C", young);
    add_key("k-td2", "SPIRE_SERVER_KEY/example_org2/B", old);
    add_key("k-uk", "SPIRE_SERVER/example_org_uk", old);
    kms_key_metadata *disabled = add_key("k-disabled", "SPIRE_SERVER_KEY/example_org/D", old);
    disabled->enabled = false;
    strcpy(disabled->key_state, "PendingDeletion");
    kms_key_metadata *aws = add_key("k-aws", "SPIRE_SERVER_KEY/example_org/E", old);
    strcpy(aws->key_manager, "AWS");
    add_key("k-app", "application key", old);
    add_alias("alias/app", "k-app", NOW_S);
}

static void test_dispose_keys_queues_only_orphans_of_our_trust_domain(void **state)
{
    (void)state;
    add_key_fixture();

    fleet_run_stats stats = run_dispose_keys(NULL, NOW_S);

    /* 9 keys and 2 aliases in pages of 2; every unaliased key described once */
    assert_int_equal(fake.calls[OP_LIST_KEYS], 5);
    assert_int_equal(fake.calls[OP_LIST_ALIASES], 1);
    assert_int_equal(fake.calls[OP_DESCRIBE], 7);
    assert_int_equal(stats.calls, 13);
    assert_int_equal(stats.keys_scanned, 9);
    assert_int_equal(stats.disposed, 2);
    assert_int_equal(fake.pushed_count, 2);
    assert_true(was_pushed("k-orphan"));
    assert_true(was_pushed("k-spec"));
    assert_int_equal(fake.calls[OP_DELETE] + fake.calls[OP_UPDATE], 0);
}

static void test_dispose_keys_memo_skips_keys_whose_answer_cannot_change(void **state)
{
    (void)state;
    add_key_fixture();
    fleet_key_memo *memo = fleet_key_memo_new();

    run_dispose_keys(memo, NOW_S);
    assert_int_equal(fake.calls[OP_DESCRIBE], 7);

    /* second run: foreign, AWS-managed and young keys are not described again;
     * the two queued orphans (still enabled here) and the disabled key are */
    memset(fake.calls, 0, sizeof fake.calls);
    fleet_run_stats stats = run_dispose_keys(memo, NOW_S + 60);
    assert_int_equal(fake.calls[OP_DESCRIBE], 3);
    assert_int_equal(stats.disposed, 2);
    assert_false(was_pushed("k-young"));

    /* an hour later the young key is old enough: described again and queued */
    memset(fake.calls, 0, sizeof fake.calls);
    stats = run_dispose_keys(memo, NOW_S + HOUR_S);
    assert_int_equal(fake.calls[OP_DESCRIBE], 4);
    assert_int_equal(stats.disposed, 3);
    assert_true(was_pushed("k-young"));
    fleet_key_memo_free(memo);
}

static void test_dispose_keys_listing_failures_dispose_nothing(void **state)
{
    (void)state;
    add_key_fixture();
    fake.failures_left[OP_LIST_KEYS] = 1;
    fleet_run_stats stats = run_dispose_keys(NULL, NOW_S);
    assert_int_equal(stats.calls, 1);
    assert_int_equal(fake.pushed_count, 0);

    /* aliases unknown: every key would look unaliased, so nothing is judged */
    fake.failures_left[OP_LIST_ALIASES] = 1;
    stats = run_dispose_keys(NULL, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DESCRIBE], 0);
    assert_int_equal(fake.pushed_count, 0);

    fake.failures_left[OP_DESCRIBE] = 1; /* k-orphan's describe */
    stats = run_dispose_keys(NULL, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(stats.disposed, 1);
    assert_true(was_pushed("k-spec"));

    stats = run_dispose_keys(NULL, NOW_S);
    assert_int_equal(stats.failures, 0);
    assert_true(was_pushed("k-orphan"));
}

/* ---- tag-based key discovery --------------------------------------------- */

#define NOW_TEXT   "1800000000"
#define FRESH_TEXT "1799000000" /* 11.6 days before NOW_S */
#define STALE_TEXT "1798790400" /* 14 days before NOW_S, to the second */

static fleet_run_stats run_tag_mode(void (*task)(const fleet_run_env *, fleet_run_stats *),
                                    bool tag_mode, fleet_learnt *learnt)
{
    fleet_options options = options_for_tests();
    options.alias_lock = &owner_alias_lock;
    options.tag_mode = tag_mode;
    aws_call_ctx call = {.cancelled = &never_cancelled};
    fleet_run_env env = {.options = &options, .call = &call, .now_s = NOW_S, .learnt = learnt};
    fleet_run_stats stats = {.task = "test"};
    task(&env, &stats);
    return stats;
}

/* Tag mode: every key we use gets spire-last-update = now and spire-active =
 * "true" (a new key whose activation failed is marked now); an alias of ours
 * that is gone is created again on the key our tags keep. */
static void test_refresh_keeps_our_keys_active_in_tag_mode(void **state)
{
    (void)state;
    add_tagged_key("k-a", ME, "true", STALE_TEXT, NOW_S - 20 * DAY_S);
    add_tagged_key("k-b", ME, "false", NOW_TEXT, NOW_S - HOUR_S);
    add_tagged_key("k-c", ME, "true", FRESH_TEXT, NOW_S - 20 * DAY_S);
    add_alias(ALIAS(ME, "A"), "k-a", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "B"), "k-b", NOW_S - DAY_S);
    add_own(ALIAS(ME, "A"), "k-a");
    add_own(ALIAS(ME, "B"), "k-b");
    add_own(ALIAS(ME, "C"), "k-c"); /* its alias was deleted */

    fleet_run_stats stats = run_tag_mode(fleet_run_refresh_aliases, true, NULL);

    assert_int_equal(stats.tagged, 3);
    assert_int_equal(stats.refreshed, 3);
    assert_int_equal(stats.failures, 1); /* C's DescribeKey: NotFound */
    assert_int_equal(fake.calls[OP_TAG], 3);
    assert_int_equal(fake.calls[OP_LIST_TAGS], 0);
    for (const char *const *key = (const char *const[]){"k-a", "k-b", "k-c", NULL}; *key; key++) {
        assert_string_equal(tag_of(*key, "spire-last-update"), NOW_TEXT);
        assert_string_equal(tag_of(*key, "spire-active"), "true");
    }
    assert_non_null(find_alias(ALIAS(ME, "C")));
    assert_string_equal(find_alias(ALIAS(ME, "C"))->target_key_id, "k-c");
}

/* Alias mode: spire-last-update is refreshed on keys of ours that carry
 * spire-* tags (and only that tag); a key not known yet is read once and the
 * owner told; untagged keys cost nothing. A denied ListResourceTags is noted
 * and not asked again. */
static void test_refresh_keeps_inherited_tags_fresh_in_alias_mode(void **state)
{
    (void)state;
    add_tagged_key("k-a", ME, "true", STALE_TEXT, NOW_S - 20 * DAY_S);
    add_tagged_key("k-b", ME, "true", STALE_TEXT, NOW_S - 20 * DAY_S);
    add_key("k-c", "SPIRE_SERVER_KEY/example_org/C", NOW_S - 20 * DAY_S);
    add_key("k-d", "SPIRE_SERVER_KEY/example_org/D", NOW_S - 20 * DAY_S);
    add_alias(ALIAS(ME, "A"), "k-a", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "B"), "k-b", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "C"), "k-c", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "D"), "k-d", NOW_S - DAY_S);
    add_own(ALIAS(ME, "A"), "k-a");
    fake.own[0].tags = KEY_TAGS_SPIRE;
    add_own(ALIAS(ME, "B"), "k-b");
    fake.own[1].tags = KEY_TAGS_UNKNOWN;
    add_own(ALIAS(ME, "C"), "k-c");
    add_own(ALIAS(ME, "D"), "k-d");
    fake.own[3].tags = KEY_TAGS_UNKNOWN;

    fleet_learnt learnt = {0};
    fleet_run_stats stats = run_tag_mode(fleet_run_refresh_aliases, false, &learnt);

    assert_int_equal(stats.refreshed, 4);
    assert_int_equal(stats.tagged, 2);
    assert_int_equal(fake.calls[OP_LIST_TAGS], 2); /* B and D, not known yet */
    assert_string_equal(tag_of("k-a", "spire-last-update"), NOW_TEXT);
    assert_string_equal(tag_of("k-b", "spire-last-update"), NOW_TEXT);
    assert_null(tag_of("k-d", "spire-last-update"));
    assert_false(learnt.list_tags_denied);

    memset(fake.calls, 0, sizeof fake.calls);
    fake.failures_left[OP_LIST_TAGS] = 5;
    fake.fail_status[OP_LIST_TAGS] = AWS_ERR_ACCESS_DENIED;
    stats = run_tag_mode(fleet_run_refresh_aliases, false, &learnt);
    assert_int_equal(fake.calls[OP_LIST_TAGS], 1); /* denied once, then not asked again */
    assert_true(learnt.list_tags_denied);
    assert_int_equal(stats.tagged, 1); /* A, known to carry them */
}

/* Before DeleteAlias: the key's tags are read; a key another server keeps
 * alive by its tags (or whose spire-last-update is unreadable, or whose tags
 * cannot be read) keeps its alias; stale tags do not. */
static void test_dispose_aliases_spares_keys_their_tags_keep_alive(void **state)
{
    (void)state;
    double stale = NOW_S - 20 * DAY_S;
    add_tagged_key("k-live", PEER, "true", FRESH_TEXT, stale);
    add_tagged_key("k-dead", PEER, "true", STALE_TEXT, stale);
    add_tagged_key("k-bad", PEER, "true", "yesterday", stale);
    add_tagged_key("k-undated-young", PEER, "true", NULL, NOW_S - DAY_S);
    add_tagged_key("k-inactive", PEER, "false", FRESH_TEXT, stale);
    add_alias(ALIAS(PEER, "live"), "k-live", stale);
    add_alias(ALIAS(PEER, "dead"), "k-dead", stale);
    add_alias(ALIAS(PEER, "bad"), "k-bad", stale);
    add_alias(ALIAS(PEER, "young"), "k-undated-young", stale);
    add_alias(ALIAS(PEER, "inactive"), "k-inactive", stale);

    fleet_run_stats stats = run(fleet_run_dispose_aliases, NOW_S);

    assert_int_equal(stats.disposed, 2);
    assert_int_equal(fake.pushed_count, 2);
    assert_true(was_pushed("k-dead"));
    assert_true(was_pushed("k-inactive"));
    assert_non_null(find_alias(ALIAS(PEER, "live")));
    assert_non_null(find_alias(ALIAS(PEER, "bad")));
    assert_non_null(find_alias(ALIAS(PEER, "young")));
    assert_int_equal(fake.calls[OP_DESCRIBE], 1); /* the undated key's creation date */

    reset_fake(NULL);
    add_tagged_key("k-dead", PEER, "true", STALE_TEXT, stale);
    add_alias(ALIAS(PEER, "dead"), "k-dead", stale);
    fake.failures_left[OP_LIST_TAGS] = 1; /* tags unreadable: the alias stays */
    stats = run(fleet_run_dispose_aliases, NOW_S);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DELETE], 0);
    assert_non_null(find_alias(ALIAS(PEER, "dead")));

    /* alias mode, ListResourceTags denied: the aliases alone decide (noted) */
    fake.failures_left[OP_LIST_TAGS] = 1;
    fake.fail_status[OP_LIST_TAGS] = AWS_ERR_ACCESS_DENIED;
    fleet_learnt learnt = {0};
    stats = run_tag_mode(fleet_run_dispose_aliases, false, &learnt);
    assert_true(learnt.list_tags_denied);
    assert_null(find_alias(ALIAS(PEER, "dead")));
    assert_true(was_pushed("k-dead"));

    /* tag mode: denied means unreadable, and the alias stays */
    reset_fake(NULL);
    add_tagged_key("k-dead", PEER, "true", STALE_TEXT, stale);
    add_alias(ALIAS(PEER, "dead"), "k-dead", stale);
    fake.failures_left[OP_LIST_TAGS] = 1;
    fake.fail_status[OP_LIST_TAGS] = AWS_ERR_ACCESS_DENIED;
    learnt = (fleet_learnt){0};
    run_tag_mode(fleet_run_dispose_aliases, true, &learnt);
    assert_non_null(find_alias(ALIAS(PEER, "dead")));
    assert_int_equal(fake.pushed_count, 0);
}

static void add_sweep_fixture(void)
{
    double old = NOW_S - 20 * DAY_S;
    add_tagged_key("k-stale", PEER, "true", STALE_TEXT, old);
    add_tagged_key("k-fresh", PEER, "true", FRESH_TEXT, old);
    add_tagged_key("k-undated-old", PEER, "true", NULL, NOW_S - 14 * DAY_S);
    add_tagged_key("k-undated-young", PEER, "true", NULL, NOW_S - 13 * DAY_S);
    add_tagged_key("k-malformed", PEER, "true", "2026-01-01", old);
    add_tagged_key("k-own", ME, "true", STALE_TEXT, old);
    add_tagged_key("k-fresh-alias", PEER, "true", STALE_TEXT, old);
    add_alias(ALIAS(PEER, "rolled-back"), "k-fresh-alias", NOW_S - DAY_S);
    add_tagged_key("k-stale-alias", PEER, "true", STALE_TEXT, old);
    add_alias(ALIAS(PEER, "dead"), "k-stale-alias", old);
    kms_key_metadata *pending = NULL;
    add_tagged_key("k-pending", PEER, "true", STALE_TEXT, old);
    pending = find_key("k-pending");
    strcpy(pending->key_state, "PendingDeletion");
    pending->enabled = false;
    add_tagged_key("k-td2", PEER, "true", STALE_TEXT, old);
    set_tag("k-td2", "spire-server-td", "example.org2");
    add_tagged_key("k-uk", PEER, "true", STALE_TEXT, old);
    set_tag("k-uk", "spire-server-td", "example.org.uk");
    add_tagged_key("k-inactive-old", PEER, "false", STALE_TEXT, NOW_S - 48 * HOUR_S);
    add_tagged_key("k-inactive-young", ME, "false", NOW_TEXT, NOW_S - 47 * HOUR_S);
    add_tagged_key("k-inactive-pending", PEER, "false", STALE_TEXT, old);
    pending = find_key("k-inactive-pending");
    strcpy(pending->key_state, "PendingDeletion");
    pending->enabled = false;
    add_tagged_key("k-inactive-aliased", ME, "false", NOW_TEXT, old);
    add_alias(ALIAS(ME, "x509-CA-A"), "k-inactive-aliased", NOW_S);
}

/* The tag sweep's cases: stale and undated-old keys of other servers queued;
 * fresh, undated-young, malformed, own, pending and aliased keys kept; other
 * trust domains never seen; inactive keys not pending deletion, unaliased and
 * old enough queued (healing). */
static void test_tag_sweep_queues_only_dead_servers_keys(void **state)
{
    (void)state;
    add_sweep_fixture();

    fleet_run_stats stats = run_tag_mode(fleet_run_dispose_keys_via_tags, true, NULL);

    assert_int_equal(stats.failures, 0);
    assert_int_equal(fake.pushed_count, 3);
    assert_true(was_pushed("arn:aws:kms:us-east-2:111122223333:key/k-stale"));
    assert_true(was_pushed("arn:aws:kms:us-east-2:111122223333:key/k-undated-old"));
    assert_true(was_pushed("arn:aws:kms:us-east-2:111122223333:key/k-inactive-old"));
    assert_int_equal(stats.disposed, 3);
    /* 9 active keys in our trust domain (pages of 2) and 4 inactive ones */
    assert_int_equal(fake.calls[OP_GET_RESOURCES], 5 + 2);
    assert_int_equal(stats.keys_scanned, 9 + 4);
    /* described: stale, undated x2, fresh-alias, stale-alias, pending; 4 inactive */
    assert_int_equal(fake.calls[OP_DESCRIBE], 6 + 4);
    /* aliases read: stale, undated-old, fresh-alias, stale-alias; inactive old, aliased */
    assert_int_equal(fake.calls[OP_LIST_KEY_ALIASES], 4 + 2);
    assert_int_equal(fake.calls[OP_TAG] + fake.calls[OP_DELETE] + fake.calls[OP_UPDATE], 0);
    assert_int_equal(stats.calls, 7 + 10 + 6);
}

static void test_tag_sweep_judges_nothing_from_a_failed_listing(void **state)
{
    (void)state;
    add_sweep_fixture();
    fake.failures_left[OP_GET_RESOURCES] = 1;
    fake.fail_status[OP_GET_RESOURCES] = AWS_ERR_ACCESS_DENIED;
    fleet_run_stats stats = run_tag_mode(fleet_run_dispose_keys_via_tags, true, NULL);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.calls[OP_DESCRIBE], 0);
    assert_int_equal(fake.pushed_count, 0);

    fake.passes_left[OP_GET_RESOURCES] = 2; /* the second page comes, the third fails */
    fake.failures_left[OP_GET_RESOURCES] = 1;
    stats = run_tag_mode(fleet_run_dispose_keys_via_tags, true, NULL);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.pushed_count, 0);

    fake.repeat_marker = true; /* a token KMS gave before: cut, judged nothing */
    stats = run_tag_mode(fleet_run_dispose_keys_via_tags, true, NULL);
    assert_int_equal(stats.failures, 1);
    assert_int_equal(fake.pushed_count, 0);
    fake.repeat_marker = false;

    fake.failures_left[OP_LIST_KEY_ALIASES] = 1; /* k-stale's aliases unreadable */
    stats = run_tag_mode(fleet_run_dispose_keys_via_tags, true, NULL);
    assert_int_equal(stats.failures, 1);
    assert_false(was_pushed("arn:aws:kms:us-east-2:111122223333:key/k-stale"));
    assert_true(was_pushed("arn:aws:kms:us-east-2:111122223333:key/k-undated-old"));
}

/* ---- the scheduler ------------------------------------------------------- */

static bool wait_for_calls(op operation, unsigned count, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&fake.lock);
    int rc = 0;
    while (fake.calls[operation] < count && rc == 0) {
        rc = pthread_cond_timedwait(&fake.changed, &fake.lock, &deadline);
    }
    bool reached = fake.calls[operation] >= count;
    pthread_mutex_unlock(&fake.lock);
    return reached;
}

static unsigned calls_of(op operation)
{
    pthread_mutex_lock(&fake.lock);
    unsigned count = fake.calls[operation];
    pthread_mutex_unlock(&fake.lock);
    return count;
}

static void test_each_task_runs_on_its_own_period(void **state)
{
    (void)state;
    add_key("k-a", "SPIRE_SERVER_KEY/example_org/A", NOW_S);
    add_alias(ALIAS(ME, "A"), "k-a", NOW_S);
    add_own(ALIAS(ME, "A"), "k-a");
    fleet_options options = options_for_tests();
    options.refresh_aliases_interval_ms = 20;
    options.dispose_aliases_interval_ms = HOUR_MS;
    options.dispose_keys_interval_ms = HOUR_MS;
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    assert_true(wait_for_calls(OP_UPDATE, 3, 5000));
    fleet_stop(tasks);
    assert_int_equal(calls_of(OP_LIST_ALIASES), 0);
    assert_int_equal(calls_of(OP_LIST_KEYS), 0);
    assert_int_equal(calls_of(OP_DESCRIBE), calls_of(OP_UPDATE));

    memset(fake.calls, 0, sizeof fake.calls);
    options.refresh_aliases_interval_ms = HOUR_MS;
    options.dispose_keys_interval_ms = 20;
    tasks = fleet_start(&options);
    assert_true(wait_for_calls(OP_LIST_KEYS, 3, 5000));
    fleet_stop(tasks);
    assert_int_equal(calls_of(OP_UPDATE), 0);
    /* one ListAliases per dispose-keys run (a finished run or one cut short) */
    assert_in_range(calls_of(OP_LIST_ALIASES), calls_of(OP_LIST_KEYS) - 1, calls_of(OP_LIST_KEYS));

    memset(fake.calls, 0, sizeof fake.calls);
    options.dispose_keys_interval_ms = HOUR_MS;
    options.dispose_aliases_interval_ms = 20;
    tasks = fleet_start(&options);
    assert_true(wait_for_calls(OP_LIST_ALIASES, 3, 5000));
    fleet_stop(tasks);
    assert_int_equal(calls_of(OP_LIST_KEYS) + calls_of(OP_UPDATE), 0);
}

/* Tag mode: dispose keys is the tag sweep (GetResources), never ListKeys. */
static void test_tag_mode_runs_the_tag_sweep_instead_of_the_orphan_sweep(void **state)
{
    (void)state;
    add_key_fixture();
    fleet_options options = options_for_tests();
    options.tag_mode = true;
    options.refresh_aliases_interval_ms = HOUR_MS;
    options.dispose_aliases_interval_ms = HOUR_MS;
    options.dispose_keys_interval_ms = 20;
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    assert_true(wait_for_calls(OP_GET_RESOURCES, 4, 5000));
    fleet_stop(tasks);
    assert_int_equal(calls_of(OP_LIST_KEYS), 0);
}

static void test_first_run_waits_one_period(void **state)
{
    (void)state;
    add_own(ALIAS(ME, "A"), "k-a");
    fleet_options options = options_for_tests();
    options.refresh_aliases_interval_ms = HOUR_MS;
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    assert_false(wait_for_calls(OP_DESCRIBE, 1, 100));
    fleet_stop(tasks);
    assert_int_equal(calls_of(OP_DESCRIBE) + calls_of(OP_LIST_ALIASES), 0);
}

static void test_stop_cuts_a_running_task_short(void **state)
{
    (void)state;
    add_key_fixture();
    fake.block_list_keys = true;
    fleet_options options = options_for_tests();
    options.dispose_keys_interval_ms = 10;
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    assert_true(wait_for_calls(OP_LIST_KEYS, 1, 5000));

    int64_t started = clock_monotonic_ms();
    fleet_stop(tasks);
    int64_t took = clock_monotonic_ms() - started;

    assert_true(took < 1000);
    assert_true(fake.saw_cancellation);
    assert_int_equal(calls_of(OP_LIST_KEYS), 1); /* no retry, no next page */
    assert_int_equal(calls_of(OP_LIST_ALIASES) + calls_of(OP_DESCRIBE), 0);
}

static void test_stop_while_idle_is_prompt(void **state)
{
    (void)state;
    fleet_options options = options_for_tests();
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    int64_t started = clock_monotonic_ms();
    fleet_stop(tasks);
    assert_true(clock_monotonic_ms() - started < 500);
    fleet_stop(NULL);
}

static void *stop_fleet(void *tasks)
{
    fleet_stop(tasks);
    return NULL;
}

/* Stop while the refresh's UpdateAlias is in flight: the write is not
 * abandoned (it carries no stop flag: KMS could apply a write we gave up on
 * after the alias lock is released and a rotation moved the alias), and the
 * owner's alias lock is held until it returns. */
static void test_stop_never_abandons_a_refresh_write(void **state)
{
    (void)state;
    add_key("k-a", "SPIRE_SERVER_KEY/example_org/A", NOW_S - DAY_S);
    add_alias(ALIAS(ME, "A"), "k-a", NOW_S - DAY_S);
    add_own(ALIAS(ME, "A"), "k-a");
    fake.block_update = true;
    fleet_options options = options_for_tests();
    options.alias_lock = &owner_alias_lock;
    options.refresh_aliases_interval_ms = 10;
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    assert_true(wait_for_calls(OP_UPDATE, 1, 5000));
    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stop_fleet, tasks), 0);

    pthread_mutex_lock(&fake.lock);
    assert_true(fake.update_saw_alias_lock_held);
    assert_false(fake.update_cancellable);
    fake.update_released = true;
    pthread_cond_broadcast(&fake.changed);
    pthread_mutex_unlock(&fake.lock);
    pthread_join(stopper, NULL);

    assert_false(owner_alias_lock_is_held());
    assert_true(find_alias(ALIAS(ME, "A"))->last_updated_date == NOW_S);
}

/* ---- KMS's dates on KMS's clock ------------------------------------------- */

static void test_kms_now_is_the_skew_corrected_clock(void **state)
{
    (void)state;
    aws_clock_set_offset(20 * (int64_t)DAY_S);
    double host = (double)time(NULL);
    double kms = fleet_kms_now_s();
    assert_true(kms - host >= 20 * DAY_S - 1 && kms - host <= 20 * DAY_S + 1);
    aws_clock_set_offset(0);
}

/* A peer's alias and an unaliased key of ours, dated on KMS's clock (kms_now:
 * the host's clock plus the offset the AWS client learned from KMS's Date). */
static void add_dated_fixture(double kms_now, double alias_age_s, double key_age_s)
{
    add_alias(ALIAS(PEER, "x509-CA-A"), "k-peer", kms_now - alias_age_s);
    add_key("k-peer", "SPIRE_SERVER_KEY/example_org/x509-CA-A", kms_now - 30 * DAY_S);
    add_key("k-orphan", "SPIRE_SERVER_KEY/example_org/JWT-Signer-A", kms_now - key_age_s);
}

static fleet *start_sweeps(void)
{
    fleet_options options = options_for_tests();
    options.refresh_aliases_interval_ms = HOUR_MS;
    options.dispose_aliases_interval_ms = 10;
    options.dispose_keys_interval_ms = 10;
    fleet *tasks = fleet_start(&options);
    assert_non_null(tasks);
    return tasks;
}

/* KMS's clock 20 days ahead of the host's: an alias 15 days old and a key 3
 * days old on KMS's clock lie in the host's future, yet are stale / an
 * orphan. */
static void test_sweeps_age_kms_dates_on_kms_clock_ahead_of_the_host(void **state)
{
    (void)state;
    int64_t offset = 20 * (int64_t)DAY_S;
    aws_clock_set_offset(offset);
    add_dated_fixture((double)time(NULL) + (double)offset, 15 * DAY_S, 3 * DAY_S);

    fleet *tasks = start_sweeps();
    assert_true(wait_for_calls(OP_DELETE, 1, 5000));
    assert_true(wait_for_calls(OP_LIST_KEYS, 2, 5000));
    fleet_stop(tasks);

    assert_null(find_alias(ALIAS(PEER, "x509-CA-A")));
    assert_true(was_pushed("k-peer"));
    assert_true(was_pushed("k-orphan"));
}

/* The host's clock 20 days fast (KMS's 20 days behind it): an alias 1 day
 * old and a key 1 hour old on KMS's clock look 21 days old to the host, and
 * are kept. */
static void test_sweeps_keep_young_kms_dates_when_the_host_clock_is_fast(void **state)
{
    (void)state;
    int64_t offset = -20 * (int64_t)DAY_S;
    aws_clock_set_offset(offset);
    add_dated_fixture((double)time(NULL) + (double)offset, DAY_S, HOUR_S);

    fleet *tasks = start_sweeps();
    assert_true(wait_for_calls(OP_LIST_ALIASES, 4, 5000));
    assert_true(wait_for_calls(OP_LIST_KEYS, 2, 5000));
    fleet_stop(tasks);

    assert_int_equal(calls_of(OP_DELETE), 0);
    assert_non_null(find_alias(ALIAS(PEER, "x509-CA-A")));
    assert_int_equal(fake.pushed_count, 0);
    assert_true(calls_of(OP_DESCRIBE) >= 1); /* the unaliased key was judged */
}

static void test_start_refuses_incomplete_options(void **state)
{
    (void)state;
    fleet_options options = options_for_tests();
    options.own_aliases = NULL;
    assert_null(fleet_start(&options));
    options = options_for_tests();
    options.server_id = "";
    assert_null(fleet_start(&options));
    assert_null(fleet_start(NULL));
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_refresh_bumps_aliases_still_on_our_key, reset_fake),
        cmocka_unit_test_setup(test_refresh_goes_on_after_failures, reset_fake),
        cmocka_unit_test_setup(test_refresh_follows_our_own_rotation_under_the_alias_lock,
                               reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_only_stale_aliases_of_other_servers,
                               reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_keeps_key_another_alias_targets, reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_survives_faults, reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_partial_listing_disposes_nothing, reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_queues_the_key_after_an_unknown_delete,
                               reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_reads_again_before_deleting, reset_fake),
        cmocka_unit_test_setup(test_sweeps_judge_nothing_from_an_endless_listing, reset_fake),
        cmocka_unit_test_setup(test_refresh_keeps_our_keys_active_in_tag_mode, reset_fake),
        cmocka_unit_test_setup(test_refresh_keeps_inherited_tags_fresh_in_alias_mode, reset_fake),
        cmocka_unit_test_setup(test_dispose_aliases_spares_keys_their_tags_keep_alive, reset_fake),
        cmocka_unit_test_setup(test_tag_sweep_queues_only_dead_servers_keys, reset_fake),
        cmocka_unit_test_setup(test_tag_sweep_judges_nothing_from_a_failed_listing, reset_fake),
        cmocka_unit_test_setup(test_dispose_keys_queues_only_orphans_of_our_trust_domain,
                               reset_fake),
        cmocka_unit_test_setup(test_dispose_keys_memo_skips_keys_whose_answer_cannot_change,
                               reset_fake),
        cmocka_unit_test_setup(test_dispose_keys_listing_failures_dispose_nothing, reset_fake),
        cmocka_unit_test_setup(test_each_task_runs_on_its_own_period, reset_fake),
        cmocka_unit_test_setup(test_tag_mode_runs_the_tag_sweep_instead_of_the_orphan_sweep,
                               reset_fake),
        cmocka_unit_test_setup(test_first_run_waits_one_period, reset_fake),
        cmocka_unit_test_setup(test_stop_cuts_a_running_task_short, reset_fake),
        cmocka_unit_test_setup(test_stop_while_idle_is_prompt, reset_fake),
        cmocka_unit_test_setup(test_stop_never_abandons_a_refresh_write, reset_fake),
        cmocka_unit_test_setup(test_start_refuses_incomplete_options, reset_fake),
        cmocka_unit_test_setup(test_kms_now_is_the_skew_corrected_clock, reset_fake),
        cmocka_unit_test_setup(test_sweeps_age_kms_dates_on_kms_clock_ahead_of_the_host,
                               reset_fake),
        cmocka_unit_test_setup(test_sweeps_keep_young_kms_dates_when_the_host_clock_is_fast,
                               reset_fake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

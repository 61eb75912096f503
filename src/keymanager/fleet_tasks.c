/* One run of each fleet task (refresh aliases and tags, dispose aliases,
 * dispose keys; tag mode's dispose keys is fleet_tag_sweep.c) against KMS,
 * counting the calls it makes. A failed call is logged and the
 * run goes on with the next item, or ends when a listing failed or could not
 * be completed (listing.h); the next period retries. Every loop stops early
 * once the stop flag is up. What may be deleted: deletion_queue.h. */
#include "common/clock.h"
#include "keymanager/fleet_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "keymanager/kms_truth.h"
#include "keymanager/listing.h"
#include "keymanager/naming.h"
#include "keymanager/tag_mode.h"

#define MODULE                   "fleet"
#define ALIAS_PAGE_LIMIT         100  /* ListAliases maximum */
#define KEY_PAGE_LIMIT           1000 /* ListKeys maximum */
#define DELETION_REASON_MAX      512
#define REFRESH_WRITE_TIMEOUT_MS 10000

/* ---- shared helpers ------------------------------------------------------ */

bool fleet_stopping(const fleet_run_env *env)
{
    return env->call->cancelled != NULL && atomic_load(env->call->cancelled);
}

static bool stopping(const fleet_run_env *env) { return fleet_stopping(env); }

int fleet_counted_calls(fleet_run_stats *stats, unsigned calls, int rc, const char *operation,
                        const char *subject, const aws_error *err)
{
    stats->calls += calls;
    if (rc != 0) {
        stats->failures++;
        if (err->status != AWS_ERR_CANCELLED) {
            log_write(LOG_WARN, MODULE, "KMS call failed", "task", stats->task, "operation",
                      operation, "subject", subject ? subject : "", "status",
                      aws_status_name(err->status), "error", err->message, LOG_END);
        }
    }
    return rc;
}

static int counted_calls(fleet_run_stats *stats, unsigned calls, int rc, const char *operation,
                         const char *subject, const aws_error *err)
{
    return fleet_counted_calls(stats, calls, rc, operation, subject, err);
}

/* Counts the call just made; logs it when it failed. Returns rc. */
static int counted(fleet_run_stats *stats, int rc, const char *operation, const char *subject,
                   const aws_error *err)
{
    return counted_calls(stats, 1, rc, operation, subject, err);
}

void fleet_note_list_tags_denied(const fleet_run_env *env, const char *task)
{
    if (env->learnt == NULL || env->learnt->list_tags_denied)
        return;
    env->learnt->list_tags_denied = true;
    log_write(LOG_WARN, MODULE,
              "kms:ListResourceTags is denied: keys that carry spire-* tags cannot be "
              "recognised, so tag-mode servers' view of them is not taken into account; grant "
              "kms:ListResourceTags",
              "task", task, LOG_END);
}

static bool list_tags_denied(const fleet_run_env *env)
{
    return env->learnt != NULL && env->learnt->list_tags_denied;
}

static char *copy_string(const char *text) { return strdup(text ? text : ""); }

/* ---- every alias of the account ------------------------------------------ */

typedef struct {
    char *name;
    char *target; /* "" when the alias has no target */
    double last_updated;
} alias_entry;

typedef struct {
    alias_entry *items;
    size_t count;
    size_t capacity;
} alias_list;

static void alias_list_clear(alias_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        free(list->items[i].target);
    }
    free(list->items);
    *list = (alias_list){0};
}

static bool alias_list_append(alias_list *list, const kms_alias *alias)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        alias_entry *items = realloc(list->items, capacity * sizeof *items);
        if (items == NULL) {
            return false;
        }
        list->items = items;
        list->capacity = capacity;
    }
    alias_entry entry = {copy_string(alias->alias_name), copy_string(alias->target_key_id),
                         alias->last_updated_date};
    if (entry.name == NULL || entry.target == NULL) {
        free(entry.name);
        free(entry.target);
        return false;
    }
    list->items[list->count++] = entry;
    return true;
}

static int append_alias_page(alias_list *list, const kms_alias_page *page)
{
    for (size_t i = 0; i < page->count; i++) {
        if (!alias_list_append(list, &page->aliases[i])) {
            log_write(LOG_ERROR, MODULE, "out of memory listing aliases", LOG_END);
            return -1;
        }
    }
    return 0;
}

/* A fleet run's account-wide listing and where its pages go. */
typedef struct {
    const fleet_run_env *env;
    fleet_run_stats *stats;
    alias_list *aliases;
    struct key_list *keys;
} fleet_listing;

/* listing_walk, stopped when the run stops; a listing KMS does not complete
 * counts as a failure (a partial listing must not be judged). */
static int walk_counted(fleet_listing *listing, const char *operation, listing_page_fn page)
{
    aws_error err = {0};
    listing_step step = listing_walk(operation, page, listing, &err);
    if (step == LISTING_BROKEN)
        return counted_calls(listing->stats, 0, -1, operation, NULL, &err);
    return step == LISTING_DONE ? 0 : -1;
}

static int alias_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    fleet_listing *listing = user;
    if (stopping(listing->env))
        return -1;
    kms_alias_page page = {0};
    int rc = kms_list_aliases(listing->env->options->kms, listing->env->call, NULL, marker,
                              ALIAS_PAGE_LIMIT, &page, err);
    if (counted(listing->stats, rc, "ListAliases", NULL, err) == 0)
        rc = append_alias_page(listing->aliases, &page);
    listing_page_end_set(end, page.truncated, page.next_marker);
    kms_alias_page_clear(&page);
    return rc;
}

/* ListAliases, every page, no key filter. */
static int list_all_aliases(const fleet_run_env *env, fleet_run_stats *stats, alias_list *out)
{
    fleet_listing listing = {.env = env, .stats = stats, .aliases = out};
    return walk_counted(&listing, "ListAliases", alias_page);
}

/* ---- every key of the account -------------------------------------------- */

typedef struct key_list {
    kms_key_entry *items;
    size_t count;
} key_list;

static int append_key_page(key_list *list, const kms_key_page *page)
{
    if (page->count == 0) {
        return 0;
    }
    kms_key_entry *items = realloc(list->items, (list->count + page->count) * sizeof *items);
    if (items == NULL) {
        log_write(LOG_ERROR, MODULE, "out of memory listing keys", LOG_END);
        return -1;
    }
    memcpy(items + list->count, page->keys, page->count * sizeof *items);
    list->items = items;
    list->count += page->count;
    return 0;
}

/* ListKeys, every page; as list_all_aliases. */
static int key_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    fleet_listing *listing = user;
    if (stopping(listing->env))
        return -1;
    kms_key_page page = {0};
    int rc = kms_list_keys(listing->env->options->kms, listing->env->call, marker, KEY_PAGE_LIMIT,
                           &page, err);
    if (counted(listing->stats, rc, "ListKeys", NULL, err) == 0)
        rc = append_key_page(listing->keys, &page);
    listing_page_end_set(end, page.truncated, page.next_marker);
    kms_key_page_clear(&page);
    return rc;
}

static int list_all_keys(const fleet_run_env *env, fleet_run_stats *stats, key_list *out)
{
    fleet_listing listing = {.env = env, .stats = stats, .keys = out};
    return walk_counted(&listing, "ListKeys", key_page);
}

/* ---- refresh aliases ----------------------------------------------------- */

/* The key our owner's cache has behind alias_name right now (malloc'd), or
 * NULL when the alias is no longer ours or the cache could not be read. */
static char *cached_target(const fleet_options *options, const char *alias_name)
{
    fleet_alias *own = NULL;
    size_t count = 0;
    if (options->own_aliases(options->own_aliases_ctx, &own, &count) != 0)
        return NULL;
    char *target = NULL;
    for (size_t i = 0; target == NULL && i < count; i++) {
        if (strcmp(own[i].alias_name, alias_name) == 0)
            target = strdup(own[i].key_id);
    }
    fleet_aliases_free(own, count);
    return target;
}

/* A write of the refresh: not abandoned on stop (a write cancelled on our
 * side may still land in KMS later, after the lock is released and a
 * rotation moved the alias or retired the key), bounded by its own deadline. */
static aws_call_ctx refresh_write_ctx(void)
{
    aws_call_ctx write = {.deadline_ms = clock_monotonic_ms() + REFRESH_WRITE_TIMEOUT_MS};
    return write;
}

/* Alias mode: whether the key carries spire-* tags, read once
 * (ListResourceTags) when not known yet. */
static bool carries_spire_tags(const fleet_run_env *env, fleet_run_stats *stats,
                               const fleet_alias *own, const char *key_id)
{
    if (own->tags != KEY_TAGS_UNKNOWN)
        return own->tags == KEY_TAGS_SPIRE;
    if (list_tags_denied(env))
        return false;
    const fleet_options *options = env->options;
    aws_tag_set tags;
    unsigned calls = 0;
    aws_error err = {0};
    int rc = kms_truth_key_tags(options->kms, env->call, key_id, &tags, &calls, &err);
    if (counted_calls(stats, calls, rc, "ListResourceTags", key_id, &err) != 0) {
        if (err.status == AWS_ERR_ACCESS_DENIED)
            fleet_note_list_tags_denied(env, stats->task);
        return false;
    }
    bool spire = tag_mode_carries_spire_tags(&tags);
    aws_tag_set_clear(&tags);
    if (options->key_tags_learnt != NULL)
        options->key_tags_learnt(options->own_aliases_ctx, key_id, spire);
    return spire;
}

/* Keep-active: spire-last-update = now on a key we use (with spire-active =
 * "true" in tag mode: a new key whose activation failed is marked now, but
 * only once every key a rotation left active is tagged inactive: never two
 * active keys). In alias mode only on keys that carry spire-* tags. */
static void refresh_tags(const fleet_run_env *env, fleet_run_stats *stats, const fleet_alias *own,
                         const char *key_id)
{
    const fleet_options *options = env->options;
    if (!options->tag_mode && !carries_spire_tags(env, stats, own, key_id))
        return;
    char now[TAG_MODE_TIME_SIZE];
    tag_mode_format_time(env->now_s, now);
    const kms_tag tags[] = {{TAG_LAST_UPDATE, now}, {TAG_ACTIVE, "true"}};
    bool activate = options->tag_mode && (options->retire_rotated == NULL ||
                                          options->retire_rotated(options->own_aliases_ctx));
    aws_call_ctx write = refresh_write_ctx();
    aws_error err = {0};
    int rc = kms_tag_resource(options->kms, &write, key_id, tags, activate ? 2 : 1, &err);
    if (counted(stats, rc, "TagResource", key_id, &err) == 0)
        stats->tagged++;
}

/* Tag mode: our alias is gone from KMS (deleted by hand or by a peer), while
 * our tags keep the key ours: the alias is created again. */
static void restore_alias(const fleet_run_env *env, fleet_run_stats *stats, const char *alias_name,
                          const char *key_id)
{
    aws_call_ctx write = refresh_write_ctx();
    aws_error err = {0};
    int rc = kms_create_alias(env->options->kms, &write, alias_name, key_id, &err);
    if (counted(stats, rc, "CreateAlias", alias_name, &err) == 0) {
        stats->refreshed++;
        log_write(LOG_INFO, MODULE, "our alias was gone from KMS; created it again", "alias",
                  alias_name, "key_id", key_id, LOG_END);
    }
}

/* DescribeKey, then UpdateAlias to the same key when it is still the one our
 * cache names, and the key's tags. Returns the key the alias now targets when
 * it moved elsewhere (malloc'd), else NULL. Runs under the owner's alias lock. */
static char *refresh_locked(const fleet_run_env *env, fleet_run_stats *stats,
                            const fleet_alias *own)
{
    const fleet_options *options = env->options;
    const char *alias_name = own->alias_name;
    char *cached = cached_target(options, alias_name);
    if (cached == NULL)
        return NULL; /* rotated away or dropped since the run began */
    kms_key_metadata key = {0};
    aws_error err = {0};
    char *moved_to = NULL;
    int rc = kms_describe_key(options->kms, env->call, alias_name, &key, &err);
    if (counted(stats, rc, "DescribeKey", alias_name, &err) != 0) {
        if (err.status == AWS_ERR_NOT_FOUND && options->tag_mode) {
            restore_alias(env, stats, alias_name, cached);
            refresh_tags(env, stats, own, cached);
        } else if (err.status == AWS_ERR_NOT_FOUND) {
            log_write(LOG_WARN, MODULE, "our alias is gone from KMS; not refreshed", "alias",
                      alias_name, LOG_END);
        }
    } else if (!fleet_key_ref_matches(cached, key.key_id, key.arn)) {
        log_write(LOG_WARN, MODULE,
                  "our alias now targets another key (rotated by a replica sharing our "
                  "server id?); leaving it as it is",
                  "alias", alias_name, "cached_key", cached, "current_key", key.key_id, LOG_END);
        moved_to = strdup(key.key_id);
    } else {
        aws_call_ctx write = refresh_write_ctx();
        rc = kms_update_alias(options->kms, &write, alias_name, key.key_id, &err);
        if (counted(stats, rc, "UpdateAlias", alias_name, &err) == 0) {
            stats->refreshed++;
        }
        refresh_tags(env, stats, own, cached);
    }
    free(cached);
    return moved_to;
}

static void refresh_one(const fleet_run_env *env, fleet_run_stats *stats, const fleet_alias *own)
{
    const fleet_options *options = env->options;
    if (options->alias_lock != NULL)
        pthread_mutex_lock(options->alias_lock);
    char *moved_to = refresh_locked(env, stats, own);
    if (options->alias_lock != NULL)
        pthread_mutex_unlock(options->alias_lock);
    /* Told outside the lock: following the alias makes KMS calls of its own. */
    if (moved_to != NULL && options->alias_moved != NULL)
        options->alias_moved(options->alias_moved_ctx, env->call, own->alias_name, moved_to);
    free(moved_to);
}

void fleet_run_refresh_aliases(const fleet_run_env *env, fleet_run_stats *stats)
{
    fleet_alias *own = NULL;
    size_t count = 0;
    if (env->options->own_aliases(env->options->own_aliases_ctx, &own, &count) != 0) {
        log_write(LOG_WARN, MODULE, "could not read our aliases; refresh skipped", LOG_END);
        return;
    }
    for (size_t i = 0; i < count && !stopping(env); i++) {
        stats->aliases_scanned++;
        refresh_one(env, stats, &own[i]);
    }
    fleet_aliases_free(own, count);
}

/* ---- dispose aliases ----------------------------------------------------- */

/* Right before DeleteAlias: a key whose tags show a live server (a tag-mode
 * server keeps it alive by spire-last-update, whatever its alias) keeps its
 * alias. Tags that cannot be read keep it too, except a denied
 * ListResourceTags in alias mode (the alias alone decides, as before tags). */
static bool kept_alive_by_tags(const fleet_run_env *env, fleet_run_stats *stats,
                               const alias_entry *alias)
{
    const fleet_options *options = env->options;
    if (!options->tag_mode && list_tags_denied(env))
        return false;
    tag_judge judge = {.trust_domain = options->trust_domain,
                       .server_id = options->server_id,
                       .now_s = env->now_s,
                       .stale_age_ms = options->stale_alias_age_ms};
    unsigned calls = 0;
    aws_error err = {0};
    tag_liveness verdict =
        kms_truth_tag_liveness(options->kms, env->call, alias->target, &judge, &calls, &err);
    bool failed = verdict == TAG_LIVENESS_UNREADABLE && err.status != AWS_ERR_NOT_FOUND;
    counted_calls(stats, calls, failed ? -1 : 0, "ListResourceTags", alias->target, &err);
    switch (verdict) {
    case TAG_LIVENESS_NONE:
    case TAG_LIVENESS_RETIRE:
        return false;
    case TAG_LIVENESS_LIVE:
    case TAG_LIVENESS_MALFORMED:
        log_write(LOG_INFO, MODULE,
                  "stale alias left alone: its key's tags show a live server (spire-active and "
                  "a recent or unreadable spire-last-update)",
                  "alias", alias->name, "key_id", alias->target, LOG_END);
        return true;
    case TAG_LIVENESS_UNREADABLE:
    default:
        if (err.status == AWS_ERR_NOT_FOUND)
            return false;
        if (err.status == AWS_ERR_ACCESS_DENIED && !options->tag_mode) {
            fleet_note_list_tags_denied(env, stats->task);
            return false;
        }
        return true;
    }
}

/* Right before DeleteAlias: KMS must still show the alias on the key the
 * listing gave, not refreshed for stale_alias_age. *shared tells whether
 * another alias targets the same key. */
static bool still_stale(const fleet_run_env *env, fleet_run_stats *stats, const alias_entry *alias,
                        bool *shared)
{
    const fleet_options *options = env->options;
    kms_alias *now = NULL;
    size_t count = 0;
    unsigned calls = 0;
    aws_error err = {0};
    int rc = kms_truth_aliases_of_key(options->kms, env->call, alias->target, &now, &count, &calls,
                                      &err);
    if (counted_calls(stats, calls, rc, "ListAliases", alias->name, &err) != 0)
        return false;
    bool stale = false;
    *shared = false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(now[i].alias_name, alias->name) != 0)
            *shared = true;
        else
            stale = fleet_alias_is_stale(
                now[i].alias_name, now[i].target_key_id, now[i].last_updated_date,
                options->trust_domain, options->server_id, env->now_s, options->stale_alias_age_ms);
    }
    free(now);
    if (!stale)
        log_write(LOG_INFO, MODULE, "stale alias changed since the listing; left alone", "alias",
                  alias->name, "key_id", alias->target, LOG_END);
    return stale && !kept_alive_by_tags(env, stats, alias);
}

/* DeleteAlias; true when the alias may be gone: deleted, already gone, or an
 * unknown outcome (the deletion queue's check decides about its key). */
static bool delete_alias(const fleet_run_env *env, fleet_run_stats *stats, const alias_entry *alias)
{
    aws_error err = {0};
    int rc = kms_delete_alias(env->options->kms, env->call, alias->name, &err);
    if (counted(stats, rc, "DeleteAlias", alias->name, &err) == 0) {
        stats->disposed++;
        log_write(LOG_INFO, MODULE, "deleted stale alias of another server", "alias", alias->name,
                  "key_id", alias->target, LOG_END);
        return true;
    }
    if (err.status == AWS_ERR_NOT_FOUND || kms_truth_outcome_unknown(&err)) {
        log_write(LOG_WARN, MODULE,
                  "stale alias may be gone (DeleteAlias outcome unknown, or not found); its key "
                  "is queued and the deletion queue's check decides",
                  "alias", alias->name, "key_id", alias->target, LOG_END);
        return true;
    }
    return false;
}

static void dispose_alias(const fleet_run_env *env, fleet_run_stats *stats,
                          const alias_entry *alias)
{
    bool shared = false;
    if (!still_stale(env, stats, alias, &shared) || !delete_alias(env, stats, alias))
        return;
    if (shared)
        return; /* the key stays while another alias targets it */
    char reason[DELETION_REASON_MAX];
    snprintf(reason, sizeof reason, "its alias %s was stale", alias->name);
    deletion_queue_push(env->options->deletions, alias->target, reason);
}

void fleet_run_dispose_aliases(const fleet_run_env *env, fleet_run_stats *stats)
{
    const fleet_options *options = env->options;
    alias_list aliases = {0};
    if (list_all_aliases(env, stats, &aliases) == 0) {
        for (size_t i = 0; i < aliases.count && !stopping(env); i++) {
            alias_entry *alias = &aliases.items[i];
            stats->aliases_scanned++;
            if (fleet_alias_is_stale(alias->name, alias->target, alias->last_updated,
                                     options->trust_domain, options->server_id, env->now_s,
                                     options->stale_alias_age_ms)) {
                dispose_alias(env, stats, alias);
            }
        }
    }
    alias_list_clear(&aliases);
}

/* ---- dispose keys -------------------------------------------------------- */

typedef enum {
    MEMO_NEVER_OURS, /* AWS managed, or described for another trust domain */
    MEMO_OURS_YOUNG, /* ours, younger than orphan_key_age at creation_date */
} memo_kind;

typedef struct {
    char key_id[sizeof((kms_key_entry *)0)->key_id];
    memo_kind kind;
    double creation_date;
} memo_entry;

struct fleet_key_memo {
    memo_entry *items; /* sorted by key_id */
    size_t count;
};

fleet_key_memo *fleet_key_memo_new(void) { return calloc(1, sizeof(fleet_key_memo)); }

void fleet_key_memo_free(fleet_key_memo *memo)
{
    if (memo != NULL) {
        free(memo->items);
        free(memo);
    }
}

static int compare_memo(const void *a, const void *b)
{
    return strcmp(((const memo_entry *)a)->key_id, ((const memo_entry *)b)->key_id);
}

static const memo_entry *memo_find(const fleet_key_memo *memo, const char *key_id)
{
    if (memo == NULL || memo->count == 0) {
        return NULL;
    }
    memo_entry probe = {0};
    snprintf(probe.key_id, sizeof probe.key_id, "%s", key_id);
    return bsearch(&probe, memo->items, memo->count, sizeof *memo->items, compare_memo);
}

/* A key whose verdict cannot have changed since it was memoised. */
static bool memo_says_skip(const memo_entry *entry, const fleet_run_env *env)
{
    if (entry == NULL) {
        return false;
    }
    return entry->kind == MEMO_NEVER_OURS ||
           !fleet_is_older_than(entry->creation_date, env->now_s, env->options->orphan_key_age_ms);
}

/* Memo entries for this run; replaces the old memo at the end, so keys no
 * longer listed drop out. */
typedef struct {
    memo_entry *items;
    size_t count;
} memo_builder;

static void memo_keep(memo_builder *next, const memo_entry *entry)
{
    if (entry != NULL) {
        next->items[next->count++] = *entry;
    }
}

static void memo_learn(memo_builder *next, const kms_key_metadata *key, const fleet_run_env *env)
{
    memo_entry entry = {.creation_date = key->creation_date};
    snprintf(entry.key_id, sizeof entry.key_id, "%s", key->key_id);
    if (strcmp(key->key_manager, "CUSTOMER") != 0 ||
        !naming_description_in_trust_domain(key->description, env->options->trust_domain)) {
        entry.kind = MEMO_NEVER_OURS;
    } else if (!fleet_is_older_than(key->creation_date, env->now_s,
                                    env->options->orphan_key_age_ms)) {
        entry.kind = MEMO_OURS_YOUNG;
    } else {
        return; /* an old key of ours: its state may change, describe it again */
    }
    next->items[next->count++] = entry;
}

static void memo_replace(fleet_key_memo *memo, memo_builder *next)
{
    if (memo == NULL) {
        free(next->items);
        return;
    }
    qsort(next->items, next->count, sizeof *next->items, compare_memo);
    free(memo->items);
    memo->items = next->items;
    memo->count = next->count;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted targets of every alias (pointers into aliases). */
static const char **aliased_key_ids(const alias_list *aliases, size_t *count)
{
    const char **targets = calloc(aliases->count + 1, sizeof *targets);
    if (targets == NULL) {
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < aliases->count; i++) {
        if (aliases->items[i].target[0] != '\0') {
            targets[n++] = aliases->items[i].target;
        }
    }
    qsort(targets, n, sizeof *targets, compare_strings);
    *count = n;
    return targets;
}

static void check_unaliased_key(const fleet_run_env *env, fleet_run_stats *stats,
                                const kms_key_entry *listed, memo_builder *next)
{
    kms_key_metadata key = {0};
    aws_error err = {0};
    int rc = kms_describe_key(env->options->kms, env->call, listed->key_id, &key, &err);
    if (counted(stats, rc, "DescribeKey", listed->key_id, &err) != 0) {
        return;
    }
    memo_learn(next, &key, env);
    if (fleet_key_is_orphan(&key, false, env->options->trust_domain, env->now_s,
                            env->options->orphan_key_age_ms)) {
        log_write(LOG_INFO, MODULE, "found orphan key of our trust domain", "key_id", key.key_id,
                  "description", key.description, LOG_END);
        if (deletion_queue_push(env->options->deletions, key.key_id, "no alias targets it")) {
            stats->disposed++;
        }
    }
}

static void prune_keys(const fleet_run_env *env, fleet_key_memo *memo, fleet_run_stats *stats,
                       const key_list *keys, const alias_list *aliases)
{
    size_t target_count = 0;
    const char **targets = aliased_key_ids(aliases, &target_count);
    memo_builder next = {calloc(keys->count + 1, sizeof(memo_entry)), 0};
    if (targets == NULL || next.items == NULL) {
        log_write(LOG_ERROR, MODULE, "out of memory pruning keys", LOG_END);
        free(targets);
        free(next.items);
        return;
    }
    for (size_t i = 0; i < keys->count && !stopping(env); i++) {
        const kms_key_entry *listed = &keys->items[i];
        const char *id = listed->key_id;
        stats->keys_scanned++;
        if (bsearch(&id, targets, target_count, sizeof *targets, compare_strings) != NULL) {
            continue;
        }
        const memo_entry *known = memo_find(memo, id);
        if (memo_says_skip(known, env)) {
            memo_keep(&next, known);
            continue;
        }
        check_unaliased_key(env, stats, listed, &next);
    }
    memo_replace(memo, &next);
    free(targets);
}

void fleet_run_dispose_keys(const fleet_run_env *env, fleet_key_memo *memo, fleet_run_stats *stats)
{
    key_list keys = {0};
    alias_list aliases = {0};
    if (list_all_keys(env, stats, &keys) == 0 && list_all_aliases(env, stats, &aliases) == 0) {
        prune_keys(env, memo, stats, &keys, &aliases);
    }
    alias_list_clear(&aliases);
    free(keys.items);
}

/* ---- figures ------------------------------------------------------------- */

void fleet_log_run(const fleet_run_stats *stats)
{
    if (!log_enabled(LOG_DEBUG)) {
        return;
    }
    char calls[16], aliases[16], keys[16], refreshed[16], disposed[16], failures[16];
    snprintf(calls, sizeof calls, "%u", stats->calls);
    snprintf(aliases, sizeof aliases, "%u", stats->aliases_scanned);
    snprintf(keys, sizeof keys, "%u", stats->keys_scanned);
    snprintf(refreshed, sizeof refreshed, "%u", stats->refreshed);
    snprintf(disposed, sizeof disposed, "%u", stats->disposed);
    snprintf(failures, sizeof failures, "%u", stats->failures);
    char tagged[16];
    snprintf(tagged, sizeof tagged, "%u", stats->tagged);
    log_write(LOG_DEBUG, MODULE, "task run finished", "task", stats->task, "aliases_scanned",
              aliases, "keys_scanned", keys, "calls", calls, "refreshed", refreshed, "tagged",
              tagged, "disposed", disposed, "failures", failures, LOG_END);
}

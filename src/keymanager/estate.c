/* The estate's pure parts: each SPIRE key's verdict, the prune plan of one
 * trust domain and the cost summary. Every judgement is made by the fleet
 * tasks' own decisions (fleet_alias_is_stale, fleet_key_is_orphan,
 * fleet_is_older_than in fleet_policy.c; tag_mode_judge and
 * tag_mode_undated_is_stale in tag_mode.c) and names are read with naming.h:
 * one policy for the plugin and the operator commands. */
#include "keymanager/estate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/naming.h"
#include "keymanager/tag_mode.h"

/* The operator is no server: every SPIRE alias belongs to "another server". */
static const char no_server_id[] = "";

static const char *const verdict_names[ESTATE_VERDICT_COUNT] = {
    [ESTATE_LIVE] = "live",
    [ESTATE_STALE_ALIAS] = "stale-alias",
    [ESTATE_ORPHAN] = "orphan",
    [ESTATE_YOUNG_ORPHAN] = "young-orphan",
    [ESTATE_PENDING_DELETION] = "pending-deletion",
    [ESTATE_DISABLED] = "disabled",
    [ESTATE_MALFORMED_TAGS] = "malformed-tags",
};

const char *estate_verdict_name(estate_verdict verdict)
{
    return (unsigned)verdict < ESTATE_VERDICT_COUNT ? verdict_names[verdict] : "unknown";
}

bool estate_verdict_is_prunable(estate_verdict verdict)
{
    return verdict == ESTATE_STALE_ALIAS || verdict == ESTATE_ORPHAN;
}

const char *estate_action_name(estate_action_kind kind)
{
    return kind == ESTATE_DELETE_ALIAS ? "delete-alias" : "schedule-key-deletion";
}

const char *estate_result_name(estate_result result)
{
    static const char *const names[] = {
        [ESTATE_PLANNED] = "planned",
        [ESTATE_DONE] = "done",
        [ESTATE_ALREADY_DONE] = "already-done",
        [ESTATE_SKIPPED] = "skipped",
        [ESTATE_FAILED] = "failed",
        [ESTATE_UNKNOWN] = "unknown",
    };
    return (unsigned)result < sizeof names / sizeof names[0] ? names[result] : "unknown";
}

/* ---- memory ------------------------------------------------------------------ */

static void spire_tags_clear(estate_spire_tags *tags)
{
    free(tags->server_td);
    free(tags->server_id);
    free(tags->active);
    free(tags->key_id);
    free(tags->last_update);
}

static void key_clear(estate_key *key)
{
    spire_tags_clear(&key->tags);
    free(key->trust_domain);
    free(key->server_id);
    free(key->spire_key_id);
    free(key->alias);
    free(key->description);
    memset(key, 0, sizeof *key);
}

static void aliases_free(estate_alias *aliases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(aliases[i].name);
        free(aliases[i].target);
    }
    free(aliases);
}

void estate_clear(estate *account)
{
    if (account == NULL)
        return;
    for (size_t i = 0; i < account->key_count; i++)
        key_clear(&account->keys[i]);
    free(account->keys);
    aliases_free(account->aliases, account->alias_count);
    memset(account, 0, sizeof *account);
}

void estate_plan_clear(estate_plan *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->count; i++) {
        free(plan->items[i].alias);
        free(plan->items[i].reason);
        free(plan->items[i].detail);
    }
    free(plan->items);
    memset(plan, 0, sizeof *plan);
}

static int compare_alias_names(const void *a, const void *b)
{
    return strcmp(((const estate_alias *)a)->name, ((const estate_alias *)b)->name);
}

/* Deep copy, sorted by name. */
static estate_alias *copy_aliases(const estate_alias *aliases, size_t count)
{
    estate_alias *copy = calloc(count + 1, sizeof *copy);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        copy[i].name = strdup(aliases[i].name ? aliases[i].name : "");
        copy[i].target = strdup(aliases[i].target ? aliases[i].target : "");
        copy[i].last_updated = aliases[i].last_updated;
        if (copy[i].name == NULL || copy[i].target == NULL) {
            aliases_free(copy, i + 1);
            return NULL;
        }
    }
    qsort(copy, count, sizeof *copy, compare_alias_names);
    return copy;
}

/* ---- aliases by target ----------------------------------------------------------- */

typedef struct {
    const estate_alias *aliases;
    size_t *order; /* indices sorted by target */
    size_t count;
} target_index;

static int compare_targets(const void *a, const void *b, void *aliases)
{
    size_t left = *(const size_t *)a, right = *(const size_t *)b;
    const estate_alias *base = aliases;
    int by_target = strcmp(base[left].target, base[right].target);
    return by_target != 0 ? by_target : (left > right) - (left < right);
}

static int index_build(target_index *index, const estate_alias *aliases, size_t count)
{
    index->aliases = aliases;
    index->count = count;
    index->order = calloc(count + 1, sizeof *index->order);
    if (index->order == NULL)
        return -1;
    for (size_t i = 0; i < count; i++)
        index->order[i] = i;
    qsort_r(index->order, count, sizeof *index->order, compare_targets, (void *)aliases);
    return 0;
}

/* First position in order whose alias targets key_id; *end is one past the last. */
static size_t index_range(const target_index *index, const char *key_id, size_t *end)
{
    size_t low = 0, high = index->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (strcmp(index->aliases[index->order[mid]].target, key_id) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    size_t stop = low;
    while (stop < index->count && strcmp(index->aliases[index->order[stop]].target, key_id) == 0)
        stop++;
    *end = stop;
    return low;
}

/* ---- tags ---------------------------------------------------------------------------- */

static const char *tag_of(const aws_tag_set *tags, const char *key)
{
    return tags != NULL ? aws_tag_set_get(tags, key) : NULL;
}

static bool tag_equals(const aws_tag_set *tags, const char *key, const char *value)
{
    const char *found = tag_of(tags, key);
    return found != NULL && value != NULL && strcmp(found, value) == 0;
}

estate_tags_say estate_judge_tags(const aws_tag_set *tags, double created_s, double now_s,
                                  int64_t stale_alias_age_ms)
{
    if (tag_of(tags, TAG_SERVER_TD) == NULL && tag_of(tags, TAG_ACTIVE) == NULL)
        return ESTATE_TAGS_NONE;
    /* No server of our own (NULL): never TAGS_SAY_OURS, every server's tags count. */
    switch (tag_mode_judge(tags, NULL, NULL, now_s, stale_alias_age_ms)) {
    case TAGS_SAY_LIVE:
        return ESTATE_TAGS_LIVE;
    case TAGS_SAY_OURS:
    case TAGS_SAY_STALE:
        return ESTATE_TAGS_STALE;
    case TAGS_SAY_MALFORMED:
        return ESTATE_TAGS_MALFORMED;
    case TAGS_SAY_UNDATED:
        return tag_mode_undated_is_stale(created_s, now_s, stale_alias_age_ms) ? ESTATE_TAGS_STALE
                                                                               : ESTATE_TAGS_LIVE;
    case TAGS_SAY_NOTHING:
    default:
        return ESTATE_TAGS_SILENT;
    }
}

bool estate_marked_for(const char *description, const aws_tag_set *tags, const char *trust_domain)
{
    return naming_description_in_trust_domain(description, trust_domain) ||
           tag_equals(tags, TAG_SERVER_TD, trust_domain);
}

/* Tagged spire-active = "false" with a trust domain: what the tag sweep's
 * healing pass lists (a deletion that stopped between the tag and the
 * schedule, or a key whose activation never came). */
static bool tagged_inactive(const aws_tag_set *tags)
{
    return tag_of(tags, TAG_SERVER_TD) != NULL && tag_equals(tags, TAG_ACTIVE, "false");
}

/* An unaliased key with SPIRE's marks; description_td is the trust domain of
 * its SPIRE description, or NULL. */
static estate_verdict unaliased_verdict(const kms_key_metadata *metadata, const aws_tag_set *tags,
                                        estate_tags_say say, const char *description_td,
                                        double now_s, const estate_ages *ages)
{
    if (strcmp(metadata->key_state, "PendingDeletion") == 0)
        return ESTATE_PENDING_DELETION;
    switch (say) {
    case ESTATE_TAGS_LIVE: /* the deletion queue keeps it */
        return metadata->enabled ? ESTATE_LIVE : ESTATE_DISABLED;
    case ESTATE_TAGS_MALFORMED: /* never judged: the tag sweep and the queue skip it */
        return ESTATE_MALFORMED_TAGS;
    case ESTATE_TAGS_STALE: /* the tag sweep queues it, whatever its state */
        if (tag_of(tags, TAG_SERVER_TD) != NULL)
            return ESTATE_ORPHAN;
        break; /* no tag sweep lists it: judged as untagged */
    default:
        break;
    }
    bool inactive = tagged_inactive(tags);
    if (inactive && fleet_is_older_than(metadata->creation_date, now_s, ages->orphan_key_age_ms))
        return ESTATE_ORPHAN; /* the healing pass */
    if (description_td != NULL &&
        fleet_key_is_orphan(metadata, false, description_td, now_s, ages->orphan_key_age_ms))
        return ESTATE_ORPHAN; /* the orphan sweep */
    if (!metadata->enabled)
        return ESTATE_DISABLED;
    if (description_td != NULL || inactive)
        return ESTATE_YOUNG_ORPHAN; /* ours, enabled, unaliased: only too young */
    return ESTATE_MALFORMED_TAGS;   /* spire-* tags no sweep lists, no description */
}

bool estate_judge_unaliased(const kms_key_metadata *metadata, const aws_tag_set *tags, double now_s,
                            const estate_ages *ages, estate_verdict *out)
{
    char *td = NULL, *spire_key = NULL;
    bool described = strcmp(metadata->key_manager, "CUSTOMER") == 0 &&
                     naming_split_description(metadata->description, &td, &spire_key);
    estate_tags_say say =
        estate_judge_tags(tags, metadata->creation_date, now_s, ages->stale_alias_age_ms);
    bool spire = described || say != ESTATE_TAGS_NONE;
    if (spire)
        *out = unaliased_verdict(metadata, tags, say, td, now_s, ages);
    free(td);
    free(spire_key);
    return spire;
}

/* ---- verdicts ---------------------------------------------------------------------- */

static bool alias_is_stale(const estate_alias *alias, const char *alias_trust_domain, double now_s,
                           const estate_ages *ages)
{
    return fleet_alias_is_stale(alias->name, alias->target, alias->last_updated, alias_trust_domain,
                                no_server_id, now_s, ages->stale_alias_age_ms);
}

/* A key some alias targets: SPIRE's when one of them is a SPIRE alias or its
 * tags are SPIRE's. Live while any alias (a fresh SPIRE one, or any other)
 * still names it, or its tags keep it alive (the dispose-aliases task then
 * leaves its stale aliases alone). */
static bool judge_aliased(estate_key *key, const target_index *index, size_t first, size_t end,
                          double now_s, const estate_ages *ages)
{
    bool spire = key->tags_say != ESTATE_TAGS_NONE, live = false;
    for (size_t i = first; i < end; i++) {
        const estate_alias *alias = &index->aliases[index->order[i]];
        char *td = NULL, *server = NULL, *spire_key = NULL;
        if (!naming_split_alias(alias->name, &td, &server, &spire_key)) {
            live = true; /* not ours to judge: someone else names this key */
            continue;
        }
        spire = true;
        if (!alias_is_stale(alias, td, now_s, ages))
            live = true;
        if (key->alias == NULL || alias->last_updated > key->alias_last_updated) {
            free(key->trust_domain);
            free(key->server_id);
            free(key->spire_key_id);
            free(key->alias);
            key->trust_domain = td;
            key->server_id = server;
            key->spire_key_id = spire_key;
            key->alias = strdup(alias->name);
            key->alias_last_updated = alias->last_updated;
            continue;
        }
        free(td);
        free(server);
        free(spire_key);
    }
    if (live || key->tags_say == ESTATE_TAGS_LIVE)
        key->verdict = ESTATE_LIVE;
    else if (key->tags_say == ESTATE_TAGS_MALFORMED)
        key->verdict = ESTATE_MALFORMED_TAGS;
    else
        key->verdict = ESTATE_STALE_ALIAS;
    return spire;
}

/* A key no alias targets: SPIRE's by its description or its tags. */
static bool judge_unaliased(estate_key *key, const estate_listed_key *listed, double now_s,
                            const estate_ages *ages)
{
    return listed->metadata != NULL &&
           estate_judge_unaliased(listed->metadata, listed->tags, now_s, ages, &key->verdict);
}

static char *copy_or_null(const char *text) { return text != NULL ? strdup(text) : NULL; }

static void copy_tags(estate_key *key, const aws_tag_set *tags)
{
    key->tags.server_td = copy_or_null(tag_of(tags, TAG_SERVER_TD));
    key->tags.server_id = copy_or_null(tag_of(tags, TAG_SERVER_ID));
    key->tags.active = copy_or_null(tag_of(tags, TAG_ACTIVE));
    key->tags.key_id = copy_or_null(tag_of(tags, TAG_KEY_ID));
    key->tags.last_update = copy_or_null(tag_of(tags, TAG_LAST_UPDATE));
}

/* Without an alias, the names come from the description (trust domain as
 * written there), then the tags (spire-server-td as written). */
static void names_without_alias(estate_key *key, const kms_key_metadata *metadata)
{
    if (metadata != NULL && key->trust_domain == NULL &&
        strcmp(metadata->key_manager, "CUSTOMER") == 0)
        naming_split_description(metadata->description, &key->trust_domain, &key->spire_key_id);
    if (key->trust_domain == NULL)
        key->trust_domain = copy_or_null(key->tags.server_td);
    if (key->spire_key_id == NULL)
        key->spire_key_id = copy_or_null(key->tags.key_id);
    if (key->server_id == NULL)
        key->server_id = copy_or_null(key->tags.server_id);
}

static void copy_metadata(estate_key *key, const kms_key_metadata *metadata)
{
    if (metadata == NULL)
        return;
    key->described = true;
    key->key_spec = metadata->key_spec;
    snprintf(key->state, sizeof key->state, "%s", metadata->key_state);
    key->created = metadata->creation_date;
    key->description = strdup(metadata->description);
}

static bool in_trust_domain(const estate_key *key, const estate_listed_key *listed,
                            const char *trust_domain)
{
    if (trust_domain == NULL)
        return true;
    if (key->alias != NULL) {
        char *server = NULL, *spire_key = NULL;
        bool in = naming_parse_alias(key->alias, trust_domain, &server, &spire_key);
        free(server);
        free(spire_key);
        return in;
    }
    return estate_marked_for(key->description, listed->tags, trust_domain);
}

static int compare_optional(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return (a == NULL) - (b == NULL);
    return strcmp(a, b);
}

static int compare_keys(const void *pa, const void *pb)
{
    const estate_key *a = pa, *b = pb;
    int c = compare_optional(a->trust_domain, b->trust_domain);
    if (c == 0)
        c = compare_optional(a->server_id, b->server_id);
    if (c == 0)
        c = compare_optional(a->spire_key_id, b->spire_key_id);
    return c != 0 ? c : strcmp(a->key_id, b->key_id);
}

/* Judges one listed key into *key; false (key cleared) when it is not
 * SPIRE's or not of trust_domain. */
static bool judge_key(estate_key *key, const estate_listed_key *listed, const target_index *index,
                      const char *trust_domain, double now_s, const estate_ages *ages)
{
    memset(key, 0, sizeof *key);
    snprintf(key->key_id, sizeof key->key_id, "%s", listed->key_id);
    snprintf(key->arn, sizeof key->arn, "%s", listed->arn ? listed->arn : "");
    copy_metadata(key, listed->metadata);
    copy_tags(key, listed->tags);
    key->tags_say = estate_judge_tags(listed->tags, key->created, now_s, ages->stale_alias_age_ms);
    size_t end;
    size_t first = index_range(index, listed->key_id, &end);
    bool spire = first < end ? judge_aliased(key, index, first, end, now_s, ages)
                             : judge_unaliased(key, listed, now_s, ages);
    if (spire && key->alias == NULL)
        names_without_alias(key, listed->metadata);
    if (!spire || !in_trust_domain(key, listed, trust_domain)) {
        key_clear(key);
        return false;
    }
    return true;
}

int estate_build(const estate_listed_key *keys, size_t key_count, const estate_alias *aliases,
                 size_t alias_count, const char *trust_domain, double now_s,
                 const estate_ages *ages, estate *out)
{
    memset(out, 0, sizeof *out);
    out->now_s = now_s;
    out->account_keys = key_count;
    out->aliases = copy_aliases(aliases, alias_count);
    out->keys = calloc(key_count + 1, sizeof *out->keys);
    target_index index = {0};
    if (out->aliases == NULL || out->keys == NULL ||
        index_build(&index, out->aliases, alias_count) != 0) {
        free(index.order);
        estate_clear(out);
        return -1;
    }
    out->alias_count = alias_count;
    for (size_t i = 0; i < key_count; i++) {
        if (judge_key(&out->keys[out->key_count], &keys[i], &index, trust_domain, now_s, ages))
            out->key_count++;
    }
    free(index.order);
    qsort(out->keys, out->key_count, sizeof *out->keys, compare_keys);
    return 0;
}

/* ---- cost ------------------------------------------------------------------------ */

void estate_summarize(const estate *account, double price_usd, estate_summary *out)
{
    memset(out, 0, sizeof *out);
    size_t charged = 0, prunable_charged = 0;
    for (size_t i = 0; i < account->key_count; i++) {
        estate_verdict verdict = account->keys[i].verdict;
        out->keys++;
        out->by_verdict[verdict]++;
        bool pending =
            verdict == ESTATE_PENDING_DELETION ||
            (account->keys[i].described && strcmp(account->keys[i].state, "PendingDeletion") == 0);
        if (!pending)
            charged++;
        if (estate_verdict_is_prunable(verdict)) {
            out->prunable++;
            prunable_charged += pending ? 0 : 1;
        }
    }
    out->monthly_cost_usd = (double)charged * price_usd;
    out->prunable_monthly_cost_usd = (double)prunable_charged * price_usd;
}

/* ---- the prune plan ---------------------------------------------------------------- */

static estate_action *add_action(estate_plan *plan, size_t *capacity, estate_action_kind kind,
                                 const char *alias, const char *key_id, char *reason)
{
    if (reason == NULL)
        return NULL;
    if (plan->count == *capacity) {
        size_t bigger = *capacity ? *capacity * 2 : 16;
        estate_action *items = realloc(plan->items, bigger * sizeof *items);
        if (items == NULL) {
            free(reason);
            return NULL;
        }
        plan->items = items;
        *capacity = bigger;
    }
    estate_action *action = &plan->items[plan->count];
    memset(action, 0, sizeof *action);
    action->kind = kind;
    action->alias = alias != NULL ? strdup(alias) : NULL;
    snprintf(action->key_id, sizeof action->key_id, "%s", key_id);
    action->reason = reason;
    action->result = ESTATE_PLANNED;
    plan->count++;
    if (alias != NULL && action->alias == NULL)
        return NULL;
    return action;
}

static double age_days(double date_s, double now_s) { return (now_s - date_s) / 86400.0; }

/* True while an alias not deleted by the plan targets key_id. */
static bool still_aliased(const target_index *index, const bool *deleted, const char *key_id)
{
    size_t end;
    for (size_t i = index_range(index, key_id, &end); i < end; i++) {
        if (!deleted[index->order[i]])
            return true;
    }
    return false;
}

/* The estate's keys sorted by key id, to find an alias's target. */
typedef struct {
    const estate_key **keys;
    size_t count;
} key_index;

static int compare_key_ids(const void *a, const void *b)
{
    return strcmp((*(const estate_key *const *)a)->key_id, (*(const estate_key *const *)b)->key_id);
}

static int key_index_build(key_index *index, const estate *account)
{
    index->count = account->key_count;
    index->keys = calloc(account->key_count + 1, sizeof *index->keys);
    if (index->keys == NULL)
        return -1;
    for (size_t i = 0; i < account->key_count; i++)
        index->keys[i] = &account->keys[i];
    qsort(index->keys, index->count, sizeof *index->keys, compare_key_ids);
    return 0;
}

static const estate_key *key_index_find(const key_index *index, const char *key_id)
{
    estate_key probe;
    snprintf(probe.key_id, sizeof probe.key_id, "%s", key_id);
    const estate_key *wanted = &probe;
    const estate_key *const *found =
        bsearch(&wanted, index->keys, index->count, sizeof *index->keys, compare_key_ids);
    return found != NULL ? *found : NULL;
}

/* The dispose-aliases task leaves a stale alias alone while its key's tags
 * show a live server, or a spire-last-update it cannot read. */
static bool kept_by_tags(const estate_key *key)
{
    return key != NULL &&
           (key->tags_say == ESTATE_TAGS_LIVE || key->tags_say == ESTATE_TAGS_MALFORMED);
}

/* What the deletion queue does before scheduling a key tagged active. */
static const char *retire_note(const estate_key *key)
{
    return key != NULL && key->tags.active != NULL && strcmp(key->tags.active, "true") == 0
               ? "; tagged spire-active=true: tagged spire-active=false first"
               : "";
}

static int plan_stale_aliases(const estate *account, const char *trust_domain,
                              const estate_ages *ages, estate_plan *plan, size_t *capacity)
{
    target_index index = {0};
    key_index keys = {0};
    bool *deleted = calloc(account->alias_count + 1, sizeof *deleted);
    int rc = deleted == NULL || index_build(&index, account->aliases, account->alias_count) != 0 ||
                     key_index_build(&keys, account) != 0
                 ? -1
                 : 0;
    for (size_t i = 0; i < account->alias_count && rc == 0; i++) {
        const estate_alias *alias = &account->aliases[i];
        const estate_key *key = key_index_find(&keys, alias->target);
        if (!alias_is_stale(alias, trust_domain, account->now_s, ages) || kept_by_tags(key))
            continue;
        deleted[i] = true;
        char *reason = text_format("stale alias: last updated %.1f days ago (stale after %.1f)",
                                   age_days(alias->last_updated, account->now_s),
                                   (double)ages->stale_alias_age_ms / ESTATE_DAY_MS);
        if (add_action(plan, capacity, ESTATE_DELETE_ALIAS, alias->name, alias->target, reason) ==
            NULL) {
            rc = -1;
        } else if (!still_aliased(&index, deleted, alias->target)) {
            reason = text_format("its alias %s was stale and no other alias targets it%s",
                                 alias->name, retire_note(key));
            if (add_action(plan, capacity, ESTATE_SCHEDULE_KEY_DELETION, alias->name, alias->target,
                           reason) == NULL)
                rc = -1;
        }
    }
    free(keys.keys);
    free(index.order);
    free(deleted);
    return rc;
}

static bool key_marked_for(const estate_key *key, const char *trust_domain)
{
    return naming_description_in_trust_domain(key->description, trust_domain) ||
           (key->tags.server_td != NULL && strcmp(key->tags.server_td, trust_domain) == 0);
}

/* Why an orphan is in the plan: the rule that made it one. */
static char *orphan_reason(const estate_key *key, double now_s, const estate_ages *ages)
{
    double stale_days = (double)ages->stale_alias_age_ms / ESTATE_DAY_MS;
    double orphan_days = (double)ages->orphan_key_age_ms / ESTATE_DAY_MS;
    int64_t last_update = 0;
    bool swept = key->tags_say == ESTATE_TAGS_STALE && key->tags.server_td != NULL;
    if (swept && tag_mode_parse_time(key->tags.last_update, &last_update))
        return text_format("stale tags: spire-last-update %.1f days ago (stale after %.1f), no "
                           "alias targets it%s",
                           age_days((double)last_update, now_s), stale_days, retire_note(key));
    if (swept)
        return text_format("stale tags: spire-active=true without spire-last-update, created "
                           "%.1f days ago (stale after %.1f), no alias targets it%s",
                           age_days(key->created, now_s), stale_days, retire_note(key));
    if (key->tags.active != NULL && strcmp(key->tags.active, "false") == 0 &&
        key->tags.server_td != NULL)
        return text_format("tagged spire-active=false but not pending deletion (a deletion left "
                           "unfinished), created %.1f days ago (orphan after %.1f), no alias "
                           "targets it",
                           age_days(key->created, now_s), orphan_days);
    return text_format("orphan: no alias targets it, created %.1f days ago (orphan after %.1f)%s",
                       age_days(key->created, now_s), orphan_days, retire_note(key));
}

static int plan_orphans(const estate *account, const char *trust_domain, const estate_ages *ages,
                        estate_plan *plan, size_t *capacity)
{
    for (size_t i = 0; i < account->key_count; i++) {
        const estate_key *key = &account->keys[i];
        if (key->verdict != ESTATE_ORPHAN || key->alias != NULL ||
            !key_marked_for(key, trust_domain))
            continue;
        char *reason = orphan_reason(key, account->now_s, ages);
        if (add_action(plan, capacity, ESTATE_SCHEDULE_KEY_DELETION, NULL, key->key_id, reason) ==
            NULL)
            return -1;
    }
    return 0;
}

int estate_plan_prune(const estate *account, const char *trust_domain, const estate_ages *ages,
                      estate_plan *out)
{
    memset(out, 0, sizeof *out);
    size_t capacity = 0;
    if (trust_domain == NULL || trust_domain[0] == '\0')
        return 0;
    if (plan_stale_aliases(account, trust_domain, ages, out, &capacity) != 0 ||
        plan_orphans(account, trust_domain, ages, out, &capacity) != 0) {
        estate_plan_clear(out);
        return -1;
    }
    return 0;
}

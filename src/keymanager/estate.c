/* The estate's pure parts: each SPIRE key's verdict, the prune plan of one
 * trust domain and the cost summary. Every judgement is made by the fleet
 * tasks' own decisions (fleet_alias_is_stale, fleet_key_is_orphan in
 * fleet_policy.c) and names are read with naming.h: one policy for the plugin
 * and the operator commands. */
#include "keymanager/estate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymanager/fleet_internal.h"
#include "keymanager/naming.h"

/* The operator is no server: every SPIRE alias belongs to "another server". */
static const char no_server_id[] = "";

static const char *const verdict_names[ESTATE_VERDICT_COUNT] = {
    [ESTATE_LIVE] = "live",
    [ESTATE_STALE_ALIAS] = "stale-alias",
    [ESTATE_ORPHAN] = "orphan",
    [ESTATE_YOUNG_ORPHAN] = "young-orphan",
    [ESTATE_PENDING_DELETION] = "pending-deletion",
    [ESTATE_DISABLED] = "disabled",
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

static void key_clear(estate_key *key)
{
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

/* ---- verdicts ---------------------------------------------------------------------- */

static bool alias_is_stale(const estate_alias *alias, const char *alias_trust_domain, double now_s,
                           const estate_ages *ages)
{
    return fleet_alias_is_stale(alias->name, alias->target, alias->last_updated, alias_trust_domain,
                                no_server_id, now_s, ages->stale_alias_age_ms);
}

/* A key some alias targets: SPIRE's when one of them is a SPIRE alias. Live
 * while any alias (a fresh SPIRE one, or any other) still names it. */
static bool judge_aliased(estate_key *key, const target_index *index, size_t first, size_t end,
                          double now_s, const estate_ages *ages)
{
    bool spire = false, live = false;
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
    key->verdict = live ? ESTATE_LIVE : ESTATE_STALE_ALIAS;
    return spire;
}

/* A key no alias targets: SPIRE's by its description. */
static bool judge_unaliased(estate_key *key, const kms_key_metadata *metadata, double now_s,
                            const estate_ages *ages)
{
    if (metadata == NULL || strcmp(metadata->key_manager, "CUSTOMER") != 0 ||
        !naming_split_description(metadata->description, &key->trust_domain, &key->spire_key_id))
        return false;
    if (strcmp(metadata->key_state, "PendingDeletion") == 0)
        key->verdict = ESTATE_PENDING_DELETION;
    else if (!metadata->enabled)
        key->verdict = ESTATE_DISABLED;
    else if (fleet_key_is_orphan(metadata, false, key->trust_domain, now_s,
                                 ages->orphan_key_age_ms))
        key->verdict = ESTATE_ORPHAN;
    else
        key->verdict = ESTATE_YOUNG_ORPHAN; /* ours, enabled, unaliased: only too young */
    return true;
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

static bool in_trust_domain(const estate_key *key, const char *trust_domain)
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
    return naming_description_in_trust_domain(key->description, trust_domain);
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
    size_t end;
    size_t first = index_range(index, listed->key_id, &end);
    bool spire = first < end ? judge_aliased(key, index, first, end, now_s, ages)
                             : judge_unaliased(key, listed->metadata, now_s, ages);
    copy_metadata(key, listed->metadata);
    if (!spire || !in_trust_domain(key, trust_domain)) {
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

static char *format_text(const char *format, ...) __attribute__((format(printf, 1, 2)));

static char *format_text(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *text = NULL;
    if (vasprintf(&text, format, args) < 0)
        text = NULL;
    va_end(args);
    return text;
}

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

static int plan_stale_aliases(const estate *account, const char *trust_domain,
                              const estate_ages *ages, estate_plan *plan, size_t *capacity)
{
    target_index index = {0};
    bool *deleted = calloc(account->alias_count + 1, sizeof *deleted);
    if (deleted == NULL || index_build(&index, account->aliases, account->alias_count) != 0) {
        free(deleted);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < account->alias_count && rc == 0; i++) {
        const estate_alias *alias = &account->aliases[i];
        if (!alias_is_stale(alias, trust_domain, account->now_s, ages))
            continue;
        deleted[i] = true;
        char *reason = format_text("stale alias: last updated %.1f days ago (stale after %.1f)",
                                   age_days(alias->last_updated, account->now_s),
                                   (double)ages->stale_alias_age_ms / ESTATE_DAY_MS);
        if (add_action(plan, capacity, ESTATE_DELETE_ALIAS, alias->name, alias->target, reason) ==
            NULL) {
            rc = -1;
        } else if (!still_aliased(&index, deleted, alias->target)) {
            reason =
                format_text("its alias %s was stale and no other alias targets it", alias->name);
            if (add_action(plan, capacity, ESTATE_SCHEDULE_KEY_DELETION, alias->name, alias->target,
                           reason) == NULL)
                rc = -1;
        }
    }
    free(index.order);
    free(deleted);
    return rc;
}

static int plan_orphans(const estate *account, const char *trust_domain, const estate_ages *ages,
                        estate_plan *plan, size_t *capacity)
{
    for (size_t i = 0; i < account->key_count; i++) {
        const estate_key *key = &account->keys[i];
        if (key->verdict != ESTATE_ORPHAN || key->alias != NULL ||
            !naming_description_in_trust_domain(key->description, trust_domain))
            continue;
        char *reason = format_text("orphan: no alias targets it, created %.1f days ago (orphan "
                                   "after %.1f)",
                                   age_days(key->created, account->now_s),
                                   (double)ages->orphan_key_age_ms / ESTATE_DAY_MS);
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

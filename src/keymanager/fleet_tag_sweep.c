/* Tag mode's dispose keys (fleet.h), on dispose_keys_interval:
 *
 *  1. GetResources: keys tagged spire-server-td = our trust domain (exactly)
 *     and spire-active = "true". Another server's key whose spire-last-update
 *     is stale_alias_age old (undated: created that long ago; unreadable:
 *     skipped) is described (a key pending deletion is left alone: KMS is
 *     deleting it) and its aliases listed: a key an alias still targets is
 *     live if the alias is fresh (an upstream server rolled back to alias
 *     mode refreshes aliases, not tags), and otherwise waits for the
 *     stale-alias sweep, which deletes the alias and queues the key itself.
 *     An unaliased one is queued; the deletion queue reads its aliases and
 *     tags again, tags it spire-active = "false", then schedules its deletion.
 *  2. Healing: keys tagged spire-active = "false" that are not pending
 *     deletion, unaliased, and created orphan_key_age ago (younger ones may be
 *     a GenerateKey in flight: new keys are created inactive) are queued: a
 *     crash between tagging and scheduling, or a key whose CreateKey answer
 *     was lost, ends deleted all the same.
 * Our own active keys are never judged here (the alias refresh keeps them
 * alive; leftovers are retired at Configure). A listing that fails or cannot
 * be completed judges nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/kms_truth.h"
#include "keymanager/tag_listing.h"
#include "keymanager/tag_mode.h"

#define MODULE     "fleet"
#define REASON_MAX 512

/* Every key of our trust domain tagged spire-active = active. */
static int list_tagged(const fleet_run_env *env, fleet_run_stats *stats, const char *active,
                       tagged_keys *out)
{
    tag_query query = {.trust_domain = env->options->trust_domain, .active = active};
    unsigned calls = 0;
    aws_error err = {0};
    int rc = tag_listing_find(env->options->kms, env->call, &query, out, &calls, &err);
    if (rc != 0 && err.status == AWS_ERR_ACCESS_DENIED) {
        char text[1600];
        tag_listing_denied_text(&err, text, sizeof text);
        log_write(LOG_ERROR, MODULE, "tag sweep skipped", "task", stats->task, "error", text,
                  LOG_END);
        stats->calls += calls;
        stats->failures++;
        return rc;
    }
    return fleet_counted_calls(stats, calls, rc, "GetResources", NULL, &err);
}

/* DescribeKey; false when it failed (logged) or the key is pending deletion. */
static bool describe_live_key(const fleet_run_env *env, fleet_run_stats *stats, const char *arn,
                              kms_key_metadata *key)
{
    aws_error err = {0};
    int rc = kms_describe_key(env->options->kms, env->call, arn, key, &err);
    if (fleet_counted_calls(stats, 1, rc, "DescribeKey", arn, &err) != 0)
        return false;
    return strcmp(key->key_state, "PendingDeletion") != 0;
}

/* ListAliases with the key's id. True when KMS shows no alias on the key;
 * an alias is logged with what it means. */
static bool unaliased(const fleet_run_env *env, fleet_run_stats *stats, const char *arn)
{
    kms_alias *aliases = NULL;
    size_t count = 0;
    unsigned calls = 0;
    aws_error err = {0};
    int rc =
        kms_truth_aliases_of_key(env->options->kms, env->call, arn, &aliases, &count, &calls, &err);
    if (fleet_counted_calls(stats, calls, rc, "ListAliases", arn, &err) != 0)
        return false;
    bool fresh = false;
    for (size_t i = 0; i < count; i++)
        fresh = fresh || !fleet_is_older_than(aliases[i].last_updated_date, env->now_s,
                                              env->options->stale_alias_age_ms);
    if (count > 0)
        log_write(LOG_INFO, MODULE,
                  fresh ? "key with a stale spire-last-update kept: a fresh alias targets it"
                        : "key with a stale spire-last-update kept while a stale alias targets "
                          "it: the stale-alias sweep deletes both",
                  "key_arn", arn, "alias", aliases[0].alias_name, LOG_END);
    free(aliases);
    return count == 0;
}

static void queue_key(const fleet_run_env *env, fleet_run_stats *stats, const char *arn,
                      const char *why)
{
    char reason[REASON_MAX];
    snprintf(reason, sizeof reason, "%s", why);
    if (deletion_queue_push(env->options->deletions, arn, reason)) {
        stats->disposed++;
        log_write(LOG_INFO, MODULE, "queued a key for deletion", "key_arn", arn, "reason", why,
                  LOG_END);
    }
}

/* Step 1 for one key tagged active. */
static void judge_active(const fleet_run_env *env, fleet_run_stats *stats, const tagged_key *key)
{
    const fleet_options *options = env->options;
    tags_verdict verdict = tag_mode_judge(&key->tags, options->trust_domain, options->server_id,
                                          env->now_s, options->stale_alias_age_ms);
    if (verdict == TAGS_SAY_MALFORMED) {
        log_write(LOG_WARN, MODULE, "malformed " TAG_LAST_UPDATE " tag value, skipping key",
                  "key_arn", key->arn, "value", aws_tag_set_get(&key->tags, TAG_LAST_UPDATE),
                  LOG_END);
        return;
    }
    if (verdict != TAGS_SAY_STALE && verdict != TAGS_SAY_UNDATED)
        return; /* ours, or refreshed within stale_alias_age */
    kms_key_metadata meta = {0};
    if (!describe_live_key(env, stats, key->arn, &meta))
        return;
    if (verdict == TAGS_SAY_UNDATED &&
        !tag_mode_undated_is_stale(meta.creation_date, env->now_s, options->stale_alias_age_ms))
        return;
    if (unaliased(env, stats, key->arn))
        queue_key(env, stats, key->arn,
                  verdict == TAGS_SAY_UNDATED
                      ? "tagged active without " TAG_LAST_UPDATE ", created stale_alias_age ago"
                      : "its " TAG_LAST_UPDATE " tag was not refreshed for stale_alias_age");
}

/* Step 2 for one key tagged inactive. */
static void heal_inactive(const fleet_run_env *env, fleet_run_stats *stats, const tagged_key *key)
{
    kms_key_metadata meta = {0};
    if (!describe_live_key(env, stats, key->arn, &meta))
        return;
    if (!fleet_is_older_than(meta.creation_date, env->now_s, env->options->orphan_key_age_ms))
        return; /* may be a GenerateKey in flight */
    if (unaliased(env, stats, key->arn))
        queue_key(env, stats, key->arn, "tagged inactive but not pending deletion");
}

void fleet_run_dispose_keys_via_tags(const fleet_run_env *env, fleet_run_stats *stats)
{
    tagged_keys keys;
    if (list_tagged(env, stats, "true", &keys) != 0)
        return;
    for (size_t i = 0; i < keys.count && !fleet_stopping(env); i++) {
        stats->keys_scanned++;
        judge_active(env, stats, &keys.items[i]);
    }
    tagged_keys_clear(&keys);
    if (fleet_stopping(env) || list_tagged(env, stats, "false", &keys) != 0)
        return;
    for (size_t i = 0; i < keys.count && !fleet_stopping(env); i++) {
        stats->keys_scanned++;
        heal_inactive(env, stats, &keys.items[i]);
    }
    tagged_keys_clear(&keys);
}

/* Configure's follow-up for tag-based key discovery (see tag_discovery.h). */
#include "keymanager/tag_discovery.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/kms_truth.h"
#include "keymanager/tag_mode.h"

#define MODULE "keymanager"

static void warn_failed(const char *what, const key_fetch_step *step, const aws_error *err)
{
    log_write(LOG_WARN, MODULE, what, "key_id", step->spire_id, "key_arn", step->arn, "alias_name",
              step->alias_name, "error_code", aws_error_name(err), "error", err->message, LOG_END);
}

/* Tags an aliased key of ours for tag-based discovery (SPIRE's migration). */
static void migrate(const tag_discovery_env *env, const key_fetch_step *step)
{
    char now[TAG_MODE_TIME_SIZE];
    tag_mode_format_time(fleet_kms_now_s(), now);
    kms_tag tags[TAG_MODE_SPIRE_TAGS];
    size_t count = tag_mode_key_tags(env->trust_domain, env->server_id, step->spire_id, "true", now,
                                     NULL, 0, tags);
    aws_error err;
    aws_error_clear(&err);
    if (kms_tag_resource(env->kms, env->call, step->arn, tags, count, &err) != 0) {
        warn_failed("Could not tag a key found by its alias for tag-based discovery; it is "
                    "still found by its alias",
                    step, &err);
        return;
    }
    key_cache_set_tags(env->cache, step->arn, KEY_TAGS_SPIRE);
    log_write(LOG_INFO, MODULE, "Tagged a key found by its alias for tag-based discovery", "key_id",
              step->spire_id, "key_arn", step->arn, LOG_END);
}

/* Creates or re-points the alias of a key found by its tags only. */
static void restore_alias(const tag_discovery_env *env, const key_fetch_step *step)
{
    aws_error err;
    aws_error_clear(&err);
    pthread_mutex_lock(env->alias_lock);
    int rc = step->action == FETCH_CREATE_ALIAS
                 ? kms_create_alias(env->kms, env->call, step->alias_name, step->arn, &err)
                 : kms_update_alias(env->kms, env->call, step->alias_name, step->arn, &err);
    pthread_mutex_unlock(env->alias_lock);
    if (rc != 0) {
        warn_failed("Could not restore the alias of a key found by its tags; the key is used "
                    "all the same",
                    step, &err);
        return;
    }
    log_write(LOG_INFO, MODULE, "Restored the alias of a key found by its tags", "key_id",
              step->spire_id, "key_arn", step->arn, "alias_name", step->alias_name, LOG_END);
}

/* A second key tagged active for a SPIRE key id: inactive at once (the queue
 * tags it again if this fails), then queued for deletion. */
static void retire(const tag_discovery_env *env, const key_fetch_step *step)
{
    const kms_tag inactive = {TAG_ACTIVE, "false"};
    aws_error err;
    aws_error_clear(&err);
    if (kms_tag_resource(env->kms, env->call, step->arn, &inactive, 1, &err) != 0)
        warn_failed("Could not tag a second active key inactive; the deletion queue tries again",
                    step, &err);
    char reason[300];
    snprintf(reason, sizeof reason, "a second key tagged active for key id %s", step->spire_id);
    deletion_queue_push(env->deletions, step->arn, reason);
}

static bool learn_tags(const tag_discovery_env *env)
{
    key_entry **entries = NULL;
    size_t count = 0;
    bool denied = false;
    if (key_cache_snapshot(env->cache, &entries, &count) != 0)
        return false;
    for (size_t i = 0; i < count; i++) {
        aws_tag_set tags;
        aws_error err;
        aws_error_clear(&err);
        if (kms_truth_key_tags(env->kms, env->call, entries[i]->arn, &tags, NULL, &err) != 0) {
            if (err.status == AWS_ERR_ACCESS_DENIED) {
                log_write(LOG_WARN, MODULE, TAG_DISCOVERY_LIST_TAGS_DENIED, "error", err.message,
                          LOG_END);
                denied = true;
                break;
            }
            log_write(LOG_WARN, MODULE,
                      "Could not read a key's tags; the alias refresh tries again", "key_arn",
                      entries[i]->arn, "error", err.message, LOG_END);
            continue;
        }
        bool spire = tag_mode_carries_spire_tags(&tags);
        key_entry_set_tags(entries[i], spire ? KEY_TAGS_SPIRE : KEY_TAGS_NONE);
        if (spire)
            log_write(LOG_INFO, MODULE,
                      "Key carries spire-* tags: its " TAG_LAST_UPDATE
                      " is refreshed with the alias refresh",
                      "key_id", entries[i]->spire_id, "key_arn", entries[i]->arn, LOG_END);
        aws_tag_set_clear(&tags);
    }
    key_entries_release(entries, count);
    return denied;
}

bool tag_discovery_apply(const tag_discovery_env *env, const key_fetch_plan *plan)
{
    if (!env->tag_mode)
        return learn_tags(env);
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->steps[i].action == FETCH_RETIRE)
            retire(env, &plan->steps[i]);
    }
    for (size_t i = 0; i < plan->count; i++) {
        const key_fetch_step *step = &plan->steps[i];
        if (step->action == FETCH_MIGRATE)
            migrate(env, step);
        else if (step->action == FETCH_CREATE_ALIAS || step->action == FETCH_UPDATE_ALIAS)
            restore_alias(env, step);
    }
    return false;
}

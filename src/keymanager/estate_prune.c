/* Carrying out a prune plan (estate.h) against KMS, one action at a time.
 * Before each change KMS is read again, so that nothing changed since the
 * listing (a server come back, a rotation, an operator) is undone: an alias
 * is deleted only while it still targets its key, is still stale and its
 * key's tags show no live server (as the dispose-aliases task checks); a key
 * is scheduled for deletion only while no alias targets it, it still carries
 * SPIRE's marks of the trust domain (description or spire-server-td tag), its
 * tags show no live server, and an orphan is still one by the estate's own
 * verdict (estate_judge_unaliased). Then the deletion queue's order: a key
 * tagged spire-active = "true" is tagged "false" (KMS refuses tags on a key
 * pending deletion), then ScheduleKeyDeletion. When a change fails (an error,
 * or an answer lost after KMS may have applied it), KMS is read back and the
 * result says what KMS shows; if it cannot be read, "unknown". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymanager/estate.h"
#include "common/text.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/kms_truth.h"
#include "keymanager/naming.h"
#include "keymanager/tag_mode.h"

/* KMS's time: the dates judged are KMS's (fleet_kms_now_s). */
static double kms_now(const estate_prune_options *options)
{
    return options->now_s != NULL ? options->now_s() : fleet_kms_now_s();
}

static void finish(estate_action *action, estate_result result, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(estate_action *action, estate_result result, const char *format, ...)
{
    action->result = result;
    free(action->detail);
    va_list args;
    va_start(args, format);
    action->detail = text_vformat(format, args);
    va_end(args);
}

/* "CODE: message" of a failed call, for details. */
static const char *error_text(const aws_error *err, char *out, size_t size)
{
    snprintf(out, size, "%s: %s", err->code[0] ? err->code : aws_status_name(err->status),
             err->message);
    return out;
}

/* What ListAliases(KeyId) shows now for a key. */
typedef struct {
    char first_alias[300]; /* the first alias targeting the key; "" when none */
    bool has_alias;        /* the alias asked about targets the key */
    double last_updated;   /* its LastUpdatedDate */
} key_aliases;

/* What KMS shows of the aliases that target key_id (kms_truth: every page,
 * bounded); alias_name may be NULL. */
static int aliases_of_key(const estate_prune_options *options, const char *key_id,
                          const char *alias_name, key_aliases *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    kms_alias *aliases = NULL;
    size_t count = 0;
    if (kms_truth_aliases_of_key(options->kms, options->call, key_id, &aliases, &count, NULL,
                                 err) != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (out->first_alias[0] == '\0')
            snprintf(out->first_alias, sizeof out->first_alias, "%s", aliases[i].alias_name);
        if (alias_name != NULL && strcmp(aliases[i].alias_name, alias_name) == 0) {
            out->has_alias = true;
            out->last_updated = aliases[i].last_updated_date;
        }
    }
    free(aliases);
    return 0;
}

/* ---- delete-alias ------------------------------------------------------------- */

/* The dispose-aliases task's check right before DeleteAlias: a stale alias
 * stays while its key's tags show a live server (a tag-mode server keeps the
 * key alive by spire-last-update, whatever its alias) or cannot be judged.
 * False after finishing the action. */
static bool key_tags_allow_alias_deletion(const estate_prune_options *options,
                                          estate_action *action)
{
    char why[1200];
    tag_judge judge = {.trust_domain = options->trust_domain,
                       .server_id = NULL, /* no server of ours: every server's tags count */
                       .now_s = kms_now(options),
                       .stale_age_ms = options->ages->stale_alias_age_ms};
    aws_error err = {0};
    switch (
        kms_truth_tag_liveness(options->kms, options->call, action->key_id, &judge, NULL, &err)) {
    case TAG_LIVENESS_NONE:
    case TAG_LIVENESS_RETIRE:
        return true;
    case TAG_LIVENESS_LIVE:
        finish(action, ESTATE_SKIPPED,
               "its key's tags show a server keeping it alive (spire-active, a recent "
               "spire-last-update); the alias is kept, as the plugin keeps it");
        return false;
    case TAG_LIVENESS_MALFORMED:
        finish(action, ESTATE_SKIPPED,
               "its key's spire-last-update tag is not Unix seconds; the alias is kept");
        return false;
    case TAG_LIVENESS_UNREADABLE:
    default:
        if (err.status == AWS_ERR_NOT_FOUND)
            return true; /* the key is gone: the alias names nothing */
        finish(action, ESTATE_SKIPPED,
               "could not read its key's tags (%s; kms:ListResourceTags); nothing changed",
               error_text(&err, why, sizeof why));
        return false;
    }
}

/* After a failed DeleteAlias: DescribeKey on the alias name tells whether it
 * still exists. */
static void read_back_alias(const estate_prune_options *options, estate_action *action,
                            const aws_error *failure)
{
    char what[1200], again[1200];
    error_text(failure, what, sizeof what);
    kms_key_metadata key;
    aws_error err = {0};
    if (kms_describe_key(options->kms, options->call, action->alias, &key, &err) == 0) {
        finish(action, ESTATE_FAILED, "DeleteAlias failed (%s); the alias still exists", what);
    } else if (err.status == AWS_ERR_NOT_FOUND) {
        /* Gone. Whether this run deleted it cannot be told: a NotFound may
         * answer a resend of our own DeleteAlias whose first answer was lost
         * (our retry, or libcurl's own on a dead keep-alive connection). */
        finish(action, ESTATE_DONE, "DeleteAlias answered %s; read back: the alias is gone", what);
    } else {
        finish(action, ESTATE_UNKNOWN,
               "DeleteAlias answered %s and KMS could not be read back (%s): run keys list to "
               "see whether the alias is gone",
               what, error_text(&err, again, sizeof again));
    }
}

static void delete_alias(const estate_prune_options *options, estate_action *action)
{
    char why[1200];
    key_aliases now = {0};
    aws_error err = {0};
    if (aliases_of_key(options, action->key_id, action->alias, &now, &err) != 0) {
        finish(action, ESTATE_SKIPPED, "could not re-read the alias (%s); nothing changed",
               error_text(&err, why, sizeof why));
        return;
    }
    if (!now.has_alias) {
        finish(action, ESTATE_SKIPPED,
               "the alias no longer targets key %s (deleted or moved since the listing)",
               action->key_id);
        return;
    }
    if (!fleet_alias_is_stale(action->alias, action->key_id, now.last_updated,
                              options->trust_domain, "", kms_now(options),
                              options->ages->stale_alias_age_ms)) {
        finish(action, ESTATE_SKIPPED,
               "the alias was refreshed since the listing: a live server uses it; kept");
        return;
    }
    if (!key_tags_allow_alias_deletion(options, action))
        return;
    if (kms_delete_alias(options->kms, options->call, action->alias, &err) == 0) {
        finish(action, ESTATE_DONE, "alias deleted");
        return;
    }
    read_back_alias(options, action, &err);
}

/* ---- schedule-key-deletion ---------------------------------------------------------- */

/* After a failed ScheduleKeyDeletion: the key's state tells. */
static void read_back_key(const estate_prune_options *options, estate_action *action,
                          const aws_error *failure)
{
    char what[1200], again[1200];
    error_text(failure, what, sizeof what);
    kms_key_metadata key;
    aws_error err = {0};
    if (kms_describe_key(options->kms, options->call, action->key_id, &key, &err) != 0) {
        finish(action, ESTATE_UNKNOWN,
               "ScheduleKeyDeletion answered %s and KMS could not be read back (%s): run keys "
               "list to see the key's state",
               what, error_text(&err, again, sizeof again));
    } else if (strcmp(key.key_state, "PendingDeletion") == 0) {
        finish(action, ESTATE_DONE,
               "ScheduleKeyDeletion answered %s; read back: the key is pending deletion", what);
    } else {
        finish(action, ESTATE_FAILED, "ScheduleKeyDeletion failed (%s); the key is %s", what,
               key.key_state);
    }
}

/* The checks made on the key itself and its tags; false after finishing the
 * action. */
static bool key_may_be_scheduled(const estate_prune_options *options, estate_action *action,
                                 const kms_key_metadata *key, const aws_tag_set *tags)
{
    double now_s = kms_now(options);
    if (strcmp(key->key_state, "PendingDeletion") == 0) {
        finish(action, ESTATE_ALREADY_DONE, "the key is already pending deletion");
        return false;
    }
    if (strcmp(key->key_manager, "CUSTOMER") != 0) {
        finish(action, ESTATE_SKIPPED, "not a customer managed key; kept");
        return false;
    }
    if (!estate_marked_for(key->description, tags, options->trust_domain)) {
        finish(action, ESTATE_SKIPPED,
               "neither its description \"%.200s\" nor a " TAG_SERVER_TD
               " tag marks it as SPIRE's for trust domain %s; kept",
               key->description, options->trust_domain);
        return false;
    }
    switch (estate_judge_tags(tags, key->creation_date, now_s, options->ages->stale_alias_age_ms)) {
    case ESTATE_TAGS_LIVE:
        finish(action, ESTATE_SKIPPED,
               "its tags show a server keeping it alive (spire-active, a recent "
               "spire-last-update); kept");
        return false;
    case ESTATE_TAGS_MALFORMED:
        finish(action, ESTATE_SKIPPED, "its spire-last-update tag is not Unix seconds; kept");
        return false;
    default:
        break;
    }
    estate_verdict verdict = ESTATE_ORPHAN;
    bool orphan_action = action->alias == NULL;
    if (orphan_action && (!estate_judge_unaliased(key, tags, now_s, options->ages, &verdict) ||
                          verdict != ESTATE_ORPHAN)) {
        finish(action, ESTATE_SKIPPED, "no longer an orphan (now %s, state %s); kept",
               estate_verdict_name(verdict), key->key_state);
        return false;
    }
    return true;
}

/* The key's tags (ListResourceTags: they work in every key state); false
 * after finishing the action. */
static bool read_tags(const estate_prune_options *options, estate_action *action, aws_tag_set *tags)
{
    char why[1200];
    aws_error err = {0};
    if (kms_truth_key_tags(options->kms, options->call, action->key_id, tags, NULL, &err) == 0)
        return true;
    if (err.status == AWS_ERR_NOT_FOUND)
        finish(action, ESTATE_ALREADY_DONE, "the key no longer exists");
    else
        finish(action, ESTATE_SKIPPED,
               "could not read the key's tags (%s; kms:ListResourceTags); kept",
               error_text(&err, why, sizeof why));
    return false;
}

/* spire-active = "false" before scheduling, as the deletion queue does (KMS
 * refuses tags on a key pending deletion, and a pending key must not look
 * active to discovery). When KMS refuses, the key's state tells what
 * happened; a key left tagged inactive but not scheduled is the healing
 * pass's (and the next prune's). False after finishing the action. */
static bool retire_tag(const estate_prune_options *options, estate_action *action)
{
    char why[1200];
    const kms_tag inactive = {TAG_ACTIVE, "false"};
    aws_error err = {0};
    if (kms_tag_resource(options->kms, options->call, action->key_id, &inactive, 1, &err) == 0)
        return true;
    error_text(&err, why, sizeof why);
    kms_key_metadata key;
    aws_error again = {0};
    if (err.status == AWS_ERR_NOT_FOUND) {
        finish(action, ESTATE_ALREADY_DONE, "the key no longer exists");
    } else if (kms_describe_key(options->kms, options->call, action->key_id, &key, &again) == 0 &&
               strcmp(key.key_state, "PendingDeletion") == 0) {
        finish(action, ESTATE_ALREADY_DONE,
               "tagging it " TAG_ACTIVE "=false answered %s; read back: the key is already "
               "pending deletion",
               why);
    } else {
        finish(action, ESTATE_FAILED,
               "tagging it " TAG_ACTIVE "=false failed (%s); not scheduled%s", why,
               err.status == AWS_ERR_ACCESS_DENIED
                   ? ": grant kms:TagResource (a key tagged active is tagged inactive before its "
                     "deletion)"
                   : ": run keys prune again");
    }
    return false;
}

static void schedule_deletion(const estate_prune_options *options, estate_action *action)
{
    char why[1200];
    key_aliases now = {0};
    aws_error err = {0};
    if (aliases_of_key(options, action->key_id, NULL, &now, &err) != 0) {
        finish(action, ESTATE_SKIPPED, "could not check the key's aliases (%s); kept",
               error_text(&err, why, sizeof why));
        return;
    }
    if (now.first_alias[0] != '\0') {
        finish(action, ESTATE_SKIPPED, "alias %s targets it; kept", now.first_alias);
        return;
    }
    kms_key_metadata key;
    if (kms_describe_key(options->kms, options->call, action->key_id, &key, &err) != 0) {
        if (err.status == AWS_ERR_NOT_FOUND)
            finish(action, ESTATE_ALREADY_DONE, "the key no longer exists");
        else
            finish(action, ESTATE_SKIPPED, "could not describe the key (%s); kept",
                   error_text(&err, why, sizeof why));
        return;
    }
    aws_tag_set tags;
    if (!read_tags(options, action, &tags))
        return;
    bool allowed = key_may_be_scheduled(options, action, &key, &tags);
    bool retire = tag_mode_is_active(&tags);
    aws_tag_set_clear(&tags);
    if (!allowed || (retire && !retire_tag(options, action)))
        return;
    if (kms_schedule_key_deletion(options->kms, options->call, action->key_id,
                                  options->pending_window_days, &err) == 0) {
        finish(action, ESTATE_DONE, "%sscheduled for deletion in %d days",
               retire ? "tagged " TAG_ACTIVE "=false, then " : "", options->pending_window_days);
        return;
    }
    read_back_key(options, action, &err);
}

void estate_prune_run(const estate_prune_options *options, estate_plan *plan)
{
    for (size_t i = 0; i < plan->count; i++) {
        estate_action *action = &plan->items[i];
        if (action->kind == ESTATE_DELETE_ALIAS)
            delete_alias(options, action);
        else
            schedule_deletion(options, action);
        if (options->progress != NULL)
            options->progress(options->progress_ctx, i + 1, plan->count);
    }
}

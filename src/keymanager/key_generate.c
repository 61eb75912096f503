/* GenerateKey in a state: CreateKey (with the key policy, description and
 * tags), GetPublicKey, then, under the manager's alias lock, CreateAlias or
 * UpdateAlias and the cache. When the alias step fails the alias is read
 * before anything is given up (the rule in deletion_queue.h): KMS shows it on
 * the new key -> the cache follows and GenerateKey succeeds; otherwise the new
 * key goes to the deletion queue, whose own check decides. The rotated-out
 * key is queued only after the alias points at the new key, and checked only
 * after the settle delay (see queue_rotated_out).
 *
 * Tag mode (tag_mode.h): the new key is created spire-active = "false", so a
 * GenerateKey that fails at any step (or whose CreateKey answer is lost) never
 * leaves a second active key for the SPIRE key id. Once the alias targets it,
 * still under the alias lock, the rotated-out key is tagged "false" and then
 * the new one "true" (never two active keys; the new key stays inactive if the
 * old one could not be retired: it is remembered in state->unretired, the
 * alias refresh tags it inactive again before it marks any key of ours active
 * (km_retire_rotated_out), and the deletion queue retires it before deleting
 * it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/km_state.h"
#include "keymanager/km_status.h"
#include "keymanager/kms_truth.h"
#include "keymanager/naming.h"
#include "keymanager/tag_mode.h"

#define MODULE "keymanager"

enum {
    ALIAS_READ_TIMEOUT_MS = 10000, /* reading an alias after an unknown outcome */
    TAG_WRITE_TIMEOUT_MS = 10000,  /* spire-active after the alias step */
};

/* Queues a key created by a GenerateKey that then failed before any alias
 * step (the deletion queue still checks that no alias targets it). */
static void discard_new_key(km_state *state, const char *arn, const char *step)
{
    char reason[128];
    snprintf(reason, sizeof reason, "GenerateKey failed at %s", step);
    log_write(LOG_WARN, MODULE, "Deleting key created by a failed GenerateKey", "key_arn", arn,
              "reason", reason, LOG_END);
    deletion_queue_push(state->deletions, arn, reason);
}

/* Points alias at arn: UpdateAlias when we own the alias already, else
 * CreateAlias; each falls back to the other when KMS says the alias is
 * (not) there after all (a CreateAlias whose first attempt was applied and
 * whose answer was lost is answered AlreadyExists on the retry). On failure
 * *operation names the call err belongs to. */
static int assign_alias(km_state *state, const aws_call_ctx *ctx, const char *alias, bool exists,
                        const char *arn, const char **operation, aws_error *err)
{
    aws_error_clear(err);
    *operation = exists ? "UpdateAlias" : "CreateAlias";
    int rc = exists ? kms_update_alias(state->kms, ctx, alias, arn, err)
                    : kms_create_alias(state->kms, ctx, alias, arn, err);
    if (rc == 0)
        return 0;
    aws_status fallback_when = exists ? AWS_ERR_NOT_FOUND : AWS_ERR_ALREADY_EXISTS;
    if (err->status != fallback_when)
        return -1;
    log_write(LOG_WARN, MODULE, "Alias changed outside this server; retrying the other way",
              "alias_name", alias, LOG_END);
    int first_attempts = err->attempts;
    aws_error_clear(err);
    *operation = exists ? "CreateAlias" : "UpdateAlias";
    rc = exists ? kms_create_alias(state->kms, ctx, alias, arn, err)
                : kms_update_alias(state->kms, ctx, alias, arn, err);
    err->attempts += first_attempts; /* more than one attempt: the outcome is unknown */
    return rc;
}

/* The context for reading KMS after an unknown outcome: the call's deadline
 * if it leaves time, else ALIAS_READ_TIMEOUT_MS; never the call's cancel
 * flag (a cancelled call must still read KMS before anything is given up). */
static aws_call_ctx alias_read_ctx(const aws_call_ctx *call)
{
    int64_t own = clock_monotonic_ms() + ALIAS_READ_TIMEOUT_MS;
    aws_call_ctx ctx = {.deadline_ms = call->deadline_ms > own ? call->deadline_ms : own,
                        .cancelled = NULL};
    return ctx;
}

/* The alias step failed and KMS does not show the alias on the new key (or
 * cannot be read): GenerateKey fails, and the new key goes to the deletion
 * queue, whose check (deletion_queue.h) deletes it only once KMS shows no
 * alias targets it. After an unknown outcome the check waits for KMS to
 * settle; a definite refusal was not applied, and is checked at once. */
static void give_up_new_key(km_state *state, const kms_key_metadata *meta, const char *operation,
                            bool settle, alias_verdict verdict, const aws_error *read_err,
                            km_status *status)
{
    char reason[160];
    snprintf(reason, sizeof reason, "GenerateKey failed at %s", operation);
    char cause[sizeof status->message];
    snprintf(cause, sizeof cause, "%s", status->message);
    if (verdict == ALIAS_UNREADABLE) {
        km_status_set(status, status->code,
                      "%s; KMS could not be read afterwards (DescribeKey: %s), so the new key %s "
                      "is kept until KMS shows whether the alias targets it",
                      cause, read_err->message, meta->arn);
        log_write(LOG_WARN, MODULE,
                  "Alias step outcome unknown and KMS unreadable: new key kept until KMS shows "
                  "whether the alias targets it",
                  "key_arn", meta->arn, "operation", operation, "error", read_err->message,
                  LOG_END);
    } else {
        log_write(LOG_WARN, MODULE, "Deleting key created by a failed GenerateKey", "key_arn",
                  meta->arn, "reason", reason, "kms_shows", "the alias targets another key",
                  LOG_END);
    }
    if (settle)
        deletion_queue_push_after(state->deletions, meta->arn, reason, deletion_queue_settle_ms());
    else
        deletion_queue_push(state->deletions, meta->arn, reason);
}

/* Under the alias lock: points alias at the new key. True when KMS ends up
 * showing the alias on it, even when the call's answer was lost; otherwise
 * the new key has been given up (give_up_new_key) and status says why. */
static bool point_alias_at_new_key(km_state *state, const aws_call_ctx *ctx, const char *alias,
                                   bool alias_exists, const kms_key_metadata *meta,
                                   km_status *status)
{
    const char *operation = NULL;
    aws_error err;
    if (assign_alias(state, ctx, alias, alias_exists, meta->arn, &operation, &err) == 0)
        return true;
    km_fail_aws(status, operation, &err);
    bool unknown = kms_truth_outcome_unknown(&err);
    aws_call_ctx read_ctx = alias_read_ctx(ctx);
    aws_error read_err;
    alias_verdict verdict =
        kms_truth_alias_targets(state->kms, &read_ctx, alias, meta->arn, NULL, &read_err);
    if (verdict == ALIAS_TARGETS_KEY) {
        log_write(LOG_WARN, MODULE,
                  "KMS shows the alias on the new key although the call failed (its answer was "
                  "lost); GenerateKey goes on",
                  "alias_name", alias, "key_arn", meta->arn, "operation", operation, "error",
                  status->message, LOG_END);
        km_status_ok(status);
        return true;
    }
    give_up_new_key(state, meta, operation, unknown || verdict == ALIAS_UNREADABLE, verdict,
                    &read_err, status);
    return false;
}

static int create_kms_key(km_state *state, const aws_call_ctx *ctx, const char *key_id,
                          km_key_type type, kms_key_metadata *meta, km_status *status)
{
    const char *policy = NULL;
    if (key_policy_resolve(&state->policy, state->kms, ctx, &policy, status) != 0)
        return -1;
    char *description = naming_key_description(state->trust_domain, key_id);
    if (description == NULL) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    kms_tag tags[TAG_MODE_SPIRE_TAGS + CONFIG_TAG_MODE_MAX_KEY_TAGS];
    char now[TAG_MODE_TIME_SIZE];
    kms_create_key_input input = {.key_spec = key_spec_for_type(type),
                                  .description = description,
                                  .policy = policy,
                                  .tags = state->tags,
                                  .tag_count = state->tag_count};
    if (state->tag_mode && state->tag_count <= CONFIG_TAG_MODE_MAX_KEY_TAGS) {
        tag_mode_format_time(fleet_kms_now_s(), now);
        input.tags = tags;
        input.tag_count = tag_mode_key_tags(state->trust_domain, state->server_id, key_id, "false",
                                            now, state->tags, state->tag_count, tags);
    }
    aws_error err;
    aws_error_clear(&err);
    int rc = kms_create_key(state->kms, ctx, &input, meta, &err);
    free(description);
    return rc == 0 ? 0 : km_fail_aws(status, "CreateKey", &err);
}

/* One spire-* tag write after the alias step: its own deadline, never the
 * call's cancel flag (a write we gave up on could land after a later change). */
static bool write_tags(km_state *state, const char *arn, const kms_tag *tags, size_t count,
                       const char *what)
{
    aws_call_ctx write = {.deadline_ms = clock_monotonic_ms() + TAG_WRITE_TIMEOUT_MS};
    aws_error err;
    aws_error_clear(&err);
    if (kms_tag_resource(state->kms, &write, arn, tags, count, &err) == 0)
        return true;
    log_write(LOG_WARN, MODULE, what, "key_arn", arn, "error_code", aws_error_name(&err), "error",
              err.message, LOG_END);
    return false;
}

/* Remembers a rotated-out key still tagged active (alias lock held); out of
 * memory, the deletion queue still retires it before deleting it. */
static void remember_unretired(km_state *state, const char *arn)
{
    char *copy = strdup(arn);
    char **grown = realloc(state->unretired, (state->unretired_count + 1) * sizeof *grown);
    if (copy == NULL || grown == NULL) {
        free(copy);
        if (grown != NULL)
            state->unretired = grown;
        return;
    }
    state->unretired = grown;
    state->unretired[state->unretired_count++] = copy;
}

bool km_retire_rotated_out(km_state *state)
{
    const kms_tag inactive = {TAG_ACTIVE, "false"};
    size_t kept = 0;
    for (size_t i = 0; i < state->unretired_count; i++) {
        aws_call_ctx write = {.deadline_ms = clock_monotonic_ms() + TAG_WRITE_TIMEOUT_MS};
        aws_error err;
        aws_error_clear(&err);
        int rc = kms_tag_resource(state->kms, &write, state->unretired[i], &inactive, 1, &err);
        if (rc == 0 || err.status == AWS_ERR_NOT_FOUND || err.status == AWS_ERR_INVALID_STATE) {
            free(state->unretired[i]); /* tagged, deleted, or pending deletion: retired */
            continue;
        }
        log_write(LOG_WARN, MODULE,
                  "Could not tag a rotated-out key inactive; no key of ours is tagged active "
                  "until it is",
                  "key_arn", state->unretired[i], "error_code", aws_error_name(&err), "error",
                  err.message, LOG_END);
        state->unretired[kept++] = state->unretired[i];
    }
    state->unretired_count = kept;
    return kept == 0;
}

/* Under the alias lock, once the alias targets entry's key: the rotated-out
 * key (if it carries spire-* tags) is tagged inactive, then, in tag mode and
 * only if that worked (and no earlier rotated-out key is still active), the
 * new key active. */
static void hand_over_active_tag(km_state *state, const key_entry *old, key_entry *entry)
{
    bool old_retired = true;
    if (old != NULL && (state->tag_mode || key_entry_tags(old) == KEY_TAGS_SPIRE)) {
        const kms_tag inactive = {TAG_ACTIVE, "false"};
        old_retired = write_tags(state, old->arn, &inactive, 1,
                                 "Could not tag the rotated-out key inactive; the deletion queue "
                                 "tries again before deleting it, and the new key stays inactive "
                                 "until the next alias refresh");
    }
    if (!state->tag_mode)
        return;
    if (!old_retired)
        remember_unretired(state, old->arn);
    if (!km_retire_rotated_out(state))
        return;
    char now[TAG_MODE_TIME_SIZE];
    tag_mode_format_time(fleet_kms_now_s(), now);
    const kms_tag active[] = {{TAG_ACTIVE, "true"}, {TAG_LAST_UPDATE, now}};
    write_tags(state, entry->arn, active, 2,
               "Could not tag the new key active; the next alias refresh does it");
}

/* Queues the key a rotation replaced, first checked after the settle delay,
 * not at once: a replica sharing our server id may have read the alias
 * (DescribeKey: old) just before this rotation, and its refresh write
 * (UpdateAlias to old, fleet_tasks.c, 10 s deadline) may still be on its way
 * to KMS; our alias lock does not order another process. Checked at once, old
 * could be scheduled for deletion right after the check and right before that
 * write lands, leaving the replicas' alias on a key pending deletion. Checked
 * once the write has landed, old is kept (the alias targets it) and we follow
 * the alias back. */
static void queue_rotated_out(km_state *state, const key_entry *old)
{
    deletion_queue_push_after(state->deletions, old->arn, "rotated out",
                              deletion_queue_settle_ms());
}

int km_generate_in_state(km_state *state, const aws_call_ctx *ctx, const char *key_id,
                         km_key_type type, const char *alias, km_public_key *out, km_status *status)
{
    kms_key_metadata meta;
    memset(&meta, 0, sizeof meta);
    if (create_kms_key(state, ctx, key_id, type, &meta, status) != 0)
        return -1;
    log_write(LOG_DEBUG, MODULE, "Key created", "key_arn", meta.arn, LOG_END);

    kms_public_key pub;
    memset(&pub, 0, sizeof pub);
    aws_error err;
    aws_error_clear(&err);
    if (kms_get_public_key(state->kms, ctx, meta.arn, &pub, &err) != 0) {
        discard_new_key(state, meta.arn, "GetPublicKey");
        return km_fail_aws(status, "GetPublicKey", &err);
    }
    key_entry *entry =
        key_entry_new(key_id, alias, meta.arn, meta.key_id, type, pub.der, pub.der_len);
    kms_public_key_clear(&pub);
    if (entry == NULL) {
        discard_new_key(state, meta.arn, "out of memory");
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&state->manager->alias_lock);
    bool alias_exists = key_cache_owns_alias(&state->cache, key_id, alias);
    if (!point_alias_at_new_key(state, ctx, alias, alias_exists, &meta, status)) {
        pthread_mutex_unlock(&state->manager->alias_lock);
        key_entry_release(entry);
        return -1;
    }
    key_entry_set_tags(entry, state->tag_mode ? KEY_TAGS_SPIRE : KEY_TAGS_NONE);
    bool stored = false;
    key_entry *old = key_cache_put(&state->cache, entry, &stored);
    if (stored)
        hand_over_active_tag(state, old, entry);
    pthread_mutex_unlock(&state->manager->alias_lock);
    if (!stored) {
        /* The alias now targets the new key; keep it rather than delete it. */
        key_entry_release(entry);
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    log_write(LOG_INFO, MODULE, alias_exists ? "Key rotated" : "Key generated", "key_id", key_id,
              "key_arn", meta.arn, "alias_name", alias, "fingerprint", entry->fingerprint, LOG_END);
    if (old != NULL) {
        queue_rotated_out(state, old);
        key_entry_release(old);
    }
    int rc = km_copy_public_key(entry, out, status);
    key_entry_release(entry);
    return rc;
}

/* Background queue that schedules KMS key deletion (7-day window) for keys we
 * no longer want: rotated-out keys, keys a failed GenerateKey created, keys
 * the fleet tasks pruned. Retries with backoff across KMS errors; NotFound and
 * invalid-state answers end a key's retries. Bounded (1024 keys).
 *
 * WHAT MAY BE DELETED (the rule every deleting path of the KeyManager keeps;
 * ARCHITECTURE.md repeats it). A key is scheduled for deletion, or an alias
 * deleted, only when KMS itself shows that no live server uses it; when an
 * outcome is unknown, KMS is read before deciding; when KMS cannot be read,
 * nothing is deleted.
 *  - A key (this queue, the only caller of ScheduleKeyDeletion): right before
 *    ScheduleKeyDeletion, our cache must not hold the key, ListAliases with
 *    the key's id must list no alias, of any server, under any name, and
 *    the key's tags (ListResourceTags; tag_mode.h) must not show a live
 *    server: spire-active = "true" with a spire-last-update younger than
 *    stale_alias_age (undated: created within it), or a value that does not
 *    parse, keeps the key. An alias listed: not deleted; checked again a few
 *    times (KMS is eventually consistent: a rotation's UpdateAlias may take
 *    a while to show), then dropped from the queue, and the orphan or tag
 *    sweep owns the key if it stays unaliased. Our own alias listed: the
 *    owner is told, and its cache follows the alias. KMS unreadable:
 *    retried with backoff, never deleted on a guess (one exception: in
 *    alias mode, ListResourceTags denied, the key is judged by its aliases
 *    alone, as before tags existed; logged once). A key whose tags say
 *    spire-active = "true" is tagged spire-active = "false" first (KMS
 *    refuses tags on a key pending deletion, so never after), and a failed
 *    tagging keeps it queued (alias mode, TagResource denied: scheduled
 *    untagged, as upstream leaves keys; logged once).
 *  - Tag sweep (fleet_tag_sweep.c, tag mode): another server's key whose
 *    spire-last-update is stale_alias_age old (undated: created that long
 *    ago), not pending deletion, that ListAliases shows unaliased, is queued
 *    here; a key a stale alias still targets waits for the stale-alias
 *    sweep, which deletes the alias and queues the key. An inactive key not
 *    pending deletion and created orphan_key_age ago (a crash between
 *    tagging and scheduling) is queued too.
 *  - GenerateKey whose CreateAlias/UpdateAlias ends with an unknown outcome
 *    (no answer, timeout, cancellation, 5xx after retries, any failure after
 *    a retry): the alias is read (DescribeKey on its name). It targets the
 *    new key: the cache follows KMS and GenerateKey succeeds. KMS shows
 *    another target, or cannot be read: GenerateKey fails and the new key is
 *    queued with a settle delay (deletion_queue_settle_ms), so the check
 *    above runs once KMS has settled and can be read. A definite refusal at
 *    the first attempt (AccessDenied, ...) was not applied: the key is queued
 *    at once, and still checked.
 *  - A key a rotation replaced (GenerateKey): queued once the alias points
 *    at the new key, first checked after the settle delay: a replica sharing
 *    our server id may have a refresh write re-pointing the alias at the old
 *    key still on its way to KMS (another process: our alias lock does not
 *    order it); once it has landed the check sees it.
 *  - CreateKey whose answer was lost leaves an unaliased key nobody knows:
 *    the orphan sweep's, after orphan_key_age.
 *  - Another server's stale alias (fleet_tasks.c): read again (ListAliases
 *    with its key's id) right before DeleteAlias; deleted only while KMS
 *    still shows it on the same key and not refreshed for stale_alias_age.
 *    Its key is then queued here, which checks again. A DeleteAlias with an
 *    unknown outcome queues the key too: the check decides.
 *  - An orphan (fleet_tasks.c): a key the sweep's listing shows unaliased is
 *    queued here, and the check above must show it unaliased again.
 *  - The alias refresh never deletes; it re-points an alias only to the key
 *    KMS shows it already targets, under the manager's alias lock. */
#ifndef KM_DELETION_QUEUE_H
#define KM_DELETION_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/kms.h"

typedef struct deletion_queue deletion_queue;

typedef struct {
    kms_client *kms;
    /* Whether our cache holds key_id (a key id or ARN): such a key stays. */
    bool (*is_live)(void *ctx, const char *key_id);
    /* Optional: KMS showed alias_name targeting a key we were about to delete
     * (the owner follows it when the alias is its own). call carries the
     * queue's deadline and stop flag. */
    void (*aliased)(void *ctx, const aws_call_ctx *call, const char *alias_name);
    void *ctx;
    /* Whose spire-* tags keep a key alive (copied); NULL trust_domain: tags
     * are not read. */
    const char *trust_domain;
    const char *server_id;
    int64_t stale_alias_age_ms;
    /* Tag mode: a key whose tags cannot be read is kept. Alias mode:
     * ListResourceTags denied means the key is judged by its aliases alone. */
    bool tags_required;
} deletion_queue_options;

deletion_queue *deletion_queue_start(const deletion_queue_options *options);
/* Queues key_id (a key id or ARN); reason is logged. A key already queued,
 * or being worked on, is not queued twice. False when the queue is
 * full (logged as an error naming the key). */
bool deletion_queue_push(deletion_queue *queue, const char *key_id, const char *reason);
/* Like deletion_queue_push, but the first check waits delay_ms. */
bool deletion_queue_push_after(deletion_queue *queue, const char *key_id, const char *reason,
                               int64_t delay_ms);
/* How long a key whose alias step had an unknown outcome, or a rotated-out
 * key, waits before its first check: 5 minutes, for KMS's eventual
 * consistency and alias writes still on their way; env KM_ALIAS_SETTLE_MS
 * (tests only) sets another value. */
int64_t deletion_queue_settle_ms(void);
/* Number of keys still waiting. */
size_t deletion_queue_pending(deletion_queue *queue);
/* Stops the worker (waiting at most timeout_ms for an in-flight call), logs
 * each key it could not finish, frees the queue. */
void deletion_queue_stop(deletion_queue *queue, int timeout_ms);
/* Like deletion_queue_stop, but hands each key it could not finish to
 * successor (a running queue; NULL: log them as with deletion_queue_stop). */
void deletion_queue_stop_into(deletion_queue *queue, int timeout_ms, deletion_queue *successor);

#endif

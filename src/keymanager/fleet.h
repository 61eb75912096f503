/* Fleet tasks (the spec's second half), each on its own period:
 *   refresh aliases  every refresh_aliases_interval: UpdateAlias each of our
 *                    aliases to its current target (after DescribeKey shows the
 *                    alias still points where our cache says), and refresh the
 *                    key's spire-last-update tag: in tag mode on every key
 *                    (with spire-active = "true": keep-active), in alias mode
 *                    on keys that carry spire-* tags (a tag-mode period or
 *                    peer left them). Tag mode also restores an alias of ours
 *                    that is gone. First run within 10 minutes of start.
 *   dispose aliases  every dispose_aliases_interval (both modes): aliases of
 *                    this trust domain, other servers, LastUpdatedDate older
 *                    than stale_alias_age -> read again (the alias, and the
 *                    key's tags: a key its tags keep alive keeps its alias),
 *                    DeleteAlias + queue key deletion
 *   dispose keys     every dispose_keys_interval. Alias mode: enabled keys of
 *                    this trust domain (by Description) with no alias, older
 *                    than orphan_key_age -> queue deletion. Tag mode, instead
 *                    (fleet_tag_sweep.c): other servers' keys tagged active
 *                    whose spire-last-update is stale_alias_age old, unaliased
 *                    -> queue deletion; inactive keys not pending deletion ->
 *                    queue deletion.
 * What may be deleted, and when KMS is read again first: deletion_queue.h.
 * A listing KMS does not complete (error, loop, page cap) ends the run
 * without judging anything. All tasks stop promptly on fleet_stop. */
#ifndef KM_FLEET_H
#define KM_FLEET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/kms.h"
#include "keymanager/deletion_queue.h"
#include "keymanager/key_entry.h"

typedef struct {
    char *alias_name;
    char *key_id;        /* the KMS key id (or ARN) our cache says the alias targets */
    key_tags_state tags; /* whether the key carries spire-* tags, as far as we know */
} fleet_alias;

/* Optional: the refresh read (ListResourceTags) whether one of our keys
 * carries spire-* tags; ctx is own_aliases_ctx. */
typedef void (*fleet_key_tags_fn)(void *ctx, const char *key_id, bool carries_spire_tags);

/* Fills a malloc'd snapshot of our live aliases (free with fleet_aliases_free). */
typedef int (*fleet_own_aliases_fn)(void *ctx, fleet_alias **aliases, size_t *count);

/* Optional: told when refresh finds one of our aliases now targets another key
 * (a replica sharing our server id rotated it); the alias is left as it is.
 * Called outside the alias lock; call carries the fleet's stop flag. */
typedef void (*fleet_alias_moved_fn)(void *ctx, const aws_call_ctx *call, const char *alias_name,
                                     const char *new_key_id);

/* Optional, tag mode, called under alias_lock: whether every key of ours a
 * rotation left tagged active has been tagged inactive (it tries again);
 * until then the refresh tags no key active. ctx is own_aliases_ctx. */
typedef bool (*fleet_retire_rotated_fn)(void *ctx);

typedef struct {
    kms_client *kms;
    deletion_queue *deletions;
    const char *trust_domain;
    const char *server_id;
    fleet_own_aliases_fn own_aliases;
    void *own_aliases_ctx;
    int64_t refresh_aliases_interval_ms;
    int64_t dispose_aliases_interval_ms;
    int64_t dispose_keys_interval_ms;
    int64_t stale_alias_age_ms;
    int64_t orphan_key_age_ms;
    /* Added by the fleet work; zero/NULL when unused. Intervals and ages <= 0
     * take the spec's defaults (6h, 24h, 48h, 336h, 48h). */
    fleet_alias_moved_fn alias_moved;
    void *alias_moved_ctx;
    /* Optional: held by the owner while it re-points one of our aliases and
     * updates its cache; refresh holds it from reading the cached target to
     * UpdateAlias, so it never re-points an alias that was just rotated. */
    pthread_mutex_t *alias_lock;
    /* Tag-based key discovery (tag_mode.h): keep-active with the refresh, the
     * tag sweep instead of the orphan sweep. */
    bool tag_mode;
    fleet_key_tags_fn key_tags_learnt;
    fleet_retire_rotated_fn retire_rotated;
    bool list_tags_denied; /* Configure found kms:ListResourceTags denied (logged there) */
} fleet_options;

typedef struct fleet fleet;

fleet *fleet_start(const fleet_options *options);
/* Stops all tasks (an in-flight KMS call finishes first) and frees. */
void fleet_stop(fleet *fleet);
void fleet_aliases_free(fleet_alias *aliases, size_t count);

#endif

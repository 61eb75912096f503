/* Fleet tasks (the spec's second half), each on its own period:
 *   refresh aliases  every refresh_aliases_interval: UpdateAlias each of our
 *                    aliases to its current target (after DescribeKey shows the
 *                    alias still points where our cache says)
 *   dispose aliases  every dispose_aliases_interval: aliases of this trust
 *                    domain, other servers, LastUpdatedDate older than
 *                    stale_alias_age -> read again, DeleteAlias + queue key
 *                    deletion
 *   dispose keys     every dispose_keys_interval: enabled keys of this trust
 *                    domain (by Description) with no alias, older than
 *                    orphan_key_age -> queue deletion
 * What may be deleted, and when KMS is read again first: deletion_queue.h.
 * A listing KMS does not complete (error, loop, page cap) ends the run
 * without judging anything. All tasks stop promptly on fleet_stop. */
#ifndef KM_FLEET_H
#define KM_FLEET_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/kms.h"
#include "keymanager/deletion_queue.h"

typedef struct {
    char *alias_name;
    char *key_id; /* the KMS key id (or ARN) our cache says the alias targets */
} fleet_alias;

/* Fills a malloc'd snapshot of our live aliases (free with fleet_aliases_free). */
typedef int (*fleet_own_aliases_fn)(void *ctx, fleet_alias **aliases, size_t *count);

/* Optional: told when refresh finds one of our aliases now targets another key
 * (a replica sharing our server id rotated it); the alias is left as it is.
 * Called outside the alias lock; call carries the fleet's stop flag. */
typedef void (*fleet_alias_moved_fn)(void *ctx, const aws_call_ctx *call, const char *alias_name,
                                     const char *new_key_id);

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
} fleet_options;

typedef struct fleet fleet;

fleet *fleet_start(const fleet_options *options);
/* Stops all tasks (an in-flight KMS call finishes first) and frees. */
void fleet_stop(fleet *fleet);
void fleet_aliases_free(fleet_alias *aliases, size_t count);

#endif

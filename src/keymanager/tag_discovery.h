/* What Configure does once the keys are loaded (key_fetch.h) and the deletion
 * queue runs, for tag-based key discovery:
 *   tag mode   carries the load's plan out: an aliased key without our tags is
 *              tagged (migration: spire-server-td, spire-server-id,
 *              spire-active = "true", spire-key-id, spire-last-update); the
 *              alias of a key found by its tags only is created or re-pointed;
 *              a second key tagged active for a SPIRE key id is tagged
 *              spire-active = "false" and queued for deletion (the queue checks
 *              again). Retiring comes before migrating: never two active keys.
 *   alias mode reads each loaded key's tags (ListResourceTags) to learn which
 *              carry spire-* tags (left by a tag-mode period or peer): the
 *              alias refresh then keeps their spire-last-update fresh, so
 *              tag-mode peers never take this live server for a dead one.
 * Every failure is logged and start-up goes on (a denied ListResourceTags is
 * named once, with the permission to grant). */
#ifndef KM_TAG_DISCOVERY_H
#define KM_TAG_DISCOVERY_H

#include <pthread.h>
#include <stdbool.h>

#include "aws/kms.h"
#include "keymanager/deletion_queue.h"
#include "keymanager/key_entry.h"
#include "keymanager/key_fetch.h"

typedef struct {
    kms_client *kms;
    const char *trust_domain;
    const char *server_id;
    bool tag_mode;
    key_cache *cache;
    deletion_queue *deletions;
    pthread_mutex_t *alias_lock; /* held while an alias is written */
    const aws_call_ctx *call;    /* Configure's deadline and cancel flag */
} tag_discovery_env;

/* Returns true when ListResourceTags was denied (alias mode): the fleet need
 * not ask again. */
bool tag_discovery_apply(const tag_discovery_env *env, const key_fetch_plan *plan);

/* The log line for a denied ListResourceTags (alias mode). */
#define TAG_DISCOVERY_LIST_TAGS_DENIED                                                             \
    "kms:ListResourceTags is denied: keys that carry spire-* tags (from tag-based key "            \
    "discovery) cannot be recognised, so their spire-last-update is not refreshed and "            \
    "tag-mode servers may take this server's keys for a dead server's; grant "                     \
    "kms:ListResourceTags"

#endif

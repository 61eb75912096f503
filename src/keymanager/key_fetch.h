/* Start-up load of this server's keys from KMS: every alias under
 * alias/SPIRE_SERVER/{TD}/{SERVER_ID}/ (ListAliases, all pages; a listing KMS
 * does not complete is an error, see listing.h) and, in tag mode, every key
 * tagged spire-server-td = TD, spire-server-id = SERVER_ID, spire-active =
 * "true" (GetResources, tag_listing.h), then DescribeKey and GetPublicKey for
 * each (bounded parallelism). A key that is disabled, pending deletion, gone
 * or of a spec SPIRE cannot use is logged and left out (an alias of ours on
 * it is remembered as stale). Transient KMS failures (throttling, outage,
 * transport, timeouts) are retried with backoff until the deadline.
 *
 * Tag mode, per SPIRE key id: the key our alias targets wins (the alias is
 * what replicas sharing our server id follow, and what the deletion queue
 * checks); without a usable alias, the newest tagged key wins and its alias
 * is restored. The result carries the changes to make once the deletion
 * queue runs (tag_discovery.c): an aliased key without our tags is tagged
 * (migration), a restored alias is written, a second key tagged active for
 * the same SPIRE key id is tagged inactive and queued for deletion. */
#ifndef KM_KEY_FETCH_H
#define KM_KEY_FETCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "aws/call_ctx.h"
#include "aws/kms.h"
#include "keymanager/key_entry.h"
#include "keymanager/keymanager.h"

typedef struct {
    kms_client *kms;
    const char *trust_domain;
    const char *server_id;
    bool tag_mode;     /* also find keys by their tags */
    aws_call_ctx call; /* the Configure call's cancellation; retries stop at its deadline */
} key_fetch_options;

typedef enum {
    FETCH_MIGRATE,      /* an aliased key without our tags: tag it */
    FETCH_CREATE_ALIAS, /* a tagged key whose alias is gone: create it */
    FETCH_UPDATE_ALIAS, /* a tagged key whose alias targets an unusable key: re-point it */
    FETCH_RETIRE,       /* a second key tagged active for a SPIRE key id: tag inactive, delete */
} key_fetch_action;

typedef struct {
    key_fetch_action action;
    char *spire_id;
    char *alias_name;
    char *arn;
} key_fetch_step;

/* What Configure does after the load (tag_discovery_apply). */
typedef struct {
    key_fetch_step *steps;
    size_t count;
} key_fetch_plan;

void key_fetch_plan_clear(key_fetch_plan *plan);

/* How long start-up keeps retrying an unreachable KMS: env
 * KM_STARTUP_RETRY_MS (for tests), default 30000. */
int64_t key_fetch_startup_budget_ms(void);

/* Fills the (empty) cache and plan. Returns 0, or -1 with status naming the
 * cause (FAILED_PRECONDITION naming tag:GetResources when it is denied). */
int key_fetch_all(const key_fetch_options *options, key_cache *cache, key_fetch_plan *plan,
                  km_status *status);

#endif

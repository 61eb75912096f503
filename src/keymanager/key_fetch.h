/* Start-up load of this server's keys from KMS: every alias under
 * alias/SPIRE_SERVER/{TD}/{SERVER_ID}/ (ListAliases, all pages; a listing KMS
 * does not complete is an error, see listing.h), then
 * DescribeKey and GetPublicKey for each (bounded parallelism). A key that is
 * disabled, pending deletion, gone or of a spec SPIRE cannot use is logged
 * and left out (its alias is remembered as stale). Transient KMS failures
 * (throttling, outage, transport, timeouts) are retried with backoff until
 * the deadline. */
#ifndef KM_KEY_FETCH_H
#define KM_KEY_FETCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "aws/kms.h"
#include "keymanager/key_entry.h"
#include "keymanager/keymanager.h"

typedef struct {
    kms_client *kms;
    const char *trust_domain;
    const char *server_id;
    int64_t deadline_ms;          /* CLOCK_MONOTONIC; retries stop here */
    const atomic_bool *cancelled; /* the Configure call's; may be NULL */
} key_fetch_options;

/* How long start-up keeps retrying an unreachable KMS: env
 * KM_STARTUP_RETRY_MS (for tests), default 30000. */
int64_t key_fetch_startup_budget_ms(void);

/* Fills the (empty) cache. Returns 0, or -1 with status naming the cause. */
int key_fetch_all(const key_fetch_options *options, key_cache *cache, km_status *status);

#endif

/* The KeyManager (see keymanager.h): the manager and the lifetime of its
 * states (acquire, release, replace, destroy), Configure's swap, shutdown, and
 * GenerateKey's entry. The configured world (KMS client, key cache, server
 * id, deletion queue, fleet tasks) lives in one refcounted km_state, built by
 * state_build.c; each call takes a reference to the current state, so a
 * reconfigure swaps in a new state while in-flight calls finish with the old
 * one. Whoever drops a state's last reference hands it to the manager's
 * teardown thread (teardown.h): stopping its background work blocks, and the
 * gRPC completion-queue thread and the HTTP event thread must not. Configure
 * and GenerateKey are serialised by one lock; reads and signing only take the
 * state reference and the cache's read lock. The alias lock belongs to the manager, not to a
 * state, so a replaced state's fleet thread can never re-point an alias
 * around a rotation of the new state. GenerateKey's steps are in
 * key_generate.c, following an alias to the key KMS shows in alias_follow.c,
 * SignData in sign_data.c, GetPublicKey(s) in public_keys.c (all on km_state.h),
 * km_status from AWS errors in km_status.c. What may be deleted: deletion_queue.h. */
#include "keymanager/keymanager.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "keymanager/key_fetch.h"
#include "keymanager/km_state.h"
#include "keymanager/km_status.h"
#include "keymanager/naming.h"
#include "keymanager/serverid.h"
#include "keymanager/signing.h"
#include "keymanager/tag_discovery.h"

#define MODULE "keymanager"

enum { DELETION_STOP_TIMEOUT_MS = 5000 };

/* ---- helpers ---------------------------------------------------------------- */

int km_fail_not_configured(km_status *status)
{
    km_status_set(status, GRPC_STATUS_FAILED_PRECONDITION, "not configured");
    return -1;
}

/* ---- state lifetime ----------------------------------------------------------- */

static km_state *state_acquire(km_manager *manager);
static void state_release(km_state *state);

km_state *km_state_acquire(km_manager *manager) { return state_acquire(manager); }

void km_state_release(km_state *state) { state_release(state); }

static km_state *state_acquire(km_manager *manager)
{
    pthread_mutex_lock(&manager->lock);
    km_state *state = manager->current;
    if (state != NULL)
        atomic_fetch_add(&state->refs, 1);
    pthread_mutex_unlock(&manager->lock);
    return state;
}

static void state_release(km_state *state);

/* Stops the state's background work; keys its deletion queue could not
 * finish go to the manager's current state, if there is one. */
static void state_destroy(km_state *state)
{
    if (state->fleet != NULL)
        fleet_stop(state->fleet);
    if (state->deletions != NULL) {
        km_state *successor = state->manager != NULL ? state_acquire(state->manager) : NULL;
        if (successor == state) {
            state_release(successor);
            successor = NULL;
        }
        deletion_queue_stop_into(state->deletions, DELETION_STOP_TIMEOUT_MS,
                                 successor != NULL ? successor->deletions : NULL);
        if (successor != NULL)
            state_release(successor);
    }
    if (state->kms != NULL)
        kms_client_free(state->kms);
    key_cache_destroy(&state->cache);
    key_policy_destroy(&state->policy);
    for (size_t i = 0; i < state->tag_count; i++) {
        free((char *)state->tags[i].key);
        free((char *)state->tags[i].value);
    }
    free(state->tags);
    for (size_t i = 0; i < state->unretired_count; i++)
        free(state->unretired[i]);
    free(state->unretired);
    free(state->trust_domain);
    free(state->server_id);
    free(state);
}

void km_state_destroy(km_state *state) { state_destroy(state); }

static void state_destroy_object(void *object) { state_destroy(object); }

/* Drops a reference; the last one hands the state to the teardown thread,
 * whatever thread this is. */
static void state_release(km_state *state)
{
    if (state == NULL || atomic_fetch_sub(&state->refs, 1) != 1)
        return;
    state->teardown_entry.run = state_destroy_object;
    state->teardown_entry.object = state;
    teardown_hand_over(state->manager->reaper, &state->teardown_entry);
}

/* Swaps in new_state (NULL: unconfigure) and releases the old one, retired
 * first so that its background work leaves our aliases alone. */
static void state_replace(km_manager *manager, km_state *new_state)
{
    pthread_mutex_lock(&manager->lock);
    km_state *old = manager->current;
    manager->current = new_state;
    pthread_mutex_unlock(&manager->lock);
    if (old != NULL)
        atomic_store(&old->retired, true);
    state_release(old);
}

km_manager *km_new(void)
{
    km_manager *manager = calloc(1, sizeof *manager);
    if (manager == NULL)
        return NULL;
    manager->reaper = teardown_start();
    if (manager->reaper == NULL) {
        free(manager);
        return NULL;
    }
    pthread_mutex_init(&manager->lock, NULL);
    pthread_mutex_init(&manager->change_lock, NULL);
    pthread_mutex_init(&manager->alias_lock, NULL);
    return manager;
}

int km_configure(km_manager *manager, const aws_call_ctx *call, const plugin_config *config,
                 km_status *status)
{
    pthread_mutex_lock(&manager->change_lock);
    km_state *state = km_state_build(manager, call, config, status);
    if (state != NULL) {
        size_t keys = key_cache_count(&state->cache);
        char count[32];
        snprintf(count, sizeof count, "%zu", keys);
        log_write(LOG_INFO, MODULE, "Configured", "trust_domain", state->trust_domain, "server_id",
                  state->server_id, "keys", count, "key_discovery",
                  state->tag_mode ? "tags and aliases" : "aliases", "kms_endpoint",
                  kms_client_endpoint(state->kms), LOG_END);
        state_replace(manager, state);
        km_status_ok(status);
    }
    pthread_mutex_unlock(&manager->change_lock);
    return state != NULL ? 0 : -1;
}

bool km_is_configured(km_manager *manager)
{
    pthread_mutex_lock(&manager->lock);
    bool configured = manager->current != NULL;
    pthread_mutex_unlock(&manager->lock);
    return configured;
}

void km_shutdown(km_manager *manager)
{
    if (manager == NULL)
        return;
    pthread_mutex_lock(&manager->change_lock);
    state_replace(manager, NULL);
    pthread_mutex_unlock(&manager->change_lock);
    teardown_drain(manager->reaper); /* every replaced state's work stopped */
}

void km_free(km_manager *manager)
{
    if (manager == NULL)
        return;
    km_shutdown(manager);
    teardown_stop(manager->reaper);
    pthread_mutex_destroy(&manager->lock);
    pthread_mutex_destroy(&manager->change_lock);
    pthread_mutex_destroy(&manager->alias_lock);
    free(manager);
}

/* ---- generate (key_generate.c) ------------------------------------------------------- */

int km_generate_key(km_manager *manager, const aws_call_ctx *call, const char *key_id,
                    km_key_type type, km_public_key *out, km_status *status)
{
    km_status_ok(status);
    if (key_id == NULL || key_id[0] == '\0') {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "key id is required");
        return -1;
    }
    if (type == KM_KEY_TYPE_UNSPECIFIED) {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "key type is required");
        return -1;
    }
    if (key_spec_for_type(type) == KMS_KEY_SPEC_UNKNOWN) {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "unsupported key type: %d", (int)type);
        return -1;
    }
    pthread_mutex_lock(&manager->change_lock);
    km_state *state = state_acquire(manager);
    int rc = -1;
    if (state == NULL) {
        km_fail_not_configured(status);
    } else {
        char *alias = naming_alias_for_key(state->trust_domain, state->server_id, key_id, status);
        if (alias != NULL) {
            aws_call_ctx ctx = call != NULL ? *call : (aws_call_ctx){0};
            rc = km_generate_in_state(state, &ctx, key_id, type, alias, out, status);
            free(alias);
        }
    }
    state_release(state);
    pthread_mutex_unlock(&manager->change_lock);
    return rc;
}

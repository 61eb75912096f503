/* The KeyManager (see keymanager.h). The configured world (KMS client, key
 * cache, server id, deletion queue, fleet tasks) lives in one refcounted
 * km_state; each call takes a reference to the current state, so a
 * reconfigure swaps in a new state while in-flight calls finish with the old
 * one. Whoever drops a state's last reference hands it to the manager's
 * teardown thread (teardown.h): stopping its background work blocks, and the
 * gRPC completion-queue thread and the HTTP event thread must not. Configure
 * and GenerateKey are serialised by one lock; reads and signing only take the
 * state reference and the cache's read lock. The alias lock belongs to the manager, not to a
 * state, so a replaced state's fleet thread can never re-point an alias
 * around a rotation of the new state. GenerateKey's steps are in
 * key_generate.c, following an alias to the key KMS shows in alias_follow.c,
 * SignData in sign_data.c (all on km_state.h). What may be deleted: deletion_queue.h. */
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

enum {
    DELETION_STOP_TIMEOUT_MS = 5000,
    KMS_POOL_SIZE = 64,
};

/* ---- helpers ---------------------------------------------------------------- */

static int fail_not_configured(km_status *status)
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
    free(state->trust_domain);
    free(state->server_id);
    free(state);
}

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

/* ---- callbacks for the deletion queue and the fleet ----------------------------- */

static bool state_key_is_live(void *ctx, const char *key_id)
{
    km_state *state = ctx;
    return key_cache_targets(&state->cache, key_id);
}

/* Our aliases and their cached keys; none once the state is retired. */
static int state_own_aliases(void *ctx, fleet_alias **aliases, size_t *count)
{
    km_state *state = ctx;
    key_entry **entries = NULL;
    size_t n = 0;
    if (key_cache_snapshot(&state->cache, &entries, &n) != 0)
        return -1;
    if (atomic_load(&state->retired)) {
        key_entries_release(entries, n);
        n = 0;
        entries = NULL;
    }
    fleet_alias *list = calloc(n > 0 ? n : 1, sizeof *list);
    int rc = list == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        list[i].alias_name = strdup(entries[i]->alias_name);
        list[i].key_id = strdup(entries[i]->arn);
        list[i].tags = key_entry_tags(entries[i]);
        if (list[i].alias_name == NULL || list[i].key_id == NULL)
            rc = -1;
    }
    key_entries_release(entries, n);
    if (rc != 0) {
        fleet_aliases_free(list, n);
        return -1;
    }
    *aliases = list;
    *count = n;
    return 0;
}

/* The fleet's refresh found one of our aliases on another key. */
static void state_alias_moved(void *ctx, const aws_call_ctx *call, const char *alias_name,
                              const char *new_key_id)
{
    (void)new_key_id; /* read again under the alias lock */
    km_follow_alias(ctx, call, alias_name);
}

/* The fleet's refresh read whether one of our keys carries spire-* tags. */
static void state_key_tags_learnt(void *ctx, const char *key_id, bool carries_spire_tags)
{
    km_state *state = ctx;
    key_cache_set_tags(&state->cache, key_id, carries_spire_tags ? KEY_TAGS_SPIRE : KEY_TAGS_NONE);
}

/* The deletion queue found an alias on a key it was about to delete. */
static void state_alias_listed(void *ctx, const aws_call_ctx *call, const char *alias_name)
{
    km_follow_alias(ctx, call, alias_name);
}

/* ---- configure ----------------------------------------------------------------- */

/* The server id from key_identifier_value, or the server id file (malloc'd). */
static char *load_server_id(const plugin_config *config, km_status *status)
{
    if (config->key_identifier_value != NULL) {
        char *id = strdup(config->key_identifier_value);
        if (id == NULL)
            km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return id;
    }
    if (config->key_identifier_file == NULL) {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT,
                      "configuration requires key_metadata_file, key_identifier_file or "
                      "key_identifier_value");
        return NULL;
    }
    char id[SERVERID_LEN + 1];
    char error[1000];
    if (serverid_load_or_create(config->key_identifier_file, id, error, sizeof error) != 0) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "%s", error);
        return NULL;
    }
    char *copy = strdup(id);
    if (copy == NULL)
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
    return copy;
}

static kms_client *new_kms_client(const plugin_config *config, km_status *status)
{
    aws_client_config client_config = {
        .region = config->region,
        .endpoint = config->endpoint,
        .ca_bundle = config->ca_bundle,
        .use_fips_endpoint = config->use_fips_endpoint,
        .access_key_id = config->access_key_id,
        .secret_access_key = config->secret_access_key,
        .max_attempts = config->max_attempts,
        .pool_size = KMS_POOL_SIZE,
    };
    aws_error err;
    aws_error_clear(&err);
    kms_client *client = kms_client_new(&client_config, &err);
    if (client == NULL)
        km_status_set(status, GRPC_STATUS_INTERNAL, "failed to create KMS client: %s", err.message);
    return client;
}

static int copy_tags(km_state *state, const plugin_config *config, km_status *status)
{
    if (config->key_tag_count == 0)
        return 0;
    state->tags = calloc(config->key_tag_count, sizeof *state->tags);
    if (state->tags == NULL)
        goto oom;
    for (size_t i = 0; i < config->key_tag_count; i++) {
        state->tags[i].key = strdup(config->key_tags[i].key);
        state->tags[i].value = strdup(config->key_tags[i].value);
        state->tag_count = i + 1;
        if (state->tags[i].key == NULL || state->tags[i].value == NULL)
            goto oom;
    }
    return 0;
oom:
    km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
    return -1;
}

static int start_deletion_queue(km_state *state, km_status *status)
{
    deletion_queue_options deletion_options = {.kms = state->kms,
                                               .is_live = state_key_is_live,
                                               .aliased = state_alias_listed,
                                               .ctx = state,
                                               .trust_domain = state->trust_domain,
                                               .server_id = state->server_id,
                                               .stale_alias_age_ms = state->stale_alias_age_ms,
                                               .tags_required = state->tag_mode};
    state->deletions = deletion_queue_start(&deletion_options);
    if (state->deletions == NULL) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "failed to start the key deletion queue");
        return -1;
    }
    return 0;
}

static int start_fleet(km_state *state, const plugin_config *config, km_status *status)
{
    fleet_options options = {
        .kms = state->kms,
        .deletions = state->deletions,
        .trust_domain = state->trust_domain,
        .server_id = state->server_id,
        .own_aliases = state_own_aliases,
        .own_aliases_ctx = state,
        .refresh_aliases_interval_ms = config->refresh_aliases_interval_ms,
        .dispose_aliases_interval_ms = config->dispose_aliases_interval_ms,
        .dispose_keys_interval_ms = config->dispose_keys_interval_ms,
        .stale_alias_age_ms = config->stale_alias_age_ms,
        .orphan_key_age_ms = config->orphan_key_age_ms,
        .alias_moved = state_alias_moved,
        .alias_moved_ctx = state,
        .alias_lock = &state->manager->alias_lock,
        .tag_mode = state->tag_mode,
        .key_tags_learnt = state_key_tags_learnt,
        .list_tags_denied = state->list_tags_denied,
    };
    state->fleet = fleet_start(&options);
    if (state->fleet == NULL) {
        km_status_set(status, GRPC_STATUS_INTERNAL,
                      "failed to start the alias and key upkeep tasks");
        return -1;
    }
    return 0;
}

/* When start-up key loading must give up: the start-up budget, or the
 * Configure call's own deadline when that comes first. */
static int64_t startup_deadline_ms(const aws_call_ctx *call)
{
    int64_t budget = clock_monotonic_ms() + key_fetch_startup_budget_ms();
    if (call != NULL && call->deadline_ms > 0 && call->deadline_ms < budget)
        return call->deadline_ms;
    return budget;
}

/* Loads our keys from KMS, starts the deletion queue, then carries out what
 * tag-based discovery asks for (tag_discovery.h). */
static int load_keys(km_state *state, const aws_call_ctx *call, km_status *status)
{
    aws_call_ctx ctx = {.deadline_ms = startup_deadline_ms(call),
                        .cancelled = call != NULL ? call->cancelled : NULL};
    key_fetch_options fetch = {.kms = state->kms,
                               .trust_domain = state->trust_domain,
                               .server_id = state->server_id,
                               .tag_mode = state->tag_mode,
                               .call = ctx};
    key_fetch_plan plan = {0};
    int rc = key_fetch_all(&fetch, &state->cache, &plan, status);
    if (rc == 0)
        rc = start_deletion_queue(state, status);
    if (rc == 0) {
        tag_discovery_env env = {.kms = state->kms,
                                 .trust_domain = state->trust_domain,
                                 .server_id = state->server_id,
                                 .tag_mode = state->tag_mode,
                                 .cache = &state->cache,
                                 .deletions = state->deletions,
                                 .alias_lock = &state->manager->alias_lock,
                                 .call = &ctx};
        state->list_tags_denied = tag_discovery_apply(&env, &plan);
    }
    key_fetch_plan_clear(&plan);
    return rc;
}

/* A new state with keys loaded from KMS, or NULL with status set. */
static km_state *state_build(km_manager *manager, const aws_call_ctx *call,
                             const plugin_config *config, km_status *status)
{
    km_state *state = calloc(1, sizeof *state);
    if (state == NULL) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return NULL;
    }
    state->manager = manager;
    atomic_init(&state->refs, 1);
    atomic_init(&state->retired, false);
    key_cache_init(&state->cache);
    key_policy_init(&state->policy, config->key_policy);
    state->trust_domain = strdup(config->trust_domain != NULL ? config->trust_domain : "");
    if (state->trust_domain == NULL || state->trust_domain[0] == '\0') {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "trust domain is required");
        goto fail;
    }
    state->tag_mode = config->enable_tag_based_key_discovery;
    state->stale_alias_age_ms = config->stale_alias_age_ms;
    state->server_id = load_server_id(config, status);
    if (state->server_id == NULL || copy_tags(state, config, status) != 0)
        goto fail;
    log_write(LOG_DEBUG, MODULE, "Loaded server id", "server_id", state->server_id, LOG_END);
    state->kms = new_kms_client(config, status);
    if (state->kms == NULL)
        goto fail;
    if (load_keys(state, call, status) != 0 || start_fleet(state, config, status) != 0)
        goto fail;
    return state;
fail:
    state_destroy(state);
    return NULL;
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
    km_state *state = state_build(manager, call, config, status);
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

/* ---- public keys ------------------------------------------------------------------ */

int km_copy_public_key(const key_entry *entry, km_public_key *out, km_status *status)
{
    memset(out, 0, sizeof *out);
    out->id = strdup(entry->spire_id);
    out->pkix = malloc(entry->pkix_len);
    if (out->id == NULL || out->pkix == NULL) {
        km_public_key_clear(out);
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    memcpy(out->pkix, entry->pkix, entry->pkix_len);
    out->pkix_len = entry->pkix_len;
    out->type = entry->type;
    memcpy(out->fingerprint, entry->fingerprint, sizeof out->fingerprint);
    return 0;
}

int km_get_public_key(km_manager *manager, const char *key_id, km_public_key *out,
                      km_status *status)
{
    km_status_ok(status);
    if (key_id == NULL || key_id[0] == '\0') {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "key id is required");
        return -1;
    }
    km_state *state = state_acquire(manager);
    if (state == NULL)
        return fail_not_configured(status);
    key_entry *entry = key_cache_get(&state->cache, key_id);
    state_release(state);
    if (entry == NULL) {
        km_status_set(status, GRPC_STATUS_NOT_FOUND, "key \"%s\" not found", key_id);
        return -1;
    }
    int rc = km_copy_public_key(entry, out, status);
    key_entry_release(entry);
    return rc;
}

int km_get_public_keys(km_manager *manager, km_public_key **keys, size_t *count, km_status *status)
{
    km_status_ok(status);
    *keys = NULL;
    *count = 0;
    km_state *state = state_acquire(manager);
    if (state == NULL)
        return fail_not_configured(status);
    key_entry **entries = NULL;
    size_t n = 0;
    int rc = key_cache_snapshot(&state->cache, &entries, &n);
    state_release(state);
    if (rc != 0) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    km_public_key *list = calloc(n > 0 ? n : 1, sizeof *list);
    for (size_t i = 0; list != NULL && i < n; i++) {
        if (km_copy_public_key(entries[i], &list[i], status) != 0) {
            km_public_keys_free(list, i);
            list = NULL;
        }
    }
    key_entries_release(entries, n);
    if (list == NULL) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    *keys = list;
    *count = n;
    return 0;
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
        fail_not_configured(status);
    } else {
        char error[512];
        char *alias = naming_alias_for_key(state->trust_domain, state->server_id, key_id, error,
                                           sizeof error);
        if (alias == NULL) {
            km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "%s", error);
        } else {
            aws_call_ctx ctx = call != NULL ? *call : (aws_call_ctx){0};
            rc = km_generate_in_state(state, &ctx, key_id, type, alias, out, status);
            free(alias);
        }
    }
    state_release(state);
    pthread_mutex_unlock(&manager->change_lock);
    return rc;
}

/* ---- result helpers ------------------------------------------------------------------ */

void km_public_key_clear(km_public_key *key)
{
    if (key == NULL)
        return;
    free(key->id);
    free(key->pkix);
    memset(key, 0, sizeof *key);
}

void km_public_keys_free(km_public_key *keys, size_t count)
{
    for (size_t i = 0; keys != NULL && i < count; i++)
        km_public_key_clear(&keys[i]);
    free(keys);
}

void km_signature_clear(km_signature *signature)
{
    if (signature == NULL)
        return;
    free(signature->signature);
    memset(signature, 0, sizeof *signature);
}

/* Configure's new state (km_state_build, km_state.h): the server id, the KMS
 * client, the operator's tags, the start-up fetch of our keys, the deletion
 * queue and the fleet tasks; and the callbacks through which the deletion
 * queue and the fleet read and update the state they belong to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "keymanager/key_fetch.h"
#include "keymanager/km_state.h"
#include "keymanager/km_status.h"
#include "keymanager/serverid.h"
#include "keymanager/tag_discovery.h"

#define MODULE "keymanager"

enum { KMS_POOL_SIZE = 64 };

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

/* The fleet's refresh, under the alias lock, before it tags a key active. */
static bool state_retire_rotated(void *ctx) { return km_retire_rotated_out(ctx); }

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
    if (serverid_load_or_create(config->key_identifier_file, id, status) != 0)
        return NULL;
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
        .retire_rotated = state_retire_rotated,
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

km_state *km_state_build(km_manager *manager, const aws_call_ctx *call, const plugin_config *config,
                         km_status *status)
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
    km_state_destroy(state);
    return NULL;
}

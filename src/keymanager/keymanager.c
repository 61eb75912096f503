/* The KeyManager (see keymanager.h). The configured world (KMS client, key
 * cache, server id, deletion queue, fleet tasks) lives in one refcounted
 * km_state; each call takes a reference to the current state, so a
 * reconfigure swaps in a new state while in-flight calls finish with the old
 * one, which is released (its background work stopped) by its last user.
 * Configure and GenerateKey are serialised by one lock; reads and signing
 * only take the state reference and the cache's read lock. */
#include "keymanager/keymanager.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "keymanager/deletion_queue.h"
#include "keymanager/fleet.h"
#include "keymanager/key_fetch.h"
#include "keymanager/key_entry.h"
#include "keymanager/key_policy.h"
#include "keymanager/km_status.h"
#include "keymanager/naming.h"
#include "keymanager/serverid.h"
#include "keymanager/signing.h"

#define MODULE "keymanager"

enum {
    DELETION_STOP_TIMEOUT_MS = 5000,
    ALIAS_FOLLOW_TIMEOUT_MS = 30000,
    KMS_POOL_SIZE = 64,
};

typedef struct km_state km_state;

struct km_manager {
    pthread_mutex_t lock;        /* guards current */
    pthread_mutex_t change_lock; /* serialises configure and GenerateKey */
    km_state *current;
};

struct km_state {
    atomic_int refs;
    km_manager *manager;
    kms_client *kms;
    char *trust_domain;
    char *server_id;
    key_cache cache;
    key_policy policy;
    kms_tag *tags;
    size_t tag_count;
    deletion_queue *deletions;
    fleet *fleet;
    /* Held while one of our aliases is re-pointed (GenerateKey) or refreshed
     * (fleet), so a refresh never re-points an alias a rotation just moved. */
    pthread_mutex_t alias_lock;
};

/* ---- helpers ---------------------------------------------------------------- */

static void status_ok(km_status *status)
{
    status->code = KM_OK;
    status->message[0] = '\0';
}

static int fail_not_configured(km_status *status)
{
    km_status_set(status, KM_FAILED_PRECONDITION, "not configured");
    return -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static kms_key_spec key_spec_for(km_key_type type)
{
    switch (type) {
    case KM_KEY_TYPE_EC_P256:
        return KMS_KEY_SPEC_ECC_NIST_P256;
    case KM_KEY_TYPE_EC_P384:
        return KMS_KEY_SPEC_ECC_NIST_P384;
    case KM_KEY_TYPE_RSA_2048:
        return KMS_KEY_SPEC_RSA_2048;
    case KM_KEY_TYPE_RSA_4096:
        return KMS_KEY_SPEC_RSA_4096;
    default:
        return KMS_KEY_SPEC_UNKNOWN;
    }
}

/* ---- state lifetime ----------------------------------------------------------- */

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
    pthread_mutex_destroy(&state->alias_lock);
    for (size_t i = 0; i < state->tag_count; i++) {
        free((char *)state->tags[i].key);
        free((char *)state->tags[i].value);
    }
    free(state->tags);
    free(state->trust_domain);
    free(state->server_id);
    free(state);
}

static void state_release(km_state *state)
{
    if (state != NULL && atomic_fetch_sub(&state->refs, 1) == 1)
        state_destroy(state);
}

/* Swaps in new_state (NULL: unconfigure) and releases the old one. */
static void state_replace(km_manager *manager, km_state *new_state)
{
    pthread_mutex_lock(&manager->lock);
    km_state *old = manager->current;
    manager->current = new_state;
    pthread_mutex_unlock(&manager->lock);
    state_release(old);
}

/* ---- callbacks for the deletion queue and the fleet ----------------------------- */

static bool state_key_is_live(void *ctx, const char *key_id)
{
    km_state *state = ctx;
    return key_cache_targets(&state->cache, key_id);
}

static int state_own_aliases(void *ctx, fleet_alias **aliases, size_t *count)
{
    km_state *state = ctx;
    key_entry **entries = NULL;
    size_t n = 0;
    if (key_cache_snapshot(&state->cache, &entries, &n) != 0)
        return -1;
    fleet_alias *list = calloc(n > 0 ? n : 1, sizeof *list);
    int rc = list == NULL ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        list[i].alias_name = strdup(entries[i]->alias_name);
        list[i].key_id = strdup(entries[i]->arn);
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

/* The entry whose alias is alias_name, referenced; NULL if none. */
static key_entry *entry_for_alias(km_state *state, const char *alias_name)
{
    key_entry **entries = NULL;
    size_t n = 0;
    if (key_cache_snapshot(&state->cache, &entries, &n) != 0)
        return NULL;
    key_entry *found = NULL;
    for (size_t i = 0; found == NULL && i < n; i++) {
        if (strcmp(entries[i]->alias_name, alias_name) == 0)
            found = key_entry_ref(entries[i]);
    }
    key_entries_release(entries, n);
    return found;
}

/* The fleet found one of our aliases re-pointed (a replica sharing our
 * server id rotated it): follow it, so we sign with the key SPIRE now has.
 * The replaced key is the replica's to delete. */
static void state_alias_moved(void *ctx, const char *alias_name, const char *new_key_id)
{
    km_state *state = ctx;
    key_entry *old = entry_for_alias(state, alias_name);
    if (old == NULL || strcmp(old->kms_key_id, new_key_id) == 0) {
        key_entry_release(old);
        return;
    }
    aws_call_ctx call = {.deadline_ms = now_ms() + ALIAS_FOLLOW_TIMEOUT_MS};
    kms_key_metadata meta;
    kms_public_key pub;
    memset(&meta, 0, sizeof meta);
    memset(&pub, 0, sizeof pub);
    aws_error err;
    aws_error_clear(&err);
    key_entry *entry = NULL;
    if (kms_describe_key(state->kms, &call, new_key_id, &meta, &err) == 0 && meta.enabled &&
        meta.key_spec == key_spec_for(old->type) &&
        kms_get_public_key(state->kms, &call, meta.arn, &pub, &err) == 0)
        entry = key_entry_new(old->spire_id, alias_name, meta.arn, meta.key_id, old->type, pub.der,
                              pub.der_len);
    kms_public_key_clear(&pub);
    if (entry == NULL) {
        log_write(LOG_WARN, MODULE, "Could not follow our alias to its new key", "alias_name",
                  alias_name, "key_arn", new_key_id, "error", err.message, LOG_END);
        key_entry_release(old);
        return;
    }
    bool stored = false;
    key_entry_release(key_cache_put(&state->cache, entry, &stored));
    if (stored)
        log_write(LOG_INFO, MODULE, "Following our alias to the key it now targets", "key_id",
                  entry->spire_id, "key_arn", entry->arn, "fingerprint", entry->fingerprint,
                  LOG_END);
    key_entry_release(entry);
    key_entry_release(old);
}

/* ---- configure ----------------------------------------------------------------- */

/* The server id from key_identifier_value, or the server id file (malloc'd). */
static char *load_server_id(const plugin_config *config, km_status *status)
{
    if (config->key_identifier_value != NULL) {
        char *id = strdup(config->key_identifier_value);
        if (id == NULL)
            km_status_set(status, KM_INTERNAL, "out of memory");
        return id;
    }
    if (config->key_identifier_file == NULL) {
        km_status_set(status, KM_INVALID_ARGUMENT,
                      "configuration requires key_metadata_file, key_identifier_file or "
                      "key_identifier_value");
        return NULL;
    }
    char id[SERVERID_LEN + 1];
    char error[1000];
    if (serverid_load_or_create(config->key_identifier_file, id, error, sizeof error) != 0) {
        km_status_set(status, KM_INTERNAL, "%s", error);
        return NULL;
    }
    char *copy = strdup(id);
    if (copy == NULL)
        km_status_set(status, KM_INTERNAL, "out of memory");
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
        km_status_set(status, KM_INTERNAL, "failed to create KMS client: %s", err.message);
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
    km_status_set(status, KM_INTERNAL, "out of memory");
    return -1;
}

static int start_background_work(km_state *state, const plugin_config *config, km_status *status)
{
    state->deletions = deletion_queue_start(state->kms, state_key_is_live, state);
    if (state->deletions == NULL) {
        km_status_set(status, KM_INTERNAL, "failed to start the key deletion queue");
        return -1;
    }
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
        .alias_lock = &state->alias_lock,
    };
    state->fleet = fleet_start(&options);
    if (state->fleet == NULL) {
        km_status_set(status, KM_INTERNAL, "failed to start the alias and key upkeep tasks");
        return -1;
    }
    return 0;
}

/* When start-up key loading must give up: the start-up budget, or the
 * Configure call's own deadline when that comes first. */
static int64_t startup_deadline_ms(const km_call *call)
{
    int64_t budget = now_ms() + key_fetch_startup_budget_ms();
    if (call != NULL && call->deadline_ms > 0 && call->deadline_ms < budget)
        return call->deadline_ms;
    return budget;
}

/* A new state with keys loaded from KMS, or NULL with status set. */
static km_state *state_build(km_manager *manager, const km_call *call, const plugin_config *config,
                             km_status *status)
{
    km_state *state = calloc(1, sizeof *state);
    if (state == NULL) {
        km_status_set(status, KM_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&state->alias_lock, NULL);
    atomic_init(&state->refs, 1);
    key_cache_init(&state->cache);
    key_policy_init(&state->policy, config->key_policy);
    state->trust_domain = strdup(config->trust_domain != NULL ? config->trust_domain : "");
    if (state->trust_domain == NULL || state->trust_domain[0] == '\0') {
        km_status_set(status, KM_INVALID_ARGUMENT, "trust domain is required");
        goto fail;
    }
    state->server_id = load_server_id(config, status);
    if (state->server_id == NULL || copy_tags(state, config, status) != 0)
        goto fail;
    log_write(LOG_DEBUG, MODULE, "Loaded server id", "server_id", state->server_id, LOG_END);
    state->kms = new_kms_client(config, status);
    if (state->kms == NULL)
        goto fail;
    key_fetch_options fetch = {.kms = state->kms,
                               .trust_domain = state->trust_domain,
                               .server_id = state->server_id,
                               .deadline_ms = startup_deadline_ms(call),
                               .cancelled = call != NULL ? call->cancelled : NULL};
    if (key_fetch_all(&fetch, &state->cache, status) != 0)
        goto fail;
    if (start_background_work(state, config, status) != 0)
        goto fail;
    state->manager = manager;
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
    pthread_mutex_init(&manager->lock, NULL);
    pthread_mutex_init(&manager->change_lock, NULL);
    return manager;
}

int km_configure(km_manager *manager, const km_call *call, const plugin_config *config,
                 km_status *status)
{
    pthread_mutex_lock(&manager->change_lock);
    km_state *state = state_build(manager, call, config, status);
    if (state != NULL) {
        size_t keys = key_cache_count(&state->cache);
        char count[32];
        snprintf(count, sizeof count, "%zu", keys);
        log_write(LOG_INFO, MODULE, "Configured", "trust_domain", state->trust_domain, "server_id",
                  state->server_id, "keys", count, "kms_endpoint", kms_client_endpoint(state->kms),
                  LOG_END);
        state_replace(manager, state);
        status_ok(status);
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
}

void km_free(km_manager *manager)
{
    if (manager == NULL)
        return;
    km_shutdown(manager);
    pthread_mutex_destroy(&manager->lock);
    pthread_mutex_destroy(&manager->change_lock);
    free(manager);
}

/* ---- public keys ------------------------------------------------------------------ */

static int copy_public_key(const key_entry *entry, km_public_key *out, km_status *status)
{
    memset(out, 0, sizeof *out);
    out->id = strdup(entry->spire_id);
    out->pkix = malloc(entry->pkix_len);
    if (out->id == NULL || out->pkix == NULL) {
        km_public_key_clear(out);
        km_status_set(status, KM_INTERNAL, "out of memory");
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
    status_ok(status);
    if (key_id == NULL || key_id[0] == '\0') {
        km_status_set(status, KM_INVALID_ARGUMENT, "key id is required");
        return -1;
    }
    km_state *state = state_acquire(manager);
    if (state == NULL)
        return fail_not_configured(status);
    key_entry *entry = key_cache_get(&state->cache, key_id);
    state_release(state);
    if (entry == NULL) {
        km_status_set(status, KM_NOT_FOUND, "key \"%s\" not found", key_id);
        return -1;
    }
    int rc = copy_public_key(entry, out, status);
    key_entry_release(entry);
    return rc;
}

int km_get_public_keys(km_manager *manager, km_public_key **keys, size_t *count, km_status *status)
{
    status_ok(status);
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
        km_status_set(status, KM_INTERNAL, "out of memory");
        return -1;
    }
    km_public_key *list = calloc(n > 0 ? n : 1, sizeof *list);
    for (size_t i = 0; list != NULL && i < n; i++) {
        if (copy_public_key(entries[i], &list[i], status) != 0) {
            km_public_keys_free(list, i);
            list = NULL;
        }
    }
    key_entries_release(entries, n);
    if (list == NULL) {
        km_status_set(status, KM_INTERNAL, "out of memory");
        return -1;
    }
    *keys = list;
    *count = n;
    return 0;
}

/* ---- generate --------------------------------------------------------------------- */

/* Queues a key created by a GenerateKey that then failed. */
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
 * (not) there after all. */
static int assign_alias(km_state *state, const aws_call_ctx *ctx, const char *alias, bool exists,
                        const char *arn, km_status *status)
{
    aws_error err;
    aws_error_clear(&err);
    int rc = exists ? kms_update_alias(state->kms, ctx, alias, arn, &err)
                    : kms_create_alias(state->kms, ctx, alias, arn, &err);
    if (rc == 0)
        return 0;
    aws_status fallback_when = exists ? AWS_ERR_NOT_FOUND : AWS_ERR_ALREADY_EXISTS;
    if (err.status != fallback_when)
        return km_fail_aws(status, exists ? "UpdateAlias" : "CreateAlias", &err);
    log_write(LOG_WARN, MODULE, "Alias changed outside this server; retrying the other way",
              "alias_name", alias, LOG_END);
    aws_error_clear(&err);
    rc = exists ? kms_create_alias(state->kms, ctx, alias, arn, &err)
                : kms_update_alias(state->kms, ctx, alias, arn, &err);
    return rc == 0 ? 0 : km_fail_aws(status, exists ? "CreateAlias" : "UpdateAlias", &err);
}

static int create_kms_key(km_state *state, const aws_call_ctx *ctx, const char *key_id,
                          km_key_type type, kms_key_metadata *meta, km_status *status)
{
    const char *policy = NULL;
    if (key_policy_resolve(&state->policy, state->kms, ctx, &policy, status) != 0)
        return -1;
    char *description = naming_key_description(state->trust_domain, key_id);
    if (description == NULL) {
        km_status_set(status, KM_INTERNAL, "out of memory");
        return -1;
    }
    kms_create_key_input input = {.key_spec = key_spec_for(type),
                                  .description = description,
                                  .policy = policy,
                                  .tags = state->tags,
                                  .tag_count = state->tag_count};
    aws_error err;
    aws_error_clear(&err);
    int rc = kms_create_key(state->kms, ctx, &input, meta, &err);
    free(description);
    return rc == 0 ? 0 : km_fail_aws(status, "CreateKey", &err);
}

static int generate_in_state(km_state *state, const aws_call_ctx *ctx, const char *key_id,
                             km_key_type type, const char *alias, km_public_key *out,
                             km_status *status)
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
        km_status_set(status, KM_INTERNAL, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&state->alias_lock);
    bool alias_exists = key_cache_owns_alias(&state->cache, key_id, alias);
    if (assign_alias(state, ctx, alias, alias_exists, meta.arn, status) != 0) {
        pthread_mutex_unlock(&state->alias_lock);
        discard_new_key(state, meta.arn, alias_exists ? "UpdateAlias" : "CreateAlias");
        key_entry_release(entry);
        return -1;
    }
    bool stored = false;
    key_entry *old = key_cache_put(&state->cache, entry, &stored);
    pthread_mutex_unlock(&state->alias_lock);
    if (!stored) {
        /* The alias now targets the new key; keep it rather than delete it. */
        key_entry_release(entry);
        km_status_set(status, KM_INTERNAL, "out of memory");
        return -1;
    }
    log_write(LOG_INFO, MODULE, alias_exists ? "Key rotated" : "Key generated", "key_id", key_id,
              "key_arn", meta.arn, "alias_name", alias, "fingerprint", entry->fingerprint, LOG_END);
    if (old != NULL) {
        deletion_queue_push(state->deletions, old->arn, "rotated out");
        key_entry_release(old);
    }
    int rc = copy_public_key(entry, out, status);
    key_entry_release(entry);
    return rc;
}

int km_generate_key(km_manager *manager, const km_call *call, const char *key_id, km_key_type type,
                    km_public_key *out, km_status *status)
{
    status_ok(status);
    if (key_id == NULL || key_id[0] == '\0') {
        km_status_set(status, KM_INVALID_ARGUMENT, "key id is required");
        return -1;
    }
    if (type == KM_KEY_TYPE_UNSPECIFIED) {
        km_status_set(status, KM_INVALID_ARGUMENT, "key type is required");
        return -1;
    }
    if (key_spec_for(type) == KMS_KEY_SPEC_UNKNOWN) {
        km_status_set(status, KM_INVALID_ARGUMENT, "unsupported key type: %d", (int)type);
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
            km_status_set(status, KM_INVALID_ARGUMENT, "%s", error);
        } else {
            aws_call_ctx ctx = {.deadline_ms = call != NULL ? call->deadline_ms : 0,
                                .cancelled = call != NULL ? call->cancelled : NULL};
            rc = generate_in_state(state, &ctx, key_id, type, alias, out, status);
            free(alias);
        }
    }
    state_release(state);
    pthread_mutex_unlock(&manager->change_lock);
    return rc;
}

/* ---- sign ---------------------------------------------------------------------------- */

/* Signs with entry's key; 0, or -1 with err set. */
static int sign_with(km_state *state, const aws_call_ctx *ctx, const key_entry *entry,
                     const uint8_t *data, size_t data_len, const char *algorithm, km_signature *out,
                     aws_error *err)
{
    aws_error_clear(err);
    if (kms_sign(state->kms, ctx, entry->arn, data, data_len, algorithm, &out->signature,
                 &out->signature_len, err) != 0)
        return -1;
    memcpy(out->key_fingerprint, entry->fingerprint, sizeof out->key_fingerprint);
    return 0;
}

/* True when KMS refused a key that a concurrent rotation has replaced. */
static bool rotated_away(km_state *state, const key_entry *used, const aws_error *err,
                         key_entry **current)
{
    *current = NULL;
    if (err->status != AWS_ERR_INVALID_STATE && err->status != AWS_ERR_DISABLED &&
        err->status != AWS_ERR_NOT_FOUND)
        return false;
    *current = key_cache_get(&state->cache, used->spire_id);
    if (*current != NULL && *current != used)
        return true;
    key_entry_release(*current);
    *current = NULL;
    return false;
}

static int sign_in_state(km_state *state, const km_call *call, key_entry *entry,
                         const uint8_t *data, size_t data_len, const km_signer_opts *opts,
                         km_signature *out, km_status *status)
{
    signing_choice choice;
    char error[512];
    if (!signing_choose(entry->type, opts, &choice, error, sizeof error)) {
        km_status_set(status, KM_INVALID_ARGUMENT, "%s", error);
        return -1;
    }
    if (data_len != choice.digest_len) {
        km_status_set(status, KM_INVALID_ARGUMENT,
                      "data is %zu bytes long; a %s digest is %zu bytes", data_len,
                      signing_hash_name(opts->hash), choice.digest_len);
        return -1;
    }
    aws_call_ctx ctx = {.deadline_ms = call != NULL ? call->deadline_ms : 0,
                        .cancelled = call != NULL ? call->cancelled : NULL};
    aws_error err;
    if (sign_with(state, &ctx, entry, data, data_len, choice.algorithm, out, &err) == 0)
        return 0;
    key_entry *current = NULL;
    if (!rotated_away(state, entry, &err, &current))
        return km_fail_aws(status, "Sign", &err);
    /* The key was rotated out (and queued for deletion) while we signed:
     * sign with its successor, whose fingerprint the answer then names. */
    int rc = -1;
    if (signing_choose(current->type, opts, &choice, error, sizeof error) &&
        choice.digest_len == data_len)
        rc = sign_with(state, &ctx, current, data, data_len, choice.algorithm, out, &err);
    key_entry_release(current);
    return rc == 0 ? 0 : km_fail_aws(status, "Sign", &err);
}

int km_sign_data(km_manager *manager, const km_call *call, const char *key_id, const uint8_t *data,
                 size_t data_len, const km_signer_opts *opts, km_signature *out, km_status *status)
{
    status_ok(status);
    memset(out, 0, sizeof *out);
    if (key_id == NULL || key_id[0] == '\0') {
        km_status_set(status, KM_INVALID_ARGUMENT, "key id is required");
        return -1;
    }
    if (opts == NULL) {
        km_status_set(status, KM_INVALID_ARGUMENT, "signer opts is required");
        return -1;
    }
    km_state *state = state_acquire(manager);
    if (state == NULL)
        return fail_not_configured(status);
    int rc = -1;
    key_entry *entry = key_cache_get(&state->cache, key_id);
    if (entry == NULL)
        km_status_set(status, KM_NOT_FOUND, "key \"%s\" not found", key_id);
    else
        rc = sign_in_state(state, call, entry, data, data_len, opts, out, status);
    key_entry_release(entry);
    state_release(state);
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

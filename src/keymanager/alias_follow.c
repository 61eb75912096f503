/* Following one of our aliases to the key KMS shows it targets: a replica
 * sharing our server id rotated it (possibly to another key type: SPIRE's
 * ca_key_type changed during a rolling restart), or an alias write of ours
 * whose answer was lost landed after all. km_follow_alias reads the alias
 * again under the manager's alias lock, compares with the cache and loads the
 * new key whatever its type; it does nothing in a retired state, and logs
 * the reason whenever it cannot follow. The replaced key is not queued: the
 * rotating side owns it, and the orphan sweep takes it if it stays unaliased. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "keymanager/km_state.h"
#include "keymanager/naming.h"
#include "keymanager/signing.h"

#define MODULE "keymanager"

/* Why following an alias failed, for the log: "OPERATION failed: CODE: message". */
static void kms_failure_text(const char *operation, const aws_error *err, char *why, size_t size)
{
    snprintf(why, size, "%s failed: %s: %s", operation, aws_error_name(err), err->message);
}

/* The entry for the key meta describes behind our alias, whatever its type
 * (a replica may have rotated to another ca_key_type); NULL with why set. */
static key_entry *load_followed_key(km_state *state, const aws_call_ctx *call, const char *spire_id,
                                    const char *alias_name, const kms_key_metadata *meta, char *why,
                                    size_t why_size)
{
    if (!meta->enabled) {
        snprintf(why, why_size, "the key is %s", meta->key_state[0] ? meta->key_state : "disabled");
        return NULL;
    }
    km_key_type type = key_type_for_spec(meta->key_spec);
    if (type == KM_KEY_TYPE_UNSPECIFIED) {
        snprintf(why, why_size, "the key's spec is not one SPIRE uses");
        return NULL;
    }
    kms_public_key pub;
    memset(&pub, 0, sizeof pub);
    aws_error err;
    aws_error_clear(&err);
    if (kms_get_public_key(state->kms, call, meta->arn, &pub, &err) != 0) {
        kms_failure_text("GetPublicKey", &err, why, why_size);
        return NULL;
    }
    key_entry *entry =
        key_entry_new(spire_id, alias_name, meta->arn, meta->key_id, type, pub.der, pub.der_len);
    kms_public_key_clear(&pub);
    if (entry == NULL)
        snprintf(why, why_size, "out of memory");
    return entry;
}

static void log_followed(const key_entry *entry, const key_entry *previous)
{
    log_write(LOG_INFO, MODULE, "Following our alias to the key it now targets", "key_id",
              entry->spire_id, "alias_name", entry->alias_name, "key_arn", entry->arn, "key_type",
              signing_key_type_name(entry->type), "fingerprint", entry->fingerprint,
              "previous_key_arn", previous != NULL ? previous->arn : "", "previous_key_type",
              previous != NULL ? signing_key_type_name(previous->type) : "", LOG_END);
}

/* Under the manager's alias lock: reads where alias_name points now and, when
 * our cache holds another key for spire_id (or none), follows it. */
static void follow_locked(km_state *state, const aws_call_ctx *call, const char *alias_name,
                          const char *spire_id)
{
    char why[1300];
    kms_key_metadata meta;
    memset(&meta, 0, sizeof meta);
    aws_error err;
    aws_error_clear(&err);
    if (kms_describe_key(state->kms, call, alias_name, &meta, &err) != 0) {
        kms_failure_text("DescribeKey on the alias", &err, why, sizeof why);
        log_write(LOG_WARN, MODULE, "Could not follow our alias to its new key", "alias_name",
                  alias_name, "reason", why, LOG_END);
        return;
    }
    key_entry *cached = key_cache_get(&state->cache, spire_id);
    if (cached != NULL && key_entry_names(cached, meta.key_id)) {
        key_entry_release(cached); /* the cache already holds what KMS shows */
        return;
    }
    key_entry *entry = load_followed_key(state, call, spire_id, alias_name, &meta, why, sizeof why);
    bool stored = false;
    if (entry != NULL)
        key_entry_release(key_cache_put(&state->cache, entry, &stored));
    if (!stored && entry != NULL)
        snprintf(why, sizeof why, "out of memory");
    if (stored)
        log_followed(entry, cached);
    else
        log_write(LOG_WARN, MODULE, "Could not follow our alias to its new key", "alias_name",
                  alias_name, "key_arn", meta.arn, "reason", why, "cached_key_arn",
                  cached != NULL ? cached->arn : "", LOG_END);
    key_entry_release(entry);
    key_entry_release(cached);
}

void km_follow_alias(km_state *state, const aws_call_ctx *call, const char *alias_name)
{
    char *server_id = NULL;
    char *spire_id = NULL;
    if (!naming_parse_alias(alias_name, state->trust_domain, &server_id, &spire_id))
        return;
    bool ours = strcmp(server_id, state->server_id) == 0;
    free(server_id);
    if (ours) {
        pthread_mutex_lock(&state->manager->alias_lock);
        if (!atomic_load(&state->retired))
            follow_locked(state, call, alias_name, spire_id);
        pthread_mutex_unlock(&state->manager->alias_lock);
    }
    free(spire_id);
}

/* Refcounted key entries and the key cache (see key_entry.h). */
#include "keymanager/key_entry.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"

void key_fingerprint(const uint8_t *data, size_t len, char out[65])
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(data, len, digest);
    hex_encode(digest, sizeof digest, out);
}

km_key_type key_type_for_spec(kms_key_spec spec)
{
    switch (spec) {
    case KMS_KEY_SPEC_ECC_NIST_P256:
        return KM_KEY_TYPE_EC_P256;
    case KMS_KEY_SPEC_ECC_NIST_P384:
        return KM_KEY_TYPE_EC_P384;
    case KMS_KEY_SPEC_RSA_2048:
        return KM_KEY_TYPE_RSA_2048;
    case KMS_KEY_SPEC_RSA_4096:
        return KM_KEY_TYPE_RSA_4096;
    default:
        return KM_KEY_TYPE_UNSPECIFIED;
    }
}

kms_key_spec key_spec_for_type(km_key_type type)
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

static void entry_free(key_entry *entry)
{
    free(entry->spire_id);
    free(entry->alias_name);
    free(entry->arn);
    free(entry->kms_key_id);
    free(entry->pkix);
    free(entry);
}

key_entry *key_entry_new(const char *spire_id, const char *alias_name, const char *arn,
                         const char *kms_key_id, km_key_type type, const uint8_t *pkix,
                         size_t pkix_len)
{
    key_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return NULL;
    atomic_init(&entry->refs, 1);
    atomic_init(&entry->spire_tags, KEY_TAGS_UNKNOWN);
    entry->spire_id = strdup(spire_id);
    entry->alias_name = strdup(alias_name);
    entry->arn = strdup(arn);
    entry->kms_key_id = strdup(kms_key_id);
    entry->pkix = malloc(pkix_len > 0 ? pkix_len : 1);
    if (entry->spire_id == NULL || entry->alias_name == NULL || entry->arn == NULL ||
        entry->kms_key_id == NULL || entry->pkix == NULL) {
        entry_free(entry);
        return NULL;
    }
    memcpy(entry->pkix, pkix, pkix_len);
    entry->pkix_len = pkix_len;
    entry->type = type;
    key_fingerprint(pkix, pkix_len, entry->fingerprint);
    return entry;
}

key_entry *key_entry_ref(key_entry *entry)
{
    atomic_fetch_add(&entry->refs, 1);
    return entry;
}

void key_entry_release(key_entry *entry)
{
    if (entry != NULL && atomic_fetch_sub(&entry->refs, 1) == 1)
        entry_free(entry);
}

void key_entries_release(key_entry **entries, size_t count)
{
    for (size_t i = 0; entries != NULL && i < count; i++)
        key_entry_release(entries[i]);
    free(entries);
}

void key_cache_init(key_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    pthread_rwlock_init(&cache->lock, NULL);
}

void key_cache_destroy(key_cache *cache)
{
    key_entries_release(cache->entries, cache->count);
    for (size_t i = 0; i < cache->stale_count; i++)
        free(cache->stale_aliases[i]);
    free(cache->stale_aliases);
    pthread_rwlock_destroy(&cache->lock);
    memset(cache, 0, sizeof *cache);
}

/* Caller holds the lock. */
static size_t find_locked(const key_cache *cache, const char *spire_id)
{
    for (size_t i = 0; i < cache->count; i++) {
        if (strcmp(cache->entries[i]->spire_id, spire_id) == 0)
            return i;
    }
    return cache->count;
}

key_entry *key_cache_get(key_cache *cache, const char *spire_id)
{
    pthread_rwlock_rdlock(&cache->lock);
    size_t index = find_locked(cache, spire_id);
    key_entry *entry = index < cache->count ? key_entry_ref(cache->entries[index]) : NULL;
    pthread_rwlock_unlock(&cache->lock);
    return entry;
}

/* Caller holds the write lock. */
static void forget_stale_locked(key_cache *cache, const char *alias_name)
{
    for (size_t i = 0; i < cache->stale_count; i++) {
        if (strcmp(cache->stale_aliases[i], alias_name) == 0) {
            free(cache->stale_aliases[i]);
            cache->stale_aliases[i] = cache->stale_aliases[--cache->stale_count];
            return;
        }
    }
}

key_entry *key_cache_put(key_cache *cache, key_entry *entry, bool *stored)
{
    key_entry *old = NULL;
    *stored = true;
    pthread_rwlock_wrlock(&cache->lock);
    size_t index = find_locked(cache, entry->spire_id);
    if (index < cache->count) {
        old = cache->entries[index];
        cache->entries[index] = key_entry_ref(entry);
    } else {
        key_entry **grown = realloc(cache->entries, (cache->count + 1) * sizeof *grown);
        if (grown == NULL) {
            *stored = false;
        } else {
            cache->entries = grown;
            cache->entries[cache->count++] = key_entry_ref(entry);
        }
    }
    if (*stored)
        forget_stale_locked(cache, entry->alias_name);
    pthread_rwlock_unlock(&cache->lock);
    return old;
}

void key_cache_add_stale_alias(key_cache *cache, const char *alias_name)
{
    char *copy = strdup(alias_name);
    if (copy == NULL)
        return;
    pthread_rwlock_wrlock(&cache->lock);
    char **grown = realloc(cache->stale_aliases, (cache->stale_count + 1) * sizeof *grown);
    if (grown != NULL) {
        cache->stale_aliases = grown;
        cache->stale_aliases[cache->stale_count++] = copy;
        copy = NULL;
    }
    pthread_rwlock_unlock(&cache->lock);
    free(copy);
}

bool key_cache_owns_alias(key_cache *cache, const char *spire_id, const char *alias_name)
{
    pthread_rwlock_rdlock(&cache->lock);
    bool owned = find_locked(cache, spire_id) < cache->count;
    for (size_t i = 0; !owned && i < cache->stale_count; i++)
        owned = strcmp(cache->stale_aliases[i], alias_name) == 0;
    pthread_rwlock_unlock(&cache->lock);
    return owned;
}

bool key_entry_names(const key_entry *entry, const char *key_id)
{
    if (strcmp(entry->arn, key_id) == 0 || strcmp(entry->kms_key_id, key_id) == 0)
        return true;
    size_t id_len = strlen(key_id);
    size_t uuid_len = strlen(entry->kms_key_id);
    return uuid_len > 0 && id_len > uuid_len + 4 &&
           strcmp(key_id + id_len - uuid_len, entry->kms_key_id) == 0 &&
           strncmp(key_id + id_len - uuid_len - 4, "key/", 4) == 0;
}

bool key_cache_targets(key_cache *cache, const char *key_id)
{
    pthread_rwlock_rdlock(&cache->lock);
    bool live = false;
    for (size_t i = 0; !live && i < cache->count; i++)
        live = key_entry_names(cache->entries[i], key_id);
    pthread_rwlock_unlock(&cache->lock);
    return live;
}

int key_cache_snapshot(key_cache *cache, key_entry ***entries, size_t *count)
{
    pthread_rwlock_rdlock(&cache->lock);
    key_entry **copy = calloc(cache->count > 0 ? cache->count : 1, sizeof *copy);
    size_t n = copy != NULL ? cache->count : 0;
    for (size_t i = 0; i < n; i++)
        copy[i] = key_entry_ref(cache->entries[i]);
    pthread_rwlock_unlock(&cache->lock);
    if (copy == NULL)
        return -1;
    *entries = copy;
    *count = n;
    return 0;
}

size_t key_cache_count(key_cache *cache)
{
    pthread_rwlock_rdlock(&cache->lock);
    size_t count = cache->count;
    pthread_rwlock_unlock(&cache->lock);
    return count;
}

key_tags_state key_entry_tags(const key_entry *entry)
{
    return (key_tags_state)atomic_load(&entry->spire_tags);
}

void key_entry_set_tags(key_entry *entry, key_tags_state state)
{
    atomic_store(&entry->spire_tags, (int)state);
}

bool key_cache_set_tags(key_cache *cache, const char *key_id, key_tags_state state)
{
    pthread_rwlock_rdlock(&cache->lock);
    bool found = false;
    for (size_t i = 0; i < cache->count; i++) {
        if (key_entry_names(cache->entries[i], key_id)) {
            key_entry_set_tags(cache->entries[i], state);
            found = true;
        }
    }
    pthread_rwlock_unlock(&cache->lock);
    return found;
}

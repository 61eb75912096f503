/* The key cache: SPIRE key id -> the KMS key its alias targets, with the
 * public key. Entries are immutable and refcounted, so a caller keeps using
 * the entry it looked up while a rotation replaces it in the cache. The
 * cache also remembers our aliases whose key was left out at load (disabled
 * or pending deletion), so that GenerateKey re-points them. */
#ifndef KM_KEY_ENTRY_H
#define KM_KEY_ENTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/kms.h"
#include "keymanager/keymanager.h"

/* Whether a key carries the spire-* tags of tag-based key discovery (the
 * only mutable fact of an entry: learnt after it is made). */
typedef enum {
    KEY_TAGS_UNKNOWN = 0, /* not read yet (or the read failed) */
    KEY_TAGS_NONE,        /* no spire-last-update nor spire-active */
    KEY_TAGS_SPIRE,       /* carries them: this server refreshes spire-last-update */
} key_tags_state;

typedef struct key_entry {
    atomic_int refs;
    atomic_int spire_tags; /* key_tags_state */
    char *spire_id;
    char *alias_name;
    char *arn;
    char *kms_key_id; /* the key's UUID */
    km_key_type type;
    uint8_t *pkix;
    size_t pkix_len;
    char fingerprint[65];
} key_entry;

/* A new entry (one reference) with the fingerprint computed and spire_tags
 * KEY_TAGS_UNKNOWN; NULL if out of memory. */
key_entry *key_entry_new(const char *spire_id, const char *alias_name, const char *arn,
                         const char *kms_key_id, km_key_type type, const uint8_t *pkix,
                         size_t pkix_len);
key_entry *key_entry_ref(key_entry *entry);
key_tags_state key_entry_tags(const key_entry *entry);
void key_entry_set_tags(key_entry *entry, key_tags_state state);
void key_entry_release(key_entry *entry); /* NULL is fine */
/* Releases each entry and frees the array. */
void key_entries_release(key_entry **entries, size_t count);
/* SPIRE key type <-> KMS key spec (KM_KEY_TYPE_UNSPECIFIED / KMS_KEY_SPEC_UNKNOWN
 * for the others). */
km_key_type key_type_for_spec(kms_key_spec spec);
kms_key_spec key_spec_for_type(km_key_type type);
/* Lowercase hex SHA-256 of data. */
void key_fingerprint(const uint8_t *data, size_t len, char out[65]);

typedef struct {
    pthread_rwlock_t lock;
    key_entry **entries;
    size_t count;
    char **stale_aliases;
    size_t stale_count;
} key_cache;

void key_cache_init(key_cache *cache);
void key_cache_destroy(key_cache *cache);
/* The entry for a SPIRE key id, with a reference for the caller; NULL if none. */
key_entry *key_cache_get(key_cache *cache, const char *spire_id);
/* Stores entry (the cache takes its own reference) and returns the entry it
 * replaced (the caller now owns that reference), or NULL. Out of memory: the
 * entry is not stored and NULL is returned with *stored false. */
key_entry *key_cache_put(key_cache *cache, key_entry *entry, bool *stored);
/* Remembers an alias of ours whose key is not usable. */
void key_cache_add_stale_alias(key_cache *cache, const char *alias_name);
/* Whether alias_name already exists in KMS as far as we know (an entry for
 * spire_id, or a stale alias). */
bool key_cache_owns_alias(key_cache *cache, const char *spire_id, const char *alias_name);
/* Whether key_id (a key UUID, its ARN, or an ARN ending "key/UUID") names entry's key. */
bool key_entry_names(const key_entry *entry, const char *key_id);
/* Whether an entry targets key_id (a key UUID or ARN). */
bool key_cache_targets(key_cache *cache, const char *key_id);
/* A referenced copy of all entries (release with key_entries_release). */
int key_cache_snapshot(key_cache *cache, key_entry ***entries, size_t *count);
/* The state of the entry the cache holds for key_id (a key id or ARN) is set
 * to state; false when no entry names that key. */
bool key_cache_set_tags(key_cache *cache, const char *key_id, key_tags_state state);
size_t key_cache_count(key_cache *cache);

#endif

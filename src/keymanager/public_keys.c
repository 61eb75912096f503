/* The read side of the KeyManager: GetPublicKey and GetPublicKeys from the
 * current state's cache (a state reference and the cache's read lock, never
 * KMS), and freeing what the API returns. */
#include <stdlib.h>
#include <string.h>

#include "keymanager/km_state.h"
#include "keymanager/km_status.h"

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
    km_state *state = km_state_acquire(manager);
    if (state == NULL)
        return km_fail_not_configured(status);
    key_entry *entry = key_cache_get(&state->cache, key_id);
    km_state_release(state);
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
    km_state *state = km_state_acquire(manager);
    if (state == NULL)
        return km_fail_not_configured(status);
    key_entry **entries = NULL;
    size_t n = 0;
    int rc = key_cache_snapshot(&state->cache, &entries, &n);
    km_state_release(state);
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

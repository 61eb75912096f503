/* Internal to the KeyManager: the manager and its refcounted configured
 * state (keymanager.c owns their lifetime), shared with the files that
 * implement GenerateKey (key_generate.c), following an alias to the key KMS
 * shows (alias_follow.c) and SignData (sign_data.c). */
#ifndef KM_KM_STATE_H
#define KM_KM_STATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "aws/kms.h"
#include "keymanager/deletion_queue.h"
#include "keymanager/fleet.h"
#include "keymanager/key_entry.h"
#include "keymanager/key_policy.h"
#include "keymanager/keymanager.h"
#include "keymanager/teardown.h"

typedef struct km_state km_state;

struct km_manager {
    pthread_mutex_t lock;        /* guards current */
    pthread_mutex_t change_lock; /* serialises configure and GenerateKey */
    /* Held while one of our aliases is re-pointed (GenerateKey), refreshed
     * (fleet) or followed (fleet, deletion queue), whichever state does it:
     * a refresh never re-points an alias a rotation just moved. */
    pthread_mutex_t alias_lock;
    teardown *reaper; /* runs state_destroy for whoever drops the last reference */
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
    kms_tag *tags; /* the operator's key_tags */
    size_t tag_count;
    bool tag_mode;              /* enable_tag_based_key_discovery (tag_mode.h) */
    int64_t stale_alias_age_ms; /* judges other servers' aliases and tags */
    bool list_tags_denied;      /* Configure found kms:ListResourceTags denied */
    deletion_queue *deletions;
    /* Tag mode: rotated-out keys a GenerateKey could not tag spire-active =
     * "false" (their ARNs); while one is left, no key of ours is tagged active
     * (km_retire_rotated_out). Guarded by manager->alias_lock. */
    char **unretired;
    size_t unretired_count;
    fleet *fleet;
    atomic_bool retired;          /* replaced: its fleet and queue leave our aliases alone */
    teardown_item teardown_entry; /* how the last user hands it to the reaper */
};

/* A reference to the current state (NULL: not configured), and its release:
 * the last one hands the state to the teardown thread, from any thread. */
km_state *km_state_acquire(km_manager *manager);
void km_state_release(km_state *state);

/* Configure's new state with our keys loaded from KMS and its background
 * work started (state_build.c), or NULL with status set. */
km_state *km_state_build(km_manager *manager, const aws_call_ctx *call, const plugin_config *config,
                         km_status *status);
/* Stops and frees a state no one else holds (one that was never published). */
void km_state_destroy(km_state *state);

/* "not configured" (FAILED_PRECONDITION); returns -1. */
int km_fail_not_configured(km_status *status);

/* A copy of entry's public key for a reply. */
int km_copy_public_key(const key_entry *entry, km_public_key *out, km_status *status);

/* Makes our cache follow what KMS shows for one of our aliases (alias_follow.c). */
void km_follow_alias(km_state *state, const aws_call_ctx *call, const char *alias_name);

/* GenerateKey in a state, under the manager's change_lock (key_generate.c):
 * CreateKey, GetPublicKey, then the alias step under the alias lock. */
int km_generate_in_state(km_state *state, const aws_call_ctx *ctx, const char *key_id,
                         km_key_type type, const char *alias, km_public_key *out,
                         km_status *status);

/* Tag mode, under the manager's alias lock: tags each rotated-out key left
 * active (state->unretired) spire-active = "false" again; a key tagged, gone
 * or pending deletion leaves the list. True when the list is empty: then, and
 * only then, a key of ours may be tagged active (never two active keys for a
 * SPIRE key id). */
bool km_retire_rotated_out(km_state *state);

#endif

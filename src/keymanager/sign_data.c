/* SignData (keymanager.h: km_sign_data_start). The caller's thread (the gRPC
 * completion-queue thread) looks the key up, maps the signer options to a KMS
 * SigningAlgorithm and starts an asynchronous KMS Sign (kms_sign_start); the
 * answer comes back on the HTTP event thread, which ends the call. No thread
 * waits while KMS answers.
 *
 * KMS refusing the key (pending deletion, disabled, gone) means a rotation
 * replaced it: ours (the cache already holds the successor: sign again with
 * it, from the event thread) or a replica's sharing our server id (our alias
 * now targets another key: km_follow_alias reads KMS under the alias lock,
 * which may block, so it runs on the KMS client's helper thread, then signs
 * with the key the alias targets). One such second try per call.
 *
 * Ownership: a sign_op holds a reference to the state and to the key entry it
 * signs with; it belongs to whichever thread runs its current step, and it
 * releases both references before calling done, so that once the gRPC call is
 * answered nothing of the call keeps the state alive. */
#include <stdlib.h>
#include <string.h>

#include "keymanager/km_state.h"
#include "keymanager/km_status.h"
#include "keymanager/signing.h"

typedef struct {
    km_state *state;
    key_entry *entry; /* the key being signed with */
    aws_call_ctx ctx;
    uint8_t digest[64];
    size_t digest_len;
    km_signer_opts opts;
    bool second_try;   /* signing with a rotated key's successor */
    aws_error refusal; /* KMS's refusal of the first key, for the answer */
    km_sign_done_fn done;
    void *user;
} sign_op;

/* Releases the op's references, frees it, then reports the outcome. */
static void finish(sign_op *op, int rc, km_signature *signature, const km_status *status)
{
    km_sign_done_fn done = op->done;
    void *user = op->user;
    key_entry_release(op->entry);
    km_state_release(op->state);
    free(op);
    done(user, rc, signature, status);
}

static void finish_aws_failure(sign_op *op, const aws_error *err)
{
    km_status status;
    km_status_ok(&status);
    km_fail_aws(&status, "Sign", err);
    finish(op, -1, NULL, &status);
}

static void on_signed(void *user, int rc, uint8_t *signature, size_t signature_len,
                      const aws_error *err);

/* Starts the KMS Sign with op->entry's key; -1 with err when it cannot start. */
static int start_sign(sign_op *op, aws_error *err)
{
    signing_choice choice;
    km_status unused = {0};
    if (!signing_choose(op->entry->type, &op->opts, &choice, &unused) ||
        choice.digest_len != op->digest_len) {
        /* a successor of another type: what the first key's refusal said stands */
        *err = op->refusal;
        return -1;
    }
    aws_error_clear(err);
    return kms_sign_start(op->state->kms, &op->ctx, op->entry->arn, op->digest, op->digest_len,
                          choice.algorithm, on_signed, op, err);
}

/* Signs again with next (a reference the op takes over). */
static void sign_with_successor(sign_op *op, key_entry *next)
{
    key_entry_release(op->entry);
    op->entry = next;
    op->second_try = true;
    aws_error err;
    if (start_sign(op, &err) != 0)
        finish_aws_failure(op, &err);
}

/* The entry the cache now holds for used's key id when it is another one;
 * NULL otherwise. */
static key_entry *successor_of(km_state *state, const key_entry *used)
{
    key_entry *current = key_cache_get(&state->cache, used->spire_id);
    if (current != NULL && current != used)
        return current;
    key_entry_release(current);
    return NULL;
}

/* The helper thread: our alias may now target another key (a replica sharing
 * our server id rotated it); the cache follows KMS, then the call signs with
 * the key it now holds, if any. */
static void follow_alias_then_sign(void *user)
{
    sign_op *op = user;
    km_follow_alias(op->state, &op->ctx, op->entry->alias_name);
    key_entry *next = successor_of(op->state, op->entry);
    if (next == NULL)
        finish_aws_failure(op, &op->refusal);
    else
        sign_with_successor(op, next);
}

static bool refused_key(const aws_error *err)
{
    return err->status == AWS_ERR_INVALID_STATE || err->status == AWS_ERR_DISABLED ||
           err->status == AWS_ERR_NOT_FOUND;
}

/* KMS refused the key we signed with: find the key that replaced it. */
static void after_refusal(sign_op *op, const aws_error *err)
{
    op->refusal = *err;
    key_entry *next = successor_of(op->state, op->entry);
    if (next != NULL)
        sign_with_successor(op, next);
    else if (kms_client_run_blocking(op->state->kms, follow_alias_then_sign, op) != 0)
        finish_aws_failure(op, err);
}

/* The event thread (or the helper): KMS answered, or the call ended. */
static void on_signed(void *user, int rc, uint8_t *signature, size_t signature_len,
                      const aws_error *err)
{
    sign_op *op = user;
    if (rc == 0) {
        km_signature out = {.signature = signature, .signature_len = signature_len};
        memcpy(out.key_fingerprint, op->entry->fingerprint, sizeof out.key_fingerprint);
        km_status status;
        km_status_ok(&status);
        finish(op, 0, &out, &status);
    } else if (!op->second_try && refused_key(err)) {
        after_refusal(op, err);
    } else {
        finish_aws_failure(op, err);
    }
}

/* The algorithm for entry and the digest length check; -1 with status. */
static int check_request(const key_entry *entry, const km_signer_opts *opts, size_t data_len,
                         km_status *status)
{
    signing_choice choice;
    if (!signing_choose(entry->type, opts, &choice, status))
        return -1;
    if (data_len != choice.digest_len) {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT,
                      "data is %zu bytes long; a %s digest is %zu bytes", data_len,
                      signing_hash_name(opts->hash), choice.digest_len);
        return -1;
    }
    return 0;
}

int km_sign_data_start(km_manager *manager, const aws_call_ctx *call, const char *key_id,
                       const uint8_t *data, size_t data_len, const km_signer_opts *opts,
                       km_sign_done_fn done, void *user, km_status *status)
{
    km_status_ok(status);
    if (key_id == NULL || key_id[0] == '\0') {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "key id is required");
        return -1;
    }
    if (opts == NULL) {
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "signer opts is required");
        return -1;
    }
    km_state *state = km_state_acquire(manager);
    if (state == NULL)
        return km_fail_not_configured(status);
    key_entry *entry = key_cache_get(&state->cache, key_id);
    sign_op *op = NULL;
    if (entry == NULL)
        km_status_set(status, GRPC_STATUS_NOT_FOUND, "key \"%s\" not found", key_id);
    else if (check_request(entry, opts, data_len, status) == 0 &&
             (data_len > sizeof op->digest || (op = calloc(1, sizeof *op)) == NULL))
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
    if (op == NULL) {
        key_entry_release(entry);
        km_state_release(state);
        return -1;
    }
    *op = (sign_op){.state = state,
                    .entry = entry,
                    .ctx = call != NULL ? *call : (aws_call_ctx){0},
                    .digest_len = data_len,
                    .opts = *opts,
                    .done = done,
                    .user = user};
    memcpy(op->digest, data, data_len);
    aws_error err;
    if (start_sign(op, &err) != 0) {
        km_fail_aws(status, "Sign", &err);
        key_entry_release(entry);
        km_state_release(state);
        free(op);
        return -1;
    }
    return 0;
}

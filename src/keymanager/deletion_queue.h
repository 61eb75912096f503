/* Background queue that schedules KMS key deletion (7-day window) for keys we
 * no longer want: rotated-out keys, keys orphaned by a failed GenerateKey,
 * pruned keys. Retries with backoff across KMS errors; NotFound and
 * invalid-state answers end a key's retries. Bounded; never deletes a key that
 * one of our live aliases points to (the is_live callback is asked first). */
#ifndef KM_DELETION_QUEUE_H
#define KM_DELETION_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/kms.h"

typedef struct deletion_queue deletion_queue;

/* is_live(ctx, key_id) answers whether a live alias of ours targets key_id. */
typedef bool (*deletion_is_live_fn)(void *ctx, const char *key_id);

deletion_queue *deletion_queue_start(kms_client *kms, deletion_is_live_fn is_live, void *ctx);
/* Queues key_id (a key id or ARN); reason is logged. False when the queue is
 * full (logged as an error naming the key). */
bool deletion_queue_push(deletion_queue *queue, const char *key_id, const char *reason);
/* Number of keys still waiting. */
size_t deletion_queue_pending(deletion_queue *queue);
/* Stops the worker (waiting at most timeout_ms for an in-flight call), logs
 * each key it could not finish, frees the queue. */
void deletion_queue_stop(deletion_queue *queue, int timeout_ms);
/* Like deletion_queue_stop, but hands each key it could not finish to
 * successor (a running queue; NULL: log them as with deletion_queue_stop). */
void deletion_queue_stop_into(deletion_queue *queue, int timeout_ms, deletion_queue *successor);

#endif

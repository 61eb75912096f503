/* The context every AWS call carries: its deadline and its cancellation flag.
 * One type for the KMS client, retries, credentials and the HTTP layer. */
#ifndef KM_AWS_CALL_CTX_H
#define KM_AWS_CALL_CTX_H

#include <stdatomic.h>
#include <stdint.h>

/* Per-call context: a deadline and a cancellation flag (both optional). */
typedef struct {
    int64_t deadline_ms;          /* CLOCK_MONOTONIC milliseconds; 0: none */
    const atomic_bool *cancelled; /* NULL: never cancelled */
} aws_call_ctx;

#endif

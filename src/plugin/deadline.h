/* A call's gRPC deadline (gpr_timespec, any clock) as the keymanager wants it:
 * milliseconds on CLOCK_MONOTONIC, 0 meaning "no deadline". */
#ifndef KM_PLUGIN_DEADLINE_H
#define KM_PLUGIN_DEADLINE_H

#include <grpc/support/time.h>
#include <stdint.h>

/* Pure conversion: now is the current time on deadline's clock, monotonic_now_ms
 * the current CLOCK_MONOTONIC time. An infinite deadline gives 0; a past one
 * gives a time at or before monotonic_now_ms (never 0). */
int64_t deadline_to_monotonic_ms(gpr_timespec deadline, gpr_timespec now, int64_t monotonic_now_ms);

/* The same with the clocks read now. */
int64_t deadline_monotonic_ms(gpr_timespec deadline);

#endif

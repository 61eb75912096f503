/* The process's clocks, read one way everywhere: CLOCK_MONOTONIC in
 * milliseconds (every deadline and backoff of ours) or microseconds, the
 * wall clock in epoch seconds, and condition variables that wait on
 * CLOCK_MONOTONIC (so a wall clock step never shortens or stretches a wait).
 * The skew-corrected clock that signs AWS requests is aws/clock.h's. */
#ifndef KM_COMMON_CLOCK_H
#define KM_COMMON_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in milliseconds and in microseconds. */
int64_t clock_monotonic_ms(void);
int64_t clock_monotonic_us(void);

/* The host's wall clock (CLOCK_REALTIME), epoch seconds with their fraction. */
double clock_wall_s(void);

/* pthread_cond_init for a condition variable whose timed waits take
 * CLOCK_MONOTONIC instants (clock_monotonic_timespec). 0 or an errno value. */
int clock_cond_init(pthread_cond_t *cond);

/* A CLOCK_MONOTONIC instant in milliseconds as pthread_cond_timedwait takes it
 * (for a condition variable made by clock_cond_init). */
struct timespec clock_monotonic_timespec(int64_t ms);

#endif

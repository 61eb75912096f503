/* Deadline conversion from gRPC's clocks to CLOCK_MONOTONIC milliseconds. */
#include "plugin/deadline.h"

#include <time.h>

#include "common/clock.h"

int64_t deadline_to_monotonic_ms(gpr_timespec deadline, gpr_timespec now, int64_t monotonic_now_ms)
{
    if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
        return 0;
    gpr_timespec remaining = gpr_time_sub(deadline, now);
    int64_t remaining_ms = remaining.tv_sec * 1000 + remaining.tv_nsec / 1000000;
    int64_t result = monotonic_now_ms + remaining_ms;
    return result > 0 ? result : 1;
}

int64_t deadline_monotonic_ms(gpr_timespec deadline)
{
    if (deadline.clock_type == GPR_TIMESPAN)
        return 0;
    return deadline_to_monotonic_ms(deadline, gpr_now(deadline.clock_type), clock_monotonic_ms());
}

/* The skew-corrected clock (see clock.h): one process-wide offset, read
 * lock-free on every signature, changed by compare-and-swap so that only the
 * thread that changed it logs. */
#include "aws/clock.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

static _Atomic int64_t clock_offset;

int64_t aws_clock_offset(void) { return atomic_load(&clock_offset); }

int64_t aws_clock_now(void) { return (int64_t)time(NULL) + aws_clock_offset(); }

void aws_clock_set_offset(int64_t offset) { atomic_store(&clock_offset, offset); }

int aws_clock_parse_http_date(const char *text, int64_t *out)
{
    if (text == NULL || text[0] == '\0')
        return -1;
    time_t parsed = curl_getdate(text, NULL);
    if (parsed <= 0)
        return -1;
    *out = (int64_t)parsed;
    return 0;
}

static bool starts_with(const char *text, const char *prefix)
{
    return text != NULL && strncmp(text, prefix, strlen(prefix)) == 0;
}

bool aws_clock_is_skew_error(const char *code, const char *message)
{
    if (code == NULL)
        return false;
    static const char *const time_codes[] = {"RequestTimeTooSkewed", "RequestExpired",
                                             "RequestInTheFuture"};
    for (size_t i = 0; i < sizeof time_codes / sizeof time_codes[0]; i++) {
        if (strcmp(code, time_codes[i]) == 0)
            return true;
    }
    static const char *const signature_codes[] = {"InvalidSignatureException",
                                                  "SignatureDoesNotMatch", "AuthFailure"};
    for (size_t i = 0; i < sizeof signature_codes / sizeof signature_codes[0]; i++) {
        if (strcmp(code, signature_codes[i]) == 0)
            return starts_with(message, "Signature expired") ||
                   starts_with(message, "Signature not yet current");
    }
    return false;
}

bool aws_clock_adjustment(int64_t current_offset, int64_t server_date, int64_t host_time,
                          int64_t *new_offset)
{
    if (server_date <= 0 || host_time <= 0)
        return false;
    int64_t off_by = server_date - (host_time + current_offset);
    if (off_by <= AWS_CLOCK_SKEW_THRESHOLD_S && off_by >= -AWS_CLOCK_SKEW_THRESHOLD_S)
        return false;
    *new_offset = server_date - host_time;
    return true;
}

static void log_adopted(int64_t offset, const char *endpoint)
{
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%" PRId64, offset);
    log_write(LOG_WARN, "aws",
              "the host clock differs from AWS's: signing with AWS's time (offset_seconds = "
              "AWS's time minus the host's)",
              "offset_seconds", seconds, "endpoint", endpoint != NULL ? endpoint : "", LOG_END);
}

bool aws_clock_observe(int64_t server_date, int64_t host_time, const char *endpoint)
{
    int64_t current = atomic_load(&clock_offset);
    int64_t adopted;
    if (!aws_clock_adjustment(current, server_date, host_time, &adopted))
        return false;
    if (!atomic_compare_exchange_strong(&clock_offset, &current, adopted))
        return false; /* another answer changed it first: that thread logs */
    log_adopted(adopted, endpoint);
    return true;
}

bool aws_clock_worth_resigning(int64_t signed_offset)
{
    return atomic_load(&clock_offset) != signed_offset;
}

/* Unit tests for the skew-corrected clock (aws/clock.h): HTTP Date parsing
 * (the three RFC 7231 forms, garbage refused), which AWS errors mean clock
 * skew, the offset an answer's Date implies (4-minute threshold, both
 * directions, relative to the already corrected clock), and that observing
 * answers adopts an offset once and logs it once at warn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/clock.h"
#include "common/log.h"

enum { NOV_6_1994_084937 = 784111777, HOST = 1800000000 };

static void parses_http_dates(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(aws_clock_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, NOV_6_1994_084937);
    t = 0;
    assert_int_equal(aws_clock_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    assert_int_equal(t, NOV_6_1994_084937);
    t = 0;
    assert_int_equal(aws_clock_parse_http_date("Sun Nov  6 08:49:37 1994", &t), 0);
    assert_int_equal(t, NOV_6_1994_084937);
    assert_int_equal(aws_clock_parse_http_date("Fri, 15 Jan 2027 10:20:30 GMT", &t), 0);
    assert_int_equal(t, 1800008430);

    t = 42;
    assert_int_equal(aws_clock_parse_http_date("", &t), -1);
    assert_int_equal(aws_clock_parse_http_date(NULL, &t), -1);
    assert_int_equal(aws_clock_parse_http_date("not a date", &t), -1);
    assert_int_equal(aws_clock_parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", &t), -1);
    assert_int_equal(t, 42);
}

static void skew_errors(void **state)
{
    (void)state;
    assert_true(aws_clock_is_skew_error("RequestTimeTooSkewed", "anything"));
    assert_true(aws_clock_is_skew_error("RequestExpired", NULL));
    assert_true(aws_clock_is_skew_error("RequestInTheFuture", ""));
    assert_true(aws_clock_is_skew_error("InvalidSignatureException",
                                        "Signature expired: 20260101T000000Z is now earlier than "
                                        "20260101T001500Z (20260101T002000Z "
                                        "- 5 min.)"));
    assert_true(aws_clock_is_skew_error(
        "InvalidSignatureException",
        "Signature not yet current: 20260101T004000Z is still later than 20260101T002500Z "
        "(20260101T002000Z + 5 min.)"));
    assert_true(aws_clock_is_skew_error("SignatureDoesNotMatch",
                                        "Signature expired: 20260101T000000Z is now earlier"));
    assert_true(aws_clock_is_skew_error("AuthFailure", "Signature not yet current: x"));

    assert_false(aws_clock_is_skew_error("InvalidSignatureException",
                                         "The request signature we calculated does not match the "
                                         "signature you provided."));
    assert_false(aws_clock_is_skew_error("SignatureDoesNotMatch", NULL));
    assert_false(aws_clock_is_skew_error("AccessDeniedException", "Signature expired: x"));
    assert_false(aws_clock_is_skew_error("ThrottlingException", "Rate exceeded"));
    assert_false(aws_clock_is_skew_error("", "Signature expired"));
    assert_false(aws_clock_is_skew_error(NULL, "Signature expired"));
}

static void adjustment_beyond_four_minutes(void **state)
{
    (void)state;
    int64_t offset = 7;
    /* Host 20 minutes fast: AWS's Date is 1200 s behind the host. */
    assert_true(aws_clock_adjustment(0, HOST - 1200, HOST, &offset));
    assert_int_equal(offset, -1200);
    /* Host 20 minutes slow. */
    assert_true(aws_clock_adjustment(0, HOST + 1200, HOST, &offset));
    assert_int_equal(offset, 1200);
    /* Within 4 minutes: left alone. */
    offset = 7;
    assert_false(aws_clock_adjustment(0, HOST + 240, HOST, &offset));
    assert_false(aws_clock_adjustment(0, HOST - 240, HOST, &offset));
    assert_int_equal(offset, 7);
    assert_true(aws_clock_adjustment(0, HOST + 241, HOST, &offset));
    assert_int_equal(offset, 241);
    /* Judged against the corrected clock: an offset already right stays. */
    assert_false(aws_clock_adjustment(1200, HOST + 1201, HOST, &offset));
    assert_true(aws_clock_adjustment(1200, HOST, HOST, &offset)); /* the host clock was fixed */
    assert_int_equal(offset, 0);
    /* No Date, no host time: nothing learned. */
    offset = 7;
    assert_false(aws_clock_adjustment(0, 0, HOST, &offset));
    assert_false(aws_clock_adjustment(0, HOST, 0, &offset));
    assert_int_equal(offset, 7);
}

/* Log lines go to a pipe so that the test can count the warnings. */
static int read_log(int fd, char *out, size_t size)
{
    ssize_t n = read(fd, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    return (int)(n > 0 ? n : 0);
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void observe_adopts_once_and_logs_once(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_set_fd(fds[1]);
    aws_clock_set_offset(0);
    int64_t before = aws_clock_now();
    assert_true(aws_clock_worth_resigning(-1200) == true);
    assert_false(aws_clock_worth_resigning(0));

    assert_true(aws_clock_observe(HOST - 1200, HOST, "https://kms.us-east-2.amazonaws.com"));
    assert_int_equal(aws_clock_offset(), -1200);
    int64_t after = aws_clock_now();
    assert_true(after - before <= -1200 + 2 && after - before >= -1200 - 2);
    assert_true(aws_clock_worth_resigning(0));
    assert_false(aws_clock_worth_resigning(-1200));
    /* The same skew seen again (other threads' answers): nothing to do. */
    assert_false(aws_clock_observe(HOST - 1199, HOST, "https://kms.us-east-2.amazonaws.com"));
    assert_false(aws_clock_observe(0, HOST, "https://kms.us-east-2.amazonaws.com"));
    assert_int_equal(aws_clock_offset(), -1200);

    char text[4096];
    read_log(fds[0], text, sizeof text);
    assert_int_equal(count(text, "\"@level\":\"warn\""), 1);
    assert_int_equal(count(text, "\"offset_seconds\":\"-1200\""), 1);
    assert_int_equal(count(text, "\"endpoint\":\"https://kms.us-east-2.amazonaws.com\""), 1);

    log_set_fd(-1);
    close(fds[0]);
    close(fds[1]);
    aws_clock_set_offset(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_http_dates),
        cmocka_unit_test(skew_errors),
        cmocka_unit_test(adjustment_beyond_four_minutes),
        cmocka_unit_test(observe_adopts_once_and_logs_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the configuration's value rules: Go durations, AWS region
 * names, trust domains, tag characters, and the "did you mean" distance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/rules.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"6h", 6LL * 3600000}, {"90s", 90000},     {"1s", 1000},
        {"500ms", 500},        {"1h30m", 5400000}, {"1.5h", 5400000},
        {".5s", 500},          {"1.s", 1000},      {"2562047h", 2562047LL * 3600000},
        {"1000000ns", 1},      {"1500us", 1},      {"3000\xC2\xB5s", 3},
        {"3000\xCE\xBCs", 3},  {"+5m", 300000},    {"1h1m1s1ms", 3661001},
        {"336h", 1209600000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char why[256];
        int64_t ms = -1;
        if (rules_duration_ms(good[i].text, &ms, why, sizeof why) != NULL)
            fail_msg("%s: %s", good[i].text, why);
        if (ms != good[i].ms)
            fail_msg("%s: got %lld ms, want %lld", good[i].text, (long long)ms,
                     (long long)good[i].ms);
    }
    const char *bad[] = {"",      "6",   "h",        "6x",    "6 h",
                         "1d",    "-1s", "0",        "-0",    "0s",
                         "999us", ".s",  "2562048h", "1h-5m", "1.",
                         "s6",    "6hh", "1e3s",     "--1s",  "99999999999999999999s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256];
        int64_t ms = -1;
        if (rules_duration_ms(bad[i], &ms, why, sizeof why) == NULL)
            fail_msg("%s accepted as %lld ms", bad[i], (long long)ms);
    }
}

static void test_regions(void **state)
{
    (void)state;
    const char *good[] = {"us-east-2",    "cn-north-1",     "us-gov-west-1",
                          "eu-central-1", "us-isob-east-1", "ap-south-2",
                          "me-central-1", "ca-west-1",      "us-iso-west-1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!rules_region_valid(good[i]))
            fail_msg("%s rejected", good[i]);
    const char *bad[] = {"",           "us",         "us-east",     "us-east-",    "useast2",
                         "us-east-2a", "US-east-2",  "u-east-1",    "us--east-1",  "us-east-123",
                         " us-east-2", "us-east-2 ", "a-b-c-d-e-1", "us-a-b-c-d-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rules_region_valid(bad[i]))
            fail_msg("%s accepted", bad[i]);
}

static void test_trust_domains(void **state)
{
    (void)state;
    char why[256];
    assert_null(rules_trust_domain_problem("example.org", why, sizeof why));
    assert_null(rules_trust_domain_problem("a_b-c.d9", why, sizeof why));
    assert_string_equal(rules_trust_domain_problem(NULL, why, sizeof why),
                        "trust_domain is required");
    assert_non_null(rules_trust_domain_problem("exa mple", why, sizeof why));
    assert_non_null(rules_trust_domain_problem("example.org/path", why, sizeof why));
    char long_domain[257];
    memset(long_domain, 'a', 256), long_domain[256] = '\0';
    assert_string_equal(rules_trust_domain_problem(long_domain, why, sizeof why),
                        "trust_domain is longer than 255 characters");
    long_domain[255] = '\0';
    assert_null(rules_trust_domain_problem(long_domain, why, sizeof why));
}

static void test_tag_characters(void **state)
{
    (void)state;
    char why[256];
    const char *good[] = {
        "team",     "a b",           "_.:/=+-@", "\xC3\xA9quipe", "\xE6\x97\xA5\xE6\x9C\xAC",
        "\xD0\x96", "x\xE3\x80\x80y" /* ideographic space */};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (rules_tag_key_problem(good[i], why, sizeof why) != NULL)
            fail_msg("%s: %s", good[i], why);
    const char *bad[] = {"a!",
                         "a#",
                         "a\"",
                         "a,b",
                         "a;b",
                         "a\xE2\x80\xA2", /* bullet */
                         "\xE2\x82\xAC" /* euro sign */,
                         "\xF0\x9F\x94\x91" /* key emoji */,
                         "a\x01",
                         "\xC2\xA9" /* copyright */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rules_tag_value_problem(bad[i], why, sizeof why) == NULL)
            fail_msg("case %zu accepted", i);
    assert_null(rules_tag_value_problem("", why, sizeof why));
    assert_non_null(rules_tag_key_problem("", why, sizeof why));
    assert_non_null(rules_tag_key_problem("aws:x", why, sizeof why));
    assert_non_null(rules_tag_key_problem("SPIRE-x", why, sizeof why));
    assert_null(rules_tag_key_problem("spire", why, sizeof why));
    assert_null(rules_tag_key_problem("awsx", why, sizeof why));
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(rules_edit_distance("regoin", "region", 3), 2);
    assert_int_equal(rules_edit_distance("region", "region", 3), 0);
    assert_int_equal(rules_edit_distance("", "abc", 3), 3);
    assert_int_equal(rules_edit_distance("key_tag", "key_tags", 3), 1);
    assert_int_equal(rules_edit_distance("colour", "region", 3), 4);
    char long_key[200];
    memset(long_key, 'a', 199), long_key[199] = '\0';
    assert_int_equal(rules_edit_distance(long_key, long_key, 3), 4); /* too long to compare */
}

static void test_utf8_length(void **state)
{
    (void)state;
    assert_int_equal(rules_utf8_length(""), 0);
    assert_int_equal(rules_utf8_length("abc"), 3);
    assert_int_equal(rules_utf8_length("\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),     cmocka_unit_test(test_regions),
        cmocka_unit_test(test_trust_domains), cmocka_unit_test(test_tag_characters),
        cmocka_unit_test(test_edit_distance), cmocka_unit_test(test_utf8_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

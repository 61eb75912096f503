/* Unit tests for the KMS/STS/tagging endpoint rules: partitions, FIPS, custom
 * endpoints from config and environment, region validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "aws/endpoints.h"

static int clear_env(void **state)
{
    (void)state;
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_KMS");
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API");
    unsetenv("AWS_ENDPOINT_URL_TAGGING");
    unsetenv("AWS_USE_FIPS_ENDPOINT");
    return 0;
}

static const char *resolve(const char *service, const char *region, const char *configured,
                           bool fips)
{
    static char url[512];
    if (aws_endpoint_resolve(service, region, configured, fips, url, sizeof url) != 0)
        return "<error>";
    return url;
}

static void test_default_regional_endpoints(void **state)
{
    (void)state;
    assert_string_equal(resolve("kms", "us-east-2", NULL, false),
                        "https://kms.us-east-2.amazonaws.com");
    assert_string_equal(resolve("sts", "eu-west-1", NULL, false),
                        "https://sts.eu-west-1.amazonaws.com");
}

static void test_china_partition(void **state)
{
    (void)state;
    assert_string_equal(aws_partition_for_region("cn-north-1"), "aws-cn");
    assert_string_equal(resolve("kms", "cn-northwest-1", NULL, false),
                        "https://kms.cn-northwest-1.amazonaws.com.cn");
    assert_string_equal(resolve("sts", "cn-north-1", NULL, false),
                        "https://sts.cn-north-1.amazonaws.com.cn");
}

static void test_govcloud_partition(void **state)
{
    (void)state;
    assert_string_equal(aws_partition_for_region("us-gov-west-1"), "aws-us-gov");
    assert_string_equal(aws_partition_for_region("us-east-1"), "aws");
    assert_string_equal(resolve("kms", "us-gov-west-1", NULL, false),
                        "https://kms.us-gov-west-1.amazonaws.com");
    assert_string_equal(resolve("kms", "us-gov-east-1", NULL, true),
                        "https://kms-fips.us-gov-east-1.amazonaws.com");
}

static void test_fips_from_option_and_environment(void **state)
{
    (void)state;
    assert_string_equal(resolve("kms", "us-east-1", NULL, true),
                        "https://kms-fips.us-east-1.amazonaws.com");
    assert_string_equal(resolve("sts", "us-west-2", NULL, true),
                        "https://sts-fips.us-west-2.amazonaws.com");
    setenv("AWS_USE_FIPS_ENDPOINT", "TRUE", 1);
    assert_string_equal(resolve("kms", "us-east-1", NULL, false),
                        "https://kms-fips.us-east-1.amazonaws.com");
    setenv("AWS_USE_FIPS_ENDPOINT", "false", 1);
    assert_string_equal(resolve("kms", "us-east-1", NULL, false),
                        "https://kms.us-east-1.amazonaws.com");
}

static void test_custom_endpoint_precedence(void **state)
{
    (void)state;
    setenv("AWS_ENDPOINT_URL", "http://generic:1/", 1);
    assert_string_equal(resolve("kms", "us-east-1", NULL, false), "http://generic:1");
    assert_string_equal(resolve("sts", "us-east-1", NULL, false), "http://generic:1");
    setenv("AWS_ENDPOINT_URL_KMS", "http://kms-only:2//", 1);
    assert_string_equal(resolve("kms", "us-east-1", NULL, false), "http://kms-only:2");
    assert_string_equal(resolve("sts", "us-east-1", NULL, false), "http://generic:1");
    setenv("AWS_ENDPOINT_URL_STS", "http://sts-only:3", 1);
    assert_string_equal(resolve("sts", "us-east-1", NULL, false), "http://sts-only:3");
    assert_string_equal(resolve("kms", "us-east-1", "https://configured.example/", true),
                        "https://configured.example");
}

static void test_tagging_endpoints(void **state)
{
    (void)state;
    assert_string_equal(resolve("tagging", "us-east-2", NULL, false),
                        "https://tagging.us-east-2.amazonaws.com");
    assert_string_equal(resolve("tagging", "cn-northwest-1", NULL, false),
                        "https://tagging.cn-northwest-1.amazonaws.com.cn");
    assert_string_equal(resolve("tagging", "us-gov-west-1", NULL, true),
                        "https://tagging-fips.us-gov-west-1.amazonaws.com");
    assert_string_equal(resolve("tagging", "us-iso-east-1", NULL, false),
                        "https://tagging.us-iso-east-1.c2s.ic.gov");
    assert_string_equal(resolve("tagging", "us-isob-east-1", NULL, false),
                        "https://tagging.us-isob-east-1.sc2s.sgov.gov");
}

static void test_tagging_custom_endpoint_variables(void **state)
{
    (void)state;
    setenv("AWS_ENDPOINT_URL", "http://generic:1", 1);
    setenv("AWS_ENDPOINT_URL_KMS", "http://kms-only:2", 1);
    /* The SDKs name the variable after the service id, not the endpoint prefix. */
    setenv("AWS_ENDPOINT_URL_TAGGING", "http://wrong-name:9", 1);
    assert_string_equal(resolve("tagging", "us-east-1", NULL, false), "http://generic:1");
    setenv("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API", "http://tagging-only:3/", 1);
    assert_string_equal(resolve("tagging", "us-east-1", NULL, true), "http://tagging-only:3");
    assert_string_equal(resolve("kms", "us-east-1", NULL, false), "http://kms-only:2");
}

static void test_empty_configured_endpoint_is_ignored(void **state)
{
    (void)state;
    assert_string_equal(resolve("kms", "us-east-1", "", false),
                        "https://kms.us-east-1.amazonaws.com");
}

static void test_region_validation(void **state)
{
    (void)state;
    const char *valid[] = {"us-east-1",      "eu-central-2",  "ap-southeast-4", "us-gov-west-1",
                           "cn-northwest-1", "us-iso-east-1", "us-isob-east-1", "me-south-12"};
    const char *invalid[] = {"",         "us-east",    "US-EAST-1",    "us-east-1a",
                             "useast-1", "u-east-1",   "us--1",        "us-east-1/..",
                             "us-gov-1", "us-east-1 ", "kms.us-east-1"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        assert_true(aws_region_is_valid(valid[i]));
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        assert_false(aws_region_is_valid(invalid[i]));
        assert_string_equal(resolve("kms", invalid[i], NULL, false), "<error>");
    }
    assert_false(aws_region_is_valid(NULL));
}

static void test_output_too_small(void **state)
{
    (void)state;
    char small[16];
    assert_int_equal(aws_endpoint_resolve("kms", "us-east-1", NULL, false, small, sizeof small),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_regional_endpoints, clear_env),
        cmocka_unit_test_setup(test_china_partition, clear_env),
        cmocka_unit_test_setup(test_govcloud_partition, clear_env),
        cmocka_unit_test_setup(test_fips_from_option_and_environment, clear_env),
        cmocka_unit_test_setup(test_custom_endpoint_precedence, clear_env),
        cmocka_unit_test_setup(test_tagging_endpoints, clear_env),
        cmocka_unit_test_setup(test_tagging_custom_endpoint_variables, clear_env),
        cmocka_unit_test_setup(test_empty_configured_endpoint_is_ignored, clear_env),
        cmocka_unit_test_setup(test_region_validation, clear_env),
        cmocka_unit_test_setup(test_output_too_small, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, clear_env);
}

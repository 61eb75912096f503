/* Unit tests for KMS alias and description names (naming.c): the forms
 * SPIRE's built-in aws_kms uses, encoding, refusals, whole-component matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keymanager/naming.h"

static const char SERVER[] = "5f1e7c8a-0000-4000-8000-000000000001";

static void test_prefixes(void **state)
{
    (void)state;
    char *td = naming_trust_domain_prefix("example.org");
    assert_string_equal(td, "alias/SPIRE_SERVER/example_org/");
    char *server = naming_server_prefix("example.org", SERVER);
    assert_string_equal(server,
                        "alias/SPIRE_SERVER/example_org/5f1e7c8a-0000-4000-8000-000000000001/");
    free(td);
    free(server);
}

static void test_alias_plain_and_encoded(void **state)
{
    (void)state;
    km_status status = {0};
    char *alias = naming_alias_for_key("example.org", SERVER, "x509-CA-A", &status);
    assert_non_null(alias);
    assert_string_equal(alias, "alias/SPIRE_SERVER/example_org/"
                               "5f1e7c8a-0000-4000-8000-000000000001/x509-CA-A");
    free(alias);
    alias = naming_alias_for_key("td", "s", "a.b+c/d_e", &status);
    assert_string_equal(alias, "alias/SPIRE_SERVER/td/s/a_2eb_2bc/d_e");
    free(alias);
}

static void test_alias_refusals(void **state)
{
    (void)state;
    const char *bad[] = {"", "has space", "x_2ey", "x_2by", "/lead", "trail/", "a//b", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        km_status status = {0};
        char *alias = naming_alias_for_key("td", "s", bad[i], &status);
        assert_null(alias);
        assert_true(strlen(status.message) > 0);
    }
    km_status status = {0};
    assert_null(naming_alias_for_key("td", "s", "", &status));
    assert_string_equal(status.message, "key id is required");
    assert_int_equal(status.code, GRPC_STATUS_INVALID_ARGUMENT);
}

static void test_alias_length_limit(void **state)
{
    (void)state;
    const char *prefix = "alias/SPIRE_SERVER/td/s/";
    size_t room = NAMING_ALIAS_MAX - strlen(prefix);
    char id[300];
    memset(id, 'k', room);
    id[room] = '\0';
    km_status status = {0};
    char *alias = naming_alias_for_key("td", "s", id, &status);
    assert_non_null(alias);
    assert_int_equal(strlen(alias), NAMING_ALIAS_MAX);
    free(alias);
    id[room] = 'k';
    id[room + 1] = '\0';
    assert_null(naming_alias_for_key("td", "s", id, &status));
    assert_non_null(strstr(status.message, "256"));
    /* A '.' grows by two characters when encoded: counts after encoding. */
    memset(id, 'k', room - 2);
    id[room - 2] = '.';
    id[room - 1] = '\0';
    assert_null(naming_alias_for_key("td", "s", id, &status));
}

static void test_parse_alias(void **state)
{
    (void)state;
    char *server = NULL;
    char *key = NULL;
    assert_true(naming_parse_alias("alias/SPIRE_SERVER/example_org/srv/a_2eb_2bc/d", "example.org",
                                   &server, &key));
    assert_string_equal(server, "srv");
    assert_string_equal(key, "a.b+c/d");
    free(server);
    free(key);
    const char *others[] = {"alias/SPIRE_SERVER/example_org_x/srv/k",
                            "alias/SPIRE_SERVER/example_org/srv",
                            "alias/SPIRE_SERVER/example_org/srv/",
                            "alias/SPIRE_SERVER/example_org//k",
                            "alias/aws/kms",
                            "alias/SPIRE_SERVER/other/srv/k"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_false(naming_parse_alias(others[i], "example.org", &server, &key));
        assert_null(server);
        assert_null(key);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    km_status status = {0};
    const char *ids[] = {"JWT-Signer-B", "a.b", "a+b", "x/y.z"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char *alias = naming_alias_for_key("spiffe.example.org", "srv", ids[i], &status);
        char *server = NULL;
        char *key = NULL;
        assert_true(naming_parse_alias(alias, "spiffe.example.org", &server, &key));
        assert_string_equal(server, "srv");
        assert_string_equal(key, ids[i]);
        free(alias);
        free(server);
        free(key);
    }
}

static void test_descriptions(void **state)
{
    (void)state;
    char *description = naming_key_description("example.org", "x509-CA-A");
    assert_string_equal(description, "SPIRE_SERVER_KEY/example_org/x509-CA-A");
    assert_true(naming_description_in_trust_domain(description, "example.org"));
    free(description);
    assert_true(naming_description_in_trust_domain("SPIRE_SERVER/example.org", "example.org"));
    assert_true(naming_description_in_trust_domain("SPIRE_SERVER/example_org", "example.org"));
    assert_true(naming_description_in_trust_domain("SPIRE_SERVER_KEY/example_org", "example.org"));
    assert_false(
        naming_description_in_trust_domain("SPIRE_SERVER_KEY/example_org2/k", "example.org"));
    assert_false(
        naming_description_in_trust_domain("SPIRE_SERVER/example.org.evil", "example.org"));
    assert_false(naming_description_in_trust_domain("SPIRE_SERVER/example.org/k", "example.org"));
    assert_false(
        naming_description_in_trust_domain("SPIRE_SERVER_KEY/example_org/", "example.org"));
    assert_false(naming_description_in_trust_domain("", "example.org"));
    assert_false(naming_description_in_trust_domain(NULL, "example.org"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefixes),       cmocka_unit_test(test_alias_plain_and_encoded),
        cmocka_unit_test(test_alias_refusals), cmocka_unit_test(test_alias_length_limit),
        cmocka_unit_test(test_parse_alias),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_descriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

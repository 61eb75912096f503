/* Unit tests for config_load: the schema table's rules (good and bad values
 * for every key, rules across keys, defaults), exact notes with positions,
 * every problem reported at once, and secrets never echoed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/schema.h"

#define BASE       "region = \"us-east-2\"\nkey_metadata_file = \"/var/lib/spire/km\"\n"
#define DATA(name) TEST_DATA_DIR "/" name

static plugin_config *load_ok(const char *text)
{
    config_notes notes = {0};
    plugin_config *config = config_load(text, "example.org", &notes);
    if (config == NULL) {
        char *joined = config_notes_join(&notes, "\n");
        fail_msg("unexpected notes for:\n%s\n---\n%s", text, joined);
    }
    assert_int_equal(notes.count, 0);
    return config;
}

static void test_minimal_config_and_defaults(void **state)
{
    (void)state;
    plugin_config *config = load_ok(BASE);
    assert_string_equal(config->trust_domain, "example.org");
    assert_string_equal(config->region, "us-east-2");
    assert_string_equal(config->key_identifier_file, "/var/lib/spire/km");
    assert_null(config->key_identifier_value);
    assert_null(config->access_key_id);
    assert_null(config->secret_access_key);
    assert_null(config->endpoint);
    assert_null(config->ca_bundle);
    assert_null(config->key_policy_file);
    assert_null(config->key_policy);
    assert_int_equal(config->key_tag_count, 0);
    assert_false(config->use_fips_endpoint);
    assert_int_equal(config->max_attempts, 0); /* unset: the AWS layer decides (3 by default) */
    assert_int_equal(config->log_level, LOG_INFO);
    assert_int_equal(config->refresh_aliases_interval_ms, 6LL * 3600 * 1000);
    assert_int_equal(config->dispose_aliases_interval_ms, 24LL * 3600 * 1000);
    assert_int_equal(config->dispose_keys_interval_ms, 48LL * 3600 * 1000);
    assert_int_equal(config->stale_alias_age_ms, 336LL * 3600 * 1000);
    assert_int_equal(config->orphan_key_age_ms, 48LL * 3600 * 1000);
    assert_false(config->enable_tag_based_key_discovery);
    config_free(config);
}

static void test_every_key_set(void **state)
{
    (void)state;
    plugin_config *config = load_ok(
        "access_key_id = \"AKIAEXAMPLE\"\n"
        "secret_access_key = \"c2VjcmV0\"\n"
        "region = \"us-gov-west-1\"\n"
        "key_identifier_value = \"server-a_primary-1\"\n"
        "key_policy_file = \"" DATA(
            "config_policy.json") "\"\n"
                                  "key_tags {\n  team = \"pki\"\n  \"cost center\" = \"42\"\n  "
                                  "empty = \"\"\n}\n"
                                  "endpoint = \"https://kms.example.test:8443\"\n"
                                  "ca_bundle = \"" DATA(
                                      "config_ca.pem") "\"\n"
                                                       "use_fips_endpoint = true\n"
                                                       "max_attempts = 10\n"
                                                       "log_level = \"debug\"\n"
                                                       "refresh_aliases_interval = \"1h30m\"\n"
                                                       "dispose_aliases_interval = \"90s\"\n"
                                                       "dispose_keys_interval = \"500ms\"\n"
                                                       "stale_alias_age = \"168.5h\"\n"
                                                       "orphan_key_age = \"24h45m30s\"\n");
    assert_string_equal(config->access_key_id, "AKIAEXAMPLE");
    assert_string_equal(config->secret_access_key, "c2VjcmV0");
    assert_string_equal(config->region, "us-gov-west-1");
    assert_null(config->key_identifier_file);
    assert_string_equal(config->key_identifier_value, "server-a_primary-1");
    assert_string_equal(config->key_policy_file, DATA("config_policy.json"));
    assert_non_null(strstr(config->key_policy, "\"Version\": \"2012-10-17\""));
    assert_int_equal(config->key_tag_count, 3);
    assert_string_equal(config->key_tags[0].key, "team");
    assert_string_equal(config->key_tags[0].value, "pki");
    assert_string_equal(config->key_tags[1].key, "cost center");
    assert_string_equal(config->key_tags[2].value, "");
    assert_string_equal(config->endpoint, "https://kms.example.test:8443");
    assert_string_equal(config->ca_bundle, DATA("config_ca.pem"));
    assert_true(config->use_fips_endpoint);
    assert_int_equal(config->max_attempts, 10);
    assert_int_equal(config->log_level, LOG_DEBUG);
    assert_int_equal(config->refresh_aliases_interval_ms, 90LL * 60 * 1000);
    assert_int_equal(config->dispose_aliases_interval_ms, 90 * 1000);
    assert_int_equal(config->dispose_keys_interval_ms, 500);
    assert_int_equal(config->stale_alias_age_ms, 168LL * 3600 * 1000 + 30 * 60 * 1000);
    assert_int_equal(config->orphan_key_age_ms, (24LL * 3600 + 45 * 60 + 30) * 1000);
    config_free(config);
}

static void test_json_form(void **state)
{
    (void)state;
    plugin_config *config =
        load_ok("{\n  \"region\": \"cn-north-1\",\n  \"key_identifier_file\": \"/km\",\n"
                "  \"key_tags\": {\"team\": \"a\"},\n  \"max_attempts\": 5,\n"
                "  \"use_fips_endpoint\": false\n}\n");
    assert_string_equal(config->region, "cn-north-1");
    assert_string_equal(config->key_identifier_file, "/km");
    assert_int_equal(config->key_tag_count, 1);
    assert_int_equal(config->max_attempts, 5);
    config_free(config);
}

static void test_printer_outputs(void **state)
{
    (void)state;
    plugin_config *config =
        load_ok("region = \"us-east-2\"\n\nkey_metadata_file = \"./key_metadata\"");
    assert_string_equal(config->key_identifier_file, "./key_metadata");
    config_free(config);
    config = load_ok("region = \"us-east-2\"\n\nkey_metadata_file = \"./key_metadata\"\n\nkey_tags "
                     "= {\n  team = \"x\"\n}");
    assert_string_equal(config->key_tags[0].value, "x");
    config_free(config);
}

static void test_duplicates_last_wins(void **state)
{
    (void)state;
    plugin_config *config = load_ok(BASE "region = \"eu-west-1\"\nmax_attempts = 2\n"
                                         "max_attempts = 4\nkey_tags { a = \"1\"\n a = \"2\" }\n");
    assert_string_equal(config->region, "eu-west-1");
    assert_int_equal(config->max_attempts, 4);
    assert_int_equal(config->key_tag_count, 1);
    assert_string_equal(config->key_tags[0].value, "2");
    config_free(config);
}

static void test_duplicate_logged_at_debug(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    log_set_fd(fds[1]);
    log_set_level(LOG_DEBUG);
    config_free(load_ok(BASE "max_attempts = 2\nmax_attempts = 4\n"));
    log_set_level(LOG_INFO);
    log_set_fd(-1);
    close(fds[1]);
    char lines[4096] = "";
    ssize_t n = read(fds[0], lines, sizeof lines - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_non_null(strstr(lines, "duplicate key max_attempts at 4:1; the last one wins"));
    assert_null(strstr(lines, "region")); /* only the duplicate is logged */
}

static void test_same_file_under_both_names(void **state)
{
    (void)state;
    plugin_config *config = load_ok(BASE "key_identifier_file = \"/var/lib/spire/km\"\n");
    assert_string_equal(config->key_identifier_file, "/var/lib/spire/km");
    config_free(config);
}

static void test_empty_string_means_unset(void **state)
{
    (void)state;
    plugin_config *config = load_ok(BASE "endpoint = \"\"\naccess_key_id = \"\"\n"
                                         "log_level = \"\"\nkey_identifier_value = \"\"\n");
    assert_null(config->endpoint);
    assert_null(config->access_key_id);
    assert_int_equal(config->log_level, LOG_INFO);
    config_free(config);
}

static void test_good_values(void **state)
{
    (void)state;
    const char *lines[] = {
        "region = \"us-isob-east-1\"",
        "region = \"ap-southeast-2\"",
        "region = \"il-central-1\"",
        "endpoint = \"http://127.0.0.1:4566\"",
        "max_attempts = 1",
        "log_level = \"TRACE\"",
        "log_level = \"warning\"",
        "log_level = \"error\"",
        "stale_alias_age = \"168h\"",
        "stale_alias_age = \"604800s\"",
        "stale_alias_age = \"8760h\"",
        "orphan_key_age = \"86400000000us\"",
        "orphan_key_age = \"+30h\"",
        "refresh_aliases_interval = \"1ms\"",
        "refresh_aliases_interval = \"42h\"",
        "stale_alias_age = \"168h\"\nrefresh_aliases_interval = \"42h\"",
        "key_identifier_value = \"\"",
        "key_tags {}",
        "key_tags { \"a:b/c=d+e-f@g.h_i\" = \"\xC3\xA9t\xC3\xA9 \xE6\x97\xA5\" }",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, BASE "%s\n", lines[i]);
        config_free(load_ok(text));
    }
}

#define SERVER_ID_RULE                                                                             \
    "a server id is one component of the alias name "                                              \
    "alias/SPIRE_SERVER/{TRUST_DOMAIN}/{SERVER_ID}/{KEY_ID}, so it may hold only letters, "        \
    "digits, '_' and '-'"
#define STALE_RULE                                                                                 \
    "this server deletes the aliases and keys of other servers whose aliases were not refreshed "  \
    "for stale_alias_age, so a shorter age could delete the keys of live servers"
#define STALE_4H "\"4h\" is less than the minimum of 168h (7 days): " STALE_RULE
#define ORPHAN_RULE                                                                                \
    "this server deletes the unaliased keys of its trust domain, other servers' included, once "   \
    "they are older than orphan_key_age, so a shorter age could delete a key another server has "  \
    "just created and not yet aliased"
#define REFRESH_RULE                                                                               \
    "servers delete the keys of a server whose aliases were not refreshed for their "              \
    "stale_alias_age, so every server must refresh several times within it"
#define REFRESH_FLEET_RULE                                                                         \
    "other servers delete the keys of a server whose aliases were not refreshed for their "        \
    "stale_alias_age, so every server must refresh several times within it"

typedef struct {
    const char *text;
    const char *trust_domain;
    const char *notes; /* all notes joined with "\n" */
} bad_case;

static const bad_case bad_cases[] = {
    {"", "example.org",
     "region is required\none of key_metadata_file, key_identifier_file or key_identifier_value "
     "is required"},
    {BASE, "", "trust_domain is required"},
    {BASE, NULL, "trust_domain is required"},
    {BASE, "spiffe://example.org",
     "trust_domain \"spiffe://example.org\" is not valid: only lowercase letters, digits, '.', "
     "'-' and '_' are allowed"},
    {BASE, "Example.org",
     "trust_domain \"Example.org\" is not valid: only lowercase letters, digits, '.', '-' and "
     "'_' are allowed"},
    {"regoin = \"us-east-2\"\nkey_metadata_file = \"/km\"\n", "example.org",
     "unknown key \"regoin\" at 1:1 (did you mean \"region\"?)\nregion is required"},
    {BASE "colour = 1\n", "example.org", "unknown key \"colour\" at 3:1"},
    {BASE "key_tag { a = \"b\" }\n", "example.org",
     "unknown key \"key_tag\" at 3:1 (did you mean \"key_tags\"?)"},
    {BASE "max_attempts = \"3\"\n", "example.org",
     "key \"max_attempts\" at 3:1: expected an integer, found string"},
    {BASE "max_attempts = 2.5\n", "example.org",
     "key \"max_attempts\" at 3:1: expected an integer, found float"},
    {BASE "max_attempts = 0\n", "example.org",
     "key \"max_attempts\" at 3:1: must be between 1 and 10"},
    {BASE "max_attempts = 11\n", "example.org",
     "key \"max_attempts\" at 3:1: must be between 1 and 10"},
    {BASE "max_attempts = -9223372036854775807\n", "example.org",
     "key \"max_attempts\" at 3:1: must be between 1 and 10"},
    {BASE "use_fips_endpoint = \"true\"\n", "example.org",
     "key \"use_fips_endpoint\" at 3:1: expected a bool (true or false), found string"},
    {"region = 1\nkey_metadata_file = \"/km\"\n", "example.org",
     "key \"region\" at 1:1: expected a string, found integer"},
    {"region = \"us_east_2\"\nkey_metadata_file = \"/km\"\n", "example.org",
     "key \"region\" at 1:1: must be an AWS region name such as us-east-2, cn-north-1 or "
     "us-gov-west-1"},
    {"region = \"us-east\"\nkey_metadata_file = \"/km\"\n", "example.org",
     "key \"region\" at 1:1: must be an AWS region name such as us-east-2, cn-north-1 or "
     "us-gov-west-1"},
    {"region = \"US-EAST-2\"\nkey_metadata_file = \"/km\"\n", "example.org",
     "key \"region\" at 1:1: must be an AWS region name such as us-east-2, cn-north-1 or "
     "us-gov-west-1"},
    {BASE "access_key_id = \"AKIA\"\n", "example.org",
     "access_key_id and secret_access_key must be set together (only access_key_id is set)"},
    {BASE "secret_access_key = \"TOPSECRET\"\n", "example.org",
     "access_key_id and secret_access_key must be set together (only secret_access_key is set)"},
    {"region = \"us-east-2\"\n", "example.org",
     "one of key_metadata_file, key_identifier_file or key_identifier_value is required"},
    {BASE "key_identifier_file = \"/other\"\n", "example.org",
     "key_metadata_file (at 2:1) and key_identifier_file (at 3:1) name different files; set "
     "one of them"},
    {BASE "key_identifier_value = \"abc\"\n", "example.org",
     "set a key identifier file (key_metadata_file or key_identifier_file) or "
     "key_identifier_value, not both"},
    {"region = \"us-east-2\"\nkey_identifier_value = \"a b\"\n", "example.org",
     "key \"key_identifier_value\" at 2:1: character U+0020 at position 2 is not "
     "allowed: " SERVER_ID_RULE},
    {"region = \"us-east-2\"\nkey_identifier_value = \"prod/server-1\"\n", "example.org",
     "key \"key_identifier_value\" at 2:1: character '/' at position 5 is not "
     "allowed: " SERVER_ID_RULE},
    {"region = \"us-east-2\"\nkey_identifier_value = \"alias/aws/x\"\n", "example.org",
     "key \"key_identifier_value\" at 2:1: character '/' at position 6 is not "
     "allowed: " SERVER_ID_RULE},
    {"region = \"us-east-2\"\nkey_identifier_value = \"srv.1\"\n", "example.org",
     "key \"key_identifier_value\" at 2:1: character '.' at position 4 is not "
     "allowed: " SERVER_ID_RULE},
    {"region = \"us-east-2\"\nkey_identifier_value = \"s\u00e9rver:1\"\n", "example.org",
     "key \"key_identifier_value\" at 2:1: character U+00E9 at position 2 is not "
     "allowed: " SERVER_ID_RULE},
    /* the settings that judge other servers are bounded */
    {BASE "stale_alias_age = \"4h\"\n", "example.org", "key \"stale_alias_age\" at 3:1: " STALE_4H},
    {BASE "stale_alias_age = \"167h59m59.999s\"\n", "example.org",
     "key \"stale_alias_age\" at 3:1: \"167h59m59.999s\" is less than the minimum of 168h (7 "
     "days): " STALE_RULE},
    {BASE "orphan_key_age = \"1m\"\n", "example.org",
     "key \"orphan_key_age\" at 3:1: \"1m\" is less than the minimum of 24h: " ORPHAN_RULE},
    {BASE "orphan_key_age = \"23h59m59s\"\n", "example.org",
     "key \"orphan_key_age\" at 3:1: \"23h59m59s\" is less than the minimum of 24h: " ORPHAN_RULE},
    {BASE "refresh_aliases_interval = \"720h\"\n", "example.org",
     "key \"refresh_aliases_interval\" at 3:1: \"720h\" is more than a quarter of stale_alias_age "
     "= 336h, the default (at most 84h): " REFRESH_RULE},
    {BASE "stale_alias_age = \"170h\"\nrefresh_aliases_interval = \"42h31m\"\n", "example.org",
     "key \"refresh_aliases_interval\" at 4:1: \"42h31m\" is more than a quarter of "
     "stale_alias_age = \"170h\" (at most 42h30m): " REFRESH_RULE},
    {BASE "stale_alias_age = \"8760h\"\nrefresh_aliases_interval = \"42h0m0.001s\"\n",
     "example.org",
     "key \"refresh_aliases_interval\" at 4:1: \"42h0m0.001s\" is more than 42h, a quarter of the "
     "shortest stale_alias_age any server may use (168h): " REFRESH_FLEET_RULE},
    /* one cause, one note: a refresh judged against a refused stale_alias_age is not */
    {BASE "stale_alias_age = \"4h\"\nrefresh_aliases_interval = \"6h\"\n", "example.org",
     "key \"stale_alias_age\" at 3:1: " STALE_4H},
    {BASE "stale_alias_age = \"1d\"\nrefresh_aliases_interval = \"6h\"\n", "example.org",
     "key \"stale_alias_age\" at 3:1: \"1d\" is not a duration (use a number and a unit: ns, us, "
     "ms, s, m, h; e.g. \"6h\", \"90s\", \"1h30m\")"},
    {BASE "key_policy_file = \"" DATA("config_policy_bad.json") "\"\n", "example.org",
     "key \"key_policy_file\" at 3:1: \"" DATA(
         "config_policy_bad.json") "\" is not valid JSON: 4:24: string or '}' expected near ','"},
    {BASE "key_policy_file = \"" DATA("config_policy_array.json") "\"\n", "example.org",
     "key \"key_policy_file\" at 3:1: \"" DATA(
         "config_policy_array.json") "\" does not hold a JSON object (a key policy document)"},
    {BASE "key_policy_file = \"/nonexistent/policy.json\"\n", "example.org",
     "key \"key_policy_file\" at 3:1: cannot read \"/nonexistent/policy.json\": No such file or "
     "directory"},
    {BASE "key_policy_file = \"/dev/zero\"\n", "example.org",
     "key \"key_policy_file\" at 3:1: \"/dev/zero\" is not a regular file"},
    {BASE "ca_bundle = \"/nonexistent.pem\"\n", "example.org",
     "key \"ca_bundle\" at 3:1: cannot read \"/nonexistent.pem\": No such file or directory"},
    {BASE "endpoint = \"kms.example.test\"\n", "example.org",
     "key \"endpoint\" at 3:1: must be a URL starting with https:// or http://"},
    {BASE "endpoint = \"https://\"\n", "example.org", "key \"endpoint\" at 3:1: URL has no host"},
    {BASE "endpoint = \"https://a b\"\n", "example.org",
     "key \"endpoint\" at 3:1: URL must not contain spaces or control characters"},
    {BASE "log_level = \"verbose\"\n", "example.org",
     "key \"log_level\" at 3:1: expected one of trace, debug, info, warn, error"},
    {BASE "log_level = 3\n", "example.org",
     "key \"log_level\" at 3:1: expected a string (trace, debug, info, warn or error), found "
     "integer"},
    {BASE "refresh_aliases_interval = 6\n", "example.org",
     "key \"refresh_aliases_interval\" at 3:1: expected a duration string such as \"6h\", found "
     "integer"},
    {BASE "refresh_aliases_interval = \"6\"\n", "example.org",
     "key \"refresh_aliases_interval\" at 3:1: \"6\" is not a duration (use a number and a unit: "
     "ns, us, ms, s, m, h; e.g. \"6h\", \"90s\", \"1h30m\")"},
    {BASE "stale_alias_age = \"1d\"\n", "example.org",
     "key \"stale_alias_age\" at 3:1: \"1d\" is not a duration (use a number and a unit: ns, us, "
     "ms, s, m, h; e.g. \"6h\", \"90s\", \"1h30m\")"},
    {BASE "orphan_key_age = \"-1h\"\n", "example.org",
     "key \"orphan_key_age\" at 3:1: must be a positive duration of at least 1ms"},
    {BASE "orphan_key_age = \"0\"\n", "example.org",
     "key \"orphan_key_age\" at 3:1: must be a positive duration of at least 1ms"},
    {BASE "orphan_key_age = \"999us\"\n", "example.org",
     "key \"orphan_key_age\" at 3:1: must be a positive duration of at least 1ms"},
    {BASE "orphan_key_age = \"9999999999h\"\n", "example.org",
     "key \"orphan_key_age\" at 3:1: \"9999999999h\" is not a duration (use a number and a unit: "
     "ns, us, ms, s, m, h; e.g. \"6h\", \"90s\", \"1h30m\")"},
    {BASE "key_tags = \"team=a\"\n", "example.org",
     "key \"key_tags\" at 3:1: expected an object of strings such as { team = \"a\" }, found "
     "string"},
    {BASE "key_tags { a = \"1\" }\nkey_tags = { b = \"2\" }\n", "example.org",
     "key \"key_tags\" is set twice (at 3:1 and 4:1); set it once"},
    {BASE "key_tags {\n  \"aws:owner\" = \"x\"\n  \"AWS:x\" = \"y\"\n  \"Spire-x\" = \"z\"\n"
          "  n = 1\n  \"\" = \"e\"\n  \"bad!\" = \"v\"\n  ok = \"bad#\"\n}\n",
     "example.org",
     "tag \"aws:owner\" in key_tags at 4:3: tag keys starting with \"aws:\" are reserved by AWS\n"
     "tag \"AWS:x\" in key_tags at 5:3: tag keys starting with \"aws:\" are reserved by AWS\n"
     "tag \"Spire-x\" in key_tags at 6:3: tag keys starting with \"spire-\" are reserved by the "
     "plugin\n"
     "tag \"n\" in key_tags at 7:3: expected a string, found integer\n"
     "tag \"\" in key_tags at 8:3: tag key must not be empty\n"
     "tag \"bad!\" in key_tags at 9:3: may hold only letters, digits, spaces and _ . : / = + - @\n"
     "tag \"ok\" in key_tags at 10:3: may hold only letters, digits, spaces and _ . : / = + - @"},
    {BASE "key_tags { emoji = \"\xF0\x9F\x98\x80\" }\n", "example.org",
     "tag \"emoji\" in key_tags at 3:12: may hold only letters, digits, spaces and _ . : / = + - "
     "@"},
    /* parse errors are one note */
    {"region = \"us-east-2\"\nkey_metadata_file \"/km\"\n", "example.org",
     "2:19: expected '=' or '{' after key \"key_metadata_file\", found string"},
    /* every problem at once, in table order after unknown keys */
    {"regoin = \"x\"\nmax_attempts = \"3\"\nsecret_access_key = 42\nlog_level = \"loud\"\n"
     "key_identifier_value = \"alias/aws/a\"\nkey_metadata_file = \"/km\"\n",
     "",
     "trust_domain is required\n"
     "unknown key \"regoin\" at 1:1 (did you mean \"region\"?)\n"
     "key \"secret_access_key\" at 3:1: expected a string, found integer\n"
     "key \"key_identifier_value\" at 5:1: character '/' at position 6 is not "
     "allowed: " SERVER_ID_RULE "\n"
     "key \"max_attempts\" at 2:1: expected an integer, found string\n"
     "key \"log_level\" at 4:1: expected one of trace, debug, info, warn, error\n"
     "access_key_id and secret_access_key must be set together (only secret_access_key is set)\n"
     "region is required\n"
     "set a key identifier file (key_metadata_file or key_identifier_file) or "
     "key_identifier_value, not both"},
};

static void test_bad_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        config_notes notes = {0};
        plugin_config *config = config_load(bad_cases[i].text, bad_cases[i].trust_domain, &notes);
        if (config != NULL)
            fail_msg("case %zu: accepted", i);
        char *joined = config_notes_join(&notes, "\n");
        if (strcmp(joined, bad_cases[i].notes) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, joined, bad_cases[i].notes);
        free(joined);
        config_notes_clear(&notes);
    }
}

static void test_tag_limits(void **state)
{
    (void)state;
    char text[16384] = BASE "key_tags {\n";
    for (int i = 0; i < 51; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "  t%d = \"v\"\n", i);
    strcat(text, "}\n");
    config_notes notes = {0};
    assert_null(config_load(text, "example.org", &notes));
    assert_int_equal(notes.count, 1);
    assert_string_equal(notes.items[0], "key \"key_tags\" at 3:1: at most 50 tags are allowed, "
                                        "found 51");
    config_notes_clear(&notes);

    char long_key[129 + 1], long_value[257 + 1];
    memset(long_key, 'k', 129), long_key[129] = '\0';
    memset(long_value, 'v', 257), long_value[257] = '\0';
    snprintf(text, sizeof text, BASE "key_tags {\n  %s = \"v\"\n  ok = \"%s\"\n}\n", long_key,
             long_value);
    assert_null(config_load(text, "example.org", &notes));
    assert_int_equal(notes.count, 2);
    assert_non_null(strstr(notes.items[0], "tag key is longer than 128 characters"));
    assert_string_equal(notes.items[1],
                        "tag \"ok\" in key_tags at 5:3: tag value is longer than 256 characters");
    config_notes_clear(&notes);

    /* exactly at the limits, counted in characters: 128 x U+00E9 is 256 bytes */
    char key128[2 * 128 + 1] = "", value256[256 + 1];
    for (int i = 0; i < 128; i++)
        strcat(key128, "\xC3\xA9");
    memset(value256, 'v', 256), value256[256] = '\0';
    snprintf(text, sizeof text, BASE "key_tags {\n  \"%s\" = \"%s\"\n}\n", key128, value256);
    config_free(load_ok(text));
}

/* Tag mode: every CreateKey also carries the five spire-* tags, and AWS allows
 * 50 per key, so key_tags holds at most 45; alias mode keeps 50. */
static void test_tag_mode_leaves_room_for_spire_tags(void **state)
{
    (void)state;
    char text[16384];
    for (int count = 45; count <= 46; count++) {
        snprintf(text, sizeof text, BASE "enable_tag_based_key_discovery = true\nkey_tags {\n");
        for (int i = 0; i < count; i++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "  t%d = \"v\"\n", i);
        strcat(text, "}\n");
        config_notes notes = {0};
        plugin_config *config = config_load(text, "example.org", &notes);
        if (count == 45) {
            assert_non_null(config);
            assert_true(config->enable_tag_based_key_discovery);
            assert_int_equal(config->key_tag_count, 45);
            config_free(config);
            continue;
        }
        assert_null(config);
        assert_int_equal(notes.count, 1);
        assert_string_equal(notes.items[0],
                            "key \"key_tags\" at 4:1: at most 45 tags are allowed with "
                            "enable_tag_based_key_discovery = true, found 46: every key also "
                            "carries the 5 spire-* tags, and AWS allows 50 tags per key");
        config_notes_clear(&notes);
        /* the same 46 tags in alias mode are fine */
        snprintf(text, sizeof text, BASE "enable_tag_based_key_discovery = false\nkey_tags {\n");
        for (int i = 0; i < count; i++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "  t%d = \"v\"\n", i);
        strcat(text, "}\n");
        config_free(load_ok(text));
    }
    config_notes notes = {0};
    assert_null(
        config_load(BASE "enable_tag_based_key_discovery = \"yes\"\n", "example.org", &notes));
    assert_string_equal(notes.items[0], "key \"enable_tag_based_key_discovery\" at 3:1: "
                                        "expected a bool (true or false), found string");
    config_notes_clear(&notes);
}

static void test_notes_are_bounded(void **state)
{
    (void)state;
    char text[4096] = "";
    for (int i = 0; i < 100; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "unknown%d = 1\n", i);
    config_notes notes = {0};
    assert_null(config_load(text, "example.org", &notes));
    assert_int_equal(notes.count, CONFIG_MAX_NOTES + 1);
    assert_string_equal(notes.items[0], "unknown key \"unknown0\" at 1:1");
    assert_string_equal(notes.items[CONFIG_MAX_NOTES], "... and 82 more problems");
    config_notes_clear(&notes);
}

static void test_server_id_length(void **state)
{
    (void)state;
    char id[258], text[1024];
    memset(id, 'a', 256), id[256] = '\0';
    snprintf(text, sizeof text, "region = \"us-east-2\"\nkey_identifier_value = \"%s\"\n", id);
    config_free(load_ok(text));
    memset(id, 'a', 257), id[257] = '\0';
    snprintf(text, sizeof text, "region = \"us-east-2\"\nkey_identifier_value = \"%s\"\n", id);
    config_notes notes = {0};
    assert_null(config_load(text, "example.org", &notes));
    assert_string_equal(notes.items[0],
                        "key \"key_identifier_value\" at 2:1: is longer than 256 characters");
    config_notes_clear(&notes);
}

static void test_secret_never_echoed(void **state)
{
    (void)state;
    const char *texts[] = {
        "secret_access_key = 123456789\n",
        "secret_access_key = [\"SECRETVALUE\"]\n",
        "secret_access_key { SECRETVALUE = \"SECRETVALUE\" }\n",
        "secret_access_key = \"SECRETVALUE\"\nsecret_acess_key = \"SECRETVALUE\"\n",
        "secret_access_key = SECRETVALUE\n",
        "secret_access_key = \"SECRETVALUE\n",
        "{\"secret_access_key\": {\"SECRETVALUE\": 1}}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        config_notes notes = {0};
        assert_null(config_load(texts[i], "example.org", &notes));
        char *joined = config_notes_join(&notes, "\n");
        if (strstr(joined, "SECRETVALUE") != NULL || strstr(joined, "123456789") != NULL)
            fail_msg("case %zu echoes the secret: %s", i, joined);
        free(joined);
        config_notes_clear(&notes);
    }
}

static void test_notes_join(void **state)
{
    (void)state;
    config_notes notes = {0};
    char *empty = config_notes_join(&notes, "; ");
    assert_string_equal(empty, "");
    free(empty);
    config_notes_add(&notes, "a %d", 1);
    config_notes_add(&notes, "b");
    char *joined = config_notes_join(&notes, "; ");
    assert_string_equal(joined, "a 1; b");
    free(joined);
    config_notes_clear(&notes);
    assert_int_equal(notes.count, 0);
}

static void test_table_is_well_formed(void **state)
{
    (void)state;
    size_t count;
    const schema_key *keys = schema_keys(&count);
    assert_true(count >= 18);
    for (size_t i = 0; i < count; i++) {
        assert_non_null(keys[i].doc);
        assert_non_null(keys[i].required);
        assert_ptr_equal(schema_find(keys[i].name), &keys[i]);
        for (size_t j = i + 1; j < count; j++)
            assert_string_not_equal(keys[i].name, keys[j].name);
    }
    assert_true(schema_find("secret_access_key")->flags & SCHEMA_SECRET);
    assert_true(schema_find("orphan_key_age")->flags & SCHEMA_ADVANCED);
    assert_null(schema_find("nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_config_and_defaults),
        cmocka_unit_test(test_every_key_set),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_printer_outputs),
        cmocka_unit_test(test_duplicates_last_wins),
        cmocka_unit_test(test_duplicate_logged_at_debug),
        cmocka_unit_test(test_same_file_under_both_names),
        cmocka_unit_test(test_empty_string_means_unset),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_tag_limits),
        cmocka_unit_test(test_tag_mode_leaves_room_for_spire_tags),
        cmocka_unit_test(test_notes_are_bounded),
        cmocka_unit_test(test_server_id_length),
        cmocka_unit_test(test_secret_never_echoed),
        cmocka_unit_test(test_notes_join),
        cmocka_unit_test(test_table_is_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

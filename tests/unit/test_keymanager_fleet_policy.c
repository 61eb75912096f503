/* Unit tests of the fleet tasks' pure decisions: stale aliases, orphan keys,
 * key references; with exact clocks at the age boundaries and trust domain /
 * server id names that share prefixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keymanager/fleet_internal.h"

#define HOUR_MS   (3600LL * 1000)
#define HOUR_S    3600.0
#define DAY_S     (24 * HOUR_S)
#define NOW_S     1800000000.0
#define STALE_MS  (336 * HOUR_MS)
#define ORPHAN_MS (48 * HOUR_MS)
#define TD        "example.org"
#define SERVER    "7d3a2c2e-0000-4000-8000-000000000001"
#define OTHER     "7d3a2c2e-0000-4000-8000-000000000002"
#define KEY_UUID  "0b6a2f9e-1111-4222-8333-444455556666"
#define KEY_ARN   "arn:aws:kms:us-east-2:123456789012:key/" KEY_UUID

static bool stale(const char *alias, double last_updated_s)
{
    return fleet_alias_is_stale(alias, KEY_UUID, last_updated_s, TD, SERVER, NOW_S, STALE_MS);
}

static void test_age_boundaries(void **state)
{
    (void)state;
    assert_false(fleet_is_older_than(NOW_S - (13 * DAY_S + 23 * HOUR_S), NOW_S, STALE_MS));
    assert_false(fleet_is_older_than(NOW_S - 14 * DAY_S + 0.001, NOW_S, STALE_MS));
    assert_true(fleet_is_older_than(NOW_S - 14 * DAY_S, NOW_S, STALE_MS));
    assert_false(fleet_is_older_than(NOW_S - 47 * HOUR_S, NOW_S, ORPHAN_MS));
    assert_true(fleet_is_older_than(NOW_S - 48 * HOUR_S, NOW_S, ORPHAN_MS));
    assert_false(fleet_is_older_than(0, NOW_S, ORPHAN_MS));             /* date missing */
    assert_false(fleet_is_older_than(NOW_S + DAY_S, NOW_S, ORPHAN_MS)); /* clock skew */
}

static void test_stale_alias_of_other_server(void **state)
{
    (void)state;
    const char *alias = "alias/SPIRE_SERVER/example_org/" OTHER "/x509-CA-A";
    assert_false(stale(alias, NOW_S - (13 * DAY_S + 23 * HOUR_S)));
    assert_true(stale(alias, NOW_S - 14 * DAY_S));
    assert_true(stale(alias, NOW_S - 400 * DAY_S));
}

static void test_own_alias_never_stale(void **state)
{
    (void)state;
    assert_false(stale("alias/SPIRE_SERVER/example_org/" SERVER "/x509-CA-A", NOW_S - 400 * DAY_S));
}

static void test_server_id_matched_by_whole_component(void **state)
{
    (void)state;
    /* our id is a prefix of theirs, theirs is a prefix of ours: other servers */
    assert_true(stale("alias/SPIRE_SERVER/example_org/" SERVER "0/k", NOW_S - 15 * DAY_S));
    assert_true(stale("alias/SPIRE_SERVER/example_org/7d3a2c2e/k", NOW_S - 15 * DAY_S));
}

static void test_other_trust_domains_never_stale(void **state)
{
    (void)state;
    double old = NOW_S - 400 * DAY_S;
    assert_false(stale("alias/SPIRE_SERVER/example_org2/" OTHER "/k", old));
    assert_false(stale("alias/SPIRE_SERVER/example_org_uk/" OTHER "/k", old));
    assert_false(stale("alias/SPIRE_SERVER/example_or/" OTHER "/k", old));
    assert_false(stale("alias/SPIRE_SERVER/example/" OTHER "/k", old));
    assert_false(stale("alias/SPIRE_SERVER/other.org/" OTHER "/k", old));
    assert_false(stale("alias/aws/kms", old));
    assert_false(stale("alias/my-app-key", old));
}

static void test_dotted_and_underscored_trust_domains_share_names(void **state)
{
    (void)state;
    /* as upstream: example_org and example.org both become example_org */
    assert_true(fleet_alias_is_stale("alias/SPIRE_SERVER/example_org/" OTHER "/k", KEY_UUID,
                                     NOW_S - 15 * DAY_S, "example_org", SERVER, NOW_S, STALE_MS));
}

static void test_alias_forms_that_are_not_ours(void **state)
{
    (void)state;
    double old = NOW_S - 400 * DAY_S;
    assert_false(stale("alias/SPIRE_SERVER/example_org", old));
    assert_false(stale("alias/SPIRE_SERVER/example_org/", old));
    assert_false(stale("alias/SPIRE_SERVER/example_org/" OTHER, old));
    assert_false(stale("alias/SPIRE_SERVER/example_org/" OTHER "/", old));
    assert_false(fleet_alias_is_stale("alias/SPIRE_SERVER/example_org/" OTHER "/k", "", old, TD,
                                      SERVER, NOW_S, STALE_MS)); /* no target */
}

static kms_key_metadata key_with(const char *description, double created_s)
{
    kms_key_metadata key = {.enabled = true, .creation_date = created_s};
    strcpy(key.key_id, KEY_UUID);
    strcpy(key.arn, KEY_ARN);
    strcpy(key.key_state, "Enabled");
    strcpy(key.key_manager, "CUSTOMER");
    strcpy(key.description, description);
    return key;
}

static bool orphan(const kms_key_metadata *key)
{
    return fleet_key_is_orphan(key, false, TD, NOW_S, ORPHAN_MS);
}

static void test_orphan_key_boundaries(void **state)
{
    (void)state;
    kms_key_metadata young =
        key_with("SPIRE_SERVER_KEY/example_org/x509-CA-A", NOW_S - 47 * HOUR_S);
    kms_key_metadata edge = key_with("SPIRE_SERVER_KEY/example_org/x509-CA-A", NOW_S - 48 * HOUR_S);
    kms_key_metadata almost =
        key_with("SPIRE_SERVER_KEY/example_org/x509-CA-A", NOW_S - 48 * HOUR_S + 0.001);
    assert_false(orphan(&young));
    assert_false(orphan(&almost));
    assert_true(orphan(&edge));
}

static void test_orphan_key_description_forms(void **state)
{
    (void)state;
    double old = NOW_S - 30 * DAY_S;
    kms_key_metadata upstream = key_with("SPIRE_SERVER_KEY/example_org/jwt-signer", old);
    kms_key_metadata spec = key_with("SPIRE_SERVER/example_org", old);
    kms_key_metadata longer = key_with("SPIRE_SERVER_KEY/example_org2/jwt-signer", old);
    kms_key_metadata dotted = key_with("SPIRE_SERVER_KEY/example_org_uk/jwt-signer", old);
    kms_key_metadata spec_longer = key_with("SPIRE_SERVER/example_org_uk", old);
    kms_key_metadata spec_suffix = key_with("SPIRE_SERVER/example_org/extra", old);
    kms_key_metadata unrelated = key_with("my application key", old);
    assert_true(orphan(&upstream));
    assert_true(orphan(&spec));
    assert_false(orphan(&longer));
    assert_false(orphan(&dotted));
    assert_false(orphan(&spec_longer));
    assert_false(orphan(&spec_suffix));
    assert_false(orphan(&unrelated));
}

static void test_orphan_key_needs_unaliased_enabled_customer_key(void **state)
{
    (void)state;
    kms_key_metadata key = key_with("SPIRE_SERVER_KEY/example_org/k", NOW_S - 30 * DAY_S);
    assert_true(orphan(&key));
    assert_false(fleet_key_is_orphan(&key, true, TD, NOW_S, ORPHAN_MS));
    kms_key_metadata disabled = key;
    disabled.enabled = false;
    strcpy(disabled.key_state, "PendingDeletion");
    assert_false(orphan(&disabled));
    kms_key_metadata aws_managed = key;
    strcpy(aws_managed.key_manager, "AWS");
    assert_false(orphan(&aws_managed));
}

static void test_key_references(void **state)
{
    (void)state;
    assert_true(fleet_key_ref_matches(KEY_UUID, KEY_UUID, KEY_ARN));
    assert_true(fleet_key_ref_matches(KEY_ARN, KEY_UUID, KEY_ARN));
    assert_true(fleet_key_ref_matches(KEY_ARN, KEY_UUID, ""));
    assert_false(fleet_key_ref_matches("", KEY_UUID, KEY_ARN));
    assert_false(fleet_key_ref_matches(NULL, KEY_UUID, KEY_ARN));
    assert_false(fleet_key_ref_matches("0b6a2f9e-1111-4222-8333-000000000000", KEY_UUID, KEY_ARN));
    /* an ARN naming a key whose id merely ends like ours */
    assert_false(fleet_key_ref_matches("arn:aws:kms:us-east-2:1:key/x" KEY_UUID, KEY_UUID, ""));
    assert_false(fleet_key_ref_matches("arn:aws:kms:us-east-2:1:key/" KEY_UUID, "", ""));
}

static void test_first_refresh_comes_early_other_tasks_wait_a_period(void **state)
{
    (void)state;
    const int64_t hour = 3600LL * 1000;
    assert_int_equal(fleet_first_delay_ms(true, 6 * hour), FLEET_FIRST_REFRESH_MAX_DELAY_MS);
    assert_int_equal(fleet_first_delay_ms(true, 1000), 1000);
    assert_int_equal(fleet_first_delay_ms(false, 24 * hour), 24 * hour);
    assert_int_equal(fleet_first_delay_ms(false, 48 * hour), 48 * hour);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age_boundaries),
        cmocka_unit_test(test_stale_alias_of_other_server),
        cmocka_unit_test(test_own_alias_never_stale),
        cmocka_unit_test(test_server_id_matched_by_whole_component),
        cmocka_unit_test(test_other_trust_domains_never_stale),
        cmocka_unit_test(test_dotted_and_underscored_trust_domains_share_names),
        cmocka_unit_test(test_alias_forms_that_are_not_ours),
        cmocka_unit_test(test_orphan_key_boundaries),
        cmocka_unit_test(test_orphan_key_description_forms),
        cmocka_unit_test(test_orphan_key_needs_unaliased_enabled_customer_key),
        cmocka_unit_test(test_key_references),
        cmocka_unit_test(test_first_refresh_comes_early_other_tasks_wait_a_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

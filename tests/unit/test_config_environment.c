/* Unit tests for config_load_checked: a region left out of plugin_data is
 * left to the caller's environment check (which config_load, without one,
 * refuses), the check sees the loaded values, its notes come after
 * plugin_data's own and fail the load, and a region the region rule refused
 * is not reported a second time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

#define BASE "key_identifier_value = \"server-1\"\n"

static int checks_run;
static char seen_region[64];
static int seen_max_attempts;

static void accepting_check(const plugin_config *config, config_notes *notes)
{
    (void)notes;
    checks_run++;
    snprintf(seen_region, sizeof seen_region, "%s", config->region ? config->region : "(unset)");
    seen_max_attempts = config->max_attempts;
}

static void refusing_check(const plugin_config *config, config_notes *notes)
{
    (void)config;
    checks_run++;
    config_notes_add(notes, "no AWS region: set region in plugin_data, ...");
}

static int reset(void **state)
{
    (void)state;
    checks_run = 0;
    seen_region[0] = '\0';
    seen_max_attempts = -1;
    return 0;
}

static void test_region_optional_with_a_check(void **state)
{
    (void)state;
    config_notes notes = {0};
    plugin_config *config = config_load_checked(BASE, "example.org", accepting_check, &notes);
    assert_non_null(config);
    assert_int_equal(notes.count, 0);
    assert_null(config->region);
    assert_int_equal(checks_run, 1);
    assert_string_equal(seen_region, "(unset)");
    assert_int_equal(seen_max_attempts, 0);
    config_free(config);
}

static void test_check_sees_the_configured_values(void **state)
{
    (void)state;
    config_notes notes = {0};
    plugin_config *config = config_load_checked(BASE "region = \"eu-west-1\"\nmax_attempts = 6\n",
                                                "example.org", accepting_check, &notes);
    assert_non_null(config);
    assert_string_equal(seen_region, "eu-west-1");
    assert_int_equal(seen_max_attempts, 6);
    config_free(config);
}

static void test_check_notes_fail_the_load(void **state)
{
    (void)state;
    config_notes notes = {0};
    assert_null(config_load_checked(BASE, "example.org", refusing_check, &notes));
    assert_int_equal(notes.count, 1);
    assert_string_equal(notes.items[0], "no AWS region: set region in plugin_data, ...");
    config_notes_clear(&notes);
}

static void test_check_runs_next_to_other_problems(void **state)
{
    (void)state;
    config_notes notes = {0};
    assert_null(
        config_load_checked("regoin = \"us-east-1\"\n", "example.org", refusing_check, &notes));
    assert_int_equal(checks_run, 1);
    assert_int_equal(notes.count, 3);
    assert_non_null(strstr(notes.items[0], "unknown key \"regoin\""));
    assert_non_null(strstr(notes.items[1], "one of key_metadata_file"));
    assert_string_equal(notes.items[2], "no AWS region: set region in plugin_data, ...");
    config_notes_clear(&notes);
    /* no check on text that does not parse */
    assert_null(config_load_checked("region = ", "example.org", refusing_check, &notes));
    assert_int_equal(checks_run, 1);
    config_notes_clear(&notes);
}

static void test_refused_region_is_reported_once(void **state)
{
    (void)state;
    config_notes notes = {0};
    assert_null(
        config_load_checked(BASE "region = \"Mars\"\n", "example.org", refusing_check, &notes));
    assert_int_equal(checks_run, 0);
    assert_int_equal(notes.count, 1);
    assert_non_null(strstr(notes.items[0], "key \"region\" at 2:1"));
    config_notes_clear(&notes);
}

static void test_without_a_check_region_is_required(void **state)
{
    (void)state;
    config_notes notes = {0};
    assert_null(config_load(BASE, "example.org", &notes));
    assert_int_equal(notes.count, 1);
    assert_string_equal(notes.items[0], "region is required");
    config_notes_clear(&notes);
    assert_null(config_load_checked(BASE, "example.org", NULL, &notes));
    assert_string_equal(notes.items[0], "region is required");
    config_notes_clear(&notes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_region_optional_with_a_check, reset),
        cmocka_unit_test_setup(test_check_sees_the_configured_values, reset),
        cmocka_unit_test_setup(test_check_notes_fail_the_load, reset),
        cmocka_unit_test_setup(test_check_runs_next_to_other_problems, reset),
        cmocka_unit_test_setup(test_refused_region_is_reported_once, reset),
        cmocka_unit_test_setup(test_without_a_check_region_is_required, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of the operator commands' option parsing (cli_args.c): which
 * command takes which option, both "--opt value" and "--opt=value", the
 * defaults, the plugin's bounds on ages, the window and price checks, and
 * "did you mean" for a mistyped option; plus the small output helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli_internal.h"
#include "keymanager/estate.h"

static int parse(cli_command command, cli_options *out, char *error, ...)
{
    char *argv[32];
    int argc = 0;
    va_list args;
    va_start(args, error);
    for (char *arg = va_arg(args, char *); arg != NULL && argc < 32; arg = va_arg(args, char *))
        argv[argc++] = arg;
    va_end(args);
    return cli_parse_options(command, argc, argv, out, error, 256);
}

static void defaults(void **state)
{
    (void)state;
    cli_options o;
    char error[256];
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, NULL), 0);
    assert_int_equal(o.command, CLI_KEYS_LIST);
    assert_int_equal(o.stale_alias_age_ms, 14 * ESTATE_DAY_MS);
    assert_int_equal(o.orphan_key_age_ms, 48 * ESTATE_HOUR_MS);
    assert_true(o.price_usd == 1.0);
    assert_int_equal(o.pending_window_days, 7);
    assert_false(o.json);
    assert_false(o.yes);
    assert_null(o.trust_domain);
    assert_null(o.region);
}

static void every_form_of_value(void **state)
{
    (void)state;
    cli_options o;
    char error[256];
    assert_int_equal(parse(CLI_KEYS_PRUNE, &o, error, "--trust-domain", "example.org", "--yes",
                           "--pending-window-days=30", "--region", "eu-west-1", "--profile=dev",
                           "--endpoint", "http://127.0.0.1:1", "--json", "--stale-alias-age",
                           "168h", "--orphan-key-age=24h", "--price", "0.5", "--debug", NULL),
                     0);
    assert_string_equal(o.trust_domain, "example.org");
    assert_true(o.yes);
    assert_int_equal(o.pending_window_days, 30);
    assert_string_equal(o.region, "eu-west-1");
    assert_string_equal(o.profile, "dev");
    assert_string_equal(o.endpoint, "http://127.0.0.1:1");
    assert_true(o.json);
    assert_true(o.debug);
    assert_int_equal(o.stale_alias_age_ms, 7 * ESTATE_DAY_MS);
    assert_int_equal(o.orphan_key_age_ms, 24 * ESTATE_HOUR_MS);
    assert_true(o.price_usd == 0.5);

    assert_int_equal(
        parse(CLI_DOCTOR, &o, error, "--config", "pd.hcl", "--trust-domain", "example.org", NULL),
        0);
    assert_string_equal(o.config_path, "pd.hcl");
}

static void bounds_of_the_plugin(void **state)
{
    (void)state;
    cli_options o;
    char error[256];
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--stale-alias-age", "167h59m", NULL), -1);
    assert_string_equal(error, "--stale-alias-age must be at least 168h: a shorter age could "
                               "prune the keys of live servers");
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--orphan-key-age", "23h", NULL), -1);
    assert_non_null(strstr(error, "--orphan-key-age must be at least 24h"));
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--orphan-key-age", "2d", NULL), -1);
    assert_non_null(strstr(error, "is not a duration"));
    assert_int_equal(parse(CLI_KEYS_PRUNE, &o, error, "--trust-domain", "td",
                           "--pending-"
                           "window-days",
                           "6", NULL),
                     -1);
    assert_string_equal(error, "--pending-window-days must be a whole number from 7 to 30");
    assert_int_equal(parse(CLI_KEYS_PRUNE, &o, error, "--trust-domain", "td",
                           "--pending-window-days", "31", NULL),
                     -1);
    assert_int_equal(parse(CLI_KEYS_PRUNE, &o, error, "--trust-domain", "td",
                           "--pending-window-days", "7x", NULL),
                     -1);
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--price", "-1", NULL), -1);
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--price", "nan", NULL), -1);
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--trust-domain", "Example.ORG", NULL), -1);
    assert_non_null(strstr(error, "--trust-domain: "));
}

static void usage_errors(void **state)
{
    (void)state;
    cli_options o;
    char error[256];
    assert_int_equal(parse(CLI_KEYS_PRUNE, &o, error, NULL), -1);
    assert_string_equal(error, "keys prune needs --trust-domain TD");
    assert_int_equal(parse(CLI_KEYS_PRUNE, &o, error, "--help", NULL), 0); /* help needs no TD */
    assert_true(o.help);
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--yes", NULL), -1); /* prune only */
    assert_string_equal(error, "--yes is not an option of keys list (it is one of keys prune)");
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--config", "x", NULL), -1);
    assert_string_equal(error, "--config is not an option of keys list (it is one of doctor)");
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--bogus", NULL), -1);
    assert_string_equal(error, "unknown option --bogus for keys list");
    assert_int_equal(parse(CLI_DOCTOR, &o, error, "--trust-domian", "x", NULL), -1);
    assert_string_equal(error,
                        "unknown option --trust-domian for doctor (did you mean --trust-domain?)");
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--region", NULL), -1);
    assert_string_equal(error, "--region needs a value");
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--region=", NULL), -1);
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "--json=yes", NULL), -1);
    assert_string_equal(error, "--json takes no value");
    assert_int_equal(parse(CLI_KEYS_LIST, &o, error, "stray", NULL), -1);
    assert_string_equal(error, "keys list takes no argument \"stray\"");
}

static void help_texts(void **state)
{
    (void)state;
    assert_non_null(strstr(cli_command_help(CLI_KEYS_LIST), "usage: spire-aws-kms keys list"));
    assert_non_null(strstr(cli_command_help(CLI_KEYS_PRUNE), "--pending-window-days N"));
    assert_non_null(strstr(cli_command_help(CLI_DOCTOR), "--config FILE"));
}

static void output_helpers(void **state)
{
    (void)state;
    char text[64];
    cli_format_duration(336 * ESTATE_HOUR_MS, text, sizeof text);
    assert_string_equal(text, "336h");
    cli_format_duration(90 * 60000, text, sizeof text);
    assert_string_equal(text, "90m");
    cli_format_time(1800000000.0, text, sizeof text);
    assert_string_equal(text, "2027-01-15T08:00:00Z");
    cli_format_time(0, text, sizeof text);
    assert_string_equal(text, "");
    cli_format_age(1800000000.0 - 20 * 86400, 1800000000.0, text, sizeof text);
    assert_string_equal(text, "20d ago");
    cli_format_age(1800000000.0 - 5 * 3600, 1800000000.0, text, sizeof text);
    assert_string_equal(text, "5h ago");
    cli_format_age(0, 1800000000.0, text, sizeof text);
    assert_string_equal(text, "-");
    assert_true(cli_clock_skew_ok(299.9));
    assert_true(cli_clock_skew_ok(-299.9));
    assert_false(cli_clock_skew_ok(300.0));
    assert_false(cli_clock_skew_ok(-412.0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(every_form_of_value),
        cmocka_unit_test(bounds_of_the_plugin),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(help_texts),
        cmocka_unit_test(output_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the AWS SDK environment (sdk_env.h): for the region, the CA
 * bundle, max attempts and the retry mode, the precedence plugin_data >
 * environment > shared config profile > default, the source each setting
 * reports, and the error text for every bad or missing value. The environment
 * is injected; shared config files are written to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/kms_internal.h"
#include "aws/sdk_env.h"

enum { MAX_VARIABLES = 12 };

typedef struct {
    char dir[64];
    char config_file[128];
    char bundle[128];
    const char *variables[MAX_VARIABLES]; /* "NAME=value" */
    char config_file_variable[160];
    aws_cred_env env;
} world;

static const char *world_getenv(void *ctx, const char *name)
{
    world *w = ctx;
    size_t len = strlen(name);
    for (int i = 0; i < MAX_VARIABLES && w->variables[i] != NULL; i++) {
        if (strncmp(w->variables[i], name, len) == 0 && w->variables[i][len] == '=')
            return w->variables[i] + len + 1;
    }
    return NULL;
}

static void set_variable(world *w, const char *assignment)
{
    for (int i = 0; i < MAX_VARIABLES; i++) {
        if (w->variables[i] == NULL) {
            w->variables[i] = assignment;
            return;
        }
    }
    fail_msg("too many variables");
}

static void write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/test_aws_sdk_env.XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    snprintf(w->config_file, sizeof w->config_file, "%s/config", w->dir);
    snprintf(w->bundle, sizeof w->bundle, "%s/ca.pem", w->dir);
    write_file(w->bundle, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    /* No HOME: ~/.aws/credentials is never the test machine's. */
    snprintf(w->config_file_variable, sizeof w->config_file_variable, "AWS_CONFIG_FILE=%s",
             w->config_file);
    set_variable(w, w->config_file_variable);
    set_variable(w, "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials");
    w->env = (aws_cred_env){.getenv = world_getenv, .ctx = w};
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    unlink(w->config_file);
    unlink(w->bundle);
    rmdir(w->dir);
    free(w);
    return 0;
}

static int resolve(world *w, const aws_client_config *config, aws_sdk_settings *out, aws_error *err)
{
    aws_error_clear(err);
    return aws_sdk_settings_resolve_env(config, &w->env, out, err);
}

static void expect_error(world *w, const aws_client_config *config, const char *fragment)
{
    aws_sdk_settings settings;
    aws_error err;
    assert_int_equal(resolve(w, config, &settings, &err), -1);
    assert_int_equal(err.status, AWS_ERR_VALIDATION);
    if (strstr(err.message, fragment) == NULL)
        fail_msg("\"%s\" not in \"%s\"", fragment, err.message);
}

/* --- region -------------------------------------------------------------------------- */

static void test_region_precedence(void **state)
{
    world *w = *state;
    write_file(w->config_file, "[default]\nregion = eu-west-3\n[profile other]\nregion = "
                               "ap-south-1\n");
    aws_client_config config = {0};
    aws_sdk_settings s;
    aws_error err;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.region, "eu-west-3");
    assert_string_equal(s.region_source, "region in shared profile \"default\"");

    set_variable(w, "AWS_PROFILE=other");
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.region, "ap-south-1");
    assert_string_equal(s.region_source, "region in shared profile \"other\"");

    set_variable(w, "AWS_DEFAULT_REGION=us-west-1");
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.region, "us-west-1");
    assert_string_equal(s.region_source, "AWS_DEFAULT_REGION");

    set_variable(w, "AWS_REGION=us-west-2");
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.region, "us-west-2");
    assert_string_equal(s.region_source, "AWS_REGION");

    config.region = "cn-north-1";
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.region, "cn-north-1");
    assert_string_equal(s.region_source, "plugin_data");
}

static void test_no_region_anywhere(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = ""};
    expect_error(w, &config,
                 "no AWS region: set region in plugin_data, AWS_REGION or AWS_DEFAULT_REGION in "
                 "SPIRE server's environment, or region in the shared config profile "
                 "\"default\"");
    set_variable(w, "AWS_PROFILE=team");
    set_variable(w, "AWS_REGION=");
    expect_error(w, &config, "profile \"team\"");
}

static void test_bad_region_names_its_source(void **state)
{
    world *w = *state;
    aws_client_config config = {0};
    set_variable(w, "AWS_REGION=useast2");
    expect_error(w, &config, "AWS_REGION: \"useast2\" is not an AWS region name");
    w->variables[2] = NULL;
    write_file(w->config_file, "[default]\nregion = Mars\n");
    expect_error(w, &config, "region in shared profile \"default\": \"Mars\" is not");
}

/* --- CA bundle ------------------------------------------------------------------------ */

static void test_ca_bundle_precedence_and_default(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = "us-east-2"};
    aws_sdk_settings s;
    aws_error err;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.ca_bundle, "");
    assert_string_equal(s.ca_bundle_source, "");

    char profile[256];
    snprintf(profile, sizeof profile, "[default]\nca_bundle = %s\n", w->bundle);
    write_file(w->config_file, profile);
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.ca_bundle, w->bundle);
    assert_string_equal(s.ca_bundle_source, "ca_bundle in shared profile \"default\"");

    char variable[160];
    snprintf(variable, sizeof variable, "AWS_CA_BUNDLE=%s", w->config_file);
    set_variable(w, variable);
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.ca_bundle, w->config_file);
    assert_string_equal(s.ca_bundle_source, "AWS_CA_BUNDLE");

    config.ca_bundle = w->bundle;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.ca_bundle, w->bundle);
    assert_string_equal(s.ca_bundle_source, "plugin_data");
}

static void test_unreadable_ca_bundle(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = "us-east-2"};
    set_variable(w, "AWS_CA_BUNDLE=/nonexistent/ca.pem");
    expect_error(w, &config,
                 "AWS_CA_BUNDLE: cannot read the CA bundle \"/nonexistent/ca.pem\": No such file");
}

/* --- max attempts ----------------------------------------------------------------------- */

static void test_max_attempts_precedence_and_default(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = "us-east-2"};
    aws_sdk_settings s;
    aws_error err;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_int_equal(s.max_attempts, 3);
    assert_string_equal(s.max_attempts_source, "default");

    write_file(w->config_file, "[default]\nmax_attempts = 7\n");
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_int_equal(s.max_attempts, 7);
    assert_string_equal(s.max_attempts_source, "max_attempts in shared profile \"default\"");

    set_variable(w, "AWS_MAX_ATTEMPTS=0"); /* 0 is unset: the profile's value holds */
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_int_equal(s.max_attempts, 7);

    w->variables[2] = "AWS_MAX_ATTEMPTS=5";
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_int_equal(s.max_attempts, 5);
    assert_string_equal(s.max_attempts_source, "AWS_MAX_ATTEMPTS");

    config.max_attempts = 2;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_int_equal(s.max_attempts, 2);
    assert_string_equal(s.max_attempts_source, "plugin_data");
}

static void test_bad_max_attempts(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = "us-east-2"};
    static const char *const bad[] = {"AWS_MAX_ATTEMPTS=11", "AWS_MAX_ATTEMPTS=-1",
                                      "AWS_MAX_ATTEMPTS=three", "AWS_MAX_ATTEMPTS=3 ",
                                      "AWS_MAX_ATTEMPTS=99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w->variables[2] = bad[i];
        expect_error(w, &config, "AWS_MAX_ATTEMPTS: \"");
        expect_error(w, &config, "is not a number of attempts from 1 to 10");
    }
    w->variables[2] = NULL;
    write_file(w->config_file, "[default]\nmax_attempts = 12\n");
    expect_error(w, &config, "max_attempts in shared profile \"default\": \"12\"");
}

/* --- retry mode ------------------------------------------------------------------------ */

static void test_retry_modes(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = "us-east-2"};
    aws_sdk_settings s;
    aws_error err;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
    assert_string_equal(s.retry_mode, "standard");
    set_variable(w, "AWS_RETRY_MODE=standard");
    assert_int_equal(resolve(w, &config, &s, &err), 0);

    w->variables[2] = "AWS_RETRY_MODE=legacy";
    expect_error(w, &config, "AWS_RETRY_MODE: retry mode \"legacy\" is not supported");
    w->variables[2] = "AWS_RETRY_MODE=adaptive";
    expect_error(w, &config, "AWS_RETRY_MODE: retry mode \"adaptive\" is not supported");
    expect_error(w, &config, "no client-side rate limiting");
    w->variables[2] = "AWS_RETRY_MODE=Standard"; /* the Go SDK is case-sensitive too */
    expect_error(w, &config, "AWS_RETRY_MODE: \"Standard\" is not a retry mode");

    w->variables[2] = NULL;
    write_file(w->config_file, "[default]\nretry_mode = adaptive\n");
    expect_error(w, &config, "retry_mode in shared profile \"default\": retry mode \"adaptive\"");
}

/* --- the shared files -------------------------------------------------------------------- */

static void test_unreadable_config_file(void **state)
{
    world *w = *state;
    aws_client_config config = {.region = "us-east-2"};
    w->variables[0] = "AWS_CONFIG_FILE=/";
    expect_error(w, &config, "cannot read the shared AWS config");
    /* Not read at all when plugin_data and the environment give everything. */
    config.ca_bundle = w->bundle;
    config.max_attempts = 3;
    set_variable(w, "AWS_RETRY_MODE=standard");
    aws_sdk_settings s;
    aws_error err;
    assert_int_equal(resolve(w, &config, &s, &err), 0);
}

static void test_client_takes_the_environment_region(void **state)
{
    world *w = *state;
    set_variable(w, "AWS_REGION=eu-central-1");
    set_variable(w, "AWS_MAX_ATTEMPTS=4");
    kms_client_hooks hooks = {.env = w->env};
    aws_client_config config = {.endpoint = "http://127.0.0.1:1"};
    aws_error err;
    kms_client *client = kms_client_new_with_hooks(&config, &hooks, &err);
    assert_non_null(client);
    kms_client_info info;
    kms_client_get_info(client, &info);
    assert_string_equal(info.region, "eu-central-1");
    assert_string_equal(info.region_source, "AWS_REGION");
    assert_int_equal(info.max_attempts, 4);
    assert_string_equal(info.sts_endpoint, "https://sts.eu-central-1.amazonaws.com");
    kms_client_free(client);

    w->variables[2] = "AWS_REGION=";
    w->variables[3] = "AWS_RETRY_MODE=legacy";
    assert_null(kms_client_new_with_hooks(&config, &hooks, &err));
    assert_non_null(strstr(err.message, "no AWS region"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_region_precedence),
        T(test_no_region_anywhere),
        T(test_bad_region_names_its_source),
        T(test_ca_bundle_precedence_and_default),
        T(test_unreadable_ca_bundle),
        T(test_max_attempts_precedence_and_default),
        T(test_bad_max_attempts),
        T(test_retry_modes),
        T(test_unreadable_config_file),
        T(test_client_takes_the_environment_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

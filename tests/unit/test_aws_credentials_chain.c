/* Unit tests for the shared-file INI parser and the choice of credential
 * source (order, skipping unconfigured sources, errors for broken ones), with
 * the environment given as a table and the shared files in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/credentials_internal.h"

/* --- INI parser ---------------------------------------------------------------- */

static void ini_sections_keys_comments(void **state)
{
    (void)state;
    aws_ini *ini = aws_ini_parse("# comment\n"
                                 "; other comment\n"
                                 "orphan = ignored\n"
                                 "[default]\n"
                                 "  AWS_Access_Key_ID   =   AKIADEFAULT   \n"
                                 "aws_secret_access_key=sec=ret=\r\n"
                                 "\n"
                                 "[ profile   dev ]\n"
                                 "region = eu-west-1\n"
                                 "s3 =\n"
                                 "  max_concurrent_requests = 10\n"
                                 "role_arn = arn:aws:iam::1:role/x\n"
                                 "no equals sign here\n"
                                 "[broken\n"
                                 "key = in a broken section\n"
                                 "[default]\n"
                                 "aws_access_key_id = AKIASECOND\n");
    assert_non_null(ini);
    assert_true(aws_ini_has_section(ini, "default"));
    assert_true(aws_ini_has_section(ini, "profile dev"));
    assert_false(aws_ini_has_section(ini, "dev"));
    assert_string_equal(aws_ini_get(ini, "default", "aws_access_key_id"), "AKIASECOND");
    assert_string_equal(aws_ini_get(ini, "default", "aws_secret_access_key"), "sec=ret=");
    assert_string_equal(aws_ini_get(ini, "profile dev", "region"), "eu-west-1");
    assert_string_equal(aws_ini_get(ini, "profile dev", "role_arn"), "arn:aws:iam::1:role/x");
    assert_null(aws_ini_get(ini, "profile dev", "max_concurrent_requests"));
    assert_string_equal(aws_ini_get(ini, "profile dev", "s3"), "");
    assert_null(aws_ini_get(ini, "default", "region"));
    assert_null(aws_ini_get(ini, "", "orphan"));
    assert_null(aws_ini_get(ini, "profile dev", "key"));
    aws_ini_free(ini);
}

static void ini_empty_and_missing(void **state)
{
    (void)state;
    aws_ini *ini = aws_ini_parse("");
    assert_non_null(ini);
    assert_false(aws_ini_has_section(ini, "default"));
    aws_ini_free(ini);
    bool missing = false;
    aws_error err;
    aws_error_clear(&err);
    assert_null(aws_ini_load("/nonexistent/dir/credentials", &missing, &err));
    assert_true(missing);
}

/* --- environment table and temp files --------------------------------------------- */

typedef struct {
    const char *pairs[64]; /* name, value, ..., NULL */
} env_table;

static const char *table_getenv(void *ctx, const char *name)
{
    env_table *table = ctx;
    for (size_t i = 0; table->pairs[i] != NULL; i += 2) {
        if (strcmp(table->pairs[i], name) == 0)
            return table->pairs[i + 1];
    }
    return NULL;
}

typedef struct {
    char dir[64];
    char credentials[128];
    char config[128];
    env_table table;
    aws_cred_env env;
} fixture;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/credchainXXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->credentials, sizeof f->credentials, "%s/credentials", f->dir);
    snprintf(f->config, sizeof f->config, "%s/config", f->dir);
    f->env.getenv = table_getenv;
    f->env.ctx = &f->table;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->credentials);
    unlink(f->config);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Sets the environment: the shared files always point into the temp dir. */
static void set_env(fixture *f, const char *const *pairs)
{
    size_t n = 0;
    f->table.pairs[n++] = "AWS_SHARED_CREDENTIALS_FILE";
    f->table.pairs[n++] = f->credentials;
    f->table.pairs[n++] = "AWS_CONFIG_FILE";
    f->table.pairs[n++] = f->config;
    for (size_t i = 0; pairs != NULL && pairs[i] != NULL; i++)
        f->table.pairs[n++] = pairs[i];
    f->table.pairs[n] = NULL;
}

static int resolve(fixture *f, const aws_credentials_options *options, aws_cred_plan *plan,
                   aws_error *err)
{
    static const aws_credentials_options none = {0};
    aws_error_clear(err);
    return aws_cred_plan_resolve(options != NULL ? options : &none, &f->env, plan, err);
}

/* Every source configured at once: each one wins over all that follow it. */
static void order_of_sources(void **state)
{
    fixture *f = *state;
    write_file(f->credentials, "[default]\naws_access_key_id=AKIAFILE\n"
                               "aws_secret_access_key=filesecret\n");
    const char *all[] = {"AWS_ACCESS_KEY_ID",
                         "AKIAENV",
                         "AWS_SECRET_ACCESS_KEY",
                         "envsecret",
                         "AWS_WEB_IDENTITY_TOKEN_FILE",
                         "/var/token",
                         "AWS_ROLE_ARN",
                         "arn:aws:iam::1:role/web",
                         "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                         "/v2/creds",
                         NULL};
    aws_credentials_options config = {.access_key_id = "AKIACONFIG", .secret_access_key = "cs"};
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;

    set_env(f, all);
    assert_int_equal(resolve(f, &config, plan, &err), 0);
    assert_string_equal(plan->source, "config");
    assert_string_equal(plan->static_credentials.access_key_id, "AKIACONFIG");

    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "environment");
    assert_string_equal(plan->static_credentials.access_key_id, "AKIAENV");

    set_env(f, all + 4);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "web_identity");
    assert_int_equal(plan->kind, AWS_CRED_PLAN_WEB_IDENTITY);
    assert_string_equal(plan->token_file, "/var/token");
    assert_string_equal(plan->web_identity_role.role_arn, "arn:aws:iam::1:role/web");

    set_env(f, all + 8);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "shared_files");
    assert_string_equal(plan->static_credentials.access_key_id, "AKIAFILE");

    unlink(f->credentials);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "container");
    assert_string_equal(plan->container_url, "http://169.254.170.2/v2/creds");

    set_env(f, NULL);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "imds");
    assert_string_equal(plan->imds_endpoint, "http://169.254.169.254");
    assert_true(plan->imds_v1_fallback);
    assert_string_equal(plan->tried, "config, environment, web identity, shared profile "
                                     "\"default\", container endpoint, EC2 instance metadata");

    const char *disabled[] = {"AWS_EC2_METADATA_DISABLED", "TRUE", NULL};
    set_env(f, disabled);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_int_equal(plan->kind, AWS_CRED_PLAN_NONE);
    assert_non_null(strstr(plan->tried, "disabled by AWS_EC2_METADATA_DISABLED"));
    aws_cred_plan_clear(plan);
    free(plan);
}

static void environment_variants(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    const char *alt[] = {
        "AWS_ACCESS_KEY", "AKIAALT", "AWS_SECRET_KEY", "alt", "AWS_SESSION_TOKEN", "tok", NULL};
    set_env(f, alt);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "environment");
    assert_string_equal(plan->static_credentials.access_key_id, "AKIAALT");
    assert_string_equal(plan->static_credentials.session_token, "tok");

    const char *half[] = {"AWS_ACCESS_KEY_ID", "AKIAHALF", NULL};
    set_env(f, half);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_non_null(strstr(err.message, "environment: AWS_ACCESS_KEY_ID is set but "
                                        "AWS_SECRET_ACCESS_KEY is not"));

    const char *empty[] = {"AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", "", NULL};
    set_env(f, empty);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "imds");

    aws_credentials_options half_config = {.secret_access_key = "SECRETVALUE"};
    assert_int_equal(resolve(f, &half_config, plan, &err), -1);
    assert_non_null(strstr(err.message, "config: secret_access_key is set but access_key_id"));
    assert_null(strstr(err.message, "SECRETVALUE"));
    free(plan);
}

static void web_identity_needs_role(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    const char *token_only[] = {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t", NULL};
    set_env(f, token_only);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_non_null(strstr(err.message, "web identity"));
    assert_non_null(strstr(err.message, "no role ARN"));

    const char *role_only[] = {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r", NULL};
    set_env(f, role_only);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "imds");

    const char *named[] = {"AWS_WEB_IDENTITY_TOKEN_FILE",
                           "/t",
                           "AWS_ROLE_ARN",
                           "arn:r",
                           "AWS_ROLE_SESSION_NAME",
                           "sess",
                           "AWS_REGION",
                           "eu-central-1",
                           NULL};
    set_env(f, named);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->web_identity_role.session_name, "sess");
    assert_string_equal(plan->region, "eu-central-1");
    assert_string_equal(aws_cred_plan_role_arn(plan), "arn:r");
    free(plan);
}

static void profiles(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    write_file(f->credentials, "[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=d\n"
                               "[dev]\naws_access_key_id=AKIADEV\naws_secret_access_key=v\n"
                               "aws_session_token=devtoken\n"
                               "[half]\naws_access_key_id=AKIAHALF\n");
    write_file(f->config, "[default]\nregion=us-west-2\n"
                          "[profile dev]\nregion=ap-south-1\naws_access_key_id=AKIACONFIGDEV\n"
                          "[dev2]\naws_access_key_id=AKIANOTAPROFILE\naws_secret_access_key=x\n"
                          "[profile proc]\ncredential_process = /bin/echo hi\n"
                          "[profile sso]\nsso_session = corp\n");
    set_env(f, NULL);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "shared_files");
    assert_string_equal(plan->profile, "default");
    assert_string_equal(plan->static_credentials.access_key_id, "AKIADEF");
    assert_string_equal(plan->region, "us-west-2");

    const char *dev[] = {"AWS_PROFILE", "dev", NULL};
    set_env(f, dev);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->static_credentials.access_key_id, "AKIADEV"); /* credentials wins */
    assert_string_equal(plan->static_credentials.session_token, "devtoken");
    assert_string_equal(plan->region, "ap-south-1");
    aws_credentials_options region = {.region = "us-east-2"};
    assert_int_equal(resolve(f, &region, plan, &err), 0);
    assert_string_equal(plan->region, "us-east-2");

    const char *dev2[] = {"AWS_PROFILE", "dev2", NULL};
    set_env(f, dev2);
    assert_int_equal(resolve(f, NULL, plan, &err), -1); /* "[dev2]" in config is not a profile */
    assert_non_null(strstr(err.message, "shared profile \"dev2\" (AWS_PROFILE) not found"));

    const char *half[] = {"AWS_PROFILE", "half", NULL};
    set_env(f, half);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_non_null(strstr(err.message, "shared profile \"half\": aws_access_key_id is set"));

    const char *proc[] = {"AWS_PROFILE", "proc", NULL};
    set_env(f, proc);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "credential_process");
    assert_int_equal(plan->kind, AWS_CRED_PLAN_PROCESS);
    assert_string_equal(plan->process_command, "/bin/echo hi");

    const char *sso[] = {"AWS_PROFILE", "sso", NULL};
    set_env(f, sso);
    assert_int_equal(resolve(f, NULL, plan, &err), -1); /* SSO: test_aws_credentials_sso.c */
    assert_non_null(strstr(err.message, "no [sso-session corp] section"));
    aws_cred_plan_clear(plan);
    free(plan);
}

static void default_profile_absent_is_skipped(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    write_file(f->credentials, "[other]\naws_access_key_id=A\naws_secret_access_key=s\n");
    write_file(f->config, "[default]\nregion=us-west-2\n"); /* a profile without credentials */
    set_env(f, NULL);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "imds");
    free(plan);
}

static void assume_role_chains(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    write_file(f->credentials, "[base]\naws_access_key_id=AKIABASE\naws_secret_access_key=b\n");
    write_file(f->config, "[profile one]\nrole_arn=arn:aws:iam::1:role/one\nsource_profile=base\n"
                          "external_id=ext\nrole_session_name=s1\nduration_seconds=900\n"
                          "[profile two]\nrole_arn=arn:aws:iam::1:role/two\nsource_profile=one\n"
                          "[profile self]\nrole_arn=arn:aws:iam::1:role/self\n"
                          "source_profile=self\naws_access_key_id=AKIASELF\n"
                          "aws_secret_access_key=s\n"
                          "[profile loop1]\nrole_arn=arn:r1\nsource_profile=loop2\n"
                          "[profile loop2]\nrole_arn=arn:r2\nsource_profile=loop1\n"
                          "[profile envsrc]\nrole_arn=arn:e\ncredential_source=Environment\n"
                          "[profile nosource]\nrole_arn=arn:n\n"
                          "[profile webprof]\nrole_arn=arn:w\nweb_identity_token_file=/w\n");
    const char *two[] = {"AWS_PROFILE", "two", NULL};
    set_env(f, two);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "shared_files");
    assert_int_equal(plan->kind, AWS_CRED_PLAN_STATIC);
    assert_string_equal(plan->static_credentials.access_key_id, "AKIABASE");
    assert_int_equal(plan->role_count, 2);
    assert_string_equal(plan->roles[0].role_arn, "arn:aws:iam::1:role/one");
    assert_string_equal(plan->roles[0].external_id, "ext");
    assert_string_equal(plan->roles[0].session_name, "s1");
    assert_int_equal(plan->roles[0].duration_seconds, 900);
    assert_string_equal(plan->roles[1].role_arn, "arn:aws:iam::1:role/two");
    assert_string_equal(aws_cred_plan_role_arn(plan), "arn:aws:iam::1:role/two");

    const char *self[] = {"AWS_PROFILE", "self", NULL};
    set_env(f, self);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->static_credentials.access_key_id, "AKIASELF");
    assert_int_equal(plan->role_count, 1);

    const char *loop[] = {"AWS_PROFILE", "loop1", NULL};
    set_env(f, loop);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_non_null(strstr(err.message, "too long or circular"));

    const char *envsrc[] = {"AWS_PROFILE", "envsrc", NULL};
    set_env(f, envsrc);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_non_null(strstr(err.message, "credential_source gives no credentials"));

    const char *nosource[] = {"AWS_PROFILE", "nosource", NULL};
    set_env(f, nosource);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_non_null(strstr(err.message, "role_arn needs source_profile"));

    const char *webprof[] = {"AWS_PROFILE", "webprof", NULL};
    set_env(f, webprof);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_int_equal(plan->kind, AWS_CRED_PLAN_WEB_IDENTITY);
    assert_string_equal(plan->source, "shared_files");
    assert_string_equal(plan->token_file, "/w");
    aws_cred_plan_clear(plan);
    free(plan);
}

static void container_uris(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    struct {
        const char *uri;
        bool allowed;
    } cases[] = {
        {"http://127.0.0.1:8080/creds", true},
        {"http://127.12.0.3/x", true},
        {"http://localhost:99/x", true},
        {"http://[::1]:80/x", true},
        {"http://169.254.170.2/x", true},
        {"http://169.254.170.23/v1/credentials", true},
        {"http://[fd00:ec2::23]/x", true},
        {"https://creds.example.com/x", true},
        {"http://169.254.169.254/x", false},
        {"http://example.com/x", false},
        {"http://127.0.0.1.evil.com/x", false},
        {"ftp://127.0.0.1/x", false},
        {"http://localhost.evil.com/", false},
        {"HTTP://LOCALHOST/x", true},
        {"http://127.1/x", true}, /* curl normalises it to 127.0.0.1 */
        {"http://[::ffff:127.0.0.1]/x", false},
        {"http://[fe80::1%25lo]/x", false},
        {"http://localhost:80@elsewhere.example/", false},
        {"http://user@127.0.0.1/x", false},
        {"https://user:pass@creds.example.com/", false},
        {"http://127.0.0.1:80@169.254.170.2/", false},
        {"not a url", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *env[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI", cases[i].uri,
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer abc", NULL};
        set_env(f, env);
        int rc = resolve(f, NULL, plan, &err);
        if (rc != (cases[i].allowed ? 0 : -1))
            fail_msg("%s: rc %d", cases[i].uri, rc);
        if (rc == 0) {
            assert_string_equal(plan->container_url, cases[i].uri);
            assert_string_equal(plan->container_auth_token, "Bearer abc");
        } else {
            assert_non_null(strstr(err.message, "container endpoint"));
            assert_null(strstr(err.message, "Bearer abc"));
            assert_null(strstr(err.message, "pass@"));
        }
    }
    /* The issue's example: user "localhost", password "80", host elsewhere. */
    const char *userinfo[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                              "http://localhost:80@elsewhere.example/", NULL};
    set_env(f, userinfo);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_string_equal(err.message,
                        "container endpoint: AWS_CONTAINER_CREDENTIALS_FULL_URI holds user "
                        "information (\"user@\" or \"user:password@\" before the host); it is "
                        "refused");
    const char *elsewhere[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.7:8080/x",
                               NULL};
    set_env(f, elsewhere);
    assert_int_equal(resolve(f, NULL, plan, &err), -1);
    assert_string_equal(err.message,
                        "container endpoint: AWS_CONTAINER_CREDENTIALS_FULL_URI must use https, "
                        "or http to a loopback address (127.0.0.0/8, ::1, localhost), "
                        "169.254.170.2, 169.254.170.23 or fd00:ec2::23; it names "
                        "http://192.0.2.7");
    /* A relative URI always lands on 169.254.170.2. */
    const char *relative[] = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@evil.example/x", NULL};
    set_env(f, relative);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->container_url, "http://169.254.170.2/@evil.example/x");
    const char *file[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "http://169.254.170.23/v1",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                          "/tok",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                          "ignored",
                          NULL};
    set_env(f, file);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->container_auth_file, "/tok");
    assert_string_equal(plan->container_auth_token, "");
    free(plan);
}

static void imds_endpoints(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    const char *custom[] = {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/",
                            "AWS_EC2_METADATA_V1_DISABLED", "true", NULL};
    set_env(f, custom);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->imds_endpoint, "http://127.0.0.1:9");
    assert_false(plan->imds_v1_fallback);
    const char *v6[] = {"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", NULL};
    set_env(f, v6);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->imds_endpoint, "http://[fd00:ec2::254]");
    const char *not_disabled[] = {"AWS_EC2_METADATA_DISABLED", "false", NULL};
    set_env(f, not_disabled);
    assert_int_equal(resolve(f, NULL, plan, &err), 0);
    assert_string_equal(plan->source, "imds");
    free(plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ini_sections_keys_comments),
        cmocka_unit_test(ini_empty_and_missing),
        cmocka_unit_test_setup_teardown(order_of_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(environment_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(web_identity_needs_role, setup, teardown),
        cmocka_unit_test_setup_teardown(profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(default_profile_absent_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(assume_role_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(container_uris, setup, teardown),
        cmocka_unit_test_setup_teardown(imds_endpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

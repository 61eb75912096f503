/* Unit tests of SSO (IAM Identity Center) profiles (credentials_sso.c): the
 * cache file name (SHA-1 hex of the session name or start URL, as the AWS
 * CLI writes it), reading sso_session and legacy profiles through the chain,
 * the cached token and GetRoleCredentials answers, and a fetch against a fake
 * portal: the request it sends, expired and missing tokens, refusals; the
 * token never appears in an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/credentials_internal.h"

#define NOW         1800000000LL
#define TOKEN       "aoaAAAAAGabcdefSECRET-SSO-TOKEN-value"
#define SESSION_SHA "ee0bfd2552fbd840c02cc48b6e823320543c450f" /* sha1("corp") */
#define START_URL   "https://my-sso-portal.awsapps.com/start"
#define URL_SHA     "c7aaaf71fcc8777ae2475525ed049d39fe16c484" /* sha1(START_URL) */

typedef struct {
    char dir[256];
    char home[300];
    char config[300];
    const char *env[16]; /* name, value, ..., NULL */
} fixture;

static const char *fixture_getenv(void *ctx, const char *name)
{
    fixture *f = ctx;
    for (size_t i = 0; f->env[i] != NULL; i += 2) {
        if (strcmp(f->env[i], name) == 0)
            return f->env[i + 1];
    }
    return NULL;
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
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/km-sso-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->home, sizeof f->home, "%s/home", f->dir);
    snprintf(f->config, sizeof f->config, "%s/config", f->dir);
    mkdir(f->home, 0700);
    char path[400];
    snprintf(path, sizeof path, "%s/.aws", f->home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso", f->home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso/cache", f->home);
    mkdir(path, 0700);
    write_file(f->config, "[sso-session corp]\n"
                          "sso_start_url = " START_URL "\n"
                          "sso_region = eu-west-1\n"
                          "[profile dev]\n"
                          "sso_session = corp\n"
                          "sso_account_id = 111122223333\n"
                          "sso_role_name = SpireOperator\n"
                          "[profile legacy]\n"
                          "sso_start_url = " START_URL "\n"
                          "sso_region = us-east-1\n"
                          "sso_account_id = 444455556666\n"
                          "sso_role_name = ReadOnly\n"
                          "[profile norole]\n"
                          "sso_session = corp\n"
                          "sso_account_id = 111122223333\n"
                          "[profile nosession]\n"
                          "sso_session = gone\n"
                          "sso_account_id = 1\n"
                          "sso_role_name = r\n"
                          "[profile mismatch]\n"
                          "sso_session = corp\n"
                          "sso_start_url = https://other.awsapps.com/start\n"
                          "sso_account_id = 1\n"
                          "sso_role_name = r\n"
                          "[profile chained]\n"
                          "role_arn = arn:aws:iam::111122223333:role/spire\n"
                          "source_profile = dev\n");
    const char *env[] = {"HOME",
                         f->home,
                         "AWS_CONFIG_FILE",
                         f->config,
                         "AWS_SHARED_CREDENTIALS_FILE",
                         "/nonexistent/credentials",
                         NULL};
    memcpy(f->env, env, sizeof env);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char command[400];
    snprintf(command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal(system(command), 0);
    free(f);
    return 0;
}

static int resolve_profile(fixture *f, const char *profile, aws_cred_plan *plan, aws_error *err)
{
    f->env[6] = "AWS_PROFILE";
    f->env[7] = profile;
    f->env[8] = NULL;
    aws_cred_env env = {fixture_getenv, f};
    aws_credentials_options options = {.region = "us-east-2"};
    aws_error_clear(err);
    return aws_cred_plan_resolve(&options, &env, plan, err);
}

/* --- names and settings ------------------------------------------------------------ */

static void cache_file_names(void **state)
{
    (void)state;
    char name[46];
    aws_cred_sso_cache_name("corp", name);
    assert_string_equal(name, SESSION_SHA ".json");
    aws_cred_sso_cache_name(START_URL, name);
    assert_string_equal(name, URL_SHA ".json");
}

static void sso_session_profile(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    assert_int_equal(resolve_profile(f, "dev", plan, &err), 0);
    assert_int_equal(plan->kind, AWS_CRED_PLAN_SSO);
    assert_string_equal(plan->source, "sso");
    assert_string_equal(plan->profile, "dev");
    assert_string_equal(plan->sso_session, "corp");
    assert_string_equal(plan->sso_start_url, START_URL);
    assert_string_equal(plan->sso_region, "eu-west-1");
    assert_string_equal(plan->sso_account_id, "111122223333");
    assert_string_equal(plan->sso_role_name, "SpireOperator");
    assert_string_equal(plan->sso_endpoint, "https://portal.sso.eu-west-1.amazonaws.com");
    char expected[400];
    snprintf(expected, sizeof expected, "%s/.aws/sso/cache/" SESSION_SHA ".json", f->home);
    assert_string_equal(plan->sso_cache_file, expected);
    free(plan);
}

static void legacy_profile_and_endpoint_override(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    f->env[6] = "AWS_PROFILE";
    f->env[7] = "legacy";
    f->env[8] = "AWS_ENDPOINT_URL_SSO";
    f->env[9] = "http://127.0.0.1:9/";
    f->env[10] = NULL;
    aws_cred_env env = {fixture_getenv, f};
    aws_credentials_options options = {0};
    assert_int_equal(aws_cred_plan_resolve(&options, &env, plan, &err), 0);
    assert_int_equal(plan->kind, AWS_CRED_PLAN_SSO);
    assert_string_equal(plan->sso_session, "");
    assert_string_equal(plan->sso_region, "us-east-1");
    assert_string_equal(plan->sso_endpoint, "http://127.0.0.1:9");
    char expected[400];
    snprintf(expected, sizeof expected, "%s/.aws/sso/cache/" URL_SHA ".json", f->home);
    assert_string_equal(plan->sso_cache_file, expected);
    free(plan);
}

static void broken_profiles_name_the_problem(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    assert_int_equal(resolve_profile(f, "norole", plan, &err), -1);
    assert_non_null(strstr(err.message, "shared profile \"norole\": an SSO profile needs "
                                        "sso_account_id and sso_role_name"));
    assert_int_equal(resolve_profile(f, "nosession", plan, &err), -1);
    assert_non_null(strstr(err.message, "no [sso-session gone] section"));
    assert_int_equal(resolve_profile(f, "mismatch", plan, &err), -1);
    assert_non_null(strstr(err.message, "differ from its sso-session's"));
    free(plan);
}

static void sso_as_source_profile_of_a_role(void **state)
{
    fixture *f = *state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    aws_error err;
    assert_int_equal(resolve_profile(f, "chained", plan, &err), 0);
    assert_int_equal(plan->kind, AWS_CRED_PLAN_SSO);
    assert_int_equal(plan->role_count, 1);
    assert_string_equal(plan->roles[0].role_arn, "arn:aws:iam::111122223333:role/spire");
    assert_string_equal(plan->source, "shared_files");
    free(plan);
}

/* --- answers ---------------------------------------------------------------------------- */

static void token_file_parsing(void **state)
{
    (void)state;
    char token[256];
    int64_t expires = 0;
    aws_error err;
    assert_int_equal(aws_cred_sso_parse_token("{\"accessToken\": \"abc\", \"expiresAt\": "
                                              "\"2027-01-15T08:00:00Z\", \"region\": \"x\"}",
                                              token, sizeof token, &expires, &err),
                     0);
    assert_string_equal(token, "abc");
    assert_int_equal(expires, NOW); /* 2027-01-15T08:00:00Z */
    /* older AWS CLIs wrote "UTC"; fractions and offsets are RFC 3339 */
    assert_int_equal(aws_cred_sso_parse_token("{\"accessToken\": \"abc\", \"expiresAt\": "
                                              "\"2027-01-15T08:00:00UTC\"}",
                                              token, sizeof token, &expires, &err),
                     0);
    assert_int_equal(expires, NOW);
    assert_int_equal(aws_cred_sso_parse_token("{\"accessToken\": \"abc\", \"expiresAt\": "
                                              "\"2027-01-15T09:00:00.5+01:00\"}",
                                              token, sizeof token, &expires, &err),
                     0);
    assert_int_equal(expires, NOW);
    assert_int_equal(
        aws_cred_sso_parse_token("{\"accessToken\": \"abc\"}", token, sizeof token, &expires, &err),
        -1);
    assert_non_null(strstr(err.message, "no valid expiresAt"));
    assert_int_equal(aws_cred_sso_parse_token("{\"expiresAt\": \"2027-01-15T08:00:00Z\"}", token,
                                              sizeof token, &expires, &err),
                     -1);
    assert_non_null(strstr(err.message, "no usable accessToken"));
    assert_int_equal(aws_cred_sso_parse_token("not json", token, sizeof token, &expires, &err), -1);
}

static void role_credentials_parsing(void **state)
{
    (void)state;
    aws_credentials creds;
    aws_error err;
    assert_int_equal(aws_cred_sso_parse_role_credentials(
                         "{\"roleCredentials\": {\"accessKeyId\": \"ASIAX\", "
                         "\"secretAccessKey\": \"s3cr3t\", \"sessionToken\": \"sess\", "
                         "\"expiration\": 1800000000123}}",
                         &creds, &err),
                     0);
    assert_string_equal(creds.access_key_id, "ASIAX");
    assert_string_equal(creds.secret_access_key, "s3cr3t");
    assert_string_equal(creds.session_token, "sess");
    assert_int_equal(creds.expiration, NOW); /* milliseconds -> seconds */
    assert_int_equal(
        aws_cred_sso_parse_role_credentials("{\"roleCredentials\": {\"accessKeyId\": \"ASIAX\", "
                                            "\"secretAccessKey\": \"s3cr3t\", \"expiration\": 1}}",
                                            &creds, &err),
        -1);
    assert_null(strstr(err.message, "s3cr3t"));
}

/* --- a fetch against a fake portal ---------------------------------------------------------- */

typedef struct {
    long status;
    const char *body;
    int calls;
    char url[1024];
    char token_header[512];
    int64_t deadline_ms;  /* the request's call deadline */
    bool carries_secrets; /* the request was marked as carrying secrets */
} fake_portal;

static int portal_perform(void *ctx, const aws_http_request *request, aws_http_response *response,
                          aws_error *err)
{
    (void)err;
    fake_portal *portal = ctx;
    portal->calls++;
    snprintf(portal->url, sizeof portal->url, "%s", request->url);
    portal->deadline_ms = request->call.deadline_ms;
    portal->carries_secrets = request->carries_secrets;
    assert_string_equal(request->method, "GET");
    assert_null(request->sigv4_scope); /* unsigned */
    for (const char *const *h = request->headers; h != NULL && *h != NULL; h++) {
        if (strncmp(*h, "x-amz-sso_bearer_token:", 23) == 0)
            snprintf(portal->token_header, sizeof portal->token_header, "%s", *h);
    }
    response->status = portal->status;
    response->body = strdup(portal->body);
    response->body_len = strlen(portal->body);
    return 0;
}

static void write_token(fixture *f, const char *expires_at)
{
    char path[400], text[512];
    snprintf(path, sizeof path, "%s/.aws/sso/cache/" SESSION_SHA ".json", f->home);
    snprintf(text, sizeof text,
             "{\"startUrl\": \"" START_URL "\", \"region\": \"eu-west-1\", \"accessToken\": "
             "\"" TOKEN "\", \"expiresAt\": \"%s\"}",
             expires_at);
    write_file(path, text);
}

static int fetch_dev(fixture *f, fake_portal *portal, aws_credentials *out, aws_error *err)
{
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    assert_int_equal(resolve_profile(f, "dev", plan, err), 0);
    const aws_call_ctx call = {.deadline_ms = 123456789};
    aws_cred_fetch_ctx ctx = {
        .perform = portal_perform, .perform_ctx = portal, .call = &call, .now = NOW};
    aws_error_clear(err);
    int rc = aws_cred_plan_fetch(plan, &ctx, out, err);
    aws_cred_plan_clear(plan);
    free(plan);
    return rc;
}

static void fetch_trades_the_cached_token(void **state)
{
    fixture *f = *state;
    write_token(f, "2027-01-15T09:00:00Z");
    fake_portal portal = {.status = 200,
                          .body = "{\"roleCredentials\": {\"accessKeyId\": \"ASIASSO\", "
                                  "\"secretAccessKey\": \"sso-secret\", \"sessionToken\": "
                                  "\"sso-session\", \"expiration\": 1800003600000}}"};
    aws_credentials creds;
    aws_error err;
    assert_int_equal(fetch_dev(f, &portal, &creds, &err), 0);
    assert_string_equal(portal.url, "https://portal.sso.eu-west-1.amazonaws.com/federation/"
                                    "credentials?account_id=111122223333&role_name=SpireOperator");
    assert_string_equal(portal.token_header, "x-amz-sso_bearer_token: " TOKEN);
    assert_int_equal(portal.deadline_ms, 123456789); /* the call's deadline bounds it */
    assert_true(portal.carries_secrets);             /* a bearer token out, credentials back */
    assert_string_equal(creds.access_key_id, "ASIASSO");
    assert_string_equal(creds.source, "sso");
    assert_int_equal(creds.expiration, NOW + 3600);
    aws_credentials_clear(&creds);
}

static void expired_or_missing_token_says_log_in(void **state)
{
    fixture *f = *state;
    fake_portal portal = {.status = 200, .body = "{}"};
    aws_credentials creds;
    aws_error err;
    write_token(f, "2027-01-15T07:59:59Z");
    assert_int_equal(fetch_dev(f, &portal, &creds, &err), -1);
    assert_int_equal(err.status, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, "the SSO token expired at 2027-01-15T07:59:59Z"));
    assert_non_null(strstr(err.message, "run `aws sso login --profile dev`"));
    assert_null(strstr(err.message, TOKEN));
    assert_int_equal(portal.calls, 0);

    char path[400];
    snprintf(path, sizeof path, "%s/.aws/sso/cache/" SESSION_SHA ".json", f->home);
    unlink(path);
    assert_int_equal(fetch_dev(f, &portal, &creds, &err), -1);
    assert_non_null(strstr(err.message, "no cached SSO token"));
    assert_non_null(strstr(err.message, "run `aws sso login --profile dev`"));

    mkfifo(path, 0600); /* never blocks on a FIFO */
    assert_int_equal(fetch_dev(f, &portal, &creds, &err), -1);
    assert_non_null(strstr(err.message, "not a regular file"));
    unlink(path);
}

static void refused_token_says_log_in(void **state)
{
    fixture *f = *state;
    write_token(f, "2027-01-15T09:00:00Z");
    fake_portal portal = {.status = 401,
                          .body = "{\"message\": \"Session token not found or invalid\"}"};
    aws_credentials creds;
    aws_error err;
    assert_int_equal(fetch_dev(f, &portal, &creds, &err), -1);
    assert_non_null(strstr(err.message, "refused the cached token (HTTP 401: Session token not "
                                        "found or invalid)"));
    assert_non_null(strstr(err.message, "aws sso login --profile dev"));
    assert_null(strstr(err.message, TOKEN));
    portal = (fake_portal){.status = 403, .body = "{\"message\": \"No access\"}"};
    assert_int_equal(fetch_dev(f, &portal, &creds, &err), -1);
    assert_non_null(strstr(err.message, "No access"));
    assert_null(strstr(err.message, TOKEN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cache_file_names),
        cmocka_unit_test_setup_teardown(sso_session_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(legacy_profile_and_endpoint_override, setup, teardown),
        cmocka_unit_test_setup_teardown(broken_profiles_name_the_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(sso_as_source_profile_of_a_role, setup, teardown),
        cmocka_unit_test(token_file_parsing),
        cmocka_unit_test(role_credentials_parsing),
        cmocka_unit_test_setup_teardown(fetch_trades_the_cached_token, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_or_missing_token_says_log_in, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_token_says_log_in, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for fetching from each source with a scripted HTTP exchange:
 * STS web identity and AssumeRole requests, the container endpoint's
 * Authorization header, the IMDSv2 token dance (401 retry, v1 fallback, no
 * role), credential_process (exit status, timeout, output limits), clock
 * skew on STS (the Date teaches the clock, AssumeRole refused for skew is
 * signed again once), STS's standard retries (a 5xx or a lost connection is
 * tried again, at most 3 attempts, an access denial never) and the call's
 * deadline reaching every request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/clock.h"
#include "aws/credentials_internal.h"
#include "common/log.h"

enum { MAX_EXCHANGES = 8 };

typedef struct {
    long status; /* 0: transport failure */
    const char *body;
    int64_t date_skew; /* non-zero: a Date header this far from the host clock */
} scripted_answer;

typedef struct {
    char method[8];
    char url[512];
    char headers[8192];
    char body[8192];
    char scope[128];
    char signer[128];
    int64_t clock_offset; /* the offset it was signed with */
    int64_t deadline_ms;
    bool carries_secrets;
} recorded_request;

typedef struct {
    scripted_answer answers[MAX_EXCHANGES];
    recorded_request requests[MAX_EXCHANGES];
    int count;
} script;

static int scripted_perform(void *ctx, const aws_http_request *request, aws_http_response *response,
                            aws_error *err)
{
    script *s = ctx;
    assert_true(s->count < MAX_EXCHANGES);
    recorded_request *r = &s->requests[s->count];
    scripted_answer *a = &s->answers[s->count++];
    snprintf(r->method, sizeof r->method, "%s", request->method);
    snprintf(r->url, sizeof r->url, "%s", request->url);
    for (size_t i = 0; request->headers != NULL && request->headers[i] != NULL; i++) {
        strncat(r->headers, request->headers[i], sizeof r->headers - strlen(r->headers) - 2);
        strcat(r->headers, "\n");
    }
    snprintf(r->body, sizeof r->body, "%.*s", (int)request->body_len,
             request->body != NULL ? request->body : "");
    if (request->sigv4_scope != NULL)
        snprintf(r->scope, sizeof r->scope, "aws:amz:%s:%s", request->sigv4_scope->region,
                 request->sigv4_scope->service);
    else
        r->scope[0] = '\0';
    if (request->credentials != NULL)
        snprintf(r->signer, sizeof r->signer, "%s", request->credentials->access_key_id);
    r->clock_offset = response->clock_offset = aws_clock_offset(); /* as aws_http_perform */
    r->deadline_ms = request->call.deadline_ms;
    r->carries_secrets = request->carries_secrets;
    if (a->date_skew != 0) {
        response->host_time = (int64_t)time(NULL);
        response->server_date = response->host_time + a->date_skew;
    }
    if (a->status == 0) {
        aws_error_set(err, AWS_ERR_TRANSPORT, "connection refused");
        return -1;
    }
    response->status = a->status;
    response->body = strdup(a->body != NULL ? a->body : "");
    response->body_len = strlen(response->body);
    return 0;
}

static aws_cred_fetch_ctx ctx_for(script *s)
{
    return (aws_cred_fetch_ctx){.perform = scripted_perform,
                                .perform_ctx = s,
                                .sts_endpoint = "http://sts.test",
                                .now = 1767323045,
                                .process_timeout_ms = 5000};
}

static const char STS_ANSWER[] = "<R><Credentials><AccessKeyId>ASIASTS</AccessKeyId>"
                                 "<SecretAccessKey>stssecret</SecretAccessKey>"
                                 "<SessionToken>ststoken</SessionToken>"
                                 "<Expiration>2026-01-02T04:04:05Z</Expiration></Credentials></R>";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void web_identity_request(void **state)
{
    (void)state;
    char path[] = "/tmp/webtokenXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "eyJ.first+token/=");
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_WEB_IDENTITY;
    snprintf(plan->source, sizeof plan->source, "web_identity");
    snprintf(plan->token_file, sizeof plan->token_file, "%s", path);
    snprintf(plan->web_identity_role.role_arn, sizeof plan->web_identity_role.role_arn,
             "arn:aws:iam::1:role/web");
    snprintf(plan->region, sizeof plan->region, "eu-west-3");
    script s = {.answers = {{200, STS_ANSWER}, {400, NULL}}};
    s.answers[1].body = "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>Value "
                        "'rotated-token' is bad: rotated-token</Message></Error></ErrorResponse>";
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIASTS");
    assert_string_equal(c.session_token, "ststoken");
    assert_string_equal(c.source, "web_identity");
    assert_string_equal(s.requests[0].method, "POST");
    assert_string_equal(s.requests[0].url, "http://sts.test/");
    assert_string_equal(s.requests[0].scope, ""); /* unsigned */
    assert_string_equal(
        s.requests[0].body,
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam"
        "%3A%3A1%3Arole%2Fweb&RoleSessionName=spire-aws-kms-1767323045&"
        "WebIdentityToken=eyJ.first%2Btoken%2F%3D");
    assert_non_null(strstr(s.requests[0].headers, "application/x-www-form-urlencoded"));

    write_file(path, "rotated-token"); /* re-read at each fetch */
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(s.requests[1].body, "WebIdentityToken=rotated-token"));
    assert_int_equal(err.status, AWS_ERR_CREDENTIALS);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "InvalidIdentityToken");
    assert_non_null(strstr(err.message, "web identity (role arn:aws:iam::1:role/web)"));
    assert_null(strstr(err.message, "rotated-token"));
    assert_non_null(strstr(err.message, "Value '[redacted]' is bad: [redacted]"));

    unlink(path);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_int_equal(s.count, 2); /* no request without a token */
    assert_non_null(strstr(err.message, "cannot read"));
    free(plan);
}

static void assume_role_chain_is_signed(void **state)
{
    (void)state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_STATIC;
    snprintf(plan->source, sizeof plan->source, "shared_files");
    snprintf(plan->profile, sizeof plan->profile, "two");
    snprintf(plan->static_credentials.access_key_id, 32, "AKIABASE");
    snprintf(plan->static_credentials.secret_access_key, 32, "basesecret");
    plan->role_count = 2;
    snprintf(plan->roles[0].role_arn, 64, "arn:aws:iam::1:role/one");
    snprintf(plan->roles[0].external_id, 64, "ext-1");
    plan->roles[0].duration_seconds = 900;
    snprintf(plan->roles[1].role_arn, 64, "arn:aws:iam::1:role/two");
    snprintf(plan->roles[1].session_name, 64, "my-session");
    const char *second = "<R><Credentials><AccessKeyId>ASIATWO</AccessKeyId><SecretAccessKey>x"
                         "</SecretAccessKey><SessionToken>y</SessionToken><Expiration>"
                         "2026-01-02T04:04:05Z</Expiration></Credentials></R>";
    script s = {.answers = {{200, STS_ANSWER}, {200, second}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIATWO");
    assert_string_equal(c.source, "shared_files");
    assert_string_equal(s.requests[0].scope, "aws:amz:us-east-1:sts");
    assert_string_equal(s.requests[0].signer, "AKIABASE");
    assert_string_equal(s.requests[0].body,
                        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole"
                        "%2Fone&RoleSessionName=spire-aws-kms-1767323045&ExternalId=ext-1&"
                        "DurationSeconds=900");
    assert_string_equal(s.requests[1].signer, "ASIASTS");
    assert_non_null(strstr(s.requests[1].body, "RoleSessionName=my-session"));

    s = (script){.answers = {{200, STS_ANSWER}, {403, NULL}}};
    s.answers[1].body = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not allowed"
                        "</Message></Error></ErrorResponse>";
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(err.message, "shared_files of shared profile \"two\": AssumeRole "
                                        "arn:aws:iam::1:role/two: STS error AccessDenied"));
    assert_string_equal(c.access_key_id, "");
    free(plan);
}

static void container_authorization(void **state)
{
    (void)state;
    char path[] = "/tmp/ctokenXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "token-from-file\n");
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_CONTAINER;
    snprintf(plan->source, sizeof plan->source, "container");
    snprintf(plan->container_url, sizeof plan->container_url, "http://169.254.170.23/v1/creds");
    snprintf(plan->container_auth_file, sizeof plan->container_auth_file, "%s", path);
    const char *answer = "{\"AccessKeyId\":\"ASIACON\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                         "\"Expiration\":\"2026-01-02T04:04:05Z\"}";
    script s = {.answers = {{200, answer}, {401, "{\"code\":\"AccessDenied\"}"}, {0, NULL}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIACON");
    assert_string_equal(c.source, "container");
    assert_string_equal(s.requests[0].method, "GET");
    assert_string_equal(s.requests[0].url, "http://169.254.170.23/v1/creds");
    assert_non_null(strstr(s.requests[0].headers, "Authorization: token-from-file\n"));

    write_file(path, "second-token");
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(s.requests[1].headers, "Authorization: second-token\n"));
    assert_non_null(strstr(err.message, "container endpoint http://169.254.170.23/v1/creds: "
                                        "endpoint answered HTTP 401"));
    assert_null(strstr(err.message, "second-token"));

    plan->container_auth_file[0] = '\0';
    snprintf(plan->container_auth_token, sizeof plan->container_auth_token, "Bearer env");
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(s.requests[2].headers, "Authorization: Bearer env\n"));
    assert_non_null(strstr(err.message, "connection refused"));
    unlink(path);
    free(plan);
}

static aws_cred_plan *imds_plan(bool v1_fallback)
{
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_IMDS;
    snprintf(plan->source, sizeof plan->source, "imds");
    snprintf(plan->imds_endpoint, sizeof plan->imds_endpoint, "http://imds.test");
    plan->imds_v1_fallback = v1_fallback;
    return plan;
}

static const char IMDS_CREDS[] =
    "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAIMDS\","
    "\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":\"2026-01-02T04:04:05Z\"}";

static void imds_v2_flow(void **state)
{
    (void)state;
    aws_cred_plan *plan = imds_plan(true);
    script s = {.answers = {{200, "TOKEN1"}, {200, "my-role\n"}, {200, IMDS_CREDS}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAIMDS");
    assert_string_equal(c.source, "imds");
    assert_string_equal(s.requests[0].method, "PUT");
    assert_string_equal(s.requests[0].url, "http://imds.test/latest/api/token");
    assert_string_equal(s.requests[0].headers, "X-aws-ec2-metadata-token-ttl-seconds: 21600\n");
    assert_string_equal(s.requests[1].url,
                        "http://imds.test/latest/meta-data/iam/security-credentials/");
    assert_string_equal(s.requests[1].headers, "X-aws-ec2-metadata-token: TOKEN1\n");
    assert_string_equal(s.requests[2].url,
                        "http://imds.test/latest/meta-data/iam/security-credentials/my-role");
    assert_string_equal(s.requests[2].headers, "X-aws-ec2-metadata-token: TOKEN1\n");
    free(plan);
}

static void imds_401_gets_a_new_token(void **state)
{
    (void)state;
    aws_cred_plan *plan = imds_plan(true);
    script s = {.answers = {{200, "OLD"}, {200, "r"}, {401, ""}, {200, "NEW"}, {200, IMDS_CREDS}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_int_equal(s.count, 5);
    assert_string_equal(s.requests[3].method, "PUT");
    assert_string_equal(s.requests[4].headers, "X-aws-ec2-metadata-token: NEW\n");

    s = (script){.answers = {{200, "A"}, {401, ""}, {200, "B"}, {401, ""}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_int_equal(s.count, 4); /* one retry only */
    assert_int_equal(err.http_status, 401);
    free(plan);
}

static void imds_v1_fallback_and_failures(void **state)
{
    (void)state;
    aws_cred_plan *plan = imds_plan(true);
    script s = {.answers = {{403, ""}, {200, "r"}, {200, IMDS_CREDS}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(s.requests[1].headers, ""); /* IMDSv1: no token header */

    plan->imds_v1_fallback = false;
    s = (script){.answers = {{403, ""}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(err.message, "token request answered HTTP 403"));

    s = (script){.answers = {{200, "T"}, {404, ""}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(err.message, "no instance role"));

    s = (script){.answers = {{0, NULL}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_non_null(strstr(err.message, "EC2 instance metadata http://imds.test: connection"));

    s = (script){.answers = {{200, "T"}, {200, "../evil"}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_int_equal(s.count, 2);
    assert_non_null(strstr(err.message, "no valid instance role name"));
    free(plan);
}

static void process_runs(void **state)
{
    (void)state;
    char *out = NULL;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_run_process("echo out; echo SECRET-ON-STDERR >&2", 5000, &out, &err),
                     0);
    assert_string_equal(out, "out\n");
    free(out);

    assert_int_equal(aws_cred_run_process("echo partial; exit 3", 5000, &out, &err), -1);
    assert_null(out);
    assert_string_equal(err.message, "command exited with status 3");

    assert_int_equal(aws_cred_run_process("exec sleep 30", 200, &out, &err), -1);
    assert_string_equal(err.message, "command did not finish within 200 ms");

    assert_int_equal(aws_cred_run_process("exec >&-; exec sleep 30", 200, &out, &err), -1);
    assert_string_equal(err.message, "command did not finish within 200 ms");

    assert_int_equal(aws_cred_run_process("head -c 70000 /dev/zero", 5000, &out, &err), -1);
    assert_non_null(strstr(err.message, "over 64 KiB"));
}

static void process_plan(void **state)
{
    (void)state;
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_PROCESS;
    snprintf(plan->source, sizeof plan->source, "credential_process");
    snprintf(plan->profile, sizeof plan->profile, "proc");
    snprintf(plan->process_command, sizeof plan->process_command,
             "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", "
             "\"SecretAccessKey\": \"procsecret\"}'");
    script s = {0};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "AKIAPROC");
    assert_string_equal(c.source, "credential_process");
    assert_int_equal(c.expiration, 0);

    snprintf(plan->process_command, sizeof plan->process_command, "exit 1");
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_string_equal(err.message, "credential_process of shared profile \"proc\": command "
                                     "exited with status 1");
    free(plan);
}

static const char STS_SKEW_REFUSAL[] =
    "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>"
    "Signature not yet current: 20270115T084000Z is still later than 20270115T082500Z "
    "(20270115T082000Z + 5 min.)</Message></Error><RequestId>r1</RequestId></ErrorResponse>";

static aws_cred_plan *assume_role_plan(void)
{
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_STATIC;
    snprintf(plan->source, sizeof plan->source, "shared_files");
    snprintf(plan->static_credentials.access_key_id, 32, "AKIABASE");
    snprintf(plan->static_credentials.secret_access_key, 32, "basesecret");
    plan->role_count = 1;
    snprintf(plan->roles[0].role_arn, 64, "arn:aws:iam::1:role/one");
    return plan;
}

/* Host 20 minutes fast: the signed AssumeRole is refused, signed again with
 * AWS's time, once; a second refusal is the error. */
static void assume_role_skew_refusal_is_signed_again(void **state)
{
    (void)state;
    aws_clock_set_offset(0);
    log_set_level(LOG_ERROR);
    aws_cred_plan *plan = assume_role_plan();
    script s = {.answers = {{403, STS_SKEW_REFUSAL, -1200}, {200, STS_ANSWER, -1200}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIASTS");
    assert_int_equal(s.count, 2);
    assert_int_equal(s.requests[0].clock_offset, 0);
    assert_true(s.requests[1].clock_offset <= -1198 && s.requests[1].clock_offset >= -1202);
    assert_string_equal(s.requests[0].body, s.requests[1].body);
    aws_credentials_clear(&c);

    aws_clock_set_offset(0);
    s = (script){.answers = {{403, STS_SKEW_REFUSAL, -1200}, {403, STS_SKEW_REFUSAL, -2400}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_int_equal(s.count, 2);
    assert_string_equal(err.code, "SignatureDoesNotMatch");
    aws_clock_set_offset(0);
    free(plan);
}

/* AssumeRoleWithWebIdentity is unsigned: nothing to sign again, but its Date
 * still teaches the clock (the expiry of what it returns is judged on it). */
static void web_identity_answer_teaches_the_clock(void **state)
{
    (void)state;
    aws_clock_set_offset(0);
    log_set_level(LOG_ERROR);
    char path[] = "/tmp/km-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "jwt-token");
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    plan->kind = AWS_CRED_PLAN_WEB_IDENTITY;
    snprintf(plan->token_file, sizeof plan->token_file, "%s", path);
    snprintf(plan->web_identity_role.role_arn, 64, "arn:aws:iam::1:role/web");
    script s = {.answers = {{200, STS_ANSWER, 1200}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    atomic_bool cancelled = false;
    aws_call_ctx call = {.deadline_ms = 123456789, .cancelled = &cancelled};
    ctx.call = &call;
    aws_credentials c;
    aws_error err;
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_int_equal(s.count, 1);
    assert_true(aws_clock_offset() >= 1198 && aws_clock_offset() <= 1202);
    assert_int_equal(s.requests[0].deadline_ms, 123456789);
    assert_true(s.requests[0].carries_secrets);
    aws_credentials_clear(&c);
    aws_clock_set_offset(0);
    unlink(path);
    free(plan);
}

static int64_t slept_ms[MAX_EXCHANGES];
static int sleeps;

static int record_sleep(void *user, int64_t ms, const atomic_bool *cancelled)
{
    (void)user;
    (void)cancelled;
    slept_ms[sleeps++] = ms;
    return 0;
}

static double half(void *user)
{
    (void)user;
    return 0.5;
}

static const char STS_UNAVAILABLE[] =
    "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>try "
    "later</Message></Error><RequestId>r5</RequestId></ErrorResponse>";

/* AssumeRole and AssumeRoleWithWebIdentity take the one STS path
 * (aws_sts_post): a 503 and a lost connection are retried with the standard
 * backoff; three failures end the fetch with STS's code; a 403 is not
 * retried. */
static void sts_calls_are_retried(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR);
    aws_cred_plan *plan = assume_role_plan();
    script s = {.answers = {{503, STS_UNAVAILABLE}, {0, NULL}, {200, STS_ANSWER}}};
    aws_cred_fetch_ctx ctx = ctx_for(&s);
    ctx.retry_hooks = (aws_retry_hooks){.random = half, .sleep_ms = record_sleep};
    sleeps = 0;
    aws_credentials c;
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIASTS");
    assert_int_equal(s.count, 3);
    assert_string_equal(s.requests[0].body, s.requests[2].body);
    assert_string_equal(s.requests[2].signer, "AKIABASE");
    assert_int_equal(sleeps, 2);
    assert_int_equal(slept_ms[0], 500);  /* 0.5 * 2^0 s */
    assert_int_equal(slept_ms[1], 1000); /* 0.5 * 2^1 s */
    aws_credentials_clear(&c);

    s = (script){.answers = {{503, STS_UNAVAILABLE},
                             {503, STS_UNAVAILABLE},
                             {503, STS_UNAVAILABLE},
                             {200, STS_ANSWER}}};
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_int_equal(s.count, 3);
    assert_int_equal(err.status, AWS_ERR_CREDENTIALS);
    assert_int_equal(err.attempts, 3);
    assert_string_equal(err.code, "ServiceUnavailable");
    assert_string_equal(err.request_id, "r5");
    assert_non_null(strstr(err.message, "AssumeRole arn:aws:iam::1:role/one: STS error "
                                        "ServiceUnavailable: try later"));

    s = (script){.answers = {{403, NULL}, {200, STS_ANSWER}}};
    s.answers[0].body = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message>"
                        "</Error></ErrorResponse>";
    assert_int_equal(aws_cred_plan_fetch(plan, &ctx, &c, &err), -1);
    assert_int_equal(s.count, 1);
    assert_string_equal(err.code, "AccessDenied");
    free(plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(web_identity_request),
        cmocka_unit_test(assume_role_chain_is_signed),
        cmocka_unit_test(container_authorization),
        cmocka_unit_test(imds_v2_flow),
        cmocka_unit_test(imds_401_gets_a_new_token),
        cmocka_unit_test(imds_v1_fallback_and_failures),
        cmocka_unit_test(process_runs),
        cmocka_unit_test(process_plan),
        cmocka_unit_test(assume_role_skew_refusal_is_signed_again),
        cmocka_unit_test(web_identity_answer_teaches_the_clock),
        cmocka_unit_test(sts_calls_are_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Fetching credentials from the chosen source: STS (AssumeRoleWithWebIdentity,
 * AssumeRole), the container endpoint, EC2 IMDSv2 and credential_process.
 * Errors name the source; secrets (keys, tokens) never enter error text.
 * Requests carry the calling operation's deadline and cancel flag. STS
 * answers teach the skew-corrected clock (clock.h), and a signed AssumeRole
 * refused for clock skew is signed again once with the corrected time. */
#include "aws/credentials_internal.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/clock.h"
#include "aws/endpoints.h"
#include "aws/sts.h"
#include "common/clock.h"
#include "common/file_read.h"
#include "common/secrets.h"

enum {
    MAX_TOKEN_FILE_BYTES = 64 * 1024,
    CONTAINER_TIMEOUT_MS = 5000,
    IMDS_TOKEN_TTL_S = 21600,
};

int aws_cred_perform(const aws_cred_fetch_ctx *ctx, const aws_http_request *request,
                     aws_http_response *response, aws_error *err)
{
    memset(response, 0, sizeof *response);
    aws_http_request bounded = *request;
    bounded.carries_secrets = true; /* tokens out, credentials back */
    if (ctx->call != NULL)
        bounded.call = *ctx->call;
    if (ctx->perform != NULL)
        return ctx->perform(ctx->perform_ctx, &bounded, response, err);
    return aws_http_perform(ctx->http, &bounded, response, err);
}

/* Prepends "what: " to err's message and makes it a credentials error. */
static int source_error(aws_error *err, const char *what)
{
    if (err == NULL)
        return -1;
    char message[sizeof err->message];
    snprintf(message, sizeof message, "%s", err->message);
    aws_error_set(err, AWS_ERR_CREDENTIALS, "%s: %s", what, message);
    return -1;
}

/* Reads a token file (regular, non-blocking, at most 64 KiB, not empty) into
 * a malloc'd string; trailing line breaks are dropped when trim is set. */
static char *read_secret_file(const char *path, bool trim, aws_error *err)
{
    file_contents file;
    file_problem problem;
    if (file_read_regular(path, MAX_TOKEN_FILE_BYTES, &file, &problem) != FILE_READ_OK) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s", problem.message);
        return NULL;
    }
    if (file.len == 0 || strlen(file.data) != file.len) {
        file_contents_wipe(&file);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot use %s: empty, or holds a NUL byte", path);
        return NULL;
    }
    char *text = file.data; /* the caller wipes and frees it */
    size_t len = file.len;
    while (trim && len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    return text;
}

/* --- STS ------------------------------------------------------------------------------ */

typedef struct {
    char *text;
    size_t len;
    bool failed;
} form;

static void form_add(form *f, const char *name, const char *value)
{
    char *encoded = aws_cred_form_encode(value);
    size_t add = strlen(name) + 2 + (encoded != NULL ? strlen(encoded) : 0);
    char *bigger = encoded != NULL ? secret_realloc(f->text, f->len + add + 1) : NULL;
    if (bigger == NULL) {
        f->failed = true;
        secret_free(encoded);
        return;
    }
    f->text = bigger;
    f->len += (size_t)sprintf(f->text + f->len, "%s%s=%s", f->len > 0 ? "&" : "", name, encoded);
    secret_free(encoded);
}

static void form_free(form *f)
{
    if (f->text != NULL)
        OPENSSL_cleanse(f->text, f->len);
    free(f->text);
}

static void role_fields(form *f, const aws_cred_role *role, int64_t now)
{
    char session_name[128];
    if (role->session_name[0] != '\0')
        snprintf(session_name, sizeof session_name, "%s", role->session_name);
    else
        snprintf(session_name, sizeof session_name, "spire-aws-kms-%lld", (long long)now);
    form_add(f, "RoleArn", role->role_arn);
    form_add(f, "RoleSessionName", session_name);
    if (role->external_id[0] != '\0')
        form_add(f, "ExternalId", role->external_id);
    if (role->duration_seconds > 0) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", role->duration_seconds);
        form_add(f, "DurationSeconds", seconds);
    }
}

static const char *sts_region(const aws_cred_plan *plan)
{
    return plan->region[0] != '\0' ? plan->region : "us-east-1";
}

static int sts_send(void *user, const aws_http_request *request, aws_http_response *response,
                    aws_error *err)
{
    return aws_cred_perform(user, request, response, err);
}

/* The fixed credentials an AssumeRole is signed with (the previous link of
 * the chain). */
static int sts_signer(void *user, const aws_call_ctx *ctx, aws_credentials *out, aws_error *err)
{
    (void)ctx;
    (void)err;
    *out = *(const aws_credentials *)user;
    return 0;
}

/* POSTs a query-protocol form to STS (aws_sts_post: the standard retries);
 * signed when signer is not NULL. */
static int sts_post(const aws_cred_fetch_ctx *ctx, const aws_cred_plan *plan, const char *action,
                    const form *body, const aws_credentials *signer, aws_credentials *out,
                    aws_error *err)
{
    char base[512], url[600];
    aws_sigv4_scope scope;
    const char *region = sts_region(plan);
    if (aws_endpoint_resolve("sts", region, ctx->sts_endpoint, ctx->use_fips_endpoint, base,
                             sizeof base) != 0 ||
        aws_sigv4_scope_init(&scope, region, "sts") != 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "no STS endpoint for region \"%s\"", region);
        return -1;
    }
    snprintf(url, sizeof url, "%s/", base);
    aws_sts_request request = {.operation = action,
                               .url = url,
                               .scope = signer != NULL ? &scope : NULL,
                               .body = body->text,
                               .body_len = body->len,
                               .carries_secrets = true,
                               .signer = sts_signer,
                               .signer_user = (void *)signer,
                               .send = sts_send,
                               .send_user = (void *)ctx};
    aws_retry_policy policy = {.max_attempts = AWS_RETRY_DEFAULT_MAX_ATTEMPTS,
                               .hooks = ctx->retry_hooks};
    aws_http_response response;
    if (aws_sts_post(&request, &policy, ctx->call, &response, err) != 0) {
        if (err != NULL && err->http_status != 0)
            aws_cred_sts_error(err);
        return -1;
    }
    int rc = aws_cred_parse_sts_xml(response.body, out, err);
    if (rc != 0 && err != NULL) {
        err->http_status = (int)response.status;
        if (err->request_id[0] == '\0')
            snprintf(err->request_id, sizeof err->request_id, "%s", response.request_id);
    }
    aws_http_response_clear(&response);
    return rc;
}

/* Replaces each copy of secret in err's message (STS validation messages
 * quote the values they reject) with "[redacted]". */
static void redact(aws_error *err, const char *secret)
{
    size_t secret_len = strlen(secret);
    if (secret_len == 0 || strstr(err->message, secret) == NULL)
        return;
    char clean[sizeof err->message];
    size_t n = 0;
    for (const char *p = err->message; *p && n + 1 < sizeof clean;) {
        if (strncmp(p, secret, secret_len) == 0) {
            n += (size_t)snprintf(clean + n, sizeof clean - n, "[redacted]");
            n = n < sizeof clean ? n : sizeof clean - 1;
            p += secret_len;
        } else {
            clean[n++] = *p++;
        }
    }
    clean[n] = '\0';
    memcpy(err->message, clean, n + 1);
    OPENSSL_cleanse(clean, sizeof clean);
}

static int fetch_web_identity(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                              aws_credentials *out, aws_error *err)
{
    char *token = read_secret_file(plan->token_file, false, err);
    if (token == NULL)
        return -1;
    form body = {0};
    form_add(&body, "Action", "AssumeRoleWithWebIdentity");
    form_add(&body, "Version", "2011-06-15");
    role_fields(&body, &plan->web_identity_role, ctx->now);
    form_add(&body, "WebIdentityToken", token);
    int rc = -1;
    if (body.failed)
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory");
    else
        rc = sts_post(ctx, plan, "AssumeRoleWithWebIdentity", &body, NULL, out, err);
    if (rc != 0)
        redact(err, token);
    secret_free(token);
    form_free(&body);
    return rc;
}

static int assume_role(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                       const aws_cred_role *role, const aws_credentials *signer,
                       aws_credentials *out, aws_error *err)
{
    form body = {0};
    form_add(&body, "Action", "AssumeRole");
    form_add(&body, "Version", "2011-06-15");
    role_fields(&body, role, ctx->now);
    int rc = -1;
    if (body.failed)
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory");
    else
        rc = sts_post(ctx, plan, "AssumeRole", &body, signer, out, err);
    form_free(&body);
    return rc;
}

/* --- container endpoint ----------------------------------------------------------------- */

static int fetch_container(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                           aws_credentials *out, aws_error *err)
{
    char *token = NULL;
    if (plan->container_auth_file[0] != '\0') {
        token = read_secret_file(plan->container_auth_file, true, err);
        if (token == NULL)
            return -1;
    } else if (plan->container_auth_token[0] != '\0') {
        token = strdup(plan->container_auth_token);
    }
    if (token != NULL && strpbrk(token, "\r\n") != NULL) {
        secret_free(token);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "authorization token has a line break");
        return -1;
    }
    /* Not asprintf: its growing buffer would leave copies of the token. */
    size_t header_size = token != NULL ? strlen(token) + sizeof "Authorization: " : 0;
    char *header = token != NULL ? malloc(header_size) : NULL;
    if (header != NULL)
        snprintf(header, header_size, "Authorization: %s", token);
    secret_free(token);
    const char *headers[] = {"Accept: application/json", header, NULL};
    aws_http_request request = {.method = "GET",
                                .url = plan->container_url,
                                .headers = headers,
                                .timeout_ms = CONTAINER_TIMEOUT_MS};
    aws_http_response response;
    int rc = aws_cred_perform(ctx, &request, &response, err);
    secret_free(header);
    if (rc == 0 && response.status != 200) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "endpoint answered HTTP %ld", response.status);
        err->http_status = (int)response.status;
        rc = -1;
    }
    if (rc == 0)
        rc = aws_cred_parse_json(response.body, AWS_CRED_JSON_CONTAINER, out, err);
    aws_http_response_clear(&response);
    return rc;
}

/* --- EC2 instance metadata (IMDSv2) -------------------------------------------------------- */

typedef struct {
    const aws_cred_plan *plan;
    const aws_cred_fetch_ctx *ctx;
    char token[256]; /* "" : IMDSv1 (token refused by an old IMDS) */
} imds_session;

static int imds_timeout(const aws_cred_fetch_ctx *ctx)
{
    return ctx->imds_timeout_ms > 0 ? ctx->imds_timeout_ms : 1000;
}

static int imds_get_token(imds_session *s, aws_error *err)
{
    char url[600], ttl[64];
    snprintf(url, sizeof url, "%s/latest/api/token", s->plan->imds_endpoint);
    snprintf(ttl, sizeof ttl, "X-aws-ec2-metadata-token-ttl-seconds: %d", IMDS_TOKEN_TTL_S);
    const char *headers[] = {ttl, NULL};
    aws_http_request request = {
        .method = "PUT", .url = url, .headers = headers, .timeout_ms = imds_timeout(s->ctx)};
    aws_http_response response;
    OPENSSL_cleanse(s->token, sizeof s->token);
    int rc = aws_cred_perform(s->ctx, &request, &response, err);
    if (rc == 0 && response.status == 200 && response.body != NULL &&
        response.body_len < sizeof s->token && response.body_len > 0) {
        snprintf(s->token, sizeof s->token, "%s", response.body);
        s->token[strcspn(s->token, "\r\n")] = '\0';
    } else if (rc == 0 && s->plan->imds_v1_fallback &&
               (response.status == 403 || response.status == 404 || response.status == 405)) {
        s->token[0] = '\0';
    } else if (rc == 0) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "token request answered HTTP %ld", response.status);
        err->http_status = (int)response.status;
        rc = -1;
    }
    aws_http_response_clear(&response);
    return rc;
}

static int imds_get_once(imds_session *s, const char *path, aws_http_response *response,
                         aws_error *err)
{
    char url[1024], header[320];
    snprintf(url, sizeof url, "%s%s", s->plan->imds_endpoint, path);
    snprintf(header, sizeof header, "X-aws-ec2-metadata-token: %s", s->token);
    const char *headers[] = {header, NULL};
    aws_http_request request = {.method = "GET",
                                .url = url,
                                .headers = s->token[0] != '\0' ? headers : NULL,
                                .timeout_ms = imds_timeout(s->ctx)};
    int rc = aws_cred_perform(s->ctx, &request, response, err);
    OPENSSL_cleanse(header, sizeof header);
    return rc;
}

/* GET with the session token; a 401 (token expired) gets a new token, once. */
static int imds_get(imds_session *s, const char *path, char **body, aws_error *err)
{
    aws_http_response response;
    int rc = imds_get_once(s, path, &response, err);
    if (rc == 0 && response.status == 401) {
        aws_http_response_clear(&response);
        rc = imds_get_token(s, err);
        if (rc == 0)
            rc = imds_get_once(s, path, &response, err);
    }
    if (rc == 0 && response.status != 200) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s answered HTTP %ld%s", path, response.status,
                      response.status == 404 ? " (no instance role)" : "");
        err->http_status = (int)response.status;
        rc = -1;
    }
    if (rc == 0) {
        *body = response.body;
        response.body = NULL;
    }
    aws_http_response_clear(&response);
    return rc;
}

#define IMDS_CREDENTIALS_PATH "/latest/meta-data/iam/security-credentials/"

static int fetch_imds(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                      aws_credentials *out, aws_error *err)
{
    imds_session s = {.plan = plan, .ctx = ctx};
    char *roles = NULL, *answer = NULL;
    int rc = imds_get_token(&s, err);
    if (rc == 0)
        rc = imds_get(&s, IMDS_CREDENTIALS_PATH, &roles, err);
    if (rc == 0) {
        char path[512];
        roles[strcspn(roles, "\r\n")] = '\0';
        if (roles[0] == '\0' || strpbrk(roles, "/?#% ") != NULL ||
            snprintf(path, sizeof path, "%s%s", IMDS_CREDENTIALS_PATH, roles) >= (int)sizeof path) {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "no valid instance role name");
            rc = -1;
        } else {
            rc = imds_get(&s, path, &answer, err);
        }
    }
    if (rc == 0)
        rc = aws_cred_parse_json(answer, AWS_CRED_JSON_IMDS, out, err);
    free(roles);
    secret_free(answer);
    OPENSSL_cleanse(s.token, sizeof s.token);
    return rc;
}

/* --- credential_process --------------------------------------------------------------------- */

static int fetch_process(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                         aws_credentials *out, aws_error *err)
{
    char *output = NULL;
    int timeout = ctx->process_timeout_ms > 0 ? ctx->process_timeout_ms : 60000;
    if (ctx->call != NULL && ctx->call->deadline_ms > 0) {
        int64_t left = ctx->call->deadline_ms - clock_monotonic_ms();
        timeout = left < timeout ? (left > 0 ? (int)left : 1) : timeout;
    }
    if (aws_cred_run_process(plan->process_command, timeout, &output, err) != 0)
        return -1;
    int rc = aws_cred_parse_json(output, AWS_CRED_JSON_PROCESS, out, err);
    secret_free(output);
    return rc;
}

/* --- dispatch ----------------------------------------------------------------------------- */

static void describe_source(const aws_cred_plan *plan, char *out, size_t size)
{
    switch (plan->kind) {
    case AWS_CRED_PLAN_WEB_IDENTITY:
        snprintf(out, size, "web identity (role %s)", plan->web_identity_role.role_arn);
        break;
    case AWS_CRED_PLAN_PROCESS:
        snprintf(out, size, "credential_process of shared profile \"%s\"", plan->profile);
        break;
    case AWS_CRED_PLAN_CONTAINER:
        snprintf(out, size, "container endpoint %s", plan->container_url);
        break;
    case AWS_CRED_PLAN_IMDS:
        snprintf(out, size, "EC2 instance metadata %s", plan->imds_endpoint);
        break;
    case AWS_CRED_PLAN_SSO:
        snprintf(out, size, "SSO role %s in account %s", plan->sso_role_name, plan->sso_account_id);
        break;
    default:
        snprintf(out, size, "%s", plan->source);
    }
    if (plan->profile[0] != '\0' && plan->kind != AWS_CRED_PLAN_PROCESS) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, " of shared profile \"%s\"", plan->profile);
    }
}

static int fetch_base(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                      aws_credentials *out, aws_error *err)
{
    switch (plan->kind) {
    case AWS_CRED_PLAN_STATIC:
        *out = plan->static_credentials;
        return 0;
    case AWS_CRED_PLAN_WEB_IDENTITY:
        return fetch_web_identity(plan, ctx, out, err);
    case AWS_CRED_PLAN_PROCESS:
        return fetch_process(plan, ctx, out, err);
    case AWS_CRED_PLAN_CONTAINER:
        return fetch_container(plan, ctx, out, err);
    case AWS_CRED_PLAN_IMDS:
        return fetch_imds(plan, ctx, out, err);
    case AWS_CRED_PLAN_SSO:
        return aws_cred_sso_fetch(plan, ctx, out, err);
    case AWS_CRED_PLAN_NONE:
        break;
    }
    aws_error_set(err, AWS_ERR_CREDENTIALS, "no credential source");
    return -1;
}

static int fetch_roles(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                       aws_credentials *creds, aws_error *err)
{
    for (size_t i = 0; i < plan->role_count; i++) {
        aws_credentials next;
        int rc = assume_role(plan, ctx, &plan->roles[i], creds, &next, err);
        aws_credentials_clear(creds);
        if (rc != 0) {
            char what[2300];
            snprintf(what, sizeof what, "AssumeRole %s", plan->roles[i].role_arn);
            return source_error(err, what);
        }
        *creds = next;
        aws_credentials_clear(&next);
    }
    return 0;
}

int aws_cred_plan_fetch(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                        aws_credentials *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    char what[2600];
    describe_source(plan, what, sizeof what);
    if (fetch_base(plan, ctx, out, err) != 0) {
        aws_credentials_clear(out);
        return source_error(err, what);
    }
    if (fetch_roles(plan, ctx, out, err) != 0) {
        aws_credentials_clear(out);
        return source_error(err, what);
    }
    snprintf(out->source, sizeof out->source, "%s", plan->source);
    return 0;
}

/* SSO (IAM Identity Center) profiles, as the AWS CLI leaves them after
 * `aws sso login`: a profile names a role (sso_account_id, sso_role_name) and
 * a portal, either through an [sso-session NAME] section (sso_session) or
 * directly (legacy sso_start_url, sso_region). The CLI caches the portal's
 * access token in ~/.aws/sso/cache/<SHA-1 hex of the session name, or of the
 * start URL>.json; we read it at each fetch and trade it for role credentials
 * with the portal's GetRoleCredentials (an unsigned GET with the token in the
 * x-amz-sso_bearer_token header). The token is a secret: it never enters a
 * message and is wiped after use. We do not refresh the token itself (the SDKs
 * may, through SSO OIDC): when it has expired, the error says to log in again. */
#include "aws/credentials_internal.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/endpoints.h"
#include "common/file_read.h"
#include "common/hex.h"

enum { MAX_TOKEN_FILE_BYTES = 64 * 1024, SSO_TIMEOUT_MS = 10000 };

/* --- settings ------------------------------------------------------------------ */

bool aws_cred_sso_configured(const aws_shared_files *files, const char *profile)
{
    return aws_shared_files_get(files, profile, "sso_session") != NULL ||
           aws_shared_files_get(files, profile, "sso_start_url") != NULL;
}

static int sso_fail(aws_error *err, const char *profile, const char *what)
{
    aws_error_set(err, AWS_ERR_CREDENTIALS, "shared profile \"%s\": %s", profile, what);
    return -1;
}

static bool copy_setting(char *out, size_t size, const char *value)
{
    int n = snprintf(out, size, "%s", value != NULL ? value : "");
    return value != NULL && value[0] != '\0' && n >= 0 && (size_t)n < size;
}

void aws_cred_sso_cache_name(const char *session_or_start_url, char out[46])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    out[0] = '\0';
    if (EVP_Digest(session_or_start_url, strlen(session_or_start_url), digest, &length, EVP_sha1(),
                   NULL) != 1 ||
        length != 20)
        return;
    hex_encode(digest, length, out);
    memcpy(out + 40, ".json", 6);
}

/* start URL and region from [sso-session NAME], checked against the profile's own. */
static int session_settings(const aws_shared_files *files, const char *profile, const char *session,
                            aws_cred_plan *plan, aws_error *err)
{
    char section[300], what[600];
    snprintf(section, sizeof section, "sso-session %s", session);
    if (!aws_ini_has_section(files->config, section)) {
        snprintf(what, sizeof what,
                 "sso_session \"%s\" has no [sso-session %s] section in the "
                 "config file",
                 session, session);
        return sso_fail(err, profile, what);
    }
    if (!copy_setting(plan->sso_session, sizeof plan->sso_session, session) ||
        !copy_setting(plan->sso_start_url, sizeof plan->sso_start_url,
                      aws_ini_get(files->config, section, "sso_start_url")) ||
        !copy_setting(plan->sso_region, sizeof plan->sso_region,
                      aws_ini_get(files->config, section, "sso_region"))) {
        snprintf(what, sizeof what, "[sso-session %s] needs sso_start_url and sso_region", session);
        return sso_fail(err, profile, what);
    }
    const char *own_url = aws_shared_files_get(files, profile, "sso_start_url");
    const char *own_region = aws_shared_files_get(files, profile, "sso_region");
    if ((own_url != NULL && strcmp(own_url, plan->sso_start_url) != 0) ||
        (own_region != NULL && strcmp(own_region, plan->sso_region) != 0))
        return sso_fail(err, profile, "sso_start_url or sso_region differ from its sso-session's");
    return 0;
}

static int legacy_settings(const aws_shared_files *files, const char *profile, aws_cred_plan *plan,
                           aws_error *err)
{
    if (!copy_setting(plan->sso_start_url, sizeof plan->sso_start_url,
                      aws_shared_files_get(files, profile, "sso_start_url")) ||
        !copy_setting(plan->sso_region, sizeof plan->sso_region,
                      aws_shared_files_get(files, profile, "sso_region")))
        return sso_fail(err, profile,
                        "an SSO profile needs sso_start_url and sso_region "
                        "(or sso_session)");
    plan->sso_session[0] = '\0';
    return 0;
}

/* AWS_ENDPOINT_URL_SSO, then AWS_ENDPOINT_URL, then the portal of the region. */
static int portal_endpoint(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    const char *custom = aws_cred_env_get(env, "AWS_ENDPOINT_URL_SSO");
    if (custom == NULL)
        custom = aws_cred_env_get(env, "AWS_ENDPOINT_URL");
    int n;
    if (custom != NULL) {
        n = snprintf(plan->sso_endpoint, sizeof plan->sso_endpoint, "%s", custom);
    } else {
        if (!aws_region_is_valid(plan->sso_region)) {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "sso_region \"%.64s\" is not a region name",
                          plan->sso_region);
            return -1;
        }
        bool china = strncmp(plan->sso_region, "cn-", 3) == 0;
        n = snprintf(plan->sso_endpoint, sizeof plan->sso_endpoint,
                     "https://portal.sso.%s.amazonaws.com%s", plan->sso_region, china ? ".cn" : "");
    }
    if (n < 0 || (size_t)n >= sizeof plan->sso_endpoint) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "SSO portal endpoint URL too long");
        return -1;
    }
    size_t len = strlen(plan->sso_endpoint);
    while (len > 0 && plan->sso_endpoint[len - 1] == '/')
        plan->sso_endpoint[--len] = '\0';
    return 0;
}

static int cache_file(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    const char *home = aws_cred_env_get(env, "HOME");
    if (home == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "SSO profile: HOME is not set, so ~/.aws/sso/cache cannot be found");
        return -1;
    }
    char name[46];
    aws_cred_sso_cache_name(plan->sso_session[0] ? plan->sso_session : plan->sso_start_url, name);
    int n = snprintf(plan->sso_cache_file, sizeof plan->sso_cache_file, "%s/.aws/sso/cache/%s",
                     home, name);
    if (name[0] == '\0' || n < 0 || (size_t)n >= sizeof plan->sso_cache_file) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "SSO profile: cannot name the token cache file");
        return -1;
    }
    return 0;
}

int aws_cred_sso_plan(const aws_shared_files *files, const aws_cred_env *env, const char *profile,
                      aws_cred_plan *plan, aws_error *err)
{
    const char *session = aws_shared_files_get(files, profile, "sso_session");
    int rc = session != NULL ? session_settings(files, profile, session, plan, err)
                             : legacy_settings(files, profile, plan, err);
    if (rc != 0)
        return -1;
    if (!copy_setting(plan->sso_account_id, sizeof plan->sso_account_id,
                      aws_shared_files_get(files, profile, "sso_account_id")) ||
        !copy_setting(plan->sso_role_name, sizeof plan->sso_role_name,
                      aws_shared_files_get(files, profile, "sso_role_name")))
        return sso_fail(err, profile, "an SSO profile needs sso_account_id and sso_role_name");
    if (portal_endpoint(env, plan, err) != 0 || cache_file(env, plan, err) != 0)
        return -1;
    plan->kind = AWS_CRED_PLAN_SSO;
    return 0;
}

/* --- the cached token ------------------------------------------------------------- */

/* "...UTC" (older AWS CLIs) is read as "...Z". */
static int parse_expires_at(const char *text, int64_t *out)
{
    char copy[64];
    size_t len = strlen(text);
    if (len + 1 > sizeof copy)
        return -1;
    memcpy(copy, text, len + 1);
    if (len > 3 && strcmp(copy + len - 3, "UTC") == 0)
        strcpy(copy + len - 3, "Z");
    return aws_cred_parse_iso8601(copy, out);
}

int aws_cred_sso_parse_token(const char *json, char *token, size_t token_size, int64_t *expires_at,
                             aws_error *err)
{
    json_t *root = json_loads(json, 0, NULL);
    const char *access = json_string_value(json_object_get(root, "accessToken"));
    const char *expiry = json_string_value(json_object_get(root, "expiresAt"));
    int rc = -1;
    if (!json_is_object(root))
        aws_error_set(err, AWS_ERR_CREDENTIALS, "the cached SSO token is not a JSON object");
    else if (access == NULL || access[0] == '\0' || strlen(access) >= token_size)
        aws_error_set(err, AWS_ERR_CREDENTIALS, "the cached SSO token has no usable accessToken");
    else if (expiry == NULL || parse_expires_at(expiry, expires_at) != 0)
        aws_error_set(err, AWS_ERR_CREDENTIALS, "the cached SSO token has no valid expiresAt");
    else {
        memcpy(token, access, strlen(access) + 1);
        rc = 0;
    }
    if (access != NULL)
        OPENSSL_cleanse((void *)access, strlen(access));
    json_decref(root);
    return rc;
}

/* "aws sso login --profile P" (or --sso-session NAME) for messages. */
static void login_hint(const aws_cred_plan *plan, char *out, size_t size)
{
    if (plan->profile[0] != '\0')
        snprintf(out, size, "run `aws sso login --profile %s`", plan->profile);
    else if (plan->sso_session[0] != '\0')
        snprintf(out, size, "run `aws sso login --sso-session %s`", plan->sso_session);
    else
        snprintf(out, size, "run `aws sso login`");
}

static int load_token(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx, char *token,
                      size_t token_size, aws_error *err)
{
    char hint[400];
    login_hint(plan, hint, sizeof hint);
    file_contents text = {0};
    file_problem problem;
    file_read_result read =
        file_read_regular(plan->sso_cache_file, MAX_TOKEN_FILE_BYTES, &text, &problem);
    if (read == FILE_READ_MISSING) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "no cached SSO token (%s): you are not logged in; %s", plan->sso_cache_file,
                      hint);
        return -1;
    }
    if (read != FILE_READ_OK) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s", problem.message);
        return -1;
    }
    int64_t expires_at = 0;
    int rc = aws_cred_sso_parse_token(text.data, token, token_size, &expires_at, err);
    file_contents_wipe(&text);
    if (rc == 0 && expires_at <= ctx->now) {
        char when[32];
        aws_cred_format_iso8601(expires_at, when, sizeof when);
        OPENSSL_cleanse(token, token_size);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "the SSO token expired at %s; %s", when, hint);
        return -1;
    }
    if (rc != 0) {
        char cause[sizeof err->message];
        snprintf(cause, sizeof cause, "%s", err->message);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s (%s); %s", cause, plan->sso_cache_file, hint);
    }
    return rc;
}

/* --- GetRoleCredentials ------------------------------------------------------------- */

int aws_cred_sso_parse_role_credentials(const char *json, aws_credentials *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = json_loads(json, 0, NULL);
    json_t *role = json_object_get(root, "roleCredentials");
    const char *id = json_string_value(json_object_get(role, "accessKeyId"));
    const char *secret = json_string_value(json_object_get(role, "secretAccessKey"));
    const char *session = json_string_value(json_object_get(role, "sessionToken"));
    json_t *expiration = json_object_get(role, "expiration");
    int rc = -1;
    if (id == NULL || secret == NULL || session == NULL || !json_is_integer(expiration) ||
        json_integer_value(expiration) <= 0 || strlen(id) >= sizeof out->access_key_id ||
        strlen(secret) >= sizeof out->secret_access_key ||
        strlen(session) >= sizeof out->session_token) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "GetRoleCredentials answer lacks a valid accessKeyId, secretAccessKey, "
                      "sessionToken or expiration");
    } else {
        memcpy(out->access_key_id, id, strlen(id) + 1);
        memcpy(out->secret_access_key, secret, strlen(secret) + 1);
        memcpy(out->session_token, session, strlen(session) + 1);
        out->expiration = (int64_t)(json_integer_value(expiration) / 1000);
        rc = 0;
    }
    if (secret != NULL)
        OPENSSL_cleanse((void *)secret, strlen(secret));
    if (session != NULL)
        OPENSSL_cleanse((void *)session, strlen(session));
    json_decref(root);
    return rc;
}

/* An error answer (rest-json {"message": ...}, read by aws_error_from_answer)
 * as the credential chain names it, with the portal's code and request id. */
static void portal_error(const aws_cred_plan *plan, const aws_http_response *response,
                         aws_error *err)
{
    aws_error answer;
    aws_error_clear(&answer);
    aws_error_from_answer("GetRoleCredentials", response->status, response->body,
                          response->request_id, &answer);
    const char *message = answer.message;
    char hint[400];
    login_hint(plan, hint, sizeof hint);
    if (response->status == 401 || response->status == 403)
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "the SSO portal refused the cached token (HTTP %ld: %.200s); %s",
                      response->status, message, hint);
    else if (response->status == 404)
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "the SSO portal has no role %s in account %s for you (HTTP 404: %.200s)",
                      plan->sso_role_name, plan->sso_account_id, message);
    else
        aws_error_set(err, response->status >= 500 ? AWS_ERR_SERVER : AWS_ERR_CREDENTIALS,
                      "the SSO portal answered HTTP %ld: %.200s", response->status, message);
    if (err == NULL)
        return;
    err->http_status = (int)response->status;
    snprintf(err->code, sizeof err->code, "%s", answer.code);
    snprintf(err->request_id, sizeof err->request_id, "%s", answer.request_id);
}

static int get_role_credentials(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                                const char *token, aws_credentials *out, aws_error *err)
{
    char *account = aws_cred_form_encode(plan->sso_account_id);
    char *role = aws_cred_form_encode(plan->sso_role_name);
    char url[2048];
    int n = account && role
                ? snprintf(url, sizeof url, "%s/federation/credentials?account_id=%s&role_name=%s",
                           plan->sso_endpoint, account, role)
                : -1;
    free(account);
    free(role);
    size_t line_size = strlen(token) + 32;
    char *line = malloc(line_size);
    if (n < 0 || (size_t)n >= sizeof url || line == NULL) {
        free(line);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot build the GetRoleCredentials request");
        return -1;
    }
    snprintf(line, line_size, "x-amz-sso_bearer_token: %s", token);
    const char *headers[] = {line, "Accept: application/json", NULL};
    aws_http_request request = {
        .method = "GET", .url = url, .headers = headers, .timeout_ms = SSO_TIMEOUT_MS};
    aws_http_response response;
    int rc = aws_cred_perform(ctx, &request, &response, err);
    OPENSSL_cleanse(line, line_size);
    free(line);
    if (rc == 0 && response.status == 200)
        rc = aws_cred_sso_parse_role_credentials(response.body, out, err);
    else if (rc == 0) {
        portal_error(plan, &response, err);
        rc = -1;
    }
    if (response.body != NULL)
        OPENSSL_cleanse(response.body, response.body_len);
    aws_http_response_clear(&response);
    return rc;
}

int aws_cred_sso_fetch(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                       aws_credentials *out, aws_error *err)
{
    char token[8192];
    if (load_token(plan, ctx, token, sizeof token, err) != 0)
        return -1;
    int rc = get_role_credentials(plan, ctx, token, out, err);
    OPENSSL_cleanse(token, sizeof token);
    return rc;
}

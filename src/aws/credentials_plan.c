/* Choosing the credential source, in the AWS SDKs' order: config keys,
 * environment, web identity, shared profile, container endpoint, EC2 IMDS.
 * A source that is not configured is skipped; one that is configured but
 * unusable (half a key pair, a role without a token file, ...) is an error
 * naming it. Only the environment and the shared files are read here. */
#include "aws/credentials_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { CHOSEN = 1, SKIPPED = 0, FAILED = -1 };

#define DEFAULT_CONTAINER_HOST "http://169.254.170.2"
#define DEFAULT_IMDS_ENDPOINT  "http://169.254.169.254"
#define IPV6_IMDS_ENDPOINT     "http://[fd00:ec2::254]"

static bool copy_text(char *out, size_t out_size, const char *value)
{
    int n = snprintf(out, out_size, "%s", value != NULL ? value : "");
    return n >= 0 && (size_t)n < out_size;
}

static void note_tried(aws_cred_plan *plan, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void note_tried(aws_cred_plan *plan, const char *format, ...)
{
    size_t used = strlen(plan->tried);
    if (used > 0 && used + 2 < sizeof plan->tried) {
        memcpy(plan->tried + used, ", ", 3);
        used += 2;
    }
    va_list args;
    va_start(args, format);
    vsnprintf(plan->tried + used, sizeof plan->tried - used, format, args);
    va_end(args);
}

static void choose(aws_cred_plan *plan, aws_cred_plan_kind kind, const char *source)
{
    plan->kind = kind;
    copy_text(plan->source, sizeof plan->source, source);
}

/* Both halves of a key pair, or neither; what names them for the error. */
static int static_keys(aws_cred_plan *plan, const char *where, const char *id_name,
                       const char *access_key_id, const char *secret_name,
                       const char *secret_access_key, const char *session_token, aws_error *err)
{
    if (access_key_id == NULL && secret_access_key == NULL)
        return SKIPPED;
    if (access_key_id == NULL || secret_access_key == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s: %s is set but %s is not", where,
                      access_key_id != NULL ? id_name : secret_name,
                      access_key_id != NULL ? secret_name : id_name);
        return FAILED;
    }
    aws_credentials *creds = &plan->static_credentials;
    if (!copy_text(creds->access_key_id, sizeof creds->access_key_id, access_key_id) ||
        !copy_text(creds->secret_access_key, sizeof creds->secret_access_key, secret_access_key) ||
        !copy_text(creds->session_token, sizeof creds->session_token, session_token)) {
        aws_credentials_clear(creds);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s: a key or session token is too long", where);
        return FAILED;
    }
    return CHOSEN;
}

static const char *nonempty(const char *value)
{
    return (value != NULL && value[0] != '\0') ? value : NULL;
}

static int try_config(const aws_credentials_options *options, aws_cred_plan *plan, aws_error *err)
{
    note_tried(plan, "config");
    int rc = static_keys(plan, "config", "access_key_id", nonempty(options->access_key_id),
                         "secret_access_key", nonempty(options->secret_access_key), NULL, err);
    if (rc == CHOSEN)
        choose(plan, AWS_CRED_PLAN_STATIC, "config");
    return rc;
}

static int env_keys(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    const char *id = aws_cred_env_get(env, "AWS_ACCESS_KEY_ID");
    if (id == NULL)
        id = aws_cred_env_get(env, "AWS_ACCESS_KEY");
    const char *secret = aws_cred_env_get(env, "AWS_SECRET_ACCESS_KEY");
    if (secret == NULL)
        secret = aws_cred_env_get(env, "AWS_SECRET_KEY");
    return static_keys(plan, "environment", "AWS_ACCESS_KEY_ID", id, "AWS_SECRET_ACCESS_KEY",
                       secret, aws_cred_env_get(env, "AWS_SESSION_TOKEN"), err);
}

static int try_environment(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    note_tried(plan, "environment");
    int rc = env_keys(env, plan, err);
    if (rc == CHOSEN)
        choose(plan, AWS_CRED_PLAN_STATIC, "environment");
    return rc;
}

static int set_role(aws_cred_role *role, const char *where, const char *arn,
                    const char *session_name, const char *external_id, const char *duration,
                    aws_error *err)
{
    memset(role, 0, sizeof *role);
    if (!copy_text(role->role_arn, sizeof role->role_arn, arn) ||
        !copy_text(role->session_name, sizeof role->session_name, session_name) ||
        !copy_text(role->external_id, sizeof role->external_id, external_id)) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "%s: role_arn, session name or external_id too long", where);
        return FAILED;
    }
    if (duration != NULL) {
        char *end = NULL;
        long seconds = strtol(duration, &end, 10);
        if (end == duration || *end != '\0' || seconds < 900 || seconds > 43200) {
            aws_error_set(err, AWS_ERR_CREDENTIALS,
                          "%s: duration_seconds must be a number from 900 to 43200", where);
            return FAILED;
        }
        role->duration_seconds = (int)seconds;
    }
    return CHOSEN;
}

static int web_identity(aws_cred_plan *plan, const char *where, const char *token_file,
                        const char *role_arn, const char *session_name, aws_error *err)
{
    if (role_arn == NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "%s: a web identity token file is set but no role ARN", where);
        return FAILED;
    }
    if (!copy_text(plan->token_file, sizeof plan->token_file, token_file)) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s: token file path too long", where);
        return FAILED;
    }
    if (set_role(&plan->web_identity_role, where, role_arn, session_name, NULL, NULL, err) !=
        CHOSEN)
        return FAILED;
    plan->kind = AWS_CRED_PLAN_WEB_IDENTITY;
    return CHOSEN;
}

static int try_web_identity(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    note_tried(plan, "web identity");
    const char *token_file = aws_cred_env_get(env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (token_file == NULL)
        return SKIPPED;
    int rc = web_identity(plan, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)", token_file,
                          aws_cred_env_get(env, "AWS_ROLE_ARN"),
                          aws_cred_env_get(env, "AWS_ROLE_SESSION_NAME"), err);
    if (rc == CHOSEN)
        choose(plan, AWS_CRED_PLAN_WEB_IDENTITY, "web_identity");
    return rc;
}

/* --- container and IMDS ------------------------------------------------------------ */

/* http is allowed only to these hosts (the ECS and EKS Pod Identity agents,
 * and loopback: 127.0.0.0/8 is checked apart), as the AWS SDKs allow. */
static bool http_host_allowed(const char *host)
{
    static const char *const allowed[] = {"localhost", "[::1]", "169.254.170.2", "169.254.170.23",
                                          "[fd00:ec2::23]"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strcasecmp(host, allowed[i]) == 0)
            return true;
    }
    struct in_addr ipv4;
    return inet_pton(AF_INET, host, &ipv4) == 1 && (ntohl(ipv4.s_addr) >> 24) == 127;
}

static bool has_part(CURLU *url, CURLUPart part)
{
    char *value = NULL;
    CURLUcode code = curl_url_get(url, part, &value, 0);
    curl_free(value);
    return code == CURLUE_OK;
}

/* Checks the container endpoint URL with libcurl's own URL parser (the one
 * that will fetch it): no user information, https to any host, http only to
 * the allowed hosts. Nothing is connected to. variable names the source in
 * the error, which never repeats the URL (it may hold a password). */
static int check_container_url(const char *text, const char *variable, aws_error *err)
{
    CURLU *url = curl_url();
    char *scheme = NULL, *host = NULL;
    CURLUcode code = url != NULL ? curl_url_set(url, CURLUPART_URL, text, 0) : CURLUE_OUT_OF_MEMORY;
    if (code == CURLUE_OK)
        code = curl_url_get(url, CURLUPART_SCHEME, &scheme, 0);
    if (code == CURLUE_OK)
        code = curl_url_get(url, CURLUPART_HOST, &host, 0);
    int rc = FAILED;
    if (code != CURLUE_OK)
        aws_error_set(err, AWS_ERR_CREDENTIALS, "container endpoint: %s is not a valid URL: %s",
                      variable, curl_url_strerror(code));
    else if (has_part(url, CURLUPART_USER) || has_part(url, CURLUPART_PASSWORD) ||
             has_part(url, CURLUPART_OPTIONS))
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "container endpoint: %s holds user information (\"user@\" or "
                      "\"user:password@\" before the host); it is refused",
                      variable);
    else if (strcmp(scheme, "https") == 0 ||
             (strcmp(scheme, "http") == 0 && !has_part(url, CURLUPART_ZONEID) &&
              http_host_allowed(host)))
        rc = CHOSEN;
    else
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "container endpoint: %s must use https, or http to a loopback address "
                      "(127.0.0.0/8, ::1, localhost), 169.254.170.2, 169.254.170.23 or "
                      "fd00:ec2::23; it names %s://%s",
                      variable, scheme, host);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(url);
    return rc;
}

static int container_auth(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    const char *file = aws_cred_env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *token = aws_cred_env_get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (!copy_text(plan->container_auth_file, sizeof plan->container_auth_file, file) ||
        (file == NULL &&
         !copy_text(plan->container_auth_token, sizeof plan->container_auth_token, token))) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "container endpoint: authorization token (file) too long");
        return FAILED;
    }
    if (strpbrk(plan->container_auth_token, "\r\n") != NULL) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "container endpoint: AWS_CONTAINER_AUTHORIZATION_TOKEN has a line break");
        return FAILED;
    }
    return CHOSEN;
}

static int try_container(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    note_tried(plan, "container endpoint");
    const char *relative = aws_cred_env_get(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = aws_cred_env_get(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (relative == NULL && full == NULL)
        return SKIPPED;
    int n = relative != NULL
                ? snprintf(plan->container_url, sizeof plan->container_url, "%s%s%s",
                           DEFAULT_CONTAINER_HOST, relative[0] == '/' ? "" : "/", relative)
                : snprintf(plan->container_url, sizeof plan->container_url, "%s", full);
    if (n < 0 || (size_t)n >= sizeof plan->container_url) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "container endpoint: URI too long");
        return FAILED;
    }
    if (check_container_url(plan->container_url,
                            relative != NULL ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
                                             : "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                            err) != CHOSEN)
        return FAILED;
    if (container_auth(env, plan, err) != CHOSEN)
        return FAILED;
    choose(plan, AWS_CRED_PLAN_CONTAINER, "container");
    return CHOSEN;
}

static int try_imds(const aws_cred_env *env, aws_cred_plan *plan, aws_error *err)
{
    if (aws_cred_env_true(env, "AWS_EC2_METADATA_DISABLED")) {
        note_tried(plan, "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)");
        return SKIPPED;
    }
    note_tried(plan, "EC2 instance metadata");
    const char *endpoint = aws_cred_env_get(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *mode = aws_cred_env_get(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
    if (endpoint == NULL)
        endpoint = (mode != NULL && strcasecmp(mode, "IPv6") == 0) ? IPV6_IMDS_ENDPOINT
                                                                   : DEFAULT_IMDS_ENDPOINT;
    if (!copy_text(plan->imds_endpoint, sizeof plan->imds_endpoint, endpoint)) {
        aws_error_set(err, AWS_ERR_CREDENTIALS, "EC2 instance metadata: endpoint too long");
        return FAILED;
    }
    size_t len = strlen(plan->imds_endpoint);
    while (len > 0 && plan->imds_endpoint[len - 1] == '/')
        plan->imds_endpoint[--len] = '\0';
    plan->imds_v1_fallback = !aws_cred_env_true(env, "AWS_EC2_METADATA_V1_DISABLED");
    choose(plan, AWS_CRED_PLAN_IMDS, "imds");
    return CHOSEN;
}

/* --- shared profile ---------------------------------------------------------------- */

typedef struct {
    const aws_shared_files *files;
    const aws_cred_env *env;
    aws_cred_plan *plan;
    aws_error *err;
} profile_walk;

static int profile_fail(profile_walk *walk, const char *profile, const char *what)
{
    aws_error_set(walk->err, AWS_ERR_CREDENTIALS, "shared profile \"%s\": %s", profile, what);
    return FAILED;
}

static const char *setting(profile_walk *walk, const char *profile, const char *key)
{
    return aws_shared_files_get(walk->files, profile, key);
}

static int profile_static(profile_walk *walk, const char *profile)
{
    char where[300];
    snprintf(where, sizeof where, "shared profile \"%s\"", profile);
    int rc = static_keys(walk->plan, where, "aws_access_key_id",
                         setting(walk, profile, "aws_access_key_id"), "aws_secret_access_key",
                         setting(walk, profile, "aws_secret_access_key"),
                         setting(walk, profile, "aws_session_token"), walk->err);
    if (rc == CHOSEN)
        walk->plan->kind = AWS_CRED_PLAN_STATIC;
    return rc;
}

/* credential_source = Environment | Ec2InstanceMetadata | EcsContainer. */
static int profile_credential_source(profile_walk *walk, const char *profile, const char *source)
{
    int rc = FAILED;
    if (strcmp(source, "Environment") == 0) {
        rc = env_keys(walk->env, walk->plan, walk->err);
        walk->plan->kind = AWS_CRED_PLAN_STATIC;
    } else if (strcmp(source, "Ec2InstanceMetadata") == 0) {
        rc = try_imds(walk->env, walk->plan, walk->err);
    } else if (strcmp(source, "EcsContainer") == 0) {
        rc = try_container(walk->env, walk->plan, walk->err);
    } else {
        return profile_fail(walk, profile,
                            "credential_source must be Environment, Ec2InstanceMetadata or "
                            "EcsContainer");
    }
    if (rc == SKIPPED)
        return profile_fail(walk, profile, "credential_source gives no credentials");
    return rc;
}

static int profile_credentials(profile_walk *walk, const char *profile, int depth);

static int append_role(profile_walk *walk, const char *profile, const char *role_arn)
{
    aws_cred_plan *plan = walk->plan;
    if (plan->role_count >= AWS_CRED_MAX_ROLE_CHAIN)
        return profile_fail(walk, profile, "role chain too long");
    char where[300];
    snprintf(where, sizeof where, "shared profile \"%s\"", profile);
    return set_role(&plan->roles[plan->role_count++], where, role_arn,
                    setting(walk, profile, "role_session_name"),
                    setting(walk, profile, "external_id"),
                    setting(walk, profile, "duration_seconds"), walk->err);
}

/* role_arn with source_profile or credential_source: the base credentials
 * first, then this profile's role on top. */
static int profile_assume_role(profile_walk *walk, const char *profile, const char *role_arn,
                               int depth)
{
    const char *source_profile = setting(walk, profile, "source_profile");
    const char *credential_source = setting(walk, profile, "credential_source");
    if (setting(walk, profile, "mfa_serial") != NULL)
        return profile_fail(walk, profile, "mfa_serial is not supported (no terminal to ask)");
    if (source_profile != NULL && credential_source != NULL)
        return profile_fail(walk, profile, "has both source_profile and credential_source");
    int rc;
    if (credential_source != NULL)
        rc = profile_credential_source(walk, profile, credential_source);
    else if (strcmp(source_profile, profile) == 0)
        rc = profile_static(walk, profile);
    else if (!aws_shared_files_has_profile(walk->files, source_profile))
        return profile_fail(walk, profile, "source_profile not found");
    else
        rc = profile_credentials(walk, source_profile, depth + 1);
    if (rc == SKIPPED)
        return profile_fail(walk, profile, "source_profile has no credentials");
    if (rc != CHOSEN)
        return rc;
    return append_role(walk, profile, role_arn);
}

static int profile_credentials(profile_walk *walk, const char *profile, int depth)
{
    if (depth > AWS_CRED_MAX_ROLE_CHAIN)
        return profile_fail(walk, profile, "source_profile chain too long or circular");
    const char *role_arn = setting(walk, profile, "role_arn");
    bool has_keys = setting(walk, profile, "aws_access_key_id") != NULL;
    bool has_source = setting(walk, profile, "source_profile") != NULL ||
                      setting(walk, profile, "credential_source") != NULL;
    if (role_arn != NULL && has_source && !(depth > 0 && has_keys))
        return profile_assume_role(walk, profile, role_arn, depth);
    int rc = profile_static(walk, profile);
    if (rc != SKIPPED)
        return rc;
    const char *token_file = setting(walk, profile, "web_identity_token_file");
    if (token_file != NULL) {
        char where[300];
        snprintf(where, sizeof where, "shared profile \"%s\"", profile);
        return web_identity(walk->plan, where, token_file, role_arn,
                            setting(walk, profile, "role_session_name"), walk->err);
    }
    if (aws_cred_sso_configured(walk->files, profile)) /* credentials_sso.c */
        return aws_cred_sso_plan(walk->files, walk->env, profile, walk->plan, walk->err) == 0
                   ? CHOSEN
                   : FAILED;
    const char *process = setting(walk, profile, "credential_process");
    if (process != NULL) {
        if (!copy_text(walk->plan->process_command, sizeof walk->plan->process_command, process))
            return profile_fail(walk, profile, "credential_process too long");
        walk->plan->kind = AWS_CRED_PLAN_PROCESS;
        return CHOSEN;
    }
    if (role_arn != NULL)
        return profile_fail(walk, profile, "role_arn needs source_profile or credential_source");
    return SKIPPED;
}

static const char *region_for(const aws_credentials_options *options, const aws_cred_env *env,
                              const aws_shared_files *files, const char *profile)
{
    if (nonempty(options->region) != NULL)
        return options->region;
    const char *region = aws_cred_env_get(env, "AWS_REGION");
    if (region == NULL)
        region = aws_cred_env_get(env, "AWS_DEFAULT_REGION");
    if (region == NULL && files != NULL)
        region = aws_shared_files_get(files, profile, "region");
    return region;
}

static int walk_profile(const aws_shared_files *files, const aws_cred_env *env, const char *profile,
                        bool explicit_profile, aws_cred_plan *plan, aws_error *err)
{
    if (!aws_shared_files_has_profile(files, profile)) {
        if (!explicit_profile)
            return SKIPPED;
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "shared profile \"%s\" (AWS_PROFILE) not found in the shared config or "
                      "credentials file",
                      profile);
        return FAILED;
    }
    profile_walk walk = {.files = files, .env = env, .plan = plan, .err = err};
    aws_cred_plan_kind before = plan->kind;
    int rc = profile_credentials(&walk, profile, 0);
    if (rc != CHOSEN) {
        aws_credentials_clear(&plan->static_credentials);
        plan->kind = before;
        plan->role_count = 0;
        return rc;
    }
    copy_text(plan->profile, sizeof plan->profile, profile);
    bool process_only = plan->kind == AWS_CRED_PLAN_PROCESS && plan->role_count == 0;
    bool sso_only = plan->kind == AWS_CRED_PLAN_SSO && plan->role_count == 0;
    copy_text(plan->source, sizeof plan->source,
              process_only ? "credential_process"
              : sso_only   ? "sso"
                           : "shared_files");
    return CHOSEN;
}

static int try_shared_files(const aws_credentials_options *options, const aws_cred_env *env,
                            aws_cred_plan *plan, aws_error *err)
{
    const char *profile = aws_cred_env_get(env, "AWS_PROFILE");
    bool explicit_profile = profile != NULL;
    if (profile == NULL)
        profile = "default";
    note_tried(plan, "shared profile \"%s\"", profile);
    aws_shared_files files;
    if (aws_shared_files_load(env, &files, err) != 0)
        return FAILED;
    int rc = walk_profile(&files, env, profile, explicit_profile, plan, err);
    if (rc == CHOSEN)
        copy_text(plan->region, sizeof plan->region, region_for(options, env, &files, profile));
    aws_shared_files_free(&files);
    return rc;
}

/* --- the chain ------------------------------------------------------------------------ */

int aws_cred_plan_resolve(const aws_credentials_options *options, const aws_cred_env *env,
                          aws_cred_plan *plan, aws_error *err)
{
    memset(plan, 0, sizeof *plan);
    int rc = try_config(options, plan, err);
    if (rc == SKIPPED)
        rc = try_environment(env, plan, err);
    if (rc == SKIPPED)
        rc = try_web_identity(env, plan, err);
    if (rc == SKIPPED)
        rc = try_shared_files(options, env, plan, err);
    if (rc == SKIPPED)
        rc = try_container(env, plan, err);
    if (rc == SKIPPED)
        rc = try_imds(env, plan, err);
    if (rc == FAILED) {
        aws_cred_plan_clear(plan);
        return -1;
    }
    if (plan->region[0] == '\0')
        copy_text(plan->region, sizeof plan->region, region_for(options, env, NULL, NULL));
    return 0;
}

void aws_cred_plan_clear(aws_cred_plan *plan)
{
    aws_credentials_clear(&plan->static_credentials);
    OPENSSL_cleanse(plan->container_auth_token, sizeof plan->container_auth_token);
}

const char *aws_cred_plan_role_arn(const aws_cred_plan *plan)
{
    if (plan->role_count > 0)
        return plan->roles[plan->role_count - 1].role_arn;
    if (plan->kind == AWS_CRED_PLAN_WEB_IDENTITY)
        return plan->web_identity_role.role_arn;
    return "";
}

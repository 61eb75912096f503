/* Private interfaces of the credential provider chain, split so that each part
 * can be tested without a network: the environment and clock are injectable,
 * choosing a source ("plan") reads only the environment and files, and
 * fetching a plan's credentials goes through a replaceable HTTP function. */
#ifndef KM_AWS_CREDENTIALS_INTERNAL_H
#define KM_AWS_CREDENTIALS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/aws_error.h"
#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/retry.h"

/* --- environment ----------------------------------------------------------- */

/* Returns the variable's value or NULL. */
typedef const char *(*aws_cred_getenv_fn)(void *ctx, const char *name);

typedef struct {
    aws_cred_getenv_fn getenv; /* NULL: the process environment */
    void *ctx;
} aws_cred_env;

/* The variable's value, or NULL when it is unset or empty. */
const char *aws_cred_env_get(const aws_cred_env *env, const char *name);
/* True when the variable is "true" (any case). */
bool aws_cred_env_true(const aws_cred_env *env, const char *name);

/* --- parsing ---------------------------------------------------------------- */

/* ISO 8601 / RFC 3339 UTC time ("2026-01-02T03:04:05Z", fractions and
 * "+hh:mm" offsets accepted) to epoch seconds. Returns 0 or -1. */
int aws_cred_parse_iso8601(const char *text, int64_t *out);
/* Epoch seconds to "2026-01-02T03:04:05Z". */
void aws_cred_format_iso8601(int64_t epoch, char *out, size_t out_size);

/* An STS query-protocol answer (AssumeRole, AssumeRoleWithWebIdentity):
 * Credentials/AccessKeyId, SecretAccessKey, SessionToken, Expiration. For an
 * ErrorResponse, err gets the AWS code and message. Returns 0 or -1. */
int aws_cred_parse_sts_xml(const char *xml, aws_credentials *out, aws_error *err);
/* Names an STS error answer as the credential chain reports it: "STS error
 * CODE: message", a credentials error (AWS's code and request id kept). */
void aws_cred_sts_error(aws_error *err);

/* The JSON credentials the container endpoint, IMDS and credential_process
 * return. The session token key is "Token" (container, IMDS) or
 * "SessionToken" (credential_process, which also requires "Version": 1).
 * Returns 0 or -1 (err names what is missing; never the secrets). */
typedef enum {
    AWS_CRED_JSON_CONTAINER,
    AWS_CRED_JSON_IMDS,
    AWS_CRED_JSON_PROCESS,
} aws_cred_json_kind;
int aws_cred_parse_json(const char *json, aws_cred_json_kind kind, aws_credentials *out,
                        aws_error *err);

/* application/x-www-form-urlencoded value encoding. Returns a malloc'd string. */
char *aws_cred_form_encode(const char *value);

/* --- shared config / credentials files --------------------------------------- */

typedef struct aws_ini aws_ini;

/* Parses INI text: "[section]" headers, "key = value" lines (keys are
 * lower-cased, values trimmed), full-line '#' and ';' comments, indented
 * sub-properties (ignored). Never fails on bad lines: they are skipped. */
aws_ini *aws_ini_parse(const char *text);
/* Reads and parses a file; NULL with *missing = true when it does not exist. */
aws_ini *aws_ini_load(const char *path, bool *missing, aws_error *err);
void aws_ini_free(aws_ini *ini);
bool aws_ini_has_section(const aws_ini *ini, const char *section);
/* A key's value in a section (the last one when repeated), or NULL. */
const char *aws_ini_get(const aws_ini *ini, const char *section, const char *key);

/* The two shared files together: a profile is "[name]" in the credentials
 * file and "[profile name]" (or "[default]") in the config file; the
 * credentials file wins for a key present in both. */
typedef struct {
    aws_ini *credentials;
    aws_ini *config;
} aws_shared_files;

int aws_shared_files_load(const aws_cred_env *env, aws_shared_files *files, aws_error *err);
void aws_shared_files_free(aws_shared_files *files);
bool aws_shared_files_has_profile(const aws_shared_files *files, const char *profile);
const char *aws_shared_files_get(const aws_shared_files *files, const char *profile,
                                 const char *key);

/* --- plans: which source, and what it needs --------------------------------- */

typedef enum {
    AWS_CRED_PLAN_NONE = 0,     /* nothing configured (IMDS disabled) */
    AWS_CRED_PLAN_STATIC,       /* keys known now (config, environment, profile) */
    AWS_CRED_PLAN_WEB_IDENTITY, /* token file + role: AssumeRoleWithWebIdentity */
    AWS_CRED_PLAN_PROCESS,      /* credential_process command */
    AWS_CRED_PLAN_CONTAINER,    /* ECS / EKS Pod Identity endpoint */
    AWS_CRED_PLAN_IMDS,         /* EC2 instance metadata (IMDSv2) */
    AWS_CRED_PLAN_SSO, /* SSO profile: cached token + GetRoleCredentials (credentials_sso.c) */
} aws_cred_plan_kind;

typedef struct {
    char role_arn[2048];
    char session_name[128]; /* "" : "spire-aws-kms-<epoch>" at each call */
    char external_id[1280];
    int duration_seconds; /* 0: STS default */
} aws_cred_role;

enum { AWS_CRED_MAX_ROLE_CHAIN = 4 };

typedef struct {
    aws_cred_plan_kind kind;
    char source[32];   /* the name reported in aws_credentials.source */
    char profile[256]; /* shared profile, for logs; "" when not from a profile */
    char region[64];   /* region for STS; "" : us-east-1 */

    aws_credentials static_credentials; /* STATIC */

    char token_file[4096]; /* WEB_IDENTITY: re-read at every fetch */
    aws_cred_role web_identity_role;

    char process_command[4096]; /* PROCESS */

    char container_url[2048];        /* CONTAINER */
    char container_auth_token[4096]; /* a secret; "" when none */
    char container_auth_file[4096];  /* re-read at every fetch; "" when none */

    char imds_endpoint[512]; /* IMDS: base URL without trailing slash */
    bool imds_v1_fallback;   /* false when AWS_EC2_METADATA_V1_DISABLED=true */

    /* SSO (IAM Identity Center) profile (credentials_sso.c) */
    char sso_session[256];    /* sso_session name; "" for a legacy profile */
    char sso_start_url[1024]; /* the portal start URL */
    char sso_region[64];      /* the portal's region */
    char sso_account_id[32];  /* role to get credentials for */
    char sso_role_name[128];
    char sso_cache_file[4096]; /* ~/.aws/sso/cache/<sha1>.json, re-read at every fetch */
    char sso_endpoint[512];    /* portal base URL: AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL or
                                  https://portal.sso.{sso_region}.amazonaws.com */

    /* Roles assumed in turn with AssumeRole, starting from the credentials
     * the kind above gives (shared profile role_arn / source_profile). */
    aws_cred_role roles[AWS_CRED_MAX_ROLE_CHAIN];
    size_t role_count;

    char tried[512]; /* sources looked at before this one, for error text */
} aws_cred_plan;

/* Chooses the first configured source in the SDKs' order. Returns 0 with the
 * plan (kind NONE when nothing is configured), or -1 when a source is
 * configured but cannot work (err names the source). Reads only the
 * environment and the shared files; no network. */
int aws_cred_plan_resolve(const aws_credentials_options *options, const aws_cred_env *env,
                          aws_cred_plan *plan, aws_error *err);
/* Wipes the secrets a plan holds. */
void aws_cred_plan_clear(aws_cred_plan *plan);

/* The role ARN to log for a plan ("" when none). */
const char *aws_cred_plan_role_arn(const aws_cred_plan *plan);

/* --- fetching a plan's credentials -------------------------------------------- */

typedef int (*aws_cred_perform_fn)(void *ctx, const aws_http_request *request,
                                   aws_http_response *response, aws_error *err);

typedef struct {
    aws_http *http;
    const aws_call_ctx *call;    /* deadline and cancel flag for the requests; may be NULL */
    aws_cred_perform_fn perform; /* NULL: aws_http_perform(http, ...) */
    void *perform_ctx;
    const char *sts_endpoint; /* configured override, or NULL */
    bool use_fips_endpoint;
    int64_t now;                 /* epoch seconds, for default session names */
    int process_timeout_ms;      /* credential_process limit */
    int imds_timeout_ms;         /* per IMDS request */
    aws_retry_hooks retry_hooks; /* STS retries' randomness, clock, sleep; zero: the real ones */
} aws_cred_fetch_ctx;

/* One HTTP exchange of a credential source: marked as carrying secrets (the
 * handle's buffers are wiped), bounded by ctx->call's deadline and cancel
 * flag, through ctx->perform when set (tests). */
int aws_cred_perform(const aws_cred_fetch_ctx *ctx, const aws_http_request *request,
                     aws_http_response *response, aws_error *err);

/* Gets credentials from the plan's source (network, files, process).
 * Returns 0, or -1 with err naming the source. */
int aws_cred_plan_fetch(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                        aws_credentials *out, aws_error *err);

/* Runs "/bin/sh -c command" and captures its stdout (stderr discarded).
 * Returns 0 with a malloc'd *output, or -1 (non-zero exit, timeout). */
int aws_cred_run_process(const char *command, int timeout_ms, char **output, aws_error *err);

/* --- SSO profiles (credentials_sso.c) ---------------------------------------- */

/* True when a profile has SSO settings (sso_session or sso_start_url). */
bool aws_cred_sso_configured(const aws_shared_files *files, const char *profile);
/* Fills the plan's sso_* fields (kind SSO) from the profile and its
 * [sso-session NAME] section. Returns 0, or -1 with err naming what is
 * missing. Reads no token: that happens at each fetch. */
int aws_cred_sso_plan(const aws_shared_files *files, const aws_cred_env *env, const char *profile,
                      aws_cred_plan *plan, aws_error *err);
/* The cached token's file name, as the AWS CLI writes it: the SHA-1 hex of
 * the session name (sso_session) or of the start URL (legacy), + ".json". */
void aws_cred_sso_cache_name(const char *session_or_start_url, char out[46]);
/* A cached token file's accessToken (a secret, copied into token) and its
 * expiresAt (RFC 3339; "UTC" suffix of old CLIs accepted). Returns 0 or -1. */
int aws_cred_sso_parse_token(const char *json, char *token, size_t token_size, int64_t *expires_at,
                             aws_error *err);
/* GetRoleCredentials' answer: roleCredentials{accessKeyId, secretAccessKey,
 * sessionToken, expiration (epoch milliseconds)}. Returns 0 or -1. */
int aws_cred_sso_parse_role_credentials(const char *json, aws_credentials *out, aws_error *err);
/* Reads the cached token (it must not have expired: else "run aws sso
 * login"), calls GetRoleCredentials, wipes the token. */
int aws_cred_sso_fetch(const aws_cred_plan *plan, const aws_cred_fetch_ctx *ctx,
                       aws_credentials *out, aws_error *err);

/* --- caching ---------------------------------------------------------------- */

enum { AWS_CRED_REFRESH_WINDOW_S = 300, AWS_CRED_RETRY_AFTER_FAILURE_S = 10 };

typedef enum {
    AWS_CRED_FRESH,   /* valid for more than the refresh window (or never expires) */
    AWS_CRED_STALE,   /* still valid, but within the refresh window */
    AWS_CRED_EXPIRED, /* not usable */
} aws_cred_freshness;

aws_cred_freshness aws_cred_freshness_at(int64_t expiration, int64_t now);

/* Test hooks: everything the provider takes from the outside world. */
typedef int (*aws_cred_fetch_fn)(void *ctx, const aws_cred_plan *plan, aws_credentials *out,
                                 aws_error *err);
typedef struct {
    aws_cred_env env;
    int64_t (*now)(void *ctx); /* epoch seconds; NULL: time() */
    void *now_ctx;
    aws_cred_fetch_fn fetch; /* NULL: aws_cred_plan_fetch */
    void *fetch_ctx;
} aws_cred_hooks;

aws_credentials_provider *
aws_credentials_provider_new_with_hooks(const aws_credentials_options *options,
                                        const aws_cred_hooks *hooks);

#endif

/* The AWS SDK environment (sdk_env.h): region, CA bundle, max attempts and
 * retry mode from plugin_data, the environment or the shared config profile,
 * each checked and reported with where it came from. */
#include "aws/sdk_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/endpoints.h"
#include "aws/retry.h"
#include "common/file_read.h"

/* Where settings are looked up; the shared files are read on first need. */
typedef struct {
    const aws_cred_env *env;
    const char *profile;
    aws_shared_files files;
    bool files_loaded;
    bool failed; /* err is set */
    aws_error *err;
} lookup;

typedef struct {
    const char *value;
    char source[320];
} found_value;

static const char *nonempty(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* The profile's value of key (NULL when unset); sets l->failed when the files
 * exist but cannot be read. */
static const char *profile_value(lookup *l, const char *key)
{
    if (!l->files_loaded && !l->failed) {
        aws_error load_err;
        aws_error_clear(&load_err);
        if (aws_shared_files_load(l->env, &l->files, &load_err) != 0) {
            aws_error_set(l->err, AWS_ERR_VALIDATION, "cannot read the shared AWS config: %s",
                          load_err.message);
            l->failed = true;
            return NULL;
        }
        l->files_loaded = true;
    }
    return l->files_loaded ? aws_shared_files_get(&l->files, l->profile, key) : NULL;
}

/* A setting's sources, looked at in this order. */
typedef struct {
    const char *configured;       /* the plugin's value, or NULL */
    const char *const *variables; /* NULL-terminated */
    const char *unset_value;      /* a value that counts as unset ("0" attempts), or NULL */
    const char *profile_key;
} setting_sources;

/* value, unless it is NULL or the sources' "unset" value. */
static const char *set_value(const setting_sources *sources, const char *value)
{
    if (value != NULL && sources->unset_value != NULL && strcmp(value, sources->unset_value) == 0)
        return NULL;
    return value;
}

/* First of: the plugin's value, the variables in order, the profile's key. */
static bool find_setting(lookup *l, const setting_sources *sources, found_value *out)
{
    memset(out, 0, sizeof *out);
    if ((out->value = nonempty(sources->configured)) != NULL) {
        snprintf(out->source, sizeof out->source, "plugin_data");
        return true;
    }
    for (const char *const *name = sources->variables; *name != NULL; name++) {
        if ((out->value = set_value(sources, aws_cred_env_get(l->env, *name))) != NULL) {
            snprintf(out->source, sizeof out->source, "%s", *name);
            return true;
        }
    }
    if ((out->value = set_value(sources, profile_value(l, sources->profile_key))) != NULL) {
        snprintf(out->source, sizeof out->source, "%s in shared profile \"%s\"",
                 sources->profile_key, l->profile);
        return true;
    }
    return false;
}

static int resolve_region(lookup *l, const aws_client_config *config, aws_sdk_settings *out)
{
    static const char *const variables[] = {"AWS_REGION", "AWS_DEFAULT_REGION", NULL};
    setting_sources sources = {config->region, variables, NULL, "region"};
    found_value found;
    if (!find_setting(l, &sources, &found)) {
        if (!l->failed)
            aws_error_set(l->err, AWS_ERR_VALIDATION,
                          "no AWS region: set region in plugin_data, AWS_REGION or "
                          "AWS_DEFAULT_REGION in SPIRE server's environment, or region in the "
                          "shared config profile \"%s\"",
                          l->profile);
        return -1;
    }
    if (!aws_region_is_valid(found.value) || strlen(found.value) >= sizeof out->region) {
        aws_error_set(l->err, AWS_ERR_VALIDATION,
                      "%s: \"%.64s\" is not an AWS region name such as us-east-2", found.source,
                      found.value);
        return -1;
    }
    snprintf(out->region, sizeof out->region, "%s", found.value);
    snprintf(out->region_source, sizeof out->region_source, "%s", found.source);
    return 0;
}

static int resolve_ca_bundle(lookup *l, const aws_client_config *config, aws_sdk_settings *out)
{
    static const char *const variables[] = {"AWS_CA_BUNDLE", NULL};
    setting_sources sources = {config->ca_bundle, variables, NULL, "ca_bundle"};
    found_value found;
    if (!find_setting(l, &sources, &found))
        return l->failed ? -1 : 0;
    if (strlen(found.value) >= sizeof out->ca_bundle) {
        aws_error_set(l->err, AWS_ERR_VALIDATION, "%s: the CA bundle path is too long",
                      found.source);
        return -1;
    }
    file_problem problem;
    if (file_check_regular(found.value, &problem) != FILE_READ_OK) {
        if (problem.not_regular != NULL)
            aws_error_set(l->err, AWS_ERR_VALIDATION,
                          "%s: the CA bundle \"%s\" is not a regular file (%s)", found.source,
                          found.value, problem.not_regular);
        else
            aws_error_set(l->err, AWS_ERR_VALIDATION, "%s: cannot read the CA bundle \"%s\": %s",
                          found.source, found.value, strerror(problem.error_number));
        return -1;
    }
    snprintf(out->ca_bundle, sizeof out->ca_bundle, "%s", found.value);
    snprintf(out->ca_bundle_source, sizeof out->ca_bundle_source, "%s", found.source);
    return 0;
}

/* A whole decimal integer, or false. */
static bool parse_int(const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return false;
    *out = value;
    return true;
}

static int resolve_max_attempts(lookup *l, const aws_client_config *config, aws_sdk_settings *out)
{
    out->max_attempts = AWS_RETRY_DEFAULT_MAX_ATTEMPTS;
    snprintf(out->max_attempts_source, sizeof out->max_attempts_source, "default");
    if (config->max_attempts > 0) {
        out->max_attempts = config->max_attempts;
        snprintf(out->max_attempts_source, sizeof out->max_attempts_source, "plugin_data");
        return 0;
    }
    static const char *const variables[] = {"AWS_MAX_ATTEMPTS", NULL};
    /* 0 attempts means unset, as in the Go SDK. */
    setting_sources sources = {NULL, variables, "0", "max_attempts"};
    found_value found;
    if (!find_setting(l, &sources, &found))
        return l->failed ? -1 : 0;
    long value;
    if (!parse_int(found.value, &value) || value < 1 || value > AWS_SDK_MAX_ATTEMPTS_LIMIT) {
        aws_error_set(l->err, AWS_ERR_VALIDATION,
                      "%s: \"%.32s\" is not a number of attempts from 1 to %d", found.source,
                      found.value, AWS_SDK_MAX_ATTEMPTS_LIMIT);
        return -1;
    }
    out->max_attempts = (int)value;
    snprintf(out->max_attempts_source, sizeof out->max_attempts_source, "%s", found.source);
    return 0;
}

static int resolve_retry_mode(lookup *l, aws_sdk_settings *out)
{
    snprintf(out->retry_mode, sizeof out->retry_mode, "standard");
    static const char *const variables[] = {"AWS_RETRY_MODE", NULL};
    setting_sources sources = {NULL, variables, NULL, "retry_mode"};
    found_value found;
    if (!find_setting(l, &sources, &found))
        return l->failed ? -1 : 0;
    if (strcmp(found.value, "standard") == 0)
        return 0;
    if (strcmp(found.value, "legacy") == 0)
        aws_error_set(l->err, AWS_ERR_VALIDATION,
                      "%s: retry mode \"legacy\" is not supported (SPIRE's built-in aws_kms "
                      "plugin refuses it too); use \"standard\" or leave it unset",
                      found.source);
    else if (strcmp(found.value, "adaptive") == 0)
        aws_error_set(l->err, AWS_ERR_VALIDATION,
                      "%s: retry mode \"adaptive\" is not supported: the plugin retries in "
                      "standard mode only (no client-side rate limiting); use \"standard\" or "
                      "leave it unset for SPIRE server",
                      found.source);
    else
        aws_error_set(l->err, AWS_ERR_VALIDATION,
                      "%s: \"%.32s\" is not a retry mode; the plugin supports \"standard\"",
                      found.source, found.value);
    return -1;
}

int aws_sdk_settings_resolve_env(const aws_client_config *config, const aws_cred_env *env,
                                 aws_sdk_settings *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    const char *profile = aws_cred_env_get(env, "AWS_PROFILE");
    lookup l = {.env = env, .profile = profile ? profile : "default", .err = err};
    int rc = resolve_region(&l, config, out) == 0 && resolve_ca_bundle(&l, config, out) == 0 &&
                     resolve_max_attempts(&l, config, out) == 0 && resolve_retry_mode(&l, out) == 0
                 ? 0
                 : -1;
    aws_shared_files_free(&l.files);
    return rc;
}

int aws_sdk_settings_resolve(const aws_client_config *config, aws_sdk_settings *out, aws_error *err)
{
    return aws_sdk_settings_resolve_env(config, NULL, out, err);
}

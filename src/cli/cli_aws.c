/* AWS access for the operator commands, built from the plugin's own pieces:
 * the credential chain (SSO profiles included), endpoint rules, retries and
 * the typed KMS client. Here: choosing the profile and region, making the
 * client, and turning a failed call into what an operator should do.
 * Region order: --region, the configuration's (doctor --config), then the
 * AWS SDK environment as the plugin resolves it (sdk_env.h: AWS_REGION,
 * AWS_DEFAULT_REGION, the shared profile's `region`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/credentials_internal.h"
#include "aws/kms_internal.h"
#include "aws/sdk_env.h"
#include "cli/cli_internal.h"

int cli_resolve_region(const cli_options *options, const plugin_config *config, cli_aws *out,
                       char *error, size_t error_size)
{
    if (options->profile != NULL)
        setenv("AWS_PROFILE", options->profile, 1); /* the credential chain reads it */
    const char *profile = getenv("AWS_PROFILE");
    out->profile = profile != NULL && profile[0] != '\0' ? profile : "default";
    const char *flag_region = options->region;
    const char *config_region = config != NULL ? config->region : NULL;
    aws_client_config client = {.region = flag_region != NULL ? flag_region : config_region};
    aws_sdk_settings settings;
    aws_error err = {0};
    if (aws_sdk_settings_resolve(&client, &settings, &err) != 0) {
        if (strncmp(err.message, "no AWS region", 13) == 0)
            snprintf(error, error_size,
                     "no AWS region: give --region, set AWS_REGION or AWS_DEFAULT_REGION, or set "
                     "region in the profile \"%s\"",
                     out->profile);
        else
            snprintf(error, error_size, "%s", err.message);
        return -1;
    }
    snprintf(out->region, sizeof out->region, "%s", settings.region);
    const char *source = flag_region != NULL     ? "--region"
                         : config_region != NULL ? "the configuration"
                                                 : settings.region_source;
    snprintf(out->region_from, sizeof out->region_from, "%s", source);
    return 0;
}

static int get_credentials(void *provider, aws_credentials *out, aws_error *err)
{
    return aws_credentials_get(provider, NULL, out, err); /* the commands set no deadline */
}

int cli_aws_open(const cli_options *options, const plugin_config *config, cli_aws *out, char *error,
                 size_t error_size)
{
    memset(out, 0, sizeof *out);
    if (cli_resolve_region(options, config, out, error, error_size) != 0)
        return -1;
    const char *endpoint =
        options->endpoint != NULL ? options->endpoint : (config ? config->endpoint : NULL);
    aws_credentials_options credentials = {
        .access_key_id = config ? config->access_key_id : NULL,
        .secret_access_key = config ? config->secret_access_key : NULL,
        .region = out->region,
        .use_fips_endpoint = config ? config->use_fips_endpoint : false,
    };
    out->credentials = aws_credentials_provider_new(&credentials);
    aws_client_config client = {
        .region = out->region,
        .endpoint = endpoint,
        .ca_bundle = config ? config->ca_bundle : NULL,
        .use_fips_endpoint = config ? config->use_fips_endpoint : false,
        .max_attempts = config ? config->max_attempts : 0,
    };
    kms_client_hooks hooks = {.get_credentials = get_credentials, .user = out->credentials};
    aws_error err = {0};
    if (out->credentials != NULL)
        out->kms = kms_client_new_with_hooks(&client, &hooks, &err);
    if (out->kms == NULL) {
        snprintf(error, error_size, "%s",
                 out->credentials == NULL ? "cannot set up the AWS credential chain" : err.message);
        cli_aws_close(out);
        return -1;
    }
    snprintf(out->endpoint, sizeof out->endpoint, "%s", kms_client_endpoint(out->kms));
    return 0;
}

void cli_aws_close(cli_aws *aws)
{
    kms_client_free(aws->kms);
    aws_credentials_provider_free(aws->credentials);
    aws->kms = NULL;
    aws->credentials = NULL;
}

/* ---- what a failure means ------------------------------------------------------ */

static bool code_is(const aws_error *err, const char *const *codes)
{
    for (; *codes != NULL; codes++) {
        if (strcmp(err->code, *codes) == 0)
            return true;
    }
    return false;
}

bool cli_error_is_access_denied(const aws_error *err)
{
    static const char *const codes[] = {"AccessDeniedException", "AccessDenied",
                                        "NotAuthorizedException", NULL};
    return err->status == AWS_ERR_ACCESS_DENIED && code_is(err, codes);
}

bool cli_error_is_bad_credentials(const aws_error *err)
{
    return err->status == AWS_ERR_CREDENTIALS ||
           (err->status == AWS_ERR_ACCESS_DENIED && !cli_error_is_access_denied(err));
}

void cli_explain_error(const aws_error *err, const char *operation, char *out, size_t size)
{
    const char *code = aws_error_name(err);
    if (err->status == AWS_ERR_CREDENTIALS)
        snprintf(out, size, "no usable AWS credentials: %s", err->message);
    else if (cli_error_is_access_denied(err))
        snprintf(out, size,
                 "%s was denied (%s: %s): the identity lacks the permission; `spire-aws-kms "
                 "doctor` prints the IAM policy to attach",
                 operation, code, err->message);
    else if (cli_error_is_bad_credentials(err))
        snprintf(out, size,
                 "the AWS credentials were refused (%s: %s): the secret key is wrong, or the "
                 "session token has expired",
                 code, err->message);
    else if (err->status == AWS_ERR_TRANSPORT || err->status == AWS_ERR_TIMEOUT)
        snprintf(out, size,
                 "cannot reach KMS (%s): `spire-aws-kms doctor` checks DNS, TLS and "
                 "the endpoint",
                 err->message);
    else
        snprintf(out, size, "%s failed (%s: %s)", operation, code, err->message);
}

/* ---- output helpers --------------------------------------------------------------- */

void cli_format_time(double epoch_s, char *out, size_t size)
{
    if (epoch_s <= 0) {
        snprintf(out, size, "%s", "");
        return;
    }
    time_t seconds = (time_t)epoch_s;
    struct tm utc;
    gmtime_r(&seconds, &utc);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

void cli_format_age(double epoch_s, double now_s, char *out, size_t size)
{
    if (epoch_s <= 0) {
        snprintf(out, size, "-");
        return;
    }
    double age = now_s - epoch_s;
    if (age < 0)
        age = 0;
    if (age >= 2 * 86400.0)
        snprintf(out, size, "%.0fd ago", age / 86400.0);
    else if (age >= 2 * 3600.0)
        snprintf(out, size, "%.0fh ago", age / 3600.0);
    else if (age >= 120.0)
        snprintf(out, size, "%.0fm ago", age / 60.0);
    else
        snprintf(out, size, "%.0fs ago", age);
}

void cli_format_duration(int64_t ms, char *out, size_t size)
{
    if (ms % 3600000 == 0)
        snprintf(out, size, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(out, size, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, size, "%lldms", (long long)ms);
}

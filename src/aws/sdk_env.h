/* The AWS SDK environment for the settings plugin_data may leave unset,
 * resolved in the SDKs' order: the plugin's own value, then the environment,
 * then the shared config profile (AWS_PROFILE or "default"; AWS_CONFIG_FILE or
 * ~/.aws/config, and the credentials file), then the default.
 *   region        region        | AWS_REGION, AWS_DEFAULT_REGION | region     | (none: error)
 *   CA bundle     ca_bundle     | AWS_CA_BUNDLE                  | ca_bundle  | system store
 *   max attempts  max_attempts  | AWS_MAX_ATTEMPTS               | max_attempts | 3
 *   retry mode    -             | AWS_RETRY_MODE                 | retry_mode | standard
 * Only "standard" retries are implemented: "legacy" (which the Go SDK that SPIRE
 * uses refuses too) and "adaptive" (client-side rate limiting) are refused with
 * a message that says so. */
#ifndef KM_AWS_SDK_ENV_H
#define KM_AWS_SDK_ENV_H

#include "aws/aws_error.h"
#include "aws/credentials_internal.h"
#include "aws/kms.h"

enum { AWS_SDK_MAX_ATTEMPTS_LIMIT = 10 };

typedef struct {
    char region[64];
    char region_source[320];    /* "plugin_data", "AWS_REGION", "profile \"p\" in FILE", ... */
    char ca_bundle[4096];       /* "": the system trust store */
    char ca_bundle_source[320]; /* "" when none */
    int max_attempts;           /* 1 to AWS_SDK_MAX_ATTEMPTS_LIMIT */
    char max_attempts_source[320];
    char retry_mode[16]; /* "standard" */
} aws_sdk_settings;

/* The settings for a client (config's region, ca_bundle and max_attempts win
 * when set) with the process environment. Returns 0, or -1 with err
 * (AWS_ERR_VALIDATION) naming the variable or profile key at fault: no region
 * from any source, a bad region name, an unreadable CA bundle, a max attempts
 * that is not 1 to 10, a retry mode other than standard, an unreadable shared
 * config file. */
int aws_sdk_settings_resolve(const aws_client_config *config, aws_sdk_settings *out,
                             aws_error *err);
/* The same with an injected environment (tests); env NULL: the process's. */
int aws_sdk_settings_resolve_env(const aws_client_config *config, const aws_cred_env *env,
                                 aws_sdk_settings *out, aws_error *err);

#endif

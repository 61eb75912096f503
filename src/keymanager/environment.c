/* km_check_environment: what plugin_data leaves to the AWS SDK environment
 * (region, CA bundle, max attempts, retry mode), checked with the same
 * resolution the KMS client makes at Configure, for Validate and the CLI. */
#include <string.h>

#include "aws/sdk_env.h"
#include "keymanager/keymanager.h"

void km_check_environment(const plugin_config *config, config_notes *notes)
{
    aws_client_config client_config = {
        .region = config->region,
        .ca_bundle = config->ca_bundle,
        .max_attempts = config->max_attempts,
    };
    aws_sdk_settings settings;
    aws_error err;
    aws_error_clear(&err);
    if (aws_sdk_settings_resolve(&client_config, &settings, &err) != 0)
        config_notes_add(notes, "%s", err.message);
}

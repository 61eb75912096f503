/* AWS credentials and the default provider chain, in the AWS SDKs' order:
 * config keys, environment, web identity (EKS IRSA), shared config/credentials
 * files, container endpoint (ECS, EKS Pod Identity), EC2 IMDSv2.
 * Temporary credentials are cached and refreshed before they expire. */
#ifndef KM_AWS_CREDENTIALS_H
#define KM_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stdint.h>

#include "aws/aws_error.h"
#include "aws/call_ctx.h"

typedef struct {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096]; /* "" when none */
    int64_t expiration;       /* epoch seconds; 0: does not expire */
    char source[32];          /* "config", "environment", "web_identity", "shared_files",
                                 "credential_process", "container", "imds", "sso" */
} aws_credentials;

typedef struct aws_http aws_http;
typedef struct aws_credentials_provider aws_credentials_provider;

typedef struct {
    const char *access_key_id;     /* from plugin config, or NULL */
    const char *secret_access_key; /* from plugin config, or NULL */
    const char *region;            /* for the regional STS endpoint */
    const char *sts_endpoint;      /* override, or NULL: env AWS_ENDPOINT_URL_STS /
                                      AWS_ENDPOINT_URL, then derived from region */
    bool use_fips_endpoint;
    aws_http *http;         /* used for STS, IMDS and container requests; NULL: the provider
                               makes (and frees) its own */
    int process_timeout_ms; /* credential_process time limit; 0: 60000 */
} aws_credentials_options;

aws_credentials_provider *aws_credentials_provider_new(const aws_credentials_options *options);
void aws_credentials_provider_free(aws_credentials_provider *provider);

/* Current credentials: cached while valid; refreshed (by one thread, others
 * keep using the still-valid ones) within 5 minutes of expiry on the
 * skew-corrected clock. A caller that has to wait for another thread's
 * refresh gives up at its call's deadline (AWS_ERR_TIMEOUT) or cancellation
 * (AWS_ERR_CANCELLED); the refreshing caller's own requests are bounded by
 * them too. call may be NULL (no deadline). */
int aws_credentials_get(aws_credentials_provider *provider, const aws_call_ctx *call,
                        aws_credentials *out, aws_error *err);

/* Without ever waiting (for the event thread and the threads that must not
 * block): 0 with the cached credentials when they can be used now (fresh, or
 * still valid while a refresh is due or running); -1 when only a blocking
 * aws_credentials_get can give credentials (none resolved yet, expired).
 * *refresh_due is set, for one caller at a time, when the credentials are
 * within the refresh window and nobody refreshes them: that caller then runs
 * aws_credentials_refresh_due on a thread that may block. */
int aws_credentials_peek(aws_credentials_provider *provider, aws_credentials *out,
                         bool *refresh_due);
/* The refresh aws_credentials_peek asked for (blocks; bounded by call). */
void aws_credentials_refresh_due(aws_credentials_provider *provider, const aws_call_ctx *call);

/* Wipes secrets from memory. */
void aws_credentials_clear(aws_credentials *credentials);

#endif

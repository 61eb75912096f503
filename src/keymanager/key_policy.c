/* Key policy choice (see key_policy.h). */
#include "keymanager/key_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "keymanager/km_status.h"

/* Byte for byte the document SPIRE's aws_kms plugin sends (leading newline,
 * tab indentation, one line indented with spaces), so keys created by either
 * implementation carry the same policy. */
static const char ROLE_POLICY_FORMAT[] =
    "\n{\n"
    "\t\"Version\": \"2012-10-17\",\n"
    "\t\"Statement\": [\n"
    "\t\t{\n"
    "\t\t\t\"Sid\": \"Allow full access to the SPIRE Server role\",\n"
    "\t\t\t\"Effect\": \"Allow\",\n"
    "\t\t\t\"Principal\": {\n"
    "\t\t\t\t\"AWS\": \"arn:aws:iam::%s:role/%s\"\n"
    "\t\t\t},\n"
    "\t\t\t\"Action\": \"kms:*\",\n"
    "\t\t\t\"Resource\": \"*\"\n"
    "\t\t},\n"
    "\t\t{\n"
    "\t\t\t\"Sid\": \"Allow KMS console to display the key and policy\",\n"
    "\t\t\t\"Effect\": \"Allow\",\n"
    "\t\t\t\"Principal\": {\n"
    "\t\t\t    \"AWS\": \"arn:aws:iam::%s:root\"\n"
    "\t\t\t},\n"
    "\t\t\t\"Action\": [\n"
    "\t\t\t\t\"kms:Describe*\",\n"
    "\t\t\t\t\"kms:List*\",\n"
    "\t\t\t\t\"kms:Get*\"\n"
    "\t\t\t],\n"
    "\t\t\t\"Resource\": \"*\"\n"
    "\t\t}\n"
    "\t]\n"
    "}";

void key_policy_init(key_policy *policy, const char *configured)
{
    memset(policy, 0, sizeof *policy);
    pthread_mutex_init(&policy->lock, NULL);
    if (configured != NULL) {
        policy->configured = strdup(configured);
        policy->resolved = policy->configured != NULL;
    }
}

void key_policy_destroy(key_policy *policy)
{
    free(policy->configured);
    free(policy->derived);
    pthread_mutex_destroy(&policy->lock);
}

bool key_policy_role_from_arn(const char *arn, char *role, size_t role_size)
{
    const char *resource = strrchr(arn, ':');
    resource = resource != NULL ? resource + 1 : arn;
    const char *slash = strchr(resource, '/');
    if (slash == NULL || (size_t)(slash - resource) != strlen("assumed-role") ||
        strncmp(resource, "assumed-role", strlen("assumed-role")) != 0)
        return false;
    const char *name = slash + 1;
    size_t len = strcspn(name, "/");
    if (len >= role_size)
        return false;
    memcpy(role, name, len);
    role[len] = '\0';
    return true;
}

char *key_policy_for_role(const char *account, const char *role)
{
    char *text = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (asprintf(&text, ROLE_POLICY_FORMAT, account, role, account) < 0)
        text = NULL;
#pragma GCC diagnostic pop
    return text;
}

/* Caller holds the lock. */
static int derive_locked(key_policy *policy, kms_client *kms, const aws_call_ctx *ctx,
                         km_status *status)
{
    sts_identity identity;
    memset(&identity, 0, sizeof identity);
    aws_error err;
    aws_error_clear(&err);
    if (sts_get_caller_identity(kms, ctx, &identity, &err) != 0) {
        km_fail_aws(status, "GetCallerIdentity", &err);
        char cause[sizeof status->message];
        snprintf(cause, sizeof cause, "%s", status->message);
        km_status_set(status, status->code, "unable to create the key policy: %s", cause);
        return -1;
    }
    char role[512];
    if (!key_policy_role_from_arn(identity.arn, role, sizeof role)) {
        log_write(LOG_WARN, "keymanager",
                  "In a future version of SPIRE, it will be mandatory for the SPIRE servers to "
                  "assume an AWS IAM Role when using the default AWS KMS key policy. Please "
                  "assign an IAM role to this SPIRE Server instance.",
                  "caller_arn", identity.arn, LOG_END);
        policy->resolved = true;
        return 0;
    }
    policy->derived = key_policy_for_role(identity.account, role);
    if (policy->derived == NULL) {
        km_status_set(status, GRPC_STATUS_INTERNAL, "out of memory");
        return -1;
    }
    log_write(LOG_INFO, "keymanager", "Keys get a policy for the assumed role", "role", role,
              "account", identity.account, LOG_END);
    policy->resolved = true;
    return 0;
}

int key_policy_resolve(key_policy *policy, kms_client *kms, const aws_call_ctx *ctx,
                       const char **out, km_status *status)
{
    pthread_mutex_lock(&policy->lock);
    int rc = policy->resolved ? 0 : derive_locked(policy, kms, ctx, status);
    *out = policy->configured != NULL ? policy->configured : policy->derived;
    pthread_mutex_unlock(&policy->lock);
    return rc;
}

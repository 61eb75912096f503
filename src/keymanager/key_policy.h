/* The Policy for keys we create: the key_policy_file contents when
 * configured; else, like SPIRE's built-in aws_kms, a policy granting the
 * assumed role we run as full access (STS GetCallerIdentity, asked once, on
 * the first GenerateKey); else none (KMS's default policy). */
#ifndef KM_KEY_POLICY_H
#define KM_KEY_POLICY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "aws/kms.h"
#include "keymanager/keymanager.h"

typedef struct {
    pthread_mutex_t lock;
    char *configured; /* key_policy_file contents, or NULL */
    bool resolved;
    char *derived; /* built from the caller identity, or NULL */
} key_policy;

void key_policy_init(key_policy *policy, const char *configured);
void key_policy_destroy(key_policy *policy);
/* Sets *out to the policy document (NULL: KMS default), valid until
 * key_policy_destroy. Returns 0, or -1 with status set when STS fails. */
int key_policy_resolve(key_policy *policy, kms_client *kms, const aws_call_ctx *ctx,
                       const char **out, km_status *status);

/* The role name in an assumed-role ARN
 * (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION); false for other ARNs. */
bool key_policy_role_from_arn(const char *arn, char *role, size_t role_size);
/* The policy document SPIRE's aws_kms builds for account and role (malloc'd). */
char *key_policy_for_role(const char *account, const char *role);

#endif

/* Endpoint rules: KMS, STS and Resource Groups Tagging API URLs per region,
 * partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b), FIPS, and custom
 * endpoints from config or environment. */
#ifndef KM_AWS_ENDPOINTS_H
#define KM_AWS_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>

/* service is the endpoint prefix: "kms", "sts" or "tagging". configured may be
 * NULL. Environment consulted: AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL_STS /
 * AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API, then AWS_ENDPOINT_URL, and
 * AWS_USE_FIPS_ENDPOINT ("tagging-fips.REGION...", as the SDKs' rules build it).
 * Writes the base URL (no trailing slash) into out. Returns 0, or -1 when the
 * region is not a valid region name. */
int aws_endpoint_resolve(const char *service, const char *region, const char *configured,
                         bool use_fips, char *out, size_t out_size);

/* True for a well-formed region name: ^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$ */
bool aws_region_is_valid(const char *region);

/* "aws", "aws-cn" or "aws-us-gov" (also "aws-iso", "aws-iso-b") for a region name. */
const char *aws_partition_for_region(const char *region);

#endif

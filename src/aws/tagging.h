/* Typed AWS Resource Groups Tagging API client: GetResources, which finds KMS
 * keys by their tags (tag-based key discovery). It runs over a kms_client: the
 * same credentials, connection pool, retries and retry-token bucket as KMS.
 * Endpoint: AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API, then AWS_ENDPOINT_URL,
 * else https://tagging.REGION.amazonaws.com (partition suffixes as for KMS;
 * "tagging-fips." with use_fips_endpoint or AWS_USE_FIPS_ENDPOINT=true). The
 * plugin's `endpoint` key is a KMS URL and never applies here.
 * JSON 1.1, X-Amz-Target ResourceGroupsTaggingAPI_20170126.GetResources, SigV4
 * service "tagging". Errors: AccessDeniedException (missing tag:GetResources)
 * is AWS_ERR_ACCESS_DENIED; ThrottledException is retried; an expired
 * PaginationToken (15 minutes) is AWS_ERR_CLIENT with code
 * "PaginationTokenExpiredException": start the listing again. */
#ifndef KM_AWS_TAGGING_H
#define KM_AWS_TAGGING_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/aws_error.h"
#include "aws/kms.h"

enum {
    TAGGING_MAX_RESOURCES_PER_PAGE = 100,
    TAGGING_MAX_TAG_FILTERS = 50,
    TAGGING_MAX_FILTER_VALUES = 20,
    TAGGING_MAX_TOKEN = 2048,
};

/* Resources carrying tag `key` with one of `values` (any value, or none, when
 * value_count is 0). Filters are ANDed; a filter's values are ORed. */
typedef struct {
    const char *key;
    const char *const *values;
    size_t value_count;
} tagging_tag_filter;

typedef struct {
    const char *const *resource_types; /* e.g. {"kms:key"}; none: every type */
    size_t resource_type_count;
    const tagging_tag_filter *tag_filters;
    size_t tag_filter_count;
    const char *pagination_token; /* NULL or "": the first page */
    int resources_per_page;       /* 1 to 100; 0: AWS's default */
} tagging_get_resources_input;

typedef struct {
    char arn[1024]; /* ResourceARN */
    aws_tag_set tags;
} tagging_resource;

typedef struct {
    tagging_resource *resources; /* malloc'd */
    size_t count;
    /* The token for the next page; "" on the last page (a page may hold fewer
     * resources than asked for even when more follow). */
    char next_token[TAGGING_MAX_TOKEN + 1];
} tagging_resource_page;
void tagging_resource_page_clear(tagging_resource_page *page);

/* One page of GetResources. Returns 0, or -1 with err (a bad input is
 * AWS_ERR_VALIDATION before any request; an answer that does not parse is
 * AWS_ERR_BAD_RESPONSE). */
int tagging_get_resources(kms_client *client, const aws_call_ctx *ctx,
                          const tagging_get_resources_input *input, tagging_resource_page *out,
                          aws_error *err);

#endif

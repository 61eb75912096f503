/* Endpoint rules for KMS, STS and the Resource Groups Tagging API: a custom
 * endpoint (config, then AWS_ENDPOINT_URL_<SERVICE ID>, then AWS_ENDPOINT_URL)
 * wins; otherwise the regional endpoint in the region's partition, with "-fips"
 * when FIPS is asked for (option or AWS_USE_FIPS_ENDPOINT=true). */
#include "aws/endpoints.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *prefix; /* region name prefix */
    const char *partition;
    const char *dns_suffix;
} partition_rule;

/* Checked in order: the first matching prefix wins. */
static const partition_rule partition_rules[] = {
    {"us-gov-", "aws-us-gov", "amazonaws.com"},
    {"cn-", "aws-cn", "amazonaws.com.cn"},
    {"us-isob-", "aws-iso-b", "sc2s.sgov.gov"},
    {"us-iso-", "aws-iso", "c2s.ic.gov"},
    {"", "aws", "amazonaws.com"},
};

static const partition_rule *partition_rule_for(const char *region)
{
    size_t count = sizeof partition_rules / sizeof partition_rules[0];
    for (size_t i = 0; i < count; i++) {
        if (strncmp(region, partition_rules[i].prefix, strlen(partition_rules[i].prefix)) == 0)
            return &partition_rules[i];
    }
    return &partition_rules[count - 1];
}

const char *aws_partition_for_region(const char *region)
{
    return region ? partition_rule_for(region)->partition : "aws";
}

/* Length of the run of lowercase letters at text. */
static size_t lower_run(const char *text)
{
    size_t n = 0;
    while (text[n] >= 'a' && text[n] <= 'z')
        n++;
    return n;
}

/* ^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$ */
bool aws_region_is_valid(const char *region)
{
    if (region == NULL || lower_run(region) != 2)
        return false;
    const char *p = region + 2;
    if (strncmp(p, "-gov-", 5) == 0)
        p += 4;
    else if (strncmp(p, "-iso", 4) == 0)
        p += 4 + lower_run(p + 4);
    if (*p != '-' || lower_run(p + 1) == 0)
        return false;
    p += 1 + lower_run(p + 1);
    if (*p != '-' || !isdigit((unsigned char)p[1]))
        return false;
    for (p++; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
    }
    return true;
}

static bool env_is_true(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && strcasecmp(value, "true") == 0;
}

/* The SDKs' service-specific variable: AWS_ENDPOINT_URL_ and the service id in
 * upper case, spaces as underscores ("Resource Groups Tagging API"). */
static void service_variable(const char *service, char *out, size_t size)
{
    static const struct {
        const char *endpoint_prefix;
        const char *service_id;
    } ids[] = {{"tagging", "RESOURCE_GROUPS_TAGGING_API"}};
    const char *id = service;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strcmp(service, ids[i].endpoint_prefix) == 0)
            id = ids[i].service_id;
    snprintf(out, size, "AWS_ENDPOINT_URL_%s", id);
    for (char *c = out; *c; c++)
        *c = (char)toupper((unsigned char)*c);
}

/* configured, then AWS_ENDPOINT_URL_<SERVICE ID>, then AWS_ENDPOINT_URL. */
static const char *custom_endpoint(const char *service, const char *configured)
{
    if (configured != NULL && configured[0] != '\0')
        return configured;
    char name[96];
    service_variable(service, name, sizeof name);
    const char *value = getenv(name);
    if (value != NULL && value[0] != '\0')
        return value;
    value = getenv("AWS_ENDPOINT_URL");
    return value != NULL && value[0] != '\0' ? value : NULL;
}

static int copy_without_trailing_slashes(const char *url, char *out, size_t out_size)
{
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len == 0 || len >= out_size)
        return -1;
    memcpy(out, url, len);
    out[len] = '\0';
    return 0;
}

int aws_endpoint_resolve(const char *service, const char *region, const char *configured,
                         bool use_fips, char *out, size_t out_size)
{
    if (service == NULL || !aws_region_is_valid(region) || out == NULL || out_size == 0)
        return -1;
    const char *custom = custom_endpoint(service, configured);
    if (custom != NULL)
        return copy_without_trailing_slashes(custom, out, out_size);
    bool fips = use_fips || env_is_true("AWS_USE_FIPS_ENDPOINT");
    int n = snprintf(out, out_size, "https://%s%s.%s.%s", service, fips ? "-fips" : "", region,
                     partition_rule_for(region)->dns_suffix);
    return n > 0 && (size_t)n < out_size ? 0 : -1;
}

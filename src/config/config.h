/* The plugin's configuration: SPIRE's hcl_configuration text checked against
 * one schema table (schema.c) and turned into a plugin_config. Every problem
 * is reported (one note each, naming the key and line:column); secrets never
 * appear in notes. */
#ifndef KM_CONFIG_H
#define KM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

typedef struct {
    char *key;
    char *value;
} config_tag;

typedef struct plugin_config {
    char *trust_domain; /* from CoreConfiguration, validated */

    /* AWS access: NULL means "not set" (the credential chain decides). */
    char *access_key_id;
    char *secret_access_key;
    char *region;    /* NULL: the AWS SDK environment's (config_load_checked) */
    char *endpoint;  /* custom KMS endpoint URL, or NULL */
    char *ca_bundle; /* PEM file to trust instead of the system store, or NULL */
    bool use_fips_endpoint;
    int max_attempts; /* AWS attempts per call, 1-10; 0: AWS_MAX_ATTEMPTS, profile, 3 */

    /* Server identity: exactly one of these two is non-NULL. */
    char *key_identifier_file; /* key_metadata_file or key_identifier_file */
    char *key_identifier_value;

    /* Key creation. */
    char *key_policy_file; /* as configured, or NULL */
    char *key_policy;      /* its contents (a JSON document), or NULL */
    config_tag *key_tags;
    size_t key_tag_count;

    /* Tag-based key discovery (SPIRE 1.15's enable_tag_based_key_discovery):
     * keys carry spire-* tags and are found with the tagging API. */
    bool enable_tag_based_key_discovery;

    log_level log_level; /* default info */

    /* Fleet tasks (advanced; milliseconds). */
    int64_t refresh_aliases_interval_ms; /* 6h */
    int64_t dispose_aliases_interval_ms; /* 24h */
    int64_t dispose_keys_interval_ms;    /* 48h */
    int64_t stale_alias_age_ms;          /* 336h */
    int64_t orphan_key_age_ms;           /* 48h */
} plugin_config;

/* Bounds on the settings that judge *other* servers (config_load refuses
 * values outside them): no one server's settings may prune live peers. */
#define CONFIG_MIN_STALE_ALIAS_AGE_MS  (168LL * 3600 * 1000) /* 7 days */
#define CONFIG_MIN_ORPHAN_KEY_AGE_MS   (24LL * 3600 * 1000)
#define CONFIG_REFRESHES_PER_STALE_AGE 4 /* refresh_aliases_interval <= stale_alias_age / 4 */

/* In tag mode every CreateKey carries five spire-* tags besides key_tags, and
 * AWS allows 50 tags per key. */
#define CONFIG_TAG_MODE_SPIRE_TAGS   5
#define CONFIG_TAG_MODE_MAX_KEY_TAGS (50 - CONFIG_TAG_MODE_SPIRE_TAGS)

typedef struct {
    char **items;
    size_t count;
} config_notes;

/* config_load reports at most this many problems, then "... and N more problems". */
enum { CONFIG_MAX_NOTES = 20 };

/* Parses hcl_text (HCL v1 or JSON) and checks it, with trust_domain from the
 * core configuration. Returns a new config, or NULL with at least one note per
 * problem in notes (which the caller clears). */
plugin_config *config_load(const char *hcl_text, const char *trust_domain, config_notes *notes);

/* What plugin_data leaves to the AWS SDK environment (the region, and the
 * environment's AWS_CA_BUNDLE, AWS_MAX_ATTEMPTS, AWS_RETRY_MODE and shared
 * config profile), checked once plugin_data is parsed, after its own notes:
 * adds one note per problem. The AWS layer knows the environment, so the
 * caller supplies the check (km_check_environment). */
typedef void (*config_environment_check)(const plugin_config *config, config_notes *notes);

/* config_load, except that region may be left out of plugin_data: check then
 * decides whether the environment supplies one. config_load is this with no
 * check, and then region is required. */
plugin_config *config_load_checked(const char *hcl_text, const char *trust_domain,
                                   config_environment_check check, config_notes *notes);
void config_free(plugin_config *config);

void config_notes_add(config_notes *notes, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void config_notes_clear(config_notes *notes);
/* All notes joined with separator, malloc'd ("" when there are none). */
char *config_notes_join(const config_notes *notes, const char *separator);

#endif

/* The configuration schema: ONE table of keys (name, type, default, rule,
 * doc line, flags) that config_load applies to a parsed HCL body and that
 * doc/configuration.md is checked against. */
#ifndef KM_CONFIG_SCHEMA_H
#define KM_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/hcl.h"

typedef enum {
    SCHEMA_STRING,     /* char * field; "" is the same as unset */
    SCHEMA_INT,        /* int field */
    SCHEMA_BOOL,       /* bool field */
    SCHEMA_DURATION,   /* Go duration string -> int64_t milliseconds field */
    SCHEMA_LOG_LEVEL,  /* "info" etc. -> log_level field */
    SCHEMA_STRING_MAP, /* object of strings -> key_tags */
} schema_type;

enum {
    SCHEMA_SECRET = 1 << 0,   /* value never shown anywhere */
    SCHEMA_ADVANCED = 1 << 1, /* documented in the advanced section */
};

enum { SCHEMA_NO_FIELD = (size_t)-1 };

/* An extra rule on a value of the right type: returns false after adding a
 * note (starting with where, e.g. `key "region" at 2:1`). May fill derived
 * fields of config (key_policy from key_policy_file). */
typedef bool (*schema_rule)(const hcl_value *value, const char *where, plugin_config *config,
                            config_notes *notes);

typedef struct {
    const char *name;
    schema_type type;
    const char *default_text; /* as documented and applied; NULL: unset */
    schema_rule rule;         /* or NULL */
    size_t field;             /* offsetof(plugin_config, ...), or SCHEMA_NO_FIELD */
    const char *required;     /* "yes", "no", or the condition, for the docs */
    const char *doc;
    unsigned flags;
} schema_key;

const schema_key *schema_keys(size_t *count);
const schema_key *schema_find(const char *name);
/* "string", "integer", "bool", "duration", "log level", "map of strings". */
const char *schema_type_name(schema_type type);

/* Sets every key's default in config. */
void schema_apply_defaults(plugin_config *config);
/* Checks body against the table, fills config, adds one note per problem.
 * region_optional: a missing region is left to the environment check. */
void schema_apply(const hcl_value *body, plugin_config *config, bool region_optional,
                  config_notes *notes);

#endif

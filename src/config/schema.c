/* The configuration schema table and its application to a parsed body: type
 * checks, per-key rules, defaults, and the rules that span several keys. */
#include "config/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/rules.h"

enum { WHY_SIZE = 384, WHERE_SIZE = 160 };

/* --- per-key rules ----------------------------------------------------------------- */

static bool fail(config_notes *notes, const char *where, const char *why)
{
    config_notes_add(notes, "%s: %s", where, why);
    return false;
}

static bool rule_region(const hcl_value *value, const char *where, plugin_config *config,
                        config_notes *notes)
{
    (void)config;
    if (rules_region_valid(value->as.string))
        return true;
    return fail(notes, where,
                "must be an AWS region name such as us-east-2, cn-north-1 or "
                "us-gov-west-1");
}

static bool rule_server_id(const hcl_value *value, const char *where, plugin_config *config,
                           config_notes *notes)
{
    (void)config;
    char why[WHY_SIZE];
    return rules_server_id_problem(value->as.string, why, sizeof why) == NULL ||
           fail(notes, where, why);
}

static bool rule_endpoint(const hcl_value *value, const char *where, plugin_config *config,
                          config_notes *notes)
{
    (void)config;
    char why[WHY_SIZE];
    return rules_endpoint_problem(value->as.string, why, sizeof why) == NULL ||
           fail(notes, where, why);
}

static bool rule_readable_file(const hcl_value *value, const char *where, plugin_config *config,
                               config_notes *notes)
{
    (void)config;
    char why[WHY_SIZE];
    return rules_readable_file_problem(value->as.string, why, sizeof why) == NULL ||
           fail(notes, where, why);
}

static bool rule_policy_file(const hcl_value *value, const char *where, plugin_config *config,
                             config_notes *notes)
{
    char why[WHY_SIZE];
    char *policy = NULL;
    if (rules_read_policy(value->as.string, &policy, why, sizeof why) != NULL)
        return fail(notes, where, why);
    free(config->key_policy);
    config->key_policy = policy;
    return true;
}

static bool rule_max_attempts(const hcl_value *value, const char *where, plugin_config *config,
                              config_notes *notes)
{
    (void)config;
    return (value->as.integer >= 1 && value->as.integer <= 10) ||
           fail(notes, where, "must be between 1 and 10");
}

static void tag_where(const hcl_item *tag, char *out, size_t size)
{
    char key[RULES_SHOWN_SIZE];
    snprintf(out, size, "tag \"%s\" in key_tags at %d:%d", rules_shown(tag->key, key), tag->line,
             tag->column);
}

static bool tag_valid(const hcl_item *tag, config_notes *notes)
{
    char where[WHERE_SIZE], why[WHY_SIZE];
    tag_where(tag, where, sizeof where);
    if (tag->value->kind != HCL_STRING) {
        config_notes_add(notes, "%s: expected a string, found %s", where,
                         hcl_kind_name(tag->value->kind));
        return false;
    }
    if (rules_tag_key_problem(tag->key, why, sizeof why) != NULL ||
        rules_tag_value_problem(tag->value->as.string, why, sizeof why) != NULL)
        return fail(notes, where, why);
    return true;
}

static bool rule_tags(const hcl_value *value, const char *where, plugin_config *config,
                      config_notes *notes)
{
    (void)config;
    bool valid = true;
    if (value->as.object.count > RULES_MAX_TAGS) {
        char why[WHY_SIZE];
        snprintf(why, sizeof why, "at most %d tags are allowed, found %zu", RULES_MAX_TAGS,
                 value->as.object.count);
        valid = fail(notes, where, why);
    }
    for (size_t i = 0; i < value->as.object.count; i++)
        valid = tag_valid(&value->as.object.items[i], notes) && valid;
    return valid;
}

/* --- the table ----------------------------------------------------------------------- */

#define FIELD(name) offsetof(plugin_config, name)

static const char identity_required[] =
    "one of key_metadata_file, key_identifier_file, key_identifier_value";

static const schema_key keys[] = {
    {"access_key_id", SCHEMA_STRING, NULL, NULL, FIELD(access_key_id), "with secret_access_key",
     "AWS access key id. Unset: the AWS credential chain (AWS_ACCESS_KEY_ID and other "
     "environment variables, web identity, ECS, EC2 instance role).",
     0},
    {"secret_access_key", SCHEMA_STRING, NULL, NULL, FIELD(secret_access_key), "with access_key_id",
     "AWS secret access key, set together with access_key_id. Never logged or shown.",
     SCHEMA_SECRET},
    {"region", SCHEMA_STRING, NULL, rule_region, FIELD(region),
     "yes, unless the environment gives one",
     "AWS region where the keys are created and used, e.g. us-east-2. Unset: AWS_REGION, "
     "AWS_DEFAULT_REGION, then the shared config profile's region.",
     0},
    {"key_metadata_file", SCHEMA_STRING, NULL, NULL, SCHEMA_NO_FIELD, identity_required,
     "File that keeps this server's generated id (created when missing). Same meaning as "
     "key_identifier_file.",
     0},
    {"key_identifier_file", SCHEMA_STRING, NULL, NULL, SCHEMA_NO_FIELD, identity_required,
     "Newer name of key_metadata_file (SPIRE's built-in plugin). Setting both to different "
     "paths is an error.",
     0},
    {"key_identifier_value", SCHEMA_STRING, NULL, rule_server_id, FIELD(key_identifier_value),
     identity_required,
     "Fixed server id instead of a file: letters, digits, '_' and '-' (no '/': the id is one "
     "component of the alias name), at most 256 characters.",
     0},
    {"key_policy_file", SCHEMA_STRING, NULL, rule_policy_file, FIELD(key_policy_file), "no",
     "File holding a JSON key policy document for the keys the plugin creates (at most 32768 "
     "bytes). Unset: the KMS default policy.",
     0},
    {"key_tags", SCHEMA_STRING_MAP, NULL, rule_tags, SCHEMA_NO_FIELD, "no",
     "Tags added to every key the plugin creates: at most 50; keys 1-128 and values 0-256 "
     "characters of letters, digits, spaces and _ . : / = + - @; keys must not start with "
     "\"aws:\" or \"spire-\".",
     0},
    {"enable_tag_based_key_discovery", SCHEMA_BOOL, "false", NULL,
     FIELD(enable_tag_based_key_discovery), "no",
     "Tag-based key discovery (SPIRE 1.15's option): every key carries spire-* tags, is found "
     "with the tagging API's GetResources (permission tag:GetResources) and kept alive by its "
     "spire-last-update tag; key_tags is then limited to 45.",
     0},
    {"endpoint", SCHEMA_STRING, NULL, rule_endpoint, FIELD(endpoint), "no",
     "Custom KMS endpoint URL (https:// or http://), e.g. a VPC endpoint or a test double.", 0},
    {"ca_bundle", SCHEMA_STRING, NULL, rule_readable_file, FIELD(ca_bundle), "no",
     "PEM file of CA certificates to trust for AWS endpoints instead of the system ones. "
     "Unset: AWS_CA_BUNDLE, then the shared config profile's ca_bundle.",
     0},
    {"use_fips_endpoint", SCHEMA_BOOL, "false", NULL, FIELD(use_fips_endpoint), "no",
     "Use the region's FIPS KMS endpoint (kms-fips.REGION.amazonaws.com).", 0},
    {"max_attempts", SCHEMA_INT, NULL, rule_max_attempts, FIELD(max_attempts), "no",
     "Attempts per AWS call, retries included (1-10). Unset: AWS_MAX_ATTEMPTS, then the "
     "shared config profile's max_attempts, then 3.",
     0},
    {"log_level", SCHEMA_LOG_LEVEL, "info", NULL, FIELD(log_level), "no",
     "Plugin log level: trace, debug, info, warn or error.", 0},
    {"refresh_aliases_interval", SCHEMA_DURATION, "6h", NULL, FIELD(refresh_aliases_interval_ms),
     "no",
     "How often the plugin refreshes its aliases' LastUpdatedDate (and its keys' "
     "spire-last-update tag), so that other servers see it alive: at most a quarter of "
     "stale_alias_age, and at most 42h.",
     SCHEMA_ADVANCED},
    {"dispose_aliases_interval", SCHEMA_DURATION, "24h", NULL, FIELD(dispose_aliases_interval_ms),
     "no", "How often the plugin scans for stale aliases to delete.", SCHEMA_ADVANCED},
    {"dispose_keys_interval", SCHEMA_DURATION, "48h", NULL, FIELD(dispose_keys_interval_ms), "no",
     "How often the plugin scans for orphaned keys to delete.", SCHEMA_ADVANCED},
    {"stale_alias_age", SCHEMA_DURATION, "336h", NULL, FIELD(stale_alias_age_ms), "no",
     "Judges other servers: an alias of another server not updated for this long is stale, and "
     "this server deletes it and its key; so is another server's key whose spire-last-update "
     "tag is this old. At least 168h (7 days).",
     SCHEMA_ADVANCED},
    {"orphan_key_age", SCHEMA_DURATION, "48h", NULL, FIELD(orphan_key_age_ms), "no",
     "Judges other servers: a key of this trust domain (any server's) without an alias and older "
     "than this is deleted by this server. At least 24h.",
     SCHEMA_ADVANCED},
};

enum { KEY_COUNT = sizeof keys / sizeof keys[0] };

const schema_key *schema_keys(size_t *count)
{
    *count = KEY_COUNT;
    return keys;
}

const schema_key *schema_find(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

const char *schema_type_name(schema_type type)
{
    switch (type) {
    case SCHEMA_STRING:
        return "string";
    case SCHEMA_INT:
        return "integer";
    case SCHEMA_BOOL:
        return "bool";
    case SCHEMA_DURATION:
        return "duration";
    case SCHEMA_LOG_LEVEL:
        return "log level";
    case SCHEMA_STRING_MAP:
        return "map of strings";
    }
    return "value";
}

/* --- storing values -------------------------------------------------------------------- */

static void *field_of(plugin_config *config, const schema_key *key)
{
    return (char *)config + key->field;
}

static void store_tags(const hcl_value *tags, plugin_config *config)
{
    for (size_t i = 0; i < config->key_tag_count; i++) {
        free(config->key_tags[i].key);
        free(config->key_tags[i].value);
    }
    free(config->key_tags);
    config->key_tags =
        calloc(tags->as.object.count ? tags->as.object.count : 1, sizeof *config->key_tags);
    config->key_tag_count = 0;
    for (size_t i = 0; i < tags->as.object.count; i++) {
        const hcl_item *tag = &tags->as.object.items[i];
        config_tag *slot = &config->key_tags[config->key_tag_count];
        for (size_t k = 0; k < config->key_tag_count; k++) {
            if (strcmp(config->key_tags[k].key, tag->key) == 0) {
                log_writef(LOG_DEBUG, "config",
                           "duplicate key key_tags.%.64s at %d:%d; the last one wins", tag->key,
                           tag->line, tag->column);
                slot = &config->key_tags[k];
                free(slot->key);
                free(slot->value);
                config->key_tag_count--;
                break;
            }
        }
        slot->key = strdup(tag->key);
        slot->value = strdup(tag->value->as.string);
        config->key_tag_count++;
    }
}

/* Converts text (a default or a configured string) into the key's field;
 * returns a reason when the text does not fit the type. */
static const char *store_text(const schema_key *key, const char *text, plugin_config *config,
                              char *why, size_t size)
{
    void *field = field_of(config, key);
    switch (key->type) {
    case SCHEMA_STRING:
        free(*(char **)field);
        *(char **)field = strdup(text);
        return NULL;
    case SCHEMA_DURATION:
        return rules_duration_ms(text, (int64_t *)field, why, size);
    case SCHEMA_LOG_LEVEL:
        if (log_parse_level(text, (log_level *)field))
            return NULL;
        snprintf(why, size, "expected one of trace, debug, info, warn, error");
        return why;
    case SCHEMA_INT:
        *(int *)field = atoi(text);
        return NULL;
    case SCHEMA_BOOL:
        *(bool *)field = strcmp(text, "true") == 0;
        return NULL;
    case SCHEMA_STRING_MAP:
        break;
    }
    return NULL;
}

void schema_apply_defaults(plugin_config *config)
{
    char why[WHY_SIZE];
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (keys[i].default_text != NULL)
            store_text(&keys[i], keys[i].default_text, config, why, sizeof why);
}

static hcl_kind kind_for(schema_type type)
{
    switch (type) {
    case SCHEMA_INT:
        return HCL_INT;
    case SCHEMA_BOOL:
        return HCL_BOOL;
    case SCHEMA_STRING_MAP:
        return HCL_OBJECT;
    default:
        return HCL_STRING;
    }
}

static const char *expected_text(schema_type type)
{
    switch (type) {
    case SCHEMA_INT:
        return "an integer";
    case SCHEMA_BOOL:
        return "a bool (true or false)";
    case SCHEMA_DURATION:
        return "a duration string such as \"6h\"";
    case SCHEMA_LOG_LEVEL:
        return "a string (trace, debug, info, warn or error)";
    case SCHEMA_STRING_MAP:
        return "an object of strings such as { team = \"a\" }";
    default:
        return "a string";
    }
}

/* Applies one configured key; false when it added a note. */
static bool apply_key(const schema_key *key, const hcl_item *item, plugin_config *config,
                      config_notes *notes)
{
    char where[WHERE_SIZE], why[WHY_SIZE];
    snprintf(where, sizeof where, "key \"%s\" at %d:%d", key->name, item->line, item->column);
    const hcl_value *value = item->value;
    if (value->kind != kind_for(key->type)) {
        config_notes_add(notes, "%s: expected %s, found %s", where, expected_text(key->type),
                         hcl_kind_name(value->kind));
        return false;
    }
    if (value->kind == HCL_STRING && value->as.string[0] == '\0')
        return true; /* "" means unset, as with hcl decoding into Go strings */
    if (key->rule != NULL && !key->rule(value, where, config, notes))
        return false;
    if (key->field == SCHEMA_NO_FIELD) {
        if (key->type == SCHEMA_STRING_MAP)
            store_tags(value, config);
    } else if (value->kind == HCL_STRING) {
        if (store_text(key, value->as.string, config, why, sizeof why) != NULL)
            return fail(notes, where, why);
    } else if (value->kind == HCL_INT) {
        *(int *)field_of(config, key) = (int)value->as.integer; /* range checked by its rule */
    } else if (value->kind == HCL_BOOL) {
        *(bool *)field_of(config, key) = value->as.boolean;
    }
    return true;
}

/* --- rules across keys ------------------------------------------------------------------- */

typedef struct {
    const hcl_item *item[KEY_COUNT]; /* the item that counts for each key, or NULL */
} found_keys;

static const hcl_item *found_item(const found_keys *found, const char *name)
{
    return found->item[schema_find(name) - keys];
}

/* Set: present and not an empty string (of whatever type). */
static bool is_set(const hcl_item *item)
{
    return item != NULL && !(item->value->kind == HCL_STRING && item->value->as.string[0] == '\0');
}

static const char *string_of(const hcl_item *item)
{
    return is_set(item) && item->value->kind == HCL_STRING ? item->value->as.string : NULL;
}

static void check_credentials(const found_keys *found, config_notes *notes)
{
    bool id = is_set(found_item(found, "access_key_id"));
    bool secret = is_set(found_item(found, "secret_access_key"));
    if (id != secret)
        config_notes_add(notes,
                         "access_key_id and secret_access_key must be set together (only %s is "
                         "set)",
                         id ? "access_key_id" : "secret_access_key");
}

static void check_region(const found_keys *found, bool region_optional, config_notes *notes)
{
    if (!region_optional && !is_set(found_item(found, "region")))
        config_notes_add(notes, "region is required");
}

static void check_server_identity(const found_keys *found, plugin_config *config,
                                  config_notes *notes)
{
    const hcl_item *metadata = found_item(found, "key_metadata_file");
    const hcl_item *identifier = found_item(found, "key_identifier_file");
    const char *metadata_path = string_of(metadata), *identifier_path = string_of(identifier);
    bool file_set = is_set(metadata) || is_set(identifier);
    bool value_set = is_set(found_item(found, "key_identifier_value"));
    if (metadata_path && identifier_path && strcmp(metadata_path, identifier_path) != 0)
        config_notes_add(notes,
                         "key_metadata_file (at %d:%d) and key_identifier_file (at %d:%d) name "
                         "different files; set one of them",
                         metadata->line, metadata->column, identifier->line, identifier->column);
    if (file_set && value_set)
        config_notes_add(notes, "set a key identifier file (key_metadata_file or "
                                "key_identifier_file) or key_identifier_value, not both");
    if (!file_set && !value_set)
        config_notes_add(notes, "one of key_metadata_file, key_identifier_file or "
                                "key_identifier_value is required");
    const char *path = metadata_path ? metadata_path : identifier_path;
    if (path != NULL) {
        free(config->key_identifier_file);
        config->key_identifier_file = strdup(path);
    }
}

/* --- bounds on the settings that judge other servers ----------------------------------
 * stale_alias_age and orphan_key_age decide when this server deletes *other*
 * servers' aliases and keys; refresh_aliases_interval decides whether other
 * servers see this one as alive. Each is bounded so that no one server's
 * settings can prune a live peer. */

#define HOUR_MS (3600LL * 1000)

/* "42h", "1h30m", "90s", "1.500s": a duration in Go's syntax, for notes. */
static void format_duration(int64_t ms, char *out, size_t size)
{
    long long hours = ms / HOUR_MS, minutes = ms / 60000 % 60, seconds = ms / 1000 % 60;
    long long millis = ms % 1000;
    char h[24] = "", m[24] = "", sec[48] = "";
    if (hours > 0)
        snprintf(h, sizeof h, "%lldh", hours);
    if (minutes > 0)
        snprintf(m, sizeof m, "%lldm", minutes);
    if (millis > 0)
        snprintf(sec, sizeof sec, "%lld.%03llds", seconds, millis);
    else if (seconds > 0 || ms == 0)
        snprintf(sec, sizeof sec, "%llds", seconds);
    snprintf(out, size, "%s%s%s", h, m, sec);
}

/* How a duration key reads in a note: `key "NAME" at L:C` and its value as
 * written, or the key's name and its default. */
typedef struct {
    char where[WHERE_SIZE];
    char value[RULES_SHOWN_SIZE + 24];
} shown_setting;

static void show_setting(const found_keys *found, const char *name, shown_setting *out)
{
    const hcl_item *item = found_item(found, name);
    const char *text = string_of(item);
    if (text != NULL) {
        char shown[RULES_SHOWN_SIZE];
        snprintf(out->where, sizeof out->where, "key \"%s\" at %d:%d", name, item->line,
                 item->column);
        snprintf(out->value, sizeof out->value, "\"%s\"", rules_shown(text, shown));
    } else {
        snprintf(out->where, sizeof out->where, "%s", name);
        snprintf(out->value, sizeof out->value, "%s, the default", schema_find(name)->default_text);
    }
}

static bool stale_alias_age_in_bounds(const found_keys *found, const plugin_config *config,
                                      config_notes *notes)
{
    if (config->stale_alias_age_ms >= CONFIG_MIN_STALE_ALIAS_AGE_MS)
        return true;
    shown_setting stale;
    show_setting(found, "stale_alias_age", &stale);
    config_notes_add(notes,
                     "%s: %s is less than the minimum of 168h (7 days): this server deletes the "
                     "aliases and keys of other servers whose aliases were not refreshed for "
                     "stale_alias_age, so a shorter age could delete the keys of live servers",
                     stale.where, stale.value);
    return false;
}

static void check_orphan_key_age(const found_keys *found, const plugin_config *config,
                                 config_notes *notes)
{
    if (config->orphan_key_age_ms >= CONFIG_MIN_ORPHAN_KEY_AGE_MS)
        return;
    shown_setting orphan;
    show_setting(found, "orphan_key_age", &orphan);
    config_notes_add(notes,
                     "%s: %s is less than the minimum of 24h: this server deletes the unaliased "
                     "keys of its trust domain, other servers' included, once they are older "
                     "than orphan_key_age, so a shorter age could delete a key another server "
                     "has just created and not yet aliased",
                     orphan.where, orphan.value);
}

/* At most a quarter of this server's stale_alias_age, and of the shortest one
 * any server may use (168h): every peer must see several refreshes within its
 * own stale_alias_age, or it takes this server's live keys for a dead one's. */
static void check_refresh_interval(const found_keys *found, const plugin_config *config,
                                   config_notes *notes)
{
    int64_t own_limit = config->stale_alias_age_ms / CONFIG_REFRESHES_PER_STALE_AGE;
    int64_t fleet_limit = CONFIG_MIN_STALE_ALIAS_AGE_MS / CONFIG_REFRESHES_PER_STALE_AGE;
    if (config->refresh_aliases_interval_ms <= own_limit &&
        config->refresh_aliases_interval_ms <= fleet_limit)
        return;
    shown_setting refresh, stale;
    show_setting(found, "refresh_aliases_interval", &refresh);
    show_setting(found, "stale_alias_age", &stale);
    char limit[32];
    if (config->refresh_aliases_interval_ms > own_limit) {
        format_duration(own_limit, limit, sizeof limit);
        config_notes_add(notes,
                         "%s: %s is more than a quarter of stale_alias_age = %s (at most %s): "
                         "servers delete the keys of a server whose aliases were not refreshed "
                         "for their stale_alias_age, so every server must refresh several times "
                         "within it",
                         refresh.where, refresh.value, stale.value, limit);
    } else {
        format_duration(fleet_limit, limit, sizeof limit);
        config_notes_add(notes,
                         "%s: %s is more than %s, a quarter of the shortest stale_alias_age any "
                         "server may use (168h): other servers delete the keys of a server "
                         "whose aliases were not refreshed for their stale_alias_age, so every "
                         "server must refresh several times within it",
                         refresh.where, refresh.value, limit);
    }
}

/* Checks the bounds of the keys that applied cleanly (a key with a note of
 * its own already is not judged again). */
static void check_fleet_bounds(const found_keys *found, const bool *applied,
                               const plugin_config *config, config_notes *notes)
{
    bool stale_ok = applied[schema_find("stale_alias_age") - keys];
    if (stale_ok)
        stale_ok = stale_alias_age_in_bounds(found, config, notes);
    if (applied[schema_find("orphan_key_age") - keys])
        check_orphan_key_age(found, config, notes);
    if (stale_ok && applied[schema_find("refresh_aliases_interval") - keys])
        check_refresh_interval(found, config, notes);
}

/* In tag mode each CreateKey carries the five spire-* tags too: key_tags must
 * leave room for them within AWS's 50 tags per key. */
static void check_tag_mode_tags(const found_keys *found, const plugin_config *config,
                                config_notes *notes)
{
    if (!config->enable_tag_based_key_discovery ||
        config->key_tag_count <= CONFIG_TAG_MODE_MAX_KEY_TAGS)
        return;
    const hcl_item *tags = found_item(found, "key_tags");
    config_notes_add(notes,
                     "key \"key_tags\" at %d:%d: at most %d tags are allowed with "
                     "enable_tag_based_key_discovery = true, found %zu: every key also carries "
                     "the %d spire-* tags, and AWS allows 50 tags per key",
                     tags != NULL ? tags->line : 0, tags != NULL ? tags->column : 0,
                     CONFIG_TAG_MODE_MAX_KEY_TAGS, config->key_tag_count,
                     CONFIG_TAG_MODE_SPIRE_TAGS);
}

/* --- the walk ------------------------------------------------------------------------------ */

static void note_unknown(const hcl_item *item, config_notes *notes)
{
    char shown[RULES_SHOWN_SIZE];
    const char *suggestion = NULL;
    size_t best = 4;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        size_t distance = rules_edit_distance(item->key, keys[i].name, 3);
        if (distance < best)
            best = distance, suggestion = keys[i].name;
    }
    rules_shown(item->key, shown);
    if (suggestion != NULL)
        config_notes_add(notes, "unknown key \"%s\" at %d:%d (did you mean \"%s\"?)", shown,
                         item->line, item->column, suggestion);
    else
        config_notes_add(notes, "unknown key \"%s\" at %d:%d", shown, item->line, item->column);
}

/* Records which item counts for each key: the last one for attributes (as
 * hcl v1 decoding does); a repeated object (key_tags) is an error. */
static void collect(const hcl_value *body, found_keys *found, bool *conflict, config_notes *notes)
{
    for (size_t i = 0; i < body->as.object.count; i++) {
        const hcl_item *item = &body->as.object.items[i];
        const schema_key *key = schema_find(item->key);
        if (key == NULL) {
            note_unknown(item, notes);
            continue;
        }
        size_t index = (size_t)(key - keys);
        const hcl_item *earlier = found->item[index];
        if (earlier != NULL && key->type == SCHEMA_STRING_MAP) {
            config_notes_add(notes, "key \"%s\" is set twice (at %d:%d and %d:%d); set it once",
                             key->name, earlier->line, earlier->column, item->line, item->column);
            conflict[index] = true;
        } else if (earlier != NULL) {
            log_writef(LOG_DEBUG, "config", "duplicate key %s at %d:%d; the last one wins",
                       key->name, item->line, item->column);
        }
        found->item[index] = item;
    }
}

void schema_apply(const hcl_value *body, plugin_config *config, bool region_optional,
                  config_notes *notes)
{
    found_keys found = {0};
    bool conflict[KEY_COUNT] = {0};
    bool applied[KEY_COUNT];
    collect(body, &found, conflict, notes);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        applied[i] = !conflict[i];
        if (found.item[i] != NULL && !conflict[i])
            applied[i] = apply_key(&keys[i], found.item[i], config, notes);
    }
    check_credentials(&found, notes);
    check_region(&found, region_optional, notes);
    check_server_identity(&found, config, notes);
    check_fleet_bounds(&found, applied, config, notes);
    check_tag_mode_tags(&found, config, notes);
}

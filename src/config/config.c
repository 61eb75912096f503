/* config_load: parse (hcl.c), check against the schema table (schema.c) and
 * the core trust domain, and hand back a plugin_config or the problems. */
#include "config/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/hcl.h"
#include "config/rules.h"
#include "config/schema.h"

/* Keeps at most CONFIG_MAX_NOTES of the notes added since `first`, then one
 * saying how many more there were: bounded text for gRPC status details. */
static void limit_notes(config_notes *notes, size_t first)
{
    size_t added = notes->count - first;
    if (added <= CONFIG_MAX_NOTES)
        return;
    for (size_t i = first + CONFIG_MAX_NOTES; i < notes->count; i++)
        free(notes->items[i]);
    notes->count = first + CONFIG_MAX_NOTES;
    config_notes_add(notes, "... and %zu more problems", added - CONFIG_MAX_NOTES);
}

/* True when body sets key to something other than "" (whatever its type). */
static bool body_sets(const hcl_value *body, const char *key)
{
    bool set = false;
    for (size_t i = 0; i < body->as.object.count; i++) {
        const hcl_item *item = &body->as.object.items[i];
        if (strcmp(item->key, key) == 0)
            set = !(item->value->kind == HCL_STRING && item->value->as.string[0] == '\0');
    }
    return set;
}

plugin_config *config_load(const char *hcl_text, const char *trust_domain, config_notes *notes)
{
    return config_load_checked(hcl_text, trust_domain, NULL, notes);
}

plugin_config *config_load_checked(const char *hcl_text, const char *trust_domain,
                                   config_environment_check check, config_notes *notes)
{
    size_t notes_before = notes->count;
    plugin_config *config = calloc(1, sizeof *config);
    schema_apply_defaults(config);

    char why[320];
    if (rules_trust_domain_problem(trust_domain, why, sizeof why) != NULL)
        config_notes_add(notes, "%s", why);
    else
        config->trust_domain = strdup(trust_domain);

    hcl_error error;
    const char *text = hcl_text ? hcl_text : "";
    hcl_value *body = hcl_parse(text, strlen(text), &error);
    if (body == NULL) {
        config_notes_add(notes, "%s", error.message);
    } else {
        schema_apply(body, config, check != NULL, notes);
        /* A region plugin_data sets but its rule refused is reported once. */
        bool region_refused = body_sets(body, "region") && config->region == NULL;
        if (check != NULL && !region_refused)
            check(config, notes);
        hcl_free(body);
    }
    limit_notes(notes, notes_before);
    if (notes->count > notes_before) {
        config_free(config);
        return NULL;
    }
    return config;
}

void config_free(plugin_config *config)
{
    if (config == NULL)
        return;
    char **strings[] = {&config->trust_domain,
                        &config->access_key_id,
                        &config->secret_access_key,
                        &config->region,
                        &config->endpoint,
                        &config->ca_bundle,
                        &config->key_identifier_file,
                        &config->key_identifier_value,
                        &config->key_policy_file,
                        &config->key_policy};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (*strings[i] != NULL && strings[i] == &config->secret_access_key)
            explicit_bzero(*strings[i], strlen(*strings[i]));
        free(*strings[i]);
    }
    for (size_t i = 0; i < config->key_tag_count; i++) {
        free(config->key_tags[i].key);
        free(config->key_tags[i].value);
    }
    free(config->key_tags);
    free(config);
}

void config_notes_add(config_notes *notes, const char *format, ...)
{
    char text[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    notes->items = realloc(notes->items, (notes->count + 1) * sizeof *notes->items);
    notes->items[notes->count++] = strdup(text);
}

void config_notes_clear(config_notes *notes)
{
    for (size_t i = 0; i < notes->count; i++)
        free(notes->items[i]);
    free(notes->items);
    notes->items = NULL;
    notes->count = 0;
}

char *config_notes_join(const config_notes *notes, const char *separator)
{
    size_t size = 1;
    for (size_t i = 0; i < notes->count; i++)
        size += strlen(notes->items[i]) + strlen(separator);
    char *joined = calloc(1, size);
    char *end = joined;
    for (size_t i = 0; i < notes->count; i++) {
        if (i > 0)
            end = stpcpy(end, separator);
        end = stpcpy(end, notes->items[i]);
    }
    return joined;
}

/* PLACEHOLDER until the configuration issue lands: accepts any text. */
#include "config/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

plugin_config *config_load(const char *hcl_text, const char *trust_domain, config_notes *notes)
{
    (void)hcl_text;
    (void)notes;
    plugin_config *config = calloc(1, sizeof *config);
    config->trust_domain = strdup(trust_domain ? trust_domain : "");
    config->log_level = LOG_INFO;
    return config;
}

void config_free(plugin_config *config)
{
    if (config == NULL)
        return;
    free(config->trust_domain);
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
    for (size_t i = 0; i < notes->count; i++) {
        if (i > 0)
            strcat(joined, separator);
        strcat(joined, notes->items[i]);
    }
    return joined;
}

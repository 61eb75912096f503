/* libFuzzer target: arbitrary bytes through the HCL/JSON parser and, when
 * they form a C string, through config_load (schema and rules). Any crash,
 * sanitizer report or leak is a finding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"
#include "config/hcl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_set_level(LOG_ERROR); /* duplicate-key debug lines would flood stderr */
    hcl_error error;
    hcl_value *tree = hcl_parse((const char *)data, size, &error);
    hcl_free(tree);

    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    config_notes notes = {0};
    plugin_config *config = config_load(text, "example.org", &notes);
    config_free(config);
    char *joined = config_notes_join(&notes, "; ");
    free(joined);
    config_notes_clear(&notes);
    free(text);
    return 0;
}

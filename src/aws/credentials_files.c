/* The AWS shared config and credentials files (~/.aws/config,
 * ~/.aws/credentials): a small INI parser and profile lookup across both. */
#include "aws/credentials_internal.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"

enum { MAX_INI_BYTES = 1 << 20 };

typedef struct {
    char *section;
    char *key;
    char *value;
} ini_entry;

struct aws_ini {
    ini_entry *entries;
    size_t count;
    size_t capacity;
    char **sections;
    size_t section_count;
    size_t section_capacity;
};

static char *trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    char *end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return text;
}

static bool grow(void **items, size_t *capacity, size_t count, size_t item_size)
{
    if (count < *capacity)
        return true;
    size_t wanted = *capacity == 0 ? 16 : *capacity * 2;
    void *bigger = realloc(*items, wanted * item_size);
    if (bigger == NULL)
        return false;
    *items = bigger;
    *capacity = wanted;
    return true;
}

static bool add_section(aws_ini *ini, const char *name)
{
    if (!grow((void **)&ini->sections, &ini->section_capacity, ini->section_count,
              sizeof ini->sections[0]))
        return false;
    ini->sections[ini->section_count] = strdup(name);
    return ini->sections[ini->section_count++] != NULL;
}

static bool add_entry(aws_ini *ini, const char *section, const char *key, const char *value)
{
    if (!grow((void **)&ini->entries, &ini->capacity, ini->count, sizeof ini->entries[0]))
        return false;
    ini_entry *entry = &ini->entries[ini->count];
    entry->section = strdup(section);
    entry->key = strdup(key);
    entry->value = strdup(value);
    ini->count++;
    for (char *p = entry->key; p != NULL && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return entry->section != NULL && entry->key != NULL && entry->value != NULL;
}

/* "[ name ]" to "name" (inner blanks collapsed as the SDKs do for "profile  x"). */
static bool parse_header(char *line, char *out, size_t out_size)
{
    char *close = strrchr(line, ']');
    if (line[0] != '[' || close == NULL)
        return false;
    *close = '\0';
    char *name = trim(line + 1);
    size_t n = 0;
    bool blank = false;
    for (char *p = name; *p && n + 1 < out_size; p++) {
        if (isspace((unsigned char)*p)) {
            blank = true;
            continue;
        }
        if (blank && n > 0)
            out[n++] = ' ';
        blank = false;
        if (n + 1 < out_size)
            out[n++] = *p;
    }
    out[n] = '\0';
    return n > 0;
}

/* One line; section holds the current section ("" before the first one). */
static bool parse_line(aws_ini *ini, char *raw, char *section, size_t section_size,
                       bool *in_subsection)
{
    bool indented = raw[0] == ' ' || raw[0] == '\t';
    char *line = trim(raw);
    if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
        return true;
    if (line[0] == '[') {
        *in_subsection = false;
        if (!parse_header(line, section, section_size)) {
            section[0] = '\0';
            return true;
        }
        return add_section(ini, section);
    }
    if (indented && *in_subsection)
        return true; /* "s3 =\n  max_concurrent_requests = 10": not a credential setting */
    char *equals = strchr(line, '=');
    if (equals == NULL || section[0] == '\0')
        return true;
    *equals = '\0';
    char *key = trim(line);
    char *value = trim(equals + 1);
    *in_subsection = value[0] == '\0';
    if (key[0] == '\0')
        return true;
    return add_entry(ini, section, key, value);
}

aws_ini *aws_ini_parse(const char *text)
{
    aws_ini *ini = calloc(1, sizeof *ini);
    char *copy = strdup(text != NULL ? text : "");
    if (ini == NULL || copy == NULL) {
        free(copy);
        aws_ini_free(ini);
        return NULL;
    }
    size_t copy_len = strlen(copy); /* before strtok_r cuts it into lines */
    char section[256] = "";
    bool in_subsection = false;
    bool ok = true;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\r\n", &save); line != NULL && ok;
         line = strtok_r(NULL, "\r\n", &save))
        ok = parse_line(ini, line, section, sizeof section, &in_subsection);
    OPENSSL_cleanse(copy, copy_len);
    free(copy);
    if (!ok) {
        aws_ini_free(ini);
        return NULL;
    }
    return ini;
}

aws_ini *aws_ini_load(const char *path, bool *missing, aws_error *err)
{
    file_contents text;
    file_problem problem;
    file_read_result result = file_read_regular(path, MAX_INI_BYTES, &text, &problem);
    *missing = result == FILE_READ_MISSING;
    if (result != FILE_READ_OK) {
        if (!*missing)
            aws_error_set(err, AWS_ERR_CREDENTIALS, "%s", problem.message);
        return NULL;
    }
    aws_ini *ini = aws_ini_parse(text.data);
    file_contents_wipe(&text);
    if (ini == NULL)
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory parsing %s", path);
    return ini;
}

void aws_ini_free(aws_ini *ini)
{
    if (ini == NULL)
        return;
    for (size_t i = 0; i < ini->count; i++) {
        free(ini->entries[i].section);
        free(ini->entries[i].key);
        if (ini->entries[i].value != NULL)
            OPENSSL_cleanse(ini->entries[i].value, strlen(ini->entries[i].value));
        free(ini->entries[i].value);
    }
    for (size_t i = 0; i < ini->section_count; i++)
        free(ini->sections[i]);
    free(ini->entries);
    free(ini->sections);
    free(ini);
}

bool aws_ini_has_section(const aws_ini *ini, const char *section)
{
    for (size_t i = 0; ini != NULL && i < ini->section_count; i++) {
        if (strcmp(ini->sections[i], section) == 0)
            return true;
    }
    return false;
}

const char *aws_ini_get(const aws_ini *ini, const char *section, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; ini != NULL && i < ini->count; i++) {
        if (strcmp(ini->entries[i].section, section) == 0 && strcmp(ini->entries[i].key, key) == 0)
            found = ini->entries[i].value;
    }
    return found;
}

/* --- the two files together ------------------------------------------------------ */

/* "~/x" with $HOME; other paths unchanged. */
static void expand_home(const aws_cred_env *env, const char *path, char *out, size_t out_size)
{
    const char *home = aws_cred_env_get(env, "HOME");
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') && home != NULL)
        snprintf(out, out_size, "%s%s", home, path + 1);
    else
        snprintf(out, out_size, "%s", path);
}

static int load_one(const aws_cred_env *env, const char *variable, const char *fallback,
                    aws_ini **out, aws_error *err)
{
    const char *configured = aws_cred_env_get(env, variable);
    char path[4096];
    expand_home(env, configured != NULL ? configured : fallback, path, sizeof path);
    bool missing = false;
    *out = aws_ini_load(path, &missing, err);
    if (*out == NULL && !missing)
        return -1;
    return 0;
}

int aws_shared_files_load(const aws_cred_env *env, aws_shared_files *files, aws_error *err)
{
    memset(files, 0, sizeof *files);
    if (load_one(env, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", &files->credentials,
                 err) != 0 ||
        load_one(env, "AWS_CONFIG_FILE", "~/.aws/config", &files->config, err) != 0) {
        aws_shared_files_free(files);
        return -1;
    }
    return 0;
}

void aws_shared_files_free(aws_shared_files *files)
{
    aws_ini_free(files->credentials);
    aws_ini_free(files->config);
    memset(files, 0, sizeof *files);
}

/* The config file's section name for a profile. */
static const char *config_section(const aws_shared_files *files, const char *profile, char *buf,
                                  size_t size)
{
    snprintf(buf, size, "profile %s", profile);
    if (strcmp(profile, "default") == 0 && !aws_ini_has_section(files->config, buf))
        return profile;
    return buf;
}

bool aws_shared_files_has_profile(const aws_shared_files *files, const char *profile)
{
    char buf[300];
    return aws_ini_has_section(files->credentials, profile) ||
           aws_ini_has_section(files->config, config_section(files, profile, buf, sizeof buf));
}

const char *aws_shared_files_get(const aws_shared_files *files, const char *profile,
                                 const char *key)
{
    const char *value = aws_ini_get(files->credentials, profile, key);
    if (value != NULL && value[0] != '\0')
        return value;
    char buf[300];
    value = aws_ini_get(files->config, config_section(files, profile, buf, sizeof buf), key);
    return (value != NULL && value[0] != '\0') ? value : NULL;
}

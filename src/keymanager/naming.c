/* KMS alias and key-description names, byte-compatible with SPIRE's built-in
 * aws_kms plugin (see naming.h for the forms). */
#include "keymanager/naming.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

#define ALIAS_ROOT       "alias/SPIRE_SERVER/"
#define DESCRIPTION_ROOT "SPIRE_SERVER_KEY/"
#define SPEC_DESCRIPTION "SPIRE_SERVER/"

/* Trust domain as it appears in names: '.' becomes '_'. */
static char *sanitize_trust_domain(const char *trust_domain)
{
    char *copy = strdup(trust_domain);
    if (copy == NULL)
        return NULL;
    for (char *c = copy; *c != '\0'; c++) {
        if (*c == '.')
            *c = '_';
    }
    return copy;
}

/* root + sanitized trust domain + "/" + tail (malloc'd). */
static char *name_in_trust_domain(const char *root, const char *trust_domain, const char *tail)
{
    char *td = sanitize_trust_domain(trust_domain);
    if (td == NULL)
        return NULL;
    char *name = text_format("%s%s/%s", root, td, tail);
    free(td);
    return name;
}

char *naming_trust_domain_prefix(const char *trust_domain)
{
    return name_in_trust_domain(ALIAS_ROOT, trust_domain, "");
}

char *naming_server_prefix(const char *trust_domain, const char *server_id)
{
    char *tail = text_format("%s/", server_id);
    char *prefix = tail != NULL ? name_in_trust_domain(ALIAS_ROOT, trust_domain, tail) : NULL;
    free(tail);
    return prefix;
}

static bool alias_char_allowed(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '-';
}

static void set_error(char *error, size_t error_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *error, size_t error_size, const char *format, ...)
{
    if (error == NULL || error_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_size, format, args);
    va_end(args);
}

/* Checks a SPIRE key id before encoding: it must decode back to itself and
 * keep its path components (SPIRE's Go plugin joins names with path.Join,
 * which would silently fold empty components). */
static bool key_id_encodable(const char *key_id, char *error, size_t error_size)
{
    if (key_id == NULL || key_id[0] == '\0') {
        set_error(error, error_size, "key id is required");
        return false;
    }
    if (strstr(key_id, "_2e") != NULL || strstr(key_id, "_2b") != NULL) {
        set_error(error, error_size,
                  "key id %s contains \"_2e\" or \"_2b\", which cannot be told apart from an "
                  "encoded '.' or '+'",
                  key_id);
        return false;
    }
    size_t len = strlen(key_id);
    if (key_id[0] == '/' || key_id[len - 1] == '/' || strstr(key_id, "//") != NULL) {
        set_error(error, error_size, "key id %s has an empty path component", key_id);
        return false;
    }
    for (const char *c = key_id; *c != '\0'; c++) {
        if (*c != '.' && *c != '+' && !alias_char_allowed(*c)) {
            set_error(error, error_size,
                      "key id %s has a character KMS aliases cannot hold (allowed: A-Z a-z 0-9 / "
                      "_ - . +)",
                      key_id);
            return false;
        }
    }
    return true;
}

/* '.' -> "_2e", '+' -> "_2b"; everything else is kept. */
static char *encode_key_id(const char *key_id)
{
    size_t len = strlen(key_id);
    char *out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    char *w = out;
    for (const char *c = key_id; *c != '\0'; c++) {
        if (*c == '.' || *c == '+') {
            w += sprintf(w, "_%02x", (unsigned char)*c);
        } else {
            *w++ = *c;
        }
    }
    *w = '\0';
    return out;
}

static char *decode_key_id(const char *encoded)
{
    char *out = malloc(strlen(encoded) + 1);
    if (out == NULL)
        return NULL;
    char *w = out;
    for (const char *c = encoded; *c != '\0';) {
        if (strncmp(c, "_2e", 3) == 0) {
            *w++ = '.';
            c += 3;
        } else if (strncmp(c, "_2b", 3) == 0) {
            *w++ = '+';
            c += 3;
        } else {
            *w++ = *c++;
        }
    }
    *w = '\0';
    return out;
}

static char *alias_for_key(const char *trust_domain, const char *server_id, const char *key_id,
                           char *error, size_t error_size)
{
    if (!key_id_encodable(key_id, error, error_size))
        return NULL;
    char *prefix = naming_server_prefix(trust_domain, server_id);
    char *encoded = encode_key_id(key_id);
    char *alias = NULL;
    if (prefix != NULL && encoded != NULL)
        alias = text_format("%s%s", prefix, encoded);
    free(prefix);
    free(encoded);
    if (alias == NULL) {
        set_error(error, error_size, "out of memory");
        return NULL;
    }
    for (const char *c = alias + strlen("alias/"); *c != '\0'; c++) {
        if (!alias_char_allowed(*c)) {
            set_error(error, error_size, "alias %s has a character KMS aliases cannot hold", alias);
            free(alias);
            return NULL;
        }
    }
    if (strlen(alias) > NAMING_ALIAS_MAX) {
        set_error(error, error_size, "alias is %zu characters long, KMS allows %d (key id %s)",
                  strlen(alias), NAMING_ALIAS_MAX, key_id);
        free(alias);
        return NULL;
    }
    return alias;
}

bool naming_parse_alias(const char *alias_name, const char *trust_domain, char **server_id,
                        char **key_id)
{
    *server_id = NULL;
    *key_id = NULL;
    char *prefix = naming_trust_domain_prefix(trust_domain);
    if (prefix == NULL)
        return false;
    size_t prefix_len = strlen(prefix);
    bool in_domain = strncmp(alias_name, prefix, prefix_len) == 0;
    free(prefix);
    if (!in_domain)
        return false;
    const char *server = alias_name + prefix_len;
    const char *slash = strchr(server, '/');
    if (slash == NULL || slash == server || slash[1] == '\0')
        return false;
    *server_id = strndup(server, (size_t)(slash - server));
    *key_id = decode_key_id(slash + 1);
    if (*server_id == NULL || *key_id == NULL) {
        free(*server_id);
        free(*key_id);
        *server_id = NULL;
        *key_id = NULL;
        return false;
    }
    return true;
}

char *naming_key_description(const char *trust_domain, const char *key_id)
{
    return name_in_trust_domain(DESCRIPTION_ROOT, trust_domain, key_id);
}

/* True when text is root + td exactly, or root + td + "/" + something. */
static bool matches_component(const char *text, const char *root, const char *td, bool allow_suffix)
{
    size_t root_len = strlen(root);
    size_t td_len = strlen(td);
    if (strncmp(text, root, root_len) != 0 || strncmp(text + root_len, td, td_len) != 0)
        return false;
    const char *rest = text + root_len + td_len;
    if (*rest == '\0')
        return true;
    return allow_suffix && rest[0] == '/' && rest[1] != '\0';
}

bool naming_description_in_trust_domain(const char *description, const char *trust_domain)
{
    if (description == NULL || trust_domain == NULL || trust_domain[0] == '\0')
        return false;
    char *td = sanitize_trust_domain(trust_domain);
    if (td == NULL)
        return false;
    bool match = matches_component(description, DESCRIPTION_ROOT, td, true) ||
                 matches_component(description, SPEC_DESCRIPTION, td, false) ||
                 matches_component(description, SPEC_DESCRIPTION, trust_domain, false);
    free(td);
    return match;
}

/* ---- reading names of any trust domain --------------------------------------- */

/* The text from start up to the next '/' (malloc'd); NULL when that is empty
 * or there is no '/'. *rest points after the '/'. */
static char *next_component(const char *start, const char **rest)
{
    const char *slash = strchr(start, '/');
    if (slash == NULL || slash == start)
        return NULL;
    *rest = slash + 1;
    return strndup(start, (size_t)(slash - start));
}

bool naming_split_alias(const char *alias_name, char **trust_domain, char **server_id,
                        char **key_id)
{
    *trust_domain = *server_id = *key_id = NULL;
    size_t root_len = strlen(ALIAS_ROOT);
    if (alias_name == NULL || strncmp(alias_name, ALIAS_ROOT, root_len) != 0)
        return false;
    const char *rest = alias_name + root_len;
    char *td = next_component(rest, &rest);
    if (td == NULL)
        return false;
    /* The rest parses exactly as naming_parse_alias would for this domain. */
    bool ok = naming_parse_alias(alias_name, td, server_id, key_id);
    if (!ok) {
        free(td);
        return false;
    }
    *trust_domain = td;
    return true;
}

bool naming_split_description(const char *description, char **trust_domain, char **key_id)
{
    *trust_domain = *key_id = NULL;
    if (description == NULL)
        return false;
    size_t key_root_len = strlen(DESCRIPTION_ROOT);
    size_t spec_root_len = strlen(SPEC_DESCRIPTION);
    char *td = NULL;
    if (strncmp(description, DESCRIPTION_ROOT, key_root_len) == 0) {
        const char *rest = description + key_root_len;
        td = next_component(rest, &rest);
        if (td == NULL && strchr(rest, '/') == NULL && rest[0] != '\0')
            td = strdup(rest); /* "SPIRE_SERVER_KEY/{TD}" */
        else if (td != NULL && rest[0] != '\0')
            *key_id = strdup(rest);
    } else if (strncmp(description, SPEC_DESCRIPTION, spec_root_len) == 0) {
        const char *rest = description + spec_root_len;
        if (rest[0] != '\0' && strchr(rest, '/') == NULL)
            td = strdup(rest);
    }
    /* Whatever was split off must also match the one matcher the fleet uses. */
    if (td == NULL || !naming_description_in_trust_domain(description, td)) {
        free(td);
        free(*key_id);
        *key_id = NULL;
        return false;
    }
    *trust_domain = td;
    return true;
}

char *naming_alias_for_key(const char *trust_domain, const char *server_id, const char *key_id,
                           km_status *status)
{
    char error[512];
    char *alias = alias_for_key(trust_domain, server_id, key_id, error, sizeof error);
    if (alias == NULL)
        km_status_set(status, GRPC_STATUS_INVALID_ARGUMENT, "%s", error);
    return alias;
}

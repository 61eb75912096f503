/* Value rules for the configuration schema (see rules.h). */
#include "config/rules.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/file_read.h"

static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c) { return is_lower(c) || is_digit(c) || (c >= 'A' && c <= 'Z'); }

static size_t span_of(const char *s, bool (*accept)(char))
{
    size_t n = 0;
    while (s[n] != '\0' && accept(s[n]))
        n++;
    return n;
}

bool rules_region_valid(const char *region)
{
    /* two letters, one to three words, a number: us-gov-west-1 */
    if (span_of(region, is_lower) != 2 || region[2] != '-')
        return false;
    const char *at = region + 3;
    int words = 0;
    for (size_t n; (n = span_of(at, is_lower)) > 0 && at[n] == '-'; at += n + 1)
        words++;
    size_t digits = span_of(at, is_digit);
    return words >= 1 && words <= 3 && digits >= 1 && digits <= 2 && at[digits] == '\0';
}

const char *rules_shown(const char *text, char *out)
{
    size_t n = 0;
    for (; n < 64 && text[n] != '\0'; n++)
        out[n] = text[n] >= 0x20 && text[n] < 0x7F ? text[n] : '?';
    if (text[n] != '\0')
        memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
    return out;
}

static const char *say(char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return why;
}

static bool is_trust_domain_char(char c) { return is_lower(c) || is_digit(c) || strchr(".-_", c); }

const char *rules_trust_domain_problem(const char *trust_domain, char *why, size_t size)
{
    if (trust_domain == NULL || trust_domain[0] == '\0')
        return say(why, size, "trust_domain is required");
    if (strlen(trust_domain) > RULES_MAX_TRUST_DOMAIN)
        return say(why, size, "trust_domain is longer than 255 characters");
    if (trust_domain[span_of(trust_domain, is_trust_domain_char)] == '\0')
        return NULL;
    char text[RULES_SHOWN_SIZE];
    snprintf(why, size,
             "trust_domain \"%s\" is not valid: only lowercase letters, digits, '.', '-' and "
             "'_' are allowed",
             rules_shown(trust_domain, text));
    return why;
}

/* Decodes one UTF-8 character (input known valid); returns its length. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
    uint32_t value = s[0] & (0x3F >> (n - 1));
    for (size_t i = 1; i < n && s[i] != '\0'; i++)
        value = (value << 6) | (s[i] & 0x3F);
    *cp = value;
    return n;
}

size_t rules_utf8_length(const char *text)
{
    size_t count = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s; s++)
        count += (*s & 0xC0) != 0x80;
    return count;
}

/* A server id is one path component of alias/SPIRE_SERVER/{TD}/{SERVER_ID}/{KEY_ID}:
 * KMS alias names hold only letters, digits, '/', '_' and '-', and a '/' would
 * move the component boundary (server "a/b" would read as server "a", key "b/..."). */
static bool is_server_id_char(char c) { return is_alnum(c) || c == '_' || c == '-'; }

/* "'/'" for printable ASCII, "U+00E9" otherwise. */
static void describe_char(uint32_t cp, char *out, size_t size)
{
    if (cp > 0x20 && cp < 0x7F)
        snprintf(out, size, "'%c'", (char)cp);
    else
        snprintf(out, size, "U+%04X", (unsigned)cp);
}

const char *rules_server_id_problem(const char *value, char *why, size_t size)
{
    if (strlen(value) > RULES_MAX_SERVER_ID)
        return say(why, size, "is longer than 256 characters");
    const unsigned char *at = (const unsigned char *)value;
    for (size_t position = 1; *at != '\0'; position++) {
        uint32_t cp;
        size_t length = utf8_next(at, &cp);
        if (cp >= 0x80 || !is_server_id_char((char)cp)) {
            char shown[16];
            describe_char(cp, shown, sizeof shown);
            snprintf(why, size,
                     "character %s at position %zu is not allowed: a server id is one component "
                     "of the alias name alias/SPIRE_SERVER/{TRUST_DOMAIN}/{SERVER_ID}/{KEY_ID}, "
                     "so it may hold only letters, digits, '_' and '-'",
                     shown, position);
            return why;
        }
        at += length;
    }
    return NULL;
}

/* AWS tag characters: letters, digits, whitespace and _ . : / = + - @. For
 * non-ASCII, letters and digits are approximated by excluding the control,
 * punctuation, symbol, private-use and emoji ranges; KMS has the last word. */
static bool tag_char_allowed(uint32_t cp)
{
    if (cp < 0x80)
        return is_alnum((char)cp) || cp == ' ' || cp == '\t' || strchr("_.:/=+-@", (int)cp);
    static const uint32_t excluded[][2] = {
        {0x80, 0x9F},     {0xA1, 0xA9},     {0xAB, 0xB1},       {0xB4, 0xB4},
        {0xB6, 0xB8},     {0xBB, 0xBB},     {0xBF, 0xBF},       {0xD7, 0xD7},
        {0xF7, 0xF7},     {0x2010, 0x2027}, {0x2030, 0x205E},   {0x2060, 0x206F},
        {0x20A0, 0x20FF}, {0x2190, 0x2BFF}, {0x3001, 0x3004},   {0x3008, 0x3020},
        {0xE000, 0xF8FF}, {0xFE00, 0xFE0F}, {0xFE10, 0xFE6F},   {0xFF01, 0xFF0F},
        {0xFF1A, 0xFF20}, {0xFFF0, 0xFFFF}, {0x1F000, 0x1FAFF}, {0xE0000, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof excluded / sizeof excluded[0]; i++)
        if (cp >= excluded[i][0] && cp <= excluded[i][1])
            return false;
    return true;
}

static bool tag_text_allowed(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        uint32_t cp;
        s += utf8_next(s, &cp);
        if (!tag_char_allowed(cp))
            return false;
    }
    return true;
}

static const char tag_chars_rule[] = "may hold only letters, digits, spaces and _ . : / = + - @";

const char *rules_tag_key_problem(const char *key, char *why, size_t size)
{
    size_t length = rules_utf8_length(key);
    if (length == 0)
        return say(why, size, "tag key must not be empty");
    if (length > RULES_MAX_TAG_KEY)
        return say(why, size, "tag key is longer than 128 characters");
    if (!tag_text_allowed(key))
        return say(why, size, tag_chars_rule);
    if (strncasecmp(key, "aws:", 4) == 0)
        return say(why, size, "tag keys starting with \"aws:\" are reserved by AWS");
    if (strncasecmp(key, "spire-", 6) == 0)
        return say(why, size, "tag keys starting with \"spire-\" are reserved by the plugin");
    return NULL;
}

const char *rules_tag_value_problem(const char *value, char *why, size_t size)
{
    if (rules_utf8_length(value) > RULES_MAX_TAG_VALUE)
        return say(why, size, "tag value is longer than 256 characters");
    if (!tag_text_allowed(value))
        return say(why, size, tag_chars_rule);
    return NULL;
}

const char *rules_endpoint_problem(const char *url, char *why, size_t size)
{
    const char *host = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    if (host == NULL)
        return say(why, size, "must be a URL starting with https:// or http://");
    if (host[0] == '\0' || host[0] == '/')
        return say(why, size, "URL has no host");
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7F)
            return say(why, size, "URL must not contain spaces or control characters");
    return NULL;
}

/* Why path cannot be read, as the rules word it: NULL when it can. */
static const char *unreadable_file_problem(const char *path, file_read_result result,
                                           const file_problem *problem, char *why, size_t size)
{
    char text[RULES_SHOWN_SIZE];
    if (result == FILE_READ_OK)
        return NULL;
    if (problem->not_regular != NULL)
        snprintf(why, size, "\"%s\" is not a regular file", rules_shown(path, text));
    else if (problem->too_large)
        snprintf(why, size, "\"%s\" is larger than %d bytes (the KMS key policy limit)",
                 rules_shown(path, text), RULES_MAX_POLICY_BYTES);
    else
        snprintf(why, size, "cannot read \"%s\": %s", rules_shown(path, text),
                 strerror(problem->error_number));
    return why;
}

const char *rules_readable_file_problem(const char *path, char *why, size_t size)
{
    file_problem problem;
    return unreadable_file_problem(path, file_check_regular(path, &problem), &problem, why, size);
}

const char *rules_read_policy(const char *path, char **contents, char *why, size_t size)
{
    char text[RULES_SHOWN_SIZE];
    file_contents file;
    file_problem problem;
    if (unreadable_file_problem(path,
                                file_read_regular(path, RULES_MAX_POLICY_BYTES, &file, &problem),
                                &problem, why, size) != NULL)
        return why;
    json_error_t error;
    json_t *document = json_loadb(file.data, file.len, 0, &error);
    if (document == NULL || !json_is_object(document)) {
        if (document == NULL)
            snprintf(why, size, "\"%s\" is not valid JSON: %d:%d: %s", rules_shown(path, text),
                     error.line, error.column, error.text);
        else
            snprintf(why, size, "\"%s\" does not hold a JSON object (a key policy document)",
                     rules_shown(path, text));
        json_decref(document);
        file_contents_wipe(&file);
        return why;
    }
    json_decref(document);
    *contents = file.data;
    return NULL;
}

/* --- durations ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t nanoseconds;
} duration_unit;

static const duration_unit units[] = {
    {"ns", 1},           {"us", 1000},      {"\xC2\xB5s", 1000}, /* µs, U+00B5 */
    {"\xCE\xBCs", 1000},                                         /* μs, U+03BC */
    {"ms", 1000000},     {"s", 1000000000}, {"m", 60LL * 1000000000}, {"h", 3600LL * 1000000000},
};

static const duration_unit *match_unit(const char *text, size_t *length)
{
    size_t n = 0;
    while (text[n] != '\0' && text[n] != '.' && !is_digit(text[n]))
        n++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].name) == n && strncmp(text, units[i].name, n) == 0) {
            *length = n;
            return &units[i];
        }
    }
    return NULL;
}

/* One "<number>[.<fraction>]<unit>" group; adds its nanoseconds to *total. */
static bool parse_duration_group(const char **text, int64_t *total)
{
    const char *at = *text;
    int64_t whole = 0, fraction = 0, scale = 1;
    size_t digits = 0, fraction_digits = 0;
    for (; is_digit(*at); at++, digits++)
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, *at - '0', &whole))
            return false;
    if (*at == '.')
        for (at++; is_digit(*at); at++, fraction_digits++)
            if (scale < 1000000000000000000LL)
                fraction = fraction * 10 + (*at - '0'), scale *= 10;
    size_t unit_length;
    const duration_unit *unit = match_unit(at, &unit_length);
    if (digits + fraction_digits == 0 || unit == NULL)
        return false;
    int64_t value;
    if (__builtin_mul_overflow(whole, unit->nanoseconds, &value))
        return false;
    value += (int64_t)((double)fraction * (double)unit->nanoseconds / (double)scale);
    if (value < 0 || __builtin_add_overflow(*total, value, total))
        return false;
    *text = at + unit_length;
    return true;
}

const char *rules_duration_ms(const char *text, int64_t *ms, char *why, size_t size)
{
    const char *at = text;
    bool negative = *at == '-';
    if (*at == '-' || *at == '+')
        at++;
    if (strcmp(at, "0") == 0)
        return say(why, size, "must be a positive duration of at least 1ms");
    int64_t total = 0;
    bool valid = *at != '\0';
    while (valid && *at != '\0')
        valid = parse_duration_group(&at, &total);
    if (!valid) {
        char shown_text[RULES_SHOWN_SIZE];
        snprintf(why, size,
                 "\"%s\" is not a duration (use a number and a unit: ns, us, ms, s, m, h; "
                 "e.g. \"6h\", \"90s\", \"1h30m\")",
                 rules_shown(text, shown_text));
        return why;
    }
    if (negative || total < 1000000)
        return say(why, size, "must be a positive duration of at least 1ms");
    *ms = total / 1000000;
    return NULL;
}

/* --- suggestions ---------------------------------------------------------------- */

size_t rules_edit_distance(const char *a, const char *b, size_t max)
{
    enum { LIMIT = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > LIMIT || lb > LIMIT || (la > lb ? la - lb : lb - la) > max)
        return max + 1;
    size_t row[LIMIT + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb] > max ? max + 1 : row[lb];
}

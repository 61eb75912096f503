/* A strict JSON reader for one string member of an object (json_scan.h): a
 * recursive descent over RFC 8259's grammar that skips every value except
 * the wanted member's string, which it unescapes into the caller's buffer. */
#include "aws/json_scan.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_DEPTH = 2048,     /* objects and arrays nested, as jansson's JSON_PARSER_MAX_DEPTH */
    NUMBER_ON_STACK = 64, /* longer numbers are copied to the heap for strtod/strtoll */
};

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} cursor;

/* Where a string goes: nowhere (skipped), or into out. */
typedef struct {
    char *out;
    size_t size;
    size_t len;
    bool too_long;
} sink;

static void skip_blanks(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool take(cursor *c, unsigned char expected)
{
    if (c->p >= c->end || *c->p != expected)
        return false;
    c->p++;
    return true;
}

static void put_bytes(sink *s, const void *bytes, size_t n)
{
    if (s == NULL)
        return;
    if (s->len + n >= s->size) {
        s->too_long = true;
        return;
    }
    memcpy(s->out + s->len, bytes, n);
    s->len += n;
    s->out[s->len] = '\0';
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The four hex digits after "\u"; -1 when they are not. */
static long hex4(cursor *c)
{
    if (c->end - c->p < 4)
        return -1;
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_value(c->p[i]);
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    c->p += 4;
    return value;
}

static void put_code_point(sink *s, uint32_t cp)
{
    unsigned char utf8[4];
    size_t n;
    if (cp < 0x80) {
        utf8[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        utf8[0] = (unsigned char)(0xc0 | (cp >> 6));
        utf8[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        utf8[0] = (unsigned char)(0xe0 | (cp >> 12));
        utf8[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        utf8[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        utf8[0] = (unsigned char)(0xf0 | (cp >> 18));
        utf8[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        utf8[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        utf8[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    put_bytes(s, utf8, n);
}

/* "\u" escapes: one code point, or a surrogate pair (a lone surrogate is an
 * error, as jansson has it). */
static bool unicode_escape(cursor *c, sink *s)
{
    long first = hex4(c);
    if (first < 0 || (first >= 0xdc00 && first <= 0xdfff))
        return false;
    uint32_t cp = (uint32_t)first;
    if (first >= 0xd800 && first <= 0xdbff) {
        if (!take(c, '\\') || !take(c, 'u'))
            return false;
        long second = hex4(c);
        if (second < 0xdc00 || second > 0xdfff)
            return false;
        cp = 0x10000 + (((uint32_t)first - 0xd800) << 10) + ((uint32_t)second - 0xdc00);
    }
    if (cp == 0)
        return false; /* jansson refuses \u0000 by default */
    put_code_point(s, cp);
    return true;
}

static bool escape(cursor *c, sink *s)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    if (c->p >= c->end)
        return false;
    unsigned char ch = *c->p++;
    if (ch == 'u')
        return unicode_escape(c, s);
    const char *at = memchr(from, ch, sizeof from - 1);
    if (at == NULL)
        return false;
    put_bytes(s, &to[at - from], 1);
    return true;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    return overlong || surrogate || cp > 0x10ffff ? 0 : n;
}

/* A string at the cursor (which is on its opening quote), into s. */
static bool string(cursor *c, sink *s)
{
    if (!take(c, '"'))
        return false;
    while (c->p < c->end) {
        const unsigned char *run = c->p;
        while (c->p < c->end && *c->p >= 0x20 && *c->p < 0x80 && *c->p != '"' && *c->p != '\\')
            c->p++;
        put_bytes(s, run, (size_t)(c->p - run));
        if (c->p >= c->end)
            return false;
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch == '\\') {
            c->p++;
            if (!escape(c, s))
                return false;
        } else if (ch < 0x20) {
            return false;
        } else {
            size_t n = utf8_sequence(c->p, c->end);
            if (n == 0)
                return false;
            put_bytes(s, c->p, n);
            c->p += n;
        }
    }
    return false;
}

static bool digits(cursor *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

/* Whether the number text[0..len) fits as jansson reads it: an integer in a
 * long long, a real without overflowing a double (jansson refuses both). */
static bool number_fits(const unsigned char *text, size_t len, bool integer)
{
    char on_stack[NUMBER_ON_STACK];
    char *copy = len < sizeof on_stack ? on_stack : malloc(len + 1);
    if (copy == NULL)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    errno = 0;
    bool fits;
    if (integer) {
        (void)strtoll(copy, NULL, 10);
        fits = errno != ERANGE;
    } else {
        double value = strtod(copy, NULL);
        fits = !(errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL));
    }
    if (copy != on_stack)
        free(copy);
    return fits;
}

static bool number(cursor *c)
{
    const unsigned char *start = c->p;
    bool integer = true;
    take(c, '-');
    if (take(c, '0')) {
        /* no leading zeros: a digit after it ends the number, and then fails */
    } else if (!digits(c)) {
        return false;
    }
    if (take(c, '.')) {
        integer = false;
        if (!digits(c))
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        integer = false;
        c->p++;
        if (!take(c, '+'))
            take(c, '-');
        if (!digits(c))
            return false;
    }
    return number_fits(start, (size_t)(c->p - start), integer);
}

static bool literal(cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool value(cursor *c, int depth);

/* The members of an object or the items of an array, after its opening
 * bracket; when name is set (the top level), the last member called name
 * whose value is a string goes to s. */
static bool members(cursor *c, int depth, bool object, const char *name, sink *s, bool *found)
{
    unsigned char close = object ? '}' : ']';
    skip_blanks(c);
    if (take(c, close))
        return true;
    for (;;) {
        skip_blanks(c);
        bool wanted = false;
        if (object) {
            char key[64] = "";
            sink key_sink = {.out = key, .size = sizeof key};
            if (!string(c, name != NULL ? &key_sink : NULL))
                return false;
            wanted = name != NULL && !key_sink.too_long && key_sink.len == strlen(name) &&
                     memcmp(key, name, key_sink.len) == 0;
            skip_blanks(c);
            if (!take(c, ':'))
                return false;
            skip_blanks(c);
        }
        if (wanted && c->p < c->end && *c->p == '"') {
            s->len = 0;
            s->too_long = false;
            s->out[0] = '\0';
            if (!string(c, s))
                return false;
            *found = true;
        } else {
            if (wanted)
                *found = false; /* a later non-string value replaces the string */
            if (!value(c, depth + 1))
                return false;
        }
        skip_blanks(c);
        if (take(c, close))
            return true;
        if (!take(c, ','))
            return false;
    }
}

static bool value(cursor *c, int depth)
{
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
    case '[': {
        if (depth > MAX_DEPTH)
            return false;
        bool object = *c->p++ == '{';
        bool unused = false;
        return members(c, depth, object, NULL, NULL, &unused);
    }
    case '"':
        return string(c, NULL);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    default:
        return number(c);
    }
}

json_scan_result json_scan_string_member(const char *text, size_t len, const char *name, char *out,
                                         size_t out_size, size_t *out_len)
{
    cursor c = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len};
    sink s = {.out = out, .size = out_size};
    bool found = false;
    *out_len = 0;
    if (out_size == 0)
        return JSON_SCAN_TOO_LONG;
    out[0] = '\0';
    skip_blanks(&c);
    if (!take(&c, '{') || !members(&c, 1, true, name, &s, &found))
        return JSON_SCAN_MALFORMED;
    skip_blanks(&c);
    if (c.p != c.end)
        return JSON_SCAN_MALFORMED;
    if (!found)
        return JSON_SCAN_ABSENT;
    if (s.too_long)
        return JSON_SCAN_TOO_LONG;
    *out_len = s.len;
    return JSON_SCAN_FOUND;
}

bool json_scan_utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    while (p < end) {
        size_t n = *p < 0x80 ? 1 : utf8_sequence(p, end);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

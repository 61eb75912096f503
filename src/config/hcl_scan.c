/* HCL v1 / JSON scanner: tokens with line:column positions. Strings are
 * decoded (escapes, heredoc indentation) here so the parser sees values. */
#include "config/hcl_scan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NUMBER_TEXT = 64 };

void hcl_set_error(hcl_error *error, int line, int column, const char *format, ...)
{
    char text[sizeof error->message - 32];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    error->line = line;
    error->column = column;
    if (line > 0)
        snprintf(error->message, sizeof error->message, "%d:%d: %s", line, column, text);
    else
        snprintf(error->message, sizeof error->message, "%s", text);
}

void scanner_init(scanner *s, const char *input, size_t length, hcl_error *error)
{
    *s = (scanner){.input = input, .length = length, .line = 1, .column = 1, .error = error};
}

void token_free(token *t)
{
    free(t->text);
    t->text = NULL;
}

const char *token_describe(token_type type)
{
    switch (type) {
    case TOK_EOF:
        return "end of input";
    case TOK_IDENT:
        return "identifier";
    case TOK_STRING:
        return "string";
    case TOK_HEREDOC:
        return "heredoc";
    case TOK_INT:
        return "number";
    case TOK_FLOAT:
        return "number";
    case TOK_LBRACE:
        return "'{'";
    case TOK_RBRACE:
        return "'}'";
    case TOK_LBRACKET:
        return "'['";
    case TOK_RBRACKET:
        return "']'";
    case TOK_ASSIGN:
        return "'='";
    case TOK_COLON:
        return "':'";
    case TOK_COMMA:
        return "','";
    case TOK_ERROR:
        return "error";
    }
    return "token";
}

static int peek_at(const scanner *s, size_t ahead)
{
    size_t at = s->pos + ahead;
    return at < s->length ? (unsigned char)s->input[at] : -1;
}

static int peek(const scanner *s) { return peek_at(s, 0); }

static void advance(scanner *s)
{
    unsigned char c = (unsigned char)s->input[s->pos++];
    if (c == '\n') {
        s->line++;
        s->column = 1;
    } else if ((c & 0xC0) != 0x80) {
        s->column++; /* columns count characters, not UTF-8 continuation bytes */
    }
}

static void advance_to(scanner *s, size_t end)
{
    while (s->pos < end)
        advance(s);
}

static token error_token(scanner *s, int line, int column, const char *message)
{
    hcl_set_error(s->error, line, column, "%s", message);
    return (token){.type = TOK_ERROR, .line = line, .column = column};
}

static bool is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool is_ident_char(int c)
{
    return is_ident_start(c) || is_digit(c) || c == '-' || c == '.';
}

static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Skips whitespace and comments; false (with error set) on an unterminated
 * block comment or a lone '/'. */
static bool skip_space_and_comments(scanner *s)
{
    for (;;) {
        int c = peek(s);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            advance(s);
        } else if (c == '#' || (c == '/' && peek_at(s, 1) == '/')) {
            while (peek(s) != -1 && peek(s) != '\n')
                advance(s);
        } else if (c == '/' && peek_at(s, 1) == '*') {
            int line = s->line, column = s->column;
            advance(s);
            advance(s);
            while (peek(s) != -1 && !(peek(s) == '*' && peek_at(s, 1) == '/'))
                advance(s);
            if (peek(s) == -1) {
                hcl_set_error(s->error, line, column, "comment not terminated (missing \"*/\")");
                return false;
            }
            advance(s);
            advance(s);
        } else {
            return true;
        }
    }
}

static token scan_ident(scanner *s)
{
    token t = {.type = TOK_IDENT, .line = s->line, .column = s->column};
    size_t start = s->pos;
    while (is_ident_char(peek(s)))
        advance(s);
    t.text = strndup(s->input + start, s->pos - start);
    return t;
}

static token scan_number(scanner *s)
{
    int line = s->line, column = s->column;
    size_t start = s->pos;
    bool is_float = false;
    if (peek(s) == '-')
        advance(s);
    if (peek(s) == '0' && (peek_at(s, 1) == 'x' || peek_at(s, 1) == 'X')) {
        advance(s);
        advance(s);
        while (is_hex(peek(s)))
            advance(s);
    } else {
        while (is_digit(peek(s)))
            advance(s);
        if (peek(s) == '.' && is_digit(peek_at(s, 1))) {
            is_float = true;
            advance(s);
            while (is_digit(peek(s)))
                advance(s);
        }
        if (peek(s) == 'e' || peek(s) == 'E') {
            is_float = true;
            advance(s);
            if (peek(s) == '+' || peek(s) == '-')
                advance(s);
            if (!is_digit(peek(s)))
                return error_token(s, line, column, "invalid number: exponent has no digits");
            while (is_digit(peek(s)))
                advance(s);
        }
    }
    if (is_ident_char(peek(s)))
        return error_token(s, line, column,
                           "invalid number (a duration such as 6h must be quoted: \"6h\")");
    size_t length = s->pos - start;
    if (length > MAX_NUMBER_TEXT)
        return error_token(s, line, column, "number too long");
    char text[MAX_NUMBER_TEXT + 1];
    memcpy(text, s->input + start, length);
    text[length] = '\0';
    char *end;
    errno = 0;
    token t = {.type = is_float ? TOK_FLOAT : TOK_INT, .line = line, .column = column};
    if (is_float)
        t.number = strtod(text, &end);
    else
        t.integer = strtoll(text, &end, 0); /* base 0: 0x hex and leading-0 octal, like hcl */
    if (*end != '\0')
        return error_token(s, line, column, "invalid number");
    if (errno == ERANGE && !(is_float && t.number == 0.0))
        return error_token(s, line, column, "number out of range");
    return t;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads `digits` hex digits at s->input[at]; false if they are not hex. */
static bool read_hex(const scanner *s, size_t at, int digits, uint32_t *out)
{
    uint32_t value = 0;
    for (int i = 0; i < digits; i++) {
        int c = at + (size_t)i < s->length ? (unsigned char)s->input[at + (size_t)i] : -1;
        if (!is_hex(c))
            return false;
        value = value * 16 + (uint32_t)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    *out = value;
    return true;
}

/* Decodes a \u or \U escape at s->pos (pointing at 'u' or 'U'), including a
 * JSON surrogate pair; returns the code point or sets *problem. */
static uint32_t decode_unicode_escape(scanner *s, const char **problem)
{
    int digits = peek(s) == 'u' ? 4 : 8;
    uint32_t cp;
    if (!read_hex(s, s->pos + 1, digits, &cp)) {
        *problem = "invalid unicode escape (expected hex digits)";
        return 0;
    }
    advance_to(s, s->pos + 1 + (size_t)digits);
    if (cp >= 0xD800 && cp <= 0xDBFF && peek(s) == '\\' && peek_at(s, 1) == 'u') {
        uint32_t low;
        if (read_hex(s, s->pos + 2, 4, &low) && low >= 0xDC00 && low <= 0xDFFF) {
            advance_to(s, s->pos + 6);
            return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        *problem = "invalid unicode escape (not a character)";
    else if (cp == 0)
        *problem = "NUL character not allowed in strings";
    return cp;
}

static char simple_escape(int c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '/':
        return '/';
    case 'a':
        return '\a';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    default:
        return 0;
    }
}

/* Finds the closing quote of the string starting at s->pos (the '"'); returns
 * its offset, or 0 if the line or input ends first. */
static size_t find_string_end(const scanner *s)
{
    for (size_t at = s->pos + 1; at < s->length; at++) {
        char c = s->input[at];
        if (c == '"')
            return at;
        if (c == '\n')
            return 0;
        if (c == '\\')
            at++;
    }
    return 0;
}

static token scan_string(scanner *s)
{
    int line = s->line, column = s->column;
    size_t end = find_string_end(s);
    if (end == 0)
        return error_token(s, line, column, "string not terminated (missing '\"' on this line)");
    char *out = malloc(end - s->pos + 1);
    size_t used = 0;
    advance(s); /* opening quote */
    while (s->pos < end) {
        if (peek(s) != '\\') {
            out[used++] = s->input[s->pos];
            advance(s);
            continue;
        }
        int escape_line = s->line, escape_column = s->column;
        advance(s);
        const char *problem = NULL;
        if (peek(s) == 'u' || peek(s) == 'U') {
            uint32_t cp = decode_unicode_escape(s, &problem);
            if (problem == NULL)
                used += utf8_encode(cp, out + used);
        } else if (simple_escape(peek(s)) != 0) {
            out[used++] = simple_escape(peek(s));
            advance(s);
        } else {
            problem = "unknown escape sequence in string";
        }
        if (problem != NULL) {
            free(out);
            return error_token(s, escape_line, escape_column, problem);
        }
    }
    advance(s); /* closing quote */
    out[used] = '\0';
    return (token){.type = TOK_STRING, .line = line, .column = column, .text = out};
}

typedef struct {
    size_t start; /* offset of the line's first byte */
    size_t end;   /* offset just past its content (before "\r\n" or "\n") */
} line_span;

static line_span line_at(const scanner *s, size_t start)
{
    const char *newline = memchr(s->input + start, '\n', s->length - start);
    size_t end = newline ? (size_t)(newline - s->input) : s->length;
    size_t content_end = end;
    if (content_end > start && s->input[content_end - 1] == '\r')
        content_end--;
    return (line_span){start, content_end};
}

static size_t leading_blanks(const scanner *s, line_span l)
{
    size_t n = 0;
    while (l.start + n < l.end && (s->input[l.start + n] == ' ' || s->input[l.start + n] == '\t'))
        n++;
    return n;
}

static bool is_closing_line(const scanner *s, line_span l, const char *anchor, size_t anchor_len)
{
    size_t blanks = leading_blanks(s, l);
    return l.end - l.start - blanks == anchor_len &&
           memcmp(s->input + l.start + blanks, anchor, anchor_len) == 0;
}

/* <<- strips the closing line's indentation from every line when all
 * non-blank lines carry it (as hcl v1 does, but blank lines do not count). */
static bool all_lines_indented(const scanner *s, size_t from, size_t to, const char *prefix,
                               size_t prefix_len)
{
    for (size_t at = from; at < to;) {
        line_span l = line_at(s, at);
        bool blank = leading_blanks(s, l) == l.end - l.start;
        if (!blank &&
            (l.end - l.start < prefix_len || memcmp(s->input + l.start, prefix, prefix_len) != 0))
            return false;
        at = l.end < s->length && s->input[l.end] == '\r' ? l.end + 2 : l.end + 1;
    }
    return true;
}

static char *heredoc_body(const scanner *s, size_t from, size_t to, line_span closing,
                          bool unindent)
{
    const char *prefix = s->input + closing.start;
    size_t prefix_len = unindent ? leading_blanks(s, closing) : 0;
    if (prefix_len > 0 && !all_lines_indented(s, from, to, prefix, prefix_len))
        prefix_len = 0;
    char *out = malloc(to - from + 1);
    size_t used = 0;
    for (size_t at = from; at < to;) {
        line_span l = line_at(s, at);
        size_t skip = l.end - l.start >= prefix_len ? prefix_len : l.end - l.start;
        memcpy(out + used, s->input + l.start + skip, l.end - l.start - skip);
        used += l.end - l.start - skip;
        out[used++] = '\n';
        at = l.end < s->length && s->input[l.end] == '\r' ? l.end + 2 : l.end + 1;
    }
    out[used] = '\0';
    return out;
}

static token scan_heredoc(scanner *s)
{
    int line = s->line, column = s->column;
    advance(s);
    advance(s);
    bool unindent = peek(s) == '-';
    if (unindent)
        advance(s);
    size_t anchor_start = s->pos;
    while (is_ident_start(peek(s)) || is_digit(peek(s)))
        advance(s);
    const char *anchor = s->input + anchor_start;
    size_t anchor_len = s->pos - anchor_start;
    if (anchor_len == 0)
        return error_token(s, line, column, "heredoc needs an anchor, as in <<EOF");
    if (peek(s) == '\r' && peek_at(s, 1) == '\n')
        advance(s);
    if (peek(s) != '\n')
        return error_token(s, line, column, "heredoc anchor must be followed by a newline");
    advance(s);
    size_t body_start = s->pos;
    for (size_t at = body_start; at < s->length;) {
        line_span l = line_at(s, at);
        if (is_closing_line(s, l, anchor, anchor_len)) {
            char *text = heredoc_body(s, body_start, at, l, unindent);
            advance_to(s, l.end);
            return (token){.type = TOK_HEREDOC, .line = line, .column = column, .text = text};
        }
        at = l.end < s->length && s->input[l.end] == '\r' ? l.end + 2 : l.end + 1;
    }
    return error_token(s, line, column, "heredoc not terminated (no line holding only its anchor)");
}

static token punctuation(scanner *s, token_type type)
{
    token t = {.type = type, .line = s->line, .column = s->column};
    advance(s);
    return t;
}

token scanner_next(scanner *s)
{
    if (!skip_space_and_comments(s))
        return (token){.type = TOK_ERROR, .line = s->error->line, .column = s->error->column};
    int c = peek(s);
    switch (c) {
    case -1:
        return (token){.type = TOK_EOF, .line = s->line, .column = s->column};
    case '{':
        return punctuation(s, TOK_LBRACE);
    case '}':
        return punctuation(s, TOK_RBRACE);
    case '[':
        return punctuation(s, TOK_LBRACKET);
    case ']':
        return punctuation(s, TOK_RBRACKET);
    case '=':
        return punctuation(s, TOK_ASSIGN);
    case ':':
        return punctuation(s, TOK_COLON);
    case ',':
        return punctuation(s, TOK_COMMA);
    case '"':
        return scan_string(s);
    default:
        break;
    }
    if (c == '<' && peek_at(s, 1) == '<')
        return scan_heredoc(s);
    if (is_digit(c) || (c == '-' && is_digit(peek_at(s, 1))))
        return scan_number(s);
    if (is_ident_start(c))
        return scan_ident(s);
    char what[48];
    if (c >= 0x20 && c < 0x7F)
        snprintf(what, sizeof what, "unexpected character '%c'", c);
    else
        snprintf(what, sizeof what, "unexpected character 0x%02X", (unsigned)c);
    return error_token(s, s->line, s->column, what);
}

/* Internal to the HCL parser: the scanner that turns configuration text into
 * tokens (identifiers, strings, heredocs, numbers, punctuation), skipping
 * whitespace and comments. Input must already be valid UTF-8 without NULs. */
#ifndef KM_CONFIG_HCL_SCAN_H
#define KM_CONFIG_HCL_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "config/hcl.h"

typedef enum {
    TOK_EOF,
    TOK_IDENT,
    TOK_STRING,
    TOK_HEREDOC,
    TOK_INT,
    TOK_FLOAT,
    TOK_LBRACE,
    TOK_RBRACE,
    TOK_LBRACKET,
    TOK_RBRACKET,
    TOK_ASSIGN,
    TOK_COLON,
    TOK_COMMA,
    TOK_ERROR,
} token_type;

typedef struct {
    token_type type;
    int line;
    int column;
    char *text; /* identifier name or decoded string (malloc'd), else NULL */
    int64_t integer;
    double number;
} token;

typedef struct {
    const char *input;
    size_t length;
    size_t pos;
    int line;
    int column;
    hcl_error *error; /* filled when a TOK_ERROR is returned */
} scanner;

void scanner_init(scanner *s, const char *input, size_t length, hcl_error *error);
/* Next token; the caller frees token.text (token_free). */
token scanner_next(scanner *s);
void token_free(token *t);
/* "string", "'='", "end of input", ... for error messages (never the text). */
const char *token_describe(token_type type);

/* Writes "line:column: message" into error. */
void hcl_set_error(hcl_error *error, int line, int column, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

#endif

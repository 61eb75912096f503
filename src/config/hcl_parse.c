/* HCL v1 and JSON parser (see hcl.h): recursive descent over the scanner's
 * tokens, one grammar for each syntax, both producing the same tree. */
#include "config/hcl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/hcl_scan.h"
#include "config/rules.h"

typedef struct {
    scanner s;
    token tok;
    hcl_error *error;
    int depth;
} parser;

const char *hcl_kind_name(hcl_kind kind)
{
    switch (kind) {
    case HCL_STRING:
        return "string";
    case HCL_INT:
        return "integer";
    case HCL_FLOAT:
        return "float";
    case HCL_BOOL:
        return "bool";
    case HCL_LIST:
        return "list";
    case HCL_OBJECT:
        return "object";
    }
    return "value";
}

void hcl_free(hcl_value *value)
{
    if (value == NULL)
        return;
    if (value->kind == HCL_STRING) {
        free(value->as.string);
    } else if (value->kind == HCL_LIST) {
        for (size_t i = 0; i < value->as.list.count; i++)
            hcl_free(value->as.list.values[i]);
        free(value->as.list.values);
    } else if (value->kind == HCL_OBJECT) {
        for (size_t i = 0; i < value->as.object.count; i++) {
            free(value->as.object.items[i].key);
            hcl_free(value->as.object.items[i].value);
        }
        free(value->as.object.items);
    }
    free(value);
}

static hcl_value *new_value(hcl_kind kind, int line, int column)
{
    hcl_value *value = calloc(1, sizeof *value);
    value->kind = kind;
    value->line = line;
    value->column = column;
    return value;
}

static bool is_power_of_two_or_zero(size_t n) { return (n & (n - 1)) == 0; }

static void object_add(hcl_value *object, char *key, int line, int column, hcl_value *value)
{
    size_t n = object->as.object.count;
    if (is_power_of_two_or_zero(n))
        object->as.object.items =
            realloc(object->as.object.items, (n ? 2 * n : 1) * sizeof *object->as.object.items);
    object->as.object.items[n] = (hcl_item){key, line, column, value};
    object->as.object.count = n + 1;
}

static void list_add(hcl_value *list, hcl_value *value)
{
    size_t n = list->as.list.count;
    if (is_power_of_two_or_zero(n))
        list->as.list.values =
            realloc(list->as.list.values, (n ? 2 * n : 1) * sizeof *list->as.list.values);
    list->as.list.values[n] = value;
    list->as.list.count = n + 1;
}

static bool advance_token(parser *p)
{
    token_free(&p->tok);
    p->tok = scanner_next(&p->s);
    return p->tok.type != TOK_ERROR;
}

/* Error at the current token: "<what>, found <token>". */
static bool fail_found(parser *p, const char *what)
{
    hcl_set_error(p->error, p->tok.line, p->tok.column, "%s, found %s", what,
                  token_describe(p->tok.type));
    return false;
}

static bool enter(parser *p)
{
    if (++p->depth <= HCL_MAX_DEPTH)
        return true;
    hcl_set_error(p->error, p->tok.line, p->tok.column, "nesting deeper than %d levels",
                  HCL_MAX_DEPTH);
    return false;
}

/* --- HCL ------------------------------------------------------------------- */

static hcl_value *hcl_parse_value(parser *p, const char *key);

static bool hcl_parse_body(parser *p, hcl_value *object, token_type end);

static hcl_value *hcl_parse_object(parser *p)
{
    hcl_value *object = new_value(HCL_OBJECT, p->tok.line, p->tok.column);
    if (!enter(p) || !advance_token(p) || !hcl_parse_body(p, object, TOK_RBRACE) ||
        !advance_token(p)) {
        hcl_free(object);
        return NULL;
    }
    p->depth--;
    return object;
}

static hcl_value *hcl_parse_list(parser *p, const char *key)
{
    hcl_value *list = new_value(HCL_LIST, p->tok.line, p->tok.column);
    if (!enter(p) || !advance_token(p))
        goto fail;
    while (p->tok.type != TOK_RBRACKET) {
        hcl_value *element = hcl_parse_value(p, key);
        if (element == NULL)
            goto fail;
        list_add(list, element);
        if (p->tok.type == TOK_COMMA) {
            if (!advance_token(p))
                goto fail;
        } else if (p->tok.type != TOK_RBRACKET) {
            fail_found(p, "expected ',' or ']' in list");
            goto fail;
        }
    }
    if (!advance_token(p))
        goto fail;
    p->depth--;
    return list;
fail:
    hcl_free(list);
    return NULL;
}

static hcl_value *scalar_from_token(parser *p)
{
    hcl_value *value = NULL;
    token *t = &p->tok;
    if (t->type == TOK_STRING || t->type == TOK_HEREDOC) {
        value = new_value(HCL_STRING, t->line, t->column);
        value->as.string = t->text;
        t->text = NULL;
    } else if (t->type == TOK_INT) {
        value = new_value(HCL_INT, t->line, t->column);
        value->as.integer = t->integer;
    } else if (t->type == TOK_FLOAT) {
        value = new_value(HCL_FLOAT, t->line, t->column);
        value->as.number = t->number;
    } else if (t->type == TOK_IDENT &&
               (strcmp(t->text, "true") == 0 || strcmp(t->text, "false") == 0)) {
        value = new_value(HCL_BOOL, t->line, t->column);
        value->as.boolean = t->text[0] == 't';
    }
    return value;
}

static hcl_value *hcl_parse_value(parser *p, const char *key)
{
    if (p->tok.type == TOK_LBRACE)
        return hcl_parse_object(p);
    if (p->tok.type == TOK_LBRACKET)
        return hcl_parse_list(p, key);
    hcl_value *value = scalar_from_token(p);
    if (value == NULL) {
        char shown[RULES_SHOWN_SIZE], what[128];
        snprintf(what, sizeof what, "expected a value for key \"%s\"", rules_shown(key, shown));
        if (p->tok.type == TOK_IDENT)
            snprintf(what + strlen(what), sizeof what - strlen(what), " (quote strings)");
        fail_found(p, what);
        return NULL;
    }
    if (!advance_token(p)) {
        hcl_free(value);
        return NULL;
    }
    return value;
}

static bool is_key_token(token_type type) { return type == TOK_IDENT || type == TOK_STRING; }

/* After `key`, a run of labels ("a" "b" ...) must end in '{' for a labelled
 * block (key "a" "b" { ... }). Looks ahead without consuming. */
static bool labels_open_block(const parser *p)
{
    scanner ahead = p->s;
    hcl_error scratch;
    ahead.error = &scratch;
    for (;;) {
        token t = scanner_next(&ahead);
        token_type type = t.type;
        token_free(&t);
        if (!is_key_token(type))
            return type == TOK_LBRACE;
    }
}

/* key "label" ... { body } becomes key = { label = { ... = { body } } }. */
static hcl_value *hcl_parse_labelled_block(parser *p)
{
    if (p->tok.type == TOK_LBRACE)
        return hcl_parse_object(p);
    char *label = p->tok.text;
    p->tok.text = NULL;
    int line = p->tok.line, column = p->tok.column;
    hcl_value *outer = new_value(HCL_OBJECT, line, column);
    hcl_value *inner = NULL;
    if (enter(p) && advance_token(p))
        inner = hcl_parse_labelled_block(p);
    if (inner == NULL) {
        free(label);
        hcl_free(outer);
        return NULL;
    }
    p->depth--;
    object_add(outer, label, line, column, inner);
    return outer;
}

static bool hcl_parse_item(parser *p, hcl_value *object)
{
    char *key = p->tok.text;
    p->tok.text = NULL;
    int line = p->tok.line, column = p->tok.column;
    hcl_value *value = NULL;
    if (!advance_token(p))
        goto fail;
    if (p->tok.type == TOK_ASSIGN) {
        if (advance_token(p))
            value = hcl_parse_value(p, key);
    } else if (p->tok.type == TOK_LBRACE || (is_key_token(p->tok.type) && labels_open_block(p))) {
        value = hcl_parse_labelled_block(p);
    } else {
        char shown[RULES_SHOWN_SIZE], what[128];
        snprintf(what, sizeof what, "expected '=' or '{' after key \"%s\"",
                 rules_shown(key, shown));
        fail_found(p, what);
    }
    if (value == NULL)
        goto fail;
    object_add(object, key, line, column, value);
    return true;
fail:
    free(key);
    return false;
}

static bool hcl_parse_body(parser *p, hcl_value *object, token_type end)
{
    while (p->tok.type != end) {
        if (!is_key_token(p->tok.type))
            return fail_found(p, end == TOK_EOF ? "expected a key" : "expected a key or '}'");
        if (!hcl_parse_item(p, object))
            return false;
        if (p->tok.type == TOK_COMMA && !advance_token(p))
            return false;
    }
    return true;
}

/* --- JSON ------------------------------------------------------------------ */

static hcl_value *json_parse_value(parser *p, const char *key);

static bool json_parse_member(parser *p, hcl_value *object)
{
    if (p->tok.type != TOK_STRING)
        return fail_found(p, "expected a quoted key");
    char *key = p->tok.text;
    p->tok.text = NULL;
    int line = p->tok.line, column = p->tok.column;
    hcl_value *value = NULL;
    if (advance_token(p)) {
        if (p->tok.type != TOK_COLON) {
            char shown[RULES_SHOWN_SIZE], what[128];
            snprintf(what, sizeof what, "expected ':' after key \"%s\"", rules_shown(key, shown));
            fail_found(p, what);
        } else if (advance_token(p)) {
            value = json_parse_value(p, key);
        }
    }
    if (value == NULL) {
        free(key);
        return false;
    }
    object_add(object, key, line, column, value);
    return true;
}

static hcl_value *json_parse_object(parser *p)
{
    hcl_value *object = new_value(HCL_OBJECT, p->tok.line, p->tok.column);
    if (!enter(p) || !advance_token(p))
        goto fail;
    if (p->tok.type != TOK_RBRACE) {
        for (;;) {
            if (!json_parse_member(p, object))
                goto fail;
            if (p->tok.type == TOK_RBRACE)
                break;
            if (p->tok.type != TOK_COMMA) {
                fail_found(p, "expected ',' or '}' in object");
                goto fail;
            }
            if (!advance_token(p))
                goto fail;
        }
    }
    if (!advance_token(p))
        goto fail;
    p->depth--;
    return object;
fail:
    hcl_free(object);
    return NULL;
}

static hcl_value *json_parse_array(parser *p, const char *key)
{
    hcl_value *list = new_value(HCL_LIST, p->tok.line, p->tok.column);
    if (!enter(p) || !advance_token(p))
        goto fail;
    if (p->tok.type != TOK_RBRACKET) {
        for (;;) {
            hcl_value *element = json_parse_value(p, key);
            if (element == NULL)
                goto fail;
            list_add(list, element);
            if (p->tok.type == TOK_RBRACKET)
                break;
            if (p->tok.type != TOK_COMMA) {
                fail_found(p, "expected ',' or ']' in array");
                goto fail;
            }
            if (!advance_token(p))
                goto fail;
        }
    }
    if (!advance_token(p))
        goto fail;
    p->depth--;
    return list;
fail:
    hcl_free(list);
    return NULL;
}

static hcl_value *json_parse_value(parser *p, const char *key)
{
    if (p->tok.type == TOK_LBRACE)
        return json_parse_object(p);
    if (p->tok.type == TOK_LBRACKET)
        return json_parse_array(p, key);
    char shown[RULES_SHOWN_SIZE], what[128];
    if (p->tok.type == TOK_IDENT && strcmp(p->tok.text, "null") == 0) {
        hcl_set_error(p->error, p->tok.line, p->tok.column,
                      "null is not supported (key \"%s\"): leave the key out instead",
                      rules_shown(key, shown));
        return NULL;
    }
    hcl_value *value = p->tok.type == TOK_HEREDOC ? NULL : scalar_from_token(p);
    if (value == NULL) {
        snprintf(what, sizeof what, "expected a JSON value for key \"%s\"",
                 rules_shown(key, shown));
        fail_found(p, what);
        return NULL;
    }
    if (!advance_token(p)) {
        hcl_free(value);
        return NULL;
    }
    return value;
}

/* --- entry ----------------------------------------------------------------- */

/* Valid UTF-8 without NUL bytes; otherwise sets error at the offending byte. */
static bool check_encoding(const char *text, size_t length, hcl_error *error)
{
    const unsigned char *s = (const unsigned char *)text;
    int line = 1, column = 1;
    for (size_t i = 0; i < length; column++) {
        unsigned char c = s[i];
        size_t need = c < 0x80                 ? 0
                      : c >= 0xC2 && c <= 0xDF ? 1
                      : c >= 0xE0 && c <= 0xEF ? 2
                      : c >= 0xF0 && c <= 0xF4 ? 3
                                               : 4;
        if (c == 0) {
            hcl_set_error(error, line, column, "NUL byte in configuration");
            return false;
        }
        bool valid = need < 4 && i + need < length;
        for (size_t k = 1; valid && k <= need; k++)
            valid = (s[i + k] & 0xC0) == 0x80;
        if (valid && need == 2) /* no overlongs, no surrogates */
            valid = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);
        if (valid && need == 3) /* no overlongs, nothing past U+10FFFF */
            valid = !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);
        if (!valid) {
            hcl_set_error(error, line, column, "invalid UTF-8 in configuration");
            return false;
        }
        if (c == '\n')
            line++, column = 0;
        i += need + 1;
    }
    return true;
}

/* hcl.Decode treats a document starting with '{' as JSON; we also accept an
 * HCL body in braces, so JSON means '{' then '}' or a string and ':'. */
static bool looks_like_json(const scanner *start)
{
    scanner s = *start;
    hcl_error scratch;
    s.error = &scratch;
    token_type types[3];
    for (int i = 0; i < 3; i++) {
        token t = scanner_next(&s);
        types[i] = t.type;
        token_free(&t);
    }
    return types[0] == TOK_LBRACE &&
           (types[1] == TOK_RBRACE || (types[1] == TOK_STRING && types[2] == TOK_COLON));
}

static hcl_value *parse_document(parser *p)
{
    if (looks_like_json(&p->s)) {
        if (!advance_token(p))
            return NULL;
        p->depth = -1; /* the document's own braces are not nesting */
        return json_parse_object(p);
    }
    if (!advance_token(p))
        return NULL;
    hcl_value *body = new_value(HCL_OBJECT, p->tok.line, p->tok.column);
    bool braced = p->tok.type == TOK_LBRACE;
    if ((braced && !advance_token(p)) || !hcl_parse_body(p, body, braced ? TOK_RBRACE : TOK_EOF) ||
        (braced && !advance_token(p))) {
        hcl_free(body);
        return NULL;
    }
    return body;
}

hcl_value *hcl_parse(const char *text, size_t length, hcl_error *error)
{
    *error = (hcl_error){0};
    if (length > HCL_MAX_INPUT) {
        hcl_set_error(error, 0, 0, "configuration is larger than %d bytes", HCL_MAX_INPUT);
        return NULL;
    }
    if (!check_encoding(text, length, error))
        return NULL;
    parser p = {.error = error};
    scanner_init(&p.s, text, length, error);
    hcl_value *document = parse_document(&p);
    if (document != NULL && p.tok.type != TOK_EOF) {
        fail_found(&p, "expected end of input");
        hcl_free(document);
        document = NULL;
    }
    token_free(&p.tok);
    return document;
}

/* A parser for HCL v1 (as operators write it and as hashicorp/hcl's printer
 * emits it) and for JSON documents meaning the same, producing a small tree:
 * objects hold items (key, position, value); values are strings, integers,
 * floats, booleans, lists and objects. Hostile input is bounded: at most
 * HCL_MAX_INPUT bytes and HCL_MAX_DEPTH levels of nesting. */
#ifndef KM_CONFIG_HCL_H
#define KM_CONFIG_HCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    HCL_MAX_INPUT = 1024 * 1024,
    HCL_MAX_DEPTH = 64,
};

typedef enum {
    HCL_STRING,
    HCL_INT,
    HCL_FLOAT,
    HCL_BOOL,
    HCL_LIST,
    HCL_OBJECT,
} hcl_kind;

typedef struct hcl_value hcl_value;

typedef struct {
    char *key;
    int line; /* of the key, 1-based */
    int column;
    hcl_value *value;
} hcl_item;

struct hcl_value {
    hcl_kind kind;
    int line; /* where the value starts, 1-based */
    int column;
    union {
        char *string; /* UTF-8, no NUL inside */
        int64_t integer;
        double number;
        bool boolean;
        struct {
            hcl_value **values;
            size_t count;
        } list;
        struct {
            hcl_item *items;
            size_t count;
        } object;
    } as;
};

typedef struct {
    int line; /* 0 when the error has no position (e.g. input too large) */
    int column;
    char message[256]; /* "3:9: expected '=' or '{' after key \"region\", found string" */
} hcl_error;

/* Parses text (length bytes, HCL v1 or JSON) into a new HCL_OBJECT value, or
 * returns NULL and fills error. Never echoes string values in the error. */
hcl_value *hcl_parse(const char *text, size_t length, hcl_error *error);
void hcl_free(hcl_value *value);

/* "string", "integer", "float", "bool", "list", "object". */
const char *hcl_kind_name(hcl_kind kind);

#endif

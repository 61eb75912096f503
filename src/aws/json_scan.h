/* One string member of a JSON object, read without building a tree: for the
 * hottest answer, KMS Sign's, whose parse with jansson cost more than the
 * rest of the answer's handling. The whole text is checked as strictly as
 * jansson checks it (RFC 8259 grammar, UTF-8, escapes, no trailing bytes,
 * nesting at most 64 deep); jansson stays the reader of every other answer. */
#ifndef KM_AWS_JSON_SCAN_H
#define KM_AWS_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    JSON_SCAN_FOUND = 0,
    JSON_SCAN_ABSENT,    /* a valid object without that member, or whose member is no string */
    JSON_SCAN_MALFORMED, /* not one valid JSON object */
    JSON_SCAN_TOO_LONG,  /* the string does not fit out */
} json_scan_result;

/* The value of the top-level member `name` (the last one, when repeated, as
 * jansson keeps it) of the object in text[0..len), unescaped into out as a
 * NUL-terminated UTF-8 string (*out_len bytes). */
json_scan_result json_scan_string_member(const char *text, size_t len, const char *name, char *out,
                                         size_t out_size, size_t *out_len);

/* Whether text[0..len) is valid UTF-8 (what a JSON string may hold). */
bool json_scan_utf8_valid(const char *text, size_t len);

#endif

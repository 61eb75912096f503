/* libFuzzer target: arbitrary bytes through json_scan (the reader of KMS Sign
 * answers, aws/json_scan.h) and through jansson, which reads every other
 * answer: the two must agree on whether the bytes are one valid JSON object
 * and on the value of its "Signature" member, and json_scan's UTF-8 check
 * must agree with jansson's on the same bytes as a string. A disagreement
 * aborts (a finding), as does any crash or sanitizer report. Bytes with a
 * NUL are never JSON: json_scan must refuse them (jansson lets a NUL right
 * after a number slip through, a quirk of its one-character unget). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_member(const char *text, size_t size)
{
    char out[256];
    size_t out_len = 0;
    json_scan_result result =
        json_scan_string_member(text, size, "Signature", out, sizeof out, &out_len);
    if (memchr(text, '\0', size) != NULL) {
        if (result != JSON_SCAN_MALFORMED)
            abort();
        return;
    }
    json_t *tree = json_loadb(text, size, 0, NULL);
    const json_t *member = json_object_get(tree, "Signature");
    if (!json_is_object(tree)) {
        if (result != JSON_SCAN_MALFORMED)
            abort();
    } else if (!json_is_string(member)) {
        if (result != JSON_SCAN_ABSENT)
            abort();
    } else if (json_string_length(member) >= sizeof out) {
        if (result != JSON_SCAN_TOO_LONG)
            abort();
    } else if (result != JSON_SCAN_FOUND || out_len != json_string_length(member) ||
               memcmp(out, json_string_value(member), out_len) != 0) {
        abort();
    }
    json_decref(tree);
}

static void check_utf8(const char *text, size_t size)
{
    json_t *string = json_stringn(text, size); /* NULL for invalid UTF-8 */
    bool valid = string != NULL;
    json_decref(string);
    if (json_scan_utf8_valid(text, size) != valid)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_member((const char *)data, size);
    check_utf8((const char *)data, size);
    return 0;
}

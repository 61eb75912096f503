/* Helpers for the AWS wire formats: base64 blobs, typed reading of JSON
 * fields, simple XML tag extraction (STS query answers), and turning an AWS
 * error answer (JSON 1.1 "__type" or XML <Error>) into an aws_error. */
#ifndef KM_AWS_JSON_H
#define KM_AWS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/aws_error.h"

/* Standard base64 with padding. Returns a malloc'd NUL-terminated string. */
char *aws_base64_encode(const uint8_t *data, size_t len);
/* Returns 0 and a malloc'd buffer, or -1 when text is not valid base64. */
int aws_base64_decode(const char *text, uint8_t **out, size_t *out_len);

/* Copies the string member `name` into out. Returns 0; -1 when it is absent
 * (or not a string) and required, or does not fit. Absent and optional: "". */
int aws_json_copy_string(const json_t *object, const char *name, bool required, char *out,
                         size_t out_size);
/* Epoch seconds (possibly fractional); 0 when absent. */
double aws_json_timestamp(const json_t *object, const char *name);
bool aws_json_bool(const json_t *object, const char *name);

/* The text between <tag> and </tag> (first occurrence), XML entities decoded.
 * Returns 0, or -1 when absent or too long. The one XML reader (STS answers
 * and errors). */
int aws_xml_tag(const char *xml, const char *tag, char *out, size_t out_size);
/* The same within [start, end): both tags must lie inside. */
int aws_xml_text(const char *start, const char *end, const char *tag, char *out, size_t out_size);

/* The aws_status for an AWS error code ("prefix#" already stripped) and HTTP status. */
aws_status aws_error_status_for(const char *code, long http_status);

/* Fills err from a non-2xx answer: AWS's code (from "__type" or <Code>, any
 * "prefix#" or ":suffix" removed), message ("message"/"Message"), request id,
 * HTTP status and the typed status. operation names the call in the text used
 * when the answer carries no message. */
void aws_error_from_answer(const char *operation, long http_status, const char *body,
                           const char *request_id, aws_error *err);

#endif

/* The configuration's value rules, on plain strings and numbers: AWS region
 * names, SPIFFE trust domains, fixed server ids, AWS tags, Go durations,
 * endpoint URLs, readable files, key policies, and "did you mean" distance.
 * Each *_problem function returns NULL when the value is fine, or writes a
 * short reason (never the value of a secret) into why and returns why. */
#ifndef KM_CONFIG_RULES_H
#define KM_CONFIG_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    RULES_MAX_TAGS = 50,
    RULES_MAX_TAG_KEY = 128,
    RULES_MAX_TAG_VALUE = 256,
    RULES_MAX_SERVER_ID = 256,
    RULES_MAX_TRUST_DOMAIN = 255,
    RULES_MAX_POLICY_BYTES = 32768, /* KMS key policy limit */
};

/* us-east-2, cn-north-1, us-gov-west-1, us-isob-east-1, ... */
bool rules_region_valid(const char *region);

const char *rules_trust_domain_problem(const char *trust_domain, char *why, size_t size);
/* A server id is one alias path component: letters, digits, '_' and '-' (no
 * '/'); the reason names the first other character and its position. */
const char *rules_server_id_problem(const char *value, char *why, size_t size);
const char *rules_tag_key_problem(const char *key, char *why, size_t size);
const char *rules_tag_value_problem(const char *value, char *why, size_t size);
const char *rules_endpoint_problem(const char *url, char *why, size_t size);
const char *rules_readable_file_problem(const char *path, char *why, size_t size);

/* Go time.ParseDuration syntax ("6h", "1h30m", "1.5s", "500ms"); the result
 * must be at least one millisecond. */
const char *rules_duration_ms(const char *text, int64_t *ms, char *why, size_t size);

/* Reads path (a JSON object of at most RULES_MAX_POLICY_BYTES) into a new
 * string in *contents, or returns a reason naming the path and, for bad JSON,
 * jansson's line:column. */
const char *rules_read_policy(const char *path, char **contents, char *why, size_t size);

/* Edit distance, or max + 1 when it is larger than max (cheap for long input). */
size_t rules_edit_distance(const char *a, const char *b, size_t max);

/* text for a message: printable ASCII only (others become '?'), cut to 64
 * characters with "..." appended; out must hold RULES_SHOWN_SIZE bytes. */
enum { RULES_SHOWN_SIZE = 72 };
const char *rules_shown(const char *text, char *out);

/* Number of UTF-8 characters in valid UTF-8 text. */
size_t rules_utf8_length(const char *text);

#endif

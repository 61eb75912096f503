/* Parsing for the credential sources: ISO 8601 expirations, STS XML answers,
 * the JSON of container / IMDS / credential_process, form encoding, and the
 * environment lookup the chain uses. Error text never includes secrets. */
#include "aws/credentials_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/aws_json.h"

const char *aws_cred_env_get(const aws_cred_env *env, const char *name)
{
    const char *value =
        (env != NULL && env->getenv != NULL) ? env->getenv(env->ctx, name) : getenv(name);
    return (value != NULL && value[0] != '\0') ? value : NULL;
}

bool aws_cred_env_true(const aws_cred_env *env, const char *name)
{
    const char *value = aws_cred_env_get(env, name);
    return value != NULL && strcasecmp(value, "true") == 0;
}

/* --- ISO 8601 ------------------------------------------------------------------ */

static bool read_digits(const char **p, int count, int *out)
{
    int value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        value = value * 10 + ((*p)[i] - '0');
    }
    *p += count;
    *out = value;
    return true;
}

static bool expect_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

/* "Z", "+hh:mm", "+hhmm" (or '-') to seconds east of UTC. */
static bool read_zone(const char *p, int *offset)
{
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        *offset = 0;
        return true;
    }
    if (p[0] != '+' && p[0] != '-')
        return false;
    int sign = p[0] == '-' ? -1 : 1;
    const char *q = p + 1;
    int hours, minutes;
    if (!read_digits(&q, 2, &hours))
        return false;
    if (*q == ':')
        q++;
    if (!read_digits(&q, 2, &minutes) || *q != '\0' || hours > 23 || minutes > 59)
        return false;
    *offset = sign * (hours * 3600 + minutes * 60);
    return true;
}

int aws_cred_parse_iso8601(const char *text, int64_t *out)
{
    if (text == NULL)
        return -1;
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (!read_digits(&p, 4, &year) || !expect_char(&p, '-') || !read_digits(&p, 2, &month) ||
        !expect_char(&p, '-') || !read_digits(&p, 2, &day) ||
        !(expect_char(&p, 'T') || expect_char(&p, 't') || expect_char(&p, ' ')) ||
        !read_digits(&p, 2, &hour) || !expect_char(&p, ':') || !read_digits(&p, 2, &minute) ||
        !expect_char(&p, ':') || !read_digits(&p, 2, &second))
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int offset;
    if (!read_zone(p, &offset))
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = minute,
                    .tm_sec = second};
    *out = (int64_t)timegm(&tm) - offset;
    return 0;
}

void aws_cred_format_iso8601(int64_t epoch, char *out, size_t out_size)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- STS XML ----------------------------------------------------------------- */

void aws_cred_sts_error(aws_error *err)
{
    char message[sizeof err->message];
    snprintf(message, sizeof message, "%s", err->message);
    err->status = AWS_ERR_CREDENTIALS;
    snprintf(err->message, sizeof err->message, "STS error %s: %.900s",
             err->code[0] != '\0' ? err->code : "(no code)", message);
}

int aws_cred_parse_sts_xml(const char *xml, aws_credentials *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    if (xml == NULL) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "STS answer is empty");
        return -1;
    }
    if (strstr(xml, "<ErrorResponse") != NULL) {
        if (err != NULL) {
            aws_error_from_answer("STS", 200, xml, NULL, err);
            aws_cred_sts_error(err);
        }
        return -1;
    }
    const char *start = strstr(xml, "<Credentials>");
    const char *end = start != NULL ? strstr(start, "</Credentials>") : NULL;
    if (end == NULL) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "STS answer has no Credentials element");
        return -1;
    }
    char expiration[64];
    if (aws_xml_text(start, end, "AccessKeyId", out->access_key_id, sizeof out->access_key_id) ||
        aws_xml_text(start, end, "SecretAccessKey", out->secret_access_key,
                     sizeof out->secret_access_key) ||
        aws_xml_text(start, end, "SessionToken", out->session_token, sizeof out->session_token) ||
        aws_xml_text(start, end, "Expiration", expiration, sizeof expiration) ||
        aws_cred_parse_iso8601(expiration, &out->expiration) != 0 ||
        out->access_key_id[0] == '\0' || out->secret_access_key[0] == '\0') {
        aws_credentials_clear(out);
        aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                      "STS answer lacks a valid AccessKeyId, SecretAccessKey, SessionToken or "
                      "Expiration");
        return -1;
    }
    return 0;
}

/* --- JSON credentials ----------------------------------------------------------- */

static bool json_copy_string(json_t *root, const char *key, char *out, size_t out_size)
{
    const char *value = json_string_value(json_object_get(root, key));
    if (value == NULL || strlen(value) >= out_size)
        return false;
    memcpy(out, value, strlen(value) + 1);
    return true;
}

static const char *json_kind_name(aws_cred_json_kind kind)
{
    switch (kind) {
    case AWS_CRED_JSON_CONTAINER:
        return "container endpoint";
    case AWS_CRED_JSON_IMDS:
        return "instance metadata";
    case AWS_CRED_JSON_PROCESS:
        return "credential_process";
    }
    return "credentials";
}

/* Checks the kind-specific envelope: IMDS "Code", process "Version". */
static int check_json_envelope(json_t *root, aws_cred_json_kind kind, aws_error *err)
{
    if (kind == AWS_CRED_JSON_IMDS) {
        const char *code = json_string_value(json_object_get(root, "Code"));
        if (code != NULL && strcmp(code, "Success") != 0) {
            aws_error_set(err, AWS_ERR_CREDENTIALS, "instance metadata answered Code %.64s", code);
            return -1;
        }
    }
    if (kind == AWS_CRED_JSON_PROCESS) {
        json_t *version = json_object_get(root, "Version");
        if (!json_is_integer(version) || json_integer_value(version) != 1) {
            aws_error_set(err, AWS_ERR_BAD_RESPONSE,
                          "credential_process output must have \"Version\": 1");
            return -1;
        }
    }
    return 0;
}

static int parse_json_fields(json_t *root, aws_cred_json_kind kind, aws_credentials *out,
                             aws_error *err)
{
    const char *name = json_kind_name(kind);
    if (!json_copy_string(root, "AccessKeyId", out->access_key_id, sizeof out->access_key_id) ||
        !json_copy_string(root, "SecretAccessKey", out->secret_access_key,
                          sizeof out->secret_access_key) ||
        out->access_key_id[0] == '\0' || out->secret_access_key[0] == '\0') {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "%s answer lacks AccessKeyId or SecretAccessKey",
                      name);
        return -1;
    }
    const char *token_key = kind == AWS_CRED_JSON_PROCESS ? "SessionToken" : "Token";
    json_t *token = json_object_get(root, token_key);
    if (token != NULL && !json_is_null(token) &&
        !json_copy_string(root, token_key, out->session_token, sizeof out->session_token)) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "%s answer has an invalid %s", name, token_key);
        return -1;
    }
    json_t *expiration = json_object_get(root, "Expiration");
    if (expiration == NULL || json_is_null(expiration)) {
        if (kind == AWS_CRED_JSON_PROCESS)
            return 0; /* long-term credentials */
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "%s answer lacks Expiration", name);
        return -1;
    }
    if (aws_cred_parse_iso8601(json_string_value(expiration), &out->expiration) != 0) {
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "%s answer has an invalid Expiration", name);
        return -1;
    }
    return 0;
}

int aws_cred_parse_json(const char *json, aws_cred_json_kind kind, aws_credentials *out,
                        aws_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = json != NULL ? json_loads(json, 0, NULL) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        aws_error_set(err, AWS_ERR_BAD_RESPONSE, "%s answer is not a JSON object",
                      json_kind_name(kind));
        return -1;
    }
    int rc = check_json_envelope(root, kind, err);
    if (rc == 0)
        rc = parse_json_fields(root, kind, out, err);
    json_decref(root);
    if (rc != 0)
        aws_credentials_clear(out);
    return rc;
}

/* --- form encoding ------------------------------------------------------------- */

char *aws_cred_form_encode(const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(value);
    char *out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return out;
}

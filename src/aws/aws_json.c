/* AWS wire-format helpers (see aws_json.h): base64, JSON fields, XML tags and
 * the mapping of AWS error codes to aws_status. */
#include "aws/aws_json.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/retry.h"

char *aws_base64_encode(const uint8_t *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = malloc(out_len + 1);
    if (out == NULL || len > INT32_MAX) {
        free(out);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[out_len] = '\0';
    return out;
}

int aws_base64_decode(const char *text, uint8_t **out, size_t *out_len)
{
    size_t len = strlen(text);
    *out = NULL;
    *out_len = 0;
    if (len % 4 != 0 || len > INT32_MAX)
        return -1;
    uint8_t *buffer = malloc(len / 4 * 3 + 1);
    if (buffer == NULL)
        return -1;
    int decoded = EVP_DecodeBlock(buffer, (const unsigned char *)text, (int)len);
    if (decoded < 0) {
        free(buffer);
        return -1;
    }
    /* EVP_DecodeBlock counts padding as zero bytes: take them off. */
    size_t padding = 0;
    if (len >= 1 && text[len - 1] == '=')
        padding++;
    if (len >= 2 && text[len - 2] == '=')
        padding++;
    *out = buffer;
    *out_len = (size_t)decoded - padding;
    return 0;
}

int aws_json_copy_string(const json_t *object, const char *name, bool required, char *out,
                         size_t out_size)
{
    const json_t *value = json_object_get(object, name);
    out[0] = '\0';
    if (!json_is_string(value))
        return required || value != NULL ? -1 : 0;
    size_t len = json_string_length(value);
    if (len >= out_size)
        return -1;
    memcpy(out, json_string_value(value), len);
    out[len] = '\0';
    return 0;
}

double aws_json_timestamp(const json_t *object, const char *name)
{
    const json_t *value = json_object_get(object, name);
    return json_is_number(value) ? json_number_value(value) : 0;
}

bool aws_json_bool(const json_t *object, const char *name)
{
    return json_is_true(json_object_get(object, name));
}

/* The five predefined XML entities. */
static const struct {
    const char *entity;
    size_t len;
    char ch;
} xml_entities[] = {
    {"&amp;", 5, '&'}, {"&lt;", 4, '<'}, {"&gt;", 4, '>'}, {"&quot;", 6, '"'}, {"&apos;", 6, '\''}};

/* Decodes one character of text at p (before end): an entity or itself. */
static char xml_char(const char *p, const char *end, size_t *advance)
{
    for (size_t i = 0; *p == '&' && i < sizeof xml_entities / sizeof xml_entities[0]; i++) {
        size_t len = xml_entities[i].len;
        if ((size_t)(end - p) >= len && strncmp(p, xml_entities[i].entity, len) == 0) {
            *advance = len;
            return xml_entities[i].ch;
        }
    }
    *advance = 1;
    return *p;
}

int aws_xml_text(const char *start, const char *end, const char *tag, char *out, size_t out_size)
{
    char open[128], close[128];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *from = start != NULL ? strstr(start, open) : NULL;
    if (from == NULL || from >= end)
        return -1;
    from += strlen(open);
    const char *to = strstr(from, close);
    if (to == NULL || to > end)
        return -1;
    size_t n = 0;
    for (const char *p = from; p < to;) {
        size_t advance;
        char c = xml_char(p, to, &advance);
        if (n + 1 >= out_size)
            return -1;
        out[n++] = c;
        p += advance;
    }
    out[n] = '\0';
    return 0;
}

int aws_xml_tag(const char *xml, const char *tag, char *out, size_t out_size)
{
    return xml != NULL ? aws_xml_text(xml, xml + strlen(xml), tag, out, out_size) : -1;
}

typedef struct {
    const char *code;
    aws_status status;
} code_rule;

static const code_rule code_rules[] = {
    {"NotFoundException", AWS_ERR_NOT_FOUND},
    {"AlreadyExistsException", AWS_ERR_ALREADY_EXISTS},
    {"KMSInvalidStateException", AWS_ERR_INVALID_STATE},
    {"DisabledException", AWS_ERR_DISABLED},
    {"LimitExceededException", AWS_ERR_LIMIT_EXCEEDED},
    {"AccessDeniedException", AWS_ERR_ACCESS_DENIED},
    {"AccessDenied", AWS_ERR_ACCESS_DENIED},
    {"NotAuthorizedException", AWS_ERR_ACCESS_DENIED},
    {"UnrecognizedClientException", AWS_ERR_ACCESS_DENIED},
    {"InvalidSignatureException", AWS_ERR_ACCESS_DENIED},
    {"SignatureDoesNotMatch", AWS_ERR_ACCESS_DENIED},
    {"IncompleteSignature", AWS_ERR_ACCESS_DENIED},
    {"IncompleteSignatureException", AWS_ERR_ACCESS_DENIED},
    {"ExpiredTokenException", AWS_ERR_ACCESS_DENIED},
    {"ExpiredToken", AWS_ERR_ACCESS_DENIED},
    {"InvalidClientTokenId", AWS_ERR_ACCESS_DENIED},
    {"MissingAuthenticationToken", AWS_ERR_ACCESS_DENIED},
    {"MissingAuthenticationTokenException", AWS_ERR_ACCESS_DENIED},
    {"ValidationException", AWS_ERR_VALIDATION},
    {"ValidationError", AWS_ERR_VALIDATION},
    {"MalformedPolicyDocumentException", AWS_ERR_VALIDATION},
    {"MissingParameter", AWS_ERR_VALIDATION},
    {"SerializationException", AWS_ERR_VALIDATION},
    {"TagException", AWS_ERR_VALIDATION},
    {"KMSInternalException", AWS_ERR_SERVER},
    {"DependencyTimeoutException", AWS_ERR_SERVER},
    {"KeyUnavailableException", AWS_ERR_SERVER},
    {"ServiceUnavailable", AWS_ERR_SERVER},
    {"ServiceUnavailableException", AWS_ERR_SERVER},
    {"InternalFailure", AWS_ERR_SERVER},
    {"InternalError", AWS_ERR_SERVER},
    {"InternalServerError", AWS_ERR_SERVER},
};

static aws_status status_for_http(long http_status)
{
    if (http_status >= 500)
        return AWS_ERR_SERVER;
    if (http_status == 429)
        return AWS_ERR_THROTTLED;
    if (http_status == 401 || http_status == 403)
        return AWS_ERR_ACCESS_DENIED;
    if (http_status >= 400)
        return AWS_ERR_CLIENT;
    return AWS_ERR_BAD_RESPONSE;
}

aws_status aws_error_status_for(const char *code, long http_status)
{
    if (code != NULL && code[0] != '\0') {
        for (size_t i = 0; i < sizeof code_rules / sizeof code_rules[0]; i++) {
            if (strcmp(code, code_rules[i].code) == 0)
                return code_rules[i].status;
        }
        if (aws_retry_is_throttling_code(code))
            return AWS_ERR_THROTTLED;
        /* InvalidKeyUsageException, InvalidAliasNameException, InvalidArn...,
         * InvalidMarker..., InvalidParameterValue, ... */
        if (strncmp(code, "Invalid", 7) == 0 && http_status < 500)
            return AWS_ERR_VALIDATION;
    }
    return status_for_http(http_status);
}

/* Keeps the error name: "com.amazon.coral#NotFoundException" and
 * "NotFoundException:http://..." both give "NotFoundException". */
static void normalise_code(const char *raw, char *out, size_t out_size)
{
    const char *hash = strrchr(raw, '#');
    const char *start = hash ? hash + 1 : raw;
    size_t len = strcspn(start, ":");
    if (len >= out_size)
        len = out_size - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

static void read_json_error(const char *body, aws_error *err)
{
    json_t *root = json_loads(body, JSON_DISABLE_EOF_CHECK, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    const char *type = json_string_value(json_object_get(root, "__type"));
    if (type == NULL)
        type = json_string_value(json_object_get(root, "code"));
    if (type != NULL)
        normalise_code(type, err->code, sizeof err->code);
    const char *message = json_string_value(json_object_get(root, "message"));
    if (message == NULL)
        message = json_string_value(json_object_get(root, "Message"));
    if (message != NULL)
        snprintf(err->message, sizeof err->message, "%s", message);
    json_decref(root);
}

static void read_xml_error(const char *body, aws_error *err)
{
    char code[sizeof err->code];
    if (aws_xml_tag(body, "Code", code, sizeof code) == 0)
        normalise_code(code, err->code, sizeof err->code);
    if (aws_xml_tag(body, "Message", err->message, sizeof err->message) != 0)
        err->message[0] = '\0';
    if (err->request_id[0] == '\0' &&
        aws_xml_tag(body, "RequestId", err->request_id, sizeof err->request_id) != 0)
        err->request_id[0] = '\0';
}

void aws_error_from_answer(const char *operation, long http_status, const char *body,
                           const char *request_id, aws_error *err)
{
    int attempts = err->attempts;
    aws_error_clear(err);
    err->attempts = attempts;
    err->http_status = (int)http_status;
    snprintf(err->request_id, sizeof err->request_id, "%s", request_id ? request_id : "");
    const char *text = body ? body + strspn(body, " \t\r\n") : "";
    if (text[0] == '{')
        read_json_error(text, err);
    else if (text[0] == '<')
        read_xml_error(text, err);
    err->status = aws_error_status_for(err->code, http_status);
    if (err->message[0] == '\0')
        snprintf(err->message, sizeof err->message, "%s failed with HTTP %ld%s%s", operation,
                 http_status, err->code[0] ? ": " : "", err->code);
}

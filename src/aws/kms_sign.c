/* KMS Sign, the plugin's hottest call: the request body written directly
 * and the answer's Signature read without a JSON tree (building either with
 * jansson cost more than the rest of the call), and the call made either
 * synchronously (kms_sign) or without holding the calling thread
 * (kms_sign_start, on the asynchronous call path of kms_async.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/json_scan.h"
#include "aws/kms_internal.h"

enum {
    MAX_SIGNATURE_TEXT = 2048, /* base64 of KMS's longest signature (RSA 4096: 512 bytes) fits */
};

/* Appends text as a JSON string (quotes included) at out; returns the end.
 * out must have room for 6 bytes per input byte plus 2. */
static char *put_json_string(char *out, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *out++ = '\\';
            *out++ = (char)*p;
        } else if (*p < 0x20) {
            memcpy(out, "\\u00", 4);
            out[4] = hex[*p >> 4];
            out[5] = hex[*p & 0xf];
            out += 6;
        } else {
            *out++ = (char)*p;
        }
    }
    *out++ = '"';
    return out;
}

/* The Sign request as compact JSON; NULL when out of memory or key_id is not
 * valid UTF-8. */
static char *sign_request_body(const char *key_id, const uint8_t *digest, size_t digest_len,
                               const char *algorithm)
{
    if (!json_scan_utf8_valid(key_id, strlen(key_id)))
        return NULL;
    char *message = aws_base64_encode(digest, digest_len);
    if (message == NULL)
        return NULL;
    size_t cap = 6 * (strlen(key_id) + strlen(message) + strlen(algorithm)) + 128;
    char *body = malloc(cap);
    if (body != NULL) {
        char *p = body;
        p = stpcpy(p, "{\"KeyId\":");
        p = put_json_string(p, key_id);
        p = stpcpy(p, ",\"Message\":");
        p = put_json_string(p, message);
        p = stpcpy(p, ",\"MessageType\":\"DIGEST\",\"SigningAlgorithm\":");
        p = put_json_string(p, algorithm);
        strcpy(p, "}");
    }
    free(message);
    return body;
}

/* The answer's Signature, base64-decoded into a malloc'd buffer; -1 with err
 * (AWS_ERR_BAD_RESPONSE naming the answer's status and request id). */
static int decode_signature(const aws_http_response *answer, uint8_t **signature,
                            size_t *signature_len, aws_error *err)
{
    char encoded[MAX_SIGNATURE_TEXT];
    size_t encoded_len;
    const char *text = answer->body ? answer->body : "";
    size_t len = answer->body ? answer->body_len : 0;
    json_scan_result found = JSON_SCAN_ABSENT; /* an empty body is an empty object */
    if (strspn(text, " \t\r\n") < len)
        found =
            json_scan_string_member(text, len, "Signature", encoded, sizeof encoded, &encoded_len);
    switch (found) {
    case JSON_SCAN_FOUND:
        if (strlen(encoded) == encoded_len &&
            aws_base64_decode(encoded, signature, signature_len) == 0)
            return 0;
        kms_bad_response(err, "Sign", answer, "Signature is not base64");
        return -1;
    case JSON_SCAN_MALFORMED:
        kms_bad_response(err, "Sign", answer, "the body is not a JSON object");
        return -1;
    case JSON_SCAN_TOO_LONG:
        kms_bad_response(err, "Sign", answer, "Signature is too long");
        return -1;
    default:
        kms_bad_response(err, "Sign", answer, "no Signature");
        return -1;
    }
}

int kms_sign(kms_client *client, const aws_call_ctx *ctx, const char *key_id, const uint8_t *digest,
             size_t digest_len, const char *algorithm, uint8_t **signature, size_t *signature_len,
             aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    *signature = NULL;
    *signature_len = 0;
    char *body = sign_request_body(key_id, digest, digest_len, algorithm);
    aws_http_response answer;
    if (kms_client_call(client, ctx, AWS_JSON_SERVICE_KMS, "Sign", body, &answer, err) != 0)
        return -1;
    int rc = decode_signature(&answer, signature, signature_len, err);
    aws_http_response_clear(&answer);
    return rc;
}

typedef struct {
    kms_sign_done_fn done;
    void *user;
} sign_call;

static void on_signed(void *user, int rc, aws_http_response *response, aws_error *err)
{
    sign_call call = *(sign_call *)user;
    free(user);
    uint8_t *signature = NULL;
    size_t signature_len = 0;
    if (rc == 0)
        rc = decode_signature(response, &signature, &signature_len, err);
    aws_http_response_clear(response);
    call.done(call.user, rc, signature, signature_len, err);
}

int kms_sign_start(kms_client *client, const aws_call_ctx *ctx, const char *key_id,
                   const uint8_t *digest, size_t digest_len, const char *algorithm,
                   kms_sign_done_fn done, void *user, aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    sign_call *call = malloc(sizeof *call);
    char *body = call != NULL ? sign_request_body(key_id, digest, digest_len, algorithm) : NULL;
    if (body == NULL) {
        free(call);
        aws_error_clear(err);
        aws_error_set(err, AWS_ERR_INTERNAL, "cannot encode the Sign request");
        return -1;
    }
    call->done = done;
    call->user = user;
    if (kms_client_json_call_start(client, ctx, AWS_JSON_SERVICE_KMS, "Sign", body, on_signed, call,
                                   err) != 0) {
        free(call);
        return -1;
    }
    return 0;
}
